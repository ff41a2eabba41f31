//! The engine's invariants (`nat64_core::state::invariants`) over random
//! lives of the engine: packets both ways over a small address and port
//! space (flows collide, the pool runs out, limits are hit), answers and
//! ICMP errors quoting what was translated, hairpinning, fragments, a
//! virtual clock, sweeps, `show`, static entries and reloads, in every NAPT
//! mode. The model is shared with the `engine` fuzz target
//! (`fuzz/fuzz_targets/engine_model.rs`): a fuzzer finding replays here as
//! a plain list of [`Op`]s.

#[path = "../../../fuzz/fuzz_targets/engine_model.rs"]
mod engine_model;

use engine_model::{decode, run, Op, Run, Setup};
use nat64_core::state::invariants;
use nat64_core::time::Timestamp;
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    let b = any::<u8>;
    prop_oneof![
        8 => (0u8..2, b(), b(), b(), b(), b(), b(), 0u8..8).prop_map(
            |(worker, proto, client, sport, remote, dport, flags, frag)| Op::Out {
                worker, proto, client, sport, remote, dport, flags, frag,
            }
        ),
        3 => (0u8..2, b(), b(), b(), b(), b(), b(), 0u8..8).prop_map(
            |(worker, proto, remote, sport, pool, dport, flags, frag)| Op::In {
                worker, proto, remote, sport, pool, dport, flags, frag,
            }
        ),
        5 => (0u8..2, b(), b()).prop_map(|(worker, pick, flags)| Op::Reply { worker, pick, flags }),
        2 => (0u8..2, b(), b()).prop_map(|(worker, pick, code)| Op::Error { worker, pick, code }),
        3 => (b(), 0u8..8).prop_map(|(class, factor)| Op::Advance { class, factor }),
        2 => b().prop_map(|budget| Op::Sweep { budget }),
        1 => Just(Op::Show),
        1 => b().prop_map(|pick| Op::Static { pick }),
        1 => b().prop_map(|pick| Op::Reload { pick }),
    ]
}

fn setup() -> impl Strategy<Value = Setup> {
    any::<u8>().prop_map(Setup::from_byte)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, .. ProptestConfig::default() })]

    #[test]
    fn rfc6146_invariants_hold_over_random_lives(s in setup(), ops in proptest::collection::vec(op(), 1..160)) {
        if let Err(e) = run(s, &ops) {
            prop_assert!(false, "{:?}: {}", s, e);
        }
    }
}

/// Every setup byte gives a configuration the engine accepts, and an
/// untouched engine passes every check.
#[test]
fn fresh_engines_pass_every_check() {
    for b in 0..=255u8 {
        let s = Setup::from_byte(b);
        let r = Run::new(s);
        invariants::check(&r.e).unwrap_or_else(|v| panic!("{s:?}: {v}"));
        invariants::check_reports(&r.e).unwrap_or_else(|v| panic!("{s:?}: {v}"));
        run(s, &[]).unwrap_or_else(|e| panic!("{s:?}: {e}"));
    }
}

/// RFC 6146 §3.8 hairpinning and §3.5.4 inner lookups on the fuzz target's
/// decoding: a client talks to another client's binding through the pool,
/// the answer comes back, an ICMP error quotes it, the clock runs out.
#[test]
fn rfc6146_3_8_hairpin_life_keeps_the_invariants() {
    for mode in [0u8, 1, 2] {
        let setup = [mode];
        // Out client 0 -> remote 8.8.8.8 (UDP), its reply, then client 1 to
        // pool address 0 (hairpin), an error about it, a sweep, show.
        let bytes: Vec<u8> = setup
            .iter()
            .copied()
            .chain([0x00, 1, 0, 0, 0, 1, 0])
            .chain([0x06, 0, 0])
            .chain([0x00, 1, 1, 0, 4, 0, 0])
            .chain([0x08, 0, 0])
            .chain([0x09, 4])
            .chain([0x0b, 0])
            .chain([0x0c])
            .collect();
        let (s, ops) = decode(&bytes, 64);
        assert_eq!(ops.len(), 7, "{ops:?}");
        run(s, &ops).unwrap_or_else(|e| panic!("{s:?}: {e}"));
    }
}

/// RFC 6146 §3.5.1: a complete sweep expires every session that is due,
/// also when it starts in the middle of the list (new sessions were
/// appended after the previous pass) and removes entries after wrapping
/// around. Found by this test's proptest (kept in
/// fuzz/regressions/engine/).
#[test]
fn rfc6146_3_5_1_one_complete_sweep_expires_every_due_session() {
    let udp = |sport| Op::Out {
        worker: 0,
        proto: 1,
        client: 0,
        sport,
        remote: 0,
        dport: 0,
        flags: 0,
        frag: 0,
    };
    let mut r = Run::new(Setup::from_byte(0));
    // Three UDP sessions due at 300 s; a pass at 0 s leaves the cursor at
    // the end; two more at 240 s (due at 540 s) go behind it.
    for op in [
        udp(0),
        udp(1),
        udp(2),
        Op::Sweep { budget: 0 },
        Op::Advance {
            class: 4,
            factor: 3,
        },
        udp(3),
        udp(5),
        Op::Advance {
            class: 4,
            factor: 1,
        },
    ] {
        r.step(op).unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(r.now, 360_000);
    let now = Timestamp(r.now);
    assert!(r.e.sweep(now).complete);
    invariants::check_swept(&r.e, now).unwrap_or_else(|v| panic!("{v}"));
    assert_eq!(r.e.counts().sessions.udp, 2);
}

/// Inputs the `engine` fuzz target crashed on (fuzz/regressions/engine/),
/// replayed through the same model: each must pass once its bug is fixed.
#[test]
fn fuzz_regressions_pass() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/regressions/engine");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut failed = Vec::new();
    for f in entries.flatten() {
        let p = f.path();
        if p.extension().is_some_and(|x| x == "md") {
            continue;
        }
        let data = std::fs::read(&p).unwrap();
        let (s, ops) = decode(&data, 256);
        if let Err(e) = run(s, &ops) {
            failed.push(format!("{}: {e}", p.display()));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
