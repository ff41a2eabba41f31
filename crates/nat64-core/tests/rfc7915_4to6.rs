//! RFC 7915 §4 (IPv4 → IPv6) conformance tests.
//!
//! Fixtures are built with `etherparse` or written out from the RFC layouts;
//! outputs are parsed and their checksums recomputed with `etherparse`.
//! Each test cites the rule it checks.

mod common;

use common::*;
use etherparse::{IpNumber, Ipv6FragmentHeader};
use nat64_core::xlat::{Config, Role, UdpZeroChecksum};
use nat64_core::{DropReason, IcmpError};

// ===========================================================================
// §4.1 Translating IPv4 Headers into IPv6 Headers
// ===========================================================================

/// §4.1 "Version: 6", "Flow Label: 0 (all zero bits)", "Payload Length:
/// Total length value from the IPv4 header, minus the size of the IPv4
/// header and IPv4 options, if present", addresses per the mapping.
#[test]
fn rfc7915_4_1_basic_header_fields() {
    let data = payload(100);
    let pkt = tcp4_pkt(&V4::inb(), 80, 40000, &data);
    let out = four(&pkt).whole();
    let (ip, rest) = parse6(&out); // checks version and payload length
    assert_eq!(ip.flow_label.value(), 0, "flow label 0");
    assert_eq!(ip.payload_length as usize, pkt.len() - 20);
    assert_eq!(ip.source, v6_server());
    assert_eq!(ip.destination, v6_client());
    assert_eq!(ip.next_header, IpNumber(TCP));
    assert_eq!(&rest[20..], &data[..], "data portion left unchanged (§4)");
}

/// §4.1 "Traffic Class: By default, copied from the IP Type Of Service
/// (TOS) octet."
#[test]
fn rfc7915_4_1_traffic_class_copied_from_tos() {
    for tos in [0x00u8, 0xb8, 0xb9, 0x2a, 0xff] {
        let out = four(&udp4_pkt(&V4::inb().tos(tos), 1, 2, b"x")).whole();
        let (ip, _) = parse6(&out);
        assert_eq!(ip.traffic_class, tos, "TOS {tos:#x}");
    }
}

/// §4.1 Traffic Class: "According to [RFC2474], the semantics of the bits
/// are identical in IPv4 and IPv6. However, in some IPv4 environments these
/// fields might be used with the old semantics ... implementations of a
/// translator SHOULD support an administratively configurable option to
/// ignore the IPv4 TOS and always set the IPv6 traffic class (TC) to zero."
#[test]
fn rfc7915_4_1_traffic_class_zero_when_not_copied() {
    let cfg = Config {
        copy_tos: false,
        ..Config::default()
    };
    let out = four_cfg(&udp4_pkt(&V4::inb().tos(0xb8), 1, 2, b"x"), &cfg).whole();
    let (ip, _) = parse6(&out);
    assert_eq!(ip.traffic_class, 0);
}

/// §4.1 "Hop Limit: TTL value copied from the IPv4 header. Since the
/// translator is a router, as part of forwarding the packet it needs to
/// decrement either the IPv4 TTL (before the translation) or the IPv6 Hop
/// Limit (after the translation)."
#[test]
fn rfc7915_4_1_hop_limit_is_ttl_minus_one() {
    for ttl in [2u8, 64, 255] {
        let out = four(&tcp4_pkt(&V4::inb().ttl(ttl), 1, 2, b"")).whole();
        let (ip, _) = parse6(&out);
        assert_eq!(ip.hop_limit, ttl - 1);
    }
}

/// §4.1 Hop Limit: "As part of decrementing the TTL or Hop Limit, the
/// translator (as any router) MUST check for zero and send the ICMPv4 'TTL
/// Exceeded' or ICMPv6 'Hop Limit Exceeded' error."
#[test]
fn rfc7915_4_1_ttl_exhausted_time_exceeded() {
    for ttl in [0u8, 1] {
        let pkt = udp4_pkt(&V4::inb().ttl(ttl), 1, 2, b"abc");
        let e = four(&pkt).icmp(); // also asserts the packet is left intact
        assert!(is_time_exceeded(&e), "TTL {ttl}: got {e:?}");
    }
}

/// §4.1 "Next Header: For ICMPv4 (1), it is changed to ICMPv6 (58);
/// otherwise, the protocol field MUST be copied from the IPv4 header."
#[test]
fn rfc7915_4_1_next_header_icmp_becomes_58() {
    let pkt = icmp4_pkt(&V4::inb(), 8, 0, echo_rest(1, 1), b"ping");
    let (ip, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!(ip.next_header, IpNumber(ICMP6));
    assert_eq!(msg[0], 128);
}

/// §4.1 "If IPv4 options are present in the IPv4 packet, they MUST be
/// ignored (i.e., there is no attempt to translate the options)."
#[test]
fn rfc7915_4_1_ipv4_options_ignored() {
    // Record Route (7), NOP, Timestamp (68), End of Options: 24 bytes.
    let opts = [
        7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, // RR + NOP
        68, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, // TS (ptr 5 ≤ len: not full)
    ];
    let h = V4::inb().options(&opts);
    let data = payload(50);
    let pkt = tcp4_pkt(&h, 80, 40000, &data);
    assert_eq!(pkt.len(), 44 + 20 + 50);
    let out = four(&pkt).whole();
    let (ip, rest) = parse6(&out);
    assert_eq!(
        ip.next_header,
        IpNumber(TCP),
        "no extension header for options"
    );
    assert_eq!(ip.payload_length as usize, 20 + 50, "options not counted");
    assert_tcp6(ip.source, ip.destination, rest);
}

/// §4.1: "However, if an unexpired source route option is present, then the
/// packet MUST instead be discarded, and an ICMPv4 'Destination Unreachable,
/// Source Route Failed' (Type 3, Code 5) error message SHOULD be returned to
/// the sender."
#[test]
fn rfc7915_4_1_unexpired_source_route_unreachable() {
    for kind in [131u8, 137] {
        // LSRR / SSRR, length 11, pointer 4 (first address not yet used).
        let opts = [kind, 11, 4, 192, 0, 2, 1, 192, 0, 2, 2, 0];
        let pkt = udp4_pkt(&V4::inb().options(&opts), 1, 2, b"x");
        assert_eq!(
            four(&pkt).icmp(),
            IcmpError::DestUnreachableV4 { code: 5 },
            "option {kind}"
        );
    }
}

/// §4.1: only an *unexpired* source route stops translation; an expired one
/// (pointer past the option's length, RFC 791) is ignored like any option.
#[test]
fn rfc7915_4_1_expired_source_route_ignored() {
    for kind in [131u8, 137] {
        let opts = [kind, 11, 12, 192, 0, 2, 1, 192, 0, 2, 2, 0];
        let pkt = udp4_pkt(&V4::inb().options(&opts), 1, 2, b"x");
        let out = four(&pkt).whole();
        let (ip, rest) = parse6(&out);
        assert_eq!(ip.next_header, IpNumber(UDP));
        assert_udp6(ip.source, ip.destination, rest);
    }
}

/// §4: "As a result, an IPv6 Fragment Header is only included if the IPv4
/// packet is already fragmented." §4.1: "When the IPv4 sender does not set
/// the DF bit, the translator MUST NOT include the Fragment Header for the
/// non-fragmented IPv6 packets."
#[test]
fn rfc7915_4_1_no_fragment_header_for_unfragmented() {
    for df in [false, true] {
        let pkt = udp4_pkt(&V4::inb().df(df), 1, 2, &payload(300));
        let out = four(&pkt).whole();
        let (ip, rest) = parse6(&out);
        assert_eq!(ip.next_header, IpNumber(UDP), "DF={df}: no Fragment header");
        assert_eq!(out.len(), pkt.len() + 20);
        assert_udp6(ip.source, ip.destination, rest);
    }
}

/// §4.1 (fragmented IPv4): "If there is a need to add a Fragment Header (the
/// packet is a fragment or the DF bit is not set and the packet size is
/// greater than the minimum IPv6 MTU in the IPv6 domain), the packet is
/// translated into IPv6 with a Fragment Header: Payload Length: Total length
/// value from the IPv4 header, plus 8 for the Fragment Header, minus the size
/// of the IPv4 header and IPv4 options, if present. Next Header: Fragment
/// Header (44)." Fragment Header: "Next Header: For ICMPv4 (1), it is
/// changed to ICMPv6 (58); otherwise, the protocol field MUST be copied from
/// the IPv4 header. Fragment Offset: Copied from the Fragment Offset field
/// of the IPv4 header. M flag: Copied from the More Fragments (MF) flag of
/// the IPv4 header. Identification: The high-order 16 bits are set to zero,
/// and the low-order 16 bits are copied from the Identification field in the
/// IPv4 header."
#[test]
fn rfc7915_4_1_fragment_header_for_fragments() {
    let body = payload(400);
    let cases = [(0u16, true), (50, true), (100, false)];
    for (offset, mf) in cases {
        let h = V4::inb().df(false).frag(0xabcd, offset, mf);
        let pkt = ipv4(&h, UDP, &body);
        let out = four(&pkt).whole();
        let (ip, rest) = parse6(&out);
        assert_eq!(ip.next_header, IpNumber(FRAGMENT));
        assert_eq!(ip.payload_length as usize, 8 + body.len());
        let (fh, data) = Ipv6FragmentHeader::from_slice(rest).expect("fragment header");
        assert_eq!(fh.next_header, IpNumber(UDP));
        assert_eq!(fh.fragment_offset.value(), offset);
        assert_eq!(fh.more_fragments, mf);
        assert_eq!(fh.identification, 0x0000_abcd);
        if offset != 0 {
            assert_eq!(data, &body[..], "non-first fragment data is opaque");
        }
    }
}

/// §4.1: "If the DF flag is not set and the IPv4 packet will result in an
/// IPv6 packet larger than a user-defined length (hereinafter referred to as
/// 'lowest-ipv6-mtu', and which defaults to 1280 bytes), the packet SHOULD
/// be fragmented so that the resulting IPv6 packet (with Fragment Header
/// added to each fragment) will be less than or equal to lowest-ipv6-mtu."
#[test]
fn rfc7915_4_1_df_clear_large_fragmented_to_lowest_ipv6_mtu() {
    // IPv4 1260 → IPv6 1280: fits.
    let pkt = udp4_pkt(&V4::inb().df(false), 1, 2, &payload(1260 - 28));
    let out = four(&pkt).whole();
    assert_eq!(out.len(), 1280);
    // IPv4 1261 → IPv6 1281: must be fragmented to 1280.
    let pkt = udp4_pkt(&V4::inb().df(false), 1, 2, &payload(1261 - 28));
    match four(&pkt) {
        Out::Fwd { fragment_mtu, .. } => assert_eq!(fragment_mtu, Some(1280)),
        other => panic!("expected Forward with fragment_mtu, got {other:?}"),
    }
}

/// §4.1 (as above) applies to IPv4 packets that are already fragments too:
/// the rule is "If the DF flag is not set and the IPv4 packet will result in
/// an IPv6 packet larger than ... lowest-ipv6-mtu", and §4: "when the IPv4
/// sender does not set the DF bit, the translator MUST ensure that the
/// packet does not exceed the path MTU on the IPv6 side. This is done by
/// fragmenting the IPv4 packet (with Fragment Headers) so that it fits in
/// 1280-byte IPv6 packets".
#[test]
fn rfc7915_4_1_df_clear_fragment_refragmented_to_lowest_ipv6_mtu() {
    // An IPv4 fragment (DF=0, MF=1) of 1420 bytes → IPv6 1448 bytes.
    let h = V4::inb().df(false).frag(7, 0, true);
    let pkt = ipv4(&h, UDP, &udp4(V4_SERVER, V4_CLIENT, 1, 2, &payload(1392)));
    match four(&pkt) {
        Out::Fwd { fragment_mtu, .. } => assert_eq!(fragment_mtu, Some(1280)),
        other => panic!("expected Forward with fragment_mtu, got {other:?}"),
    }
}

/// §4.1: "The translator MUST provide a configuration function for the
/// network administrator to adjust the threshold of the minimum IPv6 MTU to a
/// value greater than 1280 bytes."
#[test]
fn rfc7915_4_1_lowest_ipv6_mtu_configurable() {
    let cfg = Config {
        lowest_ipv6_mtu: 1400,
        ..Config::default()
    };
    let pkt = udp4_pkt(&V4::inb().df(false), 1, 2, &payload(1380 - 28));
    let out = four_cfg(&pkt, &cfg).whole();
    assert_eq!(out.len(), 1400);
    let pkt = udp4_pkt(&V4::inb().df(false), 1, 2, &payload(1381 - 28));
    match four_cfg(&pkt, &cfg) {
        Out::Fwd { fragment_mtu, .. } => assert_eq!(fragment_mtu, Some(1400)),
        other => panic!("expected Forward with fragment_mtu, got {other:?}"),
    }
}

/// §4.1: "If the DF bit is set and the MTU of the next-hop interface is less
/// than the total length value of the IPv4 packet plus 20, the translator
/// MUST send an ICMPv4 'Fragmentation Needed' error message to the IPv4
/// source address." The MTU it reports is the IPv6 next-hop MTU minus 20.
/// DF packets that fit are forwarded whole, without a Fragment header, even
/// above lowest-ipv6-mtu (PMTUD works end to end).
#[test]
fn rfc7915_4_1_df_set_too_big_fragmentation_needed() {
    let pkt = tcp4_pkt(&V4::inb(), 1, 2, &payload(1481 - 40));
    assert_eq!(
        four(&pkt).icmp(),
        IcmpError::FragmentationNeeded { mtu: 1480 }
    );
    let pkt = tcp4_pkt(&V4::inb(), 1, 2, &payload(1480 - 40));
    let out = four(&pkt).whole();
    let (ip, rest) = parse6(&out);
    assert_eq!(out.len(), 1500);
    assert_eq!(ip.next_header, IpNumber(TCP));
    assert_tcp6(ip.source, ip.destination, rest);

    let cfg = Config {
        ipv6_link_mtu: 1280,
        ..Config::default()
    };
    let pkt = tcp4_pkt(&V4::inb(), 1, 2, &payload(1300 - 40));
    assert_eq!(
        four_cfg(&pkt, &cfg).icmp(),
        IcmpError::FragmentationNeeded { mtu: 1260 }
    );
}

/// RFC 1812 §5.2.2 (a router verifies the IPv4 header checksum) — the
/// translator is a router (RFC 7915 §1.4); a corrupt header is dropped.
#[test]
fn rfc7915_4_1_bad_ipv4_header_checksum_dropped() {
    let mut pkt = udp4_pkt(&V4::inb(), 1, 2, b"x");
    pkt[10] ^= 0x55;
    assert_eq!(four(&pkt), Out::Drop(DropReason::BadIpv4Checksum));
}

/// RFC 7915 §4.6 ("addressed to an IPv4 destination representing
/// a host in the IPv6 domain"): multicast, broadcast, loopback and
/// unspecified addresses are not translated and never answered. They are
/// counted as `out_of_scope_v4` (RFC 1812 §5.3.7; the full range rule is
/// in tests/rfc_edge_cases.rs): `not_for_translation` is for IPv6 only.
#[test]
fn rfc7915_4_6_multicast_broadcast_loopback_not_translated() {
    let cases = [
        V4::inb().dst([224, 0, 0, 251]),
        V4::inb().dst([239, 1, 2, 3]),
        V4::inb().dst([255, 255, 255, 255]),
        V4::inb().src([127, 0, 0, 1]),
        V4::inb().src([0, 0, 0, 0]),
    ];
    for h in cases {
        let pkt = udp4_pkt(&h, 1, 2, b"x");
        assert_eq!(four(&pkt), Out::Drop(DropReason::OutOfScopeV4), "{h:?}");
    }
}

// ===========================================================================
// §4.2 Translating ICMPv4 Headers into ICMPv6 Headers
// ===========================================================================

/// §4.2 "Echo and Echo Reply (Type 8 and Type 0): Adjust the Type values to
/// 128 and 129, respectively, and adjust the ICMP checksum both to take the
/// type change into account and to include the ICMPv6 pseudo-header."
#[test]
fn rfc7915_4_2_echo_request_and_reply() {
    for (t4, t6) in [(8u8, 128u8), (0, 129)] {
        let body = payload(56);
        let pkt = icmp4_pkt(&V4::inb(), t4, 0, echo_rest(0x4242, 17), &body);
        let (_, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut stateless());
        assert_eq!((msg[0], msg[1]), (t6, 0));
        assert_eq!(&msg[4..8], &echo_rest(0x4242, 17));
        assert_eq!(&msg[8..], &body[..]);
    }
}

/// RFC 6146 §3.4 with RFC 7915 §4.2: the identifier is mapped back (the
/// mapper's destination "port"), checksum valid.
#[test]
fn rfc7915_4_2_echo_identifier_mapped() {
    let h = V4::inb().dst(NAT_POOL4);
    let pkt = icmp4_pkt(&h, 0, 0, echo_rest(4000 + PORT_SHIFT, 9), b"pong");
    let mut m = NatMapper::default();
    let (ip, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut m);
    assert_eq!(ip.destination, NAT_CLIENT6);
    assert_eq!(msg[0], 129);
    assert_eq!(&msg[4..8], &echo_rest(4000, 9));
    let (t, meta) = m.calls4[0];
    assert_eq!(
        (t.src_port, t.dst_port),
        (5000, 5000),
        "tuple ports = identifier"
    );
    assert_eq!(meta.role, Role::Outer);
}

/// §4.2 "Information Request/Reply (Type 15 and Type 16): Obsoleted in
/// ICMPv6. Silently drop." "Timestamp and Timestamp Reply (Type 13 and Type
/// 14): Obsoleted in ICMPv6. Silently drop." "Address Mask Request/Reply
/// (Type 17 and Type 18): Obsoleted in ICMPv6. Silently drop." "ICMP Router
/// Advertisement (Type 9): Single-hop message. Silently drop." "ICMP Router
/// Solicitation (Type 10): Single-hop message. Silently drop." "Unknown
/// ICMPv4 types: Silently drop."
#[test]
fn rfc7915_4_2_untranslatable_informational_dropped() {
    for ty in [9u8, 10, 13, 14, 15, 16, 17, 18, 42, 253] {
        let pkt = icmp4_pkt(&V4::inb(), ty, 0, [0; 4], &[0u8; 12]);
        assert_eq!(
            four(&pkt),
            Out::Drop(DropReason::IcmpUntranslatableType),
            "ICMPv4 type {ty}"
        );
    }
}

/// §4.2 "IGMP messages: ... all the 'normal' IGMP messages are single-hop
/// messages and SHOULD be silently dropped by the translator."
#[test]
fn rfc7915_4_2_igmp_dropped() {
    // IGMPv2 membership report (type 0x16), RFC 2236 layout, sent unicast.
    let mut igmp = vec![0x16, 0, 0, 0, 239, 1, 2, 3];
    let c = etherparse::checksum::Sum16BitWords::new()
        .add_slice(&igmp)
        .ones_complement();
    igmp[2..4].copy_from_slice(&c.to_be_bytes());
    let pkt = ipv4(&V4::inb().ttl(64), 2, &igmp);
    assert!(
        matches!(four(&pkt), Out::Drop(_)),
        "IGMP must be silently dropped"
    );
}

/// The packet quoted in ICMPv4 errors below: a UDP datagram that went from
/// the IPv6 client (as 192.0.2.33) to the IPv4 server.
fn quoted_udp4(ttl: u8, data_len: usize) -> Vec<u8> {
    let h = V4::inb().src(V4_CLIENT).dst(V4_SERVER).ttl(ttl);
    udp4_pkt(&h, 4000, 53, &payload(data_len))
}

/// An ICMPv4 error sent by an IPv4 router about `inner`.
fn icmp4_err(ty: u8, code: u8, rest: [u8; 4], inner: &[u8]) -> Vec<u8> {
    icmp4_pkt(&V4::inb().src(V4_ROUTER), ty, code, rest, inner)
}

/// §4.2 "Source Quench (Type 4): Obsoleted in ICMPv6. Silently drop."
/// "Redirect (Type 5): Single-hop message. Silently drop." "Alternative Host
/// Address (Type 6): Silently drop." "Unknown ICMPv4 types: Silently drop."
#[test]
fn rfc7915_4_2_untranslatable_errors_dropped() {
    let inner = quoted_udp4(60, 8);
    for ty in [4u8, 5, 6, 31, 40] {
        let pkt = icmp4_err(ty, 0, [0; 4], &inner);
        assert_eq!(
            four(&pkt),
            Out::Drop(DropReason::IcmpUntranslatableType),
            "ICMPv4 type {ty}"
        );
    }
}

/// §4.2 Destination Unreachable (Type 3): "Translate the Code as described
/// below, set the Type to 1": codes 0 and 1 → 0; code 2 → Parameter Problem
/// (Type 4, Code 1) pointing at the IPv6 Next Header field (6); code 3 → 4;
/// codes 5 to 8 → 0; codes 9 and 10 → 1; codes 11 and 12 → 0; code 13 → 1;
/// code 14 (Host Precedence Violation) → silently drop; code 15 (Precedence
/// cutoff in effect) → 1; "Other Code values: Silently drop."
#[test]
fn rfc7915_4_2_dest_unreachable_code_map() {
    let inner = quoted_udp4(60, 20);
    let map = [
        (0u8, 0u8),
        (1, 0),
        (3, 4),
        (5, 0),
        (6, 0),
        (7, 0),
        (8, 0),
        (9, 1),
        (10, 1),
        (11, 0),
        (12, 0),
        (13, 1),
        (15, 1),
    ];
    for (c4, c6) in map {
        let pkt = icmp4_err(3, c4, [0; 4], &inner);
        let (_, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut stateless());
        assert_eq!((msg[0], msg[1]), (1, c6), "ICMPv4 3/{c4}");
    }
    let pkt = icmp4_err(3, 2, [0; 4], &inner);
    let (_, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!(
        (msg[0], msg[1]),
        (4, 1),
        "protocol unreachable → param problem"
    );
    assert_eq!(&msg[4..8], &6u32.to_be_bytes(), "pointer to Next Header");
    for c4 in [14u8, 16, 99] {
        let pkt = icmp4_err(3, c4, [0; 4], &inner);
        assert_eq!(
            four(&pkt),
            Out::Drop(DropReason::IcmpUntranslatableCode),
            "ICMPv4 3/{c4}"
        );
    }
}

/// An ICMPv4 Fragmentation Needed quoting the start of a big TCP packet whose
/// IPv4 Total Length is `total_len`.
fn frag_needed(mtu: u16, total_len: u16) -> Vec<u8> {
    let h = V4::inb().src(V4_CLIENT).dst(V4_SERVER);
    let data = payload(total_len as usize - 40);
    let full = tcp4_pkt(&h, 4000, 80, &data);
    let m = mtu.to_be_bytes();
    icmp4_err(3, 4, [0, 0, m[0], m[1]], &full[..20 + 20 + 8])
}

/// §4.2 Code 4 (Fragmentation Needed and DF was Set): "Translate to an
/// ICMPv6 Packet Too Big message (Type 2) with Code set to 0. The MTU field
/// MUST be adjusted for the difference between the IPv4 and IPv6 header
/// sizes, taking into account whether or not the packet in error includes a
/// Fragment Header, i.e., minimum(advertised MTU+20, MTU_of_IPv6_nexthop,
/// (MTU_of_IPv4_nexthop)+20)." §5: "the indicated MTU in the resulting
/// ICMPv6 'Packet Too Big' will never be set to a value lower than 1280."
#[test]
fn rfc7915_4_2_fragmentation_needed_to_packet_too_big() {
    let cases = [
        // (advertised, ipv4_mtu, ipv6_link_mtu, expected)
        (1400u16, 1500u16, 1500u16, 1420u32),
        (1260, 1500, 1500, 1280),
        (1000, 1500, 1500, 1280),
        (576, 1500, 1500, 1280),
        (1492, 1500, 1500, 1500),
        (1492, 1400, 1500, 1420),
        (8000, 9000, 9000, 8020),
    ];
    for (adv, v4, v6, want) in cases {
        let cfg = Config {
            ipv4_mtu: v4,
            ipv6_link_mtu: v6,
            ..Config::default()
        };
        let pkt = frag_needed(adv, 1500);
        let (_, msg) = icmp_4to6_fwd(&pkt, &cfg, &mut stateless());
        assert_eq!((msg[0], msg[1]), (2, 0));
        assert_eq!(
            u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]),
            want,
            "advertised {adv}, ipv4 {v4}, ipv6 {v6}"
        );
    }
}

/// §4.2 Code 4: "Note that if the IPv4 router set the MTU field to zero,
/// i.e., the router does not implement [RFC1191], then the translator MUST
/// use the plateau values specified in [RFC1191] to determine a likely path
/// MTU and include that path MTU in the ICMPv6 packet. (Use the greatest
/// plateau value that is less than the returned Total Length field, but that
/// is larger than or equal to 1280.)" RFC 1191 plateaus: 65535, 32000,
/// 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68.
///
/// The RFC leaves open whether the +20 header adjustment applies to the
/// plateau, so both readings are accepted; the result is then bounded by the
/// next-hop MTUs and by 1280 as above.
#[test]
fn rfc7915_4_2_fragmentation_needed_mtu_zero_uses_plateaus() {
    // Total Length 1500 → plateau 1492 (→ 1492 or 1512, ≤ IPv6 link 1500).
    let (_, msg) = icmp_4to6_fwd(&frag_needed(0, 1500), &Config::default(), &mut stateless());
    let mtu = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
    assert!(mtu == 1492 || mtu == 1500, "plateau MTU, got {mtu}");
    // Total Length 1400 → greatest plateau below is 1006 < 1280 → 1280.
    let (_, msg) = icmp_4to6_fwd(&frag_needed(0, 1400), &Config::default(), &mut stateless());
    let mtu = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
    assert_eq!(mtu, 1280);
    // Jumbo link: Total Length 4000 → plateau 2002.
    let cfg = Config {
        ipv4_mtu: 9000,
        ipv6_link_mtu: 9000,
        ..Config::default()
    };
    let (_, msg) = icmp_4to6_fwd(&frag_needed(0, 4000), &cfg, &mut stateless());
    let mtu = u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]);
    assert!(mtu == 2002 || mtu == 2022, "plateau MTU, got {mtu}");
}

/// §4.2 "Time Exceeded (Type 11): Set the Type to 3, and adjust the ICMP
/// checksum both to take the type change into account and to include the
/// ICMPv6 pseudo-header. The Code is unchanged."
#[test]
fn rfc7915_4_2_time_exceeded() {
    let inner = quoted_udp4(1, 20);
    for code in [0u8, 1] {
        let pkt = icmp4_err(11, code, [0; 4], &inner);
        let (_, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut stateless());
        assert_eq!((msg[0], msg[1]), (3, code));
    }
}

/// §4.2 Parameter Problem (Type 12): "Set the Type to 4 ... Code 0 (Pointer
/// indicates the error): Set the Code to 0 (Erroneous header field
/// encountered) and update the pointer as defined in Figure 3. (If the
/// Original IPv4 Pointer Value is not listed or the Translated IPv6 Pointer
/// Value is listed as 'n/a', silently drop the packet.) Code 1 (Missing a
/// required option): Silently drop. Code 2 (Bad length): Set the Code to 0
/// (Erroneous header field encountered) and update the pointer as defined in
/// Figure 3 ... Other Code values: Silently drop."
/// Figure 3: 0→0, 1→1, 2,3→4, 4..7→n/a, 8→7, 9→6, 10,11→n/a, 12..15→8,
/// 16..19→24.
#[test]
fn rfc7915_4_2_param_problem_pointer_map() {
    let inner = quoted_udp4(60, 20);
    let mut expect: Vec<(u8, Option<u32>)> = vec![
        (0, Some(0)),
        (1, Some(1)),
        (2, Some(4)),
        (3, Some(4)),
        (4, None),
        (5, None),
        (6, None),
        (7, None),
        (8, Some(7)),
        (9, Some(6)),
        (10, None),
        (11, None),
    ];
    expect.extend((12..16).map(|p| (p, Some(8))));
    expect.extend((16..20).map(|p| (p, Some(24))));
    expect.extend([20u8, 21, 200].map(|p| (p, None)));
    for code in [0u8, 2] {
        for &(p4, p6) in &expect {
            let pkt = icmp4_err(12, code, [p4, 0, 0, 0], &inner);
            match p6 {
                Some(p6) => {
                    let (_, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut stateless());
                    assert_eq!((msg[0], msg[1]), (4, 0), "12/{code} pointer {p4}");
                    assert_eq!(
                        u32::from_be_bytes([msg[4], msg[5], msg[6], msg[7]]),
                        p6,
                        "12/{code} IPv4 pointer {p4}"
                    );
                }
                None => assert_eq!(
                    four(&pkt),
                    Out::Drop(DropReason::IcmpUntranslatablePointer),
                    "12/{code} IPv4 pointer {p4}"
                ),
            }
        }
    }
    for code in [1u8, 3, 50] {
        let pkt = icmp4_err(12, code, [0, 0, 0, 0], &inner);
        assert!(
            matches!(four(&pkt), Out::Drop(_)),
            "ICMPv4 parameter problem code {code} must be silently dropped"
        );
    }
}

/// §4.2 "ICMP Error Payload: If the received ICMPv4 packet contains an
/// ICMPv4 Extension [RFC4884], the translation of the ICMPv4 packet will
/// cause the ICMPv6 packet to change length. When this occurs, the ICMPv6
/// Extension length attribute MUST be adjusted accordingly (e.g., longer due
/// to the translation from IPv4 to IPv6)." RFC 4884: ICMPv4 length (octet 6)
/// in 32-bit words, ICMPv6 length (octet 5) in 64-bit words, original
/// datagram zero-padded to the word and at least 128 octets.
#[test]
fn rfc7915_4_2_rfc4884_extension_length_attribute() {
    let inner = quoted_udp4(60, 100); // 20 + 8 + 100 = 128 = 32 words of 32 bits
    assert_eq!(inner.len(), 128);
    let ext = rfc4884_extension();
    let mut body = inner.clone();
    body.extend_from_slice(&ext);
    let pkt = icmp4_err(11, 0, [0, 32, 0, 0], &body);
    let (_, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!((msg[0], msg[1]), (3, 0));
    let words = msg[4] as usize;
    // Inner translated: 148 bytes, padded to 152 = 19 words of 64 bits.
    assert_eq!(words, 19, "ICMPv6 length attribute in 64-bit words");
    let (ih, _) = parse6_inner(&msg[8..]);
    assert_eq!(ih.payload_length, 108);
    assert!(
        msg[8 + 148..8 + words * 8].iter().all(|&b| b == 0),
        "zero padding"
    );
    assert_eq!(&msg[8 + words * 8..], &ext[..], "extension passed opaque");
}

// ===========================================================================
// §4.3 Translating ICMPv4 Error Messages into ICMPv6
// ===========================================================================

/// §4.3: "The ICMP error messages containing the packet in error MUST be
/// translated just like a normal IP packet (except the TTL value of the
/// inner IPv4/IPv6 packet). If the translation of this 'packet in error'
/// changes the length of the datagram, the Total Length field in the outer
/// IPv6 header MUST be updated." §4.1: the source of an ICMPv4 error from a
/// router is translated ("the 'illegal' source address will be translated
/// for the purpose of trouble shooting").
#[test]
fn rfc7915_4_3_inner_packet_translated() {
    let inner = quoted_udp4(1, 20);
    let pkt = icmp4_err(11, 0, [0; 4], &inner);
    let (ip, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!(ip.source, embed(V4_ROUTER));
    assert_eq!(ip.destination, v6_client());
    assert_eq!(ip.hop_limit, 63, "outer hop limit decremented");
    assert_eq!(ip.payload_length as usize, 8 + inner.len() + 20);
    let (ih, il4) = parse6_inner(&msg[8..]);
    assert_eq!(ih.source, v6_client());
    assert_eq!(ih.destination, v6_server());
    assert_eq!(ih.hop_limit, 1, "inner TTL not decremented");
    assert_eq!(ih.next_header, IpNumber(UDP));
    assert_eq!(ih.flow_label.value(), 0);
    assert_eq!(ih.payload_length as usize, inner.len() - 20);
    let u = assert_udp6(ih.source, ih.destination, il4);
    assert_eq!((u.source_port, u.destination_port), (4000, 53));
}

/// §4.3 with RFC 6146 §3.4: inner addresses and ports mapped back through the
/// binding (mapper called with the swapped inner tuple, Role::IcmpErrorInner).
#[test]
fn rfc7915_4_3_inner_ports_mapped() {
    // client6:4000 → server:53 left as 203.0.113.1:5000 → 198.51.100.10:53;
    // a router reports it expired.
    let ih4 = V4::inb().src(NAT_POOL4).dst(V4_SERVER).ttl(1);
    let inner = udp4_pkt(&ih4, 4000 + PORT_SHIFT, 53, b"dns query");
    let pkt = icmp4_pkt(
        &V4::inb().src(V4_ROUTER).dst(NAT_POOL4),
        11,
        0,
        [0; 4],
        &inner,
    );
    let mut m = NatMapper::default();
    let (ip, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut m);
    assert_eq!(ip.source, embed(V4_ROUTER));
    assert_eq!(ip.destination, NAT_CLIENT6);
    let (ih, il4) = parse6_inner(&msg[8..]);
    assert_eq!(ih.source, NAT_CLIENT6);
    assert_eq!(ih.destination, v6_server());
    let u = assert_udp6(ih.source, ih.destination, il4);
    assert_eq!((u.source_port, u.destination_port), (4000, 53));
    let inner_calls = m.inner_calls4();
    assert_eq!(inner_calls.len(), 1, "one inner lookup: {:?}", m.calls4);
    let t = inner_calls[0];
    assert_eq!(
        (t.src.octets(), t.src_port, t.dst.octets(), t.dst_port),
        (V4_SERVER, 53, NAT_POOL4, 4000 + PORT_SHIFT),
        "inner tuple swapped into the error's direction"
    );
}

/// §4.3: an ICMPv4 echo request quoted in an error is translated too (type 8
/// → 128, identifier mapped, inner ICMPv6 checksum with the inner
/// pseudo-header).
#[test]
fn rfc7915_4_3_inner_icmp_echo_translated() {
    let ih4 = V4::inb().src(NAT_POOL4).dst(V4_SERVER).ttl(1);
    let inner = icmp4_pkt(&ih4, 8, 0, echo_rest(4000 + PORT_SHIFT, 2), b"ping!");
    let pkt = icmp4_pkt(
        &V4::inb().src(V4_ROUTER).dst(NAT_POOL4),
        11,
        0,
        [0; 4],
        &inner,
    );
    let mut m = NatMapper::default();
    let (_, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut m);
    let (ih, imsg) = parse6_inner(&msg[8..]);
    assert_eq!(ih.next_header, IpNumber(ICMP6));
    assert_eq!(imsg[0], 128);
    assert_eq!(&imsg[4..8], &echo_rest(4000, 2));
    assert_icmp6(ih.source, ih.destination, imsg);
}

/// §4.3: "This process MUST stop at the first embedded header and drop the
/// packet if it contains more embedded headers."
#[test]
fn rfc7915_4_3_icmp_error_in_error_dropped() {
    let deepest = quoted_udp4(60, 8);
    let ih4 = V4::inb().src(V4_CLIENT).dst(V4_SERVER);
    let middle = icmp4_pkt(&ih4, 3, 3, [0; 4], &deepest);
    let pkt = icmp4_err(11, 0, [0; 4], &middle);
    assert_eq!(four(&pkt), Out::Drop(DropReason::IcmpErrorInError));
}

/// §4.3 + RFC 792: an ICMPv4 error may quote only the IP header and 8 bytes;
/// it is still translated, with the inner Payload Length taken from the
/// inner Total Length.
#[test]
fn rfc7915_4_3_truncated_inner_packet() {
    let full = quoted_udp4(30, 1000);
    let pkt = icmp4_err(3, 3, [0; 4], &full[..28]);
    let (ip, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!(ip.payload_length as usize, 8 + 40 + 8);
    let (ih, il4) = parse6_inner(&msg[8..]);
    assert_eq!(ih.payload_length as usize, 8 + 1000);
    assert_eq!(&il4[..4], &[0x0f, 0xa0, 0x00, 0x35], "ports 4000 → 53");
}

/// RFC 4443 §2.4(c): an ICMPv6 error "MUST include as much of the IPv6
/// offending (invoking) packet ... as possible without making the error
/// message packet exceed the minimum IPv6 MTU"; RFC 7915 §4.2 ICMP Error
/// Payload: "If the ICMPv4 Extension exceeds the maximum size of an ICMPv6
/// message on the outgoing interface, the ICMPv4 extension SHOULD be simply
/// truncated." A 1500-byte ICMPv4 error becomes at most 1280 bytes.
#[test]
fn rfc7915_4_3_translated_error_fits_ipv6_minimum_mtu() {
    let inner = quoted_udp4(60, 1500 - 28 - 28);
    let pkt = icmp4_err(3, 3, [0; 4], &inner);
    assert_eq!(pkt.len(), 1500);
    let out = four(&pkt).whole();
    assert!(out.len() <= 1280, "ICMPv6 error of {} bytes", out.len());
    let (ip, msg) = parse6(&out);
    assert_icmp6(ip.source, ip.destination, msg);
    let (ih, _) = parse6_inner(&msg[8..]);
    assert_eq!(ih.payload_length as usize, inner.len() - 20);
}

// ===========================================================================
// §4.4 Generation of ICMPv4 Error Message
// ===========================================================================

/// §4.4: "If the IPv4 packet is discarded, then the translator SHOULD be able
/// to send back an ICMPv4 error message to the original sender of the
/// packet, unless the discarded packet is itself an ICMPv4 error message."
#[test]
fn rfc7915_4_4_no_icmp_error_about_icmp_error() {
    let inner = quoted_udp4(60, 8);
    // TTL expiring on an ICMPv4 error.
    let pkt = icmp4_pkt(&V4::inb().src(V4_ROUTER).ttl(1), 3, 3, [0; 4], &inner);
    let out = four(&pkt);
    assert!(matches!(out, Out::Drop(_)), "got {out:?}");
    // Unexpired source route on an ICMPv4 error.
    let opts = [131u8, 11, 4, 192, 0, 2, 1, 192, 0, 2, 2, 0];
    let h = V4::inb().src(V4_ROUTER).options(&opts);
    let pkt = icmp4_pkt(&h, 3, 3, [0; 4], &inner);
    let out = four(&pkt);
    assert!(matches!(out, Out::Drop(_)), "got {out:?}");
    // An echo request with TTL 1 is answered (router behaviour, §4.1).
    let pkt = icmp4_pkt(&V4::inb().ttl(1), 8, 0, echo_rest(1, 1), b"");
    assert!(is_time_exceeded(&four(&pkt).icmp()));
}

// ===========================================================================
// §4.5 Transport-Layer Header Translation
// ===========================================================================

/// §4.5: "Translators MUST do this for TCP and ICMP packets and for UDP
/// packets that contain a UDP checksum (i.e., the UDP checksum field is not
/// zero)."
#[test]
fn rfc7915_4_5_tcp_checksum_updated() {
    for n in [0usize, 1, 2, 3, 513, 1400] {
        let pkt = tcp4_pkt(&V4::inb(), 443, 40000, &payload(n));
        let out = four(&pkt).whole();
        let (ip, rest) = parse6(&out);
        let t = assert_tcp6(ip.source, ip.destination, rest);
        assert_eq!((t.source_port, t.destination_port), (443, 40000));
    }
}

#[test]
fn rfc7915_4_5_udp_checksum_updated() {
    for n in [0usize, 1, 7, 1000] {
        let pkt = udp4_pkt(&V4::inb(), 53, 5353, &payload(n));
        let out = four(&pkt).whole();
        let (ip, rest) = parse6(&out);
        assert_udp6(ip.source, ip.destination, rest);
    }
}

/// §4.5 with a port-rewriting mapping (RFC 6146): ports mapped back and the
/// checksums verify.
#[test]
fn rfc7915_4_5_ports_mapped_checksums_valid() {
    let h = V4::inb().dst(NAT_POOL4);
    let mut m = NatMapper::default();
    let out = run(
        Dir::FourToSix,
        &tcp4_pkt(&h, 80, 4000 + PORT_SHIFT, b"HTTP/1.1 200"),
        &Config::default(),
        &mut m,
    )
    .whole();
    let (ip, rest) = parse6(&out);
    assert_eq!(ip.destination, NAT_CLIENT6);
    let t = assert_tcp6(ip.source, ip.destination, rest);
    assert_eq!((t.source_port, t.destination_port), (80, 4000));

    let out = run(
        Dir::FourToSix,
        &udp4_pkt(&h, 53, 4001 + PORT_SHIFT, b"answer"),
        &Config::default(),
        &mut m,
    )
    .whole();
    let (ip, rest) = parse6(&out);
    let u = assert_udp6(ip.source, ip.destination, rest);
    assert_eq!((u.source_port, u.destination_port), (53, 4001));
}

/// §4.5: "For UDP packets that do not contain a UDP checksum (i.e., the UDP
/// checksum field is zero), the translator SHOULD provide a configuration
/// function to allow: ... 2. Calculating an IPv6 checksum and forwarding the
/// packet" (`udp_zero_checksum = Calc`, the default).
#[test]
fn rfc7915_4_5_udp_zero_checksum_calculated() {
    for n in [0usize, 1, 100] {
        let pkt = ipv4(&V4::inb(), UDP, &udp4_nocsum(53, 5353, &payload(n)));
        let out = four(&pkt).whole();
        let (ip, rest) = parse6(&out);
        let u = assert_udp6(ip.source, ip.destination, rest);
        assert_ne!(
            u.checksum, 0,
            "IPv6 UDP checksum is mandatory (RFC 8200 §8.1)"
        );
    }
}

/// §4.5 "1. Dropping the packet and generating a system management event
/// that specifies at least the IP addresses and port numbers of the packet"
/// (`udp_zero_checksum = Drop`).
#[test]
fn rfc7915_4_5_udp_zero_checksum_drop_mode() {
    let cfg = Config {
        udp_zero_checksum: UdpZeroChecksum::Drop,
        ..Config::default()
    };
    let pkt = ipv4(&V4::inb(), UDP, &udp4_nocsum(53, 5353, b"x"));
    let out = four_cfg(&pkt, &cfg);
    assert!(!out.is_fwd());
    assert_eq!(out.reason(), Some(DropReason::UdpZeroChecksum));
}

/// §4.5: "A stateless translator cannot compute the UDP checksum of
/// fragmented packets, so when a stateless translator receives the first
/// fragment of a fragmented UDP IPv4 packet and the checksum field is zero,
/// the translator SHOULD drop the packet and generate a system management
/// event that specifies at least the IP addresses and port numbers in the
/// packet."
#[test]
fn rfc7915_4_5_udp_zero_checksum_fragment_dropped() {
    let h = V4::inb().df(false).frag(99, 0, true);
    let pkt = ipv4(&h, UDP, &udp4_nocsum(53, 5353, &payload(1000))[..504]);
    let out = four(&pkt);
    assert!(!out.is_fwd());
    assert_eq!(out.reason(), Some(DropReason::UdpZeroChecksumFragment));
}

/// RFC 7915 §4.5 with `udp-zero-checksum = "forward"`: forwarded with checksum 0.
#[test]
fn rfc7915_4_5_udp_zero_checksum_forward_mode() {
    let cfg = Config {
        udp_zero_checksum: UdpZeroChecksum::Forward,
        ..Config::default()
    };
    let pkt = ipv4(&V4::inb(), UDP, &udp4_nocsum(53, 5353, b"lab"));
    let out = four_cfg(&pkt, &cfg).whole();
    let (_, rest) = parse6(&out);
    assert_eq!(&rest[6..8], &[0, 0]);
}

/// §4.5 + §4.1: fragments are translated one by one; the checksum in the
/// first fragment is adjusted for the pseudo-header so that the reassembled
/// IPv6 datagram verifies.
#[test]
fn rfc7915_4_5_fragmented_udp_checksum_adjusted() {
    let dgram = udp4(V4_SERVER, V4_CLIENT, 53, 5353, &payload(1000)); // 1008 bytes
    let (a, b) = dgram.split_at(504);
    let f1 = ipv4(&V4::inb().df(false).frag(0x4321, 0, true), UDP, a);
    let f2 = ipv4(&V4::inb().df(false).frag(0x4321, 63, false), UDP, b);
    let o1 = four(&f1).whole();
    let o2 = four(&f2).whole();
    let (i1, r1) = parse6(&o1);
    let (_, r2) = parse6(&o2);
    let (fh1, p1) = Ipv6FragmentHeader::from_slice(r1).expect("fragment header");
    let (fh2, p2) = Ipv6FragmentHeader::from_slice(r2).expect("fragment header");
    assert_eq!(fh1.identification, 0x4321);
    assert_eq!(fh2.identification, 0x4321);
    assert_eq!((fh1.fragment_offset.value(), fh1.more_fragments), (0, true));
    assert_eq!(
        (fh2.fragment_offset.value(), fh2.more_fragments),
        (63, false)
    );
    let mut whole = p1.to_vec();
    whole.extend_from_slice(p2);
    assert_udp6(i1.source, i1.destination, &whole);
}

/// §4.5: "translators MUST forward all transport protocols". With a 1:1
/// mapping any protocol is translated at the IP layer: the protocol number
/// becomes the Next Header, payloads (SCTP, GRE, ESP) are untouched.
#[test]
fn rfc7915_4_5_other_transports_translated_one_to_one() {
    for p in [132u8, 47, 50] {
        let body = payload(40);
        let out = four(&ipv4(&V4::inb(), p, &body)).whole();
        let (ip, rest) = parse6(&out);
        assert_eq!(ip.next_header, IpNumber(p));
        assert_eq!(rest, &body[..]);
    }
}

/// §4.5 with port NAPT (daemon mode): dropped under a named reason.
#[test]
fn rfc7915_4_5_other_transport_dropped_by_port_napt() {
    let mut m = NatMapper::default();
    let out = run(
        Dir::FourToSix,
        &ipv4(&V4::inb(), 132, &payload(40)),
        &Config::default(),
        &mut m,
    );
    assert_eq!(out.reason(), Some(DropReason::UnsupportedProtocol));
}

// ===========================================================================
// Fragmentation of translated packets (xlat::frag)
// ===========================================================================

/// §4.1: a DF=0 IPv4 packet that translates above lowest-ipv6-mtu is
/// "fragmented so that the resulting IPv6 packet (with Fragment Header added
/// to each fragment) will be less than or equal to lowest-ipv6-mtu"; the
/// Fragment headers carry the IPv4 Identification (high 16 bits zero); the
/// reassembled datagram's checksum verifies.
#[test]
fn rfc7915_4_1_fragments_fit_lowest_ipv6_mtu() {
    for lowest in [1280u16, 1300] {
        let cfg = Config {
            lowest_ipv6_mtu: lowest,
            ..Config::default()
        };
        let mut h = V4::inb().df(false).tos(0x2a);
        h.id = 0x2222;
        let pkt = udp4_pkt(&h, 53, 5353, &payload(1372)); // IPv4 1400
        let Out::Fwd {
            pkt: v6,
            fragment_mtu: Some(mtu),
        } = four_cfg(&pkt, &cfg)
        else {
            panic!("expected Forward with fragment_mtu");
        };
        assert_eq!(mtu, lowest);
        let frags = fragment6(&v6, mtu);
        assert!(frags.len() >= 2);
        for f in &frags {
            let (ip, _) = parse6(f);
            assert_eq!(ip.hop_limit, 63);
            assert_eq!(ip.traffic_class, 0x2a);
            assert_eq!(ip.flow_label.value(), 0);
        }
        let r = reassemble6(&frags, mtu);
        assert_eq!(r.ident, 0x0000_2222);
        assert_eq!(r.first_offset, 0);
        assert!(!r.last_more);
        assert_eq!(r.next_header, UDP);
        assert_eq!(r.data.len(), 1380);
        assert_udp6(r.ip.source, r.ip.destination, &r.data);
    }
}

/// §4.1 with an IPv4 fragment too big for the IPv6 link: its pieces keep
/// the base offset, and the last keeps M=1 if the original had MF=1.
#[test]
fn rfc7915_4_1_translated_fragment_refragmented() {
    let cfg = Config {
        ipv6_link_mtu: 1280,
        ..Config::default()
    };
    let body = payload(1400);
    let h = V4::inb().df(false).frag(0x3333, 40, true);
    let pkt = ipv4(&h, UDP, &body);
    let Out::Fwd {
        pkt: v6,
        fragment_mtu: Some(mtu),
    } = four_cfg(&pkt, &cfg)
    else {
        panic!("expected Forward with fragment_mtu");
    };
    let r = reassemble6(&fragment6(&v6, mtu), mtu);
    assert_eq!(r.ident, 0x3333);
    assert_eq!(r.first_offset, 40);
    assert!(r.last_more);
    assert_eq!(r.data, body);
}

// ===========================================================================
// §4.4 Generation of ICMPv4 Error Messages (xlat::icmp_gen)
// ===========================================================================

const GATEWAY4: [u8; 4] = [192, 0, 2, 1];

/// Builds the translator's ICMPv4 error for `orig` and checks it with
/// etherparse: IPv4 header checksum, sent back to the source from the
/// gateway, ICMPv4 checksum (no pseudo-header), at most 576 bytes (RFC 1812
/// §4.3.2.3), quoting the start of the invoking packet.
#[track_caller]
fn gen4(orig: &[u8], err: IcmpError) -> Vec<u8> {
    let mut out = vec![0u8; 2048];
    let n = nat64_core::xlat::icmp_gen::icmpv4_error(
        orig,
        err,
        std::net::Ipv4Addr::from(GATEWAY4),
        &mut out,
    )
    .expect("icmpv4_error");
    out.truncate(n);
    assert!(out.len() <= 576, "RFC 1812 §4.3.2.3: {} bytes", out.len());
    let (ip, msg) = parse4(&out);
    assert_eq!(ip.source, GATEWAY4);
    assert_eq!(
        &ip.destination[..],
        &orig[12..16],
        "sent back to the source"
    );
    assert_eq!(ip.protocol, IpNumber(ICMP4));
    assert_icmp4(msg);
    assert_eq!(
        &msg[8..],
        &orig[..msg.len() - 8],
        "quotes the invoking packet"
    );
    msg.to_vec()
}

/// §4.1 Hop Limit (TTL exhausted) → ICMPv4 Time Exceeded, code 0.
#[test]
fn rfc7915_4_4_generated_time_exceeded() {
    let pkt = udp4_pkt(&V4::inb().ttl(1), 1, 2, b"expiring");
    let err = four(&pkt).icmp();
    let msg = gen4(&pkt, err);
    assert_eq!((msg[0], msg[1]), (11, 0));
    assert_eq!(msg.len() - 8, pkt.len());
}

/// §4.1 DF set and too big → ICMPv4 Fragmentation Needed (Type 3, Code 4)
/// with the Next-Hop MTU in the low 16 bits of the second word (RFC 1191
/// §4).
#[test]
fn rfc7915_4_4_generated_fragmentation_needed() {
    let pkt = tcp4_pkt(&V4::inb(), 1, 2, &payload(1481 - 40));
    let err = four(&pkt).icmp();
    let msg = gen4(&pkt, err);
    assert_eq!((msg[0], msg[1]), (3, 4));
    assert_eq!(&msg[4..8], &[0, 0, 0x05, 0xc8], "next-hop MTU 1480");
    assert_eq!(msg.len() + 20, 576, "as much as fits in 576 bytes");
}

/// §4.1 unexpired source route → ICMPv4 3/5 (Source Route Failed).
#[test]
fn rfc7915_4_4_generated_source_route_failed() {
    let opts = [131u8, 11, 4, 192, 0, 2, 1, 192, 0, 2, 2, 0];
    let pkt = udp4_pkt(&V4::inb().options(&opts), 1, 2, b"x");
    let err = four(&pkt).icmp();
    let msg = gen4(&pkt, err);
    assert_eq!((msg[0], msg[1]), (3, 5));
}

/// §4.4: "The ICMPv4 message, if sent, has a Type of 3 (Destination
/// Unreachable) and a Code of 13 (Communication Administratively
/// Prohibited), unless otherwise specified in this document or in
/// [RFC6146]."
#[test]
fn rfc7915_4_4_generated_default_admin_prohibited() {
    let pkt = udp4_pkt(&V4::inb(), 1, 2, b"refused");
    let msg = gen4(&pkt, IcmpError::DestUnreachableV4 { code: 13 });
    assert_eq!((msg[0], msg[1]), (3, 13));
}

/// §4.4: "unless the discarded packet is itself an ICMPv4 error message"
/// (also RFC 1812 §4.3.2.7: not about non-first fragments, not to
/// broadcast/multicast sources).
#[test]
fn rfc7915_4_4_generated_refuses_error_about_error() {
    let mut out = vec![0u8; 2048];
    let gw = std::net::Ipv4Addr::from(GATEWAY4);
    let err_pkt = icmp4_err(3, 3, [0; 4], &quoted_udp4(60, 8));
    let r =
        nat64_core::xlat::icmp_gen::icmpv4_error(&err_pkt, IcmpError::TimeExceeded, gw, &mut out);
    assert!(r.is_err(), "error about an ICMPv4 error: {r:?}");
    let frag = ipv4(&V4::inb().df(false).frag(1, 8, false), UDP, &payload(16));
    let r = nat64_core::xlat::icmp_gen::icmpv4_error(&frag, IcmpError::TimeExceeded, gw, &mut out);
    assert!(r.is_err(), "error about a non-first fragment: {r:?}");
    let bc = udp4_pkt(&V4::inb().src([224, 0, 0, 1]), 1, 2, b"x");
    let r = nat64_core::xlat::icmp_gen::icmpv4_error(&bc, IcmpError::TimeExceeded, gw, &mut out);
    assert!(r.is_err(), "error to a multicast source: {r:?}");
}

// ===========================================================================
// Edge cases
// ===========================================================================

/// §4.5 + RFC 8200 §8.1 / RFC 768: a UDP checksum that computes to zero is
/// transmitted as 0xFFFF (zero would mean "no checksum", illegal in IPv6).
#[test]
fn rfc7915_4_5_udp_checksum_zero_result_sent_as_ffff() {
    let (s6, d6) = (v6_server(), v6_client());
    let data = udp_payload_with_zero_sum(30, |d| {
        etherparse::UdpHeader {
            source_port: 53,
            destination_port: 5353,
            length: (8 + d.len()) as u16,
            checksum: 0,
        }
        .calc_checksum_ipv6_raw(s6, d6, d)
        .expect("len")
    });
    // Incrementally updated from a valid IPv4 checksum.
    let pkt = udp4_pkt(&V4::inb(), 53, 5353, &data);
    let out = four(&pkt).whole();
    let (ip, rest) = parse6(&out);
    let u = assert_udp6(ip.source, ip.destination, rest);
    assert_eq!(u.checksum, 0xffff);
    // Computed for an IPv4 datagram without checksum (udp_zero_checksum Calc).
    let pkt = ipv4(&V4::inb(), UDP, &udp4_nocsum(53, 5353, &data));
    let out = four(&pkt).whole();
    let (ip, rest) = parse6(&out);
    let u = assert_udp6(ip.source, ip.destination, rest);
    assert_eq!(u.checksum, 0xffff);
}

/// §4.1 "Payload Length: Total length value from the IPv4 header, minus the
/// size of the IPv4 header and IPv4 options": bytes after Total Length
/// (link-layer padding) are not part of the packet. Dropping such a packet is
/// tolerated; forwarding the padding is not.
#[test]
fn rfc7915_4_1_payload_length_from_total_length_not_buffer() {
    let mut pkt = udp4_pkt(&V4::inb(), 53, 5353, b"short");
    let total = pkt.len();
    pkt.extend_from_slice(&[0xaa; 16]);
    match four(&pkt) {
        Out::Fwd { pkt: out, .. } => {
            let (ip, rest) = parse6(&out);
            assert_eq!(ip.payload_length as usize, total - 20);
            assert_udp6(ip.source, ip.destination, rest);
        }
        Out::Drop(_) => {}
        other => panic!("unexpected {other:?}"),
    }
}

/// §4.3 "translated just like a normal IP packet": inner IPv4 options are
/// ignored (§4.1) and the inner Payload Length excludes them.
#[test]
fn rfc7915_4_3_inner_ipv4_options_ignored() {
    let opts = [7u8, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let ih = V4::inb()
        .src(V4_CLIENT)
        .dst(V4_SERVER)
        .ttl(1)
        .options(&opts);
    let inner = udp4_pkt(&ih, 4000, 53, &payload(20));
    let pkt = icmp4_err(11, 0, [0; 4], &inner);
    let (_, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut stateless());
    let (ih6, il4) = parse6_inner(&msg[8..]);
    assert_eq!(ih6.next_header, IpNumber(UDP));
    assert_eq!(ih6.payload_length as usize, 8 + 20);
    assert_eq!(ih6.hop_limit, 1);
    assert_udp6(ih6.source, ih6.destination, il4);
}

/// §4.3 with §4.1: an inner IPv4 fragment gets a Fragment header carrying
/// its Identification, offset and MF.
#[test]
fn rfc7915_4_3_inner_fragment_gets_fragment_header() {
    let ih = V4::inb()
        .src(V4_CLIENT)
        .dst(V4_SERVER)
        .ttl(1)
        .df(false)
        .frag(0x7777, 0, true);
    let dgram = udp4(V4_CLIENT, V4_SERVER, 4000, 53, &payload(1000));
    let inner = ipv4(&ih, UDP, &dgram[..504]);
    let pkt = icmp4_err(11, 1, [0; 4], &inner);
    let (_, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut stateless());
    let (ih6, rest) = parse6_inner(&msg[8..]);
    assert_eq!(ih6.next_header, IpNumber(FRAGMENT));
    assert_eq!(ih6.payload_length as usize, 8 + 504);
    let (fh, il4) = Ipv6FragmentHeader::from_slice(rest).expect("fragment header");
    assert_eq!(fh.identification, 0x7777);
    assert!(fh.more_fragments);
    assert_eq!(fh.fragment_offset.value(), 0);
    assert_eq!(fh.next_header, IpNumber(UDP));
    assert_eq!(&il4[..4], &[0x0f, 0xa0, 0x00, 0x35], "ports 4000 → 53");
}

/// True if the ICMPv6 checksum of `pkt` verifies (etherparse recomputation).
fn icmp6_valid(pkt: &[u8]) -> bool {
    let (ip, msg) = parse6(pkt);
    let want = etherparse::Icmpv6Type::Unknown {
        type_u8: msg[0],
        code_u8: msg[1],
        bytes5to8: [msg[4], msg[5], msg[6], msg[7]],
    }
    .calc_checksum(ip.source, ip.destination, &msg[8..])
    .expect("len");
    csum_eq(u16::from_be_bytes([msg[2], msg[3]]), want)
}

/// §4.5 / RFC 1624: the transport checksum is *updated* for the
/// pseudo-header change, so a segment corrupted before the translator still
/// fails verification after it (the translator must not make it look good).
#[test]
fn rfc7915_4_5_corrupt_checksum_stays_corrupt() {
    let mut pkt = tcp4_pkt(&V4::inb(), 80, 40000, b"hello world");
    let n = pkt.len();
    pkt[n - 1] ^= 0x01; // corrupt the data, keep the checksum
    let out = four(&pkt);
    if let Out::Fwd { pkt: out, .. } = out {
        let (ip, rest) = parse6(&out);
        let (t, data) = etherparse::TcpHeader::from_slice(rest).expect("tcp");
        let want = t
            .calc_checksum_ipv6_raw(ip.source, ip.destination, data)
            .expect("len");
        assert!(!csum_eq(t.checksum, want), "corrupt TCP segment made valid");
    }
    let mut pkt = icmp4_pkt(&V4::inb(), 8, 0, echo_rest(1, 1), b"abcdefgh");
    let n = pkt.len();
    pkt[n - 1] ^= 0x01;
    if let Out::Fwd { pkt: out, .. } = four(&pkt) {
        assert!(!icmp6_valid(&out), "corrupt echo request made valid");
    }
}

/// §4.2: "All ICMPv4 messages that are to be translated require that the
/// ICMPv6 checksum field be calculated as part of the translation" — and §5
/// (the same principle stated for the other direction): "the checksum MUST
/// be evaluated before translation". An ICMPv4 error whose checksum is wrong
/// must be dropped (or stay invalid), not turned into a valid ICMPv6 error.
#[test]
fn rfc7915_4_3_corrupt_icmp_error_not_laundered() {
    let inner = quoted_udp4(60, 20);
    let mut pkt = icmp4_err(3, 3, [0; 4], &inner);
    let n = pkt.len();
    pkt[n - 1] ^= 0x01; // corrupt the quoted data, keep the ICMP checksum
    match four(&pkt) {
        Out::Fwd { pkt: out, .. } => {
            assert!(!icmp6_valid(&out), "corrupt ICMPv4 error made valid")
        }
        Out::Drop(_) => {}
        other => panic!("unexpected {other:?}"),
    }
}

/// RFC 768 / RFC 9293 §3.1 (issue 11 #13): headers whose lengths disagree
/// with the packet are not translated (IPv4 → IPv6).
#[test]
fn rfc768_rfc9293_3_1_lying_lengths_dropped() {
    let h = V4::inb();
    let mut udp = udp4_pkt(&h, 53, 1000, b"hello world");
    let ul = u16::from_be_bytes([udp[24], udp[25]]);
    udp[24..26].copy_from_slice(&(ul - 8).to_be_bytes());
    assert_eq!(four(&udp).reason(), Some(DropReason::BadL4Header));
    udp[24..26].copy_from_slice(&(ul + 8).to_be_bytes());
    assert_eq!(four(&udp).reason(), Some(DropReason::BadL4Header));
    for doff in [2u8, 15] {
        let mut tcp = tcp4_pkt(&h, 80, 1000, b"data");
        tcp[20 + 12] = doff << 4;
        assert_eq!(
            four(&tcp).reason(),
            Some(DropReason::BadL4Header),
            "doff {doff}"
        );
    }
    assert!(four(&udp4_pkt(&h, 53, 1000, b"hello world")).is_fwd());
    assert!(four(&tcp4_pkt(&h, 80, 1000, b"data")).is_fwd());
}

/// §4.3 with §4.5: an ICMPv4 error quoting a packet of a protocol without
/// ports (GRE) is translated too; the quoted packet's addresses are mapped,
/// its protocol and payload kept.
#[test]
fn rfc7915_4_3_inner_gre_translated() {
    let body = payload(32);
    let inner = ipv4(&V4::inb().src(V4_CLIENT).dst(V4_SERVER).ttl(1), 47, &body);
    let pkt = icmp4_err(11, 0, [0; 4], &inner);
    let (ip, msg) = icmp_4to6_fwd(&pkt, &Config::default(), &mut stateless());
    assert_eq!(ip.destination, v6_client());
    let (ih, il4) = parse6_inner(&msg[8..]);
    assert_eq!(ih.source, v6_client());
    assert_eq!(ih.destination, v6_server());
    assert_eq!(ih.next_header, IpNumber(47));
    assert_eq!(il4, &body[..]);
}
