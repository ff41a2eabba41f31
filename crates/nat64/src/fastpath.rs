//! `fast-path = "tc-bpf"` (issue 13): established flows translated by the
//! tc-BPF program of `nat64-bpf` on the interfaces where client and IPv4
//! traffic arrive, so their packets never cross the TUN.
//!
//! The engine decides, the program only executes: the engine's flow hook
//! says when a session may leave it ([`FlowEvent::Established`]: TCP in
//! ESTABLISHED, UDP/ICMP echo with traffic both ways) and when it must come
//! back ([`FlowEvent::Closed`]: a FIN or RST, which the program never
//! translates, an idle ESTABLISHED session, expiry, `binding del`). This
//! module's thread installs and removes both directions of each such flow
//! and, once a second, refreshes the sessions whose entries carried
//! packets ([`state::Engine::refresh_flows`]), so RFC 6146 timers run as
//! they would without the fast path.
//!
//! Loading and attaching need privileges: [`prepare`] runs before the
//! daemon drops them; [`FastPathThread::start`] after, and the thread
//! keeps CAP_NET_ADMIN (inherited from the main thread) to detach a
//! netlink-attached program at exit. TCX links the kernel removes by itself
//! when the process dies, SIGKILL included.

use crate::config::Settings;
use nat64_bpf::{Config, FastPath, Forwarding};
use nat64_core::addr::Prefix;
use nat64_core::state::{self, FlowEvent, FlowPair};
use nat64_core::time::Timestamp;
use nat64_core::xlat::{L4Proto, Tuple4, Tuple6};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Events queued between the engine and the thread.
const QUEUE: usize = 65536;
/// Most flows the program's maps hold.
const MAX_FLOWS: u32 = 262_144;
/// How often the counters refresh session timers.
const REFRESH: Duration = Duration::from_secs(1);

/// What the fast path did (read by the stats dump at exit).
#[derive(Debug, Default)]
pub struct Counters {
    pub installed: AtomicU64,
    pub removed: AtomicU64,
    pub install_failed: AtomicU64,
    pub events_dropped: AtomicU64,
    pub refreshed: AtomicU64,
}

impl Counters {
    /// `key=value` pairs for the stats line (SIGUSR1, exit).
    pub fn render(&self) -> String {
        format!(
            "fast_path_installed={} fast_path_removed={} fast_path_install_failed={} \
             fast_path_events_dropped={} fast_path_refreshed={}",
            self.installed.load(Relaxed),
            self.removed.load(Relaxed),
            self.install_failed.load(Relaxed),
            self.events_dropped.load(Relaxed),
            self.refreshed.load(Relaxed)
        )
    }
}

/// The program loaded and attached, before privileges are dropped. None
/// (with a warning saying why) when the fast path cannot run here: the
/// daemon then translates everything through the TUN.
pub fn prepare(s: &Settings, tun: &str) -> Option<FastPath> {
    if s.fast_path_interfaces.is_empty() {
        return None;
    }
    // BPF hash maps are preallocated kernel memory (~130 B an entry, two
    // maps): at most 262,144 flows (~70 MB); flows beyond stay on the TUN
    // path (counted as install_failed), which is correct, only slower.
    let max = s.limits.max_sessions.clamp(1024, MAX_FLOWS);
    let mut fp = match FastPath::load(max) {
        Ok(fp) => fp,
        Err(e) => {
            warn!("fast path off: {e}; every packet goes through the TUN");
            return None;
        }
    };
    let fib_ifindex = nix_ifindex(tun);
    let cfg = Config {
        enabled: true,
        forwarding: Forwarding::Redirect { fib_ifindex },
        lowest_ipv6_mtu: s.ipv6_mtu,
        copy_tos: true,
        decrement_ttl: true,
    };
    if let Err(e) = fp.set_config(&cfg) {
        warn!("fast path off: {e}; every packet goes through the TUN");
        return None;
    }
    for ifname in &s.fast_path_interfaces {
        match fp.attach(ifname) {
            Ok(how) => info!("fast path: tc-bpf attached to {ifname} ingress ({how:?})"),
            Err(e) => {
                warn!("fast path off: {ifname}: {e}; every packet goes through the TUN");
                fp.detach_all();
                return None;
            }
        }
    }
    info!(
        "fast path on: established flows translated in the kernel on {} (up to {max} flows)",
        s.fast_path_interfaces.join(", ")
    );
    Some(fp)
}

fn nix_ifindex(name: &str) -> u32 {
    let Ok(c) = std::ffi::CString::new(name) else {
        return 0;
    };
    // SAFETY: a valid NUL-terminated string; if_nametoindex only reads it.
    unsafe { libc::if_nametoindex(c.as_ptr()) }
}

/// The running fast path: the thread that feeds the program.
pub struct FastPathThread {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    pub counters: Arc<Counters>,
}

impl FastPathThread {
    /// Hooks the engine and starts the thread. `now` is the engine's clock.
    pub fn start(
        fp: FastPath,
        engine: state::Engine,
        prefix: Prefix,
        now: impl Fn() -> Timestamp + Send + 'static,
    ) -> std::io::Result<FastPathThread> {
        let (tx, rx) = sync_channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        engine.set_flow_hook(move |ev| {
            if tx.try_send(ev).is_err() {
                c.events_dropped.fetch_add(1, Relaxed);
            }
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (st, c) = (stop.clone(), counters.clone());
        let handle = std::thread::Builder::new()
            .name("fast-path".into())
            .spawn(move || Feeder::new(fp, engine, prefix, c).run(rx, &st, now))?;
        Ok(FastPathThread {
            stop,
            handle: Some(handle),
            counters,
        })
    }

    /// Stops the thread; the program is detached as it ends.
    pub fn stop(mut self) {
        self.stop.store(true, Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The two map keys of a session and the outgoing tuples.
fn tuples(p: &FlowPair, prefix: Prefix) -> (Tuple6, Tuple4, Tuple4, Tuple6) {
    let icmp = p.proto == L4Proto::Icmp;
    let remote6 = prefix.embed(p.remote.0);
    // ICMP echo: the identifier is both "ports" (nat64_core::xlat::Tuple).
    let (rport6, rport4) = if icmp {
        (p.client.1, p.pool.1)
    } else {
        (p.remote.1, p.remote.1)
    };
    let in6 = Tuple6 {
        proto: p.proto,
        src: p.client.0,
        src_port: p.client.1,
        dst: remote6,
        dst_port: rport6,
    };
    let out4 = Tuple4 {
        proto: p.proto,
        src: p.pool.0,
        src_port: p.pool.1,
        dst: p.remote.0,
        dst_port: rport4,
    };
    (in6, out4, out4.reversed(), in6.reversed())
}

struct Feeder {
    fp: FastPath,
    engine: state::Engine,
    prefix: Prefix,
    c: Arc<Counters>,
    /// Installed flows and the last `last_seen_ns` of each direction.
    flows: HashMap<FlowPair, (u64, u64)>,
}

impl Feeder {
    fn new(fp: FastPath, engine: state::Engine, prefix: Prefix, c: Arc<Counters>) -> Feeder {
        Feeder {
            fp,
            engine,
            prefix,
            c,
            flows: HashMap::new(),
        }
    }

    fn run(mut self, rx: Receiver<FlowEvent>, stop: &AtomicBool, now: impl Fn() -> Timestamp) {
        let mut last_refresh = Instant::now();
        while !stop.load(Relaxed) {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(ev) => self.apply(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_refresh.elapsed() >= REFRESH {
                last_refresh = Instant::now();
                self.refresh(now());
            }
        }
        self.fp.detach_all();
        info!(
            "fast path: detached ({} flows installed, {} removed over the run)",
            self.c.installed.load(Relaxed),
            self.c.removed.load(Relaxed)
        );
    }

    fn apply(&mut self, ev: FlowEvent) {
        match ev {
            FlowEvent::Established(p) => {
                let (in6, out4, in4, out6) = tuples(&p, self.prefix);
                let r = self
                    .fp
                    .insert_6to4(&in6, &out4, 0)
                    .and_then(|()| self.fp.insert_4to6(&in4, &out6, 0));
                match r {
                    Ok(()) => {
                        self.flows.insert(p, (0, 0));
                        self.c.installed.fetch_add(1, Relaxed);
                    }
                    Err(e) => {
                        // Full table or a map error: the flow stays in the
                        // engine (correct, only slower).
                        let _ = self.fp.remove_6to4(&in6);
                        self.c.install_failed.fetch_add(1, Relaxed);
                        debug!("fast path: {p:?} stays on the TUN path: {e}");
                    }
                }
            }
            FlowEvent::Closed(p) => {
                let (in6, _, in4, _) = tuples(&p, self.prefix);
                let _ = self.fp.remove_6to4(&in6);
                let _ = self.fp.remove_4to6(&in4);
                if self.flows.remove(&p).is_some() {
                    self.c.removed.fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// Sessions whose entries carried packets since the last look get their
    /// timers refreshed; entries of sessions the engine no longer has go.
    fn refresh(&mut self, now: Timestamp) {
        let mut moved = Vec::new();
        for (p, (seen6, seen4)) in self.flows.iter_mut() {
            let (in6, _, in4, _) = tuples(p, self.prefix);
            let a = self.fp.counters_6to4(&in6).map_or(0, |c| c.last_seen_ns);
            let b = self.fp.counters_4to6(&in4).map_or(0, |c| c.last_seen_ns);
            if a > *seen6 || b > *seen4 {
                (*seen6, *seen4) = (a, b);
                moved.push(*p);
            }
        }
        if moved.is_empty() {
            return;
        }
        let alive = self.engine.refresh_flows(&moved, now);
        self.c.refreshed.fetch_add(alive as u64, Relaxed);
        if alive < moved.len() {
            // Some were removed meanwhile; their Closed events are queued.
            debug!(
                "fast path: {} refreshed flows had no session",
                moved.len() - alive
            );
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    /// The two directions of a session as map keys and outgoing tuples:
    /// each direction's key is the other's output reversed.
    #[test]
    fn tuples_of_a_session_both_ways() {
        let prefix: Prefix = "64:ff9b::/96".parse().unwrap();
        let p = FlowPair {
            proto: L4Proto::Tcp,
            client: ("2001:db8::1".parse().unwrap(), 40000),
            pool: ("192.0.2.1".parse().unwrap(), 2000),
            remote: ("198.51.100.2".parse().unwrap(), 80),
        };
        let (in6, out4, in4, out6) = tuples(&p, prefix);
        assert_eq!(
            in6.dst,
            "64:ff9b::c633:6402".parse::<std::net::Ipv6Addr>().unwrap()
        );
        assert_eq!((out4.src_port, out4.dst_port), (2000, 80));
        assert_eq!((in4.src, in4.dst_port), (p.remote.0, 2000));
        assert_eq!(
            (out6.dst, out6.dst_port, out6.src_port),
            (p.client.0, 40000, 80)
        );
        // ICMP echo: identifiers in both port fields.
        let e = FlowPair {
            proto: L4Proto::Icmp,
            remote: (p.remote.0, 0),
            ..p
        };
        let (in6, out4, in4, out6) = tuples(&e, prefix);
        assert_eq!((in6.src_port, in6.dst_port), (40000, 40000));
        assert_eq!((out4.src_port, out4.dst_port), (2000, 2000));
        assert_eq!((in4.src_port, in4.dst_port), (2000, 2000));
        assert_eq!((out6.src_port, out6.dst_port), (40000, 40000));
    }
}
