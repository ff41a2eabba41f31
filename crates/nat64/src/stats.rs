//! Per-worker packet counters (plain atomics; a later metrics exporter reads
//! them). Every drop is counted under its [`DropReason`]: a drop is never
//! anonymous.

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

/// Counters of one worker (one TUN queue). Written only by that worker, so
/// the relaxed increments never contend.
#[derive(Debug)]
pub struct Stats {
    /// Packets read from the TUN.
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    /// Packets written to the TUN (translated, fragments, ICMP errors).
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
    /// Translated IPv6 → IPv4 / IPv4 → IPv6 (by the input's version).
    pub translated_6to4: AtomicU64,
    pub translated_4to6: AtomicU64,
    /// Extra packets produced by fragmenting oversized translations.
    pub fragments_out: AtomicU64,
    /// Translator-originated ICMP errors sent / suppressed by the limiter.
    pub icmp_sent: AtomicU64,
    pub icmp_rate_limited: AtomicU64,
    /// ICMP errors that could not be built (e.g. quoting a non-IP packet).
    pub icmp_build_failed: AtomicU64,
    /// TUN read/write errors (other than "would block").
    pub tun_read_errors: AtomicU64,
    pub tun_write_errors: AtomicU64,
    /// Drops by reason, indexed like [`DropReason::ALL`].
    pub drops: [AtomicU64; N_REASONS],
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            rx_packets: AtomicU64::new(0),
            rx_bytes: AtomicU64::new(0),
            tx_packets: AtomicU64::new(0),
            tx_bytes: AtomicU64::new(0),
            translated_6to4: AtomicU64::new(0),
            translated_4to6: AtomicU64::new(0),
            fragments_out: AtomicU64::new(0),
            icmp_sent: AtomicU64::new(0),
            icmp_rate_limited: AtomicU64::new(0),
            icmp_build_failed: AtomicU64::new(0),
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
    pub icmp_sent: u64,
    pub icmp_rate_limited: u64,
    pub icmp_build_failed: u64,
    pub tun_read_errors: u64,
    pub tun_write_errors: u64,
    pub drops: Vec<(DropReason, u64)>,
}

impl Totals {
    pub fn sum(all: &[Arc<Stats>]) -> Totals {
        let s = |f: fn(&Stats) -> &AtomicU64| all.iter().map(|w| f(w).load(Relaxed)).sum::<u64>();
        Totals {
            rx_packets: s(|w| &w.rx_packets),
            rx_bytes: s(|w| &w.rx_bytes),
            tx_packets: s(|w| &w.tx_packets),
            tx_bytes: s(|w| &w.tx_bytes),
            translated_6to4: s(|w| &w.translated_6to4),
            translated_4to6: s(|w| &w.translated_4to6),
            fragments_out: s(|w| &w.fragments_out),
            icmp_sent: s(|w| &w.icmp_sent),
            icmp_rate_limited: s(|w| &w.icmp_rate_limited),
            icmp_build_failed: s(|w| &w.icmp_build_failed),
            tun_read_errors: s(|w| &w.tun_read_errors),
            tun_write_errors: s(|w| &w.tun_write_errors),
            drops: DropReason::ALL
                .iter()
                .enumerate()
                .map(|(i, r)| (*r, all.iter().map(|w| w.drops[i].load(Relaxed)).sum()))
                .collect(),
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
             translated_4to6={} fragments_out={} icmp_sent={} icmp_rate_limited={} \
             icmp_build_failed={} tun_read_errors={} tun_write_errors={} drops_total={}",
            self.rx_packets,
            self.rx_bytes,
            self.tx_packets,
            self.tx_bytes,
            self.translated_6to4,
            self.translated_4to6,
            self.fragments_out,
            self.icmp_sent,
            self.icmp_rate_limited,
            self.icmp_build_failed,
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
    fn totals_render_names_reasons() {
        let a = Arc::new(Stats::default());
        let b = Arc::new(Stats::default());
        a.count_drop(DropReason::BadL4Header);
        b.count_drop(DropReason::BadL4Header);
        Stats::inc(&a.rx_packets);
        let t = Totals::sum(&[a, b]);
        assert_eq!(t.drops_total(), 2);
        let line = t.render();
        assert!(line.contains("drop.bad_l4_header=2"), "{line}");
        assert!(line.contains("rx_packets=1 "), "{line}");
    }
}
