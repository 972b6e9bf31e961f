//! [`RetryPolicy`]: how often and how patiently a store operation is tried
//! again after a transient failure ([`StorageError::is_transient`]).

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Result, StorageError};

/// Exponential backoff: the pause after the `n`th failed attempt is
/// `first_backoff × 2^(n-1)`, capped at `max_backoff`; at most `attempts` tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Tries in all, the first included (at least 1).
    pub attempts: u32,
    /// Pause after the first failure, ms.
    pub first_backoff_ms: u64,
    /// Longest pause, ms.
    pub max_backoff_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: 4, first_backoff_ms: 50, max_backoff_ms: 1_000 }
    }
}

impl RetryPolicy {
    /// The pause after failed attempt `attempt` (1 for the first), or `None`
    /// when that was the last one allowed.
    #[must_use]
    pub fn backoff(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.attempts.max(1) {
            return None;
        }
        let doubled = self.first_backoff_ms.saturating_mul(1u64.checked_shl(attempt.saturating_sub(1)).unwrap_or(u64::MAX));
        Some(Duration::from_millis(doubled.min(self.max_backoff_ms)))
    }

    /// Runs `op` until it succeeds, fails with a permanent error, or the
    /// attempts run out (the last error is returned). Retries are counted in
    /// `dispatch_store_retries_total`.
    pub async fn run<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut attempt = 1;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() => match self.backoff(attempt) {
                    Some(pause) => {
                        metrics::counter!("dispatch_store_retries_total").increment(1);
                        tracing::debug!(%e, attempt, ?pause, "store operation failed; retrying");
                        tokio::time::sleep(pause).await;
                        attempt += 1;
                    }
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }

    /// Checks the numbers make sense.
    pub fn validate(&self) -> Result<()> {
        if self.attempts == 0 || self.first_backoff_ms > self.max_backoff_ms {
            return Err(StorageError::Backend(format!(
                "retry policy: attempts must be at least 1 and first_backoff_ms ({}) at most max_backoff_ms ({})",
                self.first_backoff_ms, self.max_backoff_ms
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[test]
    fn backoff_doubles_up_to_the_cap_and_stops_at_the_last_attempt() {
        let p = RetryPolicy { attempts: 6, first_backoff_ms: 100, max_backoff_ms: 500 };
        let pauses: Vec<_> = (1..=6).map(|a| p.backoff(a).map(|d| d.as_millis())).collect();
        assert_eq!(pauses, vec![Some(100), Some(200), Some(400), Some(500), Some(500), None]);
        let huge = RetryPolicy { attempts: 100, first_backoff_ms: 1, max_backoff_ms: 10_000 };
        assert_eq!(huge.backoff(99), Some(Duration::from_secs(10)), "no overflow past 64 doublings");
        assert!(RetryPolicy { attempts: 0, ..p }.validate().is_err());
        assert!(RetryPolicy { first_backoff_ms: 600, ..p }.validate().is_err());
        p.validate().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_with_pauses_permanent_ones_are_not() {
        let p = RetryPolicy { attempts: 3, first_backoff_ms: 100, max_backoff_ms: 1_000 };
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let out = p
            .run(|| async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err(StorageError::Unavailable("timeout".into())),
                    _ => Ok(7),
                }
            })
            .await;
        assert_eq!(out.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(started.elapsed(), Duration::from_millis(300), "100 ms then 200 ms");

        calls.store(0, Ordering::SeqCst);
        let out: Result<()> = p
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(StorageError::Unavailable("down".into()))
            })
            .await;
        assert!(out.unwrap_err().is_transient());
        assert_eq!(calls.load(Ordering::SeqCst), 3, "gives up after the attempts");

        calls.store(0, Ordering::SeqCst);
        let out: Result<()> = p
            .run(|| async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(StorageError::Backend("syntax".into()))
            })
            .await;
        assert!(out.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "a permanent error is not retried");
    }
}
