//! Shared harness: translate arbitrary bytes, then check every invariant
//! the daemon relies on (output inside the buffer, a whole IP packet of the
//! other family, fragments and ICMP errors buildable). Any panic is a bug.
#![allow(dead_code)]

use nat64_core::xlat::{self, Config, Offload, StatelessMapper, HEADROOM};
use nat64_core::Verdict;

pub fn mapper() -> StatelessMapper {
    StatelessMapper {
        prefix: "64:ff9b::/96".parse().expect("static prefix"),
        wkp_strict: false,
    }
}

pub fn run(data: &[u8], six_to_four: bool) {
    run_offload(data, six_to_four, Offload::NONE)
}

/// [`run`] with TUN offload metadata (GSO super-packet, partial checksum).
pub fn run_offload(data: &[u8], six_to_four: bool, off: Offload) {
    // The first byte picks config knobs so the fuzzer explores them.
    let (knobs, pkt) = match data.split_first() {
        Some((k, p)) => (*k, p),
        None => return,
    };
    let cfg = Config {
        ipv4_mtu: if knobs & 1 != 0 { 1280 } else { 1500 },
        ipv6_link_mtu: if knobs & 2 != 0 { 1280 } else { 1500 },
        udp_zero_checksum: match knobs >> 6 {
            0 => xlat::UdpZeroChecksum::Calc,
            1 => xlat::UdpZeroChecksum::Drop,
            _ => xlat::UdpZeroChecksum::Forward,
        },
        ..Config::default()
    };
    let mut buf = vec![0u8; HEADROOM + pkt.len() + 64];
    buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
    // Knob bits 2 and 3 repair the IP header and ICMP checksums, so the
    // fuzzer gets past checksum checks into the ICMP-error and inner-packet
    // code instead of spending its time on BadIpv4Checksum/BadChecksum.
    fix_checksums(&mut buf[HEADROOM..], knobs);
    if off.csum_partial && knobs & 0x10 != 0 {
        make_partial(&mut buf[HEADROOM..HEADROOM + pkt.len()]);
    }
    let pkt = &buf[HEADROOM..HEADROOM + pkt.len()].to_vec()[..];
    let mut m = mapper();
    let v = if six_to_four {
        xlat::six_to_four::six_to_four_offload(&mut buf, HEADROOM, pkt.len(), &cfg, &mut m, off)
    } else {
        xlat::four_to_six::four_to_six_offload(&mut buf, HEADROOM, pkt.len(), &cfg, &mut m, off)
    };
    let mut scratch = vec![0u8; 65536];
    match v {
        Verdict::Forward {
            start,
            len,
            fragment_mtu,
        } => {
            assert!(
                start.checked_add(len).is_some_and(|end| end <= buf.len()),
                "Forward {start}+{len} outside a {}-byte buffer",
                buf.len()
            );
            let out = &buf[start..start + len];
            let version = out.first().map(|b| b >> 4);
            assert_eq!(version, Some(if six_to_four { 4 } else { 6 }));
            let declared = if six_to_four {
                assert!(len >= 20, "IPv4 output of {len} bytes");
                usize::from(u16::from_be_bytes([out[2], out[3]]))
            } else {
                assert!(len >= 40, "IPv6 output of {len} bytes");
                40 + usize::from(u16::from_be_bytes([out[4], out[5]]))
            };
            assert_eq!(declared, len, "the output's header says {declared} bytes");
            if let Some(mtu) = fragment_mtu {
                let mut n = 0;
                let mut emit = |f: &[u8]| {
                    assert!(f.len() <= mtu as usize);
                    n += 1;
                };
                let r = if six_to_four {
                    xlat::frag::fragment_v4(out, mtu, &mut scratch, &mut emit)
                } else {
                    xlat::frag::fragment_v6(out, mtu, &mut scratch, &mut emit)
                };
                assert!(r.is_ok(), "fragmenting a translated packet failed: {r:?}");
            }
        }
        Verdict::Icmp { error, .. } => {
            // The original must still be intact and answerable.
            let orig = &buf[HEADROOM..HEADROOM + pkt.len()];
            assert_eq!(orig, pkt);
            let r = if six_to_four {
                let src = "64:ff9b::c000:201".parse().expect("addr");
                xlat::icmp_gen::icmpv6_error(orig, error, src, &mut scratch)
            } else {
                let src = "192.0.2.1".parse().expect("addr");
                xlat::icmp_gen::icmpv4_error(orig, error, src, &mut scratch)
            };
            assert!(r.is_ok(), "cannot build the ICMP error {error:?}: {r:?}");
        }
        Verdict::Drop(_) => {}
    }
}

pub fn fix_checksums(p: &mut [u8], knobs: u8) {
    use nat64_core::wire::checksum;
    if p.len() >= 20 && p[0] >> 4 == 4 {
        let hl = ((p[0] & 0x0f) as usize) * 4;
        if knobs & 4 != 0 && hl >= 20 && hl <= p.len() {
            p[10] = 0;
            p[11] = 0;
            let c = checksum::checksum(&p[..hl]);
            p[10..12].copy_from_slice(&c.to_be_bytes());
        }
        let tl = u16::from_be_bytes([p[2], p[3]]) as usize;
        if knobs & 8 != 0 && p[9] == 1 && hl >= 20 && hl + 4 <= tl && tl <= p.len() {
            p[hl + 2] = 0;
            p[hl + 3] = 0;
            let c = checksum::checksum(&p[hl..tl]);
            p[hl + 2..hl + 4].copy_from_slice(&c.to_be_bytes());
        }
    } else if p.len() >= 44 && p[0] >> 4 == 6 && p[6] == 58 && knobs & 8 != 0 {
        let end = 40 + u16::from_be_bytes([p[4], p[5]]) as usize;
        if end >= 44 && end <= p.len() {
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&p[8..24]);
            dst.copy_from_slice(&p[24..40]);
            p[42] = 0;
            p[43] = 0;
            let sum = checksum::pseudo_header_v6(src.into(), dst.into(), 58, (end - 40) as u32);
            let c = !checksum::fold(checksum::accumulate(sum, &p[40..end]));
            p[42..44].copy_from_slice(&c.to_be_bytes());
        }
    }
}

/// What the kernel hands over with NEEDS_CSUM: the TCP/UDP checksum field
/// holds the folded pseudo-header sum, not the checksum.
fn make_partial(p: &mut [u8]) {
    use nat64_core::wire::checksum;
    if p.len() >= 20 && p[0] >> 4 == 4 {
        let hl = ((p[0] & 0x0f) as usize) * 4;
        let tl = u16::from_be_bytes([p[2], p[3]]) as usize;
        let at = match p[9] {
            6 => 16,
            17 => 6,
            _ => return,
        };
        if hl >= 20 && hl + at + 2 <= tl && tl <= p.len() {
            let src = [p[12], p[13], p[14], p[15]];
            let dst = [p[16], p[17], p[18], p[19]];
            let sum = checksum::pseudo_header_v4(src.into(), dst.into(), p[9], (tl - hl) as u16);
            p[hl + at..hl + at + 2].copy_from_slice(&checksum::fold(sum).to_be_bytes());
        }
    } else if p.len() >= 40 && p[0] >> 4 == 6 {
        let at = match p[6] {
            6 => 16,
            17 => 6,
            _ => return,
        };
        let end = 40 + u16::from_be_bytes([p[4], p[5]]) as usize;
        if 40 + at + 2 <= end && end <= p.len() {
            let mut src = [0u8; 16];
            let mut dst = [0u8; 16];
            src.copy_from_slice(&p[8..24]);
            dst.copy_from_slice(&p[24..40]);
            let sum = checksum::pseudo_header_v6(src.into(), dst.into(), p[6], (end - 40) as u32);
            p[40 + at..40 + at + 2].copy_from_slice(&checksum::fold(sum).to_be_bytes());
        }
    }
}
