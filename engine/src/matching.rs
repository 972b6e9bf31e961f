//! Batched matching: given the open jobs and the candidate contractors of a
//! dispatch window, the one-to-one assignment with the least total ETA.
//!
//! Solved exactly with the Hungarian algorithm (`pathfinding`'s
//! Kuhn–Munkres). Greedy nearest-first ([`assign_greedy`], kept as the
//! reference) can be much worse: with ETAs J1→C1 2 min, J1→C2 4, J2→C1 4,
//! J2→C2 9, greedy takes J1–C1 then J2–C2 for 11 min; the batch takes J1–C2
//! and J2–C1 for 8.
//!
//! Pairs the caller marks infeasible (`None`: wrong trade, out of range,
//! excluded) are never assigned. The solver first maximises how many jobs
//! get a contractor, then minimises the total ETA among those assignments.

use pathfinding::kuhn_munkres::kuhn_munkres_min;
use pathfinding::matrix::Matrix;

/// One job given to one contractor, by their positions in the input slices.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Assignment {
    /// Index into the jobs.
    pub job: usize,
    /// Index into the contractors.
    pub contractor: usize,
    /// The pair's ETA, seconds.
    pub eta_secs: f64,
}

/// ETAs are compared in whole milliseconds.
fn cost_ms(eta_secs: f64) -> i64 {
    (eta_secs * 1000.0).round() as i64
}

/// The assignment of `jobs` jobs to `contractors` contractors with the most
/// pairs and, among those, the least total ETA. `eta(j, c)` gives the ETA in
/// seconds of contractor `c` to job `j`, or `None` when the pair is infeasible.
/// Results are sorted by job index.
#[must_use]
pub fn assign_min_total_eta(jobs: usize, contractors: usize, eta: impl Fn(usize, usize) -> Option<f64>) -> Vec<Assignment> {
    if jobs == 0 || contractors == 0 {
        return Vec::new();
    }
    let etas: Vec<Option<f64>> = (0..jobs)
        .flat_map(|j| (0..contractors).map(move |c| (j, c)))
        .map(|(j, c)| eta(j, c).filter(|e| e.is_finite() && *e >= 0.0))
        .collect();
    // An infeasible pair costs more than every feasible pair together, so the
    // solver never trades a real assignment for a shorter total.
    let feasible_total: i64 = etas.iter().flatten().map(|&e| cost_ms(e)).fold(0, i64::saturating_add);
    let infeasible = feasible_total.saturating_add(1);
    let cost = |j: usize, c: usize| etas[j * contractors + c].map_or(infeasible, cost_ms);
    // Kuhn–Munkres wants no more rows than columns: put the shorter side in the rows.
    let pairs: Vec<(usize, usize)> = if jobs <= contractors {
        let m = Matrix::from_fn(jobs, contractors, |(j, c)| cost(j, c));
        let (_, columns) = kuhn_munkres_min(&m);
        columns.into_iter().enumerate().collect()
    } else {
        let m = Matrix::from_fn(contractors, jobs, |(c, j)| cost(j, c));
        let (_, columns) = kuhn_munkres_min(&m);
        columns.into_iter().enumerate().map(|(c, j)| (j, c)).collect()
    };
    let mut out: Vec<Assignment> = pairs
        .into_iter()
        .filter_map(|(job, contractor)| etas[job * contractors + contractor].map(|eta_secs| Assignment { job, contractor, eta_secs }))
        .collect();
    out.sort_by_key(|a| a.job);
    out
}

/// Greedy nearest-first: repeatedly take the feasible pair with the smallest
/// ETA (ties by job, then contractor index). The reference the batch beats.
#[must_use]
pub fn assign_greedy(jobs: usize, contractors: usize, eta: impl Fn(usize, usize) -> Option<f64>) -> Vec<Assignment> {
    let mut pairs: Vec<Assignment> = (0..jobs)
        .flat_map(|j| (0..contractors).map(move |c| (j, c)))
        .filter_map(|(job, contractor)| {
            eta(job, contractor).filter(|e| e.is_finite() && *e >= 0.0).map(|eta_secs| Assignment { job, contractor, eta_secs })
        })
        .collect();
    pairs.sort_by(|a, b| a.eta_secs.total_cmp(&b.eta_secs).then(a.job.cmp(&b.job)).then(a.contractor.cmp(&b.contractor)));
    let (mut job_taken, mut contractor_taken) = (vec![false; jobs], vec![false; contractors]);
    let mut out: Vec<Assignment> = pairs
        .into_iter()
        .filter(|a| {
            let free = !job_taken[a.job] && !contractor_taken[a.contractor];
            if free {
                job_taken[a.job] = true;
                contractor_taken[a.contractor] = true;
            }
            free
        })
        .collect();
    out.sort_by_key(|a| a.job);
    out
}

/// The summed ETA of an assignment, seconds.
#[must_use]
pub fn total_eta_secs(assignments: &[Assignment]) -> f64 {
    assignments.iter().map(|a| a.eta_secs).sum()
}

#[cfg(test)]
#[path = "matching_tests.rs"]
mod tests;
