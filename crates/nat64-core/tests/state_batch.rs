//! ADR-0002 "Batched publishes": a new flow reaches the workers' read
//! handles with the next batch; until then it is found under the writer
//! lock. Nothing may be lost, duplicated or handed out twice meanwhile: a
//! second worker sees the flow (both directions, ICMP errors about it), the
//! control plane lists it, the reaper expires it.

mod state_common;
use state_common::*;

use nat64_core::state::*;
use nat64_core::time::Timestamp;
use nat64_core::xlat::L4Proto::{Icmp, Tcp, Udp};
use nat64_core::xlat::{Mapper, Tuple4, Tuple6};
use nat64_core::DropReason;
use std::collections::HashSet;

const S: u64 = 1000;

fn out(w: &mut Worker, t: &Tuple6, flags: u8, ms: u64) -> Result<Tuple4, DropReason> {
    w.set_now(Timestamp(ms));
    w.mapper().map_6to4(t, &meta(flags))
}

fn inb(w: &mut Worker, t: &Tuple4, ms: u64) -> Result<Tuple6, DropReason> {
    w.set_now(Timestamp(ms));
    w.mapper().map_4to6(t, &meta(0))
}

#[test]
fn rfc6146_3_5_1_unpublished_flow_seen_by_another_worker() {
    let e = Engine::new(daemon_cfg(&[("192.0.2.0", 30)])).unwrap();
    let (mut a, mut b) = (e.worker(), e.worker());
    // One packet on A: the flow is created and (alone) stays in the batch.
    let f = t6(Udp, "2001:db8::1", 40000, "8.8.8.8", 53);
    let m = out(&mut a, &f, 0, 0).unwrap();
    // Its next packet on B: the same mapping, not a second binding.
    assert_eq!(out(&mut b, &f, 0, 10).unwrap(), m);
    // The reply on B, and on A.
    let back = inb(&mut b, &m.reversed(), 20).unwrap();
    assert_eq!((back.dst, back.dst_port), (v6("2001:db8::1"), 40000));
    assert_eq!(inb(&mut a, &m.reversed(), 30).unwrap(), back);
    // A TCP SYN on A, the SYN/ACK on B (V6 INIT -> ESTABLISHED).
    let syn = t6(Tcp, "2001:db8::2", 33000, "8.8.8.8", 443);
    let ms = out(&mut a, &syn, SYN, 40).unwrap();
    b.set_now(Timestamp(50));
    let sa = b
        .mapper()
        .map_4to6(&ms.reversed(), &meta(SYN | ACK))
        .unwrap();
    assert_eq!(sa.dst, v6("2001:db8::2"));
    assert_eq!(e.counts().bindings.udp + e.counts().bindings.tcp, 2);
    assert_eq!(e.counts().sessions.udp + e.counts().sessions.tcp, 2);
}

#[test]
fn rfc6146_3_5_4_icmp_error_about_unpublished_flow() {
    let e = Engine::new(daemon_cfg(&[("192.0.2.1", 32)])).unwrap();
    let (mut a, mut b) = (e.worker(), e.worker());
    let f = t6(Icmp, "2001:db8::1", 7, "8.8.8.8", 7);
    let m = out(&mut a, &f, 0, 0).unwrap();
    // An ICMPv4 error quoting the translated packet, on B.
    b.set_now(Timestamp(10));
    let back = b.mapper().map_4to6(&m.reversed(), &inner_meta()).unwrap();
    assert_eq!((back.dst, back.dst_port), (v6("2001:db8::1"), 7));
    // An ICMPv6 error quoting the flow's packet, on B (lookup only).
    let g = t6(Udp, "2001:db8::3", 5000, "8.8.4.4", 53);
    let mg = out(&mut a, &g, 0, 20).unwrap();
    b.set_now(Timestamp(30));
    assert_eq!(b.mapper().map_6to4(&g, &inner_meta()).unwrap(), mg);
    // Nothing known: still no mapping, and no state created.
    let h = t6(Udp, "2001:db8::4", 5000, "8.8.4.4", 53);
    assert_eq!(
        b.mapper().map_6to4(&h, &inner_meta()),
        Err(DropReason::NoMapping)
    );
    assert_eq!(e.counts().bindings.udp, 1);
}

#[test]
fn kernel_mode_reply_to_unpublished_lease() {
    let e = Engine::new(kernel_cfg(("100.64.0.0", 16), &[])).unwrap();
    let (mut a, mut b) = (e.worker(), e.worker());
    let f = t6(Udp, "2001:db8::1", 5353, "8.8.8.8", 53);
    let m = out(&mut a, &f, 0, 0).unwrap();
    let back = inb(&mut b, &m.reversed(), 10).unwrap();
    assert_eq!((back.dst, back.dst_port), (v6("2001:db8::1"), 5353));
    // The next flow of that host on B: the same lease.
    let g = t6(Udp, "2001:db8::1", 5354, "9.9.9.9", 53);
    assert_eq!(out(&mut b, &g, 0, 20).unwrap().src, m.src);
    assert_eq!(e.kernel_leases().len(), 1);
    // An unknown inner address is still refused.
    assert_eq!(
        inb(&mut b, &t4(Udp, v4("8.8.8.8"), 53, v4("100.64.9.9"), 1), 30),
        Err(DropReason::NoBinding)
    );
}

#[test]
fn listings_and_reaper_see_unpublished_flows() {
    let e = Engine::new(daemon_cfg(&[("192.0.2.1", 32)])).unwrap();
    let mut a = e.worker();
    for p in 0..3u16 {
        out(
            &mut a,
            &t6(Udp, "2001:db8::1", 40000 + p, "8.8.8.8", 53),
            0,
            0,
        )
        .unwrap();
    }
    assert_eq!(e.bindings().len(), 3);
    assert_eq!(e.sessions().len(), 3);
    // More flows, then the reaper at their expiry: all gone, ports back.
    for p in 3..6u16 {
        out(
            &mut a,
            &t6(Udp, "2001:db8::1", 40000 + p, "8.8.8.8", 53),
            0,
            S,
        )
        .unwrap();
    }
    let st = e.sweep_budget(Timestamp(400 * S), usize::MAX);
    assert_eq!(st.expired_sessions.udp, 6);
    assert_eq!(st.expired_bindings.udp, 6);
    assert_eq!(e.counts().pool_ports_in_use, 0);
    // A flow created after the sweep, expired by the next one before it
    // was ever published on its own.
    let f = t6(Udp, "2001:db8::1", 40000, "8.8.8.8", 53);
    out(&mut a, &f, 0, 500 * S).unwrap();
    let st = e.sweep_budget(Timestamp(900 * S), usize::MAX);
    assert_eq!(st.expired_bindings.udp, 1);
    assert_eq!(e.counts().pool_ports_in_use, 0);
    // And the same flow again: a fresh binding that works both ways.
    let m = out(&mut a, &f, 0, 901 * S).unwrap();
    assert_eq!(
        inb(&mut a, &m.reversed(), 902 * S).unwrap().dst,
        v6("2001:db8::1")
    );
}

/// Several batches' worth of flows, each created on one worker and used on
/// the other at once: one binding per flow, no pool port twice.
#[test]
fn many_batches_across_two_workers_no_duplicates() {
    let e = Engine::new(daemon_cfg(&[("192.0.2.0", 31)])).unwrap();
    let (mut a, mut b) = (e.worker(), e.worker());
    let n = 3000u32;
    let mut seen = HashSet::new();
    for i in 0..n {
        let f = t6(
            Udp,
            &format!("2001:db8::{:x}", i % 97 + 1),
            10000 + (i / 97) as u16,
            "8.8.8.8",
            53,
        );
        let (w1, w2) = if i % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        let m = out(w1, &f, 0, i as u64).unwrap();
        assert_eq!(out(w2, &f, 0, i as u64).unwrap(), m, "flow {i}");
        assert!(seen.insert((m.src, m.src_port)), "pool port twice: {m:?}");
        let back = inb(w2, &m.reversed(), i as u64).unwrap();
        assert_eq!((back.dst, back.dst_port), (f.src, f.src_port));
    }
    let c = e.counts();
    assert_eq!(c.bindings.udp, n as usize);
    assert_eq!(c.sessions.udp, n as usize);
    assert_eq!(c.pool_ports_in_use, n as u64);
}
