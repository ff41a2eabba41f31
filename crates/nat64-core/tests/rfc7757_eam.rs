//! RFC 7757 (Explicit Address Mappings for SIIT) checks on the EAM table.
//!
//! Expected addresses are written out literally or computed here with plain
//! integer arithmetic, never by asking the table under test.

use nat64_core::eam::{Eam, EamError, EamTable};
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn eam(a4: &str, a6: &str) -> Eam {
    Eam::parse(a4, a6).unwrap()
}

fn table(entries: &[Eam]) -> EamTable {
    let mut t = EamTable::new();
    for e in entries {
        assert!(t.insert(*e).is_empty(), "{e} collided");
    }
    t
}

/// Asserts that `a4 ↔ a6` translates both ways.
fn both_ways(t: &EamTable, a4: &str, a6: &str) {
    assert_eq!(t.v4_to_v6(v4(a4)), Some(v6(a6)), "{a4} →");
    assert_eq!(t.v6_to_v4(&v6(a6)), Some(v4(a4)), "{a6} →");
}

// ---------------------------------------------------------------- §3.2

/// §3.2: an omitted prefix length MUST be taken as 32 (IPv4) or 128 (IPv6).
#[test]
fn rfc7757_3_2_omitted_length_is_host_route() {
    let e = eam("192.0.2.1", "2001:db8:aaaa::");
    assert_eq!(e.v4(), (v4("192.0.2.1"), 32));
    assert_eq!(e.v6(), (v6("2001:db8:aaaa::"), 128));
    assert_eq!(e.size(), 1);
    assert_eq!(e, eam("192.0.2.1/32", "2001:db8:aaaa::/128"));
}

/// §3.2: an IPv4 suffix longer than the IPv6 one is refused (a MUST).
#[test]
fn rfc7757_3_2_longer_ipv4_suffix_refused() {
    assert_eq!(
        Eam::parse("192.0.2.0/24", "2001:db8::1/128"),
        Err(EamError::SuffixMismatch {
            len4: 24,
            len6: 128
        })
    );
    let msg = Eam::parse("192.0.2.0/24", "2001:db8::/124")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("use /120 or shorter"), "{msg}");
}

/// §3.2 / §3.3: Figure 1's EAM #4 (192.0.2.128/26 ↔ 2001:db8:dddd::/64)
/// and #5 (192.0.2.192/29 ↔ 2001:db8:eeee:8::/62) have longer IPv6
/// suffixes: IPv4 → IPv6 puts the IPv4 suffix right after the IPv6 prefix
/// and pads with zeros (§3.3.1 step 5); IPv6 → IPv4 drops the trailing bits
/// (§3.3.2 step 5). Expected addresses worked out by hand.
#[test]
fn rfc7757_3_3_longer_ipv6_suffix_pads_and_truncates() {
    let mut t = EamTable::new();
    t.insert(eam("192.0.2.128/26", "2001:db8:dddd::/64"));
    t.insert(eam("192.0.2.192/29", "2001:db8:eeee:8::/62"));
    // .130 = suffix 2 of 6 bits, placed at bits 63..58 of the interface ID.
    assert_eq!(
        t.v4_to_v6(v4("192.0.2.130")),
        Some(v6("2001:db8:dddd:0:800::"))
    );
    // Any IPv6 address with those six bits maps back; the rest is dropped.
    assert_eq!(
        t.v6_to_v4(&v6("2001:db8:dddd:0:800::1234")),
        Some(v4("192.0.2.130"))
    );
    assert_eq!(
        t.v6_to_v4(&v6("2001:db8:dddd:0:bff:ffff:ffff:ffff")),
        Some(v4("192.0.2.130"))
    );
    // .197 = suffix 0b101 of 3 bits after a /62: bits 65..63, i.e. the low
    // two bits of the fourth group (8 | 0b10 = a) and the top bit of the
    // fifth (0x8000).
    assert_eq!(
        t.v4_to_v6(v4("192.0.2.197")),
        Some(v6("2001:db8:eeee:a:8000::"))
    );
    assert_eq!(
        t.v6_to_v4(&v6("2001:db8:eeee:a:8000:1:2:3")),
        Some(v4("192.0.2.197"))
    );
    // IVI (RFC 7757 Appendix A.2): all of IPv4 after a /40.
    let mut ivi = EamTable::new();
    ivi.insert(eam("0.0.0.0/0", "2001:db8:ff00::/40"));
    assert_eq!(
        ivi.v4_to_v6(v4("198.51.100.2")),
        Some(v6("2001:db8:ffc6:3364:200::"))
    );
    assert_eq!(
        ivi.v6_to_v4(&v6("2001:db8:ffc6:3364:200::")),
        Some(v4("198.51.100.2"))
    );
}

#[test]
fn host_bits_refused() {
    assert_eq!(
        Eam::parse("192.0.2.1/24", "2001:db8::/120"),
        Err(EamError::V4HostBits {
            addr: v4("192.0.2.1"),
            len: 24,
            masked: v4("192.0.2.0"),
        })
    );
    // Bits above the /120 boundary are prefix bits, not host bits.
    assert!(Eam::parse("192.0.2.0/24", "2001:db8::1:0/120").is_ok());
    assert_eq!(
        Eam::parse("192.0.2.0/24", "2001:db8::80/120"),
        Err(EamError::V6HostBits {
            addr: v6("2001:db8::80"),
            len: 120,
            masked: v6("2001:db8::"),
        })
    );
    assert_eq!(
        Eam::parse("0.0.0.1/0", "::/96"),
        Err(EamError::V4HostBits {
            addr: v4("0.0.0.1"),
            len: 0,
            masked: v4("0.0.0.0"),
        })
    );
}

#[test]
fn syntax_errors_refused() {
    let bad4 = ["192.0.2.0/33", "192.0.2/24", "", "/24", "192.0.2.0/-1", "x"];
    for s in bad4 {
        assert_eq!(
            Eam::parse(s, "2001:db8::/120"),
            Err(EamError::V4Syntax(s.to_string())),
            "{s}"
        );
    }
    let bad6 = ["2001:db8::/129", "2001:db8:::/120", "", "192.0.2.1", "::/x"];
    for s in bad6 {
        assert_eq!(
            Eam::parse("192.0.2.0/24", s),
            Err(EamError::V6Syntax(s.to_string())),
            "{s}"
        );
    }
    assert_eq!(
        Eam::new(v4("192.0.2.0"), 33, v6("::"), 129),
        Err(EamError::V4Syntax("192.0.2.0/33".to_string()))
    );
}

// ---------------------------------------------------------------- §3.3

/// Appendix B, Figure 7, for the entries of Figure 1 this translator
/// accepts (#1, #2, #3, #6); 192.0.2.248 matches none (RFC 6052 applies).
#[test]
fn rfc7757_appendix_b_example_translations() {
    let t = table(&[
        eam("192.0.2.1", "2001:db8:aaaa::"),
        eam("192.0.2.2/32", "2001:db8:bbbb::b/128"),
        eam("192.0.2.16/28", "2001:db8:cccc::/124"),
        eam("192.0.2.224/31", "64:ff9b::/127"),
    ]);
    both_ways(&t, "192.0.2.1", "2001:db8:aaaa::");
    both_ways(&t, "192.0.2.2", "2001:db8:bbbb::b");
    both_ways(&t, "192.0.2.16", "2001:db8:cccc::");
    both_ways(&t, "192.0.2.24", "2001:db8:cccc::8");
    both_ways(&t, "192.0.2.31", "2001:db8:cccc::f");
    both_ways(&t, "192.0.2.225", "64:ff9b::1");
    assert_eq!(t.v4_to_v6(v4("192.0.2.248")), None);
    assert_eq!(t.v6_to_v4(&v6("64:ff9b::c000:2f8")), None);
}

/// A /24 ↔ /120 maps each of its 256 hosts, and only those, both ways.
#[test]
fn rfc7757_3_3_slash24_maps_all_256_hosts_both_ways() {
    let t = table(&[eam("192.0.2.0/24", "2001:db8:6::/120")]);
    for x in 0..=255u8 {
        let a4 = format!("192.0.2.{x}");
        let a6 = format!("2001:db8:6::{x:x}");
        both_ways(&t, &a4, &a6);
    }
    for miss in ["192.0.1.255", "192.0.3.0", "0.0.0.0", "255.255.255.255"] {
        assert_eq!(t.v4_to_v6(v4(miss)), None, "{miss}");
    }
    for miss in ["2001:db8:6::100", "2001:db8:5::ff", "2001:db8:6::1:0", "::"] {
        assert_eq!(t.v6_to_v4(&v6(miss)), None, "{miss}");
    }
}

/// A /16 ↔ /112 is one entry (65,536 hosts, not expanded) and maps the
/// hosts at both ends and in between.
#[test]
fn rfc7757_3_3_slash16_is_one_entry_and_maps_both_ends() {
    let e = eam("198.18.0.0/16", "2001:db8:64:ff::/112");
    let t = table(&[e]);
    assert_eq!(t.len(), 1);
    assert_eq!(e.size(), 65_536);
    assert_eq!(t.v4_lengths().collect::<Vec<_>>(), [16]);
    assert_eq!(t.v6_lengths().collect::<Vec<_>>(), [112]);
    both_ways(&t, "198.18.0.0", "2001:db8:64:ff::");
    both_ways(&t, "198.18.0.1", "2001:db8:64:ff::1");
    both_ways(&t, "198.18.1.2", "2001:db8:64:ff::102");
    both_ways(&t, "198.18.128.0", "2001:db8:64:ff::8000");
    both_ways(&t, "198.18.255.254", "2001:db8:64:ff::fffe");
    both_ways(&t, "198.18.255.255", "2001:db8:64:ff::ffff");
    assert_eq!(t.v4_to_v6(v4("198.17.255.255")), None);
    assert_eq!(t.v4_to_v6(v4("198.19.0.0")), None);
    assert_eq!(t.v6_to_v4(&v6("2001:db8:64:ff::1:0")), None);
    assert_eq!(t.v6_to_v4(&v6("2001:db8:64:fe::ffff")), None);
}

/// The widest entry: 0.0.0.0/0 ↔ /96 covers every IPv4 address.
#[test]
fn rfc7757_3_3_slash0_to_slash96_covers_everything() {
    let e = eam("0.0.0.0/0", "64:ff9b::/96");
    assert_eq!(e.size(), 1 << 32);
    let t = table(&[e]);
    both_ways(&t, "0.0.0.0", "64:ff9b::");
    both_ways(&t, "0.0.0.1", "64:ff9b::1");
    both_ways(&t, "192.0.2.33", "64:ff9b::c000:221");
    both_ways(&t, "128.0.0.0", "64:ff9b::8000:0");
    both_ways(&t, "255.255.255.255", "64:ff9b::ffff:ffff");
    assert_eq!(t.v6_to_v4(&v6("64:ff9b:0:0:0:1::")), None);
    assert_eq!(t.v6_to_v4(&v6("64:ff9a::ffff:ffff")), None);
    assert_eq!(t.v6_to_v4(&v6("::")), None);
}

/// The narrowest entry: /32 ↔ /128 maps one host and nothing next to it.
#[test]
fn rfc7757_3_3_slash32_to_slash128_single_host() {
    let t = table(&[eam("203.0.113.1/32", "2001:db8:aaaa::1/128")]);
    both_ways(&t, "203.0.113.1", "2001:db8:aaaa::1");
    assert_eq!(t.v4_to_v6(v4("203.0.113.0")), None);
    assert_eq!(t.v4_to_v6(v4("203.0.113.2")), None);
    assert_eq!(t.v6_to_v4(&v6("2001:db8:aaaa::")), None);
    assert_eq!(t.v6_to_v4(&v6("2001:db8:aaaa::2")), None);
}

/// §3.3.1 and §3.3.2 step 1: nested entries are kept and the longest
/// prefix wins, in each direction and whatever the insertion order.
#[test]
fn rfc7757_3_3_longest_prefix_match_both_directions() {
    // IPv4 prefixes nested (/24 ⊃ /25 ⊃ /32), IPv6 prefixes disjoint.
    let v4_nested = [
        eam("192.0.2.0/24", "2001:db8:a::/120"),
        eam("192.0.2.128/25", "2001:db8:b::/121"),
        eam("192.0.2.129/32", "2001:db8:c::1/128"),
    ];
    // IPv6 prefixes nested (/120 ⊃ /121 ⊃ /128), IPv4 prefixes disjoint.
    let v6_nested = [
        eam("198.51.100.0/24", "2001:db8:d::/120"),
        eam("203.0.113.0/25", "2001:db8:d::80/121"),
        eam("203.0.113.200/32", "2001:db8:d::1/128"),
    ];
    let orders: [[usize; 3]; 3] = [[0, 1, 2], [2, 1, 0], [1, 2, 0]];
    for order in orders {
        let mut t = EamTable::new();
        for i in order {
            assert!(t.insert(v4_nested[i]).is_empty());
            assert!(t.insert(v6_nested[i]).is_empty());
        }
        // IPv4 → IPv6.
        assert_eq!(t.v4_to_v6(v4("192.0.2.1")), Some(v6("2001:db8:a::1")));
        assert_eq!(t.v4_to_v6(v4("192.0.2.127")), Some(v6("2001:db8:a::7f")));
        assert_eq!(t.v4_to_v6(v4("192.0.2.128")), Some(v6("2001:db8:b::")));
        assert_eq!(t.v4_to_v6(v4("192.0.2.130")), Some(v6("2001:db8:b::2")));
        assert_eq!(t.v4_to_v6(v4("192.0.2.255")), Some(v6("2001:db8:b::7f")));
        assert_eq!(t.v4_to_v6(v4("192.0.2.129")), Some(v6("2001:db8:c::1")));
        assert_eq!(t.find_v4(v4("192.0.2.129")), Some(&v4_nested[2]));
        // IPv6 → IPv4.
        assert_eq!(t.v6_to_v4(&v6("2001:db8:d::5")), Some(v4("198.51.100.5")));
        assert_eq!(
            t.v6_to_v4(&v6("2001:db8:d::7f")),
            Some(v4("198.51.100.127"))
        );
        assert_eq!(t.v6_to_v4(&v6("2001:db8:d::80")), Some(v4("203.0.113.0")));
        assert_eq!(t.v6_to_v4(&v6("2001:db8:d::81")), Some(v4("203.0.113.1")));
        assert_eq!(t.v6_to_v4(&v6("2001:db8:d::ff")), Some(v4("203.0.113.127")));
        assert_eq!(t.v6_to_v4(&v6("2001:db8:d::1")), Some(v4("203.0.113.200")));
        assert_eq!(t.find_v6(&v6("2001:db8:d::1")), Some(&v6_nested[2]));
    }
}

// ---------------------------------------------------------------- §5

/// §5, Figure 3: two entries with the same IPv6 prefix would make IPv6 →
/// IPv4 unspecified. Here the newer entry replaces the older one (the RFC
/// allows refusing it; either way the table never holds both).
#[test]
fn rfc7757_5_identical_prefix_newer_replaces() {
    let first = eam("198.51.100.8/32", "2001:db8::1/128");
    let second = eam("198.51.100.9/32", "2001:db8::1/128");
    let mut t = table(&[first]);
    assert_eq!(t.collisions(&second), vec![first]);
    assert_eq!(t.len(), 1, "collisions() does not change the table");
    assert_eq!(t.insert(second), vec![first]);
    assert_eq!(t.len(), 1);
    assert_eq!(t.v6_to_v4(&v6("2001:db8::1")), Some(v4("198.51.100.9")));
    assert_eq!(t.v4_to_v6(v4("198.51.100.9")), Some(v6("2001:db8::1")));
    assert_eq!(t.v4_to_v6(v4("198.51.100.8")), None);

    // Same IPv4 prefix, other IPv6 prefix: replaced as well.
    let third = eam("198.51.100.9/32", "2001:db8::2/128");
    assert_eq!(t.insert(third), vec![second]);
    assert_eq!(t.v4_to_v6(v4("198.51.100.9")), Some(v6("2001:db8::2")));
    assert_eq!(t.v6_to_v4(&v6("2001:db8::1")), None);

    // Re-inserting an entry replaces it by itself.
    assert_eq!(t.insert(third), vec![third]);
    assert_eq!(t.iter().copied().collect::<Vec<_>>(), vec![third]);
}

/// One entry can collide with two others, one per side; both go, and are
/// returned in insertion order.
#[test]
fn rfc7757_5_collision_on_both_sides_replaces_both() {
    let a = eam("192.0.2.0/24", "2001:db8:a::/120");
    let keep = eam("192.0.2.0/25", "2001:db8:a::/121");
    let b = eam("198.51.100.0/24", "2001:db8:b::/120");
    let mut t = table(&[a, keep, b]);
    let c = eam("198.51.100.0/24", "2001:db8:a::/120");
    assert_eq!(t.collisions(&c), vec![a, b]);
    assert_eq!(t.insert(c), vec![a, b]);
    assert_eq!(t.iter().copied().collect::<Vec<_>>(), vec![keep, c]);
    assert_eq!(t.v4_to_v6(v4("192.0.2.200")), None);
    assert_eq!(t.v4_to_v6(v4("192.0.2.1")), Some(v6("2001:db8:a::1")));
    assert_eq!(t.v6_to_v4(&v6("2001:db8:a::1")), Some(v4("192.0.2.1")));
    assert_eq!(
        t.v6_to_v4(&v6("2001:db8:a::81")),
        Some(v4("198.51.100.129"))
    );
    assert_eq!(t.v6_to_v4(&v6("2001:db8:b::1")), None);
}

/// §5, Figure 2 in spirit (with equal suffix lengths): nested IPv4 prefixes
/// over disjoint IPv6 prefixes are kept, translate asymmetrically, and are
/// reported by `overlapping` so a loader can warn.
#[test]
fn rfc7757_5_overlapping_entries_kept_and_reported() {
    let wide = eam("0.0.0.0/0", "2001:db8:ff::/96");
    let exception = eam("198.51.100.64/32", "2001:db8::abcd/128");
    let t = table(&[wide, exception]);
    // 2001:db8:ff::c633:6440 → 198.51.100.64 through the /96 …
    assert_eq!(
        t.v6_to_v4(&v6("2001:db8:ff::c633:6440")),
        Some(v4("198.51.100.64"))
    );
    // … but 198.51.100.64 → 2001:db8::abcd through the /32.
    assert_eq!(t.v4_to_v6(v4("198.51.100.64")), Some(v6("2001:db8::abcd")));
    assert_eq!(
        t.v4_to_v6(v4("198.51.100.65")),
        Some(v6("2001:db8:ff::c633:6441"))
    );

    assert!(wide.overlaps(&exception) && exception.overlaps(&wide));
    assert_eq!(t.overlapping(&exception).collect::<Vec<_>>(), vec![&wide]);
    let other = eam("203.0.113.0/24", "2001:db8:ff:1::/120");
    assert!(!exception.overlaps(&other));
    // Overlap on the IPv6 side only.
    let inner6 = eam("203.0.113.0/25", "2001:db8:ff:1::/121");
    assert!(other.overlaps(&inner6));
    // A collision is not listed as an overlap.
    let same4 = eam("198.51.100.64/32", "2001:db8::1/128");
    assert!(t.overlapping(&same4).all(|x| *x != exception));
}

// ---------------------------------------------------------------- table

#[test]
fn empty_table_answers_none() {
    let t = EamTable::new();
    assert!(t.is_empty());
    assert_eq!(t.len(), 0);
    assert_eq!(t.iter().count(), 0);
    assert_eq!(t.find_v4(v4("192.0.2.1")), None);
    assert_eq!(t.find_v6(&v6("2001:db8::1")), None);
    assert_eq!(t.v4_to_v6(v4("0.0.0.0")), None);
    assert_eq!(t.v6_to_v4(&v6("::")), None);
}

#[test]
fn remove_keeps_lookups_consistent() {
    let wide = eam("192.0.2.0/24", "2001:db8:a::/120");
    let mid = eam("192.0.2.0/28", "2001:db8:b::/124");
    let host = eam("192.0.2.5", "2001:db8:c::5");
    let mut t = table(&[wide, mid, host]);
    assert_eq!(t.v4_to_v6(v4("192.0.2.5")), Some(v6("2001:db8:c::5")));

    // Same prefixes, other partner: not the entry, nothing removed.
    assert!(!t.remove(&eam("192.0.2.5", "2001:db8:c::6")));
    assert!(!t.remove(&eam("192.0.2.6", "2001:db8:c::5")));
    assert_eq!(t.len(), 3);

    assert!(t.remove(&host));
    assert!(!t.remove(&host), "already gone");
    assert_eq!(t.v4_to_v6(v4("192.0.2.5")), Some(v6("2001:db8:b::5")));
    assert_eq!(t.v6_to_v4(&v6("2001:db8:c::5")), None);
    assert_eq!(t.v6_to_v4(&v6("2001:db8:b::5")), Some(v4("192.0.2.5")));

    assert!(t.remove(&mid));
    assert_eq!(t.v4_to_v6(v4("192.0.2.5")), Some(v6("2001:db8:a::5")));
    assert_eq!(t.v6_to_v4(&v6("2001:db8:b::5")), None);
    assert_eq!(t.iter().copied().collect::<Vec<_>>(), vec![wide]);

    assert!(t.remove(&wide));
    assert!(t.is_empty());
    assert_eq!(t.v4_to_v6(v4("192.0.2.5")), None);
    assert_eq!(t.v6_to_v4(&v6("2001:db8:a::5")), None);

    // The table is usable again after being emptied.
    t.insert(host);
    assert_eq!(t.v4_to_v6(v4("192.0.2.5")), Some(v6("2001:db8:c::5")));
}

#[test]
fn iter_keeps_insertion_order() {
    let es = [
        eam("203.0.113.0/24", "2001:db8:3::/120"),
        eam("192.0.2.1", "2001:db8:1::1"),
        eam("0.0.0.0/0", "64:ff9b::/96"),
        eam("198.51.100.0/30", "2001:db8:2::/126"),
    ];
    let mut t = table(&es);
    assert_eq!(t.iter().copied().collect::<Vec<_>>(), es.to_vec());
    assert!(t.remove(&es[1]));
    assert_eq!(
        t.iter().copied().collect::<Vec<_>>(),
        vec![es[0], es[2], es[3]]
    );
}

#[test]
fn clone_is_independent() {
    let a = eam("192.0.2.0/24", "2001:db8:a::/120");
    let b = eam("192.0.2.7", "2001:db8:b::7");
    let mut t = table(&[a]);
    let snapshot = t.clone();
    t.insert(b);
    assert!(t.remove(&a));
    assert_eq!(snapshot.len(), 1);
    assert_eq!(
        snapshot.v4_to_v6(v4("192.0.2.7")),
        Some(v6("2001:db8:a::7"))
    );
    assert_eq!(t.v4_to_v6(v4("192.0.2.7")), Some(v6("2001:db8:b::7")));
    assert_eq!(t.v4_to_v6(v4("192.0.2.8")), None);
}

#[test]
fn display_shows_both_prefixes() {
    let e = eam("192.0.2.0/24", "2001:db8:6::/120");
    assert_eq!(e.to_string(), "192.0.2.0/24 ↔ 2001:db8:6::/120");
}

// ---------------------------------------------------------------- model

/// An entry as plain integers: (v4 prefix, len4, v6 prefix, len6).
type Raw = (u32, u8, u128, u8);

fn m4(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

fn m6(len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        u128::MAX << (128 - u32::from(len))
    }
}

fn raw(e: &Eam) -> Raw {
    let (a4, l4) = e.v4();
    let (a6, l6) = e.v6();
    (u32::from(a4), l4, u128::from(a6), l6)
}

/// The reference: a list scanned linearly, the conflict rule applied by
/// hand, longest match by maximum length.
#[derive(Default)]
struct Model {
    entries: Vec<Raw>,
}

impl Model {
    fn collides(x: &Raw, e: &Raw) -> bool {
        (x.0 == e.0 && x.1 == e.1) || (x.2 == e.2 && x.3 == e.3)
    }

    fn insert(&mut self, e: Raw) -> Vec<Raw> {
        let gone = self
            .entries
            .iter()
            .filter(|x| Self::collides(x, &e))
            .copied()
            .collect();
        self.entries.retain(|x| !Self::collides(x, &e));
        self.entries.push(e);
        gone
    }

    fn remove(&mut self, e: Raw) -> bool {
        let n = self.entries.len();
        self.entries.retain(|x| *x != e);
        n != self.entries.len()
    }

    fn find4(&self, a: u32) -> Option<Raw> {
        let hits = self.entries.iter().filter(|x| a & m4(x.1) == x.0);
        hits.max_by_key(|x| x.1).copied()
    }

    fn find6(&self, a: u128) -> Option<Raw> {
        let hits = self.entries.iter().filter(|x| a & m6(x.3) == x.2);
        hits.max_by_key(|x| x.3).copied()
    }

    /// Equal suffix lengths: the suffix moves across unchanged.
    fn v4_to_v6(&self, a: u32) -> Option<u128> {
        self.find4(a).map(|x| x.2 | u128::from(a & !m4(x.1)))
    }

    fn v6_to_v4(&self, a: u128) -> Option<u32> {
        self.find6(a).map(|x| x.0 | (a & !m6(x.3)) as u32)
    }
}

/// IPv4 values near each other so that prefixes nest and collide often.
const V4_POOL: [u32; 6] = [
    0x0a00_0000, // 10.0.0.0
    0x0a00_0080, // 10.0.0.128
    0x0a00_0100, // 10.0.1.0
    0x0a01_0000, // 10.1.0.0
    0xc000_0201, // 192.0.2.1
    0xffff_ffff, // 255.255.255.255
];

/// The upper 96 bits of IPv6 values.
const V6_HEADS: [u128; 3] = [
    0x2001_0db8_000a_0000_0000_0000 << 32,
    0x2001_0db8_000b_0000_0000_0000 << 32,
    0x0064_ff9b_0000_0000_0000_0000 << 32,
];

const LENS4: [u8; 9] = [0, 1, 8, 16, 23, 24, 25, 31, 32];

fn arb_v4() -> impl Strategy<Value = u32> {
    prop_oneof![
        3 => (prop::sample::select(&V4_POOL[..]), 0u32..0x200).prop_map(|(b, x)| b ^ x),
        1 => any::<u32>(),
    ]
}

fn arb_v6() -> impl Strategy<Value = u128> {
    prop_oneof![
        3 => (prop::sample::select(&V6_HEADS[..]), arb_v4())
            .prop_map(|(h, a)| h | u128::from(a)),
        1 => any::<u128>(),
    ]
}

fn arb_eam() -> impl Strategy<Value = Eam> {
    (
        prop::sample::select(&LENS4[..]),
        arb_v4(),
        prop::sample::select(&V6_HEADS[..]),
        arb_v4(),
    )
        .prop_map(|(len4, a4, head, low)| {
            let len6 = len4 + 96;
            let p4 = a4 & m4(len4);
            let p6 = (head | u128::from(low)) & m6(len6);
            Eam::new(Ipv4Addr::from(p4), len4, Ipv6Addr::from(p6), len6).unwrap()
        })
}

#[derive(Debug, Clone)]
enum Op {
    Insert(Eam),
    /// Remove the n-th entry present (modulo the count).
    RemovePresent(usize),
    /// Remove an entry that is probably absent.
    RemoveAny(Eam),
    Find4(u32),
    Find6(u128),
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => arb_eam().prop_map(Op::Insert),
        1 => any::<usize>().prop_map(Op::RemovePresent),
        1 => arb_eam().prop_map(Op::RemoveAny),
        4 => arb_v4().prop_map(Op::Find4),
        4 => arb_v6().prop_map(Op::Find6),
    ]
}

fn check_lookups(t: &EamTable, m: &Model, a4: u32, a6: u128) {
    let got4 = t.find_v4(Ipv4Addr::from(a4)).map(raw);
    assert_eq!(got4, m.find4(a4), "find_v4 {}", Ipv4Addr::from(a4));
    assert_eq!(
        t.v4_to_v6(Ipv4Addr::from(a4)).map(u128::from),
        m.v4_to_v6(a4),
        "v4_to_v6 {}",
        Ipv4Addr::from(a4)
    );
    let got6 = t.find_v6(&Ipv6Addr::from(a6)).map(raw);
    assert_eq!(got6, m.find6(a6), "find_v6 {}", Ipv6Addr::from(a6));
    assert_eq!(
        t.v6_to_v4(&Ipv6Addr::from(a6)).map(u32::from),
        m.v6_to_v4(a6),
        "v6_to_v4 {}",
        Ipv6Addr::from(a6)
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The hashed table agrees with the linear model on every operation,
    /// and its listing keeps the model's insertion order.
    #[test]
    fn rfc7757_3_3_table_matches_linear_longest_match_model(
        ops in prop::collection::vec(arb_op(), 1..80),
    ) {
        let mut t = EamTable::new();
        let mut m = Model::default();
        for op in ops {
            match op {
                Op::Insert(e) => {
                    let gone: Vec<Raw> = t.insert(e).iter().map(raw).collect();
                    prop_assert_eq!(gone, m.insert(raw(&e)));
                }
                Op::RemovePresent(n) => {
                    let picked = t.iter().nth(n % t.len().max(1)).copied();
                    if let Some(e) = picked {
                        prop_assert!(t.remove(&e));
                        prop_assert!(m.remove(raw(&e)));
                    }
                }
                Op::RemoveAny(e) => {
                    prop_assert_eq!(t.remove(&e), m.remove(raw(&e)));
                }
                Op::Find4(a) => {
                    let a6 = m.v4_to_v6(a).unwrap_or(0);
                    check_lookups(&t, &m, a, a6);
                }
                Op::Find6(a) => {
                    let a4 = m.v6_to_v4(a).unwrap_or(0);
                    check_lookups(&t, &m, a4, a);
                }
            }
            prop_assert_eq!(t.len(), m.entries.len());
            prop_assert_eq!(t.is_empty(), m.entries.is_empty());
            let listed: Vec<Raw> = t.iter().map(raw).collect();
            prop_assert_eq!(&listed, &m.entries);
        }
        // Every entry left maps its own prefix both ways unless a longer
        // one shadows it; the model says which.
        for e in m.entries.clone() {
            check_lookups(&t, &m, e.0, e.2);
            check_lookups(&t, &m, e.0 | !m4(e.1), e.2 | !m6(e.3));
        }
    }

    /// No input makes construction, parsing or lookups panic.
    #[test]
    fn no_panic_on_any_input(
        a4 in any::<u32>(), l4 in any::<u8>(), a6 in any::<u128>(), l6 in any::<u8>(),
        s4 in ".{0,24}", s6 in ".{0,48}",
    ) {
        let _ = Eam::parse(&s4, &s6);
        let _ = Eam::parse(&format!("{}/{l4}", Ipv4Addr::from(a4)), &format!("{}/{l6}", Ipv6Addr::from(a6)));
        let mut t = EamTable::new();
        if let Ok(e) = Eam::new(Ipv4Addr::from(a4), l4, Ipv6Addr::from(a6), l6) {
            let _ = (e.size(), e.to_string());
            t.insert(e);
        }
        let _ = t.v4_to_v6(Ipv4Addr::from(a4));
        let _ = t.v6_to_v4(&Ipv6Addr::from(a6));
        // Masked inputs are always valid entries.
        let len4 = l4 % 33;
        let e = Eam::new(
            Ipv4Addr::from(a4 & m4(len4)), len4,
            Ipv6Addr::from(a6 & m6(len4 + 96)), len4 + 96,
        );
        prop_assert!(e.is_ok());
    }
}
