#![no_main]
//! Stateless SIIT and CLAT (`napt = "none"` / `"clat"`, RFC 7915 + RFC 6052
//! + RFC 7757 + RFC 6877) through the engine's whole pipeline on arbitrary
//! bytes: the EAM table, RFC 6052 both ways, the dynamic pool, the
//! translator's own addresses, RFC 7757 hairpinning, RFC 6791 sources, and
//! the table replaced between two packets (SIGHUP). Invariants after each.
//!
//! Input: `[mode][n][n × (a, b, c, d, len)][knobs][packet]`. `mode` bits:
//! 1 CLAT, 2 wkp-strict, 4 a dynamic pool, 8 the Well-Known Prefix.
//! Each EAM is `a.b.c.d/len` ↔ `2001:db8:e<i>::<a.b.c.d>/(96 + len)`.
#[path = "common.rs"]
mod common;

use nat64_core::eam::{Eam, EamTable};
use nat64_core::state::{invariants, Engine, EngineConfig, NaptConfig, SiitConfig};
use nat64_core::time::Timestamp;
use nat64_core::xlat::{icmp_gen, HEADROOM};
use nat64_core::Verdict;
use std::net::{Ipv4Addr, Ipv6Addr};

fn table(spec: &[[u8; 5]]) -> EamTable {
    let mut t = EamTable::new();
    for (i, s) in spec.iter().enumerate() {
        let len4 = s[4] % 33;
        let mask = if len4 == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len4))
        };
        let v4 = u32::from_be_bytes([s[0], s[1], s[2], s[3]]) & mask;
        let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0xe0 + i as u16, 0, 0, 0, 0, 0));
        let v6 = base | u128::from(v4);
        if let Ok(e) = Eam::new(Ipv4Addr::from(v4), len4, Ipv6Addr::from(v6), 96 + len4) {
            t.insert(e);
        }
    }
    t
}

fn check(v: Verdict, buf: &[u8], orig: &[u8], scratch: &mut [u8]) {
    match v {
        Verdict::Forward { start, len, .. } => {
            assert!(
                start.checked_add(len).is_some_and(|end| end <= buf.len()),
                "Forward {start}+{len} outside a {}-byte buffer",
                buf.len()
            );
            let out = &buf[start..start + len];
            let declared = match out.first().map(|b| b >> 4) {
                Some(4) => {
                    assert!(len >= 20, "IPv4 output of {len} bytes");
                    usize::from(u16::from_be_bytes([out[2], out[3]]))
                }
                Some(6) => {
                    assert!(len >= 40, "IPv6 output of {len} bytes");
                    40 + usize::from(u16::from_be_bytes([out[4], out[5]]))
                }
                other => panic!("output of IP version {other:?}"),
            };
            assert_eq!(declared, len, "the output's header says {declared} bytes");
        }
        Verdict::Icmp { error, .. } => {
            let now = &buf[HEADROOM..HEADROOM + orig.len()];
            assert_eq!(now, orig, "the original changed under an ICMP verdict");
            let r = if orig[0] >> 4 == 6 {
                let src = "2001:db8:ff::1".parse().expect("addr");
                icmp_gen::icmpv6_error(orig, error, src, scratch)
            } else {
                icmp_gen::icmpv4_error(orig, error, Ipv4Addr::new(192, 0, 2, 1), scratch)
            };
            assert!(r.is_ok(), "cannot build the ICMP error {error:?}: {r:?}");
        }
        Verdict::Drop(_) => {}
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let [mode, n, rest @ ..] = data else {
        return;
    };
    let n = usize::from(n % 5);
    if rest.len() < n * 5 + 1 {
        return;
    }
    let spec: Vec<[u8; 5]> = rest[..n * 5]
        .chunks_exact(5)
        .map(|c| [c[0], c[1], c[2], c[3], c[4]])
        .collect();
    let (knobs, pkt) = (rest[n * 5], &rest[n * 5 + 1..]);
    let cfg = EngineConfig {
        prefix: if mode & 8 != 0 {
            "64:ff9b::/96"
        } else {
            "2001:db8:64::/96"
        }
        .parse()
        .expect("prefix"),
        wkp_strict: mode & 2 != 0,
        napt: NaptConfig::Siit(SiitConfig {
            eam: table(&spec),
            dynamic_pool: (mode & 4 != 0).then_some((Ipv4Addr::new(198, 18, 0, 0), 24)),
            own_v4: Some(Ipv4Addr::new(198, 18, 0, 1)),
            own_v6: Some("2001:db8:ff::1".parse().expect("addr")),
            rfc6791: vec![Ipv4Addr::new(192, 0, 2, 250)],
            clat: mode & 1 != 0,
        }),
        ..EngineConfig::default()
    };
    let Ok(e) = Engine::new(cfg) else {
        return;
    };
    let mut w = e.worker();
    let mut scratch = vec![0u8; 65536];
    // The packet, then again after the table is replaced (reversed order:
    // different collisions win).
    for round in 0..2 {
        if round == 1 {
            let mut rev = spec.clone();
            rev.reverse();
            e.set_eam(table(&rev[..rev.len().saturating_sub(1)]));
        }
        let mut buf = vec![0u8; HEADROOM + pkt.len() + 64];
        buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
        common::fix_checksums(&mut buf[HEADROOM..], knobs);
        let orig = buf[HEADROOM..HEADROOM + pkt.len()].to_vec();
        let v = w
            .process(&mut buf, HEADROOM, pkt.len(), Timestamp(round * 1000))
            .verdict;
        check(v, &buf, &orig, &mut scratch);
        if let Err(v) = invariants::check(&e) {
            panic!("invariants after round {round}: {v}");
        }
    }
});
