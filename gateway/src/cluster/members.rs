//! Which engines are alive, from their heartbeats on NATS: each engine
//! publishes one every second; one not heard for [`SILENCE`] (or that said it
//! is leaving) is out of placement. This view only decides where cities
//! *should* go: who owns a city is decided by its lease alone, so two nodes
//! disagreeing for a moment cost a retry, never a second owner.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_nats::Client;
use futures_util::StreamExt;
use tokio::time::Instant;

use super::wire::{self, HEARTBEAT, Heartbeat};

/// How often an engine says it is alive.
pub(crate) const BEAT: Duration = Duration::from_secs(1);

/// How long without a heartbeat before an engine counts as gone.
pub(crate) const SILENCE: Duration = Duration::from_secs(3);

/// The live engines as this node hears them.
pub(crate) struct Members {
    me: String,
    nats: Client,
    heard: Mutex<HashMap<String, Instant>>,
    leaving: std::sync::atomic::AtomicBool,
}

impl Members {
    /// Starts hearing heartbeats and sending this node's own.
    pub(crate) async fn start(nats: Client, me: &str) -> anyhow::Result<Arc<Members>> {
        let members = Arc::new(Members { me: me.to_owned(), nats: nats.clone(), heard: Mutex::new(HashMap::new()), leaving: false.into() });
        let mut beats = nats.subscribe(HEARTBEAT).await?;
        let weak = Arc::downgrade(&members);
        tokio::spawn(async move {
            while let Some(msg) = beats.next().await {
                let Some(members) = weak.upgrade() else { break };
                if let Ok(beat) = wire::decode::<Heartbeat>(&msg.payload) {
                    members.hear(beat, Instant::now());
                }
            }
        });
        let weak = Arc::downgrade(&members);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(BEAT);
            loop {
                tick.tick().await;
                let Some(members) = weak.upgrade() else { break };
                let beat = Heartbeat { node: members.me.clone(), leaving: members.leaving.load(std::sync::atomic::Ordering::Relaxed) };
                let _ = nats.publish(HEARTBEAT, wire::encode(&beat)).await;
            }
        });
        Ok(members)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.heard.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn hear(&self, beat: Heartbeat, at: Instant) {
        if beat.leaving {
            self.lock().remove(&beat.node);
        } else {
            self.lock().insert(beat.node, at);
        }
    }

    /// This node is shutting down: it leaves placement at once, and tells the
    /// others now (not at the next beat), so they take its cities as it lets them go.
    pub(crate) async fn leave(&self) {
        self.leaving.store(true, std::sync::atomic::Ordering::Relaxed);
        let beat = Heartbeat { node: self.me.clone(), leaving: true };
        let _ = self.nats.publish(HEARTBEAT, wire::encode(&beat)).await;
        let _ = self.nats.flush().await;
    }

    /// The engines heard within [`SILENCE`], this one included unless it is leaving.
    #[must_use]
    pub(crate) fn live(&self) -> BTreeSet<String> {
        let now = Instant::now();
        let mut live: BTreeSet<String> =
            self.lock().iter().filter(|(_, at)| now.duration_since(**at) < SILENCE).map(|(node, _)| node.clone()).collect();
        if self.leaving.load(std::sync::atomic::Ordering::Relaxed) {
            live.remove(&self.me);
        } else {
            live.insert(self.me.clone());
        }
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn silent_or_leaving_engines_drop_out() {
        let heard = Mutex::new(HashMap::new());
        let members = Members { me: "a".into(), nats: disconnected().await, heard, leaving: false.into() };
        members.hear(Heartbeat { node: "b".into(), leaving: false }, Instant::now());
        members.hear(Heartbeat { node: "c".into(), leaving: false }, Instant::now());
        assert_eq!(members.live().into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
        members.hear(Heartbeat { node: "c".into(), leaving: true }, Instant::now());
        assert_eq!(members.live().into_iter().collect::<Vec<_>>(), ["a", "b"]);
        tokio::time::advance(SILENCE).await;
        assert_eq!(members.live().into_iter().collect::<Vec<_>>(), ["a"]);
        members.leaving.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(members.live().is_empty());
    }

    /// A client that never connects (nothing listens on port 1): publishing only queues.
    async fn disconnected() -> Client {
        async_nats::ConnectOptions::new().retry_on_initial_connect().connect("nats://127.0.0.1:1").await.expect("a client")
    }
}
