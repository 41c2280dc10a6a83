//! Quarantine: a hook that keeps faulting on a window's messages stops being run for that window
//! for a while.
//!
//! Every hook counts its faults — traps, timeouts, memory and stack overflows, limit and log
//! floods, malformed output, a refused config — per window (the source's window label), in a
//! sliding window of time ([`HookLimits::quarantine_window`]). Once it has faulted more than
//! [`HookLimits::quarantine_faults`] times on one window's messages inside that time, it is
//! quarantined for that window: every message from it is rejected with `hook-quarantined` at once,
//! without starting an instance (fail closed, and cheap: a faulting hook cannot keep the host
//! busy). Other windows keep being served, so a window that sends messages crafted to make the
//! hook fault quarantines the hook for itself, not for everyone; a hook that faults on everything
//! is quarantined in each window after as many faults. The quarantine ends when its time has
//! passed, or when the hook is replaced (a reload makes a new [`Hook`] with a clean record). The
//! event is logged once per window, with the fault counts by code.
//!
//! `hook-unavailable` (no instance could be had from the pool) is the host's shortage, not the
//! hook's fault, and is not counted.
//!
//! [`Hook`]: crate::Hook

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::options::HookLimits;
use crate::verdict::{Rejection, code};

/// One hook's fault records, one per window that made it fault.
#[derive(Debug)]
pub(crate) struct Quarantine {
    /// `None`: never quarantine.
    max_faults: Option<usize>,
    window: Duration,
    /// How many windows the hook is quarantined for (a cheap check on every message while it is
    /// 0); the deadlines are in `records`.
    active: AtomicUsize,
    records: Mutex<HashMap<String, Record>>,
}

/// Past this many windows with a record, records with nothing left in them are dropped.
const SWEEP_AT: usize = 256;

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
            active: AtomicUsize::new(0),
            records: Mutex::new(HashMap::new()),
        }
    }

    /// The `hook-quarantined` rejection when the hook is quarantined for messages from `window`
    /// now; `None` when it may run.
    pub(crate) fn check(&self, digest: &str, window: &str) -> Option<Rejection> {
        if self.active.load(Ordering::Acquire) == 0 {
            return None;
        }
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let record = records.get_mut(window)?;
        let until = record.until?;
        let now = Instant::now();
        if now >= until {
            record.until = None;
            self.active.fetch_sub(1, Ordering::AcqRel);
            tracing::info!(hook = digest, window, "hook quarantine ended");
            return None;
        }
        Some(Rejection::new(
            code::HOOK_QUARANTINED,
            format!(
                "hook {} faulted more than {} times in {} ms on messages from window {window:?} and is quarantined for it for {} ms more (or until it is reloaded)",
                short(digest),
                self.max_faults.unwrap_or(0),
                self.window.as_millis(),
                (until - now).as_millis().max(1),
            ),
        ))
    }

    /// Records the outcome of one message from `window`: a rejection with a fault code counts; a
    /// fault that takes the window's count past the limit starts its quarantine (logged once,
    /// with the counts).
    pub(crate) fn record(&self, digest: &str, window: &str, rejection: &Rejection) {
        let Some(max_faults) = self.max_faults else {
            return;
        };
        let Some(&fault) = FAULTS.iter().find(|&&c| c == rejection.code) else {
            return;
        };
        let now = Instant::now();
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() >= SWEEP_AT && !records.contains_key(window) {
            // Windows come and go (each page load is one): forget those with nothing recent.
            let span = self.window;
            records.retain(|_, r| {
                r.until.is_some() || r.faults.back().is_some_and(|&(at, _)| now - at < span)
            });
        }
        let record = records.entry(window.to_owned()).or_default();
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
            window,
            faults = record.faults.len(),
            counts = %counts.join(" "),
            window_ms = self.window.as_millis() as u64,
            "hook quarantined for a window: its every message is rejected with hook-quarantined until the hook is reloaded or the time passes"
        );
        record.faults.clear();
        record.until = Some(now + self.window);
        self.active.fetch_add(1, Ordering::AcqRel);
    }
}

/// The first 12 hex digits of a digest, for a reason text.
fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
