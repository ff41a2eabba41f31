//! The control socket server: a Unix stream socket (owner-only, mode 0600,
//! unless the operator loosens it) served by one thread, off the data
//! plane. Clients are handled one at a time with read/write timeouts, a
//! per-connection deadline and a bounded request size, so a slow or hostile
//! client can delay other control clients by at most [`CONN_DEADLINE`] and
//! never the packet workers.

use super::proto::{self, Reply, MAX_REQUEST};
use super::Telemetry;
use anyhow::Context as _;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{DirBuilderExt as _, FileTypeExt as _, PermissionsExt as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Longest a single client connection is served.
pub const CONN_DEADLINE: Duration = Duration::from_secs(10);
/// Per read / write call.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// A running control socket; removes its file when stopped.
pub struct ControlServer {
    path: PathBuf,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ControlServer {
    /// Waits for the thread (after the stop flag was set) and removes the
    /// socket file.
    pub fn stop(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
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
    let thread = std::thread::Builder::new()
        .name("nat64-control".into())
        .spawn(move || serve(l, &tel, &stop))
        .context("spawning the control thread")?;
    Ok(ControlServer {
        path: path.to_path_buf(),
        thread: Some(thread),
    })
}

fn serve(l: UnixListener, tel: &Telemetry, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((s, _)) => {
                if let Err(e) = client(s, tel) {
                    tracing::debug!("control client: {e}");
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

/// Serves one connection: request lines until EOF, error or deadline.
fn client(mut s: UnixStream, tel: &Telemetry) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let t0 = Instant::now();
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        // Answer every complete line already buffered.
        while let Some(nl) = buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = buf.drain(..=nl).collect();
            let line = &line[..line.len() - 1];
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let reply = proto::answer(line, tel);
            write_reply(&mut s, &reply)?;
        }
        if buf.len() >= MAX_REQUEST {
            let reply = Reply::err(format!(
                "request longer than {MAX_REQUEST} bytes without a newline; send one JSON \
                 object per line"
            ));
            write_reply(&mut s, &reply)?;
            return Ok(());
        }
        if t0.elapsed() > CONN_DEADLINE {
            return Ok(());
        }
        let want = chunk.len().min(MAX_REQUEST - buf.len());
        match s.read(&mut chunk[..want]) {
            Ok(0) => {
                // A last request without a newline is still answered.
                if !buf.iter().all(|b| b.is_ascii_whitespace()) {
                    let reply = proto::answer(&buf, tel);
                    write_reply(&mut s, &reply)?;
                }
                return Ok(());
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn write_reply(s: &mut UnixStream, r: &Reply) -> std::io::Result<()> {
    let mut text = serde_json::to_vec(r).unwrap_or_else(|_| {
        br#"{"ok":false,"error":"internal error encoding the reply"}"#.to_vec()
    });
    text.push(b'\n');
    s.write_all(&text)?;
    s.flush()
}
