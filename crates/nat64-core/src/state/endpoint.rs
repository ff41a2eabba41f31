//! The translator as a host (`none` mode, ADR 0009): packets addressed to
//! its own IPv4 or IPv6 address are not translated but answered, as Tayga
//! answers its `ipv4-addr` / `ipv6-addr`.
//!
//! * An echo request gets its echo reply, built in place (RFC 792 "Echo or
//!   Echo Reply Message", RFC 4443 §4.2): addresses swapped, type changed,
//!   checksum adjusted incrementally (RFC 1624), a fresh TTL.
//! * TCP and UDP get Port Unreachable (RFC 792 code 3, RFC 4443 §3.1 code
//!   4): no transport listens here.
//! * Other protocols get Protocol Unreachable (RFC 792 code 2) or, in
//!   IPv6, Parameter Problem "unrecognized Next Header" pointing at the
//!   field that named it (RFC 4443 §3.4 code 1).
//! * Anything else (ICMP errors, echo replies, non-first fragments) is
//!   dropped as [`DropReason::ToOwnAddress`]: no error about an error or a
//!   fragment (RFC 1812 §4.3.2.7, RFC 4443 §2.4(e)).

use crate::verdict::{DropReason, IcmpError, Verdict};
use crate::wire::icmp::{v4, v6};
use crate::wire::ipv4::{be16, put16};
use crate::wire::{checksum, ipv4, ipv6, proto};

/// TTL / Hop Limit of the replies the translator originates.
const REPLY_TTL: u8 = 64;

/// Answers the IPv4 packet at `buf[start..start + len]`, which is
/// addressed to the translator's own IPv4 address.
pub(crate) fn answer_v4(buf: &mut [u8], start: usize, len: usize) -> Verdict {
    match reply_v4(buf, start, len) {
        Ok(v) => v,
        Err(r) => Verdict::Drop(r),
    }
}

fn reply_v4(buf: &mut [u8], start: usize, len: usize) -> Result<Verdict, DropReason> {
    let pkt = start
        .checked_add(len)
        .and_then(|e| buf.get_mut(start..e))
        .ok_or(DropReason::NoBufferRoom)?;
    let ip = ipv4::Packet::new_checked(&*pkt)?;
    if !ip.verify_checksum() {
        return Err(DropReason::BadIpv4Checksum);
    }
    let hl = ip.header_len();
    let total = ip.total_len() as usize;
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    // Nothing is answered to a source no reply may go to (RFC 1812
    // §4.3.2.7 / §5.3.7).
    if crate::xlat::v4_out_of_scope(&src) {
        return Err(DropReason::OutOfScopeV4);
    }
    if ip.frag_offset() != 0 {
        return Err(DropReason::ToOwnAddress);
    }
    match ip.protocol() {
        proto::ICMP => {
            let msg = &pkt[hl..total];
            if msg.len() < 8 || msg[0] != v4::ECHO_REQUEST || ip.more_frags() {
                return Err(DropReason::ToOwnAddress);
            }
            if checksum::checksum(msg) != 0 {
                return Err(DropReason::BadChecksum);
            }
            // The reply: same header (options and all), addresses swapped.
            let c = be16(pkt, hl + 2);
            pkt[hl] = v4::ECHO_REPLY;
            put16(
                pkt,
                hl + 2,
                checksum::adjust_word(c, (v4::ECHO_REQUEST as u16) << 8, 0),
            );
            let mut out = ipv4::Packet::new_unchecked(&mut pkt[..]);
            out.set_src_addr(dst);
            out.set_dst_addr(src);
            out.set_ttl(REPLY_TTL);
            out.set_flags_and_offset(false, false, 0);
            out.fill_checksum();
            Ok(Verdict::Forward {
                start,
                len: total,
                fragment_mtu: None,
            })
        }
        proto::TCP | proto::UDP => Ok(Verdict::Icmp {
            error: IcmpError::DestUnreachableV4 { code: 3 },
            reason: DropReason::ToOwnAddress,
        }),
        _ => Ok(Verdict::Icmp {
            error: IcmpError::DestUnreachableV4 { code: 2 },
            reason: DropReason::ToOwnAddress,
        }),
    }
}

/// Answers the IPv6 packet at `buf[start..start + len]`, which is
/// addressed to one of the translator's own IPv6 addresses.
pub(crate) fn answer_v6(buf: &mut [u8], start: usize, len: usize) -> Verdict {
    match reply_v6(buf, start, len) {
        Ok(v) => v,
        Err(r) => Verdict::Drop(r),
    }
}

fn reply_v6(buf: &mut [u8], start: usize, len: usize) -> Result<Verdict, DropReason> {
    let pkt = start
        .checked_add(len)
        .and_then(|e| buf.get_mut(start..e))
        .ok_or(DropReason::NoBufferRoom)?;
    let ip = ipv6::Packet::new_checked(&*pkt)?;
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    // RFC 4443 §2.4(e): never answer an unspecified or multicast source
    // (found by the `siit` fuzz target).
    if crate::xlat::v6_not_for_translation(&src) {
        return Err(DropReason::NotForTranslation);
    }
    let total = ip.total_len();
    let chain = ipv6::walk_chain(&pkt[..total])?;
    if chain.frag.is_some() {
        return Err(DropReason::ToOwnAddress);
    }
    let at = chain.upper_offset;
    match chain.upper {
        proto::ICMPV6 => {
            let msg = &pkt[at..total];
            if msg.len() < 8 || msg[0] != v6::ECHO_REQUEST {
                return Err(DropReason::ToOwnAddress);
            }
            let sum = checksum::pseudo_header_v6(src, dst, proto::ICMPV6, msg.len() as u32);
            if checksum::fold(checksum::accumulate(sum, msg)) != 0xffff {
                return Err(DropReason::BadChecksum);
            }
            // Swapping source and destination leaves the pseudo-header sum
            // as it was: only the type word changes.
            let c = be16(pkt, at + 2);
            pkt[at] = v6::ECHO_REPLY;
            put16(
                pkt,
                at + 2,
                checksum::adjust_word(
                    c,
                    (v6::ECHO_REQUEST as u16) << 8,
                    (v6::ECHO_REPLY as u16) << 8,
                ),
            );
            let mut out = ipv6::Packet::new_unchecked(&mut pkt[..]);
            out.set_src_addr(dst);
            out.set_dst_addr(src);
            out.set_hop_limit(REPLY_TTL);
            Ok(Verdict::Forward {
                start,
                len: total,
                fragment_mtu: None,
            })
        }
        proto::TCP | proto::UDP => Ok(Verdict::Icmp {
            error: IcmpError::DestUnreachableV6 { code: 4 },
            reason: DropReason::ToOwnAddress,
        }),
        _ => Ok(Verdict::Icmp {
            error: IcmpError::ParameterProblem {
                code: 1,
                pointer: next_header_field(&pkt[..total], at) as u32,
            },
            reason: DropReason::ToOwnAddress,
        }),
    }
}

/// Offset of the Next Header field that names the header at `upper` (the
/// IPv6 header's own at 6, or the first byte of the last extension header).
fn next_header_field(pkt: &[u8], upper: usize) -> usize {
    let mut field = 6;
    let mut next = pkt[6];
    let mut at = ipv6::HEADER_LEN;
    // The chain was walked (and bounded) by `walk_chain` already.
    while at < upper {
        let Some(&len_byte) = pkt.get(at + 1) else {
            break;
        };
        field = at;
        let hdr_len = match next {
            44 => 8,
            51 => (len_byte as usize + 2) * 4,
            _ => (len_byte as usize + 1) * 8,
        };
        next = pkt[at];
        at += hdr_len;
    }
    field
}

#[cfg(test)]
mod test {
    use super::*;
    use etherparse::{IpNumber, Ipv4Header, PacketBuilder, SlicedPacket, TransportSlice};

    #[test]
    fn rfc792_echo_request_to_own_v4_gets_reply() {
        let mut pkt = Vec::new();
        PacketBuilder::ipv4([198, 51, 100, 7], [192, 0, 2, 1], 20)
            .icmpv4_echo_request(0x4242, 9)
            .write(&mut pkt, b"ping!")
            .unwrap();
        let mut buf = pkt.clone();
        let v = answer_v4(&mut buf, 0, pkt.len());
        let Verdict::Forward { start, len, .. } = v else {
            panic!("{v:?}")
        };
        let s = SlicedPacket::from_ip(&buf[start..start + len]).unwrap();
        let Some(etherparse::NetSlice::Ipv4(ip)) = &s.net else {
            panic!()
        };
        let h = ip.header().to_header();
        assert_eq!(h.source, [192, 0, 2, 1]);
        assert_eq!(h.destination, [198, 51, 100, 7]);
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        let Some(TransportSlice::Icmpv4(icmp)) = &s.transport else {
            panic!()
        };
        assert_eq!(
            icmp.icmp_type(),
            etherparse::Icmpv4Type::EchoReply(etherparse::IcmpEchoHeader { id: 0x4242, seq: 9 })
        );
        assert_eq!(icmp.payload(), b"ping!");
        // RFC 1071 over the whole message: a valid checksum sums to zero.
        assert_eq!(checksum::checksum(&buf[start + 20..start + len]), 0);
    }

    #[test]
    fn rfc4443_4_2_echo_request_to_own_v6_gets_reply() {
        let a: [u8; 16] = "2001:db8:1::5"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        let me: [u8; 16] = "2001:db8:ff::1"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets();
        let mut pkt = Vec::new();
        PacketBuilder::ipv6(a, me, 30)
            .icmpv6_echo_request(7, 1)
            .write(&mut pkt, b"hello")
            .unwrap();
        let mut buf = pkt.clone();
        let Verdict::Forward { start, len, .. } = answer_v6(&mut buf, 0, pkt.len()) else {
            panic!()
        };
        let out = &buf[start..start + len];
        let s = SlicedPacket::from_ip(out).unwrap();
        let Some(etherparse::NetSlice::Ipv6(ip)) = &s.net else {
            panic!()
        };
        assert_eq!(ip.header().source(), me);
        assert_eq!(ip.header().destination(), a);
        let Some(TransportSlice::Icmpv6(icmp)) = &s.transport else {
            panic!()
        };
        let want = icmp
            .header()
            .icmp_type
            .calc_checksum(me, a, icmp.payload())
            .unwrap();
        assert_eq!(icmp.checksum(), want);
        assert_eq!(
            icmp.icmp_type(),
            etherparse::Icmpv6Type::EchoReply(etherparse::IcmpEchoHeader { id: 7, seq: 1 })
        );
    }

    #[test]
    fn rfc792_udp_to_own_v4_is_port_unreachable_other_protocol_unreachable() {
        let mut pkt = Vec::new();
        PacketBuilder::ipv4([198, 51, 100, 7], [192, 0, 2, 1], 20)
            .udp(5000, 53)
            .write(&mut pkt, b"q")
            .unwrap();
        let n = pkt.len();
        assert_eq!(
            answer_v4(&mut pkt, 0, n),
            Verdict::Icmp {
                error: IcmpError::DestUnreachableV4 { code: 3 },
                reason: DropReason::ToOwnAddress
            }
        );
        let mut h =
            Ipv4Header::new(4, 20, IpNumber(47), [198, 51, 100, 7], [192, 0, 2, 1]).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut pkt = h.to_bytes().to_vec();
        pkt.extend_from_slice(&[0, 0, 8, 0]);
        assert_eq!(
            answer_v4(&mut pkt, 0, 24),
            Verdict::Icmp {
                error: IcmpError::DestUnreachableV4 { code: 2 },
                reason: DropReason::ToOwnAddress
            }
        );
    }

    #[test]
    fn rfc4443_3_4_unknown_next_header_points_at_its_field() {
        // IPv6 header (next header 60, destination options) + an 8-byte
        // destination options header naming protocol 253.
        let mut pkt = vec![0u8; 40 + 8 + 4];
        pkt[0] = 0x60;
        pkt[4..6].copy_from_slice(&12u16.to_be_bytes());
        pkt[6] = 60;
        pkt[7] = 64;
        pkt[8..24].copy_from_slice(
            &"2001:db8:1::5"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        pkt[24..40].copy_from_slice(
            &"2001:db8:ff::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        pkt[40] = 253; // next header
        pkt[41] = 0; // 8 bytes
        pkt[42] = 1; // PadN
        pkt[43] = 4;
        assert_eq!(
            answer_v6(&mut pkt, 0, 52),
            Verdict::Icmp {
                error: IcmpError::ParameterProblem {
                    code: 1,
                    pointer: 40
                },
                reason: DropReason::ToOwnAddress
            }
        );
    }

    #[test]
    fn echo_reply_to_own_address_is_dropped_not_answered() {
        let mut pkt = Vec::new();
        PacketBuilder::ipv4([198, 51, 100, 7], [192, 0, 2, 1], 20)
            .icmpv4_echo_reply(1, 1)
            .write(&mut pkt, b"")
            .unwrap();
        let n = pkt.len();
        assert_eq!(
            answer_v4(&mut pkt, 0, n),
            Verdict::Drop(DropReason::ToOwnAddress)
        );
    }

    /// Found by the `siit` fuzz target: a multicast source was answered
    /// with a Parameter Problem that cannot be sent (RFC 4443 §2.4(e)).
    #[test]
    fn rfc4443_2_4_e_no_answer_to_a_multicast_source() {
        let mut pkt = vec![0u8; 44];
        pkt[0] = 0x60;
        pkt[5] = 4;
        pkt[6] = 19;
        pkt[7] = 64;
        pkt[8..24].copy_from_slice(&"ff02::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
        pkt[24..40].copy_from_slice(
            &"2001:db8:ff::1"
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets(),
        );
        assert_eq!(
            answer_v6(&mut pkt, 0, 44),
            Verdict::Drop(DropReason::NotForTranslation)
        );
    }
}
