//! What a run measures: counters, latency histograms (`hdrhistogram`, in
//! microseconds) with a per-second timeline for the plot, and errors by kind.
//!
//! Latencies are recorded from when a request was *due* (its slot in the
//! open-loop schedule), not from when it was sent: a server that stalls
//! cannot hide the wait of the requests queued behind the stall (no
//! coordinated omission). Samples taken during the warm-up are dropped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency tracked, µs (a minute); longer ones are clamped to it.
const MAX_US: u64 = 60_000_000;

fn histogram() -> Histogram<u64> {
    // Three significant figures from 1 µs to a minute: a fixed, small footprint.
    Histogram::new_with_bounds(1, MAX_US, 3).unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!("3 sigfig is valid")))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A latency series: the whole-run histogram and one per second.
pub struct Series {
    recorder: Arc<Clock>,
    inner: Mutex<SeriesInner>,
}

struct SeriesInner {
    all: Histogram<u64>,
    per_second: Vec<Histogram<u64>>,
}

/// When the load started (set once setup is done) and how long the warm-up lasts.
struct Clock {
    started: std::sync::OnceLock<Instant>,
    warmup: Duration,
}

impl Clock {
    /// Time measured so far: `None` before the load or during the warm-up.
    fn measured(&self) -> Option<Duration> {
        self.started.get()?.elapsed().checked_sub(self.warmup)
    }
}

impl Series {
    /// Records one latency measured from `due` to now.
    pub fn since(&self, due: Instant) {
        self.record(due.elapsed());
    }

    /// Records one latency, unless still warming up.
    pub fn record(&self, latency: Duration) {
        let Some(measured) = self.recorder.measured() else { return };
        let us = u64::try_from(latency.as_micros()).unwrap_or(MAX_US).clamp(1, MAX_US);
        let second = measured.as_secs() as usize;
        let mut inner = lock(&self.inner);
        // Within bounds by the clamp above: recording cannot fail.
        let _ = inner.all.record(us);
        while inner.per_second.len() <= second {
            inner.per_second.push(histogram());
        }
        let _ = inner.per_second[second].record(us);
    }
}

/// All a run's figures.
pub struct Recorder {
    clock: Arc<Clock>,
    series: Mutex<BTreeMap<&'static str, Arc<Series>>>,
    counters: Mutex<BTreeMap<&'static str, Arc<AtomicU64>>>,
    /// Counter values when measuring started.
    at_warmup: Mutex<Option<BTreeMap<&'static str, u64>>>,
    errors: Mutex<BTreeMap<String, u64>>,
}

impl Recorder {
    /// A recorder whose measuring starts `warmup` after [`Recorder::start`].
    #[must_use]
    pub fn new(warmup: Duration) -> Arc<Self> {
        Arc::new(Self {
            clock: Arc::new(Clock { started: std::sync::OnceLock::new(), warmup }),
            series: Mutex::default(),
            counters: Mutex::default(),
            at_warmup: Mutex::default(),
            errors: Mutex::default(),
        })
    }

    /// The latency series `name` (created on first use).
    pub fn series(&self, name: &'static str) -> Arc<Series> {
        let clock = Arc::clone(&self.clock);
        Arc::clone(lock(&self.series).entry(name).or_insert_with(|| {
            Arc::new(Series { recorder: clock, inner: Mutex::new(SeriesInner { all: histogram(), per_second: Vec::new() }) })
        }))
    }

    /// The counter `name` (created on first use).
    pub fn counter(&self, name: &'static str) -> Arc<AtomicU64> {
        Arc::clone(lock(&self.counters).entry(name).or_default())
    }

    /// Counts one error of `kind` (always, warm-up included: errors are never hidden).
    pub fn error(&self, kind: impl Into<String>) {
        *lock(&self.errors).entry(kind.into()).or_default() += 1;
    }

    /// Errors so far.
    pub fn error_count(&self) -> u64 {
        lock(&self.errors).values().sum()
    }

    /// The load starts now (setup is done): the warm-up runs from here. Only the first call counts.
    pub fn start(&self) {
        let _ = self.clock.started.set(Instant::now());
    }

    /// Whether the warm-up is over.
    pub fn measuring(&self) -> bool {
        self.clock.measured().is_some()
    }

    /// Notes the counters as measuring starts (call once, at the end of the warm-up).
    pub fn mark_warmup_done(&self) {
        let snapshot = lock(&self.counters).iter().map(|(k, v)| (*k, v.load(Ordering::Relaxed))).collect();
        *lock(&self.at_warmup) = Some(snapshot);
    }

    /// Counter values now.
    pub fn counters_now(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.counters).iter().map(|(k, v)| (*k, v.load(Ordering::Relaxed))).collect()
    }

    /// The figures, with rates over `measured` (the time since the warm-up ended).
    pub fn summary(&self, measured: Duration) -> Summary {
        let secs = measured.as_secs_f64().max(1e-9);
        let base = lock(&self.at_warmup).clone().unwrap_or_default();
        let counters = self
            .counters_now()
            .into_iter()
            .map(|(name, total)| {
                let in_window = total.saturating_sub(base.get(name).copied().unwrap_or(0));
                (name.to_owned(), CounterSummary { total, measured: in_window, per_sec: in_window as f64 / secs })
            })
            .collect();
        let latencies = lock(&self.series)
            .iter()
            .map(|(name, series)| {
                let inner = lock(&series.inner);
                let timeline = inner
                    .per_second
                    .iter()
                    .enumerate()
                    .map(|(second, h)| TimelinePoint {
                        second: second as u64,
                        count: h.len(),
                        p50_ms: ms(h.value_at_quantile(0.5)),
                        p99_ms: ms(h.value_at_quantile(0.99)),
                    })
                    .collect();
                ((*name).to_owned(), LatencySummary::of(&inner.all, timeline))
            })
            .collect();
        Summary { measured_secs: secs, counters, latencies, errors: lock(&self.errors).clone() }
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

/// A counter's figures.
#[derive(Debug, Clone, Serialize)]
pub struct CounterSummary {
    /// Since the start.
    pub total: u64,
    /// Since the warm-up ended.
    pub measured: u64,
    /// `measured` per second.
    pub per_sec: f64,
}

/// A latency series' figures, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct LatencySummary {
    /// Samples.
    pub count: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Per second: samples, median and p99.
    pub timeline: Vec<TimelinePoint>,
}

impl LatencySummary {
    fn of(h: &Histogram<u64>, timeline: Vec<TimelinePoint>) -> Self {
        Self {
            count: h.len(),
            mean_ms: h.mean() / 1_000.0,
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            timeline,
        }
    }
}

/// One second of a series.
#[derive(Debug, Clone, Serialize)]
pub struct TimelinePoint {
    /// Seconds after the warm-up.
    pub second: u64,
    /// Samples.
    pub count: u64,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
}

/// A run's figures.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Seconds measured.
    pub measured_secs: f64,
    /// Counters by name.
    pub counters: BTreeMap<String, CounterSummary>,
    /// Latencies by name.
    pub latencies: BTreeMap<String, LatencySummary>,
    /// Errors by kind.
    pub errors: BTreeMap<String, u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_samples_are_dropped_and_percentiles_come_from_the_rest() {
        let recorder = Recorder::new(Duration::from_millis(30));
        let series = recorder.series("rtt");
        series.record(Duration::from_secs(4)); // before the start: dropped
        recorder.start();
        series.record(Duration::from_secs(5)); // during warm-up: dropped
        std::thread::sleep(Duration::from_millis(40));
        recorder.mark_warmup_done();
        for ms in 1..=100u64 {
            series.record(Duration::from_millis(ms));
        }
        let s = recorder.summary(Duration::from_secs(1));
        let rtt = &s.latencies["rtt"];
        assert_eq!(rtt.count, 100);
        assert!((rtt.p50_ms - 50.0).abs() < 0.1, "{}", rtt.p50_ms);
        assert!((rtt.p99_ms - 99.0).abs() < 0.1, "{}", rtt.p99_ms);
        assert!((rtt.max_ms - 100.0).abs() < 0.1);
        assert_eq!(rtt.timeline.iter().map(|p| p.count).sum::<u64>(), 100);
    }

    #[test]
    fn counter_rates_count_only_after_the_warmup_and_errors_always() {
        let recorder = Recorder::new(Duration::ZERO);
        recorder.start();
        let sent = recorder.counter("sent");
        sent.fetch_add(40, Ordering::Relaxed);
        recorder.error("early");
        recorder.mark_warmup_done();
        sent.fetch_add(100, Ordering::Relaxed);
        recorder.error("late");
        let s = recorder.summary(Duration::from_secs(2));
        assert_eq!(s.counters["sent"].total, 140);
        assert_eq!(s.counters["sent"].measured, 100);
        assert!((s.counters["sent"].per_sec - 50.0).abs() < 1e-9);
        assert_eq!(recorder.error_count(), 2);
    }
}
