//! One window's connection: its frames read, rate-limited and answered, its requests driven
//! through the gateway (commands side by side, events and channel messages in order, each
//! announced upload awaited in its place), pings, and what happens to its requests in flight when
//! it closes.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::ws::{Message as WsMessage, WebSocket};
use futures_util::StreamExt as _;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;

use super::uploads::Uploads;
use super::window::Outgoing;
use super::writer::write;
use super::{Shared, Window, code, frame, spin};
use crate::gateway::Reply;
use crate::message::{Kind, Source};
use crate::verdict::Rejection;

/// A token bucket: `burst` tokens, refilled at `rate` a second.
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: f64, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Bucket {
            rate,
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.tokens = (self.tokens + refill).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// A refusal made by the WebSocket gateway itself, as a reply.
fn refused(rejection: Rejection) -> Reply {
    Reply::refused(0, rejection)
}

/// Sends the reply for request `id` (a refusal notice when the frame named none), carrying its
/// verdict when verdicts are reported: one frame.
async fn answer(
    shared: &Shared,
    window: &Window,
    id: Option<u64>,
    seq: u64,
    kind: Kind,
    name: &str,
    reply: Reply,
) {
    let verdict = shared
        .options
        .report_verdicts
        .then(|| frame::Verdict::new(id, seq, kind, name, &reply));
    let frame = match (id, &reply.outcome) {
        (Some(id), outcome) => frame::reply(id, outcome, verdict.as_ref()),
        (None, Err(rejection)) => frame::rejected(None, rejection, verdict.as_ref()),
        // A frame that names no request is always refused.
        (None, Ok(_)) => return,
    };
    if let Err(e) = window.push(frame).await {
        tracing::debug!(message = reply.id, "reply not delivered: {e}");
    }
}

/// One request on its way through the gateway to its answer.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

fn job(
    shared: &Arc<Shared>,
    window: &Window,
    source: &Source,
    uploads: &Arc<Uploads>,
    seq: u64,
    incoming: frame::Incoming,
) -> Job {
    let (shared, window, source) = (shared.clone(), window.clone(), source.clone());
    let uploads = uploads.clone();
    Box::pin(async move {
        let (kind, name) = (incoming.request.kind, incoming.request.name.clone());
        let incoming = match uploaded(&shared, &uploads, incoming).await {
            Ok(incoming) => incoming,
            Err((id, rejection)) => {
                answer(&shared, &window, id, seq, kind, &name, refused(rejection)).await;
                return;
            }
        };
        // The core's handlers find the connection that sent the message with Window::current.
        let handled = shared.gateway.handle(source, incoming.request);
        let reply = window.clone().scope(handled).await;
        answer(&shared, &window, Some(incoming.id), seq, kind, &name, reply).await;
    })
}

/// The request with its body: `incoming` itself, or, when its frame announced an upload, the
/// uploaded frame once it has arrived and proved to be that request.
async fn uploaded(
    shared: &Shared,
    uploads: &Uploads,
    incoming: frame::Incoming,
) -> Result<frame::Incoming, (Option<u64>, Rejection)> {
    if !incoming.upload {
        return Ok(incoming);
    }
    let id = Some(incoming.id);
    let body = uploads
        .take(incoming.id, shared.options.upload_timeout)
        .await
        .map_err(|rejection| (id, rejection))?;
    frame::parse_upload(&body, &incoming)
        .map_err(|e| (id, Rejection::new(code::INVALID_FRAME, e.reason)))
}

/// A refusal by the WebSocket gateway itself, answered as a job.
fn refusal(
    shared: &Arc<Shared>,
    window: &Window,
    id: Option<u64>,
    seq: u64,
    kind: Kind,
    name: String,
    rejection: Rejection,
) -> Job {
    let (shared, window) = (shared.clone(), window.clone());
    Box::pin(
        async move { answer(&shared, &window, id, seq, kind, &name, refused(rejection)).await },
    )
}

/// A connection's requests in flight, driven by the connection's own task (no task per message):
/// commands side by side, events and channel messages one after another in the order read.
#[derive(Default)]
struct InFlight {
    commands: FuturesUnordered<Job>,
    lane: VecDeque<Job>,
}

impl InFlight {
    fn len(&self) -> usize {
        self.commands.len() + self.lane.len()
    }

    /// Drives every job; ready when none is left.
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while let Poll::Ready(Some(())) = self.commands.poll_next_unpin(cx) {}
        while let Some(job) = self.lane.front_mut() {
            match job.as_mut().poll(cx) {
                Poll::Ready(()) => drop(self.lane.pop_front()),
                Poll::Pending => break,
            }
        }
        match self.len() {
            0 => Poll::Ready(()),
            _ => Poll::Pending,
        }
    }
}

pub(super) async fn connection(
    shared: Arc<Shared>,
    socket: WebSocket,
    window: Window,
    rx: mpsc::UnboundedReceiver<Outgoing>,
    source: Source,
    uploads: Arc<Uploads>,
) {
    let (sink, mut stream) = socket.split();
    let options = &shared.options;
    let mut writer = tokio::spawn(write(sink, rx, window.clone(), options.stall_timeout));
    let mut writer_done = false;
    if window
        .push(frame::welcome(
            &source.window,
            &source.webview,
            shared.gateway.limits().max_message_bytes,
        ))
        .await
        .is_err()
    {
        return;
    }
    let mut bucket = Bucket::new(options.messages_per_second, options.burst);
    let ping_every = options.ping_interval.max(Duration::from_millis(10));
    let (mut heard, mut pinged) = (tokio::time::Instant::now(), false);
    // One timer for the connection's life, moved on only when it fires: arming a timer per
    // frame took the runtime's timer lock, and at times woke the worker parked on the I/O
    // driver, for every message.
    let silent = tokio::time::sleep_until(heard + ping_every);
    tokio::pin!(silent);
    let limit = options.in_flight.max(1);
    let mut in_flight = InFlight::default();
    // The connection's own count of the messages it sent, for the verdicts its replies carry.
    let mut seq = 0u64;
    let (close_code, close_reason) = loop {
        // The next frame, once fewer than `limit` requests are in flight; meanwhile, and while
        // waiting, the requests in flight make progress.
        // A page that does not read its replies holds at most `limit` of them waiting, and is
        // closed when its writer stalls (`stall_timeout`).
        let next = poll_fn(|cx| {
            let _ = in_flight.poll(cx);
            match in_flight.len() < limit {
                true => stream.poll_next_unpin(cx),
                false => Poll::Pending,
            }
        });
        let next = tokio::select! {
            next = next => next,
            () = &mut silent => {
                let silence = if pinged { 2 * ping_every } else { ping_every };
                if tokio::time::Instant::now() < heard + silence {
                    // A frame came since the timer was set.
                    silent.as_mut().reset(heard + silence);
                    continue;
                }
                if pinged {
                    break (
                        1001,
                        format!("no frame, not even a pong, for {:?}", 2 * ping_every),
                    );
                }
                pinged = true;
                let _ = window.try_push(WsMessage::Ping(Default::default()));
                silent.as_mut().reset(heard + 2 * ping_every);
                continue;
            }
            _ = &mut writer, if !writer_done => {
                writer_done = true;
                break (1008, "the page stopped reading what was sent to it".to_owned());
            }
        };
        (heard, pinged) = (tokio::time::Instant::now(), false);
        spin::read();
        let parsed = match next {
            None => break (1000, String::new()),
            Some(Err(e)) => {
                let text = e.to_string();
                tracing::info!(window = %source.window, "connection error: {text}");
                let code = if text.contains("Space limit") {
                    1009
                } else {
                    1002
                };
                break (code, text);
            }
            Some(Ok(WsMessage::Text(text))) => frame::parse_text(&text),
            Some(Ok(WsMessage::Binary(bytes))) => frame::parse_binary(&bytes),
            Some(Ok(WsMessage::Close(_))) => break (1000, String::new()),
            Some(Ok(_)) => continue, // ping and pong: answered by the WebSocket layer
        };
        seq += 1;
        let incoming = match parsed {
            Ok(incoming) => incoming,
            Err(error) => {
                let rejection = Rejection::new(code::INVALID_FRAME, error.reason);
                let refusal = refusal(
                    &shared,
                    &window,
                    error.id,
                    seq,
                    Kind::Command,
                    String::new(),
                    rejection,
                );
                in_flight.commands.push(refusal);
                continue;
            }
        };
        if !bucket.take() {
            let rejection = Rejection::new(
                code::RATE_LIMITED,
                format!(
                    "window {:?} sent more than {} messages a second (bursts of {})",
                    source.window, options.messages_per_second, options.burst
                ),
            );
            let (id, kind) = (Some(incoming.id), incoming.request.kind);
            let name = incoming.request.name;
            let refusal = refusal(&shared, &window, id, seq, kind, name, rejection);
            in_flight.commands.push(refusal);
            continue;
        }
        let kind = incoming.request.kind;
        let job = job(&shared, &window, &source, &uploads, seq, incoming);
        match kind {
            Kind::Command => in_flight.commands.push(job),
            Kind::Event | Kind::Channel => in_flight.lane.push_back(job),
        }
    };
    tracing::info!(window = %source.window, close_code, "window disconnected");
    // What was read is still carried to the core: commands finish on a task of their own, the
    // lane drains here (the label stays taken until it has); only their replies have nowhere
    // to go.
    window.close(close_code, close_reason);
    let InFlight { commands, lane } = in_flight;
    if !commands.is_empty() {
        tokio::spawn(commands.for_each(|()| std::future::ready(())));
    }
    for job in lane {
        job.await;
    }
    if !writer_done {
        let _ = writer.await;
    }
}
