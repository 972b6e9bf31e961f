//! The pause between attempts of a delivery: exponential, capped, jittered.
//!
//! After the n-th failure the ceiling is `first · 2^(n−1)`, at most `max`;
//! the pause is drawn from the upper half of it ("equal jitter"), so
//! endpoints that failed together do not come back in lockstep, and no pause
//! is ever much shorter than the schedule says. The draw is a hash of the
//! event's position, the endpoint and the attempt: spread across events,
//! the same when a test repeats it.

use std::time::Duration;

/// An exponential schedule with a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling after the first failure.
    pub first: Duration,
    /// The largest ceiling.
    pub max: Duration,
}

impl Backoff {
    /// The ceiling after `failures` failures (at least one).
    #[must_use]
    pub fn ceiling(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        let ms = u64::try_from(self.first.as_millis()).unwrap_or(u64::MAX).saturating_mul(factor);
        Duration::from_millis(ms).min(self.max)
    }

    /// The pause after `failures` failures, jittered by `seed`: in `[ceiling / 2, ceiling]`.
    #[must_use]
    pub fn pause(&self, failures: u32, seed: u64) -> Duration {
        let ceiling = self.ceiling(failures);
        let unit = (rapidhash::v3::rapidhash_v3(&seed.to_le_bytes()) >> 11) as f64 / (1u64 << 53) as f64;
        ceiling / 2 + ceiling.mul_f64(0.5 * unit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_schedule_doubles_to_its_cap() {
        let b = Backoff { first: Duration::from_secs(1), max: Duration::from_secs(300) };
        let ceilings: Vec<u64> = (1..=11).map(|n| b.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        assert_eq!(b.ceiling(u32::MAX), b.max, "no overflow");
    }

    proptest! {
        /// Every pause lies in the upper half of its ceiling, which never
        /// shrinks from one failure to the next and never passes the cap.
        #[test]
        fn pauses_lie_in_the_upper_half_of_a_growing_capped_ceiling(
            first_ms in 1u64..10_000,
            extra_ms in 0u64..1_000_000,
            failures in 1u32..200,
            seed in any::<u64>(),
        ) {
            let b = Backoff { first: Duration::from_millis(first_ms), max: Duration::from_millis(first_ms + extra_ms) };
            let (ceiling, pause) = (b.ceiling(failures), b.pause(failures, seed));
            prop_assert!(pause <= ceiling && pause >= ceiling / 2, "{pause:?} outside [{:?}, {ceiling:?}]", ceiling / 2);
            prop_assert!(ceiling <= b.max);
            prop_assert!(b.ceiling(failures + 1) >= ceiling);
            prop_assert_eq!(pause, b.pause(failures, seed), "the same draw for the same seed");
        }
    }

    #[test]
    fn different_events_draw_different_pauses() {
        let b = Backoff { first: Duration::from_secs(8), max: Duration::from_secs(8) };
        let pauses: std::collections::HashSet<Duration> = (0..100).map(|seed| b.pause(1, seed)).collect();
        assert!(pauses.len() > 90, "jitter spreads the pauses: {} distinct of 100", pauses.len());
    }
}
