//! Property tests: IPv6 → IPv4 → IPv6 gives back the original packet for
//! translatable TCP, UDP and ICMP echo packets (RFC 7915 §4 and §5 composed),
//! and every intermediate translation has valid checksums (checked with
//! etherparse).
//!
//! Lossy fields, per RFC 7915: the Flow Label is not carried (§4.1 "Flow
//! Label: 0 (all zero bits)"), and each direction decrements the hop limit
//! by one (§4.1/§5.1), so the packet comes back with Hop Limit − 2 — or, if
//! it started at 2, the second translation answers Time Exceeded.

mod common;

use common::*;
use etherparse::IpNumber;
use nat64_core::xlat::Config;
use proptest::prelude::*;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Tcp,
    Udp,
    EchoRequest,
    EchoReply,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Tcp),
        Just(Kind::Udp),
        Just(Kind::EchoRequest),
        Just(Kind::EchoReply),
    ]
}

/// A global-looking unicast IPv4 address (not 0/8, 127/8, 169.254/16,
/// multicast, reserved or broadcast: the out-of-scope ones are never
/// translated, see `xlat::v4_out_of_scope`).
fn v4_addr() -> impl Strategy<Value = [u8; 4]> {
    (1u8..=223, any::<u8>(), any::<u8>(), any::<u8>())
        .prop_filter("loopback, link-local", |(a, b, ..)| {
            *a != 127 && !(*a == 169 && *b == 254)
        })
        .prop_map(|(a, b, c, d)| [a, b, c, d])
}

#[derive(Debug, Clone)]
struct Case {
    kind: Kind,
    src: [u8; 4],
    dst: [u8; 4],
    sport: u16,
    dport: u16,
    tc: u8,
    flow: u32,
    hop: u8,
    len: usize,
}

fn case() -> impl Strategy<Value = Case> {
    (
        kind(),
        v4_addr(),
        v4_addr(),
        any::<u16>(),
        any::<u16>(),
        any::<u8>(),
        0u32..=0xf_ffff,
        2u8..=255,
        0usize..1400,
    )
        .prop_map(|(kind, src, dst, sport, dport, tc, flow, hop, len)| Case {
            kind,
            src,
            dst,
            sport,
            dport,
            tc,
            flow,
            hop,
            len,
        })
}

fn build6(c: &Case) -> Vec<u8> {
    let h = V6 {
        tc: c.tc,
        flow: c.flow,
        hop: c.hop,
        src: embed(c.src),
        dst: embed(c.dst),
    };
    let data = payload(c.len);
    match c.kind {
        Kind::Tcp => tcp6_pkt(&h, c.sport, c.dport, &data),
        Kind::Udp => udp6_pkt(&h, c.sport, c.dport, &data),
        Kind::EchoRequest => icmp6_pkt(&h, 128, 0, echo_rest(c.sport, c.dport), &data),
        Kind::EchoReply => icmp6_pkt(&h, 129, 0, echo_rest(c.sport, c.dport), &data),
    }
}

/// Checks the IPv4 translation of `c` (RFC 7915 §5.1, §5.2, §5.5).
fn check4(c: &Case, pkt: &[u8]) {
    let (ip, l4) = parse4(pkt);
    assert_eq!(ip.source, c.src);
    assert_eq!(ip.destination, c.dst);
    assert_eq!(ip.time_to_live, c.hop - 1);
    assert_eq!(tos_of(&ip), c.tc);
    assert_eq!(ip.dont_fragment, pkt.len() > 1260, "§5.1 DF rule");
    assert!(!ip.more_fragments);
    assert_eq!(ip.fragment_offset.value(), 0);
    match c.kind {
        Kind::Tcp => {
            assert_eq!(ip.protocol, IpNumber(TCP));
            assert_tcp4(ip.source, ip.destination, l4);
        }
        Kind::Udp => {
            assert_eq!(ip.protocol, IpNumber(UDP));
            assert_udp4(ip.source, ip.destination, l4);
        }
        Kind::EchoRequest | Kind::EchoReply => {
            assert_eq!(ip.protocol, IpNumber(ICMP4));
            let want = if matches!(c.kind, Kind::EchoRequest) {
                8
            } else {
                0
            };
            assert_eq!(l4[0], want);
            assert_icmp4(l4);
        }
    }
}

/// Checks the transport checksum of an IPv6 upper-layer message.
fn check_l4_6(src: [u8; 16], dst: [u8; 16], nh: u8, l4: &[u8]) {
    match nh {
        TCP => {
            assert_tcp6(src, dst, l4);
        }
        UDP => {
            assert_udp6(src, dst, l4);
        }
        ICMP6 => assert_icmp6(src, dst, l4),
        other => panic!("unexpected next header {other}"),
    }
}

/// Checks the transport checksum of an unfragmented IPv6 packet.
fn check6(pkt: &[u8]) {
    let (ip, l4) = parse6(pkt);
    check_l4_6(ip.source, ip.destination, ip.next_header.0, l4);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rfc7915_roundtrip_6to4to6(c in case()) {
        let orig = build6(&c);
        let cfg = Config::default();
        let v4 = run(Dir::SixToFour, &orig, &cfg, &mut stateless()).whole();
        check4(&c, &v4);
        let back = run(Dir::FourToSix, &v4, &cfg, &mut stateless());
        if c.hop == 2 {
            // TTL 1 arrives at the translator: RFC 7915 §4.1 Hop Limit.
            prop_assert!(is_time_exceeded(&back.icmp()));
            return Ok(());
        }
        let back = back.whole();
        check6(&back);
        let mut want = orig.clone();
        want[1] &= 0xf0; // Flow Label: 0 (§4.1)
        want[2] = 0;
        want[3] = 0;
        want[7] = c.hop - 2; // Hop Limit decremented once per direction
        prop_assert_eq!(back, want);
    }

    /// IPv4 → IPv6 for random TCP/UDP/echo packets: always valid checksums,
    /// and §4.1 header fields.
    #[test]
    fn rfc7915_4to6_checksums_verify(c in case(), df in any::<bool>()) {
        let h = V4 {
            tos: c.tc,
            id: c.sport,
            df,
            mf: false,
            offset: 0,
            ttl: c.hop,
            src: c.src,
            dst: c.dst,
            options: vec![],
        };
        let data = payload(c.len);
        let pkt = match c.kind {
            Kind::Tcp => tcp4_pkt(&h, c.sport, c.dport, &data),
            Kind::Udp => udp4_pkt(&h, c.sport, c.dport, &data),
            Kind::EchoRequest => icmp4_pkt(&h, 8, 0, echo_rest(c.sport, c.dport), &data),
            Kind::EchoReply => icmp4_pkt(&h, 0, 0, echo_rest(c.sport, c.dport), &data),
        };
        let out = run(Dir::FourToSix, &pkt, &Config::default(), &mut stateless());
        match out {
            Out::Fwd { pkt: v6, fragment_mtu } => {
                // DF=0 packets above 1280 after translation are to be
                // fragmented (§4.1); DF=1 ones fit the 1500-byte link here.
                prop_assert_eq!(fragment_mtu.is_some(), !df && pkt.len() + 20 > 1280);
                let (ip, _) = parse6(&v6);
                prop_assert_eq!(ip.hop_limit, c.hop - 1);
                prop_assert_eq!(ip.traffic_class, c.tc);
                prop_assert_eq!(ip.flow_label.value(), 0);
                prop_assert_eq!(ip.source, embed(c.src));
                prop_assert_eq!(ip.destination, embed(c.dst));
                match fragment_mtu {
                    None => check6(&v6),
                    Some(mtu) => {
                        // §4.1: fragments of at most lowest-ipv6-mtu, each
                        // with a Fragment header carrying the IPv4 ID.
                        let r = reassemble6(&fragment6(&v6, mtu), mtu);
                        prop_assert_eq!(r.ident, u32::from(c.sport));
                        prop_assert_eq!(r.first_offset, 0);
                        prop_assert!(!r.last_more);
                        prop_assert_eq!(r.data.len(), pkt.len() - 20);
                        check_l4_6(ip.source, ip.destination, r.next_header, &r.data);
                    }
                }
            }
            other => prop_assert!(false, "expected Forward, got {:?}", other),
        }
    }
}
