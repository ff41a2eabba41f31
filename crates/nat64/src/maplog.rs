//! The mapping log (SPEC §6, `mapping-log = "/path"`): one line per
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
//! ` static`. The engine's event hook only puts the event on a bounded
//! channel (`try_send`: never blocks a worker); a writer thread formats
//! and appends. Events that find the channel full are counted as dropped
//! (`nat64_mapping_log_dropped_total`). SIGHUP reopens the file (after
//! logrotate moved it).

use crate::control::MapLogCounters;
use anyhow::Context as _;
use nat64_core::state::{MappingEvent, MappingEventKind};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Events buffered between the engine and the writer.
pub const CHANNEL: usize = 65536;

enum Msg {
    Event(MappingEvent),
    Reopen,
    Stop,
}

/// A running mapping-log writer.
pub struct MapLog {
    tx: SyncSender<Msg>,
    counters: Arc<MapLogCounters>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn open(path: &Path) -> anyhow::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "creating the directory of the mapping log {}; create it or change `mapping-log`",
                dir.display()
            )
        })?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .with_context(|| {
            format!(
                "opening the mapping log {} for appending; check the directory and permissions, \
                 or set `mapping-log = \"\"` to disable it",
                path.display()
            )
        })
}

impl MapLog {
    /// Opens `path` (append) and starts the writer. `epoch` is the wall
    /// time of the engine's timestamp 0.
    pub fn start(
        path: &Path,
        epoch: SystemTime,
        counters: Arc<MapLogCounters>,
    ) -> anyhow::Result<MapLog> {
        let file = open(path)?;
        let (tx, rx) = sync_channel(CHANNEL);
        let c = counters.clone();
        let p = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("nat64-maplog".into())
            .spawn(move || writer(rx, file, p, epoch, &c))
            .context("spawning the mapping-log writer")?;
        Ok(MapLog {
            tx,
            counters,
            thread: Some(thread),
        })
    }

    /// The engine event hook: enqueue, never block.
    pub fn hook(&self) -> impl Fn(&MappingEvent) + Send + Sync + 'static {
        let tx = self.tx.clone();
        let c = self.counters.clone();
        move |ev: &MappingEvent| {
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                tx.try_send(Msg::Event(*ev))
            {
                c.dropped.fetch_add(1, Relaxed);
            }
        }
    }

    /// Reopens the file (SIGHUP, after log rotation).
    pub fn reopen(&self) {
        let _ = self.tx.send(Msg::Reopen);
    }

    /// Writes what is queued and stops (call after the hook is removed).
    pub fn stop(mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn writer(rx: Receiver<Msg>, file: File, path: PathBuf, epoch: SystemTime, c: &MapLogCounters) {
    let mut out = Some(BufWriter::new(file));
    let mut errors_logged = 0u32;
    while let Ok(first) = rx.recv() {
        let mut stop = false;
        let mut msg = Some(first);
        while let Some(m) = msg.take() {
            match m {
                Msg::Event(ev) => {
                    let line = format_line(&ev, epoch);
                    let ok = out
                        .as_mut()
                        .is_some_and(|w| w.write_all(line.as_bytes()).is_ok());
                    if ok {
                        c.lines.fetch_add(1, Relaxed);
                    } else {
                        c.dropped.fetch_add(1, Relaxed);
                        if errors_logged < 5 {
                            errors_logged += 1;
                            tracing::warn!("mapping log {}: write failed", path.display());
                        }
                    }
                }
                Msg::Reopen => {
                    if let Some(mut w) = out.take() {
                        let _ = w.flush();
                    }
                    match open(&path) {
                        Ok(f) => out = Some(BufWriter::new(f)),
                        Err(e) => tracing::error!("{e:#}"),
                    }
                }
                Msg::Stop => stop = true,
            }
            if !stop {
                msg = rx.try_recv().ok();
            }
        }
        if let Some(w) = out.as_mut() {
            let _ = w.flush();
        }
        if stop {
            return;
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
}
