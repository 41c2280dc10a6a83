//! One table of messages and expected verdicts per policy (`tests/conformance/<policy>.jsonl`),
//! run against every language's build of that policy, in fresh and in reuse mode, through the
//! runner of `airlock test` (`airlock_cli::cases`, which documents the format).

use std::path::PathBuf;
use std::time::Duration;

use airlock::{GatewayLimits, HookLimits, HookOptions, InstanceMode};
use airlock_cli::cases::{self, CaseFile, Expect};
use airlock_tests::{engine, root};

/// Where each policy is implemented; every one of these builds must give the table's verdicts.
const LANGUAGES: &[(&str, &[&str])] = &[
    ("path-guard", &["rust", "python", "js", "c"]),
    ("redact", &["rust", "python", "js", "c"]),
    ("origin-allow", &["rust", "wat"]),
    ("allowlist", &["rust"]),
    ("rate-limit", &["rust"]),
];

fn table(policy: &str) -> CaseFile {
    let path = root().join(format!("tests/conformance/{policy}.jsonl"));
    CaseFile::read(&path).unwrap_or_else(|e| panic!("{e:#}"))
}

/// The build of `policy` in `lang`, or a failure naming the file and the command that makes it.
fn build(policy: &str, lang: &str) -> Vec<u8> {
    let path: PathBuf = root().join(format!("target/hooks/{policy}.{lang}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        let command = match lang {
            "rust" => "scripts/build-hooks".to_owned(),
            _ => format!("scripts/toolchains/{lang} && scripts/build-hooks"),
        };
        panic!(
            "the {lang} build of {policy} is missing: cannot read {}: {e}\n\
             install its toolchain and build it with: {command}",
            path.display()
        )
    })
}

/// Runs the policy's table against one language's build in fresh and reuse mode; fails once
/// with every mismatch.
fn check(policy: &str, lang: &str) {
    assert!(
        LANGUAGES
            .iter()
            .any(|(p, langs)| *p == policy && langs.contains(&lang)),
        "{policy} in {lang} is not in LANGUAGES"
    );
    let table = table(policy);
    let bytes = build(policy, lang);
    let mut mismatches = Vec::new();
    for (mode_name, mode) in [
        ("fresh", InstanceMode::Fresh),
        ("reuse", InstanceMode::Reuse { max_idle: 1 }),
    ] {
        let mut file = table.clone();
        if matches!(mode, InstanceMode::Reuse { .. }) {
            // `configure` runs the same way in both modes; each load costs a compile or a cache
            // read (seconds for the Python and JavaScript runtimes), so check refusals once.
            file.cases
                .retain(|c| !matches!(c.expect, Expect::ConfigRefused));
        }
        // The tables check verdicts, not speed: the Python and JavaScript runtimes take tens of
        // milliseconds to instantiate, over the default 100 ms limit when the suite loads
        // both cores, so every build gets a generous limit here.
        let limits = HookLimits::default().with_timeout(Duration::from_secs(5));
        let options = HookOptions::default().with_mode(mode).with_limits(limits);
        // Stateful policies (rate-limit) start each mode with no state.
        engine().state().clear(&options.name);
        let results = cases::run(
            engine(),
            &bytes,
            &options,
            "{}",
            GatewayLimits::default(),
            &file,
        );
        for r in results.iter().filter(|r| !r.ok) {
            mismatches.push(format!(
                "  {lang} ({mode_name}) line {} ({}): config {}: expected {}, got {}{}",
                r.line,
                r.name,
                r.config,
                r.expect,
                r.got,
                r.diff
                    .as_deref()
                    .map_or(String::new(), |d| format!("\n{d}"))
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{policy} in {lang} disagrees with tests/conformance/{policy}.jsonl in {} case(s):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_table_case_is_well_formed_and_every_policy_has_a_table() {
    // Reading a table checks every case and its message; an empty table is an error.
    for (policy, _) in LANGUAGES {
        table(policy);
    }
}

#[test]
fn path_guard_in_rust_gives_the_table_s_verdicts() {
    check("path-guard", "rust");
}

#[test]
fn path_guard_in_python_gives_the_table_s_verdicts() {
    check("path-guard", "python");
}

#[test]
fn path_guard_in_js_gives_the_table_s_verdicts() {
    check("path-guard", "js");
}

#[test]
fn path_guard_in_c_gives_the_table_s_verdicts() {
    check("path-guard", "c");
}

#[test]
fn redact_in_rust_gives_the_table_s_verdicts() {
    check("redact", "rust");
}

#[test]
fn redact_in_python_gives_the_table_s_verdicts() {
    check("redact", "python");
}

#[test]
fn redact_in_js_gives_the_table_s_verdicts() {
    check("redact", "js");
}

#[test]
fn redact_in_c_gives_the_table_s_verdicts() {
    check("redact", "c");
}

#[test]
fn origin_allow_in_rust_gives_the_table_s_verdicts() {
    check("origin-allow", "rust");
}

#[test]
fn origin_allow_in_wat_gives_the_table_s_verdicts() {
    check("origin-allow", "wat");
}

#[test]
fn allowlist_in_rust_gives_the_table_s_verdicts() {
    check("allowlist", "rust");
}

#[test]
fn every_language_in_the_list_has_a_test() {
    // The test functions above are written out so a failure names the language; this keeps
    // them and LANGUAGES in step.
    let source = include_str!("conformance.rs");
    for (policy, langs) in LANGUAGES {
        for lang in *langs {
            let name = format!(
                "fn {}_in_{lang}_gives_the_table_s_verdicts()",
                policy.replace('-', "_")
            );
            assert!(source.contains(&name), "no test `{name}`");
        }
    }
}

#[test]
fn rate_limit_in_rust_gives_the_table_s_verdicts() {
    check("rate-limit", "rust");
}
