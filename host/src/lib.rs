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
//! // One engine per process; hooks are components (here, a hand-written WAT one).
//! let engine = HookEngine::new(Default::default())?;
//! let wasm = airlock::component::from_wat(airlock::component::PASS_ALL_WAT)?;
//! let hook = Hook::load(&engine, &wasm, HookOptions::default())?;
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
//!   messages are in flight ([`Gateway::reload`], [`HookWatcher`]).
//! - [`jsonl`]: the JSON Lines message form used by the command-line tool.
//! - `web` (feature `web`, on with `cli`): the WebSocket gateway behind `airlock serve`, which
//!   serves a web frontend, its IPC endpoint and a JS client, one connection per window.
#![deny(missing_docs)]

mod bindings;
mod cache;
#[cfg(feature = "cli")]
pub mod component;
mod core;
mod engine;
#[cfg(feature = "cli")]
pub mod fuzz;
mod gateway;
mod hook;
pub mod jsonl;
mod message;
mod reload;
pub mod seal;
mod verdict;
mod wasi;
#[cfg(feature = "web")]
pub mod web;

pub use crate::core::{Core, CoreError, Invocation, Response, Router};
pub use cache::CacheOutcome;
pub use engine::{EngineConfig, HookEngine};
pub use gateway::{Gateway, GatewayLimits, Reply, check_name};
pub use hook::{
    HeavyRuntime, Hook, HookError, HookLimits, HookOptions, Inspection, InstanceMode, LOG_IMPORT,
    POLICY_EXPORT, TYPES_IMPORT,
};
pub use message::{Body, DecodeError, Header, Kind, Message, Request, Source};
pub use reload::{HookWatcher, WatchStatus};
pub use seal::{Envelope, SealConfig, SealError};
pub use verdict::{Decision, Rejection, Replacement, Verdict, code};
