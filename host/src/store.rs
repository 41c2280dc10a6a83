//! A hook instance's store: what the host keeps beside each instance, and how a call's faults
//! become verdicts.
//!
//! [`new_store`] sets a store up for one hook: the [`ResourceLimiter`] that enforces the hook's
//! memory, table and instance limits, the per-message log budget, and the epoch callback that
//! yields to the executor at every tick and interrupts a call past its time limit (and the fuel
//! budget, when the engine meters fuel). [`fault`] turns whatever stopped a call — a refused
//! grow, an interrupt, a trap, a lifting error — into the `hook-*` rejection that names it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::{ResourceLimiter, Store, Trap, UpdateDeadline};

use crate::bindings::airlock::hook::{log, types as wit};
use crate::engine::HookEngine;
use crate::options::HookLimits;
use crate::state::Scope;
use crate::verdict::{Rejection, code};
use crate::wasi::WasiState;

/// What a hook's store holds: its limiter, log budget and the current call's clock.
pub(crate) struct HookState {
    digest: Arc<str>,
    limiter: Limiter,
    log: LogBudget,
    /// The current call's clock: when it started, when the last tick was seen, and how long the
    /// hook ran.
    clock: CallClock,
    /// Whether the engine meters fuel.
    metered: bool,
    /// The engine's wasm stack, for the `hook-stack` reason.
    stack_bytes: usize,
    /// Built on first use, for hooks that import WASI.
    wasi: Option<WasiState>,
    /// What `airlock:hook/state` calls reach.
    scope: Scope,
}

/// A store for one instance of the hook `digest`, under `limits`, its first call (instantiation,
/// which may run wasm) already timed.
pub(crate) fn new_store(
    engine: &HookEngine,
    digest: Arc<str>,
    name: Arc<str>,
    limits: HookLimits,
) -> Store<HookState> {
    let mut store = Store::new(
        engine.wasmtime(),
        HookState {
            digest,
            limiter: Limiter {
                limits,
                denied: None,
            },
            log: LogBudget::new(&limits),
            clock: CallClock::new(engine.config().epoch_tick),
            metered: engine.config().fuel,
            stack_bytes: engine.config().max_wasm_stack,
            wasi: None,
            scope: Scope {
                state: engine.state().clone(),
                hook: name,
                limits,
                window: None,
            },
        },
    );
    store.limiter(|state| &mut state.limiter);
    // At each epoch tick: yield to the executor, or stop a call that ran out of time.
    store.epoch_deadline_callback(|mut context| {
        let state = context.data_mut();
        let timeout = state.limiter.limits.timeout;
        Ok(match state.clock.tick(timeout) {
            true => UpdateDeadline::Interrupt,
            false => UpdateDeadline::Yield(1),
        })
    });
    begin_call(&mut store);
    store
}

/// How long past its time limit, as a multiple of it, a call may last by the wall clock, waits
/// included (a hook asleep in a WASI poll does not run, but holds its place).
const WALL_CLOCK_FACTOR: u32 = 10;

/// A call's time: how long the hook ran, which its time limit bounds, and how long the call has
/// lasted. A hook yields to the executor at every epoch tick, and a busy executor (or machine)
/// may resume it much later; between two ticks it saw, a hook ran at most about one tick, so a
/// gap longer than two ticks counts as two (room for a late ticker): the wait for its turn is
/// not the hook's time.
#[derive(Debug, Clone, Copy)]
struct CallClock {
    tick: Duration,
    started: Instant,
    seen: Instant,
    ran: Duration,
}

impl CallClock {
    fn new(tick: Duration) -> Self {
        let now = Instant::now();
        CallClock {
            tick,
            started: now,
            seen: now,
            ran: Duration::ZERO,
        }
    }

    fn start(&mut self) {
        *self = CallClock::new(self.tick);
    }

    /// Counts one tick seen by the running hook; whether the call is past `timeout`.
    fn tick(&mut self, timeout: Duration) -> bool {
        let now = Instant::now();
        // At least one tick elapsed since the last one seen; past two, the hook was waiting.
        self.ran += now.duration_since(self.seen).min(2 * self.tick);
        self.seen = now;
        self.ran >= timeout
            || now.duration_since(self.started) >= timeout.saturating_mul(WALL_CLOCK_FACTOR)
    }
}

/// Resets the time (and fuel) budget for the next call; returns the fuel budget when metered.
pub(crate) fn begin_call(store: &mut Store<HookState>) -> Option<u64> {
    store.data_mut().clock.start();
    store.set_epoch_deadline(1);
    if !store.data().metered {
        return None;
    }
    let budget = store.data().limiter.limits.fuel.unwrap_or(u64::MAX);
    store.set_fuel(budget).expect("fuel is enabled");
    Some(budget)
}

/// Resets the per-message budgets (log, and the record of a refused grow) of a reused instance,
/// and scopes its state calls to the message's `window`.
pub(crate) fn begin_message(store: &mut Store<HookState>, window: &str) {
    let state = store.data_mut();
    state.scope.window = Some(window.to_owned());
    state.log = LogBudget::new(&state.limiter.limits);
    state.limiter.denied = None;
}

/// Ends a call that returned: what the hook wrote to stdout and stderr goes to the log, and a
/// hook past its log budget is a `hook-log` rejection.
pub(crate) fn end_call(store: &mut Store<HookState>) -> Result<(), Rejection> {
    let state = store.data_mut();
    state.take_output();
    let limits = &state.limiter.limits;
    let reason = match state.log.exceeded {
        None => return Ok(()),
        Some(LogExceeded::Bytes) => format!(
            "hook logged more than its limit of {} bytes for one message",
            limits.log_bytes
        ),
        Some(LogExceeded::Lines) => format!(
            "hook logged more than its limit of {} lines for one message",
            limits.log_lines
        ),
    };
    Err(Rejection::new(code::HOOK_LOG, reason))
}

/// Fuel left in the store (0 when not metered).
pub(crate) fn fuel_left(store: &Store<HookState>) -> u64 {
    store.get_fuel().unwrap_or(0)
}

/// Turns the error that stopped a call into the rejection that names what the hook did.
pub(crate) fn fault(store: &Store<HookState>, error: &wasmtime::Error, doing: &str) -> Rejection {
    let state = store.data();
    let limits = &state.limiter.limits;
    let (code, reason) = match (state.limiter.denied, error.downcast_ref::<Trap>()) {
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
                state.stack_bytes >> 10
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
    tracing::warn!(hook = %state.digest, code, reason = %reason, "hook fault");
    Rejection::new(code, reason)
}

impl HookState {
    /// What this instance's state calls reach.
    pub(crate) fn scope(&self) -> &Scope {
        &self.scope
    }

    /// The WASI side of this instance, built on first use.
    pub(crate) fn wasi(&mut self) -> &mut WasiState {
        self.wasi.get_or_insert_with(WasiState::new)
    }

    /// Writes a line to the host's log, within the per-message budget of bytes and lines.
    fn record(&mut self, level: log::Level, text: &str) {
        let budget = &mut self.log;
        if budget.exceeded.is_some() {
            return;
        }
        if budget.lines_left == 0 {
            budget.exceeded = Some(LogExceeded::Lines);
            return;
        }
        if text.len() > budget.bytes_left {
            budget.exceeded = Some(LogExceeded::Bytes);
            return;
        }
        budget.lines_left -= 1;
        budget.bytes_left -= text.len();
        let hook = &self.digest[..12];
        match level {
            log::Level::Trace => tracing::trace!(hook, "{text}"),
            log::Level::Debug => tracing::debug!(hook, "{text}"),
            log::Level::Info => tracing::info!(hook, "{text}"),
            log::Level::Warn => tracing::warn!(hook, "{text}"),
            log::Level::Error => tracing::error!(hook, "{text}"),
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

/// What a hook may still log for the current message.
struct LogBudget {
    bytes_left: usize,
    lines_left: usize,
    exceeded: Option<LogExceeded>,
}

/// The log limit a hook crossed.
#[derive(Clone, Copy)]
enum LogExceeded {
    Bytes,
    Lines,
}

impl LogBudget {
    fn new(limits: &HookLimits) -> Self {
        LogBudget {
            bytes_left: limits.log_bytes,
            lines_left: limits.log_lines,
            exceeded: None,
        }
    }
}

impl log::Host for HookState {
    fn log(&mut self, level: log::Level, text: String) {
        self.record(level, &text);
    }
}

impl wit::Host for HookState {}
