//! `nat64 import-tayga`: a Tayga configuration (`tayga.conf(5)`) → an
//! equivalent `nat64.toml` (migration; ADR 0009).
//!
//! Tayga is a *stateless* translator (SIIT): `map` ranges are explicit
//! address mappings, `prefix` the RFC 6052 prefix, `dynamic-pool` hands
//! each other IPv6 host a 1:1 IPv4 address. That is nat64's
//! `napt = "none"` mode, the default target (`--napt none`):
//!
//! | tayga.conf            | nat64.toml (`napt = "none"`)                   |
//! |-----------------------|------------------------------------------------|
//! | `tun-device N`        | `[tun] name = N`                               |
//! | `ipv4-addr A`         | `gateway-v4 = A` (the translator's own address)|
//! | `ipv6-addr A`         | `icmp-source-v6 = A` (its own IPv6 address)    |
//! | `prefix P`            | `prefix = P`                                   |
//! | `dynamic-pool P`      | `inner-pool = P` (`ipv4-addr` carved out)      |
//! | `map A4 A6`           | `[[map]] v4 = A4, v6 = A6` (one EAM, any size) |
//! | `map-file F`          | `map-file = F` (same line format; SIGHUP)      |
//! | `wkpf-strict yes/no`  | `wkp-strict = true/false`                      |
//! | `offlink-mtu N`       | `ipv6-mtu = N`                                 |
//! | `udp-cksum-mode M`    | `udp-zero-checksum = drop/forward/calc`        |
//! | `workers N`           | `[tun] queues = N`                             |
//! | `data-dir D`          | `state-file = D/nat64.leases`; `D/dynamic.map` → `--leases` |
//!
//! Many Tayga hosts add the kernel's NAT44 MASQUERADE behind the dynamic
//! pool; `--napt kernel` folds that in (`napt = "kernel"`: inner-pool plus
//! nat64's own masquerade; host maps expanded, at most 256 per range).
//!
//! Directives with no equivalent (`log`, `strict-frag-hdr`, `tun-up`,
//! `tun-ip`, `tun-route`) and every behaviour that differs are reported as
//! warnings. The output is checked with the same parser and validation as
//! `nat64 check` before it is returned.

use crate::config::{parse_v4net, FileConfig, V4Net};
use anyhow::Context as _;
use nat64_core::addr::Prefix;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// Where nat64 keeps kernel-mode leases (the systemd unit's StateDirectory).
pub const DEFAULT_STATE_FILE: &str = "/var/lib/nat64/leases";

/// Largest Tayga subnet `map` expanded into single `[[map]]` entries.
const MAX_MAP_EXPANSION: u32 = 256;

/// The result of a conversion.
#[derive(Debug, Clone)]
pub struct Conversion {
    /// The nat64.toml text (commented, validated).
    pub toml: String,
    /// What did not carry over or changed meaning, one line each.
    pub warnings: Vec<String>,
    /// Dynamic mappings found in Tayga's `data-dir/dynamic.map` that fall in
    /// the new inner pool: (IPv6 client, inner IPv4).
    pub leases: Vec<(Ipv6Addr, Ipv4Addr)>,
    /// Where `leases` came from, if anywhere.
    pub leases_source: Option<PathBuf>,
}

/// A problem that makes the Tayga file unconvertible.
#[derive(Debug)]
struct Problem {
    line: usize,
    what: String,
    fix: String,
}

/// Reads `path` and converts it. `map-file` and `data-dir/dynamic.map` are
/// read from the file system.
pub fn import_file(path: &Path, target: Target) -> anyhow::Result<Conversion> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read Tayga configuration {}; give the path of a tayga.conf",
            path.display()
        )
    })?;
    convert_to(
        &text,
        &path.display().to_string(),
        &|p: &Path| std::fs::read_to_string(p),
        target,
    )
}

#[derive(Default)]
struct Parsed {
    tun_device: Option<(usize, String)>,
    ipv4_addr: Option<(usize, Ipv4Addr)>,
    ipv6_addr: Option<(usize, Ipv6Addr)>,
    prefix: Option<(usize, Prefix)>,
    dynamic_pool: Option<(usize, V4Net)>,
    wkpf_strict: Option<(usize, bool)>,
    data_dir: Option<(usize, String)>,
    map_file: Option<(usize, String)>,
    offlink_mtu: Option<(usize, u32)>,
    udp_cksum: Option<(usize, &'static str)>,
    workers: Option<(usize, u16)>,
    /// Every `map` (directive or map-file line) as written: (line, where,
    /// v4 prefix, v6 prefix).
    maps: Vec<(usize, String, V4Net, Ipv6Addr, u8)>,
    /// How many of `maps` came from the map file.
    file_maps: usize,
}

/// What `import-tayga` converts into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Target {
    /// `napt = "none"`: stateless, as Tayga itself.
    #[default]
    None,
    /// `napt = "kernel"`: Tayga plus the kernel's NAT44 masquerade.
    Kernel,
}

/// Converts the text of a tayga.conf. `source` names it in messages;
/// `read_aux` reads the auxiliary files it refers to (`map-file`,
/// `data-dir/dynamic.map`).
pub fn convert(
    text: &str,
    source: &str,
    read_aux: &dyn Fn(&Path) -> std::io::Result<String>,
) -> anyhow::Result<Conversion> {
    convert_to(text, source, read_aux, Target::None)
}

/// [`convert`] into the given mode.
pub fn convert_to(
    text: &str,
    source: &str,
    read_aux: &dyn Fn(&Path) -> std::io::Result<String>,
    target: Target,
) -> anyhow::Result<Conversion> {
    let mut p = Parsed::default();
    let mut problems: Vec<Problem> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();

    for (i, raw) in text.lines().enumerate() {
        let ln = i + 1;
        let args: Vec<&str> = raw
            .split_whitespace()
            .take_while(|t| !t.starts_with('#'))
            .collect();
        let Some((dir, args)) = args.split_first() else {
            continue;
        };
        let dir = dir.to_ascii_lowercase();
        parse_directive(&mut p, &mut problems, &mut warnings, ln, &dir, args, source);
    }

    // map-file: its `map` lines, relative to data-dir (Tayga's rule).
    if let Some((ln, mf)) = p.map_file.clone() {
        let path = aux_path(&mf, p.data_dir.as_ref().map(|d| d.1.as_str()));
        match read_aux(&path) {
            Ok(t) => {
                let before = p.maps.len();
                let name = path.display().to_string();
                for (i, raw) in t.lines().enumerate() {
                    let args: Vec<&str> = raw
                        .split_whitespace()
                        .take_while(|t| !t.starts_with('#'))
                        .collect();
                    let Some((dir, args)) = args.split_first() else {
                        continue;
                    };
                    if dir.eq_ignore_ascii_case("map") {
                        parse_map(&mut p, &mut problems, &mut warnings, i + 1, args, &name);
                    } else {
                        warnings.push(format!(
                            "{name} line {}: `{dir}` ignored (a map-file holds only `map` lines)",
                            i + 1
                        ));
                    }
                }
                p.file_maps = p.maps.len() - before;
            }
            Err(e) => warnings.push(format!(
                "{source} line {ln}: map-file {}: cannot read it ({e}); its maps are not \
                 converted: add them as [[map]] entries by hand",
                path.display()
            )),
        }
    }

    if p.tun_device.is_none() {
        problems.push(Problem {
            line: 0,
            what: "no tun-device directive (Tayga requires one)".into(),
            fix: "add `tun-device nat64` to the Tayga file, or write [tun] name by hand".into(),
        });
    }
    if p.ipv4_addr.is_none() {
        problems.push(Problem {
            line: 0,
            what: "no ipv4-addr directive (Tayga requires one; it becomes gateway-v4)".into(),
            fix: "add `ipv4-addr A.B.C.D`, the translator's own IPv4 address".into(),
        });
    }
    if p.prefix.is_none() && target == Target::Kernel {
        problems.push(Problem {
            line: 0,
            what: "no prefix directive: a Tayga setup with only `map` lines (SIIT/EAM) has no \
                   stateful NAT64 equivalent"
                .into(),
            fix: "add the NAT64 prefix Tayga should have used (e.g. `prefix 64:ff9b::/96`) \
                  and convert again"
                .into(),
        });
    }
    if !problems.is_empty() {
        let mut msg = format!(
            "cannot convert {source} ({} problem{}):\n",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        );
        for pr in &problems {
            if pr.line > 0 {
                let _ = writeln!(msg, "- line {}: {}\n  fix: {}", pr.line, pr.what, pr.fix);
            } else {
                let _ = writeln!(msg, "- {}\n  fix: {}", pr.what, pr.fix);
            }
        }
        anyhow::bail!(msg.trim_end().to_string());
    }
    match target {
        Target::None => emit_siit(p, source, warnings, read_aux),
        Target::Kernel => emit(p, source, warnings, read_aux),
    }
}

#[allow(clippy::too_many_arguments)]
fn parse_directive(
    p: &mut Parsed,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
    ln: usize,
    dir: &str,
    args: &[&str],
    source: &str,
) {
    let want = match dir {
        "map" => 2,
        "log" | "tun-ip" | "tun-route" => usize::MAX,
        _ => 1,
    };
    if want != usize::MAX && args.len() != want {
        problems.push(Problem {
            line: ln,
            what: format!(
                "`{dir}` takes {want} argument{}, found {}",
                if want == 1 { "" } else { "s" },
                args.len()
            ),
            fix: "correct the line as tayga.conf(5) describes it".into(),
        });
        return;
    }
    let arg = args.first().copied().unwrap_or("");
    let why = |what: String, fix: &str| (what, fix.to_string());
    match dir {
        "tun-device" => set_once(&mut p.tun_device, Ok(arg.to_string()), ln, dir, problems),
        "ipv4-addr" => {
            let v = arg.parse::<Ipv4Addr>().map_err(|_| {
                why(
                    format!("ipv4-addr \"{arg}\" is not an IPv4 address"),
                    "write a plain address such as 192.0.2.1",
                )
            });
            set_once(&mut p.ipv4_addr, v, ln, dir, problems)
        }
        "ipv6-addr" => {
            let v = arg.parse::<Ipv6Addr>().map_err(|_| {
                why(
                    format!("ipv6-addr \"{arg}\" is not an IPv6 address"),
                    "write a plain address such as 2001:db8::1",
                )
            });
            set_once(&mut p.ipv6_addr, v, ln, dir, problems)
        }
        "prefix" => {
            let v = arg.parse::<Prefix>().map_err(|e| {
                why(
                    format!("prefix \"{arg}\": {e}"),
                    "use 64:ff9b::/96 or a Network-Specific Prefix of length /32, /40, /48, \
                     /56, /64 or /96",
                )
            });
            set_once(&mut p.prefix, v, ln, dir, problems)
        }
        "dynamic-pool" => {
            let v = parse_v4net(arg).map_err(|(what, fix)| (format!("dynamic-pool: {what}"), fix));
            set_once(&mut p.dynamic_pool, v, ln, dir, problems)
        }
        // Tayga: anything but "no" means yes.
        "wkpf-strict" => set_once(
            &mut p.wkpf_strict,
            Ok(!arg.eq_ignore_ascii_case("no")),
            ln,
            dir,
            problems,
        ),
        "data-dir" => {
            let v = if arg.starts_with('/') {
                Ok(arg.to_string())
            } else {
                Err(why(
                    format!("data-dir \"{arg}\" is not an absolute path (Tayga refuses it)"),
                    "write an absolute path",
                ))
            };
            set_once(&mut p.data_dir, v, ln, dir, problems)
        }
        "map-file" => set_once(&mut p.map_file, Ok(arg.to_string()), ln, dir, problems),
        "workers" => {
            let v = match arg.parse::<u16>() {
                Ok(n) if (1..=256).contains(&n) => Ok(n),
                _ => Err(why(
                    format!("workers \"{arg}\" is not a number of threads from 1 to 256"),
                    "write e.g. `workers 4`",
                )),
            };
            set_once(&mut p.workers, v, ln, dir, problems)
        }
        "offlink-mtu" => {
            let v = arg.parse::<u32>().map_err(|_| {
                why(
                    format!("offlink-mtu \"{arg}\" is not a number of bytes"),
                    "write e.g. `offlink-mtu 1280`",
                )
            });
            set_once(&mut p.offlink_mtu, v, ln, dir, problems)
        }
        "udp-cksum-mode" => {
            let v = match arg.to_ascii_lowercase().as_str() {
                "drop" => Ok("drop"),
                "fwd" | "forward" => Ok("forward"),
                "calc" => Ok("calc"),
                _ => Err(why(
                    format!("udp-cksum-mode \"{arg}\" is not drop, fwd or calc"),
                    "use drop, fwd or calc",
                )),
            };
            set_once(&mut p.udp_cksum, v, ln, dir, problems)
        }
        "map" => parse_map(p, problems, warnings, ln, args, source),
        "log" => warnings.push(format!(
            "{source} line {ln}: `log {}` has no equivalent: nat64 counts every drop by reason \
             (SIGUSR1 / `nat64 show stats` / metrics) and logs through --log / RUST_LOG",
            args.join(" ")
        )),
        "strict-frag-hdr" => warnings.push(format!(
            "{source} line {ln}: `strict-frag-hdr {arg}` has no equivalent and is ignored: \
             nat64 adds an IPv6 Fragment header only to translated IPv4 fragments (RFC 7915 §4.1)"
        )),
        "tun-up" => warnings.push(format!(
            "{source} line {ln}: `tun-up {arg}` has no direct equivalent: nat64 brings the TUN \
             up itself (tun.mode = \"create\"); to manage the interface yourself use \
             [tun] mode = \"attach\" and manage-routes = false"
        )),
        "tun-ip" => warnings.push(format!(
            "{source} line {ln}: `tun-ip {}` not converted: nat64 needs no address on the TUN \
             (add one yourself if other software expects it)",
            args.join(" ")
        )),
        "tun-route" => warnings.push(format!(
            "{source} line {ln}: `tun-route {}` not converted: with manage-routes = true nat64 \
             routes the prefix, the inner pool and mapped addresses into the TUN; add other \
             routes yourself",
            args.join(" ")
        )),
        other => warnings.push(format!(
            "{source} line {ln}: unknown directive `{other}` ignored (Tayga would refuse it too)"
        )),
    }
}

/// Stores a directive's value, or records why not: its parse error, or a
/// second occurrence (Tayga refuses duplicates too).
fn set_once<T>(
    slot: &mut Option<(usize, T)>,
    parsed: Result<T, (String, String)>,
    ln: usize,
    dir: &str,
    problems: &mut Vec<Problem>,
) {
    match parsed {
        Err((what, fix)) => problems.push(Problem {
            line: ln,
            what,
            fix,
        }),
        Ok(_) if slot.is_some() => problems.push(Problem {
            line: ln,
            what: format!("duplicate `{dir}` directive (Tayga refuses this too)"),
            fix: "keep one".into(),
        }),
        Ok(v) => *slot = Some((ln, v)),
    }
}

fn parse_map(
    p: &mut Parsed,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
    ln: usize,
    args: &[&str],
    source: &str,
) {
    let [a4, a6] = args else {
        problems.push(Problem {
            line: ln,
            what: format!("`map` takes 2 arguments in {source}, found {}", args.len()),
            fix: "write `map IPV4[/LEN] IPV6[/LEN]`".into(),
        });
        return;
    };
    let (s4, l4) = split_len(a4, 32);
    let (s6, l6) = split_len(a6, 128);
    let (Some(l4), Some(l6)) = (l4, l6) else {
        problems.push(Problem {
            line: ln,
            what: format!("map {a4} {a6}: bad prefix length"),
            fix: "use /0-32 for IPv4 and /0-128 for IPv6".into(),
        });
        return;
    };
    let (Ok(v4), Ok(v6)) = (s4.parse::<Ipv4Addr>(), s6.parse::<Ipv6Addr>()) else {
        problems.push(Problem {
            line: ln,
            what: format!("map {a4} {a6}: expected an IPv4 then an IPv6 address"),
            fix: "write `map 192.0.2.10 2001:db8::10`".into(),
        });
        return;
    };
    if 32 - u32::from(l4) != 128 - u32::from(l6) {
        problems.push(Problem {
            line: ln,
            what: format!("map {a4} {a6}: the IPv4 and IPv6 subnets differ in size"),
            fix: "use subnets of the same size (e.g. /24 and /120)".into(),
        });
        return;
    }
    let bits = 32 - u32::from(l4);
    // Tayga masks the host bits of a range; so does the conversion.
    let base4 = u32::from(v4) & if bits == 32 { 0 } else { u32::MAX << bits };
    let base6 = u128::from(v6) & !((1u128 << bits) - 1);
    let _ = warnings;
    p.maps.push((
        ln,
        source.to_string(),
        V4Net {
            addr: Ipv4Addr::from(base4),
            len: l4,
        },
        Ipv6Addr::from(base6),
        l6,
    ));
}

/// `--napt kernel`: `map` ranges as single host entries (kernel mode maps
/// hosts only), at most [`MAX_MAP_EXPANSION`] per range.
fn expand_maps(p: &Parsed, warnings: &mut Vec<String>) -> Vec<(usize, String, Ipv4Addr, Ipv6Addr)> {
    let mut out = Vec::new();
    for (ln, source, n4, v6, _) in &p.maps {
        let bits = 32 - u32::from(n4.len);
        let count = 1u64 << bits;
        if count > u64::from(MAX_MAP_EXPANSION) {
            warnings.push(format!(
                "{source} line {ln}: map {n4} covers {count} addresses; kernel mode has only \
                 single-address [[map]] entries and expands at most {MAX_MAP_EXPANSION}: not \
                 converted (the default --napt none keeps it as one mapping)"
            ));
            continue;
        }
        if count > 1 {
            warnings.push(format!(
                "{source} line {ln}: map {n4} expanded into {count} single [[map]] entries"
            ));
        }
        for i in 0..count {
            // count <= 256, so i fits both widths.
            let o4 = Ipv4Addr::from(u32::from(n4.addr).wrapping_add(i as u32));
            let o6 = Ipv6Addr::from(u128::from(*v6).wrapping_add(u128::from(i)));
            out.push((*ln, source.clone(), o4, o6));
        }
    }
    out
}

fn split_len(s: &str, max: u8) -> (&str, Option<u8>) {
    match s.split_once('/') {
        None => (s, Some(max)),
        Some((a, l)) => (a, l.parse::<u8>().ok().filter(|l| *l <= max)),
    }
}

fn aux_path(p: &str, data_dir: Option<&str>) -> PathBuf {
    match data_dir {
        Some(d) if !p.starts_with('/') => Path::new(d).join(p),
        _ => PathBuf::from(p),
    }
}

fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The biggest half of `pool` not holding `a` (Tayga removes its own
/// address from the pool; nat64 needs gateway-v4 outside inner-pool).
fn half_without(pool: V4Net, a: Ipv4Addr) -> V4Net {
    let len = pool.len + 1;
    let lower = V4Net {
        addr: pool.addr,
        len,
    };
    let upper = V4Net {
        addr: Ipv4Addr::from(u32::from(pool.addr) | (1u32 << (32 - u32::from(len)))),
        len,
    };
    if lower.contains(a) {
        upper
    } else {
        lower
    }
}

/// The first lines of a converted file.
fn header(t: &mut String, source: &str, what: &str) {
    let _ = writeln!(
        t,
        "# nat64.toml converted from {source} by `nat64 import-tayga` (nat64 {}).",
        env!("CARGO_PKG_VERSION")
    );
    t.push_str(what);
    t.push_str("# Validate with `nat64 check --config FILE`.\n\n");
}

/// `ipv4-addr` / `ipv6-addr`: the translator's own addresses.
fn emit_own_addresses(p: &Parsed, t: &mut String, prefix: Option<Prefix>, gw: (usize, Ipv4Addr)) {
    let (gln, gw) = gw;
    let _ = writeln!(t, "# line {gln}: ipv4-addr {gw}");
    let _ = writeln!(t, "gateway-v4 = {}", q(&gw.to_string()));
    if let Some((ln, a6)) = p.ipv6_addr {
        if prefix.is_none_or(|pf| a6 != pf.embed(gw)) {
            let _ = writeln!(t, "# line {ln}: ipv6-addr {a6}");
            let _ = writeln!(t, "icmp-source-v6 = {}", q(&a6.to_string()));
        }
    }
}

/// `wkpf-strict`, `offlink-mtu`, `udp-cksum-mode`: the RFC 7915 knobs,
/// the same in both targets.
fn emit_knobs(p: &Parsed, t: &mut String, warnings: &mut Vec<String>) {
    if let Some((ln, strict)) = p.wkpf_strict {
        let _ = writeln!(
            t,
            "# line {ln}: wkpf-strict {}",
            if strict { "yes" } else { "no" }
        );
        let _ = writeln!(t, "wkp-strict = {strict}");
    }
    if let Some((ln, mtu)) = p.offlink_mtu {
        let m = if mtu < 1280 {
            warnings.push(format!(
                "line {ln}: offlink-mtu {mtu} is below 1280; Tayga raises it to 1280, so does \
                 this conversion"
            ));
            1280
        } else if mtu > 65535 {
            warnings.push(format!(
                "line {ln}: offlink-mtu {mtu} is above 65535; using 65535"
            ));
            65535
        } else {
            mtu
        };
        let _ = writeln!(t, "# line {ln}: offlink-mtu {mtu}");
        let _ = writeln!(t, "ipv6-mtu = {m}");
    }
    match p.udp_cksum {
        Some((ln, m)) => {
            let _ = writeln!(t, "# line {ln}: udp-cksum-mode");
            let _ = writeln!(t, "udp-zero-checksum = {}", q(m));
        }
        None => warnings.push(
            "no udp-cksum-mode: recent Tayga drops IPv4 UDP with a zero checksum by default; \
             nat64 computes the checksum (udp-zero-checksum = \"calc\", RFC 7915 §4.5). Add \
             udp-zero-checksum = \"drop\" for Tayga's behaviour"
                .into(),
        ),
    }
}

/// `data-dir`: Tayga's `dynamic.map` becomes nat64's lease file. Only what
/// `pool` holds carries over: nat64 would skip anything else on restore
/// (found by the `tayga` fuzz target).
fn carry_leases(
    p: &Parsed,
    t: &mut String,
    warnings: &mut Vec<String>,
    pool: Option<V4Net>,
    read_aux: &dyn Fn(&Path) -> std::io::Result<String>,
) -> (Vec<(Ipv6Addr, Ipv4Addr)>, Option<PathBuf>) {
    let Some((ln, dir)) = &p.data_dir else {
        return (Vec::new(), None);
    };
    let _ = writeln!(
        t,
        "# line {ln}: data-dir {dir} (Tayga's dynamic.map -> nat64's lease file)"
    );
    let path = Path::new(dir).join("dynamic.map");
    match read_aux(&path) {
        Ok(text) => {
            let (l, skipped) = parse_dynamic_map(&text, pool);
            if skipped > 0 {
                warnings.push(format!(
                    "{}: {skipped} line(s) skipped (malformed, or outside inner-pool)",
                    path.display()
                ));
            }
            (l, Some(path))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), None),
        Err(e) => {
            warnings.push(format!(
                "{}: cannot read it ({e}); dynamic mappings are not carried over",
                path.display()
            ));
            (Vec::new(), None)
        }
    }
}

/// `[tun]`: `tun-device` and `workers`.
fn emit_tun(p: &Parsed, t: &mut String, tun: (usize, &str)) {
    let _ = writeln!(t, "\n# line {}: tun-device {}", tun.0, tun.1);
    t.push_str("[tun]\n");
    let _ = writeln!(t, "name = {}", q(tun.1));
    if let Some((ln, n)) = p.workers {
        let _ = writeln!(t, "# line {ln}: workers {n} (one TUN queue per worker)");
        let _ = writeln!(t, "queues = {n}");
    }
    t.push_str(
        "# Tayga left the MTU to the administrator (`ip link set ... mtu`); nat64 sets it.\n\
         mtu = 1500\n",
    );
}

/// Checks the text with the same parser and validation as `nat64 check`.
/// `map-file` is left out of the check when `skip_map_file` (the file is
/// read at run time; its lines were checked while converting).
fn finish(
    t: String,
    source: &str,
    mut warnings: Vec<String>,
    leases: (Vec<(Ipv6Addr, Ipv4Addr)>, Option<PathBuf>),
    skip_map_file: bool,
) -> anyhow::Result<Conversion> {
    let name = format!("(converted from {source})");
    let checked: String = if skip_map_file {
        t.lines()
            .filter(|l| !l.starts_with("map-file ="))
            .map(|l| format!("{l}\n"))
            .collect()
    } else {
        t.clone()
    };
    let file = FileConfig::parse(&checked, &name).map_err(anyhow::Error::new)?;
    let settings = file
        .validate(&name)
        .map_err(anyhow::Error::new)
        .context("the converted configuration does not validate; fix the Tayga file or edit the output by hand")?;
    warnings.extend(settings.warnings);
    Ok(Conversion {
        toml: t,
        warnings,
        leases: leases.0,
        leases_source: leases.1,
    })
}

/// `--napt none` (the default): Tayga's own model, stateless SIIT.
fn emit_siit(
    p: Parsed,
    source: &str,
    mut warnings: Vec<String>,
    read_aux: &dyn Fn(&Path) -> std::io::Result<String>,
) -> anyhow::Result<Conversion> {
    let (Some(gw), Some((tln, tun))) = (p.ipv4_addr, p.tun_device.clone()) else {
        anyhow::bail!("{source}: ipv4-addr and tun-device are required");
    };
    let mut t = String::new();
    header(
        &mut t,
        source,
        "# Tayga is a stateless translator (SIIT); so is nat64's napt = \"none\": `map`\n\
         # ranges are explicit address mappings (RFC 7757), the prefix embeds every other\n\
         # IPv4 address (RFC 6052), dynamic-pool leases 1:1 addresses to other IPv6 hosts.\n",
    );
    let prefix = p.prefix.map(|(_, pf)| pf);
    match p.prefix {
        Some((ln, pf)) => {
            let _ = writeln!(t, "# line {ln}: prefix {pf}");
            let _ = writeln!(t, "prefix = {}", q(&pf.to_string()));
        }
        None => {
            warnings.push(
                "no prefix: Tayga translated only `map` and dynamic-pool addresses; nat64 always \
                 has an RFC 6052 prefix, here the Well-Known 64:ff9b::/96, and embeds other IPv4 \
                 addresses in it where Tayga dropped them (route 64:ff9b::/96 nowhere to keep \
                 Tayga's behaviour)"
                    .into(),
            );
            t.push_str("# (no prefix in the Tayga file: the Well-Known Prefix)\nprefix = \"64:ff9b::/96\"\n");
        }
    }
    t.push_str("napt = \"none\"\n");
    emit_own_addresses(&p, &mut t, prefix, gw);
    let inner = p.dynamic_pool.map(|(ln, pool)| {
        let _ = writeln!(t, "# line {ln}: dynamic-pool {pool}");
        if pool.contains(gw.1) {
            let _ = writeln!(
                t,
                "# (ipv4-addr {} lies inside: nat64 takes it out of the pool, as Tayga does)",
                gw.1
            );
        }
        let _ = writeln!(t, "inner-pool = {}", q(&pool.to_string()));
        pool
    });
    emit_knobs(&p, &mut t, &mut warnings);
    let leases = carry_leases(&p, &mut t, &mut warnings, inner, read_aux);
    if let Some((_, dir)) = &p.data_dir {
        if inner.is_some() {
            let file = Path::new(dir).join("nat64.leases");
            let _ = writeln!(t, "state-file = {}", q(&file.to_string_lossy()));
        }
    }
    if let Some((ln, mf)) = &p.map_file {
        let path = aux_path(mf, p.data_dir.as_ref().map(|d| d.1.as_str()));
        let _ = writeln!(
            t,
            "# line {ln}: map-file {mf} (Tayga's `map` lines; re-read on SIGHUP)"
        );
        let _ = writeln!(t, "map-file = {}", q(&path.to_string_lossy()));
    }
    t.push_str(
        "# nat64 routes the prefix, the dynamic pool and its own IPv6 address into the TUN.\n\
         # Routes to the `map` ranges stay yours (keep the `ip route` lines of the Tayga setup).\n\
         manage-routes = true\n",
    );
    if inner.is_some() {
        warnings.push(
            "dynamic-pool: a lease lives while its traffic does, by the RFC 6146 timers (UDP \
             5 min, TCP 2 h 4 min, ICMP 1 min after the last packet); Tayga keeps a dynamic \
             mapping at least 2 hours"
                .into(),
        );
    }
    if p.file_maps > 0 {
        warnings.push(format!(
            "map-file: its {} `map` line(s) stay in the file; nat64 reads it at start and on \
             SIGHUP (Tayga needed a restart), and a later line replaces an earlier one mapping \
             the same prefix where Tayga refused to start",
            p.file_maps
        ));
    }
    emit_tun(&p, &mut t, (tln, &tun));
    for (ln, src, n4, v6, l6) in p.maps.iter().take(p.maps.len() - p.file_maps) {
        let _ = writeln!(t, "\n# {src} line {ln}: map");
        let _ = writeln!(
            t,
            "[[map]]\nv4 = {}\nv6 = {}",
            q(&n4.to_string()),
            q(&format!("{v6}/{l6}"))
        );
    }
    finish(t, source, warnings, leases, true)
}

/// `--napt kernel`: Tayga plus the host's NAT44 masquerade, folded into
/// `napt = "kernel"`.
fn emit(
    p: Parsed,
    source: &str,
    mut warnings: Vec<String>,
    read_aux: &dyn Fn(&Path) -> std::io::Result<String>,
) -> anyhow::Result<Conversion> {
    // Presence was checked by the caller; these are only for the types.
    let (Some((pln, prefix)), Some(gw), Some((tln, tun))) =
        (p.prefix, p.ipv4_addr, p.tun_device.clone())
    else {
        anyhow::bail!("{source}: prefix, ipv4-addr and tun-device are required");
    };
    let mut t = String::new();
    header(
        &mut t,
        source,
        "# Tayga maps every IPv6 host 1:1 to an IPv4 address and leaves the ports to the\n\
         # kernel's NAT44; nat64's equivalent is napt = \"kernel\": 1:1 inner addresses from\n\
         # inner-pool, with the host's nftables MASQUERADE (manage-nft) doing the ports.\n",
    );
    let _ = writeln!(t, "# line {pln}: prefix {prefix}");
    let _ = writeln!(t, "prefix = {}", q(&prefix.to_string()));
    t.push_str("napt = \"kernel\"\n");
    let gwa = gw.1;
    let inner = match p.dynamic_pool {
        Some((ln, pool)) => {
            let _ = writeln!(t, "# line {ln}: dynamic-pool {pool}");
            if pool.contains(gwa) && pool.len < 32 {
                let half = half_without(pool, gwa);
                warnings.push(format!(
                    "ipv4-addr {gwa} lies inside dynamic-pool {pool} (Tayga takes it out of the \
                     pool); nat64 needs gateway-v4 outside inner-pool, so inner-pool is the \
                     half {half}. To keep all of {pool}, set gateway-v4 to an address outside \
                     it and inner-pool = \"{pool}\""
                ));
                let _ = writeln!(
                    t,
                    "# (halved: ipv4-addr {gwa} lies in {pool}, gateway-v4 must be outside)"
                );
                let _ = writeln!(t, "inner-pool = {}", q(&half.to_string()));
                Some(half)
            } else {
                let _ = writeln!(t, "inner-pool = {}", q(&pool.to_string()));
                Some(pool)
            }
        }
        None => {
            warnings.push(format!(
                "no dynamic-pool: Tayga translated only the `map` entries' IPv6 hosts; nat64 \
                 gives every other IPv6 source a 1:1 lease from inner-pool \"{}\" (the default)",
                crate::config::DEFAULT_INNER_POOL
            ));
            None
        }
    };
    emit_own_addresses(&p, &mut t, Some(prefix), gw);
    emit_knobs(&p, &mut t, &mut warnings);
    // The default inner pool when Tayga had no dynamic-pool.
    let pool = inner.or_else(|| parse_v4net(crate::config::DEFAULT_INNER_POOL).ok());
    let leases = carry_leases(&p, &mut t, &mut warnings, pool, read_aux);
    let _ = writeln!(t, "state-file = {}", q(DEFAULT_STATE_FILE));
    t.push_str(
        "# nat64 routes the prefix, the inner pool and mapped addresses into the TUN and\n\
         # installs the MASQUERADE itself: remove the `ip route` and iptables/nft MASQUERADE\n\
         # lines of the Tayga setup (or set both to false and keep yours).\n",
    );
    t.push_str("manage-routes = true\nmanage-nft = true\n");
    emit_tun(&p, &mut t, (tln, &tun));
    for (ln, src, v4, v6) in &expand_maps(&p, &mut warnings) {
        let _ = writeln!(t, "\n# {src} line {ln}: map");
        let _ = writeln!(
            t,
            "[[map]]\nv6 = {}\nv4 = {}",
            q(&v6.to_string()),
            q(&v4.to_string())
        );
    }
    finish(t, source, warnings, leases, false)
}

/// Tayga's `dynamic.map`: `IPV4 IPV6 LAST_USE` per line, `#` comments.
/// Returns the mappings inside `inner` (all if `None`) and how many lines
/// were skipped.
fn parse_dynamic_map(text: &str, inner: Option<V4Net>) -> (Vec<(Ipv6Addr, Ipv4Addr)>, usize) {
    let mut v = Vec::new();
    let mut skipped = 0;
    for line in text.lines() {
        let toks: Vec<&str> = line.split_whitespace().collect();
        match toks.first() {
            None => continue,
            Some(t) if t.starts_with('#') => continue,
            _ => {}
        }
        match (
            toks.first().and_then(|s| s.parse::<Ipv4Addr>().ok()),
            toks.get(1).and_then(|s| s.parse::<Ipv6Addr>().ok()),
        ) {
            (Some(a4), Some(a6)) if inner.is_none_or(|n| n.contains(a4)) => v.push((a6, a4)),
            _ => skipped += 1,
        }
    }
    (v, skipped)
}

/// Writes leases in the format `nat64 run` reads from `state-file`.
pub fn write_leases(path: &Path, leases: &[(Ipv6Addr, Ipv4Addr)]) -> anyhow::Result<()> {
    let mut text = String::from("# nat64 kernel-mode leases: IPv6 client, inner IPv4\n");
    for (a6, a4) in leases {
        let _ = writeln!(text, "{a6} {a4}");
    }
    std::fs::write(path, text).with_context(|| {
        format!(
            "cannot write leases to {}; check the directory exists and is writable",
            path.display()
        )
    })
}

/// `nat64 import-tayga FILE [-o OUT] [--leases FILE] [--napt none|kernel]`.
pub fn cli(
    file: &Path,
    output: Option<&Path>,
    leases: Option<&Path>,
    target: Target,
) -> anyhow::Result<()> {
    let c = import_file(file, target)?;
    for w in &c.warnings {
        eprintln!("nat64: warning: {w}");
    }
    match (leases, &c.leases_source) {
        (Some(out), _) => {
            write_leases(out, &c.leases)?;
            eprintln!(
                "nat64: wrote {} lease(s) to {}{}",
                c.leases.len(),
                out.display(),
                c.leases_source
                    .as_ref()
                    .map(|s| format!(" from {}", s.display()))
                    .unwrap_or_default()
            );
        }
        (None, Some(src)) if !c.leases.is_empty() => eprintln!(
            "nat64: note: {} dynamic mapping(s) in {}; add --leases {DEFAULT_STATE_FILE} to \
             carry them over",
            c.leases.len(),
            src.display()
        ),
        _ => {}
    }
    match output {
        Some(out) => {
            std::fs::write(out, &c.toml).with_context(|| {
                format!(
                    "cannot write {}; check the directory exists and is writable",
                    out.display()
                )
            })?;
            eprintln!(
                "nat64: wrote {} (valid; check it with `nat64 check --config {}`)",
                out.display(),
                out.display()
            );
        }
        None => print!("{}", c.toml),
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    fn none(_: &Path) -> std::io::Result<String> {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    #[test]
    fn half_without_picks_the_other_half() {
        let pool = parse_v4net("192.168.255.0/24").unwrap();
        let h = half_without(pool, "192.168.255.1".parse().unwrap());
        assert_eq!(h.to_string(), "192.168.255.128/25");
        let h = half_without(pool, "192.168.255.200".parse().unwrap());
        assert_eq!(h.to_string(), "192.168.255.0/25");
    }

    #[test]
    fn subnet_map_is_expanded_for_kernel_mode() {
        let c = convert_to(
            "tun-device nat64\nipv4-addr 100.65.0.1\nprefix 2001:db8:64::/96\n\
             map 192.0.2.0/30 2001:db8:1::/126\n",
            "t.conf",
            &none,
            Target::Kernel,
        )
        .unwrap();
        assert_eq!(c.toml.matches("[[map]]").count(), 4, "{}", c.toml);
        assert!(c.toml.contains("v4 = \"192.0.2.3\""));
        assert!(c.toml.contains("v6 = \"2001:db8:1::3\""));
    }

    #[test]
    fn subnet_map_is_one_eam_in_siit_mode() {
        let c = convert(
            "tun-device nat64\nipv4-addr 192.0.2.1\nprefix 2001:db8:64::/96\n\
             map 198.51.100.0/24 2001:db8:1::/120\nmap 203.0.0.0/16 2001:db8:2::/112\n",
            "t.conf",
            &none,
        )
        .unwrap();
        assert!(c.toml.contains("napt = \"none\""), "{}", c.toml);
        assert_eq!(c.toml.matches("[[map]]").count(), 2, "{}", c.toml);
        assert!(
            c.toml
                .contains("v4 = \"203.0.0.0/16\"\nv6 = \"2001:db8:2::/112\""),
            "{}",
            c.toml
        );
    }

    #[test]
    fn siit_without_prefix_converts_with_the_difference_named() {
        let c = convert(
            "tun-device nat64\nipv4-addr 192.0.2.1\nmap 198.51.100.7 2001:db8:1::7\n",
            "t.conf",
            &none,
        )
        .unwrap();
        assert!(c.toml.contains("prefix = \"64:ff9b::/96\""), "{}", c.toml);
        assert!(
            c.warnings.iter().any(|w| w.contains("no prefix")),
            "{:?}",
            c.warnings
        );
    }

    #[test]
    fn missing_mandatory_directives_are_named() {
        let e = convert("prefix 64:ff9b::/96\n", "t.conf", &none).unwrap_err();
        let s = format!("{e:#}");
        assert!(s.contains("tun-device"), "{s}");
        assert!(s.contains("ipv4-addr"), "{s}");
    }

    #[test]
    fn dynamic_map_parses() {
        let (v, skipped) = parse_dynamic_map(
            "###\n# x\n\n192.168.255.130\t2001:db8::5\t1700000000\nbad line\n10.0.0.1 2001:db8::6 1\n",
            parse_v4net("192.168.255.128/25").ok(),
        );
        assert_eq!(v.len(), 1);
        assert_eq!(skipped, 2);
    }
}
