//! What a connection is sent without asking: the city's job events it may
//! see, and a dispatcher's map feed (a snapshot on `subscribe`, then deltas
//! at most once a second).
//!
//! The router already hands a session only the events of its parties'
//! jobs; here each role's view is narrowed further: a contractor gets offers
//! made to them as `offer` frames and the events of jobs assigned to them; a
//! customer gets their jobs' events, and the contractor's position only while
//! watching; a dispatcher gets everything in the city.

use std::time::Duration;

use dispatch_actors::{DispatchEvent, EventKind};
use dispatch_engine::ContractorId;

use super::Session;
use crate::auth::Role;

use crate::protocol::{MapCell, ServerMsg};

impl Session {
    /// Forwards a city event if this connection may see it.
    pub(super) async fn on_event(&mut self, event: &DispatchEvent) {
        self.forget_finished();
        if event.kind.finishes_job() && (self.jobs.contains(&event.job) || self.assigned.contains(&event.job)) {
            self.finished.push(event.job);
        }
        let me = self.claims.sub;
        match self.claims.role {
            Role::Dispatcher => self.send(&event_frame(event)),
            Role::Contractor => {
                let about_me = event.kind.contractor() == Some(ContractorId(me));
                if let EventKind::Offered { contractor, expires_at, eta_secs } = event.kind
                    && contractor == ContractorId(me)
                {
                    if let Ok(snap) = self.dispatch().job(event.job).await {
                        let offer = ServerMsg::Offer {
                            job: event.job.0,
                            trade: snap.job.trade,
                            site: snap.job.location,
                            description: snap.job.description,
                            expires_at: expires_at.0,
                            eta_secs,
                        };
                        self.send_stamped(&offer, Some(snap.job.posted_at));
                    }
                    return;
                }
                if matches!(event.kind, EventKind::ContractorPosition { .. }) {
                    return; // their own position
                }
                if about_me || self.assigned.contains(&event.job) {
                    if matches!(event.kind, EventKind::Accepted { contractor } if contractor == ContractorId(me)) {
                        self.assigned.insert(event.job);
                    }
                    self.send(&event_frame(event));
                }
            }
            Role::Customer => {
                if !self.jobs.contains(&event.job) {
                    return;
                }
                if matches!(event.kind, EventKind::ContractorPosition { .. }) && !self.watching.contains(&event.job) {
                    return;
                }
                self.send(&event_frame(event));
            }
        }
    }

    /// Drops the jobs that finished longer than the router remembers ago.
    fn forget_finished(&mut self) {
        let (jobs, watching, assigned) = (&mut self.jobs, &mut self.watching, &mut self.assigned);
        self.finished.forget_expired(|job| {
            jobs.remove(&job);
            watching.remove(&job);
            assigned.remove(&job);
        });
    }

    /// The city's cell loads inside `viewport` (if given): cheap to compare tick to tick.
    pub(super) fn cell_loads(&self, viewport: Option<[f64; 4]>) -> Vec<CellLoadRow> {
        self.dispatch()
            .cells()
            .into_iter()
            .filter(|(cell, _, _)| {
                let centre = h3o::LatLng::from(*cell);
                viewport.is_none_or(|[s, w, n, e]| (s..=n).contains(&centre.lat()) && (w..=e).contains(&centre.lng()))
            })
            .collect()
    }

    /// Dispatcher feed tick: send what changed since the last delta. A queue
    /// already half full skips this tick; the next delta carries both.
    pub(super) fn map_tick(&mut self) {
        let Some((version, viewport)) = self.map else { return };
        if self.out.capacity() < self.out.max_capacity() / 2 {
            metrics::counter!("dispatch_map_deltas_coalesced_total").increment(1);
            return;
        }
        let delta = self.dispatch().map_since(version, viewport);
        let loads = self.cell_loads(viewport);
        let cells_changed = loads != self.cells_sent;
        let stats = self.dispatch().match_stats();
        if delta.is_empty() && !cells_changed && stats == self.stats_sent {
            return;
        }
        self.stats_sent = stats;
        // Hexagon boundaries are only worked out for cells actually sent.
        let cells = cells_changed.then(|| map_cells(&loads));
        if cells_changed {
            self.cells_sent = loads;
        }
        self.map = Some((delta.version, viewport));
        self.send(&ServerMsg::MapDelta {
            version: delta.version,
            stats: crate::wire::stats(stats),
            cells,
            contractors: crate::wire::contractors(delta.contractors),
            jobs: crate::wire::jobs(delta.jobs),
        });
    }
}

/// One cell's load on the map: the cell, its demand and supply, its surge.
pub(super) type CellLoadRow = (h3o::CellIndex, dispatch_engine::pricing::CellLoad, f64);

/// Map cells for the wire, with each hexagon's corners from h3o.
pub(super) fn map_cells(loads: &[CellLoadRow]) -> Vec<MapCell> {
    loads
        .iter()
        .map(|&(cell, load, surge)| MapCell {
            cell: cell.to_string(),
            supply: load.supply,
            demand: load.demand,
            surge,
            boundary: cell.boundary().iter().map(|v| [v.lat(), v.lng()]).collect(),
        })
        .collect()
}

pub(super) fn event_frame(event: &DispatchEvent) -> ServerMsg {
    ServerMsg::Event { job: event.job.0, seq: event.seq, at: event.at.0, event: crate::wire::event(&event.kind) }
}

/// Starts the map feed's once-a-second timer when a dispatcher has just subscribed.
pub(super) fn start_map_feed(session: &Session, map_tick: &mut Option<tokio::time::Interval>) {
    if session.map.is_some() && map_tick.is_none() {
        let start = tokio::time::Instant::now() + Duration::from_secs(1);
        let mut tick = tokio::time::interval_at(start, Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        *map_tick = Some(tick);
    }
}
