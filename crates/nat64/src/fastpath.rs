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
//! Kernel mode (`napt = "kernel"`) has no sessions: the kernel's
//! conntrack is the state machine and NAT, and nat64 only maps a client to
//! its inner address. There the program sits around the kernel's NAT
//! rather than replacing it: a client's IPv6 packet is translated to its
//! inner IPv4 address at the client interface's ingress and redirected
//! into the TUN's ingress, so it enters the stack exactly as if nat64 had
//! written it (conntrack, masquerade, the nft rules on `iifname`); a reply
//! arrives at the TUN's egress after conntrack gave it back its inner
//! destination, and the L3 program there translates it and sends it to the
//! client. A flow is offered by every packet that comes back through the
//! TUN (the thread ignores repeats), withdrawn at a FIN or RST for a short
//! while (the close runs through the TUN), dropped when idle for its
//! protocol's lifetime, and all of a client's flows go when its lease does
//! ([`FlowEvent::ClientGone`]). See ADR 0012.
//!
//! Loading and attaching need privileges: [`prepare`] runs before the
//! daemon drops them; [`FastPathThread::start`] after. The thread keeps no
//! capability when every attachment is a TCX link (the kernel removes those
//! by itself when their descriptor closes, SIGKILL included), and
//! CAP_NET_ADMIN (inherited from the main thread) only to remove a
//! netlink-attached filter at exit on kernels without TCX.

use crate::config::{NaptMode, Settings};
use nat64_bpf::{
    Config, FastPath, FastPathError, Forwarding, Hook, Stat, ToStack, FLOW_STACK_FORWARD,
};
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
/// How often the counters refresh session timers.
const REFRESH: Duration = Duration::from_secs(1);
/// Kernel mode: how long a flow stays off the fast path after a FIN or RST
/// (its close runs through the TUN, where each packet would offer it
/// again). A flow still busy after that (a half-closed download) comes
/// back, which is harmless: conntrack judges every packet either way.
const CLOSED_HOLD: Duration = Duration::from_secs(2);

/// What the fast path did: the stats line (SIGUSR1, exit), `nat64 show
/// stats` and `/metrics` read it. The thread copies the program's own
/// counters here once a second ([`REFRESH`]).
#[derive(Debug, Default)]
pub struct Counters {
    pub installed: AtomicU64,
    pub removed: AtomicU64,
    pub install_failed: AtomicU64,
    pub events_dropped: AtomicU64,
    pub refreshed: AtomicU64,
    /// Flows installed now.
    pub flows: AtomicU64,
    /// IP bytes the program translated (as received), 6 → 4 and 4 → 6:
    /// installed flows' counters plus those of flows removed.
    pub bytes: [AtomicU64; 2],
    /// The program's packet counts by [`Stat`] (translated, passed by
    /// reason, errors), summed over CPUs.
    pub program: [AtomicU64; Stat::ALL.len()],
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

    /// The program's count of `s`.
    pub fn program(&self, s: Stat) -> u64 {
        self.program[s as usize].load(Relaxed)
    }

    /// The `fast_path` object of the `stats` reply (`nat64 show stats`).
    pub fn json(&self) -> serde_json::Value {
        let passed: serde_json::Map<String, serde_json::Value> = Stat::ALL
            .iter()
            .filter(|s| !matches!(s, Stat::Xlat6to4 | Stat::Xlat4to6))
            .map(|s| (s.name().to_string(), self.program(*s).into()))
            .collect();
        serde_json::json!({
            "flows": self.flows.load(Relaxed),
            "installed": self.installed.load(Relaxed),
            "removed": self.removed.load(Relaxed),
            "install_failed": self.install_failed.load(Relaxed),
            "events_dropped": self.events_dropped.load(Relaxed),
            "refreshed": self.refreshed.load(Relaxed),
            "translated_6to4": self.program(Stat::Xlat6to4),
            "translated_4to6": self.program(Stat::Xlat4to6),
            "bytes_6to4": self.bytes[0].load(Relaxed),
            "bytes_4to6": self.bytes[1].load(Relaxed),
            "program": passed,
        })
    }
}

/// The program loaded and attached, before privileges are dropped. None
/// (with a warning saying why) when the fast path cannot run here: the
/// daemon then translates everything through the TUN. `tun_mtu`: the
/// TUN's MTU (kernel mode: packets the TUN would not have taken stay on
/// its path).
pub fn prepare(s: &Settings, tun: &str, tun_mtu: u16) -> Option<FastPath> {
    if let Some(why) = s.fast_path_off {
        info!("fast path off: {why}; every packet goes through the TUN");
        return None;
    }
    let kernel = s.napt == NaptMode::Kernel;
    let derived = s.fast_path_interfaces.is_empty();
    let interfaces = if derived {
        match route_interfaces(tun, !kernel) {
            Ok(l) if !l.is_empty() => l,
            Ok(_) => {
                warn!(
                    "fast path off: no route leaves by an interface other than {tun} (set \
                     fast-path-interfaces); every packet goes through the TUN"
                );
                return None;
            }
            Err(e) => {
                warn!("fast path off: finding its interfaces: {e:#}; every packet goes through the TUN");
                return None;
            }
        }
    } else {
        s.fast_path_interfaces.clone()
    };
    // BPF hash maps are preallocated kernel memory (~135 B an entry, two
    // maps: `fast-path-max-flows`); flows beyond stay on the TUN path
    // (counted as install_failed), which is correct, only slower.
    let max = s.fast_path_max_flows;
    let mut fp = match FastPath::load(max) {
        Ok(fp) => fp,
        Err(e) => {
            warn!("fast path off: {e}; every packet goes through the TUN");
            return None;
        }
    };
    let tun_ifindex = nix_ifindex(tun);
    let cfg = Config {
        enabled: true,
        // Routed as the TUN path's packets are: as if they came from the TUN.
        forwarding: Forwarding::Redirect {
            fib_ifindex: tun_ifindex,
        },
        // Kernel mode's IPv4 packets enter the stack through the TUN. An
        // IPv6 packet above the TUN's MTU would have been refused with a
        // Packet Too Big on its way in, and one above `ipv4-mtu` once
        // translated gets one from nat64: both stay on the TUN path.
        to_stack: if kernel {
            ToStack {
                into: Some(tun_ifindex),
                mtu4: tun_mtu
                    .saturating_sub(20)
                    .min(s.ipv4_mtu.unwrap_or(u16::MAX)),
                mtu6: 0,
            }
        } else {
            ToStack::default()
        },
        lowest_ipv6_mtu: s.ipv6_mtu,
        copy_tos: true,
        decrement_ttl: true,
    };
    if let Err(e) = fp.set_config(&cfg) {
        warn!("fast path off: {e}; every packet goes through the TUN");
        return None;
    }
    // Kernel mode: the replies' program on the TUN's egress too.
    let mut wanted: Vec<(&str, Hook)> = interfaces
        .iter()
        .map(|i| (i.as_str(), Hook::EthernetIngress))
        .collect();
    if kernel {
        wanted.push((tun, Hook::L3Egress));
    }
    let mut hooks: Vec<String> = Vec::new();
    for (ifname, hook) in wanted {
        match fp.attach_at(ifname, hook) {
            Ok(how) => hooks.push(format!("{ifname} {} ({how:?})", hook.direction())),
            // A derived list may name a WireGuard or PPP link: its
            // traffic stays on the TUN path.
            Err(e @ FastPathError::NotEthernet(..)) if derived => {
                info!("fast path: not on {ifname}: {e}");
            }
            Err(e) => {
                warn!("fast path off: {ifname}: {e}; every packet goes through the TUN");
                fp.detach_all();
                return None;
            }
        }
    }
    info!(
        "fast path on: established flows translated in the kernel, tc-bpf on {} (up to {max} flows)",
        hooks.join(", ")
    );
    Some(fp)
}

/// `fast-path-interfaces` left empty: the interfaces of the main table's
/// routes, IPv6 (where clients' traffic to the prefix comes from: routes
/// are symmetric in the networks nat64 serves) and, with `ipv4` (daemon
/// mode, where replies to the pool arrive), IPv4; never the TUN or
/// loopback. Read once at start: interfaces added later are not covered
/// (list them, or restart).
fn route_interfaces(tun: &str, ipv4: bool) -> anyhow::Result<Vec<String>> {
    let mut families = vec!["-6"];
    if ipv4 {
        families.push("-4");
    }
    let mut out: Vec<String> = Vec::new();
    for fam in families {
        let text = crate::plumbing::output("ip", &["-j", fam, "route", "show"])?;
        let routes: Vec<serde_json::Value> = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("`ip -j {fam} route show`: {e}"))?;
        out.extend(devices_of(&routes, tun));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// The `dev` of each route (`ip -j route show` objects), minus `tun` and
/// loopback.
fn devices_of(routes: &[serde_json::Value], tun: &str) -> Vec<String> {
    routes
        .iter()
        .filter_map(|r| r.get("dev")?.as_str())
        .filter(|d| *d != tun && *d != "lo")
        .map(str::to_owned)
        .collect()
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
        s: &Settings,
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
        let kernel = s.napt == NaptMode::Kernel;
        let prefix = s.prefix;
        // TCX links detach when their descriptor closes, and map updates
        // on descriptors the thread holds need no capability (Linux 6.5+;
        // TCX came in 6.6): the thread then keeps none. A classic tc
        // filter (older kernels) needs CAP_NET_ADMIN to be removed at exit.
        let netlink = fp
            .attached()
            .iter()
            .any(|(_, how)| *how == nat64_bpf::Attached::Netlink);
        let handle = std::thread::Builder::new()
            .name("fast-path".into())
            .spawn(move || {
                if !netlink {
                    crate::privilege::drop_thread_caps();
                }
                Feeder::new(fp, engine, prefix, kernel, c).run(rx, &st, now)
            })?;
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
    /// Kernel mode (see the module comment).
    kernel: bool,
    c: Arc<Counters>,
    /// Installed flows and the last `last_seen_ns` of each direction.
    flows: HashMap<FlowPair, (u64, u64)>,
    /// Kernel mode: flows closed by a FIN or RST (or that failed to
    /// install), and when: not taken again for [`CLOSED_HOLD`].
    closed: HashMap<FlowPair, Instant>,
    /// Bytes of flows removed, 6 → 4 and 4 → 6 (for [`Counters::bytes`]).
    gone_bytes: [u64; 2],
    /// A batched read of the counters failed once (logged then).
    batch_failed: bool,
}

impl Feeder {
    fn new(
        fp: FastPath,
        engine: state::Engine,
        prefix: Prefix,
        kernel: bool,
        c: Arc<Counters>,
    ) -> Feeder {
        Feeder {
            fp,
            engine,
            prefix,
            kernel,
            c,
            flows: HashMap::new(),
            closed: HashMap::new(),
            gone_bytes: [0; 2],
            batch_failed: false,
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
        // The last counters, for the final stats line.
        self.refresh(now());
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
                // Kernel mode offers a flow with each packet that comes back
                // through the TUN: once is enough.
                if self.flows.contains_key(&p)
                    || self
                        .closed
                        .get(&p)
                        .is_some_and(|t| t.elapsed() < CLOSED_HOLD)
                {
                    return;
                }
                let (in6, out4, in4, out6) = tuples(&p, self.prefix);
                // Kernel mode: into the stack through the TUN, for the
                // kernel's NAT (see the module comment).
                let flags6 = if self.kernel { FLOW_STACK_FORWARD } else { 0 };
                let r = self
                    .fp
                    .insert_6to4(&in6, &out4, flags6)
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
                        // Kernel mode offers it again with each reply: not
                        // one failed insert per packet.
                        if self.kernel {
                            self.closed.insert(p, Instant::now());
                        }
                    }
                }
            }
            FlowEvent::Closed(p) => {
                if self.kernel {
                    self.closed.insert(p, Instant::now());
                }
                self.remove(&p);
            }
            FlowEvent::ClientGone(v6) => {
                let gone: Vec<FlowPair> = self
                    .flows
                    .keys()
                    .filter(|p| p.client.0 == v6)
                    .copied()
                    .collect();
                for p in gone {
                    self.remove(&p);
                }
            }
        }
    }

    fn remove(&mut self, p: &FlowPair) {
        let (in6, _, in4, _) = tuples(p, self.prefix);
        if let Ok(Some(c)) = self.fp.remove_6to4(&in6) {
            self.gone_bytes[0] += c.bytes;
        }
        if let Ok(Some(c)) = self.fp.remove_4to6(&in4) {
            self.gone_bytes[1] += c.bytes;
        }
        if self.flows.remove(p).is_some() {
            self.c.removed.fetch_add(1, Relaxed);
        }
    }

    /// Copies the program's counters and the flow count for the readers
    /// of [`Counters`].
    fn publish_counters(&self, bytes: [u64; 2]) {
        for (slot, b) in self.c.bytes.iter().zip(bytes) {
            slot.store(b, Relaxed);
        }
        self.c.flows.store(self.flows.len() as u64, Relaxed);
        if let Ok(st) = self.fp.stats() {
            for s in Stat::ALL {
                self.c.program[s as usize].store(st.get(s), Relaxed);
            }
        }
    }

    /// Sessions whose entries carried packets since the last look get their
    /// timers refreshed; entries of sessions the engine no longer has go.
    fn refresh(&mut self, now: Timestamp) {
        let mut moved = Vec::new();
        let mut idle = Vec::new();
        let mono = nat64_bpf::monotonic_now_ns();
        let mut bytes = self.gone_bytes;
        // Kernel mode: a flow idle for the lifetime a packet of it gives
        // the lease leaves the maps (the engine's timeouts: SIGHUP changes
        // them).
        let idle_limit = self.kernel.then(|| self.engine.timeouts());
        // Every entry's counters in a few batched reads, not two system
        // calls per flow (entry by entry only if that fails).
        let snap = match self.fp.snapshot() {
            Ok(s) => Some(s),
            Err(e) => {
                if !std::mem::replace(&mut self.batch_failed, true) {
                    warn!("fast path: reading the counters in batches failed ({e}); reading them flow by flow");
                }
                None
            }
        };
        for (p, (seen6, seen4)) in self.flows.iter_mut() {
            let (in6, _, in4, _) = tuples(p, self.prefix);
            let (c6, c4) = match &snap {
                Some(s) => (s.counters_6to4(&in6), s.counters_4to6(&in4)),
                None => (self.fp.counters_6to4(&in6), self.fp.counters_4to6(&in4)),
            };
            let (c6, c4) = (c6.unwrap_or_default(), c4.unwrap_or_default());
            bytes[0] += c6.bytes;
            bytes[1] += c4.bytes;
            let (a, b) = (c6.last_seen_ns, c4.last_seen_ns);
            if a > *seen6 || b > *seen4 {
                (*seen6, *seen4) = (a, b);
                moved.push(*p);
            }
            if let Some(t) = &idle_limit {
                let quiet = Duration::from_nanos(mono.saturating_sub(a.max(b)));
                if quiet > t.established(p.proto) {
                    idle.push(*p);
                }
            }
        }
        for p in &idle {
            self.remove(p);
        }
        self.publish_counters(bytes);
        self.closed.retain(|_, t| t.elapsed() < CLOSED_HOLD);
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

    /// Derived interfaces: every route's device but the TUN's and
    /// loopback's (`ip -j route show` as iproute2 prints it).
    #[test]
    fn derived_interfaces_are_the_routes_devices() {
        let routes: Vec<serde_json::Value> = serde_json::from_str(
            r#"[{"dst":"default","gateway":"198.51.100.254","dev":"eth1","flags":[]},
                {"dst":"198.51.100.0/24","dev":"eth1","protocol":"kernel","scope":"link"},
                {"dst":"203.0.113.0/24","dev":"nat64","scope":"link","flags":[]},
                {"dst":"2001:db8:1::/64","dev":"eth0","protocol":"kernel","metric":256},
                {"type":"unreachable","dst":"2001:db8:9::/48","dev":"lo","metric":1024}]"#,
        )
        .unwrap();
        assert_eq!(devices_of(&routes, "nat64"), ["eth1", "eth1", "eth0"]);
    }

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
