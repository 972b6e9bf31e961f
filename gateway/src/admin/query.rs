//! What the admin API asks of a city, and the answers: one executor for a
//! city in this process and for its owner elsewhere (over NATS), as the
//! session's commands have. The answers are typed (and bincode-able for
//! NATS); the HTTP layer turns them into JSON.

use dispatch_actors::{Actor, AuditRecord, BlockRecord, Dispatch};
use dispatch_engine::payment::{Books, Receipt};
use dispatch_engine::{ContractorId, CustomerId, JobId};
use serde::{Deserialize, Serialize};

use crate::city_event::CityEvent;
use crate::refusal::Refusal;

/// A read of a city's state for operators.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AdminQuery {
    /// One job: its log from the start, and its payment.
    Job(u64),
    /// One contractor as they stand.
    Contractor(u64),
    /// Up to `limit` live contractors after `after`, by id, that `filter` takes.
    Contractors {
        /// The cursor: the last id of the page before.
        after: Option<u64>,
        /// How many at most.
        limit: u32,
        /// Which.
        filter: ContractorFilter,
    },
    /// Up to `limit` contractors of the city's directory (every registered one) after `after`, that `filter` takes.
    ContractorDirectory {
        /// The cursor: where the page before stopped.
        after: Option<u64>,
        /// How many at most.
        limit: u32,
        /// Which.
        filter: ContractorFilter,
    },
    /// The city's books by kind of account.
    Books,
    /// An admin records a contractor's licence for a trade, valid until `expires` (ms).
    Verify {
        /// The contractor.
        contractor: u64,
        /// The admin.
        admin: u64,
        /// The trade.
        trade: dispatch_engine::Trade,
        /// The licence number.
        licence: String,
        /// When it expires, ms.
        expires: i64,
    },
    /// An admin records a contractor's insurance, valid until `expires` (ms).
    Insure {
        /// The contractor.
        contractor: u64,
        /// The admin.
        admin: u64,
        /// The policy.
        policy: String,
        /// When it expires, ms.
        expires: i64,
    },
    /// An admin suspends a contractor (`suspend`) or reinstates them, for `reason`.
    Suspend {
        /// The contractor.
        contractor: u64,
        /// The admin.
        admin: u64,
        /// Suspend, or reinstate.
        suspend: bool,
        /// Why.
        reason: String,
    },
    /// Up to `limit` entries of the audit trail after position `after`.
    Audit {
        /// The cursor: the last position of the page before (none: from the start).
        after: Option<u64>,
        /// How many at most.
        limit: u32,
    },
    /// Up to `limit` live jobs after `after`, by id, of `state` and `trade` if given, posted in `[from, until)` (ms) if given.
    Jobs {
        /// The cursor: the last id of the page before.
        after: Option<u64>,
        /// How many at most.
        limit: u32,
        /// Only jobs in this state.
        state: Option<dispatch_engine::JobStateKind>,
        /// Only jobs of this trade.
        trade: Option<dispatch_engine::Trade>,
        /// Only jobs posted at or after this (ms).
        from: Option<i64>,
        /// Only jobs posted before this (ms).
        until: Option<i64>,
    },
    /// An admin cancels a job, for `reason`.
    Cancel {
        /// The job.
        job: u64,
        /// The admin.
        admin: u64,
        /// Why (the parties are told).
        reason: String,
    },
    /// One customer: whether they are blocked.
    Customer(u64),
    /// An admin blocks a customer from posting (`block`) or lets them post again, for `reason`.
    Block {
        /// The customer.
        customer: u64,
        /// The admin.
        admin: u64,
        /// Block, or unblock.
        block: bool,
        /// Why.
        reason: String,
    },
    /// The endpoints added through the admin API, every endpoint's cursor, and the outbox's settled mark.
    Webhooks,
    /// An admin adds an endpoint.
    AddWebhook {
        /// The admin.
        admin: u64,
        /// Its name.
        name: String,
        /// Where it posts.
        url: String,
        /// Its secrets.
        secrets: Vec<String>,
        /// The events it takes (none: all).
        events: Vec<String>,
    },
    /// An admin removes an endpoint added through the admin API.
    RemoveWebhook {
        /// The admin.
        admin: u64,
        /// Its name.
        name: String,
    },
    /// Up to `limit` of an endpoint's dead letters after position `after`.
    DeadLetters {
        /// The endpoint's name.
        name: String,
        /// The cursor: the last position of the page before.
        after: Option<u64>,
        /// How many at most.
        limit: u32,
    },
    /// Up to `limit` jobs of the city's job index after `after`, of `state` and `trade` if given, posted in `[from, until)` (ms) if given.
    JobHistory {
        /// The cursor: where the page before stopped.
        after: Option<u64>,
        /// How many at most.
        limit: u32,
        /// Only jobs in this state.
        state: Option<dispatch_engine::JobStateKind>,
        /// Only jobs of this trade.
        trade: Option<dispatch_engine::Trade>,
        /// Only jobs posted at or after this (ms).
        from: Option<i64>,
        /// Only jobs posted before this (ms).
        until: Option<i64>,
    },
    /// The city's figures for each stored hour in `[from, until)` (hours since the epoch).
    Kpis {
        /// The first hour.
        from: i64,
        /// The hour after the last.
        until: i64,
    },
    /// An admin asks for an endpoint's dead letters to be sent again.
    Replay {
        /// The admin.
        admin: u64,
        /// The endpoint's name.
        name: String,
    },
}

/// Which contractors a list takes: each field, if given, must hold.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ContractorFilter {
    /// Of this trade.
    pub trade: Option<dispatch_engine::Trade>,
    /// Doing this.
    pub status: Option<dispatch_engine::StatusKind>,
    /// Rated at least this (0–5).
    pub min_rating: Option<f32>,
    /// Suspended (`true`) or not (`false`).
    pub suspended: Option<bool>,
    /// With a licence that holds now (`true`) — for `trade`, if given — or without (`false`).
    pub verified: Option<bool>,
}

impl ContractorFilter {
    /// Whether the contractor `id`, with these trades, status and rating, passes.
    fn keeps(
        &self,
        city: &Dispatch,
        id: ContractorId,
        trades: dispatch_engine::TradeSet,
        status: dispatch_engine::StatusKind,
        rating: f32,
    ) -> bool {
        let licensed = || {
            let now = city.clock().now();
            city.vetting(id).is_some_and(|v| match self.trade {
                Some(t) => v.licensed(t, now),
                None => v.trades.iter().any(|t| t.expires > now),
            })
        };
        self.trade.is_none_or(|t| trades.contains(t))
            && self.status.is_none_or(|s| status == s)
            && self.min_rating.is_none_or(|r| rating >= r)
            && self.suspended.is_none_or(|s| city.suspended(id).is_some() == s)
            && self.verified.is_none_or(|v| licensed() == v)
    }
}

/// A city's webhook endpoints as its owner knows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhooksView {
    /// The endpoints added through the admin API.
    pub added: Vec<dispatch_actors::EndpointRecord>,
    /// Every endpoint's cursor: its name and the position delivered through.
    pub cursors: Vec<(String, u64)>,
    /// The outbox's settled mark (the newest event a delivery can read).
    pub settled: u64,
}

/// A job as operators see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// Its log, in order (what happened, chat included).
    pub timeline: Vec<CityEvent>,
    /// Its payment, if it has one.
    pub payment: Option<Receipt>,
}

/// A contractor as operators see them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContractorView {
    /// Their name.
    pub name: String,
    /// What they are doing now (`available`, `en_route`, …).
    pub status: String,
    /// Their suspension, if they are suspended.
    pub suspension: Option<dispatch_actors::SuspensionRecord>,
    /// What operators verified of them.
    pub vetting: Option<dispatch_actors::VettingRecord>,
    /// Their trades: each with the years they declared, whether an operator
    /// verified a licence that holds now, and the years matching counts.
    pub trades: Vec<(String, u8, bool, u8)>,
    /// Their rating, 0–5, and how many reviews it rests on.
    pub rating: (f32, u32),
    /// Where they were last seen, if they have been.
    pub position: Option<(f64, f64)>,
}

/// What an [`AdminQuery`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AdminAnswer {
    /// [`AdminQuery::Job`].
    Job(JobView),
    /// [`AdminQuery::Contractor`].
    Contractor(ContractorView),
    /// [`AdminQuery::Books`].
    Books(Books),
    /// [`AdminQuery::Contractors`]: the page, by id, each with whether they are suspended.
    Contractors(Vec<(dispatch_actors::map::MapContractor, bool)>),
    /// [`AdminQuery::Jobs`]: the page, by id.
    Jobs(Vec<dispatch_actors::map::MapJob>),
    /// [`AdminQuery::Cancel`]: the job's state after it.
    Cancelled(dispatch_engine::JobState),
    /// [`AdminQuery::Audit`]: the entries, in order.
    Audit(Vec<AuditRecord>),
    /// [`AdminQuery::Customer`], [`AdminQuery::Block`]: the block, if there is one.
    Customer(Option<BlockRecord>),
    /// [`AdminQuery::Webhooks`], [`AdminQuery::AddWebhook`], [`AdminQuery::RemoveWebhook`]: the endpoints after it.
    Webhooks(WebhooksView),
    /// [`AdminQuery::DeadLetters`]: the page, in the order the events happened.
    DeadLetters(Vec<dispatch_actors::DeadLetterRecord>),
    /// [`AdminQuery::Replay`]: asked of the endpoint's delivery.
    ReplayAsked,
    /// [`AdminQuery::ContractorDirectory`]: the rows found, each with whether they are suspended, and where to go on from.
    ContractorDirectory(Vec<(bool, dispatch_actors::ContractorIndexRecord)>, Option<u64>),
    /// [`AdminQuery::JobHistory`]: the rows found, and where to go on from (none: the index's end).
    JobHistory(Vec<dispatch_actors::JobIndexRecord>, Option<u64>),
    /// [`AdminQuery::Kpis`]: each stored hour and its figures, in order.
    Kpis(Vec<(i64, dispatch_engine::kpi::HourKpis)>),
}

async fn webhooks(dispatch: &Dispatch) -> Result<AdminAnswer, Refusal> {
    let added = dispatch.webhook_endpoints().await?;
    let cursors = dispatch.webhook_cursors().await?.into_iter().map(|(_, c)| (c.endpoint, c.position)).collect();
    let settled = *dispatch.outbox_settled().borrow();
    Ok(AdminAnswer::Webhooks(WebhooksView { added, cursors, settled }))
}

/// Answers `query` from the city's actors.
pub(crate) async fn answer(dispatch: &Dispatch, query: AdminQuery) -> Result<AdminAnswer, Refusal> {
    match query {
        AdminQuery::Job(job) => {
            let snap = dispatch.job(JobId(job)).await?;
            let logged = dispatch.events_since(JobId(job), 0).await?;
            let timeline = logged.iter().map(CityEvent::logged).collect();
            let payment = snap.payment.as_ref().map(|p| p.machine().receipt(p.captured_at()));
            Ok(AdminAnswer::Job(JobView { timeline, payment }))
        }
        AdminQuery::Contractor(id) => {
            let snap = dispatch.contractor(ContractorId(id)).await?;
            let profile = &snap.profile;
            let status = serde_json::to_value(snap.status.kind()).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            let (now, vetting) = (dispatch.clock().now(), dispatch.vetting(ContractorId(id)));
            let trades = profile
                .trades
                .iter()
                .map(|t| {
                    let verified = vetting.as_ref().is_some_and(|v| v.licensed(t.trade, now));
                    (t.trade.as_str().to_owned(), t.years, verified, dispatch_actors::job::scored_years(t.years, verified))
                })
                .collect();
            Ok(AdminAnswer::Contractor(ContractorView {
                name: profile.name.clone(),
                status,
                suspension: dispatch.suspended(ContractorId(id)),
                vetting: dispatch.vetting(ContractorId(id)),
                trades,
                rating: (profile.rating.average(), profile.rating.reviews()),
                position: snap.position.map(|p| (p.lat(), p.lng())),
            }))
        }
        AdminQuery::Books => Ok(AdminAnswer::Books(dispatch.books())),
        AdminQuery::Verify { contractor, admin, trade, licence, expires } => {
            let verified = dispatch_actors::VerifiedTrade { trade, licence, expires: dispatch_engine::Timestamp(expires) };
            dispatch.verify_trade(Actor::Admin(admin), ContractorId(contractor), verified).await?;
            Box::pin(answer(dispatch, AdminQuery::Contractor(contractor))).await
        }
        AdminQuery::Insure { contractor, admin, policy, expires } => {
            let insurance = dispatch_actors::Insurance { policy, expires: dispatch_engine::Timestamp(expires) };
            dispatch.record_insurance(Actor::Admin(admin), ContractorId(contractor), insurance).await?;
            Box::pin(answer(dispatch, AdminQuery::Contractor(contractor))).await
        }
        AdminQuery::Suspend { contractor, admin, suspend, reason } => {
            let (who, actor) = (ContractorId(contractor), Actor::Admin(admin));
            if suspend {
                dispatch.suspend_contractor(actor, who, reason).await?;
            } else {
                dispatch.reinstate_contractor(actor, who, reason).await?;
            }
            Box::pin(answer(dispatch, AdminQuery::Contractor(contractor))).await
        }
        AdminQuery::Audit { after, limit } => Ok(AdminAnswer::Audit(dispatch.audit_trail(after, limit as usize).await?)),
        AdminQuery::Contractors { after, limit, filter } => {
            let keep = |c: &dispatch_actors::map::MapContractor| filter.keeps(dispatch, c.id, c.trades, c.status, c.rating);
            let page = dispatch.contractors_after(after.map(ContractorId), limit as usize, keep);
            Ok(AdminAnswer::Contractors(page.into_iter().map(|c| (c, dispatch.suspended(c.id).is_some())).collect()))
        }
        AdminQuery::ContractorDirectory { after, limit, filter } => {
            let keep = |r: &dispatch_actors::ContractorIndexRecord| filter.keeps(dispatch, r.contractor, r.trades, r.status, r.rating);
            let (rows, next) = dispatch.contractor_directory(after, limit as usize, keep).await?;
            let rows = rows.into_iter().map(|r| (dispatch.suspended(r.contractor).is_some(), r)).collect();
            Ok(AdminAnswer::ContractorDirectory(rows, next))
        }
        AdminQuery::Jobs { after, limit, state, trade, from, until } => {
            let keep = |j: &dispatch_actors::map::MapJob| {
                state.is_none_or(|s| j.state == s)
                    && trade.is_none_or(|t| j.trade == t)
                    && from.is_none_or(|f| j.posted_at.0 >= f)
                    && until.is_none_or(|u| j.posted_at.0 < u)
            };
            Ok(AdminAnswer::Jobs(dispatch.jobs_after(after.map(JobId), limit as usize, keep)))
        }
        AdminQuery::Cancel { job, admin, reason } => {
            let actor = Actor::Admin(admin);
            let position = dispatch.audit(actor, dispatch_actors::AuditAction::Cancel { job: JobId(job) }, Some(reason.clone())).await?;
            match dispatch.cancel(JobId(job), dispatch_actors::Asker::Dispatcher, reason).await {
                Ok(state) => Ok(AdminAnswer::Cancelled(state)),
                Err(e) => {
                    dispatch.audit_refused(actor, position, &e.to_string()).await;
                    Err(e.into())
                }
            }
        }
        AdminQuery::Customer(id) => Ok(AdminAnswer::Customer(dispatch.blocked(CustomerId(id)))),
        AdminQuery::Block { customer, admin, block: true, reason } => {
            let block = dispatch.block_customer(Actor::Admin(admin), CustomerId(customer), reason).await?;
            Ok(AdminAnswer::Customer(Some(block)))
        }
        AdminQuery::Block { customer, admin, block: false, reason } => {
            dispatch.unblock_customer(Actor::Admin(admin), CustomerId(customer), reason).await?;
            Ok(AdminAnswer::Customer(None))
        }
        AdminQuery::Webhooks => webhooks(dispatch).await,
        AdminQuery::AddWebhook { admin, name, url, secrets, events } => {
            let at = dispatch.clock().now();
            let record = dispatch_actors::EndpointRecord { name, url, secrets, events, by: Actor::Admin(admin), at };
            dispatch.add_webhook_endpoint(&record).await?;
            webhooks(dispatch).await
        }
        AdminQuery::RemoveWebhook { admin, name } => {
            dispatch.remove_webhook_endpoint(Actor::Admin(admin), &name).await?;
            webhooks(dispatch).await
        }
        AdminQuery::DeadLetters { name, after, limit } => {
            let key = dispatch_actors::outbox::endpoint_key(&name);
            let letters = dispatch.dead_letters(key, after, limit as usize).await?;
            Ok(AdminAnswer::DeadLetters(letters.into_iter().filter(|l| l.endpoint == name).collect()))
        }
        AdminQuery::JobHistory { after, limit, state, trade, from, until } => {
            let keep = |r: &dispatch_actors::JobIndexRecord| {
                state.is_none_or(|s| r.state == s)
                    && trade.is_none_or(|t| r.trade == t)
                    && from.is_none_or(|f| r.posted_at.0 >= f)
                    && until.is_none_or(|u| r.posted_at.0 < u)
            };
            let (rows, next) = dispatch.job_history(after, limit as usize, keep).await?;
            Ok(AdminAnswer::JobHistory(rows, next))
        }
        AdminQuery::Kpis { from, until } => Ok(AdminAnswer::Kpis(dispatch.kpis(from, until).await?)),
        AdminQuery::Replay { admin, name } => {
            dispatch.replay_dead_letters(Actor::Admin(admin), &name).await?;
            Ok(AdminAnswer::ReplayAsked)
        }
    }
}
