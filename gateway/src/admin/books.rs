//! A city's books by kind of account: `GET /v1/admin/cities/{city}/books`
//! (admins and the city's dispatchers; `docs/payments.md`).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Extension, Path};
use axum::http::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;

use super::query::{AdminAnswer, AdminQuery};
use super::{ApiError, ErrorBody, ask, mismatched, operator};
use crate::server::Gateway;

/// A city's books by kind of account, cents (they sum to zero; `held` is outside the balances).
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminBooks {
    /// The city.
    pub city: String,
    /// − charged to customers' cards.
    pub customer_funding: i64,
    /// Charged, not yet refunded or released.
    pub escrow: i64,
    /// Released to contractors, not yet sent.
    pub contractor_payable: i64,
    /// Sent to contractors.
    pub payouts: i64,
    /// The platform's fees, less processor fees and losses it bore.
    pub platform_revenue: i64,
    /// What the processor kept.
    pub processor_fees: i64,
    /// Returned to customers' cards.
    pub refunds: i64,
    /// Held on cards now.
    pub held: i64,
}

/// The city's books.
#[utoipa::path(
    get,
    path = "/v1/admin/cities/{city}/books",
    tag = "money",
    params(("city" = String, Path, description = "The city's configured name", example = "des-moines")),
    responses(
        (status = 200, description = "The books", body = AdminBooks),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin, nor this city's dispatcher", body = ErrorBody),
        (status = 404, description = "No such city", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn books(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<AdminBooks>, ApiError> {
    let Path(city) = path?;
    operator(&headers, &gw, &city)?;
    let AdminAnswer::Books(b) = ask(&gw, &city, AdminQuery::Books).await? else { return Err(mismatched()) };
    Ok(Json(AdminBooks {
        city,
        customer_funding: b.customer_funding,
        escrow: b.escrow,
        contractor_payable: b.contractor_payable,
        payouts: b.payouts,
        platform_revenue: b.platform_revenue,
        processor_fees: b.processor_fees,
        refunds: b.refunds,
        held: b.held,
    }))
}
