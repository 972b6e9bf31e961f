//! Jobs as operators see them: `GET /v1/admin/cities/{city}/jobs` (the
//! city's live jobs — open, and finished until the live map lets them go —
//! filtered by state, trade and posting time, a page at a time by id),
//! `GET …/jobs/{job}` (one job's whole log and its payment) and
//! `POST …/jobs/{job}/cancel` (an admin calls a job off, with a reason the
//! parties see, audited first).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query};
use axum::http::{HeaderMap, StatusCode};
use dispatch_engine::{JobStateKind, Trade};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::{IntoParams, ToSchema};

use super::query::{AdminAnswer, AdminQuery};
use super::{ApiError, ErrorBody, Reason, admin, ask, checked_id, mismatched, operator};
use crate::server::Gateway;

/// A job, as `GET /v1/admin/cities/{city}/jobs/{job}` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminJob {
    /// The city.
    pub city: String,
    /// The job.
    pub job: u64,
    /// Its log in order: each entry as the `event` frame parties receive (`docs/protocol.md`).
    #[schema(value_type = Vec<Object>)]
    pub timeline: Vec<Value>,
    /// Its payment as its receipt shows it (`null`: none).
    #[schema(value_type = Option<Object>)]
    pub payment: Option<Value>,
}

/// One job: its whole log and its payment.
#[utoipa::path(
    get,
    path = "/v1/admin/cities/{city}/jobs/{job}",
    tag = "jobs",
    params(
        ("city" = String, Path, description = "The city's configured name", example = "des-moines"),
        ("job" = u64, Path, description = "The job's id", example = 1)
    ),
    responses(
        (status = 200, description = "The job", body = AdminJob),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin, nor this city's dispatcher", body = ErrorBody),
        (status = 404, description = "No such city or job", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn job(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Result<Json<AdminJob>, ApiError> {
    let Path((city, job)) = path?;
    let job = checked_id(job, "job")?;
    operator(&headers, &gw, &city)?;
    let AdminAnswer::Job(view) = ask(&gw, &city, AdminQuery::Job(job)).await? else { return Err(mismatched()) };
    let timeline = view.timeline.iter().filter_map(|e| serde_json::from_str(&crate::protocol::encode_server(&e.frame())).ok()).collect();
    let payment = view.payment.and_then(|p| serde_json::to_value(p).ok());
    Ok(Json(AdminJob { city, job, timeline, payment }))
}

/// One row of the job list.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobRow {
    /// The job.
    pub id: u64,
    /// Its state.
    pub state: String,
    /// Its trade.
    pub trade: String,
    /// When it was posted, ms since the Unix epoch.
    pub posted_at: i64,
    /// The contractor offered or assigned, if any.
    pub contractor: Option<u64>,
    /// Where its money is, if it has a payment.
    pub payment: Option<String>,
    /// Its site: `[lat, lng]`.
    pub site: [f64; 2],
}

/// A page of jobs.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobPage {
    /// The city.
    pub city: String,
    /// The jobs, by id.
    pub jobs: Vec<JobRow>,
    /// The cursor of the next page (`?after=`), when this one is full.
    pub next: Option<u64>,
}

fn state_schema() -> Object {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(super::names(&JobStateKind::ALL))).build()
}

/// Which jobs.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobsParams {
    /// Only jobs in this state.
    #[param(schema_with = state_schema)]
    pub state: Option<JobStateKind>,
    /// Only jobs of this trade.
    #[param(schema_with = super::trade_schema)]
    pub trade: Option<Trade>,
    /// Only jobs posted at or after this, ms since the Unix epoch.
    pub from: Option<i64>,
    /// Only jobs posted before this, ms since the Unix epoch.
    pub until: Option<i64>,
    /// The last id of the page before (none: from the first).
    #[param(minimum = 0)]
    pub after: Option<u64>,
    /// How many jobs at most (1 to 500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// The city's live jobs, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/admin/cities/{city}/jobs",
    tag = "jobs",
    params(("city" = String, Path, description = "The city's configured name", example = "des-moines"), JobsParams),
    responses(
        (status = 200, description = "A page of jobs", body = JobPage),
        (status = 400, description = "A malformed filter, cursor or limit", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin, nor this city's dispatcher", body = ErrorBody),
        (status = 404, description = "No such city", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn jobs(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<JobsParams>, QueryRejection>,
) -> Result<Json<JobPage>, ApiError> {
    let Path(city) = path?;
    let Query(p) = params?;
    let after = p.after.map(|a| checked_id(a, "after")).transpose()?;
    operator(&headers, &gw, &city)?;
    let limit = super::page_limit(p.limit)?;
    let query = AdminQuery::Jobs { after, limit, state: p.state, trade: p.trade, from: p.from, until: p.until };
    let AdminAnswer::Jobs(found) = ask(&gw, &city, query).await? else { return Err(mismatched()) };
    let name = |v: Value| v.as_str().map(str::to_owned).unwrap_or_default();
    let jobs: Vec<JobRow> = found
        .iter()
        .map(|j| JobRow {
            id: j.id.0,
            state: name(serde_json::to_value(j.state).unwrap_or_default()),
            trade: j.trade.as_str().to_owned(),
            posted_at: j.posted_at.0,
            contractor: j.contractor.map(|c| c.0),
            payment: j.payment.map(|p| name(serde_json::to_value(p).unwrap_or_default())),
            site: [j.point.lat(), j.point.lng()],
        })
        .collect();
    let next = jobs.last().map(|j| j.id).filter(|_| jobs.len() == limit as usize);
    Ok(Json(JobPage { city, jobs, next }))
}

/// One row of the job history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryRow {
    /// The job.
    pub id: u64,
    /// Its latest state.
    pub state: String,
    /// Its trade.
    pub trade: String,
    /// When it was posted, ms since the Unix epoch.
    pub posted_at: i64,
    /// Who posted it.
    pub customer: u64,
    /// The contractor offered or assigned last, if any.
    pub contractor: Option<u64>,
}

/// A page of the job history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryPage {
    /// The city.
    pub city: String,
    /// The jobs found, by id (posting order).
    pub jobs: Vec<HistoryRow>,
    /// Where to go on from (`?after=`); none once the history is read to its end. A page may be short and still have a `next`: each read looks at a bounded number of jobs.
    pub next: Option<u64>,
}

/// Every job the city's store holds, finished ones included, from its job index: filtered, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/admin/cities/{city}/job-history",
    tag = "jobs",
    params(("city" = String, Path, description = "The city's configured name", example = "des-moines"), JobsParams),
    responses(
        (status = 200, description = "A page of the history", body = HistoryPage),
        (status = 400, description = "A malformed filter, cursor or limit", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin, nor this city's dispatcher", body = ErrorBody),
        (status = 404, description = "No such city", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn history(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<JobsParams>, QueryRejection>,
) -> Result<Json<HistoryPage>, ApiError> {
    let Path(city) = path?;
    let Query(p) = params?;
    let after = p.after.map(|a| checked_id(a, "after")).transpose()?;
    operator(&headers, &gw, &city)?;
    let limit = super::page_limit(p.limit)?;
    let query = AdminQuery::JobHistory { after, limit, state: p.state, trade: p.trade, from: p.from, until: p.until };
    let AdminAnswer::JobHistory(rows, next) = ask(&gw, &city, query).await? else { return Err(mismatched()) };
    let name = |v: Value| v.as_str().map(str::to_owned).unwrap_or_default();
    let jobs = rows
        .iter()
        .map(|r| HistoryRow {
            id: r.job.0,
            state: name(serde_json::to_value(r.state).unwrap_or_default()),
            trade: r.trade.as_str().to_owned(),
            posted_at: r.posted_at.0,
            customer: r.customer.0,
            contractor: r.contractor.map(|c| c.0),
        })
        .collect();
    Ok(Json(HistoryPage { city, jobs, next }))
}

/// The job after an admin called it off.
#[derive(Debug, Serialize, ToSchema)]
pub struct Cancelled {
    /// The city.
    pub city: String,
    /// The job.
    pub job: u64,
    /// Its state now (`cancelled`).
    pub state: String,
}

/// Calls a job off (admins only), with a reason the parties see.
#[utoipa::path(
    post,
    path = "/v1/admin/cities/{city}/jobs/{job}/cancel",
    tag = "jobs",
    params(
        ("city" = String, Path, description = "The city's configured name", example = "des-moines"),
        ("job" = u64, Path, description = "The job's id", example = 1)
    ),
    request_body = Reason,
    responses(
        (status = 200, description = "Cancelled", body = Cancelled),
        (status = 400, description = "A malformed id or reason", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such city or job", body = ErrorBody),
        (status = 409, description = "The job is finished", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn cancel(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<(String, u64)>, PathRejection>,
    body: Result<Json<Reason>, JsonRejection>,
) -> Result<Json<Cancelled>, ApiError> {
    let Path((city, job)) = path?;
    let job = checked_id(job, "job")?;
    let by = admin(&headers, &gw, &city)?;
    let Json(Reason { reason }) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    super::customers::checked_reason(&reason)?;
    let AdminAnswer::Cancelled(state) = ask(&gw, &city, AdminQuery::Cancel { job, admin: by, reason }).await? else {
        return Err(mismatched());
    };
    let state = serde_json::to_value(state.kind()).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    Ok(Json(Cancelled { city, job, state }))
}
