//! How a hook is loaded and run: its limits, its config and its instance mode.

use std::time::Duration;

use crate::trust::Trust;

/// Limits on each hook call (`configure` and `inspect` each get the full time and fuel budget).
///
/// Defaults: 100 ms, no fuel budget, 64 MiB of linear memory, tables of at most 100 000
/// elements, at most 64 core instances (and as many memories and tables) per hook instance,
/// 64 KiB of log text and 1000 log lines per message; quarantined after more than 20 faults in
/// 10 seconds; host-owned state of at most 1024 keys of at most 256 bytes, values of at most
/// 4 KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HookLimits {
    /// Time the hook may run per call; past it, `hook-timeout`. What it spends waiting for its
    /// turn on a busy executor or machine is not counted (a hook yields at every epoch tick),
    /// but a call is also stopped once it has lasted ten times this by the wall clock.
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
    /// Log lines per message (empty ones included: each costs the host a log record); past it,
    /// `hook-log`.
    pub log_lines: usize,
    /// Faults (trap, timeout, memory, stack, limit, log, output, config) a hook may have on one
    /// window's messages inside [`quarantine_window`](Self::quarantine_window); one more and the
    /// hook is quarantined for that window: its every message is rejected with
    /// `hook-quarantined`, without starting an instance, until the hook is reloaded or the time
    /// has passed. Other windows are not affected. `None`: never quarantine.
    pub quarantine_faults: Option<usize>,
    /// The sliding window faults are counted in, and how long a quarantine lasts.
    pub quarantine_window: Duration,
    /// Keys the hook may hold in host-owned state (`airlock:hook/state`), over all windows;
    /// a new key past it gets `too-many-keys`.
    pub state_keys: usize,
    /// Longest state key, in bytes; past it, `key-too-long`.
    pub state_key_bytes: usize,
    /// Largest state value, in bytes; past it, `value-too-large`.
    pub state_value_bytes: usize,
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
            log_lines: 1000,
            quarantine_faults: Some(20),
            quarantine_window: Duration::from_secs(10),
            state_keys: 1024,
            state_key_bytes: 256,
            state_value_bytes: 4096,
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

/// How to load a hook. Default: name `hook`, config `{}`, default limits, a fresh instance per
/// message, enforced (not in monitor mode), no pin and no signature required, no coverage.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HookOptions {
    /// The hook's name: its label in metrics. It stays with the hook across reloads (a reload
    /// keeps the options); give each hook of a gateway its own.
    pub name: String,
    /// The app's JSON configuration, passed to `configure` on every instance.
    pub config: String,
    /// Per-call limits.
    pub limits: HookLimits,
    /// Fresh instance per message, or reuse of warm ones.
    pub mode: InstanceMode,
    /// Monitor mode (a dry run): the gateway runs the hook and logs and counts its verdict
    /// ([`crate::Reply::monitored`]), but does not enforce it: the message goes on as if the
    /// hook had passed it, unchanged. Its faults are logged the same way, never enforced either.
    /// For trying a stricter hook, alone or as one hook of a chain, on live traffic.
    pub monitor: bool,
    /// The pin and trusted signing keys the hook's bytes are checked against, at load and on
    /// every reload.
    pub trust: Trust,
    /// Read the blocks each message reached ([`crate::Inspection::coverage`]) from a hook
    /// instrumented for coverage (one exporting `airlock-coverage-mN: func() -> list<u32>`
    /// functions, as `airlock fuzz` makes). For fuzzing only; off by default.
    pub coverage: bool,
}

impl Default for HookOptions {
    fn default() -> Self {
        HookOptions {
            name: "hook".to_owned(),
            config: "{}".to_owned(),
            limits: HookLimits::default(),
            mode: InstanceMode::Fresh,
            monitor: false,
            trust: Trust::default(),
            coverage: false,
        }
    }
}

with_fields!(HookLimits {
    timeout: Duration => with_timeout,
    fuel: Option<u64> => with_fuel,
    memory_bytes: usize => with_memory_bytes,
    table_elements: usize => with_table_elements,
    instances: usize => with_instances,
    log_bytes: usize => with_log_bytes,
    log_lines: usize => with_log_lines,
    quarantine_faults: Option<usize> => with_quarantine_faults,
    quarantine_window: Duration => with_quarantine_window,
    state_keys: usize => with_state_keys,
    state_key_bytes: usize => with_state_key_bytes,
    state_value_bytes: usize => with_state_value_bytes,
});

with_fields!(HookOptions {
    limits: HookLimits => with_limits,
    mode: InstanceMode => with_mode,
    monitor: bool => with_monitor,
    trust: Trust => with_trust,
    coverage: bool => with_coverage,
});

impl HookOptions {
    /// These options with `config` as the hook's JSON configuration.
    #[must_use]
    pub fn with_config(mut self, config: impl Into<String>) -> Self {
        self.config = config.into();
        self
    }

    /// These options with `name` as the hook's name.
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}
