//! systemd readiness notification (`sd_notify(3)`), for `Type=notify` in
//! contrib/systemd/nat64.service: one datagram with `READY=1` to the Unix
//! socket named by `$NOTIFY_SOCKET` (a path, or `@name` for the abstract
//! namespace). Without `$NOTIFY_SOCKET` (not started by systemd) it does
//! nothing.

use std::os::unix::net::UnixDatagram;

/// Sends `state` (e.g. `"READY=1"`, `"RELOADING=1"`, `"STOPPING=1"`) to the
/// service manager. Returns `Ok(false)` when there is none to tell.
pub fn notify(state: &str) -> std::io::Result<bool> {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let sock = UnixDatagram::unbound()?;
    let bytes = path.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt as _;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
        sock.send_to_addr(state.as_bytes(), &addr)?;
    } else {
        sock.send_to(state.as_bytes(), &path)?;
    }
    Ok(true)
}

/// Tells systemd the daemon is up (TUN, routes and workers ready); logs
/// instead of failing if the notification cannot be sent.
pub fn ready() {
    if let Err(e) = notify("READY=1") {
        tracing::warn!("could not notify systemd (NOTIFY_SOCKET) of readiness: {e}");
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn sends_ready_to_the_socket() {
        let dir = std::env::temp_dir().join(format!("nat64-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        // The only test that touches NOTIFY_SOCKET.
        std::env::set_var("NOTIFY_SOCKET", &path);
        assert!(notify("READY=1").unwrap());
        std::env::remove_var("NOTIFY_SOCKET");
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        assert!(!notify("READY=1").unwrap());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
