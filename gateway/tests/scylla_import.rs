//! Moving an installation from the embedded store to the CQL cluster of
//! `SCYLLA_URI`: serve on embedded, `dispatch snapshot export`, `import` into
//! fresh keyspaces, serve on them — the same jobs, contractors and logs.
#![allow(clippy::expect_used, reason = "test code: ids read out of replies")]

mod common;

use anyhow::Result;
use common::*;
use dispatch_gateway::config::StorageKind;
use dispatch_gateway::{Role, ServeConfig};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_city_exported_and_imported_into_scylla_serves_the_same_state() -> Result<()> {
    let Some(scylla) = scylla_config("import")? else { return Ok(()) };
    let data = tempfile::tempdir()?;
    let embedded = ServeConfig {
        storage: StorageKind::Embedded,
        data_dir: data.path().to_path_buf(),
        jwt_secret: "test-secret-of-at-least-32-bytes".into(),
        dev_auth: true,
        ..ServeConfig::default()
    };

    // On the embedded store: a contractor, a job accepted by them, a chat.
    let server = Server::start_with(|c| *c = embedded.clone()).await?;
    let mut pro = contractor(&server, 7, "plumbing", 800.0).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let posted = customer
        .call(json!({"type": "post_job", "trade": "plumbing", "lat": DSM.0, "lng": DSM.1, "urgency": "today", "description": "leak"}))
        .await?;
    let job = posted["job"].as_u64().expect("job id");
    pro.wait("the offer", |v| v["type"] == "offer").await?;
    pro.call(json!({"type": "accept", "job": job})).await?;
    let said = customer.call(json!({"type": "chat", "job": job, "text": "gate code 4512"})).await?;
    let chat_seq = said["seq"].as_u64().expect("seq");
    drop((pro, customer));
    server.stop().await?;

    // Export, then import into the cluster.
    let dump = data.path().join("all.dump");
    let exported = dispatch_gateway::snapshot::export(&embedded, &dump).await?;
    let on_scylla = ServeConfig { storage: StorageKind::Scylla, scylla, ..embedded.clone() };
    let imported = dispatch_gateway::snapshot::import(&on_scylla, &dump).await?;
    assert_eq!(exported, imported, "every city's counts arrive");

    // Serving on the cluster: the job is accepted by contractor 7, the chat is in its log.
    let server = Server::start_with(|c| *c = on_scylla.clone()).await?;
    let mut customer = server.connect(Role::Customer, 100).await?;
    let state = customer.call(json!({"type": "watch", "job": job})).await?;
    assert_eq!(state["state"]["accepted"]["contractor"], 7, "{state}");
    customer.send(json!({"type": "resume", "job": job, "last_seq": chat_seq - 1})).await?;
    customer.wait("the chat, replayed from the cluster", |v| v["event"]["chat"]["text"] == "gate code 4512").await?;
    // The contractor is back in the city's index.
    let mut dispatcher = server.connect(Role::Dispatcher, 1).await?;
    let near = dispatcher.call(json!({"type": "nearby", "lat": DSM.0, "lng": DSM.1, "k": 5})).await?;
    assert_eq!(near["contractors"][0]["id"], 7, "{near}");
    server.stop().await
}
