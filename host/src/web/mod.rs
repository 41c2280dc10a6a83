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
//! - `POST /airlock/upload?ticket=TOKEN&id=N`: the body of a large request whose frame on the
//!   window's WebSocket announced it (`"upload":true`); see `uploads.rs`.
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
//! The wire format is described in `frame.rs`; `airlock.js` is its only client. The handshake is
//! `handshake.rs`, plain HTTP `pages.rs`, a connection's reading `connection.rs` and its writing
//! `writer.rs`, large bodies sent beside the WebSocket `uploads.rs`; a window's queue is `window.rs`, the windows and their tickets `windows.rs`.

mod connection;
mod frame;
mod handshake;
mod metrics;
mod options;
mod pages;
mod spin;
mod uploads;
mod window;
mod windows;
mod writer;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use metrics::{METRICS_CONTENT_TYPE, serve_metrics};
pub use options::WebOptions;
pub use window::{ChannelRef, PushError, Window};
pub use windows::{MAX_LABEL_BYTES, Ticket, TicketError, WindowLimits, Windows};

use crate::gateway::Gateway;

/// The JS client served at `/airlock.js`.
pub const CLIENT_JS: &str = include_str!("airlock.js");

/// Rejection codes of the WebSocket gateway.
pub mod code {
    /// The connection sent more messages than its rate allows.
    pub const RATE_LIMITED: &str = "rate-limited";
    /// A frame that is not a request (malformed JSON, an unknown field, a bad binary head).
    pub const INVALID_FRAME: &str = "invalid-frame";
    /// A request announced an upload of its body that did not arrive in time.
    pub const UPLOAD_MISSING: &str = "upload-missing";
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
    /// The uploads of each connected window, by its ticket.
    uploads: std::sync::Mutex<std::collections::HashMap<String, Arc<uploads::Uploads>>>,
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

    /// Serves pages and their connections on `listener` until the task is dropped, each
    /// connection a task of the runtime this runs on.
    pub async fn serve(self, listener: TcpListener) -> std::io::Result<()> {
        self.serve_on(listener, Vec::new()).await
    }

    /// Serves like [`serve`](Self::serve), but hands each accepted connection (and the
    /// WebSocket it may become, and the hook calls of its messages) to the one of `runtimes`
    /// with the fewest tasks alive, where it stays; with no runtime given, to the runtime this
    /// runs on.
    ///
    /// Meant for one single-threaded runtime per core (what `airlock serve --workers` builds): a
    /// connection's frames are then read, run through the hooks and answered on one thread,
    /// with one wakeup per message, where a multi-threaded runtime's idle workers wake each
    /// other two or three times a message (BENCHMARKS.md, "2026-12-03 (evening)"). A runtime
    /// given here must be running (a single-threaded one only runs its tasks inside
    /// `block_on`).
    ///
    /// ```no_run
    /// # async fn run(web: airlock::web::WebGateway) -> std::io::Result<()> {
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let other = runtime.handle().clone();
    /// std::thread::spawn(move || runtime.block_on(std::future::pending::<()>()));
    /// let here = tokio::runtime::Handle::current();
    /// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// web.serve_on(listener, vec![here, other]).await
    /// # }
    /// ```
    pub async fn serve_on(
        self,
        listener: TcpListener,
        runtimes: Vec<tokio::runtime::Handle>,
    ) -> std::io::Result<()> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            origins: self.allowed_origins(addr),
            gateway: self.gateway,
            windows: self.windows,
            options: self.options,
            open: Default::default(),
            uploads: Default::default(),
        });
        let app = axum::Router::new()
            .route("/airlock", axum::routing::get(handshake::upgrade))
            .route("/airlock/upload", axum::routing::post(uploads::upload))
            .route("/airlock.js", axum::routing::get(pages::client_js))
            .fallback(axum::routing::get(pages::static_file))
            .with_state(shared.clone());
        let http = Arc::new(tokio::sync::Semaphore::new(
            shared.options.max_http_connections.max(1),
        ));
        // Where connections run: `runtimes`, or with none given, this one.
        let here = [tokio::runtime::Handle::current()];
        let workers = if runtimes.is_empty() {
            &here[..]
        } else {
            &runtimes
        };
        // Stopped when this future is dropped, as the server is.
        let _spinners = spin::Spinners::start(shared.options.spin, workers);
        let mut turn = 0usize;
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
            let connection = move |tcp: tokio::net::TcpStream| async move {
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
            };
            // The runtime with the fewest tasks (a window's connection is one for its life; the
            // page's other requests come and go), the next in turn among equals.
            turn = turn.wrapping_add(1);
            let chosen = (0..runtimes.len())
                .map(|n| (n + turn) % runtimes.len())
                .min_by_key(|&n| runtimes[n].metrics().num_alive_tasks());
            let Some(runtime) = chosen.map(|n| &runtimes[n]) else {
                tokio::spawn(connection(tcp));
                continue;
            };
            // The socket is registered with this runtime's I/O driver: it moves as a plain
            // socket and registers again with the other's.
            let tcp = match tcp.into_std() {
                Ok(tcp) => tcp,
                Err(e) => {
                    tracing::warn!(%peer, "cannot hand a connection to another runtime: {e}");
                    continue;
                }
            };
            runtime.spawn(async move {
                match tokio::net::TcpStream::from_std(tcp) {
                    Ok(tcp) => connection(tcp).await,
                    Err(e) => tracing::warn!(%peer, "cannot take a connection over: {e}"),
                }
            });
        }
    }
}
