//! The mapping log (docs/operator.md §4, `mapping-log = "/path"`): one line per
//! binding created or expired, for abuse tracing ("who had
//! 203.0.113.5:40123 at 14:02?").
//!
//! ```text
//! 2025-05-01T14:02:11.204Z created tcp [2001:db8:1::2]:40000 203.0.113.5:2000
//! 2025-05-01T14:06:12.090Z expired tcp [2001:db8:1::2]:40000 203.0.113.5:2000
//! 2025-05-01T14:02:11.204Z block-allocated udp 2001:db8:1::2 203.0.113.5:2048-2111
//! 2025-05-01T14:02:11.204Z created lease 2001:db8:1::2 100.64.0.7        (kernel mode)
//! ```
//!
//! Times are UTC, RFC 3339 with milliseconds; static entries end in
//! ` static`.
//!
//! Logging never blocks the daemon, whatever the sink does (issue 11 #5:
//! a FIFO whose reader stops reading, or has none):
//!
//! * the engine's event hook only puts the event on a bounded channel
//!   ([`CHANNEL`], `try_send`: never blocks a worker); events that find it
//!   full are counted as dropped (`nat64_mapping_log_dropped_total`);
//! * the file is opened with `O_NONBLOCK`: a FIFO without a reader fails at
//!   once (ENXIO) instead of blocking `open(2)`; the writer retries every
//!   [`OPEN_RETRY`] and counts the events meanwhile as dropped;
//! * the writer writes without blocking and waits for a full FIFO with
//!   `poll(2)` in [`TICK`] slices, so it notices SIGHUP and stop while the
//!   reader stalls; the channel fills meanwhile (drops counted), and a
//!   rate-limited warning says so: "mapping log: N events dropped (writer
//!   stalled)";
//! * SIGHUP's reopen ([`MapLog::reopen`]) and [`MapLog::stop`] are flags
//!   plus a `try_send` wake-up: neither waits for the writer. `stop` gives
//!   it [`STOP_DEADLINE`] to write what is queued, then leaves it behind
//!   (a write to a regular file can still hang, e.g. on a dead NFS mount),
//!   so the daemon always gets on with removing its TUN and routes.
//!
//! A regular file behaves as it always did: appended to, created 0640 with
//! its directory, reopened on SIGHUP (after logrotate moved it).

use crate::control::MapLogCounters;
use anyhow::Context as _;
use nat64_core::state::{MappingEvent, MappingEventKind};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{self, sync_channel, Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Events buffered between the engine and the writer.
pub const CHANNEL: usize = 65536;
/// Longest [`MapLog::stop`] waits for the writer to finish.
pub const STOP_DEADLINE: Duration = Duration::from_secs(2);
/// Of that, how long the writer keeps writing what is queued once told to
/// stop (the rest is counted as dropped).
const DRAIN: Duration = Duration::from_secs(1);
/// How often the writer looks at its flags while it waits (for an event,
/// or for a full FIFO to drain).
pub const TICK: Duration = Duration::from_millis(100);
/// How often a sink that could not be opened (no reader on the FIFO, an
/// error) is tried again.
pub const OPEN_RETRY: Duration = Duration::from_secs(1);
/// Lines formatted ahead of the sink (bytes): the writer takes no more
/// events from the channel while this much waits to be written.
const PENDING_MAX: usize = 64 * 1024;
/// Messages taken off the channel in one go before the flags are looked at.
const BATCH: usize = 4096;
/// The dropped-events warning comes at most this often.
const REPORT_EVERY: Duration = Duration::from_secs(5);

enum Msg {
    Event(MappingEvent),
    /// Look at the flags (reopen, stop).
    Wake,
}

/// What the daemon asks of the writer, without waiting for it.
#[derive(Debug, Default)]
struct Flags {
    reopen: AtomicBool,
    stop: AtomicBool,
}

/// A running mapping-log writer.
pub struct MapLog {
    tx: SyncSender<Msg>,
    counters: Arc<MapLogCounters>,
    flags: Arc<Flags>,
    path: PathBuf,
    /// Disconnected when the writer thread ends (its sender drops).
    done: Receiver<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Opens `path` for appending (creating it with mode 0640, and its
/// directory) without blocking: `O_NONBLOCK`, so that a FIFO with no reader
/// fails at once with ENXIO, reported as `Ok(None)`, instead of waiting
/// for one. (`O_NONBLOCK` changes nothing for a regular file.)
fn open(path: &Path) -> anyhow::Result<Option<File>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "creating the directory of the mapping log {}; create it or change `mapping-log`",
                dir.display()
            )
        })?;
    }
    match OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
        Err(e) => Err(e).with_context(|| {
            format!(
                "opening the mapping log {} for appending; check the directory and permissions, \
                 or set `mapping-log = \"\"` to disable it",
                path.display()
            )
        }),
    }
}

impl MapLog {
    /// Opens `path` (append) and starts the writer. `epoch` is the wall
    /// time of the engine's timestamp 0. Never blocks: a FIFO without a
    /// reader is opened by the writer once one appears. An error (no
    /// permission, not a directory) is returned, as a configuration error.
    pub fn start(
        path: &Path,
        epoch: SystemTime,
        counters: Arc<MapLogCounters>,
    ) -> anyhow::Result<MapLog> {
        let file = open(path)?;
        if file.is_none() {
            tracing::warn!(
                "mapping log {}: the FIFO has no reader; events are dropped (and counted) until \
                 one opens it",
                path.display()
            );
        }
        let (tx, rx) = sync_channel(CHANNEL);
        let (done_tx, done) = mpsc::channel();
        let flags = Arc::new(Flags::default());
        let w = Writer::new(
            rx,
            path.to_path_buf(),
            epoch,
            counters.clone(),
            flags.clone(),
            file,
            done_tx,
        );
        let thread = std::thread::Builder::new()
            .name("nat64-maplog".into())
            .spawn(move || {
                // Least privilege: this thread needs no capability.
                crate::privilege::drop_thread_caps();
                w.run()
            })
            .context("spawning the mapping-log writer")?;
        Ok(MapLog {
            tx,
            counters,
            flags,
            path: path.to_path_buf(),
            done,
            thread: Some(thread),
        })
    }

    /// The engine event hook: enqueue, never block.
    pub fn hook(&self) -> impl Fn(&MappingEvent) + Send + Sync + 'static {
        let tx = self.tx.clone();
        let c = self.counters.clone();
        move |ev: &MappingEvent| {
            if tx.try_send(Msg::Event(*ev)).is_err() {
                c.dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Reopens the file (SIGHUP, after log rotation). Returns at once: the
    /// writer reopens when it next looks at its flags.
    pub fn reopen(&self) {
        self.flags.reopen.store(true, Relaxed);
        // A full channel means the writer is busy and will see the flag.
        let _ = self.tx.try_send(Msg::Wake);
    }

    /// Writes what is queued and stops (call after the hook is removed).
    /// Returns within [`STOP_DEADLINE`]: a writer stuck in I/O is left
    /// behind (and says so) rather than waited for.
    pub fn stop(mut self) {
        self.flags.stop.store(true, Relaxed);
        let _ = self.tx.try_send(Msg::Wake);
        let Some(t) = self.thread.take() else {
            return;
        };
        match self.done.recv_timeout(STOP_DEADLINE) {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                let _ = t.join();
            }
            Err(RecvTimeoutError::Timeout) => tracing::warn!(
                "mapping log {}: the writer did not finish within {} s (stuck writing); left \
                 behind, {} events dropped so far",
                self.path.display(),
                STOP_DEADLINE.as_secs(),
                self.counters.dropped.load(Relaxed)
            ),
        }
    }
}

impl Drop for MapLog {
    /// Dropped without [`MapLog::stop`] (an error during start-up): the
    /// writer finishes on its own.
    fn drop(&mut self) {
        self.flags.stop.store(true, Relaxed);
        let _ = self.tx.try_send(Msg::Wake);
    }
}

/// What a non-blocking write of the pending lines achieved.
enum Flow {
    /// Everything written (or there was nothing to write).
    Done,
    /// The sink is full (a FIFO whose reader is behind): wait for POLLOUT.
    Blocked,
    /// The sink failed; the pending lines were dropped and it is closed.
    Failed,
}

/// The writer thread's state.
struct Writer {
    rx: Receiver<Msg>,
    path: PathBuf,
    epoch: SystemTime,
    c: Arc<MapLogCounters>,
    flags: Arc<Flags>,
    sink: Option<File>,
    /// Whole lines not yet written, of which the first `off` bytes are.
    pending: Vec<u8>,
    pending_lines: u64,
    off: usize,
    /// When to try opening a closed sink again.
    next_open: Instant,
    /// The sink's failure (or missing reader) was logged: log its return.
    outage_logged: bool,
    /// `c.dropped` at the last warning, and when the next may come.
    reported: u64,
    next_report: Instant,
    _done: mpsc::Sender<()>,
}

impl Writer {
    fn new(
        rx: Receiver<Msg>,
        path: PathBuf,
        epoch: SystemTime,
        c: Arc<MapLogCounters>,
        flags: Arc<Flags>,
        sink: Option<File>,
        done: mpsc::Sender<()>,
    ) -> Writer {
        let now = Instant::now();
        Writer {
            rx,
            path,
            epoch,
            c,
            flags,
            outage_logged: sink.is_none(),
            sink,
            pending: Vec::with_capacity(PENDING_MAX + 256),
            pending_lines: 0,
            off: 0,
            next_open: now + OPEN_RETRY,
            reported: 0,
            next_report: now,
            _done: done,
        }
    }

    fn run(mut self) {
        loop {
            let now = Instant::now();
            self.report_drops(now, false);
            if self.flags.stop.load(Relaxed) {
                return self.finish();
            }
            if self.flags.reopen.swap(false, Relaxed) {
                self.reopen();
            }
            if self.sink.is_none() && now >= self.next_open {
                self.try_open(now);
            }
            if !self.pending.is_empty() {
                if let Flow::Blocked = self.write_pending() {
                    self.wait_writable(TICK);
                }
                continue;
            }
            match self.rx.recv_timeout(TICK) {
                Ok(m) => {
                    self.take(m);
                    self.fill();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return self.finish(),
            }
        }
    }

    /// One message: an event becomes a pending line, or is dropped when
    /// there is no sink.
    fn take(&mut self, m: Msg) {
        let Msg::Event(ev) = m else {
            return;
        };
        if self.sink.is_none() {
            self.c.dropped.fetch_add(1, Relaxed);
            return;
        }
        self.pending
            .extend_from_slice(format_line(&ev, self.epoch).as_bytes());
        self.pending_lines += 1;
    }

    /// Takes what is queued, up to [`PENDING_MAX`] bytes of lines and
    /// [`BATCH`] messages.
    fn fill(&mut self) {
        for _ in 0..BATCH {
            if self.pending.len() >= PENDING_MAX {
                return;
            }
            match self.rx.try_recv() {
                Ok(m) => self.take(m),
                Err(_) => return,
            }
        }
    }

    /// Writes the pending lines without blocking.
    fn write_pending(&mut self) -> Flow {
        let Some(f) = self.sink.as_mut() else {
            self.drop_pending();
            return Flow::Done;
        };
        let mut err = None;
        while self.off < self.pending.len() {
            match f.write(&self.pending[self.off..]) {
                Ok(0) => {
                    err = Some(std::io::Error::from(ErrorKind::WriteZero));
                    break;
                }
                Ok(n) => self.off += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Flow::Blocked,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        match err {
            None => {
                self.c.lines.fetch_add(self.pending_lines, Relaxed);
                self.pending.clear();
                self.pending_lines = 0;
                self.off = 0;
                Flow::Done
            }
            Some(e) => {
                self.close(&e);
                Flow::Failed
            }
        }
    }

    /// The pending lines are lost (counted as dropped).
    fn drop_pending(&mut self) {
        self.c.dropped.fetch_add(self.pending_lines, Relaxed);
        self.pending.clear();
        self.pending_lines = 0;
        self.off = 0;
    }

    /// The sink failed: drop what is pending, close it, try again later.
    fn close(&mut self, e: &std::io::Error) {
        self.drop_pending();
        self.sink = None;
        self.next_open = Instant::now() + OPEN_RETRY;
        if !self.outage_logged {
            self.outage_logged = true;
            let why = if e.raw_os_error() == Some(libc::EPIPE) {
                "the reader of the FIFO went away".to_string()
            } else {
                format!("write failed: {e}")
            };
            tracing::warn!(
                "mapping log {}: {why}; events are dropped (and counted) until it can be \
                 written again (retrying every {} s)",
                self.path.display(),
                OPEN_RETRY.as_secs()
            );
        }
    }

    fn try_open(&mut self, now: Instant) {
        self.next_open = now + OPEN_RETRY;
        match open(&self.path) {
            Ok(Some(f)) => {
                self.sink = Some(f);
                if self.outage_logged {
                    self.outage_logged = false;
                    tracing::info!("mapping log {}: writing again", self.path.display());
                }
            }
            Ok(None) => {
                if !self.outage_logged {
                    self.outage_logged = true;
                    tracing::warn!(
                        "mapping log {}: the FIFO has no reader; events are dropped (and \
                         counted) until one opens it",
                        self.path.display()
                    );
                }
            }
            Err(e) => {
                if !self.outage_logged {
                    self.outage_logged = true;
                    tracing::error!("{e:#}");
                }
            }
        }
    }

    /// SIGHUP: finish the pending lines (briefly), then open the path
    /// anew.
    fn reopen(&mut self) {
        self.write_for(TICK * 5);
        self.drop_pending();
        let is_fifo = self
            .sink
            .as_ref()
            .and_then(|f| f.metadata().ok())
            .is_some_and(|m| m.file_type().is_fifo());
        self.sink = None;
        match open(&self.path) {
            Ok(Some(f)) => {
                self.sink = Some(f);
                self.outage_logged = false;
            }
            Ok(None) => {
                // Quiet when it was a FIFO whose reader left: that was
                // logged already when the write failed.
                if !self.outage_logged && !is_fifo {
                    tracing::warn!(
                        "mapping log {}: the FIFO has no reader; events are dropped (and \
                         counted) until one opens it",
                        self.path.display()
                    );
                }
                self.outage_logged = true;
                self.next_open = Instant::now() + OPEN_RETRY;
            }
            Err(e) => {
                tracing::error!("{e:#}");
                self.outage_logged = true;
                self.next_open = Instant::now() + OPEN_RETRY;
            }
        }
    }

    /// Writes the pending lines, waiting for a full sink for at most
    /// `limit`.
    fn write_for(&mut self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.pending.is_empty() {
            if let Flow::Blocked = self.write_pending() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return;
                }
                self.wait_writable(left.min(TICK));
            }
        }
    }

    /// Polls the sink for POLLOUT for up to `d`.
    fn wait_writable(&self, d: Duration) {
        let Some(f) = &self.sink else {
            std::thread::sleep(d);
            return;
        };
        let mut p = libc::pollfd {
            fd: f.as_raw_fd(),
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut p, 1, d.as_millis().min(i32::MAX as u128) as i32) };
        if r < 0 {
            std::thread::sleep(d.min(TICK));
        }
    }

    /// Stop: write what is queued for at most [`DRAIN`], count the rest as
    /// dropped, and report.
    fn finish(mut self) {
        let deadline = Instant::now() + DRAIN;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.fill();
            if self.pending.is_empty() {
                // fill() stops at BATCH messages: empty means the channel
                // is, or there is no sink and the batch was dropped.
                match self.rx.try_recv() {
                    Ok(m) => {
                        self.take(m);
                        continue;
                    }
                    Err(_) => break,
                }
            }
            if let Flow::Blocked = self.write_pending() {
                self.wait_writable(left.min(TICK));
            }
        }
        self.drop_pending();
        // What is still queued is lost (bounded: the hook may still be
        // installed when the MapLog was dropped without stop).
        for _ in 0..CHANNEL {
            match self.rx.try_recv() {
                Ok(Msg::Event(_)) => {
                    self.c.dropped.fetch_add(1, Relaxed);
                }
                Ok(Msg::Wake) => {}
                Err(_) => break,
            }
        }
        self.report_drops(Instant::now(), true);
    }

    /// The rate-limited warning about events lost since the last one.
    fn report_drops(&mut self, now: Instant, force: bool) {
        let d = self.c.dropped.load(Relaxed);
        if d > self.reported && (force || now >= self.next_report) {
            tracing::warn!(
                "mapping log: {} events dropped (writer stalled)",
                d - self.reported
            );
            self.reported = d;
            self.next_report = now + REPORT_EVERY;
        }
    }
}

/// One mapping-log line (newline included).
pub fn format_line(ev: &MappingEvent, epoch: SystemTime) -> String {
    let t = rfc3339(epoch + Duration::from_millis(ev.time.as_millis()));
    let kind = match ev.kind {
        MappingEventKind::Created => "created",
        MappingEventKind::Expired => "expired",
        MappingEventKind::BlockAllocated => "block-allocated",
        MappingEventKind::BlockReleased => "block-released",
    };
    let stat = if ev.is_static { " static" } else { "" };
    match (ev.proto, ev.kind) {
        (None, _) => format!("{t} {kind} lease {} {}{stat}\n", ev.v6.0, ev.v4.0),
        (Some(p), MappingEventKind::BlockAllocated | MappingEventKind::BlockReleased) => format!(
            "{t} {kind} {} {} {}:{}-{}{stat}\n",
            p.as_str(),
            ev.v6.0,
            ev.v4.0,
            ev.v4.1,
            ev.v4_last_port
        ),
        (Some(p), _) => format!(
            "{t} {kind} {} [{}]:{} {}:{}{stat}\n",
            p.as_str(),
            ev.v6.0,
            ev.v6.1,
            ev.v4.0,
            ev.v4.1
        ),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86400, secs % 86400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

#[cfg(test)]
mod test {
    use super::*;
    use nat64_core::time::Timestamp;
    use nat64_core::xlat::L4Proto;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_709_251_200_123); // 2024-03-01
        assert_eq!(rfc3339(t), "2024-03-01T00:00:00.123Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_825_599); // 2000-02-29 11:59:59
        assert_eq!(rfc3339(t), "2000-02-29T11:59:59.000Z");
    }

    #[test]
    fn lines_name_both_endpoints() {
        let ev = MappingEvent {
            time: Timestamp::from_millis(1500),
            kind: MappingEventKind::Created,
            proto: Some(L4Proto::Tcp),
            v6: ("2001:db8::2".parse().unwrap(), 40000),
            v4: ("203.0.113.5".parse().unwrap(), 2000),
            v4_last_port: 2000,
            is_static: false,
        };
        assert_eq!(
            format_line(&ev, UNIX_EPOCH),
            "1970-01-01T00:00:01.500Z created tcp [2001:db8::2]:40000 203.0.113.5:2000\n"
        );
    }

    #[test]
    fn writer_appends_and_counts() {
        let dir = std::env::temp_dir().join(format!("nat64-maplog-{}", std::process::id()));
        let path = dir.join("m.log");
        let c = Arc::new(MapLogCounters::default());
        let m = MapLog::start(&path, UNIX_EPOCH, c.clone()).unwrap();
        let hook = m.hook();
        let ev = MappingEvent {
            time: Timestamp::from_millis(0),
            kind: MappingEventKind::Expired,
            proto: None,
            v6: ("2001:db8::2".parse().unwrap(), 0),
            v4: ("100.64.0.1".parse().unwrap(), 0),
            v4_last_port: 0,
            is_static: false,
        };
        hook(&ev);
        hook(&ev);
        m.stop();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(
            text.contains("expired lease 2001:db8::2 100.64.0.1"),
            "{text}"
        );
        assert_eq!(c.lines.load(Relaxed), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }

    // ------------------------------------------ stalled sinks (issue 11 #5) ---

    fn event(i: u32) -> MappingEvent {
        MappingEvent {
            time: Timestamp::from_millis(u64::from(i)),
            kind: MappingEventKind::Created,
            proto: Some(L4Proto::Udp),
            v6: ("2001:db8::2".parse().unwrap(), (i % 60000) as u16),
            v4: ("203.0.113.5".parse().unwrap(), 2000),
            v4_last_port: 2000,
            is_static: false,
        }
    }

    /// A fresh directory for one test (removed by the caller).
    fn tmp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nat64-maplog-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn mkfifo(path: &Path) {
        let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    }

    /// The read end of a FIFO, non-blocking (so that opening it does not
    /// wait for a writer).
    fn reader(path: &Path) -> File {
        OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .unwrap()
    }

    /// Reads what the FIFO holds until `want` lines arrived (5 s limit).
    fn read_lines(r: &mut File, want: usize) -> String {
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        let t0 = Instant::now();
        while text.iter().filter(|b| **b == b'\n').count() < want {
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "only {:?} from the FIFO",
                String::from_utf8_lossy(&text)
            );
            match std::io::Read::read(r, &mut buf) {
                Ok(n) => text.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => panic!("reading the FIFO: {e}"),
            }
        }
        String::from_utf8(text).unwrap()
    }

    fn wait_for(what: &str, f: impl Fn() -> bool) {
        let t0 = Instant::now();
        while !f() {
            assert!(t0.elapsed() < Duration::from_secs(5), "timed out: {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A FIFO nobody reads: `start` used to block in open(2) for ever. Now
    /// it returns at once, events are counted as dropped, SIGHUP's reopen
    /// and stop return within their bounds.
    #[test]
    fn fifo_without_reader_start_returns_at_once_and_counts_drops() {
        let dir = tmp("noreader");
        let path = dir.join("fifo");
        mkfifo(&path);
        let c = Arc::new(MapLogCounters::default());
        let t0 = Instant::now();
        let m = MapLog::start(&path, UNIX_EPOCH, c.clone()).unwrap();
        assert!(t0.elapsed() < Duration::from_millis(500), "start blocked");
        let hook = m.hook();
        for i in 0..100 {
            hook(&event(i));
        }
        wait_for("100 events dropped", || c.dropped.load(Relaxed) == 100);
        let t0 = Instant::now();
        m.reopen();
        assert!(t0.elapsed() < Duration::from_millis(50), "reopen blocked");
        let t0 = Instant::now();
        m.stop();
        assert!(t0.elapsed() < STOP_DEADLINE, "stop took {:?}", t0.elapsed());
        assert_eq!(c.lines.load(Relaxed), 0);
        assert_eq!(c.dropped.load(Relaxed), 100);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A reader that shows up after the daemon started gets the events from
    /// then on (the writer retries the open every OPEN_RETRY).
    #[test]
    fn fifo_reader_appearing_later_gets_lines() {
        let dir = tmp("laterreader");
        let path = dir.join("fifo");
        mkfifo(&path);
        let c = Arc::new(MapLogCounters::default());
        let m = MapLog::start(&path, UNIX_EPOCH, c.clone()).unwrap();
        let hook = m.hook();
        hook(&event(1));
        wait_for("the first event dropped", || c.dropped.load(Relaxed) == 1);
        let mut r = reader(&path);
        std::thread::sleep(OPEN_RETRY + TICK * 3);
        hook(&event(2));
        let text = read_lines(&mut r, 1);
        assert!(text.contains("created udp [2001:db8::2]:2 "), "{text}");
        m.stop();
        assert_eq!(c.lines.load(Relaxed), 1);
        assert_eq!(c.dropped.load(Relaxed), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A reader that takes a few lines, then stops reading with the FIFO
    /// open: the hook never blocks (the channel fills, drops are counted),
    /// reopen returns at once, stop returns in time, and every event is
    /// either a line or a drop.
    #[test]
    fn fifo_reader_that_stops_reading_cannot_stall_stop() {
        let dir = tmp("stalled");
        let path = dir.join("fifo");
        mkfifo(&path);
        let mut r = reader(&path);
        let c = Arc::new(MapLogCounters::default());
        let m = MapLog::start(&path, UNIX_EPOCH, c.clone()).unwrap();
        let hook = m.hook();
        for i in 0..3 {
            hook(&event(i));
        }
        let text = read_lines(&mut r, 3);
        assert_eq!(text.lines().count(), 3, "{text}");
        // Now the reader stalls: the FIFO (64 KiB) and the channel fill up.
        let n = 200_000u32;
        let t0 = Instant::now();
        for i in 0..n {
            hook(&event(i));
        }
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "the hook blocked: {:?}",
            t0.elapsed()
        );
        wait_for("drops counted", || c.dropped.load(Relaxed) > 0);
        let t0 = Instant::now();
        m.reopen();
        assert!(t0.elapsed() < Duration::from_millis(50), "reopen blocked");
        let t0 = Instant::now();
        m.stop();
        assert!(
            t0.elapsed() < STOP_DEADLINE + Duration::from_millis(200),
            "stop took {:?}",
            t0.elapsed()
        );
        let (lines, dropped) = (c.lines.load(Relaxed), c.dropped.load(Relaxed));
        assert_eq!(lines + dropped, u64::from(n) + 3, "{lines} + {dropped}");
        assert!(dropped > u64::from(n) / 2, "{dropped}");
        drop(r);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The reader dies (EPIPE): events are dropped, not written into the
    /// void, and a new reader gets lines again.
    #[test]
    fn fifo_reader_dies_and_a_new_one_gets_lines() {
        let dir = tmp("deadreader");
        let path = dir.join("fifo");
        mkfifo(&path);
        let mut r = reader(&path);
        let c = Arc::new(MapLogCounters::default());
        let m = MapLog::start(&path, UNIX_EPOCH, c.clone()).unwrap();
        let hook = m.hook();
        hook(&event(1));
        read_lines(&mut r, 1);
        drop(r);
        hook(&event(2));
        wait_for("the event after EPIPE dropped", || {
            c.dropped.load(Relaxed) == 1
        });
        let mut r = reader(&path);
        std::thread::sleep(OPEN_RETRY + TICK * 3);
        hook(&event(3));
        let text = read_lines(&mut r, 1);
        assert!(text.contains("[2001:db8::2]:3 "), "{text}");
        let t0 = Instant::now();
        m.stop();
        assert!(t0.elapsed() < STOP_DEADLINE);
        assert_eq!((c.lines.load(Relaxed), c.dropped.load(Relaxed)), (2, 1));
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Regular files as before: created 0640 with their directory,
    /// appended to, and reopened on SIGHUP after logrotate moved them.
    #[test]
    fn regular_file_0640_appended_and_reopened_after_rotation() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tmp("regular");
        let path = dir.join("sub/m.log");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(&path, "old line\n").unwrap();
        let c = Arc::new(MapLogCounters::default());
        let m = MapLog::start(&path, UNIX_EPOCH, c.clone()).unwrap();
        let hook = m.hook();
        hook(&event(1));
        wait_for("one line", || c.lines.load(Relaxed) == 1);
        std::fs::rename(&path, dir.join("sub/m.log.1")).unwrap();
        m.reopen();
        wait_for("the new file", || path.exists());
        hook(&event(2));
        m.stop();
        let old = std::fs::read_to_string(dir.join("sub/m.log.1")).unwrap();
        assert!(
            old.starts_with("old line\n") && old.contains("]:1 "),
            "{old}"
        );
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!(new.lines().count(), 1, "{new}");
        assert!(new.contains("]:2 "), "{new}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
