//! One worker: read, translate in place, write (SPEC §7).

use super::Clock;
use crate::ratelimit::TokenBucket;
use crate::stats::{Class, Stats};
use nat64_core::time::Timestamp;
use nat64_core::verdict::{DropReason, IcmpError, Verdict};
use nat64_core::xlat::{self, Offload, HEADROOM, MAX_PACKET};
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tun_rs::{
    SyncDevice, VirtioNetHdr, VIRTIO_NET_HDR_GSO_TCPV4, VIRTIO_NET_HDR_GSO_TCPV6,
    VIRTIO_NET_HDR_LEN,
};

// linux/virtio_net.h values tun-rs does not export.
const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
const VIRTIO_NET_HDR_GSO_ECN: u8 = 0x80;

// The virtio-net header sits in the headroom in front of the packet, so a
// translated packet and its header go out in one write (ADR 0004).
const _: () = assert!(VIRTIO_NET_HDR_LEN <= HEADROOM - 48);

/// What turns one packet into a verdict: the RFC 6146 engine's worker in
/// the daemon. In-place: the translated packet is where the verdict says.
pub trait Processor: Send {
    fn process(
        &mut self,
        buf: &mut [u8],
        start: usize,
        len: usize,
        now: Timestamp,
        off: Offload,
    ) -> Verdict;
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
    // With offloads the kernel puts a virtio-net header before each packet.
    let vnet = dev.tcp_gso();
    let hdr_len = if vnet { VIRTIO_NET_HDR_LEN } else { 0 };
    while !shared.shutdown.load(Ordering::Relaxed) {
        let n = match dev.recv(&mut buf[HEADROOM - hdr_len..]) {
            Ok(n) if n >= hdr_len => n - hdr_len,
            Ok(_) => {
                stats.count_drop(DropReason::Truncated);
                continue;
            }
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
        let (off, vhdr) = if vnet {
            match VirtioNetHdr::decode(&buf[HEADROOM - hdr_len..HEADROOM]) {
                Ok(h) => (offload_of(&h), Some(h)),
                Err(_) => (Offload::NONE, None),
            }
        } else {
            (Offload::NONE, None)
        };
        if off.gso_size != 0 {
            Stats::inc(&stats.rx_gso);
        }
        let verdict = proc.process(&mut buf, HEADROOM, n, now, off);
        handle(
            &dev, &mut buf, &mut out, n, class, verdict, vhdr, now, &shared, &stats,
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
    vhdr: Option<VirtioNetHdr>,
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
            if buf.get(start..start.saturating_add(len)).is_none() {
                stats.count_drop(DropReason::NoBufferRoom);
                return;
            }
            stats.count_translated(class);
            match (fragment_mtu, vhdr) {
                (None, Some(h)) => send_with_vnet(dev, buf, start, len, in_len, &h, stats),
                (None, None) => send(dev, &buf[start..start + len], stats),
                (Some(mtu), _) => fragment(dev, &buf[start..start + len], mtu, out, stats),
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

/// What the translator must know of a virtio-net header.
fn offload_of(h: &VirtioNetHdr) -> Offload {
    let gso = h.gso_type & !VIRTIO_NET_HDR_GSO_ECN != VIRTIO_NET_HDR_GSO_NONE;
    Offload {
        gso_size: if gso { h.gso_size } else { 0 },
        csum_partial: h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0,
    }
}

/// Writes a translated packet with its virtio-net header rewritten for the
/// new family: TCPv4 ↔ TCPv6 GSO type, header length and checksum start
/// moved by the size change of the IP header (the transport header and the
/// payload did not move).
fn send_with_vnet(
    dev: &SyncDevice,
    buf: &mut [u8],
    start: usize,
    len: usize,
    in_len: usize,
    h: &VirtioNetHdr,
    stats: &Stats,
) {
    let mut h = *h;
    let delta = len as isize - in_len as isize;
    let shift = |v: u16| (v as isize + delta).clamp(0, u16::MAX as isize) as u16;
    let ecn = h.gso_type & VIRTIO_NET_HDR_GSO_ECN;
    let v6_out = buf.get(start).map(|b| b >> 4) == Some(6);
    match h.gso_type & !VIRTIO_NET_HDR_GSO_ECN {
        VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_TCPV6 => {
            h.gso_type = ecn
                | if v6_out {
                    VIRTIO_NET_HDR_GSO_TCPV6
                } else {
                    VIRTIO_NET_HDR_GSO_TCPV4
                };
        }
        _ => {}
    }
    if h.gso_type != VIRTIO_NET_HDR_GSO_NONE && h.hdr_len != 0 {
        h.hdr_len = shift(h.hdr_len);
    }
    if h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
        h.csum_start = shift(h.csum_start);
    }
    let at = start - VIRTIO_NET_HDR_LEN;
    if h.encode(&mut buf[at..start]).is_err() {
        stats.count_drop(DropReason::NoBufferRoom);
        return;
    }
    write_counted(dev, &buf[at..start + len], len, stats);
}

/// Sends a packet the translator built itself (ICMP error, fragment): on an
/// offload TUN it needs an empty virtio-net header in front.
pub fn send(dev: &SyncDevice, pkt: &[u8], stats: &Stats) {
    if !dev.tcp_gso() {
        return write_counted(dev, pkt, pkt.len(), stats);
    }
    let hdr = [0u8; VIRTIO_NET_HDR_LEN];
    let iov = [
        libc::iovec {
            iov_base: hdr.as_ptr() as *mut libc::c_void,
            iov_len: hdr.len(),
        },
        libc::iovec {
            iov_base: pkt.as_ptr() as *mut libc::c_void,
            iov_len: pkt.len(),
        },
    ];
    // SAFETY: two iovecs over live, initialised buffers; the kernel only
    // reads them during the call.
    let r = unsafe { libc::writev(dev.as_raw_fd(), iov.as_ptr(), 2) };
    if r < 0 {
        Stats::inc(&stats.tun_write_errors);
        tracing::debug!("TUN write error: {}", std::io::Error::last_os_error());
    } else {
        Stats::inc(&stats.tx_packets);
        Stats::add(&stats.tx_bytes, pkt.len() as u64);
    }
}

fn write_counted(dev: &SyncDevice, frame: &[u8], pkt_len: usize, stats: &Stats) {
    match dev.send(frame) {
        Ok(_) => {
            Stats::inc(&stats.tx_packets);
            Stats::add(&stats.tx_bytes, pkt_len as u64);
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
