//! The control socket server: a Unix stream socket (owner-only, mode 0600,
//! unless the operator loosens it), off the data plane.
//!
//! A local user must not be able to stall it (issue 11 #11: twenty idle
//! connections used to make `show stats` fail after 31 s):
//!
//! * connections are served concurrently, a thread each, at most
//!   [`MAX_CONNS`] at once; one more is refused at once with an error line
//!   and counted;
//! * each request must arrive whole within [`REQUEST_DEADLINE`] (of the
//!   connection, or of the previous answer), and each answer be written
//!   within [`WRITE_DEADLINE`]; a request is at most
//!   [`proto::MAX_REQUEST`] bytes;
//! * the peer's credentials (`SO_PEERCRED`) must be root's or the daemon's
//!   own uid: others get an error line and are counted (the 0600 mode
//!   already keeps them out; this holds if the operator loosens it).
//!
//! Bindings and sessions come a page at a time ([`proto`]), so no answer
//! holds the engine's lock or a large buffer for long.

use super::proto::{self, Reply, MAX_REQUEST};
use super::Telemetry;
use anyhow::Context as _;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd as _, RawFd};
use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connections served at once; more are refused.
pub const MAX_CONNS: usize = 32;
/// A request line must arrive whole within this (of the connection's
/// start, or of the previous answer); an idle connection is closed then.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// An answer must be written within this.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Longest single wait in a read: how often a connection looks at the stop
/// flag.
const SLICE: Duration = Duration::from_millis(200);

/// Connection counters of the control socket (`show stats`: `control.*`;
/// `/metrics`: `nat64_control_connections_*`). One control socket per
/// process, so they are process-wide.
#[derive(Debug)]
pub struct ConnCounters {
    /// Connections served.
    pub accepted: AtomicU64,
    /// Refused because [`MAX_CONNS`] were open.
    pub refused_busy: AtomicU64,
    /// Refused because the peer is neither root nor the daemon's uid.
    pub refused_peer: AtomicU64,
    /// Closed because a request did not arrive, or an answer could not be
    /// written, in time.
    pub timed_out: AtomicU64,
}

pub static COUNTERS: ConnCounters = ConnCounters {
    accepted: AtomicU64::new(0),
    refused_busy: AtomicU64::new(0),
    refused_peer: AtomicU64::new(0),
    timed_out: AtomicU64::new(0),
};

/// The `control` object of the `stats` reply.
pub fn counters_json() -> serde_json::Value {
    let c = &COUNTERS;
    let m = &super::metrics::COUNTERS;
    serde_json::json!({
        "connections": c.accepted.load(Relaxed),
        "refused_busy": c.refused_busy.load(Relaxed),
        "refused_peer": c.refused_peer.load(Relaxed),
        "timed_out": c.timed_out.load(Relaxed),
        "metrics_connections": m.accepted.load(Relaxed),
        "metrics_refused_busy": m.refused_busy.load(Relaxed),
        "metrics_timed_out": m.timed_out.load(Relaxed),
    })
}

/// Counts the connections of one server: a slot per connection thread, at
/// most `max` (shared by the control socket and `/metrics`).
#[derive(Debug, Clone)]
pub(crate) struct Slots {
    active: Arc<AtomicUsize>,
    max: usize,
}

/// A taken slot; dropping it (when the connection thread ends) frees it.
#[derive(Debug)]
pub(crate) struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves a connection on a thread of its own that holds `slot` (freed
/// when the thread ends): the control socket's and `/metrics`' way.
pub(crate) fn serve_in_thread(
    slot: Slot,
    name: &str,
    serve: impl FnOnce() + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _slot = slot;
            serve()
        })
        .map(|_| ())
}

impl Slots {
    pub(crate) fn new(max: usize) -> Slots {
        Slots {
            active: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }
    /// A slot, unless all are taken. Called from the accept thread only,
    /// so the check and the increment do not race with another take.
    pub(crate) fn take(&self) -> Option<Slot> {
        if self.active.load(Ordering::Acquire) >= self.max {
            return None;
        }
        self.active.fetch_add(1, Ordering::AcqRel);
        Some(Slot(self.active.clone()))
    }
    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }
    /// Waits (at most `limit`) for the connection threads to end.
    pub(crate) fn drain(&self, limit: Duration) {
        let t0 = Instant::now();
        while self.active() > 0 && t0.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Writes all of `buf` to a blocking socket before `deadline`:
/// `set_timeout` sets the socket's write timeout to what is left before
/// each write.
pub(crate) fn write_until(
    w: &mut dyn Write,
    set_timeout: &dyn Fn(Duration) -> std::io::Result<()>,
    buf: &[u8],
    deadline: Instant,
) -> std::io::Result<()> {
    let mut off = 0;
    while off < buf.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                ErrorKind::TimedOut,
                "the answer was not written in time",
            ));
        }
        set_timeout(left)?;
        match w.write(&buf[off..]) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => off += n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Writes one short line to a connection being turned away, without ever
/// blocking (the socket buffer of a fresh connection has room for it).
pub(crate) fn refuse(s: &mut impl Write, fd: RawFd, line: &[u8]) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        if fl >= 0 {
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
    }
    let _ = s.write(line);
}

/// Connections turned away, kept open for a moment after their error line
/// (reading and discarding what they send) rather than closed at once:
/// closing a TCP connection with unread data resets it, and the reset can
/// destroy the line before the client reads it. At most [`Closing::MAX`],
/// each for [`Closing::LINGER`]; polled by the accept loop, never blocking
/// it.
pub(crate) struct Closing<S> {
    q: std::collections::VecDeque<(S, Instant)>,
}

impl<S: Read> Closing<S> {
    const MAX: usize = 64;
    const LINGER: Duration = Duration::from_secs(1);

    pub(crate) fn new() -> Self {
        Closing {
            q: std::collections::VecDeque::new(),
        }
    }

    /// Keeps `s` (non-blocking, its error line written) for a while.
    pub(crate) fn push(&mut self, s: S) {
        if self.q.len() >= Self::MAX {
            self.q.pop_front();
        }
        self.q.push_back((s, Instant::now() + Self::LINGER));
    }

    /// Drains what the kept connections sent; closes those whose peer
    /// closed, that failed, or whose time is up.
    pub(crate) fn poll(&mut self) {
        let now = Instant::now();
        let mut buf = [0u8; 1024];
        self.q.retain_mut(|(s, until)| {
            if now >= *until {
                return false;
            }
            loop {
                match s.read(&mut buf) {
                    Ok(0) => return false,
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return e.kind() == ErrorKind::WouldBlock,
                }
            }
        });
    }
}

/// A running control socket; removes its file when stopped.
pub struct ControlServer {
    path: PathBuf,
    slots: Slots,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ControlServer {
    /// Waits for the accept thread (after the stop flag was set), gives
    /// the connection threads a moment to notice, and removes the socket
    /// file.
    pub fn stop(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.slots.drain(SLICE * 2);
        if let Err(e) = std::fs::remove_file(&self.path) {
            if e.kind() != ErrorKind::NotFound {
                tracing::warn!(
                    "could not remove the control socket {}: {e}",
                    self.path.display()
                );
            }
        }
    }
}

/// Binds the socket at `path` with mode 0600. A stale socket file (nothing
/// answers) is replaced; a live one is an error (another daemon).
pub fn bind(path: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .with_context(|| {
                    format!(
                        "creating the directory of the control socket {}; create it, or set \
                         `control` to a path in a writable directory (\"\" disables)",
                        dir.display()
                    )
                })?;
        }
    }
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            anyhow::bail!(
                "{} exists and is not a socket; remove it or set `control` to another path",
                path.display()
            );
        }
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another process (a running nat64?) answers on the control socket {}; stop it \
                 or give this instance another `control` path",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale control socket {}", path.display()))?;
    }
    // The socket is created with mode 0600 (umask), so no client can connect
    // in a window before the chmod.
    // SAFETY: umask(2) has no preconditions; restored right after bind.
    let old = unsafe { libc::umask(0o177) };
    let l = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let l = l.with_context(|| {
        format!(
            "binding the control socket {}; check the directory is writable, or set `control` \
             to another path (\"\" disables)",
            path.display()
        )
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting mode 0600 on {}", path.display()))?;
    l.set_nonblocking(true)
        .context("making the control socket non-blocking")?;
    Ok(l)
}

/// Binds `path` and serves it on a thread until `stop` is set.
pub fn spawn(
    path: &Path,
    tel: Arc<Telemetry>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<ControlServer> {
    let l = bind(path)?;
    let slots = Slots::new(MAX_CONNS);
    let sl = slots.clone();
    let thread = std::thread::Builder::new()
        .name("nat64-control".into())
        .spawn(move || {
            // Least privilege: this thread needs no capability.
            crate::privilege::drop_thread_caps();
            serve(l, &tel, &stop, &sl)
        })
        .context("spawning the control thread")?;
    Ok(ControlServer {
        path: path.to_path_buf(),
        slots,
        thread: Some(thread),
    })
}

fn serve(l: UnixListener, tel: &Arc<Telemetry>, stop: &Arc<AtomicBool>, slots: &Slots) {
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    let mut closing = Closing::new();
    while !stop.load(Relaxed) {
        closing.poll();
        match l.accept() {
            Ok((s, _)) => {
                if let Some(s) = admit(s, tel, stop, slots, me) {
                    let _ = s.shutdown(std::net::Shutdown::Write);
                    closing.push(s);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => super::wait_readable(l.as_raw_fd(), 200),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!("control socket accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The uid of the process at the other end (`SO_PEERCRED`: as of
/// connect(2)).
fn peer_uid(s: &UnixStream) -> std::io::Result<u32> {
    let mut c = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `c`, a ucred.
    let r = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut c as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(c.uid)
}

fn error_line(e: String) -> Vec<u8> {
    let mut t = serde_json::to_vec(&Reply::err(e))
        .unwrap_or_else(|_| br#"{"ok":false,"error":"refused"}"#.to_vec());
    t.push(b'\n');
    t
}

/// Checks the peer and the connection cap, then serves the connection on
/// its own thread. A connection turned away is returned (its error line
/// written) to be closed a moment later.
fn admit(
    mut s: UnixStream,
    tel: &Arc<Telemetry>,
    stop: &Arc<AtomicBool>,
    slots: &Slots,
    me: u32,
) -> Option<UnixStream> {
    let fd = s.as_raw_fd();
    let uid = match peer_uid(&s) {
        Ok(uid) if uid == 0 || uid == me => uid,
        other => {
            COUNTERS.refused_peer.fetch_add(1, Relaxed);
            let who = match other {
                Ok(uid) => format!("uid {uid}"),
                Err(e) => format!("a peer whose credentials cannot be read ({e})"),
            };
            tracing::debug!("control socket: refused {who}");
            let line = error_line(format!(
                "permission denied: this control socket answers root and uid {me} (the \
                 daemon's user) only, not {who}; run `nat64 show` as root"
            ));
            refuse(&mut s, fd, &line);
            return Some(s);
        }
    };
    let Some(slot) = slots.take() else {
        COUNTERS.refused_busy.fetch_add(1, Relaxed);
        let line = error_line(format!(
            "busy: {MAX_CONNS} control connections are open already; try again shortly"
        ));
        refuse(&mut s, fd, &line);
        return Some(s);
    };
    COUNTERS.accepted.fetch_add(1, Relaxed);
    let (tel, stop) = (tel.clone(), stop.clone());
    let spawned = serve_in_thread(slot, "nat64-ctl-conn", move || {
        if let Err(e) = client(s, &tel, &stop) {
            tracing::debug!("control client (uid {uid}): {e}");
        }
    });
    if let Err(e) = spawned {
        // The closure (connection and slot) was dropped with the error.
        COUNTERS.refused_busy.fetch_add(1, Relaxed);
        tracing::warn!("control socket: cannot start a connection thread: {e}");
    }
    None
}

/// Serves one connection: request lines until EOF, error, a deadline or
/// stop.
fn client(mut s: UnixStream, tel: &Telemetry, stop: &AtomicBool) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let mut deadline = Instant::now() + REQUEST_DEADLINE;
    loop {
        // Answer every complete line already buffered.
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = &line[..line.len() - 1];
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let reply = proto::answer_line(line, tel);
            write_reply(&s, reply)?;
            deadline = Instant::now() + REQUEST_DEADLINE;
        }
        if buf.len() >= MAX_REQUEST {
            let reply = Reply::err(format!(
                "request longer than {MAX_REQUEST} bytes without a newline; send one JSON \
                 object per line"
            ));
            write_reply(&s, serde_json::to_vec(&reply).unwrap_or_default())?;
            return Ok(());
        }
        if stop.load(Relaxed) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            COUNTERS.timed_out.fetch_add(1, Relaxed);
            let line = error_line(format!(
                "no complete request within {} s; closing (send one JSON object per line)",
                REQUEST_DEADLINE.as_secs()
            ));
            let fd = s.as_raw_fd();
            refuse(&mut s, fd, &line);
            return Ok(());
        }
        s.set_read_timeout(Some(left.min(SLICE)))?;
        let want = chunk.len().min(MAX_REQUEST - buf.len());
        match s.read(&mut chunk[..want]) {
            Ok(0) => {
                // A last request without a newline is still answered.
                if !buf.iter().all(|b| b.is_ascii_whitespace()) {
                    let reply = proto::answer_line(&buf, tel);
                    write_reply(&s, reply)?;
                }
                return Ok(());
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes one reply line within [`WRITE_DEADLINE`].
fn write_reply(s: &UnixStream, mut text: Vec<u8>) -> std::io::Result<()> {
    text.push(b'\n');
    let mut w: &UnixStream = s;
    let r = write_until(
        &mut w,
        &|d| s.set_write_timeout(Some(d)),
        &text,
        Instant::now() + WRITE_DEADLINE,
    );
    if r.as_ref().is_err_and(|e| e.kind() == ErrorKind::TimedOut) {
        COUNTERS.timed_out.fetch_add(1, Relaxed);
    }
    r
}

#[cfg(test)]
pub(crate) mod test {
    use super::*;
    use crate::config::FileConfig;
    use crate::engine::Engine;
    use crate::stats::{ReaperStats, Stats};
    use std::io::{BufRead as _, BufReader};
    use std::os::unix::process::CommandExt as _;

    /// A Telemetry over a real engine built from examples/daemon.toml.
    pub(crate) fn telemetry() -> Arc<Telemetry> {
        let text = include_str!("../../../../examples/daemon.toml");
        let s = FileConfig::parse(text, "examples/daemon.toml")
            .and_then(|f| f.validate("examples/daemon.toml"))
            .unwrap();
        let xcfg = crate::run::xlat_config(&s, s.tun.mtu);
        Arc::new(Telemetry {
            engine: Engine::new(&s, xcfg).unwrap(),
            workers: vec![Arc::new(Stats::default())],
            reaper: Arc::new(ReaperStats::default()),
            maplog: Default::default(),
            mapping_log_enabled: false,
            started: Instant::now(),
            prefix: s.prefix.to_string(),
            prefix_origin: "test".into(),
            pool: s.pool.clone(),
            fast_path: None,
        })
    }

    /// A control server on a fresh socket path; stopped (and its
    /// directory removed) on drop.
    struct Server {
        dir: PathBuf,
        path: PathBuf,
        stop: Arc<AtomicBool>,
        srv: Option<ControlServer>,
    }

    impl Server {
        fn start(name: &str) -> Server {
            let dir = std::env::temp_dir().join(format!("nat64-ctl-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let path = dir.join("control.sock");
            let stop = Arc::new(AtomicBool::new(false));
            let srv = spawn(&path, telemetry(), stop.clone()).unwrap();
            Server {
                dir,
                path,
                stop,
                srv: Some(srv),
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Relaxed);
            if let Some(s) = self.srv.take() {
                s.stop();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// Sends `req` on a new connection and reads one reply line.
    fn ask(path: &Path, req: &str) -> (serde_json::Value, Duration) {
        let t0 = Instant::now();
        let mut s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
        let _ = s.write_all(format!("{req}\n").as_bytes());
        let mut line = String::new();
        BufReader::new(&s).read_line(&mut line).unwrap();
        (serde_json::from_str(&line).unwrap(), t0.elapsed())
    }

    /// Issue 11 #11: 20 idle connections used to make `stats` wait 31 s
    /// (one connection at a time); now it is answered at once.
    #[test]
    fn stats_answered_within_1s_with_20_idle_connections() {
        let srv = Server::start("idle20");
        let idle: Vec<UnixStream> = (0..20)
            .map(|_| UnixStream::connect(&srv.path).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        let (v, took) = ask(&srv.path, r#"{"cmd":"stats"}"#);
        assert_eq!(v["ok"], true, "{v}");
        assert!(v["result"]["traffic"].is_object(), "{v}");
        assert!(took < Duration::from_secs(1), "stats took {took:?}");
        drop(idle);
    }

    /// Past MAX_CONNS open connections the next one is told at once and
    /// counted; once one closes, a new one is served again.
    #[test]
    fn connection_cap_refuses_the_33rd_at_once() {
        let srv = Server::start("cap");
        let mut idle: Vec<UnixStream> = (0..MAX_CONNS)
            .map(|_| UnixStream::connect(&srv.path).unwrap())
            .collect();
        // Let the accept thread take them all.
        let t0 = Instant::now();
        while srv.srv.as_ref().unwrap().slots.active() < MAX_CONNS {
            assert!(t0.elapsed() < Duration::from_secs(2));
            std::thread::sleep(Duration::from_millis(5));
        }
        let before = COUNTERS.refused_busy.load(Relaxed);
        let (v, took) = ask(&srv.path, r#"{"cmd":"stats"}"#);
        assert_eq!(v["ok"], false, "{v}");
        assert!(v["error"].as_str().unwrap().contains("busy"), "{v}");
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert!(COUNTERS.refused_busy.load(Relaxed) > before);
        idle.pop();
        let t0 = Instant::now();
        while srv.srv.as_ref().unwrap().slots.active() >= MAX_CONNS {
            assert!(t0.elapsed() < Duration::from_secs(2));
            std::thread::sleep(Duration::from_millis(5));
        }
        let (v, _) = ask(&srv.path, r#"{"cmd":"pool"}"#);
        assert_eq!(v["ok"], true, "{v}");
    }

    /// A connection that sends half a request and stops is closed after
    /// REQUEST_DEADLINE with a line saying why; one that keeps sending
    /// requests is served all along.
    #[test]
    fn partial_request_closed_after_the_deadline() {
        let srv = Server::start("deadline");
        let mut s = UnixStream::connect(&srv.path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(br#"{"cmd":"st"#).unwrap();
        let t0 = Instant::now();
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut s, &mut text);
        let took = t0.elapsed();
        assert!(
            took >= REQUEST_DEADLINE - Duration::from_millis(300)
                && took < REQUEST_DEADLINE + Duration::from_secs(1),
            "{took:?}"
        );
        assert!(text.contains("no complete request within 5 s"), "{text}");
        // Several requests on one connection, each within the deadline.
        let s = UnixStream::connect(&srv.path).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        for _ in 0..3 {
            (&s).write_all(b"{\"cmd\":\"pool\"}\n").unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with(r#"{"ok":true"#), "{line}");
        }
    }

    /// SO_PEERCRED: with the socket loosened to 0666, a user that is
    /// neither root nor the daemon's gets an error line, and is counted.
    /// (Root only: it runs a client as uid 65534.)
    #[test]
    fn peer_neither_root_nor_daemon_uid_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIP peer_neither_root_nor_daemon_uid_is_refused: needs root");
            return;
        }
        let srv = Server::start("peer");
        std::fs::set_permissions(&srv.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&srv.path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let before = COUNTERS.refused_peer.load(Relaxed);
        let script = format!(
            "import socket; s = socket.socket(socket.AF_UNIX); s.connect({:?}); \
             s.settimeout(5); print(s.makefile().readline(), end='')",
            srv.path.display().to_string()
        );
        let o = std::process::Command::new("python3")
            .args(["-c", &script])
            .uid(65534)
            .gid(65534)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "{out}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["ok"], false, "{v}");
        let e = v["error"].as_str().unwrap();
        assert!(
            e.contains("permission denied") && e.contains("uid 65534"),
            "{e}"
        );
        assert!(COUNTERS.refused_peer.load(Relaxed) > before);
        // Root is still served.
        let (v, _) = ask(&srv.path, r#"{"cmd":"stats"}"#);
        assert_eq!(v["ok"], true);
        assert!(v["result"]["control"]["refused_peer"].as_u64().unwrap() > before);
    }
}
