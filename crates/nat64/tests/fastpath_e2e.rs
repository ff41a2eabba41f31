//! The BPF fast path (`fast-path = "tc-bpf"`, issue 13) end to end, in the
//! three-namespace line of `support` (daemon mode; the program on the
//! xlat namespace's `v6x` and `v4x` ingress):
//!
//! * a 10 MiB HTTP download arrives intact (sha256) and an iperf3 TCP
//!   stream runs both ways, while the TUN carries only a handful of their
//!   packets (the handshake and the close): the rest crossed in the kernel;
//!   each TCP flow's FIN took it off the fast path;
//! * a UDP flow whose packets all cross in the kernel outlives a 2 s UDP
//!   lifetime (the program's counters refresh the session), one public
//!   port, nothing lost;
//! * after SIGKILL of nat64 the established stream stops (the kernel
//!   removed the TCX links with the process: no orphan program keeps
//!   translating), and a restarted nat64 attaches again (a download
//!   arrives intact).
//!
//! Root only, a loud SKIP otherwise; a kernel or build without BPF makes
//! nat64 log "fast path off" and is a SKIP here too, except under CI.

mod support;

use std::time::Duration;
use support::*;

const FAST: &str = "fast-path = \"tc-bpf\"\nfast-path-interfaces = [\"v6x\", \"v4x\"]\n";

/// Starts nat64 with the fast path and `extra` config; None (after a SKIP
/// notice) when it could not load here and this is not CI.
fn start_fast(t: &Topo, extra: &str) -> Option<u32> {
    let pid = t.start_nat64(&t.config(&format!("{FAST}{extra}")));
    let log = t.nat64_log_tail();
    if log.contains("fast path off") {
        assert!(
            std::env::var_os("CI").is_none(),
            "the fast path did not load under CI:\n{log}"
        );
        eprintln!("*** SKIP fastpath_e2e: the fast path cannot load here ***\n{log}");
        return None;
    }
    assert!(log.contains("fast path on"), "{log}");
    Some(pid)
}

fn translated(s: &std::collections::HashMap<String, u64>) -> u64 {
    s.get("translated_6to4").copied().unwrap_or(0) + s.get("translated_4to6").copied().unwrap_or(0)
}

#[test]
fn established_flows_cross_in_the_kernel_not_the_tun() {
    let Some(t) = Topo::new("fastpath", Napt::Daemon) else {
        return;
    };
    let sum = t.http_server4(10);
    t.iperf3_server4();
    let Some(pid) = start_fast(&t, "") else {
        return;
    };
    t.wait_path();
    let before = translated(&t.stats(pid));
    let out = t.ok(
        &t.c6,
        &format!("curl -sS --max-time 50 http://[{SERVER4_V6}]:8080/big.bin | sha256sum"),
    );
    assert_eq!(out.split_whitespace().next(), Some(sum.as_str()));
    let mut bytes = 0u64;
    for dir in ["", "-R"] {
        let v = t.iperf3_tcp(&format!("-t 3 {dir}"));
        let b = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
        eprintln!(
            "fast path iperf3 {}: {:.1} Mbit/s",
            if dir.is_empty() { "6->4" } else { "4->6" },
            v["end"]["sum_received"]["bits_per_second"]
                .as_f64()
                .unwrap_or(0.0)
                / 1e6
        );
        bytes += b;
    }
    let through_tun = translated(&t.stats(pid)) - before;
    // 10 MiB + two 3 s streams are tens of thousands of packets (MSS-sized
    // or GSO): the TUN saw the handshakes, the closes and the packets
    // before each flow's entry was installed.
    let packets_min = (bytes + 10 * 1024 * 1024) / 65536;
    eprintln!("fast path: {bytes} iperf3 bytes, {through_tun} packets through the TUN");
    assert!(bytes > 10_000_000, "iperf3 moved only {bytes} bytes");
    assert!(
        through_tun < packets_min,
        "{through_tun} packets crossed the TUN for {bytes} bytes: the fast path did not carry \
         the flows\n{}",
        t.nat64_log_tail()
    );
    // Every flow went to the fast path once established and came back at
    // its FIN (the program passes FINs to the TUN; the engine withdraws the
    // flow): nothing is left installed.
    std::thread::sleep(Duration::from_millis(1500));
    let st = t.stats(pid);
    let (installed, removed) = (
        st.get("fast_path_installed").copied().unwrap_or(0),
        st.get("fast_path_removed").copied().unwrap_or(0),
    );
    eprintln!("fast path: {installed} flows installed, {removed} removed");
    assert!(
        installed >= 5,
        "the download and both iperf3 runs were installed: {st:?}"
    );
    // The download and the two iperf3 runs' control and data connections
    // (5 TCP flows) left at their FINs; what stays installed are
    // wait_path's pings (ICMP echo sessions have no FIN: they stay until
    // they expire, 60 s).
    let icmp = st.get("sessions_icmp").copied().unwrap_or(0);
    assert!(
        removed >= 5 && installed - removed <= icmp,
        "FINs took every TCP flow off the fast path: {st:?}"
    );
    assert_eq!(t.stop_nat64(pid), 0);
    assert!(
        t.nat64_log_tail().contains("fast path: detached"),
        "{}",
        t.nat64_log_tail()
    );
}

/// RFC 6146 timers with the fast path: a UDP flow whose packets all cross
/// in the kernel outlives a 2 s UDP lifetime (the program's counters
/// refresh it), keeps one public port, and loses nothing.
#[test]
fn udp_kept_alive_by_fast_path_traffic_alone() {
    let Some(t) = Topo::new("fastpath-udp", Napt::Daemon) else {
        return;
    };
    t.udp_echo4();
    let Some(pid) = start_fast(&t, "reap-interval-secs = 1\n[timeouts]\nudp = 2\n") else {
        return;
    };
    t.wait_path();
    let script = support_dir().join("udp_stream.py");
    let out = t.ok(
        &t.c6,
        &format!(
            "python3 {} {CLIENT6} 40123 {SERVER4_V6} 7007 8 20",
            script.display()
        ),
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let st = t.stats(pid);
    let peers = t.udp_echo_peers();
    eprintln!(
        "fast path UDP: {v}, public {peers:?}, refreshed {:?}, translated through the TUN {}",
        st.get("fast_path_refreshed"),
        translated(&st)
    );
    assert_eq!(v["lost"].as_u64(), Some(0), "{v}");
    assert_eq!(peers.len(), 1, "the mapping changed: {peers:?}");
    assert!(
        st.get("fast_path_refreshed").copied().unwrap_or(0) >= 3,
        "{st:?}"
    );
    assert!(
        translated(&st) < 50,
        "the flow did not move to the fast path: {st:?}"
    );
    assert_eq!(t.stop_nat64(pid), 0);
}

#[test]
fn sigkill_leaves_no_program_translating() {
    let Some(t) = Topo::new("fastpath-kill", Napt::Daemon) else {
        return;
    };
    let sum = t.http_server4(2);
    t.iperf3_server4();
    let Some(pid) = start_fast(&t, "") else {
        return;
    };
    t.wait_path();
    let client = t.spawn(
        &t.c6,
        &[
            "iperf3",
            "-c",
            SERVER4_V6,
            "-p",
            "5201",
            "-t",
            "30",
            "--connect-timeout",
            "5000",
        ],
        "kill.out",
    );
    std::thread::sleep(Duration::from_millis(1500));
    let running = t.tcp_bytes_received(&t.s4, 5201);
    t.signal(pid, libc::SIGKILL);
    let _ = t.wait_exit(pid, Duration::from_secs(5));
    // Whatever was in flight lands within a second; after that, nothing.
    std::thread::sleep(Duration::from_secs(1));
    let after_kill = t.tcp_bytes_received(&t.s4, 5201);
    std::thread::sleep(Duration::from_secs(2));
    let later = t.tcp_bytes_received(&t.s4, 5201);
    t.signal(client, libc::SIGKILL);
    eprintln!(
        "fast path SIGKILL: server had {running} bytes at 1.5 s, {after_kill} 1 s after the \
         kill, {later} 2 s later"
    );
    assert!(running > 1_000_000, "the stream never ran");
    assert_eq!(
        later, after_kill,
        "bytes crossed after nat64 died: a program was left attached"
    );
    // A new instance attaches again and carries new flows.
    let Some(pid) = start_fast(&t, "") else {
        return;
    };
    t.wait_path();
    let out = t.ok(
        &t.c6,
        &format!("curl -sS --max-time 20 http://[{SERVER4_V6}]:8080/big.bin | sha256sum"),
    );
    assert_eq!(out.split_whitespace().next(), Some(sum.as_str()));
    assert_eq!(t.stop_nat64(pid), 0);
}

/// `nat64 binding del` takes a flow off the fast path at once: an
/// IPv4-initiated stream to a static binding (forwarded in the kernel once
/// established) stops crossing as soon as the entry is deleted.
#[test]
fn binding_del_stops_fast_path_traffic_at_once() {
    let Some(t) = Topo::new("fastpath-del", Napt::Daemon) else {
        return;
    };
    let sock = t.dir.join("control.sock").display().to_string();
    t.spawn(
        &t.c6,
        &["iperf3", "-s", "-B", CLIENT6, "-p", "5201"],
        "iperf3s6.log",
    );
    t.wait_listen(&t.c6, "5201", "t");
    let Some(pid) = start_fast(
        &t,
        &format!(
            "control = \"{sock}\"\n\n[[static]]\nproto = \"tcp\"\nv6 = \"[{CLIENT6}]:5201\"\n\
             v4 = \"203.0.113.30:5201\"\n"
        ),
    ) else {
        return;
    };
    t.wait_path();
    let client = t.spawn(
        &t.s4,
        &[
            "iperf3",
            "-c",
            "203.0.113.30",
            "-p",
            "5201",
            "-t",
            "30",
            "--connect-timeout",
            "5000",
        ],
        "iperf3c4.log",
    );
    std::thread::sleep(Duration::from_millis(2000));
    let st = t.stats(pid);
    let running = t.tcp_bytes_received(&t.c6, 5201);
    let del = t.sh(
        &t.x,
        &format!(
            "{} binding del --proto tcp --v4 203.0.113.30:5201 --socket {sock}",
            bin()
        ),
    );
    assert!(del.ok, "binding del: {}{}", del.stdout, del.stderr);
    std::thread::sleep(Duration::from_millis(500));
    let after_del = t.tcp_bytes_received(&t.c6, 5201);
    std::thread::sleep(Duration::from_secs(2));
    let later = t.tcp_bytes_received(&t.c6, 5201);
    t.signal(client, libc::SIGKILL);
    eprintln!(
        "fast path binding del: {running} bytes before (installed {:?}), {after_del} 0.5 s \
         after, {later} 2 s later",
        st.get("fast_path_installed")
    );
    assert!(
        st.get("fast_path_installed").copied().unwrap_or(0) >= 1,
        "{st:?}"
    );
    assert!(running > 1_000_000, "the stream never ran");
    assert_eq!(later, after_del, "bytes crossed after binding del");
    assert_eq!(t.stop_nat64(pid), 0);
}
