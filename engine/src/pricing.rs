//! Surge pricing and price quotes.
//!
//! Each cell's surge comes from demand (open jobs) over supply (available
//! contractors) summed over the cell and its first ring, so a busy block
//! raises prices around it rather than in one hexagon:
//!
//! ```text
//! ratio = demand / max(supply, 1)
//! raw   = clamp(1 + sensitivity × (ratio − 1), 1, cap)
//! m(t)  = m(t−Δt) + (raw − m(t−Δt)) × (1 − e^(−Δt / τ))      (smoothing over time τ)
//! ```
//!
//! A quote is the trade's base price × the surge at the job's cell × the
//! urgency multiplier.

use std::collections::{BTreeMap, HashMap, HashSet};

use h3o::CellIndex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::types::{Money, Timestamp, Trade, Urgency};

/// How surge reacts to demand and supply.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SurgeConfig {
    /// The highest multiplier (default 3.0).
    pub cap: f64,
    /// How much each unit of demand/supply ratio above 1 adds (default 0.5).
    pub sensitivity: f64,
    /// Smoothing time constant τ in seconds (default 120): after τ a step in
    /// demand has moved the multiplier 63 % of the way.
    pub smoothing_secs: f64,
}

impl Default for SurgeConfig {
    fn default() -> Self {
        Self { cap: 3.0, sensitivity: 0.5, smoothing_secs: 120.0 }
    }
}

impl SurgeConfig {
    /// Checks the cap is at least 1 and the other values are finite and non-negative.
    pub fn validate(&self) -> Result<()> {
        if !(self.cap.is_finite() && self.cap >= 1.0) {
            return Err(Error::InvalidConfig(format!("surge cap {} must be >= 1", self.cap)));
        }
        if !(self.sensitivity.is_finite() && self.sensitivity >= 0.0) {
            return Err(Error::InvalidConfig(format!("surge sensitivity {} must be >= 0", self.sensitivity)));
        }
        if !(self.smoothing_secs.is_finite() && self.smoothing_secs >= 0.0) {
            return Err(Error::InvalidConfig(format!("surge smoothing {} s must be >= 0", self.smoothing_secs)));
        }
        Ok(())
    }

    /// The unsmoothed multiplier for `demand` open jobs and `supply` available contractors.
    #[must_use]
    pub fn raw_multiplier(&self, demand: u32, supply: u32) -> f64 {
        let ratio = f64::from(demand) / f64::from(supply.max(1));
        (1.0 + self.sensitivity * (ratio - 1.0)).clamp(1.0, self.cap)
    }
}

/// Demand and supply in one cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CellLoad {
    /// Open jobs in the cell.
    pub demand: u32,
    /// Available contractors in the cell.
    pub supply: u32,
}

/// A cell's surge: the smoothed multiplier and what it was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CellSurge {
    /// The smoothed multiplier, 1..=cap.
    pub multiplier: f64,
    /// Demand over the cell and its first ring.
    pub demand: u32,
    /// Supply over the cell and its first ring.
    pub supply: u32,
}

/// Per-cell loads and smoothed surge multipliers for a city.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SurgeBook {
    config: SurgeConfig,
    loads: HashMap<CellIndex, CellLoad>,
    surges: HashMap<CellIndex, CellSurge>,
    updated_at: Option<Timestamp>,
}

impl SurgeBook {
    /// An empty book; refuses an invalid configuration.
    pub fn new(config: SurgeConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config, ..Self::default() })
    }

    /// Records the current demand and supply of `cell`.
    pub fn set_load(&mut self, cell: CellIndex, load: CellLoad) {
        if load == CellLoad::default() {
            self.loads.remove(&cell);
        } else {
            self.loads.insert(cell, load);
        }
    }

    /// Recomputes every affected cell's multiplier at time `now`, smoothing
    /// from the previous update. Cells back at 1.0 with no demand around them
    /// are dropped.
    pub fn update(&mut self, now: Timestamp) {
        let dt = self.updated_at.map_or(f64::INFINITY, |t| now.secs_since(t).max(0.0));
        let step = if self.config.smoothing_secs == 0.0 { 1.0 } else { 1.0 - (-dt / self.config.smoothing_secs).exp() };
        // Cells whose neighbourhood has demand, and cells still decaying.
        let mut affected: HashSet<CellIndex> = self.surges.keys().copied().collect();
        for (&cell, load) in &self.loads {
            if load.demand > 0 {
                affected.extend(cell.grid_disk::<Vec<_>>(1));
            }
        }
        let mut next = HashMap::with_capacity(affected.len());
        for cell in affected {
            let (demand, supply) = cell.grid_disk::<Vec<_>>(1).iter().fold((0u32, 0u32), |(d, s), c| {
                let load = self.loads.get(c).copied().unwrap_or_default();
                (d.saturating_add(load.demand), s.saturating_add(load.supply))
            });
            let raw = self.config.raw_multiplier(demand, supply);
            let previous = self.surges.get(&cell).map_or(1.0, |s| s.multiplier);
            let multiplier = (previous + (raw - previous) * step).clamp(1.0, self.config.cap);
            if demand > 0 || multiplier > 1.0 + 1e-6 {
                next.insert(cell, CellSurge { multiplier, demand, supply });
            }
        }
        self.surges = next;
        self.updated_at = Some(now);
    }

    /// Every cell's recorded demand and supply (cells with neither are not kept).
    pub fn loads(&self) -> impl Iterator<Item = (CellIndex, CellLoad)> + '_ {
        self.loads.iter().map(|(&c, &l)| (c, l))
    }

    /// The smoothed multiplier of `cell` as of the last update (1.0 when calm).
    #[must_use]
    pub fn multiplier(&self, cell: CellIndex) -> f64 {
        self.surges.get(&cell).map_or(1.0, |s| s.multiplier)
    }

    /// Every cell with demand around it or a multiplier above 1, as of the last update.
    pub fn surges(&self) -> impl Iterator<Item = (CellIndex, CellSurge)> + '_ {
        self.surges.iter().map(|(&c, &s)| (c, s))
    }
}

/// Base prices per trade and urgency multipliers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PricingConfig {
    /// The call-out price of each trade.
    pub base_prices: BTreeMap<Trade, Money>,
    /// Multiplier for [`Urgency::Emergency`] (default 1.5).
    pub emergency: f64,
    /// Multiplier for [`Urgency::Today`] (default 1.2).
    pub today: f64,
    /// Multiplier for [`Urgency::Scheduled`] (default 1.0).
    pub scheduled: f64,
}

impl Default for PricingConfig {
    fn default() -> Self {
        let cents = [12_000, 13_000, 15_000, 10_000, 20_000, 9_000, 7_000, 11_000, 9_500, 8_000];
        Self { base_prices: Trade::ALL.into_iter().zip(cents.map(Money)).collect(), emergency: 1.5, today: 1.2, scheduled: 1.0 }
    }
}

impl PricingConfig {
    /// Checks every trade has a base price and every multiplier is finite and positive.
    pub fn validate(&self) -> Result<()> {
        if let Some(missing) = Trade::ALL.iter().find(|t| !self.base_prices.contains_key(t)) {
            return Err(Error::InvalidConfig(format!("no base price for trade {missing}")));
        }
        for (name, m) in [("emergency", self.emergency), ("today", self.today), ("scheduled", self.scheduled)] {
            if !(m.is_finite() && m > 0.0) {
                return Err(Error::InvalidConfig(format!("{name} multiplier {m} must be positive")));
            }
        }
        Ok(())
    }

    /// The multiplier for `urgency`.
    #[must_use]
    pub fn urgency_multiplier(&self, urgency: &Urgency) -> f64 {
        match urgency {
            Urgency::Emergency => self.emergency,
            Urgency::Today => self.today,
            Urgency::Scheduled(_) => self.scheduled,
        }
    }

    /// The quote for a job of `trade` and `urgency` where the surge is `surge`.
    #[must_use]
    pub fn quote(&self, trade: Trade, urgency: &Urgency, surge: f64) -> PriceQuote {
        let base = self.base_prices.get(&trade).copied().unwrap_or_default();
        let urgency = self.urgency_multiplier(urgency);
        let surge = if surge.is_finite() { surge.max(1.0) } else { 1.0 };
        let total = Money((base.0 as f64 * surge * urgency).round() as u64);
        PriceQuote { base, surge, urgency, total }
    }
}

/// A price and how it was made.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PriceQuote {
    /// The trade's base price.
    pub base: Money,
    /// The surge multiplier applied.
    pub surge: f64,
    /// The urgency multiplier applied.
    pub urgency: f64,
    /// base × surge × urgency, rounded to the cent.
    pub total: Money,
}

#[cfg(test)]
#[path = "pricing_tests.rs"]
mod tests;
