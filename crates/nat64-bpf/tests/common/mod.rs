//! Shared by the test binaries: skipping, the flow of the conformance
//! tests, packet and frame builders, the user-space reference translation.
#![allow(dead_code)]

use etherparse::{PacketBuilder, TcpOptionElement};
use nat64_bpf::{FastPath, Flow4, Flow6, L4Proto};
use nat64_core::verdict::{DropReason, Verdict};
use nat64_core::xlat::{self, FlowMeta, Mapper, Offload, Tuple4, Tuple6, HEADROOM};
use std::net::{Ipv4Addr, Ipv6Addr};

/// The fast path for a test, or None (after a loud SKIP line) when this
/// cannot run here: not root, or built without clang. Under CI a build
/// without clang is a failure, not a skip.
pub fn fast_path(test: &str) -> Option<FastPath> {
    fast_path_sized(test, 1024)
}

/// [`fast_path`] with tables of `max_flows` entries.
pub fn fast_path_sized(test: &str, max_flows: u32) -> Option<FastPath> {
    if !nat64_bpf::built_with_program() {
        if std::env::var_os("CI").is_some() {
            panic!("{test}: nat64-bpf was built without clang/libbpf headers, and CI is set");
        }
        skip(&format!(
            "{test}: nat64-bpf built without clang (run contrib/setup.sh)"
        ));
        return None;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skip(&format!("{test}: needs root (CAP_BPF, CAP_NET_ADMIN)"));
        return None;
    }
    Some(FastPath::load(max_flows).unwrap_or_else(|e| panic!("{test}: load: {e}")))
}

/// Says so on the real stderr (the test harness captures `eprintln!` of
/// passing tests; a skip must be seen).
fn skip(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "*** SKIP {why} ***");
}

pub const TC_ACT_OK: u32 = 0;
pub const TC_ACT_SHOT: u32 = 2;
pub const TC_ACT_REDIRECT: u32 = 7;

pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);
/// 2001:db8:64::198.51.100.2
pub const SERVER6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0x64, 0, 0, 0, 0xc633, 0x6402);
pub const SERVER4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const POOL4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 5);
pub const CLIENT_PORT: u16 = 40000;
pub const POOL_PORT: u16 = 2000;
pub const SERVER_PORT: u16 = 80;
pub const ECHO_ID: u16 = 0x4321;

/// The daemon-NAPT flow of the tests: [CLIENT6]:40000 → [SERVER6]:80 is
/// sent as POOL4:2000 → SERVER4:80; the replies the other way.
#[derive(Debug, Clone, Copy)]
pub struct TestFlow {
    pub in6: Flow6,
    pub out4: Flow4,
    pub in4: Flow4,
    pub out6: Flow6,
}

/// For ICMP echo the client's identifier is ECHO_ID and the pool's
/// POOL_PORT, each in both "port" fields (RFC 6146 §3.4).
pub fn flow(proto: L4Proto) -> TestFlow {
    let icmp = proto == L4Proto::Icmp;
    let in6 = Tuple6 {
        proto,
        src: CLIENT6,
        src_port: if icmp { ECHO_ID } else { CLIENT_PORT },
        dst: SERVER6,
        dst_port: if icmp { ECHO_ID } else { SERVER_PORT },
    };
    let out4 = Tuple4 {
        proto,
        src: POOL4,
        src_port: POOL_PORT,
        dst: SERVER4,
        dst_port: if icmp { POOL_PORT } else { SERVER_PORT },
    };
    TestFlow {
        in6,
        out4,
        in4: out4.reversed(),
        out6: in6.reversed(),
    }
}

pub fn install(fp: &mut FastPath, f: &TestFlow) {
    fp.insert_6to4(&f.in6, &f.out4, 0).unwrap();
    fp.insert_4to6(&f.in4, &f.out6, 0).unwrap();
}

/// A `Mapper` answering what the flow entries say (what the daemon's
/// engine answered when it installed them).
pub struct TestMapper(pub TestFlow);

impl Mapper for TestMapper {
    fn map_6to4(&mut self, t: &Tuple6, _: &FlowMeta) -> Result<Tuple4, DropReason> {
        assert_eq!(*t, self.0.in6, "the mapper is asked for the installed flow");
        Ok(self.0.out4)
    }
    fn map_4to6(&mut self, t: &Tuple4, _: &FlowMeta) -> Result<Tuple6, DropReason> {
        assert_eq!(*t, self.0.in4, "the mapper is asked for the installed flow");
        Ok(self.0.out6)
    }
    fn icmp_error_source_4to6(&mut self, _: Ipv4Addr) -> Result<Ipv6Addr, DropReason> {
        Err(DropReason::NotForTranslation)
    }
}

/// What `nat64_core::xlat::translate` makes of `pkt` (an IP packet) for
/// flow `f`: the translated packet, or the verdict when it is not
/// forwarded as one packet.
pub fn userspace(pkt: &[u8], f: &TestFlow, gso_size: u16) -> Result<Vec<u8>, Verdict> {
    let mut buf = vec![0u8; HEADROOM + pkt.len() + 256];
    buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
    let off = Offload {
        gso_size,
        csum_partial: false,
    };
    let v = xlat::translate_offload(
        &mut buf,
        HEADROOM,
        pkt.len(),
        &xlat::Config::default(),
        &mut TestMapper(*f),
        off,
    );
    match v {
        Verdict::Forward {
            start,
            len,
            fragment_mtu: None,
        } => Ok(buf[start..start + len].to_vec()),
        v => Err(v),
    }
}

pub const ETH_P_IP: u16 = 0x0800;
pub const ETH_P_IPV6: u16 = 0x86dd;
/// The loopback device's address: test runs happen "on" lo, and the
/// program takes only frames addressed to the receiving device.
pub const LO_MAC: [u8; 6] = [0; 6];
pub const PEER_MAC: [u8; 6] = [0x02, 0, 0x5e, 0, 0x53, 0x01];

pub fn frame_to(dst_mac: [u8; 6], ethertype: u16, ip: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + ip.len());
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&PEER_MAC);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(ip);
    f
}

/// An Ethernet frame carrying `ip`, addressed to lo.
pub fn frame(ip: &[u8]) -> Vec<u8> {
    let et = if ip[0] >> 4 == 6 {
        ETH_P_IPV6
    } else {
        ETH_P_IP
    };
    frame_to(LO_MAC, et, ip)
}

/// Options of the TCP segments the tests build.
#[derive(Debug, Clone, Copy)]
pub struct Tcp {
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    pub psh: bool,
    pub timestamps: bool,
}

impl Default for Tcp {
    fn default() -> Self {
        Tcp {
            seq: 0x1234_5678,
            ack: 0x9abc_def0,
            window: 502,
            syn: false,
            fin: false,
            rst: false,
            psh: true,
            timestamps: true,
        }
    }
}

/// An IPv6 TCP segment of flow direction 6→4 (or any addresses).
pub fn tcp6(
    src: Ipv6Addr,
    sport: u16,
    dst: Ipv6Addr,
    dport: u16,
    hop: u8,
    t: &Tcp,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ipv6(src.octets(), dst.octets(), hop).tcp(sport, dport, t.seq, t.window);
    let mut out = Vec::new();
    with_tcp(b, t).write(&mut out, payload).unwrap();
    out
}

pub fn tcp4(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    ttl: u8,
    t: &Tcp,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ipv4(src.octets(), dst.octets(), ttl).tcp(sport, dport, t.seq, t.window);
    let mut out = Vec::new();
    with_tcp(b, t).write(&mut out, payload).unwrap();
    out
}

/// The flags and options of `t` on a TCP header being built.
fn with_tcp(
    b: etherparse::PacketBuilderStep<etherparse::TcpHeader>,
    t: &Tcp,
) -> etherparse::PacketBuilderStep<etherparse::TcpHeader> {
    let mut b = b.ack(t.ack);
    if t.syn {
        b = b.syn();
    }
    if t.fin {
        b = b.fin();
    }
    if t.rst {
        b = b.rst();
    }
    if t.psh {
        b = b.psh();
    }
    if t.timestamps {
        b = b
            .options(&[
                TcpOptionElement::Noop,
                TcpOptionElement::Noop,
                TcpOptionElement::Timestamp(0x0102_0304, 0x0506_0708),
            ])
            .unwrap();
    }
    b
}

pub fn udp6(
    src: Ipv6Addr,
    sport: u16,
    dst: Ipv6Addr,
    dport: u16,
    hop: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv6(src.octets(), dst.octets(), hop)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}

pub fn udp4(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    ttl: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src.octets(), dst.octets(), ttl)
        .udp(sport, dport)
        .write(&mut out, payload)
        .unwrap();
    out
}

/// The client's segment of the test flow, 6→4.
pub fn client_tcp(t: &Tcp, payload: &[u8]) -> Vec<u8> {
    tcp6(CLIENT6, CLIENT_PORT, SERVER6, SERVER_PORT, 64, t, payload)
}

/// The server's segment of the test flow, 4→6.
pub fn server_tcp(t: &Tcp, payload: &[u8]) -> Vec<u8> {
    tcp4(SERVER4, SERVER_PORT, POOL4, POOL_PORT, 64, t, payload)
}

pub fn client_udp(payload: &[u8]) -> Vec<u8> {
    udp6(CLIENT6, CLIENT_PORT, SERVER6, SERVER_PORT, 64, payload)
}

pub fn server_udp(payload: &[u8]) -> Vec<u8> {
    udp4(SERVER4, SERVER_PORT, POOL4, POOL_PORT, 64, payload)
}

/// The client's echo request (`reply`: reply), 6→4.
pub fn client_echo(reply: bool, seq: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv6(CLIENT6.octets(), SERVER6.octets(), 64);
    let b = if reply {
        b.icmpv6_echo_reply(ECHO_ID, seq)
    } else {
        b.icmpv6_echo_request(ECHO_ID, seq)
    };
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

/// The server's echo reply (`reply` false: request), 4→6.
pub fn server_echo(reply: bool, seq: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ipv4(SERVER4.octets(), POOL4.octets(), 64);
    let b = if reply {
        b.icmpv4_echo_reply(POOL_PORT, seq)
    } else {
        b.icmpv4_echo_request(POOL_PORT, seq)
    };
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

/// Recomputes an IPv4 header's checksum after a test edited it.
pub fn fix_ipv4_checksum(pkt: &mut [u8]) {
    let hl = usize::from(pkt[0] & 0xf) * 4;
    pkt[10] = 0;
    pkt[11] = 0;
    let mut s: u32 = 0;
    for w in pkt[..hl].chunks(2) {
        s += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    let c = !(s as u16);
    pkt[10..12].copy_from_slice(&c.to_be_bytes());
}

/// Sets the IPv6 traffic class and flow label of a packet.
pub fn set_tc_flow(pkt: &mut [u8], tc: u8, flow: u32) {
    let w = (6u32 << 28) | (u32::from(tc) << 20) | (flow & 0xf_ffff);
    pkt[..4].copy_from_slice(&w.to_be_bytes());
}

/// Deterministic pseudo-random bytes (xorshift), for payloads.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
