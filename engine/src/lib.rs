//! # dispatch-engine — the pure domain core
//!
//! No async, no I/O, no clock: every function here takes the time it needs as
//! an argument and gives the same answer for the same input. The actors wrap
//! this state; the gateway never touches it directly.
//!
//! | module | what lives there |
//! |---|---|
//! | [`types`] | ids, [`Timestamp`], [`Money`], [`Trade`] and [`TradeSet`], [`ContractorProfile`], [`ContractorStatus`], [`Job`] |
//! | [`geo_point`] | [`GeoPoint`], the validated position, and haversine distance |
//! | [`job`] | the job state machine: [`JobMachine`], [`JobState`], [`JobEvent`] |
//! | [`spatial`] | [`SpatialIndex`]: H3 cells each holding an R-tree ([`CellTree`]); k-nearest and within-radius with a [`Filter`] |
//! | [`eta`] | [`SpeedModel`]: per-cell speeds learned from GPS (EWMA) and ETA = distance × detour ÷ speed |
//! | [`scoring`] | match scoring: five weighted factors, each formula in its doc comment; deterministic ranking |
//! | [`matching`] | batched matching: least total ETA by Kuhn–Munkres ([`matching::assign_min_total_eta`]), greedy reference |
//! | [`pricing`] | surge per cell from demand / supply over the cell and its ring, smoothed over time; price quotes |
//! | [`routing`] | day routing with time windows: exact branch and bound up to 8 stops, insertion + 2-opt / or-opt above |
//! | [`error`] | [`Error`], the engine's one error type |

pub mod error;
pub mod eta;
pub mod geo_point;
pub mod job;
pub mod matching;
pub mod pricing;
pub mod routing;
pub mod scoring;
pub mod spatial;
pub mod types;

pub use error::{Error, Result};
pub use eta::{SpeedConfig, SpeedModel};
pub use geo_point::GeoPoint;
pub use pricing::{PriceQuote, PricingConfig, SurgeBook, SurgeConfig};
pub use routing::{RoutePlan, RoutingConfig, Stop, plan_day};
pub use scoring::{Candidate, ScoringConfig, Weights};
pub use spatial::{CellTree, Filter, IndexedContractor, Neighbor, SpatialIndex};
pub use job::{JobEvent, JobEventKind, JobMachine, JobState, JobStateKind};
pub use types::{
    ContractorId, ContractorProfile, ContractorStatus, CustomerId, Job, JobId, Money, Party, Rating,
    ShiftWindow, StatusKind, TimeWindow, Timestamp, Trade, TradeExperience, TradeSet, Urgency,
};
