//! RFC 6052 IPv4-embedded IPv6 addresses.
//!
//! RFC 6052 §2.2: the IPv4 address is placed after the prefix, skipping bits
//! 64–71 (the "u" octet, which must be zero); the suffix is zero.
//!
//! ```text
//! +--+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
//! |PL| 0-------------32--40--48--56--64--72--80--88--96--104---------|
//! +--+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
//! |32|     prefix    |v4(32)         | u | suffix                    |
//! |40|     prefix        |v4(24)     | u |(8)| suffix                |
//! |48|     prefix            |v4(16) | u | (16)  | suffix            |
//! |56|     prefix                |(8)| u |  v4(24)   | suffix        |
//! |64|     prefix                    | u |   v4(32)      | suffix    |
//! |96|     prefix                                    |    v4(32)     |
//! +--+---+---+---+---+---+---+---+---+---+---+---+---+---+---+---+
//! ```

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

/// The Well-Known Prefix 64:ff9b::/96 (RFC 6052 §2.1).
pub const WKP: Ipv6Addr = Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0);

/// Why a prefix is not usable for RFC 6052 address translation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixError {
    #[error("'{0}' is not an IPv6 prefix in the form ADDRESS/LENGTH (e.g. 64:ff9b::/96)")]
    Syntax(String),
    #[error("prefix length /{0} is not one of RFC 6052's /32, /40, /48, /56, /64, /96")]
    Length(u8),
    #[error("bits 64-71 (the RFC 6052 \"u\" octet) of {0} must be zero")]
    UOctet(Ipv6Addr),
    #[error("{addr} has bits set beyond /{len}; use {masked}/{len}")]
    HostBits {
        addr: Ipv6Addr,
        len: u8,
        masked: Ipv6Addr,
    },
}

/// An RFC 6052 translation prefix: Well-Known or Network-Specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    octets: [u8; 16],
    len: u8,
}

impl Prefix {
    /// The Well-Known Prefix 64:ff9b::/96.
    pub const WELL_KNOWN: Prefix = Prefix {
        octets: WKP.octets(),
        len: 96,
    };

    /// Validates an RFC 6052 prefix (RFC 6052 §2.2: allowed lengths, u octet
    /// zero, no bits beyond the length).
    pub fn new(addr: Ipv6Addr, len: u8) -> Result<Prefix, PrefixError> {
        if !matches!(len, 32 | 40 | 48 | 56 | 64 | 96) {
            return Err(PrefixError::Length(len));
        }
        let o = addr.octets();
        let masked = mask(o, len);
        if masked != o {
            return Err(PrefixError::HostBits {
                addr,
                len,
                masked: Ipv6Addr::from(masked),
            });
        }
        if o[8] != 0 {
            return Err(PrefixError::UOctet(addr));
        }
        Ok(Prefix { octets: o, len })
    }

    pub fn addr(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.octets)
    }
    /// The prefix length in bits (a prefix is never empty).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> u8 {
        self.len
    }
    /// True for 64:ff9b::/96 (RFC 6052 §3.1 rules apply).
    pub fn is_well_known(&self) -> bool {
        self.len == 96 && self.octets == WKP.octets()
    }
    /// True when `a` lies inside this prefix.
    #[inline]
    pub fn contains(&self, a: &Ipv6Addr) -> bool {
        // len is one of 32..=96, so the shift never overflows.
        let m = u128::MAX << (128 - self.len as u32);
        u128::from(*a) & m == u128::from_be_bytes(self.octets)
    }

    /// RFC 6052 §2.2: the IPv4-embedded IPv6 address of `v4`.
    #[inline]
    pub fn embed(&self, v4: Ipv4Addr) -> Ipv6Addr {
        let mut o = self.octets;
        let v = v4.octets();
        match self.len {
            32 => o[4..8].copy_from_slice(&v),
            40 => {
                o[5..8].copy_from_slice(&v[..3]);
                o[9] = v[3];
            }
            48 => {
                o[6..8].copy_from_slice(&v[..2]);
                o[9..11].copy_from_slice(&v[2..]);
            }
            56 => {
                o[7] = v[0];
                o[9..12].copy_from_slice(&v[1..]);
            }
            64 => o[9..13].copy_from_slice(&v),
            _ => o[12..16].copy_from_slice(&v),
        }
        Ipv6Addr::from(o)
    }

    /// RFC 6052 §2.3: the IPv4 address embedded in `a`, or `None` when `a` is
    /// outside the prefix. The u octet and suffix are ignored on extraction.
    #[inline]
    pub fn extract(&self, a: &Ipv6Addr) -> Option<Ipv4Addr> {
        if !self.contains(a) {
            return None;
        }
        let o = a.octets();
        let v = match self.len {
            32 => [o[4], o[5], o[6], o[7]],
            40 => [o[5], o[6], o[7], o[9]],
            48 => [o[6], o[7], o[9], o[10]],
            56 => [o[7], o[9], o[10], o[11]],
            64 => [o[9], o[10], o[11], o[12]],
            _ => [o[12], o[13], o[14], o[15]],
        };
        Some(Ipv4Addr::from(v))
    }

    /// Extract with the RFC 6052 §3.1 rule applied: the Well-Known Prefix
    /// must not carry a non-global IPv4 address unless `strict` is off.
    #[inline]
    pub fn extract_checked(&self, a: &Ipv6Addr, strict: bool) -> Result<Ipv4Addr, AddrRefusal> {
        let v4 = self.extract(a).ok_or(AddrRefusal::NotInPrefix)?;
        if strict && self.is_well_known() && !is_global_v4(v4) {
            return Err(AddrRefusal::WkpNonGlobal);
        }
        Ok(v4)
    }
}

/// Why an address cannot be used with a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrRefusal {
    NotInPrefix,
    WkpNonGlobal,
}

impl From<AddrRefusal> for crate::verdict::DropReason {
    fn from(r: AddrRefusal) -> Self {
        match r {
            AddrRefusal::NotInPrefix => crate::verdict::DropReason::NotInPrefix,
            AddrRefusal::WkpNonGlobal => crate::verdict::DropReason::WkpNonGlobal,
        }
    }
}

fn mask(mut o: [u8; 16], len: u8) -> [u8; 16] {
    let len = len as usize;
    for (i, b) in o.iter_mut().enumerate() {
        let bits = len.saturating_sub(i * 8).min(8);
        *b &= if bits == 0 { 0 } else { 0xffu8 << (8 - bits) };
    }
    o
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, l) = s
            .split_once('/')
            .ok_or_else(|| PrefixError::Syntax(s.to_string()))?;
        let addr: Ipv6Addr = a.parse().map_err(|_| PrefixError::Syntax(s.to_string()))?;
        let len: u8 = l.parse().map_err(|_| PrefixError::Syntax(s.to_string()))?;
        Prefix::new(addr, len)
    }
}

/// The IPv4 blocks RFC 6052 §3.1 forbids behind the Well-Known Prefix
/// (RFC 1918 and the special-purpose blocks of RFC 5735 §3 / RFC 6890), as
/// (network, prefix length).
pub const NON_GLOBAL_V4: &[([u8; 4], u8)] = &[
    ([0, 0, 0, 0], 8),
    ([10, 0, 0, 0], 8),
    ([100, 64, 0, 0], 10),
    ([127, 0, 0, 0], 8),
    ([169, 254, 0, 0], 16),
    ([172, 16, 0, 0], 12),
    ([192, 0, 0, 0], 24),
    ([192, 0, 2, 0], 24),
    ([192, 88, 99, 0], 24),
    ([192, 168, 0, 0], 16),
    ([198, 18, 0, 0], 15),
    ([198, 51, 100, 0], 24),
    ([203, 0, 113, 0], 24),
    ([224, 0, 0, 0], 4),
    ([240, 0, 0, 0], 4),
];

/// True when `a` is outside every block of [`NON_GLOBAL_V4`].
pub fn is_global_v4(a: Ipv4Addr) -> bool {
    non_global_block(a).is_none()
}

/// The non-global block containing `a`, if any, as "net/len".
pub fn non_global_block(a: Ipv4Addr) -> Option<(Ipv4Addr, u8)> {
    let x = u32::from(a);
    NON_GLOBAL_V4.iter().find_map(|(net, len)| {
        let n = u32::from_be_bytes(*net);
        let m = if *len == 0 { 0 } else { u32::MAX << (32 - len) };
        (x & m == n).then(|| (Ipv4Addr::from(*net), *len))
    })
}

/// The first non-global block overlapping the IPv4 range `net/len`, if any
/// (used to refuse a `daemon`-mode pool behind the WKP at startup).
pub fn overlapping_non_global(net: Ipv4Addr, len: u8) -> Option<(Ipv4Addr, u8)> {
    let n = u32::from(net);
    NON_GLOBAL_V4.iter().find_map(|(b, blen)| {
        let bn = u32::from_be_bytes(*b);
        let l = len.min(*blen);
        let m = if l == 0 { 0 } else { u32::MAX << (32 - l) };
        (n & m == bn & m).then(|| (Ipv4Addr::from(*b), *blen))
    })
}

#[cfg(test)]
mod test {
    use super::*;

    /// RFC 6052 §2.4 "Example" table: 192.0.2.33 under each prefix.
    #[test]
    fn rfc6052_2_4_example_table() {
        let v4 = Ipv4Addr::new(192, 0, 2, 33);
        let table = [
            ("2001:db8::/32", "2001:db8:c000:221::"),
            ("2001:db8:100::/40", "2001:db8:1c0:2:21::"),
            ("2001:db8:122::/48", "2001:db8:122:c000:2:2100::"),
            ("2001:db8:122:300::/56", "2001:db8:122:3c0:0:221::"),
            ("2001:db8:122:344::/64", "2001:db8:122:344:c0:2:2100:0"),
            ("2001:db8:122:344::/96", "2001:db8:122:344::192.0.2.33"),
        ];
        for (p, want) in table {
            let p: Prefix = p.parse().unwrap();
            let want: Ipv6Addr = want.parse().unwrap();
            assert_eq!(p.embed(v4), want, "embed under {p}");
            assert_eq!(p.extract(&want), Some(v4), "extract under {p}");
        }
        let wkp: Prefix = "64:ff9b::/96".parse().unwrap();
        assert!(wkp.is_well_known());
        assert_eq!(
            wkp.embed(v4),
            "64:ff9b::192.0.2.33".parse::<Ipv6Addr>().unwrap()
        );
    }

    #[test]
    fn rfc6052_2_2_prefix_validation() {
        assert_eq!(
            "2001:db8::/33".parse::<Prefix>().unwrap_err(),
            PrefixError::Length(33)
        );
        assert!(matches!(
            "2001:db8::1/96".parse::<Prefix>().unwrap_err(),
            PrefixError::HostBits { .. }
        ));
        assert!(matches!(
            "2001:db8:0:0:ff00::/96".parse::<Prefix>().unwrap_err(),
            PrefixError::UOctet(_)
        ));
        assert!(matches!(
            "nonsense".parse::<Prefix>().unwrap_err(),
            PrefixError::Syntax(_)
        ));
        // RFC 8215 local-use prefix is an NSP.
        let p: Prefix = "64:ff9b:1::/48".parse().unwrap();
        assert!(!p.is_well_known());
    }

    #[test]
    fn rfc6052_3_1_wkp_refuses_non_global() {
        let wkp = Prefix::WELL_KNOWN;
        let private = wkp.embed(Ipv4Addr::new(10, 1, 2, 3));
        let global = wkp.embed(Ipv4Addr::new(8, 8, 8, 8));
        assert_eq!(
            wkp.extract_checked(&private, true),
            Err(AddrRefusal::WkpNonGlobal)
        );
        assert_eq!(
            wkp.extract_checked(&private, false),
            Ok(Ipv4Addr::new(10, 1, 2, 3))
        );
        assert_eq!(
            wkp.extract_checked(&global, true),
            Ok(Ipv4Addr::new(8, 8, 8, 8))
        );
        // An NSP is not limited.
        let nsp: Prefix = "2001:db8:64::/96".parse().unwrap();
        let a = nsp.embed(Ipv4Addr::new(10, 1, 2, 3));
        assert!(nsp.extract_checked(&a, true).is_ok());
        assert_eq!(
            nsp.extract_checked(&global, true),
            Err(AddrRefusal::NotInPrefix)
        );
    }

    #[test]
    fn non_global_blocks() {
        for a in [
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.1.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.19.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(!is_global_v4(a.parse().unwrap()), "{a}");
        }
        for a in ["8.8.8.8", "100.128.0.1", "172.32.0.1", "198.20.0.1"] {
            assert!(is_global_v4(a.parse().unwrap()), "{a}");
        }
        assert!(overlapping_non_global(Ipv4Addr::new(10, 0, 0, 0), 24).is_some());
        // 96/3 spans 96.0.0.0-127.255.255.255, which holds 100.64/10 and 127/8.
        assert!(overlapping_non_global(Ipv4Addr::new(96, 0, 0, 0), 3).is_some());
        assert!(overlapping_non_global(Ipv4Addr::new(8, 0, 0, 0), 7).is_none());
        assert!(overlapping_non_global(Ipv4Addr::new(185, 0, 0, 0), 24).is_none());
    }

    #[test]
    fn embed_extract_round_trip_every_length() {
        for p in [
            "2001:db8::/32",
            "2001:db8:100::/40",
            "2001:db8:122::/48",
            "2001:db8:122:300::/56",
            "2001:db8:122:344::/64",
            "400:dead:beef::/96",
        ] {
            let p: Prefix = p.parse().unwrap();
            for v in [0u32, 1, 0xc0000221, 0xffffffff, 0x7f000001] {
                let v4 = Ipv4Addr::from(v);
                let a = p.embed(v4);
                assert_eq!(a.octets()[8], 0, "u octet zero for {p}");
                assert_eq!(p.extract(&a), Some(v4));
            }
        }
    }
}
