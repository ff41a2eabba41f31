#![no_main]
//! RFC 7915 with TUN offload metadata (ADR 0004): arbitrary
//! packets with a random `Offload { gso_size, csum_partial }`, both
//! directions. No panic; a Forward lies in the buffer and is a whole IP
//! packet; ICMP errors and fragments can be built (see `common.rs`).
#[path = "common.rs"]
mod common;

use nat64_core::xlat::Offload;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // Byte 0: direction and csum_partial; bytes 1-2: gso_size; the rest
    // as in the xlat targets (knobs byte, packet).
    let [flags, g0, g1, rest @ ..] = data else {
        return;
    };
    let off = Offload {
        gso_size: u16::from_be_bytes([*g0, *g1]),
        csum_partial: flags & 2 != 0,
    };
    common::run_offload(rest, flags & 1 == 0, off);
});
