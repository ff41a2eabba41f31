//! Prometheus `/metrics` (docs/operator.md §4.2), encoded by `prometheus-client` in the
//! OpenMetrics text format, which Prometheus scrapes natively.
//!
//! Every value is read when scraped ([`Collector`]): the per-worker
//! counters are summed then, the engine's table sizes come from its
//! accessors; nothing is added to the packet path. Every [`DropReason`] is
//! emitted, so each `reason` label exists from the start at 0.
//!
//! The HTTP side is a few lines over [`std::net::TcpListener`] rather than
//! a server crate: one path, GET only, one response per connection, a
//! bounded request head. Connections are served concurrently, a thread
//! each, at most [`MAX_CONNS`] at once (one more gets `503` at once and is
//! counted); the request head must arrive within [`HEAD_DEADLINE`] and the
//! response be written within [`WRITE_DEADLINE`]. Idle or slow clients
//! hold only their own thread (issue 11 #11: ten idle connections used to
//! delay a scrape by 19 s), and never the data plane.

use super::socket::{refuse, write_until, Closing, Slots};
use super::Telemetry;
use anyhow::Context as _;
use nat64_core::DropReason;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::io::{ErrorKind, Read as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Pools larger than this many addresses report per-address usage only
/// for addresses with a port in use (keeps a /16 pool to its live series).
pub const POOL_ALL_ADDRESSES_UP_TO: usize = 256;

const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Connections served at once; more get `503 Service Unavailable`.
pub const MAX_CONNS: usize = 32;
/// The request head must arrive within this.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// The response must be written within this.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Longest single wait in a read (how often a connection looks at stop).
const SLICE: Duration = Duration::from_millis(200);

/// Connection counters of the metrics endpoint (process-wide, like the
/// endpoint).
#[derive(Debug)]
pub struct HttpCounters {
    pub accepted: AtomicU64,
    /// Refused because [`MAX_CONNS`] were open.
    pub refused_busy: AtomicU64,
    /// Closed because the head did not arrive, or the response could not
    /// be written, in time.
    pub timed_out: AtomicU64,
}

pub static COUNTERS: HttpCounters = HttpCounters {
    accepted: AtomicU64::new(0),
    refused_busy: AtomicU64::new(0),
    timed_out: AtomicU64::new(0),
};

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

/// The kernel fast path's series (issue 13), when it runs: the program's
/// packets by what it did with them, its bytes, and the flow table. Packets
/// it translated never reach the TUN, so they are not in
/// `nat64_packets_translated`: traffic through nat64 is the sum of both.
fn fast_path(e: &mut DescriptorEncoder, fp: &crate::fastpath::Counters) -> std::fmt::Result {
    use nat64_bpf::Stat;
    let by_what: Vec<(Labels, u64)> = Stat::ALL
        .iter()
        .map(|s| (vec![("what", s.name().to_string())], fp.program(*s)))
        .collect();
    counter(
        e,
        "nat64_fast_path_packets",
        "Packets the fast-path program saw, by what it did: xlat_6to4 / xlat_4to6 \
         (translated in the kernel), pass_* (handed to the TUN path, by reason), error \
         (dropped mid-translation). Updated once a second.",
        &by_what,
    )?;
    counter(
        e,
        "nat64_fast_path_bytes",
        "IP bytes (as received) the fast-path program translated, by direction.",
        &[
            (
                vec![("direction", "6to4".to_string())],
                fp.bytes[0].load(Relaxed),
            ),
            (
                vec![("direction", "4to6".to_string())],
                fp.bytes[1].load(Relaxed),
            ),
        ],
    )?;
    gauge(
        e,
        "nat64_fast_path_flows",
        "Flows installed in the fast path.",
        &one(fp.flows.load(Relaxed) as i64),
    )?;
    let ev = |name: &str, v: &AtomicU64| (vec![("event", name.to_string())], v.load(Relaxed));
    counter(
        e,
        "nat64_fast_path_flow_events",
        "Fast-path flow table events: installed, removed, install_failed (table full: the \
         flow stays on the TUN path), dropped (an event the thread could not queue) and \
         refreshed (timers kept by fast-path traffic).",
        &[
            ev("installed", &fp.installed),
            ev("removed", &fp.removed),
            ev("install_failed", &fp.install_failed),
            ev("dropped", &fp.events_dropped),
            ev("refreshed", &fp.refreshed),
        ],
    )
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
            "nat64_echo_answered",
            "Echo requests to the translator's own addresses it answered itself (SIIT mode).",
            &one(t.echo_answered),
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
        gauge(
            e,
            "nat64_kernel_leases_displaced",
            "Kernel mode: dynamic leases not on their client's home address (hash \
             collisions; an HA pair's other node may number these clients otherwise).",
            &one(c.kernel_leases_displaced as i64),
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
        counter(
            e,
            "nat64_site_limit_hits",
            "New flows or leases refused by the site guard (limits.site-prefix-len) or the \
             fair share of a nearly full table.",
            &one(c.site_limit_hits),
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

        if let Some(fp) = &tel.fast_path {
            fast_path(e, fp)?;
        }

        // The operations endpoints themselves.
        let ctl = &super::socket::COUNTERS;
        counter(
            e,
            "nat64_control_connections",
            "Control-socket connections served.",
            &one(ctl.accepted.load(Relaxed)),
        )?;
        counter(
            e,
            "nat64_control_connections_refused",
            "Control-socket connections refused: busy (too many open at once) or peer (neither \
             root nor the daemon's uid).",
            &[
                (
                    vec![("reason", "busy".to_string())],
                    ctl.refused_busy.load(Relaxed),
                ),
                (
                    vec![("reason", "peer".to_string())],
                    ctl.refused_peer.load(Relaxed),
                ),
            ],
        )?;
        counter(
            e,
            "nat64_control_connections_timed_out",
            "Control-socket connections closed because a request or an answer took too long.",
            &one(ctl.timed_out.load(Relaxed)),
        )?;
        counter(
            e,
            "nat64_metrics_connections_refused",
            "Metrics connections refused (503) because too many were open at once.",
            &one(COUNTERS.refused_busy.load(Relaxed)),
        )?;
        counter(
            e,
            "nat64_metrics_connections_timed_out",
            "Metrics connections closed because the request or the response took too long.",
            &one(COUNTERS.timed_out.load(Relaxed)),
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
    slots: Slots,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Waits for the accept thread (after the stop flag was set) and gives
    /// the connection threads a moment to notice.
    pub fn stop(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.slots.drain(SLICE * 2);
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
    let slots = Slots::new(MAX_CONNS);
    let sl = slots.clone();
    let thread = std::thread::Builder::new()
        .name("nat64-metrics".into())
        .spawn(move || {
            // Least privilege: this thread needs no capability.
            crate::privilege::drop_thread_caps();
            let mut closing = Closing::new();
            while !stop.load(Ordering::Relaxed) {
                closing.poll();
                match l.accept() {
                    Ok((s, peer)) => {
                        if let Some(s) = admit(s, peer, &tel, &stop, &sl) {
                            let _ = s.shutdown(std::net::Shutdown::Write);
                            closing.push(s);
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
        slots,
        thread: Some(thread),
    })
}

/// Serves the connection on its own thread, or answers 503 at once when
/// [`MAX_CONNS`] are open (and returns the connection, to be closed a
/// moment later).
fn admit(
    mut s: TcpStream,
    peer: SocketAddr,
    tel: &Arc<Telemetry>,
    stop: &Arc<AtomicBool>,
    slots: &Slots,
) -> Option<TcpStream> {
    let Some(slot) = slots.take() else {
        COUNTERS.refused_busy.fetch_add(1, Relaxed);
        let fd = s.as_raw_fd();
        refuse(
            &mut s,
            fd,
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n\
              Content-Length: 5\r\nRetry-After: 1\r\nConnection: close\r\n\r\nbusy\n",
        );
        return Some(s);
    };
    COUNTERS.accepted.fetch_add(1, Relaxed);
    let (tel, stop) = (tel.clone(), stop.clone());
    let spawned = super::socket::serve_in_thread(slot, "nat64-metrics-conn", move || {
        if let Err(e) = http(s, &tel, &stop) {
            tracing::debug!("metrics client {peer}: {e}");
        }
    });
    if let Err(e) = spawned {
        COUNTERS.refused_busy.fetch_add(1, Relaxed);
        tracing::warn!("metrics: cannot start a connection thread: {e}");
    }
    None
}

/// Longest request head read.
const MAX_HEAD: usize = 8192;

fn http(mut s: TcpStream, tel: &Arc<Telemetry>, stop: &AtomicBool) -> std::io::Result<()> {
    s.set_nonblocking(false)?;
    let deadline = Instant::now() + HEAD_DEADLINE;
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && !head.windows(2).any(|w| w == b"\n\n") {
        if head.len() >= MAX_HEAD {
            return respond(&s, "431 Request Header Fields Too Large", "text/plain", b"");
        }
        if stop.load(Relaxed) {
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            COUNTERS.timed_out.fetch_add(1, Relaxed);
            let fd = s.as_raw_fd();
            refuse(
                &mut s,
                fd,
                b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            // Not closed over unread data (that would reset the answer).
            let _ = s.shutdown(std::net::Shutdown::Write);
            let mut c = Closing::new();
            c.push(s);
            for _ in 0..5 {
                c.poll();
                std::thread::sleep(SLICE);
            }
            return Ok(());
        }
        s.set_read_timeout(Some(left.min(SLICE)))?;
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics") => match render(tel) {
            Ok(body) => respond(&s, "200 OK", CONTENT_TYPE, body.as_bytes()),
            Err(_) => respond(
                &s,
                "500 Internal Server Error",
                "text/plain",
                b"encoding failed\n",
            ),
        },
        ("GET", "/") => respond(
            &s,
            "200 OK",
            "text/html",
            b"<html><body><a href=\"/metrics\">nat64 metrics</a></body></html>\n",
        ),
        ("GET", _) => respond(&s, "404 Not Found", "text/plain", b"try /metrics\n"),
        _ => respond(
            &s,
            "405 Method Not Allowed",
            "text/plain",
            b"GET /metrics\n",
        ),
    }
}

/// Writes one response within [`WRITE_DEADLINE`].
fn respond(s: &TcpStream, status: &str, ctype: &str, body: &[u8]) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    let mut w: &TcpStream = s;
    let r = write_until(
        &mut w,
        &|d| s.set_write_timeout(Some(d)),
        &out,
        Instant::now() + WRITE_DEADLINE,
    );
    if r.as_ref().is_err_and(|e| e.kind() == ErrorKind::TimedOut) {
        COUNTERS.timed_out.fetch_add(1, Relaxed);
    }
    r
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::Write as _;

    /// A metrics server on a free loopback port; stopped on drop.
    struct Server {
        addr: SocketAddr,
        stop: Arc<AtomicBool>,
        srv: Option<MetricsServer>,
    }

    impl Server {
        fn start() -> Server {
            // A free port (the race with another binder is harmless here).
            let addr = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let srv = spawn(addr, super::super::socket::test::telemetry(), stop.clone()).unwrap();
            Server {
                addr,
                stop,
                srv: Some(srv),
            }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.stop.store(true, Relaxed);
            if let Some(s) = self.srv.take() {
                s.stop();
            }
        }
    }

    fn get(addr: SocketAddr, path: &str) -> (String, Duration) {
        let t0 = Instant::now();
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(40))).unwrap();
        let _ = s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        (text, t0.elapsed())
    }

    /// Issue 11 #11: ten idle connections used to delay a scrape by 19 s.
    #[test]
    fn scrape_answered_within_1s_with_10_idle_connections() {
        let srv = Server::start();
        let idle: Vec<TcpStream> = (0..10)
            .map(|_| TcpStream::connect(srv.addr).unwrap())
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        let (text, took) = get(srv.addr, "/metrics");
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        assert!(
            text.contains("nat64_control_connections_refused_total{reason=\"busy\"}"),
            "{text}"
        );
        assert!(took < Duration::from_secs(1), "scrape took {took:?}");
        drop(idle);
    }

    /// Past MAX_CONNS open connections the next one gets 503 at once and
    /// is counted.
    #[test]
    fn connection_cap_answers_503_to_the_33rd() {
        let srv = Server::start();
        let idle: Vec<TcpStream> = (0..MAX_CONNS)
            .map(|_| TcpStream::connect(srv.addr).unwrap())
            .collect();
        let t0 = Instant::now();
        while srv.srv.as_ref().unwrap().slots.active() < MAX_CONNS {
            assert!(t0.elapsed() < Duration::from_secs(2));
            std::thread::sleep(Duration::from_millis(5));
        }
        let before = COUNTERS.refused_busy.load(Relaxed);
        let (text, took) = get(srv.addr, "/metrics");
        assert!(text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert!(COUNTERS.refused_busy.load(Relaxed) > before);
        drop(idle);
        let t0 = Instant::now();
        while srv.srv.as_ref().unwrap().slots.active() > 0 {
            assert!(t0.elapsed() < Duration::from_secs(2));
            std::thread::sleep(Duration::from_millis(5));
        }
        let (text, _) = get(srv.addr, "/metrics");
        assert!(text.starts_with("HTTP/1.1 200 OK"), "{text}");
    }

    /// A request head that never ends gets 408 after HEAD_DEADLINE.
    #[test]
    fn slow_head_gets_408_after_the_deadline() {
        let srv = Server::start();
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
        let t0 = Instant::now();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        let took = t0.elapsed();
        assert!(text.starts_with("HTTP/1.1 408"), "{text}");
        assert!(took < HEAD_DEADLINE + Duration::from_secs(1), "{took:?}");
    }
}
