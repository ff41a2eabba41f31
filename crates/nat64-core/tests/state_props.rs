//! Property tests of the engine's invariants (proptest):
//! * no two live bindings share (proto, v4 address, v4 port), nor
//!   (proto, v6 address, v6 port);
//! * a binding's mapping never changes while it has a live session;
//! * after every timer has run out, every port is back in the pool.

mod state_common;
use state_common::*;

use nat64_core::state::*;
use nat64_core::xlat::L4Proto;
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

#[derive(Debug, Clone)]
enum Step {
    Out {
        proto: u8,
        client: u8,
        sport: u16,
        remote: u8,
    },
    Reply {
        pick: usize,
    },
    Advance(u64),
    Sweep(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..3, 0u8..6, 0u16..24, 0u8..3).prop_map(|(proto, client, sport, remote)| Step::Out {
            proto,
            client,
            sport,
            remote
        }),
        2 => any::<usize>().prop_map(|pick| Step::Reply { pick }),
        2 => (0u64..400_000).prop_map(Step::Advance),
        2 => (1usize..40).prop_map(Step::Sweep),
    ]
}

/// (proto, client, source port) of a flow.
type FlowKey = (L4Proto, u8, u16);
/// The pool address and port it got.
type Mapped = (Ipv4Addr, u16);

fn proto(p: u8) -> L4Proto {
    [L4Proto::Tcp, L4Proto::Udp, L4Proto::Icmp][p as usize % 3]
}

fn check_unique(e: &Engine) -> Result<(), TestCaseError> {
    let mut by4 = HashSet::new();
    let mut by6 = HashSet::new();
    for b in e.bindings() {
        prop_assert!(by4.insert((b.proto, b.v4)), "duplicate v4 binding {:?}", b);
        prop_assert!(by6.insert((b.proto, b.v6)), "duplicate v6 binding {:?}", b);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn engine_invariants(steps in proptest::collection::vec(step(), 1..120), mode in 0u8..3) {
        // 0 per-session ports, 1 dynamic port blocks, 2 RFC 7422
        // deterministic blocks (hashed clients, shared blocks on a /31).
        let blocks = mode > 0;
        let cfg = EngineConfig {
            napt: NaptConfig::Daemon(PoolConfig {
                prefixes: vec![(Ipv4Addr::new(192, 0, 2, 0), 31)],
                tcp_ports: (1024, 1055),
                udp_ports: (1024, 1055),
                icmp_ids: (1024, 1055),
                port_block_size: blocks.then_some(8),
                deterministic: (mode == 2).then_some(Deterministic {
                    client_prefix_len: 128,
                    clients: None,
                }),
            }),
            ..EngineConfig::default()
        };
        let mut h = H::new(cfg);
        let remotes = ["8.8.8.8", "9.9.9.9", "1.1.1.1"];
        let mut now = 0u64;
        // (proto, client, sport) -> (mapping, time the session was last known live until)
        let mut seen: HashMap<FlowKey, (Mapped, u64)> = HashMap::new();
        let mut flows: Vec<nat64_core::xlat::Tuple4> = Vec::new();
        for s in steps {
            match s {
                Step::Out { proto: p, client, sport, remote } => {
                    let p = proto(p);
                    let src = format!("2001:db8::{}", client + 1);
                    let sp = if sport < 12 { 1024 + sport } else { 40000 + sport };
                    let t = t6(p, &src, sp, remotes[remote as usize % 3], 53);
                    let flags = if p == L4Proto::Tcp { SYN } else { 0 };
                    if let Ok(o) = h.out(&t, flags, now) {
                        let key = (p, client, sp);
                        if let Some((m, live_until)) = seen.get(&key) {
                            if now < *live_until {
                                prop_assert_eq!(*m, (o.src, o.src_port), "mapping changed while live");
                            }
                        }
                        // The shortest lifetime this packet guarantees.
                        let life = match p {
                            L4Proto::Tcp => 240_000,
                            L4Proto::Udp => 300_000,
                            L4Proto::Icmp => 60_000,
                        };
                        let prev = seen.get(&key).map(|x| x.1).unwrap_or(0);
                        seen.insert(key, ((o.src, o.src_port), prev.max(now + life)));
                        flows.push(o);
                    }
                }
                Step::Reply { pick } => {
                    if !flows.is_empty() {
                        let f = flows[pick % flows.len()];
                        let _ = h.inb(&f.reversed(), 0, now);
                    }
                }
                Step::Advance(ms) => now += ms,
                Step::Sweep(budget) => {
                    h.e.sweep_budget(nat64_core::time::Timestamp(now), budget);
                }
            }
            check_unique(&h.e)?;
        }
        // Everything expires: TCP may need ESTABLISHED -> TRANS -> gone.
        let end = now + 10_000_000;
        h.sweep_all(end);
        h.sweep_all(end + 300_000);
        prop_assert_eq!(h.nsessions(), 0);
        prop_assert_eq!(h.nbindings(), 0);
        prop_assert_eq!(h.e.counts().pool_ports_in_use, 0);
        prop_assert!(h.e.pool_usage().iter().all(|u| u.in_use == PerProto::default()));
    }
}
