//! One model of the stateful engine's life, two drivers: the `engine` fuzz
//! target decodes bytes into [`Op`]s, `crates/nat64-core/tests/
//! state_invariants.rs` generates them with proptest. [`run`] sends real
//! packets (built here, checksums right) through `Worker::process` — the
//! whole RFC 6146 pipeline with hairpinning, held SYNs and fragments — over
//! a small address and port space so that flows collide, on a virtual
//! clock, and after every step checks `nat64_core::state::invariants`.
//!
//! Only `nat64-core` and `std`: both drivers include this file as a module.
#![allow(dead_code)]

use nat64_core::addr::Prefix;
use nat64_core::state::invariants::{self, MappingLedger};
use nat64_core::state::{
    Deterministic, Engine, EngineConfig, Filtering, KernelConfig, Limits, NaptConfig, PoolConfig,
    StaticBinding, Timeouts, Worker,
};
use nat64_core::time::Timestamp;
use nat64_core::wire::checksum;
use nat64_core::xlat::{L4Proto, HEADROOM};
use nat64_core::Verdict;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV6};
use std::sync::Arc;
use std::time::Duration;

/// How the engine is configured (the NAPT mode and the knobs that change
/// which rules apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    /// 0: `daemon` pool, 1: `daemon` with port blocks of 4, 2: `kernel`
    /// 1:1 leases, 3: `daemon` with RFC 7422 deterministic blocks of 4
    /// (hashed clients: on a /31 pool many share a block).
    pub mode: u8,
    pub address_dependent: bool,
    /// Well-Known Prefix with RFC 6052 §3.1 on (else a Network-Specific
    /// Prefix).
    pub wkp_strict: bool,
    /// Limits per /64 instead of per /128.
    pub client_per_64: bool,
    /// Kernel mode: 0 no static map, 1 one inside inner-pool, 2 outside.
    /// Daemon mode: 0 no static binding, else one (in or out of range).
    pub statics: u8,
    pub two_queues: bool,
}

impl Setup {
    pub fn from_byte(b: u8) -> Setup {
        Setup {
            mode: b & 3,
            address_dependent: b & 4 != 0,
            wkp_strict: b & 8 != 0,
            client_per_64: b & 16 != 0,
            statics: (b >> 5) % 3,
            two_queues: b & 0x80 != 0,
        }
    }
    pub fn kernel(&self) -> bool {
        self.mode == 2
    }
    pub fn blocks(&self) -> bool {
        self.mode == 1 || self.mode == 3
    }
}

/// One step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A packet from an IPv6 client (small spaces: indexes into tables).
    Out {
        worker: u8,
        proto: u8,
        client: u8,
        sport: u8,
        remote: u8,
        dport: u8,
        flags: u8,
        frag: u8,
    },
    /// An unsolicited IPv4 packet towards a pool (or inner-pool) address.
    In {
        worker: u8,
        proto: u8,
        remote: u8,
        sport: u8,
        pool: u8,
        dport: u8,
        flags: u8,
        frag: u8,
    },
    /// The answer to a packet the translator forwarded earlier (picked
    /// from what it emitted), from the other side.
    Reply { worker: u8, pick: u8, flags: u8 },
    /// An ICMP error about a packet the translator forwarded earlier,
    /// quoting it (RFC 7915 §4.2/§5.2, RFC 6146 §3.5.4 inner lookups).
    Error { worker: u8, pick: u8, code: u8 },
    /// The virtual clock moves on.
    Advance { class: u8, factor: u8 },
    /// The reaper; budget 0 means a whole pass.
    Sweep { budget: u8 },
    /// `nat64 show`: the listings, checked against each other and the
    /// mapping log.
    Show,
    /// `nat64 binding add/del`, or restoring kernel leases.
    Static { pick: u8 },
    /// SIGHUP: new limits (and timeouts).
    Reload { pick: u8 },
}

/// Reads fuzz bytes; past the end everything is zero.
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The fuzz target's decoding: one setup byte, then one opcode byte and
/// its operands per step (at most `max` steps).
pub fn decode(data: &[u8], max: usize) -> (Setup, Vec<Op>) {
    let mut b = Bytes(data);
    let setup = Setup::from_byte(b.u8());
    let mut ops = Vec::new();
    while !b.is_empty() && ops.len() < max {
        let code = b.u8();
        let worker = code >> 7;
        let op = match code & 0x0f {
            0..=3 => Op::Out {
                worker,
                proto: b.u8(),
                client: b.u8(),
                sport: b.u8(),
                remote: b.u8(),
                dport: b.u8(),
                flags: b.u8(),
                frag: (code >> 4) & 7,
            },
            4 | 5 => Op::In {
                worker,
                proto: b.u8(),
                remote: b.u8(),
                sport: b.u8(),
                pool: b.u8(),
                dport: b.u8(),
                flags: b.u8(),
                frag: (code >> 4) & 7,
            },
            6 | 7 => Op::Reply {
                worker,
                pick: b.u8(),
                flags: b.u8(),
            },
            8 => Op::Error {
                worker,
                pick: b.u8(),
                code: b.u8(),
            },
            9 | 10 => Op::Advance {
                class: b.u8(),
                factor: (code >> 4) & 7,
            },
            11 => Op::Sweep { budget: b.u8() },
            12 => Op::Show,
            13 | 14 => Op::Static { pick: b.u8() },
            _ => Op::Reload { pick: b.u8() },
        };
        ops.push(op);
    }
    (setup, ops)
}

// The small spaces flows are drawn from.
const POOL: [Ipv4Addr; 2] = [Ipv4Addr::new(203, 0, 113, 0), Ipv4Addr::new(203, 0, 113, 1)];
const INNER: (Ipv4Addr, u8) = (Ipv4Addr::new(100, 64, 0, 0), 30);
const INNER_ADDRS: [Ipv4Addr; 3] = [
    Ipv4Addr::new(100, 64, 0, 1),
    Ipv4Addr::new(100, 64, 0, 2),
    Ipv4Addr::new(100, 65, 0, 10),
];
const REMOTES: [Ipv4Addr; 4] = [
    Ipv4Addr::new(8, 8, 8, 8),
    Ipv4Addr::new(9, 9, 9, 9),
    // Non-global: refused behind the Well-Known Prefix when strict.
    Ipv4Addr::new(10, 1, 2, 3),
    Ipv4Addr::new(192, 0, 2, 77),
];
const CLIENTS: [Ipv6Addr; 6] = [
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 3),
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 5),
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x10),
    Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, 1),
];
/// In range (1024-1039, both parities), below it, above it.
const PORTS: [u16; 8] = [1024, 1025, 1030, 1039, 80, 5000, 5001, 40000];
const RANGE: (u16, u16) = (1024, 1039);
const TCP_EST: Duration = Duration::from_secs(7440);
const ADVANCE_MS: [u64; 8] = [1, 900, 5_000, 6_000, 60_000, 240_000, 300_000, 7_440_000];

fn candidates_static() -> [StaticBinding; 4] {
    let v6 = |i: usize, p| SocketAddrV6::new(CLIENTS[i], p, 0, 0);
    [
        StaticBinding {
            proto: L4Proto::Tcp,
            v6: v6(3, 80),
            v4: (POOL[0], 80),
        },
        StaticBinding {
            proto: L4Proto::Udp,
            v6: v6(3, 5000),
            v4: (POOL[1], 1030),
        },
        StaticBinding {
            proto: L4Proto::Tcp,
            v6: v6(0, 1025),
            v4: (POOL[0], 1025),
        },
        StaticBinding {
            proto: L4Proto::Icmp,
            v6: v6(4, 7),
            v4: (POOL[1], 1039),
        },
    ]
}

pub fn config(s: &Setup) -> EngineConfig {
    let prefix = if s.wkp_strict {
        Prefix::WELL_KNOWN
    } else {
        "2001:db8:64::/96".parse().expect("static prefix")
    };
    let napt = if s.kernel() {
        NaptConfig::Kernel(KernelConfig {
            inner_pool: INNER,
            maps: match s.statics {
                0 => vec![],
                1 => vec![(CLIENTS[4], INNER_ADDRS[1])],
                _ => vec![(CLIENTS[4], INNER_ADDRS[2])],
            },
        })
    } else {
        NaptConfig::Daemon(PoolConfig {
            prefixes: vec![(POOL[0], 31)],
            tcp_ports: RANGE,
            udp_ports: RANGE,
            icmp_ids: RANGE,
            port_block_size: s.blocks().then_some(4),
            deterministic: (s.mode == 3).then_some(Deterministic {
                client_prefix_len: if s.client_per_64 { 64 } else { 128 },
                clients: None,
            }),
        })
    };
    let static_bib = match (s.kernel(), s.statics) {
        (false, 1) => vec![candidates_static()[0]],
        (false, 2) => vec![candidates_static()[1]],
        _ => vec![],
    };
    EngineConfig {
        prefix,
        wkp_strict: s.wkp_strict,
        napt,
        filtering: if s.address_dependent {
            Filtering::AddressDependent
        } else {
            Filtering::EndpointIndependent
        },
        limits: Limits {
            max_sessions: 40,
            max_sessions_per_client: 12,
            client_prefix_len: if s.client_per_64 { 64 } else { 128 },
            site_prefix_len: 64,
            max_sessions_per_site: 30,
            max_leases_per_site: 2,
        },
        static_bib,
        flow_queues: if s.two_queues { 2 } else { 1 },
        ..EngineConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Packets
// ---------------------------------------------------------------------------

const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP4: u8 = 1;
const ICMP6: u8 = 58;

fn proto_of(p: u8) -> L4Proto {
    [L4Proto::Tcp, L4Proto::Udp, L4Proto::Icmp][(p % 3) as usize]
}

/// How a packet is fragmented: 0 (and 4-7) whole, 1 first fragment with
/// more to come, 2 a later fragment, 3 the last fragment.
fn frag_fields(frag: u8) -> Option<(u16, bool)> {
    match frag {
        1 => Some((0, true)),
        2 => Some((16, true)),
        3 => Some((24, false)),
        _ => None,
    }
}

/// The transport part: header (checksum filled for the pseudo-header sum
/// `pseudo`, over what is present) and a small payload.
fn l4(
    proto: L4Proto,
    v6: bool,
    sport: u16,
    dport: u16,
    flags: u8,
    pseudo: impl Fn(u32) -> u32,
) -> Vec<u8> {
    let payload = b"nat64-fuzz";
    let mut v = match proto {
        L4Proto::Tcp => {
            let mut h = vec![0u8; 20];
            h[0..2].copy_from_slice(&sport.to_be_bytes());
            h[2..4].copy_from_slice(&dport.to_be_bytes());
            h[4..8].copy_from_slice(&1000u32.to_be_bytes());
            h[12] = 5 << 4;
            h[13] = flags;
            h[14..16].copy_from_slice(&64000u16.to_be_bytes());
            h
        }
        L4Proto::Udp => {
            let mut h = vec![0u8; 8];
            h[0..2].copy_from_slice(&sport.to_be_bytes());
            h[2..4].copy_from_slice(&dport.to_be_bytes());
            h[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
            h
        }
        L4Proto::Icmp => {
            // Echo request; with flag bit 0 an echo reply. Id = source port.
            let reply = flags & 1 != 0;
            let t = match (v6, reply) {
                (true, false) => 128,
                (true, true) => 129,
                (false, false) => 8,
                (false, true) => 0,
            };
            let mut h = vec![t, 0, 0, 0, 0, 0, 0, 1];
            h[4..6].copy_from_slice(&sport.to_be_bytes());
            h
        }
    };
    v.extend_from_slice(payload);
    let at = match proto {
        L4Proto::Tcp => 16,
        L4Proto::Udp => 6,
        L4Proto::Icmp => 2,
    };
    let base = if proto == L4Proto::Icmp && !v6 {
        0
    } else {
        pseudo(v.len() as u32)
    };
    let c = !checksum::fold(checksum::accumulate(base, &v));
    v[at..at + 2].copy_from_slice(&c.to_be_bytes());
    v
}

fn ip_proto(p: L4Proto, v6: bool) -> u8 {
    match p {
        L4Proto::Tcp => TCP,
        L4Proto::Udp => UDP,
        L4Proto::Icmp if v6 => ICMP6,
        L4Proto::Icmp => ICMP4,
    }
}

/// An IPv6 packet; `frag` adds a Fragment header (a later fragment carries
/// bytes, not a transport header).
pub fn ipv6(
    src: Ipv6Addr,
    dst: Ipv6Addr,
    nh: u8,
    body: &[u8],
    frag: Option<(u16, bool)>,
    ident: u32,
) -> Vec<u8> {
    let mut p = vec![0u8; 40];
    p[0] = 0x60;
    p[6] = if frag.is_some() { 44 } else { nh };
    p[7] = 64;
    p[8..24].copy_from_slice(&src.octets());
    p[24..40].copy_from_slice(&dst.octets());
    if let Some((off, more)) = frag {
        let mut f = [0u8; 8];
        f[0] = nh;
        f[2..4].copy_from_slice(&(off | u16::from(more)).to_be_bytes());
        f[4..8].copy_from_slice(&ident.to_be_bytes());
        p.extend_from_slice(&f);
    }
    p.extend_from_slice(body);
    let pl = (p.len() - 40) as u16;
    p[4..6].copy_from_slice(&pl.to_be_bytes());
    p
}

/// An IPv4 packet (DF set when not fragmented and `df`).
pub fn ipv4(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: u8,
    body: &[u8],
    frag: Option<(u16, bool)>,
    ident: u16,
    df: bool,
) -> Vec<u8> {
    let mut p = vec![0u8; 20];
    p[0] = 0x45;
    let total = (20 + body.len()) as u16;
    p[2..4].copy_from_slice(&total.to_be_bytes());
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    let ff = match frag {
        Some((off, more)) => (off / 8) | if more { 0x2000 } else { 0 },
        None if df => 0x4000,
        None => 0,
    };
    p[6..8].copy_from_slice(&ff.to_be_bytes());
    p[8] = 64;
    p[9] = proto;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let c = checksum::checksum(&p);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    p.extend_from_slice(body);
    p
}

fn body_of(
    proto: L4Proto,
    v6: bool,
    frag: Option<(u16, bool)>,
    sport: u16,
    dport: u16,
    flags: u8,
    pseudo: impl Fn(u32) -> u32,
) -> Vec<u8> {
    match frag {
        Some((off, _)) if off > 0 => vec![0xab; 16],
        _ => l4(proto, v6, sport, dport, flags, pseudo),
    }
}

// ---------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------

/// A packet the translator emitted, remembered so that later steps can
/// answer it or quote it in an ICMP error.
#[derive(Clone)]
struct Emitted {
    pkt: Vec<u8>,
}

pub struct Run {
    pub setup: Setup,
    pub e: Engine,
    workers: [Worker; 2],
    ledger: Arc<MappingLedger>,
    pub now: u64,
    buf: Vec<u8>,
    emitted: Vec<Emitted>,
    prefix: Prefix,
    ident: u32,
}

impl Run {
    pub fn new(setup: Setup) -> Run {
        let cfg = config(&setup);
        let prefix = cfg.prefix;
        let e = Engine::new(cfg).expect("the model's configurations are valid");
        let ledger = MappingLedger::attach(&e);
        Run {
            setup,
            workers: [e.worker(), e.worker()],
            e,
            ledger,
            now: 0,
            buf: vec![0u8; HEADROOM + 2048],
            emitted: Vec::new(),
            prefix,
            ident: 0,
        }
    }

    fn pool_addr(&self, i: u8) -> Ipv4Addr {
        if self.setup.kernel() {
            INNER_ADDRS[i as usize % INNER_ADDRS.len()]
        } else {
            // The third choice is outside the pool.
            [POOL[0], POOL[1], Ipv4Addr::new(203, 0, 113, 9)][i as usize % 3]
        }
    }

    /// IPv4 destinations of IPv6 clients: remotes, and our own addresses
    /// (hairpinning, RFC 6146 §3.8).
    fn remote(&self, i: u8) -> Ipv4Addr {
        let i = i as usize % (REMOTES.len() + 2);
        match REMOTES.get(i) {
            Some(a) => *a,
            None => self.pool_addr((i - REMOTES.len()) as u8),
        }
    }

    fn process(&mut self, worker: u8, pkt: &[u8]) -> Result<(), String> {
        if pkt.len() + HEADROOM > self.buf.len() {
            return Ok(());
        }
        self.buf.fill(0);
        self.buf[HEADROOM..HEADROOM + pkt.len()].copy_from_slice(pkt);
        let w = &mut self.workers[worker as usize & 1];
        let nat64_core::state::Processed { verdict: v, owner } =
            w.process(&mut self.buf, HEADROOM, pkt.len(), Timestamp(self.now));
        if let Verdict::Forward { start, len, .. } = v {
            let out = self
                .buf
                .get(start..start.saturating_add(len))
                .ok_or_else(|| {
                    format!(
                        "Forward {start}+{len} outside a {}-byte buffer",
                        self.buf.len()
                    )
                })?;
            let declared = match out.first().map(|b| b >> 4) {
                Some(4) if len >= 20 => usize::from(u16::from_be_bytes([out[2], out[3]])),
                Some(6) if len >= 40 => 40 + usize::from(u16::from_be_bytes([out[4], out[5]])),
                _ => {
                    return Err(format!(
                        "Forward of {len} bytes is no IP packet: {out:02x?}"
                    ))
                }
            };
            if declared != len {
                return Err(format!(
                    "Forward of {len} bytes whose header says {declared}"
                ));
            }
            if owner.is_some_and(|o| o >= 2) {
                return Err(format!("flow owner {owner:?} of 2 queues"));
            }
            if self.emitted.len() >= 64 {
                self.emitted.remove(0);
            }
            self.emitted.push(Emitted { pkt: out.to_vec() });
        }
        Ok(())
    }

    fn next_ident(&mut self, frag: u8) -> u32 {
        // Later fragments reuse the last identification (the datagram of
        // the first fragment); a new whole packet or first fragment takes
        // a new one.
        if frag < 2 {
            self.ident = self.ident.wrapping_add(1);
        }
        self.ident
    }

    fn out(&mut self, op: Op) -> Result<(), String> {
        let Op::Out {
            worker,
            proto,
            client,
            sport,
            remote,
            dport,
            flags,
            frag,
        } = op
        else {
            return Ok(());
        };
        let p = proto_of(proto);
        let src = CLIENTS[client as usize % CLIENTS.len()];
        let dst = self.prefix.embed(self.remote(remote));
        let (sp, dp) = (PORTS[sport as usize % 8], PORTS[dport as usize % 8]);
        let frag_f = frag_fields(frag);
        let ident = self.next_ident(frag);
        let nh = ip_proto(p, true);
        let body = body_of(p, true, frag_f, sp, dp, flags, |len| {
            checksum::pseudo_header_v6(src, dst, nh, len)
        });
        let pkt = ipv6(src, dst, nh, &body, frag_f, ident);
        self.process(worker, &pkt)
    }

    fn inbound(&mut self, op: Op) -> Result<(), String> {
        let Op::In {
            worker,
            proto,
            remote,
            sport,
            pool,
            dport,
            flags,
            frag,
        } = op
        else {
            return Ok(());
        };
        let p = proto_of(proto);
        let src = REMOTES[remote as usize % REMOTES.len()];
        let dst = self.pool_addr(pool);
        let (sp, dp) = (PORTS[sport as usize % 8], PORTS[dport as usize % 8]);
        let frag_f = frag_fields(frag);
        let ident = self.next_ident(frag) as u16;
        let pr = ip_proto(p, false);
        let body = body_of(p, false, frag_f, sp, dp, flags, |len| {
            checksum::pseudo_header_v4(src, dst, pr, len as u16)
        });
        let pkt = ipv4(src, dst, pr, &body, frag_f, ident, flags & 0x80 != 0);
        self.process(worker, &pkt)
    }

    /// The reverse of an emitted packet (addresses and ports swapped), as
    /// its destination would answer.
    fn reply(&mut self, worker: u8, pick: u8, flags: u8) -> Result<(), String> {
        let Some(em) = self.pick(pick) else {
            return Ok(());
        };
        let p = &em.pkt;
        let (hl, proto) = match p[0] >> 4 {
            4 => (usize::from(p[0] & 15) * 4, p[9]),
            _ => (40, p[6]),
        };
        let l4p = match proto {
            TCP => L4Proto::Tcp,
            UDP => L4Proto::Udp,
            ICMP4 | ICMP6 => L4Proto::Icmp,
            _ => return Ok(()),
        };
        let Some(h) = p.get(hl..hl + 8) else {
            return Ok(());
        };
        let (sp, dp) = match l4p {
            L4Proto::Icmp => {
                let id = u16::from_be_bytes([h[4], h[5]]);
                (id, id)
            }
            _ => (
                u16::from_be_bytes([h[0], h[1]]),
                u16::from_be_bytes([h[2], h[3]]),
            ),
        };
        // An echo is answered with a reply (bit 0), a reply with a request.
        let flags = if l4p == L4Proto::Icmp {
            u8::from(matches!(h[0], 8 | 128)) | (flags & 0x80)
        } else {
            flags
        };
        let pkt = if p[0] >> 4 == 4 {
            let src = Ipv4Addr::new(p[16], p[17], p[18], p[19]);
            let dst = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            let body = l4(l4p, false, dp, sp, flags, |len| {
                checksum::pseudo_header_v4(src, dst, proto, len as u16)
            });
            ipv4(src, dst, proto, &body, None, 7, flags & 0x80 != 0)
        } else {
            let mut a = [0u8; 16];
            a.copy_from_slice(&p[24..40]);
            let src = Ipv6Addr::from(a);
            a.copy_from_slice(&p[8..24]);
            let dst = Ipv6Addr::from(a);
            let body = l4(l4p, true, dp, sp, flags, |len| {
                checksum::pseudo_header_v6(src, dst, proto, len)
            });
            ipv6(src, dst, proto, &body, None, 0)
        };
        self.process(worker, &pkt)
    }

    /// An ICMP error about an emitted packet, from its destination (or a
    /// router on the way), quoting its first bytes.
    fn error(&mut self, worker: u8, pick: u8, code: u8) -> Result<(), String> {
        let Some(em) = self.pick(pick) else {
            return Ok(());
        };
        let p = &em.pkt;
        let quote = &p[..p.len().min(if code & 0x80 != 0 { 28 } else { 96 })];
        let pkt = if p[0] >> 4 == 4 {
            let src = if code & 0x40 != 0 {
                Ipv4Addr::new(198, 51, 100, 254)
            } else {
                Ipv4Addr::new(p[16], p[17], p[18], p[19])
            };
            let dst = Ipv4Addr::new(p[12], p[13], p[14], p[15]);
            // Destination Unreachable (code 0-5, 4 with an MTU) or Time
            // Exceeded.
            let (t, c) = if code & 0x20 != 0 {
                (11, 0)
            } else {
                (3, code % 6)
            };
            let mut body = vec![t, c, 0, 0, 0, 0, 0, 0];
            if t == 3 && c == 4 {
                body[6..8].copy_from_slice(&1400u16.to_be_bytes());
            }
            body.extend_from_slice(quote);
            let cs = checksum::checksum(&body);
            body[2..4].copy_from_slice(&cs.to_be_bytes());
            ipv4(src, dst, ICMP4, &body, None, 9, false)
        } else {
            let mut a = [0u8; 16];
            a.copy_from_slice(&p[24..40]);
            let src = Ipv6Addr::from(a);
            a.copy_from_slice(&p[8..24]);
            let dst = Ipv6Addr::from(a);
            // Destination Unreachable (port), Packet Too Big, Time Exceeded.
            let (t, c) = match code % 3 {
                0 => (1, 4),
                1 => (2, 0),
                _ => (3, 0),
            };
            let mut body = vec![t, c, 0, 0, 0, 0, 0, 0];
            if t == 2 {
                body[4..8].copy_from_slice(&1280u32.to_be_bytes());
            }
            body.extend_from_slice(quote);
            let sum = checksum::pseudo_header_v6(src, dst, ICMP6, body.len() as u32);
            let cs = !checksum::fold(checksum::accumulate(sum, &body));
            body[2..4].copy_from_slice(&cs.to_be_bytes());
            ipv6(src, dst, ICMP6, &body, None, 0)
        };
        self.process(worker, &pkt)
    }

    fn pick(&self, pick: u8) -> Option<Emitted> {
        if self.emitted.is_empty() {
            return None;
        }
        // Counted from the newest: small picks are the recent flows.
        let i = self.emitted.len() - 1 - (pick as usize % self.emitted.len());
        Some(self.emitted[i].clone())
    }

    fn sweep(&mut self, budget: u8) -> Result<(), String> {
        let now = Timestamp(self.now);
        let st = if budget == 0 {
            self.e.sweep(now)
        } else {
            self.e.sweep_budget(now, usize::from(budget % 16) + 1)
        };
        for a in &st.icmp_answers {
            let p = &a.packet;
            if p.len() < 20 || p[0] >> 4 != 4 || p[9] != TCP || p.len() > 576 {
                return Err(format!("held SYN answer quotes {p:02x?}"));
            }
        }
        if st.complete {
            invariants::check_swept(&self.e, now).map_err(|v| v.to_string())?;
        }
        Ok(())
    }

    fn show(&self) -> Result<(), String> {
        invariants::check_reports(&self.e).map_err(|v| v.to_string())?;
        self.ledger
            .check(&self.e, self.setup.blocks())
            .map_err(|v| v.to_string())
    }

    fn statics(&mut self, pick: u8) {
        if self.setup.kernel() {
            let v6 = CLIENTS[pick as usize % CLIENTS.len()];
            let v4 = INNER_ADDRS[(pick as usize >> 3) % INNER_ADDRS.len()];
            let _ = self.e.restore_kernel_leases(&[(v6, v4)]);
            return;
        }
        let c = candidates_static()[pick as usize % 4];
        if pick & 0x80 != 0 {
            let _ = self.e.remove_static(c.proto, c.v4);
        } else {
            let _ = self.e.add_static(c);
        }
    }

    fn reload(&mut self, pick: u8) {
        self.e.set_limits(Limits {
            max_sessions: [40, 8, 0, 4096][pick as usize % 4],
            max_sessions_per_client: [12, 2, 1, 65536][(pick as usize >> 2) % 4],
            client_prefix_len: [128, 64, 0, 127][(pick as usize >> 4) % 4],
            site_prefix_len: [64, 48][(pick as usize >> 6) % 2],
            max_sessions_per_site: [30, 3][(pick as usize >> 7) % 2],
            max_leases_per_site: [2, 1][(pick as usize >> 7) % 2],
        });
        if pick & 0x40 != 0 {
            let t = Timeouts::default();
            self.e.set_timeouts(Timeouts {
                udp: t.udp / 2,
                icmp: t.icmp * 2,
                tcp_trans: t.tcp_trans / 4,
                ..t
            });
        }
    }

    /// One step, then the table invariants.
    pub fn step(&mut self, op: Op) -> Result<(), String> {
        match op {
            Op::Out { .. } => self.out(op)?,
            Op::In { .. } => self.inbound(op)?,
            Op::Reply {
                worker,
                pick,
                flags,
            } => self.reply(worker, pick, flags)?,
            Op::Error { worker, pick, code } => self.error(worker, pick, code)?,
            Op::Advance { class, factor } => {
                let ms = ADVANCE_MS[class as usize % 8] * (u64::from(factor) + 1);
                self.now = self.now.saturating_add(ms);
            }
            Op::Sweep { budget } => self.sweep(budget)?,
            Op::Show => self.show()?,
            Op::Static { pick } => self.statics(pick),
            Op::Reload { pick } => self.reload(pick),
        }
        invariants::check(&self.e).map_err(|v| format!("after {op:?} at {} ms: {v}", self.now))
    }

    /// After every timer has run out (TCP may need ESTABLISHED → TRANS →
    /// gone, and reloaded timeouts may be longer), only static state is left
    /// and every pool port is back.
    pub fn finish(&mut self) -> Result<(), String> {
        self.show()?;
        for _ in 0..2 {
            self.now = self.now.saturating_add(TCP_EST.as_millis() as u64 * 4);
            let now = Timestamp(self.now);
            while !self.e.sweep(now).complete {}
            invariants::check_swept(&self.e, now).map_err(|v| format!("at the end: {v}"))?;
            invariants::check(&self.e).map_err(|v| format!("at the end: {v}"))?;
        }
        self.show()?;
        let c = self.e.counts();
        let sessions = c.sessions.tcp + c.sessions.udp + c.sessions.icmp;
        let bindings = c.bindings.tcp + c.bindings.udp + c.bindings.icmp;
        if sessions != 0 || bindings != c.static_bindings {
            return Err(format!("after every timeout: {c:?}"));
        }
        let statics_in_range = self
            .e
            .bindings()
            .iter()
            .filter(|b| b.is_static && (RANGE.0..=RANGE.1).contains(&b.v4.1))
            .count() as u64;
        if c.pool_ports_in_use != statics_in_range {
            return Err(format!(
                "after every timeout {} pool ports in use, {statics_in_range} static",
                c.pool_ports_in_use
            ));
        }
        if !self.e.kernel_leases().is_empty() {
            return Err(format!(
                "after every timeout dynamic leases remain: {:?}",
                self.e.kernel_leases()
            ));
        }
        Ok(())
    }
}

/// Runs `ops` on a fresh engine set up by `setup`; the first broken
/// invariant is the error.
pub fn run(setup: Setup, ops: &[Op]) -> Result<(), String> {
    let mut r = Run::new(setup);
    for (i, op) in ops.iter().enumerate() {
        r.step(*op).map_err(|e| format!("step {i}: {e}"))?;
    }
    r.finish()
}
