//! Hostile tests of the operations surface (issue 11 #5 and #11), against
//! the real daemon in network namespaces (tests/support): a mapping log on
//! a FIFO nobody reads, or whose reader stalls and dies; idle connections
//! to the control socket and to `/metrics`; a listing of more sessions
//! than one page. Root only: without root every test prints a loud SKIP
//! and passes.

mod support;

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};
use support::*;

fn sock(t: &Topo) -> String {
    t.dir.join("control.sock").display().to_string()
}

fn wait_until(t: &Topo, what: &str, limit: Duration, f: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < limit,
            "timed out waiting for {what}\n{}",
            t.nat64_log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One request on a new control connection, from this process (the
/// socket is a file: reachable from any network namespace).
fn control(path: &str, req: &str) -> (serde_json::Value, Duration) {
    let t0 = Instant::now();
    let mut s = UnixStream::connect(path).expect("connecting to the control socket");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let _ = s.write_all(format!("{req}\n").as_bytes());
    let mut line = String::new();
    let _ = BufReader::new(&s).read_line(&mut line);
    let v = serde_json::from_str(&line).unwrap_or(serde_json::Value::Null);
    (v, t0.elapsed())
}

fn stats_json(t: &Topo) -> serde_json::Value {
    let (v, _) = control(&sock(t), r#"{"cmd":"stats"}"#);
    assert_eq!(v["ok"], true, "stats: {v}\n{}", t.nat64_log_tail());
    v["result"].clone()
}

/// Sends one UDP datagram from each of `n` source ports (from `base`) of
/// the client to SERVER4: each is a new flow, a new binding, a new
/// mapping-log event.
fn udp_flows(t: &Topo, base: u16, n: u16) {
    let py = format!(
        "import socket\n\
         for p in range({base}, {end}):\n\
         \x20   s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n\
         \x20   s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         \x20   s.bind(('{CLIENT6}', p))\n\
         \x20   s.sendto(b'x', ('{SERVER4_V6}', 9))\n\
         \x20   s.close()\n",
        end = u32::from(base) + u32::from(n)
    );
    let script = t.dir.join(format!("flows{base}.py"));
    std::fs::write(&script, py).unwrap();
    t.ok(&t.c6, &format!("python3 {}", script.display()));
}

fn log_count(t: &Topo, what: &str) -> usize {
    t.log("nat64.log").matches(what).count()
}

/// SIGHUP, and the reload line that proves the signal loop answered.
fn sighup(t: &Topo, pid: u32) {
    let before = log_count(t, "SIGHUP: reloaded");
    t.signal(pid, libc::SIGHUP);
    wait_until(t, "the SIGHUP reload line", Duration::from_secs(5), || {
        log_count(t, "SIGHUP: reloaded") > before
    });
}

fn tun_exists(t: &Topo) -> bool {
    t.sh(&t.x, "ip link show nat64").ok
}

/// Starts a reader of the FIFO that takes three lines and then stops
/// reading, keeping the FIFO open; once it has its lines, sends enough new
/// flows (3000, from `base + 4000`) to fill the FIFO (64 KiB) and more,
/// and checks that the writer is stuck behind it. Returns its PID.
fn stalled_reader(t: &Topo, fifo: &std::path::Path, name: &str, base: u16) -> u32 {
    let out = t.dir.join(format!("{name}.out"));
    let reader_py = format!(
        "import time\n\
         f = open('{}', 'rb', buffering=0)\n\
         got = b''\n\
         while got.count(b'\\n') < 3:\n\
         \x20   got += f.read(1)\n\
         open('{}', 'wb').write(got)\n\
         time.sleep(3600)\n",
        fifo.display(),
        out.display()
    );
    let script = t.dir.join(format!("{name}.py"));
    std::fs::write(&script, reader_py).unwrap();
    let pid = t.spawn(
        &t.x,
        &["python3", &script.to_string_lossy()],
        &format!("{name}.log"),
    );
    let next = std::cell::Cell::new(base);
    wait_until(
        t,
        "the reader's three lines",
        Duration::from_secs(15),
        || {
            // New events until the writer (retrying every second) opened it.
            udp_flows(t, next.get(), 5);
            next.set(next.get() + 5);
            std::fs::read_to_string(&out).is_ok_and(|s| s.lines().count() == 3)
        },
    );
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.lines().all(|l| l.contains(" created udp [")), "{text}");
    let lines = || stats_json(t)["mapping_log"]["lines"].as_u64().unwrap_or(0);
    let before = lines();
    udp_flows(t, base + 4000, 3000);
    std::thread::sleep(Duration::from_millis(500));
    let written = lines() - before;
    assert!(
        written < 3000,
        "the stalled reader took every line ({written})\n{}",
        t.nat64_log_tail()
    );
    pid
}

// ------------------------------------------------ 5. stalled mapping log ---

/// Issue 11 #5: `mapping-log` on a FIFO. With no reader at start the
/// daemon used to hang after creating its TUN (open(2) of a FIFO for
/// writing blocks); with a reader that stops reading and then dies, SIGHUP
/// reopened into a blocking open(2) and SIGTERM never finished (TUN and
/// routes left up, traffic black-holed). Now: it runs, counts the events
/// it cannot write as dropped (and says so), answers SIGHUP and SIGUSR1
/// throughout, and exits on SIGTERM within a few seconds with its TUN
/// gone.
#[test]
fn maplog_fifo_without_reader_then_stalled_reader_daemon() {
    let Some(t) = Topo::new("mlfifo", Napt::Daemon) else {
        return;
    };
    let fifo = t.dir.join("map.fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let extra = format!(
        "control = \"{}\"\nmapping-log = \"{}\"\n",
        sock(&t),
        fifo.display()
    );
    // No reader: it starts all the same.
    let pid = t.start_nat64(&t.config(&extra));
    t.wait_path();
    udp_flows(&t, 20000, 200);
    wait_until(
        &t,
        "events counted as dropped",
        Duration::from_secs(5),
        || stats_json(&t)["mapping_log"]["dropped"].as_u64() >= Some(200),
    );
    wait_until(
        &t,
        "the dropped-events warning",
        Duration::from_secs(8),
        || {
            t.log("nat64.log")
                .contains("events dropped (writer stalled)")
        },
    );
    sighup(&t, pid);
    t.stats(pid);

    // A reader appears, takes three lines, then stops reading.
    let reader = stalled_reader(&t, &fifo, "reader1", 21000);
    sighup(&t, pid);
    t.stats(pid);
    // The reader dies with the FIFO full.
    t.signal(reader, libc::SIGKILL);
    assert!(t.wait_exit(reader, Duration::from_secs(5)).is_some());
    udp_flows(&t, 34000, 50);
    sighup(&t, pid);
    let st = t.stats(pid);
    assert!(st.get("bindings_udp").copied() > Some(3000), "{st:?}");
    // Traffic still flows.
    t.ok(&t.c6, &format!("ping -6 -n -c 2 -i 0.2 -W 2 {SERVER4_V6}"));
    // Another reader, stalled like the first, still there at SIGTERM.
    stalled_reader(&t, &fifo, "reader2", 41000);

    let t0 = Instant::now();
    t.signal(pid, libc::SIGTERM);
    let code = t.wait_exit(pid, Duration::from_secs(10));
    let took = t0.elapsed();
    assert_eq!(
        code,
        Some(0),
        "nat64 did not exit on SIGTERM\n{}",
        t.nat64_log_tail()
    );
    assert!(
        took < Duration::from_secs(5),
        "shutdown took {took:?}\n{}",
        t.nat64_log_tail()
    );
    assert!(!tun_exists(&t), "TUN left behind\n{}", t.nat64_log_tail());
    let routes = t.ok(&t.x, &format!("ip -6 route show {PREFIX}"));
    assert!(routes.trim().is_empty(), "route left behind: {routes}");
    let log = t.log("nat64.log");
    assert!(log.contains("nat64 stopped"), "{}", t.nat64_log_tail());
    assert!(
        log.contains("the FIFO has no reader"),
        "{}",
        t.nat64_log_tail()
    );
    assert!(
        log.contains("the reader of the FIFO went away"),
        "{}",
        t.nat64_log_tail()
    );
    eprintln!("SIGTERM to exit: {took:?}");
}

// ------------------------------------- 11. control socket and /metrics ---

/// Run in the xlat namespace: idle connections to the control socket and
/// to /metrics, then one real request each, timed. One JSON object per
/// measurement, printed as soon as it is made.
const IDLE_CLIENTS: &str = r##"
import json, socket, sys, time
ctl, port, what = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def unix():
    s = socket.socket(socket.AF_UNIX); s.connect(ctl); return s
def tcp():
    return socket.create_connection(("127.0.0.1", port), timeout=120)
def ask(req):
    t0 = time.monotonic(); s = unix(); s.settimeout(120)
    try:
        s.sendall((json.dumps(req) + "\n").encode())
    except OSError:
        pass
    line = s.makefile().readline(); s.close()
    return time.monotonic() - t0, (json.loads(line) if line else {})
def scrape():
    t0 = time.monotonic(); s = tcp()
    s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    return time.monotonic() - t0, data.decode(errors="replace")
def say(**kv):
    print(json.dumps(kv), flush=True)
if what == "idle":
    idle = [unix() for _ in range(20)] + [tcp() for _ in range(10)]
    time.sleep(0.2)
    took, r = ask({"cmd": "stats"})
    say(stats_s=took, stats_ok=r.get("ok", False))
    took, text = scrape()
    say(scrape_s=took, scrape_status=text.split("\r\n", 1)[0], scrape_eof=text.endswith("# EOF\n"))
else:
    idle = [tcp() for _ in range(32)]
    time.sleep(0.3)
    took, text = scrape()
    say(http33_s=took, http33_status=text.split("\r\n", 1)[0])
"##;

fn run_clients(t: &Topo, what: &str) -> HashMap<String, serde_json::Value> {
    let script = t.dir.join("idle_clients.py");
    std::fs::write(&script, IDLE_CLIENTS).unwrap();
    let out = t.ok(
        &t.x,
        &format!("python3 {} {} 9164 {what}", script.display(), sock(t)),
    );
    out.lines()
        .filter_map(|l| serde_json::from_str::<HashMap<String, serde_json::Value>>(l).ok())
        .flatten()
        .collect()
}

fn secs(m: &HashMap<String, serde_json::Value>, k: &str) -> f64 {
    m.get(k)
        .and_then(|v| v.as_f64())
        .unwrap_or_else(|| panic!("{k} missing: {m:?}"))
}

/// Issue 11 #11: 20 idle control connections used to make `show stats`
/// wait 31 s, 10 idle HTTP connections a scrape 19 s (one connection at a
/// time). Now both answer within a second; the 33rd connection of either
/// is refused at once and counted; the idle ones are closed after the
/// request deadline.
#[test]
fn control_and_metrics_not_stalled_by_idle_connections_daemon() {
    let Some(t) = Topo::new("opsidle", Napt::Daemon) else {
        return;
    };
    let extra = format!("control = \"{}\"\nmetrics = \"127.0.0.1:9164\"\n", sock(&t));
    let pid = t.start_nat64(&t.config(&extra));
    t.wait_path();

    let m = run_clients(&t, "idle");
    assert_eq!(m.get("stats_ok"), Some(&true.into()), "{m:?}");
    let took = secs(&m, "stats_s");
    eprintln!("show stats with 20 idle connections: {took:.3} s");
    assert!(took < 1.0, "show stats with 20 idle connections: {took} s");
    assert_eq!(
        m.get("scrape_status").and_then(|v| v.as_str()),
        Some("HTTP/1.1 200 OK"),
        "{m:?}"
    );
    assert_eq!(m.get("scrape_eof"), Some(&true.into()), "{m:?}");
    let took = secs(&m, "scrape_s");
    eprintln!("scrape with 10 idle connections: {took:.3} s");
    assert!(took < 1.0, "scrape with 10 idle connections: {took} s");

    // The control socket's cap: 32 open (from this process), the 33rd is
    // told at once.
    let idle: Vec<UnixStream> = (0..32)
        .map(|_| UnixStream::connect(sock(&t)).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (v, took) = control(&sock(&t), r#"{"cmd":"stats"}"#);
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("busy")),
        "{v}"
    );
    assert!(took < Duration::from_secs(1), "{took:?}");
    // The idle ones are closed after the request deadline (5 s).
    let t0 = Instant::now();
    for mut s in idle {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut s, &mut buf);
        assert!(
            String::from_utf8_lossy(&buf).contains("no complete request"),
            "{}",
            String::from_utf8_lossy(&buf)
        );
    }
    assert!(t0.elapsed() < Duration::from_secs(7), "{:?}", t0.elapsed());

    // /metrics' cap.
    let m = run_clients(&t, "cap");
    assert_eq!(
        m.get("http33_status").and_then(|v| v.as_str()),
        Some("HTTP/1.1 503 Service Unavailable"),
        "{m:?}"
    );
    assert!(secs(&m, "http33_s") < 1.0, "{m:?}");

    // Counted, in show stats and in /metrics.
    std::thread::sleep(Duration::from_millis(300));
    let s = stats_json(&t);
    assert!(s["control"]["refused_busy"].as_u64() >= Some(1), "{s}");
    assert!(s["control"]["timed_out"].as_u64() >= Some(32), "{s}");
    assert!(
        s["control"]["metrics_refused_busy"].as_u64() >= Some(1),
        "{s}"
    );
    let text = t.ok(&t.x, "curl -sS --max-time 5 http://127.0.0.1:9164/metrics");
    let line = text
        .lines()
        .find(|l| l.starts_with("nat64_control_connections_refused_total{reason=\"busy\"}"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(!line.ends_with(" 0"), "{line}");
    assert_eq!(t.stop_nat64(pid), 0, "{}", t.nat64_log_tail());
}

/// Issue 11 #11: `show sessions` at a million sessions used to build one
/// 212 MB reply under the engine's lock. Now the daemon answers a page at
/// a time (at most 10000 rows) and `nat64 show` fetches page after page:
/// with more sessions than one page, `--limit 0` lists each exactly once,
/// `--limit N` stops at N and says so.
#[test]
fn show_sessions_paged_past_one_page_daemon() {
    let Some(t) = Topo::new("opspage", Napt::Daemon) else {
        return;
    };
    let extra = format!(
        "control = \"{}\"\n[limits]\nmax-sessions-per-client = 100000\n",
        sock(&t)
    );
    let pid = t.start_nat64(&t.config(&extra));
    t.wait_path();
    // More flows than a page (10000); the last ones may still be queued
    // in the TUN when the sender is done.
    udp_flows(&t, 20000, 10_500);
    let udp_sessions = || stats_json(&t)["sessions"]["udp"].as_u64().unwrap_or(0);
    wait_until(&t, "10500 UDP sessions", Duration::from_secs(10), || {
        udp_sessions() >= 10_500
    });
    let s = sock(&t);
    let udp = udp_sessions();
    let cli = |args: &str| t.ok(&t.x, &format!("{} {args}", bin()));
    let all = cli(&format!(
        "show sessions --socket {s} --json --proto udp --limit 0 | \
         jq -r '.[] | \"\\(.v6_port) \\(.remote):\\(.remote_port)\"'"
    ));
    let rows: Vec<&str> = all.lines().collect();
    assert_eq!(rows.len() as u64, udp, "every UDP session once");
    let unique: std::collections::HashSet<&&str> = rows.iter().collect();
    assert_eq!(unique.len(), rows.len(), "a session listed twice");
    // A table, cut at 20 rows.
    let r = t.sh(
        &t.x,
        &format!("{} show sessions --socket {s} --limit 20", bin()),
    );
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(lines[0].starts_with("PROTO"), "{}", r.stdout);
    assert_eq!(lines.len(), 22, "header, 20 rows, count\n{}", r.stdout);
    assert_eq!(lines[21], "20 session(s)");
    assert!(r.stderr.contains("more exist"), "{}", r.stderr);
    // Bindings the same way (one per flow here).
    let n = cli(&format!(
        "show bindings --socket {s} --json --proto udp --limit 0 | jq length"
    ));
    assert_eq!(
        n.trim().parse::<u64>().ok(),
        stats_json(&t)["bindings"]["udp"].as_u64()
    );
    assert_eq!(t.stop_nat64(pid), 0, "{}", t.nat64_log_tail());
}
