//! Attaching (TCX, the netlink fallback), what survives a process that
//! dies, and the route lookup + redirect path, each in a private network
//! namespace of its own thread (`unshare(CLONE_NEWNET)`; the `ip`/`tc`
//! commands it runs inherit it) on a veth interface (the kernel here has no
//! dummy driver).

mod common;

use common::*;
use nat64_bpf::{
    AttachMode, Attached, Config, FastPath, Forwarding, Hook, L4Proto, SkBuffCtx, Stat,
    PROGRAM_L3_NAME, PROGRAM_NAME,
};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const DEV: &str = "nat64t0";
const DEV_MAC: [u8; 6] = [0x02, 0, 0x5e, 0, 0x53, 0x10];
const NEXT_HOP_MAC: &str = "02:00:5e:00:53:20";

/// Runs `f` in a thread inside a new network namespace holding the veth
/// interface DEV (up, its peer too); the namespace goes away with the thread.
fn in_netns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        // SAFETY: unshare only changes this thread's namespaces.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
        assert_eq!(
            rc,
            0,
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        );
        sh("ip link set lo up");
        sh(&format!(
            "ip link add {DEV} address {} type veth peer name {DEV}p && \
             ip link set {DEV} up && ip link set {DEV}p up",
            DEV_MAC.map(|b| format!("{b:02x}")).join(":")
        ));
        f()
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

fn sh(cmd: &str) -> String {
    let out = Command::new("sh").args(["-c", cmd]).output().expect("sh");
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn ifindex(name: &str) -> u32 {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: `c` is a valid NUL-terminated string.
    unsafe { libc::if_nametoindex(c.as_ptr()) }
}

/// Programs attached through TCX at DEV's ingress.
fn tcx_programs() -> Vec<String> {
    let (_, progs) =
        aya::programs::SchedClassifier::query_tcx(DEV, aya::programs::TcAttachType::Ingress)
            .expect("query tcx");
    progs
        .iter()
        .map(|p| p.name_as_str().unwrap_or("?").to_owned())
        .collect()
}

/// Netlink tc filters named like ours at DEV's ingress.
fn netlink_filters() -> usize {
    let out = Command::new("tc")
        .args(["filter", "show", "dev", DEV, "ingress"])
        .output()
        .expect("tc");
    // One line per filter: "filter protocol all pref 49152 bpf chain 0
    // handle 0x1 nat64_xlat direct-action not_in_hw id 7 name nat64_xlat ...".
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(" handle ") && l.contains(PROGRAM_NAME))
        .count()
}

fn can_run(test: &str) -> bool {
    fast_path(test).is_some()
}

/// Kernel mode's reply program goes on an L3 device's egress (a TUN,
/// whose packets start with their IP header) and nowhere else; the
/// Ethernet program never on a TUN.
#[test]
fn l3_program_attaches_to_a_tun_egress_only() {
    if !can_run("l3_program_attaches_to_a_tun_egress_only") {
        return;
    }
    in_netns(|| {
        sh("ip tuntap add dev nat64tun mode tun && ip link set nat64tun up");
        let mut fp = FastPath::load(16).unwrap();
        assert_eq!(
            fp.attach_at("nat64tun", Hook::L3Egress).unwrap(),
            Attached::Tcx
        );
        let (_, progs) = aya::programs::SchedClassifier::query_tcx(
            "nat64tun",
            aya::programs::TcAttachType::Egress,
        )
        .expect("query tcx");
        let names: Vec<&str> = progs
            .iter()
            .map(|p| p.name_as_str().unwrap_or("?"))
            .collect();
        assert_eq!(names, [PROGRAM_L3_NAME]);
        let e = fp.attach_at(DEV, Hook::L3Egress).unwrap_err();
        assert!(
            matches!(e, nat64_bpf::FastPathError::NotL3(_, 1)),
            "a veth is Ethernet: {e}"
        );
        let e = fp.attach("nat64tun").unwrap_err();
        assert!(
            matches!(e, nat64_bpf::FastPathError::NotEthernet(_, 0xfffe)),
            "{e}"
        );
        drop(fp);
        let (_, progs) = aya::programs::SchedClassifier::query_tcx(
            "nat64tun",
            aya::programs::TcAttachType::Egress,
        )
        .expect("query tcx");
        assert!(progs.is_empty(), "dropping detaches");
    });
}

#[test]
fn tcx_attach_is_idempotent_and_detaches() {
    if !can_run("tcx_attach_is_idempotent_and_detaches") {
        return;
    }
    in_netns(|| {
        let mut fp = FastPath::load(16).unwrap();
        assert_eq!(fp.attach(DEV).unwrap(), Attached::Tcx);
        assert_eq!(fp.attach(DEV).unwrap(), Attached::Tcx, "again: no-op");
        assert_eq!(tcx_programs(), vec![PROGRAM_NAME.to_owned()]);
        assert_eq!(fp.attached(), vec![(DEV.to_owned(), Attached::Tcx)]);
        fp.detach(DEV);
        assert!(tcx_released(), "detached: {:?}", tcx_programs());
        fp.attach_with(DEV, AttachMode::Tcx).unwrap();
        // No Ethernet header on loopback (or TUN, WireGuard): refused.
        let e = fp.attach("lo").unwrap_err();
        assert!(
            matches!(e, nat64_bpf::FastPathError::NotEthernet(_, 772)),
            "{e}"
        );
        drop(fp);
        assert!(tcx_released(), "dropping detaches: {:?}", tcx_programs());
    });
}

/// Whether DEV's TCX ingress is empty within a second. A link goes when
/// its last descriptor closes, and a process another test thread is
/// forking at that moment holds a copy of every descriptor until it execs
/// (close-on-exec): the release may come a moment after our close.
fn tcx_released() -> bool {
    (0..50).any(|_| {
        let empty = tcx_programs().is_empty();
        if !empty {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        empty
    })
}

/// The child half of the tests below: when NAT64_BPF_CHILD names a mode,
/// attach to DEV that way, say so, and wait to be killed.
#[test]
#[ignore = "run by the other tests as a child process"]
fn child_attach_and_wait() {
    let Ok(mode) = std::env::var("NAT64_BPF_CHILD") else {
        return;
    };
    let mut fp = FastPath::load(16).unwrap();
    let mode = if mode == "netlink" {
        AttachMode::Netlink
    } else {
        AttachMode::Tcx
    };
    fp.attach_with(DEV, mode).unwrap();
    println!("ATTACHED");
    std::thread::sleep(std::time::Duration::from_secs(120));
}

/// Starts this test binary's `child_attach_and_wait` in the calling
/// thread's namespace and waits until it has attached.
fn spawn_child(mode: &str) -> Child {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_attach_and_wait",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NAT64_BPF_CHILD", mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains("ATTACHED") => break,
            Some(Ok(_)) => continue,
            other => panic!("child ended before attaching: {other:?} {:?}", child.wait()),
        }
    }
    child
}

/// SIGKILL leaves nothing behind with TCX: the link's fd closes with the
/// process and the kernel detaches the program.
#[test]
fn tcx_link_dies_with_its_process() {
    if !can_run("tcx_link_dies_with_its_process") {
        return;
    }
    in_netns(|| {
        let mut child = spawn_child("tcx");
        assert_eq!(tcx_programs(), vec![PROGRAM_NAME.to_owned()]);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // The link is released when the last fd closes; give the kernel a
        // moment (deferred fput).
        assert!(
            tcx_released(),
            "still attached after SIGKILL: {:?}",
            tcx_programs()
        );
    });
}

/// Netlink filters outlive their process: the next attach finds ours by
/// name and replaces it, and detaching removes it.
#[test]
fn netlink_fallback_removes_stale_filters() {
    if !can_run("netlink_fallback_removes_stale_filters") {
        return;
    }
    in_netns(|| {
        let mut child = spawn_child("netlink");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(netlink_filters(), 1, "the dead process's filter stays");
        let mut fp = FastPath::load(16).unwrap();
        assert_eq!(
            fp.attach_with(DEV, AttachMode::Netlink).unwrap(),
            Attached::Netlink
        );
        assert_eq!(netlink_filters(), 1, "stale filter replaced, not doubled");
        fp.detach_all();
        assert_eq!(netlink_filters(), 0);
        assert!(tcx_programs().is_empty());
    });
}

/// Waits out the program's route cache (`NAT64_ROUTE_TTL_NS`, 1 ms): a
/// route, MTU or forwarding change reaches an installed flow's next packet
/// after that.
fn settle() {
    std::thread::sleep(std::time::Duration::from_millis(2));
}

/// The real forwarding path: bpf_fib_lookup on the translated destination
/// (route MTU, forwarding sysctls), bpf_redirect_neigh (TC_ACT_REDIRECT,
/// which a test run reports without sending). One-armed: both families on
/// one interface, as a NAT64 box with a single uplink.
#[test]
fn route_lookup_and_redirect() {
    if !can_run("route_lookup_and_redirect") {
        return;
    }
    in_netns(|| {
        sh(&format!(
            "ip addr add 198.51.100.1/24 dev {DEV} && \
             ip -6 addr add 2001:db8:1::1/64 dev {DEV} nodad && \
             ip neigh replace 198.51.100.2 lladdr {NEXT_HOP_MAC} nud permanent dev {DEV} && \
             ip -6 neigh replace 2001:db8:1::2 lladdr {NEXT_HOP_MAC} nud permanent dev {DEV} && \
             echo 1 > /proc/sys/net/ipv4/conf/all/forwarding && \
             echo 1 > /proc/sys/net/ipv4/conf/{DEV}/forwarding && \
             echo 1 > /proc/sys/net/ipv6/conf/all/forwarding"
        ));
        let mut fp = FastPath::load(16).unwrap();
        let f = flow(L4Proto::Tcp);
        install(&mut fp, &f);
        fp.set_config(&Config {
            forwarding: Forwarding::Redirect { fib_ifindex: 0 },
            ..Config::default()
        })
        .unwrap();
        let ctx = SkBuffCtx {
            ifindex: ifindex(DEV),
            ..SkBuffCtx::default()
        };
        let run = |fp: &FastPath, ip: &[u8]| {
            fp.test_run(&frame_to(DEV_MAC, ethertype(ip), ip), Some(&ctx))
                .unwrap()
        };

        let t = Tcp::default();
        let v6 = client_tcp(&t, &[7; 1000]);
        let out = run(&fp, &v6);
        assert_eq!(out.retval, TC_ACT_REDIRECT);
        assert_eq!(out.data[14..], userspace(&v6, &f, 0).unwrap()[..]);
        let v4 = server_tcp(&t, &[8; 1000]);
        let out = run(&fp, &v4);
        assert_eq!(out.retval, TC_ACT_REDIRECT);
        assert_eq!(out.data[14..], userspace(&v4, &f, 0).unwrap()[..]);
        assert_eq!(fp.stats().unwrap().get(Stat::Xlat6to4), 1);

        // The route is cached per flow: egress, next hop (on-link: the
        // destination), the size the MTU took, the TOS looked up with.
        let r = fp.route_6to4(&f.in6).unwrap();
        assert_eq!(r.ifindex, ifindex(DEV));
        assert_eq!((r.family, &r.nh[..4]), (2, &[198, 51, 100, 2][..]));
        assert_eq!((r.fits, r.tos), (20 + 32 + 1000, 0));
        let r6 = fp.route_4to6(&f.in4).unwrap();
        assert_eq!((r6.ifindex, r6.family), (ifindex(DEV), 10));
        assert_eq!(r6.nh, f.out6.dst.octets());
        // Back-to-back packets of the flow reuse it (fewer lookups than
        // packets: 20 runs within the 1 ms TTL of one another at least
        // once), and a larger packet widens what it took.
        let mut looked_up = std::collections::HashSet::new();
        for _ in 0..20 {
            assert_eq!(run(&fp, &v6).retval, TC_ACT_REDIRECT);
            looked_up.insert(fp.route_6to4(&f.in6).unwrap().at_ns);
        }
        assert!(looked_up.len() < 20, "a lookup for every packet");
        let v6_big = client_tcp(&t, &[7; 1200]);
        assert_eq!(run(&fp, &v6_big).retval, TC_ACT_REDIRECT);
        assert_eq!(fp.route_6to4(&f.in6).unwrap().fits, 20 + 32 + 1200);

        // The route's MTU: a translated packet above it is passed.
        sh(&format!("ip link set {DEV} mtu 1400"));
        settle();
        let fits = client_tcp(&t, &vec![1; 1420 - 72]);
        assert_eq!(run(&fp, &fits).retval, TC_ACT_REDIRECT);
        let big = frame_to(DEV_MAC, ETH_P_IPV6, &client_tcp(&t, &vec![1; 1421 - 72]));
        let out = fp.test_run(&big, Some(&ctx)).unwrap();
        assert_eq!((out.retval, &out.data), (TC_ACT_OK, &big));
        assert_eq!(fp.stats().unwrap().get(Stat::PassMtu), 1);
        sh(&format!("ip link set {DEV} mtu 1500"));
        settle();

        // No route for the translated destination: passed.
        sh(&format!("ip route del 198.51.100.0/24 dev {DEV}"));
        settle();
        let v6 = client_tcp(&t, b"no route");
        let fr = frame_to(DEV_MAC, ETH_P_IPV6, &v6);
        let out = fp.test_run(&fr, Some(&ctx)).unwrap();
        assert_eq!((out.retval, &out.data), (TC_ACT_OK, &fr));
        assert!(fp.stats().unwrap().get(Stat::PassFib) >= 1);
        sh(&format!("ip route add 198.51.100.0/24 dev {DEV}"));
        settle();
        assert_eq!(run(&fp, &v6).retval, TC_ACT_REDIRECT);

        // Forwarding disabled on the receiving interface: passed.
        sh(&format!(
            "echo 0 > /proc/sys/net/ipv4/conf/{DEV}/forwarding"
        ));
        settle();
        let fib_before = fp.stats().unwrap().get(Stat::PassFib);
        let out = fp.test_run(&fr, Some(&ctx)).unwrap();
        assert_eq!((out.retval, &out.data), (TC_ACT_OK, &fr));
        assert_eq!(fp.stats().unwrap().get(Stat::PassFib), fib_before + 1);

        // The lookup may run as if the packet came from another interface
        // (the TUN's): here one with forwarding on.
        sh(
            "ip link add nat64t1 type veth peer name nat64t1p && ip link set nat64t1 up && \
            echo 1 > /proc/sys/net/ipv4/conf/nat64t1/forwarding",
        );
        fp.set_config(&Config {
            forwarding: Forwarding::Redirect {
                fib_ifindex: ifindex("nat64t1"),
            },
            ..Config::default()
        })
        .unwrap();
        assert_eq!(run(&fp, &v6).retval, TC_ACT_REDIRECT);

        // A per-flow STACK_FORWARD entry translates without the lookup.
        sh("echo 0 > /proc/sys/net/ipv4/conf/nat64t1/forwarding");
        settle();
        fp.insert_6to4(&f.in6, &f.out4, nat64_bpf::FLOW_STACK_FORWARD)
            .unwrap();
        let out = run(&fp, &v6);
        assert_eq!(out.retval, TC_ACT_OK);
        assert_eq!(out.data[14..], userspace(&v6, &f, 0).unwrap()[..]);
    });
}

fn ethertype(ip: &[u8]) -> u16 {
    if ip[0] >> 4 == 6 {
        ETH_P_IPV6
    } else {
        ETH_P_IP
    }
}
