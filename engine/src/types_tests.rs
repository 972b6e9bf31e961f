use super::*;

#[test]
fn trade_set_holds_what_was_put_in() {
    let set: TradeSet = [Trade::Plumbing, Trade::Locksmith].into_iter().collect();
    assert!(set.contains(Trade::Plumbing));
    assert!(set.contains(Trade::Locksmith));
    assert!(!set.contains(Trade::Hvac));
    assert!(set.contains_all(TradeSet::single(Trade::Locksmith)));
    assert!(!set.contains_all(TradeSet::single(Trade::Hvac).with(Trade::Plumbing)));
    assert!(set.contains_all(TradeSet::EMPTY));
    // Every trade has its own bit.
    let all: TradeSet = Trade::ALL.into_iter().collect();
    assert_eq!(all.0.count_ones(), 10);
}

#[test]
fn rating_refuses_out_of_range_and_folds_reviews() {
    assert!(matches!(Rating::new(5.1, 1), Err(Error::InvalidRating(_))));
    assert!(matches!(Rating::new(-0.1, 1), Err(Error::InvalidRating(_))));
    assert!(matches!(Rating::new(f64::NAN, 1), Err(Error::InvalidRating(_))));
    // Reviews are folded in by the tally (one implementation of the average).
    let mut tally = RatingTally::from_rating(Rating::new(4.0, 3).unwrap());
    tally.add(JobId(1), 2.0).unwrap();
    let r = tally.rating();
    assert_eq!(r.reviews(), 4);
    assert!((r.average() - 3.5).abs() < 1e-6);
    assert!(RatingTally::default().add(JobId(1), 6.0).is_err());
}

#[test]
fn a_tally_counts_each_jobs_review_once() {
    let mut tally = RatingTally::from_rating(Rating::new(4.0, 2).unwrap());
    assert!(tally.add(JobId(1), 5.0).unwrap());
    assert!(!tally.add(JobId(1), 1.0).unwrap(), "the same job again");
    assert_eq!((tally.count(), tally.stars_sum()), (3, 13.0));
    assert!((tally.rating().average() - 13.0 / 3.0).abs() < 1e-6);
    assert!(tally.add(JobId(2), 5.5).is_err());
    assert!(tally.add(JobId(2), f64::NAN).is_err());
    assert_eq!(tally.count(), 3, "refused reviews change nothing");
    // Only the most recent jobs are remembered.
    for job in 10..10 + RatingTally::RECENT_JOBS as u64 {
        assert!(tally.add(JobId(job), 3.0).unwrap());
    }
    assert!(tally.add(JobId(1), 3.0).unwrap(), "job 1 fell out of the window");
    assert!(!tally.add(JobId(10 + RatingTally::RECENT_JOBS as u64 - 1), 3.0).unwrap());
    assert_eq!(RatingTally::default().rating(), Rating::unrated());
}

#[test]
fn windows_refuse_empty_spans() {
    assert!(TimeWindow::new(Timestamp(10), Timestamp(10)).is_err());
    assert!(TimeWindow::new(Timestamp(10), Timestamp(11)).is_ok());
    assert!(ShiftWindow::new(7, 0, 60).is_err());
    assert!(ShiftWindow::new(0, 60, 60).is_err());
    assert!(ShiftWindow::new(0, 0, 1441).is_err());
    assert!(ShiftWindow::new(6, 0, 1440).is_ok());
}

fn profile(shifts: Vec<ShiftWindow>, utc_offset_minutes: i16) -> ContractorProfile {
    ContractorProfile {
        id: ContractorId(1),
        name: "Ada".into(),
        trades: vec![TradeExperience { trade: Trade::Hvac, years: 7 }],
        rating: Rating::unrated(),
        hourly_rate: Money(9000),
        service_radius_m: 20_000.0,
        shifts,
        utc_offset_minutes,
    }
}

#[test]
fn shift_remaining_reads_the_local_weekday_and_minute() {
    // 2026-11-23 is a Monday. 14:30:00 UTC that day:
    let monday_1430_utc = Timestamp(1_795_392_000_000 + (14 * 60 + 30) * 60_000);
    let p = profile(vec![ShiftWindow::new(0, 8 * 60, 17 * 60).unwrap()], 0);
    assert_eq!(p.shift_remaining_secs(monday_1430_utc), Some(150 * 60));
    // Six hours behind UTC it is 08:30 local: 8.5 hours left.
    let p = profile(vec![ShiftWindow::new(0, 8 * 60, 17 * 60).unwrap()], -360);
    assert_eq!(p.shift_remaining_secs(monday_1430_utc), Some(510 * 60));
    // A Tuesday-only shift does not cover Monday.
    let p = profile(vec![ShiftWindow::new(1, 0, 1440).unwrap()], 0);
    assert_eq!(p.shift_remaining_secs(monday_1430_utc), None);
    // No shifts: always on.
    assert_eq!(profile(vec![], 0).shift_remaining_secs(monday_1430_utc), Some(u32::MAX));
}

#[test]
fn profile_validation_catches_bad_radius() {
    let mut p = profile(vec![], 0);
    assert!(p.validate().is_ok());
    p.service_radius_m = f64::NAN;
    assert!(p.validate().is_err());
    p.service_radius_m = -1.0;
    assert!(p.validate().is_err());
    assert_eq!(p.years_in(Trade::Hvac), Some(7));
    assert_eq!(p.years_in(Trade::Roofing), None);
    assert_eq!(p.trade_set(), TradeSet::single(Trade::Hvac));
}

#[test]
fn a_window_is_covered_only_by_a_shift_that_spans_it() {
    let monday_0900_utc = Timestamp(1_795_392_000_000 + 9 * 3_600_000);
    let p = profile(vec![ShiftWindow::new(0, 8 * 60, 17 * 60).unwrap()], 0);
    let inside = TimeWindow::new(monday_0900_utc, monday_0900_utc.plus_secs(2 * 3600)).unwrap();
    assert!(p.covers(&inside));
    let past_the_end = TimeWindow::new(monday_0900_utc, monday_0900_utc.plus_secs(9 * 3600)).unwrap();
    assert!(!p.covers(&past_the_end));
    let before_the_start = TimeWindow::new(monday_0900_utc.plus_secs(-2 * 3600), monday_0900_utc).unwrap();
    assert!(!p.covers(&before_the_start));
    assert!(profile(vec![], 0).covers(&past_the_end));
}

#[test]
fn timestamps_add_and_subtract_durations_without_overflowing() {
    let t = Timestamp(10_000);
    assert_eq!(t.plus(std::time::Duration::from_millis(2_500)), Timestamp(12_500));
    assert_eq!(t.minus(std::time::Duration::from_secs(3)), Timestamp(7_000));
    assert_eq!(Timestamp(i64::MAX - 1).plus(std::time::Duration::from_secs(10)), Timestamp(i64::MAX));
    assert_eq!(Timestamp(i64::MIN + 1).minus(std::time::Duration::MAX), Timestamp(i64::MIN));
    assert_eq!(t.plus_secs(2).secs_since(t), 2.0);
}
