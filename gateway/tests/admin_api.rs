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

/// A request to `path` with `token` (`body`: a POST of that JSON): the status and the JSON answer.
async fn call(server: &Server, token: &str, path: &str, body: Option<Value>) -> Result<(u16, Value)> {
    let url = format!("http://{}{path}", server.addr);
    let client = reqwest::Client::new();
    let request = match body {
        Some(body) => client.post(url).json(&body),
        None => client.get(url),
    };
    let response = request.bearer_auth(token).send().await?;
    Ok((response.status().as_u16(), response.json().await?))
}

#[tokio::test]
async fn dispatchers_actions_are_audited_and_an_admin_blocks_a_customer() -> Result<()> {
    let server = Server::start().await?;
    let auth = Auth::new(b"test-secret-of-at-least-32-bytes");
    let admin = auth.issue(Role::Admin, 1, "", 600)?;
    let reader = auth.issue(Role::Dispatcher, 4, CITY, 600)?;
    let mut pro = contractor(&server, 7, "plumbing", 400.0).await?;
    let _other = contractor(&server, 8, "plumbing", 9_000.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let mut dispatcher = server.connect(Role::Dispatcher, 4).await?;
    let job = customer.post_job("plumbing").await?;
    pro.wait("the offer", |v| v["type"] == "offer" && v["job"] == job).await?;
    dispatcher.call(json!({"type": "assign", "job": job, "contractor": 8})).await?;
    assert_eq!(dispatcher.refused(json!({"type": "assign", "job": 99_999, "contractor": 7})).await?["code"], "not_found");
    dispatcher.call(json!({"type": "cancel", "job": job, "reason": "the customer phoned"})).await?;

    // The trail: each action before it ran, a refusal after its action, in order, a page at a time.
    let (status, trail) = call(&server, &reader, &format!("/v1/admin/cities/{CITY}/audit"), None).await?;
    assert_eq!(status, 200, "{trail}");
    let entries = trail["entries"].as_array().expect("entries");
    let actions: Vec<&str> = entries.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["assign", "assign", "refused", "cancel"], "{trail}");
    assert_eq!((entries[0]["actor_role"].as_str(), entries[0]["actor"].as_u64()), (Some("dispatcher"), Some(4)));
    assert_eq!(entries[2]["refused_position"], entries[1]["position"]);
    assert_eq!(entries[3]["reason"], "the customer phoned");
    let (_, first) = call(&server, &reader, &format!("/v1/admin/cities/{CITY}/audit?limit=2"), None).await?;
    assert_eq!(first["entries"].as_array().map(Vec::len), Some(2));
    let next = first["next"].as_u64().expect("a full page has a next cursor");
    let (_, rest) = call(&server, &reader, &format!("/v1/admin/cities/{CITY}/audit?after={next}&limit=2"), None).await?;
    assert_eq!(rest["entries"][0]["position"].as_u64(), Some(next + 1));
    for bad in ["?limit=0", "?limit=501", "?after=x"] {
        assert_eq!(call(&server, &reader, &format!("/v1/admin/cities/{CITY}/audit{bad}"), None).await?.0, 400, "{bad}");
    }

    // An admin blocks customer 100: their posts are refused, with the reason; a dispatcher may read but not block.
    let blocking = json!({"reason": "three chargebacks"});
    let path = format!("/v1/admin/cities/{CITY}/customers/100");
    assert_eq!(call(&server, &reader, &format!("{path}/block"), Some(blocking.clone())).await?.0, 403);
    let (status, blocked) = call(&server, &admin, &format!("{path}/block"), Some(blocking)).await?;
    assert_eq!((status, blocked["blocked"].as_bool(), blocked["blocked_by"].as_u64()), (200, Some(true), Some(1)), "{blocked}");
    assert_eq!(call(&server, &reader, &path, None).await?.1["reason"], "three chargebacks");
    let refused = customer
        .refused(json!({"type": "post_job", "trade": "hvac", "lat": DSM.0, "lng": DSM.1, "urgency": "today", "description": "x"}))
        .await?;
    assert!(refused["code"] == "forbidden" && refused["message"].as_str().is_some_and(|m| m.contains("three chargebacks")), "{refused}");
    for bad in [json!({"reason": ""}), json!({}), json!({"reason": "x", "extra": 1})] {
        assert_eq!(call(&server, &admin, &format!("{path}/block"), Some(bad.clone())).await?.0, 400, "{bad}");
    }
    let (status, unblocked) = call(&server, &admin, &format!("{path}/unblock"), Some(json!({"reason": "settled"}))).await?;
    assert_eq!((status, unblocked["blocked"].as_bool()), (200, Some(false)));
    customer.post_job("hvac").await?;
    let (_, trail) = call(&server, &admin, &format!("/v1/admin/cities/{CITY}/audit?after=4"), None).await?;
    let actions: Vec<&str> = trail["entries"].as_array().expect("entries").iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["block_customer", "unblock_customer"], "{trail}");
    server.stop().await
}

#[tokio::test]
async fn the_live_jobs_filter_and_page_and_an_admin_cancels_one_with_a_reason() -> Result<()> {
    let server = Server::start().await?;
    let auth = Auth::new(b"test-secret-of-at-least-32-bytes");
    let (admin, reader) = (auth.issue(Role::Admin, 1, "", 600)?, auth.issue(Role::Dispatcher, 4, CITY, 600)?);
    let mut customer = server.connect(Role::Customer, 100).await?;
    let mut posted = Vec::new();
    for trade in ["plumbing", "hvac", "plumbing"] {
        posted.push(customer.post_job(trade).await?);
    }
    let list = |query: &str| format!("/v1/admin/cities/{CITY}/jobs{query}");
    let ids =
        |page: &Value| page["jobs"].as_array().map(|j| j.iter().filter_map(|r| r["id"].as_u64()).collect::<Vec<_>>()).unwrap_or_default();

    let (status, all) = call(&server, &reader, &list(""), None).await?;
    assert_eq!((status, ids(&all)), (200, posted.clone()), "{all}");
    assert_eq!(all["jobs"][0]["trade"], "plumbing");
    assert!(all["jobs"][0]["posted_at"].as_i64().is_some_and(|t| t > 0));
    let (_, plumbing) = call(&server, &reader, &list("?trade=plumbing"), None).await?;
    assert_eq!(ids(&plumbing), [posted[0], posted[2]]);
    let (_, first) = call(&server, &reader, &list("?limit=2"), None).await?;
    assert_eq!((ids(&first), first["next"].as_u64()), (posted[..2].to_vec(), Some(posted[1])));
    let (_, rest) = call(&server, &reader, &list(&format!("?after={}", posted[1])), None).await?;
    assert_eq!((ids(&rest), rest["next"].as_u64()), (vec![posted[2]], None));
    let until = all["jobs"][1]["posted_at"].as_i64().unwrap_or_default();
    let (_, early) = call(&server, &reader, &list(&format!("?until={until}")), None).await?;
    assert!(ids(&early).iter().all(|id| *id < posted[1]) && ids(&early).contains(&posted[0]), "{early}");
    for bad in ["?state=lost", "?trade=juggling", "?limit=0", "?from=x"] {
        assert_eq!(call(&server, &reader, &list(bad), None).await?.0, 400, "{bad}");
    }

    // An admin calls one off; its customer is told why; a dispatcher may not through this API.
    let cancel = format!("/v1/admin/cities/{CITY}/jobs/{}/cancel", posted[1]);
    let why = json!({"reason": "a duplicate of another job"});
    assert_eq!(call(&server, &reader, &cancel, Some(why.clone())).await?.0, 403);
    let (status, done) = call(&server, &admin, &cancel, Some(why.clone())).await?;
    assert_eq!((status, done["state"].as_str()), (200, Some("cancelled")), "{done}");
    let told =
        customer.wait("the cancellation", |v| v["type"] == "event" && v["job"] == posted[1] && v["event"]["cancelled"].is_object()).await?;
    assert_eq!(told["event"]["cancelled"]["reason"], "a duplicate of another job", "{told}");
    let (_, cancelled) = call(&server, &reader, &list("?state=cancelled"), None).await?;
    assert_eq!(ids(&cancelled), [posted[1]]);
    // Again: the job is finished, refused, and the trail shows both attempts and the refusal.
    assert_eq!(call(&server, &admin, &cancel, Some(why)).await?.0, 409);
    let (_, trail) = call(&server, &admin, &format!("/v1/admin/cities/{CITY}/audit"), None).await?;
    let actions: Vec<&str> = trail["entries"].as_array().expect("entries").iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["cancel", "cancel", "refused"], "{trail}");
    server.stop().await
}

#[tokio::test]
async fn an_admin_suspends_a_contractor_whose_offer_goes_to_the_next() -> Result<()> {
    let server = Server::start().await?;
    let auth = Auth::new(b"test-secret-of-at-least-32-bytes");
    let (admin, reader) = (auth.issue(Role::Admin, 1, "", 600)?, auth.issue(Role::Dispatcher, 4, CITY, 600)?);
    let mut near = contractor(&server, 7, "plumbing", 300.0).await?;
    let mut far = contractor(&server, 8, "plumbing", 2_000.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let job = customer.post_job("plumbing").await?;
    near.wait("the offer", |v| v["type"] == "offer" && v["job"] == job).await?;

    let path = format!("/v1/admin/cities/{CITY}/contractors/7");
    let why = json!({"reason": "insurance expired"});
    assert_eq!(call(&server, &reader, &format!("{path}/suspend"), Some(why.clone())).await?.0, 403, "read-only for dispatchers");
    let (status, suspended) = call(&server, &admin, &format!("{path}/suspend"), Some(why)).await?;
    assert_eq!((status, suspended["suspended"].as_bool()), (200, Some(true)), "{suspended}");
    assert_eq!(suspended["suspended_reason"], "insurance expired");
    far.wait("the offer, withdrawn from the suspended one", |v| v["type"] == "offer" && v["job"] == job).await?;
    assert_eq!(call(&server, &reader, &path, None).await?.1["suspended"], true);
    let (status, back) = call(&server, &admin, &format!("{path}/reinstate"), Some(json!({"reason": "insured again"}))).await?;
    assert_eq!((status, back["suspended"].as_bool()), (200, Some(false)), "{back}");
    assert_eq!(call(&server, &admin, "/v1/admin/cities/des-moines/contractors/99999/suspend", Some(json!({"reason": "x"}))).await?.0, 404);
    server.stop().await
}

#[tokio::test]
async fn the_live_contractors_filter_by_trade_status_and_suspension_a_page_at_a_time() -> Result<()> {
    let server = Server::start().await?;
    let auth = Auth::new(b"test-secret-of-at-least-32-bytes");
    let (admin, reader) = (auth.issue(Role::Admin, 1, "", 600)?, auth.issue(Role::Dispatcher, 4, CITY, 600)?);
    let _plumber = contractor(&server, 7, "plumbing", 300.0).await?;
    let _electrician = contractor(&server, 8, "electrical", 600.0).await?;
    let _other = contractor(&server, 9, "plumbing", 900.0).await?;
    let list = |query: &str| format!("/v1/admin/cities/{CITY}/contractors{query}");
    let ids = |page: &Value| {
        page["contractors"].as_array().map(|c| c.iter().filter_map(|r| r["id"].as_u64()).collect::<Vec<_>>()).unwrap_or_default()
    };

    let (status, all) = call(&server, &reader, &list(""), None).await?;
    assert_eq!((status, ids(&all)), (200, vec![7, 8, 9]), "{all}");
    assert_eq!(all["contractors"][0]["trades"], json!(["plumbing"]));
    assert_eq!(all["contractors"][0]["status"], "available");
    assert_eq!(ids(&call(&server, &reader, &list("?trade=plumbing"), None).await?.1), [7, 9]);
    assert_eq!(ids(&call(&server, &reader, &list("?status=on_break"), None).await?.1), Vec::<u64>::new());
    let (_, first) = call(&server, &reader, &list("?limit=2"), None).await?;
    assert_eq!((ids(&first), first["next"].as_u64()), (vec![7, 8], Some(8)));
    assert_eq!(ids(&call(&server, &reader, &list("?after=8"), None).await?.1), [9]);
    call(&server, &admin, &format!("/v1/admin/cities/{CITY}/contractors/9/suspend"), Some(json!({"reason": "complaints"}))).await?;
    assert_eq!(ids(&call(&server, &reader, &list("?suspended=true"), None).await?.1), [9]);
    assert_eq!(ids(&call(&server, &reader, &list("?suspended=false&trade=plumbing"), None).await?.1), [7]);
    for bad in ["?trade=juggling", "?status=asleep", "?min_rating=6", "?limit=0", "?suspended=maybe"] {
        assert_eq!(call(&server, &reader, &list(bad), None).await?.0, 400, "{bad}");
    }
    server.stop().await
}

#[tokio::test]
async fn an_admin_verifies_a_licence_and_records_insurance_and_a_licensed_trade_waits_for_it() -> Result<()> {
    let server = Server::start_with(|c| c.licensed_trades = vec![dispatch_engine::Trade::Plumbing]).await?;
    let admin = Auth::new(b"test-secret-of-at-least-32-bytes").issue(Role::Admin, 1, "", 600)?;
    let mut pro = contractor(&server, 7, "plumbing", 300.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let job = customer.post_job("plumbing").await?;
    // Unverified: not offered the licensed trade.
    let waited = tokio::time::timeout(std::time::Duration::from_millis(700), pro.wait("no offer", |v| v["type"] == "offer")).await;
    assert!(waited.is_err(), "offered a licensed trade unverified: {waited:?}");

    let path = format!("/v1/admin/cities/{CITY}/contractors/7");
    let (_, before) = call(&server, &admin, &path, None).await?;
    assert_eq!(before["trades"][0], json!({"trade": "plumbing", "declared_years": 4, "verified": false, "scored_years": 2}), "{before}");
    let in_a_year = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64 + 365 * 86_400_000;
    let licence = json!({"trade": "plumbing", "licence": "IA-PL-20417", "expires_at": in_a_year});
    let (status, verified) = call(&server, &admin, &format!("{path}/verify"), Some(licence)).await?;
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["verified"], json!([{"trade": "plumbing", "licence": "IA-PL-20417", "expires_at": in_a_year}]));
    assert_eq!(verified["trades"][0], json!({"trade": "plumbing", "declared_years": 4, "verified": true, "scored_years": 4}));
    // The list filters by verification: for the trade, or any.
    let verified_ids = |query: &'static str| {
        let (server, admin) = (&server, &admin);
        async move {
            let (_, page) = call(server, admin, &format!("/v1/admin/cities/{CITY}/contractors{query}"), None).await?;
            anyhow::Ok(
                page["contractors"].as_array().map(|c| c.iter().filter_map(|r| r["id"].as_u64()).collect::<Vec<_>>()).unwrap_or_default(),
            )
        }
    };
    assert_eq!(verified_ids("?verified=true").await?, [7]);
    assert_eq!(verified_ids("?verified=true&trade=plumbing").await?, [7]);
    assert!(verified_ids("?verified=false").await?.is_empty());
    assert!(verified_ids("?verified=true&trade=hvac").await?.is_empty(), "no hvac licence");
    let (status, insured) =
        call(&server, &admin, &format!("{path}/insurance"), Some(json!({"policy": "GL-88", "expires_at": in_a_year}))).await?;
    assert_eq!((status, insured["insurance"]["policy"].as_str()), (200, Some("GL-88")), "{insured}");
    // Verified: a plumbing job is offered to them.
    let next = customer.post_job("plumbing").await?;
    assert_ne!(next, job);
    pro.wait("the offer, once licensed", |v| v["type"] == "offer" && (v["job"] == next || v["job"] == job)).await?;
    for bad in [
        json!({"trade": "juggling", "licence": "x", "expires_at": 1}),
        json!({"trade": "plumbing", "licence": "", "expires_at": 1}),
        json!({"trade": "plumbing", "licence": "x", "expires_at": -1}),
    ] {
        assert_eq!(call(&server, &admin, &format!("{path}/verify"), Some(bad.clone())).await?.0, 400, "{bad}");
    }
    server.stop().await
}

#[tokio::test]
async fn the_hourly_figures_count_what_happened_and_refuse_a_bad_period() -> Result<()> {
    let server = Server::start().await?;
    let mut pro = contractor(&server, 7, "plumbing", 400.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let job = customer.post_job("plumbing").await?;
    pro.wait("the offer", |v| v["type"] == "offer" && v["job"] == job).await?;
    pro.call(json!({"type": "accept", "job": job})).await?;
    let path = format!("/v1/admin/cities/{CITY}/kpis");
    let mut page = Value::Null;
    for _ in 0..200 {
        let (status, read) = admin_get(&server, &path).await?;
        assert_eq!(status, 200, "{read}");
        page = read;
        if page["total"]["matched"] == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let total = &page["total"];
    assert_eq!((total["posted"].as_u64(), total["offered"].as_u64(), total["matched"].as_u64()), (Some(1), Some(1), Some(1)), "{page}");
    assert_eq!((total["match_rate"].as_f64(), total["acceptance_rate"].as_f64()), (Some(1.0), Some(1.0)), "{page}");
    assert!(total["time_to_match_p50"].as_f64().is_some_and(|s| s < 60.0), "{page}");
    assert!(page["hours"].as_array().is_some_and(|h| !h.is_empty()));
    let (status, body) = admin_get(&server, &format!("{path}?from=-1")).await?;
    assert_eq!(status, 400, "{body}");
    // A period ending before it starts is empty; a long one is cut at 31 days.
    let (_, backwards) = admin_get(&server, &format!("{path}?from=7200000&until=0")).await?;
    assert_eq!((backwards["hours"].as_array().map(Vec::len), backwards["total"]["posted"].as_u64()), (Some(0), Some(0)), "{backwards}");
    let (_, long) = admin_get(&server, &format!("{path}?from=0&until=4000000000000")).await?;
    assert_eq!((long["from"].as_i64(), long["until"].as_i64()), (Some(0), Some(31 * 24 * 3_600_000)), "{long}");
    server.stop().await
}

#[tokio::test]
async fn the_job_history_lists_finished_jobs_from_the_index() -> Result<()> {
    let server = Server::start().await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let done = customer.post_job("plumbing").await?;
    customer.call(json!({"type": "cancel", "job": done, "reason": "fixed it myself"})).await?;
    let open = customer.post_job("hvac").await?;
    let path = format!("/v1/admin/cities/{CITY}/job-history?state=cancelled");
    let mut page = Value::Null;
    for _ in 0..200 {
        let (status, read) = admin_get(&server, &path).await?;
        assert_eq!(status, 200, "{read}");
        page = read;
        if page["jobs"].as_array().is_some_and(|j| !j.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let jobs = page["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), 1, "only the cancelled one: {page}");
    assert_eq!(
        (jobs[0]["id"].as_u64(), jobs[0]["state"].as_str(), jobs[0]["customer"].as_u64()),
        (Some(done), Some("cancelled"), Some(100))
    );
    assert!(page["next"].is_null(), "the end of the history: {page}");
    let (_, all) = admin_get(&server, &format!("/v1/admin/cities/{CITY}/job-history?trade=hvac")).await?;
    assert!(all["jobs"].as_array().is_some_and(|j| j.iter().all(|r| r["id"] == open)), "{all}");
    server.stop().await
}

#[tokio::test]
async fn the_contractor_directory_lists_contractors_the_live_map_never_had() -> Result<()> {
    let server = Server::start().await?;
    let _online = contractor(&server, 7, "plumbing", 400.0).await?;
    let mut never = server.connect(Role::Contractor, 9).await?;
    never.call(json!({"type": "register", "name": "Nell", "trades": [{"trade": "hvac", "years": 2}], "hourly_rate": 7000, "service_radius_m": 20000.0})).await?;
    let ids = |page: &Value| {
        page["contractors"].as_array().map(|c| c.iter().filter_map(|r| r["id"].as_u64()).collect::<Vec<_>>()).unwrap_or_default()
    };
    let (_, live) = admin_get(&server, &format!("/v1/admin/cities/{CITY}/contractors")).await?;
    assert_eq!(ids(&live), [7], "the live list has only who has been online: {live}");
    let (status, all) = admin_get(&server, &format!("/v1/admin/cities/{CITY}/contractor-directory")).await?;
    assert_eq!(status, 200, "{all}");
    assert_eq!(ids(&all), [7, 9], "{all}");
    assert_eq!((all["contractors"][1]["name"].as_str(), all["contractors"][1]["status"].as_str()), (Some("Nell"), Some("offline")));
    assert!(all["next"].is_null());
    let (_, hvac) = admin_get(&server, &format!("/v1/admin/cities/{CITY}/contractor-directory?trade=hvac&status=offline")).await?;
    assert_eq!(ids(&hvac), [9], "{hvac}");
    let (status, _) = admin_get(&server, &format!("/v1/admin/cities/{CITY}/contractor-directory?min_rating=9")).await?;
    assert_eq!(status, 400);
    server.stop().await
}
