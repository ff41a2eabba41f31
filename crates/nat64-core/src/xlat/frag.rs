//! Fragmenting a translated packet that exceeds the next-hop MTU
//! (RFC 7915 §4.1: IPv4 packets without DF are fragmented to the lowest IPv6
//! MTU; §5.1.1: fragmented IPv6 packets may need IPv4 fragmentation).
//!
//! Each fragment is assembled in a caller-provided scratch buffer and handed
//! to `emit`; nothing allocates.

use crate::verdict::DropReason;
use crate::wire::ipv4::{self, be16, put16};
use crate::wire::ipv6;

/// Splits an IPv6 packet that starts with a fixed header followed directly
/// by a Fragment header (as [`super::four_to_six`] produces whenever it
/// returns `fragment_mtu`) into fragments of at most `mtu` bytes.
/// Returns the number of fragments emitted.
pub fn fragment_v6(
    packet: &[u8],
    mtu: u16,
    scratch: &mut [u8],
    emit: &mut dyn FnMut(&[u8]),
) -> Result<usize, DropReason> {
    const HDR: usize = ipv6::HEADER_LEN + ipv6::FRAG_HEADER_LEN;
    let ip = ipv6::Packet::new_checked(packet)?;
    if ip.next_header() != ipv6::nh::FRAGMENT || ip.total_len() < HDR {
        return Err(DropReason::BadExtensionHeader);
    }
    let total = ip.total_len();
    let chunk = (mtu as usize).saturating_sub(HDR) / 8 * 8;
    if chunk == 0 || scratch.len() < HDR + chunk {
        return Err(DropReason::NoBufferRoom);
    }
    let fh = &packet[ipv6::HEADER_LEN..HDR];
    let base_off = be16(fh, 2) & !7;
    let last_more = fh[3] & 1 != 0;
    let payload = &packet[HDR..total];
    let mut n = 0;
    for (i, part) in payload.chunks(chunk).enumerate() {
        let is_last = (i + 1) * chunk >= payload.len();
        let out = &mut scratch[..HDR + part.len()];
        out[..HDR].copy_from_slice(&packet[..HDR]);
        out[HDR..].copy_from_slice(part);
        put16(out, 4, (ipv6::FRAG_HEADER_LEN + part.len()) as u16);
        let off = base_off + (i * chunk) as u16;
        let more = !is_last || last_more;
        put16(out, ipv6::HEADER_LEN + 2, off | more as u16);
        emit(out);
        n += 1;
    }
    Ok(n)
}

/// Splits an IPv4 packet into fragments of at most `mtu` bytes (RFC 791),
/// keeping its Identification and adding to its offset and MF flag. The
/// packet must not have DF set. Returns the number of fragments emitted.
pub fn fragment_v4(
    packet: &[u8],
    mtu: u16,
    scratch: &mut [u8],
    emit: &mut dyn FnMut(&[u8]),
) -> Result<usize, DropReason> {
    let ip = ipv4::Packet::new_checked(packet)?;
    if ip.dont_frag() {
        return Err(DropReason::PacketTooBig);
    }
    let hl = ip.header_len();
    let total = ip.total_len() as usize;
    let chunk = (mtu as usize).saturating_sub(hl) / 8 * 8;
    if chunk == 0 || scratch.len() < hl + chunk {
        return Err(DropReason::NoBufferRoom);
    }
    let base_off = ip.frag_offset();
    let last_more = ip.more_frags();
    let payload = &packet[hl..total];
    let mut n = 0;
    for (i, part) in payload.chunks(chunk).enumerate() {
        let is_last = (i + 1) * chunk >= payload.len();
        let out = &mut scratch[..hl + part.len()];
        out[..hl].copy_from_slice(&packet[..hl]);
        out[hl..].copy_from_slice(part);
        let mut p = ipv4::Packet::new_unchecked(&mut out[..]);
        p.set_total_len((hl + part.len()) as u16);
        p.set_flags_and_offset(false, !is_last || last_more, base_off + (i * chunk) as u16);
        p.fill_checksum();
        emit(out);
        n += 1;
    }
    Ok(n)
}
