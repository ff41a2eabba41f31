//! End-to-end acceptance tests of the operations surface (SPEC §6): the
//! control socket (`nat64 show`, `nat64 binding`), Prometheus `/metrics`,
//! the mapping log, SIGHUP under load, `import-tayga` output run for real,
//! and `nat64 replay` against captures. Same namespace topology as
//! tests/e2e.rs (tests/support); root only, a loud SKIP otherwise.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::*;

/// The ops keys: control socket and mapping log in the test's directory,
/// metrics on loopback of the xlat namespace (each namespace has its own).
fn ops_extra(t: &Topo) -> String {
    format!(
        "control = \"{}\"\nmetrics = \"127.0.0.1:9164\"\nmapping-log = \"{}\"\n",
        sock(t),
        t.dir.join("map.log").display()
    )
}

fn sock(t: &Topo) -> String {
    t.dir.join("control.sock").display().to_string()
}

/// Runs `nat64 ARGS --socket S` in the xlat namespace (shell syntax allowed
/// after the args, e.g. a `| jq` pipe).
fn cli(t: &Topo, args: &str) -> Run {
    t.sh(&t.x, &format!("{} {args}", bin()))
}

fn cli_ok(t: &Topo, args: &str) -> String {
    let r = cli(t, args);
    assert!(
        r.ok,
        "nat64 {args}\nstdout:\n{}\nstderr:\n{}\n{}",
        r.stdout,
        r.stderr,
        t.nat64_log_tail()
    );
    r.stdout
}

/// One scrape of /metrics: `name{labels}` → value.
fn scrape(t: &Topo) -> HashMap<String, f64> {
    let out = t.ok(&t.x, "curl -sS --max-time 5 http://127.0.0.1:9164/metrics");
    assert!(out.ends_with("# EOF\n"), "not OpenMetrics text:\n{out}");
    out.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn metric(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("metric {key} missing; have {:?}", m.keys()))
}

#[allow(dead_code)]
fn wait_log(t: &Topo, what: &str) {
    let t0 = Instant::now();
    while !t.log("nat64.log").contains(what) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no `{what}` in the log\n{}",
            t.nat64_log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------- control socket ---

/// While traffic flows, `nat64 show bindings` lists the client's live
/// bindings with the v6 and v4 endpoints the server saw; `--json` parses
/// with jq; the other views answer; the mapping log has the binding; the
/// socket is owner-only and goes away on exit; garbage and oversized
/// requests get error replies and a stalled client does not stop traffic.
#[test]
fn ops_show_bindings_lists_live_flow_daemon() {
    let Some(t) = Topo::new("opsshow", Napt::Daemon) else {
        return;
    };
    t.udp_echo4();
    let pid = t.start_nat64(&t.config(&ops_extra(&t)));
    t.wait_path();
    let s = sock(&t);
    assert_eq!(t.ok(&t.x, &format!("stat -c %a {s}")).trim(), "600");

    // A UDP flow: the server logs the pool endpoint it saw.
    let r = t.udp_client(100, &[format!("{CLIENT6},40000")]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    let seen = t.log("udp4.log");
    let (a4, p4) = seen
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() == 4 && f[2] == format!("{CLIENT6},40000"))
        .map(|f| (f[0].to_string(), f[1].to_string()))
        .unwrap_or_else(|| panic!("server did not log the flow: {seen}"));
    // And a ping that is still running while we look.
    let ping = t.spawn(
        &t.c6,
        &[
            "ping", "-6", "-n", "-c", "40", "-i", "0.2", "-e", "4343", "-I", CLIENT6, SERVER4_V6,
        ],
        "bgping.log",
    );
    std::thread::sleep(Duration::from_millis(800));

    let out = cli_ok(
        &t,
        &format!(
            "show bindings --socket {s} --json --proto udp --v6 {CLIENT6} | \
             jq -r '.[] | \"\\(.proto) \\(.v6) \\(.v6_port) \\(.v4) \\(.v4_port) \\(.static)\"'"
        ),
    );
    assert_eq!(
        out.trim(),
        format!("udp {CLIENT6} 40000 {a4} {p4} false"),
        "server saw {a4}:{p4}"
    );
    let out = cli_ok(
        &t,
        &format!(
            "show bindings --socket {s} --json --proto icmp | \
             jq -r '.[] | select(.v6_port == 4343) | \"\\(.v6) \\(.v4)\"'"
        ),
    );
    let f: Vec<&str> = out.split_whitespace().collect();
    assert!(
        f.len() == 2 && f[0] == CLIENT6 && f[1].starts_with("203.0.113."),
        "live ping binding not listed: {out}"
    );
    assert!(t.alive(ping), "the ping ended before we looked");

    let table = cli_ok(&t, &format!("show bindings --socket {s}"));
    let head = table.lines().next().unwrap_or_default();
    assert!(
        head.starts_with("PROTO") && head.contains("IPV6") && head.contains("IPV4"),
        "{table}"
    );
    assert!(
        table.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() == 5
                && f[0] == "udp"
                && f[1] == format!("[{CLIENT6}]:40000")
                && f[2] == format!("{a4}:{p4}")
        }),
        "{table}"
    );
    let sessions = cli_ok(
        &t,
        &format!("show sessions --socket {s} --json | jq -r '.[] | select(.proto == \"udp\") | \"\\(.remote):\\(.remote_port)\"'"),
    );
    assert_eq!(sessions.trim(), format!("{SERVER4}:7007"));
    let pool = cli_ok(&t, &format!("show pool --socket {s}"));
    assert!(pool.starts_with("ADDRESS") && pool.contains(&a4), "{pool}");
    let stats = cli_ok(
        &t,
        &format!("show stats --socket {s} --json | jq .bindings.udp"),
    );
    assert_eq!(stats.trim(), "1");
    let stats = cli_ok(&t, &format!("show stats --socket {s}"));
    assert!(stats.contains("drops.no_binding"), "{stats}");
    // --config finds the socket through the `control` key.
    let cfg = t.dir.join("nat64.toml");
    cli_ok(&t, &format!("show pool --config {}", cfg.display()));

    // Hostile clients: garbage, then a valid request on the same
    // connection; an oversized line; a client that stalls.
    let py = format!(
        r#"
import socket, json, time
def conn():
    s = socket.socket(socket.AF_UNIX); s.connect("{s}"); s.settimeout(15); return s
s = conn(); s.sendall(b"garbage\n{{\"cmd\":\"stats\"}}\n")
f = s.makefile()
a = json.loads(f.readline()); b = json.loads(f.readline())
assert a["ok"] is False and "cannot parse" in a["error"], a
assert b["ok"] is True, b
s = conn(); s.sendall(b"x" * 70000)
c = json.loads(s.makefile().readline())
assert c["ok"] is False and "longer than" in c["error"], c
s = conn(); s.sendall(b'{{"cmd":"binding-add","proto":"tcp","v6":"nope","v4":"1.2.3.4:5"}}\n')
d = json.loads(s.makefile().readline())
assert d["ok"] is False and "v6" in d["error"], d
print("ok")
"#
    );
    let script = t.dir.join("hostile.py");
    std::fs::write(&script, py).unwrap();
    let out = t.ok(&t.x, &format!("python3 {}", script.display()));
    assert_eq!(out.trim(), "ok");
    // A client that connects and says nothing holds only the control
    // thread; packets keep flowing meanwhile.
    let stall = t.spawn(
        &t.x,
        &[
            "python3",
            "-c",
            &format!(
                "import socket,time; s=socket.socket(socket.AF_UNIX); s.connect('{s}'); \
                 time.sleep(8)"
            ),
        ],
        "stall.log",
    );
    std::thread::sleep(Duration::from_millis(300));
    t.ok(
        &t.c6,
        &format!("ping -6 -n -c 3 -i 0.2 -W 2 -e 4444 {SERVER4_V6}"),
    );
    assert!(t.alive(stall));

    // Mapping log: the UDP binding's creation, both endpoints.
    let want = format!(" created udp [{CLIENT6}]:40000 {a4}:{p4}");
    let t0 = Instant::now();
    while !t.log("map.log").contains(&want) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "mapping log lacks `{want}`:\n{}",
            t.log("map.log")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(t.stop_nat64(pid), 0, "{}", t.nat64_log_tail());
    assert!(
        !t.dir.join("control.sock").exists(),
        "control socket left behind"
    );
}

// -------------------------------------------------------------- metrics ---

/// `/metrics` before and after 5 pings: the translated ICMP counters move
/// by exactly 5 each way; every drop reason is there from the start.
#[test]
fn ops_metrics_count_pings_exactly_daemon() {
    let Some(t) = Topo::new("opsmetrics", Napt::Daemon) else {
        return;
    };
    t.start_nat64(&t.config(&ops_extra(&t)));
    t.wait_path();
    let m0 = scrape(&t);
    for r in nat64_core::DropReason::ALL {
        metric(
            &m0,
            &format!("nat64_drops_total{{reason=\"{}\"}}", r.as_str()),
        );
    }
    assert_eq!(
        metric(
            &m0,
            &format!(
                "nat64_build_info{{version=\"{}\"}}",
                env!("CARGO_PKG_VERSION")
            )
        ),
        1.0
    );
    let out = t.ok(&t.c6, &format!("ping -6 -n -c 5 -i 0.2 -W 2 {SERVER4_V6}"));
    assert!(out.contains("5 received"), "{out}");
    let m1 = scrape(&t);
    let k64 = "nat64_packets_translated_total{direction=\"6to4\",proto=\"icmp\"}";
    let k46 = "nat64_packets_translated_total{direction=\"4to6\",proto=\"icmp\"}";
    assert_eq!(metric(&m1, k64) - metric(&m0, k64), 5.0, "6to4 icmp");
    assert_eq!(metric(&m1, k46) - metric(&m0, k46), 5.0, "4to6 icmp");
    // 5 × (40 IPv6 + 8 ICMPv6 + 56 data) bytes at least came in.
    let kb = "nat64_bytes_received_total{direction=\"6to4\",proto=\"icmp\"}";
    assert!(metric(&m1, kb) - metric(&m0, kb) >= 520.0);
    let ku = "nat64_packets_translated_total{direction=\"6to4\",proto=\"udp\"}";
    assert_eq!(metric(&m1, ku), metric(&m0, ku));
    assert!(metric(&m1, "nat64_sessions{proto=\"icmp\"}") >= 1.0);
    assert!(
        metric(
            &m1,
            "nat64_pool_ports_in_use{address=\"203.0.113.0\",proto=\"tcp\"}"
        ) >= 0.0
    );
    assert!(m1.contains_key("nat64_reaper_sweep_duration_seconds_count"));
    // Non-GET and unknown paths are refused, not fatal.
    let r = t.ok(
        &t.x,
        "curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:9164/metrics; \
         curl -s -o /dev/null -w ' %{http_code}' http://127.0.0.1:9164/nope",
    );
    assert_eq!(r, "405 404");
}

/// A malformed packet injected into the TUN moves its named drop counter
/// by exactly the number injected.
#[test]
fn ops_metrics_malformed_named_drop_daemon() {
    let Some(t) = Topo::new("opsdrop", Napt::Daemon) else {
        return;
    };
    t.start_nat64(&t.config(&ops_extra(&t)));
    t.wait_path();
    let key = "nat64_drops_total{reason=\"bad_ipv4_header_length\"}";
    let m0 = scrape(&t);
    let script = support_dir().join("inject_one.py");
    let n = t.ok(
        &t.x,
        &format!("python3 {} nat64 bad-ihl 3", script.display()),
    );
    assert_eq!(n.trim(), "3");
    std::thread::sleep(Duration::from_millis(300));
    let m1 = scrape(&t);
    assert_eq!(metric(&m1, key) - metric(&m0, key), 3.0);
    let kd = "nat64_drops_total{reason=\"bad_version\"}";
    assert_eq!(metric(&m1, kd), metric(&m0, kd));
}

// ---------------------------------------------------- static at run time ---

/// `nat64 binding add` forwards at once; `binding del` stops it.
#[test]
fn ops_binding_add_del_at_run_time_daemon() {
    let Some(t) = Topo::new("opsbind", Napt::Daemon) else {
        return;
    };
    let www = t.dir.join("www6");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("index.html"), "added at run time\n").unwrap();
    t.spawn(
        &t.c6,
        &[
            "python3",
            "-m",
            "http.server",
            "8080",
            "--bind",
            CLIENT6,
            "--directory",
            &www.to_string_lossy(),
        ],
        "http6.log",
    );
    t.wait_listen(&t.c6, "8080", "t");
    t.start_nat64(&t.config(&ops_extra(&t)));
    t.wait_path();
    let s = sock(&t);
    let url = "http://203.0.113.30/";
    assert!(!t.sh(&t.s4, &format!("curl -sS --max-time 2 {url}")).ok);
    cli_ok(
        &t,
        &format!("binding add --proto tcp --v4 203.0.113.30:80 --v6 [{CLIENT6}]:8080 --socket {s}"),
    );
    let out = t.ok(&t.s4, &format!("curl -sS --max-time 10 {url}"));
    assert_eq!(out, "added at run time\n");
    let st = cli_ok(
        &t,
        &format!("show bindings --socket {s} --json --proto tcp | jq -r '.[] | select(.static) | \"\\(.v4):\\(.v4_port)\"'"),
    );
    assert_eq!(st.trim(), "203.0.113.30:80");
    // Refusals say why.
    let r = cli(
        &t,
        &format!("binding add --proto tcp --v4 198.18.0.1:80 --v6 [{CLIENT6}]:8080 --socket {s}"),
    );
    assert!(!r.ok && r.stderr.contains("refused"), "{}", r.stderr);
    cli_ok(
        &t,
        &format!("binding del --proto tcp --v4 203.0.113.30:80 --socket {s}"),
    );
    assert!(
        !t.sh(&t.s4, &format!("curl -sS --max-time 3 {url}")).ok,
        "still forwarded after binding del"
    );
    let r = cli(
        &t,
        &format!("binding del --proto tcp --v4 203.0.113.30:80 --socket {s}"),
    );
    assert!(!r.ok, "deleting twice succeeded");
}
