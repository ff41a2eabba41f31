//! TUN offload semantics (ADR 0004): GSO super-packets are
//! translated whole, judged by their segment size, and partial checksums
//! (virtio-net `NEEDS_CSUM`) are adjusted for the pseudo-header only.
//! Fixtures and the expected checksums come from etherparse.

use etherparse::{Ipv4Header, Ipv6Header, PacketBuilder, TcpHeader, UdpHeader};
use nat64_core::wire::checksum;
use nat64_core::xlat::{self, Config, Offload, StatelessMapper, HEADROOM};
use nat64_core::{DropReason, IcmpError, Verdict};
use std::net::{Ipv4Addr, Ipv6Addr};

fn mapper() -> StatelessMapper {
    StatelessMapper {
        prefix: "2001:db8:64::/96".parse().unwrap(),
        wkp_strict: false,
    }
}
const V4A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);
const V4B: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);

fn place(pkt: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; HEADROOM + pkt.len() + 64];
    buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
    buf
}

/// What the kernel hands over with NEEDS_CSUM: the checksum field holds the
/// folded pseudo-header sum (RFC 1071 sum, not complemented).
fn make_partial(l4: &mut [u8], at: usize, pseudo: u32) {
    l4[at..at + 2].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
}

/// What the device does later: sum from csum_start, complement, store.
fn complete(l4: &mut [u8], at: usize) -> u16 {
    let c = checksum::checksum(l4);
    l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
    c
}

fn tcp6(payload_len: usize, src: Ipv6Addr, dst: Ipv6Addr) -> Vec<u8> {
    let payload: Vec<u8> = (0..payload_len).map(|i| (i * 7) as u8).collect();
    let mut out = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), 64)
        .tcp(40000, 5201, 1000, 64000)
        .ack(5)
        .write(&mut out, &payload)
        .unwrap();
    out
}

#[test]
fn gso_tcp_super_packet_6to4_partial_checksum_completes_to_the_right_value() {
    let m = mapper();
    let (src6, dst6) = (m.prefix.embed(V4A), m.prefix.embed(V4B));
    let mut pkt = tcp6(20_000, src6, dst6);
    let l4len = pkt.len() - 40;
    let pseudo = checksum::pseudo_header_v6(src6, dst6, 6, l4len as u32);
    make_partial(&mut pkt[40..], 16, pseudo);
    let mut buf = place(&pkt);
    let off = Offload {
        gso_size: 1440,
        csum_partial: true,
    };
    let v = xlat::translate_offload(
        &mut buf,
        HEADROOM,
        pkt.len(),
        &Config::default(),
        &mut m.clone(),
        off,
    );
    let Verdict::Forward {
        start,
        len,
        fragment_mtu,
    } = v
    else {
        panic!("a GSO super-packet of 1440-byte segments fits a 1500 MTU: {v:?}")
    };
    assert_eq!(fragment_mtu, None);
    let mut out = buf[start..start + len].to_vec();
    let (ip, rest) = Ipv4Header::from_slice(&out).unwrap();
    assert!(ip.dont_fragment, "segments of 1480 bytes are > 1260: DF");
    assert_eq!(ip.total_len as usize, 20 + l4len);
    assert_eq!(ip.source, V4A.octets());
    let (tcp, payload) = TcpHeader::from_slice(rest).unwrap();
    let want = tcp.calc_checksum_ipv4(&ip, payload).unwrap();
    let got = complete(&mut out[20..], 16);
    assert_eq!(got, want, "completed checksum matches etherparse's");
}

#[test]
fn gso_tcp_super_packet_4to6_partial_checksum_completes_to_the_right_value() {
    let payload: Vec<u8> = (0..30_000).map(|i| (i * 3) as u8).collect();
    let mut pkt = Vec::new();
    PacketBuilder::ipv4(V4B.octets(), V4A.octets(), 64)
        .tcp(5201, 40000, 1, 64000)
        .ack(1)
        .write(&mut pkt, &payload)
        .unwrap();
    // etherparse sets DF on IPv4 by default; TSO traffic has DF.
    assert_eq!(pkt[6] & 0x40, 0x40);
    let l4len = pkt.len() - 20;
    let pseudo = checksum::pseudo_header_v4(V4B, V4A, 6, l4len as u16);
    make_partial(&mut pkt[20..], 16, pseudo);
    let mut buf = place(&pkt);
    let off = Offload {
        gso_size: 1440,
        csum_partial: true,
    };
    let v = xlat::translate_offload(
        &mut buf,
        HEADROOM,
        pkt.len(),
        &Config::default(),
        &mut mapper(),
        off,
    );
    let Verdict::Forward { start, len, .. } = v else {
        panic!("{v:?}")
    };
    let mut out = buf[start..start + len].to_vec();
    let (ip, rest) = Ipv6Header::from_slice(&out).unwrap();
    assert_eq!(
        ip.next_header,
        etherparse::IpNumber::TCP,
        "no Fragment header"
    );
    let (tcp, payload) = TcpHeader::from_slice(rest).unwrap();
    let want = tcp.calc_checksum_ipv6(&ip, payload).unwrap();
    assert_eq!(complete(&mut out[40..], 16), want);
}

#[test]
fn without_gso_the_same_super_packet_is_too_big() {
    let m = mapper();
    let pkt = tcp6(20_000, m.prefix.embed(V4A), m.prefix.embed(V4B));
    let mut buf = place(&pkt);
    let v = xlat::translate(
        &mut buf,
        HEADROOM,
        pkt.len(),
        &Config::default(),
        &mut mapper(),
    );
    assert!(
        matches!(
            v,
            Verdict::Icmp {
                error: IcmpError::PacketTooBig { mtu: 1520 },
                ..
            }
        ),
        "{v:?}"
    );
}

#[test]
fn gso_segments_larger_than_the_mtu_get_packet_too_big() {
    let m = mapper();
    let pkt = tcp6(20_000, m.prefix.embed(V4A), m.prefix.embed(V4B));
    let mut buf = place(&pkt);
    let off = Offload {
        gso_size: 1480, // 1480 + 20 + 20 = 1520 > 1500
        csum_partial: false,
    };
    let v = xlat::translate_offload(
        &mut buf,
        HEADROOM,
        pkt.len(),
        &Config::default(),
        &mut mapper(),
        off,
    );
    assert!(
        matches!(
            v,
            Verdict::Icmp {
                error: IcmpError::PacketTooBig { .. },
                ..
            }
        ),
        "{v:?}"
    );
}

#[test]
fn gso_without_df_that_would_need_fragments_is_dropped_by_name() {
    let payload = vec![0u8; 8000];
    let mut pkt = Vec::new();
    let mut ip =
        Ipv4Header::new(0, 64, etherparse::IpNumber::UDP, V4B.octets(), V4A.octets()).unwrap();
    ip.dont_fragment = false;
    PacketBuilder::ip(etherparse::IpHeaders::Ipv4(ip, Default::default()))
        .udp(53, 4000)
        .write(&mut pkt, &payload)
        .unwrap();
    let mut buf = place(&pkt);
    let off = Offload {
        gso_size: 1400,
        csum_partial: false,
    };
    let v = xlat::translate_offload(
        &mut buf,
        HEADROOM,
        pkt.len(),
        &Config::default(),
        &mut mapper(),
        off,
    );
    assert_eq!(v, Verdict::Drop(DropReason::GsoNeedsFragmentation));
}

#[test]
fn udp_partial_checksum_6to4() {
    let m = mapper();
    let (src6, dst6) = (m.prefix.embed(V4A), m.prefix.embed(V4B));
    let payload = vec![0x5au8; 300];
    let mut pkt = Vec::new();
    PacketBuilder::ipv6(src6.octets(), dst6.octets(), 64)
        .udp(5000, 53)
        .write(&mut pkt, &payload)
        .unwrap();
    let pseudo = checksum::pseudo_header_v6(src6, dst6, 17, (pkt.len() - 40) as u32);
    make_partial(&mut pkt[40..], 6, pseudo);
    let mut buf = place(&pkt);
    let off = Offload {
        gso_size: 0,
        csum_partial: true,
    };
    let v = xlat::translate_offload(
        &mut buf,
        HEADROOM,
        pkt.len(),
        &Config::default(),
        &mut mapper(),
        off,
    );
    let Verdict::Forward { start, len, .. } = v else {
        panic!("{v:?}")
    };
    let mut out = buf[start..start + len].to_vec();
    let (ip, rest) = Ipv4Header::from_slice(&out).unwrap();
    let (udp, p) = UdpHeader::from_slice(rest).unwrap();
    let want = udp.calc_checksum_ipv4(&ip, p).unwrap();
    assert_eq!(complete(&mut out[20..], 6), want);
}
