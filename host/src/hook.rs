//! Loading, checking and running hook components.
//!
//! One [`HookEngine`] holds the `wasmtime::Engine` and every wasmtime setting Airlock uses, in
//! [`HookEngine::new`] and nowhere else: the pooling allocator (copy-on-write memory, memory and
//! tables kept resident), epoch interruption driven by a ticker thread, and a memory ceiling.
//!
//! [`Hook::load`] compiles a component, refuses any import Airlock does not provide (naming each
//! one), prepares an `InstancePre` once, and runs `configure` on a trial instance so that a bad
//! config fails at load time, not on the first message. [`Hook::inspect`] then runs a fresh
//! instance per message: nothing a hook does to its memory survives into the next message. Every
//! fault becomes a `hook-*` rejection; the host carries on and the next message gets a new
//! instance.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter,
    Store, Trap,
};

use crate::bindings::airlock::hook::{log, types as wit};
use crate::bindings::{Hook as HookWorld, HookPre};
use crate::message::{Body, Header, Message};
use crate::verdict::{Rejection, Replacement, Verdict, check_hook_code, clip_reason, code};

/// The only import with functions a hook may have.
pub const LOG_IMPORT: &str = "airlock:hook/log@0.1.0";
/// The interface of shared types; a hook imports it for its types only (it has no functions).
pub const TYPES_IMPORT: &str = "airlock:hook/types@0.1.0";
/// The interface every hook must export.
pub const POLICY_EXPORT: &str = "airlock:hook/policy@0.1.0";

/// Engine-wide settings. Defaults: up to 256 hook instances alive at once, a 1 GiB ceiling on
/// any one hook memory (each hook's own limit, [`HookLimits::memory_bytes`], sits below it), and a
/// 1 ms epoch tick (the resolution of hook timeouts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// Hook instances that may be alive at once, across all hooks of this engine.
    pub max_instances: u32,
    /// Largest linear memory any hook may ever have, in bytes.
    pub memory_ceiling: usize,
    /// How often the epoch advances; timeouts are counted in these ticks.
    pub epoch_tick: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_instances: 256,
            memory_ceiling: 1 << 30,
            epoch_tick: Duration::from_millis(1),
        }
    }
}

/// Limits on one hook call. Defaults: 100 ms, 64 MiB of linear memory, 64 KiB of log text per
/// message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookLimits {
    /// Wall-clock time for `configure`, and again for `inspect`.
    pub timeout: Duration,
    /// Linear memory, in bytes (at most the engine's [`EngineConfig::memory_ceiling`]).
    pub memory_bytes: usize,
    /// Log text per message, in bytes; logging more rejects the message with `hook-log`.
    pub log_bytes: usize,
}

impl Default for HookLimits {
    fn default() -> Self {
        HookLimits {
            timeout: Duration::from_millis(100),
            memory_bytes: 64 << 20,
            log_bytes: 64 << 10,
        }
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
    #[error("hook imports what Airlock does not provide: {} (Airlock provides only {LOG_IMPORT}, and the types of {TYPES_IMPORT})", .0.join(", "))]
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

/// Owns the wasmtime engine and its epoch ticker. Cheap to clone; hooks loaded with it share it.
#[derive(Debug, Clone)]
pub struct HookEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    engine: Engine,
    linker: Linker<HookState>,
    config: EngineConfig,
    stop_ticker: Arc<AtomicBool>,
}

impl std::fmt::Debug for EngineInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineInner")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

impl HookEngine {
    /// Sets up the engine (all of Airlock's wasmtime configuration lives here) and starts its
    /// epoch ticker thread, which stops when the last clone is dropped.
    pub fn new(config: EngineConfig) -> Result<Self, HookError> {
        let mut pool = PoolingAllocationConfig::default();
        let n = config.max_instances.max(1);
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(4))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .max_memory_size(config.memory_ceiling)
            .linear_memory_keep_resident(1 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(Enabled::Auto);
        let mut wasm = Config::new();
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .memory_init_cow(true)
            .epoch_interruption(true)
            .max_wasm_stack(512 << 10);
        let engine = Engine::new(&wasm).map_err(|e| HookError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        HookWorld::add_to_linker::<HookState, HasSelf<HookState>>(&mut linker, |state| state)
            .map_err(|e| HookError::Engine(format!("{e:#}")))?;

        let stop_ticker = Arc::new(AtomicBool::new(false));
        let ticker_engine = engine.clone();
        let stop = stop_ticker.clone();
        let tick = config.epoch_tick.max(Duration::from_micros(100));
        std::thread::Builder::new()
            .name("airlock-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| HookError::Engine(format!("cannot start the epoch ticker: {e}")))?;

        Ok(HookEngine {
            inner: Arc::new(EngineInner {
                engine,
                linker,
                config,
                stop_ticker,
            }),
        })
    }

    /// The settings this engine was made with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    fn ticks(&self, timeout: Duration) -> u64 {
        let tick = self.inner.config.epoch_tick.max(Duration::from_micros(100));
        // One extra tick: the current one may be about to end.
        (timeout.as_nanos().div_ceil(tick.as_nanos()) as u64).saturating_add(1)
    }
}

/// How to load a hook: its config (JSON text) and limits. Default: config `{}`, default limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOptions {
    /// The app's JSON configuration, passed to `configure` on every instance.
    pub config: String,
    /// Per-call limits.
    pub limits: HookLimits,
}

impl Default for HookOptions {
    fn default() -> Self {
        HookOptions {
            config: "{}".to_owned(),
            limits: HookLimits::default(),
        }
    }
}

/// A loaded, checked and configured hook, ready to inspect messages from many threads at once.
#[derive(Clone)]
pub struct Hook {
    engine: HookEngine,
    pre: HookPre<HookState>,
    digest: Arc<str>,
    options: Arc<HookOptions>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("digest", &self.digest)
            .field("limits", &self.options.limits)
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
    /// Wall-clock time of the whole call: instantiate, configure, inspect.
    pub elapsed: Duration,
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

    /// Compiles and checks a hook component, then configures a trial instance.
    pub fn load(
        engine: &HookEngine,
        bytes: &[u8],
        options: HookOptions,
    ) -> Result<Hook, HookError> {
        let limits = options.limits;
        if limits.memory_bytes > engine.inner.config.memory_ceiling {
            return Err(HookError::Limit(format!(
                "memory limit {} bytes is above the engine's ceiling of {} bytes",
                limits.memory_bytes, engine.inner.config.memory_ceiling
            )));
        }
        if limits.timeout.is_zero() {
            return Err(HookError::Limit("timeout must be above zero".into()));
        }
        if bytes.starts_with(b"\0asm\x01\0\0\0") {
            return Err(HookError::CoreModule);
        }
        let digest: Arc<str> = format!("{:x}", Sha256::digest(bytes)).into();
        let component = Component::new(&engine.inner.engine, bytes)
            .map_err(|e| HookError::Compile(format!("{e:#}")))?;

        let unsupported: Vec<String> = component
            .component_type()
            .imports(&engine.inner.engine)
            .map(|(name, _)| name)
            .filter(|name| ![LOG_IMPORT, TYPES_IMPORT].contains(name))
            .map(str::to_owned)
            .collect();
        if !unsupported.is_empty() {
            return Err(HookError::UnsupportedImports(unsupported));
        }

        let instance_pre = engine
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| HookError::World(format!("{e:#}")))?;
        let pre = HookPre::new(instance_pre).map_err(|e| HookError::World(format!("{e:#}")))?;
        let hook = Hook {
            engine: engine.clone(),
            pre,
            digest,
            options: Arc::new(options),
        };

        let mut store = hook.store();
        let instance = hook
            .pre
            .instantiate(&mut store)
            .map_err(|e| HookError::ConfigFault(hook.fault(&store, &e, "instantiating")))?;
        hook.configure(&mut store, &instance).map_err(|rejection| {
            if rejection.code == code::HOOK_CONFIG {
                HookError::ConfigRefused(rejection.reason)
            } else {
                HookError::ConfigFault(rejection)
            }
        })?;
        tracing::info!(digest = %hook.digest, "hook loaded");
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

    /// The limits each call runs under.
    pub fn limits(&self) -> &HookLimits {
        &self.options.limits
    }

    /// Runs a fresh instance on one message: instantiate, `configure`, `inspect`. Faults are
    /// `hook-*` rejections. The message comes back as it went in.
    pub fn inspect(&self, message: Message) -> Inspection {
        let start = Instant::now();
        let mut store = self.store();
        let (message, verdict) = self.run(&mut store, message);
        let verdict = match store.data().log.exceeded {
            true => Verdict::Reject(Rejection::new(
                code::HOOK_LOG,
                format!(
                    "hook logged more than its limit of {} bytes for one message",
                    self.options.limits.log_bytes
                ),
            )),
            false => verdict,
        };
        Inspection {
            message,
            verdict,
            elapsed: start.elapsed(),
        }
    }

    fn store(&self) -> Store<HookState> {
        let limits = &self.options.limits;
        let mut store = Store::new(
            &self.engine.inner.engine,
            HookState {
                digest: self.digest.clone(),
                limiter: Limiter {
                    memory_bytes: limits.memory_bytes,
                    denied: None,
                },
                log: LogBudget {
                    left: limits.log_bytes,
                    exceeded: false,
                },
            },
        );
        store.limiter(|state| &mut state.limiter);
        // Instantiation may run wasm (start functions, data fix-ups): it gets a deadline too.
        store.set_epoch_deadline(self.engine.ticks(limits.timeout));
        store
    }

    fn configure(&self, store: &mut Store<HookState>, hook: &HookWorld) -> Result<(), Rejection> {
        store.set_epoch_deadline(self.engine.ticks(self.options.limits.timeout));
        match hook
            .airlock_hook_policy()
            .call_configure(&mut *store, &self.options.config)
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(reason)) => Err(Rejection::new(code::HOOK_CONFIG, clip_reason(reason))),
            Err(e) => Err(self.fault(store, &e, "configuring")),
        }
    }

    fn run(&self, store: &mut Store<HookState>, message: Message) -> (Message, Verdict) {
        let hook = match self.pre.instantiate(&mut *store) {
            Ok(hook) => hook,
            Err(e) => {
                let rejection = self.fault(store, &e, "instantiating");
                return (message, Verdict::Reject(rejection));
            }
        };
        if let Err(rejection) = self.configure(store, &hook) {
            return (message, Verdict::Reject(rejection));
        }
        store.set_epoch_deadline(self.engine.ticks(self.options.limits.timeout));
        let lent = to_wit(message);
        let result = hook.airlock_hook_policy().call_inspect(&mut *store, &lent);
        let message = from_wit(lent);
        let verdict = match result {
            Ok(verdict) => from_wit_verdict(verdict),
            Err(e) => Verdict::Reject(self.fault(store, &e, "inspecting")),
        };
        (message, verdict)
    }

    /// Turns a wasmtime error into the rejection that names what the hook did.
    fn fault(&self, store: &Store<HookState>, error: &wasmtime::Error, doing: &str) -> Rejection {
        let limits = &self.options.limits;
        if let Some(requested) = store.data().limiter.denied {
            return Rejection::new(
                code::HOOK_MEMORY,
                format!(
                    "hook needed {requested} bytes of memory while {doing}, over its limit of {} bytes",
                    limits.memory_bytes
                ),
            );
        }
        let (code, reason) = match error.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => (
                code::HOOK_TIMEOUT,
                format!(
                    "hook ran past its time limit of {} ms while {doing}",
                    limits.timeout.as_millis()
                ),
            ),
            Some(Trap::StackOverflow) => (
                code::HOOK_STACK,
                format!("hook overflowed its wasm stack while {doing}"),
            ),
            Some(trap) => (
                code::HOOK_TRAP,
                format!("hook trapped while {doing}: {trap}"),
            ),
            None if doing == "instantiating" => (
                code::HOOK_UNAVAILABLE,
                format!("cannot instantiate the hook: {error:#}"),
            ),
            // Errors that are not traps come from lifting what the hook returned.
            None => (
                code::HOOK_OUTPUT,
                format!("hook returned malformed output while {doing}: {error:#}"),
            ),
        };
        tracing::warn!(digest = %self.digest, code, "hook fault: {reason}");
        Rejection::new(code, reason)
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

fn from_wit_verdict(verdict: wit::Verdict) -> Verdict {
    match verdict {
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
            Err(problem) => Verdict::Reject(Rejection::new(code::HOOK_OUTPUT, problem)),
        },
    }
}

/// What a hook's store holds: its limiter and log budget for this one message.
struct HookState {
    digest: Arc<str>,
    limiter: Limiter,
    log: LogBudget,
}

struct Limiter {
    memory_bytes: usize,
    /// Set when a memory grow was refused: a trap that follows is a memory fault.
    denied: Option<usize>,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.denied = Some(desired);
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
        Ok(desired <= 100_000)
    }
}

struct LogBudget {
    left: usize,
    exceeded: bool,
}

impl log::Host for HookState {
    fn log(&mut self, level: log::Level, text: String) {
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
}

impl wit::Host for HookState {}
