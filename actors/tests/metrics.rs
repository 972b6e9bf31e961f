//! The actors report what they do through the `metrics` crate. A debugging
//! recorder (global, so this file is its own test binary) reads the figures.

mod common;

use anyhow::Result;
use common::*;
use dispatch_actors::engine::{ContractorId, Trade};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

/// A recorded metric: name, labels, value.
type Recorded = (String, Vec<(String, String)>, DebugValue);

/// The value of the metric called `name` whose labels include `label`.
fn value<'a>(snapshot: &'a [Recorded], name: &str, label: Option<(&str, &str)>) -> Option<&'a DebugValue> {
    snapshot
        .iter()
        .find(|(n, labels, _)| n == name && label.is_none_or(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v)))
        .map(|(_, _, v)| v)
}

#[tokio::test]
async fn offers_match_latency_actors_and_handling_time_are_recorded() -> Result<()> {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder.install().map_err(|e| anyhow::anyhow!("install: {e:?}"))?;

    let (city, _) = memory_city(fast_config()).await?;
    let mut events = city.subscribe();
    online(&city, 1, Trade::Plumbing, 500.0).await?;
    online(&city, 2, Trade::Plumbing, 900.0).await?;
    let (job, _) = city.post_job(request(downtown(), Trade::Plumbing)).await?;
    wait_for(&mut events, |e| offered_to(e) == Some(ContractorId(1))).await?;
    city.decline(job, ContractorId(1)).await?;
    wait_for(&mut events, |e| offered_to(e) == Some(ContractorId(2))).await?;
    city.accept(job, ContractorId(2)).await?;

    let snapshot: Vec<Recorded> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            (key.name().to_owned(), labels, value)
        })
        .collect();
    let counter = |outcome| value(&snapshot, "dispatch_offers_total", Some(("outcome", outcome)));
    assert_eq!(counter("sent"), Some(&DebugValue::Counter(2)));
    assert_eq!(counter("declined"), Some(&DebugValue::Counter(1)));
    assert_eq!(counter("accepted"), Some(&DebugValue::Counter(1)));
    assert!(matches!(value(&snapshot, "dispatch_match_latency_seconds", None), Some(DebugValue::Histogram(v)) if v.len() == 1));
    assert!(matches!(value(&snapshot, "dispatch_actors_alive", Some(("kind", "contractor"))), Some(DebugValue::Gauge(g)) if g.0 == 2.0));
    assert!(matches!(value(&snapshot, "dispatch_actors_alive", Some(("kind", "job"))), Some(DebugValue::Gauge(g)) if g.0 == 1.0));
    assert!(matches!(value(&snapshot, "dispatch_message_seconds", Some(("kind", "job"))), Some(DebugValue::Histogram(v)) if !v.is_empty()));
    Ok(())
}
