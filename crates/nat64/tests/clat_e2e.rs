//! 464XLAT end to end (RFC 6877): an IPv4-only application on the
//! IPv6-only client reaches the IPv4-only server through nat64 as the CLAT
//! (`napt = "clat"`, in the client namespace) and nat64 as the PLAT
//! (stateful, daemon mode, in the xlat namespace).
//!
//! ```text
//!  client6: curl -4 198.51.100.2 ── TUN "clat" (192.0.0.1 → 2001:db8:1::c1a7)
//!           ── v6c ── xlat: PLAT (2001:db8:64::/96 → pool 203.0.113.0/24) ── server4
//! ```
//!
//! The CLAT answers neighbour solicitations for its address on v6c (proxy
//! NDP); the client forwards IPv6 (translated packets enter through the
//! TUN). The second test finds the PLAT's prefix through DNS (RFC 7050):
//! a stub DNS64 in the xlat namespace answers `ipv4only.arpa`, and the
//! client's resolver points at it (`/etc/netns/<ns>/resolv.conf`, which
//! `ip netns exec` mounts).

mod support;

use std::time::{Duration, Instant};
use support::*;

const CLAT6: &str = "2001:db8:1::c1a7";

/// The CLAT's config: `prefix` as given (a prefix, or `ipv4only.arpa`).
fn clat_config(prefix: &str) -> String {
    format!(
        "prefix = \"{prefix}\"\nnapt = \"clat\"\nclat-v6 = \"{CLAT6}\"\nclat-uplink = \"v6c\"\n\
         metrics = \"\"\ncontrol = \"\"\n\n[tun]\nname = \"clat\"\nqueues = 1\noffload = {}\n",
        offloads_on()
    )
}

/// Starts the CLAT in the client namespace; returns its PID once it runs.
fn start_clat(t: &Topo, config: &str) -> u32 {
    let path = t.dir.join("clat.toml");
    std::fs::write(&path, config).expect("writing clat.toml");
    let p = path.to_string_lossy().into_owned();
    let pid = t.spawn(&t.c6, &[bin(), "run", "--config", &p], "clat.log");
    let t0 = Instant::now();
    while !t.log("clat.log").contains("nat64 running") {
        assert!(
            t.alive(pid) && t0.elapsed() < Duration::from_secs(20),
            "the CLAT did not start:\n{}",
            t.log("clat.log")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    pid
}

/// PLAT in xlat, the HTTP server in server4, IPv6 forwarding on the client.
fn plat(test: &str) -> Option<Topo> {
    let t = Topo::new(test, Napt::Daemon)?;
    t.http_server4(1);
    t.start_nat64(&t.config(""));
    t.wait_path();
    let r = t.sh(&t.c6, "sysctl -qw net.ipv6.conf.all.forwarding=1");
    assert!(r.ok, "{}", r.stderr);
    Some(t)
}

/// An IPv4-only `curl` and `ping` from the client, through both
/// translators; the server sees the PLAT's pool address.
fn ipv4_app_reaches_server(t: &Topo, clat: u32) {
    let page = t.ok(
        &t.c6,
        &format!("curl -4 -sS --max-time 10 http://{SERVER4}:8080/index.html"),
    );
    assert_eq!(page, "hello from server4\n", "{}", t.log("clat.log"));
    let ping = t.sh(&t.c6, &format!("ping -4 -n -c 3 -i 0.2 -W 2 {SERVER4}"));
    assert!(
        ping.stdout.contains(" 0% packet loss"),
        "{}\n{}",
        ping.stdout,
        t.log("clat.log")
    );
    // The server saw the PLAT's pool address, not the client's.
    let http = t.log("http4.log");
    assert!(
        http.lines().any(|l| l.starts_with("203.0.113.")),
        "server log: {http}"
    );
    // And the CLAT translated both ways.
    let s = t.stats_in(clat, "clat.log");
    assert!(s.get("translated_4to6").copied().unwrap_or(0) >= 4, "{s:?}");
    assert!(s.get("translated_6to4").copied().unwrap_or(0) >= 4, "{s:?}");
}

#[test]
fn rfc6877_clat_to_plat_curl_and_ping() {
    let Some(t) = plat("clat") else {
        return;
    };
    let clat = start_clat(&t, &clat_config(PREFIX));
    // nat64 gave the client its IPv4 side.
    let addr = t.ok(&t.c6, "ip -4 -o addr show dev clat");
    assert!(addr.contains("192.0.0.1/32"), "{addr}");
    let route = t.ok(&t.c6, "ip -4 route show default");
    assert!(route.contains("dev clat"), "{route}");
    let proxy = t.ok(&t.c6, "ip -6 neigh show proxy");
    assert!(proxy.contains(CLAT6), "{proxy}");
    ipv4_app_reaches_server(&t, clat);
    // Stopping it removes what it installed.
    assert_eq!(t.stop_nat64(clat), 0);
    assert!(t.ok(&t.c6, "ip -6 neigh show proxy").trim().is_empty());
    assert!(t.ok(&t.c6, "ip -4 route show default").trim().is_empty());
}

#[test]
fn rfc7050_clat_discovers_the_plat_prefix() {
    let Some(t) = plat("clat7050") else {
        return;
    };
    let script = support_dir().join("dns_stub.py");
    let dnslog = t.dir.join("dns.log");
    t.spawn(
        &t.x,
        &[
            "python3",
            &script.to_string_lossy(),
            XLAT6,
            PREFIX,
            &dnslog.to_string_lossy(),
        ],
        "dns.out",
    );
    let t0 = Instant::now();
    while !t.log("dns.log").contains("ready") {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the DNS stub did not start: {}",
            t.log("dns.out")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let _resolver = NetnsResolver::new(&t.c6, XLAT6);
    let clat = start_clat(&t, &clat_config("ipv4only.arpa"));
    let log = t.log("clat.log");
    assert!(
        log.contains(&format!(
            "prefix {PREFIX} (discovered through ipv4only.arpa"
        )),
        "{log}"
    );
    assert!(t.log("dns.log").contains("ipv4only.arpa type 28"));
    ipv4_app_reaches_server(&t, clat);
}
