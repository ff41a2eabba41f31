//! Several threads create and look up thousands of flows at once: no
//! duplicate binding, no lost binding, no port handed out twice.

mod state_common;
use state_common::*;

use nat64_core::state::*;
use nat64_core::time::Timestamp;
use nat64_core::xlat::{L4Proto, Mapper, Tuple4};
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

const FLOWS: usize = 6000;
const THREADS: usize = 4;

fn flow(i: usize) -> nat64_core::xlat::Tuple6 {
    let client = i % 300;
    let sport = 1024 + (i / 300) as u16;
    let remote = ["8.8.8.8", "9.9.9.9"][i % 2];
    t6(
        L4Proto::Udp,
        &format!("2001:db8::{:x}", client + 1),
        sport,
        remote,
        53,
    )
}

#[test]
fn concurrent_new_flows_no_duplicate_or_lost_binding() {
    let mut cfg = daemon_cfg(&[("192.0.2.0", 28)]);
    cfg.limits.max_sessions_per_client = 1 << 20;
    let e = Engine::new(cfg).unwrap();
    let results: Vec<HashMap<usize, Tuple4>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..THREADS)
            .map(|t| {
                let mut w = e.worker();
                sc.spawn(move || {
                    let mut got = HashMap::new();
                    w.set_now(Timestamp::from_secs(1));
                    // Each thread walks the flows from a different point, so
                    // the same flow is created by several threads at once.
                    for k in 0..FLOWS {
                        let i = (k + t * FLOWS / THREADS) % FLOWS;
                        let o = w.mapper().map_6to4(&flow(i), &meta(0)).unwrap();
                        // Look the reply up straight away.
                        let back = w.mapper().map_4to6(&o.reversed(), &meta(0)).unwrap();
                        assert_eq!(back.dst, flow(i).src);
                        got.insert(i, o);
                    }
                    got
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for i in 0..FLOWS {
        let m = results[0][&i];
        for r in &results[1..] {
            assert_eq!(r[&i], m, "flow {i} mapped differently by two threads");
        }
    }
    let c = e.counts();
    assert_eq!(c.sessions.udp, FLOWS, "no lost or duplicate session");
    assert_eq!(c.bindings.udp, FLOWS, "one binding per (v6, port)");
    let mut seen: HashSet<(Ipv4Addr, u16)> = HashSet::new();
    for b in e.bindings() {
        assert!(seen.insert(b.v4), "port handed out twice: {b:?}");
    }
    // Every binding the threads saw is the one the engine holds.
    let held: HashSet<(Ipv4Addr, u16)> = e.bindings().iter().map(|b| b.v4).collect();
    for o in results[0].values() {
        assert!(held.contains(&(o.src, o.src_port)));
    }
    // Affinity held under the race: one address per client.
    let mut addr_of = HashMap::new();
    for b in e.bindings() {
        let a = addr_of.entry(b.v6.0).or_insert(b.v4.0);
        assert_eq!(*a, b.v4.0, "client {} on two addresses", b.v6.0);
    }
    // Reaping while workers keep a few flows alive.
    let st = e.sweep_budget(Timestamp::from_secs(1000), usize::MAX);
    assert_eq!(st.expired_sessions.udp, FLOWS);
    assert_eq!(e.counts().pool_ports_in_use, 0);
}

#[test]
fn reaper_races_with_refreshing_workers() {
    let mut cfg = daemon_cfg(&[("192.0.2.0", 30)]);
    cfg.limits.max_sessions_per_client = 1 << 20;
    let e = Engine::new(cfg).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|sc| {
        for t in 0..2usize {
            let mut w = e.worker();
            let stop = &stop;
            sc.spawn(move || {
                let mut now = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for i in 0..500 {
                        w.set_now(Timestamp(now));
                        let _ = w.mapper().map_6to4(&flow(i * 2 + t), &meta(0));
                    }
                    now += 50_000;
                }
            });
        }
        for k in 0..200u64 {
            e.sweep_budget(Timestamp(k * 20_000), 300);
            let mut by4 = HashSet::new();
            for b in e.bindings() {
                assert!(by4.insert((b.proto, b.v4)), "duplicate {b:?}");
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    e.sweep_budget(Timestamp(u64::MAX / 4), usize::MAX);
    assert_eq!(e.counts().pool_ports_in_use, 0);
    assert_eq!(e.counts().sessions.udp, 0);
}
