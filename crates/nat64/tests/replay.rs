//! `nat64 replay`: a capture built here with etherparse (Ethernet link type)
//! goes through the real translator; the output capture is read back by a
//! hand-written pcap parser and etherparse, independent of the code under
//! test: addresses, ports, checksums, timestamps.

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_nat64");
/// Capture start (seconds since the epoch) of the input.
const T0: u32 = 1_700_000_000;

const CLIENT: &str = "2001:db8:1::2";
/// The IPv4 server, and the same inside the prefix 2001:db8:64::/96.
const SERVER4: [u8; 4] = [198, 51, 100, 10];
const SERVER6: &str = "2001:db8:64::c633:640a";
/// The single pool address and the gateway (ICMP source).
const POOL: [u8; 4] = [203, 0, 113, 5];
const GATEWAY: [u8; 4] = [198, 51, 100, 1];
const PEER4: [u8; 4] = [198, 51, 100, 20];

const CONFIG: &str = r#"
prefix = "2001:db8:64::/96"
pool = ["203.0.113.5/32"]
gateway-v4 = "198.51.100.1"
metrics = ""
control = ""
"#;

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("nat64-replay-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn v6(s: &str) -> [u8; 16] {
    s.parse::<Ipv6Addr>().unwrap().octets()
}

/// Wraps an IP packet in an Ethernet II header.
fn ether(ip: &[u8]) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
    let t: u16 = if ip[0] >> 4 == 6 { 0x86dd } else { 0x0800 };
    f.extend_from_slice(&t.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// A little-endian microsecond pcap with link type `link`.
fn write_pcap(path: &Path, link: u32, packets: &[(u32, u32, Vec<u8>)]) {
    let mut b = Vec::new();
    b.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&4u16.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    b.extend_from_slice(&65535u32.to_le_bytes());
    b.extend_from_slice(&link.to_le_bytes());
    for (s, us, d) in packets {
        b.extend_from_slice(&s.to_le_bytes());
        b.extend_from_slice(&us.to_le_bytes());
        b.extend_from_slice(&(d.len() as u32).to_le_bytes());
        b.extend_from_slice(&(d.len() as u32).to_le_bytes());
        b.extend_from_slice(d);
    }
    std::fs::write(path, b).unwrap();
}

/// (seconds, microseconds, packet) of a little- or big-endian microsecond
/// pcap, asserting LINKTYPE_RAW.
fn read_pcap(path: &Path) -> Vec<(u32, u32, Vec<u8>)> {
    let b = std::fs::read(path).unwrap();
    let le = match &b[..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] => false,
        m => panic!("not a microsecond pcap: magic {m:02x?}"),
    };
    let u32_at = |o: usize| {
        let a = [b[o], b[o + 1], b[o + 2], b[o + 3]];
        if le {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    };
    assert_eq!(u32_at(20), 101, "output link type must be LINKTYPE_RAW");
    let mut o = 24;
    let mut v = Vec::new();
    while o < b.len() {
        let (s, us, incl) = (u32_at(o), u32_at(o + 4), u32_at(o + 8) as usize);
        v.push((s, us, b[o + 16..o + 16 + incl].to_vec()));
        o += 16 + incl;
    }
    v
}

fn inet_checksum(d: &[u8]) -> u16 {
    let mut s: u32 = 0;
    for c in d.chunks(2) {
        s += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// The input capture: UDP out and back, an ICMPv6 echo that runs out of
/// hop limit, an IPv4 SYN to a pool port nobody bound.
fn build_input(dir: &Path) -> PathBuf {
    let mut pk = Vec::new();
    // 1. t=0: v6 UDP client:40000 -> server:53
    let mut p = Vec::new();
    PacketBuilder::ipv6(v6(CLIENT), v6(SERVER6), 64)
        .udp(40000, 53)
        .write(&mut p, b"query")
        .unwrap();
    pk.push((T0, 0, ether(&p)));
    // 2. t=0.5: the v4 reply to the pool address, same port (preserved)
    let mut p = Vec::new();
    PacketBuilder::ipv4(SERVER4, POOL, 60)
        .udp(53, 40000)
        .write(&mut p, b"answer")
        .unwrap();
    pk.push((T0, 500_000, ether(&p)));
    // 3. t=1: ICMPv6 echo with hop limit 1 -> Time Exceeded
    let mut p = Vec::new();
    PacketBuilder::ipv6(v6(CLIENT), v6(SERVER6), 1)
        .icmpv6_echo_request(0x77, 1)
        .write(&mut p, b"ping")
        .unwrap();
    pk.push((T0 + 1, 0, ether(&p)));
    // 4. t=2: v4 SYN to pool:8080, no binding -> held 6 s
    let mut p = Vec::new();
    PacketBuilder::ipv4(PEER4, POOL, 60)
        .tcp(5555, 8080, 1000, 64240)
        .syn()
        .write(&mut p, &[])
        .unwrap();
    pk.push((T0 + 2, 0, ether(&p)));
    let path = dir.join("in.pcap");
    write_pcap(&path, 1, &pk);
    path
}

fn replay(dir: &Path, input: &Path, until: Option<&str>) -> (Vec<(u32, u32, Vec<u8>)>, String) {
    let cfg = dir.join("nat64.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let out = dir.join("out.pcap");
    let mut args = vec![
        "replay".to_string(),
        "--config".into(),
        cfg.display().to_string(),
        input.display().to_string(),
        out.display().to_string(),
        "-v".into(),
    ];
    if let Some(u) = until {
        args.push("--until".into());
        args.push(u.into());
    }
    let o = Command::new(BIN).args(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "replay failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    (read_pcap(&out), stdout)
}

#[test]
fn replay_translates_both_ways_and_fires_timers() {
    let dir = scratch("full");
    let input = build_input(&dir);
    let (out, stdout) = replay(&dir, &input, Some("10"));
    assert_eq!(out.len(), 4, "{stdout}");

    // 1. v6 -> v4 UDP: pool address, preserved port, TTL 63, checksums.
    let (s, us, p) = &out[0];
    assert_eq!((*s, *us), (T0, 0));
    let sp = SlicedPacket::from_ip(p).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &sp.net else {
        panic!("{sp:?}")
    };
    let h = ip.header().to_header();
    assert_eq!(h.source, POOL);
    assert_eq!(h.destination, SERVER4);
    assert_eq!(h.time_to_live, 63);
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let Some(TransportSlice::Udp(udp)) = &sp.transport else {
        panic!()
    };
    assert_eq!((udp.source_port(), udp.destination_port()), (40000, 53));
    let want = udp
        .to_header()
        .calc_checksum_ipv4(&h, udp.payload())
        .unwrap();
    assert_eq!(udp.checksum(), want);
    assert_eq!(udp.payload(), b"query");

    // 2. v4 -> v6 UDP reply back to the client.
    let (s, us, p) = &out[1];
    assert_eq!((*s, *us), (T0, 500_000));
    let sp = SlicedPacket::from_ip(p).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &sp.net else {
        panic!()
    };
    let h = ip.header().to_header();
    assert_eq!(h.source, v6(SERVER6));
    assert_eq!(h.destination, v6(CLIENT));
    assert_eq!(h.hop_limit, 59);
    let Some(TransportSlice::Udp(udp)) = &sp.transport else {
        panic!()
    };
    assert_eq!((udp.source_port(), udp.destination_port()), (53, 40000));
    let want = udp
        .to_header()
        .calc_checksum_ipv6(&h, udp.payload())
        .unwrap();
    assert_eq!(udp.checksum(), want);

    // 3. ICMPv6 Time Exceeded from prefix || gateway-v4 to the client.
    let (s, us, p) = &out[2];
    assert_eq!((*s, *us), (T0 + 1, 0));
    let sp = SlicedPacket::from_ip(p).unwrap();
    let Some(NetSlice::Ipv6(ip)) = &sp.net else {
        panic!()
    };
    let h = ip.header().to_header();
    let gw6 = "2001:db8:64::c633:6401".parse::<Ipv6Addr>().unwrap();
    assert_eq!(h.source, gw6.octets());
    assert_eq!(h.destination, v6(CLIENT));
    let Some(TransportSlice::Icmpv6(icmp)) = &sp.transport else {
        panic!()
    };
    assert_eq!((icmp.type_u8(), icmp.code_u8()), (3, 0));
    assert!(icmp.is_checksum_valid(h.source, h.destination));

    // 4. The held SYN answered with ICMPv4 Port Unreachable from gateway-v4,
    //    stamped with the sweep's time: 6 s after the SYN (t=2), at most 10.
    let (s, us, p) = &out[3];
    assert_eq!(*us, 0);
    assert!(
        (T0 + 8..=T0 + 10).contains(s),
        "held SYN answered at +{}s",
        s - T0
    );
    let sp = SlicedPacket::from_ip(p).unwrap();
    let Some(NetSlice::Ipv4(ip)) = &sp.net else {
        panic!()
    };
    let h = ip.header().to_header();
    assert_eq!(h.source, GATEWAY);
    assert_eq!(h.destination, PEER4);
    assert_eq!(h.header_checksum, h.calc_header_checksum());
    let icmp = &p[usize::from(h.ihl()) * 4..];
    assert_eq!((icmp[0], icmp[1]), (3, 3));
    assert_eq!(inet_checksum(icmp), 0, "ICMPv4 checksum");
    // It quotes the SYN: ports 5555 -> 8080 after the inner IPv4 header.
    let inner = &icmp[8..];
    assert_eq!(
        Ipv4Addr::new(inner[12], inner[13], inner[14], inner[15]),
        Ipv4Addr::from(PEER4)
    );
    let ihl = usize::from(inner[0] & 0xf) * 4;
    assert_eq!(u16::from_be_bytes([inner[ihl], inner[ihl + 1]]), 5555);

    // The summary counts each outcome; -v prints a line per packet.
    assert!(stdout.contains("forward 6to4"), "{stdout}");
    assert!(stdout.contains("forward 4to6"), "{stdout}");
    assert!(stdout.contains("icmp hop_limit_exceeded"), "{stdout}");
    assert!(stdout.contains("held SYN answered"), "{stdout}");
    assert!(stdout.contains("#4 t=2.000"), "{stdout}");
    assert!(stdout.contains("4 packet(s) in, 4 out"), "{stdout}");
}

#[test]
fn replay_without_until_stops_at_the_last_packet() {
    let dir = scratch("short");
    let input = build_input(&dir);
    let (out, stdout) = replay(&dir, &input, None);
    assert_eq!(out.len(), 3, "{stdout}");
    let (out, _) = replay(&dir, &input, Some("5"));
    assert_eq!(out.len(), 3, "the SYN is held 6 s: nothing by t=5");
}

#[test]
fn replay_raw_linktype_and_refusals() {
    let dir = scratch("raw");
    // LINKTYPE_RAW input: same UDP packet without the Ethernet header.
    let mut p = Vec::new();
    PacketBuilder::ipv6(v6(CLIENT), v6(SERVER6), 64)
        .udp(40000, 53)
        .write(&mut p, b"query")
        .unwrap();
    let input = dir.join("raw.pcap");
    write_pcap(&input, 101, &[(T0, 0, p)]);
    let (out, _) = replay(&dir, &input, None);
    assert_eq!(out.len(), 1);

    // An unsupported link type is refused with the fix.
    let bad = dir.join("bad.pcap");
    write_pcap(&bad, 147, &[(T0, 0, vec![0; 40])]);
    let cfg = dir.join("nat64.toml");
    let o = Command::new(BIN)
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg(&bad)
        .arg(dir.join("o.pcap"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("not supported") && err.contains("editcap"),
        "{err}"
    );

    // A file that is no capture at all.
    let junk = dir.join("junk.pcap");
    std::fs::write(&junk, b"this is not a capture").unwrap();
    let o = Command::new(BIN)
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg(&junk)
        .arg(dir.join("o.pcap"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not a pcap"), "{err}");
}

/// A pcapng file (default microsecond resolution), written by hand.
fn write_pcapng(path: &Path, link: u16, packets: &[(u64, Vec<u8>)]) {
    let mut b = Vec::new();
    let block = |b: &mut Vec<u8>, ty: u32, body: &[u8]| {
        let len = (12 + body.len()) as u32;
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(body);
        b.extend_from_slice(&len.to_le_bytes());
    };
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut b, 0x0a0d0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend_from_slice(&link.to_le_bytes());
    idb.extend_from_slice(&0u16.to_le_bytes());
    idb.extend_from_slice(&65535u32.to_le_bytes());
    block(&mut b, 1, &idb);
    for (us, d) in packets {
        let mut epb = Vec::new();
        epb.extend_from_slice(&0u32.to_le_bytes());
        epb.extend_from_slice(&((us >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(*us as u32).to_le_bytes());
        epb.extend_from_slice(&(d.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(d.len() as u32).to_le_bytes());
        epb.extend_from_slice(d);
        while epb.len() % 4 != 0 {
            epb.push(0);
        }
        block(&mut b, 6, &epb);
    }
    std::fs::write(path, b).unwrap();
}

#[test]
fn replay_reads_pcapng_with_its_timestamps() {
    let dir = scratch("pcapng");
    let mut p = Vec::new();
    PacketBuilder::ipv6(v6(CLIENT), v6(SERVER6), 64)
        .udp(40000, 53)
        .write(&mut p, b"query")
        .unwrap();
    let t = u64::from(T0) * 1_000_000 + 250_000;
    let input = dir.join("in.pcapng");
    write_pcapng(&input, 1, &[(t, ether(&p))]);
    let (out, stdout) = replay(&dir, &input, None);
    assert_eq!(out.len(), 1, "{stdout}");
    assert_eq!((out[0].0, out[0].1), (T0, 250_000));
}
