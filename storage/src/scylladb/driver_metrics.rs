//! The driver's own counters, exported to Prometheus beside the engine's:
//! what the store's [`RetryPolicy`](crate::RetryPolicy) cannot see, because
//! the driver handles it inside one call — a statement retried on another
//! node after a timeout or a broken connection, a request that timed out.
//!
//! | metric | what |
//! |---|---|
//! | `dispatch_scylla_retries_total` | attempts the driver's retry policy made again |
//! | `dispatch_scylla_request_timeouts_total` | requests past the client-side timeout |
//! | `dispatch_scylla_errors_total` | requests that failed after the driver's retries |
//! | `dispatch_scylla_connections` | connections open to the cluster |
//!
//! A cluster engine's city writers have sessions of their own, labelled
//! `pool="<keyspace>"`; the shared session's series have no label.

use std::sync::{Arc, Weak};
use std::time::Duration;

use scylla::client::session::Session;

/// How often the counters are copied.
const EVERY: Duration = Duration::from_secs(1);

/// Copies `session`'s counters into the metrics every second, until the
/// session is dropped; labelled `pool` when given (a city writer's session).
pub(super) fn export(session: &Arc<Session>, pool: Option<String>) {
    let session = Arc::downgrade(session);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            if !copy(&session, pool.as_deref()) {
                return;
            }
        }
    });
}

/// One copy; false once the session is gone.
fn copy(session: &Weak<Session>, pool: Option<&str>) -> bool {
    let Some(session) = session.upgrade() else { return false };
    let m = session.get_metrics();
    let labels: Vec<metrics::Label> = pool.map(|p| metrics::Label::new("pool", p.to_owned())).into_iter().collect();
    metrics::counter!("dispatch_scylla_retries_total", labels.clone()).absolute(m.get_retries_num());
    metrics::counter!("dispatch_scylla_request_timeouts_total", labels.clone()).absolute(m.get_request_timeouts());
    metrics::counter!("dispatch_scylla_errors_total", labels.clone())
        .absolute(m.get_errors_unpaged_num() + m.get_errors_manually_paged_num());
    metrics::gauge!("dispatch_scylla_connections", labels).set(m.get_total_connections() as f64);
    true
}
