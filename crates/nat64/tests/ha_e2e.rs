//! End-to-end test of a hitless HA pair in kernel NAPT mode: two nat64
//! nodes with the same config (`napt = "kernel"`, `egress-v4` = the IPv4
//! VRRP address), real keepalived (VRRPv3, one instance per family in a
//! sync group) and real conntrackd (FTFW over UDP on a dedicated link).
//! While TCP and UDP flows run between the IPv6-only clients and the
//! IPv4-only server, node A dies (SIGKILL of nat64,
//! keepalived and conntrackd); node B takes the VRRP addresses, commits the
//! replicated conntrack entries into its kernel, and both flows go on with
//! the same public address and port.
//!
//! ```text
//!  client6 (IPv6-only)      node A: the xlat namespace, MASTER (150)      server4 (IPv4-only)
//!                      +-- a6 === lan6 2001:db8:1::a   lan4 198.51.100.11 === a4 --+
//!  br6 2001:db8:1::2 --+          nat64 + keepalived + conntrackd                   +-- br4 198.51.100.2
//!                      |          sync 192.0.2.1                                    |
//!                      |            || conntrackd FTFW over UDP (port 3780)         |
//!                      |          sync 192.0.2.2                                    |
//!                      +-- b6 === lan6 2001:db8:1::b   lan4 198.51.100.12 === b4 --+
//!                                 node B: the same, BACKUP (100)
//!
//!  VIPs, on the MASTER: 2001:db8:1::1/128 on lan6, 203.0.113.10/32 on lan4
//!  client: route 2001:db8:64::/96 via 2001:db8:1::1
//!  server: route 203.0.113.10/32 dev br4 (on-link: ARP finds the MASTER)
//!  nodes:  nft ip saddr 100.64.0.0/16 oifname != "nat64" snat to 203.0.113.10
//! ```
//!
//! br6 and br4 are Linux bridges inside the client and server namespaces
//! (the two LANs); VRRP adverts go over them. The nodes run with
//! `nf_conntrack_tcp_loose = 0`, so the TCP stream can only go on through
//! the conntrack entry that conntrackd replicated and B committed (with
//! loose pickup B's kernel would adopt it by itself). Root only, a loud SKIP
//! otherwise; without keepalived/conntrackd/conntrack a loud SKIP too,
//! except under CI (`CI` set), where that is a failure.
//!
//! The test prints one greppable line with what it measured:
//! `HA-RESULT tcp_gap_ms=.. udp_lost=.. udp_sent=.. udp_gap_ms=.. tcp_kept=..
//! same_public=.. dl_gap_ms=.. push_received=.. leases_recovered=.. ...`.
//!
//! Four flows cross the failover: an upload (iperf3, client ::2), a paced
//! UDP flow both ways (::2), a download (`iperf3 -R`, client ::3: the
//! client only ACKs) and a UDP flow only the server speaks in after the
//! client's first datagram (`udp_push.py`, client ::4). Node B's nat64
//! gets a client's inner address (the same on both nodes: a fixed hash of
//! the IPv6 address) from the client's next packet; for a client with
//! nothing to send, `lease-recovery = "conntrack"` finds it in the IPv6
//! conntrack entry conntrackd replicated (the nodes track IPv6 forwarding
//! into the TUN for that) when the server's packet finds no lease; the
//! test asserts that B recovered leases that way. `egress-v4` also makes
//! the nodes drop (not answer) packets to the VRRP address that no NAT
//! entry claims: B gets the address a moment before it commits the
//! entries, and a RST from B then would end the download.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;

/// The IPv6 VRRP address: the client's gateway to the NAT64 prefix.
const VIP6: &str = "2001:db8:1::1";
/// The IPv4 VRRP address, and `egress-v4` of both nodes.
const VIP4: &str = "203.0.113.10";
/// A third client: one datagram, then it only receives (`udp_push.py`).
const CLIENT6_C: &str = "2001:db8:1::4";
const INNER: &str = "100.64.0.0/16";
const GW4: &str = "100.65.0.1";
/// The UDP flow's client port (fixed, so the NAT's port is known).
const UDP_SPORT: u16 = 40007;
/// Traffic runs this long; node A dies [`KILL_AFTER`] into it.
const TRAFFIC_S: u64 = 10;
const KILL_AFTER: Duration = Duration::from_secs(3);
/// The UDP flow's pace: one datagram per this many milliseconds.
const UDP_EVERY_MS: u64 = 10;

/// One HA node: namespace, its addresses, what it runs.
struct Node {
    name: &'static str,
    ns: String,
    lan6: &'static str,
    lan4: &'static str,
    sync: &'static str,
    peer_sync: &'static str,
    priority: u8,
    state: &'static str,
}

impl Node {
    fn file(&self, t: &Topo, what: &str) -> String {
        t.dir
            .join(format!("{}-{what}", self.name))
            .display()
            .to_string()
    }
}

fn tool_present(t: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {t}"))
        .stdout(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The nat64 config of both nodes (only the lease file differs). With
/// `NAT64_E2E_FAST_PATH=on`, the fast path on the client side (kernel
/// mode: conntrack still sees every packet, so replication and the
/// failover work the same).
fn nat64_config(t: &Topo, n: &Node) -> String {
    let fast = if fast_path_on() && fast_path_modes(Mode::Kernel) {
        "fast-path = \"tc-bpf\"\nfast-path-interfaces = [\"lan6\"]\n"
    } else {
        ""
    };
    format!(
        "{fast}prefix = \"{PREFIX}\"\n\
         gateway-v4 = \"{GW4}\"\n\
         napt = \"kernel\"\n\
         inner-pool = \"{INNER}\"\n\
         egress-v4 = \"{VIP4}\"\n\
         lease-recovery = \"conntrack\"\n\
         state-file = \"{}\"\n\
         control = \"\"\n\
         metrics = \"\"\n\
         \n[tun]\nname = \"nat64\"\nqueues = 2\noffload = {}\n",
        n.file(t, "leases"),
        offloads_on()
    )
}

/// conntrackd: FTFW (reliable, acknowledged) over UDP on the sync link,
/// the external cache kept in user space until the notify script commits
/// it (`conntrackd -c`) when this node becomes MASTER. Own socket, lock
/// file and log in the test's directory; TCP and UDP only, nothing of the
/// sync link itself.
fn conntrackd_config(t: &Topo, n: &Node) -> String {
    format!(
        "Sync {{\n\
         \tMode FTFW {{\n\
         \t}}\n\
         \tUDP {{\n\
         \t\tIPv4_address {}\n\
         \t\tIPv4_Destination_Address {}\n\
         \t\tPort 3780\n\
         \t\tInterface sync\n\
         \t\tSndSocketBuffer 1249280\n\
         \t\tRcvSocketBuffer 1249280\n\
         \t\tChecksum on\n\
         \t}}\n\
         }}\n\
         General {{\n\
         \tHashSize 8192\n\
         \tHashLimit 65535\n\
         \tLogFile {}\n\
         \tSyslog off\n\
         \tLockFile {}\n\
         \tUNIX {{\n\
         \t\tPath {}\n\
         \t}}\n\
         \tNetlinkBufferSize 2097152\n\
         \tNetlinkBufferSizeMaxGrowth 8388608\n\
         \tFilter From Userspace {{\n\
         \t\tProtocol Accept {{\n\
         \t\t\tTCP\n\
         \t\t\tUDP\n\
         \t\t}}\n\
         \t\tAddress Ignore {{\n\
         \t\t\tIPv4_address 127.0.0.1\n\
         \t\t\tIPv4_address 192.0.2.0/24\n\
         \t\t}}\n\
         \t}}\n\
         }}\n",
        n.sync,
        n.peer_sync,
        n.file(t, "conntrackd.log"),
        n.file(t, "conntrackd.lock"),
        n.file(t, "conntrackd.sock"),
    )
}

/// The sync group's notify script: the conntrackd user manual's
/// primary-backup.sh, minus its logger calls. MASTER: commit the external
/// cache into the kernel, flush the caches, resync the internal cache
/// from the kernel, bulk-send it to the peer. BACKUP: shorten the kernel
/// timers of stale entries, ask the master for a resync. Every call is
/// timestamped into `<node>-notify.log`.
fn notify_script(t: &Topo, n: &Node) -> String {
    format!(
        "#!/bin/sh\n\
         C=\"conntrackd -C {conf}\"\n\
         L={log}\n\
         echo \"$(date +%s.%N) start $1\" >> $L\n\
         case \"$1\" in\n\
         master) $C -c; $C -f; $C -R; $C -B ;;\n\
         backup) $C -t; $C -n ;;\n\
         fault) $C -t ;;\n\
         esac >> $L 2>&1\n\
         echo \"$(date +%s.%N) done $1\" >> $L\n",
        conf = n.file(t, "conntrackd.conf"),
        log = n.file(t, "notify.log"),
    )
}

/// keepalived: VRRPv3 with 0.2 s adverts (master down after ~0.7 s), one
/// instance per family on its LAN, both in one sync group so the two
/// addresses move together and the group's notify script runs once.
fn keepalived_config(t: &Topo, n: &Node) -> String {
    let notify = n.file(t, "notify.sh");
    format!(
        "global_defs {{\n\
         \trouter_id nat64-{name}\n\
         \tvrrp_version 3\n\
         \tscript_user root\n\
         }}\n\
         vrrp_sync_group NAT64 {{\n\
         \tgroup {{\n\
         \t\tV4\n\
         \t\tV6\n\
         \t}}\n\
         \tnotify_master \"{notify} master\"\n\
         \tnotify_backup \"{notify} backup\"\n\
         \tnotify_fault \"{notify} fault\"\n\
         }}\n\
         vrrp_instance V4 {{\n\
         \tstate {state}\n\
         \tinterface lan4\n\
         \tvirtual_router_id 64\n\
         \tpriority {prio}\n\
         \tadvert_int 0.2\n\
         \tvirtual_ipaddress {{\n\
         \t\t{VIP4}/32 dev lan4\n\
         \t}}\n\
         }}\n\
         vrrp_instance V6 {{\n\
         \tstate {state}\n\
         \tinterface lan6\n\
         \tvirtual_router_id 66\n\
         \tpriority {prio}\n\
         \tadvert_int 0.2\n\
         \tvirtual_ipaddress {{\n\
         \t\t{VIP6}/128 dev lan6\n\
         \t}}\n\
         }}\n",
        name = n.name,
        state = n.state,
        prio = n.priority,
    )
}

/// Starts nat64 in the node's namespace and waits until it runs.
fn start_nat64(t: &Topo, n: &Node) -> u32 {
    let conf = n.file(t, "nat64.toml");
    std::fs::write(&conf, nat64_config(t, n)).expect("writing nat64.toml");
    let log = format!("{}-nat64.log", n.name);
    let pid = t.spawn(&n.ns, &[bin(), "run", "--config", &conf], &log);
    wait_for(t, &log, "nat64 running", pid, Duration::from_secs(20));
    t.check_fast_path(&log, fast_path_on() && fast_path_modes(Mode::Kernel));
    pid
}

fn start_conntrackd(t: &Topo, n: &Node) -> u32 {
    let conf = n.file(t, "conntrackd.conf");
    std::fs::write(&conf, conntrackd_config(t, n)).expect("writing conntrackd.conf");
    let log = format!("{}-conntrackd.out", n.name);
    // Without -d: in the foreground ("console mode").
    let pid = t.spawn(&n.ns, &["conntrackd", "-C", &conf], &log);
    wait_for(
        t,
        &log,
        "initialization completed",
        pid,
        Duration::from_secs(10),
    );
    pid
}

/// keepalived in the foreground (`-n`), VRRP only (`-P`), logging to the
/// console (`-l -D`, no syslog `-G`), no respawn of a dead child (`-R`),
/// with the node's own pid files. Returns the parent's PID; the VRRP
/// child's is in `<node>-vrrp.pid`.
fn start_keepalived(t: &Topo, n: &Node) -> u32 {
    let conf = n.file(t, "keepalived.conf");
    let notify = n.file(t, "notify.sh");
    std::fs::write(&notify, notify_script(t, n)).expect("writing notify.sh");
    std::fs::set_permissions(&notify, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod notify.sh");
    std::fs::write(&conf, keepalived_config(t, n)).expect("writing keepalived.conf");
    let (pid_main, pid_vrrp) = (n.file(t, "keepalived.pid"), n.file(t, "vrrp.pid"));
    t.spawn(
        &n.ns,
        &[
            "keepalived",
            "-n",
            "-P",
            "-l",
            "-D",
            "-G",
            "-R",
            "-f",
            &conf,
            "-p",
            &pid_main,
            "-r",
            &pid_vrrp,
        ],
        &format!("{}-keepalived.log", n.name),
    )
}

/// Waits until `log` contains `what` while `pid` lives.
fn wait_for(t: &Topo, log: &str, what: &str, pid: u32, limit: Duration) {
    let t0 = Instant::now();
    while !t.log(log).contains(what) {
        assert!(
            t.alive(pid),
            "{log}: exited before {what:?}\n{}",
            t.log(log)
        );
        assert!(
            t0.elapsed() < limit,
            "{log}: no {what:?} after {limit:?}\n{}",
            t.log(log)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until the node's notify log says the `state` script finished.
fn wait_notified(t: &Topo, n: &Node, state: &str, limit: Duration) {
    let log = format!("{}-notify.log", n.name);
    let t0 = Instant::now();
    while !t.log(&log).contains(&format!(" done {state}")) {
        assert!(
            t0.elapsed() < limit,
            "node {} not {state} after {limit:?}\nnotify:\n{}\nkeepalived:\n{}",
            n.name,
            t.log(&log),
            t.log(&format!("{}-keepalived.log", n.name))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Unix time (s) of the first `<stamp> done <state>` line of a notify log.
fn notified_at(log: &str, state: &str) -> Option<f64> {
    log.lines()
        .filter(|l| l.ends_with(&format!(" done {state}")))
        .find_map(|l| l.split_whitespace().next()?.parse().ok())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// The established TCP sockets of the iperf3 server: (peer, bytes_received).
fn server_sockets(t: &Topo) -> Vec<(String, u64)> {
    let out = t.ok(&t.s4, "ss -tinH state established '( sport = :5201 )'");
    let mut socks = Vec::new();
    let mut peer: Option<String> = None;
    for l in out.lines() {
        if l.starts_with(|c: char| c.is_whitespace()) {
            if let Some(p) = peer.take() {
                let rx = l
                    .split_whitespace()
                    .find_map(|kv| kv.strip_prefix("bytes_received:"))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                socks.push((p, rx));
            }
        } else {
            // "Recv-Q Send-Q Local:Port Peer:Port" (state filtered: no
            // state column).
            peer = l.split_whitespace().nth(3).map(str::to_string);
        }
    }
    socks
}

/// SIGKILLs the VRRP child of a keepalived this test started: its PID
/// from the node's pid file, checked to be that keepalived's child.
fn kill_vrrp_child(t: &Topo, n: &Node, parent: u32) {
    let pid: i32 = std::fs::read_to_string(n.file(t, "vrrp.pid"))
        .expect("reading the VRRP child's pid file")
        .trim()
        .parse()
        .expect("a PID in the VRRP pid file");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // "pid (comm) state ppid ...": the field after the closing parenthesis.
    let ppid: u32 = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0);
    assert_eq!(
        ppid, parent,
        "pid {pid} of {} is not our keepalived's child",
        n.name
    );
    // SAFETY: kill(2) on the child of a process this test started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// The longest run of empty 0.1 s intervals in an iperf3 JSON report (ms),
/// and the bytes after it.
fn longest_gap(report: &serde_json::Value) -> (u64, u64) {
    let intervals = report["intervals"].as_array().cloned().unwrap_or_default();
    let (mut gap, mut run, mut gap_end) = (0.0f64, 0.0f64, 0usize);
    for (i, iv) in intervals.iter().enumerate() {
        let s = &iv["sum"];
        if s["bytes"].as_u64().unwrap_or(0) == 0 {
            run += s["seconds"].as_f64().unwrap_or(0.0);
            if run > gap {
                (gap, gap_end) = (run, i);
            }
        } else {
            run = 0.0;
        }
    }
    let after = intervals
        .iter()
        .skip(gap_end + 1)
        .map(|iv| iv["sum"]["bytes"].as_u64().unwrap_or(0))
        .sum();
    ((gap * 1000.0).round() as u64, after)
}

fn json(s: &str, what: &str, context: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{what}: not JSON ({e}):\n{s}\n{context}"))
}

#[test]
fn ha_pair_failover_keeps_flows_kernel() {
    let missing: Vec<&str> = ["keepalived", "conntrackd", "conntrack"]
        .into_iter()
        .filter(|t| !tool_present(t))
        .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "missing {missing:?} under CI: contrib/setup.sh installs them"
        );
        eprintln!(
            "\n*** SKIP ha_pair_failover_keeps_flows_kernel: {missing:?} not installed (run \
             contrib/setup.sh as root). The HA failover test did NOT run. ***\n"
        );
        return;
    }
    let Some(t) = Topo::new("ha", Napt::Kernel) else {
        return;
    };
    let b_ns = t.add_ns("b");
    let a = Node {
        name: "a",
        ns: t.x.clone(),
        lan6: "2001:db8:1::a",
        lan4: "198.51.100.11",
        sync: "192.0.2.1",
        peer_sync: "192.0.2.2",
        priority: 150,
        state: "MASTER",
    };
    let b = Node {
        name: "b",
        ns: b_ns,
        lan6: "2001:db8:1::b",
        lan4: "198.51.100.12",
        sync: "192.0.2.2",
        peer_sync: "192.0.2.1",
        priority: 100,
        state: "BACKUP",
    };

    // ---- topology: drop the default line, build the two LANs ----
    t.ok(&t.c6, "ip link del v6c");
    t.ok(&t.s4, "ip link del v4s");
    // No DAD: the VRRP adverts need the link-local addresses at once, and
    // B adds the IPv6 VIP while the dead node A still has it (nobody is
    // left there to remove it).
    for ns in [&t.c6, &a.ns, &b.ns] {
        t.sysctl(ns, "net.ipv6.conf.all.accept_dad=0");
        t.sysctl(ns, "net.ipv6.conf.default.accept_dad=0");
        t.sysctl(ns, "net.ipv6.conf.default.accept_ra=0");
    }
    for ns in [&a.ns, &b.ns] {
        t.sysctl(ns, "net.ipv4.ip_forward=1");
        t.sysctl(ns, "net.ipv6.conf.all.forwarding=1");
    }
    t.ok(&t.c6, "ip link add br6 type bridge mcast_snooping 0");
    t.ok(&t.s4, "ip link add br4 type bridge mcast_snooping 0");
    for n in [&a, &b] {
        let (p6, p4) = (format!("{}6", n.name), format!("{}4", n.name));
        t.veth(&t.c6, &p6, &n.ns, "lan6");
        t.veth(&t.s4, &p4, &n.ns, "lan4");
        t.ok(&t.c6, &format!("ip link set {p6} master br6"));
        t.ok(&t.s4, &format!("ip link set {p4} master br4"));
        t.ok(
            &n.ns,
            &format!(
                "ip addr add {}/64 dev lan6 nodad && ip addr add {}/24 dev lan4",
                n.lan6, n.lan4
            ),
        );
    }
    t.veth(&a.ns, "sync", &b.ns, "sync");
    t.ok(&a.ns, &format!("ip addr add {}/24 dev sync", a.sync));
    t.ok(&b.ns, &format!("ip addr add {}/24 dev sync", b.sync));
    t.ok(
        &t.c6,
        &format!(
            "ip link set br6 up && ip addr add {CLIENT6}/64 dev br6 nodad && \
             ip addr add {CLIENT6_B}/64 dev br6 nodad && ip addr add {CLIENT6_C}/64 dev br6 nodad \
             && ip -6 route add {PREFIX} via {VIP6}"
        ),
    );
    t.ok(
        &t.s4,
        &format!(
            "ip link set br4 up && ip addr add {SERVER4}/24 dev br4 && \
             ip route add {VIP4}/32 dev br4"
        ),
    );

    // ---- the pair: nat64 and conntrackd on both, then VRRP ----
    let nat64_a = start_nat64(&t, &a);
    let nat64_b = start_nat64(&t, &b);
    // No mid-stream pickup (set once nat64's NAT table has loaded
    // conntrack): with the default (1) B's conntrack would adopt the TCP
    // flow by itself from the client's next segment (and SNAT keeps a free
    // port), so the stream would survive without conntrackd and the test
    // would prove nothing about the replicated state. With 0 (as hardened
    // firewalls run) only the entry conntrackd committed carries the TCP
    // flow: tried without the commit, the stream stops for good.
    for n in [&a, &b] {
        t.sysctl(&n.ns, "net.netfilter.nf_conntrack_tcp_loose=0");
    }
    let ctd_a = start_conntrackd(&t, &a);
    start_conntrackd(&t, &b);
    let ka_a = start_keepalived(&t, &a);
    wait_notified(&t, &a, "master", Duration::from_secs(10));
    start_keepalived(&t, &b);
    wait_notified(&t, &b, "backup", Duration::from_secs(10));
    let t0 = Instant::now();
    while !t
        .sh(&t.c6, &format!("ping -6 -n -c 1 -W 1 {SERVER4_V6}"))
        .ok
    {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "no path through the master\n{}",
            t.log("a-nat64.log")
        );
    }

    // ---- servers, then the two flows ----
    t.udp_echo4();
    let dir = t.dir.display().to_string();
    let iperf3s = t.spawn(
        &t.s4,
        &[
            "bash",
            "-c",
            &format!(
                "exec iperf3 -s -1 -B {SERVER4} -p 5201 -i 0.1 -J > {dir}/iperf3s.json 2> \
                 {dir}/iperf3s.err"
            ),
        ],
        "iperf3s.out",
    );
    let iperf3s_dl = t.spawn(
        &t.s4,
        &[
            "bash",
            "-c",
            &format!(
                "exec iperf3 -s -1 -B {SERVER4} -p 5202 -J > {dir}/iperf3s_dl.json 2> \
                 {dir}/iperf3s_dl.err"
            ),
        ],
        "iperf3s_dl.out",
    );
    t.wait_listen(&t.s4, "5201", "t");
    t.wait_listen(&t.s4, "5202", "t");
    // Bounded rate: the VM has two cores for both nodes, the client, the
    // server and the test.
    let iperf3c = t.spawn(
        &t.c6,
        &[
            "bash",
            "-c",
            &format!(
                "exec iperf3 -c {SERVER4_V6} -p 5201 -t {TRAFFIC_S} -i 0.1 -b 50M -J \
                 --connect-timeout 5000 > {dir}/iperf3c.json 2> {dir}/iperf3c.err"
            ),
        ],
        "iperf3c.out",
    );
    // A download from a second client (CLIENT6_B, nothing else running):
    // only the server sends data, the client only ACKs what arrives. After
    // the failover B has no lease for that client's inner address until
    // `lease-recovery` finds it in the replicated IPv6 conntrack entry (the
    // client has nothing to send that would make B allocate it).
    let iperf3c_dl = t.spawn(
        &t.c6,
        &[
            "bash",
            "-c",
            &format!(
                "exec iperf3 -c {SERVER4_V6} -B {CLIENT6_B} -p 5202 -R -t {TRAFFIC_S} -i 0.1 \
                 -b 20M -J \
                 --connect-timeout 5000 > {dir}/iperf3c_dl.json 2> {dir}/iperf3c_dl.err"
            ),
        ],
        "iperf3c_dl.out",
    );
    // A UDP flow where only the server speaks after the client's first
    // datagram (a third client, ::4): nothing from the client can make B
    // allocate its lease, so only `lease-recovery` can carry it on.
    let push = support_dir().join("udp_push.py");
    let push_s = t.spawn(
        &t.s4,
        &[
            "python3",
            &push.to_string_lossy(),
            "server",
            "7008",
            &TRAFFIC_S.to_string(),
            &UDP_EVERY_MS.to_string(),
        ],
        "udp_push_server.json",
    );
    t.wait_listen(&t.s4, "7008", "u");
    let push_c = t.spawn(
        &t.c6,
        &[
            "python3",
            &push.to_string_lossy(),
            "client",
            CLIENT6_C,
            SERVER4_V6,
            "7008",
            &TRAFFIC_S.to_string(),
        ],
        "udp_push_client.json",
    );
    let script = support_dir().join("udp_stream.py");
    let udp = t.spawn(
        &t.c6,
        &[
            "python3",
            &script.to_string_lossy(),
            CLIENT6,
            &UDP_SPORT.to_string(),
            SERVER4_V6,
            "7007",
            &TRAFFIC_S.to_string(),
            &UDP_EVERY_MS.to_string(),
        ],
        "udp_stream.json",
    );
    std::thread::sleep(KILL_AFTER);

    // ---- before the failure: the flows are on A and replicated to B ----
    let b_notify = t.log("b-notify.log");
    assert!(
        !b_notify.contains("start master"),
        "B became MASTER while A was alive (VRRP adverts lost?)\n{b_notify}\n{}",
        t.log("b-keepalived.log")
    );
    let ct_a = t.ok(
        &a.ns,
        "conntrack -L 2>/dev/null | grep -E 'dport=(5201|7007) ' || true",
    );
    let ext_b = t.ok(
        &b.ns,
        &format!("conntrackd -C {} -e", b.file(&t, "conntrackd.conf")),
    );
    let replicated = ext_b
        .lines()
        .filter(|l| l.contains("dport=5201") || l.contains("dport=7007"))
        .count();
    let before = server_sockets(&t);

    // ---- node A dies: keepalived (stopped first so it cannot react to its
    // VRRP child's death), its VRRP child, nat64 and conntrackd, all
    // SIGKILL. A keeps its links and the VIPs keepalived had added (nobody
    // is left to remove them), as a hung or crashed host would; the LAN
    // neighbours follow B's gratuitous ARP / unsolicited NA. ----
    t.signal(ka_a, libc::SIGSTOP);
    kill_vrrp_child(&t, &a, ka_a);
    t.signal(ka_a, libc::SIGKILL);
    t.signal(nat64_a, libc::SIGKILL);
    t.signal(ctd_a, libc::SIGKILL);
    let killed_at = unix_now();
    let killed = Instant::now();

    wait_notified(&t, &b, "master", Duration::from_secs(10));
    let takeover_ms =
        notified_at(&t.log("b-notify.log"), "master").map_or(-1.0, |at| (at - killed_at) * 1000.0);
    // Let the flows settle on B, then look at what B and the server see.
    std::thread::sleep(Duration::from_millis(2500).saturating_sub(killed.elapsed()));
    let after = server_sockets(&t);
    let ct_b = t.ok(
        &b.ns,
        "conntrack -L 2>/dev/null | grep -E 'dport=(5201|7007) ' || true",
    );
    let stats_b = t.stats_in(nat64_b, "b-nat64.log");

    // ---- the flows end ----
    let limit = Duration::from_secs(TRAFFIC_S + 15);
    let rc_c = t.wait_exit(iperf3c, limit);
    let rc_u = t.wait_exit(udp, limit);
    let rc_dl = t.wait_exit(iperf3c_dl, limit);
    let rc_push = t.wait_exit(push_c, limit);
    let _ = t.wait_exit(push_s, Duration::from_secs(5));
    let rc_s = t.wait_exit(iperf3s, Duration::from_secs(10));
    let _ = t.wait_exit(iperf3s_dl, Duration::from_secs(10));
    let ctd_log_b = t.log("b-conntrackd.log");
    let context = format!(
        "A conntrack before:\n{ct_a}\nB external cache before:\n{ext_b}\nB conntrack after:\n\
         {ct_b}\nserver sockets before {before:?} after {after:?}\nB conntrackd log:\n\
         {ctd_log_b}\nB notify:\n{}\nB keepalived:\n{}\nB nat64:\n{}",
        t.log("b-notify.log"),
        t.log("b-keepalived.log"),
        t.log("b-nat64.log"),
    );

    assert!(
        rc_c.is_some(),
        "iperf3 client still running {limit:?} after the failover: the TCP stream stalled\n\
         {context}"
    );
    let client = json(&t.log("iperf3c.json"), "iperf3 client", &context);
    let server = json(&t.log("iperf3s.json"), "iperf3 server", &context);
    let u = json(t.log("udp_stream.json").trim(), "udp_stream.py", &context);

    // ---- measure ----
    // TCP: the receiver's (server's) 0.1 s intervals; the gap is the
    // longest run of intervals in which nothing arrived.
    let (tcp_gap_ms, bytes_after) = longest_gap(&server);
    // The download: the receiver is the client.
    let dl = json(
        &t.log("iperf3c_dl.json"),
        "iperf3 download client",
        &context,
    );
    let (dl_gap_ms, dl_bytes_after) = longest_gap(&dl);
    let recovered = t
        .log("b-nat64.log")
        .matches("lease recovered from conntrack")
        .count();
    let pushed = json(
        t.log("udp_push_client.json").trim(),
        "udp_push.py client",
        &context,
    );
    let push_sent = json(
        t.log("udp_push_server.json").trim(),
        "udp_push.py server",
        &context,
    )["sent"]
        .as_u64()
        .unwrap_or(0);
    let push_got = pushed["received"].as_u64().unwrap_or(0);
    let push_last = pushed["last"].as_u64().unwrap_or(0);
    let push_gap_ms = pushed["max_gap_ms"].as_f64().unwrap_or(-1.0);
    let connected = &server["start"]["connected"][0];
    let public = format!(
        "{}:{}",
        connected["remote_host"].as_str().unwrap_or("?"),
        connected["remote_port"].as_u64().unwrap_or(0)
    );
    // The server's data socket (peer = the public address:port) kept
    // receiving after the failover: a segment from any other address or
    // port would not have reached it.
    let rx = |socks: &[(String, u64)]| {
        socks
            .iter()
            .find(|(p, _)| *p == public)
            .map_or(0, |(_, rx)| *rx)
    };
    let (rx_before, rx_after) = (rx(&before), rx(&after));
    let nat_port = public.rsplit(':').next().unwrap_or("?").to_string();
    let b_has_tcp = ct_b.lines().any(|l| {
        l.contains(&format!("dst={VIP4} sport=5201 dport={nat_port} ")) && l.contains("ESTABLISHED")
    });
    // UDP: every datagram the echo server saw came from one public
    // address:port, before and after.
    let peers = t.udp_echo_peers();
    let udp_peer = format!("{VIP4}:{UDP_SPORT}");
    let (sent, lost) = (
        u["sent"].as_u64().unwrap_or(0),
        u["lost"].as_u64().unwrap_or(u64::MAX),
    );
    let last_lost = u["last_lost"].as_i64().unwrap_or(-1);
    let udp_gap_ms = u["max_gap_ms"].as_f64().unwrap_or(-1.0);
    let committed: u64 = ctd_log_b
        .lines()
        .filter_map(|l| {
            l.split_once("Committed ")?
                .1
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    let tcp_kept = rc_c == Some(0)
        && client.get("error").is_none()
        && bytes_after > 1_000_000
        && rx_after > rx_before;
    let same_public = public.starts_with(&format!("{VIP4}:"))
        && b_has_tcp
        && peers.len() == 1
        && peers.contains(&udp_peer);

    eprintln!(
        "HA-RESULT tcp_gap_ms={tcp_gap_ms} udp_lost={lost} udp_sent={sent} \
         udp_gap_ms={udp_gap_ms} tcp_kept={tcp_kept} same_public={same_public} \
         tcp_public={public} udp_public={} vrrp_takeover_ms={takeover_ms:.0} \
         replicated={replicated} committed={committed} tcp_bytes_after={bytes_after} \
         b_translated_6to4={} dl_gap_ms={dl_gap_ms} dl_bytes_after={dl_bytes_after} \
         dl_kept={} push_sent={push_sent} push_received={push_got} push_gap_ms={push_gap_ms} \
         leases_recovered={recovered} offload={}",
        peers.iter().cloned().collect::<Vec<_>>().join(","),
        stats_b.get("translated_6to4").copied().unwrap_or(0),
        rc_dl == Some(0),
        if offloads_on() { "on" } else { "off" },
    );
    // ---- assert ----
    assert!(
        replicated >= 2,
        "B's conntrackd had not received A's TCP and UDP entries\n{context}"
    );
    assert!(
        committed >= 1,
        "B's conntrackd committed nothing into its kernel\n{context}"
    );
    assert_eq!(rc_u, Some(0), "udp_stream.py failed\n{context}");
    assert_eq!(
        rc_s,
        Some(0),
        "iperf3 server: {}\n{context}",
        t.log("iperf3s.err")
    );
    assert!(
        tcp_kept,
        "TCP stream not kept: client rc {rc_c:?}, error {:?}, {bytes_after} bytes after the \
         gap, server socket {public} rx {rx_before} -> {rx_after}\n{}\n{context}",
        client.get("error"),
        t.log("iperf3c.err")
    );
    assert!(tcp_gap_ms < 5000, "TCP stalled {tcp_gap_ms} ms\n{context}");
    assert!(
        rc_dl == Some(0) && dl.get("error").is_none() && dl_bytes_after > 1_000_000,
        "the download did not survive the failover: rc {rc_dl:?}, error {:?}, {dl_bytes_after} \
         bytes after its gap, leases recovered on B: {recovered}\n{}\n{context}",
        dl.get("error"),
        t.log("iperf3c_dl.err")
    );
    assert!(
        dl_gap_ms < 5000,
        "download stalled {dl_gap_ms} ms\n{context}"
    );
    let per_s = 1000 / UDP_EVERY_MS;
    assert_eq!(rc_push, Some(0), "udp_push.py client failed\n{context}");
    assert!(
        recovered >= 1,
        "B recovered no lease from conntrack\n{context}"
    );
    // The server-only UDP flow: it lost the failover's datagrams, then
    // arrived to the end through B.
    assert!(
        push_got + 3 * per_s >= push_sent && push_last + per_s >= push_sent,
        "the server-only UDP flow did not survive: {push_got} of {push_sent} received, last \
         #{push_last}\n{context}"
    );
    assert!(
        same_public,
        "public address:port changed: TCP {public} (B's entry: {b_has_tcp}), UDP peers \
         {peers:?} (want {udp_peer})\n{context}"
    );
    // UDP: at most 3 s of datagrams lost in the failover, none in the last
    // second (the flow runs through B).
    assert!(lost <= 3 * per_s, "UDP lost {lost} of {sent}\n{context}");
    assert!(
        last_lost < sent as i64 - per_s as i64,
        "UDP still losing datagrams at the end (last lost #{last_lost} of {sent})\n{context}"
    );
    assert!(
        stats_b.get("translated_6to4").copied().unwrap_or(0) > 0,
        "B's nat64 translated nothing: {stats_b:?}\n{context}"
    );
}
