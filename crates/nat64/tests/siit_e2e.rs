//! End-to-end tests of the stateless mode, `napt = "none"` (SIIT: RFC 7915,
//! RFC 6052 and RFC 7757 explicit address mappings), with the real `nat64`
//! binary between an IPv6-only client and an IPv4-only server in network
//! namespaces (see `support`). Root only: without root every test prints a
//! loud SKIP and passes.
//!
//! In SIIT mode the client is 203.0.113.2 to the IPv4 side (the EAM
//! 203.0.113.0/28 = 2001:db8:1::/124 of `Topo::config`), the server is
//! prefix || 198.51.100.2 to the IPv6 side, and either side can start.

mod support;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

/// The translator's own IPv6 address when `icmp-source-v6` is set apart
/// from prefix || gateway-v4 (routed to the xlat namespace by the client).
const OWN6: &str = "2001:db8:ff::1";

/// A topology whose IPv6 addresses are past DAD (see `Topo::wait_dad`:
/// one-shot probes must not meet the namespaces' warm-up).
fn topo(test: &str, mode: impl Into<Mode>) -> Option<Topo> {
    let t = Topo::new(test, mode)?;
    t.wait_dad();
    Some(t)
}

fn setup(test: &str, extra: &str) -> Option<(Topo, u32)> {
    let t = topo(test, Napt::Siit)?;
    let pid = t.start_nat64(&t.config(extra));
    t.wait_path();
    Some((t, pid))
}

/// Polls `cond` every 50 ms for up to `limit`; panics with `what` and the
/// nat64 log tail when it never holds.
fn wait_for(t: &Topo, limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(
            t0.elapsed() < limit,
            "timed out ({limit:?}) waiting for {what}\n{}",
            t.nat64_log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `cmd` in `ns` until it succeeds (for a path to come up).
fn wait_ok(t: &Topo, ns: &str, cmd: &str) {
    let t0 = Instant::now();
    while !t.sh(ns, cmd).ok {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "never succeeded in {ns}: {cmd}\n{}",
            t.nat64_log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn counter(s: &std::collections::HashMap<String, u64>, k: &str) -> u64 {
    s.get(k).copied().unwrap_or(0)
}

/// The number of explicit mappings in the "nat64 running" line.
fn running_mappings(t: &Topo) -> usize {
    let log = t.log("nat64.log");
    log.lines()
        .find(|l| l.contains("nat64 running"))
        .and_then(|l| {
            l.split("(stateless) ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| {
            panic!(
                "no mapping count in the running line\n{}",
                t.nat64_log_tail()
            )
        })
}

/// Lines of python's http.server log that are requests, by client address.
fn http_clients(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("\"GET "))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

/// `ping … | tail`: the "N received" count.
fn received(out: &str) -> u32 {
    out.lines()
        .find_map(|l| {
            l.split(", ")
                .nth(1)?
                .strip_suffix(" received")?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

// ---------------------------------------------------- 1. both ways, own ---

/// SIIT both ways: ping and HTTP from the IPv6 client to prefix || server
/// (the server sees the client's EAM address, 203.0.113.2) and from the
/// IPv4 server to 203.0.113.2 (the client sees prefix || server). The
/// translator's own addresses, prefix || gateway-v4 and a separate
/// `icmp-source-v6`, answer pings themselves (nothing crosses to IPv4); UDP
/// and TCP to them get an ICMPv6 Port Unreachable (the sockets see
/// ECONNREFUSED) and count as `drop.to_own_address`, the echoes do not.
#[test]
fn siit_ping_curl_both_ways_and_own_addresses() {
    let Some(t) = topo("siitboth", Napt::Siit) else {
        return;
    };
    let sum = t.http_server4(1);
    t.http_server6("hello from client6\n");
    t.ok(&t.c6, &format!("ip -6 route add {OWN6}/128 via {XLAT6}"));
    let pid = t.start_nat64(&t.config(&format!("icmp-source-v6 = \"{OWN6}\"\n")));
    assert_eq!(running_mappings(&t), 1, "{}", t.nat64_log_tail());
    t.wait_path();
    // No nft table in stateless mode.
    let nft = t.ok(&t.x, "nft list tables");
    assert!(!nft.contains("nat64"), "nft table in SIIT mode: {nft}");

    // Ping both ways.
    let out = t.ok(
        &t.c6,
        &format!("ping -6 -n -c 3 -i 0.2 -W 2 -I {CLIENT6} {SERVER4_V6}"),
    );
    assert_eq!(received(&out), 3, "{out}");
    let out = t.ok(&t.s4, &format!("ping -n -c 3 -i 0.2 -W 2 {CLIENT4_EAM}"));
    assert_eq!(received(&out), 3, "{out}");
    assert!(
        out.contains(&format!("bytes from {CLIENT4_EAM}:")),
        "answers from the client's EAM address: {out}"
    );

    // HTTP IPv6 -> IPv4: content intact, the server saw 203.0.113.2.
    let out = t.ok(
        &t.c6,
        &format!(
            "curl -sS --max-time 20 --interface {CLIENT6} http://[{SERVER4_V6}]:8080/index.html"
        ),
    );
    assert_eq!(out, "hello from server4\n", "{}", t.nat64_log_tail());
    let out = t.ok(
        &t.c6,
        &format!("curl -sS --max-time 30 --interface {CLIENT6} http://[{SERVER4_V6}]:8080/big.bin | sha256sum"),
    );
    assert_eq!(
        out.split_whitespace().next(),
        Some(sum.as_str()),
        "{out}\n{}",
        t.nat64_log_tail()
    );
    let clients = http_clients(&t.log("http4.log"));
    assert_eq!(clients.len(), 2, "{}", t.log("http4.log"));
    assert!(
        clients.iter().all(|c| c == CLIENT4_EAM),
        "the IPv4 server must see the client's EAM address {CLIENT4_EAM}: {clients:?}"
    );

    // HTTP IPv4 -> IPv6: the client saw prefix || server.
    let out = t.ok(
        &t.s4,
        &format!("curl -sS --max-time 20 http://{CLIENT4_EAM}:8080/"),
    );
    assert_eq!(out, "hello from client6\n", "{}", t.nat64_log_tail());
    let clients = http_clients(&t.log("http6.log"));
    assert_eq!(
        clients,
        vec![SERVER4_V6.to_string()],
        "{}",
        t.log("http6.log")
    );

    // The translator's own addresses answer echo requests themselves: no
    // IPv4 packet crosses the TUN (the xlat host, which holds gateway-v4 on
    // the TUN, never sees them) and the IPv4 side sees nothing.
    let before = t.stats(pid);
    let tun = tun_name(&t.config(""));
    let dumps = [
        t.spawn(
            &t.x,
            &["tcpdump", "-i", &tun, "-n", "-l", "--immediate-mode", "ip"],
            "own_tun.txt",
        ),
        t.spawn(
            &t.s4,
            &[
                "tcpdump",
                "-i",
                "v4s",
                "-n",
                "-l",
                "--immediate-mode",
                "icmp",
            ],
            "own4.txt",
        ),
    ];
    for log in ["own_tun.txt", "own4.txt"] {
        wait_for(&t, Duration::from_secs(10), "tcpdump", || {
            t.log(log).contains("listening on")
        });
    }
    let before_ping = t.stats(pid);
    for own in [GATEWAY4_V6, OWN6] {
        let out = t.ok(
            &t.c6,
            &format!("ping -6 -n -c 3 -i 0.2 -W 2 -I {CLIENT6} {own}"),
        );
        assert_eq!(received(&out), 3, "{own}: {out}\n{}", t.nat64_log_tail());
        assert!(out.contains(&format!("bytes from {own}:")), "{out}");
    }
    // Answered, not translated.
    let after = t.stats(pid);
    assert_eq!(
        counter(&after, "echo_answered") - counter(&before_ping, "echo_answered"),
        6,
        "{after:?}"
    );
    assert_eq!(
        counter(&after, "translated_6to4"),
        counter(&before_ping, "translated_6to4"),
        "{after:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    for d in dumps {
        t.signal(d, libc::SIGTERM);
        let _ = t.wait_exit(d, Duration::from_secs(5));
    }
    for log in ["own_tun.txt", "own4.txt"] {
        let seen = t.log(log);
        assert!(
            !seen.contains(" IP "),
            "echoes to the translator's own addresses went out as IPv4 ({log}):\n{seen}"
        );
    }

    // UDP to an own address: ICMPv6 Port Unreachable, counted.
    let probe = support_dir().join("udp_probe.py");
    for (i, own) in [GATEWAY4_V6, OWN6].iter().enumerate() {
        let out = t.ok(
            &t.c6,
            &format!(
                "python3 {} {CLIENT6} {} {own} 9",
                probe.display(),
                40100 + i
            ),
        );
        assert!(
            out.contains("ECONNREFUSED"),
            "UDP to {own}: want Port Unreachable (ECONNREFUSED), got {out}\n{}",
            t.nat64_log_tail()
        );
    }
    // TCP too: the SYN gets Port Unreachable (connect: ECONNREFUSED).
    let out = t.sh(
        &t.c6,
        &format!(
            "python3 -c 'import socket; s = socket.create_connection((\"{GATEWAY4_V6}\", 80), 5, \
             (\"{CLIENT6}\", 0))'"
        ),
    );
    assert!(
        out.stderr.contains("ConnectionRefusedError"),
        "TCP to {GATEWAY4_V6}: {}{}",
        out.stdout,
        out.stderr
    );
    let after = t.stats(pid);
    let own = counter(&after, "drop.to_own_address") - counter(&before, "drop.to_own_address");
    assert_eq!(
        own, 3,
        "two UDP datagrams and one TCP SYN to own addresses: {before:?} -> {after:?}"
    );
}

// ---------------------------------------------------- 2. EAM ranges ---

const EAM24_V4: &str = "203.0.113.0";
const EAM24_V6: &str = "2001:db8:1::100";

/// RFC 7757: one EAM 203.0.113.0/24 = 2001:db8:1::100/120 maps 256 hosts.
/// IPv4 -> IPv6: an echo request to each of the 256 IPv4 addresses is
/// answered from that address. IPv6 -> IPv4: a datagram from each of the
/// 256 IPv6 hosts reaches the IPv4 server from exactly its own IPv4 form
/// (the payload names the IPv6 source, the server log the IPv4 one).
/// Then a /16 = /112 EAM loads as one entry (`nat64 check`, the running
/// line) and translates the hosts at both ends of the /16.
#[test]
fn eam_24_120_maps_256_hosts_both_ways() {
    let Some(t) = topo("eam24", Napt::Siit) else {
        return;
    };
    let v4_0: Ipv4Addr = EAM24_V4.parse().unwrap();
    let v6_0: Ipv6Addr = EAM24_V6.parse().unwrap();
    let v4 = |i: u32| Ipv4Addr::from(u32::from(v4_0) + i);
    let v6 = |i: u32| Ipv6Addr::from(u128::from(v6_0) + u128::from(i));
    let batch: String = (0..256)
        .map(|i| format!("addr add {}/64 dev v6c nodad preferred_lft 0\n", v6(i)))
        .collect();
    std::fs::write(t.dir.join("addrs.batch"), batch).unwrap();
    t.ok(
        &t.c6,
        &format!("ip -batch {}", t.dir.join("addrs.batch").display()),
    );
    t.udp_echo4();
    let extra = format!("\n[[map]]\nv4 = \"{EAM24_V4}/24\"\nv6 = \"{EAM24_V6}/120\"\n");
    t.start_nat64(&t.config(&extra));
    assert_eq!(running_mappings(&t), 1, "{}", t.nat64_log_tail());
    wait_ok(&t, &t.s4, &format!("ping -n -c 1 -W 1 {}", v4(1)));

    let sweep = support_dir().join("sweep.py");
    let t0 = Instant::now();
    let out = t.ok(
        &t.s4,
        &format!("python3 {} ping4 {EAM24_V4} 256", sweep.display()),
    );
    eprintln!("ping4 sweep of 256 hosts: {:?}", t0.elapsed());
    assert!(
        out.contains("answered 256 of 256; wrong source 0"),
        "IPv4 -> IPv6 over the /24 EAM:\n{out}\n{}",
        t.nat64_log_tail()
    );

    let t0 = Instant::now();
    let out = t.ok(
        &t.c6,
        &format!(
            "python3 {} udp6 {SERVER4_V6} 7007 {EAM24_V6} 256",
            sweep.display()
        ),
    );
    eprintln!("udp6 sweep from 256 hosts: {:?}", t0.elapsed());
    assert!(
        out.contains("answered 256 of 256; wrong source 0"),
        "IPv6 -> IPv4 over the /24 EAM:\n{out}\n{}",
        t.nat64_log_tail()
    );
    // udp4.log: "PEER_IP PEER_PORT TAG LEN", TAG = the IPv6 source.
    let log = t.log("udp4.log");
    let mut seen = BTreeSet::new();
    for l in log.lines().filter(|l| *l != "ready") {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (peer, src6): (Ipv4Addr, Ipv6Addr) = (f[0].parse().unwrap(), f[2].parse().unwrap());
        let off = u128::from(src6) - u128::from(v6_0);
        assert!(off < 256, "unexpected IPv6 source {src6}: {l}");
        assert_eq!(
            peer,
            v4(off as u32),
            "{src6} must appear as {}",
            v4(off as u32)
        );
        seen.insert(peer);
    }
    let want: BTreeSet<Ipv4Addr> = (0..256).map(v4).collect();
    assert_eq!(
        seen,
        want,
        "the server saw exactly the 256 mapped sources\n{}",
        t.nat64_log_tail()
    );
    drop(t);

    // A /16 = /112 mapping is one entry.
    let Some(t) = topo("eam16", Napt::Siit) else {
        return;
    };
    let (net16, net112) = ("203.0.0.0/16", "2001:db8:1::1:0/112");
    let ends = [
        ("203.0.0.1", "2001:db8:1::1:1"),
        ("203.0.255.254", "2001:db8:1::1:fffe"),
    ];
    for (_, a6) in ends {
        t.ok(
            &t.c6,
            &format!("ip addr add {a6}/64 dev v6c nodad preferred_lft 0"),
        );
    }
    t.ok(&t.s4, &format!("ip route add {net16} via {XLAT4}"));
    t.udp_echo4();
    let cfg = t.config(&format!("\n[[map]]\nv4 = \"{net16}\"\nv6 = \"{net112}\"\n"));
    let path = t.dir.join("eam16.toml");
    std::fs::write(&path, &cfg).unwrap();
    let o = std::process::Command::new(bin())
        .args(["check", "--config", &path.to_string_lossy()])
        .output()
        .unwrap();
    let (so, se) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(o.status.success(), "nat64 check: {so}\n{se}");
    assert_eq!(so.matches("[[map]]").count(), 1, "{so}");
    assert!(
        so.contains(&format!("v4 = \"{net16}\"")) && so.contains(&format!("v6 = \"{net112}\"")),
        "{so}"
    );
    t.start_nat64(&cfg);
    t.route_into_tun(net16, &cfg);
    assert_eq!(running_mappings(&t), 1, "{}", t.nat64_log_tail());
    for (a4, a6) in ends {
        wait_ok(&t, &t.s4, &format!("ping -n -c 1 -W 1 {a4}"));
        let out = t.ok(&t.s4, &format!("ping -n -c 2 -i 0.2 -W 2 {a4}"));
        assert_eq!(received(&out), 2, "{a4}: {out}");
        assert!(out.contains(&format!("bytes from {a4}:")), "{out}");
        let out = t.ok(
            &t.c6,
            &format!("python3 {} udp6 {SERVER4_V6} 7007 {a6} 1", sweep.display()),
        );
        assert!(
            out.contains("answered 1 of 1; wrong source 0"),
            "{a6}: {out}"
        );
        let log = t.log("udp4.log");
        assert!(
            log.lines().any(
                |l| l.starts_with(&format!("{a4} ")) && l.split_whitespace().nth(2) == Some(a6)
            ),
            "{a6} must reach the server as {a4}:\n{log}"
        );
    }
}

// ---------------------------------------------------- 3. SIGHUP ---

/// One line of `tcpdump -tt`: (epoch seconds, destination address) of an
/// ICMPv6 echo request.
fn echo_request(line: &str) -> Option<(f64, String)> {
    if !line.contains("echo request") {
        return None;
    }
    let mut w = line.split_whitespace();
    let ts: f64 = w.next()?.parse().ok()?;
    let dst = w.nth(3)?.trim_end_matches(':').to_string();
    Some((ts, dst))
}

/// A map-file entry moved to another IPv6 host (203.0.113.50 = ::50 →
/// 203.0.113.50 = ::51) by rewriting the file and SIGHUP: the IPv4
/// server's 10 ms ping stream reaches the new host within 200 ms of the
/// signal and keeps being answered (the ping never stops).
#[test]
fn sighup_replaces_map_file_entry_within_200ms() {
    let Some(t) = topo("sighupeam", Napt::Siit) else {
        return;
    };
    let (a4, old6, new6) = ("203.0.113.50", "2001:db8:1::50", "2001:db8:1::51");
    for a in [old6, new6] {
        t.ok(
            &t.c6,
            &format!("ip addr add {a}/64 dev v6c nodad preferred_lft 0"),
        );
    }
    let map = t.dir.join("eam.map");
    std::fs::write(&map, format!("# test map\nmap {a4} {old6}\n")).unwrap();
    let pid = t.start_nat64(&t.config(&format!("map-file = \"{}\"\n", map.display())));
    assert_eq!(
        running_mappings(&t),
        2,
        "the config's EAM and the map file's line: {}",
        t.nat64_log_tail()
    );
    t.wait_path();
    wait_ok(&t, &t.s4, &format!("ping -n -c 1 -W 1 {a4}"));

    let dump = t.spawn(
        &t.c6,
        &[
            "tcpdump",
            "-i",
            "v6c",
            "-n",
            "-l",
            "--immediate-mode",
            "-tt",
            "--time-stamp-precision=micro",
            "icmp6 and (ip6[40] == 128 or ip6[40] == 129)",
        ],
        "dump.txt",
    );
    wait_for(&t, Duration::from_secs(10), "tcpdump on v6c", || {
        t.log("dump.txt").contains("listening on")
    });
    let count = 400;
    let ping = t.spawn(
        &t.s4,
        &[
            "ping",
            "-D",
            "-n",
            "-i",
            "0.01",
            "-W",
            "1",
            "-c",
            &count.to_string(),
            a4,
        ],
        "ping.txt",
    );
    // Let the stream settle on the old host.
    wait_for(
        &t,
        Duration::from_secs(10),
        "50 echoes to the old host",
        || {
            t.log("dump.txt")
                .lines()
                .filter_map(echo_request)
                .filter(|(_, d)| d == old6)
                .count()
                >= 50
        },
    );
    let tmp = t.dir.join("eam.map.new");
    std::fs::write(&tmp, format!("# moved\nmap {a4} {new6}\n")).unwrap();
    std::fs::rename(&tmp, &map).unwrap();
    let hup = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    t.signal(pid, libc::SIGHUP);
    wait_for(&t, Duration::from_secs(5), "SIGHUP: reloaded", || {
        t.log("nat64.log").contains("SIGHUP: reloaded")
    });
    assert!(
        t.wait_exit(ping, Duration::from_secs(30)).is_some(),
        "ping did not finish"
    );
    std::thread::sleep(Duration::from_millis(300));
    t.signal(dump, libc::SIGTERM);
    let _ = t.wait_exit(dump, Duration::from_secs(5));

    let requests: Vec<(f64, String)> = t.log("dump.txt").lines().filter_map(echo_request).collect();
    let first_new = requests
        .iter()
        .find(|(_, d)| d == new6)
        .map(|(ts, _)| *ts)
        .unwrap_or_else(|| {
            panic!(
                "no echo request reached {new6} after SIGHUP\n{}",
                t.nat64_log_tail()
            )
        });
    let old_after: Vec<f64> = requests
        .iter()
        .filter(|(ts, d)| d == old6 && *ts > hup)
        .map(|(ts, _)| (ts - hup) * 1000.0)
        .collect();
    let new_before = requests
        .iter()
        .filter(|(ts, d)| d == new6 && *ts < hup)
        .count();
    let to_new = requests.iter().filter(|(_, d)| d == new6).count();
    let latency_ms = (first_new - hup) * 1000.0;
    let pinged = t.log("ping.txt");
    let got = received(&pinged);
    // Replies after the switch, by ping's own (-D) receive timestamps.
    let replies_after = pinged
        .lines()
        .filter(|l| l.contains(&format!("bytes from {a4}:")))
        .filter_map(|l| l.strip_prefix('[')?.split(']').next()?.parse::<f64>().ok())
        .filter(|ts| *ts > first_new)
        .count();
    eprintln!(
        "SIGHUP map-file switch: first echo request at {new6} {latency_ms:.1} ms after the \
         signal; {} requests still at {old6} after it (last at {:.1} ms); {to_new} requests \
         at {new6}; ping {got}/{count} answered, {replies_after} after the switch",
        old_after.len(),
        old_after.last().copied().unwrap_or(0.0),
    );
    assert_eq!(new_before, 0, "{new6} got requests before the SIGHUP");
    assert!(
        latency_ms < 200.0,
        "first request at {new6} {latency_ms:.1} ms after SIGHUP (limit 200 ms)\n{}",
        t.nat64_log_tail()
    );
    assert!(
        got + 10 >= count,
        "ping lost {} of {count} across the switch:\n{}",
        count - got,
        pinged.lines().rev().take(3).collect::<Vec<_>>().join("\n")
    );
    assert!(
        replies_after >= 100,
        "only {replies_after} replies after the switch\n{}",
        t.nat64_log_tail()
    );
}

// ------------------------------------------------- 4. other protocols ---

/// GRE, SCTP and IP protocol 253 (RFC 7915 §4.5/§5.5: protocols without
/// ports are translated at the IP layer).
const PROTOS: [u8; 3] = [47, 132, 253];

/// Starts a raw-socket echo of `proto` bound to `bind` in `ns`
/// (`echo4`/`echo6`); returns its PID and log name.
fn raw_echo(t: &Topo, ns: &str, mode: &str, bind: &str, proto: u8) -> (u32, String) {
    let script = support_dir().join("rawproto.py");
    let log = format!("{mode}-{proto}.log");
    let path = t.dir.join(&log);
    let pid = t.spawn(
        ns,
        &[
            "python3",
            &script.to_string_lossy(),
            mode,
            bind,
            &proto.to_string(),
            &path.to_string_lossy(),
        ],
        &format!("{mode}-{proto}.out"),
    );
    wait_for(t, Duration::from_secs(10), "the raw echo", || {
        t.log(&log).contains("ready")
    });
    (pid, log)
}

fn stop(t: &Topo, pid: u32) {
    t.signal(pid, libc::SIGTERM);
    assert!(
        t.wait_exit(pid, Duration::from_secs(5)).is_some(),
        "a raw echo did not stop"
    );
}

/// `rawproto.py send4|send6 DST PROTO 3 SRC` in `ns`: every packet must
/// come back unchanged from `dst`.
fn raw_send(t: &Topo, ns: &str, mode: &str, dst: &str, proto: u8, src: &str) {
    let script = support_dir().join("rawproto.py");
    let out = t.ok(
        ns,
        &format!("python3 {} {mode} {dst} {proto} 3 {src}", script.display()),
    );
    assert!(
        out.contains(&format!("answered 3 of 3; from {dst}: 3")),
        "protocol {proto} {mode} to {dst}: {out}\n{}",
        t.nat64_log_tail()
    );
}

/// The peers an echo log recorded (after "ready").
fn echo_peers(t: &Topo, log: &str) -> Vec<String> {
    t.log(log)
        .lines()
        .filter(|l| *l != "ready")
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

/// Raw packets of protocols 47, 132 and 253 cross the translator both
/// ways, payload compared byte for byte, source checked: in SIIT mode the
/// server sees the client's EAM address and the client prefix || server;
/// in kernel NAPT mode the server sees the masquerading host (a lease,
/// IPv6 -> IPv4) and reaches the client through a `[[map]]` static entry
/// (IPv4 -> IPv6). Then, if this kernel has GRE, a real GRE tunnel across
/// SIIT: `gre` on the server, `ip6gre` on the client.
#[test]
fn other_protocols_cross_siit_and_kernel_both_ways() {
    // ---- SIIT.
    let Some((t, pid)) = setup("protosiit", "") else {
        return;
    };
    // One echo at a time: two echoes of one protocol would answer each
    // other forever.
    for p in PROTOS {
        let (e4, l4) = raw_echo(&t, &t.s4, "echo4", SERVER4, p);
        raw_send(&t, &t.c6, "send6", SERVER4_V6, p, CLIENT6);
        stop(&t, e4);
        let peers = echo_peers(&t, &l4);
        assert!(
            peers.len() == 3 && peers.iter().all(|a| a == CLIENT4_EAM),
            "SIIT protocol {p}: the server must see {CLIENT4_EAM}: {peers:?}"
        );
        let (e6, l6) = raw_echo(&t, &t.c6, "echo6", CLIENT6, p);
        raw_send(&t, &t.s4, "send4", CLIENT4_EAM, p, SERVER4);
        stop(&t, e6);
        let peers = echo_peers(&t, &l6);
        assert!(
            peers.len() == 3 && peers.iter().all(|a| a == SERVER4_V6),
            "SIIT protocol {p}: the client must see {SERVER4_V6}: {peers:?}"
        );
    }
    let s = t.stats(pid);
    assert_eq!(counter(&s, "drop.unsupported_protocol"), 0, "{s:?}");
    gre_tunnel_over_siit(&t);
    drop(t);

    // ---- kernel NAPT: IPv6 -> IPv4 from CLIENT6_B through a lease (and
    // the host's masquerade), IPv4 -> IPv6 to CLIENT6 through a static map.
    let Some(t) = topo("protokernel", Napt::Kernel) else {
        return;
    };
    let mapped = "203.0.113.10";
    t.ok(&t.s4, &format!("ip route add {mapped}/32 via {XLAT4}"));
    let pid = t.start_nat64(&t.config(&format!(
        "\n[[map]]\nv6 = \"{CLIENT6}\"\nv4 = \"{mapped}\"\n"
    )));
    t.wait_path();
    for p in PROTOS {
        let (e4, l4) = raw_echo(&t, &t.s4, "echo4", SERVER4, p);
        raw_send(&t, &t.c6, "send6", SERVER4_V6, p, CLIENT6_B);
        stop(&t, e4);
        let peers = echo_peers(&t, &l4);
        assert!(
            peers.len() == 3 && peers.iter().all(|a| a == XLAT4),
            "kernel protocol {p}: the server must see the masquerade {XLAT4}: {peers:?}"
        );
        let (e6, l6) = raw_echo(&t, &t.c6, "echo6", CLIENT6, p);
        raw_send(&t, &t.s4, "send4", mapped, p, SERVER4);
        stop(&t, e6);
        let peers = echo_peers(&t, &l6);
        assert!(
            peers.len() == 3 && peers.iter().all(|a| a == SERVER4_V6),
            "kernel protocol {p}: the client must see {SERVER4_V6}: {peers:?}"
        );
    }
    let s = t.stats(pid);
    assert_eq!(counter(&s, "drop.unsupported_protocol"), 0, "{s:?}");
}

/// GRE payloads are the same in both families, so an IPv4 `gre` tunnel on
/// the server (remote: the client's EAM address) and an `ip6gre` tunnel on
/// the client (remote: prefix || server) are one tunnel across SIIT.
fn gre_tunnel_over_siit(t: &Topo) {
    let g4 = t.sh(
        &t.s4,
        &format!("ip link add n64gre type gre remote {CLIENT4_EAM} local {SERVER4} ttl 64"),
    );
    let g6 = t.sh(
        &t.c6,
        &format!(
            "ip link add n64gre type ip6gre remote {SERVER4_V6} local {CLIENT6} \
             encaplimit none hoplimit 64"
        ),
    );
    if !g4.ok || !g6.ok {
        eprintln!(
            "\n*** SKIP (kernel lacks gre/ip6gre): the real GRE tunnel across SIIT was not \
             run; `ip link add type gre`: {} `ip link add type ip6gre`: {} (the raw-socket \
             protocol 47 exchange above did run) ***\n",
            if g4.ok { "ok" } else { g4.stderr.trim() },
            if g6.ok { "ok" } else { g6.stderr.trim() },
        );
        return;
    }
    t.ok(
        &t.s4,
        "ip addr add 192.0.2.202/30 dev n64gre && ip link set n64gre up",
    );
    t.ok(
        &t.c6,
        "ip addr add 192.0.2.201/30 dev n64gre && ip link set n64gre up",
    );
    let out = t.sh(&t.c6, "ping -n -c 3 -i 0.2 -W 2 192.0.2.202");
    assert_eq!(
        received(&out.stdout),
        3,
        "ping through gre/ip6gre across SIIT: {}{}\n{}",
        out.stdout,
        out.stderr,
        t.nat64_log_tail()
    );
    eprintln!("GRE tunnel across SIIT: 3 of 3 pings answered");
}

// ------------------------------------------------------ import-tayga run ---

/// Issue 12 §2, as a Tayga user would: a tayga.conf with every directive
/// (`map` host and range lines, a `map-file` under `data-dir`,
/// `dynamic-pool` holding `ipv4-addr`, `ipv6-addr`, `wkpf-strict`,
/// `udp-cksum-mode`, `offlink-mtu`, `workers`, `log`), converted by `nat64
/// import-tayga` and run as it comes out (only `control` moves into the
/// test's directory and `metrics` is off: parallel tests share the
/// defaults); `nat64 show eam` lists the merged table. The traffic gets
/// Tayga's translation: each mapped host its mapped address, the unmapped
/// host a dynamic-pool address (never `ipv4-addr`), the reverse direction by
/// the map, and the translator's own address answers pings.
#[test]
fn import_tayga_full_config_runs_and_translates_like_tayga() {
    let Some(t) = topo("siittayga", Napt::Siit) else {
        return;
    };
    t.http_server4(0);
    // A third client address, mapped by the map file.
    t.ok(&t.c6, "ip addr add 2001:db8:1::11/64 dev v6c nodad");
    let data = t.dir.join("tayga-data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("eam.map"),
        "# provisioned\nmap 203.0.113.17 2001:db8:1::11\n",
    )
    .unwrap();
    let tayga = t.dir.join("tayga.conf");
    std::fs::write(
        &tayga,
        format!(
            "tun-device nat64\n\
             ipv4-addr 203.0.113.129\n\
             ipv6-addr {OWN6}\n\
             prefix {PREFIX}\n\
             dynamic-pool 203.0.113.128/25\n\
             map 203.0.113.2 {CLIENT6}\n\
             map 203.0.113.32/28 2001:db8:1::20/124\n\
             map-file eam.map\n\
             data-dir {}\n\
             wkpf-strict no\n\
             udp-cksum-mode calc\n\
             offlink-mtu 1280\n\
             workers 2\n\
             log drop reject\n",
            data.display()
        ),
    )
    .unwrap();
    let conv = t.dir.join("converted.toml");
    let o = std::process::Command::new(bin())
        .args(["import-tayga", &tayga.to_string_lossy(), "-o"])
        .arg(&conv)
        .output()
        .unwrap();
    let warnings = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{warnings}");
    assert!(warnings.contains("`log drop reject`"), "{warnings}");
    let text = std::fs::read_to_string(&conv).unwrap();
    assert!(text.contains("napt = \"none\""), "{text}");
    assert!(
        text.contains("v4 = \"203.0.113.32/28\"\nv6 = \"2001:db8:1::20/124\""),
        "a range is one explicit mapping:\n{text}"
    );
    let sock = t.dir.join("control.sock");
    let pid = t.start_nat64(&format!(
        "control = \"{}\"\nmetrics = \"\"\n{text}",
        sock.display()
    ));
    t.wait_path();
    // `nat64 show eam`: the table in force, [[map]] and the map file merged.
    let shown = t.ok(
        &t.x,
        &format!("{} show eam --socket {}", bin(), sock.display()),
    );
    for row in [
        ("203.0.113.2/32", "2001:db8:1::2/128"),
        ("203.0.113.32/28", "2001:db8:1::20/124"),
        ("203.0.113.17/32", "2001:db8:1::11/128"),
    ] {
        assert!(
            shown
                .lines()
                .any(|l| l.split_whitespace().take(2).eq([row.0, row.1])),
            "{row:?} missing from `show eam`:\n{shown}"
        );
    }
    assert!(shown.contains("3 explicit mapping(s)"), "{shown}");
    // What the IPv4 server sees for each client source.
    let seen_as = |src: &str| {
        let before = http_clients(&t.log("http4.log")).len();
        t.ok(
            &t.c6,
            &format!(
                "curl -sS --max-time 10 --interface {src} -o /dev/null \
                 http://[{SERVER4_V6}]:8080/index.html"
            ),
        );
        http_clients(&t.log("http4.log"))
            .get(before)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(seen_as(CLIENT6), "203.0.113.2", "the `map` line");
    assert_eq!(seen_as("2001:db8:1::11"), "203.0.113.17", "the map file");
    let dynamic: Ipv4Addr = seen_as(CLIENT6_B).parse().expect("an IPv4 client");
    assert!(
        u32::from(dynamic) >> 7 == u32::from(Ipv4Addr::new(203, 0, 113, 128)) >> 7
            && dynamic != Ipv4Addr::new(203, 0, 113, 129),
        "dynamic-pool, ipv4-addr carved out: {dynamic}"
    );
    // Reverse direction by the map, and the translator's own addresses.
    wait_ok(&t, &t.s4, "ping -n -c 1 -W 1 203.0.113.2");
    // prefix || 203.0.113.129 (cb.00.71.81), written out.
    let own = "2001:db8:64::cb00:7181";
    wait_ok(&t, &t.c6, &format!("ping -6 -n -c 1 -W 1 {own}"));
    t.ok(&t.c6, &format!("ip -6 route add {OWN6} via {XLAT6}"));
    wait_ok(&t, &t.c6, &format!("ping -6 -n -c 1 -W 1 {OWN6}"));
    // The lease of the dynamic client is kept where Tayga kept its own.
    assert_eq!(t.stop_nat64(pid), 0);
    let leases = std::fs::read_to_string(data.join("nat64.leases")).unwrap_or_default();
    assert!(
        leases.contains(&format!("{CLIENT6_B} {dynamic}")),
        "lease file: {leases}"
    );
}
