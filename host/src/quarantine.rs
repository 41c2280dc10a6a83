//! Quarantine: a hook that keeps faulting stops being run for a while.
//!
//! Every hook counts its faults — traps, timeouts, memory and stack overflows, limit and log
//! floods, malformed output, a refused config — in a sliding window
//! ([`HookLimits::quarantine_window`]). Once it has faulted more than
//! [`HookLimits::quarantine_faults`] times inside the window, it is quarantined: every message
//! it would see is rejected with `hook-quarantined` at once, without starting an instance (fail
//! closed, and cheap: a faulting hook cannot keep the host busy). The quarantine ends when the
//! window has passed since it began, or when the hook is replaced (a reload makes a new [`Hook`]
//! with a clean record). The event is logged once, with the fault counts by code.
//!
//! `hook-unavailable` (no instance could be had from the pool) is the host's shortage, not the
//! hook's fault, and is not counted.
//!
//! [`Hook`]: crate::Hook

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::options::HookLimits;
use crate::verdict::{Rejection, code};

/// One hook's fault record.
#[derive(Debug)]
pub(crate) struct Quarantine {
    /// `None`: never quarantine.
    max_faults: Option<usize>,
    window: Duration,
    /// Set while quarantined (a cheap check on every message); the deadline is in `record`.
    active: AtomicBool,
    record: Mutex<Record>,
}

#[derive(Debug, Default)]
struct Record {
    /// Recent faults, oldest first: when, and which code.
    faults: VecDeque<(Instant, &'static str)>,
    /// When the current quarantine ends.
    until: Option<Instant>,
}

/// The codes that count as the hook's faults.
const FAULTS: [&str; 8] = [
    code::HOOK_TRAP,
    code::HOOK_TIMEOUT,
    code::HOOK_MEMORY,
    code::HOOK_STACK,
    code::HOOK_OUTPUT,
    code::HOOK_LIMIT,
    code::HOOK_LOG,
    code::HOOK_CONFIG,
];

impl Quarantine {
    /// A clean record under these limits.
    pub(crate) fn new(limits: &HookLimits) -> Quarantine {
        Quarantine {
            max_faults: limits.quarantine_faults,
            window: limits.quarantine_window,
            active: AtomicBool::new(false),
            record: Mutex::new(Record::default()),
        }
    }

    /// The `hook-quarantined` rejection when the hook is quarantined now; `None` when it may run.
    pub(crate) fn check(&self, digest: &str) -> Option<Rejection> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
        let until = record.until?;
        let now = Instant::now();
        if now >= until {
            record.until = None;
            self.active.store(false, Ordering::Release);
            tracing::info!(hook = digest, "hook quarantine ended");
            return None;
        }
        Some(Rejection::new(
            code::HOOK_QUARANTINED,
            format!(
                "hook {} faulted more than {} times in {} ms and is quarantined for {} ms more (or until it is reloaded)",
                short(digest),
                self.max_faults.unwrap_or(0),
                self.window.as_millis(),
                (until - now).as_millis().max(1),
            ),
        ))
    }

    /// Records the outcome of one message: a rejection with a fault code counts; a fault that
    /// takes the count past the limit starts the quarantine (logged once, with the counts).
    pub(crate) fn record(&self, digest: &str, rejection: &Rejection) {
        let Some(max_faults) = self.max_faults else {
            return;
        };
        let Some(&fault) = FAULTS.iter().find(|&&c| c == rejection.code) else {
            return;
        };
        let now = Instant::now();
        let mut record = self.record.lock().unwrap_or_else(|e| e.into_inner());
        if record.until.is_some() {
            // A message that was already running when the quarantine began.
            return;
        }
        while let Some(&(at, _)) = record.faults.front() {
            match now.duration_since(at) >= self.window {
                true => record.faults.pop_front(),
                false => break,
            };
        }
        record.faults.push_back((now, fault));
        if record.faults.len() <= max_faults {
            return;
        }
        let counts: Vec<String> = FAULTS
            .iter()
            .filter_map(|&c| {
                let n = record.faults.iter().filter(|(_, f)| *f == c).count();
                (n > 0).then(|| format!("{c}={n}"))
            })
            .collect();
        tracing::error!(
            hook = digest,
            faults = record.faults.len(),
            counts = %counts.join(" "),
            window_ms = self.window.as_millis() as u64,
            "hook quarantined: every message is rejected with hook-quarantined until it is reloaded or the window passes"
        );
        record.faults.clear();
        record.until = Some(now + self.window);
        self.active.store(true, Ordering::Release);
    }
}

/// The first 12 hex digits of a digest, for a reason text.
fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
