//! Requests that a retry must not repeat: posting a job, accepting an
//! offer, a chat message, a rating. Each may carry a client's request id
//! ([`RequestTag`]); its record ([`RequestRecord`]) is stored in the same
//! commit as the change, and [`Dispatch::requested`] finds it, so a retry —
//! to this process or, after a failover, to the city's next owner — answers
//! with the first outcome instead of doing the work again.
//!
//! While one attempt of a request runs, another with the same tag is told
//! `Unavailable` ([`Dispatch::claim_request`]): the retry comes back once
//! the first has finished, and finds its record.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use dispatch_engine::pricing::PriceQuote;
use dispatch_engine::{ContractorId, CustomerId, JobAction, JobId, JobState, Party};
use dispatch_storage::{Kind, SnapshotPut, codec};

use crate::contractor::ContractorMsg;
use crate::dispatcher::{DispatcherMsg, JobRequest, activate};
use crate::error::{ActorError, Result};
use crate::events::DispatchEvent;
use crate::handle::{Dispatch, Rated};
use crate::job::{JobMsg, ask};
use crate::parties;
use crate::record::{JobSnapshot, LogRecord, PendingRequest, RequestOutcome, RequestRecord, RequestTag};
use crate::shared::Shared;

/// An attempt of a request under way; dropping it lets the next attempt in.
pub struct RequestClaim<'a> {
    running: &'a Mutex<HashSet<u64>>,
    key: u64,
}

impl<'a> RequestClaim<'a> {
    /// Claims `key` in `running`; `None` while another holds it.
    pub(crate) fn take(running: &'a Mutex<HashSet<u64>>, key: u64) -> Option<Self> {
        running.lock().unwrap_or_else(PoisonError::into_inner).insert(key).then_some(Self { running, key })
    }
}

impl Drop for RequestClaim<'_> {
    fn drop(&mut self) {
        self.running.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.key);
    }
}

/// A rating under way: a second one for the same job waits its turn (and finds it rated).
pub(crate) struct RatingClaim<'a> {
    shared: &'a Shared,
    job: JobId,
}

impl<'a> RatingClaim<'a> {
    pub(crate) fn take(shared: &'a Shared, job: JobId) -> Result<Self> {
        let mut rating = shared.rating.lock().unwrap_or_else(PoisonError::into_inner);
        if !rating.insert(job) {
            return Err(ActorError::AlreadyRated(job));
        }
        Ok(Self { shared, job })
    }
}

impl Drop for RatingClaim<'_> {
    fn drop(&mut self) {
        self.shared.rating.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.job);
    }
}

impl Dispatch {
    /// What the request `tag` names did, if it was carried out (in this
    /// process or by an earlier owner of the city).
    pub async fn requested(&self, tag: &RequestTag) -> Result<Option<RequestRecord>> {
        let Some(blob) = self.shared.store.get(Kind::Request, tag.key()).await? else { return Ok(None) };
        let record: RequestRecord = codec::decode(&blob)?;
        // Another sender's id that hashed alike is not this request.
        Ok((record.tag == *tag).then_some(record))
    }

    /// Claims `tag` for one attempt; `Unavailable` while another attempt of it runs.
    pub fn claim_request(&self, tag: &RequestTag) -> Result<RequestClaim<'_>> {
        RequestClaim::take(&self.shared.requests, tag.key())
            .ok_or_else(|| ActorError::Unavailable(format!("request {:?} is already being carried out; retry", tag.id)))
    }

    /// `PaymentDeclined` if the card refused job `job`'s hold: a retried
    /// post answers as its first attempt did.
    pub async fn hold_refused(&self, job: JobId) -> Result<()> {
        self.job(job).await?.declined().map_or(Ok(()), |reason| Err(ActorError::PaymentDeclined(job, reason)))
    }

    /// [`Dispatch::post_job`], storing the record of `tag` with the job.
    pub async fn post_job_tagged(&self, request: JobRequest, tag: Option<RequestTag>) -> Result<(JobId, PriceQuote)> {
        if let Some(block) = self.blocked(request.customer) {
            return Err(ActorError::CustomerBlocked(request.customer, block.reason));
        }
        let card = match self.shared.processor {
            Some(_) => Some(self.card_to_hold(request.customer, request.payment_method.clone()).await),
            None => None,
        };
        ask(&self.root, |reply| DispatcherMsg::Post { request, card, tag, reply }).await?
    }

    /// [`Dispatch::accept`], storing the record of `tag` with the accept.
    pub async fn accept_tagged(&self, job: JobId, contractor: ContractorId, tag: Option<RequestTag>) -> Result<JobState> {
        self.job_call(job, |reply| JobMsg::Act { action: JobAction::Accept, contractor, tag, reply }).await
    }

    /// [`Dispatch::chat`], storing the record of `tag` with the message.
    pub async fn chat_tagged(&self, job: JobId, party: Party, sender: u64, text: String, tag: Option<RequestTag>) -> Result<DispatchEvent> {
        self.job(job).await?; // the job must exist
        let request = tag.map(|tag| PendingRequest { tag, outcome: RequestOutcome::Chat });
        self.shared.log_event_with(job, LogRecord::Chat { party, sender, text }, vec![], request.as_ref()).await
    }

    /// [`Dispatch::rate`], storing the record of `tag` with the rating.
    pub async fn rate_tagged(&self, job: JobId, customer: CustomerId, stars: f64, tag: Option<RequestTag>) -> Result<Rated> {
        let _claim = RatingClaim::take(&self.shared, job)?;
        // A job whose actor lives (its money is under way) is rated by it: one writer of its snapshot.
        if let Some(actor) = self.shared.job(job) {
            return ask(&actor, |reply| JobMsg::Rate { customer, stars, tag, reply }).await?;
        }
        let mut snap = self.job(job).await?;
        rate_snapshot(&self.shared, &mut snap, customer, stars, tag).await
    }
}

/// Rates the completed job `snap` for its customer: the contractor counts
/// it, then the snapshot and the `rated` record are stored in one commit.
pub(crate) async fn rate_snapshot(
    shared: &Shared,
    snap: &mut JobSnapshot,
    customer: CustomerId,
    stars: f64,
    tag: Option<RequestTag>,
) -> Result<Rated> {
    let job = snap.job.id;
    parties::may_rate(snap, customer)?;
    let JobState::Completed { contractor } = *snap.machine.state() else {
        return Err(ActorError::NotCompleted(job, format!("{:?}", snap.machine.state().kind()).to_lowercase()));
    };
    if snap.rated_stars.is_some() {
        return Err(ActorError::AlreadyRated(job));
    }
    dispatch_engine::types::check_stars(stars)?;
    let actor = activate(shared, contractor).await?;
    let rating = ask(&actor, |reply| ContractorMsg::Rate { job, stars, reply }).await??;
    snap.rated_stars = Some(stars);
    let stored = SnapshotPut { kind: Kind::Job, id: job.0, blob: codec::encode(&*snap)?, last: snap.is_final() };
    let request = tag.map(|tag| PendingRequest { tag, outcome: RequestOutcome::Rated { contractor, rating } });
    if let Err(e) = shared.log_event_with(job, LogRecord::Rated { contractor, stars }, vec![stored], request.as_ref()).await {
        snap.rated_stars = None;
        return Err(e);
    }
    Ok(Rated { job, contractor, stars, rating })
}
