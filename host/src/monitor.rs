//! Monitor mode (dry runs): a hook whose verdict is computed, logged and counted, but not
//! enforced ([`crate::HookOptions::monitor`]).
//!
//! In a chain, a monitored hook sees the message the hooks before it let through, and the hooks
//! after it see that same message, whatever the monitored hook said: a `replace` is not applied,
//! a rejection or a fault does not stop the chain. What it would have done is kept in
//! [`crate::Reply::monitored`] and logged at `warn` level when it is not a pass.

use std::sync::Arc;

use crate::hook::Inspection;
use crate::limits::GatewayLimits;
use crate::message::Message;
use crate::verdict::{Decision, Rejection, Verdict};

/// What a hook in monitor mode would have done to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Monitored {
    /// The SHA-256 of the monitored hook.
    pub hook_digest: Arc<str>,
    /// Its verdict: a `replace` that the gateway would have refused counts as a rejection
    /// (`hook-output`), as it would have when enforced.
    pub decision: Decision,
    /// The rejection it would have made (its own, or its fault), when `decision` is `reject`.
    pub rejection: Option<Rejection>,
}

/// Judges a monitored hook's inspection as the gateway would, logs it, and hands back the message
/// as it went in (to go on as if the hook had passed it).
pub(crate) fn observe(
    limits: &GatewayLimits,
    digest: Arc<str>,
    inspection: Inspection,
) -> (Message, Monitored) {
    let Inspection {
        message, verdict, ..
    } = inspection;
    let (decision, rejection) = match verdict {
        Verdict::Pass => (Decision::Pass, None),
        Verdict::Reject(rejection) => (Decision::Reject, Some(rejection)),
        replace @ Verdict::Replace(_) => match limits.settle(message.clone(), replace) {
            Ok(_) => (Decision::Replace, None),
            Err(rejection) => (Decision::Reject, Some(rejection)),
        },
    };
    match &rejection {
        Some(r) => tracing::warn!(
            hook = %digest,
            monitor = true,
            code = %r.code,
            reason = %r.reason,
            "would have rejected (monitor mode: not enforced)"
        ),
        None if decision == Decision::Replace => tracing::warn!(
            hook = %digest,
            monitor = true,
            "would have replaced (monitor mode: not enforced)"
        ),
        None => {}
    }
    let monitored = Monitored {
        hook_digest: digest,
        decision,
        rejection,
    };
    (message, monitored)
}
