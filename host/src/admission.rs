//! Fair admission to the hooks: how many hook chains run at once, and which window's message
//! goes next when they are all busy.
//!
//! Every hook call needs an instance from the engine's pool, which all hooks and all windows
//! share. Without a bound, a few windows flooding messages that run a hook to its time limit
//! hold every instance, and everyone else's messages fail to instantiate. The gateway therefore
//! admits at most `capacity` messages into the hook chains at once (by default fewer than the
//! pool holds, so an admitted message always finds an instance). A message that finds them all
//! busy waits, for at most `wait`, in its window's queue; when a call ends, its slot goes to
//! the waiting window that holds the fewest slots (max-min fairness; among equals, the window
//! that just gave the slot up comes last, then the one served longest ago). A window flooding slow
//! messages so waits behind its own messages while a quiet window takes the next free slot;
//! one past its wait gets `hook-unavailable`, naming itself.
//!
//! The uncontended path is one short critical section on enter and one on leave (a counter and
//! a hash-map entry per window); nothing waits on a lock while a hook runs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::verdict::{Rejection, code};

/// The gate in front of the hook chains.
#[derive(Debug)]
pub(crate) struct Admission {
    capacity: usize,
    wait: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// Slots nobody holds. Above zero only while nobody waits: a freed slot goes straight to a
    /// waiter.
    free: usize,
    /// Messages waiting, over all windows.
    waiting: usize,
    /// The arrival order of waiters.
    next_seq: u64,
    /// Slots given so far (fast or handed off): the order windows were last served in.
    grants: u64,
    /// Windows holding, waiting for or lately holding a slot: an idle window's share is kept
    /// (no allocation per message on the uncontended path) until the map outgrows `sweep_at`.
    windows: HashMap<Arc<str>, Share>,
    sweep_at: usize,
}

/// Idle windows' shares kept at least.
const KEPT_IDLE: usize = 256;

/// One window's part.
#[derive(Debug)]
struct Share {
    /// The window's label, shared with the map's key and its permits.
    key: Arc<str>,
    held: usize,
    /// When it was last given a slot (in `grants`; 0: never).
    last_grant: u64,
    queue: VecDeque<Waiter>,
}

#[derive(Debug)]
struct Waiter {
    seq: u64,
    grant: oneshot::Sender<()>,
}

/// A slot in the hook chains, given back when dropped.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    admission: &'a Admission,
    window: Arc<str>,
}

/// How a message got its slot.
#[derive(Debug)]
pub(crate) struct Admitted<'a> {
    pub(crate) permit: Permit<'a>,
    /// Whether it had to wait for it.
    pub(crate) waited: bool,
}

/// Why a message got no slot.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) rejection: Rejection,
    /// Whether it waited first (else there was no way to wait: a zero wait, or no Tokio runtime).
    pub(crate) waited: bool,
}

impl Admission {
    /// At most `capacity` (at least 1) messages in the hook chains at once; a message waits at
    /// most `wait` for a slot.
    pub(crate) fn new(capacity: usize, wait: Duration) -> Admission {
        let capacity = capacity.max(1);
        Admission {
            capacity,
            wait,
            state: Mutex::new(State {
                free: capacity,
                waiting: 0,
                next_seq: 0,
                grants: 0,
                windows: HashMap::new(),
                sweep_at: KEPT_IDLE,
            }),
        }
    }

    /// Messages admitted at once.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Messages in the hooks now, and messages waiting for a call.
    pub(crate) fn load(&self) -> (usize, usize) {
        let state = self.lock();
        (self.capacity - state.free, state.waiting)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a message from `window`: at once when one is free, else after waiting in the
    /// window's queue for at most the wait bound. Waiting needs a Tokio runtime with its timer
    /// (the one `airlock serve` and Tauri run on); without a runtime a message that finds every
    /// slot busy is refused at once.
    pub(crate) async fn enter(&self, window: &str) -> Result<Admitted<'_>, Refused> {
        let (key, seq, granted) = {
            let mut state = self.lock();
            if state.free > 0 {
                state.free -= 1;
                state.grants += 1;
                let grant = state.grants;
                let share = state.share(window);
                share.held += 1;
                share.last_grant = grant;
                let permit = Permit {
                    admission: self,
                    window: share.key.clone(),
                };
                return Ok(Admitted {
                    permit,
                    waited: false,
                });
            }
            if self.wait.is_zero() || tokio::runtime::Handle::try_current().is_err() {
                let held = state.windows.get(window).map_or(0, |share| share.held);
                return Err(Refused {
                    rejection: self.refusal(window, Duration::ZERO, held),
                    waited: false,
                });
            }
            let (grant, granted) = oneshot::channel();
            let seq = state.next_seq;
            state.next_seq += 1;
            state.waiting += 1;
            let share = state.share(window);
            share.queue.push_back(Waiter { seq, grant });
            (share.key.clone(), seq, granted)
        };
        let started = Instant::now();
        let mut queued = Queued {
            admission: self,
            window: Some(key),
            seq,
        };
        // Granted or not, what decides is whether the waiter is still queued (a grant and the
        // deadline can cross): `leave` looks.
        let _ = tokio::time::timeout(self.wait, granted).await;
        queued.leave(started)
    }

    /// The rejection of a message from `window` that waited `waited` while its window held
    /// `held` slots.
    fn refusal(&self, window: &str, waited: Duration, held: usize) -> Rejection {
        Rejection::new(
            code::HOOK_UNAVAILABLE,
            format!(
                "window {window:?} waited {} ms for a hook call: all {} are busy, {held} of them \
                 with this window's messages",
                waited.as_millis(),
                self.capacity
            ),
        )
    }

    /// Gives a slot of `window` back: to the waiting window that holds the fewest, else to the
    /// free ones.
    fn release(&self, window: &Arc<str>) {
        let mut state = self.lock();
        if let Some(share) = state.windows.get_mut(window) {
            share.held -= 1;
        }
        state.hand_off(window);
        state.sweep();
    }
}

impl State {
    /// The share of `window`, made when missing.
    fn share(&mut self, window: &str) -> &mut Share {
        if !self.windows.contains_key(window) {
            let key: Arc<str> = window.into();
            let share = Share {
                key: key.clone(),
                held: 0,
                last_grant: 0,
                queue: VecDeque::new(),
            };
            self.windows.insert(key, share);
        }
        self.windows.get_mut(window).expect("just made")
    }

    /// A slot `releaser` just freed: to the first waiter of the waiting window holding the
    /// fewest, else back to the free ones. Among windows holding equally few, the releaser
    /// comes last (it had the slot until now: taking it back at once would let a flooding
    /// window keep its slots while a quiet window holding as few waits), then the window
    /// served longest ago (round robin: a flooding window's first waiter is always old, so
    /// arrival order alone would put a quiet window behind every flooder holding as few), then
    /// the window whose first waiter came earliest.
    fn hand_off(&mut self, releaser: &str) {
        if self.waiting == 0 {
            self.free += 1;
            return;
        }
        let next = self
            .windows
            .iter_mut()
            .filter_map(|(window, share)| {
                let first = share.queue.front()?.seq;
                let rank = (share.held, **window == *releaser, share.last_grant, first);
                Some((rank, share))
            })
            .min_by_key(|&(rank, _)| rank);
        let Some((_, share)) = next else {
            self.free += 1;
            return;
        };
        let waiter = share.queue.pop_front().expect("a waiting window");
        share.held += 1;
        self.grants += 1;
        share.last_grant = self.grants;
        self.waiting -= 1;
        // The slot is the waiter's from here, whether or not it is still listening: if it gave
        // up, its `Queued` finds itself gone from the queue and gives the slot back.
        let _ = waiter.grant.send(());
    }

    /// Takes waiter `seq` out of `window`'s queue; false when it is not there (it was granted a
    /// slot).
    fn withdraw(&mut self, window: &str, seq: u64) -> bool {
        let Some(share) = self.windows.get_mut(window) else {
            return false;
        };
        let Some(at) = share.queue.iter().position(|waiter| waiter.seq == seq) else {
            return false;
        };
        share.queue.remove(at);
        self.waiting -= 1;
        true
    }

    /// Drops the shares of windows that hold nothing and wait for nothing, once there are more
    /// than `sweep_at` shares (then twice as many as are left, at least [`KEPT_IDLE`]).
    fn sweep(&mut self) {
        if self.windows.len() <= self.sweep_at {
            return;
        }
        self.windows
            .retain(|_, share| share.held > 0 || !share.queue.is_empty());
        self.sweep_at = (2 * self.windows.len()).max(KEPT_IDLE);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.admission.release(&self.window);
    }
}

/// A message in its window's queue. Leaving, or being dropped (the request abandoned), takes it
/// out; a slot it was granted meanwhile becomes a permit, or is given back.
struct Queued<'a> {
    admission: &'a Admission,
    /// `None` once it has left.
    window: Option<Arc<str>>,
    seq: u64,
}

impl<'a> Queued<'a> {
    /// Leaves the queue: with the slot it was granted, or refused if none came.
    fn leave(&mut self, started: Instant) -> Result<Admitted<'a>, Refused> {
        let window = self.window.take().expect("leaves once");
        let admission = self.admission;
        let mut state = admission.lock();
        match state.withdraw(&window, self.seq) {
            false => Ok(Admitted {
                permit: Permit { admission, window },
                waited: true,
            }),
            true => {
                let held = state.windows.get(&window).map_or(0, |share| share.held);
                state.sweep();
                Err(Refused {
                    rejection: admission.refusal(&window, started.elapsed(), held),
                    waited: true,
                })
            }
        }
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        let Some(window) = self.window.take() else {
            return;
        };
        let mut state = self.admission.lock();
        if state.withdraw(&window, self.seq) {
            state.sweep();
            return;
        }
        // Granted a slot nobody will use: give it on.
        drop(state);
        self.admission.release(&window);
    }
}
