//! `/v1/admin/…`: the operator's REST API, in `axum`, on the server's one
//! port, and its OpenAPI 3.1 document at `/v1/openapi.json`, generated from
//! these handlers by `utoipa`.
//!
//! Who may call: a token with the `admin` role, for any city; a
//! dispatcher's, reading their own city. Anything else is 403; no token or a
//! bad one, 401 (with `WWW-Authenticate: Bearer`). Every answer is JSON, an
//! error `{"error": "…"}`.
//!
//! The reads go through the city's [`Port`](crate::port::Port): to its actors
//! here, or to its owner over NATS (`dispatch.city.<city>.<epoch>.admin`),
//! answered by one executor (`query.rs`).

pub mod audit;
pub mod books;
pub mod contractors;
pub mod customers;
pub mod jobs;
pub mod kpis;
pub(crate) mod query;
pub mod webhooks;

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::Full;
use serde::Serialize;
use tower::ServiceExt;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::auth::Role;
use crate::protocol::ErrorCode;
use crate::refusal::Refusal;
use crate::server::Gateway;
use query::{AdminAnswer, AdminQuery};

/// A refused request: its status and why.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) StatusCode, pub(crate) String);

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong, for a person.
    pub error: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.0, Json(ErrorBody { error: self.1 })).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let status = match r.code {
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::BadRequest | ErrorCode::OutOfArea => StatusCode::BAD_REQUEST,
            ErrorCode::Conflict | ErrorCode::PaymentDeclined => StatusCode::CONFLICT,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(status, r.message)
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        ApiError(StatusCode::BAD_REQUEST, e.body_text())
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        ApiError(StatusCode::BAD_REQUEST, e.body_text())
    }
}

/// The verified claims of the request's bearer token.
fn bearer(headers: &HeaderMap, gw: &Gateway) -> Result<crate::auth::Claims, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| ApiError(StatusCode::UNAUTHORIZED, "missing token (Authorization: Bearer …)".into()))?;
    gw.auth.verify(token.trim()).map_err(|e| ApiError(StatusCode::UNAUTHORIZED, e.to_string()))
}

/// The city's, if `gw` serves it.
fn known(gw: &Gateway, city: &str) -> Result<(), ApiError> {
    if gw.cities.contains_key(city) { Ok(()) } else { Err(ApiError(StatusCode::NOT_FOUND, format!("no city {city}"))) }
}

/// Lets the token's holder read `city`: an admin anywhere, a dispatcher at home.
fn operator(headers: &HeaderMap, gw: &Gateway, city: &str) -> Result<(), ApiError> {
    let claims = bearer(headers, gw)?;
    match claims.role {
        Role::Admin => {}
        Role::Dispatcher if claims.city == city => {}
        Role::Dispatcher => return Err(ApiError(StatusCode::FORBIDDEN, format!("a dispatcher of {} reads only their city", claims.city))),
        other => {
            return Err(ApiError(StatusCode::FORBIDDEN, format!("the admin API is for admins and dispatchers, not a {}", other.as_str())));
        }
    }
    known(gw, city)
}

/// Lets only an admin change `city`: the admin's id.
fn admin(headers: &HeaderMap, gw: &Gateway, city: &str) -> Result<u64, ApiError> {
    let claims = bearer(headers, gw)?;
    if claims.role != Role::Admin {
        return Err(ApiError(StatusCode::FORBIDDEN, format!("only an admin may change this; you are a {}", claims.role.as_str())));
    }
    known(gw, city)?;
    Ok(claims.sub)
}

/// An id as the document states ids: an `int64` of at least 0 (the engine's
/// ids are unsigned, but no id above `i64::MAX` is ever handed out).
fn checked_id(id: u64, what: &str) -> Result<u64, ApiError> {
    if i64::try_from(id).is_err() {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("{what} {id} is above the largest id, {}", i64::MAX)));
    }
    Ok(id)
}

/// The most rows a page holds.
const MAX_PAGE: u32 = 500;

/// A page's size as asked (`None`: 100): 1 to [`MAX_PAGE`].
fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("limit must be 1 to {MAX_PAGE}, not {limit}")));
    }
    Ok(limit)
}

/// The wire names of `all`, for a string parameter's `enum`.
fn names<T: Serialize>(all: &[T]) -> Vec<serde_json::Value> {
    all.iter().filter_map(|v| serde_json::to_value(v).ok()).collect()
}

/// A trade parameter's schema: one of the trades' names.
fn trade_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(names(&dispatch_engine::Trade::ALL))).build()
}

/// Asks `city` (known to exist) the query.
async fn ask(gw: &Gateway, city: &str, query: AdminQuery) -> Result<AdminAnswer, ApiError> {
    let port = &gw.cities.get(city).ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no city {city}")))?.port;
    Ok(port.admin(query).await?)
}

/// A contractor, as `GET /v1/admin/cities/{city}/contractors/{id}` answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminContractor {
    /// The city.
    pub city: String,
    /// The contractor.
    pub id: u64,
    /// Their name.
    pub name: String,
    /// What they are doing now.
    pub status: String,
    /// Their trades: the years they declared, whether verified, and the years matching counts.
    pub trades: Vec<AdminTrade>,
    /// Their average rating, 0–5.
    pub rating: f32,
    /// How many reviews it rests on.
    pub reviews: u32,
    /// Where they were last seen: `[lat, lng]`.
    pub position: Option<[f64; 2]>,
    /// Whether they are suspended from offers.
    pub suspended: bool,
    /// Why, when they are.
    pub suspended_reason: Option<String>,
    /// The trades an operator verified a licence of, and until when (ms).
    pub verified: Vec<contractors::VerifiedRow>,
    /// Their insurance, if an operator recorded it.
    pub insurance: Option<contractors::InsuranceRow>,
}

/// A trade a contractor declared.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminTrade {
    /// The trade.
    pub trade: String,
    /// Years practised, as they declared it.
    pub declared_years: u8,
    /// Whether an operator verified a licence for it that holds now.
    pub verified: bool,
    /// The years matching counts: as declared once verified, else at most 2 (a self-declared value is not taken on trust).
    pub scored_years: u8,
}

/// One contractor as they stand.
#[utoipa::path(
    get,
    path = "/v1/admin/cities/{city}/contractors/{id}",
    tag = "contractors",
    params(
        ("city" = String, Path, description = "The city's configured name", example = "des-moines"),
        ("id" = u64, Path, description = "The contractor's id", example = 7)
    ),
    responses(
        (status = 200, description = "The contractor", body = AdminContractor),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin, nor this city's dispatcher", body = ErrorBody),
        (status = 404, description = "No such city or contractor", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn contractor(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Result<Json<AdminContractor>, ApiError> {
    let Path((city, id)) = path?;
    let id = checked_id(id, "contractor")?;
    operator(&headers, &gw, &city)?;
    let AdminAnswer::Contractor(c) = ask(&gw, &city, AdminQuery::Contractor(id)).await? else { return Err(mismatched()) };
    Ok(Json(contractor_view(city, id, c)))
}

/// A contractor's answer as the API shows it.
pub(super) fn contractor_view(city: String, id: u64, c: query::ContractorView) -> AdminContractor {
    let trades = c
        .trades
        .into_iter()
        .map(|(trade, declared_years, verified, scored_years)| AdminTrade { trade, declared_years, verified, scored_years })
        .collect();
    AdminContractor {
        city,
        id,
        name: c.name,
        status: c.status,
        trades,
        rating: c.rating.0,
        reviews: c.rating.1,
        position: c.position.map(|(lat, lng)| [lat, lng]),
        suspended: c.suspension.is_some(),
        suspended_reason: c.suspension.map(|s| s.reason),
        verified: c.vetting.iter().flat_map(|v| &v.trades).map(contractors::VerifiedRow::from).collect(),
        insurance: c.vetting.and_then(|v| v.insurance).map(|i| contractors::InsuranceRow { policy: i.policy, expires_at: i.expires.0 }),
    }
}

/// Why an admin changes something (blocks, suspends, cancels): kept in the audit trail.
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why (1 to 500 characters, not all blank, no control characters).
    #[schema(
        min_length = 1,
        max_length = 500,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub reason: String,
}

/// Suspends a contractor (admins only): no more offers, and an offer they hold goes to the next.
#[utoipa::path(
    post,
    path = "/v1/admin/cities/{city}/contractors/{id}/suspend",
    tag = "contractors",
    params(
        ("city" = String, Path, description = "The city's configured name", example = "des-moines"),
        ("id" = u64, Path, description = "The contractor's id", example = 7)
    ),
    request_body = Reason,
    responses(
        (status = 200, description = "Suspended", body = AdminContractor),
        (status = 400, description = "A malformed id or reason", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such city or contractor", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn suspend(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<(String, u64)>, PathRejection>,
    body: Result<Json<Reason>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<AdminContractor>, ApiError> {
    change_suspension(gw, headers, path, body, true).await
}

/// Reinstates a suspended contractor (admins only).
#[utoipa::path(
    post,
    path = "/v1/admin/cities/{city}/contractors/{id}/reinstate",
    tag = "contractors",
    params(
        ("city" = String, Path, description = "The city's configured name", example = "des-moines"),
        ("id" = u64, Path, description = "The contractor's id", example = 7)
    ),
    request_body = Reason,
    responses(
        (status = 200, description = "Reinstated", body = AdminContractor),
        (status = 400, description = "A malformed id or reason", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such city or contractor", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
async fn reinstate(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<(String, u64)>, PathRejection>,
    body: Result<Json<Reason>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<AdminContractor>, ApiError> {
    change_suspension(gw, headers, path, body, false).await
}

async fn change_suspension(
    gw: Arc<Gateway>,
    headers: HeaderMap,
    path: Result<Path<(String, u64)>, PathRejection>,
    body: Result<Json<Reason>, axum::extract::rejection::JsonRejection>,
    suspend: bool,
) -> Result<Json<AdminContractor>, ApiError> {
    let Path((city, id)) = path?;
    let id = checked_id(id, "contractor")?;
    let by = admin(&headers, &gw, &city)?;
    let Json(Reason { reason }) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    customers::checked_reason(&reason)?;
    let query = AdminQuery::Suspend { contractor: id, admin: by, suspend, reason };
    let AdminAnswer::Contractor(c) = ask(&gw, &city, query).await? else { return Err(mismatched()) };
    Ok(Json(contractor_view(city, id, c)))
}

/// An answer of another kind than asked (an owner of another build).
fn mismatched() -> ApiError {
    ApiError(StatusCode::SERVICE_UNAVAILABLE, "the city answered another question; retry".into())
}

/// The bearer scheme every route takes.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
    }
}

/// The API's OpenAPI document.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "dispatch admin API",
        description = "Operators' side of a city: jobs, contractors, customers (and blocking them), the books, the audit trail, hourly figures, webhook endpoints and their dead letters. Tokens: an admin's for any city, a dispatcher's to read their own."
    ),
    paths(jobs::job, jobs::jobs, jobs::history, jobs::cancel, contractors::contractors, contractors::directory, contractors::verify, contractors::insure, contractor, suspend, reinstate, books::books, audit::audit, customers::customer, customers::block, customers::unblock, webhooks::webhooks, webhooks::add, webhooks::remove, webhooks::dead_letters, webhooks::replay, kpis::kpis),
    components(schemas(
        jobs::AdminJob,
        contractors::ContractorRow,
        contractors::VerifiedRow,
        contractors::InsuranceRow,
        contractors::VerifyBody,
        contractors::InsuranceBody,
        contractors::ContractorPage,
        contractors::DirectoryRow,
        contractors::DirectoryPage,
        jobs::JobRow,
        jobs::JobPage,
        jobs::Cancelled,
        jobs::HistoryRow,
        jobs::HistoryPage,
        AdminContractor,
        AdminTrade,
        books::AdminBooks,
        ErrorBody,
        audit::AuditPage,
        audit::AuditEntry,
        customers::AdminCustomer,
        webhooks::WebhookRow,
        webhooks::WebhookList,
        webhooks::NewWebhook,
        webhooks::DeadLetter,
        webhooks::DeadLetterPage,
        webhooks::ReplayAsked,
        kpis::KpiRow,
        kpis::KpiPage,
        Reason
    )),
    modifiers(&BearerAuth)
)]
pub struct AdminApi;

/// The document as served at `/v1/openapi.json`.
#[must_use]
pub fn openapi_json() -> String {
    AdminApi::openapi().to_json().unwrap_or_default()
}

fn router() -> &'static axum::Router {
    static ROUTER: OnceLock<axum::Router> = OnceLock::new();
    ROUTER.get_or_init(|| {
        axum::Router::new()
            .route("/v1/openapi.json", get(|| async { ([(header::CONTENT_TYPE, "application/json")], openapi_json()) }))
            .route("/v1/admin/cities/{city}/jobs", get(jobs::jobs))
            .route("/v1/admin/cities/{city}/jobs/{job}", get(jobs::job))
            .route("/v1/admin/cities/{city}/job-history", get(jobs::history))
            .route("/v1/admin/cities/{city}/jobs/{job}/cancel", axum::routing::post(jobs::cancel))
            .route("/v1/admin/cities/{city}/contractors", get(contractors::contractors))
            .route("/v1/admin/cities/{city}/contractor-directory", get(contractors::directory))
            .route("/v1/admin/cities/{city}/contractors/{id}", get(contractor))
            .route("/v1/admin/cities/{city}/contractors/{id}/suspend", axum::routing::post(suspend))
            .route("/v1/admin/cities/{city}/contractors/{id}/verify", axum::routing::post(contractors::verify))
            .route("/v1/admin/cities/{city}/contractors/{id}/insurance", axum::routing::post(contractors::insure))
            .route("/v1/admin/cities/{city}/contractors/{id}/reinstate", axum::routing::post(reinstate))
            .route("/v1/admin/cities/{city}/books", get(books::books))
            .route("/v1/admin/cities/{city}/audit", get(audit::audit))
            .route("/v1/admin/cities/{city}/customers/{id}", get(customers::customer))
            .route("/v1/admin/cities/{city}/customers/{id}/block", axum::routing::post(customers::block))
            .route("/v1/admin/cities/{city}/customers/{id}/unblock", axum::routing::post(customers::unblock))
            .route("/v1/admin/cities/{city}/kpis", get(kpis::kpis))
            .route("/v1/admin/cities/{city}/webhooks", get(webhooks::webhooks).post(webhooks::add))
            .route("/v1/admin/cities/{city}/webhooks/{name}", axum::routing::delete(webhooks::remove))
            .route("/v1/admin/cities/{city}/webhooks/{name}/dead-letters", get(webhooks::dead_letters))
            .route("/v1/admin/cities/{city}/webhooks/{name}/replay", axum::routing::post(webhooks::replay))
            .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such admin route".into()) })
    })
}

/// Serves one request under `/v1/admin/` or `/v1/openapi.json`.
pub(crate) async fn serve(mut req: hyper::Request<hyper::body::Incoming>, gw: Arc<Gateway>) -> hyper::Response<Full<Bytes>> {
    req.extensions_mut().insert(gw);
    let Ok(response) = router().clone().oneshot(req.map(axum::body::Body::new)).await;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 20).await.unwrap_or_default();
    hyper::Response::from_parts(parts, Full::new(bytes))
}
