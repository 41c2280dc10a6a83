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
pub mod path;

wit_bindgen::generate!({
    path: "../../../wit",
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

/// Parses a hook's JSON config; missing fields take `T`'s serde defaults. The config must be a
/// JSON object (`{}` when the app gives none; empty text counts as `{}`): an array, `null` or any
/// other value is refused even when `T` could be read from it. The error says what was wrong, for
/// the app developer who wrote the config.
///
/// ```
/// #[derive(serde::Deserialize, Default)]
/// #[serde(deny_unknown_fields, default)]
/// struct Config {
///     deny: Vec<String>,
/// }
///
/// let config: Config = airlock_hook::parse_config(r#"{"deny": ["delete_all"]}"#).unwrap();
/// assert_eq!(config.deny, ["delete_all"]);
/// let error = airlock_hook::parse_config::<Config>(r#"{"denied": []}"#).err().unwrap();
/// assert!(error.contains("unknown field `denied`"), "{error}");
/// let error = airlock_hook::parse_config::<Config>(r#"{"deny": "x"}"#).err().unwrap();
/// assert!(error.starts_with("invalid config: `deny`: invalid type"), "{error}");
/// assert!(airlock_hook::parse_config::<Config>("[]").is_err());
/// ```
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, String> {
    let config = if config.trim().is_empty() {
        "{}"
    } else {
        config
    };
    // serde reads a struct from an array too (`[]` would give the defaults): refuse it.
    if !config.trim_start().starts_with('{') {
        let shown: String = config.trim().chars().take(40).collect();
        return Err(format!(
            "invalid config: expected a JSON object, got `{shown}`"
        ));
    }
    serde_json::from_str(config)
        .map_err(|e| format!("invalid config: {}", config_error::<T>(config, e)))
}

/// serde's error, with the top-level field it is about when serde does not say (a wrong type
/// inside `deny` reads "invalid type: string "x", expected a sequence"): each field is tried
/// alone, which works for configs whose fields all have defaults.
fn config_error<T: serde::de::DeserializeOwned>(config: &str, error: serde_json::Error) -> String {
    let Ok(fields) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(config)
    else {
        return error.to_string();
    };
    let message = error.to_string();
    if message.contains("unknown field") {
        return message;
    }
    for (key, value) in fields {
        let alone = serde_json::Value::Object([(key.clone(), value)].into_iter().collect());
        if let Err(e) = serde_json::from_value::<T>(alone) {
            return format!("`{key}`: {e}");
        }
    }
    message
}

/// The message's JSON body read into `T` (a serde struct of the arguments a command takes), or a
/// `reject` verdict with `code` saying what did not fit: a bytes body, malformed JSON, a missing
/// or mistyped field (with `#[serde(deny_unknown_fields)]`, an unknown one too).
///
/// ```
/// use airlock_hook::{Body, Kind, Message, Source, Verdict, json_args, reject};
///
/// #[derive(serde::Deserialize)]
/// struct Transfer {
///     amount: u64,
/// }
///
/// fn inspect(message: Message) -> Verdict {
///     let args: Transfer = match json_args(&message, "bad-args") {
///         Ok(args) => args,
///         Err(verdict) => return verdict,
///     };
///     if args.amount > 1000 {
///         return reject("too-much", format!("{} is over the 1000 limit", args.amount));
///     }
///     Verdict::Pass
/// }
///
/// let message = |body: &str| Message {
///     id: 1,
///     kind: Kind::Command,
///     name: "transfer".into(),
///     source: Source { window: "main".into(), webview: "main".into(), origin: "tauri://localhost".into() },
///     headers: vec![],
///     body: Body::Json(body.into()),
/// };
/// assert!(matches!(inspect(message(r#"{"amount": 5}"#)), Verdict::Pass));
/// assert!(matches!(inspect(message(r#"{"amount": 5000}"#)), Verdict::Reject(r) if r.code == "too-much"));
/// assert!(matches!(inspect(message(r#"{"amount": "5"}"#)), Verdict::Reject(r) if r.code == "bad-args"));
/// ```
pub fn json_args<T: serde::de::DeserializeOwned>(
    message: &Message,
    code: &str,
) -> Result<T, Verdict> {
    let name = &message.name;
    let Some(text) = json_body(message) else {
        return Err(reject(code, format!("`{name}` takes JSON args, got bytes")));
    };
    serde_json::from_str(text).map_err(|e| reject(code, format!("args of `{name}`: {e}")))
}

/// A `replace` verdict that swaps the body for `value` written as JSON, keeping everything else.
/// A value serde cannot write as JSON (a map with non-string keys, say) rejects with `code`.
pub fn replace_with<T: serde::Serialize>(value: &T, code: &str) -> Verdict {
    match serde_json::to_string(value) {
        Ok(json) => replace_json_body(json),
        Err(e) => reject(code, format!("cannot write the new body as JSON: {e}")),
    }
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
