//! The synthetic city the actor benchmarks share.
#![allow(dead_code, clippy::expect_used, reason = "shared by the benchmarks, each using part of it; a bad constant is a failed run")]

use dispatch_actors::engine::{ContractorId, ContractorProfile, GeoPoint, Money, Rating, Trade, TradeExperience};

/// Contractor `i`: one of ten trades, ratings and rates spread by id.
pub(crate) fn profile(i: u64) -> ContractorProfile {
    ContractorProfile {
        id: ContractorId(i),
        name: format!("contractor {i}"),
        trades: vec![TradeExperience { trade: Trade::ALL[(i % 10) as usize], years: (i % 20) as u8 }],
        rating: Rating::new(3.5 + (i % 3) as f64 * 0.5, 10).expect("a rating in range"),
        hourly_rate: Money(7_000 + i % 5_000),
        service_radius_m: 25_000.0,
        shifts: vec![],
        utc_offset_minutes: -360,
    }
}

/// Contractor `i`'s start, spread over a square of `side_m` metres around Des Moines.
pub(crate) fn start_point(i: u64, side_m: u64) -> GeoPoint {
    let centre = GeoPoint::new(41.5868, -93.6250).expect("a valid centre");
    let half = side_m as f64 / 2.0;
    let x = ((i * 7_919) % side_m) as f64 - half;
    let y = ((i * 104_729) % side_m) as f64 - half;
    centre.destination(90.0, x).destination(0.0, y)
}
