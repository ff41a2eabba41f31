//! Time as the core sees it: passed in by the caller, never read here.

use core::time::Duration;

/// Milliseconds since an arbitrary epoch chosen by the caller (the daemon
/// uses process start; `replay` uses the capture's first timestamp; tests use
/// any number). Monotonic by contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp(0);

    pub const fn from_secs(s: u64) -> Self {
        Timestamp(s * 1000)
    }
    pub const fn from_millis(ms: u64) -> Self {
        Timestamp(ms)
    }
    pub const fn as_millis(self) -> u64 {
        self.0
    }
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }
    /// `self + d`, saturating (also available as `self + d`).
    pub fn saturating_add(self, d: Duration) -> Self {
        Timestamp(self.0.saturating_add(d.as_millis() as u64))
    }
    /// Time from `earlier` to `self` (zero if `earlier` is later).
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl core::ops::Add<Duration> for Timestamp {
    type Output = Timestamp;
    fn add(self, d: Duration) -> Timestamp {
        self.saturating_add(d)
    }
}
