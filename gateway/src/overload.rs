//! Overload detection for GPS shedding, from two signs that dispatch is
//! slowing:
//! - the runtime runs a timer late: a task ticks every [`TICK`], and a tick
//!   more than [`LATE`] after it was due means every worker was busy that
//!   long, so frames of every kind are waiting;
//! - posting a job takes more than [`SLOW_POST`] to be acknowledged: the
//!   dispatcher, the store or the job actors are behind.
//!
//! [`SUSTAINED`] such signs in a row (one stall, a slow disk or a busy
//! neighbour, is not overload) make the gateway *lagging* for [`HOLD`], and each
//! connection takes at most one GPS fix per `overload_gps_every_secs`
//! (default [`THIN_TO`]; 0 turns it off) ([`GpsThinning`]),
//! shedding the rest right after parsing: no validation, no link, no actor,
//! no cell. Dispatch frames are never shed, so jobs stop queueing behind
//! fixes. A thinned stream costs positions up to that interval plus the
//! phone's own period old: 5 s + 4 s, about 135 m at 15 m/s.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use tokio::time::MissedTickBehavior;

/// How often the runtime's promptness is sampled.
pub(crate) const TICK: Duration = Duration::from_millis(10);
/// A tick this late means the runtime is behind.
pub(crate) const LATE: Duration = Duration::from_millis(20);
/// A job posted and acknowledged slower than this is a sign of overload.
pub(crate) const SLOW_POST: Duration = Duration::from_millis(50);
/// Signs in a row (late ticks, or slow posts) that mean overload.
pub(crate) const SUSTAINED: u32 = 5;
/// How long the last of them keeps the gateway lagging.
pub(crate) const HOLD: Duration = Duration::from_secs(1);
/// The default of `overload_gps_every_secs`: while lagging, a connection's
/// fixes are taken at most this often. A phone sends one every few seconds,
/// so a shorter bound would shed almost nothing.
pub(crate) const THIN_TO: Duration = Duration::from_secs(5);

/// Whether the gateway is behind: set by [`SUSTAINED`] late ticks or slow
/// posts in a row, for [`HOLD`].
#[derive(Debug)]
pub(crate) struct Overload {
    origin: Instant,
    /// Late ticks in a row so far.
    late_in_a_row: AtomicU32,
    /// Slow posts in a row so far.
    slow_posts_in_a_row: AtomicU32,
    /// Microseconds after `origin` until which the gateway counts as lagging.
    lagging_until_us: AtomicU64,
}

impl Overload {
    fn new() -> Self {
        Self {
            origin: Instant::now(),
            late_in_a_row: AtomicU32::new(0),
            slow_posts_in_a_row: AtomicU32::new(0),
            lagging_until_us: AtomicU64::new(0),
        }
    }

    /// Starts the ticking task; it ends once the last handle is dropped.
    pub(crate) fn start() -> Arc<Self> {
        let lag = Arc::new(Self::new());
        let weak: Weak<Self> = Arc::downgrade(&lag);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                let due = tick.tick().await.into_std();
                let Some(lag) = weak.upgrade() else { break };
                lag.observe_tick(due, Instant::now());
            }
        });
        lag
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_micros()).unwrap_or(u64::MAX)
    }

    /// A tick due at `due` ran at `ran`.
    pub(crate) fn observe_tick(&self, due: Instant, ran: Instant) {
        let late = ran.saturating_duration_since(due);
        if late > LATE {
            metrics::histogram!("dispatch_runtime_late_seconds").record(late.as_secs_f64());
        }
        self.sign(&self.late_in_a_row, late > LATE, ran);
    }

    /// A job's posting, acknowledged at `now`, took `took`.
    pub(crate) fn observe_post(&self, took: Duration, now: Instant) {
        self.sign(&self.slow_posts_in_a_row, took > SLOW_POST, now);
    }

    fn sign(&self, in_a_row: &AtomicU32, behind: bool, now: Instant) {
        if !behind {
            in_a_row.store(0, Ordering::Relaxed);
        } else if in_a_row.fetch_add(1, Ordering::Relaxed) + 1 >= SUSTAINED {
            if !self.lagging(now) {
                metrics::counter!("dispatch_overload_episodes_total").increment(1);
            }
            self.lagging_until_us.fetch_max(self.micros(now + HOLD), Ordering::Relaxed);
        }
    }

    /// Whether the gateway was behind within [`HOLD`] before `now`.
    pub(crate) fn lagging(&self, now: Instant) -> bool {
        self.micros(now) < self.lagging_until_us.load(Ordering::Relaxed)
    }
}

/// One connection's GPS admission while the gateway lags.
#[derive(Debug)]
pub(crate) struct GpsThinning {
    /// At most one fix per this while lagging; `None`: never thinned.
    every: Option<Duration>,
    last_taken: Option<Instant>,
}

impl GpsThinning {
    /// Thinning to one fix per `every` while lagging (`Duration::ZERO`: off).
    pub(crate) fn new(every: Duration) -> Self {
        Self { every: (!every.is_zero()).then_some(every), last_taken: None }
    }

    /// Whether to take a fix arriving at `now`: always when the runtime keeps
    /// up (or thinning is off), else only the first in each interval.
    pub(crate) fn admit(&mut self, now: Instant, lagging: bool) -> bool {
        let due = match self.every {
            Some(every) if lagging => self.last_taken.is_none_or(|last| now.saturating_duration_since(last) >= every),
            _ => true,
        };
        if due {
            self.last_taken = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_ticks_in_a_row_make_the_gateway_lag_for_the_hold_then_not() {
        let lag = Overload::new();
        let t0 = lag.origin + Duration::from_secs(5);
        lag.observe_tick(t0, t0 + LATE / 2);
        assert!(!lag.lagging(t0 + LATE), "a tick within the bound is not lag");
        // One short of the streak, then a prompt tick: a stall, not overload.
        for _ in 1..SUSTAINED {
            lag.observe_tick(t0, t0 + LATE * 2);
        }
        lag.observe_tick(t0, t0);
        assert!(!lag.lagging(t0 + LATE * 2));
        let ran = t0 + LATE * 2;
        for _ in 0..SUSTAINED {
            lag.observe_tick(t0, ran);
        }
        assert!(lag.lagging(ran));
        assert!(lag.lagging(ran + HOLD - Duration::from_millis(1)));
        assert!(!lag.lagging(ran + HOLD));
        // A prompt tick does not cut the hold short.
        lag.observe_tick(ran, ran);
        assert!(lag.lagging(ran + HOLD / 2));
    }

    #[test]
    fn slow_posts_in_a_row_make_the_gateway_lag_and_one_fast_post_resets_the_count() {
        let lag = Overload::new();
        let now = lag.origin + Duration::from_secs(5);
        let slow = SLOW_POST * 2;
        for _ in 1..SUSTAINED {
            lag.observe_post(slow, now);
        }
        lag.observe_post(SLOW_POST / 2, now);
        lag.observe_post(slow, now);
        assert!(!lag.lagging(now), "the fast post broke the run");
        for _ in 1..SUSTAINED {
            lag.observe_post(slow, now);
        }
        assert!(lag.lagging(now));
        assert!(!lag.lagging(now + HOLD));
    }

    #[test]
    fn while_lagging_a_connection_takes_one_fix_per_interval_and_sheds_the_rest() {
        let mut thin = GpsThinning::new(THIN_TO);
        let t0 = Instant::now();
        // 30 fixes, 10 to each interval, lagging throughout: the first of each interval taken.
        let step = THIN_TO / 10;
        let taken: Vec<usize> = (0..30).filter(|&i| thin.admit(t0 + step * u32::try_from(i).unwrap(), true)).collect();
        assert_eq!(taken, vec![0, 10, 20]);
        // Keeping up again: every fix is taken.
        let later = t0 + Duration::from_secs(10);
        assert!((0..5).all(|i| thin.admit(later + Duration::from_millis(100) * i, false)));
    }

    #[test]
    fn thinning_set_to_zero_takes_every_fix_even_while_lagging() {
        let mut thin = GpsThinning::new(Duration::ZERO);
        let t0 = Instant::now();
        assert!((0..10).all(|i| thin.admit(t0 + Duration::from_millis(10) * i, true)));
    }
}
