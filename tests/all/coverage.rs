//! Coverage for `airlock fuzz`: an instrumented hook gives the verdicts of the hook as built and
//! reports the blocks each message reached; guided by them, the fuzzer finds the bypasses planted
//! in `guest-hooks/path-guard-planted` and tells the two apart.

use std::time::Duration;

use airlock::{GatewayLimits, Hook, HookLimits, HookOptions, InstanceMode, Message, Source};
use airlock_cli::cases::{self, CaseFile};
use airlock_cli::fuzzer::coverage::{self, Instrumented};
use airlock_cli::fuzzer::distinct;
use airlock_cli::fuzzer::{self as fuzz, Budget, FindingKind, FuzzOptions, Report};
use airlock_tests::{built_hook, coverage_engine, fuel_engine, root};

fn limits() -> HookLimits {
    HookLimits::default()
        .with_fuel(Some(u64::MAX / 2))
        .with_timeout(Duration::from_secs(5))
        .with_quarantine_faults(None)
}

fn instrumented(policy: &str, lang: &str) -> Instrumented {
    coverage::instrument(&built_hook(policy, lang))
        .unwrap_or_else(|why| panic!("{policy}.{lang} cannot be instrumented: {why}"))
}

fn load_instrumented(policy: &str, lang: &str, mode: InstanceMode) -> (Hook, Instrumented) {
    let instrumented = instrumented(policy, lang);
    let options = HookOptions::default()
        .with_limits(limits())
        .with_mode(mode)
        .with_coverage(true);
    let hook = Hook::load(coverage_engine(), &instrumented.bytes, options).unwrap();
    (hook, instrumented)
}

/// An `fs_read` of these args.
fn fs_read_request(body: &str) -> (Source, airlock::Request) {
    let line = format!(
        r#"{{"kind":"command","name":"fs_read","payload":{body},"source":{{"window":"main","webview":"main","origin":"tauri://localhost"}}}}"#
    );
    airlock::jsonl::parse_line(&line).unwrap()
}

fn fs_read(body: &str) -> Message {
    let (source, request) = fs_read_request(body);
    Message::from_request(1, source, request)
}

/// Runs path-guard's conformance table against the instrumented build of `lang`, loaded for
/// coverage, in fresh and reuse mode.
fn keeps_the_table_s_verdicts(lang: &str) {
    let table = CaseFile::read(&root().join("tests/conformance/path-guard.jsonl")).unwrap();
    let bytes = instrumented("path-guard", lang).bytes;
    for mode in [InstanceMode::Fresh, InstanceMode::Reuse { max_idle: 1 }] {
        let options = HookOptions::default()
            .with_mode(mode)
            .with_limits(HookLimits::default().with_timeout(Duration::from_secs(5)))
            .with_coverage(true);
        let results = cases::run(
            coverage_engine(),
            &bytes,
            &options,
            "{}",
            GatewayLimits::default(),
            &table,
        );
        let failed: Vec<String> = results
            .iter()
            .filter(|r| !r.ok)
            .map(|r| {
                format!(
                    "line {} ({}): expected {}, got {}",
                    r.line, r.name, r.expect, r.got
                )
            })
            .collect();
        assert!(failed.is_empty(), "{lang} {mode:?}:\n{}", failed.join("\n"));
    }
}

#[test]
fn instrumented_path_guard_in_rust_gives_the_table_s_verdicts() {
    keeps_the_table_s_verdicts("rust");
}

#[test]
fn instrumented_path_guard_in_c_gives_the_table_s_verdicts() {
    keeps_the_table_s_verdicts("c");
}

#[test]
fn instrumented_path_guard_in_python_gives_the_table_s_verdicts() {
    keeps_the_table_s_verdicts("python");
}

#[test]
fn a_javascript_hook_is_refused_instrumentation_with_the_reason() {
    let why = coverage::instrument(&built_hook("path-guard", "js")).unwrap_err();
    assert!(why.contains("nests components"), "{why}");
}

#[test]
fn a_hook_that_is_not_instrumented_cannot_be_loaded_for_coverage() {
    let options = HookOptions::default().with_coverage(true);
    let error = Hook::load(
        coverage_engine(),
        &built_hook("path-guard", "rust"),
        options,
    )
    .unwrap_err()
    .to_string();
    assert!(error.contains("not instrumented"), "{error}");
}

#[test]
fn the_blocks_a_message_reaches_are_reported_and_the_same_each_time() {
    for mode in [InstanceMode::Fresh, InstanceMode::Reuse { max_idle: 1 }] {
        let (hook, instrumented) = load_instrumented("path-guard", "rust", mode);
        let reached = |body: &str| {
            let mut blocks = hook.inspect_blocking(fs_read(body)).coverage.unwrap();
            blocks.sort_unstable();
            blocks
        };
        let (inside, outside) = (r#"{"path":"notes.txt"}"#, r#"{"path":"../etc/passwd"}"#);
        // A reused instance's first message also reaches what the hook sets up once.
        let first = reached(inside);
        reached(outside);
        let inside = reached(inside);
        assert!(inside.iter().all(|block| first.contains(block)), "{mode:?}");
        let outside = reached(outside);
        assert!(!inside.is_empty() && inside.len() < instrumented.blocks as usize);
        assert_ne!(inside, outside, "{mode:?}");
        // A reused instance's map is cleared after each read: the same message, the same blocks.
        assert_eq!(reached(r#"{"path":"notes.txt"}"#), inside, "{mode:?}");
        assert_eq!(reached(r#"{"path":"../etc/passwd"}"#), outside, "{mode:?}");
    }
}

/// The edges of the interpreted program a message took, in a hook whose coverage is `edges`.
fn edges_of(hook: &Hook, edges: &[std::ops::Range<u32>], body: &str) -> Vec<u32> {
    let mut taken: Vec<u32> = hook
        .inspect_blocking(fs_read(body))
        .coverage
        .unwrap()
        .into_iter()
        .filter(|n| edges.iter().any(|r| r.contains(n)))
        .collect();
    taken.sort_unstable();
    taken
}

#[test]
fn a_python_hook_reports_the_edges_of_its_program_and_a_new_branch_takes_new_ones() {
    for mode in [InstanceMode::Fresh, InstanceMode::Reuse { max_idle: 1 }] {
        let (hook, instrumented) = load_instrumented("path-guard-planted", "python", mode);
        assert_eq!(instrumented.edges.len(), 1, "one interpreter: CPython's");
        let edges = &instrumented.edges;
        // The same interpreter code runs for both; only `_bypassed`'s `if "mode" in args` goes
        // another way in Python.
        let plain = r#"{"path":"../etc/passwd","mods":"raw:x"}"#;
        let mode_key = r#"{"path":"../etc/passwd","mode":"raw:x"}"#;
        // A reused instance's first message also takes what the hook sets up once.
        edges_of(&hook, edges, plain);
        let first = edges_of(&hook, edges, plain);
        let other = edges_of(&hook, edges, mode_key);
        assert!(!first.is_empty(), "{mode:?}");
        assert!(
            other.iter().any(|edge| !first.contains(edge)),
            "{mode:?}: the mode branch took no edge the plain message did not"
        );
        // The same message, the same edges, before and after another (an instruction the
        // interpreter specialized in between is fetched again, which is no edge).
        assert_eq!(edges_of(&hook, edges, plain), first, "{mode:?}");
        assert_eq!(edges_of(&hook, edges, mode_key), other, "{mode:?}");
    }
}

#[test]
fn a_compiled_hook_has_no_interpreter_edges() {
    for (policy, lang) in [("path-guard-planted", "rust"), ("path-guard", "c")] {
        let instrumented = instrumented(policy, lang);
        assert!(
            instrumented.edges.is_empty(),
            "{lang}: {:?}",
            instrumented.edges
        );
    }
}

#[test]
fn the_hook_s_literals_and_compared_constants_are_hints() {
    let hints = instrumented("path-guard-planted", "rust").hints;
    // `starts_with("raw:")` compares four bytes at once, `path.len() > 32` a length.
    assert!(
        hints.tokens.iter().any(|t| t == "raw:"),
        "{:?}",
        hints.tokens
    );
    assert!(hints.lengths.contains(&32), "{:?}", hints.lengths);
}

#[test]
fn the_text_only_the_hook_holds_against_its_reference_is_a_hint_in_rust_and_python() {
    // Python's runtime holds a `mode` string of its own, so a Python hook's `mode` is not new:
    // it is found beside `raw:` and `opts`, in the tuple of `_bypassed`'s constants.
    for (lang, tokens) in [
        ("rust", &["mode", "opts"][..]),
        ("python", &["opts", "raw:", "mode"][..]),
    ] {
        let planted = built_hook("path-guard-planted", lang);
        let found = distinct::distinct_strings(&planted, &built_hook("path-guard", lang));
        for token in tokens {
            assert!(
                found.iter().any(|t| t == token),
                "{lang}: {token:?} not in {} distinct strings: {found:?}",
                found.len()
            );
        }
        // A hook holds nothing its own build lacks.
        assert_eq!(
            distinct::distinct_strings(&planted, &planted),
            Vec::<String>::new()
        );
    }
}

fn fuzz_planted(coverage: bool, runs: u64, max_corpus: usize, seeds: &[&str]) -> Report {
    let reference = Hook::load(
        fuel_engine(),
        &built_hook("path-guard", "rust"),
        HookOptions::default().with_limits(limits()),
    )
    .unwrap();
    let (hook, hints, blocks, edges) = match coverage {
        true => {
            let (hook, instrumented) =
                load_instrumented("path-guard-planted", "rust", InstanceMode::Fresh);
            let mut hints = instrumented.hints;
            // As `airlock fuzz --reference` does.
            hints.distinct = distinct::distinct_strings(
                &built_hook("path-guard-planted", "rust"),
                &built_hook("path-guard", "rust"),
            );
            (hook, hints, Some(instrumented.blocks), instrumented.edges)
        }
        false => {
            let options = HookOptions::default().with_limits(limits());
            let bytes = built_hook("path-guard-planted", "rust");
            (
                Hook::load(fuel_engine(), &bytes, options).unwrap(),
                Default::default(),
                None,
                Vec::new(),
            )
        }
    };
    let options = FuzzOptions {
        hook,
        reference: Some(reference),
        seeds: seeds.iter().map(|body| fs_read_request(body)).collect(),
        properties: None,
        budget: Budget::Runs(runs),
        seed: 1,
        limits: GatewayLimits::default(),
        hints,
        blocks,
        edges,
        max_corpus,
    };
    fuzz::run(&options, &mut |_| {})
}

/// The bypasses of path-guard-planted: (`mode`, `opts`) found among the report's findings.
fn bypasses(report: &Report) -> (bool, bool) {
    let bodies: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Differs && f.key == "pass vs path-escape")
        .map(|f| match &f.request.body {
            airlock::Body::Json(text) => text.clone(),
            airlock::Body::Bytes(_) => String::new(),
        })
        .collect();
    (
        bodies.iter().any(|b| b.contains(r#""mode":"raw:"#)),
        bodies.iter().any(|b| b.contains(r#""opts":["#)),
    )
}

#[test]
fn the_coverage_fuzzer_finds_the_planted_array_bypass_from_the_built_in_seeds() {
    let report = fuzz_planted(true, 30_000, fuzz::MAX_CORPUS, &[]);
    assert!(bypasses(&report).1, "{:#?}", report.findings);
    let (covered, total) = report.progress.coverage.unwrap();
    assert!(covered > 0 && covered < total as usize);
}

#[test]
fn from_a_seed_with_a_mode_key_the_coverage_fuzzer_finds_both_bypasses_and_tells_them_apart() {
    let seeds = [
        r#"{"path":"notes.txt"}"#,
        r#"{"path":"../../etc/passwd","mode":"fast"}"#,
    ];
    let report = fuzz_planted(true, 30_000, fuzz::MAX_CORPUS, &seeds);
    assert_eq!(bypasses(&report), (true, true), "{:#?}", report.findings);
    for finding in report
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::Differs)
    {
        assert!(finding.summary.contains("diverges at block"), "{finding:?}");
    }
}

#[test]
fn without_coverage_the_planted_bypasses_stay_hidden_in_as_many_runs() {
    let report = fuzz_planted(false, 30_000, fuzz::MAX_CORPUS, &[]);
    assert_eq!(bypasses(&report), (false, false), "{:#?}", report.findings);
    assert!(report.progress.coverage.is_none());
}

#[test]
fn the_corpus_cap_is_obeyed() {
    let report = fuzz_planted(true, 3_000, 40, &[]);
    assert!(report.progress.corpus <= 40, "{}", report.progress.corpus);
}

#[test]
fn the_corpus_grows_past_that_cap_when_allowed() {
    let report = fuzz_planted(true, 3_000, fuzz::MAX_CORPUS, &[]);
    assert!(report.progress.corpus > 40, "{}", report.progress.corpus);
}
