//! Frames out: the bounded queue to the socket, the writer task, and how a
//! session queues, encodes and closes.
//!
//! Outbound frames go through a bounded queue to a writer task; a reader too
//! slow to drain it is closed with 1008 rather than let memory grow.

use std::time::Duration;

use futures_util::{Sink, SinkExt};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use dispatch_actors::Clock;
use dispatch_engine::Timestamp;

use super::{Session, counters};
use crate::protocol::{ErrorCode, ServerMsg, encode_server, encode_server_binary};

/// A frame on its way to the socket; offers carry their job's posting time.
/// Boxed: the queue allocates its slots 32 at a time, and 32 boxes cost an
/// idle connection 256 bytes where 32 frames would cost 2.3 KiB.
pub(super) type Outbound = Box<(Message, Option<Timestamp>)>;

/// Writes queued frames to `sink` until the queue closes or `abort` sends a
/// close frame (written, then the socket is closed). Match latency (job
/// posted → offer written to the contractor's socket) is recorded here,
/// against `clock`, the city's clock that stamped the posting time.
pub(super) fn spawn_writer<S>(
    mut sink: S,
    mut queue: mpsc::Receiver<Outbound>,
    mut abort: oneshot::Receiver<CloseFrame>,
    clock: Clock,
) -> tokio::task::JoinHandle<()>
where
    S: Sink<Message> + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                biased;
                frame = &mut abort => {
                    if let Ok(frame) = frame {
                        let _ = sink.send(Message::Close(Some(frame))).await;
                    }
                    break;
                }
                msg = queue.recv() => match msg {
                    Some(queued) => {
                        let (frame, posted_at) = *queued;
                        if sink.send(frame).await.is_err() {
                            break;
                        }
                        if let Some(posted_at) = posted_at {
                            metrics::histogram!("dispatch_offer_latency_seconds").record(clock.now().secs_since(posted_at).max(0.0));
                        }
                    }
                    None => break,
                },
            }
        }
        // Give the peer a moment to answer the close handshake, no more.
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
    })
}

impl Session {
    /// Encodes a frame in the client's format.
    pub(super) fn frame(&self, msg: &ServerMsg) -> Option<Message> {
        Some(if self.binary {
            match encode_server_binary(msg) {
                Ok(bytes) => Message::binary(bytes),
                Err(e) => {
                    tracing::error!(%e, "a server message did not encode");
                    return None;
                }
            }
        } else {
            Message::text(encode_server(msg))
        })
    }

    /// Queues a reply that is part of a burst the client asked for (a
    /// `resume` replay): waits for room, since the client is reading its own
    /// answer, but not for ever — a reader stuck for 10 s is closed with 1008.
    pub(super) async fn send_waiting(&mut self, msg: &ServerMsg) {
        let Some(frame) = self.frame(msg).filter(|_| !self.closing) else { return };
        if self.out.send_timeout(Box::new((frame, None)), Duration::from_secs(10)).await.is_err() {
            metrics::counter!("dispatch_ws_closed_slow_reader_total").increment(1);
            self.close(CloseCode::Policy, "outbound queue full: reading too slowly");
        } else {
            counters::MESSAGES_OUT.increment(msg.kind());
        }
    }

    /// Queues a frame without waiting; a full queue means a reader too slow to
    /// keep up with the city's events: close with 1008.
    pub(super) fn send(&mut self, msg: &ServerMsg) {
        self.send_stamped(msg, None);
    }

    /// [`Self::send`], stamping an offer with its job's posting time.
    pub(super) fn send_stamped(&mut self, msg: &ServerMsg, posted_at: Option<Timestamp>) {
        if self.closing {
            return;
        }
        let kind = msg.kind();
        let Some(frame) = self.frame(msg) else { return };
        match self.out.try_send(Box::new((frame, posted_at))) {
            Ok(()) => {
                counters::MESSAGES_OUT.increment(kind);
                let depth = self.out.max_capacity() - self.out.capacity();
                counters::OUTBOUND_DEPTH.set(depth as f64);
            }
            Err(_) => {
                metrics::counter!("dispatch_ws_closed_slow_reader_total").increment(1);
                self.close(CloseCode::Policy, "outbound queue full: reading too slowly");
            }
        }
    }

    pub(super) fn close(&mut self, code: CloseCode, reason: &str) {
        self.closing = true;
        if let Some(abort) = self.abort.take() {
            let _ = abort.send(CloseFrame { code, reason: reason.to_owned().into() });
        }
    }

    pub(super) fn error(&mut self, id: Option<String>, code: ErrorCode, message: String) {
        metrics::counter!("dispatch_ws_errors_total", "code" => code.as_str()).increment(1);
        self.send(&ServerMsg::Error { id, code, message });
    }
}
