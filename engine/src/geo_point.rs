//! [`GeoPoint`]: a validated WGS84 position, and great-circle distance with `geo`'s haversine.

use geo::{Distance, Haversine, Point};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The mean Earth radius `geo`'s [`Haversine`] uses (GRS80 R1), in metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A position on Earth in degrees. Always finite, with |lat| ≤ 90 and |lng| ≤ 180:
/// the only way to make one is [`GeoPoint::new`], which checks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawPoint", into = "RawPoint")]
pub struct GeoPoint {
    lat: f64,
    lng: f64,
}

/// The unchecked wire shape; deserialisation goes through [`GeoPoint::new`].
#[derive(Serialize, Deserialize)]
struct RawPoint {
    lat: f64,
    lng: f64,
}

impl TryFrom<RawPoint> for GeoPoint {
    type Error = Error;
    fn try_from(raw: RawPoint) -> Result<Self> {
        GeoPoint::new(raw.lat, raw.lng)
    }
}

impl From<GeoPoint> for RawPoint {
    fn from(p: GeoPoint) -> Self {
        RawPoint { lat: p.lat, lng: p.lng }
    }
}

impl GeoPoint {
    /// A point at `lat`, `lng` degrees; refuses NaN, infinities, |lat| > 90 and |lng| > 180.
    pub fn new(lat: f64, lng: f64) -> Result<Self> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(Error::InvalidLatitude(lat));
        }
        if !lng.is_finite() || !(-180.0..=180.0).contains(&lng) {
            return Err(Error::InvalidLongitude(lng));
        }
        Ok(Self { lat, lng })
    }

    /// Latitude in degrees.
    #[must_use]
    pub const fn lat(self) -> f64 {
        self.lat
    }

    /// Longitude in degrees.
    #[must_use]
    pub const fn lng(self) -> f64 {
        self.lng
    }

    /// Great-circle distance to `other` in metres (`geo`'s haversine).
    #[must_use]
    pub fn distance_m(self, other: GeoPoint) -> f64 {
        Haversine.distance(Point::from(self), Point::from(other))
    }

    /// The point as a unit vector in Earth-centred coordinates. The straight-line
    /// (chord) distance between two such vectors grows with the great-circle
    /// distance, so an R-tree over them answers nearest-neighbour queries in
    /// great-circle order with no distortion near the poles or the antimeridian.
    #[must_use]
    pub fn unit_vector(self) -> [f64; 3] {
        let (lat, lng) = (self.lat.to_radians(), self.lng.to_radians());
        [lat.cos() * lng.cos(), lat.cos() * lng.sin(), lat.sin()]
    }

    /// The point `distance_m` metres away along `bearing_deg` (clockwise from north).
    /// Used by simulators and tests to lay points out at known distances.
    /// A bearing or distance that is not a finite number goes nowhere: the
    /// result is this point (a `GeoPoint` is always a valid position).
    #[must_use]
    pub fn destination(self, bearing_deg: f64, distance_m: f64) -> GeoPoint {
        if !(bearing_deg.is_finite() && distance_m.is_finite()) {
            return self;
        }
        let d = distance_m / EARTH_RADIUS_M;
        let (lat1, lng1, brg) = (self.lat.to_radians(), self.lng.to_radians(), bearing_deg.to_radians());
        // Rounding can push the sine a hair past ±1, where asin is NaN.
        let lat2 = (lat1.sin() * d.cos() + lat1.cos() * d.sin() * brg.cos()).clamp(-1.0, 1.0).asin();
        let lng2 = lng1 + (brg.sin() * d.sin() * lat1.cos()).atan2(d.cos() - lat1.sin() * lat2.sin());
        let lng2 = (lng2.to_degrees() + 540.0).rem_euclid(360.0) - 180.0;
        GeoPoint { lat: lat2.to_degrees().clamp(-90.0, 90.0), lng: lng2.clamp(-180.0, 180.0) }
    }
}

impl From<GeoPoint> for Point<f64> {
    fn from(p: GeoPoint) -> Self {
        Point::new(p.lng, p.lat)
    }
}

impl From<GeoPoint> for h3o::LatLng {
    fn from(p: GeoPoint) -> Self {
        // A GeoPoint is always finite and in range, which is all LatLng checks.
        h3o::LatLng::new(p.lat, p.lng).unwrap_or_else(|_| unreachable!("GeoPoint is validated"))
    }
}

impl From<h3o::LatLng> for GeoPoint {
    fn from(ll: h3o::LatLng) -> Self {
        GeoPoint { lat: ll.lat(), lng: ll.lng() }
    }
}

/// Squared chord length between unit vectors for a great-circle distance of `distance_m`.
#[must_use]
pub(crate) fn chord2_for_distance(distance_m: f64) -> f64 {
    let half_angle = (distance_m / EARTH_RADIUS_M / 2.0).min(std::f64::consts::FRAC_PI_2);
    let chord = 2.0 * half_angle.sin();
    chord * chord
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructor_refuses_bad_coordinates() {
        assert!(matches!(GeoPoint::new(f64::NAN, 0.0), Err(Error::InvalidLatitude(_))));
        assert!(matches!(GeoPoint::new(0.0, f64::NAN), Err(Error::InvalidLongitude(_))));
        assert!(matches!(GeoPoint::new(f64::INFINITY, 0.0), Err(Error::InvalidLatitude(_))));
        assert!(matches!(GeoPoint::new(0.0, f64::NEG_INFINITY), Err(Error::InvalidLongitude(_))));
        assert_eq!(GeoPoint::new(90.000_001, 0.0), Err(Error::InvalidLatitude(90.000_001)));
        assert_eq!(GeoPoint::new(-90.5, 0.0), Err(Error::InvalidLatitude(-90.5)));
        assert_eq!(GeoPoint::new(0.0, 180.1), Err(Error::InvalidLongitude(180.1)));
        assert_eq!(GeoPoint::new(0.0, -181.0), Err(Error::InvalidLongitude(-181.0)));
        assert!(GeoPoint::new(90.0, 180.0).is_ok());
        assert!(GeoPoint::new(-90.0, -180.0).is_ok());
    }

    #[test]
    fn deserialising_goes_through_the_check() {
        let ok: GeoPoint = from_raw(41.6, -93.6).unwrap();
        assert_eq!(ok.lat(), 41.6);
        assert!(from_raw(91.0, 0.0).is_err());
    }

    fn from_raw(lat: f64, lng: f64) -> Result<GeoPoint> {
        GeoPoint::try_from(RawPoint { lat, lng })
    }

    #[test]
    fn distance_matches_a_known_pair_and_destination_inverts_it() {
        // Des Moines to Omaha is about 196 km as the crow flies.
        let dsm = GeoPoint::new(41.5868, -93.6250).unwrap();
        let oma = GeoPoint::new(41.2565, -95.9345).unwrap();
        let d = dsm.distance_m(oma);
        assert!((194_000.0..198_000.0).contains(&d), "{d}");
        let p = dsm.destination(45.0, 1234.0);
        assert!((dsm.distance_m(p) - 1234.0).abs() < 0.01);
    }

    #[test]
    fn destination_is_always_a_valid_point() {
        // Found by the coordinates_and_jobs fuzz target: NaN or infinite
        // inputs gave a GeoPoint of NaNs.
        let poles = [GeoPoint::new(90.0, 0.0).unwrap(), GeoPoint::new(-89.999_999, 179.999).unwrap(), GeoPoint::new(41.6, -93.6).unwrap()];
        let odd = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, -f64::MAX, 1e300, -1e-300, 0.0, 720.5];
        for p in poles {
            for bearing in odd {
                for metres in odd {
                    let q = p.destination(bearing, metres);
                    assert!(GeoPoint::new(q.lat(), q.lng()).is_ok(), "{p:?} + ({bearing}, {metres}) = {q:?}");
                }
            }
        }
        let p = poles[2];
        assert_eq!(p.destination(f64::NAN, 100.0), p, "not finite: stays put");
    }

    #[test]
    fn chord_order_follows_distance_order() {
        let a = GeoPoint::new(41.6, -93.6).unwrap();
        let near = a.destination(10.0, 500.0);
        let far = a.destination(200.0, 900.0);
        let c = |p: GeoPoint| {
            let (u, v) = (a.unit_vector(), p.unit_vector());
            (0..3).map(|i| (u[i] - v[i]).powi(2)).sum::<f64>()
        };
        assert!(c(near) < c(far));
        assert!((c(near) - chord2_for_distance(500.0)).abs() < 1e-12);
    }
}
