use proptest::prelude::*;

use super::*;

fn matrix<'a>(rows: &'a [&'a [Option<f64>]]) -> impl Fn(usize, usize) -> Option<f64> + 'a {
    move |j, c| rows[j][c]
}

#[test]
fn batch_beats_greedy_on_the_textbook_case() {
    // Minutes, as in the module docs.
    let etas: &[&[Option<f64>]] = &[&[Some(2.0), Some(4.0)], &[Some(4.0), Some(9.0)]];
    let greedy = assign_greedy(2, 2, matrix(etas));
    let batch = assign_min_total_eta(2, 2, matrix(etas));
    assert_eq!(total_eta_secs(&greedy), 11.0);
    assert_eq!(total_eta_secs(&batch), 8.0);
    assert_eq!(batch.iter().map(|a| (a.job, a.contractor)).collect::<Vec<_>>(), vec![(0, 1), (1, 0)]);
}

#[test]
fn infeasible_pairs_are_never_assigned_and_coverage_comes_first() {
    // Job 1 can only be done by contractor 0; the cheapest total would give
    // contractor 0 to job 0 and leave job 1 alone.
    let etas: &[&[Option<f64>]] = &[&[Some(1.0), Some(100.0)], &[Some(50.0), None]];
    let batch = assign_min_total_eta(2, 2, matrix(etas));
    assert_eq!(batch.iter().map(|a| (a.job, a.contractor)).collect::<Vec<_>>(), vec![(0, 1), (1, 0)]);
    // Nobody can do job 0.
    let etas: &[&[Option<f64>]] = &[&[None, None], &[Some(3.0), Some(2.0)]];
    let batch = assign_min_total_eta(2, 2, matrix(etas));
    assert_eq!(batch.iter().map(|a| (a.job, a.contractor)).collect::<Vec<_>>(), vec![(1, 1)]);
    // NaN and negative ETAs count as infeasible, not as bargains.
    let etas: &[&[Option<f64>]] = &[&[Some(f64::NAN), Some(-1.0), Some(5.0)]];
    assert_eq!(assign_min_total_eta(1, 3, matrix(etas)).iter().map(|a| a.contractor).collect::<Vec<_>>(), vec![2]);
    assert!(assign_min_total_eta(0, 3, |_, _| Some(1.0)).is_empty());
    assert!(assign_min_total_eta(3, 0, |_, _| Some(1.0)).is_empty());
}

/// Every way to give each job a distinct contractor or nobody: the most pairs,
/// then the least total. The reference for the property test.
fn brute_force(jobs: usize, contractors: usize, eta: &dyn Fn(usize, usize) -> Option<f64>) -> (usize, i64) {
    fn go(j: usize, jobs: usize, used: &mut Vec<bool>, eta: &dyn Fn(usize, usize) -> Option<f64>) -> (usize, i64) {
        if j == jobs {
            return (0, 0);
        }
        let mut best = go(j + 1, jobs, used, eta); // job j unassigned
        for c in 0..used.len() {
            if let Some(e) = eta(j, c).filter(|_| !used[c]) {
                used[c] = true;
                let (n, t) = go(j + 1, jobs, used, eta);
                used[c] = false;
                let cand = (n + 1, t + cost_ms(e));
                if cand.0 > best.0 || (cand.0 == best.0 && cand.1 < best.1) {
                    best = cand;
                }
            }
        }
        best
    }
    go(0, jobs, &mut vec![false; contractors], eta)
}

proptest! {
    #[test]
    fn batch_is_optimal_and_never_worse_than_greedy(
        jobs in 1usize..6,
        contractors in 1usize..6,
        cells in prop::collection::vec(prop::option::weighted(0.8, 0.0f64..3600.0), 36),
    ) {
        let eta = |j: usize, c: usize| cells[j * 6 + c];
        let batch = assign_min_total_eta(jobs, contractors, eta);
        let greedy = assign_greedy(jobs, contractors, eta);
        // A valid matching: each job and contractor at most once, feasible pairs only.
        let mut seen_c = vec![false; contractors];
        for a in &batch {
            prop_assert!(!seen_c[a.contractor]);
            seen_c[a.contractor] = true;
            prop_assert_eq!(Some(a.eta_secs), eta(a.job, a.contractor));
        }
        let (want_pairs, want_total) = brute_force(jobs, contractors, &eta);
        prop_assert_eq!(batch.len(), want_pairs);
        prop_assert_eq!(batch.iter().map(|a| cost_ms(a.eta_secs)).sum::<i64>(), want_total);
        if greedy.len() == batch.len() {
            prop_assert!(total_eta_secs(&batch) <= total_eta_secs(&greedy) + 1e-6);
        }
    }
}
