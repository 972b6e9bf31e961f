//! `matching = "batched"` over the wire: jobs posted within one window are
//! assigned together with the least total drive; greedy offers each at once.

#![allow(clippy::expect_used, reason = "test code")]

mod common;

use anyhow::Result;
use common::*;
use dispatch_gateway::Role;
use dispatch_gateway::config::Matching;
use serde_json::json;

/// Contractors 1 km east (7) and 3 km west (8); jobs at downtown (J1) and
/// 3.5 km east (J2), posted back to back. Returns who was offered J1 and J2.
async fn two_jobs(matching: Matching) -> Result<(u64, u64)> {
    let server = Server::start_with(|c| {
        c.matching = matching;
        c.batch_window_ms = 1_500;
    })
    .await?;
    let mut near = contractor(&server, 7, "plumbing", 1_000.0).await?;
    let mut far = contractor(&server, 8, "plumbing", -3_000.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let (lat, lng) = east(3_500.0);
    let post = |lat: f64, lng: f64| json!({"type": "post_job", "trade": "plumbing", "lat": lat, "lng": lng, "urgency": "today", "description": "leak"});
    let j1 = customer.call(post(DSM.0, DSM.1)).await?["job"].as_u64().expect("job id");
    let mut first = None;
    if matching == Matching::Greedy {
        // J1's search runs once it is posted: let it finish before J2 exists,
        // so J2 cannot reach contractor 7 first.
        first = Some(near.wait("an offer", |v| v["type"] == "offer").await?["job"].as_u64().expect("job"));
    }
    let j2 = customer.call(post(lat, lng)).await?["job"].as_u64().expect("job id");
    let to_near = match first {
        Some(job) => job,
        None => near.wait("an offer", |v| v["type"] == "offer").await?["job"].as_u64().expect("job"),
    };
    let to_far = far.wait("an offer", |v| v["type"] == "offer").await?["job"].as_u64().expect("job");
    assert_ne!(to_near, to_far, "one job each");
    let offered = |job: u64| if job == to_near { 7 } else { 8 };
    server.stop().await?;
    Ok((offered(j1), offered(j2)))
}

#[tokio::test]
async fn batched_matching_assigns_a_window_of_jobs_together() -> Result<()> {
    // Together: J1–8 (3 km) and J2–7 (2.5 km), 5.5 km in all.
    assert_eq!(two_jobs(Matching::Batched).await?, (8, 7));
    Ok(())
}

#[tokio::test]
async fn greedy_matching_offers_each_job_to_its_nearest_at_once() -> Result<()> {
    // Each for itself: J1 takes 7 (1 km) and J2 is left with 8 (6.5 km).
    assert_eq!(two_jobs(Matching::Greedy).await?, (7, 8));
    Ok(())
}
