//! Resident size of the flow tables: 1,000,000 UDP sessions (each with its
//! own binding, the worst case) must stay under 512 MiB of VmRSS.
//! Alone in its own test binary so the number is not polluted.

mod state_common;
use state_common::*;

use nat64_core::state::*;
use nat64_core::time::Timestamp;
use nat64_core::xlat::{L4Proto, Mapper, Tuple};
use std::net::Ipv6Addr;

fn vm_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[test]
fn one_million_udp_sessions_under_512_mib() {
    const N: u32 = 1_000_000;
    let before = vm_rss_kib().unwrap_or(0);
    let mut cfg = daemon_cfg(&[("192.0.2.0", 27)]); // 32 addresses
    cfg.limits.max_sessions = 2_000_000;
    cfg.limits.max_sessions_per_client = 1 << 20;
    let e = Engine::new(cfg).unwrap();
    let mut w = e.worker();
    w.set_now(Timestamp::from_secs(1));
    let dst = nat64_core::addr::Prefix::WELL_KNOWN.embed(v4("8.8.8.8"));
    let m = meta(0);
    // 20,000 clients x 50 ports: one binding per session. `round` picks
    // other client addresses for a second fill.
    let fill = |w: &mut Worker, round: u16| {
        for i in 0..N {
            let client = i / 50;
            let t = Tuple {
                proto: L4Proto::Udp,
                src: Ipv6Addr::new(
                    0x2001,
                    0xdb8,
                    0,
                    0,
                    0,
                    round,
                    (client >> 16) as u16,
                    client as u16,
                ),
                src_port: 10000 + (i % 50) as u16,
                dst,
                dst_port: 53,
            };
            w.mapper().map_6to4(&t, &m).unwrap();
        }
    };
    fill(&mut w, 0);
    let after = vm_rss_kib().unwrap_or(0);
    let c = e.counts();
    assert_eq!(c.sessions.udp, N as usize);
    assert_eq!(c.bindings.udp, N as usize);
    let grew = after.saturating_sub(before);
    println!(
        "1M UDP sessions: VmRSS {} MiB (grew {} MiB, {} bytes/session); engine estimate {} bytes/session",
        after / 1024,
        grew / 1024,
        grew * 1024 / N as u64,
        e.memory_estimate() / N as usize
    );
    assert!(after < 512 * 1024, "VmRSS {after} KiB is over 512 MiB");
    // And the reaper gets it all back: entries, ports, and (issue 11 #10)
    // the tables' memory.
    let peak_tables = e.memory_estimate();
    // Swept the way the daemon's reaper sweeps: bounded steps until done.
    let mut expired = 0;
    loop {
        let st = e.sweep(Timestamp::from_secs(10_000));
        expired += st.expired_sessions.udp;
        if st.complete {
            break;
        }
    }
    assert_eq!(expired, N as usize);
    assert_eq!(e.counts().pool_ports_in_use, 0);
    // The next sweep publishes again, which lets the index copy that was
    // still being read drop its entries too (left-right applies the log to
    // the second copy one publish later).
    e.sweep(Timestamp::from_secs(10_000));
    let drained_tables = e.memory_estimate();
    // What the daemon's reaper does after a large drain: hand the freed
    // heap back to the kernel (glibc keeps it otherwise).
    // SAFETY: malloc_trim has no preconditions.
    #[cfg(target_env = "gnu")]
    unsafe {
        libc::malloc_trim(0);
    }
    let drained = vm_rss_kib().unwrap_or(0);
    println!(
        "after the drain: tables {} KiB (peak {} KiB), VmRSS {} MiB",
        drained_tables / 1024,
        peak_tables / 1024,
        drained / 1024
    );
    assert!(
        drained_tables * 20 < peak_tables,
        "drained tables keep {drained_tables} of {peak_tables} bytes"
    );
    // A second fill reuses what the first gave back: no growth.
    w.set_now(Timestamp::from_secs(10_001));
    fill(&mut w, 1);
    let refill = vm_rss_kib().unwrap_or(0);
    println!("after a second fill: VmRSS {} MiB", refill / 1024);
    assert!(
        drained < after / 2,
        "VmRSS after the drain {drained} KiB (peak {after} KiB)"
    );
    assert!(
        refill < after + after / 4,
        "second fill grew VmRSS to {refill} KiB (first: {after} KiB)"
    );
}
