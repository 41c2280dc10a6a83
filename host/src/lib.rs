//! Airlock: Tauri's IPC isolation pattern rebuilt on WebAssembly components.
//!
//! Every message an untrusted frontend sends goes through an isolation **hook** — a WebAssembly
//! component behind the `airlock:hook` WIT interface — which passes, rewrites or rejects it. What
//! passes is sealed with AES-256-GCM, and the app's [`Core`] accepts nothing but sealed
//! envelopes.
//!
//! ```text
//! frontend ─Request─▶ Gateway ─Message─▶ Hook ─Verdict─▶ Sealer ─Envelope─▶ Core ─▶ handler
//! ```
//!
//! # Quick start
//!
//! ```
//! use airlock::{Gateway, Hook, HookEngine, HookOptions, Request, Response, Router, Source};
//!
//! #[derive(serde::Deserialize)]
//! struct Greet {
//!     name: String,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // One engine per process; hooks are components built by any language's toolchain (here, the
//! // smallest valid hook, which passes everything: `hooks/pass-all.wasm` in this crate).
//! let engine = HookEngine::new(Default::default())?;
//! # let path = concat!(env!("CARGO_MANIFEST_DIR"), "/hooks/pass-all.wasm");
//! let hook = Hook::load_file(&engine, path, HookOptions::default())?;
//!
//! // The core's commands, then the gateway in front of them.
//! let router = Router::new().command("greet", |args: Greet, _| async move {
//!     Ok::<_, String>(format!("hello {}", args.name))
//! });
//! let gateway = Gateway::new(hook, router)?;
//!
//! let source = Source::new("main", "main", "tauri://localhost");
//! let request = Request::command("greet", &serde_json::json!({ "name": "ada" }));
//! let reply = gateway.handle(source, request).await;
//! match reply.outcome? {
//!     Response::Json(value) => assert_eq!(value.get(), r#""hello ada""#),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! # Modules
//! - [`Message`] and friends: the model ([`Request`] is the frontend's part).
//! - [`HookEngine`]: the one wasmtime engine (pooling allocator, async calls that yield at every
//!   epoch tick, optional fuel), configured by [`EngineConfig`].
//! - [`Hook`]: loading and checking components, running them under [`HookLimits`] in an
//!   [`InstanceMode`] (fresh per message by default), faults as `hook-*` rejections ([`code`]).
//! - [`seal`]: the envelope format, keys and the replay window; AES-256-GCM from RustCrypto, or
//!   from AWS-LC with feature `aws-lc` ([`seal::Provider`]).
//! - [`Core`] / [`Router`]: the app's handlers, reachable only through an envelope.
//! - [`Gateway`]: validation → hook → seal → core; shared by many tasks, its hook swappable while
//!   messages are in flight ([`Gateway::reload`], [`HookWatcher`]); a chain of its own per window,
//!   webview, origin or name prefix ([`Route`], [`Gateway::route`]); at most
//!   [`GatewayLimits::hook_calls`] messages in the hooks at once, shared fairly between windows
//!   (a window flooding slow messages waits behind its own).
//! - [`trust`]: pinning hooks by SHA-256 and requiring Ed25519 signatures from trusted keys.
//! - [`HostState`]: counters, token buckets and values a hook keeps in the host
//!   (`airlock:hook/state`), scoped to the hook's name and the message's window.
//! - [`Metrics`]: verdict counters and hook latencies in the Prometheus text format
//!   ([`Gateway::with_metrics`]).
//! - [`jsonl`]: the JSON Lines message form used by the command-line tool.
//! - [`Recorder`] / [`JsonlRecorder`]: recorded traffic for `airlock replay`; hooks in monitor
//!   mode ([`HookOptions::monitor`], [`Monitored`]) for dry runs.
//! - `web` (feature `web`): the WebSocket gateway behind `airlock serve`, which serves a web
//!   frontend, its IPC endpoint and a JS client, one connection per window.
//! - `component` (feature `component`): making hook components from core modules and WAT.
//!
//! The configuration structs ([`EngineConfig`], [`HookLimits`], [`HookOptions`],
//! [`GatewayLimits`], [`SealConfig`]) are `#[non_exhaustive]`: start from `Default::default()`
//! and change what you need with their `with_*` methods (or by assigning fields), so that new
//! settings can be added without breaking your code.
//!
//! The command-line tool (`airlock inspect | bench | fuzz | serve | new | test | replay`) is the
//! `airlock-cli` crate, built on this one.
#![deny(missing_docs)]

/// `with_FIELD(value) -> Self` setters for fields of a `#[non_exhaustive]` config struct, so code
/// outside the crate can build one from its default.
macro_rules! with_fields {
    ($ty:ident { $($field:ident: $t:ty => $with:ident),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!("This value with `", stringify!($field), "` set to `value`.")]
                #[must_use]
                pub fn $with(mut self, value: $t) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

mod admission;
mod bindings;
mod cache;
mod checks;
#[cfg(feature = "component")]
pub mod component;
mod core;
mod engine;
mod error;
mod gateway;
mod hook;
pub mod jsonl;
mod limits;
mod message;
mod metrics;
mod monitor;
mod options;
mod quarantine;
mod record;
mod reload;
mod route;
pub mod seal;
mod state;
mod store;
pub mod trust;
mod verdict;
mod wasi;
#[cfg(feature = "web")]
pub mod web;

pub use crate::core::{Core, CoreError, Response, Router};
pub use cache::CacheOutcome;
pub use engine::{EngineConfig, HookEngine};
pub use error::{BoxError, HookError};
pub use gateway::{Gateway, Reply};
pub use hook::{Hook, Inspection};
pub use limits::GatewayLimits;
pub use message::{Body, DecodeError, Header, Kind, Message, Request, Source};
pub use metrics::{LatencyLabels, Metrics, VerdictLabels};
pub use monitor::Monitored;
pub use options::{HeavyRuntime, HookLimits, HookOptions, InstanceMode};
pub use record::{JsonlRecorder, Payloads, Recorder};
pub use reload::{HookWatcher, WatchStatus};
pub use route::Route;
pub use seal::{Envelope, SealConfig, SealError};
pub use state::{Clock, HostState, ManualClock, SystemClock};
pub use verdict::{Decision, Rejection, Replacement, Verdict, code};
