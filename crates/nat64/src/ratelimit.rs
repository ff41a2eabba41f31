//! Token bucket for translator-originated ICMP errors (RFC 4443 §2.4(f), RFC 1812 §4.3.2.8: "rate-limited
//! by a token bucket, counted"). Consulted only on the error path, so a
//! mutex is fine here.

use nat64_core::time::Timestamp;
use std::sync::Mutex;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Timestamp,
}

/// `rate` tokens per second, at most `burst` stored.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    inner: Mutex<Bucket>,
}

impl TokenBucket {
    pub fn new(rate: u32, burst: u32) -> TokenBucket {
        TokenBucket {
            rate: f64::from(rate),
            burst: f64::from(burst),
            inner: Mutex::new(Bucket {
                tokens: f64::from(burst),
                last: Timestamp::ZERO,
            }),
        }
    }

    /// Takes one token if there is one.
    pub fn allow(&self, now: Timestamp) -> bool {
        if self.rate <= 0.0 {
            return false;
        }
        let mut b = match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let dt = now.since(b.last).as_secs_f64();
        b.last = b.last.max(now);
        b.tokens = (b.tokens + dt * self.rate).min(self.burst);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let tb = TokenBucket::new(10, 3);
        let t0 = Timestamp::from_millis(1000);
        assert!(tb.allow(t0));
        assert!(tb.allow(t0));
        assert!(tb.allow(t0));
        assert!(!tb.allow(t0));
        // 100 ms at 10/s = one token
        assert!(tb.allow(Timestamp::from_millis(1100)));
        assert!(!tb.allow(Timestamp::from_millis(1100)));
    }

    #[test]
    fn zero_rate_sends_nothing() {
        let tb = TokenBucket::new(0, 5);
        assert!(!tb.allow(Timestamp::from_millis(5)));
    }
}
