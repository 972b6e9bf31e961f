use h3o::{LatLng, Resolution};

use super::*;
use crate::types::TimeWindow;

fn dsm() -> CellIndex {
    LatLng::new(41.5868, -93.6250).unwrap().to_cell(Resolution::Eight)
}

#[test]
fn raw_multiplier_follows_the_formula_and_the_cap() {
    let c = SurgeConfig::default();
    assert_eq!(c.raw_multiplier(0, 0), 1.0);
    assert_eq!(c.raw_multiplier(2, 4), 1.0, "more supply than demand never discounts");
    assert_eq!(c.raw_multiplier(6, 2), 2.0, "ratio 3: 1 + 0.5 × 2");
    assert_eq!(c.raw_multiplier(3, 0), 2.0, "no supply counts as one");
    assert_eq!(c.raw_multiplier(100, 1), 3.0, "capped");
}

#[test]
fn surge_counts_the_first_ring_and_not_beyond() {
    let mut book = SurgeBook::new(SurgeConfig { smoothing_secs: 0.0, ..SurgeConfig::default() }).unwrap();
    let centre = dsm();
    let neighbour = centre.grid_ring_fast(1).next().flatten().unwrap();
    let far = centre.grid_ring_fast(3).next().flatten().unwrap();
    book.set_load(neighbour, CellLoad { demand: 6, supply: 0 });
    book.set_load(centre, CellLoad { demand: 0, supply: 2 });
    book.update(Timestamp(0));
    // The centre sees 6 jobs over 2 contractors: ratio 3 → 2.0.
    assert_eq!(book.multiplier(centre), 2.0);
    // The neighbour's ring includes the centre too.
    assert_eq!(book.multiplier(neighbour), 2.0);
    // Three rings out nothing is felt.
    assert_eq!(book.multiplier(far), 1.0);
}

#[test]
fn surge_is_smoothed_over_time_and_decays() {
    let mut book = SurgeBook::new(SurgeConfig { smoothing_secs: 60.0, ..SurgeConfig::default() }).unwrap();
    let cell = dsm();
    book.update(Timestamp(0));
    book.set_load(cell, CellLoad { demand: 5, supply: 1 }); // ratio 5: raw 1 + 0.5 × 4 = 3.0, the cap
    book.update(Timestamp(60_000));
    let after_tau = book.multiplier(cell);
    let want = 1.0 + 2.0 * (1.0 - (-1.0f64).exp());
    assert!((after_tau - want).abs() < 1e-9, "{after_tau} vs {want}");
    book.update(Timestamp(600_000));
    assert!(book.multiplier(cell) > 2.99);
    // Demand clears: the multiplier falls back toward 1 and the cell is dropped.
    book.set_load(cell, CellLoad::default());
    book.update(Timestamp(660_000));
    let falling = book.multiplier(cell);
    assert!(falling > 1.0 && falling < 2.0, "{falling}");
    book.update(Timestamp(10_000_000));
    assert_eq!(book.multiplier(cell), 1.0);
    assert_eq!(book.surges().count(), 0);
}

#[test]
fn quotes_multiply_base_surge_and_urgency() {
    let p = PricingConfig::default();
    p.validate().unwrap();
    let q = p.quote(Trade::Plumbing, &Urgency::Emergency, 1.25);
    assert_eq!(q.base, Money(12_000));
    assert_eq!(q.total, Money(22_500), "120.00 × 1.25 × 1.5");
    let window = TimeWindow::new(Timestamp(0), Timestamp(3_600_000)).unwrap();
    assert_eq!(p.quote(Trade::Cleaning, &Urgency::Scheduled(window), 1.0).total, Money(7_000));
    assert_eq!(p.quote(Trade::Cleaning, &Urgency::Today, f64::NAN).total, Money(8_400));
}

#[test]
fn bad_configuration_is_refused() {
    assert!(SurgeBook::new(SurgeConfig { cap: 0.5, ..SurgeConfig::default() }).is_err());
    assert!(SurgeBook::new(SurgeConfig { sensitivity: f64::NAN, ..SurgeConfig::default() }).is_err());
    assert!(SurgeBook::new(SurgeConfig { smoothing_secs: -1.0, ..SurgeConfig::default() }).is_err());
    let mut p = PricingConfig::default();
    p.base_prices.remove(&Trade::Roofing);
    assert!(matches!(p.validate(), Err(Error::InvalidConfig(m)) if m.contains("roofing")));
    assert!(PricingConfig { today: 0.0, ..PricingConfig::default() }.validate().is_err());
}
