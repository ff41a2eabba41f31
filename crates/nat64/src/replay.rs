//! `nat64 replay`: the real translator (the RFC 6146 engine of
//! [`nat64_core::state`] with RFC 7915 [`nat64_core::xlat`], built from a
//! nat64.toml exactly as `nat64 run` builds it) over the packets of a
//! capture, without a TUN: offline debugging of captures (docs/operator.md §6).
//!
//! * Input: pcap or pcapng, link types RAW (101), IPV4 (228), IPV6 (229),
//!   Ethernet (1, with 802.1Q/802.1ad tags), Linux cooked SLL (113) and
//!   SLL2 (276), BSD loopback (0, 108). Each packet is stripped to its IP
//!   packet; IPv4 and IPv6, both directions, are handled in file order.
//! * Clock: the capture's timestamps, as milliseconds since the first
//!   packet. Before each packet the timers due are fired: the reaper sweeps
//!   at every whole second of capture time passed (finer than the daemon's
//!   `reap-interval-secs`, so expiries show at their due second). After the
//!   last packet the clock runs on to `--until SECONDS`.
//! * Output: every packet the translator emits, in emission order, as
//!   LINKTYPE_RAW: translated packets and their fragments (stamped with the
//!   input packet's time), ICMP errors the translator originates
//!   (`prefix || gateway-v4` / `icmp-source-v6` for ICMPv6, `gateway-v4` for
//!   ICMPv4, rate-limited by `icmp-rate-limit` in capture time), and Port
//!   Unreachable answers to held SYNs (stamped with the sweep's time).
//! * Each run starts from empty state (no lease file is read).

use crate::config::{self, Settings};
use crate::dataplane::worker::{self, reassembly_limits, Processor as _};
use crate::engine::Engine;
use anyhow::Context as _;
use nat64_core::time::Timestamp;
use nat64_core::verdict::{DropReason, IcmpError, Verdict};
use nat64_core::xlat::reassemble::{self, Push, Reassembler};
use nat64_core::xlat::{self, HEADROOM, MAX_PACKET};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapReader, PcapWriter};
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgReader};
use pcap_file::{DataLink, Endianness, TsResolution};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufReader, BufWriter, Read};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::Duration;

/// One captured frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Absolute capture time.
    pub ts: Duration,
    pub link: DataLink,
    pub data: Vec<u8>,
}

/// Reads every frame of a pcap or pcapng file.
pub fn read_capture(path: &Path) -> anyhow::Result<Vec<Frame>> {
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("cannot open capture {}", path.display()))?;
    let mut magic = [0u8; 4];
    f.read_exact(&mut magic).with_context(|| {
        format!(
            "{} is too short to be a capture; give a pcap or pcapng file",
            path.display()
        )
    })?;
    drop(f);
    let f = BufReader::new(
        std::fs::File::open(path)
            .with_context(|| format!("cannot open capture {}", path.display()))?,
    );
    let bad = |e: pcap_file::PcapError, i: usize| {
        anyhow::anyhow!(
            "{}: record {} is not readable ({e}); the file may be truncated — cut it with \
             `editcap -r IN OUT 1-{}` to keep the readable part",
            path.display(),
            i + 1,
            i.max(1)
        )
    };
    let mut frames = Vec::new();
    if magic == [0x0a, 0x0d, 0x0d, 0x0a] {
        let mut r = PcapNgReader::new(f)
            .map_err(|e| anyhow::anyhow!("{}: not a pcapng file: {e}", path.display()))?;
        let mut last = Duration::ZERO;
        while let Some(b) = r.next_block() {
            let b = b.map_err(|e| bad(e, frames.len()))?.into_owned();
            match b {
                Block::EnhancedPacket(p) => {
                    let (link, res) = match r.packet_interface(&p) {
                        Some(idb) => (idb.linktype, tsresol(&idb.options)),
                        None => anyhow::bail!(
                            "{}: packet {} names interface {} which has no description block",
                            path.display(),
                            frames.len() + 1,
                            p.interface_id
                        ),
                    };
                    // pcap-file reads the raw count as nanoseconds; rescale
                    // by the interface's if_tsresol.
                    let units = p.timestamp.as_nanos();
                    let ts = Duration::from_nanos(
                        u64::try_from(units.saturating_mul(1_000_000_000) / res).unwrap_or(0),
                    );
                    last = ts;
                    frames.push(Frame {
                        ts,
                        link,
                        data: p.data.into_owned(),
                    });
                }
                Block::SimplePacket(p) => {
                    let link = r
                        .interfaces()
                        .first()
                        .map(|i| i.linktype)
                        .unwrap_or(DataLink::RAW);
                    frames.push(Frame {
                        ts: last,
                        link,
                        data: p.data.into_owned(),
                    });
                }
                _ => {}
            }
        }
    } else {
        let mut r = PcapReader::new(f).map_err(|e| {
            anyhow::anyhow!(
                "{}: not a pcap or pcapng file ({e}); save the capture as pcap or pcapng",
                path.display()
            )
        })?;
        let link = r.header().datalink;
        while let Some(p) = r.next_packet() {
            let p = p.map_err(|e| bad(e, frames.len()))?;
            frames.push(Frame {
                ts: p.timestamp,
                link,
                data: p.data.into_owned(),
            });
        }
    }
    Ok(frames)
}

/// Units per second of a pcapng interface (if_tsresol; default 10^6).
fn tsresol(opts: &[InterfaceDescriptionOption]) -> u128 {
    for o in opts {
        if let InterfaceDescriptionOption::IfTsResol(r) = o {
            let n = u32::from(r & 0x7f);
            return if r & 0x80 == 0 {
                10u128.checked_pow(n).unwrap_or(1_000_000)
            } else {
                2u128.checked_pow(n).unwrap_or(1_000_000)
            };
        }
    }
    1_000_000
}

/// Link types replay understands.
fn supported(link: DataLink) -> bool {
    matches!(
        link,
        DataLink::RAW
            | DataLink::IPV4
            | DataLink::IPV6
            | DataLink::ETHERNET
            | DataLink::LINUX_SLL
            | DataLink::LINUX_SLL2
            | DataLink::NULL
            | DataLink::LOOP
    )
}

/// The IP packet inside a frame, or why there is none.
pub fn strip_link(link: DataLink, d: &[u8]) -> Result<&[u8], &'static str> {
    const V4: u16 = 0x0800;
    const V6: u16 = 0x86dd;
    let be16 = |d: &[u8], o: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*d.get(o)?, *d.get(o + 1)?]))
    };
    let by_type = |t: u16, off: usize| -> Result<&[u8], &'static str> {
        match t {
            V4 | V6 => d.get(off..).ok_or("truncated_link_header"),
            _ => Err("not_ip"),
        }
    };
    match link {
        DataLink::RAW | DataLink::IPV4 | DataLink::IPV6 => Ok(d),
        DataLink::ETHERNET => {
            let mut off = 12;
            loop {
                let t = be16(d, off).ok_or("truncated_link_header")?;
                if t == 0x8100 || t == 0x88a8 {
                    off += 4;
                    continue;
                }
                return by_type(t, off + 2);
            }
        }
        DataLink::LINUX_SLL => by_type(be16(d, 14).ok_or("truncated_link_header")?, 16),
        DataLink::LINUX_SLL2 => by_type(be16(d, 0).ok_or("truncated_link_header")?, 20),
        DataLink::NULL | DataLink::LOOP => {
            let b = d.get(..4).ok_or("truncated_link_header")?;
            let fam = u32::from_le_bytes([b[0], b[1], b[2], b[3]])
                .min(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            match fam {
                2 => Ok(&d[4..]),
                24 | 28 | 30 => Ok(&d[4..]),
                _ => Err("not_ip"),
            }
        }
        _ => Err("unsupported_link_type"),
    }
}

/// One emitted packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emitted {
    /// Milliseconds since the first input packet (the engine's clock).
    pub at: Timestamp,
    /// Absolute time written to the output capture.
    pub ts: Duration,
    pub data: Vec<u8>,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub packets_in: usize,
    pub packets_out: usize,
    /// Outcome label → count (e.g. `forward 6to4`, `drop no_binding`).
    pub counts: BTreeMap<String, u64>,
    /// One line per input packet and per timer-emitted packet.
    pub lines: Vec<String>,
    pub emitted: Vec<Emitted>,
    pub sweeps: u64,
}

impl Report {
    fn count(&mut self, what: impl Into<String>) {
        *self.counts.entry(what.into()).or_insert(0) += 1;
    }

    /// The summary printed on stdout.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "replay: {} packet(s) in, {} out, {} reaper sweep(s)\n",
            self.packets_in, self.packets_out, self.sweeps
        );
        let w = self.counts.keys().map(|k| k.len()).max().unwrap_or(0);
        for (k, v) in &self.counts {
            let _ = writeln!(s, "  {k:<w$}  {v}");
        }
        s
    }
}

/// A short description of an IP packet: `v6 udp [a]:p -> [b]:q`.
pub fn describe(p: &[u8]) -> String {
    let proto = |n: u8| match n {
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        1 => "icmp".to_string(),
        58 => "icmpv6".to_string(),
        44 => "frag".to_string(),
        n => format!("proto {n}"),
    };
    let ports = |l4: Option<&[u8]>, pr: u8| -> (String, String) {
        match (pr, l4) {
            (6 | 17, Some(l)) if l.len() >= 4 => (
                format!(":{}", u16::from_be_bytes([l[0], l[1]])),
                format!(":{}", u16::from_be_bytes([l[2], l[3]])),
            ),
            (1 | 58, Some(l)) if l.len() >= 2 => {
                (format!(" type {}/{}", l[0], l[1]), String::new())
            }
            _ => (String::new(), String::new()),
        }
    };
    match p.first().map(|b| b >> 4) {
        Some(4) if p.len() >= 20 => {
            let hl = usize::from(p[0] & 0xf) * 4;
            let src = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let dst = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            let frag = u16::from_be_bytes([p[6], p[7]]) & 0x1fff != 0;
            let (sp, dp) = ports(if frag { None } else { p.get(hl..) }, p[9]);
            let (sp, dp) = if p[9] == 1 {
                (String::new(), sp)
            } else {
                (sp, dp)
            };
            format!("v4 {} {src}{sp} -> {dst}{dp} ttl {}", proto(p[9]), p[8])
        }
        Some(6) if p.len() >= 40 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&p[8..24]);
            let src = Ipv6Addr::from(a);
            a.copy_from_slice(&p[24..40]);
            let dst = Ipv6Addr::from(a);
            let (sp, dp) = ports(p.get(40..), p[6]);
            let (sp, dp) = if p[6] == 58 {
                (String::new(), sp)
            } else {
                (sp, dp)
            };
            if sp.is_empty() || p[6] == 58 {
                format!("v6 {} {src} -> {dst}{dp} hlim {}", proto(p[6]), p[7])
            } else {
                format!(
                    "v6 {} [{src}]{sp} -> [{dst}]{dp} hlim {}",
                    proto(p[6]),
                    p[7]
                )
            }
        }
        _ => format!("{} byte(s), not IP", p.len()),
    }
}

struct Replayer {
    engine: Engine,
    worker: crate::engine::Worker,
    shared: worker::Shared,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    /// ICMP reassembly, and where a reassembled message is written.
    reassembly: Reassembler,
    whole: Vec<u8>,
    report: Report,
    t0: Duration,
    verbose: bool,
    /// Last whole second the reaper ran for.
    swept_to: u64,
    last_ms: u64,
    /// Held SYNs after the previous drop (to say when one was held).
    held_before: usize,
}

impl Replayer {
    fn new(s: &Settings, verbose: bool) -> anyhow::Result<Replayer> {
        let xcfg = crate::run::xlat_config(s, s.tun.mtu);
        let engine = Engine::new(s, xcfg)?;
        let worker = engine.worker();
        Ok(Replayer {
            worker,
            engine,
            shared: worker::Shared::new(s, s.tun.mtu),
            reassembly: Reassembler::new(reassembly_limits(s)),
            whole: vec![0u8; MAX_PACKET + 128],
            buf: vec![0u8; HEADROOM + MAX_PACKET + 128],
            scratch: vec![0u8; MAX_PACKET],
            report: Report::default(),
            t0: Duration::ZERO,
            verbose,
            swept_to: 0,
            last_ms: 0,
            held_before: 0,
        })
    }

    fn emit(&mut self, at: Timestamp, ts: Duration, data: &[u8]) -> String {
        self.report.packets_out += 1;
        let d = describe(data);
        self.report.emitted.push(Emitted {
            at,
            ts,
            data: data.to_vec(),
        });
        d
    }

    fn line(&mut self, l: String) {
        if self.verbose {
            self.report.lines.push(l);
        }
    }

    /// Fires the reaper at every whole second in (swept_to, upto_ms].
    fn advance(&mut self, upto_ms: u64) {
        let target = upto_ms / 1000;
        while self.swept_to < target {
            let sec = self.swept_to + 1;
            let now = Timestamp::from_secs(sec);
            // A sweep has a work budget: repeat until the pass is complete.
            let mut answers = Vec::new();
            for _ in 0..100_000 {
                let st = self.engine.sweep(now);
                answers.extend(st.icmp_answers);
                if st.complete {
                    break;
                }
            }
            self.report.sweeps += 1;
            self.swept_to = sec;
            for a in &answers {
                let ts = self.t0 + Duration::from_secs(sec);
                let what = format!("t={sec}.000 reaper: held SYN {}", describe(&a.packet));
                if !self.shared.limiter.allow(now) {
                    self.report.count("icmp rate-limited");
                    self.line(format!("{what} => Port Unreachable rate-limited"));
                    continue;
                }
                let err = IcmpError::DestUnreachableV4 { code: 3 };
                match worker::build_icmp(&a.packet, err, &self.shared, &mut self.scratch) {
                    Ok(n) => {
                        let out = self.scratch[..n].to_vec();
                        self.report.count("held SYN answered (port unreachable)");
                        let d = self.emit(now, ts, &out);
                        self.line(format!("{what} => out {d}"));
                    }
                    Err(r) => {
                        self.report.count(format!("icmp not built {r}"));
                        self.line(format!("{what} => no ICMP ({r})"));
                    }
                }
            }
            // Nothing left whose expiry emits or changes anything: jump to
            // one last sweep at the target second.
            let c = self.engine.core().counts();
            self.held_before = c.held_syns;
            let alive = c.sessions.tcp
                + c.sessions.udp
                + c.sessions.icmp
                + c.kernel_leases
                + c.fragments_cached
                + c.held_syns;
            if alive == 0 && self.swept_to + 1 < target {
                self.swept_to = target - 1;
            }
        }
    }

    fn packet(&mut self, idx: usize, frame: &Frame) {
        self.report.packets_in += 1;
        let ms = (frame.ts.saturating_sub(self.t0).as_millis() as u64).max(self.last_ms);
        self.last_ms = ms;
        self.advance(ms);
        let now = Timestamp::from_millis(ms);
        let head = format!("#{} t={}.{:03}", idx + 1, ms / 1000, ms % 1000);
        let ip = match strip_link(frame.link, &frame.data) {
            Ok(ip) => ip,
            Err(why) => {
                self.report.count(format!("skipped {why}"));
                self.line(format!("{head} skipped ({why})"));
                return;
            }
        };
        let mut n = ip.len().min(MAX_PACKET);
        self.buf[HEADROOM..HEADROOM + n].copy_from_slice(&ip[..n]);
        let mut what = describe(&ip[..n]);
        // ICMP fragments are reassembled and translated whole, as the
        // daemon does (dataplane/worker.rs).
        if reassemble::is_icmp_fragment(&ip[..n]) {
            let pushed = self.reassembly.push(&ip[..n], now, &mut self.whole);
            for (r, k) in pushed.drops() {
                for _ in 0..k {
                    self.report.count(format!("drop {}", r.as_str()));
                }
            }
            match pushed.push {
                Push::Complete { len } if HEADROOM + len <= self.buf.len() => {
                    self.buf[HEADROOM..HEADROOM + len].copy_from_slice(&self.whole[..len]);
                    n = len;
                    what = format!("{what} (last fragment: {})", describe(&self.whole[..len]));
                }
                Push::NotIcmpFragment => {}
                Push::Held => {
                    self.report.count("held icmp fragment");
                    self.line(format!("{head} {what} => held for reassembly"));
                    return;
                }
                other => {
                    self.line(format!("{head} {what} => reassembly: {other:?}"));
                    return;
                }
            }
        }
        let version = ip.first().map_or(0, |b| b >> 4);
        let verdict = self
            .worker
            .process(
                &mut self.buf,
                HEADROOM,
                n,
                now,
                nat64_core::xlat::Offload::NONE,
            )
            .verdict;
        match verdict {
            Verdict::Forward {
                start,
                len,
                fragment_mtu,
            } => {
                let dir = if version == 6 { "6to4" } else { "4to6" };
                let Some(pkt) = self.buf.get(start..start.saturating_add(len)) else {
                    self.report
                        .count(format!("drop {}", DropReason::NoBufferRoom.as_str()));
                    return;
                };
                let pkt = pkt.to_vec();
                match fragment_mtu {
                    None => {
                        self.report.count(format!("forward {dir}"));
                        let d = self.emit(now, frame.ts, &pkt);
                        self.line(format!("{head} {what} => forward {d}"));
                    }
                    Some(mtu) => {
                        let mut frags: Vec<Vec<u8>> = Vec::new();
                        let mut sink = |f: &[u8]| frags.push(f.to_vec());
                        let r = match pkt.first().map(|b| b >> 4) {
                            Some(6) => {
                                xlat::frag::fragment_v6(&pkt, mtu, &mut self.scratch, &mut sink)
                            }
                            Some(4) => {
                                xlat::frag::fragment_v4(&pkt, mtu, &mut self.scratch, &mut sink)
                            }
                            _ => Err(DropReason::BadVersion),
                        };
                        match r {
                            Ok(k) => {
                                self.report.count(format!("forward {dir} fragmented"));
                                let mut ds = Vec::new();
                                for f in &frags {
                                    ds.push(self.emit(now, frame.ts, f));
                                }
                                self.line(format!(
                                    "{head} {what} => forward in {k} fragment(s) of <= {mtu}: {}",
                                    ds.join(" | ")
                                ));
                            }
                            Err(r) => {
                                self.report.count(format!("drop {}", r.as_str()));
                                self.line(format!("{head} {what} => drop {r} (fragmenting)"));
                            }
                        }
                    }
                }
            }
            Verdict::Icmp { error, reason } => {
                self.report.count(format!("icmp {}", reason.as_str()));
                if !self.shared.limiter.allow(now) {
                    self.report.count("icmp rate-limited");
                    self.line(format!("{head} {what} => {reason}, ICMP rate-limited"));
                    return;
                }
                let orig = &self.buf[HEADROOM..HEADROOM + n];
                match worker::build_icmp(orig, error, &self.shared, &mut self.scratch) {
                    Ok(k) => {
                        let out = self.scratch[..k].to_vec();
                        let d = self.emit(now, frame.ts, &out);
                        self.line(format!("{head} {what} => {reason}, answered {d}"));
                    }
                    Err(r) => {
                        self.report.count(format!("icmp not built {}", r.as_str()));
                        self.line(format!("{head} {what} => {reason}, no ICMP ({r})"));
                    }
                }
            }
            Verdict::Drop(r) => {
                self.report.count(format!("drop {}", r.as_str()));
                // RFC 6146 §3.5.2.2: an IPv4 SYN without binding is held.
                let held = self.engine.core().counts().held_syns;
                if held > self.held_before {
                    self.line(format!(
                        "{head} {what} => drop {r} (SYN held 6 s for a simultaneous open)"
                    ));
                } else {
                    self.line(format!("{head} {what} => drop {r}"));
                }
                self.held_before = held;
            }
        }
    }
}

/// Runs the translator configured by `settings` over `frames`, then runs
/// the clock on to `until` (seconds since the first packet).
pub fn replay_frames(
    settings: &Settings,
    frames: &[Frame],
    until: Option<Duration>,
    verbose: bool,
) -> anyhow::Result<Report> {
    if let Some(f) = frames.iter().find(|f| !supported(f.link)) {
        anyhow::bail!(
            "link type {:?} ({}) is not supported; replay reads RAW (101), IPv4 (228), IPv6 \
             (229), Ethernet (1), Linux cooked SLL (113) / SLL2 (276) and loopback (0, 108): \
             convert the capture, e.g. `editcap -T rawip IN OUT`",
            f.link,
            u32::from(f.link)
        );
    }
    let mut r = Replayer::new(settings, verbose)?;
    r.t0 = frames.first().map_or(Duration::ZERO, |f| f.ts);
    for (i, f) in frames.iter().enumerate() {
        r.packet(i, f);
    }
    if let Some(u) = until {
        r.advance(u.as_millis() as u64);
    }
    Ok(r.report)
}

/// Writes packets as a LINKTYPE_RAW pcap.
pub fn write_capture(path: &Path, packets: &[Emitted]) -> anyhow::Result<()> {
    let f = std::fs::File::create(path).with_context(|| {
        format!(
            "cannot create {}; check the directory exists and is writable",
            path.display()
        )
    })?;
    let header = PcapHeader {
        datalink: DataLink::RAW,
        ts_resolution: TsResolution::MicroSecond,
        endianness: Endianness::Little,
        snaplen: MAX_PACKET as u32,
        ..PcapHeader::default()
    };
    let mut w = PcapWriter::with_header(BufWriter::new(f), header)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    for p in packets {
        w.write_packet(&PcapPacket::new(p.ts, p.data.len() as u32, &p.data))
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    }
    let mut inner = w.into_writer();
    std::io::Write::flush(&mut inner).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// `nat64 replay --config FILE IN OUT [--until SECONDS] [-v]`.
pub fn cli(
    config_arg: &str,
    sets: &[String],
    input: &Path,
    output: &Path,
    until: Option<f64>,
    verbose: bool,
) -> anyhow::Result<()> {
    let loaded = config::load(config_arg, sets)?;
    for w in &loaded.settings.warnings {
        eprintln!("nat64: warning: {w}");
    }
    let until = match until {
        None => None,
        Some(u) if (0.0..=365.0 * 86400.0).contains(&u) => Some(Duration::from_secs_f64(u)),
        Some(u) => anyhow::bail!(
            "--until {u}: give a number of seconds since the first packet, 0 to 31536000"
        ),
    };
    let frames = read_capture(input)?;
    let report = replay_frames(&loaded.settings, &frames, until, verbose)?;
    write_capture(output, &report.emitted)?;
    for l in &report.lines {
        println!("{l}");
    }
    print!("{}", report.summary());
    println!(
        "replay: wrote {} packet(s) to {} (LINKTYPE_RAW)",
        report.packets_out,
        output.display()
    );
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn strip_ethernet_vlan_and_sll() {
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x81, 0x00, 0, 5, 0x86, 0xdd, 0x60]);
        assert_eq!(strip_link(DataLink::ETHERNET, &eth), Ok(&[0x60u8][..]));
        let mut arp = vec![0u8; 12];
        arp.extend_from_slice(&[0x08, 0x06, 0]);
        assert_eq!(strip_link(DataLink::ETHERNET, &arp), Err("not_ip"));
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00, 0x45]);
        assert_eq!(strip_link(DataLink::LINUX_SLL, &sll), Ok(&[0x45u8][..]));
        assert_eq!(
            strip_link(DataLink::LINUX_SLL, &[0u8; 3]),
            Err("truncated_link_header")
        );
    }

    #[test]
    fn tsresol_default_and_binary() {
        assert_eq!(tsresol(&[]), 1_000_000);
        assert_eq!(
            tsresol(&[InterfaceDescriptionOption::IfTsResol(9)]),
            1_000_000_000
        );
        assert_eq!(
            tsresol(&[InterfaceDescriptionOption::IfTsResol(0x8a)]),
            1024
        );
    }
}
