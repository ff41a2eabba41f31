//! The flow tables: BIB entries, sessions and kernel-mode leases, and the
//! read-mostly index the data path looks them up in.
//!
//! Entries are `Arc`s shared between the writer (behind the engine's mutex)
//! and the index. What changes per packet (the deadline, the TCP state) is
//! an atomic inside the entry, so refreshing an established flow takes no
//! lock. The index is a [`left_right`] pair of hash tables: readers (one
//! handle per worker) never wait; the single writer publishes after each
//! change (see docs/adr/0002-concurrent-flow-table.md).
//!
//! The hash tables store only the `Arc` (8 bytes a bucket) and compare keys
//! through it, which keeps two copies of the index affordable.

use super::tcp_fsm::TcpState;
use crate::xlat::L4Proto;
use core::hash::BuildHasher;
use hashbrown::HashTable;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

/// Deadline value of a session (or lease) the reaper has claimed: the data
/// path treats it as absent.
pub(crate) const DEAD: u64 = u64::MAX;

/// Refreshes closer than this to the stored deadline are skipped, so a busy
/// flow does not write its cache line on every packet.
pub(crate) const REFRESH_SLACK_MS: u64 = 1000;

/// An RFC 6146 §3.1 BIB entry: (v6 addr, port) ↔ (v4 addr, port).
#[derive(Debug)]
pub(crate) struct Binding {
    pub proto: L4Proto,
    pub v6: Ipv6Addr,
    pub v6_port: u16,
    pub v4: Ipv4Addr,
    pub v4_port: u16,
    pub is_static: bool,
    /// Live sessions using this binding (writer-maintained).
    pub sessions: AtomicU32,
}

/// An RFC 6146 §3.2 session table entry: a binding plus the remote IPv4
/// endpoint (whose IPv6 face is `prefix || remote`). For ICMP the remote
/// port is 0: the identifier is each side's own.
#[derive(Debug)]
pub(crate) struct Session {
    pub proto: L4Proto,
    pub v6: Ipv6Addr,
    pub v6_port: u16,
    pub v4: Ipv4Addr,
    pub v4_port: u16,
    pub remote: Ipv4Addr,
    pub remote_port: u16,
    /// Milliseconds ([`crate::time::Timestamp`]) when the session expires;
    /// [`DEAD`] once reaped.
    pub deadline: AtomicU64,
    /// [`TcpState`] as a byte (0 for UDP/ICMP).
    pub tcp: AtomicU8,
    /// Position in the writer's session list (writer only).
    pub slot: AtomicU32,
}

impl Session {
    pub fn tcp_state(&self) -> TcpState {
        TcpState::from_u8(self.tcp.load(Relaxed))
    }
    pub fn is_dead(&self) -> bool {
        self.deadline.load(Relaxed) == DEAD
    }
    /// Moves the deadline to `to` unless the reaper claimed the session.
    /// Returns false if the session is dead.
    #[inline]
    pub fn refresh(&self, to: u64) -> bool {
        let cur = self.deadline.load(Relaxed);
        if cur == DEAD {
            return false;
        }
        if to.abs_diff(cur) < REFRESH_SLACK_MS && to >= cur {
            return true;
        }
        match self.deadline.compare_exchange(cur, to, Relaxed, Relaxed) {
            Ok(_) => true,
            Err(now) => now != DEAD,
        }
    }
}

/// A `kernel`-mode 1:1 lease: a v6 source ↔ an inner v4 address.
#[derive(Debug)]
pub(crate) struct Lease {
    pub v6: Ipv6Addr,
    pub v4: Ipv4Addr,
    pub is_static: bool,
    pub deadline: AtomicU64,
    pub slot: AtomicU32,
}

impl Lease {
    /// Pushes the deadline out to at least `to` (never shortens it).
    #[inline]
    pub fn refresh(&self, to: u64) -> bool {
        let cur = self.deadline.load(Relaxed);
        if cur == DEAD {
            return false;
        }
        if cur >= to || to - cur < REFRESH_SLACK_MS {
            return true;
        }
        match self.deadline.compare_exchange(cur, to, Relaxed, Relaxed) {
            Ok(_) => true,
            Err(now) => now != DEAD,
        }
    }
}

pub(crate) const fn pbyte(p: L4Proto) -> u8 {
    match p {
        L4Proto::Tcp => 6,
        L4Proto::Udp => 17,
        L4Proto::Icmp => 1,
    }
}

/// The lookup index. Two copies live in the left-right pair.
#[derive(Clone)]
pub(crate) struct Index {
    pub hasher: foldhash::fast::RandomState,
    /// Sessions by (proto, v6, v6 port, remote v4, remote port).
    s6: HashTable<Arc<Session>>,
    /// Sessions by (proto, v4, v4 port, remote v4, remote port).
    s4: HashTable<Arc<Session>>,
    /// BIB by (proto, v6, v6 port).
    b6: HashTable<Arc<Binding>>,
    /// BIB by (proto, v4, v4 port).
    b4: HashTable<Arc<Binding>>,
    /// Kernel leases by v6.
    l6: HashTable<Arc<Lease>>,
    /// Kernel leases by v4.
    l4: HashTable<Arc<Lease>>,
}

pub(crate) enum Op {
    AddSession(Arc<Session>),
    DelSession(Arc<Session>),
    AddBinding(Arc<Binding>),
    DelBinding(Arc<Binding>),
    AddLease(Arc<Lease>),
    DelLease(Arc<Lease>),
}

impl Index {
    pub fn new(hasher: foldhash::fast::RandomState) -> Index {
        Index {
            hasher,
            s6: HashTable::new(),
            s4: HashTable::new(),
            b6: HashTable::new(),
            b4: HashTable::new(),
            l6: HashTable::new(),
            l4: HashTable::new(),
        }
    }

    #[inline]
    fn h6(&self, p: L4Proto, a: &Ipv6Addr, port: u16, r: Ipv4Addr, rp: u16) -> u64 {
        self.hasher
            .hash_one((pbyte(p), u128::from(*a), port, u32::from(r), rp))
    }
    #[inline]
    fn h4(&self, p: L4Proto, a: Ipv4Addr, port: u16, r: Ipv4Addr, rp: u16) -> u64 {
        self.hasher
            .hash_one((pbyte(p), u32::from(a), port, u32::from(r), rp))
    }
    #[inline]
    fn hb6(&self, p: L4Proto, a: &Ipv6Addr, port: u16) -> u64 {
        self.hasher.hash_one((pbyte(p), u128::from(*a), port))
    }
    #[inline]
    fn hb4(&self, p: L4Proto, a: Ipv4Addr, port: u16) -> u64 {
        self.hasher.hash_one((pbyte(p), u32::from(a), port))
    }
    #[inline]
    fn hl6(&self, a: &Ipv6Addr) -> u64 {
        self.hasher.hash_one(u128::from(*a))
    }
    #[inline]
    fn hl4(&self, a: Ipv4Addr) -> u64 {
        self.hasher.hash_one(u32::from(a))
    }

    /// Session of the IPv6 flow `v6:port → remote:rport` (rport 0 for ICMP).
    #[inline]
    pub fn session6(
        &self,
        p: L4Proto,
        v6: &Ipv6Addr,
        port: u16,
        r: Ipv4Addr,
        rp: u16,
    ) -> Option<&Arc<Session>> {
        let h = self.h6(p, v6, port, r, rp);
        self.s6.find(h, |s| {
            s.v6_port == port && s.remote == r && s.remote_port == rp && s.proto == p && s.v6 == *v6
        })
    }

    /// Session of the IPv4 flow `remote:rport → v4:port` (rport 0 for ICMP).
    #[inline]
    pub fn session4(
        &self,
        p: L4Proto,
        v4: Ipv4Addr,
        port: u16,
        r: Ipv4Addr,
        rp: u16,
    ) -> Option<&Arc<Session>> {
        let h = self.h4(p, v4, port, r, rp);
        self.s4.find(h, |s| {
            s.v4_port == port && s.v4 == v4 && s.remote == r && s.remote_port == rp && s.proto == p
        })
    }

    pub fn binding6(&self, p: L4Proto, v6: &Ipv6Addr, port: u16) -> Option<&Arc<Binding>> {
        let h = self.hb6(p, v6, port);
        self.b6
            .find(h, |b| b.v6_port == port && b.proto == p && b.v6 == *v6)
    }

    pub fn binding4(&self, p: L4Proto, v4: Ipv4Addr, port: u16) -> Option<&Arc<Binding>> {
        let h = self.hb4(p, v4, port);
        self.b4
            .find(h, |b| b.v4_port == port && b.proto == p && b.v4 == v4)
    }

    pub fn lease6(&self, v6: &Ipv6Addr) -> Option<&Arc<Lease>> {
        self.l6.find(self.hl6(v6), |l| l.v6 == *v6)
    }

    pub fn lease4(&self, v4: Ipv4Addr) -> Option<&Arc<Lease>> {
        self.l4.find(self.hl4(v4), |l| l.v4 == v4)
    }

    pub fn bindings(&self) -> impl Iterator<Item = &Arc<Binding>> {
        self.b4.iter()
    }
    pub fn leases(&self) -> impl Iterator<Item = &Arc<Lease>> {
        self.l4.iter()
    }
    /// Bytes the hash tables of this copy occupy.
    pub fn table_bytes(&self) -> usize {
        self.s6.allocation_size()
            + self.s4.allocation_size()
            + self.b6.allocation_size()
            + self.b4.allocation_size()
            + self.l6.allocation_size()
            + self.l4.allocation_size()
    }

    fn apply(&mut self, op: &Op) {
        let hs = self.hasher.clone();
        match op {
            Op::AddSession(s) => {
                let h6 = self.h6(s.proto, &s.v6, s.v6_port, s.remote, s.remote_port);
                let h4 = self.h4(s.proto, s.v4, s.v4_port, s.remote, s.remote_port);
                self.s6.insert_unique(h6, s.clone(), |x| {
                    hs.hash_one((
                        pbyte(x.proto),
                        u128::from(x.v6),
                        x.v6_port,
                        u32::from(x.remote),
                        x.remote_port,
                    ))
                });
                self.s4.insert_unique(h4, s.clone(), |x| {
                    hs.hash_one((
                        pbyte(x.proto),
                        u32::from(x.v4),
                        x.v4_port,
                        u32::from(x.remote),
                        x.remote_port,
                    ))
                });
            }
            Op::DelSession(s) => {
                let h6 = self.h6(s.proto, &s.v6, s.v6_port, s.remote, s.remote_port);
                let h4 = self.h4(s.proto, s.v4, s.v4_port, s.remote, s.remote_port);
                if let Ok(e) = self.s6.find_entry(h6, |x| Arc::ptr_eq(x, s)) {
                    e.remove();
                }
                if let Ok(e) = self.s4.find_entry(h4, |x| Arc::ptr_eq(x, s)) {
                    e.remove();
                }
            }
            Op::AddBinding(b) => {
                let h6 = self.hb6(b.proto, &b.v6, b.v6_port);
                let h4 = self.hb4(b.proto, b.v4, b.v4_port);
                self.b6.insert_unique(h6, b.clone(), |x| {
                    hs.hash_one((pbyte(x.proto), u128::from(x.v6), x.v6_port))
                });
                self.b4.insert_unique(h4, b.clone(), |x| {
                    hs.hash_one((pbyte(x.proto), u32::from(x.v4), x.v4_port))
                });
            }
            Op::DelBinding(b) => {
                let h6 = self.hb6(b.proto, &b.v6, b.v6_port);
                let h4 = self.hb4(b.proto, b.v4, b.v4_port);
                if let Ok(e) = self.b6.find_entry(h6, |x| Arc::ptr_eq(x, b)) {
                    e.remove();
                }
                if let Ok(e) = self.b4.find_entry(h4, |x| Arc::ptr_eq(x, b)) {
                    e.remove();
                }
            }
            Op::AddLease(l) => {
                let h6 = self.hl6(&l.v6);
                let h4 = self.hl4(l.v4);
                self.l6
                    .insert_unique(h6, l.clone(), |x| hs.hash_one(u128::from(x.v6)));
                self.l4
                    .insert_unique(h4, l.clone(), |x| hs.hash_one(u32::from(x.v4)));
            }
            Op::DelLease(l) => {
                let h6 = self.hl6(&l.v6);
                let h4 = self.hl4(l.v4);
                if let Ok(e) = self.l6.find_entry(h6, |x| Arc::ptr_eq(x, l)) {
                    e.remove();
                }
                if let Ok(e) = self.l4.find_entry(h4, |x| Arc::ptr_eq(x, l)) {
                    e.remove();
                }
            }
        }
    }
}

impl left_right::Absorb<Op> for Index {
    fn absorb_first(&mut self, op: &mut Op, _: &Self) {
        self.apply(op);
    }
    fn absorb_second(&mut self, op: Op, _: &Self) {
        self.apply(&op);
    }
    fn sync_with(&mut self, first: &Self) {
        *self = first.clone();
    }
}
