//! Per-connection rate limits.

use std::time::Instant;

/// A token bucket: `rate` per second, bursts of up to twice that.
pub(super) struct Bucket {
    rate: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub(super) fn new(rate: u32) -> Self {
        let rate = f64::from(rate.max(1));
        Self { rate, tokens: rate * 2.0, at: Instant::now() }
    }

    /// Takes a token if one is left at `now`.
    pub(super) fn take(&mut self, now: Instant) -> bool {
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.rate * 2.0);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_a_burst_of_twice_its_rate_then_refuses() {
        let mut bucket = Bucket::new(5);
        let now = Instant::now();
        let taken = (0..20).filter(|_| bucket.take(now)).count();
        assert_eq!(taken, 10);
    }
}
