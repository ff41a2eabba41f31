//! RFC 6146 stateful NAT64: BIB, sessions, the NAPT pool, timers.
//!
//! * [`Engine`] — the shared state (cheap to clone, `Send + Sync`): the
//!   control plane's handle for sweeping, listing and run-time changes.
//! * [`Worker`] — one per data-plane thread: translates packets, looking up
//!   established flows without taking a lock ([`table`], ADR-0002).
//! * [`pipeline`] — RFC 6146 §3.4–3.8 as one function per step.
//! * [`tcp_fsm`] — the TCP state machine of RFC 6146 §3.5.2.
//! * [`pool`] — the `daemon` NAPT pool (affinity, parity, port blocks);
//!   `kernel` mode leases in [`kernel`].
//!
//! Time is passed in ([`Timestamp`]); nothing here reads a clock, spawns a
//! thread or does I/O.

mod endpoint;
mod frag_cache;
pub mod invariants;
mod kernel;
pub mod pipeline;
mod pool;
mod show;
mod table;
pub mod tcp_fsm;

pub use pool::BlockOwner;
pub use show::{BindingKey, Page, SessionKey};
pub use tcp_fsm::TcpState;

use crate::addr::Prefix;
use crate::eam::EamTable;
use crate::time::Timestamp;
use crate::verdict::DropReason;
use crate::xlat::{self, L4Proto};
use arc_swap::ArcSwap;
use frag_cache::FragCache;
use kernel::KernelPool;
use pool::{BlockChange, Pool, PROTOS};
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::sync::atomic::{
    AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering::Relaxed,
};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use table::{Binding, HashedOp, Index, Lease, Op, Session, DEAD};

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

/// RFC 6146 §3.5.1 / §3.5.2: what an IPv4 packet needs to create a session
/// on an existing binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Filtering {
    /// Any remote may use a binding (RFC 4787 endpoint-independent
    /// filtering; RFC 6146 default, best for applications).
    #[default]
    EndpointIndependent,
    /// Only remotes whose address the IPv6 host has sent to (RFC 4787
    /// address-dependent filtering). Static bindings are always open.
    AddressDependent,
}

/// Session lifetimes (RFC 6146 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// UDP_DEFAULT (RFC 6146 §3.5.1: at least 2 min; default 5 min).
    pub udp: Duration,
    /// TCP_EST (RFC 6146 §3.5.2: at least 2 h 4 min).
    pub tcp_est: Duration,
    /// TCP_TRANS (RFC 6146 §3.5.2: at least 4 min).
    pub tcp_trans: Duration,
    /// ICMP_DEFAULT (RFC 6146 §3.5.3: 60 s).
    pub icmp: Duration,
    /// How long the ports of a first fragment are remembered.
    pub frag: Duration,
}

impl Timeouts {
    /// What a packet of an established flow of `p` gives it (and, in
    /// kernel mode, its client's lease): UDP, ICMP or TCP_EST.
    pub fn established(&self, p: L4Proto) -> Duration {
        match p {
            L4Proto::Udp => self.udp,
            L4Proto::Icmp => self.icmp,
            L4Proto::Tcp => self.tcp_est,
        }
    }
}

/// [`Timeouts::established`] as a timer index.
pub(crate) const fn established_timer(p: L4Proto) -> usize {
    match p {
        L4Proto::Udp => T_UDP,
        L4Proto::Icmp => T_ICMP,
        L4Proto::Tcp => T_EST,
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            udp: Duration::from_secs(300),
            tcp_est: Duration::from_secs(7440),
            tcp_trans: Duration::from_secs(240),
            icmp: Duration::from_secs(60),
            frag: Duration::from_secs(5),
        }
    }
}

/// Session limits (RFC 6146 §5: a DoS guard). A client is the IPv6 source address
/// masked to `client_prefix_len` bits; a site is the coarser
/// `site_prefix_len` (a /64 by default: one subnet, one household, one
/// overlay node), so that sources spoofed from one /64 cannot fill the
/// table whatever `client_prefix_len` is (issue 11 #9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_sessions: usize,
    pub max_sessions_per_client: usize,
    pub client_prefix_len: u8,
    pub site_prefix_len: u8,
    /// Sessions (daemon mode) one site may hold.
    pub max_sessions_per_site: usize,
    /// Kernel-mode leases one site may hold (one per IPv6 source).
    pub max_leases_per_site: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 4 << 20,
            max_sessions_per_client: 65536,
            client_prefix_len: 128,
            site_prefix_len: 64,
            max_sessions_per_site: 1 << 20,
            max_leases_per_site: 256,
        }
    }
}

/// Above this share of `max_sessions` (7/8) new sessions are admitted
/// fairly: a site holding more than an equal share of the table gets no
/// more until others have had theirs.
pub(crate) fn near_full(total: usize, max: usize) -> bool {
    total >= max - max / 8
}

/// The `daemon` NAPT pool (RFC 6146 §3.5.1; docs/operator.md §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    pub prefixes: Vec<(Ipv4Addr, u8)>,
    pub tcp_ports: (u16, u16),
    pub udp_ports: (u16, u16),
    pub icmp_ids: (u16, u16),
    /// Hand ports to a source in aligned blocks of this many (a power of
    /// two, e.g. 64 or 512); the mapping log then has one line per block.
    pub port_block_size: Option<u16>,
    /// RFC 7422 deterministic blocks (needs `port_block_size`): each
    /// client's address and block are a pure function of the client and
    /// this configuration ([`Deterministic`]).
    pub deterministic: Option<Deterministic>,
}

/// RFC 7422 deterministic port blocks (docs/operator.md §2.8). A client is
/// an IPv6 address masked to `client_prefix_len`; the pool's usable
/// addresses times the whole aligned blocks per address (the fewest of the
/// three protocols' ranges) are the *slots*, and slot `k` is address
/// `k mod A`, block `k div A`. A client's slot is:
///
/// * inside `clients`: its index in that range (client `i` of the range
///   gets slot `i`; configuration refuses a range with more clients than
///   slots, so no two clients of the range share a block);
/// * otherwise (or without `clients`): a fixed hash of the client modulo
///   the slots. Two such clients may share a block; each binding still
///   has its own port, and the mapping log names every client of a block.
///
/// Each client gets exactly that one block per protocol; when it is full
/// the client gets no more ports (`pool_exhausted`). A `[[static]]`
/// binding is an exception with its configured address and port; the
/// client's dynamic bindings stay in its block. Nothing depends on
/// arrival order, on other clients or on the process: two instances, or
/// one instance before and after a restart, give a client the same block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deterministic {
    pub client_prefix_len: u8,
    pub clients: Option<(Ipv6Addr, u8)>,
}

/// The RFC 7422 mapping of a pool, both ways, without an engine (`nat64
/// lookup`): the same [`Pool`] code the engine allocates with.
pub struct BlockMap(Pool);

impl BlockMap {
    /// The map of `cfg` (which must have deterministic blocks), with
    /// `gateway` withheld when it lies in the pool, as the engine does.
    pub fn new(cfg: &PoolConfig, gateway: Option<Ipv4Addr>) -> Result<BlockMap, String> {
        if cfg.deterministic.is_none() {
            return Err("no deterministic port blocks (ports.deterministic) in this pool".into());
        }
        let mut p = Pool::new(
            &cfg.prefixes,
            [cfg.tcp_ports, cfg.udp_ports, cfg.icmp_ids],
            cfg.port_block_size,
            cfg.deterministic,
        )?;
        if let Some(g) = gateway {
            p.withhold(g);
        }
        Ok(BlockMap(p))
    }

    /// The pool address and `first..=last` ports `v6` gets for `p`.
    pub fn block_of(&self, p: L4Proto, v6: Ipv6Addr) -> (Ipv4Addr, u16, u16) {
        self.0
            .deterministic_block(p, v6)
            .expect("BlockMap::new checked deterministic blocks")
    }

    /// The block, slot and numbered client of `v4:port`.
    pub fn owner_of(&self, p: L4Proto, v4: Ipv4Addr, port: u16) -> Option<BlockOwner> {
        self.0.deterministic_owner(p, v4, port)
    }

    /// Whether `v4` is one of the pool's addresses.
    pub fn contains(&self, v4: Ipv4Addr) -> bool {
        self.0.contains(v4)
    }

    /// Usable addresses x blocks per address.
    pub fn slots(&self) -> u64 {
        self.0.deterministic_slots()
    }
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            prefixes: Vec::new(),
            tcp_ports: (1024, 65535),
            udp_ports: (1024, 65535),
            icmp_ids: (1024, 65535),
            port_block_size: None,
            deterministic: None,
        }
    }
}

/// The `kernel` NAPT backend (docs/operator.md §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    pub inner_pool: (Ipv4Addr, u8),
    /// Static 1:1 maps (`[[map]] v6 = …, v4 = …`), usable both ways.
    pub maps: Vec<(Ipv6Addr, Ipv4Addr)>,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            inner_pool: (Ipv4Addr::new(100, 64, 0, 0), 16),
            maps: Vec::new(),
        }
    }
}

/// The `none` mode: a stateless SIIT translator (RFC 7915, RFC 6052,
/// RFC 7757; ADR 0009). No ports are managed: every address maps 1:1.
#[derive(Debug, Clone, Default)]
pub struct SiitConfig {
    /// Explicit address mappings, consulted before the RFC 6052 prefix
    /// (RFC 7757 §3.3); replaced at run time with [`Engine::set_eam`].
    pub eam: EamTable,
    /// A dynamic 1:1 pool (Tayga's `dynamic-pool`): an IPv6 source that
    /// neither the EAM table nor the prefix translates leases an address
    /// from it, as in `kernel` mode, without any masquerade behind it.
    pub dynamic_pool: Option<(Ipv4Addr, u8)>,
    /// The translator's own IPv4 address: an endpoint that answers echo
    /// requests (Tayga's `ipv4-addr`); carved out of the dynamic pool.
    pub own_v4: Option<Ipv4Addr>,
    /// The translator's own IPv6 address (Tayga's `ipv6-addr`).
    pub own_v6: Option<Ipv6Addr>,
    /// RFC 6791: IPv4 sources for ICMPv6 errors from IPv6 routers whose
    /// address has no mapping (one is picked per router by a hash).
    pub rfc6791: Vec<Ipv4Addr>,
    /// The customer side of 464XLAT (RFC 6877): the IPv4 side is this host
    /// alone, so only EAM-mapped IPv4 addresses are translated as IPv4
    /// sources (4 → 6) and IPv6 destinations (6 → 4); everything else on
    /// the IPv6 side is the PLAT's prefix.
    pub clat: bool,
}

impl PartialEq for SiitConfig {
    fn eq(&self, o: &Self) -> bool {
        self.eam.iter().eq(o.eam.iter())
            && self.dynamic_pool == o.dynamic_pool
            && self.own_v4 == o.own_v4
            && self.own_v6 == o.own_v6
            && self.rfc6791 == o.rfc6791
            && self.clat == o.clat
    }
}
impl Eq for SiitConfig {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NaptConfig {
    Daemon(PoolConfig),
    Kernel(KernelConfig),
    /// `napt = "none"`: stateless SIIT.
    Siit(SiitConfig),
}

/// A static BIB entry (port forwarding, RFC 6146 §3.1): `v4` on the pool
/// reaches the IPv6 server `v6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticBinding {
    pub proto: L4Proto,
    pub v6: SocketAddrV6,
    pub v4: (Ipv4Addr, u16),
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub prefix: Prefix,
    /// RFC 6052 §3.1 for the Well-Known Prefix.
    pub wkp_strict: bool,
    pub napt: NaptConfig,
    pub filtering: Filtering,
    pub timeouts: Timeouts,
    pub limits: Limits,
    pub xlat: xlat::Config,
    pub static_bib: Vec<StaticBinding>,
    /// The translator's own IPv4 address (`gateway-v4`, the source of its
    /// ICMPv4 errors). Inside the pool or inner pool it is carved out of
    /// allocation and is no hairpinning target: one address serves both
    /// roles, as Tayga's `ipv4-addr` inside its `dynamic-pool`.
    pub gateway_v4: Option<Ipv4Addr>,
    /// Data-plane queues to spread sessions over: each new session gets an
    /// owner queue, round-robin, that [`Processed::owner`] reports for
    /// its packets (0 or 1: no placement).
    pub flow_queues: u8,
}

impl Default for EngineConfig {
    /// Well-Known Prefix, strict; `daemon` NAPT with an empty pool (which
    /// [`Engine::new`] refuses: set `napt`).
    fn default() -> Self {
        EngineConfig {
            prefix: Prefix::WELL_KNOWN,
            wkp_strict: true,
            napt: NaptConfig::Daemon(PoolConfig::default()),
            filtering: Filtering::default(),
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            xlat: xlat::Config::default(),
            static_bib: Vec::new(),
            gateway_v4: None,
            flow_queues: 1,
        }
    }
}

/// Why the engine refused a configuration or a run-time change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("pool: {0}")]
    Pool(String),
    #[error("inner-pool: {0}")]
    InnerPool(String),
    #[error("static {proto} binding {v4}:{port}: {v4} is not a pool address; add it to `pool` or pick a pool address", proto = .0.as_str(), v4 = .1, port = .2)]
    StaticNotInPool(L4Proto, Ipv4Addr, u16),
    #[error("static {proto} binding {v4}:{port}: already bound (to {v6}); remove that binding first", proto = .0.as_str(), v4 = .1, port = .2, v6 = .3)]
    StaticConflict(L4Proto, Ipv4Addr, u16, String),
    #[error("no static {proto} binding at {v4}:{port}", proto = .0.as_str(), v4 = .1, port = .2)]
    NoSuchStatic(L4Proto, Ipv4Addr, u16),
    #[error("static BIB entries need `napt = \"daemon\"`; in kernel mode use [[map]]")]
    StaticInKernelMode,
    #[error("[[map]] {0} = {1}: {2}")]
    Map(Ipv6Addr, Ipv4Addr, String),
    #[error("limits: client-prefix-len {0} is above 128")]
    ClientPrefix(u8),
    #[error("timeouts: {0}")]
    Timeout(String),
}

// ---------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------

/// Counts per protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PerProto<T> {
    pub tcp: T,
    pub udp: T,
    pub icmp: T,
}

impl<T: Copy> PerProto<T> {
    pub fn get(&self, p: L4Proto) -> T {
        match p {
            L4Proto::Tcp => self.tcp,
            L4Proto::Udp => self.udp,
            L4Proto::Icmp => self.icmp,
        }
    }
    fn get_mut(&mut self, p: L4Proto) -> &mut T {
        match p {
            L4Proto::Tcp => &mut self.tcp,
            L4Proto::Udp => &mut self.udp,
            L4Proto::Icmp => &mut self.icmp,
        }
    }
}

/// A BIB entry (or, in kernel mode, a 1:1 lease with `proto` `None` and
/// ports 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingInfo {
    pub proto: Option<L4Proto>,
    pub v6: (Ipv6Addr, u16),
    pub v4: (Ipv4Addr, u16),
    pub is_static: bool,
    pub sessions: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub proto: L4Proto,
    /// The IPv6 host's address and port (ICMP: identifier).
    pub v6: (Ipv6Addr, u16),
    /// The pool address and port it is mapped to.
    pub v4: (Ipv4Addr, u16),
    /// The remote IPv4 endpoint (port 0 for ICMP).
    pub remote: (Ipv4Addr, u16),
    pub tcp_state: Option<TcpState>,
    pub expires_at: Timestamp,
    /// From the last time the engine was told (`sweep` or a new flow).
    pub expires_in: Duration,
    /// Offered to the fast path ([`FlowEvent::Established`]) and not
    /// withdrawn: its packets cross in the kernel (unless the program's
    /// table was full, which the fast path counts as `install_failed`).
    pub fast_path: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolAddrUsage {
    pub addr: Ipv4Addr,
    /// Ports (identifiers) in use on this address.
    pub in_use: PerProto<u32>,
    /// Size of each protocol's range.
    pub capacity: PerProto<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineCounts {
    pub bindings: PerProto<usize>,
    pub static_bindings: usize,
    pub sessions: PerProto<usize>,
    pub kernel_leases: usize,
    /// New flows refused for lack of a port / address.
    pub pool_exhausted: u64,
    pub session_limit_hits: u64,
    pub client_session_limit_hits: u64,
    /// New flows refused by the site guard (`site_limit`).
    pub site_limit_hits: u64,
    /// Distinct clients that hit their limit at least once.
    pub clients_limited: usize,
    pub fragments_cached: usize,
    pub held_syns: usize,
    /// Pool ports in use over all addresses and protocols (daemon mode).
    pub pool_ports_in_use: u64,
    /// Kernel mode: dynamic leases not on their client's home address
    /// (collisions; an HA pair's other node may number them otherwise).
    pub kernel_leases_displaced: usize,
}

/// An IPv4-initiated TCP SYN held 6 s for a simultaneous open (RFC 6146
/// §3.5.2.2) that did not happen: answer it with ICMPv4 Destination
/// Unreachable, Port Unreachable (type 3, code 3), quoting `packet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldSynAnswer {
    /// The original IPv4 packet (at most 576 bytes of it).
    pub packet: Vec<u8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepStats {
    /// Entries looked at.
    pub examined: usize,
    /// Sessions deleted, per protocol.
    pub expired_sessions: PerProto<usize>,
    /// Dynamic bindings deleted (their ports went back), per protocol.
    pub expired_bindings: PerProto<usize>,
    /// TCP sessions whose ESTABLISHED lifetime ran out and moved to TRANS.
    pub tcp_to_trans: usize,
    /// Kernel-mode leases expired.
    pub expired_leases: usize,
    /// False when the budget ran out before a full pass: sweep again soon.
    pub complete: bool,
    /// Held SYNs to answer with ICMP Port Unreachable.
    pub icmp_answers: Vec<HeldSynAnswer>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingEventKind {
    Created,
    Expired,
    /// Port-block mode: a block `v4.1..=v4_last_port` went to the source.
    BlockAllocated,
    BlockReleased,
}

/// A binding (or block, or kernel lease) came or went: one mapping-log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappingEvent {
    pub time: Timestamp,
    pub kind: MappingEventKind,
    /// `None` for kernel-mode leases (address only).
    pub proto: Option<L4Proto>,
    pub v6: (Ipv6Addr, u16),
    pub v4: (Ipv4Addr, u16),
    /// Last port of a block (equal to `v4.1` for single bindings).
    pub v4_last_port: u16,
    pub is_static: bool,
}

pub type EventHook = Arc<dyn Fn(&MappingEvent) + Send + Sync>;

/// A session as the fast path needs it (issue 13): the client, its pool
/// address and the remote, ports (ICMP: identifiers) included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowPair {
    pub proto: L4Proto,
    pub client: (Ipv6Addr, u16),
    pub pool: (Ipv4Addr, u16),
    pub remote: (Ipv4Addr, u16),
}

/// What the fast path is told ([`Engine::set_flow_hook`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEvent {
    /// The session may be translated outside the engine from now on: TCP
    /// reached ESTABLISHED (RFC 6146 §3.5.2); UDP and ICMP echo carried
    /// more than one exchange ([`Session::again_both_ways`](table::Session));
    /// kernel mode: a flow's second reply through the TUN.
    Established(FlowPair),
    /// It must not any more: a TCP FIN or RST was seen, or the session was
    /// removed (expiry, `binding del`, a static entry replaced).
    Closed(FlowPair),
    /// Kernel mode: the client's lease ended (expiry, `lease del`), so
    /// none of its flows may be translated outside the engine: its address
    /// may go to another client next.
    ClientGone(Ipv6Addr),
}

/// Called from the data path (a worker, lock-free) and under the writer
/// lock: it must only queue the event.
pub type FlowHook = Arc<dyn Fn(FlowEvent) + Send + Sync>;

// ---------------------------------------------------------------------------
// Shared state
// ---------------------------------------------------------------------------

/// Default number of entries one `sweep` examines.
pub const SWEEP_BUDGET: usize = 32768;
/// RFC 6146 §3.5.2.2: how long an unsolicited IPv4 SYN is held.
pub const TCP_INCOMING_SYN: Duration = Duration::from_secs(6);
pub(crate) const MAX_HELD_SYNS: usize = 1024;
const FRAG_CACHE_CAP: usize = 8192;
/// Index operations a worker lets pile up before it publishes them (see
/// [`Control::publish_batched`] and ADR-0002 "Batched publishes").
pub(crate) const PUBLISH_BATCH: usize = 512;

pub(crate) enum Mode {
    Daemon {
        prefixes: Vec<(u32, u8)>,
        gateway: Option<Ipv4Addr>,
    },
    Kernel {
        inner: (u32, u8),
        statics: Vec<Ipv4Addr>,
        gateway: Option<Ipv4Addr>,
    },
    Siit {
        /// The dynamic pool, if any: `inner` of the lease code.
        dynamic: Option<(u32, u8)>,
        own_v4: Option<Ipv4Addr>,
        own_v6: Option<Ipv6Addr>,
        rfc6791: Vec<Ipv4Addr>,
        clat: bool,
    },
}

pub(crate) struct Shared {
    pub prefix: Prefix,
    pub wkp_strict: bool,
    pub filtering: Filtering,
    pub xlat: xlat::Config,
    pub mode: Mode,
    /// Milliseconds: udp, tcp_est, tcp_trans, icmp, frag.
    timeouts: [AtomicU64; 5],
    factory: left_right::ReadHandleFactory<Index>,
    ctl: Mutex<Control>,
    /// Entries created but not yet published ([`Control::pending`]); read
    /// by workers without the lock to decide whether a miss in their read
    /// handle is final (0) or worth a look under the lock.
    pub pending: Arc<AtomicUsize>,
    pub frags: Mutex<FragCache>,
    pub held: Mutex<Vec<(u64, Tuple4Key, Vec<u8>)>>,
    /// The EAM table (empty outside `none` mode): read per packet without a
    /// lock, replaced whole on reload (ADR 0009).
    pub eam: ArcSwap<EamTable>,
    /// The fast path's hook ([`Engine::set_flow_hook`]), set once.
    pub flow_hook: std::sync::OnceLock<FlowHook>,
}

/// (remote v4, remote port, pool v4, pool port) of a held SYN.
pub(crate) type Tuple4Key = (Ipv4Addr, u16, Ipv4Addr, u16);

pub(crate) const T_UDP: usize = 0;
pub(crate) const T_EST: usize = 1;
pub(crate) const T_TRANS: usize = 2;
pub(crate) const T_ICMP: usize = 3;
pub(crate) const T_FRAG: usize = 4;

impl Shared {
    #[inline]
    pub fn timeout_ms(&self, which: usize) -> u64 {
        self.timeouts[which].load(Relaxed)
    }
    /// The writer lock for the control plane (reaper, listings, run-time
    /// changes): publishes whatever new flows left pending first, so the
    /// published index is complete while it is held.
    pub fn lock(&self) -> MutexGuard<'_, Control> {
        let mut c = self.lock_fast();
        c.publish();
        c
    }
    /// The writer lock for the new-flow path: the published index may lag
    /// behind by the pending batch; look entries up with
    /// [`Control::find`], which sees both.
    pub fn lock_fast(&self) -> MutexGuard<'_, Control> {
        self.ctl.lock().unwrap_or_else(|e| e.into_inner())
    }
    /// True when some new entry is not yet in the workers' read handles.
    #[inline]
    pub fn has_pending(&self) -> bool {
        self.pending.load(std::sync::atomic::Ordering::Acquire) != 0
    }
    /// RFC 6052 §2.2 embedding of an IPv4 address coming from the IPv4
    /// side, with §3.1 applied: behind the Well-Known Prefix (and
    /// `wkp-strict`) a non-global IPv4 address is refused.
    #[inline]
    pub fn embed_checked(&self, a: Ipv4Addr) -> Result<Ipv6Addr, DropReason> {
        if self.wkp_strict && self.prefix.is_well_known() && !crate::addr::is_global_v4(a) {
            return Err(DropReason::WkpNonGlobal);
        }
        Ok(self.prefix.embed(a))
    }
    /// `none` mode: `a` lies in the dynamic pool.
    #[inline]
    pub fn is_dynamic_v4(&self, a: Ipv4Addr) -> bool {
        match &self.mode {
            Mode::Siit {
                dynamic: Some(net), ..
            } => in_v4net(u32::from(a), *net),
            _ => false,
        }
    }
    /// True when `a` is an address this translator owns on the IPv4 side
    /// (the hairpinning test of RFC 6146 §3.8).
    pub fn is_local_v4(&self, a: Ipv4Addr) -> bool {
        let x = u32::from(a);
        let inside = |n: u32, len: u8| in_v4net(x, (n, len));
        match &self.mode {
            Mode::Daemon { prefixes, gateway } => {
                *gateway != Some(a) && prefixes.iter().any(|&(n, l)| inside(n, l))
            }
            Mode::Kernel {
                inner,
                statics,
                gateway,
            } => *gateway != Some(a) && (inside(inner.0, inner.1) || statics.contains(&a)),
            Mode::Siit {
                dynamic, own_v4, ..
            } => dynamic.is_some_and(|(n, l)| inside(n, l)) || *own_v4 == Some(a),
        }
    }
}

/// True when `x` lies in the IPv4 network `(n, len)` (`n` without host
/// bits).
#[inline]
fn in_v4net(x: u32, (n, len): (u32, u8)) -> bool {
    let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    x & m == n
}

/// Where one bounded sweep call stands in a list that shrinks by
/// `swap_remove` (the entry at `i` is replaced by the last one).
///
/// The call walks from where the previous call stopped (`start`) to the
/// end, then from 0 back to `start`. Removing the entry at the cursor moves
/// the last entry into its place, and that is examined next: in the first
/// leg the last entry has not been seen yet; in the second it was seen in
/// the first leg, and seeing it again is harmless. Entries before `start`
/// never move except into the cursor's place, so every entry present when
/// the call began is examined (a fuzz run found the old visit count, which
/// counted re-examined entries, declaring a circle complete with due
/// sessions left).
struct Circle {
    start: usize,
    wrapped: bool,
}

impl Circle {
    fn new(cursor: usize, len: usize) -> Circle {
        Circle {
            start: if cursor >= len { 0 } else { cursor },
            wrapped: false,
        }
    }

    /// The index to examine next (the cursor), or `None` once the circle
    /// is complete.
    fn next(&mut self, cursor: &mut usize, len: usize) -> Option<usize> {
        if !self.wrapped {
            if *cursor < len {
                return Some(*cursor);
            }
            self.wrapped = true;
            *cursor = 0;
        }
        (*cursor < self.start.min(len)).then_some(*cursor)
    }
}

pub(crate) struct Control {
    pub w: left_right::WriteHandle<Index, HashedOp>,
    pub sessions: Vec<Arc<Session>>,
    pub leases: Vec<Arc<Lease>>,
    cursor: usize,
    lease_cursor: usize,
    pub pool: Option<Pool>,
    pub kpool: Option<KernelPool>,
    pub clients: HashMap<u128, u32>,
    pub adf: HashMap<(u8, u32, u16, u32), u32>,
    pub limits: Limits,
    pub hook: Option<EventHook>,
    /// The fast path's hook (a clone of `Shared::flow_hook`).
    pub flow_hook: Option<FlowHook>,
    pub last_now: u64,
    pub nbindings: PerProto<usize>,
    pub nstatic: usize,
    pub nsessions: PerProto<usize>,
    pub total_sessions: usize,
    pub pool_exhausted: u64,
    pub session_limit_hits: u64,
    pub client_limit_hits: u64,
    pub limited_clients: HashMap<u128, u64>,
    /// Sessions (daemon) per site key, and leases (kernel) per site key.
    pub sites: HashMap<u128, u32>,
    pub lease_sites: HashMap<u128, u32>,
    /// New flows refused by the site limit or the fair share near full.
    pub site_limit_hits: u64,
    /// Bumped on every change of the persisted lease set (a dynamic lease
    /// confirmed, or one expired): the lease journal polls it.
    pub lease_generation: u64,
    pub block_mode: bool,
    /// Address-dependent filtering: keep (binding, remote address) counts.
    pub adf_on: bool,
    pub dirty: bool,
    /// The operations appended since the last publish, applied to a small
    /// private index: with the published index it is the writer's complete
    /// view (ADR-0002 "Batched publishes"). Cleared on publish.
    pending: Index,
    pending_ops: usize,
    /// [`Shared::pending`]: `pending_ops` for the workers, as a hint.
    pending_hint: Arc<AtomicUsize>,
    /// Queues to place sessions on, and the next one's turn.
    flow_queues: u8,
    next_owner: u32,
}

/// Decrements `k`'s count, removing it at zero.
fn count_down(m: &mut HashMap<u128, u32>, k: u128) {
    if let Some(c) = m.get_mut(&k) {
        *c -= 1;
        if *c == 0 {
            m.remove(&k);
        }
    }
}

pub(crate) fn client_key(a: &Ipv6Addr, len: u8) -> u128 {
    let v = u128::from(*a);
    if len == 0 {
        0
    } else if len >= 128 {
        v
    } else {
        v & (u128::MAX << (128 - len as u32))
    }
}

impl Control {
    /// The published index only: complete after [`Shared::lock`] (which
    /// publishes); on the new-flow path use [`Control::find`].
    pub fn view(&self) -> Option<left_right::ReadGuard<'_, Index>> {
        self.w.enter()
    }

    /// Looks an entry up in the writer's complete view: the published index,
    /// then the pending batch. The flag is true when the entry is still
    /// pending (the workers cannot see it yet).
    pub fn find<T>(&self, f: impl Fn(&Index) -> Option<&Arc<T>>) -> Option<(Arc<T>, bool)> {
        if let Some(x) = self.view().and_then(|v| f(&v).cloned()) {
            return Some((x, false));
        }
        if self.pending_ops == 0 {
            return None;
        }
        f(&self.pending).map(|x| (x.clone(), true))
    }

    /// Publishes pending index changes. Every path that deletes entries
    /// (reaper, static removal) publishes before it releases the mutex, so
    /// the published index never holds an entry the writer removed.
    pub fn publish(&mut self) {
        if self.dirty {
            self.w.publish();
            self.dirty = false;
            if self.pending_ops != 0 {
                self.pending.clear();
                self.pending_ops = 0;
                self.pending_hint
                    .store(0, std::sync::atomic::Ordering::Release);
            }
        }
    }

    /// The new-flow path's publish: only once [`PUBLISH_BATCH`] operations
    /// are pending. Each publish waits for every worker to leave its read
    /// section; batching turns one wait per new flow into one per batch.
    /// Entries in the batch stay reachable under the lock through
    /// [`Control::find`], and a worker that finds its flow there publishes
    /// at once (the flow is evidently active).
    pub fn publish_batched(&mut self) {
        if self.pending_ops >= PUBLISH_BATCH {
            self.publish();
        }
    }

    fn op(&mut self, op: Op) {
        let op = self.pending.hashed(op);
        self.pending.apply(&op);
        self.pending_ops += 1;
        self.pending_hint
            .store(self.pending_ops, std::sync::atomic::Ordering::Release);
        self.w.append(op);
        self.dirty = true;
    }

    pub fn emit(&self, ev: MappingEvent) {
        if let Some(h) = &self.hook {
            h(&ev);
        }
    }

    pub fn emit_blocks_pub(&self, now: u64, changes: &[BlockChange]) {
        self.emit_blocks(now, changes)
    }

    fn emit_blocks(&self, now: u64, changes: &[BlockChange]) {
        for c in changes {
            self.emit(MappingEvent {
                time: Timestamp(now),
                kind: if c.allocated {
                    MappingEventKind::BlockAllocated
                } else {
                    MappingEventKind::BlockReleased
                },
                proto: Some(c.proto),
                v6: (c.v6, 0),
                v4: (c.v4, c.first),
                v4_last_port: c.last,
                is_static: false,
            });
        }
    }

    fn binding_event(&self, now: u64, b: &Binding, kind: MappingEventKind) {
        if self.block_mode && !b.is_static {
            return;
        }
        self.emit(MappingEvent {
            time: Timestamp(now),
            kind,
            proto: Some(b.proto),
            v6: (b.v6, b.v6_port),
            v4: (b.v4, b.v4_port),
            v4_last_port: b.v4_port,
            is_static: b.is_static,
        });
    }

    /// Adds a binding to the BIB (RFC 6146 §3.5.1.1 "create a new BIB entry").
    pub fn add_binding(&mut self, b: Binding, now: u64) -> Arc<Binding> {
        let b = Arc::new(b);
        *self.nbindings.get_mut(b.proto) += 1;
        if b.is_static {
            self.nstatic += 1;
        }
        self.binding_event(now, &b, MappingEventKind::Created);
        self.op(Op::AddBinding(b.clone()));
        b
    }

    fn remove_binding(&mut self, b: &Arc<Binding>, now: u64) {
        self.op(Op::DelBinding(b.clone()));
        *self.nbindings.get_mut(b.proto) -= 1;
        if b.is_static {
            self.nstatic -= 1;
        }
        let mut changes = Vec::new();
        if let Some(pool) = self.pool.as_mut() {
            pool.release(b.proto, b.v6, b.v4, b.v4_port, b.is_static, &mut changes);
        }
        self.binding_event(now, b, MappingEventKind::Expired);
        self.emit_blocks(now, &changes);
    }

    /// Adds a session on binding `b` (RFC 6146 §3.5.1 "create a new session
    /// table entry") for a packet going `from`: a TCP session starts in
    /// `tcp`, a UDP or ICMP one with that direction seen
    /// ([`Session::again_both_ways`]).
    pub fn add_session(
        &mut self,
        b: &Arc<Binding>,
        remote: Ipv4Addr,
        remote_port: u16,
        tcp: TcpState,
        from: tcp_fsm::Dir,
        deadline: u64,
    ) -> Arc<Session> {
        let state = if b.proto == L4Proto::Tcp {
            tcp as u8
        } else {
            Session::seen(from)
        };
        let s = Arc::new(Session {
            proto: b.proto,
            v6: b.v6,
            v6_port: b.v6_port,
            v4: b.v4,
            v4_port: b.v4_port,
            remote,
            remote_port,
            deadline: AtomicU64::new(deadline),
            tcp: AtomicU8::new(state),
            owner: (self.next_owner % u32::from(self.flow_queues)) as u8,
            slot: AtomicU32::new(self.sessions.len() as u32),
        });
        self.next_owner = self.next_owner.wrapping_add(1);
        self.sessions.push(s.clone());
        b.sessions.fetch_add(1, Relaxed);
        *self.nsessions.get_mut(b.proto) += 1;
        self.total_sessions += 1;
        *self
            .clients
            .entry(client_key(&b.v6, self.limits.client_prefix_len))
            .or_insert(0) += 1;
        *self
            .sites
            .entry(client_key(&b.v6, self.limits.site_prefix_len))
            .or_insert(0) += 1;
        if let Some(k) = self.adf_key(&s) {
            *self.adf.entry(k).or_insert(0) += 1;
        }
        self.op(Op::AddSession(s.clone()));
        s
    }

    fn adf_key(&self, s: &Session) -> Option<(u8, u32, u16, u32)> {
        self.adf_on.then(|| {
            (
                table::pbyte(s.proto),
                u32::from(s.v4),
                s.v4_port,
                u32::from(s.remote),
            )
        })
    }

    /// Deletes the session at `slot` (already marked dead) and, when it was
    /// the last one of a dynamic binding, the binding (RFC 6146 §3.5.1:
    /// "the BIB entry is deleted when it has no sessions").
    fn remove_session_at(&mut self, slot: usize, now: u64, stats: Option<&mut SweepStats>) {
        let s = self.sessions.swap_remove(slot);
        if let Some(moved) = self.sessions.get(slot) {
            moved.slot.store(slot as u32, Relaxed);
        }
        s.deadline.store(DEAD, Relaxed);
        if let Some(h) = &self.flow_hook {
            if s.withdraw() {
                h(FlowEvent::Closed(s.flow_pair()));
            }
        }
        self.op(Op::DelSession(s.clone()));
        *self.nsessions.get_mut(s.proto) -= 1;
        self.total_sessions -= 1;
        let ck = client_key(&s.v6, self.limits.client_prefix_len);
        count_down(&mut self.clients, ck);
        let sk = client_key(&s.v6, self.limits.site_prefix_len);
        count_down(&mut self.sites, sk);
        if let Some(k) = self.adf_key(&s) {
            if let Some(c) = self.adf.get_mut(&k) {
                *c -= 1;
                if *c == 0 {
                    self.adf.remove(&k);
                }
            }
        }
        let b = self
            .find(|v| v.binding6(s.proto, &s.v6, s.v6_port))
            .map(|(b, _)| b);
        let mut stats = stats;
        if let Some(st) = stats.as_deref_mut() {
            *st.expired_sessions.get_mut(s.proto) += 1;
        }
        if let Some(b) = b {
            let left = b.sessions.fetch_sub(1, Relaxed).saturating_sub(1);
            if left == 0 && !b.is_static {
                self.remove_binding(&b, now);
                if let Some(st) = stats {
                    *st.expired_bindings.get_mut(b.proto) += 1;
                }
            }
        }
    }

    /// Adds a lease; `confirmed` for static maps and leases restored from
    /// the state file (they were persisted because traffic came back).
    #[allow(clippy::too_many_arguments)]
    pub fn add_lease(
        &mut self,
        v6: Ipv6Addr,
        v4: Ipv4Addr,
        is_static: bool,
        confirmed: bool,
        deadline: u64,
        now: u64,
    ) -> Arc<Lease> {
        let l = Arc::new(Lease {
            v6,
            v4,
            is_static,
            deadline: AtomicU64::new(deadline),
            slot: AtomicU32::new(self.leases.len() as u32),
            confirmed: AtomicBool::new(confirmed),
        });
        self.leases.push(l.clone());
        if !is_static {
            *self
                .lease_sites
                .entry(client_key(&v6, self.limits.site_prefix_len))
                .or_insert(0) += 1;
            if confirmed {
                self.lease_generation += 1;
            }
        }
        self.op(Op::AddLease(l.clone()));
        self.emit(MappingEvent {
            time: Timestamp(now),
            kind: MappingEventKind::Created,
            proto: None,
            v6: (v6, 0),
            v4: (v4, 0),
            v4_last_port: 0,
            is_static,
        });
        l
    }

    fn remove_lease_at(&mut self, slot: usize, now: u64) {
        let l = self.leases.swap_remove(slot);
        if let Some(h) = &self.flow_hook {
            h(FlowEvent::ClientGone(l.v6));
        }
        if let Some(moved) = self.leases.get(slot) {
            moved.slot.store(slot as u32, Relaxed);
        }
        l.deadline.store(DEAD, Relaxed);
        self.op(Op::DelLease(l.clone()));
        if let Some(k) = self.kpool.as_mut() {
            k.release(l.v4);
        }
        if !l.is_static {
            let sk = client_key(&l.v6, self.limits.site_prefix_len);
            count_down(&mut self.lease_sites, sk);
            if l.confirmed.load(Relaxed) {
                self.lease_generation += 1;
            }
        }
        self.emit(MappingEvent {
            time: Timestamp(now),
            kind: MappingEventKind::Expired,
            proto: None,
            v6: (l.v6, 0),
            v4: (l.v4, 0),
            v4_last_port: 0,
            is_static: l.is_static,
        });
    }

    /// After a full sweep: the writer's own lists and counters shrink when
    /// a drain left them mostly empty (the index shards shrink as entries
    /// are removed, see `table::Sharded::remove`).
    fn give_back_memory(&mut self) {
        fn vec<T>(v: &mut Vec<T>) {
            if v.capacity() > 4096 && v.len() * 4 < v.capacity() {
                v.shrink_to(v.len() * 2);
            }
        }
        fn map<K: std::hash::Hash + Eq, V>(m: &mut HashMap<K, V>) {
            if m.capacity() > 4096 && m.len() * 4 < m.capacity() {
                m.shrink_to(m.len() * 2);
            }
        }
        vec(&mut self.sessions);
        vec(&mut self.leases);
        map(&mut self.clients);
        map(&mut self.sites);
        map(&mut self.lease_sites);
        map(&mut self.adf);
        map(&mut self.limited_clients);
    }

    /// Marks a lease confirmed (traffic came back through it).
    pub fn confirm_lease(&mut self, l: &Lease) {
        if !l.confirmed.swap(true, Relaxed) && !l.is_static {
            self.lease_generation += 1;
        }
    }

    /// Counts a per-client limit hit.
    pub fn client_limited(&mut self, ck: u128) {
        self.client_limit_hits += 1;
        if self.limited_clients.len() < 65536 || self.limited_clients.contains_key(&ck) {
            *self.limited_clients.entry(ck).or_insert(0) += 1;
        }
    }
}

// ---------------------------------------------------------------------------
// Engine
// ---------------------------------------------------------------------------

/// The stateful NAT64 (RFC 6146). Clone freely: all clones share one state.
#[derive(Clone)]
pub struct Engine {
    sh: Arc<Shared>,
}

impl core::fmt::Debug for Engine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("prefix", &self.sh.prefix)
            .finish_non_exhaustive()
    }
}

fn ms(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128 / 4) as u64
}

fn check_timeouts(t: &Timeouts) -> Result<(), EngineError> {
    for (name, d) in [
        ("udp", t.udp),
        ("tcp-est", t.tcp_est),
        ("tcp-trans", t.tcp_trans),
        ("icmp", t.icmp),
        ("frag", t.frag),
    ] {
        if d.is_zero() {
            return Err(EngineError::Timeout(format!("{name} must be above 0 s")));
        }
    }
    Ok(())
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Result<Engine, EngineError> {
        check_timeouts(&cfg.timeouts)?;
        if cfg.limits.client_prefix_len > 128 {
            return Err(EngineError::ClientPrefix(cfg.limits.client_prefix_len));
        }
        let hasher = foldhash::fast::RandomState::default();
        let (w, r) = left_right::new_from_empty::<Index, HashedOp>(Index::new(hasher.clone()));
        let factory = r.factory();
        drop(r);
        let pending_hint = Arc::new(AtomicUsize::new(0));
        let (pool, kpool, mode) = match &cfg.napt {
            NaptConfig::Daemon(p) => {
                let mut pool = Pool::new(
                    &p.prefixes,
                    [p.tcp_ports, p.udp_ports, p.icmp_ids],
                    p.port_block_size,
                    p.deterministic,
                )
                .map_err(EngineError::Pool)?;
                if let Some(g) = cfg.gateway_v4 {
                    pool.withhold(g);
                }
                let prefixes = p.prefixes.iter().map(|&(a, l)| (u32::from(a), l)).collect();
                (
                    Some(pool),
                    None,
                    Mode::Daemon {
                        prefixes,
                        gateway: cfg.gateway_v4,
                    },
                )
            }
            NaptConfig::Kernel(k) => {
                let mut kp = KernelPool::new(k.inner_pool.0, k.inner_pool.1)
                    .map_err(EngineError::InnerPool)?;
                if let Some(g) = cfg.gateway_v4 {
                    kp.withhold(g);
                }
                (
                    None,
                    Some(kp),
                    Mode::Kernel {
                        inner: (u32::from(k.inner_pool.0), k.inner_pool.1),
                        statics: k.maps.iter().map(|m| m.1).collect(),
                        gateway: cfg.gateway_v4,
                    },
                )
            }
            NaptConfig::Siit(x) => {
                let kp = match x.dynamic_pool {
                    Some((a, l)) => {
                        let mut kp = KernelPool::new(a, l).map_err(EngineError::InnerPool)?;
                        // Tayga carves `ipv4-addr` and its `map` addresses
                        // out of its dynamic pool.
                        if let Some(own) = x.own_v4 {
                            kp.withhold(own);
                        }
                        kp.block_where(|a| x.eam.v4_to_v6(a).is_some());
                        Some(kp)
                    }
                    None => None,
                };
                (
                    None,
                    kp,
                    Mode::Siit {
                        dynamic: x.dynamic_pool.map(|(a, l)| (u32::from(a), l)),
                        own_v4: x.own_v4,
                        own_v6: x.own_v6,
                        rfc6791: x.rfc6791.clone(),
                        clat: x.clat,
                    },
                )
            }
        };
        let eam = match &cfg.napt {
            NaptConfig::Siit(x) => x.eam.clone(),
            _ => EamTable::new(),
        };
        let block_mode = matches!(&cfg.napt, NaptConfig::Daemon(p) if p.port_block_size.is_some());
        let t = cfg.timeouts;
        let sh = Shared {
            prefix: cfg.prefix,
            wkp_strict: cfg.wkp_strict,
            filtering: cfg.filtering,
            xlat: cfg.xlat,
            mode,
            timeouts: [t.udp, t.tcp_est, t.tcp_trans, t.icmp, t.frag]
                .map(|d| AtomicU64::new(ms(d))),
            factory,
            ctl: Mutex::new(Control {
                w,
                sessions: Vec::new(),
                leases: Vec::new(),
                cursor: 0,
                lease_cursor: 0,
                pool,
                kpool,
                clients: HashMap::new(),
                adf: HashMap::new(),
                limits: cfg.limits,
                hook: None,
                flow_hook: None,
                last_now: 0,
                nbindings: PerProto::default(),
                nstatic: 0,
                nsessions: PerProto::default(),
                total_sessions: 0,
                pool_exhausted: 0,
                session_limit_hits: 0,
                client_limit_hits: 0,
                limited_clients: HashMap::new(),
                sites: HashMap::new(),
                lease_sites: HashMap::new(),
                site_limit_hits: 0,
                lease_generation: 0,
                block_mode,
                adf_on: cfg.filtering == Filtering::AddressDependent,
                dirty: false,
                pending: Index::new(hasher),
                pending_ops: 0,
                pending_hint: pending_hint.clone(),
                flow_queues: cfg.flow_queues.max(1),
                next_owner: 0,
            }),
            pending: pending_hint,
            frags: Mutex::new(FragCache::new(FRAG_CACHE_CAP)),
            held: Mutex::new(Vec::new()),
            eam: ArcSwap::from_pointee(eam),
            flow_hook: std::sync::OnceLock::new(),
        };
        let e = Engine { sh: Arc::new(sh) };
        if let NaptConfig::Kernel(k) = &cfg.napt {
            let mut c = e.sh.lock();
            for &(v6, v4) in &k.maps {
                let dup = c
                    .view()
                    .map(|v| v.lease6(&v6).is_some() || v.lease4(v4).is_some())
                    .unwrap_or(false);
                if dup {
                    return Err(EngineError::Map(v6, v4, "address mapped twice".into()));
                }
                let ok = c.kpool.as_mut().is_some_and(|k| k.reserve(v4));
                if !ok {
                    return Err(EngineError::Map(v6, v4, "address mapped twice".into()));
                }
                c.add_lease(v6, v4, true, true, DEAD - 1, 0);
                // Publish per entry so the duplicate check above sees it.
                c.publish();
            }
        }
        for b in cfg.static_bib {
            e.add_static(b)?;
        }
        Ok(e)
    }

    /// A data-plane handle (one per thread).
    pub fn worker(&self) -> Worker {
        Worker::new(self.sh.clone())
    }

    /// The reaper (RFC 6146 §3.5.1, §3.5.2.2, §3.5.3 lifetimes): expires up
    /// to [`SWEEP_BUDGET`] entries' worth of work. Call it every few seconds.
    pub fn sweep(&self, now: Timestamp) -> SweepStats {
        self.sweep_budget(now, SWEEP_BUDGET)
    }

    /// [`Engine::sweep`] looking at no more than `budget` entries, so the
    /// writer lock is held only briefly (new flows wait for it; established
    /// flows never do). Resumes where the previous call stopped.
    pub fn sweep_budget(&self, now: Timestamp, budget: usize) -> SweepStats {
        let mut st = SweepStats::default();
        let now_ms = now.0;
        let trans = self.sh.timeout_ms(T_TRANS);
        {
            let mut c = self.sh.lock();
            c.last_now = c.last_now.max(now_ms);
            // One call walks once around each list, starting where the last
            // call stopped ([`Circle`]), so an unbounded budget always
            // covers the whole table.
            let mut left = budget;
            let mut circle = Circle::new(c.cursor, c.sessions.len());
            c.cursor = circle.start;
            let sess_done = loop {
                if left == 0 {
                    break false;
                }
                let n = c.sessions.len();
                let Some(i) = circle.next(&mut c.cursor, n) else {
                    break true;
                };
                left -= 1;
                st.examined += 1;
                let s = c.sessions[i].clone();
                let d = s.deadline.load(Relaxed);
                if d > now_ms {
                    c.cursor += 1;
                    continue;
                }
                // RFC 6146 §3.5.2.2: ESTABLISHED (and one-FIN) sessions
                // whose lifetime ran out get TCP_TRANS in state TRANS.
                if s.proto == L4Proto::Tcp {
                    let cur = s.tcp.load(Relaxed);
                    let offered = cur & Session::OFFERED;
                    if let Some(ns) = tcp_fsm::on_expiry(TcpState::from_u8(cur & !offered)) {
                        if s.deadline
                            .compare_exchange(d, now_ms.saturating_add(trans), Relaxed, Relaxed)
                            .is_ok()
                        {
                            let _ =
                                s.tcp
                                    .compare_exchange(cur, ns as u8 | offered, Relaxed, Relaxed);
                            st.tcp_to_trans += 1;
                            // Idle past its lifetime: off the fast path (a
                            // packet of it now goes through the engine).
                            if let Some(h) = &c.flow_hook {
                                if s.withdraw() {
                                    h(FlowEvent::Closed(s.flow_pair()));
                                }
                            }
                        }
                        c.cursor += 1;
                        continue;
                    }
                }
                // Claim it; a worker that refreshed it meanwhile wins.
                if s.deadline
                    .compare_exchange(d, DEAD, Relaxed, Relaxed)
                    .is_ok()
                {
                    c.remove_session_at(i, now_ms, Some(&mut st));
                } else {
                    c.cursor += 1;
                }
            };
            // Kernel leases, the same way.
            let mut circle = Circle::new(c.lease_cursor, c.leases.len());
            c.lease_cursor = circle.start;
            let lease_done = loop {
                if left == 0 {
                    break false;
                }
                let n = c.leases.len();
                let Some(i) = circle.next(&mut c.lease_cursor, n) else {
                    break true;
                };
                left -= 1;
                st.examined += 1;
                let l = c.leases[i].clone();
                let d = l.deadline.load(Relaxed);
                if l.is_static || d > now_ms {
                    c.lease_cursor += 1;
                    continue;
                }
                if l.deadline
                    .compare_exchange(d, DEAD, Relaxed, Relaxed)
                    .is_ok()
                {
                    c.remove_lease_at(i, now_ms);
                    st.expired_leases += 1;
                } else {
                    c.lease_cursor += 1;
                }
            };
            st.complete = sess_done && lease_done;
            if st.complete {
                c.give_back_memory();
            }
            c.publish();
        }
        self.sh
            .frags
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .expire(now);
        st.icmp_answers = self.held_answers(now_ms);
        st
    }

    /// RFC 6146 §3.5.2.2: held IPv4 SYNs whose 6 s ran out without an IPv6
    /// SYN for the same connection.
    fn held_answers(&self, now: u64) -> Vec<HeldSynAnswer> {
        let due: Vec<_> = {
            let mut h = self.sh.held.lock().unwrap_or_else(|e| e.into_inner());
            let hold = ms(TCP_INCOMING_SYN);
            let (due, keep): (Vec<_>, Vec<_>) = h
                .drain(..)
                .partition(|(t, _, _)| t.saturating_add(hold) <= now);
            *h = keep;
            due
        };
        if due.is_empty() {
            return Vec::new();
        }
        let c = self.sh.lock();
        let v = c.view();
        due.into_iter()
            .filter(|(_, k, _)| {
                v.as_ref()
                    .is_none_or(|v| v.session4(L4Proto::Tcp, k.2, k.3, k.0, k.1).is_none())
            })
            .map(|(_, _, packet)| HeldSynAnswer { packet })
            .collect()
    }

    /// Every BIB entry (daemon mode) or lease (kernel mode).
    pub fn bindings(&self) -> Vec<BindingInfo> {
        let c = self.sh.lock();
        let Some(v) = c.view() else {
            return Vec::new();
        };
        let mut out: Vec<BindingInfo> = v
            .bindings()
            .map(|b| BindingInfo {
                proto: Some(b.proto),
                v6: (b.v6, b.v6_port),
                v4: (b.v4, b.v4_port),
                is_static: b.is_static,
                sessions: b.sessions.load(Relaxed) as usize,
            })
            .collect();
        out.extend(v.leases().map(|l| BindingInfo {
            proto: None,
            v6: (l.v6, 0),
            v4: (l.v4, 0),
            is_static: l.is_static,
            sessions: 0,
        }));
        out
    }

    pub fn sessions(&self) -> Vec<SessionInfo> {
        let c = self.sh.lock();
        let now = c.last_now;
        c.sessions.iter().map(|s| SessionInfo::of(s, now)).collect()
    }

    pub fn pool_usage(&self) -> Vec<PoolAddrUsage> {
        let c = self.sh.lock();
        let Some(p) = &c.pool else {
            return c
                .kpool
                .as_ref()
                .map(|k| {
                    vec![PoolAddrUsage {
                        addr: Ipv4Addr::from(match &self.sh.mode {
                            Mode::Kernel { inner, .. } => inner.0,
                            Mode::Siit { dynamic, .. } => dynamic.map_or(0, |d| d.0),
                            Mode::Daemon { .. } => 0,
                        }),
                        in_use: PerProto {
                            tcp: k.in_use(),
                            udp: k.in_use(),
                            icmp: k.in_use(),
                        },
                        capacity: PerProto {
                            tcp: k.capacity(),
                            udp: k.capacity(),
                            icmp: k.capacity(),
                        },
                    }]
                })
                .unwrap_or_default();
        };
        let cap = p.capacities();
        p.usage()
            .into_iter()
            .map(|(addr, u)| PoolAddrUsage {
                addr,
                in_use: PerProto {
                    tcp: u[0],
                    udp: u[1],
                    icmp: u[2],
                },
                capacity: cap,
            })
            .collect()
    }

    pub fn counts(&self) -> EngineCounts {
        let (frags, held) = (
            self.sh
                .frags
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len(),
            self.sh.held.lock().unwrap_or_else(|e| e.into_inner()).len(),
        );
        let c = self.sh.lock();
        EngineCounts {
            bindings: c.nbindings,
            static_bindings: c.nstatic,
            sessions: c.nsessions,
            kernel_leases: c.leases.len(),
            pool_exhausted: c.pool_exhausted,
            session_limit_hits: c.session_limit_hits,
            client_session_limit_hits: c.client_limit_hits,
            site_limit_hits: c.site_limit_hits,
            clients_limited: c.limited_clients.len(),
            fragments_cached: frags,
            held_syns: held,
            pool_ports_in_use: c.pool.as_ref().map_or(0, |p| p.ports_in_use()),
            kernel_leases_displaced: c.kpool.as_ref().map_or(0, |k| {
                c.leases
                    .iter()
                    .filter(|l| !l.is_static && k.contains(l.v4) && k.home(&l.v6) != l.v4)
                    .count()
            }),
        }
    }

    /// Adds a static BIB entry (port forwarding) at run time.
    pub fn add_static(&self, b: StaticBinding) -> Result<(), EngineError> {
        if !matches!(self.sh.mode, Mode::Daemon { .. }) {
            return Err(EngineError::StaticInKernelMode);
        }
        let mut c = self.sh.lock();
        let (v4, port) = b.v4;
        let v6 = *b.v6.ip();
        let v6p = b.v6.port();
        if !c.pool.as_ref().is_some_and(|p| p.contains(v4)) {
            return Err(EngineError::StaticNotInPool(b.proto, v4, port));
        }
        if let Some(v) = c.view() {
            if let Some(x) = v.binding4(b.proto, v4, port) {
                return Err(EngineError::StaticConflict(
                    b.proto,
                    v4,
                    port,
                    format!("[{}]:{}", x.v6, x.v6_port),
                ));
            }
            if let Some(x) = v.binding6(b.proto, &v6, v6p) {
                return Err(EngineError::StaticConflict(
                    b.proto,
                    v4,
                    port,
                    format!(
                        "[{}]:{} already maps to {}:{}",
                        x.v6, x.v6_port, x.v4, x.v4_port
                    ),
                ));
            }
        }
        let reserved = c
            .pool
            .as_mut()
            .is_some_and(|p| p.reserve(b.proto, v6, v4, port));
        if !reserved {
            return Err(EngineError::StaticConflict(
                b.proto,
                v4,
                port,
                "a dynamic flow".into(),
            ));
        }
        let now = c.last_now;
        c.add_binding(
            Binding {
                proto: b.proto,
                v6,
                v6_port: v6p,
                v4,
                v4_port: port,
                is_static: true,
                sessions: AtomicU32::new(0),
            },
            now,
        );
        c.publish();
        Ok(())
    }

    /// Removes a static BIB entry and its sessions.
    pub fn remove_static(&self, proto: L4Proto, v4: (Ipv4Addr, u16)) -> Result<(), EngineError> {
        let mut c = self.sh.lock();
        let b = c
            .view()
            .and_then(|v| v.binding4(proto, v4.0, v4.1).cloned())
            .filter(|b| b.is_static)
            .ok_or(EngineError::NoSuchStatic(proto, v4.0, v4.1))?;
        let now = c.last_now;
        let mut i = 0;
        while i < c.sessions.len() {
            let s = &c.sessions[i];
            if s.proto == proto && s.v4 == b.v4 && s.v4_port == b.v4_port {
                s.deadline.store(DEAD, Relaxed);
                c.remove_session_at(i, now, None);
            } else {
                i += 1;
            }
        }
        c.remove_binding(&b, now);
        c.publish();
        Ok(())
    }

    /// Replaces the EAM table (`none` mode, SIGHUP): workers see the new
    /// table from their next packet; nothing else changes, so established
    /// traffic whose mapping stays the same is not disturbed.
    pub fn set_eam(&self, t: EamTable) {
        let t = Arc::new(t);
        if let Some(k) = self.sh.lock_fast().kpool.as_mut() {
            let t = t.clone();
            k.block_where(move |a| t.v4_to_v6(a).is_some());
        }
        self.sh.eam.store(t);
    }

    /// The EAM table in use.
    pub fn eam(&self) -> Arc<EamTable> {
        self.sh.eam.load_full()
    }

    /// True in `none` (SIIT) mode.
    pub fn is_stateless(&self) -> bool {
        matches!(self.sh.mode, Mode::Siit { .. })
    }

    /// New lifetimes, effective for the next packet of each flow (SIGHUP).
    pub fn set_timeouts(&self, t: Timeouts) {
        for (a, d) in self
            .sh
            .timeouts
            .iter()
            .zip([t.udp, t.tcp_est, t.tcp_trans, t.icmp, t.frag])
        {
            if !d.is_zero() {
                a.store(ms(d), Relaxed);
            }
        }
    }

    pub fn timeouts(&self) -> Timeouts {
        let g = |i| Duration::from_millis(self.sh.timeout_ms(i));
        Timeouts {
            udp: g(T_UDP),
            tcp_est: g(T_EST),
            tcp_trans: g(T_TRANS),
            icmp: g(T_ICMP),
            frag: g(T_FRAG),
        }
    }

    /// New session limits (SIGHUP). Existing sessions are kept; a changed
    /// client prefix length recounts clients.
    pub fn set_limits(&self, l: Limits) {
        let mut c = self.sh.lock();
        let len = l.client_prefix_len.min(128);
        if len != c.limits.client_prefix_len {
            let mut clients = HashMap::new();
            for s in &c.sessions {
                *clients.entry(client_key(&s.v6, len)).or_insert(0u32) += 1;
            }
            c.clients = clients;
            c.limited_clients.clear();
        }
        let site = l.site_prefix_len.min(128);
        if site != c.limits.site_prefix_len {
            let mut sites = HashMap::new();
            for s in &c.sessions {
                *sites.entry(client_key(&s.v6, site)).or_insert(0u32) += 1;
            }
            c.sites = sites;
            let mut lease_sites = HashMap::new();
            for x in c.leases.iter().filter(|x| !x.is_static) {
                *lease_sites.entry(client_key(&x.v6, site)).or_insert(0u32) += 1;
            }
            c.lease_sites = lease_sites;
        }
        c.limits = Limits {
            client_prefix_len: len,
            site_prefix_len: site,
            ..l
        };
    }

    /// Calls `hook` for every binding created or expired (the mapping log).
    /// Tells `hook` when sessions may move to the fast path and when they
    /// must leave it ([`FlowEvent`]). Set once, before traffic.
    pub fn set_flow_hook(&self, hook: impl Fn(FlowEvent) + Send + Sync + 'static) {
        let h: FlowHook = Arc::new(hook);
        if self.sh.flow_hook.set(h.clone()).is_ok() {
            self.sh.lock().flow_hook = Some(h);
        }
    }

    /// Traffic of `flows` was seen outside the engine (the fast path's
    /// counters moved): each session's timer is refreshed as a packet of it
    /// would refresh it (RFC 6146 §3.5.2.2: established TCP gets the
    /// established lifetime); in kernel mode, the client's lease, as a
    /// packet of that protocol through the TUN would. Returns how many
    /// sessions (leases) were still there.
    pub fn refresh_flows(&self, flows: &[FlowPair], now: Timestamp) -> usize {
        drop(self.sh.lock()); // publishes sessions still pending
        let h = self.sh.factory.handle();
        let Some(g) = h.enter() else {
            return 0;
        };
        let now = now.as_millis();
        if matches!(self.sh.mode, Mode::Kernel { .. }) {
            return flows
                .iter()
                .filter(|f| {
                    let which = established_timer(f.proto);
                    g.lease6(&f.client.0).is_some_and(|l| {
                        l.v4 == f.pool.0 && l.refresh(now.saturating_add(self.sh.timeout_ms(which)))
                    })
                })
                .count();
        }
        flows
            .iter()
            .filter(|f| {
                let Some(s) = g.session6(f.proto, &f.client.0, f.client.1, f.remote.0, f.remote.1)
                else {
                    return false;
                };
                let which = match f.proto {
                    L4Proto::Udp => T_UDP,
                    L4Proto::Icmp => T_ICMP,
                    L4Proto::Tcp if s.tcp_state() == TcpState::Established => T_EST,
                    L4Proto::Tcp => return !s.is_dead(),
                };
                s.refresh(now.saturating_add(self.sh.timeout_ms(which)))
            })
            .count()
    }

    pub fn set_event_hook(&self, hook: impl Fn(&MappingEvent) + Send + Sync + 'static) {
        self.sh.lock().hook = Some(Arc::new(hook));
    }

    pub fn clear_event_hook(&self) {
        self.sh.lock().hook = None;
    }

    /// Dynamic kernel-mode leases that traffic came back through (the
    /// ones a client has used), for the state file. Unconfirmed leases
    /// (probes, spoofed SYNs) are not persisted.
    pub fn kernel_leases(&self) -> Vec<(Ipv6Addr, Ipv4Addr)> {
        self.sh
            .lock()
            .leases
            .iter()
            .filter(|l| {
                !l.is_static && l.deadline.load(Relaxed) != DEAD && l.confirmed.load(Relaxed)
            })
            .map(|l| (l.v6, l.v4))
            .collect()
    }

    /// Changes whenever the set [`Engine::kernel_leases`] returns may have
    /// changed (the lease journal polls it).
    pub fn lease_generation(&self) -> u64 {
        self.sh.lock().lease_generation
    }

    /// Re-creates leases from the state file (entries whose v6 or v4 is
    /// already taken, or whose v4 is outside `inner-pool`, are skipped).
    /// They live TCP_EST from the last time the engine was told, then
    /// expire like any lease unless traffic refreshes them.
    pub fn restore_kernel_leases(&self, v: &[(Ipv6Addr, Ipv4Addr)]) -> usize {
        let mut c = self.sh.lock();
        let deadline = c.last_now.saturating_add(self.sh.timeout_ms(T_EST));
        let now = c.last_now;
        let mut n = 0;
        for &(v6, v4) in v {
            let taken = c
                .view()
                .map(|x| x.lease6(&v6).is_some() || x.lease4(v4).is_some())
                .unwrap_or(true);
            let Some(k) = c.kpool.as_mut() else {
                return 0;
            };
            if taken || !k.contains(v4) || !k.reserve(v4) {
                continue;
            }
            c.add_lease(v6, v4, false, true, deadline, now);
            c.publish();
            n += 1;
        }
        n
    }

    /// The pool address all flows of `v6` use (pool affinity), while it
    /// has a binding.
    pub fn affinity(&self, v6: &Ipv6Addr) -> Option<Ipv4Addr> {
        self.sh.lock().pool.as_ref().and_then(|p| p.affinity(v6))
    }

    /// The translation prefix.
    pub fn prefix(&self) -> Prefix {
        self.sh.prefix
    }

    /// True for addresses the translator answers for on the IPv4 side.
    pub fn is_local_v4(&self, a: Ipv4Addr) -> bool {
        self.sh.is_local_v4(a)
    }

    /// Approximate bytes of memory the flow tables use (both index copies,
    /// entries, writer lists): for the benchmarks and `show stats`.
    pub fn memory_estimate(&self) -> usize {
        let c = self.sh.lock();
        let idx = c.view().map_or(0, |v| v.table_bytes()) * 2;
        let sess = c.sessions.len() * (std::mem::size_of::<Session>() + 16 + 8);
        let binds = c.nbindings.tcp + c.nbindings.udp + c.nbindings.icmp;
        let b = binds * (std::mem::size_of::<Binding>() + 16);
        let l = c.leases.len() * (std::mem::size_of::<Lease>() + 16 + 8);
        idx + sess + b + l + c.clients.capacity() * 24 + c.adf.capacity() * 24
    }
}

// ---------------------------------------------------------------------------
// Worker
// ---------------------------------------------------------------------------

/// A data-plane handle: owns a wait-free read handle on the flow index.
pub struct Worker {
    m: pipeline::EngineMapper,
    cfg: xlat::Config,
}

impl core::fmt::Debug for Worker {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Worker").finish_non_exhaustive()
    }
}

impl Worker {
    fn new(sh: Arc<Shared>) -> Worker {
        let cfg = sh.xlat;
        Worker {
            m: pipeline::EngineMapper::new(sh),
            cfg,
        }
    }

    /// Translate the packet at `buf[start..start + len]` in place (either
    /// family), including hairpinning (RFC 6146 §3.8).
    pub fn process(
        &mut self,
        buf: &mut [u8],
        start: usize,
        len: usize,
        now: Timestamp,
    ) -> Processed {
        self.process_offload(buf, start, len, now, xlat::Offload::NONE)
    }

    /// [`Worker::process`] for a packet that came with TUN offload metadata
    /// (GSO super-packet, partial checksum), see [`xlat::Offload`].
    pub fn process_offload(
        &mut self,
        buf: &mut [u8],
        start: usize,
        len: usize,
        now: Timestamp,
        off: xlat::Offload,
    ) -> Processed {
        pipeline::process(&mut self.m, &self.cfg, buf, start, len, now, off)
    }

    /// The mapping hook itself, for callers that drive
    /// [`xlat::translate`] directly (tests, `replay`). Set the time first
    /// with [`Worker::set_now`].
    pub fn mapper(&mut self) -> &mut impl xlat::Mapper {
        &mut self.m
    }

    pub fn set_now(&mut self, now: Timestamp) {
        self.m.now = now.0;
    }
}

/// What [`Worker::process`] did with one packet: everything the data plane
/// needs, returned with the call rather than read afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processed {
    /// Forward, answer with an ICMP error, or drop (RFC 7915, RFC 6146).
    pub verdict: crate::Verdict,
    /// The owner queue of the session the packet belongs to (daemon mode;
    /// `EngineConfig::flow_queues`): the data plane writes a forwarded
    /// packet through that queue so that the kernel steers the flow there
    /// (ADR 0005). None for packets that reached no session (kernel and
    /// SIIT modes, the translator's own addresses, most drops).
    pub owner: Option<u8>,
}

/// Every protocol the tables know.
pub const PROTOCOLS: [L4Proto; 3] = PROTOS;
