//! `nat64 check` refuses everything `nat64 run` would refuse because of a
//! setting, with the same message, naming the key (issue 11 item 12); and
//! what `check` accepts really runs.
//!
//! * `broken_configs_refused_naming_the_key`: each broken configuration
//!   makes `nat64 check --config FILE` exit 1 with the key in its message.
//!   As root, `nat64 run` is given the same file inside a throwaway network
//!   namespace (so that a configuration wrongly accepted cannot touch the
//!   host) and must print the very same message.
//! * `edge_configs_accepted`: valid configurations at the limits pass.
//! * `edge_configs_run` (root, /dev/net/tun): each of those runs in a fresh
//!   network namespace: "nat64 running", then exit 0 on SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nat64")
}

const DAEMON: &str = "prefix = \"2001:db8:64::/96\"\npool = [\"192.0.2.0/24\"]\n\
                      gateway-v4 = \"198.51.100.1\"\nmetrics = \"\"\ncontrol = \"\"\n";
const KERNEL: &str = "prefix = \"2001:db8:64::/96\"\nnapt = \"kernel\"\n\
                      inner-pool = \"100.64.0.0/16\"\ngateway-v4 = \"100.65.0.1\"\n\
                      metrics = \"\"\ncontrol = \"\"\n";

/// A scratch directory for this test process, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let d =
            std::env::temp_dir().join(format!("nat64-config-check-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Scratch(d)
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.0.join(rel)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(format!("{name}.toml"));
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn check(file: &Path, sets: &[&str]) -> Output {
    let mut c = Command::new(bin());
    c.args(["check", "--config"]).arg(file);
    for s in sets {
        c.args(["--set", s]);
    }
    c.output().expect("running nat64 check")
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Can this host run `nat64 run` in a network namespace of its own?
fn can_run_in_netns() -> bool {
    is_root()
        && Path::new("/dev/net/tun").exists()
        && Command::new("ip")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// A network namespace made for one test, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Option<Netns> {
        let name = format!("n64cc{}{tag}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("skipped: cannot add network namespace {name}");
            return None;
        }
        let ns = Netns(name);
        // Loopback up, as on a host (the metrics/control defaults are off).
        let _ = ns.cmd(&["ip", "link", "set", "lo", "up"]).output();
        Some(ns)
    }

    /// `ip netns exec NS ARGS…` (which execs: the child's PID is ARGS[0]'s).
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).args(args);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

/// Waits for `child` to exit within `limit`; kills it (this PID only)
/// otherwise. Returns the exit code and what it wrote to stderr.
fn wait_child(mut child: Child, limit: Duration) -> (Option<i32>, String) {
    let t0 = Instant::now();
    let code = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st.code();
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    (code, err)
}

/// One broken configuration: its text and the key its error must name.
struct Broken {
    name: &'static str,
    text: String,
    key: &'static str,
    sets: Vec<&'static str>,
}

fn broken(name: &'static str, text: impl Into<String>, key: &'static str) -> Broken {
    Broken {
        name,
        text: text.into(),
        key,
        sets: Vec::new(),
    }
}

fn daemon_with(top: &str, tables: &str) -> String {
    format!("{DAEMON}{top}\n{tables}")
}

fn kernel_with(top: &str, tables: &str) -> String {
    format!("{KERNEL}{top}\n{tables}")
}

fn pool(p: &str) -> String {
    DAEMON.replace("192.0.2.0/24", p)
}

fn broken_configs(dir: &Scratch) -> Vec<Broken> {
    let a_dir = dir.path("a-directory");
    std::fs::create_dir_all(&a_dir).unwrap();
    let a_file = dir.path("a-file");
    std::fs::write(&a_file, "not a directory\n").unwrap();
    let a_dir = a_dir.display().to_string();
    let a_file = a_file.display().to_string();
    let static_entry = |v6: &str, v4: &str| {
        daemon_with(
            "",
            &format!("[[static]]\nproto = \"tcp\"\nv6 = \"{v6}\"\nv4 = \"{v4}\"\n"),
        )
    };
    let map_entry =
        |v6: &str, v4: &str| kernel_with("", &format!("[[map]]\nv6 = \"{v6}\"\nv4 = \"{v4}\"\n"));
    vec![
        // Accepted by `check` before, then refused by `run`.
        broken("pool_slash_8", pool("11.0.0.0/8"), "pool"),
        broken(
            "pool_sum_above_slash_16",
            pool("198.18.0.0/16\", \"192.0.2.0/24"),
            "pool",
        ),
        broken(
            "txqueuelen_u32_max",
            daemon_with("", "[tun]\ntxqueuelen = 4294967295\n"),
            "tun.txqueuelen",
        ),
        broken(
            "txqueuelen_above_kernel",
            daemon_with("", "[tun]\ntxqueuelen = 524289\n"),
            "tun.txqueuelen",
        ),
        broken(
            "tun_name_space",
            daemon_with("", "[tun]\nname = \"a b\"\n"),
            "tun.name",
        ),
        broken(
            "tun_name_dotdot",
            daemon_with("", "[tun]\nname = \"..\"\n"),
            "tun.name",
        ),
        broken(
            "tun_name_16_bytes",
            daemon_with("", "[tun]\nname = \"sixteen-bytes-xx\"\n"),
            "tun.name",
        ),
        broken(
            "tun_name_template",
            daemon_with("", "[tun]\nname = \"tun%d\"\n"),
            "tun.name",
        ),
        broken(
            "tun_name_not_a_tun",
            daemon_with("", "[tun]\nname = \"lo\"\n"),
            "tun.name",
        ),
        broken(
            "state_file_is_directory",
            kernel_with(&format!("state-file = \"{a_dir}\""), ""),
            "state-file",
        ),
        broken(
            "state_file_parent_blocked",
            kernel_with(&format!("state-file = \"{a_file}/sub/leases\""), ""),
            "state-file",
        ),
        broken(
            "inner_pool_larger_than_slash_8",
            KERNEL.replace("100.64.0.0/16", "10.0.0.0/7"),
            "inner-pool",
        ),
        broken(
            "static_v6_endpoint_twice",
            static_entry("[2001:db8:1::10]:80", "192.0.2.10:80")
                + "[[static]]\nproto = \"tcp\"\nv6 = \"[2001:db8:1::10]:80\"\nv4 = \"192.0.2.11:80\"\n",
            "static[1].v6",
        ),
        broken(
            "control_is_directory",
            DAEMON.replace("control = \"\"", &format!("control = \"{a_dir}\"")),
            "control",
        ),
        broken(
            "control_path_too_long",
            DAEMON.replace(
                "control = \"\"",
                &format!("control = \"/run/{}/c.sock\"", "x".repeat(110)),
            ),
            "control",
        ),
        broken(
            "mapping_log_is_directory",
            daemon_with(&format!("mapping-log = \"{a_dir}\""), ""),
            "mapping-log",
        ),
        // Accepted but absurd.
        broken("pool_loopback", pool("127.0.0.0/24"), "pool[0]"),
        broken("pool_multicast", pool("224.0.0.0/4"), "pool[0]"),
        broken("pool_this_network", pool("0.0.0.0/24"), "pool[0]"),
        broken("pool_reserved", pool("240.0.0.0/24"), "pool[0]"),
        broken("pool_broadcast", pool("255.255.255.255/32"), "pool[0]"),
        broken(
            "inner_pool_loopback",
            KERNEL.replace("100.64.0.0/16", "127.0.0.0/16"),
            "inner-pool",
        ),
        broken(
            "inner_pool_multicast",
            KERNEL.replace("100.64.0.0/16", "224.0.0.0/16"),
            "inner-pool",
        ),
        broken(
            "gateway_broadcast",
            DAEMON.replace("198.51.100.1", "255.255.255.255"),
            "gateway-v4",
        ),
        broken(
            "gateway_multicast",
            DAEMON.replace("198.51.100.1", "224.0.0.1"),
            "gateway-v4",
        ),
        broken(
            "gateway_loopback",
            DAEMON.replace("198.51.100.1", "127.0.0.1"),
            "gateway-v4",
        ),
        broken(
            "gateway_unspecified",
            DAEMON.replace("198.51.100.1", "0.0.0.0"),
            "gateway-v4",
        ),
        broken(
            "icmp_source_multicast",
            daemon_with("icmp-source-v6 = \"ff02::1\"", ""),
            "icmp-source-v6",
        ),
        broken(
            "icmp_source_link_local",
            daemon_with("icmp-source-v6 = \"fe80::1\"", ""),
            "icmp-source-v6",
        ),
        broken(
            "icmp_source_loopback",
            daemon_with("icmp-source-v6 = \"::1\"", ""),
            "icmp-source-v6",
        ),
        broken(
            "prefix_multicast",
            DAEMON.replace("2001:db8:64::/96", "ff0e::/96"),
            "prefix",
        ),
        broken(
            "prefix_link_local",
            DAEMON.replace("2001:db8:64::/96", "fe80::/64"),
            "prefix",
        ),
        broken(
            "prefix_unspecified",
            DAEMON.replace("2001:db8:64::/96", "::/96"),
            "prefix",
        ),
        broken(
            "map_v6_in_prefix",
            map_entry("2001:db8:64::a00:1", "100.64.255.10"),
            "map[0].v6",
        ),
        broken(
            "map_v6_multicast",
            map_entry("ff02::1", "100.64.255.10"),
            "map[0].v6",
        ),
        broken(
            "map_v4_loopback",
            map_entry("2001:db8:1::10", "127.0.0.1"),
            "map[0].v4",
        ),
        broken(
            "map_v4_is_gateway",
            map_entry("2001:db8:1::10", "100.65.0.1"),
            "map[0].v4",
        ),
        broken(
            "static_v6_in_prefix",
            static_entry("[2001:db8:64::c000:20a]:80", "192.0.2.10:80"),
            "static[0].v6",
        ),
        broken(
            "static_v6_link_local",
            static_entry("[fe80::1]:80", "192.0.2.10:80"),
            "static[0].v6",
        ),
        broken(
            "static_v4_multicast",
            static_entry("[2001:db8:1::10]:80", "224.0.0.1:80"),
            "static[0].v4",
        ),
        broken(
            "reap_interval_a_day",
            daemon_with("reap-interval-secs = 86400", ""),
            "reap-interval-secs",
        ),
        broken(
            "timeout_above_a_week",
            daemon_with("", "[timeouts]\nudp = 604801\n"),
            "timeouts.udp",
        ),
        broken(
            "fragment_timeout_an_hour",
            daemon_with("", "[timeouts]\nfragment = 3600\n"),
            "timeouts.fragment",
        ),
        broken(
            "icmp_rate_absurd",
            daemon_with("", "[icmp-rate-limit]\nrate = 4000000000\n"),
            "icmp-rate-limit.rate",
        ),
        broken(
            "max_sessions_zero",
            daemon_with("", "[limits]\nmax-sessions = 0\n"),
            "limits.max-sessions",
        ),
        broken(
            "max_sessions_absurd",
            daemon_with("", "[limits]\nmax-sessions = 4294967295\n"),
            "limits.max-sessions",
        ),
        broken(
            "client_prefix_len_8",
            daemon_with("", "[limits]\nclient-prefix-len = 8\n"),
            "limits.client-prefix-len",
        ),
        broken(
            "ipv6_mtu_below_1280",
            daemon_with("ipv6-mtu = 1279", ""),
            "ipv6-mtu",
        ),
        broken(
            "ipv6_mtu_above_65535",
            daemon_with("ipv6-mtu = 70000", ""),
            "ipv6-mtu",
        ),
        broken(
            "ipv4_mtu_below_68",
            daemon_with("ipv4-mtu = 67", ""),
            "ipv4-mtu",
        ),
        broken(
            "tun_mtu_below_1280",
            daemon_with("", "[tun]\nmtu = 1279\n"),
            "tun.mtu",
        ),
        broken(
            "tun_mtu_above_65535",
            daemon_with("", "[tun]\nmtu = 65536\n"),
            "tun.mtu",
        ),
        broken(
            "tun_queues_257",
            daemon_with("", "[tun]\nqueues = 257\n"),
            "tun.queues",
        ),
        broken(
            "tun_batch_zero",
            daemon_with("", "[tun]\nbatch = 0\n"),
            "tun.batch",
        ),
        broken(
            "tun_batch_above_1024",
            daemon_with("", "[tun]\nbatch = 1025\n"),
            "tun.batch",
        ),
        broken(
            "block_size_wider_than_range",
            daemon_with("", "[ports]\nudp = \"2000-2003\"\nblock-size = 64\n"),
            "ports.block-size",
        ),
        broken(
            "metrics_port_zero",
            DAEMON.replace("metrics = \"\"", "metrics = \"127.0.0.1:0\""),
            "metrics",
        ),
        Broken {
            name: "tun_name_by_set",
            text: DAEMON.to_string(),
            key: "tun.name",
            sets: vec!["tun.name=.."],
        },
    ]
}

#[test]
fn broken_configs_refused_naming_the_key() {
    let dir = Scratch::new("broken");
    let cases = broken_configs(&dir);
    assert!(cases.len() >= 30);
    // As root, `run` sees each file too, inside a namespace of its own.
    let ns = if can_run_in_netns() {
        Netns::new("b")
    } else {
        None
    };
    let mut failures = Vec::new();
    for c in &cases {
        let file = dir.write(c.name, &c.text);
        let o = check(&file, &c.sets);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let named = format!("`{}`", c.key);
        if o.status.code() != Some(1) || !err.contains(&named) || !err.contains("fix: ") {
            failures.push(format!(
                "{}: check exited {:?}, stderr does not name {named} with a fix:\n{err}",
                c.name,
                o.status.code()
            ));
            continue;
        }
        let Some(ns) = &ns else { continue };
        let file_s = file.display().to_string();
        let mut args = vec![bin(), "run", "--config", &file_s];
        for s in &c.sets {
            args.extend(["--set", s]);
        }
        let child = ns
            .cmd(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ip netns exec");
        let (code, run_err) = wait_child(child, Duration::from_secs(30));
        if code != Some(1) || run_err != err {
            failures.push(format!(
                "{}: run exited {code:?} with another message than check's\n--- check:\n{err}\n--- \
                 run:\n{run_err}",
                c.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} broken configs:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// Valid configurations at the edges of what validation accepts.
fn edge_configs(dir: &Scratch) -> Vec<(&'static str, String)> {
    vec![
        ("pool_exactly_slash_16", pool("198.18.0.0/16")),
        (
            "pool_link_local_with_link_local_gateway",
            pool("169.254.10.0/24").replace("198.51.100.1", "169.254.0.1"),
        ),
        (
            "tun_limits",
            daemon_with(
                "ipv6-mtu = 65535\nipv4-mtu = 68",
                "[tun]\nname = \"fifteen-bytes-x\"\nmtu = 1280\ntxqueuelen = 524288\nbatch = 1024\n",
            ),
        ),
        (
            "timers_at_their_limits",
            daemon_with(
                "reap-interval-secs = 3600",
                "[timeouts]\nudp = 604800\ntcp-established = 604800\ntcp-transitory = 604800\n\
                 icmp = 604800\nfragment = 60\n",
            ),
        ),
        (
            "limits_at_their_limits",
            daemon_with(
                "",
                "[limits]\nmax-sessions = 100000000\nmax-sessions-per-client = 100000000\n\
                 client-prefix-len = 32\n[icmp-rate-limit]\nrate = 100000\nburst = 100000\n\
                 [ports]\nblock-size = 32768\n",
            ),
        ),
        (
            "static_icmp_identifier_zero",
            daemon_with(
                "",
                "[[static]]\nproto = \"icmp\"\nv6 = \"[2001:db8:1::10]:0\"\nv4 = \"192.0.2.10:0\"\n",
            ),
        ),
        (
            "kernel_slash_8_and_new_state_dir",
            kernel_with(
                &format!(
                    "state-file = \"{}\"",
                    dir.path("not/yet/there/leases").display()
                ),
                "[[map]]\nv6 = \"2001:db8:1::10\"\nv4 = \"198.51.100.10\"\n",
            )
            .replace("100.64.0.0/16", "10.0.0.0/8"),
        ),
        (
            "kernel_state_file_off",
            kernel_with("state-file = \"\"", ""),
        ),
    ]
}

#[test]
fn edge_configs_accepted() {
    let dir = Scratch::new("edge");
    for (name, text) in edge_configs(&dir) {
        let file = dir.write(name, &text);
        let o = check(&file, &[]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{name}: check refused\n{err}\n{text}"
        );
        assert!(err.contains("is valid"), "{name}: {err}");
    }
}

/// What `check` accepts, `run` starts: each edge configuration in a fresh
/// network namespace, up to "nat64 running", then SIGTERM and exit 0.
#[test]
fn edge_configs_run() {
    if !can_run_in_netns() {
        eprintln!("skipped: needs root, /dev/net/tun and ip");
        return;
    }
    let have_nft = Command::new("nft")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let dir = Scratch::new("run");
    let mut failures = Vec::new();
    for (i, (name, text)) in edge_configs(&dir).into_iter().enumerate() {
        // Without nft the kernel mode cannot install its MASQUERADE: an
        // environment problem, not the configuration's.
        let text = if !have_nft && text.contains("napt = \"kernel\"") {
            text.replacen(
                "napt = \"kernel\"",
                "napt = \"kernel\"\nmanage-nft = false",
                1,
            )
        } else {
            text
        };
        let file = dir.write(name, &text);
        let Some(ns) = Netns::new(&format!("r{i}")) else {
            return;
        };
        let log = dir.path(&format!("{name}.log"));
        let file_s = file.display().to_string();
        let mut child = ns
            .cmd(&[bin(), "run", "--config", &file_s])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("ip netns exec");
        let pid = child.id();
        let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
        // A /16 pool takes seconds to set up in a debug build.
        let t0 = Instant::now();
        let mut exited = None;
        while !read_log().contains("nat64 running") && t0.elapsed() < Duration::from_secs(90) {
            if let Ok(Some(st)) = child.try_wait() {
                exited = Some(st.code());
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if exited.is_some() || !read_log().contains("nat64 running") {
            let _ = child.kill();
            let _ = child.wait();
            failures.push(format!(
                "{name}: check accepted it but run did not get past startup (exit {exited:?}):\n{}",
                read_log()
            ));
            continue;
        }
        // SAFETY: kill(2) on the PID of the child this test started
        // (`ip netns exec` execs nat64 in place).
        unsafe {
            libc::kill(pid as i32, libc::SIGTERM);
        }
        let t1 = Instant::now();
        let code = loop {
            if let Ok(Some(st)) = child.try_wait() {
                break st.code();
            }
            if t1.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        if code != Some(0) || !read_log().contains("nat64 stopped") {
            failures.push(format!(
                "{name}: exit {code:?} after SIGTERM:\n{}",
                read_log()
            ));
        }
        drop(ns);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
