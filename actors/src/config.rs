//! [`DispatchConfig`]: every knob of a city's actors.

use std::sync::Arc;
use std::time::Duration;

use dispatch_engine::payment::PaymentTerms;
use dispatch_engine::{PricingConfig, ScoringConfig, SpeedConfig, SurgeConfig};
use dispatch_payments::{PaymentProvider, SandboxProvider};

/// How a city's actors behave. `Default` gives production values.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// H3 resolution of the cells (default 8).
    pub resolution: u8,
    /// How long a contractor has to answer an offer (default 20 s).
    pub offer_timeout: Duration,
    /// Offers in one search round before the radius widens (default 3).
    pub offers_per_round: u32,
    /// Candidates fetched per search round (default 10).
    pub candidates_per_round: usize,
    /// First search radius (default 5 km).
    pub initial_radius_m: f64,
    /// Largest search radius (default 40 km); each widening doubles the radius up to this.
    pub max_radius_m: f64,
    /// Wait before searching again when nobody could be offered the job (default 10 s).
    pub retry_after: Duration,
    /// A job nobody accepted within this long after posting expires (default 15 min).
    pub job_ttl: Duration,
    /// Distance from the site at which an en-route contractor counts as arriving (default 200 m).
    pub arriving_m: f64,
    /// A GPS fix implying a faster move than this is flagged and not trusted (default 70 m/s).
    pub max_plausible_speed_mps: f64,
    /// A contractor with no GPS for this long is hibernated (default 10 min).
    pub idle_hibernate_after: Duration,
    /// How often the city's writer flushes the GPS-only contractor changes
    /// handed to it (default 1 s).
    pub snapshot_interval: Duration,
    /// A contractor's position alone is handed to the writer at most this
    /// often (default 30 s), and only once it moved
    /// [`Self::position_persist_min_move_m`]: phones resend their position
    /// within seconds after a restart, so a position needs no more
    /// durability than that, and a whole city streaming GPS would otherwise
    /// keep the store busy rewriting it.
    pub position_persist_interval: Duration,
    /// How far a contractor must have moved since the position last stored
    /// before a GPS fix alone is stored again (default 50 m).
    pub position_persist_min_move_m: f64,
    /// A cell with no contractors and no open jobs for this long is stopped (default 60 s).
    pub cell_idle_after: Duration,
    /// How often surge multipliers are recomputed (default 1 s).
    pub surge_interval: Duration,
    /// Match scoring.
    pub scoring: ScoringConfig,
    /// ETAs and learned speeds.
    pub speed: SpeedConfig,
    /// Surge pricing.
    pub surge: SurgeConfig,
    /// Base prices.
    pub pricing: PricingConfig,
    /// Expected time on site for a job, used for shift coverage in scoring
    /// and for day routing (default 1 h).
    pub expected_job_secs: u32,
    /// How long before its window a scheduled job is first offered (default 2 h).
    pub scheduled_lead_time: Duration,
    /// Batched mode: gather open jobs for this long and assign them together
    /// with the least total ETA (`None`, the default: each job offers at once).
    pub batch_window: Option<Duration>,
    /// Card payments: every job posted holds, charges and pays out through
    /// this processor (default: the in-memory sandbox); `None` posts jobs
    /// without money.
    pub payments: Option<PaymentsConfig>,
    /// Trades matched only to contractors an operator verified a licence of,
    /// still valid (default none: every trade goes to whoever declares it).
    pub licensed_trades: dispatch_engine::TradeSet,
}

/// How a city takes payments.
#[derive(Clone)]
pub struct PaymentsConfig {
    /// The city's money rules: currency, hold margin, fee, cancellation fee, dispute window.
    pub terms: PaymentTerms,
    /// The card processor.
    pub provider: Arc<dyn PaymentProvider>,
    /// A processor call with no answer after this long is left to the
    /// reconciler, which finishes it under the same key (default 4 s: a job waits on its calls, and a request to it gives up after 5).
    pub call_timeout: Duration,
    /// How often a job whose processor call did not finish tries again (default 30 s).
    pub retry_after: Duration,
}

impl PaymentsConfig {
    /// The sandbox processor with these terms.
    #[must_use]
    pub fn sandbox(terms: PaymentTerms) -> Self {
        Self::with_provider(terms, Arc::new(SandboxProvider::new()))
    }

    /// `provider` with these terms.
    #[must_use]
    pub fn with_provider(terms: PaymentTerms, provider: Arc<dyn PaymentProvider>) -> Self {
        Self { terms, provider, call_timeout: Duration::from_secs(4), retry_after: Duration::from_secs(30) }
    }
}

impl std::fmt::Debug for PaymentsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentsConfig")
            .field("terms", &self.terms)
            .field("provider", &self.provider.name())
            .field("call_timeout", &self.call_timeout)
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            resolution: dispatch_engine::spatial::DEFAULT_RESOLUTION,
            offer_timeout: Duration::from_secs(20),
            offers_per_round: 3,
            candidates_per_round: 10,
            initial_radius_m: 5_000.0,
            max_radius_m: 40_000.0,
            retry_after: Duration::from_secs(10),
            job_ttl: Duration::from_secs(15 * 60),
            arriving_m: 200.0,
            max_plausible_speed_mps: 70.0,
            idle_hibernate_after: Duration::from_secs(600),
            snapshot_interval: Duration::from_secs(1),
            position_persist_interval: Duration::from_secs(30),
            position_persist_min_move_m: 50.0,
            cell_idle_after: Duration::from_secs(60),
            surge_interval: Duration::from_secs(1),
            scoring: ScoringConfig::default(),
            speed: SpeedConfig::default(),
            surge: SurgeConfig::default(),
            pricing: PricingConfig::default(),
            expected_job_secs: 3_600,
            scheduled_lead_time: Duration::from_secs(2 * 3_600),
            batch_window: None,
            payments: Some(PaymentsConfig::sandbox(PaymentTerms::default())),
            licensed_trades: dispatch_engine::TradeSet::default(),
        }
    }
}

impl DispatchConfig {
    /// Checks the values fit together; the error names the first that does not.
    pub fn validate(&self) -> Result<(), crate::ActorError> {
        let bad = |what: String| Err(crate::ActorError::Config(what));
        if self.resolution > 15 {
            return bad(format!("resolution {} must be 0..=15", self.resolution));
        }
        if self.batch_window.is_some_and(|w| w.is_zero()) {
            return bad("batch_window must be positive when set".into());
        }
        if self.offer_timeout.is_zero() {
            return bad("offer_timeout must be positive".into());
        }
        if self.offers_per_round == 0 || self.candidates_per_round == 0 {
            return bad("offers_per_round and candidates_per_round must be at least 1".into());
        }
        if !(self.initial_radius_m > 0.0 && self.initial_radius_m <= self.max_radius_m && self.max_radius_m.is_finite()) {
            return bad(format!("radii must satisfy 0 < initial ({}) <= max ({})", self.initial_radius_m, self.max_radius_m));
        }
        if !(self.arriving_m.is_finite() && self.arriving_m > 0.0) {
            return bad(format!("arriving_m {} must be positive", self.arriving_m));
        }
        if !(self.max_plausible_speed_mps.is_finite() && self.max_plausible_speed_mps > 0.0) {
            return bad(format!("max_plausible_speed_mps {} must be positive", self.max_plausible_speed_mps));
        }
        self.speed.validate().map_err(|e| crate::ActorError::Config(e.to_string()))?;
        self.surge.validate().map_err(|e| crate::ActorError::Config(e.to_string()))?;
        self.pricing.validate().map_err(|e| crate::ActorError::Config(e.to_string()))?;
        if let Some(payments) = &self.payments {
            payments.terms.validate().map_err(|e| crate::ActorError::Config(e.to_string()))?;
            if payments.call_timeout.is_zero() || payments.retry_after.is_zero() {
                return bad("payments: call_timeout and retry_after must be positive".into());
            }
        }
        Ok(())
    }
}
