//! A synthetic city shared by the benchmarks: contractors spread over a
//! 60 km × 60 km box around Des Moines with 1–3 random trades each.
#![allow(dead_code, reason = "each bench uses part of this module")]
#![allow(missing_docs, unreachable_pub, clippy::unwrap_used, reason = "benchmark helpers shared by several bench binaries")]

use dispatch_engine::spatial::IndexedContractor;
use dispatch_engine::{ContractorId, GeoPoint, SpatialIndex, StatusKind, Trade, TradeSet};

pub const CENTRE: (f64, f64) = (41.5868, -93.6250);
pub const HALF_SPAN_M: f64 = 30_000.0;

/// SplitMix64: a tiny deterministic generator so runs are repeatable.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// A point uniformly in the city box.
pub fn city_point(rng: &mut Rng) -> GeoPoint {
    let c = GeoPoint::new(CENTRE.0, CENTRE.1).unwrap();
    let east = (rng.unit() * 2.0 - 1.0) * HALF_SPAN_M;
    let north = (rng.unit() * 2.0 - 1.0) * HALF_SPAN_M;
    c.destination(90.0, east).destination(0.0, north)
}

pub fn contractor(rng: &mut Rng, id: u64) -> IndexedContractor {
    let trades: TradeSet = (0..1 + rng.below(3)).map(|_| Trade::ALL[rng.below(10) as usize]).collect();
    let status = if rng.below(10) < 6 { StatusKind::Available } else { StatusKind::OnSite };
    IndexedContractor { id: ContractorId(id), status, trades, rating: 3.0 + rng.unit() as f32 * 2.0 }
}

/// An index of `n` contractors at the default resolution.
pub fn city(n: usize, seed: u64) -> SpatialIndex {
    let mut rng = Rng(seed);
    let mut index = SpatialIndex::new(dispatch_engine::spatial::DEFAULT_RESOLUTION).unwrap();
    for id in 0..n as u64 {
        let c = contractor(&mut rng, id);
        index.upsert(c, city_point(&mut rng));
    }
    index
}
