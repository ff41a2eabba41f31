//! The flow tables: BIB entries, sessions and kernel-mode leases, and the
//! read-mostly index the data path looks them up in.
//!
//! Entries are `Arc`s shared between the writer (behind the engine's mutex)
//! and the index. What changes per packet (the deadline, the TCP state) is
//! an atomic inside the entry, so refreshing an established flow takes no
//! lock. The index is a [`left_right`] pair of hash tables: readers (one
//! handle per worker) never wait; the single writer publishes new flows in
//! batches and every deletion at once (see
//! docs/adr/0002-concurrent-flow-table.md, "Batched publishes").
//!
//! The hash tables store only the `Arc` (8 bytes a bucket) and compare keys
//! through it, which keeps two copies of the index affordable. Each table is
//! split into 64 shards ([`Sharded`]) so that growing it never rehashes
//! everything at once.

use super::tcp_fsm::{Dir, TcpState};
use crate::xlat::L4Proto;
use core::hash::BuildHasher;
use hashbrown::HashTable;
use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering::Relaxed};
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
    /// The data-plane queue that owns the flow (`EngineConfig::flow_queues`,
    /// round-robin at creation).
    pub owner: u8,
    /// Position in the writer's session list (writer only).
    pub slot: AtomicU32,
}

impl Session {
    pub fn tcp_state(&self) -> TcpState {
        TcpState::from_u8(self.tcp.load(Relaxed) & !Self::OFFERED)
    }
    pub fn is_dead(&self) -> bool {
        self.deadline.load(Relaxed) == DEAD
    }
    /// Set in `tcp` (above any [`TcpState`]) once the session was offered to
    /// the fast path ([`super::FlowEvent::Established`]).
    pub const OFFERED: u8 = 0x80;

    /// UDP and ICMP sessions, in `tcp` (which they do not use otherwise): a
    /// packet went IPv6 → IPv4 / IPv4 → IPv6 ([`Session::again_both_ways`]).
    pub const SEEN_V6: u8 = 0x20;
    pub const SEEN_V4: u8 = 0x40;

    /// The bit of a packet going `dir`.
    pub const fn seen(dir: Dir) -> u8 {
        match dir {
            Dir::V6 => Self::SEEN_V6,
            Dir::V4 => Self::SEEN_V4,
        }
    }

    /// A UDP or ICMP session carried a packet going `dir` (its creating
    /// packet's bit is set when it is made); true when one had gone that way before and one the
    /// other way: more than a single exchange, the fast path's threshold
    /// (ADR 0012 §1). A DNS query and its answer never pass it.
    pub fn again_both_ways(&self, dir: Dir) -> bool {
        let me = Self::seen(dir);
        let both = Self::SEEN_V6 | Self::SEEN_V4;
        // The common case (both seen) without a write to a shared line.
        if self.tcp.load(Relaxed) & both == both {
            return true;
        }
        let old = self.tcp.fetch_or(me, Relaxed);
        old & both == both
    }

    /// Whether the fast path was told about this session.
    pub fn offered(&self) -> bool {
        self.tcp.load(Relaxed) & Self::OFFERED != 0
    }

    /// Marks the session offered; true for the caller that did it first.
    pub fn offer(&self) -> bool {
        self.tcp.fetch_or(Self::OFFERED, Relaxed) & Self::OFFERED == 0
    }

    /// Clears the mark; true for the caller that did (it tells the fast
    /// path, once). A TCP session back in ESTABLISHED is offered again.
    pub fn withdraw(&self) -> bool {
        self.tcp.fetch_and(!Self::OFFERED, Relaxed) & Self::OFFERED != 0
    }

    /// The session as the fast path sees it.
    pub fn flow_pair(&self) -> super::FlowPair {
        super::FlowPair {
            proto: self.proto,
            client: (self.v6, self.v6_port),
            pool: (self.v4, self.v4_port),
            remote: (self.remote, self.remote_port),
        }
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
    /// Traffic came back to the client (IPv4 → IPv6) through this lease:
    /// until then it lives only the transitory time, is not persisted and
    /// counts as a probe (issue 11 #4: a bare spoofed SYN holds nothing
    /// for long).
    pub confirmed: AtomicBool,
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

/// Sub-tables per [`Sharded`] table.
const SHARDS: usize = 64;

/// A hash table split into [`SHARDS`] independent `hashbrown` tables by six
/// bits of the hash (bits 32–37: hashbrown takes the bucket from the low
/// bits and the control tag from the top seven, so neither loses entropy).
///
/// Why: a `hashbrown` table grows by rehashing every entry at once, and our
/// entries are behind an `Arc`, so each rehash step is a cache miss. At
/// 230k sessions one growth of the four session/BIB tables took tens of
/// milliseconds under the writer lock — long enough for the TUN queue to
/// overflow during a burst of new flows. Split 64 ways, each growth moves
/// 1/64 of the entries; the total work is the same, the stall is not.
/// Shards at or below this capacity are never shrunk (not worth a rehash).
const SHRINK_MIN: usize = 1024;

pub(crate) struct Sharded<T> {
    /// Inline (not boxed): the shard's header is one offset away from the
    /// index, not one more pointer to chase on every lookup.
    shards: [HashTable<Arc<T>>; SHARDS],
}

impl<T> Clone for Sharded<T> {
    fn clone(&self) -> Self {
        Sharded {
            shards: self.shards.clone(),
        }
    }
}

impl<T> Sharded<T> {
    fn new() -> Self {
        Sharded {
            shards: std::array::from_fn(|_| HashTable::new()),
        }
    }
    #[inline]
    fn shard(h: u64) -> usize {
        (h >> 32) as usize & (SHARDS - 1)
    }
    #[inline]
    fn find(&self, h: u64, eq: impl FnMut(&Arc<T>) -> bool) -> Option<&Arc<T>> {
        self.shards[Self::shard(h)].find(h, eq)
    }
    fn insert_unique(&mut self, h: u64, v: Arc<T>, hasher: impl Fn(&Arc<T>) -> u64) {
        let i = Self::shard(h);
        let t = &mut self.shards[i];
        // Staggered growth: with a uniform hash every shard fills at the
        // same pace, so left alone all 64 would double at about the same
        // moment. Shard i doubles once it is (192 + i)/256 full instead (75
        // to 99.6 %), which spreads the 64 growths over a third of each
        // doubling of the table while the tables stay nearly as full.
        let cap = t.capacity();
        if cap >= 16 && (t.len() + 1) * 256 > cap * (192 + i) {
            t.reserve(cap + 1 - t.len(), &hasher);
        }
        t.insert_unique(h, v, hasher);
    }
    /// Removes the entry `v` itself (pointer equality), if present. A
    /// shard that a drain left at most 1/8 full gives memory back: it is
    /// shrunk to twice its entries (issue 11 #10: after 1 M sessions
    /// expired the tables kept their peak size). Growth happens at 75 %
    /// and more, so the two never chase each other; like growth, one
    /// shrink moves only 1/64 of the entries.
    fn remove(&mut self, h: u64, v: &Arc<T>, hasher: impl Fn(&Arc<T>) -> u64) {
        let t = &mut self.shards[Self::shard(h)];
        if let Ok(e) = t.find_entry(h, |x| Arc::ptr_eq(x, v)) {
            e.remove();
            if t.capacity() > SHRINK_MIN && t.len() * 8 <= t.capacity() {
                t.shrink_to(t.len() * 2, hasher);
            }
        }
    }
    fn iter(&self) -> impl Iterator<Item = &Arc<T>> {
        self.shards.iter().flat_map(|t| t.iter())
    }
    fn allocation_size(&self) -> usize {
        self.shards.iter().map(|t| t.allocation_size()).sum()
    }
    fn clear(&mut self) {
        for t in self.shards.iter_mut() {
            t.clear();
        }
    }
}

/// The lookup index. Two copies live in the left-right pair.
#[derive(Clone)]
pub(crate) struct Index {
    pub hasher: foldhash::fast::RandomState,
    /// Sessions by (proto, v6, v6 port, remote v4, remote port).
    s6: Sharded<Session>,
    /// Sessions by (proto, v4, v4 port, remote v4, remote port).
    s4: Sharded<Session>,
    /// BIB by (proto, v6, v6 port).
    b6: Sharded<Binding>,
    /// BIB by (proto, v4, v4 port).
    b4: Sharded<Binding>,
    /// Kernel leases by v6.
    l6: Sharded<Lease>,
    /// Kernel leases by v4.
    l4: Sharded<Lease>,
}

#[derive(Clone)]
pub(crate) enum Op {
    AddSession(Arc<Session>),
    DelSession(Arc<Session>),
    AddBinding(Arc<Binding>),
    DelBinding(Arc<Binding>),
    AddLease(Arc<Lease>),
    DelLease(Arc<Lease>),
}

/// An [`Op`] with the hashes of its entry's v6-side and v4-side keys (the
/// left-right operation log holds these).
pub(crate) struct HashedOp {
    op: Op,
    h6: u64,
    h4: u64,
}

impl Index {
    pub fn new(hasher: foldhash::fast::RandomState) -> Index {
        Index {
            hasher,
            s6: Sharded::new(),
            s4: Sharded::new(),
            b6: Sharded::new(),
            b4: Sharded::new(),
            l6: Sharded::new(),
            l4: Sharded::new(),
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

    /// Empties every table, keeping its allocation (the pending batch).
    pub fn clear(&mut self) {
        self.s6.clear();
        self.s4.clear();
        self.b6.clear();
        self.b4.clear();
        self.l6.clear();
        self.l4.clear();
    }

    /// `op` with the hashes of its entry's two keys, computed once by the
    /// writer while the entry is hot in its cache: applying it to the two
    /// index copies (and the pending batch) then never reads the entry.
    pub(crate) fn hashed(&self, op: Op) -> HashedOp {
        let (h6, h4) = match &op {
            Op::AddSession(s) | Op::DelSession(s) => (
                self.h6(s.proto, &s.v6, s.v6_port, s.remote, s.remote_port),
                self.h4(s.proto, s.v4, s.v4_port, s.remote, s.remote_port),
            ),
            Op::AddBinding(b) | Op::DelBinding(b) => (
                self.hb6(b.proto, &b.v6, b.v6_port),
                self.hb4(b.proto, b.v4, b.v4_port),
            ),
            Op::AddLease(l) | Op::DelLease(l) => (self.hl6(&l.v6), self.hl4(l.v4)),
        };
        HashedOp { op, h6, h4 }
    }

    /// Applies `op`; `owned` lets one table take the `Arc` instead of a
    /// clone (the last copy to see the op), which spares a reference-count
    /// round trip on an entry that is usually out of cache by then.
    pub(crate) fn apply(&mut self, op: &HashedOp) {
        self.apply_inner(op.h6, op.h4, Cow::Borrowed(&op.op));
    }

    fn apply_owned(&mut self, op: HashedOp) {
        self.apply_inner(op.h6, op.h4, Cow::Owned(op.op));
    }

    fn apply_inner(&mut self, h6: u64, h4: u64, op: Cow<'_, Op>) {
        let hs = self.hasher.clone();
        let hash_s6 = |x: &Arc<Session>| {
            hs.hash_one((
                pbyte(x.proto),
                u128::from(x.v6),
                x.v6_port,
                u32::from(x.remote),
                x.remote_port,
            ))
        };
        let hash_s4 = |x: &Arc<Session>| {
            hs.hash_one((
                pbyte(x.proto),
                u32::from(x.v4),
                x.v4_port,
                u32::from(x.remote),
                x.remote_port,
            ))
        };
        let hash_b6 = |x: &Arc<Binding>| hs.hash_one((pbyte(x.proto), u128::from(x.v6), x.v6_port));
        let hash_b4 = |x: &Arc<Binding>| hs.hash_one((pbyte(x.proto), u32::from(x.v4), x.v4_port));
        let hash_l6 = |x: &Arc<Lease>| hs.hash_one(u128::from(x.v6));
        let hash_l4 = |x: &Arc<Lease>| hs.hash_one(u32::from(x.v4));
        match op {
            Cow::Borrowed(Op::AddSession(s)) => {
                self.s6.insert_unique(h6, s.clone(), hash_s6);
                self.s4.insert_unique(h4, s.clone(), hash_s4);
            }
            Cow::Owned(Op::AddSession(s)) => {
                self.s6.insert_unique(h6, s.clone(), hash_s6);
                self.s4.insert_unique(h4, s, hash_s4);
            }
            Cow::Borrowed(Op::AddBinding(b)) => {
                self.b6.insert_unique(h6, b.clone(), hash_b6);
                self.b4.insert_unique(h4, b.clone(), hash_b4);
            }
            Cow::Owned(Op::AddBinding(b)) => {
                self.b6.insert_unique(h6, b.clone(), hash_b6);
                self.b4.insert_unique(h4, b, hash_b4);
            }
            Cow::Borrowed(Op::AddLease(l)) => {
                self.l6.insert_unique(h6, l.clone(), hash_l6);
                self.l4.insert_unique(h4, l.clone(), hash_l4);
            }
            Cow::Owned(Op::AddLease(l)) => {
                self.l6.insert_unique(h6, l.clone(), hash_l6);
                self.l4.insert_unique(h4, l, hash_l4);
            }
            op => match op.as_ref() {
                Op::DelSession(s) => {
                    self.s6.remove(h6, s, hash_s6);
                    self.s4.remove(h4, s, hash_s4);
                }
                Op::DelBinding(b) => {
                    self.b6.remove(h6, b, hash_b6);
                    self.b4.remove(h4, b, hash_b4);
                }
                Op::DelLease(l) => {
                    self.l6.remove(h6, l, hash_l6);
                    self.l4.remove(h4, l, hash_l4);
                }
                Op::AddSession(_) | Op::AddBinding(_) | Op::AddLease(_) => {}
            },
        }
    }
}

impl left_right::Absorb<HashedOp> for Index {
    fn absorb_first(&mut self, op: &mut HashedOp, _: &Self) {
        self.apply(op);
    }
    fn absorb_second(&mut self, op: HashedOp, _: &Self) {
        self.apply_owned(op);
    }
    fn sync_with(&mut self, first: &Self) {
        *self = first.clone();
    }
}
