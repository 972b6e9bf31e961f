//! ETA: haversine distance × detour factor ÷ speed, with the speed learned per
//! H3 cell from observed GPS speeds.
//!
//! Each cell keeps an exponentially weighted moving average of the speeds its
//! moving contractors report ([`LearnedSpeed`]); a cell with no observations
//! uses the city's configured default. A trip's speed is the mean of its
//! origin and destination cells' speeds.

use std::collections::HashMap;

use h3o::CellIndex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::geo_point::GeoPoint;

/// How ETAs are computed and speeds learned.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SpeedConfig {
    /// Speed used where nothing has been observed, m/s (default 11.2 ≈ 40 km/h).
    pub default_speed_mps: f64,
    /// Road distance ÷ straight-line distance (default 1.3).
    pub detour_factor: f64,
    /// Weight of each new observation in the moving average, in (0, 1] (default 0.1).
    pub alpha: f64,
    /// Observations slower than this are a contractor standing still, not traffic (default 1 m/s).
    pub min_observed_mps: f64,
    /// Observations faster than this are GPS noise (default 45 m/s ≈ 160 km/h).
    pub max_observed_mps: f64,
}

impl Default for SpeedConfig {
    fn default() -> Self {
        Self { default_speed_mps: 11.2, detour_factor: 1.3, alpha: 0.1, min_observed_mps: 1.0, max_observed_mps: 45.0 }
    }
}

impl SpeedConfig {
    /// Checks every field is finite and in range.
    pub fn validate(&self) -> Result<()> {
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 { Ok(()) } else { Err(Error::InvalidConfig(format!("{name} = {v} must be positive"))) }
        };
        positive("default_speed_mps", self.default_speed_mps)?;
        positive("max_observed_mps", self.max_observed_mps)?;
        if !(self.detour_factor.is_finite() && self.detour_factor >= 1.0) {
            return Err(Error::InvalidConfig(format!("detour_factor = {} must be >= 1", self.detour_factor)));
        }
        if !(self.alpha > 0.0 && self.alpha <= 1.0) {
            return Err(Error::InvalidConfig(format!("alpha = {} must be in (0, 1]", self.alpha)));
        }
        if !(self.min_observed_mps.is_finite() && (0.0..self.max_observed_mps).contains(&self.min_observed_mps)) {
            return Err(Error::InvalidConfig(format!("min_observed_mps = {} must be in 0..max_observed_mps", self.min_observed_mps)));
        }
        Ok(())
    }
}

/// One cell's learned speed: an exponentially weighted moving average.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LearnedSpeed {
    mps: Option<f64>,
    samples: u64,
}

impl LearnedSpeed {
    /// Folds in one observed speed; returns whether it was used (speeds
    /// outside the configured plausible range are ignored).
    pub fn observe(&mut self, config: &SpeedConfig, speed_mps: f64) -> bool {
        if !speed_mps.is_finite() || speed_mps < config.min_observed_mps || speed_mps > config.max_observed_mps {
            return false;
        }
        self.mps = Some(match self.mps {
            None => speed_mps,
            Some(avg) => avg + config.alpha * (speed_mps - avg),
        });
        self.samples += 1;
        true
    }

    /// The learned speed, or `None` before any observation.
    #[must_use]
    pub fn get(&self) -> Option<f64> {
        self.mps
    }

    /// How many observations were folded in.
    #[must_use]
    pub fn samples(&self) -> u64 {
        self.samples
    }
}

/// Learned speeds for a city's cells, and the ETAs they give.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpeedModel {
    config: SpeedConfig,
    cells: HashMap<CellIndex, LearnedSpeed>,
}

impl SpeedModel {
    /// An empty model; refuses an invalid configuration.
    pub fn new(config: SpeedConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self { config, cells: HashMap::new() })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &SpeedConfig {
        &self.config
    }

    /// Folds a GPS speed observed in `cell` into that cell's average; returns whether it was used.
    pub fn observe(&mut self, cell: CellIndex, speed_mps: f64) -> bool {
        let config = self.config;
        let mut learned = self.cells.get(&cell).copied().unwrap_or_default();
        let used = learned.observe(&config, speed_mps);
        if used {
            self.cells.insert(cell, learned);
        }
        used
    }

    /// The speed to assume in `cell`, m/s.
    #[must_use]
    pub fn speed_in(&self, cell: CellIndex) -> f64 {
        self.cells.get(&cell).and_then(LearnedSpeed::get).unwrap_or(self.config.default_speed_mps)
    }

    /// Seconds to drive from `from` (in `from_cell`) to `to` (in `to_cell`):
    /// haversine distance × detour factor ÷ the mean of the two cells' speeds.
    #[must_use]
    pub fn eta_secs(&self, from: GeoPoint, from_cell: CellIndex, to: GeoPoint, to_cell: CellIndex) -> f64 {
        let speed = (self.speed_in(from_cell) + self.speed_in(to_cell)) / 2.0;
        eta_secs(from.distance_m(to), self.config.detour_factor, speed)
    }
}

/// Seconds to cover `distance_m` of straight line at `speed_mps`, with roads
/// `detour_factor` times longer than the straight line.
#[must_use]
pub fn eta_secs(distance_m: f64, detour_factor: f64, speed_mps: f64) -> f64 {
    distance_m * detour_factor / speed_mps
}

#[cfg(test)]
mod tests {
    use super::*;
    use h3o::{LatLng, Resolution};

    fn cell(lat: f64, lng: f64) -> CellIndex {
        LatLng::new(lat, lng).unwrap().to_cell(Resolution::Eight)
    }

    #[test]
    fn learned_speed_is_an_ewma_that_ignores_implausible_readings() {
        let config = SpeedConfig { alpha: 0.5, ..SpeedConfig::default() };
        let mut s = LearnedSpeed::default();
        assert!(!s.observe(&config, 0.2), "standing still");
        assert!(!s.observe(&config, 300.0), "GPS noise");
        assert!(!s.observe(&config, f64::NAN));
        assert_eq!(s.get(), None);
        assert!(s.observe(&config, 10.0));
        assert!(s.observe(&config, 20.0));
        assert_eq!(s.get(), Some(15.0));
        assert!(s.observe(&config, 15.0));
        assert_eq!(s.get(), Some(15.0));
        assert_eq!(s.samples(), 3);
    }

    #[test]
    fn eta_uses_the_default_then_the_learned_speeds() {
        let mut model =
            SpeedModel::new(SpeedConfig { default_speed_mps: 10.0, detour_factor: 1.5, alpha: 1.0, ..SpeedConfig::default() }).unwrap();
        let a = GeoPoint::new(41.5868, -93.6250).unwrap();
        let b = a.destination(90.0, 10_000.0);
        let (ca, cb) = (cell(a.lat(), a.lng()), cell(b.lat(), b.lng()));
        // 10 km × 1.5 ÷ 10 m/s
        assert!((model.eta_secs(a, ca, b, cb) - 1_500.0).abs() < 0.01);
        model.observe(ca, 20.0);
        model.observe(cb, 30.0);
        // mean speed 25 m/s
        assert!((model.eta_secs(a, ca, b, cb) - 600.0).abs() < 0.01);
        assert_eq!(model.speed_in(cell(0.0, 0.0)), 10.0);
    }

    #[test]
    fn bad_configuration_is_refused() {
        for bad in [
            SpeedConfig { default_speed_mps: 0.0, ..SpeedConfig::default() },
            SpeedConfig { default_speed_mps: f64::INFINITY, ..SpeedConfig::default() },
            SpeedConfig { detour_factor: 0.9, ..SpeedConfig::default() },
            SpeedConfig { alpha: 0.0, ..SpeedConfig::default() },
            SpeedConfig { alpha: 1.5, ..SpeedConfig::default() },
            SpeedConfig { min_observed_mps: 50.0, ..SpeedConfig::default() },
        ] {
            assert!(matches!(SpeedModel::new(bad), Err(Error::InvalidConfig(_))), "{bad:?}");
        }
    }
}
