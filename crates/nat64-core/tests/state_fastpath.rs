//! The engine's side of the fast path (issue 13): when a session may move
//! out of the engine and when it must come back ([`FlowEvent`]), and the
//! fast path's traffic keeping RFC 6146 timers alive ([`Engine::refresh_flows`]).

mod state_common;

use nat64_core::state::*;
use nat64_core::time::Timestamp;
use nat64_core::xlat::L4Proto;
use state_common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An engine (documentation addresses behind the WKP: RFC 6052 §3.1
/// lifted) whose flow hook records the events.
fn hooked(mut cfg: EngineConfig) -> (H, Arc<Mutex<Vec<FlowEvent>>>) {
    cfg.wkp_strict = false;
    let h = H::new(cfg);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    h.e.set_flow_hook(move |ev| s.lock().unwrap().push(ev));
    (h, seen)
}

fn take(seen: &Arc<Mutex<Vec<FlowEvent>>>) -> Vec<FlowEvent> {
    std::mem::take(&mut *seen.lock().unwrap())
}

/// RFC 6146 §3.5.2: offered once the three-way handshake made the session
/// ESTABLISHED, taken back at the first FIN (the rest of the close goes
/// through the engine's state machine), and not told again at removal
/// beyond one more `Closed`.
#[test]
fn tcp_is_offered_at_established_and_withdrawn_at_fin() {
    let (mut h, seen) = hooked(daemon_cfg(&[("192.0.2.0", 31)]));
    let t = t6(L4Proto::Tcp, "2001:db8::1", 40000, "198.51.100.2", 80);
    let o = h.out(&t, SYN, 0).unwrap();
    assert!(take(&seen).is_empty(), "a SYN is not established");
    let back = t4(L4Proto::Tcp, o.dst, o.dst_port, o.src, o.src_port);
    h.inb(&back, SYN | ACK, 10).unwrap();
    h.out(&t, ACK, 20).unwrap();
    let pair = FlowPair {
        proto: L4Proto::Tcp,
        client: (v6("2001:db8::1"), 40000),
        pool: (o.src, o.src_port),
        remote: (v4("198.51.100.2"), 80),
    };
    assert_eq!(take(&seen), [FlowEvent::Established(pair)]);
    h.out(&t, ACK, 30).unwrap();
    h.inb(&back, ACK, 40).unwrap();
    assert!(take(&seen).is_empty(), "offered once");
    h.inb(&back, FIN | ACK, 50).unwrap();
    assert_eq!(take(&seen), [FlowEvent::Closed(pair)]);
    h.sweep_all(10_000 * S);
    h.sweep_all(20_000 * S);
    assert_eq!(h.nsessions(), 0);
    assert!(take(&seen).is_empty(), "withdrawn once");
}

/// RFC 6146 §3.5.2.2: an ESTABLISHED session idle past its lifetime goes to
/// TRANS and leaves the fast path; a packet brings it back to ESTABLISHED,
/// and it is offered again.
#[test]
fn tcp_idle_past_its_lifetime_is_withdrawn_and_offered_again() {
    let (mut h, seen) = hooked(daemon_cfg(&[("192.0.2.0", 31)]));
    let t = t6(L4Proto::Tcp, "2001:db8::1", 40000, "198.51.100.2", 80);
    let o = h.out(&t, SYN, 0).unwrap();
    let back = t4(L4Proto::Tcp, o.dst, o.dst_port, o.src, o.src_port);
    h.inb(&back, SYN | ACK, 10).unwrap();
    h.out(&t, ACK, 20).unwrap();
    assert!(matches!(take(&seen)[..], [FlowEvent::Established(_)]));
    h.sweep_all(7441 * S);
    assert!(matches!(take(&seen)[..], [FlowEvent::Closed(_)]));
    assert_eq!(h.nsessions(), 1, "TRANS, not removed");
    h.out(&t, ACK, 7450 * S).unwrap();
    assert!(matches!(take(&seen)[..], [FlowEvent::Established(_)]));
}

/// UDP (and ICMP echo): offered when the first reply comes back; an
/// expired session is withdrawn.
#[test]
fn udp_is_offered_beyond_one_exchange_and_withdrawn_at_expiry() {
    let (mut h, seen) = hooked(daemon_cfg(&[("192.0.2.0", 31)]));
    // A query and its answer (DNS): never offered.
    let q = t6(L4Proto::Udp, "2001:db8::1", 5001, "198.51.100.2", 53);
    let oq = h.out(&q, 0, 0).unwrap();
    h.inb(&t4(L4Proto::Udp, oq.dst, 53, oq.src, oq.src_port), 0, 5)
        .unwrap();
    assert!(take(&seen).is_empty(), "one exchange");
    let t = t6(L4Proto::Udp, "2001:db8::1", 5000, "198.51.100.2", 53);
    let o = h.out(&t, 0, 0).unwrap();
    h.out(&t, 0, 10).unwrap();
    assert!(take(&seen).is_empty(), "one way only");
    let back = t4(L4Proto::Udp, o.dst, o.dst_port, o.src, o.src_port);
    h.inb(&back, 0, 20).unwrap();
    assert!(take(&seen).is_empty(), "the first reply only");
    h.inb(&back, 0, 30).unwrap();
    let ev = take(&seen);
    assert_eq!(ev.len(), 1, "{ev:?}");
    let FlowEvent::Established(pair) = ev[0] else {
        panic!("{ev:?}")
    };
    assert_eq!(pair.remote, (v4("198.51.100.2"), 53));
    h.sweep_all(3600 * S);
    assert_eq!(take(&seen), [FlowEvent::Closed(pair)]);
}

/// The fast path's counters keep a session alive exactly as its packets
/// would: UDP gets the UDP lifetime from the refresh, established TCP the
/// established one; a session that is gone is reported as such.
#[test]
fn rfc6146_timers_follow_fast_path_traffic() {
    let mut cfg = daemon_cfg(&[("192.0.2.0", 31)]);
    cfg.timeouts.udp = Duration::from_secs(300);
    let (mut h, _seen) = hooked(cfg);
    let t = t6(L4Proto::Udp, "2001:db8::1", 5000, "198.51.100.2", 53);
    let o = h.out(&t, 0, 0).unwrap();
    let pair = FlowPair {
        proto: L4Proto::Udp,
        client: (v6("2001:db8::1"), 5000),
        pool: (o.src, o.src_port),
        remote: (v4("198.51.100.2"), 53),
    };
    // Traffic only in the fast path at 200 s and 400 s: alive at 650 s,
    // although the engine last saw a packet at 0 s.
    assert_eq!(h.e.refresh_flows(&[pair], Timestamp(200 * S)), 1);
    assert_eq!(h.e.refresh_flows(&[pair], Timestamp(400 * S)), 1);
    h.sweep_all(650 * S);
    assert_eq!(h.nsessions(), 1, "refreshed to 700 s");
    h.sweep_all(701 * S);
    assert_eq!(h.nsessions(), 0);
    assert_eq!(h.e.refresh_flows(&[pair], Timestamp(702 * S)), 0);
}

/// A hairpinned flow (the remote is one of the pool's own addresses) is
/// never offered: its packets must come back through the engine.
#[test]
fn hairpinned_flows_stay_in_the_engine() {
    let (mut h, seen) = hooked(daemon_cfg(&[("192.0.2.0", 31)]));
    let t = t6(L4Proto::Udp, "2001:db8::1", 5000, "192.0.2.1", 53);
    let o = h.out(&t, 0, 0).unwrap();
    let back = t4(L4Proto::Udp, o.dst, o.dst_port, o.src, o.src_port);
    let _ = h.inb(&back, 0, 10);
    assert!(take(&seen).is_empty());
}

/// Kernel mode keeps no sessions (conntrack is the state machine): every
/// packet coming back through a confirmed lease offers its flow (the
/// fast-path thread ignores repeats), ports as the client sent them (the
/// kernel's NAT does the ports); a FIN or RST either way withdraws it; the
/// lease's end withdraws all of the client's flows; the fast path's traffic
/// keeps the lease as its packets would.
#[test]
fn kernel_mode_offers_flows_of_a_lease_and_keeps_the_lease() {
    let mut cfg = kernel_cfg(("100.64.0.0", 16), &[]);
    cfg.timeouts.udp = Duration::from_secs(300);
    let (mut h, seen) = hooked(cfg);
    let t = t6(L4Proto::Tcp, "2001:db8::1", 40000, "198.51.100.2", 80);
    let o = h.out(&t, SYN, 0).unwrap();
    assert!(take(&seen).is_empty(), "nothing came back yet");
    assert_eq!(o.src_port, 40000, "kernel mode keeps the port");
    let back = t4(L4Proto::Tcp, o.dst, o.dst_port, o.src, o.src_port);
    let pair = FlowPair {
        proto: L4Proto::Tcp,
        client: (v6("2001:db8::1"), 40000),
        pool: (o.src, 40000),
        remote: (v4("198.51.100.2"), 80),
    };
    h.inb(&back, SYN | ACK, 10).unwrap();
    assert!(take(&seen).is_empty(), "a first reply offers nothing");
    h.inb(&back, ACK, 20).unwrap();
    assert_eq!(take(&seen), [FlowEvent::Established(pair)], "the second");
    h.inb(&back, ACK, 25).unwrap();
    assert_eq!(
        take(&seen),
        [FlowEvent::Established(pair)],
        "each later one"
    );
    h.out(&t, ACK, 30).unwrap();
    assert!(take(&seen).is_empty(), "the client's side offers nothing");
    h.out(&t, FIN | ACK, 40).unwrap();
    assert_eq!(take(&seen), [FlowEvent::Closed(pair)]);
    h.inb(&back, RST, 50).unwrap();
    assert_eq!(take(&seen), [FlowEvent::Closed(pair)]);

    // A UDP-only client: the fast path's traffic alone keeps its lease
    // (and so its address) past the lease's lifetime.
    let u = t6(L4Proto::Udp, "2001:db8::2", 5000, "198.51.100.2", 53);
    let ou = h.out(&u, 0, 60).unwrap();
    let ub = t4(L4Proto::Udp, ou.dst, 53, ou.src, 5000);
    h.inb(&ub, 0, 70).unwrap();
    assert!(take(&seen).is_empty(), "a one-reply flow is never offered");
    h.inb(&ub, 0, 71).unwrap();
    let upair = FlowPair {
        proto: L4Proto::Udp,
        client: (v6("2001:db8::2"), 5000),
        pool: (ou.src, 5000),
        remote: (v4("198.51.100.2"), 53),
    };
    assert_eq!(take(&seen), [FlowEvent::Established(upair)]);
    assert_eq!(h.e.refresh_flows(&[upair], Timestamp(200 * S)), 1);
    assert_eq!(h.e.refresh_flows(&[upair], Timestamp(400 * S)), 1);
    h.sweep_all(650 * S);
    assert!(take(&seen).is_empty(), "refreshed to 700 s");
    h.sweep_all(701 * S);
    assert_eq!(
        take(&seen),
        [FlowEvent::ClientGone(v6("2001:db8::2"))],
        "the lease ended: every flow of the client goes"
    );
    assert_eq!(h.e.refresh_flows(&[upair], Timestamp(702 * S)), 0);
}
