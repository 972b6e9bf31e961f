//! The admin API's reads, as an operator sees them: a job's whole log and
//! its payment, a contractor, the city's books; bad ids, unknown cities and
//! jobs refused with a status and a message; the OpenAPI document served
//! and naming every route.

mod common;

use anyhow::Result;
use common::*;
use dispatch_gateway::{Auth, Role};
use serde_json::{Value, json};

/// GET `path` as an admin: the status and the JSON body.
async fn admin_get(server: &Server, path: &str) -> Result<(u16, Value)> {
    let token = Auth::new(b"test-secret-of-at-least-32-bytes").issue(Role::Admin, 1, "", 600)?;
    let response = reqwest::Client::new().get(format!("http://{}{path}", server.addr)).bearer_auth(token).send().await?;
    Ok((response.status().as_u16(), response.json().await?))
}

#[tokio::test]
async fn an_operator_reads_a_job_s_log_and_payment_a_contractor_and_the_books() -> Result<()> {
    let server = Server::start().await?;
    let mut pro = contractor(&server, 7, "plumbing", 400.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let job = customer.post_job("plumbing").await?;
    pro.wait("the offer", |v| v["type"] == "offer" && v["job"] == job).await?;
    pro.call(json!({"type": "accept", "job": job})).await?;
    customer.call(json!({"type": "chat", "job": job, "text": "the gate is open"})).await?;

    let (status, read) = admin_get(&server, &format!("/v1/admin/cities/{CITY}/jobs/{job}")).await?;
    assert_eq!(status, 200, "{read}");
    assert_eq!((read["city"].as_str(), read["job"].as_u64()), (Some(CITY), Some(job)));
    let timeline = read["timeline"].as_array().expect("a timeline");
    let kinds: Vec<&str> = timeline.iter().filter_map(|e| e["event"].as_object()?.keys().next().map(String::as_str)).collect();
    for expected in ["posted", "offered", "accepted", "chat"] {
        assert!(kinds.contains(&expected), "{expected} in {kinds:?}");
    }
    let seqs: Vec<u64> = timeline.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "the whole log, in order");
    assert_eq!(read["payment"]["state"], "authorized", "{read}");

    let (status, pat) = admin_get(&server, &format!("/v1/admin/cities/{CITY}/contractors/7")).await?;
    assert_eq!(status, 200, "{pat}");
    assert_eq!(pat["status"], "en_route", "accepted: on their way, {pat}");
    assert_eq!(pat["trades"][0]["trade"], "plumbing");
    assert!(pat["position"].as_array().is_some_and(|p| p.len() == 2), "{pat}");

    let (status, books) = admin_get(&server, &format!("/v1/admin/cities/{CITY}/books")).await?;
    assert_eq!(status, 200, "{books}");
    assert!(books["held"].as_i64().is_some_and(|h| h > 0), "the job's hold: {books}");

    // Refusals name the problem.
    for (path, expected) in [
        (format!("/v1/admin/cities/{CITY}/jobs/not-a-number"), 400),
        (format!("/v1/admin/cities/{CITY}/jobs/99999"), 404),
        (format!("/v1/admin/cities/{CITY}/contractors/99999"), 404),
        ("/v1/admin/cities/atlantis/books".to_owned(), 404),
        ("/v1/admin/nothing-here".to_owned(), 404),
    ] {
        let (status, body) = admin_get(&server, &path).await?;
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{path}: {body}");
    }

    // The OpenAPI document, served without a token, names every route and the bearer scheme.
    let document: Value = reqwest::get(format!("http://{}/v1/openapi.json", server.addr)).await?.json().await?;
    assert!(document["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{document}");
    for route in ["/v1/admin/cities/{city}/jobs/{job}", "/v1/admin/cities/{city}/contractors/{id}", "/v1/admin/cities/{city}/books"] {
        assert!(document["paths"][route]["get"].is_object(), "{route} is documented");
    }
    assert_eq!(document["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    server.stop().await
}
