//! Packaging: the committed man pages and shell completions are what the
//! binary generates (so they stay current), and the systemd unit passes
//! `systemd-analyze verify`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nat64");

fn contrib() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib")
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nat64-packaging-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn files(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn committed_man_pages_and_completions_are_current() {
    let dir = scratch("gen");
    let o = Command::new(BIN)
        .args(["generate", "all"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut stale = Vec::new();
    for sub in ["man", "completions"] {
        let want = files(&dir.join(sub));
        let have = files(&contrib().join(sub));
        assert!(!want.is_empty());
        if want != have {
            stale.push(format!("contrib/{sub}: files {have:?}, generated {want:?}"));
        }
        for f in &want {
            let g = std::fs::read(dir.join(sub).join(f)).unwrap();
            if std::fs::read(contrib().join(sub).join(f)).ok().as_ref() != Some(&g) {
                stale.push(format!("contrib/{sub}/{f} differs"));
            }
        }
    }
    assert!(
        stale.is_empty(),
        "the committed man pages/completions are out of date with the CLI:\n  {}\nfix: run \
         `cargo run -p nat64 -- generate all contrib` (remove stale files) and commit the result",
        stale.join("\n  ")
    );
}

#[test]
fn generate_prints_single_artifacts() {
    let o = Command::new(BIN)
        .args(["generate", "completions", "bash"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("import-tayga"));
    let o = Command::new(BIN)
        .args(["generate", "man", "replay"])
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains(".TH nat64-replay 1"));
    let o = Command::new(BIN)
        .args(["generate", "completions", "tcsh"])
        .output()
        .unwrap();
    assert!(!o.status.success());
}

/// `systemd-analyze verify` needs the ExecStart binary to exist and the
/// man pages of Documentation= to be installed: the unit is checked with
/// its /usr/local/bin/nat64 pointed at the test binary and MANPATH at the
/// generated pages. Everything else is verified as shipped.
#[test]
fn systemd_unit_verifies() {
    let unit = contrib().join("systemd/nat64.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    for key in [
        "Type=notify",
        "CapabilityBoundingSet=CAP_NET_ADMIN",
        "AmbientCapabilities=CAP_NET_ADMIN",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "DeviceAllow=/dev/net/tun",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        "StateDirectory=nat64",
        "RuntimeDirectory=nat64",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(text.contains(key), "nat64.service lacks {key}");
    }
    let ok = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        println!("SKIPPED: systemd-analyze not installed (Debian package `systemd`)");
        return;
    }
    let dir = scratch("unit");
    let man1 = dir.join("man/man1");
    std::fs::create_dir_all(&man1).unwrap();
    for f in files(&contrib().join("man")) {
        std::fs::copy(contrib().join("man").join(&f), man1.join(&f)).unwrap();
    }
    let local = dir.join("nat64.service");
    std::fs::write(&local, text.replace("/usr/local/bin/nat64", BIN)).unwrap();
    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&local)
        .env("MANPATH", dir.join("man"))
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    println!("systemd-analyze verify: {}", out.trim());
    assert!(o.status.success(), "systemd-analyze verify failed:\n{out}");
    assert!(
        !out.contains("nat64.service:"),
        "systemd-analyze verify complained:\n{out}"
    );
}

/// The fenced ```LANG blocks of a document under docs/.
fn doc_blocks(doc: &str, lang: &str) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs")
        .join(doc);
    let text = std::fs::read_to_string(&path).unwrap();
    let open = format!("```{lang}\n");
    text.split(&open)
        .skip(1)
        .map(|rest| rest.split("```").next().unwrap().to_string())
        .collect()
}

/// Checks each ```LANG block of docs/deployment.md with `argv` + the
/// block's file (the tool's own parser: the snippets must load as written).
/// Skipped when the tool is missing, except in CI (`contrib/setup.sh`
/// installs it).
fn check_snippets(lang: &str, tool: &str, argv: &[&str], package: &str) {
    let blocks = doc_blocks("deployment.md", lang);
    assert!(
        !blocks.is_empty(),
        "docs/deployment.md has no ```{lang} block"
    );
    let have = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var_os("CI").is_none(),
            "{tool} missing in CI: contrib/setup.sh installs {package}"
        );
        println!("SKIPPED: {tool} not installed (Debian package `{package}`)");
        return;
    }
    let dir = scratch(lang);
    for (i, b) in blocks.iter().enumerate() {
        let f = dir.join(format!("{lang}-{i}.conf"));
        std::fs::write(&f, b).unwrap();
        let o = Command::new(tool).args(argv).arg(&f).output().unwrap();
        assert!(
            o.status.success(),
            "docs/deployment.md ```{lang} block {i} does not load with {tool}:\n{}{}\n{b}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn deployment_guide_bird_config_parses() {
    check_snippets("bird", "bird", &["-p", "-c"], "bird2");
}

#[test]
fn deployment_guide_frr_config_passes_a_dry_run() {
    check_snippets("frr", "vtysh", &["--dryrun", "-f"], "frr");
}
