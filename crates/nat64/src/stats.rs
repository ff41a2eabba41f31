//! Per-worker packet counters (plain atomics, summed only when read: by
//! SIGUSR1, `nat64 show stats` and the `/metrics` scrape). Every drop is
//! counted under its [`DropReason`]: a drop is never anonymous. Received
//! and translated packets are counted per [`Class`] (direction × protocol)
//! in the same single increment a total would take.

use nat64_core::DropReason;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Number of drop reasons (one counter each).
pub const N_REASONS: usize = DropReason::ALL.len();

/// The index of `r` in [`DropReason::ALL`] (its counter slot).
pub fn reason_index(r: DropReason) -> usize {
    DropReason::ALL
        .iter()
        .position(|x| *x == r)
        .unwrap_or(N_REASONS - 1)
}

/// Directions (by the IP version read from the TUN): index 0 IPv6 → IPv4,
/// 1 IPv4 → IPv6, 2 neither (not IP).
pub const DIRECTIONS: [&str; 3] = ["6to4", "4to6", "invalid"];
/// Protocols (the input's IPv4 protocol / first IPv6 next header).
pub const PROTOS: [&str; 4] = ["tcp", "udp", "icmp", "other"];
/// Number of [`Class`] slots.
pub const N_CLASSES: usize = DIRECTIONS.len() * PROTOS.len();

/// A packet's direction and protocol, as a counter slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class(u8);

impl Class {
    /// Classifies an IP packet from its first header only (no extension
    /// header walk: IPv6 packets with extension headers, fragments among
    /// them, count as `other`).
    /// True for packets read as IPv6.
    #[inline]
    pub fn is_from_v6(self) -> bool {
        usize::from(self.0) / PROTOS.len() == 0
    }

    #[inline]
    pub fn of(pkt: &[u8]) -> Class {
        let (dir, proto) = match pkt.first().map(|b| b >> 4) {
            Some(6) => (0, pkt.get(6).copied()),
            Some(4) => (1, pkt.get(9).copied()),
            _ => (2, None),
        };
        let p = match proto {
            Some(6) => 0,
            Some(17) => 1,
            Some(1) | Some(58) => 2,
            _ => 3,
        };
        Class((dir * PROTOS.len() + p) as u8)
    }
    #[inline]
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
    #[inline]
    pub fn is_v6(self) -> bool {
        self.index() / PROTOS.len() == 0
    }
    pub fn direction(self) -> &'static str {
        DIRECTIONS[self.index() / PROTOS.len()]
    }
    pub fn proto(self) -> &'static str {
        PROTOS[self.index() % PROTOS.len()]
    }
    /// Every class, in slot order.
    pub fn all() -> impl Iterator<Item = Class> {
        (0..N_CLASSES as u8).map(Class)
    }
}

fn slots() -> [AtomicU64; N_CLASSES] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

/// Counters of one worker (one TUN queue). Written only by that worker, so
/// the relaxed increments never contend.
#[derive(Debug)]
pub struct Stats {
    /// Packets (bytes) read from the TUN, by [`Class`].
    pub rx_packets: [AtomicU64; N_CLASSES],
    pub rx_bytes: [AtomicU64; N_CLASSES],
    /// Packets written to the TUN (translated, fragments, ICMP errors).
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
    /// Packets translated, by the input's [`Class`].
    pub translated: [AtomicU64; N_CLASSES],
    /// Extra packets produced by fragmenting oversized translations.
    pub fragments_out: AtomicU64,
    /// ICMP fragments taken into reassembly, and whole ICMP messages
    /// reassembled from them and handed to the translator.
    pub fragments_held: AtomicU64,
    pub reassembled: AtomicU64,
    /// Translator-originated ICMP errors sent / suppressed by the limiter.
    pub icmp_sent: AtomicU64,
    pub icmp_rate_limited: AtomicU64,
    /// Echo requests to the translator's own addresses answered (SIIT).
    pub echo_answered: AtomicU64,
    /// ICMP errors that could not be built (e.g. quoting a non-IP packet).
    pub icmp_build_failed: AtomicU64,
    /// GSO super-packets read from the TUN (offload on; ADR 0004).
    pub rx_gso: AtomicU64,
    /// Packets this worker read for a flow owned by another queue and
    /// wrote through that queue (ADR 0005).
    pub steered: AtomicU64,
    /// UDP datagrams written as part of a UDP GSO train (ADR 0006), not
    /// counting each train's first.
    pub udp_coalesced: AtomicU64,
    /// TUN read/write errors (other than "would block").
    pub tun_read_errors: AtomicU64,
    pub tun_write_errors: AtomicU64,
    /// Drops by reason, indexed like [`DropReason::ALL`].
    pub drops: [AtomicU64; N_REASONS],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            rx_packets: slots(),
            rx_bytes: slots(),
            tx_packets: AtomicU64::new(0),
            tx_bytes: AtomicU64::new(0),
            translated: slots(),
            fragments_out: AtomicU64::new(0),
            fragments_held: AtomicU64::new(0),
            reassembled: AtomicU64::new(0),
            icmp_sent: AtomicU64::new(0),
            icmp_rate_limited: AtomicU64::new(0),
            echo_answered: AtomicU64::new(0),
            icmp_build_failed: AtomicU64::new(0),
            rx_gso: AtomicU64::new(0),
            steered: AtomicU64::new(0),
            udp_coalesced: AtomicU64::new(0),
            tun_read_errors: AtomicU64::new(0),
            tun_write_errors: AtomicU64::new(0),
            drops: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Stats {
    #[inline]
    pub fn count_drop(&self, r: DropReason) {
        self.drops[reason_index(r)].fetch_add(1, Relaxed);
    }
    /// Counts `n` packets dropped for `r` at once.
    pub fn count_drops(&self, r: DropReason, n: u64) {
        self.drops[reason_index(r)].fetch_add(n, Relaxed);
    }
    /// Counts a packet read from the TUN; returns its class for
    /// [`Stats::count_translated`].
    #[inline]
    pub fn count_rx(&self, pkt: &[u8]) -> Class {
        let c = Class::of(pkt);
        self.rx_packets[c.index()].fetch_add(1, Relaxed);
        self.rx_bytes[c.index()].fetch_add(pkt.len() as u64, Relaxed);
        c
    }
    #[inline]
    pub fn count_translated(&self, c: Class) {
        self.translated[c.index()].fetch_add(1, Relaxed);
    }
    /// A forwarded packet `out` of input class `c`: a translation when the
    /// IP version changed; otherwise the translator answered it itself (an
    /// echo reply from one of its own addresses, SIIT mode): `echo_answered`,
    /// not a translation.
    #[inline]
    pub fn count_forwarded(&self, c: Class, out: &[u8]) {
        let out6 = out.first().map(|b| b >> 4) == Some(6);
        if c.is_from_v6() != out6 {
            self.count_translated(c);
        } else {
            self.echo_answered.fetch_add(1, Relaxed);
        }
    }
    #[inline]
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }
    #[inline]
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }
}

/// Totals over all workers, for logs and the stats dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub translated_6to4: u64,
    pub translated_4to6: u64,
    pub fragments_out: u64,
    pub fragments_held: u64,
    pub reassembled: u64,
    pub icmp_sent: u64,
    pub icmp_rate_limited: u64,
    pub echo_answered: u64,
    pub icmp_build_failed: u64,
    pub tun_read_errors: u64,
    pub tun_write_errors: u64,
    pub drops: Vec<(DropReason, u64)>,
    /// Per [`Class`] slot: received packets, received bytes, translated.
    pub rx_by_class: Vec<(Class, u64, u64, u64)>,
}

impl Totals {
    pub fn sum(all: &[Arc<Stats>]) -> Totals {
        let s = |f: fn(&Stats) -> &AtomicU64| all.iter().map(|w| f(w).load(Relaxed)).sum::<u64>();
        let slot = |f: fn(&Stats) -> &[AtomicU64; N_CLASSES], i: usize| {
            all.iter().map(|w| f(w)[i].load(Relaxed)).sum::<u64>()
        };
        let rx_by_class: Vec<(Class, u64, u64, u64)> = Class::all()
            .map(|c| {
                let i = c.index();
                (
                    c,
                    slot(|w| &w.rx_packets, i),
                    slot(|w| &w.rx_bytes, i),
                    slot(|w| &w.translated, i),
                )
            })
            .collect();
        let translated = |v6: bool| {
            rx_by_class
                .iter()
                .filter(|(c, ..)| c.is_v6() == v6 && c.direction() != "invalid")
                .map(|(.., t)| t)
                .sum::<u64>()
        };
        Totals {
            rx_packets: rx_by_class.iter().map(|(_, p, ..)| p).sum(),
            rx_bytes: rx_by_class.iter().map(|(_, _, b, _)| b).sum(),
            tx_packets: s(|w| &w.tx_packets),
            tx_bytes: s(|w| &w.tx_bytes),
            translated_6to4: translated(true),
            translated_4to6: translated(false),
            fragments_out: s(|w| &w.fragments_out),
            fragments_held: s(|w| &w.fragments_held),
            reassembled: s(|w| &w.reassembled),
            icmp_sent: s(|w| &w.icmp_sent),
            icmp_rate_limited: s(|w| &w.icmp_rate_limited),
            echo_answered: s(|w| &w.echo_answered),
            icmp_build_failed: s(|w| &w.icmp_build_failed),
            tun_read_errors: s(|w| &w.tun_read_errors),
            tun_write_errors: s(|w| &w.tun_write_errors),
            drops: DropReason::ALL
                .iter()
                .enumerate()
                .map(|(i, r)| (*r, all.iter().map(|w| w.drops[i].load(Relaxed)).sum()))
                .collect(),
            rx_by_class,
        }
    }

    pub fn drops_total(&self) -> u64 {
        self.drops.iter().map(|(_, n)| n).sum()
    }

    /// One line of `key=value` pairs; drops as `drop.REASON=N` (non-zero
    /// only). Stable format: tests and scripts parse it.
    pub fn render(&self) -> String {
        let mut s = format!(
            "rx_packets={} rx_bytes={} tx_packets={} tx_bytes={} translated_6to4={} \
             translated_4to6={} fragments_out={} fragments_held={} reassembled={} icmp_sent={} \
             icmp_rate_limited={} icmp_build_failed={} echo_answered={} tun_read_errors={} \
             tun_write_errors={} drops_total={}",
            self.rx_packets,
            self.rx_bytes,
            self.tx_packets,
            self.tx_bytes,
            self.translated_6to4,
            self.translated_4to6,
            self.fragments_out,
            self.fragments_held,
            self.reassembled,
            self.icmp_sent,
            self.icmp_rate_limited,
            self.icmp_build_failed,
            self.echo_answered,
            self.tun_read_errors,
            self.tun_write_errors,
            self.drops_total()
        );
        for (r, n) in &self.drops {
            if *n > 0 {
                let _ = write!(s, " drop.{}={n}", r.as_str());
            }
        }
        s
    }
}

/// What the reaper did (written by the reaper thread only, never on the
/// packet path): sweeps, evictions, sweep durations.
#[derive(Debug)]
pub struct ReaperStats {
    pub sweeps: AtomicU64,
    /// Expired sessions / bindings by protocol (tcp, udp, icmp).
    pub expired_sessions: [AtomicU64; 3],
    pub expired_bindings: [AtomicU64; 3],
    /// Kernel mode: expired 1:1 leases.
    pub expired_leases: AtomicU64,
    /// Held SYNs answered with Port Unreachable (RFC 6146 §3.5.2.2).
    pub held_syns_answered: AtomicU64,
    /// Wall time of each sweep, seconds.
    pub duration: prometheus_client::metrics::histogram::Histogram,
}

impl Default for ReaperStats {
    fn default() -> Self {
        ReaperStats {
            sweeps: AtomicU64::new(0),
            expired_sessions: std::array::from_fn(|_| AtomicU64::new(0)),
            expired_bindings: std::array::from_fn(|_| AtomicU64::new(0)),
            expired_leases: AtomicU64::new(0),
            held_syns_answered: AtomicU64::new(0),
            // 10 µs .. ~5 s
            duration: prometheus_client::metrics::histogram::Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(1e-5, 4.0, 10),
            ),
        }
    }
}

impl ReaperStats {
    pub fn record(&self, st: &nat64_core::state::SweepStats, took: std::time::Duration) {
        self.sweeps.fetch_add(1, Relaxed);
        for (i, (s, b)) in [
            (st.expired_sessions.tcp, st.expired_bindings.tcp),
            (st.expired_sessions.udp, st.expired_bindings.udp),
            (st.expired_sessions.icmp, st.expired_bindings.icmp),
        ]
        .into_iter()
        .enumerate()
        {
            self.expired_sessions[i].fetch_add(s as u64, Relaxed);
            self.expired_bindings[i].fetch_add(b as u64, Relaxed);
        }
        self.expired_leases
            .fetch_add(st.expired_leases as u64, Relaxed);
        self.held_syns_answered
            .fetch_add(st.icmp_answers.len() as u64, Relaxed);
        self.duration.observe(took.as_secs_f64());
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn every_reason_has_its_own_slot() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(reason_index(*r), i);
        }
    }

    #[test]
    fn classes_by_version_and_protocol() {
        let c = Class::of(&[0x60, 0, 0, 0, 0, 8, 58, 64]);
        assert_eq!(
            (c.direction(), c.proto(), c.is_v6()),
            ("6to4", "icmp", true)
        );
        let c = Class::of(&[0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6]);
        assert_eq!((c.direction(), c.proto()), ("4to6", "tcp"));
        let c = Class::of(&[0x60, 0, 0, 0, 0, 8, 44, 64]);
        assert_eq!(c.proto(), "other");
        let c = Class::of(&[]);
        assert_eq!((c.direction(), c.proto()), ("invalid", "other"));
        assert_eq!(Class::all().count(), N_CLASSES);
    }

    #[test]
    fn totals_render_names_reasons() {
        let a = Arc::new(Stats::default());
        let b = Arc::new(Stats::default());
        a.count_drop(DropReason::BadL4Header);
        b.count_drop(DropReason::BadL4Header);
        let c = a.count_rx(&[0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17]);
        a.count_translated(c);
        let t = Totals::sum(&[a, b]);
        assert_eq!(t.translated_4to6, 1);
        assert_eq!(t.rx_bytes, 10);
        assert_eq!(t.drops_total(), 2);
        let line = t.render();
        assert!(line.contains("drop.bad_l4_header=2"), "{line}");
        assert!(line.contains("rx_packets=1 "), "{line}");
    }
}
