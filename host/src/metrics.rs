//! Metrics: verdict counters and a hook-latency histogram, in the Prometheus text format.
//!
//! A [`Metrics`] given to a gateway ([`Gateway::with_metrics`](crate::Gateway::with_metrics))
//! sees every hook step of every chain: one `airlock_verdicts_total` count per hook and message,
//! and one `airlock_hook_seconds` observation (instantiation, `configure` and `inspect`
//! together). Labels are facts of the gateway and the hook — the hook's name and digest, the
//! message's kind, name and window, the verdict and its code — never payloads, headers or
//! reasons. It is built on `prometheus-client` and encodes the OpenMetrics text format, which
//! Prometheus scrapes; [`Metrics::encode`] gives the text (what `airlock serve --metrics ADDR`
//! serves), and [`Metrics::verdicts`] reads one verdict series.
//!
//! Message names and window labels come from the frontend (names are checked by the gateway:
//! ASCII, at most [`GatewayLimits::max_name_bytes`](crate::GatewayLimits)). To keep a hostile
//! frontend from growing the series without end, at most [`Metrics::max_series`] distinct label
//! sets are kept (default 10 000); past it, new ones are counted under name and window `other`.
//!
//! Two counters without labels tell how the gateway's fair admission to the hooks fares (see
//! [`GatewayLimits::hook_calls`](crate::GatewayLimits)): `airlock_hook_waits_total`, messages
//! that found every hook call busy and waited for one, and `airlock_hook_refusals_total`,
//! messages refused with `hook-unavailable` for want of one (after waiting their limit, or at
//! once when they could not wait).

use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::hook::{Hook, Inspection};
use crate::verdict::Verdict;

/// One series of `airlock_hook_seconds`: the hook and the message (its labels, as
/// [`Metrics::encode`] writes them).
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
#[non_exhaustive]
pub struct LatencyLabels {
    /// The hook's name ([`crate::HookOptions::name`]).
    pub hook: Arc<str>,
    /// The hook's digest.
    pub digest: Arc<str>,
    /// `command`, `event` or `channel`.
    pub kind: &'static str,
    /// The message's name (command, event or channel), as the hook saw it.
    pub name: String,
    /// The window the message came from.
    pub window: String,
}

impl LatencyLabels {
    /// The labels of a series.
    pub fn new(
        hook: &str,
        digest: &str,
        kind: crate::Kind,
        name: &str,
        window: &str,
    ) -> LatencyLabels {
        LatencyLabels {
            hook: hook.into(),
            digest: digest.into(),
            kind: kind_str(kind),
            name: name.to_owned(),
            window: window.to_owned(),
        }
    }
}

/// One series of `airlock_verdicts_total`: the hook and the message, as in
/// [`LatencyLabels`], then the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
#[non_exhaustive]
pub struct VerdictLabels {
    /// The hook and the message.
    #[prometheus(flatten)]
    pub series: LatencyLabels,
    /// `pass`, `replace` or `reject`.
    pub verdict: &'static str,
    /// The rejection's code; empty unless rejected.
    pub code: String,
}

impl VerdictLabels {
    /// The labels of a series, to read it with [`Metrics::verdicts`]: the hook and the message
    /// (`series`), the verdict and its code (empty unless rejected).
    pub fn new(series: LatencyLabels, verdict: crate::Decision, code: &str) -> VerdictLabels {
        VerdictLabels {
            series,
            verdict: verdict.as_str(),
            code: code.to_owned(),
        }
    }
}

type LatencyFamily = Family<LatencyLabels, Histogram, fn() -> Histogram>;

/// Verdict counters and hook latencies; share it (it is cheap to clone: clones count together).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    verdicts: Family<VerdictLabels, Counter>,
    latency: LatencyFamily,
    hook_waits: Counter,
    hook_refusals: Counter,
    max_series: usize,
    /// Hashes of the (hook, digest, kind, name, window) sets seen, up to `max_series`.
    series: Mutex<HashSet<u64>>,
    hasher: RandomState,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics")
            .field("max_series", &self.inner.max_series)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Latency buckets: 5 µs to about 5 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(5e-6, 2.0, 21))
}

fn kind_str(kind: crate::Kind) -> &'static str {
    match kind {
        crate::Kind::Command => "command",
        crate::Kind::Event => "event",
        crate::Kind::Channel => "channel",
    }
}

impl Metrics {
    /// Empty metrics, keeping at most 10 000 label sets.
    pub fn new() -> Metrics {
        Metrics::with_max_series(10_000)
    }

    /// Empty metrics keeping at most `max_series` distinct (hook, digest, kind, name, window)
    /// label sets; messages past it are counted with name and window `other`.
    pub fn with_max_series(max_series: usize) -> Metrics {
        let mut registry = Registry::default();
        let verdicts = Family::<VerdictLabels, Counter>::default();
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        registry.register(
            "airlock_verdicts",
            "Verdicts of each hook, by message kind, name and window, verdict and code",
            verdicts.clone(),
        );
        registry.register(
            "airlock_hook_seconds",
            "Time each hook took on a message (instantiation, configure and inspect)",
            latency.clone(),
        );
        let (hook_waits, hook_refusals) = (Counter::default(), Counter::default());
        registry.register(
            "airlock_hook_waits",
            "Messages that found every hook call busy and waited for one",
            hook_waits.clone(),
        );
        registry.register(
            "airlock_hook_refusals",
            "Messages refused (hook-unavailable) for want of a hook call",
            hook_refusals.clone(),
        );
        Metrics {
            inner: Arc::new(Inner {
                registry,
                verdicts,
                latency,
                hook_waits,
                hook_refusals,
                max_series,
                series: Mutex::new(HashSet::new()),
                hasher: RandomState::new(),
            }),
        }
    }

    /// The most label sets kept.
    pub fn max_series(&self) -> usize {
        self.inner.max_series
    }

    /// Everything, in the OpenMetrics text format (ending with `# EOF`).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.inner.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// The count of one verdict series (0 when it was never seen).
    pub fn verdicts(&self, labels: &VerdictLabels) -> u64 {
        self.inner.verdicts.get(labels).map_or(0, |c| c.get())
    }

    /// Messages that waited for a hook call (`airlock_hook_waits_total`).
    pub fn hook_waits(&self) -> u64 {
        self.inner.hook_waits.get()
    }

    /// Messages refused for want of a hook call (`airlock_hook_refusals_total`).
    pub fn hook_refusals(&self) -> u64 {
        self.inner.hook_refusals.get()
    }

    /// Counts a message that waited for a hook call and got one.
    pub(crate) fn hook_waited(&self) {
        self.inner.hook_waits.inc();
    }

    /// Counts a message refused for want of a hook call (`waited` first, or not).
    pub(crate) fn hook_refused(&self, waited: bool) {
        if waited {
            self.inner.hook_waits.inc();
        }
        self.inner.hook_refusals.inc();
    }

    /// Counts one hook step: the hook, the message as the hook saw it, its verdict and time.
    pub(crate) fn observe(&self, hook: &Hook, inspection: &Inspection) {
        let message = &inspection.message;
        let (hook_name, digest) = (hook.name_arc(), hook.digest_arc());
        let kind = kind_str(message.kind);
        let key = self.inner.hasher.hash_one((
            &*hook_name,
            &*digest,
            kind,
            &message.name,
            &message.source.window,
        ));
        let known = {
            let mut series = self.inner.series.lock().unwrap_or_else(|e| e.into_inner());
            series.contains(&key) || (series.len() < self.inner.max_series && series.insert(key))
        };
        let (name, window) = match known {
            true => (message.name.clone(), message.source.window.clone()),
            false => ("other".to_owned(), "other".to_owned()),
        };
        let (verdict, code) = match &inspection.verdict {
            Verdict::Reject(rejection) => ("reject", rejection.code.clone()),
            other => (other.kind().as_str(), String::new()),
        };
        let series = LatencyLabels {
            hook: hook_name,
            digest,
            kind,
            name,
            window,
        };
        self.inner
            .latency
            .get_or_create(&series)
            .observe(inspection.elapsed.as_secs_f64());
        let labels = VerdictLabels {
            series,
            verdict,
            code,
        };
        self.inner.verdicts.get_or_create(&labels).inc();
    }
}
