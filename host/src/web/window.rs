//! One connected window, and how the core pushes events and channel data to it.
//!
//! Each connection has one outgoing queue, written by a single task, so what is pushed to a
//! window arrives in the order it was pushed (replies, events and channel data alike). The queue
//! is bounded in bytes: [`Window::emit`] and [`Window::send`] wait for room (a slow page slows its
//! producer down), [`Window::try_emit`] and [`Window::try_send`] refuse with [`PushError::Full`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::Message as WsMessage;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use super::frame;
use crate::message::Body;

/// A handle on a channel the page created (`new Channel()` in `airlock.js`) and passed in a
/// command's args, where it appears as `{"__airlock_channel": 7}`; deserialize it as part of the
/// args, then [`Window::send`] data to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
pub struct ChannelRef {
    /// The page's id for the channel.
    #[serde(rename = "__airlock_channel")]
    pub id: u64,
}

/// Why a push to a window did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The window's outgoing queue has no room (only from the `try_` methods).
    #[error("the outgoing queue of window {label:?} is full ({bytes} bytes queued at most)")]
    Full {
        /// The window.
        label: String,
        /// The queue's bound, in bytes.
        bytes: usize,
    },
    /// The window's connection is closed.
    #[error("window {label:?} is disconnected")]
    Closed {
        /// The window.
        label: String,
    },
    /// A JSON payload that does not parse.
    #[error("payload for window {label:?} is not valid JSON: {message}")]
    InvalidJson {
        /// The window.
        label: String,
        /// What serde said.
        message: String,
    },
}

pub(crate) enum Outgoing {
    /// A frame to write; the permit holds its room in the queue.
    Frame(WsMessage, OwnedSemaphorePermit),
    Close(u16, String),
}

/// The bytes `frame` takes in a window's queue.
fn queued_len(frame: &WsMessage) -> usize {
    let len = match frame {
        WsMessage::Text(t) => t.len(),
        WsMessage::Binary(b) => b.len(),
        _ => 0,
    };
    len + FRAME_OVERHEAD
}

/// One connected page. Cheap to clone; pushes to a closed window fail with
/// [`PushError::Closed`].
#[derive(Clone)]
pub struct Window {
    label: Arc<str>,
    /// This connection's number, unique in the process.
    pub(super) connection: u64,
    tx: mpsc::UnboundedSender<Outgoing>,
    room: Arc<Semaphore>,
    queue_bytes: usize,
    dropped: Arc<AtomicU64>,
}

tokio::task_local! {
    /// The window whose message is being handled, set by the web gateway around each message.
    static CURRENT: Window;
}

impl fmt::Debug for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Window")
            .field("label", &self.label)
            .field("connection", &self.connection)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Every frame counts at least this much against the queue, so the queue also bounds how many
/// small frames can wait.
const FRAME_OVERHEAD: usize = 64;

impl Window {
    pub(crate) fn new(
        label: &str,
        queue_bytes: usize,
        dropped: Arc<AtomicU64>,
    ) -> (Window, mpsc::UnboundedReceiver<Outgoing>) {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let queue_bytes = queue_bytes.clamp(FRAME_OVERHEAD, Semaphore::MAX_PERMITS);
        let (tx, rx) = mpsc::unbounded_channel();
        let window = Window {
            label: label.into(),
            connection: NEXT.fetch_add(1, Ordering::Relaxed),
            tx,
            room: Arc::new(Semaphore::new(queue_bytes)),
            queue_bytes,
            dropped,
        };
        (window, rx)
    }

    /// The connection that sent the message being handled, in a core handler the web gateway
    /// runs (also in the futures it awaits; not in tasks it spawns, which should take it
    /// along). Pushes to it reach that page or fail: they never reach another page that later
    /// holds the same label.
    pub fn current() -> Option<Window> {
        CURRENT.try_with(Window::clone).ok()
    }

    /// Runs `future` with this window as [`Window::current`].
    pub(crate) async fn scope<F: std::future::Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    /// The window's label, from its handshake.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Whether the connection is gone.
    pub fn is_closed(&self) -> bool {
        self.room.is_closed() || self.tx.is_closed()
    }

    /// Sends event `name` with `payload` to the page's `listen(name, …)` handlers, waiting for
    /// room in the queue.
    pub async fn emit(&self, name: &str, payload: Body) -> Result<(), PushError> {
        let frame = self.event_frame(name, &payload)?;
        self.push(frame).await
    }

    /// [`Window::emit`], refusing with [`PushError::Full`] instead of waiting.
    pub fn try_emit(&self, name: &str, payload: Body) -> Result<(), PushError> {
        let frame = self.event_frame(name, &payload)?;
        self.try_push(frame)
    }

    /// Sends `data` to the page's channel, waiting for room in the queue.
    pub async fn send(&self, channel: ChannelRef, data: Body) -> Result<(), PushError> {
        let frame = self.channel_frame(channel, &data)?;
        self.push(frame).await
    }

    /// [`Window::send`], refusing with [`PushError::Full`] instead of waiting.
    pub fn try_send(&self, channel: ChannelRef, data: Body) -> Result<(), PushError> {
        let frame = self.channel_frame(channel, &data)?;
        self.try_push(frame)
    }

    fn check(&self, payload: &Body) -> Result<(), PushError> {
        if let Body::Json(text) = payload {
            serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| {
                PushError::InvalidJson {
                    label: self.label.to_string(),
                    message: e.to_string(),
                }
            })?;
        }
        Ok(())
    }

    fn event_frame(&self, name: &str, payload: &Body) -> Result<WsMessage, PushError> {
        self.check(payload)?;
        Ok(frame::event(name, payload))
    }

    fn channel_frame(&self, channel: ChannelRef, data: &Body) -> Result<WsMessage, PushError> {
        self.check(data)?;
        Ok(frame::channel(channel.id, data))
    }

    fn cost(&self, frame: &WsMessage) -> u32 {
        // Clamped to the whole queue: a frame larger than the queue waits until it is empty.
        queued_len(frame).min(self.queue_bytes) as u32
    }

    fn closed(&self) -> PushError {
        self.dropped.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(window = %self.label, "push to a closed window dropped");
        PushError::Closed {
            label: self.label.to_string(),
        }
    }

    /// Queues `frame`, waiting for room.
    pub(crate) async fn push(&self, frame: WsMessage) -> Result<(), PushError> {
        let permit = self
            .room
            .clone()
            .acquire_many_owned(self.cost(&frame))
            .await
            .map_err(|_| self.closed())?;
        self.tx
            .send(Outgoing::Frame(frame, permit))
            .map_err(|_| self.closed())
    }

    pub(crate) fn try_push(&self, frame: WsMessage) -> Result<(), PushError> {
        let permit = match self.room.clone().try_acquire_many_owned(self.cost(&frame)) {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::Closed) => return Err(self.closed()),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                return Err(PushError::Full {
                    label: self.label.to_string(),
                    bytes: self.queue_bytes,
                });
            }
        };
        self.tx
            .send(Outgoing::Frame(frame, permit))
            .map_err(|_| self.closed())
    }

    /// Ends the connection: nothing more is queued, and the writer sends a close frame.
    pub(crate) fn close(&self, code: u16, reason: String) {
        self.room.close();
        let _ = self.tx.send(Outgoing::Close(code, reason));
    }

    /// Refuses every push from now on, waking those waiting for room (the socket is gone).
    pub(crate) fn refuse_pushes(&self) {
        self.room.close();
    }
}
