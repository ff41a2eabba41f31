//! RFC 7757 Explicit Address Mappings (EAM) for stateless translation.
//!
//! An EAM pairs an IPv4 prefix with an IPv6 prefix of the same suffix length
//! (RFC 7757 §3.1): `192.0.2.0/24 ↔ 2001:db8:6::/120` maps `192.0.2.x` to
//! `2001:db8:6::x` and back. The table answers both directions with a
//! longest-prefix match (RFC 7757 §3.2–§3.3), and is consulted before the
//! RFC 6052 prefix.
//!
//! Conflicts (ADR 0009): two entries collide when they have the same IPv4
//! prefix or the same IPv6 prefix (the lookup would be ambiguous). Nested
//! entries of different lengths do not collide: the longest match wins.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

/// One explicit address mapping: `v4/len4 ↔ v6/len6`, `32 - len4 == 128 - len6`.
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
        "suffix lengths differ: /{len4} leaves {} IPv4 bits but /{len6} leaves {} IPv6 bits \
         (RFC 7757 §3.1); use /{want6} for the IPv6 side",
        32 - *len4 as u32, 128 - *len6 as u32, want6 = 96 + *len4 as u32
    )]
    SuffixMismatch { len4: u8, len6: u8 },
}

fn mask4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - len as u32)
    }
}

fn mask6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    }
}

impl Eam {
    /// Validates an entry: lengths in range, no host bits, equal suffix
    /// lengths (RFC 7757 §3.1).
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
        if 32 - len4 as u32 != 128 - len6 as u32 {
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
    /// /32 or /128.
    pub fn parse(v4: &str, v6: &str) -> Result<Eam, EamError> {
        let (a4, l4) = split(v4, 32).ok_or_else(|| EamError::V4Syntax(v4.to_string()))?;
        let a4: Ipv4Addr = a4.parse().map_err(|_| EamError::V4Syntax(v4.to_string()))?;
        let (a6, l6) = split(v6, 128).ok_or_else(|| EamError::V6Syntax(v6.to_string()))?;
        let a6: Ipv6Addr = a6.parse().map_err(|_| EamError::V6Syntax(v6.to_string()))?;
        Eam::new(a4, l4, a6, l6)
    }

    pub fn v4(&self) -> (Ipv4Addr, u8) {
        (Ipv4Addr::from(self.v4), self.len4)
    }
    pub fn v6(&self) -> (Ipv6Addr, u8) {
        (Ipv6Addr::from(self.v6), self.len6)
    }
    /// Addresses the entry covers on each side (2^suffix, saturating).
    pub fn size(&self) -> u64 {
        1u64.checked_shl(32 - self.len4 as u32).unwrap_or(u64::MAX)
    }
    pub fn contains_v4(&self, a: Ipv4Addr) -> bool {
        u32::from(a) & mask4(self.len4) == self.v4
    }
    pub fn contains_v6(&self, a: &Ipv6Addr) -> bool {
        u128::from(*a) & mask6(self.len6) == self.v6
    }
    /// True when `o` claims the same IPv4 prefix or the same IPv6 prefix.
    pub fn collides(&self, o: &Eam) -> bool {
        (self.v4 == o.v4 && self.len4 == o.len4) || (self.v6 == o.v6 && self.len6 == o.len6)
    }
    fn map4(&self, a: Ipv4Addr) -> Ipv6Addr {
        Ipv6Addr::from(self.v6 | u128::from(u32::from(a) & !mask4(self.len4)))
    }
    fn map6(&self, a: &Ipv6Addr) -> Ipv4Addr {
        Ipv4Addr::from(self.v4 | (u128::from(*a) & !mask6(self.len6)) as u32)
    }
}

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

/// The EAM table: longest-prefix match in both directions.
#[derive(Debug, Clone, Default)]
pub struct EamTable {
    entries: Vec<Eam>,
}

impl EamTable {
    pub fn new() -> EamTable {
        EamTable::default()
    }

    /// Adds `e`, removing and returning the entries it collides with
    /// ([`Eam::collides`]): the newer entry wins.
    pub fn insert(&mut self, e: Eam) -> Vec<Eam> {
        let gone: Vec<Eam> = self
            .entries
            .iter()
            .filter(|x| x.collides(&e))
            .copied()
            .collect();
        self.entries.retain(|x| !x.collides(&e));
        self.entries.push(e);
        gone
    }

    /// The entries `e` would displace.
    pub fn collisions(&self, e: &Eam) -> Vec<Eam> {
        self.entries
            .iter()
            .filter(|x| x.collides(e))
            .copied()
            .collect()
    }

    /// Removes exactly `e`; false if it was not there.
    pub fn remove(&mut self, e: &Eam) -> bool {
        let n = self.entries.len();
        self.entries.retain(|x| x != e);
        n != self.entries.len()
    }

    /// The entry with the longest IPv4 prefix containing `a`.
    pub fn find_v4(&self, a: Ipv4Addr) -> Option<&Eam> {
        self.entries
            .iter()
            .filter(|e| e.contains_v4(a))
            .max_by_key(|e| e.len4)
    }

    /// The entry with the longest IPv6 prefix containing `a`.
    pub fn find_v6(&self, a: &Ipv6Addr) -> Option<&Eam> {
        self.entries
            .iter()
            .filter(|e| e.contains_v6(a))
            .max_by_key(|e| e.len6)
    }

    /// RFC 7757 §3.3, IPv4 → IPv6.
    #[inline]
    pub fn v4_to_v6(&self, a: Ipv4Addr) -> Option<Ipv6Addr> {
        self.find_v4(a).map(|e| e.map4(a))
    }

    /// RFC 7757 §3.3, IPv6 → IPv4.
    #[inline]
    pub fn v6_to_v4(&self, a: &Ipv6Addr) -> Option<Ipv4Addr> {
        self.find_v6(a).map(|e| e.map6(a))
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
}
