//! The run's result: a summary table on stdout (in the manner of k6), a JSON
//! report file, and an optional PNG plot of latency over time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::config::LoadConfig;
use crate::stats::Summary;

/// Everything a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The configuration it ran with.
    pub config: LoadConfig,
    /// What the bots measured.
    pub ours: Summary,
    /// What the server counted over the measured window (per second).
    pub server: BTreeMap<String, f64>,
    /// Scenario figures (memory per connection, dataset size…).
    pub extra: BTreeMap<String, f64>,
    /// The peer's run, if one was asked for.
    pub peer: Option<PeerReport>,
    /// ours / peer, by figure.
    pub ratios: BTreeMap<String, f64>,
    /// Job → log entries the server's acknowledgements imply (`match`), for the audit.
    #[serde(skip)]
    pub acknowledged: BTreeMap<u64, u64>,
    /// The store read back after the run, when asked (`--audit`).
    pub audit: Option<crate::audit::Audit>,
}

/// The peer's part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct PeerReport {
    /// The peer and its commands.
    pub name: String,
    /// What it measured.
    pub summary: Summary,
    /// CPU cores the peer's server kept busy while measuring, when measurable.
    pub cpu_cores_busy: Option<f64>,
}

impl Report {
    /// Errors of the run (ours and the peer's).
    #[must_use]
    pub fn error_count(&self) -> u64 {
        self.ours.errors.values().sum::<u64>()
            + self.peer.as_ref().map_or(0, |p| p.summary.errors.values().sum())
            + self.audit.as_ref().map_or(0, crate::audit::Audit::failures)
    }

    /// Whether the harness's own cores were over 90 % busy while measuring
    /// (pinned to one core: over 0.9 of it), which makes the run's load untrustworthy.
    #[must_use]
    pub fn harness_saturated(&self) -> bool {
        let cores = self.config.harness_cpus.as_deref().map_or(2.0, |cpus| cpus.split(',').count() as f64);
        self.extra.get("harness_cpu_cores_busy").is_some_and(|busy| *busy > 0.9 * cores)
    }

    /// The summary table.
    #[must_use]
    pub fn table(&self) -> String {
        let mut out = String::new();
        let c = &self.config;
        let _ = writeln!(
            out,
            "\n  scenario: {} · {:.1} s measured after {:.1} s warm-up\n",
            self.scenario, self.ours.measured_secs, c.warmup_secs
        );
        section(&mut out, "ours", &self.ours);
        if !self.server.is_empty() {
            let _ = writeln!(out, "  server (from /metrics, measured window)");
            for (name, value) in &self.server {
                let _ = writeln!(out, "    {} {:>14.1}", dots(name, 34), value);
            }
            out.push('\n');
        }
        if !self.extra.is_empty() {
            let _ = writeln!(out, "  figures");
            for (name, value) in &self.extra {
                let _ = writeln!(out, "    {} {:>14.1}", dots(name, 34), value);
            }
            out.push('\n');
        }
        if self.harness_saturated() {
            let _ = writeln!(
                out,
                "  ! the harness kept {:.2} cores busy: its load was not what it claims; discard this run\n",
                self.extra["harness_cpu_cores_busy"]
            );
        }
        if let Some(audit) = &self.audit {
            let _ = writeln!(out, "  audit (the store read back after the run)");
            let _ = writeln!(out, "    {} {:>14}", dots("jobs acknowledged", 34), audit.jobs);
            let _ = writeln!(
                out,
                "    {} {:>14}",
                dots("log entries acknowledged / found", 34),
                format!("{} / {}", audit.entries_acknowledged, audit.entries_found)
            );
            let _ = writeln!(out, "    {} {:>14}", dots("drained after the run, ms", 34), audit.drained_in_ms);
            let _ = writeln!(out, "    {} {:>14}", dots("problems", 34), audit.problems.len());
            for problem in audit.problems.iter().take(10) {
                let _ = writeln!(out, "      {problem}");
            }
            out.push('\n');
        }
        if let Some(peer) = &self.peer {
            section(&mut out, &format!("peer: {}", peer.name), &peer.summary);
            if let Some(busy) = peer.cpu_cores_busy {
                let _ = writeln!(out, "    {} {:>14.2}\n", dots("cpu_cores_busy", 34), busy);
            }
        }
        if !self.ratios.is_empty() {
            let _ = writeln!(out, "  ratio ours / peer (same run)");
            for (name, value) in &self.ratios {
                let _ = writeln!(out, "    {} {:>13.2}×", dots(name, 34), value);
            }
            out.push('\n');
        }
        out
    }

    /// Writes the JSON report.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    /// Draws each latency series' per-second median and p99 into a PNG.
    pub fn write_plot(&self, path: &Path) -> Result<()> {
        use plotters::prelude::*;
        register_font()?;
        let series: Vec<(&String, &crate::stats::LatencySummary)> =
            self.ours.latencies.iter().filter(|(_, l)| !l.timeline.is_empty()).collect();
        anyhow::ensure!(!series.is_empty(), "no latency was measured: nothing to plot");
        let seconds = series.iter().map(|(_, l)| l.timeline.len()).max().unwrap_or(1) as f64;
        let top = series.iter().flat_map(|(_, l)| l.timeline.iter().map(|p| p.p99_ms)).fold(0.1_f64, f64::max) * 1.1;
        let root = BitMapBackend::new(path, (1000, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("{}: latency per second (median solid, p99 dashed)", self.scenario), ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..seconds, 0f64..top)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart.configure_mesh().x_desc("seconds after warm-up").y_desc("ms").draw().map_err(|e| anyhow::anyhow!("{e}"))?;
        for (i, (name, latency)) in series.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            let median = latency.timeline.iter().map(|p| (p.second as f64, p.p50_ms));
            chart
                .draw_series(LineSeries::new(median, colour.stroke_width(2)))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(format!("{name} p50"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
            let p99: Vec<(f64, f64)> = latency.timeline.iter().map(|p| (p.second as f64, p.p99_ms)).collect();
            chart
                .draw_series(DashedLineSeries::new(p99, 6, 4, colour.stroke_width(1)))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(format!("{name} p99"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(1)));
        }
        chart.configure_series_labels().border_style(BLACK).background_style(WHITE.mix(0.8)).draw().map_err(|e| anyhow::anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(())
    }
}

/// Registers a sans-serif TTF from the system for the plot's text (once).
fn register_font() -> Result<()> {
    static DONE: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    DONE.get_or_init(|| {
        const CANDIDATES: [&str; 4] = [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
            "/Library/Fonts/Arial.ttf",
        ];
        let bytes = CANDIDATES.iter().find_map(|p| std::fs::read(p).ok()).ok_or_else(|| {
            format!("the plot needs a TrueType font and none was found ({}); install fonts-dejavu-core", CANDIDATES.join(", "))
        })?;
        // plotters keeps fonts for the life of the process.
        let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes)
            .map_err(|_| "the font file is not a valid TTF".to_owned())
    })
    .clone()
    .map_err(anyhow::Error::msg)
}

fn dots(name: &str, width: usize) -> String {
    let mut s = format!("{name} ");
    while s.chars().count() < width {
        s.push('.');
    }
    s
}

fn section(out: &mut String, title: &str, s: &Summary) {
    let _ = writeln!(out, "  {title}");
    if !s.counters.is_empty() {
        let _ = writeln!(out, "    {:<34} {:>12} {:>12} {:>14}", "counter", "total", "measured", "rate");
        for (name, c) in &s.counters {
            let _ = writeln!(out, "    {} {:>12} {:>12} {:>12.1}/s", dots(name, 34), c.total, c.measured, c.per_sec);
        }
    }
    if !s.latencies.is_empty() {
        let _ =
            writeln!(out, "    {:<34} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}", "latency (ms)", "count", "p50", "p90", "p99", "p99.9", "max");
        for (name, l) in &s.latencies {
            let _ = writeln!(
                out,
                "    {} {:>9} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                dots(name, 34),
                l.count,
                l.p50_ms,
                l.p90_ms,
                l.p99_ms,
                l.p999_ms,
                l.max_ms
            );
        }
    }
    if s.errors.is_empty() {
        let _ = writeln!(out, "    errors: none");
    } else {
        let _ = writeln!(out, "    errors:");
        for (kind, n) in &s.errors {
            let _ = writeln!(out, "      {n:>8} × {kind}");
        }
    }
    out.push('\n');
}
