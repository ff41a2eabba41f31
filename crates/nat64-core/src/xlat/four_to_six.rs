//! RFC 7915 §4: translating IPv4 packets into IPv6, in place.
//!
//! The IPv6 header (and a Fragment header when one is needed) is written in
//! front of the transport header, reaching into the caller's headroom: the
//! payload never moves.

use super::icmp::{self, Mapped, Rest};
use super::{check_v4_scope, Config, FlowMeta, FragMeta, L4Proto, Mapper, Offload, Role, Tuple};
use crate::verdict::{DropReason, IcmpError, Verdict};
use crate::wire::icmp::{self as icmp_wire, is_v4_error, v6};
use crate::wire::ipv4;
use crate::wire::ipv6::{self, nh};
use crate::wire::{checksum, l4, proto};
use core::net::Ipv6Addr;

/// Writes a 40-byte IPv6 header. Flow label is 0 (RFC 7915 §4.1).
pub(crate) fn write_v6_header(
    out: &mut [u8],
    tc: u8,
    payload_len: u16,
    next_header: u8,
    hop_limit: u8,
    src: Ipv6Addr,
    dst: Ipv6Addr,
) {
    let mut p = ipv6::Packet::new_unchecked(&mut out[..ipv6::HEADER_LEN]);
    p.set_version_tc_flow(tc, 0);
    p.set_payload_len(payload_len);
    p.set_next_header(next_header);
    p.set_hop_limit(hop_limit);
    p.set_src_addr(src);
    p.set_dst_addr(dst);
}

/// Translates the IPv4 packet at `buf[start..start + len]` to IPv6 in place
/// (RFC 7915 §4); `start` must leave [`super::HEADROOM`] bytes in front.
pub fn four_to_six<M: Mapper + ?Sized>(
    buf: &mut [u8],
    start: usize,
    len: usize,
    cfg: &Config,
    m: &mut M,
) -> Verdict {
    four_to_six_offload(buf, start, len, cfg, m, Offload::NONE)
}

/// [`four_to_six`] for a packet with TUN offload metadata (GSO super-packet,
/// partial checksum); see [`Offload`].
pub fn four_to_six_offload<M: Mapper + ?Sized>(
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
    let ip = ipv4::Packet::new_checked(pkt)?;
    if !ip.verify_checksum() {
        return Err(DropReason::BadIpv4Checksum);
    }
    let (src4, dst4) = (ip.src_addr(), ip.dst_addr());
    // RFC 6052 §5.1, RFC 1812 §5.3.7, RFC 3927 §7: a packet from or to an
    // out-of-scope IPv4 address (0/8, 127/8, 169.254/16, 224/4,
    // 255.255.255.255) is not accepted, whatever its protocol: this covers
    // the port-less path and ICMPv4 errors (outer header only; the packet
    // they quote is not checked) too. Before the TTL check, so no ICMP
    // error is ever addressed to one.
    check_v4_scope(&src4, &dst4)?;
    let hl = ip.header_len();
    let total = ip.total_len() as usize;
    let upper_len = total - hl;
    let first = ip.frag_offset() == 0;
    let is_frag = ip.is_fragment();
    let protocol = ip.protocol();
    let is_icmp_error = protocol == proto::ICMP && first && upper_len > 0 && is_v4_error(pkt[hl]);
    // RFC 1812 §4.3.2.7: no ICMP error about an ICMP error or about a
    // non-initial fragment.
    let no_icmp = is_icmp_error || !first;

    // RFC 7915 §4.1 TTL: decrement as a router; expiry answers Time Exceeded.
    if cfg.decrement_ttl && ip.ttl() <= 1 {
        return Ok(Classified::Answer(icmp::error_or_drop(
            no_icmp,
            IcmpError::TimeExceeded,
            DropReason::HopLimitExceeded,
        )));
    }
    // RFC 7915 §4.1: options are ignored, except an unexpired source route:
    // drop and answer Destination Unreachable / Source Route Failed.
    if ip.has_unexpired_source_route() {
        return Ok(Classified::Answer(icmp::error_or_drop(
            no_icmp,
            IcmpError::DestUnreachableV4 { code: 5 },
            DropReason::SourceRoute,
        )));
    }
    // RFC 7915 §4.5: TCP, UDP and ICMP are translated with their ports;
    // any other protocol at the IP layer alone (1:1 mappings only).
    let other = match protocol {
        proto::TCP | proto::UDP | proto::ICMP => false,
        // §4.2: IGMP is single-hop, silently dropped; ICMPv6 inside IPv4
        // would be read as ICMPv6 with a wrong checksum.
        IGMP | proto::ICMPV6 => return Err(DropReason::UnsupportedProtocol),
        _ => true,
    };
    if first && !other && upper_len < l4::min_header_len(protocol) {
        return Err(if is_frag {
            DropReason::FragmentTooSmall
        } else {
            DropReason::BadL4Header
        });
    }
    if protocol == proto::ICMP && is_frag {
        // ICMPv6 adds a pseudo-header with the full length: not adjustable
        // per fragment.
        return Err(DropReason::IcmpFragmented);
    }
    let ttl = if cfg.decrement_ttl {
        ip.ttl() - 1
    } else {
        ip.ttl()
    };
    let tc = if cfg.copy_tos { ip.tos() } else { 0 };
    let header = Header { hl, total, tc, ttl };
    if is_icmp_error {
        return Ok(Classified::IcmpError(header));
    }
    if other {
        return Ok(Classified::Other(header));
    }

    // RFC 6146 §3.4 determine the incoming tuple.
    let l4s = &pkt[hl..total];
    let mut udp_calc = false;
    if first && !l4::lengths_agree(protocol, l4s, super::six_to_four::extent(is_frag, off)) {
        // RFC 768 / RFC 9293 §3.1: a header whose lengths lie.
        return Err(DropReason::BadL4Header);
    }
    let (l4p, sport, dport, tcp_flags, echo6) = if !first {
        let p = if protocol == proto::TCP {
            L4Proto::Tcp
        } else {
            L4Proto::Udp
        };
        (p, 0, 0, 0, None)
    } else {
        let ports = l4::Ports::new_unchecked(l4s);
        match protocol {
            proto::TCP => (
                L4Proto::Tcp,
                ports.src_port(),
                ports.dst_port(),
                ports.tcp_flags(),
                None,
            ),
            proto::UDP => {
                if ports.udp_checksum() == 0 {
                    // RFC 7915 §4.5: zero-checksum IPv4 UDP.
                    match cfg.udp_zero_checksum {
                        super::UdpZeroChecksum::Drop => return Err(DropReason::UdpZeroChecksum),
                        super::UdpZeroChecksum::Calc if is_frag => {
                            return Err(DropReason::UdpZeroChecksumFragment)
                        }
                        super::UdpZeroChecksum::Calc => udp_calc = true,
                        super::UdpZeroChecksum::Forward => {}
                    }
                }
                (L4Proto::Udp, ports.src_port(), ports.dst_port(), 0, None)
            }
            _ => {
                let echo = icmp_wire::Packet::new_unchecked(l4s);
                let t = match icmp::map_v4_to_v6(echo.msg_type(), echo.code(), echo.rest())? {
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
        fragment: is_frag.then(|| FragMeta {
            ident: ip.ident() as u32,
            offset: ip.frag_offset(),
            more: ip.more_frags(),
        }),
        len: total,
    };
    let t4 = Tuple {
        proto: l4p,
        src: src4,
        src_port: sport,
        dst: dst4,
        dst_port: dport,
    };
    Ok(Classified::Flow(Incoming {
        header,
        tuple: t4,
        meta,
        echo: echo6,
        udp_calc,
    }))
}

/// RFC 7915 §4 in RFC 6146's order (Jool's `core.c`): [`classify`]
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
            let router = ipv4::Packet::new_unchecked(&buf[start..]).src_addr();
            return icmp_error(buf, start, h.hl, h.total, h.tc, h.ttl, router, cfg, m);
        }
        Classified::Other(h) => {
            return translate_other(buf, start, h.hl, h.total, h.tc, h.ttl, cfg, m)
        }
        Classified::Flow(inc) => inc,
    };
    // RFC 6146 §3.5 filtering and updating / §3.6 compute outgoing tuple.
    let t6 = m.map_4to6(&inc.tuple, &inc.meta)?;
    rewrite(buf, start, &inc, &t6, cfg, off)
}

/// What [`classify`] found in an IPv4 packet.
enum Classified {
    /// Refused before any mapping, with an ICMPv4 error for the source
    /// (RFC 7915 §4.1: TTL, source route); the packet is untouched.
    Answer(Verdict),
    /// An ICMPv4 error (RFC 7915 §4.2–§4.4): its quoted packet drives the
    /// mapping.
    IcmpError(Header),
    /// A protocol without ports (RFC 7915 §4.5): mapped by address.
    Other(Header),
    /// TCP, UDP or an ICMP echo with its incoming tuple.
    Flow(Incoming),
}

/// The IPv4 header facts every path needs.
struct Header {
    /// Header length (with options) and packet length.
    hl: usize,
    total: usize,
    /// Traffic Class to write (the TOS unless `copy_tos` is off), hop limit.
    tc: u8,
    ttl: u8,
}

/// RFC 6146 §3.4: the incoming tuple of a TCP/UDP/echo packet and what the
/// rewrite needs besides the outgoing tuple.
struct Incoming {
    header: Header,
    tuple: super::Tuple4,
    meta: FlowMeta,
    /// The ICMPv6 type of an echo (None: TCP or UDP).
    echo: Option<u8>,
    /// RFC 7915 §4.5: a zero UDP checksum to compute (`udp-zero-checksum =
    /// "calc"`).
    udp_calc: bool,
}

/// RFC 7915 §4.1 and §4.5 in place, from the incoming tuple `inc` and the
/// outgoing `t6`: the transport header's ports (or echo type and
/// identifier) and checksum, then the IPv6 header (and a Fragment header
/// when needed) in front of it, in the headroom. Sizes, the Fragment header
/// and MTU are judged first: a Fragmentation Needed answer leaves the
/// packet as it came.
#[inline(always)]
fn rewrite(
    buf: &mut [u8],
    start: usize,
    inc: &Incoming,
    t6: &super::Tuple6,
    cfg: &Config,
    off: Offload,
) -> Result<Verdict, DropReason> {
    let Header { hl, total, tc, ttl } = inc.header;
    let (src4, dst4, echo6, udp_calc) = (inc.tuple.src, inc.tuple.dst, inc.echo, inc.udp_calc);
    let pkt = &buf[start..start + total];
    let ip = ipv4::Packet::new_unchecked(pkt);
    let protocol = ip.protocol();
    let upper_len = total - hl;
    let first = ip.frag_offset() == 0;
    let is_frag = ip.is_fragment();
    // Sizes, Fragment header and MTU (RFC 7915 §4.1).
    let df = ip.dont_frag();
    let (ident, frag_off, more) = (ip.ident() as u32, ip.frag_offset(), ip.more_frags());
    // A GSO super-packet is judged by the segments the kernel will cut.
    let seg_upper = super::six_to_four::gso_segment_len(&pkt[hl..total], protocol, off);
    let is_gso = seg_upper.is_some();
    let seg_upper = seg_upper.unwrap_or(upper_len);
    let need_frag_hdr =
        is_frag || (!df && seg_upper + ipv6::HEADER_LEN > cfg.lowest_ipv6_mtu as usize);
    if is_gso && need_frag_hdr {
        return Err(DropReason::GsoNeedsFragmentation);
    }
    let hdr6 = ipv6::HEADER_LEN
        + if need_frag_hdr {
            ipv6::FRAG_HEADER_LEN
        } else {
            0
        };
    let total6 = hdr6 + upper_len;
    let payload6 = total6 - ipv6::HEADER_LEN;
    if payload6 > 65535 {
        return Err(DropReason::BadLength);
    }
    let fragment_mtu = match fragment_mtu(hdr6 + seg_upper, df, is_frag, cfg) {
        Ok(m) => m,
        Err(too_big) => return Ok(too_big),
    };
    let l4_abs = start + hl;
    let new_start = l4_abs.checked_sub(hdr6).ok_or(DropReason::NoBufferRoom)?;

    // Transport header (RFC 7915 §4.5).
    if first {
        let l4b = &mut buf[l4_abs..start + total];
        let partial = off.csum_partial;
        match echo6 {
            None if udp_calc && !partial => {
                let mut udp = l4::Ports::new_unchecked(l4b);
                udp.set_src_port(t6.src_port);
                udp.set_dst_port(t6.dst_port);
                udp.fill_udp_checksum(checksum::pseudo_header_v6(
                    t6.src,
                    t6.dst,
                    proto::UDP,
                    upper_len as u32,
                ));
            }
            None => {
                l4::Ports::new_unchecked(l4b).translate(
                    protocol,
                    t6.src_port,
                    t6.dst_port,
                    checksum::addr_sum_v4(src4, dst4),
                    checksum::addr_sum_v6(t6.src, t6.dst),
                    partial,
                );
            }
            // ICMPv6 adds a pseudo-header (RFC 4443 §2.3) ICMPv4 lacks.
            Some(t) => {
                icmp_wire::Packet::new_unchecked(l4b).translate_echo(
                    t,
                    0,
                    t6.dst_port,
                    0,
                    checksum::pseudo_header_v6(t6.src, t6.dst, nh::ICMPV6, upper_len as u32),
                    partial,
                );
            }
        }
    }

    let nh6 = if protocol == proto::ICMP {
        nh::ICMPV6
    } else {
        protocol
    };
    write_v6_header(
        &mut buf[new_start..new_start + ipv6::HEADER_LEN],
        tc,
        payload6 as u16,
        if need_frag_hdr { nh::FRAGMENT } else { nh6 },
        ttl,
        t6.src,
        t6.dst,
    );
    if need_frag_hdr {
        // RFC 7915 §4.1: Identification zero-extended, offset and M copied.
        ipv6::emit_frag_header(
            &mut buf[new_start + ipv6::HEADER_LEN..l4_abs],
            nh6,
            frag_off,
            more,
            ident,
        );
    }
    Ok(Verdict::Forward {
        start: new_start,
        len: total6,
        fragment_mtu,
    })
}

/// RFC 7915 §4.1 for a translated IPv6 packet (or GSO segment) of `size6`
/// bytes: DF clear (fragments included) and larger than lowest-ipv6-mtu is
/// cut to it; larger than the link MTU is cut to that when it may be, and
/// answered with Fragmentation Needed (`Err`) when DF forbids it.
fn fragment_mtu(
    size6: usize,
    df: bool,
    is_frag: bool,
    cfg: &Config,
) -> Result<Option<u16>, Verdict> {
    if !df && size6 > cfg.lowest_ipv6_mtu as usize {
        return Ok(Some(cfg.lowest_ipv6_mtu));
    }
    if size6 <= cfg.ipv6_link_mtu as usize {
        return Ok(None);
    }
    if df && !is_frag {
        return Err(Verdict::Icmp {
            error: IcmpError::FragmentationNeeded {
                mtu: cfg.ipv6_link_mtu.saturating_sub(20),
            },
            reason: DropReason::PacketTooBig,
        });
    }
    Ok(Some(cfg.ipv6_link_mtu))
}

/// IGMP's protocol number (RFC 7915 §4.2: dropped).
const IGMP: u8 = 2;

/// RFC 7915 §4.5 for a protocol without ports (GRE, ESP, SCTP, DCCP, ...):
/// the addresses come from [`Mapper::map_addrs_4to6`] (a 1:1 mapping; port
/// NAPT refuses with `unsupported_protocol`), the protocol number is kept,
/// DCCP's pseudo-header checksum is adjusted, the payload is not touched.
/// Sizes, the Fragment header and MTU follow §4.1 as for any packet.
#[allow(clippy::too_many_arguments)]
fn translate_other<M: Mapper + ?Sized>(
    buf: &mut [u8],
    start: usize,
    hl: usize,
    total: usize,
    tc: u8,
    ttl: u8,
    cfg: &Config,
    m: &mut M,
) -> Result<Verdict, DropReason> {
    let ip = ipv4::Packet::new_unchecked(&buf[start..start + total]);
    let (src4, dst4, protocol) = (ip.src_addr(), ip.dst_addr(), ip.protocol());
    let (df, is_frag) = (ip.dont_frag(), ip.is_fragment());
    let (ident, frag_off, more) = (ip.ident() as u32, ip.frag_offset(), ip.more_frags());
    let meta = FlowMeta {
        role: Role::Outer,
        tcp_flags: 0,
        fragment: is_frag.then_some(FragMeta {
            ident,
            offset: frag_off,
            more,
        }),
        len: total,
    };
    let (src6, dst6) = m.map_addrs_4to6(src4, dst4, &meta)?;
    let upper_len = total - hl;
    let need_frag_hdr =
        is_frag || (!df && upper_len + ipv6::HEADER_LEN > cfg.lowest_ipv6_mtu as usize);
    let hdr6 = ipv6::HEADER_LEN
        + if need_frag_hdr {
            ipv6::FRAG_HEADER_LEN
        } else {
            0
        };
    let total6 = hdr6 + upper_len;
    if total6 - ipv6::HEADER_LEN > 65535 {
        return Err(DropReason::BadLength);
    }
    let fragment_mtu = match fragment_mtu(total6, df, is_frag, cfg) {
        Ok(m) => m,
        Err(too_big) => return Ok(too_big),
    };
    let l4_abs = start + hl;
    let new_start = l4_abs.checked_sub(hdr6).ok_or(DropReason::NoBufferRoom)?;
    if frag_off == 0 {
        l4::adjust_portless_checksum(
            protocol,
            &mut buf[l4_abs..start + total],
            checksum::addr_sum_v4(src4, dst4),
            checksum::addr_sum_v6(src6, dst6),
        );
    }
    write_v6_header(
        &mut buf[new_start..new_start + ipv6::HEADER_LEN],
        tc,
        (total6 - ipv6::HEADER_LEN) as u16,
        if need_frag_hdr {
            nh::FRAGMENT
        } else {
            protocol
        },
        ttl,
        src6,
        dst6,
    );
    if need_frag_hdr {
        ipv6::emit_frag_header(
            &mut buf[new_start + ipv6::HEADER_LEN..l4_abs],
            protocol,
            frag_off,
            more,
            ident,
        );
    }
    Ok(Verdict::Forward {
        start: new_start,
        len: total6,
        fragment_mtu,
    })
}

/// RFC 7915 §4.2–4.4: an ICMPv4 error becomes an ICMPv6 error whose quoted
/// packet is translated too. Output is at most 1280 bytes (RFC 4443
/// §2.4(c)), and exactly that when the quote is long enough.
#[allow(clippy::too_many_arguments)]
fn icmp_error<M: Mapper + ?Sized>(
    buf: &mut [u8],
    start: usize,
    hl: usize,
    total: usize,
    tc: u8,
    ttl: u8,
    router: core::net::Ipv4Addr,
    cfg: &Config,
    m: &mut M,
) -> Result<Verdict, DropReason> {
    let icmp_abs = start + hl;
    let msg = &buf[icmp_abs..start + total];
    // RFC 7915 §4: the checksum is evaluated before translation, so a
    // corrupt error is not laundered into a valid one.
    if checksum::checksum(msg) != 0 {
        return Err(DropReason::BadChecksum);
    }
    let h = icmp_wire::Packet::new_unchecked(msg);
    let (t, code, rest) = (h.msg_type(), h.code(), h.rest());
    let (t6, c6, rest_kind) = match icmp::map_v4_to_v6(t, code, rest)? {
        Mapped::Error {
            msg_type,
            code,
            rest,
        } => (msg_type, code, rest),
        Mapped::Echo { .. } => return Err(DropReason::IcmpUntranslatableType),
    };
    let (scratch, body_len) = icmp::copy_body(msg);
    let body = &scratch[..body_len];
    // Total Length of the quoted packet, for the RFC 1191 plateau search.
    let inner_total = if body.len() >= ipv4::HEADER_LEN {
        ipv4::Packet::new_unchecked(body).total_len()
    } else {
        0
    };

    // RFC 4884: length (32-bit words) in byte 5 for Dest Unreach / Time
    // Exceeded; only those have a length octet on the IPv6 side too.
    let ext_words = if t6 == v6::DEST_UNREACH || t6 == v6::TIME_EXCEEDED {
        h.v4_length()
    } else {
        0
    };
    let (quoted, extension) = icmp::split_extension(body, ext_words, 4);

    // Output: [IPv6 40][ICMPv6 8][quoted, translated][pad][extension].
    let new_start = icmp_abs.checked_sub(40).ok_or(DropReason::NoBufferRoom)?;
    let out_body = new_start + 48;
    let room = buf
        .len()
        .saturating_sub(out_body)
        .min(icmp::MAX_ICMPV6_ERROR - 48);
    let out = &mut buf[out_body..out_body + room];
    // As much of the quoted packet as fits: inner_4to6 cuts its translation
    // (which grows by 20 bytes, 28 when it needs a Fragment header, less
    // any IPv4 options) to the budget, which leaves room for an RFC 4884
    // extension when there is one.
    let budget = icmp::quote_budget(room, extension.len(), 8);
    let (qlen, map) = icmp::inner_4to6(quoted, &mut out[..budget], m)?;
    // RFC 4884 §5.1: padded to 128 bytes, 64-bit words on IPv6.
    let (body_out, length_attr) = icmp::append_extension(out, qlen, extension, 8);
    let src6 = m.icmp_error_source_4to6(router)?;
    // Addressed to the quoted packet's source (our IPv6 client).
    let dst6 = map.src;
    let rest6: u32 = match rest_kind {
        Rest::Mtu => icmp::ptb_mtu_v4_to_v6(
            (rest & 0xffff) as u16,
            inner_total,
            cfg.ipv6_link_mtu,
            cfg.ipv4_mtu,
        ),
        Rest::Pointer(p) => p as u32,
        Rest::Unused => (length_attr as u32) << 24,
    };
    let icmp_len = 8 + body_out;
    let mut h =
        icmp_wire::Packet::new_unchecked(&mut buf[new_start + 40..new_start + 40 + icmp_len]);
    h.set_msg_type(t6);
    h.set_code(c6);
    h.set_rest(rest6);
    h.fill_checksum(checksum::pseudo_header_v6(
        src6,
        dst6,
        nh::ICMPV6,
        icmp_len as u32,
    ));
    write_v6_header(
        &mut buf[new_start..new_start + 40],
        tc,
        icmp_len as u16,
        nh::ICMPV6,
        ttl,
        src6,
        dst6,
    );
    Ok(Verdict::Forward {
        start: new_start,
        len: 40 + icmp_len,
        fragment_mtu: None,
    })
}
