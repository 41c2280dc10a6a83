//! What the WebSocket gateway allows: [`WebOptions`] and its defaults.

use std::path::PathBuf;
use std::time::Duration;

/// What the WebSocket gateway allows. Defaults: only the server's own origin, no static folder,
/// 100 messages a second with bursts of 100, 32 requests in flight and an 8 MiB outgoing queue
/// per connection, a window ticket for each HTML page served, verdicts not reported to the page,
/// pages not cross-origin isolated; 256 WebSocket connections (64 per origin) and 512 HTTP
/// connections at once, 10 s to send headers, a ping every 20 s (closed after 40 s of silence),
/// 30 s for a reply to find room in a page's queue, 30 s for an announced upload to arrive, workers
/// kept awake 100 µs after each frame.
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
    /// only tickets the app issues ([`Windows::issue`](super::Windows::issue)) connect.
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
    /// How long a request whose frame announced an upload of its body (`POST /airlock/upload`,
    /// which `airlock.js` uses for large bodies) waits for it before it is refused with
    /// `upload-missing`; the window's later events and channel messages wait behind it.
    pub upload_timeout: Duration,
    /// How long a worker runtime of [`WebGateway::serve_on`](super::WebGateway::serve_on) (a
    /// single-threaded one) stays awake after a frame is read or written, polling its sockets
    /// instead of sleeping, so that the next frame of a client calling one call after another
    /// does not wait for an idle CPU to wake (on virtual machines that halt idle vCPUs, tens of
    /// microseconds a message: BENCHMARKS.md, "2026-12-03 (late night)"). It costs at most this
    /// much CPU per frame, none while no frame comes; zero turns it off.
    pub spin: Duration,
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
    upload_timeout: Duration => with_upload_timeout,
    spin: Duration => with_spin,
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
            upload_timeout: Duration::from_secs(30),
            spin: Duration::from_micros(100),
        }
    }
}
