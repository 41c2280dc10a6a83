//! Guest-side helpers for writing Airlock hooks in Rust.
//!
//! A hook implements [`Guest`] (`configure` and `inspect`) and exports it with
//! [`export_hook!`]. This crate holds the bindings generated from Airlock's WIT package, so a hook
//! crate depends on nothing else:
//!
//! ```ignore
//! use airlock_hook::{Guest, Message, Verdict};
//!
//! struct AllowAll;
//! impl Guest for AllowAll {
//!     fn configure(_config: String) -> Result<(), String> { Ok(()) }
//!     fn inspect(_message: Message) -> Verdict { Verdict::Pass }
//! }
//! airlock_hook::export_hook!(AllowAll);
//! ```

// The generated code names this crate by its path, from inside it too.
extern crate self as airlock_hook;

use std::sync::Mutex;

// On WASI, libc's own malloc owns the free memory; the heap is only for bare wasm32.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
mod heap;

wit_bindgen::generate!({
    path: "../../wit",
    world: "hook",
    pub_export_macro: true,
    export_macro_name: "export_hook",
    default_bindings_module: "airlock_hook",
    runtime_path: "airlock_hook::wit_bindgen::rt",
});

pub use airlock::hook::log::{Level, log};
pub use airlock::hook::types::{
    Body, Header, Kind, Message, Rejection, Replacement, Source, Verdict,
};
pub use exports::airlock::hook::policy::Guest;
#[doc(hidden)]
pub use wit_bindgen;

/// A `reject` verdict with this code and reason.
pub fn reject(code: &str, reason: impl Into<String>) -> Verdict {
    Verdict::Reject(Rejection {
        code: code.to_owned(),
        reason: reason.into(),
    })
}

/// A `replace` verdict that swaps the body for this JSON text and keeps everything else.
pub fn replace_json_body(json: String) -> Verdict {
    Verdict::Replace(Replacement {
        name: None,
        headers: None,
        body: Some(Body::Json(json)),
    })
}

/// The JSON text of a message's body, or `None` for a bytes body.
pub fn json_body(message: &Message) -> Option<&str> {
    match &message.body {
        Body::Json(text) => Some(text),
        Body::Bytes(_) => None,
    }
}

/// Parses a hook's JSON config; missing fields take `T`'s serde defaults. The error says what was
/// wrong, for the app developer who wrote the config.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, String> {
    let config = if config.trim().is_empty() {
        "{}"
    } else {
        config
    };
    serde_json::from_str(config).map_err(|e| format!("invalid config: {e}"))
}

/// Holds a hook's parsed config between `configure` and `inspect` (a hook instance is
/// single-threaded; the lock is never contended).
pub struct Settings<T> {
    value: Mutex<Option<T>>,
}

impl<T: Default> Settings<T> {
    /// Empty until [`Settings::set`]; reads before that see `T::default()`.
    pub const fn new() -> Self {
        Settings {
            value: Mutex::new(None),
        }
    }

    /// Stores the config.
    pub fn set(&self, value: T) {
        *self.value.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
    }

    /// Runs `f` on the stored config (or the default one).
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let mut guard = self.value.lock().unwrap_or_else(|e| e.into_inner());
        f(guard.get_or_insert_with(T::default))
    }
}

impl<T: Default> Default for Settings<T> {
    fn default() -> Self {
        Settings::new()
    }
}
