//! `nat64.toml`: the daemon's configuration (SPEC §6).
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

/// `kernel` mode's default inner pool (a slice of 100.64.0.0/10).
pub const DEFAULT_INNER_POOL: &str = "100.64.0.0/16";

/// Default metrics listen address (SPEC §6: loopback only by default).
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
    /// `daemon` (NAPT in the daemon) or `kernel` (1:1 + host MASQUERADE).
    pub napt: NaptMode,
    /// `kernel` mode: the inner IPv4 range clients are mapped 1:1 into.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inner_pool: Option<String>,
    /// RFC 6052 §3.1 enforcement for the Well-Known Prefix.
    pub wkp_strict: bool,
    pub tun: TunSection,
    pub reap_interval_secs: u64,
    pub timeouts: TimeoutsSection,
    pub ports: PortsSection,
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
    /// `kernel` mode: where dynamic 1:1 leases are persisted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_file: Option<String>,
    #[serde(rename = "static", skip_serializing_if = "Vec::is_empty")]
    pub static_bib: Vec<StaticEntry>,
    #[serde(rename = "map", skip_serializing_if = "Vec::is_empty")]
    pub maps: Vec<MapEntry>,
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
            metrics: DEFAULT_METRICS.into(),
            control: DEFAULT_CONTROL.into(),
            log_format: LogFormat::Human,
            mapping_log: String::new(),
            manage_routes: None,
            manage_nft: true,
            manage_forwarding: false,
            state_file: None,
            static_bib: Vec::new(),
            maps: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NaptMode {
    Daemon,
    Kernel,
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
}

impl Default for PortsSection {
    fn default() -> Self {
        PortsSection {
            tcp: "1024-65535".into(),
            udp: "1024-65535".into(),
            icmp: "1024-65535".into(),
            block_size: None,
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
}

impl Default for LimitsSection {
    fn default() -> Self {
        LimitsSection {
            max_sessions: 1_000_000,
            max_sessions_per_client: 10_000,
            client_prefix_len: 128,
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

/// A static 1:1 map (`kernel` mode), like Tayga's `map`.
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

/// A validated static BIB entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticBib {
    pub proto: L4Proto,
    pub v6: SocketAddrV6,
    pub v4: SocketAddrV4,
}

/// Validated configuration the daemon runs on.
#[derive(Debug, Clone)]
pub struct Settings {
    pub prefix: Prefix,
    pub pool: Vec<V4Net>,
    pub gateway_v4: Ipv4Addr,
    pub napt: NaptMode,
    pub inner_pool: Option<V4Net>,
    pub wkp_strict: bool,
    pub tun: TunSection,
    pub reap_interval: Duration,
    pub timeouts: TimeoutsSection,
    pub tcp_ports: (u16, u16),
    pub udp_ports: (u16, u16),
    pub icmp_ids: (u16, u16),
    pub port_block_size: Option<u16>,
    pub limits: LimitsSection,
    pub ipv6_mtu: u16,
    pub ipv4_mtu: Option<u16>,
    pub udp_zero_checksum: UdpZeroChecksum,
    pub filtering: FilteringMode,
    /// Source of translator-originated ICMPv6 errors.
    pub icmp_source_v6: Ipv6Addr,
    pub icmp_rate: u32,
    pub icmp_burst: u32,
    pub metrics: Option<SocketAddr>,
    pub control: Option<PathBuf>,
    pub log_format: LogFormat,
    pub mapping_log: Option<PathBuf>,
    pub manage_routes: Option<bool>,
    pub manage_nft: bool,
    pub manage_forwarding: bool,
    pub state_file: Option<PathBuf>,
    pub static_bib: Vec<StaticBib>,
    pub maps: Vec<(Ipv6Addr, Ipv4Addr)>,
    /// Non-fatal remarks (printed at startup and by `check`).
    pub warnings: Vec<String>,
}

impl FileConfig {
    /// Parses TOML text. `source` names the file in messages.
    pub fn parse(text: &str, source: &str) -> Result<FileConfig, ConfigErrors> {
        toml::from_str::<FileConfig>(text).map_err(|e| {
            let span = e.span();
            let (line, col) = span.map(|s| line_col(text, s.start)).unwrap_or((0, 0));
            let msg = e.message().to_string();
            let key = if line > 0 {
                format!("line {line}, column {col}")
            } else {
                "file".to_string()
            };
            let fix = if msg.contains("unknown field") {
                "remove or rename the key (keys are kebab-case; `nat64 check --config FILE` on a \
                 valid file prints every key with its effective value)"
            } else if msg.contains("unknown variant") {
                "use one of the values listed above"
            } else {
                "correct the TOML at that position"
            };
            ConfigErrors {
                source: source.to_string(),
                errors: vec![ConfigError {
                    key,
                    value: String::new(),
                    problem: msg,
                    fix: fix.into(),
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
        if eff.ipv4_mtu.is_none() && eff.tun.mode == TunMode::Create {
            eff.ipv4_mtu = Some(eff.tun.mtu);
        }
        toml::to_string(&eff).context("serialising the effective configuration")
    }

    /// Checks every rule and builds [`Settings`]. All problems are reported
    /// at once.
    pub fn validate(&self, source: &str) -> Result<Settings, ConfigErrors> {
        let mut errs = Vec::new();
        let mut warnings = Vec::new();

        let prefix = match self.prefix.parse::<Prefix>() {
            Ok(p) => Some(p),
            Err(e) => {
                errs.push(err(
                    "prefix",
                    &self.prefix,
                    e.to_string(),
                    "use the Well-Known Prefix \"64:ff9b::/96\" or a Network-Specific Prefix of \
                     length /32, /40, /48, /56, /64 or /96 from your own space",
                ));
                None
            }
        };

        let mut pool = Vec::new();
        for (i, p) in self.pool.iter().enumerate() {
            match parse_v4net(p) {
                Ok(n) => pool.push(n),
                Err((problem, fix)) => errs.push(err(format!("pool[{i}]"), p, problem, fix)),
            }
        }
        for i in 0..pool.len() {
            for j in i + 1..pool.len() {
                if pool[i].overlaps(&pool[j]) {
                    errs.push(err(
                        format!("pool[{j}]"),
                        pool[j],
                        format!("overlaps pool[{i}] = \"{}\"", pool[i]),
                        "list each IPv4 range once",
                    ));
                }
            }
        }

        let inner_pool = match &self.inner_pool {
            None => None,
            Some(s) => match parse_v4net(s) {
                Ok(n) => Some(n),
                Err((problem, fix)) => {
                    errs.push(err("inner-pool", s, problem, fix));
                    None
                }
            },
        };

        match self.napt {
            NaptMode::Daemon => {
                if self.pool.is_empty() {
                    errs.push(err(
                        "pool",
                        "",
                        "is missing or empty, and napt = \"daemon\" needs IPv4 addresses to \
                         translate to",
                        "add e.g. pool = [\"192.0.2.0/28\"] (addresses routed to this host), or \
                         set napt = \"kernel\" to let the host masquerade",
                    ));
                }
                if self.inner_pool.is_some() {
                    errs.push(err(
                        "inner-pool",
                        self.inner_pool.as_deref().unwrap_or(""),
                        "only applies to napt = \"kernel\"",
                        "remove inner-pool, or set napt = \"kernel\"",
                    ));
                }
                if !self.maps.is_empty() {
                    errs.push(err(
                        "map",
                        "",
                        "[[map]] 1:1 entries only apply to napt = \"kernel\"",
                        "use [[static]] entries (v4 address:port -> v6 address:port) in daemon \
                         mode, or set napt = \"kernel\"",
                    ));
                }
                if let Some(p) = &prefix {
                    if p.is_well_known() {
                        for n in &pool {
                            if let Some((b, l)) = addr::overlapping_non_global(n.addr, n.len) {
                                if self.wkp_strict {
                                    errs.push(err(
                                        "pool",
                                        n,
                                        format!(
                                            "overlaps the non-global block {b}/{l}, which RFC \
                                             6052 §3.1 forbids behind the Well-Known Prefix {p}"
                                        ),
                                        "use a global IPv4 pool, or a Network-Specific Prefix \
                                         for prefix, or (labs only) wkp-strict = false",
                                    ));
                                } else {
                                    warnings.push(format!(
                                        "pool {n} overlaps non-global {b}/{l} behind the \
                                         Well-Known Prefix; allowed only because wkp-strict = \
                                         false (RFC 6052 §3.1)"
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            NaptMode::Kernel => {
                if !self.pool.is_empty() {
                    errs.push(err(
                        "pool",
                        self.pool.join(", "),
                        "is not used with napt = \"kernel\" (the host's MASQUERADE picks the \
                         IPv4 source)",
                        "remove pool, or set napt = \"daemon\"",
                    ));
                }
                if !self.static_bib.is_empty() {
                    errs.push(err(
                        "static",
                        "",
                        "[[static]] BIB entries need napt = \"daemon\"",
                        "use [[map]] v6 = \"...\", v4 = \"...\" (1:1) in kernel mode",
                    ));
                }
            }
        }
        let inner_pool = if self.napt == NaptMode::Kernel {
            Some(inner_pool.unwrap_or(V4Net {
                addr: Ipv4Addr::new(100, 64, 0, 0),
                len: 16,
            }))
        } else {
            inner_pool
        };
        if let Some(ip) = inner_pool {
            if ip.len > 30 && self.napt == NaptMode::Kernel {
                errs.push(err(
                    "inner-pool",
                    ip,
                    "is too small to map clients into",
                    "use a range of /30 or larger, e.g. \"100.64.0.0/16\"",
                ));
            }
        }
        if self.wkp_strict && prefix.is_some_and(|p| p.is_well_known()) {
            // nothing more: §3.1 is also applied per packet by the core.
        } else if !self.wkp_strict {
            warnings.push(
                "wkp-strict = false: the Well-Known Prefix may carry non-global IPv4 (RFC 6052 \
                 §3.1 lifted; labs and tests only)"
                    .into(),
            );
        }

        let gateway_v4 = match &self.gateway_v4 {
            None => {
                errs.push(err(
                    "gateway-v4",
                    "",
                    "is missing; it is the source of the ICMP errors the translator sends",
                    "add gateway-v4 = \"A.B.C.D\": an IPv4 address of this host, or any \
                     address outside the pool that IPv4 hosts may see as a router",
                ));
                None
            }
            Some(s) => match s.parse::<Ipv4Addr>() {
                Err(_) => {
                    errs.push(err(
                        "gateway-v4",
                        s,
                        "is not an IPv4 address",
                        "write a plain address such as \"192.0.2.1\" (no /len)",
                    ));
                    None
                }
                Ok(a) => {
                    if let Some(n) = pool.iter().find(|n| n.contains(a)) {
                        errs.push(err(
                            "gateway-v4",
                            s,
                            format!("lies inside pool {n}, so it could be handed to a client"),
                            "pick an address outside the pool (e.g. the host's IPv4 address)",
                        ));
                    }
                    if let Some(n) = inner_pool.filter(|n| n.contains(a)) {
                        errs.push(err(
                            "gateway-v4",
                            s,
                            format!("lies inside inner-pool {n}"),
                            "pick an address outside the inner pool",
                        ));
                    }
                    Some(a)
                }
            },
        };

        // Tun
        if self.tun.name.is_empty() || self.tun.name.len() > 15 || self.tun.name.contains('/') {
            errs.push(err(
                "tun.name",
                &self.tun.name,
                "is not a valid interface name (1-15 characters, no '/')",
                "use a short name such as \"nat64\"",
            ));
        }
        if self.tun.mtu < 1280 {
            errs.push(err(
                "tun.mtu",
                self.tun.mtu,
                "is below 1280, the minimum IPv6 MTU",
                "set tun.mtu between 1280 and 65535 (1500 is common)",
            ));
        }
        if self.tun.queues > 256 {
            errs.push(err(
                "tun.queues",
                self.tun.queues,
                "exceeds Linux's 256 queues per TUN",
                "use 0 (one per CPU) or a number up to 256",
            ));
        }
        if self.tun.txqueuelen == 0 {
            errs.push(err(
                "tun.txqueuelen",
                self.tun.txqueuelen,
                "a TUN with no transmit queue drops every packet the workers do not read at once",
                "use the default 5000, or at least 500",
            ));
        }
        if !(1..=1024).contains(&self.tun.batch) {
            errs.push(err(
                "tun.batch",
                self.tun.batch,
                "must be between 1 and 1024 packets",
                "use the default 32, or 1 for one write(2) per packet",
            ));
        }
        if self.reap_interval_secs == 0 {
            errs.push(err(
                "reap-interval-secs",
                0,
                "must be at least 1",
                "use the default 30, or a small number for tests",
            ));
        }
        let t = &self.timeouts;
        for (k, v) in [
            ("timeouts.udp", t.udp),
            ("timeouts.tcp-established", t.tcp_established),
            ("timeouts.tcp-transitory", t.tcp_transitory),
            ("timeouts.icmp", t.icmp),
            ("timeouts.fragment", t.fragment),
        ] {
            if v == 0 {
                errs.push(err(
                    k,
                    v,
                    "must be at least 1 second",
                    "use the default (see `nat64 check`)",
                ));
            }
        }
        if t.udp > 0 && t.udp < 120 {
            warnings.push(format!(
                "timeouts.udp = {} is below RFC 6146's 120 s minimum",
                t.udp
            ));
        }
        if t.tcp_established > 0 && t.tcp_established < 7440 {
            warnings.push(format!(
                "timeouts.tcp-established = {} is below RFC 6146's 7440 s",
                t.tcp_established
            ));
        }

        let mut range = |key: &str, s: &str| -> (u16, u16) {
            match parse_range(s) {
                Some(r) => r,
                None => {
                    errs.push(err(
                        key,
                        s,
                        "is not a port range LOW-HIGH with 1 <= LOW <= HIGH <= 65535",
                        "write e.g. \"1024-65535\"",
                    ));
                    (1024, 65535)
                }
            }
        };
        let tcp_ports = range("ports.tcp", &self.ports.tcp);
        let udp_ports = range("ports.udp", &self.ports.udp);
        let icmp_ids = range("ports.icmp", &self.ports.icmp);
        if let Some(b) = self.ports.block_size {
            if b == 0 || !b.is_power_of_two() {
                errs.push(err(
                    "ports.block-size",
                    b,
                    "must be a power of two",
                    "use e.g. 64 or 512, or remove it for per-session ports",
                ));
            }
        }

        let l = &self.limits;
        if l.max_sessions == 0 {
            errs.push(err(
                "limits.max-sessions",
                0,
                "must be at least 1",
                "use e.g. 1000000",
            ));
        }
        if l.max_sessions_per_client == 0 {
            errs.push(err(
                "limits.max-sessions-per-client",
                0,
                "must be at least 1",
                "use e.g. 10000",
            ));
        }
        if l.client_prefix_len == 0 || l.client_prefix_len > 128 {
            errs.push(err(
                "limits.client-prefix-len",
                l.client_prefix_len,
                "must be 1..=128",
                "use 128 (one client per address) or 64 (one per subnet, ISP use)",
            ));
        }

        if self.ipv6_mtu < 1280 {
            errs.push(err(
                "ipv6-mtu",
                self.ipv6_mtu,
                "is below 1280, the minimum IPv6 MTU (RFC 8200)",
                "use 1280 (the default) or a larger known path MTU",
            ));
        }
        if let Some(m) = self.ipv4_mtu {
            if m < 68 {
                errs.push(err(
                    "ipv4-mtu",
                    m,
                    "is below 68, the minimum IPv4 MTU",
                    "remove it (the TUN's MTU is used) or set a real MTU",
                ));
            }
        }

        let icmp_source_v6 = match (&self.icmp_source_v6, prefix, gateway_v4) {
            (Some(s), _, _) => match s.parse::<Ipv6Addr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    errs.push(err(
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
        };

        if self.icmp_rate_limit.rate > 0 && self.icmp_rate_limit.burst == 0 {
            errs.push(err(
                "icmp-rate-limit.burst",
                0,
                "must be at least 1 when rate > 0",
                "use e.g. burst = 50",
            ));
        }

        let metrics = if self.metrics.is_empty() {
            None
        } else {
            match self.metrics.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    errs.push(err(
                        "metrics",
                        &self.metrics,
                        "is not a listen address HOST:PORT",
                        format!("use e.g. \"{DEFAULT_METRICS}\", or \"\" to disable"),
                    ));
                    None
                }
            }
        };
        let control = (!self.control.is_empty()).then(|| PathBuf::from(&self.control));
        if control.as_ref().is_some_and(|p| !p.is_absolute()) {
            errs.push(err(
                "control",
                &self.control,
                "is not an absolute path",
                format!("use e.g. \"{DEFAULT_CONTROL}\", or \"\" to disable the control socket"),
            ));
        }
        let mapping_log = (!self.mapping_log.is_empty()).then(|| PathBuf::from(&self.mapping_log));
        if mapping_log
            .as_ref()
            .is_some_and(|p| !p.is_absolute() || self.mapping_log.ends_with('/'))
        {
            errs.push(err(
                "mapping-log",
                &self.mapping_log,
                "is not an absolute file path",
                "use e.g. \"/var/log/nat64/mappings.log\", or \"\" to disable the mapping log",
            ));
        }
        let state_file = self.state_file.as_ref().map(PathBuf::from);

        let mut static_bib = Vec::new();
        for (i, s) in self.static_bib.iter().enumerate() {
            let k = |f: &str| format!("static[{i}].{f}");
            let proto = match s.proto.as_str() {
                "tcp" => Some(L4Proto::Tcp),
                "udp" => Some(L4Proto::Udp),
                "icmp" => Some(L4Proto::Icmp),
                other => {
                    errs.push(err(
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
                    errs.push(err(
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
                    if !pool.is_empty() && !pool.iter().any(|n| n.contains(*a.ip())) {
                        errs.push(err(
                            k("v4"),
                            &s.v4,
                            "is not inside the pool",
                            "use an address from `pool`, so that it is routed to the translator",
                        ));
                    }
                    Some(a)
                }
                Err(_) => {
                    errs.push(err(
                        k("v4"),
                        &s.v4,
                        "is not an IPv4 socket address",
                        "write \"192.0.2.10:80\"",
                    ));
                    None
                }
            };
            if let (Some(v6), Some(p)) = (v6, prefix) {
                if p.contains(v6.ip()) {
                    errs.push(err(
                        k("v6"),
                        &s.v6,
                        format!("lies inside the translation prefix {p}"),
                        "use the address of the IPv6 server, outside the prefix",
                    ));
                }
            }
            if let (Some(proto), Some(v6), Some(v4)) = (proto, v6, v4) {
                if static_bib
                    .iter()
                    .any(|b: &StaticBib| b.proto == proto && b.v4 == v4)
                {
                    errs.push(err(
                        k("v4"),
                        &s.v4,
                        "is used twice for this protocol",
                        "give each entry its own v4 address:port",
                    ));
                }
                static_bib.push(StaticBib { proto, v6, v4 });
            }
        }

        let mut maps = Vec::new();
        for (i, m) in self.maps.iter().enumerate() {
            let v6 = m.v6.parse::<Ipv6Addr>();
            let v4 = m.v4.parse::<Ipv4Addr>();
            match (v6, v4) {
                (Ok(a6), Ok(a4)) => {
                    if prefix.is_some_and(|p| p.contains(&a6)) {
                        errs.push(err(
                            format!("map[{i}].v6"),
                            &m.v6,
                            "lies inside the translation prefix",
                            "map the IPv6 host's own address",
                        ));
                    }
                    if maps.iter().any(|(x6, x4)| *x6 == a6 || *x4 == a4) {
                        errs.push(err(
                            format!("map[{i}]"),
                            format!("{a6} = {a4}"),
                            "repeats an address of an earlier map",
                            "map each address once",
                        ));
                    }
                    maps.push((a6, a4));
                }
                (Err(_), _) => errs.push(err(
                    format!("map[{i}].v6"),
                    &m.v6,
                    "is not an IPv6 address",
                    "write a plain address such as \"2001:db8::10\"",
                )),
                (_, Err(_)) => errs.push(err(
                    format!("map[{i}].v4"),
                    &m.v4,
                    "is not an IPv4 address",
                    "write a plain address such as \"100.64.0.10\"",
                )),
            }
        }

        let udp_zero_checksum = match self.udp_zero_checksum {
            UdpZeroChecksumMode::Calc => UdpZeroChecksum::Calc,
            UdpZeroChecksumMode::Drop => UdpZeroChecksum::Drop,
            UdpZeroChecksumMode::Forward => UdpZeroChecksum::Forward,
        };

        match (prefix, gateway_v4, icmp_source_v6) {
            (Some(prefix), Some(gateway_v4), Some(icmp_source_v6)) if errs.is_empty() => {
                Ok(Settings {
                    prefix,
                    pool,
                    gateway_v4,
                    napt: self.napt,
                    inner_pool,
                    wkp_strict: self.wkp_strict,
                    tun: self.tun.clone(),
                    reap_interval: Duration::from_secs(self.reap_interval_secs),
                    timeouts: self.timeouts.clone(),
                    tcp_ports,
                    udp_ports,
                    icmp_ids,
                    port_block_size: self.ports.block_size,
                    limits: self.limits.clone(),
                    ipv6_mtu: self.ipv6_mtu,
                    ipv4_mtu: self.ipv4_mtu,
                    udp_zero_checksum,
                    filtering: self.filtering,
                    icmp_source_v6,
                    icmp_rate: self.icmp_rate_limit.rate,
                    icmp_burst: self.icmp_rate_limit.burst,
                    metrics,
                    control,
                    log_format: self.log_format,
                    mapping_log,
                    manage_routes: self.manage_routes,
                    manage_nft: self.manage_nft,
                    manage_forwarding: self.manage_forwarding,
                    state_file,
                    static_bib,
                    maps,
                    warnings,
                })
            }
            _ => Err(ConfigErrors {
                source: source.to_string(),
                errors: errs,
            }),
        }
    }
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
}

impl Loaded {
    /// The effective configuration as TOML, each value annotated with where
    /// it came from (`nat64 check`).
    pub fn annotated_toml(&self) -> anyhow::Result<String> {
        let mut notes = std::collections::BTreeMap::new();
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
        match &self.derived {
            Some(d) => format!("{}; {layer}", d.describe()),
            None => layer,
        }
    }
}

/// Reads, merges (`profile`, `--set`), resolves a derived prefix, and
/// validates `--config ARG`.
pub fn load(arg: &str, sets: &[String]) -> anyhow::Result<Loaded> {
    let (source, mut file, layers) = load_layers(arg, sets)?;
    let src = source.to_string();
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
    Ok(Loaded {
        source,
        file,
        settings,
        layers,
        derived,
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
    fn gateway_inside_pool_refused() {
        let e = errors("prefix = \"2001:db8:64::/96\"\npool = [\"192.0.2.0/24\"]\ngateway-v4 = \"192.0.2.1\"\n");
        assert_eq!(e[0].key, "gateway-v4");
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
        for name in ["daemon.toml", "kernel.toml"] {
            let p = format!("{dir}/{name}");
            let text = std::fs::read_to_string(&p).unwrap();
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
}
