//! [`EngineNode`]: `dispatch engine`, a process that owns some cities.
//!
//! For each configured city a keeper task decides, every half second (with
//! jitter), whether this node should own it (placement over the live
//! engines) and acts on the city's lease:
//! - not held, should own, the lease is free → take it (epoch + 1), open the
//!   city's store as this epoch's writer role (earlier epochs' roles dropped
//!   and the store's permission caches waited out, so nothing a stale owner
//!   still sends can land: `WriterRoles`), start its actors (they rehydrate
//!   from the store), then serve its subjects for that epoch and announce the
//!   new owner;
//! - held → renew every sixth of the TTL (each tick, in effect); a renewal refused, or no renewal
//!   confirmed before the lease would run out (a pause, a store cut off),
//!   and the city is **fenced**: its subscriptions dropped and its actors
//!   halted at once, acknowledging nothing more;
//! - held, but placement moved it (a node joined, or this one is leaving) →
//!   hand it off: stop taking requests, let those in flight finish, stop the
//!   actors (which flush what they hold), release the lease (a conditional
//!   write), and announce that the city has no owner until the next takes it.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_nats::Client;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use dispatch_actors::Dispatch;
use dispatch_storage::scylladb::{LeaseState, LeaseTtl, Leases, Outcome, ScyllaSession, Writer, WriterRoles};
use dispatch_storage::{Fence, FencedStore, ScyllaConfig, ScyllaStore, SnapshotStore};

use super::ClusterConfig;
use super::members::Members;
use super::owner::{
    announce, answer_whois, publish_events, serve_admin, serve_commands, serve_maps, serve_processor, take_gps, take_presence,
};
use super::placement::owner_of;
use super::wire::{self, CitySubjects, Owner};
use crate::cities::Area;

/// How often a keeper looks at its city (plus up to half again of jitter).
const POLL: Duration = Duration::from_millis(500);

/// How much sooner than the lease's TTL an owner stops trusting it (and
/// writing): the time a write takes from leaving this process to reaching
/// the store, plus clock drift between machines.
const SAFETY: Duration = Duration::from_secs(1);

/// How long a starting engine listens to heartbeats before it takes a city
/// (more than one heartbeat interval: every live engine has been heard).
const SETTLE: Duration = Duration::from_millis(1_500);

/// How long a handoff waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(5);

/// Commands one city serves at once (more wait in NATS).
const IN_FLIGHT: usize = 512;

/// A running engine node.
pub struct EngineNode {
    node: String,
    nats: Client,
    leases: Arc<Leases>,
    /// The engine's own login: leases, schema and writer roles.
    session: Arc<ScyllaSession>,
    writers: WriterRoles,
    scylla: ScyllaConfig,
    /// What each city's actors are configured from (per city: its payment processor).
    serve_config: crate::ServeConfig,
    cluster: ClusterConfig,
    ttl: LeaseTtl,
    members: Arc<Members>,
    /// Cities this node owns now, with their epochs (for readiness and tests).
    owned: watch::Sender<HashMap<String, u64>>,
    keepers: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    leaving: watch::Sender<bool>,
    /// The HTTP client of the owned cities' outbound webhooks.
    webhooks: reqwest::Client,
}

/// A city this node serves.
struct Served {
    epoch: u64,
    dispatch: Dispatch,
    /// The city's subscriptions and loops.
    tasks: JoinSet<()>,
    /// Requests being carried out.
    in_flight: Arc<Semaphore>,
    /// Until when the lease is trusted: no write goes out after it, and the city is fenced.
    fence: Arc<Fence>,
    renewed_at: Instant,
    /// The role this epoch writes the city as.
    writer: Writer,
}

impl EngineNode {
    /// Connects to NATS and the store, and starts a keeper per city of `config`.
    pub async fn start(config: &crate::ServeConfig, nats: Client) -> anyhow::Result<Arc<EngineNode>> {
        anyhow::ensure!(
            config.storage == crate::config::StorageKind::Scylla,
            "dispatch engine needs storage = \"scylla\": a city's next owner must read what its last owner wrote"
        );
        config.validate()?;
        let session = ScyllaStore::connect(&config.scylla).await?;
        let leases = Arc::new(Leases::open(Arc::clone(&session), &config.scylla).await?);
        let writers = WriterRoles::open(Arc::clone(&session), &config.scylla).await?;
        let members = Members::start(nats.clone(), &config.node).await?;
        let (owned, _) = watch::channel(HashMap::new());
        let (leaving, _) = watch::channel(false);
        let node = Arc::new(EngineNode {
            node: config.node.clone(),
            nats,
            leases,
            session,
            writers,
            scylla: config.scylla.clone(),
            serve_config: config.clone(),
            cluster: config.cluster.clone(),
            ttl: LeaseTtl::secs(config.cluster.lease_ttl_secs)?,
            members,
            owned,
            keepers: std::sync::Mutex::new(Vec::new()),
            leaving,
            webhooks: crate::webhooks::client(&config.webhooks)?,
        });
        for city in &config.cities {
            let area = Arc::new(Area::new(city, config.h3_resolution).map_err(anyhow::Error::msg)?);
            let keeper = tokio::spawn(Arc::clone(&node).keep(area));
            node.keepers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(keeper);
        }
        Ok(node)
    }

    /// The cities this node owns now, by epoch.
    #[must_use]
    pub fn owned(&self) -> watch::Receiver<HashMap<String, u64>> {
        self.owned.subscribe()
    }

    /// This node's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.node
    }

    /// Leaves the cluster gracefully: every city handed off, then the keepers end.
    pub async fn shutdown(&self) {
        self.members.leave().await;
        let _ = self.leaving.send(true);
        let keepers = std::mem::take(&mut *self.keepers.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
        for keeper in keepers {
            let _ = keeper.await;
        }
    }

    fn ttl(&self) -> LeaseTtl {
        self.ttl
    }

    /// Whether placement puts `city` on this node now.
    fn should_own(&self, city: &str, live: &BTreeSet<String>) -> bool {
        owner_of(city, live, &self.cluster.pins).is_some_and(|owner| *owner == self.node)
    }

    /// Until when a lease renewed (or taken) at `sent` is trusted: its TTL less the safety margin.
    fn trusted_until(&self, sent: Instant) -> Instant {
        sent + self.ttl().duration().saturating_sub(SAFETY)
    }

    /// Keeps one city: takes, renews, fences or hands off its lease.
    async fn keep(self: Arc<Self>, area: Arc<Area>) {
        let city = area.config.name.clone();
        let mut served: Option<Served> = None;
        let mut leaving = self.leaving.subscribe();
        // Hear the other engines before placing anything: a node that has
        // heard nobody yet would think every city is its own.
        tokio::time::sleep(SETTLE).await;
        loop {
            let jitter = Duration::from_millis(super::nats::random() % (POLL.as_millis() as u64 / 2));
            tokio::select! {
                () = tokio::time::sleep(POLL + jitter) => {}
                _ = leaving.changed() => {}
            }
            let is_leaving = *leaving.borrow();
            let live = self.members.live();
            let want = !is_leaving && self.should_own(&city, &live);
            served = match served.take() {
                None if want => self.try_take(&area).await,
                None => None,
                Some(s) if !s.fence.is_open() => {
                    self.fence(&city, s, "its lease ran out before a renewal was confirmed");
                    None
                }
                Some(s) if !want => {
                    self.hand_off(&city, s).await;
                    None
                }
                Some(s) => self.renew(&city, s).await,
            };
            if is_leaving && served.is_none() {
                break;
            }
        }
    }

    /// Takes the city if its lease is free, and starts serving it.
    async fn try_take(&self, area: &Arc<Area>) -> Option<Served> {
        let city = &area.config.name;
        let lease = match self.leases.read(city).await {
            Ok(lease) => lease,
            Err(e) => {
                tracing::warn!(%city, %e, "cannot read the city's lease");
                return None;
            }
        };
        if lease.owner.is_some() {
            return None;
        }
        let asked = Instant::now();
        match self.leases.take(city, &self.node, lease.epoch, self.ttl()).await {
            Ok(Outcome::Applied) => {}
            Ok(Outcome::Refused(_)) => return None,
            Err(e) => {
                // Unknown: a serial read tells whether it applied.
                tracing::warn!(%city, %e, "a lease take did not answer; reading it back");
                match self.leases.read(city).await {
                    Ok(LeaseState { owner: Some(owner), epoch }) if owner == self.node && epoch == lease.epoch + 1 => {}
                    _ => return None,
                }
            }
        }
        let epoch = lease.epoch + 1;
        let fence = Fence::new(city, self.trusted_until(asked));
        tracing::info!(%city, epoch, node = %self.node, "took the city's lease");
        // Opening the store and rehydrating can outlast the lease: it is renewed meanwhile.
        let mut renewed_at = asked;
        let serving = self.serve(area, epoch, Arc::clone(&fence));
        tokio::pin!(serving);
        let started = loop {
            tokio::select! {
                started = &mut serving => break started,
                () = tokio::time::sleep(self.ttl().duration() / 6) => {
                    if !self.renew_lease(city, epoch, &fence, &mut renewed_at).await {
                        break Err(anyhow::anyhow!("the lease was lost while the city started"));
                    }
                }
            }
        };
        match started.map(|(dispatch, tasks, in_flight, writer)| Served {
            epoch,
            dispatch,
            tasks,
            in_flight,
            fence: Arc::clone(&fence),
            renewed_at,
            writer,
        }) {
            Ok(served) => {
                metrics::histogram!("dispatch_cluster_takeover_seconds").record(asked.elapsed().as_secs_f64());
                self.owned.send_modify(|owned| {
                    owned.insert(city.clone(), epoch);
                });
                Some(served)
            }
            Err(e) => {
                tracing::error!(%city, epoch, %e, "cannot serve the city; releasing its lease");
                fence.revoke();
                let _ = self.leases.release(city, &self.node, epoch).await;
                None
            }
        }
    }

    /// Renews the lease when a sixth of its TTL has passed; a refusal fences the city.
    async fn renew(&self, city: &str, mut served: Served) -> Option<Served> {
        if self.renew_lease(city, served.epoch, &served.fence, &mut served.renewed_at).await {
            Some(served)
        } else {
            self.fence(city, served, "its lease was refused a renewal: another node holds it");
            None
        }
    }

    /// Renews `city`'s lease at `epoch` if it is due, moving the fence on;
    /// `false` when the store says the lease is no longer ours. A renewal
    /// that does not answer leaves the fence where it was (it closes by itself).
    async fn renew_lease(&self, city: &str, epoch: u64, fence: &Fence, renewed_at: &mut Instant) -> bool {
        if renewed_at.elapsed() < self.ttl().duration() / 6 {
            return true;
        }
        let sent = Instant::now();
        match self.leases.renew(city, &self.node, epoch, self.ttl()).await {
            Ok(Outcome::Applied) => {
                fence.extend(self.trusted_until(sent));
                *renewed_at = sent;
                true
            }
            Ok(Outcome::Refused(now)) => {
                tracing::warn!(%city, epoch, ?now, "a lease renewal was refused");
                false
            }
            Err(e) => {
                tracing::warn!(%city, %e, "a lease renewal did not answer");
                true
            }
        }
    }

    /// Stops serving at once: the lease is lost, so nothing more is answered or written.
    fn fence(&self, city: &str, mut served: Served, why: &str) {
        tracing::error!(%city, epoch = served.epoch, why, "fenced: the city's actors are halted");
        metrics::counter!("dispatch_cluster_fenced_total").increment(1);
        served.fence.revoke();
        served.tasks.abort_all();
        served.dispatch.halt();
        self.owned.send_modify(|owned| {
            owned.remove(city);
        });
    }

    /// Gives the city up gracefully: no new requests, those in flight finish,
    /// the actors flush, the lease is released.
    async fn hand_off(&self, city: &str, mut served: Served) {
        tracing::info!(%city, epoch = served.epoch, "handing the city off");
        served.tasks.abort_all();
        let _ = tokio::time::timeout(DRAIN, served.in_flight.acquire_many(IN_FLIGHT as u32)).await;
        served.dispatch.shutdown().await;
        // Everything the actors held is written; nothing more may be once the lease is given up.
        if let Err(e) = self.writers.dismiss(&served.writer).await {
            tracing::warn!(%city, %e, "the writer role stays until the next owner drops it");
        }
        served.fence.revoke();
        match self.leases.release(city, &self.node, served.epoch).await {
            Ok(Outcome::Applied) => {}
            Ok(Outcome::Refused(now)) => tracing::warn!(%city, ?now, "the lease was no longer ours to release"),
            Err(e) => tracing::warn!(%city, %e, "the release did not answer; the lease runs out by itself"),
        }
        self.owned.send_modify(|owned| {
            owned.remove(city);
        });
        let released = Owner { city: city.to_owned(), epoch: served.epoch, node: String::new() };
        let _ = self.nats.publish(CitySubjects::new(city).owner(), wire::encode(&released)).await;
    }

    /// Opens the city's store as this epoch's writer, once no earlier
    /// writer's statement can land: the schema brought up to date, earlier
    /// writer roles dropped, this epoch's role made, and the store's
    /// permission caches waited out (`WriterRoles`).
    async fn open_store(&self, city: &str, epoch: u64, fence: &Arc<Fence>) -> anyhow::Result<(Arc<dyn SnapshotStore>, Writer)> {
        ScyllaStore::migrate(&self.session, &self.scylla, city).await?;
        self.writers.retire(city, epoch, fence).await?;
        let settled = Instant::now() + self.writers.settle_time();
        let writer = self.writers.admit(city, epoch, fence).await?;
        let session = self.writers.connect(&writer).await?;
        let scylla = ScyllaStore::open_migrated(session, &self.scylla, city, epoch).await?.fenced_by(Arc::clone(fence));
        tokio::time::sleep_until(settled).await;
        Ok((Arc::new(FencedStore::new(Arc::new(scylla), Arc::clone(fence))), writer))
    }

    /// Starts the city's actors on its store and serves its subjects for `epoch`.
    async fn serve(
        &self,
        area: &Arc<Area>,
        epoch: u64,
        fence: Arc<Fence>,
    ) -> anyhow::Result<(Dispatch, JoinSet<()>, Arc<Semaphore>, Writer)> {
        let city = area.config.name.clone();
        let (store, writer) = self.open_store(&city, epoch, &fence).await?;
        let (dispatch, report) = Dispatch::start(self.serve_config.dispatch_config(&city)?, store).await?;
        tracing::info!(%city, epoch, jobs = report.jobs, contractors = report.contractors, "city rehydrated");
        // It ends with the city (halted or handed off).
        drop(crate::webhooks::start_city(&city, dispatch.clone(), &self.serve_config.webhooks, self.webhooks.clone()));
        let subjects = CitySubjects::new(&city);
        let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
        let mut tasks = JoinSet::new();
        let commands = self.nats.subscribe(subjects.commands(epoch)).await?;
        let maps = self.nats.subscribe(subjects.map(epoch)).await?;
        let gps = self.nats.subscribe(subjects.gps(epoch)).await?;
        let processor = self.nats.subscribe(subjects.processor(epoch)).await?;
        let admin = self.nats.subscribe(subjects.admin(epoch)).await?;
        let whois = self.nats.subscribe(subjects.whois()).await?;
        let presence = self.nats.subscribe(subjects.presence()).await?;
        let me = Owner { city: city.clone(), epoch, node: self.node.clone() };
        tasks.spawn(serve_commands(self.nats.clone(), commands, Arc::clone(area), dispatch.clone(), Arc::clone(&in_flight)));
        tasks.spawn(serve_maps(self.nats.clone(), maps, dispatch.clone()));
        tasks.spawn(take_gps(gps, dispatch.clone()));
        tasks.spawn(take_presence(presence, dispatch.clone()));
        tasks.spawn(serve_processor(self.nats.clone(), processor, dispatch.clone()));
        tasks.spawn(serve_admin(self.nats.clone(), admin, dispatch.clone()));
        tasks.spawn(answer_whois(self.nats.clone(), whois, me.clone()));
        tasks.spawn(publish_events(self.nats.clone(), subjects.events(), epoch, dispatch.clone()));
        tasks.spawn(announce(self.nats.clone(), subjects.owner(), me));
        self.nats.flush().await?;
        Ok((dispatch, tasks, in_flight, writer))
    }
}
