//! Handles of the metrics every frame touches, registered once and reused.
//!
//! `metrics::counter!` looks its key up in the recorder's registry on every
//! call (hashing the name and labels, cloning them for the lookup): at half a
//! million GPS frames a second that was a tenth of the server's CPU. A handle
//! is an `Arc` to the same atomic, so counting through it is one add.

use std::sync::{LazyLock, RwLock};

use metrics::{Counter, Gauge};

/// One counter per value of one label, each registered the first time its
/// value is counted.
pub(super) struct LabeledCounters {
    name: &'static str,
    label: &'static str,
    handles: RwLock<Vec<(&'static str, Counter)>>,
}

impl LabeledCounters {
    const fn new(name: &'static str, label: &'static str) -> Self {
        Self { name, label, handles: RwLock::new(Vec::new()) }
    }

    /// Adds one to the counter of `value`.
    pub(super) fn increment(&self, value: &'static str) {
        // The values are the protocol's `kind()` literals: the same pointer each time.
        let same = |v: &&'static str| std::ptr::eq(*v, value) || *v == value;
        if let Some((_, counter)) = self.handles.read().unwrap_or_else(std::sync::PoisonError::into_inner).iter().find(|(v, _)| same(v)) {
            counter.increment(1);
            return;
        }
        // First sight of `value` (another thread may have registered it meanwhile).
        let mut handles = self.handles.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = match handles.iter().position(|(v, _)| same(v)) {
            Some(at) => at,
            None => {
                handles.push((value, metrics::counter!(self.name, self.label => value)));
                handles.len() - 1
            }
        };
        handles[at].1.increment(1);
    }
}

/// Frames in, by message type.
pub(super) static MESSAGES_IN: LabeledCounters = LabeledCounters::new("dispatch_ws_messages_in_total", "type");
/// Frames out, by message type.
pub(super) static MESSAGES_OUT: LabeledCounters = LabeledCounters::new("dispatch_ws_messages_out_total", "type");
/// Fixes taken and handed to the contractor's link.
pub(super) static GPS_INGESTED: LazyLock<Counter> = LazyLock::new(|| metrics::counter!("dispatch_gps_ingested_total"));
/// Fixes over the connection's rate limit.
pub(super) static GPS_RATE_LIMITED: LazyLock<Counter> =
    LazyLock::new(|| metrics::counter!("dispatch_gps_dropped_total", "reason" => "rate_limit"));
/// Fixes shed right after their parse while the runtime lagged (see `crate::overload`).
pub(super) static GPS_SHED_OVERLOAD: LazyLock<Counter> =
    LazyLock::new(|| metrics::counter!("dispatch_gps_dropped_total", "reason" => "overload"));
/// The last outbound queue depth seen.
pub(super) static OUTBOUND_DEPTH: LazyLock<Gauge> = LazyLock::new(|| metrics::gauge!("dispatch_ws_outbound_queue_depth"));

#[cfg(test)]
mod tests {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    use super::LabeledCounters;

    /// Each label value keeps its own count, through handles registered once.
    #[test]
    fn each_label_value_counts_apart() {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let counters = LabeledCounters::new("frames_total", "type");
        metrics::with_local_recorder(&recorder, || {
            for _ in 0..3 {
                counters.increment("gps");
            }
            counters.increment("ping");
        });
        let mut seen: Vec<(String, u64)> = snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter_map(|(key, _, _, value)| match value {
                DebugValue::Counter(n) => Some((key.key().labels().map(|l| l.value().to_owned()).collect::<String>(), n)),
                _ => None,
            })
            .collect();
        seen.sort();
        assert_eq!(seen, vec![("gps".to_owned(), 3), ("ping".to_owned(), 1)]);
        assert_eq!(counters.handles.read().unwrap().len(), 2);
    }
}
