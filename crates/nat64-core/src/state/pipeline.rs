//! RFC 6146 §3.4–3.8 as one function per step, the way the RFC (and Jool's
//! `steps/`) lays them out:
//!
//! 1. [`determine_incoming_tuple_6`] / [`determine_incoming_tuple_4`] —
//!    §3.4: the 5-tuple of the packet (for non-first fragments from the
//!    fragment cache).
//! 2. [`EngineMapper::filtering_and_updating_6`] /
//!    [`EngineMapper::filtering_and_updating_4`] — §3.5: find or create the
//!    BIB entry and session, apply filtering, the TCP state machine and the
//!    timers. The kernel-mode equivalent is the lease lookup.
//! 3. [`compute_outgoing_tuple_4`] / [`compute_outgoing_tuple_6`] — §3.6.
//! 4. Translation — §3.7: RFC 7915 in [`crate::xlat`], which classifies
//!    the packet read-only (the incoming tuple), calls steps 1–3 through
//!    the [`Mapper`] trait, then rewrites the packet once, in place.
//! 5. [`process`] — §3.8 hairpinning: an IPv6 packet whose destination is
//!    one of our own IPv4 addresses is translated back to IPv6 in place;
//!    §3.5.2.2: a refused IPv4 SYN is held ([`hold_if_syn`]). It returns a
//!    [`Processed`]: the verdict and the owner queue of the session.
//!
//! Steps 1–3 take no lock for an established flow: the index is read
//! through a wait-free handle and the session's deadline and TCP state are
//! atomics. Only a new flow takes the writer mutex — and, for the short
//! while until its batch is published (ADR-0002 "Batched publishes"), the
//! next packets of a just-created flow, which find it under that mutex.

use super::frag_cache::FragKey;
use super::table::{Binding, Index, Lease, Session};
use super::tcp_fsm::{self, Dir, Lifetime, TcpState};
use super::{
    client_key, established_timer, Control, Filtering, FlowEvent, FlowPair, Mode, Processed,
    Shared, Tuple4Key, MAX_HELD_SYNS, T_EST, T_FRAG, T_ICMP, T_TRANS, T_UDP,
};
use crate::eam::EamTable;
use crate::time::Timestamp;
use crate::verdict::{DropReason, Verdict};
use crate::wire::{ipv4, ipv6};
use crate::xlat::{self, FlowMeta, L4Proto, Mapper, Role, Tuple, Tuple4, Tuple6};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;

/// The engine as the translation core sees it: a [`Mapper`] holding a
/// worker's read handle and the packet's time.
pub(crate) struct EngineMapper {
    pub(crate) sh: Arc<Shared>,
    rh: left_right::ReadHandle<Index>,
    pub(crate) now: u64,
    /// Owner queue of the session the packet being processed reached (ADR
    /// 0005), set by §3.5 and returned by [`process`] in its
    /// [`Processed`]; never read from outside the call.
    owner: core::cell::Cell<Option<u8>>,
    /// SIIT: the packet is being hairpinned (RFC 7757 §4.2.2), so its
    /// IPv4 source is translated by RFC 6052 alone (§4.2.1 rule 1).
    hairpin_simple: bool,
    /// Kernel mode with the fast path: the flows whose first reply this
    /// worker has seen ([`SeenOnce`]).
    seen_once: SeenOnce,
}

/// Kernel mode, fast path: a flow is offered at its *second* reply through
/// the TUN, not its first, so that one-reply flows (a DNS query, a probe,
/// a refused connection) never cost a map insert and a removal in the
/// fast-path thread. A direct-mapped table of flow tags, one per worker:
/// a collision only delays an offer to a later reply, and memory is fixed
/// (allocated on first use, so only when the fast path runs in kernel
/// mode).
#[derive(Default)]
struct SeenOnce(Option<Box<[u32]>>);

impl SeenOnce {
    /// 8192 slots (32 KiB): a flow's first and second replies are about a
    /// round trip apart, so even 100 k new flows/s put ~100 other first
    /// replies between them.
    const SLOTS_LOG2: u32 = 13;

    /// True when `p` was seen before (offer it); else it is remembered.
    fn again(&mut self, p: &FlowPair) -> bool {
        let slots = self
            .0
            .get_or_insert_with(|| vec![0; 1 << Self::SLOTS_LOG2].into_boxed_slice());
        let c = u128::from(p.client.0);
        let ports = u64::from(p.pool.1) << 32 | u64::from(p.remote.1) << 16 | p.proto as u64;
        let addrs = u64::from(u32::from(p.pool.0)) << 32 | u64::from(u32::from(p.remote.0));
        let mut h = (c as u64) ^ ((c >> 64) as u64).rotate_left(29) ^ addrs.rotate_left(7) ^ ports;
        h = h.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        h ^= h >> 31;
        let slot = &mut slots[(h >> (64 - Self::SLOTS_LOG2)) as usize];
        let tag = (h as u32) | 1;
        if *slot == tag {
            true
        } else {
            *slot = tag;
            false
        }
    }
}

/// RFC 6146 §3.5.4 / §3.4: for ICMP queries the identifier is the port on
/// each side; the remote has none.
#[inline]
fn remote_port(p: L4Proto, port: u16) -> u16 {
    if p == L4Proto::Icmp {
        0
    } else {
        port
    }
}

/// §3.6: the IPv4 tuple of a packet travelling IPv6 → IPv4 on session `s`.
#[inline]
pub(crate) fn compute_outgoing_tuple_4(s: &Session, t: &Tuple6, dst4: Ipv4Addr) -> Tuple4 {
    Tuple {
        proto: s.proto,
        src: s.v4,
        src_port: s.v4_port,
        dst: dst4,
        dst_port: if s.proto == L4Proto::Icmp {
            s.v4_port
        } else {
            t.dst_port
        },
    }
}

/// §3.6 for the packet quoted in an ICMPv6 error (RFC 6146 §3.5.4): the
/// binding's mapping, whatever the remote.
#[inline]
fn inner_tuple_4(b: &Binding, t: &Tuple6, dst4: Ipv4Addr) -> Tuple4 {
    Tuple {
        proto: t.proto,
        src: b.v4,
        src_port: b.v4_port,
        dst: dst4,
        dst_port: if t.proto == L4Proto::Icmp {
            b.v4_port
        } else {
            t.dst_port
        },
    }
}

/// §3.6: the IPv6 tuple of a packet travelling IPv4 → IPv6 to `v6:v6_port`.
#[inline]
pub(crate) fn compute_outgoing_tuple_6(
    sh: &Shared,
    proto: L4Proto,
    v6: Ipv6Addr,
    v6_port: u16,
    t: &Tuple4,
) -> Tuple6 {
    Tuple {
        proto,
        src: sh.prefix.embed(t.src),
        src_port: if proto == L4Proto::Icmp {
            v6_port
        } else {
            t.src_port
        },
        dst: v6,
        dst_port: v6_port,
    }
}

fn frag_key6(t: &Tuple6, ident: u32) -> FragKey {
    FragKey {
        src: IpAddr::V6(t.src),
        dst: IpAddr::V6(t.dst),
        proto: t.proto,
        ident,
    }
}

fn frag_key4(t: &Tuple4, ident: u32) -> FragKey {
    FragKey {
        src: IpAddr::V4(t.src),
        dst: IpAddr::V4(t.dst),
        proto: t.proto,
        ident,
    }
}

/// §3.4: the incoming tuple of an IPv6 packet. A non-first fragment gets
/// the ports its first fragment carried, or is dropped
/// ([`DropReason::FragmentNoState`]) when that is unknown.
pub(crate) fn determine_incoming_tuple_6(
    sh: &Shared,
    t: &Tuple6,
    meta: &FlowMeta,
    now: u64,
) -> Result<Tuple6, DropReason> {
    match meta.fragment {
        Some(f) if !f.is_first() => {
            let c = sh.frags.lock().unwrap_or_else(|e| e.into_inner());
            let (sp, dp) = c
                .get(&frag_key6(t, f.ident), Timestamp(now))
                .ok_or(DropReason::FragmentNoState)?;
            Ok(Tuple {
                src_port: sp,
                dst_port: dp,
                ..*t
            })
        }
        _ => Ok(*t),
    }
}

/// §3.4 for IPv4 packets.
pub(crate) fn determine_incoming_tuple_4(
    sh: &Shared,
    t: &Tuple4,
    meta: &FlowMeta,
    now: u64,
) -> Result<Tuple4, DropReason> {
    match meta.fragment {
        Some(f) if !f.is_first() => {
            let c = sh.frags.lock().unwrap_or_else(|e| e.into_inner());
            let (sp, dp) = c
                .get(&frag_key4(t, f.ident), Timestamp(now))
                .ok_or(DropReason::FragmentNoState)?;
            Ok(Tuple {
                src_port: sp,
                dst_port: dp,
                ..*t
            })
        }
        _ => Ok(*t),
    }
}

fn remember_first_fragment(
    sh: &Shared,
    meta: &FlowMeta,
    key: impl FnOnce(u32) -> FragKey,
    ports: (u16, u16),
    now: u64,
) {
    if let Some(f) = meta.fragment {
        if f.is_first() && f.more && meta.role == Role::Outer {
            let exp = now.saturating_add(sh.timeout_ms(T_FRAG));
            sh.frags.lock().unwrap_or_else(|e| e.into_inner()).insert(
                key(f.ident),
                ports,
                Timestamp(now),
                Timestamp(exp),
            );
        }
    }
}

/// Refuses a new session over the global or per-client limit (RFC 6146 §5
/// "Security Considerations": a DoS guard; [`super::Limits`]).
fn check_limits(c: &mut Control, v6: &Ipv6Addr) -> Result<(), DropReason> {
    if c.total_sessions >= c.limits.max_sessions {
        c.session_limit_hits += 1;
        return Err(DropReason::SessionLimit);
    }
    let ck = client_key(v6, c.limits.client_prefix_len);
    if c.clients.get(&ck).copied().unwrap_or(0) as usize >= c.limits.max_sessions_per_client {
        c.client_limited(ck);
        return Err(DropReason::ClientSessionLimit);
    }
    // The coarser site guard, and a fair share when the table is near
    // full: a site already holding more than total / sites waits.
    let sk = client_key(v6, c.limits.site_prefix_len);
    let held = c.sites.get(&sk).copied().unwrap_or(0) as usize;
    let fair = c.limits.max_sessions / c.sites.len().max(1);
    if held >= c.limits.max_sessions_per_site
        || (super::near_full(c.total_sessions, c.limits.max_sessions) && held >= fair)
    {
        c.site_limit_hits += 1;
        return Err(DropReason::SiteLimit);
    }
    Ok(())
}

impl EngineMapper {
    pub(crate) fn new(sh: Arc<Shared>) -> EngineMapper {
        let rh = sh.factory.handle();
        EngineMapper {
            sh,
            rh,
            now: 0,
            hairpin_simple: false,
            owner: core::cell::Cell::new(None),
            seen_once: SeenOnce::default(),
        }
    }

    fn lifetime(&self, p: L4Proto) -> u64 {
        self.now.saturating_add(self.sh.timeout_ms(match p {
            L4Proto::Udp => T_UDP,
            L4Proto::Icmp => T_ICMP,
            L4Proto::Tcp => T_TRANS,
        }))
    }

    /// §3.5.1 / §3.5.2.2 / §3.5.3 for a packet of an existing session: the
    /// TCP state machine and the timer refresh, lock-free. False when the
    /// reaper claimed the session meanwhile.
    #[inline]
    fn update(&self, s: &Session, dir: Dir, flags: u8) -> bool {
        let now = self.now;
        match s.proto {
            L4Proto::Udp | L4Proto::Icmp => {
                let which = if s.proto == L4Proto::Udp {
                    T_UDP
                } else {
                    T_ICMP
                };
                // Traffic both ways, beyond one exchange: the fast path
                // may carry it.
                if let Some(h) = self.sh.flow_hook.get() {
                    if !s.offered()
                        && s.again_both_ways(dir)
                        && !self.sh.is_local_v4(s.remote)
                        && s.offer()
                    {
                        h(FlowEvent::Established(s.flow_pair()));
                    }
                }
                s.refresh(now.saturating_add(self.sh.timeout_ms(which)))
            }
            L4Proto::Tcp => loop {
                let cur = s.tcp.load(Relaxed);
                let offered = cur & Session::OFFERED;
                let st = TcpState::from_u8(cur & !offered);
                let Some((ns, life)) = tcp_fsm::step(st, dir, flags) else {
                    return !s.is_dead();
                };
                if ns != st
                    && s.tcp
                        .compare_exchange(cur, ns as u8 | offered, Relaxed, Relaxed)
                        .is_err()
                {
                    continue;
                }
                if ns != st {
                    self.tcp_moved(s, st, ns);
                }
                return match life {
                    Lifetime::Keep => !s.is_dead(),
                    Lifetime::Est => s.refresh(now.saturating_add(self.sh.timeout_ms(T_EST))),
                    Lifetime::Trans => s.refresh(now.saturating_add(self.sh.timeout_ms(T_TRANS))),
                };
            },
        }
    }

    /// Tells the fast path when a TCP session enters ESTABLISHED (it may
    /// carry it; a hairpinned one never: its packets must come back here)
    /// and when it leaves (a FIN or RST: the rest goes through the engine).
    #[cold]
    fn tcp_moved(&self, s: &Session, from: TcpState, to: TcpState) {
        let Some(h) = self.sh.flow_hook.get() else {
            return;
        };
        if to == TcpState::Established {
            if !self.sh.is_local_v4(s.remote) && s.offer() {
                h(FlowEvent::Established(s.flow_pair()));
            }
        } else if from == TcpState::Established && s.withdraw() {
            h(FlowEvent::Closed(s.flow_pair()));
        }
    }

    /// §3.5 for IPv6 → IPv4 in `daemon` mode: find the session (lock-free),
    /// or create it under the writer lock.
    pub(crate) fn filtering_and_updating_6(
        &mut self,
        t: &Tuple6,
        dst4: Ipv4Addr,
        meta: &FlowMeta,
    ) -> Result<Tuple4, DropReason> {
        let rp = remote_port(t.proto, t.dst_port);
        if let Some(g) = self.rh.enter() {
            if let Some(s) = g.session6(t.proto, &t.src, t.src_port, dst4, rp) {
                if meta.role == Role::IcmpErrorInner || self.update(s, Dir::V6, meta.tcp_flags) {
                    self.owner.set(Some(s.owner));
                    return Ok(compute_outgoing_tuple_4(s, t, dst4));
                }
            }
            if meta.role == Role::IcmpErrorInner {
                // The quoted packet's flow may have no session for this
                // exact remote; the BIB entry still gives the mapping.
                // Never create state for it.
                if let Some(b) = g.binding6(t.proto, &t.src, t.src_port) {
                    return Ok(inner_tuple_4(b, t, dst4));
                }
                if !self.sh.has_pending() {
                    return Err(DropReason::NoMapping);
                }
            }
        }
        if meta.role == Role::IcmpErrorInner {
            // The binding may still be in the unpublished batch.
            let mut c = self.sh.lock_fast();
            let (b, pending) = c
                .find(|v| v.binding6(t.proto, &t.src, t.src_port))
                .ok_or(DropReason::NoMapping)?;
            if pending {
                c.publish();
            }
            return Ok(inner_tuple_4(&b, t, dst4));
        }
        self.new_flow_6(t, dst4, rp, meta)
    }

    /// §3.5.1.1 / §3.5.2.2 CLOSED / §3.5.3: a packet from IPv6 with no
    /// session. Serialised by the writer lock: two workers racing for the
    /// same flow find each other's session here.
    fn new_flow_6(
        &self,
        t: &Tuple6,
        dst4: Ipv4Addr,
        rp: u16,
        meta: &FlowMeta,
    ) -> Result<Tuple4, DropReason> {
        let mut c = self.sh.lock_fast();
        c.last_now = c.last_now.max(self.now);
        let existing = c.find(|v| v.session6(t.proto, &t.src, t.src_port, dst4, rp));
        if let Some((s, pending)) = existing {
            // A second packet of a flow still in the batch: publish now so
            // its next packets find it without the lock.
            if pending {
                c.publish();
            }
            return if self.update(&s, Dir::V6, meta.tcp_flags) {
                self.owner.set(Some(s.owner));
                Ok(compute_outgoing_tuple_4(&s, t, dst4))
            } else {
                Err(DropReason::NoMapping)
            };
        }
        // §3.5.2.2 CLOSED: only a SYN opens a TCP session.
        let state = match t.proto {
            L4Proto::Tcp => match tcp_fsm::step(TcpState::Closed, Dir::V6, meta.tcp_flags) {
                Some((s, _)) => s,
                None => return Err(DropReason::TcpStateRejected),
            },
            _ => TcpState::Closed,
        };
        check_limits(&mut c, &t.src)?;
        // §3.5.1.1: endpoint-independent mapping: the BIB entry of
        // (v6 source, port) whatever the destination, or a new one.
        let found = c
            .find(|v| v.binding6(t.proto, &t.src, t.src_port))
            .map(|(b, _)| b);
        let b = match found {
            Some(b) => b,
            None => {
                let mut changes = Vec::new();
                let got = match c.pool.as_mut() {
                    Some(p) => p.allocate(t.proto, t.src, t.src_port, &mut changes),
                    None => return Err(DropReason::NoMapping),
                };
                let Ok((v4, port)) = got else {
                    c.pool_exhausted += 1;
                    return Err(DropReason::PoolExhausted);
                };
                c.emit_blocks_pub(self.now, &changes);
                c.add_binding(
                    Binding {
                        proto: t.proto,
                        v6: t.src,
                        v6_port: t.src_port,
                        v4,
                        v4_port: port,
                        is_static: false,
                        sessions: AtomicU32::new(0),
                    },
                    self.now,
                )
            }
        };
        let s = c.add_session(&b, dst4, rp, state, Dir::V6, self.lifetime(t.proto));
        self.owner.set(Some(s.owner));
        c.publish_batched();
        Ok(compute_outgoing_tuple_4(&s, t, dst4))
    }

    /// §3.5 for IPv4 → IPv6 in `daemon` mode.
    pub(crate) fn filtering_and_updating_4(
        &mut self,
        t: &Tuple4,
        meta: &FlowMeta,
    ) -> Result<Tuple6, DropReason> {
        let rp = remote_port(t.proto, t.src_port);
        if let Some(g) = self.rh.enter() {
            if let Some(s) = g.session4(t.proto, t.dst, t.dst_port, t.src, rp) {
                if meta.role == Role::IcmpErrorInner || self.update(s, Dir::V4, meta.tcp_flags) {
                    self.owner.set(Some(s.owner));
                    return Ok(compute_outgoing_tuple_6(
                        &self.sh, s.proto, s.v6, s.v6_port, t,
                    ));
                }
            }
            if meta.role == Role::IcmpErrorInner {
                if let Some(b) = g.binding4(t.proto, t.dst, t.dst_port) {
                    return Ok(compute_outgoing_tuple_6(
                        &self.sh, b.proto, b.v6, b.v6_port, t,
                    ));
                }
                if !self.sh.has_pending() {
                    return Err(DropReason::NoMapping);
                }
            }
        }
        if meta.role == Role::IcmpErrorInner {
            let mut c = self.sh.lock_fast();
            let (b, pending) = c
                .find(|v| v.binding4(t.proto, t.dst, t.dst_port))
                .ok_or(DropReason::NoMapping)?;
            if pending {
                c.publish();
            }
            return Ok(compute_outgoing_tuple_6(
                &self.sh, b.proto, b.v6, b.v6_port, t,
            ));
        }
        self.new_flow_4(t, rp, meta)
    }

    /// §3.5.1 / §3.5.2.2: a packet from IPv4 with no session. Needs a BIB
    /// entry and the filter's consent.
    fn new_flow_4(&mut self, t: &Tuple4, rp: u16, meta: &FlowMeta) -> Result<Tuple6, DropReason> {
        let mut c = self.sh.lock_fast();
        c.last_now = c.last_now.max(self.now);
        let existing = c.find(|v| v.session4(t.proto, t.dst, t.dst_port, t.src, rp));
        if let Some((s, pending)) = existing {
            if pending {
                c.publish();
            }
            return if self.update(&s, Dir::V4, meta.tcp_flags) {
                self.owner.set(Some(s.owner));
                Ok(compute_outgoing_tuple_6(
                    &self.sh, s.proto, s.v6, s.v6_port, t,
                ))
            } else {
                Err(DropReason::NoMapping)
            };
        }
        let binding = c.find(|v| v.binding4(t.proto, t.dst, t.dst_port));
        let Some((b, _)) = binding else {
            // §3.5.2.2: an IPv4 SYN without a BIB entry is held 6 s for a
            // simultaneous open ([`syn_to_hold`], after the call).
            return Err(DropReason::NoBinding);
        };
        // §3.5.1 / RFC 4787 §5: address-dependent filtering lets in only
        // remotes the IPv6 host has sent to. Static entries stay open.
        if self.sh.filtering == Filtering::AddressDependent
            && !b.is_static
            && !c.adf.contains_key(&(
                super::table::pbyte(t.proto),
                u32::from(t.dst),
                t.dst_port,
                u32::from(t.src),
            ))
        {
            return Err(DropReason::FilteredByAddress);
        }
        let state = match t.proto {
            L4Proto::Tcp => match tcp_fsm::step(TcpState::Closed, Dir::V4, meta.tcp_flags) {
                Some((s, _)) => s,
                None => return Err(DropReason::TcpStateRejected),
            },
            _ => TcpState::Closed,
        };
        // RFC 6052 §3.1: no session towards a non-global address behind
        // the Well-Known Prefix.
        if self.sh.wkp_strict && self.sh.prefix.is_well_known() && !crate::addr::is_global_v4(t.src)
        {
            return Err(DropReason::WkpNonGlobal);
        }
        check_limits(&mut c, &b.v6)?;
        let s = c.add_session(&b, t.src, rp, state, Dir::V4, self.lifetime(t.proto));
        self.owner.set(Some(s.owner));
        c.publish_batched();
        Ok(compute_outgoing_tuple_6(
            &self.sh, s.proto, s.v6, s.v6_port, t,
        ))
    }

    /// Lease lifetime in kernel mode: the protocol's timer (TCP_EST, or
    /// TCP_TRANS for a FIN/RST), never shortening a lease.
    fn kernel_deadline(&self, p: L4Proto, flags: u8) -> u64 {
        let which = match p {
            L4Proto::Tcp if flags & (tcp_fsm::FIN | tcp_fsm::RST) != 0 => T_TRANS,
            p => established_timer(p),
        };
        self.now.saturating_add(self.sh.timeout_ms(which))
    }

    /// `kernel` mode, IPv6 → IPv4: the source's 1:1 lease (created on first
    /// use); ports are left to the host's MASQUERADE.
    fn kernel_6to4(
        &mut self,
        t: &Tuple6,
        dst4: Ipv4Addr,
        meta: &FlowMeta,
    ) -> Result<Tuple4, DropReason> {
        let out = |v4: Ipv4Addr| Tuple {
            proto: t.proto,
            src: v4,
            src_port: t.src_port,
            dst: dst4,
            dst_port: t.dst_port,
        };
        let dl = self.kernel_deadline(t.proto, meta.tcp_flags);
        // Until traffic comes back, a lease lives at most the transitory
        // time (RFC 6146 §3.5.2.2's TCP_TRANS; issue 11 #4).
        let probe_dl = dl.min(self.now.saturating_add(self.sh.timeout_ms(T_TRANS)));
        let dl_for = |l: &Lease| {
            if l.confirmed.load(Relaxed) {
                dl
            } else {
                probe_dl
            }
        };
        if let Some(g) = self.rh.enter() {
            if let Some(l) = g.lease6(&t.src) {
                if meta.role == Role::IcmpErrorInner || l.refresh(dl_for(l)) {
                    return Ok(out(l.v4));
                }
            }
        }
        if meta.role == Role::IcmpErrorInner && !self.sh.has_pending() {
            return Err(DropReason::NoMapping);
        }
        let mut c = self.sh.lock_fast();
        c.last_now = c.last_now.max(self.now);
        if let Some((l, pending)) = c.find(|v| v.lease6(&t.src)) {
            if pending {
                c.publish();
            }
            if meta.role == Role::Outer {
                l.refresh(dl_for(&l));
            }
            return Ok(out(l.v4));
        }
        if meta.role == Role::IcmpErrorInner {
            return Err(DropReason::NoMapping);
        }
        // The site guard: one /64 cannot take the whole inner pool.
        let sk = client_key(&t.src, c.limits.site_prefix_len);
        if c.lease_sites.get(&sk).copied().unwrap_or(0) as usize >= c.limits.max_leases_per_site {
            c.site_limit_hits += 1;
            return Err(DropReason::SiteLimit);
        }
        let got = c.kpool.as_mut().and_then(|k| k.allocate(&t.src));
        let Some(v4) = got else {
            c.pool_exhausted += 1;
            return Err(DropReason::PoolExhausted);
        };
        c.add_lease(t.src, v4, false, false, probe_dl, self.now);
        c.publish_batched();
        Ok(out(v4))
    }

    /// `kernel` mode and the fast path (issue 13): a packet of a flow of
    /// `client`'s lease went through, `pool` being the lease's address and
    /// the client's port (kept: the kernel's NAT does the ports) and
    /// `remote` the IPv4 peer. Kernel mode keeps no
    /// sessions: conntrack, which sees every packet of a flow whichever
    /// path translates it, is the state machine, and an installed flow is
    /// only the lease's address mapping for one 5-tuple. So every packet
    /// coming back (4 → 6) from the second on ([`SeenOnce`]) offers its
    /// flow (the fast-path thread keeps the set and ignores repeats) and a
    /// FIN or RST either way withdraws it; hairpinned flows never leave
    /// (their packets must come back here).
    fn kernel_flow_seen(
        &mut self,
        proto: L4Proto,
        client: Ipv6Addr,
        pool: (Ipv4Addr, u16),
        remote: (Ipv4Addr, u16),
        flags: u8,
    ) {
        let Some(h) = self.sh.flow_hook.get() else {
            return;
        };
        if self.sh.is_local_v4(remote.0) {
            return;
        }
        let p = FlowPair {
            proto,
            client: (client, pool.1),
            pool,
            remote,
        };
        if proto == L4Proto::Tcp && flags & (tcp_fsm::FIN | tcp_fsm::RST) != 0 {
            h(FlowEvent::Closed(p));
        } else if self.seen_once.again(&p) {
            h(FlowEvent::Established(p));
        }
    }

    /// `kernel` mode, IPv4 → IPv6: the lease (dynamic or a static map) of
    /// the destination; any IPv4 source becomes `prefix || v4`.
    fn kernel_4to6(&mut self, t: &Tuple4, meta: &FlowMeta) -> Result<Tuple6, DropReason> {
        let dl = self.kernel_deadline(t.proto, meta.tcp_flags);
        // RFC 6052 §3.1, as daemon mode applies it through its sessions.
        let src6 = self.sh.embed_checked(t.src)?;
        let out = |l: &Lease| Tuple {
            proto: t.proto,
            src: src6,
            src_port: t.src_port,
            dst: l.v6,
            dst_port: t.dst_port,
        };
        let mut unconfirmed = None;
        if let Some(g) = self.rh.enter() {
            if let Some(l) = g.lease4(t.dst) {
                if meta.role == Role::Outer && !l.refresh(dl) {
                    return Err(DropReason::NoBinding);
                }
                if meta.role != Role::Outer || l.confirmed.load(Relaxed) {
                    return Ok(out(l));
                }
                unconfirmed = Some(l.clone());
            }
        }
        // The first packet back through a lease confirms it (once per
        // lease: worth the lock).
        if let Some(l) = unconfirmed {
            self.sh.lock_fast().confirm_lease(&l);
            return Ok(out(&l));
        }
        // Not published yet? Only worth the lock while a batch is pending.
        if !self.sh.has_pending() {
            return Err(DropReason::NoBinding);
        }
        let mut c = self.sh.lock_fast();
        let (l, pending) = c.find(|v| v.lease4(t.dst)).ok_or(DropReason::NoBinding)?;
        if pending {
            c.publish();
        }
        if meta.role == Role::Outer {
            if !l.refresh(dl) {
                return Err(DropReason::NoBinding);
            }
            c.confirm_lease(&l);
        }
        Ok(out(&l))
    }
}

/// `none` mode (stateless SIIT, RFC 7915 + RFC 6052 + RFC 7757; ADR 0009).
impl EngineMapper {
    /// The stateful modes' IPv4 destination: extracted from the prefix
    /// (RFC 6052 §3.1 for the Well-Known Prefix), never out of scope.
    #[inline]
    fn nat64_dst4(&self, dst: &Ipv6Addr) -> Result<Ipv4Addr, DropReason> {
        in_scope(self.sh.prefix.extract_checked(dst, self.sh.wkp_strict)?)
    }

    /// RFC 7757 §3.3 for an IPv6 address: the EAM table first, then the
    /// RFC 6052 prefix (with §3.1 for the Well-Known Prefix).
    #[inline]
    fn siit_v6_to_v4(&self, eam: &EamTable, a: &Ipv6Addr) -> Result<Ipv4Addr, DropReason> {
        if let Some(v4) = eam.v6_to_v4(a) {
            return Ok(v4);
        }
        Ok(self.sh.prefix.extract_checked(a, self.sh.wkp_strict)?)
    }

    /// RFC 7757 §3.3 for an IPv4 address: the EAM table first, then
    /// RFC 6052 embedding.
    #[inline]
    fn siit_v4_to_v6(&self, eam: &EamTable, a: Ipv4Addr) -> Result<Ipv6Addr, DropReason> {
        match eam.v4_to_v6(a) {
            Some(v6) => Ok(v6),
            None => self.sh.embed_checked(a),
        }
    }

    fn siit_has_dynamic(&self) -> bool {
        matches!(
            self.sh.mode,
            Mode::Siit {
                dynamic: Some(_),
                ..
            }
        )
    }

    fn is_clat(&self) -> bool {
        matches!(self.sh.mode, Mode::Siit { clat: true, .. })
    }

    /// IPv6 → IPv4. A source neither the EAM table nor the prefix
    /// translates takes a 1:1 lease from the dynamic pool, if there is one
    /// (Tayga's `dynamic-pool`).
    fn siit_6to4(&mut self, t: &Tuple6, meta: &FlowMeta) -> Result<Tuple4, DropReason> {
        let eam = self.sh.eam.load();
        let dst = if self.is_clat() {
            // RFC 6877: only this host's own IPv4 address is behind us.
            eam.v6_to_v4(&t.dst)
                .ok_or(DropReason::UntranslatableDestination)?
        } else {
            self.siit_v6_to_v4(&eam, &t.dst)
                .map_err(|r| untranslatable(r, DropReason::UntranslatableDestination))
                .and_then(in_scope)?
        };
        match self.siit_v6_to_v4(&eam, &t.src).and_then(in_scope) {
            Ok(src) => Ok(Tuple {
                proto: t.proto,
                src,
                src_port: t.src_port,
                dst,
                dst_port: t.dst_port,
            }),
            Err(DropReason::NotInPrefix) if self.siit_has_dynamic() => {
                self.kernel_6to4(t, dst, meta)
            }
            Err(r) => Err(untranslatable(r, DropReason::UntranslatableSource)),
        }
    }

    /// IPv4 → IPv6. A destination in the dynamic pool must hold a lease.
    fn siit_4to6(&mut self, t: &Tuple4, meta: &FlowMeta) -> Result<Tuple6, DropReason> {
        let eam = self.sh.eam.load();
        let src = if self.is_clat() {
            eam.v4_to_v6(t.src)
                .ok_or(DropReason::UntranslatableSource)?
        } else if self.hairpin_simple {
            // RFC 7757 §4.2.1 rule 1 on a hairpinned packet: the source by
            // RFC 6052, not by EAM.
            self.sh.embed_checked(t.src)?
        } else {
            self.siit_v4_to_v6(&eam, t.src)?
        };
        let dst = match eam.v4_to_v6(t.dst) {
            Some(v6) => v6,
            None if self.sh.is_dynamic_v4(t.dst) => self.kernel_4to6(t, meta)?.dst,
            None => self.sh.embed_checked(t.dst)?,
        };
        Ok(Tuple {
            proto: t.proto,
            src,
            src_port: t.src_port,
            dst,
            dst_port: t.dst_port,
        })
    }
}

/// RFC 6052 §5.1 / RFC 1812 §5.3.7: refused before any state is created
/// for it (the translator checks its output again, for every mapping).
#[inline]
fn in_scope(a: Ipv4Addr) -> Result<Ipv4Addr, DropReason> {
    if xlat::v4_out_of_scope(&a) {
        Err(DropReason::OutOfScopeV4)
    } else {
        Ok(a)
    }
}

/// An address outside the prefix is untranslatable in SIIT mode (RFC 7915
/// §5.1); other refusals (the §3.1 rule) keep their own name.
fn untranslatable(r: DropReason, which: DropReason) -> DropReason {
    if r == DropReason::NotInPrefix {
        which
    } else {
        r
    }
}

impl Mapper for EngineMapper {
    fn map_6to4(&mut self, t: &Tuple6, meta: &FlowMeta) -> Result<Tuple4, DropReason> {
        let now = self.now;
        // 1. §3.4 determine the incoming tuple.
        let t = determine_incoming_tuple_6(&self.sh, t, meta, now)?;
        // 2–3. §3.5 filtering and updating, §3.6 outgoing tuple.
        let out = match self.sh.mode {
            Mode::Kernel { .. } => {
                let dst4 = self.nat64_dst4(&t.dst)?;
                let out = self.kernel_6to4(&t, dst4, meta)?;
                if meta.role == Role::Outer && meta.tcp_flags & (tcp_fsm::FIN | tcp_fsm::RST) != 0 {
                    let (pool, remote) = ((out.src, out.src_port), (out.dst, out.dst_port));
                    self.kernel_flow_seen(t.proto, t.src, pool, remote, meta.tcp_flags);
                }
                out
            }
            Mode::Daemon { .. } => {
                let dst4 = self.nat64_dst4(&t.dst)?;
                self.filtering_and_updating_6(&t, dst4, meta)?
            }
            Mode::Siit { .. } => self.siit_6to4(&t, meta)?,
        };
        remember_first_fragment(
            &self.sh,
            meta,
            |i| frag_key6(&t, i),
            (t.src_port, t.dst_port),
            now,
        );
        Ok(out)
    }

    fn map_4to6(&mut self, t: &Tuple4, meta: &FlowMeta) -> Result<Tuple6, DropReason> {
        let now = self.now;
        let t = determine_incoming_tuple_4(&self.sh, t, meta, now)?;
        let out = match self.sh.mode {
            Mode::Kernel { .. } => {
                let out = self.kernel_4to6(&t, meta)?;
                if meta.role == Role::Outer {
                    let (pool, remote) = ((t.dst, t.dst_port), (t.src, t.src_port));
                    self.kernel_flow_seen(t.proto, out.dst, pool, remote, meta.tcp_flags);
                }
                out
            }
            Mode::Daemon { .. } => self.filtering_and_updating_4(&t, meta)?,
            Mode::Siit { .. } => self.siit_4to6(&t, meta)?,
        };
        remember_first_fragment(
            &self.sh,
            meta,
            |i| frag_key4(&t, i),
            (t.src_port, t.dst_port),
            now,
        );
        Ok(out)
    }

    fn icmp_error_source_4to6(&mut self, router: Ipv4Addr) -> Result<Ipv6Addr, DropReason> {
        if matches!(self.sh.mode, Mode::Siit { .. }) {
            // RFC 7757 §3.3: the router may have an explicit mapping.
            if let Some(v6) = self.sh.eam.load().v4_to_v6(router) {
                return Ok(v6);
            }
        }
        Ok(self.sh.prefix.embed(router))
    }

    /// RFC 7915 §5.1 / RFC 6791 in `none` mode: the router's own mapping
    /// when it has one, else an address of the RFC 6791 pool picked by a
    /// hash of the router (one router, one address: traceroute stays
    /// readable). The stateful modes keep RFC 6146 §3.4's choice.
    fn icmp_error_source_6to4(&mut self, router: Ipv6Addr, quoted: Ipv4Addr) -> Ipv4Addr {
        let Mode::Siit { rfc6791, .. } = &self.sh.mode else {
            return quoted;
        };
        let eam = self.sh.eam.load();
        match self.siit_v6_to_v4(&eam, &router) {
            Ok(a) if !xlat::v4_out_of_scope(&a) => a,
            _ if rfc6791.is_empty() => quoted,
            _ => {
                let h = super::pool::mix_v6(&router, 0x6791);
                rfc6791[(h % rfc6791.len() as u64) as usize]
            }
        }
    }

    /// Protocols without ports (RFC 7915 §4.5/§5.5): kernel mode maps
    /// addresses 1:1 (the source's lease, with the UDP timer, or a static
    /// map) and SIIT/CLAT map every address on its own, so they translate
    /// like any packet there; daemon NAPT has no port to give them and
    /// drops them as `unsupported_protocol`.
    fn map_addrs_6to4(
        &mut self,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        meta: &FlowMeta,
    ) -> Result<(Ipv4Addr, Ipv4Addr), DropReason> {
        let t = Tuple {
            proto: L4Proto::Udp,
            src,
            src_port: 0,
            dst,
            dst_port: 0,
        };
        let out = match self.sh.mode {
            Mode::Daemon { .. } => return Err(DropReason::UnsupportedProtocol),
            Mode::Siit { .. } => self.siit_6to4(&t, meta)?,
            Mode::Kernel { .. } => {
                let dst4 = self.nat64_dst4(&dst)?;
                self.kernel_6to4(&t, dst4, meta)?
            }
        };
        Ok((out.src, out.dst))
    }

    fn map_addrs_4to6(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        meta: &FlowMeta,
    ) -> Result<(Ipv6Addr, Ipv6Addr), DropReason> {
        let t = Tuple {
            proto: L4Proto::Udp,
            src,
            src_port: 0,
            dst,
            dst_port: 0,
        };
        let out = match self.sh.mode {
            Mode::Daemon { .. } => return Err(DropReason::UnsupportedProtocol),
            Mode::Siit { .. } => self.siit_4to6(&t, meta)?,
            Mode::Kernel { .. } => self.kernel_4to6(&t, meta)?,
        };
        Ok((out.src, out.dst))
    }
}

/// One packet through the whole pipeline, in Jool's order (`core.c`):
/// the loop guard and the translator's own addresses, then RFC 7915 §3.7
/// translation with the mode's mapping (§3.4–§3.6) behind the [`Mapper`]
/// seam, then RFC 6146 §3.8 hairpinning: after IPv6 → IPv4, a destination
/// that is our own IPv4 address is translated straight back to IPv6 (in
/// place, no second trip through the TUN), as if the IPv4 packet had
/// arrived from outside. A refused IPv4 SYN is held here (§3.5.2.2,
/// [`syn_to_hold`]). The result carries all the data plane needs: the
/// verdict and the owner queue of the packet's session.
pub(crate) fn process(
    m: &mut EngineMapper,
    cfg: &xlat::Config,
    buf: &mut [u8],
    start: usize,
    len: usize,
    now: Timestamp,
    off: xlat::Offload,
) -> Processed {
    m.now = now.0;
    m.owner.set(None);
    let verdict = process_verdict(m, cfg, buf, start, len, now, off);
    Processed {
        verdict,
        owner: m.owner.get(),
    }
}

fn process_verdict(
    m: &mut EngineMapper,
    cfg: &xlat::Config,
    buf: &mut [u8],
    start: usize,
    len: usize,
    now: Timestamp,
    off: xlat::Offload,
) -> Verdict {
    let from6 = buf.get(start).map(|b| b >> 4) == Some(6);
    if let Err(r) = loop_guard(&m.sh, buf.get(start..start.saturating_add(len)), from6) {
        return Verdict::Drop(r);
    }
    if to_own_address(&m.sh, buf.get(start..start.saturating_add(len)), from6) {
        return if from6 {
            super::endpoint::answer_v6(buf, start, len)
        } else {
            super::endpoint::answer_v4(buf, start, len)
        };
    }
    // RFC 7757 §4.2.2 needs to know how the IPv6 destination translated.
    let dst6 = match (&m.sh.mode, from6) {
        (Mode::Siit { clat: false, .. }, true) => buf
            .get(start..start.saturating_add(len))
            .and_then(|p| ipv6::Packet::new_checked(p).ok())
            .map(|ip| ip.dst_addr()),
        _ => None,
    };
    let v = xlat::translate_offload(buf, start, len, cfg, m, off);
    match v {
        Verdict::Forward {
            start: s, len: l, ..
        } if from6 => {
            // The translator wrote this header: its destination is where
            // the IPv4 view has it, without checking the view again.
            let dst = buf
                .get(s..s + l)
                .filter(|p| p.len() >= ipv4::HEADER_LEN)
                .map(|p| ipv4::Packet::new_unchecked(p).dst_addr());
            match dst {
                Some(d) if m.sh.is_local_v4(d) => hairpin(m, cfg, buf, s, l, now, off),
                Some(d) if eam_hairpin(&m.sh, dst6, d, &buf[s..s + l]) => {
                    m.hairpin_simple = true;
                    let v = hairpin(m, cfg, buf, s, l, now, off);
                    m.hairpin_simple = false;
                    v
                }
                _ => v,
            }
        }
        // RFC 6146 §3.5.1 / §3.5.2.2: no IPv4 transport address could be
        // allocated → ICMPv6 Destination Unreachable, Address Unreachable
        // (code 3). A flow refused by a limit is refused by policy →
        // administratively prohibited (code 1). Rate-limited by the daemon.
        Verdict::Drop(r @ DropReason::PoolExhausted) if from6 => Verdict::Icmp {
            error: crate::IcmpError::DestUnreachableV6 { code: 3 },
            reason: r,
        },
        Verdict::Drop(
            r @ (DropReason::SessionLimit | DropReason::ClientSessionLimit | DropReason::SiteLimit),
        ) if from6 => Verdict::Icmp {
            error: crate::IcmpError::DestUnreachableV6 { code: 1 },
            reason: r,
        },
        Verdict::Drop(DropReason::NoBinding | DropReason::FilteredByAddress) if !from6 => {
            hold_if_syn(&m.sh, &buf[start..(start + len).min(buf.len())], now.0);
            v
        }
        _ => v,
    }
}

/// RFC 7757 §4.2.2 "intrinsic" hairpinning, set A: a packet that is not an
/// ICMP error (A1), whose IPv6 destination `dst6` translated by RFC 6052
/// rather than by EAM (A2), to an IPv4 address the EAM table holds (A3),
/// goes straight back to IPv6 — the destination is an IPv6 host behind this
/// very translator. (Set B, ICMP errors about such packets, is not
/// hairpinned: they leave as IPv4.)
fn eam_hairpin(sh: &Shared, dst6: Option<Ipv6Addr>, dst4: Ipv4Addr, pkt4: &[u8]) -> bool {
    let Some(dst6) = dst6 else {
        return false;
    };
    let eam = sh.eam.load();
    if eam.is_empty() || eam.v6_to_v4(&dst6).is_some() || eam.find_v4(dst4).is_none() {
        return false;
    }
    let hl = usize::from(pkt4[0] & 0x0f) * 4;
    let icmp_error = pkt4[9] == crate::wire::proto::ICMP
        && pkt4
            .get(hl)
            .is_some_and(|t| crate::wire::icmp::is_v4_error(*t));
    !icmp_error
}

/// RFC 6146 §3.8: the IPv4 packet at `buf[s..s + l]`, just translated
/// from IPv6 and addressed to one of our own IPv4 addresses, goes back to
/// IPv6 as if it had arrived from outside — with one difference: it
/// crossed one router, not two, so the hop limit is not decremented again.
/// A SYN that finds no binding is held like one from the IPv4 side
/// (§3.5.2.2), to be answered with Port Unreachable if no IPv6 SYN opens
/// the way within 6 s.
fn hairpin(
    m: &mut EngineMapper,
    cfg: &xlat::Config,
    buf: &mut [u8],
    s: usize,
    l: usize,
    now: Timestamp,
    off: xlat::Offload,
) -> Verdict {
    let once = xlat::Config {
        decrement_ttl: false,
        ..*cfg
    };
    let v = xlat::four_to_six::four_to_six_offload(buf, s, l, &once, m, off);
    if let Verdict::Drop(DropReason::NoBinding | DropReason::FilteredByAddress) = v {
        hold_if_syn(&m.sh, &buf[s..(s + l).min(buf.len())], now.0);
    }
    v
}

/// The loop guard (docs/operator.md §7, issue 11 #1): a packet read from the TUN whose *source* is
/// one of the translator's own addresses cannot come from a real host. An
/// IPv6 source inside the prefix is what this translator writes on the
/// IPv6 side (`prefix || IPv4`): such a packet coming back in is either
/// spoofed or looping (translated, echoed by an IPv4 service, translated
/// back, routed into the TUN again, forever). An IPv4 source in the pool
/// (daemon) or the inner pool and static maps (kernel) is one nothing
/// outside may use: hairpinning between own addresses happens inside
/// [`process`] and never crosses the TUN.
fn loop_guard(sh: &Shared, pkt: Option<&[u8]>, from6: bool) -> Result<(), DropReason> {
    let Some(pkt) = pkt else {
        return Ok(());
    };
    // In SIIT mode IPv6 hosts may own addresses inside the prefix
    // (IPv4-translatable addresses, RFC 6052 §2.2 / RFC 7915 §1.3): the
    // hop limit bounds a loop there instead.
    let stateless = matches!(sh.mode, Mode::Siit { .. });
    if from6 {
        if stateless {
            return Ok(());
        }
        if let Some(src) = pkt.get(8..24).and_then(|b| <[u8; 16]>::try_from(b).ok()) {
            if sh.prefix.contains(&Ipv6Addr::from(src)) {
                return Err(DropReason::SourceInPrefix);
            }
        }
    } else if let Some(src) = pkt.get(12..16).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
        if pkt.first().map(|b| b >> 4) == Some(4) && sh.is_local_v4(Ipv4Addr::from(src)) {
            return Err(DropReason::SourceIsOwnAddress);
        }
    }
    Ok(())
}

/// `none` mode: is the packet addressed to the translator itself (its
/// IPv4 address, its IPv6 address, or the IPv4 one embedded in the prefix)?
fn to_own_address(sh: &Shared, pkt: Option<&[u8]>, from6: bool) -> bool {
    let (Mode::Siit { own_v4, own_v6, .. }, Some(pkt)) = (&sh.mode, pkt) else {
        return false;
    };
    if from6 {
        let Some(dst) = pkt.get(24..40).and_then(|b| <[u8; 16]>::try_from(b).ok()) else {
            return false;
        };
        let dst = Ipv6Addr::from(dst);
        *own_v6 == Some(dst) || own_v4.is_some_and(|a| sh.prefix.embed(a) == dst)
    } else {
        let Some(dst) = pkt.get(16..20).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
            return false;
        };
        *own_v4 == Some(Ipv4Addr::from(dst))
    }
}

/// RFC 6146 §3.5.2.2: the IPv4 packet `pkt`, which §3.5 refused for want
/// of a BIB entry (or by address-dependent filtering), is held 6 s for a
/// simultaneous open when it is a TCP SYN to one of our own addresses in
/// `daemon` mode; the sweep answers it with Port Unreachable if no IPv6 SYN
/// opens the way. Read from the packet (untouched by a dropped
/// translation), after the mapping's answer, not reported by it.
fn hold_if_syn(sh: &Shared, pkt: &[u8], now: u64) {
    if let Some(k) = syn_to_hold(sh, pkt) {
        hold_syn(sh, k, pkt, now);
    }
}

/// The key of a SYN [`hold_if_syn`] holds: (remote, remote port, own
/// address, own port).
fn syn_to_hold(sh: &Shared, pkt: &[u8]) -> Option<Tuple4Key> {
    if !matches!(sh.mode, Mode::Daemon { .. }) {
        return None;
    }
    let ip = ipv4::Packet::new_checked(pkt).ok()?;
    if ip.protocol() != crate::wire::proto::TCP || ip.frag_offset() != 0 {
        return None;
    }
    let tcp = ip.payload();
    if tcp.len() < crate::wire::l4::TCP_HEADER_LEN {
        return None;
    }
    let tcp = crate::wire::l4::Ports::new_unchecked(tcp);
    let dst = ip.dst_addr();
    (tcp.tcp_flags() & tcp_fsm::SYN != 0 && sh.is_local_v4(dst)).then_some((
        ip.src_addr(),
        tcp.src_port(),
        dst,
        tcp.dst_port(),
    ))
}

/// Stores an unsolicited IPv4 SYN (RFC 6146 §3.5.2.2), bounded in count.
fn hold_syn(sh: &Shared, k: Tuple4Key, pkt: &[u8], now: u64) {
    let mut h = sh.held.lock().unwrap_or_else(|e| e.into_inner());
    if h.len() >= MAX_HELD_SYNS || h.iter().any(|(_, x, _)| *x == k) {
        return;
    }
    h.push((now, k, pkt[..pkt.len().min(576)].to_vec()));
}
