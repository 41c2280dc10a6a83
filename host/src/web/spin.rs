//! Keeping a worker awake for a moment after each message (`WebOptions::spin`).
//!
//! A client that calls, waits for the reply and calls again sends its next frame a few tens of
//! microseconds after the reply left. A worker that parks on its I/O driver as soon as it has
//! written the reply lets its CPU go idle, and on a virtual machine whose idle vCPUs halt, waking
//! one for the next frame costs more than the hooks do (BENCHMARKS.md, "2026-12-03 (late
//! night)"). So each single-threaded worker runtime gets one spinner task: woken by any frame
//! read or written on that thread, it yields (each yield polls the I/O driver without sleeping) until `spin` has
//! passed since the last of them, then sleeps until the next. An idle server spins not at all; a
//! busy one at most `spin` after each message. And only while spinning pays: when the frames
//! read keep coming later than `spin` after the last activity (a page in a browser takes some
//! hundreds of microseconds to answer, and a spinning worker takes a CPU it needs), the worker
//! sleeps at once until a frame comes sooner again.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::sync::Notify;

thread_local! {
    /// The spinner of the worker runtime this thread runs, once it has started.
    static WORKER: RefCell<Option<Arc<Spin>>> = const { RefCell::new(None) };
}

/// One worker's spinner: when the last frame was read or written, and how to wake it.
#[derive(Debug)]
pub(super) struct Spin {
    window: Duration,
    start: Instant,
    /// Nanoseconds from `start` to the last activity.
    last: AtomicU64,
    wake: Notify,
    stop: AtomicBool,
    /// Frames read, one after another, more than `window` after the activity before them.
    late: AtomicU32,
}

/// Late frames in a row after which the worker stops spinning.
const LATE: u32 = 2;

impl Spin {
    fn nanos(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn touch(&self, read: bool) {
        let now = self.nanos();
        let before = self.last.swap(now, Ordering::Relaxed);
        if read {
            match Duration::from_nanos(now.saturating_sub(before)) < self.window {
                true => self.late.store(0, Ordering::Relaxed),
                // Counted up to the limit only, so that it never wraps round to spinning.
                false => {
                    _ = self
                        .late
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                            (n < LATE).then_some(n + 1)
                        })
                }
            }
        }
        if self.late.load(Ordering::Relaxed) < LATE {
            self.wake.notify_one();
        }
    }

    fn recent(&self) -> bool {
        let since = self
            .nanos()
            .saturating_sub(self.last.load(Ordering::Relaxed));
        Duration::from_nanos(since) < self.window
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    async fn run(self: Arc<Self>) {
        let taken = WORKER.with(|worker| {
            let mut worker = worker.borrow_mut();
            match &*worker {
                // Another server's spinner already serves this thread.
                Some(other) if !other.stopped() => false,
                _ => {
                    *worker = Some(self.clone());
                    true
                }
            }
        });
        if !taken {
            return;
        }
        loop {
            self.wake.notified().await;
            while self.recent() && !self.stopped() {
                tokio::task::yield_now().await;
            }
            if self.stopped() {
                break;
            }
        }
        WORKER.with(|worker| {
            let mut worker = worker.borrow_mut();
            if worker.as_ref().is_some_and(|w| Arc::ptr_eq(w, &self)) {
                *worker = None;
            }
        });
    }
}

/// A frame was read on this thread: its worker (if it spins) stays awake for the next `spin`,
/// unless frames keep coming later than that.
pub(super) fn read() {
    touch(true);
}

/// Frames were written on this thread: as [`read`].
pub(super) fn written() {
    touch(false);
}

fn touch(read: bool) {
    WORKER.with(|worker| {
        if let Some(spin) = &*worker.borrow() {
            spin.touch(read);
        }
    });
}

/// The spinners of one server, stopped when it is dropped (the server's accept loop ends).
#[derive(Debug, Default)]
pub(super) struct Spinners(Vec<Arc<Spin>>);

impl Spinners {
    /// Starts a spinner on each single-threaded runtime of `runtimes` (a multi-threaded one has
    /// idle workers to poll its I/O driver, and a spinner there would keep one of them busy for
    /// nothing); none when `window` is zero.
    pub(super) fn start(window: Duration, runtimes: &[Handle]) -> Self {
        if window.is_zero() {
            return Spinners::default();
        }
        let spinners = runtimes
            .iter()
            .filter(|runtime| runtime.runtime_flavor() == RuntimeFlavor::CurrentThread)
            .map(|runtime| {
                let spin = Arc::new(Spin {
                    window,
                    start: Instant::now(),
                    last: AtomicU64::new(0),
                    wake: Notify::new(),
                    stop: AtomicBool::new(false),
                    late: AtomicU32::new(0),
                });
                runtime.spawn(spin.clone().run());
                spin
            })
            .collect();
        Spinners(spinners)
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        for spin in &self.0 {
            spin.stop.store(true, Ordering::Relaxed);
            spin.wake.notify_one();
        }
    }
}
