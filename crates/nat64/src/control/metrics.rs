//! Prometheus `/metrics` (SPEC §6), encoded by `prometheus-client` in the
//! OpenMetrics text format, which Prometheus scrapes natively.
//!
//! Every value is read when scraped ([`Collector`]): the per-worker
//! counters are summed then, the engine's table sizes come from its
//! accessors; nothing is added to the packet path. Every [`DropReason`] is
//! emitted, so each `reason` label exists from the start at 0.
//!
//! The HTTP side is a few lines over [`std::net::TcpListener`] on its own
//! thread rather than a server crate: one path, GET only, one response per
//! connection, read/write timeouts and a bounded request head, so a slow
//! client delays other scrapes by at most a few seconds and never the data
//! plane.

use super::Telemetry;
use anyhow::Context as _;
use nat64_core::DropReason;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::sync::atomic::{AtomicBool, Ordering, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pools larger than this many addresses report per-address usage only
/// for addresses with a port in use (keeps a /16 pool to its live series).
pub const POOL_ALL_ADDRESSES_UP_TO: usize = 256;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug)]
struct Scrape(Arc<Telemetry>);

type Labels<'a> = Vec<(&'static str, String)>;

fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, u64)],
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    if let [(l, v)] = series {
        if l.is_empty() {
            return ConstCounter::new(*v).encode(m);
        }
    }
    for (l, v) in series {
        ConstCounter::new(*v).encode(m.encode_family(l)?)?;
    }
    Ok(())
}

fn gauge(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, i64)],
) -> std::fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    if let [(l, v)] = series {
        if l.is_empty() {
            return ConstGauge::new(*v).encode(m);
        }
    }
    for (l, v) in series {
        ConstGauge::new(*v).encode(m.encode_family(l)?)?;
    }
    Ok(())
}

fn one<T>(v: T) -> Vec<(Labels<'static>, T)> {
    vec![(Vec::new(), v)]
}

fn per_proto<T: Copy>(tcp: T, udp: T, icmp: T) -> Vec<(Labels<'static>, T)> {
    [("tcp", tcp), ("udp", udp), ("icmp", icmp)]
        .into_iter()
        .map(|(p, v)| (vec![("proto", p.to_string())], v))
        .collect()
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let tel = &self.0;
        let t = tel.totals();
        let e = &mut e;

        let mut info =
            e.encode_descriptor("nat64_build", "Build information.", None, MetricType::Info)?;
        info.encode_info(&[("version", env!("CARGO_PKG_VERSION"))])?;
        gauge(
            e,
            "nat64_uptime_seconds",
            "Seconds since the daemon started.",
            &one(tel.started.elapsed().as_secs() as i64),
        )?;

        // Traffic by direction (input IP version) and protocol.
        let class = |c: &crate::stats::Class| {
            vec![
                ("direction", c.direction().to_string()),
                ("proto", c.proto().to_string()),
            ]
        };
        let rx: Vec<_> = t
            .rx_by_class
            .iter()
            .map(|(c, p, ..)| (class(c), *p))
            .collect();
        let rxb: Vec<_> = t
            .rx_by_class
            .iter()
            .map(|(c, _, b, _)| (class(c), *b))
            .collect();
        let tr: Vec<_> = t
            .rx_by_class
            .iter()
            .map(|(c, .., n)| (class(c), *n))
            .collect();
        counter(
            e,
            "nat64_packets_received",
            "Packets read from the TUN, by direction (6to4 = IPv6 in) and protocol.",
            &rx,
        )?;
        counter(
            e,
            "nat64_bytes_received",
            "Bytes read from the TUN, by direction and protocol.",
            &rxb,
        )?;
        counter(
            e,
            "nat64_packets_translated",
            "Packets translated, by direction and protocol of the input.",
            &tr,
        )?;
        counter(
            e,
            "nat64_packets_sent",
            "Packets written to the TUN (translations, fragments, ICMP errors).",
            &one(t.tx_packets),
        )?;
        counter(
            e,
            "nat64_bytes_sent",
            "Bytes written to the TUN.",
            &one(t.tx_bytes),
        )?;
        counter(
            e,
            "nat64_fragments_sent",
            "Extra packets produced by fragmenting oversized translations.",
            &one(t.fragments_out),
        )?;
        counter(
            e,
            "nat64_fragments_held",
            "ICMP fragments taken into reassembly (ICMP is translated whole).",
            &one(t.fragments_held),
        )?;
        counter(
            e,
            "nat64_reassembled",
            "Whole ICMP messages reassembled from fragments and translated.",
            &one(t.reassembled),
        )?;
        counter(
            e,
            "nat64_tun_errors",
            "TUN read/write errors.",
            &[
                (vec![("op", "read".to_string())], t.tun_read_errors),
                (vec![("op", "write".to_string())], t.tun_write_errors),
            ],
        )?;

        // Drops: every reason, so each label exists at 0.
        let drops: Vec<_> = DropReason::ALL
            .iter()
            .map(|r| {
                let n = t.drops.iter().find(|(x, _)| x == r).map_or(0, |(_, n)| *n);
                (vec![("reason", r.as_str().to_string())], n)
            })
            .collect();
        counter(
            e,
            "nat64_drops",
            "Packets dropped (or answered with an ICMP error), by reason.",
            &drops,
        )?;

        // Per TUN queue (= worker): how flows spread (ADR 0005), and how
        // many reads were GSO super-packets (ADR 0004).
        let per_queue = |f: &dyn Fn(&crate::stats::Stats) -> u64| -> Vec<(Labels, u64)> {
            tel.workers
                .iter()
                .enumerate()
                .map(|(i, w)| (vec![("queue", i.to_string())], f(w)))
                .collect()
        };
        counter(
            e,
            "nat64_queue_packets_received",
            "Packets (GSO super-packets count once) read by each TUN queue's worker.",
            &per_queue(&|w| {
                w.rx_packets
                    .iter()
                    .map(|c| c.load(std::sync::atomic::Ordering::Relaxed))
                    .sum()
            }),
        )?;
        counter(
            e,
            "nat64_queue_gso_packets_received",
            "GSO super-packets read by each TUN queue's worker (offload on).",
            &per_queue(&|w| w.rx_gso.load(std::sync::atomic::Ordering::Relaxed)),
        )?;
        counter(
            e,
            "nat64_queue_packets_steered",
            "Packets this queue's worker read for a flow owned by another queue and wrote \
             through that queue, so that the kernel steers the flow there (ADR 0005).",
            &per_queue(&|w| w.steered.load(std::sync::atomic::Ordering::Relaxed)),
        )?;
        counter(
            e,
            "nat64_queue_udp_coalesced",
            "UDP datagrams this queue's worker wrote as part of a UDP GSO train (one \
             super-packet per run of same-flow datagrams; each train's first not counted; ADR 0006).",
            &per_queue(&|w| w.udp_coalesced.load(std::sync::atomic::Ordering::Relaxed)),
        )?;

        counter(
            e,
            "nat64_icmp_errors_sent",
            "ICMP errors the translator originated.",
            &one(t.icmp_sent),
        )?;
        counter(
            e,
            "nat64_icmp_errors_rate_limited",
            "ICMP errors suppressed by icmp-rate-limit.",
            &one(t.icmp_rate_limited),
        )?;
        counter(
            e,
            "nat64_icmp_errors_build_failed",
            "ICMP errors that could not be built (e.g. quoting a non-IP packet).",
            &one(t.icmp_build_failed),
        )?;

        // Tables.
        let c = tel.engine.core().counts();
        gauge(
            e,
            "nat64_bindings",
            "Live BIB entries by protocol (static ones included).",
            &per_proto(
                c.bindings.tcp as i64,
                c.bindings.udp as i64,
                c.bindings.icmp as i64,
            ),
        )?;
        gauge(
            e,
            "nat64_static_bindings",
            "Static BIB entries.",
            &one(c.static_bindings as i64),
        )?;
        gauge(
            e,
            "nat64_sessions",
            "Live sessions by protocol.",
            &per_proto(
                c.sessions.tcp as i64,
                c.sessions.udp as i64,
                c.sessions.icmp as i64,
            ),
        )?;
        gauge(
            e,
            "nat64_kernel_leases",
            "Kernel mode: live 1:1 leases.",
            &one(c.kernel_leases as i64),
        )?;
        let usage = tel.engine.core().pool_usage();
        let all = usage.len() <= POOL_ALL_ADDRESSES_UP_TO;
        let mut in_use = Vec::new();
        for u in &usage {
            if !all && u.in_use.tcp == 0 && u.in_use.udp == 0 && u.in_use.icmp == 0 {
                continue;
            }
            for (p, n) in [
                ("tcp", u.in_use.tcp),
                ("udp", u.in_use.udp),
                ("icmp", u.in_use.icmp),
            ] {
                in_use.push((
                    vec![("address", u.addr.to_string()), ("proto", p.to_string())],
                    i64::from(n),
                ));
            }
        }
        gauge(
            e,
            "nat64_pool_ports_in_use",
            "Pool ports (ICMP identifiers) in use per pool address and protocol (kernel mode: \
             inner-pool addresses leased).",
            &in_use,
        )?;
        let cap = usage.first().map(|u| u.capacity).unwrap_or_default();
        gauge(
            e,
            "nat64_pool_ports_capacity",
            "Ports (identifiers) each pool address offers, by protocol.",
            &per_proto(i64::from(cap.tcp), i64::from(cap.udp), i64::from(cap.icmp)),
        )?;
        gauge(
            e,
            "nat64_pool_addresses",
            "Pool addresses.",
            &one(usage.len() as i64),
        )?;
        counter(
            e,
            "nat64_pool_exhausted",
            "New flows refused for lack of a pool port or address (port exhaustion).",
            &one(c.pool_exhausted),
        )?;
        counter(
            e,
            "nat64_session_limit_hits",
            "New flows refused by limits.max-sessions.",
            &one(c.session_limit_hits),
        )?;
        counter(
            e,
            "nat64_client_session_limit_hits",
            "New flows refused by limits.max-sessions-per-client.",
            &one(c.client_session_limit_hits),
        )?;
        gauge(
            e,
            "nat64_fragments_cached",
            "First fragments remembered for their followers.",
            &one(c.fragments_cached as i64),
        )?;
        gauge(
            e,
            "nat64_held_syns",
            "IPv4-initiated SYNs held for a simultaneous open (RFC 6146 §3.5.2.2).",
            &one(c.held_syns as i64),
        )?;

        // Reaper.
        let r = &tel.reaper;
        counter(
            e,
            "nat64_reaper_sweeps",
            "Reaper sweeps.",
            &one(r.sweeps.load(Relaxed)),
        )?;
        let l = |a: &[std::sync::atomic::AtomicU64; 3]| {
            per_proto(a[0].load(Relaxed), a[1].load(Relaxed), a[2].load(Relaxed))
        };
        counter(
            e,
            "nat64_reaper_expired_sessions",
            "Sessions the reaper expired, by protocol.",
            &l(&r.expired_sessions),
        )?;
        counter(
            e,
            "nat64_reaper_expired_bindings",
            "Bindings the reaper expired, by protocol.",
            &l(&r.expired_bindings),
        )?;
        counter(
            e,
            "nat64_reaper_expired_leases",
            "Kernel mode: leases the reaper expired.",
            &one(r.expired_leases.load(Relaxed)),
        )?;
        counter(
            e,
            "nat64_reaper_held_syns_answered",
            "Held SYNs answered with Port Unreachable.",
            &one(r.held_syns_answered.load(Relaxed)),
        )?;
        let m = e.encode_descriptor(
            "nat64_reaper_sweep_duration_seconds",
            "Wall time of each reaper sweep.",
            None,
            r.duration.metric_type(),
        )?;
        r.duration.encode(m)?;

        counter(
            e,
            "nat64_mapping_log_lines",
            "Lines written to the mapping log.",
            &one(tel.maplog.lines.load(Relaxed)),
        )?;
        counter(
            e,
            "nat64_mapping_log_dropped",
            "Mapping-log events lost (writer behind or file not writable).",
            &one(tel.maplog.dropped.load(Relaxed)),
        )?;
        Ok(())
    }
}

/// The text of one scrape.
pub fn render(tel: &Arc<Telemetry>) -> Result<String, std::fmt::Error> {
    let mut reg = Registry::default();
    reg.register_collector(Box::new(Scrape(tel.clone())));
    let mut out = String::with_capacity(16 * 1024);
    prometheus_client::encoding::text::encode(&mut out, &reg)?;
    Ok(out)
}

/// A running metrics endpoint.
pub struct MetricsServer {
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    pub fn stop(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Listens on `addr` and serves `/metrics` until `stop` is set.
pub fn spawn(
    addr: SocketAddr,
    tel: Arc<Telemetry>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<MetricsServer> {
    let l = TcpListener::bind(addr).with_context(|| {
        format!(
            "listening for metrics on {addr}; is the port taken (another nat64?) or the address \
             not local? Set `metrics` to another HOST:PORT, or \"\" to disable"
        )
    })?;
    l.set_nonblocking(true)
        .context("making the metrics socket non-blocking")?;
    let thread = std::thread::Builder::new()
        .name("nat64-metrics".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, peer)) => {
                        if let Err(e) = http(s, &tel) {
                            tracing::debug!("metrics client {peer}: {e}");
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        super::wait_readable(l.as_raw_fd(), 200)
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        tracing::warn!("metrics accept: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
            }
        })
        .context("spawning the metrics thread")?;
    Ok(MetricsServer {
        thread: Some(thread),
    })
}

/// Longest request head read.
const MAX_HEAD: usize = 8192;

fn http(mut s: TcpStream, tel: &Arc<Telemetry>) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let t0 = Instant::now();
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_HEAD || t0.elapsed() > Duration::from_secs(5) {
            return respond(
                &mut s,
                "431 Request Header Fields Too Large",
                "text/plain",
                b"",
            );
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => match render(tel) {
            Ok(body) => respond(&mut s, "200 OK", CONTENT_TYPE, body.as_bytes()),
            Err(_) => respond(
                &mut s,
                "500 Internal Server Error",
                "text/plain",
                b"encoding failed\n",
            ),
        },
        ("GET", "/") => respond(
            &mut s,
            "200 OK",
            "text/html",
            b"<html><body><a href=\"/metrics\">nat64 metrics</a></body></html>\n",
        ),
        ("GET", _) => respond(&mut s, "404 Not Found", "text/plain", b"try /metrics\n"),
        _ => respond(
            &mut s,
            "405 Method Not Allowed",
            "text/plain",
            b"GET /metrics\n",
        ),
    }
}

fn respond(s: &mut TcpStream, status: &str, ctype: &str, body: &[u8]) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    s.flush()
}
