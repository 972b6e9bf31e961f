//! Helpers shared by the actor integration tests.
#![allow(dead_code, unreachable_pub, clippy::expect_used, reason = "test helpers shared by several test files; each uses part")]

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use dispatch_actors::engine::{
    ContractorId, ContractorProfile, CustomerId, GeoPoint, Money, Rating, Timestamp, Trade, TradeExperience, Urgency,
};
use dispatch_actors::storage::{MemoryStore, SnapshotStore};
use dispatch_actors::{Dispatch, DispatchConfig, DispatchEvent, EventKind, GpsFix, JobRequest, Presence};
use tokio::sync::broadcast;

pub const DSM: (f64, f64) = (41.5868, -93.6250);

pub fn downtown() -> GeoPoint {
    GeoPoint::new(DSM.0, DSM.1).expect("valid")
}

pub fn profile(id: u64, trade: Trade) -> ContractorProfile {
    ContractorProfile {
        id: ContractorId(id),
        name: format!("contractor {id}"),
        trades: vec![TradeExperience { trade, years: 5 }],
        rating: Rating::new(4.5, 20).expect("valid"),
        hourly_rate: Money(8_000),
        service_radius_m: 30_000.0,
        shifts: vec![],
        utc_offset_minutes: 0,
    }
}

pub fn request(at: GeoPoint, trade: Trade) -> JobRequest {
    JobRequest {
        customer: CustomerId(1),
        trade,
        location: at,
        urgency: Urgency::Today,
        description: "leaking pipe under the sink".into(),
        budget: None,
        payment_method: None,
    }
}

pub fn fast_config() -> DispatchConfig {
    DispatchConfig { offer_timeout: Duration::from_secs(20), retry_after: Duration::from_secs(5), ..DispatchConfig::default() }
}

pub async fn memory_city(config: DispatchConfig) -> Result<(Dispatch, Arc<MemoryStore>)> {
    let store = Arc::new(MemoryStore::new());
    let (city, _) = Dispatch::start(config, Arc::clone(&store) as Arc<dyn SnapshotStore>).await?;
    Ok((city, store))
}

/// Registers a contractor of `trade` and brings them online `metres` east of downtown.
pub async fn online(city: &Dispatch, id: u64, trade: Trade, metres: f64) -> Result<GeoPoint> {
    let at = downtown().destination(90.0, metres);
    city.register_contractor(profile(id, trade)).await?;
    city.set_presence(ContractorId(id), Presence::Available, Some(at)).await?;
    Ok(at)
}

/// Waits for the first event matching `want` (up to 60 s of tokio time).
pub async fn wait_for(rx: &mut broadcast::Receiver<DispatchEvent>, want: impl FnMut(&DispatchEvent) -> bool) -> Result<DispatchEvent> {
    wait_for_within(rx, Duration::from_secs(60), want).await
}

/// Waits up to `limit` of tokio time for the first event matching `want`.
pub async fn wait_for_within(
    rx: &mut broadcast::Receiver<DispatchEvent>,
    limit: Duration,
    mut want: impl FnMut(&DispatchEvent) -> bool,
) -> Result<DispatchEvent> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => bail!("timed out waiting for an event"),
            Ok(Err(e)) => bail!("event stream: {e}"),
            Ok(Ok(event)) if want(&event) => return Ok(event),
            Ok(Ok(_)) => {}
        }
    }
}

pub fn offered_to(event: &DispatchEvent) -> Option<ContractorId> {
    match event.kind {
        EventKind::Offered { contractor, .. } => Some(contractor),
        _ => None,
    }
}

/// Posts a job of `trade` at `site` for customer 1, which the online
/// contractor `id` (the only one of that trade nearby) accepts and completes.
pub async fn complete_a_job(city: &Dispatch, id: u64, trade: Trade, site: GeoPoint) -> Result<dispatch_actors::engine::JobId> {
    let mut events = city.subscribe();
    let (job, _) = city.post_job(request(site, trade)).await?;
    wait_for(&mut events, |e| e.job == job && offered_to(e) == Some(ContractorId(id))).await?;
    let c = ContractorId(id);
    city.accept(job, c).await?;
    city.en_route(job, c).await?;
    city.on_site(job, c).await?;
    city.complete(job, c).await?;
    Ok(job)
}

pub fn fix(at: GeoPoint, ts_ms: i64, speed_mps: Option<f64>) -> GpsFix {
    GpsFix::new(at, None, speed_mps, Some(5.0), Timestamp(ts_ms)).expect("valid fix")
}

/// Polls `check` until it holds (up to 10 s of tokio time).
pub async fn eventually<F, Fut>(mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..1000 {
        if check().await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    bail!("condition never held")
}
