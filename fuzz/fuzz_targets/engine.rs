#![no_main]
//! The stateful engine (RFC 6146) driven by operation sequences: packets
//! both ways over a small space so flows collide, the clock, sweeps,
//! `show`, static entries, reloads; `nat64_core::state::invariants` after
//! every step, in every NAPT mode (see `engine_model.rs`, shared with
//! `crates/nat64-core/tests/state_invariants.rs`).
#[path = "engine_model.rs"]
mod engine_model;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (setup, ops) = engine_model::decode(data, 256);
    if let Err(e) = engine_model::run(setup, &ops) {
        panic!("{setup:?}: {e}\nops: {ops:?}");
    }
});
