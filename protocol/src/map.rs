//! The dispatcher's map on the wire: cells, contractors, jobs and the
//! matching figures of `map_snapshot` and `map_delta` frames.

use dispatch_engine::{GeoPoint, JobStateKind, StatusKind};
use serde::{Deserialize, Serialize};

/// One H3 cell on the map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapCell {
    /// The H3 index, hex.
    pub cell: String,
    /// Available contractors in the cell.
    pub supply: u32,
    /// Open jobs in the cell.
    pub demand: u32,
    /// The surge multiplier.
    pub surge: f64,
    /// The hexagon's corners as `[lat, lng]`, from h3o.
    pub boundary: Vec<[f64; 2]>,
}

/// A contractor on the map.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MapContractor {
    /// Who.
    pub id: u64,
    /// Where (last written).
    pub point: GeoPoint,
    /// What they are doing; `offline` once they leave.
    pub status: StatusKind,
    /// The version of this change.
    pub version: u64,
}

/// A job on the map.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MapJob {
    /// The job.
    pub id: u64,
    /// Its site.
    pub point: GeoPoint,
    /// Its state.
    pub state: JobStateKind,
    /// The contractor offered or assigned, if any.
    pub contractor: Option<u64>,
    /// The version of this change.
    pub version: u64,
    /// Where its money is (`authorized`, `captured`, …); absent for a job without payment.
    #[serde(default)]
    pub payment: Option<dispatch_engine::payment::PaymentState>,
}

/// How matching has gone: for the map's side panel.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct MatchStats {
    /// Jobs accepted in the last 60 seconds.
    pub matched_last_minute: u32,
    /// Jobs accepted since the city started.
    pub matched_total: u64,
    /// Median seconds from posting to acceptance over the last 500 matches.
    pub median_match_secs: Option<f64>,
}
