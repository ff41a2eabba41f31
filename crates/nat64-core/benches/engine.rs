//! Stateful engine benchmarks (criterion):
//! * established-flow lookup (mapper only) and full translate, ns/packet;
//! * new flows per second with 1 and 2 threads, and with 2 threads that
//!   also look up established flows between new ones (so each is inside a
//!   read section most of the time, as a busy daemon worker is);
//! * two concurrent readers: the left-right index against a
//!   `RwLock<HashMap>` baseline (ADR-0002);
//! * bytes of memory per session (printed once).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use nat64_core::addr::Prefix;
use nat64_core::state::*;
use nat64_core::time::Timestamp;
use nat64_core::xlat::{FlowMeta, L4Proto, Mapper, Role, Tuple, Tuple6, HEADROOM};
use std::collections::HashMap;
use std::hint::black_box;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const META: FlowMeta = FlowMeta {
    role: Role::Outer,
    tcp_flags: 0,
    fragment: None,
    len: 100,
};

fn engine() -> Engine {
    Engine::new(EngineConfig {
        napt: NaptConfig::Daemon(PoolConfig {
            prefixes: vec![(Ipv4Addr::new(192, 0, 2, 0), 26)],
            ..PoolConfig::default()
        }),
        limits: Limits {
            max_sessions: 1 << 26,
            max_sessions_per_client: 1 << 26,
            client_prefix_len: 128,
            max_sessions_per_site: 1 << 26,
            ..Limits::default()
        },
        ..EngineConfig::default()
    })
    .unwrap()
}

fn flow(i: u64) -> Tuple6 {
    Tuple {
        proto: L4Proto::Udp,
        src: Ipv6Addr::new(
            0x2001,
            0xdb8,
            0,
            0,
            0,
            (i >> 32) as u16,
            (i >> 16) as u16,
            (i / 50) as u16,
        ),
        src_port: 10000 + (i % 50000) as u16,
        dst: Prefix::WELL_KNOWN.embed(Ipv4Addr::new(8, 8, 8, 8)),
        dst_port: 53,
    }
}

fn udp6_packet(src: Ipv6Addr, sp: u16) -> Vec<u8> {
    let mut v = Vec::new();
    etherparse::PacketBuilder::ipv6(
        src.octets(),
        Prefix::WELL_KNOWN.embed(Ipv4Addr::new(8, 8, 8, 8)).octets(),
        64,
    )
    .udp(sp, 53)
    .write(&mut v, &[0u8; 64])
    .unwrap();
    v
}

fn established(c: &mut Criterion) {
    const N: u64 = 100_000;
    let e = engine();
    let mut w = e.worker();
    w.set_now(Timestamp::from_secs(1));
    for i in 0..N {
        w.mapper().map_6to4(&flow(i), &META).unwrap();
    }
    eprintln!(
        "engine memory estimate: {} bytes/session ({} sessions, 1 binding each)",
        e.memory_estimate() / N as usize,
        N
    );
    let mut g = c.benchmark_group("established");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("lookup_6to4", |b| {
        b.iter(|| {
            i = (i + 7919) % N;
            black_box(w.mapper().map_6to4(&flow(i), &META).unwrap())
        })
    });
    // Full path: the RFC 7915 core plus the lookup, in place.
    let pkts: Vec<Vec<u8>> = (0..1024)
        .map(|i| {
            let f = flow(i);
            udp6_packet(f.src, f.src_port)
        })
        .collect();
    let mut buf = vec![0u8; HEADROOM + 256];
    let mut k = 0usize;
    g.bench_function("process_udp_6to4", |b| {
        b.iter(|| {
            k = (k + 1) & 1023;
            let p = &pkts[k];
            buf[HEADROOM..HEADROOM + p.len()].copy_from_slice(p);
            black_box(w.process(&mut buf, HEADROOM, p.len(), Timestamp::from_secs(2)))
        })
    });
    g.finish();
}

fn new_flows(c: &mut Criterion) {
    let mut g = c.benchmark_group("new_flows");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    for threads in [1usize, 2] {
        g.bench_with_input(
            BenchmarkId::from_parameter(threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| {
                    let e = engine();
                    let next = AtomicU64::new(0);
                    let start = Instant::now();
                    std::thread::scope(|s| {
                        for _ in 0..threads {
                            let mut w = e.worker();
                            let next = &next;
                            s.spawn(move || {
                                w.set_now(Timestamp::from_secs(1));
                                loop {
                                    let i = next.fetch_add(1, Ordering::Relaxed);
                                    if i >= iters {
                                        break;
                                    }
                                    let _ = black_box(w.mapper().map_6to4(&flow(i), &META));
                                }
                            });
                        }
                    });
                    start.elapsed()
                })
            },
        );
    }
    g.finish();
}

/// New flows while the same threads keep reading: each of 2 threads creates
/// one new flow, then looks up `READS` established flows (from a table of
/// 100k created beforehand), and so on. A publish has to wait for the other
/// thread to leave its read section, which is what a daemon with two busy
/// workers sees. Throughput counts new flows.
fn new_flows_with_readers(c: &mut Criterion) {
    const N: u64 = 100_000;
    const READS: u64 = 4;
    let mut g = c.benchmark_group("new_flows_with_readers");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("2", |b| {
        b.iter_custom(|iters| {
            let e = engine();
            {
                let mut w = e.worker();
                w.set_now(Timestamp::from_secs(1));
                for i in 0..N {
                    w.mapper().map_6to4(&flow(i), &META).unwrap();
                }
            }
            let next = AtomicU64::new(N);
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..2u64 {
                    let mut w = e.worker();
                    let next = &next;
                    s.spawn(move || {
                        w.set_now(Timestamp::from_secs(2));
                        let mut k = t * 31;
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= N + iters {
                                break;
                            }
                            let _ = black_box(w.mapper().map_6to4(&flow(i), &META));
                            for _ in 0..READS {
                                k = (k + 7919) % N;
                                black_box(w.mapper().map_6to4(&flow(k), &META).ok());
                            }
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

/// The `RwLock<HashMap>` baseline: (v6, port) -> (v4, port, last seen).
type Baseline = RwLock<HashMap<(Ipv6Addr, u16), (Ipv4Addr, u16, AtomicU64)>>;

/// Two threads looking up established flows at once: the left-right index
/// (wait-free readers) against one `RwLock<HashMap>` (every reader bumps
/// the same counter).
fn concurrent_readers(c: &mut Criterion) {
    const N: u64 = 100_000;
    let e = engine();
    {
        let mut w = e.worker();
        w.set_now(Timestamp::from_secs(1));
        for i in 0..N {
            w.mapper().map_6to4(&flow(i), &META).unwrap();
        }
    }
    let table: Arc<Baseline> = Arc::new(RwLock::new(
        (0..N)
            .map(|i| {
                let f = flow(i);
                (
                    (f.src, f.src_port),
                    (Ipv4Addr::new(192, 0, 2, 1), 1, AtomicU64::new(0)),
                )
            })
            .collect(),
    ));
    let mut g = c.benchmark_group("readers_2_threads");
    g.throughput(Throughput::Elements(2));
    g.bench_function("left_right", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..2u64 {
                    let mut w = e.worker();
                    s.spawn(move || {
                        w.set_now(Timestamp::from_secs(2));
                        for k in 0..iters {
                            let i = (k * 7919 + t * 31) % N;
                            black_box(w.mapper().map_6to4(&flow(i), &META).ok());
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    g.bench_function("rwlock_hashmap", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            std::thread::scope(|s| {
                for t in 0..2u64 {
                    let table = table.clone();
                    s.spawn(move || {
                        for k in 0..iters {
                            let i = (k * 7919 + t * 31) % N;
                            let f = flow(i);
                            let g = table.read().unwrap();
                            if let Some(v) = g.get(&(f.src, f.src_port)) {
                                v.2.store(k, Ordering::Relaxed);
                                black_box((v.0, v.1));
                            }
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    established,
    new_flows,
    new_flows_with_readers,
    concurrent_readers
);
criterion_main!(benches);
