//! The `kernel` NAPT backend's address pool (docs/operator.md §2.2): each IPv6 source gets
//! one inner IPv4 address from `inner-pool`; the host kernel's MASQUERADE
//! does the ports.
//!
//! A client's *home* address is a pure function of its IPv6 address and
//! `inner-pool`: slot `mix_v6(v6, 0) mod N` of the pool's `N` usable
//! addresses (a fixed hash, not seeded per process or per host). The
//! collision rule: when the home address is taken (or withheld or
//! blocked), the client gets the next free address after it, wrapping
//! around. So two HA nodes with one configuration give every client its
//! home address without talking to each other; only a *displaced* client
//! (one whose home was taken when it came) depends on arrival order and
//! may get another address on the other node (`kernel_leases_displaced`
//! counts them; about n/2N of n clients). The lease file keeps every
//! address across restarts of one node.

use super::pool::mix_v6;
use std::net::{Ipv4Addr, Ipv6Addr};

pub(crate) struct KernelPool {
    net: u32,
    /// First usable offset and count (network/broadcast skipped when the
    /// prefix is shorter than /31).
    first: u32,
    count: u32,
    used: Vec<u64>,
    in_use: u32,
    /// Addresses never handed out although free (SIIT mode: the IPv4 side
    /// of explicit address mappings inside the dynamic pool, as Tayga
    /// carves `map` addresses out of its `dynamic-pool`).
    blocked: Vec<u64>,
    /// The translator's own address, never handed out ([`KernelPool::withhold`]).
    withheld: Option<Ipv4Addr>,
}

impl KernelPool {
    pub fn new(net: Ipv4Addr, len: u8) -> Result<KernelPool, String> {
        if len > 32 {
            return Err(format!("inner-pool {net}/{len}: length must be 0-32"));
        }
        if len < 8 {
            return Err(format!(
                "inner-pool {net}/{len} is larger than a /8; use a slice such as 100.64.0.0/16"
            ));
        }
        let n = u32::from(net);
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        if n & !mask != 0 {
            return Err(format!(
                "inner-pool {net}/{len} has host bits set; use {}/{len}",
                Ipv4Addr::from(n & mask)
            ));
        }
        let size = 1u64 << (32 - len as u32);
        let (first, count) = if len >= 31 {
            (0, size as u32)
        } else {
            (1, (size - 2) as u32)
        };
        Ok(KernelPool {
            net: n,
            first,
            count,
            used: vec![0; (size as usize).div_ceil(64)],
            in_use: 0,
            blocked: Vec::new(),
            withheld: None,
        })
    }

    pub fn contains(&self, a: Ipv4Addr) -> bool {
        let x = u32::from(a).wrapping_sub(self.net);
        x >= self.first && x < self.first + self.count
    }

    fn bit(&self, off: u32) -> bool {
        self.used[off as usize / 64] & (1 << (off % 64)) != 0
    }
    fn is_blocked(&self, off: u32) -> bool {
        self.blocked
            .get(off as usize / 64)
            .is_some_and(|w| w & (1 << (off % 64)) != 0)
    }

    /// Never hands out `a` (the translator's own address inside the pool,
    /// as Tayga carves `ipv4-addr` out of its `dynamic-pool`); a lease
    /// restored for it is refused.
    pub fn withhold(&mut self, a: Ipv4Addr) {
        self.withheld = Some(a);
    }

    /// Replaces the set of blocked addresses with those for which
    /// `covered` is true (leases already given keep their address).
    pub fn block_where(&mut self, covered: impl Fn(Ipv4Addr) -> bool) {
        self.blocked = vec![0; self.used.len()];
        for off in self.first..self.first + self.count {
            if covered(Ipv4Addr::from(self.net + off)) {
                self.blocked[off as usize / 64] |= 1 << (off % 64);
            }
        }
    }
    fn set(&mut self, off: u32, v: bool) {
        let w = &mut self.used[off as usize / 64];
        if v {
            *w |= 1 << (off % 64);
        } else {
            *w &= !(1 << (off % 64));
        }
    }

    /// The home address of `v6` (see the module documentation).
    pub fn home(&self, v6: &Ipv6Addr) -> Ipv4Addr {
        let start = (mix_v6(v6, 0) % self.count as u64) as u32;
        Ipv4Addr::from(self.net + self.first + start)
    }

    /// An inner address for `v6`, or `None` when the pool is exhausted.
    pub fn allocate(&mut self, v6: &Ipv6Addr) -> Option<Ipv4Addr> {
        if self.in_use >= self.count {
            return None;
        }
        let start = (mix_v6(v6, 0) % self.count as u64) as u32;
        for i in 0..self.count {
            let off = self.first + (start + i) % self.count;
            if !self.bit(off)
                && !self.is_blocked(off)
                && self.withheld != Some(Ipv4Addr::from(self.net + off))
            {
                self.set(off, true);
                self.in_use += 1;
                return Some(Ipv4Addr::from(self.net + off));
            }
        }
        None
    }

    /// Marks `a` taken (static map or restored lease). False if taken.
    pub fn reserve(&mut self, a: Ipv4Addr) -> bool {
        if self.withheld == Some(a) {
            return false;
        }
        if !self.contains(a) {
            return true;
        }
        let off = u32::from(a) - self.net;
        if self.bit(off) {
            return false;
        }
        self.set(off, true);
        self.in_use += 1;
        true
    }

    pub fn release(&mut self, a: Ipv4Addr) {
        if self.contains(a) {
            let off = u32::from(a) - self.net;
            if self.bit(off) {
                self.set(off, false);
                self.in_use = self.in_use.saturating_sub(1);
            }
        }
    }

    pub fn in_use(&self) -> u32 {
        self.in_use
    }
    pub fn capacity(&self) -> u32 {
        self.count
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn kernel_pool_exhausts_and_recovers() {
        let mut p = KernelPool::new(Ipv4Addr::new(100, 64, 0, 0), 30).unwrap();
        assert_eq!(p.capacity(), 2);
        let a: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::2".parse().unwrap();
        let x = p.allocate(&a).unwrap();
        let y = p.allocate(&b).unwrap();
        assert_ne!(x, y);
        assert!(p.contains(x) && p.contains(y));
        assert_eq!(p.allocate(&a), None);
        p.release(x);
        assert_eq!(p.allocate(&b), Some(x));
        assert!(KernelPool::new(Ipv4Addr::new(100, 64, 0, 1), 16).is_err());
    }

    const PINNED_HOME: Ipv4Addr = Ipv4Addr::new(100, 64, 7, 127);

    /// HA pairs rely on it: a client's address does not depend on the
    /// process, on the clients before it (unless they took its home), or
    /// on their order; a displaced client takes the next free address.
    #[test]
    fn home_address_is_a_pure_function_of_the_client() {
        let clients: Vec<Ipv6Addr> = (1..=200u16)
            .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i))
            .collect();
        let mut a = KernelPool::new(Ipv4Addr::new(100, 64, 0, 0), 16).unwrap();
        let mut b = KernelPool::new(Ipv4Addr::new(100, 64, 0, 0), 16).unwrap();
        let fwd: Vec<_> = clients.iter().map(|c| a.allocate(c).unwrap()).collect();
        let rev: Vec<_> = clients
            .iter()
            .rev()
            .map(|c| b.allocate(c).unwrap())
            .collect();
        for (i, c) in clients.iter().enumerate() {
            assert_eq!(fwd[i], a.home(c), "{c} displaced in a /16 of 200");
            assert_eq!(fwd[i], rev[clients.len() - 1 - i]);
        }
        // Stability pin (value recorded from this version): a change of
        // the hash renumbers every client of an HA pair whose nodes run
        // different versions, so it must be a deliberate, documented step.
        assert_eq!(a.home(&"2001:db8:1::1".parse().unwrap()), PINNED_HOME);
        // Collision rule: taken home -> next free address.
        let mut p = KernelPool::new(Ipv4Addr::new(100, 64, 0, 0), 16).unwrap();
        let c = clients[7];
        let h = p.home(&c);
        assert!(p.reserve(h));
        assert_eq!(p.allocate(&c), Some(Ipv4Addr::from(u32::from(h) + 1)));
    }
}
