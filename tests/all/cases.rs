//! `airlock test`: tables of cases against a hook, with results a case, a summary, exit status,
//! `--json`, the diff of a failing `replace`, and `--bless`.

use std::path::{Path, PathBuf};
use std::process::Output;

use airlock_tests::{root, run_airlock};
use serde_json::Value;

const PATH_GUARD: &str = "target/hooks/path-guard.rust.wasm";
const REDACT: &str = "target/hooks/redact.rust.wasm";

/// A fresh folder for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = root().join("target/tmp/cases").join(test);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, lines: &[&str]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path.display().to_string()
}

fn test(hook: &str, cases: &str, extra: &[&str]) -> Output {
    let mut args = vec!["test", "--hook", hook];
    args.extend(extra);
    args.push(cases);
    run_airlock(&args, &root(), "")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

const GOOD_PATH_GUARD: &[&str] = &[
    "# path-guard with its default root, /app/data",
    r#"{"case":"a relative path passes","message":{"kind":"command","name":"fs_read","payload":{"path":"notes.txt"}},"expect":"pass"}"#,
    r#"{"case":"a way out is refused","message":{"kind":"command","name":"fs_read","payload":{"path":"../../etc/passwd"}},"expect":{"reject":"path-escape"}}"#,
    "",
    r#"{"case":"a config with a typo is refused","config":{"rot":"/x"},"expect":"config-refused"}"#,
];

#[test]
fn a_table_the_hook_meets_prints_ok_a_case_and_the_summary_and_exits_0() {
    let dir = scratch("meets");
    let cases = write(&dir, "cases.jsonl", GOOD_PATH_GUARD);
    let output = test(PATH_GUARD, &cases, &[]);
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    let out = stdout(&output);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(
        lines[0].starts_with("ok ") && lines[0].contains(":2 "),
        "{out}"
    );
    assert!(lines[1].contains("a way out is refused"), "{out}");
    assert_eq!(lines[3], "3 passed, 0 failed");
}

#[test]
fn a_wrong_expectation_fails_naming_the_line_and_exits_1() {
    let dir = scratch("wrong");
    let cases = write(
        &dir,
        "cases.jsonl",
        &[
            GOOD_PATH_GUARD[1],
            r#"{"case":"expects the wrong code","message":{"kind":"command","name":"fs_read","payload":{"path":"/etc/passwd"}},"expect":{"reject":"denied"}}"#,
            r#"{"case":"expects a refusal that does not come","message":{"kind":"command","name":"fs_read","payload":{"path":"a.txt"}},"expect":{"reject":"path-escape"}}"#,
        ],
    );
    let output = test(PATH_GUARD, &cases, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains(&format!("FAIL  {cases}:2  expects the wrong code: expected reject denied, got reject path-escape")),
        "{out}"
    );
    assert!(
        out.contains(
            ":3  expects a refusal that does not come: expected reject path-escape, got pass"
        ),
        "{out}"
    );
    assert!(out.ends_with("1 passed, 2 failed\n"), "{out}");
}

#[test]
fn a_failing_replace_case_shows_where_expected_and_delivered_differ() {
    let dir = scratch("diff");
    let cases = write(
        &dir,
        "cases.jsonl",
        &[
            r#"{"case":"redact keeps the user","message":{"kind":"event","name":"login","payload":{"user":"ada","password":"p","keep":1}},"expect":{"replace":{"payload":{"user":"bob","keep":1}}}}"#,
        ],
    );
    let output = test(REDACT, &cases, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("expected (-) and delivered (+) differ:"),
        "{out}"
    );
    assert!(out.contains(r#"- payload.user: "bob""#), "{out}");
    assert!(out.contains(r#"+ payload.user: "ada""#), "{out}");
    assert!(
        !out.contains("payload.keep"),
        "only what differs is shown: {out}"
    );
}

#[test]
fn json_output_has_one_object_a_case_then_the_counts() {
    let dir = scratch("json");
    let cases = write(
        &dir,
        "cases.jsonl",
        &[
            GOOD_PATH_GUARD[1],
            r#"{"case":"wrong","message":{"kind":"command","name":"fs_read","payload":{"path":"/etc"}},"expect":"pass"}"#,
        ],
    );
    let output = test(PATH_GUARD, &cases, &["--json"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let lines: Vec<Value> = stdout(&output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["ok"], true);
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[1]["ok"], false);
    assert_eq!(lines[1]["expected"], "pass");
    assert_eq!(lines[1]["got"]["reject"], "path-escape");
    assert_eq!(lines[2], serde_json::json!({"passed": 1, "failed": 1}));
}

#[test]
fn bless_rewrites_the_expectations_from_what_the_hook_does_and_keeps_the_rest() {
    let dir = scratch("bless");
    let cases = write(
        &dir,
        "cases.jsonl",
        &[
            "# a comment stays",
            r#"{"case":"was pass", "message":{"kind":"command","name":"fs_read","payload":{"path":"../x"}},"expect":"pass"}"#,
            r#"{"case":"was right","message":{"kind":"command","name":"fs_read","payload":{"path":"x"}},"expect":"pass"}"#,
        ],
    );
    let blessed = test(PATH_GUARD, &cases, &["--bless"]);
    assert!(blessed.status.success(), "{}", stderr(&blessed));
    assert!(
        stderr(&blessed).contains("1 of 2 expectations rewritten"),
        "{}",
        stderr(&blessed)
    );
    let text = std::fs::read_to_string(&cases).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "# a comment stays");
    assert_eq!(
        lines[1],
        r#"{"case":"was pass","message":{"kind":"command","name":"fs_read","payload":{"path":"../x"}},"expect":{"reject":"path-escape"}}"#
    );
    assert!(lines[2].ends_with(r#""expect":"pass"}"#), "{text}");
    // Blessed, the table passes.
    assert!(test(PATH_GUARD, &cases, &[]).status.success());

    // BLESS=1 does the same for a replace.
    let redact_cases = write(
        &dir,
        "redact.jsonl",
        &[
            r#"{"case":"r","message":{"kind":"event","name":"e","payload":{"a":1,"token":2}},"expect":"pass"}"#,
        ],
    );
    let output = std::process::Command::new(airlock_tests::airlock_bin())
        .args(["test", "--hook", REDACT, &redact_cases])
        .current_dir(root())
        .env("BLESS", "1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = std::fs::read_to_string(&redact_cases).unwrap();
    assert!(
        text.contains(r#""expect":{"replace":{"payload":{"a":1}}}"#),
        "{text}"
    );
    assert!(test(REDACT, &redact_cases, &[]).status.success());
}

#[test]
fn a_malformed_cases_file_is_refused_naming_its_line_and_exits_2() {
    let dir = scratch("malformed");
    for (lines, named) in [
        (
            vec![
                GOOD_PATH_GUARD[1],
                r#"{"case":"no expect","message":{"kind":"command","name":"a"}}"#,
            ],
            ":2: not a case",
        ),
        (
            vec![
                r#"{"case":"bad message","message":{"kind":"teleport","name":"a"},"expect":"pass"}"#,
            ],
            ":1: bad message",
        ),
        (
            vec![r#"{"case":"no message","expect":"pass"}"#],
            ":1: a case has a `message` unless it expects `config-refused`",
        ),
        (
            vec![
                r#"{"case":"x","message":{"kind":"event","name":"a"},"expect":{"replace":{"source":{}}}}"#,
            ],
            ":1: a `replace` cannot change \"source\"",
        ),
        (vec!["# only a comment"], "has no cases"),
    ] {
        let cases = write(&dir, "cases.jsonl", &lines);
        let output = test(PATH_GUARD, &cases, &[]);
        assert_eq!(output.status.code(), Some(2), "{lines:?}");
        assert!(
            stderr(&output).contains(named),
            "{named}: {}",
            stderr(&output)
        );
    }
    let missing = test(PATH_GUARD, "target/tmp/cases/no-such.jsonl", &[]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("no-such.jsonl"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn a_case_s_own_config_wins_over_the_config_flag() {
    let dir = scratch("config");
    std::fs::write(dir.join("root.json"), r#"{"root":"/srv"}"#).unwrap();
    let cases = write(
        &dir,
        "cases.jsonl",
        &[
            r#"{"case":"inside --config's root","message":{"kind":"command","name":"fs_read","payload":{"path":"/srv/a"}},"expect":"pass"}"#,
            r#"{"case":"its own root","config":{"root":"/app/data"},"message":{"kind":"command","name":"fs_read","payload":{"path":"/srv/a"}},"expect":{"reject":"path-escape"}}"#,
        ],
    );
    let config = dir.join("root.json").display().to_string();
    let output = test(PATH_GUARD, &cases, &["--config", &config]);
    assert!(
        output.status.success(),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert!(stdout(&output).ends_with("2 passed, 0 failed\n"));
}
