//! Configured cities: a name, a centre and a bounding polygon, each run by
//! its own [`Dispatch`] on its own store. Positions and jobs outside the
//! connection's city are refused with `out_of_area`.

use geo::{Contains, Coord, LineString, Point, Polygon};
use serde::{Deserialize, Serialize};

use dispatch_actors::Dispatch;
use dispatch_engine::GeoPoint;

/// One city as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CityConfig {
    /// The name tokens carry, e.g. `des-moines`.
    pub name: String,
    /// `[lat, lng]` of the centre.
    pub centre: [f64; 2],
    /// The service area as `[lat, lng]` vertices (at least three).
    pub polygon: Vec<[f64; 2]>,
}

impl CityConfig {
    /// A city whose area is the box `[min_lat, min_lng, max_lat, max_lng]`.
    #[must_use]
    pub fn boxed(name: &str, centre: [f64; 2], [s, w, n, e]: [f64; 4]) -> Self {
        Self { name: name.into(), centre, polygon: vec![[s, w], [s, e], [n, e], [n, w]] }
    }

    /// Des Moines, Kansas City and Omaha.
    #[must_use]
    pub fn defaults() -> Vec<CityConfig> {
        vec![
            Self::boxed("des-moines", [41.5868, -93.6250], [41.45, -93.90, 41.75, -93.40]),
            Self::boxed("kansas-city", [39.0997, -94.5786], [38.85, -94.85, 39.35, -94.35]),
            Self::boxed("omaha", [41.2565, -95.9345], [41.10, -96.25, 41.40, -95.85]),
        ]
    }

    /// The area as a `geo` polygon; refuses fewer than three valid vertices.
    pub fn area(&self) -> Result<Polygon<f64>, String> {
        if self.polygon.len() < 3 {
            return Err(format!("city {}: a polygon needs at least 3 vertices", self.name));
        }
        let mut ring = Vec::with_capacity(self.polygon.len());
        for &[lat, lng] in &self.polygon {
            GeoPoint::new(lat, lng).map_err(|e| format!("city {}: {e}", self.name))?;
            ring.push(Coord { x: lng, y: lat });
        }
        GeoPoint::new(self.centre[0], self.centre[1]).map_err(|e| format!("city {} centre: {e}", self.name))?;
        Ok(Polygon::new(LineString::from(ring), vec![]))
    }
}

/// The H3 cells at `resolution` that together cover `area` (every cell
/// touching it), for the map and for sizing.
pub fn covering_cells(area: &Polygon<f64>, resolution: u8) -> Result<Vec<h3o::CellIndex>, String> {
    let resolution = h3o::Resolution::try_from(resolution).map_err(|e| e.to_string())?;
    let mut tiler = h3o::geom::TilerBuilder::new(resolution).containment_mode(h3o::geom::ContainmentMode::Covers).build();
    tiler.add(area.clone()).map_err(|e| e.to_string())?;
    let mut cells: Vec<_> = tiler.into_coverage().collect();
    cells.sort_unstable();
    Ok(cells)
}

/// A city's place: its configuration, its area and the H3 cells covering it.
#[derive(Debug)]
pub struct Area {
    /// Its configuration.
    pub config: CityConfig,
    /// Its area.
    pub polygon: Polygon<f64>,
    /// The H3 cells covering the area.
    pub cells: Vec<h3o::CellIndex>,
}

impl Area {
    /// The city's area and its covering cells at `resolution`.
    pub fn new(config: &CityConfig, resolution: u8) -> Result<Self, String> {
        let polygon = config.area()?;
        let cells = covering_cells(&polygon, resolution)?;
        Ok(Self { config: config.clone(), polygon, cells })
    }

    /// Whether `point` lies in the city's area.
    #[must_use]
    pub fn covers(&self, point: GeoPoint) -> bool {
        self.polygon.contains(&Point::from(point))
    }
}

/// A city as the sessions of this process see it: where it is, how to reach
/// it (its actors here, or its owner over NATS), and its event router.
pub struct City {
    /// Where it is.
    pub area: std::sync::Arc<Area>,
    /// How sessions reach it.
    pub(crate) port: crate::port::Port,
    /// Hands its events to the sessions they concern.
    pub(crate) router: std::sync::Arc<crate::router::Router>,
}

impl City {
    /// The city's actors, when they run in this process.
    #[must_use]
    pub fn local(&self) -> Option<&Dispatch> {
        self.port.local()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_cities_cover_their_centres_and_not_each_other() {
        let areas: Vec<_> = CityConfig::defaults().into_iter().map(|c| (c.area().unwrap(), c)).collect();
        for (area, city) in &areas {
            let centre = Point::new(city.centre[1], city.centre[0]);
            assert!(area.contains(&centre), "{}", city.name);
            for (other, other_city) in &areas {
                if other_city.name != city.name {
                    assert!(!other.contains(&centre), "{} inside {}", city.name, other_city.name);
                }
            }
        }
    }

    #[test]
    fn covering_cells_cover_the_area_and_no_more_than_its_neighbourhood() {
        let city = &CityConfig::defaults()[0];
        let area = city.area().unwrap();
        let cells = covering_cells(&area, 8).unwrap();
        // Des Moines' box is about 33 km x 42 km, about 1,400 km²: some 1,900 cells of 0.74 km².
        assert!((1_500..2_600).contains(&cells.len()), "{}", cells.len());
        let centre = h3o::LatLng::new(city.centre[0], city.centre[1]).unwrap().to_cell(h3o::Resolution::Eight);
        assert!(cells.binary_search(&centre).is_ok());
        let omaha = h3o::LatLng::new(41.2565, -95.9345).unwrap().to_cell(h3o::Resolution::Eight);
        assert!(cells.binary_search(&omaha).is_err());
    }

    #[test]
    fn bad_polygons_are_refused() {
        let mut c = CityConfig::boxed("x", [0.0, 0.0], [-1.0, -1.0, 1.0, 1.0]);
        c.polygon.truncate(2);
        assert!(c.area().is_err());
        let c = CityConfig { polygon: vec![[0.0, 0.0], [95.0, 0.0], [0.0, 1.0]], ..c };
        assert!(c.area().unwrap_err().contains("latitude"));
    }
}
