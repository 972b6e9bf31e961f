//! Retries with a request id: `post_job`, `accept`, `chat` and `rate` sent
//! again under the same `request_id` get the first attempt's answer and are
//! carried out once — on the embedded store here, through a restart, and
//! (in `cluster.rs`) across a failover.

#![allow(clippy::expect_used, reason = "test code: ids are read out of replies")]

mod common;

use anyhow::Result;
use common::*;
use dispatch_gateway::Role;
use serde_json::json;

#[tokio::test]
async fn a_retried_request_is_answered_as_the_first_and_done_once() -> Result<()> {
    let server = Server::start().await?;
    let mut pro = contractor(&server, 7, "plumbing", 500.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let post = json!({"type": "post_job", "trade": "plumbing", "lat": DSM.0, "lng": DSM.1, "urgency": "today",
        "description": "leak", "request_id": "post-1"});
    let first = customer.call(post.clone()).await?;
    let again = customer.call(post.clone()).await?;
    assert_eq!(first, again, "the same job, the same quote");
    let job = first["job"].as_u64().expect("job id");
    // A new id is a new job.
    let other = customer
        .call(json!({"type": "post_job", "trade": "hvac", "lat": DSM.0, "lng": DSM.1, "urgency": "today",
        "description": "cold", "request_id": "post-2"}))
        .await?;
    assert_ne!(other["job"], job);

    pro.wait("the offer", |v| v["type"] == "offer" && v["job"] == job).await?;
    let accept = json!({"type": "accept", "job": job, "request_id": "acc-1"});
    let accepted = pro.call(accept.clone()).await?;
    assert_eq!(pro.call(accept).await?, accepted, "a retried accept is acknowledged as the first, not refused");

    let chat = json!({"type": "chat", "job": job, "text": "gate code 4321", "request_id": "m-1"});
    let said = customer.call(chat.clone()).await?;
    assert_eq!(customer.call(chat).await?, said, "the same position in the log");
    for status in ["en_route", "on_site", "completed"] {
        pro.call(json!({"type": "job_status", "job": job, "status": status})).await?;
    }
    let rate = json!({"type": "rate", "job": job, "stars": 4, "request_id": "r-1"});
    let rated = customer.call(rate.clone()).await?;
    assert_eq!(customer.call(rate).await?, rated);
    assert_eq!(rated["reviews"], 1, "counted once");

    // The log holds one posted, one accepted, one chat and one rating.
    let mut reader = server.connect(Role::Customer, 100).await?;
    let resumed = reader.call(json!({"type": "resume", "job": job, "last_seq": 0})).await?;
    let events: Vec<_> = reader.seen.iter().filter(|v| v["type"] == "event").map(|v| v["event"].clone()).collect();
    assert_eq!(resumed["replayed"].as_u64(), Some(events.len() as u64));
    for kind in ["posted", "accepted", "chat", "rated"] {
        assert_eq!(events.iter().filter(|e| e[kind].is_object()).count(), 1, "{kind} once in {events:?}");
    }

    // The same id on a different request is a conflict; a malformed id is refused.
    let reused = customer.refused(json!({"type": "chat", "job": job, "text": "hi", "request_id": "post-1"})).await?;
    assert_eq!(reused["code"], "conflict", "{reused}");
    let long = "x".repeat(65);
    let bad = customer.refused(json!({"type": "chat", "job": job, "text": "hi", "request_id": long})).await?;
    assert_eq!(bad["code"], "bad_request", "{bad}");
    // Another customer's id is theirs: the same string is a new request.
    let mut neighbour = server.connect(Role::Customer, 101).await?;
    let theirs = neighbour
        .call(json!({"type": "post_job", "trade": "plumbing", "lat": DSM.0, "lng": DSM.1, "urgency": "today",
        "description": "theirs", "request_id": "post-1"}))
        .await?;
    assert_ne!(theirs["job"], job);
    server.stop().await
}

/// A retry after the server restarted (the answer was lost with the
/// connection) finds the record the first attempt stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_a_restart_finds_the_first_outcome() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let with_dir = |c: &mut dispatch_gateway::ServeConfig| {
        c.storage = dispatch_gateway::config::StorageKind::Embedded;
        c.data_dir = dir.path().to_owned();
    };
    let server = Server::start_with(with_dir).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let post = json!({"type": "post_job", "trade": "plumbing", "lat": DSM.0, "lng": DSM.1, "urgency": "today",
        "description": "leak", "request_id": "before-restart"});
    let first = customer.call(post.clone()).await?;
    server.stop().await?;

    let server = Server::start_with(with_dir).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    assert_eq!(customer.call(post).await?, first);
    let next = customer
        .call(json!({"type": "post_job", "trade": "plumbing", "lat": DSM.0, "lng": DSM.1, "urgency": "today",
        "description": "another"}))
        .await?;
    assert_eq!(next["job"].as_u64(), first["job"].as_u64().map(|j| j + 1), "ids stay gapless: the retry took none");
    server.stop().await
}
