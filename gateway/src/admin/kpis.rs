//! A city's key figures by hour: `GET /v1/admin/cities/{city}/kpis`
//! (admins and the city's dispatchers). The hours are kept up as events
//! happen (`dispatch_actors::kpis`); this reads the stored ones, never the logs.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query};
use axum::http::{HeaderMap, StatusCode};
use dispatch_engine::kpi::{HOUR_MS, HourKpis, KpiReport, hour_of};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::query::{AdminAnswer, AdminQuery};
use super::{ApiError, ErrorBody, ask, mismatched, operator};
use crate::server::Gateway;

/// Which hours.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KpiParams {
    /// From the hour holding this instant, ms since the Unix epoch (default: 24 hours before `until`).
    #[param(minimum = 0)]
    pub from: Option<i64>,
    /// Up to the hour holding this instant, excluded, ms since the Unix epoch (default: the next hour's start).
    #[param(minimum = 0)]
    pub until: Option<i64>,
}

/// An hour's figures, or a period's.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiRow {
    /// The hour's start, ms since the Unix epoch (the period's first hour for a total).
    pub hour_start: i64,
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
    /// Offers made.
    pub offered: u64,
    /// Matched ÷ posted.
    pub match_rate: Option<f64>,
    /// Offers accepted ÷ offers made.
    pub acceptance_rate: Option<f64>,
    /// Seconds from posting to acceptance, median (within 5 %).
    pub time_to_match_p50: Option<f64>,
    /// Seconds from posting to acceptance, 90th percentile.
    pub time_to_match_p90: Option<f64>,
    /// Seconds from acceptance to arrival, median.
    pub time_to_arrival_p50: Option<f64>,
    /// Seconds from acceptance to arrival, 90th percentile.
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

impl KpiRow {
    fn of(hour: i64, kpis: &HourKpis) -> Self {
        let r: KpiReport = kpis.report();
        KpiRow {
            hour_start: hour * HOUR_MS,
            posted: r.posted,
            matched: r.matched,
            completed: r.completed,
            cancelled: r.cancelled,
            expired: r.expired,
            offered: kpis.offered,
            match_rate: r.match_rate,
            acceptance_rate: r.acceptance_rate,
            time_to_match_p50: r.time_to_match_p50,
            time_to_match_p90: r.time_to_match_p90,
            time_to_arrival_p50: r.time_to_arrival_p50,
            time_to_arrival_p90: r.time_to_arrival_p90,
            surge_exposure: r.surge_exposure,
            mean_surge: r.mean_surge,
            gross_volume: r.gross_volume,
            platform_revenue: r.platform_revenue,
        }
    }
}

/// A period's figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct KpiPage {
    /// The city.
    pub city: String,
    /// The period covered: its first hour's start, ms.
    pub from: i64,
    /// The period's end (excluded), ms: at most 31 days after `from`.
    pub until: i64,
    /// Each hour with anything in it, in order.
    pub hours: Vec<KpiRow>,
    /// The period's hours added together.
    pub total: KpiRow,
}

/// The city's figures by hour: a period longer than 31 days is cut at 31 days after `from`; one ending before it starts is empty.
#[utoipa::path(
    get,
    path = "/v1/admin/cities/{city}/kpis",
    tag = "kpis",
    params(("city" = String, Path, description = "The city's configured name", example = "des-moines"), KpiParams),
    responses(
        (status = 200, description = "The figures", body = KpiPage),
        (status = 400, description = "A negative or malformed instant", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin, nor this city's dispatcher", body = ErrorBody),
        (status = 404, description = "No such city", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn kpis(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<KpiParams>, QueryRejection>,
) -> Result<Json<KpiPage>, ApiError> {
    let Path(city) = path?;
    let Query(p) = params?;
    if p.from.is_some_and(|f| f < 0) || p.until.is_some_and(|u| u < 0) {
        return Err(ApiError(StatusCode::BAD_REQUEST, "from and until are ms since the Unix epoch, not negative".into()));
    }
    operator(&headers, &gw, &city)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
    let until = p.until.map_or(hour_of(now) + 1, hour_of);
    let from = p.from.map_or(until - 24, hour_of).max(0);
    let until = until.clamp(from, from + dispatch_actors::kpis::MAX_HOURS);
    let AdminAnswer::Kpis(found) = ask(&gw, &city, AdminQuery::Kpis { from, until }).await? else { return Err(mismatched()) };
    let mut total = HourKpis::default();
    for (_, hour) in &found {
        total.merge(hour);
    }
    let hours = found.iter().map(|(hour, kpis)| KpiRow::of(*hour, kpis)).collect();
    Ok(Json(KpiPage { city, from: from * HOUR_MS, until: until * HOUR_MS, hours, total: KpiRow::of(from, &total) }))
}
