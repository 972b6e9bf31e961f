//! The dispatcher's console over the wire: the live map (a snapshot, then
//! deltas at most once a second) and assigning jobs by hand.

mod common;

use std::time::Instant;

use anyhow::Result;
use common::*;
use dispatch_gateway::Role;
use serde_json::json;

#[tokio::test]
async fn a_dispatcher_gets_a_snapshot_then_deltas_and_can_assign() -> Result<()> {
    let server = Server::start().await?;
    let _near = contractor(&server, 1, "electrical", 500.0).await?;
    let mut far = contractor(&server, 2, "electrical", 6_000.0).await?;
    let mut dispatcher = server.connect(Role::Dispatcher, 9).await?;
    dispatcher.send(json!({"type": "subscribe"})).await?;
    let snapshot = dispatcher.wait("map snapshot", |v| v["type"] == "map_snapshot").await?;
    let ids: Vec<u64> = snapshot["contractors"].as_array().expect("list").iter().map(|c| c["id"].as_u64().unwrap_or(0)).collect();
    assert_eq!(ids, vec![1, 2]);
    assert_eq!(snapshot["contractors"][0]["status"], "available");
    assert!(snapshot["cells"].as_array().expect("cells").iter().any(|c| c["supply"] == 1));

    // A job appears: the next delta carries it (and the offered contractor).
    let mut customer = server.connect(Role::Customer, 100).await?;
    let job = customer.post_job("electrical").await?;
    let started = Instant::now();
    let delta = dispatcher
        .wait("a delta with the job", |v| {
            v["type"] == "map_delta" && v["jobs"].as_array().is_some_and(|j| j.iter().any(|j| j["id"] == job))
        })
        .await?;
    assert!(delta["version"].as_u64() > snapshot["version"].as_u64());
    // Its money shows too: held before it was offered.
    let on_map = delta["jobs"].as_array().and_then(|j| j.iter().find(|j| j["id"] == job)).cloned().unwrap_or_default();
    assert_eq!(on_map["payment"], "authorized", "{on_map}");
    assert!(started.elapsed().as_secs_f64() <= 2.5, "deltas come at least once a second");

    // Reassign by hand to the far contractor, who gets the offer.
    assert!(snapshot["stats"]["matched_total"].is_u64(), "the snapshot carries match figures");
    let assigned = dispatcher.call(json!({"type": "assign", "job": job, "contractor": 2})).await?;
    assert_eq!(assigned["state"]["offering"]["contractor"], 2);
    far.wait("the assigned offer", |v| v["type"] == "offer" && v["job"] == job).await?;
    let err = dispatcher.refused(json!({"type": "assign", "job": job, "contractor": 77})).await?;
    assert_eq!(err["code"], "not_found");

    // A contractor moving every 300 ms shows up in deltas no more than once a second.
    let mover = tokio::spawn(async move {
        for i in 0..12u32 {
            let (lat, lng) = east(6_000.0 - 30.0 * f64::from(i));
            far.send(json!({"type": "gps", "lat": lat, "lng": lng, "ts": 1_000_000 + i64::from(i) * 3_000})).await?;
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
        anyhow::Ok(far)
    });
    let mut times = Vec::new();
    let deadline = Instant::now() + std::time::Duration::from_millis(3_800);
    while Instant::now() < deadline {
        if let Ok(Ok(v)) = tokio::time::timeout(std::time::Duration::from_millis(500), dispatcher.recv()).await
            && v["type"] == "map_delta"
        {
            times.push(Instant::now());
        }
    }
    mover.await??;
    assert!(times.len() >= 2, "{} deltas while moving", times.len());
    for pair in times.windows(2) {
        assert!(pair[1].duration_since(pair[0]).as_millis() >= 900, "{:?}", pair[1].duration_since(pair[0]));
    }
    server.stop().await
}

#[tokio::test]
async fn a_viewport_limits_the_map_and_a_bad_one_is_refused() -> Result<()> {
    let server = Server::start().await?;
    let _east = contractor(&server, 1, "painting", 8_000.0).await?;
    let _west = contractor(&server, 2, "painting", -8_000.0).await?;
    let mut dispatcher = server.connect(Role::Dispatcher, 9).await?;
    let (lat, lng) = east(8_000.0);
    let viewport = json!({"south": lat - 0.01, "west": lng - 0.01, "north": lat + 0.01, "east": lng + 0.01});
    dispatcher.send(json!({"type": "subscribe", "viewport": viewport})).await?;
    let snapshot = dispatcher.wait("snapshot", |v| v["type"] == "map_snapshot").await?;
    assert_eq!(snapshot["contractors"].as_array().map(Vec::len), Some(1));
    assert_eq!(snapshot["contractors"][0]["id"], 1);
    let backwards = json!({"type": "subscribe", "viewport": {"south": 42.0, "west": -93.0, "north": 41.0, "east": -92.0}});
    assert_eq!(dispatcher.refused(backwards).await?["code"], "bad_request");
    server.stop().await
}

#[tokio::test]
async fn nearby_lists_the_nearest_contractors_and_refuses_bad_queries() -> Result<()> {
    let server = Server::start().await?;
    let _a = contractor(&server, 1, "painting", 1_000.0).await?;
    let _b = contractor(&server, 2, "painting", -3_000.0).await?;
    let _c = contractor(&server, 3, "roofing", 500.0).await?;
    let mut dispatcher = server.connect(Role::Dispatcher, 9).await?;
    let (lat, lng) = east(0.0);
    // Going online is acked by the contractor's actor; its cell hears of it just after.
    for _ in 0..100 {
        let all = dispatcher.call(json!({"type": "nearby", "lat": lat, "lng": lng, "k": 10})).await?;
        if all["contractors"].as_array().map(Vec::len) == Some(3) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let ack = dispatcher.call(json!({"type": "nearby", "lat": lat, "lng": lng, "k": 2, "trade": "painting"})).await?;
    let ids: Vec<u64> = ack["contractors"].as_array().into_iter().flatten().filter_map(|c| c["id"].as_u64()).collect();
    assert_eq!(ids, vec![1, 2]);
    let all = dispatcher.call(json!({"type": "nearby", "lat": lat, "lng": lng, "k": 10})).await?;
    let ids: Vec<u64> = all["contractors"].as_array().into_iter().flatten().filter_map(|c| c["id"].as_u64()).collect();
    assert_eq!(ids, vec![3, 1, 2]);
    let near = dispatcher.call(json!({"type": "nearby", "lat": lat, "lng": lng, "k": 10, "radius_m": 2_000.0})).await?;
    assert_eq!(near["contractors"].as_array().map(Vec::len), Some(2));
    for bad in [json!({"k": 0}), json!({"k": 101}), json!({"k": 5, "radius_m": -1.0}), json!({"k": 5, "lat": 0.0})] {
        let mut frame = json!({"type": "nearby", "lat": lat, "lng": lng});
        for (key, value) in bad.as_object().into_iter().flatten() {
            frame[key] = value.clone();
        }
        let code = dispatcher.refused(frame).await?["code"].clone();
        assert!(code == "bad_request" || code == "out_of_area", "{code}");
    }
    let mut customer = server.connect(Role::Customer, 5).await?;
    assert_eq!(customer.refused(json!({"type": "nearby", "lat": lat, "lng": lng, "k": 1})).await?["code"], "forbidden");
    server.stop().await
}
