//! ns per RFC 7757 EAM lookup, the per-packet cost of the stateless mode:
//! `v4_to_v6` and `v6_to_v4`, hit and miss, for an empty table, one entry,
//! and 1,000 entries of five prefix lengths (IPv4 /16, /20, /24, /28, /32,
//! each with its /112…/128 IPv6 partner).
//!
//! With 1,000 mixed entries a hit on a /16 entry is the slowest hit (four
//! longer lengths are probed first) and a miss probes all five lengths.
//!
//! Run: `cargo bench -p nat64-core --bench eam`.

use criterion::{criterion_group, criterion_main, Criterion};
use nat64_core::eam::{Eam, EamTable};
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};

/// IPv4 prefix lengths of the mixed table, cycled.
const LENS: [u8; 5] = [16, 20, 24, 28, 32];

/// Entry `i` of the mixed table: IPv4 100.0.0.0 + i·2^16, IPv6
/// 2001:db8:: + i·2^32, lengths from [`LENS`]; disjoint from each other.
fn mixed_entry(i: u32) -> Eam {
    let len4 = LENS[i as usize % LENS.len()];
    let a4 = Ipv4Addr::from(0x6400_0000 + (i << 16));
    let a6 = Ipv6Addr::from((0x2001_0db8u128 << 96) | (u128::from(i) << 32));
    Eam::new(a4, len4, a6, len4 + 96).expect("valid bench entry")
}

fn mixed_table(n: u32) -> EamTable {
    let mut t = EamTable::new();
    for i in 0..n {
        t.insert(mixed_entry(i));
    }
    t
}

/// The four lookups on `t`: hit and miss each way.
fn lookups(c: &mut Criterion, name: &str, t: &EamTable, hit4: Ipv4Addr, hit6: Ipv6Addr) {
    let miss4 = Ipv4Addr::new(203, 0, 113, 7);
    let miss6: Ipv6Addr = "2001:db8:ffff::7".parse().unwrap();
    let mut g = c.benchmark_group(name);
    g.bench_function("v4_to_v6_hit", |b| {
        b.iter(|| black_box(t).v4_to_v6(black_box(hit4)))
    });
    g.bench_function("v4_to_v6_miss", |b| {
        b.iter(|| black_box(t).v4_to_v6(black_box(miss4)))
    });
    g.bench_function("v6_to_v4_hit", |b| {
        b.iter(|| black_box(t).v6_to_v4(black_box(&hit6)))
    });
    g.bench_function("v6_to_v4_miss", |b| {
        b.iter(|| black_box(t).v6_to_v4(black_box(&miss6)))
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    let empty = EamTable::new();
    let any4 = Ipv4Addr::new(192, 0, 2, 1);
    let any6: Ipv6Addr = "2001:db8::1".parse().unwrap();
    lookups(c, "eam_empty", &empty, any4, any6);

    let mut one = EamTable::new();
    one.insert(Eam::parse("192.0.2.0/24", "2001:db8:6::/120").unwrap());
    let hit6: Ipv6Addr = "2001:db8:6::21".parse().unwrap();
    lookups(c, "eam_1", &one, Ipv4Addr::new(192, 0, 2, 33), hit6);

    // Entry 5 is a /16 (100.5.0.0/16 ↔ 2001:db8:0:0:0:5::/112).
    let mixed = mixed_table(1_000);
    assert_eq!(mixed.len(), 1_000);
    let hit4 = Ipv4Addr::new(100, 5, 1, 2);
    let hit6: Ipv6Addr = "2001:db8::5:0:102".parse().unwrap();
    assert!(mixed.v4_to_v6(hit4) == Some(hit6), "bench hit must hit");
    lookups(c, "eam_1000_mixed", &mixed, hit4, hit6);
}

criterion_group!(eam_benches, benches);
criterion_main!(eam_benches);
