//! Compiles `bpf/nat64_xlat.bpf.c` with clang into `OUT_DIR`, where
//! `src/lib.rs` embeds it.
//!
//! Without clang or without the kernel/libbpf headers (`libbpf-dev`,
//! `linux-libc-dev`) the crate still builds: a `cargo:warning` says so, the
//! `nat64_bpf_no_object` cfg is set, and `FastPath::load` returns
//! `FastPathError::BuiltWithoutClang`. A C file that clang rejects fails the
//! build (that is a bug, not a missing tool).
//!
//! `NAT64_BPF_CLANG` names the clang to use (default `clang`); pointing it at
//! a missing file is how the no-clang build is tested.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = "bpf/nat64_xlat.bpf.c";
const HEADER: &str = "bpf/nat64_xlat.h";

fn main() {
    println!("cargo::rustc-check-cfg=cfg(nat64_bpf_no_object)");
    println!("cargo::rerun-if-changed={SOURCE}");
    println!("cargo::rerun-if-changed={HEADER}");
    println!("cargo::rerun-if-env-changed=NAT64_BPF_CLANG");

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let obj = out.join("nat64_xlat.bpf.o");
    let _ = std::fs::remove_file(&obj);
    let clang = env::var("NAT64_BPF_CLANG").unwrap_or_else(|_| "clang".to_owned());

    match compile(&clang, &obj) {
        Ok(()) => {}
        Err(Missing(why)) => {
            println!(
                "cargo::warning=nat64-bpf: kernel fast path NOT built ({why}); \
                 FastPath::load() will fail. Run contrib/setup.sh (clang, libbpf-dev) and rebuild."
            );
            println!("cargo::rustc-cfg=nat64_bpf_no_object");
        }
    }
}

/// Clang or the headers are not there.
struct Missing(String);

fn compile(clang: &str, obj: &Path) -> Result<(), Missing> {
    let endian = match env::var("CARGO_CFG_TARGET_ENDIAN").as_deref() {
        Ok("big") => "bpfeb",
        _ => "bpfel",
    };
    let mut cmd = Command::new(clang);
    cmd.args(["-O2", "-g", "-Wall", "-Werror", "-target", endian])
        .arg("-Ibpf")
        .args(["-c", SOURCE, "-o"])
        .arg(obj);
    // Debian's multiarch headers (asm/types.h, asm/byteorder.h) are not on
    // clang's path for the bpf target.
    if let Some(dir) = multiarch_include() {
        cmd.arg(format!("-idirafter{}", dir.display()));
    }
    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => return Err(Missing(format!("cannot run `{clang}`: {e}"))),
    };
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("file not found") && stderr.contains(".h") {
        let first = stderr
            .lines()
            .find(|l| l.contains("file not found"))
            .unwrap_or("headers missing");
        return Err(Missing(format!("headers missing: {first}")));
    }
    if stderr.contains("No available targets") || stderr.contains("unknown target triple") {
        return Err(Missing(format!("`{clang}` cannot target BPF")));
    }
    panic!("clang failed to compile {SOURCE}:\n{stderr}");
}

fn multiarch_include() -> Option<PathBuf> {
    let arch = env::var("CARGO_CFG_TARGET_ARCH").ok()?;
    let triple = match arch.as_str() {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "arm" => "arm-linux-gnueabihf",
        "riscv64" => "riscv64-linux-gnu",
        "powerpc64" => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        "x86" => "i386-linux-gnu",
        _ => return None,
    };
    let dir = Path::new("/usr/include").join(triple);
    dir.is_dir().then_some(dir)
}
