//! End-to-end test topology in network namespaces (the topology every suite shares).
//!
//! ```text
//!  client6 (IPv6-only)          xlat (nat64 + TUN)                 server4 (IPv4-only)
//!  v6c 2001:db8:1::2/64 ---- v6x 2001:db8:1::1/64
//!                               v4x 198.51.100.1/24 ---------- v4s 198.51.100.2/24
//!  route 2001:db8:64::/96 via xlat                             route pool via xlat (daemon mode)
//!                                                              route 203.0.113.0/24 via xlat (SIIT)
//! ```
//!
//! In SIIT mode (`Napt::Siit`, `napt = "none"`) the client is 203.0.113.2
//! to IPv4 through the EAM 203.0.113.0/28 = 2001:db8:1::/124.
//!
//! Namespace names carry the test process id and a counter so tests run in
//! parallel. [`Topo`]'s `Drop` stops every process it started **by PID**
//! (SIGTERM, then SIGKILL), then anything still inside its own namespaces,
//! and deletes the namespaces. Traffic only goes to addresses inside them.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const PREFIX: &str = "2001:db8:64::/96";
pub const CLIENT6: &str = "2001:db8:1::2";
pub const CLIENT6_B: &str = "2001:db8:1::3";
pub const XLAT6: &str = "2001:db8:1::1";
pub const XLAT4: &str = "198.51.100.1";
pub const SERVER4: &str = "198.51.100.2";
/// SERVER4 inside the prefix (2001:db8:64::198.51.100.2).
pub const SERVER4_V6: &str = "2001:db8:64::c633:6402";
pub const POOL: &str = "203.0.113.0/24";
pub const GATEWAY4: &str = "192.0.2.1";
/// prefix || gateway-v4: source of the translator's own ICMPv6 errors.
pub const GATEWAY4_V6: &str = "2001:db8:64::c000:201";
pub const INNER_POOL: &str = "100.64.0.0/16";

/// The client side's explicit address mapping (RFC 7757) that
/// [`Topo::config`] adds in SIIT mode unless the test brings its own
/// `[[map]]`: CLIENT6 (::2) is 203.0.113.2, CLIENT6_B (::3) 203.0.113.3.
pub const SIIT_EAM_V4: &str = "203.0.113.0/28";
pub const SIIT_EAM_V6: &str = "2001:db8:1::/124";
/// CLIENT6 as the IPv4 server sees it through [`SIIT_EAM_V4`].
pub const CLIENT4_EAM: &str = "203.0.113.2";
pub const CLIENT4_EAM_B: &str = "203.0.113.3";

/// The stateful modes. The stateful suites `match` on it exhaustively, so
/// the stateless mode is not a variant of its own: [`Napt::Siit`] is a
/// [`Mode`], and [`Topo::new`] takes either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Napt {
    Daemon,
    Kernel,
}

impl Napt {
    /// `napt = "none"`: stateless SIIT (RFC 7915 + RFC 6052 + RFC 7757).
    #[allow(non_upper_case_globals)]
    pub const Siit: Mode = Mode::Siit;
}

/// What the translator of a [`Topo`] runs as: a [`Napt`] mode, or SIIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Daemon,
    Kernel,
    /// `napt = "none"`; the IPv4 server routes 203.0.113.0/24 (the
    /// client's EAM range) to the xlat namespace, which routes it into the
    /// TUN once nat64 runs ([`Topo::start_nat64`]).
    Siit,
}

impl From<Napt> for Mode {
    fn from(n: Napt) -> Mode {
        match n {
            Napt::Daemon => Mode::Daemon,
            Napt::Kernel => Mode::Kernel,
        }
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// True when running as root; otherwise prints a loud SKIP.
pub fn root_or_skip(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    eprintln!(
        "\n*** SKIP {test}: end-to-end tests need root (network namespaces, TUN). \
         Run `contrib/test.sh` as root. ***\n"
    );
    false
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_nat64")
}

pub fn support_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support")
}

fn require_tools() {
    for t in [
        "ip",
        "nft",
        "python3",
        "curl",
        "ping",
        "iperf3",
        "tcpdump",
        "traceroute",
        "sha256sum",
    ] {
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .stdout(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "missing tool `{t}`: run `contrib/setup.sh` as root first"
        );
    }
}

pub struct Topo {
    pub id: String,
    pub c6: String,
    pub x: String,
    pub s4: String,
    pub dir: PathBuf,
    pub napt: Mode,
    children: Mutex<Vec<(String, Child)>>,
    created: Mutex<Vec<String>>,
}

/// The result of a command run to completion.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            ok: o.status.success(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// Offloads for this run (`NAT64_E2E_OFFLOAD=on|off`, default on): the
/// TUN's virtio-net offloads (`tun.offload`) and TSO/GSO/GRO on every veth.
/// `contrib/test.sh` runs the namespace suites both ways (ADR 0004).
pub fn offloads_on() -> bool {
    !matches!(
        std::env::var("NAT64_E2E_OFFLOAD").as_deref(),
        Ok("off" | "0" | "false")
    )
}

/// The BPF fast path for this run (`NAT64_E2E_FAST_PATH=on|off`, default
/// off): [`Topo::config`] then adds `fast-path = "tc-bpf"` on the xlat
/// namespace's client- and IPv4-facing veths wherever the mode supports it
/// ([`fast_path_modes`]), and `fast-path = "off"` otherwise (nat64's own
/// default is on in daemon mode). `contrib/test.sh` runs the namespace
/// suites both ways: every suite must pass with established flows crossing
/// in the kernel as well as through the TUN (issue 13).
pub fn fast_path_on() -> bool {
    matches!(
        std::env::var("NAT64_E2E_FAST_PATH").as_deref(),
        Ok("on" | "1" | "true")
    )
}

/// The modes the fast path runs in, the one place that says so: the two
/// stateful NAPT modes. nat64 refuses `fast-path` with SIIT (`napt =
/// "none"`).
pub fn fast_path_modes(mode: Mode) -> bool {
    match mode {
        Mode::Daemon | Mode::Kernel => true,
        Mode::Siit => false,
    }
}

/// The interfaces the standard topology's translator attaches the fast
/// path to: where client traffic (`v6x`) and IPv4 traffic (`v4x`) arrive.
pub const FAST_PATH_INTERFACES: [&str; 2] = ["v6x", "v4x"];

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("running ip");
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

impl Topo {
    /// Builds the three namespaces and their links. `None` (after a SKIP
    /// notice) when not root.
    pub fn new(test: &str, napt: impl Into<Mode>) -> Option<Topo> {
        let napt: Mode = napt.into();
        if !root_or_skip(test) {
            return None;
        }
        require_tools();
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let id = format!("n64t{}x{}", std::process::id(), n);
        let dir = std::env::temp_dir().join(format!("{id}-{test}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the test's temp dir");
        let t = Topo {
            c6: format!("{id}c6"),
            x: format!("{id}x"),
            s4: format!("{id}s4"),
            id,
            dir,
            napt,
            children: Mutex::new(Vec::new()),
            created: Mutex::new(Vec::new()),
        };
        for ns in [&t.c6, &t.x, &t.s4] {
            ip(&["netns", "add", ns]);
            t.created.lock().unwrap().push(ns.clone());
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        t.sysctl(&t.x, "net.ipv4.ip_forward=1");
        t.sysctl(&t.x, "net.ipv6.conf.all.forwarding=1");
        t.sysctl(&t.s4, "net.ipv6.conf.all.disable_ipv6=1");
        t.sysctl(&t.s4, "net.ipv6.conf.default.disable_ipv6=1");
        t.sysctl(&t.c6, "net.ipv6.conf.all.accept_ra=0");
        t.sysctl(&t.c6, "net.ipv6.conf.default.accept_ra=0");
        ip(&[
            "-n", &t.c6, "link", "add", "v6c", "type", "veth", "peer", "name", "v6x", "netns", &t.x,
        ]);
        ip(&[
            "-n", &t.s4, "link", "add", "v4s", "type", "veth", "peer", "name", "v4x", "netns", &t.x,
        ]);
        ip(&[
            "-n",
            &t.c6,
            "addr",
            "add",
            &format!("{CLIENT6}/64"),
            "dev",
            "v6c",
            "nodad",
        ]);
        ip(&[
            "-n",
            &t.c6,
            "addr",
            "add",
            &format!("{CLIENT6_B}/64"),
            "dev",
            "v6c",
            "nodad",
        ]);
        ip(&[
            "-n",
            &t.x,
            "addr",
            "add",
            &format!("{XLAT6}/64"),
            "dev",
            "v6x",
            "nodad",
        ]);
        ip(&[
            "-n",
            &t.x,
            "addr",
            "add",
            &format!("{XLAT4}/24"),
            "dev",
            "v4x",
        ]);
        ip(&[
            "-n",
            &t.s4,
            "addr",
            "add",
            &format!("{SERVER4}/24"),
            "dev",
            "v4s",
        ]);
        for (ns, dev) in [(&t.c6, "v6c"), (&t.x, "v6x"), (&t.x, "v4x"), (&t.s4, "v4s")] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
            t.apply_offloads(ns, dev);
        }
        ip(&["-n", &t.c6, "-6", "route", "add", PREFIX, "via", XLAT6]);
        if matches!(napt, Mode::Daemon | Mode::Siit) {
            ip(&["-n", &t.s4, "route", "add", POOL, "via", XLAT4]);
        }
        Some(t)
    }

    /// One more namespace, `<id><suffix>`, with `lo` up; removed (and
    /// whatever runs inside it killed) with the others on drop. For the
    /// topologies beyond the three-namespace line (an HA pair, an ECMP
    /// farm).
    pub fn add_ns(&self, suffix: &str) -> String {
        let ns = format!("{}{suffix}", self.id);
        ip(&["netns", "add", &ns]);
        self.created.lock().unwrap().push(ns.clone());
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// A veth pair `dev_a` (in `ns_a`) -- `dev_b` (in `ns_b`), both up, with
    /// the run's offload setting ([`offloads_on`]).
    pub fn veth(&self, ns_a: &str, dev_a: &str, ns_b: &str, dev_b: &str) {
        ip(&[
            "-n", ns_a, "link", "add", dev_a, "type", "veth", "peer", "name", dev_b, "netns", ns_b,
        ]);
        for (ns, dev) in [(ns_a, dev_a), (ns_b, dev_b)] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
            self.apply_offloads(ns, dev);
        }
    }

    /// Turns TSO/GSO/GRO off on `dev` when the run has offloads off.
    fn apply_offloads(&self, ns: &str, dev: &str) {
        if offloads_on() {
            return;
        }
        let o = Command::new("ip")
            .args(["netns", "exec", ns, "ethtool", "-K", dev])
            .args(["tso", "off", "gso", "off", "gro", "off"])
            .output()
            .expect("running ethtool (contrib/setup.sh installs it)");
        assert!(
            o.status.success(),
            "ethtool -K {dev} off: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// `sysctl -qw KEY=VALUE` inside `ns`.
    pub fn sysctl(&self, ns: &str, kv: &str) {
        let r = self.sh(ns, &format!("sysctl -qw {kv}"));
        assert!(r.ok, "sysctl {kv} in {ns}: {}", r.stderr);
    }

    /// Runs `cmd` with bash inside `ns` (60 s limit).
    pub fn sh(&self, ns: &str, cmd: &str) -> Run {
        let o = Command::new("ip")
            .args([
                "netns", "exec", ns, "timeout", "-k", "5", "60", "bash", "-c", cmd,
            ])
            .stdin(Stdio::null())
            .output()
            .expect("running ip netns exec");
        Run::from(o)
    }

    /// Like [`Topo::sh`] but panics (with the output) on failure.
    pub fn ok(&self, ns: &str, cmd: &str) -> String {
        let r = self.sh(ns, cmd);
        assert!(
            r.ok,
            "command failed in {ns}: {cmd}\nstdout:\n{}\nstderr:\n{}\n{}",
            r.stdout,
            r.stderr,
            self.nat64_log_tail()
        );
        r.stdout
    }

    /// Starts `argv` inside `ns` in the background, output to `DIR/log`.
    /// Returns the PID (that of the program itself: `ip netns exec` execs).
    pub fn spawn(&self, ns: &str, argv: &[&str], log: &str) -> u32 {
        let logf = std::fs::File::create(self.dir.join(log)).expect("creating a log file");
        let errf = logf.try_clone().expect("cloning a log file handle");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(logf)
            .stderr(errf)
            .spawn()
            .expect("spawning a background process");
        let pid = child.id();
        self.children.lock().unwrap().push((log.to_string(), child));
        pid
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }

    pub fn nat64_log_tail(&self) -> String {
        let l = self.log("nat64.log");
        let lines: Vec<&str> = l.lines().collect();
        let from = lines.len().saturating_sub(30);
        format!("--- nat64.log (tail) ---\n{}", lines[from..].join("\n"))
    }

    /// Is the background process `pid` still running?
    pub fn alive(&self, pid: u32) -> bool {
        let mut ch = self.children.lock().unwrap();
        ch.iter_mut()
            .find(|(_, c)| c.id() == pid)
            .is_some_and(|(_, c)| matches!(c.try_wait(), Ok(None)))
    }

    /// Sends `sig` to a process this topology started.
    pub fn signal(&self, pid: u32, sig: i32) {
        assert!(
            self.children
                .lock()
                .unwrap()
                .iter()
                .any(|(_, c)| c.id() == pid),
            "signal to a PID this test did not start"
        );
        // SAFETY: plain kill(2) on a child we own.
        unsafe {
            libc::kill(pid as i32, sig);
        }
    }

    /// Waits for a started process to exit; returns its exit code.
    pub fn wait_exit(&self, pid: u32, limit: Duration) -> Option<i32> {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            {
                let mut ch = self.children.lock().unwrap();
                if let Some((_, c)) = ch.iter_mut().find(|(_, c)| c.id() == pid) {
                    if let Ok(Some(st)) = c.try_wait() {
                        return Some(st.code().unwrap_or(128));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Does [`Topo::config`] turn the fast path on here (the run asks for
    /// it and the mode has it)? For assertions that count what crosses the
    /// TUN, which an established flow on the fast path no longer does.
    pub fn fast_path(&self) -> bool {
        fast_path_on() && fast_path_modes(self.napt)
    }

    /// nat64's config for this topology: the mode's keys, the run's
    /// offload and fast-path settings, and `extra` (top-level keys first,
    /// then tables). The fast path, when on, attaches to
    /// [`FAST_PATH_INTERFACES`].
    pub fn config(&self, extra: &str) -> String {
        self.config_on(extra, &FAST_PATH_INTERFACES)
    }

    /// [`Topo::config`] for a translator whose client- and IPv4-facing
    /// interfaces are `fast_path_interfaces` (one in a namespace of its
    /// own, e.g. an ECMP farm's instance).
    pub fn config_on(&self, extra: &str, fast_path_interfaces: &[&str]) -> String {
        let mut c = format!("prefix = \"{PREFIX}\"\ngateway-v4 = \"{GATEWAY4}\"\n");
        // Off unless the test asks (ops tests set their own).
        if !extra.contains("metrics =") {
            c.push_str("metrics = \"\"\n");
        }
        if !extra.contains("control =") {
            c.push_str("control = \"\"\n");
        }
        match self.napt {
            Mode::Daemon => {
                if !extra.contains("pool =") {
                    let _ = writeln!(c, "pool = [\"{POOL}\"]");
                }
            }
            Mode::Kernel => {
                let _ = writeln!(
                    c,
                    "napt = \"kernel\"\ninner-pool = \"{INNER_POOL}\"\nstate-file = \"{}\"",
                    self.dir.join("leases").display()
                );
            }
            Mode::Siit => c.push_str("napt = \"none\"\n"),
        }
        // Top-level keys: before `extra`, whose first table header would
        // otherwise swallow them. A test that sets `fast-path` itself
        // (fastpath_e2e) keeps its own. Off is said, not left to the
        // default (on in daemon mode): each pass of contrib/test.sh runs
        // the path it names.
        if !self.fast_path() && !extra.contains("fast-path") {
            c.push_str("fast-path = \"off\"\n");
        }
        if self.fast_path() && !extra.contains("fast-path") {
            let names: Vec<String> = fast_path_interfaces
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect();
            let _ = writeln!(
                c,
                "fast-path = \"tc-bpf\"\nfast-path-interfaces = [{}]",
                names.join(", ")
            );
        }
        c.push_str(extra);
        // SIIT: the client's EAM, after `extra`'s top-level keys (a table
        // header ends them), unless the test brings its own `[[map]]`.
        if self.napt == Mode::Siit && !extra.contains("[[map]]") {
            let _ = writeln!(
                c,
                "\n[[map]]\nv4 = \"{SIIT_EAM_V4}\"\nv6 = \"{SIIT_EAM_V6}\""
            );
        }
        if !extra.contains("[tun]") {
            let _ = writeln!(
                c,
                "\n[tun]\nname = \"nat64\"\nqueues = 2\noffload = {}",
                offloads_on()
            );
        }
        c
    }

    /// Writes the config, starts `nat64 run` in the xlat namespace and waits
    /// until it reports running. Returns its PID.
    pub fn start_nat64(&self, config: &str) -> u32 {
        let path = self.dir.join("nat64.toml");
        std::fs::write(&path, config).expect("writing nat64.toml");
        let p = path.to_string_lossy().into_owned();
        let pid = self.spawn(&self.x, &[bin(), "run", "--config", &p], "nat64.log");
        let t0 = Instant::now();
        loop {
            if self.log("nat64.log").contains("nat64 running") {
                self.check_fast_path("nat64.log", config.contains("fast-path = \"tc-bpf\""));
                if self.napt == Mode::Siit {
                    // nat64 routes no EAM range (as Tayga): the operator
                    // does, here the client's (and every test EAM inside
                    // 203.0.113.0/24).
                    self.route_into_tun(POOL, config);
                }
                return pid;
            }
            assert!(
                self.alive(pid),
                "nat64 exited during startup\n{}",
                self.nat64_log_tail()
            );
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "nat64 not running after 20 s\n{}",
                self.nat64_log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// After a nat64 that was `asked` for the fast path logged "nat64
    /// running" to `log`: the fast path must have loaded. Under CI (`CI`
    /// set) "fast path off" fails the test: the run would pass while
    /// testing only the TUN path. Elsewhere (a kernel or build without BPF)
    /// a loud notice says so and the test goes on through the TUN.
    pub fn check_fast_path(&self, log: &str, asked: bool) {
        if !asked {
            return;
        }
        let text = self.log(log);
        if text.contains("fast path on") {
            return;
        }
        let why = text
            .lines()
            .find(|l| l.contains("fast path off"))
            .unwrap_or("no \"fast path on\" line")
            .to_string();
        assert!(
            std::env::var_os("CI").is_none(),
            "the fast path did not load under CI ({log}): {why}\n{text}"
        );
        eprintln!(
            "\n*** SKIP fast path ({}, {log}): it cannot load here, this test ran on the TUN \
             path only: {why} ***\n",
            self.dir.display()
        );
    }

    /// `ip route replace V4NET dev TUN` in the xlat namespace, TUN being
    /// `config`'s `[tun] name` (what SIIT operators do for EAM ranges).
    pub fn route_into_tun(&self, v4net: &str, config: &str) {
        let tun = tun_name(config);
        self.ok(&self.x, &format!("ip route replace {v4net} dev {tun}"));
    }

    /// Waits (10 s limit) until no IPv6 address in the client and xlat
    /// namespaces is tentative. Until the xlat's link-local address has
    /// passed DAD (a second or two after the namespaces are made) its
    /// kernel sends no Neighbor Solicitation, so the first packet it
    /// forwards to a client address it has not resolved yet waits for a
    /// retransmission: seconds, longer than a one-shot probe waits.
    pub fn wait_dad(&self) {
        self.wait_dad_in(&[&self.c6, &self.x]);
    }

    /// [`Topo::wait_dad`] for the namespaces `nss` (extra ones included).
    pub fn wait_dad_in(&self, nss: &[&str]) {
        let t0 = Instant::now();
        for ns in nss {
            loop {
                let r = self.sh(ns, "ip -6 addr show tentative");
                if r.ok && r.stdout.trim().is_empty() {
                    break;
                }
                assert!(
                    t0.elapsed() < Duration::from_secs(10),
                    "addresses still tentative in {ns} after 10 s:\n{}",
                    r.stdout
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    /// Pings SERVER4 through the translator until it answers (20 s limit).
    pub fn wait_path(&self) {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            if self
                .sh(&self.c6, &format!("ping -6 -n -c 1 -W 1 {SERVER4_V6}"))
                .ok
            {
                return;
            }
        }
        panic!("no path client6 -> {SERVER4_V6}\n{}", self.nat64_log_tail());
    }

    /// Asks the daemon (SIGUSR1) for its counters and parses the log line.
    pub fn stats(&self, pid: u32) -> HashMap<String, u64> {
        self.stats_in(pid, "nat64.log")
    }

    /// [`Topo::stats`] of a nat64 that logs to `log` (a second instance).
    pub fn stats_in(&self, pid: u32, log: &str) -> HashMap<String, u64> {
        let logname = log;
        let before = self.log(logname).matches(" stats: ").count();
        self.signal(pid, libc::SIGUSR1);
        let t0 = Instant::now();
        loop {
            let log = self.log(logname);
            if log.matches(" stats: ").count() > before {
                let line = log
                    .lines()
                    .rfind(|l| l.contains(" stats: "))
                    .unwrap_or_default();
                return parse_stats(line);
            }
            assert!(
                t0.elapsed() < Duration::from_secs(5),
                "no stats line after SIGUSR1"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the daemon with SIGTERM and returns its exit code.
    pub fn stop_nat64(&self, pid: u32) -> i32 {
        self.signal(pid, libc::SIGTERM);
        self.wait_exit(pid, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("nat64 did not exit on SIGTERM\n{}", self.nat64_log_tail()))
    }

    // ------------------------------------------------------------ servers ---

    /// An iperf3 server on SERVER4:5201 in s4, listening when this returns.
    pub fn iperf3_server4(&self) {
        self.spawn(
            &self.s4,
            &["iperf3", "-s", "-B", SERVER4, "-p", "5201"],
            "iperf3s.log",
        );
        self.wait_listen(&self.s4, "5201", "t");
    }

    /// Runs iperf3 (TCP) from the client to [`Topo::iperf3_server4`]
    /// through the NSP with `args` (duration, streams, `-R`), checks that
    /// more than 1 MB arrived, and returns iperf3's JSON report.
    ///
    /// The iperf3 server takes one test at a time and may still be closing
    /// the previous one on a loaded machine ("the server is busy running a
    /// test"): that answer is retried for up to 10 s.
    pub fn iperf3_tcp(&self, args: &str) -> serde_json::Value {
        let cmd = format!("iperf3 -c {SERVER4_V6} -p 5201 -J --connect-timeout 5000 {args}");
        let t0 = Instant::now();
        let (out, v) = loop {
            let r = self.sh(&self.c6, &cmd);
            let v: serde_json::Value = serde_json::from_str(&r.stdout)
                .unwrap_or_else(|e| panic!("iperf3 JSON: {e}\n{}\n{}", r.stdout, r.stderr));
            let busy = v["error"].as_str().is_some_and(|e| e.contains("busy"));
            if !busy || t0.elapsed() > Duration::from_secs(10) {
                break (r.stdout, v);
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        let bytes = v["end"]["sum_received"]["bytes"].as_u64().unwrap_or(0);
        assert!(
            bytes > 1_000_000,
            "iperf3 {args}: only {bytes} bytes\n{out}"
        );
        v
    }

    /// An HTTP server in server4 serving DIR/www (with `big.bin`, 10 MiB of
    /// random data). Returns the file's sha256.
    /// Serves `index` as index.html over HTTP on [{CLIENT6}]:8080 in the
    /// client namespace (the IPv6 side of static BIB entries and maps), and
    /// waits until it listens.
    pub fn http_server6(&self, index: &str) {
        let www = self.dir.join("www6");
        std::fs::create_dir_all(&www).expect("creating www6");
        std::fs::write(www.join("index.html"), index).expect("writing index.html");
        let w = www.to_string_lossy().into_owned();
        self.spawn(
            &self.c6,
            &[
                "python3",
                "-m",
                "http.server",
                "8080",
                "--bind",
                CLIENT6,
                "--directory",
                &w,
            ],
            "http6.log",
        );
        self.wait_listen(&self.c6, "8080", "t");
    }

    pub fn http_server4(&self, big_mib: usize) -> String {
        let www = self.dir.join("www");
        std::fs::create_dir_all(&www).expect("creating www");
        let mut data = vec![0u8; big_mib << 20];
        let mut f = std::fs::File::open("/dev/urandom").expect("opening /dev/urandom");
        std::io::Read::read_exact(&mut f, &mut data).expect("reading /dev/urandom");
        std::fs::write(www.join("big.bin"), &data).expect("writing big.bin");
        std::fs::write(www.join("index.html"), "hello from server4\n").expect("writing index");
        let w = www.to_string_lossy().into_owned();
        self.spawn(
            &self.s4,
            &[
                "python3",
                "-m",
                "http.server",
                "8080",
                "--bind",
                SERVER4,
                "--directory",
                &w,
            ],
            "http4.log",
        );
        self.wait_listen(&self.s4, "8080", "t");
        let out = self.ok(&self.s4, &format!("sha256sum {w}/big.bin"));
        out.split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// The UDP echo/recorder on server4 port 7007; its log is `udp4.log`.
    /// The distinct `address:port` peers [`Topo::udp_echo4`] has echoed to.
    pub fn udp_echo_peers(&self) -> std::collections::BTreeSet<String> {
        self.log("udp4.log")
            .lines()
            .filter(|l| l.split_whitespace().count() == 4)
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                Some(format!("{}:{}", f.next()?, f.next()?))
            })
            .collect()
    }

    /// Bytes received so far on `ns`'s established TCP sockets with local
    /// port `port` (`ss -ti`).
    pub fn tcp_bytes_received(&self, ns: &str, port: u16) -> u64 {
        let out = self.ok(
            ns,
            &format!("ss -Htin state established '( sport = :{port} )'"),
        );
        out.split_whitespace()
            .filter_map(|w| w.strip_prefix("bytes_received:"))
            .filter_map(|n| n.parse::<u64>().ok())
            .sum()
    }

    pub fn udp_echo4(&self) {
        let script = support_dir().join("udp_echo.py");
        let log = self.dir.join("udp4.log");
        self.spawn(
            &self.s4,
            &[
                "python3",
                &script.to_string_lossy(),
                SERVER4,
                "7007",
                &log.to_string_lossy(),
            ],
            "udp4.out",
        );
        let t0 = Instant::now();
        while !self.log("udp4.log").contains("ready") {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "udp echo did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs the UDP client in client6 against the echo server.
    pub fn udp_client(&self, size: usize, sources: &[String]) -> Run {
        let script = support_dir().join("udp_client.py");
        self.sh(
            &self.c6,
            &format!(
                "python3 {} {SERVER4_V6} 7007 {size} 3 {}",
                script.display(),
                sources.join(" ")
            ),
        )
    }

    /// Waits until something listens on `port` in `ns` (`t` TCP, `u` UDP).
    pub fn wait_listen(&self, ns: &str, port: &str, kind: &str) {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(15) {
            let r = self.sh(ns, &format!("ss -Hln{kind} 'sport = :{port}'"));
            if r.ok && !r.stdout.trim().is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("nothing listens on {kind}/{port} in {ns}");
    }
}

/// The fast-path program's counters for the nat64 `pid`: its per-CPU
/// `stats` array summed over the CPUs, by [`nat64_bpf::Stat`] name
/// (`xlat_6to4`, `pass_mtu`, ...). The daemon's own counters (stats line,
/// `/metrics`) count TUN packets only (ADR 0012): these say what crossed
/// in the kernel, and why a packet was passed to the TUN. The map is the
/// one `pid` holds (its `map_id` in /proc/PID/fdinfo), read with bpf(2),
/// so parallel tests each read their own. Empty when the process holds
/// no such map (the fast path did not load).
pub fn fast_path_counters(pid: u32) -> std::collections::BTreeMap<&'static str, u64> {
    let mut ids: Vec<u32> = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fdinfo"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("map_id:"))
            .and_then(|v| v.trim().parse().ok());
        if let Some(id) = id.filter(|id| !ids.contains(id)) {
            ids.push(id);
        }
    }
    ids.into_iter()
        .find_map(bpf::percpu_array_sums_named_stats)
        .map(|sums| {
            nat64_bpf::Stat::ALL
                .iter()
                .zip(sums)
                .map(|(s, v)| (s.name(), v))
                .collect()
        })
        .unwrap_or_default()
}

/// Just enough bpf(2) to read another process's per-CPU array by map id
/// (no bpftool on the test machines: contrib/setup.sh does not install it).
mod bpf {
    const MAP_LOOKUP_ELEM: libc::c_long = 1;
    const MAP_GET_FD_BY_ID: libc::c_long = 14;
    const OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    const MAP_TYPE_PERCPU_ARRAY: u32 = 6;

    /// `union bpf_attr`: zeroed, the command's fields written at their
    /// offsets (the kernel wants every byte it does not know to be zero).
    #[repr(C, align(8))]
    struct Attr([u8; 128]);

    impl Attr {
        fn new() -> Attr {
            Attr([0; 128])
        }
        fn u32_at(mut self, off: usize, v: u32) -> Attr {
            self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
            self
        }
        fn u64_at(mut self, off: usize, v: u64) -> Attr {
            self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
            self
        }
    }

    fn bpf(cmd: libc::c_long, attr: &mut Attr) -> libc::c_long {
        // SAFETY: `attr` is a zero-filled bpf_attr of 128 bytes whose
        // pointers (if any) point at live buffers of the sizes given.
        unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *mut Attr,
                std::mem::size_of::<Attr>(),
            )
        }
    }

    /// The number of possible CPUs (a per-CPU value holds one slot each).
    fn possible_cpus() -> usize {
        let s = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap_or_default();
        s.trim()
            .split(',')
            .filter_map(|r| r.rsplit('-').next()?.parse::<usize>().ok())
            .max()
            .map_or(1, |m| m + 1)
    }

    /// Map `id`, when it is a per-CPU array of u64 named `stats`: each
    /// entry summed over the CPUs.
    pub(super) fn percpu_array_sums_named_stats(id: u32) -> Option<Vec<u64>> {
        let fd = bpf(MAP_GET_FD_BY_ID, &mut Attr::new().u32_at(0, id));
        if fd < 0 {
            return None;
        }
        let fd = fd as i32;
        let out = (|| {
            // struct bpf_map_info: type, id, key_size, value_size,
            // max_entries, map_flags (u32 each), name[16].
            let mut info = [0u8; 128];
            let mut a = Attr::new()
                .u32_at(0, fd as u32)
                .u32_at(4, info.len() as u32)
                .u64_at(8, info.as_mut_ptr() as u64);
            if bpf(OBJ_GET_INFO_BY_FD, &mut a) < 0 {
                return None;
            }
            let field = |i: usize| u32::from_ne_bytes(info[i * 4..i * 4 + 4].try_into().unwrap());
            let name = &info[24..40];
            let name = &name[..name.iter().position(|&b| b == 0).unwrap_or(16)];
            if field(0) != MAP_TYPE_PERCPU_ARRAY || field(3) != 8 || name != b"stats" {
                return None;
            }
            let mut sums = Vec::new();
            for key in 0..field(4) {
                let mut vals = vec![0u64; possible_cpus()];
                let mut a = Attr::new()
                    .u32_at(0, fd as u32)
                    .u64_at(8, &key as *const u32 as u64)
                    .u64_at(16, vals.as_mut_ptr() as u64);
                if bpf(MAP_LOOKUP_ELEM, &mut a) < 0 {
                    return None;
                }
                sums.push(vals.iter().sum());
            }
            Some(sums)
        })();
        // SAFETY: closing the descriptor MAP_GET_FD_BY_ID gave us.
        unsafe {
            libc::close(fd);
        }
        out
    }
}

/// The `[tun] name` of a config written by [`Topo::config`] (or by hand).
pub fn tun_name(config: &str) -> String {
    let mut in_tun = false;
    for l in config.lines().map(str::trim) {
        if l.starts_with('[') {
            in_tun = l == "[tun]";
        } else if in_tun {
            if let Some(v) = l.strip_prefix("name").map(str::trim_start) {
                if let Some(v) = v.strip_prefix('=') {
                    return v.trim().trim_matches('"').to_string();
                }
            }
        }
    }
    "nat64".to_string()
}

pub fn parse_stats(line: &str) -> HashMap<String, u64> {
    line.split_whitespace()
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

/// The resolver of a namespace: `/etc/netns/<ns>/resolv.conf` naming
/// `nameserver` (`ip netns exec` mounts it over /etc/resolv.conf), removed
/// when the test ends, however it ends.
pub struct NetnsResolver(PathBuf);

impl NetnsResolver {
    pub fn new(ns: &str, nameserver: &str) -> NetnsResolver {
        let dir = PathBuf::from("/etc/netns").join(ns);
        std::fs::create_dir_all(&dir).expect("creating /etc/netns/<ns>");
        let guard = NetnsResolver(dir);
        std::fs::write(
            guard.0.join("resolv.conf"),
            format!("nameserver {nameserver}\n"),
        )
        .expect("writing the namespace's resolv.conf");
        guard
    }
}

impl Drop for NetnsResolver {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        let mut ch = self.children.lock().unwrap_or_else(|p| p.into_inner());
        // SIGTERM everything we started (by PID), newest first.
        for (_, c) in ch.iter_mut().rev() {
            if matches!(c.try_wait(), Ok(None)) {
                // SAFETY: kill(2) on our own child's PID.
                unsafe {
                    libc::kill(c.id() as i32, libc::SIGTERM);
                }
            }
        }
        let t0 = Instant::now();
        for (_, c) in ch.iter_mut() {
            while matches!(c.try_wait(), Ok(None)) && t0.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        // Anything left inside our namespaces was started by this test.
        for ns in self
            .created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            if let Ok(o) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    if let Ok(p) = pid.parse::<i32>() {
                        // SAFETY: kill(2) on a PID inside our own namespace.
                        unsafe {
                            libc::kill(p, libc::SIGKILL);
                        }
                    }
                }
            }
        }
        for ns in self
            .created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .rev()
        {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("logs kept in {}", self.dir.display());
        }
    }
}
