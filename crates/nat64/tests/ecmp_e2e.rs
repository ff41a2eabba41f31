//! An ECMP scale-out farm of nat64 instances in daemon NAPT mode with
//! deterministic port blocks (RFC 7422 style), end to end: 60 IPv6
//! clients, a router that spreads them over 3 instances with a kernel
//! multipath route, and an IPv4 server that tells every peer the address
//! and port it sees.
//!
//! ```text
//!  client6                    router (the xlat ns)                   instances i0, i1, i2              server4
//!  v6c 2001:db8:1::2/64 ──── v6x 2001:db8:1::1/64
//!  clients 2001:db8:100::1    ecmp0 2001:db8:10:0::1 ── v6 2001:db8:10:0::2 [nat64 i0] v4 .2/30 ── farm0 203.0.113.1/30
//!    ... ::3c (/128, nodad)   ecmp1 2001:db8:10:1::1 ── v6 2001:db8:10:1::2 [nat64 i1] v4 .6/30 ── farm1 203.0.113.5/30
//!                             ecmp2 2001:db8:10:2::1 ── v6 2001:db8:10:2::2 [nat64 i2] v4 .10/30 ─ farm2 203.0.113.9/30
//!  route 2001:db8:64::/96     route 2001:db8:64::/96 nhid 100        TUN: the prefix and its           v4s 198.51.100.2/24
//!    via 2001:db8:1::1        group 100 = 1/2/3 resilient, 64        slice (.64/31, .66/31, .68/31)    route slice i via
//!                             buckets, hashed on the v6 source       default via the server            instance i
//!                             route 2001:db8:100::/64 via client6
//! ```
//!
//! Every instance has the whole farm's pool (198.51.100.64/30 and
//! 198.51.100.68/31: 6 addresses) and `[farm] instance = i, instances = 3`:
//! it owns the slice .64-.65, .66-.67 or .68-.69. Instance i reaches the
//! server over its own /30 (203.0.113.4i+1 the server, +2 the instance),
//! and the server routes each slice to the instance that owns it. Port
//! blocks of 1024 are deterministic, with `clients = 2001:db8:100::/122`
//! (client k is slot k: no two share a block).
//!
//! The router hashes on the source address alone
//! (`fib_multipath_hash_policy = 3`, `fib_multipath_hash_fields = 0x0001`),
//! so every flow of one client (TCP, UDP, ICMP) goes to one instance. The
//! nexthop group is resilient: when a member is removed its buckets go to
//! the others at once and nobody else's bucket moves. Which instance a
//! client lands on is learnt from the address the server sees: on the
//! kernel this was written on (6.18), `ip -6 route get ... from C iif v6x`
//! names another nexthop than forwarding picks for most clients under
//! policy 3, so it predicts nothing.
//!
//! Checked: one pool address and one aligned block per client and protocol
//! over several flows, the ones worked by hand from the client's number
//! and the instance's slice, no two clients with one block; `nat64 lookup`
//! names the client of each public address:port; the split over the
//! instances; the mapping log (one `block-allocated` line per client and
//! protocol, no per-session lines); removing an instance from the group
//! (the others' clients lose no ping and keep address and block, the moved
//! clients' new flows work at once through another instance, on their slot
//! there); a restarted instance hands every client the same address and
//! block again. Prints a greppable `ECMP-RESULT` line. Root only, a loud
//! SKIP otherwise.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

const INSTANCES: usize = 3;
const CLIENTS: usize = 60;
const BLOCK: u16 = 1024;
const PORT: u16 = 8080;
/// The whole farm's pool in config order: 6 addresses.
const FARM_POOL: [&str; 2] = ["198.51.100.64/30", "198.51.100.68/31"];
/// Instance i's slice of [`FARM_POOL`]: addresses [2i, 2i+2).
const SLICES: [&str; INSTANCES] = ["198.51.100.64/31", "198.51.100.66/31", "198.51.100.68/31"];
const FIRST_POOL: u8 = 64;
const CLIENTS_NET: &str = "2001:db8:100::/122";
/// The router's multipath group.
const GROUP: u32 = 100;
const BUCKETS: u32 = 64;
/// The instance taken out of the group: the first member. Were the group
/// a plain hash-threshold one, removing it would shift the others' hash
/// ranges and move some of their clients (removing the middle one would
/// not), so this choice tells the resilient group's promise apart.
const REMOVED: usize = 0;
/// The instance restarted at the end (one that stays in the group).
const RESTARTED: usize = 2;
/// Pings per client during the removal (every 0.2 s).
const PINGS: u32 = 50;

/// Client `i` (0-based): 2001:db8:100::(i+1), index i+1 in [`CLIENTS_NET`].
fn client(i: usize) -> String {
    format!("2001:db8:100::{:x}", i + 1)
}

/// Client `c`'s number in [`CLIENTS_NET`] (2001:db8:100::5 is 5).
fn number(c: &str) -> usize {
    usize::from_str_radix(c.rsplit(':').next().unwrap_or_default(), 16).expect("a client")
}

/// Where client number `k` lands on instance `i`, worked by hand
/// (docs/operator.md §2.8, RFC 7422): client k of `ports.clients` is slot
/// k; slot k is address k mod 2 of the instance's slice of 2 and block
/// k div 2 of the 63 aligned blocks from port 1024. Returns the address
/// and the block's first port, the same for TCP, UDP and ICMP.
fn slot(i: usize, k: usize) -> (Ipv4Addr, u16) {
    let a = FIRST_POOL + (2 * i + k % 2) as u8;
    (
        Ipv4Addr::new(198, 51, 100, a),
        1024 + (k / 2) as u16 * BLOCK,
    )
}

/// The instance whose slice holds `a`.
fn owner(a: Ipv4Addr) -> Option<usize> {
    let o = a.octets();
    (o[..3] == [198, 51, 100] && (FIRST_POOL..FIRST_POOL + 2 * INSTANCES as u8).contains(&o[3]))
        .then(|| usize::from((o[3] - FIRST_POOL) / 2))
}

/// The group's members but `without`: "1/3" for the nexthop ids 1..=3.
fn members(without: Option<usize>) -> String {
    (0..INSTANCES)
        .filter(|&i| Some(i) != without)
        .map(|i| (i + 1).to_string())
        .collect::<Vec<_>>()
        .join("/")
}

/// The group as `ip nexthop add|replace` takes it. Resilient: a removed
/// member's buckets are reassigned at once (they have no nexthop left),
/// and the survivors', underweight then, never move; `idle_timer` only
/// governs rebalancing towards a member that wants more buckets (one added
/// back), and `unbalanced_timer 0` never forces a busy bucket to move.
fn group_spec(without: Option<usize>) -> String {
    format!(
        "id {GROUP} group {} type resilient buckets {BUCKETS} idle_timer 120 unbalanced_timer 0",
        members(without)
    )
}

/// Parses the server's answer `ADDR:PORT`.
fn endpoint(s: &str) -> Option<(Ipv4Addr, u16)> {
    let (a, p) = s.trim().split_once(':')?;
    Some((a.parse().ok()?, p.parse().ok()?))
}

/// What the server saw of one client over one protocol.
type Seen = BTreeMap<String, Vec<(Ipv4Addr, u16)>>;

/// A `block-allocated` (or `-released`) line of a mapping log.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BlockLine {
    kind: String,
    proto: String,
    v6: String,
    v4: Ipv4Addr,
    lo: u16,
    hi: u16,
}

struct Farm {
    t: Topo,
    /// The instances' namespaces.
    ns: Vec<String>,
    pids: Vec<u32>,
    clients: Vec<String>,
}

impl Farm {
    fn maplog(&self, i: usize) -> String {
        self.t
            .dir
            .join(format!("map-i{i}.log"))
            .display()
            .to_string()
    }

    fn config(&self, i: usize) -> String {
        let pool = FARM_POOL
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        // The fast path (NAT64_E2E_FAST_PATH=on) on the instance's own
        // links, not the standard topology's v6x/v4x (the router's).
        self.t.config_on(
            &format!(
                "pool = [{pool}]\nmapping-log = \"{}\"\n\n[ports]\nblock-size = {BLOCK}\n\
                 deterministic = true\nclients = \"{CLIENTS_NET}\"\n\n\
                 [farm]\ninstance = {i}\ninstances = {INSTANCES}\n",
                self.maplog(i)
            ),
            &["v6", "v4"],
        )
    }

    /// Starts instance `i` (log `log`) and returns its PID; does not wait.
    fn spawn_instance(&self, i: usize, log: &str) -> u32 {
        let path = self.t.dir.join(format!("i{i}.toml"));
        std::fs::write(&path, self.config(i)).expect("writing the instance's config");
        let p = path.to_string_lossy().into_owned();
        self.t
            .spawn(&self.ns[i], &[bin(), "run", "--config", &p], log)
    }

    fn wait_running(&self, pid: u32, log: &str) {
        let t0 = Instant::now();
        while !self.t.log(log).contains("nat64 running") {
            assert!(
                self.t.alive(pid),
                "nat64 ({log}) exited during startup:\n{}",
                self.t.log(log)
            );
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "nat64 ({log}) not running after 20 s:\n{}",
                self.t.log(log)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.t.check_fast_path(log, self.t.fast_path());
    }

    fn logs_tail(&self) -> String {
        let mut s = String::new();
        for i in 0..INSTANCES {
            let l = self.t.log(&format!("nat64-i{i}.log"));
            let lines: Vec<&str> = l.lines().collect();
            let from = lines.len().saturating_sub(15);
            s += &format!(
                "--- nat64-i{i}.log (tail) ---\n{}\n",
                lines[from..].join("\n")
            );
        }
        s
    }

    /// One echo request from each of `clients` (in parallel), retried
    /// (1 s apart, 10 times) until answered: the path through every
    /// instance works, and every client has its ICMP block.
    fn ping_all(&self) {
        let t = &self.t;
        let script = format!(
            "for a in {}; do ( for k in $(seq 10); do \
               ping -6 -n -c 1 -W 1 -I $a {SERVER4_V6} >/dev/null && exit 0; done; \
               echo \"$a no answer\"; exit 1 ) & done; \
             bad=0; for j in $(jobs -p); do wait $j || bad=1; done; exit $bad",
            self.clients.join(" ")
        );
        let r = t.sh(&t.c6, &script);
        assert!(
            r.ok,
            "no path:\n{}{}\n{}",
            r.stdout,
            r.stderr,
            self.logs_tail()
        );
    }

    /// `n` HTTP GETs in a row from each of `clients` (clients in
    /// parallel): what the server saw, per client.
    fn http(&self, clients: &[String], n: usize) -> Seen {
        let t = &self.t;
        let script = format!(
            "for a in {}; do ( for k in $(seq {n}); do \
               r=$(curl -sS --max-time 5 --interface $a http://[{SERVER4_V6}]:{PORT}/) || r=FAIL; \
               echo \"$a $r\"; done ) & done; wait",
            clients.join(" ")
        );
        let out = t.ok(&t.c6, &script);
        let seen = parse_seen(&out, clients, n, "tcp");
        assert!(
            seen.values().flatten().count() == clients.len() * n,
            "HTTP answers missing:\n{out}\n{}",
            self.logs_tail()
        );
        seen
    }

    /// `n` UDP datagrams from each of `clients`, each from its own socket.
    fn udp(&self, clients: &[String], n: usize) -> Seen {
        let t = &self.t;
        let script = support_dir().join("peer_ask_udp.py");
        let r = t.sh(
            &t.c6,
            &format!(
                "python3 {} {SERVER4_V6} {PORT} {n} {}",
                script.display(),
                clients.join(" ")
            ),
        );
        let seen = parse_seen(&r.stdout, clients, n, "udp");
        assert!(
            r.ok && seen.values().flatten().count() == clients.len() * n,
            "UDP answers missing:\n{}{}\n{}",
            r.stdout,
            r.stderr,
            self.logs_tail()
        );
        seen
    }

    /// The block lines of instance `i`'s mapping log; panics on a
    /// per-session line.
    fn blocks(&self, i: usize) -> Vec<BlockLine> {
        let text = std::fs::read_to_string(self.maplog(i)).unwrap_or_default();
        text.lines()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                assert!(
                    f.len() == 5 && f[1].starts_with("block-"),
                    "instance {i}: not a block line in the mapping log: {l}"
                );
                let (v4, range) = f[4].split_once(':').expect("ADDR:LO-HI");
                let (lo, hi) = range.split_once('-').expect("LO-HI");
                BlockLine {
                    kind: f[1].to_string(),
                    proto: f[2].to_string(),
                    v6: f[3].to_string(),
                    v4: v4.parse().expect("a pool address"),
                    lo: lo.parse().expect("a port"),
                    hi: hi.parse().expect("a port"),
                }
            })
            .collect()
    }

    /// Waits (5 s) until instance `i`'s mapping log has `n`
    /// `block-allocated` lines from line `from` on (the log is written by a
    /// thread of its own, behind a channel); returns all its lines.
    fn wait_blocks(&self, i: usize, from: usize, n: usize) -> Vec<BlockLine> {
        let t0 = Instant::now();
        loop {
            let b = self.blocks(i);
            let allocated = b
                .iter()
                .skip(from)
                .filter(|b| b.kind == "block-allocated")
                .count();
            if allocated >= n || t0.elapsed() > Duration::from_secs(5) {
                return b;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Lines "CLIENT ADDR:PORT" (or "CLIENT udp ADDR:PORT") into a map; a
/// client's FAIL lines are left out (so the count tells).
fn parse_seen(out: &str, clients: &[String], n: usize, what: &str) -> Seen {
    let mut seen: Seen = clients.iter().map(|c| (c.clone(), Vec::new())).collect();
    for l in out.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let (c, e) = match f.as_slice() {
            [c, e] => (c, e),
            [c, "udp", e] => (c, e),
            _ => continue,
        };
        if let (Some(v), Some(e)) = (seen.get_mut(*c), endpoint(e)) {
            v.push(e);
        }
    }
    for (c, v) in &seen {
        assert!(
            v.len() <= n,
            "{what}: {c} has more answers than asked: {v:?}"
        );
    }
    seen
}

/// The client's one pool address and, per protocol, its one aligned block
/// (the block's first port); panics when a client used two.
fn address_and_blocks(
    c: &str,
    per_proto: &[(&str, &[(Ipv4Addr, u16)])],
) -> (Ipv4Addr, BTreeMap<String, u16>) {
    let addrs: BTreeSet<Ipv4Addr> = per_proto
        .iter()
        .flat_map(|(_, v)| v.iter().map(|e| e.0))
        .collect();
    assert_eq!(
        addrs.len(),
        1,
        "{c}: more than one pool address across its flows: {per_proto:?}"
    );
    let mut blocks = BTreeMap::new();
    for (proto, v) in per_proto {
        let b: BTreeSet<u16> = v.iter().map(|e| e.1 / BLOCK * BLOCK).collect();
        assert_eq!(
            b.len(),
            1,
            "{c}: {proto} ports outside one aligned {BLOCK}-port block: {v:?}"
        );
        let ports: BTreeSet<u16> = v.iter().map(|e| e.1).collect();
        assert_eq!(
            ports.len(),
            v.len(),
            "{c}: {proto} flows shared a port: {v:?}"
        );
        blocks.insert(proto.to_string(), *b.first().unwrap());
    }
    (*addrs.first().unwrap(), blocks)
}

/// "N packets transmitted, M received" of a finished ping's output.
fn ping_counts(out: &str) -> Option<(u32, u32)> {
    let l = out.lines().find(|l| l.contains("packets transmitted"))?;
    let mut it = l.split(", ");
    let tx = it.next()?.split_whitespace().next()?.parse().ok()?;
    let rx = it.next()?.split_whitespace().next()?.parse().ok()?;
    Some((tx, rx))
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos()
}

/// Builds the farm: namespaces and links, the router's multipath group,
/// the server, the 3 instances (running when this returns).
fn build(test: &str) -> Option<Farm> {
    let t = Topo::new(test, Napt::Daemon)?;
    let r = &t.x;
    // The router spreads on the IPv6 source address alone: policy 3 is
    // "custom", field 0x0001 the source address (kernel 5.12+).
    t.sysctl(r, "net.ipv6.fib_multipath_hash_policy=3");
    t.sysctl(r, "net.ipv6.fib_multipath_hash_fields=0x0001");
    // A fixed hash seed (kernel 6.11+; IPv6 too): the same split on every
    // run and boot (22/21/17). Without the sysctl the seed is random
    // per boot and the split only likely even.
    if !t.sh(r, "sysctl -qw net.ipv4.fib_multipath_hash_seed=1").ok {
        println!("ECMP note: no fib_multipath_hash_seed here, the split varies per boot");
    }
    t.ok(
        r,
        &format!("ip -6 route add 2001:db8:100::/64 via {CLIENT6} dev v6x"),
    );
    // Topo routes its one xlat's pool; the farm's slices go elsewhere.
    t.ok(&t.s4, &format!("ip route del {POOL}"));
    let clients: Vec<String> = (0..CLIENTS).map(client).collect();
    let batch: String = clients
        .iter()
        .map(|c| format!("address add {c}/128 dev v6c nodad\n"))
        .collect();
    let bf = t.dir.join("clients.batch");
    std::fs::write(&bf, batch).expect("writing the address batch");
    t.ok(&t.c6, &format!("ip -6 -batch {}", bf.display()));

    let mut ns = Vec::new();
    for (i, slice) in SLICES.iter().enumerate() {
        let n = t.add_ns(&format!("i{i}"));
        t.sysctl(&n, "net.ipv4.ip_forward=1");
        t.sysctl(&n, "net.ipv6.conf.all.forwarding=1");
        t.veth(r, &format!("ecmp{i}"), &n, "v6");
        t.veth(&t.s4, &format!("farm{i}"), &n, "v4");
        let (s4a, ia) = (4 * i + 1, 4 * i + 2);
        t.ok(
            r,
            &format!("ip addr add 2001:db8:10:{i}::1/64 dev ecmp{i} nodad"),
        );
        t.ok(
            &n,
            &format!("ip addr add 2001:db8:10:{i}::2/64 dev v6 nodad"),
        );
        t.ok(
            &n,
            &format!("ip -6 route add 2001:db8:100::/64 via 2001:db8:10:{i}::1"),
        );
        t.ok(
            &t.s4,
            &format!("ip addr add 203.0.113.{s4a}/30 dev farm{i}"),
        );
        t.ok(&n, &format!("ip addr add 203.0.113.{ia}/30 dev v4"));
        t.ok(&n, &format!("ip route add default via 203.0.113.{s4a}"));
        t.ok(&t.s4, &format!("ip route add {slice} via 203.0.113.{ia}"));
        t.ok(
            r,
            &format!(
                "ip -6 nexthop add id {} via 2001:db8:10:{i}::2 dev ecmp{i}",
                i + 1
            ),
        );
        ns.push(n);
    }
    t.ok(r, &format!("ip nexthop add {}", group_spec(None)));
    t.ok(r, &format!("ip -6 route add {PREFIX} nhid {GROUP}"));

    let script = support_dir().join("peer_echo.py");
    t.spawn(
        &t.s4,
        &[
            "python3",
            &script.to_string_lossy(),
            SERVER4,
            &PORT.to_string(),
        ],
        "peer_echo.log",
    );
    let mut f = Farm {
        t,
        ns,
        pids: Vec::new(),
        clients,
    };
    let pids: Vec<u32> = (0..INSTANCES)
        .map(|i| f.spawn_instance(i, &format!("nat64-i{i}.log")))
        .collect();
    for (i, &pid) in pids.iter().enumerate() {
        f.wait_running(pid, &format!("nat64-i{i}.log"));
    }
    f.pids = pids;
    f.t.wait_listen(&f.t.s4, &PORT.to_string(), "t");
    f.t.wait_listen(&f.t.s4, &PORT.to_string(), "u");
    wait_dad(&f);
    Some(f)
}

/// Waits (10 s) until no IPv6 address is tentative in the client, router
/// and instance namespaces (see [`Topo::wait_dad`]: until its link-local
/// address has passed DAD a namespace sends no Neighbor Solicitation).
fn wait_dad(f: &Farm) {
    let mut nss: Vec<&str> = vec![&f.t.c6, &f.t.x];
    nss.extend(f.ns.iter().map(String::as_str));
    f.t.wait_dad_in(&nss);
}

/// What a mapping log should hold: (client, protocol) -> (pool address,
/// the block's first port).
type Expect = BTreeMap<(String, String), (Ipv4Addr, u16)>;

impl Farm {
    /// Instance `i`'s mapping log has only block lines (no per-session
    /// `created`/`expired`), and one `block-allocated` line for each
    /// (client, protocol) of `expect`, none for others, with the expected
    /// address and block. Returns how many.
    fn check_log(&self, i: usize, expect: &Expect) -> usize {
        let lines = self.wait_blocks(i, 0, expect.len());
        let mut got: BTreeMap<(String, String), (Ipv4Addr, u16)> = BTreeMap::new();
        for b in lines.iter().filter(|b| b.kind == "block-allocated") {
            assert!(
                b.lo % BLOCK == 0 && b.hi == b.lo + (BLOCK - 1),
                "instance {i}: not an aligned {BLOCK}-port block: {b:?}"
            );
            let key = (b.v6.clone(), b.proto.clone());
            assert!(
                got.insert(key, (b.v4, b.lo)).is_none(),
                "instance {i}: a second block-allocated line for {} {}:\n{lines:#?}",
                b.proto,
                b.v6
            );
        }
        assert_eq!(
            &got, expect,
            "instance {i}: the blocks of its mapping log (left) are not those of the \
             (client, protocol) pairs that made flows through it (right)"
        );
        got.len()
    }
}

#[test]
fn ecmp_farm_deterministic_blocks_daemon() {
    let started = Instant::now();
    let Some(f) = build("ecmp") else {
        return;
    };
    let t = &f.t;

    // ---------------------------------------------------- the farm's slices
    for (i, slice) in SLICES.iter().enumerate() {
        let routes = t.ok(&f.ns[i], "ip -4 route show dev nat64");
        let dests: BTreeSet<&str> = routes
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(
            dests,
            BTreeSet::from([*slice]),
            "instance {i} routes into its TUN: {routes}"
        );
        let log = t.log(&format!("nat64-i{i}.log"));
        let line = format!(
            "farm instance {i} of {INSTANCES}: owns {slice} of pool {}",
            FARM_POOL.join(", ")
        );
        assert!(
            log.contains(&line),
            "instance {i}: no startup line `{line}`:\n{log}"
        );
    }
    // The path through every instance; every client gets its ICMP block.
    f.ping_all();

    // --------------------- 1. one address, one block per client and protocol
    let tcp = f.http(&f.clients, 3);
    let udp = f.udp(&f.clients, 2);
    // client -> (address, protocol -> block)
    let mut mapped: BTreeMap<String, (Ipv4Addr, BTreeMap<String, u16>)> = BTreeMap::new();
    for c in &f.clients {
        let m = address_and_blocks(c, &[("tcp", &tcp[c]), ("udp", &udp[c])]);
        let i = owner(m.0).unwrap_or_else(|| panic!("{c}: {} is not in the pool", m.0));
        let (a, lo) = slot(i, number(c));
        assert!(
            m.0 == a && m.1.values().all(|b| *b == lo),
            "{c} on instance {i}: {m:?}, slot {} is {a} block {lo}",
            number(c)
        );
        mapped.insert(c.clone(), m);
    }
    for proto in ["tcp", "udp"] {
        let mut owners: HashMap<(Ipv4Addr, u16), &str> = HashMap::new();
        for (c, (a, b)) in &mapped {
            if let Some(other) = owners.insert((*a, b[proto]), c) {
                panic!("{proto}: {c} and {other} share the block {a}:{}", b[proto]);
            }
        }
    }
    println!(
        "ECMP flows: {} clients x (3 TCP + 2 UDP), each on one pool address and one \
         {BLOCK}-port block per protocol, no block shared",
        f.clients.len()
    );

    // RFC 7422's point: who had ADDR:PORT, from the configuration alone.
    // `nat64 lookup` with instance 0's file finds the owning instance.
    let cfg0 = t.dir.join("i0.toml").display().to_string();
    let script: String = f
        .clients
        .iter()
        .map(|c| {
            let (a, p) = tcp[c][0];
            format!("echo \"== {c}\"; {} lookup {a}:{p} -c {cfg0}; ", bin())
        })
        .collect();
    let out = t.ok(&t.x, &script);
    for c in &f.clients {
        let (a, p) = tcp[c][0];
        let (lo, k) = (p / BLOCK * BLOCK, number(c));
        let want = format!(
            "{a}:{p} is in block {lo}-{} (slot {k}) (farm instance {} of {INSTANCES}): \
             client {c}/128",
            lo + (BLOCK - 1),
            owner(a).unwrap()
        );
        let answer = out
            .split("== ")
            .find(|s| s.starts_with(&format!("{c}\n")))
            .unwrap_or_default();
        assert!(
            answer.contains(&want),
            "nat64 lookup {a}:{p}: want `{want}`, got:\n{answer}"
        );
    }
    println!("ECMP nat64 lookup: every client's public address:port names it");

    // ------------------------------------------------------- 2. the spread
    let on = |i: usize| -> Vec<String> {
        mapped
            .iter()
            .filter(|(_, (a, _))| owner(*a) == Some(i))
            .map(|(c, _)| c.clone())
            .collect()
    };
    let split: Vec<usize> = (0..INSTANCES).map(|i| on(i).len()).collect();
    let split_s = split
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join("/");
    println!("ECMP split over the instances: {split_s}");
    for (i, n) in split.iter().enumerate() {
        assert!(*n >= 10, "instance {i} serves only {n} clients: {split_s}");
    }

    // ------------------------------------------------------ 3. mapping log
    let mut expect: Vec<Expect> = vec![Expect::new(); INSTANCES];
    for (c, (a, b)) in &mapped {
        let i = owner(*a).unwrap();
        for (proto, lo) in b {
            expect[i].insert((c.clone(), proto.clone()), (*a, *lo));
        }
        expect[i].insert((c.clone(), "icmp".into()), (*a, b["tcp"]));
    }
    let log_lines: usize = (0..INSTANCES).map(|i| f.check_log(i, &expect[i])).sum();
    println!("ECMP mapping log: {log_lines} block-allocated lines (clients x tcp/udp/icmp)");

    // ------------------------------- 4. an instance leaves the multipath group
    let moved = on(REMOVED);
    let others: Vec<String> = f
        .clients
        .iter()
        .filter(|c| !moved.contains(c))
        .cloned()
        .collect();
    let pings: Vec<(String, u32, String)> = f
        .clients
        .iter()
        .enumerate()
        .map(|(k, c)| {
            let log = format!("ping-{k}.log");
            let argv = [
                "ping",
                "-6",
                "-n",
                "-i",
                "0.2",
                "-c",
                &PINGS.to_string(),
                "-W",
                "2",
                "-I",
                c,
                SERVER4_V6,
            ];
            (c.clone(), t.spawn(&t.c6, &argv, &log), log)
        })
        .collect();
    // Every ping answered a few times before the group changes.
    let t0 = Instant::now();
    while !pings
        .iter()
        .all(|(_, _, log)| t.log(log).matches("icmp_seq=").count() >= 3)
    {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "pings not answered before the removal\n{}",
            f.logs_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let removed_at = now_ns();
    t.ok(
        &t.x,
        &format!("ip nexthop replace {}", group_spec(Some(REMOVED))),
    );
    // The moved clients' new flows: an HTTP GET each, retried until it
    // works (10 s), with the time it did.
    let script = format!(
        "for a in {}; do ( end=$(( $(date +%s) + 10 )); while :; do \
           if r=$(curl -sS --max-time 1 --interface $a http://[{SERVER4_V6}]:{PORT}/ 2>/dev/null); \
           then echo \"$a $(date +%s%N) $r\"; break; fi; \
           if [ $(date +%s) -ge $end ]; then echo \"$a FAIL\"; break; fi; sleep 0.02; done ) & \
         done; wait",
        moved.join(" ")
    );
    let out = t.ok(&t.c6, &script);
    let mut recovery_ms = 0u128;
    let mut after: BTreeMap<String, (Ipv4Addr, u16)> = BTreeMap::new();
    for l in out.lines() {
        if let [c, ns, e] = l.split_whitespace().collect::<Vec<_>>()[..] {
            let ns: u128 = ns.parse().expect("date +%s%N");
            recovery_ms = recovery_ms.max(ns.saturating_sub(removed_at) / 1_000_000);
            after.insert(c.to_string(), endpoint(e).expect("ADDR:PORT"));
        }
    }
    assert_eq!(
        after.len(),
        moved.len(),
        "moved clients without a working flow after the removal:\n{out}\n{}",
        f.logs_tail()
    );
    for (c, (a, p)) in &after {
        let j = owner(*a).unwrap_or_else(|| panic!("{c}: {a} is not in the pool"));
        assert_ne!(j, REMOVED, "{c} still served by the removed instance ({a})");
        assert_eq!(
            (*a, p / BLOCK * BLOCK),
            slot(j, number(c)),
            "{c} moved to instance {j}: not its slot there"
        );
    }
    assert!(
        recovery_ms < 5000,
        "moved clients recovered only after {recovery_ms} ms"
    );
    // The others stay where they were: same address, same block.
    let still = f.http(&others, 1);
    for c in &others {
        let (a, p) = still[c][0];
        assert_eq!(
            (a, p / BLOCK * BLOCK),
            (mapped[c].0, mapped[c].1["tcp"]),
            "{c} changed address or block though its instance stayed in the group"
        );
    }
    let mut lost = [0u32; 2]; // others, moved
    let mut lost_by: Vec<String> = Vec::new();
    for (c, pid, log) in &pings {
        let code = t.wait_exit(*pid, Duration::from_secs(20));
        let out = t.log(log);
        let (tx, rx) =
            ping_counts(&out).unwrap_or_else(|| panic!("ping from {c} ({code:?}):\n{out}"));
        assert_eq!(tx, PINGS, "ping from {c}:\n{out}");
        lost[usize::from(moved.contains(c))] += tx - rx;
        if tx != rx {
            lost_by.push(format!("{c}:{}", tx - rx));
        }
    }
    println!("ECMP pings lost (client:count): {lost_by:?}");
    // The group's change does not touch the other instances' buckets: their
    // clients' packets take the path they took, not one is lost.
    assert_eq!(
        lost[0], 0,
        "clients of the remaining instances lost pings: {lost_by:?}"
    );
    // A moved client's next echo request goes to another instance, which
    // makes a binding for it; the reply to the one in flight at the swap
    // still comes back through the removed instance (it still runs). At
    // most one each (one echo request racing the swap).
    assert!(
        lost[1] as usize <= moved.len(),
        "moved clients lost more than one ping each: {lost_by:?}"
    );
    // Their new instances logged a TCP and an ICMP block for them; the
    // removed one logged nothing more.
    for (c, (a, p)) in &after {
        let j = owner(*a).unwrap();
        expect[j].insert((c.clone(), "tcp".into()), (*a, p / BLOCK * BLOCK));
        expect[j].insert((c.clone(), "icmp".into()), (*a, p / BLOCK * BLOCK));
    }
    for (i, e) in expect.iter().enumerate() {
        f.check_log(i, e);
    }

    // -------------------- 5. the same address and block after a restart
    let before: BTreeMap<String, (Ipv4Addr, u16)> = f
        .clients
        .iter()
        .filter_map(|c| {
            let (a, lo) = match after.get(c) {
                Some((a, p)) => (*a, p / BLOCK * BLOCK),
                None => (mapped[c].0, mapped[c].1["tcp"]),
            };
            (owner(a) == Some(RESTARTED)).then(|| (c.clone(), (a, lo)))
        })
        .collect();
    let logged = f.blocks(RESTARTED).len();
    t.signal(f.pids[RESTARTED], libc::SIGTERM);
    assert!(
        t.wait_exit(f.pids[RESTARTED], Duration::from_secs(10))
            .is_some(),
        "instance {RESTARTED} did not stop on SIGTERM\n{}",
        f.logs_tail()
    );
    let log2 = format!("nat64-i{RESTARTED}-again.log");
    let pid = f.spawn_instance(RESTARTED, &log2);
    f.wait_running(pid, &log2);
    let names: Vec<String> = before.keys().cloned().collect();
    let again = f.http(&names, 1);
    let mut same = 0;
    for (c, (a, lo)) in &before {
        let (a2, p2) = again[c][0];
        assert_eq!(
            (a2, p2 / BLOCK * BLOCK),
            (*a, *lo),
            "{c}: another address or block after instance {RESTARTED} restarted"
        );
        same += 1;
    }
    // Its mapping log says so too.
    let lines = f.wait_blocks(RESTARTED, logged, before.len());
    let relogged: BTreeMap<&str, (Ipv4Addr, u16)> = lines[logged..]
        .iter()
        .filter(|b| b.kind == "block-allocated" && b.proto == "tcp")
        .map(|b| (b.v6.as_str(), (b.v4, b.lo)))
        .collect();
    assert_eq!(
        relogged,
        before.iter().map(|(c, e)| (c.as_str(), *e)).collect(),
        "instance {RESTARTED}'s mapping log after the restart"
    );

    let took = started.elapsed();
    println!(
        "ECMP-RESULT clients={CLIENTS} split={split_s} removed=i{REMOVED} moved={} \
         recovery_ms={recovery_ms} others_lost={} moved_lost={} restart_same={same}/{} \
         offload={} elapsed_ms={}",
        moved.len(),
        lost[0],
        lost[1],
        before.len(),
        if offloads_on() { "on" } else { "off" },
        took.as_millis()
    );
    assert!(took < Duration::from_secs(90), "the test took {took:?}");
}
