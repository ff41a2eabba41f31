//! RFC 7915 §5 (IPv6 → IPv4) conformance tests.
//!
//! Fixtures are built with `etherparse` or written out from the RFC layouts;
//! outputs are parsed and their checksums recomputed with `etherparse`.
//! Each test cites the rule it checks.

mod common;

use common::*;
use etherparse::IpNumber;
use nat64_core::xlat::{Config, Role};
use nat64_core::{DropReason, IcmpError};

// ===========================================================================
// §5.1 Translating IPv6 Headers into IPv4 Headers
// ===========================================================================

/// §5.1: "Version: 4", "Internet Header Length: 5 (no IPv4 options)",
/// "Total Length: Payload length value from the IPv6 header, plus the size
/// of the IPv4 header", "Header Checksum: Computed once the IPv4 header has
/// been created", addresses per the mapping (here RFC 6052 /96).
#[test]
fn rfc7915_5_1_basic_header_fields() {
    let h = V6::out();
    let data = payload(100);
    let pkt = tcp6_pkt(&h, 40000, 80, &data);
    let out = six(&pkt).whole();
    let (ip, rest) = parse4(&out); // checks version, header checksum, total length
    assert_eq!(ip.header_len(), 20, "IHL 5, no options");
    assert_eq!(ip.total_len as usize, pkt.len() - 40 + 20);
    assert_eq!(ip.source, V4_CLIENT);
    assert_eq!(ip.destination, V4_SERVER);
    assert_eq!(ip.protocol, IpNumber(TCP));
    assert!(!ip.more_fragments, "§5.1 Flags: MF is set to zero");
    assert_eq!(
        ip.fragment_offset.value(),
        0,
        "§5.1 Fragment Offset: all zeros"
    );
    assert_eq!(&rest[20..], &data[..], "data portion left unchanged (§5)");
}

/// §5.1 "Type of Service: By default, copied from the IPv6 Traffic Class
/// (all 8 bits)."
#[test]
fn rfc7915_5_1_tos_copied_from_traffic_class() {
    for tc in [0x00u8, 0xb8, 0xb9, 0x2a, 0xff] {
        let h = V6::out().tc(tc).flow(0xabcde);
        let out = six(&udp6_pkt(&h, 1, 2, b"x")).whole();
        let (ip, _) = parse4(&out);
        assert_eq!(tos_of(&ip), tc, "traffic class {tc:#x}");
    }
}

/// §5.1 TOS: "Optionally, the translator MAY provide a configuration option
/// to set TOS to zero" — `copy_tos = false`.
#[test]
fn rfc7915_5_1_tos_zero_when_not_copied() {
    let cfg = Config {
        copy_tos: false,
        ..Config::default()
    };
    let out = six_cfg(&udp6_pkt(&V6::out().tc(0xb8), 1, 2, b"x"), &cfg).whole();
    let (ip, _) = parse4(&out);
    assert_eq!(tos_of(&ip), 0);
}

/// §5.1 "Time to Live: Hop Limit value copied from the IPv6 header. Since
/// the translator is a router, as part of forwarding the packet it needs to
/// decrement either the IPv6 Hop Limit (before the translation) or the IPv4
/// TTL (after the translation)."
#[test]
fn rfc7915_5_1_ttl_is_hop_limit_minus_one() {
    for hop in [2u8, 64, 255] {
        let out = six(&tcp6_pkt(&V6::out().hop(hop), 1, 2, b"")).whole();
        let (ip, _) = parse4(&out);
        assert_eq!(ip.time_to_live, hop - 1);
    }
}

/// §5.1 TTL: "As part of decrementing the TTL or Hop Limit, the translator
/// (as any router) MUST check for zero and send the ICMPv4 'TTL Exceeded'
/// or ICMPv6 'Hop Limit Exceeded' error."
#[test]
fn rfc7915_5_1_hop_limit_exhausted_time_exceeded() {
    for hop in [0u8, 1] {
        let pkt = tcp6_pkt(&V6::out().hop(hop), 1, 2, b"abc");
        let e = six(&pkt).icmp(); // also asserts the packet is left intact
        assert!(is_time_exceeded(&e), "hop limit {hop}: got {e:?}");
    }
}

/// §5.1 Protocol: "ICMPv6 (58) is changed to ICMPv4 (1)".
#[test]
fn rfc7915_5_1_protocol_icmpv6_becomes_icmpv4() {
    let pkt = icmp6_pkt(&V6::out(), 128, 0, echo_rest(7, 1), b"ping");
    let (ip, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!(ip.protocol, IpNumber(ICMP4));
    assert_eq!(msg[0], 8);
}

/// §5.1 Flags / §5: "When the resulting IPv4 packet is smaller than or equal
/// to 1260 bytes, the translator MUST send the packet with a cleared Don't
/// Fragment bit."
#[test]
fn rfc7915_5_1_df_clear_at_or_below_1260() {
    for ipv4_len in [40usize, 576, 1259, 1260] {
        let data = payload(ipv4_len - 40);
        let out = six(&tcp6_pkt(&V6::out(), 1, 2, &data)).whole();
        let (ip, _) = parse4(&out);
        assert_eq!(out.len(), ipv4_len);
        assert!(!ip.dont_fragment, "IPv4 size {ipv4_len}: DF must be 0");
        assert!(!ip.more_fragments);
    }
}

/// §5.1 Flags: "If the size of the translated IPv4 packet is less than or
/// equal to 1260 bytes, it is set to zero; otherwise, it is set to one."
#[test]
fn rfc7915_5_1_df_set_above_1260() {
    for ipv4_len in [1261usize, 1400, 1500] {
        let data = payload(ipv4_len - 40);
        let out = six(&tcp6_pkt(&V6::out(), 1, 2, &data)).whole();
        let (ip, rest) = parse4(&out);
        assert_eq!(out.len(), ipv4_len);
        assert!(ip.dont_fragment, "IPv4 size {ipv4_len}: DF must be 1");
        assert_tcp4(ip.source, ip.destination, rest);
    }
}

/// §5.1 Address translation (RFC 6052 embedded addresses, via the mapper).
#[test]
fn rfc7915_5_1_addresses_extracted_from_prefix() {
    let h = V6::out()
        .src(embed([100, 64, 1, 2]))
        .dst(embed([8, 8, 4, 4]));
    let out = six(&udp6_pkt(&h, 5353, 53, b"q")).whole();
    let (ip, rest) = parse4(&out);
    assert_eq!(ip.source, [100, 64, 1, 2]);
    assert_eq!(ip.destination, [8, 8, 4, 4]);
    assert_udp4(ip.source, ip.destination, rest);
}

/// §5.1: "If any of an IPv6 Hop-by-Hop Options header, Destination Options
/// header, or Routing header with the Segments Left field equal to zero are
/// present in the IPv6 packet, those IPv6 extension headers MUST be ignored
/// ... However, the Total Length field and the Protocol field are adjusted
/// to 'skip' these extension headers."
#[test]
fn rfc7915_5_1_hop_by_hop_skipped() {
    let h = V6::out();
    let data = payload(33);
    let l4 = tcp6(h.src, h.dst, 1000, 2000, &data);
    let pkt = ipv6(&h, HOPOPT, &ext_opts(TCP), &l4);
    let out = six(&pkt).whole();
    let (ip, rest) = parse4(&out);
    assert_eq!(ip.protocol, IpNumber(TCP));
    assert_eq!(ip.total_len as usize, 20 + l4.len());
    assert_tcp4(ip.source, ip.destination, rest);
}

/// §5.1, Destination Options header ignored (see above).
#[test]
fn rfc7915_5_1_destination_options_skipped() {
    let h = V6::out();
    let l4 = udp6(h.src, h.dst, 1000, 2000, b"hello");
    let pkt = ipv6(&h, DSTOPTS, &ext_opts(UDP), &l4);
    let out = six(&pkt).whole();
    let (ip, rest) = parse4(&out);
    assert_eq!(ip.protocol, IpNumber(UDP));
    assert_eq!(ip.total_len as usize, 20 + l4.len());
    assert_udp4(ip.source, ip.destination, rest);
}

/// §5.1, Routing header with Segments Left 0 ignored (see above).
#[test]
fn rfc7915_5_1_routing_segments_left_zero_skipped() {
    let h = V6::out();
    let l4 = tcp6(h.src, h.dst, 1000, 2000, b"data");
    let pkt = ipv6(&h, ROUTING, &ext_routing(TCP, 0), &l4);
    let out = six(&pkt).whole();
    let (ip, rest) = parse4(&out);
    assert_eq!(ip.protocol, IpNumber(TCP));
    assert_eq!(ip.total_len as usize, 20 + l4.len());
    assert_tcp4(ip.source, ip.destination, rest);
}

/// §5.1, a chain Hop-by-Hop → Destination Options → Routing(SL=0) →
/// Destination Options → ICMPv6 is skipped as a whole.
#[test]
fn rfc7915_5_1_extension_header_chain_skipped() {
    let h = V6::out();
    let l4 = icmp6(h.src, h.dst, 128, 0, echo_rest(9, 9), b"chain");
    let mut exts = ext_opts(DSTOPTS);
    exts.extend(ext_opts(ROUTING));
    exts.extend(ext_routing(DSTOPTS, 0));
    exts.extend(ext_opts(ICMP6));
    let pkt = ipv6(&h, HOPOPT, &exts, &l4);
    let (ip, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!(ip.total_len as usize, 20 + l4.len());
    assert_eq!(&msg[..2], &[8, 0]);
    assert_eq!(&msg[4..], &l4[4..]);
}

/// §5.1: "If a Routing header with a non-zero Segments Left field is
/// present, then the packet MUST NOT be translated, and an ICMPv6
/// 'parameter problem/erroneous header field encountered' (Type 4, Code 0)
/// error message, with the Pointer field indicating the first byte of the
/// Segments Left field, SHOULD be returned to the sender."
#[test]
fn rfc7915_5_1_routing_segments_left_nonzero_param_problem() {
    let h = V6::out();
    let l4 = tcp6(h.src, h.dst, 1, 2, b"");
    // Routing header right after the fixed header: Segments Left at 40 + 3.
    let pkt = ipv6(&h, ROUTING, &ext_routing(TCP, 1), &l4);
    assert_eq!(
        six(&pkt).icmp(),
        IcmpError::ParameterProblem {
            code: 0,
            pointer: 43
        }
    );
    // After an 8-byte Hop-by-Hop header: Segments Left at 40 + 8 + 3.
    let mut exts = ext_opts(ROUTING);
    exts.extend(ext_routing(TCP, 2));
    let pkt = ipv6(&h, HOPOPT, &exts, &l4);
    assert_eq!(
        six(&pkt).icmp(),
        IcmpError::ParameterProblem {
            code: 0,
            pointer: 51
        }
    );
}

/// RFC 7915 §1.4: "the translator MUST behave as a router, i.e., the
/// translator MUST send a Packet Too Big error message or fragment the packet
/// when the packet size exceeds the MTU of the next-hop interface." §5.1.1
/// (last paragraph): "If a translated packet with DF set to 1 will be larger
/// than the MTU of the next-hop interface, then the translator MUST drop the
/// packet and send the ICMPv6 Packet Too Big (Type 2, Code 0) error message
/// to the IPv6 host with an adjusted MTU in the ICMPv6 message." The adjusted
/// MTU is the IPv4 MTU plus the 20 bytes of header growth.
#[test]
fn rfc7915_5_1_df_set_too_big_packet_too_big() {
    let cfg = Config {
        ipv4_mtu: 1400,
        ..Config::default()
    };
    // IPv6 1500 → IPv4 1480 > 1400, DF=1 (> 1260).
    let pkt = tcp6_pkt(&V6::out(), 1, 2, &payload(1440));
    assert_eq!(
        six_cfg(&pkt, &cfg).icmp(),
        IcmpError::PacketTooBig { mtu: 1420 }
    );
    // Exactly the IPv4 MTU: forwarded.
    let pkt = tcp6_pkt(&V6::out(), 1, 2, &payload(1360));
    let out = six_cfg(&pkt, &cfg).whole();
    assert_eq!(out.len(), 1400);
}

/// RFC 7915 §5: "the indicated MTU in the resulting ICMPv6 'Packet Too Big'
/// will never be set to a value lower than 1280" (RFC 8200 §5: 1280 is the
/// IPv6 minimum link MTU). With a 1000-byte IPv4 MTU, a 1380-byte IPv6
/// packet (IPv4 1360, DF=1) is answered with PTB 1280; a 1280-byte one
/// becomes IPv4 1260 with DF=0 and is forwarded for IPv4 fragmentation.
#[test]
fn rfc7915_5_1_packet_too_big_mtu_at_least_1280() {
    let cfg = Config {
        ipv4_mtu: 1000,
        ..Config::default()
    };
    let pkt = tcp6_pkt(&V6::out(), 1, 2, &payload(1320));
    assert_eq!(
        six_cfg(&pkt, &cfg).icmp(),
        IcmpError::PacketTooBig { mtu: 1280 }
    );
    let pkt = tcp6_pkt(&V6::out(), 1, 2, &payload(1220));
    match six_cfg(&pkt, &cfg) {
        Out::Fwd { pkt, fragment_mtu } => {
            let (ip, _) = parse4(&pkt);
            assert!(!ip.dont_fragment);
            assert_eq!(fragment_mtu, Some(1000));
        }
        other => panic!("expected Forward to be fragmented, got {other:?}"),
    }
}

/// §1.4 + §5: a DF=0 result (≤ 1260 bytes) larger than the IPv4 next-hop
/// MTU is fragmented (RFC 791 §2.3: IPv4 routers fragment when DF is clear).
#[test]
fn rfc7915_5_1_df_clear_over_ipv4_mtu_is_fragmentable() {
    let cfg = Config {
        ipv4_mtu: 576,
        ..Config::default()
    };
    let pkt = udp6_pkt(&V6::out(), 1, 2, &payload(1000));
    match six_cfg(&pkt, &cfg) {
        Out::Fwd { pkt, fragment_mtu } => {
            let (ip, rest) = parse4(&pkt);
            assert!(!ip.dont_fragment);
            assert_eq!(fragment_mtu, Some(576));
            assert_udp4(ip.source, ip.destination, rest);
        }
        other => panic!("expected Forward with fragment_mtu, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// §5.1.1 IPv6 Fragment Processing
// ---------------------------------------------------------------------------

/// §5.1.1: "Identification: Copied from the low-order 16 bits in the
/// Identification field in the Fragment Header. Flags: The IPv4 More
/// Fragments (MF) flag is copied from the M flag in the IPv6 Fragment
/// Header. The IPv4 Don't Fragment (DF) flag is cleared (set to zero) ...
/// Fragment Offset: Copied from the Fragment Offset field of the IPv6
/// Fragment Header." Total Length: "Payload Length value from IPv6 header,
/// minus length of extension headers up to and including the Fragment
/// Header, plus the size of the IPv4 header." Protocol: the Fragment
/// header's Next Header.
#[test]
fn rfc7915_5_1_1_fragment_header_to_ipv4_fields() {
    let h = V6::out();
    let body = payload(600);
    // A middle fragment (offset 1232 bytes = 154 units, M=1).
    let pkt = ipv6(&h, FRAGMENT, &ext_frag(UDP, 154, true, 0x1234_5678), &body);
    let out = six(&pkt).whole();
    let (ip, rest) = parse4(&out);
    assert_eq!(ip.identification, 0x5678);
    assert!(ip.more_fragments);
    assert!(!ip.dont_fragment);
    assert_eq!(ip.fragment_offset.value(), 154);
    assert_eq!(ip.protocol, IpNumber(UDP));
    assert_eq!(ip.total_len as usize, 20 + body.len());
    assert_eq!(rest, &body[..], "non-first fragment data is opaque");
    // The last fragment (M=0).
    let pkt = ipv6(&h, FRAGMENT, &ext_frag(UDP, 308, false, 0xffff_0001), &body);
    let out = six(&pkt).whole();
    let (ip, _) = parse4(&out);
    assert_eq!(ip.identification, 0x0001);
    assert!(!ip.more_fragments);
    assert_eq!(ip.fragment_offset.value(), 308);
}

/// §5.1.1: the DF flag of a translated fragment is cleared even above 1260
/// bytes ("allowing this packet to be further fragmented by IPv4 routers").
#[test]
fn rfc7915_5_1_1_fragment_df_cleared_even_when_large() {
    let h = V6::out();
    let seg = tcp6(h.src, h.dst, 1, 2, &payload(1372));
    assert_eq!(seg.len(), 1392);
    let pkt = ipv6(&h, FRAGMENT, &ext_frag(TCP, 0, true, 77), &seg);
    let out = six(&pkt).pkt();
    let (ip, _) = parse4(&out);
    assert!(out.len() > 1260);
    assert!(!ip.dont_fragment);
    assert!(ip.more_fragments);
    assert_eq!(ip.identification, 77);
}

/// §5.1.1 Total Length with a Hop-by-Hop header before the Fragment header:
/// both are subtracted.
#[test]
fn rfc7915_5_1_1_total_length_excludes_extension_headers() {
    let h = V6::out();
    let body = payload(200);
    let mut exts = ext_opts(FRAGMENT);
    exts.extend(ext_frag(UDP, 100, false, 5));
    let pkt = ipv6(&h, HOPOPT, &exts, &body);
    let out = six(&pkt).whole();
    let (ip, rest) = parse4(&out);
    assert_eq!(ip.total_len as usize, 20 + 200);
    assert_eq!(ip.protocol, IpNumber(UDP));
    assert_eq!(rest, &body[..]);
}

/// §5.1.1 Total Length: "If the Next Header field of the Fragment Header is
/// an extension header (except ESP, but including the Authentication Header
/// (AH)), then the packet SHOULD be dropped and logged."
#[test]
fn rfc7915_5_1_1_extension_header_after_fragment_not_translated() {
    let h = V6::out();
    let l4 = udp6(h.src, h.dst, 1, 2, b"x");
    for ext in [DSTOPTS, ROUTING] {
        let mut exts = ext_frag(ext, 0, false, 9);
        if ext == DSTOPTS {
            exts.extend(ext_opts(UDP));
        } else {
            exts.extend(ext_routing(UDP, 0));
        }
        let pkt = ipv6(&h, FRAGMENT, &exts, &l4);
        let out = six(&pkt);
        assert!(!out.is_fwd(), "ext header {ext} after Fragment: {out:?}");
    }
}

/// §5.5 with §5.1.1: fragments are translated independently; the transport
/// checksum in the first fragment is adjusted for the pseudo-header change so
/// that the reassembled IPv4 datagram verifies.
#[test]
fn rfc7915_5_1_1_fragmented_udp_checksum_adjusted() {
    let h = V6::out();
    let dgram = udp6(h.src, h.dst, 4444, 53, &payload(1000)); // 1008 bytes
    let (a, b) = dgram.split_at(504);
    let f1 = ipv6(&h, FRAGMENT, &ext_frag(UDP, 0, true, 0xdead_beef), a);
    let f2 = ipv6(&h, FRAGMENT, &ext_frag(UDP, 63, false, 0xdead_beef), b);
    let o1 = six(&f1).whole();
    let o2 = six(&f2).whole();
    let (i1, p1) = parse4(&o1);
    let (i2, p2) = parse4(&o2);
    assert_eq!(i1.identification, 0xbeef);
    assert_eq!(i2.identification, 0xbeef);
    assert_eq!(i2.fragment_offset.value(), 63);
    let mut whole = p1.to_vec();
    whole.extend_from_slice(p2);
    assert_udp4(i1.source, i1.destination, &whole);
}

/// RFC 7915 §1.2: "Fragmented ICMP/ICMPv6 packets will not be translated
/// by IP/ICMP translators."
#[test]
fn rfc7915_5_1_1_fragmented_icmpv6_not_translated() {
    let h = V6::out();
    let msg = icmp6(h.src, h.dst, 128, 0, echo_rest(1, 1), &payload(64));
    let pkt = ipv6(&h, FRAGMENT, &ext_frag(ICMP6, 0, true, 3), &msg[..48]);
    assert_eq!(six(&pkt).reason(), Some(DropReason::IcmpFragmented));
}

/// RFC 6946 §4: an atomic fragment (offset 0, M clear) is processed as a
/// whole packet; RFC 7915 §5.1.1: with a Fragment header, DF is clear and
/// the identification's low 16 bits are copied. The daemon hands over a
/// reassembled ICMPv6 message in this form.
#[test]
fn rfc6946_4_atomic_fragment_icmpv6_translated_whole() {
    let h = V6::out();
    let msg = icmp6(h.src, h.dst, 128, 0, echo_rest(1, 1), &payload(2000));
    let pkt = ipv6(&h, FRAGMENT, &ext_frag(ICMP6, 0, false, 0x1234_5678), &msg);
    let cfg = Config::default();
    let Out::Fwd {
        pkt: out,
        fragment_mtu,
    } = six(&pkt)
    else {
        panic!("an atomic ICMPv6 fragment must be translated");
    };
    // Larger than the IPv4 MTU: fragmented on the way out, DF clear.
    assert_eq!(fragment_mtu, Some(cfg.ipv4_mtu));
    let (ip, rest) = parse4(&out);
    assert!(!ip.dont_fragment);
    assert!(!ip.more_fragments);
    assert_eq!(ip.identification, 0x5678);
    assert_eq!(ip.protocol, IpNumber::ICMP);
    assert_eq!(rest[0], 8, "echo request");
    assert_icmp4(rest);
}

/// RFC 7915 §5.6 ("addressed to an IPv6 address representing a
/// host in the IPv4 domain"): link-local and multicast traffic the kernel
/// sends into the TUN is not for translation: dropped silently, never
/// answered.
#[test]
fn rfc7915_5_6_link_local_and_multicast_not_translated() {
    let ll: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let mc: [u8; 16] = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16];
    for h in [
        V6::out().src(ll),
        V6::out().dst(mc),
        V6::out().src(ll).dst(mc),
    ] {
        let pkt = udp6_pkt(&h, 1, 2, b"x");
        assert_eq!(six(&pkt), Out::Drop(DropReason::NotForTranslation), "{h:?}");
    }
    // MLD report from a link-local source to ff02::16 (what Linux sends).
    let h = V6::out().src(ll).dst(mc).hop(1);
    let pkt = icmp6_pkt(&h, 143, 0, [0, 0, 0, 0], &[0u8; 20]);
    assert!(matches!(six(&pkt), Out::Drop(_)));
}

/// `xlat::translate` dispatches on the version nibble.
#[test]
fn translate_dispatches_by_version() {
    let v6 = udp6_pkt(&V6::out(), 1, 2, b"six");
    let out = run(Dir::Auto, &v6, &Config::default(), &mut stateless()).whole();
    parse4(&out);
    let v4 = udp4_pkt(&V4::inb(), 1, 2, b"four");
    let out = run(Dir::Auto, &v4, &Config::default(), &mut stateless()).whole();
    parse6(&out);
    let mut bad = v6.clone();
    bad[0] = 0x50;
    assert_eq!(
        run(Dir::Auto, &bad, &Config::default(), &mut stateless()),
        Out::Drop(DropReason::BadVersion)
    );
}

// ===========================================================================
// §5.2 Translating ICMPv6 Headers into ICMPv4 Headers
// ===========================================================================

/// §5.2 "Echo Request and Echo Reply (Type 128 and 129): Adjust the Type
/// values to 8 and 0, respectively, and adjust the ICMP checksum both to
/// take the type change into account and to exclude the ICMPv6
/// pseudo-header."
#[test]
fn rfc7915_5_2_echo_request_and_reply() {
    for (t6, t4) in [(128u8, 8u8), (129, 0)] {
        let body = payload(56);
        let pkt = icmp6_pkt(&V6::out(), t6, 0, echo_rest(0x4242, 17), &body);
        let (_, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
        assert_eq!(msg[0], t4);
        assert_eq!(msg[1], 0);
        assert_eq!(
            &msg[4..8],
            &echo_rest(0x4242, 17),
            "identifier and sequence kept"
        );
        assert_eq!(&msg[8..], &body[..]);
    }
}

/// RFC 6146 §3.4 (the identifier is the ICMP "port") with RFC 7915 §5.2:
/// the mapper's port becomes the ICMPv4 identifier, checksum still valid.
#[test]
fn rfc7915_5_2_echo_identifier_mapped() {
    let h = V6::out().src(NAT_CLIENT6);
    let pkt = icmp6_pkt(&h, 128, 0, echo_rest(4000, 3), b"abcdefgh");
    let mut m = NatMapper::default();
    let (ip, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut m);
    assert_eq!(ip.source, NAT_POOL4);
    assert_eq!(&msg[4..8], &echo_rest(4000 + PORT_SHIFT, 3));
    let (t, meta) = m.calls6[0];
    assert_eq!(
        (t.src_port, t.dst_port),
        (4000, 4000),
        "tuple ports = identifier"
    );
    assert_eq!(meta.role, Role::Outer);
}

/// §5.2 "MLD Multicast Listener Query/Report/Done (Type 130, 131, 132):
/// Single-hop message. Silently drop." "Neighbor Discover messages (Type 133
/// through 137): Single-hop message. Silently drop." "Unknown informational
/// messages: Silently drop."
#[test]
fn rfc7915_5_2_single_hop_and_unknown_informational_dropped() {
    for ty in [
        130u8, 131, 132, 133, 134, 135, 136, 137, 139, 140, 200, 201, 255,
    ] {
        let pkt = icmp6_pkt(&V6::out(), ty, 0, [0; 4], &[0u8; 24]);
        assert_eq!(
            six(&pkt),
            Out::Drop(DropReason::IcmpUntranslatableType),
            "ICMPv6 type {ty}"
        );
    }
}

/// The packet quoted in ICMPv6 errors below: a UDP datagram that went from
/// the IPv4 server to the IPv6 client (so the error travels IPv6 → IPv4).
fn quoted_udp6(hop: u8, data_len: usize) -> Vec<u8> {
    let h = V6::out().src(v6_server()).dst(v6_client()).hop(hop);
    udp6_pkt(&h, 5000, 53, &payload(data_len))
}

/// An ICMPv6 error from the IPv6 client about `inner`.
fn icmp6_err(ty: u8, code: u8, rest: [u8; 4], inner: &[u8]) -> Vec<u8> {
    icmp6_pkt(&V6::out(), ty, code, rest, inner)
}

/// §5.2 Destination Unreachable (Type 1) → Type 3, codes: 0 → 1, 1 → 10,
/// 2 → 1, 3 → 1, 4 → 3, "Other Code values: Silently drop."
#[test]
fn rfc7915_5_2_dest_unreachable_code_map() {
    let inner = quoted_udp6(60, 20);
    for (c6, c4) in [(0u8, 1u8), (1, 10), (2, 1), (3, 1), (4, 3)] {
        let pkt = icmp6_err(1, c6, [0; 4], &inner);
        let (_, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
        assert_eq!((msg[0], msg[1]), (3, c4), "ICMPv6 1/{c6}");
    }
    for c6 in [5u8, 6, 7, 200] {
        let pkt = icmp6_err(1, c6, [0; 4], &inner);
        assert_eq!(
            six(&pkt),
            Out::Drop(DropReason::IcmpUntranslatableCode),
            "ICMPv6 1/{c6}"
        );
    }
}

/// §5.2 "Packet Too Big (Type 2): Translate to an ICMPv4 Destination
/// Unreachable (Type 3) with Code 4 ... The MTU field MUST be adjusted for
/// the difference between the IPv4 and IPv6 header sizes ... i.e.,
/// minimum(advertised MTU-20, MTU_of_IPv4_nexthop, (MTU_of_IPv6_nexthop)-20)."
/// The ICMPv4 next-hop MTU is the low 16 bits of the second word (RFC 1191).
#[test]
fn rfc7915_5_2_packet_too_big_mtu() {
    let inner = quoted_udp6(60, 20);
    let cases = [
        // (advertised, ipv4_mtu, ipv6_link_mtu, expected)
        (1400u32, 1500u16, 1500u16, 1380u16),
        (1280, 1500, 1500, 1260),
        (1500, 1400, 1500, 1400),
        (1400, 1500, 1300, 1280),
        (9000, 9000, 9000, 8980),
    ];
    for (adv, v4, v6, want) in cases {
        let cfg = Config {
            ipv4_mtu: v4,
            ipv6_link_mtu: v6,
            ..Config::default()
        };
        let pkt = icmp6_err(2, 0, u32_rest(adv), &inner);
        let (_, msg) = icmp_6to4_fwd(&pkt, &cfg, &mut stateless());
        assert_eq!((msg[0], msg[1]), (3, 4));
        assert_eq!(&msg[4..6], &[0, 0], "unused");
        assert_eq!(
            u16::from_be_bytes([msg[6], msg[7]]),
            want,
            "advertised {adv}, ipv4 {v4}, ipv6 {v6}"
        );
    }
}

/// §5.2 "Time Exceeded (Type 3): Set the Type to 11 ... The Code is
/// unchanged."
#[test]
fn rfc7915_5_2_time_exceeded() {
    let inner = quoted_udp6(1, 20);
    for code in [0u8, 1] {
        let pkt = icmp6_err(3, code, [0; 4], &inner);
        let (_, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
        assert_eq!((msg[0], msg[1]), (11, code));
    }
}

/// §5.2 Parameter Problem Code 0: "Set the Type to 12, Code 0, and update the
/// pointer as defined in Figure 6. (If the Original IPv6 Pointer Value is not
/// listed or the Translated IPv4 Pointer Value is listed as 'n/a', silently
/// drop the packet.)" Figure 6: 0→0, 1→1, 2,3→n/a, 4,5→2, 6→9, 7→8,
/// 8..23→12, 24..39→16.
#[test]
fn rfc7915_5_2_param_problem_pointer_map() {
    let inner = quoted_udp6(60, 20);
    let mut expect: Vec<(u32, Option<u8>)> = vec![
        (0, Some(0)),
        (1, Some(1)),
        (2, None),
        (3, None),
        (4, Some(2)),
        (5, Some(2)),
        (6, Some(9)),
        (7, Some(8)),
    ];
    expect.extend((8..24).map(|p| (p, Some(12))));
    expect.extend((24..40).map(|p| (p, Some(16))));
    expect.extend([40, 41, 100, 0x0001_0000].map(|p| (p, None)));
    for (p6, p4) in expect {
        let pkt = icmp6_err(4, 0, u32_rest(p6), &inner);
        match p4 {
            Some(p4) => {
                let (_, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
                assert_eq!((msg[0], msg[1]), (12, 0), "pointer {p6}");
                assert_eq!(msg[4], p4, "IPv6 pointer {p6}");
            }
            None => assert_eq!(
                six(&pkt),
                Out::Drop(DropReason::IcmpUntranslatablePointer),
                "IPv6 pointer {p6}"
            ),
        }
    }
}

/// §5.2 Parameter Problem "Code 1 (Unrecognized Next Header type
/// encountered): Translate this to an ICMPv4 protocol unreachable (Type 3,
/// Code 2)." "Code 2 (Unrecognized IPv6 option encountered): Silently drop."
#[test]
fn rfc7915_5_2_param_problem_codes() {
    let inner = quoted_udp6(60, 20);
    let pkt = icmp6_err(4, 1, u32_rest(6), &inner);
    let (_, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!((msg[0], msg[1]), (3, 2));
    for code in [2u8, 3, 99] {
        let pkt = icmp6_err(4, code, u32_rest(40), &inner);
        assert!(
            matches!(six(&pkt), Out::Drop(_)),
            "ICMPv6 parameter problem code {code} must be silently dropped"
        );
    }
}

/// §5.2 "Unknown error messages: Silently drop."
#[test]
fn rfc7915_5_2_unknown_error_dropped() {
    let inner = quoted_udp6(60, 20);
    for ty in [0u8, 5, 100, 101, 127] {
        let pkt = icmp6_err(ty, 0, [0; 4], &inner);
        assert_eq!(
            six(&pkt),
            Out::Drop(DropReason::IcmpUntranslatableType),
            "ICMPv6 type {ty}"
        );
    }
}

/// §5.2 "ICMP Error Payload: If the received ICMPv6 packet contains an
/// ICMPv6 Extension [RFC4884], the translation of the ICMPv6 packet will
/// cause the ICMPv4 packet to change length. When this occurs, the ICMPv6
/// Extension length attribute MUST be adjusted accordingly (e.g., shorter
/// due to the translation from IPv6 to IPv4)." RFC 4884 §4.1/§5: the ICMPv4
/// length attribute (octet 6) counts 32-bit words, the ICMPv6 one (octet 5)
/// 64-bit words; the original datagram is zero-padded to the word and is at
/// least 128 octets when an extension follows.
#[test]
fn rfc7915_5_2_rfc4884_extension_length_attribute() {
    let inner = quoted_udp6(60, 80); // 40 + 8 + 80 = 128 bytes = 16 words of 64 bits
    assert_eq!(inner.len(), 128);
    let ext = rfc4884_extension();
    let mut body = inner.clone();
    body.extend_from_slice(&ext);
    let pkt = icmp6_err(1, 4, [16, 0, 0, 0], &body);
    let (_, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!((msg[0], msg[1]), (3, 3));
    let words = msg[5] as usize;
    // Inner translated: 128 - 20 = 108 bytes, padded to ≥ 128 → 32 words.
    assert_eq!(words, 32, "ICMPv4 length attribute in 32-bit words");
    let (ih, _) = parse4_inner(&msg[8..]);
    assert_eq!(ih.total_len, 108);
    assert!(
        msg[8 + 108..8 + words * 4].iter().all(|&b| b == 0),
        "zero padding"
    );
    assert_eq!(&msg[8 + words * 4..], &ext[..], "extension passed opaque");
}

// ===========================================================================
// §5.3 Translating ICMPv6 Error Messages into ICMPv4
// ===========================================================================

/// §5.3: "The ICMP error messages containing the packet in error MUST be
/// translated just like a normal IP packet (except that the TTL/Hop Limit
/// value of the inner IPv4/IPv6 packet are not decremented). The translation
/// of this 'packet in error' is likely to change the length of the datagram;
/// thus, the Total Length field in the outer IPv4 header MUST be updated."
#[test]
fn rfc7915_5_3_inner_packet_translated() {
    let inner = quoted_udp6(57, 20);
    let pkt = icmp6_err(1, 4, [0; 4], &inner);
    let (ip, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!(ip.source, V4_CLIENT);
    assert_eq!(ip.destination, V4_SERVER);
    assert_eq!(ip.time_to_live, 63, "outer TTL decremented");
    assert_eq!(ip.total_len as usize, 20 + 8 + inner.len() - 20);
    let (ih, il4) = parse4_inner(&msg[8..]);
    assert_eq!(ih.source, V4_SERVER);
    assert_eq!(ih.destination, V4_CLIENT);
    assert_eq!(ih.time_to_live, 57, "inner TTL not decremented");
    assert_eq!(ih.protocol, IpNumber(UDP));
    assert_eq!(
        ih.total_len as usize,
        inner.len() - 20,
        "inner Total Length"
    );
    let u = assert_udp4(ih.source, ih.destination, il4);
    assert_eq!((u.source_port, u.destination_port), (5000, 53));
}

/// §5.3 with RFC 6146 §3.4: the inner packet's addresses and ports are
/// mapped back through the binding (the mapper sees the swapped inner tuple
/// with Role::IcmpErrorInner); inner checksums stay valid.
#[test]
fn rfc7915_5_3_inner_ports_mapped() {
    // The server sent 198.51.100.10:53 → 203.0.113.1:5000, which reached the
    // client as prefix::198.51.100.10:53 → client6:4000; the client refuses.
    let ih6 = V6::out().src(v6_server()).dst(NAT_CLIENT6).hop(50);
    let inner = udp6_pkt(&ih6, 53, 4000, b"dns answer");
    let h = V6::out().src(NAT_CLIENT6).dst(v6_server());
    let pkt = icmp6_pkt(&h, 1, 4, [0; 4], &inner);
    let mut m = NatMapper::default();
    let (ip, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut m);
    assert_eq!(ip.source, NAT_POOL4);
    assert_eq!(ip.destination, V4_SERVER);
    let (ih, il4) = parse4_inner(&msg[8..]);
    assert_eq!(ih.source, V4_SERVER);
    assert_eq!(ih.destination, NAT_POOL4);
    let u = assert_udp4(ih.source, ih.destination, il4);
    assert_eq!(u.source_port, 53);
    assert_eq!(u.destination_port, 4000 + PORT_SHIFT);
    let inner_calls = m.inner_calls6();
    assert_eq!(inner_calls.len(), 1, "one inner lookup: {:?}", m.calls6);
    let t = inner_calls[0];
    assert_eq!(
        (t.src.octets(), t.src_port, t.dst.octets(), t.dst_port),
        (NAT_CLIENT6, 4000, v6_server(), 53),
        "inner tuple swapped into the error's direction"
    );
}

/// §5.3: an ICMPv6 echo request quoted in an error is translated too (type
/// 128 → 8, identifier mapped, inner ICMPv4 checksum without pseudo-header).
#[test]
fn rfc7915_5_3_inner_icmp_echo_translated() {
    // The server pinged the pool; it reached the client as an echo request
    // with identifier 4000; the client answers with an error about it.
    let ih6 = V6::out().src(v6_server()).dst(NAT_CLIENT6).hop(50);
    let inner = icmp6_pkt(&ih6, 128, 0, echo_rest(4000, 1), b"ping!");
    let h = V6::out().src(NAT_CLIENT6).dst(v6_server());
    let pkt = icmp6_pkt(&h, 1, 1, [0; 4], &inner);
    let mut m = NatMapper::default();
    let (_, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut m);
    assert_eq!((msg[0], msg[1]), (3, 10));
    let (ih, imsg) = parse4_inner(&msg[8..]);
    assert_eq!(ih.protocol, IpNumber(ICMP4));
    assert_eq!(imsg[0], 8);
    assert_eq!(&imsg[4..8], &echo_rest(4000 + PORT_SHIFT, 1));
    assert_icmp4(imsg);
}

/// §5.3: "This process MUST stop at the first embedded header and drop the
/// packet if it contains more embedded headers" (an ICMP error about an ICMP
/// error; RFC 4443 §2.4(e.1) forbids answering one).
#[test]
fn rfc7915_5_3_icmp_error_in_error_dropped() {
    let deepest = quoted_udp6(60, 8);
    let ih6 = V6::out().src(v6_server()).dst(v6_client());
    let middle = icmp6_pkt(&ih6, 1, 4, [0; 4], &deepest);
    let pkt = icmp6_err(3, 0, [0; 4], &middle);
    assert_eq!(six(&pkt), Out::Drop(DropReason::IcmpErrorInError));
}

/// §5.3: a truncated quote (only the start of a large packet) is still
/// translated; the inner Total Length comes from the inner Payload Length.
#[test]
fn rfc7915_5_3_truncated_inner_packet() {
    let full = quoted_udp6(40, 1000);
    let inner = &full[..40 + 8 + 100];
    let pkt = icmp6_err(1, 4, [0; 4], inner);
    let (ip, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!(ip.total_len as usize, 20 + 8 + 20 + 8 + 100);
    let (ih, il4) = parse4_inner(&msg[8..]);
    assert_eq!(ih.total_len as usize, 20 + 8 + 1000);
    assert_eq!(&il4[..4], &[0x13, 0x88, 0x00, 0x35], "ports 5000 → 53");
}

// ===========================================================================
// §5.4 Generation of ICMPv6 Error Messages
// ===========================================================================

/// §5.4: "If the IPv6 packet is discarded, then the translator SHOULD send
/// back an ICMPv6 error message to the original sender of the packet, unless
/// the discarded packet is itself an ICMPv6 message" — and RFC 4443
/// §2.4(e.1): never in response to an ICMPv6 error message. An expiring
/// ICMPv6 error is dropped without an answer; an expiring echo request
/// (traceroute -I) is answered like by any router.
#[test]
fn rfc7915_5_4_no_icmp_error_about_icmp_error() {
    let inner = quoted_udp6(60, 20);
    let pkt = icmp6_pkt(&V6::out().hop(1), 1, 4, [0; 4], &inner);
    let out = six(&pkt);
    assert!(matches!(out, Out::Drop(_)), "got {out:?}");
    // Routing header with Segments Left != 0 in an ICMPv6 error: no answer.
    let h = V6::out();
    let l4 = icmp6(h.src, h.dst, 1, 4, [0; 4], &inner);
    let pkt = ipv6(&h, ROUTING, &ext_routing(ICMP6, 1), &l4);
    let out = six(&pkt);
    assert!(matches!(out, Out::Drop(_)), "got {out:?}");
    // An echo request with hop limit 1 gets Time Exceeded.
    let pkt = icmp6_pkt(&V6::out().hop(1), 128, 0, echo_rest(1, 1), b"");
    assert!(is_time_exceeded(&six(&pkt).icmp()));
}

// ===========================================================================
// §5.5 Transport-Layer Header Translation
// ===========================================================================

/// §5.5: "the recalculation and updating of the transport-layer headers that
/// contain pseudo-headers need to be performed. Translators MUST do this for
/// TCP, UDP, and ICMP."
#[test]
fn rfc7915_5_5_tcp_checksum_updated() {
    for n in [0usize, 1, 2, 3, 513, 1400] {
        let pkt = tcp6_pkt(&V6::out(), 40000, 443, &payload(n));
        let out = six(&pkt).whole();
        let (ip, rest) = parse4(&out);
        let t = assert_tcp4(ip.source, ip.destination, rest);
        assert_eq!((t.source_port, t.destination_port), (40000, 443));
        assert_eq!(&rest[20..], &payload(n)[..]);
    }
}

#[test]
fn rfc7915_5_5_udp_checksum_updated() {
    for n in [0usize, 1, 7, 1000] {
        let pkt = udp6_pkt(&V6::out(), 5353, 53, &payload(n));
        let out = six(&pkt).whole();
        let (ip, rest) = parse4(&out);
        let u = assert_udp4(ip.source, ip.destination, rest);
        assert_ne!(u.checksum, 0, "IPv4 UDP keeps a real checksum");
    }
}

/// §5.5 with a port-rewriting mapping (RFC 6146 NAPT): ports changed and the
/// checksum still verifies.
#[test]
fn rfc7915_5_5_ports_mapped_checksums_valid() {
    let h = V6::out().src(NAT_CLIENT6);
    let mut m = NatMapper::default();
    let out = run(
        Dir::SixToFour,
        &tcp6_pkt(&h, 4000, 80, b"GET /"),
        &Config::default(),
        &mut m,
    )
    .whole();
    let (ip, rest) = parse4(&out);
    assert_eq!(ip.source, NAT_POOL4);
    let t = assert_tcp4(ip.source, ip.destination, rest);
    assert_eq!((t.source_port, t.destination_port), (4000 + PORT_SHIFT, 80));

    let out = run(
        Dir::SixToFour,
        &udp6_pkt(&h, 4001, 53, b"query"),
        &Config::default(),
        &mut m,
    )
    .whole();
    let (ip, rest) = parse4(&out);
    let u = assert_udp4(ip.source, ip.destination, rest);
    assert_eq!((u.source_port, u.destination_port), (4001 + PORT_SHIFT, 53));
}

/// RFC 1071 checksum of the concatenated parts (written here, independent
/// of the code under test).
fn rfc1071(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// DCCP (RFC 4340) with a valid checksum over the IPv6 pseudo-header, from
/// bytes written out here (not by the code under test).
fn dccp6(h: &V6) -> Vec<u8> {
    // Generic header, 8 bytes: ports 5000 → 6000, data offset 3 (12 bytes
    // with the 4-byte request header below), CCVal/CsCov 0, checksum at 6.
    let mut d = vec![0x13, 0x88, 0x17, 0x70, 3, 0, 0, 0];
    d.extend_from_slice(&[0x01, 0x02, 0x03, 0x04]);
    d.extend_from_slice(b"dccp payload");
    let len = (d.len() as u32).to_be_bytes();
    let c = rfc1071(&[&h.src, &h.dst, &len, &[0, 0, 0, 33], &d]);
    d[6..8].copy_from_slice(&c.to_be_bytes());
    d
}

/// §5.5: "translators MUST forward all transport protocols". With a 1:1
/// mapping (SIIT here; kernel NAPT leases and maps in the daemon) any
/// protocol is translated at the IP layer: protocol number kept, DCCP's
/// pseudo-header checksum adjusted, SCTP/GRE payloads untouched.
#[test]
fn rfc7915_5_5_other_transports_translated_one_to_one() {
    let h = V6::out();
    let d = dccp6(&h);
    let len = (d.len() as u32).to_be_bytes();
    assert_eq!(rfc1071(&[&h.src, &h.dst, &len, &[0, 0, 0, 33], &d]), 0);
    let out = six(&ipv6(&h, 33, &[], &d)).whole();
    let (ip, rest) = parse4(&out);
    assert_eq!(ip.protocol, IpNumber(33));
    let len4 = (rest.len() as u16).to_be_bytes();
    assert_eq!(
        rfc1071(&[&ip.source, &ip.destination, &[0, 33], &len4, rest]),
        0,
        "DCCP checksum verifies over the IPv4 pseudo-header"
    );
    assert_eq!(&rest[8..], &d[8..], "DCCP payload untouched");
    // SCTP (132) and GRE (47): bytes after the IP header unchanged.
    for p in [132u8, 47] {
        let body = payload(40);
        let out = six(&ipv6(&h, p, &[], &body)).whole();
        let (ip, rest) = parse4(&out);
        assert_eq!(ip.protocol, IpNumber(p));
        assert_eq!(rest, &body[..]);
    }
}

/// §5.5 with port NAPT (daemon mode): there is no IPv4 source to give a
/// protocol without ports, so it is dropped under a named reason.
#[test]
fn rfc7915_5_5_other_transport_dropped_by_port_napt() {
    let h = V6::out();
    let mut m = NatMapper::default();
    let out = run(
        Dir::SixToFour,
        &ipv6(&h, 33, &[], &dccp6(&h)),
        &Config::default(),
        &mut m,
    );
    assert_eq!(out.reason(), Some(DropReason::UnsupportedProtocol));
}

// ===========================================================================
// Fragmentation of translated packets (xlat::frag)
// ===========================================================================

/// RFC 7915 §1.4 ("the translator MUST ... fragment the packet when the
/// packet size exceeds the MTU of the next-hop interface") for a DF=0 result
/// (§5: ≤ 1260 bytes), following RFC 791 §3.2 fragmentation: same
/// Identification, offsets in 8-octet units, MF on all but the last, each
/// fragment within the MTU; the reassembled datagram's checksum verifies.
#[test]
fn rfc7915_5_1_ipv4_fragmentation_to_next_hop_mtu() {
    let cfg = Config {
        ipv4_mtu: 576,
        ..Config::default()
    };
    let pkt = udp6_pkt(&V6::out(), 4444, 53, &payload(1000));
    let Out::Fwd {
        pkt: v4,
        fragment_mtu: Some(mtu),
    } = six_cfg(&pkt, &cfg)
    else {
        panic!("expected Forward with fragment_mtu");
    };
    assert_eq!(mtu, 576);
    let frags = fragment4(&v4, mtu);
    assert!(frags.len() >= 2);
    let r = reassemble4(&frags, mtu);
    assert_eq!(r.first_offset, 0);
    assert!(!r.last_more);
    assert_eq!(r.ip.protocol, IpNumber(UDP));
    assert_eq!(r.ip.time_to_live, 63);
    assert_eq!(r.data.len(), 1008);
    assert_udp4(r.ip.source, r.ip.destination, &r.data);
}

/// §5.1.1 + RFC 791: an IPv6 fragment translated to IPv4 (DF=0) and then
/// re-fragmented keeps its base offset, and the last piece keeps MF=1 when
/// the original fragment was not the last one.
#[test]
fn rfc7915_5_1_1_translated_fragment_refragmented() {
    let cfg = Config {
        ipv4_mtu: 576,
        ..Config::default()
    };
    let body = payload(1000);
    let pkt = ipv6(
        &V6::out(),
        FRAGMENT,
        &ext_frag(UDP, 10, true, 0x0102_0304),
        &body,
    );
    let Out::Fwd {
        pkt: v4,
        fragment_mtu: Some(mtu),
    } = six_cfg(&pkt, &cfg)
    else {
        panic!("expected Forward with fragment_mtu");
    };
    let r = reassemble4(&fragment4(&v4, mtu), mtu);
    assert_eq!(r.ip.identification, 0x0304);
    assert_eq!(r.first_offset, 10);
    assert!(r.last_more);
    assert_eq!(r.data, body);
}

/// RFC 791: a DF=1 packet must not be fragmented.
#[test]
fn rfc7915_5_1_df_packet_not_fragmented() {
    let pkt = tcp6_pkt(&V6::out(), 1, 2, &payload(1300));
    let v4 = six(&pkt).whole();
    let mut scratch = vec![0u8; 2048];
    let r = nat64_core::xlat::frag::fragment_v4(&v4, 576, &mut scratch, &mut |_: &[u8]| {});
    assert!(r.is_err(), "fragment_v4 on DF=1 must refuse, got {r:?}");
}

// ===========================================================================
// §5.4 Generation of ICMPv6 Error Messages (xlat::icmp_gen)
// ===========================================================================

fn gateway6() -> [u8; 16] {
    embed([192, 0, 2, 1])
}

/// Builds the translator's ICMPv6 error for `orig` and checks the RFC 4443
/// basics with etherparse: addressed back to the source, from the given
/// source, ICMPv6 checksum with pseudo-header, at most 1280 bytes (RFC 4443
/// §2.4(c)), quoting the start of the invoking packet.
#[track_caller]
fn gen6(orig: &[u8], err: IcmpError) -> Vec<u8> {
    let mut out = vec![0u8; 2048];
    let n = nat64_core::xlat::icmp_gen::icmpv6_error(
        orig,
        err,
        std::net::Ipv6Addr::from(gateway6()),
        &mut out,
    )
    .expect("icmpv6_error");
    out.truncate(n);
    assert!(out.len() <= 1280, "RFC 4443 §2.4(c): {} bytes", out.len());
    let (ip, msg) = parse6(&out);
    assert_eq!(ip.source, gateway6());
    assert_eq!(&ip.destination[..], &orig[8..24], "sent back to the source");
    assert_eq!(ip.next_header, IpNumber(ICMP6));
    assert_icmp6(ip.source, ip.destination, msg);
    assert_eq!(
        &msg[8..],
        &orig[..msg.len() - 8],
        "quotes the invoking packet"
    );
    msg.to_vec()
}

/// §5.1 TTL (hop limit exhausted) → ICMPv6 Time Exceeded, code 0 (RFC 4443
/// §3.3 "hop limit exceeded in transit").
#[test]
fn rfc7915_5_4_generated_time_exceeded() {
    let pkt = udp6_pkt(&V6::out().hop(1), 1, 2, b"expiring");
    let err = six(&pkt).icmp();
    let msg = gen6(&pkt, err);
    assert_eq!((msg[0], msg[1]), (3, 0));
    assert_eq!(msg.len() - 8, pkt.len(), "small packet quoted whole");
}

/// §5.1.1 → ICMPv6 Packet Too Big (Type 2, Code 0) with the adjusted MTU
/// (RFC 4443 §3.2), truncated to 1280 bytes.
#[test]
fn rfc7915_5_4_generated_packet_too_big() {
    let cfg = Config {
        ipv4_mtu: 1400,
        ..Config::default()
    };
    let pkt = tcp6_pkt(&V6::out(), 1, 2, &payload(1440));
    let err = six_cfg(&pkt, &cfg).icmp();
    let msg = gen6(&pkt, err);
    assert_eq!((msg[0], msg[1]), (2, 0));
    assert_eq!(&msg[4..8], &1420u32.to_be_bytes());
    assert_eq!(
        msg.len() + 40,
        1280,
        "as much of the packet as fits in 1280"
    );
}

/// §5.1 → ICMPv6 Parameter Problem (Type 4, Code 0), Pointer at Segments
/// Left.
#[test]
fn rfc7915_5_4_generated_parameter_problem() {
    let h = V6::out();
    let pkt = ipv6(
        &h,
        ROUTING,
        &ext_routing(TCP, 1),
        &tcp6(h.src, h.dst, 1, 2, b""),
    );
    let err = six(&pkt).icmp();
    let msg = gen6(&pkt, err);
    assert_eq!((msg[0], msg[1]), (4, 0));
    assert_eq!(&msg[4..8], &43u32.to_be_bytes());
}

/// §5.4: "The ICMPv6 message MUST have Type 1 (Destination Unreachable) and
/// Code 1 (Communication with destination administratively prohibited),
/// unless otherwise specified".
#[test]
fn rfc7915_5_4_generated_default_admin_prohibited() {
    let pkt = udp6_pkt(&V6::out(), 1, 2, b"refused");
    let msg = gen6(&pkt, IcmpError::DestUnreachableV6 { code: 1 });
    assert_eq!((msg[0], msg[1]), (1, 1));
}

/// §5.4 "unless the discarded packet is itself an ICMPv6 message" / RFC 4443
/// §2.4(e): never an error about an ICMPv6 error, nor to a multicast source.
#[test]
fn rfc7915_5_4_generated_refuses_error_about_error() {
    let inner = quoted_udp6(60, 8);
    let pkt = icmp6_err(1, 4, [0; 4], &inner);
    let mut out = vec![0u8; 2048];
    let gw = std::net::Ipv6Addr::from(gateway6());
    let r = nat64_core::xlat::icmp_gen::icmpv6_error(&pkt, IcmpError::TimeExceeded, gw, &mut out);
    assert!(r.is_err(), "error about an ICMPv6 error: {r:?}");
    let mc: [u8; 16] = [0xff, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let pkt = udp6_pkt(&V6::out().src(mc), 1, 2, b"x");
    let r = nat64_core::xlat::icmp_gen::icmpv6_error(&pkt, IcmpError::TimeExceeded, gw, &mut out);
    assert!(r.is_err(), "error to a multicast source: {r:?}");
}

// ===========================================================================
// Edge cases
// ===========================================================================

/// §5.5 + RFC 768: "If the computed checksum is zero, it is transmitted as
/// all ones" (zero means "no checksum" in IPv4).
#[test]
fn rfc7915_5_5_udp_checksum_zero_result_sent_as_ffff() {
    let data = udp_payload_with_zero_sum(30, |d| {
        etherparse::UdpHeader {
            source_port: 5353,
            destination_port: 53,
            length: (8 + d.len()) as u16,
            checksum: 0,
        }
        .calc_checksum_ipv4_raw(V4_CLIENT, V4_SERVER, d)
        .expect("len")
    });
    let pkt = udp6_pkt(&V6::out(), 5353, 53, &data);
    let out = six(&pkt).whole();
    let (ip, rest) = parse4(&out);
    let u = assert_udp4(ip.source, ip.destination, rest);
    assert_eq!(u.checksum, 0xffff);
}

/// §5.1 "Total Length: Payload length value from the IPv6 header, plus the
/// size of the IPv4 header": bytes after the IPv6 payload are not part of
/// the packet. Dropping is tolerated; forwarding them is not.
#[test]
fn rfc7915_5_1_total_length_from_payload_length_not_buffer() {
    let mut pkt = udp6_pkt(&V6::out(), 5353, 53, b"short");
    let plen = pkt.len() - 40;
    pkt.extend_from_slice(&[0xaa; 16]);
    match six(&pkt) {
        Out::Fwd { pkt: out, .. } => {
            let (ip, rest) = parse4(&out);
            assert_eq!(ip.total_len as usize, plen + 20);
            assert_udp4(ip.source, ip.destination, rest);
        }
        Out::Drop(_) => {}
        other => panic!("unexpected {other:?}"),
    }
}

/// §5.3 "translated just like a normal IP packet": extension headers of the
/// inner packet are skipped (§5.1) and its Total Length excludes them.
#[test]
fn rfc7915_5_3_inner_extension_headers_skipped() {
    let ih = V6::out().src(v6_server()).dst(v6_client()).hop(9);
    let l4 = udp6(ih.src, ih.dst, 5000, 53, &payload(20));
    let inner = ipv6(&ih, HOPOPT, &ext_opts(UDP), &l4);
    let pkt = icmp6_err(1, 4, [0; 4], &inner);
    let (_, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
    let (ih4, il4) = parse4_inner(&msg[8..]);
    assert_eq!(ih4.protocol, IpNumber(UDP));
    assert_eq!(ih4.total_len as usize, 20 + l4.len());
    assert_eq!(ih4.time_to_live, 9);
    assert_udp4(ih4.source, ih4.destination, il4);
}

/// §5.3 with §5.1.1: an inner IPv6 fragment becomes an IPv4 fragment (low 16
/// bits of the Identification, MF, offset).
#[test]
fn rfc7915_5_3_inner_fragment_translated() {
    let ih = V6::out().src(v6_server()).dst(v6_client()).hop(9);
    let dgram = udp6(ih.src, ih.dst, 5000, 53, &payload(1000));
    let inner = ipv6(
        &ih,
        FRAGMENT,
        &ext_frag(UDP, 0, true, 0x0102_0304),
        &dgram[..504],
    );
    let pkt = icmp6_err(3, 1, [0; 4], &inner);
    let (_, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
    let (ih4, il4) = parse4_inner(&msg[8..]);
    assert_eq!(ih4.protocol, IpNumber(UDP));
    assert_eq!(ih4.identification, 0x0304);
    assert!(ih4.more_fragments);
    assert_eq!(ih4.fragment_offset.value(), 0);
    assert_eq!(ih4.total_len as usize, 20 + 504);
    assert_eq!(&il4[..4], &[0x13, 0x88, 0x00, 0x35], "ports 5000 → 53");
}

/// §5: "Since the ICMPv6 [RFC4443], TCP [RFC793], UDP [RFC768], and DCCP
/// [RFC4340] headers contain checksums that cover the IP header, if the
/// address mapping algorithm is not checksum neutral, the checksum MUST be
/// evaluated before translation and the ICMP and transport-layer headers
/// MUST be updated." A corrupt TCP segment or echo stays corrupt.
#[test]
fn rfc7915_5_5_corrupt_checksum_stays_corrupt() {
    let mut pkt = tcp6_pkt(&V6::out(), 40000, 80, b"hello world");
    let n = pkt.len();
    pkt[n - 1] ^= 0x01;
    if let Out::Fwd { pkt: out, .. } = six(&pkt) {
        let (ip, rest) = parse4(&out);
        let (t, data) = etherparse::TcpHeader::from_slice(rest).expect("tcp");
        let want = t
            .calc_checksum_ipv4_raw(ip.source, ip.destination, data)
            .expect("len");
        assert!(!csum_eq(t.checksum, want), "corrupt TCP segment made valid");
    }
    let mut pkt = icmp6_pkt(&V6::out(), 128, 0, echo_rest(1, 1), b"abcdefgh");
    let n = pkt.len();
    pkt[n - 1] ^= 0x01;
    if let Out::Fwd { pkt: out, .. } = six(&pkt) {
        assert!(!icmp4_valid(&out), "corrupt echo request made valid");
    }
}

/// True if the ICMPv4 checksum of `pkt` verifies (etherparse recomputation).
fn icmp4_valid(pkt: &[u8]) -> bool {
    let (_, msg) = parse4(pkt);
    let want = etherparse::Icmpv4Type::Unknown {
        type_u8: msg[0],
        code_u8: msg[1],
        bytes5to8: [msg[4], msg[5], msg[6], msg[7]],
    }
    .calc_checksum(&msg[8..]);
    csum_eq(u16::from_be_bytes([msg[2], msg[3]]), want)
}

/// §5 (quoted above): "the checksum MUST be evaluated before translation".
/// An ICMPv6 error with a wrong checksum must be dropped (or stay invalid),
/// not turned into a valid ICMPv4 error by recomputing from scratch.
#[test]
fn rfc7915_5_3_corrupt_icmp_error_not_laundered() {
    let inner = quoted_udp6(60, 20);
    let mut pkt = icmp6_err(1, 4, [0; 4], &inner);
    let n = pkt.len();
    pkt[n - 1] ^= 0x01;
    match six(&pkt) {
        Out::Fwd { pkt: out, .. } => assert!(!icmp4_valid(&out), "corrupt ICMPv6 error made valid"),
        Out::Drop(_) => {}
        other => panic!("unexpected {other:?}"),
    }
}

/// RFC 768 / RFC 9293 §3.1 (issue 11 #13): headers whose lengths disagree
/// with the packet are not translated: a UDP length other than the IPv6
/// payload length, a TCP data offset below 5 words or past the segment.
#[test]
fn rfc768_rfc9293_3_1_lying_lengths_dropped() {
    let h = V6::out();
    let mut udp = udp6_pkt(&h, 1000, 53, b"hello world");
    // UDP length 8 bytes short of the datagram (IPv6 header is 40 bytes).
    let ul = u16::from_be_bytes([udp[44], udp[45]]);
    udp[44..46].copy_from_slice(&(ul - 8).to_be_bytes());
    assert_eq!(six(&udp).reason(), Some(DropReason::BadL4Header));
    udp[44..46].copy_from_slice(&(ul + 8).to_be_bytes());
    assert_eq!(six(&udp).reason(), Some(DropReason::BadL4Header));
    for doff in [2u8, 15] {
        let mut tcp = tcp6_pkt(&h, 1000, 80, b"data");
        tcp[40 + 12] = doff << 4;
        assert_eq!(
            six(&tcp).reason(),
            Some(DropReason::BadL4Header),
            "doff {doff}"
        );
    }
    // The honest packets translate.
    assert!(six(&udp6_pkt(&h, 1000, 53, b"hello world")).is_fwd());
    assert!(six(&tcp6_pkt(&h, 1000, 80, b"data")).is_fwd());
}

/// §5.3 with §5.5: an ICMPv6 error quoting a packet of a protocol without
/// ports (SCTP) is translated too; addresses mapped, protocol and payload
/// kept.
#[test]
fn rfc7915_5_3_inner_sctp_translated() {
    let body = payload(32);
    let inner = ipv6(
        &V6::out().src(v6_server()).dst(v6_client()).hop(57),
        132,
        &[],
        &body,
    );
    let pkt = icmp6_err(1, 4, [0; 4], &inner);
    let (ip, msg) = icmp_6to4_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!(ip.destination, V4_SERVER);
    let (ih, il4) = parse4_inner(&msg[8..]);
    assert_eq!(ih.source, V4_SERVER);
    assert_eq!(ih.destination, V4_CLIENT);
    assert_eq!(ih.protocol, IpNumber(132));
    assert_eq!(il4, &body[..]);
}
