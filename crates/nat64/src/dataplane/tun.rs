//! The TUN edge (tun-rs): create or attach, one file descriptor per queue.

use crate::config::{TunMode, TunSection};
use anyhow::{bail, Context as _};
use std::os::fd::AsRawFd;
use tun_rs::{DeviceBuilder, SyncDevice};

/// The opened TUN: one device handle per queue, the MTU in force.
pub struct Tun {
    pub name: String,
    pub queues: Vec<SyncDevice>,
    pub mtu: u16,
    /// True when this process created the interface (it disappears when the
    /// last queue closes, taking its routes along).
    pub created: bool,
}

/// Number of worker queues for `tun.queues` (0 = one per CPU).
/// The TUN queues (= workers) to open: `tun.queues`, or one per CPU,
/// never more than a TUN takes (Linux `MAX_TAP_QUEUES`, 256).
pub fn queue_count(cfg: &TunSection) -> usize {
    let n = if cfg.queues > 0 {
        usize::from(cfg.queues)
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    n.min(MAX_QUEUES)
}

/// Linux's limit of queues on one TUN (`MAX_TAP_QUEUES`).
pub const MAX_QUEUES: usize = 256;

fn iface_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// Opens the TUN as configured.
pub fn open(cfg: &TunSection) -> anyhow::Result<Tun> {
    let n = queue_count(cfg).max(1);
    let exists = iface_exists(&cfg.name);
    match cfg.mode {
        TunMode::Create => {
            if exists {
                tracing::info!(
                    "interface {} exists; attaching to it (tun.mode = \"create\" still sets MTU and \
                     brings it up)",
                    cfg.name
                );
            }
            let first = DeviceBuilder::new()
                .name(&cfg.name)
                .mtu(cfg.mtu)
                .multi_queue(n > 1)
                .offload(cfg.offload)
                .tx_queue_len(cfg.txqueuelen)
                .enable(true)
                .build_sync()
                .with_context(|| {
                    format!(
                        "creating TUN {} (needs root or CAP_NET_ADMIN and /dev/net/tun; if a \
                         persistent TUN of that name exists with other flags, delete it with \
                         `ip link del {}` or use tun.mode = \"attach\")",
                        cfg.name, cfg.name
                    )
                })?;
            let mut queues = vec![first];
            clone_queues(&mut queues, n, &cfg.name)?;
            Ok(Tun {
                name: cfg.name.clone(),
                queues,
                mtu: cfg.mtu,
                created: !exists,
            })
        }
        TunMode::Attach => {
            if !exists {
                bail!(
                    "tun.mode = \"attach\" but interface {} does not exist; create it first (`ip \
                     tuntap add dev {} mode tun multi_queue`) or use tun.mode = \"create\"",
                    cfg.name,
                    cfg.name
                );
            }
            // Try the queue layout asked for, then the other one: the flags
            // must match those the persistent device was made with.
            let try_open = |mq: bool| {
                DeviceBuilder::new()
                    .name(&cfg.name)
                    .multi_queue(mq)
                    .offload(cfg.offload)
                    .inherit_enable_state()
                    .build_sync()
            };
            let (first, mq) = match try_open(n > 1) {
                Ok(d) => (d, n > 1),
                Err(e1) => match try_open(n <= 1) {
                    Ok(d) => (d, n <= 1),
                    Err(_) => {
                        return Err(e1).with_context(|| {
                            format!(
                                "attaching to TUN {} (is another process holding it?)",
                                cfg.name
                            )
                        })
                    }
                },
            };
            let mtu = first
                .mtu()
                .with_context(|| format!("reading the MTU of {}", cfg.name))?;
            let mut queues = vec![first];
            if mq {
                clone_queues(&mut queues, n, &cfg.name)?;
            } else if n > 1 {
                tracing::warn!(
                    "TUN {} is single-queue: running 1 worker instead of {n}",
                    cfg.name
                );
            }
            Ok(Tun {
                name: cfg.name.clone(),
                queues,
                mtu,
                created: false,
            })
        }
    }
}

fn clone_queues(queues: &mut Vec<SyncDevice>, n: usize, name: &str) -> anyhow::Result<()> {
    while queues.len() < n {
        let q = queues[0]
            .try_clone()
            .with_context(|| format!("opening queue {} of TUN {name}", queues.len()))?;
        queues.push(q);
    }
    for q in queues.iter() {
        q.set_nonblocking(true)
            .with_context(|| format!("setting TUN {name} non-blocking"))?;
    }
    Ok(())
}

/// Waits until `dev` is readable or `timeout_ms` passes.
pub fn wait_readable(dev: &SyncDevice, timeout_ms: i32) -> std::io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: dev.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, count 1.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(e);
    }
    Ok(r > 0)
}
