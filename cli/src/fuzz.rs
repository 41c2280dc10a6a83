//! `airlock fuzz`: throw malicious payloads at a hook and report what breaks it.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use serde::Serialize;

use airlock::{Hook, HookLimits, jsonl};

use crate::flags::{HookFlags, Mode, read_hook};
use crate::fuzzer::{self, Budget, FuzzOptions, Hints, Progress, Properties};

#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// Another implementation of the same policy: any differing outcome is a finding.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Seed messages (JSON Lines, as `airlock inspect` reads); when absent, the built-in seeds
    /// and the attack corpus (`cli/corpus/`, see `airlock_cli::corpus`).
    #[arg(long)]
    seeds: Option<PathBuf>,
    /// Properties every run must keep (JSON; see `airlock_cli::fuzzer::oracle`).
    #[arg(long)]
    properties: Option<PathBuf>,
    /// How long to fuzz: `60s`, `2m`, `500ms` or seconds (default 60s unless --runs is given).
    #[arg(long, value_parser = parse_duration, conflicts_with = "runs")]
    duration: Option<Duration>,
    /// How many messages to try.
    #[arg(long)]
    runs: Option<u64>,
    /// The random seed; the same seed and --runs give the same run.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Where to write one reproducer per finding (JSON Lines that `airlock inspect` replays).
    #[arg(long, default_value = "fuzz-findings")]
    out: PathBuf,
    /// Print the report as one JSON object on standard output.
    #[arg(long)]
    json: bool,
    /// Guide the run by the blocks of the hook's own code each message reaches (the default):
    /// the hook's core modules are instrumented (a copy, for this run only), messages that reach
    /// new blocks (or, in an interpreter such as CPython, new edges of the interpreted program:
    /// pairs of consecutive bytecode addresses) are kept to mutate further, mutations use the
    /// constants and strings the hook's
    /// code compares against, and differences from the reference are told apart by where the
    /// hook went. A hook that cannot be instrumented (one that nests components, as JavaScript
    /// hooks do) is fuzzed without, saying why.
    #[arg(long, overrides_with = "no_coverage")]
    coverage: bool,
    /// Fuzz by verdicts, codes and fuel alone, as the hook runs in production.
    #[arg(long, overrides_with = "coverage")]
    no_coverage: bool,
    /// The most messages the corpus keeps (seeds included).
    #[arg(long, default_value_t = fuzzer::MAX_CORPUS as u64, value_parser = clap::value_parser!(u64).range(1..u32::MAX as u64))]
    max_corpus: u64,
    /// The hook under test (one `--hook`), its config (also given to the reference), limits and
    /// mode (also the reference's): by default `auto`, as production runs the hook (a warm
    /// instance reused for CPython, about ten times the runs of a fresh one per message);
    /// reused, state kept between messages shows up as non-determinism, and `--mode fresh`
    /// starts every message from a new instance.
    #[command(flatten)]
    hooks: HookFlags,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 60s, 2m or 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?} (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| *d >= Duration::from_millis(1) && *d <= Duration::from_secs(366 * 86_400))
        .ok_or_else(|| format!("{text:?} is out of range: give 1ms to 366 days"))
}

/// A hook loaded for fuzzing, the hints found in its code, its number of blocks and the numbers
/// of its interpreter's edges (none and empty without coverage).
type WithCoverage = (Hook, Hints, Option<u32>, Vec<std::ops::Range<u32>>);

/// The hook instrumented for coverage and loaded so, with the hints found in its code and its
/// number of blocks; or, when it cannot be instrumented, the hook as it is, after saying why.
fn with_coverage(
    engine: &airlock::HookEngine,
    hook: Hook,
    bytes: &[u8],
) -> anyhow::Result<WithCoverage> {
    let instrumented = match fuzzer::coverage::instrument(bytes) {
        Ok(instrumented) => instrumented,
        Err(why) => {
            eprintln!(
                "airlock fuzz: no coverage for this hook ({why}); fuzzing by verdicts alone \
                 (--no-coverage says so without this note)"
            );
            return Ok((hook, Hints::default(), None, Vec::new()));
        }
    };
    // An interpreter's constants, lengths and literals (CPython's) say nothing of the hook it
    // runs: the hook's own text comes from its heap snapshot, against the reference
    // (`Hints::distinct`).
    let mut hints = instrumented.hints;
    if !instrumented.edges.is_empty() {
        hints.tokens.clear();
        hints.compared.clear();
        hints.lengths.clear();
        hints.data.clear();
    }
    // The pin and signatures were checked on the hook as built; the copy differs from it.
    let options = hook
        .options()
        .clone()
        .with_trust(airlock::trust::Trust::default())
        .with_coverage(true);
    let instrumented_hook = Hook::load(engine, &instrumented.bytes, options)
        .context("cannot load the hook instrumented for coverage (try --no-coverage)")?;
    tracing::info!(
        blocks = instrumented.blocks,
        edge_maps = instrumented.edges.len(),
        modules = instrumented.modules,
        tokens = hints.tokens.len(),
        compared = hints.compared.len(),
        lengths = hints.lengths.len(),
        "hook instrumented for coverage"
    );
    Ok((
        instrumented_hook,
        hints,
        Some(instrumented.blocks),
        instrumented.edges,
    ))
}

#[derive(Serialize)]
struct JsonReport<'a> {
    runs: u64,
    seconds: f64,
    runs_per_s: f64,
    corpus: usize,
    /// Blocks of the hook reached and instrumented, with coverage.
    coverage: Option<JsonCoverage>,
    outcomes: &'a std::collections::BTreeMap<String, u64>,
    findings: Vec<JsonFinding<'a>>,
}

#[derive(Serialize)]
struct JsonCoverage {
    reached: usize,
    blocks: u32,
    /// Edges of an interpreted hook's program taken, and the size of their maps (0 for a
    /// compiled hook).
    edges_reached: usize,
    edges: u32,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    kind: &'static str,
    key: &'a str,
    summary: &'a str,
    count: u64,
    first_run: u64,
    first_seconds: f64,
    /// With coverage, the blocks a difference from the reference is known by.
    blocks: &'a [u32],
    file: String,
    message: serde_json::Value,
}

/// Returns whether anything was found.
pub fn run(args: FuzzArgs) -> anyhow::Result<bool> {
    let hook_path = args.hooks.single("fuzz")?.to_path_buf();
    // Fuel is always metered: its order of magnitude is part of what the fuzzer calls new. An
    // instrumented module has a memory of its own beside the hook's.
    let engine = args
        .hooks
        .engine_with(true, |config| config.with_memories_per_module(2))?;
    // Never quarantined: every message must reach the hook for its faults to be found.
    let meter = |limits: HookLimits| {
        limits
            .with_fuel(limits.fuel.or(Some(u64::MAX / 2)))
            .with_quarantine_faults(None)
    };
    let hook_bytes = read_hook(&hook_path)?;
    let loaded = args
        .hooks
        .load(&engine, Mode::Auto, 1, meter)?
        .pop()
        .expect("one hook");
    // `--coverage` is the default; the last of the two flags wins.
    let (hook, mut hints, blocks, edges) = match (args.coverage, args.no_coverage) {
        (_, true) => (loaded.hook, Hints::default(), None, Vec::new()),
        _ => with_coverage(&engine, loaded.hook, &hook_bytes)?,
    };
    let reference = match &args.reference {
        None => None,
        Some(path) => {
            let bytes = read_hook(path)?;
            if blocks.is_some() {
                // What the hook holds and the reference does not is worth trying.
                hints.distinct = fuzzer::distinct::distinct_strings(&hook_bytes, &bytes);
            }
            // Pin and signatures are about the hook under test, not the comparison.
            let options = hook
                .options()
                .clone()
                .with_trust(airlock::trust::Trust::default())
                .with_coverage(false);
            Some(
                Hook::load(&engine, &bytes, options)
                    .with_context(|| format!("cannot load hook {}", path.display()))?,
            )
        }
    };
    let seeds = match &args.seeds {
        Some(path) => read_seeds(path)?,
        None => crate::corpus::with_builtin_seeds()?,
    };
    let properties = match &args.properties {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read properties {}", path.display()))?;
            Some(
                Properties::parse(&text)
                    .map_err(anyhow::Error::msg)
                    .with_context(|| format!("in {}", path.display()))?,
            )
        }
        None => None,
    };
    let budget = match (args.runs, args.duration) {
        (Some(runs), _) => Budget::Runs(runs),
        (None, Some(duration)) => Budget::Time(duration),
        (None, None) => Budget::Time(Duration::from_secs(60)),
    };
    let options = FuzzOptions {
        hook,
        reference,
        seeds,
        properties,
        budget,
        seed: args.seed,
        limits: args.hooks.gateway_limits(),
        hints,
        blocks,
        edges,
        max_corpus: args.max_corpus as usize,
    };

    let tty = std::io::stderr().is_terminal();
    let mut last_line = std::time::Instant::now();
    let report = fuzzer::run(&options, &mut |p: &Progress| {
        if tty {
            eprint!("\r{}   ", progress_line(p));
        } else if last_line.elapsed() >= Duration::from_secs(5) {
            last_line = std::time::Instant::now();
            eprintln!("{}", progress_line(p));
        }
    });
    if tty {
        eprintln!();
    }

    if !report.findings.is_empty() {
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
    }
    let mut files = Vec::new();
    for (n, finding) in report.findings.iter().enumerate() {
        let slug: String = finding
            .key
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        let file = args.out.join(format!(
            "{:02}-{}-{slug}.jsonl",
            n + 1,
            finding.kind.as_str()
        ));
        let line = jsonl::request_line(&finding.source, &finding.request)?;
        std::fs::write(&file, format!("{}\n", line.get()))
            .with_context(|| format!("cannot write {}", file.display()))?;
        files.push(file);
    }

    let p = &report.progress;
    let seconds = p.elapsed.as_secs_f64();
    if args.json {
        let findings = report
            .findings
            .iter()
            .zip(&files)
            .map(|(f, file)| {
                let line = jsonl::request_line(&f.source, &f.request)?;
                Ok(JsonFinding {
                    kind: f.kind.as_str(),
                    key: &f.key,
                    summary: &f.summary,
                    count: f.count,
                    first_run: f.first_run,
                    first_seconds: f.first_elapsed.as_secs_f64(),
                    blocks: &f.blocks,
                    file: file.display().to_string(),
                    message: serde_json::from_str(line.get())?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let json = JsonReport {
            runs: p.runs,
            seconds,
            runs_per_s: p.runs as f64 / seconds.max(1e-9),
            corpus: p.corpus,
            coverage: p.coverage.map(|(reached, blocks)| {
                let (edges_reached, edges) = p.edges.unwrap_or((0, 0));
                JsonCoverage {
                    reached,
                    blocks,
                    edges_reached,
                    edges,
                }
            }),
            outcomes: &p.outcomes,
            findings,
        };
        println!("{}", serde_json::to_string(&json)?);
    } else {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", progress_line(p))?;
        if report.findings.is_empty() {
            writeln!(out, "no findings")?;
        } else {
            writeln!(
                out,
                "{:<17} {:<28} {:>7} {:>9}  reproducer",
                "finding", "key", "count", "first run"
            )?;
            for (finding, file) in report.findings.iter().zip(&files) {
                writeln!(
                    out,
                    "{:<17} {:<28} {:>7} {:>9}  {}",
                    finding.kind.as_str(),
                    finding.key,
                    finding.count,
                    finding.first_run,
                    file.display()
                )?;
                writeln!(out, "    {}", finding.summary)?;
            }
            writeln!(
                out,
                "replay one with: airlock inspect --hook {} FILE",
                hook_path.display()
            )?;
        }
    }
    Ok(!report.findings.is_empty())
}

fn progress_line(p: &Progress) -> String {
    let seconds = p.elapsed.as_secs_f64().max(1e-9);
    let outcomes: Vec<String> = p.outcomes.iter().map(|(k, v)| format!("{k}:{v}")).collect();
    let coverage = match p.coverage {
        Some((reached, blocks)) => format!("  blocks {reached}/{blocks}"),
        None => String::new(),
    };
    let coverage = match p.edges {
        Some((reached, _)) => format!("{coverage}  edges {reached}"),
        None => coverage,
    };
    format!(
        "runs {} ({:.0}/s)  corpus {}{coverage}  findings {}  outcomes {}",
        p.runs,
        p.runs as f64 / seconds,
        p.corpus,
        p.findings,
        outcomes.join(" ")
    )
}

fn read_seeds(path: &Path) -> anyhow::Result<Vec<(airlock::Source, airlock::Request)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read seeds {}", path.display()))?;
    let mut seeds = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let seed = jsonl::parse_line(line)
            .map_err(|e| anyhow::anyhow!("{}: line {}: {e}", path.display(), index + 1))?;
        seeds.push(seed);
    }
    if seeds.is_empty() {
        bail!("{} holds no seed messages", path.display());
    }
    Ok(seeds)
}
