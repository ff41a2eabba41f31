//! The BPF fast path (`fast-path = "tc-bpf"`, issue 13) end to end, in the
//! three-namespace line of `support`, the program on the xlat namespace's
//! `v6x` and `v4x` ingress. Daemon mode, and kernel mode where nat64 also
//! attaches the reply program to the TUN's egress (the fast path works
//! around the kernel's NAT: conntrack and the masquerade see every packet):
//!
//! * a 10 MiB HTTP download arrives intact (sha256) and an iperf3 TCP
//!   stream runs both ways, while the TUN carries only a handful of their
//!   packets (the handshake and the close): the rest crossed in the kernel;
//!   each TCP flow's FIN took it off the fast path;
//! * a UDP flow whose packets all cross in the kernel outlives a 2 s UDP
//!   lifetime (the program's counters refresh the session, in kernel mode
//!   the lease), one public port, nothing lost;
//! * `nat64 show stats` and `/metrics` count the program's packets;
//! * after SIGKILL of nat64 the established stream stops (the kernel
//!   removed the TCX links with the process: no orphan program keeps
//!   translating), and a restarted nat64 attaches again (a download
//!   arrives intact);
//! * PMTU discovery still answered: a TCP upload and a TCP download on
//!   the fast path go on intact after the path shrinks to 1280 mid-flow;
//!   the program passes the too-big packets to the TUN, the sender gets a
//!   Packet Too Big / Fragmentation Needed and caches the smaller MTU, and
//!   the flow returns to the kernel.
//!
//! Root only, a loud SKIP otherwise; a kernel or build without BPF makes
//! nat64 log "fast path off" and is a SKIP here too, except under CI.

mod support;

use std::time::{Duration, Instant};
use support::*;

const FAST: &str = "fast-path = \"tc-bpf\"\nfast-path-interfaces = [\"v6x\", \"v4x\"]\n";

/// Starts nat64 with the fast path on v6x and v4x and `extra` config;
/// None (after a SKIP notice) when it could not load here and this is not
/// CI.
fn start_fast(t: &Topo, extra: &str) -> Option<u32> {
    start_fast_with(t, &t.config(&format!("{FAST}{extra}")))
}

/// [`start_fast`] with a whole `config` that turns the fast path on.
fn start_fast_with(t: &Topo, config: &str) -> Option<u32> {
    let pid = t.start_nat64(config);
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
    // Kernel mode: replies are translated at the TUN's egress.
    if t.napt == Mode::Kernel {
        assert!(log.contains("nat64 egress"), "{log}");
    }
    Some(pid)
}

/// Waits (20 s limit) until `ns`'s established TCP sockets on local port
/// `port` received more than `min` bytes; returns the count. A fixed wait
/// is not enough on a loaded machine: iperf3's data connection can start
/// seconds after its control connection.
fn wait_received(t: &Topo, ns: &str, port: u16, min: u64) -> u64 {
    let t0 = Instant::now();
    loop {
        let n = t.tcp_bytes_received(ns, port);
        if n > min {
            return n;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "only {n} bytes received on port {port} in {ns} after 20 s\n{}",
            t.nat64_log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn translated(s: &std::collections::HashMap<String, u64>) -> u64 {
    s.get("translated_6to4").copied().unwrap_or(0) + s.get("translated_4to6").copied().unwrap_or(0)
}

#[test]
fn daemon_established_flows_cross_in_the_kernel_not_the_tun() {
    flows_cross_in_the_kernel(Napt::Daemon, "fastpath");
}

/// Kernel mode: the same flows cross in the kernel *around* its NAT: the
/// server sees the masqueraded address and conntrack holds every flow from
/// the inner address (the kernel still does the ports).
#[test]
fn kernel_established_flows_cross_in_the_kernel_around_its_nat() {
    flows_cross_in_the_kernel(Napt::Kernel, "fastpath-kernel");
}

/// A 10 MiB download and iperf3 both ways with only a handful of their
/// packets through the TUN; FINs take the TCP flows off the fast path;
/// `nat64 show stats` and `/metrics` count what the program did.
fn flows_cross_in_the_kernel(napt: Napt, name: &str) {
    let Some(t) = Topo::new(name, napt) else {
        return;
    };
    let kernel = t.napt == Mode::Kernel;
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
        let v = t.iperf3_tcp(&format!("-t 3 {dir}"));
        let b = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
        eprintln!(
            "{name} iperf3 {}: {:.1} Mbit/s",
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
    eprintln!("{name}: {bytes} iperf3 bytes, {through_tun} packets through the TUN");
    assert!(bytes > 10_000_000, "iperf3 moved only {bytes} bytes");
    assert!(
        through_tun < packets_min,
        "{through_tun} packets crossed the TUN for {bytes} bytes: the fast path did not carry \
         the flows\n{}",
        t.nat64_log_tail()
    );
    if kernel {
        // The kernel's NAT did the ports: the server's peers were the
        // masqueraded address, and conntrack tracked the flows from the
        // inner address (an entry per flow, seen both ways: ASSURED).
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
    }
    // Every flow went to the fast path once established and came back at
    // its FIN (the program passes FINs to the TUN; the engine withdraws the
    // flow). Kernel mode holds a closed flow off for 2 s.
    std::thread::sleep(Duration::from_millis(2500));
    let st = t.stats(pid);
    let (installed, removed) = (
        st.get("fast_path_installed").copied().unwrap_or(0),
        st.get("fast_path_removed").copied().unwrap_or(0),
    );
    eprintln!("{name}: {installed} flows installed, {removed} removed");
    assert!(
        installed >= 5,
        "the download and both iperf3 runs were installed: {st:?}"
    );
    // The download and the two iperf3 runs' control and data connections
    // (5 TCP flows) left at their FINs; what stays installed are
    // wait_path's pings (ICMP echo has no FIN: daemon mode keeps the
    // session until it expires, 60 s; kernel mode the flow until it is
    // idle that long).
    assert!(
        removed >= 5,
        "FINs took every TCP flow off the fast path: {st:?}"
    );
    if !kernel {
        let icmp = st.get("sessions_icmp").copied().unwrap_or(0);
        assert!(installed - removed <= icmp, "{st:?}");
        // `show sessions` says which sessions are on the fast path: the
        // ones still installed, no closed TCP flow among them.
        let rows = t.ok(
            &t.x,
            &format!(
                "{} show sessions --socket {sock} --json | jq -r '.[] | \"\\(.proto) \\(.fast_path)\"'",
                bin()
            ),
        );
        let on: Vec<&str> = rows.lines().filter(|l| l.ends_with(" true")).collect();
        eprintln!("{name}: sessions (proto on-fast-path):\n{rows}");
        assert_eq!(on.len() as u64, installed - removed, "{rows}\n{st:?}");
        assert!(!on.iter().any(|l| l.starts_with("tcp")), "{rows}");
        let table = t.ok(&t.x, &format!("{} show sessions --socket {sock}", bin()));
        assert!(table.starts_with("PROTO") && table.lines().next().unwrap().ends_with("PATH"));
        assert_eq!(
            table.lines().filter(|l| l.ends_with("fast-path")).count(),
            on.len(),
            "{table}"
        );
    }
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
    eprintln!("{name}, show stats: {fp}");
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

/// RFC 6146 timers with the fast path: a UDP flow whose packets all cross
/// in the kernel outlives a 2 s UDP lifetime (the program's counters
/// refresh the session), keeps one public port, and loses nothing.
#[test]
fn daemon_udp_kept_alive_by_fast_path_traffic_alone() {
    timers_kept_by_fast_path_traffic(Napt::Daemon, "fastpath-udp");
}

/// Kernel mode: the same for the client's lease (2 s UDP lifetime): the
/// mapping log shows no expiry, so the flow was never withdrawn and the
/// client kept its address.
#[test]
fn kernel_lease_kept_alive_by_fast_path_traffic_alone() {
    timers_kept_by_fast_path_traffic(Napt::Kernel, "fastpath-kernel-udp");
}

fn timers_kept_by_fast_path_traffic(napt: Napt, name: &str) {
    let Some(t) = Topo::new(name, napt) else {
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
        "{name}: {v}, public {peers:?}, refreshed {:?}, removed {:?}, through the TUN {}",
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
    // The refreshes came from batched reads of the tables, done by a
    // thread that dropped its capabilities.
    let log = t.log("nat64.log");
    assert!(!log.contains("in batches failed"), "{log}");
    assert!(
        translated(&st) < 50,
        "the flow did not move to the fast path: {st:?}"
    );
    if t.napt == Mode::Kernel {
        // The lease's creation and no expiry (the reaper ran every second
        // with a 2 s lifetime; wait_path's ping, from the client's other
        // address, lapses: the check working).
        let log = std::fs::read_to_string(&maplog).unwrap_or_default();
        assert!(log.contains(&format!("created lease {CLIENT6} ")), "{log}");
        assert!(
            !log.contains(&format!("expired lease {CLIENT6} ")),
            "the lease lapsed under fast-path traffic:\n{log}"
        );
    }
    assert_eq!(t.stop_nat64(pid), 0);
}

#[test]
fn daemon_sigkill_leaves_no_program_translating() {
    sigkill_leaves_no_program_translating(Napt::Daemon, "fastpath-kill");
}

/// Kernel mode: the TUN's egress program goes with the TUN, the client
/// interface's with its TCX link.
#[test]
fn kernel_sigkill_leaves_no_program_translating() {
    sigkill_leaves_no_program_translating(Napt::Kernel, "fastpath-kernel-kill");
}

fn sigkill_leaves_no_program_translating(napt: Napt, name: &str) {
    let Some(t) = Topo::new(name, napt) else {
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
    let running = wait_received(&t, &t.s4, 5201, 1_000_000);
    t.signal(pid, libc::SIGKILL);
    let _ = t.wait_exit(pid, Duration::from_secs(5));
    // Whatever was in flight lands within a second; after that, nothing.
    std::thread::sleep(Duration::from_secs(1));
    let after_kill = t.tcp_bytes_received(&t.s4, 5201);
    std::thread::sleep(Duration::from_secs(2));
    let later = t.tcp_bytes_received(&t.s4, 5201);
    t.signal(client, libc::SIGKILL);
    eprintln!(
        "{name} SIGKILL: server had {running} bytes before, {after_kill} 1 s after the \
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

/// `fast-path-interfaces` left out: nat64 attaches to the interfaces of
/// its routes (here v6x and v4x, never the TUN) and flows cross there.
#[test]
fn interfaces_derived_from_the_routes() {
    let Some(t) = Topo::new("fastpath-derived", Napt::Daemon) else {
        return;
    };
    t.iperf3_server4();
    let Some(pid) = start_fast_with(&t, &t.config("fast-path = \"tc-bpf\"\n")) else {
        return;
    };
    let log = t.nat64_log_tail();
    let on = log
        .lines()
        .find(|l| l.contains("fast path on"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        on.contains("v4x ingress") && on.contains("v6x ingress") && !on.contains("nat64 "),
        "{on}"
    );
    t.wait_path();
    let before = translated(&t.stats(pid));
    let v = t.iperf3_tcp("-t 2");
    let bytes = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
    let through_tun = translated(&t.stats(pid)) - before;
    eprintln!("derived interfaces: {on}; {bytes} bytes, {through_tun} packets through the TUN");
    assert!(
        bytes > 10_000_000 && through_tun < bytes / 65536,
        "{bytes} {through_tun}"
    );
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
    let running = wait_received(&t, &t.c6, 5201, 1_000_000);
    let st = t.stats(pid);
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

// ------------------------------------------------------------------ PMTU ---

/// Size of the PMTU tests' transfers, their pace and how much of it
/// crosses before the path shrinks: 3 MiB at 2 MiB/s takes 1.5 s, long
/// enough for the flow to be on the fast path well before the shrink, and
/// 5 MiB still to go after it.
const PMTU_MIB: usize = 8;
const PMTU_RATE: u64 = 2 << 20;
const SHRINK_AT: u64 = 3 << 20;
/// The MTU the path shrinks to (the IPv6 minimum, RFC 8200 §5).
const SMALL_MTU: u32 = 1280;

/// Polls `f` (every 50 ms, `limit`) until it returns Some.
fn wait_for<T>(t: &Topo, what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t0 = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            t0.elapsed() < limit,
            "{what}: not after {limit:?}\n{}",
            t.nat64_log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Starts tcpdump in `ns` on `dev` writing what `filter` matches to
/// `DIR/<name>.pcap`; returns its PID once it listens.
fn tcpdump(t: &Topo, ns: &str, dev: &str, filter: &str, name: &str) -> u32 {
    let cap = t.dir.join(format!("{name}.pcap"));
    let log = format!("{name}.log");
    let pid = t.spawn(
        ns,
        &[
            "tcpdump",
            "-i",
            dev,
            "-n",
            // each packet written at once, so stopping tcpdump right after
            // the transfer loses nothing
            "--immediate-mode",
            "-U",
            "-w",
            &cap.to_string_lossy(),
            filter,
        ],
        &log,
    );
    wait_for(t, "tcpdump listening", Duration::from_secs(10), || {
        t.log(&log).contains("listening").then_some(())
    });
    pid
}

/// Stops the tcpdump `pid` and decodes what it wrote to `DIR/<name>.pcap`.
fn tcpdump_text(t: &Topo, pid: u32, name: &str) -> String {
    t.signal(pid, libc::SIGTERM);
    let _ = t.wait_exit(pid, Duration::from_secs(5));
    let cap = t.dir.join(format!("{name}.pcap"));
    t.sh(&t.c6, &format!("tcpdump -n -v -r {} 2>&1", cap.display()))
        .stdout
}

/// The sha256 of `path` (on the host: the namespaces share the file
/// system).
fn sha256(t: &Topo, path: &std::path::Path) -> String {
    t.ok(&t.x, &format!("sha256sum {}", path.display()))
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Checks, at the moment the path shrinks, that the transfer so far
/// crossed the fast path: a flow was installed since `before`, and the
/// TUN carried fewer packets than even 64 KiB GSO packets would have
/// needed for `bytes` (in practice the handshake and the packets before
/// the entry was installed), and the program passed nothing as too big
/// yet. Returns the stats.
fn on_fast_path(
    t: &Topo,
    pid: u32,
    before: &std::collections::HashMap<String, u64>,
    bytes: u64,
) -> std::collections::HashMap<String, u64> {
    let st = t.stats(pid);
    let installed = |s: &std::collections::HashMap<String, u64>| {
        s.get("fast_path_installed").copied().unwrap_or(0)
    };
    let through_tun = translated(&st) - translated(before);
    let bpf = fast_path_counters(pid);
    eprintln!(
        "fast path PMTU: {bytes} bytes before the shrink, {through_tun} packets through the \
         TUN, {} flows installed; program: {bpf:?}",
        installed(&st) - installed(before)
    );
    // Nothing was too big yet: the segments fit the path they set out on.
    assert_eq!(bpf.get("pass_mtu"), Some(&0), "{bpf:?}");
    assert!(
        installed(&st) > installed(before),
        "the transfer's flow was not installed on the fast path: {st:?}"
    );
    assert!(
        through_tun < bytes / 65536,
        "{through_tun} packets crossed the TUN for {bytes} bytes: the transfer was not on the \
         fast path before the shrink\n{}",
        t.nat64_log_tail()
    );
    st
}

/// Writes `PMTU_MIB` MiB of random data to `path`.
fn random_file(path: &std::path::Path) {
    let mut data = vec![0u8; PMTU_MIB << 20];
    let mut f = std::fs::File::open("/dev/urandom").expect("opening /dev/urandom");
    std::io::Read::read_exact(&mut f, &mut data).expect("reading /dev/urandom");
    std::fs::write(path, &data).expect("writing the file to transfer");
}

/// After the transfer (`st`; `at_shrink` when the path shrank): the
/// program passed the too-big packets to the TUN (its `pass_mtu` count),
/// and once the sender had adapted the flow crossed in the kernel again:
/// the 5 MiB after the shrink took fewer TUN packets than even 64 KiB GSO
/// packets would have needed (in practice the few too-big packets and the
/// close).
fn back_on_fast_path(
    t: &Topo,
    pid: u32,
    at_shrink: &std::collections::HashMap<String, u64>,
    st: &std::collections::HashMap<String, u64>,
    route: &str,
) {
    let bpf = fast_path_counters(pid);
    let through_tun = translated(st) - translated(at_shrink);
    eprintln!(
        "fast path PMTU: {through_tun} packets through the TUN after the shrink; program: \
         {bpf:?}; sender's route: {route}"
    );
    assert!(
        bpf.get("pass_mtu").copied().unwrap_or(0) >= 1,
        "the program passed no packet as too big: {bpf:?}"
    );
    let after = (PMTU_MIB as u64) * (1 << 20) - SHRINK_AT;
    assert!(
        through_tun < after / 65536,
        "{through_tun} packets crossed the TUN after the shrink: the flow did not return to \
         the fast path once the sender adapted\n{}",
        t.nat64_log_tail()
    );
}

/// PMTU discovery with the fast path, client upload (6→4): a TCP upload
/// runs on the fast path, then the IPv4 link behind the translator shrinks
/// to 1280. The program must pass each too-big packet (bpf_fib_lookup:
/// FRAG_NEEDED) to the stack instead of translating it: through the TUN
/// the daemon translates it, the xlat kernel answers Fragmentation Needed
/// (MTU 1280) to the pool address, and the daemon turns that into a Packet
/// Too Big (MTU 1300) for the client, whose TCP shrinks its segments. The
/// upload completes intact and the client's route to the server caches MTU
/// 1300.
///
/// Were the program to translate too-big packets, no Fragmentation Needed
/// would be sent (nothing reaches the kernel's forwarding MTU check): no
/// PTB, no cached MTU, and without offloads the 1480-byte packets would
/// be dropped at the veth (above v4s's MTU) and the upload stall.
#[test]
fn pmtu_upload_ptb_reaches_client_after_the_ipv4_link_shrinks() {
    let Some(t) = Topo::new("fastpath-pmtu-up", Napt::Daemon) else {
        return;
    };
    let src = t.dir.join("up.bin");
    let dst = t.dir.join("received.bin");
    random_file(&src);
    let sink = t.spawn(
        &t.s4,
        &[
            "socat",
            "-u",
            "TCP-LISTEN:9000,reuseaddr",
            &format!("CREATE:{}", dst.display()),
        ],
        "sink.log",
    );
    t.wait_listen(&t.s4, "9000", "t");
    let Some(pid) = start_fast(&t, "") else {
        return;
    };
    t.wait_path();
    // ICMPv6 type 2: Packet Too Big.
    let dump = tcpdump(&t, &t.c6, "v6c", "icmp6 and ip6[40] == 2", "ptb");
    let before = t.stats(pid);
    let script = support_dir().join("tcp_send.py");
    let sender = t.spawn(
        &t.c6,
        &[
            "python3",
            &script.to_string_lossy(),
            "connect",
            SERVER4_V6,
            "9000",
            &src.to_string_lossy(),
            &PMTU_RATE.to_string(),
        ],
        "sender.log",
    );
    let bytes = wait_for(
        &t,
        "3 MiB of the upload received",
        Duration::from_secs(30),
        || {
            let n = t.tcp_bytes_received(&t.s4, 9000);
            (n >= SHRINK_AT).then_some(n)
        },
    );
    let at_shrink = on_fast_path(&t, pid, &before, bytes);
    t.ok(&t.x, &format!("ip link set v4x mtu {SMALL_MTU}"));
    t.ok(&t.s4, &format!("ip link set v4s mtu {SMALL_MTU}"));

    let code = t.wait_exit(sender, Duration::from_secs(60));
    let st = t.stats(pid);
    let ptb = tcpdump_text(&t, dump, "ptb");
    let route = t.ok(&t.c6, &format!("ip -6 route get {SERVER4_V6}"));
    assert_eq!(
        code,
        Some(0),
        "the upload did not complete after the path shrank\n{}\n{}\n{}",
        t.log("sender.log"),
        ptb,
        t.nat64_log_tail()
    );
    assert!(
        t.wait_exit(sink, Duration::from_secs(10)).is_some(),
        "the sink did not see the end of the upload"
    );
    assert_eq!(
        sha256(&t, &dst),
        sha256(&t, &src),
        "the upload arrived damaged"
    );
    assert!(
        ptb.contains("packet too big, mtu 1300"),
        "no Packet Too Big with mtu 1300 reached the client:\n{ptb}"
    );
    assert!(
        route.contains("mtu 1300"),
        "the client did not learn the path MTU: {route}"
    );
    back_on_fast_path(&t, pid, &at_shrink, &st, route.trim());
    assert_eq!(t.stop_nat64(pid), 0);
}

/// PMTU discovery with the fast path, download (4→6): a TCP download
/// from the IPv4 server runs on the fast path, then the client's link
/// shrinks to 1280. The server's 1480-byte segments (DF, as Linux TCP
/// sends) translate to 1500-byte IPv6 packets: the program passes them
/// (FRAG_NEEDED), the daemon translates them, the xlat kernel answers
/// Packet Too Big (MTU 1280) towards the server's IPv6 address, and the
/// daemon turns that into Fragmentation Needed (MTU 1260) for the server,
/// whose TCP shrinks its segments. The download completes intact and the
/// server's route to the client's pool address caches MTU 1260.
///
/// The server paces the download itself (a client reading slowly would
/// not do: the file would already sit in its socket buffer when the path
/// shrinks). Were the program to translate too-big packets there would be
/// no Packet Too Big and no Fragmentation Needed (no cached MTU at the
/// server), and without offloads the 1500-byte packets would be dropped at
/// the veth (above v6c's MTU) and the download stall.
#[test]
fn pmtu_download_frag_needed_reaches_server_after_the_client_link_shrinks() {
    let Some(t) = Topo::new("fastpath-pmtu-down", Napt::Daemon) else {
        return;
    };
    let (src, dst) = (t.dir.join("down.bin"), t.dir.join("received.bin"));
    random_file(&src);
    let script = support_dir().join("tcp_send.py");
    let sender = t.spawn(
        &t.s4,
        &[
            "python3",
            &script.to_string_lossy(),
            "listen",
            SERVER4,
            "9001",
            &src.to_string_lossy(),
            &PMTU_RATE.to_string(),
        ],
        "sender.log",
    );
    t.wait_listen(&t.s4, "9001", "t");
    let Some(pid) = start_fast(&t, "") else {
        return;
    };
    t.wait_path();
    // ICMP type 3 code 4: Fragmentation Needed.
    let dump = tcpdump(
        &t,
        &t.s4,
        "v4s",
        "icmp and icmp[0] == 3 and icmp[1] == 4",
        "fragneeded",
    );
    let before = t.stats(pid);
    let receiver = t.spawn(
        &t.c6,
        &[
            "socat",
            "-u",
            &format!("TCP6:[{SERVER4_V6}]:9001"),
            &format!("CREATE:{}", dst.display()),
        ],
        "receiver.log",
    );
    let bytes = wait_for(
        &t,
        "3 MiB of the download received",
        Duration::from_secs(30),
        || {
            let n = std::fs::metadata(&dst).map(|m| m.len()).unwrap_or(0);
            (n >= SHRINK_AT).then_some(n)
        },
    );
    let at_shrink = on_fast_path(&t, pid, &before, bytes);
    t.ok(&t.x, &format!("ip link set v6x mtu {SMALL_MTU}"));
    t.ok(&t.c6, &format!("ip link set v6c mtu {SMALL_MTU}"));

    let code = t.wait_exit(receiver, Duration::from_secs(60));
    let st = t.stats(pid);
    let frag = tcpdump_text(&t, dump, "fragneeded");
    // The client as the server sees it: a pool address.
    let pool_addr = t
        .log("sender.log")
        .lines()
        .find_map(|l| l.strip_prefix("peer "))
        .unwrap_or_else(|| panic!("the sender saw no client: {}", t.log("sender.log")))
        .to_string();
    let route = t.ok(&t.s4, &format!("ip route get {pool_addr}"));
    assert_eq!(
        code,
        Some(0),
        "the download did not complete after the path shrank\n{}\n{}\n{}",
        t.log("receiver.log"),
        frag,
        t.nat64_log_tail()
    );
    assert_eq!(
        t.wait_exit(sender, Duration::from_secs(10)),
        Some(0),
        "the sender did not finish: {}",
        t.log("sender.log")
    );
    assert_eq!(
        sha256(&t, &dst),
        sha256(&t, &src),
        "the download arrived damaged"
    );
    assert!(
        frag.contains("mtu 1260"),
        "no Fragmentation Needed with mtu 1260 reached the server:\n{frag}"
    );
    assert!(
        route.contains("mtu 1260"),
        "the server did not learn the path MTU: {route}"
    );
    back_on_fast_path(&t, pid, &at_shrink, &st, route.trim());
    assert_eq!(t.stop_nat64(pid), 0);
}
