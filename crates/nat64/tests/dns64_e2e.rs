//! DNS64 + PREF64 end to end (issue 14 §1): the IPv6-only client knows the
//! IPv4-only server only by name, and learns the NAT64 prefix from the
//! router advertisements on its link.
//!
//! ```text
//!  client6                     xlat                              server4
//!  resolv.conf ─ DNS ─────────▶ unbound DNS64 [2001:db8:1::1]:53 ─▶ unbound authoritative
//!    getent / curl by name      (dns64-prefix from                198.51.100.2:53
//!                                `nat64 gen dns64 --unbound`)     example., ipv4only.arpa.
//!  curl server4.example ─────▶ nat64 (daemon) ──────────────────▶ HTTP 198.51.100.2:8080
//!  v6c ◀── RA (PREF64) ─────── nat64 [pref64] on v6x
//! ```
//!
//! * The authoritative server (s4) holds `server4.example. A 198.51.100.2`
//!   (no AAAA) and `ipv4only.arpa.` with 192.0.0.170/171 (RFC 7050 §2.2;
//!   in the real world the root delegates it). Zones: `support/dns64/`.
//! * The DNS64 (xlat) is unbound with its dns64 module; its `module-config`
//!   and `dns64-prefix` are the snippet `nat64 gen dns64 --unbound` prints
//!   from the test's nat64.toml, included verbatim. The test adds only the
//!   listening address, access control, the stub zones pointing at s4 and
//!   what lets unbound run in a namespace as the `unbound` user without
//!   touching /etc/unbound (directory, pidfile, no chroot, stderr log).
//! * The client's resolver points at the DNS64 through
//!   `/etc/netns/<ns>/resolv.conf` (`ip netns exec` bind-mounts it), removed
//!   when the test ends however it ends.
//! * nat64 sends PREF64 router advertisements (RFC 8781) on v6x
//!   (`[pref64]`); `support/pref64_listen.py` records them on the client's
//!   link and decodes option 38 (ndisc6 1.0.5's rdisc6 does not decode it:
//!   it prints the RA header, checked too).

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::*;

/// `[pref64] interval-secs` in the test.
const RA_INTERVAL: u64 = 3;
/// How long the client records router advertisements (three intervals and
/// a second: at least two RAs from a periodic sender).
const RA_WINDOW: u64 = 3 * RA_INTERVAL + 1;
/// The IPv4-only server's name (example.zone: an A record, no AAAA).
const NAME4: &str = "server4.example";
/// ipv4only.arpa's 192.0.0.170 and 192.0.0.171 inside PREFIX.
const WKA_V6: [&str; 2] = ["2001:db8:64::c000:aa", "2001:db8:64::c000:ab"];

/// `server:` settings every unbound of the test shares: foreground, log to
/// stderr (the process's log file), files in the test's directory, no
/// chroot, privileges dropped to the `unbound` user, no control socket.
fn unbound_base(t: &Topo, name: &str) -> String {
    let dir = t.dir.display();
    format!(
        "server:\n\
         \x20   username: \"unbound\"\n\
         \x20   chroot: \"\"\n\
         \x20   directory: \"{dir}\"\n\
         \x20   pidfile: \"{dir}/{name}.pid\"\n\
         \x20   do-daemonize: no\n\
         \x20   use-syslog: no\n\
         \x20   logfile: \"\"\n\
         \x20   verbosity: 1\n\
         \x20   log-queries: yes\n\
         \x20   num-threads: 1\n\
         \x20   so-reuseport: no\n\
         \x20   interface-automatic: no\n\
         \x20   port: 53\n\
         remote-control:\n\
         \x20   control-enable: no\n"
    )
}

/// Writes `DIR/NAME.conf`, has unbound-checkconf accept it, starts unbound
/// in `ns` and waits (15 s limit) until it listens on `addr` port 53/udp.
fn start_unbound(t: &Topo, ns: &str, name: &str, conf: &str, addr: &str) -> u32 {
    let path = t.dir.join(format!("{name}.conf"));
    std::fs::write(&path, conf).expect("writing an unbound config");
    let p = path.to_string_lossy().into_owned();
    let check = t.sh(ns, &format!("unbound-checkconf {p}"));
    assert!(
        check.ok,
        "unbound-checkconf {name}.conf:\n{}{}\n{conf}",
        check.stdout, check.stderr
    );
    let log = format!("{name}.log");
    let pid = t.spawn(ns, &["unbound", "-d", "-c", &p], &log);
    let t0 = Instant::now();
    loop {
        let r = t.sh(ns, "ss -Hlnu 'sport = :53'");
        if r.stdout.contains(addr) {
            // It dropped root once listening.
            let user = t.ok(ns, &format!("ps -o user= -p {pid}"));
            assert_eq!(user.trim(), "unbound", "unbound {name}'s user");
            return pid;
        }
        assert!(
            t.alive(pid) && t0.elapsed() < Duration::from_secs(15),
            "unbound {name} is not listening on {addr}:53\n{}",
            t.log(&log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The authoritative server for `example.` and `ipv4only.arpa.` on
/// SERVER4:53 in the IPv4-only namespace (unbound's auth-zone: answers
/// with the AA bit from the zone files, recurses for nothing).
fn start_authoritative(t: &Topo) -> u32 {
    let mut conf = unbound_base(t, "auth");
    conf.push_str(&format!(
        "server:\n\
         \x20   interface: {SERVER4}\n\
         \x20   do-ip6: no\n\
         \x20   access-control: 198.51.100.0/24 allow\n\
         \x20   module-config: \"iterator\"\n"
    ));
    for zone in ["example.", "ipv4only.arpa."] {
        let file = t.dir.join(format!("{zone}zone"));
        std::fs::copy(support_dir().join(format!("dns64/{zone}zone")), &file)
            .expect("copying a zone file");
        conf.push_str(&format!(
            "auth-zone:\n\
             \x20   name: \"{zone}\"\n\
             \x20   zonefile: \"{}\"\n\
             \x20   for-downstream: yes\n\
             \x20   for-upstream: no\n\
             \x20   fallback-enabled: no\n",
            file.display()
        ));
    }
    start_unbound(t, &t.s4, "auth", &conf, SERVER4)
}

/// `nat64 gen dns64 --unbound --config DIR/nat64.toml` (in the xlat
/// namespace, where nat64 runs), written to `DIR/dns64-gen.conf` as is.
/// Returns the snippet.
fn generated_snippet(t: &Topo) -> String {
    let config = t.dir.join("nat64.toml");
    let out = t.ok(
        &t.x,
        &format!(
            "{} gen dns64 --unbound --config {}",
            bin(),
            config.display()
        ),
    );
    std::fs::write(t.dir.join("dns64-gen.conf"), &out).expect("writing dns64-gen.conf");
    out
}

/// The DNS64 on [XLAT6]:53 in the xlat namespace: the generated snippet
/// (included verbatim) plus the listening address, access control and
/// stub zones that send `example.` and `ipv4only.arpa.` to the
/// authoritative server, so that the answers come through unbound's
/// iterator and are synthesized by its dns64 module.
fn start_dns64(t: &Topo) -> u32 {
    let mut conf = unbound_base(t, "dns64");
    conf.push_str(&format!(
        "server:\n\
         \x20   interface: {XLAT6}\n\
         \x20   access-control: 2001:db8:1::/64 allow\n\
         include: \"{}\"\n",
        t.dir.join("dns64-gen.conf").display()
    ));
    for zone in ["example.", "ipv4only.arpa."] {
        conf.push_str(&format!(
            "stub-zone:\n\
             \x20   name: \"{zone}\"\n\
             \x20   stub-addr: {SERVER4}\n"
        ));
    }
    start_unbound(t, &t.x, "dns64", &conf, XLAT6)
}

/// The addresses (first column) `getent ahosts NAME` prints in the client
/// namespace, through the system resolver.
fn getent_ahosts(t: &Topo, name: &str) -> BTreeSet<String> {
    let out = t.ok(&t.c6, &format!("getent ahosts {name}"));
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// One router advertisement as `pref64_listen.py` prints it.
#[derive(Debug)]
struct Ra {
    t: f64,
    src: String,
    hop_limit: Option<i64>,
    router_lifetime: u64,
    options: Vec<u64>,
    /// (prefix, lifetime in seconds) of each PREF64 option.
    pref64: Vec<(String, u64)>,
    malformed: Option<String>,
}

fn parse_ras(log: &str) -> Vec<Ra> {
    log.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
            Ra {
                t: v["t"].as_f64().unwrap_or(-1.0),
                src: v["src"].as_str().unwrap_or_default().to_string(),
                hop_limit: v["hop_limit"].as_i64(),
                router_lifetime: v["router_lifetime"].as_u64().unwrap_or(u64::MAX),
                options: v["options"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|o| o.as_u64()).collect())
                    .unwrap_or_default(),
                pref64: v["pref64"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|p| {
                                (
                                    p["prefix"].as_str().unwrap_or_default().to_string(),
                                    p["lifetime"].as_u64().unwrap_or(0),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                malformed: v["malformed"].as_str().map(str::to_string),
            }
        })
        .collect()
}

/// The xlat namespace's link-local address on v6x (the RAs' source).
fn xlat_link_local(t: &Topo) -> String {
    let out = t.ok(&t.x, "ip -6 -o addr show dev v6x scope link");
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap_or_else(|| panic!("no link-local address on v6x: {out}"))
        .to_string()
}

/// A `dig` answer: the header's status and flags, and the answer
/// section's records as (name, type, data).
#[derive(Debug)]
struct Dig {
    status: String,
    flags: Vec<String>,
    answer: Vec<(String, String, String)>,
    text: String,
}

/// `dig +norec @SERVER NAME TYPE` run in `ns` (a query to an authoritative
/// server, as a resolver's iterator sends it).
fn dig_norec(t: &Topo, ns: &str, server: &str, name: &str, typ: &str) -> Dig {
    let text = t.ok(
        ns,
        &format!("dig +norec +time=2 +tries=3 @{server} {name} {typ}"),
    );
    let status = text
        .split("status: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_default()
        .to_string();
    let flags = text
        .lines()
        .find_map(|l| l.strip_prefix(";; flags: "))
        .and_then(|r| r.split(';').next())
        .map(|f| f.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let answer = text
        .split(";; ANSWER SECTION:\n")
        .nth(1)
        .map(|sec| {
            sec.lines()
                .take_while(|l| !l.trim().is_empty())
                .filter_map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f.len() >= 5).then(|| (f[0].to_string(), f[3].to_string(), f[4..].join(" ")))
                })
                .collect()
        })
        .unwrap_or_default();
    Dig {
        status,
        flags,
        answer,
        text,
    }
}

#[test]
fn dns64_and_pref64_client_reaches_an_ipv4_only_name() {
    let t0 = Instant::now();
    let Some(t) = Topo::new("dns64", Napt::Daemon) else {
        return;
    };
    for tool in [
        "unbound",
        "unbound-checkconf",
        "dig",
        "getent",
        "rdisc6",
        "ps",
    ] {
        let r = t.sh(&t.x, &format!("command -v {tool}"));
        assert!(
            r.ok,
            "missing tool `{tool}`: run `contrib/setup.sh` as root first"
        );
    }
    t.http_server4(1);
    let config = t.config(&format!(
        "\n[pref64]\ninterface = \"v6x\"\ninterval-secs = {RA_INTERVAL}\n"
    ));
    t.start_nat64(&config);
    // The client records the RAs while the DNS part runs.
    let listen = support_dir().join("pref64_listen.py");
    let ra_pid = t.spawn(
        &t.c6,
        &[
            "python3",
            &listen.to_string_lossy(),
            "v6c",
            &RA_WINDOW.to_string(),
        ],
        "ra.log",
    );
    let wait_ready = Instant::now();
    while !t.log("ra.log").contains("ready") {
        assert!(
            t.alive(ra_pid) && wait_ready.elapsed() < Duration::from_secs(10),
            "the RA listener did not start: {}",
            t.log("ra.log")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let ra_from = Instant::now();

    // ---------------------------------------------------------- DNS64 ---
    start_authoritative(&t);
    // The source has no AAAA: whatever AAAA the client gets is synthesized.
    for (name, want) in [
        (NAME4, vec![SERVER4]),
        ("ipv4only.arpa", vec!["192.0.0.170", "192.0.0.171"]),
    ] {
        let a = dig_norec(&t, &t.x, SERVER4, name, "A");
        let mut got: Vec<&str> = a.answer.iter().map(|(_, _, d)| d.as_str()).collect();
        got.sort_unstable();
        assert!(
            a.status == "NOERROR" && a.flags.iter().any(|f| f == "aa") && got == want,
            "the authoritative A answer for {name}: want {want:?} with AA\n{}",
            a.text
        );
        let aaaa = dig_norec(&t, &t.x, SERVER4, name, "AAAA");
        assert!(
            aaaa.status == "NOERROR"
                && aaaa.flags.iter().any(|f| f == "aa")
                && aaaa.answer.is_empty(),
            "the authoritative server must answer {name} AAAA with no data:\n{}",
            aaaa.text
        );
    }

    let auth_mark = t.log("auth.log").len();
    let snippet = generated_snippet(&t);
    assert!(
        snippet
            .lines()
            .any(|l| l.trim() == format!("dns64-prefix: {PREFIX}")),
        "the generated snippet does not carry the config's prefix {PREFIX}:\n{snippet}"
    );
    start_dns64(&t);
    let resolver = NetnsResolver::new(&t.c6, XLAT6);
    t.wait_path();

    // The system resolver on the client: the synthesized AAAA (RFC 6147).
    let addrs = getent_ahosts(&t, NAME4);
    assert!(
        addrs.contains(SERVER4_V6),
        "getent ahosts {NAME4}: want {SERVER4_V6}, got {addrs:?}\n{}",
        t.log("dns64.log")
    );
    // curl by name reaches the IPv4-only server through nat64.
    let out = t.ok(
        &t.c6,
        &format!("curl -sS --max-time 10 -w '%{{remote_ip}}' http://{NAME4}:8080/index.html"),
    );
    assert_eq!(out, format!("hello from server4\n{SERVER4_V6}"));
    let http = t.log("http4.log");
    assert!(
        http.lines()
            .any(|l| l.starts_with("203.0.113.") && l.contains("GET /index.html")),
        "the server must see nat64's pool address:\n{http}"
    );
    // RFC 7050: ipv4only.arpa's two addresses, synthesized.
    let wka = getent_ahosts(&t, "ipv4only.arpa");
    for v6 in WKA_V6 {
        assert!(
            wka.contains(v6),
            "getent ahosts ipv4only.arpa: want {v6}, got {wka:?}"
        );
    }
    // The DNS64 asked the authoritative server for the AAAA records (and
    // found none) before it synthesized them: the queries since the checks
    // above are the DNS64's, from the xlat's IPv4 address.
    let auth = t.log("auth.log");
    let by_dns64 = auth.get(auth_mark..).unwrap_or_default();
    for q in [
        format!("{XLAT4} {NAME4}. AAAA IN"),
        format!("{XLAT4} ipv4only.arpa. AAAA IN"),
    ] {
        assert!(
            by_dns64.contains(&q),
            "the authoritative server never saw the DNS64's `{q}`:\n{by_dns64}"
        );
    }

    // --------------------------------------------------------- PREF64 ---
    let exit = t.wait_exit(
        ra_pid,
        Duration::from_secs(RA_WINDOW + 10).saturating_sub(ra_from.elapsed()),
    );
    assert_eq!(exit, Some(0), "RA listener:\n{}", t.log("ra.log"));
    let ras = parse_ras(&t.log("ra.log"));
    let ll = xlat_link_local(&t);
    assert!(
        ras.len() >= 2,
        "want at least 2 RAs in {RA_WINDOW} s (one every {RA_INTERVAL} s), got {ras:?}\n{}",
        t.nat64_log_tail()
    );
    for ra in &ras {
        // RFC 4861 §6.1.2: what a host accepts as an RA.
        assert_eq!(ra.src, ll, "RA source: {ra:?}");
        assert_eq!(ra.hop_limit, Some(255), "{ra:?}");
        // Not a default router, and nothing but the PREF64 option.
        assert_eq!(ra.router_lifetime, 0, "{ra:?}");
        assert_eq!(ra.options, vec![38], "{ra:?}");
        assert_eq!(ra.malformed, None, "{ra:?}");
        assert_eq!(ra.pref64.len(), 1, "{ra:?}");
        let (prefix, lifetime) = &ra.pref64[0];
        assert_eq!(prefix, PREFIX, "{ra:?}");
        // RFC 8781 §4.1: a lifetime of at least 3 × the RA interval.
        assert!(*lifetime >= 3 * RA_INTERVAL, "{ra:?}");
    }
    // Periodic, not a burst: consecutive RAs about an interval apart.
    for w in ras.windows(2) {
        let gap = w[1].t - w[0].t;
        assert!(
            (RA_INTERVAL as f64 * 0.5..=RA_INTERVAL as f64 * 1.5).contains(&gap),
            "RAs {gap:.3} s apart, want about {RA_INTERVAL} s: {ras:?}"
        );
    }
    // rdisc6 (ndisc6) reads the same RA: its header, from nat64.
    let rdisc = t.ok(&t.c6, "rdisc6 -1 -n -w 2000 -r 3 v6c");
    let lifetime = rdisc
        .lines()
        .find_map(|l| l.strip_prefix("Router lifetime"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.split_whitespace().next());
    assert_eq!(lifetime, Some("0"), "rdisc6:\n{rdisc}");
    assert!(rdisc.contains(&format!(" from {ll}")), "rdisc6:\n{rdisc}");
    eprintln!("rdisc6 v6c:\n{rdisc}");
    eprintln!("RAs on v6c: {ras:?}");
    drop(resolver);
    eprintln!("dns64_e2e: {:.1} s", t0.elapsed().as_secs_f64());
}
