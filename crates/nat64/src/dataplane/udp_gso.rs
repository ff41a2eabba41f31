//! UDP trains: consecutive translated datagrams of one flow written to the
//! TUN as one UDP GSO (USO) super-packet (ADR 0006).
//!
//! The kernel then forwards one skb instead of one per datagram and cuts it
//! back into the original datagrams (same payloads, same order, each with
//! its own UDP length and checksum) where it has to: at the receiving
//! socket, or at an egress device without UDP segmentation offload. That is
//! what the kernel's own UDP GRO forwarding does for a NIC; a TUN has no
//! GRO, so the worker does it on its batch.
//!
//! A datagram joins the train before it only if the two would have been
//! indistinguishable after segmentation but for their payloads: same IP
//! version, addresses, ports, TOS/traffic class, flow label, TTL/hop limit
//! and DF, no IPv4 options or IPv6 extension headers, not a fragment, and a
//! payload no longer than the first one's (a shorter one ends the train).
//! Every datagram's UDP checksum is verified before it joins: the kernel
//! computes fresh checksums for the segments, which must not turn a datagram
//! damaged on the way into a valid one.

use nat64_core::wire::{self, checksum, l4::Ports};
use tun_rs::VirtioNetHdr;

const GSO_UDP_L4: u8 = 5; // VIRTIO_NET_HDR_GSO_UDP_L4
const F_NEEDS_CSUM: u8 = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
const UDP_HDR: usize = wire::l4::UDP_HEADER_LEN;
/// Offset of the UDP checksum in the UDP header.
const UDP_CSUM: usize = match wire::l4::checksum_offset(wire::proto::UDP) {
    Some(o) => o,
    None => 6,
};
/// Datagrams per train (the kernel accepts up to 128 segments per UDP GSO
/// packet; 64 keeps one train within one batch's worth of packets).
pub const MAX_SEGMENTS: u16 = 64;
/// Largest train (IPv4 total length and UDP length are 16-bit).
const MAX_LEN: usize = 65_535;

/// An open train: the frame being built starts at the first datagram's IP
/// header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Train {
    /// IP header length (20 or 40).
    ip_len: usize,
    /// Payload size of every datagram but the last (the GSO segment size).
    seg: usize,
    /// Datagrams in the train.
    pub segs: u16,
    /// Bytes of the frame so far (IP header .. last payload byte).
    pub len: usize,
    /// A shorter datagram joined: nothing may follow it.
    closed: bool,
}

/// IP header length if `pkt` is an unfragmented UDP datagram without IPv4
/// options or IPv6 extension headers, with a non-empty payload and a valid
/// UDP checksum. `partial`: the checksum field holds only the pseudo-header
/// sum (the kernel handed the datagram over with `NEEDS_CSUM`: nobody has
/// checksummed it yet, so there is nothing to verify).
fn plain_udp(pkt: &[u8], partial: bool) -> Option<usize> {
    let ip_len = match pkt.first()? >> 4 {
        4 => {
            let p = wire::ipv4::Packet::new_checked(pkt).ok()?;
            if p.header_len() != wire::ipv4::HEADER_LEN
                || p.protocol() != wire::proto::UDP
                || p.is_fragment()
                || usize::from(p.total_len()) != pkt.len()
            {
                return None;
            }
            wire::ipv4::HEADER_LEN
        }
        6 => {
            let p = wire::ipv6::Packet::new_checked(pkt).ok()?;
            if p.next_header() != wire::proto::UDP || p.total_len() != pkt.len() {
                return None;
            }
            wire::ipv6::HEADER_LEN
        }
        _ => return None,
    };
    let udp = pkt.get(ip_len..)?;
    let ports = Ports::new_unchecked(udp);
    if udp.len() <= UDP_HDR || usize::from(ports.udp_length()) != udp.len() {
        return None;
    }
    // RFC 768: a zero checksum means none (IPv4 only); nothing to verify,
    // but the segments would get one: keep such datagrams as they are.
    if ports.checksum_at(UDP_CSUM) == 0 {
        return None;
    }
    if partial {
        return Some(ip_len);
    }
    let pseudo = pseudo_header(pkt, ip_len, udp.len());
    (checksum::fold(checksum::accumulate(pseudo, udp)) == 0xffff).then_some(ip_len)
}

/// The UDP pseudo-header sum of `pkt` (IP header `ip_len` bytes long) for
/// a UDP length of `udp_len`.
fn pseudo_header(pkt: &[u8], ip_len: usize, udp_len: usize) -> u32 {
    if ip_len == wire::ipv4::HEADER_LEN {
        let p = wire::ipv4::Packet::new_unchecked(pkt);
        checksum::pseudo_header_v4(p.src_addr(), p.dst_addr(), wire::proto::UDP, udp_len as u16)
    } else {
        let p = wire::ipv6::Packet::new_unchecked(pkt);
        checksum::pseudo_header_v6(p.src_addr(), p.dst_addr(), wire::proto::UDP, udp_len as u32)
    }
}

/// The header bytes two datagrams of one train share (all but lengths,
/// IPv4 identification and checksums).
fn same_flow(ip_len: usize, a: &[u8], b: &[u8]) -> bool {
    let ports = ip_len..ip_len + 4;
    if a[ports.clone()] != b[ports] {
        return false;
    }
    if ip_len == wire::ipv4::HEADER_LEN {
        // version/IHL, TOS; flags (DF); TTL, protocol; addresses.
        a[..2] == b[..2]
            && a[6] & 0xe0 == b[6] & 0xe0
            && a[8..10] == b[8..10]
            && a[12..20] == b[12..20]
    } else {
        // version, traffic class, flow label; next header, hop limit; addresses.
        a[..4] == b[..4] && a[6..40] == b[6..40]
    }
}

impl Train {
    /// A train of one, if `pkt` may start one (`partial`: see
    /// [`plain_udp`]).
    pub fn start(pkt: &[u8], partial: bool) -> Option<Train> {
        let ip_len = plain_udp(pkt, partial)?;
        Some(Train {
            ip_len,
            seg: pkt.len() - ip_len - UDP_HDR,
            segs: 1,
            len: pkt.len(),
            closed: false,
        })
    }

    /// Appends `next`'s payload to the train whose frame is `frame[..self.len]`
    /// (`frame` runs to the end of its buffer) if `next` may join it.
    pub fn append(&mut self, frame: &mut [u8], next: &[u8], partial: bool) -> bool {
        if self.closed || self.segs >= MAX_SEGMENTS || next.first() != frame.first() {
            return false;
        }
        let Some(ip_len) = plain_udp(next, partial) else {
            return false;
        };
        let payload = &next[ip_len + UDP_HDR..];
        let end = self.len + payload.len();
        if ip_len != self.ip_len
            || payload.len() > self.seg
            || end > MAX_LEN
            || end > frame.len()
            || !same_flow(ip_len, &frame[..self.len], next)
        {
            return false;
        }
        frame[self.len..end].copy_from_slice(payload);
        self.len = end;
        self.segs += 1;
        self.closed = payload.len() < self.seg;
        true
    }

    /// Rewrites the headers of a train of two or more datagrams for one
    /// super-packet (IP and UDP lengths, IPv4 header checksum, the UDP
    /// checksum as the pseudo-header sum the kernel completes per segment)
    /// and returns its virtio-net header.
    pub fn finish(&self, frame: &mut [u8]) -> VirtioNetHdr {
        debug_assert!(self.segs >= 2);
        let f = &mut frame[..self.len];
        let udp_len = self.len - self.ip_len;
        if self.ip_len == wire::ipv4::HEADER_LEN {
            let mut p = wire::ipv4::Packet::new_unchecked(&mut *f);
            p.set_total_len(self.len as u16);
            p.fill_checksum();
        } else {
            wire::ipv6::Packet::new_unchecked(&mut *f).set_payload_len(udp_len as u16);
        }
        let pseudo = pseudo_header(f, self.ip_len, udp_len);
        let mut udp = Ports::new_unchecked(&mut f[self.ip_len..]);
        udp.set_udp_length(udp_len as u16);
        udp.set_checksum_at(UDP_CSUM, checksum::fold(pseudo));
        VirtioNetHdr {
            flags: F_NEEDS_CSUM,
            gso_type: GSO_UDP_L4,
            hdr_len: (self.ip_len + UDP_HDR) as u16,
            gso_size: self.seg as u16,
            csum_start: self.ip_len as u16,
            csum_offset: UDP_CSUM as u16,
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use etherparse::{PacketBuilder, UdpHeader};

    const S4: [u8; 4] = [203, 0, 113, 7];
    const D4: [u8; 4] = [198, 51, 100, 2];
    const S6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    const D6: [u8; 16] = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0x64, 0, 0, 0, 0, 0, 0, 198, 51, 100, 2,
    ];

    fn v4(ttl: u8, sport: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4(S4, D4, ttl)
            .udp(sport, 5201)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    fn v6(hop: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv6(S6, D6, hop)
            .udp(40000, 5201)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    /// What a device does with NEEDS_CSUM: one's-complement sum from
    /// csum_start to the end (the field holding the seed), complemented.
    /// Written out here so the check does not use the code under test.
    fn device_checksum(data: &[u8]) -> u16 {
        let mut sum: u64 = 0;
        for c in data.chunks(2) {
            sum += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    fn buffer(first: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 65_600];
        b[..first.len()].copy_from_slice(first);
        b
    }

    #[test]
    fn ipv4_train_is_one_valid_gso_packet() {
        let p: Vec<Vec<u8>> = (0..3u8).map(|i| vec![i; 64]).collect();
        let mut last = vec![9u8; 40]; // a shorter last datagram ends the train
        last[0] = 0xaa;
        let first = v4(63, 40000, &p[0]);
        let mut buf = buffer(&first);
        let mut t = Train::start(&first, false).expect("plain UDP starts a train");
        assert!(t.append(&mut buf, &v4(63, 40000, &p[1]), false));
        assert!(t.append(&mut buf, &v4(63, 40000, &p[2]), false));
        assert!(t.append(&mut buf, &v4(63, 40000, &last), false));
        assert!(
            !t.append(&mut buf, &v4(63, 40000, &p[0]), false),
            "closed by the short one"
        );
        assert_eq!(t.segs, 4);
        let h = t.finish(&mut buf);
        let f = &buf[..t.len];
        assert_eq!(t.len, 20 + 8 + 3 * 64 + 40);
        assert_eq!(
            (
                h.flags,
                h.gso_type,
                h.hdr_len,
                h.gso_size,
                h.csum_start,
                h.csum_offset
            ),
            (1, 5, 28, 64, 20, 6)
        );
        // etherparse reads it as one IPv4/UDP packet with a valid header
        // checksum and the lengths of the whole train.
        let ip = etherparse::Ipv4HeaderSlice::from_slice(f)
            .unwrap()
            .to_header();
        assert_eq!(ip.total_len, t.len as u16);
        assert_eq!(ip.header_checksum, ip.calc_header_checksum());
        let udp = UdpHeader::from_slice(&f[20..]).unwrap().0;
        assert_eq!(usize::from(udp.length), t.len - 20);
        let all: Vec<u8> = p.iter().flatten().chain(last.iter()).copied().collect();
        assert_eq!(&f[28..], &all[..]);
        // The device's checksum over the seed is the train's real checksum.
        let want = udp.calc_checksum_ipv4_raw(S4, D4, &all).unwrap();
        assert_eq!(device_checksum(&f[20..]), want);
    }

    #[test]
    fn ipv6_train_is_one_valid_gso_packet() {
        let p: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i ^ 0x5a; 1200]).collect();
        let first = v6(64, &p[0]);
        let mut buf = buffer(&first);
        let mut t = Train::start(&first, false).unwrap();
        for x in &p[1..] {
            assert!(t.append(&mut buf, &v6(64, x), false));
        }
        let h = t.finish(&mut buf);
        let f = &buf[..t.len];
        assert_eq!(
            (h.gso_type, h.hdr_len, h.gso_size, h.csum_start),
            (5, 48, 1200, 40)
        );
        let ip = etherparse::Ipv6HeaderSlice::from_slice(f)
            .unwrap()
            .to_header();
        assert_eq!(usize::from(ip.payload_length), t.len - 40);
        let udp = UdpHeader::from_slice(&f[40..]).unwrap().0;
        assert_eq!(usize::from(udp.length), t.len - 40);
        let all: Vec<u8> = p.iter().flatten().copied().collect();
        assert_eq!(&f[48..], &all[..]);
        let want = udp.calc_checksum_ipv6_raw(S6, D6, &all).unwrap();
        assert_eq!(device_checksum(&f[40..]), want);
    }

    #[test]
    fn only_the_same_flow_and_intact_datagrams_join() {
        let first = v4(63, 40000, &[1; 64]);
        let fresh = || (Train::start(&first, false).unwrap(), buffer(&first));
        let (mut t, mut b) = fresh();
        assert!(
            !t.append(&mut b, &v4(63, 40001, &[1; 64]), false),
            "other port"
        );
        assert!(
            !t.append(&mut b, &v4(62, 40000, &[1; 64]), false),
            "other TTL"
        );
        assert!(
            !t.append(&mut b, &v4(63, 40000, &[1; 65]), false),
            "longer payload"
        );
        assert!(!t.append(&mut b, &v6(63, &[1; 64]), false), "other family");
        let mut bad = v4(63, 40000, &[1; 64]);
        bad[40] ^= 1; // payload damaged: checksum no longer matches
        assert!(!t.append(&mut b, &bad, false), "bad checksum");
        // ... unless nobody has checksummed it yet (NEEDS_CSUM from the
        // kernel): then the field is a seed and the segments get their
        // checksums computed for the first time.
        let (mut t2, mut b2) = fresh();
        assert!(t2.append(&mut b2, &bad, true), "partial checksum");
        let mut df = v4(63, 40000, &[1; 64]);
        df[6] ^= 0x40; // DF flipped
        df[10..12].fill(0);
        let c = etherparse::Ipv4HeaderSlice::from_slice(&df)
            .unwrap()
            .to_header()
            .calc_header_checksum();
        df[10..12].copy_from_slice(&c.to_be_bytes());
        assert!(!t.append(&mut b, &df, false), "other DF");
        assert_eq!(t.segs, 1);
        // Not even a start: IPv4 fragments, options, no checksum, no payload.
        let mut frag = first.clone();
        frag[6] = 0x20; // MF
        assert!(Train::start(&frag, false).is_none());
        let mut nocsum = first.clone();
        nocsum[26..28].fill(0);
        assert!(Train::start(&nocsum, false).is_none());
        assert!(Train::start(&v4(63, 40000, &[]), false).is_none());
        let mut opts = Vec::new();
        let mut ip =
            etherparse::Ipv4Header::new(8 + 64, 63, etherparse::IpNumber::UDP, S4, D4).unwrap();
        ip.options = [1, 1, 1, 1][..].try_into().unwrap();
        PacketBuilder::ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
            .udp(40000, 5201)
            .write(&mut opts, &[1; 64])
            .unwrap();
        assert!(Train::start(&opts, false).is_none());
        // At most MAX_SEGMENTS datagrams.
        let (mut t, mut b) = fresh();
        while t.append(&mut b, &first, false) {}
        assert_eq!(t.segs, MAX_SEGMENTS);
    }
}
