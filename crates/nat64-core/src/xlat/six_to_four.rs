//! RFC 7915 §5: translating IPv6 packets into IPv4, in place.
//!
//! The IPv4 header is written over the tail of the IPv6 header and its
//! extension headers, ending where the transport header starts, so the
//! payload never moves.

use super::icmp::{self, Mapped, Rest};
use super::{
    check_v4_scope, v6_not_for_translation, Config, FlowMeta, FragMeta, L4Proto, Mapper, Offload,
    Role, Tuple,
};
use crate::verdict::{DropReason, IcmpError, Verdict};
use crate::wire::icmp::{self as icmp_wire, is_v6_error, v6};
use crate::wire::ipv6::{self, nh, HeaderChain};
use crate::wire::{checksum, l4, proto};
use core::net::Ipv4Addr;

/// Fields of an IPv4 header to emit (RFC 7915 §5.1).
#[derive(Debug, Clone, Copy)]
pub(crate) struct V4Header {
    pub tos: u8,
    pub total_len: u16,
    pub ident: u16,
    pub df: bool,
    pub mf: bool,
    pub frag_offset: u16,
    pub ttl: u8,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
}

/// Writes a 20-byte IPv4 header (no options) with its checksum.
pub(crate) fn write_v4_header(out: &mut [u8], h: &V4Header) {
    let mut p = crate::wire::ipv4::Packet::new_unchecked(&mut out[..20]);
    p.set_version_and_header_len(20);
    p.set_tos(h.tos);
    p.set_total_len(h.total_len);
    p.set_ident(h.ident);
    p.set_flags_and_offset(h.df, h.mf, h.frag_offset);
    p.set_ttl(h.ttl);
    p.set_protocol(h.protocol);
    p.set_src_addr(h.src);
    p.set_dst_addr(h.dst);
    p.fill_checksum();
}

/// RFC 7915 §5.1 "Identification: set according to a Fragment
/// Identification algorithm": a hash of the addresses and the transport
/// checksum (which changes with every segment), in the spirit of RFC 7739.
/// Only used for packets sent with DF clear.
fn fragment_id(src: Ipv4Addr, dst: Ipv4Addr, l4_sum: u16, len: u16) -> u16 {
    let x = u32::from(src).rotate_left(7) ^ u32::from(dst) ^ ((l4_sum as u32) << 16) ^ len as u32;
    let h = x.wrapping_mul(0x9e37_79b1);
    (h >> 16) as u16 | 1
}

/// Translates the IPv6 packet at `buf[start..start + len]` to IPv4 in place
/// (RFC 7915 §5), asking `m` for the outgoing addresses and ports.
pub fn six_to_four<M: Mapper + ?Sized>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    cfg: &Config,
    m: &mut M,
) -> Verdict {
    six_to_four_offload(buf, start, len, cfg, m, Offload::NONE)
}

/// [`six_to_four`] for a packet with TUN offload metadata (GSO super-packet,
/// partial checksum); see [`Offload`].
pub fn six_to_four_offload<M: Mapper + ?Sized>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    cfg: &Config,
    m: &mut M,
    off: Offload,
) -> Verdict {
    translate(buf, start, len, cfg, m, off).unwrap_or_else(Verdict::Drop)
}

// Inlined into `translate`: as separate calls the classify → map →
// rewrite split cost ~20 ns per packet on the engine path (criterion
// `engine established/process_udp_6to4`, 89 → 108 ns).
#[inline(always)]
fn classify(
    buf: &[u8],
    start: usize,
    len: usize,
    cfg: &Config,
    off: Offload,
) -> Result<Classified, DropReason> {
    let pkt = start
        .checked_add(len)
        .and_then(|end| buf.get(start..end))
        .ok_or(DropReason::NoBufferRoom)?;
    let ip = ipv6::Packet::new_checked(pkt)?;
    let total = ip.total_len();
    let (src6, dst6) = (ip.src_addr(), ip.dst_addr());
    if v6_not_for_translation(&src6) || v6_not_for_translation(&dst6) {
        return Err(DropReason::NotForTranslation);
    }
    let chain = ipv6::walk_chain(&pkt[..total])?;
    let first = chain.frag.is_none_or(|f| f.is_first());
    let upper_len = total - chain.upper_offset;
    let is_icmp_error =
        chain.upper == nh::ICMPV6 && first && upper_len > 0 && is_v6_error(pkt[chain.upper_offset]);

    // RFC 7915 §5.1: a Routing header with Segments Left != 0 is not
    // translated; Parameter Problem code 0 points at Segments Left.
    if let Some(at) = chain.segments_left_at {
        return Ok(Classified::Answer(icmp::error_or_drop(
            is_icmp_error,
            IcmpError::ParameterProblem {
                code: 0,
                pointer: at as u32,
            },
            DropReason::SegmentsLeft,
        )));
    }
    // RFC 7915 §5.1 TTL: the translator is a router and decrements.
    if cfg.decrement_ttl && ip.hop_limit() <= 1 {
        return Ok(Classified::Answer(icmp::error_or_drop(
            is_icmp_error,
            IcmpError::TimeExceeded,
            DropReason::HopLimitExceeded,
        )));
    }
    if chain.ext_after_fragment {
        // RFC 7915 §5.1.1: an extension header after the Fragment header
        // SHOULD be dropped (and counted).
        return Err(DropReason::UnsupportedExtensionHeader);
    }
    // RFC 7915 §5.5: TCP, UDP and ICMPv6 are translated with their ports;
    // any other protocol at the IP layer alone (1:1 mappings only).
    let other = match chain.upper {
        proto::TCP | proto::UDP | proto::ICMPV6 => false,
        // ICMPv4 inside IPv6 would be read as ICMP with a wrong checksum.
        proto::ICMP => return Err(DropReason::UnsupportedProtocol),
        nh::AH | nh::MOBILITY | nh::NO_NEXT | nh::HOP_BY_HOP | nh::ROUTING | nh::DEST_OPTS => {
            return Err(DropReason::UnsupportedExtensionHeader)
        }
        _ => true,
    };
    if first && !other && upper_len < l4::min_header_len(chain.upper) {
        return Err(if chain.frag.is_some() {
            DropReason::FragmentTooSmall
        } else {
            DropReason::BadL4Header
        });
    }
    if chain.upper == nh::ICMPV6 && chain.frag.is_some_and(|f| f.offset != 0 || f.more) {
        // The ICMPv6 checksum covers the whole message and a pseudo-header
        // with its full length: it cannot be adjusted per fragment (RFC
        // 7915 §1.2). An atomic fragment (offset 0, M clear) holds the whole
        // message and is translated like one (RFC 6946 §4), with DF clear
        // since its sender allowed fragmentation (§5.1.1): the daemon's
        // ICMP reassembly hands over whole messages that way.
        return Err(DropReason::IcmpFragmented);
    }
    let ttl = if cfg.decrement_ttl {
        ip.hop_limit() - 1
    } else {
        ip.hop_limit()
    };
    let tos = if cfg.copy_tos { ip.traffic_class() } else { 0 };
    let header = Header {
        chain,
        total,
        tos,
        ttl,
    };
    if is_icmp_error {
        return Ok(Classified::IcmpError(header));
    }
    if other {
        return Ok(Classified::Other(header));
    }

    // RFC 6146 §3.4 determine the incoming tuple.
    let l4s = &pkt[chain.upper_offset..total];
    if first && !l4::lengths_agree(chain.upper, l4s, extent(chain.frag.is_some(), off)) {
        // RFC 768 / RFC 9293 §3.1: a header whose lengths lie.
        return Err(DropReason::BadL4Header);
    }
    let (l4p, sport, dport, tcp_flags, echo4) = if !first {
        let p = if chain.upper == proto::TCP {
            L4Proto::Tcp
        } else {
            L4Proto::Udp
        };
        (p, 0, 0, 0, None)
    } else {
        let ports = l4::Ports::new_unchecked(l4s);
        match chain.upper {
            proto::TCP => (
                L4Proto::Tcp,
                ports.src_port(),
                ports.dst_port(),
                ports.tcp_flags(),
                None,
            ),
            proto::UDP => {
                if ports.udp_checksum() == 0 {
                    // A zero UDP checksum is not valid in IPv6 (RFC 8200 §8.1).
                    return Err(DropReason::BadChecksum);
                }
                (L4Proto::Udp, ports.src_port(), ports.dst_port(), 0, None)
            }
            _ => {
                let echo = icmp_wire::Packet::new_unchecked(l4s);
                let t = match icmp::map_v6_to_v4(echo.msg_type(), echo.code(), echo.rest())? {
                    Mapped::Echo { msg_type } => msg_type,
                    Mapped::Error { .. } => return Err(DropReason::IcmpUntranslatableType),
                };
                let id = echo.ident();
                (L4Proto::Icmp, id, id, 0, Some(t))
            }
        }
    };
    let meta = FlowMeta {
        role: Role::Outer,
        tcp_flags,
        fragment: chain.frag.map(|f| FragMeta {
            ident: f.ident,
            offset: f.offset,
            more: f.more,
        }),
        len: total,
    };
    let t6 = Tuple {
        proto: l4p,
        src: src6,
        src_port: sport,
        dst: dst6,
        dst_port: dport,
    };
    Ok(Classified::Flow(Incoming {
        header,
        tuple: t6,
        meta,
        echo: echo4,
    }))
}

/// RFC 7915 §5 in RFC 6146's order (Jool's `core.c`): [`classify`]
/// (read-only, §3.4 the incoming tuple), the mode's mapping behind
/// [`Mapper`] (§3.5 filtering and updating, §3.6 the outgoing tuple), then
/// one in-place [`rewrite`] from the incoming and outgoing tuples (§3.7).
#[inline]
fn translate<M: Mapper + ?Sized>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    cfg: &Config,
    m: &mut M,
    off: Offload,
) -> Result<Verdict, DropReason> {
    let inc = match classify(buf, start, len, cfg, off)? {
        Classified::Answer(v) => return Ok(v),
        Classified::IcmpError(h) => {
            return icmp_error(buf, start, h.total, &h.chain, h.tos, h.ttl, cfg, m)
        }
        Classified::Other(h) => {
            return translate_other(buf, start, h.total, &h.chain, h.tos, h.ttl, cfg, m)
        }
        Classified::Flow(inc) => inc,
    };
    // RFC 6146 §3.5 filtering and updating / §3.6 compute outgoing tuple.
    let t4 = m.map_6to4(&inc.tuple, &inc.meta)?;
    // RFC 6052 §5.1, RFC 1812 §5.3.7, RFC 3927 §7: whatever the mapping
    // answered (it is arbitrary: stateless, stateful, kernel leases), no
    // IPv4 packet leaves from or to an out-of-scope address.
    check_v4_scope(&t4.src, &t4.dst)?;
    rewrite(buf, start, &inc, &t4, cfg, off)
}

/// What [`classify`] found in an IPv6 packet.
enum Classified {
    /// Refused before any mapping, with an ICMPv6 error for the source
    /// (RFC 7915 §5.1: Segments Left, hop limit); the packet is untouched.
    Answer(Verdict),
    /// An ICMPv6 error (RFC 7915 §5.2–§5.4): its quoted packet drives the
    /// mapping.
    IcmpError(Header),
    /// A protocol without ports (RFC 7915 §5.5): mapped by address.
    Other(Header),
    /// TCP, UDP or an ICMPv6 echo with its incoming tuple.
    Flow(Incoming),
}

/// The IPv6 header facts every path needs.
struct Header {
    chain: HeaderChain,
    /// Length of the IPv6 packet.
    total: usize,
    /// Traffic Class to copy (0 unless `copy_tos`), hop limit to write.
    tos: u8,
    ttl: u8,
}

/// RFC 6146 §3.4: the incoming tuple of a TCP/UDP/echo packet and what the
/// rewrite needs besides the outgoing tuple.
struct Incoming {
    header: Header,
    tuple: super::Tuple6,
    meta: FlowMeta,
    /// The ICMPv4 type of an echo (None: TCP or UDP).
    echo: Option<u8>,
}

/// RFC 7915 §5.1 and §5.5 in place, from the incoming tuple `inc` and the
/// outgoing `t4`: the transport header's ports (or echo type and
/// identifier) and checksum, then the IPv4 header over the end of the IPv6
/// chain. Sizes, DF and MTU are judged first: a Packet Too Big answer
/// leaves the packet as it came.
#[inline(always)]
fn rewrite(
    buf: &mut [u8],
    start: usize,
    inc: &Incoming,
    t4: &super::Tuple4,
    cfg: &Config,
    off: Offload,
) -> Result<Verdict, DropReason> {
    let Header {
        ref chain,
        total,
        tos,
        ttl,
    } = inc.header;
    let (src6, dst6, echo4) = (inc.tuple.src, inc.tuple.dst, inc.echo);
    let first = chain.frag.is_none_or(|f| f.is_first());
    let upper_len = total - chain.upper_offset;
    let pkt = &buf[start..start + total];
    // Sizes, DF and MTU (RFC 7915 §5.1, §5.1.1).
    let total4 = upper_len + 20;
    if total4 > 65535 {
        return Err(DropReason::BadLength);
    }
    // A GSO super-packet is judged by the segments the kernel will cut.
    let seg4 = gso_segment_len(&pkt[chain.upper_offset..total], chain.upper, off)
        .map_or(total4, |l| l + 20);
    let (df, fragment_mtu) = match df_and_mtu(seg4, chain.frag.is_some(), cfg) {
        Ok(x) => x,
        Err(too_big) => return Ok(too_big),
    };

    // Transport header: ports / identifier and checksum (RFC 7915 §5.5).
    let l4_abs = start + chain.upper_offset;
    let mut l4_sum = 0;
    if first {
        let l4b = &mut buf[l4_abs..start + total];
        let partial = off.csum_partial;
        l4_sum = match echo4 {
            None => l4::Ports::new_unchecked(l4b)
                .translate(
                    chain.upper,
                    t4.src_port,
                    t4.dst_port,
                    checksum::addr_sum_v6(src6, dst6),
                    checksum::addr_sum_v4(t4.src, t4.dst),
                    partial,
                )
                .unwrap_or(0),
            // ICMPv4 has no pseudo-header: the ICMPv6 one leaves the sum.
            Some(t) => icmp_wire::Packet::new_unchecked(l4b).translate_echo(
                t,
                0,
                t4.src_port,
                checksum::pseudo_header_v6(src6, dst6, nh::ICMPV6, upper_len as u32),
                0,
                partial,
            ),
        };
    }

    let (ident, mf, frag_offset) = match chain.frag {
        // RFC 7915 §5.1.1: low-order 16 bits of the Identification, MF and
        // offset copied, DF clear.
        Some(f) => (f.ident as u16, f.more, f.offset),
        None if df => (0, false, 0),
        None => (fragment_id(t4.src, t4.dst, l4_sum, total4 as u16), false, 0),
    };
    let proto4 = if chain.upper == nh::ICMPV6 {
        proto::ICMP
    } else {
        chain.upper
    };
    let new_start = l4_abs - 20;
    write_v4_header(
        &mut buf[new_start..l4_abs],
        &V4Header {
            tos,
            total_len: total4 as u16,
            ident,
            df,
            mf,
            frag_offset,
            ttl,
            protocol: proto4,
            src: t4.src,
            dst: t4.dst,
        },
    );
    Ok(Verdict::Forward {
        start: new_start,
        len: total4,
        fragment_mtu,
    })
}

/// RFC 7915 §5.1 / §5.1.1 for a translated IPv4 packet (or GSO segment) of
/// `size4` bytes: DF is set above 1260 bytes unless the IPv6 packet was a
/// fragment, and a packet above the IPv4 MTU is either fragmented (DF clear:
/// the MTU to cut to) or answered with Packet Too Big (`Err`).
fn df_and_mtu(
    size4: usize,
    fragmented: bool,
    cfg: &Config,
) -> Result<(bool, Option<u16>), Verdict> {
    let df = !fragmented && size4 > 1260;
    if size4 <= cfg.ipv4_mtu as usize {
        return Ok((df, None));
    }
    if df {
        let mtu = (cfg.ipv4_mtu as u32 + 20).max(1280);
        return Err(Verdict::Icmp {
            error: IcmpError::PacketTooBig { mtu },
            reason: DropReason::PacketTooBig,
        });
    }
    Ok((df, Some(cfg.ipv4_mtu)))
}

/// RFC 7915 §5.5 for a protocol without ports (GRE, ESP, SCTP, DCCP, ...):
/// the addresses come from [`Mapper::map_addrs_6to4`] (a 1:1 mapping; port
/// NAPT refuses with `unsupported_protocol`), the protocol number is kept,
/// DCCP's pseudo-header checksum is adjusted, the payload is not touched.
#[allow(clippy::too_many_arguments)]
fn translate_other<M: Mapper + ?Sized>(
    buf: &mut [u8],
    start: usize,
    total: usize,
    chain: &HeaderChain,
    tos: u8,
    ttl: u8,
    cfg: &Config,
    m: &mut M,
) -> Result<Verdict, DropReason> {
    let (src6, dst6) = {
        let ip = ipv6::Packet::new_unchecked(&buf[start..start + total]);
        (ip.src_addr(), ip.dst_addr())
    };
    let meta = FlowMeta {
        role: Role::Outer,
        tcp_flags: 0,
        fragment: chain.frag.map(|f| FragMeta {
            ident: f.ident,
            offset: f.offset,
            more: f.more,
        }),
        len: total,
    };
    let (src4, dst4) = m.map_addrs_6to4(src6, dst6, &meta)?;
    // As for every packet: never from or to an out-of-scope IPv4 address.
    check_v4_scope(&src4, &dst4)?;
    // Sizes, DF and MTU as for every packet (RFC 7915 §5.1, §5.1.1).
    let upper_len = total - chain.upper_offset;
    let total4 = upper_len + 20;
    if total4 > 65535 {
        return Err(DropReason::BadLength);
    }
    let (df, fragment_mtu) = match df_and_mtu(total4, chain.frag.is_some(), cfg) {
        Ok(x) => x,
        Err(too_big) => return Ok(too_big),
    };
    let l4_abs = start + chain.upper_offset;
    if chain.frag.is_none_or(|f| f.is_first()) {
        l4::adjust_portless_checksum(
            chain.upper,
            &mut buf[l4_abs..start + total],
            checksum::addr_sum_v6(src6, dst6),
            checksum::addr_sum_v4(src4, dst4),
        );
    }
    let (ident, mf, frag_offset) = match chain.frag {
        Some(f) => (f.ident as u16, f.more, f.offset),
        None if df => (0, false, 0),
        None => (fragment_id(src4, dst4, 0, total4 as u16), false, 0),
    };
    let new_start = l4_abs - 20;
    write_v4_header(
        &mut buf[new_start..l4_abs],
        &V4Header {
            tos,
            total_len: total4 as u16,
            ident,
            df,
            mf,
            frag_offset,
            ttl,
            protocol: chain.upper,
            src: src4,
            dst: dst4,
        },
    );
    Ok(Verdict::Forward {
        start: new_start,
        len: total4,
        fragment_mtu,
    })
}

/// How much of its datagram an outer packet's transport bytes are (for
/// [`l4::lengths_agree`]).
pub(crate) fn extent(fragmented: bool, off: Offload) -> l4::Extent {
    if fragmented {
        l4::Extent::FirstFragment
    } else if off.gso_size != 0 {
        l4::Extent::Gso
    } else {
        l4::Extent::Whole
    }
}

/// Length of one segment (transport header + `gso_size`) of a GSO
/// super-packet, or `None` when the packet is not GSO or is not longer than
/// one segment.
pub(crate) fn gso_segment_len(l4b: &[u8], proto_num: u8, off: Offload) -> Option<usize> {
    if off.gso_size == 0 {
        return None;
    }
    let hdr = match proto_num {
        proto::TCP if l4b.len() >= 20 => ((l4b[12] >> 4) as usize * 4).max(20),
        proto::UDP => 8,
        _ => return None,
    };
    let seg = hdr + off.gso_size as usize;
    (l4b.len() > seg).then_some(seg)
}

/// RFC 7915 §5.2–5.4: an ICMPv6 error becomes an ICMPv4 error whose quoted
/// packet is translated too. Output is at most 576 bytes (RFC 1812
/// §4.3.2.3), and exactly that when the quote is long enough.
#[allow(clippy::too_many_arguments)]
fn icmp_error<M: Mapper + ?Sized>(
    buf: &mut [u8],
    start: usize,
    total: usize,
    chain: &HeaderChain,
    tos: u8,
    ttl: u8,
    cfg: &Config,
    m: &mut M,
) -> Result<Verdict, DropReason> {
    let icmp_abs = start + chain.upper_offset;
    let msg = &buf[icmp_abs..start + total];
    // RFC 7915 §5: the checksum is evaluated before translation, so a
    // corrupt error is not laundered into a valid one.
    let (router, dst) = {
        let ip = ipv6::Packet::new_unchecked(&buf[start..]);
        (ip.src_addr(), ip.dst_addr())
    };
    let sum = checksum::pseudo_header_v6(router, dst, nh::ICMPV6, msg.len() as u32);
    if checksum::fold(checksum::accumulate(sum, msg)) != 0xffff {
        return Err(DropReason::BadChecksum);
    }
    let h = icmp_wire::Packet::new_unchecked(msg);
    let (t, code, rest) = (h.msg_type(), h.code(), h.rest());
    let (t4, c4, rest_kind) = match icmp::map_v6_to_v4(t, code, rest)? {
        Mapped::Error {
            msg_type,
            code,
            rest,
        } => (msg_type, code, rest),
        Mapped::Echo { .. } => return Err(DropReason::IcmpUntranslatableType),
    };
    // Copy the body (quoted packet + any RFC 4884 extension) aside.
    let (scratch, body_len) = icmp::copy_body(msg);
    let body = &scratch[..body_len];

    // RFC 4884: a non-zero length (64-bit words) marks the extension start.
    let ext_words = if t == v6::DEST_UNREACH || t == v6::TIME_EXCEEDED {
        h.v6_length()
    } else {
        0
    };
    let (quoted, extension) = icmp::split_extension(body, ext_words, 8);

    // Output layout: [IPv4 20][ICMP 8][quoted, translated][pad][extension].
    let new_start = icmp_abs - 20;
    let out_body = new_start + 28;
    let room = (buf.len() - out_body).min(icmp::MAX_ICMPV4_ERROR - 28);
    let out = &mut buf[out_body..out_body + room];
    // RFC 1812 §4.3.2.3: as much of the quoted packet as fits. It is handed
    // over whole (its translation is at least 20 bytes shorter, so cutting
    // the IPv6 original to `room` would leave bytes unused); inner_6to4 cuts
    // the translation to the budget, which leaves room for an RFC 4884
    // extension when there is one.
    let budget = icmp::quote_budget(room, extension.len(), 4);
    let (qlen, map) = icmp::inner_6to4(quoted, &mut out[..budget], m)?;
    // RFC 6146 §3.4 for errors: the quoted packet's tuple drives the outer
    // addresses (below); those must be in scope like any packet's. Only the
    // outer header is checked: the quoted packet's mapped addresses are the
    // same two, swapped.
    check_v4_scope(&map.src, &map.dst)?;
    // RFC 4884 §5.1: padded to 128 bytes, 32-bit words on IPv4.
    let (body_out, length_attr) = icmp::append_extension(out, qlen, extension, 4);

    let rest4: u32 = match rest_kind {
        Rest::Mtu => icmp::ptb_mtu_v6_to_v4(rest, cfg.ipv4_mtu, cfg.ipv6_link_mtu) as u32,
        Rest::Pointer(p) => (p as u32) << 24,
        Rest::Unused => (length_attr as u32) << 16,
    };
    let icmp_len = 8 + body_out;
    let mut h =
        icmp_wire::Packet::new_unchecked(&mut buf[new_start + 20..new_start + 20 + icmp_len]);
    h.set_msg_type(t4);
    h.set_code(c4);
    h.set_rest(rest4);
    h.fill_checksum(0);
    let total4 = 20 + icmp_len;
    // RFC 6146 §3.4 for errors: the quoted packet's tuple drives the outer
    // addresses: to its source (the IPv4 peer), from its destination (ours)
    // — or, for a stateless mapping, from the router's own translation
    // (RFC 7915 §5.1, RFC 6791).
    let src4 = m.icmp_error_source_6to4(router, map.dst);
    write_v4_header(
        &mut buf[new_start..new_start + 20],
        &V4Header {
            tos,
            total_len: total4 as u16,
            ident: 0,
            df: false,
            mf: false,
            frag_offset: 0,
            ttl,
            protocol: proto::ICMP,
            src: src4,
            dst: map.src,
        },
    );
    Ok(Verdict::Forward {
        start: new_start,
        len: total4,
        fragment_mtu: None,
    })
}
