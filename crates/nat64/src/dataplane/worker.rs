//! One worker: read, translate in place, write (SPEC §7).

use super::Clock;
use crate::ratelimit::TokenBucket;
use crate::stats::{Class, Stats};
use nat64_core::time::Timestamp;
use nat64_core::verdict::{DropReason, IcmpError, Verdict};
use nat64_core::xlat::{self, HEADROOM, MAX_PACKET};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tun_rs::SyncDevice;

/// What turns one packet into a verdict: the RFC 6146 engine's worker in
/// the daemon. In-place: the translated packet is where the verdict says.
pub trait Processor: Send {
    fn process(&mut self, buf: &mut [u8], start: usize, len: usize, now: Timestamp) -> Verdict;
}

/// State all workers share (read-mostly).
pub struct Shared {
    pub shutdown: AtomicBool,
    pub clock: Clock,
    pub limiter: TokenBucket,
    /// Source of translator-originated ICMPv6 errors (prefix||gateway-v4 or
    /// icmp-source-v6).
    pub icmp_src_v6: Ipv6Addr,
    /// Source of translator-originated ICMPv4 errors (gateway-v4).
    pub icmp_src_v4: Ipv4Addr,
    /// MTU of the TUN (limits the size of generated errors).
    pub tun_mtu: u16,
}

/// Poll timeout: how soon an idle worker notices shutdown.
const IDLE_POLL_MS: i32 = 200;

/// Runs until `shared.shutdown` is set.
pub fn run<P: Processor>(
    dev: Arc<SyncDevice>,
    mut proc: P,
    shared: Arc<Shared>,
    stats: Arc<Stats>,
) {
    let mut buf = vec![0u8; HEADROOM + MAX_PACKET];
    let mut out = vec![0u8; MAX_PACKET];
    let mut read_errors_logged = 0u32;
    while !shared.shutdown.load(Ordering::Relaxed) {
        let n = match dev.recv(&mut buf[HEADROOM..]) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if let Err(e) = super::tun::wait_readable(&dev, IDLE_POLL_MS) {
                    tracing::error!("poll on the TUN failed: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                Stats::inc(&stats.tun_read_errors);
                if read_errors_logged < 10 {
                    read_errors_logged += 1;
                    tracing::warn!("TUN read error: {e}");
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        };
        let class = stats.count_rx(&buf[HEADROOM..HEADROOM + n]);
        let now = shared.clock.now();
        let verdict = proc.process(&mut buf, HEADROOM, n, now);
        handle(
            &dev, &mut buf, &mut out, n, class, verdict, now, &shared, &stats,
        );
    }
}

#[allow(clippy::too_many_arguments)]
fn handle(
    dev: &SyncDevice,
    buf: &mut [u8],
    out: &mut [u8],
    in_len: usize,
    class: Class,
    verdict: Verdict,
    now: Timestamp,
    shared: &Shared,
    stats: &Stats,
) {
    match verdict {
        Verdict::Forward {
            start,
            len,
            fragment_mtu,
        } => {
            let Some(pkt) = buf.get(start..start.saturating_add(len)) else {
                stats.count_drop(DropReason::NoBufferRoom);
                return;
            };
            stats.count_translated(class);
            match fragment_mtu {
                None => send(dev, pkt, stats),
                Some(mtu) => fragment(dev, pkt, mtu, out, stats),
            }
        }
        Verdict::Icmp { error, reason } => {
            stats.count_drop(reason);
            if !shared.limiter.allow(now) {
                Stats::inc(&stats.icmp_rate_limited);
                return;
            }
            let orig = &buf[HEADROOM..HEADROOM + in_len];
            match build_icmp(orig, error, shared, out) {
                Ok(n) => {
                    Stats::inc(&stats.icmp_sent);
                    send(dev, &out[..n], stats);
                }
                Err(r) => {
                    Stats::inc(&stats.icmp_build_failed);
                    tracing::trace!("no ICMP error sent: {r}");
                }
            }
        }
        Verdict::Drop(r) => stats.count_drop(r),
    }
}

pub fn send(dev: &SyncDevice, pkt: &[u8], stats: &Stats) {
    match dev.send(pkt) {
        Ok(_) => {
            Stats::inc(&stats.tx_packets);
            Stats::add(&stats.tx_bytes, pkt.len() as u64);
        }
        Err(e) => {
            Stats::inc(&stats.tun_write_errors);
            tracing::debug!("TUN write error: {e}");
        }
    }
}

/// Emits the fragments of an oversized translated packet (xlat::frag).
fn fragment(dev: &SyncDevice, pkt: &[u8], mtu: u16, out: &mut [u8], stats: &Stats) {
    let mut emit = |f: &[u8]| {
        Stats::inc(&stats.fragments_out);
        send(dev, f, stats);
    };
    let r = match pkt.first().map(|b| b >> 4) {
        Some(6) => xlat::frag::fragment_v6(pkt, mtu, out, &mut emit),
        Some(4) => xlat::frag::fragment_v4(pkt, mtu, out, &mut emit),
        _ => Err(DropReason::BadVersion),
    };
    if let Err(r) = r {
        stats.count_drop(r);
    }
}

/// Builds a translator-originated ICMP error quoting `orig` into `out`
/// (xlat::icmp_gen): ICMPv6 from `prefix || gateway-v4` (or
/// icmp-source-v6), ICMPv4 from gateway-v4.
pub fn build_icmp(
    orig: &[u8],
    error: IcmpError,
    shared: &Shared,
    out: &mut [u8],
) -> Result<usize, DropReason> {
    let cap = usize::from(shared.tun_mtu).min(out.len());
    let out = &mut out[..cap];
    match orig.first().map(|b| b >> 4) {
        Some(6) => xlat::icmp_gen::icmpv6_error(orig, error, shared.icmp_src_v6, out),
        Some(4) => xlat::icmp_gen::icmpv4_error(orig, error, shared.icmp_src_v4, out),
        _ => Err(DropReason::BadVersion),
    }
}
