//! Operations (docs/operator.md §4): the control socket behind `nat64 show` and
//! `nat64 binding` ([`socket`], [`client`]), the Prometheus endpoint
//! ([`metrics`]) and what both read ([`Telemetry`]).
//!
//! Nothing here runs on the packet path: the per-worker counters are plain
//! atomics summed when a client asks, and the engine's tables are read
//! through its show accessors.

pub mod client;
pub mod metrics;
pub mod proto;
pub mod socket;

use crate::engine::Engine;
use crate::stats::{ReaperStats, Stats, Totals};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// Mapping-log counters (see [`crate::maplog`]).
#[derive(Debug, Default)]
pub struct MapLogCounters {
    /// Lines written.
    pub lines: AtomicU64,
    /// Events lost because the writer fell behind (channel full) or the
    /// file could not be written.
    pub dropped: AtomicU64,
}

/// Everything the control socket and `/metrics` report.
pub struct Telemetry {
    pub engine: Engine,
    pub workers: Vec<Arc<Stats>>,
    pub reaper: Arc<ReaperStats>,
    pub maplog: Arc<MapLogCounters>,
    pub mapping_log_enabled: bool,
    pub started: Instant,
    /// The translation prefix and where it came from (a derived prefix
    /// names its interface and address): clients and DNS64 need it.
    pub prefix: String,
    pub prefix_origin: String,
    /// The daemon-mode pool: where run-time static entries must lie.
    pub pool: Vec<crate::config::V4Net>,
    /// The kernel fast path's counters, when it runs.
    pub fast_path: Option<Arc<crate::fastpath::Counters>>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("workers", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    pub fn totals(&self) -> Totals {
        Totals::sum(&self.workers)
    }

    /// The `stats` reply: traffic, drops by reason, table sizes, reaper and
    /// mapping-log counters, as one JSON object (nested objects; `nat64
    /// show stats` flattens it to dotted keys).
    pub fn stats_json(&self) -> serde_json::Value {
        use serde_json::{json, Map, Value};
        let t = self.totals();
        let mut packets = Map::new();
        for (c, rx, rxb, tr) in &t.rx_by_class {
            let dir = packets
                .entry(c.direction())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = dir {
                m.insert(
                    c.proto().to_string(),
                    json!({"received": rx, "received_bytes": rxb, "translated": tr}),
                );
            }
        }
        let drops: Map<String, Value> = t
            .drops
            .iter()
            .map(|(r, n)| (r.as_str().to_string(), json!(n)))
            .collect();
        let c = self.engine.core().counts();
        let r = &self.reaper;
        let per = |a: &[AtomicU64; 3]| json!({"tcp": a[0].load(Relaxed), "udp": a[1].load(Relaxed), "icmp": a[2].load(Relaxed)});
        json!({
            "prefix": self.prefix,
            "prefix_origin": self.prefix_origin,
            "uptime_secs": self.started.elapsed().as_secs(),
            "traffic": {
                "rx_packets": t.rx_packets,
                "rx_bytes": t.rx_bytes,
                "tx_packets": t.tx_packets,
                "tx_bytes": t.tx_bytes,
                "translated_6to4": t.translated_6to4,
                "translated_4to6": t.translated_4to6,
                "fragments_out": t.fragments_out,
                "fragments_held": t.fragments_held,
                "reassembled": t.reassembled,
                "tun_read_errors": t.tun_read_errors,
                "tun_write_errors": t.tun_write_errors,
            },
            "packets": packets,
            "icmp": {
                "sent": t.icmp_sent,
                "rate_limited": t.icmp_rate_limited,
                "echo_answered": t.echo_answered,
                "build_failed": t.icmp_build_failed,
            },
            "drops_total": t.drops_total(),
            "drops": drops,
            "bindings": {"tcp": c.bindings.tcp, "udp": c.bindings.udp, "icmp": c.bindings.icmp,
                         "static": c.static_bindings},
            "sessions": {"tcp": c.sessions.tcp, "udp": c.sessions.udp, "icmp": c.sessions.icmp},
            "kernel_leases": c.kernel_leases,
            "kernel_leases_displaced": c.kernel_leases_displaced,
            "pool": {
                "ports_in_use": c.pool_ports_in_use,
                "exhausted": c.pool_exhausted,
            },
            "limits": {
                "session_limit_hits": c.session_limit_hits,
                "client_session_limit_hits": c.client_session_limit_hits,
                "site_limit_hits": c.site_limit_hits,
                "clients_limited": c.clients_limited,
            },
            "fragments_cached": c.fragments_cached,
            "held_syns": c.held_syns,
            "reaper": {
                "sweeps": r.sweeps.load(Relaxed),
                "expired_sessions": per(&r.expired_sessions),
                "expired_bindings": per(&r.expired_bindings),
                "expired_leases": r.expired_leases.load(Relaxed),
                "held_syns_answered": r.held_syns_answered.load(Relaxed),
            },
            "mapping_log": {
                "enabled": self.mapping_log_enabled,
                "lines": self.maplog.lines.load(Relaxed),
                "dropped": self.maplog.dropped.load(Relaxed),
            },
            "fast_path": self.fast_path.as_ref().map(|f| f.json()),
        })
    }
}

/// Polls `fd` for readability for up to `ms` milliseconds (the accept
/// loops: they wake at least that often to notice shutdown).
pub(crate) fn wait_readable(fd: std::os::fd::RawFd, ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let r = unsafe { libc::poll(&mut p, 1, ms) };
    if r < 0 {
        std::thread::sleep(std::time::Duration::from_millis(ms.max(0) as u64));
    }
}
