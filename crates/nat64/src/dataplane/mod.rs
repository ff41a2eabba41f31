//! The data plane: one worker thread per TUN queue (ADR 0005), each reading a
//! packet into a buffer with [`xlat::HEADROOM`] bytes in front, translating
//! it in place and writing the result back to the TUN.

pub mod tun;
pub mod udp_gso;
pub mod uring;
pub mod worker;

use nat64_core::time::Timestamp;
use std::time::Instant;

/// Milliseconds since process start: the daemon's [`Timestamp`] epoch.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            start: Instant::now(),
        }
    }
    #[inline]
    pub fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.start.elapsed().as_millis() as u64)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
