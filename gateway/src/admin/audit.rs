//! `GET /v1/admin/cities/{city}/audit`: the city's audit trail, a page at a
//! time, in order; `next` is the cursor of the page after (`?after=`).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Extension, Path, Query};
use axum::http::HeaderMap;
use dispatch_actors::{Actor, AuditAction, AuditRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::query::{AdminAnswer, AdminQuery};
use super::{ApiError, ErrorBody, ask, mismatched, operator};
use crate::server::Gateway;

/// Which page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// The last position of the page before (none: from the start).
    #[param(minimum = 0)]
    pub after: Option<u64>,
    /// How many entries at most (1 to 500, default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

/// One entry: who did what, when and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditEntry {
    /// Its position in the trail (1, 2, 3, …).
    pub position: u64,
    /// When, ms since the Unix epoch.
    pub at: i64,
    /// The actor's role: `dispatcher` or `admin`.
    pub actor_role: String,
    /// The actor's id.
    pub actor: u64,
    /// What: `assign`, `cancel`, `refund`, `resolve_dispute`, `block_customer`, `unblock_customer`, `suspend_contractor`, `reinstate_contractor`, `verify_trade`, `record_insurance`, `add_webhook`, `remove_webhook`, `replay_dead_letters`, or `refused` (the action at `refused_position` did nothing).
    pub action: String,
    /// The job it concerned.
    pub job: Option<u64>,
    /// The contractor it concerned.
    pub contractor: Option<u64>,
    /// The customer it concerned.
    pub customer: Option<u64>,
    /// The amount, cents.
    pub amount: Option<u64>,
    /// The trade it concerned.
    pub trade: Option<String>,
    /// With `refused`: the entry of the action refused.
    pub refused_position: Option<u64>,
    /// With `refused`: why.
    pub error: Option<String>,
    /// The webhook endpoint it concerned, by name.
    pub webhook: Option<String>,
    /// With `add_webhook`: the endpoint's URL.
    pub url: Option<String>,
    /// Why, in the actor's words.
    pub reason: Option<String>,
}

/// A page of the trail.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    /// The city.
    pub city: String,
    /// The entries, in order.
    pub entries: Vec<AuditEntry>,
    /// The cursor of the next page (`?after=`), when this one is full.
    pub next: Option<u64>,
}

impl From<AuditRecord> for AuditEntry {
    fn from(r: AuditRecord) -> Self {
        let (actor_role, actor) = match r.actor {
            Actor::Dispatcher(id) => ("dispatcher", id),
            Actor::Admin(id) => ("admin", id),
        };
        let mut entry = AuditEntry {
            position: r.position,
            at: r.at.0,
            actor_role: actor_role.into(),
            actor,
            action: String::new(),
            job: None,
            contractor: None,
            customer: None,
            amount: None,
            trade: None,
            refused_position: None,
            error: None,
            webhook: None,
            url: None,
            reason: r.reason,
        };
        entry.action = match r.action {
            AuditAction::Assign { job, contractor } => {
                (entry.job, entry.contractor) = (Some(job.0), Some(contractor.0));
                "assign"
            }
            AuditAction::Cancel { job } => {
                entry.job = Some(job.0);
                "cancel"
            }
            AuditAction::Refund { job, amount } => {
                (entry.job, entry.amount) = (Some(job.0), Some(amount.0));
                "refund"
            }
            AuditAction::ResolveDispute { job, refund } => {
                (entry.job, entry.amount) = (Some(job.0), Some(refund.0));
                "resolve_dispute"
            }
            AuditAction::BlockCustomer { customer } => {
                entry.customer = Some(customer.0);
                "block_customer"
            }
            AuditAction::UnblockCustomer { customer } => {
                entry.customer = Some(customer.0);
                "unblock_customer"
            }
            AuditAction::SuspendContractor { contractor } => {
                entry.contractor = Some(contractor.0);
                "suspend_contractor"
            }
            AuditAction::ReinstateContractor { contractor } => {
                entry.contractor = Some(contractor.0);
                "reinstate_contractor"
            }
            AuditAction::VerifyTrade { contractor, trade } => {
                entry.contractor = Some(contractor.0);
                entry.trade = Some(trade.as_str().to_owned());
                "verify_trade"
            }
            AuditAction::RecordInsurance { contractor } => {
                entry.contractor = Some(contractor.0);
                "record_insurance"
            }
            AuditAction::Refused { position, error } => {
                (entry.refused_position, entry.error) = (Some(position), Some(error));
                "refused"
            }
            AuditAction::AddWebhook { endpoint, url } => {
                (entry.webhook, entry.url) = (Some(endpoint), Some(url));
                "add_webhook"
            }
            AuditAction::RemoveWebhook { endpoint } => {
                entry.webhook = Some(endpoint);
                "remove_webhook"
            }
            AuditAction::ReplayDeadLetters { endpoint } => {
                entry.webhook = Some(endpoint);
                "replay_dead_letters"
            }
        }
        .into();
        entry
    }
}

/// The city's audit trail, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/admin/cities/{city}/audit",
    tag = "audit",
    params(("city" = String, Path, description = "The city's configured name", example = "des-moines"), AuditParams),
    responses(
        (status = 200, description = "A page of the trail", body = AuditPage),
        (status = 400, description = "A malformed cursor or limit", body = ErrorBody),
        (status = 401, description = "No token, or a bad one", body = ErrorBody),
        (status = 403, description = "Not an admin, nor this city's dispatcher", body = ErrorBody),
        (status = 404, description = "No such city", body = ErrorBody),
        (status = 503, description = "The city cannot answer now; retry", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub(super) async fn audit(
    Extension(gw): Extension<Arc<Gateway>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Path(city) = path?;
    let Query(params) = params?;
    let after = params.after.map(|a| super::checked_id(a, "after")).transpose()?;
    operator(&headers, &gw, &city)?;
    let limit = super::page_limit(params.limit)?;
    let AdminAnswer::Audit(records) = ask(&gw, &city, AdminQuery::Audit { after, limit }).await? else {
        return Err(mismatched());
    };
    let full = records.len() == limit as usize;
    let entries: Vec<AuditEntry> = records.into_iter().map(AuditEntry::from).collect();
    let next = entries.last().map(|e| e.position).filter(|_| full);
    Ok(Json(AuditPage { city, entries, next }))
}
