//! Golden files: what earlier builds stored must still decode.
//!
//! `tests/golden/v<N>/` holds snapshots and event-log records exactly as a
//! build writing schema version N encoded them: a contractor in every status,
//! a job in every state and urgency, and a log record of every logged event
//! kind. Each file is decoded with today's types (upcasting where the schema
//! moved on) and compared with the value it was made from, expressed in
//! today's types. A change that cannot read old data fails here.
//!
//! The files are written once, by the build of their version:
//! `DISPATCH_WRITE_GOLDEN=1 cargo test -p dispatch-actors --test golden`
//! adds the files of the current schema version that are missing and never
//! overwrites one.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use dispatch_actors::engine::payment::{EarningLine, PaymentTerms};
use dispatch_actors::engine::pricing::PriceQuote;
use dispatch_actors::engine::routing::Stop;
use dispatch_actors::engine::{
    ContractorId, ContractorProfile, ContractorStatus, CustomerId, GeoPoint, Job, JobEvent, JobId, JobMachine, Money, Party, Rating,
    RatingTally, ShiftWindow, TimeWindow, Timestamp, Trade, TradeExperience, Urgency,
};
use dispatch_actors::payments::journal::{JournalEntry, JournalError, PaymentJournal};
use dispatch_actors::payments::{Call, Card, JobPayment, Outcome, Report, SandboxProvider, Via};
use dispatch_actors::record::PendingCard;
use dispatch_actors::storage::codec::{self, Versioned};
use dispatch_actors::{
    Actor, AuditAction, AuditHead, AuditRecord, BlockRecord, ContractorSnapshot, CursorRecord, CustomerRecord, DeadLetterRecord,
    EndpointRecord, Insurance, JobSnapshot, KpiRecord, LogRecord, OutboxHead, OutboxRecord, PayeeRecord, PaymentRecord, RequestOutcome,
    RequestRecord, RequestRole, RequestTag, SuspensionRecord, VerifiedTrade, VettingRecord,
};

/// One stored value and the name of its file.
#[allow(clippy::large_enum_variant, reason = "test values, a few dozen made once")]
enum Golden {
    Contractor(&'static str, ContractorSnapshot),
    Job(&'static str, JobSnapshot),
    Event(&'static str, LogRecord),
    Request(&'static str, RequestRecord),
    Customer(&'static str, CustomerRecord),
    Payee(&'static str, PayeeRecord),
    Audit(&'static str, AuditRecord),
    AuditHead(&'static str, AuditHead),
    Block(&'static str, BlockRecord),
    Suspension(&'static str, SuspensionRecord),
    Vetting(&'static str, VettingRecord),
    Outbox(&'static str, OutboxRecord),
    OutboxHead(&'static str, OutboxHead),
    Cursor(&'static str, CursorRecord),
    DeadLetter(&'static str, DeadLetterRecord),
    Endpoint(&'static str, EndpointRecord),
    Kpi(&'static str, KpiRecord),
    Notify(&'static str, dispatch_actors::NotifyRecord),
    JobIndex(&'static str, dispatch_actors::JobIndexRecord),
    ContractorIndex(&'static str, dispatch_actors::ContractorIndexRecord),
}

impl Golden {
    fn name(&self) -> &'static str {
        match self {
            Golden::Contractor(name, _)
            | Golden::Job(name, _)
            | Golden::Event(name, _)
            | Golden::Request(name, _)
            | Golden::Customer(name, _)
            | Golden::Payee(name, _)
            | Golden::Audit(name, _)
            | Golden::AuditHead(name, _)
            | Golden::Block(name, _)
            | Golden::Suspension(name, _)
            | Golden::Vetting(name, _)
            | Golden::Outbox(name, _)
            | Golden::OutboxHead(name, _)
            | Golden::Cursor(name, _)
            | Golden::DeadLetter(name, _)
            | Golden::Endpoint(name, _)
            | Golden::Kpi(name, _)
            | Golden::Notify(name, _)
            | Golden::JobIndex(name, _)
            | Golden::ContractorIndex(name, _) => name,
        }
    }
}

fn point(lat: f64, lng: f64) -> GeoPoint {
    GeoPoint::new(lat, lng).unwrap()
}

fn contractor(status: ContractorStatus) -> ContractorSnapshot {
    let rating = Rating::new(4.5, 20).unwrap();
    let busy = !matches!(status, ContractorStatus::Offline | ContractorStatus::Available | ContractorStatus::OnBreak);
    ContractorSnapshot {
        profile: ContractorProfile {
            id: ContractorId(42),
            name: "Ada Plumber".into(),
            trades: vec![TradeExperience { trade: Trade::Plumbing, years: 12 }, TradeExperience { trade: Trade::Hvac, years: 3 }],
            rating,
            hourly_rate: Money(8_500),
            service_radius_m: 25_000.0,
            shifts: vec![ShiftWindow::new(0, 480, 1020).unwrap(), ShiftWindow::new(5, 600, 840).unwrap()],
            utc_offset_minutes: -360,
        },
        status,
        position: (status != ContractorStatus::Offline).then(|| point(41.5868, -93.625)),
        last_fix: (status != ContractorStatus::Offline).then_some(Timestamp(1_795_420_800_000)),
        job_site: busy.then(|| point(41.6, -93.61)),
        arriving_sent: matches!(status, ContractorStatus::OnSite(_)),
        agenda: vec![Stop {
            job: JobId(900),
            location: point(41.55, -93.7),
            window: Some(TimeWindow::new(Timestamp(1_795_500_000_000), Timestamp(1_795_507_200_000)).unwrap()),
            service_secs: 3_600,
        }],
        // Version 1 kept only the profile's average and count.
        ratings: RatingTally::from_rating(rating),
        earnings: Vec::new(),
    }
}

fn job(urgency: Urgency, events: Vec<JobEvent>) -> JobSnapshot {
    let mut machine = JobMachine::new();
    for event in events {
        machine.apply(event).unwrap();
    }
    let accepted = machine.state().contractor().is_some() && !matches!(machine.state(), dispatch_actors::engine::JobState::Offering { .. });
    JobSnapshot {
        job: Job {
            id: JobId(7),
            customer: CustomerId(3),
            trade: Trade::Plumbing,
            location: point(41.6, -93.61),
            urgency,
            description: "leak under the kitchen sink".into(),
            budget: Some(Money(25_000)),
            posted_at: Timestamp(1_795_420_000_000),
        },
        machine,
        quote: PriceQuote { base: Money(12_000), surge: 1.25, urgency: 1.5, total: Money(22_500) },
        radius_m: 4_000.0,
        offers_this_round: 2,
        expired_reason: None,
        accepted_at: accepted.then_some(Timestamp(1_795_420_030_000)),
        rated_stars: None,
        payment: None,
        payee: None,
    }
}

/// Every stored value of schema version 1, as today's types express it.
fn version_1() -> Vec<Golden> {
    use ContractorStatus as S;
    let c = ContractorId(42);
    let offer = JobEvent::Offered { contractor: c, expires_at: Timestamp(1_795_420_020_000) };
    let declined = [offer.clone(), JobEvent::Declined { contractor: c }];
    let accepted = [offer.clone(), JobEvent::Accepted { contractor: c }];
    let en_route = [&accepted[..], &[JobEvent::EnRoute { contractor: c }]].concat();
    let on_site = [&en_route[..], &[JobEvent::OnSite { contractor: c }]].concat();
    let completed = [&on_site[..], &[JobEvent::Completed { contractor: c }]].concat();
    let window = TimeWindow::new(Timestamp(1_795_500_000_000), Timestamp(1_795_507_200_000)).unwrap();
    let mut expired = job(Urgency::Emergency, vec![JobEvent::Expired]);
    expired.expired_reason = Some("no contractor within 20 km accepted in 30 minutes".into());
    vec![
        Golden::Contractor("contractor-offline", contractor(S::Offline)),
        Golden::Contractor("contractor-available", contractor(S::Available)),
        Golden::Contractor("contractor-offered", contractor(S::Offered(JobId(7)))),
        Golden::Contractor("contractor-en-route", contractor(S::EnRoute(JobId(7)))),
        Golden::Contractor("contractor-on-site", contractor(S::OnSite(JobId(7)))),
        Golden::Contractor("contractor-on-break", contractor(S::OnBreak)),
        Golden::Job("job-posted", job(Urgency::Emergency, vec![])),
        Golden::Job("job-posted-after-decline", job(Urgency::Today, declined.to_vec())),
        Golden::Job("job-offering", job(Urgency::Today, vec![offer])),
        Golden::Job("job-accepted", job(Urgency::Today, accepted.to_vec())),
        Golden::Job("job-en-route", job(Urgency::Today, en_route)),
        Golden::Job("job-on-site", job(Urgency::Scheduled(window), on_site)),
        Golden::Job("job-completed", job(Urgency::Today, completed)),
        Golden::Job(
            "job-cancelled",
            job(Urgency::Today, vec![JobEvent::Cancelled { by: Party::Customer, reason: "fixed it myself".into() }]),
        ),
        Golden::Job("job-expired", expired),
        Golden::Event(
            "event-posted",
            LogRecord::Posted {
                quote: PriceQuote { base: Money(12_000), surge: 1.25, urgency: 1.5, total: Money(22_500) },
                customer: CustomerId(3),
            },
        ),
        Golden::Event("event-offered", LogRecord::Offered { contractor: c, expires_at: Timestamp(1_795_420_020_000), eta_secs: 412.5 }),
        Golden::Event("event-declined", LogRecord::Declined { contractor: c }),
        Golden::Event("event-offer-expired", LogRecord::OfferExpired { contractor: c }),
        Golden::Event("event-accepted", LogRecord::Accepted { contractor: c }),
        Golden::Event("event-en-route", LogRecord::EnRoute { contractor: c }),
        Golden::Event("event-arriving", LogRecord::Arriving { contractor: c, distance_m: 180.0 }),
        Golden::Event("event-on-site", LogRecord::OnSite { contractor: c }),
        Golden::Event("event-completed", LogRecord::Completed { contractor: c }),
        Golden::Event("event-withdrawn", LogRecord::Withdrawn { contractor: c }),
        Golden::Event("event-cancelled", LogRecord::Cancelled { by: Party::Dispatcher, reason: "duplicate posting".into() }),
        Golden::Event("event-expired", LogRecord::Expired { reason: "window passed".into() }),
        Golden::Event("event-chat", LogRecord::Chat { party: Party::Customer, sender: 3, text: "gate code is 4512 ✓".into() }),
    ]
}

/// Schema version 2: ratings. Everything version 1 stored, plus a contractor
/// with reviews counted by job, a rated job and a `Rated` log record.
fn version_2() -> Vec<Golden> {
    let mut goldens = version_1();
    let mut rated = contractor(ContractorStatus::Available);
    rated.ratings.add(JobId(7), 5.0).unwrap();
    rated.ratings.add(JobId(8), 3.5).unwrap();
    rated.profile.rating = rated.ratings.rating();
    goldens.push(Golden::Contractor("contractor-rated", rated));
    let Some(Golden::Job(_, completed)) = goldens.iter().find(|g| g.name() == "job-completed") else { unreachable!() };
    let mut completed = completed.clone();
    completed.rated_stars = Some(4.5);
    goldens.push(Golden::Job("job-completed-rated", completed));
    goldens.push(Golden::Event("event-rated", LogRecord::Rated { contractor: ContractorId(42), stars: 4.5 }));
    // Request records (added while the schema was at version 2): one of each outcome.
    let tag = |role, sub, id: &str| RequestTag { role, sub, id: id.into() };
    let quote = PriceQuote { base: Money(12_000), surge: 1.25, urgency: 1.2, total: Money(18_000) };
    let record = |tag, seq, outcome| RequestRecord { tag, job: JobId(7), seq, outcome };
    goldens.extend([
        Golden::Request("request-posted", record(tag(RequestRole::Customer, 3, "post-1"), 1, RequestOutcome::Posted { quote })),
        Golden::Request(
            "request-accepted",
            record(
                tag(RequestRole::Contractor, 42, "acc-7"),
                3,
                RequestOutcome::Accepted { state: dispatch_actors::engine::JobState::Accepted { contractor: ContractorId(42) } },
            ),
        ),
        Golden::Request("request-chat", record(tag(RequestRole::Dispatcher, 1, "m-ü-1"), 4, RequestOutcome::Chat)),
        Golden::Request(
            "request-rated",
            record(
                tag(RequestRole::Customer, 3, "rate-7"),
                9,
                RequestOutcome::Rated { contractor: ContractorId(42), rating: Rating::new(4.5, 20).unwrap() },
            ),
        ),
    ]);
    goldens
}

/// A journal in memory, for making payments to store.
#[derive(Default)]
struct Entries(std::sync::Mutex<Vec<JournalEntry>>);

#[dispatch_actors::payments::journal::async_trait]
impl PaymentJournal for Entries {
    async fn write(&self, entry: JournalEntry) -> Result<(), JournalError> {
        self.0.lock().unwrap().push(entry);
        Ok(())
    }
}

/// Schema version 3: payments. Everything version 2 stored, plus a job's
/// payment at each stage, a contractor's earnings, and both payment records.
async fn version_3() -> Vec<Golden> {
    let mut goldens = version_2();
    let c = ContractorId(42);
    let mut earning = contractor(ContractorStatus::Available);
    earning.earnings = vec![
        EarningLine { job: JobId(7), day: 20_780, earned: Money(22_500), fee: Money(653), paid: false },
        EarningLine { job: JobId(5), day: 20_779, earned: Money(10_000), fee: Money(290), paid: true },
    ];
    goldens.push(Golden::Contractor("contractor-earning", earning));
    let (sandbox, journal) = (SandboxProvider::new(), Entries::default());
    let via = Via { provider: &sandbox, journal: &journal };
    let card = Card { customer: "cus_dispatch_3".into(), payment_method: "pm_card_visa".into() };
    let quoted = JobPayment::new(JobId(7), Money(22_500), PaymentTerms::default(), card).unwrap();
    let mut posted = job(Urgency::Emergency, vec![]);
    posted.payment = Some(quoted.clone());
    goldens.push(Golden::Job("job-posted-quoted", posted));
    let mut held = quoted;
    held.hold(via, Timestamp(1_795_420_001_000), false).await.unwrap();
    let offer = JobEvent::Offered { contractor: c, expires_at: Timestamp(1_795_420_020_000) };
    let mut offering = job(Urgency::Today, vec![offer.clone()]);
    offering.payment = Some(held.clone());
    goldens.push(Golden::Job("job-offering-authorized", offering));
    let mut charged = held;
    charged.propose_extras(Money(1_500), "a new trap".into()).unwrap();
    charged.approve_extras(via, Timestamp(1_795_423_000_000)).await.unwrap();
    charged.complete(via, Timestamp(1_795_423_600_000)).await.unwrap();
    let completed = [
        offer,
        JobEvent::Accepted { contractor: c },
        JobEvent::EnRoute { contractor: c },
        JobEvent::OnSite { contractor: c },
        JobEvent::Completed { contractor: c },
    ];
    let mut done = job(Urgency::Today, completed.to_vec());
    done.payment = Some(charged.clone());
    done.payee = Some(c);
    goldens.push(Golden::Job("job-completed-charged", done.clone()));
    // Paid out, then the transfer reversed at the processor: held for a dispatcher.
    let mut held_payout = charged;
    held_payout.pay_out(via, c, "acct_dispatch_42", Timestamp(1_795_700_000_000)).await.unwrap();
    let payout = held_payout.machine().release().unwrap().payout;
    held_payout.report(&Report::PayoutReversed { event: "evt_1R3v3R".into(), amount: payout }).unwrap();
    done.payment = Some(held_payout);
    goldens.push(Golden::Job("job-completed-payout-held", done));
    let entries = journal.0.lock().unwrap().clone();
    let intent = entries.iter().find(|e| matches!(e, JournalEntry::Intent { call: Call::Capture { .. } })).unwrap().clone();
    let outcome = entries.iter().find(|e| matches!(e, JournalEntry::Outcome { outcome: Outcome::Held { .. }, .. })).unwrap().clone();
    goldens.extend([
        Golden::Event("event-payment-call-intent", LogRecord::PaymentCall(intent)),
        Golden::Event("event-payment-call-outcome", LogRecord::PaymentCall(outcome)),
        Golden::Event(
            "event-payment-extras",
            LogRecord::Payment(PaymentRecord::ExtrasProposed { amount: Money(1_500), reason: "a new trap".into() }),
        ),
        Golden::Event("event-payment-payout", LogRecord::Payment(PaymentRecord::PayoutScheduled { at: Timestamp(1_795_682_800_000) })),
        Golden::Event(
            "event-payment-chargeback",
            LogRecord::Payment(PaymentRecord::Chargeback { amount: Money(4_000), event: "evt_1Q2w3E".into() }),
        ),
        // Added while the schema was at version 3 (a new variant at the end: earlier blobs read alike).
        Golden::Event(
            "event-payment-payout-reversed",
            LogRecord::Payment(PaymentRecord::PayoutReversed { amount: Money(21_847), event: "evt_1R3v3R".into() }),
        ),
    ]);
    // Customer records (added while the schema was at version 3): a card saved, and one waiting for authentication.
    let saved = CustomerRecord {
        customer: CustomerId(3),
        processor_customer: "cus_dispatch_customer_3".into(),
        card: Some("pm_card_visa".into()),
        setups: 1,
        pending: None,
    };
    let waiting = CustomerRecord {
        card: None,
        setups: 2,
        pending: Some(PendingCard {
            n: 2,
            payment_method: "pm_card_authenticationRequired".into(),
            setup: Some("seti_1Q2w3E".into()),
            client_secret: Some("seti_1Q2w3E_secret_x".into()),
        }),
        ..saved.clone()
    };
    goldens.extend([Golden::Customer("customer-card-saved", saved), Golden::Customer("customer-card-waiting", waiting)]);
    // Payee records (added while the schema was at version 3): a payout account ready for transfers.
    let payee = PayeeRecord { contractor: c, account: "acct_1Q2w3E4r5T6y7U8i".into(), ready: true };
    goldens.push(Golden::Payee("payee-ready", payee));
    // The audit trail and blocked customers (added while the schema was at version 3).
    let at = Timestamp(1_795_420_900_000);
    let entry = |position, actor, action, reason: Option<&str>| AuditRecord { position, at, actor, action, reason: reason.map(Into::into) };
    goldens.extend([
        Golden::Audit(
            "audit-assign",
            entry(1, Actor::Dispatcher(4), AuditAction::Assign { job: JobId(7), contractor: c }, Some("the nearest was busy")),
        ),
        Golden::Audit("audit-cancel", entry(2, Actor::Dispatcher(4), AuditAction::Cancel { job: JobId(7) }, None)),
        Golden::Audit("audit-refund", entry(3, Actor::Dispatcher(4), AuditAction::Refund { job: JobId(7), amount: Money(1_500) }, None)),
        Golden::Audit(
            "audit-resolve-dispute",
            entry(4, Actor::Dispatcher(4), AuditAction::ResolveDispute { job: JobId(7), refund: Money(700) }, None),
        ),
        Golden::Audit(
            "audit-block",
            entry(5, Actor::Admin(1), AuditAction::BlockCustomer { customer: CustomerId(3) }, Some("three chargebacks")),
        ),
        Golden::Audit(
            "audit-unblock",
            entry(6, Actor::Admin(1), AuditAction::UnblockCustomer { customer: CustomerId(3) }, Some("settled")),
        ),
        Golden::Audit(
            "audit-refused",
            entry(7, Actor::Dispatcher(4), AuditAction::Refused { position: 2, error: "job 7 is completed".into() }, None),
        ),
        Golden::AuditHead("audit-head", AuditHead { last: 7 }),
        Golden::Block("block", BlockRecord { customer: CustomerId(3), at, by: Actor::Admin(1), reason: "three chargebacks".into() }),
        Golden::Audit("audit-suspend", entry(8, Actor::Admin(1), AuditAction::SuspendContractor { contractor: c }, Some("licence lapsed"))),
        Golden::Audit("audit-reinstate", entry(9, Actor::Admin(1), AuditAction::ReinstateContractor { contractor: c }, None)),
        Golden::Suspension("suspension", SuspensionRecord { contractor: c, at, by: Actor::Admin(1), reason: "licence lapsed".into() }),
        Golden::Audit(
            "audit-verify-trade",
            entry(10, Actor::Admin(1), AuditAction::VerifyTrade { contractor: c, trade: Trade::Plumbing }, None),
        ),
        Golden::Audit("audit-insurance", entry(11, Actor::Admin(1), AuditAction::RecordInsurance { contractor: c }, None)),
        Golden::Vetting(
            "vetting",
            VettingRecord {
                contractor: c,
                trades: vec![VerifiedTrade {
                    trade: Trade::Plumbing,
                    licence: "IA-PL-20417".into(),
                    expires: Timestamp(1_826_956_800_000),
                }],
                insurance: Some(Insurance { policy: "GL-88".into(), expires: Timestamp(1_826_956_800_000) }),
            },
        ),
    ]);
    // The outbox and webhook deliveries (added while the schema was at version 3).
    let accepted = codec::encode(&LogRecord::Accepted { contractor: c }).unwrap();
    let outboxed = OutboxRecord { position: 41, job: JobId(7), seq: 3, at, record: accepted };
    let secrets = vec!["whsec_old_0123456789abcdef0123456789".into(), "whsec_new_0123456789abcdef0123456789".into()];
    goldens.extend([
        Golden::Outbox("outbox-accepted", outboxed.clone()),
        Golden::OutboxHead("outbox-head", OutboxHead { settled: 41 }),
        Golden::Cursor("webhook-cursor", CursorRecord { endpoint: "crm".into(), position: 40 }),
        Golden::DeadLetter(
            "dead-letter",
            DeadLetterRecord { endpoint: "crm".into(), event: outboxed, attempts: 8, error: "HTTP 503".into(), at, behind: false },
        ),
        Golden::Endpoint(
            "webhook-endpoint",
            EndpointRecord {
                name: "crm".into(),
                url: "https://hooks.example.com/dispatch".into(),
                secrets,
                events: vec!["offered".into(), "chat".into()],
                by: Actor::Admin(1),
                at,
            },
        ),
        Golden::Audit(
            "audit-add-webhook",
            entry(
                12,
                Actor::Admin(1),
                AuditAction::AddWebhook { endpoint: "crm".into(), url: "https://hooks.example.com/dispatch".into() },
                None,
            ),
        ),
        Golden::Audit("audit-remove-webhook", entry(13, Actor::Admin(1), AuditAction::RemoveWebhook { endpoint: "crm".into() }, None)),
        Golden::Audit(
            "audit-replay-dead-letters",
            entry(14, Actor::Admin(1), AuditAction::ReplayDeadLetters { endpoint: "crm".into() }, None),
        ),
        Golden::Kpi("kpi-hour", {
            use dispatch_actors::engine::kpi::{HourKpis, Observation};
            let mut kpis = HourKpis::default();
            for seen in [
                Observation::Posted { surge: 1.5 },
                Observation::Offered,
                Observation::Accepted { after_secs: 42.0 },
                Observation::Arrived { after_secs: 600.0 },
                Observation::Completed,
                Observation::Captured { amount: Money(22_500), fee: Money(653) },
            ] {
                kpis.observe(seen);
            }
            KpiRecord { hour: 498_727, through: 41, kpis }
        }),
        Golden::Notify("notify-preferences", {
            use dispatch_actors::engine::notify::{Channel, NotifyPreferences, QuietHours};
            let quiet = QuietHours { start: "22:00".into(), end: "07:00".into(), utc_offset_minutes: -360 };
            let preferences = NotifyPreferences { channels: vec![Channel::Push, Channel::Sms], quiet_hours: Some(quiet) };
            dispatch_actors::NotifyRecord { contractor: false, id: 3, preferences }
        }),
        Golden::JobIndex(
            "job-index-completed",
            dispatch_actors::JobIndexRecord {
                job: JobId(7),
                posted_at: Timestamp(1_795_420_000_000),
                trade: Trade::Plumbing,
                customer: CustomerId(3),
                state: dispatch_actors::engine::JobStateKind::Completed,
                contractor: Some(c),
            },
        ),
        Golden::ContractorIndex(
            "contractor-index",
            dispatch_actors::ContractorIndexRecord {
                contractor: c,
                name: "Ada Plumber".into(),
                trades: dispatch_actors::engine::TradeSet::single(Trade::Plumbing).with(Trade::Hvac),
                status: dispatch_actors::engine::StatusKind::Available,
                rating: 4.5,
                reviews: 20,
            },
        ),
    ]);
    goldens
}

fn dir(version: u16) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("v{version}"))
}

fn check<T: Versioned + PartialEq + Debug>(dir: &Path, name: &str, expected: &T, write: bool) -> Result<()> {
    let path = dir.join(format!("{name}.bin"));
    if write && !path.exists() {
        std::fs::create_dir_all(dir)?;
        std::fs::write(&path, codec::encode(expected)?)?;
    }
    let blob = std::fs::read(&path).with_context(|| format!("{} (write it with DISPATCH_WRITE_GOLDEN=1)", path.display()))?;
    let decoded: T = codec::decode(&blob).with_context(|| format!("decoding {}", path.display()))?;
    if &decoded != expected {
        bail!("{} decodes to\n{decoded:#?}\nnot\n{expected:#?}", path.display());
    }
    Ok(())
}

fn check_version(version: u16, goldens: &[Golden]) -> Result<()> {
    let dir = dir(version);
    let write = version == codec::SCHEMA_VERSION && std::env::var_os("DISPATCH_WRITE_GOLDEN").is_some();
    for golden in goldens {
        match golden {
            Golden::Contractor(name, value) => check(&dir, name, value, write)?,
            Golden::Job(name, value) => check(&dir, name, value, write)?,
            Golden::Event(name, value) => check(&dir, name, value, write)?,
            Golden::Request(name, value) => check(&dir, name, value, write)?,
            Golden::Customer(name, value) => check(&dir, name, value, write)?,
            Golden::Payee(name, value) => check(&dir, name, value, write)?,
            Golden::Audit(name, value) => check(&dir, name, value, write)?,
            Golden::AuditHead(name, value) => check(&dir, name, value, write)?,
            Golden::Block(name, value) => check(&dir, name, value, write)?,
            Golden::Suspension(name, value) => check(&dir, name, value, write)?,
            Golden::Vetting(name, value) => check(&dir, name, value, write)?,
            Golden::Outbox(name, value) => check(&dir, name, value, write)?,
            Golden::OutboxHead(name, value) => check(&dir, name, value, write)?,
            Golden::Cursor(name, value) => check(&dir, name, value, write)?,
            Golden::DeadLetter(name, value) => check(&dir, name, value, write)?,
            Golden::Endpoint(name, value) => check(&dir, name, value, write)?,
            Golden::Kpi(name, value) => check(&dir, name, value, write)?,
            Golden::Notify(name, value) => check(&dir, name, value, write)?,
            Golden::JobIndex(name, value) => check(&dir, name, value, write)?,
            Golden::ContractorIndex(name, value) => check(&dir, name, value, write)?,
        }
    }
    // No file goes unchecked.
    for entry in std::fs::read_dir(&dir)? {
        let file = entry?.file_name().to_string_lossy().into_owned();
        let name = file.strip_suffix(".bin").unwrap_or(&file);
        if !goldens.iter().any(|g| g.name() == name) {
            bail!("{} has {file}, which no golden value describes", dir.display());
        }
    }
    Ok(())
}

#[test]
fn schema_version_1_still_decodes() -> Result<()> {
    check_version(1, &version_1())
}

#[test]
fn schema_version_2_still_decodes() -> Result<()> {
    check_version(2, &version_2())
}

#[tokio::test]
async fn schema_version_3_decodes() -> Result<()> {
    assert_eq!(codec::SCHEMA_VERSION, 3, "a new schema version needs its golden files and a test here");
    check_version(3, &version_3().await)
}

/// The golden file of each log record kind; the match is exhaustive, so a
/// new kind cannot be added without a golden record for it.
fn golden_name(record: &LogRecord) -> &'static str {
    match record {
        LogRecord::Posted { .. } => "event-posted",
        LogRecord::Offered { .. } => "event-offered",
        LogRecord::Declined { .. } => "event-declined",
        LogRecord::OfferExpired { .. } => "event-offer-expired",
        LogRecord::Accepted { .. } => "event-accepted",
        LogRecord::EnRoute { .. } => "event-en-route",
        LogRecord::Arriving { .. } => "event-arriving",
        LogRecord::OnSite { .. } => "event-on-site",
        LogRecord::Completed { .. } => "event-completed",
        LogRecord::Withdrawn { .. } => "event-withdrawn",
        LogRecord::Cancelled { .. } => "event-cancelled",
        LogRecord::Expired { .. } => "event-expired",
        LogRecord::Chat { .. } => "event-chat",
        LogRecord::Rated { .. } => "event-rated",
        LogRecord::PaymentCall(_) => "event-payment-call",
        LogRecord::Payment(_) => "event-payment",
    }
}

#[tokio::test]
async fn every_log_record_kind_has_a_golden_record() {
    for (version, goldens, kinds) in [(1, version_1(), 13), (2, version_2(), 14), (3, version_3().await, 16)] {
        let mut named = std::collections::BTreeSet::new();
        for golden in &goldens {
            if let Golden::Event(name, record) = golden {
                let kind = golden_name(record);
                // A kind's file is its name, or its name and what it holds.
                assert!(
                    *name == kind || name.strip_prefix(kind).is_some_and(|rest| rest.starts_with('-')),
                    "v{version}: {name} holds {kind}"
                );
                named.insert(kind);
            }
        }
        assert_eq!(named.len(), kinds, "v{version}: a record of every kind: {named:?}");
    }
}
