//! `GET /v1/admin/cities/{city}/contractors`: the city's live contractors
//! (online, and offline ones until the live map lets them go), from the
//! owner's live state, filtered by trade, status, rating and suspension, a
//! page at a time by id.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query};
use axum::http::{HeaderMap, StatusCode};
use dispatch_engine::{StatusKind, Trade};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::query::{AdminAnswer, AdminQuery, ContractorFilter};
use super::{AdminContractor, ApiError, ErrorBody, admin, ask, checked_id, contractor_view, mismatched, operator};
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
    /// Only contractors with a licence that holds now (`true`) — for `trade`, if given — or only the others (`false`).
    pub verified: Option<bool>,
    /// The last id of the page before (none: from the first).
    #[param(minimum = 0)]
    pub after: Option<u64>,
    /// How many at most (1 to 500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

impl ContractorsParams {
    /// The filter these parameters ask for.
    fn filter(&self) -> ContractorFilter {
        ContractorFilter {
            trade: self.trade,
            status: self.status,
            min_rating: self.min_rating,
            suspended: self.suspended,
            verified: self.verified,
        }
    }

    /// The cursor and page size, checked.
    fn page(&self) -> Result<(Option<u64>, u32), ApiError> {
        if self.min_rating.is_some_and(|r| !(0.0..=5.0).contains(&r)) {
            return Err(ApiError(StatusCode::BAD_REQUEST, "min_rating must be 0 to 5".into()));
        }
        Ok((self.after.map(|a| checked_id(a, "after")).transpose()?, super::page_limit(self.limit)?))
    }
}

/// One contractor of the directory.
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryRow {
    /// The contractor.
    pub id: u64,
    /// Their name.
    pub name: String,
    /// Their trades.
    pub trades: Vec<String>,
    /// What they were doing when last stored.
    pub status: String,
    /// Their average rating, 0–5.
    pub rating: f32,
    /// How many reviews it rests on.
    pub reviews: u32,
    /// Whether they are suspended.
    pub suspended: bool,
}

/// A page of the directory.
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryPage {
    /// The city.
    pub city: String,
    /// The contractors found, by id.
    pub contractors: Vec<DirectoryRow>,
    /// Where to go on from (`?after=`); none once the directory is read to its end. A page may be short and still have a `next`: each read looks at a bounded number of contractors.
    pub next: Option<u64>,
}

/// Every registered contractor of the city, offline ones included, from its directory: filtered, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/admin/cities/{city}/contractor-directory",
    tag = "contractors",
    params(("city" = String, Path, description = "The city's configured name", example = "des-moines"), ContractorsParams),
    responses(
        (status = 200, description = "A page of the directory", body = DirectoryPage),
        (status = 400, description = "A malformed filter, cursor or limit", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin, nor this city's dispatcher", body = ErrorBody),
        (status = 404, description = "No such city", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn directory(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<ContractorsParams>, QueryRejection>,
) -> Result<Json<DirectoryPage>, ApiError> {
    let Path(city) = path?;
    let Query(p) = params?;
    let (after, limit) = p.page()?;
    operator(&headers, &gw, &city)?;
    let query = AdminQuery::ContractorDirectory { after, limit, filter: p.filter() };
    let AdminAnswer::ContractorDirectory(rows, next) = ask(&gw, &city, query).await? else { return Err(mismatched()) };
    let contractors = rows
        .into_iter()
        .map(|(suspended, r)| DirectoryRow {
            id: r.contractor.0,
            name: r.name,
            trades: Trade::ALL.iter().filter(|t| r.trades.contains(**t)).map(|t| t.as_str().to_owned()).collect(),
            status: serde_json::to_value(r.status).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            rating: r.rating,
            reviews: r.reviews,
            suspended,
        })
        .collect();
    Ok(Json(DirectoryPage { city, contractors, next }))
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
    let (after, limit) = p.page()?;
    operator(&headers, &gw, &city)?;
    let query = AdminQuery::Contractors { after, limit, filter: p.filter() };
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

/// A trade an operator verified.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerifiedRow {
    /// The trade.
    pub trade: String,
    /// The licence number seen.
    pub licence: String,
    /// When it expires, ms since the Unix epoch.
    pub expires_at: i64,
}

impl From<&dispatch_actors::VerifiedTrade> for VerifiedRow {
    fn from(t: &dispatch_actors::VerifiedTrade) -> Self {
        VerifiedRow { trade: t.trade.as_str().to_owned(), licence: t.licence.clone(), expires_at: t.expires.0 }
    }
}

/// Insurance an operator recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct InsuranceRow {
    /// The policy.
    pub policy: String,
    /// When it expires, ms since the Unix epoch.
    pub expires_at: i64,
}

/// A licence checked: for which trade, its number, until when.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    /// The trade.
    #[schema(schema_with = super::trade_schema)]
    pub trade: Trade,
    /// The licence number (1 to 100 printable characters).
    #[schema(min_length = 1, max_length = 100, pattern = r"^[!-~][ -~]*$")]
    pub licence: String,
    /// When it expires, ms since the Unix epoch.
    #[schema(minimum = 0)]
    #[serde(deserialize_with = "whole_ms")]
    pub expires_at: i64,
}

/// Insurance checked: the policy, until when.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InsuranceBody {
    /// The policy (1 to 100 printable characters).
    #[schema(min_length = 1, max_length = 100, pattern = r"^[!-~][ -~]*$")]
    pub policy: String,
    /// When it expires, ms since the Unix epoch.
    #[schema(minimum = 0)]
    #[serde(deserialize_with = "whole_ms")]
    pub expires_at: i64,
}

/// A JSON integer, as JSON Schema counts them: `1700000000000` or `1700000000000.0`.
fn whole_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(ms) = n.as_i64() {
        return Ok(ms);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => Ok(f as i64),
        _ => Err(serde::de::Error::custom(format!("expires_at must be a whole number of ms, not {n}"))),
    }
}

/// A licence or policy number as the document states it: 1 to 100 printable ASCII characters, not starting blank.
fn checked_number(what: &str, number: &str) -> Result<(), ApiError> {
    let printable = number.chars().all(|c| (' '..='~').contains(&c)) && !number.starts_with(' ');
    if number.is_empty() || number.len() > 100 || !printable {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("{what} must be 1 to 100 printable characters")));
    }
    Ok(())
}

/// A time as the document states it: ms since the Unix epoch, not before it.
fn checked_time(ms: i64) -> Result<(), ApiError> {
    if ms < 0 {
        return Err(ApiError(StatusCode::BAD_REQUEST, "expires_at must be ms since the Unix epoch, not negative".into()));
    }
    Ok(())
}

/// Records a contractor's licence for a trade (admins only): with the trade
/// among `licensed_trades`, they are offered its jobs only while it holds.
#[utoipa::path(
    post,
    path = "/v1/admin/cities/{city}/contractors/{id}/verify",
    tag = "contractors",
    params(
        ("city" = String, Path, description = "The city's configured name", example = "des-moines"),
        ("id" = u64, Path, description = "The contractor's id", example = 7)
    ),
    request_body = VerifyBody,
    responses(
        (status = 200, description = "Recorded", body = AdminContractor),
        (status = 400, description = "A malformed id or body", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such city or contractor", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn verify(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<(String, u64)>, PathRejection>,
    body: Result<Json<VerifyBody>, JsonRejection>,
) -> Result<Json<AdminContractor>, ApiError> {
    let Path((city, id)) = path?;
    let id = checked_id(id, "contractor")?;
    let by = admin(&headers, &gw, &city)?;
    let Json(VerifyBody { trade, licence, expires_at }) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    checked_number("licence", &licence)?;
    checked_time(expires_at)?;
    let query = AdminQuery::Verify { contractor: id, admin: by, trade, licence, expires: expires_at };
    let AdminAnswer::Contractor(c) = ask(&gw, &city, query).await? else { return Err(mismatched()) };
    Ok(Json(contractor_view(city, id, c)))
}

/// Records a contractor's insurance (admins only).
#[utoipa::path(
    post,
    path = "/v1/admin/cities/{city}/contractors/{id}/insurance",
    tag = "contractors",
    params(
        ("city" = String, Path, description = "The city's configured name", example = "des-moines"),
        ("id" = u64, Path, description = "The contractor's id", example = 7)
    ),
    request_body = InsuranceBody,
    responses(
        (status = 200, description = "Recorded", body = AdminContractor),
        (status = 400, description = "A malformed id or body", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such city or contractor", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn insure(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<(String, u64)>, PathRejection>,
    body: Result<Json<InsuranceBody>, JsonRejection>,
) -> Result<Json<AdminContractor>, ApiError> {
    let Path((city, id)) = path?;
    let id = checked_id(id, "contractor")?;
    let by = admin(&headers, &gw, &city)?;
    let Json(InsuranceBody { policy, expires_at }) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    checked_number("policy", &policy)?;
    checked_time(expires_at)?;
    let query = AdminQuery::Insure { contractor: id, admin: by, policy, expires: expires_at };
    let AdminAnswer::Contractor(c) = ask(&gw, &city, query).await? else { return Err(mismatched()) };
    Ok(Json(contractor_view(city, id, c)))
}
