//! RFC 7757 Explicit Address Mappings (EAM) for stateless translation.
//!
//! An EAM pairs an IPv4 prefix with an IPv6 prefix (RFC 7757 §3.2):
//! `192.0.2.0/24 ↔ 2001:db8:6::/120` maps `192.0.2.x` to `2001:db8:6::x`
//! and back. The table (the EAMT, RFC 7757 §3.1) answers both directions
//! with a longest-prefix match (RFC 7757 §3.3.1 and §3.3.2 step 1). When no
//! entry matches, the caller falls back to the RFC 6052 prefix (step 2).
//!
//! Suffix lengths: RFC 7757 §3.2 lets the IPv6 side of an entry carry *more*
//! suffix bits than the IPv4 side (e.g. `192.0.2.128/26 ↔ 2001:db8:dddd::/64`,
//! or IVI's `0.0.0.0/0 ↔ 2001:db8:ff00::/40`), never fewer. The §3.3
//! procedure (drop the prefix bits, prepend the other family's prefix, pad
//! with zeros or drop trailing bits) then puts the IPv4 suffix right after
//! the IPv6 prefix, and on the way back drops the IPv6 suffix bits past it:
//! such an entry maps many IPv6 addresses to one IPv4 address, and each
//! IPv4 address to the zero-padded one. Equal lengths (the usual case) make
//! a bijection: the suffix bits move across unchanged.
//!
//! Conflicts (ADR 0009): two entries collide when they have the same IPv4
//! prefix or the same IPv6 prefix (the lookup would be ambiguous, RFC 7757
//! §5 Figure 3); inserting replaces them. Nested entries of different
//! lengths do not collide: the longest match wins (RFC 7757 §3.3). RFC 7757
//! §5 warns that nesting can make the two directions asymmetric;
//! [`EamTable::overlapping`] lists such entries so a configuration loader
//! can warn (a MAY in §5).
//!
//! # Lookup structure
//!
//! The table is built off the packet path (configuration load or reload) and
//! then only read. Each direction keeps one hash map per distinct prefix
//! length present, keyed by the masked address (`u32` for IPv4, `u128` for
//! IPv6), with the lengths sorted longest first. A lookup masks the address
//! once per length and stops at the first hit, so its cost is bounded by the
//! number of distinct lengths (at most 33 or 129), not by the number of
//! entries; a `/16 ↔ /112` is one key, not 65,536. An empty table answers
//! before any hashing.

use core::fmt;
use core::hash::Hash;
use core::net::{Ipv4Addr, Ipv6Addr};
use core::ops::{BitAnd, Not};

/// One explicit address mapping: `v4/len4 ↔ v6/len6`, `32 - len4 <= 128 - len6`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Eam {
    v4: u32,
    len4: u8,
    v6: u128,
    len6: u8,
}

/// Why an EAM is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EamError {
    #[error("'{0}' is not an IPv4 address or prefix (e.g. 192.0.2.0/24)")]
    V4Syntax(String),
    #[error("'{0}' is not an IPv6 address or prefix (e.g. 2001:db8::/120)")]
    V6Syntax(String),
    #[error("{addr}/{len} has host bits set; use {masked}/{len}")]
    V4HostBits {
        addr: Ipv4Addr,
        len: u8,
        masked: Ipv4Addr,
    },
    #[error("{addr}/{len} has host bits set; use {masked}/{len}")]
    V6HostBits {
        addr: Ipv6Addr,
        len: u8,
        masked: Ipv6Addr,
    },
    #[error(
        "suffix lengths: /{len4} leaves {} IPv4 bits but /{len6} only {} IPv6 bits (RFC 7757 \
         §3.2: the IPv4 suffix may not be longer); use /{want6} or shorter for the IPv6 side",
        32 - *len4 as u32, 128 - *len6 as u32, want6 = 96 + *len4 as u32
    )]
    SuffixMismatch { len4: u8, len6: u8 },
}

/// The network mask of an IPv4 prefix length (all ones past 32).
fn mask4(len: u8) -> u32 {
    u32::MAX
        .checked_shl(32u32.saturating_sub(len.into()))
        .unwrap_or(0)
}

/// The network mask of an IPv6 prefix length (all ones past 128).
fn mask6(len: u8) -> u128 {
    u128::MAX
        .checked_shl(128u32.saturating_sub(len.into()))
        .unwrap_or(0)
}

/// True when two prefixes share an address, i.e. one contains the other:
/// they agree on the bits of the shorter one's mask. Both families, the
/// IPv4 values widened to `u128`.
fn nested(a: u128, b: u128, common_mask: u128) -> bool {
    (a ^ b) & common_mask == 0
}

impl Eam {
    /// Validates an entry: lengths in range, no host bits, an IPv4 suffix
    /// no longer than the IPv6 one (RFC 7757 §3.2).
    pub fn new(v4: Ipv4Addr, len4: u8, v6: Ipv6Addr, len6: u8) -> Result<Eam, EamError> {
        if len4 > 32 {
            return Err(EamError::V4Syntax(format!("{v4}/{len4}")));
        }
        if len6 > 128 {
            return Err(EamError::V6Syntax(format!("{v6}/{len6}")));
        }
        let a4 = u32::from(v4);
        if a4 & !mask4(len4) != 0 {
            return Err(EamError::V4HostBits {
                addr: v4,
                len: len4,
                masked: Ipv4Addr::from(a4 & mask4(len4)),
            });
        }
        let a6 = u128::from(v6);
        if a6 & !mask6(len6) != 0 {
            return Err(EamError::V6HostBits {
                addr: v6,
                len: len6,
                masked: Ipv6Addr::from(a6 & mask6(len6)),
            });
        }
        // RFC 7757 §3.2: the IPv4 suffix is no longer than the IPv6 one.
        if 32 - u32::from(len4) > 128 - u32::from(len6) {
            return Err(EamError::SuffixMismatch { len4, len6 });
        }
        Ok(Eam {
            v4: a4,
            len4,
            v6: a6,
            len6,
        })
    }

    /// Parses `"192.0.2.0/24"` and `"2001:db8:6::/120"`; a bare address is a
    /// /32 or /128 (RFC 7757 §3.2: an omitted length MUST be taken as such).
    pub fn parse(v4: &str, v6: &str) -> Result<Eam, EamError> {
        let (a4, l4) = split(v4, 32).ok_or_else(|| EamError::V4Syntax(v4.to_string()))?;
        let a4: Ipv4Addr = a4.parse().map_err(|_| EamError::V4Syntax(v4.to_string()))?;
        let (a6, l6) = split(v6, 128).ok_or_else(|| EamError::V6Syntax(v6.to_string()))?;
        let a6: Ipv6Addr = a6.parse().map_err(|_| EamError::V6Syntax(v6.to_string()))?;
        Eam::new(a4, l4, a6, l6)
    }

    /// The IPv4 prefix and its length.
    /// How many more suffix bits the IPv6 side has (0 for the usual
    /// equal-length entries; RFC 7757 §3.2).
    #[inline]
    fn shift(&self) -> u32 {
        (128 - u32::from(self.len6)) - (32 - u32::from(self.len4))
    }

    pub fn v4(&self) -> (Ipv4Addr, u8) {
        (Ipv4Addr::from(self.v4), self.len4)
    }

    /// The IPv6 prefix and its length.
    pub fn v6(&self) -> (Ipv6Addr, u8) {
        (Ipv6Addr::from(self.v6), self.len6)
    }

    /// Addresses the entry covers on each side (2^suffix, saturating).
    pub fn size(&self) -> u64 {
        1u64.checked_shl(32 - u32::from(self.len4))
            .unwrap_or(u64::MAX)
    }

    /// True when `a` is inside the IPv4 prefix.
    pub fn contains_v4(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & mask4(self.len4) == self.v4
    }

    /// True when `a` is inside the IPv6 prefix.
    pub fn contains_v6(&self, a: &Ipv6Addr) -> bool {
        u128::from(*a) & mask6(self.len6) == self.v6
    }

    /// True when `o` claims the same IPv4 prefix or the same IPv6 prefix.
    pub fn collides(&self, o: &Eam) -> bool {
        (self.v4 == o.v4 && self.len4 == o.len4) || (self.v6 == o.v6 && self.len6 == o.len6)
    }

    /// True when the IPv4 prefixes or the IPv6 prefixes of `self` and `o`
    /// share at least one address (nested or identical). RFC 7757 §5:
    /// such entries may translate asymmetrically, and an implementation MAY
    /// warn the operator when one is inserted.
    pub fn overlaps(&self, o: &Eam) -> bool {
        let m4 = mask4(self.len4.min(o.len4));
        let m6 = mask6(self.len6.min(o.len6));
        nested(self.v4.into(), o.v4.into(), m4.into()) || nested(self.v6, o.v6, m6)
    }
}

/// Splits `"addr/len"`; a missing length is `max`.
fn split(s: &str, max: u8) -> Option<(&str, u8)> {
    let s = s.trim();
    match s.split_once('/') {
        None => Some((s, max)),
        Some((a, l)) => {
            let l: u8 = l.trim().parse().ok()?;
            (l <= max).then_some((a.trim(), l))
        }
    }
}

impl fmt::Display for Eam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} ↔ {}/{}",
            Ipv4Addr::from(self.v4),
            self.len4,
            Ipv6Addr::from(self.v6),
            self.len6
        )
    }
}

/// The hasher of the per-length maps: fast, seeded once per process.
type Hasher = foldhash::fast::RandomState;

/// The entries of one [`Level`], keyed by prefix. A level with a single
/// entry compares it directly instead of hashing: small tables are common
/// (a 464XLAT CLAT has exactly one entry, RFC 7757 Appendix A.1).
#[derive(Debug, Clone)]
enum Keys<K> {
    One(K, Eam),
    /// Two entries or more.
    Many(hashbrown::HashMap<K, Eam, Hasher>),
}

impl<K: Copy + Eq + Hash> Keys<K> {
    #[inline]
    fn get(&self, key: &K) -> Option<&Eam> {
        match self {
            Keys::One(k, e) => (k == key).then_some(e),
            Keys::Many(m) => m.get(key),
        }
    }

    /// Stores `e` under `key`, replacing an entry with the same key.
    fn insert(&mut self, key: K, e: Eam) {
        match self {
            Keys::One(k, x) if *k == key => *x = e,
            Keys::One(k, x) => {
                let mut m = hashbrown::HashMap::with_hasher(Hasher::default());
                m.insert(*k, *x);
                m.insert(key, e);
                *self = Keys::Many(m);
            }
            Keys::Many(m) => {
                m.insert(key, e);
            }
        }
    }

    /// Drops the entry under `key`; true when none is left.
    fn remove(&mut self, key: &K) -> bool {
        match self {
            Keys::One(k, _) => k == key,
            Keys::Many(m) => {
                m.remove(key);
                let last = match m.iter().next() {
                    Some((k, e)) if m.len() == 1 => Some((*k, *e)),
                    _ => None,
                };
                if let Some((k, e)) = last {
                    *self = Keys::One(k, e);
                }
                false
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        match self {
            Keys::One(..) => 1,
            Keys::Many(m) => m.len(),
        }
    }
}

/// All entries of one prefix length in one direction.
#[derive(Debug, Clone)]
struct Level<K> {
    len: u8,
    mask: K,
    keys: Keys<K>,
}

/// Longest-prefix match over one address family: one [`Level`] per
/// distinct prefix length present, longest first.
#[derive(Debug, Clone)]
struct Lpm<K> {
    levels: Vec<Level<K>>,
}

impl<K> Default for Lpm<K> {
    fn default() -> Self {
        Lpm { levels: Vec::new() }
    }
}

impl<K: Copy + Eq + Hash + BitAnd<Output = K> + Not<Output = K>> Lpm<K> {
    /// The entry with the longest prefix containing `a`, and the bits of
    /// `a` past that prefix (its suffix, RFC 7757 §3.3.1/§3.3.2 step 3).
    #[inline]
    fn find(&self, a: K) -> Option<(&Eam, K)> {
        self.levels.iter().find_map(|l| {
            let suffix = a & !l.mask;
            l.keys.get(&(a & l.mask)).map(|e| (e, suffix))
        })
    }

    /// The entry whose prefix is exactly `key/len`.
    fn get(&self, key: K, len: u8) -> Option<&Eam> {
        let l = self.levels.iter().find(|l| l.len == len)?;
        l.keys.get(&key)
    }

    /// Stores `e` under `key/len`, creating the level if needed. The
    /// caller has removed any entry with the same prefix.
    fn insert(&mut self, key: K, len: u8, mask: K, e: Eam) {
        // Levels are sorted by decreasing length.
        let at = self.levels.partition_point(|l| l.len > len);
        match self.levels.get_mut(at) {
            Some(l) if l.len == len => l.keys.insert(key, e),
            _ => {
                let keys = Keys::One(key, e);
                self.levels.insert(at, Level { len, mask, keys });
            }
        }
    }

    /// Drops the entry stored under `key/len`, and its level once empty.
    fn remove(&mut self, key: K, len: u8) {
        if let Some(at) = self.levels.iter().position(|l| l.len == len) {
            if self.levels[at].keys.remove(&key) {
                self.levels.remove(at);
            }
        }
    }

    /// Distinct prefix lengths present, longest first.
    fn lengths(&self) -> impl Iterator<Item = u8> + '_ {
        self.levels.iter().map(|l| l.len)
    }
}

/// The EAM table: longest-prefix match in both directions (RFC 7757 §3.3).
///
/// Invariant: no two entries share an IPv4 prefix or an IPv6 prefix, so each
/// entry is stored once per direction under its own prefix.
#[derive(Debug, Clone, Default)]
pub struct EamTable {
    /// Insertion order, for [`EamTable::iter`].
    entries: Vec<Eam>,
    v4: Lpm<u32>,
    v6: Lpm<u128>,
}

impl EamTable {
    pub fn new() -> EamTable {
        EamTable::default()
    }

    /// Adds `e`, removing and returning the entries it collides with
    /// ([`Eam::collides`]), in insertion order: the newer entry wins.
    pub fn insert(&mut self, e: Eam) -> Vec<Eam> {
        let gone = if self.has_collision(&e) {
            let gone = self.collisions(&e);
            for x in &gone {
                self.unindex(x);
            }
            self.entries.retain(|x| !x.collides(&e));
            gone
        } else {
            Vec::new()
        };
        self.v4.insert(e.v4, e.len4, mask4(e.len4), e);
        self.v6.insert(e.v6, e.len6, mask6(e.len6), e);
        self.entries.push(e);
        gone
    }

    /// The entries `e` would displace, in insertion order.
    pub fn collisions(&self, e: &Eam) -> Vec<Eam> {
        if !self.has_collision(e) {
            return Vec::new();
        }
        self.entries
            .iter()
            .filter(|x| x.collides(e))
            .copied()
            .collect()
    }

    /// The entries that overlap `e` ([`Eam::overlaps`]) without colliding
    /// with it: a prefix nested in, or containing, one of `e`'s on either
    /// side. RFC 7757 §5: such entries can make the two directions
    /// asymmetric; a configuration loader MAY warn about them.
    pub fn overlapping(&self, e: &Eam) -> impl Iterator<Item = &Eam> + '_ {
        let e = *e;
        self.entries
            .iter()
            .filter(move |x| x.overlaps(&e) && !x.collides(&e))
    }

    /// Removes exactly `e`; false if it was not there.
    pub fn remove(&mut self, e: &Eam) -> bool {
        if self.v4.get(e.v4, e.len4) != Some(e) {
            return false;
        }
        self.unindex(e);
        self.entries.retain(|x| x != e);
        true
    }

    /// The entry with the longest IPv4 prefix containing `a` (RFC 7757
    /// §3.3.1 step 1).
    #[inline]
    pub fn find_v4(&self, a: Ipv4Addr) -> Option<&Eam> {
        if self.entries.is_empty() {
            return None;
        }
        self.v4.find(u32::from(a)).map(|(e, _)| e)
    }

    /// The entry with the longest IPv6 prefix containing `a` (RFC 7757
    /// §3.3.2 step 1).
    #[inline]
    pub fn find_v6(&self, a: &Ipv6Addr) -> Option<&Eam> {
        if self.entries.is_empty() {
            return None;
        }
        self.v6.find(u128::from(*a)).map(|(e, _)| e)
    }

    /// RFC 7757 §3.3.1, IPv4 → IPv6; `None` means "use RFC 6052" (step 2).
    ///
    /// Steps 3–6 keep the IPv4 suffix and put the IPv6 prefix in front;
    /// with equal suffix lengths no padding is needed.
    #[inline]
    pub fn v4_to_v6(&self, a: Ipv4Addr) -> Option<Ipv6Addr> {
        if self.entries.is_empty() {
            return None;
        }
        let (e, suffix) = self.v4.find(u32::from(a))?;
        // RFC 7757 §3.3.1 step 5: the IPv4 suffix right after the IPv6
        // prefix, zeros after it.
        Some(Ipv6Addr::from(e.v6 | (u128::from(suffix) << e.shift())))
    }

    /// RFC 7757 §3.3.2, IPv6 → IPv4; `None` means "use RFC 6052" (step 2).
    ///
    /// Steps 3–6 keep the IPv6 suffix and put the IPv4 prefix in front;
    /// with equal suffix lengths it fits in 32 bits and nothing is dropped.
    #[inline]
    pub fn v6_to_v4(&self, a: &Ipv6Addr) -> Option<Ipv4Addr> {
        if self.entries.is_empty() {
            return None;
        }
        let (e, suffix) = self.v6.find(u128::from(*a))?;
        // RFC 7757 §3.3.2 step 5: the IPv6 suffix bits past the IPv4
        // suffix are dropped; what remains is < 2^(32 - len4), so the cast
        // keeps every bit.
        Some(Ipv4Addr::from(e.v4 | (suffix >> e.shift()) as u32))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &Eam> {
        self.entries.iter()
    }

    /// Distinct IPv4 prefix lengths present, longest first: the most hash
    /// probes an IPv4 lookup makes.
    pub fn v4_lengths(&self) -> impl Iterator<Item = u8> + '_ {
        self.v4.lengths()
    }

    /// Distinct IPv6 prefix lengths present, longest first: the most hash
    /// probes an IPv6 lookup makes.
    pub fn v6_lengths(&self) -> impl Iterator<Item = u8> + '_ {
        self.v6.lengths()
    }

    /// True when some entry has `e`'s IPv4 prefix or `e`'s IPv6 prefix.
    fn has_collision(&self, e: &Eam) -> bool {
        self.v4.get(e.v4, e.len4).is_some() || self.v6.get(e.v6, e.len6).is_some()
    }

    /// Drops `e` from both lookup directions (not from `entries`).
    fn unindex(&mut self, e: &Eam) {
        self.v4.remove(e.v4, e.len4);
        self.v6.remove(e.v6, e.len6);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }
    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// A /16 ↔ /112 is one key in one level per direction, not 65,536.
    #[test]
    fn slash16_is_one_key_per_direction() {
        let mut t = EamTable::new();
        t.insert(Eam::parse("198.18.0.0/16", "2001:db8:64:ff::/112").unwrap());
        assert_eq!(t.v4.levels.len(), 1);
        assert_eq!(t.v4.levels[0].keys.len(), 1);
        assert_eq!(t.v6.levels.len(), 1);
        assert_eq!(t.v6.levels[0].keys.len(), 1);
    }

    /// Levels stay sorted longest first whatever the insertion order, and a
    /// level disappears with its last entry.
    #[test]
    fn levels_sorted_and_pruned() {
        let mut t = EamTable::new();
        let es = [
            Eam::parse("10.0.0.0/16", "2001:db8:1::/112").unwrap(),
            Eam::parse("10.0.0.1", "2001:db8:2::1").unwrap(),
            Eam::parse("10.0.0.0/24", "2001:db8:3::/120").unwrap(),
            Eam::parse("0.0.0.0/0", "64:ff9b::/96").unwrap(),
            Eam::parse("10.0.1.0/24", "2001:db8:4::/120").unwrap(),
        ];
        for e in es {
            assert!(t.insert(e).is_empty());
        }
        assert_eq!(t.v4_lengths().collect::<Vec<_>>(), [32, 24, 16, 0]);
        assert_eq!(t.v6_lengths().collect::<Vec<_>>(), [128, 120, 112, 96]);
        assert!(t.remove(&es[2]));
        assert_eq!(t.v4_lengths().collect::<Vec<_>>(), [32, 24, 16, 0]);
        assert!(t.remove(&es[4]));
        assert_eq!(t.v4_lengths().collect::<Vec<_>>(), [32, 16, 0]);
        assert_eq!(t.v6_lengths().collect::<Vec<_>>(), [128, 112, 96]);
        for e in [es[0], es[1], es[3]] {
            assert!(t.remove(&e));
        }
        assert!(t.v4.levels.is_empty() && t.v6.levels.is_empty());
        assert_eq!(t.v4_to_v6(v4("10.0.0.1")), None);
    }

    /// A level holds one entry inline, switches to a hash map at two, and
    /// back to inline when one is left; lookups are right at each step.
    #[test]
    fn level_switches_between_one_and_many() {
        let mut t = EamTable::new();
        let a = Eam::parse("192.0.2.1", "2001:db8::1").unwrap();
        let b = Eam::parse("192.0.2.2", "2001:db8::2").unwrap();
        let c = Eam::parse("192.0.2.3", "2001:db8::3").unwrap();
        let one = |t: &EamTable| matches!(t.v4.levels[0].keys, Keys::One(..));
        t.insert(a);
        assert!(one(&t));
        t.insert(b);
        t.insert(c);
        assert!(!one(&t));
        assert_eq!(t.v4.levels[0].keys.len(), 3);
        assert!(t.remove(&a));
        assert!(!one(&t));
        assert!(t.remove(&c));
        assert!(one(&t) && matches!(t.v6.levels[0].keys, Keys::One(..)));
        assert_eq!(t.v4_to_v6(v4("192.0.2.2")), Some(v6("2001:db8::2")));
        assert_eq!(t.v6_to_v4(&v6("2001:db8::2")), Some(v4("192.0.2.2")));
        assert_eq!(t.v4_to_v6(v4("192.0.2.1")), None);
        assert_eq!(t.v4_to_v6(v4("192.0.2.3")), None);
        // Replacing the inline entry keeps the level inline.
        let b2 = Eam::parse("192.0.2.2", "2001:db8::22").unwrap();
        assert_eq!(t.insert(b2), vec![b]);
        assert!(one(&t));
        assert_eq!(t.v4_to_v6(v4("192.0.2.2")), Some(v6("2001:db8::22")));
        assert!(t.remove(&b2));
        assert!(t.v4.levels.is_empty() && t.v6.levels.is_empty());
    }

    /// A replaced entry leaves no stale key behind in either direction.
    #[test]
    fn replacement_leaves_no_stale_keys() {
        let mut t = EamTable::new();
        let a = Eam::parse("192.0.2.0/24", "2001:db8:a::/120").unwrap();
        let b = Eam::parse("192.0.2.0/24", "2001:db8:b::/120").unwrap();
        t.insert(a);
        assert_eq!(t.insert(b), vec![a]);
        assert_eq!(t.v6.levels.len(), 1);
        assert_eq!(t.v6.levels[0].keys.len(), 1);
        assert_eq!(t.v6_to_v4(&v6("2001:db8:a::1")), None);
    }

    #[test]
    fn masks_at_the_edges() {
        assert_eq!(mask4(0), 0);
        assert_eq!(mask4(1), 0x8000_0000);
        assert_eq!(mask4(32), u32::MAX);
        assert_eq!(mask6(0), 0);
        assert_eq!(mask6(1), 1u128 << 127);
        assert_eq!(mask6(128), u128::MAX);
        assert_eq!(mask4(200), u32::MAX, "no overflow past the width");
        assert_eq!(mask6(200), u128::MAX);
    }
}
