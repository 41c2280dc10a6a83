//! Payload fuzzing: find the message that breaks a hook.
//!
//! [`run`] starts from seed messages, mutates them ([`mutate`]), runs each candidate through the
//! gateway's validation and the hook, and keeps the candidates that reach new behaviour — a new
//! verdict, rejection code, or order of magnitude of fuel used, and with a hook instrumented for
//! coverage ([`coverage`]), a block of the hook's code no message reached before, or for an
//! interpreted hook (Python) an edge of its program no message took before — as a corpus
//! to mutate further (at most [`FuzzOptions::max_corpus`] messages). Mutations draw on
//! [`coverage::Hints`]: the constants and strings found in the hook's code.
//! Each run is checked by the oracles:
//!
//! - a hook fault (`hook-trap`, `hook-timeout`, `hook-memory`, `hook-stack`, …);
//! - a `replace` whose result the gateway refuses (not valid for its kind, too large…);
//! - non-determinism: the same message twice, different outcomes (a run that timed out is tried
//!   again, twice at most: on a loaded machine a hook can be late without being at fault, and a
//!   timeout is never taken for a different outcome);
//! - with a reference hook, an outcome that differs from the reference's (differential fuzzing
//!   of two implementations of one policy);
//! - declarative [`Properties`].
//!
//! Each distinct finding is minimized to a small message that still shows it. With coverage,
//! two differences from the reference with the same pair of outcomes are told apart by where
//! the hook went: each is known by the three rarest blocks its minimized message reached
//! ("diverges at block N" names the first), and a message that misses one of them, and does not
//! minimize back to a known finding, is a new finding. The
//! run is deterministic for a given seed and number of runs.

pub mod coverage;
pub mod distinct;
pub mod mutate;
pub mod oracle;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::Value;

use airlock::{Body, Decision, GatewayLimits, Hook, Message, Request, Source, code};
pub use coverage::Hints;
pub use mutate::Rng;
pub use oracle::Properties;

/// How long to fuzz.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// This many runs (a run is one candidate message, whatever number of hook calls it needs).
    Runs(u64),
    /// For this long.
    Time(Duration),
}

/// What to fuzz, and how.
#[derive(Debug)]
pub struct FuzzOptions {
    /// The hook under test, loaded with the quarantine off
    /// (`HookLimits::with_quarantine_faults(None)`): a quarantined hook's faults go unseen.
    pub hook: Hook,
    /// A second implementation of the same policy to compare against.
    pub reference: Option<Hook>,
    /// Messages to start from; the built-in seeds when empty.
    pub seeds: Vec<(Source, Request)>,
    /// Properties every run must keep.
    pub properties: Option<Properties>,
    /// How long to go on.
    pub budget: Budget,
    /// The random seed: the same seed gives the same sequence of messages.
    pub seed: u64,
    /// The gateway's limits: candidates stay within them.
    pub limits: GatewayLimits,
    /// What the hook's code compares against, for the mutator ([`coverage::instrument`]).
    pub hints: Hints,
    /// The number of blocks of `hook`, when it is instrumented and loaded with
    /// `HookOptions::coverage`: its coverage then guides the run.
    pub blocks: Option<u32>,
    /// The numbers, among those coverage reports, of the edges of an interpreted program
    /// ([`coverage::Instrumented::edges`]): they guide the run as blocks do, and are counted
    /// apart.
    pub edges: Vec<std::ops::Range<u32>>,
    /// The most messages the corpus holds (seeds included); past it, new behaviour is still
    /// counted but no longer kept.
    pub max_corpus: usize,
}

/// How many of the rarest blocks a difference from the reference is known by.
const SIGNATURE_BLOCKS: usize = 3;

/// The default [`FuzzOptions::max_corpus`].
pub const MAX_CORPUS: usize = 4096;

/// Which oracle a finding comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingKind {
    /// The hook trapped, timed out, ran out of memory or stack…
    Fault,
    /// The hook's `replace` was refused by the gateway.
    BadReplace,
    /// The same message twice gave different outcomes.
    Nondeterministic,
    /// The outcome differs from the reference hook's.
    Differs,
    /// A declared property was broken.
    Property,
}

impl FindingKind {
    /// A short lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Fault => "fault",
            FindingKind::BadReplace => "bad-replace",
            FindingKind::Nondeterministic => "nondeterministic",
            FindingKind::Differs => "differs",
            FindingKind::Property => "property",
        }
    }
}

/// One distinct problem found, with a minimized message that shows it.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The oracle.
    pub kind: FindingKind,
    /// What distinguishes it from other findings of its kind (a code, a property name…).
    pub key: String,
    /// What happened, for people.
    pub summary: String,
    /// The minimized message's source.
    pub source: Source,
    /// The minimized message.
    pub request: Request,
    /// Body size before minimizing.
    pub original_body_len: usize,
    /// The run that first found it.
    pub first_run: u64,
    /// How long into the fuzzing run it was first found.
    pub first_elapsed: Duration,
    /// With coverage, the blocks this finding is known by: the rarest its minimized message
    /// reached (at most 3), the first named in its summary; a later difference that misses one
    /// of them (and that does not minimize back to this finding) is another finding.
    pub blocks: Vec<u32>,
    /// How many runs found it.
    pub count: u64,
}

/// Where a run is, for a progress line.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Runs so far.
    pub runs: u64,
    /// Time so far.
    pub elapsed: Duration,
    /// Corpus size.
    pub corpus: usize,
    /// Distinct findings so far.
    pub findings: usize,
    /// How often each outcome (`pass`, `replace`, or a rejection code) was seen.
    pub outcomes: BTreeMap<String, u64>,
    /// With coverage, the blocks of the hook reached so far and the number instrumented.
    pub coverage: Option<(usize, u32)>,
    /// With coverage of an interpreted hook, the edges of its program reached so far and the
    /// size of their maps.
    pub edges: Option<(usize, u32)>,
}

/// The result of a fuzzing run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Progress at the end.
    pub progress: Progress,
    /// Distinct findings, in the order found.
    pub findings: Vec<Finding>,
}

/// What one message did.
#[derive(Debug, Clone, PartialEq)]
struct Outcome {
    decision: Decision,
    code: Option<String>,
    reason: Option<String>,
    delivered: Option<Message>,
    fuel: u64,
    bad_replace: bool,
    coverage: Option<Vec<u32>>,
}

impl Outcome {
    fn label(&self) -> String {
        self.code
            .clone()
            .unwrap_or_else(|| self.decision.as_str().to_owned())
    }

    /// The parts two runs (or two implementations) must agree on.
    fn comparable(&self) -> (Decision, Option<&str>, Option<(&str, &Body)>) {
        (
            self.decision,
            self.code.as_deref(),
            self.delivered.as_ref().map(|m| (m.name.as_str(), &m.body)),
        )
    }
}

fn evaluate(
    hook: &Hook,
    limits: &GatewayLimits,
    source: &Source,
    request: &Request,
) -> Option<Outcome> {
    limits.validate(request).ok()?;
    let message = Message::from_request(1, source.clone(), request.clone());
    let inspection = hook.inspect_blocking(message);
    let fuel = inspection.fuel.unwrap_or(0);
    let coverage = inspection.coverage;
    let decision = inspection.verdict.kind();
    // Judged as the gateway judges it.
    Some(
        match limits.settle(inspection.message, inspection.verdict) {
            Ok(delivered) => Outcome {
                decision,
                code: None,
                reason: None,
                delivered: Some(delivered),
                fuel,
                bad_replace: false,
                coverage,
            },
            Err(rejection) => Outcome {
                decision: Decision::Reject,
                code: Some(rejection.code),
                reason: Some(rejection.reason),
                delivered: None,
                fuel,
                bad_replace: decision == Decision::Replace,
                coverage,
            },
        },
    )
}

const FAULT_CODES: &[&str] = &[
    code::HOOK_TRAP,
    code::HOOK_TIMEOUT,
    code::HOOK_MEMORY,
    code::HOOK_STACK,
    code::HOOK_LIMIT,
    code::HOOK_LOG,
    code::HOOK_OUTPUT,
    code::HOOK_CONFIG,
    code::HOOK_UNAVAILABLE,
];

/// How many more times a run that timed out is tried ([`Fuzzer::evaluate_hook`]).
const TIMEOUT_RETRIES: usize = 2;

/// What an oracle saw: its kind, the key that tells findings apart, and a summary.
type Hit = (FindingKind, String, String);

struct Fuzzer<'a> {
    options: &'a FuzzOptions,
}

impl Fuzzer<'_> {
    /// The first finding a message shows, as (kind, key, summary).
    fn check(
        &self,
        source: &Source,
        request: &Request,
        twice: bool,
    ) -> Option<(Outcome, Option<Hit>)> {
        let outcome = self.evaluate_hook(source, request)?;
        let finding = self.oracles(source, request, &outcome, twice);
        Some((outcome, finding))
    }

    /// Runs the hook; a run that timed out is tried again (at most [`TIMEOUT_RETRIES`] times),
    /// since on a loaded machine a hook may be late without being at fault: a hook that loops
    /// times out every time.
    fn evaluate_hook(&self, source: &Source, request: &Request) -> Option<Outcome> {
        let options = self.options;
        let mut outcome = evaluate(&options.hook, &options.limits, source, request)?;
        for _ in 0..TIMEOUT_RETRIES {
            if outcome.code.as_deref() != Some(code::HOOK_TIMEOUT) {
                break;
            }
            outcome = evaluate(&options.hook, &options.limits, source, request)?;
        }
        Some(outcome)
    }

    fn oracles(
        &self,
        source: &Source,
        request: &Request,
        outcome: &Outcome,
        twice: bool,
    ) -> Option<Hit> {
        let options = self.options;
        let reason = outcome.reason.clone().unwrap_or_default();
        if outcome.bad_replace {
            return Some((FindingKind::BadReplace, "bad-replace".into(), reason));
        }
        if let Some(code) = outcome.code.as_deref().filter(|c| FAULT_CODES.contains(c)) {
            return Some((
                FindingKind::Fault,
                code.to_owned(),
                format!("{code}: {reason}"),
            ));
        }
        if twice {
            let again = self.evaluate_hook(source, request)?;
            // A run late every time it was tried is load, not a different outcome.
            if again.code.as_deref() != Some(code::HOOK_TIMEOUT)
                && again.comparable() != outcome.comparable()
            {
                return Some((
                    FindingKind::Nondeterministic,
                    "nondeterministic".into(),
                    format!("first {}, then {}", describe(outcome), describe(&again)),
                ));
            }
        }
        if let Some(reference) = &options.reference
            && let Some(theirs) = evaluate(reference, &options.limits, source, request)
            && !theirs
                .code
                .as_deref()
                .is_some_and(|c| FAULT_CODES.contains(&c))
            && theirs.comparable() != outcome.comparable()
        {
            return Some((
                FindingKind::Differs,
                format!("{} vs {}", outcome.label(), theirs.label()),
                format!(
                    "hook: {}; reference: {}",
                    describe(outcome),
                    describe(&theirs)
                ),
            ));
        }
        if let Some(properties) = &options.properties {
            let original = Message::from_request(1, source.clone(), request.clone());
            if let Some(why) =
                properties.violation(&original, outcome.decision, outcome.delivered.as_ref())
            {
                let name = why.split('"').nth(1).unwrap_or("property").to_owned();
                return Some((FindingKind::Property, name, why));
            }
        }
        None
    }
}

fn describe(outcome: &Outcome) -> String {
    match (&outcome.code, &outcome.delivered) {
        (Some(code), _) => format!(
            "reject {code} ({})",
            outcome.reason.as_deref().unwrap_or("")
        ),
        (None, Some(message)) => format!(
            "{} as {:?} with {} body bytes",
            outcome.decision,
            message.name,
            message.body.len()
        ),
        (None, None) => outcome.decision.to_string(),
    }
}

/// Fuzzes until the budget runs out, calling `progress` now and then.
pub fn run(options: &FuzzOptions, progress: &mut dyn FnMut(&Progress)) -> Report {
    let fuzzer = Fuzzer { options };
    let mut rng = Rng::new(options.seed);
    let bounds = mutate::Bounds {
        max_body: options.limits.max_message_bytes / 2,
        max_depth: options.limits.max_json_depth,
    };
    let mut corpus = match options.seeds.is_empty() {
        true => mutate::builtin_seeds(),
        false => options.seeds.clone(),
    };
    let mut signatures = HashSet::new();
    // With coverage: how many runs reached each block so far, and the blocks each corpus entry
    // was the first to reach (none for seeds).
    let numbers =
        options.blocks.unwrap_or(0) as usize + options.edges.iter().map(|r| r.len()).sum::<usize>();
    let mut reached = Reached::new(numbers);
    let mut firsts: Vec<Vec<u32>> = vec![Vec::new(); corpus.len()];
    let mut findings: Vec<Finding> = Vec::new();
    // Each finding's first run, with a set of blocks that tells it apart (see below).
    let mut known_by: Vec<(u64, Vec<u32>)> = Vec::new();
    let mut state = Progress {
        runs: 0,
        elapsed: Duration::ZERO,
        corpus: corpus.len(),
        findings: 0,
        outcomes: BTreeMap::new(),
        coverage: options.blocks.map(|total| (0, total)),
        edges: match options.edges.is_empty() || options.blocks.is_none() {
            true => None,
            false => Some((0, options.edges.iter().map(|r| r.len() as u32).sum())),
        },
    };
    let is_edge = |n: &u32| options.edges.iter().any(|r| r.contains(n));
    let mut edges_reached = 0usize;
    let start = Instant::now();
    let mut last_report = Instant::now();
    let seeds = corpus.len();
    loop {
        state.elapsed = start.elapsed();
        let done = match options.budget {
            Budget::Runs(runs) => state.runs >= runs,
            Budget::Time(limit) => state.elapsed >= limit,
        };
        if done {
            break;
        }
        // Seeds go first as they are; then mutations of corpus entries.
        let (source, request) = match state.runs < seeds as u64 {
            true => corpus[state.runs as usize].clone(),
            false => {
                let (source, request) = &corpus[pick(&mut rng, &firsts, &reached)];
                let (_, other) = &corpus[rng.below(corpus.len())];
                mutate::mutate(&mut rng, source, request, other, bounds, &options.hints)
            }
        };
        state.runs += 1;
        let twice = state.runs.is_multiple_of(8);
        let Some((outcome, finding)) = fuzzer.check(&source, &request, twice) else {
            continue;
        };
        *state.outcomes.entry(outcome.label()).or_default() += 1;
        let signature = (
            request.kind,
            outcome.label(),
            64 - outcome.fuel.leading_zeros(),
        );
        let mut new_behaviour = signatures.insert(signature);
        let mut new_blocks = Vec::new();
        for block in outcome.coverage.iter().flatten() {
            if reached.add(*block) {
                new_blocks.push(*block);
                if is_edge(block) {
                    edges_reached += 1;
                }
            }
        }
        new_behaviour |= !new_blocks.is_empty();
        if new_behaviour && corpus.len() < options.max_corpus && state.runs > seeds as u64 {
            corpus.push((source.clone(), request.clone()));
            firsts.push(new_blocks);
        }
        if let Some((kind, key, summary)) = finding {
            let diverging = kind == FindingKind::Differs && outcome.coverage.is_some();
            // With coverage, a difference is known by sets of blocks (its minimized message's
            // rarest, then those of messages that minimized back to it): a message that reaches
            // all of one set is that finding.
            let known = |findings: &[Finding], coverage: &Option<Vec<u32>>| {
                findings.iter().position(|f| {
                    f.kind == kind
                        && f.key == key
                        && (!diverging
                            || known_by.iter().any(|(at, set): &(u64, Vec<u32>)| {
                                f.first_run == *at
                                    && coverage
                                        .as_ref()
                                        .is_some_and(|c| set.iter().all(|b| c.contains(b)))
                            }))
                })
            };
            let rarest = |coverage: &Option<Vec<u32>>| {
                let mut blocks: Vec<u32> = coverage.iter().flatten().copied().collect();
                blocks.sort_unstable_by_key(|block| (reached.runs(*block), *block));
                blocks.truncate(SIGNATURE_BLOCKS);
                blocks
            };
            match known(&findings, &outcome.coverage) {
                Some(at) => findings[at].count += 1,
                None => {
                    let original_body_len = request.body.len();
                    let (source, request) = minimize(&fuzzer, kind, &key, source, request.clone());
                    // Describe what the minimized message does (it shows the same finding).
                    let (summary, coverage) = match fuzzer.check(
                        &source,
                        &request,
                        kind == FindingKind::Nondeterministic,
                    ) {
                        Some((minimized, Some((_, _, text)))) => (text, minimized.coverage),
                        _ => (summary, outcome.coverage.clone()),
                    };
                    // A message of a known finding that went elsewhere minimizes back to it.
                    if let Some(at) = known(&findings, &coverage) {
                        findings[at].count += 1;
                        known_by.push((findings[at].first_run, rarest(&outcome.coverage)));
                    } else {
                        let blocks = match diverging {
                            true => rarest(&coverage),
                            false => Vec::new(),
                        };
                        let summary = match blocks.first() {
                            Some(block) => format!("{summary}; diverges at block {block}"),
                            None => summary,
                        };
                        known_by.push((state.runs, blocks.clone()));
                        findings.push(Finding {
                            kind,
                            key,
                            summary,
                            source,
                            original_body_len,
                            request,
                            first_run: state.runs,
                            first_elapsed: start.elapsed(),
                            blocks,
                            count: 1,
                        });
                    }
                }
            }
        }
        state.corpus = corpus.len();
        state.findings = findings.len();
        if let Some((seen, _)) = &mut state.coverage {
            *seen = reached.distinct - edges_reached;
        }
        if let Some((seen, _)) = &mut state.edges {
            *seen = edges_reached;
        }
        if last_report.elapsed() >= Duration::from_millis(250) {
            last_report = Instant::now();
            progress(&state);
        }
    }
    state.elapsed = start.elapsed();
    progress(&state);
    Report {
        progress: state,
        findings,
    }
}

/// How many runs reached each block (or edge) so far, by its number: a counter array, as the
/// numbers are dense and a run of a CPython hook reports some 10 000 of them (a hash map counting
/// them cost a tenth of the run).
#[derive(Debug)]
struct Reached {
    /// One counter per block and edge instrumented.
    runs: Vec<u64>,
    /// Blocks reached at least once.
    distinct: usize,
}

impl Reached {
    fn new(numbers: usize) -> Reached {
        Reached {
            runs: vec![0; numbers],
            distinct: 0,
        }
    }

    fn runs(&self, block: u32) -> u64 {
        self.runs.get(block as usize).copied().unwrap_or(0)
    }

    /// Counts one more run reaching `block`; whether it is the first. A number past those
    /// instrumented (which the instrumented code never reports) is not counted.
    fn add(&mut self, block: u32) -> bool {
        let Some(runs) = self.runs.get_mut(block as usize) else {
            return false;
        };
        *runs += 1;
        let first = *runs == 1;
        self.distinct += usize::from(first);
        first
    }
}

/// The corpus entry to mutate next. Half the time any; else, with coverage, the best of four by
/// where they went: the entry first to reach the block fewest runs reached since (a branch just
/// opened, whose next condition is still ahead), before seeds and entries whose blocks many
/// runs reach.
fn pick(rng: &mut Rng, firsts: &[Vec<u32>], reached: &Reached) -> usize {
    let any = rng.below(firsts.len());
    if reached.distinct == 0 || rng.one_in(2) {
        return any;
    }
    let rarity = |entry: usize| {
        firsts[entry]
            .iter()
            .map(|block| reached.runs(*block))
            .min()
            .unwrap_or(u64::MAX)
    };
    let mut best = any;
    for _ in 0..3 {
        let other = rng.below(firsts.len());
        if rarity(other) < rarity(best) {
            best = other;
        }
    }
    best
}

/// Shrinks a message while it still shows the same finding: headers, origin, then the JSON body
/// (members, elements, subtrees, string lengths). At most 400 tries.
fn minimize(
    fuzzer: &Fuzzer,
    kind: FindingKind,
    key: &str,
    source: Source,
    request: Request,
) -> (Source, Request) {
    let mut tries = 0;
    let mut still = |source: &Source, request: &Request| {
        tries += 1;
        let twice = kind == FindingKind::Nondeterministic;
        tries <= 400
            && matches!(fuzzer.check(source, request, twice),
                Some((_, Some((k, ref found, _)))) if k == kind && found == key)
    };
    let (mut source, mut request) = (source, request);
    if !request.headers.is_empty() {
        let bare = Request {
            headers: Vec::new(),
            ..request.clone()
        };
        if still(&source, &bare) {
            request = bare;
        }
    }
    let default_origin = Source::new(&source.window, &source.webview, "tauri://localhost");
    if default_origin != source && still(&default_origin, &request) {
        source = default_origin;
    }
    let Body::Json(text) = &request.body else {
        return (source, request);
    };
    let Ok(mut value) = serde_json::from_str::<Value>(text) else {
        return (source, request);
    };
    let canonical = value.to_string();
    if canonical != *text {
        // Duplicate keys or odd spellings the tree would lose: keep the text as it is.
        let rewritten = Request {
            body: Body::Json(canonical),
            ..request.clone()
        };
        if !still(&source, &rewritten) {
            return (source, request);
        }
    }
    let mut improved = true;
    while improved {
        improved = false;
        let current_len = value.to_string().len();
        for candidate in shrink_candidates(&value) {
            let attempt = Request {
                body: Body::Json(candidate.to_string()),
                ..request.clone()
            };
            if attempt.body.len() < current_len && still(&source, &attempt) {
                value = candidate;
                improved = true;
                break;
            }
        }
    }
    request.body = Body::Json(value.to_string());
    (source, request)
}

/// Smaller versions of a JSON value: one member, element or half a string removed, or one
/// subtree replaced by null.
fn shrink_candidates(value: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    match value {
        Value::Object(map) => {
            for key in map.keys() {
                let mut smaller = map.clone();
                smaller.remove(key);
                out.push(Value::Object(smaller));
            }
            for (key, child) in map {
                for shrunk in shrink_candidates(child) {
                    let mut smaller = map.clone();
                    smaller.insert(key.clone(), shrunk);
                    out.push(Value::Object(smaller));
                }
            }
        }
        Value::Array(items) => {
            for at in 0..items.len() {
                let mut smaller = items.clone();
                smaller.remove(at);
                out.push(Value::Array(smaller));
            }
            for (at, child) in items.iter().enumerate() {
                for shrunk in shrink_candidates(child) {
                    let mut smaller = items.clone();
                    smaller[at] = shrunk;
                    out.push(Value::Array(smaller));
                }
            }
        }
        Value::String(text) if text.chars().count() > 1 => {
            let chars: Vec<char> = text.chars().collect();
            let half = chars.len() / 2;
            out.push(Value::String(chars[..half].iter().collect()));
            out.push(Value::String(chars[half..].iter().collect()));
            if chars.len() <= 64 {
                for at in 0..chars.len() {
                    let mut fewer = chars.clone();
                    fewer.remove(at);
                    out.push(Value::String(fewer.into_iter().collect()));
                }
            }
        }
        _ => {}
    }
    out.truncate(300);
    out
}
