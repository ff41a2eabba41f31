//! Hostile end-to-end tests (issue 11): each reproducer of an independent
//! attacker-style run, against the real daemon in network namespaces.
//! Root only: without root every test prints a loud SKIP and passes.

mod support;

use std::time::{Duration, Instant};
use support::*;

fn setup(test: &str, napt: Napt, extra: &str) -> Option<(Topo, u32)> {
    let t = Topo::new(test, napt)?;
    let cfg = t.config(extra);
    let pid = t.start_nat64(&cfg);
    t.wait_path();
    Some((t, pid))
}

/// Sends `count` spoofed UDP datagrams from namespace `ns`.
fn spoof(t: &Topo, ns: &str, src: &str, dst: &str, port: u16, count: u32) {
    let script = support_dir().join("spoof.py");
    t.ok(
        ns,
        &format!(
            "python3 {} {src} {dst} {port} {port} {count} loop",
            script.display()
        ),
    );
}

/// Datagrams the UDP echo on server4 received.
fn echoed(t: &Topo) -> usize {
    t.log("udp4.log").lines().filter(|l| *l != "ready").count()
}

// ------------------------------------------------------- 1. loop guard ---

/// Issue 11 #1: one spoofed packet whose IPv6 source lies inside the
/// translation prefix, `IPv6(src=PREFIX::c633:6402, dst=PREFIX::c633:6402)
/// /UDP(7007 → 7007)`, towards an IPv4 echo service used to circulate
/// forever (translated, echoed, translated back to PREFIX::c633:6402,
/// routed into the TUN again). Now it is dropped as `source_in_prefix`
/// and never reaches the IPv4 side.
fn loop_ipv6_source_in_prefix(napt: Napt) {
    let Some((t, pid)) = setup("loop6", napt, "") else {
        return;
    };
    t.udp_echo4();
    spoof(&t, &t.c6, SERVER4_V6, SERVER4_V6, 7007, 5);
    std::thread::sleep(Duration::from_millis(1500));
    let s = t.stats(pid);
    assert_eq!(
        s.get("drop.source_in_prefix").copied(),
        Some(5),
        "every spoofed packet dropped as source_in_prefix: {s:?}"
    );
    assert_eq!(echoed(&t), 0, "a looping packet reached the echo service");
    // Legitimate traffic is untouched.
    let r = t.udp_client(64, &[]);
    assert!(r.ok, "{}\n{}", r.stdout, r.stderr);
}

#[test]
fn loop_ipv6_source_in_prefix_daemon() {
    loop_ipv6_source_in_prefix(Napt::Daemon)
}
#[test]
fn loop_ipv6_source_in_prefix_kernel() {
    loop_ipv6_source_in_prefix(Napt::Kernel)
}

/// Issue 11 #1, IPv4 side: a packet from outside whose source is one of
/// the pool addresses (daemon mode) is dropped as `source_is_own_address`.
#[test]
fn loop_ipv4_source_is_pool_address_daemon() {
    let Some((t, pid)) = setup("loop4", Napt::Daemon, "") else {
        return;
    };
    // server4 routes the pool via the translator (Topo does).
    spoof(&t, &t.s4, "203.0.113.7", "203.0.113.9", 7007, 3);
    let t0 = Instant::now();
    loop {
        let s = t.stats(pid);
        if s.get("drop.source_is_own_address").copied() == Some(3) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "spoofed pool-source packets not counted: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
