//! What the gateway accepts ([`GatewayLimits`]), and how it judges a request and a hook's
//! verdict against it.

use std::num::NonZeroUsize;
use std::time::Duration;

use crate::checks::{check_body, check_headers, check_name};
use crate::message::{Body, Header, Kind, Message, Request, counted_len};
use crate::verdict::{Rejection, Replacement, Verdict, code};

/// What the gateway accepts, and how many messages it runs through the hooks at once. Defaults:
/// 4 MiB per message (name, headers and body together), names of at most 256 bytes, at most 64
/// headers, JSON nested at most 100 deep (serde_json, in hosts and hooks, refuses 128); as many
/// hook calls at once as the engine's pool can always serve (see
/// [`hook_calls`](GatewayLimits::hook_calls)), and a wait of at most 1 s for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayLimits {
    /// Largest message, in bytes of name, headers and body; a hook's `replace` must fit too.
    pub max_message_bytes: usize,
    /// Longest command, event or channel name, in bytes.
    pub max_name_bytes: usize,
    /// Most headers on one message.
    pub max_headers: usize,
    /// Deepest nesting of arrays and objects in a JSON body.
    pub max_json_depth: usize,
    /// Messages in the hooks at once, over all windows (a chain counts once: its hooks run one
    /// after the other). When they are all busy, a message waits in its window's queue, and
    /// each call that ends lets in the first message of the waiting window that holds the
    /// fewest calls (among equals, the window whose call just ended last, then the one served
    /// longest ago): a window flooding slow messages waits behind its own while a quiet one
    /// gets the next free call.
    ///
    /// `None`, the default: what the first hook's engine can always serve, its
    /// [`max_instances`](crate::EngineConfig::max_instances) less the warm instances the
    /// gateway's reused hooks may keep ([`InstanceMode::Reuse`](crate::InstanceMode::Reuse)'s
    /// `max_idle`) and one for a reload's trial instance, counted in each hook's
    /// [`Hook::pool_share`](crate::Hook::pool_share) and divided by the largest (at least 1): 247
    /// for one Rust hook on the default engine, 55 for a CPython one keeping 8 warm instances.
    /// Every call may take a CPU: a lower setting shares the CPUs better between windows (see
    /// BENCHMARKS.md, "Fair hook capacity").
    pub hook_calls: Option<NonZeroUsize>,
    /// Longest a message waits for a hook call; past it, `hook-unavailable` naming its window,
    /// how long it waited and how many calls its window holds. Zero: refuse at once. Waiting
    /// needs a Tokio runtime with its timer (`airlock serve`'s and Tauri's); without one a
    /// message that finds every call busy is refused at once.
    pub hook_wait: Duration,
}

impl Default for GatewayLimits {
    fn default() -> Self {
        GatewayLimits {
            max_message_bytes: 4 << 20,
            max_name_bytes: 256,
            max_headers: 64,
            max_json_depth: 100,
            hook_calls: None,
            hook_wait: Duration::from_secs(1),
        }
    }
}

with_fields!(GatewayLimits {
    max_message_bytes: usize => with_max_message_bytes,
    max_name_bytes: usize => with_max_name_bytes,
    max_headers: usize => with_max_headers,
    max_json_depth: usize => with_max_json_depth,
    hook_calls: Option<NonZeroUsize> => with_hook_calls,
    hook_wait: Duration => with_hook_wait,
});

impl GatewayLimits {
    /// What a hook's verdict leaves of the message it inspected, as the gateway judges it: the
    /// message itself (pass), the replacement applied and checked like a frontend's request
    /// (replace; an invalid one is a `hook-output` rejection naming the problem), or the
    /// rejection (the hook's own, or its fault). The gateway and `airlock fuzz` both judge
    /// verdicts with it.
    pub fn settle(&self, message: Message, verdict: Verdict) -> Result<Message, Rejection> {
        match verdict {
            Verdict::Pass => Ok(message),
            Verdict::Replace(replacement) => self.apply(message, replacement),
            Verdict::Reject(rejection) => Err(rejection),
        }
    }

    /// Applies a `replace` and checks the result like a frontend's request; any problem is a
    /// `hook-output` rejection naming it.
    fn apply(&self, mut message: Message, replacement: Replacement) -> Result<Message, Rejection> {
        if let Some(name) = replacement.name {
            message.name = name;
        }
        if let Some(headers) = replacement.headers {
            message.headers = headers;
        }
        if let Some(body) = replacement.body {
            message.body = body;
        }
        self.check(message.kind, &message.name, &message.headers, &message.body)
            .map_err(|problem| {
                Rejection::new(
                    code::HOOK_OUTPUT,
                    format!("hook's replacement is invalid: {}", problem.reason),
                )
            })?;
        Ok(message)
    }

    /// Checks a frontend's request: size, name, headers, and a body well-formed for its kind.
    pub fn validate(&self, request: &Request) -> Result<(), Rejection> {
        self.check(request.kind, &request.name, &request.headers, &request.body)
    }

    fn check(
        &self,
        kind: Kind,
        name: &str,
        headers: &[Header],
        body: &Body,
    ) -> Result<(), Rejection> {
        let limits = self;
        let size = counted_len(name, headers, body);
        if size > limits.max_message_bytes {
            return Err(Rejection::new(
                code::TOO_LARGE,
                format!(
                    "message of {size} bytes is over the limit of {} bytes",
                    limits.max_message_bytes
                ),
            ));
        }
        check_name(name, limits.max_name_bytes)?;
        check_headers(headers, limits.max_headers)?;
        check_body(kind, body, limits.max_json_depth)
    }
}
