//! Match scoring: how good a contractor is for a job, as a weighted sum of
//! five factors, each in 0..=1.
//!
//! The plan's weights are proximity 0.30, rating 0.25, availability 0.20,
//! experience 0.15 and price 0.10; [`Weights::new`] takes any non-negative
//! weights and normalises them to sum to 1. Candidates are ranked by score,
//! highest first; equal scores go to the nearer contractor, then the lower id,
//! so the same input always gives the same order.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::{ContractorId, Money, Rating, StatusKind};

/// The factor weights, normalised to sum to 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Weights {
    /// Weight of [`Factors::proximity`].
    pub proximity: f64,
    /// Weight of [`Factors::rating`].
    pub rating: f64,
    /// Weight of [`Factors::availability`].
    pub availability: f64,
    /// Weight of [`Factors::experience`].
    pub experience: f64,
    /// Weight of [`Factors::price`].
    pub price: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Self { proximity: 0.30, rating: 0.25, availability: 0.20, experience: 0.15, price: 0.10 }
    }
}

impl Weights {
    /// Weights in the given proportions, normalised to sum to 1. Refuses a
    /// negative or non-finite weight and an all-zero set.
    pub fn new(proximity: f64, rating: f64, availability: f64, experience: f64, price: f64) -> Result<Self> {
        let all = [proximity, rating, availability, experience, price];
        if let Some(bad) = all.iter().find(|w| !w.is_finite() || **w < 0.0) {
            return Err(Error::InvalidConfig(format!("match weight {bad} must be a finite number >= 0")));
        }
        let sum: f64 = all.iter().sum();
        if sum <= 0.0 {
            return Err(Error::InvalidConfig("match weights must not all be zero".into()));
        }
        Ok(Self {
            proximity: proximity / sum,
            rating: rating / sum,
            availability: availability / sum,
            experience: experience / sum,
            price: price / sum,
        })
    }
}

/// Everything scoring needs besides the weights.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScoringConfig {
    /// The factor weights.
    pub weights: Weights,
    /// Distance at which proximity reaches 0, metres (default 15 km).
    pub max_distance_m: f64,
    /// The rating assumed for a contractor with few reviews (default 4.0)…
    pub rating_prior: f64,
    /// …counted as this many reviews (default 5).
    pub rating_prior_reviews: f64,
    /// Years of experience at which the experience factor reaches 0.5 (default 5).
    pub experience_half_years: f64,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            weights: Weights::default(),
            max_distance_m: 15_000.0,
            rating_prior: 4.0,
            rating_prior_reviews: 5.0,
            experience_half_years: 5.0,
        }
    }
}

/// One contractor as seen for one job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    /// The contractor.
    pub id: ContractorId,
    /// Straight-line distance to the job, metres.
    pub distance_m: f64,
    /// Live status.
    pub status: StatusKind,
    /// Reviews.
    pub rating: Rating,
    /// Years in the job's trade.
    pub years_experience: u8,
    /// The contractor's hourly rate.
    pub hourly_rate: Money,
    /// Seconds left in the current shift (`None`: off shift).
    pub shift_remaining_secs: Option<u32>,
}

/// Facts about the job that every candidate is measured against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobContext {
    /// Seconds the contractor must stay on shift to do the job: ETA plus expected work.
    pub needed_secs: u32,
    /// The market's hourly rate for the job's trade.
    pub reference_hourly_rate: Money,
}

/// The five factors, each in 0..=1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Factors {
    /// `max(0, 1 − distance / max_distance)`.
    pub proximity: f64,
    /// The Bayesian average `(avg·n + prior·m) / (n + m)`, divided by 5: a
    /// contractor with few reviews is pulled toward the prior.
    pub rating: f64,
    /// 0 unless the contractor is Available and on shift; then the share of
    /// the job the rest of the shift covers, `min(1, shift_remaining / needed)`.
    pub availability: f64,
    /// `1 − 2^(−years / half_years)`: 0 for a beginner, 0.5 at `half_years`, toward 1 after.
    pub experience: f64,
    /// `clamp(1.5 − rate / reference, 0, 1)`: 1 at half the market rate or
    /// less, 0.5 at the market rate, 0 at 1.5× or more.
    pub price: f64,
}

/// A candidate with its score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    /// The contractor.
    pub id: ContractorId,
    /// The weighted sum of the factors, 0..=1.
    pub score: f64,
    /// The factors behind the score.
    pub factors: Factors,
    /// Distance to the job (the first tie-breaker).
    pub distance_m: f64,
}

/// The factors of `c` for a job.
#[must_use]
pub fn factors(config: &ScoringConfig, job: &JobContext, c: &Candidate) -> Factors {
    let proximity = (1.0 - c.distance_m / config.max_distance_m).clamp(0.0, 1.0);
    let (n, m) = (f64::from(c.rating.reviews()), config.rating_prior_reviews);
    let smoothed = if n + m > 0.0 { (f64::from(c.rating.average()) * n + config.rating_prior * m) / (n + m) } else { 0.0 };
    let rating = (smoothed / 5.0).clamp(0.0, 1.0);
    let availability = match (c.status, c.shift_remaining_secs) {
        (StatusKind::Available, Some(left)) if job.needed_secs > 0 => (f64::from(left) / f64::from(job.needed_secs)).min(1.0),
        (StatusKind::Available, Some(left)) if left > 0 => 1.0,
        _ => 0.0,
    };
    let experience = 1.0 - (-f64::from(c.years_experience) / config.experience_half_years).exp2();
    let price = if job.reference_hourly_rate.0 == 0 {
        1.0
    } else {
        (1.5 - c.hourly_rate.0 as f64 / job.reference_hourly_rate.0 as f64).clamp(0.0, 1.0)
    };
    Factors { proximity, rating, availability, experience, price }
}

/// Scores one candidate.
#[must_use]
pub fn score(config: &ScoringConfig, job: &JobContext, c: &Candidate) -> Scored {
    let f = factors(config, job, c);
    let w = &config.weights;
    let score =
        w.proximity * f.proximity + w.rating * f.rating + w.availability * f.availability + w.experience * f.experience + w.price * f.price;
    Scored { id: c.id, score, factors: f, distance_m: c.distance_m }
}

/// Scores and ranks candidates: highest score first, then nearer, then lower id.
#[must_use]
pub fn rank(config: &ScoringConfig, job: &JobContext, candidates: &[Candidate]) -> Vec<Scored> {
    let mut scored: Vec<Scored> = candidates.iter().map(|c| score(config, job, c)).collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.distance_m.total_cmp(&b.distance_m)).then(a.id.cmp(&b.id)));
    scored
}

#[cfg(test)]
#[path = "scoring_tests.rs"]
mod tests;
