//! RFC 6146 stateful rules, driven through the engine's `Mapper` with an
//! injected clock (no packets: the translation core is not needed).

mod state_common;
use state_common::*;

use nat64_core::state::*;
use nat64_core::time::Timestamp;
use nat64_core::xlat::L4Proto::{Icmp, Tcp, Udp};
use nat64_core::DropReason;
use std::net::SocketAddrV6;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const C1: &str = "2001:db8::1";
const C2: &str = "2001:db8::2";
const R1: &str = "8.8.8.8";
const R2: &str = "9.9.9.9";

fn one_addr() -> H {
    H::new(daemon_cfg(&[("192.0.2.1", 32)]))
}

#[test]
fn rfc6146_3_5_1_udp_session_expires_at_udp_timeout() {
    let mut h = one_addr();
    let out = h.out(&t6(Udp, C1, 40000, R1, 53), 0, 0).unwrap();
    assert_eq!(out.src, v4("192.0.2.1"));
    assert_eq!(out.src_port, 40000, "source port preserved when free");
    assert_eq!((out.dst, out.dst_port), (v4(R1), 53));
    // A packet at 100 s refreshes: the session lives to 400 s.
    h.out(&t6(Udp, C1, 40000, R1, 53), 0, 100 * S).unwrap();
    h.sweep_all(399_999);
    assert_eq!(h.nsessions(), 1);
    let st = h.sweep_all(400 * S);
    assert_eq!(st.expired_sessions.udp, 1);
    assert_eq!(st.expired_bindings.udp, 1);
    assert_eq!(h.nsessions(), 0);
    assert_eq!(h.nbindings(), 0);
    assert_eq!(h.e.counts().pool_ports_in_use, 0, "port back in the pool");
}

#[test]
fn rfc6146_3_5_1_reply_refreshes_udp_session() {
    let mut h = one_addr();
    let out = h.out(&t6(Udp, C1, 40000, R1, 53), 0, 0).unwrap();
    let back = h.inb(&out.reversed(), 0, 250 * S).unwrap();
    assert_eq!((back.dst, back.dst_port), (v6(C1), 40000));
    assert_eq!(back.src, nat64_core::addr::Prefix::WELL_KNOWN.embed(v4(R1)));
    assert_eq!(back.src_port, 53);
    h.sweep_all(300 * S);
    assert_eq!(h.nsessions(), 1, "refreshed by the reply at 250 s");
    h.sweep_all(550 * S);
    assert_eq!(h.nsessions(), 0);
}

#[test]
fn rfc6146_4_timeouts_are_configurable() {
    let mut cfg = daemon_cfg(&[("192.0.2.1", 32)]);
    cfg.timeouts.udp = Duration::from_secs(10);
    let mut h = H::new(cfg);
    h.out(&t6(Udp, C1, 40000, R1, 53), 0, 0).unwrap();
    h.sweep_all(9_999);
    assert_eq!(h.nsessions(), 1);
    h.sweep_all(10 * S);
    assert_eq!(h.nsessions(), 0);
    // Run-time change (SIGHUP) applies to the next packet.
    h.e.set_timeouts(Timeouts {
        udp: Duration::from_secs(20),
        ..Timeouts::default()
    });
    h.out(&t6(Udp, C1, 40000, R1, 53), 0, 100 * S).unwrap();
    h.sweep_all(119 * S);
    assert_eq!(h.nsessions(), 1);
    h.sweep_all(120 * S);
    assert_eq!(h.nsessions(), 0);
}

#[test]
fn rfc6146_3_5_1_1_endpoint_independent_mapping() {
    let mut h = one_addr();
    let a = h.out(&t6(Udp, C1, 40000, R1, 53), 0, 0).unwrap();
    let b = h.out(&t6(Udp, C1, 40000, R2, 123), 0, 0).unwrap();
    assert_eq!((a.src, a.src_port), (b.src, b.src_port));
    assert_eq!(h.nbindings(), 1);
    assert_eq!(h.nsessions(), 2);
}

#[test]
fn rfc6146_3_5_1_endpoint_independent_filtering_admits_unknown_remote() {
    let mut h = one_addr();
    let a = h.out(&t6(Udp, C1, 40000, R1, 53), 0, 0).unwrap();
    let back = h
        .inb(&t4(Udp, v4(R2), 5000, a.src, a.src_port), 0, S)
        .unwrap();
    assert_eq!((back.dst, back.dst_port), (v6(C1), 40000));
    assert_eq!(h.nsessions(), 2);
}

#[test]
fn rfc6146_3_5_1_address_dependent_filter_blocks_unknown_remote() {
    let mut cfg = daemon_cfg(&[("192.0.2.1", 32)]);
    cfg.filtering = Filtering::AddressDependent;
    let mut h = H::new(cfg);
    let a = h.out(&t6(Udp, C1, 40000, R1, 53), 0, 0).unwrap();
    assert_eq!(
        h.inb(&t4(Udp, v4(R2), 53, a.src, a.src_port), 0, S),
        Err(DropReason::FilteredByAddress)
    );
    // Same remote address, another port: allowed (address-dependent).
    let back = h
        .inb(&t4(Udp, v4(R1), 9999, a.src, a.src_port), 0, S)
        .unwrap();
    assert_eq!(back.dst, v6(C1));
    // After the sessions to R1 expire the remote is unknown again.
    h.sweep_all(1000 * S);
    assert_eq!(
        h.inb(&t4(Udp, v4(R1), 53, a.src, a.src_port), 0, 1000 * S),
        Err(DropReason::NoBinding)
    );
}

#[test]
fn rfc6146_3_5_2_2_v6_syn_then_v4_syn_establishes() {
    let mut h = one_addr();
    let t = t6(Tcp, C1, 33000, R1, 80);
    let a = h.out(&t, SYN, 0).unwrap();
    let st = |h: &H| h.e.sessions()[0].tcp_state;
    assert_eq!(st(&h), Some(TcpState::V6Init));
    assert_eq!(h.e.sessions()[0].expires_at, Timestamp::from_secs(240));
    h.inb(&a.reversed(), SYN | ACK, S).unwrap();
    assert_eq!(st(&h), Some(TcpState::Established));
    assert_eq!(h.e.sessions()[0].expires_at, Timestamp::from_secs(1 + 7440));
}

#[test]
fn rfc6146_3_5_2_2_v6_init_expires_at_tcp_trans() {
    let mut h = one_addr();
    h.out(&t6(Tcp, C1, 33000, R1, 80), SYN, 0).unwrap();
    h.sweep_all(239_999);
    assert_eq!(h.nsessions(), 1);
    h.sweep_all(240 * S);
    assert_eq!(h.nsessions(), 0);
    assert_eq!(h.nbindings(), 0);
}

#[test]
fn rfc6146_3_5_2_2_v6_fin_v4_fin_moves_to_trans() {
    let mut h = one_addr();
    let t = t6(Tcp, C1, 33000, R1, 80);
    let a = h.out(&t, SYN, 0).unwrap();
    h.inb(&a.reversed(), SYN | ACK, 0).unwrap();
    h.out(&t, ACK, 0).unwrap();
    h.out(&t, FIN | ACK, 10 * S).unwrap();
    assert_eq!(h.e.sessions()[0].tcp_state, Some(TcpState::V6FinRcv));
    h.inb(&a.reversed(), FIN | ACK, 20 * S).unwrap();
    assert_eq!(h.e.sessions()[0].tcp_state, Some(TcpState::V4FinV6FinRcv));
    // Lifetime TCP_TRANS from the second FIN; later packets do not refresh.
    h.out(&t, ACK, 100 * S).unwrap();
    h.sweep_all(259_999);
    assert_eq!(h.nsessions(), 1);
    h.sweep_all(260 * S);
    assert_eq!(h.nsessions(), 0);
}

#[test]
fn rfc6146_3_5_2_2_rst_moves_to_trans_and_traffic_revives() {
    let mut h = one_addr();
    let t = t6(Tcp, C1, 33000, R1, 80);
    let a = h.out(&t, SYN, 0).unwrap();
    h.inb(&a.reversed(), SYN | ACK, 0).unwrap();
    h.inb(&a.reversed(), RST, 5 * S).unwrap();
    assert_eq!(h.e.sessions()[0].tcp_state, Some(TcpState::Trans));
    assert_eq!(h.e.sessions()[0].expires_at, Timestamp::from_secs(245));
    h.out(&t, ACK, 6 * S).unwrap();
    assert_eq!(h.e.sessions()[0].tcp_state, Some(TcpState::Established));
}

#[test]
fn rfc6146_3_5_2_2_established_expiry_goes_to_trans_then_deleted() {
    let mut h = one_addr();
    let t = t6(Tcp, C1, 33000, R1, 80);
    let a = h.out(&t, SYN, 0).unwrap();
    h.inb(&a.reversed(), SYN | ACK, 0).unwrap();
    let st = h.sweep_all(7440 * S);
    assert_eq!(st.tcp_to_trans, 1);
    assert_eq!(h.e.sessions()[0].tcp_state, Some(TcpState::Trans));
    h.sweep_all(7440 * S + 239_999);
    assert_eq!(h.nsessions(), 1);
    h.sweep_all((7440 + 240) * S);
    assert_eq!(h.nsessions(), 0);
}

#[test]
fn rfc6146_3_5_2_2_closed_non_syn_rejected() {
    let mut h = one_addr();
    assert_eq!(
        h.out(&t6(Tcp, C1, 33000, R1, 80), ACK, 0),
        Err(DropReason::TcpStateRejected)
    );
    assert_eq!(h.nbindings(), 0);
}

#[test]
fn rfc6146_3_5_2_2_v4_syn_without_binding_dropped() {
    let mut h = one_addr();
    assert_eq!(
        h.inb(&t4(Tcp, v4(R1), 5555, v4("192.0.2.1"), 80), SYN, 0),
        Err(DropReason::NoBinding)
    );
}

#[test]
fn rfc6146_3_5_2_2_v4_syn_on_binding_goes_v4_init() {
    let mut h = one_addr();
    // A UDP-less TCP binding from a first flow, then an inbound SYN from
    // another remote to the same binding (EIF), then the v6 SYN.
    let a = h.out(&t6(Tcp, C1, 33000, R1, 80), SYN, 0).unwrap();
    let b = h
        .inb(&t4(Tcp, v4(R2), 7777, a.src, a.src_port), SYN, S)
        .unwrap();
    assert_eq!((b.dst, b.dst_port), (v6(C1), 33000));
    let s =
        h.e.sessions()
            .into_iter()
            .find(|s| s.remote.0 == v4(R2))
            .unwrap();
    assert_eq!(s.tcp_state, Some(TcpState::V4Init));
    h.out(&t6(Tcp, C1, 33000, R2, 7777), SYN | ACK, 2 * S)
        .unwrap();
    let s =
        h.e.sessions()
            .into_iter()
            .find(|s| s.remote.0 == v4(R2))
            .unwrap();
    assert_eq!(s.tcp_state, Some(TcpState::Established));
}

#[test]
fn rfc6146_3_5_3_icmp_echo_identifier_mapping_and_timeout() {
    let mut h = one_addr();
    let out = h.out(&t6(Icmp, C1, 77, R1, 77), 0, 0).unwrap();
    assert_eq!(out.src_port, out.dst_port, "new identifier both ways");
    let reply = t4(Icmp, v4(R1), out.src_port, out.src, out.src_port);
    let back = h.inb(&reply, 0, S).unwrap();
    assert_eq!((back.dst, back.dst_port, back.src_port), (v6(C1), 77, 77));
    h.sweep_all(60_999);
    assert_eq!(h.nsessions(), 1);
    h.sweep_all(61 * S);
    assert_eq!(h.nsessions(), 0);
}

#[test]
fn rfc6146_3_5_1_1_pool_affinity_one_address_per_source() {
    let mut h = H::new(daemon_cfg(&[("192.0.2.0", 30)]));
    let mut addrs = std::collections::HashSet::new();
    for i in 0..16u16 {
        let src = format!("2001:db8::{:x}", i + 1);
        let a = h.out(&t6(Udp, &src, 1000 + i, R1, 53), 0, 0).unwrap();
        // Every further flow of this source uses the same address.
        for p in 0..20u16 {
            let b = h.out(&t6(Tcp, &src, 20000 + p, R2, 443), SYN, 0).unwrap();
            assert_eq!(b.src, a.src, "source {src}");
            let c = h.out(&t6(Icmp, &src, p, R2, p), 0, 0).unwrap();
            assert_eq!(c.src, a.src);
        }
        assert_eq!(h.e.affinity(&v6(&src)), Some(a.src));
        addrs.insert(a.src);
    }
    assert!(
        addrs.len() >= 3,
        "16 sources spread over 4 addresses: {addrs:?}"
    );
}

#[test]
fn rfc4787_req4_port_parity_kept() {
    let mut h = one_addr();
    // All clients want the same ports: only the first gets them, the rest
    // get other ports of the same parity.
    for c in 1..=20 {
        let src = format!("2001:db8::{c}");
        for sp in [5000u16, 5001, 53, 1023] {
            let o = h.out(&t6(Udp, &src, sp, R1, 53), 0, 0).unwrap();
            assert_eq!(o.src_port % 2, sp % 2, "{src} port {sp} -> {}", o.src_port);
            assert!(o.src_port >= 1024);
            if c == 1 && sp >= 1024 {
                assert_eq!(o.src_port, sp);
            }
        }
    }
}

#[test]
fn pool_exhaustion_returns_pool_exhausted_and_recovers() {
    let cfg = EngineConfig {
        napt: NaptConfig::Daemon(PoolConfig {
            prefixes: vec![(v4("192.0.2.1"), 32)],
            udp_ports: (2000, 2009),
            ..PoolConfig::default()
        }),
        ..EngineConfig::default()
    };
    let mut h = H::new(cfg);
    for p in 0..10u16 {
        h.out(&t6(Udp, C1, 3000 + p, R1, 53), 0, 0).unwrap();
    }
    assert_eq!(
        h.out(&t6(Udp, C1, 4000, R1, 53), 0, 0),
        Err(DropReason::PoolExhausted)
    );
    assert_eq!(
        h.out(&t6(Udp, C2, 4000, R1, 53), 0, 0),
        Err(DropReason::PoolExhausted)
    );
    assert_eq!(h.e.counts().pool_exhausted, 2);
    // Existing flows still work.
    h.out(&t6(Udp, C1, 3000, R1, 53), 0, S).unwrap();
    // TCP has its own range.
    h.out(&t6(Tcp, C1, 4000, R1, 80), SYN, 0).unwrap();
    h.sweep_all(400 * S);
    h.out(&t6(Udp, C2, 4000, R1, 53), 0, 400 * S).unwrap();
    let u = &h.e.pool_usage()[0];
    assert_eq!(u.in_use.udp, 1);
    assert_eq!(u.capacity.udp, 10);
}

#[test]
fn limits_global_and_per_client() {
    let mut cfg = daemon_cfg(&[("192.0.2.1", 32)]);
    cfg.limits = Limits {
        max_sessions: 10,
        max_sessions_per_client: 3,
        client_prefix_len: 64,
        ..Limits::default()
    };
    let mut h = H::new(cfg);
    for i in 0..3 {
        h.out(&t6(Udp, C1, 1000 + i, R1, 53), 0, 0).unwrap();
    }
    // C2 is in the same /64: same client.
    assert_eq!(
        h.out(&t6(Udp, C2, 1000, R1, 53), 0, 0),
        Err(DropReason::ClientSessionLimit)
    );
    for c in 0..7 {
        let src = format!("2001:db8:{:x}::1", c + 1);
        h.out(&t6(Udp, &src, 1000, R1, 53), 0, 0).unwrap();
    }
    assert_eq!(
        h.out(&t6(Udp, "2001:db8:99::1", 1000, R1, 53), 0, 0),
        Err(DropReason::SessionLimit)
    );
    let c = h.e.counts();
    assert_eq!(c.client_session_limit_hits, 1);
    assert_eq!(c.session_limit_hits, 1);
    assert_eq!(c.clients_limited, 1);
    // Reload: /128 clients make C2 its own client.
    h.e.set_limits(Limits {
        max_sessions: 100,
        max_sessions_per_client: 3,
        client_prefix_len: 128,
        ..Limits::default()
    });
    h.out(&t6(Udp, C2, 1000, R1, 53), 0, 0).unwrap();
}

#[test]
fn rfc6146_3_1_static_binding_port_forwarding() {
    let mut cfg = daemon_cfg(&[("192.0.2.1", 32)]);
    cfg.static_bib = vec![StaticBinding {
        proto: Tcp,
        v6: SocketAddrV6::new(v6("2001:db8::80"), 8080, 0, 0),
        v4: (v4("192.0.2.1"), 80),
    }];
    let mut h = H::new(cfg);
    let back = h
        .inb(&t4(Tcp, v4(R1), 40000, v4("192.0.2.1"), 80), SYN, 0)
        .unwrap();
    assert_eq!((back.dst, back.dst_port), (v6("2001:db8::80"), 8080));
    // The server's answer uses the static mapping.
    let out = h
        .out(&t6(Tcp, "2001:db8::80", 8080, R1, 40000), SYN | ACK, 0)
        .unwrap();
    assert_eq!((out.src, out.src_port), (v4("192.0.2.1"), 80));
    // Static entries survive their sessions.
    h.sweep_all(100_000 * S); // ESTABLISHED -> TRANS
    h.sweep_all(100_240 * S);
    assert_eq!(h.nsessions(), 0);
    assert!(h.e.bindings().iter().any(|b| b.is_static));
    // Conflicts and unknown addresses are refused with a message.
    let dup = h.e.add_static(StaticBinding {
        proto: Tcp,
        v6: SocketAddrV6::new(v6("2001:db8::81"), 80, 0, 0),
        v4: (v4("192.0.2.1"), 80),
    });
    assert!(
        matches!(dup, Err(EngineError::StaticConflict(..))),
        "{dup:?}"
    );
    let outside = h.e.add_static(StaticBinding {
        proto: Udp,
        v6: SocketAddrV6::new(v6("2001:db8::81"), 53, 0, 0),
        v4: (v4("203.0.113.1"), 53),
    });
    assert!(outside
        .unwrap_err()
        .to_string()
        .contains("not a pool address"));
    // Run-time add and remove.
    h.e.add_static(StaticBinding {
        proto: Udp,
        v6: SocketAddrV6::new(v6("2001:db8::53"), 53, 0, 0),
        v4: (v4("192.0.2.1"), 53),
    })
    .unwrap();
    h.inb(&t4(Udp, v4(R1), 999, v4("192.0.2.1"), 53), 0, 0)
        .unwrap();
    h.e.remove_static(Udp, (v4("192.0.2.1"), 53)).unwrap();
    assert_eq!(
        h.inb(&t4(Udp, v4(R1), 999, v4("192.0.2.1"), 53), 0, 0),
        Err(DropReason::NoBinding)
    );
    assert!(h.e.remove_static(Udp, (v4("192.0.2.1"), 53)).is_err());
}

#[test]
fn rfc6146_3_5_1_icmp_error_inner_is_lookup_only() {
    let mut h = one_addr();
    assert_eq!(
        h.out_m(&t6(Udp, C1, 40000, R1, 53), &inner_meta(), 0),
        Err(DropReason::NoMapping)
    );
    assert_eq!(h.nbindings(), 0, "no state from an ICMP error");
    let a = h.out(&t6(Udp, C1, 40000, R1, 53), 0, 0).unwrap();
    // An ICMPv4 error about that packet: the inner tuple reversed.
    let back = h.inb_m(&a.reversed(), &inner_meta(), 200 * S).unwrap();
    assert_eq!((back.dst, back.dst_port), (v6(C1), 40000));
    // ...and it did not refresh the session.
    h.sweep_all(300 * S);
    assert_eq!(h.nsessions(), 0);
}

#[test]
fn rfc6146_3_4_fragments_follow_first_fragment() {
    let mut h = one_addr();
    let t = t6(Udp, C1, 40000, R1, 53);
    // A later fragment before the first: dropped (no hold).
    let mut nf = t;
    nf.src_port = 0;
    nf.dst_port = 0;
    assert_eq!(
        h.out_m(&nf, &frag_meta(7, 1232, true), 0),
        Err(DropReason::FragmentNoState)
    );
    let a = h.out_m(&t, &frag_meta(7, 0, true), 0).unwrap();
    let b = h.out_m(&nf, &frag_meta(7, 1232, false), 10).unwrap();
    assert_eq!((a.src, a.src_port), (b.src, b.src_port));
    assert_eq!(b.dst_port, 53);
    // Another datagram id has no state; expired entries are forgotten.
    assert_eq!(
        h.out_m(&nf, &frag_meta(8, 1232, false), 10),
        Err(DropReason::FragmentNoState)
    );
    assert_eq!(
        h.out_m(&nf, &frag_meta(7, 1232, false), 6 * S),
        Err(DropReason::FragmentNoState)
    );
    // IPv4 side.
    let mut r = a.reversed();
    let first = h.inb_m(&r, &frag_meta(99, 0, true), 7 * S).unwrap();
    r.src_port = 0;
    r.dst_port = 0;
    let later = h.inb_m(&r, &frag_meta(99, 1480, false), 7 * S).unwrap();
    assert_eq!(first, later);
}

#[test]
fn mapping_events_on_create_and_expire() {
    let mut h = one_addr();
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    h.e.set_event_hook(move |ev: &MappingEvent| l2.lock().unwrap().push(*ev));
    let a = h.out(&t6(Udp, C1, 40000, R1, 53), 0, 5 * S).unwrap();
    h.out(&t6(Udp, C1, 40000, R2, 53), 0, 5 * S).unwrap();
    h.sweep_all(1000 * S);
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2, "one binding: created + expired");
    assert_eq!(log[0].kind, MappingEventKind::Created);
    assert_eq!(log[0].time, Timestamp::from_secs(5));
    assert_eq!(log[0].v6, (v6(C1), 40000));
    assert_eq!(log[0].v4, (a.src, a.src_port));
    assert_eq!(log[0].proto, Some(Udp));
    assert_eq!(log[1].kind, MappingEventKind::Expired);
    assert_eq!(log[1].time, Timestamp::from_secs(1000));
}

#[test]
fn port_blocks_one_log_line_per_block() {
    let cfg = EngineConfig {
        napt: NaptConfig::Daemon(PoolConfig {
            prefixes: vec![(v4("192.0.2.0"), 31)],
            port_block_size: Some(64),
            ..PoolConfig::default()
        }),
        ..EngineConfig::default()
    };
    let mut h = H::new(cfg);
    let log = Arc::new(Mutex::new(Vec::new()));
    let l2 = log.clone();
    h.e.set_event_hook(move |ev: &MappingEvent| l2.lock().unwrap().push(*ev));
    let mut ports = std::collections::HashSet::new();
    for i in 0..100u16 {
        let o = h.out(&t6(Udp, C1, 30000 + i, R1, 53), 0, 0).unwrap();
        ports.insert(o.src_port / 64);
    }
    assert_eq!(ports.len(), 2, "100 flows fit in two blocks of 64");
    {
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 2);
        assert!(log
            .iter()
            .all(|e| e.kind == MappingEventKind::BlockAllocated));
        assert_eq!(log[0].v4_last_port - log[0].v4.1, 63);
    }
    h.sweep_all(1000 * S);
    assert_eq!(log.lock().unwrap().len(), 4, "two blocks released");
    assert_eq!(h.e.counts().pool_ports_in_use, 0);
}

#[test]
fn kernel_mode_one_to_one_leases() {
    let mut h = H::new(kernel_cfg(
        ("100.64.0.0", 16),
        &[("2001:db8::100", "192.0.2.100")],
    ));
    let a = h.out(&t6(Tcp, C1, 33000, R1, 80), SYN, 0).unwrap();
    assert!(h.e.is_local_v4(a.src));
    // The server answers: the lease is confirmed (issue 11 #4).
    h.inb(&t4(Tcp, v4(R1), 80, a.src, 33000), SYN | 0x10, 0)
        .unwrap();
    assert_eq!(a.src_port, 33000, "ports are not translated");
    let b = h.out(&t6(Udp, C1, 5353, R2, 53), 0, 0).unwrap();
    assert_eq!(a.src, b.src, "one inner address per v6 source");
    let c = h.out(&t6(Udp, C2, 5353, R2, 53), 0, 0).unwrap();
    assert_ne!(a.src, c.src);
    let back = h.inb(&t4(Udp, v4(R2), 53, c.src, 5353), 0, S).unwrap();
    assert_eq!((back.dst, back.dst_port), (v6(C2), 5353));
    // A static map works both ways; a v4 host may start the flow (a
    // global one: behind the Well-Known Prefix RFC 6052 §3.1 refuses
    // 10.1.2.3, see state_siit.rs).
    let inb = h
        .inb(
            &t4(Tcp, v4("9.9.9.9"), 40000, v4("192.0.2.100"), 22),
            SYN,
            0,
        )
        .unwrap();
    assert_eq!(inb.dst, v6("2001:db8::100"));
    assert_eq!(
        inb.src,
        nat64_core::addr::Prefix::WELL_KNOWN.embed(v4("9.9.9.9"))
    );
    let out = h.out(&t6(Udp, "2001:db8::100", 1, R1, 2), 0, 0).unwrap();
    assert_eq!(out.src, v4("192.0.2.100"));
    // Unknown inner address: no binding.
    assert_eq!(
        h.inb(&t4(Udp, v4(R1), 1, v4("100.64.9.9"), 2), 0, 0),
        Err(DropReason::NoBinding)
    );
    // Export / import.
    let leases = h.e.kernel_leases();
    assert_eq!(leases.len(), 2);
    let mut h2 = H::new(kernel_cfg(("100.64.0.0", 16), &[]));
    assert_eq!(h2.e.restore_kernel_leases(&leases), 2);
    let again = h2.out(&t6(Udp, C1, 1, R1, 2), 0, 0).unwrap();
    assert!(leases.contains(&(v6(C1), again.src)));
    // Leases expire by the timers: C2 only had UDP (300 s); C1 had an
    // answered TCP SYN (TCP_EST 7440 s in kernel mode).
    let st = h.sweep_all(301 * S);
    assert_eq!(st.expired_leases, 1);
    h.sweep_all(7441 * S);
    assert_eq!(h.e.kernel_leases().len(), 0);
    assert_eq!(h.e.counts().kernel_leases, 1, "the static map stays");
}

#[test]
fn kernel_mode_pool_exhaustion() {
    let mut h = H::new(kernel_cfg(("100.64.0.0", 30), &[]));
    h.out(&t6(Udp, C1, 1, R1, 2), 0, 0).unwrap();
    h.out(&t6(Udp, C2, 1, R1, 2), 0, 0).unwrap();
    assert_eq!(
        h.out(&t6(Udp, "2001:db8::3", 1, R1, 2), 0, 0),
        Err(DropReason::PoolExhausted)
    );
    assert_eq!(h.e.counts().pool_exhausted, 1);
    h.sweep_all(1000 * S);
    h.out(&t6(Udp, "2001:db8::3", 1, R1, 2), 0, 1000 * S)
        .unwrap();
    assert!(h
        .e
        .add_static(StaticBinding {
            proto: Udp,
            v6: SocketAddrV6::new(v6(C1), 1, 0, 0),
            v4: (v4("100.64.0.1"), 1),
        })
        .is_err());
}

#[test]
fn rfc6052_3_1_wkp_refuses_non_global_destination() {
    let mut h = one_addr();
    assert_eq!(
        h.out(&t6(Udp, C1, 1, "10.0.0.1", 53), 0, 0),
        Err(DropReason::WkpNonGlobal)
    );
}

#[test]
fn config_errors_name_the_problem() {
    let e = Engine::new(daemon_cfg(&[])).unwrap_err();
    assert!(e.to_string().contains("pool"), "{e}");
    let e = Engine::new(daemon_cfg(&[("192.0.2.1", 24)])).unwrap_err();
    assert!(e.to_string().contains("192.0.2.0/24"), "{e}");
    let e = Engine::new(kernel_cfg(
        ("100.64.0.0", 16),
        &[("2001:db8::1", "1.2.3.4"), ("2001:db8::2", "1.2.3.4")],
    ))
    .unwrap_err();
    assert!(e.to_string().contains("1.2.3.4"), "{e}");
}

#[test]
fn engine_is_send_sync_and_worker_send() {
    fn ss<T: Send + Sync>() {}
    fn s<T: Send>() {}
    ss::<Engine>();
    s::<Worker>();
}

/// Issue 11 #9: with `client-prefix-len = 128`, sources spoofed from one
/// /64 used to fill the whole table. The site guard (a /64 by default)
/// caps one site, and near full a site holding more than its fair share
/// waits while others are still admitted.
#[test]
fn site_guard_caps_one_64_and_admits_fairly_near_full() {
    let mut cfg = daemon_cfg(&[("192.0.2.0", 28)]);
    cfg.limits = Limits {
        max_sessions: 80,
        max_sessions_per_client: 10,
        client_prefix_len: 128,
        site_prefix_len: 64,
        max_sessions_per_site: 50,
        ..Limits::default()
    };
    let mut h = H::new(cfg);
    // One /64, many /128 sources: stopped at 50 by the site guard.
    let mut admitted = 0;
    for i in 0..100u16 {
        let src = format!("2001:db8:1::{:x}", i + 1);
        if h.out(&t6(Udp, &src, 1000, R1, 53), 0, 0).is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 50);
    assert_eq!(h.e.counts().site_limit_hits, 50);
    // A second site still gets in, up to the fair share once the table is
    // near full (7/8 of 80 = 70): 80 / 2 sites = 40 each.
    let mut second = 0;
    for i in 0..100u16 {
        let src = format!("2001:db8:2::{:x}", i + 1);
        if h.out(&t6(Udp, &src, 1000, R1, 53), 0, 0).is_ok() {
            second += 1;
        }
    }
    assert_eq!(second, 30, "admitted until the table is full (80)");
    assert_eq!(h.nsessions(), 80);
    // The full site cannot take more even after others leave room near full.
    assert_eq!(
        h.out(&t6(Udp, "2001:db8:1::ffff", 1000, R1, 53), 0, 0),
        Err(DropReason::SessionLimit)
    );
}

/// Issue 11 #4: in kernel mode a bare SYN (no answer) holds its lease only
/// the transitory time and is not persisted; traffic coming back confirms
/// the lease (TCP established timer, listed for the state file). One /64
/// cannot take more than `max-leases-per-site` inner addresses.
#[test]
fn kernel_lease_unanswered_syn_holds_little_and_site_guard() {
    let mut cfg = kernel_cfg(("100.64.0.0", 16), &[]);
    cfg.limits.max_leases_per_site = 8;
    let mut h = H::new(cfg);
    let syn = 0x02;
    let out = h.out(&t6(Tcp, C1, 40000, R1, 80), syn, 0).unwrap();
    assert!(
        h.e.kernel_leases().is_empty(),
        "an unanswered lease is not persisted"
    );
    // Unanswered: gone after TCP_TRANS (240 s), not TCP_EST (7440 s).
    h.sweep_all(239 * S);
    assert_eq!(h.e.counts().kernel_leases, 1);
    let st = h.sweep_all(241 * S);
    assert_eq!(st.expired_leases, 1);
    assert_eq!(h.e.counts().kernel_leases, 0);

    // Answered: the reply confirms it; it lives the established time.
    let out2 = h.out(&t6(Tcp, C1, 40001, R1, 80), syn, 300 * S).unwrap();
    let g0 = h.e.lease_generation();
    h.inb(&t4(Tcp, out.dst, 80, out2.src, 40001), syn | 0x10, 301 * S)
        .unwrap();
    assert!(h.e.lease_generation() > g0);
    assert_eq!(h.e.kernel_leases(), vec![(v6(C1), out2.src)]);
    h.out(&t6(Tcp, C1, 40001, R1, 80), 0x10, 302 * S).unwrap();
    h.sweep_all(302 * S + 7000 * S);
    assert_eq!(h.e.counts().kernel_leases, 1, "confirmed: TCP_EST");

    // Site guard: 8 leases per /64 (C1 holds one already).
    let mut ok = 0;
    for i in 0..20u16 {
        let src = format!("2001:db8::{:x}", 0x100 + i);
        if h.out(&t6(Tcp, &src, 1, R1, 80), syn, 303 * S).is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 7);
    assert_eq!(
        h.out(&t6(Tcp, "2001:db8:5::1", 1, R1, 80), syn, 303 * S)
            .map(|_| ()),
        Ok(()),
        "another /64 is not affected"
    );
    assert_eq!(h.e.counts().site_limit_hits, 13);
}
