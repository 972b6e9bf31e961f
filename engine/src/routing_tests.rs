use proptest::prelude::*;

use super::*;

const T0: Timestamp = Timestamp(1_795_420_800_000); // 2026-11-23 08:00 UTC

fn origin() -> GeoPoint {
    GeoPoint::new(41.5868, -93.6250).unwrap()
}

/// 10 m/s straight-line travel: 1 km takes 100 s.
fn travel(a: GeoPoint, b: GeoPoint) -> f64 {
    a.distance_m(b) / 10.0
}

fn stop(job: u64, east_m: f64, north_m: f64, window: Option<(i64, i64)>, service_secs: u32) -> Stop {
    Stop {
        job: JobId(job),
        location: origin().destination(90.0, east_m).destination(0.0, north_m),
        window: window.map(|(a, b)| TimeWindow::new(T0.plus_secs(a), T0.plus_secs(b)).unwrap()),
        service_secs,
    }
}

fn plan(stops: &[Stop], config: &RoutingConfig) -> RoutePlan {
    plan_day(origin(), T0, stops, config, travel).unwrap()
}

#[test]
fn stops_on_a_line_are_visited_outward() {
    let stops = [stop(1, 3_000.0, 0.0, None, 0), stop(2, 1_000.0, 0.0, None, 0), stop(3, 2_000.0, 0.0, None, 0)];
    let p = plan(&stops, &RoutingConfig::default());
    assert!(p.exact);
    assert_eq!(p.order, vec![1, 2, 0]);
    assert!((p.travel_secs - 300.0).abs() < 0.1, "{}", p.travel_secs);
    assert_eq!(p.lateness_secs, 0.0);
}

#[test]
fn a_tight_window_sends_the_contractor_far_first() {
    // Near stop any time; far stop (5 km) must be reached within 10 minutes.
    let stops = [stop(1, 1_000.0, 0.0, None, 1_800), stop(2, -5_000.0, 0.0, Some((0, 600)), 1_800)];
    let p = plan(&stops, &RoutingConfig::default());
    assert_eq!(p.order, vec![1, 0]);
    // 500 s to the far stop, 600 s back past the start to the near one.
    assert!((p.travel_secs - 1_100.0).abs() < 0.5, "{}", p.travel_secs);
    assert_eq!(p.lateness_secs, 0.0);
    assert_eq!(p.arrivals[0], T0.plus_secs(500));
    // Waiting: arriving before a window opens starts the work at the opening.
    let stops = [stop(1, 1_000.0, 0.0, Some((3_600, 7_200)), 600), stop(2, 2_000.0, 0.0, None, 0)];
    let p = plan(&stops, &RoutingConfig::default());
    assert_eq!(p.order, vec![0, 1]);
    assert_eq!(p.arrivals[1], T0.plus_secs(3_600 + 600 + 100));
}

#[test]
fn lateness_is_weighed_against_travel() {
    // Two stops 2 km either side; both want an arrival within 250 s.
    let stops = [stop(1, 2_000.0, 0.0, Some((0, 250)), 0), stop(2, -2_000.0, 0.0, Some((0, 250)), 0)];
    let p = plan(&stops, &RoutingConfig::default());
    // Whichever goes second arrives at 200 + 400 = 600 s, 350 s late.
    assert!((p.travel_secs - 600.0).abs() < 0.5);
    assert!((p.lateness_secs - 350.0).abs() < 0.5);
    assert!((p.cost - 950.0).abs() < 1.0);
    assert_eq!(p.order, vec![0, 1], "equal costs: the lower index first");
}

#[test]
fn bad_input_is_refused() {
    let stops = [stop(1, 1_000.0, 0.0, None, 0)];
    let bad = RoutingConfig { lateness_weight: -1.0, ..RoutingConfig::default() };
    assert!(plan_day(origin(), T0, &stops, &bad, travel).is_err());
    assert!(plan_day(origin(), T0, &stops, &RoutingConfig::default(), |_, _| f64::NAN).is_err());
    let empty = plan(&[], &RoutingConfig::default());
    assert!(empty.order.is_empty() && empty.cost == 0.0);
}

#[test]
fn the_heuristic_recovers_known_optima_above_the_exact_limit() {
    // Twelve stops on a line in shuffled order: the optimum walks outward.
    let east = [7, 2, 11, 5, 1, 9, 12, 3, 8, 4, 10, 6];
    let stops: Vec<Stop> = east.iter().map(|&k| stop(k, k as f64 * 1_000.0, 0.0, None, 0)).collect();
    let p = plan(&stops, &RoutingConfig::default());
    assert!(!p.exact);
    let visited: Vec<u64> = p.order.iter().map(|&i| stops[i].job.0).collect();
    assert_eq!(visited, (1..=12).collect::<Vec<_>>());
    assert!((p.travel_secs - 1_200.0).abs() < 1.0);

    // Ten stops around a 3 km circle whose windows demand a zig-zag order:
    // the known optimum is that order, on time everywhere.
    let zigzag = [0usize, 5, 1, 6, 2, 7, 3, 8, 4, 9];
    let mut stops = Vec::new();
    for (slot, &k) in zigzag.iter().enumerate() {
        let p = origin().destination(k as f64 * 36.0, 3_000.0);
        let open = slot as i64 * 3_600;
        stops.push(Stop {
            job: JobId(slot as u64),
            location: p,
            window: Some(TimeWindow::new(T0.plus_secs(open), T0.plus_secs(open + 1_200)).unwrap()),
            service_secs: 1_800,
        });
    }
    // Feed them in reverse so the input order is no hint.
    stops.reverse();
    let p = plan(&stops, &RoutingConfig::default());
    assert_eq!(p.lateness_secs, 0.0);
    let visited: Vec<u64> = p.order.iter().map(|&i| stops[i].job.0).collect();
    assert_eq!(visited, (0..10).collect::<Vec<_>>());
}

/// Every order, tried: the reference for the exact solver.
fn brute_force_cost(stops: &[Stop], weight: f64) -> f64 {
    fn permute(v: &mut Vec<usize>, k: usize, f: &mut dyn FnMut(&[usize])) {
        if k == v.len() {
            f(v);
            return;
        }
        for i in k..v.len() {
            v.swap(k, i);
            permute(v, k + 1, f);
            v.swap(k, i);
        }
    }
    let mut best = f64::INFINITY;
    let mut order: Vec<usize> = (0..stops.len()).collect();
    permute(&mut order, 0, &mut |o| {
        let permuted: Vec<Stop> = o.iter().map(|&i| stops[i]).collect();
        best = best.min(fixed_order_cost(&permuted, weight));
    });
    best
}

/// The cost of visiting `stops` in the given order, computed independently of the solver.
fn fixed_order_cost(stops: &[Stop], lateness_weight: f64) -> f64 {
    let (mut at, mut clock, mut cost) = (origin(), T0.0 as f64, 0.0);
    for s in stops {
        let t = travel(at, s.location);
        let arrival = clock + t * 1000.0;
        let (begin, late) = match s.window {
            Some(w) => (arrival.max(w.start.0 as f64), ((arrival - w.end.0 as f64) / 1000.0).max(0.0)),
            None => (arrival, 0.0),
        };
        cost += t + lateness_weight * late;
        clock = begin + f64::from(s.service_secs) * 1000.0;
        at = s.location;
    }
    cost
}

fn random_stop() -> impl Strategy<Value = Stop> {
    (0u64..1000, -8_000.0f64..8_000.0, -8_000.0f64..8_000.0, prop::option::of((0i64..14_400, 300i64..7_200)), 0u32..3_600)
        .prop_map(|(job, e, n, w, service)| stop(job, e, n, w.map(|(a, len)| (a, a + len)), service))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn exact_solver_matches_every_order_tried(stops in prop::collection::vec(random_stop(), 0..7), weight in 0.0f64..5.0) {
        let config = RoutingConfig { lateness_weight: weight, ..RoutingConfig::default() };
        let p = plan(&stops, &config);
        prop_assert!(p.exact);
        let want = brute_force_cost(&stops, weight);
        prop_assert!((p.cost - want).abs() < 1e-6 * want.max(1.0), "{} vs {}", p.cost, want);
        // The reported cost is that of the reported order.
        let ordered: Vec<Stop> = p.order.iter().map(|&i| stops[i]).collect();
        prop_assert!((fixed_order_cost(&ordered, weight) - p.cost).abs() < 1e-6 * p.cost.max(1.0));
    }

    #[test]
    fn heuristic_gives_a_valid_order_never_better_than_exact(stops in prop::collection::vec(random_stop(), 1..8)) {
        let exact = plan(&stops, &RoutingConfig::default());
        let heuristic = plan(&stops, &RoutingConfig { exact_limit: 0, ..RoutingConfig::default() });
        prop_assert!(!heuristic.exact);
        let mut seen = heuristic.order.clone();
        seen.sort_unstable();
        prop_assert_eq!(seen, (0..stops.len()).collect::<Vec<_>>());
        prop_assert!(heuristic.cost + 1e-6 >= exact.cost);
    }
}
