#![no_main]
//! The control socket's request lines (`control::proto::answer`, what
//! `nat64 show` / `nat64 binding` send), answered by a real engine built
//! from examples/daemon.toml. Every line gets a well-formed reply (ok with
//! a result, or an error saying why), a request that parses survives a
//! JSON round trip, and the engine's invariants hold after each line
//! (binding-add/del change its tables).
//!
//! Input: request lines separated by newlines (at most 32).

use nat64::config::{FileConfig, Settings};
use nat64::control::proto::{answer, Request};
use nat64::control::Telemetry;
use nat64::engine::Engine;
use nat64::stats::{ReaperStats, Stats};
use nat64_core::state::invariants;
use std::sync::{Arc, OnceLock};

fn settings() -> &'static Settings {
    static S: OnceLock<Settings> = OnceLock::new();
    S.get_or_init(|| {
        let text = include_str!("../../examples/daemon.toml");
        FileConfig::parse(text, "examples/daemon.toml")
            .and_then(|f| f.validate("examples/daemon.toml"))
            .unwrap_or_else(|e| panic!("examples/daemon.toml: {e}"))
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let s = settings();
    let xcfg = nat64::run::xlat_config(s, s.tun.mtu);
    let engine = Engine::new(s, xcfg).expect("the example configuration starts");
    let tel = Telemetry {
        engine,
        workers: vec![Arc::new(Stats::default())],
        reaper: Arc::new(ReaperStats::default()),
        maplog: Default::default(),
        mapping_log_enabled: false,
        started: std::time::Instant::now(),
        prefix: s.prefix.to_string(),
        prefix_origin: "fuzz".into(),
        pool: s.pool.clone(),
        fast_path: None,
    };
    for line in data.split(|&b| b == b'\n').take(32) {
        let reply = answer(line, &tel);
        assert_eq!(
            reply.ok,
            reply.error.is_none(),
            "reply {reply:?} to {:?}",
            String::from_utf8_lossy(line)
        );
        if !reply.ok {
            assert!(reply.error.as_ref().is_some_and(|e| !e.is_empty()));
        }
        serde_json::to_string(&reply).expect("a reply serialises");
        if let Ok(req) = serde_json::from_slice::<Request>(line) {
            let text = serde_json::to_vec(&req).expect("a request serialises");
            let back: Request = serde_json::from_slice(&text).expect("a serialised request parses");
            assert_eq!(back, req, "request JSON round trip");
        }
        if let Err(v) = invariants::check(tel.engine.core()) {
            panic!("after {:?}: {v}", String::from_utf8_lossy(line));
        }
    }
    invariants::check_reports(tel.engine.core()).unwrap_or_else(|v| panic!("{v}"));
});
