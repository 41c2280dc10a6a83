//! Hot reload: watch a hook file and swap the gateway's hook when it changes.
//!
//! A [`HookWatcher`] polls the file's size and modification time; when they change it reads the
//! file and, if its digest differs from the hook in use, loads it with the gateway's current
//! engine and options. In-flight messages finish on the old hook; new ones go to the new one. A
//! file that fails to load or configure leaves the old hook serving, and the error is kept in
//! [`WatchStatus::last_error`] (and logged). When the hook's options require a signature, the
//! signature file beside it (`PATH.sig`) is watched and read too, and checked before the new
//! bytes are compiled: an unsigned, wrongly signed or tampered file never replaces the hook.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::gateway::Gateway;
use crate::hook::read_signature;
use crate::trust::Signature;

/// A file's size and modification time.
type Stamp = (u64, SystemTime);

/// What a watcher has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchStatus {
    /// Successful reloads.
    pub reloads: u64,
    /// Why the latest change of the file was not loaded; `None` once a later change loads.
    pub last_error: Option<String>,
}

/// Watches a hook file for a gateway; stops when dropped (or when the gateway is gone).
#[derive(Debug)]
pub struct HookWatcher {
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<WatchStatus>>,
}

impl HookWatcher {
    /// Starts polling `path` every `interval` on a thread of its own.
    pub fn spawn(gateway: &Arc<Gateway>, path: impl Into<PathBuf>, interval: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Mutex::new(WatchStatus::default()));
        let mut watch = Watch {
            gateway: Arc::downgrade(gateway),
            path: path.into(),
            stop: stop.clone(),
            status: status.clone(),
            seen: None,
        };
        // Stamp now, not on the thread: a change made right after `spawn` returns is a change.
        watch.seen = watch.stamp();
        std::thread::Builder::new()
            .name("airlock-watch".into())
            .spawn(move || watch.run(interval))
            .expect("cannot start the hook watcher thread");
        HookWatcher { stop, status }
    }

    /// Reloads and the latest error so far.
    pub fn status(&self) -> WatchStatus {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for HookWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

struct Watch {
    gateway: Weak<Gateway>,
    path: PathBuf,
    stop: Arc<AtomicBool>,
    status: Arc<Mutex<WatchStatus>>,
    /// Size and modification time of the hook, and of its signature, last looked at.
    seen: Option<(Stamp, Option<Stamp>)>,
}

impl Watch {
    fn run(mut self, interval: Duration) {
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(interval);
            let Some(gateway) = self.gateway.upgrade() else {
                return;
            };
            let stamp = self.stamp();
            if stamp.is_some() && stamp != self.seen {
                self.seen = stamp;
                self.check(&gateway);
            }
        }
    }

    fn stamp(&self) -> Option<(Stamp, Option<Stamp>)> {
        let stamp = |path: &std::path::Path| {
            let metadata = std::fs::metadata(path).ok()?;
            Some((metadata.len(), metadata.modified().ok()?))
        };
        Some((stamp(&self.path)?, stamp(&Signature::path_for(&self.path))))
    }

    fn check(&self, gateway: &Gateway) {
        let outcome = std::fs::read(&self.path)
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))
            .and_then(|bytes| {
                let current = gateway.hook();
                if format!("{:x}", Sha256::digest(&bytes)) == current.digest() {
                    return Ok(false);
                }
                read_signature(&self.path, &current.options().trust)
                    .and_then(|signature| gateway.reload_signed(&bytes, signature.as_ref()))
                    .map(|_| true)
                    .map_err(|e| {
                        format!(
                            "{} did not load, the previous hook keeps serving: {}",
                            self.path.display(),
                            crate::error::chain(&e)
                        )
                    })
            });
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(true) => {
                status.reloads += 1;
                status.last_error = None;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(error = %error, "hook reload failed");
                status.last_error = Some(error);
            }
        }
    }
}
