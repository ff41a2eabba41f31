//! Paged listings of the tables for `nat64 show` (issue 11 #11): one page
//! of at most `limit` rows in key order, after the key a previous page
//! ended with, so that a listing of a million sessions neither holds the
//! writer lock for seconds nor builds a million rows at once.
//!
//! * Sessions are read from the writer's session list a [`CHUNK`] at a
//!   time, the writer lock taken and released per chunk. The list only
//!   grows at its end (`push`) and shrinks by `swap_remove` (the last entry
//!   moves into the hole), so the chunks are visited from the end towards
//!   the front: an entry not yet visited can only move to a lower index,
//!   which is still ahead, and is therefore never missed; an entry already
//!   visited may be met twice (its key dedups it); entries added during the
//!   pass land behind it (they show up in a later page, or not at all).
//! * BIB entries and kernel leases are read in one pass over the published
//!   index, through a left-right read handle: no writer lock, and the
//!   workers never wait for it (a publish that falls due meanwhile waits
//!   for the pass to end).
//!
//! Each page keeps only the `limit + 1` smallest keys above the cursor
//! (at most twice that many candidates at a time), so its memory is
//! bounded by `limit` whatever the table size. Across pages,
//! every row present for the whole listing is returned exactly once (keys
//! only increase); rows added or removed meanwhile appear at most once.

use super::table::{Session, DEAD};
use super::{BindingInfo, Engine, SessionInfo};
use crate::time::Timestamp;
use crate::xlat::L4Proto;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Sessions examined per hold of the writer lock.
pub const CHUNK: usize = 4096;

/// Listing order of protocols: by name, kernel-mode leases (`any`) first.
fn rank(p: Option<L4Proto>) -> u8 {
    match p {
        None => 0,
        Some(L4Proto::Icmp) => 1,
        Some(L4Proto::Tcp) => 2,
        Some(L4Proto::Udp) => 3,
    }
}

/// What identifies a session in a listing (the order: protocol name, IPv6
/// endpoint, remote IPv4 endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub proto: L4Proto,
    pub v6: (Ipv6Addr, u16),
    pub remote: (Ipv4Addr, u16),
}

impl SessionKey {
    fn tuple(&self) -> (u8, Ipv6Addr, u16, Ipv4Addr, u16) {
        (
            rank(Some(self.proto)),
            self.v6.0,
            self.v6.1,
            self.remote.0,
            self.remote.1,
        )
    }
}

impl Ord for SessionKey {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.tuple().cmp(&o.tuple())
    }
}

impl PartialOrd for SessionKey {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

/// What identifies a BIB entry (or kernel lease: `proto` `None`, port 0)
/// in a listing (the order: protocol name, IPv6 endpoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BindingKey {
    pub proto: Option<L4Proto>,
    pub v6: (Ipv6Addr, u16),
}

impl BindingKey {
    fn tuple(&self) -> (u8, Ipv6Addr, u16) {
        (rank(self.proto), self.v6.0, self.v6.1)
    }
}

impl Ord for BindingKey {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.tuple().cmp(&o.tuple())
    }
}

impl PartialOrd for BindingKey {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl SessionInfo {
    /// What `show` says of session `s` at engine time `now` (ms).
    pub(crate) fn of(s: &Session, now: u64) -> SessionInfo {
        let d = s.deadline.load(Relaxed);
        SessionInfo {
            proto: s.proto,
            v6: (s.v6, s.v6_port),
            v4: (s.v4, s.v4_port),
            remote: (s.remote, s.remote_port),
            tcp_state: (s.proto == L4Proto::Tcp).then(|| s.tcp_state()),
            expires_at: Timestamp(d),
            expires_in: Duration::from_millis(d.saturating_sub(now)),
            fast_path: s.offered(),
        }
    }

    pub fn key(&self) -> SessionKey {
        SessionKey {
            proto: self.proto,
            v6: self.v6,
            remote: self.remote,
        }
    }
}

impl BindingInfo {
    pub fn key(&self) -> BindingKey {
        BindingKey {
            proto: self.proto,
            v6: self.v6,
        }
    }
}

/// One page of a listing: rows in key order, and the key to continue
/// after when more rows exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T, K> {
    pub rows: Vec<T>,
    pub next: Option<K>,
}

/// The `limit + 1` smallest keys above `after` (one more than a page, to
/// know whether another page follows). Candidates are collected and cut
/// back to `limit + 1` (`select_nth_unstable`) whenever twice that many
/// are held; past the first cut, keys above the largest kept one are not
/// even built: linear in the table size, whatever order it comes in.
struct Smallest<K, T> {
    after: Option<K>,
    limit: usize,
    rows: Vec<(K, T)>,
    /// The largest key kept at the last cut: nothing above it is kept.
    cut: Option<K>,
}

impl<K: Ord + Copy, T> Smallest<K, T> {
    fn new(after: Option<K>, limit: usize) -> Self {
        Smallest {
            after,
            limit: limit.max(1),
            rows: Vec::new(),
            cut: None,
        }
    }

    fn offer(&mut self, k: K, row: impl FnOnce() -> T) {
        if self.after.is_some_and(|a| k <= a) || self.cut.is_some_and(|c| k >= c) {
            return;
        }
        self.rows.push((k, row()));
        if self.rows.len() >= 2 * (self.limit + 1) {
            let n = self.limit + 1;
            self.rows
                .select_nth_unstable_by(n - 1, |a, b| a.0.cmp(&b.0));
            self.rows.truncate(n);
            self.cut = self.rows.iter().map(|r| r.0).max();
        }
    }

    fn page(mut self) -> Page<T, K> {
        self.rows.sort_unstable_by_key(|r| r.0);
        // An entry met twice (moved during the pass) is one row.
        self.rows.dedup_by(|a, b| a.0 == b.0);
        // More rows follow when this page is full, or when a cut dropped
        // some (all above the last row kept).
        let more = self.rows.len() > self.limit || self.cut.is_some();
        self.rows.truncate(self.limit);
        let next = if more {
            self.rows.last().map(|r| r.0)
        } else {
            None
        };
        Page {
            rows: self.rows.into_iter().map(|r| r.1).collect(),
            next,
        }
    }
}

impl Engine {
    /// The first `limit` sessions (at least 1) whose key is above `after`,
    /// among those `keep(proto, v6 address)` accepts, in key order. Takes
    /// the writer lock per [`CHUNK`] sessions (see the module notes).
    pub fn sessions_page(
        &self,
        after: Option<SessionKey>,
        limit: usize,
        keep: impl Fn(L4Proto, &Ipv6Addr) -> bool,
    ) -> Page<SessionInfo, SessionKey> {
        self.sessions_page_between(after, limit, keep, &mut || {})
    }

    /// [`Engine::sessions_page`], calling `between` each time the lock is
    /// released between two chunks (tests change the table there).
    fn sessions_page_between(
        &self,
        after: Option<SessionKey>,
        limit: usize,
        keep: impl Fn(L4Proto, &Ipv6Addr) -> bool,
        between: &mut dyn FnMut(),
    ) -> Page<SessionInfo, SessionKey> {
        let mut sel = Smallest::new(after, limit);
        let mut hi = usize::MAX;
        loop {
            let c = self.sh.lock_fast();
            let now = c.last_now;
            hi = hi.min(c.sessions.len());
            let lo = hi.saturating_sub(CHUNK);
            for s in &c.sessions[lo..hi] {
                let d = s.deadline.load(Relaxed);
                if d == DEAD || !keep(s.proto, &s.v6) {
                    continue;
                }
                let k = SessionKey {
                    proto: s.proto,
                    v6: (s.v6, s.v6_port),
                    remote: (s.remote, s.remote_port),
                };
                sel.offer(k, || SessionInfo::of(s, now));
            }
            drop(c);
            if lo == 0 {
                break;
            }
            hi = lo;
            between();
        }
        sel.page()
    }

    /// The first `limit` BIB entries and kernel leases (at least 1) whose
    /// key is above `after`, among those `keep(proto, v6 address)` accepts,
    /// in key order. One pass over the published index through a read
    /// handle, after publishing what was pending (see the module notes).
    pub fn bindings_page(
        &self,
        after: Option<BindingKey>,
        limit: usize,
        keep: impl Fn(Option<L4Proto>, &Ipv6Addr) -> bool,
    ) -> Page<BindingInfo, BindingKey> {
        // Publishes pending entries, so the read handle sees them all.
        drop(self.sh.lock());
        let mut sel = Smallest::new(after, limit);
        let rh = self.sh.factory.handle();
        if let Some(v) = rh.enter() {
            for b in v.bindings() {
                if !keep(Some(b.proto), &b.v6) {
                    continue;
                }
                let k = BindingKey {
                    proto: Some(b.proto),
                    v6: (b.v6, b.v6_port),
                };
                sel.offer(k, || BindingInfo {
                    proto: Some(b.proto),
                    v6: (b.v6, b.v6_port),
                    v4: (b.v4, b.v4_port),
                    is_static: b.is_static,
                    sessions: b.sessions.load(Relaxed) as usize,
                });
            }
            for l in v.leases() {
                if l.deadline.load(Relaxed) == DEAD || !keep(None, &l.v6) {
                    continue;
                }
                let k = BindingKey {
                    proto: None,
                    v6: (l.v6, 0),
                };
                sel.offer(k, || BindingInfo {
                    proto: None,
                    v6: (l.v6, 0),
                    v4: (l.v4, 0),
                    is_static: l.is_static,
                    sessions: 0,
                });
            }
        }
        sel.page()
    }
}

#[cfg(test)]
mod test {
    use super::super::{EngineConfig, NaptConfig, PoolConfig};
    use super::*;
    use crate::addr::Prefix;
    use crate::time::Timestamp;
    use crate::xlat::{FlowMeta, Mapper, Role, Tuple};
    use std::collections::HashMap;

    fn engine(max_sessions: usize) -> Engine {
        let mut cfg = EngineConfig {
            napt: NaptConfig::Daemon(PoolConfig {
                prefixes: vec![("192.0.2.0".parse().unwrap(), 27)],
                ..PoolConfig::default()
            }),
            ..EngineConfig::default()
        };
        cfg.limits.max_sessions = max_sessions;
        cfg.limits.max_sessions_per_client = max_sessions;
        Engine::new(cfg).unwrap()
    }

    fn meta() -> FlowMeta {
        FlowMeta {
            role: Role::Outer,
            tcp_flags: 0,
            fragment: None,
            len: 100,
        }
    }

    /// UDP flow `i`: client `i / 50`, port 10000 + i % 50, to 8.8.8.8:53
    /// (one binding per session).
    fn flow(i: u32) -> Tuple<Ipv6Addr> {
        let client = i / 50;
        Tuple {
            proto: L4Proto::Udp,
            src: Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                (client >> 16) as u16,
                client as u16,
            ),
            src_port: 10000 + (i % 50) as u16,
            dst: Prefix::WELL_KNOWN.embed("8.8.8.8".parse().unwrap()),
            dst_port: 53,
        }
    }

    fn add(e: &Engine, now_s: u64, range: std::ops::Range<u32>) {
        let mut w = e.worker();
        w.set_now(Timestamp::from_secs(now_s));
        let m = meta();
        for i in range {
            w.mapper().map_6to4(&flow(i), &m).unwrap();
        }
    }

    fn all_sessions(e: &Engine, limit: usize) -> Vec<SessionInfo> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let p = e.sessions_page(after, limit, |_, _| true);
            assert!(p.rows.len() <= limit);
            out.extend(p.rows);
            match p.next {
                Some(k) => after = Some(k),
                None => return out,
            }
        }
    }

    #[test]
    fn pages_are_in_key_order_and_cover_the_table() {
        let e = engine(100_000);
        add(&e, 1, 0..10_000);
        let rows = all_sessions(&e, 777);
        assert_eq!(rows.len(), 10_000);
        assert!(rows.windows(2).all(|w| w[0].key() < w[1].key()));
        let mut want = e.sessions();
        want.sort_by_key(|s| s.key());
        assert_eq!(rows, want);
        // The last page says there is no next one; an exact fit too.
        let p = e.sessions_page(None, 10_000, |_, _| true);
        assert_eq!((p.rows.len(), p.next), (10_000, None));
        let p = e.sessions_page(None, 9_999, |_, _| true);
        assert_eq!(p.next, Some(p.rows[9_998].key()));
        // Bindings the same way.
        let mut got = Vec::new();
        let mut after = None;
        loop {
            let p = e.bindings_page(after, 1000, |_, _| true);
            got.extend(p.rows);
            match p.next {
                Some(k) => after = Some(k),
                None => break,
            }
        }
        let mut want = e.bindings();
        want.sort_by_key(|b| b.key());
        assert_eq!(got, want);
    }

    #[test]
    fn filter_applies_before_the_page_is_cut() {
        let e = engine(100_000);
        add(&e, 1, 0..5_000);
        // Client 7 has flows 350..400.
        let c7 = flow(350).src;
        let p = e.sessions_page(None, 20, |_, a| *a == c7);
        assert_eq!(p.rows.len(), 20);
        assert!(p.rows.iter().all(|s| s.v6.0 == c7));
        let p2 = e.sessions_page(p.next, 100, |_, a| *a == c7);
        assert_eq!((p2.rows.len(), p2.next), (30, None));
        let p = e.bindings_page(None, 100, |p, a| p == Some(L4Proto::Udp) && *a == c7);
        assert_eq!(p.rows.len(), 50);
    }

    fn udp_key(i: u32) -> SessionKey {
        let f = flow(i);
        SessionKey {
            proto: L4Proto::Udp,
            v6: (f.src, f.src_port),
            remote: ("8.8.8.8".parse().unwrap(), 53),
        }
    }

    /// Deletions between two chunks move the list's last entries into the
    /// holes (`swap_remove`), additions append: each session present for
    /// the whole listing still comes exactly once and no key twice. With
    /// the chunks visited front to back, the kept sessions moved to the
    /// front would be missed.
    #[test]
    fn paging_returns_every_row_once_when_the_table_changes_between_chunks() {
        const N: u32 = 3 * CHUNK as u32;
        let e = engine(1_000_000);
        // Churned sessions (expire at 300 s) first, kept ones (301 s) last.
        add(&e, 0, N..2 * N);
        add(&e, 1, 0..N);
        let mut calls = 0;
        let mut next = 2 * N;
        let p = e.sessions_page_between(None, 1_000_000, |_, _| true, &mut || {
            calls += 1;
            // The reaper deletes every churned session, moving kept ones
            // from the end into the holes at the front; new flows arrive.
            e.sweep_budget(Timestamp::from_millis(300_500), usize::MAX);
            add(&e, 0, next..next + 100);
            next += 100;
        });
        assert!(calls >= 2, "{calls}");
        let mut seen: HashMap<SessionKey, u32> = HashMap::new();
        for s in &p.rows {
            *seen.entry(s.key()).or_insert(0) += 1;
        }
        for i in 0..N {
            assert_eq!(seen.get(&udp_key(i)), Some(&1), "kept session {i}");
        }
        assert!(seen.values().all(|n| *n == 1), "a key came twice");
    }

    /// The same with small pages while another thread keeps adding
    /// sessions and the reaper keeps deleting them.
    #[test]
    fn paging_returns_every_row_once_while_rows_come_and_go() {
        const KEEP: u32 = 3 * CHUNK as u32;
        let e = engine(1_000_000);
        add(&e, 0, KEEP..2 * KEEP);
        add(&e, 1, 0..KEEP);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn = {
            let (e, stop) = (e.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut next = 2 * KEEP;
                let mut rounds = 0u32;
                while !stop.load(Relaxed) {
                    e.sweep_budget(Timestamp::from_millis(300_500), usize::MAX);
                    add(&e, 0, next..next + 2000);
                    next += 2000;
                    rounds += 1;
                }
                rounds
            })
        };
        for _ in 0..3 {
            let mut seen: HashMap<SessionKey, u32> = HashMap::new();
            for s in all_sessions(&e, 1000) {
                *seen.entry(s.key()).or_insert(0) += 1;
            }
            for i in 0..KEEP {
                assert_eq!(seen.get(&udp_key(i)), Some(&1), "kept session {i}");
            }
            assert!(seen.values().all(|n| *n == 1), "a key came twice");
        }
        stop.store(true, Relaxed);
        assert!(churn.join().unwrap() > 0);
    }

    /// Not a test of behaviour: how long one page takes at a million
    /// sessions, against the whole-table accessor
    /// (`cargo test --release -p nat64-core -- --ignored page_cost --nocapture`).
    #[test]
    #[ignore]
    fn page_cost_at_one_million_sessions() {
        const N: u32 = 1_000_000;
        let e = engine(2_000_000);
        add(&e, 1, 0..N);
        let t0 = std::time::Instant::now();
        let all = e.sessions();
        println!("sessions(): {} rows in {:?}", all.len(), t0.elapsed());
        drop(all);
        let t0 = std::time::Instant::now();
        let p = e.sessions_page(None, 10_000, |_, _| true);
        println!("sessions_page(10000): {:?}", t0.elapsed());
        let t0 = std::time::Instant::now();
        let c = e.sh.lock_fast();
        let lo = c.sessions.len() - CHUNK;
        let mut n = 0;
        for s in &c.sessions[lo..] {
            n += usize::from(s.deadline.load(Relaxed) != DEAD);
        }
        drop(c);
        println!("one chunk under the lock: {:?} ({n})", t0.elapsed());
        let t0 = std::time::Instant::now();
        let q = e.sessions_page(p.next, 10_000, |_, _| true);
        println!("second page: {:?}", t0.elapsed());
        assert_eq!(q.rows.len(), 10_000);
        let t0 = std::time::Instant::now();
        let b = e.bindings_page(None, 10_000, |_, _| true);
        println!(
            "bindings_page(10000): {:?} (one pass under a read handle)",
            t0.elapsed()
        );
        assert_eq!(b.rows.len(), 10_000);
    }
}
