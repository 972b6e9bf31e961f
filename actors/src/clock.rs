//! [`Clock`]: wall-clock timestamps that follow tokio's clock.
//!
//! Timestamps are anchored to the system clock once, then advance with
//! `tokio::time::Instant`. In production that is the wall clock; in tests
//! with `tokio::time::pause()` time jumps with the runtime's, so an offer's
//! deadline and the timer that enforces it can never disagree.

use dispatch_engine::Timestamp;

/// A source of [`Timestamp`]s.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    base_ms: i64,
    base: tokio::time::Instant,
}

impl Clock {
    /// A clock anchored to the system time now.
    #[must_use]
    pub fn system() -> Self {
        let base_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self { base_ms, base: tokio::time::Instant::now() }
    }

    /// A clock that reads `at` now.
    #[must_use]
    pub fn starting_at(at: Timestamp) -> Self {
        Self { base_ms: at.0, base: tokio::time::Instant::now() }
    }

    /// The time now.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        let elapsed = i64::try_from(self.base.elapsed().as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.base_ms.saturating_add(elapsed))
    }

    /// How long from now until `at` (zero if it has passed).
    #[must_use]
    pub fn until(&self, at: Timestamp) -> std::time::Duration {
        std::time::Duration::from_millis(u64::try_from(at.0.saturating_sub(self.now().0)).unwrap_or(0))
    }
}
