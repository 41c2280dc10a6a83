//! Host-owned state (`airlock:hook/state`): counters, token buckets and small values that hooks
//! keep in the host, since a fresh instance per message remembers nothing.
//!
//! One [`HostState`] belongs to each [`HookEngine`](crate::HookEngine) and is shared by every hook
//! loaded with it. A key is scoped to the hook's **name** ([`crate::HookOptions::name`]) and to
//! the **window** of the message being inspected, so a hook cannot reach another hook's keys or
//! another window's, and a hook reloaded under the same name (a new digest) keeps its state.
//! Per hook (all windows together) the host bounds the number of keys, the length of a key and
//! the size of a value ([`crate::HookLimits::state_keys`], `state_key_bytes`,
//! `state_value_bytes`); a call past a limit gets an error, the hook carries on. Every call takes
//! one lock, so concurrent messages see each other's updates whole: a token bucket never hands
//! out more than it holds.
//!
//! Time comes from a [`Clock`] the host controls: [`SystemClock`] by default, or a
//! [`ManualClock`] that only moves when told (for tests and replays).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crate::bindings::airlock::hook::state::{self as wit, Error};
use crate::options::HookLimits;
use crate::store::HookState;

/// The time source of host-owned state, in milliseconds from an arbitrary start, never going
/// back.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds now.
    fn now_ms(&self) -> u64;
}

/// The monotonic system clock, counted from when it was made.
#[derive(Debug)]
pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// A clock that stands still until moved.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock at `ms`.
    pub fn at(ms: u64) -> ManualClock {
        ManualClock(AtomicU64::new(ms))
    }

    /// Moves the clock on by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The state of every hook of one engine. Cheap to clone (clones share it).
#[derive(Debug, Clone)]
pub struct HostState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    clock: RwLock<Arc<dyn Clock>>,
    hooks: Mutex<Hooks>,
}

/// Every hook's entries, by hook name, then by (window, key).
type Hooks = HashMap<Arc<str>, HashMap<(String, String), Entry>>;

#[derive(Debug)]
enum Entry {
    Counter(i64),
    /// Tokens in thousandths, and when they were counted.
    Bucket {
        milli_tokens: u64,
        at_ms: u64,
    },
    Value(Vec<u8>),
}

impl Default for HostState {
    fn default() -> Self {
        HostState {
            inner: Arc::new(Inner {
                clock: RwLock::new(Arc::new(SystemClock::default())),
                hooks: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl HostState {
    /// Makes `clock` the time source of every hook's state from now on.
    pub fn set_clock(&self, clock: Arc<dyn Clock>) {
        *self.inner.clock.write().unwrap_or_else(|e| e.into_inner()) = clock;
    }

    /// The clock's time now, in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.inner
            .clock
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .now_ms()
    }

    /// How many keys the hook named `hook` holds, over all windows.
    pub fn keys(&self, hook: &str) -> usize {
        self.lock().get(hook).map_or(0, HashMap::len)
    }

    /// Forgets every key of the hook named `hook`.
    pub fn clear(&self, hook: &str) {
        self.lock().remove(hook);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Hooks> {
        self.inner.hooks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the entry under (`hook`, `window`, `key`), making it with `new` when missing,
    /// within `limits`.
    fn with_entry<T>(
        &self,
        scope: &Scope,
        key: String,
        new: impl FnOnce() -> Entry,
        f: impl FnOnce(&mut Entry) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let window = scope.window.clone().ok_or(Error::NoMessage)?;
        check_key(&key, &scope.limits)?;
        let mut hooks = self.lock();
        let entries = hooks.entry(scope.hook.clone()).or_default();
        let full = entries.len() >= scope.limits.state_keys;
        let entry = match entries.entry((window, key)) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(_) if full => {
                return Err(Error::TooManyKeys(clamp(scope.limits.state_keys)));
            }
            std::collections::hash_map::Entry::Vacant(e) => e.insert(new()),
        };
        f(entry)
    }

    fn get(&self, scope: &Scope, key: String) -> Result<Option<Vec<u8>>, Error> {
        let window = scope.window.as_ref().ok_or(Error::NoMessage)?;
        check_key(&key, &scope.limits)?;
        let hooks = self.lock();
        match hooks
            .get(&scope.hook)
            .and_then(|entries| entries.get(&(window.clone(), key)))
        {
            None => Ok(None),
            Some(Entry::Value(value)) => Ok(Some(value.clone())),
            Some(_) => Err(Error::WrongKind),
        }
    }
}

fn clamp(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn check_key(key: &str, limits: &HookLimits) -> Result<(), Error> {
    match key.len() > limits.state_key_bytes {
        true => Err(Error::KeyTooLong(clamp(limits.state_key_bytes))),
        false => Ok(()),
    }
}

/// What one instance's state calls reach: the engine's state, the hook's name and limits, and
/// the window of the message being inspected (`None` outside `inspect`).
pub(crate) struct Scope {
    pub(crate) state: HostState,
    pub(crate) hook: Arc<str>,
    pub(crate) limits: HookLimits,
    pub(crate) window: Option<String>,
}

impl wit::Host for HookState {
    fn add(&mut self, key: String, delta: i64) -> Result<i64, Error> {
        let scope = self.scope();
        scope.state.with_entry(
            scope,
            key,
            || Entry::Counter(0),
            |entry| match entry {
                Entry::Counter(n) => {
                    *n = n.saturating_add(delta);
                    Ok(*n)
                }
                _ => Err(Error::WrongKind),
            },
        )
    }

    fn take(
        &mut self,
        key: String,
        capacity: u32,
        per_second: u32,
        tokens: u32,
    ) -> Result<bool, Error> {
        let scope = self.scope();
        let now = scope.state.now_ms();
        let full = u64::from(capacity) * 1000;
        scope.state.with_entry(
            scope,
            key,
            || Entry::Bucket {
                milli_tokens: full,
                at_ms: now,
            },
            |entry| match entry {
                Entry::Bucket {
                    milli_tokens,
                    at_ms,
                } => {
                    // per_second tokens a second is per_second thousandths a millisecond.
                    let gained = now
                        .saturating_sub(*at_ms)
                        .saturating_mul(u64::from(per_second));
                    *milli_tokens = milli_tokens.saturating_add(gained).min(full);
                    *at_ms = (*at_ms).max(now);
                    let wanted = u64::from(tokens) * 1000;
                    let taken = *milli_tokens >= wanted;
                    if taken {
                        *milli_tokens -= wanted;
                    }
                    Ok(taken)
                }
                _ => Err(Error::WrongKind),
            },
        )
    }

    fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, Error> {
        let scope = self.scope();
        scope.state.get(scope, key)
    }

    fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), Error> {
        let scope = self.scope();
        if value.len() > scope.limits.state_value_bytes {
            return Err(Error::ValueTooLarge(clamp(scope.limits.state_value_bytes)));
        }
        let mut value = Some(value);
        scope.state.with_entry(
            scope,
            key,
            || Entry::Value(Vec::new()),
            |entry| match entry {
                Entry::Value(stored) => {
                    *stored = value.take().unwrap_or_default();
                    Ok(())
                }
                _ => Err(Error::WrongKind),
            },
        )
    }

    fn now_ms(&mut self) -> u64 {
        self.scope().state.now_ms()
    }
}
