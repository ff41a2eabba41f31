//! ns per packet for RFC 7915 translation in place (no state): IPv6→IPv4
//! and IPv4→IPv6 for a 1500-byte TCP segment and a UDP datagram with a 64-byte payload.
//!
//! Each iteration copies the original packet back into the buffer (a
//! 1500-byte memcpy is part of the measured time; `copy_only` measures it
//! alone so it can be subtracted) and translates it.
//!
//! Run: `cargo bench -p nat64-core --bench xlat`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use etherparse::PacketBuilder;
use nat64_core::xlat::{self, Config, StatelessMapper, HEADROOM};
use nat64_core::Verdict;
use std::hint::black_box;
use std::net::Ipv4Addr;

fn mapper() -> StatelessMapper {
    StatelessMapper {
        prefix: "2001:db8:64::/96".parse().unwrap(),
        wkp_strict: false,
    }
}

fn v6_packet(tcp: bool, ip_len: usize) -> Vec<u8> {
    let m = mapper();
    let src = m.prefix.embed(Ipv4Addr::new(192, 0, 2, 1)).octets();
    let dst = m.prefix.embed(Ipv4Addr::new(198, 51, 100, 2)).octets();
    let mut out = Vec::new();
    if tcp {
        let payload = vec![0xa5u8; ip_len - 40 - 20];
        PacketBuilder::ipv6(src, dst, 64)
            .tcp(40000, 80, 1, 65535)
            .ack(1)
            .write(&mut out, &payload)
            .unwrap();
    } else {
        let payload = vec![0xa5u8; ip_len]; // UDP: ip_len is the payload size
        PacketBuilder::ipv6(src, dst, 64)
            .udp(40000, 53)
            .write(&mut out, &payload)
            .unwrap();
    }
    out
}

fn v4_packet(tcp: bool, ip_len: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let (src, dst) = ([198, 51, 100, 2], [192, 0, 2, 1]);
    if tcp {
        let payload = vec![0xa5u8; ip_len - 20 - 20];
        PacketBuilder::ipv4(src, dst, 64)
            .tcp(80, 40000, 1, 65535)
            .ack(1)
            .write(&mut out, &payload)
            .unwrap();
    } else {
        let payload = vec![0xa5u8; ip_len]; // UDP: ip_len is the payload size
        PacketBuilder::ipv4(src, dst, 64)
            .udp(53, 40000)
            .write(&mut out, &payload)
            .unwrap();
    }
    out
}

fn bench_case(c: &mut Criterion, name: &str, pkt: Vec<u8>, six_to_four: bool) {
    // A 1500-byte IPv4 packet becomes 1520 bytes of IPv6: give the IPv6
    // side room for it (with the default 1500 it is, correctly, answered
    // with Fragmentation Needed instead).
    let cfg = Config {
        ipv6_link_mtu: 1520,
        ..Config::default()
    };
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    let mut buf = vec![0u8; HEADROOM + pkt.len() + 64];
    let mut m = mapper();
    g.bench_function("translate", |b| {
        b.iter(|| {
            buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(black_box(&pkt));
            let v = if six_to_four {
                xlat::six_to_four(&mut buf, HEADROOM, pkt.len(), &cfg, &mut m)
            } else {
                xlat::four_to_six(&mut buf, HEADROOM, pkt.len(), &cfg, &mut m)
            };
            assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
            black_box(v);
        })
    });
    g.bench_function("copy_only", |b| {
        b.iter(|| {
            buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(black_box(&pkt));
            black_box(&buf);
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_case(c, "6to4_tcp_1500", v6_packet(true, 1500), true);
    bench_case(c, "6to4_udp_64", v6_packet(false, 64), true);
    bench_case(c, "4to6_tcp_1500", v4_packet(true, 1500), false);
    bench_case(c, "4to6_udp_64", v4_packet(false, 64), false);
}

criterion_group!(xlat_benches, benches);
criterion_main!(xlat_benches);
