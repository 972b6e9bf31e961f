//! Batched matching: one batch of waiting jobs worked out off the
//! dispatcher's mailbox, every job's candidates assigned at once with the
//! least total ETA (`dispatch_engine::matching`).

use std::sync::Arc;

use dispatch_engine::{ContractorId, JobId};
use ractor::ActorRef;

use crate::dispatcher::DispatcherMsg;
use crate::job::{JobMsg, ask};
use crate::shared::Shared;

/// Works out one batch off the dispatcher's mailbox: asks each job for its
/// candidates, assigns them all at once with the least total ETA, tells each
/// assigned job whom to offer, and reports which jobs are settled.
pub(crate) async fn run_batch(shared: Arc<Shared>, jobs: Vec<(JobId, u64)>) {
    /// One job of the batch and what it said.
    struct Asked {
        entry: (JobId, u64),
        actor: ActorRef<JobMsg>,
        candidates: Vec<(ContractorId, f64)>,
    }
    let mut asked: Vec<Asked> = Vec::new();
    let mut settled = Vec::new();
    for entry in jobs {
        let Some(actor) = shared.job(entry.0) else {
            settled.push(entry); // finished or cancelled meanwhile
            continue;
        };
        match ask(&actor, JobMsg::Candidates).await {
            Ok(candidates) => asked.push(Asked { entry, actor, candidates }),
            Err(_) => settled.push(entry),
        }
    }
    let mut pool: Vec<ContractorId> = asked.iter().flat_map(|a| a.candidates.iter().map(|(id, _)| *id)).collect();
    pool.sort_unstable();
    pool.dedup();
    let assignments = dispatch_engine::matching::assign_min_total_eta(asked.len(), pool.len(), |j, c| {
        asked[j].candidates.iter().find(|(id, _)| *id == pool[c]).map(|&(_, eta)| eta)
    });
    for a in &assignments {
        let job = &asked[a.job];
        if job.actor.cast(JobMsg::OfferTo { contractor: pool[a.contractor], eta_secs: a.eta_secs }).is_ok() {
            settled.push(job.entry);
        }
    }
    metrics::histogram!("dispatch_batch_jobs").record(asked.len() as f64);
    if let Some(root) = shared.root.get() {
        let _ = root.cast(DispatcherMsg::BatchDone(settled));
    }
}
