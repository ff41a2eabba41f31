//! The `daemon`-mode NAPT pool (RFC 6146 §3.5.1, RFC 4787 §4; docs/operator.md
//! §2.1): IPv4 addresses from one or more
//! prefixes, a port (or ICMP identifier) range per protocol, pool affinity,
//! port preservation and parity, and optional port blocks.
//!
//! Only the engine's writer (behind its mutex) touches the pool; nothing
//! here is shared with the data path.
//!
//! * **Affinity** (RFC 4787 REQ-2 "paired" pooling, RFC 6146 §3.5.1.1): all
//!   bindings of one IPv6 source use one pool address. The first binding of
//!   a source picks `hash(v6 source) mod N` (so distinct sources spread over
//!   the addresses) and falls back to the next address with a free port;
//!   later bindings of that source stay on that address while it has any
//!   binding left, and get [`Exhausted`] rather than a second address.
//! * **Preservation and parity** (RFC 4787 REQ-3/REQ-4, RFC 6146 §3.5.1.1):
//!   the source port is kept when it is in range and free; otherwise a free
//!   port of the same parity is taken, and only when none is left one of the
//!   other parity.
//! * **Port blocks** (RFC 7422 spirit): with a block size `N`, a source owns
//!   whole aligned blocks of `N` ports on its address; its ports come from
//!   its blocks, a new block is taken when they are full, and a block goes
//!   back when its last port is freed.
//! * **Deterministic blocks** (RFC 7422, [`Deterministic`]): a client's
//!   address and its one block per protocol are a pure function of the
//!   client and the configuration, so instances and restarts agree.

use super::Deterministic;
use crate::xlat::L4Proto;
use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// No free port (or address) is left for this request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted;

/// Index of a protocol in per-protocol arrays.
pub(crate) const fn pidx(p: L4Proto) -> usize {
    match p {
        L4Proto::Tcp => 0,
        L4Proto::Udp => 1,
        L4Proto::Icmp => 2,
    }
}

pub(crate) const PROTOS: [L4Proto; 3] = [L4Proto::Tcp, L4Proto::Udp, L4Proto::Icmp];

const WORDS: usize = 65536 / 64;
const EVEN: u64 = 0x5555_5555_5555_5555;

/// Ports in use on one address for one protocol: a 65536-bit bitmap where a
/// set bit is a taken (or out-of-range) port. 8 KiB, created on first use.
struct PortMap {
    bits: Box<[u64]>,
    used: u32,
}

impl PortMap {
    /// Word at a time: a new pool address is created on a new flow's
    /// path (65,536 single-bit steps were ~60 µs under the writer lock).
    fn new(lo: u16, hi: u16) -> PortMap {
        let (lo, hi) = (lo as usize, hi as usize);
        let bits = (0..WORDS)
            .map(|w| {
                let (first, last) = (w * 64, w * 64 + 63);
                if last < lo || first > hi {
                    return u64::MAX;
                }
                // Bits of ports below `lo` and above `hi` in this word.
                let below = if lo > first {
                    (1u64 << (lo - first)) - 1
                } else {
                    0
                };
                let above = if hi < last {
                    u64::MAX << (hi - first + 1)
                } else {
                    0
                };
                below | above
            })
            .collect();
        PortMap { bits, used: 0 }
    }
    fn is_free(&self, p: u16) -> bool {
        self.bits[p as usize / 64] & (1 << (p % 64)) == 0
    }
    fn take(&mut self, p: u16) {
        self.bits[p as usize / 64] |= 1 << (p % 64);
        self.used += 1;
    }
    fn put(&mut self, p: u16) {
        let w = &mut self.bits[p as usize / 64];
        if *w & (1 << (p % 64)) != 0 {
            *w &= !(1 << (p % 64));
            self.used = self.used.saturating_sub(1);
        }
    }
    /// A free port in `[lo, hi]` with the wanted parity (`Some(0)` even,
    /// `Some(1)` odd, `None` any), searching from word `start`.
    fn find(&self, lo: u16, hi: u16, parity: Option<u16>, start: usize) -> Option<u16> {
        let mask = match parity {
            Some(0) => EVEN,
            Some(_) => !EVEN,
            None => u64::MAX,
        };
        let (wlo, whi) = (lo as usize / 64, hi as usize / 64);
        let n = whi - wlo + 1;
        for i in 0..n {
            let w = wlo + (start + i) % n;
            let free = !self.bits[w] & mask;
            if free != 0 {
                return Some((w * 64 + free.trailing_zeros() as usize) as u16);
            }
        }
        None
    }
}

/// Per-source state: the affine address and how many bindings hold it.
struct Source {
    addr: u32,
    bindings: u32,
    /// Port blocks owned, per protocol: block start ports.
    blocks: [Vec<u16>; 3],
}

/// What [`Pool::deterministic_owner`] finds for an IPv4 transport address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockOwner {
    pub v4: Ipv4Addr,
    pub first: u16,
    pub last: u16,
    /// The slot: `block index x usable addresses + address index`.
    pub slot: u64,
    /// The client of `ports.clients` numbered into this slot (its first
    /// address); clients outside that range may also hash into it.
    pub numbered: Option<Ipv6Addr>,
}

/// A port block handed to or taken back from a source (for the mapping log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockChange {
    pub proto: L4Proto,
    pub v6: Ipv6Addr,
    pub v4: Ipv4Addr,
    pub first: u16,
    pub last: u16,
    pub allocated: bool,
}

pub(crate) struct Pool {
    prefixes: Vec<(u32, u8)>,
    addrs: Vec<Ipv4Addr>,
    ranges: [(u16, u16); 3],
    maps: Vec<[Option<PortMap>; 3]>,
    sources: HashMap<Ipv6Addr, Source>,
    block: Option<u16>,
    /// Block owner per (address, proto, block index): used to free blocks.
    block_used: HashMap<(u32, u8, u16), u16>,
    seed: u64,
    /// Index of the address [`Pool::withhold`] took out of allocation.
    withheld: Option<usize>,
    det: Option<Deterministic>,
    /// Deterministic mode: dynamic bindings per client (masked address)
    /// and protocol; a block is logged when its client's count leaves and
    /// returns to zero.
    det_clients: HashMap<Ipv6Addr, [u32; 3]>,
}

/// Seed of the deterministic client hash. Part of the mapping's
/// definition: changing it moves every hashed client to another block.
const DETERMINISTIC_SEED: u64 = 0x7422_7422_7422_7422;

/// First whole aligned block of `bs` ports in `lo..=hi`, and how many.
fn aligned_blocks((lo, hi): (u16, u16), bs: u16) -> (u32, u32) {
    let first = (lo as u32).div_ceil(bs as u32) * bs as u32;
    (first, (hi as u32 + 1).saturating_sub(first) / bs as u32)
}

/// `a` masked to its first `len` bits.
fn masked(a: Ipv6Addr, len: u8) -> Ipv6Addr {
    let m = if len == 0 {
        0
    } else {
        u128::MAX << (128 - len as u32)
    };
    Ipv6Addr::from(u128::from(a) & m)
}

/// Deterministic mixing of a v6 address (spread of sources over addresses).
pub(crate) fn mix_v6(a: &Ipv6Addr, seed: u64) -> u64 {
    let v = u128::from(*a);
    let mut h = (v as u64) ^ ((v >> 64) as u64).rotate_left(29) ^ seed;
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl Pool {
    /// Largest number of pool addresses accepted (a /16).
    pub const MAX_ADDRS: usize = 65536;

    pub fn new(
        prefixes: &[(Ipv4Addr, u8)],
        ranges: [(u16, u16); 3],
        block: Option<u16>,
        det: Option<Deterministic>,
    ) -> Result<Pool, String> {
        let mut addrs = Vec::new();
        let mut pfx = Vec::new();
        for &(a, len) in prefixes {
            if len > 32 {
                return Err(format!("pool prefix {a}/{len}: length must be 0-32"));
            }
            let n = u32::from(a);
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            if n & !mask != 0 {
                return Err(format!(
                    "pool prefix {a}/{len} has host bits set; use {}/{len}",
                    Ipv4Addr::from(n & mask)
                ));
            }
            // Overlap is a property of the prefixes: checked per prefix,
            // not per address (a /16 pool used to take seconds to start).
            let overlaps = |&(m, l): &(u32, u8)| {
                let k = len.min(l);
                let km = if k == 0 { 0 } else { u32::MAX << (32 - k) };
                n & km == m & km
            };
            if let Some(&(m, l)) = pfx.iter().find(|p| overlaps(p)) {
                return Err(format!(
                    "pool prefixes overlap: {a}/{len} and {}/{l}",
                    Ipv4Addr::from(m)
                ));
            }
            let count = 1u64 << (32 - len as u32);
            if addrs.len() as u64 + count > Self::MAX_ADDRS as u64 {
                return Err(format!(
                    "pool holds more than {} addresses; use a longer prefix than {a}/{len}",
                    Self::MAX_ADDRS
                ));
            }
            addrs.extend((0..count as u32).map(|i| Ipv4Addr::from(n + i)));
            pfx.push((n, len));
        }
        if addrs.is_empty() {
            return Err("the pool is empty: give at least one IPv4 prefix".into());
        }
        for (p, (lo, hi)) in PROTOS.iter().zip(ranges) {
            if lo > hi {
                return Err(format!("{} port range {lo}-{hi} is empty", p.as_str()));
            }
        }
        if let Some(b) = block {
            if b == 0 || !b.is_power_of_two() {
                return Err(format!("port block size {b} must be a power of two"));
            }
        }
        if let Some(d) = det {
            let Some(bs) = block else {
                return Err("deterministic port blocks need a port block size".into());
            };
            if ranges.iter().any(|&r| aligned_blocks(r, bs).1 == 0) {
                return Err(format!("a port range holds no whole aligned block of {bs}"));
            }
            if d.client_prefix_len > 128 || d.clients.is_some_and(|(_, l)| l > d.client_prefix_len)
            {
                return Err("deterministic clients: prefix lengths out of order".into());
            }
        }
        let maps = (0..addrs.len()).map(|_| [None, None, None]).collect();
        Ok(Pool {
            prefixes: pfx,
            addrs,
            ranges,
            maps,
            sources: HashMap::new(),
            block,
            block_used: HashMap::new(),
            seed: 0x9e37_79b9_7f4a_7c15,
            withheld: None,
            det,
            det_clients: HashMap::new(),
        })
    }

    /// Deterministic mode: the slots (usable addresses x blocks per
    /// address), or 0 without deterministic blocks.
    pub fn deterministic_slots(&self) -> u64 {
        match (self.det, self.block) {
            (Some(_), Some(bs)) => {
                let per_addr = self.ranges.iter().map(|&r| aligned_blocks(r, bs).1).min();
                self.usable() as u64 * per_addr.unwrap_or(0) as u64
            }
            _ => 0,
        }
    }

    fn usable(&self) -> usize {
        self.addrs.len() - usize::from(self.withheld.is_some())
    }

    /// Deterministic mode: the client `v6` belongs to, its address index
    /// and its block index ([`Deterministic`]).
    fn det_slot(&self, d: &Deterministic, v6: Ipv6Addr) -> (Ipv6Addr, usize, u32) {
        let key = masked(v6, d.client_prefix_len);
        let slots = self.deterministic_slots().max(1);
        let indexed = d.clients.and_then(|(base, len)| {
            (masked(key, len) == base).then(|| {
                (u128::from(key) - u128::from(base)) >> (128 - u32::from(d.client_prefix_len))
            })
        });
        let slot = match indexed {
            Some(i) if i < slots as u128 => i as u64,
            _ => mix_v6(&key, DETERMINISTIC_SEED) % slots,
        };
        let a = self.usable().max(1) as u64;
        let mut ai = (slot % a) as usize;
        if self.withheld.is_some_and(|w| ai >= w) {
            ai += 1;
        }
        (key, ai, (slot / a) as u32)
    }

    /// Deterministic mode: the address and `first..=last` ports of the
    /// block `v6` gets for protocol `p` (`nat64 show`, abuse lookups).
    pub fn deterministic_block(&self, p: L4Proto, v6: Ipv6Addr) -> Option<(Ipv4Addr, u16, u16)> {
        let d = self.det?;
        let (_, ai, bi) = self.det_slot(&d, v6);
        self.block_at(p, ai, bi)
    }

    /// Block `bi` of address `ai` for `p`: the address, first and last port.
    fn block_at(&self, p: L4Proto, ai: usize, bi: u32) -> Option<(Ipv4Addr, u16, u16)> {
        let bs = u32::from(self.block?);
        let (first, _) = aligned_blocks(self.ranges[pidx(p)], bs as u16);
        let start = first + bi * bs;
        Some((self.addrs[ai], start as u16, (start + bs - 1) as u16))
    }

    /// Deterministic mode, the other way: the block holding `v4:port` for
    /// protocol `p`, its slot, and the numbered client it belongs to (None
    /// when `v4:port` lies in no block).
    pub fn deterministic_owner(&self, p: L4Proto, v4: Ipv4Addr, port: u16) -> Option<BlockOwner> {
        let d = self.det?;
        let bs = self.block?;
        let ai = self.index_of(v4)?;
        if self.withheld == Some(ai) {
            return None;
        }
        let j = ai - usize::from(self.withheld.is_some_and(|w| ai > w));
        let (first, _) = aligned_blocks(self.ranges[pidx(p)], bs);
        let per_addr = self.deterministic_slots() / self.usable().max(1) as u64;
        let bi = (u32::from(port).checked_sub(first)? / u32::from(bs)) as u64;
        if bi >= per_addr {
            return None;
        }
        let slot = bi * self.usable() as u64 + j as u64;
        let start = first + bi as u32 * u32::from(bs);
        let numbered = d.clients.and_then(|(base, len)| {
            let bits = u32::from(d.client_prefix_len - len);
            let n = 1u128.checked_shl(bits).unwrap_or(u128::MAX);
            (u128::from(slot) < n).then(|| {
                let step = 1u128.checked_shl(128 - u32::from(d.client_prefix_len));
                Ipv6Addr::from(u128::from(base) + u128::from(slot) * step.unwrap_or(0))
            })
        });
        Some(BlockOwner {
            v4,
            first: start as u16,
            last: (start + u32::from(bs) - 1) as u16,
            slot,
            numbered,
        })
    }

    /// Takes `a` out of dynamic allocation (the translator's own address
    /// inside the pool, as Tayga carves `ipv4-addr` out of its pool): no
    /// source is given it. A static binding may still name it.
    pub fn withhold(&mut self, a: Ipv4Addr) {
        self.withheld = self.index_of(a);
    }

    /// True when `a` is one of the pool's addresses.
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        let x = u32::from(a);
        self.prefixes.iter().any(|&(n, len)| {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            x & m == n
        })
    }

    fn index_of(&self, a: Ipv4Addr) -> Option<usize> {
        let x = u32::from(a);
        let mut base = 0usize;
        for &(n, len) in &self.prefixes {
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            if x & m == n {
                return Some(base + (x - n) as usize);
            }
            base += 1usize << (32 - len as u32);
        }
        None
    }

    fn map(&mut self, ai: usize, p: L4Proto) -> &mut PortMap {
        let (lo, hi) = self.ranges[pidx(p)];
        self.maps[ai][pidx(p)].get_or_insert_with(|| PortMap::new(lo, hi))
    }

    fn has_free(&self, ai: usize, p: L4Proto) -> bool {
        if self.withheld == Some(ai) {
            return false;
        }
        let (lo, hi) = self.ranges[pidx(p)];
        match &self.maps[ai][pidx(p)] {
            None => true,
            Some(m) => (m.used as usize) < (hi as usize - lo as usize + 1),
        }
    }

    /// Size of each protocol's range.
    pub fn capacities(&self) -> crate::state::PerProto<u32> {
        let c = |i: usize| self.ranges[i].1 as u32 - self.ranges[i].0 as u32 + 1;
        crate::state::PerProto {
            tcp: c(0),
            udp: c(1),
            icmp: c(2),
        }
    }

    /// Ports in use per protocol on each address.
    pub fn usage(&self) -> Vec<(Ipv4Addr, [u32; 3])> {
        self.addrs
            .iter()
            .zip(&self.maps)
            .map(|(a, m)| (*a, [0, 1, 2].map(|i| m[i].as_ref().map_or(0, |pm| pm.used))))
            .collect()
    }

    /// RFC 6146 §3.5.1.1 / §3.5.2.1: an IPv4 transport address for a new
    /// binding of `v6:port`. Blocks handed out are pushed to `changes`.
    pub fn allocate(
        &mut self,
        p: L4Proto,
        v6: Ipv6Addr,
        port: u16,
        changes: &mut Vec<BlockChange>,
    ) -> Result<(Ipv4Addr, u16), Exhausted> {
        if let Some(d) = self.det {
            return self.allocate_deterministic(&d, p, v6, port, changes);
        }
        let n = self.addrs.len();
        let ai = match self.sources.get(&v6) {
            Some(s) => s.addr as usize,
            None => {
                let h = mix_v6(&v6, self.seed) as usize;
                (0..n)
                    .map(|i| (h + i) % n)
                    .find(|&ai| self.has_free(ai, p))
                    .ok_or(Exhausted)?
            }
        };
        let got = match self.block {
            None => self.take_port(ai, p, port, mix_v6(&v6, port as u64) as usize)?,
            Some(bs) => self.take_port_in_blocks(ai, p, v6, port, bs, changes)?,
        };
        let s = self.sources.entry(v6).or_insert(Source {
            addr: ai as u32,
            bindings: 0,
            blocks: Default::default(),
        });
        s.bindings += 1;
        Ok((self.addrs[ai], got))
    }

    /// RFC 7422: a port of the client's own block, the source port when it
    /// lies there and is free (RFC 4787 REQ-3), else one of its parity
    /// (REQ-4), else any.
    fn allocate_deterministic(
        &mut self,
        d: &Deterministic,
        p: L4Proto,
        v6: Ipv6Addr,
        port: u16,
        changes: &mut Vec<BlockChange>,
    ) -> Result<(Ipv4Addr, u16), Exhausted> {
        let (key, ai, bi) = self.det_slot(d, v6);
        let (v4, first, last) = self.block_at(p, ai, bi).ok_or(Exhausted)?;
        let m = self.map(ai, p);
        let got = if (first..=last).contains(&port) && m.is_free(port) {
            port
        } else {
            (first..=last)
                .find(|&q| q & 1 == port & 1 && m.is_free(q))
                .or_else(|| (first..=last).find(|&q| m.is_free(q)))
                .ok_or(Exhausted)?
        };
        m.take(got);
        let n = &mut self.det_clients.entry(key).or_default()[pidx(p)];
        if *n == 0 {
            changes.push(BlockChange {
                proto: p,
                v6: key,
                v4,
                first,
                last,
                allocated: true,
            });
        }
        *n += 1;
        let s = self.sources.entry(v6).or_insert(Source {
            addr: ai as u32,
            bindings: 0,
            blocks: Default::default(),
        });
        s.bindings += 1;
        Ok((v4, got))
    }

    /// Deterministic mode: one dynamic binding of `v6` for `p` is gone;
    /// the client's block is logged as released with its last binding.
    fn release_deterministic(
        &mut self,
        d: &Deterministic,
        p: L4Proto,
        v6: Ipv6Addr,
        changes: &mut Vec<BlockChange>,
    ) {
        let key = masked(v6, d.client_prefix_len);
        let Some(counts) = self.det_clients.get_mut(&key) else {
            return;
        };
        let n = &mut counts[pidx(p)];
        *n = n.saturating_sub(1);
        if *n > 0 {
            return;
        }
        if counts.iter().all(|&c| c == 0) {
            self.det_clients.remove(&key);
        }
        if let Some((v4, first, last)) = self.deterministic_block(p, v6) {
            changes.push(BlockChange {
                proto: p,
                v6: key,
                v4,
                first,
                last,
                allocated: false,
            });
        }
    }

    fn take_port(&mut self, ai: usize, p: L4Proto, port: u16, h: usize) -> Result<u16, Exhausted> {
        let (lo, hi) = self.ranges[pidx(p)];
        let m = self.map(ai, p);
        let got = if m.is_free(port) {
            port
        } else {
            let start = h % WORDS;
            m.find(lo, hi, Some(port & 1), start)
                .or_else(|| m.find(lo, hi, None, start))
                .ok_or(Exhausted)?
        };
        m.take(got);
        Ok(got)
    }

    fn take_port_in_blocks(
        &mut self,
        ai: usize,
        p: L4Proto,
        v6: Ipv6Addr,
        port: u16,
        bs: u16,
        changes: &mut Vec<BlockChange>,
    ) -> Result<u16, Exhausted> {
        let (lo, hi) = self.ranges[pidx(p)];
        let owned: Vec<u16> = self
            .sources
            .get(&v6)
            .map(|s| s.blocks[pidx(p)].clone())
            .unwrap_or_default();
        // 1. The source port, if it lies in one of the source's blocks.
        // 2. A port of the same parity in its blocks, then any.
        for parity in [Some(port & 1), None] {
            for &b in &owned {
                let end = b.saturating_add(bs - 1).min(hi);
                let m = self.map(ai, p);
                if parity == Some(port & 1) && (b..=end).contains(&port) && m.is_free(port) {
                    m.take(port);
                    self.bump_block(ai, p, b, bs);
                    return Ok(port);
                }
                if let Some(q) =
                    (b..=end).find(|&q| m.is_free(q) && parity.is_none_or(|x| q & 1 == x))
                {
                    m.take(q);
                    self.bump_block(ai, p, b, bs);
                    return Ok(q);
                }
            }
        }
        // 3. A new block: prefer the one holding the source port.
        let first_block = lo.div_ceil(bs).saturating_mul(bs).max(lo);
        let nblocks = (hi as u32 + 1).saturating_sub(first_block as u32) / bs as u32;
        if nblocks == 0 {
            return Err(Exhausted);
        }
        let want = (port as u32).saturating_sub(first_block as u32) / bs as u32;
        let h = mix_v6(&v6, 7) as u32;
        let pick = (0..nblocks)
            .map(|i| {
                if i == 0 && want < nblocks {
                    want
                } else {
                    (h.wrapping_add(i)) % nblocks
                }
            })
            .map(|i| first_block + (i * bs as u32) as u16)
            .find(|&b| {
                !self
                    .block_used
                    .contains_key(&(ai as u32, pidx(p) as u8, b / bs))
            })
            .ok_or(Exhausted)?;
        let end = pick + (bs - 1);
        let m = self.map(ai, p);
        let q = if (pick..=end).contains(&port) && m.is_free(port) {
            port
        } else {
            (pick..=end)
                .find(|&q| m.is_free(q) && q & 1 == port & 1)
                .or_else(|| (pick..=end).find(|&q| m.is_free(q)))
                .ok_or(Exhausted)?
        };
        m.take(q);
        self.block_used
            .insert((ai as u32, pidx(p) as u8, pick / bs), 1);
        let s = self.sources.entry(v6).or_insert(Source {
            addr: ai as u32,
            bindings: 0,
            blocks: Default::default(),
        });
        s.blocks[pidx(p)].push(pick);
        changes.push(BlockChange {
            proto: p,
            v6,
            v4: self.addrs[ai],
            first: pick,
            last: end,
            allocated: true,
        });
        Ok(q)
    }

    fn bump_block(&mut self, ai: usize, p: L4Proto, b: u16, bs: u16) {
        *self
            .block_used
            .entry((ai as u32, pidx(p) as u8, b / bs))
            .or_insert(0) += 1;
    }

    /// Marks `v4:port` taken for a static binding (ports outside the dynamic
    /// range are allowed and not tracked). Returns false if already taken.
    pub fn reserve(&mut self, p: L4Proto, v6: Ipv6Addr, v4: Ipv4Addr, port: u16) -> bool {
        let Some(ai) = self.index_of(v4) else {
            return false;
        };
        let (lo, hi) = self.ranges[pidx(p)];
        if (lo..=hi).contains(&port) {
            let m = self.map(ai, p);
            if !m.is_free(port) {
                return false;
            }
            m.take(port);
        }
        // Deterministic mode: a static binding is an exception; the
        // client's dynamic bindings stay on its own address and block.
        let home = match self.det {
            Some(d) => self.det_slot(&d, v6).1,
            None => ai,
        };
        let s = self.sources.entry(v6).or_insert(Source {
            addr: home as u32,
            bindings: 0,
            blocks: Default::default(),
        });
        s.bindings += 1;
        true
    }

    /// Gives `v4:port` back (binding of `v6` expired or removed).
    pub fn release(
        &mut self,
        p: L4Proto,
        v6: Ipv6Addr,
        v4: Ipv4Addr,
        port: u16,
        is_static: bool,
        changes: &mut Vec<BlockChange>,
    ) {
        let Some(ai) = self.index_of(v4) else {
            return;
        };
        let (lo, hi) = self.ranges[pidx(p)];
        if (lo..=hi).contains(&port) {
            if let Some(m) = self.maps[ai][pidx(p)].as_mut() {
                m.put(port);
            }
            if let (Some(d), false) = (self.det, is_static) {
                self.release_deterministic(&d, p, v6, changes);
            } else if let (Some(bs), false) = (self.block, is_static) {
                let key = (ai as u32, pidx(p) as u8, port / bs);
                let b = (port / bs) * bs;
                if let Some(c) = self.block_used.get_mut(&key) {
                    *c = c.saturating_sub(1);
                    if *c == 0 {
                        self.block_used.remove(&key);
                        if let Some(s) = self.sources.get_mut(&v6) {
                            s.blocks[pidx(p)].retain(|&x| x != b);
                        }
                        changes.push(BlockChange {
                            proto: p,
                            v6,
                            v4,
                            first: b,
                            last: b.saturating_add(bs - 1).min(hi),
                            allocated: false,
                        });
                    }
                }
            }
        }
        if let Some(s) = self.sources.get_mut(&v6) {
            s.bindings = s.bindings.saturating_sub(1);
            if s.bindings == 0 && s.blocks.iter().all(|b| b.is_empty()) {
                self.sources.remove(&v6);
            }
        }
    }

    /// Total ports in use over all addresses and protocols.
    pub fn ports_in_use(&self) -> u64 {
        self.maps
            .iter()
            .flat_map(|m| m.iter())
            .map(|m| m.as_ref().map_or(0, |pm| pm.used as u64))
            .sum()
    }

    /// The affine address of `v6`, if it has one.
    pub fn affinity(&self, v6: &Ipv6Addr) -> Option<Ipv4Addr> {
        self.sources.get(v6).map(|s| self.addrs[s.addr as usize])
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn pool(n: u8) -> Pool {
        Pool::new(
            &[(Ipv4Addr::new(192, 0, 2, 0), 32 - n)],
            [(1024, 65535); 3],
            None,
            None,
        )
        .unwrap()
    }

    #[test]
    fn port_map_marks_exactly_the_out_of_range_ports() {
        for (lo, hi) in [
            (0, 65535),
            (1024, 65535),
            (1, 1),
            (63, 64),
            (100, 1000),
            (0, 0),
        ] {
            let m = PortMap::new(lo, hi);
            for p in 0..=u16::MAX {
                assert_eq!(m.is_free(p), (lo..=hi).contains(&p), "{lo}-{hi} port {p}");
            }
        }
    }

    #[test]
    fn rfc4787_req3_preserves_free_source_port() {
        let mut p = pool(2);
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut ch = vec![];
        let (a, port) = p.allocate(L4Proto::Udp, v6, 40000, &mut ch).unwrap();
        assert_eq!(port, 40000);
        let (b, port2) = p.allocate(L4Proto::Udp, v6, 40000, &mut ch).unwrap();
        assert_eq!(a, b, "affinity");
        assert_ne!(port2, 40000);
        assert_eq!(port2 % 2, 0, "parity");
    }

    #[test]
    fn rfc4787_req4_parity_kept_below_range() {
        let mut p = pool(0);
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut ch = vec![];
        for sp in [53u16, 123, 7, 8] {
            let (_, port) = p.allocate(L4Proto::Udp, v6, sp, &mut ch).unwrap();
            assert!(port >= 1024);
            assert_eq!(port & 1, sp & 1);
        }
    }

    #[test]
    fn exhaustion_and_release() {
        let mut p = Pool::new(
            &[(Ipv4Addr::new(192, 0, 2, 1), 32)],
            [(1000, 1003); 3],
            None,
            None,
        )
        .unwrap();
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut ch = vec![];
        let got: Vec<_> = (0..4)
            .map(|_| p.allocate(L4Proto::Tcp, v6, 5, &mut ch).unwrap().1)
            .collect();
        assert_eq!(p.allocate(L4Proto::Tcp, v6, 5, &mut ch), Err(Exhausted));
        // Other protocols are separate.
        assert!(p.allocate(L4Proto::Udp, v6, 5, &mut ch).is_ok());
        for port in got {
            p.release(
                L4Proto::Tcp,
                v6,
                Ipv4Addr::new(192, 0, 2, 1),
                port,
                false,
                &mut ch,
            );
        }
        assert_eq!(p.usage()[0].1, [0, 1, 0]);
    }

    #[test]
    fn port_blocks_one_change_per_block() {
        let mut p = Pool::new(
            &[(Ipv4Addr::new(192, 0, 2, 1), 32)],
            [(1024, 65535); 3],
            Some(64),
            None,
        )
        .unwrap();
        let v6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut ch = vec![];
        let mut ports = vec![];
        for i in 0..100u16 {
            let (_, port) = p.allocate(L4Proto::Udp, v6, 20000 + i, &mut ch).unwrap();
            ports.push(port);
        }
        assert_eq!(ch.len(), 2, "100 ports in two blocks of 64");
        let blocks: std::collections::HashSet<u16> = ports.iter().map(|p| p / 64).collect();
        assert_eq!(blocks.len(), 2);
        ch.clear();
        for port in ports {
            p.release(
                L4Proto::Udp,
                v6,
                Ipv4Addr::new(192, 0, 2, 1),
                port,
                false,
                &mut ch,
            );
        }
        assert_eq!(ch.iter().filter(|c| !c.allocated).count(), 2);
        assert_eq!(p.ports_in_use(), 0);
    }

    fn det_pool(prefixes: &[(Ipv4Addr, u8)], bs: u16, clients: Option<(&str, u8)>) -> Pool {
        Pool::new(
            prefixes,
            [(1024, 65535); 3],
            Some(bs),
            Some(Deterministic {
                client_prefix_len: 128,
                clients: clients.map(|(a, l)| (a.parse().unwrap(), l)),
            }),
        )
        .unwrap()
    }

    fn client(i: u16) -> Ipv6Addr {
        Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, i)
    }

    /// RFC 7422 by index: client i of 2001:db8:100::/122 gets slot i, i.e.
    /// address i mod 2 and block i div 2 (1024-port blocks from 1024: 63
    /// per address, 126 slots), worked by hand.
    #[test]
    fn rfc7422_indexed_clients_get_their_own_block() {
        let a = Ipv4Addr::new(198, 51, 100, 64);
        let b = Ipv4Addr::new(198, 51, 100, 65);
        let mut p = det_pool(&[(a, 31)], 1024, Some(("2001:db8:100::", 122)));
        assert_eq!(p.deterministic_slots(), 126);
        let mut ch = vec![];
        let cases = [
            (0, a, 1024),
            (1, b, 1024),
            (2, a, 2048),
            (5, b, 3072),
            (63, b, 32768),
        ];
        for (i, v4, first) in cases {
            let got = p.allocate(L4Proto::Tcp, client(i), 5000, &mut ch).unwrap();
            assert_eq!(got.0, v4, "client {i}");
            assert!(
                (first..first + 1024).contains(&got.1),
                "client {i}: {got:?}"
            );
        }
        // Every client of the range: a block of its own.
        let mut seen = std::collections::HashSet::new();
        for i in 0..64 {
            let (v4, first, last) = p.deterministic_block(L4Proto::Udp, client(i)).unwrap();
            assert_eq!(last - first, 1023);
            assert!(seen.insert((v4, first)), "client {i} shares a block");
        }
    }

    /// Pure function: the arrival order (and which other clients came)
    /// changes nothing, in index and hash mode.
    #[test]
    fn rfc7422_blocks_do_not_depend_on_arrival_order() {
        for clients in [Some(("2001:db8:100::", 122)), None] {
            let pfx = [(Ipv4Addr::new(198, 51, 100, 64), 30)];
            let mut fwd = det_pool(&pfx, 512, clients);
            let mut rev = det_pool(&pfx, 512, clients);
            let mut ch = vec![];
            let ids: Vec<u16> = (0..60).collect();
            let mut got = HashMap::new();
            for &i in &ids {
                let (v4, port) = fwd
                    .allocate(L4Proto::Udp, client(i), 40000, &mut ch)
                    .unwrap();
                got.insert(i, (v4, port / 512));
            }
            for &i in ids.iter().rev().step_by(2) {
                let (v4, port) = rev.allocate(L4Proto::Udp, client(i), 999, &mut ch).unwrap();
                assert_eq!(got[&i], (v4, port / 512), "{clients:?} client {i}");
            }
        }
    }

    /// One block per client and protocol: its ports run out after the
    /// block; one log change when its first binding comes, one when its
    /// last goes; the source port is kept when it lies in the block.
    #[test]
    fn rfc7422_one_block_per_client_and_one_log_line_each_way() {
        let a = Ipv4Addr::new(192, 0, 2, 8);
        let mut p = det_pool(&[(a, 32)], 64, None);
        let v6 = client(7);
        let (_, first, last) = p.deterministic_block(L4Proto::Tcp, v6).unwrap();
        let mut ch = vec![];
        let mut ports = vec![];
        for _ in 0..64 {
            ports.push(p.allocate(L4Proto::Tcp, v6, first + 3, &mut ch).unwrap().1);
        }
        assert_eq!(ports[0], first + 3, "source port kept");
        assert!(ports.iter().all(|q| (first..=last).contains(q)));
        assert_eq!(p.allocate(L4Proto::Tcp, v6, first, &mut ch), Err(Exhausted));
        assert_eq!(ch.len(), 1);
        assert!(ch[0].allocated && ch[0].first == first && ch[0].last == last);
        ch.clear();
        for q in ports {
            p.release(L4Proto::Tcp, v6, a, q, false, &mut ch);
        }
        assert_eq!(ch.len(), 1);
        assert!(!ch[0].allocated && ch[0].first == first);
        assert_eq!(p.ports_in_use(), 0);
    }

    /// The way back: an IPv4 transport address names its block, slot and
    /// numbered client, for every client of the range.
    #[test]
    fn rfc7422_owner_of_a_port_is_the_numbered_client() {
        let mut p = det_pool(
            &[(Ipv4Addr::new(198, 51, 100, 64), 30)],
            1024,
            Some(("2001:db8:100::", 122)),
        );
        p.withhold(Ipv4Addr::new(198, 51, 100, 65));
        for i in 0..64 {
            let (v4, first, last) = p.deterministic_block(L4Proto::Tcp, client(i)).unwrap();
            let o = p.deterministic_owner(L4Proto::Tcp, v4, first + 77).unwrap();
            assert_eq!(
                (o.first, o.last, o.numbered),
                (first, last, Some(client(i)))
            );
            assert_eq!(o.slot, u64::from(i));
        }
        // Slot 64 and up: no numbered client (only hashed ones could be there).
        let last_slot = p.deterministic_owner(L4Proto::Tcp, Ipv4Addr::new(198, 51, 100, 67), 65535);
        assert_eq!(
            last_slot.map(|o| (o.slot, o.numbered)),
            Some((3 * 63 - 1, None))
        );
        assert_eq!(
            p.deterministic_owner(L4Proto::Tcp, Ipv4Addr::new(198, 51, 100, 65), 5000),
            None
        );
        assert_eq!(
            p.deterministic_owner(L4Proto::Tcp, Ipv4Addr::new(198, 51, 100, 64), 80),
            None
        );
    }

    /// Two hashed clients in one slot share the block: each binding has
    /// its own port, and each client gets its own log lines.
    #[test]
    fn rfc7422_hashed_clients_sharing_a_slot_each_get_log_lines() {
        let a = Ipv4Addr::new(192, 0, 2, 8);
        // One address, 1024-port blocks from 63488: 2 slots.
        let mut p = Pool::new(
            &[(a, 32)],
            [(63488, 65535); 3],
            Some(1024),
            Some(Deterministic {
                client_prefix_len: 128,
                clients: None,
            }),
        )
        .unwrap();
        assert_eq!(p.deterministic_slots(), 2);
        let slot = |p: &Pool, i| p.deterministic_block(L4Proto::Udp, client(i)).unwrap();
        let x = slot(&p, 1);
        let j = (2..100)
            .find(|&j| slot(&p, j) == x)
            .expect("a second client in the slot");
        let mut ch = vec![];
        let (_, p1) = p.allocate(L4Proto::Udp, client(1), 64000, &mut ch).unwrap();
        let (_, p2) = p.allocate(L4Proto::Udp, client(j), 64000, &mut ch).unwrap();
        assert_ne!(p1, p2);
        assert_eq!(ch.len(), 2);
        assert_eq!((ch[0].v6, ch[1].v6), (client(1), client(j)));
    }

    /// Stability pin (values recorded from this version): the hashed slot
    /// is part of the contract between farm instances and versions; a change
    /// renumbers every hashed client, so it must be deliberate (ADR 0011).
    #[test]
    fn rfc7422_hashed_slot_is_pinned() {
        let p = det_pool(&[(Ipv4Addr::new(198, 51, 100, 0), 24)], 1024, None);
        let got = p.deterministic_block(L4Proto::Tcp, "2001:db8:100::1".parse().unwrap());
        assert_eq!(got, Some(PINNED_HASHED));
    }

    const PINNED_HASHED: (Ipv4Addr, u16, u16) = (Ipv4Addr::new(198, 51, 100, 164), 60416, 61439);

    /// A withheld address (gateway-v4 inside the pool) is never a slot.
    #[test]
    fn rfc7422_skips_the_withheld_address() {
        let mut p = det_pool(
            &[(Ipv4Addr::new(192, 0, 2, 0), 30)],
            1024,
            Some(("2001:db8:100::", 120)),
        );
        p.withhold(Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(p.deterministic_slots(), 3 * 63);
        for i in 0..189 {
            let (v4, _, _) = p.deterministic_block(L4Proto::Icmp, client(i)).unwrap();
            assert_ne!(v4, Ipv4Addr::new(192, 0, 2, 1));
        }
    }

    /// Clients are /N prefixes: two addresses of one /64 are one client.
    #[test]
    fn rfc7422_client_prefix_len_groups_a_site() {
        let mut p = Pool::new(
            &[(Ipv4Addr::new(192, 0, 2, 8), 30)],
            [(1024, 65535); 3],
            Some(256),
            Some(Deterministic {
                client_prefix_len: 64,
                clients: Some(("2001:db8:100::".parse().unwrap(), 56)),
            }),
        )
        .unwrap();
        let a: Ipv6Addr = "2001:db8:100:7::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8:100:7::abcd".parse().unwrap();
        let c: Ipv6Addr = "2001:db8:100:8::1".parse().unwrap();
        let blk = |x| p.deterministic_block(L4Proto::Tcp, x).unwrap();
        assert_eq!(blk(a), blk(b));
        assert_ne!(blk(a), blk(c));
        // Site 7 of the /56 is slot 7: address 7 mod 4 = 3, block 1.
        assert_eq!(blk(a), (Ipv4Addr::new(192, 0, 2, 11), 1280, 1535));
        let mut ch = vec![];
        p.allocate(L4Proto::Tcp, a, 1, &mut ch).unwrap();
        p.allocate(L4Proto::Tcp, b, 1, &mut ch).unwrap();
        assert_eq!(ch.len(), 1, "one block line for the site");
        assert_eq!(ch[0].v6, "2001:db8:100:7::".parse::<Ipv6Addr>().unwrap());
    }
}
