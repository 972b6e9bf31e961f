//! Domain types: ids, time, money, trades, contractor profiles and statuses, jobs.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::geo_point::GeoPoint;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub u64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }
    };
}

id_type!(
    /// A contractor (a tradesperson with a phone streaming GPS).
    ContractorId,
    "c"
);
id_type!(
    /// A job posted by a customer.
    JobId,
    "j"
);
id_type!(
    /// A customer who posts jobs.
    CustomerId,
    "u"
);

/// A point in time: milliseconds since the Unix epoch, UTC.
///
/// The engine never reads a clock: callers pass the time in, which keeps every
/// function deterministic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// This time plus `secs` seconds (saturating).
    #[must_use]
    pub fn plus_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs.saturating_mul(1000)))
    }

    /// This time plus `d` (saturating).
    #[must_use]
    pub fn plus(self, d: std::time::Duration) -> Self {
        Self(self.0.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// This time minus `d` (saturating).
    #[must_use]
    pub fn minus(self, d: std::time::Duration) -> Self {
        Self(self.0.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// Seconds from `earlier` to `self` (negative when `earlier` is later).
    #[must_use]
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1000.0
    }
}

/// An amount of money in the smallest unit of the city's currency (cents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Money(pub u64);

/// The trades the marketplace dispatches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trade {
    /// Pipes, drains, water heaters.
    Plumbing,
    /// Wiring, panels, outlets.
    Electrical,
    /// Heating, ventilation, air conditioning.
    Hvac,
    /// Framing, doors, trim.
    Carpentry,
    /// Roofs and gutters.
    Roofing,
    /// Interior and exterior painting.
    Painting,
    /// Cleaning.
    Cleaning,
    /// Washers, dryers, fridges, ovens.
    ApplianceRepair,
    /// Locks and lock-outs.
    Locksmith,
    /// Small jobs of any kind.
    GeneralHandyman,
}

impl Trade {
    /// Every trade, in declaration order.
    pub const ALL: [Trade; 10] = [
        Trade::Plumbing,
        Trade::Electrical,
        Trade::Hvac,
        Trade::Carpentry,
        Trade::Roofing,
        Trade::Painting,
        Trade::Cleaning,
        Trade::ApplianceRepair,
        Trade::Locksmith,
        Trade::GeneralHandyman,
    ];

    /// The trade's bit in a [`TradeSet`].
    #[must_use]
    pub const fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// The snake_case name used on the wire and in configuration.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Trade::Plumbing => "plumbing",
            Trade::Electrical => "electrical",
            Trade::Hvac => "hvac",
            Trade::Carpentry => "carpentry",
            Trade::Roofing => "roofing",
            Trade::Painting => "painting",
            Trade::Cleaning => "cleaning",
            Trade::ApplianceRepair => "appliance_repair",
            Trade::Locksmith => "locksmith",
            Trade::GeneralHandyman => "general_handyman",
        }
    }
}

impl fmt::Display for Trade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of trades as a bitset: small enough to live in every R-tree entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TradeSet(pub u16);

impl TradeSet {
    /// The empty set.
    pub const EMPTY: TradeSet = TradeSet(0);

    /// A set holding exactly `trade`.
    #[must_use]
    pub const fn single(trade: Trade) -> Self {
        Self(trade.bit())
    }

    /// This set with `trade` added.
    #[must_use]
    pub const fn with(self, trade: Trade) -> Self {
        Self(self.0 | trade.bit())
    }

    /// Whether `trade` is in the set.
    #[must_use]
    pub const fn contains(self, trade: Trade) -> bool {
        self.0 & trade.bit() != 0
    }

    /// Whether every trade of `other` is in this set (true when `other` is empty).
    #[must_use]
    pub const fn contains_all(self, other: TradeSet) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl FromIterator<Trade> for TradeSet {
    fn from_iter<I: IntoIterator<Item = Trade>>(iter: I) -> Self {
        iter.into_iter().fold(TradeSet::EMPTY, TradeSet::with)
    }
}

/// A star rating: the average of reviews (0–5) and how many reviews it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    average: f32,
    reviews: u32,
}

impl Rating {
    /// A rating of `average` stars from `reviews` reviews; refuses NaN and values outside 0..=5.
    pub fn new(average: f64, reviews: u32) -> Result<Self> {
        if !average.is_finite() || !(0.0..=5.0).contains(&average) {
            return Err(Error::InvalidRating(average));
        }
        Ok(Self { average: average as f32, reviews })
    }

    /// A contractor with no reviews yet.
    #[must_use]
    pub const fn unrated() -> Self {
        Self { average: 0.0, reviews: 0 }
    }

    /// The average stars, 0..=5.
    #[must_use]
    pub const fn average(self) -> f32 {
        self.average
    }

    /// How many reviews the average rests on.
    #[must_use]
    pub const fn reviews(self) -> u32 {
        self.reviews
    }
}

/// A contractor's reviews as a running sum of stars and their count, plus
/// the jobs whose reviews were counted most recently: a job's review applied
/// twice (a retry after a failure half-way) counts once.
///
/// Only the last [`RatingTally::RECENT_JOBS`] jobs are remembered: a retry
/// comes seconds after the first try, and the job's own snapshot (which
/// records its rating) refuses a second review of it for ever; an unbounded
/// list would grow the contractor's snapshot, written on every GPS flush.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct RatingTally {
    stars_sum: f64,
    count: u32,
    recent_jobs: Vec<JobId>,
}

impl RatingTally {
    /// How many recently reviewed jobs are remembered.
    pub const RECENT_JOBS: usize = 32;

    /// A tally standing for `rating` (its average times its count), with no
    /// jobs remembered: for a profile that arrives with reviews.
    #[must_use]
    pub fn from_rating(rating: Rating) -> Self {
        Self { stars_sum: f64::from(rating.average()) * f64::from(rating.reviews()), count: rating.reviews(), recent_jobs: Vec::new() }
    }

    /// The average and count.
    #[must_use]
    pub fn rating(&self) -> Rating {
        if self.count == 0 {
            return Rating::unrated();
        }
        let average = (self.stars_sum / f64::from(self.count)).clamp(0.0, 5.0);
        Rating::new(average, self.count).unwrap_or_else(|_| Rating::unrated())
    }

    /// The sum of every review's stars.
    #[must_use]
    pub const fn stars_sum(&self) -> f64 {
        self.stars_sum
    }

    /// How many reviews were counted.
    #[must_use]
    pub const fn count(&self) -> u32 {
        self.count
    }

    /// Counts `job`'s review of `stars` (0..=5); `Ok(false)` when that job's
    /// review was already counted (nothing changes).
    pub fn add(&mut self, job: JobId, stars: f64) -> Result<bool> {
        check_stars(stars)?;
        if self.recent_jobs.contains(&job) {
            return Ok(false);
        }
        self.stars_sum += stars;
        self.count = self.count.saturating_add(1);
        if self.recent_jobs.len() == Self::RECENT_JOBS {
            self.recent_jobs.remove(0);
        }
        self.recent_jobs.push(job);
        Ok(true)
    }
}

/// Refuses NaN and star counts outside 0..=5.
pub fn check_stars(stars: f64) -> Result<()> {
    if stars.is_finite() && (0.0..=5.0).contains(&stars) { Ok(()) } else { Err(Error::InvalidRating(stars)) }
}

/// Years of experience in one trade.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TradeExperience {
    /// The trade.
    pub trade: Trade,
    /// Whole years practised.
    pub years: u8,
}

/// A weekly shift: a weekday and a span of minutes in the contractor's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftWindow {
    /// 0 = Monday … 6 = Sunday.
    pub weekday: u8,
    /// Minutes after local midnight the shift starts (0..1440).
    pub start_minute: u16,
    /// Minutes after local midnight the shift ends (start..=1440).
    pub end_minute: u16,
}

impl ShiftWindow {
    /// A shift on `weekday` (0 = Monday) from `start_minute` to `end_minute`; refuses empty or out-of-day spans.
    pub fn new(weekday: u8, start_minute: u16, end_minute: u16) -> Result<Self> {
        if weekday > 6 || start_minute >= end_minute || end_minute > 1440 {
            return Err(Error::InvalidWindow(format!(
                "shift weekday {weekday} {start_minute}..{end_minute} (weekday 0..=6, 0 <= start < end <= 1440)"
            )));
        }
        Ok(Self { weekday, start_minute, end_minute })
    }
}

/// Who a contractor is, apart from where they are: the slow-changing profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractorProfile {
    /// The contractor.
    pub id: ContractorId,
    /// Display name.
    pub name: String,
    /// Trades practised, with experience.
    pub trades: Vec<TradeExperience>,
    /// Review average and count.
    pub rating: Rating,
    /// Hourly rate.
    pub hourly_rate: Money,
    /// How far from their position the contractor will travel for a job, in metres.
    pub service_radius_m: f64,
    /// Weekly shifts; empty means "whenever online".
    pub shifts: Vec<ShiftWindow>,
    /// The contractor's local time minus UTC, in minutes (for reading shifts).
    pub utc_offset_minutes: i16,
}

impl ContractorProfile {
    /// The trades as a bitset for the spatial index.
    #[must_use]
    pub fn trade_set(&self) -> TradeSet {
        self.trades.iter().map(|t| t.trade).collect()
    }

    /// Years of experience in `trade`, or `None` when the contractor does not practise it.
    #[must_use]
    pub fn years_in(&self, trade: Trade) -> Option<u8> {
        self.trades.iter().find(|t| t.trade == trade).map(|t| t.years)
    }

    /// Seconds left in the shift that covers `now`, `None` when no shift covers it.
    /// A profile with no shifts is always on shift (returns `u32::MAX`).
    #[must_use]
    pub fn shift_remaining_secs(&self, now: Timestamp) -> Option<u32> {
        if self.shifts.is_empty() {
            return Some(u32::MAX);
        }
        let local_ms = now.0 + i64::from(self.utc_offset_minutes) * 60_000;
        let minutes = local_ms.div_euclid(60_000);
        // 1970-01-01 was a Thursday (weekday 3 when Monday is 0).
        let day = minutes.div_euclid(1440);
        let weekday = (day + 3).rem_euclid(7) as u8;
        let minute_of_day = minutes.rem_euclid(1440) as u16;
        let second_of_minute = (local_ms.rem_euclid(60_000) / 1000) as u32;
        self.shifts
            .iter()
            .filter(|s| s.weekday == weekday && (s.start_minute..s.end_minute).contains(&minute_of_day))
            .map(|s| u32::from(s.end_minute - minute_of_day) * 60 - second_of_minute)
            .max()
    }

    /// Whether one shift covers all of `window` (a profile with no shifts
    /// covers everything).
    #[must_use]
    pub fn covers(&self, window: &TimeWindow) -> bool {
        let needed = window.end.secs_since(window.start);
        self.shift_remaining_secs(window.start).is_some_and(|left| f64::from(left) >= needed)
    }

    /// Checks the profile's own invariants: a positive, finite service radius and valid shifts.
    pub fn validate(&self) -> Result<()> {
        if !self.service_radius_m.is_finite() || self.service_radius_m <= 0.0 {
            return Err(Error::InvalidConfig(format!("service radius {} m must be a positive number", self.service_radius_m)));
        }
        for s in &self.shifts {
            ShiftWindow::new(s.weekday, s.start_minute, s.end_minute)?;
        }
        Ok(())
    }
}

/// What a contractor is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContractorStatus {
    /// Not connected or not working.
    Offline,
    /// Online and free to take an offer.
    Available,
    /// Holding an offer for a job, not yet answered.
    Offered(JobId),
    /// Driving to a job.
    EnRoute(JobId),
    /// Working at a job's site.
    OnSite(JobId),
    /// Online but paused.
    OnBreak,
}

impl ContractorStatus {
    /// The status without its job, small enough for the spatial index.
    #[must_use]
    pub const fn kind(self) -> StatusKind {
        match self {
            ContractorStatus::Offline => StatusKind::Offline,
            ContractorStatus::Available => StatusKind::Available,
            ContractorStatus::Offered(_) => StatusKind::Offered,
            ContractorStatus::EnRoute(_) => StatusKind::EnRoute,
            ContractorStatus::OnSite(_) => StatusKind::OnSite,
            ContractorStatus::OnBreak => StatusKind::OnBreak,
        }
    }
}

/// [`ContractorStatus`] without the job: what the spatial index stores and filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusKind {
    /// See [`ContractorStatus::Offline`].
    Offline,
    /// See [`ContractorStatus::Available`].
    Available,
    /// See [`ContractorStatus::Offered`].
    Offered,
    /// See [`ContractorStatus::EnRoute`].
    EnRoute,
    /// See [`ContractorStatus::OnSite`].
    OnSite,
    /// See [`ContractorStatus::OnBreak`].
    OnBreak,
}

/// A span of time, start inclusive, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeWindow {
    /// Start of the window.
    pub start: Timestamp,
    /// End of the window (after `start`).
    pub end: Timestamp,
}

impl TimeWindow {
    /// A window from `start` to `end`; refuses an end at or before the start.
    pub fn new(start: Timestamp, end: Timestamp) -> Result<Self> {
        if end <= start {
            return Err(Error::InvalidWindow(format!("window ends at {} ms, not after its start {} ms", end.0, start.0)));
        }
        Ok(Self { start, end })
    }
}

/// How soon a job must be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// As soon as possible (burst pipe, no heat, locked out).
    Emergency,
    /// Some time today.
    Today,
    /// Within a booked window.
    Scheduled(TimeWindow),
}

/// A job a customer posted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The job.
    pub id: JobId,
    /// Who posted it.
    pub customer: CustomerId,
    /// The trade it needs.
    pub trade: Trade,
    /// Where the work is.
    pub location: GeoPoint,
    /// How soon.
    pub urgency: Urgency,
    /// The customer's words.
    pub description: String,
    /// The most the customer wants to pay, if they said.
    pub budget: Option<Money>,
    /// When it was posted.
    pub posted_at: Timestamp,
}

/// Who cancelled a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The customer who posted it.
    Customer,
    /// The contractor holding it.
    Contractor,
    /// A dispatcher.
    Dispatcher,
    /// The engine itself (for example a shutdown policy).
    System,
}

#[cfg(test)]
#[path = "types_tests.rs"]
mod tests;
