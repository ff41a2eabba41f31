//! `napt = "none"`: the stateless SIIT mapping of the engine (RFC 7915,
//! RFC 6052, RFC 7757), and the out-of-scope / RFC 6052 §3.1 rules every
//! mode applies before it creates state. Expected addresses are written
//! out by hand.

mod state_common;

use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};
use nat64_core::eam::{Eam, EamTable};
use nat64_core::state::*;
use nat64_core::time::Timestamp;
use nat64_core::xlat::{L4Proto, Mapper, Tuple, HEADROOM};
use nat64_core::{DropReason, IcmpError, Verdict};
use state_common::*;

const PREFIX: &str = "2001:db8:64::/96";

fn siit(eams: &[(&str, &str)], dynamic: Option<(&str, u8)>) -> EngineConfig {
    let mut eam = EamTable::new();
    for (a, b) in eams {
        eam.insert(Eam::parse(a, b).unwrap());
    }
    EngineConfig {
        prefix: PREFIX.parse().unwrap(),
        napt: NaptConfig::Siit(SiitConfig {
            eam,
            dynamic_pool: dynamic.map(|(a, l)| (v4(a), l)),
            own_v4: Some(v4("192.0.2.1")),
            own_v6: Some(v6("2001:db8:ff::1")),
            rfc6791: vec![v4("192.0.2.250"), v4("192.0.2.251")],
            clat: false,
        }),
        ..EngineConfig::default()
    }
}

fn tup6(src: &str, dst: &str) -> nat64_core::xlat::Tuple6 {
    Tuple {
        proto: L4Proto::Udp,
        src: v6(src),
        src_port: 4000,
        dst: v6(dst),
        dst_port: 53,
    }
}

#[test]
fn rfc7757_3_3_eam_before_rfc6052_both_ways() {
    let mut h = H::new(siit(&[("203.0.113.0/24", "2001:db8:1::100/120")], None));
    // Source by EAM, destination by the prefix.
    let o = h
        .out(&tup6("2001:db8:1::1ab", "2001:db8:64::c633:6402"), 0, 0)
        .unwrap();
    assert_eq!((o.src, o.dst), (v4("203.0.113.171"), v4("198.51.100.2")));
    assert_eq!((o.src_port, o.dst_port), (4000, 53));
    // And back: the IPv4 source embedded, the destination by EAM.
    let b = h
        .inb(
            &t4(
                L4Proto::Udp,
                v4("198.51.100.2"),
                53,
                v4("203.0.113.171"),
                4000,
            ),
            0,
            0,
        )
        .unwrap();
    assert_eq!(b.src, v6("2001:db8:64::c633:6402"));
    assert_eq!(b.dst, v6("2001:db8:1::1ab"));
    // Stateless: nothing was recorded.
    assert_eq!(h.nsessions() + h.nbindings(), 0);
}

#[test]
fn rfc7915_5_1_untranslatable_addresses_are_named() {
    let mut h = H::new(siit(&[("203.0.113.0/24", "2001:db8:1::100/120")], None));
    assert_eq!(
        h.out(&tup6("2001:db8:9::1", "2001:db8:64::c633:6402"), 0, 0),
        Err(DropReason::UntranslatableSource)
    );
    assert_eq!(
        h.out(&tup6("2001:db8:1::101", "2001:db8:9::1"), 0, 0),
        Err(DropReason::UntranslatableDestination)
    );
}

#[test]
fn siit_dynamic_pool_leases_other_sources_and_carves_out_own_address() {
    // A /30 holds .1 and .2; .1 is the translator's own: one lease left.
    let mut h = H::new(siit(&[], Some(("192.0.2.0", 30))));
    let o = h
        .out(&tup6("2001:db8:9::1", "2001:db8:64::c633:6402"), 0, 0)
        .unwrap();
    assert_eq!(o.src, v4("192.0.2.2"));
    assert_eq!(
        h.out(&tup6("2001:db8:9::2", "2001:db8:64::c633:6402"), 0, 0),
        Err(DropReason::PoolExhausted)
    );
    // Back to the lease; an unleased pool address has no binding.
    let b = h
        .inb(
            &t4(L4Proto::Udp, v4("198.51.100.2"), 53, v4("192.0.2.2"), 4000),
            0,
            S,
        )
        .unwrap();
    assert_eq!(b.dst, v6("2001:db8:9::1"));
}

#[test]
fn rfc7757_eam_table_replaced_at_run_time() {
    let mut h = H::new(siit(&[("203.0.113.50", "2001:db8:1::50")], None));
    let t = t4(L4Proto::Icmp, v4("198.51.100.2"), 7, v4("203.0.113.50"), 7);
    assert_eq!(h.inb(&t, 0, 0).unwrap().dst, v6("2001:db8:1::50"));
    let mut next = EamTable::new();
    next.insert(Eam::parse("203.0.113.50", "2001:db8:1::51").unwrap());
    h.e.set_eam(next);
    assert_eq!(h.inb(&t, 0, 1).unwrap().dst, v6("2001:db8:1::51"));
}

#[test]
fn rfc6791_untranslatable_router_sources_from_the_pool() {
    let mut h = H::new(siit(&[("203.0.113.0/24", "2001:db8:1::100/120")], None));
    let m = h.w.mapper();
    let quoted = v4("203.0.113.5");
    // A router with a mapping is translated (RFC 7915 §5.1)...
    assert_eq!(
        m.icmp_error_source_6to4(v6("2001:db8:64::c633:6401"), quoted),
        v4("198.51.100.1")
    );
    // ...one without gets a pool address, the same one every time.
    let a = m.icmp_error_source_6to4(v6("2001:db8:77::1"), quoted);
    assert!(a == v4("192.0.2.250") || a == v4("192.0.2.251"), "{a}");
    assert_eq!(m.icmp_error_source_6to4(v6("2001:db8:77::1"), quoted), a);
}

fn placed(pkt: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; HEADROOM + pkt.len() + 256];
    buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
    buf
}

#[test]
fn siit_own_addresses_answer_echo_and_refuse_udp() {
    let e = Engine::new(siit(&[], None)).unwrap();
    let mut w = e.worker();
    // prefix || 192.0.2.1 is ours as well as 2001:db8:ff::1.
    for me in ["2001:db8:64::c000:201", "2001:db8:ff::1"] {
        let mut pkt = Vec::new();
        PacketBuilder::ipv6(v6("2001:db8:9::1").octets(), v6(me).octets(), 64)
            .icmpv6_echo_request(1, 2)
            .write(&mut pkt, b"x")
            .unwrap();
        let mut buf = placed(&pkt);
        let v = w
            .process(&mut buf, HEADROOM, pkt.len(), Timestamp(0))
            .verdict;
        let Verdict::Forward { start, len, .. } = v else {
            panic!("{me}: {v:?}")
        };
        let s = SlicedPacket::from_ip(&buf[start..start + len]).unwrap();
        let Some(TransportSlice::Icmpv6(i)) = &s.transport else {
            panic!()
        };
        assert!(matches!(
            i.icmp_type(),
            etherparse::Icmpv6Type::EchoReply(_)
        ));
    }
    let mut pkt = Vec::new();
    PacketBuilder::ipv4([198, 51, 100, 2], [192, 0, 2, 1], 64)
        .udp(5000, 53)
        .write(&mut pkt, b"q")
        .unwrap();
    let mut buf = placed(&pkt);
    assert_eq!(
        w.process(&mut buf, HEADROOM, pkt.len(), Timestamp(0))
            .verdict,
        Verdict::Icmp {
            error: IcmpError::DestUnreachableV4 { code: 3 },
            reason: DropReason::ToOwnAddress
        }
    );
}

/// RFC 6052 §5.1 / RFC 1812 §5.3.7: an out-of-scope destination is refused
/// before the stateful engine creates a binding for it.
#[test]
fn rfc6052_5_1_out_of_scope_creates_no_state() {
    // wkp-strict off: with it, RFC 6052 §3.1 refuses these first.
    let lax = |mut c: EngineConfig| {
        c.wkp_strict = false;
        c
    };
    let mut h = H::new(lax(daemon_cfg(&[("203.0.113.0", 24)])));
    for dst in [
        "127.0.0.1",
        "0.1.2.3",
        "169.254.1.1",
        "224.0.0.5",
        "255.255.255.255",
    ] {
        assert_eq!(
            h.out(&t6(L4Proto::Udp, "2001:db8::1", 5000, dst, 53), 0, 0),
            Err(DropReason::OutOfScopeV4),
            "{dst}"
        );
    }
    assert_eq!(h.nsessions() + h.nbindings(), 0);
    let mut k = H::new(lax(kernel_cfg(("100.64.0.0", 16), &[])));
    assert_eq!(
        k.out(
            &t6(L4Proto::Udp, "2001:db8::1", 5000, "127.0.0.1", 53),
            0,
            0
        ),
        Err(DropReason::OutOfScopeV4)
    );
    assert!(k.e.kernel_leases().is_empty());
}

/// RFC 6052 §3.1 in kernel mode on the way in: behind the Well-Known Prefix
/// a non-global IPv4 source is not embedded (daemon mode never has a
/// session for it).
#[test]
fn rfc6052_3_1_kernel_mode_refuses_non_global_sources_behind_wkp() {
    let mut k = H::new(kernel_cfg(
        ("100.64.0.0", 16),
        &[("2001:db8::5", "100.64.9.9")],
    ));
    let from_private = t4(L4Proto::Udp, v4("10.1.3.4"), 53, v4("100.64.9.9"), 4000);
    assert_eq!(k.inb(&from_private, 0, 0), Err(DropReason::WkpNonGlobal));
    let from_global = t4(L4Proto::Udp, v4("8.8.8.8"), 53, v4("100.64.9.9"), 4000);
    assert_eq!(
        k.inb(&from_global, 0, 0).unwrap().src,
        v6("64:ff9b::808:808")
    );
}

/// Tayga carves its `map` addresses out of `dynamic-pool`; so does nat64,
/// also after the table is replaced at run time.
#[test]
fn siit_eam_addresses_are_never_leased() {
    let mut h = H::new(siit(
        &[("192.0.2.2", "2001:db8:1::2")],
        Some(("192.0.2.0", 29)),
    ));
    let mut got = Vec::new();
    for i in 1..=6 {
        match h.out(
            &tup6(&format!("2001:db8:9::{i}"), "2001:db8:64::c633:6402"),
            0,
            0,
        ) {
            Ok(o) => got.push(o.src),
            Err(r) => assert_eq!(r, DropReason::PoolExhausted),
        }
    }
    // .1 is the translator's, .2 mapped: .3 to .6 remain.
    got.sort();
    assert_eq!(
        got,
        ["192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6"].map(v4)
    );
    let mut h = H::new(siit(&[], Some(("192.0.2.0", 30))));
    let mut t = EamTable::new();
    t.insert(Eam::parse("192.0.2.2", "2001:db8:1::2").unwrap());
    h.e.set_eam(t);
    assert_eq!(
        h.out(&tup6("2001:db8:9::1", "2001:db8:64::c633:6402"), 0, 0),
        Err(DropReason::PoolExhausted)
    );
}

/// Issue 12 §4: `gateway-v4` inside the pool is carved out of allocation,
/// in daemon and kernel mode, and is no hairpinning target (the host
/// answers it).
#[test]
fn gateway_inside_pool_is_never_allocated() {
    let mut cfg = daemon_cfg(&[("192.0.2.0", 31)]);
    cfg.wkp_strict = false;
    cfg.gateway_v4 = Some(v4("192.0.2.0"));
    let mut h = H::new(cfg);
    for i in 1..=20 {
        let o = h
            .out(
                &t6(L4Proto::Udp, &format!("2001:db8::{i}"), 5000, "8.8.8.8", 53),
                0,
                0,
            )
            .unwrap();
        assert_eq!(o.src, v4("192.0.2.1"));
    }
    assert!(!h.e.is_local_v4(v4("192.0.2.0")));
    assert!(h.e.is_local_v4(v4("192.0.2.1")));
    let mut cfg = kernel_cfg(("100.64.0.0", 30), &[]);
    cfg.gateway_v4 = Some(v4("100.64.0.1"));
    let mut k = H::new(cfg);
    let o = k
        .out(&t6(L4Proto::Udp, "2001:db8::1", 5000, "8.8.8.8", 53), 0, 0)
        .unwrap();
    assert_eq!(o.src, v4("100.64.0.2"));
    assert_eq!(
        k.out(&t6(L4Proto::Udp, "2001:db8::2", 5000, "8.8.8.8", 53), 0, 0),
        Err(DropReason::PoolExhausted)
    );
}

/// RFC 7757 §4.2.2 (set A) with the vectors of its Appendix B.1 (Figures 8
/// and 11): two IPv6 hosts with explicit mappings talk through the
/// translator by RFC 6052 addresses; each packet hairpins, the source by
/// RFC 6052 (§4.2.1 rule 1), the hop limit decremented once.
#[test]
fn rfc7757_4_2_2_intrinsic_hairpinning_appendix_b() {
    let mut eam = EamTable::new();
    eam.insert(Eam::parse("192.0.2.1", "2001:db8:aaaa::").unwrap());
    eam.insert(Eam::parse("192.0.2.2", "2001:db8:bbbb::b").unwrap());
    let cfg = EngineConfig {
        prefix: "64:ff9b::/96".parse().unwrap(),
        wkp_strict: false, // the RFC's examples embed documentation space
        napt: NaptConfig::Siit(SiitConfig {
            eam,
            ..SiitConfig::default()
        }),
        ..EngineConfig::default()
    };
    let e = Engine::new(cfg).unwrap();
    let mut w = e.worker();
    let send = |w: &mut Worker, src: &str, dst: &str| {
        let mut pkt = Vec::new();
        PacketBuilder::ipv6(v6(src).octets(), v6(dst).octets(), 64)
            .udp(1000, 2000)
            .write(&mut pkt, b"eam")
            .unwrap();
        let mut buf = placed(&pkt);
        let v = w
            .process(&mut buf, HEADROOM, pkt.len(), Timestamp(0))
            .verdict;
        let Verdict::Forward { start, len, .. } = v else {
            panic!("{v:?}")
        };
        let s = SlicedPacket::from_ip(&buf[start..start + len]).unwrap();
        let Some(etherparse::NetSlice::Ipv6(h)) = s.net else {
            panic!("not hairpinned: left as IPv4")
        };
        let Some(TransportSlice::Udp(u)) = s.transport else {
            panic!()
        };
        let want = u
            .to_header()
            .calc_checksum_ipv6(&h.header().to_header(), u.payload())
            .unwrap();
        assert_eq!(u.checksum(), want);
        (
            h.header().source_addr(),
            h.header().destination_addr(),
            h.header().hop_limit(),
        )
    };
    // Figure 8.
    assert_eq!(
        send(&mut w, "2001:db8:aaaa::", "64:ff9b::c000:202"),
        (v6("64:ff9b::c000:201"), v6("2001:db8:bbbb::b"), 63)
    );
    // Figure 11: the reply.
    assert_eq!(
        send(&mut w, "2001:db8:bbbb::b", "64:ff9b::c000:201"),
        (v6("64:ff9b::c000:202"), v6("2001:db8:aaaa::"), 63)
    );
}

/// RFC 6877 §6.3: the CLAT translates this host's IPv4 address to its own
/// IPv6 address and every other IPv4 address into the PLAT's prefix; no
/// other IPv4 source or IPv6 destination is translated.
#[test]
fn rfc6877_clat_maps_host_address_and_plat_prefix_only() {
    let mut eam = EamTable::new();
    eam.insert(Eam::parse("192.0.0.1", "2001:db8:1::c1a7").unwrap());
    let cfg = EngineConfig {
        prefix: PREFIX.parse().unwrap(),
        napt: NaptConfig::Siit(SiitConfig {
            eam,
            clat: true,
            ..SiitConfig::default()
        }),
        ..EngineConfig::default()
    };
    let mut h = H::new(cfg);
    let out = h
        .inb(
            &t4(L4Proto::Tcp, v4("192.0.0.1"), 40000, v4("198.51.100.2"), 80),
            0x02,
            0,
        )
        .unwrap();
    assert_eq!(
        (out.src, out.dst),
        (v6("2001:db8:1::c1a7"), v6("2001:db8:64::c633:6402"))
    );
    assert_eq!(
        h.inb(
            &t4(L4Proto::Tcp, v4("192.0.0.5"), 40000, v4("198.51.100.2"), 80),
            0x02,
            0
        ),
        Err(DropReason::UntranslatableSource)
    );
    let back = h
        .out(&tup6("2001:db8:64::c633:6402", "2001:db8:1::c1a7"), 0, 0)
        .unwrap();
    assert_eq!((back.src, back.dst), (v4("198.51.100.2"), v4("192.0.0.1")));
    assert_eq!(
        h.out(
            &tup6("2001:db8:64::c633:6402", "2001:db8:64::c633:6403"),
            0,
            0
        ),
        Err(DropReason::UntranslatableDestination)
    );
}
