#![no_main]
//! Bounded reassembly of ICMP/ICMPv6 fragments (RFC 791 §3.2, RFC 8200
//! §4.5, RFC 5722): arbitrary packets and well-formed fragments of a few
//! datagrams, on a clock, into a `Reassembler` with small limits. After
//! every push: held bytes and datagrams within the limits; a completed
//! datagram is a whole packet in `out` (not a fragment any more), and when
//! only well-formed fragments were pushed its data is what they carried.
#[path = "engine_model.rs"]
mod engine_model;

use engine_model::{ipv4, ipv6, Bytes};
use nat64_core::time::Timestamp;
use nat64_core::xlat::reassemble::{is_icmp_fragment, Limits, Push, Reassembler};
use std::net::{Ipv4Addr, Ipv6Addr};

const V4: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(198, 51, 100, 7)];
const V6: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0xc000, 0x0201),
];

/// The byte at `at` of the data of datagram `ident`: every well-formed
/// fragment of a datagram carries the same bytes for the same offsets.
fn byte(ident: u8, at: usize) -> u8 {
    (at as u8).wrapping_mul(31) ^ ident
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let (l0, l1, l2) = (b.u8(), b.u8(), b.u8());
    let limits = Limits {
        max_datagrams: usize::from(l0 % 8),
        max_bytes: if l0 & 0x80 != 0 {
            1 << 20
        } else {
            usize::from(l1) * 24
        },
        timeout_ms: u64::from(l2) * 50,
    };
    let mut r = Reassembler::new(limits);
    let mut out = vec![0u8; 65535 + 128];
    let mut now = 0u64;
    let mut raw_seen = false;
    let mut steps = 0;
    while !b.is_empty() && steps < 200 {
        steps += 1;
        let tag = b.u8();
        let pkt: Vec<u8> = match tag % 4 {
            0 => {
                raw_seen = true;
                let n = usize::from(b.u8()) * 4;
                (0..n).map(|_| b.u8()).collect()
            }
            1 | 2 => {
                // A well-formed fragment: datagram (addresses, ident),
                // offset in 8-byte units, length, more-fragments.
                let sel = b.u8();
                let off = usize::from(b.u8() % 64) * 8;
                let units = usize::from(b.u8() % 24);
                let more = sel & 0x80 != 0;
                let len = units * 8 + if more { 0 } else { usize::from(sel >> 4 & 7) };
                let ident = sel & 3;
                let payload: Vec<u8> = (off..off + len).map(|i| byte(ident, i)).collect();
                let fr = Some((off as u16, more));
                if tag % 4 == 1 {
                    let (s, d) = (V4[usize::from(sel >> 2 & 1)], V4[1]);
                    ipv4(s, d, 1, &payload, fr, u16::from(ident), false)
                } else {
                    let (s, d) = (V6[usize::from(sel >> 2 & 1)], V6[1]);
                    ipv6(s, d, 58, &payload, fr, u32::from(ident))
                }
            }
            _ => {
                now += u64::from(b.u8()) * 25;
                if tag & 0x80 != 0 {
                    let _ = r.expire(Timestamp(now));
                }
                continue;
            }
        };
        let pushed = r.push(&pkt, Timestamp(now), &mut out);
        assert!(
            r.held_bytes() <= limits.max_bytes,
            "{} bytes held, limit {}",
            r.held_bytes(),
            limits.max_bytes
        );
        assert!(
            r.held_datagrams() <= limits.max_datagrams,
            "{} datagrams held, limit {}",
            r.held_datagrams(),
            limits.max_datagrams
        );
        assert!(
            r.held_fragments() >= r.held_datagrams(),
            "{} datagrams but {} fragments held",
            r.held_datagrams(),
            r.held_fragments()
        );
        assert_eq!(
            r.held_bytes() == 0,
            r.held_datagrams() == 0,
            "{} bytes held in {} datagrams",
            r.held_bytes(),
            r.held_datagrams()
        );
        if let Push::Complete { len } = pushed.push {
            assert!(len <= out.len());
            let p = &out[..len];
            let (declared, hl) = match p.first().map(|x| x >> 4) {
                Some(4) if len >= 20 => (
                    usize::from(u16::from_be_bytes([p[2], p[3]])),
                    usize::from(p[0] & 15) * 4,
                ),
                Some(6) if len >= 48 => (40 + usize::from(u16::from_be_bytes([p[4], p[5]])), 48),
                _ => panic!("reassembled {len} bytes are no IP packet: {p:02x?}"),
            };
            assert_eq!(
                declared, len,
                "reassembled header says {declared}, {len} written"
            );
            assert!(
                !is_icmp_fragment(p),
                "reassembled packet is still a fragment"
            );
            if !raw_seen && p[0] >> 4 == 6 {
                let ident = p[47];
                for (i, x) in p[hl..].iter().enumerate() {
                    assert_eq!(
                        *x,
                        byte(ident, i),
                        "reassembled byte {i} of datagram {ident}"
                    );
                }
            } else if !raw_seen {
                let ident = p[5];
                for (i, x) in p[hl..].iter().enumerate() {
                    assert_eq!(
                        *x,
                        byte(ident, i),
                        "reassembled byte {i} of datagram {ident}"
                    );
                }
            }
        }
    }
});
