//! `chat`: the customer and contractor of matched jobs talk, open loop at
//! `chats_per_sec` across all pairs. Every `reconnect_every_secs` one
//! contractor (in turn) drops its socket, reconnects and sends `resume`.
//!
//! - `chat_delivery`: from a message's due time to the other party reading it.
//! - `resume`: from sending `resume` to its ack (the replay is complete).
//! - Every message the server acknowledged must reach the other party, live
//!   or replayed: each one missing at the end is a `chat lost` error.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use dispatch_engine::Party;
use dispatch_protocol::{AckResult, Event, ServerMsg};
use futures_util::SinkExt;
use tokio::sync::mpsc;

use dispatch_protocol::Role;
use dispatch_protocol::{ClientMsg, UrgencyWire};

use super::{Ctx, Rng, register_online};
use crate::net::{Ws, call, error_kind, next_msg, text};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One side's view of its job's conversation.
#[derive(Default)]
struct Inbox {
    /// Sequence numbers of the other side's acknowledged messages.
    expected: Mutex<BTreeSet<u64>>,
    /// Sequence numbers of chat events read.
    got: Mutex<BTreeSet<u64>>,
}

/// A matched job, its two parties' sockets, and their inboxes.
struct Pair {
    job: u64,
    contractor_id: u64,
    customer: Ws,
    contractor: Ws,
}

/// Matches one job per pair: the contractor goes online where the customer
/// then posts, so it is the nearest one free, and accepts the offer.
async fn match_pair(ctx: &Arc<Ctx>, i: usize) -> Result<Pair> {
    let mut rng = Rng::new(i as u64 + 77);
    let at = ctx.random_point(&mut rng);
    let contractor_id = ctx.id_base + i as u64;
    let mut contractor = ctx.connector.connect(Role::Contractor, contractor_id).await?;
    register_online(&mut contractor, at, &super::TRADES).await?;
    let mut customer = ctx.connector.connect(Role::Customer, ctx.id_base + i as u64).await?;
    let post = ClientMsg::PostJob {
        trade: super::TRADES[0],
        lat: at.lat(),
        lng: at.lng(),
        urgency: UrgencyWire::Emergency,
        description: format!("chat pair {i}"),
        budget: None,
        request_id: None,
        payment_method: None,
    };
    let AckResult::Posted(posted) = call(&mut customer, "post", &post).await? else { anyhow::bail!("post_job acked without a job") };
    let job = posted.job;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let msg = tokio::time::timeout_at(deadline, next_msg(&mut contractor))
            .await
            .context("no offer within 20 s")??
            .context("contractor socket closed before the offer")?;
        if let ServerMsg::Offer { job: offered, .. } = msg {
            anyhow::ensure!(offered == job, "pair {i}: offered job {offered} instead of {job}");
            break;
        }
    }
    call(&mut contractor, "accept", &ClientMsg::Accept { job, request_id: None }).await?;
    Ok(Pair { job, contractor_id, customer, contractor })
}

/// Runs the `chat` scenario.
pub(crate) async fn run(ctx: &Arc<Ctx>) -> Result<()> {
    // Pairs are matched one at a time: each contractor is then the only free one at its job.
    let mut pairs = Vec::new();
    for i in 0..ctx.config.chat_pairs {
        match match_pair(ctx, i).await {
            Ok(pair) => pairs.push(pair),
            Err(e) => ctx.recorder.error(format!("matching a pair: {}", super::first_line(&e))),
        }
    }
    anyhow::ensure!(!pairs.is_empty(), "no chat pair could be matched");
    ctx.begin();
    let due: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let mut senders = Vec::new();
    let mut tasks = Vec::new();
    let mut inboxes = Vec::new();
    let count = pairs.len();
    for (p, pair) in pairs.into_iter().enumerate() {
        let (customer_in, contractor_in) = (Arc::new(Inbox::default()), Arc::new(Inbox::default()));
        let (customer_tx, customer_rx) = mpsc::unbounded_channel();
        let (contractor_tx, contractor_rx) = mpsc::unbounded_channel();
        let reconnect = (ctx.config.reconnect_every_secs > 0.0).then(|| {
            let period = Duration::from_secs_f64(ctx.config.reconnect_every_secs);
            // One contractor after another: contractor p first reconnects at (p + 1) periods.
            (period * u32::try_from(count).unwrap_or(u32::MAX), period * u32::try_from(p + 1).unwrap_or(u32::MAX))
        });
        let side = |role, id, ws, me: &Arc<Inbox>, other: &Arc<Inbox>, rx, reconnect| Side {
            ctx: Arc::clone(ctx),
            due: Arc::clone(&due),
            role,
            id,
            job: pair.job,
            me: Arc::clone(me),
            other: Arc::clone(other),
            commands: rx,
            reconnect,
            ws,
        };
        tasks.push(tokio::spawn(side(Role::Customer, 0, pair.customer, &customer_in, &contractor_in, customer_rx, None).run()));
        tasks.push(tokio::spawn(
            side(Role::Contractor, pair.contractor_id, pair.contractor, &contractor_in, &customer_in, contractor_rx, reconnect).run(),
        ));
        senders.push((customer_tx, contractor_tx));
        inboxes.push((customer_in, contractor_in));
    }
    // The schedule: message m goes to pair m % count, from alternating sides.
    let mut pacer = ctx.pacer(ctx.config.chats_per_sec);
    for m in 0u64.. {
        let Some(at) = pacer.due(m).await else { break };
        lock(&due).insert(m, at);
        let (customer, contractor) = &senders[(m % count as u64) as usize];
        let to = if (m / count as u64).is_multiple_of(2) { customer } else { contractor };
        let _ = to.send(m);
    }
    drop(senders);
    for task in tasks {
        let _ = task.await;
    }
    let mut lost = 0;
    for (customer, contractor) in &inboxes {
        for inbox in [customer, contractor] {
            let got = lock(&inbox.got);
            lost += lock(&inbox.expected).iter().filter(|seq| !got.contains(seq)).count();
        }
    }
    for _ in 0..lost {
        ctx.recorder.error("chat lost: acknowledged but never delivered");
    }
    Ok(())
}

/// One party of a pair: sends its scheduled messages, reads the other's.
struct Side {
    ctx: Arc<Ctx>,
    due: Arc<Mutex<HashMap<u64, Instant>>>,
    role: Role,
    id: u64,
    job: u64,
    me: Arc<Inbox>,
    other: Arc<Inbox>,
    commands: mpsc::UnboundedReceiver<u64>,
    /// Contractors: reconnect every `.0`, first after `.1`.
    reconnect: Option<(Duration, Duration)>,
    ws: Ws,
}

impl Side {
    async fn run(mut self) {
        let delivery = self.ctx.recorder.series("chat_delivery");
        let sent = self.ctx.recorder.counter("chats_sent");
        let mut next_reconnect = self.reconnect.map(|(_, first)| tokio::time::Instant::now() + first);
        let stop = self.ctx.stopped();
        tokio::pin!(stop);
        let mut open = true;
        while open {
            tokio::select! {
                () = &mut stop => open = false,
                m = self.commands.recv() => match m {
                    None => open = false,
                    Some(m) => {
                        let msg = ClientMsg::Chat { job: self.job, text: format!("m{m}"), request_id: None };
                        let sent_ok = match text(Some(&format!("c{m}")), &msg) {
                            Ok(f) => self.ws.send(f).await.is_ok(),
                            Err(_) => false,
                        };
                        if sent_ok {
                            sent.fetch_add(1, Ordering::Relaxed);
                        } else {
                            self.ctx.recorder.error("chat: send failed");
                        }
                    }
                },
                () = async { match next_reconnect { Some(at) => tokio::time::sleep_until(at).await, None => std::future::pending().await } } => {
                    if let Err(e) = self.reconnect_and_resume().await {
                        self.ctx.recorder.error(format!("resume: {}", super::first_line(&e)));
                        return;
                    }
                    next_reconnect = self.reconnect.and_then(|(every, _)| next_reconnect.map(|t| t + every));
                }
                msg = next_msg(&mut self.ws) => match msg {
                    Ok(Some(v)) => self.read(&v, Some(&delivery)),
                    Ok(None) | Err(_) if self.ctx.is_stopped() => open = false,
                    Ok(None) => { self.ctx.recorder.error("chat: socket closed"); return; }
                    Err(e) => { self.ctx.recorder.error(format!("chat: {}", super::first_line(&e))); return; }
                },
            }
        }
        // Read what is still on its way for a moment, then leave.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while let Ok(Ok(Some(v))) = tokio::time::timeout_at(deadline, next_msg(&mut self.ws)).await {
            self.read(&v, Some(&delivery));
        }
        let _ = self.ws.close(None).await;
    }

    /// Handles one frame: chat events in, acks of our messages, errors.
    fn read(&self, msg: &ServerMsg, delivery: Option<&crate::stats::Series>) {
        match msg {
            ServerMsg::Event { job, seq, event: Event::Chat { party, text, .. }, .. } if *job == self.job => {
                let fresh = lock(&self.me.got).insert(*seq);
                let m = text.strip_prefix('m').and_then(|t| t.parse::<u64>().ok());
                let mine = *party == if self.role == Role::Customer { Party::Customer } else { Party::Contractor };
                if !fresh {
                    self.ctx.recorder.counter("chat_duplicates_dropped").fetch_add(1, Ordering::Relaxed);
                } else if !mine && let (Some(m), Some(delivery)) = (m, delivery) {
                    if let Some(due) = lock(&self.due).get(&m) {
                        delivery.since(*due);
                    }
                } else if !mine {
                    self.ctx.recorder.counter("chats_replayed").fetch_add(1, Ordering::Relaxed);
                }
            }
            ServerMsg::Ack { id: Some(id), result: AckResult::ChatAcked(acked) } if id.starts_with('c') => {
                lock(&self.other.expected).insert(acked.seq);
            }
            ServerMsg::Error { code, message, .. } => self.ctx.recorder.error(format!("chat: {}", error_kind(*code, message))),
            _ => {}
        }
    }

    /// Drops the socket, connects again and replays what was missed.
    async fn reconnect_and_resume(&mut self) -> Result<()> {
        let _ = self.ws.close(None).await;
        // Messages sent meanwhile reach only the log.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.ws = self.ctx.connector.connect(self.role, self.id).await?;
        let last_seq = lock(&self.me.got).iter().next_back().copied().unwrap_or(0);
        let asked = Instant::now();
        let resume = ClientMsg::Resume { job: self.job, last_seq };
        self.ws.send(text(Some("resume"), &resume)?).await?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let v = tokio::time::timeout_at(deadline, next_msg(&mut self.ws))
                .await
                .context("no resume ack within 30 s")??
                .context("socket closed during resume")?;
            match &v {
                ServerMsg::Ack { id: Some(id), .. } if id == "resume" => {
                    self.ctx.recorder.series("resume").since(asked);
                    self.ctx.recorder.counter("resumes").fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                ServerMsg::Error { id: Some(id), code, message } if id == "resume" => {
                    anyhow::bail!("resume refused: {}", error_kind(*code, message))
                }
                _ => {}
            }
            // Replayed events (and any live ones) arrive before the ack.
            self.read(&v, None);
        }
    }
}
