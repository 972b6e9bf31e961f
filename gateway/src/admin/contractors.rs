//! `GET /v1/admin/cities/{city}/contractors`: the city's live contractors
//! (online, and offline ones until the live map lets them go), from the
//! owner's live state, filtered by trade, status, rating and suspension, a
//! page at a time by id.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query};
use axum::http::{HeaderMap, StatusCode};
use dispatch_engine::{StatusKind, Trade};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::query::{AdminAnswer, AdminQuery};
use super::{ApiError, ErrorBody, ask, checked_id, mismatched, operator};
use crate::server::Gateway;

/// One row of the contractor list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContractorRow {
    /// The contractor.
    pub id: u64,
    /// What they are doing.
    pub status: String,
    /// Their trades.
    pub trades: Vec<String>,
    /// Their average rating, 0–5.
    pub rating: f32,
    /// Whether they are suspended from offers.
    pub suspended: bool,
    /// Where they were last seen: `[lat, lng]`.
    pub position: [f64; 2],
}

/// A page of contractors.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContractorPage {
    /// The city.
    pub city: String,
    /// The contractors, by id.
    pub contractors: Vec<ContractorRow>,
    /// The cursor of the next page (`?after=`), when this one is full.
    pub next: Option<u64>,
}

fn status_schema() -> Object {
    let all =
        [StatusKind::Offline, StatusKind::Available, StatusKind::Offered, StatusKind::EnRoute, StatusKind::OnSite, StatusKind::OnBreak];
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(super::names(&all))).build()
}

/// Which contractors.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ContractorsParams {
    /// Only contractors of this trade.
    #[param(schema_with = super::trade_schema)]
    pub trade: Option<Trade>,
    /// Only contractors doing this.
    #[param(schema_with = status_schema)]
    pub status: Option<StatusKind>,
    /// Only contractors rated at least this (0 to 5).
    #[param(minimum = 0, maximum = 5)]
    pub min_rating: Option<f32>,
    /// Only suspended contractors (`true`) or only the others (`false`).
    pub suspended: Option<bool>,
    /// The last id of the page before (none: from the first).
    #[param(minimum = 0)]
    pub after: Option<u64>,
    /// How many at most (1 to 500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// The city's live contractors, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/admin/cities/{city}/contractors",
    tag = "contractors",
    params(("city" = String, Path, description = "The city's configured name", example = "des-moines"), ContractorsParams),
    responses(
        (status = 200, description = "A page of contractors", body = ContractorPage),
        (status = 400, description = "A malformed filter, cursor or limit", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin, nor this city's dispatcher", body = ErrorBody),
        (status = 404, description = "No such city", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn contractors(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<ContractorsParams>, QueryRejection>,
) -> Result<Json<ContractorPage>, ApiError> {
    let Path(city) = path?;
    let Query(p) = params?;
    let after = p.after.map(|a| checked_id(a, "after")).transpose()?;
    operator(&headers, &gw, &city)?;
    let limit = super::page_limit(p.limit)?;
    if p.min_rating.is_some_and(|r| !(0.0..=5.0).contains(&r)) {
        return Err(ApiError(StatusCode::BAD_REQUEST, "min_rating must be 0 to 5".into()));
    }
    let query =
        AdminQuery::Contractors { after, limit, trade: p.trade, status: p.status, min_rating: p.min_rating, suspended: p.suspended };
    let AdminAnswer::Contractors(found) = ask(&gw, &city, query).await? else { return Err(mismatched()) };
    let contractors: Vec<ContractorRow> = found
        .iter()
        .map(|(c, suspended)| ContractorRow {
            id: c.id.0,
            status: serde_json::to_value(c.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            trades: Trade::ALL.iter().filter(|t| c.trades.contains(**t)).map(|t| t.as_str().to_owned()).collect(),
            rating: c.rating,
            suspended: *suspended,
            position: [c.point.lat(), c.point.lng()],
        })
        .collect();
    let next = contractors.last().map(|c| c.id).filter(|_| contractors.len() == limit as usize);
    Ok(Json(ContractorPage { city, contractors, next }))
}
