//! The BPF program against the user-space translator, with
//! `BPF_PROG_TEST_RUN`: every packet it translates must come out byte for
//! byte as `nat64_core::xlat::translate` writes it, and every packet it must
//! not translate must come out untouched, with `TC_ACT_OK`.
//!
//! Runs as root with a build that had clang; elsewhere each test prints a
//! `*** SKIP ... ***` line (under `CI`, a build without clang fails).

mod common;

use common::*;
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use nat64_bpf::{
    Config, Counters, FastPath, FastPathError, Forwarding, L4Proto, SkBuffCtx, Stat, ToStack,
};
use std::net::Ipv4Addr;

/// Test runs have no egress: translate and hand to the stack, no MTU.
fn stack_config(mtu4: u16, mtu6: u16) -> Config {
    Config {
        forwarding: Forwarding::Stack,
        to_stack: ToStack {
            into: None,
            mtu4,
            mtu6,
        },
        ..Config::default()
    }
}

fn setup(test: &str, proto: L4Proto) -> Option<(FastPath, TestFlow)> {
    let mut fp = fast_path(test)?;
    fp.set_config(&stack_config(0, 0)).unwrap();
    let f = flow(proto);
    install(&mut fp, &f);
    Some((fp, f))
}

fn first_difference(a: &[u8], b: &[u8]) -> String {
    match a.iter().zip(b).position(|(x, y)| x != y) {
        Some(i) => format!(
            "first difference at IP offset {i}: bpf {:#04x}, user space {:#04x}",
            a[i], b[i]
        ),
        None => format!("lengths differ: bpf {}, user space {}", a.len(), b.len()),
    }
}

/// The L4 checksum of an IP packet, recomputed by etherparse, equals the
/// one in the packet; an IPv4 header checksum is valid.
fn verify_checksums(ip: &[u8]) {
    let s = SlicedPacket::from_ip(ip).expect("etherparse parses the output");
    match (&s.net, &s.transport) {
        (Some(NetSlice::Ipv4(v4)), Some(t)) => {
            let h = v4.header().to_header();
            assert_eq!(
                h.header_checksum,
                h.calc_header_checksum(),
                "IPv4 header checksum"
            );
            match t {
                TransportSlice::Tcp(tcp) => assert_eq!(
                    tcp.checksum(),
                    tcp.to_header()
                        .calc_checksum_ipv4(&h, tcp.payload())
                        .unwrap(),
                    "TCP checksum over IPv4"
                ),
                TransportSlice::Udp(udp) => assert_eq!(
                    udp.checksum(),
                    udp.to_header()
                        .calc_checksum_ipv4(&h, udp.payload())
                        .unwrap(),
                    "UDP checksum over IPv4"
                ),
                TransportSlice::Icmpv4(_) => {
                    assert_eq!(ones_sum(0, &ip[20..]), 0xffff, "ICMP checksum")
                }
                other => panic!("unexpected transport {other:?}"),
            }
        }
        (Some(NetSlice::Ipv6(v6)), Some(t)) => {
            let h = v6.header().to_header();
            match t {
                TransportSlice::Tcp(tcp) => assert_eq!(
                    tcp.checksum(),
                    tcp.to_header()
                        .calc_checksum_ipv6(&h, tcp.payload())
                        .unwrap(),
                    "TCP checksum over IPv6"
                ),
                TransportSlice::Udp(udp) => assert_eq!(
                    udp.checksum(),
                    udp.to_header()
                        .calc_checksum_ipv6(&h, udp.payload())
                        .unwrap(),
                    "UDP checksum over IPv6"
                ),
                TransportSlice::Icmpv6(_) => {
                    let msg = &ip[40..];
                    let mut pseudo = ip[8..40].to_vec();
                    pseudo.extend_from_slice(&(msg.len() as u32).to_be_bytes());
                    pseudo.extend_from_slice(&[0, 0, 0, 58]);
                    assert_eq!(
                        ones_sum(ones_sum(0, &pseudo), msg),
                        0xffff,
                        "ICMPv6 checksum"
                    )
                }
                other => panic!("unexpected transport {other:?}"),
            }
        }
        other => panic!("unexpected packet {other:?}"),
    }
}

/// Folded one's-complement sum of `data` added to `acc`.
fn ones_sum(acc: u16, data: &[u8]) -> u16 {
    let mut s = u32::from(acc);
    for w in data.chunks(2) {
        s += u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)]));
    }
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn counters(fp: &FastPath, f: &TestFlow, v6_in: bool) -> Counters {
    if v6_in {
        fp.counters_6to4(&f.in6).unwrap()
    } else {
        fp.counters_4to6(&f.in4).unwrap()
    }
}

/// Runs `frame_in` (carrying IP packet `ip`) through the program and checks
/// it comes out as user space translates `ip`; returns the output IP packet.
fn expect_translated(
    fp: &FastPath,
    f: &TestFlow,
    ip: &[u8],
    frame_in: &[u8],
    ctx: Option<&SkBuffCtx>,
) -> Vec<u8> {
    let gso = ctx.map_or(0, |c| c.gso_size as u16);
    let want =
        userspace(ip, f, gso).unwrap_or_else(|v| panic!("user space does not translate it: {v:?}"));
    let v6_in = ip[0] >> 4 == 6;
    let before = counters(fp, f, v6_in);
    let t0 = nat64_bpf::monotonic_now_ns();
    let out = fp.test_run(frame_in, ctx).unwrap();
    let t1 = nat64_bpf::monotonic_now_ns();
    assert_eq!(out.retval, TC_ACT_OK, "translated and handed to the stack");
    assert_eq!(out.data[..12], frame_in[..12], "MAC addresses untouched");
    let et = u16::from_be_bytes([out.data[12], out.data[13]]);
    assert_eq!(
        et,
        if v6_in { ETH_P_IP } else { ETH_P_IPV6 },
        "EtherType changed"
    );
    let got = &out.data[14..];
    assert!(
        got == &want[..],
        "{}\nbpf:  {got:02x?}\nuser: {want:02x?}",
        first_difference(got, &want)
    );
    verify_checksums(got);
    let after = counters(fp, f, v6_in);
    assert_eq!(after.packets, before.packets + 1);
    assert_eq!(
        after.bytes,
        before.bytes + ip.len() as u64,
        "bytes = IP length as received"
    );
    assert!(
        (t0..=t1).contains(&after.last_seen_ns),
        "last_seen_ns {} is CLOCK_MONOTONIC now ({t0}..{t1})",
        after.last_seen_ns
    );
    got.to_vec()
}

fn translated(fp: &FastPath, f: &TestFlow, ip: &[u8]) -> Vec<u8> {
    expect_translated(fp, f, ip, &frame(ip), None)
}

/// The program passes `frame_in` untouched, counting `why`, and the flow
/// counters do not move.
fn expect_passed(fp: &FastPath, f: &TestFlow, frame_in: &[u8], why: Stat, ctx: Option<&SkBuffCtx>) {
    let c6 = fp.counters_6to4(&f.in6);
    let c4 = fp.counters_4to6(&f.in4);
    let stat = fp.stats().unwrap().get(why);
    let out = fp.test_run(frame_in, ctx).unwrap();
    assert_eq!(out.retval, TC_ACT_OK, "{why:?}: passed to the stack");
    assert!(
        out.data == frame_in,
        "{why:?}: untouched\nin:  {frame_in:02x?}\nout: {:02x?}",
        out.data
    );
    assert_eq!(
        fp.counters_6to4(&f.in6),
        c6,
        "{why:?}: 6to4 counters unchanged"
    );
    assert_eq!(
        fp.counters_4to6(&f.in4),
        c4,
        "{why:?}: 4to6 counters unchanged"
    );
    let s = fp.stats().unwrap();
    assert_eq!(
        s.get(why),
        stat + 1,
        "{why:?} counted; stats: {:?}",
        s.iter().filter(|x| x.1 > 0).collect::<Vec<_>>()
    );
}

/// Without the object, load() says what to do.
#[test]
fn load_without_the_program_says_why() {
    if nat64_bpf::built_with_program() {
        return;
    }
    let e = FastPath::load(16).err().expect("no program, no load");
    assert!(matches!(e, FastPathError::BuiltWithoutClang), "{e}");
    assert!(e.to_string().contains("contrib/setup.sh"), "{e}");
}

/// Without privileges, load() says what is missing (run as a non-root
/// user; as root there is nothing to see).
#[test]
fn load_without_privileges_says_why() {
    // SAFETY: geteuid has no preconditions.
    if !nat64_bpf::built_with_program() || unsafe { libc::geteuid() } == 0 {
        return;
    }
    let e = FastPath::load(16).err().expect("unprivileged load fails");
    assert!(matches!(e, FastPathError::NoBpf(_)), "{e}");
    assert!(e.to_string().contains("CAP_BPF"), "{e}");
}

#[test]
fn verifier_accepts_the_program() {
    let Some(fp) = fast_path("verifier_accepts_the_program") else {
        return;
    };
    let s = fp.program_stats().unwrap();
    eprintln!(
        "nat64_xlat: verifier processed {:?} insns, {:?} bytes translated ({} insns), {} bytes JITed",
        s.verified_insns,
        s.xlated_bytes,
        s.xlated_bytes.unwrap_or(0) / 8,
        s.jited_bytes
    );
    assert!(s.xlated_bytes.unwrap_or(0) > 0);
    assert_eq!(fp.max_flows(), 1024);
}

/// TCP payload sizes around the interesting boundaries: empty (pure ACK),
/// odd lengths, RFC 7915 §5.1's 1260-byte DF threshold, a full 1500-byte
/// IPv6 packet.
const TCP_SIZES: &[usize] = &[0, 1, 2, 3, 7, 100, 536, 1000, 1207, 1208, 1209, 1300, 1428];

#[test]
fn tcp_6to4_matches_user_space() {
    let Some((fp, f)) = setup("tcp_6to4_matches_user_space", L4Proto::Tcp) else {
        return;
    };
    let mut rng = Rng(0x6464);
    for &n in TCP_SIZES {
        for ts in [true, false] {
            let t = Tcp {
                timestamps: ts,
                ..Tcp::default()
            };
            let ip = client_tcp(&t, &rng.bytes(n));
            let out = translated(&fp, &f, &ip);
            // 20 + 20 (+ 12 options) + n, DF above 1260 bytes, ID 0 then.
            let df = out[6] & 0x40 != 0;
            assert_eq!(df, out.len() > 1260, "DF for {} bytes", out.len());
            if df {
                assert_eq!(&out[4..6], &[0, 0]);
            } else {
                assert_ne!(&out[4..6], &[0, 0], "RFC 7915 §5.1 Identification");
            }
            assert_eq!(out[8], 63, "TTL = hop limit - 1");
        }
    }
    // Traffic class copied (DSCP and ECN), flow label dropped.
    let mut ip = client_tcp(&Tcp::default(), b"tos");
    set_tc_flow(&mut ip, 0xb9, 0x12345);
    let out = translated(&fp, &f, &ip);
    assert_eq!(out[1], 0xb9);
    assert_eq!(
        fp.stats().unwrap().get(Stat::Xlat6to4),
        2 * TCP_SIZES.len() as u64 + 1
    );
}

#[test]
fn tcp_4to6_matches_user_space() {
    let Some((fp, f)) = setup("tcp_4to6_matches_user_space", L4Proto::Tcp) else {
        return;
    };
    let mut rng = Rng(0x4646);
    for &n in TCP_SIZES {
        for ts in [true, false] {
            let t = Tcp {
                timestamps: ts,
                ..Tcp::default()
            };
            let mut ip = server_tcp(&t, &rng.bytes(n));
            // DF as Linux sends TCP; without DF only what fits 1280 as IPv6.
            ip[6] |= 0x40;
            fix_ipv4_checksum(&mut ip);
            let out = translated(&fp, &f, &ip);
            assert_eq!(out.len(), ip.len() + 20);
            assert_eq!(out[7], 63, "hop limit = TTL - 1");
            assert_eq!(&out[1..4], &[0, 0, 0], "flow label 0");
            if ip.len() + 20 <= 1280 {
                ip[6] &= !0x40;
                fix_ipv4_checksum(&mut ip);
                translated(&fp, &f, &ip);
            }
        }
    }
    let mut ip = server_tcp(&Tcp::default(), b"tos");
    ip[1] = 0x2e;
    fix_ipv4_checksum(&mut ip);
    let out = translated(&fp, &f, &ip);
    assert_eq!(
        (out[0] & 0xf, out[1] >> 4),
        (0x2, 0xe),
        "traffic class = TOS"
    );
}

#[test]
fn udp_both_ways_match_user_space() {
    let Some((fp, f)) = setup("udp_both_ways_match_user_space", L4Proto::Udp) else {
        return;
    };
    let mut rng = Rng(0x1717);
    for n in [0usize, 1, 2, 3, 17, 64, 512, 1211, 1212, 1213, 1452] {
        let out = translated(&fp, &f, &client_udp(&rng.bytes(n)));
        assert_eq!(out[9], 17);
        let mut ip = server_udp(&rng.bytes(n));
        if ip.len() + 20 > 1280 {
            ip[6] |= 0x40;
            fix_ipv4_checksum(&mut ip);
        }
        let out = translated(&fp, &f, &ip);
        assert_eq!(out[6], 17);
    }
    let s = fp.stats().unwrap();
    assert_eq!((s.get(Stat::Xlat6to4), s.get(Stat::Xlat4to6)), (11, 11));
}

/// Many random segments and datagrams both ways: sizes, payloads, TTLs,
/// traffic classes, TCP header fields. The checksum arithmetic (one's
/// complement, incremental, in two steps in the kernel and one in user
/// space) must give the same bits every time.
#[test]
fn random_packets_match_user_space() {
    for proto in [L4Proto::Tcp, L4Proto::Udp, L4Proto::Icmp] {
        let Some((fp, f)) = setup("random_packets_match_user_space", proto) else {
            return;
        };
        let mut rng = Rng(0x5eed_0000 + proto as u64);
        for _ in 0..300 {
            let n = rng.below(1400) as usize;
            let payload = rng.bytes(n);
            let ttl = 2 + rng.below(254) as u8;
            let tos = rng.next() as u8;
            let t = Tcp {
                seq: rng.next() as u32,
                ack: rng.next() as u32,
                window: rng.next() as u16,
                psh: rng.next() & 1 == 0,
                timestamps: rng.next() & 1 == 0,
                ..Tcp::default()
            };
            let mut ip = match proto {
                L4Proto::Tcp => tcp6(
                    CLIENT6,
                    CLIENT_PORT,
                    SERVER6,
                    SERVER_PORT,
                    ttl,
                    &t,
                    &payload,
                ),
                L4Proto::Udp => udp6(CLIENT6, CLIENT_PORT, SERVER6, SERVER_PORT, ttl, &payload),
                L4Proto::Icmp => {
                    let mut p = client_echo(t.psh, t.window, &payload);
                    p[7] = ttl;
                    p
                }
            };
            set_tc_flow(&mut ip, tos, rng.next() as u32);
            translated(&fp, &f, &ip);

            let mut ip = match proto {
                L4Proto::Tcp => tcp4(SERVER4, SERVER_PORT, POOL4, POOL_PORT, ttl, &t, &payload),
                L4Proto::Udp => udp4(SERVER4, SERVER_PORT, POOL4, POOL_PORT, ttl, &payload),
                L4Proto::Icmp => {
                    let mut p = server_echo(t.psh, t.window, &payload);
                    p[8] = ttl;
                    p
                }
            };
            ip[1] = tos;
            if ip.len() + 20 > 1280 || rng.next() & 1 == 0 {
                ip[6] |= 0x40;
            } else {
                ip[6] &= !0x40;
            }
            ip[4] = rng.next() as u8; // Identification: not carried over
            fix_ipv4_checksum(&mut ip);
            translated(&fp, &f, &ip);
        }
    }
}

/// Adjusts two payload bytes so that user space's translation has checksum
/// field `want` (before its UDP zero rule): the input stays valid (etherparse
/// rebuilds it). Returns the input packet.
fn with_output_checksum(build: impl Fn(&[u8]) -> Vec<u8>, f: &TestFlow, want: u16) -> Vec<u8> {
    let mut payload = vec![0x5au8; 64];
    let ip = build(&payload);
    let out = userspace(&ip, f, 0).unwrap();
    let csum_at = |p: &[u8]| {
        let (hl, proto) = if p[0] >> 4 == 4 {
            (20, p[9])
        } else {
            (40, p[6])
        };
        hl + match proto {
            6 => 16,
            17 => 6,
            _ => 2, // ICMP, ICMPv6
        }
    };
    let at = csum_at(&out);
    let have = u16::from_be_bytes([out[at], out[at + 1]]);
    // checksum' = checksum - (w' - w): choose w' = w + (have - want).
    let w = u16::from_be_bytes([payload[0], payload[1]]);
    let mut s = u32::from(w) + u32::from(have) + u32::from(!want);
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    payload[..2].copy_from_slice(&(s as u16).to_be_bytes());
    let ip = build(&payload);
    let out = userspace(&ip, f, 0).unwrap();
    let at = csum_at(&out);
    let got = u16::from_be_bytes([out[at], out[at + 1]]);
    let udp_zero = want == 0 && out[if out[0] >> 4 == 4 { 9 } else { 6 }] == 17;
    assert_eq!(
        got,
        if udp_zero { 0xffff } else { want },
        "the crafted payload gives the wanted checksum"
    );
    ip
}

/// The representations of zero: a TCP checksum that comes out 0x0000, a UDP
/// one that comes out zero (sent as 0xffff, RFC 768), both ways.
#[test]
fn checksum_edge_values_match_user_space() {
    for proto in [L4Proto::Tcp, L4Proto::Udp] {
        let Some((fp, f)) = setup("checksum_edge_values_match_user_space", proto) else {
            return;
        };
        for want in [0x0000u16, 0x0001, 0xfffe] {
            let ip6 = with_output_checksum(
                |p| match proto {
                    L4Proto::Tcp => client_tcp(&Tcp::default(), p),
                    _ => client_udp(p),
                },
                &f,
                want,
            );
            translated(&fp, &f, &ip6);
            let ip4 = with_output_checksum(
                |p| match proto {
                    L4Proto::Tcp => server_tcp(&Tcp::default(), p),
                    _ => server_udp(p),
                },
                &f,
                want,
            );
            translated(&fp, &f, &ip4);
        }
    }
}

/// ICMP echo (RFC 7915 §4.2/§5.2): type mapped, code 0, identifier
/// rewritten, the ICMPv6 pseudo-header added or taken out of the checksum.
#[test]
fn icmp_echo_matches_user_space() {
    let Some((fp, f)) = setup("icmp_echo_matches_user_space", L4Proto::Icmp) else {
        return;
    };
    let mut rng = Rng(0x1c4e);
    for n in [0usize, 1, 2, 3, 56, 1000, 1224, 1225, 1400] {
        for reply in [false, true] {
            let seq = rng.next() as u16;
            let out = translated(&fp, &f, &client_echo(reply, seq, &rng.bytes(n)));
            assert_eq!(out[9], 1, "protocol ICMP");
            assert_eq!(out[20], if reply { 0 } else { 8 });
            assert_eq!(&out[24..26], &POOL_PORT.to_be_bytes(), "pool identifier");
            let mut ip = server_echo(!reply, seq, &rng.bytes(n));
            if ip.len() + 20 <= 1280 && rng.next() & 1 == 0 {
                ip[6] &= !0x40;
                fix_ipv4_checksum(&mut ip);
            }
            let out = translated(&fp, &f, &ip);
            assert_eq!(out[6], 58, "next header ICMPv6");
            assert_eq!(out[40], if reply { 128 } else { 129 });
            assert_eq!(&out[44..46], &ECHO_ID.to_be_bytes(), "client identifier");
        }
    }
    // A non-zero code is written as 0.
    let mut ip = client_echo(false, 9, b"code");
    ip[41] = 5;
    let c = u16::from_be_bytes([ip[42], ip[43]]).wrapping_sub(5);
    ip[42..44].copy_from_slice(&c.to_be_bytes());
    let out = translated(&fp, &f, &ip);
    assert_eq!(out[21], 0);
    // The representations of zero and neighbours.
    for want in [0x0000u16, 0x0001, 0xfffe] {
        let ip = with_output_checksum(|p| client_echo(false, 7, p), &f, want);
        translated(&fp, &f, &ip);
        let ip = with_output_checksum(|p| server_echo(true, 7, p), &f, want);
        translated(&fp, &f, &ip);
    }
    // Echo under GSO cannot be: passed as malformed.
    let ctx = SkBuffCtx {
        gso_size: 100,
        gso_segs: 2,
        ..SkBuffCtx::default()
    };
    let ip = client_echo(false, 1, &[0; 300]);
    expect_passed(&fp, &f, &frame(&ip), Stat::PassMalformed, Some(&ctx));
}

/// Ethernet pads short frames to 60 bytes, and the padding reaches tc: a
/// pure IPv4 ACK (40 bytes) arrives with 6 more. The translation is of the
/// IP packet alone.
#[test]
fn trailing_bytes_are_cut() {
    let Some((fp, f)) = setup("trailing_bytes_are_cut", L4Proto::Tcp) else {
        return;
    };
    let t = Tcp {
        timestamps: false,
        psh: false,
        ..Tcp::default()
    };
    let ip = server_tcp(&t, &[]);
    assert_eq!(ip.len(), 40);
    let mut fr = frame(&ip);
    fr.resize(60, 0);
    let out = expect_translated(&fp, &f, &ip, &fr, None);
    assert_eq!(out.len(), 60);
    let ip = client_tcp(&t, b"x");
    let mut fr = frame(&ip);
    fr.extend_from_slice(&[0xee; 5]);
    expect_translated(&fp, &f, &ip, &fr, None);
}

#[test]
fn counters_accumulate_and_reset_on_insert() {
    let Some((mut fp, f)) = setup("counters_accumulate_and_reset_on_insert", L4Proto::Udp) else {
        return;
    };
    let t0 = nat64_bpf::monotonic_now_ns();
    let c = fp.counters_6to4(&f.in6).unwrap();
    assert_eq!((c.packets, c.bytes), (0, 0));
    assert!(c.last_seen_ns <= t0, "an entry is 'seen' when installed");
    let mut bytes = 0;
    for n in 0..10 {
        let ip = client_udp(&vec![n as u8; n * 10]);
        bytes += ip.len() as u64;
        translated(&fp, &f, &ip);
    }
    let c = fp.counters_6to4(&f.in6).unwrap();
    assert_eq!((c.packets, c.bytes), (10, bytes));
    assert!(c.idle_ns(nat64_bpf::monotonic_now_ns()) < 5_000_000_000);
    let all: Vec<_> = fp.flows_6to4().map(Result::unwrap).collect();
    assert_eq!(all, vec![(f.in6, f.out4, c)]);
    let all: Vec<_> = fp.flows_4to6().map(Result::unwrap).collect();
    assert_eq!(all.len(), 1);
    assert_eq!((all[0].0, all[0].1, all[0].2.packets), (f.in4, f.out6, 0));
    // Re-installing resets.
    fp.insert_6to4(&f.in6, &f.out4, 0).unwrap();
    assert_eq!(fp.counters_6to4(&f.in6).unwrap().packets, 0);
    // Removal returns the last counters, then the flow misses.
    translated(&fp, &f, &client_udp(b"last"));
    let last = fp.remove_6to4(&f.in6).unwrap().unwrap();
    assert_eq!(last.packets, 1);
    assert_eq!(fp.remove_6to4(&f.in6).unwrap(), None);
    expect_passed(&fp, &f, &frame(&client_udp(b"gone")), Stat::PassMiss, None);
    assert!(fp.remove_4to6(&f.in4).unwrap().is_some());
    assert_eq!(fp.flows_4to6().count(), 0);
}

/// `n` flows like `f` but for their ports: client ports 1..=n on pool
/// ports 20001..
fn siblings(f: &TestFlow, n: u16) -> Vec<TestFlow> {
    (1..=n)
        .map(|p| {
            let mut o = *f;
            o.in6.src_port = p;
            o.out4.src_port = 20_000 + p;
            o.in4 = o.out4.reversed();
            o.out6 = o.in6.reversed();
            o
        })
        .collect()
}

/// A snapshot (batched reads, several batches) holds every installed
/// flow's counters, as the entry-by-entry reads give them.
#[test]
fn snapshot_reads_every_flow_in_batches() {
    let Some(mut fp) = fast_path_sized("snapshot_reads_every_flow_in_batches", 16384) else {
        return;
    };
    fp.set_config(&stack_config(0, 0)).unwrap();
    let f = flow(L4Proto::Udp);
    install(&mut fp, &f);
    // 10,000 more (the reader asks 4,096 at a time).
    let others = siblings(&f, 10_000);
    for o in &others {
        install(&mut fp, o);
    }
    for _ in 0..3 {
        translated(&fp, &f, &client_udp(b"up"));
    }
    translated(&fp, &f, &server_udp(b"down"));
    let s = fp.snapshot().unwrap();
    assert_eq!(s.len(), (10_001, 10_001));
    let c = s.counters_6to4(&f.in6).unwrap();
    assert_eq!(c, fp.counters_6to4(&f.in6).unwrap());
    assert_eq!(c.packets, 3);
    assert_eq!(s.counters_4to6(&f.in4).unwrap().packets, 1);
    for o in &others {
        assert_eq!(s.counters_6to4(&o.in6).unwrap().packets, 0);
        assert_eq!(s.counters_4to6(&o.in4).unwrap().packets, 0);
    }
    let mut gone = f;
    gone.in6.src_port = 10_001;
    assert_eq!(s.counters_6to4(&gone.in6), None);
}

/// The miss filter follows installs: a bit per installed key (a replaced
/// entry is not counted twice), cleared when its last key leaves, and the
/// program's slot for every key is the loader's (10,000 flows, each
/// translated both ways: a key whose bit the program looked for elsewhere
/// would pass as a miss).
#[test]
fn miss_filter_follows_installs() {
    let Some(mut fp) = fast_path_sized("miss_filter_follows_installs", 16384) else {
        return;
    };
    fp.set_config(&stack_config(0, 0)).unwrap();
    assert_eq!(fp.filter_bits().unwrap(), (0, 0));
    let f = flow(L4Proto::Udp);
    install(&mut fp, &f);
    assert_eq!(fp.filter_bits().unwrap(), (1, 1));
    fp.insert_6to4(&f.in6, &f.out4, 0).unwrap();
    assert_eq!(fp.filter_bits().unwrap(), (1, 1), "a replaced entry");
    translated(&fp, &f, &client_udp(b"up"));
    assert!(fp.remove_6to4(&f.in6).unwrap().is_some());
    assert_eq!(fp.filter_bits().unwrap(), (0, 1));
    assert_eq!(fp.remove_6to4(&f.in6).unwrap(), None);
    assert_eq!(fp.filter_bits().unwrap(), (0, 1));
    expect_passed(&fp, &f, &frame(&client_udp(b"gone")), Stat::PassMiss, None);
    assert!(fp.remove_4to6(&f.in4).unwrap().is_some());
    assert_eq!(fp.filter_bits().unwrap(), (0, 0));

    let flows = siblings(&f, 10_000);
    for o in &flows {
        install(&mut fp, o);
    }
    let (six, four) = fp.filter_bits().unwrap();
    // 10,000 keys in 2^20 slots share ~48 on average.
    assert!(
        (9_800..=10_000).contains(&six),
        "{six} bits for 10,000 keys"
    );
    assert!(
        (9_800..=10_000).contains(&four),
        "{four} bits for 10,000 keys"
    );
    for o in &flows {
        let up = udp6(
            o.in6.src,
            o.in6.src_port,
            o.in6.dst,
            o.in6.dst_port,
            64,
            b"u",
        );
        translated(&fp, o, &up);
        let down = udp4(
            o.in4.src,
            o.in4.src_port,
            o.in4.dst,
            o.in4.dst_port,
            64,
            b"d",
        );
        translated(&fp, o, &down);
    }
    for o in &flows {
        fp.remove_6to4(&o.in6).unwrap().unwrap();
        fp.remove_4to6(&o.in4).unwrap().unwrap();
    }
    assert_eq!(fp.filter_bits().unwrap(), (0, 0));
}

#[test]
fn api_refuses_what_the_program_cannot_do() {
    let Some(mut fp) = fast_path("api_refuses_what_the_program_cannot_do") else {
        return;
    };
    let t = flow(L4Proto::Tcp);
    let u = flow(L4Proto::Udp);
    assert!(matches!(
        fp.insert_6to4(&t.in6, &u.out4, 0),
        Err(FastPathError::ProtocolMismatch(..))
    ));
    assert!(matches!(FastPath::load(0), Err(FastPathError::ZeroFlows)));
    // A full table says so.
    let mut small = FastPath::load(4).unwrap();
    let mut out = t.out4;
    for port in 0..4 {
        out.src_port = 3000 + port;
        let mut inn = t.in6;
        inn.src_port = 50000 + port;
        small.insert_6to4(&inn, &out, 0).unwrap();
    }
    let mut inn = t.in6;
    inn.src_port = 60000;
    let e = small.insert_6to4(&inn, &out, 0).unwrap_err();
    assert!(matches!(e, FastPathError::TableFull(4)), "{e}");
    eprintln!("full table: {e}");
    // Replacing an existing entry in a full table works.
    inn.src_port = 50000;
    small.insert_6to4(&inn, &out, 0).unwrap();
    let e = fp.attach("nat64-no-such-if0").unwrap_err();
    assert!(matches!(e, FastPathError::NoInterface(_)), "{e}");
}

/// Every packet the program must leave alone comes out untouched with
/// TC_ACT_OK, counted under its reason, flow counters unmoved.
#[test]
fn pass_through_cases_are_untouched() {
    let Some((mut fp, f)) = setup("pass_through_cases_are_untouched", L4Proto::Tcp) else {
        return;
    };
    let fu = flow(L4Proto::Udp);
    install(&mut fp, &fu);
    let ack = Tcp::default();
    let data = b"some payload bytes";
    let v6 = client_tcp(&ack, data);
    let v4 = {
        let mut p = server_tcp(&ack, data);
        p[6] |= 0x40;
        fix_ipv4_checksum(&mut p);
        p
    };
    // Sanity: both translate as they are.
    translated(&fp, &f, &v6);
    translated(&fp, &f, &v4);

    let mut cases: Vec<(&str, Vec<u8>, Stat)> = Vec::new();
    // Map misses: another port, another address, another protocol's entry.
    cases.push((
        "miss port",
        frame(&tcp6(CLIENT6, 40001, SERVER6, 80, 64, &ack, data)),
        Stat::PassMiss,
    ));
    cases.push((
        "miss v4 addr",
        frame(&tcp4(
            Ipv4Addr::new(198, 51, 100, 3),
            80,
            POOL4,
            POOL_PORT,
            64,
            &ack,
            data,
        )),
        Stat::PassMiss,
    ));
    // TCP SYN / FIN / RST (the state machine is the daemon's).
    for (name, t) in [
        ("syn", Tcp { syn: true, ..ack }),
        ("fin", Tcp { fin: true, ..ack }),
        ("rst", Tcp { rst: true, ..ack }),
    ] {
        cases.push((name, frame(&client_tcp(&t, data)), Stat::PassTcpFlags));
        let mut p = server_tcp(&t, data);
        p[6] |= 0x40;
        fix_ipv4_checksum(&mut p);
        cases.push((name, frame(&p), Stat::PassTcpFlags));
    }
    // IPv4 fragments: MF, offset.
    for (name, fo) in [("mf", 0x2000u16), ("offset", 0x0010), ("df+offset", 0x4010)] {
        let mut p = v4.clone();
        p[6..8].copy_from_slice(&fo.to_be_bytes());
        fix_ipv4_checksum(&mut p);
        cases.push((name, frame(&p), Stat::PassFragment));
    }
    // IPv6 extension headers: Fragment (atomic), Hop-by-Hop, Destination
    // Options, Routing.
    for (name, nh, ext) in [
        ("frag hdr", 44u8, vec![6u8, 0, 0, 0, 0, 0, 0, 1]),
        ("hbh", 0, vec![6, 0, 1, 4, 0, 0, 0, 0]),
        ("dstopts", 60, vec![6, 0, 1, 4, 0, 0, 0, 0]),
        ("routing", 43, vec![6, 0, 0, 0, 0, 0, 0, 0]),
    ] {
        let mut p = v6[..40].to_vec();
        p[6] = nh;
        let plen = u16::from_be_bytes([p[4], p[5]]) + ext.len() as u16;
        p[4..6].copy_from_slice(&plen.to_be_bytes());
        p.extend_from_slice(&ext);
        p.extend_from_slice(&v6[40..]);
        cases.push((name, frame(&p), Stat::PassExtHeader));
    }
    // IPv4 options (IHL 6, a NOP-padded word).
    {
        let mut p = v4[..20].to_vec();
        p[0] = 0x46;
        p.extend_from_slice(&[1, 1, 1, 0]);
        p.extend_from_slice(&v4[20..]);
        let tl = p.len() as u16;
        p[2..4].copy_from_slice(&tl.to_be_bytes());
        fix_ipv4_checksum(&mut p);
        cases.push(("ipv4 options", frame(&p), Stat::PassIpv4Options));
    }
    // TTL / hop limit 1 and 0: the TUN path answers Time Exceeded.
    for ttl in [0u8, 1] {
        cases.push((
            "hop limit",
            frame(&tcp6(
                CLIENT6,
                CLIENT_PORT,
                SERVER6,
                SERVER_PORT,
                ttl,
                &ack,
                data,
            )),
            Stat::PassTtl,
        ));
        let mut p = v4.clone();
        p[8] = ttl;
        fix_ipv4_checksum(&mut p);
        cases.push(("ttl", frame(&p), Stat::PassTtl));
    }
    // Zero UDP checksums: optional in IPv4 (computed by the TUN path),
    // invalid in IPv6.
    {
        let mut p = server_udp(data);
        p[26] = 0;
        p[27] = 0;
        cases.push(("udp4 zero csum", frame(&p), Stat::PassUdpZeroChecksum));
        let mut p = client_udp(data);
        p[46] = 0;
        p[47] = 0;
        cases.push(("udp6 zero csum", frame(&p), Stat::PassUdpZeroChecksum));
    }
    // Echoes without an entry; ICMP errors (the TUN path translates
    // their quoted packets); other protocols (GRE).
    {
        cases.push((
            "icmpv6 echo, no entry",
            frame(&client_echo(false, 1, data)),
            Stat::PassMiss,
        ));
        cases.push((
            "icmp echo, no entry",
            frame(&server_echo(true, 1, data)),
            Stat::PassMiss,
        ));
        let mut p = client_echo(false, 1, data);
        p[40] = 1; // Destination Unreachable
        cases.push(("icmpv6 error", frame(&p), Stat::PassProto));
        let mut p = server_echo(true, 1, data);
        p[20] = 3; // Destination Unreachable
        cases.push(("icmp error", frame(&p), Stat::PassProto));
        let mut p = server_echo(true, 1, data);
        p[20] = 13; // Timestamp
        cases.push(("icmp timestamp", frame(&p), Stat::PassProto));
        let mut p = v4.clone();
        p[9] = 47;
        fix_ipv4_checksum(&mut p);
        cases.push(("gre", frame(&p), Stat::PassProto));
    }
    // Malformed or truncated.
    {
        let mut p = v6.clone();
        p.truncate(p.len() - 1);
        cases.push(("v6 truncated", frame(&p), Stat::PassMalformed));
        let mut p = v6.clone();
        p[4..6].copy_from_slice(&0u16.to_be_bytes());
        cases.push(("v6 plen 0", frame(&p), Stat::PassMalformed));
        let mut p = v4.clone();
        p.truncate(p.len() - 1);
        cases.push(("v4 truncated", frame(&p), Stat::PassMalformed));
        let mut p = v4.clone();
        p[10] ^= 0x55;
        cases.push(("v4 bad header csum", frame(&p), Stat::PassMalformed));
        let mut p = v4.clone();
        p[2..4].copy_from_slice(&19u16.to_be_bytes());
        fix_ipv4_checksum(&mut p);
        cases.push(("v4 total 19", frame(&p), Stat::PassMalformed));
        let mut p = v4.clone();
        p[0] = 0x44;
        cases.push(("v4 ihl 4", frame(&p), Stat::PassMalformed));
        let mut p = v6.clone();
        p[40 + 12] = 0x40; // data offset 4 words
        cases.push(("tcp doff 4", frame(&p), Stat::PassMalformed));
        let mut p = v6.clone();
        p[40 + 12] = 0xf0; // 60 bytes of header in a 50-byte segment
        cases.push(("tcp doff too big", frame(&p), Stat::PassMalformed));
        let p = tcp6(CLIENT6, CLIENT_PORT, SERVER6, SERVER_PORT, 64, &ack, &[]);
        cases.push(("tcp cut", frame(&p[..50]), Stat::PassMalformed));
        let mut p = client_udp(data);
        p[44..46].copy_from_slice(&9u16.to_be_bytes());
        cases.push(("udp length", frame(&p), Stat::PassMalformed));
        let mut p = v6.clone();
        p[0] = 0x45;
        cases.push((
            "version 4 in IPv6 frame",
            frame_to(LO_MAC, ETH_P_IPV6, &p),
            Stat::PassMalformed,
        ));
    }
    // Not IP to us: ARP, a VLAN tag, another host's MAC, multicast.
    cases.push(("arp", frame_to(LO_MAC, 0x0806, &[0u8; 28]), Stat::PassNotIp));
    cases.push(("vlan", frame_to(LO_MAC, 0x8100, &v6), Stat::PassNotIp));
    cases.push((
        "other host",
        frame_to([2, 0, 0, 0, 0, 9], ETH_P_IPV6, &v6),
        Stat::PassNotIp,
    ));
    cases.push((
        "multicast",
        frame_to([0x33, 0x33, 0, 0, 0, 1], ETH_P_IPV6, &v6),
        Stat::PassNotIp,
    ));

    for (name, fr, why) in &cases {
        eprintln!("pass-through: {name}");
        expect_passed(&fp, &f, fr, *why, None);
    }
    // Frames whose IP header is cut short: BPF_PROG_TEST_RUN itself refuses
    // them (EINVAL) on recent kernels before the program runs; where it
    // does not, the program must pass them.
    for (name, fr) in [
        ("v6 header cut", frame_to(LO_MAC, ETH_P_IPV6, &v6[..39])),
        ("v4 header cut", frame_to(LO_MAC, ETH_P_IP, &v4[..19])),
    ] {
        match fp.test_run(&fr, None) {
            Err(FastPathError::TestRun(e)) if e.raw_os_error() == Some(libc::EINVAL) => {
                eprintln!("pass-through: {name}: refused by BPF_PROG_TEST_RUN (EINVAL), not run");
            }
            r => {
                let out = r.unwrap();
                assert_eq!((out.retval, &out.data), (TC_ACT_OK, &fr), "{name}");
            }
        }
    }
    let s = fp.stats().unwrap();
    assert_eq!(s.get(Stat::Error), 0);
    assert_eq!(
        (s.get(Stat::Xlat6to4), s.get(Stat::Xlat4to6)),
        (1, 1),
        "only the sanity packets"
    );
}

/// Too big for the egress (here the configured MTUs of stack forwarding;
/// the route's MTU with redirect, tests/attach.rs), or needing an IPv6
/// Fragment header: passed, the TUN path answers or fragments.
#[test]
fn mtu_cases_are_passed() {
    let Some((mut fp, f)) = setup("mtu_cases_are_passed", L4Proto::Tcp) else {
        return;
    };
    fp.set_config(&stack_config(1400, 1400)).unwrap();
    let t = Tcp::default();
    // 6 → 4: 1420-byte IPv6 → 1400 IPv4 fits; 1421 → 1401 does not.
    let fits = client_tcp(&t, &vec![1; 1420 - 72]);
    translated(&fp, &f, &fits);
    let big = client_tcp(&t, &vec![1; 1421 - 72]);
    expect_passed(&fp, &f, &frame(&big), Stat::PassMtu, None);
    // 4 → 6 with DF: 1380 → 1400 fits, 1381 → 1401 does not.
    let df = |n: usize| {
        let mut p = server_tcp(&t, &vec![2; n - 52]);
        p[6] |= 0x40;
        fix_ipv4_checksum(&mut p);
        p
    };
    translated(&fp, &f, &df(1380));
    expect_passed(&fp, &f, &frame(&df(1381)), Stat::PassMtu, None);
    // 4 → 6 without DF: above lowest-ipv6-mtu (1280) as IPv6 needs a
    // Fragment header.
    let nodf = |n: usize| {
        let mut p = server_tcp(&t, &vec![3; n - 52]);
        p[6] &= !0x40; // etherparse sets DF
        fix_ipv4_checksum(&mut p);
        p
    };
    translated(&fp, &f, &nodf(1260));
    expect_passed(&fp, &f, &frame(&nodf(1261)), Stat::PassMtu, None);
    // lowest-ipv6-mtu is a setting.
    fp.set_config(&Config {
        lowest_ipv6_mtu: 1400,
        ..stack_config(1400, 1400)
    })
    .unwrap();
    let want_err = userspace(&nodf(1261), &f, 0);
    assert!(want_err.is_err(), "user space (lowest 1280) fragments it");
    let out = fp.test_run(&frame(&nodf(1261)), None).unwrap();
    assert_eq!(
        out.data.len(),
        14 + 1281,
        "translated with lowest-ipv6-mtu 1400"
    );
}

#[test]
fn disabled_and_settings() {
    let Some((mut fp, f)) = setup("disabled_and_settings", L4Proto::Udp) else {
        return;
    };
    fp.set_config(&Config {
        enabled: false,
        ..stack_config(0, 0)
    })
    .unwrap();
    expect_passed(&fp, &f, &frame(&client_udp(b"x")), Stat::PassDisabled, None);
    // copy_tos / decrement_ttl off, as nat64_core's Config allows.
    fp.set_config(&Config {
        copy_tos: false,
        decrement_ttl: false,
        ..stack_config(0, 0)
    })
    .unwrap();
    let mut ip = client_udp(b"settings");
    set_tc_flow(&mut ip, 0xb8, 0);
    ip[7] = 1;
    let out = fp.test_run(&frame(&ip), None).unwrap();
    assert_eq!(out.retval, TC_ACT_OK);
    let mut buf = vec![0u8; 64 + ip.len() + 64];
    buf[64..64 + ip.len()].copy_from_slice(&ip);
    let cfg = nat64_core::xlat::Config {
        copy_tos: false,
        decrement_ttl: false,
        ..Default::default()
    };
    let v = nat64_core::xlat::translate(&mut buf, 64, ip.len(), &cfg, &mut TestMapper(f));
    let nat64_core::Verdict::Forward { start, len, .. } = v else {
        panic!("{v:?}")
    };
    assert_eq!(&out.data[14..], &buf[start..start + len]);
    assert_eq!((out.data[14 + 1], out.data[14 + 8]), (0, 1));
}

/// GSO super-packets: translated whole, with DF and the MTU judged per
/// segment as user space does (`Offload::gso_size`). BPF_PROG_TEST_RUN
/// takes at most a page of data, so these are small super-packets; 64 KB
/// ones cross in the namespace tests of the daemon integration.
#[test]
fn gso_super_packets_follow_the_segment_rules() {
    for proto in [L4Proto::Tcp, L4Proto::Udp] {
        let Some((mut fp, f)) = setup("gso_super_packets_follow_the_segment_rules", proto) else {
            return;
        };
        let mut rng = Rng(0x650);
        let payload = rng.bytes(3000);
        let gso = |size: u32, segs: u32| SkBuffCtx {
            gso_size: size,
            gso_segs: segs,
            ..SkBuffCtx::default()
        };
        let (ip6, mut ip4) = match proto {
            L4Proto::Tcp => (
                client_tcp(&Tcp::default(), &payload),
                server_tcp(&Tcp::default(), &payload),
            ),
            _ => (client_udp(&payload), server_udp(&payload)),
        };
        ip4[6] |= 0x40;
        fix_ipv4_checksum(&mut ip4);
        // 1000-byte segments: 6 → 4 segments of < 1260 bytes: DF clear.
        let ctx = gso(1000, 3);
        let out = expect_translated(&fp, &f, &ip6, &frame(&ip6), Some(&ctx));
        assert_eq!(out[6] & 0x40, 0, "DF clear: segments are small");
        expect_translated(&fp, &f, &ip4, &frame(&ip4), Some(&ctx));
        // 1400-byte segments: DF set.
        let ctx = gso(1400, 3);
        let out = expect_translated(&fp, &f, &ip6, &frame(&ip6), Some(&ctx));
        assert_ne!(out[6] & 0x40, 0, "DF set: segments are large");
        // A super-packet above the MTU whose segments fit is translated;
        // one whose segments do not is passed.
        fp.set_config(&stack_config(1200, 1200)).unwrap();
        let ctx = gso(1000, 3);
        expect_translated(&fp, &f, &ip6, &frame(&ip6), Some(&ctx));
        expect_translated(&fp, &f, &ip4, &frame(&ip4), Some(&ctx));
        let ctx = gso(1400, 3);
        expect_passed(&fp, &f, &frame(&ip6), Stat::PassMtu, Some(&ctx));
        expect_passed(&fp, &f, &frame(&ip4), Stat::PassMtu, Some(&ctx));
        // Without DF, segments above lowest-ipv6-mtu need fragments: passed.
        let mut nodf = ip4.clone();
        nodf[6] &= !0x40;
        fix_ipv4_checksum(&mut nodf);
        fp.set_config(&stack_config(0, 0)).unwrap();
        expect_passed(&fp, &f, &frame(&nodf), Stat::PassMtu, Some(&gso(1300, 3)));
        expect_translated(&fp, &f, &nodf, &frame(&nodf), Some(&gso(1000, 3)));
    }
}

#[test]
fn stats_have_names() {
    let names: Vec<_> = Stat::ALL.iter().map(|s| s.name()).collect();
    assert_eq!(names.len(), 16);
    assert!(names.contains(&"pass_miss"));
}
