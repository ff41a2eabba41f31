//! RFC 7915 IP/ICMP translation, in place, with the address/port mapping
//! supplied by the caller through [`Mapper`].
//!
//! * [`six_to_four`] — RFC 7915 §5 (IPv6 → IPv4).
//! * [`four_to_six`] — RFC 7915 §4 (IPv4 → IPv6).
//! * [`icmp`] — ICMP type/code/pointer/MTU mapping and ICMP errors with their
//!   inner packet translated (§4.2–4.4, §5.2–5.4).
//! * [`frag`] — splitting a translated packet that exceeds the next-hop MTU.
//! * [`icmp_gen`] — ICMP errors the translator itself originates.
//! * [`reassemble`] — bounded reassembly of fragmented ICMP/ICMPv6 messages
//!   (RFC 8200 §4.5, RFC 5722), which cannot be translated per fragment.
//!
//! The packet occupies `buf[start..start + len]`. IPv4 → IPv6 grows the header
//! by 20 bytes (28 with a Fragment header), so the caller leaves at least
//! [`HEADROOM`] bytes before `start`. Nothing here allocates.

pub mod four_to_six;
pub mod frag;
pub mod icmp;
pub mod icmp_gen;
pub mod reassemble;
pub mod six_to_four;

use crate::addr::Prefix;
use crate::verdict::DropReason;
use core::net::{Ipv4Addr, Ipv6Addr};

pub use four_to_six::four_to_six;
pub use six_to_four::six_to_four;

/// Bytes the caller must leave free before the packet for IPv4 → IPv6
/// (20 bytes of header growth plus an 8-byte Fragment header; ICMP errors
/// whose inner packet also grows take up to twice that).
pub const HEADROOM: usize = 64;

/// Largest packet the translator handles (a TUN with GSO can hand us 64 KiB).
pub const MAX_PACKET: usize = 65535;

/// Transport protocol of a flow, as the mapping sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum L4Proto {
    Tcp,
    Udp,
    /// ICMP query (echo); the identifier plays the role of both ports.
    Icmp,
}

impl L4Proto {
    pub const fn as_str(self) -> &'static str {
        match self {
            L4Proto::Tcp => "tcp",
            L4Proto::Udp => "udp",
            L4Proto::Icmp => "icmp",
        }
    }
}

/// A flow's 5-tuple in one family. For ICMP echo both ports hold the
/// identifier (RFC 6146 §3.4: the identifier is the "port").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple<A> {
    pub proto: L4Proto,
    pub src: A,
    pub src_port: u16,
    pub dst: A,
    pub dst_port: u16,
}

pub type Tuple6 = Tuple<Ipv6Addr>;
pub type Tuple4 = Tuple<Ipv4Addr>;

impl<A: Copy> Tuple<A> {
    /// The same flow seen from the other end (source and destination swapped).
    pub fn reversed(&self) -> Self {
        Tuple {
            proto: self.proto,
            src: self.dst,
            src_port: self.dst_port,
            dst: self.src,
            dst_port: self.src_port,
        }
    }
}

/// Where in a packet the tuple came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The packet's own header: the mapping may create state.
    Outer,
    /// The packet quoted inside an ICMP error, with source and destination
    /// already swapped so it reads in the error's direction (RFC 6146 §3.4):
    /// look up only, never create.
    IcmpErrorInner,
}

/// Fragment fields of the packet being mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragMeta {
    /// IPv4 Identification (zero-extended) or IPv6 Fragment Identification.
    pub ident: u32,
    /// Byte offset of this fragment.
    pub offset: u16,
    pub more: bool,
}

impl FragMeta {
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// What the mapping is told about a packet besides its tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowMeta {
    pub role: Role,
    /// TCP flags byte (0 for other protocols).
    pub tcp_flags: u8,
    /// Set for fragments. For a non-first fragment the tuple's ports are 0
    /// and the mapping must find them from the first fragment (RFC 6146 §3.4,
    /// `state::frag_cache`); the translator writes only the addresses.
    pub fragment: Option<FragMeta>,
    /// Length of the IP packet being translated.
    pub len: usize,
}

/// The mapping hook: RFC 7915 does the header arithmetic, the mapping picks
/// the addresses and ports (RFC 6146 "compute outgoing tuple").
pub trait Mapper {
    /// The outgoing IPv4 tuple for a packet travelling IPv6 → IPv4.
    fn map_6to4(&mut self, t: &Tuple6, meta: &FlowMeta) -> Result<Tuple4, DropReason>;
    /// The outgoing IPv6 tuple for a packet travelling IPv4 → IPv6.
    fn map_4to6(&mut self, t: &Tuple4, meta: &FlowMeta) -> Result<Tuple6, DropReason>;
    /// The IPv6 source for an ICMPv4 error sent by IPv4 router `router`
    /// (normally `prefix || router`, RFC 7915 §4.2 / RFC 6052).
    fn icmp_error_source_4to6(&mut self, router: Ipv4Addr) -> Result<Ipv6Addr, DropReason>;
    /// The IPv4 source of a translated ICMPv6 error that IPv6 router
    /// `router` sent. `quoted` is what the quoted packet's destination
    /// translated to: a stateful translator's own address for the flow
    /// (RFC 6146 §3.4), the default. A stateless translator translates the
    /// router's address, or takes one from its RFC 6791 pool.
    fn icmp_error_source_6to4(&mut self, _router: Ipv6Addr, quoted: Ipv4Addr) -> Ipv4Addr {
        quoted
    }
    /// The outgoing IPv4 (source, destination) of a packet of a protocol
    /// without ports (anything but TCP, UDP and ICMP: GRE, ESP, SCTP, DCCP,
    /// ...), which RFC 7915 §5.5 translates at the IP layer. Only a mapping
    /// that is 1:1 in addresses can do that; the default, for port-based
    /// NAPT, refuses it.
    fn map_addrs_6to4(
        &mut self,
        _src: Ipv6Addr,
        _dst: Ipv6Addr,
        _meta: &FlowMeta,
    ) -> Result<(Ipv4Addr, Ipv4Addr), DropReason> {
        Err(DropReason::UnsupportedProtocol)
    }
    /// [`Mapper::map_addrs_6to4`] for IPv4 → IPv6 (RFC 7915 §4.5).
    fn map_addrs_4to6(
        &mut self,
        _src: Ipv4Addr,
        _dst: Ipv4Addr,
        _meta: &FlowMeta,
    ) -> Result<(Ipv6Addr, Ipv6Addr), DropReason> {
        Err(DropReason::UnsupportedProtocol)
    }
}

/// How to treat IPv4 UDP datagrams with a zero checksum (RFC 7915 §4.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UdpZeroChecksum {
    /// Compute the checksum when the datagram is not fragmented; drop
    /// fragments (they cannot be computed) with a counted reason.
    #[default]
    Calc,
    /// Drop every such datagram.
    Drop,
    /// Forward with checksum 0 (invalid in IPv6; for controlled labs only).
    Forward,
}

/// Translator settings that shape packets (RFC 7915 knobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Next-hop MTU for translated IPv4 packets (the TUN's MTU by default).
    pub ipv4_mtu: u16,
    /// Next-hop MTU for translated IPv6 packets (the TUN's MTU by default).
    pub ipv6_link_mtu: u16,
    /// The lowest IPv6 path MTU assumed (RFC 7915 §4.1 "lowest-ipv6-mtu"):
    /// IPv4 packets without DF are fragmented to it. Default 1280.
    pub lowest_ipv6_mtu: u16,
    pub udp_zero_checksum: UdpZeroChecksum,
    /// Copy IPv4 TOS ↔ IPv6 Traffic Class (RFC 7915 §4.1/§5.1 default: yes).
    pub copy_tos: bool,
    /// Decrement TTL / Hop Limit (a translator is a router; default yes).
    pub decrement_ttl: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ipv4_mtu: 1500,
            ipv6_link_mtu: 1500,
            lowest_ipv6_mtu: 1280,
            udp_zero_checksum: UdpZeroChecksum::Calc,
            copy_tos: true,
            decrement_ttl: true,
        }
    }
}

/// A stateless mapping (SIIT-style, RFC 7915 with RFC 6052 for both
/// addresses): IPv6 addresses are extracted from `prefix`, IPv4 addresses
/// embedded in it; ports are kept. Used by tests, the fuzzer and benchmarks;
/// the stateful engine replaces it in the daemon.
#[derive(Debug, Clone, Copy)]
pub struct StatelessMapper {
    pub prefix: Prefix,
    /// Apply RFC 6052 §3.1 to the Well-Known Prefix.
    pub wkp_strict: bool,
}

impl Mapper for StatelessMapper {
    fn map_6to4(&mut self, t: &Tuple6, _: &FlowMeta) -> Result<Tuple4, DropReason> {
        Ok(Tuple {
            proto: t.proto,
            src: self.prefix.extract_checked(&t.src, self.wkp_strict)?,
            src_port: t.src_port,
            dst: self.prefix.extract_checked(&t.dst, self.wkp_strict)?,
            dst_port: t.dst_port,
        })
    }
    fn map_4to6(&mut self, t: &Tuple4, _: &FlowMeta) -> Result<Tuple6, DropReason> {
        Ok(Tuple {
            proto: t.proto,
            src: self.prefix.embed(t.src),
            src_port: t.src_port,
            dst: self.prefix.embed(t.dst),
            dst_port: t.dst_port,
        })
    }
    fn icmp_error_source_4to6(&mut self, router: Ipv4Addr) -> Result<Ipv6Addr, DropReason> {
        Ok(self.prefix.embed(router))
    }
    fn map_addrs_6to4(
        &mut self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        _: &FlowMeta,
    ) -> Result<(Ipv4Addr, Ipv4Addr), DropReason> {
        Ok((
            self.prefix.extract_checked(&src, self.wkp_strict)?,
            self.prefix.extract_checked(&dst, self.wkp_strict)?,
        ))
    }
    fn map_addrs_4to6(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        _: &FlowMeta,
    ) -> Result<(Ipv6Addr, Ipv6Addr), DropReason> {
        Ok((self.prefix.embed(src), self.prefix.embed(dst)))
    }
}

/// True for IPv6 addresses that are never translated: unspecified,
/// loopback, link-local, multicast (RFC 4291 §2.5.2–§2.5.6, §2.7: special
/// and scoped addresses; the kernel's own MLD/RS traffic into the TUN is
/// dropped silently and counted).
pub fn v6_not_for_translation(a: &Ipv6Addr) -> bool {
    let s = a.segments();
    a.is_unspecified() || a.is_loopback() || a.is_multicast() || (s[0] & 0xffc0) == 0xfe80
}

/// True for IPv4 addresses that are never translated. Since the
/// out-of-scope rule this is exactly [`v4_out_of_scope`] (it used to name only
/// unspecified, loopback, multicast and limited broadcast, a subset), and the
/// translator counts such packets as [`DropReason::OutOfScopeV4`]:
/// [`DropReason::NotForTranslation`] is now for IPv6 addresses only
/// ([`v6_not_for_translation`]), so one IPv4 address never splits across two
/// metric labels.
#[inline]
pub fn v4_not_for_translation(a: &Ipv4Addr) -> bool {
    v4_out_of_scope(a)
}

/// True for IPv4 addresses that must never be produced by translation nor
/// accepted for it, as source or destination (RFC 6052 §5.1, RFC 1812
/// §5.3.7, RFC 3927 §7): "this network" 0.0.0.0/8, loopback 127.0.0.0/8,
/// link-local 169.254.0.0/16, multicast 224.0.0.0/4 and the limited
/// broadcast 255.255.255.255. Other reserved space (240.0.0.0/4, private
/// ranges) is left to policy. Five compares on the address word, combined
/// without short-circuiting: it runs for both addresses of every packet.
#[inline]
pub fn v4_out_of_scope(a: &Ipv4Addr) -> bool {
    let x = u32::from_be_bytes(a.octets());
    let top = x >> 24;
    (top == 0) | (top == 127) | (x >> 28 == 0xe) | (x >> 16 == 0xa9fe) | (x == u32::MAX)
}

/// [`v4_out_of_scope`] for the two addresses of an IPv4 header, as the
/// translator applies it: to the outer header only. The packet quoted in an
/// ICMP error is not checked (it is data to the receiver; in the 6 → 4
/// direction its mapped addresses are the outer ones anyway).
#[inline]
pub(crate) fn check_v4_scope(src: &Ipv4Addr, dst: &Ipv4Addr) -> Result<(), DropReason> {
    if v4_out_of_scope(src) | v4_out_of_scope(dst) {
        Err(DropReason::OutOfScopeV4)
    } else {
        Ok(())
    }
}

/// Translates the packet at `buf[start..start + len]` in whichever direction
/// its version nibble says.
pub fn translate<M: Mapper + ?Sized>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    cfg: &Config,
    m: &mut M,
) -> crate::verdict::Verdict {
    translate_offload(buf, start, len, cfg, m, Offload::NONE)
}

/// [`translate`] for a packet that came with TUN offload metadata (a
/// virtio-net header): a GSO super-packet and/or a partial checksum.
pub fn translate_offload<M: Mapper + ?Sized>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    cfg: &Config,
    m: &mut M,
    off: Offload,
) -> crate::verdict::Verdict {
    match buf.get(start).map(|b| b >> 4) {
        Some(6) => six_to_four::six_to_four_offload(buf, start, len, cfg, m, off),
        Some(4) => four_to_six::four_to_six_offload(buf, start, len, cfg, m, off),
        Some(_) => DropReason::BadVersion.into(),
        None => DropReason::Truncated.into(),
    }
}

/// Offload metadata of one packet (the parts of a virtio-net header that
/// change what translation must do; ADR 0004).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offload {
    /// Segment payload size of a GSO super-packet (0: not GSO). MTU and DF
    /// rules then apply to each segment (headers + `gso_size`), not to the
    /// super-packet, which the kernel segments after us.
    pub gso_size: u16,
    /// The transport checksum field holds only the pseudo-header sum (not
    /// complemented), to be completed by whoever finishes the packet
    /// (`VIRTIO_NET_HDR_F_NEEDS_CSUM`): adjust the pseudo-header part only.
    pub csum_partial: bool,
}

impl Offload {
    pub const NONE: Offload = Offload {
        gso_size: 0,
        csum_partial: false,
    };
}

#[cfg(test)]
mod test {
    //! Smoke tests; the RFC 7915 conformance suite lives in `tests/`.
    use super::*;
    use crate::verdict::Verdict;
    use etherparse::{PacketBuilder, SlicedPacket, TransportSlice};

    fn mapper() -> StatelessMapper {
        StatelessMapper {
            prefix: "2001:db8:64::/96".parse().unwrap(),
            wkp_strict: false,
        }
    }

    fn place(pkt: &[u8]) -> Vec<u8> {
        let mut buf = vec![0u8; HEADROOM + pkt.len() + 256];
        buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
        buf
    }

    #[test]
    fn tcp_round_trip_checksums_verify() {
        let m = mapper();
        let src = m.prefix.embed(Ipv4Addr::new(192, 0, 2, 1)).octets();
        let dst = m.prefix.embed(Ipv4Addr::new(198, 51, 100, 2)).octets();
        let payload = [7u8; 100];
        let b = PacketBuilder::ipv6(src, dst, 64).tcp(40000, 80, 1234, 65535);
        let mut pkt = Vec::new();
        b.write(&mut pkt, &payload).unwrap();
        let mut buf = place(&pkt);
        let mut mm = m;
        let v = six_to_four(&mut buf, HEADROOM, pkt.len(), &Config::default(), &mut mm);
        let Verdict::Forward { start, len, .. } = v else {
            panic!("{v:?}")
        };
        let out = buf[start..start + len].to_vec();
        let s = SlicedPacket::from_ip(&out).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip4)) = &s.net else {
            panic!()
        };
        assert_eq!(ip4.header().ttl(), 63);
        let Some(TransportSlice::Tcp(tcp)) = &s.transport else {
            panic!()
        };
        let want = tcp
            .to_header()
            .calc_checksum_ipv4(&ip4.header().to_header(), &payload)
            .unwrap();
        assert_eq!(tcp.checksum(), want);
        // and back
        let v = four_to_six(&mut buf, start, len, &Config::default(), &mut mm);
        let Verdict::Forward { start, len, .. } = v else {
            panic!("{v:?}")
        };
        let mut expect = pkt.clone();
        expect[7] = 62; // hop limit decremented twice
        assert_eq!(&buf[start..start + len], &expect[..]);
    }

    #[test]
    fn icmp_echo_round_trip() {
        let mut m = mapper();
        let src = m.prefix.embed(Ipv4Addr::new(192, 0, 2, 1)).octets();
        let dst = m.prefix.embed(Ipv4Addr::new(198, 51, 100, 2)).octets();
        let b = PacketBuilder::ipv6(src, dst, 64).icmpv6_echo_request(0x1234, 7);
        let mut pkt = Vec::new();
        b.write(&mut pkt, b"hello").unwrap();
        let mut buf = place(&pkt);
        let Verdict::Forward { start, len, .. } =
            six_to_four(&mut buf, HEADROOM, pkt.len(), &Config::default(), &mut m)
        else {
            panic!()
        };
        let out = &buf[start..start + len];
        assert_eq!(out[20], 8);
        assert_eq!(crate::wire::checksum::checksum(&out[20..]), 0);
        let Verdict::Forward { start, len, .. } =
            four_to_six(&mut buf, start, len, &Config::default(), &mut m)
        else {
            panic!()
        };
        let mut expect = pkt.clone();
        expect[7] = 62;
        assert_eq!(&buf[start..start + len], &expect[..]);
    }

    /// Found by the fuzzer: RFC 1812 §4.3.2.7 forbids an ICMP error about a
    /// non-initial fragment, so TTL expiry there is a silent (counted) drop.
    #[test]
    fn rfc1812_4_3_2_7_no_time_exceeded_for_non_initial_fragment() {
        let mut ip = etherparse::Ipv4Header::new(
            16,
            1,
            etherparse::IpNumber::UDP,
            [198, 51, 100, 2],
            [192, 0, 2, 1],
        )
        .unwrap();
        ip.fragment_offset = etherparse::IpFragOffset::try_new(256).unwrap();
        ip.header_checksum = ip.calc_header_checksum();
        let mut pkt = ip.to_bytes().to_vec();
        pkt.extend_from_slice(&[0xab; 16]);
        let mut buf = place(&pkt);
        let v = four_to_six(
            &mut buf,
            HEADROOM,
            pkt.len(),
            &Config::default(),
            &mut mapper(),
        );
        assert_eq!(v, Verdict::Drop(DropReason::HopLimitExceeded));
        // The first fragment does get its Time Exceeded.
        ip.fragment_offset = etherparse::IpFragOffset::ZERO;
        ip.more_fragments = true;
        ip.header_checksum = ip.calc_header_checksum();
        pkt[..20].copy_from_slice(&ip.to_bytes());
        let mut buf = place(&pkt);
        let v = four_to_six(
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
                    error: crate::IcmpError::TimeExceeded,
                    ..
                }
            ),
            "{v:?}"
        );
    }
}
