//! Reassembly of fragmented ICMP / ICMPv6 messages
//! (`nat64_core::xlat::reassemble`): RFC 791 §3.2, RFC 8200 §4.5, RFC 5722.
//!
//! Fragments are built with `etherparse` (or written out byte by byte from
//! the RFC layouts), never with the module under test; every reassembled
//! packet is parsed with `etherparse` and its ICMP checksum verified by it.

use etherparse::{
    IcmpEchoHeader, Icmpv4Header, Icmpv4Type, Icmpv6Header, Icmpv6Type, IpEcn, IpFragOffset,
    IpNumber, Ipv4Header, Ipv4Options, Ipv6FragmentHeader, Ipv6Header, Ipv6RawExtHeader,
    SlicedPacket, TransportSlice, UdpHeader,
};
use nat64_core::time::Timestamp;
use nat64_core::xlat::reassemble::{is_icmp_fragment, Limits, Push, Pushed, Reassembler};
use nat64_core::DropReason;
use proptest::prelude::*;

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const SRC4: [u8; 4] = [192, 0, 2, 1];
const DST4: [u8; 4] = [198, 51, 100, 2];
/// 2001:db8:1::5
const SRC6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5];
/// 64:ff9b::198.51.100.2 (RFC 6052 Well-Known Prefix)
const DST6: [u8; 16] = [0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0, 198, 51, 100, 2];

/// Room for any reassembled packet (65535 + IPv6 fixed and Fragment header).
const OUT: usize = 65535 + 48;

const T0: Timestamp = Timestamp(1_000);

fn data(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

const ECHO: IcmpEchoHeader = IcmpEchoHeader { id: 0x1234, seq: 7 };

/// An ICMP Echo Request message with `n` data bytes (checksum by etherparse).
fn echo4(n: usize) -> Vec<u8> {
    let body = data(n);
    let mut v = Icmpv4Header::with_checksum(Icmpv4Type::EchoRequest(ECHO), &body)
        .to_bytes()
        .to_vec();
    v.extend_from_slice(&body);
    v
}

/// An ICMPv6 Echo Request message with `n` data bytes, checksum over the
/// RFC 4443 §2.3 pseudo-header of SRC6 → DST6 (by etherparse).
fn echo6(n: usize) -> Vec<u8> {
    let body = data(n);
    let mut v = Icmpv6Header::with_checksum(Icmpv6Type::EchoRequest(ECHO), SRC6, DST6, &body)
        .expect("icmpv6 length")
        .to_bytes()
        .to_vec();
    v.extend_from_slice(&body);
    v
}

/// IPv4 header template: SRC4 → DST4, protocol `proto`, identification.
fn hdr4(proto: IpNumber, ident: u16) -> Ipv4Header {
    let mut h = Ipv4Header::new(0, 64, proto, SRC4, DST4).expect("header");
    h.identification = ident;
    h
}

/// One IPv4 fragment of `h`: `chunk` at byte `offset`, MF = `more`.
fn frag4(h: &Ipv4Header, offset: usize, more: bool, chunk: &[u8]) -> Vec<u8> {
    let mut h = h.clone();
    h.fragment_offset = IpFragOffset::try_new((offset / 8) as u16).expect("offset");
    h.more_fragments = more;
    h.set_payload_len(chunk.len()).expect("length");
    h.header_checksum = h.calc_header_checksum();
    let mut v = h.to_bytes().to_vec();
    v.extend_from_slice(chunk);
    v
}

/// Splits `msg` into IPv4 fragments of `size` bytes (a multiple of 8).
fn split4(h: &Ipv4Header, msg: &[u8], size: usize) -> Vec<Vec<u8>> {
    let n = msg.len().div_ceil(size);
    msg.chunks(size)
        .enumerate()
        .map(|(i, c)| frag4(h, i * size, i + 1 < n, c))
        .collect()
}

/// An 8-byte Hop-by-Hop or Destination Options header (one PadN option,
/// RFC 8200 §4.2), by etherparse.
fn opts6(next: IpNumber) -> Vec<u8> {
    Ipv6RawExtHeader::new_raw(next, &[1, 4, 0, 0, 0, 0])
        .expect("options")
        .to_bytes()
        .to_vec()
}

/// How an IPv6 fragment is laid out before its data.
#[derive(Debug, Clone)]
struct Frag6 {
    src: [u8; 16],
    dst: [u8; 16],
    tc: u8,
    /// The fixed header's Next Header.
    first_nh: u8,
    /// Raw extension headers between the fixed header and the Fragment
    /// header (the last one's Next Header is 44).
    exts: Vec<u8>,
    /// The Fragment header's Next Header.
    frag_nh: u8,
    ident: u32,
}

impl Frag6 {
    fn icmp(ident: u32) -> Frag6 {
        Frag6 {
            src: SRC6,
            dst: DST6,
            tc: 0,
            first_nh: 44,
            exts: vec![],
            frag_nh: 58,
            ident,
        }
    }

    /// Fixed header, `exts`, Fragment header (etherparse), `chunk`.
    fn frag(&self, offset: usize, more: bool, chunk: &[u8]) -> Vec<u8> {
        let fh = Ipv6FragmentHeader::new(
            IpNumber(self.frag_nh),
            IpFragOffset::try_new((offset / 8) as u16).expect("offset"),
            more,
            self.ident,
        );
        let ip = Ipv6Header {
            traffic_class: self.tc,
            payload_length: (self.exts.len() + 8 + chunk.len()) as u16,
            next_header: IpNumber(self.first_nh),
            hop_limit: 64,
            source: self.src,
            destination: self.dst,
            ..Default::default()
        };
        let mut v = ip.to_bytes().to_vec();
        v.extend_from_slice(&self.exts);
        v.extend_from_slice(&fh.to_bytes());
        v.extend_from_slice(chunk);
        v
    }

    fn split(&self, msg: &[u8], size: usize) -> Vec<Vec<u8>> {
        let n = msg.len().div_ceil(size);
        msg.chunks(size)
            .enumerate()
            .map(|(i, c)| self.frag(i * size, i + 1 < n, c))
            .collect()
    }
}

/// Pushes every fragment at T0; all but the last must be held; returns the
/// reassembled packet.
#[track_caller]
fn reassemble_all(r: &mut Reassembler, frags: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0u8; OUT];
    for (i, f) in frags.iter().enumerate() {
        let p = r.push(f, T0, &mut out);
        assert_eq!((p.timed_out, p.evicted), (0, 0), "fragment {i}");
        if i + 1 < frags.len() {
            assert_eq!(p.push, Push::Held, "fragment {i}");
        } else {
            let Push::Complete { len } = p.push else {
                panic!("last fragment: {p:?}");
            };
            out.truncate(len);
        }
    }
    assert_eq!((r.held_datagrams(), r.held_bytes()), (0, 0));
    out
}

/// Checks a reassembled IPv4 packet with etherparse against the first
/// fragment's header `first` and the original ICMP message; returns the
/// parsed header.
#[track_caller]
fn check4(out: &[u8], first: &Ipv4Header, msg: &[u8]) -> Ipv4Header {
    let (h, rest) = Ipv4Header::from_slice(out).expect("etherparse: IPv4 header");
    assert_eq!(h.total_len as usize, out.len(), "Total Length");
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "header checksum"
    );
    assert!(!h.more_fragments, "MF = 0");
    assert!(!h.dont_fragment, "DF = 0");
    assert_eq!(h.fragment_offset.value(), 0, "offset 0");
    assert_eq!(h.identification, first.identification);
    assert_eq!(h.options, first.options, "first fragment's options kept");
    assert_eq!((h.time_to_live, h.dscp), (first.time_to_live, first.dscp));
    assert_eq!(rest, msg, "the original ICMP message");
    let s = SlicedPacket::from_ip(out).expect("etherparse: packet");
    let Some(TransportSlice::Icmpv4(icmp)) = &s.transport else {
        panic!("etherparse sees no whole ICMP message: {:?}", s.transport);
    };
    assert_eq!(icmp.slice(), msg);
    let sum = etherparse::checksum::Sum16BitWords::new().add_slice(msg);
    assert_eq!(sum.ones_complement(), 0, "ICMP checksum (RFC 792) verifies");
    h
}

/// Checks a reassembled IPv6 packet with etherparse: fixed header, the
/// first fragment's extension headers `exts`, an atomic Fragment header
/// (offset 0, M = 0, same Identification, Next Header 58), the original
/// ICMPv6 message with a valid checksum.
#[track_caller]
fn check6(out: &[u8], f: &Frag6, msg: &[u8]) -> Ipv6Header {
    let (h, rest) = Ipv6Header::from_slice(out).expect("etherparse: IPv6 header");
    assert_eq!(h.payload_length as usize + 40, out.len(), "Payload Length");
    assert_eq!(h.next_header, IpNumber(f.first_nh));
    assert_eq!((h.source, h.destination), (f.src, f.dst));
    assert_eq!(&rest[..f.exts.len()], &f.exts[..], "Unfragmentable Part");
    let (fh, body) = Ipv6FragmentHeader::from_slice(&rest[f.exts.len()..]).expect("Fragment");
    assert_eq!(fh.next_header, IpNumber::IPV6_ICMP);
    assert_eq!(fh.fragment_offset.value(), 0, "atomic fragment: offset 0");
    assert!(!fh.more_fragments, "atomic fragment: M = 0");
    assert_eq!(fh.identification, f.ident);
    assert_eq!(body, msg, "the original ICMPv6 message");
    let s = SlicedPacket::from_ip(out).expect("etherparse: packet");
    let Some(TransportSlice::Icmpv6(icmp)) = &s.transport else {
        panic!("etherparse sees no whole ICMPv6 message: {:?}", s.transport);
    };
    assert!(
        icmp.is_checksum_valid(f.src, f.dst),
        "ICMPv6 checksum (RFC 4443 §2.3) verifies"
    );
    h
}

fn dropped(reason: DropReason, also: u32) -> Push {
    Push::Dropped { reason, also }
}

#[track_caller]
fn push(r: &mut Reassembler, pkt: &[u8]) -> Push {
    let p = r.push(pkt, T0, &mut vec![0u8; OUT]);
    assert_eq!((p.timed_out, p.evicted), (0, 0));
    p.push
}

// ---------------------------------------------------------------------------
// In order, reverse order, headers kept
// ---------------------------------------------------------------------------

/// RFC 791 §3.2: fragments in order give back the datagram, with the first
/// fragment's header, MF = 0, offset 0 and Total Length of the whole.
#[test]
fn rfc791_3_2_in_order_fragments_reassemble() {
    let msg = echo4(3000); // ping -s 3000
    let h = hdr4(IpNumber::ICMP, 0x4242);
    let frags = split4(&h, &msg, 1480);
    assert_eq!(frags.len(), 3);
    let out = reassemble_all(&mut Reassembler::default(), &frags);
    check4(&out, &h, &msg);
    assert_eq!(out.len(), 20 + msg.len());
}

/// RFC 791 §3.2: fragments may arrive in any order.
#[test]
fn rfc791_3_2_reverse_order_fragments_reassemble() {
    let msg = echo4(3000);
    let h = hdr4(IpNumber::ICMP, 0x4243);
    let mut frags = split4(&h, &msg, 1000);
    frags.reverse();
    let out = reassemble_all(&mut Reassembler::default(), &frags);
    check4(&out, &h, &msg);
}

/// RFC 791 §3.2: the reassembled header is the first fragment's (options
/// kept: options with the copy flag clear appear in the first fragment
/// only), DF cleared, header checksum recomputed.
#[test]
fn rfc791_3_2_first_fragment_header_and_options_kept() {
    let msg = echo4(100);
    let mut first = hdr4(IpNumber::ICMP, 7);
    // NOP, NOP, NOP, EOL: an option area the later fragments do not carry.
    first.options = Ipv4Options::try_from(&[1u8, 1, 1, 0][..]).expect("options");
    first.dont_fragment = true;
    first.time_to_live = 33;
    let later = hdr4(IpNumber::ICMP, 7);
    let frags = [
        frag4(&later, 64, false, &msg[64..]),
        frag4(&first, 0, true, &msg[..32]),
        frag4(&later, 32, true, &msg[32..64]),
    ];
    let out = reassemble_all(&mut Reassembler::default(), &frags);
    let h = check4(&out, &first, &msg);
    assert_eq!(h.header_len(), 24);
}

/// RFC 8200 §4.5: fragments in order give back the original packet.
#[test]
fn rfc8200_4_5_in_order_fragments_reassemble() {
    let msg = echo6(3000);
    let f = Frag6::icmp(0xdead_beef);
    let frags = f.split(&msg, 1232);
    assert_eq!(frags.len(), 3);
    let out = reassemble_all(&mut Reassembler::default(), &frags);
    check6(&out, &f, &msg);
    assert_eq!(out.len(), 48 + msg.len());
}

/// RFC 8200 §4.5: fragments may arrive in any order (reverse, and middle
/// first).
#[test]
fn rfc8200_4_5_out_of_order_fragments_reassemble() {
    let msg = echo6(4000);
    let f = Frag6::icmp(1);
    let mut frags = f.split(&msg, 1000);
    frags.reverse();
    let out = reassemble_all(&mut Reassembler::default(), &frags);
    check6(&out, &f, &msg);

    let f = Frag6::icmp(2);
    let frags = f.split(&msg, 1000);
    let order = [2, 0, 4, 1, 3];
    let shuffled: Vec<_> = order.iter().map(|&i| frags[i].clone()).collect();
    let out = reassemble_all(&mut Reassembler::default(), &shuffled);
    check6(&out, &f, &msg);
}

/// RFC 8200 §4.5: "The Unfragmentable Part of the reassembled packet
/// consists of all headers up to, but not including, the Fragment header of
/// the first fragment packet" — here a Hop-by-Hop Options header, which the
/// later fragments do not carry.
#[test]
fn rfc8200_4_5_hop_by_hop_before_fragment_header_kept() {
    let msg = echo6(2000);
    let first = Frag6 {
        first_nh: 0,
        exts: opts6(IpNumber::IPV6_FRAGMENTATION_HEADER),
        ..Frag6::icmp(9)
    };
    let later = Frag6::icmp(9);
    let frags = [
        later.frag(1000, false, &msg[1000..]),
        first.frag(0, true, &msg[..1000]),
    ];
    let out = reassemble_all(&mut Reassembler::default(), &frags);
    check6(&out, &first, &msg);
}

/// RFC 8200 §4.5 with a Hop-by-Hop and a Destination Options header before
/// the Fragment header, on every fragment.
#[test]
fn rfc8200_4_5_destination_options_before_fragment_header_kept() {
    let msg = echo6(1500);
    let mut exts = opts6(IpNumber::IPV6_DESTINATION_OPTIONS);
    exts.extend(opts6(IpNumber::IPV6_FRAGMENTATION_HEADER));
    let f = Frag6 {
        first_nh: 0,
        exts,
        ..Frag6::icmp(10)
    };
    let mut frags = f.split(&msg, 504);
    frags.rotate_left(1);
    let out = reassemble_all(&mut Reassembler::default(), &frags);
    check6(&out, &f, &msg);
}

/// RFC 8200 §4.5: fragments belong together when source, destination and
/// Identification match; interleaved datagrams reassemble separately.
#[test]
fn rfc8200_4_5_key_is_source_destination_identification() {
    let msg_a = echo6(1000);
    let a = Frag6::icmp(5);
    let b = Frag6::icmp(6);
    let c = Frag6 {
        src: [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 6],
        ..Frag6::icmp(5)
    };
    let mut r = Reassembler::default();
    let mut out = vec![0u8; OUT];
    let fa = a.split(&msg_a, 512);
    let fb = b.split(&msg_a, 512);
    let fc = c.split(&msg_a, 512);
    for f in [&fa[0], &fb[0], &fc[1]] {
        assert_eq!(r.push(f, T0, &mut out).push, Push::Held);
    }
    assert_eq!(r.held_datagrams(), 3);
    let Push::Complete { len } = r.push(&fa[1], T0, &mut out).push else {
        panic!("a completes");
    };
    check6(&out[..len], &a, &msg_a);
    assert_eq!(r.held_datagrams(), 2);
}

/// RFC 791 §3.2: the IPv4 key is source, destination, protocol and
/// identification.
#[test]
fn rfc791_3_2_key_includes_identification() {
    let msg = echo4(1000);
    let h1 = hdr4(IpNumber::ICMP, 1);
    let h2 = hdr4(IpNumber::ICMP, 2);
    let f1 = split4(&h1, &msg, 512);
    let f2 = split4(&h2, &msg, 512);
    let mut r = Reassembler::default();
    assert_eq!(push(&mut r, &f1[0]), Push::Held);
    assert_eq!(push(&mut r, &f2[1]), Push::Held);
    assert_eq!(r.held_datagrams(), 2);
    let mut out = vec![0u8; OUT];
    let Push::Complete { len } = r.push(&f2[0], T0, &mut out).push else {
        panic!("2 completes");
    };
    check4(&out[..len], &h2, &msg);
    assert_eq!(r.held_datagrams(), 1);
}

// ---------------------------------------------------------------------------
// RFC 5722: overlaps and inconsistencies
// ---------------------------------------------------------------------------

/// RFC 5722 §4 / RFC 8200 §4.5: an overlapping fragment abandons the whole
/// datagram; the fragments received for it are discarded.
#[test]
fn rfc5722_4_overlapping_fragment_drops_datagram() {
    let msg = echo6(64);
    let f = Frag6::icmp(77);
    let mut r = Reassembler::default();
    assert_eq!(push(&mut r, &f.frag(0, true, &msg[..16])), Push::Held);
    assert_eq!(push(&mut r, &f.frag(32, true, &msg[32..48])), Push::Held);
    assert_eq!(
        push(&mut r, &f.frag(8, true, &msg[8..24])),
        dropped(DropReason::ReassemblyOverlap, 2)
    );
    assert_eq!((r.held_datagrams(), r.held_bytes()), (0, 0));
    // What comes later starts afresh and cannot complete with the old data.
    assert_eq!(push(&mut r, &f.frag(48, false, &msg[48..])), Push::Held);
    assert_eq!(r.held_datagrams(), 1);
}

/// RFC 5722 applied to IPv4 against teardrop: a fragment reaching back into
/// the previous one drops the datagram.
#[test]
fn rfc5722_ipv4_teardrop_overlap_dropped() {
    let msg = echo4(100);
    let h = hdr4(IpNumber::ICMP, 0x7ea7);
    let mut r = Reassembler::default();
    assert_eq!(push(&mut r, &frag4(&h, 0, true, &msg[..40])), Push::Held);
    // Starts at 24, inside the first fragment, and ends before it.
    assert_eq!(
        push(&mut r, &frag4(&h, 24, false, &msg[24..30])),
        dropped(DropReason::ReassemblyOverlap, 1)
    );
    assert_eq!(r.held_datagrams(), 0);
}

/// RFC 5722 §4: "an implementation may choose to detect this case and drop
/// exact duplicate fragments while keeping the other fragments": an exact
/// duplicate is ignored (Held, nothing counted, nothing stored).
#[test]
fn rfc5722_4_exact_duplicate_ignored() {
    let msg = echo4(2000);
    let h = hdr4(IpNumber::ICMP, 3);
    let frags = split4(&h, &msg, 1000);
    let mut r = Reassembler::default();
    assert_eq!(push(&mut r, &frags[1]), Push::Held);
    let bytes = r.held_bytes();
    assert_eq!(push(&mut r, &frags[1]), Push::Held);
    assert_eq!(r.held_bytes(), bytes, "duplicate not stored");
    assert_eq!(push(&mut r, &frags[2]), Push::Held);
    assert_eq!(push(&mut r, &frags[2]), Push::Held, "last duplicated");
    let mut out = vec![0u8; OUT];
    let Push::Complete { len } = r.push(&frags[0], T0, &mut out).push else {
        panic!("completes");
    };
    check4(&out[..len], &h, &msg);
}

/// RFC 5722: the same range with different bytes is not a duplicate.
#[test]
fn rfc5722_same_range_different_bytes_is_overlap() {
    let msg = echo6(100);
    let f = Frag6::icmp(4);
    let mut r = Reassembler::default();
    assert_eq!(push(&mut r, &f.frag(8, true, &msg[8..24])), Push::Held);
    let mut other = msg[8..24].to_vec();
    other[3] ^= 0xff;
    assert_eq!(
        push(&mut r, &f.frag(8, true, &other)),
        dropped(DropReason::ReassemblyOverlap, 1)
    );
}

/// RFC 791 §3.2 / RFC 8200 §4.5: a second last fragment with a different
/// end contradicts the first one: the datagram is dropped.
#[test]
fn rfc8200_4_5_second_last_fragment_with_different_end_dropped() {
    let msg = echo6(100);
    let f = Frag6::icmp(11);
    let mut r = Reassembler::default();
    assert_eq!(push(&mut r, &f.frag(64, false, &msg[64..])), Push::Held);
    assert_eq!(
        push(&mut r, &f.frag(72, false, &msg[72..100])),
        dropped(DropReason::ReassemblyOverlap, 1)
    );
}

/// Data beyond the end set by the last fragment drops the datagram, in
/// either order; the same range sent once as last and once as non-last
/// fragment is a contradiction, not a duplicate.
#[test]
fn rfc8200_4_5_data_beyond_known_end_dropped() {
    let msg = echo6(100); // 108 bytes
    let f = Frag6::icmp(12);
    let mut r = Reassembler::default();
    assert_eq!(push(&mut r, &f.frag(64, false, &msg[64..])), Push::Held);
    assert_eq!(
        push(&mut r, &f.frag(112, true, &[0; 8])),
        dropped(DropReason::ReassemblyOverlap, 1)
    );
    // Held data beyond the end a later last fragment claims.
    assert_eq!(push(&mut r, &f.frag(64, true, &msg[64..96])), Push::Held);
    assert_eq!(
        push(&mut r, &f.frag(8, false, &msg[8..40])),
        dropped(DropReason::ReassemblyOverlap, 1)
    );
    // Same range and bytes, M = 0 then M = 1, and M = 1 then M = 0.
    let h = hdr4(IpNumber::ICMP, 12);
    assert_eq!(push(&mut r, &frag4(&h, 16, false, &[1; 16])), Push::Held);
    assert_eq!(
        push(&mut r, &frag4(&h, 16, true, &[1; 16])),
        dropped(DropReason::ReassemblyOverlap, 1)
    );
    assert_eq!(push(&mut r, &frag4(&h, 16, true, &[1; 16])), Push::Held);
    assert_eq!(
        push(&mut r, &frag4(&h, 16, false, &[1; 16])),
        dropped(DropReason::ReassemblyOverlap, 1)
    );
    assert_eq!(r.held_datagrams(), 0);
}

/// RFC 8200 §4.5: "If the length of a fragment ... is not a multiple of 8
/// octets and the M flag of that fragment is 1, then that fragment must be
/// discarded" — only that fragment; the datagram still completes.
#[test]
fn rfc8200_4_5_non_last_fragment_not_multiple_of_8_discarded() {
    let msg = echo6(100);
    let f = Frag6::icmp(13);
    let mut r = Reassembler::default();
    assert_eq!(push(&mut r, &f.frag(0, true, &msg[..48])), Push::Held);
    assert_eq!(
        push(&mut r, &f.frag(48, true, &msg[48..60])),
        dropped(DropReason::BadLength, 0)
    );
    assert_eq!(r.held_datagrams(), 1);
    let mut out = vec![0u8; OUT];
    let Push::Complete { len } = r.push(&f.frag(48, false, &msg[48..]), T0, &mut out).push else {
        panic!("completes");
    };
    check6(&out[..len], &f, &msg);
    // RFC 791 §3.2 likewise: 8-octet units.
    let h = hdr4(IpNumber::ICMP, 13);
    assert_eq!(
        push(&mut r, &frag4(&h, 0, true, &[0; 12])),
        dropped(DropReason::BadLength, 0)
    );
}

// ---------------------------------------------------------------------------
// Timeout
// ---------------------------------------------------------------------------

fn limits_timeout(ms: u64) -> Limits {
    Limits {
        timeout_ms: ms,
        ..Limits::default()
    }
}

/// RFC 8200 §4.5: "If insufficient fragments are received to complete
/// reassembly of a packet within [the timeout] of the reception of the
/// first-arriving fragment of that packet, reassembly of that packet must
/// be abandoned" — by `expire`.
#[test]
fn rfc8200_4_5_timeout_via_expire() {
    let msg = echo6(2000);
    let f = Frag6::icmp(20);
    let frags = f.split(&msg, 504);
    let mut r = Reassembler::new(limits_timeout(500));
    let mut out = vec![0u8; OUT];
    assert_eq!(r.push(&frags[0], T0, &mut out).push, Push::Held);
    assert_eq!(
        r.push(&frags[1], Timestamp(1_400), &mut out).push,
        Push::Held
    );
    // The clock runs from the first fragment, not the latest.
    assert_eq!(r.expire(Timestamp(1_499)), 0);
    assert_eq!(r.expire(Timestamp(1_500)), 2);
    assert_eq!((r.held_datagrams(), r.held_bytes()), (0, 0));
    assert_eq!(r.expire(Timestamp(9_999)), 0);
}

/// RFC 8200 §4.5 timeout applied lazily by `push`: the expired datagram's
/// fragments are reported in `timed_out`; a late fragment starts anew.
#[test]
fn rfc8200_4_5_timeout_lazily_on_push() {
    let msg = echo4(2000);
    let h = hdr4(IpNumber::ICMP, 21);
    let frags = split4(&h, &msg, 512);
    let mut r = Reassembler::new(limits_timeout(500));
    let mut out = vec![0u8; OUT];
    assert_eq!(r.push(&frags[0], T0, &mut out).push, Push::Held);
    assert_eq!(r.push(&frags[1], T0, &mut out).push, Push::Held);
    let p = r.push(&frags[2], Timestamp(1_500), &mut out);
    assert_eq!(
        p,
        Pushed {
            push: Push::Held,
            timed_out: 2,
            evicted: 0
        }
    );
    assert_eq!(
        p.drops().collect::<Vec<_>>(),
        [(DropReason::ReassemblyTimeout, 2)]
    );
    assert_eq!(r.held_datagrams(), 1);
    // The rest cannot complete the datagram without the first two.
    assert_eq!(
        r.push(&frags[3], Timestamp(1_600), &mut out).push,
        Push::Held
    );
    assert_eq!(r.held_bytes(), msg.len() - 1024);
}

// ---------------------------------------------------------------------------
// Limits
// ---------------------------------------------------------------------------

/// Bounded state: past `max_datagrams` the oldest datagram is evicted and
/// its fragments reported in `evicted` (ReassemblyLimit).
#[test]
fn limit_max_datagrams_evicts_oldest() {
    let msg = echo6(1000);
    let limits = Limits {
        max_datagrams: 2,
        ..Limits::default()
    };
    let mut r = Reassembler::new(limits);
    let mut out = vec![0u8; OUT];
    let fs: Vec<_> = (0..3)
        .map(|i| Frag6::icmp(100 + i).split(&msg, 512))
        .collect();
    assert_eq!(r.push(&fs[0][0], T0, &mut out).push, Push::Held);
    assert_eq!(
        r.push(&fs[1][0], Timestamp(1_001), &mut out).push,
        Push::Held
    );
    let p = r.push(&fs[2][0], Timestamp(1_002), &mut out);
    assert_eq!((p.push, p.evicted), (Push::Held, 1));
    assert_eq!(
        p.drops().collect::<Vec<_>>(),
        [(DropReason::ReassemblyLimit, 1)]
    );
    assert_eq!(r.held_datagrams(), 2);
    // The youngest two still complete.
    for i in [1, 2] {
        let Push::Complete { len } = r.push(&fs[i][1], T0, &mut out).push else {
            panic!("{i} completes");
        };
        check6(&out[..len], &Frag6::icmp(100 + i as u32), &msg);
    }
    // The oldest was forgotten: its second fragment is held anew.
    assert_eq!(r.push(&fs[0][1], T0, &mut out).push, Push::Held);
}

/// Bounded memory: past `max_bytes` the oldest datagram is evicted; a
/// datagram that alone exceeds the limit is refused.
#[test]
fn limit_max_bytes_evicts_oldest_then_refuses() {
    let msg = echo4(2000);
    let limits = Limits {
        max_bytes: 3000,
        ..Limits::default()
    };
    let mut r = Reassembler::new(limits);
    let mut out = vec![0u8; OUT];
    let a = split4(&hdr4(IpNumber::ICMP, 1), &msg, 1000);
    let b = split4(&hdr4(IpNumber::ICMP, 2), &msg, 1000);
    assert_eq!(r.push(&a[1], T0, &mut out).push, Push::Held);
    assert_eq!(r.push(&a[2], T0, &mut out).push, Push::Held);
    assert_eq!(r.push(&b[1], T0, &mut out).push, Push::Held);
    assert_eq!(r.held_bytes(), 1000 + 8 + 1000);
    // b's first fragment brings 1000 bytes and its 20-byte header: 3028.
    let p = r.push(&b[0], T0, &mut out);
    assert_eq!((p.push, p.evicted), (Push::Held, 2), "a evicted");
    assert_eq!((r.held_datagrams(), r.held_bytes()), (1, 2020));
    let Push::Complete { len } = r.push(&b[2], T0, &mut out).push else {
        panic!("b completes");
    };
    check4(&out[..len], &hdr4(IpNumber::ICMP, 2), &msg);
    // One datagram of 4008 bytes (+ header) cannot fit in 3000.
    let big = echo4(4000);
    let c = split4(&hdr4(IpNumber::ICMP, 3), &big, 1000);
    for f in &c[1..4] {
        assert_eq!(r.push(f, T0, &mut out).push, Push::Held);
    }
    assert_eq!(r.held_bytes(), 3000);
    assert_eq!(
        r.push(&c[0], T0, &mut out).push,
        dropped(DropReason::ReassemblyLimit, 3)
    );
    assert_eq!((r.held_datagrams(), r.held_bytes()), (0, 0));
}

/// A zero limit refuses every fragment.
#[test]
fn limit_zero_refuses() {
    let f = Frag6::icmp(1).frag(0, true, &echo6(100)[..64]);
    let mut out = vec![0u8; OUT];
    for limits in [
        Limits {
            max_datagrams: 0,
            ..Limits::default()
        },
        Limits {
            max_bytes: 0,
            ..Limits::default()
        },
    ] {
        let mut r = Reassembler::new(limits);
        assert_eq!(
            r.push(&f, T0, &mut out).push,
            dropped(DropReason::ReassemblyLimit, 0)
        );
        assert_eq!(r.held_datagrams(), 0);
    }
}

// ---------------------------------------------------------------------------
// Too big
// ---------------------------------------------------------------------------

/// RFC 8200 §4.5: "If the length and offset of a fragment are such that the
/// Payload Length of the packet reassembled from that fragment would exceed
/// 65,535 octets, then that fragment must be discarded".
#[test]
fn rfc8200_4_5_payload_length_over_65535_too_big() {
    let f = Frag6::icmp(30);
    let mut r = Reassembler::default();
    assert_eq!(
        push(&mut r, &f.frag(65528, false, &[0; 16])),
        dropped(DropReason::ReassemblyTooBig, 0)
    );
    // 8 (Fragment header) + 65520 + 7 = 65535 is the largest allowed.
    assert_eq!(push(&mut r, &f.frag(65520, false, &[0; 7])), Push::Held);
    assert_eq!(r.held_bytes(), 7, "no allocation for the offset");
}

/// RFC 791 §3.1: Total Length is 16 bits; a reassembly beyond 65535 bytes
/// is dropped, per fragment or, when the first fragment's longer header is
/// what tips it over, at completion with the whole datagram.
#[test]
fn rfc791_total_length_over_65535_too_big() {
    let h = hdr4(IpNumber::ICMP, 31);
    let mut r = Reassembler::default();
    assert_eq!(
        push(&mut r, &frag4(&h, 65528, false, &[0; 8])),
        dropped(DropReason::ReassemblyTooBig, 0)
    );
    let mut first = h.clone();
    first.options = Ipv4Options::try_from(&[1u8, 1, 1, 0][..]).expect("options");
    let body = vec![0u8; 65535 - 20 - 8];
    assert_eq!(push(&mut r, &frag4(&h, 8, false, &body)), Push::Held);
    assert_eq!(
        push(&mut r, &frag4(&first, 0, true, &[0; 8])),
        dropped(DropReason::ReassemblyTooBig, 1)
    );
    assert_eq!(r.held_datagrams(), 0);
    // Without options it is exactly 65535.
    assert_eq!(push(&mut r, &frag4(&h, 8, false, &body)), Push::Held);
    let mut out = vec![0u8; OUT];
    assert_eq!(
        r.push(&frag4(&h, 0, true, &[0; 8]), T0, &mut out).push,
        Push::Complete { len: 65535 }
    );
}

/// An output buffer too small for the datagram drops it as too big.
#[test]
fn output_buffer_too_small_is_too_big() {
    let msg = echo6(1000);
    let f = Frag6::icmp(32);
    let frags = f.split(&msg, 256);
    let mut r = Reassembler::default();
    let mut out = vec![0u8; 1000];
    for fr in &frags[..3] {
        assert_eq!(r.push(fr, T0, &mut out).push, Push::Held);
    }
    assert_eq!(
        r.push(&frags[3], T0, &mut out).push,
        dropped(DropReason::ReassemblyTooBig, 3)
    );
    assert_eq!((r.held_datagrams(), r.held_bytes()), (0, 0));
}

// ---------------------------------------------------------------------------
// What is not ours, and malformed input
// ---------------------------------------------------------------------------

/// Only ICMP (IPv4 protocol 1) and ICMPv6 (Fragment header Next Header 58)
/// fragments are taken; unfragmented packets and RFC 6946 atomic fragments
/// go to the translator as usual.
#[test]
fn non_icmp_fragments_ignored() {
    let udp = {
        let h = UdpHeader {
            source_port: 1,
            destination_port: 2,
            length: 108,
            checksum: 0,
        };
        let mut v = h.to_bytes().to_vec();
        v.extend(data(100));
        v
    };
    let icmp4_whole = {
        let mut h = hdr4(IpNumber::ICMP, 40);
        let m = echo4(50);
        h.set_payload_len(m.len()).expect("len");
        h.header_checksum = h.calc_header_checksum();
        let mut v = h.to_bytes().to_vec();
        v.extend(m);
        v
    };
    let icmp6_whole = {
        let m = echo6(50);
        let h = Ipv6Header {
            payload_length: m.len() as u16,
            next_header: IpNumber::IPV6_ICMP,
            hop_limit: 64,
            source: SRC6,
            destination: DST6,
            ..Default::default()
        };
        let mut v = h.to_bytes().to_vec();
        v.extend(m);
        v
    };
    let udp6 = Frag6 {
        frag_nh: 17,
        ..Frag6::icmp(41)
    };
    let not_ours = [
        frag4(&hdr4(IpNumber::UDP, 40), 0, true, &udp[..64]),
        frag4(&hdr4(IpNumber::UDP, 40), 64, false, &udp[64..]),
        udp6.frag(0, true, &udp[..64]),
        udp6.frag(64, false, &udp[64..]),
        icmp4_whole,
        icmp6_whole,
        Frag6::icmp(42).frag(0, false, &echo6(50)),
    ];
    let mut r = Reassembler::default();
    for (i, p) in not_ours.iter().enumerate() {
        assert!(!is_icmp_fragment(p), "packet {i}");
        assert_eq!(push(&mut r, p), Push::NotIcmpFragment, "packet {i}");
    }
    assert_eq!(r.held_datagrams(), 0);
    let ours = [
        frag4(&hdr4(IpNumber::ICMP, 43), 0, true, &echo4(50)[..16]),
        frag4(&hdr4(IpNumber::ICMP, 43), 16, false, &[1; 9]),
        Frag6::icmp(44).frag(0, true, &echo6(50)[..16]),
        Frag6::icmp(44).frag(16, false, &[1; 9]),
    ];
    for (i, p) in ours.iter().enumerate() {
        assert!(is_icmp_fragment(p), "fragment {i}");
    }
}

/// Malformed packets are dropped with the reason the translator would give,
/// not passed on as "not a fragment".
#[test]
fn malformed_packets_dropped_with_reason() {
    let good4 = frag4(&hdr4(IpNumber::ICMP, 50), 0, true, &[0; 16]);
    let good6 = Frag6::icmp(50).frag(0, true, &[0; 16]);
    let mut bad_csum = good4.clone();
    bad_csum[8] ^= 1; // TTL changed, checksum not
    let mut bad_ihl = good4.clone();
    bad_ihl[0] = 0x44;
    let mut chain = good6.clone();
    chain[6] = 60; // Destination Options claiming 8 × 255 bytes
    chain[41] = 255;
    let empty_frag = Frag6::icmp(51).frag(8, true, &[]);
    let cases: [(&[u8], DropReason); 10] = [
        (&[], DropReason::Truncated),
        (&[0x50; 60], DropReason::BadVersion),
        (&good4[..19], DropReason::Truncated),
        (&good4[..30], DropReason::BadLength),
        (&bad_ihl, DropReason::BadIpv4HeaderLength),
        (&bad_csum, DropReason::BadIpv4Checksum),
        (&good6[..39], DropReason::Truncated),
        (&good6[..50], DropReason::BadLength),
        (&chain, DropReason::BadExtensionHeader),
        (&empty_frag, DropReason::BadLength),
    ];
    let mut r = Reassembler::default();
    for (i, (pkt, reason)) in cases.iter().enumerate() {
        assert_eq!(push(&mut r, pkt), dropped(*reason, 0), "case {i}");
    }
    assert_eq!(r.held_datagrams(), 0);
}

/// RFC 3168 §5.3: Congestion Experienced on any fragment is carried by the
/// reassembled packet.
#[test]
fn rfc3168_5_3_ce_on_any_fragment_sets_ce() {
    let msg = echo4(100);
    let mut h = hdr4(IpNumber::ICMP, 60);
    h.ecn = IpEcn::Ect0;
    let mut ce = h.clone();
    ce.ecn = IpEcn::CongestionExperienced;
    let frags = [
        frag4(&h, 0, true, &msg[..64]),
        frag4(&ce, 64, false, &msg[64..]),
    ];
    let out = reassemble_all(&mut Reassembler::default(), &frags);
    let got = check4(&out, &h, &msg);
    assert_eq!(got.ecn, IpEcn::CongestionExperienced);

    let msg = echo6(100);
    let f = Frag6 {
        tc: 0b1011_1010, // DSCP 46, ECT(0)
        ..Frag6::icmp(61)
    };
    let g = Frag6 {
        tc: 0b1011_1011, // CE
        ..f.clone()
    };
    let frags = [g.frag(64, false, &msg[64..]), f.frag(0, true, &msg[..64])];
    let out = reassemble_all(&mut Reassembler::default(), &frags);
    let got = check6(&out, &f, &msg);
    assert_eq!(got.traffic_class, 0b1011_1011);
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// An ICMP echo of `len` bytes cut into `size`-byte fragments, IPv4 or IPv6.
fn fragments(v6: bool, len: usize, size: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    if v6 {
        let msg = echo6(len);
        let frags = Frag6::icmp(0x0bad_cafe).split(&msg, size);
        (msg, frags)
    } else {
        let msg = echo4(len);
        let frags = split4(&hdr4(IpNumber::ICMP, 0xcafe), &msg, size);
        (msg, frags)
    }
}

/// (IPv6?, echo data length, fragment size, arrival order), with at least
/// two fragments.
fn permuted_fragments() -> impl Strategy<Value = (bool, usize, usize, Vec<usize>)> {
    (any::<bool>(), 1usize..6000)
        .prop_flat_map(|(v6, len)| {
            // size < len + 8 (the message length): at least two fragments.
            let max_units = len.div_ceil(8).min(190);
            (Just(v6), Just(len), 1..=max_units)
        })
        .prop_flat_map(|(v6, len, units)| {
            let size = units * 8;
            let n = (len + 8).div_ceil(size);
            (
                Just(v6),
                Just(len),
                Just(size),
                Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
            )
        })
}

fn small_limits() -> Limits {
    Limits {
        max_datagrams: 4,
        max_bytes: 4096,
        timeout_ms: 50,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// RFC 8200 §4.5 / RFC 791 §3.2: any arrival order of the fragments of
    /// an ICMP echo gives back exactly the original message, with a valid
    /// ICMP checksum (checked by etherparse).
    #[test]
    fn rfc8200_4_5_any_fragment_order_reassembles((v6, len, size, order) in permuted_fragments()) {
        let (msg, frags) = fragments(v6, len, size);
        prop_assert_eq!(frags.len(), order.len());
        let shuffled: Vec<_> = order.iter().map(|&i| frags[i].clone()).collect();
        let mut r = Reassembler::default();
        let out = reassemble_all(&mut r, &shuffled);
        if v6 {
            check6(&out, &Frag6::icmp(0x0bad_cafe), &msg);
        } else {
            check4(&out, &hdr4(IpNumber::ICMP, 0xcafe), &msg);
        }
    }

    /// RFC 5722: fragments carved anywhere from the original message (true
    /// fragments in random order, mixed with random duplicates and
    /// overlapping pieces of the same bytes) either complete with exactly
    /// the original message or are dropped; never a wrong packet.
    #[test]
    fn rfc5722_random_pieces_complete_only_as_original(
        (v6, len, size, order) in permuted_fragments(),
        extra in proptest::collection::vec((any::<usize>(), 1usize..64, any::<bool>(), any::<usize>()), 0..8),
    ) {
        let (msg, frags) = fragments(v6, len, size);
        let mut pkts: Vec<Vec<u8>> = order.iter().map(|&i| frags[i].clone()).collect();
        let aligned = msg.len() / 8 * 8;
        for (at, units, last, pos) in extra {
            let off = (at % (msg.len() / 8).max(1)) * 8;
            let chunk = if last {
                &msg[off..]
            } else {
                &msg[off..(off + units * 8).min(aligned).max(off)]
            };
            if chunk.is_empty() || (off == 0 && last) {
                continue;
            }
            let pkt = if v6 {
                Frag6::icmp(0x0bad_cafe).frag(off, !last, chunk)
            } else {
                frag4(&hdr4(IpNumber::ICMP, 0xcafe), off, !last, chunk)
            };
            pkts.insert(pos % (pkts.len() + 1), pkt);
        }
        let mut r = Reassembler::default();
        let mut out = vec![0u8; OUT];
        for pkt in &pkts {
            let p = r.push(pkt, T0, &mut out);
            match p.push {
                Push::Held => {}
                Push::Complete { len } => {
                    if v6 {
                        check6(&out[..len], &Frag6::icmp(0x0bad_cafe), &msg);
                    } else {
                        check4(&out[..len], &hdr4(IpNumber::ICMP, 0xcafe), &msg);
                    }
                }
                Push::Dropped { reason, .. } => {
                    prop_assert_eq!(reason, DropReason::ReassemblyOverlap);
                }
                Push::NotIcmpFragment => prop_assert!(false, "all are ICMP fragments"),
            }
        }
    }

    /// No input panics; the limits always hold; a completed packet fits in
    /// `out`. Random bytes with an IPv4 or IPv6 version nibble.
    #[test]
    fn random_bytes_never_panic(
        pkts in proptest::collection::vec(
            (prop_oneof![Just(0x45u8), Just(0x46), Just(0x60), any::<u8>()],
             proptest::collection::vec(any::<u8>(), 0..120)),
            1..20),
    ) {
        let limits = small_limits();
        let mut r = Reassembler::new(limits);
        let mut out = vec![0u8; 2048];
        for (i, (first, rest)) in pkts.iter().enumerate() {
            let mut pkt = vec![*first];
            pkt.extend_from_slice(rest);
            let _ = is_icmp_fragment(&pkt);
            let p = r.push(&pkt, Timestamp(i as u64 * 10), &mut out);
            if let Push::Complete { len } = p.push {
                prop_assert!(len <= out.len());
            }
            prop_assert!(r.held_bytes() <= limits.max_bytes);
            prop_assert!(r.held_datagrams() <= limits.max_datagrams);
        }
    }

    /// Truncated, corrupted and replayed real fragments never panic and the
    /// limits hold.
    #[test]
    fn truncated_fragments_never_panic(
        v6 in any::<bool>(),
        len in 0usize..3000,
        units in 1usize..40,
        edits in proptest::collection::vec((any::<usize>(), any::<usize>(), any::<u8>(), any::<bool>()), 1..40),
    ) {
        let (_, frags) = fragments(v6, len, units * 8);
        let limits = small_limits();
        let mut r = Reassembler::new(limits);
        let mut out = vec![0u8; OUT];
        for (t, (which, cut, byte, flip)) in edits.iter().enumerate() {
            let mut pkt = frags[which % frags.len()].clone();
            if *flip {
                let at = cut % pkt.len();
                pkt[at] ^= byte;
            } else {
                pkt.truncate(cut % (pkt.len() + 1));
            }
            let _ = is_icmp_fragment(&pkt);
            let p = r.push(&pkt, Timestamp(t as u64 * 7), &mut out);
            if let Push::Complete { len } = p.push {
                prop_assert!(len <= out.len());
            }
            prop_assert!(r.held_bytes() <= limits.max_bytes);
            prop_assert!(r.held_datagrams() <= limits.max_datagrams);
        }
        r.expire(Timestamp(u64::MAX));
        prop_assert_eq!((r.held_datagrams(), r.held_bytes()), (0, 0));
    }
}
