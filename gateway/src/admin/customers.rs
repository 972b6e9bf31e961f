//! A customer as operators see them, and blocking them from posting:
//! `GET /v1/admin/cities/{city}/customers/{id}` (admins and this city's
//! dispatchers), `POST …/block` and `POST …/unblock` (admins only), each
//! with a reason, each in the audit trail before it takes effect.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Extension, Path};
use axum::http::{HeaderMap, StatusCode};
use dispatch_actors::{Actor, BlockRecord};
use serde::Serialize;
use utoipa::ToSchema;

use super::query::{AdminAnswer, AdminQuery};
use super::{ApiError, ErrorBody, Reason, admin, ask, checked_id, mismatched, operator};
use crate::server::Gateway;

/// The longest reason taken, characters.
const MAX_REASON: usize = 500;

/// A customer as operators see them.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminCustomer {
    /// The city.
    pub city: String,
    /// The customer.
    pub id: u64,
    /// Whether they are blocked from posting.
    pub blocked: bool,
    /// Since when, ms since the Unix epoch.
    pub blocked_at: Option<i64>,
    /// By which admin.
    pub blocked_by: Option<u64>,
    /// Why.
    pub reason: Option<String>,
}

/// A reason as the document states it: 1 to 500 characters, not all blank, no control characters.
pub(super) fn checked_reason(reason: &str) -> Result<(), ApiError> {
    if reason.trim().is_empty() || reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(ApiError(StatusCode::BAD_REQUEST, format!("reason must be 1 to {MAX_REASON} printable characters, not all blank")));
    }
    Ok(())
}

fn view(city: String, id: u64, block: Option<BlockRecord>) -> AdminCustomer {
    let by = |actor: Actor| match actor {
        Actor::Admin(id) | Actor::Dispatcher(id) => id,
    };
    AdminCustomer {
        city,
        id,
        blocked: block.is_some(),
        blocked_at: block.as_ref().map(|b| b.at.0),
        blocked_by: block.as_ref().map(|b| by(b.by)),
        reason: block.map(|b| b.reason),
    }
}

/// One customer.
#[utoipa::path(
    get,
    path = "/v1/admin/cities/{city}/customers/{id}",
    tag = "customers",
    params(
        ("city" = String, Path, description = "The city's configured name", example = "des-moines"),
        ("id" = u64, Path, description = "The customer's id", example = 100)
    ),
    responses(
        (status = 200, description = "The customer", body = AdminCustomer),
        (status = 400, description = "A malformed id", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin, nor this city's dispatcher", body = ErrorBody),
        (status = 404, description = "No such city", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn customer(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<(String, u64)>, PathRejection>,
) -> Result<Json<AdminCustomer>, ApiError> {
    let Path((city, id)) = path?;
    let id = checked_id(id, "customer")?;
    operator(&headers, &gw, &city)?;
    let AdminAnswer::Customer(block) = ask(&gw, &city, AdminQuery::Customer(id)).await? else { return Err(mismatched()) };
    Ok(Json(view(city, id, block)))
}

/// Blocks a customer from posting.
#[utoipa::path(
    post,
    path = "/v1/admin/cities/{city}/customers/{id}/block",
    tag = "customers",
    params(
        ("city" = String, Path, description = "The city's configured name", example = "des-moines"),
        ("id" = u64, Path, description = "The customer's id", example = 100)
    ),
    request_body = Reason,
    responses(
        (status = 200, description = "Blocked", body = AdminCustomer),
        (status = 400, description = "A malformed id or reason", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such city", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn block(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<(String, u64)>, PathRejection>,
    body: Result<Json<Reason>, JsonRejection>,
) -> Result<Json<AdminCustomer>, ApiError> {
    change(gw, headers, path, body, true).await
}

/// Lets a blocked customer post again.
#[utoipa::path(
    post,
    path = "/v1/admin/cities/{city}/customers/{id}/unblock",
    tag = "customers",
    params(
        ("city" = String, Path, description = "The city's configured name", example = "des-moines"),
        ("id" = u64, Path, description = "The customer's id", example = 100)
    ),
    request_body = Reason,
    responses(
        (status = 200, description = "Unblocked", body = AdminCustomer),
        (status = 400, description = "A malformed id or reason", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin", body = ErrorBody),
        (status = 404, description = "No such city", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn unblock(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<(String, u64)>, PathRejection>,
    body: Result<Json<Reason>, JsonRejection>,
) -> Result<Json<AdminCustomer>, ApiError> {
    change(gw, headers, path, body, false).await
}

/// Blocks (`block`) or unblocks a customer, as an admin.
async fn change(
    gw: Arc<Gateway>,
    headers: HeaderMap,
    path: Result<Path<(String, u64)>, PathRejection>,
    body: Result<Json<Reason>, JsonRejection>,
    block: bool,
) -> Result<Json<AdminCustomer>, ApiError> {
    let Path((city, id)) = path?;
    let id = checked_id(id, "customer")?;
    let by = admin(&headers, &gw, &city)?;
    let Json(Reason { reason }) = body.map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.body_text()))?;
    checked_reason(&reason)?;
    let query = AdminQuery::Block { customer: id, admin: by, block, reason };
    let AdminAnswer::Customer(now) = ask(&gw, &city, query).await? else { return Err(mismatched()) };
    Ok(Json(view(city, id, now)))
}
