//! `nat64.toml`: the daemon's configuration (docs/operator.md §2–§3).
//!
//! Two layers:
//! * [`FileConfig`] mirrors the TOML file one to one (kebab-case keys,
//!   unknown keys refused). Every field has its default filled in, so
//!   serialising it back gives the *effective* configuration that
//!   `nat64 check` prints.
//! * [`Settings`] is the validated, typed form the daemon runs on. Building it
//!   ([`FileConfig::validate`]) is where every cross-key rule lives; each
//!   violation is a [`ConfigError`] naming the key, the value and the fix.

use anyhow::Context as _;
use nat64_core::addr::{self, Prefix};
use nat64_core::xlat::{L4Proto, UdpZeroChecksum};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub mod derive;
pub mod layers;
pub mod rfc7050;

pub use derive::Derived;
pub use layers::{Layers, Origin};

/// Built-in profiles, accepted by `--config` where a path is and by
/// `profile = "NAME"` inside a file. `mycelium` is another name for
/// `geomind`.
pub const PROFILES: &[(&str, &str)] =
    &[("geomind", GEOMIND_PROFILE), ("mycelium", GEOMIND_PROFILE)];

/// `--config geomind`: a Mycelium node giving its overlay IPv4 egress
/// (docs/operator.md "Mycelium gateway", ADR 0008).
///
/// * The prefix follows the node: Mycelium routes to a node only its own
///   /64, so the NAT64 prefix is `<the node's /64>:0:64::/96`, read from the
///   400::/7 address of Mycelium's TUN (`mycelium` by default) at start
///   ([`derive`]). RFC 6052 §3.1 does not apply to an NSP, and answers from
///   the translator (`prefix || gateway-v4`) are routable over the overlay.
/// * `napt = "kernel"`: every overlay client gets a 1:1 inner IPv4 from
///   100.64.0.0/16 and the host's nftables MASQUERADE does the ports, so the
///   node needs no IPv4 pool of its own: egress uses the host's address.
/// * `gateway-v4 = 100.65.0.1` lies outside the inner pool: the source of
///   the ICMP errors the translator sends, and the TUN's own address, so the
///   gateway kernel's errors come from it too.
/// * A dedicated gateway forwards: `manage-forwarding = true`.
/// * `tun.mtu = 1400`: Mycelium's TUN has MTU 1400, so a larger translated
///   packet could not leave over the overlay without a round of PMTUD.
/// * Leases are kept in /var/lib/nat64/leases so a restart does not
///   renumber clients.
pub const GEOMIND_PROFILE: &str = r#"# built-in profile "geomind" (alias "mycelium"): kernel NAPT for a Mycelium gateway
prefix = "from-interface:mycelium@400::/7"
napt = "kernel"
inner-pool = "100.64.0.0/16"
gateway-v4 = "100.65.0.1"
state-file = "/var/lib/nat64/leases"
manage-forwarding = true

[tun]
name = "nat64"
mtu = 1400
"#;

/// `clat` mode: the IPv4 address of local applications (RFC 7335).
pub const DEFAULT_CLAT_V4: &str = "192.0.0.1";
/// `clat` mode's default `gateway-v4` (the next address of RFC 7335's
/// 192.0.0.0/29): the source of ICMPv4 errors to local applications.
pub const DEFAULT_CLAT_GATEWAY: &str = "192.0.0.2";

/// `kernel` mode's default inner pool (a slice of 100.64.0.0/10).
pub const DEFAULT_INNER_POOL: &str = "100.64.0.0/16";

/// Default metrics listen address (loopback only by default, docs/operator.md §4.2).
pub const DEFAULT_METRICS: &str = "127.0.0.1:9164";
/// Default control socket path.
pub const DEFAULT_CONTROL: &str = "/run/nat64/control.sock";

// ------------------------------------------------------------ file layer ---

/// The TOML file, field for field. Defaults are filled in by serde.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct FileConfig {
    /// A built-in profile this file starts from; every other key of the
    /// file overrides the profile's value (ADR 0008).
    #[serde(skip_serializing)]
    pub profile: Option<String>,
    /// RFC 6052 translation prefix (WKP 64:ff9b::/96 or an NSP), or
    /// `from-interface:NAME[@RANGE]`: `<the /64 of NAME's address>:0:64::/96`
    /// (an overlay node such as Mycelium; [`derive`]).
    pub prefix: String,
    /// `daemon` mode: IPv4 prefixes the NAPT allocates from.
    pub pool: Vec<String>,
    /// The translator's own IPv4 address: source of the ICMPv4 errors it
    /// sends, and (embedded in `prefix`) of its ICMPv6 errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway_v4: Option<String>,
    /// `daemon` (NAPT in the daemon), `kernel` (1:1 + host MASQUERADE) or
    /// `none` (stateless SIIT: RFC 6052 + the EAM table of `[[map]]` and
    /// `map-file`, ADR 0009).
    pub napt: NaptMode,
    /// `kernel` mode: the inner IPv4 range clients are mapped 1:1 into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inner_pool: Option<String>,
    /// `kernel` mode: SNAT the inner pool to this address instead of
    /// masquerading to the egress interface's own address (an HA pair's
    /// VRRP address: the same public address on either node, and no
    /// conntrack flush when an interface address goes away).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub egress_v4: Option<String>,
    /// `kernel` mode in an HA pair: `conntrack` recovers a lease the other
    /// node made from the conntrack entries conntrackd replicated, so flows
    /// where only the server speaks survive a failover too (tracks IPv6
    /// forwarding; [`crate::recovery`]). `off` (default) does nothing.
    pub lease_recovery: LeaseRecoveryMode,
    /// `tc-bpf`: established flows translated by a tc-BPF program on
    /// `fast-path-interfaces` (issue 13; daemon and kernel mode). `auto`
    /// (default): on in daemon mode, off in the others (see
    /// [`FastPathMode::Auto`]). `off`: never.
    pub fast_path: FastPathMode,
    /// The interfaces client and IPv4 traffic arrive on (the program is
    /// attached to their ingress). Empty: the interfaces of the routes
    /// (see [`crate::fastpath`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fast_path_interfaces: Vec<String>,
    /// Flows the program's tables hold (preallocated kernel memory, about
    /// 370 B a flow); flows beyond stay on the TUN path. Default: daemon
    /// mode `limits.max-sessions` up to 262,144; kernel mode 65,536.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fast_path_max_flows: Option<u32>,
    /// RFC 6052 §3.1 enforcement for the Well-Known Prefix.
    pub wkp_strict: bool,
    pub tun: TunSection,
    pub reap_interval_secs: u64,
    pub timeouts: TimeoutsSection,
    pub ports: PortsSection,
    pub farm: FarmSection,
    pub limits: LimitsSection,
    /// Lowest IPv6 path MTU assumed (RFC 7915 §4.1); IPv4 packets without
    /// DF are fragmented to it.
    pub ipv6_mtu: u16,
    /// IPv4 next-hop MTU; default: the TUN's MTU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_mtu: Option<u16>,
    pub udp_zero_checksum: UdpZeroChecksumMode,
    pub filtering: FilteringMode,
    /// IPv6 source of translator-originated ICMPv6 (default prefix||gateway-v4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub icmp_source_v6: Option<String>,
    pub icmp_rate_limit: RateLimitSection,
    /// Router advertisements carrying the prefix as PREF64 (RFC 8781) on
    /// the clients' link, for routers that cannot (off unless `interface`
    /// is set; [`crate::pref64`]).
    pub pref64: Pref64Section,
    /// Prometheus listen address (`host:port`); "" disables.
    pub metrics: String,
    /// Control socket path; "" disables.
    pub control: String,
    /// Log format of `nat64 run`: `human` (default) or `json` (one object a
    /// line, for log shippers).
    pub log_format: LogFormat,
    /// Mapping log: a file binding created/expired lines are appended to
    /// (abuse tracing); "" (default) disables.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mapping_log: String,
    /// Install/remove routes for the prefix and the pool on the TUN.
    /// Default: true with tun.mode = "create", false with "attach".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manage_routes: Option<bool>,
    /// `kernel` mode: install/remove the `ip nat64` nftables table.
    pub manage_nft: bool,
    /// Set net.ipv4.ip_forward and net.ipv6.conf.all.forwarding to 1 at
    /// start (off by default: forwarding changes how the host treats router
    /// advertisements, so it is the operator's call; a warning names it).
    pub manage_forwarding: bool,
    /// Run as this user once the TUN, routes, nft table and sockets are set
    /// up (least privilege; "" stays root). Either way the daemon keeps only
    /// CAP_NET_ADMIN after setup (to remove what it installed at exit), and
    /// its packet, control, metrics and log threads keep no capability.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// `kernel` mode: where dynamic 1:1 leases are persisted (an absolute
    /// file path; "" keeps none, e.g. to turn off a profile's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_file: Option<String>,
    #[serde(rename = "static", skip_serializing_if = "Vec::is_empty")]
    pub static_bib: Vec<StaticEntry>,
    #[serde(rename = "map", skip_serializing_if = "Vec::is_empty")]
    pub maps: Vec<MapEntry>,
    /// `none` mode: a file of explicit address mappings, one
    /// `IPV4[/LEN] IPV6[/LEN]` per line (Tayga's `map` lines too), read at
    /// start and on SIGHUP ([`crate::mapfile`]).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub map_file: String,
    /// `none` mode: IPv4 sources (addresses or prefixes, at most 256
    /// addresses) for the ICMP errors of IPv6 routers that have no mapping
    /// (RFC 6791). Empty: `gateway-v4`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rfc6791_pool: Vec<String>,
    /// `clat` mode: the CLAT's own IPv6 address (RFC 6877 §6.3), the source
    /// of every translated packet: a dedicated address of the uplink's /64
    /// (nat64 answers neighbour solicitations for it on `clat-uplink`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clat_v6: Option<String>,
    /// `clat` mode: the IPv4 address local applications use (RFC 7335:
    /// 192.0.0.1 of 192.0.0.0/29), given to the TUN.
    pub clat_v4: String,
    /// `clat` mode: the uplink interface on which nat64 answers neighbour
    /// solicitations for `clat-v6` (proxy NDP); "" leaves that to you.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub clat_uplink: String,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            profile: None,
            prefix: "64:ff9b::/96".into(),
            pool: Vec::new(),
            gateway_v4: None,
            napt: NaptMode::Daemon,
            inner_pool: None,
            egress_v4: None,
            lease_recovery: LeaseRecoveryMode::Off,
            fast_path: FastPathMode::Auto,
            fast_path_interfaces: Vec::new(),
            fast_path_max_flows: None,
            wkp_strict: true,
            tun: TunSection::default(),
            reap_interval_secs: 30,
            timeouts: TimeoutsSection::default(),
            ports: PortsSection::default(),
            limits: LimitsSection::default(),
            ipv6_mtu: 1280,
            ipv4_mtu: None,
            udp_zero_checksum: UdpZeroChecksumMode::Calc,
            filtering: FilteringMode::EndpointIndependent,
            icmp_source_v6: None,
            icmp_rate_limit: RateLimitSection::default(),
            pref64: Pref64Section::default(),
            farm: FarmSection::default(),
            metrics: DEFAULT_METRICS.into(),
            control: DEFAULT_CONTROL.into(),
            log_format: LogFormat::Human,
            mapping_log: String::new(),
            manage_routes: None,
            manage_nft: true,
            manage_forwarding: false,
            user: String::new(),
            state_file: None,
            static_bib: Vec::new(),
            maps: Vec::new(),
            map_file: String::new(),
            rfc6791_pool: Vec::new(),
            clat_v6: None,
            clat_v4: DEFAULT_CLAT_V4.into(),
            clat_uplink: String::new(),
        }
    }
}

/// `fast-path`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FastPathMode {
    /// The default: `tc-bpf` in daemon mode, where it is faster than the
    /// TUN path on every measured test but small-packet UDP (still above
    /// the kernel's own forwarding); off in kernel mode, where it frees
    /// the translator's CPU but moves small packets slower than the TUN
    /// path (docs/adr/0012), and in SIIT/CLAT, which it does not serve yet.
    Auto,
    Off,
    TcBpf,
}

/// `lease-recovery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaseRecoveryMode {
    Off,
    Conntrack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NaptMode {
    Daemon,
    Kernel,
    /// Stateless SIIT (RFC 7915, RFC 6052, RFC 7757): no ports managed.
    None,
    /// The customer side of 464XLAT (RFC 6877): local IPv4 applications
    /// reach IPv4 through the PLAT's prefix, as `clat-v6`.
    Clat,
}

impl fmt::Display for NaptMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NaptMode::Daemon => "daemon",
            NaptMode::Kernel => "kernel",
            NaptMode::None => "none",
            NaptMode::Clat => "clat",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Plain text lines (coloured on a terminal).
    Human,
    /// One JSON object per line (tracing-subscriber's JSON format).
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UdpZeroChecksumMode {
    Calc,
    Drop,
    Forward,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FilteringMode {
    EndpointIndependent,
    AddressDependent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TunMode {
    /// Create the TUN (or reuse a persistent one of that name) and configure
    /// it: MTU, up, routes.
    Create,
    /// Attach to an existing TUN and take it as it is.
    Attach,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TunSection {
    pub name: String,
    pub mode: TunMode,
    /// MTU to set (create mode). In attach mode the TUN's MTU is read.
    pub mtu: u16,
    /// Queues = worker threads; 0 means one per CPU.
    pub queues: u16,
    /// Open the TUN with a virtio-net header and TSO/USO offloads, so the
    /// kernel hands over and accepts GSO super-packets (up to 64 KiB)
    /// instead of one MTU-sized packet per read/write (ADR 0004).
    pub offload: bool,
    /// Pin worker i to the i-th CPU this process may use (thread-per-core,
    /// ADR 0005). Off by default: on a shared host the scheduler knows better.
    pub pin_workers: bool,
    /// Transmit queue length of a created TUN: packets the kernel may queue
    /// for the workers before it drops (Linux default 500, which overflows
    /// under load and shows up as TCP retransmits; ADR 0005).
    pub txqueuelen: u32,
    /// Translated packets a worker writes to the TUN with one system call
    /// (io_uring; ADR 0006). 1 writes each packet with its own write(2).
    pub batch: u16,
    /// Spread new flows round-robin over the queues (ADR 0005) instead of
    /// leaving their placement to the kernel's flow hash.
    pub place_flows: bool,
    /// Give a created TUN the address `gateway-v4`/32 (unless the host has
    /// it already), so the ICMP errors this host's kernel sends about
    /// translated traffic (e.g. Time Exceeded of its own IPv4 hop) come
    /// from the translator's address rather than from an unrelated
    /// interface's.
    pub assign_gateway_v4: bool,
    /// Write runs of same-flow UDP datagrams in a batch as one UDP GSO
    /// super-packet (needs `offload`; ADR 0006).
    pub coalesce_udp: bool,
    /// Read packets through a multishot io_uring read into a ring of
    /// buffers (Linux 6.7+; needs `batch` > 1; ADR 0007) instead of one
    /// read(2) per packet. Falls back to read(2) where the kernel lacks it.
    pub uring_read: bool,
}

impl Default for TunSection {
    fn default() -> Self {
        TunSection {
            name: "nat64".into(),
            mode: TunMode::Create,
            mtu: 1500,
            queues: 0,
            offload: true,
            pin_workers: false,
            txqueuelen: 5000,
            batch: 32,
            place_flows: true,
            assign_gateway_v4: true,
            coalesce_udp: true,
            uring_read: true,
        }
    }
}

/// Session timeouts in seconds (RFC 6146 §4 defaults).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct TimeoutsSection {
    pub udp: u64,
    pub tcp_established: u64,
    pub tcp_transitory: u64,
    pub icmp: u64,
    /// How long fragments of an incomplete datagram are held.
    pub fragment: u64,
}

impl Default for TimeoutsSection {
    fn default() -> Self {
        TimeoutsSection {
            udp: 300,
            tcp_established: 7440,
            tcp_transitory: 240,
            icmp: 60,
            fragment: 2,
        }
    }
}

/// Port ranges per protocol, `"LOW-HIGH"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct PortsSection {
    pub tcp: String,
    pub udp: String,
    pub icmp: String,
    /// Port-block allocation: ports handed to a client in blocks of this size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_size: Option<u16>,
    /// RFC 7422 deterministic blocks (needs `block-size`): each client
    /// (`limits.client-prefix-len`) gets one block per protocol, its
    /// address and block a pure function of the client and the
    /// configuration (docs/operator.md §2.8).
    pub deterministic: bool,
    /// Deterministic mode: clients of this IPv6 range are numbered, client
    /// `i` getting slot `i`, so no two share a block; others are hashed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub clients: String,
}

/// `[farm]`: this instance's share of `pool` in an ECMP farm of
/// `instances` translators with one configuration (docs/operator.md §2.8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct FarmSection {
    /// This instance's index, from 0.
    pub instance: u32,
    /// Instances sharing the pool: instance `i` of `n` owns the addresses
    /// `[i*A/n, (i+1)*A/n)` of the pool's `A`, in configuration order.
    pub instances: u32,
}

/// A farm in force: this instance, the count and the whole shared pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Farm {
    pub instance: u32,
    pub instances: u32,
    pub whole_pool: Vec<V4Net>,
}

impl Default for FarmSection {
    fn default() -> Self {
        FarmSection {
            instance: 0,
            instances: 1,
        }
    }
}

impl Default for PortsSection {
    fn default() -> Self {
        PortsSection {
            tcp: "1024-65535".into(),
            udp: "1024-65535".into(),
            icmp: "1024-65535".into(),
            block_size: None,
            deterministic: false,
            clients: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Global session limit.
    pub max_sessions: u32,
    /// Session limit per client (a v6 source prefix of `client-prefix-len`).
    pub max_sessions_per_client: u32,
    pub client_prefix_len: u8,
    /// A coarser guard next to the per-client one: a site is a v6 source
    /// prefix of this length (default /64: one subnet, one household, one
    /// overlay node), so sources spoofed from one /64 cannot fill the
    /// tables whatever `client-prefix-len` is.
    pub site_prefix_len: u8,
    /// Sessions one site may hold (daemon mode).
    pub max_sessions_per_site: u32,
    /// Inner addresses one site may lease (kernel mode: one per IPv6
    /// source).
    pub max_leases_per_site: u32,
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_sessions: 1_000_000,
            max_sessions_per_client: 10_000,
            client_prefix_len: 128,
            site_prefix_len: 64,
            max_sessions_per_site: 100_000,
            max_leases_per_site: 256,
        }
    }
}

/// `[pref64]`: nat64's own PREF64 advertisements (RFC 8781).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Pref64Section {
    /// The interface the IPv6 clients are on; "" sends nothing.
    pub interface: String,
    /// Seconds between advertisements; the option's lifetime is three times
    /// this (RFC 8781 §4.1).
    pub interval_secs: u64,
}

impl Default for Pref64Section {
    fn default() -> Self {
        Pref64Section {
            interface: String::new(),
            interval_secs: 60,
        }
    }
}

/// Token bucket for translator-originated ICMP errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct RateLimitSection {
    /// Errors per second (refill rate); 0 sends none.
    pub rate: u32,
    /// Bucket size: errors that may go out back to back.
    pub burst: u32,
}

impl Default for RateLimitSection {
    fn default() -> Self {
        RateLimitSection {
            rate: 100,
            burst: 50,
        }
    }
}

/// A static BIB entry (port forwarding: `v4` reaches the server at `v6`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct StaticEntry {
    /// `tcp`, `udp` or `icmp` (then the ports are echo identifiers).
    pub proto: String,
    /// `[IPv6]:port`.
    pub v6: String,
    /// `IPv4:port`, inside the pool.
    pub v4: String,
}

/// A static 1:1 map, like Tayga's `map`: a host pair in `kernel` mode; in
/// `none` mode an explicit address mapping of two prefixes with equal
/// suffix lengths (RFC 7757), e.g. `v4 = "192.0.2.0/24"`,
/// `v6 = "2001:db8:6::/120"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct MapEntry {
    pub v6: String,
    pub v4: String,
}

// ----------------------------------------------------------------- errors ---

/// A configuration problem: which key, what value, what is wrong, what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.starts_with("line ") || self.key == "file" {
            write!(f, "{}: {}", self.key, self.problem)?;
        } else if self.value.is_empty() {
            write!(f, "`{}`: {}", self.key, self.problem)?;
        } else {
            write!(f, "`{}` = {}: {}", self.key, self.value, self.problem)?;
        }
        write!(f, "\n  fix: {}", self.fix)
    }
}

impl std::error::Error for ConfigError {}

fn err(
    key: impl Into<String>,
    value: impl fmt::Display,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> ConfigError {
    let value = value.to_string();
    ConfigError {
        key: key.into(),
        value: if value.is_empty() {
            value
        } else {
            format!("\"{value}\"")
        },
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// Every problem found, reported together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    pub source: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.errors.len();
        writeln!(
            f,
            "invalid configuration {} ({n} problem{}):",
            self.source,
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            writeln!(f, "- {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

// --------------------------------------------------------------- settings ---

/// An IPv4 prefix `addr/len` with no host bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct V4Net {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl V4Net {
    /// `a.b.c.d/len` (no check of host bits: for constants).
    pub const fn new(a: u8, b: u8, c: u8, d: u8, len: u8) -> V4Net {
        V4Net {
            addr: Ipv4Addr::new(a, b, c, d),
            len,
        }
    }
    pub fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        }
    }
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & self.mask() == u32::from(self.addr)
    }
    pub fn overlaps(&self, o: &V4Net) -> bool {
        let l = self.len.min(o.len);
        let m = if l == 0 { 0 } else { u32::MAX << (32 - l) };
        u32::from(self.addr) & m == u32::from(o.addr) & m
    }
}

impl fmt::Display for V4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

/// Parses `a.b.c.d/len` (a bare address means /32). `Err` holds the problem
/// and the fix.
pub fn parse_v4net(s: &str) -> Result<V4Net, (String, String)> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: Ipv4Addr = a.trim().parse().map_err(|_| {
        (
            format!("'{a}' is not an IPv4 address"),
            "write an IPv4 prefix such as \"192.0.2.0/24\"".to_string(),
        )
    })?;
    let len: u8 = match l {
        None => 32,
        Some(l) => match l.trim().parse::<u8>() {
            Ok(n) if n <= 32 => n,
            _ => {
                return Err((
                    format!("'/{l}' is not an IPv4 prefix length (0-32)"),
                    "use a length between /0 and /32, e.g. \"192.0.2.0/24\"".into(),
                ))
            }
        },
    };
    let net = V4Net { addr, len };
    let masked = Ipv4Addr::from(u32::from(addr) & net.mask());
    if masked != addr {
        return Err((
            format!("{addr} has host bits set beyond /{len}"),
            format!("use \"{masked}/{len}\""),
        ));
    }
    Ok(net)
}

fn parse_range(s: &str) -> Option<(u16, u16)> {
    let (a, b) = s.split_once('-')?;
    let a: u16 = a.trim().parse().ok()?;
    let b: u16 = b.trim().parse().ok()?;
    (a >= 1 && a <= b).then_some((a, b))
}

/// A user to run as after setup (`user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl RunAs {
    /// Looks `name` (or a numeric uid) up in the user database.
    pub fn lookup(name: &str) -> Option<RunAs> {
        let c = std::ffi::CString::new(name).ok()?;
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut buf = vec![0 as libc::c_char; 16384];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: valid pointers to a passwd, a buffer of its stated size
        // and an out pointer; getpwnam_r/getpwuid_r write only into them.
        let r = unsafe {
            match name.parse::<u32>() {
                Ok(uid) => libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out),
                Err(_) => {
                    libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out)
                }
            }
        };
        if r != 0 || out.is_null() {
            return None;
        }
        Some(RunAs {
            name: name.to_string(),
            uid: pw.pw_uid,
            gid: pw.pw_gid,
        })
    }
}

/// `clat` mode settings (RFC 6877).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClatSettings {
    pub v6: Ipv6Addr,
    pub v4: Ipv4Addr,
    pub uplink: Option<String>,
}

/// A validated static BIB entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticBib {
    pub proto: L4Proto,
    pub v6: SocketAddrV6,
    pub v4: SocketAddrV4,
}

/// `fast-path-max-flows` bounds (4 M flows are ~1 GiB of kernel memory)
/// and defaults.
pub const FAST_PATH_MIN_FLOWS: u32 = 1024;
pub const FAST_PATH_MAX_FLOWS: u32 = 4 << 20;
const FAST_PATH_DEFAULT_DAEMON_FLOWS: u32 = 262_144;
const FAST_PATH_DEFAULT_KERNEL_FLOWS: u32 = 65_536;

/// Validated configuration the daemon runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    pub prefix: Prefix,
    pub pool: Vec<V4Net>,
    pub gateway_v4: Ipv4Addr,
    pub napt: NaptMode,
    pub inner_pool: Option<V4Net>,
    /// `kernel` mode: the SNAT address (None: masquerade).
    pub egress_v4: Option<Ipv4Addr>,
    /// `kernel` mode: recover leases from conntrack (`lease-recovery`).
    pub lease_recovery: bool,
    /// Why nat64 does not try the fast path at start (`fast-path`, `auto`
    /// resolved for the mode; logged); None: it does ([`Settings::fast_path`]),
    /// and still runs on the TUN path alone when the program cannot load.
    pub fast_path_off: Option<&'static str>,
    /// Its interfaces (empty: derived from the routes at start).
    pub fast_path_interfaces: Vec<String>,
    /// `fast-path-max-flows`, or its default for the mode.
    pub fast_path_max_flows: u32,
    pub wkp_strict: bool,
    pub tun: TunSection,
    pub reap_interval: Duration,
    pub timeouts: TimeoutsSection,
    pub tcp_ports: (u16, u16),
    pub udp_ports: (u16, u16),
    pub icmp_ids: (u16, u16),
    pub port_block_size: Option<u16>,
    /// `ports.deterministic`: RFC 7422 blocks.
    pub deterministic: Option<nat64_core::state::Deterministic>,
    /// `[farm]` with more than one instance; `pool` is then this
    /// instance's slice.
    pub farm: Option<Farm>,
    pub limits: LimitsSection,
    pub ipv6_mtu: u16,
    pub ipv4_mtu: Option<u16>,
    pub udp_zero_checksum: UdpZeroChecksum,
    pub filtering: FilteringMode,
    /// Source of translator-originated ICMPv6 errors.
    pub icmp_source_v6: Ipv6Addr,
    pub icmp_rate: u32,
    pub icmp_burst: u32,
    /// `[pref64]`: (interface, interval) when advertising.
    pub pref64: Option<(String, Duration)>,
    pub metrics: Option<SocketAddr>,
    pub control: Option<PathBuf>,
    pub log_format: LogFormat,
    pub mapping_log: Option<PathBuf>,
    pub manage_routes: Option<bool>,
    pub manage_nft: bool,
    pub manage_forwarding: bool,
    /// The user to switch to after setup (uid, gid, name).
    pub user: Option<RunAs>,
    pub state_file: Option<PathBuf>,
    pub static_bib: Vec<StaticBib>,
    pub maps: Vec<(Ipv6Addr, Ipv4Addr)>,
    /// `none` mode: the EAM table (`[[map]]` merged with `map-file`).
    pub eam: nat64_core::eam::EamTable,
    pub map_file: Option<PathBuf>,
    /// `none` mode: RFC 6791 sources (default: gateway-v4).
    pub rfc6791: Vec<Ipv4Addr>,
    /// `clat` mode: (the CLAT's IPv6 address, the local IPv4 address, the
    /// uplink for proxy NDP).
    pub clat: Option<ClatSettings>,
    /// Non-fatal remarks (printed at startup and by `check`).
    pub warnings: Vec<String>,
}

impl Settings {
    /// Whether nat64 tries the fast path at start.
    pub fn fast_path(&self) -> bool {
        self.fast_path_off.is_none()
    }
}

// ----------------------------------------------------------------- bounds ---

/// What validation accepts for each numeric key (inclusive bounds), in one
/// place: the rules and the messages (also those of TOML type errors) quote
/// these.
pub mod bounds {
    /// `reap-interval-secs`: a sweep at least once an hour, or expired
    /// sessions hold pool ports for hours.
    pub const REAP_INTERVAL_SECS: (u64, u64) = (1, 3600);
    /// `timeouts.udp`, `tcp-established`, `tcp-transitory`, `icmp`: a week.
    pub const TIMEOUT_SECS: (u64, u64) = (1, 7 * 86_400);
    /// `timeouts.fragment`: RFC 8200 §4.5 gives up on reassembly after 60 s.
    pub const FRAGMENT_SECS: (u64, u64) = (1, 60);
    /// `tun.mtu`: RFC 8200's minimum IPv6 MTU up to Linux's TUN maximum.
    pub const TUN_MTU: (u16, u16) = (1280, 65535);
    /// `tun.queues`: Linux's MAX_TAP_QUEUES (0 = one per CPU).
    pub const TUN_QUEUES: (u16, u16) = (0, 256);
    /// `tun.txqueuelen`: a TUN's transmit queue is a ring of pointers
    /// allocated with one kmalloc (at most 4 MiB on x86-64 and 4 KiB-page
    /// arm64), so Linux refuses more than 524288 entries.
    pub const TUN_TXQUEUELEN: (u32, u32) = (1, 524_288);
    /// `tun.batch`: packets per io_uring write batch.
    pub const TUN_BATCH: (u16, u16) = (1, 1024);
    /// `ipv6-mtu`: RFC 8200 §5 minimum.
    pub const IPV6_MTU: (u16, u16) = (1280, 65535);
    /// `ipv4-mtu`: RFC 791 minimum.
    pub const IPV4_MTU: (u16, u16) = (68, 65535);
    /// `limits.max-sessions`, `max-sessions-per-client` and
    /// `max-sessions-per-site`: above 10^8 the
    /// tables need tens of GiB, so the limit no longer guards memory.
    pub const SESSIONS: (u32, u32) = (1, 100_000_000);
    /// `limits.client-prefix-len` and `site-prefix-len`: shorter than an
    /// ISP's /32 lumps unrelated networks into one client or site.
    pub const CLIENT_PREFIX_LEN: (u8, u8) = (32, 128);
    /// `limits.max-leases-per-site` (kernel mode): up to the addresses of
    /// the largest inner pool, a /8.
    pub const LEASES_PER_SITE: (u32, u32) = (1, 1 << 24);
    /// `icmp-rate-limit.rate` (0 sends none).
    pub const ICMP_RATE: (u32, u32) = (0, 100_000);
    /// `icmp-rate-limit.burst` (when rate > 0).
    pub const ICMP_BURST: (u32, u32) = (1, 100_000);
    /// `farm.instances`: translators sharing one pool.
    pub const FARM_INSTANCES: (u32, u32) = (1, 256);
    /// `pool`: addresses in all, the most the daemon NAPT allocator takes
    /// (a /16; nat64-core `Pool::MAX_ADDRS`).
    pub const POOL_ADDRS: u64 = 65_536;
    /// `pref64.interval-secs`: three intervals must fit RFC 8781's 65528 s.
    pub const PREF64_INTERVAL_SECS: (u64, u64) = (1, 21_842);
    /// `inner-pool` prefix length: the kernel-mode allocator takes at most a
    /// /8 (nat64-core `KernelPool`), and a /30 holds two clients.
    pub const INNER_POOL_LEN: (u8, u8) = (8, 30);
    /// `control`: bytes of a Unix socket path (sun_path holds 108 with the NUL).
    pub const CONTROL_PATH_BYTES: usize = 107;

    /// The accepted values of a numeric key, in words (for TOML type
    /// errors): "a whole number from 1280 to 65535".
    pub fn of(key: &str) -> Option<String> {
        let r = |(lo, hi): (u64, u64)| Some(format!("a whole number from {lo} to {hi}"));
        let w = |(lo, hi): (u32, u32)| r((u64::from(lo), u64::from(hi)));
        let s = |(lo, hi): (u16, u16)| r((u64::from(lo), u64::from(hi)));
        match key {
            "reap-interval-secs" => r(REAP_INTERVAL_SECS),
            "timeouts.udp"
            | "timeouts.tcp-established"
            | "timeouts.tcp-transitory"
            | "timeouts.icmp" => r(TIMEOUT_SECS),
            "timeouts.fragment" => r(FRAGMENT_SECS),
            "tun.mtu" => s(TUN_MTU),
            "tun.queues" => s(TUN_QUEUES),
            "tun.txqueuelen" => w(TUN_TXQUEUELEN),
            "tun.batch" => s(TUN_BATCH),
            "ipv6-mtu" => s(IPV6_MTU),
            "ipv4-mtu" => s(IPV4_MTU),
            "limits.max-sessions"
            | "limits.max-sessions-per-client"
            | "limits.max-sessions-per-site" => w(SESSIONS),
            "limits.max-leases-per-site" => w(LEASES_PER_SITE),
            "limits.client-prefix-len" | "limits.site-prefix-len" => r((
                u64::from(CLIENT_PREFIX_LEN.0),
                u64::from(CLIENT_PREFIX_LEN.1),
            )),
            "icmp-rate-limit.rate" => w(ICMP_RATE),
            "icmp-rate-limit.burst" => w(ICMP_BURST),
            "pref64.interval-secs" => r(PREF64_INTERVAL_SECS),
            "ports.block-size" => Some("a power of two from 1 to 32768".into()),
            _ => None,
        }
    }
}

/// `v` within `lo..=hi`, or the error naming `key`, the bounds and why.
fn within<T: PartialOrd + fmt::Display + Copy>(
    key: &str,
    v: T,
    (lo, hi): (T, T),
    why: &str,
    fix: impl Into<String>,
) -> Option<ConfigError> {
    (v < lo || v > hi).then(|| err(key, v, format!("must be {lo} to {hi}: {why}"), fix))
}

// ------------------------------------------------------- address classes ---

/// docs/operator.md §2.6: IPv4 addresses that must never be produced or accepted in any
/// mode. Link-local is the exception where it is the pool itself.
const FORBIDDEN_V4: &[(V4Net, &str)] = &[
    (V4Net::new(0, 0, 0, 0, 8), "\"this network\", RFC 6890"),
    (V4Net::new(127, 0, 0, 0, 8), "loopback"),
    (V4Net::new(169, 254, 0, 0, 16), "link-local"),
    (V4Net::new(224, 0, 0, 0, 4), "multicast"),
    (
        V4Net::new(255, 255, 255, 255, 32),
        "the limited broadcast address",
    ),
    (V4Net::new(240, 0, 0, 0, 4), "reserved, RFC 1112"),
];

const LINK_LOCAL_V4: V4Net = V4Net::new(169, 254, 0, 0, 16);

/// The never-translated block (docs/operator.md §2.6) `net` overlaps, if any (`link_local_ok`: a pool, or
/// an address inside a link-local pool).
fn forbidden_v4(net: V4Net, link_local_ok: bool) -> Option<(V4Net, &'static str)> {
    FORBIDDEN_V4
        .iter()
        .find(|(b, _)| b.overlaps(&net) && !(link_local_ok && *b == LINK_LOCAL_V4))
        .copied()
}

/// IPv6 ranges that are never a translated host, a translator's source or
/// a translation prefix: they are not routed, or mean this host or a group.
const FORBIDDEN_V6: &[(Ipv6Addr, u8, &str)] = &[
    (Ipv6Addr::UNSPECIFIED, 128, "the unspecified address"),
    (Ipv6Addr::LOCALHOST, 128, "loopback"),
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0),
        96,
        "IPv4-mapped, RFC 4291 §2.5.5.2",
    ),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local"),
    (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast"),
];

/// The forbidden IPv6 range `addr/len` overlaps, written `block (what)`.
fn forbidden_v6(addr: Ipv6Addr, len: u8) -> Option<String> {
    let mask = |l: u8| {
        if l == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(l))
        }
    };
    FORBIDDEN_V6.iter().find_map(|&(b, blen, what)| {
        let m = mask(len.min(blen));
        (u128::from(addr) & m == u128::from(b) & m).then(|| format!("{b}/{blen} ({what})"))
    })
}

// ------------------------------------------------------------ file paths ---

/// Why the daemon could not create or write the file `path` on this host:
/// it is a directory, or its directory is missing and cannot be made (a
/// file in the way, a read-only file system), or cannot be written. A
/// permission problem counts only when this process is root: `check` run
/// by another user cannot tell what root may do. `(problem, fix)`.
fn file_path_problem(path: &Path, example_name: &str) -> Option<(String, String)> {
    if path.is_dir() {
        return Some((
            "is a directory, and nat64 writes a file there".into(),
            format!(
                "name a file, e.g. \"{}\"",
                path.join(example_name).display()
            ),
        ));
    }
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty())?;
    let mut dir = parent;
    let missing = loop {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => break dir != parent,
            Ok(_) => {
                return Some((
                    format!(
                        "its directory {} does not exist and cannot be created: {} is a file, not \
                         a directory",
                        parent.display(),
                        dir.display()
                    ),
                    format!(
                        "point it into a directory, or move the file {} out of the way",
                        dir.display()
                    ),
                ))
            }
            // Missing, or a file on the way (ENOTDIR): look further up.
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.raw_os_error() == Some(libc::ENOTDIR) =>
            {
                dir = dir.parent()?
            }
            // Not ours to read (another user's tree): cannot tell.
            Err(_) => return None,
        }
    };
    let why = match not_writable(dir)? {
        e if e.raw_os_error() == Some(libc::EROFS) => "is on a read-only file system".to_string(),
        _ if is_root() => "is not writable, even by root (immutable?)".to_string(),
        _ => return None,
    };
    let problem = if missing {
        format!(
            "its directory {} does not exist and cannot be created: {} {why}",
            parent.display(),
            dir.display()
        )
    } else {
        format!("cannot be created: its directory {} {why}", dir.display())
    };
    Some((
        problem,
        "point it into a writable directory (e.g. under /var/lib/nat64 or /run/nat64)".into(),
    ))
}

/// `access(dir, W_OK)`'s error, if any.
fn not_writable(dir: &Path) -> Option<std::io::Error> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: a valid NUL-terminated path; access(2) only reads it.
    let r = unsafe { libc::access(c.as_ptr(), libc::W_OK) };
    (r != 0).then(std::io::Error::last_os_error)
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Linux `dev_valid_name` (net/core/dev.c), plus '%' (the kernel reads it as
/// a name template, so the interface would get another name).
fn tun_name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() || name.len() > 15 {
        Some("must be 1 to 15 bytes long (Linux IFNAMSIZ)")
    } else if name == "." || name == ".." {
        Some("\".\" and \"..\" are not interface names")
    } else if name
        .chars()
        .any(|c| matches!(c, '/' | ':') || c.is_whitespace() || c.is_control())
    {
        Some("must not contain '/', ':', whitespace or control characters")
    } else if name.contains('%') {
        Some("must not contain '%' (Linux would treat it as a template such as \"tun%d\")")
    } else {
        None
    }
}

/// What this host says about an interface called `name` that exists: `Err`
/// when it is not a TUN (TUNSETIFF then fails with EINVAL).
fn existing_interface_is_tun(name: &str) -> Option<Result<(), &'static str>> {
    let dir = Path::new("/sys/class/net").join(name);
    if !dir.exists() {
        return None;
    }
    // IFF_TUN = 0x0001, IFF_TAP = 0x0002 (linux/if_tun.h).
    let flags = std::fs::read_to_string(dir.join("tun_flags"))
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok());
    Some(match flags {
        Some(f) if f & 0x1 != 0 => Ok(()),
        Some(_) => Err("is an existing TAP interface on this host, not a TUN"),
        None => Err("is an existing interface on this host that is not a TUN"),
    })
}

// ------------------------------------------------------------- validation ---

/// What validation found: errors (the configuration is refused) and
/// warnings (printed at start and by `check`).
#[derive(Debug, Default)]
struct Findings {
    errs: Vec<ConfigError>,
    warnings: Vec<String>,
}

impl Findings {
    fn err(&mut self, e: ConfigError) {
        self.errs.push(e);
    }
    fn check(&mut self, e: Option<ConfigError>) {
        self.errs.extend(e);
    }
    fn warn(&mut self, w: impl Into<String>) {
        self.warnings.push(w.into());
    }
}

/// The operations keys (`metrics`, `control`, `mapping-log`,
/// `state-file`), validated.
struct OpsPaths {
    metrics: Option<SocketAddr>,
    control: Option<PathBuf>,
    mapping_log: Option<PathBuf>,
    state_file: Option<PathBuf>,
}

impl FileConfig {
    /// Parses TOML text. `source` names the file in messages.
    pub fn parse(text: &str, source: &str) -> Result<FileConfig, ConfigErrors> {
        toml::from_str::<FileConfig>(text).map_err(|e| {
            let start = e.span().map(|s| s.start);
            let (line, col) = start.map(|s| line_col(text, s)).unwrap_or((0, 0));
            let name = start.and_then(|s| key_at(text, s));
            let msg = e.message().to_string();
            let key = match (line, &name) {
                (0, _) => "file".to_string(),
                (_, Some(k)) => format!("line {line}, column {col} (`{k}`)"),
                (_, None) => format!("line {line}, column {col}"),
            };
            let fix = if msg.contains("unknown field") {
                "remove or rename the key (keys are kebab-case; `nat64 check --config FILE` on a \
                 valid file prints every key with its effective value)"
                    .to_string()
            } else if msg.contains("unknown variant") {
                "use one of the values listed above".to_string()
            } else if let Some(range) = name.as_deref().and_then(bounds::of) {
                format!("give `{}` {range}", name.as_deref().unwrap_or_default())
            } else if msg.contains("invalid value: integer") {
                "use a whole number in the key's range (a negative or too large number does not \
                 fit)"
                    .to_string()
            } else {
                "correct the TOML at that position".to_string()
            };
            ConfigErrors {
                source: source.to_string(),
                errors: vec![ConfigError {
                    key,
                    value: String::new(),
                    problem: msg,
                    fix,
                }],
            }
        })
    }

    /// Serialises back to TOML (the effective configuration): defaults that
    /// depend on other keys are resolved first.
    pub fn to_toml(&self) -> anyhow::Result<String> {
        let mut eff = self.clone();
        eff.manage_routes
            .get_or_insert(self.tun.mode == TunMode::Create);
        if eff.napt == NaptMode::Kernel && eff.inner_pool.is_none() {
            eff.inner_pool = Some(DEFAULT_INNER_POOL.to_string());
        }
        if eff.napt == NaptMode::Clat && eff.gateway_v4.is_none() {
            eff.gateway_v4 = Some(DEFAULT_CLAT_GATEWAY.to_string());
        }
        if eff.ipv4_mtu.is_none() && eff.tun.mode == TunMode::Create {
            eff.ipv4_mtu = Some(eff.tun.mtu);
        }
        toml::to_string(&eff).context("serialising the effective configuration")
    }

    /// Checks every rule and builds [`Settings`]. All problems are reported
    /// at once. Each section has its own function below; what `nat64 run`
    /// would refuse from a setting is refused here first, with the key.
    pub fn validate(&self, source: &str) -> Result<Settings, ConfigErrors> {
        let mut f = Findings::default();
        let prefix = self.validate_prefix(&mut f);
        let whole_pool = self.validate_pool(&mut f);
        let (pool, farm) = self.validate_farm(&mut f, &whole_pool);
        let inner_pool = self.validate_napt(&mut f, prefix, &pool);
        let gateway_v4 = self.validate_gateway(&mut f, &pool, inner_pool);
        let egress_v4 = self.validate_egress(&mut f, inner_pool);
        let fast_path_interfaces = self.validate_fast_path(&mut f);
        self.validate_tun(&mut f);
        self.validate_timers(&mut f);
        let (tcp_ports, udp_ports, icmp_ids) = self.validate_ports(&mut f);
        self.validate_limits(&mut f);
        self.validate_mtus(&mut f);
        let icmp_source_v6 = self.validate_icmp(&mut f, prefix, gateway_v4);
        let ops = self.validate_ops(&mut f);
        let user = self.validate_user(&mut f);
        let mut static_bib = self.validate_statics(&mut f, prefix, &whole_pool);
        if farm.is_some() {
            static_bib.retain(|b| {
                let mine = pool.iter().any(|n| n.contains(*b.v4.ip()));
                if !mine {
                    f.warn(format!(
                        "[[static]] {} -> {}: outside this instance's pool slice, left to the \
                         instance that owns it",
                        b.v6, b.v4
                    ));
                }
                mine
            });
        }
        let deterministic = self.validate_deterministic(&mut f, &pool, gateway_v4);
        let clat = self.validate_clat(&mut f, prefix);
        let (maps, eam, map_file) = if self.napt == NaptMode::None {
            let (eam, file) = self.validate_eam(&mut f, gateway_v4);
            (Vec::new(), eam, file)
        } else if let Some(c) = &clat {
            // The CLAT is SIIT with one explicit mapping (RFC 6877 §6.3).
            let mut t = nat64_core::eam::EamTable::new();
            if let Ok(e) = nat64_core::eam::Eam::new(c.v4, 32, c.v6, 128) {
                t.insert(e);
            }
            (Vec::new(), t, None)
        } else {
            let maps = self.validate_maps(&mut f, prefix, inner_pool, gateway_v4);
            (maps, nat64_core::eam::EamTable::new(), None)
        };
        let rfc6791 = self.validate_rfc6791(&mut f, gateway_v4);
        let pref64 = self.validate_pref64(&mut f);

        let udp_zero_checksum = match self.udp_zero_checksum {
            UdpZeroChecksumMode::Calc => UdpZeroChecksum::Calc,
            UdpZeroChecksumMode::Drop => UdpZeroChecksum::Drop,
            UdpZeroChecksumMode::Forward => UdpZeroChecksum::Forward,
        };
        match (prefix, gateway_v4, icmp_source_v6) {
            (Some(prefix), Some(gateway_v4), Some(icmp_source_v6)) if f.errs.is_empty() => {
                Ok(Settings {
                    prefix,
                    pool,
                    gateway_v4,
                    napt: self.napt,
                    inner_pool,
                    egress_v4,
                    lease_recovery: self.lease_recovery == LeaseRecoveryMode::Conntrack,
                    fast_path_off: self.fast_path_off(),
                    fast_path_interfaces,
                    fast_path_max_flows: self.fast_path_max_flows(),
                    wkp_strict: self.wkp_strict,
                    tun: self.tun.clone(),
                    reap_interval: Duration::from_secs(self.reap_interval_secs),
                    timeouts: self.timeouts.clone(),
                    tcp_ports,
                    udp_ports,
                    icmp_ids,
                    port_block_size: self.ports.block_size,
                    deterministic,
                    farm,
                    limits: self.limits.clone(),
                    ipv6_mtu: self.ipv6_mtu,
                    ipv4_mtu: self.ipv4_mtu,
                    udp_zero_checksum,
                    filtering: self.filtering,
                    icmp_source_v6,
                    icmp_rate: self.icmp_rate_limit.rate,
                    icmp_burst: self.icmp_rate_limit.burst,
                    pref64,
                    metrics: ops.metrics,
                    control: ops.control,
                    log_format: self.log_format,
                    mapping_log: ops.mapping_log,
                    manage_routes: self.manage_routes,
                    manage_nft: self.manage_nft,
                    manage_forwarding: self.manage_forwarding,
                    user,
                    state_file: ops.state_file,
                    static_bib,
                    maps,
                    eam,
                    map_file,
                    rfc6791,
                    clat,
                    warnings: f.warnings,
                })
            }
            _ => Err(ConfigErrors {
                source: source.to_string(),
                errors: f.errs,
            }),
        }
    }

    /// `prefix`: RFC 6052 §2.2 form, and not a range that is never routed
    /// to a translator (multicast, link-local, loopback, unspecified).
    fn validate_prefix(&self, f: &mut Findings) -> Option<Prefix> {
        match self.prefix.parse::<Prefix>() {
            Ok(p) => {
                if let Some(block) = forbidden_v6(p.addr(), p.len()) {
                    f.err(err(
                        "prefix",
                        &self.prefix,
                        format!("overlaps {block}, which is never routed to a translator"),
                        "use the Well-Known Prefix \"64:ff9b::/96\" or a Network-Specific \
                         Prefix from your own global space (e.g. \"2001:db8:64::/96\" in a lab)",
                    ));
                }
                Some(p)
            }
            Err(e) => {
                f.err(err(
                    "prefix",
                    &self.prefix,
                    e.to_string(),
                    "use the Well-Known Prefix \"64:ff9b::/96\" or a Network-Specific Prefix of \
                     length /32, /40, /48, /56, /64 or /96 from your own space",
                ));
                None
            }
        }
    }

    /// `pool`: each entry a prefix outside the never-translated blocks (docs/operator.md §2.6), no overlaps,
    /// at most [`bounds::POOL_ADDRS`] addresses in all.
    fn validate_pool(&self, f: &mut Findings) -> Vec<V4Net> {
        let mut pool = Vec::new();
        for (i, p) in self.pool.iter().enumerate() {
            match parse_v4net(p) {
                Ok(n) => {
                    if let Some((b, what)) = forbidden_v4(n, true) {
                        f.err(err(
                            format!("pool[{i}]"),
                            p,
                            format!(
                                "overlaps {b} ({what}), which nat64 never translates to or from \
                                 (docs/operator.md §2.6)"
                            ),
                            "use addresses routed to this host, e.g. \"192.0.2.0/28\" in a lab",
                        ));
                    }
                    pool.push(n)
                }
                Err((problem, fix)) => f.err(err(format!("pool[{i}]"), p, problem, fix)),
            }
        }
        for i in 0..pool.len() {
            for j in i + 1..pool.len() {
                if pool[i].overlaps(&pool[j]) {
                    f.err(err(
                        format!("pool[{j}]"),
                        pool[j],
                        format!("overlaps pool[{i}] = \"{}\"", pool[i]),
                        "list each IPv4 range once",
                    ));
                }
            }
        }
        let total: u64 = pool.iter().map(|n| 1u64 << (32 - u32::from(n.len))).sum();
        if total > bounds::POOL_ADDRS {
            f.err(err(
                "pool",
                self.pool.join(", "),
                format!(
                    "holds {total} addresses; the daemon NAPT takes at most {} (a /16) in all",
                    bounds::POOL_ADDRS
                ),
                "use a /16 or smaller prefixes (each address carries 64512 ports per protocol, \
                 so a /24 already serves thousands of clients)",
            ));
        }
        pool
    }

    /// `napt` and what each mode needs or refuses: `pool`, `inner-pool`,
    /// `[[map]]`, `[[static]]`, `state-file`, `ports.block-size`, RFC 6052
    /// §3.1 behind the Well-Known Prefix. Returns the inner pool in force.
    fn validate_napt(
        &self,
        f: &mut Findings,
        prefix: Option<Prefix>,
        pool: &[V4Net],
    ) -> Option<V4Net> {
        let inner_pool = match &self.inner_pool {
            None => None,
            Some(s) => match parse_v4net(s) {
                Ok(n) => Some(n),
                Err((problem, fix)) => {
                    f.err(err("inner-pool", s, problem, fix));
                    None
                }
            },
        };
        match self.napt {
            NaptMode::Daemon => self.validate_daemon_mode(f, prefix, pool),
            NaptMode::Kernel => self.validate_kernel_mode(f, "kernel"),
            NaptMode::None => self.validate_kernel_mode(f, "none"),
            NaptMode::Clat => self.validate_kernel_mode(f, "clat"),
        }
        if self.napt == NaptMode::Clat {
            if let Some(ip) = &self.inner_pool {
                f.err(err(
                    "inner-pool",
                    ip,
                    "is not used with napt = \"clat\" (local applications share clat-v4)",
                    "remove inner-pool",
                ));
            }
            if !self.maps.is_empty() {
                f.err(err(
                    "map",
                    "",
                    "[[map]] entries are not used with napt = \"clat\" (its one mapping is \
                     clat-v4 = clat-v6)",
                    "remove the [[map]] entries, or use napt = \"none\"",
                ));
            }
        }
        if self.napt != NaptMode::Clat {
            for (k, set) in [
                ("clat-v6", self.clat_v6.is_some()),
                ("clat-uplink", !self.clat_uplink.is_empty()),
                ("clat-v4", self.clat_v4 != DEFAULT_CLAT_V4),
            ] {
                if set {
                    f.err(err(
                        k,
                        "",
                        "only applies to napt = \"clat\"",
                        format!("remove {k}, or set napt = \"clat\""),
                    ));
                }
            }
        }
        if self.napt != NaptMode::None && self.napt != NaptMode::Clat {
            if !self.map_file.is_empty() {
                f.err(err(
                    "map-file",
                    &self.map_file,
                    "only applies to napt = \"none\" (stateless SIIT)",
                    "remove map-file, or set napt = \"none\"",
                ));
            }
            if !self.rfc6791_pool.is_empty() {
                f.err(err(
                    "rfc6791-pool",
                    self.rfc6791_pool.join(", "),
                    "only applies to napt = \"none\" (in the stateful modes ICMP errors of IPv6 \
                     routers come from the session's pool address, RFC 6146 §3.4)",
                    "remove rfc6791-pool, or set napt = \"none\"",
                ));
            }
        }
        let inner_pool = if self.napt == NaptMode::Kernel {
            Some(inner_pool.unwrap_or(V4Net::new(100, 64, 0, 0, 16)))
        } else {
            inner_pool
        };
        if let (Some(ip), NaptMode::Kernel | NaptMode::None) = (inner_pool, self.napt) {
            let (min, max) = bounds::INNER_POOL_LEN;
            if ip.len > max {
                f.err(err(
                    "inner-pool",
                    ip,
                    "is too small to map clients into",
                    "use a range of /30 or larger, e.g. \"100.64.0.0/16\"",
                ));
            } else if ip.len < min {
                f.err(err(
                    "inner-pool",
                    ip,
                    format!("is larger than a /{min}, the most the kernel-mode allocator takes"),
                    "use a slice such as \"100.64.0.0/16\" (a /8 at most)",
                ));
            }
            if let Some((b, what)) = forbidden_v4(ip, true) {
                f.err(err(
                    "inner-pool",
                    ip,
                    format!(
                        "overlaps {b} ({what}), which nat64 never translates to or from (docs/operator.md \
                         §2.6)"
                    ),
                    "use a private or shared range such as \"100.64.0.0/16\"",
                ));
            }
        }
        if !self.wkp_strict {
            f.warn(
                "wkp-strict = false: the Well-Known Prefix may carry non-global IPv4 (RFC 6052 \
                 §3.1 lifted; labs and tests only)",
            );
        }
        inner_pool
    }

    fn validate_daemon_mode(&self, f: &mut Findings, prefix: Option<Prefix>, pool: &[V4Net]) {
        if self.pool.is_empty() {
            f.err(err(
                "pool",
                "",
                "is missing or empty, and napt = \"daemon\" needs IPv4 addresses to translate to",
                "add e.g. pool = [\"192.0.2.0/28\"] (addresses routed to this host), or set \
                 napt = \"kernel\" to let the host masquerade",
            ));
        }
        if let Some(ip) = &self.inner_pool {
            f.err(err(
                "inner-pool",
                ip,
                "only applies to napt = \"kernel\"",
                "remove inner-pool, or set napt = \"kernel\"",
            ));
        }
        if !self.maps.is_empty() {
            f.err(err(
                "map",
                "",
                "[[map]] 1:1 entries only apply to napt = \"kernel\"",
                "use [[static]] entries (v4 address:port -> v6 address:port) in daemon mode, or \
                 set napt = \"kernel\"",
            ));
        }
        if let Some(s) = self.state_file.as_deref().filter(|s| !s.is_empty()) {
            f.err(err(
                "state-file",
                s,
                "only applies to napt = \"kernel\" (it keeps the 1:1 leases)",
                "remove state-file, or set napt = \"kernel\"",
            ));
        }
        let Some(p) = prefix.filter(|p| p.is_well_known()) else {
            return;
        };
        for n in pool.iter().filter(|n| forbidden_v4(**n, true).is_none()) {
            let Some((b, l)) = addr::overlapping_non_global(n.addr, n.len) else {
                continue;
            };
            if self.wkp_strict {
                f.err(err(
                    "pool",
                    n,
                    format!(
                        "overlaps the non-global block {b}/{l}, which RFC 6052 §3.1 forbids \
                         behind the Well-Known Prefix {p}"
                    ),
                    "use a global IPv4 pool, or a Network-Specific Prefix for prefix, or (labs \
                     only) wkp-strict = false",
                ));
            } else {
                f.warn(format!(
                    "pool {n} overlaps non-global {b}/{l} behind the Well-Known Prefix; allowed \
                     only because wkp-strict = false (RFC 6052 §3.1)"
                ));
            }
        }
    }

    /// `kernel` and `none`: the 1:1 modes manage no ports.
    fn validate_kernel_mode(&self, f: &mut Findings, mode: &str) {
        let why = if mode == "kernel" {
            "the host's MASQUERADE picks the IPv4 source"
        } else {
            "stateless translation maps addresses 1:1 through [[map]], map-file, the prefix and \
             inner-pool"
        };
        if !self.pool.is_empty() {
            f.err(err(
                "pool",
                self.pool.join(", "),
                format!("is not used with napt = \"{mode}\" ({why})"),
                "remove pool, or set napt = \"daemon\"",
            ));
        }
        if !self.static_bib.is_empty() {
            f.err(err(
                "static",
                "",
                "[[static]] BIB entries need napt = \"daemon\"",
                format!("use [[map]] v6 = \"...\", v4 = \"...\" (1:1) in {mode} mode"),
            ));
        }
        if let Some(b) = self.ports.block_size {
            f.err(err(
                "ports.block-size",
                b,
                format!("only applies to napt = \"daemon\" (in {mode} mode no ports are managed)"),
                "remove ports.block-size, or set napt = \"daemon\"",
            ));
        }
        if mode == "none" {
            if let Some(s) = self.state_file.as_deref().filter(|s| !s.is_empty()) {
                if self.inner_pool.is_none() {
                    f.err(err(
                        "state-file",
                        s,
                        "keeps the leases of inner-pool, which is not set",
                        "remove state-file, or set inner-pool (the dynamic pool)",
                    ));
                }
            }
        }
    }

    /// `gateway-v4`: present, an address, not all of the pool, not in a
    /// never-translated block (link-local only beside a link-local pool).
    fn validate_gateway(
        &self,
        f: &mut Findings,
        pool: &[V4Net],
        inner_pool: Option<V4Net>,
    ) -> Option<Ipv4Addr> {
        let clat_default = (self.napt == NaptMode::Clat).then(|| DEFAULT_CLAT_GATEWAY.to_string());
        let Some(s) = self.gateway_v4.as_ref().or(clat_default.as_ref()) else {
            f.err(err(
                "gateway-v4",
                "",
                "is missing; it is the source of the ICMP errors the translator sends",
                "add gateway-v4 = \"A.B.C.D\": an IPv4 address of this host, or any address \
                 outside the pool that IPv4 hosts may see as a router",
            ));
            return None;
        };
        let Ok(a) = s.parse::<Ipv4Addr>() else {
            f.err(err(
                "gateway-v4",
                s,
                "is not an IPv4 address",
                "write a plain address such as \"192.0.2.1\" (no /len)",
            ));
            return None;
        };
        // Inside `pool` or `inner-pool` it is carved out of allocation (as
        // Tayga carves `ipv4-addr` out of its dynamic pool): one address
        // can serve both roles, unless it is all the pool has.
        if pool.len() == 1 && pool[0].len == 32 && pool[0].addr == a {
            f.err(err(
                "gateway-v4",
                s,
                format!(
                    "is the only address of pool {}, so no client could get one",
                    pool[0]
                ),
                "add addresses to pool, or pick a gateway-v4 outside it",
            ));
        }
        let link_local_pool = pool
            .iter()
            .chain(&inner_pool)
            .any(|n| n.overlaps(&LINK_LOCAL_V4));
        if let Some((b, what)) = forbidden_v4(V4Net { addr: a, len: 32 }, link_local_pool) {
            f.err(err(
                "gateway-v4",
                s,
                format!(
                    "is in {b} ({what}): ICMP errors from it would be dropped or misread (docs/operator.md \
                     §2.6)"
                ),
                "use a unicast address of this host outside the pool (e.g. \"192.0.2.1\" in a \
                 lab)",
            ));
        }
        Some(a)
    }

    /// Why the fast path stays off for this config (None: nat64 tries it).
    fn fast_path_off(&self) -> Option<&'static str> {
        match (self.fast_path, self.napt) {
            (FastPathMode::Off, _) => Some("fast-path = \"off\""),
            (FastPathMode::TcBpf, _) | (FastPathMode::Auto, NaptMode::Daemon) => None,
            (FastPathMode::Auto, NaptMode::Kernel) => Some(
                "kernel mode uses it only with fast-path = \"tc-bpf\" (it frees the \
                 translator's CPU, but small packets cross slower than through the TUN; \
                 docs/operator.md 2.9)",
            ),
            (FastPathMode::Auto, NaptMode::None | NaptMode::Clat) => {
                Some("SIIT and CLAT (napt = \"none\" / \"clat\") do not use it yet")
            }
        }
    }

    /// `fast-path`: the stateful modes (daemon and kernel) and the
    /// interfaces to attach to.
    fn validate_fast_path(&self, f: &mut Findings) -> Vec<String> {
        if let Some(why) = self.fast_path_off() {
            if self.fast_path == FastPathMode::Off && !self.fast_path_interfaces.is_empty() {
                f.err(err(
                    "fast-path-interfaces",
                    self.fast_path_interfaces.join(", "),
                    "only applies with the fast path on, and fast-path = \"off\"",
                    "remove fast-path (the default, auto) or set it to \"tc-bpf\", or \
                     remove fast-path-interfaces",
                ));
            } else if !self.fast_path_interfaces.is_empty() {
                f.warn(format!(
                    "fast-path-interfaces is ignored: the fast path is off ({why})"
                ));
            }
            return Vec::new();
        }
        if self.fast_path == FastPathMode::TcBpf
            && matches!(self.napt, NaptMode::None | NaptMode::Clat)
        {
            f.err(err(
                "fast-path",
                "tc-bpf",
                "is not available with napt = \"none\" or \"clat\" (SIIT/CLAT) yet: the \
                 program installs stateful flows (daemon or kernel mode)",
                "remove fast-path, or set napt = \"daemon\" or \"kernel\"",
            ));
        }
        if let Some(n) = self.fast_path_max_flows {
            if !(FAST_PATH_MIN_FLOWS..=FAST_PATH_MAX_FLOWS).contains(&n) {
                f.err(err(
                    "fast-path-max-flows",
                    n,
                    format!(
                        "is outside {FAST_PATH_MIN_FLOWS}-{FAST_PATH_MAX_FLOWS} (each flow \
                         takes ~370 B of kernel memory, allocated at start)"
                    ),
                    "remove it for the default, or pick a value in that range",
                ));
            }
        }
        for (i, n) in self.fast_path_interfaces.iter().enumerate() {
            if n.is_empty() || n.len() > 15 || n.contains(['/', ' ']) || *n == self.tun.name {
                f.err(err(
                    format!("fast-path-interfaces[{i}]"),
                    n,
                    "is not an interface name nat64 can attach to (1-15 characters, not the TUN)",
                    "name the Ethernet interfaces the traffic arrives on",
                ));
            }
        }
        self.fast_path_interfaces.clone()
    }

    /// The fast path's table size: the key, or the mode's default.
    fn fast_path_max_flows(&self) -> u32 {
        self.fast_path_max_flows.unwrap_or(match self.napt {
            NaptMode::Daemon => self
                .limits
                .max_sessions
                .clamp(FAST_PATH_MIN_FLOWS, FAST_PATH_DEFAULT_DAEMON_FLOWS),
            _ => FAST_PATH_DEFAULT_KERNEL_FLOWS,
        })
    }

    /// `egress-v4` (kernel mode): one unicast IPv4 address outside the
    /// inner pool and the never-translated blocks.
    fn validate_egress(&self, f: &mut Findings, inner_pool: Option<V4Net>) -> Option<Ipv4Addr> {
        if self.lease_recovery == LeaseRecoveryMode::Conntrack && self.napt != NaptMode::Kernel {
            f.err(err(
                "lease-recovery",
                "conntrack",
                "only applies to napt = \"kernel\" (leases of an HA pair)",
                "remove lease-recovery, or set napt = \"kernel\"",
            ));
        }
        let s = self.egress_v4.as_ref()?;
        if self.napt != NaptMode::Kernel {
            f.err(err(
                "egress-v4",
                s,
                "only applies to napt = \"kernel\" (the address the host's NAT gives the \
                 clients)",
                "remove egress-v4, or set napt = \"kernel\"",
            ));
            return None;
        }
        let Ok(a) = s.parse::<Ipv4Addr>() else {
            f.err(err(
                "egress-v4",
                s,
                "is not an IPv4 address",
                "write a plain address such as \"203.0.113.10\" (no /len)",
            ));
            return None;
        };
        if inner_pool.is_some_and(|ip| ip.contains(a)) {
            f.err(err(
                "egress-v4",
                s,
                "is inside inner-pool: the public address cannot also be a client's",
                "use the public (VRRP) address of the IPv4 side",
            ));
        } else if let Some((b, what)) = forbidden_v4(V4Net { addr: a, len: 32 }, false) {
            f.err(err(
                "egress-v4",
                s,
                format!(
                    "is in {b} ({what}), which nat64 never translates to (docs/operator.md §2.6)"
                ),
                "use the public (VRRP) address of the IPv4 side",
            ));
        }
        Some(a)
    }

    /// `[tun]`: what Linux takes for a TUN's name, MTU, queues and
    /// transmit queue, and a name that is not another kind of interface.
    fn validate_tun(&self, f: &mut Findings) {
        let t = &self.tun;
        if let Some(problem) = tun_name_problem(&t.name) {
            f.err(err(
                "tun.name",
                &t.name,
                format!("is not a valid interface name: {problem}"),
                "use a short name such as \"nat64\"",
            ));
        } else {
            match (existing_interface_is_tun(&t.name), t.mode) {
                (Some(Err(problem)), _) => f.err(err(
                    "tun.name",
                    &t.name,
                    problem,
                    "pick a name no other interface has (`ip link` lists them), such as \"nat64\"",
                )),
                (None, TunMode::Attach) => f.warn(format!(
                    "tun.mode = \"attach\" but no interface {} exists on this host (yet): `nat64 \
                     run` refuses to start until it does (`ip tuntap add dev {} mode tun \
                     multi_queue`)",
                    t.name, t.name
                )),
                _ => {}
            }
        }
        if t.mtu < bounds::TUN_MTU.0 {
            f.err(err(
                "tun.mtu",
                t.mtu,
                "is below 1280, the minimum IPv6 MTU",
                "set tun.mtu between 1280 and 65535 (1500 is common)",
            ));
        }
        if t.queues > bounds::TUN_QUEUES.1 {
            f.err(err(
                "tun.queues",
                t.queues,
                "exceeds Linux's 256 queues per TUN",
                "use 0 (one per CPU) or a number up to 256",
            ));
        }
        if t.txqueuelen == 0 {
            f.err(err(
                "tun.txqueuelen",
                t.txqueuelen,
                "a TUN with no transmit queue drops every packet the workers do not read at once",
                "use the default 5000, or at least 500",
            ));
        } else if t.txqueuelen > bounds::TUN_TXQUEUELEN.1 {
            f.err(err(
                "tun.txqueuelen",
                t.txqueuelen,
                format!(
                    "is above {}, the longest transmit queue Linux gives a TUN (its ring of \
                     pointers is one kmalloc of at most 4 MiB); the kernel would refuse it",
                    bounds::TUN_TXQUEUELEN.1
                ),
                "use the default 5000 (a few thousand packets absorb bursts at 10 Gbit/s)",
            ));
        }
        f.check(within(
            "tun.batch",
            t.batch,
            bounds::TUN_BATCH,
            "packets a worker writes with one system call",
            "use the default 32, or 1 for one write(2) per packet",
        ));
    }

    /// `reap-interval-secs` and `[timeouts]`.
    fn validate_timers(&self, f: &mut Findings) {
        if self.reap_interval_secs == 0 {
            f.err(err(
                "reap-interval-secs",
                0,
                "must be at least 1",
                "use the default 30, or a small number for tests",
            ));
        } else {
            f.check(within(
                "reap-interval-secs",
                self.reap_interval_secs,
                bounds::REAP_INTERVAL_SECS,
                "expired sessions keep their pool ports until the reaper runs",
                "use the default 30",
            ));
        }
        let t = &self.timeouts;
        for (k, v, range) in [
            ("timeouts.udp", t.udp, bounds::TIMEOUT_SECS),
            (
                "timeouts.tcp-established",
                t.tcp_established,
                bounds::TIMEOUT_SECS,
            ),
            (
                "timeouts.tcp-transitory",
                t.tcp_transitory,
                bounds::TIMEOUT_SECS,
            ),
            ("timeouts.icmp", t.icmp, bounds::TIMEOUT_SECS),
            ("timeouts.fragment", t.fragment, bounds::FRAGMENT_SECS),
        ] {
            if v == 0 {
                f.err(err(
                    k,
                    v,
                    "must be at least 1 second",
                    "use the default (see `nat64 check`)",
                ));
            } else {
                f.check(within(
                    k,
                    v,
                    range,
                    "seconds; a longer timeout keeps dead flows' state and ports",
                    "use the default (see `nat64 check`)",
                ));
            }
        }
        if t.udp > 0 && t.udp < 120 {
            f.warn(format!(
                "timeouts.udp = {} is below RFC 6146's 120 s minimum",
                t.udp
            ));
        }
        if t.tcp_established > 0 && t.tcp_established < 7440 {
            f.warn(format!(
                "timeouts.tcp-established = {} is below RFC 6146's 7440 s",
                t.tcp_established
            ));
        }
    }

    /// `[ports]`: ranges, and a block size that fits each range at least once.
    fn validate_ports(&self, f: &mut Findings) -> ((u16, u16), (u16, u16), (u16, u16)) {
        let mut range = |key: &str, s: &str| -> (u16, u16) {
            parse_range(s).unwrap_or_else(|| {
                f.err(err(
                    key,
                    s,
                    "is not a port range LOW-HIGH with 1 <= LOW <= HIGH <= 65535",
                    "write e.g. \"1024-65535\"",
                ));
                (1024, 65535)
            })
        };
        let tcp = range("ports.tcp", &self.ports.tcp);
        let udp = range("ports.udp", &self.ports.udp);
        let icmp = range("ports.icmp", &self.ports.icmp);
        if let Some(b) = self.ports.block_size {
            if b == 0 || !b.is_power_of_two() {
                f.err(err(
                    "ports.block-size",
                    b,
                    "must be a power of two",
                    "use e.g. 64 or 512, or remove it for per-session ports",
                ));
            } else if let Some((k, (lo, hi))) = [("tcp", tcp), ("udp", udp), ("icmp", icmp)]
                .into_iter()
                .find(|(_, r)| aligned_blocks(*r, b) == 0)
            {
                f.err(err(
                    "ports.block-size",
                    b,
                    format!(
                        "leaves no whole aligned block in ports.{k} = \"{lo}-{hi}\", so no {k} \
                         flow could get a port"
                    ),
                    "use a smaller block (e.g. 64 or 512) or a wider range",
                ));
            }
        }
        (tcp, udp, icmp)
    }

    /// `[farm]`: an index inside the count, daemon mode, at least one
    /// address per instance. Returns this instance's slice of the pool (the
    /// whole pool without a farm) and the farm in force.
    fn validate_farm(&self, f: &mut Findings, pool: &[V4Net]) -> (Vec<V4Net>, Option<Farm>) {
        let FarmSection {
            instance,
            instances,
        } = self.farm;
        let (min, max) = bounds::FARM_INSTANCES;
        if !(min..=max).contains(&instances) {
            f.err(err(
                "farm.instances",
                instances,
                format!("must be {min} to {max}"),
                "give the number of translators sharing the pool",
            ));
            return (pool.to_vec(), None);
        }
        if instance >= instances {
            f.err(err(
                "farm.instance",
                instance,
                format!("is not below farm.instances = {instances} (instances count from 0)"),
                format!("use 0 to {}", instances - 1),
            ));
            return (pool.to_vec(), None);
        }
        if instances == 1 {
            return (pool.to_vec(), None);
        }
        if self.napt != NaptMode::Daemon {
            f.err(err(
                "farm.instances",
                instances,
                format!(
                    "only applies to napt = \"daemon\" (instances share the NAPT pool; in {} \
                     mode there is none to share)",
                    self.napt
                ),
                "remove [farm], or set napt = \"daemon\"",
            ));
            return (pool.to_vec(), None);
        }
        let addrs: Vec<u32> = pool
            .iter()
            .flat_map(|n| {
                let base = u32::from(n.addr);
                (0..1u64 << (32 - u32::from(n.len))).map(move |i| base + i as u32)
            })
            .collect();
        let total = addrs.len() as u64;
        if total < u64::from(instances) {
            f.err(err(
                "farm.instances",
                instances,
                format!("is more than the {total} addresses of pool: an instance would get none"),
                "add pool addresses, or run fewer instances",
            ));
            return (pool.to_vec(), None);
        }
        let lo = (total * u64::from(instance) / u64::from(instances)) as usize;
        let hi = (total * u64::from(instance + 1) / u64::from(instances)) as usize;
        let slice = cidr_cover(&addrs[lo..hi]);
        let farm = Farm {
            instance,
            instances,
            whole_pool: pool.to_vec(),
        };
        (slice, Some(farm))
    }

    /// `ports.deterministic` and `ports.clients` (RFC 7422): block-size
    /// set; a numbered client range no larger than the slots.
    fn validate_deterministic(
        &self,
        f: &mut Findings,
        pool: &[V4Net],
        gateway: Option<Ipv4Addr>,
    ) -> Option<nat64_core::state::Deterministic> {
        let p = &self.ports;
        if !p.deterministic {
            if !p.clients.is_empty() {
                f.err(err(
                    "ports.clients",
                    &p.clients,
                    "only applies with ports.deterministic = true",
                    "set ports.deterministic = true, or remove ports.clients",
                ));
            }
            return None;
        }
        let Some(bs) = p.block_size else {
            f.err(err(
                "ports.deterministic",
                "true",
                "needs ports.block-size: the ports each client gets",
                "add ports.block-size (e.g. 1024 gives a client 1024 ports per protocol)",
            ));
            return None;
        };
        if self.napt != NaptMode::Daemon || !bs.is_power_of_two() {
            return None; // block-size's own error says why
        }
        let cpl = self.limits.client_prefix_len;
        let mut clients = None;
        if !p.clients.is_empty() {
            match derive::parse_v6net(&p.clients) {
                None => f.err(err(
                    "ports.clients",
                    &p.clients,
                    "is not an IPv6 prefix ADDRESS/LEN",
                    "write e.g. \"2001:db8:100::/120\"",
                )),
                Some((_, l)) if l > cpl => f.err(err(
                    "ports.clients",
                    &p.clients,
                    format!(
                        "is longer than limits.client-prefix-len = {cpl}, the size of one client"
                    ),
                    format!("use a /{cpl} or shorter range, or raise limits.client-prefix-len"),
                )),
                Some((a, l))
                    if u128::from(a)
                        & !(u128::MAX.checked_shl(128 - u32::from(l)).unwrap_or(0))
                        != 0 =>
                {
                    f.err(err(
                        "ports.clients",
                        &p.clients,
                        "has host bits set",
                        "write the range's first address",
                    ))
                }
                Some(c) => clients = Some(c),
            }
        }
        let usable: u64 = pool
            .iter()
            .map(|n| 1u64 << (32 - u32::from(n.len)))
            .sum::<u64>()
            - u64::from(gateway.is_some_and(|g| pool.iter().any(|n| n.contains(g))));
        let ranges = [&p.tcp, &p.udp, &p.icmp].map(|r| parse_range(r));
        let per_addr = ranges
            .iter()
            .flatten()
            .map(|&r| u64::from(aligned_blocks(r, bs)))
            .min()
            .unwrap_or(0);
        let slots = usable * per_addr;
        if let Some((_, l)) = clients {
            let n = 1u128.checked_shl(u32::from(cpl - l)).unwrap_or(u128::MAX);
            if n > u128::from(slots) {
                f.err(err(
                    "ports.clients",
                    &p.clients,
                    format!(
                        "holds {n} clients (of /{cpl}) but the pool{} has {slots} blocks of {bs} \
                         ports ({usable} addresses x {per_addr} blocks), so some would share one",
                        if self.farm.instances > 1 {
                            " slice"
                        } else {
                            ""
                        }
                    ),
                    "use a longer clients prefix, a smaller ports.block-size or more pool \
                     addresses",
                ));
            }
        }
        Some(nat64_core::state::Deterministic {
            client_prefix_len: cpl,
            clients,
        })
    }

    /// `[limits]`.
    fn validate_limits(&self, f: &mut Findings) {
        let l = &self.limits;
        for (k, v, eg) in [
            ("limits.max-sessions", l.max_sessions, "1000000"),
            (
                "limits.max-sessions-per-client",
                l.max_sessions_per_client,
                "10000",
            ),
            (
                "limits.max-sessions-per-site",
                l.max_sessions_per_site,
                "100000",
            ),
        ] {
            if v == 0 {
                f.err(err(k, 0, "must be at least 1", format!("use e.g. {eg}")));
            } else {
                f.check(within(
                    k,
                    v,
                    bounds::SESSIONS,
                    "beyond that the sessions need tens of GiB and the limit no longer guards \
                     memory",
                    format!("use e.g. {eg}"),
                ));
            }
        }
        if l.max_sessions > 0 && l.max_sessions_per_client > l.max_sessions {
            f.warn(format!(
                "limits.max-sessions-per-client = {} is above limits.max-sessions = {}: one \
                 client may take every session",
                l.max_sessions_per_client, l.max_sessions
            ));
        }
        f.check(within(
            "limits.client-prefix-len",
            l.client_prefix_len,
            bounds::CLIENT_PREFIX_LEN,
            "the IPv6 source prefix one client is counted by",
            "use 128 (one client per address) or 64 (one per subnet, ISP use)",
        ));
        f.check(within(
            "limits.site-prefix-len",
            l.site_prefix_len,
            bounds::CLIENT_PREFIX_LEN,
            "the IPv6 source prefix one site is counted by",
            "use the default 64 (one subnet, one household)",
        ));
        f.check(within(
            "limits.max-leases-per-site",
            l.max_leases_per_site,
            bounds::LEASES_PER_SITE,
            "0 would refuse every client; a /8 inner pool holds 2^24 addresses",
            "use the default 256",
        ));
    }

    /// `ipv6-mtu`, `ipv4-mtu` (the upper bound 65535 is the type's).
    fn validate_mtus(&self, f: &mut Findings) {
        if self.ipv6_mtu < bounds::IPV6_MTU.0 {
            f.err(err(
                "ipv6-mtu",
                self.ipv6_mtu,
                "is below 1280, the minimum IPv6 MTU (RFC 8200)",
                "use 1280 (the default) or a larger known path MTU",
            ));
        }
        if let Some(m) = self.ipv4_mtu.filter(|m| *m < bounds::IPV4_MTU.0) {
            f.err(err(
                "ipv4-mtu",
                m,
                "is below 68, the minimum IPv4 MTU",
                "remove it (the TUN's MTU is used) or set a real MTU",
            ));
        }
    }

    /// `icmp-source-v6` (a unicast address) and `[icmp-rate-limit]`.
    fn validate_icmp(
        &self,
        f: &mut Findings,
        prefix: Option<Prefix>,
        gateway_v4: Option<Ipv4Addr>,
    ) -> Option<Ipv6Addr> {
        let r = &self.icmp_rate_limit;
        if r.rate > 0 && r.burst == 0 {
            f.err(err(
                "icmp-rate-limit.burst",
                0,
                "must be at least 1 when rate > 0",
                "use e.g. burst = 50",
            ));
        }
        f.check(within(
            "icmp-rate-limit.rate",
            r.rate,
            bounds::ICMP_RATE,
            "ICMP errors per second (0 sends none)",
            "use the default 100",
        ));
        if r.rate > 0 && r.burst > 0 {
            f.check(within(
                "icmp-rate-limit.burst",
                r.burst,
                bounds::ICMP_BURST,
                "ICMP errors sent back to back",
                "use the default 50",
            ));
        }
        match (&self.icmp_source_v6, prefix, gateway_v4) {
            (Some(s), _, _) => match s.parse::<Ipv6Addr>() {
                Ok(a) => {
                    if let Some(block) = forbidden_v6(a, 128) {
                        f.err(err(
                            "icmp-source-v6",
                            s,
                            format!(
                                "is in {block}: ICMPv6 errors from it would be dropped or \
                                 misread"
                            ),
                            "use a global unicast address routed to this host, or remove it to \
                             use prefix || gateway-v4",
                        ));
                    }
                    Some(a)
                }
                Err(_) => {
                    f.err(err(
                        "icmp-source-v6",
                        s,
                        "is not an IPv6 address",
                        "write a plain address, or remove it to use prefix || gateway-v4",
                    ));
                    None
                }
            },
            (None, Some(p), Some(g)) => Some(p.embed(g)),
            _ => None,
        }
    }

    /// `metrics`, `control`, `mapping-log`, `state-file`: forms, and
    /// whether the daemon could create them on this host.
    /// `user`: must exist on this host (looked up in the user database).
    fn validate_user(&self, f: &mut Findings) -> Option<RunAs> {
        if self.user.is_empty() {
            return None;
        }
        match RunAs::lookup(&self.user) {
            Some(u) => Some(u),
            None => {
                f.err(err(
                    "user",
                    &self.user,
                    "is not a user of this host",
                    "create it (`useradd --system --no-create-home nat64`), pick an existing \
                     user, or remove `user` to stay root (with CAP_NET_ADMIN only)",
                ));
                None
            }
        }
    }

    fn validate_ops(&self, f: &mut Findings) -> OpsPaths {
        let metrics = if self.metrics.is_empty() {
            None
        } else {
            match self.metrics.parse::<SocketAddr>() {
                Ok(a) if a.port() == 0 => {
                    f.err(err(
                        "metrics",
                        &self.metrics,
                        "has port 0, which would listen on a random port no scraper knows",
                        format!("use e.g. \"{DEFAULT_METRICS}\", or \"\" to disable"),
                    ));
                    None
                }
                Ok(a) => Some(a),
                Err(_) => {
                    f.err(err(
                        "metrics",
                        &self.metrics,
                        "is not a listen address HOST:PORT",
                        format!("use e.g. \"{DEFAULT_METRICS}\", or \"\" to disable"),
                    ));
                    None
                }
            }
        };
        let control = self.validate_control(f);
        let mapping_log = (!self.mapping_log.is_empty()).then(|| PathBuf::from(&self.mapping_log));
        let mapping_log = match mapping_log {
            Some(p) if !p.is_absolute() || self.mapping_log.ends_with('/') => {
                f.err(err(
                    "mapping-log",
                    &self.mapping_log,
                    "is not an absolute file path",
                    "use e.g. \"/var/log/nat64/mappings.log\", or \"\" to disable the mapping log",
                ));
                None
            }
            Some(p) => {
                if let Some((problem, fix)) = file_path_problem(&p, "mappings.log") {
                    f.err(err("mapping-log", &self.mapping_log, problem, fix));
                }
                Some(p)
            }
            None => None,
        };
        let state_file = match self.state_file.as_deref() {
            None | Some("") => None,
            Some(s) if !Path::new(s).is_absolute() || s.ends_with('/') => {
                f.err(err(
                    "state-file",
                    s,
                    "is not an absolute file path",
                    "use e.g. \"/var/lib/nat64/leases\", or \"\" to keep no leases",
                ));
                None
            }
            Some(s) => {
                let p = PathBuf::from(s);
                if self.napt == NaptMode::Kernel {
                    if let Some((problem, fix)) = file_path_problem(&p, "leases") {
                        f.err(err("state-file", s, problem, fix));
                    }
                }
                Some(p)
            }
        };
        let named = [
            ("control", &control),
            ("mapping-log", &mapping_log),
            ("state-file", &state_file),
        ];
        for (i, (k, p)) in named.iter().enumerate() {
            if let Some((earlier, _)) = named[..i]
                .iter()
                .find(|(_, q)| p.is_some() && q.as_ref() == p.as_ref())
            {
                f.err(err(
                    *k,
                    p.as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    format!("is the same file as `{earlier}`"),
                    "give each its own path",
                ));
            }
        }
        OpsPaths {
            metrics,
            control,
            mapping_log,
            state_file,
        }
    }

    /// `control`: an absolute path a Unix socket can be bound at.
    fn validate_control(&self, f: &mut Findings) -> Option<PathBuf> {
        if self.control.is_empty() {
            return None;
        }
        let p = PathBuf::from(&self.control);
        let fix = format!("use e.g. \"{DEFAULT_CONTROL}\", or \"\" to disable the control socket");
        if !p.is_absolute() {
            f.err(err(
                "control",
                &self.control,
                "is not an absolute path",
                fix,
            ));
            return Some(p);
        }
        if self.control.len() > bounds::CONTROL_PATH_BYTES {
            f.err(err(
                "control",
                &self.control,
                format!(
                    "is {} bytes long; a Unix socket path holds at most {}",
                    self.control.len(),
                    bounds::CONTROL_PATH_BYTES
                ),
                fix,
            ));
        } else if let Ok(m) = std::fs::symlink_metadata(&p) {
            use std::os::unix::fs::FileTypeExt as _;
            if !m.file_type().is_socket() {
                f.err(err(
                    "control",
                    &self.control,
                    format!(
                        "exists and is not a socket (a {}); nat64 does not replace it",
                        if m.is_dir() { "directory" } else { "file" }
                    ),
                    "remove it, or set `control` to another path (\"\" disables the control \
                     socket)",
                ));
            }
        } else if let Some((problem, fix)) = file_path_problem(&p, "control.sock") {
            f.err(err("control", &self.control, problem, fix));
        }
        Some(p)
    }

    /// `[[static]]`: protocol, a unicast IPv6 server outside the prefix, a
    /// pool address, each side once per protocol.
    fn validate_statics(
        &self,
        f: &mut Findings,
        prefix: Option<Prefix>,
        pool: &[V4Net],
    ) -> Vec<StaticBib> {
        let mut static_bib: Vec<StaticBib> = Vec::new();
        for (i, s) in self.static_bib.iter().enumerate() {
            let k = |field: &str| format!("static[{i}].{field}");
            let proto = match s.proto.as_str() {
                "tcp" => Some(L4Proto::Tcp),
                "udp" => Some(L4Proto::Udp),
                "icmp" => Some(L4Proto::Icmp),
                other => {
                    f.err(err(
                        k("proto"),
                        other,
                        "is not a protocol",
                        "use \"tcp\", \"udp\" or \"icmp\"",
                    ));
                    None
                }
            };
            let v6 = match s.v6.parse::<SocketAddrV6>() {
                Ok(a) => Some(a),
                Err(_) => {
                    f.err(err(
                        k("v6"),
                        &s.v6,
                        "is not an IPv6 socket address",
                        "write \"[2001:db8::10]:80\"",
                    ));
                    None
                }
            };
            let v4 = match s.v4.parse::<SocketAddrV4>() {
                Ok(a) => {
                    let in_pool = pool.iter().any(|n| n.contains(*a.ip()));
                    let net = V4Net {
                        addr: *a.ip(),
                        len: 32,
                    };
                    if let Some((b, what)) = forbidden_v4(net, in_pool) {
                        f.err(err(
                            k("v4"),
                            &s.v4,
                            format!("is in {b} ({what}), which nat64 never translates (docs/operator.md §2.6)"),
                            "use an address from `pool`",
                        ));
                    } else if !pool.is_empty() && !in_pool {
                        f.err(err(
                            k("v4"),
                            &s.v4,
                            "is not inside the pool",
                            "use an address from `pool`, so that it is routed to the translator",
                        ));
                    }
                    Some(a)
                }
                Err(_) => {
                    f.err(err(
                        k("v4"),
                        &s.v4,
                        "is not an IPv4 socket address",
                        "write \"192.0.2.10:80\"",
                    ));
                    None
                }
            };
            if let Some(v6) = v6 {
                if let Some(block) = forbidden_v6(*v6.ip(), 128) {
                    f.err(err(
                        k("v6"),
                        &s.v6,
                        format!("is in {block}, not a server's unicast address"),
                        "use the global address of the IPv6 server",
                    ));
                } else if let Some(p) = prefix.filter(|p| p.contains(v6.ip())) {
                    f.err(err(
                        k("v6"),
                        &s.v6,
                        format!("lies inside the translation prefix {p}"),
                        "use the address of the IPv6 server, outside the prefix",
                    ));
                }
            }
            if proto.is_some_and(|p| p != L4Proto::Icmp) {
                for (field, text, port) in [
                    ("v6", &s.v6, v6.map(|a| a.port())),
                    ("v4", &s.v4, v4.map(|a| a.port())),
                ] {
                    if port == Some(0) {
                        f.err(err(
                            k(field),
                            text,
                            "has port 0, which no TCP or UDP flow uses",
                            "give the port the service listens on, e.g. 80",
                        ));
                    }
                }
            }
            let (Some(proto), Some(v6), Some(v4)) = (proto, v6, v4) else {
                continue;
            };
            if static_bib.iter().any(|b| b.proto == proto && b.v4 == v4) {
                f.err(err(
                    k("v4"),
                    &s.v4,
                    "is used twice for this protocol",
                    "give each entry its own v4 address:port",
                ));
            } else if let Some(b) = static_bib.iter().find(|b| b.proto == proto && b.v6 == v6) {
                f.err(err(
                    k("v6"),
                    &s.v6,
                    format!(
                        "is already mapped to {} for this protocol; one IPv6 endpoint has one \
                         binding",
                        b.v4
                    ),
                    "remove one of the two entries, or give the server another port",
                ));
            }
            static_bib.push(StaticBib { proto, v6, v4 });
        }
        static_bib
    }

    /// One static BIB entry added at run time (`nat64 binding add`),
    /// checked by exactly the rules a `[[static]]` entry of the file meets
    /// (issue 11 #1: the control socket accepted an IPv6 side inside the
    /// prefix, or multicast such as ff02::1). `Err` holds the problems,
    /// each with its fix.
    pub fn check_runtime_static(
        prefix: Prefix,
        pool: &[V4Net],
        entry: StaticEntry,
    ) -> Result<StaticBib, String> {
        let f = FileConfig {
            static_bib: vec![entry],
            ..FileConfig::default()
        };
        let mut found = Findings {
            errs: Vec::new(),
            warnings: Vec::new(),
        };
        let mut ok = f.validate_statics(&mut found, Some(prefix), pool);
        match (found.errs.is_empty(), ok.pop()) {
            (true, Some(b)) => Ok(b),
            _ => Err(found
                .errs
                .iter()
                .map(|e| e.to_string().replace("static[0].", ""))
                .collect::<Vec<_>>()
                .join("; ")),
        }
    }

    /// `[[map]]`: a unicast IPv6 host outside the prefix, an IPv4 address
    /// outside the never-translated blocks (docs/operator.md §2.6) and other than gateway-v4, each once.
    fn validate_maps(
        &self,
        f: &mut Findings,
        prefix: Option<Prefix>,
        inner_pool: Option<V4Net>,
        gateway_v4: Option<Ipv4Addr>,
    ) -> Vec<(Ipv6Addr, Ipv4Addr)> {
        let mut maps: Vec<(Ipv6Addr, Ipv4Addr)> = Vec::new();
        for (i, m) in self.maps.iter().enumerate() {
            let (a6, a4) = match (m.v6.parse::<Ipv6Addr>(), m.v4.parse::<Ipv4Addr>()) {
                (Ok(a6), Ok(a4)) => (a6, a4),
                (Err(_), _) => {
                    f.err(err(
                        format!("map[{i}].v6"),
                        &m.v6,
                        "is not an IPv6 address",
                        "write a plain address such as \"2001:db8::10\"",
                    ));
                    continue;
                }
                (_, Err(_)) => {
                    f.err(err(
                        format!("map[{i}].v4"),
                        &m.v4,
                        "is not an IPv4 address",
                        "write a plain address such as \"100.64.0.10\"",
                    ));
                    continue;
                }
            };
            if let Some(block) = forbidden_v6(a6, 128) {
                f.err(err(
                    format!("map[{i}].v6"),
                    &m.v6,
                    format!("is in {block}, not a host's unicast address"),
                    "map the IPv6 host's own global address",
                ));
            } else if prefix.is_some_and(|p| p.contains(&a6)) {
                f.err(err(
                    format!("map[{i}].v6"),
                    &m.v6,
                    "lies inside the translation prefix",
                    "map the IPv6 host's own address",
                ));
            }
            let in_inner = inner_pool.is_some_and(|n| n.contains(a4));
            if let Some((b, what)) = forbidden_v4(V4Net { addr: a4, len: 32 }, in_inner) {
                f.err(err(
                    format!("map[{i}].v4"),
                    &m.v4,
                    format!(
                        "is in {b} ({what}), which nat64 never translates (docs/operator.md §2.6)"
                    ),
                    "use an address from inner-pool, or another routable address",
                ));
            } else if gateway_v4 == Some(a4) {
                f.err(err(
                    format!("map[{i}].v4"),
                    &m.v4,
                    "is gateway-v4, the translator's own address",
                    "map another address (e.g. one from inner-pool)",
                ));
            }
            if maps.iter().any(|(x6, x4)| *x6 == a6 || *x4 == a4) {
                f.err(err(
                    format!("map[{i}]"),
                    format!("{a6} = {a4}"),
                    "repeats an address of an earlier map",
                    "map each address once",
                ));
            }
            maps.push((a6, a4));
        }
        maps
    }
}

impl FileConfig {
    /// `none` mode: `[[map]]` entries as explicit address mappings (RFC
    /// 7757 §3.2: an IPv4 suffix no longer than the IPv6 one, no host bits, no never-translated block,
    /// not colliding with each other), merged with `map-file`
    /// ([`crate::mapfile`]: a config entry beats a map-file line, a later
    /// line an earlier one; each left out is a warning).
    fn validate_eam(
        &self,
        f: &mut Findings,
        gateway_v4: Option<Ipv4Addr>,
    ) -> (nat64_core::eam::EamTable, Option<PathBuf>) {
        use nat64_core::eam::Eam;
        let mut config: Vec<Eam> = Vec::new();
        for (i, m) in self.maps.iter().enumerate() {
            let e = match Eam::parse(&m.v4, &m.v6) {
                Ok(e) => e,
                Err(e) => {
                    f.err(err(
                        format!("map[{i}]"),
                        format!("{} = {}", m.v4, m.v6),
                        e.to_string(),
                        "write v4 = \"192.0.2.0/24\", v6 = \"2001:db8:6::/120\" (prefixes with \
                         equal suffix lengths, or a longer IPv6 one; a bare address is a /32 or /128)",
                    ));
                    continue;
                }
            };
            if self.eam_is_bad(f, &format!("map[{i}]"), &e, gateway_v4) {
                continue;
            }
            if let Some(j) = config.iter().position(|x| x.collides(&e)) {
                f.err(err(
                    format!("map[{i}]"),
                    e,
                    format!("maps the same prefix as map[{j}] = \"{}\"", config[j]),
                    "keep one of the two (longer, nested prefixes are fine: the longest match \
                     wins)",
                ));
                continue;
            }
            config.push(e);
        }
        let (file, lines) = if self.map_file.is_empty() {
            (None, Vec::new())
        } else {
            let path = PathBuf::from(&self.map_file);
            match crate::mapfile::load(&path) {
                Ok(parsed) => {
                    for s in parsed.skipped {
                        f.warn(s);
                    }
                    let lines = parsed
                        .lines
                        .into_iter()
                        .filter(|l| {
                            !self.eam_is_bad(
                                &mut Findings::default(),
                                "map-file",
                                &l.eam,
                                gateway_v4,
                            ) || {
                                f.warn(format!(
                                    "{} line {} skipped: {} is not a mapping nat64 can use \
                                     (`nat64 check` with it in [[map]] says why)",
                                    self.map_file, l.number, l.eam
                                ));
                                false
                            }
                        })
                        .collect();
                    (Some(path), lines)
                }
                Err(e) => {
                    f.err(err(
                        "map-file",
                        &self.map_file,
                        format!("cannot be read: {e}"),
                        "create the file (one `IPV4[/LEN] IPV6[/LEN]` per line; it may be \
                         empty) or remove map-file",
                    ));
                    (None, Vec::new())
                }
            }
        };
        let (table, notes) = crate::mapfile::merge(&config, &lines, &self.map_file);
        for n in notes {
            f.warn(n);
        }
        (table, file)
    }

    /// An EAM that nat64 refuses: a never-translated IPv4 block (docs/operator.md §2.6), an IPv6 range
    /// never routed to a translator, or one covering `gateway-v4`.
    fn eam_is_bad(
        &self,
        f: &mut Findings,
        key: &str,
        e: &nat64_core::eam::Eam,
        gateway_v4: Option<Ipv4Addr>,
    ) -> bool {
        let (a4, l4) = e.v4();
        let (a6, l6) = e.v6();
        let n4 = V4Net { addr: a4, len: l4 };
        let mut bad = false;
        if let Some((b, what)) = forbidden_v4(n4, false) {
            f.err(err(
                key,
                e,
                format!(
                    "overlaps {b} ({what}), which nat64 never translates (docs/operator.md §2.6)"
                ),
                "map routable IPv4 space only",
            ));
            bad = true;
        }
        if let Some(block) = forbidden_v6(a6, l6) {
            f.err(err(
                key,
                e,
                format!("overlaps {block}, which is never routed to a translator"),
                "map global or unique-local IPv6 space only",
            ));
            bad = true;
        }
        if let Some(g) = gateway_v4.filter(|g| n4.contains(*g)) {
            f.err(err(
                key,
                e,
                format!("covers gateway-v4 {g}, the translator's own address"),
                "move gateway-v4 out of the mapped range, or split the mapping around it",
            ));
            bad = true;
        }
        bad
    }

    /// `rfc6791-pool` (`none` mode): addresses or prefixes outside the
    /// never-translated blocks, at most 256 addresses; empty means `gateway-v4`.
    fn validate_rfc6791(&self, f: &mut Findings, gateway_v4: Option<Ipv4Addr>) -> Vec<Ipv4Addr> {
        let mut out = Vec::new();
        for (i, p) in self.rfc6791_pool.iter().enumerate() {
            match parse_v4net(p) {
                Ok(n) if n.len < 24 => f.err(err(
                    format!("rfc6791-pool[{i}]"),
                    p,
                    "holds more than 256 addresses",
                    "a few addresses are plenty (RFC 6791 §4): use a /24 or smaller",
                )),
                Ok(n) => {
                    if let Some((b, what)) = forbidden_v4(n, false) {
                        f.err(err(
                            format!("rfc6791-pool[{i}]"),
                            p,
                            format!("overlaps {b} ({what}); ICMP errors from it would be dropped"),
                            "use routable addresses of this translator",
                        ));
                        continue;
                    }
                    let base = u32::from(n.addr);
                    out.extend((0..(1u32 << (32 - n.len))).map(|k| Ipv4Addr::from(base + k)));
                }
                Err((problem, fix)) => f.err(err(format!("rfc6791-pool[{i}]"), p, problem, fix)),
            }
        }
        if out.len() > 256 {
            f.err(err(
                "rfc6791-pool",
                self.rfc6791_pool.join(", "),
                format!("holds {} addresses", out.len()),
                "list at most 256 addresses (RFC 6791 §4)",
            ));
        }
        if out.is_empty() && matches!(self.napt, NaptMode::None | NaptMode::Clat) {
            out.extend(gateway_v4);
        }
        out
    }

    /// `[pref64]`: an interface name and an interval whose three-fold
    /// lifetime fits the option's 13-bit field (RFC 8781 §4).
    fn validate_pref64(&self, f: &mut Findings) -> Option<(String, Duration)> {
        let p = &self.pref64;
        if let Some(e) = within(
            "pref64.interval-secs",
            p.interval_secs,
            bounds::PREF64_INTERVAL_SECS,
            "the advertised lifetime is three intervals and RFC 8781 caps it at 65528 s",
            "use e.g. 60 (a router sends unsolicited advertisements every 200-600 s)",
        ) {
            f.err(e);
        }
        if p.interface.is_empty() {
            return None;
        }
        if self.napt == NaptMode::Clat {
            f.err(err(
                "pref64.interface",
                &p.interface,
                "a CLAT does not advertise its PLAT's prefix",
                "remove [pref64], or advertise from the PLAT",
            ));
        }
        if let Some(problem) = tun_name_problem(&p.interface) {
            f.err(err(
                "pref64.interface",
                &p.interface,
                format!("is not an interface name: {problem}"),
                "name the interface the IPv6 clients are on (e.g. \"eth1\")",
            ));
        }
        Some((p.interface.clone(), Duration::from_secs(p.interval_secs)))
    }

    /// `clat` mode (RFC 6877): `clat-v6` present, a unicast address outside
    /// the PLAT's prefix; `clat-v4` an address (RFC 7335 suggests
    /// 192.0.0.1); `clat-uplink` an interface name.
    fn validate_clat(&self, f: &mut Findings, prefix: Option<Prefix>) -> Option<ClatSettings> {
        if self.napt != NaptMode::Clat {
            return None;
        }
        let v6 = match &self.clat_v6 {
            None => {
                f.err(err(
                    "clat-v6",
                    "",
                    "is missing; napt = \"clat\" translates local IPv4 to this IPv6 address",
                    "add clat-v6 = \"...\": an unused address of the uplink's /64 (RFC 6877 \
                     §6.3), e.g. the /64 of `ip -6 addr show` with ::c1a7 as the host part",
                ));
                None
            }
            Some(s) => match s.parse::<Ipv6Addr>() {
                Err(_) => {
                    f.err(err(
                        "clat-v6",
                        s,
                        "is not an IPv6 address",
                        "write a plain address such as \"2001:db8:1::c1a7\"",
                    ));
                    None
                }
                Ok(a) => {
                    if let Some(block) = forbidden_v6(a, 128) {
                        f.err(err(
                            "clat-v6",
                            s,
                            format!("is in {block}, not a routable unicast address"),
                            "use a global or unique-local address of the uplink's /64",
                        ));
                    } else if prefix.is_some_and(|p| p.contains(&a)) {
                        f.err(err(
                            "clat-v6",
                            s,
                            "lies inside the PLAT's prefix",
                            "use an address of this host's /64",
                        ));
                    }
                    Some(a)
                }
            },
        };
        let v4 = match self.clat_v4.parse::<Ipv4Addr>() {
            Ok(a) if forbidden_v4(V4Net { addr: a, len: 32 }, false).is_none() => Some(a),
            _ => {
                f.err(err(
                    "clat-v4",
                    &self.clat_v4,
                    "is not a usable IPv4 address",
                    format!("use \"{DEFAULT_CLAT_V4}\" (RFC 7335)"),
                ));
                None
            }
        };
        let uplink = (!self.clat_uplink.is_empty()).then(|| self.clat_uplink.clone());
        if let Some(problem) = uplink.as_deref().and_then(tun_name_problem) {
            f.err(err(
                "clat-uplink",
                &self.clat_uplink,
                format!("is not an interface name: {problem}"),
                "name the interface that carries the host's IPv6 default route (e.g. \"eth0\")",
            ));
        }
        Some(ClatSettings {
            v6: v6?,
            v4: v4?,
            uplink,
        })
    }
}

/// The fewest prefixes that cover exactly the consecutive addresses
/// `addrs` (a farm instance's slice of the pool).
fn cidr_cover(addrs: &[u32]) -> Vec<V4Net> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < addrs.len() {
        // Extend the run of consecutive addresses from i.
        let mut j = i + 1;
        while j < addrs.len() && addrs[j] == addrs[j - 1].wrapping_add(1) {
            j += 1;
        }
        let (mut a, end) = (u64::from(addrs[i]), u64::from(addrs[j - 1]) + 1);
        while a < end {
            // The largest aligned block at `a` that fits before `end`.
            let mut size = if a == 0 {
                1u64 << 32
            } else {
                1u64 << a.trailing_zeros().min(32)
            };
            while a + size > end {
                size >>= 1;
            }
            out.push(V4Net {
                addr: Ipv4Addr::from(a as u32),
                len: 32 - size.trailing_zeros() as u8,
            });
            a += size;
        }
        i = j;
    }
    out
}

/// Whole blocks of `bs` ports aligned to `bs` inside `lo..=hi` (what the
/// daemon NAPT hands out with `ports.block-size`).
fn aligned_blocks((lo, hi): (u16, u16), bs: u16) -> u32 {
    let bs = u32::from(bs);
    let first = u32::from(lo).div_ceil(bs) * bs;
    (u32::from(hi) + 1).saturating_sub(first) / bs
}

/// The dotted key whose line holds byte `offset` of `text` (`tun.mtu`): the
/// line's `key =` under the last `[table]` header above it. Parse errors
/// name the key this way, as validation errors do.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("");
    let key = line.split_once('=')?.0.trim().trim_matches('"');
    if key.is_empty() || key.starts_with(['[', '#']) {
        return None;
    }
    let table = text[..start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .and_then(|h| h.trim_start_matches('[').split(']').next())
        .map(str::trim)
        .filter(|t| !t.is_empty());
    Some(match table {
        Some(t) => format!("{t}.{key}"),
        None => key.to_string(),
    })
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// Where a configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Profile(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(p) => write!(f, "{}", p.display()),
            Source::Profile(n) => write!(f, "(built-in profile \"{n}\")"),
        }
    }
}

/// Resolves `--config ARG`: a built-in profile name or a file path. A path
/// that exists wins over a profile of the same name.
pub fn resolve(arg: &str) -> (Source, Option<&'static str>) {
    let path = Path::new(arg);
    if !path.exists() {
        if let Some((name, text)) = PROFILES.iter().find(|(n, _)| *n == arg) {
            return (Source::Profile(name), Some(text));
        }
    }
    (Source::File(path.to_path_buf()), None)
}

fn profile_text(name: &str) -> Option<(&'static str, &'static str)> {
    PROFILES.iter().find(|(n, _)| *n == name).copied()
}

fn profile_names() -> String {
    PROFILES
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

fn one_error(source: &str, e: ConfigError) -> ConfigErrors {
    ConfigErrors {
        source: source.to_string(),
        errors: vec![e],
    }
}

/// The layers of `--config ARG` and `--set`s, merged but not validated:
/// the source, the merged file form and where each value came from.
pub fn load_layers(arg: &str, sets: &[String]) -> anyhow::Result<(Source, FileConfig, Layers)> {
    let (source, profile) = resolve(arg);
    let src = source.to_string();
    let mut layers = Layers::default();
    let table = |text: &str| -> Result<toml::Table, ConfigErrors> {
        toml::from_str::<toml::Table>(text).map_err(|e| {
            one_error(
                &src,
                err("file", "", e.message().to_string(), "correct the TOML"),
            )
        })
    };
    match (&source, profile) {
        (Source::Profile(name), Some(text)) => layers.add(table(text)?, &Origin::Profile(name)),
        _ => {
            let text = std::fs::read_to_string(arg).with_context(|| {
                format!(
                    "cannot read config file {arg}; give a readable TOML file (see examples/) or \
                     a built-in profile ({})",
                    profile_names()
                )
            })?;
            // Parsed whole first: errors carry the line and column.
            let own = FileConfig::parse(&text, &src)?;
            let mut t = table(&text)?;
            t.remove("profile");
            if let Some(name) = &own.profile {
                let Some((pname, ptext)) = profile_text(name) else {
                    return Err(one_error(
                        &src,
                        err(
                            "profile",
                            name,
                            "is not a built-in profile",
                            format!("use one of: {}", profile_names()),
                        ),
                    )
                    .into());
                };
                layers.add(table(ptext)?, &Origin::Profile(pname));
            }
            layers.add(t, &Origin::File(src.clone()));
        }
    }
    let mut errors = Vec::new();
    for s in sets {
        if let Err(e) = layers.set(s) {
            errors.push(e);
        }
    }
    if !errors.is_empty() {
        return Err(ConfigErrors {
            source: src,
            errors,
        }
        .into());
    }
    let file = FileConfig::deserialize(layers.table.clone()).map_err(|e| {
        one_error(
            &src,
            err(
                if sets.is_empty() { "profile" } else { "--set" },
                "",
                e.message().to_string(),
                "use the keys and value types `nat64 check` prints (kebab-case, tables with dots: \
                 --set tun.mtu=1280)",
            ),
        )
    })?;
    Ok((source, file, layers))
}

/// Loaded configuration: the file form (effective) and the settings.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub source: Source,
    pub file: FileConfig,
    pub settings: Settings,
    /// Where each value came from.
    pub layers: Layers,
    /// The prefix, when it was derived from an interface.
    pub derived: Option<Derived>,
    /// The prefix, when it was discovered through DNS64 (RFC 7050).
    pub discovered: Option<rfc7050::Discovered>,
}

impl Loaded {
    /// The effective configuration as TOML, each value annotated with where
    /// it came from (`nat64 check`).
    pub fn annotated_toml(&self) -> anyhow::Result<String> {
        let mut notes = std::collections::BTreeMap::new();
        if self.discovered.is_some() {
            notes.insert(
                "prefix".to_string(),
                format!("discovered through {} (RFC 7050)", rfc7050::SPELLING),
            );
        }
        if let Some(d) = &self.derived {
            notes.insert("prefix".to_string(), d.describe());
        }
        Ok(layers::annotate(
            &self.file.to_toml()?,
            &self.layers,
            &notes,
        ))
    }

    /// Where the prefix came from, in words (logs, `show stats`).
    pub fn prefix_origin(&self) -> String {
        let layer = self
            .layers
            .origin("prefix")
            .map_or("default".to_string(), |o| o.to_string());
        match (&self.derived, &self.discovered) {
            (Some(d), _) => format!("{}; {layer}", d.describe()),
            (None, Some(_)) => format!(
                "discovered through {} (RFC 7050); {layer}",
                rfc7050::SPELLING
            ),
            (None, None) => layer,
        }
    }
}

/// Reads, merges (`profile`, `--set`), resolves a derived prefix, and
/// validates `--config ARG`.
pub fn load(arg: &str, sets: &[String]) -> anyhow::Result<Loaded> {
    let (source, mut file, layers) = load_layers(arg, sets)?;
    let src = source.to_string();
    // RFC 7050: the PLAT's prefix through DNS64 (a CLAT's usual source).
    let mut discovered = None;
    if file.prefix.trim() == rfc7050::SPELLING {
        match rfc7050::discover() {
            Ok(d) => {
                file.prefix = d.prefix.to_string();
                discovered = Some(d);
            }
            Err((problem, fix)) => {
                return Err(one_error(&src, err("prefix", rfc7050::SPELLING, problem, fix)).into())
            }
        }
    }
    let derived = match derive::FromInterface::parse(&file.prefix) {
        None => None,
        Some(Err(problem)) => {
            return Err(one_error(
                &src,
                err(
                    "prefix",
                    &file.prefix,
                    problem,
                    "write from-interface:NAME or from-interface:NAME@RANGE, e.g. \
                     \"from-interface:mycelium@400::/7\"",
                ),
            )
            .into())
        }
        Some(Ok(from)) => match derive::derive_on_host(&from) {
            Ok(d) => Some(d),
            Err(e) => {
                return Err(one_error(&src, err("prefix", &file.prefix, e.problem, e.fix)).into())
            }
        },
    };
    if let Some(d) = &derived {
        file.prefix = d.prefix.to_string();
    }
    let mut settings = file.validate(&src)?;
    if let Some(d) = &derived {
        if let Some(m) = d.if_mtu.filter(|m| u32::from(settings.tun.mtu) > *m) {
            settings.warnings.push(format!(
                "tun.mtu {} is above the MTU {m} of {}, the overlay the prefix comes from: \
                 translated packets that fit the TUN would not fit the overlay (set tun.mtu = {m})",
                settings.tun.mtu, d.from.ifname
            ));
        }
    }
    if let Some(d) = &discovered {
        if d.all.len() > 1 {
            settings.warnings.push(format!(
                "{} names {} NAT64 prefixes ({}); using the first (RFC 7050 §3)",
                rfc7050::SPELLING,
                d.all.len(),
                d.all
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(Loaded {
        source,
        file,
        settings,
        layers,
        derived,
        discovered,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    fn base() -> String {
        "prefix = \"2001:db8:64::/96\"\npool = [\"192.0.2.0/24\"]\ngateway-v4 = \"198.51.100.1\"\n"
            .to_string()
    }

    fn errors(text: &str) -> Vec<ConfigError> {
        match FileConfig::parse(text, "t.toml").and_then(|f| f.validate("t.toml")) {
            Ok(_) => Vec::new(),
            Err(e) => e.errors,
        }
    }

    #[test]
    fn minimal_daemon_config_is_valid() {
        let f = FileConfig::parse(&base(), "t").unwrap();
        let s = f.validate("t").unwrap();
        assert_eq!(s.pool.len(), 1);
        assert_eq!(
            s.icmp_source_v6,
            "2001:db8:64::c633:6401".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(s.udp_ports, (1024, 65535));
    }

    #[test]
    fn ops_keys_validated() {
        let s = FileConfig::parse(
            &(base() + "log-format = \"json\"\nmapping-log = \"/var/log/nat64/m.log\"\n"),
            "t",
        )
        .unwrap()
        .validate("t")
        .unwrap();
        assert_eq!(s.log_format, LogFormat::Json);
        assert_eq!(s.mapping_log, Some(PathBuf::from("/var/log/nat64/m.log")));
        assert_eq!(errors(&(base() + "log-format = \"xml\"\n")).len(), 1);
        let e = errors(&(base() + "mapping-log = \"rel.log\"\ncontrol = \"c.sock\"\n"));
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(e.iter().any(|e| e.key == "mapping-log"), "{e:?}");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = errors(&(base() + "colour = \"blue\"\n"));
        assert_eq!(e.len(), 1);
        assert!(e[0].problem.contains("colour"), "{}", e[0]);
        assert!(e[0].key.contains("line 4"), "{}", e[0]);
    }

    #[test]
    fn tun_batch_bounds_named() {
        for bad in [0, 1025] {
            let e = errors(&(base() + &format!("[tun]\nbatch = {bad}\n")));
            assert_eq!(e.len(), 1, "{e:?}");
            assert_eq!(e[0].key, "tun.batch", "{}", e[0]);
            assert!(e[0].to_string().contains(&bad.to_string()), "{}", e[0]);
        }
        let s = FileConfig::parse(&(base() + "[tun]\nbatch = 1\nplace-flows = false\n"), "t")
            .unwrap()
            .validate("t")
            .unwrap();
        assert_eq!((s.tun.batch, s.tun.place_flows), (1, false));
    }

    #[test]
    fn unknown_nested_key_is_named() {
        let e = errors(&(base() + "[timeouts]\nudpp = 3\n"));
        assert!(e[0].problem.contains("udpp"), "{}", e[0]);
    }

    #[test]
    fn rfc6052_3_1_wkp_with_private_pool_refused() {
        let e = errors(
            "prefix = \"64:ff9b::/96\"\npool = [\"10.0.0.0/24\"]\ngateway-v4 = \"192.0.2.1\"\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].key, "pool");
        assert!(e[0].value.contains("10.0.0.0/24"));
        assert!(e[0].problem.contains("10.0.0.0/8"));
        assert!(e[0].fix.contains("wkp-strict"));
    }

    #[test]
    fn rfc6052_3_1_lifted_with_warning() {
        let f = FileConfig::parse(
            "prefix = \"64:ff9b::/96\"\npool = [\"10.0.0.0/24\"]\ngateway-v4 = \"192.0.2.1\"\nwkp-strict = false\n",
            "t",
        )
        .unwrap();
        let s = f.validate("t").unwrap();
        assert!(!s.warnings.is_empty());
    }

    #[test]
    fn rfc6052_3_1_kernel_inner_pool_exempt() {
        let e = errors(
            "prefix = \"64:ff9b::/96\"\nnapt = \"kernel\"\ninner-pool = \"100.64.0.0/16\"\ngateway-v4 = \"100.65.0.1\"\n",
        );
        assert!(e.is_empty(), "{e:?}");
    }

    #[test]
    fn bad_cidr_and_missing_gateway() {
        let e = errors("prefix = \"2001:db8:64::/96\"\npool = [\"192.0.2.1/24\"]\n");
        assert!(
            e.iter()
                .any(|e| e.key == "pool[0]" && e.fix.contains("192.0.2.0/24")),
            "{e:?}"
        );
        assert!(e.iter().any(|e| e.key == "gateway-v4"), "{e:?}");
    }

    #[test]
    fn bad_prefix_length() {
        let e = errors("prefix = \"2001:db8:64::/80\"\npool = [\"192.0.2.0/24\"]\ngateway-v4 = \"198.51.100.1\"\n");
        assert_eq!(e[0].key, "prefix");
    }

    #[test]
    fn static_entries_parse() {
        let f = FileConfig::parse(
            &(base()
                + "[[static]]\nproto = \"tcp\"\nv6 = \"[2001:db8:1::2]:8080\"\nv4 = \"192.0.2.10:80\"\n"),
            "t",
        )
        .unwrap();
        let s = f.validate("t").unwrap();
        assert_eq!(s.static_bib.len(), 1);
        assert_eq!(s.static_bib[0].v4.port(), 80);
    }

    #[test]
    fn geomind_profile_is_valid_and_kernel() {
        let mut f = FileConfig::parse(GEOMIND_PROFILE, "geomind").unwrap();
        assert_eq!(f.prefix, "from-interface:mycelium@400::/7");
        // What `load` does once the interface is read.
        f.prefix = derive::prefix_for("45a:1b2c:3d4e:5f60::1".parse().unwrap()).to_string();
        let s = f.validate("geomind").unwrap();
        assert_eq!(s.napt, NaptMode::Kernel);
        assert!(s.manage_forwarding);
        assert!(s.tun.mtu <= 1400);
        assert_eq!(s.prefix.to_string(), "45a:1b2c:3d4e:5f60:0:64::/96");
    }

    #[test]
    fn effective_config_round_trips() {
        let f = FileConfig::parse(&base(), "t").unwrap();
        let text = f.to_toml().unwrap();
        let g = FileConfig::parse(&text, "t").unwrap();
        assert_eq!(g.to_toml().unwrap(), text);
        g.validate("t").unwrap();
        assert!(text.contains("reap-interval-secs = 30"));
    }

    #[test]
    fn examples_are_valid() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
        for name in ["daemon.toml", "kernel.toml", "siit.toml", "clat.toml"] {
            let p = format!("{dir}/{name}");
            // clat.toml discovers its prefix (RFC 7050) in `load`, which
            // asks the resolver; here the discovered value is stood in.
            let text = std::fs::read_to_string(&p)
                .unwrap()
                .replace("\"ipv4only.arpa\"", "\"64:ff9b::/96\"");
            let f = FileConfig::parse(&text, &p).unwrap();
            f.validate(&p).unwrap();
        }
    }

    fn temp_config(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("nat64-cfg-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("nat64.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn profile_in_file_with_overrides_and_origins() {
        let p = temp_config(
            "profile",
            "profile = \"geomind\"\nprefix = \"2001:db8:64::/96\"\n[tun]\nmtu = 1280\n",
        );
        let sets = vec!["state-file=/tmp/x/leases".to_string()];
        let l = load(p.to_str().unwrap(), &sets).unwrap();
        // From the profile.
        assert_eq!(l.settings.napt, NaptMode::Kernel);
        assert!(l.settings.manage_forwarding);
        assert_eq!(l.settings.tun.name, "nat64");
        assert_eq!(l.settings.gateway_v4, Ipv4Addr::new(100, 65, 0, 1));
        // From the file and --set.
        assert_eq!(l.settings.prefix.to_string(), "2001:db8:64::/96");
        assert_eq!(l.settings.tun.mtu, 1280);
        assert_eq!(
            l.settings.state_file.as_deref(),
            Some(Path::new("/tmp/x/leases"))
        );
        assert!(l.derived.is_none());
        let file = Origin::File(p.display().to_string());
        assert_eq!(l.layers.origin("prefix"), Some(&file));
        assert_eq!(l.layers.origin("tun.mtu"), Some(&file));
        assert_eq!(
            l.layers.origin("tun.name"),
            Some(&Origin::Profile("geomind"))
        );
        assert_eq!(l.layers.origin("state-file"), Some(&Origin::Set));
        let text = l.annotated_toml().unwrap();
        assert!(
            text.contains("napt = \"kernel\"  # profile geomind"),
            "{text}"
        );
        assert!(text.contains("mtu = 1280  # "), "{text}");
        assert!(
            text.contains("state-file = \"/tmp/x/leases\"  # --set"),
            "{text}"
        );
        assert!(
            text.contains("reap-interval-secs = 30  # default"),
            "{text}"
        );
        // The effective text is itself a valid configuration (no `profile`).
        let again = FileConfig::parse(&l.file.to_toml().unwrap(), "again").unwrap();
        assert_eq!(again.profile, None);
        again.validate("again").unwrap();
    }

    #[test]
    fn set_overrides_a_profile_given_as_config() {
        let sets = vec![
            "prefix=2001:db8:64::/96".to_string(),
            "tun.name=myxlat".to_string(),
        ];
        let l = load("mycelium", &sets).unwrap();
        assert_eq!(l.settings.prefix.to_string(), "2001:db8:64::/96");
        assert_eq!(l.settings.tun.name, "myxlat");
        assert_eq!(l.settings.tun.mtu, 1400);
        assert_eq!(
            l.layers.origin("tun.mtu"),
            Some(&Origin::Profile("mycelium"))
        );
    }

    #[test]
    fn unknown_profile_and_bad_set_are_named() {
        let p = temp_config("badprofile", "profile = \"nope\"\n");
        let e = load(p.to_str().unwrap(), &[]).unwrap_err();
        let ce = e.downcast_ref::<ConfigErrors>().unwrap();
        assert_eq!(ce.errors[0].key, "profile");
        assert!(ce.errors[0].fix.contains("geomind"), "{ce}");
        let e = load("geomind", &["tun.mtu=\"big\"".to_string()]).unwrap_err();
        let ce = e.downcast_ref::<ConfigErrors>().unwrap();
        assert_eq!(ce.errors[0].key, "--set");
        let e = load("geomind", &["tun.nosuchkey=1".to_string()]).unwrap_err();
        let ce = e.downcast_ref::<ConfigErrors>().unwrap();
        assert!(ce.errors[0].problem.contains("nosuchkey"), "{ce}");
    }

    #[test]
    fn geomind_without_mycelium_interface_says_start_mycelium() {
        // The test runs where no `mycelium` interface exists (unit tests do
        // not create one); the message says what to run first.
        if derive::derive_on_host(&derive::FromInterface {
            ifname: "mycelium".into(),
            within: Some(derive::MYCELIUM_RANGE),
        })
        .is_ok()
        {
            return;
        }
        let e = load("geomind", &[]).unwrap_err();
        let ce = e.downcast_ref::<ConfigErrors>().unwrap();
        assert_eq!(ce.errors[0].key, "prefix");
        assert!(ce.errors[0].fix.contains("start Mycelium first"), "{ce}");
    }

    // ----------------------------------------------- rules of issue 11.12 ---

    fn kernel_base() -> String {
        "prefix = \"2001:db8:64::/96\"\nnapt = \"kernel\"\ngateway-v4 = \"100.65.0.1\"\n"
            .to_string()
    }

    /// Asserts `text` is refused with an error on `key` whose message
    /// names `value`; returns all errors.
    #[track_caller]
    fn refused(text: &str, key: &str, value: &str) -> Vec<ConfigError> {
        let e = errors(text);
        assert!(
            e.iter()
                .any(|e| e.key == key && e.to_string().contains(value)),
            "expected an error on `{key}` naming {value:?}, got {e:#?}\n{text}"
        );
        e
    }

    #[track_caller]
    fn accepted(text: &str) -> Settings {
        match FileConfig::parse(text, "t").and_then(|f| f.validate("t")) {
            Ok(s) => s,
            Err(e) => panic!("refused:\n{e}\n{text}"),
        }
    }

    fn farm_config(pool: &str, instance: u32, instances: u32, extra: &str) -> String {
        format!(
            "prefix = \"2001:db8:64::/96\"\npool = [{pool}]\ngateway-v4 = \"192.0.2.1\"\n{extra}\n\
             [farm]\ninstance = {instance}\ninstances = {instances}\n"
        )
    }

    fn nets(v: &[V4Net]) -> Vec<String> {
        v.iter().map(|n| n.to_string()).collect()
    }

    /// Instance i of n owns addresses [i*A/n, (i+1)*A/n) of the pool, as
    /// the fewest prefixes (worked by hand).
    #[test]
    fn farm_instance_owns_its_slice_of_the_pool() {
        let two = "\"198.51.100.64/30\", \"198.51.100.68/31\"";
        for (i, want) in [
            (0, ["198.51.100.64/31"]),
            (1, ["198.51.100.66/31"]),
            (2, ["198.51.100.68/31"]),
        ] {
            let s = accepted(&farm_config(two, i, 3, ""));
            assert_eq!(nets(&s.pool), want, "instance {i}");
            let farm = s.farm.unwrap();
            assert_eq!(
                (farm.instance, farm.instances, farm.whole_pool.len()),
                (i, 3, 2)
            );
        }
        // 16 addresses over 3: 0-4, 5-9, 10-15.
        let p16 = "\"203.0.113.0/28\"";
        assert_eq!(
            nets(&accepted(&farm_config(p16, 0, 3, "")).pool),
            ["203.0.113.0/30", "203.0.113.4/32"]
        );
        assert_eq!(
            nets(&accepted(&farm_config(p16, 1, 3, "")).pool),
            ["203.0.113.5/32", "203.0.113.6/31", "203.0.113.8/31"]
        );
        assert_eq!(
            nets(&accepted(&farm_config(p16, 2, 3, "")).pool),
            ["203.0.113.10/31", "203.0.113.12/30"]
        );
        // No farm: the whole pool.
        let s = accepted(&farm_config(p16, 0, 1, ""));
        assert_eq!(
            (nets(&s.pool), s.farm.is_none()),
            (vec!["203.0.113.0/28".to_string()], true)
        );
    }

    #[test]
    fn farm_refusals_name_the_key() {
        let p = "\"203.0.113.0/30\"";
        refused(&farm_config(p, 3, 3, ""), "farm.instance", "3");
        refused(&farm_config(p, 0, 0, ""), "farm.instances", "0");
        refused(&farm_config(p, 0, 5, ""), "farm.instances", "5");
        refused(
            &(kernel_base() + "\n[farm]\ninstance = 0\ninstances = 2\n"),
            "farm.instances",
            "2",
        );
        // A static binding in another instance's slice is that instance's.
        let s = accepted(&farm_config(
            p,
            0,
            2,
            "[[static]]\nproto = \"tcp\"\nv6 = \"[2001:db8::5]:80\"\nv4 = \"203.0.113.3:80\"\n",
        ));
        assert!(s.static_bib.is_empty());
        assert!(
            s.warnings.iter().any(|w| w.contains("203.0.113.3:80")),
            "{:?}",
            s.warnings
        );
    }

    /// RFC 7422 keys: block-size needed, clients only with deterministic,
    /// and a numbered range no larger than the slots (a /31 with 1024-port
    /// blocks from 1024: 2 x 63 = 126 slots).
    #[test]
    fn deterministic_blocks_and_numbered_clients() {
        let cfg = |ports: &str| {
            format!(
                "prefix = \"2001:db8:64::/96\"\npool = [\"198.51.100.64/31\"]\n\
                 gateway-v4 = \"192.0.2.1\"\n[ports]\n{ports}\n"
            )
        };
        let s = accepted(&cfg(
            "block-size = 1024\ndeterministic = true\nclients = \"2001:db8:100::/122\"",
        ));
        let d = s.deterministic.unwrap();
        assert_eq!(d.client_prefix_len, 128);
        assert_eq!(d.clients, Some(("2001:db8:100::".parse().unwrap(), 122)));
        assert!(accepted(&cfg("block-size = 1024\ndeterministic = true"))
            .deterministic
            .is_some());
        assert!(accepted(&cfg("block-size = 1024")).deterministic.is_none());
        refused(&cfg("deterministic = true"), "ports.deterministic", "true");
        refused(
            &cfg("block-size = 64\nclients = \"2001:db8:100::/122\""),
            "ports.clients",
            "/122",
        );
        let e = refused(
            &cfg("block-size = 1024\ndeterministic = true\nclients = \"2001:db8:100::/120\""),
            "ports.clients",
            "/120",
        );
        assert!(
            e[0].to_string().contains("256 clients") && e[0].to_string().contains("126 blocks"),
            "{}",
            e[0]
        );
        refused(
            &cfg("block-size = 1024\ndeterministic = true\nclients = \"2001:db8:100::1/122\""),
            "ports.clients",
            "host bits",
        );
        refused(
            &cfg("block-size = 1024\ndeterministic = true\nclients = \"2001:db8:100::/0\""),
            "ports.clients",
            "2001:db8:100::/0",
        );
        // Sites: one /64 per client.
        let site = cfg("block-size = 1024\ndeterministic = true\nclients = \"2001:db8:100::/58\"")
            + "[limits]\nclient-prefix-len = 64\n";
        assert_eq!(accepted(&site).deterministic.unwrap().client_prefix_len, 64);
    }

    #[test]
    fn fast_path_needs_a_stateful_mode_and_interfaces() {
        let d = "prefix = \"2001:db8:64::/96\"\npool = [\"192.0.2.0/28\"]\ngateway-v4 = \"192.0.2.1\"\n";
        let s = accepted(&format!(
            "{d}fast-path = \"tc-bpf\"\nfast-path-interfaces = [\"eth0\", \"eth1\"]\n"
        ));
        assert_eq!(s.fast_path_interfaces, ["eth0", "eth1"]);
        assert!(accepted(d).fast_path_interfaces.is_empty());
        // No interfaces: derived from the routes at start.
        let derived = accepted(&format!("{d}fast-path = \"tc-bpf\"\n"));
        assert!(derived.fast_path() && derived.fast_path_interfaces.is_empty());
        // The default (auto): on in daemon mode, off (and why) elsewhere.
        assert!(accepted(d).fast_path());
        assert!(accepted(&format!("{d}fast-path = \"auto\"\n")).fast_path());
        let off = accepted(&format!("{d}fast-path = \"off\"\n"));
        assert!(!off.fast_path() && off.fast_path_off.unwrap().contains("\"off\""));
        let kernel_default = accepted(&kernel_base());
        assert!(!kernel_default.fast_path());
        assert!(kernel_default
            .fast_path_off
            .unwrap()
            .contains("kernel mode"));
        let siit_default = accepted(&siit_base());
        assert!(!siit_default.fast_path() && siit_default.fast_path_off.unwrap().contains("SIIT"));
        // Interfaces the default leaves unused are a warning; with an
        // explicit "off", a contradiction.
        let ignored = accepted(&(kernel_base() + "fast-path-interfaces = [\"eth0\"]\n"));
        assert!(!ignored.fast_path() && ignored.fast_path_interfaces.is_empty());
        assert!(
            ignored
                .warnings
                .iter()
                .any(|w| w.contains("fast-path-interfaces is ignored")),
            "{:?}",
            ignored.warnings
        );
        refused(
            &format!("{d}fast-path = \"off\"\nfast-path-interfaces = [\"eth0\"]\n"),
            "fast-path-interfaces",
            "eth0",
        );
        refused(
            &format!("{d}fast-path = \"tc-bpf\"\nfast-path-interfaces = [\"nat64\"]\n"),
            "fast-path-interfaces[0]",
            "nat64",
        );
        let k = accepted(
            &(kernel_base() + "fast-path = \"tc-bpf\"\nfast-path-interfaces = [\"eth0\"]\n"),
        );
        assert_eq!(k.fast_path_interfaces, ["eth0"]);
        // The table size: the mode's default, or the key within bounds.
        assert_eq!(k.fast_path_max_flows, 65_536);
        assert_eq!(s.fast_path_max_flows, 262_144, "max-sessions 1 M, capped");
        let small = accepted(&format!(
            "{d}fast-path = \"tc-bpf\"\nfast-path-interfaces = [\"eth0\"]\n\
             fast-path-max-flows = 4096\n"
        ));
        assert_eq!(small.fast_path_max_flows, 4096);
        refused(
            &format!(
                "{d}fast-path = \"tc-bpf\"\nfast-path-interfaces = [\"eth0\"]\n\
                 fast-path-max-flows = 100\n"
            ),
            "fast-path-max-flows",
            "100",
        );
        refused(
            &(siit_base() + "fast-path = \"tc-bpf\"\nfast-path-interfaces = [\"eth0\"]\n"),
            "fast-path",
            "tc-bpf",
        );
        let clat =
            "prefix = \"2001:db8:64::/96\"\nnapt = \"clat\"\nclat-v6 = \"2001:db8:1::c1a7\"\n\
                    clat-uplink = \"eth0\"\n";
        assert!(!accepted(clat).fast_path(), "auto: off in CLAT");
        refused(
            &format!("{clat}fast-path = \"tc-bpf\"\n"),
            "fast-path",
            "tc-bpf",
        );
    }

    #[test]
    fn egress_v4_is_a_kernel_mode_public_address() {
        let ok = accepted(&(kernel_base() + "egress-v4 = \"203.0.113.10\"\n"));
        assert_eq!(ok.egress_v4, Some(Ipv4Addr::new(203, 0, 113, 10)));
        assert_eq!(accepted(&kernel_base()).egress_v4, None);
        refused(
            &(kernel_base() + "egress-v4 = \"100.64.0.9\"\n"),
            "egress-v4",
            "100.64.0.9",
        );
        refused(
            &(kernel_base() + "egress-v4 = \"127.0.0.1\"\n"),
            "egress-v4",
            "127.0.0.1",
        );
        refused(
            &(kernel_base() + "egress-v4 = \"203.0.113.0/24\"\n"),
            "egress-v4",
            "/24",
        );
        refused(
            "prefix = \"2001:db8:64::/96\"\npool = [\"192.0.2.0/28\"]\ngateway-v4 = \"192.0.2.1\"\n\
             egress-v4 = \"203.0.113.10\"\n",
            "egress-v4",
            "203.0.113.10",
        );
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("nat64-cfgrule-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn prefix_multicast_link_local_loopback_refused() {
        for p in ["ff0e::/96", "fe80::/64", "::/96", "::ffff:0:0/96"] {
            let text = base().replace("2001:db8:64::/96", p);
            let e = refused(&text, "prefix", p);
            assert!(e[0].problem.contains("never routed"), "{}", e[0]);
        }
        accepted(&base().replace("2001:db8:64::/96", "64:ff9b:1::/48"));
    }

    #[test]
    fn pool_in_loopback_refused() {
        let e = refused(
            &base().replace("192.0.2.0/24", "127.0.0.0/24"),
            "pool[0]",
            "127.0.0.0/24",
        );
        assert!(e[0].problem.contains("loopback"), "{}", e[0]);
    }

    #[test]
    fn pool_in_spec_5a_blocks_refused() {
        for (p, what) in [
            ("0.0.0.0/24", "this network"),
            ("224.0.0.0/24", "multicast"),
            ("239.1.0.0/16", "multicast"),
            ("240.0.0.0/24", "reserved"),
            ("255.255.255.255/32", "broadcast"),
        ] {
            let e = refused(&base().replace("192.0.2.0/24", p), "pool[0]", p);
            assert!(e.iter().any(|e| e.problem.contains(what)), "{e:?}");
        }
    }

    #[test]
    fn pool_link_local_allowed() {
        // docs/operator.md §2.6: 169.254.0.0/16 is refused "unless it is the pool".
        let s = accepted(&base().replace("192.0.2.0/24", "169.254.10.0/24"));
        assert_eq!(s.pool[0].to_string(), "169.254.10.0/24");
    }

    #[test]
    fn pool_forbidden_with_wkp_reported_once() {
        let e = errors(
            "prefix = \"64:ff9b::/96\"\npool = [\"127.0.0.0/24\"]\ngateway-v4 = \"192.0.2.1\"\n",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].key, "pool[0]");
    }

    #[test]
    fn pool_larger_than_a_slash_16_refused() {
        let e = refused(
            &base().replace("192.0.2.0/24", "11.0.0.0/8"),
            "pool",
            "11.0.0.0/8",
        );
        assert!(e[0].problem.contains("65536"), "{}", e[0]);
        // The limit is on the sum of the prefixes.
        refused(
            &base().replace("\"192.0.2.0/24\"", "\"198.18.0.0/16\", \"192.0.2.0/24\""),
            "pool",
            "198.18.0.0/16, 192.0.2.0/24",
        );
        accepted(&base().replace("192.0.2.0/24", "198.18.0.0/16"));
    }

    #[test]
    fn inner_pool_in_spec_5a_blocks_refused() {
        for p in ["127.0.0.0/16", "224.0.0.0/16", "0.0.0.0/16", "240.0.0.0/16"] {
            refused(
                &(kernel_base() + &format!("inner-pool = \"{p}\"\n")),
                "inner-pool",
                p,
            );
        }
        accepted(&(kernel_base() + "inner-pool = \"169.254.0.0/16\"\n"));
    }

    #[test]
    fn inner_pool_larger_than_a_slash_8_refused() {
        let e = refused(
            &(kernel_base() + "inner-pool = \"10.0.0.0/7\"\n"),
            "inner-pool",
            "10.0.0.0/7",
        );
        assert!(e[0].problem.contains("/8"), "{}", e[0]);
        accepted(&(kernel_base() + "inner-pool = \"10.0.0.0/8\"\n"));
    }

    #[test]
    fn gateway_v4_not_unicast_refused() {
        for g in [
            "255.255.255.255",
            "224.0.0.1",
            "127.0.0.1",
            "0.0.0.0",
            "240.0.0.1",
        ] {
            refused(&base().replace("198.51.100.1", g), "gateway-v4", g);
        }
    }

    #[test]
    fn gateway_v4_link_local_only_beside_link_local_pool() {
        refused(
            &base().replace("198.51.100.1", "169.254.0.1"),
            "gateway-v4",
            "169.254.0.1",
        );
        accepted(
            &base()
                .replace("192.0.2.0/24", "169.254.10.0/24")
                .replace("198.51.100.1", "169.254.0.1"),
        );
    }

    #[test]
    fn icmp_source_v6_not_unicast_refused() {
        for a in ["ff02::1", "fe80::1", "::1", "::", "::ffff:192.0.2.1"] {
            refused(
                &(base() + &format!("icmp-source-v6 = \"{a}\"\n")),
                "icmp-source-v6",
                a,
            );
        }
        let s = accepted(&(base() + "icmp-source-v6 = \"2001:db8:ffff::1\"\n"));
        assert_eq!(s.icmp_source_v6.to_string(), "2001:db8:ffff::1");
    }

    fn with_static(proto: &str, v6: &str, v4: &str) -> String {
        base() + &format!("[[static]]\nproto = \"{proto}\"\nv6 = \"{v6}\"\nv4 = \"{v4}\"\n")
    }

    #[test]
    fn static_v6_not_unicast_or_in_prefix_refused() {
        for v6 in [
            "[ff02::1]:80",
            "[fe80::1]:80",
            "[::1]:80",
            "[2001:db8:64::c000:201]:80",
        ] {
            refused(&with_static("tcp", v6, "192.0.2.10:80"), "static[0].v6", v6);
        }
    }

    #[test]
    fn static_v4_in_spec_5a_blocks_refused() {
        for v4 in [
            "127.0.0.1:80",
            "224.0.0.1:80",
            "255.255.255.255:80",
            "0.0.0.0:80",
        ] {
            let e = refused(
                &with_static("tcp", "[2001:db8:1::10]:80", v4),
                "static[0].v4",
                v4,
            );
            assert_eq!(e.len(), 1, "{e:?}");
        }
    }

    #[test]
    fn static_port_zero_refused() {
        refused(
            &with_static("tcp", "[2001:db8:1::10]:0", "192.0.2.10:80"),
            "static[0].v6",
            "[2001:db8:1::10]:0",
        );
        refused(
            &with_static("udp", "[2001:db8:1::10]:53", "192.0.2.10:0"),
            "static[0].v4",
            "192.0.2.10:0",
        );
        // ICMP "ports" are echo identifiers: 0 is one.
        accepted(&with_static("icmp", "[2001:db8:1::10]:0", "192.0.2.10:0"));
    }

    #[test]
    fn static_v6_endpoint_twice_refused() {
        // nat64-core refuses this at start ("already maps to").
        let text = with_static("tcp", "[2001:db8:1::10]:80", "192.0.2.10:80")
            + "[[static]]\nproto = \"tcp\"\nv6 = \"[2001:db8:1::10]:80\"\nv4 = \"192.0.2.11:80\"\n";
        let e = refused(&text, "static[1].v6", "[2001:db8:1::10]:80");
        assert!(e[0].problem.contains("192.0.2.10:80"), "{}", e[0]);
        // Another protocol is another binding.
        accepted(
            &(with_static("tcp", "[2001:db8:1::10]:80", "192.0.2.10:80")
                + "[[static]]\nproto = \"udp\"\nv6 = \"[2001:db8:1::10]:80\"\nv4 = \"192.0.2.11:80\"\n"),
        );
    }

    fn with_map(v6: &str, v4: &str) -> String {
        kernel_base() + &format!("[[map]]\nv6 = \"{v6}\"\nv4 = \"{v4}\"\n")
    }

    #[test]
    fn map_v6_not_unicast_or_in_prefix_refused() {
        for v6 in ["ff02::1", "fe80::1", "::1", "2001:db8:64::a00:1"] {
            refused(&with_map(v6, "100.64.255.10"), "map[0].v6", v6);
        }
    }

    #[test]
    fn map_v4_in_spec_5a_blocks_refused() {
        for v4 in [
            "127.0.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "0.0.0.1",
            "169.254.0.1",
        ] {
            refused(&with_map("2001:db8:1::10", v4), "map[0].v4", v4);
        }
        // Outside the inner pool is fine (routed as a /32).
        accepted(&with_map("2001:db8:1::10", "198.51.100.10"));
    }

    #[test]
    fn map_v4_is_gateway_refused() {
        refused(
            &with_map("2001:db8:1::10", "100.65.0.1"),
            "map[0].v4",
            "100.65.0.1",
        );
    }

    #[test]
    fn reap_interval_above_an_hour_refused() {
        let e = refused(
            &(base() + "reap-interval-secs = 3601\n"),
            "reap-interval-secs",
            "3601",
        );
        assert!(e[0].problem.contains("3600"), "{}", e[0]);
        accepted(&(base() + "reap-interval-secs = 3600\n"));
    }

    #[test]
    fn timeouts_bounded() {
        let week = 7 * 86_400;
        for k in ["udp", "tcp-established", "tcp-transitory", "icmp"] {
            refused(
                &(base() + &format!("[timeouts]\n{k} = {}\n", week + 1)),
                &format!("timeouts.{k}"),
                &(week + 1).to_string(),
            );
            accepted(&(base() + &format!("[timeouts]\n{k} = {week}\n")));
        }
        refused(
            &(base() + "[timeouts]\nfragment = 61\n"),
            "timeouts.fragment",
            "61",
        );
        accepted(&(base() + "[timeouts]\nfragment = 60\n"));
    }

    #[test]
    fn icmp_rate_limit_bounded() {
        refused(
            &(base() + "[icmp-rate-limit]\nrate = 100001\n"),
            "icmp-rate-limit.rate",
            "100001",
        );
        refused(
            &(base() + "[icmp-rate-limit]\nburst = 4000000000\n"),
            "icmp-rate-limit.burst",
            "4000000000",
        );
        // rate 0 sends none: the burst does not matter then.
        accepted(&(base() + "[icmp-rate-limit]\nrate = 0\nburst = 0\n"));
    }

    #[test]
    fn limits_bounded() {
        refused(
            &(base() + "[limits]\nmax-sessions = 100000001\n"),
            "limits.max-sessions",
            "100000001",
        );
        refused(
            &(base() + "[limits]\nmax-sessions-per-client = 4294967295\n"),
            "limits.max-sessions-per-client",
            "4294967295",
        );
        for len in [0, 16, 129] {
            refused(
                &(base() + &format!("[limits]\nclient-prefix-len = {len}\n")),
                "limits.client-prefix-len",
                &len.to_string(),
            );
        }
        for (k, v) in [
            ("site-prefix-len", "16"),
            ("max-sessions-per-site", "0"),
            ("max-leases-per-site", "0"),
            ("max-leases-per-site", "16777217"),
        ] {
            refused(
                &(base() + &format!("[limits]\n{k} = {v}\n")),
                &format!("limits.{k}"),
                v,
            );
        }
        let s = accepted(&(base() + "[limits]\nmax-sessions = 1000\nclient-prefix-len = 32\n"));
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("max-sessions-per-client = 10000")),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn mtus_bounded() {
        refused(&(base() + "ipv6-mtu = 1279\n"), "ipv6-mtu", "1279");
        refused(&(base() + "ipv4-mtu = 67\n"), "ipv4-mtu", "67");
        refused(&(base() + "[tun]\nmtu = 1279\n"), "tun.mtu", "1279");
        accepted(&(base() + "ipv6-mtu = 65535\nipv4-mtu = 68\n[tun]\nmtu = 65535\n"));
    }

    #[test]
    fn number_too_large_for_its_key_names_the_key_and_range() {
        for (text, key, range) in [
            ("[tun]\nmtu = 70000\n", "tun.mtu", "1280 to 65535"),
            ("ipv6-mtu = 65536\n", "ipv6-mtu", "1280 to 65535"),
            ("[tun]\nqueues = -1\n", "tun.queues", "0 to 256"),
            ("[timeouts]  # s\nudp = -5\n", "timeouts.udp", "1 to 604800"),
        ] {
            let e = errors(&(base() + text));
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(e[0].key.contains(&format!("`{key}`")), "{}", e[0]);
            assert!(e[0].fix.contains(range), "{}", e[0]);
        }
    }

    #[test]
    fn tun_queues_above_256_refused() {
        refused(&(base() + "[tun]\nqueues = 257\n"), "tun.queues", "257");
        accepted(&(base() + "[tun]\nqueues = 256\n"));
    }

    #[test]
    fn tun_txqueuelen_above_kernel_limit_refused() {
        for bad in [524_289u64, 4_294_967_295] {
            let e = refused(
                &(base() + &format!("[tun]\ntxqueuelen = {bad}\n")),
                "tun.txqueuelen",
                &bad.to_string(),
            );
            assert!(e[0].problem.contains("524288"), "{}", e[0]);
        }
        accepted(&(base() + "[tun]\ntxqueuelen = 524288\n"));
    }

    #[test]
    fn tun_name_follows_dev_valid_name() {
        for bad in [
            "a b",
            "..",
            ".",
            "a/b",
            "a:b",
            "a\\tb",
            "",
            "sixteen-bytes-xx",
            "tun%d",
        ] {
            let e = refused(
                &(base() + &format!("[tun]\nname = \"{bad}\"\n")),
                "tun.name",
                "",
            );
            assert_eq!(e.len(), 1, "{bad:?}: {e:?}");
        }
        let s = accepted(&(base() + "[tun]\nname = \"fifteen-bytes-x\"\n"));
        assert_eq!(s.tun.name.len(), 15);
    }

    #[test]
    fn tun_name_of_another_kind_of_interface_refused() {
        // Every network namespace has `lo`, and it is not a TUN.
        let e = refused(&(base() + "[tun]\nname = \"lo\"\n"), "tun.name", "lo");
        assert!(e[0].problem.contains("not a TUN"), "{}", e[0]);
    }

    #[test]
    fn tun_attach_to_missing_interface_warns() {
        let s = accepted(&(base() + "[tun]\nname = \"nx64none\"\nmode = \"attach\"\n"));
        assert!(
            s.warnings.iter().any(|w| w.contains("nx64none")),
            "{:?}",
            s.warnings
        );
    }

    #[test]
    fn state_file_directory_refused() {
        let d = scratch("sfdir");
        let p = d.display().to_string();
        let e = refused(
            &(kernel_base() + &format!("state-file = \"{p}\"\n")),
            "state-file",
            &p,
        );
        assert!(e[0].problem.contains("is a directory"), "{}", e[0]);
        assert!(e[0].fix.contains(&format!("{p}/leases")), "{}", e[0]);
    }

    #[test]
    fn state_file_parent_that_cannot_be_created_refused() {
        let d = scratch("sfblock");
        std::fs::write(d.join("file"), "").unwrap();
        let p = d.join("file/sub/leases").display().to_string();
        let e = refused(
            &(kernel_base() + &format!("state-file = \"{p}\"\n")),
            "state-file",
            &p,
        );
        assert!(
            e[0].problem
                .contains("does not exist and cannot be created")
                && e[0].problem.contains("is a file"),
            "{}",
            e[0]
        );
        // A missing directory that can be made is fine (run makes it).
        let ok = d.join("new/sub/leases").display().to_string();
        accepted(&(kernel_base() + &format!("state-file = \"{ok}\"\n")));
    }

    #[test]
    fn state_file_form_and_mode() {
        refused(
            &(kernel_base() + "state-file = \"leases\"\n"),
            "state-file",
            "leases",
        );
        refused(
            &(base() + "state-file = \"/var/lib/nat64/leases\"\n"),
            "state-file",
            "/var/lib/nat64/leases",
        );
        // "" keeps no leases (turns off a profile's state-file).
        let s = accepted(&(kernel_base() + "state-file = \"\"\n"));
        assert_eq!(s.state_file, None);
    }

    #[test]
    fn mapping_log_directory_refused() {
        let d = scratch("mldir");
        let p = d.display().to_string();
        refused(
            &(base() + &format!("mapping-log = \"{p}\"\n")),
            "mapping-log",
            &p,
        );
    }

    #[test]
    fn control_path_not_a_socket_or_too_long_refused() {
        let d = scratch("ctl");
        let f = d.join("plain");
        std::fs::write(&f, "").unwrap();
        let p = f.display().to_string();
        let e = refused(&(base() + &format!("control = \"{p}\"\n")), "control", &p);
        assert!(e[0].problem.contains("not a socket"), "{}", e[0]);
        let long = format!("/run/{}/c.sock", "x".repeat(110));
        let e = refused(
            &(base() + &format!("control = \"{long}\"\n")),
            "control",
            &long,
        );
        assert!(e[0].problem.contains("107"), "{}", e[0]);
    }

    #[test]
    fn file_paths_shared_refused() {
        let text = kernel_base()
            + "control = \"/run/nat64/x\"\nmapping-log = \"/run/nat64/x\"\nstate-file = \"/run/nat64/x\"\n";
        let e = errors(&text);
        assert!(
            e.iter()
                .any(|e| e.key == "mapping-log" && e.problem.contains("`control`")),
            "{e:?}"
        );
        assert!(e.iter().any(|e| e.key == "state-file"), "{e:?}");
    }

    #[test]
    fn metrics_port_zero_refused() {
        refused(
            &(base() + "metrics = \"127.0.0.1:0\"\n"),
            "metrics",
            "127.0.0.1:0",
        );
    }

    #[test]
    fn port_block_size_must_fit_the_ranges() {
        let e = refused(
            &(base() + "[ports]\nudp = \"2000-2003\"\nblock-size = 64\n"),
            "ports.block-size",
            "64",
        );
        assert!(e[0].problem.contains("ports.udp"), "{}", e[0]);
        accepted(&(base() + "[ports]\nblock-size = 32768\n"));
        refused(
            &(kernel_base() + "[ports]\nblock-size = 64\n"),
            "ports.block-size",
            "64",
        );
    }

    #[test]
    fn every_problem_reported_at_once() {
        let text =
            "prefix = \"ff0e::/96\"\npool = [\"127.0.0.0/24\"]\ngateway-v4 = \"255.255.255.255\"\n\
                    reap-interval-secs = 86400\nicmp-source-v6 = \"fe80::1\"\n\
                    [tun]\nname = \"..\"\ntxqueuelen = 4294967295\n[timeouts]\nfragment = 3600\n";
        let keys: Vec<String> = errors(text).into_iter().map(|e| e.key).collect();
        for k in [
            "prefix",
            "pool[0]",
            "gateway-v4",
            "reap-interval-secs",
            "icmp-source-v6",
            "tun.name",
            "tun.txqueuelen",
            "timeouts.fragment",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
        }
    }

    fn siit_base() -> String {
        "prefix = \"2001:db8:64::/96\"\nnapt = \"none\"\ngateway-v4 = \"192.0.2.1\"\n".to_string()
    }

    #[test]
    fn gateway_inside_the_pool_is_accepted_unless_it_is_all_of_it() {
        let s = accepted(
            "prefix = \"2001:db8:64::/96\"\npool = [\"192.0.2.0/24\"]\ngateway-v4 = \"192.0.2.1\"\n",
        );
        assert_eq!(s.gateway_v4, Ipv4Addr::new(192, 0, 2, 1));
        accepted(&format!(
            "{}inner-pool = \"100.64.0.0/16\"\ngateway-v4 = \"100.64.0.1\"\n",
            "prefix = \"2001:db8:64::/96\"\nnapt = \"kernel\"\n"
        ));
        refused(
            "prefix = \"2001:db8:64::/96\"\npool = [\"192.0.2.1/32\"]\ngateway-v4 = \"192.0.2.1\"\n",
            "gateway-v4",
            "only address of pool",
        );
    }

    #[test]
    fn siit_maps_are_explicit_address_mappings() {
        let s = accepted(&format!(
            "{}[[map]]\nv4 = \"203.0.113.0/24\"\nv6 = \"2001:db8:1::100/120\"\n\
             [[map]]\nv4 = \"198.51.0.0/16\"\nv6 = \"2001:db8:2::/112\"\n",
            siit_base()
        ));
        assert_eq!(s.napt, NaptMode::None);
        assert_eq!(s.eam.len(), 2);
        assert!(s.maps.is_empty());
        assert_eq!(s.rfc6791, vec![Ipv4Addr::new(192, 0, 2, 1)]);
        assert_eq!(
            s.eam.v4_to_v6(Ipv4Addr::new(198, 51, 255, 254)),
            Some("2001:db8:2::fffe".parse().unwrap())
        );
        refused(
            &format!(
                "{}[[map]]\nv4 = \"203.0.113.0/24\"\nv6 = \"2001:db8:1::/124\"\n",
                siit_base()
            ),
            "map[0]",
            "IPv4 suffix may not be longer",
        );
        refused(
            &format!(
                "{}[[map]]\nv4 = \"203.0.113.7\"\nv6 = \"2001:db8:1::7\"\n\
                 [[map]]\nv4 = \"203.0.113.7\"\nv6 = \"2001:db8:1::8\"\n",
                siit_base()
            ),
            "map[1]",
            "same prefix as map[0]",
        );
        refused(
            &format!(
                "{}[[map]]\nv4 = \"192.0.2.0/24\"\nv6 = \"2001:db8:1::/120\"\n",
                siit_base()
            ),
            "map[0]",
            "covers gateway-v4",
        );
        refused(
            &format!(
                "{}[[map]]\nv4 = \"127.0.0.0/24\"\nv6 = \"2001:db8:1::/120\"\n",
                siit_base()
            ),
            "map[0]",
            "127.0.0.0/8",
        );
    }

    #[test]
    fn siit_map_file_merges_and_names_what_it_leaves_out() {
        let d = scratch("mapfile");
        let mf = d.join("eam.map");
        std::fs::write(
            &mf,
            "203.0.113.7 2001:db8:1::70\nbogus line\nmap 198.51.100.9 2001:db8:9::9\n",
        )
        .unwrap();
        let s = accepted(&format!(
            "{}map-file = \"{}\"\nrfc6791-pool = [\"203.0.113.250/31\"]\n\
             [[map]]\nv4 = \"203.0.113.7\"\nv6 = \"2001:db8:1::7\"\n",
            siit_base(),
            mf.display()
        ));
        assert_eq!(s.eam.len(), 2);
        assert_eq!(
            s.eam.v4_to_v6(Ipv4Addr::new(203, 0, 113, 7)),
            Some("2001:db8:1::7".parse().unwrap()),
            "the config file's entry wins"
        );
        assert_eq!(s.rfc6791.len(), 2);
        let w = s.warnings.join("\n");
        assert!(
            w.contains("line 1") && w.contains("config file wins"),
            "{w}"
        );
        assert!(w.contains("line 2 skipped"), "{w}");
        refused(
            &format!(
                "{}map-file = \"{}\"\n",
                siit_base(),
                d.join("missing").display()
            ),
            "map-file",
            "cannot be read",
        );
        refused(
            &format!("{}map-file = \"{}\"\n", base(), mf.display()),
            "map-file",
            "only applies to napt",
        );
    }
}
