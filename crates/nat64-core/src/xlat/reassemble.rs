//! Bounded reassembly of fragmented ICMP and ICMPv6 messages
//! (RFC 791 §3.2, RFC 8200 §4.5, RFC 5722).
//!
//! Why: the ICMPv6 checksum covers a pseudo-header holding the length of the
//! whole message (RFC 4443 §2.3, RFC 8200 §8.1), and RFC 7915 §4.2/§5.2 must
//! recompute it when translating ICMP ⇄ ICMPv6, so a fragmented ICMP message
//! cannot be translated fragment by fragment (the translator drops such
//! fragments as [`DropReason::IcmpFragmented`]). The daemon sends ICMP and
//! ICMPv6 fragments ([`is_icmp_fragment`]) here, translates the whole message
//! this module hands back, and fragments the result again with
//! [`super::frag`].
//!
//! The reassembled packet is written into a caller-provided buffer:
//!
//! * IPv4: the first fragment's header (options kept), MF = 0, offset 0,
//!   DF = 0, Total Length updated, header checksum recomputed; then the data.
//! * IPv6: the first fragment's headers up to, not including, its Fragment
//!   header (the Unfragmentable Part, RFC 8200 §4.5); then a Fragment header
//!   with offset 0 and M = 0 (same Identification, Next Header 58) — an
//!   atomic fragment (RFC 6946) carrying the whole message, so the translator
//!   still sees that the sender allowed fragmentation; then the data.
//!   Payload Length updated.
//!
//! Choices (a newcomer would ask):
//!
//! * **Overlap.** A fragment that overlaps another, a second last fragment
//!   with a different end, a non-last fragment reaching the known end, or
//!   data beyond it drops the whole datagram as
//!   [`DropReason::ReassemblyOverlap`] (RFC 5722 §4, RFC 8200 §4.5). The
//!   rule is applied to IPv4 as well, against teardrop-style attacks.
//! * **Exact duplicates** (same offset, length, M flag and bytes) are dropped
//!   silently and reported as [`Push::Held`] with nothing counted: RFC 5722
//!   §4 allows it, duplicates happen in real networks, and Linux does the
//!   same. Same range but different bytes is an overlap.
//! * **Limits.** At most [`Limits::max_datagrams`] datagrams and
//!   [`Limits::max_bytes`] of held data. Past either, the **oldest** datagram
//!   is evicted ([`Pushed::evicted`]) and the new fragment is kept; the new
//!   fragment is refused only when a limit is zero or its own datagram alone
//!   exceeds the byte limit.
//! * **Timeout.** A datagram not complete [`Limits::timeout_ms`] after its
//!   first-received fragment is dropped by [`Reassembler::expire`], or
//!   lazily by the next [`Reassembler::push`] ([`Pushed::timed_out`]). A
//!   fragment arriving after its datagram timed out starts a new one.
//! * **Memory.** Data is stored as it arrives (one buffer per datagram plus
//!   an 8-byte index entry per fragment); an offset never causes an
//!   allocation, so a fragment claiming offset 65528 costs its own bytes only.
//!
//! Nothing here does I/O or reads a clock: `now` is passed in.

use crate::time::Timestamp;
use crate::verdict::DropReason;
use crate::wire::ipv6::nh;
use crate::wire::{ipv4, ipv6, proto};
use core::net::{Ipv4Addr, Ipv6Addr};
use std::collections::{BTreeMap, HashMap};

/// Largest IPv4 Total Length (RFC 791 §3.1) and IPv6 Payload Length
/// (RFC 8200 §3).
const MAX_LEN: usize = 65535;

/// ECN codepoint "Congestion Experienced" (RFC 3168 §5).
const ECN_CE: u8 = 0b11;

/// How much the reassembler may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Datagrams being reassembled at once.
    pub max_datagrams: usize,
    /// Fragment data plus saved first-fragment headers held over all
    /// datagrams. Actual memory is at most about twice this (buffer growth
    /// and the 8-byte index entry per fragment).
    pub max_bytes: usize,
    /// Time from a datagram's first-received fragment until it is dropped if
    /// incomplete. RFC 8200 §4.5 gives hosts 60 s; a translator sits in the
    /// path of `ping`, which retries every second, so it keeps this short.
    pub timeout_ms: u64,
}

impl Default for Limits {
    /// 64 datagrams, 1 MiB of held data, 2 s.
    fn default() -> Self {
        Limits {
            max_datagrams: 64,
            max_bytes: 1 << 20,
            timeout_ms: 2000,
        }
    }
}

/// What [`Reassembler::push`] did with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Not an ICMP/ICMPv6 fragment: the caller translates it as usual.
    NotIcmpFragment,
    /// Held; the datagram is not complete yet. Also returned for an exact
    /// duplicate, which is dropped silently.
    Held,
    /// The whole datagram is in `out[..len]`; nothing of it is held any more.
    Complete { len: usize },
    /// This fragment, and `also` fragments held for the same datagram, are
    /// dropped for `reason`.
    Dropped { reason: DropReason, also: u32 },
}

/// The outcome of [`Reassembler::push`]: what happened to this packet, and
/// the fragments of *other* datagrams the call dropped to stay bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct Pushed {
    pub push: Push,
    /// Fragments of other datagrams dropped because they timed out
    /// (count as [`DropReason::ReassemblyTimeout`]).
    pub timed_out: u32,
    /// Fragments of other datagrams evicted to make room
    /// (count as [`DropReason::ReassemblyLimit`]).
    pub evicted: u32,
}

impl Pushed {
    fn only(push: Push) -> Self {
        Pushed {
            push,
            timed_out: 0,
            evicted: 0,
        }
    }

    /// Every packet this call dropped, as `(reason, count)` pairs with a
    /// non-zero count: this packet with its datagram, then timed-out and
    /// evicted fragments of other datagrams. Add them to the drop counters.
    pub fn drops(&self) -> impl Iterator<Item = (DropReason, u32)> {
        let own = match self.push {
            Push::Dropped { reason, also } => Some((reason, also.saturating_add(1))),
            _ => None,
        };
        own.into_iter().chain(
            [
                (DropReason::ReassemblyTimeout, self.timed_out),
                (DropReason::ReassemblyLimit, self.evicted),
            ]
            .into_iter()
            .filter(|&(_, n)| n > 0),
        )
    }
}

/// Which datagram a fragment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    /// RFC 791 §3.2: source, destination, protocol, identification.
    V4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: u8,
        ident: u16,
    },
    /// RFC 8200 §4.5: source, destination, identification.
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        ident: u32,
    },
}

impl Key {
    /// Bytes of the reassembled packet: `head` bytes of saved headers, then
    /// (IPv6) the atomic Fragment header, then `data` bytes.
    fn packet_len(&self, head: usize, data: usize) -> usize {
        match self {
            Key::V4 { .. } => head + data,
            Key::V6 { .. } => head + ipv6::FRAG_HEADER_LEN + data,
        }
    }

    /// The length field of the reassembled packet (IPv4 Total Length, IPv6
    /// Payload Length), which must not exceed 65535.
    fn length_field(&self, head: usize, data: usize) -> usize {
        match self {
            Key::V4 { .. } => self.packet_len(head, data),
            Key::V6 { .. } => self.packet_len(head, data).saturating_sub(ipv6::HEADER_LEN),
        }
    }
}

/// One ICMP fragment, located in its packet (no copy).
#[derive(Debug, Clone, Copy)]
struct Fragment<'a> {
    key: Key,
    /// Fragment offset in bytes.
    offset: u16,
    /// More Fragments (IPv4 MF, IPv6 M).
    more: bool,
    /// The bytes the first fragment contributes in front of the data: the
    /// IPv4 header with options, or the IPv6 fixed header and extension
    /// headers before the Fragment header.
    head: &'a [u8],
    /// The fragment's data (up to the IP length field; padding ignored).
    data: &'a [u8],
    /// ECN field of the IP header.
    ecn: u8,
    /// IPv4 header checksum verifies (always true for IPv6).
    header_ok: bool,
}

impl Fragment<'_> {
    fn start(&self) -> usize {
        self.offset as usize
    }
    fn end(&self) -> usize {
        self.offset as usize + self.data.len()
    }

    /// Checks that concern this fragment alone; a failure drops only it.
    fn check(&self) -> Result<(), DropReason> {
        if !self.header_ok {
            return Err(DropReason::BadIpv4Checksum);
        }
        // A fragment with no data adds nothing and can mark a bogus end.
        // RFC 8200 §4.5: a fragment with M = 1 whose length is not a multiple
        // of 8 must be discarded (RFC 791 §3.2: 8-octet units likewise).
        if self.data.is_empty() || (self.more && self.data.len() % 8 != 0) {
            return Err(DropReason::BadLength);
        }
        // RFC 8200 §4.5: a fragment whose offset and length would make the
        // reassembled Payload Length exceed 65535 must be discarded.
        if self.key.length_field(self.head.len(), self.end()) > MAX_LEN {
            return Err(DropReason::ReassemblyTooBig);
        }
        Ok(())
    }
}

/// Finds the ICMP/ICMPv6 fragment in `pkt`: `Ok(None)` for any other packet
/// (including an IPv6 atomic fragment, RFC 6946), `Err` for a packet too
/// malformed to tell.
fn locate(pkt: &[u8]) -> Result<Option<Fragment<'_>>, DropReason> {
    match pkt.first().map(|b| b >> 4) {
        Some(4) => locate_v4(pkt),
        Some(6) => locate_v6(pkt),
        Some(_) => Err(DropReason::BadVersion),
        None => Err(DropReason::Truncated),
    }
}

fn locate_v4(pkt: &[u8]) -> Result<Option<Fragment<'_>>, DropReason> {
    let ip = ipv4::Packet::new_checked(pkt)?;
    if ip.protocol() != proto::ICMP || !ip.is_fragment() {
        return Ok(None);
    }
    // `new_checked` holds header length <= total length <= packet length.
    let (hl, total) = (ip.header_len(), ip.total_len() as usize);
    let head = pkt.get(..hl).ok_or(DropReason::BadIpv4HeaderLength)?;
    let data = pkt.get(hl..total).ok_or(DropReason::BadLength)?;
    Ok(Some(Fragment {
        key: Key::V4 {
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            protocol: ip.protocol(),
            ident: ip.ident(),
        },
        offset: ip.frag_offset(),
        more: ip.more_frags(),
        head,
        data,
        ecn: ip.tos() & ECN_CE,
        header_ok: ip.verify_checksum(),
    }))
}

fn locate_v6(pkt: &[u8]) -> Result<Option<Fragment<'_>>, DropReason> {
    let ip = ipv6::Packet::new_checked(pkt)?;
    let pkt = pkt.get(..ip.total_len()).ok_or(DropReason::BadLength)?;
    let chain = ipv6::walk_chain(pkt)?;
    let Some(frag) = chain.frag else {
        return Ok(None);
    };
    // RFC 6946 §4: an atomic fragment is processed as a whole packet.
    if frag.offset == 0 && !frag.more {
        return Ok(None);
    }
    // The Fragment header's Next Header is the first header of the
    // Fragmentable Part: ICMPv6, or not ours (an extension header after the
    // Fragment header is dropped by the translator, RFC 7915 §5.1.1).
    if pkt.get(frag.header_offset) != Some(&nh::ICMPV6) {
        return Ok(None);
    }
    let head = pkt
        .get(..frag.header_offset)
        .ok_or(DropReason::BadExtensionHeader)?;
    let data = pkt
        .get(frag.header_offset + ipv6::FRAG_HEADER_LEN..)
        .ok_or(DropReason::BadExtensionHeader)?;
    Ok(Some(Fragment {
        key: Key::V6 {
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            ident: frag.ident,
        },
        offset: frag.offset,
        more: frag.more,
        head,
        data,
        ecn: ip.traffic_class() & ECN_CE,
        header_ok: true,
    }))
}

/// Cheap check (no allocation) whether `pkt` is an ICMP (IPv4 protocol 1)
/// or ICMPv6 fragment: IPv4 with MF set or a non-zero offset; IPv6 with a
/// Fragment header (found by walking the extension header chain) whose
/// offset is non-zero or M is set, and whose Next Header is ICMPv6.
///
/// False for packets too malformed to tell: the translator drops those with
/// their own reason. True fragments that are broken in other ways (bad IPv4
/// header checksum, bad length) are true here and dropped by
/// [`Reassembler::push`] with a reason.
pub fn is_icmp_fragment(pkt: &[u8]) -> bool {
    // Every packet of the data path asks: answer the common case (not an
    // ICMP fragment) from the fixed header alone.
    match pkt.first().map(|b| b >> 4) {
        // IPv4: protocol other than ICMP, or MF clear and offset 0.
        Some(4)
            if pkt.len() >= 20
                && (pkt[9] != proto::ICMP
                    || u16::from_be_bytes([pkt[6], pkt[7]]) & 0x3fff == 0) =>
        {
            return false
        }
        // IPv6: no extension header, so no Fragment header.
        Some(6) if pkt.len() >= 40 && matches!(pkt[6], proto::TCP | proto::UDP | nh::ICMPV6) => {
            return false
        }
        _ => {}
    }
    matches!(locate(pkt), Ok(Some(_)))
}

/// One held fragment's data: `bytes[at..at + len]` of its datagram, at
/// `off` in the reassembled data.
#[derive(Debug, Clone, Copy)]
struct Piece {
    off: u16,
    len: u16,
    at: u32,
}

impl Piece {
    fn start(&self) -> usize {
        self.off as usize
    }
    fn end(&self) -> usize {
        self.off as usize + self.len as usize
    }
    fn range(&self) -> core::ops::Range<usize> {
        self.at as usize..self.at as usize + self.len as usize
    }
}

/// Where a new fragment goes in a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fit {
    /// Insert at this index of `pieces`.
    At(usize),
    /// An exact duplicate of a held fragment.
    Duplicate,
    /// Overlaps or contradicts what is held (RFC 5722).
    Inconsistent,
}

/// A datagram being reassembled.
#[derive(Debug)]
struct Datagram {
    /// Its key in [`Reassembler::order`]: (deadline in ms, sequence).
    slot: (u64, u64),
    /// Saved headers of the first fragment (offset 0), once it arrived.
    head: Option<Box<[u8]>>,
    /// Fragment data in arrival order.
    bytes: Vec<u8>,
    /// Held fragments, sorted by offset, never overlapping.
    pieces: Vec<Piece>,
    /// End of the data, once the last fragment (M = 0) arrived.
    end: Option<usize>,
    /// Bytes of data held (sum of the pieces' lengths).
    have: usize,
    /// Some fragment carried ECN Congestion Experienced.
    ce: bool,
}

impl Datagram {
    fn new(slot: (u64, u64)) -> Self {
        Datagram {
            slot,
            head: None,
            bytes: Vec::new(),
            pieces: Vec::new(),
            end: None,
            have: 0,
            ce: false,
        }
    }

    /// Bytes charged against [`Limits::max_bytes`].
    fn held_bytes(&self) -> usize {
        self.bytes.len() + self.head.as_ref().map_or(0, |h| h.len())
    }

    fn fragments(&self) -> u32 {
        u32::try_from(self.pieces.len()).unwrap_or(u32::MAX)
    }

    /// RFC 5722 §4 / RFC 8200 §4.5 / RFC 791 §3.2 consistency of `f` with
    /// the held fragments.
    fn fit(&self, f: &Fragment<'_>) -> Fit {
        let (start, end) = (f.start(), f.end());
        let max_end = self.pieces.last().map_or(0, Piece::end);
        if f.more {
            // A non-last fragment must end before the known end.
            if self.end.is_some_and(|e| end >= e) {
                return Fit::Inconsistent;
            }
        } else if self.end.is_some_and(|e| e != end) || max_end > end {
            // A second last fragment with a different end, or held data
            // beyond this end.
            return Fit::Inconsistent;
        }
        let i = self.pieces.partition_point(|p| p.start() < start);
        if i > 0 && self.pieces.get(i - 1).is_some_and(|p| p.end() > start) {
            return Fit::Inconsistent;
        }
        if let Some(next) = self.pieces.get(i) {
            let same = next.start() == start
                && next.end() == end
                && self.bytes.get(next.range()) == Some(f.data)
                // Same M flag: only the last piece ends at the known end.
                && (f.more || self.end.is_some());
            if same {
                return Fit::Duplicate;
            }
            if next.start() < end {
                return Fit::Inconsistent;
            }
        }
        Fit::At(i)
    }

    /// Stores `f` at index `i` (from [`Datagram::fit`]).
    fn insert(&mut self, i: usize, f: &Fragment<'_>) {
        let piece = Piece {
            off: f.offset,
            // `Fragment::check` bounds offset + length by 65535.
            len: u16::try_from(f.data.len()).unwrap_or(u16::MAX),
            at: u32::try_from(self.bytes.len()).unwrap_or(u32::MAX),
        };
        self.bytes.extend_from_slice(f.data);
        self.pieces.insert(i.min(self.pieces.len()), piece);
        self.have += f.data.len();
        if !f.more {
            self.end = Some(f.end());
        }
        if f.offset == 0 {
            self.head = Some(f.head.into());
        }
        self.ce |= f.ecn == ECN_CE;
    }

    /// The first fragment's headers and the data length, once every byte
    /// from 0 to the end is held (pieces never overlap, so `have == end`
    /// means full coverage).
    fn complete(&self) -> Option<(&[u8], usize)> {
        match (&self.head, self.end) {
            (Some(head), Some(end)) if self.have == end => Some((head, end)),
            _ => None,
        }
    }

    /// Writes the reassembled packet into `out`; returns its length.
    fn assemble(&self, key: &Key, out: &mut [u8]) -> Result<usize, DropReason> {
        let (head, end) = self.complete().ok_or(DropReason::FragmentNoState)?;
        let total = key.packet_len(head.len(), end);
        if key.length_field(head.len(), end) > MAX_LEN {
            return Err(DropReason::ReassemblyTooBig);
        }
        let out = out.get_mut(..total).ok_or(DropReason::ReassemblyTooBig)?;
        put(out, 0, head)?;
        let data_at = match *key {
            Key::V4 { .. } => {
                // RFC 791 §3.2: the first fragment's header, with the
                // fragment fields reset and the length of the whole.
                let mut ip = ipv4::Packet::new_checked(&mut out[..])?;
                ip.set_total_len(total as u16);
                ip.set_flags_and_offset(false, false, 0);
                // RFC 3168 §5.3: CE on any fragment survives reassembly.
                let tos = ip.tos();
                if self.ce && tos & ECN_CE != 0 {
                    ip.set_tos(tos | ECN_CE);
                }
                ip.fill_checksum();
                head.len()
            }
            Key::V6 { ident, .. } => {
                // RFC 8200 §4.5: the Unfragmentable Part of the first
                // fragment; here followed by an atomic Fragment header.
                let at = head.len();
                let fh = out
                    .get_mut(at..at + ipv6::FRAG_HEADER_LEN)
                    .ok_or(DropReason::ReassemblyTooBig)?;
                ipv6::emit_frag_header(fh, nh::ICMPV6, 0, false, ident);
                let mut ip = ipv6::Packet::new_unchecked(&mut out[..]);
                ip.set_payload_len((total - ipv6::HEADER_LEN) as u16);
                let tc = ip.traffic_class();
                if self.ce && tc & ECN_CE != 0 {
                    let flow = ip.flow_label();
                    ip.set_version_tc_flow(tc | ECN_CE, flow);
                }
                at + ipv6::FRAG_HEADER_LEN
            }
        };
        for p in &self.pieces {
            let src = self.bytes.get(p.range()).ok_or(DropReason::BadLength)?;
            put(out, data_at + p.start(), src)?;
        }
        Ok(total)
    }
}

/// Copies `src` to `out[at..]`, or fails without panicking.
fn put(out: &mut [u8], at: usize, src: &[u8]) -> Result<(), DropReason> {
    out.get_mut(at..at + src.len())
        .ok_or(DropReason::ReassemblyTooBig)?
        .copy_from_slice(src);
    Ok(())
}

/// Reassembles fragmented ICMP/ICMPv6 datagrams within [`Limits`].
#[derive(Debug)]
pub struct Reassembler {
    limits: Limits,
    datagrams: HashMap<Key, Datagram>,
    /// Datagrams by (deadline, arrival sequence). The timeout is the same for
    /// all and time is monotonic, so the first entry is both the next to time
    /// out and the oldest.
    order: BTreeMap<(u64, u64), Key>,
    next_seq: u64,
    held_bytes: usize,
}

impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(Limits::default())
    }
}

impl Reassembler {
    pub fn new(limits: Limits) -> Self {
        Reassembler {
            limits,
            datagrams: HashMap::new(),
            order: BTreeMap::new(),
            next_seq: 0,
            held_bytes: 0,
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Datagrams being reassembled.
    pub fn held_datagrams(&self) -> usize {
        self.datagrams.len()
    }

    /// Bytes held (fragment data and saved headers), at most
    /// [`Limits::max_bytes`].
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Fragments held over all datagrams.
    pub fn held_fragments(&self) -> usize {
        self.datagrams.values().map(|d| d.pieces.len()).sum()
    }

    /// Takes one packet: `pkt` is a whole IPv4 or IPv6 packet (the version
    /// nibble decides). When the datagram completes, the reassembled packet
    /// is written to `out` ([`Push::Complete`]); `out` needs room for the
    /// whole packet (65535 + 48 bytes covers every case).
    ///
    /// Datagrams that timed out by `now` are dropped first (RFC 8200 §4.5).
    pub fn push(&mut self, pkt: &[u8], now: Timestamp, out: &mut [u8]) -> Pushed {
        let f = match locate(pkt) {
            Ok(Some(f)) => f,
            Ok(None) => return Pushed::only(Push::NotIcmpFragment),
            Err(reason) => return Pushed::only(Push::Dropped { reason, also: 0 }),
        };
        if let Err(reason) = f.check() {
            return Pushed::only(Push::Dropped { reason, also: 0 });
        }
        let timed_out = self.expire(now);
        let mut evicted = 0;
        let push = self.add(&f, now, out, &mut evicted);
        Pushed {
            push,
            timed_out,
            evicted,
        }
    }

    /// Drops datagrams not complete within the timeout of their first
    /// fragment (RFC 8200 §4.5, RFC 791 §3.2); returns how many held
    /// fragments were dropped (count as [`DropReason::ReassemblyTimeout`]).
    pub fn expire(&mut self, now: Timestamp) -> u32 {
        let mut n = 0u32;
        while let Some(e) = self.order.first_entry() {
            if e.key().0 > now.as_millis() {
                break;
            }
            let key = e.remove();
            n = n.saturating_add(self.remove(&key));
        }
        n
    }

    /// Adds a checked fragment to its datagram.
    fn add(&mut self, f: &Fragment<'_>, now: Timestamp, out: &mut [u8], evicted: &mut u32) -> Push {
        let at = match self.datagrams.get(&f.key).map(|d| d.fit(f)) {
            None => 0,
            Some(Fit::At(i)) => i,
            Some(Fit::Duplicate) => return Push::Held,
            Some(Fit::Inconsistent) => {
                let also = self.remove(&f.key);
                return Push::Dropped {
                    reason: DropReason::ReassemblyOverlap,
                    also,
                };
            }
        };
        // A held piece at offset 0 would have overlapped or been a
        // duplicate, so a first fragment always brings the head.
        let need = f.data.len() + if f.offset == 0 { f.head.len() } else { 0 };
        while self.held_bytes + need > self.limits.max_bytes {
            match self.evict_oldest_except(&f.key) {
                Some(n) => *evicted = evicted.saturating_add(n),
                None => break,
            }
        }
        if self.held_bytes + need > self.limits.max_bytes {
            let also = self.remove(&f.key);
            return Push::Dropped {
                reason: DropReason::ReassemblyLimit,
                also,
            };
        }
        if !self.datagrams.contains_key(&f.key) {
            if self.limits.max_datagrams == 0 {
                return Push::Dropped {
                    reason: DropReason::ReassemblyLimit,
                    also: 0,
                };
            }
            while self.datagrams.len() >= self.limits.max_datagrams {
                match self.evict_oldest_except(&f.key) {
                    Some(n) => *evicted = evicted.saturating_add(n),
                    None => break,
                }
            }
            let slot = (
                now.as_millis().saturating_add(self.limits.timeout_ms),
                self.next_seq,
            );
            self.next_seq = self.next_seq.wrapping_add(1);
            self.order.insert(slot, f.key);
            self.datagrams.insert(f.key, Datagram::new(slot));
        }
        let Some(d) = self.datagrams.get_mut(&f.key) else {
            return Push::Dropped {
                reason: DropReason::FragmentNoState,
                also: 0,
            };
        };
        d.insert(at, f);
        self.held_bytes += need;
        if d.complete().is_none() {
            return Push::Held;
        }
        let done = d.assemble(&f.key, out);
        let also = self.remove(&f.key).saturating_sub(1);
        match done {
            Ok(len) => Push::Complete { len },
            Err(reason) => Push::Dropped { reason, also },
        }
    }

    /// Evicts the oldest datagram other than `keep`; returns its fragment
    /// count, or `None` when there is no other datagram.
    fn evict_oldest_except(&mut self, keep: &Key) -> Option<u32> {
        let victim = *self.order.values().find(|k| *k != keep)?;
        Some(self.remove(&victim))
    }

    /// Forgets a datagram; returns how many fragments it held.
    fn remove(&mut self, key: &Key) -> u32 {
        let Some(d) = self.datagrams.remove(key) else {
            return 0;
        };
        self.order.remove(&d.slot);
        self.held_bytes = self.held_bytes.saturating_sub(d.held_bytes());
        d.fragments()
    }
}

#[cfg(test)]
mod test {
    //! Unit tests of the bookkeeping; the RFC behaviour suite with
    //! etherparse-built fragments lives in `tests/reassemble.rs`.
    use super::*;
    use crate::wire::checksum;

    /// An IPv4 ICMP fragment written out by hand (RFC 791 §3.1 layout):
    /// 192.0.2.1 → 198.51.100.2, identification 0x1c46, TTL 64.
    fn v4(offset: u16, more: bool, data: &[u8]) -> Vec<u8> {
        let total = (20 + data.len()) as u16;
        let flags = ((more as u16) << 13) | (offset / 8);
        let mut p = vec![
            0x45,
            0x00,
            (total >> 8) as u8,
            total as u8,
            0x1c,
            0x46,
            (flags >> 8) as u8,
            flags as u8,
            0x40,
            0x01,
            0x00,
            0x00,
            192,
            0,
            2,
            1,
            198,
            51,
            100,
            2,
        ];
        let c = checksum::checksum(&p);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p.extend_from_slice(data);
        p
    }

    /// An IPv6 fragment written out by hand (RFC 8200 §3, §4.5 layouts):
    /// 2001:db8::1 → 2001:db8::2, Fragment header with Next Header `next`.
    fn v6(next: u8, offset: u16, more: bool, ident: u32, data: &[u8]) -> Vec<u8> {
        let plen = (8 + data.len()) as u16;
        let mut p = vec![0x60, 0, 0, 0, (plen >> 8) as u8, plen as u8, 44, 64];
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        let fo = offset | more as u16;
        p.extend_from_slice(&[next, 0, (fo >> 8) as u8, fo as u8]);
        p.extend_from_slice(&ident.to_be_bytes());
        p.extend_from_slice(data);
        p
    }

    #[test]
    fn rfc791_3_2_two_fragments_reassemble() {
        let msg: Vec<u8> = (0..24u8).collect();
        let mut r = Reassembler::default();
        let mut out = [0u8; 128];
        let t = Timestamp::ZERO;
        assert_eq!(
            r.push(&v4(8, false, &msg[8..]), t, &mut out).push,
            Push::Held
        );
        assert_eq!(r.held_bytes(), 16);
        let p = r.push(&v4(0, true, &msg[..8]), t, &mut out);
        assert_eq!(p.push, Push::Complete { len: 44 });
        assert_eq!(p.drops().count(), 0);
        assert_eq!(&out[20..44], &msg[..]);
        assert_eq!(&out[2..4], &44u16.to_be_bytes());
        assert_eq!(&out[6..8], &[0, 0], "MF = 0, offset 0");
        assert_eq!(checksum::checksum(&out[..20]), 0, "header checksum");
        assert_eq!((r.held_datagrams(), r.held_bytes()), (0, 0));
    }

    #[test]
    fn rfc8200_4_5_atomic_and_non_icmp_fragments_are_not_taken() {
        let data = [0u8; 16];
        assert!(is_icmp_fragment(&v6(58, 8, false, 1, &data)));
        assert!(is_icmp_fragment(&v6(58, 0, true, 1, &data)));
        assert!(!is_icmp_fragment(&v6(58, 0, false, 1, &data)), "RFC 6946");
        assert!(!is_icmp_fragment(&v6(17, 8, true, 1, &data)), "UDP");
        // Destination Options (→ ICMPv6) after the Fragment header.
        let mut dopt = vec![nh::ICMPV6, 0, 1, 4, 0, 0, 0, 0];
        dopt.extend_from_slice(&data);
        assert!(!is_icmp_fragment(&v6(nh::DEST_OPTS, 0, true, 1, &dopt)));
        assert!(!is_icmp_fragment(&[]));
        let mut r = Reassembler::default();
        let mut out = [0u8; 64];
        let p = r.push(&v6(17, 8, true, 1, &data), Timestamp::ZERO, &mut out);
        assert_eq!(p.push, Push::NotIcmpFragment);
        let p = r.push(&[0x70; 40], Timestamp::ZERO, &mut out);
        assert_eq!(
            p.push,
            Push::Dropped {
                reason: DropReason::BadVersion,
                also: 0
            }
        );
    }

    #[test]
    fn rfc5722_fit_rules() {
        let mut d = Datagram::new((0, 0));
        let key = Key::V4 {
            src: Ipv4Addr::LOCALHOST,
            dst: Ipv4Addr::LOCALHOST,
            protocol: 1,
            ident: 0,
        };
        let frag = |offset: u16, more: bool, data: &'static [u8]| Fragment {
            key,
            offset,
            more,
            head: &[],
            data,
            ecn: 0,
            header_ok: true,
        };
        let a = frag(16, true, &[1; 8]);
        assert_eq!(d.fit(&a), Fit::At(0));
        d.insert(0, &a);
        assert_eq!(d.fit(&a), Fit::Duplicate);
        assert_eq!(d.fit(&frag(16, true, &[2; 8])), Fit::Inconsistent);
        assert_eq!(d.fit(&frag(8, true, &[1; 16])), Fit::Inconsistent);
        assert_eq!(d.fit(&frag(16, false, &[1; 8])), Fit::Inconsistent, "M");
        assert_eq!(d.fit(&frag(8, true, &[1; 8])), Fit::At(0));
        assert_eq!(d.fit(&frag(24, false, &[1; 3])), Fit::At(1));
        assert_eq!(d.fit(&frag(8, false, &[1; 3])), Fit::Inconsistent, "end");
        let last = frag(24, false, &[1; 3]);
        d.insert(1, &last);
        assert_eq!(d.end, Some(27));
        assert_eq!(d.fit(&last), Fit::Duplicate);
        assert_eq!(d.fit(&frag(24, false, &[1; 4])), Fit::Inconsistent);
        assert_eq!(d.fit(&frag(0, true, &[1; 32])), Fit::Inconsistent);
        assert_eq!(d.fit(&frag(0, true, &[1; 8])), Fit::At(0));
        assert!(d.complete().is_none());
    }

    #[test]
    fn expire_drops_in_deadline_order_and_drops_reports_everything() {
        let limits = Limits {
            timeout_ms: 100,
            ..Limits::default()
        };
        let mut r = Reassembler::new(limits);
        let mut out = [0u8; 64];
        for (i, t) in [(1u32, 0u64), (2, 50)] {
            let p = r.push(&v6(58, 8, true, i, &[0; 8]), Timestamp(t), &mut out);
            assert_eq!(p.push, Push::Held);
        }
        assert_eq!(r.expire(Timestamp(99)), 0);
        assert_eq!(r.expire(Timestamp(100)), 1);
        assert_eq!(r.held_datagrams(), 1);
        let p = r.push(&v6(58, 8, true, 3, &[0; 8]), Timestamp(150), &mut out);
        assert_eq!((p.push, p.timed_out), (Push::Held, 1));
        let drops: Vec<_> = p.drops().collect();
        assert_eq!(drops, vec![(DropReason::ReassemblyTimeout, 1)]);
        let p = Pushed {
            push: Push::Dropped {
                reason: DropReason::ReassemblyOverlap,
                also: 2,
            },
            timed_out: 0,
            evicted: 4,
        };
        let drops: Vec<_> = p.drops().collect();
        assert_eq!(
            drops,
            vec![
                (DropReason::ReassemblyOverlap, 3),
                (DropReason::ReassemblyLimit, 4)
            ]
        );
    }
}
