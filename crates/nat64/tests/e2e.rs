//! End-to-end tests: the real `nat64` binary between an IPv6-only client and
//! an IPv4-only server, each in its own network namespace, with real
//! programs (ping, curl, iperf3, traceroute, tcpdump). Root only: without
//! root every test prints a loud SKIP and passes.
//!
//! Each test builds its own namespaces (names carry pid + counter), so they
//! run in parallel.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;
use support::*;

fn setup(test: &str, napt: Napt, extra: &str) -> Option<(Topo, u32)> {
    let t = Topo::new(test, napt)?;
    let cfg = t.config(extra);
    let pid = t.start_nat64(&cfg);
    t.wait_path();
    Some((t, pid))
}

// ------------------------------------------------------------------ ping ---

fn ping(napt: Napt) {
    let Some((t, pid)) = setup("ping", napt, "") else {
        return;
    };
    let out = t.ok(&t.c6, &format!("ping -6 -n -c 3 -i 0.2 -W 2 {SERVER4_V6}"));
    assert!(out.contains("3 received"), "{out}");
    let s = t.stats(pid);
    // With the fast path (NAT64_E2E_FAST_PATH=on) the echo flow leaves
    // the TUN once answered: the later pings are the program's count, not
    // the stats line's (ADR 0012). Without it the program's count is 0.
    let fast = fast_path_counters(pid);
    let xlat = |k: &str, f: &str| s[k] + fast.get(f).copied().unwrap_or(0);
    assert!(
        xlat("translated_6to4", "xlat_6to4") >= 3 && xlat("translated_4to6", "xlat_4to6") >= 3,
        "{s:?}\nfast path: {fast:?}"
    );
}

#[test]
fn ping_daemon() {
    ping(Napt::Daemon)
}
#[test]
fn ping_kernel() {
    ping(Napt::Kernel)
}

/// `ping -s 3000`: the echo request leaves the client in three IPv6
/// fragments and the reply leaves the server in three IPv4 fragments. An
/// ICMP checksum covers the whole message (ICMPv6 also a pseudo-header with
/// its length), so it cannot be translated fragment by fragment: nat64
/// reassembles ICMP messages, translates them whole and fragments the
/// result for the next hop.
fn ping_large(napt: Napt) {
    let Some((t, pid)) = setup("pinglarge", napt, "") else {
        return;
    };
    let out = t.ok(
        &t.c6,
        &format!("ping -6 -n -c 3 -i 0.2 -W 2 -s 3000 {SERVER4_V6}"),
    );
    assert!(out.contains("3 received"), "{out}");
    assert!(out.contains("3008 bytes from"), "{out}");
    let s = t.stats(pid);
    assert!(
        s["reassembled"] >= 6,
        "requests and replies reassembled: {s:?}"
    );
    assert_eq!(
        s.get("drop.icmp_fragmented").copied().unwrap_or(0),
        0,
        "{s:?}"
    );
}

#[test]
fn ping_large_fragmented_daemon() {
    ping_large(Napt::Daemon)
}
#[test]
fn ping_large_fragmented_kernel() {
    ping_large(Napt::Kernel)
}

/// RFC 6146 §3.5.3: two sources ping at once with the *same* echo
/// identifier; in daemon mode they share one pool address, so the
/// translator must give them distinct identifiers to get every reply home.
fn icmp_two_sources(napt: Napt) {
    let extra = if napt == Napt::Daemon {
        "pool = [\"203.0.113.7/32\"]\n"
    } else {
        ""
    };
    let Some((t, _)) = setup("icmp2", napt, extra) else {
        return;
    };
    let d = t.dir.display();
    // What reaches the client's link, by destination: the two pings share
    // the identifier and, as root, raw sockets that each see both streams,
    // so a ping's own count can be confused by the other's replies.
    let dump = t.spawn(
        &t.c6,
        &[
            "tcpdump",
            "-i",
            "v6c",
            "-n",
            "-l",
            "--immediate-mode",
            "icmp6 and ip6[40] == 129",
        ],
        "replies.txt",
    );
    std::thread::sleep(Duration::from_millis(500));
    let cmd = format!(
        "ping -6 -n -c 5 -i 0.2 -W 2 -e 4242 -I {CLIENT6} {SERVER4_V6} > {d}/a.txt & \
         ping -6 -n -c 5 -i 0.2 -W 2 -e 4242 -I {CLIENT6_B} {SERVER4_V6} > {d}/b.txt; wait; \
         cat {d}/a.txt {d}/b.txt"
    );
    let out = t.sh(&t.c6, &cmd).stdout;
    std::thread::sleep(Duration::from_millis(300));
    t.signal(dump, libc::SIGTERM);
    let _ = t.wait_exit(dump, Duration::from_secs(5));
    let replies = t.log("replies.txt");
    let to = |a: &str| {
        replies
            .lines()
            .filter(|l| l.contains(&format!("> {a}:")) && l.contains("id 4242"))
            .count()
    };
    let on_the_wire = (to(CLIENT6), to(CLIENT6_B));
    let received: Vec<u32> = out
        .lines()
        .filter_map(|l| {
            l.split(", ")
                .nth(1)?
                .strip_suffix(" received")?
                .parse()
                .ok()
        })
        .collect();
    assert_eq!(received.len(), 2, "{out}");
    // Kernel mode: the two first echoes reach conntrack at the same instant
    // with the same identifier, and MASQUERADE may lose one of them to a
    // NAT clash (a kernel effect, not the translator's), so allow one loss.
    let need = if napt == Napt::Daemon { 5 } else { 4 };
    if received.iter().all(|&n| n >= need) {
        return;
    }
    // Each client's replies came back to it: the translator did its job,
    // whatever the two pings made of each other's replies.
    if on_the_wire.0 >= need as usize && on_the_wire.1 >= need as usize {
        eprintln!(
            "icmp_two_sources: ping counts {received:?}, but the link carried {on_the_wire:?} \
             replies to the two clients"
        );
        return;
    }
    // Say where the replies went: conntrack's clash counters and entries on
    // the translator host, the client's ICMPv6 input errors, nat64's counts.
    let x = t.sh(
        &t.x,
        "conntrack -S; conntrack -L -p icmp 2>&1; nstat -az | grep -i icmp",
    );
    let c = t.sh(&t.c6, "nstat -az | grep -iE 'icmp6|csum'");
    panic!(
        "{out}\nreplies on the client link (to {CLIENT6}, {CLIENT6_B}): {on_the_wire:?}\n\
         --- x ---\n{}{}\n--- c6 ---\n{}\n{}",
        x.stdout,
        x.stderr,
        c.stdout,
        t.nat64_log_tail()
    );
}

#[test]
fn icmp_two_sources_daemon() {
    icmp_two_sources(Napt::Daemon)
}
#[test]
fn icmp_two_sources_kernel() {
    icmp_two_sources(Napt::Kernel)
}

/// Traffic the translator host itself originates is translated.
fn ping_from_xlat_host(napt: Napt) {
    let Some((t, _)) = setup("hostping", napt, "") else {
        return;
    };
    let out = t.ok(&t.x, &format!("ping -6 -n -c 3 -i 0.2 -W 2 {SERVER4_V6}"));
    assert!(out.contains("3 received"), "{out}");
}

#[test]
fn ping_from_xlat_host_daemon() {
    ping_from_xlat_host(Napt::Daemon)
}
#[test]
fn ping_from_xlat_host_kernel() {
    ping_from_xlat_host(Napt::Kernel)
}

// ------------------------------------------------------------------ TCP ---

fn curl_10mib(napt: Napt) {
    let Some(t) = Topo::new("curl", napt) else {
        return;
    };
    let sum = t.http_server4(10);
    t.start_nat64(&t.config(""));
    t.wait_path();
    let out = t.ok(
        &t.c6,
        &format!("curl -sS --max-time 50 http://[{SERVER4_V6}]:8080/big.bin | sha256sum"),
    );
    assert_eq!(out.split_whitespace().next(), Some(sum.as_str()));
}

#[test]
fn curl_10mib_sha256_daemon() {
    curl_10mib(Napt::Daemon)
}
#[test]
fn curl_10mib_sha256_kernel() {
    curl_10mib(Napt::Kernel)
}

/// iperf3 TCP both ways; the topology is returned for more checks (None:
/// the test was skipped, not root).
fn iperf3(napt: Napt, extra: &str) -> Option<Topo> {
    let t = Topo::new("iperf3", napt)?;
    t.iperf3_server4();
    t.start_nat64(&t.config(extra));
    t.wait_path();
    for dir in ["", "-R"] {
        let v = t.iperf3_tcp(&format!("-t 5 {dir}"));
        eprintln!(
            "iperf3 {napt:?} {}: {:.1} Mbit/s",
            if dir.is_empty() { "6->4" } else { "4->6" },
            v["end"]["sum_received"]["bits_per_second"]
                .as_f64()
                .unwrap_or(0.0)
                / 1e6
        );
    }
    Some(t)
}

/// The running kernel's (major, minor) version.
fn kernel_version() -> (u32, u32) {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = r
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

/// The default data path: multishot io_uring reads where the kernel has
/// them (6.7+, ADR 0007), batched io_uring writes, flows placed.
#[test]
fn iperf3_tcp_both_directions_daemon() {
    let Some(t) = iperf3(Napt::Daemon, "") else {
        return;
    };
    let log = t.log("nat64.log");
    let want = if kernel_version() >= (6, 7) {
        "multishot io_uring reads"
    } else {
        "read(2) reads"
    };
    assert!(log.contains(want), "expected {want:?} in the log\n{log}");
}
#[test]
fn iperf3_tcp_both_directions_kernel() {
    iperf3(Napt::Kernel, "");
}
/// Reads with read(2), writes batched through io_uring (`tun.uring-read =
/// false`, and the fallback where the kernel has no multishot read).
#[test]
fn iperf3_read_syscalls_batched_writes_daemon() {
    let tun = format!(
        "\n[tun]\nname = \"nat64\"\nqueues = 2\noffload = {}\nuring-read = false\n",
        offloads_on()
    );
    let Some(t) = iperf3(Napt::Daemon, &tun) else {
        return;
    };
    let log = t.log("nat64.log");
    assert!(
        log.contains("read(2) reads, writes in batches of 32"),
        "{log}"
    );
}
/// The plain data path: one write(2) per packet (no io_uring batch) and
/// flows left where the kernel's hash puts them (ADR 0006, ADR 0005).
#[test]
fn iperf3_one_write_per_packet_daemon() {
    let tun = format!(
        "\n[tun]\nname = \"nat64\"\nqueues = 2\noffload = {}\nbatch = 1\nplace-flows = false\n",
        offloads_on()
    );
    iperf3(Napt::Daemon, &tun);
}

// ------------------------------------------------------------------ UDP ---

fn udp_echo(napt: Napt) {
    let Some(t) = Topo::new("udp", napt) else {
        return;
    };
    t.udp_echo4();
    t.start_nat64(&t.config(""));
    t.wait_path();
    let r = t.udp_client(200, &[format!("{CLIENT6},40000")]);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    let log = t.log("udp4.log");
    let want = if napt == Napt::Kernel {
        XLAT4
    } else {
        "203.0.113."
    };
    assert!(
        log.lines().any(|l| l.starts_with(want)),
        "server saw: {log}"
    );
}

#[test]
fn udp_echo_daemon() {
    udp_echo(Napt::Daemon)
}
#[test]
fn udp_echo_kernel() {
    udp_echo(Napt::Kernel)
}

/// RFC 7915 §4.1/§5.1: fragments translated one by one; a 4000-byte
/// datagram crosses both ways (IPv6 source fragmentation one way, IPv4
/// fragments refragmented to the IPv6 minimum MTU the other).
fn udp_fragmented(napt: Napt) {
    let Some(t) = Topo::new("udpfrag", napt) else {
        return;
    };
    t.udp_echo4();
    t.start_nat64(&t.config(""));
    t.wait_path();
    let r = t.udp_client(4000, &[format!("{CLIENT6},40001")]);
    assert!(r.ok, "{}{}\n{}", r.stdout, r.stderr, t.nat64_log_tail());
    assert!(t.log("udp4.log").contains(" 4000"), "{}", t.log("udp4.log"));
}

#[test]
fn udp_fragmented_daemon() {
    udp_fragmented(Napt::Daemon)
}
#[test]
fn udp_fragmented_kernel() {
    udp_fragmented(Napt::Kernel)
}

// ----------------------------------------------------------- ICMP / MTU ---

/// RFC 7915 §4.2 / RFC 6052: the translator's own Time Exceeded comes from prefix||gateway-v4.
fn traceroute(napt: Napt) {
    let Some((t, _)) = setup("traceroute", napt, "") else {
        return;
    };
    let out = t.ok(
        &t.c6,
        &format!("traceroute -6 -n -q 1 -w 2 -m 6 {SERVER4_V6}"),
    );
    let hop2 = out.lines().find(|l| l.trim_start().starts_with("2 "));
    assert!(
        hop2.is_some_and(|l| l.contains(GATEWAY4_V6)),
        "hop 2 should be {GATEWAY4_V6}:\n{out}"
    );
    assert!(out.contains(SERVER4_V6), "destination not reached:\n{out}");
    // The translator host's kernel is the next IPv4 hop; its Time Exceeded
    // must come from the translator's address (the TUN has gateway-v4),
    // not from an unrelated interface's (v4x, 198.51.100.1) embedded in
    // the prefix.
    let xlat4_v6 = "2001:db8:64::c633:6401";
    assert!(
        !out.contains(xlat4_v6),
        "a hop shows the translator host's underlay address {xlat4_v6}:\n{out}"
    );
}

#[test]
fn traceroute_shows_gateway_daemon() {
    traceroute(Napt::Daemon)
}
#[test]
fn traceroute_shows_gateway_kernel() {
    traceroute(Napt::Kernel)
}

/// RFC 7915 §4.2: the IPv4 path behind the translator has MTU
/// 1400 (xlat's link to server4). A TCP *upload* from the IPv6 client sends
/// 1440-byte segments: 1500-byte IPv6 packets become 1480-byte IPv4 packets
/// with DF, the xlat kernel answers Fragmentation Needed (MTU 1400) to the
/// pool address, that ICMPv4 error comes back through the TUN and the
/// translator turns it into an ICMPv6 Packet Too Big with MTU 1420 for the
/// client, whose TCP then shrinks its segments and completes. The download
/// direction (server4 → client, IPv4 PMTUD at the kernel) must work too.
fn pmtu(napt: Napt) {
    let Some(t) = Topo::new("pmtu", napt) else {
        return;
    };
    t.ok(&t.x, "ip link set v4x mtu 1400");
    let sum = t.http_server4(2);
    t.spawn(
        &t.s4,
        &[
            "socat",
            "-u",
            "TCP-LISTEN:9000,reuseaddr",
            "CREATE:/dev/null",
        ],
        "sink.log",
    );
    t.wait_listen(&t.s4, "9000", "t");
    t.start_nat64(&t.config(""));
    t.wait_path();
    let cap = t.dir.join("ptb.pcap");
    let dump = t.spawn(
        &t.c6,
        &[
            "tcpdump",
            "-i",
            "v6c",
            "-n",
            // deliver each packet at once (not when a ring block times
            // out), so stopping tcpdump right after the upload loses nothing
            "--immediate-mode",
            "-U",
            "-w",
            &cap.to_string_lossy(),
            "icmp6",
        ],
        "tcpdump.log",
    );
    // tcpdump prints "listening on" once its filter is in place
    let t0 = std::time::Instant::now();
    while !t.log("tcpdump.log").contains("listening") && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // 2 MiB upload over TCP with DF (Linux sets DF on TCP).
    t.ok(
        &t.c6,
        &format!("head -c 2097152 /dev/urandom | socat -u - 'TCP6:[{SERVER4_V6}]:9000'"),
    );
    std::thread::sleep(Duration::from_millis(500));
    t.signal(dump, libc::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    let out = t.sh(&t.c6, &format!("tcpdump -n -v -r {} 2>&1", cap.display()));
    let route = t.sh(&t.c6, &format!("ip -6 route get {SERVER4_V6}"));
    assert!(
        out.stdout.contains("packet too big, mtu 1420"),
        "no Packet Too Big with mtu 1420 captured during the TCP upload:\n{}\nroute: {}\n{}",
        out.stdout,
        route.stdout,
        t.log("tcpdump.log")
    );
    // The client's kernel took it: the path MTU is now 1420.
    assert!(route.stdout.contains("mtu 1420"), "{}", route.stdout);
    let got = t.ok(
        &t.c6,
        &format!("curl -sS --max-time 30 http://[{SERVER4_V6}]:8080/big.bin | sha256sum"),
    );
    assert_eq!(got.split_whitespace().next(), Some(sum.as_str()));
}

#[test]
fn pmtu_ptb_1420_daemon() {
    pmtu(Napt::Daemon)
}
#[test]
fn pmtu_ptb_1420_kernel() {
    pmtu(Napt::Kernel)
}

// ---------------------------------------------------------- daemon mode ---

/// RFC 6146 §3.1 static BIB: an IPv4 client reaches an IPv6 web server.
#[test]
fn static_bib_port_forward_daemon() {
    let Some(t) = Topo::new("static", Napt::Daemon) else {
        return;
    };
    t.http_server6("hello from client6\n");
    let extra = format!(
        "\n[[static]]\nproto = \"tcp\"\nv6 = \"[{CLIENT6}]:8080\"\nv4 = \"203.0.113.10:80\"\n"
    );
    t.start_nat64(&t.config(&extra));
    t.wait_path();
    let out = t.ok(&t.s4, "curl -sS --max-time 10 http://203.0.113.10/");
    assert_eq!(out, "hello from client6\n");
}

/// Pool affinity (RFC 6146 §3.5.1.1, paired address pooling): 50 IPv6 sources, two flows each; every source
/// keeps one pool address and the sources spread over the pool.
#[test]
fn pool_affinity_50_sources_daemon() {
    let Some(t) = Topo::new("affinity", Napt::Daemon) else {
        return;
    };
    let mut srcs = Vec::new();
    for i in 0..50 {
        let a = format!("2001:db8:1::{:x}", 0x100 + i);
        t.ok(&t.c6, &format!("ip addr add {a}/64 dev v6c nodad"));
        srcs.push(a);
    }
    t.udp_echo4();
    t.start_nat64(&t.config(""));
    t.wait_path();
    let specs: Vec<String> = srcs
        .iter()
        .flat_map(|a| [format!("{a},41000"), format!("{a},41001")])
        .collect();
    let r = t.udp_client(64, &specs);
    assert!(r.ok, "{}{}", r.stdout, r.stderr);
    let mut by_src: HashMap<String, HashSet<String>> = HashMap::new();
    for l in t.log("udp4.log").lines().skip(1) {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 4 {
            let src = f[2].split(',').next().unwrap_or_default().to_string();
            by_src.entry(src).or_default().insert(f[0].to_string());
        }
    }
    assert_eq!(by_src.len(), 50, "{by_src:?}");
    for (s, v4) in &by_src {
        assert_eq!(v4.len(), 1, "{s} used several pool addresses: {v4:?}");
    }
    let distinct: HashSet<&String> = by_src.values().flatten().collect();
    assert!(
        distinct.len() >= 25,
        "50 sources on only {} pool addresses",
        distinct.len()
    );
}

/// RFC 6146 §3.5.1: with short timeouts bindings expire and their ports
/// go back to the pool: a full 4-port pool refuses a 5th flow, then
/// serves it once the first four expired.
#[test]
fn short_timeouts_reuse_ports_daemon() {
    let Some(t) = Topo::new("timeouts", Napt::Daemon) else {
        return;
    };
    t.udp_echo4();
    let extra = "pool = [\"203.0.113.7/32\"]\nreap-interval-secs = 1\n\
                 [timeouts]\nudp = 2\n[ports]\nudp = \"2000-2003\"\n";
    let pid = t.start_nat64(&t.config(extra));
    t.wait_path();
    let four: Vec<String> = (0..4).map(|i| format!("{CLIENT6},{}", 42000 + i)).collect();
    let r = t.udp_client(64, &four);
    assert!(r.ok, "{}", r.stdout);
    let s = t.stats(pid);
    assert_eq!(s.get("bindings_udp"), Some(&4), "{s:?}");
    let fifth = vec![format!("{CLIENT6},42010")];
    let r = t.udp_client(64, &fifth);
    assert!(
        !r.ok,
        "a 5th flow on a full 4-port pool got through: {}",
        r.stdout
    );
    std::thread::sleep(Duration::from_secs(4));
    let s = t.stats(pid);
    assert_eq!(
        s.get("bindings_udp"),
        Some(&0),
        "bindings did not expire: {s:?}"
    );
    let r = t.udp_client(64, &fifth);
    assert!(
        r.ok,
        "port not reused after expiry: {}\n{}",
        r.stdout,
        t.nat64_log_tail()
    );
    let ports: HashSet<String> = t
        .log("udp4.log")
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect();
    assert!(
        ports
            .iter()
            .all(|p| ("2000"..="2003").contains(&p.as_str())),
        "{ports:?}"
    );
}

/// A malformed packet into the TUN is dropped and counted; the daemon
/// keeps serving.
#[test]
fn malformed_packets_dropped_and_counted_daemon() {
    let Some((t, pid)) = setup("malformed", Napt::Daemon, "") else {
        return;
    };
    let before = t.stats(pid);
    let script = support_dir().join("inject.py");
    let n = t.ok(
        &t.x,
        &format!("python3 {} nat64 {CLIENT6} {SERVER4_V6}", script.display()),
    );
    assert_eq!(n.trim(), "5");
    std::thread::sleep(Duration::from_millis(300));
    let after = t.stats(pid);
    assert!(
        after["drops_total"] >= before["drops_total"] + 5,
        "before {before:?}\nafter {after:?}"
    );
    let named: u64 = [
        "truncated",
        "bad_version",
        "bad_length",
        "bad_l4_header",
        "bad_ipv4_header_length",
    ]
    .iter()
    .map(|r| after.get(&format!("drop.{r}")).copied().unwrap_or(0))
    .sum();
    assert!(
        named >= 5,
        "malformed drops not under their reasons: {after:?}"
    );
    assert!(t.alive(pid));
    t.ok(&t.c6, &format!("ping -6 -n -c 1 -W 2 {SERVER4_V6}"));
}

// ---------------------------------------------------------- kernel mode ---

/// docs/operator.md §2.2: kernel mode installs `table ip nat64_nat64` while running, the server
/// sees the xlat's egress address, and SIGTERM removes the table.
#[test]
fn kernel_nft_table_lifecycle_and_masquerade() {
    let Some(t) = Topo::new("nft", Napt::Kernel) else {
        return;
    };
    t.udp_echo4();
    let pid = t.start_nat64(&t.config(""));
    t.wait_path();
    let rules = t.ok(&t.x, "nft list table ip nat64_nat64");
    assert!(
        rules.contains("masquerade") && rules.contains(INNER_POOL),
        "{rules}"
    );
    let r = t.udp_client(100, &[format!("{CLIENT6},40100")]);
    assert!(r.ok, "{}", r.stdout);
    assert!(t
        .log("udp4.log")
        .lines()
        .skip(1)
        .all(|l| l.starts_with(XLAT4)));
    assert_eq!(t.stop_nat64(pid), 0, "{}", t.nat64_log_tail());
    assert!(
        !t.sh(&t.x, "nft list table ip nat64_nat64").ok,
        "nft table left behind"
    );
    let routes = t.ok(&t.x, "ip route; ip -6 route");
    assert!(
        !routes.contains(INNER_POOL) && !routes.contains("2001:db8:64::/96"),
        "{routes}"
    );
}

// ------------------------------------------------------------ bad config ---

fn check_config(text: &str) -> (i32, String) {
    let dir = std::env::temp_dir().join(format!("n64cfg{}-{}", std::process::id(), text.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("bad.toml");
    std::fs::write(&p, text).unwrap();
    let mut out = String::new();
    let mut code = 0;
    for sub in ["check", "run"] {
        let o = std::process::Command::new(bin())
            .args([sub, "--config", &p.to_string_lossy()])
            .output()
            .unwrap();
        code = o.status.code().unwrap_or(-1);
        assert_ne!(code, 0, "nat64 {sub} accepted a bad config");
        out = String::from_utf8_lossy(&o.stderr).into_owned();
    }
    let _ = std::fs::remove_dir_all(&dir);
    (code, out)
}

/// RFC 6052 §3.1: WKP with a 10.0.0.0/24 pool is refused at startup.
#[test]
fn bad_config_wkp_with_private_pool() {
    let (_, err) = check_config(
        "prefix = \"64:ff9b::/96\"\npool = [\"10.0.0.0/24\"]\ngateway-v4 = \"192.0.2.1\"\n",
    );
    assert!(err.contains("`pool` = \"10.0.0.0/24\""), "{err}");
    assert!(
        err.contains("RFC 6052") && err.contains("wkp-strict"),
        "{err}"
    );
}

#[test]
fn bad_config_unknown_key() {
    let (_, err) = check_config(
        "prefix = \"2001:db8:64::/96\"\npool = [\"192.0.2.0/24\"]\ngateway-v4 = \"198.51.100.1\"\n\
         [tun]\nnmae = \"x\"\n",
    );
    assert!(
        err.contains("unknown field `nmae`") && err.contains("line 5"),
        "{err}"
    );
}

/// SIGHUP reloads static BIB entries: one added to the file at run time
/// starts forwarding without a restart.
#[test]
fn sighup_adds_static_entry_daemon() {
    let Some(t) = Topo::new("sighup", Napt::Daemon) else {
        return;
    };
    t.http_server6("reloaded\n");
    let pid = t.start_nat64(&t.config(""));
    t.wait_path();
    assert!(!t.sh(&t.s4, "curl -sS --max-time 3 http://203.0.113.20/").ok);
    let extra = format!(
        "\n[[static]]\nproto = \"tcp\"\nv6 = \"[{CLIENT6}]:8080\"\nv4 = \"203.0.113.20:80\"\n"
    );
    std::fs::write(t.dir.join("nat64.toml"), t.config(&extra)).unwrap();
    t.signal(pid, libc::SIGHUP);
    let t0 = std::time::Instant::now();
    while !t.log("nat64.log").contains("SIGHUP: reloaded") {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "{}",
            t.nat64_log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = t.ok(&t.s4, "curl -sS --max-time 10 http://203.0.113.20/");
    assert_eq!(out, "reloaded\n");
}

/// docs/operator.md §2.2: a kernel-mode [[map]] works from the IPv4 side too: an IPv4
/// client reaches the statically mapped IPv6 host.
#[test]
fn kernel_static_map_reachable_from_ipv4() {
    let Some(t) = Topo::new("kmap", Napt::Kernel) else {
        return;
    };
    t.http_server6("mapped\n");
    t.ok(&t.s4, &format!("ip route add 100.64.255.10/32 via {XLAT4}"));
    let extra = format!("\n[[map]]\nv6 = \"{CLIENT6}\"\nv4 = \"100.64.255.10\"\n");
    t.start_nat64(&t.config(&extra));
    t.wait_path();
    let out = t.ok(&t.s4, "curl -sS --max-time 10 http://100.64.255.10:8080/");
    assert_eq!(out, "mapped\n");
}

// ------------------------------------------------------ other protocols ---

/// Issue 12 §1 / RFC 7915 §4.5, §5.5: in kernel mode (1:1 inner leases)
/// a protocol without ports — here an experimental protocol number, 253,
/// answered by a raw-socket echo on the IPv4 server — crosses the
/// translator both ways (the host's masquerade NATs it by address); daemon
/// NAPT drops it as `unsupported_protocol`.
fn other_protocol(napt: Napt) {
    let Some((t, pid)) = setup("rawproto", napt, "") else {
        return;
    };
    let script = support_dir().join("rawproto.py");
    let log = t.dir.join("raw4.log");
    t.spawn(
        &t.s4,
        &[
            "python3",
            &script.to_string_lossy(),
            "echo4",
            SERVER4,
            "253",
            &log.to_string_lossy(),
        ],
        "raw4.out",
    );
    let t0 = std::time::Instant::now();
    while !t.log("raw4.log").contains("ready") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "raw echo did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = t.ok(
        &t.c6,
        &format!("python3 {} send6 {SERVER4_V6} 253 3", script.display()),
    );
    let s = t.stats(pid);
    match napt {
        Napt::Kernel => {
            assert!(out.contains("answered 3 of 3"), "{out}\n{s:?}");
            // The server saw the host's masqueraded address.
            assert!(t.log("raw4.log").contains(XLAT4), "{}", t.log("raw4.log"));
        }
        Napt::Daemon => {
            assert!(out.contains("answered 0 of 3"), "{out}");
            assert_eq!(
                s.get("drop.unsupported_protocol").copied(),
                Some(3),
                "{s:?}"
            );
        }
    }
}

#[test]
fn other_protocol_translated_kernel() {
    other_protocol(Napt::Kernel)
}
#[test]
fn other_protocol_dropped_daemon() {
    other_protocol(Napt::Daemon)
}
