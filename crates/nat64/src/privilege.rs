//! Least privilege (issue 11): once the TUN, routes, nft table and sockets
//! are set up, the daemon keeps only what it needs to run.
//!
//! * The main thread keeps **CAP_NET_ADMIN** and nothing else: at exit it
//!   removes the routes, the TUN address and the nft table it installed
//!   (through `ip` and `nft`, which inherit exactly that capability: it is
//!   also made inheritable and ambient, and every other capability leaves
//!   the bounding set).
//! * Every other thread — packet workers, reaper, control socket, metrics,
//!   mapping log, lease journal — drops **all** capabilities when it starts:
//!   it works on descriptors opened before, or on files its user owns.
//! * With `user = "NAME"` the process switches to that user (and its
//!   primary group, no supplementary groups) before any of those threads
//!   starts, keeping CAP_NET_ADMIN across the switch.
//!
//! Capabilities are per thread on Linux, so the order in `nat64 run` is:
//! everything that needs root, then [`reduce`], then the threads.

use crate::config::RunAs;
use anyhow::Context as _;
use caps::{CapSet, Capability, CapsHashSet};
use tracing::info;

/// The main thread after setup: CAP_NET_ADMIN only, optionally as `user`.
pub fn reduce(user: Option<&RunAs>) -> anyhow::Result<()> {
    if !caps::has_cap(None, CapSet::Effective, Capability::CAP_NET_ADMIN).unwrap_or(false) {
        // Not privileged to begin with (tests run as root; an operator may
        // run with ambient CAP_NET_ADMIN): nothing to give up but the rest.
        return drop_all_but(&[]);
    }
    if let Some(u) = user {
        // Keep the permitted set across setuid (the effective set is
        // cleared by it and raised again below).
        // SAFETY: plain prctl/setgroups/setresgid/setresuid calls with
        // valid arguments.
        unsafe {
            if libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error()).context("prctl(PR_SET_KEEPCAPS)");
            }
            if libc::setgroups(0, std::ptr::null()) != 0 {
                return Err(std::io::Error::last_os_error())
                    .context("dropping supplementary groups");
            }
            if libc::setresgid(u.gid, u.gid, u.gid) != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("switching to group {}", u.gid));
            }
            if libc::setresuid(u.uid, u.uid, u.uid) != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("switching to user {} ({})", u.name, u.uid));
            }
        }
    }
    drop_all_but(&[Capability::CAP_NET_ADMIN])?;
    info!(
        "privileges reduced: {} with CAP_NET_ADMIN only (to remove routes and nft at exit)",
        user.map_or("root".to_string(), |u| format!(
            "user {} ({})",
            u.name, u.uid
        ))
    );
    Ok(())
}

/// For a thread that needs no capability at all (called at its start).
/// Failure is not fatal: the thread runs with what it inherited.
pub fn drop_thread_caps() {
    if let Err(e) = drop_all_but(&[]) {
        tracing::debug!("could not drop this thread's capabilities: {e:#}");
    }
}

fn drop_all_but(keep: &[Capability]) -> anyhow::Result<()> {
    let keep: CapsHashSet = keep.iter().copied().collect();
    // The bounding set needs CAP_SETPCAP to shrink; do it while we have it.
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETPCAP).unwrap_or(false) {
        for c in caps::all() {
            if !keep.contains(&c) {
                let _ = caps::drop(None, CapSet::Bounding, c);
            }
        }
    }
    caps::clear(None, CapSet::Ambient).context("clearing ambient capabilities")?;
    caps::set(None, CapSet::Inheritable, &keep).context("setting inheritable capabilities")?;
    caps::set(None, CapSet::Effective, &keep).context("setting effective capabilities")?;
    caps::set(None, CapSet::Permitted, &keep).context("setting permitted capabilities")?;
    for c in &keep {
        // Children (`ip`, `nft` at exit) get it too, also as a non-root user.
        caps::raise(None, CapSet::Ambient, *c).context("raising an ambient capability")?;
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    /// In a thread of its own (capabilities are per thread): after
    /// `drop_thread_caps` the thread has none; the test process keeps its.
    #[test]
    fn a_thread_drops_all_its_capabilities() {
        let before = caps::read(None, CapSet::Effective).unwrap();
        let inside = std::thread::spawn(|| {
            drop_thread_caps();
            caps::read(None, CapSet::Effective).unwrap()
        })
        .join()
        .unwrap();
        assert!(inside.is_empty(), "{inside:?}");
        assert_eq!(caps::read(None, CapSet::Effective).unwrap(), before);
    }
}
