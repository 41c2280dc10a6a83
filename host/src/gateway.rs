//! The gateway: the pipeline from a frontend's raw request to the core's answer.
//!
//! [`Gateway::handle`] validates the request (size, name, headers, body), gives it an id and its
//! source, runs the hook on it, applies and re-validates a `replace`, seals the result and hands
//! the envelope to the core. Every request gets exactly one [`Reply`]: the core's response, or a
//! structured [`Rejection`] from the gateway, the hook or the core. Every message goes through
//! the hook, whatever its body (an empty one included).
//!
//! Between routing and the hooks sits a fair admission (see [`GatewayLimits::hook_calls`]): at
//! most so many messages run through the hooks at once, and when they are all busy a message
//! waits in its window's queue, the window holding the fewest calls served first, so that one
//! window flooding slow messages cannot take every hook instance from the others.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tracing::Instrument as _;

use crate::admission::{Admission, Refused};
use crate::core::{Core, Response, Router};
use crate::error::{HookError, chain};
use crate::hook::{Hook, Inspection, read_signature};
use crate::limits::GatewayLimits;
use crate::message::{Message, Request, Source};
use crate::metrics::Metrics;
use crate::monitor::{self, Monitored};
use crate::options::InstanceMode;
use crate::record::Recorder;
use crate::route::Route;
use crate::seal::{self, SealConfig, SealError, Sealer};
use crate::trust::Signature;
use crate::verdict::{Decision, Rejection, Verdict, code};

/// The answer to one request.
#[derive(Debug)]
pub struct Reply {
    /// The message's id (also given to requests the gateway refused).
    pub id: u64,
    /// Whether it was passed, replaced or rejected (by the gateway's checks or the hook).
    pub decision: Decision,
    /// The digest of the hook that decided, when the hook ran (in a chain, see [`Gateway::then`]).
    pub hook_digest: Option<Arc<str>>,
    /// How long the hook (every hook of a chain, together) took, when it ran.
    pub hook_time: Option<Duration>,
    /// Fuel the hook used, when the engine meters fuel.
    pub hook_fuel: Option<u64>,
    /// The core's response, or why there is none.
    pub outcome: Result<Response, Rejection>,
    /// What each hook in monitor mode would have done, in chain order (see [`crate::Monitored`]).
    pub monitored: Vec<Monitored>,
}

impl Reply {
    /// A request refused before any hook ran.
    pub(crate) fn refused(id: u64, rejection: Rejection) -> Reply {
        Reply {
            id,
            decision: Decision::Reject,
            hook_digest: None,
            hook_time: None,
            hook_fuel: None,
            outcome: Err(rejection),
            monitored: Vec::new(),
        }
    }
}

/// The pipeline: validation, hook, seal, core. Share it between tasks behind an `Arc`; the hook
/// can be swapped while messages are in flight ([`Gateway::reload`]).
#[derive(Debug)]
pub struct Gateway {
    hook: RwLock<Arc<Hook>>,
    next: Vec<Arc<Hook>>,
    routes: Vec<(Route, Vec<Arc<Hook>>)>,
    sealer: Sealer,
    core: Arc<Core>,
    limits: GatewayLimits,
    next_id: AtomicU64,
    recorder: Option<Arc<dyn Recorder>>,
    metrics: Option<Metrics>,
    admission: Admission,
}

impl Gateway {
    /// A gateway with default limits in front of a new core running `router`, joined by a fresh
    /// key from the OS RNG.
    pub fn new(hook: Hook, router: Router) -> Result<Gateway, SealError> {
        Gateway::with_config(
            hook,
            router,
            GatewayLimits::default(),
            SealConfig::default(),
        )
    }

    /// A gateway with these limits and key settings in front of a new core running `router`.
    pub fn with_config(
        hook: Hook,
        router: Router,
        limits: GatewayLimits,
        seal: SealConfig,
    ) -> Result<Gateway, SealError> {
        let (sealer, opener) = seal::channel(seal)?;
        let core = Arc::new(Core::new(router, opener));
        Ok(Gateway::from_parts(hook, sealer, core, limits))
    }

    /// A gateway in front of an existing core; `sealer` must pair with the core's opener.
    pub fn from_parts(hook: Hook, sealer: Sealer, core: Arc<Core>, limits: GatewayLimits) -> Self {
        let admission = Admission::new(hook_calls(&limits, [&hook]), limits.hook_wait);
        Gateway {
            admission,
            hook: RwLock::new(Arc::new(hook)),
            next: Vec::new(),
            routes: Vec::new(),
            sealer,
            core,
            limits,
            next_id: AtomicU64::new(1),
            recorder: None,
            metrics: None,
        }
    }

    /// Adds a hook that runs after the ones already there, as a chain: each hook sees the message
    /// the previous ones let through (a `replace` applied and checked first), and the first
    /// rejection stops the chain. The [`Reply`] names the hook whose verdict stood (the rejecting
    /// one, else the last that replaced, else the last) and the cost of the whole chain.
    /// [`Gateway::swap_hook`] and [`Gateway::reload`] replace only the first hook.
    pub fn then(mut self, hook: Hook) -> Self {
        self.next.push(Arc::new(hook));
        self.admit()
    }

    /// Sizes the admission for the hooks now in the gateway (before any message: it is built
    /// anew).
    fn admit(mut self) -> Self {
        let first = self.hook();
        let hooks = std::iter::once(&first)
            .chain(&self.next)
            .chain(self.routes.iter().flat_map(|(_, hooks)| hooks))
            .map(|hook| &**hook);
        self.admission = Admission::new(hook_calls(&self.limits, hooks), self.limits.hook_wait);
        self
    }

    /// Messages the hooks may run at once ([`GatewayLimits::hook_calls`], or what was derived
    /// from the engine).
    pub fn hook_calls(&self) -> usize {
        self.admission.capacity()
    }

    /// Messages in the hooks now (at most [`Gateway::hook_calls`]).
    pub fn hook_calls_running(&self) -> usize {
        self.admission.load().0
    }

    /// Messages waiting for a hook call now.
    pub fn hook_calls_waiting(&self) -> usize {
        self.admission.load().1
    }

    /// Hands every request, as the frontend sent it, and its reply to `recorder` (for
    /// `airlock replay`; see [`crate::JsonlRecorder`]). The request is copied only when a
    /// recorder is set.
    pub fn with_recorder(mut self, recorder: Arc<dyn Recorder>) -> Self {
        self.recorder = Some(recorder);
        self
    }

    /// Counts every hook step's verdict and time in `metrics` (see [`Metrics`]).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Sends the messages `route` matches through `hooks` (a chain, in order, as with
    /// [`Gateway::then`]) instead of the default chain. Routes are tried in the order they were
    /// added and the first that matches wins; a message no route matches goes through the
    /// default chain (the gateway's first hook and those added with [`Gateway::then`]).
    ///
    /// An empty `hooks` is refused: a route must not be a way around the hooks. Reloading
    /// ([`Gateway::reload`]) replaces only the default chain's first hook.
    ///
    /// # Panics
    /// If `hooks` is empty.
    pub fn route(mut self, route: Route, hooks: Vec<Hook>) -> Self {
        assert!(
            !hooks.is_empty(),
            "Gateway::route({route}): a route needs at least one hook"
        );
        self.routes
            .push((route, hooks.into_iter().map(Arc::new).collect()));
        self.admit()
    }

    /// The routes, in the order they are tried, each with the digests of its chain.
    pub fn routes(&self) -> impl Iterator<Item = (&Route, Vec<&str>)> {
        self.routes
            .iter()
            .map(|(route, hooks)| (route, hooks.iter().map(|h| h.digest()).collect()))
    }

    /// The hook new messages go to.
    pub fn hook(&self) -> Arc<Hook> {
        self.hook.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes `hook` serve every message from now on, and returns the one it replaces. Messages
    /// already inside the old hook finish there; each reply names the digest of its hook.
    pub fn swap_hook(&self, hook: Hook) -> Arc<Hook> {
        let new = Arc::new(hook);
        let mut current = self.hook.write().unwrap_or_else(|e| e.into_inner());
        tracing::info!(old = %current.digest(), new = %new.digest(), "hook swapped");
        std::mem::replace(&mut *current, new)
    }

    /// Loads `bytes` as the new hook, with the current hook's engine and options, and swaps it
    /// in. If it fails to load or configure — or to match the options' pin or trusted keys (see
    /// [`Gateway::reload_signed`]) — the current hook keeps serving and the error says why.
    /// Returns the new digest.
    pub fn reload(&self, bytes: &[u8]) -> Result<Arc<str>, HookError> {
        self.reload_signed(bytes, None)
    }

    /// [`Gateway::reload`] with the new hook's detached signature, checked against the current
    /// hook's [`Trust`](crate::trust::Trust) before anything is compiled.
    pub fn reload_signed(
        &self,
        bytes: &[u8],
        signature: Option<&Signature>,
    ) -> Result<Arc<str>, HookError> {
        let current = self.hook();
        let options = current.options().clone();
        let hook = Hook::load_signed(current.engine(), bytes, signature, options).inspect_err(
            |e| tracing::error!(hook = %current.digest(), error = %chain(e), "hook reload failed"),
        )?;
        let digest = hook.digest_arc();
        self.swap_hook(hook);
        Ok(digest)
    }

    /// [`Gateway::reload`] from a file (and its signature, `PATH.sig`, when one is required).
    pub fn reload_file(&self, path: impl AsRef<Path>) -> Result<Arc<str>, HookError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| HookError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let signature = read_signature(path, &self.hook().options().trust)?;
        self.reload_signed(&bytes, signature.as_ref())
    }

    /// The limits in force.
    pub fn limits(&self) -> &GatewayLimits {
        &self.limits
    }

    /// Runs one request through the whole pipeline. Never fails: every outcome is a [`Reply`].
    ///
    /// The work runs in a `message` span (its id, kind, name, window and origin), so the hook's
    /// own log lines, its faults and the core's dispatch all carry the message's id.
    pub async fn handle(&self, source: Source, request: Request) -> Reply {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!(
            "message",
            id,
            kind = %request.kind,
            name = %request.name,
            window = %source.window,
            origin = %source.origin,
        );
        let Some(recorder) = &self.recorder else {
            return self.run(id, source, request).instrument(span).await;
        };
        let (seen_from, seen) = (source.clone(), request.clone());
        let reply = self.run(id, source, request).instrument(span).await;
        let seen = match recorder.redactor() {
            Some(redactor) => crate::record::redacted(redactor, id, &seen_from, seen).await,
            None => seen,
        };
        recorder.record(&seen_from, &seen, &reply);
        reply
    }

    async fn run(&self, id: u64, source: Source, request: Request) -> Reply {
        if let Err(rejection) = self.limits.validate(&request) {
            tracing::info!(code = %rejection.code, reason = %rejection.reason, "request refused");
            return Reply::refused(id, rejection);
        }

        // A call in the hooks, or the window's turn for one.
        let permit = match self.admission.enter(&source.window).await {
            Ok(admitted) => {
                if let (true, Some(metrics)) = (admitted.waited, &self.metrics) {
                    metrics.hook_waited();
                }
                admitted.permit
            }
            Err(Refused { rejection, waited }) => {
                if let Some(metrics) = &self.metrics {
                    metrics.hook_refused(waited);
                }
                tracing::info!(code = %rejection.code, reason = %rejection.reason, "no hook call free");
                return Reply::refused(id, rejection);
            }
        };

        // The chain: the first route the message matches, else the default one (chosen once
        // admitted, so that a message that waited goes to a hook swapped in meanwhile).
        let routed = self
            .routes
            .iter()
            .find(|(route, _)| route.matches(&source, &request.name));
        let first = match routed {
            Some((_, hooks)) => hooks[0].clone(),
            None => self.hook(),
        };
        let rest = match routed {
            Some((_, hooks)) => &hooks[1..],
            None => &self.next[..],
        };
        let mut message = Message::from_request(id, source, request);
        let (mut decision, mut decider) = (Decision::Pass, &first);
        let (mut hook_time, mut hook_fuel) = (Duration::ZERO, None);
        let mut monitored = Vec::new();
        // Each hook of the chain sees what the previous ones let through; a rejection stops it.
        let outcome = 'chain: {
            for hook in std::iter::once(&first).chain(rest) {
                let inspection = hook.inspect(message).await;
                if let Some(metrics) = &self.metrics {
                    metrics.observe(hook, &inspection);
                }
                hook_time += inspection.elapsed;
                hook_fuel = match (hook_fuel, inspection.fuel) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                };
                if hook.options().monitor {
                    let (seen, verdict) =
                        monitor::observe(&self.limits, hook.digest_arc(), inspection);
                    message = seen;
                    monitored.push(verdict);
                    continue;
                }
                let step = inspection.verdict.kind();
                if step != Decision::Pass || decision == Decision::Pass {
                    decider = hook;
                }
                match settle_logged(&self.limits, hook.digest(), inspection) {
                    Ok(settled) if step == Decision::Replace => {
                        (decision, message) = (step, settled)
                    }
                    Ok(settled) => message = settled,
                    Err(rejection) => {
                        decision = Decision::Reject;
                        break 'chain Err(rejection);
                    }
                }
            }
            Ok(message)
        };
        // The core's work is not the hooks': the next message may have the call.
        drop(permit);
        let outcome = match outcome {
            Ok(message) => self.forward(message).await,
            Err(rejection) => Err(rejection),
        };
        Reply {
            id,
            decision,
            hook_digest: Some(decider.digest_arc()),
            hook_time: Some(hook_time),
            hook_fuel,
            outcome,
            monitored,
        }
    }

    /// Seals a message the hooks let through and hands it to the core.
    async fn forward(&self, message: Message) -> Result<Response, Rejection> {
        let envelope = self
            .sealer
            .seal_owned(message)
            .map_err(|e| Rejection::new(code::SEAL_FAILED, e.to_string()))?;
        self.core
            .dispatch(envelope)
            .await
            .map_err(|e| e.to_rejection())
    }
}

/// The messages `hooks` may run at once under `limits` (see [`GatewayLimits::hook_calls`]): the
/// first hook's pool, less the warm instances reused hooks may keep and one call's instance for
/// a reload's trial, in calls of the largest [`Hook::pool_share`].
fn hook_calls<'a>(limits: &GatewayLimits, hooks: impl IntoIterator<Item = &'a Hook>) -> usize {
    if let Some(calls) = limits.hook_calls {
        return calls.get();
    }
    let mut hooks = hooks.into_iter().peekable();
    let pool = hooks
        .peek()
        .map_or(1, |hook| hook.engine().config().max_instances as usize);
    let (mut warm, mut call) = (0, 1);
    for hook in hooks {
        let share = hook.pool_share();
        call = call.max(share);
        if let InstanceMode::Reuse { max_idle } = hook.options().mode {
            warm += max_idle.saturating_mul(share);
        }
    }
    (pool.saturating_sub(warm).saturating_sub(call) / call).max(1)
}

/// [`GatewayLimits::settle`], logging a rejection or a replacement with the hook and its cost.
fn settle_logged(
    limits: &GatewayLimits,
    digest: &str,
    inspection: Inspection,
) -> Result<Message, Rejection> {
    let cost_us = inspection.elapsed.as_micros() as u64;
    let replaced = matches!(inspection.verdict, Verdict::Replace(_));
    let settled = limits.settle(inspection.message, inspection.verdict);
    match &settled {
        Err(rejection) => tracing::info!(
            hook = digest,
            cost_us,
            code = %rejection.code,
            reason = %rejection.reason,
            "rejected"
        ),
        Ok(_) if replaced => tracing::info!(hook = digest, cost_us, "replaced"),
        Ok(_) => {}
    }
    settled
}
