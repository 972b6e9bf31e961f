//! What the card processor reports about a city's jobs on its own (its
//! webhooks, verified at the gateway): a chargeback, found by the hold it
//! names, and a reversed transfer, found by the transfer.

use dispatch_engine::JobId;
use dispatch_payments::Report;
use dispatch_payments::webhook::Notice;
use dispatch_storage::{Kind, SnapshotPut, codec};

use crate::error::{ActorError, Result};
use crate::handle::Dispatch;
use crate::job::{JobMsg, ask};
use crate::record::LogRecord;
use crate::requests::RatingClaim;

impl Dispatch {
    /// Applies a webhook's `notice` to the job it concerns, if this city's
    /// processor made the object it names (`None`: not this city's). Applied
    /// by the job's actor while it lives, else to the stored job; once per
    /// event however often it is delivered.
    pub async fn processor_notice(&self, notice: &Notice) -> Result<Option<JobId>> {
        let Some(processor) = &self.shared.processor else { return Ok(None) };
        let (object, report) = match notice.clone() {
            Notice::Chargeback { event, intent, amount } => (intent, Report::Chargeback { event, amount }),
            Notice::PayoutReversed { event, transfer, amount } => (transfer, Report::PayoutReversed { event, amount }),
            Notice::Ignored { .. } => return Ok(None),
        };
        let Some(job) = processor.job_of(&object).await.map_err(|e| ActorError::Unavailable(e.to_string()))? else { return Ok(None) };
        if let Some(actor) = self.shared.job(job) {
            ask(&actor, |reply| JobMsg::Reported { report, reply }).await??;
            return Ok(Some(job));
        }
        // A finished job: no actor writes its snapshot, and a rating waits meanwhile.
        let _claim = RatingClaim::take(&self.shared, job).map_err(|_| ActorError::Unavailable(format!("job {job} is busy; retry")))?;
        let mut snap = self.job(job).await?;
        let pay = snap.payment.as_mut().ok_or(ActorError::NoPayment(job))?;
        if pay.report(&report).map_err(|e| ActorError::Payment(job, e))? {
            self.shared.keep_books(job, pay);
            let stored = SnapshotPut { kind: Kind::Job, id: job.0, blob: codec::encode(&snap)?, last: snap.is_final() };
            self.shared.log_event_with(job, LogRecord::Payment(report.into()), vec![stored], None).await?;
            if let Some(payee) = snap.payee {
                crate::job::tell_earnings(&self.shared, job, snap.payment.as_ref(), payee).await;
            }
        }
        Ok(Some(job))
    }
}
