//! ICMP translation: type/code tables (RFC 7915 §4.2, §5.2), Parameter
//! Problem pointers (Figures 3 and 6), Packet Too Big / Fragmentation Needed
//! MTU arithmetic, and the packet quoted inside an ICMP error (§4.3, §5.3)
//! with RFC 4884 extensions (§4.4, §5.4).

use super::{FlowMeta, L4Proto, Mapper, Role, Tuple};
use crate::verdict::DropReason;
use crate::wire::icmp::{self as icmp_wire, v4, v6};
use crate::wire::{checksum, ipv6, l4, proto};
use core::net::{Ipv4Addr, Ipv6Addr};

/// RFC 1191 §7 MTU plateaus, largest first.
pub const RFC1191_PLATEAUS: [u16; 11] = [
    65535, 32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68,
];

/// Largest ICMPv6 error the translator emits (RFC 4443 §2.4(c): must not
/// exceed the minimum IPv6 MTU).
pub const MAX_ICMPV6_ERROR: usize = 1280;
/// Largest ICMPv4 error the translator emits (RFC 1812 §4.3.2.3).
pub const MAX_ICMPV4_ERROR: usize = 576;

/// What an ICMP message becomes in the other family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapped {
    /// Echo request/reply: new type, code 0; identifier carries the "port".
    Echo { msg_type: u8 },
    /// An error: new type/code, and the new 4-byte rest-of-header word
    /// (MTU or pointer), computed by the caller from [`Rest`].
    Error { msg_type: u8, code: u8, rest: Rest },
}

/// How the rest-of-header word of an error is rebuilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rest {
    /// Unused (zero), keeping the RFC 4884 length octet, converted.
    Unused,
    /// Packet Too Big / Fragmentation Needed: MTU to be computed.
    Mtu,
    /// Parameter Problem with this (already mapped) pointer.
    Pointer(u8),
}

/// RFC 7915 §4.2: ICMPv4 type/code → ICMPv6. `rest` is the ICMPv4
/// rest-of-header word (for the Parameter Problem pointer).
pub fn map_v4_to_v6(msg_type: u8, code: u8, rest: u32) -> Result<Mapped, DropReason> {
    use DropReason::{IcmpUntranslatableCode as BadCode, IcmpUntranslatableType as BadType};
    let err = |t, c| {
        Ok(Mapped::Error {
            msg_type: t,
            code: c,
            rest: Rest::Unused,
        })
    };
    match msg_type {
        v4::ECHO_REQUEST => Ok(Mapped::Echo {
            msg_type: v6::ECHO_REQUEST,
        }),
        v4::ECHO_REPLY => Ok(Mapped::Echo {
            msg_type: v6::ECHO_REPLY,
        }),
        v4::DEST_UNREACH => match code {
            // Net/host unreachable, source route failed, and the unknown /
            // isolated / TOS family: "No route to destination".
            0 | 1 | 5 | 6 | 7 | 8 | 11 | 12 => err(v6::DEST_UNREACH, 0),
            // Protocol unreachable: Parameter Problem, unrecognized Next
            // Header, pointer to the Next Header field (6).
            2 => Ok(Mapped::Error {
                msg_type: v6::PARAM_PROBLEM,
                code: 1,
                rest: Rest::Pointer(6),
            }),
            3 => err(v6::DEST_UNREACH, 4),
            4 => Ok(Mapped::Error {
                msg_type: v6::PACKET_TOO_BIG,
                code: 0,
                rest: Rest::Mtu,
            }),
            // Administratively prohibited family, precedence cutoff.
            9 | 10 | 13 | 15 => err(v6::DEST_UNREACH, 1),
            // 14 host precedence violation, and unknown codes: drop.
            _ => Err(BadCode),
        },
        v4::TIME_EXCEEDED => match code {
            0 | 1 => err(v6::TIME_EXCEEDED, code),
            _ => Err(BadCode),
        },
        v4::PARAM_PROBLEM => match code {
            0 | 2 => {
                let ptr = (rest >> 24) as u8;
                let p6 = pointer_v4_to_v6(ptr).ok_or(DropReason::IcmpUntranslatablePointer)?;
                Ok(Mapped::Error {
                    msg_type: v6::PARAM_PROBLEM,
                    code: 0,
                    rest: Rest::Pointer(p6),
                })
            }
            _ => Err(BadCode),
        },
        // Source quench, redirect, router advert/solicit, timestamp,
        // information, address mask, and anything unknown: drop.
        _ => Err(BadType),
    }
}

/// RFC 7915 §5.2: ICMPv6 type/code → ICMPv4.
pub fn map_v6_to_v4(msg_type: u8, code: u8, rest: u32) -> Result<Mapped, DropReason> {
    use DropReason::{IcmpUntranslatableCode as BadCode, IcmpUntranslatableType as BadType};
    let err = |t, c| {
        Ok(Mapped::Error {
            msg_type: t,
            code: c,
            rest: Rest::Unused,
        })
    };
    match msg_type {
        v6::ECHO_REQUEST => Ok(Mapped::Echo {
            msg_type: v4::ECHO_REQUEST,
        }),
        v6::ECHO_REPLY => Ok(Mapped::Echo {
            msg_type: v4::ECHO_REPLY,
        }),
        v6::DEST_UNREACH => match code {
            // No route, beyond scope of source, address unreachable.
            0 | 2 | 3 => err(v4::DEST_UNREACH, 1),
            // Administratively prohibited -> communication admin. filtered.
            1 => err(v4::DEST_UNREACH, 10),
            4 => err(v4::DEST_UNREACH, 3),
            _ => Err(BadCode),
        },
        v6::PACKET_TOO_BIG => Ok(Mapped::Error {
            msg_type: v4::DEST_UNREACH,
            code: v4::CODE_FRAG_NEEDED,
            rest: Rest::Mtu,
        }),
        v6::TIME_EXCEEDED => match code {
            0 | 1 => err(v4::TIME_EXCEEDED, code),
            _ => Err(BadCode),
        },
        v6::PARAM_PROBLEM => match code {
            0 => {
                let p4 = pointer_v6_to_v4(rest).ok_or(DropReason::IcmpUntranslatablePointer)?;
                Ok(Mapped::Error {
                    msg_type: v4::PARAM_PROBLEM,
                    code: 0,
                    rest: Rest::Pointer(p4),
                })
            }
            // Unrecognized Next Header -> Protocol Unreachable.
            1 => err(v4::DEST_UNREACH, 2),
            _ => Err(BadCode),
        },
        // MLD, ND, router renumbering, node information and unknown
        // informational or error types: single-hop or untranslatable.
        _ => Err(BadType),
    }
}

/// RFC 7915 §4.2 Figure 3: IPv4 header pointer → IPv6 header pointer.
pub fn pointer_v4_to_v6(p: u8) -> Option<u8> {
    match p {
        0 => Some(0),
        1 => Some(1),
        2 | 3 => Some(4),
        8 => Some(7),
        9 => Some(6),
        12..=15 => Some(8),
        16..=19 => Some(24),
        _ => None,
    }
}

/// RFC 7915 §5.2 Figure 6: IPv6 header pointer → IPv4 header pointer.
pub fn pointer_v6_to_v4(p: u32) -> Option<u8> {
    match p {
        0 => Some(0),
        1 => Some(1),
        4 | 5 => Some(2),
        6 => Some(9),
        7 => Some(8),
        8..=23 => Some(12),
        24..=39 => Some(16),
        _ => None,
    }
}

/// RFC 7915 §4.2: the MTU of an ICMPv6 Packet Too Big translated from an
/// ICMPv4 Fragmentation Needed carrying `advertised` (0 from pre-RFC 1191
/// routers: the greatest plateau below the quoted packet's Total Length).
/// minimum(advertised + 20, IPv6 next-hop MTU, IPv4 next-hop MTU + 20), and
/// never below the IPv6 minimum MTU of 1280 (a smaller value makes IPv6
/// hosts ignore it, RFC 8021; packets of ≤ 1280 translate with DF clear).
pub fn ptb_mtu_v4_to_v6(advertised: u16, inner_total_len: u16, v6_mtu: u16, v4_mtu: u16) -> u32 {
    let adv = if advertised == 0 {
        RFC1191_PLATEAUS
            .iter()
            .copied()
            .find(|&p| p < inner_total_len)
            .unwrap_or(68)
    } else {
        advertised
    };
    let m = (adv as u32 + 20).min(v6_mtu as u32).min(v4_mtu as u32 + 20);
    m.max(1280)
}

/// RFC 7915 §5.2: the MTU of an ICMPv4 Fragmentation Needed translated from
/// an ICMPv6 Packet Too Big: minimum(advertised − 20, IPv4 next-hop MTU,
/// IPv6 next-hop MTU − 20), clamped to 16 bits and at least 68.
pub fn ptb_mtu_v6_to_v4(advertised: u32, v4_mtu: u16, v6_mtu: u16) -> u16 {
    let m = advertised
        .saturating_sub(20)
        .min(v4_mtu as u32)
        .min((v6_mtu as u32).saturating_sub(20));
    m.clamp(68, 65535) as u16
}

/// Largest ICMP error body (quoted packet + RFC 4884 extension) the
/// translator looks at; anything past it is dropped with the extension.
pub(crate) const MAX_ERROR_BODY: usize = 1536;

/// Copies an ICMP error's body (after the 8-byte header) aside, because its
/// translation is written over the same bytes.
pub(crate) fn copy_body(msg: &[u8]) -> ([u8; MAX_ERROR_BODY], usize) {
    let mut scratch = [0u8; MAX_ERROR_BODY];
    let body = msg.get(8..).unwrap_or_default();
    let n = body.len().min(MAX_ERROR_BODY);
    scratch[..n].copy_from_slice(&body[..n]);
    (scratch, n)
}

/// RFC 4884 §4: splits an error body into the original datagram and the
/// extension, given the length attribute in `unit`-byte words (4 for
/// ICMPv4, 8 for ICMPv6). Zero, or a length past the body, means no
/// extension.
pub(crate) fn split_extension(body: &[u8], words: u8, unit: usize) -> (&[u8], &[u8]) {
    let at = words as usize * unit;
    if words != 0 && at < body.len() {
        body.split_at(at)
    } else {
        (body, &[][..])
    }
}

/// How many of the `room` body bytes an ICMP error (under its 576 / 1280
/// byte cap) gives the translated quoted datagram, when an RFC 4884
/// extension of `ext_len` bytes is to follow it in `unit`-byte words (4 for
/// ICMPv4, 8 for ICMPv6). Without an extension: all of `room`. With one: the
/// quote is cut to leave room for the extension, at a word boundary so a
/// full quote needs no padding. When not even the 128-byte minimum quote
/// (RFC 4884 §5.1) and the extension fit, all of `room`, and
/// [`append_extension`] leaves the extension out.
pub(crate) fn quote_budget(room: usize, ext_len: usize, unit: usize) -> usize {
    if ext_len == 0 {
        return room;
    }
    match room.checked_sub(ext_len) {
        // 128 is a multiple of both units: rounding down stays >= 128.
        Some(q) if q >= 128 => q / unit * unit,
        _ => room,
    }
}

/// RFC 4884 §5.1: after the translated datagram (`qlen` bytes of `out`),
/// pads to at least 128 bytes and a multiple of `unit`, then appends the
/// extension. Returns the new body length and the length attribute; when
/// the extension does not fit it is left out (attribute 0).
pub(crate) fn append_extension(
    out: &mut [u8],
    qlen: usize,
    ext: &[u8],
    unit: usize,
) -> (usize, u8) {
    if ext.is_empty() {
        return (qlen, 0);
    }
    let padded = qlen.max(128).div_ceil(unit) * unit;
    if padded + ext.len() > out.len() {
        return (qlen, 0);
    }
    out[qlen..padded].fill(0);
    out[padded..padded + ext.len()].copy_from_slice(ext);
    (padded + ext.len(), (padded / unit) as u8)
}

/// RFC 4443 §2.4(e) / RFC 1812 §4.3.2.7: when an ICMP error must not be
/// sent (the packet is itself an ICMP error, or a non-initial fragment),
/// the would-be error becomes a plain counted drop.
pub(crate) fn error_or_drop(
    suppress: bool,
    error: crate::verdict::IcmpError,
    reason: DropReason,
) -> crate::verdict::Verdict {
    if suppress {
        crate::verdict::Verdict::Drop(reason)
    } else {
        crate::verdict::Verdict::Icmp { error, reason }
    }
}

/// What the mapping is told about a packet quoted in an ICMP error: look
/// up only (RFC 6146 §3.4).
fn inner_meta(len: usize) -> FlowMeta {
    FlowMeta {
        role: Role::IcmpErrorInner,
        tcp_flags: 0,
        fragment: None,
        len,
    }
}

/// Maps the tuple of a packet quoted in an ICMP error. `inner` is the quoted
/// packet's tuple as it reads in its own header; it is swapped so it reads in
/// the error's direction (RFC 6146 §3.4), looked up, and swapped back.
/// `other`: a protocol without ports, mapped by address only
/// ([`Mapper::map_addrs_6to4`]).
fn map_inner_6to4<M: Mapper + ?Sized>(
    m: &mut M,
    inner: &Tuple<Ipv6Addr>,
    len: usize,
    other: bool,
) -> Result<Tuple<Ipv4Addr>, DropReason> {
    let meta = inner_meta(len);
    let swapped = inner.reversed();
    let mapped = if other {
        m.map_addrs_6to4(swapped.src, swapped.dst, &meta)
            .map(|(src, dst)| Tuple {
                proto: inner.proto,
                src,
                src_port: 0,
                dst,
                dst_port: 0,
            })
    } else {
        m.map_6to4(&swapped, &meta)
    };
    mapped
        .map(|t| t.reversed())
        .map_err(|_| DropReason::IcmpBadInner)
}

fn map_inner_4to6<M: Mapper + ?Sized>(
    m: &mut M,
    inner: &Tuple<Ipv4Addr>,
    len: usize,
    other: bool,
) -> Result<Tuple<Ipv6Addr>, DropReason> {
    let meta = inner_meta(len);
    let swapped = inner.reversed();
    let mapped = if other {
        m.map_addrs_4to6(swapped.src, swapped.dst, &meta)
            .map(|(src, dst)| Tuple {
                proto: inner.proto,
                src,
                src_port: 0,
                dst,
                dst_port: 0,
            })
    } else {
        m.map_4to6(&swapped, &meta)
    };
    mapped
        .map(|t| t.reversed())
        .map_err(|_| DropReason::IcmpBadInner)
}

/// A protocol without ports (RFC 7915 §4.5/§5.5 "other"): quoted packets
/// of it are mapped by address only ([`Mapper::map_addrs_6to4`]).
fn is_other(proto_num: u8) -> bool {
    !matches!(
        proto_num,
        proto::TCP | proto::UDP | proto::ICMP | proto::ICMPV6
    )
}

/// Reads the ports (or echo identifier) of a quoted transport header.
/// Returns the protocol, (src, dst) ports, and whether it is an ICMP error.
fn inner_l4(proto_num: u8, l4b: &[u8], icmp_v6: bool) -> Result<(L4Proto, u16, u16), DropReason> {
    if l4b.len() < 8 {
        // RFC 792 quotes at least 8 bytes of the datagram.
        return Err(DropReason::IcmpBadInner);
    }
    let ports = l4::Ports::new_unchecked(l4b);
    match proto_num {
        proto::TCP => Ok((L4Proto::Tcp, ports.src_port(), ports.dst_port())),
        proto::UDP => Ok((L4Proto::Udp, ports.src_port(), ports.dst_port())),
        p if (p == proto::ICMP && !icmp_v6) || (p == proto::ICMPV6 && icmp_v6) => {
            let echo = icmp_wire::Packet::new_unchecked(l4b);
            let t = echo.msg_type();
            let is_echo = if icmp_v6 {
                t == v6::ECHO_REQUEST || t == v6::ECHO_REPLY
            } else {
                t == v4::ECHO_REQUEST || t == v4::ECHO_REPLY
            };
            if !is_echo {
                // RFC 7915 §4.3/§5.3: an ICMP error never carries an error.
                return Err(DropReason::IcmpErrorInError);
            }
            let id = echo.ident();
            Ok((L4Proto::Icmp, id, id))
        }
        _ => Err(DropReason::IcmpBadInner),
    }
}

/// Writes the quoted transport header's new ports / identifier and patches
/// its checksum when the checksum field is inside the quoted bytes, with
/// the same rewrite as the packet itself ([`l4::Ports::translate`],
/// [`icmp_wire::Packet::translate_echo`]). `old_sum`/`new_sum` are the
/// pseudo-header sums (or address sums) before and after; `echo_id` is the
/// mapped identifier of an echo.
#[allow(clippy::too_many_arguments)]
fn rewrite_inner_l4(
    l4b: &mut [u8],
    proto_in: u8,
    proto_out: u8,
    old_sum: u32,
    new_sum: u32,
    new_src_port: u16,
    new_dst_port: u16,
    echo_id: u16,
) {
    match proto_in {
        // No ports: only DCCP's pseudo-header checksum follows the addresses.
        p if is_other(p) => l4::adjust_portless_checksum(p, l4b, old_sum, new_sum),
        proto::TCP | proto::UDP => {
            l4::Ports::new_unchecked(l4b).translate(
                proto_in,
                new_src_port,
                new_dst_port,
                old_sum,
                new_sum,
                false,
            );
        }
        _ => {
            // ICMP echo: type changes, identifier changes, and the
            // pseudo-header is added (v4→v6) or removed (v6→v4).
            let mut echo = icmp_wire::Packet::new_unchecked(l4b);
            let t = match (proto_out, echo.msg_type()) {
                (proto::ICMPV6, v4::ECHO_REQUEST) => v6::ECHO_REQUEST,
                (proto::ICMPV6, _) => v6::ECHO_REPLY,
                (_, v6::ECHO_REQUEST) => v4::ECHO_REQUEST,
                _ => v4::ECHO_REPLY,
            };
            let code = echo.code();
            echo.translate_echo(t, code, echo_id, old_sum, new_sum, false);
        }
    }
}

/// RFC 7915 §5.3: translates the IPv6 packet quoted in an ICMPv6 error
/// (`inner`, possibly truncated) into `out` as IPv4, cut to `out`'s length.
/// Returns the number of bytes written and the mapped tuple (in the quoted
/// packet's direction).
pub(crate) fn inner_6to4<M: Mapper + ?Sized>(
    inner: &[u8],
    out: &mut [u8],
    m: &mut M,
) -> Result<(usize, Tuple<Ipv4Addr>), DropReason> {
    if inner.len() < ipv6::HEADER_LEN || inner[0] >> 4 != 6 {
        return Err(DropReason::IcmpBadInner);
    }
    let ip = ipv6::Packet::new_unchecked(inner);
    let claimed = ip.total_len();
    let end = claimed.min(inner.len());
    let chain = ipv6::walk_chain_within(inner, end).map_err(|_| DropReason::IcmpBadInner)?;
    if chain.frag.is_some_and(|f| !f.is_first()) {
        return Err(DropReason::IcmpBadInner);
    }
    let l4 = &inner[chain.upper_offset..end];
    let other = is_other(chain.upper);
    let (l4p, sport, dport) = if other {
        if l4.len() < 8 {
            return Err(DropReason::IcmpBadInner);
        }
        (L4Proto::Udp, 0, 0)
    } else {
        inner_l4(chain.upper, l4, true)?
    };
    let t6 = Tuple {
        proto: l4p,
        src: ip.src_addr(),
        src_port: sport,
        dst: ip.dst_addr(),
        dst_port: dport,
    };
    let t4 = map_inner_6to4(m, &t6, claimed, other)?;
    // As much of the transport part as `out` holds after the 20-byte
    // header (RFC 1812 §4.3.2.3: the caller sizes `out` to the cap), and at
    // least the 8 bytes with the ports.
    let room = out
        .len()
        .checked_sub(20)
        .filter(|&n| n >= 8)
        .ok_or(DropReason::NoBufferRoom)?;
    let l4 = &l4[..l4.len().min(room)];
    let written = 20 + l4.len();
    // Inner IPv4 header (RFC 7915 §5.1 rules, TTL copied, not decremented).
    let ext_len = chain.upper_offset - ipv6::HEADER_LEN;
    let total4 = (claimed - ext_len + 20 - ipv6::HEADER_LEN).min(65535) as u16;
    let proto4 = if chain.upper == proto::ICMPV6 {
        proto::ICMP
    } else {
        chain.upper
    };
    let (ident, df, mf, off) = match chain.frag {
        Some(f) => (f.ident as u16, false, f.more, f.offset),
        None => (0, total4 > 1260, false, 0),
    };
    super::six_to_four::write_v4_header(
        &mut out[..20],
        &super::six_to_four::V4Header {
            tos: ip.traffic_class(),
            total_len: total4,
            ident,
            df,
            mf,
            frag_offset: off,
            ttl: ip.hop_limit(),
            protocol: proto4,
            src: t4.src,
            dst: t4.dst,
        },
    );
    out[20..written].copy_from_slice(l4);
    // Checksum: TCP/UDP differ only by addresses; ICMP loses the pseudo-header.
    let upper_len = (claimed - chain.upper_offset) as u32;
    let (old_sum, new_sum) = if chain.upper == proto::ICMPV6 {
        (
            checksum::pseudo_header_v6(t6.src, t6.dst, proto::ICMPV6, upper_len),
            0,
        )
    } else {
        (
            checksum::addr_sum_v6(t6.src, t6.dst),
            checksum::addr_sum_v4(t4.src, t4.dst),
        )
    };
    rewrite_inner_l4(
        &mut out[20..written],
        chain.upper,
        proto4,
        old_sum,
        new_sum,
        t4.src_port,
        t4.dst_port,
        // In the error's direction the v6 side is the source: its mapped
        // port is the "source" of the swapped tuple, i.e. our dst here.
        if matches!(l4p, L4Proto::Icmp) && !other {
            t4.dst_port
        } else {
            0
        },
    );
    Ok((written, t4))
}

/// RFC 7915 §4.3: translates the IPv4 packet quoted in an ICMPv4 error into
/// `out` as IPv6, cut to `out`'s length.
pub(crate) fn inner_4to6<M: Mapper + ?Sized>(
    inner: &[u8],
    out: &mut [u8],
    m: &mut M,
) -> Result<(usize, Tuple<Ipv6Addr>), DropReason> {
    use crate::wire::ipv4;
    if inner.len() < ipv4::HEADER_LEN || inner[0] >> 4 != 4 {
        return Err(DropReason::IcmpBadInner);
    }
    let ip = ipv4::Packet::new_unchecked(inner);
    let hl = ip.header_len();
    if hl < ipv4::HEADER_LEN || hl > inner.len() {
        return Err(DropReason::IcmpBadInner);
    }
    let claimed = ip.total_len() as usize;
    let end = claimed.min(inner.len()).max(hl);
    if ip.frag_offset() != 0 {
        return Err(DropReason::IcmpBadInner);
    }
    let l4 = &inner[hl..end];
    let other = is_other(ip.protocol());
    let (l4p, sport, dport) = if other {
        if l4.len() < 8 {
            return Err(DropReason::IcmpBadInner);
        }
        (L4Proto::Udp, 0, 0)
    } else {
        inner_l4(ip.protocol(), l4, false)?
    };
    let t4 = Tuple {
        proto: l4p,
        src: ip.src_addr(),
        src_port: sport,
        dst: ip.dst_addr(),
        dst_port: dport,
    };
    let t6 = map_inner_4to6(m, &t4, claimed, other)?;
    let frag = ip.more_frags();
    let hdr = ipv6::HEADER_LEN + if frag { ipv6::FRAG_HEADER_LEN } else { 0 };
    // As much of the transport part as `out` holds after the header (RFC
    // 4443 §2.4(c): the caller sizes `out` to the cap), at least the ports.
    let room = out
        .len()
        .checked_sub(hdr)
        .filter(|&n| n >= 8)
        .ok_or(DropReason::NoBufferRoom)?;
    let l4 = &l4[..l4.len().min(room)];
    let written = hdr + l4.len();
    let nh = if ip.protocol() == proto::ICMP {
        proto::ICMPV6
    } else {
        ip.protocol()
    };
    let payload_len = claimed.saturating_sub(hl) + (hdr - ipv6::HEADER_LEN);
    super::four_to_six::write_v6_header(
        &mut out[..ipv6::HEADER_LEN],
        ip.tos(),
        payload_len.min(65535) as u16,
        if frag { ipv6::nh::FRAGMENT } else { nh },
        ip.ttl(),
        t6.src,
        t6.dst,
    );
    if frag {
        ipv6::emit_frag_header(&mut out[40..48], nh, 0, true, ip.ident() as u32);
    }
    out[hdr..written].copy_from_slice(l4);
    let upper_len = claimed.saturating_sub(hl) as u32;
    let (old_sum, new_sum) = if ip.protocol() == proto::ICMP {
        (
            0,
            checksum::pseudo_header_v6(t6.src, t6.dst, proto::ICMPV6, upper_len),
        )
    } else {
        (
            checksum::addr_sum_v4(t4.src, t4.dst),
            checksum::addr_sum_v6(t6.src, t6.dst),
        )
    };
    rewrite_inner_l4(
        &mut out[hdr..written],
        ip.protocol(),
        nh,
        old_sum,
        new_sum,
        t6.src_port,
        t6.dst_port,
        if matches!(l4p, L4Proto::Icmp) && !other {
            t6.src_port
        } else {
            0
        },
    );
    Ok((written, t6))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn plateau_for_mtu_zero() {
        // Quoted packet of 1500 bytes: greatest plateau below is 1492.
        assert_eq!(ptb_mtu_v4_to_v6(0, 1500, 1500, 1500), 1500);
        assert_eq!(ptb_mtu_v4_to_v6(0, 1500, 9000, 9000), 1512);
        assert_eq!(ptb_mtu_v4_to_v6(1400, 1500, 1500, 1500), 1420);
        assert_eq!(ptb_mtu_v4_to_v6(576, 1500, 1500, 1500), 1280);
    }

    #[test]
    fn v6_to_v4_mtu() {
        assert_eq!(ptb_mtu_v6_to_v4(1400, 1500, 1500), 1380);
        assert_eq!(ptb_mtu_v6_to_v4(9000, 1500, 1500), 1480);
        assert_eq!(ptb_mtu_v6_to_v4(0, 1500, 1500), 68);
    }
}
