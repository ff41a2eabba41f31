#![no_main]
//! nat64.toml on arbitrary text: `FileConfig::parse`, `validate`, and the
//! effective configuration `nat64 check` prints (`to_toml`), which must
//! load again and validate the same way; then `--set KEY=VALUE` layers
//! (`Layers::set`) over it, each set value's origin recorded, and the
//! merged table through the same parser. No panics, errors say something.
//!
//! Input: the file text, then optionally a NUL byte and one `--set`
//! assignment per line.

use nat64::config::layers::{annotate, Layers, Origin};
use nat64::config::FileConfig;
use std::collections::BTreeMap;

fn check_file(text: &str, source: &str) -> Option<FileConfig> {
    let fc = match FileConfig::parse(text, source) {
        Ok(fc) => fc,
        Err(e) => {
            assert!(!e.errors.is_empty(), "a parse error without errors");
            assert!(!e.to_string().is_empty());
            return None;
        }
    };
    match fc.validate(source) {
        Ok(_) => {
            // What `nat64 check` prints must load and validate again.
            let eff = fc
                .to_toml()
                .unwrap_or_else(|e| panic!("a valid configuration does not serialise: {e:#}"));
            let again = FileConfig::parse(&eff, "effective").unwrap_or_else(|e| {
                panic!("the effective configuration does not parse: {e}\n{eff}")
            });
            if let Err(e) = again.validate("effective") {
                panic!("the effective configuration does not validate: {e}\n{eff}");
            }
        }
        Err(e) => {
            assert!(!e.errors.is_empty(), "a validation error without errors");
            assert!(!e.to_string().is_empty());
        }
    }
    Some(fc)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (file, sets) = text.split_once('\0').unwrap_or((text, ""));
    let fc = check_file(file, "fuzz.toml");

    let mut layers = Layers::default();
    if let Ok(t) = file.parse::<toml::Table>() {
        layers.add(t, &Origin::File("fuzz.toml".into()));
    }
    for line in sets.lines().take(16) {
        let Ok(()) = layers.set(line) else {
            continue;
        };
        // A leaf set on the command line is the Set layer's from now on.
        let (key, raw) = line.split_once('=').expect("set accepted KEY=VALUE");
        let path: Vec<&str> = key.trim().split('.').map(str::trim).collect();
        if !raw.trim_start().starts_with('{') {
            let path = path.join(".");
            assert_eq!(
                layers.origin(&path),
                Some(&Origin::Set),
                "--set {line:?}: origin of {path:?}"
            );
        }
    }
    let merged = layers.table.to_string();
    if let Some(fc) = check_file(&merged, "layers") {
        if let Ok(eff) = fc.to_toml() {
            let _ = annotate(&eff, &layers, &BTreeMap::new());
        }
    }
    let _ = fc;
});
