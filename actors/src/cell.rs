//! The cell actor: one per active H3 cell. Owns the cell's R-tree of
//! contractors, answers k-nearest inside it, learns the cell's road speed,
//! and keeps its demand (open jobs) and supply (available contractors) for
//! surge pricing and the map. It stops itself once empty and idle.

use std::collections::HashMap;
use std::sync::Arc;

use dispatch_engine::eta::LearnedSpeed;
use dispatch_engine::pricing::CellLoad;
use dispatch_engine::spatial::{CellTree, IndexedContractor};
use dispatch_engine::{ContractorId, Filter, GeoPoint, Neighbor, StatusKind};
use h3o::CellIndex;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::dispatcher::DispatcherMsg;
use crate::shared::{Shared, forget_if_same};

/// Messages to a cell actor.
#[derive(Debug)]
pub enum CellMsg {
    /// A contractor entered the cell or moved inside it (tile38's enter / inside).
    Upsert {
        /// The contractor as indexed.
        contractor: IndexedContractor,
        /// Where.
        point: GeoPoint,
        /// The speed the contractor's phone reported with this fix, m/s, for the cell's learned speed.
        speed_mps: Option<f64>,
    },
    /// A contractor left the cell (tile38's exit).
    Exit(ContractorId),
    /// Whether `job`, in this cell, is open (posted or offering): idempotent,
    /// so a restarted job can announce itself again.
    Demand {
        /// The job.
        job: dispatch_engine::JobId,
        /// Open or not.
        open: bool,
    },
    /// The `k` nearest matches in this cell.
    Nearest {
        /// Query point.
        query: GeoPoint,
        /// How many.
        k: usize,
        /// Which contractors qualify.
        filter: Filter,
        /// Where the answer goes.
        reply: RpcReplyPort<CellAnswer>,
    },
    /// The cell's counters.
    Info(RpcReplyPort<CellInfo>),
    /// Timer: stop if empty and idle.
    IdleCheck,
}

/// A cell's answer to [`CellMsg::Nearest`].
#[derive(Debug, Clone)]
pub struct CellAnswer {
    /// Matches, nearest first.
    pub neighbors: Vec<Neighbor>,
    /// The cell's learned (or default) speed, m/s.
    pub speed_mps: f64,
}

/// A cell's counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CellInfo {
    /// Contractors in the cell.
    pub contractors: usize,
    /// Open jobs and available contractors.
    pub load: CellLoad,
    /// Learned (or default) speed, m/s.
    pub speed_mps: f64,
}

/// The cell actor.
pub(crate) struct CellActor;

/// The cell actor's state.
pub(crate) struct CellState {
    cell: CellIndex,
    shared: Arc<Shared>,
    tree: CellTree,
    members: HashMap<ContractorId, (IndexedContractor, GeoPoint)>,
    speed: LearnedSpeed,
    open_jobs: std::collections::HashSet<dispatch_engine::JobId>,
    /// Members whose status is Available, kept as members come and go.
    available: u32,
    published: CellLoad,
    idle_since: Option<tokio::time::Instant>,
}

impl CellState {
    fn load(&self) -> CellLoad {
        let demand = u32::try_from(self.open_jobs.len()).unwrap_or(u32::MAX);
        CellLoad { demand, supply: self.available }
    }

    fn speed_mps(&self) -> f64 {
        self.speed.get().unwrap_or(self.shared.config.speed.default_speed_mps)
    }

    /// Tells the dispatcher when demand or supply changed, for surge.
    fn publish_load(&mut self) {
        let load = self.load();
        if load != self.published {
            self.published = load;
            if let Some(root) = self.shared.root.get() {
                let _ = root.cast(DispatcherMsg::CellLoad { cell: self.cell, load });
            }
        }
        let empty = self.members.is_empty() && self.open_jobs.is_empty();
        self.idle_since = match (empty, self.idle_since) {
            (true, None) => Some(tokio::time::Instant::now()),
            (true, since) => since,
            (false, _) => None,
        };
    }
}

impl Actor for CellActor {
    type Msg = CellMsg;
    type State = CellState;
    type Arguments = (CellIndex, Arc<Shared>);

    async fn pre_start(&self, myself: ActorRef<CellMsg>, (cell, shared): Self::Arguments) -> Result<CellState, ActorProcessingErr> {
        myself.send_interval(shared.config.cell_idle_after, || CellMsg::IdleCheck);
        metrics::gauge!("dispatch_actors_alive", "kind" => "cell").increment(1.0);
        Ok(CellState {
            cell,
            tree: CellTree::new(cell),
            members: HashMap::new(),
            speed: LearnedSpeed::default(),
            open_jobs: std::collections::HashSet::new(),
            available: 0,
            published: CellLoad::default(),
            idle_since: Some(tokio::time::Instant::now()),
            shared,
        })
    }

    async fn post_stop(&self, _: ActorRef<CellMsg>, _: &mut CellState) -> Result<(), ActorProcessingErr> {
        metrics::gauge!("dispatch_actors_alive", "kind" => "cell").decrement(1.0);
        Ok(())
    }

    async fn handle(&self, myself: ActorRef<CellMsg>, msg: CellMsg, state: &mut CellState) -> Result<(), ActorProcessingErr> {
        // GPS-driven upserts are the hot path: only the other messages are timed.
        let started = (!matches!(msg, CellMsg::Upsert { .. })).then(std::time::Instant::now);
        match msg {
            CellMsg::Upsert { contractor, point, speed_mps } => {
                if let Some(mps) = speed_mps {
                    state.speed.observe(&state.shared.config.speed, mps);
                }
                if let Some((old, old_point)) = state.members.insert(contractor.id, (contractor, point)) {
                    state.tree.remove(&old, old_point);
                    state.available -= u32::from(old.status == StatusKind::Available);
                }
                state.available += u32::from(contractor.status == StatusKind::Available);
                state.tree.insert(contractor, point);
                state.publish_load();
                state.shared.counters.cell_upserts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            CellMsg::Exit(id) => {
                if let Some((old, point)) = state.members.remove(&id) {
                    state.tree.remove(&old, point);
                    state.available -= u32::from(old.status == StatusKind::Available);
                }
                state.publish_load();
            }
            CellMsg::Demand { job, open } => {
                if open {
                    state.open_jobs.insert(job);
                } else {
                    state.open_jobs.remove(&job);
                }
                state.publish_load();
            }
            CellMsg::Nearest { query, k, filter, reply } => {
                let mut neighbors = Vec::with_capacity(k);
                state.tree.nearest_into(query, k, &filter, &mut neighbors);
                let _ = reply.send(CellAnswer { neighbors, speed_mps: state.speed_mps() });
            }
            CellMsg::Info(reply) => {
                let _ = reply.send(CellInfo { contractors: state.members.len(), load: state.load(), speed_mps: state.speed_mps() });
            }
            CellMsg::IdleCheck => {
                let idle = state.idle_since.is_some_and(|t| t.elapsed() >= state.shared.config.cell_idle_after);
                if idle {
                    forget_if_same(&state.shared.cells, &state.cell, myself.get_id());
                    myself.stop(Some("empty and idle".into()));
                }
            }
        }
        if let Some(started) = started {
            metrics::histogram!("dispatch_message_seconds", "kind" => "cell").record(started.elapsed().as_secs_f64());
        }
        Ok(())
    }
}
