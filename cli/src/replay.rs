//! `airlock replay`: recorded traffic through two versions of a hook (or one, against the
//! verdicts recorded), reporting every verdict that flips, grouped by message and kind of flip.
//!
//! Each message is judged the way the gateway judges it (its checks, then the hook, then the
//! `replace` applied and checked) without the seal and the core, on one thread per core, each
//! with its own current-thread runtime; results are grouped in file order, so the examples shown
//! are the first ones. Hooks run in reuse mode unless `--mode` says otherwise: five times the
//! rate of fresh instances for Rust hooks (BENCHMARKS.md), and the same verdicts for any hook
//! that keeps nothing between messages; `--mode fresh` replays exactly as a gateway with fresh
//! instances would.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context as _, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

use airlock::{Decision, GatewayLimits, Hook, Message, Request, Source, Verdict, jsonl};

use crate::cases::diff_messages;
use crate::flags::{HookFlags, Mode};

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Recorded traffic (`airlock serve --record`) or any `airlock inspect` message files.
    #[arg(required = true, value_name = "TRAFFIC.jsonl")]
    files: Vec<PathBuf>,
    /// The report as one JSON object on standard output.
    #[arg(long)]
    json: bool,
    /// Examples shown per group of flips.
    #[arg(long, value_name = "COUNT", default_value_t = 3)]
    examples: usize,
    /// Threads judging messages [default: one per core].
    #[arg(long, value_name = "COUNT")]
    jobs: Option<usize>,
    /// `--hook OLD --hook NEW` (each with its `--config`, in order), or one `--hook` judged
    /// against the verdicts in the recording.
    #[command(flatten)]
    hooks: HookFlags,
}

/// What a hook (or the recording) made of one message.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Pass,
    /// Replaced; the delivered message line, when known (a recording keeps only the verdict).
    Replace(Option<String>),
    Reject {
        code: String,
        reason: Option<String>,
    },
}

impl Outcome {
    fn decision(&self) -> Decision {
        match self {
            Outcome::Pass => Decision::Pass,
            Outcome::Replace(_) => Decision::Replace,
            Outcome::Reject { .. } => Decision::Reject,
        }
    }

    fn describe(&self) -> String {
        match self {
            Outcome::Pass => "pass".to_owned(),
            Outcome::Replace(Some(delivered)) => format!("replace, delivered {delivered}"),
            Outcome::Replace(None) => "replace".to_owned(),
            Outcome::Reject { code, reason: None } => format!("reject {code}"),
            Outcome::Reject {
                code,
                reason: Some(reason),
            } => format!("reject {code} ({reason})"),
        }
    }
}

/// The kind of a flip, as the report names it.
fn flip(before: &Outcome, after: &Outcome) -> Option<String> {
    match (before, after) {
        (Outcome::Reject { code: a, .. }, Outcome::Reject { code: b, .. }) if a != b => {
            Some("code changed".to_owned())
        }
        (Outcome::Replace(Some(a)), Outcome::Replace(Some(b))) if a != b => {
            Some("replacement changed".to_owned())
        }
        (a, b) if a.decision() != b.decision() => {
            Some(format!("{}→{}", a.decision(), b.decision()))
        }
        _ => None,
    }
}

/// One message read from a file.
struct Entry {
    file: usize,
    line: usize,
    text: String,
    source: Source,
    request: Request,
    recorded: Option<Outcome>,
}

#[derive(Deserialize)]
struct RecordedIn {
    #[serde(default)]
    recorded: Option<RecordedVerdict>,
}

#[derive(Deserialize)]
struct RecordedVerdict {
    verdict: RecordedDecision,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RecordedDecision {
    Pass,
    Replace,
    Reject,
}

#[derive(Serialize)]
struct Example {
    file: String,
    line: usize,
    message: String,
    before: String,
    after: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<String>,
}

#[derive(Serialize)]
struct Group {
    kind: &'static str,
    name: String,
    flip: String,
    count: u64,
    examples: Vec<Example>,
}

#[derive(Serialize)]
struct Report {
    messages: usize,
    flipped: u64,
    seconds: f64,
    messages_per_s: f64,
    threads: usize,
    against: &'static str,
    groups: Vec<Group>,
}

/// Returns whether anything flipped.
pub fn run(args: ReplayArgs) -> anyhow::Result<bool> {
    let two = match args.hooks.hooks.len() {
        1 => false,
        2 => true,
        n => bail!(
            "airlock replay takes --hook OLD --hook NEW, or one --hook against the recorded verdicts; got {n} --hook"
        ),
    };
    let entries = read(&args.files, !two)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if jobs == 0 {
        bail!("--jobs 0: give at least 1 thread");
    }
    let engine = args.hooks.engine(false)?;
    let hooks: Vec<Hook> = args
        .hooks
        .load(&engine, Mode::Reuse, jobs, |limits| limits)?
        .into_iter()
        .map(|loaded| loaded.hook)
        .collect();
    let limits = args.hooks.gateway_limits();

    let start = Instant::now();
    let outcomes = judge_all(&entries, &hooks, limits, jobs)?;
    let seconds = start.elapsed().as_secs_f64();

    let mut groups: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut order = Vec::new();
    let mut flipped = 0;
    for (entry, (before, after)) in entries.iter().zip(outcomes) {
        let Some(kind) = flip(&before, &after) else {
            continue;
        };
        flipped += 1;
        let key = (
            format!("{} {}", entry.request.kind, entry.request.name),
            kind.clone(),
        );
        let group = groups.entry(key.clone()).or_insert_with(|| {
            order.push(key.clone());
            Group {
                kind: entry.request.kind.as_str(),
                name: entry.request.name.clone(),
                flip: kind,
                count: 0,
                examples: Vec::new(),
            }
        });
        group.count += 1;
        if group.examples.len() < args.examples {
            let diff = match (&before, &after) {
                (Outcome::Replace(Some(a)), Outcome::Replace(Some(b))) => Some(diff_messages(a, b)),
                _ => None,
            };
            group.examples.push(Example {
                file: args.files[entry.file].display().to_string(),
                line: entry.line,
                message: entry.text.clone(),
                before: before.describe(),
                after: after.describe(),
                diff,
            });
        }
    }
    // Groups in the order their first flip came.
    let groups: Vec<Group> = order
        .iter()
        .map(|key| groups.remove(key).expect("every key has a group"))
        .collect();
    let report = Report {
        messages: entries.len(),
        flipped,
        seconds,
        messages_per_s: entries.len() as f64 / seconds.max(1e-9),
        threads: jobs,
        against: if two { "old hook" } else { "recorded verdicts" },
        groups,
    };
    print(&report, args.json)?;
    Ok(flipped > 0)
}

fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        writeln!(out, "{}", serde_json::to_string(report)?)?;
    } else {
        for group in &report.groups {
            writeln!(
                out,
                "{} {}: {}: {}",
                group.kind, group.name, group.flip, group.count
            )?;
            for example in &group.examples {
                let mut message = example.message.clone();
                if message.len() > 200 {
                    let mut end = 200;
                    while !message.is_char_boundary(end) {
                        end -= 1;
                    }
                    message.truncate(end);
                    message.push('…');
                }
                writeln!(out, "  {}:{}  {message}", example.file, example.line)?;
                writeln!(out, "    before: {}", example.before)?;
                writeln!(out, "    after:  {}", example.after)?;
                if let Some(diff) = &example.diff {
                    writeln!(out, "    before (-) and after (+) differ:")?;
                    for line in diff.lines() {
                        writeln!(out, "      {line}")?;
                    }
                }
            }
        }
        writeln!(
            out,
            "{} messages, {} flipped ({} groups)",
            report.messages,
            report.flipped,
            report.groups.len()
        )?;
    }
    out.flush()?;
    eprintln!(
        "airlock replay: {} messages in {:.3} s ({:.0} messages/s, {} threads), against the {}",
        report.messages, report.seconds, report.messages_per_s, report.threads, report.against
    );
    Ok(())
}

/// Reads every message of every file; a line that is not a message is an error naming it.
fn read(files: &[PathBuf], need_recorded: bool) -> anyhow::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for (file, path) in files.iter().enumerate() {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        for (index, line) in text.lines().enumerate() {
            let at = || format!("{}:{}", path.display(), index + 1);
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (source, request) =
                jsonl::parse_line(trimmed).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
            let recorded = serde_json::from_str::<RecordedIn>(trimmed)
                .with_context(|| format!("{}: bad `recorded`", at()))?
                .recorded;
            let recorded = match (recorded, need_recorded) {
                (None, true) => bail!(
                    "{}: no recorded verdict to compare with: give --hook OLD --hook NEW, or a file from `airlock serve --record`",
                    at()
                ),
                (None, false) => None,
                (Some(r), _) => Some(match r.verdict {
                    RecordedDecision::Pass => Outcome::Pass,
                    RecordedDecision::Replace => Outcome::Replace(None),
                    RecordedDecision::Reject => Outcome::Reject {
                        code: r.code.with_context(|| {
                            format!("{}: a recorded rejection without its code", at())
                        })?,
                        reason: r.reason,
                    },
                }),
            };
            entries.push(Entry {
                file,
                line: index + 1,
                text: trimmed.to_owned(),
                source,
                request,
                recorded,
            });
        }
    }
    if entries.is_empty() {
        let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
        bail!("no messages to replay in {}", names.join(", "));
    }
    Ok(entries)
}

/// Every entry's (before, after): the first hook's outcome (or the recorded one) and the last
/// hook's, computed on `jobs` threads.
fn judge_all(
    entries: &[Entry],
    hooks: &[Hook],
    limits: GatewayLimits,
    jobs: usize,
) -> anyhow::Result<Vec<(Outcome, Outcome)>> {
    let next = AtomicUsize::new(0);
    const BATCH: usize = 64;
    let parts = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<Vec<(usize, (Outcome, Outcome))>> {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?;
                    let mut done = Vec::new();
                    loop {
                        let from = next.fetch_add(BATCH, Ordering::Relaxed);
                        if from >= entries.len() {
                            break;
                        }
                        for (i, entry) in entries[from..].iter().take(BATCH).enumerate() {
                            let after = runtime.block_on(judge(
                                hooks.last().expect("a hook"),
                                limits,
                                entry,
                            ));
                            let before = match (&entry.recorded, hooks) {
                                (_, [old, _]) => runtime.block_on(judge(old, limits, entry)),
                                (Some(recorded), _) => {
                                    // A recording keeps no replacement: compare verdicts only.
                                    match (&after, recorded) {
                                        (Outcome::Replace(_), Outcome::Replace(None)) => {
                                            after.clone()
                                        }
                                        _ => recorded.clone(),
                                    }
                                }
                                (None, _) => unreachable!("checked when read"),
                            };
                            done.push((from + i, (before, after)));
                        }
                    }
                    Ok(done)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a replay thread panicked"))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let mut outcomes: Vec<Option<(Outcome, Outcome)>> = vec![None; entries.len()];
    for (i, outcome) in parts.into_iter().flatten() {
        outcomes[i] = Some(outcome);
    }
    Ok(outcomes
        .into_iter()
        .map(|o| o.expect("every entry judged"))
        .collect())
}

/// What the gateway would make of `entry` with `hook`: its checks, the hook, the replacement
/// applied and checked.
async fn judge(hook: &Hook, limits: GatewayLimits, entry: &Entry) -> Outcome {
    let request = entry.request.clone();
    if let Err(rejection) = limits.validate(&request) {
        return Outcome::Reject {
            code: rejection.code,
            reason: Some(rejection.reason),
        };
    }
    let message = Message::from_request(entry.line as u64, entry.source.clone(), request);
    let inspection = hook.inspect(message).await;
    let replaced = matches!(inspection.verdict, Verdict::Replace(_));
    match limits.settle(inspection.message, inspection.verdict) {
        Err(rejection) => Outcome::Reject {
            code: rejection.code,
            reason: Some(rejection.reason),
        },
        Ok(_) if !replaced => Outcome::Pass,
        Ok(message) => Outcome::Replace(Some(
            jsonl::message_line(&message)
                .map_or_else(|e| format!("(unwritable: {e})"), |raw| raw.get().to_owned()),
        )),
    }
}
