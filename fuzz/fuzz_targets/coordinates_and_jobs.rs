//! A `post_job` frame with arbitrary coordinates, window, budget and text,
//! taken the way the server takes it: parsed, then the point, the window and
//! the price. Bad values are refused; good ones give finite results.
#![no_main]

use arbitrary::Arbitrary;
use dispatch_engine::{GeoPoint, PricingConfig, TimeWindow, Timestamp, Urgency};
use dispatch_protocol::{ClientMsg, UrgencyWire, parse_client};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    lat: f64,
    lng: f64,
    trade: u8,
    window: Option<(i64, i64)>,
    budget: Option<i64>,
    description: String,
    bearing: f64,
    metres: f64,
}

const TRADES: [&str; 11] = [
    "plumbing",
    "electrical",
    "hvac",
    "carpentry",
    "roofing",
    "painting",
    "cleaning",
    "appliance_repair",
    "locksmith",
    "general_handyman",
    "wizardry",
];

fuzz_target!(|input: Input| {
    let urgency = match input.window {
        Some((start, end)) => serde_json::json!({"scheduled": {"start": start, "end": end}}),
        None => serde_json::json!("today"),
    };
    // serde_json writes NaN and infinities as null: those are refused as wrong types.
    let frame = serde_json::json!({
        "type": "post_job", "trade": TRADES[usize::from(input.trade) % TRADES.len()],
        "lat": input.lat, "lng": input.lng, "urgency": urgency,
        "description": input.description, "budget": input.budget,
    });
    let Ok((_, ClientMsg::PostJob { lat, lng, urgency, trade, .. })) = parse_client(&frame.to_string()) else { return };
    let Ok(point) = GeoPoint::new(lat, lng) else {
        assert!(!(lat.is_finite() && lng.is_finite() && lat.abs() <= 90.0 && lng.abs() <= 180.0), "{lat},{lng} refused");
        return;
    };
    let there = point.destination(input.bearing, input.metres);
    assert!(there.lat().is_finite() && there.lng().is_finite());
    let d = point.distance_m(there);
    assert!(d.is_finite() && d >= 0.0, "{d}");
    let urgency = match urgency {
        UrgencyWire::Emergency => Urgency::Emergency,
        UrgencyWire::Today => Urgency::Today,
        UrgencyWire::Scheduled { start, end } => match TimeWindow::new(Timestamp(start), Timestamp(end)) {
            Ok(w) => Urgency::Scheduled(w),
            Err(_) => return,
        },
    };
    let quote = PricingConfig::default().quote(trade, &urgency, 1.0);
    assert!(quote.surge.is_finite() && quote.urgency.is_finite(), "{quote:?}");
});
