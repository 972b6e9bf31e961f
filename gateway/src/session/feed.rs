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

use dispatch_engine::{JobId, Timestamp};

use super::Session;
use crate::auth::Role;
use crate::city_event::CityEvent;
use crate::port::CellRow;
use crate::protocol::{Event, MapCell, ServerMsg};

impl Session {
    /// Forwards a city event if this connection may see it.
    pub(super) fn on_event(&mut self, event: &CityEvent) {
        self.forget_finished();
        let job = JobId(event.job);
        if event.finishes_job() && (self.jobs.contains(&job) || self.assigned.contains(&job)) {
            self.finished.push(job);
        }
        let me = self.claims.sub;
        match self.claims.role {
            Role::Dispatcher | Role::Admin => self.send(&event.frame()),
            Role::Contractor => {
                let about_me = event.contractor() == Some(me);
                if let Event::Offered { contractor, expires_at, eta_secs } = event.event
                    && contractor == me
                {
                    if let Some(terms) = &event.offer {
                        let offer = ServerMsg::Offer {
                            job: event.job,
                            trade: terms.trade,
                            site: terms.site,
                            description: terms.description.clone(),
                            expires_at,
                            eta_secs,
                        };
                        self.send_stamped(&offer, Some(Timestamp(terms.posted_at)));
                    }
                    return;
                }
                if matches!(event.event, Event::ContractorPosition { .. }) {
                    return; // their own position
                }
                if about_me || self.assigned.contains(&job) {
                    if matches!(event.event, Event::Accepted { contractor } if contractor == me) {
                        self.assigned.insert(job);
                    }
                    self.send(&event.frame());
                }
            }
            Role::Customer => {
                if !self.jobs.contains(&job) {
                    return;
                }
                if matches!(event.event, Event::ContractorPosition { .. }) && !self.watching.contains(&job) {
                    return;
                }
                self.send(&event.frame());
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

    /// Dispatcher feed tick: send what changed since the last delta. A queue
    /// already half full skips this tick; the next delta carries both.
    pub(super) async fn map_tick(&mut self) {
        let Some((version, viewport)) = self.map else { return };
        if self.out.capacity() < self.out.max_capacity() / 2 {
            metrics::counter!("dispatch_map_deltas_coalesced_total").increment(1);
            return;
        }
        // A city out of reach this tick: the next one asks again for everything since `version`.
        let Ok(update) = self.city.port.map(version, viewport).await else { return };
        let cells_changed = update.cells != self.cells_sent;
        if update.contractors.is_empty() && update.jobs.is_empty() && !cells_changed && update.stats == self.stats_sent {
            return;
        }
        self.stats_sent = update.stats;
        // Hexagon boundaries are only worked out for cells actually sent.
        let cells = cells_changed.then(|| map_cells(&update.cells));
        if cells_changed {
            self.cells_sent = update.cells;
        }
        self.map = Some((update.version, viewport));
        self.send(&ServerMsg::MapDelta {
            version: update.version,
            stats: update.stats,
            cells,
            contractors: update.contractors,
            jobs: update.jobs,
        });
    }
}

/// Map cells for the wire, with each hexagon's corners from h3o.
pub(super) fn map_cells(rows: &[CellRow]) -> Vec<MapCell> {
    rows.iter()
        .map(|row| MapCell {
            cell: row.cell.to_string(),
            supply: row.load.supply,
            demand: row.load.demand,
            surge: row.surge,
            boundary: row.cell.boundary().iter().map(|v| [v.lat(), v.lng()]).collect(),
        })
        .collect()
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
