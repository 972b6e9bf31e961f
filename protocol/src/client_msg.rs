//! [`ClientMsg`]: what apps send, and the values inside it.

use dispatch_engine::{GeoPoint, Trade};
use serde::{Deserialize, Serialize};

/// Years in one trade, as a contractor registers them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TradeYears {
    /// The trade.
    pub trade: Trade,
    /// Years of experience.
    pub years: u8,
}

/// How soon a job is needed, on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UrgencyWire {
    /// As soon as possible.
    Emergency,
    /// Today.
    Today,
    /// Within a window, ms since the Unix epoch.
    Scheduled {
        /// Window start.
        start: i64,
        /// Window end.
        end: i64,
    },
}

/// How far along a contractor is with a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobProgress {
    /// Driving there.
    EnRoute,
    /// At the site.
    OnSite,
    /// Done.
    Completed,
}

/// A lat/lng box.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Viewport {
    /// Southern edge (latitude).
    pub south: f64,
    /// Western edge (longitude).
    pub west: f64,
    /// Northern edge (latitude).
    pub north: f64,
    /// Eastern edge (longitude).
    pub east: f64,
}

impl Viewport {
    /// `[south, west, north, east]`, if the box is real.
    pub fn bounds(&self) -> Result<[f64; 4], String> {
        GeoPoint::new(self.south, self.west).map_err(|e| e.to_string())?;
        GeoPoint::new(self.north, self.east).map_err(|e| e.to_string())?;
        if self.south > self.north || self.west > self.east {
            return Err("viewport: south must be <= north and west <= east".into());
        }
        Ok([self.south, self.west, self.north, self.east])
    }
}

/// A message from an app. Which role may send which is in `docs/protocol.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// Contractor: create or keep my profile (first connection).
    Register {
        /// Display name.
        name: String,
        /// Trades practised.
        trades: Vec<TradeYears>,
        /// Hourly rate, cents.
        hourly_rate: u64,
        /// How far I travel, metres.
        service_radius_m: f64,
    },
    /// Contractor: I am available at this position.
    Online {
        /// Latitude.
        lat: f64,
        /// Longitude.
        lng: f64,
    },
    /// Contractor: I stop for now.
    Offline {},
    /// Contractor: I pause (online, no offers).
    Break {},
    /// Contractor: a GPS fix (no ack, even with an id).
    Gps {
        /// Latitude.
        lat: f64,
        /// Longitude.
        lng: f64,
        /// Degrees from north.
        #[serde(default)]
        heading: Option<f64>,
        /// m/s.
        #[serde(default)]
        speed: Option<f64>,
        /// Metres.
        #[serde(default)]
        accuracy: Option<f64>,
        /// When the phone took it, ms since the Unix epoch.
        ts: i64,
    },
    /// Contractor: I take the job offered to me.
    Accept {
        /// The job.
        job: u64,
        /// Yours to choose (1 to 64 printable characters, unique per sender):
        /// a retry with the same id returns the first attempt's answer and is
        /// never carried out twice, even across a failover.
        #[serde(default)]
        request_id: Option<String>,
    },
    /// Contractor: I pass on the job offered to me.
    Decline {
        /// The job.
        job: u64,
    },
    /// Contractor: progress on my job.
    JobStatus {
        /// The job.
        job: u64,
        /// How far along.
        status: JobProgress,
    },
    /// Customer: post a job; acked with its id and price quote.
    PostJob {
        /// Trade needed.
        trade: Trade,
        /// Latitude of the site.
        lat: f64,
        /// Longitude of the site.
        lng: f64,
        /// How soon.
        urgency: UrgencyWire,
        /// What is wrong.
        description: String,
        /// Most I will pay, cents.
        #[serde(default)]
        budget: Option<u64>,
        /// Yours to choose (1 to 64 printable characters, unique per sender):
        /// a retry with the same id returns the first attempt's answer and is
        /// never carried out twice, even across a failover.
        #[serde(default)]
        request_id: Option<String>,
        /// The card to hold and charge: a payment method id at the card
        /// processor (the app's saved card); absent, Stripe's test Visa
        /// (`pm_card_visa`), which the sandbox and Stripe's test mode take.
        #[serde(default)]
        payment_method: Option<String>,
    },
    /// Customer (own job) or dispatcher: call a job off.
    Cancel {
        /// The job.
        job: u64,
        /// Why.
        #[serde(default)]
        reason: Option<String>,
    },
    /// Customer: follow my job (contractor position and ETA while it is active).
    Watch {
        /// The job.
        job: u64,
    },
    /// Customer: rate the contractor of my completed job, 0–5 stars.
    Rate {
        /// The job.
        job: u64,
        /// Stars.
        stars: f64,
        /// Yours to choose (1 to 64 printable characters, unique per sender):
        /// a retry with the same id returns the first attempt's answer and is
        /// never carried out twice, even across a failover.
        #[serde(default)]
        request_id: Option<String>,
    },
    /// Any participant: a chat message in the job's conversation.
    Chat {
        /// The job.
        job: u64,
        /// The message.
        text: String,
        /// Yours to choose (1 to 64 printable characters, unique per sender):
        /// a retry with the same id returns the first attempt's answer and is
        /// never carried out twice, even across a failover.
        #[serde(default)]
        request_id: Option<String>,
    },
    /// Any participant: everything logged for the job after `last_seq`.
    Resume {
        /// The job.
        job: u64,
        /// The last sequence number this device has.
        last_seq: u64,
    },
    /// Dispatcher: the live city feed (a snapshot, then deltas at most once a
    /// second), optionally only inside a viewport.
    Subscribe {
        /// The area to watch; the whole city if absent.
        #[serde(default)]
        viewport: Option<Viewport>,
    },
    /// Dispatcher: offer a job to this contractor, taking it back from whoever holds it.
    Assign {
        /// The job.
        job: u64,
        /// The contractor chosen.
        contractor: u64,
    },
    /// Dispatcher: the `k` contractors nearest a point (optionally of one
    /// trade, available only, within a radius); acked with them, nearest first.
    Nearby {
        /// Latitude.
        lat: f64,
        /// Longitude.
        lng: f64,
        /// How many, 1 to 100.
        k: usize,
        /// Only contractors of this trade.
        #[serde(default)]
        trade: Option<Trade>,
        /// Only available contractors.
        #[serde(default)]
        available_only: bool,
        /// Only within this many metres.
        #[serde(default)]
        radius_m: Option<f64>,
    },
    /// Anyone: liveness; answered with `pong`.
    Ping {},
    /// Customer: I completed the hold's authentication (3-D Secure) in the app.
    ConfirmPayment {
        /// The job.
        job: u64,
    },
    /// Contractor: the job needs more than quoted (materials, extra hours), before it is completed.
    ProposeExtras {
        /// The job.
        job: u64,
        /// How much more, cents.
        amount: u64,
        /// What for, for the customer.
        reason: String,
    },
    /// Customer: I approve the extras proposed.
    ApproveExtras {
        /// The job.
        job: u64,
    },
    /// Customer: I turn the extras down.
    RejectExtras {
        /// The job.
        job: u64,
    },
    /// Customer: I dispute the charge (within the dispute window after it).
    OpenDispute {
        /// The job.
        job: u64,
        /// Why.
        reason: String,
    },
    /// Dispatcher: give the customer `amount` back.
    Refund {
        /// The job.
        job: u64,
        /// How much, cents.
        amount: u64,
    },
    /// Dispatcher: settle the job's dispute, giving `refund` back and paying out the rest.
    ResolveDispute {
        /// The job.
        job: u64,
        /// How much goes back, cents (0: none).
        refund: u64,
    },
    /// Any participant: the job's payment as it stands (its receipt once charged).
    Payment {
        /// The job.
        job: u64,
    },
    /// Contractor: my earnings statement, a row per day.
    Earnings {},
    /// Customer: save this card (a payment method the app collected) for
    /// later holds — posts that name no card, a scheduled job's hold.
    SaveCard {
        /// The processor's payment method id.
        payment_method: String,
    },
    /// Customer: I completed the card's authentication (3-D Secure) in the app.
    ConfirmCard {},
    /// Customer: my card on file.
    Card {},
    /// Contractor: my payout account (made if I have none), with the link to finish onboarding while it is not ready.
    PayoutAccount {},
    /// Customer or contractor: how I want to be told of what happens while
    /// my app is not connected (webhook deliveries carry it to the senders).
    SetNotify {
        /// The channels, each once (none: not at all).
        channels: Vec<dispatch_engine::notify::Channel>,
        /// When only what cannot wait is sent, in my own time.
        #[serde(default)]
        quiet_hours: Option<dispatch_engine::notify::QuietHours>,
    },
}

/// The longest request id, characters.
pub const MAX_REQUEST_ID_CHARS: usize = 64;

impl ClientMsg {
    /// The request id, for the messages that take one (`post_job`, `accept`, `chat`, `rate`).
    #[must_use]
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ClientMsg::PostJob { request_id, .. }
            | ClientMsg::Accept { request_id, .. }
            | ClientMsg::Chat { request_id, .. }
            | ClientMsg::Rate { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// Every message type, as `type` names it on the wire.
    pub const KINDS: [&'static str; 32] = [
        "register",
        "online",
        "offline",
        "break",
        "gps",
        "accept",
        "decline",
        "job_status",
        "post_job",
        "cancel",
        "watch",
        "rate",
        "chat",
        "resume",
        "subscribe",
        "assign",
        "nearby",
        "ping",
        "confirm_payment",
        "propose_extras",
        "approve_extras",
        "reject_extras",
        "open_dispute",
        "refund",
        "resolve_dispute",
        "payment",
        "earnings",
        "save_card",
        "confirm_card",
        "card",
        "payout_account",
        "set_notify",
    ];

    /// This message's `type` on the wire.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            ClientMsg::Register { .. } => "register",
            ClientMsg::Online { .. } => "online",
            ClientMsg::Offline {} => "offline",
            ClientMsg::Break {} => "break",
            ClientMsg::Gps { .. } => "gps",
            ClientMsg::Accept { .. } => "accept",
            ClientMsg::Decline { .. } => "decline",
            ClientMsg::JobStatus { .. } => "job_status",
            ClientMsg::PostJob { .. } => "post_job",
            ClientMsg::Cancel { .. } => "cancel",
            ClientMsg::Watch { .. } => "watch",
            ClientMsg::Rate { .. } => "rate",
            ClientMsg::Chat { .. } => "chat",
            ClientMsg::Resume { .. } => "resume",
            ClientMsg::Subscribe { .. } => "subscribe",
            ClientMsg::Assign { .. } => "assign",
            ClientMsg::Nearby { .. } => "nearby",
            ClientMsg::Ping {} => "ping",
            ClientMsg::ConfirmPayment { .. } => "confirm_payment",
            ClientMsg::ProposeExtras { .. } => "propose_extras",
            ClientMsg::ApproveExtras { .. } => "approve_extras",
            ClientMsg::RejectExtras { .. } => "reject_extras",
            ClientMsg::OpenDispute { .. } => "open_dispute",
            ClientMsg::Refund { .. } => "refund",
            ClientMsg::ResolveDispute { .. } => "resolve_dispute",
            ClientMsg::Payment { .. } => "payment",
            ClientMsg::Earnings {} => "earnings",
            ClientMsg::SaveCard { .. } => "save_card",
            ClientMsg::ConfirmCard {} => "confirm_card",
            ClientMsg::Card {} => "card",
            ClientMsg::PayoutAccount {} => "payout_account",
            ClientMsg::SetNotify { .. } => "set_notify",
        }
    }
}
