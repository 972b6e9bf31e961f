use super::*;

fn candidate(id: u64) -> Candidate {
    Candidate {
        id: ContractorId(id),
        distance_m: 3_000.0,
        status: StatusKind::Available,
        rating: Rating::new(4.5, 40).unwrap(),
        years_experience: 5,
        hourly_rate: Money(8_000),
        shift_remaining_secs: Some(4 * 3600),
    }
}

const JOB: JobContext = JobContext { needed_secs: 2 * 3600, reference_hourly_rate: Money(8_000) };

#[test]
fn weights_are_normalised_and_validated() {
    let w = Weights::new(3.0, 2.5, 2.0, 1.5, 1.0).unwrap();
    let d = Weights::default();
    for (a, b) in [(w.proximity, d.proximity), (w.rating, d.rating), (w.price, d.price)] {
        assert!((a - b).abs() < 1e-12);
    }
    assert!(Weights::new(-1.0, 1.0, 1.0, 1.0, 1.0).is_err());
    assert!(Weights::new(f64::NAN, 1.0, 1.0, 1.0, 1.0).is_err());
    assert!(Weights::new(0.0, 0.0, 0.0, 0.0, 0.0).is_err());
    let only_price = Weights::new(0.0, 0.0, 0.0, 0.0, 7.0).unwrap();
    assert_eq!(only_price.price, 1.0);
}

#[test]
fn each_factor_follows_its_documented_formula() {
    let config = ScoringConfig::default();
    let f = factors(&config, &JOB, &candidate(1));
    assert!((f.proximity - 0.8).abs() < 1e-12, "1 - 3/15");
    assert!((f.rating - (4.5 * 40.0 + 4.0 * 5.0) / 45.0 / 5.0).abs() < 1e-6);
    assert_eq!(f.availability, 1.0, "4 h left covers a 2 h job");
    assert!((f.experience - 0.5).abs() < 1e-12, "5 years is the half point");
    assert!((f.price - 0.5).abs() < 1e-12, "market rate");

    let far = Candidate { distance_m: 20_000.0, ..candidate(1) };
    assert_eq!(factors(&config, &JOB, &far).proximity, 0.0);
    let half_shift = Candidate { shift_remaining_secs: Some(3600), ..candidate(1) };
    assert_eq!(factors(&config, &JOB, &half_shift).availability, 0.5);
    let off_shift = Candidate { shift_remaining_secs: None, ..candidate(1) };
    assert_eq!(factors(&config, &JOB, &off_shift).availability, 0.0);
    let busy = Candidate { status: StatusKind::OnSite, ..candidate(1) };
    assert_eq!(factors(&config, &JOB, &busy).availability, 0.0);
    let cheap = Candidate { hourly_rate: Money(3_000), ..candidate(1) };
    assert_eq!(factors(&config, &JOB, &cheap).price, 1.0);
    let dear = Candidate { hourly_rate: Money(20_000), ..candidate(1) };
    assert_eq!(factors(&config, &JOB, &dear).price, 0.0);
    let novice = Candidate { years_experience: 0, rating: Rating::unrated(), ..candidate(1) };
    let f = factors(&config, &JOB, &novice);
    assert_eq!(f.experience, 0.0);
    assert!((f.rating - 0.8).abs() < 1e-12, "no reviews: the prior, 4/5");
}

#[test]
fn score_is_the_weighted_sum() {
    let config = ScoringConfig::default();
    let s = score(&config, &JOB, &candidate(1));
    let f = s.factors;
    let want = 0.30 * f.proximity + 0.25 * f.rating + 0.20 * f.availability + 0.15 * f.experience + 0.10 * f.price;
    assert!((s.score - want).abs() < 1e-12);
    assert!((0.0..=1.0).contains(&s.score));
}

#[test]
fn ranking_prefers_better_then_nearer_then_lower_id() {
    let config = ScoringConfig::default();
    let nearer = Candidate { distance_m: 1_000.0, ..candidate(5) };
    // Same score as `nearer` is impossible with a different distance, so build
    // exact ties by copying candidates and changing only the id.
    let twin_a = candidate(9);
    let twin_b = candidate(3);
    let ranked = rank(&config, &JOB, &[twin_a, nearer, twin_b]);
    assert_eq!(ranked.iter().map(|s| s.id.0).collect::<Vec<_>>(), vec![5, 3, 9]);
    // Ties on score fall to distance before id: weight only the rating so the
    // score ignores distance.
    let config = ScoringConfig { weights: Weights::new(0.0, 1.0, 0.0, 0.0, 0.0).unwrap(), ..config };
    let far_low_id = Candidate { distance_m: 9_000.0, ..candidate(1) };
    let near_high_id = Candidate { distance_m: 2_000.0, ..candidate(2) };
    let ranked = rank(&config, &JOB, &[far_low_id, near_high_id]);
    assert_eq!(ranked.iter().map(|s| s.id.0).collect::<Vec<_>>(), vec![2, 1]);
}
