//! path-guard-planted: path-guard with two bypasses planted behind nested conditions, for testing
//! the fuzzer (`airlock fuzz --reference path-guard.rust.wasm`). Never use it as a policy.
//!
//! The args of a guarded command pass unchecked when
//! 1. they hold a `mode` key, whose value is a string starting with `raw:`, and the `path` is
//!    longer than 32 bytes; or
//! 2. they hold an `opts` key, whose value is an array, of exactly 3 elements.
//!
//! Everything else is path-guard's verdict: the policy is path-guard's own source
//! (`../../path-guard/rust/src/policy.rs`), wrapped.

use airlock_hook::{Guest, Kind, Message, Verdict, json_body};
use serde_json::Value;

#[path = "../../../path-guard/rust/src/policy.rs"]
mod policy;

struct Planted;

impl Guest for Planted {
    fn configure(config: String) -> Result<(), String> {
        policy::PathGuard::configure(config)
    }

    fn inspect(message: Message) -> Verdict {
        if message.kind == Kind::Command && bypassed(&message) {
            return Verdict::Pass;
        }
        policy::PathGuard::inspect(message)
    }
}

airlock_hook::export_hook!(Planted);

/// Whether a planted bypass lets these args through. The conditions are nested on purpose: each
/// is a branch the fuzzer must reach before the next.
#[allow(clippy::collapsible_if)]
fn bypassed(message: &Message) -> bool {
    let Some(Ok(Value::Object(args))) = json_body(message).map(serde_json::from_str::<Value>)
    else {
        return false;
    };
    if let Some(mode) = args.get("mode") {
        if let Some(mode) = mode.as_str() {
            if mode.starts_with("raw:") {
                let path = args.get("path").and_then(Value::as_str).unwrap_or("");
                if path.len() > 32 {
                    return true;
                }
            }
        }
    }
    if let Some(opts) = args.get("opts") {
        if let Some(opts) = opts.as_array() {
            if opts.len() == 3 {
                return true;
            }
        }
    }
    false
}
