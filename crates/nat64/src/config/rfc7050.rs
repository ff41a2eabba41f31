//! `prefix = "ipv4only.arpa"`: the NAT64 prefix discovered through DNS64
//! (RFC 7050), as a CLAT finds its PLAT's prefix (RFC 6877 §6.3).
//!
//! RFC 7050 §3: ask the resolver for the AAAA records of `ipv4only.arpa`,
//! a name that has only the A records 192.0.0.170 and 192.0.0.171; a DNS64
//! synthesizes AAAA records from them, and the prefix is what precedes the
//! well-known IPv4 address in a synthesized address (at one of the RFC 6052
//! positions). [`prefix_of`] is the pure part; [`discover`] asks the
//! system resolver (getaddrinfo, so /etc/resolv.conf and nsswitch apply).

use nat64_core::addr::Prefix;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};

/// The spelling that asks for discovery.
pub const SPELLING: &str = "ipv4only.arpa";

/// The well-known IPv4 addresses of `ipv4only.arpa` (RFC 7050 §2.2).
const WKAS: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 0, 170), Ipv4Addr::new(192, 0, 0, 171)];

/// RFC 7050 §3: the prefix of one synthesized address, trying the RFC 6052
/// lengths from the longest: the address must be exactly `prefix ||
/// well-known address` (u octet and suffix zero).
pub fn prefix_of(a: &Ipv6Addr) -> Option<Prefix> {
    [96u8, 64, 56, 48, 40, 32].into_iter().find_map(|len| {
        let masked = u128::from(*a) & (u128::MAX << (128 - u32::from(len)));
        let p = Prefix::new(Ipv6Addr::from(masked), len).ok()?;
        WKAS.iter().any(|w| p.embed(*w) == *a).then_some(p)
    })
}

/// What discovery found: the prefix and every distinct one seen (RFC 7050
/// §3: a network may have several; nat64 uses the first and says so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovered {
    pub prefix: Prefix,
    pub all: Vec<Prefix>,
}

/// The prefixes of a list of AAAA answers, first one first.
pub fn from_answers(answers: &[Ipv6Addr]) -> Option<Discovered> {
    let mut all: Vec<Prefix> = Vec::new();
    for p in answers.iter().filter_map(prefix_of) {
        if !all.contains(&p) {
            all.push(p);
        }
    }
    Some(Discovered {
        prefix: *all.first()?,
        all,
    })
}

/// Asks the system resolver. `Err` holds the problem and the fix.
pub fn discover() -> Result<Discovered, (String, String)> {
    let answers: Vec<Ipv6Addr> = (SPELLING, 0)
        .to_socket_addrs()
        .map_err(|e| {
            (
                format!("resolving {SPELLING} (RFC 7050) failed: {e}"),
                "point the host's resolver at a DNS64 server, or write the PLAT's prefix \
                 (e.g. prefix = \"64:ff9b::/96\")"
                    .to_string(),
            )
        })?
        .filter_map(|s| match s.ip() {
            IpAddr::V6(a) => Some(a),
            IpAddr::V4(_) => None,
        })
        .collect();
    from_answers(&answers).ok_or_else(|| {
        (
            format!(
                "{SPELLING} has no AAAA record holding 192.0.0.170 or 192.0.0.171 (got {}): \
                 the resolver is not a DNS64",
                if answers.is_empty() {
                    "none".to_string()
                } else {
                    answers
                        .iter()
                        .map(|a| a.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
            "point the host's resolver at a DNS64 server, or write the PLAT's prefix".to_string(),
        )
    })
}

#[cfg(test)]
mod test {
    use super::*;

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// RFC 7050 §3 with the RFC 6052 §2.4 layouts of 192.0.0.170
    /// (c0.00.00.aa), written out by hand.
    #[test]
    fn rfc7050_3_prefix_at_every_rfc6052_length() {
        for (addr, want) in [
            ("64:ff9b::c000:aa", "64:ff9b::/96"),
            ("2001:db8:64::c000:ab", "2001:db8:64::/96"),
            ("2001:db8:122:344:c0:0:aa00:0", "2001:db8:122:344::/64"),
            ("2001:db8:122:3c0:0:aa::", "2001:db8:122:300::/56"),
            ("2001:db8:122:c000:0:aa00::", "2001:db8:122::/48"),
            ("2001:db8:1c0:0:aa:0:0:0", "2001:db8:100::/40"),
            ("2001:db8:c000:aa::", "2001:db8::/32"),
        ] {
            assert_eq!(
                prefix_of(&a(addr)).map(|p| p.to_string()).as_deref(),
                Some(want),
                "{addr}"
            );
        }
    }

    #[test]
    fn rfc7050_3_other_addresses_are_not_synthesized() {
        assert_eq!(prefix_of(&a("2001:db8:64::c000:ac")), None);
        assert_eq!(prefix_of(&a("2001:db8::1")), None);
        let d = from_answers(&[
            a("2001:db8::1"),
            a("2001:db8:64::c000:aa"),
            a("2001:db8:64::c000:ab"),
            a("64:ff9b::c000:aa"),
        ])
        .unwrap();
        assert_eq!(d.prefix.to_string(), "2001:db8:64::/96");
        assert_eq!(d.all.len(), 2);
        assert_eq!(from_answers(&[a("2001:db8::1")]), None);
    }
}
