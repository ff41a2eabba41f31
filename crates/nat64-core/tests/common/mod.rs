//! Shared fixtures for the RFC 7915 conformance tests.
//!
//! Every packet here is built with `etherparse` (or written out byte by byte
//! from the RFC layouts), never with `nat64_core`'s own wire code, and every
//! translated packet is checked with `etherparse` too: headers are parsed by
//! it and checksums are recomputed by it.
#![allow(dead_code)]

use etherparse::{
    Icmpv4Type, Icmpv6Type, IpDscp, IpEcn, IpFragOffset, IpNumber, Ipv4Header, Ipv4Options,
    Ipv6FlowLabel, Ipv6FragmentHeader, Ipv6Header, TcpHeader, UdpHeader,
};
use nat64_core::xlat::{self, Config, FlowMeta, Mapper, Role, StatelessMapper, Tuple4, Tuple6};
use nat64_core::{DropReason, IcmpError, Verdict};
use std::net::{Ipv4Addr, Ipv6Addr};

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

/// 2001:db8:64::/96, written out by hand (RFC 6052 §2.2, /96: the IPv4
/// address is the last 32 bits).
pub const PREFIX96: [u8; 12] = [0x20, 0x01, 0x0d, 0xb8, 0x00, 0x64, 0, 0, 0, 0, 0, 0];

/// IPv4 address of the host on the IPv4 side.
pub const V4_SERVER: [u8; 4] = [198, 51, 100, 10];
/// IPv4 address representing the IPv6 host (stateless mapping).
pub const V4_CLIENT: [u8; 4] = [192, 0, 2, 33];
/// An IPv4 router on the path (source of ICMPv4 errors).
pub const V4_ROUTER: [u8; 4] = [198, 51, 100, 254];

pub fn embed(v4: [u8; 4]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..12].copy_from_slice(&PREFIX96);
    a[12..].copy_from_slice(&v4);
    a
}

pub fn v6_server() -> [u8; 16] {
    embed(V4_SERVER)
}
pub fn v6_client() -> [u8; 16] {
    embed(V4_CLIENT)
}

pub fn stateless() -> StatelessMapper {
    StatelessMapper {
        prefix: "2001:db8:64::/96".parse().expect("valid prefix"),
        wkp_strict: false,
    }
}

// ---------------------------------------------------------------------------
// A stateful-looking mapper that rewrites addresses *and* ports
// ---------------------------------------------------------------------------

/// The IPv6 client of [`NatMapper`]: a native IPv6 address, not in the prefix.
pub const NAT_CLIENT6: [u8; 16] = [
    0x20, 0x01, 0x0d, 0xb8, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x05,
];
/// The IPv4 pool address [`NAT_CLIENT6`] is mapped to.
pub const NAT_POOL4: [u8; 4] = [203, 0, 113, 1];
/// Port (and ICMP identifier) shift between the client's port and the pool's.
pub const PORT_SHIFT: u16 = 1000;

/// NAPT-style mapper: `NAT_CLIENT6:p` ↔ `NAT_POOL4:p+1000`; every other
/// address is prefix-embedded/extracted with ports kept. Role-agnostic: it
/// maps whichever side of the tuple holds the client/pool address, so it
/// works for outer packets and for (swapped) ICMP error inner tuples alike.
/// Records every call for assertions.
#[derive(Default)]
pub struct NatMapper {
    pub calls6: Vec<(Tuple6, FlowMeta)>,
    pub calls4: Vec<(Tuple4, FlowMeta)>,
}

fn extract(a: &Ipv6Addr) -> Result<Ipv4Addr, DropReason> {
    let o = a.octets();
    if o[..12] != PREFIX96 {
        return Err(DropReason::NotInPrefix);
    }
    Ok(Ipv4Addr::new(o[12], o[13], o[14], o[15]))
}

impl NatMapper {
    fn side6(&self, a: Ipv6Addr, p: u16) -> Result<(Ipv4Addr, u16), DropReason> {
        if a == Ipv6Addr::from(NAT_CLIENT6) {
            Ok((Ipv4Addr::from(NAT_POOL4), p.wrapping_add(PORT_SHIFT)))
        } else {
            Ok((extract(&a)?, p))
        }
    }
    fn side4(&self, a: Ipv4Addr, p: u16) -> (Ipv6Addr, u16) {
        if a == Ipv4Addr::from(NAT_POOL4) {
            (Ipv6Addr::from(NAT_CLIENT6), p.wrapping_sub(PORT_SHIFT))
        } else {
            (Ipv6Addr::from(embed(a.octets())), p)
        }
    }
}

impl Mapper for NatMapper {
    fn map_6to4(&mut self, t: &Tuple6, meta: &FlowMeta) -> Result<Tuple4, DropReason> {
        self.calls6.push((*t, *meta));
        let (src, src_port) = self.side6(t.src, t.src_port)?;
        let (dst, dst_port) = self.side6(t.dst, t.dst_port)?;
        Ok(Tuple4 {
            proto: t.proto,
            src,
            src_port,
            dst,
            dst_port,
        })
    }
    fn map_4to6(&mut self, t: &Tuple4, meta: &FlowMeta) -> Result<Tuple6, DropReason> {
        self.calls4.push((*t, *meta));
        let (src, src_port) = self.side4(t.src, t.src_port);
        let (dst, dst_port) = self.side4(t.dst, t.dst_port);
        Ok(Tuple6 {
            proto: t.proto,
            src,
            src_port,
            dst,
            dst_port,
        })
    }
    fn icmp_error_source_4to6(&mut self, router: Ipv4Addr) -> Result<Ipv6Addr, DropReason> {
        Ok(Ipv6Addr::from(embed(router.octets())))
    }
}

impl NatMapper {
    pub fn inner_calls6(&self) -> Vec<Tuple6> {
        self.calls6
            .iter()
            .filter(|(_, m)| m.role == Role::IcmpErrorInner)
            .map(|(t, _)| *t)
            .collect()
    }
    pub fn inner_calls4(&self) -> Vec<Tuple4> {
        self.calls4
            .iter()
            .filter(|(_, m)| m.role == Role::IcmpErrorInner)
            .map(|(t, _)| *t)
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Running the translator
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    SixToFour,
    FourToSix,
    Auto,
}

/// The outcome of one translation, detached from the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    Fwd {
        pkt: Vec<u8>,
        fragment_mtu: Option<u16>,
    },
    Icmp {
        error: IcmpError,
        reason: DropReason,
    },
    Drop(DropReason),
}

impl Out {
    /// The translated packet; panics (test failure) on anything but Forward.
    #[track_caller]
    pub fn pkt(self) -> Vec<u8> {
        match self {
            Out::Fwd { pkt, .. } => pkt,
            other => panic!("expected Forward, got {other:?}"),
        }
    }
    /// The translated packet of a Forward that needs no fragmentation.
    #[track_caller]
    pub fn whole(self) -> Vec<u8> {
        match self {
            Out::Fwd {
                pkt,
                fragment_mtu: None,
            } => pkt,
            other => panic!("expected Forward with fragment_mtu None, got {other:?}"),
        }
    }
    #[track_caller]
    pub fn icmp(self) -> IcmpError {
        match self {
            Out::Icmp { error, .. } => error,
            other => panic!("expected Verdict::Icmp, got {other:?}"),
        }
    }
    #[track_caller]
    pub fn drop_reason(self) -> DropReason {
        match self {
            Out::Drop(r) => r,
            other => panic!("expected Verdict::Drop, got {other:?}"),
        }
    }
    pub fn reason(&self) -> Option<DropReason> {
        match self {
            Out::Fwd { .. } => None,
            Out::Icmp { reason, .. } => Some(*reason),
            Out::Drop(r) => Some(*r),
        }
    }
    pub fn is_fwd(&self) -> bool {
        matches!(self, Out::Fwd { .. })
    }
}

/// Spare room after the packet.
pub const TAILROOM: usize = 128;

/// Translates `pkt` placed at `xlat::HEADROOM` in a fresh buffer. When the
/// verdict is `Icmp`, asserts that the original packet was left intact
/// (the translator must quote it in the error).
#[track_caller]
pub fn run<M: Mapper>(dir: Dir, pkt: &[u8], cfg: &Config, m: &mut M) -> Out {
    let start = xlat::HEADROOM;
    let mut buf = vec![0u8; start + pkt.len() + TAILROOM];
    buf[start..start + pkt.len()].copy_from_slice(pkt);
    let v = match dir {
        Dir::SixToFour => xlat::six_to_four(&mut buf, start, pkt.len(), cfg, m),
        Dir::FourToSix => xlat::four_to_six(&mut buf, start, pkt.len(), cfg, m),
        Dir::Auto => xlat::translate(&mut buf, start, pkt.len(), cfg, m),
    };
    match v {
        Verdict::Forward {
            start,
            len,
            fragment_mtu,
        } => {
            assert!(
                start + len <= buf.len(),
                "Forward range {start}+{len} outside buffer of {}",
                buf.len()
            );
            Out::Fwd {
                pkt: buf[start..start + len].to_vec(),
                fragment_mtu,
            }
        }
        Verdict::Icmp { error, reason } => {
            assert_eq!(
                &buf[start..start + pkt.len()],
                pkt,
                "Verdict::Icmp must leave the original packet intact"
            );
            Out::Icmp { error, reason }
        }
        Verdict::Drop(r) => Out::Drop(r),
    }
}

#[track_caller]
pub fn six(pkt: &[u8]) -> Out {
    run(Dir::SixToFour, pkt, &Config::default(), &mut stateless())
}
#[track_caller]
pub fn four(pkt: &[u8]) -> Out {
    run(Dir::FourToSix, pkt, &Config::default(), &mut stateless())
}
#[track_caller]
pub fn six_cfg(pkt: &[u8], cfg: &Config) -> Out {
    run(Dir::SixToFour, pkt, cfg, &mut stateless())
}
#[track_caller]
pub fn four_cfg(pkt: &[u8], cfg: &Config) -> Out {
    run(Dir::FourToSix, pkt, cfg, &mut stateless())
}

// ---------------------------------------------------------------------------
// IPv6 builders
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct V6 {
    pub tc: u8,
    pub flow: u32,
    pub hop: u8,
    pub src: [u8; 16],
    pub dst: [u8; 16],
}

impl V6 {
    /// client → server, hop limit 64.
    pub fn out() -> V6 {
        V6 {
            tc: 0,
            flow: 0,
            hop: 64,
            src: v6_client(),
            dst: v6_server(),
        }
    }
    pub fn hop(mut self, h: u8) -> V6 {
        self.hop = h;
        self
    }
    pub fn tc(mut self, tc: u8) -> V6 {
        self.tc = tc;
        self
    }
    pub fn flow(mut self, f: u32) -> V6 {
        self.flow = f;
        self
    }
    pub fn src(mut self, a: [u8; 16]) -> V6 {
        self.src = a;
        self
    }
    pub fn dst(mut self, a: [u8; 16]) -> V6 {
        self.dst = a;
        self
    }
}

/// IPv6 packet: fixed header (etherparse), then `exts` (raw extension header
/// bytes whose next-header fields already chain correctly), then `l4`.
/// `first_nh` is the fixed header's Next Header.
pub fn ipv6(h: &V6, first_nh: u8, exts: &[u8], l4: &[u8]) -> Vec<u8> {
    let hdr = Ipv6Header {
        traffic_class: h.tc,
        flow_label: Ipv6FlowLabel::try_new(h.flow).expect("flow label"),
        payload_length: (exts.len() + l4.len()) as u16,
        next_header: IpNumber(first_nh),
        hop_limit: h.hop,
        source: h.src,
        destination: h.dst,
    };
    let mut v = hdr.to_bytes().to_vec();
    v.extend_from_slice(exts);
    v.extend_from_slice(l4);
    v
}

/// Hop-by-Hop or Destination Options header of 8 bytes (a PadN option).
pub fn ext_opts(next: u8) -> Vec<u8> {
    // RFC 8200 §4.3: Next Header, Hdr Ext Len (0 = 8 bytes), options:
    // PadN (type 1) with 4 bytes of padding.
    vec![next, 0, 1, 4, 0, 0, 0, 0]
}

/// Routing header of type 253 (RFC 4727 experimental) with the given
/// Segments Left and one 16-byte address slot (24 bytes total).
pub fn ext_routing(next: u8, segments_left: u8) -> Vec<u8> {
    // RFC 8200 §4.4: Next Header, Hdr Ext Len (in 8-octet units, not
    // counting the first 8), Routing Type, Segments Left, type-specific data.
    let mut v = vec![next, 2, 253, segments_left, 0, 0, 0, 0];
    v.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    v
}

/// Fragment header (etherparse). `offset` in 8-octet units.
pub fn ext_frag(next: u8, offset: u16, more: bool, id: u32) -> Vec<u8> {
    Ipv6FragmentHeader::new(
        IpNumber(next),
        IpFragOffset::try_new(offset).expect("offset"),
        more,
        id,
    )
    .to_bytes()
    .to_vec()
}

// ---------------------------------------------------------------------------
// IPv4 builders
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct V4 {
    pub tos: u8,
    pub id: u16,
    pub df: bool,
    pub mf: bool,
    /// Fragment offset in 8-octet units.
    pub offset: u16,
    pub ttl: u8,
    pub src: [u8; 4],
    pub dst: [u8; 4],
    pub options: Vec<u8>,
}

impl V4 {
    /// server → client, TTL 64, DF set.
    pub fn inb() -> V4 {
        V4 {
            tos: 0,
            id: 0x1234,
            df: true,
            mf: false,
            offset: 0,
            ttl: 64,
            src: V4_SERVER,
            dst: V4_CLIENT,
            options: vec![],
        }
    }
    pub fn ttl(mut self, t: u8) -> V4 {
        self.ttl = t;
        self
    }
    pub fn tos(mut self, t: u8) -> V4 {
        self.tos = t;
        self
    }
    pub fn df(mut self, df: bool) -> V4 {
        self.df = df;
        self
    }
    pub fn frag(mut self, id: u16, offset: u16, mf: bool) -> V4 {
        self.id = id;
        self.offset = offset;
        self.mf = mf;
        self
    }
    pub fn src(mut self, a: [u8; 4]) -> V4 {
        self.src = a;
        self
    }
    pub fn dst(mut self, a: [u8; 4]) -> V4 {
        self.dst = a;
        self
    }
    pub fn options(mut self, o: &[u8]) -> V4 {
        self.options = o.to_vec();
        self
    }
}

pub fn ipv4_header(h: &V4, proto: u8, payload_len: usize) -> Ipv4Header {
    let mut hdr = Ipv4Header {
        dscp: IpDscp::try_new(h.tos >> 2).expect("dscp"),
        ecn: IpEcn::try_new(h.tos & 3).expect("ecn"),
        total_len: 0,
        identification: h.id,
        dont_fragment: h.df,
        more_fragments: h.mf,
        fragment_offset: IpFragOffset::try_new(h.offset).expect("offset"),
        time_to_live: h.ttl,
        protocol: IpNumber(proto),
        header_checksum: 0,
        source: h.src,
        destination: h.dst,
        options: Ipv4Options::try_from(&h.options[..]).expect("options multiple of 4"),
    };
    hdr.total_len = (hdr.header_len() + payload_len) as u16;
    hdr.header_checksum = hdr.calc_header_checksum();
    hdr
}

/// IPv4 packet with a correct header checksum.
pub fn ipv4(h: &V4, proto: u8, l4: &[u8]) -> Vec<u8> {
    let hdr = ipv4_header(h, proto, l4.len());
    let mut v = hdr.to_bytes().to_vec();
    v.extend_from_slice(l4);
    v
}

// ---------------------------------------------------------------------------
// Transport builders (checksums by etherparse)
// ---------------------------------------------------------------------------

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const ICMP4: u8 = 1;
pub const ICMP6: u8 = 58;
pub const HOPOPT: u8 = 0;
pub const ROUTING: u8 = 43;
pub const FRAGMENT: u8 = 44;
pub const DSTOPTS: u8 = 60;

pub fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

fn tcp_header(sport: u16, dport: u16) -> TcpHeader {
    let mut t = TcpHeader::new(sport, dport, 0x0102_0304, 4096);
    t.ack = true;
    t.psh = true;
    t.acknowledgment_number = 0x0a0b_0c0d;
    t
}

pub fn tcp6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut t = tcp_header(sport, dport);
    t.checksum = t.calc_checksum_ipv6_raw(src, dst, data).expect("tcp len");
    let mut v = t.to_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

pub fn tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut t = tcp_header(sport, dport);
    t.checksum = t.calc_checksum_ipv4_raw(src, dst, data).expect("tcp len");
    let mut v = t.to_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

pub fn udp6(src: [u8; 16], dst: [u8; 16], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let h =
        UdpHeader::with_ipv6_checksum(sport, dport, &ipv6_pseudo(src, dst), data).expect("udp len");
    let mut v = h.to_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

fn ipv6_pseudo(src: [u8; 16], dst: [u8; 16]) -> Ipv6Header {
    Ipv6Header {
        source: src,
        destination: dst,
        ..Default::default()
    }
}

pub fn udp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut h = UdpHeader {
        source_port: sport,
        destination_port: dport,
        length: (8 + data.len()) as u16,
        checksum: 0,
    };
    h.checksum = h.calc_checksum_ipv4_raw(src, dst, data).expect("udp len");
    let mut v = h.to_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

/// IPv4 UDP with checksum 0 ("no checksum", RFC 768).
pub fn udp4_nocsum(sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let h = UdpHeader {
        source_port: sport,
        destination_port: dport,
        length: (8 + data.len()) as u16,
        checksum: 0,
    };
    let mut v = h.to_bytes().to_vec();
    v.extend_from_slice(data);
    v
}

/// ICMPv4 message: type, code, the 4 "rest of header" bytes, body.
pub fn icmp4(ty: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    let csum = Icmpv4Type::Unknown {
        type_u8: ty,
        code_u8: code,
        bytes5to8: rest,
    }
    .calc_checksum(body);
    let mut v = vec![ty, code];
    v.extend_from_slice(&csum.to_be_bytes());
    v.extend_from_slice(&rest);
    v.extend_from_slice(body);
    v
}

/// ICMPv6 message (checksum over the RFC 4443 §2.3 pseudo-header).
pub fn icmp6(
    src: [u8; 16],
    dst: [u8; 16],
    ty: u8,
    code: u8,
    rest: [u8; 4],
    body: &[u8],
) -> Vec<u8> {
    let csum = Icmpv6Type::Unknown {
        type_u8: ty,
        code_u8: code,
        bytes5to8: rest,
    }
    .calc_checksum(src, dst, body)
    .expect("icmpv6 len");
    let mut v = vec![ty, code];
    v.extend_from_slice(&csum.to_be_bytes());
    v.extend_from_slice(&rest);
    v.extend_from_slice(body);
    v
}

pub fn echo_rest(id: u16, seq: u16) -> [u8; 4] {
    let i = id.to_be_bytes();
    let s = seq.to_be_bytes();
    [i[0], i[1], s[0], s[1]]
}

pub fn u32_rest(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

// Whole packets for the common cases.

pub fn tcp6_pkt(h: &V6, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    ipv6(h, TCP, &[], &tcp6(h.src, h.dst, sport, dport, data))
}
pub fn udp6_pkt(h: &V6, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    ipv6(h, UDP, &[], &udp6(h.src, h.dst, sport, dport, data))
}
pub fn icmp6_pkt(h: &V6, ty: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    ipv6(h, ICMP6, &[], &icmp6(h.src, h.dst, ty, code, rest, body))
}
pub fn tcp4_pkt(h: &V4, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    ipv4(h, TCP, &tcp4(h.src, h.dst, sport, dport, data))
}
pub fn udp4_pkt(h: &V4, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    ipv4(h, UDP, &udp4(h.src, h.dst, sport, dport, data))
}
pub fn icmp4_pkt(h: &V4, ty: u8, code: u8, rest: [u8; 4], body: &[u8]) -> Vec<u8> {
    ipv4(h, ICMP4, &icmp4(ty, code, rest, body))
}

// ---------------------------------------------------------------------------
// Checking translated packets with etherparse
// ---------------------------------------------------------------------------

/// Parses an IPv4 packet, asserting version, header checksum and that Total
/// Length matches the bytes handed back.
#[track_caller]
pub fn parse4(pkt: &[u8]) -> (Ipv4Header, &[u8]) {
    let (h, rest) = Ipv4Header::from_slice(pkt).expect("etherparse: valid IPv4 header");
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "IPv4 header checksum"
    );
    assert_eq!(
        h.total_len as usize,
        pkt.len(),
        "IPv4 Total Length vs packet size"
    );
    (h, rest)
}

/// Parses an IPv4 header quoted inside an ICMP error (may be truncated, so
/// no Total Length check).
#[track_caller]
pub fn parse4_inner(pkt: &[u8]) -> (Ipv4Header, &[u8]) {
    let (h, rest) = Ipv4Header::from_slice(pkt).expect("etherparse: valid inner IPv4 header");
    assert_eq!(
        h.header_checksum,
        h.calc_header_checksum(),
        "inner IPv4 header checksum"
    );
    (h, rest)
}

/// Parses an IPv6 fixed header, asserting that Payload Length matches.
#[track_caller]
pub fn parse6(pkt: &[u8]) -> (Ipv6Header, &[u8]) {
    let (h, rest) = Ipv6Header::from_slice(pkt).expect("etherparse: valid IPv6 header");
    assert_eq!(
        h.payload_length as usize + Ipv6Header::LEN,
        pkt.len(),
        "IPv6 Payload Length vs packet size"
    );
    (h, rest)
}

#[track_caller]
pub fn parse6_inner(pkt: &[u8]) -> (Ipv6Header, &[u8]) {
    Ipv6Header::from_slice(pkt).expect("etherparse: valid inner IPv6 header")
}

/// Equal as ones'-complement checksums: 0x0000 and 0xFFFF both verify for
/// TCP and ICMP (RFC 1624 §3: an incremental update may yield either).
pub fn csum_eq(got: u16, want: u16) -> bool {
    got == want || (matches!(got, 0 | 0xffff) && matches!(want, 0 | 0xffff))
}

#[track_caller]
pub fn assert_tcp4(src: [u8; 4], dst: [u8; 4], seg: &[u8]) -> TcpHeader {
    let (t, data) = TcpHeader::from_slice(seg).expect("etherparse: TCP header");
    let want = t.calc_checksum_ipv4_raw(src, dst, data).expect("len");
    assert!(
        csum_eq(t.checksum, want),
        "TCP checksum over the IPv4 pseudo-header: got {:#06x}, want {want:#06x}",
        t.checksum
    );
    t
}

#[track_caller]
pub fn assert_tcp6(src: [u8; 16], dst: [u8; 16], seg: &[u8]) -> TcpHeader {
    let (t, data) = TcpHeader::from_slice(seg).expect("etherparse: TCP header");
    let want = t.calc_checksum_ipv6_raw(src, dst, data).expect("len");
    assert!(
        csum_eq(t.checksum, want),
        "TCP checksum over the IPv6 pseudo-header: got {:#06x}, want {want:#06x}",
        t.checksum
    );
    t
}

#[track_caller]
pub fn assert_udp4(src: [u8; 4], dst: [u8; 4], dgram: &[u8]) -> UdpHeader {
    let (u, data) = UdpHeader::from_slice(dgram).expect("etherparse: UDP header");
    assert_eq!(u.length as usize, dgram.len(), "UDP length");
    let want = u.calc_checksum_ipv4_raw(src, dst, data).expect("len");
    assert_eq!(u.checksum, want, "UDP checksum over the IPv4 pseudo-header");
    u
}

#[track_caller]
pub fn assert_udp6(src: [u8; 16], dst: [u8; 16], dgram: &[u8]) -> UdpHeader {
    let (u, data) = UdpHeader::from_slice(dgram).expect("etherparse: UDP header");
    assert_eq!(u.length as usize, dgram.len(), "UDP length");
    let want = u.calc_checksum_ipv6_raw(src, dst, data).expect("len");
    assert_eq!(u.checksum, want, "UDP checksum over the IPv6 pseudo-header");
    u
}

fn rest_of(msg: &[u8]) -> [u8; 4] {
    [msg[4], msg[5], msg[6], msg[7]]
}

/// ICMPv4 checksum: RFC 792, over the ICMP message only (no pseudo-header).
#[track_caller]
pub fn assert_icmp4(msg: &[u8]) {
    assert!(msg.len() >= 8, "ICMPv4 message shorter than 8 bytes");
    let want = Icmpv4Type::Unknown {
        type_u8: msg[0],
        code_u8: msg[1],
        bytes5to8: rest_of(msg),
    }
    .calc_checksum(&msg[8..]);
    let got = u16::from_be_bytes([msg[2], msg[3]]);
    assert!(
        csum_eq(got, want),
        "ICMPv4 checksum (RFC 792, no pseudo-header): got {got:#06x}, want {want:#06x}"
    );
}

/// ICMPv6 checksum: RFC 4443 §2.3, with the IPv6 pseudo-header.
#[track_caller]
pub fn assert_icmp6(src: [u8; 16], dst: [u8; 16], msg: &[u8]) {
    assert!(msg.len() >= 8, "ICMPv6 message shorter than 8 bytes");
    let want = Icmpv6Type::Unknown {
        type_u8: msg[0],
        code_u8: msg[1],
        bytes5to8: rest_of(msg),
    }
    .calc_checksum(src, dst, &msg[8..])
    .expect("len");
    let got = u16::from_be_bytes([msg[2], msg[3]]);
    assert!(
        csum_eq(got, want),
        "ICMPv6 checksum (RFC 4443 §2.3, with pseudo-header): got {got:#06x}, want {want:#06x}"
    );
}

/// Translates IPv6 → IPv4 expecting a forwarded ICMPv4 packet; returns
/// (outer IPv4 header, ICMPv4 message) after checking the checksums.
#[track_caller]
pub fn icmp_6to4_fwd(pkt: &[u8], cfg: &Config, m: &mut impl Mapper) -> (Ipv4Header, Vec<u8>) {
    let out = run(Dir::SixToFour, pkt, cfg, m).whole();
    let (h, msg) = parse4(&out);
    assert_eq!(
        h.protocol,
        IpNumber(ICMP4),
        "RFC 7915 §5.1: Protocol 58 → 1"
    );
    assert_icmp4(msg);
    (h, msg.to_vec())
}

/// Translates IPv4 → IPv6 expecting a forwarded ICMPv6 packet; returns
/// (outer IPv6 header, ICMPv6 message) after checking the checksums.
#[track_caller]
pub fn icmp_4to6_fwd(pkt: &[u8], cfg: &Config, m: &mut impl Mapper) -> (Ipv6Header, Vec<u8>) {
    let out = run(Dir::FourToSix, pkt, cfg, m).whole();
    let (h, msg) = parse6(&out);
    assert_eq!(
        h.next_header,
        IpNumber(ICMP6),
        "RFC 7915 §4.1: Next Header 1 → 58"
    );
    assert_icmp6(h.source, h.destination, msg);
    (h, msg.to_vec())
}

/// The translation of the IPv4 TOS byte of `h` as an etherparse header sees
/// it (DSCP << 2 | ECN).
pub fn tos_of(h: &Ipv4Header) -> u8 {
    (h.dscp.value() << 2) | h.ecn.value()
}

/// Checks for one IcmpError variant without caring about its contents.
pub fn is_time_exceeded(e: &IcmpError) -> bool {
    matches!(e, IcmpError::TimeExceeded)
}

/// An RFC 4884 §7 extension structure: version 2 header with its checksum
/// and one 8-byte object (class 1, c-type 1).
pub fn rfc4884_extension() -> Vec<u8> {
    let mut ext = vec![0x20, 0, 0, 0, 0, 8, 1, 1, 0xde, 0xad, 0xbe, 0xef];
    let c = etherparse::checksum::Sum16BitWords::new()
        .add_slice(&ext)
        .ones_complement();
    ext[2..4].copy_from_slice(&c.to_be_bytes());
    ext
}

// ---------------------------------------------------------------------------
// Fragmentation (xlat::frag) and reassembly checked with etherparse
// ---------------------------------------------------------------------------

/// Splits a translated IPv6 packet with `xlat::frag::fragment_v6`.
#[track_caller]
pub fn fragment6(pkt: &[u8], mtu: u16) -> Vec<Vec<u8>> {
    let mut scratch = vec![0u8; 65536];
    let mut frags = Vec::new();
    let n = xlat::frag::fragment_v6(pkt, mtu, &mut scratch, &mut |f: &[u8]| {
        frags.push(f.to_vec())
    })
    .expect("fragment_v6");
    assert_eq!(n, frags.len(), "fragment_v6 count");
    frags
}

/// Splits a translated IPv4 packet with `xlat::frag::fragment_v4`.
#[track_caller]
pub fn fragment4(pkt: &[u8], mtu: u16) -> Vec<Vec<u8>> {
    let mut scratch = vec![0u8; 65536];
    let mut frags = Vec::new();
    let n = xlat::frag::fragment_v4(pkt, mtu, &mut scratch, &mut |f: &[u8]| {
        frags.push(f.to_vec())
    })
    .expect("fragment_v4");
    assert_eq!(n, frags.len(), "fragment_v4 count");
    frags
}

/// Reassembled IPv6 fragments: the first fragment's fixed header, the
/// upper-layer protocol, the Identification, the first offset (8-octet
/// units), the last fragment's M flag, and the reassembled data.
pub struct Reassembled6 {
    pub ip: Ipv6Header,
    pub next_header: u8,
    pub ident: u32,
    pub first_offset: u16,
    pub last_more: bool,
    pub data: Vec<u8>,
}

/// Parses IPv6 fragments (fixed header + Fragment header + data) with
/// etherparse, checks that they are contiguous, share one Identification,
/// that every fragment but the last has M=1 and a multiple of 8 bytes, and
/// that each is at most `mtu` bytes; returns the reassembly.
#[track_caller]
pub fn reassemble6(frags: &[Vec<u8>], mtu: u16) -> Reassembled6 {
    assert!(!frags.is_empty());
    let mut out: Option<Reassembled6> = None;
    let mut next_off = 0usize;
    for (i, f) in frags.iter().enumerate() {
        assert!(
            f.len() <= mtu as usize,
            "fragment {i} is {} > {mtu}",
            f.len()
        );
        let (ip, rest) = parse6(f);
        assert_eq!(
            ip.next_header,
            IpNumber(44),
            "fragment {i}: Fragment header"
        );
        let (fh, data) = Ipv6FragmentHeader::from_slice(rest).expect("fragment header");
        let last = i + 1 == frags.len();
        if !last {
            assert!(fh.more_fragments, "fragment {i}: M=1");
            assert_eq!(data.len() % 8, 0, "fragment {i}: multiple of 8 bytes");
        }
        match &mut out {
            None => {
                next_off = fh.fragment_offset.byte_offset() as usize + data.len();
                out = Some(Reassembled6 {
                    ip: ip.clone(),
                    next_header: fh.next_header.0,
                    ident: fh.identification,
                    first_offset: fh.fragment_offset.value(),
                    last_more: fh.more_fragments,
                    data: data.to_vec(),
                });
            }
            Some(r) => {
                assert_eq!(
                    fh.identification, r.ident,
                    "fragment {i}: same Identification"
                );
                assert_eq!(fh.next_header.0, r.next_header);
                assert_eq!(ip.source, r.ip.source);
                assert_eq!(ip.destination, r.ip.destination);
                assert_eq!(
                    fh.fragment_offset.byte_offset() as usize,
                    next_off,
                    "fragment {i}: contiguous offset"
                );
                next_off += data.len();
                r.last_more = fh.more_fragments;
                r.data.extend_from_slice(data);
            }
        }
    }
    out.expect("at least one fragment")
}

/// Reassembled IPv4 fragments (see [`reassemble6`]).
pub struct Reassembled4 {
    pub ip: Ipv4Header,
    pub first_offset: u16,
    pub last_more: bool,
    pub data: Vec<u8>,
}

#[track_caller]
pub fn reassemble4(frags: &[Vec<u8>], mtu: u16) -> Reassembled4 {
    assert!(!frags.is_empty());
    let mut out: Option<Reassembled4> = None;
    let mut next_off = 0usize;
    for (i, f) in frags.iter().enumerate() {
        assert!(
            f.len() <= mtu as usize,
            "fragment {i} is {} > {mtu}",
            f.len()
        );
        let (ip, data) = parse4(f);
        assert!(!ip.dont_fragment, "fragment {i}: DF=0");
        let last = i + 1 == frags.len();
        if !last {
            assert!(ip.more_fragments, "fragment {i}: MF=1");
            assert_eq!(data.len() % 8, 0, "fragment {i}: multiple of 8 bytes");
        }
        match &mut out {
            None => {
                next_off = ip.fragment_offset.byte_offset() as usize + data.len();
                out = Some(Reassembled4 {
                    first_offset: ip.fragment_offset.value(),
                    last_more: ip.more_fragments,
                    data: data.to_vec(),
                    ip,
                });
            }
            Some(r) => {
                assert_eq!(
                    ip.identification, r.ip.identification,
                    "fragment {i}: same ID"
                );
                assert_eq!(ip.protocol, r.ip.protocol);
                assert_eq!(ip.source, r.ip.source);
                assert_eq!(ip.destination, r.ip.destination);
                assert_eq!(
                    ip.fragment_offset.byte_offset() as usize,
                    next_off,
                    "fragment {i}: contiguous offset"
                );
                next_off += data.len();
                r.last_more = ip.more_fragments;
                r.data.extend_from_slice(data);
            }
        }
    }
    out.expect("at least one fragment")
}

/// Finds the last two payload bytes that make `calc` (an etherparse UDP
/// checksum, which maps a computed 0 to 0xFFFF) come out as 0xFFFF, i.e. a
/// datagram whose computed checksum is zero and must be sent as all ones
/// (RFC 768; RFC 8200 §8.1).
pub fn udp_payload_with_zero_sum(len: usize, calc: impl Fn(&[u8]) -> u16) -> Vec<u8> {
    let mut data = payload(len);
    let n = data.len();
    for w in 0..=u16::MAX {
        data[n - 2..].copy_from_slice(&w.to_be_bytes());
        if calc(&data) == 0xffff {
            return data;
        }
    }
    panic!("no word gives a zero UDP checksum");
}
