//! RFC edge cases of the translator that the RFC 7915 suites do not reach:
//! out-of-scope IPv4 addresses (RFC 6052 §5.1, RFC 1812 §5.3.7, RFC 3927
//! §7) and the size of translated ICMP errors (RFC 1812 §4.3.2.3, RFC 4443
//! §2.4(c), RFC 4884 §5.1).
//!
//! Fixtures are built with `etherparse` (through `common`) or written out
//! here; checksums of outputs are checked with `etherparse` and with an
//! RFC 1071 sum written in this file, never with the code under test.

mod common;

use common::*;
use etherparse::IpNumber;
use nat64_core::xlat::{
    self, v4_out_of_scope, Config, FlowMeta, Mapper, StatelessMapper, Tuple4, Tuple6,
};
use nat64_core::{DropReason, IcmpError};
use std::net::{Ipv4Addr, Ipv6Addr};

// ===========================================================================
// Helpers
// ===========================================================================

/// RFC 1071 Internet checksum of the concatenated parts, written here
/// independently of the code under test: 0 when the parts verify.
fn rfc1071(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let mut sum: u32 = 0;
    for w in bytes.chunks(2) {
        let hi = w[0] as u32;
        let lo = w.get(1).copied().unwrap_or(0) as u32;
        sum += (hi << 8) | lo;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An ICMPv4 message verifies (RFC 792: no pseudo-header).
#[track_caller]
fn assert_rfc1071_icmp4(msg: &[u8]) {
    assert_eq!(rfc1071(&[msg]), 0, "ICMPv4 checksum (RFC 1071 sum)");
}

/// An ICMPv6 message verifies over the RFC 8200 §8.1 pseudo-header.
#[track_caller]
fn assert_rfc1071_icmp6(src: [u8; 16], dst: [u8; 16], msg: &[u8]) {
    let len = (msg.len() as u32).to_be_bytes();
    assert_eq!(
        rfc1071(&[&src, &dst, &len, &[0, 0, 0, ICMP6], msg]),
        0,
        "ICMPv6 checksum (RFC 1071 sum with pseudo-header)"
    );
}

/// One address of every out-of-scope range, and both ends of each.
const OUT_OF_SCOPE: [[u8; 4]; 11] = [
    [0, 0, 0, 0],
    [0, 1, 2, 3],
    [0, 255, 255, 255],
    [127, 0, 0, 1],
    [127, 255, 255, 254],
    [169, 254, 0, 0],
    [169, 254, 255, 255],
    [224, 0, 0, 1],
    [239, 255, 255, 255],
    [230, 1, 2, 3],
    [255, 255, 255, 255],
];

/// Just outside each range: translated like any address.
const IN_SCOPE_NEIGHBOURS: [[u8; 4]; 8] = [
    [1, 0, 0, 0],
    [126, 255, 255, 255],
    [128, 0, 0, 0],
    [169, 253, 255, 255],
    [169, 255, 0, 0],
    [223, 255, 255, 255],
    [240, 0, 0, 0],
    [255, 255, 255, 254],
];

const GRE: u8 = 47;

/// A mapping that answers like [`StatelessMapper`] but replaces `from` by
/// `to` in every IPv4 address it returns, outer and inner: the translator
/// must not trust the mapping to stay in scope.
struct Rewrite {
    inner: StatelessMapper,
    from: Ipv4Addr,
    to: Ipv4Addr,
}

impl Rewrite {
    fn new(from: [u8; 4], to: [u8; 4]) -> Self {
        Rewrite {
            inner: stateless(),
            from: Ipv4Addr::from(from),
            to: Ipv4Addr::from(to),
        }
    }
    fn fix(&self, a: Ipv4Addr) -> Ipv4Addr {
        if a == self.from {
            self.to
        } else {
            a
        }
    }
}

impl Mapper for Rewrite {
    fn map_6to4(&mut self, t: &Tuple6, meta: &FlowMeta) -> Result<Tuple4, DropReason> {
        let mut o = self.inner.map_6to4(t, meta)?;
        o.src = self.fix(o.src);
        o.dst = self.fix(o.dst);
        Ok(o)
    }
    fn map_4to6(&mut self, t: &Tuple4, meta: &FlowMeta) -> Result<Tuple6, DropReason> {
        self.inner.map_4to6(t, meta)
    }
    fn icmp_error_source_4to6(&mut self, router: Ipv4Addr) -> Result<Ipv6Addr, DropReason> {
        self.inner.icmp_error_source_4to6(router)
    }
    fn map_addrs_6to4(
        &mut self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        meta: &FlowMeta,
    ) -> Result<(Ipv4Addr, Ipv4Addr), DropReason> {
        let (s, d) = self.inner.map_addrs_6to4(src, dst, meta)?;
        Ok((self.fix(s), self.fix(d)))
    }
    fn map_addrs_4to6(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        meta: &FlowMeta,
    ) -> Result<(Ipv6Addr, Ipv6Addr), DropReason> {
        self.inner.map_addrs_4to6(src, dst, meta)
    }
}

/// IPv6 packets of every translated shape from `h.src` to `h.dst`: TCP,
/// UDP, ICMPv6 echo, a non-first TCP fragment, and GRE (a protocol without
/// ports, RFC 7915 §5.5).
fn v6_shapes(h: &V6) -> Vec<(&'static str, Vec<u8>)> {
    let tcp = tcp6(h.src, h.dst, 40000, 80, &payload(64));
    vec![
        ("tcp", tcp6_pkt(h, 40000, 80, &payload(64))),
        ("udp", udp6_pkt(h, 40000, 53, &payload(32))),
        ("echo", icmp6_pkt(h, 128, 0, echo_rest(7, 1), b"ping")),
        (
            "non-first fragment",
            ipv6(h, FRAGMENT, &ext_frag(TCP, 8, false, 99), &tcp[..24]),
        ),
        ("gre", ipv6(h, GRE, &[], &payload(40))),
    ]
}

/// IPv4 packets of every translated shape with header `h`.
fn v4_shapes(h: &V4) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("tcp", tcp4_pkt(h, 80, 40000, &payload(64))),
        ("udp", udp4_pkt(h, 53, 40000, &payload(32))),
        ("echo", icmp4_pkt(h, 0, 0, echo_rest(7, 1), b"pong")),
        (
            "non-first fragment",
            ipv4(&h.clone().df(false).frag(9, 8, false), UDP, &payload(16)),
        ),
        ("gre", ipv4(h, GRE, &payload(40))),
    ]
}

/// An ICMPv6 error from the IPv6 client about a UDP datagram that came to
/// it from `from6` (so the translated ICMPv4 error goes to `from6`'s IPv4).
fn icmp6_err_about_packet_from(from6: [u8; 16]) -> Vec<u8> {
    let ih = V6::out().src(from6).dst(v6_client()).hop(40);
    let inner = udp6_pkt(&ih, 53, 5000, &payload(20));
    icmp6_pkt(&V6::out().dst(from6), 1, 4, [0; 4], &inner)
}

// ===========================================================================
// Out-of-scope IPv4 addresses
// ===========================================================================

/// RFC 6052 §5.1 / RFC 1812 §5.3.7 / RFC 3927 §7: the ranges of
/// `v4_out_of_scope`, at their edges, and against an independent definition
/// from `std` over one address in every /16 (and the ends of each /16).
#[test]
fn rfc6052_5_1_out_of_scope_ranges() {
    for a in OUT_OF_SCOPE {
        assert!(v4_out_of_scope(&Ipv4Addr::from(a)), "{a:?}");
    }
    for a in IN_SCOPE_NEIGHBOURS {
        assert!(!v4_out_of_scope(&Ipv4Addr::from(a)), "{a:?}");
    }
    let reference = |a: Ipv4Addr| {
        a.octets()[0] == 0
            || a.is_loopback()
            || a.is_link_local()
            || a.is_multicast()
            || a.is_broadcast()
    };
    for hi in 0..=u16::MAX {
        for lo in [0u16, 1, 0x1234, 0xfffe, 0xffff] {
            let a = Ipv4Addr::from(((hi as u32) << 16) | lo as u32);
            assert_eq!(v4_out_of_scope(&a), reference(a), "{a}");
        }
    }
}

/// RFC 6052 §5.1: an IPv6 packet whose embedded IPv4 address is out of
/// scope (`PREFIX::7f00:1` and the like) never leaves as IPv4, as
/// destination or as source, whatever its protocol (ports, port-less,
/// fragment); neighbours of the ranges are translated.
#[test]
fn rfc6052_5_1_6to4_out_of_scope_never_produced() {
    for bad in OUT_OF_SCOPE {
        for h in [V6::out().dst(embed(bad)), V6::out().src(embed(bad))] {
            for (what, pkt) in v6_shapes(&h) {
                assert_eq!(
                    six(&pkt),
                    Out::Drop(DropReason::OutOfScopeV4),
                    "{what} {:?} -> {:?}",
                    Ipv6Addr::from(h.src),
                    Ipv6Addr::from(h.dst)
                );
            }
        }
    }
    for ok in IN_SCOPE_NEIGHBOURS {
        for h in [V6::out().dst(embed(ok)), V6::out().src(embed(ok))] {
            for (what, pkt) in v6_shapes(&h) {
                assert!(six(&pkt).is_fwd(), "{what} with {ok:?}");
            }
        }
    }
}

/// RFC 6052 §5.1 for the outer header of a translated ICMPv6 error (RFC
/// 7915 §5.3): its IPv4 destination is the quoted packet's source; an error
/// about a packet from `PREFIX::127.0.0.1` would go to 127.0.0.1.
#[test]
fn rfc6052_5_1_6to4_icmp_error_to_out_of_scope_dropped() {
    for bad in OUT_OF_SCOPE {
        let pkt = icmp6_err_about_packet_from(embed(bad));
        assert_eq!(
            six(&pkt),
            Out::Drop(DropReason::OutOfScopeV4),
            "error to {bad:?}"
        );
    }
    let pkt = icmp6_err_about_packet_from(v6_server());
    let (ip, _) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!(ip.destination, V4_SERVER);
}

/// RFC 6052 §5.1 whatever the mapping: the range test is the translator's,
/// applied to the addresses any `Mapper` returns (stateless, stateful, kernel
/// leases, EAM), on the outer path, the port-less path and ICMPv6 errors.
#[test]
fn rfc6052_5_1_6to4_checked_after_any_mapper() {
    let cfg = Config::default();
    for (from, to) in [
        (V4_SERVER, [127, 0, 0, 1]),
        (V4_SERVER, [169, 254, 7, 7]),
        (V4_CLIENT, [0, 0, 0, 0]),
        (V4_CLIENT, [224, 0, 0, 5]),
        (V4_SERVER, [255, 255, 255, 255]),
    ] {
        for (what, pkt) in v6_shapes(&V6::out()) {
            let out = run(Dir::SixToFour, &pkt, &cfg, &mut Rewrite::new(from, to));
            assert_eq!(out, Out::Drop(DropReason::OutOfScopeV4), "{what} {to:?}");
        }
        let pkt = icmp6_err_about_packet_from(v6_server());
        let out = run(Dir::SixToFour, &pkt, &cfg, &mut Rewrite::new(from, to));
        assert_eq!(out, Out::Drop(DropReason::OutOfScopeV4), "error {to:?}");
    }
    // The same mapping to an address in scope: all translated.
    for (what, pkt) in v6_shapes(&V6::out()) {
        let mut m = Rewrite::new(V4_SERVER, [203, 0, 113, 7]);
        assert!(run(Dir::SixToFour, &pkt, &cfg, &mut m).is_fwd(), "{what}");
    }
    let pkt = icmp6_err_about_packet_from(v6_server());
    let mut m = Rewrite::new(V4_SERVER, [203, 0, 113, 7]);
    let (ip, _) = icmp_6to4_fwd(&pkt, &cfg, &mut m);
    assert_eq!(ip.destination, [203, 0, 113, 7]);
}

/// RFC 1812 §5.3.7 (martian address filtering: no forwarding from or to
/// network 0 or 127, nor from anything but a unicast source): an IPv4
/// packet with an out-of-scope source or destination is not translated,
/// whatever its protocol, counted as `out_of_scope_v4` (not
/// `not_for_translation`, which is for IPv6 addresses only).
#[test]
fn rfc1812_5_3_7_4to6_out_of_scope_never_accepted() {
    for bad in OUT_OF_SCOPE {
        for h in [V4::inb().src(bad), V4::inb().dst(bad)] {
            for (what, pkt) in v4_shapes(&h) {
                assert_eq!(
                    four(&pkt),
                    Out::Drop(DropReason::OutOfScopeV4),
                    "{what} {:?} -> {:?}",
                    h.src,
                    h.dst
                );
            }
            // An ICMPv4 error with an out-of-scope outer address.
            let inner = udp4_pkt(&V4::inb().src(V4_CLIENT).dst(V4_SERVER), 1, 2, b"x");
            let err = icmp4_pkt(&h, 3, 1, [0; 4], &inner);
            assert_eq!(four(&err), Out::Drop(DropReason::OutOfScopeV4), "{h:?}");
        }
    }
    for ok in IN_SCOPE_NEIGHBOURS {
        for h in [V4::inb().src(ok), V4::inb().dst(ok)] {
            for (what, pkt) in v4_shapes(&h) {
                assert!(four(&pkt).is_fwd(), "{what} with {ok:?}");
            }
        }
    }
}

/// RFC 1812 §4.3.2.7: no ICMP error goes to an address that does not name
/// a single host. An expiring packet from an out-of-scope source is
/// dropped, not answered; the error generator refuses such a source too.
#[test]
fn rfc1812_4_3_2_7_no_icmp_error_to_out_of_scope_source() {
    for bad in OUT_OF_SCOPE {
        let pkt = udp4_pkt(&V4::inb().src(bad).ttl(1), 1, 2, b"x");
        assert_eq!(four(&pkt), Out::Drop(DropReason::OutOfScopeV4), "{bad:?}");
        let mut out = [0u8; 600];
        let r = xlat::icmp_gen::icmpv4_error(
            &pkt,
            IcmpError::TimeExceeded,
            Ipv4Addr::new(192, 0, 2, 1),
            &mut out,
        );
        assert_eq!(r, Err(DropReason::OutOfScopeV4), "{bad:?}");
    }
}

/// RFC 3927 §7: "a router MUST NOT forward a packet with an IPv4 Link-Local
/// source or destination address". Neither direction does.
#[test]
fn rfc3927_7_link_local_not_forwarded_either_direction() {
    let ll = [169, 254, 1, 2];
    for h in [V6::out().src(embed(ll)), V6::out().dst(embed(ll))] {
        let pkt = udp6_pkt(&h, 1, 2, b"x");
        assert_eq!(six(&pkt), Out::Drop(DropReason::OutOfScopeV4));
    }
    for h in [V4::inb().src(ll), V4::inb().dst(ll)] {
        let pkt = udp4_pkt(&h, 1, 2, b"x");
        assert_eq!(four(&pkt), Out::Drop(DropReason::OutOfScopeV4));
    }
}

/// RFC 7915 §4.3 with the out-of-scope rule: only the outer header of an
/// ICMPv4 error is checked; the quoted packet is data to the IPv6 receiver
/// and is translated as it is (here it names a link-local destination).
#[test]
fn rfc7915_4_3_quoted_packet_not_scope_checked() {
    let inner = udp4_pkt(
        &V4::inb().src(V4_CLIENT).dst([169, 254, 9, 9]),
        4000,
        53,
        b"x",
    );
    let err = icmp4_pkt(&V4::inb().src(V4_ROUTER), 3, 1, [0; 4], &inner);
    let (ip, msg) = icmp_4to6_fwd(&err, &Config::default(), &mut stateless());
    assert_eq!(ip.destination, v6_client());
    let (ih, _) = parse6_inner(&msg[8..]);
    assert_eq!(ih.destination, embed([169, 254, 9, 9]));
}

// ===========================================================================
// Size of translated ICMP errors
// ===========================================================================

/// The big packet quoted below: TCP from the IPv4 server to the IPv6 client
/// with 1400 bytes of data (IPv6: 1460 bytes; IPv4: 1440), and its IPv4
/// translation's TCP segment, both built by etherparse.
fn big_tcp6(exts: &[u8], first_nh: u8) -> (Vec<u8>, Vec<u8>) {
    let data = payload(1400);
    let h = V6::out().src(v6_server()).dst(v6_client()).hop(50).tc(0x28);
    let seg6 = tcp6(h.src, h.dst, 5000, 80, &data);
    let pkt = ipv6(&h, first_nh, exts, &seg6);
    let seg4 = tcp4(V4_SERVER, V4_CLIENT, 5000, 80, &data);
    (pkt, seg4)
}

/// RFC 1812 §4.3.2.3: "the ICMP datagram SHOULD contain as much of the
/// original datagram as possible without the length of the ICMP datagram
/// exceeding 576 bytes" — with RFC 7915 §5.3 translating the quote. The
/// ICMPv6 error quotes 1232 bytes of a 1460-byte packet (RFC 4443 §2.4(c));
/// its translation is 20 bytes shorter (more with extension headers), so
/// the ICMPv4 error comes out at exactly 576 bytes, the quote being the
/// first 548 bytes of the translated packet.
#[test]
fn rfc1812_4_3_2_3_translated_icmpv4_error_is_576_bytes() {
    for (exts, first_nh) in [(vec![], TCP), (ext_opts(TCP), HOPOPT)] {
        let (inner, seg4) = big_tcp6(&exts, first_nh);
        let quote = &inner[..1232];
        let pkt = icmp6_pkt(&V6::out(), 1, 0, [0; 4], quote);
        assert_eq!(pkt.len(), 1280);
        let (ip, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
        assert_eq!(ip.total_len, 576, "with {} bytes of extensions", exts.len());
        assert_eq!(msg.len(), 576 - 20);
        assert_eq!((msg[0], msg[1]), (3, 1), "no route → host unreachable");
        assert_rfc1071_icmp4(&msg);
        // The quote: the translated IPv4 header, then the translated TCP
        // segment's first 528 bytes (ports kept, checksum for IPv4).
        let (ih, il4) = parse4_inner(&msg[8..]);
        assert_eq!(ih.total_len, 1440, "inner Total Length of the whole");
        assert_eq!(ih.source, V4_SERVER);
        assert_eq!(ih.destination, V4_CLIENT);
        assert_eq!(ih.protocol, IpNumber(TCP));
        assert_eq!(ih.time_to_live, 50);
        assert_eq!(tos_of(&ih), 0x28);
        assert_eq!(il4.len(), 528);
        assert_eq!(il4, &seg4[..528], "translated prefix of the original");
    }
}

/// RFC 4443 §2.4(c): an ICMPv6 error carries as much of the invoking packet
/// as fits without exceeding the minimum IPv6 MTU — with RFC 7915 §4.3
/// translating the quote. An ICMPv4 error quoting a whole 1440-byte packet
/// becomes an ICMPv6 error of exactly 1280 bytes, quoting the first 1232
/// bytes of the translated packet; with no Fragment header (DF set, not a
/// fragment) none is reserved, and with one (a first fragment) it is.
#[test]
fn rfc4443_2_4_c_translated_icmpv6_error_is_1280_bytes() {
    let data = payload(1400);
    let h6 = V6::out().hop(33).tc(0x28);
    let seg6 = tcp6(h6.src, h6.dst, 4000, 443, &data);
    let cases = [
        (
            V4::inb().src(V4_CLIENT).dst(V4_SERVER).ttl(33).tos(0x28),
            ipv6(&h6, TCP, &[], &seg6),
        ),
        (
            V4::inb()
                .src(V4_CLIENT)
                .dst(V4_SERVER)
                .ttl(33)
                .tos(0x28)
                .df(false)
                .frag(0x4242, 0, true),
            ipv6(&h6, FRAGMENT, &ext_frag(TCP, 0, true, 0x4242), &seg6),
        ),
    ];
    for (h4, want6) in cases {
        let inner = tcp4_pkt(&h4, 4000, 443, &data);
        assert_eq!(inner.len(), 1440);
        let pkt = icmp4_pkt(&V4::inb().src(V4_ROUTER), 3, 1, [0; 4], &inner);
        let (ip, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut stateless());
        assert_eq!(
            ip.payload_length as usize + 40,
            1280,
            "fragment header: {}",
            h4.mf
        );
        assert_eq!((msg[0], msg[1]), (1, 0), "host unreachable → no route");
        assert_rfc1071_icmp6(ip.source, ip.destination, &msg);
        assert_eq!(msg.len() - 8, 1232);
        assert_eq!(
            &msg[8..],
            &want6[..1232],
            "translated prefix of the original (fragment header: {})",
            h4.mf
        );
    }
}

/// RFC 4884 §5.1 under the RFC 1812 §4.3.2.3 cap: an ICMPv6 error with a big
/// quote and an extension still yields a 576-byte ICMPv4 error, the quote
/// cut (at a 32-bit word) to leave room for the extension, which is kept,
/// and the length attribute counting the quote in 32-bit words.
#[test]
fn rfc4884_5_1_extension_kept_in_576_byte_error() {
    let (inner, seg4) = big_tcp6(&[], TCP);
    let ext = rfc4884_extension();
    let quote = &inner[..1216]; // 152 64-bit words
    let mut body = quote.to_vec();
    body.extend_from_slice(&ext);
    let pkt = icmp6_pkt(&V6::out(), 3, 0, [152, 0, 0, 0], &body);
    assert!(pkt.len() <= 1280);
    let (ip, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!(ip.total_len, 576);
    assert_eq!((msg[0], msg[1]), (11, 0));
    assert_rfc1071_icmp4(&msg);
    let words = msg[5] as usize;
    let qlen = 576 - 20 - 8 - ext.len();
    assert_eq!(words * 4, qlen, "ICMPv4 length attribute in 32-bit words");
    let (ih, il4) = parse4_inner(&msg[8..]);
    assert_eq!(ih.total_len, 1440);
    assert_eq!(&il4[..qlen - 20], &seg4[..qlen - 20]);
    assert_eq!(&msg[8 + qlen..], &ext[..], "extension kept, opaque");
}
