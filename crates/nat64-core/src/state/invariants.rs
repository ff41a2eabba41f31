//! Invariants of the stateful engine (RFC 6146 §3.1–3.2 plus our own
//! bookkeeping), checked from outside the data path. The fuzzer
//! (`fuzz/fuzz_targets/engine.rs`) and the property tests
//! (`tests/state_invariants.rs`) run them after every step.
//!
//! * [`check`] — the tables themselves, read under the writer lock
//!   *without* publishing (the checker must not change when new flows
//!   become visible to the workers): the published index plus the pending
//!   batch is the writer's complete view (ADR-0002 "Batched publishes").
//! * [`check_reports`] — what `nat64 show` and `/metrics` read (the show
//!   accessors) agrees with itself. These accessors publish, as they do in
//!   the daemon.
//! * [`check_swept`] — after a complete sweep at `now`, nothing expired is
//!   left.
//! * [`MappingLedger`] — the mapping log (binding/block/lease created and
//!   expired events) replayed into a table that must equal the engine's.
//!
//! Each returns every problem it found, not only the first. They hold with
//! workers running too, except that counts read under different locks
//! (fragments, held SYNs) may then be a packet apart.

use super::table::{pbyte, Binding, Index, Lease, Session, DEAD};
use super::{
    client_key, Control, Engine, MappingEvent, MappingEventKind, Mode, PerProto, TcpState,
    FRAG_CACHE_CAP, MAX_HELD_SYNS, PROTOCOLS,
};
use crate::time::Timestamp;
use crate::xlat::L4Proto;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

/// The invariants an engine broke, one line each.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Violations(pub Vec<String>);

impl fmt::Display for Violations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} engine invariant(s) broken:", self.0.len())?;
        for v in &self.0 {
            write!(f, "\n- {v}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violations {}

/// Collects problems; stops recording after a few dozen (one broken table
/// can break thousands of lines).
#[derive(Default)]
struct Report(Vec<String>);

impl Report {
    const MAX: usize = 32;
    fn fail(&mut self, msg: impl FnOnce() -> String) {
        if self.0.len() < Self::MAX {
            self.0.push(msg());
        }
    }
    fn ensure(&mut self, ok: bool, msg: impl FnOnce() -> String) {
        if !ok {
            self.fail(msg);
        }
    }
    fn finish(self) -> Result<(), Violations> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Violations(self.0))
        }
    }
}

fn bkey(b: &Binding) -> String {
    format!(
        "{} [{}]:{} <-> {}:{}{}",
        b.proto.as_str(),
        b.v6,
        b.v6_port,
        b.v4,
        b.v4_port,
        if b.is_static { " (static)" } else { "" }
    )
}

fn skey(s: &Session) -> String {
    format!(
        "{} [{}]:{} <-> {}:{} -> {}:{}",
        s.proto.as_str(),
        s.v6,
        s.v6_port,
        s.v4,
        s.v4_port,
        s.remote,
        s.remote_port
    )
}

/// Checks the tables of `e` (see the module doc). Takes the writer lock
/// like a new flow does; publishes nothing.
pub fn check(e: &Engine) -> Result<(), Violations> {
    let mut r = Report::default();
    {
        let frags = e.sh.frags.lock().unwrap_or_else(|x| x.into_inner()).len();
        r.ensure(frags <= FRAG_CACHE_CAP, || {
            format!("fragment cache holds {frags} entries, above its cap {FRAG_CACHE_CAP}")
        });
    }
    {
        let held = e.sh.held.lock().unwrap_or_else(|x| x.into_inner());
        r.ensure(held.len() <= MAX_HELD_SYNS, || {
            format!("{} held SYNs, above the cap {MAX_HELD_SYNS}", held.len())
        });
        let mut keys = HashSet::new();
        for (_, k, pkt) in held.iter() {
            r.ensure(keys.insert(*k), || format!("SYN {k:?} held twice"));
            r.ensure(pkt.len() <= 576, || {
                format!("held SYN {k:?} keeps {} bytes (at most 576)", pkt.len())
            });
        }
    }
    let c = e.sh.lock_fast();
    let Some(view) = c.view() else {
        r.fail(|| "the published index is gone (write handle destroyed)".into());
        return r.finish();
    };
    check_pending(&c, &view, &mut r);
    let bindings = check_bindings(e, &c, &view, &mut r);
    check_sessions(&c, &bindings, &mut r);
    check_pool(&c, &bindings, &mut r);
    check_leases(e, &c, &view, &mut r);
    r.finish()
}

/// The batch bookkeeping of ADR-0002: the workers' hint equals the batch
/// size, and an empty batch is an empty pending index.
fn check_pending(c: &Control, view: &Index, r: &mut Report) {
    let hint = c.pending_hint.load(std::sync::atomic::Ordering::Acquire);
    r.ensure(hint == c.pending_ops, || {
        format!(
            "pending hint {hint} but {} operations pending",
            c.pending_ops
        )
    });
    r.ensure(c.dirty || c.pending_ops == 0, || {
        format!(
            "{} operations pending but nothing to publish",
            c.pending_ops
        )
    });
    if c.pending_ops == 0 {
        let n = c.pending.bindings().count() + c.pending.leases().count();
        r.ensure(n == 0, || {
            format!("no operation pending but the pending index holds {n} entries")
        });
    }
    for b in c.pending.bindings() {
        let dup = view.binding4(b.proto, b.v4, b.v4_port);
        r.ensure(dup.is_none_or(|x| !Arc::ptr_eq(x, b)), || {
            format!("binding {} both published and pending", bkey(b))
        });
    }
}

/// Bindings by (proto, v6, v6 port).
type ByV6 = HashMap<(L4Proto, Ipv6Addr, u16), Arc<Binding>>;

/// RFC 6146 §3.1: one BIB entry per (proto, v6, port) and per (proto, v4,
/// port), reachable from both sides, counted right, on a pool address.
/// Returns the bindings by (proto, v6, v6 port).
fn check_bindings(e: &Engine, c: &Control, view: &Index, r: &mut Report) -> ByV6 {
    let all: Vec<Arc<Binding>> = view
        .bindings()
        .chain(c.pending.bindings())
        .cloned()
        .collect();
    let kernel = !matches!(e.sh.mode, Mode::Daemon { .. });
    r.ensure(!kernel || all.is_empty(), || {
        format!("kernel mode holds {} BIB entries", all.len())
    });
    let mut by4 = HashSet::new();
    let mut by6 = HashMap::new();
    let mut count = PerProto::<usize>::default();
    let mut statics = 0;
    for b in &all {
        r.ensure(by4.insert((b.proto, b.v4, b.v4_port)), || {
            format!(
                "two bindings share {} {}:{}",
                b.proto.as_str(),
                b.v4,
                b.v4_port
            )
        });
        let prev = by6.insert((b.proto, b.v6, b.v6_port), b.clone());
        r.ensure(prev.is_none(), || {
            format!(
                "two bindings share {} [{}]:{}",
                b.proto.as_str(),
                b.v6,
                b.v6_port
            )
        });
        let f6 = c.find(|v| v.binding6(b.proto, &b.v6, b.v6_port));
        r.ensure(f6.is_some_and(|(x, _)| Arc::ptr_eq(&x, b)), || {
            format!("binding {} is not found by its IPv6 side", bkey(b))
        });
        let f4 = c.find(|v| v.binding4(b.proto, b.v4, b.v4_port));
        r.ensure(f4.is_some_and(|(x, _)| Arc::ptr_eq(&x, b)), || {
            format!("binding {} is not found by its IPv4 side", bkey(b))
        });
        r.ensure(c.pool.as_ref().is_some_and(|p| p.contains(b.v4)), || {
            format!("binding {} is not on a pool address", bkey(b))
        });
        *count.get_mut(b.proto) += 1;
        statics += usize::from(b.is_static);
    }
    r.ensure(count == c.nbindings, || {
        format!(
            "binding counters {:?} but the BIB holds {count:?}",
            c.nbindings
        )
    });
    r.ensure(statics == c.nstatic, || {
        format!(
            "static binding counter {} but the BIB holds {statics}",
            c.nstatic
        )
    });
    by6
}

/// RFC 6146 §3.2: every session is reachable from both sides, lives on an
/// existing binding with the same mapping, and the counters, the per-client
/// limits and the address-dependent filter agree with the list.
fn check_sessions(c: &Control, bindings: &ByV6, r: &mut Report) {
    let mut bindings: HashMap<_, (Arc<Binding>, u32)> =
        bindings.iter().map(|(k, b)| (*k, (b.clone(), 0))).collect();
    let mut k6 = HashSet::new();
    let mut k4 = HashSet::new();
    let mut count = PerProto::<usize>::default();
    let mut clients: HashMap<u128, u32> = HashMap::new();
    let mut sites: HashMap<u128, u32> = HashMap::new();
    let mut adf: HashMap<(u8, u32, u16, u32), u32> = HashMap::new();
    for (i, s) in c.sessions.iter().enumerate() {
        let slot = s.slot.load(Relaxed) as usize;
        r.ensure(slot == i, || {
            format!("session {} at {i} says it is at {slot}", skey(s))
        });
        r.ensure(s.deadline.load(Relaxed) != DEAD, || {
            format!("session {} is dead but still listed", skey(s))
        });
        let st = s.tcp.load(Relaxed) & !Session::OFFERED;
        if s.proto == L4Proto::Tcp {
            r.ensure((1..=7).contains(&st), || {
                format!(
                    "TCP session {} in state byte {st} (CLOSED is never stored)",
                    skey(s)
                )
            });
        } else {
            // UDP/ICMP keep only the directions they saw there.
            let st = st & !(Session::SEEN_V6 | Session::SEEN_V4);
            r.ensure(st == TcpState::Closed as u8, || {
                format!("non-TCP session {} has TCP state byte {st}", skey(s))
            });
        }
        if s.proto == L4Proto::Icmp {
            r.ensure(s.remote_port == 0, || {
                format!("ICMP session {} has a remote port", skey(s))
            });
        }
        r.ensure(u32::from(s.owner) < u32::from(c.flow_queues), || {
            format!(
                "session {} owned by queue {} of {}",
                skey(s),
                s.owner,
                c.flow_queues
            )
        });
        r.ensure(
            k6.insert((s.proto, s.v6, s.v6_port, s.remote, s.remote_port)),
            || format!("two sessions share the IPv6 side of {}", skey(s)),
        );
        r.ensure(
            k4.insert((s.proto, s.v4, s.v4_port, s.remote, s.remote_port)),
            || format!("two sessions share the IPv4 side of {}", skey(s)),
        );
        let f6 = c.find(|v| v.session6(s.proto, &s.v6, s.v6_port, s.remote, s.remote_port));
        r.ensure(f6.is_some_and(|(x, _)| Arc::ptr_eq(&x, s)), || {
            format!("session {} is not found by its IPv6 side", skey(s))
        });
        let f4 = c.find(|v| v.session4(s.proto, s.v4, s.v4_port, s.remote, s.remote_port));
        r.ensure(f4.is_some_and(|(x, _)| Arc::ptr_eq(&x, s)), || {
            format!("session {} is not found by its IPv4 side", skey(s))
        });
        match bindings.get_mut(&(s.proto, s.v6, s.v6_port)) {
            Some((b, n)) => {
                r.ensure(b.v4 == s.v4 && b.v4_port == s.v4_port, || {
                    format!("session {} but its binding is {}", skey(s), bkey(b))
                });
                *n += 1;
            }
            None => r.fail(|| format!("session {} has no binding", skey(s))),
        }
        *count.get_mut(s.proto) += 1;
        *clients
            .entry(client_key(&s.v6, c.limits.client_prefix_len))
            .or_insert(0) += 1;
        *sites
            .entry(client_key(&s.v6, c.limits.site_prefix_len))
            .or_insert(0) += 1;
        if c.adf_on {
            *adf.entry((
                pbyte(s.proto),
                u32::from(s.v4),
                s.v4_port,
                u32::from(s.remote),
            ))
            .or_insert(0) += 1;
        }
    }
    for (b, n) in bindings.values() {
        let have = b.sessions.load(Relaxed);
        r.ensure(have == *n, || {
            format!("binding {} counts {have} sessions but has {n}", bkey(b))
        });
        // RFC 6146 §3.5.1: a dynamic BIB entry goes with its last session.
        r.ensure(b.is_static || *n > 0, || {
            format!("dynamic binding {} has no session", bkey(b))
        });
    }
    r.ensure(count == c.nsessions, || {
        format!(
            "session counters {:?} but the table holds {count:?}",
            c.nsessions
        )
    });
    r.ensure(c.total_sessions == c.sessions.len(), || {
        format!(
            "total session counter {} but {} sessions",
            c.total_sessions,
            c.sessions.len()
        )
    });
    r.ensure(clients == c.clients, || {
        format!(
            "per-client session counts {:?} but the sessions give {clients:?}",
            c.clients
        )
    });
    r.ensure(sites == c.sites, || {
        format!(
            "per-site session counts {:?} but the sessions give {sites:?}",
            c.sites
        )
    });
    if c.adf_on {
        r.ensure(adf == c.adf, || {
            format!(
                "address-dependent filter holds {:?} but the sessions give {adf:?}",
                c.adf
            )
        });
    } else {
        r.ensure(c.adf.is_empty(), || {
            "address-dependent filter state kept with filtering off".into()
        });
    }
    r.ensure(c.limited_clients.len() <= 65536, || {
        format!("{} limited clients remembered", c.limited_clients.len())
    });
}

/// The `daemon` pool: every binding holds its port (static ones may lie
/// outside the dynamic range, which is not tracked), and all dynamic
/// bindings of a source share its affine address (RFC 4787 REQ-2).
fn check_pool(c: &Control, bindings: &ByV6, r: &mut Report) {
    let Some(p) = &c.pool else {
        return;
    };
    // (address, proto index) -> (dynamic, static) bindings.
    let mut held: HashMap<(Ipv4Addr, usize), (u32, u32)> = HashMap::new();
    let mut affine: HashMap<Ipv6Addr, Ipv4Addr> = HashMap::new();
    for b in bindings.values() {
        let e = held.entry((b.v4, pidx(b.proto))).or_insert((0, 0));
        if b.is_static {
            e.1 += 1;
        } else {
            e.0 += 1;
            let a = *affine.entry(b.v6).or_insert(b.v4);
            r.ensure(a == b.v4, || {
                format!("source {} has dynamic bindings on {a} and {}", b.v6, b.v4)
            });
        }
        r.ensure(p.affinity(&b.v6).is_some(), || {
            format!("binding {} but its source has no pool address", bkey(b))
        });
    }
    for (v6, a) in &affine {
        let got = p.affinity(v6);
        r.ensure(got == Some(*a), || {
            format!("source {v6} has dynamic bindings on {a} but affinity {got:?}")
        });
    }
    let cap = p.capacities();
    let mut total = 0u64;
    for (addr, used) in p.usage() {
        for (i, proto) in PROTOCOLS.iter().enumerate() {
            let (dynamic, statics) = held.get(&(addr, i)).copied().unwrap_or((0, 0));
            let n = used[i];
            total += u64::from(n);
            r.ensure(dynamic <= n && n <= dynamic + statics, || {
                format!(
                    "{addr} {}: {n} ports in use for {dynamic} dynamic and {statics} static \
                     bindings",
                    proto.as_str()
                )
            });
            r.ensure(n <= cap.get(*proto), || {
                format!(
                    "{addr} {}: {n} ports in use of {}",
                    proto.as_str(),
                    cap.get(*proto)
                )
            });
        }
    }
    r.ensure(total == p.ports_in_use(), || {
        format!(
            "pool says {} ports in use, its addresses {total}",
            p.ports_in_use()
        )
    });
}

fn pidx(p: L4Proto) -> usize {
    PROTOCOLS.iter().position(|&x| x == p).unwrap_or(0)
}

/// `kernel` mode: one lease per v6 and per v4, reachable both ways, listed
/// once, and the inner pool's count equals the leases inside it.
fn check_leases(e: &Engine, c: &Control, view: &Index, r: &mut Report) {
    let indexed: Vec<Arc<Lease>> = view.leases().chain(c.pending.leases()).cloned().collect();
    let statics: &[Ipv4Addr] = match &e.sh.mode {
        Mode::Kernel { statics, .. } => statics,
        Mode::Siit { .. } => &[],
        Mode::Daemon { .. } => {
            r.ensure(indexed.is_empty() && c.leases.is_empty(), || {
                format!("daemon mode holds {} kernel leases", indexed.len())
            });
            r.ensure(c.lease_sites.is_empty(), || {
                format!("daemon mode counts leases per site: {:?}", c.lease_sites)
            });
            return;
        }
    };
    r.ensure(c.sessions.is_empty(), || {
        format!("kernel mode holds {} sessions", c.sessions.len())
    });
    r.ensure(indexed.len() == c.leases.len(), || {
        format!(
            "{} leases listed but {} indexed",
            c.leases.len(),
            indexed.len()
        )
    });
    let mut v6s = HashSet::new();
    let mut v4s = HashSet::new();
    let mut inside = 0u32;
    let mut sites: HashMap<u128, u32> = HashMap::new();
    for (i, l) in c.leases.iter().enumerate() {
        let what = || format!("lease [{}] <-> {}", l.v6, l.v4);
        let slot = l.slot.load(Relaxed) as usize;
        r.ensure(slot == i, || {
            format!("{} at {i} says it is at {slot}", what())
        });
        let d = l.deadline.load(Relaxed);
        r.ensure(d != DEAD, || format!("{} is dead but still listed", what()));
        r.ensure(!l.is_static || d == DEAD - 1, || {
            format!("static {} has deadline {d}", what())
        });
        r.ensure(!l.is_static || l.confirmed.load(Relaxed), || {
            format!("static {} is not confirmed", what())
        });
        r.ensure(!l.is_static || statics.contains(&l.v4), || {
            format!("static {} is not a configured map", what())
        });
        r.ensure(v6s.insert(l.v6), || format!("two leases for [{}]", l.v6));
        r.ensure(v4s.insert(l.v4), || format!("two leases on {}", l.v4));
        let f6 = c.find(|v| v.lease6(&l.v6));
        r.ensure(f6.is_some_and(|(x, _)| Arc::ptr_eq(&x, l)), || {
            format!("{} is not found by its IPv6 side", what())
        });
        let f4 = c.find(|v| v.lease4(l.v4));
        r.ensure(f4.is_some_and(|(x, _)| Arc::ptr_eq(&x, l)), || {
            format!("{} is not found by its IPv4 side", what())
        });
        let k = c.kpool.as_ref();
        let contained = k.is_some_and(|k| k.contains(l.v4));
        r.ensure(l.is_static || contained, || {
            format!("dynamic {} lies outside inner-pool", what())
        });
        inside += u32::from(contained);
        if !l.is_static {
            *sites
                .entry(client_key(&l.v6, c.limits.site_prefix_len))
                .or_insert(0) += 1;
        }
    }
    r.ensure(sites == c.lease_sites, || {
        format!(
            "per-site lease counts {:?} but the leases give {sites:?}",
            c.lease_sites
        )
    });
    if let Some(k) = &c.kpool {
        r.ensure(k.in_use() == inside, || {
            format!(
                "inner pool counts {} addresses in use, the leases {inside}",
                k.in_use()
            )
        });
        r.ensure(k.in_use() <= k.capacity(), || {
            format!("inner pool uses {} of {}", k.in_use(), k.capacity())
        });
    }
}

/// What `nat64 show` and `/metrics` report agrees with itself: counts with
/// listings, each binding's session count with the sessions listed, the
/// pool usage with the ports in use. Publishes pending flows (as the show
/// accessors do in the daemon).
pub fn check_reports(e: &Engine) -> Result<(), Violations> {
    let mut r = Report::default();
    let bindings = e.bindings();
    let sessions = e.sessions();
    let counts = e.counts();
    let usage = e.pool_usage();
    let mut nb = PerProto::<usize>::default();
    let mut ns = PerProto::<usize>::default();
    let (mut statics, mut leases) = (0, 0);
    let mut per_binding: HashMap<(L4Proto, Ipv4Addr, u16), usize> = HashMap::new();
    for s in &sessions {
        *ns.get_mut(s.proto) += 1;
        *per_binding.entry((s.proto, s.v4.0, s.v4.1)).or_insert(0) += 1;
        r.ensure((s.proto == L4Proto::Tcp) == s.tcp_state.is_some(), || {
            format!("session {s:?}: TCP state shown for the wrong protocol")
        });
    }
    for b in &bindings {
        match b.proto {
            Some(p) => {
                *nb.get_mut(p) += 1;
                statics += usize::from(b.is_static);
                let n = per_binding.get(&(p, b.v4.0, b.v4.1)).copied().unwrap_or(0);
                r.ensure(n == b.sessions, || {
                    format!("binding {b:?} shows {} sessions, {n} listed", b.sessions)
                });
            }
            None => leases += 1,
        }
    }
    r.ensure(nb == counts.bindings, || {
        format!("counts say {:?} bindings, {nb:?} listed", counts.bindings)
    });
    r.ensure(statics == counts.static_bindings, || {
        format!(
            "counts say {} static bindings, {statics} listed",
            counts.static_bindings
        )
    });
    r.ensure(ns == counts.sessions, || {
        format!("counts say {:?} sessions, {ns:?} listed", counts.sessions)
    });
    r.ensure(leases == counts.kernel_leases, || {
        format!(
            "counts say {} kernel leases, {leases} listed",
            counts.kernel_leases
        )
    });
    let dynamic = e.kernel_leases();
    r.ensure(dynamic.len() <= leases, || {
        format!("{} dynamic leases of {leases} leases listed", dynamic.len())
    });
    r.ensure(counts.held_syns <= MAX_HELD_SYNS, || {
        format!("{} held SYNs", counts.held_syns)
    });
    r.ensure(counts.fragments_cached <= FRAG_CACHE_CAP, || {
        format!("{} fragments cached", counts.fragments_cached)
    });
    if matches!(e.sh.mode, Mode::Daemon { .. }) {
        let used: u64 = usage
            .iter()
            .map(|u| u64::from(u.in_use.tcp + u.in_use.udp + u.in_use.icmp))
            .sum();
        r.ensure(used == counts.pool_ports_in_use, || {
            format!(
                "pool usage sums to {used} ports, counts say {}",
                counts.pool_ports_in_use
            )
        });
    }
    for u in &usage {
        for p in PROTOCOLS {
            r.ensure(u.in_use.get(p) <= u.capacity.get(p), || {
                format!("pool usage {u:?} above capacity")
            });
        }
    }
    r.finish()
}

/// After a sweep at `now` that reported `complete`: no session and no
/// dynamic lease is due any more (RFC 6146 §3.5.1, §3.5.2.2 — a TCP
/// session due in ESTABLISHED moved to TRANS with a new lifetime).
pub fn check_swept(e: &Engine, now: Timestamp) -> Result<(), Violations> {
    let mut r = Report::default();
    let c = e.sh.lock_fast();
    for s in &c.sessions {
        let d = s.deadline.load(Relaxed);
        r.ensure(d > now.0, || {
            format!(
                "session {} due at {d} ms survived a sweep at {}",
                skey(s),
                now.0
            )
        });
    }
    for l in &c.leases {
        let d = l.deadline.load(Relaxed);
        r.ensure(l.is_static || d > now.0, || {
            format!(
                "lease [{}] <-> {} due at {d} ms survived a sweep at {}",
                l.v6, l.v4, now.0
            )
        });
    }
    r.finish()
}

/// The mapping log replayed: every `Created` opens an entry, every
/// `Expired` closes one (blocks and kernel leases alike); the open entries
/// must be exactly the engine's bindings (or, with port blocks, cover
/// them). Install with [`MappingLedger::attach`].
#[derive(Debug, Default)]
pub struct MappingLedger {
    inner: Mutex<Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    /// (proto, v4, port) -> (v6, port, static).
    bindings: HashMap<(L4Proto, Ipv4Addr, u16), (Ipv6Addr, u16, bool)>,
    /// (proto, v4, first port, owner) -> last port. RFC 7422 hashed
    /// clients may share one block: each has its own entry.
    blocks: HashMap<(L4Proto, Ipv4Addr, u16, Ipv6Addr), u16>,
    /// v4 -> v6.
    leases: HashMap<Ipv4Addr, Ipv6Addr>,
    problems: Vec<String>,
}

impl Ledger {
    fn problem(&mut self, msg: String) {
        if self.problems.len() < Report::MAX {
            self.problems.push(msg);
        }
    }

    fn apply(&mut self, ev: &MappingEvent) {
        use MappingEventKind::*;
        match (ev.kind, ev.proto) {
            (Created, None) => {
                if let Some(old) = self.leases.insert(ev.v4.0, ev.v6.0) {
                    self.problem(format!("lease on {} created twice ({old})", ev.v4.0));
                }
            }
            (Expired, None) => {
                if self.leases.remove(&ev.v4.0) != Some(ev.v6.0) {
                    self.problem(format!("lease {ev:?} expired but was not created"));
                }
            }
            (Created, Some(p)) => {
                let k = (p, ev.v4.0, ev.v4.1);
                let v = (ev.v6.0, ev.v6.1, ev.is_static);
                if let Some(old) = self.bindings.insert(k, v) {
                    self.problem(format!("binding {ev:?} created over {old:?}"));
                }
            }
            (Expired, Some(p)) => {
                let k = (p, ev.v4.0, ev.v4.1);
                if self.bindings.remove(&k) != Some((ev.v6.0, ev.v6.1, ev.is_static)) {
                    self.problem(format!("binding {ev:?} expired but was not created"));
                }
            }
            (BlockAllocated, Some(p)) => {
                // Another client's block may be this very block (shared),
                // never part of it.
                let overlap = self.blocks.iter().any(|(&(q, a, first, _), &last)| {
                    q == p
                        && a == ev.v4.0
                        && first <= ev.v4_last_port
                        && ev.v4.1 <= last
                        && (first, last) != (ev.v4.1, ev.v4_last_port)
                });
                let k = (p, ev.v4.0, ev.v4.1, ev.v6.0);
                if overlap || ev.v4_last_port < ev.v4.1 || self.blocks.contains_key(&k) {
                    self.problem(format!(
                        "block {ev:?} overlaps a block held, is held twice or is empty"
                    ));
                }
                self.blocks.insert(k, ev.v4_last_port);
            }
            (BlockReleased, Some(p)) => {
                if self.blocks.remove(&(p, ev.v4.0, ev.v4.1, ev.v6.0)) != Some(ev.v4_last_port) {
                    self.problem(format!("block {ev:?} released but was not allocated"));
                }
            }
            (BlockAllocated | BlockReleased, None) => {
                self.problem(format!("block event {ev:?} without a protocol"));
            }
        }
    }
}

/// True when the block owner `owner` (a client: an address, or with RFC
/// 7422 deterministic blocks a prefix of `limits.client-prefix-len`
/// written with its host bits zero) is `v6` or a prefix holding it.
fn client_covers(owner: Ipv6Addr, v6: Ipv6Addr) -> bool {
    let zeros = u128::from(owner).trailing_zeros();
    owner == v6 || (zeros < 128 && u128::from(v6) >> zeros == u128::from(owner) >> zeros)
}

impl MappingLedger {
    /// A ledger holding what `e` has now (e.g. the static entries of its
    /// configuration), whose event hook it then becomes (replacing any).
    pub fn attach(e: &Engine) -> Arc<MappingLedger> {
        let me = Arc::new(MappingLedger::default());
        {
            let mut l = me.inner.lock().unwrap_or_else(|x| x.into_inner());
            for b in e.bindings() {
                match b.proto {
                    Some(p) => {
                        l.bindings
                            .insert((p, b.v4.0, b.v4.1), (b.v6.0, b.v6.1, b.is_static));
                    }
                    None => {
                        l.leases.insert(b.v4.0, b.v6.0);
                    }
                }
            }
            // A ledger attached to a port-block engine that already has
            // dynamic bindings cannot know their blocks: attach it first.
        }
        let hook = me.clone();
        e.set_event_hook(move |ev| {
            hook.inner
                .lock()
                .unwrap_or_else(|x| x.into_inner())
                .apply(ev)
        });
        me
    }

    /// The log so far against the tables of `e` (listings, so this
    /// publishes). With port blocks (`block_mode`), dynamic bindings have no
    /// events of their own: each must lie in a block of its source.
    pub fn check(&self, e: &Engine, block_mode: bool) -> Result<(), Violations> {
        let bindings = e.bindings();
        let l = self.inner.lock().unwrap_or_else(|x| x.into_inner());
        let mut r = Report::default();
        for p in &l.problems {
            r.fail(|| p.clone());
        }
        let mut seen = 0;
        let mut leases = 0;
        for b in &bindings {
            let Some(p) = b.proto else {
                leases += 1;
                r.ensure(l.leases.get(&b.v4.0) == Some(&b.v6.0), || {
                    format!("lease {b:?} is not in the mapping log")
                });
                continue;
            };
            if block_mode && !b.is_static {
                let covered = l.blocks.iter().any(|(&(q, a, first, owner), &last)| {
                    q == p
                        && a == b.v4.0
                        && (first..=last).contains(&b.v4.1)
                        && client_covers(owner, b.v6.0)
                });
                r.ensure(covered, || {
                    format!("binding {b:?} lies in no block the mapping log gave its source")
                });
                continue;
            }
            seen += 1;
            let logged = l.bindings.get(&(p, b.v4.0, b.v4.1));
            r.ensure(logged == Some(&(b.v6.0, b.v6.1, b.is_static)), || {
                format!("binding {b:?} is logged as {logged:?}")
            });
        }
        r.ensure(seen == l.bindings.len(), || {
            format!(
                "the mapping log holds {} open bindings, the BIB {seen}",
                l.bindings.len()
            )
        });
        r.ensure(leases == l.leases.len(), || {
            format!(
                "the mapping log holds {} open leases, the engine {leases}",
                l.leases.len()
            )
        });
        r.finish()
    }
}

#[cfg(test)]
mod test {
    //! The checker catches what it claims to: corrupt one piece of state
    //! the engine keeps and see it named.
    use super::*;
    use crate::addr::Prefix;
    use crate::state::{EngineConfig, NaptConfig, PoolConfig};
    use crate::xlat::{FlowMeta, Mapper, Role, Tuple};

    fn engine_with_flows(n: u16) -> Engine {
        let e = Engine::new(EngineConfig {
            napt: NaptConfig::Daemon(PoolConfig {
                prefixes: vec![(Ipv4Addr::new(192, 0, 2, 0), 31)],
                ..PoolConfig::default()
            }),
            ..EngineConfig::default()
        })
        .unwrap();
        let mut w = e.worker();
        w.set_now(Timestamp(0));
        let meta = FlowMeta {
            role: Role::Outer,
            tcp_flags: 0,
            fragment: None,
            len: 100,
        };
        for i in 0..n {
            let t = Tuple {
                proto: L4Proto::Udp,
                src: "2001:db8::1".parse().unwrap(),
                src_port: 40000 + i,
                dst: Prefix::WELL_KNOWN.embed(Ipv4Addr::new(8, 8, 8, 8)),
                dst_port: 53,
            };
            w.mapper().map_6to4(&t, &meta).unwrap();
        }
        e
    }

    fn named(r: Result<(), Violations>, what: &str) -> bool {
        r.is_err_and(|v| v.0.iter().any(|m| m.contains(what)))
    }

    #[test]
    fn live_engine_passes_every_check() {
        let e = engine_with_flows(3);
        check(&e).unwrap();
        check_reports(&e).unwrap();
        assert!(e.sweep(Timestamp(1)).complete);
        check_swept(&e, Timestamp(1)).unwrap();
        check(&e).unwrap();
    }

    #[test]
    fn check_publishes_nothing() {
        let e = engine_with_flows(2);
        let before = e.sh.lock_fast().pending_ops;
        assert!(before > 0, "new flows wait in the batch");
        check(&e).unwrap();
        assert_eq!(e.sh.lock_fast().pending_ops, before);
    }

    #[test]
    fn wrong_counters_are_named() {
        let e = engine_with_flows(2);
        e.sh.lock().nsessions.udp += 1;
        assert!(named(check(&e), "session counters"));
        let e = engine_with_flows(2);
        e.sh.lock().nbindings.tcp += 1;
        assert!(named(check(&e), "binding counters"));
        assert!(named(check_reports(&e), "bindings"));
    }

    #[test]
    fn binding_session_count_is_checked() {
        let e = engine_with_flows(1);
        {
            let c = e.sh.lock();
            let v = c.view().unwrap();
            let b = v.bindings().next().unwrap();
            b.sessions.fetch_add(1, Relaxed);
        }
        assert!(named(check(&e), "counts 2 sessions but has 1"));
    }

    #[test]
    fn orphan_and_dead_sessions_are_named() {
        let e = engine_with_flows(1);
        e.sh.lock().sessions[0].deadline.store(DEAD, Relaxed);
        assert!(named(check(&e), "is dead but still listed"));
        let e = engine_with_flows(1);
        e.sh.lock().clients.clear();
        assert!(named(check(&e), "per-client session counts"));
    }

    #[test]
    fn due_session_after_a_sweep_is_named() {
        let e = engine_with_flows(1);
        assert!(e.sweep(Timestamp(10)).complete);
        e.sh.lock().sessions[0].deadline.store(5, Relaxed);
        assert!(named(check_swept(&e, Timestamp(10)), "survived a sweep"));
    }

    #[test]
    fn mapping_ledger_follows_the_log() {
        let e = engine_with_flows(0);
        let ledger = MappingLedger::attach(&e);
        let mut w = e.worker();
        w.set_now(Timestamp(0));
        let t = Tuple {
            proto: L4Proto::Udp,
            src: "2001:db8::7".parse().unwrap(),
            src_port: 5000,
            dst: Prefix::WELL_KNOWN.embed(Ipv4Addr::new(8, 8, 8, 8)),
            dst_port: 53,
        };
        let meta = FlowMeta {
            role: Role::Outer,
            tcp_flags: 0,
            fragment: None,
            len: 100,
        };
        w.mapper().map_6to4(&t, &meta).unwrap();
        ledger.check(&e, false).unwrap();
        // An event nobody sent: the ledger now disagrees with the BIB.
        ledger.inner.lock().unwrap().bindings.clear();
        assert!(named(ledger.check(&e, false), "is logged as None"));
        e.sweep(Timestamp(1_000_000));
        assert!(named(
            ledger.check(&e, false),
            "expired but was not created"
        ));
    }
}
