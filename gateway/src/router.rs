//! Hands a city's events to the connections they concern.
//!
//! A session holding its own `broadcast` receiver is woken by every event in
//! the city: O(connections) work per event, which at 100k connected phones and
//! 1,000 jobs a second is hundreds of millions of wake-ups a second. Instead one
//! router task per city reads the broadcast once and passes each event to the
//! few inboxes it concerns:
//!
//! - every dispatcher of the city;
//! - the contractor the event names (offers, declines, positions…);
//! - the job's customer, learned from the job's first event (`posted` carries
//!   it) or claimed by a session that proved it is the customer (after a
//!   restart the router has not seen `posted`);
//! - the contractor assigned to the job (learned from `accepted`, or claimed),
//!   who must see chat and cancellations that do not name them.
//!
//! The session still applies its own, finer filter. An inbox that is full
//! (a session not keeping up) drops the event and counts it; the session then
//! tells its client it lagged, so the client can `resume`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{broadcast, mpsc};

use dispatch_actors::{Dispatch, DispatchEvent};
use dispatch_engine::{ContractorId, CustomerId, JobId};

use crate::auth::Role;
use crate::city_event::CityEvent;
use crate::finished::FinishedJobs;
use crate::protocol::Event;

/// Events waiting for one session before it counts as lagging.
const INBOX: usize = 1024;

/// One city's event router.
pub(crate) struct Router {
    routes: Mutex<Routes>,
    /// The task feeding it from a city in this process (it holds the city's
    /// `Dispatch`, so it is stopped with the city).
    feeder: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// A session's registration: its inbox, and how many events it missed.
/// Dropping it leaves the router.
pub(crate) struct Inbox {
    id: u64,
    router: Arc<Router>,
    /// Events for this session.
    pub(crate) events: mpsc::Receiver<Arc<CityEvent>>,
    /// Events dropped because the inbox was full.
    pub(crate) missed: Arc<AtomicU64>,
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.router.leave(self.id);
    }
}

struct Member {
    tx: mpsc::Sender<Arc<CityEvent>>,
    missed: Arc<AtomicU64>,
    role: Role,
    sub: u64,
}

#[derive(Default)]
struct Parties {
    customer: Option<CustomerId>,
    assigned: Option<ContractorId>,
}

#[derive(Default)]
struct Routes {
    next_id: u64,
    members: HashMap<u64, Member>,
    dispatchers: Vec<u64>,
    contractors: HashMap<u64, Vec<u64>>,
    customers: HashMap<u64, Vec<u64>>,
    jobs: HashMap<JobId, Parties>,
    /// Finished jobs, oldest first, to forget their parties after a while.
    finished: FinishedJobs,
}

impl Router {
    /// A router with no sessions yet; events come through [`Router::route`].
    pub(crate) fn new() -> Arc<Router> {
        Arc::new(Router { routes: Mutex::new(Routes::default()), feeder: Mutex::new(None) })
    }

    /// Stops the task feeding the router (the city is shutting down).
    pub(crate) fn stop(&self) {
        if let Some(feeder) = self.feeder.lock().unwrap_or_else(PoisonError::into_inner).take() {
            feeder.abort();
        }
    }

    /// A router fed by a city in this process: one task reads the actors'
    /// broadcast, turns each event into a [`CityEvent`] and routes it; it
    /// ends with the stream.
    pub(crate) fn start_local(dispatch: Dispatch) -> Arc<Router> {
        Self::start(dispatch.subscribe(), Some(dispatch))
    }

    /// A router over a broadcast; with the city's `Dispatch`, offers are
    /// completed with their job's terms (`None`: tests without a city).
    fn start(mut stream: broadcast::Receiver<DispatchEvent>, city: Option<Dispatch>) -> Arc<Router> {
        let router = Self::new();
        let task = Arc::clone(&router);
        let feeder = tokio::spawn(async move {
            loop {
                match stream.recv().await {
                    Ok(event) => {
                        let event = match &city {
                            Some(dispatch) => CityEvent::from_city(dispatch, &event).await,
                            None => Some(CityEvent::logged(&event)),
                        };
                        if let Some(event) = event {
                            task.route(event);
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => task.all_missed(missed),
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        *router.feeder.lock().unwrap_or_else(PoisonError::into_inner) = Some(feeder);
        router
    }

    fn lock(&self) -> MutexGuard<'_, Routes> {
        // Routing tables stay consistent even if a holder panicked mid-way:
        // every update is a single insert or remove.
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a session of `role` for subject `sub`.
    pub(crate) fn join(self: &Arc<Self>, role: Role, sub: u64) -> Inbox {
        let (tx, events) = mpsc::channel(INBOX);
        let missed = Arc::new(AtomicU64::new(0));
        let mut routes = self.lock();
        let id = routes.next_id;
        routes.next_id += 1;
        match role {
            // Admins are refused at the upgrade; were one here, it would see what dispatchers see.
            Role::Dispatcher | Role::Admin => routes.dispatchers.push(id),
            Role::Contractor => routes.contractors.entry(sub).or_default().push(id),
            Role::Customer => routes.customers.entry(sub).or_default().push(id),
        }
        routes.members.insert(id, Member { tx, missed: Arc::clone(&missed), role, sub });
        drop(routes);
        Inbox { id, router: Arc::clone(self), events, missed }
    }

    fn leave(&self, id: u64) {
        let mut routes = self.lock();
        let Some(member) = routes.members.remove(&id) else { return };
        let list = match member.role {
            Role::Dispatcher | Role::Admin => {
                routes.dispatchers.retain(|&m| m != id);
                return;
            }
            Role::Contractor => &mut routes.contractors,
            Role::Customer => &mut routes.customers,
        };
        if let Some(ids) = list.get_mut(&member.sub) {
            ids.retain(|&m| m != id);
            if ids.is_empty() {
                list.remove(&member.sub);
            }
        }
    }

    /// A session proved it is this job's customer: route the job's events to it.
    pub(crate) fn claim_customer(&self, job: JobId, customer: CustomerId) {
        self.lock().jobs.entry(job).or_default().customer = Some(customer);
    }

    /// A session proved this contractor is assigned to the job.
    pub(crate) fn claim_contractor(&self, job: JobId, contractor: ContractorId) {
        self.lock().jobs.entry(job).or_default().assigned = Some(contractor);
    }

    /// The feed behind the router lost `missed` events: every session is told it lagged.
    pub(crate) fn all_missed(&self, missed: u64) {
        tracing::warn!(missed, "the event router fell behind; every session is told it lagged");
        metrics::counter!("dispatch_router_lagged_total").increment(missed);
        for member in self.lock().members.values() {
            member.missed.fetch_add(missed, Ordering::Relaxed);
        }
    }

    /// Hands `event` to the sessions it concerns.
    pub(crate) fn route(&self, event: CityEvent) {
        let event = Arc::new(event);
        let mut routes = self.lock();
        routes.learn(&event);
        let r = &*routes;
        let parties = r.jobs.get(&JobId(event.job));
        let customer = parties.and_then(|p| p.customer);
        let assigned = parties.and_then(|p| p.assigned);
        let named = event.contractor().map(ContractorId);
        let customers = customer.map_or(&[][..], |c| sessions_of(&r.customers, c.0));
        let contractors =
            [named, assigned.filter(|a| Some(*a) != named)].into_iter().flatten().flat_map(|c| sessions_of(&r.contractors, c.0));
        for id in r.dispatchers.iter().chain(customers).chain(contractors) {
            if let Some(member) = r.members.get(id)
                && member.tx.try_send(Arc::clone(&event)).is_err()
            {
                member.missed.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("dispatch_router_inbox_full_total").increment(1);
            }
        }
        routes.forget_finished();
    }
}

/// The sessions of subject `sub` in `list`.
fn sessions_of(list: &HashMap<u64, Vec<u64>>, sub: u64) -> &[u64] {
    list.get(&sub).map_or(&[], Vec::as_slice)
}

impl Routes {
    /// Updates who takes part in the event's job.
    fn learn(&mut self, event: &CityEvent) {
        let job = JobId(event.job);
        match &event.event {
            Event::Posted { customer, .. } => self.jobs.entry(job).or_default().customer = Some(CustomerId(*customer)),
            Event::Accepted { contractor } => self.jobs.entry(job).or_default().assigned = Some(ContractorId(*contractor)),
            Event::Withdrawn { contractor } => {
                if let Some(p) = self.jobs.get_mut(&job)
                    && p.assigned == Some(ContractorId(*contractor))
                {
                    p.assigned = None;
                }
            }
            _ if event.finishes_job() => self.finished.push(job),
            _ => {}
        }
    }

    fn forget_finished(&mut self) {
        let jobs = &mut self.jobs;
        self.finished.forget_expired(|job| {
            jobs.remove(&job);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dispatch_actors::EventKind;
    use dispatch_engine::pricing::PriceQuote;
    use dispatch_engine::{Money, Party, Timestamp};
    use std::time::Duration;

    fn event(job: u64, kind: EventKind) -> DispatchEvent {
        DispatchEvent { job: JobId(job), seq: 1, at: Timestamp(0), kind }
    }

    fn posted(customer: u64) -> EventKind {
        let quote = PriceQuote { base: Money(100), surge: 1.0, urgency: 1.0, total: Money(100) };
        EventKind::Posted { quote, customer: CustomerId(customer) }
    }

    fn chat() -> EventKind {
        EventKind::Chat { party: Party::Customer, sender: 1, text: "hi".into() }
    }

    fn drain(inbox: &mut Inbox) -> Vec<Event> {
        let mut got = Vec::new();
        while let Ok(e) = inbox.events.try_recv() {
            got.push(e.event.clone());
        }
        got
    }

    #[tokio::test]
    async fn events_reach_only_the_parties_of_their_job() {
        let (tx, rx) = broadcast::channel(64);
        let router = Router::start(rx, None);
        let mut customer = router.join(Role::Customer, 1);
        let mut other_customer = router.join(Role::Customer, 2);
        let mut contractor = router.join(Role::Contractor, 10);
        let mut bystander = router.join(Role::Contractor, 11);
        let mut dispatcher = router.join(Role::Dispatcher, 99);
        for kind in [
            posted(1),
            EventKind::Offered { contractor: ContractorId(10), expires_at: Timestamp(5), eta_secs: 60.0 },
            chat(),
            EventKind::Accepted { contractor: ContractorId(10) },
            chat(),
        ] {
            tx.send(event(7, kind)).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(drain(&mut customer).len(), 5);
        assert_eq!(drain(&mut dispatcher).len(), 5);
        // The contractor sees the offer, the acceptance and chat once assigned, not chat before.
        let seen = drain(&mut contractor);
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(matches!(seen[2], Event::Chat { .. }));
        assert!(drain(&mut other_customer).is_empty());
        assert!(drain(&mut bystander).is_empty());
        // A withdrawn contractor no longer gets the job's chat.
        tx.send(event(7, EventKind::Withdrawn { contractor: ContractorId(10) })).unwrap();
        tx.send(event(7, chat())).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(drain(&mut contractor).len(), 1);
    }

    #[tokio::test]
    async fn claims_route_jobs_the_router_never_saw_posted() {
        let (tx, rx) = broadcast::channel(64);
        let router = Router::start(rx, None);
        let mut customer = router.join(Role::Customer, 1);
        let mut contractor = router.join(Role::Contractor, 10);
        tx.send(event(3, chat())).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(drain(&mut customer).is_empty());
        router.claim_customer(JobId(3), CustomerId(1));
        router.claim_contractor(JobId(3), ContractorId(10));
        tx.send(event(3, chat())).unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(drain(&mut customer).len(), 1);
        assert_eq!(drain(&mut contractor).len(), 1);
    }

    #[tokio::test]
    async fn a_full_inbox_counts_what_it_missed_and_leaving_unregisters() {
        let (tx, rx) = broadcast::channel(INBOX * 4);
        let router = Router::start(rx, None);
        let slow = router.join(Role::Dispatcher, 1);
        for _ in 0..INBOX + 10 {
            tx.send(event(1, chat())).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(slow.missed.load(Ordering::Relaxed), 10);
        drop(slow);
        assert!(router.lock().members.is_empty());
        assert!(router.lock().dispatchers.is_empty());
    }
}
