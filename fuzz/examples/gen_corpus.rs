//! Writes the seed corpus (fuzz/seeds/<target>/): a handful of small valid inputs per fuzz target
//! (packets built with the engine model's builders, the example configs, a
//! tayga.conf, tiny pcap/pcapng captures). Run once from fuzz/:
//! `cargo run --example gen_corpus`; the output is checked in.

#[path = "../fuzz_targets/engine_model.rs"]
mod engine_model;

use engine_model::{ipv4, ipv6};
use nat64_core::addr::Prefix;
use nat64_core::wire::checksum;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;

const C6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const R4: Ipv4Addr = Ipv4Addr::new(8, 8, 8, 8);
const P4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

fn put(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new("seeds").join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    std::fs::write(dir.join(name), data).expect("corpus file");
}

/// Fills the checksum at `at` of transport data `v`; `pseudo` gives the
/// pseudo-header sum for its length.
fn l4_sum(v: &mut [u8], at: usize, pseudo: impl FnOnce(u32) -> u32) {
    v[at] = 0;
    v[at + 1] = 0;
    let sum = pseudo(v.len() as u32);
    let c = !checksum::fold(checksum::accumulate(sum, v));
    v[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

fn udp(sp: u16, dp: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 8];
    v[0..2].copy_from_slice(&sp.to_be_bytes());
    v[2..4].copy_from_slice(&dp.to_be_bytes());
    v[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn tcp(sp: u16, dp: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 20];
    v[0..2].copy_from_slice(&sp.to_be_bytes());
    v[2..4].copy_from_slice(&dp.to_be_bytes());
    v[4..8].copy_from_slice(&7u32.to_be_bytes());
    v[12] = 5 << 4;
    v[13] = flags;
    v[14..16].copy_from_slice(&64000u16.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn udp6(src: Ipv6Addr, dst: Ipv6Addr, payload: &[u8]) -> Vec<u8> {
    let mut u = udp(40000, 53, payload);
    l4_sum(&mut u, 6, |n| checksum::pseudo_header_v6(src, dst, 17, n));
    ipv6(src, dst, 17, &u, None, 0)
}

fn tcp6(src: Ipv6Addr, dst: Ipv6Addr, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = tcp(40000, 80, flags, payload);
    l4_sum(&mut t, 16, |n| checksum::pseudo_header_v6(src, dst, 6, n));
    ipv6(src, dst, 6, &t, None, 0)
}

fn echo6(src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let mut e = vec![128, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'i', b'n', b'g'];
    l4_sum(&mut e, 2, |n| checksum::pseudo_header_v6(src, dst, 58, n));
    ipv6(src, dst, 58, &e, None, 0)
}

fn udp4(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut u = udp(53, 40000, payload);
    l4_sum(&mut u, 6, |n| {
        checksum::pseudo_header_v4(src, dst, 17, n as u16)
    });
    ipv4(src, dst, 17, &u, None, 1, true)
}

fn tcp4(src: Ipv4Addr, dst: Ipv4Addr, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = tcp(80, 40000, flags, payload);
    l4_sum(&mut t, 16, |n| {
        checksum::pseudo_header_v4(src, dst, 6, n as u16)
    });
    ipv4(src, dst, 6, &t, None, 2, true)
}

fn echo4(src: Ipv4Addr, dst: Ipv4Addr) -> Vec<u8> {
    let mut e = vec![0, 0, 0, 0, 0x12, 0x34, 0, 1, b'p', b'o', b'n', b'g'];
    l4_sum(&mut e, 2, |_| 0);
    ipv4(src, dst, 1, &e, None, 3, false)
}

/// ICMPv4 Destination Unreachable (port) from `src` quoting `quoted`.
fn unreach4(src: Ipv4Addr, dst: Ipv4Addr, quoted: &[u8]) -> Vec<u8> {
    let mut e = vec![3, 3, 0, 0, 0, 0, 0, 0];
    e.extend_from_slice(&quoted[..quoted.len().min(28)]);
    l4_sum(&mut e, 2, |_| 0);
    ipv4(src, dst, 1, &e, None, 4, false)
}

/// ICMPv6 Packet Too Big from `src` quoting `quoted`.
fn ptb6(src: Ipv6Addr, dst: Ipv6Addr, quoted: &[u8]) -> Vec<u8> {
    let mut e = vec![2, 0, 0, 0, 0, 0, 5, 0];
    e.extend_from_slice(quoted);
    l4_sum(&mut e, 2, |n| checksum::pseudo_header_v6(src, dst, 58, n));
    ipv6(src, dst, 58, &e, None, 0)
}

/// A classic pcap (microseconds, little endian) of `link` frames.
fn pcap(link: u32, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    v.extend_from_slice(&2u16.to_le_bytes());
    v.extend_from_slice(&4u16.to_le_bytes());
    v.extend_from_slice(&[0; 8]);
    v.extend_from_slice(&65535u32.to_le_bytes());
    v.extend_from_slice(&link.to_le_bytes());
    for (i, f) in frames.iter().enumerate() {
        v.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        v.extend_from_slice(&(i as u32 * 1000).to_le_bytes());
        v.extend_from_slice(&(f.len() as u32).to_le_bytes());
        v.extend_from_slice(&(f.len() as u32).to_le_bytes());
        v.extend_from_slice(f);
    }
    v
}

fn block(kind: u32, body: &[u8]) -> Vec<u8> {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    let mut v = Vec::new();
    v.extend_from_slice(&kind.to_le_bytes());
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(body);
    v.extend_from_slice(&vec![0; pad]);
    v.extend_from_slice(&len.to_le_bytes());
    v
}

/// A pcapng: section header, one interface of `link`, enhanced packets.
fn pcapng(link: u16, frames: &[Vec<u8>]) -> Vec<u8> {
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    let mut v = block(0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&link.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&65535u32.to_le_bytes());
    v.extend(block(1, &idb));
    for (i, f) in frames.iter().enumerate() {
        let ts = 1_700_000_000_000_000u64 + i as u64 * 500_000;
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(f.len() as u32).to_le_bytes());
        epb.extend_from_slice(f);
        epb.extend_from_slice(&vec![0; (4 - f.len() % 4) % 4]);
        v.extend(block(6, &epb));
    }
    v
}

fn ethernet(ip: &[u8]) -> Vec<u8> {
    let mut v = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
    v.extend_from_slice(if ip[0] >> 4 == 6 {
        &[0x86, 0xdd]
    } else {
        &[0x08, 0x00]
    });
    v.extend_from_slice(ip);
    v
}

fn main() {
    let wkp = Prefix::WELL_KNOWN;
    let nsp: Prefix = "64:ff9b::/96".parse().expect("prefix");
    let r6 = nsp.embed(R4);
    let _ = wkp;

    // The stateless translator (knobs byte 0x0c: fix IPv4 header and ICMP
    // checksums).
    let v6pkts = [
        ("udp", udp6(C6, r6, b"hello")),
        ("tcp_syn", tcp6(C6, r6, 0x02, b"")),
        ("echo", echo6(C6, r6)),
        ("ptb", ptb6(C6, r6, &udp6(r6, C6, b"quoted")[..48])),
        (
            "frag_first",
            ipv6(C6, r6, 17, &udp(1, 2, &[7; 16]), Some((0, true)), 9),
        ),
    ];
    let v4pkts = [
        ("udp", udp4(R4, P4, b"world")),
        ("tcp_synack", tcp4(R4, P4, 0x12, b"")),
        ("echo_reply", echo4(R4, P4)),
        ("unreach", unreach4(R4, P4, &udp4(P4, R4, b"quoted"))),
        (
            "frag_first",
            ipv4(R4, P4, 17, &udp(1, 2, &[7; 16]), Some((0, true)), 9, false),
        ),
    ];
    for (name, p) in &v6pkts {
        put("xlat_6to4", name, &[&[0x0c][..], p].concat());
    }
    for (name, p) in &v4pkts {
        put("xlat_4to6", name, &[&[0x0c][..], p].concat());
    }
    // Offload: [direction | csum_partial << 1, gso_size (BE)] + knobs.
    let big6 = tcp6(C6, r6, 0x10, &[0x55; 3000]);
    let big4 = tcp4(R4, P4, 0x10, &[0x55; 3000]);
    put(
        "offload",
        "gso_tcp_6to4",
        &[&[0x02, 0x05, 0xa0, 0x1c][..], &big6].concat(),
    );
    put(
        "offload",
        "gso_tcp_4to6",
        &[&[0x03, 0x05, 0xa0, 0x1c][..], &big4].concat(),
    );
    put(
        "offload",
        "partial_udp_6to4",
        &[&[0x02, 0, 0, 0x1c][..], &v6pkts[0].1].concat(),
    );
    put(
        "offload",
        "none_4to6",
        &[&[0x01, 0, 0, 0x0c][..], &v4pkts[0].1].concat(),
    );

    // The engine: setup byte, then ops (see engine_model::decode).
    let out = |proto, client, sport, remote, dport, flags| {
        [0x00, proto, client, sport, remote, dport, flags]
    };
    let tcp_life: Vec<u8> = [
        &out(0, 0, 0, 0, 0, 0x02)[..], // v6 SYN
        &[0x06, 0, 0x12],              // SYN+ACK back
        &out(0, 0, 0, 0, 0, 0x10),     // ACK
        &out(0, 0, 0, 0, 0, 0x11),     // FIN
        &[0x06, 0, 0x11],              // FIN back
        &[0x09, 5],                    // +240 s
        &[0x0b, 0],                    // sweep
        &[0x0c],                       // show
    ]
    .concat();
    let hairpin: Vec<u8> = [
        &out(1, 0, 0, 0, 0, 0)[..], // UDP client 0 -> 8.8.8.8
        &[0x06, 0, 0],              // reply
        &out(1, 1, 1, 4, 0, 0),     // client 1 -> pool address 0
        &[0x08, 0, 0],              // ICMP error about it
        &out(2, 2, 2, 1, 0, 0),     // echo
        &[0x06, 0, 0],
        &[0x04, 0, 0, 0, 0, 0, 0x02], // unsolicited v4 SYN (held)
        &[0x09, 3, 0x0b, 0, 0x0c],
    ]
    .concat();
    let statics: Vec<u8> = [
        &[0x0d, 1][..],            // add static / restore lease
        &[0x04, 1, 0, 0, 1, 2, 0], // inbound to it
        &[0x0f, 0x55],             // reload limits
        &out(1, 5, 5, 1, 1, 0),
        &[0x1d, 0x81], // remove static
        &[0x0c],
    ]
    .concat();
    let frags: Vec<u8> = [
        &[0x10, 1, 0, 0, 0, 0, 0][..], // first fragment
        &[0x20, 1, 0, 0, 0, 0, 0],     // later fragment
        &[0x30, 1, 0, 0, 0, 0, 0],     // last fragment
        &[0x0c],
    ]
    .concat();
    for (setup, name) in [
        (0u8, "daemon"),
        (1, "blocks"),
        (2, "kernel"),
        (0x24, "daemon_adf_static"),
        (0x2a, "kernel_map_wkp"),
    ] {
        put(
            "engine",
            &format!("{name}_tcp"),
            &[&[setup][..], &tcp_life].concat(),
        );
        put(
            "engine",
            &format!("{name}_hairpin"),
            &[&[setup][..], &hairpin].concat(),
        );
        put(
            "engine",
            &format!("{name}_statics"),
            &[&[setup][..], &statics].concat(),
        );
        put(
            "engine",
            &format!("{name}_frags"),
            &[&[setup][..], &frags].concat(),
        );
    }

    // Reassembly: limits (8 datagrams, 1 MiB, 2.5 s), then two IPv4 and
    // two IPv6 fragments of one datagram each ([tag, sel, off/8, units]).
    put(
        "reassemble",
        "v4_pair",
        &[0x88, 0, 50, 1, 0x80, 0, 2, 1, 0x10, 2, 5][..],
    );
    put(
        "reassemble",
        "v6_pair",
        &[0x88, 0, 50, 2, 0x81, 0, 3, 2, 0x11, 3, 1][..],
    );
    put(
        "reassemble",
        "timeout",
        &[0x02, 4, 1, 1, 0x80, 0, 2, 3, 200, 1, 0x10, 2, 5][..],
    );
    put(
        "reassemble",
        "raw_v4",
        &[
            &[0x88, 0, 50, 0, (v4pkts[4].1.len() / 4) as u8][..],
            &v4pkts[4].1,
        ]
        .concat(),
    );

    // Configuration: the examples, and one with --set lines.
    let daemon = include_str!("../../examples/daemon.toml");
    let kernel = include_str!("../../examples/kernel.toml");
    put("config", "daemon.toml", daemon.as_bytes());
    put("config", "kernel.toml", kernel.as_bytes());
    put(
        "config",
        "daemon_sets",
        format!("{daemon}\0tun.mtu=1280\nprefix=2001:db8:64::/96\npool=[\"192.0.2.0/30\"]\ntimeouts.udp=600\n").as_bytes(),
    );
    put(
        "config",
        "minimal",
        b"prefix = \"64:ff9b::/96\"\nnapt = \"kernel\"\n[tun]\nname = \"nat64\"\n",
    );

    // Control requests (one per line), answered by examples/daemon.toml.
    put("control_request", "show", b"{\"cmd\":\"stats\"}\n{\"cmd\":\"pool\"}\n{\"cmd\":\"sessions\",\"v6\":\"2001:db8::/64\"}\n");
    put(
        "control_request",
        "binding_add_del",
        b"{\"cmd\":\"binding-add\",\"proto\":\"tcp\",\"v6\":\"[2001:db8::1]:80\",\"v4\":\"198.18.0.1:8080\"}\n{\"cmd\":\"bindings\",\"proto\":\"tcp\"}\n{\"cmd\":\"binding-del\",\"proto\":\"tcp\",\"v4\":\"198.18.0.1:8080\"}\n",
    );
    put("control_request", "bad", b"{\"cmd\":\"nope\"}\nnot json\n{\"cmd\":\"binding-add\",\"proto\":\"udp\",\"v6\":\"x\",\"v4\":\"y\"}\n");

    // Tayga: the example, and one with a map-file and a dynamic.map.
    let tayga = include_str!("../../examples/tayga.conf");
    put("tayga", "example.conf", tayga.as_bytes());
    put(
        "tayga",
        "with_aux",
        format!("{tayga}map-file maps.conf\n\0map 100.64.255.11 2001:db8:1::11\nmap 100.64.254.0/30 2001:db8:2::/126\n\0100.64.0.5 2001:db8::5 1700000000\n# comment\nbad line\n").as_bytes(),
    );
    put(
        "tayga",
        "pool_halved",
        b"tun-device nat64\nipv4-addr 192.168.255.1\nprefix 2001:db8:64::/96\ndynamic-pool 192.168.255.0/24\nlog drop\nstrict-frag-hdr 1\n",
    );

    // Captures of a UDP flow and its answer.
    let flow = [udp6(C6, r6, b"hello"), udp4(R4, P4, b"world")];
    put("pcap", "raw_pcap", &pcap(101, &flow));
    put(
        "pcap",
        "ethernet_pcap",
        &pcap(1, &flow.iter().map(|p| ethernet(p)).collect::<Vec<_>>()),
    );
    put("pcap", "raw_pcapng", &pcapng(101, &flow));
    let mut sll2 = vec![0x86, 0xdd];
    sll2.extend_from_slice(&[0; 18]);
    sll2.extend_from_slice(&flow[0]);
    put("pcap", "sll2_pcapng", &pcapng(276, &[sll2]));

    // SIIT / CLAT: [mode][n][n × (a, b, c, d, len)][knobs][packet]; EAM i
    // maps a.b.c.d/len to 2001:db8:e<i>::a.b.c.d/(96 + len).
    let plat: Prefix = "2001:db8:64::/96".parse().expect("prefix");
    let host6 = "2001:db8:e0::c000:205".parse::<Ipv6Addr>().expect("addr");
    let host4 = Ipv4Addr::new(192, 0, 2, 5);
    let eam24 = [1u8, 192, 0, 2, 0, 24];
    let siit = [
        (
            "udp_out",
            [0u8].iter().chain(&eam24).copied().collect::<Vec<u8>>(),
            udp6(host6, plat.embed(R4), b"siit"),
        ),
        (
            "udp_in",
            [0u8].iter().chain(&eam24).copied().collect(),
            udp4(R4, host4, b"siit"),
        ),
        (
            "echo_to_own",
            vec![0, 0],
            echo6(C6, "2001:db8:ff::1".parse().expect("addr")),
        ),
        (
            "hairpin",
            [0u8, 2, 192, 0, 2, 0, 24, 198, 51, 100, 0, 24].to_vec(),
            udp6(host6, plat.embed(Ipv4Addr::new(198, 51, 100, 7)), b"pin"),
        ),
        (
            "clat_out",
            [1u8, 1, 192, 0, 0, 1, 32].to_vec(),
            tcp4(Ipv4Addr::new(192, 0, 0, 1), R4, 0x02, b""),
        ),
        (
            "ptb_from_router",
            [0u8].iter().chain(&eam24).copied().collect(),
            ptb6(C6, host6, &udp6(host6, plat.embed(R4), b"quoted")[..48]),
        ),
    ];
    for (name, head, p) in &siit {
        put("siit", name, &[&head[..], &[0x0c][..], p].concat());
    }
}
