//! What the card processor reports about a city's jobs on its own (its
//! webhooks, verified at the gateway): a chargeback, found by the hold it names.

use dispatch_engine::{JobId, Money};
use dispatch_storage::{Kind, SnapshotPut, codec};

use crate::error::{ActorError, Result};
use crate::handle::Dispatch;
use crate::job::{JobMsg, ask};
use crate::record::{LogRecord, PaymentRecord};
use crate::requests::RatingClaim;

impl Dispatch {
    /// A chargeback of `amount` on the hold `intent` (webhook `event`): the
    /// job it was made for, if this city's processor made it (`None`: not
    /// this city's). Applied by the job's actor while it lives, else to the
    /// stored job; once per event however often it is delivered.
    pub async fn chargeback(&self, intent: &str, event: String, amount: Money) -> Result<Option<JobId>> {
        let Some(processor) = &self.shared.processor else { return Ok(None) };
        let Some(job) = processor.job_of(intent).await.map_err(|e| ActorError::Unavailable(e.to_string()))? else { return Ok(None) };
        if let Some(actor) = self.shared.job(job) {
            ask(&actor, |reply| JobMsg::Chargeback { event, amount, reply }).await??;
            return Ok(Some(job));
        }
        // A finished job: no actor writes its snapshot, and a rating waits meanwhile.
        let _claim = RatingClaim::take(&self.shared, job).map_err(|_| ActorError::Unavailable(format!("job {job} is busy; retry")))?;
        let mut snap = self.job(job).await?;
        let pay = snap.payment.as_mut().ok_or(ActorError::NoPayment(job))?;
        if pay.chargeback(&event, amount).map_err(|e| ActorError::Payment(job, e))? {
            self.shared.keep_books(job, pay);
            let stored = SnapshotPut { kind: Kind::Job, id: job.0, blob: codec::encode(&snap)?, last: snap.is_final() };
            let record = LogRecord::Payment(PaymentRecord::Chargeback { amount, event });
            self.shared.log_event_with(job, record, vec![stored], None).await?;
        }
        Ok(Some(job))
    }
}
