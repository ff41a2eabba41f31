#![no_main]
//! `nat64 import-tayga` on arbitrary text: `tayga::convert` of a tayga.conf
//! whose `map-file` and `data-dir/dynamic.map` are more fuzz input. A
//! conversion that succeeds is a nat64.toml that parses and validates, and
//! the leases it carries over lie in its inner pool. No panics.
//!
//! Input: tayga.conf, NUL, map-file text, NUL, dynamic.map text (the
//! auxiliary parts optional: missing ones read as "not found").

use nat64::config::FileConfig;
use std::io;
use std::path::Path;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\0');
    let conf = parts.next().unwrap_or("");
    let map_file = parts.next();
    let dynamic = parts.next();
    let read_aux = |p: &Path| -> io::Result<String> {
        let part = if p.file_name().is_some_and(|n| n == "dynamic.map") {
            dynamic
        } else {
            map_file
        };
        part.map(str::to_string)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    };
    match nat64::tayga::convert(conf, "fuzz-tayga.conf", &read_aux) {
        Ok(c) => {
            // `map-file` is read at run time (import-tayga checked its
            // lines while converting); the fuzzer's map file is not on disk.
            let checked: String = c
                .toml
                .lines()
                .filter(|l| !l.starts_with("map-file ="))
                .map(|l| format!("{l}\n"))
                .collect();
            let fc = FileConfig::parse(&checked, "converted")
                .unwrap_or_else(|e| panic!("converted TOML does not parse: {e}\n{}", c.toml));
            let s = fc
                .validate("converted")
                .unwrap_or_else(|e| panic!("converted TOML does not validate: {e}\n{}", c.toml));
            if let Some(inner) = s.inner_pool {
                for (v6, v4) in &c.leases {
                    assert!(
                        inner.contains(*v4),
                        "lease {v6} -> {v4} outside inner-pool {inner:?}"
                    );
                }
            }
        }
        Err(e) => assert!(!format!("{e:#}").is_empty()),
    }
});
