//! The kernel-mode lease file (`state-file`, docs/operator.md §2.2): which IPv6 client
//! has which inner IPv4 address, so that neither a restart nor a crash
//! renumbers clients. Renumbering is not cosmetic: the kernel's conntrack
//! keeps translating the old address, so after it one client's replies are
//! delivered to another (issue 11 #2).
//!
//! Format: text, one record a line, applied in order:
//!
//! ```text
//! # nat64 kernel-mode leases: IPv6 client, inner IPv4
//! 2001:db8::5 100.64.0.1        a lease (replaces any earlier one of the client)
//! - 2001:db8::5                 the client's lease ended
//! ```
//!
//! * **Durable.** A [`Journal`] thread appends every change of the
//!   persisted set (a lease that traffic came back through, or one that
//!   expired) within [`FLUSH_EVERY`] and `fdatasync`s it, off the packet
//!   path: it polls the engine's lease generation and diffs snapshots.
//!   `kill -9` loses at most the changes of the last interval.
//! * **Compacted.** At start and when the journal holds far more lines than
//!   leases, the file is rewritten whole: temporary file, fsync, rename,
//!   fsync of the directory.
//! * **Robust.** Read as bytes, line by line: a line that is not UTF-8 or
//!   not a record is skipped and logged with its line number; the rest is
//!   used. A file with bad lines is kept as `NAME.bad-<unix time>` before it
//!   is rewritten, so nothing is lost to a bad byte (issue 11 #3).

use anyhow::Context as _;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// How often the journal looks for changes.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);

const HEADER: &str = "# nat64 kernel-mode leases: IPv6 client, inner IPv4\n";

/// What [`parse`] found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The leases, by client.
    pub leases: BTreeMap<Ipv6Addr, Ipv4Addr>,
    /// Lines that were skipped: (line number, why).
    pub bad: Vec<(usize, String)>,
    /// Records read (adds and removals).
    pub records: usize,
}

/// Parses the bytes of a lease file (see the module doc).
pub fn parse(bytes: &[u8]) -> Parsed {
    let mut p = Parsed::default();
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        let Ok(line) = std::str::from_utf8(raw) else {
            p.bad.push((n, "not UTF-8".into()));
            continue;
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut it = line.split_whitespace();
        let (a, b, rest) = (it.next(), it.next(), it.next());
        if rest.is_some() {
            p.bad.push((n, format!("too many fields: {line}")));
            continue;
        }
        match (a, b) {
            (Some("-"), Some(v6)) => match v6.parse::<Ipv6Addr>() {
                Ok(v6) => {
                    p.leases.remove(&v6);
                    p.records += 1;
                }
                Err(_) => p.bad.push((n, format!("not an IPv6 address: {v6}"))),
            },
            (Some(v6), Some(v4)) => match (v6.parse::<Ipv6Addr>(), v4.parse::<Ipv4Addr>()) {
                (Ok(v6), Ok(v4)) => {
                    // One address, one client: a later record wins.
                    p.leases.retain(|_, a| *a != v4);
                    p.leases.insert(v6, v4);
                    p.records += 1;
                }
                _ => p.bad.push((n, format!("not `IPV6 IPV4`: {line}"))),
            },
            _ => p.bad.push((n, format!("not a lease record: {line}"))),
        }
    }
    p
}

/// Reads the lease file at `path` (missing: created empty). Bad lines are
/// logged; a file with bad lines is copied to `NAME.bad-<time>` first.
/// Then the file is rewritten compacted. Returns the leases.
pub fn load(path: &Path) -> anyhow::Result<Vec<(Ipv6Addr, Ipv4Addr)>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_snapshot(path, &[])?;
            return Ok(Vec::new());
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "reading the lease file {}; fix its permissions, or move it away to start \
                     without leases",
                    path.display()
                )
            })
        }
    };
    let p = parse(&bytes);
    for (n, why) in &p.bad {
        warn!("{}:{n}: skipped ({why})", path.display());
    }
    if !p.bad.is_empty() {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let keep = sibling(path, &format!("bad-{secs}"));
        std::fs::copy(path, &keep)
            .with_context(|| format!("keeping the damaged lease file as {}", keep.display()))?;
        warn!(
            "{}: {} bad line(s) skipped, {} lease(s) kept; the original is kept as {}",
            path.display(),
            p.bad.len(),
            p.leases.len(),
            keep.display()
        );
    }
    let leases: Vec<_> = p.leases.into_iter().collect();
    write_snapshot(path, &leases)?;
    Ok(leases)
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".");
    name.push(suffix);
    path.with_file_name(name)
}

/// Writes `leases` as the whole file: temporary file, fsync, rename,
/// fsync of the directory.
pub fn write_snapshot(path: &Path, leases: &[(Ipv6Addr, Ipv4Addr)]) -> anyhow::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating {} for the lease file", dir.display()))?;
    }
    let mut text = String::from(HEADER);
    for (a6, a4) in leases {
        text.push_str(&format!("{a6} {a4}\n"));
    }
    let tmp = sibling(path, "tmp");
    let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    if let Some(dir) = dir {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

/// Appends the changes from `old` to `new` to the open journal and
/// fdatasyncs it. Returns the number of lines written.
fn append_changes(
    f: &mut File,
    old: &BTreeMap<Ipv6Addr, Ipv4Addr>,
    new: &BTreeMap<Ipv6Addr, Ipv4Addr>,
) -> std::io::Result<usize> {
    let mut text = String::new();
    for (a6, a4) in new {
        if old.get(a6) != Some(a4) {
            text.push_str(&format!("{a6} {a4}\n"));
        }
    }
    for a6 in old.keys().filter(|a| !new.contains_key(a)) {
        text.push_str(&format!("- {a6}\n"));
    }
    if text.is_empty() {
        return Ok(0);
    }
    f.write_all(text.as_bytes())?;
    f.sync_data()?;
    Ok(text.lines().count())
}

/// The journal thread: keeps the file in step with the engine's persisted
/// leases.
pub struct Journal {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Journal {
    /// Starts journalling to `path` (already loaded and compacted by
    /// [`load`], holding `initial`). `generation` and `snapshot` read the
    /// engine.
    pub fn start(
        path: &Path,
        initial: &[(Ipv6Addr, Ipv4Addr)],
        generation: impl Fn() -> u64 + Send + 'static,
        snapshot: impl Fn() -> Vec<(Ipv6Addr, Ipv4Addr)> + Send + 'static,
    ) -> anyhow::Result<Journal> {
        let mut f = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening the lease file {} to append", path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let st = stop.clone();
        let path = path.to_path_buf();
        let mut written: BTreeMap<_, _> = initial.iter().copied().collect();
        let thread = std::thread::Builder::new()
            .name("nat64-leases".into())
            .spawn(move || {
                crate::privilege::drop_thread_caps();
                let mut seen = u64::MAX;
                let mut lines = written.len();
                let mut failing = false;
                loop {
                    let last = st.load(Ordering::Relaxed);
                    let g = generation();
                    if g != seen {
                        let now: BTreeMap<_, _> = snapshot().into_iter().collect();
                        match append_changes(&mut f, &written, &now) {
                            Ok(n) => {
                                lines += n;
                                written = now;
                                seen = g;
                                if failing {
                                    info!("lease file {} writable again", path.display());
                                    failing = false;
                                }
                            }
                            Err(e) if !failing => {
                                warn!("appending to the lease file {}: {e}", path.display());
                                failing = true;
                            }
                            Err(_) => {}
                        }
                        // Compact when removals and replacements dominate.
                        if lines > 2 * written.len() + 1024 {
                            let v: Vec<_> = written.iter().map(|(a, b)| (*a, *b)).collect();
                            match write_snapshot(&path, &v).and_then(|_| {
                                OpenOptions::new()
                                    .append(true)
                                    .open(&path)
                                    .context("reopening the lease file")
                            }) {
                                Ok(nf) => {
                                    f = nf;
                                    lines = written.len();
                                }
                                Err(e) => warn!("compacting {}: {e:#}", path.display()),
                            }
                        }
                    }
                    if last {
                        break;
                    }
                    std::thread::sleep(FLUSH_EVERY);
                }
            })
            .context("spawning the lease journal thread")?;
        Ok(Journal {
            stop,
            thread: Some(thread),
        })
    }

    /// Writes what is left and stops.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn a6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }
    fn a4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn records_apply_in_order() {
        let p = parse(
            b"# header\n2001:db8::1 100.64.0.1\n2001:db8::2 100.64.0.2\n- 2001:db8::1\n\
              2001:db8::3 100.64.0.2\n",
        );
        assert!(p.bad.is_empty());
        assert_eq!(p.records, 4);
        // ::2's address went to ::3 later: one address, one client.
        assert_eq!(
            p.leases.into_iter().collect::<Vec<_>>(),
            vec![(a6("2001:db8::3"), a4("100.64.0.2"))]
        );
    }

    /// Issue 11 #3: one non-UTF-8 byte used to make the whole file ignored
    /// (and then overwritten empty).
    #[test]
    fn bad_byte_skips_one_line_only() {
        let mut b = b"2001:db8::1 100.64.0.1\n".to_vec();
        b.extend_from_slice(b"2001:db8::2 100.64.0.\xff2\n");
        b.extend_from_slice(b"garbage\n2001:db8::3 100.64.0.3\n");
        let p = parse(&b);
        assert_eq!(p.leases.len(), 2);
        assert_eq!(p.bad.len(), 2);
        assert_eq!(p.bad[0], (2, "not UTF-8".to_string()));
        assert_eq!(p.bad[1].0, 3);
    }

    #[test]
    fn load_keeps_a_damaged_file_and_compacts() {
        let dir = std::env::temp_dir().join(format!("nat64-leases-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("leases");
        let mut b = b"2001:db8::1 100.64.0.1\n\xfe\xff\n- 2001:db8::1\n".to_vec();
        b.extend_from_slice(b"2001:db8::9 100.64.0.9\n");
        std::fs::write(&path, &b).unwrap();
        let leases = load(&path).unwrap();
        assert_eq!(leases, vec![(a6("2001:db8::9"), a4("100.64.0.9"))]);
        let kept: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("leases.bad-"))
            .collect();
        assert_eq!(kept.len(), 1, "the damaged original is kept");
        assert_eq!(std::fs::read(kept[0].path()).unwrap(), b);
        let now = std::fs::read_to_string(&path).unwrap();
        assert_eq!(now, format!("{HEADER}2001:db8::9 100.64.0.9\n"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn journal_appends_changes_durably() {
        let dir = std::env::temp_dir().join(format!("nat64-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("leases");
        let initial = load(&path).unwrap();
        let state = Arc::new(std::sync::Mutex::new((0u64, Vec::new())));
        let (s1, s2) = (state.clone(), state.clone());
        let j = Journal::start(
            &path,
            &initial,
            move || s1.lock().unwrap().0,
            move || s2.lock().unwrap().1.clone(),
        )
        .unwrap();
        *state.lock().unwrap() = (1, vec![(a6("2001:db8::5"), a4("100.64.0.1"))]);
        std::thread::sleep(FLUSH_EVERY * 4);
        // What a crash right now would leave behind.
        let p = parse(&std::fs::read(&path).unwrap());
        assert_eq!(p.leases.get(&a6("2001:db8::5")), Some(&a4("100.64.0.1")));
        *state.lock().unwrap() = (2, vec![]);
        j.stop();
        let p = parse(&std::fs::read(&path).unwrap());
        assert!(p.leases.is_empty());
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("- 2001:db8::5"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
