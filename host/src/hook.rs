//! Loading, checking and running hook components.
//!
//! [`Hook::load`] compiles a component, refuses any import Airlock does not provide (naming each
//! one), prepares an `InstancePre` once, and runs `configure` on a trial instance so that a bad
//! config fails at load time, not on the first message. [`Hook::inspect`] then runs the hook on
//! one message, in one of two [`InstanceMode`]s:
//!
//! - **fresh** (the default): a new instance per message, from the pooling allocator, configured
//!   and then asked to inspect. Nothing a hook does survives into the next message.
//! - **reuse**: warm, configured instances are kept and handed one message at a time. What
//!   survives between messages is whatever the hook keeps in its own instance: globals, its
//!   linear memory (heap, caches, counters), and its memory size, which only grows. The host's
//!   side is reset per message (time and fuel budget, log budget). An instance that faults in any
//!   way is discarded, never reused; the next message gets a new one. Choose it for language
//!   runtimes that are expensive to start (Python, JavaScript), not for policies that must not
//!   remember.
//!
//! Calls are async: a running hook yields to the executor at every epoch tick, so a slow hook
//! never stalls other messages, and is interrupted once past its time limit. Every fault becomes
//! a `hook-*` rejection; the host carries on.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};

use crate::bindings::airlock::hook::{log, types as wit};
use crate::bindings::{Hook as HookWorld, HookPre};
use crate::cache::{self, CacheOutcome};
use crate::engine::HookEngine;
use crate::message::{Body, Header, Message};
use crate::verdict::{Rejection, Replacement, Verdict, check_hook_code, clip_reason, code};
use crate::wasi::WasiState;

/// The only import with functions a hook may have.
pub const LOG_IMPORT: &str = "airlock:hook/log@0.1.0";
/// The interface of shared types; a hook imports it for its types only (it has no functions).
pub const TYPES_IMPORT: &str = "airlock:hook/types@0.1.0";
/// The interface every hook must export.
pub const POLICY_EXPORT: &str = "airlock:hook/policy@0.1.0";

/// Limits on each hook call (`configure` and `inspect` each get the full time and fuel budget).
///
/// Defaults: 100 ms, no fuel budget, 64 MiB of linear memory, tables of at most 100 000
/// elements, at most 64 core instances (and as many memories and tables) per hook instance,
/// 64 KiB of log text per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookLimits {
    /// Wall-clock time per call; past it, `hook-timeout`.
    pub timeout: Duration,
    /// Fuel per call, when the engine meters fuel ([`crate::EngineConfig::fuel`]); past it,
    /// `hook-timeout`. Deterministic, unlike the wall clock.
    pub fuel: Option<u64>,
    /// Linear memory, in bytes (at most the engine's memory ceiling); past it, `hook-memory`.
    pub memory_bytes: usize,
    /// Elements in any one table; past it, `hook-limit`.
    pub table_elements: usize,
    /// Core instances (and memories, and tables) in one hook instance; past it, `hook-limit`.
    pub instances: usize,
    /// Log text per message, in bytes; past it, `hook-log`.
    pub log_bytes: usize,
}

impl Default for HookLimits {
    fn default() -> Self {
        HookLimits {
            timeout: Duration::from_millis(100),
            fuel: None,
            memory_bytes: 64 << 20,
            table_elements: 100_000,
            instances: 64,
            log_bytes: 64 << 10,
        }
    }
}

/// How a hook's instances are used.
///
/// - [`Fresh`](InstanceMode::Fresh), the default: a new instance per message, from the pooling
///   allocator, configured and then asked to inspect. Nothing a hook does survives into the next
///   message.
/// - [`Reuse`](InstanceMode::Reuse): warm, configured instances are kept and handed one message
///   at a time. What survives between messages is whatever the hook keeps in its own instance:
///   globals, its linear memory (heap, caches, counters, anything a previous message left there),
///   and its memory size, which only grows. The host's side is reset per message (time, fuel and
///   log budgets). An instance that faults in any way — trap, timeout, memory, malformed output,
///   log flood — is discarded, never reused; the next message gets a new one. Choose it for
///   language runtimes that are expensive to start (Python, JavaScript), not for policies that
///   must not remember one message while judging the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InstanceMode {
    /// A fresh instance per message (the default).
    #[default]
    Fresh,
    /// Warm instances reused across messages; at most `max_idle` are kept waiting.
    Reuse {
        /// Idle instances kept for the next messages.
        max_idle: usize,
    },
}

impl InstanceMode {
    /// The mode that suits a hook's language runtime: [`Reuse`](InstanceMode::Reuse) (with
    /// `max_idle` warm instances) for the interpreters that cost a millisecond or more to start —
    /// CPython (componentize-py), QuickJS (componentize-qjs) and SpiderMonkey (componentize-js) —
    /// and [`Fresh`](InstanceMode::Fresh) for everything else (Rust, C, WAT…), whose fresh
    /// instances cost microseconds. The measurements behind it are in BENCHMARKS.md. The runtime
    /// is recognized by the names its toolchain leaves in the component; a hook that must not
    /// remember anything between messages should be loaded with `Fresh` explicitly.
    pub fn for_component(bytes: &[u8], max_idle: usize) -> InstanceMode {
        match HeavyRuntime::detect(bytes) {
            Some(_) => InstanceMode::Reuse { max_idle },
            None => InstanceMode::Fresh,
        }
    }
}

/// A language runtime that is slow to instantiate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeavyRuntime {
    /// CPython, from componentize-py.
    CPython,
    /// QuickJS, from componentize-qjs.
    QuickJs,
    /// SpiderMonkey, from componentize-js (jco).
    SpiderMonkey,
}

impl HeavyRuntime {
    /// The runtime embedded in a component, recognized by the module names its toolchain leaves
    /// there.
    pub fn detect(bytes: &[u8]) -> Option<HeavyRuntime> {
        const MARKERS: [(&str, HeavyRuntime); 4] = [
            ("componentize_py_runtime", HeavyRuntime::CPython),
            ("componentize_qjs_runtime", HeavyRuntime::QuickJs),
            ("StarlingMonkey", HeavyRuntime::SpiderMonkey),
            ("componentize-js", HeavyRuntime::SpiderMonkey),
        ];
        MARKERS
            .iter()
            .find(|(marker, _)| memchr::memmem::find(bytes, marker.as_bytes()).is_some())
            .map(|&(_, runtime)| runtime)
    }
}

/// Why a hook could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HookError {
    /// The engine could not be set up.
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
    /// The hook file could not be read.
    #[error("cannot read hook {path:?}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The bytes are a core wasm module, not a component.
    #[error(
        "this is a core wasm module, not a component: wrap it with `airlock component MODULE.wasm -o HOOK.wasm`"
    )]
    CoreModule,
    /// The bytes are not a valid component.
    #[error("not a valid wasm component: {0}")]
    Compile(String),
    /// The hook imports something Airlock does not provide.
    #[error("hook imports what Airlock does not provide: {} (Airlock provides {LOG_IMPORT}, the types of {TYPES_IMPORT}, and deny-by-default WASI 0.2 stubs)", .0.join(", "))]
    UnsupportedImports(Vec<String>),
    /// An import or export has the right name but the wrong shape, or an export is missing.
    #[error("hook does not match the airlock:hook world: {0}")]
    World(String),
    /// The hook's `configure` refused the config it was given.
    #[error("hook refused its config: {0}")]
    ConfigRefused(String),
    /// The hook faulted while configuring (trap, timeout, memory…).
    #[error("hook failed while configuring: {0}")]
    ConfigFault(Rejection),
    /// A limit is out of range.
    #[error("invalid hook limit: {0}")]
    Limit(String),
}

/// How to load a hook. Default: config `{}`, default limits, a fresh instance per message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOptions {
    /// The app's JSON configuration, passed to `configure` on every instance.
    pub config: String,
    /// Per-call limits.
    pub limits: HookLimits,
    /// Fresh instance per message, or reuse of warm ones.
    pub mode: InstanceMode,
}

impl Default for HookOptions {
    fn default() -> Self {
        HookOptions {
            config: "{}".to_owned(),
            limits: HookLimits::default(),
            mode: InstanceMode::Fresh,
        }
    }
}

/// A loaded, checked and configured hook, ready to inspect messages from many tasks at once.
/// Clones share the hook (and its warm instances).
#[derive(Clone)]
pub struct Hook {
    engine: HookEngine,
    pre: HookPre<HookState>,
    digest: Arc<str>,
    options: Arc<HookOptions>,
    compiled: CacheOutcome,
    warm: Arc<Mutex<Vec<Warm>>>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("digest", &self.digest)
            .field("limits", &self.options.limits)
            .field("mode", &self.options.mode)
            .finish_non_exhaustive()
    }
}

/// One message's trip through a hook.
#[derive(Debug)]
pub struct Inspection {
    /// The message as it went in (never copied back from the hook).
    pub message: Message,
    /// What the hook decided, faults included.
    pub verdict: Verdict,
    /// Wall-clock time of the whole call (with instantiation and `configure` in fresh mode).
    pub elapsed: Duration,
    /// Fuel `inspect` used, when the engine meters fuel.
    pub fuel: Option<u64>,
}

/// A configured instance and its store.
struct Warm {
    store: Store<HookState>,
    instance: HookWorld,
}

impl Hook {
    /// Reads and loads a hook component from a file.
    pub fn load_file(
        engine: &HookEngine,
        path: impl AsRef<Path>,
        options: HookOptions,
    ) -> Result<Hook, HookError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| HookError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Hook::load(engine, &bytes, options)
    }

    /// Compiles and checks a hook component, then configures a trial instance (kept as the first
    /// warm instance in reuse mode).
    pub fn load(
        engine: &HookEngine,
        bytes: &[u8],
        options: HookOptions,
    ) -> Result<Hook, HookError> {
        check_limits(engine, &options.limits)?;
        if bytes.starts_with(b"\0asm\x01\0\0\0") {
            return Err(HookError::CoreModule);
        }
        let wasm = &engine.inner().engine;
        let digest: Arc<str> = format!("{:x}", Sha256::digest(bytes)).into();
        let (component, compiled) = match &engine.inner().cache {
            Some(cache) => cache.load(wasm, bytes, &digest)?,
            None => (cache::compile(wasm, bytes)?, CacheOutcome::Compiled),
        };

        let unsupported: Vec<String> = component
            .component_type()
            .imports(wasm)
            .map(|(name, _)| name)
            .filter(|name| !provided(name))
            .map(str::to_owned)
            .collect();
        if !unsupported.is_empty() {
            return Err(HookError::UnsupportedImports(unsupported));
        }

        let instance_pre = engine
            .inner()
            .linker
            .instantiate_pre(&component)
            .map_err(|e| {
                let text = format!("{e:#}");
                // A WASI interface Airlock does not link (wasi:http, say) is an unsupported import.
                match text.split('`').nth(1) {
                    Some(name) if text.contains("not found in the linker") => {
                        HookError::UnsupportedImports(vec![name.to_owned()])
                    }
                    _ => HookError::World(text),
                }
            })?;
        let pre = HookPre::new(instance_pre).map_err(|e| HookError::World(format!("{e:#}")))?;
        let hook = Hook {
            engine: engine.clone(),
            pre,
            digest,
            options: Arc::new(options),
            compiled,
            warm: Arc::new(Mutex::new(Vec::new())),
        };

        let trial = block_on(hook.instance()).map_err(|rejection| {
            if rejection.code == code::HOOK_CONFIG {
                HookError::ConfigRefused(rejection.reason)
            } else {
                HookError::ConfigFault(rejection)
            }
        })?;
        hook.keep_warm(trial);
        tracing::info!(digest = %hook.digest, compiled = ?hook.compiled, "hook loaded");
        Ok(hook)
    }

    /// SHA-256 of the component's bytes, in hex: recorded with every verdict.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The digest, shared (cheap to clone into each reply).
    pub fn digest_arc(&self) -> Arc<str> {
        self.digest.clone()
    }

    /// Whether loading compiled the component or found it in the engine's cache.
    pub fn compiled(&self) -> CacheOutcome {
        self.compiled
    }

    /// The options the hook was loaded with.
    pub fn options(&self) -> &HookOptions {
        &self.options
    }

    /// The engine the hook runs on.
    pub fn engine(&self) -> &HookEngine {
        &self.engine
    }

    /// Runs the hook on one message. Faults are `hook-*` rejections; the message comes back as it
    /// went in.
    pub async fn inspect(&self, message: Message) -> Inspection {
        let start = Instant::now();
        let reused = match self.options.mode {
            InstanceMode::Reuse { .. } => self.warm.lock().unwrap_or_else(|e| e.into_inner()).pop(),
            InstanceMode::Fresh => None,
        };
        let mut warm = match reused {
            Some(warm) => warm,
            None => match self.instance().await {
                Ok(warm) => warm,
                Err(rejection) => {
                    return Inspection {
                        message,
                        verdict: Verdict::Reject(rejection),
                        elapsed: start.elapsed(),
                        fuel: None,
                    };
                }
            },
        };
        let state = warm.store.data_mut();
        state.log = LogBudget::new(self.options.limits.log_bytes);
        state.limiter.denied = None;
        let (message, outcome, fuel) = self.call_inspect(&mut warm, message).await;
        let verdict = match outcome {
            Ok(verdict) => {
                self.keep_warm(warm);
                verdict
            }
            // A faulted instance is dropped here, never reused.
            Err(fault) => Verdict::Reject(fault),
        };
        Inspection {
            message,
            verdict,
            elapsed: start.elapsed(),
            fuel,
        }
    }

    /// [`Hook::inspect`] for callers outside an async runtime.
    pub fn inspect_blocking(&self, message: Message) -> Inspection {
        block_on(self.inspect(message))
    }

    fn keep_warm(&self, warm: Warm) {
        if let InstanceMode::Reuse { max_idle } = self.options.mode {
            let mut idle = self.warm.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < max_idle {
                idle.push(warm);
            }
        }
    }

    fn store(&self) -> Store<HookState> {
        let limits = self.options.limits;
        let mut store = Store::new(
            &self.engine.inner().engine,
            HookState {
                digest: self.digest.clone(),
                limiter: Limiter {
                    limits,
                    denied: None,
                },
                log: LogBudget::new(limits.log_bytes),
                call_started: Instant::now(),
                timeout: limits.timeout,
                wasi: None,
            },
        );
        store.limiter(|state| &mut state.limiter);
        // At each epoch tick: yield to the executor, or stop a call that ran out of time.
        store.epoch_deadline_callback(|context| {
            let state = context.data();
            Ok(match state.call_started.elapsed() >= state.timeout {
                true => UpdateDeadline::Interrupt,
                false => UpdateDeadline::Yield(1),
            })
        });
        // Instantiation may run wasm (start functions, data fix-ups): it is timed too.
        self.begin_call(&mut store);
        store
    }

    /// Resets the time (and fuel) budget for the next call.
    fn begin_call(&self, store: &mut Store<HookState>) -> Option<u64> {
        store.data_mut().call_started = Instant::now();
        store.set_epoch_deadline(1);
        if !self.engine.config().fuel {
            return None;
        }
        let budget = self.options.limits.fuel.unwrap_or(u64::MAX);
        store.set_fuel(budget).expect("fuel is enabled");
        Some(budget)
    }

    /// A new instance, configured.
    async fn instance(&self) -> Result<Warm, Rejection> {
        let mut store = self.store();
        let instance = match self.pre.instantiate_async(&mut store).await {
            Ok(instance) => instance,
            Err(e) => return Err(self.fault(&store, &e, "instantiating")),
        };
        self.begin_call(&mut store);
        let configured = instance
            .airlock_hook_policy()
            .call_configure(&mut store, &self.options.config)
            .await;
        match configured {
            Ok(Ok(())) => Ok(Warm { store, instance }),
            Ok(Err(reason)) => Err(Rejection::new(code::HOOK_CONFIG, clip_reason(reason))),
            Err(e) => Err(self.fault(&store, &e, "configuring")),
        }
    }

    /// Calls `inspect`; `Err` is a fault, after which the instance must not be reused.
    async fn call_inspect(
        &self,
        warm: &mut Warm,
        message: Message,
    ) -> (Message, Result<Verdict, Rejection>, Option<u64>) {
        let budget = self.begin_call(&mut warm.store);
        let lent = to_wit(message);
        let result = warm
            .instance
            .airlock_hook_policy()
            .call_inspect(&mut warm.store, &lent)
            .await;
        let message = from_wit(lent);
        warm.store.data_mut().take_output();
        let fuel = budget.map(|b| b - warm.store.get_fuel().unwrap_or(0));
        let limits = &self.options.limits;
        let outcome = match result {
            Err(e) => Err(self.fault(&warm.store, &e, "inspecting")),
            Ok(_) if warm.store.data().log.exceeded => Err(Rejection::new(
                code::HOOK_LOG,
                format!(
                    "hook logged more than its limit of {} bytes for one message",
                    limits.log_bytes
                ),
            )),
            Ok(verdict) => from_wit_verdict(verdict),
        };
        (message, outcome, fuel)
    }

    /// Turns a wasmtime error into the rejection that names what the hook did.
    fn fault(&self, store: &Store<HookState>, error: &wasmtime::Error, doing: &str) -> Rejection {
        let limits = &self.options.limits;
        let (code, reason) = match (store.data().limiter.denied, error.downcast_ref::<Trap>()) {
            (Some(Denied::Memory(requested)), _) => (
                code::HOOK_MEMORY,
                format!(
                    "hook needed {requested} bytes of memory while {doing}, over its limit of {} bytes",
                    limits.memory_bytes
                ),
            ),
            (Some(Denied::Table(requested)), _) => (
                code::HOOK_LIMIT,
                format!(
                    "hook needed a table of {requested} elements while {doing}, over its limit of {}",
                    limits.table_elements
                ),
            ),
            (None, Some(Trap::Interrupt)) => (
                code::HOOK_TIMEOUT,
                format!(
                    "hook ran past its time limit of {} ms while {doing}",
                    limits.timeout.as_millis()
                ),
            ),
            (None, Some(Trap::OutOfFuel)) => (
                code::HOOK_TIMEOUT,
                format!(
                    "hook ran out of its fuel budget of {} while {doing}",
                    limits.fuel.unwrap_or(u64::MAX)
                ),
            ),
            (None, Some(Trap::StackOverflow)) => (
                code::HOOK_STACK,
                format!(
                    "hook overflowed its wasm stack of {} KiB while {doing}",
                    self.engine.config().max_wasm_stack >> 10
                ),
            ),
            (None, Some(trap)) => (
                code::HOOK_TRAP,
                format!("hook trapped while {doing}: {trap}"),
            ),
            (None, None) if format!("{error:#}").contains("resource limit exceeded") => (
                code::HOOK_LIMIT,
                format!(
                    "hook needs more than {} instances, memories or tables: {error:#}",
                    limits.instances
                ),
            ),
            (None, None) if doing == "instantiating" => (
                code::HOOK_UNAVAILABLE,
                format!("cannot instantiate the hook: {error:#}"),
            ),
            // Other errors come from lifting what the hook returned.
            (None, None) => (
                code::HOOK_OUTPUT,
                format!("hook returned malformed output while {doing}: {error:#}"),
            ),
        };
        tracing::warn!(digest = %self.digest, code, "hook fault: {reason}");
        Rejection::new(code, reason)
    }
}

/// WASI 0.2 interfaces Airlock links, as deny-by-default stubs (see `wasi.rs`).
const WASI_INTERFACES: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:clocks/monotonic-clock",
    "wasi:clocks/wall-clock",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/ip-name-lookup",
];

/// Whether Airlock links an import of this name.
fn provided(name: &str) -> bool {
    if [LOG_IMPORT, TYPES_IMPORT].contains(&name) {
        return true;
    }
    match name.split_once('@') {
        Some((interface, version)) => {
            version.starts_with("0.2.") && WASI_INTERFACES.contains(&interface)
        }
        None => false,
    }
}

fn check_limits(engine: &HookEngine, limits: &HookLimits) -> Result<(), HookError> {
    let ceiling = engine.config().memory_ceiling;
    let problem = if limits.memory_bytes > ceiling {
        format!(
            "memory limit of {} bytes is above the engine's ceiling of {ceiling} bytes",
            limits.memory_bytes
        )
    } else if limits.timeout.is_zero() {
        "time limit must be above zero".to_owned()
    } else if limits.fuel.is_some() && !engine.config().fuel {
        "a fuel budget needs an engine that meters fuel (EngineConfig::fuel)".to_owned()
    } else {
        return Ok(());
    };
    Err(HookError::Limit(problem))
}

/// Runs a future whose only pauses are wasmtime's own yields (which wake at once) to completion
/// on this thread.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

fn to_wit(message: Message) -> wit::Message {
    wit::Message {
        id: message.id,
        kind: match message.kind {
            crate::Kind::Command => wit::Kind::Command,
            crate::Kind::Event => wit::Kind::Event,
            crate::Kind::Channel => wit::Kind::Channel,
        },
        name: message.name,
        source: wit::Source {
            window: message.source.window,
            webview: message.source.webview,
            origin: message.source.origin,
        },
        headers: message.headers.into_iter().map(to_wit_header).collect(),
        body: to_wit_body(message.body),
    }
}

fn from_wit(message: wit::Message) -> Message {
    Message {
        id: message.id,
        kind: match message.kind {
            wit::Kind::Command => crate::Kind::Command,
            wit::Kind::Event => crate::Kind::Event,
            wit::Kind::Channel => crate::Kind::Channel,
        },
        name: message.name,
        source: crate::Source {
            window: message.source.window,
            webview: message.source.webview,
            origin: message.source.origin,
        },
        headers: message.headers.into_iter().map(from_wit_header).collect(),
        body: from_wit_body(message.body),
    }
}

fn to_wit_header(header: Header) -> wit::Header {
    wit::Header {
        name: header.name,
        value: header.value,
    }
}

fn from_wit_header(header: wit::Header) -> Header {
    Header {
        name: header.name,
        value: header.value,
    }
}

fn to_wit_body(body: Body) -> wit::Body {
    match body {
        Body::Json(text) => wit::Body::Json(text),
        Body::Bytes(bytes) => wit::Body::Bytes(bytes),
    }
}

fn from_wit_body(body: wit::Body) -> Body {
    match body {
        wit::Body::Json(text) => Body::Json(text),
        wit::Body::Bytes(bytes) => Body::Bytes(bytes),
    }
}

/// The hook's verdict, or a `hook-output` fault for a malformed rejection code.
fn from_wit_verdict(verdict: wit::Verdict) -> Result<Verdict, Rejection> {
    Ok(match verdict {
        wit::Verdict::Pass => Verdict::Pass,
        wit::Verdict::Replace(r) => Verdict::Replace(Replacement {
            name: r.name,
            headers: r
                .headers
                .map(|headers| headers.into_iter().map(from_wit_header).collect()),
            body: r.body.map(from_wit_body),
        }),
        wit::Verdict::Reject(r) => match check_hook_code(&r.code) {
            Ok(()) => Verdict::Reject(Rejection::new(r.code, clip_reason(r.reason))),
            Err(problem) => return Err(Rejection::new(code::HOOK_OUTPUT, problem)),
        },
    })
}

/// What a hook's store holds: its limiter, log budget and the current call's clock.
pub(crate) struct HookState {
    digest: Arc<str>,
    limiter: Limiter,
    log: LogBudget,
    call_started: Instant,
    timeout: Duration,
    /// Built on first use, for hooks that import WASI.
    wasi: Option<WasiState>,
}

impl HookState {
    /// Writes a line to the host's log, within the per-message budget.
    fn record(&mut self, level: log::Level, text: &str) {
        if self.log.exceeded || text.len() > self.log.left {
            self.log.exceeded = true;
            return;
        }
        self.log.left -= text.len();
        let digest = &self.digest[..12];
        match level {
            log::Level::Trace => tracing::trace!(hook = digest, "{text}"),
            log::Level::Debug => tracing::debug!(hook = digest, "{text}"),
            log::Level::Info => tracing::info!(hook = digest, "{text}"),
            log::Level::Warn => tracing::warn!(hook = digest, "{text}"),
            log::Level::Error => tracing::error!(hook = digest, "{text}"),
        }
    }

    /// Takes what the hook wrote to stdout and stderr into the log.
    fn take_output(&mut self) {
        let Some(wasi) = self.wasi.as_mut() else {
            return;
        };
        let output = wasi.take_output();
        if !output.is_empty() {
            self.record(
                log::Level::Info,
                String::from_utf8_lossy(&output).trim_end(),
            );
        }
    }
}

impl wasmtime_wasi::WasiView for HookState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        let wasi = self.wasi.get_or_insert_with(WasiState::new);
        wasmtime_wasi::WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut wasi.table,
        }
    }
}

#[derive(Clone, Copy)]
enum Denied {
    Memory(usize),
    Table(usize),
}

struct Limiter {
    limits: HookLimits,
    /// Set when a grow was refused: a trap that follows is that limit's fault.
    denied: Option<Denied>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes {
            self.denied = Some(Denied::Memory(desired));
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.table_elements {
            self.denied = Some(Denied::Table(desired));
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.limits.instances
    }

    fn tables(&self) -> usize {
        self.limits.instances
    }

    fn memories(&self) -> usize {
        self.limits.instances
    }
}

struct LogBudget {
    left: usize,
    exceeded: bool,
}

impl LogBudget {
    fn new(bytes: usize) -> Self {
        LogBudget {
            left: bytes,
            exceeded: false,
        }
    }
}

impl log::Host for HookState {
    fn log(&mut self, level: log::Level, text: String) {
        self.record(level, &text);
    }
}

impl wit::Host for HookState {}
