//! [`Port`]: what a session needs of its city, wherever the city runs.
//!
//! `dispatch serve` holds each city's actors in the process
//! ([`Port::Local`]); a `dispatch gateway` reaches each city's owner over
//! NATS ([`Port::Remote`]). Either way a command is carried out by the one
//! executor (`execute.rs`) against the city's `Dispatch`, and what comes back
//! is the same [`Executed`]: the reply, the log entries to replay first, and
//! what the session should follow from now on.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use dispatch_actors::{ContractorLink, Dispatch, GpsFix};
use dispatch_engine::pricing::CellLoad;
use dispatch_engine::{ContractorId, Party};

use crate::auth::Role;
use crate::cities::Area;
use crate::city_event::CityEvent;
use crate::cluster::RemoteCity;
use crate::protocol::{AckResult, ClientMsg, ErrorCode, MapContractor, MapJob, MatchStats};
use crate::refusal::{Refusal, refuse};

/// Who sends a command: the verified token's role and subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The role.
    pub role: Role,
    /// The contractor, customer or dispatcher id.
    pub sub: u64,
}

/// What the session follows after a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Follow {
    /// Nothing changes.
    Nothing,
    /// The contractor went online: their GPS may flow.
    Online,
    /// The contractor went offline or on a break: their GPS stops.
    Offline,
    /// The contractor accepted this job.
    Assigned(u64),
    /// The customer posted this job.
    Posted(u64),
    /// The customer watches this job (and its contractor's position).
    Watching(u64),
    /// The sender resumed this job as `party`.
    Resumed {
        /// The job.
        job: u64,
        /// The sender's side of it.
        party: Party,
    },
}

/// A command carried out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Executed {
    /// The `ack`'s result.
    pub result: AckResult,
    /// Log entries to send before the ack (`resume`).
    pub replay: Vec<CityEvent>,
    /// What the session follows from now on.
    pub follow: Follow,
}

/// One cell on the dispatcher's map: the cell, its demand and supply, its surge.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CellRow {
    /// The H3 cell.
    pub cell: h3o::CellIndex,
    /// Open jobs and available contractors in it.
    pub load: CellLoad,
    /// Its surge multiplier.
    pub surge: f64,
}

/// The live map since a version, inside a viewport.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MapUpdate {
    /// The highest version included.
    pub version: u64,
    /// Contractors that changed.
    pub contractors: Vec<MapContractor>,
    /// Jobs that changed.
    pub jobs: Vec<MapJob>,
    /// Every cell's load (all of them: cheap to compare tick to tick).
    pub cells: Vec<CellRow>,
    /// The matching figures.
    pub stats: MatchStats,
}

/// The live map of `dispatch` since `version`, inside `viewport` (`[s, w, n, e]`).
pub(crate) fn map_update(dispatch: &Dispatch, version: u64, viewport: Option<[f64; 4]>) -> MapUpdate {
    let delta = dispatch.map_since(version, viewport);
    let cells = dispatch
        .cells()
        .into_iter()
        .filter(|(cell, _, _)| {
            let centre = h3o::LatLng::from(*cell);
            viewport.is_none_or(|[s, w, n, e]| (s..=n).contains(&centre.lat()) && (w..=e).contains(&centre.lng()))
        })
        .map(|(cell, load, surge)| CellRow { cell, load, surge })
        .collect();
    MapUpdate {
        version: delta.version,
        contractors: crate::wire::contractors(delta.contractors),
        jobs: crate::wire::jobs(delta.jobs),
        cells,
        stats: crate::wire::stats(dispatch.match_stats()),
    }
}

/// How sessions reach a city.
pub(crate) enum Port {
    /// Its actors run in this process.
    Local(Dispatch),
    /// Its owner is another process, reached over NATS.
    Remote(Arc<RemoteCity>),
}

/// Where a contractor's fixes go.
pub(crate) enum GpsLink {
    /// Straight to the contractor's actor.
    Local(ContractorLink),
    /// Into the city's batch for its owner.
    Remote(Arc<RemoteCity>, ContractorId),
}

impl GpsLink {
    /// Hands a fix on; an error means the contractor is offline by now.
    pub(crate) fn gps(&mut self, fix: GpsFix) -> Result<(), Refusal> {
        match self {
            GpsLink::Local(link) => link.gps(fix).map(drop).map_err(|_| refuse(ErrorCode::Conflict, "you went offline; send online again")),
            GpsLink::Remote(city, contractor) => {
                city.gps(*contractor, fix);
                Ok(())
            }
        }
    }

    /// Waits until every fix handed on before has been applied (local) or sent (remote).
    pub(crate) async fn flush(&self) -> bool {
        match self {
            GpsLink::Local(link) => link.flush().await.is_ok(),
            GpsLink::Remote(city, _) => {
                city.flush_gps().await;
                true
            }
        }
    }
}

impl Port {
    /// Carries out `msg` for `caller`.
    pub(crate) async fn execute(&self, area: &Area, caller: Caller, msg: ClientMsg) -> Result<Executed, Refusal> {
        match self {
            Port::Local(dispatch) => crate::execute::execute(area, dispatch, caller, msg).await,
            Port::Remote(city) => city.execute(caller, msg).await,
        }
    }

    /// Applies a verified processor webhook in the city: the job it concerned, if the city's.
    pub(crate) async fn processor_notice(&self, notice: &dispatch_actors::payments::webhook::Notice) -> Result<Option<u64>, Refusal> {
        match self {
            Port::Local(dispatch) => Ok(dispatch.processor_notice(notice).await?.map(|job| job.0)),
            Port::Remote(city) => city.processor_notice(notice).await,
        }
    }

    /// Answers an operator's read of the city (the admin API).
    pub(crate) async fn admin(&self, query: crate::admin::query::AdminQuery) -> Result<crate::admin::query::AdminAnswer, Refusal> {
        match self {
            Port::Local(dispatch) => crate::admin::query::answer(dispatch, query).await,
            Port::Remote(city) => city.admin(query).await,
        }
    }

    /// Notes a connection of a customer or contractor: open for `holds` more, or closed (`None`).
    pub(crate) async fn note_presence(&self, role: Role, sub: u64, connection: u64, holds: Option<std::time::Duration>) {
        let contractor = match role {
            Role::Contractor => true,
            Role::Customer => false,
            Role::Dispatcher | Role::Admin => return,
        };
        match self {
            Port::Local(dispatch) => {
                let party = if contractor { Party::Contractor } else { Party::Customer };
                dispatch.note_presence(party, sub, connection, holds);
            }
            Port::Remote(city) => {
                let holds_ms = holds.map(|h| u64::try_from(h.as_millis()).unwrap_or(u64::MAX));
                city.note_presence(&crate::cluster::wire::PresenceNote { contractor, id: sub, connection, holds_ms }).await;
            }
        }
    }

    /// The live map since `version`.
    pub(crate) async fn map(&self, version: u64, viewport: Option<[f64; 4]>) -> Result<MapUpdate, Refusal> {
        match self {
            Port::Local(dispatch) => Ok(map_update(dispatch, version, viewport)),
            Port::Remote(city) => city.map(version, viewport).await,
        }
    }

    /// Where `contractor`'s fixes go; refused while they are not online (local).
    pub(crate) fn gps_link(&self, contractor: ContractorId) -> Result<GpsLink, Refusal> {
        match self {
            Port::Local(dispatch) => {
                dispatch.link(contractor).map(GpsLink::Local).map_err(|_| refuse(ErrorCode::Conflict, "go online before sending GPS"))
            }
            Port::Remote(city) => Ok(GpsLink::Remote(Arc::clone(city), contractor)),
        }
    }

    /// The clock the city stamps times with (match latency is measured against it).
    pub(crate) fn clock(&self) -> dispatch_actors::Clock {
        match self {
            Port::Local(dispatch) => dispatch.clock(),
            Port::Remote(city) => city.clock(),
        }
    }

    /// The owner known now (node, epoch), for a city served elsewhere.
    pub(crate) fn owner(&self) -> Option<(String, u64)> {
        match self {
            Port::Local(_) => None,
            Port::Remote(city) => {
                let known = city.watch_owner().borrow().clone();
                (!known.gone).then_some((known.node, known.epoch))
            }
        }
    }

    /// The city's actors, when they run in this process.
    pub(crate) fn local(&self) -> Option<&Dispatch> {
        match self {
            Port::Local(dispatch) => Some(dispatch),
            Port::Remote(_) => None,
        }
    }
}
