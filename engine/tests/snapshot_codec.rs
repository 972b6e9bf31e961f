//! Engine types survive a `bincode` 2 (serde) round trip, as actor snapshots
//! will need, and a snapshot cannot smuggle in an invalid position.

use anyhow::Result;
use dispatch_engine::{
    ContractorId, ContractorProfile, ContractorStatus, CustomerId, GeoPoint, Job, JobEvent, JobId, JobMachine, JobState, Money, Party,
    Rating, ShiftWindow, TimeWindow, Timestamp, Trade, TradeExperience, Urgency,
};

fn roundtrip<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) -> Result<T> {
    let bytes = bincode::serde::encode_to_vec(value, bincode::config::standard())?;
    let (back, used) = bincode::serde::decode_from_slice(&bytes, bincode::config::standard())?;
    assert_eq!(used, bytes.len());
    Ok(back)
}

#[test]
fn profiles_and_job_machines_roundtrip() -> Result<()> {
    let profile = ContractorProfile {
        id: ContractorId(42),
        name: "Grace".into(),
        trades: vec![TradeExperience { trade: Trade::Electrical, years: 12 }],
        rating: Rating::new(4.7, 120)?,
        hourly_rate: Money(9_500),
        service_radius_m: 25_000.0,
        shifts: vec![ShiftWindow::new(2, 7 * 60, 15 * 60)?],
        utc_offset_minutes: -360,
    };
    assert_eq!(roundtrip(&profile)?, profile);

    let mut machine = JobMachine::new();
    machine.apply(JobEvent::Offered { contractor: ContractorId(1), expires_at: Timestamp(5) })?;
    machine.apply(JobEvent::Declined { contractor: ContractorId(1) })?;
    machine.apply(JobEvent::Offered { contractor: ContractorId(2), expires_at: Timestamp(9) })?;
    let back = roundtrip(&machine)?;
    assert_eq!(back, machine);
    assert!(back.excluded().contains(&ContractorId(1)));
    assert_eq!(back.state(), &JobState::Offering { contractor: ContractorId(2), expires_at: Timestamp(9) });

    let cancelled = JobState::Cancelled { by: Party::Customer, reason: "fixed it myself".into() };
    assert_eq!(roundtrip(&cancelled)?, cancelled);
    for status in [ContractorStatus::Offline, ContractorStatus::EnRoute(JobId(3)), ContractorStatus::OnBreak] {
        assert_eq!(roundtrip(&status)?, status);
    }
    let job = Job {
        id: JobId(3),
        customer: CustomerId(8),
        trade: Trade::Hvac,
        location: GeoPoint::new(41.5868, -93.6250)?,
        urgency: Urgency::Scheduled(TimeWindow::new(Timestamp(1_000), Timestamp(2_000))?),
        description: "furnace clicks, no heat".into(),
        budget: Some(Money(30_000)),
        posted_at: Timestamp(500),
    };
    assert_eq!(roundtrip(&job)?, job);
    Ok(())
}

#[test]
fn an_out_of_range_point_in_a_snapshot_is_an_error_not_a_value() -> Result<()> {
    #[derive(serde::Serialize)]
    struct Raw {
        lat: f64,
        lng: f64,
    }
    let bytes = bincode::serde::encode_to_vec(Raw { lat: 123.0, lng: 0.0 }, bincode::config::standard())?;
    let decoded: Result<(GeoPoint, usize), _> = bincode::serde::decode_from_slice(&bytes, bincode::config::standard());
    let err = decoded.expect_err("latitude 123 must be refused");
    assert!(err.to_string().contains("latitude"), "{err}");
    Ok(())
}
