//! A Mycelium gateway with the real Mycelium daemon (issue: "A Mycelium
//! gateway that works out of the box"; docs/operator.md "Mycelium gateway").
//!
//! ```text
//!  client6 ns: mycelium node A ---- underlay veth ---- xlat ns: mycelium node B   ---- server4 ns
//!    (overlay 400::/7 on TUN)      2001:db8:1::2/::1     + nat64 --config geomind     198.51.100.2
//! ```
//!
//! Two Mycelium nodes peer over the veth only (`--disable-peer-discovery`, a
//! static peer, no public peers). nat64 on the gateway starts with nothing but
//! `--config geomind` (and its socket and lease paths): the profile derives
//! the prefix from node B's /64 and turns forwarding on. The client then
//! pings, fetches a 10 MiB file (sha256 compared), pings with 3000 bytes
//! (fragmented ICMP) and traceroutes, all through the overlay.
//!
//! Mycelium is in no package registry: the test needs a `mycelium` binary
//! (`MYCELIUM_BIN`, or `mycelium` on PATH; docs/operator.md says how to
//! build one). Without it the test prints a loud SKIP notice and passes.

mod support;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

fn mycelium_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MYCELIUM_BIN") {
        let p = PathBuf::from(p);
        return p.is_file().then_some(p);
    }
    let o = Command::new("sh")
        .args(["-c", "command -v mycelium"])
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
    (o.status.success() && !s.is_empty()).then(|| PathBuf::from(s))
}

/// The IPv6 address `v4` has inside the /96 `prefix`.
fn embed96(prefix: Ipv6Addr, v4: Ipv4Addr) -> Ipv6Addr {
    Ipv6Addr::from(u128::from(prefix) | u128::from(u32::from(v4)))
}

/// The 400::/7 address of `dev` in `ns`, once it has one (30 s limit).
fn overlay_addr(t: &Topo, ns: &str, dev: &str) -> Ipv6Addr {
    let t0 = Instant::now();
    loop {
        let out = t
            .sh(ns, &format!("ip -6 -o addr show dev {dev} scope global"))
            .stdout;
        let found = out.split_whitespace().find_map(|w| {
            let a: Ipv6Addr = w.split('/').next()?.parse().ok()?;
            (a.segments()[0] & 0xfe00 == 0x0400).then_some(a)
        });
        if let Some(a) = found {
            return a;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no 400::/7 address on {dev} in {ns} after 30 s:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn start_mycelium(t: &Topo, mycelium: &str, ns: &str, name: &str, peer: Option<&str>) -> u32 {
    let key = t.dir.join(format!("{name}.key"));
    let key = key.to_string_lossy().into_owned();
    let mut argv = vec![
        mycelium,
        "--key-file",
        &key,
        "--disable-peer-discovery",
        "--tcp-listen-port",
        "9651",
        "--quic-listen-port",
        "9651",
        "--api-addr",
        "127.0.0.1:8989",
        "--jsonrpc-addr",
        "127.0.0.1:8990",
    ];
    let peer_arg;
    if let Some(p) = peer {
        peer_arg = format!("tcp://[{p}]:9651");
        argv.push("--peers");
        argv.push(&peer_arg);
    }
    t.spawn(ns, &argv, &format!("{name}.log"))
}

#[test]
fn mycelium_gateway_geomind_profile() {
    let Some(mycelium) = mycelium_bin() else {
        eprintln!(
            "\n*** SKIP mycelium_gateway_geomind_profile: no `mycelium` binary (set MYCELIUM_BIN or \
             put mycelium on PATH; docs/operator.md \"Mycelium gateway\" says how to build it). \
             The Mycelium end-to-end test did NOT run. ***\n"
        );
        return;
    };
    let Some(t) = Topo::new("mycelium", Napt::Kernel) else {
        return;
    };
    let mycelium = mycelium.to_string_lossy().into_owned();
    // The profile must turn forwarding on by itself.
    for kv in ["net.ipv4.ip_forward=0", "net.ipv6.conf.all.forwarding=0"] {
        assert!(t.sh(&t.x, &format!("sysctl -qw {kv}")).ok);
    }
    let gw = start_mycelium(&t, &mycelium, &t.x, "myc-gw", None);
    let cl = start_mycelium(&t, &mycelium, &t.c6, "myc-client", Some(XLAT6));
    let gw_addr = overlay_addr(&t, &t.x, "mycelium");
    let cl_addr = overlay_addr(&t, &t.c6, "mycelium");
    eprintln!("mycelium: gateway {gw_addr}, client {cl_addr}");

    // The overlay itself works before nat64 is involved.
    let t0 = Instant::now();
    while !t.sh(&t.c6, &format!("ping -6 -n -c 1 -W 1 {gw_addr}")).ok {
        assert!(
            t.alive(gw) && t.alive(cl),
            "a mycelium node exited\n{}\n{}",
            t.log("myc-gw.log"),
            t.log("myc-client.log")
        );
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the client cannot reach the gateway's overlay address {gw_addr} after 60 s\n{}",
            t.log("myc-client.log")
        );
    }
    eprintln!("overlay up after {:?}", t0.elapsed());

    // `nat64 check` names the derived prefix.
    let ctl = t.dir.join("control.sock");
    let ctl = ctl.to_string_lossy().into_owned();
    let leases = t.dir.join("leases");
    let sets = [
        format!("control={ctl}"),
        format!("state-file={}", leases.display()),
    ];
    let mut check = vec![
        bin().to_string(),
        "check".into(),
        "--config".into(),
        "geomind".into(),
    ];
    for s in &sets {
        check.push("--set".into());
        check.push(s.clone());
    }
    let out = t.ok(&t.x, &check.join(" "));
    let want = format!(
        "{:x}:{:x}:{:x}:{:x}:0:64::/96",
        gw_addr.segments()[0],
        gw_addr.segments()[1],
        gw_addr.segments()[2],
        gw_addr.segments()[3]
    );
    let prefix_line = out
        .lines()
        .find(|l| l.starts_with("prefix = "))
        .unwrap_or_default();
    assert!(
        prefix_line.contains(&format!("\"{want}\""))
            && prefix_line.contains("from-interface:mycelium"),
        "check should print prefix {want} derived from the mycelium interface:\n{out}"
    );

    // nat64 with nothing but the profile (and its socket/state paths).
    let mut argv = vec![bin(), "run", "--config", "geomind"];
    for s in &sets {
        argv.push("--set");
        argv.push(s);
    }
    let started = Instant::now();
    let pid = t.spawn(&t.x, &argv, "nat64.log");
    while !t.log("nat64.log").contains("nat64 running") {
        assert!(t.alive(pid), "nat64 exited\n{}", t.nat64_log_tail());
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{}",
            t.nat64_log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = t.log("nat64.log");
    assert!(log.contains(&format!("prefix {want}")), "{log}");
    assert_eq!(t.ok(&t.x, "sysctl -n net.ipv4.ip_forward").trim(), "1");
    assert_eq!(
        t.ok(&t.x, "sysctl -n net.ipv6.conf.all.forwarding").trim(),
        "1"
    );
    // `show stats` hands the prefix out too.
    let stats = t.ok(&t.x, &format!("{} show stats --socket {ctl}", bin()));
    assert!(
        stats.contains(&want),
        "show stats lacks the prefix:\n{stats}"
    );

    let prefix: Ipv6Addr = want.trim_end_matches("/96").parse().unwrap();
    let server = embed96(prefix, SERVER4.parse().unwrap());

    // First contact right after "running": the first reply's round trip.
    let first = t.sh(&t.c6, &format!("ping -6 -n -c 5 -i 0.2 -W 5 {server}"));
    eprintln!("first pings after start:\n{}", first.stdout);
    let t0 = Instant::now();
    while !t.sh(&t.c6, &format!("ping -6 -n -c 1 -W 2 {server}")).ok {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "no path client -> {server} through the gateway\n{}\n{}",
            t.nat64_log_tail(),
            t.log("myc-client.log")
        );
    }

    // ping
    let out = t.ok(&t.c6, &format!("ping -6 -n -c 3 -i 0.2 -W 3 {server}"));
    assert!(out.contains("3 received"), "{out}");
    eprintln!("{out}");

    // curl a 10 MiB file, sha256 compared.
    let sum = t.http_server4(10);
    let out = t.ok(
        &t.c6,
        &format!("curl -sS --max-time 120 'http://[{server}]:8080/big.bin' | sha256sum"),
    );
    assert_eq!(
        out.split_whitespace().next(),
        Some(sum.as_str()),
        "sha256 differs"
    );
    eprintln!("10 MiB over Mycelium + nat64: sha256 {sum} matches");

    // Large (fragmented) ping.
    let out = t.ok(
        &t.c6,
        &format!("ping -6 -n -c 3 -i 0.3 -W 3 -s 3000 {server}"),
    );
    assert!(
        out.contains("3 received") && out.contains("3008 bytes"),
        "{out}"
    );
    eprintln!("{out}");

    // traceroute: every hop answers, the destination is reached.
    let out = t.ok(&t.c6, &format!("traceroute -6 -n -q 1 -w 3 -m 8 {server}"));
    eprintln!("{out}");
    let hops: Vec<&str> = out.lines().skip(1).collect();
    assert!(
        hops.last().is_some_and(|l| l.contains(&server.to_string())),
        "destination not reached:\n{out}"
    );
    assert!(
        hops.iter()
            .all(|l| !l.contains(" * ") && !l.trim_end().ends_with('*')),
        "a hop did not answer:\n{out}"
    );
    let gw_v6 = embed96(prefix, Ipv4Addr::new(100, 65, 0, 1)).to_string();
    assert!(
        hops.iter().any(|l| l.contains(&gw_v6)),
        "the gateway's hop should be prefix||gateway-v4 {gw_v6}:\n{out}"
    );
    let s = t.stats(pid);
    eprintln!("nat64 stats: {s:?}");
    assert_eq!(t.stop_nat64(pid), 0, "{}", t.nat64_log_tail());
}
