#![no_main]
//! RFC 7915 §4 on arbitrary bytes.
#[path = "common.rs"]
mod common;
libfuzzer_sys::fuzz_target!(|data: &[u8]| common::run(data, false));
