//! The fragment cache (RFC 6146 §3.4, §3.5 on fragments): a non-first fragment has no
//! transport header, so the ports its first fragment carried are remembered
//! under (source, destination, protocol, identification) for a short time.
//!
//! Out-of-order fragments (a later fragment before the first) are **dropped**
//! with [`crate::DropReason::FragmentNoState`]: holding them would need the
//! packet bytes, which the mapping never sees. Senders retransmit; the cache
//! is bounded in count (oldest entry evicted first) and in time
//! (`Timeouts::frag`).

use crate::time::Timestamp;
use crate::xlat::L4Proto;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: L4Proto,
    pub ident: u32,
}

pub(crate) struct FragCache {
    map: HashMap<FragKey, (u16, u16, u64)>,
    order: VecDeque<(FragKey, u64)>,
    cap: usize,
}

impl FragCache {
    pub fn new(cap: usize) -> FragCache {
        FragCache {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    /// Remembers the ports of a first fragment until `expires`.
    pub fn insert(&mut self, k: FragKey, ports: (u16, u16), now: Timestamp, expires: Timestamp) {
        self.expire(now);
        while self.map.len() >= self.cap {
            match self.order.pop_front() {
                Some((old, exp)) => {
                    if self.map.get(&old).is_some_and(|e| e.2 == exp) {
                        self.map.remove(&old);
                    }
                }
                None => break,
            }
        }
        self.map.insert(k, (ports.0, ports.1, expires.0));
        self.order.push_back((k, expires.0));
    }

    /// The ports of the datagram `k` belongs to, if its first fragment was
    /// seen and has not expired.
    pub fn get(&self, k: &FragKey, now: Timestamp) -> Option<(u16, u16)> {
        self.map.get(k).filter(|e| e.2 > now.0).map(|e| (e.0, e.1))
    }

    pub fn expire(&mut self, now: Timestamp) {
        while let Some(&(k, exp)) = self.order.front() {
            if exp > now.0 {
                break;
            }
            self.order.pop_front();
            if self.map.get(&k).is_some_and(|e| e.2 == exp) {
                self.map.remove(&k);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn k(i: u32) -> FragKey {
        FragKey {
            src: "2001:db8::1".parse().unwrap(),
            dst: "64:ff9b::1.2.3.4".parse().unwrap(),
            proto: L4Proto::Udp,
            ident: i,
        }
    }

    #[test]
    fn bounded_in_time_and_count() {
        let mut c = FragCache::new(2);
        let t0 = Timestamp::from_secs(10);
        c.insert(k(1), (1, 2), t0, Timestamp::from_secs(15));
        assert_eq!(c.get(&k(1), Timestamp::from_secs(14)), Some((1, 2)));
        assert_eq!(c.get(&k(1), Timestamp::from_secs(15)), None);
        c.insert(k(2), (3, 4), t0, Timestamp::from_secs(15));
        c.insert(k(3), (5, 6), t0, Timestamp::from_secs(15));
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(&k(1), t0), None, "oldest evicted");
        c.expire(Timestamp::from_secs(20));
        assert_eq!(c.len(), 0);
    }
}
