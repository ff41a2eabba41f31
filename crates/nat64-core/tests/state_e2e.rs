//! End-to-end: real packets (built and checked with `etherparse`) through
//! `Worker::process`, i.e. the RFC 6146 pipeline plus the RFC 7915 core,
//! including hairpinning (RFC 6146 §3.8) and held SYNs (§3.5.2.2).

mod state_common;
use state_common::*;

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use nat64_core::addr::Prefix;
use nat64_core::state::*;
use nat64_core::time::Timestamp;
use nat64_core::xlat::{L4Proto, HEADROOM};
use nat64_core::Verdict;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};

fn wkp(a: &str) -> Ipv6Addr {
    Prefix::WELL_KNOWN.embed(v4(a))
}

/// A buffer holding `pkt` after HEADROOM bytes of headroom.
fn framed(pkt: Vec<u8>) -> (Vec<u8>, usize, usize) {
    let mut buf = vec![0u8; HEADROOM + pkt.len() + 64];
    buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(&pkt);
    (buf, HEADROOM, pkt.len())
}

fn udp6(src: Ipv6Addr, sp: u16, dst: Ipv6Addr, dp: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), 64)
        .udp(sp, dp)
        .write(&mut v, b"hello")
        .unwrap();
    v
}

fn udp4(src: Ipv4Addr, sp: u16, dst: Ipv4Addr, dp: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .udp(sp, dp)
        .write(&mut v, b"world")
        .unwrap();
    v
}

fn syn4(src: Ipv4Addr, sp: u16, dst: Ipv4Addr, dp: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), 64)
        .tcp(sp, dp, 1, 65535)
        .syn()
        .write(&mut v, &[])
        .unwrap();
    v
}

fn syn6(src: Ipv6Addr, sp: u16, dst: Ipv6Addr, dp: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), 64)
        .tcp(sp, dp, 1, 65535)
        .syn()
        .write(&mut v, &[])
        .unwrap();
    v
}

#[derive(Debug, PartialEq)]
enum Addrs {
    V4(Ipv4Addr, u16, Ipv4Addr, u16),
    V6(Ipv6Addr, u16, Ipv6Addr, u16),
}

fn addrs(p: &[u8]) -> Addrs {
    let s = SlicedPacket::from_ip(p).expect("etherparse parses the output");
    let (sp, dp) = match s.transport {
        Some(TransportSlice::Udp(u)) => (u.source_port(), u.destination_port()),
        Some(TransportSlice::Tcp(t)) => (t.source_port(), t.destination_port()),
        other => panic!("unexpected transport {other:?}"),
    };
    match s.net {
        Some(NetSlice::Ipv4(h)) => Addrs::V4(
            h.header().source_addr(),
            sp,
            h.header().destination_addr(),
            dp,
        ),
        Some(NetSlice::Ipv6(h)) => Addrs::V6(
            h.header().source_addr(),
            sp,
            h.header().destination_addr(),
            dp,
        ),
        other => panic!("unexpected network layer {other:?}"),
    }
}

fn run(w: &mut Worker, pkt: Vec<u8>, now: u64) -> Result<Addrs, Verdict> {
    let (mut buf, s, l) = framed(pkt);
    match w.process(&mut buf, s, l, Timestamp(now)).verdict {
        Verdict::Forward { start, len, .. } => Ok(addrs(&buf[start..start + len])),
        v => Err(v),
    }
}

#[test]
fn e2e_udp_out_and_back() {
    let e = Engine::new(daemon_cfg(&[("192.0.2.1", 32)])).unwrap();
    let mut w = e.worker();
    let out = run(
        &mut w,
        udp6(v6("2001:db8::1"), 40000, wkp("8.8.8.8"), 53),
        0,
    )
    .unwrap();
    assert_eq!(out, Addrs::V4(v4("192.0.2.1"), 40000, v4("8.8.8.8"), 53));
    let back = run(
        &mut w,
        udp4(v4("8.8.8.8"), 53, v4("192.0.2.1"), 40000),
        1000,
    )
    .unwrap();
    assert_eq!(
        back,
        Addrs::V6(wkp("8.8.8.8"), 53, v6("2001:db8::1"), 40000)
    );
    assert_eq!(e.counts().sessions.udp, 1);
}

/// RFC 6146 §3.8: a v6 host reaching a port-forwarded v6 server through
/// the pool address comes back out as IPv6, source `prefix || pool`.
#[test]
fn rfc6146_3_8_hairpinning_comes_back_translated() {
    let mut cfg = daemon_cfg(&[("192.0.2.0", 31)]);
    cfg.wkp_strict = false; // 192.0.2.0/24 is documentation space
    cfg.static_bib = vec![StaticBinding {
        proto: L4Proto::Udp,
        v6: SocketAddrV6::new(v6("2001:db8::80"), 8080, 0, 0),
        v4: (v4("192.0.2.1"), 80),
    }];
    let e = Engine::new(cfg).unwrap();
    let mut w = e.worker();
    let client = v6("2001:db8::1");
    let got = run(&mut w, udp6(client, 5000, wkp("192.0.2.1"), 80), 0).unwrap();
    let a = e.affinity(&client).unwrap();
    let Addrs::V6(src, sp, dst, dp) = got else {
        panic!("hairpinned packet left as IPv4: {got:?}");
    };
    assert_eq!((dst, dp), (v6("2001:db8::80"), 8080));
    assert_eq!(src, wkp(&a.to_string()));
    // The server's answer hairpins back to the client.
    let back = run(&mut w, udp6(v6("2001:db8::80"), 8080, src, sp), 10).unwrap();
    assert_eq!(back, Addrs::V6(wkp("192.0.2.1"), 80, client, 5000));
}

/// RFC 6146 §3.5.2.2: an unsolicited IPv4 SYN is held 6 s, then answered
/// with ICMP Port Unreachable; an IPv6 SYN in the meantime cancels that.
#[test]
fn rfc6146_3_5_2_2_v4_syn_held_six_seconds() {
    let e = Engine::new(daemon_cfg(&[("192.0.2.1", 32)])).unwrap();
    let mut w = e.worker();
    let r = run(&mut w, syn4(v4("8.8.8.8"), 4000, v4("192.0.2.1"), 5000), 0);
    assert_eq!(r, Err(Verdict::Drop(nat64_core::DropReason::NoBinding)));
    // A second unsolicited SYN, answered by a v6 SYN (simultaneous open).
    let r = run(&mut w, syn4(v4("9.9.9.9"), 4000, v4("192.0.2.1"), 6000), 0);
    assert!(r.is_err());
    assert_eq!(e.counts().held_syns, 2);
    run(
        &mut w,
        syn6(v6("2001:db8::1"), 6000, wkp("9.9.9.9"), 4000),
        1000,
    )
    .unwrap();
    assert!(e.sweep(Timestamp(5999)).icmp_answers.is_empty());
    let st = e.sweep(Timestamp(6000));
    assert_eq!(st.icmp_answers.len(), 1);
    let q = &st.icmp_answers[0].packet;
    assert_eq!(
        addrs(q),
        Addrs::V4(v4("8.8.8.8"), 4000, v4("192.0.2.1"), 5000)
    );
    assert_eq!(e.counts().held_syns, 0);
}

#[test]
fn e2e_kernel_mode_translates_addresses_only() {
    let e = Engine::new(kernel_cfg(("100.64.0.0", 16), &[])).unwrap();
    let mut w = e.worker();
    let out = run(
        &mut w,
        udp6(v6("2001:db8::1"), 40000, wkp("8.8.8.8"), 53),
        0,
    )
    .unwrap();
    let Addrs::V4(inner, 40000, d, 53) = out else {
        panic!("{out:?}");
    };
    assert_eq!(d, v4("8.8.8.8"));
    assert!(e.is_local_v4(inner));
    let back = run(&mut w, udp4(v4("8.8.8.8"), 53, inner, 40000), 1).unwrap();
    assert_eq!(
        back,
        Addrs::V6(wkp("8.8.8.8"), 53, v6("2001:db8::1"), 40000)
    );
}

/// The loop guard (`state::pipeline::loop_guard`, issue 11 #1): the spoofed packet
/// `IPv6(src=PREFIX::c633:6402, dst=PREFIX::c633:6402)/UDP(7→7)` used to be
/// translated, and with an echo service on the IPv4 side it circulated
/// forever. An IPv6 source inside the prefix is dropped, in both modes.
#[test]
fn spec_5a_ipv6_source_inside_prefix_dropped() {
    for cfg in [
        daemon_cfg(&[("192.0.2.1", 32)]),
        kernel_cfg(("100.64.0.0", 16), &[]),
    ] {
        let e = Engine::new(cfg).unwrap();
        let mut w = e.worker();
        let me = wkp("8.8.4.4");
        let r = run(&mut w, udp6(me, 7, me, 7), 0);
        assert_eq!(
            r,
            Err(Verdict::Drop(nat64_core::DropReason::SourceInPrefix))
        );
        assert_eq!(e.counts().sessions.udp, 0, "no state for a looping packet");
    }
}

/// The loop guard (`state::pipeline::loop_guard`): an IPv4 packet from outside whose source is one of
/// the translator's own addresses (daemon pool; kernel inner pool) is
/// dropped; hairpinning between own addresses still works (it never
/// crosses the TUN).
#[test]
fn spec_5a_ipv4_source_own_address_dropped() {
    let e = Engine::new(daemon_cfg(&[("192.0.2.1", 32)])).unwrap();
    let mut w = e.worker();
    let out = run(
        &mut w,
        udp6(v6("2001:db8::1"), 40000, wkp("8.8.8.8"), 53),
        0,
    )
    .unwrap();
    assert_eq!(out, Addrs::V4(v4("192.0.2.1"), 40000, v4("8.8.8.8"), 53));
    // The reply is fine; the same packet claiming to come from the pool is not.
    assert!(run(&mut w, udp4(v4("8.8.8.8"), 53, v4("192.0.2.1"), 40000), 1).is_ok());
    let r = run(&mut w, udp4(v4("192.0.2.1"), 53, v4("192.0.2.1"), 40000), 2);
    assert_eq!(
        r,
        Err(Verdict::Drop(nat64_core::DropReason::SourceIsOwnAddress))
    );

    let e = Engine::new(kernel_cfg(("100.64.0.0", 16), &[])).unwrap();
    let mut w = e.worker();
    let Ok(Addrs::V4(inner, ..)) = run(&mut w, udp6(v6("2001:db8::1"), 1, wkp("8.8.8.8"), 2), 0)
    else {
        panic!("kernel mode did not translate");
    };
    let r = run(&mut w, udp4(v4("100.64.255.1"), 2, inner, 1), 1);
    assert_eq!(
        r,
        Err(Verdict::Drop(nat64_core::DropReason::SourceIsOwnAddress))
    );
}

/// RFC 6146 §3.5.1 (issue 11 #8): when no IPv4 transport address can be
/// allocated the packet is dropped and an ICMPv6 Destination Unreachable,
/// Address Unreachable (code 3) is due; a flow refused by a limit gets
/// administratively prohibited (code 1). Pool exhaustion used to be silent.
#[test]
fn rfc6146_3_5_1_exhaustion_answers_icmpv6_unreachable() {
    let mut cfg = daemon_cfg(&[("192.0.2.1", 32)]);
    if let NaptConfig::Daemon(p) = &mut cfg.napt {
        p.udp_ports = (2000, 2001);
    }
    cfg.limits.max_sessions_per_client = 10;
    let e = Engine::new(cfg).unwrap();
    let mut w = e.worker();
    for sp in [1000, 1001] {
        run(&mut w, udp6(v6("2001:db8::1"), sp, wkp("8.8.8.8"), 53), 0).unwrap();
    }
    let r = run(&mut w, udp6(v6("2001:db8::1"), 1002, wkp("8.8.8.8"), 53), 0);
    assert_eq!(
        r,
        Err(Verdict::Icmp {
            error: nat64_core::IcmpError::DestUnreachableV6 { code: 3 },
            reason: nat64_core::DropReason::PoolExhausted,
        })
    );
}

/// An IPv6 packet of protocol `p` (no transport header of ours) with `body`.
fn proto6(src: Ipv6Addr, dst: Ipv6Addr, p: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::Ipv6Header {
        traffic_class: 0,
        flow_label: Default::default(),
        payload_length: body.len() as u16,
        next_header: etherparse::IpNumber(p),
        hop_limit: 64,
        source: src.octets(),
        destination: dst.octets(),
    }
    .write(&mut v)
    .unwrap();
    v.extend_from_slice(body);
    v
}

fn proto4(src: Ipv4Addr, dst: Ipv4Addr, p: u8, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::Ipv4Header::new(
        body.len() as u16,
        64,
        etherparse::IpNumber(p),
        src.octets(),
        dst.octets(),
    )
    .unwrap()
    .write(&mut v)
    .unwrap();
    v.extend_from_slice(body);
    v
}

/// Issue 12 §1 / RFC 7915 §4.5, §5.5: kernel mode maps addresses 1:1, so a
/// protocol without ports (GRE here) is translated both ways through the
/// client's lease; daemon NAPT has no port to give it and drops it as
/// `unsupported_protocol`.
#[test]
fn rfc7915_5_5_gre_through_kernel_mode_lease_dropped_by_daemon() {
    let body = b"\x00\x00\x08\x00inner ipv4 packet here";
    let e = Engine::new(kernel_cfg(("100.64.0.0", 16), &[])).unwrap();
    let mut w = e.worker();
    let (mut buf, s, l) = framed(proto6(v6("2001:db8::1"), wkp("8.8.8.8"), 47, body));
    let Verdict::Forward { start, len, .. } = w.process(&mut buf, s, l, Timestamp(0)).verdict
    else {
        panic!("GRE not translated in kernel mode");
    };
    let (ip, rest) = etherparse::Ipv4Header::from_slice(&buf[start..start + len]).unwrap();
    assert_eq!(ip.protocol, etherparse::IpNumber(47));
    assert_eq!(rest, &body[..]);
    let inner = Ipv4Addr::from(ip.source);
    assert!(e.is_local_v4(inner));
    assert_eq!(e.counts().kernel_leases, 1);
    // The answer comes back through the lease.
    let (mut buf, s, l) = framed(proto4(v4("8.8.8.8"), inner, 47, body));
    let Verdict::Forward { start, len, .. } = w.process(&mut buf, s, l, Timestamp(1)).verdict
    else {
        panic!("GRE answer not translated");
    };
    let (ip6, rest) = etherparse::Ipv6Header::from_slice(&buf[start..start + len]).unwrap();
    assert_eq!(Ipv6Addr::from(ip6.destination), v6("2001:db8::1"));
    assert_eq!(Ipv6Addr::from(ip6.source), wkp("8.8.8.8"));
    assert_eq!(rest, &body[..]);

    let e = Engine::new(daemon_cfg(&[("192.0.2.1", 32)])).unwrap();
    let mut w = e.worker();
    let (mut buf, s, l) = framed(proto6(v6("2001:db8::1"), wkp("8.8.8.8"), 47, body));
    assert_eq!(
        w.process(&mut buf, s, l, Timestamp(0)).verdict,
        Verdict::Drop(nat64_core::DropReason::UnsupportedProtocol)
    );
}

/// RFC 6146 §3.8: a hairpinned packet crossed one router: the hop limit
/// goes down by one, not two.
#[test]
fn rfc6146_3_8_hairpin_decrements_hop_limit_once() {
    let mut cfg = daemon_cfg(&[("192.0.2.0", 31)]);
    cfg.wkp_strict = false;
    cfg.static_bib = vec![StaticBinding {
        proto: L4Proto::Udp,
        v6: SocketAddrV6::new(v6("2001:db8::80"), 8080, 0, 0),
        v4: (v4("192.0.2.1"), 80),
    }];
    let e = Engine::new(cfg).unwrap();
    let mut w = e.worker();
    let (mut buf, s, l) = framed(udp6(v6("2001:db8::1"), 5000, wkp("192.0.2.1"), 80));
    let Verdict::Forward { start, len, .. } = w.process(&mut buf, s, l, Timestamp(0)).verdict
    else {
        panic!("not forwarded")
    };
    let out = SlicedPacket::from_ip(&buf[start..start + len]).unwrap();
    let Some(NetSlice::Ipv6(h)) = out.net else {
        panic!("hairpinned packet left as IPv4")
    };
    // Sent with hop limit 64 (udp6 above).
    assert_eq!(h.header().hop_limit(), 63);
}

/// RFC 6146 §3.8 with §3.5.2.2: a hairpinned IPv4 SYN that finds no
/// binding is held like one from the IPv4 side (and answered with Port
/// Unreachable after 6 s), not dropped as `no_binding` at once.
#[test]
fn rfc6146_3_8_hairpinned_syn_without_binding_is_held() {
    let mut cfg = daemon_cfg(&[("192.0.2.0", 31)]);
    cfg.wkp_strict = false;
    let e = Engine::new(cfg).unwrap();
    let mut w = e.worker();
    let client = v6("2001:db8::1");
    // The client's own pool address, port 7000: nobody listens there.
    run(&mut w, udp6(client, 5000, wkp("198.51.100.9"), 53), 0).unwrap();
    let mine = e.affinity(&client).unwrap();
    let r = run(&mut w, syn6(client, 6000, wkp(&mine.to_string()), 7000), 0);
    assert_eq!(r, Err(Verdict::Drop(nat64_core::DropReason::NoBinding)));
    assert_eq!(e.counts().held_syns, 1);
    let st = e.sweep(Timestamp(6000));
    assert_eq!(st.icmp_answers.len(), 1);
}

/// ADR 0005: with `flow_queues` set, sessions get owner queues round-robin
/// at creation, and every later packet of the flow, either direction,
/// reports the same owner in its `Processed`; without it there is one
/// queue (owner 0).
#[test]
fn sessions_get_owner_queues_round_robin() {
    let owner = |w: &mut Worker, pkt: Vec<u8>| {
        let (mut buf, s, l) = framed(pkt);
        let p = w.process(&mut buf, s, l, Timestamp(0));
        assert!(matches!(p.verdict, Verdict::Forward { .. }), "{p:?}");
        p.owner
    };
    let mut cfg = daemon_cfg(&[("192.0.2.1", 32)]);
    cfg.flow_queues = 3;
    let e = Engine::new(cfg).unwrap();
    let mut w = e.worker();
    let c1 = v6("2001:db8::1");
    let owners: Vec<_> = (40000..40005)
        .map(|p| owner(&mut w, udp6(c1, p, wkp("8.8.8.8"), 53)))
        .collect();
    assert_eq!(owners, [Some(0), Some(1), Some(2), Some(0), Some(1)]);
    assert_eq!(owner(&mut w, udp6(c1, 40002, wkp("8.8.8.8"), 53)), Some(2));
    assert_eq!(
        owner(&mut w, udp4(v4("8.8.8.8"), 53, v4("192.0.2.1"), 40002)),
        Some(2),
        "the reply reports the same owner"
    );
    let e = Engine::new(daemon_cfg(&[("192.0.2.1", 32)])).unwrap();
    let mut w = e.worker();
    owner(&mut w, udp6(c1, 40000, wkp("8.8.8.8"), 53));
    assert_eq!(
        owner(&mut w, udp6(c1, 40001, wkp("8.8.8.8"), 53)),
        Some(0),
        "one queue by default"
    );
    // A drop reaches no session.
    let (mut buf, s, l) = framed(udp4(v4("8.8.4.4"), 53, v4("192.0.2.1"), 1));
    assert_eq!(w.process(&mut buf, s, l, Timestamp(0)).owner, None);
}
