//! The BPF fast path in kernel mode (`napt = "kernel"` with
//! `fast-path = "tc-bpf"`, issue 13), end to end in the three-namespace line
//! of `support`: the program translates a client's IPv6 packet to its inner
//! IPv4 address at `v6x` ingress and hands it to the stack through the
//! TUN's ingress, where conntrack and the masquerade do the ports as for
//! any packet nat64 writes; replies are translated at the TUN's egress,
//! after conntrack gave them back their inner destination.
//!
//! * a 10 MiB HTTP download arrives intact and iperf3 runs both ways while
//!   the TUN carries only a handful of their packets; the server sees the
//!   masqueraded address and conntrack holds the flows (the kernel's NAT
//!   is still the one doing the ports);
//! * a UDP flow whose packets all cross in the kernel keeps its lease past
//!   a 2 s UDP lifetime (the program's counters refresh the lease), one
//!   public address and port, nothing lost, no flow withdrawn;
//! * SIGKILL of nat64 leaves no program translating.
//!
//! Root only, a loud SKIP otherwise; a kernel or build without BPF makes
//! nat64 log "fast path off" and is a SKIP here too, except under CI.

mod support;

use std::time::Duration;
use support::*;

const FAST: &str = "fast-path = \"tc-bpf\"\nfast-path-interfaces = [\"v6x\"]\n";

/// Starts kernel-mode nat64 with the fast path and `extra` config; None
/// (after a SKIP notice) when it could not load here and this is not CI.
fn start_fast(t: &Topo, extra: &str) -> Option<u32> {
    let pid = t.start_nat64(&t.config(&format!("{FAST}{extra}")));
    let log = t.nat64_log_tail();
    if log.contains("fast path off") {
        assert!(
            std::env::var_os("CI").is_none(),
            "the fast path did not load under CI:\n{log}"
        );
        eprintln!("*** SKIP fastpath_kernel_e2e: the fast path cannot load here ***\n{log}");
        return None;
    }
    assert!(
        log.contains("fast path on") && log.contains("nat64 egress"),
        "{log}"
    );
    Some(pid)
}

fn translated(s: &std::collections::HashMap<String, u64>) -> u64 {
    s.get("translated_6to4").copied().unwrap_or(0) + s.get("translated_4to6").copied().unwrap_or(0)
}

#[test]
fn kernel_mode_flows_cross_in_the_kernel_around_its_nat() {
    let Some(t) = Topo::new("fastpath-kernel", Napt::Kernel) else {
        return;
    };
    let sum = t.http_server4(10);
    t.iperf3_server4();
    let sock = t.dir.join("control.sock").display().to_string();
    let Some(pid) = start_fast(
        &t,
        &format!("control = \"{sock}\"\nmetrics = \"127.0.0.1:9164\"\n"),
    ) else {
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
        // A long-lived iperf3 client whose data connection is still up
        // when conntrack is read below.
        let v = t.iperf3_tcp(&format!("-t 3 {dir}"));
        bytes += v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
        eprintln!(
            "kernel-mode fast path iperf3 {}: {:.1} Mbit/s",
            if dir.is_empty() { "6->4" } else { "4->6" },
            v["end"]["sum_received"]["bits_per_second"]
                .as_f64()
                .unwrap_or(0.0)
                / 1e6
        );
    }
    let through_tun = translated(&t.stats(pid)) - before;
    let packets_min = (bytes + 10 * 1024 * 1024) / 65536;
    eprintln!("kernel-mode fast path: {bytes} iperf3 bytes, {through_tun} packets through the TUN");
    assert!(bytes > 10_000_000, "iperf3 moved only {bytes} bytes");
    assert!(
        through_tun < packets_min,
        "{through_tun} packets crossed the TUN for {bytes} bytes: the fast path did not carry \
         the flows\n{}",
        t.nat64_log_tail()
    );
    // The kernel's NAT did the ports: the server's peers were the
    // masqueraded address, and conntrack tracked the flows from the inner
    // address (an entry per flow, seen both ways: ASSURED).
    let peers = t.ok(&t.s4, "ss -tnH state time-wait");
    assert!(
        peers.contains(&format!("{XLAT4}:")) && !peers.contains("100.64."),
        "the server saw other sources than the masqueraded address:\n{peers}"
    );
    let ct = t.ok(&t.x, "conntrack -L -p tcp --dport 5201 2>/dev/null");
    assert!(
        ct.lines()
            .any(|l| l.contains("src=100.64.") && l.contains("ASSURED")),
        "no conntrack entry of the inner address:\n{ct}"
    );
    std::thread::sleep(Duration::from_millis(2500));
    let st = t.stats(pid);
    let (installed, removed) = (
        st.get("fast_path_installed").copied().unwrap_or(0),
        st.get("fast_path_removed").copied().unwrap_or(0),
    );
    eprintln!("kernel-mode fast path: {installed} flows installed, {removed} removed");
    // The download and iperf3's control and data connections, and
    // wait_path's pings; the TCP flows left at their FINs.
    assert!(installed >= 5 && removed >= 5, "{st:?}");
    // What the program translated is in `nat64 show stats` and /metrics
    // (copied once a second): at least the 10 MiB download's packets.
    let show = t.ok(
        &t.x,
        &format!(
            "{} show stats --socket {sock} --json | jq -c .fast_path",
            bin()
        ),
    );
    let fp: serde_json::Value = serde_json::from_str(show.trim()).unwrap();
    eprintln!("kernel-mode fast path, show stats: {fp}");
    let n = |k: &str| fp[k].as_u64().unwrap_or(0);
    assert!(
        n("translated_4to6") > 150 && n("bytes_4to6") > 10 * 1024 * 1024,
        "{fp}"
    );
    assert!(
        n("translated_6to4") > 100 && n("installed") == installed,
        "{fp}"
    );
    let metrics = t.ok(&t.x, "curl -sS --max-time 5 http://127.0.0.1:9164/metrics");
    let series = |name: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert!(
        series("nat64_fast_path_packets_total{what=\"xlat_4to6\"}") >= n("translated_4to6"),
        "{metrics}"
    );
    assert!(
        series("nat64_fast_path_packets_total{what=\"pass_tcp_flags\"}") >= 10,
        "SYNs and FINs went to the TUN path:\n{metrics}"
    );
    assert_eq!(t.stop_nat64(pid), 0);
    assert!(
        t.nat64_log_tail().contains("fast path: detached"),
        "{}",
        t.nat64_log_tail()
    );
}

/// A kernel-mode lease lives as long as traffic uses it: with every packet
/// of a UDP flow crossing in the kernel, the program's counters keep the
/// client's lease (2 s UDP lifetime) for 8 s; one public address and port,
/// nothing lost, the flow never withdrawn (a lapsed lease would have taken
/// it off the fast path).
#[test]
fn kernel_mode_lease_kept_alive_by_fast_path_traffic() {
    let Some(t) = Topo::new("fastpath-kernel-udp", Napt::Kernel) else {
        return;
    };
    t.udp_echo4();
    let maplog = t.dir.join("mapping.log");
    let Some(pid) = start_fast(
        &t,
        &format!(
            "reap-interval-secs = 1\nmapping-log = \"{}\"\n[timeouts]\nudp = 2\nicmp = 2\n",
            maplog.display()
        ),
    ) else {
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
        "kernel-mode fast path UDP: {v}, public {peers:?}, refreshed {:?}, removed {:?}, \
         through the TUN {}",
        st.get("fast_path_refreshed"),
        st.get("fast_path_removed"),
        translated(&st)
    );
    assert_eq!(v["lost"].as_u64(), Some(0), "{v}");
    assert_eq!(peers.len(), 1, "the mapping changed: {peers:?}");
    assert!(
        st.get("fast_path_refreshed").copied().unwrap_or(0) >= 3,
        "{st:?}"
    );
    // The mapping log has the lease's creation and no expiry (the reaper
    // ran every second with a 2 s lifetime; wait_path's ping, from the
    // client's other address, lapses: that is the check working).
    let log = std::fs::read_to_string(&maplog).unwrap_or_default();
    assert!(log.contains(&format!("created lease {CLIENT6} ")), "{log}");
    assert!(
        !log.contains(&format!("expired lease {CLIENT6} ")),
        "the lease lapsed under fast-path traffic:\n{log}"
    );
    assert!(
        translated(&st) < 50,
        "the flow did not move to the fast path: {st:?}"
    );
    assert_eq!(t.stop_nat64(pid), 0);
}

#[test]
fn kernel_mode_sigkill_leaves_no_program_translating() {
    let Some(t) = Topo::new("fastpath-kernel-kill", Napt::Kernel) else {
        return;
    };
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
    std::thread::sleep(Duration::from_secs(1));
    let after_kill = t.tcp_bytes_received(&t.s4, 5201);
    std::thread::sleep(Duration::from_secs(2));
    let later = t.tcp_bytes_received(&t.s4, 5201);
    t.signal(client, libc::SIGKILL);
    eprintln!(
        "kernel-mode fast path SIGKILL: server had {running} bytes at 1.5 s, {after_kill} 1 s \
         after the kill, {later} 2 s later"
    );
    assert!(running > 1_000_000, "the stream never ran");
    assert_eq!(
        later, after_kill,
        "bytes crossed after nat64 died: a program was left attached"
    );
    let tc = t.sh(
        &t.x,
        "bpftool net show dev v6x 2>/dev/null; tc filter show dev v6x ingress",
    );
    assert!(!tc.stdout.contains("nat64_xlat"), "{}", tc.stdout);
}
