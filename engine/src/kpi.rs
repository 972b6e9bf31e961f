//! A city's key figures for one hour, kept up event by event.
//!
//! [`HourKpis`] is folded from what happened in the hour ([`Observation`]):
//! counters, two duration histograms, money sums. [`HourKpis::report`] turns
//! them into what operators read: match rate, acceptance rate per offer, time
//! to match and to arrival at p50 / p90, surge exposure, gross volume and
//! platform revenue. Everything is attributed to the hour the observation
//! happened in (a job posted at 9:50 and matched at 10:05 counts as posted in
//! the 9 o'clock hour, matched in the 10 o'clock one).
//!
//! **Durations** go into [`Durations`]: log-spaced bins, each 10 % wider than
//! the one before, from 1 s to a week; a percentile is read as the geometric
//! middle of its bin, so it is within 5 % of the exact value. Bins add, so
//! hours add ([`HourKpis::merge`]) without keeping samples.

use serde::{Deserialize, Serialize};

use crate::types::Money;

/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;

/// The hour `at_ms` falls in: hours since the Unix epoch.
#[must_use]
pub const fn hour_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(HOUR_MS)
}

/// Each bin's upper edge is this times the one before.
const GROWTH: f64 = 1.1;
/// Bins: 1 s · 1.1^k up to past a week.
const BINS: usize = 140;

/// Durations in log-spaced bins (see the module's comment).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Durations {
    /// Samples per bin; bin 0 holds everything up to 1 s.
    counts: Vec<u32>,
}

impl Default for Durations {
    fn default() -> Self {
        Self { counts: vec![0; BINS] }
    }
}

impl Durations {
    fn bin(secs: f64) -> usize {
        if secs <= 1.0 {
            return 0;
        }
        // The smallest k with 1.1^k ≥ secs.
        let k = (secs.ln() / GROWTH.ln()).ceil();
        (k as usize).min(BINS - 1)
    }

    /// The bin's upper edge, seconds.
    fn edge(bin: usize) -> f64 {
        GROWTH.powi(bin as i32)
    }

    /// Adds one duration (negative ones count as 0).
    pub fn add(&mut self, secs: f64) {
        if self.counts.len() != BINS {
            self.counts.resize(BINS, 0);
        }
        let bin = Self::bin(secs.max(0.0));
        self.counts[bin] = self.counts[bin].saturating_add(1);
    }

    /// How many durations.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.counts.iter().map(|&c| u64::from(c)).sum()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `q`-quantile (0–1), seconds, within 5 %; `None` without samples.
    #[must_use]
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.len();
        if n == 0 {
            return None;
        }
        // The rank of the quantile, 1-based, as the nearest-rank method takes it.
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bin, &count) in self.counts.iter().enumerate() {
            seen += u64::from(count);
            if seen >= rank {
                return Some(if bin == 0 { 1.0 } else { (Self::edge(bin - 1) * Self::edge(bin)).sqrt() });
            }
        }
        None
    }

    /// Adds another's samples.
    pub fn merge(&mut self, other: &Durations) {
        self.counts.resize(BINS, 0);
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine = mine.saturating_add(*theirs);
        }
    }
}

/// One thing that happened, as the figures count it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observation {
    /// A job was posted at this surge multiplier.
    Posted {
        /// The quote's surge (1.0: none).
        surge: f64,
    },
    /// A job was offered to a contractor.
    Offered,
    /// A contractor accepted, this long after the job was posted.
    Accepted {
        /// Seconds from posting to acceptance.
        after_secs: f64,
    },
    /// A contractor reached the site, this long after accepting.
    Arrived {
        /// Seconds from acceptance to arrival.
        after_secs: f64,
    },
    /// A job was completed.
    Completed,
    /// A job was called off.
    Cancelled,
    /// Nobody took a job.
    Expired,
    /// A job's card was charged this much, of which the platform keeps `fee`.
    Captured {
        /// What the customer paid.
        amount: Money,
        /// The platform's fee on it.
        fee: Money,
    },
}

/// A city's figures for one hour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HourKpis {
    /// Jobs posted.
    pub posted: u64,
    /// Offers made.
    pub offered: u64,
    /// Offers accepted (jobs matched).
    pub matched: u64,
    /// Jobs completed.
    pub completed: u64,
    /// Jobs called off.
    pub cancelled: u64,
    /// Jobs nobody took.
    pub expired: u64,
    /// Jobs posted under surge (multiplier above 1).
    pub surged: u64,
    /// The surge multipliers of the jobs posted, summed.
    pub surge_sum: f64,
    /// Time from posting to acceptance.
    pub time_to_match: Durations,
    /// Time from acceptance to arrival.
    pub time_to_arrival: Durations,
    /// Charged to customers, cents.
    pub gross_volume: u64,
    /// The platform's fees on it, cents.
    pub platform_revenue: u64,
}

/// What operators read of an hour (or of hours added together).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KpiReport {
    /// Jobs posted.
    pub posted: u64,
    /// Jobs matched (offers accepted).
    pub matched: u64,
    /// Jobs completed.
    pub completed: u64,
    /// Jobs called off.
    pub cancelled: u64,
    /// Jobs nobody took.
    pub expired: u64,
    /// Matched ÷ posted (none without posts).
    pub match_rate: Option<f64>,
    /// Offers accepted ÷ offers made (none without offers).
    pub acceptance_rate: Option<f64>,
    /// Seconds from posting to acceptance, median and 90th percentile.
    pub time_to_match_p50: Option<f64>,
    /// See `time_to_match_p50`.
    pub time_to_match_p90: Option<f64>,
    /// Seconds from acceptance to arrival, median and 90th percentile.
    pub time_to_arrival_p50: Option<f64>,
    /// See `time_to_arrival_p50`.
    pub time_to_arrival_p90: Option<f64>,
    /// Share of posts under surge.
    pub surge_exposure: Option<f64>,
    /// Mean surge multiplier of the posts.
    pub mean_surge: Option<f64>,
    /// Charged to customers, cents.
    pub gross_volume: u64,
    /// The platform's fees, cents.
    pub platform_revenue: u64,
}

fn ratio(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

impl HourKpis {
    /// Counts one observation.
    pub fn observe(&mut self, seen: Observation) {
        match seen {
            Observation::Posted { surge } => {
                self.posted += 1;
                self.surge_sum += surge;
                if surge > 1.0 {
                    self.surged += 1;
                }
            }
            Observation::Offered => self.offered += 1,
            Observation::Accepted { after_secs } => {
                self.matched += 1;
                self.time_to_match.add(after_secs);
            }
            Observation::Arrived { after_secs } => self.time_to_arrival.add(after_secs),
            Observation::Completed => self.completed += 1,
            Observation::Cancelled => self.cancelled += 1,
            Observation::Expired => self.expired += 1,
            Observation::Captured { amount, fee } => {
                self.gross_volume += amount.0;
                self.platform_revenue += fee.0;
            }
        }
    }

    /// Adds another hour's figures (a day from its hours).
    pub fn merge(&mut self, other: &HourKpis) {
        self.posted += other.posted;
        self.offered += other.offered;
        self.matched += other.matched;
        self.completed += other.completed;
        self.cancelled += other.cancelled;
        self.expired += other.expired;
        self.surged += other.surged;
        self.surge_sum += other.surge_sum;
        self.time_to_match.merge(&other.time_to_match);
        self.time_to_arrival.merge(&other.time_to_arrival);
        self.gross_volume += other.gross_volume;
        self.platform_revenue += other.platform_revenue;
    }

    /// The figures as operators read them.
    #[must_use]
    pub fn report(&self) -> KpiReport {
        KpiReport {
            posted: self.posted,
            matched: self.matched,
            completed: self.completed,
            cancelled: self.cancelled,
            expired: self.expired,
            match_rate: ratio(self.matched, self.posted),
            acceptance_rate: ratio(self.matched, self.offered),
            time_to_match_p50: self.time_to_match.quantile(0.5),
            time_to_match_p90: self.time_to_match.quantile(0.9),
            time_to_arrival_p50: self.time_to_arrival.quantile(0.5),
            time_to_arrival_p90: self.time_to_arrival.quantile(0.9),
            surge_exposure: ratio(self.surged, self.posted),
            mean_surge: (self.posted > 0).then(|| self.surge_sum / self.posted as f64),
            gross_volume: self.gross_volume,
            platform_revenue: self.platform_revenue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A known hour: 4 posts (one under 1.5× surge), 5 offers, 3 accepted
    /// after 30, 60 and 600 s, 2 arrivals after 300 and 900 s, 1 completed
    /// and charged $100 with a $2.90 fee, 1 cancelled.
    #[test]
    fn a_known_hour_reads_as_worked_out_by_hand() {
        let mut hour = HourKpis::default();
        for surge in [1.0, 1.0, 1.5, 1.0] {
            hour.observe(Observation::Posted { surge });
        }
        for _ in 0..5 {
            hour.observe(Observation::Offered);
        }
        for after_secs in [30.0, 60.0, 600.0] {
            hour.observe(Observation::Accepted { after_secs });
        }
        for after_secs in [300.0, 900.0] {
            hour.observe(Observation::Arrived { after_secs });
        }
        hour.observe(Observation::Completed);
        hour.observe(Observation::Captured { amount: Money(10_000), fee: Money(290) });
        hour.observe(Observation::Cancelled);
        let r = hour.report();
        assert_eq!((r.posted, r.matched, r.completed, r.cancelled, r.expired), (4, 3, 1, 1, 0));
        assert_eq!(r.match_rate, Some(0.75));
        assert_eq!(r.acceptance_rate, Some(0.6));
        assert_eq!(r.surge_exposure, Some(0.25));
        assert_eq!(r.mean_surge, Some(1.125));
        assert_eq!((r.gross_volume, r.platform_revenue), (10_000, 290));
        let near = |got: Option<f64>, want: f64| got.is_some_and(|g| (g - want).abs() <= want * 0.05);
        assert!(near(r.time_to_match_p50, 60.0), "{:?}", r.time_to_match_p50);
        assert!(near(r.time_to_match_p90, 600.0), "{:?}", r.time_to_match_p90);
        assert!(near(r.time_to_arrival_p50, 300.0), "{:?}", r.time_to_arrival_p50);
        assert!(near(r.time_to_arrival_p90, 900.0), "{:?}", r.time_to_arrival_p90);
        let empty = HourKpis::default().report();
        assert_eq!((empty.match_rate, empty.acceptance_rate, empty.time_to_match_p50, empty.mean_surge), (None, None, None, None));
    }

    #[test]
    fn hours_are_counted_from_the_epoch() {
        assert_eq!(hour_of(0), 0);
        assert_eq!(hour_of(HOUR_MS - 1), 0);
        assert_eq!(hour_of(HOUR_MS), 1);
        assert_eq!(hour_of(-1), -1);
    }

    proptest! {
        /// A quantile read from the bins is within 5 % of the exact
        /// nearest-rank quantile of the samples (above a second).
        #[test]
        fn quantiles_are_within_five_percent(samples in proptest::collection::vec(1.0f64..500_000.0, 1..300), q in 0.01f64..1.0) {
            let mut d = Durations::default();
            for &s in &samples {
                d.add(s);
            }
            let mut sorted = samples.clone();
            sorted.sort_by(f64::total_cmp);
            let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
            let exact = sorted[rank - 1];
            let got = d.quantile(q).unwrap_or_default();
            prop_assert!((got - exact).abs() <= exact * 0.05 + 1e-9, "q {q}: {got} for {exact}");
        }

        /// Folding two hours and merging them is folding everything into one.
        #[test]
        fn merging_hours_is_folding_them_together(a in proptest::collection::vec(0u8..8, 0..60), b in proptest::collection::vec(0u8..8, 0..60)) {
            let seen = |k: u8| match k {
                0 => Observation::Posted { surge: 1.25 },
                1 => Observation::Offered,
                2 => Observation::Accepted { after_secs: 42.0 },
                3 => Observation::Arrived { after_secs: 420.0 },
                4 => Observation::Completed,
                5 => Observation::Cancelled,
                6 => Observation::Expired,
                _ => Observation::Captured { amount: Money(1_000), fee: Money(29) },
            };
            let (mut x, mut y, mut all) = (HourKpis::default(), HourKpis::default(), HourKpis::default());
            for &k in &a { x.observe(seen(k)); all.observe(seen(k)); }
            for &k in &b { y.observe(seen(k)); all.observe(seen(k)); }
            x.merge(&y);
            prop_assert_eq!(x, all);
        }
    }
}
