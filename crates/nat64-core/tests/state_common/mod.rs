//! Helpers shared by the `state_*` integration tests: drive the engine's
//! mapper directly with tuples and an injected clock.
#![allow(dead_code)]

use nat64_core::addr::Prefix;
use nat64_core::state::*;
use nat64_core::time::Timestamp;
use nat64_core::xlat::{FlowMeta, FragMeta, L4Proto, Mapper, Role, Tuple, Tuple4, Tuple6};
use nat64_core::DropReason;
use std::net::{Ipv4Addr, Ipv6Addr};

pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const FIN: u8 = 0x01;
pub const RST: u8 = 0x04;

pub fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}
pub fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

pub fn daemon_cfg(prefixes: &[(&str, u8)]) -> EngineConfig {
    EngineConfig {
        napt: NaptConfig::Daemon(PoolConfig {
            prefixes: prefixes.iter().map(|(a, l)| (v4(a), *l)).collect(),
            ..PoolConfig::default()
        }),
        ..EngineConfig::default()
    }
}

pub fn kernel_cfg(inner: (&str, u8), maps: &[(&str, &str)]) -> EngineConfig {
    EngineConfig {
        napt: NaptConfig::Kernel(KernelConfig {
            inner_pool: (v4(inner.0), inner.1),
            maps: maps.iter().map(|(a, b)| (v6(a), v4(b))).collect(),
        }),
        ..EngineConfig::default()
    }
}

/// A v6 → v4 tuple towards `64:ff9b::dst`.
pub fn t6(p: L4Proto, src: &str, sp: u16, dst: &str, dp: u16) -> Tuple6 {
    Tuple {
        proto: p,
        src: v6(src),
        src_port: sp,
        dst: Prefix::WELL_KNOWN.embed(v4(dst)),
        dst_port: dp,
    }
}

pub fn t4(p: L4Proto, src: Ipv4Addr, sp: u16, dst: Ipv4Addr, dp: u16) -> Tuple4 {
    Tuple {
        proto: p,
        src,
        src_port: sp,
        dst,
        dst_port: dp,
    }
}

pub fn meta(flags: u8) -> FlowMeta {
    FlowMeta {
        role: Role::Outer,
        tcp_flags: flags,
        fragment: None,
        len: 100,
    }
}

pub fn inner_meta() -> FlowMeta {
    FlowMeta {
        role: Role::IcmpErrorInner,
        ..meta(0)
    }
}

pub fn frag_meta(ident: u32, offset: u16, more: bool) -> FlowMeta {
    FlowMeta {
        fragment: Some(FragMeta {
            ident,
            offset,
            more,
        }),
        ..meta(0)
    }
}

pub struct H {
    pub e: Engine,
    pub w: Worker,
}

impl H {
    pub fn new(cfg: EngineConfig) -> H {
        let e = Engine::new(cfg).expect("config");
        let w = e.worker();
        H { e, w }
    }
    pub fn out(&mut self, t: &Tuple6, flags: u8, ms: u64) -> Result<Tuple4, DropReason> {
        self.out_m(t, &meta(flags), ms)
    }
    pub fn out_m(&mut self, t: &Tuple6, m: &FlowMeta, ms: u64) -> Result<Tuple4, DropReason> {
        self.w.set_now(Timestamp(ms));
        self.w.mapper().map_6to4(t, m)
    }
    pub fn inb(&mut self, t: &Tuple4, flags: u8, ms: u64) -> Result<Tuple6, DropReason> {
        self.inb_m(t, &meta(flags), ms)
    }
    pub fn inb_m(&mut self, t: &Tuple4, m: &FlowMeta, ms: u64) -> Result<Tuple6, DropReason> {
        self.w.set_now(Timestamp(ms));
        self.w.mapper().map_4to6(t, m)
    }
    pub fn sweep_all(&self, ms: u64) -> SweepStats {
        let mut total = SweepStats::default();
        loop {
            let s = self.e.sweep_budget(Timestamp(ms), 1 << 20);
            total.examined += s.examined;
            total.expired_sessions.tcp += s.expired_sessions.tcp;
            total.expired_sessions.udp += s.expired_sessions.udp;
            total.expired_sessions.icmp += s.expired_sessions.icmp;
            total.expired_bindings.tcp += s.expired_bindings.tcp;
            total.expired_bindings.udp += s.expired_bindings.udp;
            total.expired_bindings.icmp += s.expired_bindings.icmp;
            total.tcp_to_trans += s.tcp_to_trans;
            total.expired_leases += s.expired_leases;
            total.icmp_answers.extend(s.icmp_answers);
            if s.complete {
                total.complete = true;
                return total;
            }
        }
    }
    pub fn nsessions(&self) -> usize {
        let c = self.e.counts();
        c.sessions.tcp + c.sessions.udp + c.sessions.icmp
    }
    pub fn nbindings(&self) -> usize {
        let c = self.e.counts();
        c.bindings.tcp + c.bindings.udp + c.bindings.icmp
    }
}

pub const S: u64 = 1000;
