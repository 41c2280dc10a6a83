//! Verdicts and rejections, and the codes the host itself uses.
//!
//! A hook's fault is not an engine error: it is a [`Verdict::Reject`] with one of the `hook-*`
//! codes, so the caller always gets an answer and nothing passes that the hook did not pass.

use std::fmt;

use crate::message::{Body, Header};

/// Rejection codes made by the host, as opposed to codes a hook chooses.
pub mod code {
    /// The hook trapped (a panic, `unreachable`, an out-of-bounds access…).
    pub const HOOK_TRAP: &str = "hook-trap";
    /// The hook ran past its time limit (or its fuel budget).
    pub const HOOK_TIMEOUT: &str = "hook-timeout";
    /// The hook tried to grow its memory past its limit.
    pub const HOOK_MEMORY: &str = "hook-memory";
    /// The hook overflowed its wasm stack.
    pub const HOOK_STACK: &str = "hook-stack";
    /// The hook returned something malformed: a bad code, an invalid replacement.
    pub const HOOK_OUTPUT: &str = "hook-output";
    /// The hook needed more instances, tables or table elements than its limits allow.
    pub const HOOK_LIMIT: &str = "hook-limit";
    /// The hook logged more than its per-message budget.
    pub const HOOK_LOG: &str = "hook-log";
    /// The hook refused its configuration on this instance.
    pub const HOOK_CONFIG: &str = "hook-config";
    /// No instance of the hook could be made (for example, the instance pool is exhausted).
    pub const HOOK_UNAVAILABLE: &str = "hook-unavailable";
    /// The hook faulted more than its quarantine limit allows in the quarantine window: it is not
    /// run until it is reloaded or the window passes (see [`crate::HookLimits::quarantine_faults`]).
    pub const HOOK_QUARANTINED: &str = "hook-quarantined";
    /// The request is larger than the gateway's message size limit.
    pub const TOO_LARGE: &str = "too-large";
    /// The name is empty, too long, or has a character outside `A-Za-z0-9-/:_`.
    pub const INVALID_NAME: &str = "invalid-name";
    /// A header name or value is not acceptable.
    pub const INVALID_HEADER: &str = "invalid-header";
    /// The body is not well-formed for its kind (bad JSON, or command args not an object).
    pub const INVALID_BODY: &str = "invalid-body";
    /// The message could not be sealed.
    pub const SEAL_FAILED: &str = "seal-failed";
    /// The core refused the envelope (never seen unless something tampered with it).
    pub const ENVELOPE_REJECTED: &str = "envelope-rejected";
    /// No command handler has this name.
    pub const UNKNOWN_COMMAND: &str = "unknown-command";
    /// No channel receiver has this name.
    pub const UNKNOWN_CHANNEL: &str = "unknown-channel";
    /// The command's args did not match what its handler takes.
    pub const INVALID_ARGS: &str = "invalid-args";
    /// The handler returned an error.
    pub const HANDLER_ERROR: &str = "handler-error";
}

/// Longest reason kept from a hook; longer ones are cut at a character boundary.
pub const MAX_REASON_BYTES: usize = 1024;
/// Longest code a hook may use.
pub const MAX_CODE_BYTES: usize = 64;

/// A refusal: a short machine-readable code and a human-readable reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Machine-readable code, e.g. `path-escape` or `hook-timeout`.
    pub code: String,
    /// What went wrong, naming the offending value or limit.
    pub reason: String,
}

impl Rejection {
    /// A rejection with this code and reason.
    pub fn new(code: impl Into<String>, reason: impl Into<String>) -> Self {
        Rejection {
            code: code.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.reason)
    }
}

/// What a `replace` verdict changes; `None` keeps the original.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replacement {
    /// New name.
    pub name: Option<String>,
    /// New headers, replacing all of the original ones.
    pub headers: Option<Vec<Header>>,
    /// New body.
    pub body: Option<Body>,
}

/// A hook's decision on one message, faults included (as `hook-*` rejections).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward unchanged.
    Pass,
    /// Forward with these changes.
    Replace(Replacement),
    /// Refuse.
    Reject(Rejection),
}

impl Verdict {
    /// `pass`, `replace` or `reject`.
    pub fn kind(&self) -> Decision {
        match self {
            Verdict::Pass => Decision::Pass,
            Verdict::Replace(_) => Decision::Replace,
            Verdict::Reject(_) => Decision::Reject,
        }
    }
}

/// The shape of a verdict without its contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Forwarded unchanged.
    Pass,
    /// Forwarded with changes.
    Replace,
    /// Refused (by the gateway's validation, or by the hook).
    Reject,
}

impl Decision {
    /// `pass`, `replace` or `reject`.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Pass => "pass",
            Decision::Replace => "replace",
            Decision::Reject => "reject",
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a hook-chosen code: 1 to 64 of `a-z`, `0-9`, `-`, not starting with the host's
/// `hook-` prefix.
pub(crate) fn check_hook_code(code: &str) -> Result<(), String> {
    let well_formed = !code.is_empty()
        && code.len() <= MAX_CODE_BYTES
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !well_formed {
        return Err(format!(
            "rejection code {code:?} is not 1 to {MAX_CODE_BYTES} of a-z, 0-9 and -"
        ));
    }
    if code.starts_with("hook-") {
        return Err(format!(
            "rejection code {code:?} uses the host's reserved prefix `hook-`"
        ));
    }
    Ok(())
}

/// Cuts a reason to [`MAX_REASON_BYTES`] at a character boundary.
pub(crate) fn clip_reason(mut reason: String) -> String {
    if reason.len() > MAX_REASON_BYTES {
        let mut end = MAX_REASON_BYTES;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

impl std::error::Error for Rejection {}
