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
//! | [`lifecycle`] | one table: each party [`JobAction`] → its event, the job state after it, the contractor status ([`LIFECYCLE`]) |
//! | [`spatial`] | [`SpatialIndex`]: H3 cells each holding an R-tree ([`CellTree`]); k-nearest and within-radius with a [`Filter`] |
//! | [`ring_search`] | [`RingWalk`]: which cells a query visits — ring order, the proven stop bound, the sparse-city shortcut — driven by the index and by the live cell actors alike |
//! | [`eta`] | [`SpeedModel`]: per-cell speeds learned from GPS (EWMA) and ETA = distance × detour ÷ speed |
//! | [`scoring`] | match scoring: five weighted factors, each formula in its doc comment; deterministic ranking |
//! | [`matching`] | batched matching: least total ETA by Kuhn–Munkres ([`matching::assign_min_total_eta`]), greedy reference |
//! | [`payment`] | a job's money: [`payment::PaymentMachine`] beside the job's state machine, [`payment::PaymentTerms`] and their roundings, the double-entry [`payment::Ledger`] |
//! | [`kpi`] | a city's figures for an hour, folded event by event: counts, match and acceptance rates, time to match and to arrival (p50 / p90 from log-spaced bins, within 5 %), surge exposure, gross volume and platform revenue |
//! | [`notify`] | how a person wants to be reached away from the app: [`notify::Channel`]s and [`notify::QuietHours`] in their own time |
//! | [`pricing`] | surge per cell from demand / supply over the cell and its ring, smoothed over time; price quotes |
//! | [`routing`] | day routing with time windows: exact branch and bound up to 8 stops, insertion + 2-opt / or-opt above |
//! | [`error`] | [`Error`], the engine's one error type |

//!
//! ## Example: the nearest available plumbers
//!
//! ```
//! use dispatch_engine::spatial::IndexedContractor;
//! use dispatch_engine::{ContractorId, Filter, GeoPoint, SpatialIndex, StatusKind, Trade, TradeSet};
//!
//! let mut index = SpatialIndex::new(dispatch_engine::spatial::DEFAULT_RESOLUTION)?;
//! let downtown = GeoPoint::new(41.5868, -93.6250)?;
//! for (id, metres, status) in [(1, 900.0, StatusKind::Available), (2, 300.0, StatusKind::OnSite), (3, 2_500.0, StatusKind::Available)] {
//!     let c = IndexedContractor { id: ContractorId(id), status, trades: TradeSet::single(Trade::Plumbing), rating: 4.6 };
//!     index.upsert(c, downtown.destination(45.0, metres));
//! }
//! let filter = Filter { trades: TradeSet::single(Trade::Plumbing), available_only: true, ..Filter::default() };
//! let nearest = index.k_nearest(downtown, 2, &filter);
//! assert_eq!(nearest.iter().map(|n| n.contractor.id.0).collect::<Vec<_>>(), [1, 3]);
//! assert!((nearest[0].distance_m - 900.0).abs() < 0.01);
//! # Ok::<(), dispatch_engine::Error>(())
//! ```

pub mod error;
pub mod eta;
pub mod geo_point;
pub mod job;
pub mod kpi;
pub mod lifecycle;
pub mod matching;
pub mod notify;
pub mod payment;
pub mod pricing;
pub mod ring_search;
pub mod routing;
pub mod scoring;
pub mod spatial;
pub mod types;

pub use error::{Error, Result};
pub use eta::{SpeedConfig, SpeedModel};
pub use geo_point::GeoPoint;
pub use job::{JobEvent, JobEventKind, JobMachine, JobState, JobStateKind};
pub use lifecycle::{JobAction, LIFECYCLE, Step};
pub use pricing::{PriceQuote, PricingConfig, SurgeBook, SurgeConfig};
pub use ring_search::{OccupiedCells, RingWalk};
pub use routing::{RoutePlan, RoutingConfig, Stop, plan_day};
pub use scoring::{Candidate, ScoringConfig, Weights};
pub use spatial::{CellTree, Filter, IndexedContractor, Neighbor, SpatialIndex};
pub use types::{
    ContractorId, ContractorProfile, ContractorStatus, CustomerId, Job, JobId, Money, Party, Rating, RatingTally, ShiftWindow, StatusKind,
    TimeWindow, Timestamp, Trade, TradeExperience, TradeSet, Urgency,
};
