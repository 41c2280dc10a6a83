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

use wasmtime::Store;
use wasmtime::component::ComponentExportIndex;

use crate::bindings::{self, Hook as HookWorld, HookPre};
use crate::cache::CacheOutcome;
use crate::engine::{HookEngine, POOL_CORE_INSTANCES, POOL_MEMORIES, POOL_TABLES};
use crate::error::HookError;
use crate::message::Message;
use crate::options::{HookLimits, HookOptions, InstanceMode};
use crate::quarantine::Quarantine;
use crate::store::{self, HookState};
use crate::trust::{self, Signature, Trust};
use crate::verdict::{Rejection, Verdict, clip_reason, code};

/// The only import with functions a hook may have.
pub(crate) const LOG_IMPORT: &str = "airlock:hook/log@0.1.0";
/// Host-owned state, which a hook may import (see `state.rs`).
pub(crate) const STATE_IMPORT: &str = "airlock:hook/state@0.1.0";
/// The interface of shared types; a hook imports it for its types only (it has no functions).
pub(crate) const TYPES_IMPORT: &str = "airlock:hook/types@0.1.0";

/// A loaded, checked and configured hook, ready to inspect messages from many tasks at once.
/// Clones share the hook (and its warm instances).
#[derive(Clone)]
pub struct Hook {
    engine: HookEngine,
    pre: HookPre<HookState>,
    digest: Arc<str>,
    name: Arc<str>,
    options: Arc<HookOptions>,
    compiled: CacheOutcome,
    warm: Arc<Mutex<Vec<Warm>>>,
    quarantine: Arc<Quarantine>,
    pool_share: usize,
    /// The coverage readers of an instrumented hook loaded with [`HookOptions::coverage`].
    coverage: Arc<[ComponentExportIndex]>,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("name", &self.name)
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
    /// The blocks of the hook's code this message reached, in the order first reached, for a hook
    /// loaded with [`HookOptions::coverage`]; `None` otherwise, or when the instance faulted.
    pub coverage: Option<Vec<u32>>,
}

/// A configured instance and its store.
struct Warm {
    store: Store<HookState>,
    instance: HookWorld,
    component: wasmtime::component::Instance,
}

impl Hook {
    /// Reads and loads a hook component from a file; when its options require a signature, it
    /// is read from `PATH.sig` beside it ([`Signature::path_for`]).
    pub fn load_file(
        engine: &HookEngine,
        path: impl AsRef<Path>,
        options: HookOptions,
    ) -> Result<Hook, HookError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| HookError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let signature = read_signature(path, &options.trust)?;
        Hook::load_signed(engine, &bytes, signature.as_ref(), options)
    }

    /// Compiles and checks a hook component, then configures a trial instance (kept as the first
    /// warm instance in reuse mode). With a pin or trusted keys in its options, use
    /// [`Hook::load_signed`].
    pub fn load(
        engine: &HookEngine,
        bytes: &[u8],
        options: HookOptions,
    ) -> Result<Hook, HookError> {
        Hook::load_signed(engine, bytes, None, options)
    }

    /// [`Hook::load`], checking the bytes against the options' [`Trust`] first: its pin, and a
    /// valid `signature` from one of its trusted keys when it has any. Nothing is compiled
    /// before the check passes.
    pub fn load_signed(
        engine: &HookEngine,
        bytes: &[u8],
        signature: Option<&Signature>,
        options: HookOptions,
    ) -> Result<Hook, HookError> {
        check_limits(engine, &options.limits)?;
        let digest: Arc<str> = trust::digest(bytes).into();
        options.trust.check(bytes, &digest, signature)?;
        if bytes.starts_with(b"\0asm\x01\0\0\0") {
            return Err(HookError::CoreModule);
        }
        let (component, compiled) = engine.compile(bytes, &digest)?;

        let unsupported: Vec<String> = component
            .component_type()
            .imports(engine.wasmtime())
            .map(|(name, _)| name)
            .filter(|name| !provided(name))
            .map(str::to_owned)
            .collect();
        if !unsupported.is_empty() {
            return Err(HookError::UnsupportedImports(unsupported));
        }

        let instance_pre = engine.linker().instantiate_pre(&component).map_err(|e| {
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
        let coverage: Arc<[ComponentExportIndex]> = match options.coverage {
            false => Arc::new([]),
            true => coverage_exports(engine, &component)?.into(),
        };
        let mut hook = Hook {
            pool_share: pool_share(bytes, &component),
            engine: engine.clone(),
            pre,
            digest,
            quarantine: Arc::new(Quarantine::new(&options.limits)),
            name: options.name.as_str().into(),
            options: Arc::new(options),
            compiled,
            warm: Arc::new(Mutex::new(Vec::new())),
            coverage,
        };

        let before = pool_usage(engine);
        let trial = block_on(hook.instance()).map_err(|rejection| {
            if rejection.code == code::HOOK_CONFIG {
                HookError::ConfigRefused(rejection.reason)
            } else {
                HookError::ConfigFault(rejection)
            }
        })?;
        // What the trial instance took from the pool, wasmtime's own adapter instances included
        // (more than the binary shows, when something else was not being freed meanwhile).
        let used = pool_usage(engine);
        hook.pool_share = [
            hook.pool_share,
            used.0
                .saturating_sub(before.0)
                .div_ceil(POOL_CORE_INSTANCES),
            used.1.saturating_sub(before.1).div_ceil(POOL_MEMORIES),
            used.2.saturating_sub(before.2).div_ceil(POOL_TABLES),
        ]
        .into_iter()
        .max()
        .unwrap_or(1);
        hook.keep_warm(trial);
        tracing::info!(hook = %hook.digest, compiled = ?hook.compiled, pool_share = hook.pool_share, "hook loaded");
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

    /// The hook's name ([`HookOptions::name`]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name, shared.
    pub fn name_arc(&self) -> Arc<str> {
        self.name.clone()
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

    /// How many of the engine's [`max_instances`](crate::EngineConfig::max_instances) one
    /// instance of this hook takes: 1, or more for a component of many core modules (the pool
    /// holds 4 core instances, 2 memories and 4 tables per instance; a CPython hook makes
    /// about 14 core instances, so it takes 4). Counted in the component and in what its trial
    /// instance took from the pool at load, whichever is more.
    pub fn pool_share(&self) -> usize {
        self.pool_share
    }

    /// Runs the hook on one message. Faults are `hook-*` rejections; the message comes back as it
    /// went in. A hook quarantined for the message's window (see
    /// [`HookLimits::quarantine_faults`]) rejects with `hook-quarantined` without starting an
    /// instance.
    pub async fn inspect(&self, message: Message) -> Inspection {
        let start = Instant::now();
        if let Some(rejection) = self.quarantine.check(&self.digest, &message.source.window) {
            return Inspection {
                message,
                verdict: Verdict::Reject(rejection),
                elapsed: start.elapsed(),
                fuel: None,
                coverage: None,
            };
        }
        let inspection = self.run(message, start).await;
        if let Verdict::Reject(rejection) = &inspection.verdict
            && rejection.code.starts_with("hook-")
        {
            let window = &inspection.message.source.window;
            self.quarantine.record(&self.digest, window, rejection);
        }
        inspection
    }

    /// [`Hook::inspect`] past the quarantine check.
    async fn run(&self, message: Message, start: Instant) -> Inspection {
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
                        coverage: None,
                    };
                }
            },
        };
        store::begin_message(&mut warm.store, &message.source.window);
        let (message, outcome, fuel) = self.call_inspect(&mut warm, message).await;
        let (verdict, coverage) = match outcome {
            Ok(verdict) => {
                let coverage = self.read_coverage(&mut warm).await;
                self.keep_warm(warm);
                (verdict, coverage)
            }
            // A faulted instance is dropped here, never reused.
            Err(fault) => (Verdict::Reject(fault), None),
        };
        Inspection {
            message,
            verdict,
            elapsed: start.elapsed(),
            fuel,
            coverage,
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

    /// A new instance, configured.
    async fn instance(&self) -> Result<Warm, Rejection> {
        let mut store = store::new_store(
            &self.engine,
            self.digest.clone(),
            self.name.clone(),
            self.options.limits,
        );
        let instantiated = match self.pre.instance_pre().instantiate_async(&mut store).await {
            Ok(component) => HookWorld::new(&mut store, &component).map(|hook| (hook, component)),
            Err(e) => Err(e),
        };
        let (instance, component) = match instantiated {
            Ok(instance) => instance,
            Err(e) => return Err(store::fault(&store, &e, "instantiating")),
        };
        store::begin_call(&mut store);
        let configured = instance
            .airlock_hook_policy()
            .call_configure(&mut store, &self.options.config)
            .await;
        match configured {
            Ok(Ok(())) => {
                let mut warm = Warm {
                    store,
                    instance,
                    component,
                };
                // What `configure` reached is not the first message's.
                self.read_coverage(&mut warm).await;
                Ok(warm)
            }
            Ok(Err(reason)) => Err(Rejection::new(code::HOOK_CONFIG, clip_reason(reason))),
            Err(e) => Err(store::fault(&store, &e, "configuring")),
        }
    }

    /// The blocks reached since the last read, from every coverage reader of an instrumented
    /// hook (`None` when it has none, or one failed).
    async fn read_coverage(&self, warm: &mut Warm) -> Option<Vec<u32>> {
        if self.coverage.is_empty() {
            return None;
        }
        store::begin_call(&mut warm.store);
        let mut blocks = Vec::new();
        for index in self.coverage.iter() {
            let read = warm
                .component
                .get_typed_func::<(), (Vec<u32>,)>(&mut warm.store, index)
                .ok()?;
            let (mut reached,) = read.call_async(&mut warm.store, ()).await.ok()?;
            blocks.append(&mut reached);
        }
        Some(blocks)
    }

    /// Calls `inspect`; `Err` is a fault, after which the instance must not be reused.
    async fn call_inspect(
        &self,
        warm: &mut Warm,
        message: Message,
    ) -> (Message, Result<Verdict, Rejection>, Option<u64>) {
        let budget = store::begin_call(&mut warm.store);
        let lent = bindings::to_wit(message);
        let result = warm
            .instance
            .airlock_hook_policy()
            .call_inspect(&mut warm.store, &lent)
            .await;
        let message = bindings::from_wit(lent);
        let logged = store::end_call(&mut warm.store);
        let fuel = budget.map(|b| b - store::fuel_left(&warm.store));
        let outcome = match (result, logged) {
            (Err(e), _) => Err(store::fault(&warm.store, &e, "inspecting")),
            (Ok(_), Err(flood)) => Err(flood),
            (Ok(verdict), Ok(())) => bindings::from_wit_verdict(verdict),
        };
        (message, outcome, fuel)
    }
}

/// The coverage readers an instrumented component exports (see [`HookOptions::coverage`]).
fn coverage_exports(
    engine: &HookEngine,
    component: &wasmtime::component::Component,
) -> Result<Vec<ComponentExportIndex>, HookError> {
    let readers: Vec<ComponentExportIndex> = component
        .component_type()
        .exports(engine.wasmtime())
        .filter(|(name, _)| name.starts_with(COVERAGE_EXPORT))
        .filter_map(|(name, _)| component.get_export_index(None, name))
        .collect();
    match readers.is_empty() {
        true => Err(HookError::World(format!(
            "coverage was asked for, but the hook exports no {COVERAGE_EXPORT}N function: \
             it was not instrumented"
        ))),
        false => Ok(readers),
    }
}

/// The prefix of the functions an instrumented hook reads its coverage with.
const COVERAGE_EXPORT: &str = "airlock-coverage-m";

/// How many of the pool's instance shares one instance of the component `bytes` takes: its core
/// instances (counted in the binary, nested components included), memories and tables (as
/// wasmtime counts them), each against its share.
fn pool_share(bytes: &[u8], component: &wasmtime::component::Component) -> usize {
    let core_instances: usize = wasmparser::Parser::new(0)
        .parse_all(bytes)
        .map(|payload| match payload {
            Ok(wasmparser::Payload::InstanceSection(instances)) => instances
                .into_iter()
                .filter(|i| matches!(i, Ok(wasmparser::Instance::Instantiate { .. })))
                .count(),
            _ => 0,
        })
        .sum();
    let (memories, tables) = component
        .resources_required()
        .map_or((0, 0), |r| (r.num_memories as usize, r.num_tables as usize));
    [
        core_instances.div_ceil(POOL_CORE_INSTANCES),
        memories.div_ceil(POOL_MEMORIES),
        tables.div_ceil(POOL_TABLES),
        1,
    ]
    .into_iter()
    .max()
    .unwrap_or(1)
}

/// Core instances, memories and tables alive in the engine's pool.
fn pool_usage(engine: &HookEngine) -> (usize, usize, usize) {
    engine
        .wasmtime()
        .pooling_allocator_metrics()
        .map_or((0, 0, 0), |m| {
            (m.core_instances() as usize, m.memories(), m.tables())
        })
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
    if [LOG_IMPORT, STATE_IMPORT, TYPES_IMPORT].contains(&name) {
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
    let table_ceiling = engine.config().table_elements_ceiling;
    let problem = if limits.memory_bytes > ceiling {
        format!(
            "memory limit of {} bytes is above the engine's ceiling of {ceiling} bytes",
            limits.memory_bytes
        )
    } else if limits.table_elements > table_ceiling {
        format!(
            "table limit of {} elements is above the engine's ceiling of {table_ceiling} elements",
            limits.table_elements
        )
    } else if limits.timeout.is_zero() {
        "time limit must be above zero".to_owned()
    } else if limits.quarantine_window.is_zero() {
        "quarantine window must be above zero".to_owned()
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

/// The signature beside a hook file, when `trust` requires one (`None` when it does not).
pub(crate) fn read_signature(path: &Path, trust: &Trust) -> Result<Option<Signature>, HookError> {
    if !trust.requires_signature() {
        return Ok(None);
    }
    let sig = Signature::path_for(path);
    if !sig.exists() {
        return Ok(None);
    }
    Signature::read(&sig)
        .map(Some)
        .map_err(HookError::Signature)
}
