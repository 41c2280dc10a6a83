//! The WebSocket gateway: serves a web frontend and its IPC endpoint from one local port.
//!
//! [`WebGateway::serve`] answers three kinds of HTTP request:
//! - `GET /airlock.js`: the JS client, an ES module with Tauri-like `invoke`, `emit`, `listen`
//!   and `Channel` (no build step: `import { invoke } from "/airlock.js"`).
//! - `GET /airlock?ticket=TOKEN` upgraded to a WebSocket: one connection is one window, whose
//!   labels come from its [`Ticket`] (issued by the server, never named by the page: see
//!   [`Windows`] for the model). Its `Origin` header must be one of the allowed origins (the
//!   server's own `http://127.0.0.1:PORT` and `http://localhost:PORT`, plus
//!   [`WebOptions::allowed_origins`]) and becomes the source origin of every message it sends. An
//!   unknown or expired ticket is refused (403), as is a second connection with a ticket whose
//!   page is connected (409).
//! - anything else: a file from [`WebOptions::static_dir`] (`index.html` for a folder); an HTML
//!   page gets a fresh window ticket in a `<meta name="airlock-ticket">` of its `<head>`
//!   ([`WebOptions::page_tickets`]).
//!
//! [`serve_metrics`] serves a [`Metrics`](crate::Metrics)' text at `GET /metrics` on another
//! listener.
//!
//! Every request frame goes through the [`Gateway`] (validation, hooks, seal, core) and gets
//! exactly one reply. Commands run concurrently; events and channel messages from one window
//! reach the core in the order they were sent. Limits, per connection: a message rate (a token
//! bucket; over it, requests are refused with `rate-limited` before any hook runs), a frame size
//! (twice the gateway's message limit plus 64 KiB: a message over the gateway's limit but within
//! this is refused with `too-large`, a larger frame closes the connection with 1009), requests in flight (past it, the connection is not read until one
//! finishes), and an outgoing queue bounded in bytes (see [`Window`]). A request the gateway has
//! read is carried through to the core even if its connection closes before the reply.
//!
//! The wire format is described in `frame.rs`; `airlock.js` is its only client.

mod frame;
mod metrics;
mod windows;

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use futures_util::stream::FuturesUnordered;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

pub use metrics::{METRICS_CONTENT_TYPE, serve_metrics};
use windows::Outgoing;
pub use windows::{
    ChannelRef, MAX_LABEL_BYTES, PushError, Ticket, TicketError, Window, WindowLimits, Windows,
};

use crate::gateway::{Gateway, Reply};
use crate::message::{Kind, Source};
use crate::verdict::Rejection;

/// The JS client served at `/airlock.js`.
pub const CLIENT_JS: &str = include_str!("airlock.js");

/// Rejection codes of the WebSocket gateway.
pub mod code {
    /// The connection sent more messages than its rate allows.
    pub const RATE_LIMITED: &str = "rate-limited";
    /// A frame that is not a request (malformed JSON, an unknown field, a bad binary head).
    pub const INVALID_FRAME: &str = "invalid-frame";
}

/// What the WebSocket gateway allows. Defaults: only the server's own origin, no static folder,
/// 100 messages a second with bursts of 100, 32 requests in flight and an 8 MiB outgoing queue
/// per connection, a window ticket for each HTML page served, verdicts not reported to the page,
/// pages not cross-origin isolated; 256 WebSocket connections (64 per origin) and 512 HTTP
/// connections at once, 10 s to send headers, a ping every 20 s (closed after 40 s of silence),
/// 30 s for a reply to find room in a page's queue.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct WebOptions {
    /// Origins allowed besides the server's own (`http://127.0.0.1:PORT`, `http://localhost:PORT`),
    /// written as browsers send them (`https://app.example`, no trailing slash).
    pub allowed_origins: Vec<String>,
    /// Folder served for paths other than `/airlock` and `/airlock.js`.
    pub static_dir: Option<PathBuf>,
    /// Sustained messages per second, per connection.
    pub messages_per_second: f64,
    /// Messages a connection may send at once above its rate.
    pub burst: u32,
    /// Requests of one connection being processed at once.
    pub in_flight: usize,
    /// Bytes of frames waiting to be written to one connection.
    pub queue_bytes: usize,
    /// Give each HTML page served from [`WebOptions::static_dir`] a window ticket (a `<meta
    /// name="airlock-ticket">` added to its `<head>`), which `airlock.js` connects with. Off,
    /// only tickets the app issues ([`Windows::issue`]) connect.
    pub page_tickets: bool,
    /// Send the page a `verdict` frame (decision, code, hook digest, cost) before each reply.
    pub report_verdicts: bool,
    /// Open WebSocket connections (windows), in all.
    pub max_connections: usize,
    /// Open WebSocket connections from one origin.
    pub max_connections_per_origin: usize,
    /// TCP connections still speaking HTTP (before a WebSocket upgrade, or fetching files).
    pub max_http_connections: usize,
    /// Time a TCP connection has to send a request's headers, and an HTTP connection may stay
    /// open between requests.
    pub header_timeout: Duration,
    /// How often the server pings a WebSocket; a connection that sends nothing (a pong
    /// included) for two of these is closed (1001). Browsers answer pings by themselves, so an
    /// open page that is merely idle stays connected.
    pub ping_interval: Duration,
    /// How long a reply may wait for room in a page's outgoing queue (the page is not reading)
    /// before the connection is closed (1008), freeing what it holds.
    pub stall_timeout: Duration,
    /// Serve the static folder and `/airlock.js` with `Cross-Origin-Opener-Policy: same-origin`
    /// and `Cross-Origin-Embedder-Policy: require-corp`, so the page is cross-origin isolated
    /// (a 5 µs `performance.now()`, `SharedArrayBuffer`); the page can then load cross-origin
    /// resources only if they opt in.
    pub cross_origin_isolated: bool,
}

with_fields!(WebOptions {
    allowed_origins: Vec<String> => with_allowed_origins,
    static_dir: Option<PathBuf> => with_static_dir,
    messages_per_second: f64 => with_messages_per_second,
    burst: u32 => with_burst,
    in_flight: usize => with_in_flight,
    queue_bytes: usize => with_queue_bytes,
    page_tickets: bool => with_page_tickets,
    max_connections: usize => with_max_connections,
    max_connections_per_origin: usize => with_max_connections_per_origin,
    max_http_connections: usize => with_max_http_connections,
    header_timeout: Duration => with_header_timeout,
    ping_interval: Duration => with_ping_interval,
    stall_timeout: Duration => with_stall_timeout,
    report_verdicts: bool => with_report_verdicts,
    cross_origin_isolated: bool => with_cross_origin_isolated,
});

impl Default for WebOptions {
    fn default() -> Self {
        WebOptions {
            allowed_origins: Vec::new(),
            static_dir: None,
            messages_per_second: 100.0,
            burst: 100,
            in_flight: 32,
            queue_bytes: 8 << 20,
            page_tickets: true,
            max_connections: 256,
            max_connections_per_origin: 64,
            max_http_connections: 512,
            header_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            stall_timeout: Duration::from_secs(30),
            report_verdicts: false,
            cross_origin_isolated: false,
        }
    }
}

/// Room for a frame's own JSON (id, kind, name, headers) around the gateway's message limit.
const FRAME_SLACK: usize = 64 << 10;

/// The largest frame a connection may send when messages are limited to `max_message_bytes`.
pub fn max_frame_bytes(max_message_bytes: usize) -> usize {
    max_message_bytes
        .saturating_mul(2)
        .saturating_add(FRAME_SLACK)
}

/// A WebSocket gateway in front of a [`Gateway`].
#[derive(Debug, Clone)]
pub struct WebGateway {
    gateway: Arc<Gateway>,
    windows: Windows,
    options: Arc<WebOptions>,
}

#[derive(Debug)]
struct Shared {
    gateway: Arc<Gateway>,
    windows: Windows,
    options: Arc<WebOptions>,
    origins: Vec<String>,
    /// Open WebSocket connections, by origin.
    open: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// A WebSocket connection's place in the caps; dropped when it closes.
struct Slot {
    shared: Arc<Shared>,
    origin: String,
}

impl Shared {
    /// Takes a place for a connection from `origin`, or says which cap is reached.
    fn slot(self: &Arc<Self>, origin: &str) -> Result<Slot, String> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = open.values().sum();
        if total >= self.options.max_connections {
            return Err(format!("{total} windows are connected, the most allowed"));
        }
        let from_origin = open.get(origin).copied().unwrap_or(0);
        if from_origin >= self.options.max_connections_per_origin {
            return Err(format!(
                "{from_origin} windows are connected from {origin:?}, the most allowed for one origin"
            ));
        }
        *open.entry(origin.to_owned()).or_default() += 1;
        Ok(Slot {
            shared: self.clone(),
            origin: origin.to_owned(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.shared.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.origin) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.origin);
            }
        }
    }
}

impl WebGateway {
    /// A WebSocket gateway sending every message through `gateway`; connected pages are
    /// registered in `windows`.
    pub fn new(gateway: Arc<Gateway>, windows: Windows, options: WebOptions) -> Self {
        WebGateway {
            gateway,
            windows,
            options: Arc::new(options),
        }
    }

    /// The origins a page may connect from when the server listens on `addr`.
    pub fn allowed_origins(&self, addr: SocketAddr) -> Vec<String> {
        let port = addr.port();
        let mut origins = vec![
            format!("http://127.0.0.1:{port}"),
            format!("http://localhost:{port}"),
            format!("http://[::1]:{port}"),
        ];
        if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
            origins.push(format!("http://{addr}"));
        }
        origins.extend(
            self.options
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_owned()),
        );
        origins
    }

    /// Serves pages and their connections on `listener` until the task is dropped.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            origins: self.allowed_origins(addr),
            gateway: self.gateway,
            windows: self.windows,
            options: self.options,
            open: Default::default(),
        });
        let app = axum::Router::new()
            .route("/airlock", axum::routing::get(upgrade))
            .route("/airlock.js", axum::routing::get(client_js))
            .fallback(axum::routing::get(static_file))
            .with_state(shared.clone());
        let http = Arc::new(tokio::sync::Semaphore::new(
            shared.options.max_http_connections.max(1),
        ));
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!("cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(permit) = http.clone().try_acquire_owned() else {
                tracing::info!(%peer, "connection refused: too many HTTP connections");
                continue;
            };
            // Without TCP_NODELAY, a small frame written while an earlier one is unacknowledged
            // waits for the page's delayed ACK (40 ms on Linux).
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!("cannot set TCP_NODELAY on a connection: {e}");
            }
            let app = app.clone();
            let header_timeout = shared.options.header_timeout;
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let mut app = app.clone();
                        async move {
                            tower_service::Service::call(
                                &mut app,
                                request.map(axum::body::Body::new),
                            )
                            .await
                        }
                    },
                );
                let mut builder = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                );
                builder
                    .http1()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(header_timeout);
                let io = hyper_util::rt::TokioIo::new(tcp);
                // Ends at the WebSocket upgrade (the socket goes on in its own task) or when the
                // HTTP connection closes; either way its place is given back.
                if let Err(e) = builder.serve_connection_with_upgrades(io, service).await {
                    tracing::debug!(%peer, "HTTP connection ended: {e}");
                }
                drop(permit);
            });
        }
    }
}

fn refuse(status: StatusCode, reason: String) -> HttpResponse {
    tracing::info!(%status, "connection refused: {reason}");
    (status, reason).into_response()
}

async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    uri: Uri,
) -> HttpResponse {
    let origin = match headers.get(header::ORIGIN).map(HeaderValue::to_str) {
        None => return refuse(StatusCode::FORBIDDEN, "missing Origin header".to_owned()),
        Some(Err(_)) => return refuse(StatusCode::FORBIDDEN, "Origin header is not ASCII".into()),
        Some(Ok(origin)) => origin.to_owned(),
    };
    if !shared.origins.contains(&origin) {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "origin {origin:?} is not allowed; allowed: {}",
                shared.origins.join(", ")
            ),
        );
    }
    let mut token = None;
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        match pair.split_once('=') {
            Some(("ticket", value)) => token = Some(value.to_owned()),
            Some(("window" | "webview", _)) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "{pair:?}: window labels are issued by the server; connect with the \
                         page's ticket (/airlock?ticket=TOKEN, as airlock.js does)"
                    ),
                );
            }
            _ => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("unknown query parameter {pair:?}; expected ticket=TOKEN"),
                );
            }
        }
    }
    let Some(token) = token else {
        return refuse(
            StatusCode::FORBIDDEN,
            "no window ticket: connect with /airlock?ticket=TOKEN, the ticket of the page the \
             server served or the app issued"
                .to_owned(),
        );
    };
    let ticket = match shared.windows.ticket(&token) {
        Ok(ticket) => ticket,
        Err(e) => return refuse(StatusCode::FORBIDDEN, e.to_string()),
    };
    let slot = match shared.slot(&origin) {
        Ok(slot) => slot,
        Err(reason) => return refuse(StatusCode::SERVICE_UNAVAILABLE, reason),
    };
    let (handle, rx) = shared.windows.window(&ticket, shared.options.queue_bytes);
    let registration = match shared.windows.register(&ticket, &handle) {
        Ok(registration) => registration,
        Err(e @ TicketError::Connected(_)) => return refuse(StatusCode::CONFLICT, e.to_string()),
        Err(e) => return refuse(StatusCode::FORBIDDEN, e.to_string()),
    };
    let (window, webview) = (ticket.window().to_owned(), ticket.webview().to_owned());
    let source = Source::new(window, webview, origin);
    let frame_limit = max_frame_bytes(shared.gateway.limits().max_message_bytes);
    ws.max_message_size(frame_limit)
        .max_frame_size(frame_limit)
        .on_upgrade(move |socket| async move {
            tracing::info!(window = %source.window, origin = %source.origin, "window connected");
            connection(shared, socket, handle, rx, source).await;
            drop(registration);
            drop(slot);
        })
}

async fn client_js(State(shared): State<Arc<Shared>>) -> HttpResponse {
    let response = (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        CLIENT_JS,
    )
        .into_response();
    isolated(&shared.options, response)
}

/// `response` with the headers that make a page cross-origin isolated, when asked for.
fn isolated(options: &WebOptions, mut response: HttpResponse) -> HttpResponse {
    if options.cross_origin_isolated {
        let headers = response.headers_mut();
        headers.insert(
            "cross-origin-opener-policy",
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(
            "cross-origin-embedder-policy",
            HeaderValue::from_static("require-corp"),
        );
        headers.insert(
            "cross-origin-resource-policy",
            HeaderValue::from_static("same-origin"),
        );
    }
    response
}

async fn static_file(State(shared): State<Arc<Shared>>, uri: Uri) -> HttpResponse {
    let Some(dir) = &shared.options.static_dir else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!(
                "no static folder is served, so {:?} is not found; the JS client is at /airlock.js",
                uri.path()
            ),
        );
    };
    match read_static(dir, uri.path()).await {
        Ok((mut bytes, kind)) => {
            if kind.starts_with("text/html") && shared.options.page_tickets {
                let ticket = match shared.windows.issue_page(&page_label(uri.path())) {
                    Ok(ticket) => ticket,
                    Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
                };
                bytes = with_ticket(bytes, &ticket);
            }
            isolated(
                &shared.options,
                (
                    [
                        (header::CONTENT_TYPE, kind),
                        (header::CACHE_CONTROL, "no-store"),
                        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    ],
                    bytes,
                )
                    .into_response(),
            )
        }
        Err(reason) => refuse(StatusCode::NOT_FOUND, reason),
    }
}

/// The window label of the page at `path`: `main` for the root's `index.html`, a folder's name
/// for its `index.html`, else the file's name without `.html` (`page` if that is no valid label).
fn page_label(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let stem = |name: &str| name.strip_suffix(".html").unwrap_or(name).to_owned();
    let label = match segments.as_slice() {
        [] | ["index.html"] => "main".to_owned(),
        [.., folder, "index.html"] => stem(folder),
        [.., last] => stem(last),
    };
    match crate::gateway::check_name(&label, MAX_LABEL_BYTES) {
        Ok(()) if !label.is_empty() => label,
        _ => "page".to_owned(),
    }
}

/// `html` with `<meta name="airlock-ticket" content="TOKEN">` at the start of its `<head>` (or of
/// `<html>`, or after the doctype, or at the start).
fn with_ticket(html: Vec<u8>, ticket: &Ticket) -> Vec<u8> {
    let meta = format!(
        r#"<meta name="airlock-ticket" content="{}">"#,
        ticket.token()
    );
    let lower = html.to_ascii_lowercase();
    let after_tag = |tag: &[u8]| {
        lower
            .windows(tag.len() + 1)
            .position(|w| {
                w.starts_with(tag) && (w[tag.len()] == b'>' || w[tag.len()].is_ascii_whitespace())
            })
            .and_then(|at| {
                lower[at..]
                    .iter()
                    .position(|&b| b == b'>')
                    .map(|end| at + end + 1)
            })
    };
    let at = after_tag(b"<head")
        .or_else(|| after_tag(b"<html"))
        .or_else(|| after_tag(b"<!doctype"))
        .unwrap_or(0);
    let mut out = Vec::with_capacity(html.len() + meta.len());
    out.extend_from_slice(&html[..at]);
    out.extend_from_slice(meta.as_bytes());
    out.extend_from_slice(&html[at..]);
    out
}

/// Reads `path` under `dir`, refusing any segment that is empty-dotted, hidden or not plain.
async fn read_static(dir: &Path, path: &str) -> Result<(Vec<u8>, &'static str), String> {
    let mut file = dir.to_path_buf();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segment.starts_with('.') || segment.contains(['\\', '%', ':']) {
            return Err(format!("path {path:?} is not served"));
        }
        file.push(segment);
    }
    if file.is_dir() {
        file.push("index.html");
    }
    let kind = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("wasm") => "application/wasm",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    let bytes = tokio::fs::read(&file)
        .await
        .map_err(|e| format!("cannot read {path:?}: {e}"))?;
    Ok((bytes, kind))
}

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
    seq: u64,
    incoming: frame::Incoming,
) -> Job {
    let (shared, window, source) = (shared.clone(), window.clone(), source.clone());
    Box::pin(async move {
        let (kind, name) = (incoming.request.kind, incoming.request.name.clone());
        // The core's handlers find the connection that sent the message with Window::current.
        let handled = shared.gateway.handle(source, incoming.request);
        let reply = window.clone().scope(handled).await;
        answer(&shared, &window, Some(incoming.id), seq, kind, &name, reply).await;
    })
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

async fn connection(
    shared: Arc<Shared>,
    socket: WebSocket,
    window: Window,
    rx: mpsc::UnboundedReceiver<Outgoing>,
    source: Source,
) {
    let (sink, mut stream) = socket.split();
    let options = &shared.options;
    let mut writer = tokio::spawn(write(sink, rx, window.clone(), options.stall_timeout));
    let mut writer_done = false;
    if window
        .push(frame::welcome(&source.window, &source.webview))
        .await
        .is_err()
    {
        return;
    }
    let mut bucket = Bucket::new(options.messages_per_second, options.burst);
    let ping_every = options.ping_interval.max(Duration::from_millis(10));
    let (mut heard, mut pinged) = (tokio::time::Instant::now(), false);
    let limit = options.in_flight.max(1);
    let mut in_flight = InFlight::default();
    // The connection's own count of the messages it sent, for its verdict frames.
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
        let silence = if pinged { 2 * ping_every } else { ping_every };
        let next = tokio::select! {
            next = tokio::time::timeout_at(heard + silence, next) => next,
            _ = &mut writer, if !writer_done => {
                writer_done = true;
                break (1008, "the page stopped reading what was sent to it".to_owned());
            }
        };
        let next = match next {
            Ok(next) => {
                (heard, pinged) = (tokio::time::Instant::now(), false);
                next
            }
            Err(_) if pinged => {
                break (
                    1001,
                    format!("no frame, not even a pong, for {:?}", 2 * ping_every),
                );
            }
            Err(_) => {
                pinged = true;
                let _ = window.try_push(WsMessage::Ping(Default::default()));
                continue;
            }
        };
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
        let job = job(&shared, &window, &source, seq, incoming);
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

/// Whether `write` finished, without error, within `stall`: a write that makes no progress that
/// long (the page does not read) ends the connection.
async fn written_within(
    stall: Duration,
    write: impl Future<Output = Result<(), axum::Error>>,
) -> bool {
    matches!(tokio::time::timeout(stall, write).await, Ok(Ok(())))
}

/// Writes what is queued for the connection: everything waiting is written together, with one
/// flush (mostly one write to the socket), and its room in the queue is released after it.
async fn write(
    mut sink: futures_util::stream::SplitSink<WebSocket, WsMessage>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    window: Window,
    stall: Duration,
) {
    let mut written = Vec::new();
    'connection: while let Some(mut out) = rx.recv().await {
        loop {
            match out {
                Outgoing::Frame(frame, permit) => {
                    let sent = written_within(stall, sink.feed(frame)).await;
                    written.push(permit);
                    if !sent {
                        break 'connection;
                    }
                }
                Outgoing::Close(code, mut reason) => {
                    // A close reason is at most 123 bytes.
                    while reason.len() > 123 {
                        reason.pop();
                    }
                    let close = CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        sink.send(WsMessage::Close(Some(close))),
                    )
                    .await;
                    break 'connection;
                }
            }
            match rx.try_recv() {
                Ok(next) => out = next,
                Err(_) => break,
            }
        }
        if !written_within(stall, sink.flush()).await {
            tracing::info!(window = %window.label(), "connection closed: writing stalled or failed");
            break;
        }
        written.clear();
    }
    // Whatever still waits for room would wait forever: the socket is gone.
    window.refuse_pushes();
    rx.close();
}
