//! The wasmtime engine: every wasmtime setting Airlock uses lives here and nowhere else.
//!
//! One [`HookEngine`] per process: the pooling allocator (copy-on-write memory, memory and tables
//! kept resident between instances), async calls on fibers so that a running hook yields to the
//! executor at every epoch tick, epoch interruption driven by a ticker thread, an optional fuel
//! meter, and ceilings on memory and stack that no hook's own limits may exceed.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::bindings::Hook as HookWorld;
use crate::cache::{self, CacheOutcome, CompiledCache};
use crate::error::HookError;
use crate::state::HostState;
use crate::store::HookState;

/// Engine-wide settings.
///
/// Defaults: up to 256 hook instances alive at once across all hooks, a 1 GiB ceiling on any
/// hook's linear memory and a 100 000-element ceiling on any of its tables (each hook's own
/// limits sit below them), a 512 KiB wasm stack, a 1 ms epoch
/// tick (the resolution of time limits, and how often a running hook yields to the executor),
/// 4 MiB of each hook memory kept resident between instances, and no fuel metering (it costs
/// 12–35 % per call; turn it on for deterministic budgets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineConfig {
    /// Hook instances that may be alive at once, across all hooks of this engine (warm ones
    /// kept for reuse included).
    pub max_instances: u32,
    /// Largest linear memory any hook may ever have, in bytes.
    pub memory_ceiling: usize,
    /// Most elements any hook table may ever have: the size of each table slot of the pooling
    /// allocator, so that a hook's own [`table_elements`](crate::HookLimits::table_elements)
    /// limit (which may not exceed it) is the one a grow meets. Each slot reserves 8 bytes per
    /// element of address space, for 4 tables per instance: at the default 100 000 elements and
    /// 256 instances that is about 780 MiB reserved, of which only the pages a table touched are
    /// resident (and at most 64 KiB of each stays so between instances).
    pub table_elements_ceiling: usize,
    /// Wasm stack per call, in bytes; deeper recursion is a `hook-stack` rejection.
    pub max_wasm_stack: usize,
    /// How often the epoch advances.
    pub epoch_tick: Duration,
    /// Count fuel (wasm instructions, roughly), so hooks can have a fuel budget.
    pub fuel: bool,
    /// Bytes at the start of each hook memory that stay mapped when an instance ends, reset in
    /// place for the next instance (zeroed, or found and reset with the kernel's page-map scan
    /// when [`pagemap_scan`](EngineConfig::pagemap_scan) is on), while memory past it is given
    /// back to the OS and faulted in again by the next instance that touches it. At most
    /// `max_instances` times this stays resident. See BENCHMARKS.md for what each choice costs
    /// a fresh instance.
    pub keep_resident: usize,
    /// Reset only the pages of the resident part that a hook wrote, found with the kernel's
    /// page-map scan (Linux 6.7 and later), instead of zeroing all of it. **Off by default, and
    /// unsafe wherever the host can swap**: a page written by one instance and swapped out before
    /// its slot is reset is not "present", so the scan skips it and the next instance in that
    /// slot — of any hook of this engine — reads it back (wasmtime 48; see wasmtime#14357).
    /// Turn it on only for hosts with swap off.
    pub pagemap_scan: bool,
    /// Linear memories one core module may define or import (wasmtime's pooling
    /// `max_memories_per_module`): 1 by default, as every hook toolchain makes them; 2 for hooks
    /// instrumented for coverage (`airlock fuzz`), whose modules each get a memory of their own.
    pub memories_per_module: u32,
}

/// The pool's share of core instances, memories and tables per hook instance
/// ([`EngineConfig::max_instances`] of each share).
pub(crate) const POOL_CORE_INSTANCES: usize = 4;
pub(crate) const POOL_MEMORIES: usize = 2;
pub(crate) const POOL_TABLES: usize = 4;

/// The default [`EngineConfig::keep_resident`]: chosen by measurement (BENCHMARKS.md, "Resetting
/// a hook's memory").
const KEEP_RESIDENT: usize = 4 << 20;

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_instances: 256,
            memory_ceiling: 1 << 30,
            table_elements_ceiling: 100_000,
            max_wasm_stack: 512 << 10,
            epoch_tick: Duration::from_millis(1),
            fuel: false,
            keep_resident: KEEP_RESIDENT,
            pagemap_scan: false,
            memories_per_module: 1,
        }
    }
}

/// Owns the wasmtime engine, the linker holding Airlock's imports, and the epoch ticker. Cheap to
/// clone; hooks loaded with it share it.
#[derive(Debug, Clone)]
pub struct HookEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    engine: Engine,
    linker: Linker<HookState>,
    config: EngineConfig,
    cache: Option<CompiledCache>,
    stop_ticker: Arc<AtomicBool>,
    state: HostState,
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

/// Fiber stack for async calls: the wasm stack plus room for host frames.
const HOST_STACK_MARGIN: usize = 1 << 20;

impl HookEngine {
    /// Sets up the engine and starts its epoch ticker thread, which stops when the last clone is
    /// dropped. Every hook is compiled when loaded; see [`HookEngine::with_cache`] to keep
    /// compiled hooks between runs.
    pub fn new(config: EngineConfig) -> Result<Self, HookError> {
        HookEngine::build(config, None)
    }

    /// [`HookEngine::new`], keeping compiled hooks in `dir` (created if missing, private to this
    /// user): a hook loaded before with the same engine settings is not compiled again. Keyed by
    /// the SHA-256 of the component and the engine's settings, and each entry authenticated with
    /// a secret key kept in `dir`. On Unix, a `dir` this user does not own, or that its group or
    /// others can write to, is refused ([`HookError::Cache`]), as is a key file others can read.
    pub fn with_cache(config: EngineConfig, dir: impl AsRef<Path>) -> Result<Self, HookError> {
        HookEngine::build(config, Some(dir.as_ref()))
    }

    fn build(config: EngineConfig, cache_dir: Option<&Path>) -> Result<Self, HookError> {
        let engine_error = HookError::engine;
        let n = config.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        // Per instance, the shares `Hook::pool_share` counts a hook's instances against.
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(POOL_CORE_INSTANCES as u32))
            .total_memories(n.saturating_mul(POOL_MEMORIES as u32))
            .total_tables(n.saturating_mul(POOL_TABLES as u32))
            .total_stacks(n)
            .max_memory_size(config.memory_ceiling)
            // wasmtime's default is 20 000: below Airlock's default hook limit, and a grow
            // refused by the pool never reaches the limiter (it would be a `hook-trap`).
            .table_elements(config.table_elements_ceiling)
            .max_memories_per_module(config.memories_per_module.max(1))
            .linear_memory_keep_resident(config.keep_resident)
            .table_keep_resident(64 << 10)
            .pagemap_scan(match config.pagemap_scan {
                true => Enabled::Auto,
                false => Enabled::No,
            });
        let mut wasm = Config::new();
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .memory_init_cow(true)
            .epoch_interruption(true)
            .consume_fuel(config.fuel)
            .concurrency_support(false)
            .max_wasm_stack(config.max_wasm_stack)
            .async_stack_size(config.max_wasm_stack + HOST_STACK_MARGIN);
        let engine = Engine::new(&wasm).map_err(engine_error)?;
        let cache = cache_dir
            .map(|dir| CompiledCache::open(dir, &engine))
            .transpose()?;
        let mut linker = Linker::new(&engine);
        HookWorld::add_to_linker::<HookState, HasSelf<HookState>>(&mut linker, |state| state)
            .map_err(engine_error)?;
        // Deny-by-default WASI stubs, for language runtimes that import it (see `wasi.rs`).
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(engine_error)?;

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
            .map_err(|e| HookError::Engine(Box::new(e)))?;

        Ok(HookEngine {
            inner: Arc::new(EngineInner {
                engine,
                linker,
                config,
                cache,
                stop_ticker,
                state: HostState::default(),
            }),
        })
    }

    /// The settings this engine was made with.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// The host-owned state of every hook loaded with this engine (`airlock:hook/state`), keyed
    /// by hook name and window; see [`HostState`].
    pub fn state(&self) -> &HostState {
        &self.inner.state
    }

    /// The folder compiled hooks are kept in, if any.
    pub fn cache_dir(&self) -> Option<&Path> {
        self.inner.cache.as_ref().map(CompiledCache::dir)
    }

    /// The wasmtime engine hooks are compiled for and run on.
    pub(crate) fn wasmtime(&self) -> &Engine {
        &self.inner.engine
    }

    /// The linker holding Airlock's imports (the log, WASI stubs).
    pub(crate) fn linker(&self) -> &Linker<HookState> {
        &self.inner.linker
    }

    /// The compiled component for `bytes` (whose SHA-256 is `digest`): from the cache when this
    /// engine has one and holds it, else compiled now (and stored).
    pub(crate) fn compile(
        &self,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(Component, CacheOutcome), HookError> {
        match &self.inner.cache {
            Some(cache) => cache.load(&self.inner.engine, bytes, digest),
            None => Ok((
                cache::compile(&self.inner.engine, bytes)?,
                CacheOutcome::Compiled,
            )),
        }
    }
}

with_fields!(EngineConfig {
    max_instances: u32 => with_max_instances,
    memory_ceiling: usize => with_memory_ceiling,
    table_elements_ceiling: usize => with_table_elements_ceiling,
    max_wasm_stack: usize => with_max_wasm_stack,
    epoch_tick: Duration => with_epoch_tick,
    fuel: bool => with_fuel,
    keep_resident: usize => with_keep_resident,
    pagemap_scan: bool => with_pagemap_scan,
    memories_per_module: u32 => with_memories_per_module,
});
