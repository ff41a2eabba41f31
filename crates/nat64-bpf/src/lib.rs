//! NAT64 kernel fast path: a tc-BPF program that translates the packets of
//! *established* flows in the kernel (RFC 7915 §4/§5: TCP, UDP, ICMP echo),
//! and the
//! loader the daemon drives it with.
//!
//! The daemon keeps translating in user space through its TUN; for a flow it
//! has set up (and only for one), it installs the two directions here with
//! [`FastPath::insert_6to4`] / [`FastPath::insert_4to6`], giving the incoming
//! 5-tuple and the outgoing addresses and ports its [`nat64_core::xlat::Mapper`]
//! chose. From then on packets of that flow arriving on an attached interface
//! are translated by the program exactly as `nat64_core::xlat::translate`
//! would (the conformance tests compare bytes), routed with
//! `bpf_fib_lookup` and sent with `bpf_redirect_neigh`, never reaching the
//! TUN. Anything the program does not translate the same way (TCP
//! SYN/FIN/RST, fragments, extension headers, IPv4 options, TTL expiry,
//! zero UDP checksums, other protocols, too big for the egress MTU,
//! malformed) is passed to the stack untouched, and so to the TUN path. See
//! `README.md` for the design.
//!
//! Per-flow counters (`last_seen_ns`, `packets`, `bytes`) are kept by the
//! program for the daemon's reaper; `last_seen_ns` is `bpf_ktime_get_ns()`,
//! i.e. `CLOCK_MONOTONIC` ([`monotonic_now_ns`]).

mod abi;
mod batch;
mod filter;
mod test_run;

pub use abi::{Flow4Key, Flow6Key, RawConfig, RawCounters, RawRoute, To4Value, To6Value};
pub use nat64_core::xlat::{L4Proto, Tuple4 as Flow4, Tuple6 as Flow6};
pub use test_run::{SkBuffCtx, TestRunOutput};

use abi::{IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP};
use aya::maps::{Array, HashMap, MapData, MapError, PerCpuArray};
use aya::programs::tc::{self, TcAttachOptions, TcError};
use aya::programs::{LinkOrder, ProgramError, SchedClassifier, TcAttachType};
use aya::{EbpfError, EbpfLoader};
use core::net::{Ipv4Addr, Ipv6Addr};
use filter::{Half, MissFilter};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// Name of the program (its function in `bpf/nat64_xlat.bpf.c`); also the
/// name of the netlink tc filter in the fallback attach mode, by which stale
/// filters are found.
pub const PROGRAM_NAME: &str = "nat64_xlat";

/// The program for an L3 device's egress (no Ethernet header): kernel
/// mode attaches it to the TUN ([`FastPath::attach_at`], [`Hook::L3Egress`]).
pub const PROGRAM_L3_NAME: &str = "nat64_xlat_l3";

/// Flow table size when the caller has no opinion.
pub const DEFAULT_MAX_FLOWS: u32 = 65536;

/// Per-flow flag: translate, then hand the packet to the local stack
/// ([`Config::to_stack`]) rather than route and redirect it.
pub const FLOW_STACK_FORWARD: u32 = 0x1;

/// The compiled program, when the build had clang.
fn object() -> Option<&'static [u8]> {
    #[cfg(not(nat64_bpf_no_object))]
    {
        Some(aya::include_bytes_aligned!(concat!(
            env!("OUT_DIR"),
            "/nat64_xlat.bpf.o"
        )))
    }
    #[cfg(nat64_bpf_no_object)]
    {
        None
    }
}

/// Whether this build carries the BPF program (false: built without clang
/// or the libbpf headers, and [`FastPath::load`] fails).
pub fn built_with_program() -> bool {
    object().is_some()
}

/// Why the fast path is not available or an operation on it failed. The
/// daemon logs it and runs the TUN path alone.
#[derive(Debug, thiserror::Error)]
pub enum FastPathError {
    #[error(
        "the kernel fast path was built without clang or the libbpf headers \
         (run contrib/setup.sh, then rebuild)"
    )]
    BuiltWithoutClang,
    #[error(
        "no BPF support in this kernel (CONFIG_BPF_SYSCALL) or not permitted \
         (needs CAP_BPF and CAP_NET_ADMIN): {0}"
    )]
    NoBpf(#[source] io::Error),
    #[error("the kernel refused the program ({error}); verifier log tail:\n{log_tail}")]
    Rejected { error: io::Error, log_tail: String },
    #[error("loading the BPF object: {0}")]
    Load(#[source] EbpfError),
    #[error("max_flows must be at least 1")]
    ZeroFlows,
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("no interface named {0:?}")]
    NoInterface(String),
    #[error(
        "interface {0:?} is not an Ethernet interface (link type {1}): the fast path \
         handles Ethernet frames only"
    )]
    NotEthernet(String, u16),
    #[error(
        "interface {0:?} is not an L3 device (link type {1}): the L3 program reads \
         packets that start with their IP header (a TUN)"
    )]
    NotL3(String, u16),
    #[error("attaching to {ifname}: {source}")]
    Attach {
        ifname: String,
        #[source]
        source: ProgramError,
    },
    #[error("the flows' protocols differ ({0:?} in, {1:?} out)")]
    ProtocolMismatch(L4Proto, L4Proto),
    #[error("flow table full ({0} entries)")]
    TableFull(u32),
    #[error("BPF map {map}: {source}")]
    Map {
        map: &'static str,
        #[source]
        source: MapError,
    },
    #[error("BPF_PROG_TEST_RUN: {0}")]
    TestRun(#[source] io::Error),
}

/// Counters of one flow entry, kept by the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counters {
    /// `CLOCK_MONOTONIC` ns of the last translated packet (of the insert
    /// when none yet); compare with [`monotonic_now_ns`].
    pub last_seen_ns: u64,
    /// Packets translated.
    pub packets: u64,
    /// Their IP bytes as received (before translation).
    pub bytes: u64,
}

impl Counters {
    /// Nanoseconds since the flow was last seen, at `now_ns`
    /// ([`monotonic_now_ns`]).
    pub fn idle_ns(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.last_seen_ns)
    }
}

impl From<RawCounters> for Counters {
    fn from(c: RawCounters) -> Self {
        Counters {
            last_seen_ns: c.last_seen_ns,
            packets: c.packets,
            bytes: c.bytes,
        }
    }
}

/// Every entry of flow map `map` (named `name`; `fd` a descriptor of it)
/// into `into`, by its counters (`counters` of a value): in batches, entry
/// by entry on kernels without batch operations.
fn read_counters<K, V>(
    fd: std::os::fd::BorrowedFd<'_>,
    map: &HashMap<MapData, K, V>,
    name: &'static str,
    into: &mut foldhash::HashMap<K, RawCounters>,
    counters: fn(&V) -> RawCounters,
) -> Result<(), FastPathError>
where
    K: aya::Pod + Eq + std::hash::Hash,
    V: aya::Pod,
{
    match batch::lookup_all(fd, |k: &K, v: &V| {
        into.insert(*k, counters(v));
    }) {
        Ok(()) => {}
        Err(e) if batch::unsupported(&e) => {
            for r in map.iter() {
                let (k, v) = r.map_err(map_err(name))?;
                into.insert(k, counters(&v));
            }
        }
        Err(source) => {
            return Err(FastPathError::Sys {
                what: format!("reading {name} in batches"),
                source,
            })
        }
    }
    Ok(())
}

/// Every installed flow's counters at one moment ([`FastPath::snapshot`]).
#[derive(Debug, Default)]
pub struct Snapshot {
    six: foldhash::HashMap<Flow6Key, RawCounters>,
    four: foldhash::HashMap<Flow4Key, RawCounters>,
}

impl Snapshot {
    /// Counters of a flow's IPv6 → IPv4 entry, if installed.
    pub fn counters_6to4(&self, in_: &Flow6) -> Option<Counters> {
        self.six.get(&key6(in_)).map(|&c| c.into())
    }

    /// Counters of a flow's IPv4 → IPv6 entry, if installed.
    pub fn counters_4to6(&self, in_: &Flow4) -> Option<Counters> {
        self.four.get(&key4(in_)).map(|&c| c.into())
    }

    /// Entries each way.
    pub fn len(&self) -> (usize, usize) {
        (self.six.len(), self.four.len())
    }
}

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of [`Counters::last_seen_ns`]
/// (`bpf_ktime_get_ns`).
pub fn monotonic_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always
    // exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// How translated packets leave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarding {
    /// `bpf_fib_lookup` for the translated destination (with the translated
    /// size: a packet above the route's MTU is passed to the TUN path, which
    /// answers Packet Too Big / Fragmentation Needed), then
    /// `bpf_redirect_neigh` to the route's interface. `fib_ifindex`: the
    /// interface the lookup runs as if the packet came in on (the TUN's, so
    /// policy routing sees what the user-space path sees); 0: the interface
    /// it arrived on.
    Redirect { fib_ifindex: u32 },
    /// Translate and hand every packet to the local stack, as
    /// [`Config::to_stack`] says. Also what `BPF_PROG_TEST_RUN` tests use.
    Stack,
}

/// Packets handed to the stack ([`Forwarding::Stack`], or a flow installed
/// with [`FLOW_STACK_FORWARD`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ToStack {
    /// Where they enter it: None, the interface they arrived on
    /// (`TC_ACT_OK`); `Some(ifindex)`, that interface's ingress
    /// (`bpf_redirect` with `BPF_F_INGRESS`). Kernel mode names its TUN: a
    /// translated packet then enters the stack exactly as one nat64 wrote
    /// into the TUN would (firewall rules on `iifname`, rp_filter and policy
    /// routing see the same).
    pub into: Option<u32>,
    /// Translated packets (or GSO segments) above these sizes are passed
    /// untranslated instead (0: no check): no route lookup judges them.
    pub mtu4: u16,
    pub mtu6: u16,
}

/// The program's settings (RFC 7915 knobs mirror `nat64_core::xlat::Config`:
/// set them alike, or the two paths translate differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// False: every packet is passed (the maps and links stay).
    pub enabled: bool,
    pub forwarding: Forwarding,
    pub to_stack: ToStack,
    /// RFC 7915 §4.1 lowest-ipv6-mtu: an IPv4 packet without DF whose
    /// translation is larger is passed (the TUN path fragments it).
    pub lowest_ipv6_mtu: u16,
    pub copy_tos: bool,
    pub decrement_ttl: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            enabled: true,
            forwarding: Forwarding::Redirect { fib_ifindex: 0 },
            to_stack: ToStack::default(),
            lowest_ipv6_mtu: 1280,
            copy_tos: true,
            decrement_ttl: true,
        }
    }
}

impl Config {
    fn raw(&self) -> RawConfig {
        let mut r = RawConfig {
            lowest_ipv6_mtu: self.lowest_ipv6_mtu,
            mtu4: self.to_stack.mtu4,
            mtu6: self.to_stack.mtu6,
            stack_ifindex: self.to_stack.into.unwrap_or(0),
            ..RawConfig::default()
        };
        if !self.enabled {
            r.flags |= abi::CFG_DISABLED;
        }
        if !self.copy_tos {
            r.flags |= abi::CFG_NO_COPY_TOS;
        }
        if !self.decrement_ttl {
            r.flags |= abi::CFG_NO_DECREMENT_TTL;
        }
        match self.forwarding {
            Forwarding::Redirect { fib_ifindex } => r.fib_ifindex = fib_ifindex,
            Forwarding::Stack => r.flags |= abi::CFG_STACK_FORWARD,
        }
        r
    }
}

/// What happened to packets, by reason: the program's per-CPU `stats`
/// array, in the order of `enum nat64_stat` in `bpf/nat64_xlat.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stat {
    Xlat6to4,
    Xlat4to6,
    PassNotIp,
    PassMiss,
    PassTcpFlags,
    PassFragment,
    PassExtHeader,
    PassIpv4Options,
    PassTtl,
    PassUdpZeroChecksum,
    PassProto,
    PassMtu,
    PassMalformed,
    PassFib,
    PassDisabled,
    Error,
}

impl Stat {
    pub const ALL: [Stat; 16] = [
        Stat::Xlat6to4,
        Stat::Xlat4to6,
        Stat::PassNotIp,
        Stat::PassMiss,
        Stat::PassTcpFlags,
        Stat::PassFragment,
        Stat::PassExtHeader,
        Stat::PassIpv4Options,
        Stat::PassTtl,
        Stat::PassUdpZeroChecksum,
        Stat::PassProto,
        Stat::PassMtu,
        Stat::PassMalformed,
        Stat::PassFib,
        Stat::PassDisabled,
        Stat::Error,
    ];

    /// A metric label.
    pub const fn name(self) -> &'static str {
        match self {
            Stat::Xlat6to4 => "xlat_6to4",
            Stat::Xlat4to6 => "xlat_4to6",
            Stat::PassNotIp => "pass_not_ip",
            Stat::PassMiss => "pass_miss",
            Stat::PassTcpFlags => "pass_tcp_flags",
            Stat::PassFragment => "pass_fragment",
            Stat::PassExtHeader => "pass_ext_header",
            Stat::PassIpv4Options => "pass_ipv4_options",
            Stat::PassTtl => "pass_ttl",
            Stat::PassUdpZeroChecksum => "pass_udp_zero_checksum",
            Stat::PassProto => "pass_proto",
            Stat::PassMtu => "pass_mtu",
            Stat::PassMalformed => "pass_malformed",
            Stat::PassFib => "pass_fib",
            Stat::PassDisabled => "pass_disabled",
            Stat::Error => "error",
        }
    }
}

/// Totals of the program's per-CPU counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats([u64; Stat::ALL.len()]);

impl Stats {
    pub fn get(&self, s: Stat) -> u64 {
        self.0[s as usize]
    }
    /// `(label, count)` for every reason.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Stat::ALL.iter().map(|s| (s.name(), self.get(*s)))
    }
}

/// What the kernel reports about the loaded program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramStats {
    /// Instructions the verifier processed (all paths).
    pub verified_insns: Option<u32>,
    /// Size of the program after verification, in bytes (8 per insn).
    pub xlated_bytes: Option<u32>,
    /// Size of the JIT-compiled code in bytes (0 without JIT).
    pub jited_bytes: u32,
}

/// Requested attach mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachMode {
    /// TCX, or netlink when the kernel has no TCX (< 6.6).
    Auto,
    /// TCX only (a `bpf_link`: the kernel detaches it when its fd closes,
    /// i.e. when the process dies, however it dies).
    Tcx,
    /// A classic tc filter on a `clsact` qdisc. Such filters outlive the
    /// process: filters named [`PROGRAM_NAME`] on the interface are removed
    /// before attaching.
    Netlink,
}

/// How an interface ended up attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attached {
    Tcx,
    Netlink,
}

/// Where a program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// tc ingress of an Ethernet interface ([`PROGRAM_NAME`]): both
    /// directions.
    EthernetIngress,
    /// tc egress of an L3 device ([`PROGRAM_L3_NAME`]): IPv4 → IPv6.
    L3Egress,
}

impl Hook {
    /// "ingress" or "egress", for log lines.
    pub const fn direction(self) -> &'static str {
        match self {
            Hook::EthernetIngress => "ingress",
            Hook::L3Egress => "egress",
        }
    }
    fn program(self) -> &'static str {
        match self {
            Hook::EthernetIngress => PROGRAM_NAME,
            Hook::L3Egress => PROGRAM_L3_NAME,
        }
    }
    fn tc(self) -> TcAttachType {
        match self {
            Hook::EthernetIngress => TcAttachType::Ingress,
            Hook::L3Egress => TcAttachType::Egress,
        }
    }
}

struct Link {
    ifname: String,
    hook: Hook,
    kind: Attached,
    /// Detaches on drop.
    _link: tc::SchedClassifierLink,
}

/// The loaded program, its maps and its attachments. Dropping it detaches
/// the program from every interface and frees the maps.
pub struct FastPath {
    links: Vec<Link>,
    flows6: HashMap<MapData, Flow6Key, To4Value>,
    flows4: HashMap<MapData, Flow4Key, To6Value>,
    /// The two flow maps' descriptors again, for batched reads
    /// ([`FastPath::snapshot`]).
    flows6_fd: OwnedFd,
    flows4_fd: OwnedFd,
    config: Array<MapData, RawConfig>,
    stats: PerCpuArray<MapData, u64>,
    filter: MissFilter,
    ebpf: aya::Ebpf,
    max_flows: u32,
}

fn map_err(map: &'static str) -> impl Fn(MapError) -> FastPathError {
    move |source| FastPathError::Map { map, source }
}

/// "Not there or not allowed" as opposed to "refused".
fn is_no_bpf(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM))
}

fn load_error(e: EbpfError) -> FastPathError {
    match e {
        EbpfError::MapError(MapError::CreateError { io_error, .. }) if is_no_bpf(&io_error) => {
            FastPathError::NoBpf(io_error)
        }
        EbpfError::MapError(MapError::SyscallError(s)) if is_no_bpf(&s.io_error) => {
            FastPathError::NoBpf(s.io_error)
        }
        EbpfError::ProgramError(p) => program_load_error(p),
        other => FastPathError::Load(other),
    }
}

fn program_load_error(p: ProgramError) -> FastPathError {
    match p {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = format!("{verifier_log:?}");
            if is_no_bpf(&io_error) && log.trim().is_empty() {
                return FastPathError::NoBpf(io_error);
            }
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            FastPathError::Rejected {
                error: io_error,
                log_tail: tail,
            }
        }
        ProgramError::SyscallError(s) if is_no_bpf(&s.io_error) => FastPathError::NoBpf(s.io_error),
        other => FastPathError::Load(EbpfError::ProgramError(other)),
    }
}

/// Protocol numbers of a flow's packets on each side (an echo's identifier
/// is both "ports", RFC 6146 §3.4: a flow's tuple carries it twice).
fn proto_num(p: L4Proto, v6: bool) -> u8 {
    match p {
        L4Proto::Tcp => IPPROTO_TCP,
        L4Proto::Udp => IPPROTO_UDP,
        L4Proto::Icmp if v6 => IPPROTO_ICMPV6,
        L4Proto::Icmp => IPPROTO_ICMP,
    }
}

fn proto_of(n: u8) -> L4Proto {
    match n {
        IPPROTO_TCP => L4Proto::Tcp,
        IPPROTO_UDP => L4Proto::Udp,
        _ => L4Proto::Icmp,
    }
}

fn key6(t: &Flow6) -> Flow6Key {
    Flow6Key::new(
        t.src,
        t.src_port,
        t.dst,
        t.dst_port,
        proto_num(t.proto, true),
    )
}

fn key4(t: &Flow4) -> Flow4Key {
    Flow4Key::new(
        t.src,
        t.src_port,
        t.dst,
        t.dst_port,
        proto_num(t.proto, false),
    )
}

fn flow6(k: &Flow6Key) -> Flow6 {
    Flow6 {
        proto: proto_of(k.proto),
        src: Ipv6Addr::from(k.src),
        src_port: u16::from_be_bytes(k.sport),
        dst: Ipv6Addr::from(k.dst),
        dst_port: u16::from_be_bytes(k.dport),
    }
}

fn flow4(k: &Flow4Key) -> Flow4 {
    Flow4 {
        proto: proto_of(k.proto),
        src: Ipv4Addr::from(k.src),
        src_port: u16::from_be_bytes(k.sport),
        dst: Ipv4Addr::from(k.dst),
        dst_port: u16::from_be_bytes(k.dport),
    }
}

/// `BPF_NOEXIST`: a map update that only adds.
const BPF_NOEXIST: u64 = 1;

/// Installs a key with `insert(flags)` counted in the miss filter: its bit
/// is set before the entry exists; a replaced entry was counted already.
/// Errors name the flow map `map` (of `max` entries).
fn insert_counted(
    filter: &mut MissFilter,
    half: Half,
    key: &[u8],
    (map, max): (&'static str, u32),
    mut insert: impl FnMut(u64) -> Result<(), MapError>,
) -> Result<(), FastPathError> {
    filter.add(half, key).map_err(map_err("flow_filter"))?;
    let r = match insert(BPF_NOEXIST) {
        Err(MapError::SyscallError(s)) if s.io_error.raw_os_error() == Some(libc::EEXIST) => {
            filter.sub(half, key);
            return insert(0).map_err(insert_error(map, max));
        }
        r => r,
    };
    if r.is_err() {
        filter.sub(half, key);
    }
    r.map_err(insert_error(map, max))
}

fn insert_error(map: &'static str, max: u32) -> impl Fn(MapError) -> FastPathError {
    move |e| match &e {
        MapError::SyscallError(s) if s.io_error.raw_os_error() == Some(libc::E2BIG) => {
            FastPathError::TableFull(max)
        }
        _ => FastPathError::Map { map, source: e },
    }
}

impl FastPath {
    /// Loads the program and creates its maps (`max_flows` entries per
    /// direction); the verifier runs here. Nothing is attached yet. The
    /// configuration is [`Config::default`].
    pub fn load(max_flows: u32) -> Result<FastPath, FastPathError> {
        let bytes = object().ok_or(FastPathError::BuiltWithoutClang)?;
        if max_flows == 0 {
            return Err(FastPathError::ZeroFlows);
        }
        let mut ebpf = EbpfLoader::new()
            .map_max_entries("flows_6to4", max_flows)
            .map_max_entries("flows_4to6", max_flows)
            .load(bytes)
            .map_err(load_error)?;
        for name in [PROGRAM_NAME, PROGRAM_L3_NAME] {
            let prog: &mut SchedClassifier = ebpf
                .program_mut(name)
                .expect("the object has the program")
                .try_into()
                .expect("a classifier");
            prog.load().map_err(program_load_error)?;
        }
        let take = |ebpf: &mut aya::Ebpf, name: &str| {
            ebpf.take_map(name)
                .unwrap_or_else(|| panic!("the object has map {name}"))
        };
        // A second descriptor of a hash map, for what aya does not wrap.
        let dup = |m: &aya::maps::Map| match m {
            aya::maps::Map::HashMap(d) => {
                d.fd()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|source| FastPathError::Sys {
                        what: "duplicating a map descriptor".into(),
                        source,
                    })
            }
            _ => unreachable!("flow maps are hash maps"),
        };
        let (m6, m4) = (take(&mut ebpf, "flows_6to4"), take(&mut ebpf, "flows_4to6"));
        let (flows6_fd, flows4_fd) = (dup(&m6)?, dup(&m4)?);
        let flows6 = HashMap::try_from(m6).map_err(map_err("flows_6to4"))?;
        let flows4 = HashMap::try_from(m4).map_err(map_err("flows_4to6"))?;
        let config = Array::try_from(take(&mut ebpf, "config")).map_err(map_err("config"))?;
        let stats = PerCpuArray::try_from(take(&mut ebpf, "stats")).map_err(map_err("stats"))?;
        let filter = MissFilter::new(
            Array::try_from(take(&mut ebpf, "flow_filter")).map_err(map_err("flow_filter"))?,
        );
        let mut fp = FastPath {
            links: Vec::new(),
            flows6,
            flows4,
            flows6_fd,
            flows4_fd,
            config,
            stats,
            filter,
            ebpf,
            max_flows,
        };
        fp.set_config(&Config::default())?;
        Ok(fp)
    }

    /// Entries per direction.
    pub fn max_flows(&self) -> u32 {
        self.max_flows
    }

    /// Replaces the program's settings (takes effect for the next packet).
    pub fn set_config(&mut self, cfg: &Config) -> Result<(), FastPathError> {
        self.config.set(0, cfg.raw(), 0).map_err(map_err("config"))
    }

    /// The settings in force.
    pub fn config_raw(&self) -> Result<RawConfig, FastPathError> {
        self.config.get(&0, 0).map_err(map_err("config"))
    }

    fn program(&self) -> &SchedClassifier {
        self.ebpf
            .program(PROGRAM_NAME)
            .expect("the object has the program")
            .try_into()
            .expect("a classifier")
    }

    fn program_mut(&mut self, name: &str) -> &mut SchedClassifier {
        self.ebpf
            .program_mut(name)
            .expect("the object has the program")
            .try_into()
            .expect("a classifier")
    }

    /// Verifier and size figures of the loaded program.
    pub fn program_stats(&self) -> Result<ProgramStats, FastPathError> {
        let info = self
            .program()
            .info()
            .map_err(|e| FastPathError::Load(EbpfError::ProgramError(e)))?;
        Ok(ProgramStats {
            verified_insns: info.verified_instruction_count(),
            xlated_bytes: info.size_translated(),
            jited_bytes: info.size_jitted(),
        })
    }

    /// Attaches the program at the tc ingress of `ifname` (TCX when the
    /// kernel has it, else a netlink filter). Attaching an interface this
    /// `FastPath` already holds is a no-op.
    pub fn attach(&mut self, ifname: &str) -> Result<Attached, FastPathError> {
        self.attach_with(ifname, AttachMode::Auto)
    }

    /// [`FastPath::attach`] with the mechanism chosen.
    pub fn attach_with(
        &mut self,
        ifname: &str,
        mode: AttachMode,
    ) -> Result<Attached, FastPathError> {
        self.attach_hook(ifname, Hook::EthernetIngress, mode)
    }

    /// Attaches the program for `hook` to `ifname` ([`Hook::L3Egress`]:
    /// [`PROGRAM_L3_NAME`] at the tc egress of an L3 device, kernel mode's
    /// TUN), TCX or netlink as [`FastPath::attach`].
    pub fn attach_at(&mut self, ifname: &str, hook: Hook) -> Result<Attached, FastPathError> {
        self.attach_hook(ifname, hook, AttachMode::Auto)
    }

    fn attach_hook(
        &mut self,
        ifname: &str,
        hook: Hook,
        mode: AttachMode,
    ) -> Result<Attached, FastPathError> {
        if let Some(l) = self
            .links
            .iter()
            .find(|l| l.ifname == ifname && l.hook == hook)
        {
            return Ok(l.kind);
        }
        match (hook, link_type(ifname)) {
            (Hook::EthernetIngress, Ok(ARPHRD_ETHER)) | (Hook::L3Egress, Ok(ARPHRD_NONE)) => {}
            (Hook::EthernetIngress, Ok(t)) => {
                return Err(FastPathError::NotEthernet(ifname.into(), t))
            }
            (Hook::L3Egress, Ok(t)) => return Err(FastPathError::NotL3(ifname.into(), t)),
            (_, Err(e)) if e.raw_os_error() == Some(libc::ENODEV) => {
                return Err(FastPathError::NoInterface(ifname.into()))
            }
            // Let the attach itself report other problems.
            (_, Err(_)) => {}
        }
        let attach_err = |source: ProgramError| match source {
            ProgramError::TcError(TcError::IoError(e))
                if e.raw_os_error() == Some(libc::ENODEV) =>
            {
                FastPathError::NoInterface(ifname.into())
            }
            source => FastPathError::Attach {
                ifname: ifname.into(),
                source,
            },
        };
        let tcx = match mode {
            AttachMode::Netlink => None,
            AttachMode::Tcx | AttachMode::Auto => {
                let prog = self.program_mut(hook.program());
                let r = prog.attach_with_options(
                    ifname,
                    hook.tc(),
                    TcAttachOptions::TcxOrder(LinkOrder::default()),
                );
                match r {
                    Ok(id) => Some(prog.take_link(id).map_err(attach_err)?),
                    Err(ProgramError::SyscallError(s))
                        if mode == AttachMode::Auto && tcx_unsupported(&s.io_error) =>
                    {
                        None
                    }
                    Err(e) => return Err(attach_err(e)),
                }
            }
        };
        let (link, kind) = match tcx {
            Some(link) => (link, Attached::Tcx),
            None => {
                // A clsact qdisc may be there already (EEXIST): fine. Any
                // real problem shows in the attach below.
                let _ = tc::qdisc_add_clsact(ifname);
                // Filters of ours left by a process that died (netlink
                // filters are not tied to a file descriptor).
                let _ = tc::qdisc_detach_program(ifname, hook.tc(), hook.program());
                let prog = self.program_mut(hook.program());
                let id = prog
                    .attach_with_options(
                        ifname,
                        hook.tc(),
                        TcAttachOptions::Netlink(tc::NlOptions::default()),
                    )
                    .map_err(attach_err)?;
                (prog.take_link(id).map_err(attach_err)?, Attached::Netlink)
            }
        };
        self.links.push(Link {
            ifname: ifname.to_owned(),
            hook,
            kind,
            _link: link,
        });
        Ok(kind)
    }

    /// Interfaces attached, with how.
    pub fn attached(&self) -> Vec<(String, Attached)> {
        self.links
            .iter()
            .map(|l| (l.ifname.clone(), l.kind))
            .collect()
    }

    /// Detaches the programs from `ifname` (no-op when not attached there).
    pub fn detach(&mut self, ifname: &str) {
        self.links.retain(|l| l.ifname != ifname);
    }

    /// Detaches the program from every interface (also done on drop).
    pub fn detach_all(&mut self) {
        self.links.clear();
    }

    /// Installs (or replaces, counters reset) the IPv6 → IPv4 direction of
    /// a flow: IPv6 packets whose 5-tuple is `in_` become IPv4 packets with
    /// `out`'s addresses and ports. `flags`: [`FLOW_STACK_FORWARD`] or 0.
    /// ICMP echo flows carry the identifier as both ports (as
    /// `nat64_core::xlat::Tuple` does); 6 → 4 writes `out.src_port`, 4 → 6
    /// `out.dst_port`.
    pub fn insert_6to4(
        &mut self,
        in_: &Flow6,
        out: &Flow4,
        flags: u32,
    ) -> Result<(), FastPathError> {
        if in_.proto != out.proto {
            return Err(FastPathError::ProtocolMismatch(in_.proto, out.proto));
        }
        let v = To4Value {
            out: key4(out),
            flags,
            pad: 0,
            c: RawCounters {
                last_seen_ns: monotonic_now_ns(),
                ..RawCounters::default()
            },
            route: RawRoute::default(),
        };
        let k = key6(in_);
        let (filter, flows) = (&mut self.filter, &mut self.flows6);
        let map = ("flows_6to4", self.max_flows);
        insert_counted(filter, Half::SixToFour, abi::bytes_of(&k), map, |flags| {
            flows.insert(k, v, flags)
        })
    }

    /// Installs (or replaces) the IPv4 → IPv6 direction of a flow.
    pub fn insert_4to6(
        &mut self,
        in_: &Flow4,
        out: &Flow6,
        flags: u32,
    ) -> Result<(), FastPathError> {
        if in_.proto != out.proto {
            return Err(FastPathError::ProtocolMismatch(in_.proto, out.proto));
        }
        let v = To6Value {
            out: key6(out),
            flags,
            pad: 0,
            c: RawCounters {
                last_seen_ns: monotonic_now_ns(),
                ..RawCounters::default()
            },
            route: RawRoute::default(),
        };
        let k = key4(in_);
        let (filter, flows) = (&mut self.filter, &mut self.flows4);
        let map = ("flows_4to6", self.max_flows);
        insert_counted(filter, Half::FourToSix, abi::bytes_of(&k), map, |flags| {
            flows.insert(k, v, flags)
        })
    }

    /// Removes a flow's IPv6 → IPv4 entry; returns its last counters
    /// (None: there was none).
    pub fn remove_6to4(&mut self, in_: &Flow6) -> Result<Option<Counters>, FastPathError> {
        let k = key6(in_);
        let last = self.counters_6to4(in_);
        match self.flows6.remove(&k) {
            Ok(()) => {
                self.filter.sub(Half::SixToFour, abi::bytes_of(&k));
                Ok(last)
            }
            Err(MapError::KeyNotFound | MapError::ElementNotFound) => Ok(None),
            Err(MapError::SyscallError(s)) if s.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(None)
            }
            Err(e) => Err(map_err("flows_6to4")(e)),
        }
    }

    /// Removes a flow's IPv4 → IPv6 entry; returns its last counters.
    pub fn remove_4to6(&mut self, in_: &Flow4) -> Result<Option<Counters>, FastPathError> {
        let k = key4(in_);
        let last = self.counters_4to6(in_);
        match self.flows4.remove(&k) {
            Ok(()) => {
                self.filter.sub(Half::FourToSix, abi::bytes_of(&k));
                Ok(last)
            }
            Err(MapError::KeyNotFound | MapError::ElementNotFound) => Ok(None),
            Err(MapError::SyscallError(s)) if s.io_error.raw_os_error() == Some(libc::ENOENT) => {
                Ok(None)
            }
            Err(e) => Err(map_err("flows_4to6")(e)),
        }
    }

    /// Counters of a flow's IPv6 → IPv4 entry.
    pub fn counters_6to4(&self, in_: &Flow6) -> Option<Counters> {
        let k = key6(in_);
        self.flows6.get(&k, 0).ok().map(|v| v.c.into())
    }

    /// Counters of a flow's IPv4 → IPv6 entry.
    pub fn counters_4to6(&self, in_: &Flow4) -> Option<Counters> {
        let k = key4(in_);
        self.flows4.get(&k, 0).ok().map(|v| v.c.into())
    }

    /// The program's cached route of a flow's IPv6 → IPv4 entry (all zero
    /// until a packet was redirected): for diagnostics and tests.
    pub fn route_6to4(&self, in_: &Flow6) -> Option<RawRoute> {
        self.flows6.get(&key6(in_), 0).ok().map(|v| v.route)
    }

    /// The same for a flow's IPv4 → IPv6 entry.
    pub fn route_4to6(&self, in_: &Flow4) -> Option<RawRoute> {
        self.flows4.get(&key4(in_), 0).ok().map(|v| v.route)
    }

    /// Bits set in the miss filter for each map (6 → 4, 4 → 6), read back
    /// from the kernel: at most one per installed entry (fewer when two
    /// keys share a slot), 0 when none is installed.
    pub fn filter_bits(&self) -> Result<(u32, u32), FastPathError> {
        self.filter.bits_set().map_err(map_err("flow_filter"))
    }

    /// The counters of every installed flow, both directions, as of now:
    /// a few batched reads for the whole table (`BPF_MAP_LOOKUP_BATCH`),
    /// entry by entry on kernels without batch operations.
    pub fn snapshot(&self) -> Result<Snapshot, FastPathError> {
        let mut s = Snapshot::default();
        let (six, four) = (&mut s.six, &mut s.four);
        read_counters(
            self.flows6_fd.as_fd(),
            &self.flows6,
            "flows_6to4",
            six,
            |v| v.c,
        )?;
        read_counters(
            self.flows4_fd.as_fd(),
            &self.flows4,
            "flows_4to6",
            four,
            |v| v.c,
        )?;
        Ok(s)
    }

    /// Every IPv6 → IPv4 entry: incoming tuple, outgoing tuple, counters
    /// (for the reaper; entries added or removed meanwhile may or may not
    /// show).
    pub fn flows_6to4(
        &self,
    ) -> impl Iterator<Item = Result<(Flow6, Flow4, Counters), FastPathError>> + '_ {
        self.flows6.iter().map(|r| {
            r.map(|(k, v)| (flow6(&k), flow4(&v.out), v.c.into()))
                .map_err(map_err("flows_6to4"))
        })
    }

    /// Every IPv4 → IPv6 entry.
    pub fn flows_4to6(
        &self,
    ) -> impl Iterator<Item = Result<(Flow4, Flow6, Counters), FastPathError>> + '_ {
        self.flows4.iter().map(|r| {
            r.map(|(k, v)| (flow4(&k), flow6(&v.out), v.c.into()))
                .map_err(map_err("flows_4to6"))
        })
    }

    /// The program's per-reason packet counts, summed over CPUs.
    pub fn stats(&self) -> Result<Stats, FastPathError> {
        let mut s = Stats::default();
        for (i, slot) in s.0.iter_mut().enumerate() {
            let per_cpu = self.stats.get(&(i as u32), 0).map_err(map_err("stats"))?;
            *slot = per_cpu.iter().sum();
        }
        Ok(s)
    }

    /// Runs the program once on `frame` (an Ethernet frame) with
    /// `BPF_PROG_TEST_RUN`, as if it had arrived on an interface (the
    /// loopback device unless `ctx` names one with `ifindex`). For tests:
    /// maps and counters are the live ones.
    pub fn test_run(
        &self,
        frame: &[u8],
        ctx: Option<&SkBuffCtx>,
    ) -> Result<TestRunOutput, FastPathError> {
        let fd = self
            .program()
            .fd()
            .map_err(|e| FastPathError::Load(EbpfError::ProgramError(e)))?
            .as_fd()
            .as_raw_fd();
        test_run::run(fd, frame, ctx)
    }
}

impl Drop for FastPath {
    fn drop(&mut self) {
        self.detach_all();
    }
}

const ARPHRD_ETHER: u16 = 1;
/// A TUN (`IFF_TUN`), WireGuard: packets start with their IP header.
const ARPHRD_NONE: u16 = 0xfffe;

/// The link type (`ARPHRD_*`) of interface `ifname`, from
/// `SIOCGIFHWADDR`: the program reads an Ethernet header at the start of
/// every frame, which L3 devices (TUN, WireGuard) and loopback do not have.
fn link_type(ifname: &str) -> io::Result<u16> {
    // struct ifreq: the name, then a union whose `ifru_hwaddr` sockaddr
    // starts with the link type as sa_family.
    let mut ifr = [0u8; 40];
    let name = ifname.as_bytes();
    if name.is_empty() || name.len() >= 16 || name.contains(&0) {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    ifr[..name.len()].copy_from_slice(name);
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned here only.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    // SAFETY: SIOCGIFHWADDR reads the name and writes a sockaddr within
    // the 40-byte ifreq buffer, which outlives the call.
    let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SIOCGIFHWADDR, ifr.as_mut_ptr()) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(u16::from_ne_bytes([ifr[16], ifr[17]]))
}

/// A TCX attach error meaning "this kernel has no TCX".
fn tcx_unsupported(e: &io::Error) -> bool {
    // EINVAL: unknown attach type (< 6.6); ENOTSUPP (524) / EOPNOTSUPP.
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) | Some(524) | Some(libc::ENOSYS)
    )
}

#[cfg(test)]
mod test {
    /// The daemon moves it to the thread that owns it (or behind a mutex).
    #[test]
    fn fast_path_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<super::FastPath>();
    }
}
