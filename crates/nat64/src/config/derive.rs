//! `prefix = "from-interface:NAME[@RANGE]"`: the NAT64 prefix follows the
//! address of an overlay node (RFC 6052 §2.2, ADR 0008).
//!
//! Mycelium (and overlays built like it) route to a node only the /64 that
//! node's key gives it: a node announces its own /64, peers refuse a route
//! whose subnet does not hold the announcing node's address, and a packet is
//! decrypted with the key found by its source /64. So the only NAT64 prefix
//! such an overlay carries to a gateway is a /96 inside the gateway's own
//! /64. This module takes that /64 from the overlay's interface and returns
//! `<that /64>:0:64::/96`: bits 64–71 (RFC 6052 §2.2 "u" octet) stay zero,
//! and the `64` in bits 80–95 keeps the prefix clear of the node's own
//! address, which Mycelium puts in the low 64 bits of the same /64.
//!
//! The derivation is a pure function of the text of `/proc/net/if_inet6`,
//! so it is unit-tested without an interface; [`derive_on_host`] reads the
//! host (in the caller's network namespace).

use nat64_core::addr::Prefix;
use std::net::Ipv6Addr;

/// The spelling that asks for a derived prefix.
pub const FROM_INTERFACE: &str = "from-interface:";

/// Mycelium's address range (every overlay address is in 400::/7).
pub const MYCELIUM_RANGE: (Ipv6Addr, u8) = (Ipv6Addr::new(0x400, 0, 0, 0, 0, 0, 0, 0), 7);

/// Bits 80–95 of a derived prefix (`<node /64>:0:64::/96`).
const DERIVED_GROUP5: u128 = 0x64;

/// A parsed `from-interface:NAME[@ADDR/LEN]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromInterface {
    pub ifname: String,
    /// Only addresses inside this range count (e.g. Mycelium's 400::/7).
    pub within: Option<(Ipv6Addr, u8)>,
}

impl FromInterface {
    /// `None` when `s` is not a `from-interface:` spelling at all;
    /// `Some(Err(problem))` when it is one but malformed.
    pub fn parse(s: &str) -> Option<Result<FromInterface, String>> {
        let rest = s.trim().strip_prefix(FROM_INTERFACE)?;
        let (name, within) = match rest.split_once('@') {
            Some((n, r)) => (n, Some(r)),
            None => (rest, None),
        };
        if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', ':']) {
            return Some(Err(format!(
                "'{name}' is not an interface name (1-15 characters, no '/', ':' or space)"
            )));
        }
        let within = match within {
            None => None,
            Some(r) => match parse_v6net(r) {
                Some(n) => Some(n),
                None => return Some(Err(format!("'{r}' is not an IPv6 range such as 400::/7"))),
            },
        };
        Some(Ok(FromInterface {
            ifname: name.to_string(),
            within,
        }))
    }
}

impl std::fmt::Display for FromInterface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{FROM_INTERFACE}{}", self.ifname)?;
        if let Some((a, l)) = self.within {
            write!(f, "@{a}/{l}")?;
        }
        Ok(())
    }
}

pub(crate) fn parse_v6net(s: &str) -> Option<(Ipv6Addr, u8)> {
    let (a, l) = s.split_once('/')?;
    let a: Ipv6Addr = a.trim().parse().ok()?;
    let l: u8 = l.trim().parse().ok().filter(|l| *l <= 128)?;
    Some((a, l))
}

pub(crate) fn in_range(a: Ipv6Addr, (net, len): (Ipv6Addr, u8)) -> bool {
    let mask = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len)
    };
    u128::from(a) & mask == u128::from(net) & mask
}

/// What a derivation found: the node address it used and the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Derived {
    pub from: FromInterface,
    pub node_addr: Ipv6Addr,
    pub prefix: Prefix,
    /// The interface's MTU, where it could be read.
    pub if_mtu: Option<u32>,
}

impl Derived {
    /// One line for logs and `check`: where the prefix came from.
    pub fn describe(&self) -> String {
        format!(
            "{} (the /64 of {} on {})",
            self.from, self.node_addr, self.from.ifname
        )
    }
}

/// Why a prefix could not be derived: the problem and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeriveError {
    pub problem: String,
    pub fix: String,
}

/// The addresses of interface `ifname` in the text of `/proc/net/if_inet6`
/// (`ADDR(32 hex) IFINDEX PREFIXLEN SCOPE FLAGS NAME` a line), each with
/// its flags (`IFA_F_*` of linux/if_addr.h).
pub fn interface_entries<'a>(
    if_inet6: &'a str,
    ifname: &'a str,
) -> impl Iterator<Item = (Ipv6Addr, u32)> + 'a {
    if_inet6.lines().filter_map(move |line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 6 || f[5] != ifname || f[0].len() != 32 {
            return None;
        }
        let a = Ipv6Addr::from(u128::from_str_radix(f[0], 16).ok()?);
        Some((a, u32::from_str_radix(f[4], 16).unwrap_or(0)))
    })
}

/// Addresses of interface `ifname` in the text of `/proc/net/if_inet6`.
pub fn interface_addresses(if_inet6: &str, ifname: &str) -> Vec<Ipv6Addr> {
    interface_entries(if_inet6, ifname)
        .map(|(a, _)| a)
        .collect()
}

/// `<the /64 of node>:0:64::/96`.
pub fn prefix_for(node: Ipv6Addr) -> Prefix {
    let net = u128::from(node) & (u128::MAX << 64);
    let p = Ipv6Addr::from(net | (DERIVED_GROUP5 << 32));
    // A /96 with the "u" octet zero always parses.
    Prefix::new(p, 96).unwrap_or_else(|_| unreachable!("a /96 with u = 0 is a valid prefix"))
}

/// Derives the prefix from `ifname`'s addresses. `exists` says whether the
/// interface exists at all (an interface can exist with no address yet).
pub fn derive(
    from: &FromInterface,
    exists: bool,
    addrs: &[Ipv6Addr],
) -> Result<(Ipv6Addr, Prefix), DeriveError> {
    let name = &from.ifname;
    let start_first = if from.within == Some(MYCELIUM_RANGE) {
        format!(
            "start Mycelium first (it creates `{name}`: `mycelium --tun-name {name} --peers ...`, \
             or its systemd unit), wait until `ip -6 addr show dev {name}` lists its 400::/7 \
             address, then start nat64; or set the prefix yourself (prefix = \"<node /64>:0:64::/96\", \
             or --set prefix=...)"
        )
    } else {
        format!(
            "start the overlay that owns `{name}` first, or set prefix to a fixed \
             \"ADDR/96\" (or --set prefix=...)"
        )
    };
    if !exists {
        return Err(DeriveError {
            problem: format!("interface `{name}` does not exist in this network namespace"),
            fix: start_first,
        });
    }
    let usable: Vec<Ipv6Addr> = addrs
        .iter()
        .copied()
        .filter(|a| {
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || a.is_unicast_link_local())
        })
        .collect();
    let candidates: Vec<Ipv6Addr> = usable
        .iter()
        .copied()
        .filter(|a| from.within.is_none_or(|r| in_range(*a, r)))
        .collect();
    let Some(&node) = candidates.first() else {
        let range = from
            .within
            .map(|(a, l)| format!(" in {a}/{l}"))
            .unwrap_or_default();
        let found = if usable.is_empty() {
            "none".to_string()
        } else {
            usable
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Err(DeriveError {
            problem: format!(
                "interface `{name}` has no address{range} to derive the prefix from (its \
                 addresses: {found})"
            ),
            fix: start_first,
        });
    };
    let nets: std::collections::BTreeSet<u128> =
        candidates.iter().map(|a| u128::from(*a) >> 64).collect();
    if nets.len() > 1 {
        return Err(DeriveError {
            problem: format!(
                "interface `{name}` has addresses in {} different /64s ({}): which node is this?",
                nets.len(),
                candidates
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            fix: "set prefix to \"<the node's /64>:0:64::/96\" yourself".into(),
        });
    }
    let prefix = prefix_for(node);
    if u128::from(node) >> 32 == u128::from(prefix.addr()) >> 32 {
        return Err(DeriveError {
            problem: format!(
                "the node's own address {node} lies inside the derived prefix {prefix}"
            ),
            fix: "set prefix to another /96 inside the node's /64 (e.g. <node /64>:0:46::/96)"
                .into(),
        });
    }
    Ok((node, prefix))
}

/// [`derive`] on this host: `/proc/net/if_inet6` and the interface's index
/// and MTU, in the calling process's network namespace.
pub fn derive_on_host(from: &FromInterface) -> Result<Derived, DeriveError> {
    let exists = if_index(&from.ifname).is_some();
    let text = std::fs::read_to_string("/proc/net/if_inet6").unwrap_or_default();
    let addrs = interface_addresses(&text, &from.ifname);
    let (node_addr, prefix) = derive(from, exists, &addrs)?;
    let if_mtu = std::fs::read_to_string(format!("/sys/class/net/{}/mtu", from.ifname))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    Ok(Derived {
        from: from.clone(),
        node_addr,
        prefix,
        if_mtu,
    })
}

fn if_index(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: a valid NUL-terminated string; if_nametoindex only reads it.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

#[cfg(test)]
mod test {
    use super::*;

    /// Lines as Linux writes them (`ip -6 addr` on a Mycelium node).
    const IF_INET6: &str = "\
00000000000000000000000000000001 01 80 10 80       lo
fe80000000000000a8bbccfffe000001 02 40 20 80     eth0
20010db8000100000000000000000002 02 40 00 80     eth0
045a1b2c3d4e5f60a1b2c3d4e5f60718 05 07 00 80 mycelium
fe80000000000000d1a2b3c4d5e6f708 05 40 20 80 mycelium
";

    fn myc(name: &str) -> FromInterface {
        FromInterface {
            ifname: name.into(),
            within: Some(MYCELIUM_RANGE),
        }
    }

    #[test]
    fn spelling_parses() {
        assert_eq!(FromInterface::parse("2001:db8::/96"), None);
        assert_eq!(
            FromInterface::parse("from-interface:myc0"),
            Some(Ok(FromInterface {
                ifname: "myc0".into(),
                within: None
            }))
        );
        assert_eq!(
            FromInterface::parse("from-interface:mycelium@400::/7"),
            Some(Ok(myc("mycelium")))
        );
        assert!(matches!(
            FromInterface::parse("from-interface:"),
            Some(Err(_))
        ));
        assert!(matches!(
            FromInterface::parse("from-interface:myc0@400::"),
            Some(Err(_))
        ));
        assert_eq!(
            myc("mycelium").to_string(),
            "from-interface:mycelium@400::/7"
        );
    }

    #[test]
    fn addresses_of_one_interface() {
        let a = interface_addresses(IF_INET6, "mycelium");
        assert_eq!(
            a,
            vec![
                "45a:1b2c:3d4e:5f60:a1b2:c3d4:e5f6:718"
                    .parse::<Ipv6Addr>()
                    .unwrap(),
                "fe80::d1a2:b3c4:d5e6:f708".parse().unwrap()
            ]
        );
        assert!(interface_addresses(IF_INET6, "myc").is_empty());
    }

    #[test]
    fn rfc6052_2_2_mycelium_address_gives_its_64_colon_0_colon_64() {
        let a = interface_addresses(IF_INET6, "mycelium");
        let (node, p) = derive(&myc("mycelium"), true, &a).unwrap();
        assert_eq!(node.to_string(), "45a:1b2c:3d4e:5f60:a1b2:c3d4:e5f6:718");
        assert_eq!(p.to_string(), "45a:1b2c:3d4e:5f60:0:64::/96");
        // RFC 6052 §2.2: bits 64-71 ("u") are zero.
        assert_eq!(p.addr().octets()[8], 0);
    }

    #[test]
    fn address_outside_400_7_is_refused_for_mycelium() {
        // eth0 has only 2001:db8:1::2 and a link-local: not an overlay node.
        let a = interface_addresses(IF_INET6, "eth0");
        let e = derive(&myc("eth0"), true, &a).unwrap_err();
        assert!(e.problem.contains("no address in 400::/7"), "{e:?}");
        assert!(e.problem.contains("2001:db8:1::2"), "{e:?}");
        assert!(e.fix.contains("start Mycelium first"), "{e:?}");
        // Without a range, the same interface is usable (any overlay).
        let any = FromInterface {
            ifname: "eth0".into(),
            within: None,
        };
        let (_, p) = derive(&any, true, &a).unwrap();
        assert_eq!(p.to_string(), "2001:db8:1::64:0:0/96");
    }

    #[test]
    fn missing_interface_says_what_to_run_first() {
        let e = derive(&myc("mycelium"), false, &[]).unwrap_err();
        assert!(e.problem.contains("does not exist"), "{e:?}");
        assert!(e.fix.contains("mycelium --tun-name mycelium"), "{e:?}");
    }

    #[test]
    fn interface_with_only_link_local_has_no_address() {
        let a = vec!["fe80::1".parse().unwrap()];
        let e = derive(&myc("mycelium"), true, &a).unwrap_err();
        assert!(e.problem.contains("its addresses: none"), "{e:?}");
    }

    #[test]
    fn two_64s_are_ambiguous() {
        let a = vec!["400::1".parse().unwrap(), "401::1".parse().unwrap()];
        let e = derive(&myc("m"), true, &a).unwrap_err();
        assert!(e.problem.contains("2 different /64s"), "{e:?}");
    }

    #[test]
    fn node_address_inside_derived_prefix_is_refused() {
        let a = vec!["400:1:2:3:0:64:1:2".parse().unwrap()];
        let e = derive(&myc("m"), true, &a).unwrap_err();
        assert!(e.problem.contains("inside the derived prefix"), "{e:?}");
    }
}
