//! `nat64 import-tayga`: Tayga configurations in tayga.conf(5) syntax
//! (tests/data/tayga-*.conf, examples/tayga.conf) convert into nat64.toml
//! files that pass the same validation as `nat64 check`: `napt = "none"`
//! (stateless, as Tayga itself) by default, `napt = "kernel"` with
//! `--napt kernel`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_nat64");

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nat64-tayga-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Converts `conf` into `dir/nat64.toml`, then runs `nat64 check` on it and
/// loads it through the library; returns (toml, import stderr).
fn convert_and_check(conf: &Path, dir: &Path, extra: &[&str]) -> (String, String) {
    let out = dir.join("nat64.toml");
    let mut args = vec![
        "import-tayga",
        conf.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = run(&args);
    let err = text(&o.stderr);
    assert!(o.status.success(), "import-tayga failed:\n{err}");
    let c = run(&["check", "--config", out.to_str().unwrap()]);
    assert!(
        c.status.success(),
        "nat64 check refused the converted file:\n{}\n{}",
        text(&c.stderr),
        std::fs::read_to_string(&out).unwrap()
    );
    nat64::config::load(out.to_str().unwrap(), &[]).unwrap();
    (std::fs::read_to_string(&out).unwrap(), err)
}

#[test]
fn tayga_dynamic_pool_becomes_kernel_napt() {
    let dir = scratch("dynpool");
    let (toml, err) = convert_and_check(&data("tayga-dynpool.conf"), &dir, &["--napt", "kernel"]);
    let loaded = nat64::config::load(dir.join("nat64.toml").to_str().unwrap(), &[]).unwrap();
    let s = &loaded.settings;
    assert_eq!(s.napt, nat64::config::NaptMode::Kernel);
    assert_eq!(s.prefix.to_string(), "64:ff9b::/96");
    assert_eq!(s.gateway_v4.to_string(), "192.168.255.1");
    // ipv4-addr inside dynamic-pool: the half without it.
    assert_eq!(s.inner_pool.unwrap().to_string(), "192.168.255.128/25");
    assert!(s.wkp_strict);
    assert_eq!(s.tun.name, "nat64");
    assert!(err.contains("lies inside dynamic-pool"), "{err}");
    assert!(err.contains("udp-cksum-mode"), "{err}");
    assert!(toml.contains("# line 7: prefix"), "{toml}");
}

#[test]
fn tayga_every_directive_carries_over_or_is_named() {
    let dir = scratch("full");
    let datadir = data("tayga-datadir");
    let conf = std::fs::read_to_string(data("tayga-full.conf"))
        .unwrap()
        .replace("DATADIR", datadir.to_str().unwrap());
    let conf_path = dir.join("tayga.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let leases = dir.join("leases");
    let (toml, err) = convert_and_check(
        &conf_path,
        &dir,
        &["--leases", leases.to_str().unwrap(), "--napt", "kernel"],
    );
    let loaded = nat64::config::load(dir.join("nat64.toml").to_str().unwrap(), &[]).unwrap();
    let s = &loaded.settings;
    assert_eq!(s.prefix.to_string(), "2001:db8:64::/96");
    assert_eq!(s.inner_pool.unwrap().to_string(), "100.64.0.0/16");
    assert_eq!(s.gateway_v4.to_string(), "100.65.0.1");
    assert_eq!(s.icmp_source_v6.to_string(), "2001:db8:ffff::1");
    assert!(!s.wkp_strict);
    assert_eq!(s.ipv6_mtu, 1400);
    assert_eq!(
        s.udp_zero_checksum,
        nat64_core::xlat::UdpZeroChecksum::Forward
    );
    assert_eq!(s.tun.name, "nat64-lab");
    // 1 single map (directive in mixed case) + a /30 expanded + 1 from map-file.
    assert_eq!(s.maps.len(), 6, "{toml}");
    let m = |a6: &str, a4: &str| (a6.parse().unwrap(), a4.parse().unwrap());
    assert!(s.maps.contains(&m("2001:db8:1::10", "100.64.255.10")));
    assert!(s.maps.contains(&m("2001:db8:2::3", "192.0.2.3")));
    assert!(s.maps.contains(&m("2001:db8:1::20", "100.64.255.20")));
    for word in [
        "`log drop reject`",
        "strict-frag-hdr",
        "tun-up",
        "tun-route",
    ] {
        assert!(err.contains(word), "no warning about {word}:\n{err}");
    }
    // dynamic.map: two leases inside the inner pool, one outside skipped.
    let l = std::fs::read_to_string(&leases).unwrap();
    assert!(l.contains("2001:db8:aa::7 100.64.3.7\n"), "{l}");
    assert!(l.contains("2001:db8:aa::8 100.64.3.8\n"), "{l}");
    assert!(!l.contains("192.0.2.99"), "{l}");
    let parsed = nat64::leases::parse(&std::fs::read(&leases).unwrap());
    assert_eq!(parsed.leases.len(), 2);
    assert!(err.contains("1 line(s) skipped"), "{err}");
}

/// The default target: Tayga's own stateless model, every directive
/// carried over (`map` ranges as one explicit mapping each, `map-file` kept
/// as a file nat64 reads, `dynamic-pool` whole with `ipv4-addr` carved out,
/// `workers` as TUN queues, `data-dir` holding the lease file).
#[test]
fn tayga_every_directive_carries_over_to_siit() {
    let dir = scratch("fullsiit");
    let datadir = data("tayga-datadir");
    let conf = std::fs::read_to_string(data("tayga-full.conf"))
        .unwrap()
        .replace("DATADIR", datadir.to_str().unwrap())
        + "workers 3\n";
    let conf_path = dir.join("tayga.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let leases = dir.join("leases");
    let (toml, err) = convert_and_check(&conf_path, &dir, &["--leases", leases.to_str().unwrap()]);
    let loaded = nat64::config::load(dir.join("nat64.toml").to_str().unwrap(), &[]).unwrap();
    let s = &loaded.settings;
    assert_eq!(s.napt, nat64::config::NaptMode::None);
    assert_eq!(s.prefix.to_string(), "2001:db8:64::/96");
    assert_eq!(s.inner_pool.unwrap().to_string(), "100.64.0.0/16");
    assert_eq!(s.gateway_v4.to_string(), "100.65.0.1");
    assert_eq!(s.icmp_source_v6.to_string(), "2001:db8:ffff::1");
    assert!(!s.wkp_strict);
    assert_eq!(s.ipv6_mtu, 1400);
    assert_eq!(
        s.udp_zero_checksum,
        nat64_core::xlat::UdpZeroChecksum::Forward
    );
    assert_eq!(s.tun.name, "nat64-lab");
    assert_eq!(s.tun.queues, 3);
    // Two `map` directives (one a /30) and the map file's line: three
    // explicit mappings, none expanded.
    assert_eq!(s.eam.len(), 3, "{toml}");
    let m = |a4: [u8; 4]| {
        s.eam
            .v4_to_v6(std::net::Ipv4Addr::from(a4))
            .map(|a| a.to_string())
    };
    assert_eq!(m([100, 64, 255, 10]).as_deref(), Some("2001:db8:1::10"));
    assert_eq!(m([192, 0, 2, 3]).as_deref(), Some("2001:db8:2::3"));
    assert_eq!(m([100, 64, 255, 20]).as_deref(), Some("2001:db8:1::20"));
    assert_eq!(
        s.map_file.as_deref(),
        Some(datadir.join("static.map").as_path())
    );
    assert_eq!(
        s.state_file.as_deref(),
        Some(datadir.join("nat64.leases").as_path())
    );
    for word in [
        "`log drop reject`",
        "strict-frag-hdr",
        "tun-up",
        "tun-route",
        "RFC 6146 timers",
        "SIGHUP",
    ] {
        assert!(err.contains(word), "no warning about {word}:\n{err}");
    }
    let l = std::fs::read_to_string(&leases).unwrap();
    assert!(l.contains("2001:db8:aa::7 100.64.3.7\n"), "{l}");
}

#[test]
fn tayga_without_prefix_converts_to_siit_and_is_refused_for_kernel() {
    let o = run(&[
        "import-tayga",
        data("tayga-noprefix.conf").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("no prefix"), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("napt = \"none\""));
    let o = run(&[
        "import-tayga",
        data("tayga-noprefix.conf").to_str().unwrap(),
        "--napt",
        "kernel",
    ]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("no prefix directive"), "{err}");
    assert!(err.contains("fix:"), "{err}");
}

#[test]
fn tayga_bad_line_is_named() {
    let dir = scratch("bad");
    let p = dir.join("tayga.conf");
    std::fs::write(
        &p,
        "tun-device nat64\nipv4-addr 192.0.2.300\nprefix 64:ff9b::/96\n",
    )
    .unwrap();
    let o = run(&["import-tayga", p.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("192.0.2.300"), "{err}");
}

#[test]
fn tayga_example_converts_to_stdout() {
    let ex = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/tayga.conf");
    let o = run(&["import-tayga", ex.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let toml = text(&o.stdout);
    let f = nat64::config::FileConfig::parse(&toml, "stdout").unwrap();
    f.validate("stdout").unwrap();
}
