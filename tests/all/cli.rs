//! The `airlock` binary, as hook authors run it.

use std::path::PathBuf;
use std::process::Output;

use airlock_tests::{root, run_airlock};
use serde_json::{Value, json};

fn run(args: &[&str], stdin: &str) -> Output {
    run_airlock(args, &root(), stdin)
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn inspect_prints_one_verdict_line_per_message_and_reports_malformed_lines() {
    let input = [
        r#"{"kind":"command","name":"fs_read","source":{"window":"main","webview":"main","origin":"tauri://localhost"},"headers":{},"payload":{"path":"notes.txt"}}"#,
        r#"{"kind":"command","name":"fs_read","payload":{"path":"../../etc/shadow"}}"#,
        r#"{"kind":"command","name":"fs_read","payload":"#,
        "",
        r#"{"kind":"teleport","name":"x"}"#,
        r#"{"kind":"channel","name":"upload","bytes":"AAEC/w=="}"#,
    ]
    .join("\n");
    let output = run(
        &["inspect", "--hook", "target/hooks/path-guard.rust.wasm"],
        &input,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = lines(&output);
    assert_eq!(out.len(), 5, "{out:#?}");
    let sent: Value = serde_json::from_str(input.lines().next().unwrap()).unwrap();
    assert_eq!(out[0]["verdict"], "pass");
    assert_eq!(
        (&out[0]["code"], &out[0]["reason"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(out[0]["delivered"], sent);
    let digest = out[0]["hook"].as_str().unwrap();
    assert_eq!(digest.len(), 64);
    assert!(out[0]["cost_us"].as_f64().unwrap() > 0.0);
    assert_eq!(
        out[0]["fuel"],
        Value::Null,
        "fuel is reported only when metered"
    );
    assert_eq!(out[1]["verdict"], "reject");
    assert_eq!(out[1]["code"], "path-escape");
    assert!(
        out[1]["reason"]
            .as_str()
            .unwrap()
            .contains("../../etc/shadow")
    );
    assert_eq!(out[1]["delivered"], Value::Null);
    assert_eq!(out[2]["line"], 3);
    assert!(
        out[2]["error"].as_str().unwrap().starts_with("line 3: "),
        "{}",
        out[2]
    );
    assert_eq!(out[3]["line"], 5);
    assert!(
        out[3]["error"].as_str().unwrap().contains("teleport"),
        "{}",
        out[3]
    );
    assert_eq!(out[4]["delivered"]["bytes"], "AAEC/w==");
}

#[test]
fn inspect_reads_a_file_and_passes_the_config_to_the_hook() {
    let dir = std::env::temp_dir().join(format!("airlock-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("redact.json");
    std::fs::write(&config, r#"{"fields": ["pin"]}"#).unwrap();
    let input = dir.join("events.jsonl");
    std::fs::write(
        &input,
        r#"{"kind":"event","name":"unlock","payload":{"pin":"1234","password":"kept"}}"#,
    )
    .unwrap();
    let output = run(
        &[
            "inspect",
            "--hook",
            "target/hooks/redact.rust.wasm",
            "--config",
        ]
        .into_iter()
        .chain([config.to_str().unwrap(), input.to_str().unwrap()])
        .collect::<Vec<_>>(),
        "",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let out = lines(&output);
    assert_eq!(out[0]["verdict"], "replace");
    assert_eq!(out[0]["delivered"]["payload"], json!({"password": "kept"}));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn inspect_with_a_bad_hook_or_config_exits_non_zero_and_says_why() {
    let missing = run(&["inspect", "--hook", "target/hooks/nope.wasm"], "");
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.wasm"));

    let dir = std::env::temp_dir().join(format!("airlock-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bad.json");
    std::fs::write(&config, r#"{"root": "relative/path"}"#).unwrap();
    let refused = run(
        &[
            "inspect",
            "--hook",
            "target/hooks/path-guard.rust.wasm",
            "--config",
            config.to_str().unwrap(),
        ],
        "",
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("refused its config") && stderr.contains("relative/path"),
        "{stderr}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// `inspect` with path-guard then redact and these flags, on a message path-guard rejects.
fn two_hooks_with(flags: &[&str]) -> Output {
    let args = [
        "inspect",
        "--hook",
        "target/hooks/path-guard.rust.wasm",
        "--hook",
        "target/hooks/redact.rust.wasm",
    ];
    let message = r#"{"kind":"command","name":"fs_read","payload":{"path":"../etc/passwd"}}"#;
    run(&[&args[..], flags].concat(), message)
}

#[test]
fn one_config_and_one_pin_per_hook_obeyed() {
    let dir = std::env::temp_dir().join(format!("airlock-cli-per-hook-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let redact = dir.join("redact.json");
    std::fs::write(&redact, r#"{"fields": ["pin"]}"#).unwrap();
    let redact = redact.to_str().unwrap();
    let path_guard = "examples/path-guard.config.json";
    let output = two_hooks_with(&[
        "--config", path_guard, "--config", redact, "--pin", "-", "--pin", "-",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(lines(&output)[0]["code"], "path-escape");
    // Each config went to its own hook: path-guard's is not redact's.
    let swapped = two_hooks_with(&["--config", redact, "--config", path_guard]);
    assert!(!swapped.status.success());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn one_config_and_one_pin_per_hook_crossed_refuses_naming_both_counts() {
    for (flags, said) in [
        (
            &["--config", "examples/path-guard.config.json"][..],
            "1 --config for 2 --hook: give none, or one per hook in the same order",
        ),
        (
            &["--pin", "-", "--pin", "-", "--pin", "-"][..],
            "3 --pin for 2 --hook: give none, or one per hook in the same order (- for none)",
        ),
    ] {
        let output = two_hooks_with(flags);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(said), "{flags:?}: {stderr}");
    }
}

#[test]
fn component_wraps_a_wat_module_into_a_hook_that_loads() {
    let out: PathBuf =
        std::env::temp_dir().join(format!("airlock-pass-{}.wasm", std::process::id()));
    let output = run(
        &[
            "component",
            "host/src/pass_all.wat",
            "-o",
            out.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let bytes = std::fs::read(&out).unwrap();
    airlock::Hook::load(airlock_tests::engine(), &bytes, Default::default()).unwrap();
    std::fs::remove_file(out).unwrap();
}

#[test]
fn inspect_takes_a_flag_for_each_limit_and_reports_fuel_when_metered() {
    let line = r#"{"kind":"command","name":"fs_read","payload":{"path":"notes.txt"}}"#;
    let flags = [
        "inspect",
        "--hook",
        "target/hooks/path-guard.rust.wasm",
        "--timeout-ms",
        "250",
        "--fuel",
        "100000000",
        "--memory-mib",
        "32",
        "--stack-kib",
        "256",
        // Above the engine's default table ceiling: the CLI raises the ceiling to match.
        "--table-elements",
        "200000",
        "--instances",
        "32",
        "--log-bytes",
        "1024",
        "--log-lines",
        "500",
        "--max-message-bytes",
        "65536",
        "--mode",
        "reuse",
    ];
    let output = run(&flags, &format!("{line}\n{line}\n"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for out in lines(&output) {
        assert_eq!(out["verdict"], "pass");
        assert!(out["fuel"].as_u64().unwrap() > 0, "{out}");
    }
}

#[test]
fn inspect_rejects_with_hook_timeout_when_the_fuel_budget_runs_out() {
    let line = r#"{"kind":"command","name":"fs_read","payload":{"path":"notes.txt"}}"#;
    let flags = [
        "inspect",
        "--hook",
        "target/hooks/path-guard.rust.wasm",
        "--fuel",
        "1000",
    ];
    let output = run(&flags, line);
    assert!(
        !output.status.success(),
        "a hook that cannot even configure is not loaded"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("hook-timeout") && stderr.contains("fuel budget of 1000"),
        "{stderr}"
    );
}

#[test]
fn fuzz_writes_reproducers_that_inspect_replays_and_exits_non_zero() {
    let dir = std::env::temp_dir().join(format!("airlock-fuzz-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let naive = dir.join("naive.wasm");
    std::fs::write(&naive, crate::fuzz::naive_guard()).unwrap();
    let out = dir.join("findings");
    let args = [
        "fuzz",
        "--hook",
        naive.to_str().unwrap(),
        "--reference",
        "target/hooks/path-guard.rust.wasm",
        "--runs",
        "3000",
        "--seed",
        "3",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    let output = run(&args, "");
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["runs"], 3000);
    let findings = report["findings"].as_array().unwrap();
    assert!(!findings.is_empty());
    for finding in findings {
        assert_eq!(finding["kind"], "differs");
        let file = finding["file"].as_str().unwrap();
        let (ours, theirs) = finding["key"].as_str().unwrap().split_once(" vs ").unwrap();
        let verdict_of = |hook: &str| {
            let replay = run(&["inspect", "--hook", hook, file], "");
            assert!(replay.status.success());
            let line = &lines(&replay)[0];
            line["code"]
                .as_str()
                .unwrap_or(line["verdict"].as_str().unwrap())
                .to_owned()
        };
        assert_eq!(verdict_of(naive.to_str().unwrap()), ours, "{file}");
        assert_eq!(
            verdict_of("target/hooks/path-guard.rust.wasm"),
            theirs,
            "{file}"
        );
    }
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn fuzz_with_nothing_to_find_exits_zero_and_prints_a_summary() {
    let args = [
        "fuzz",
        "--hook",
        "target/hooks/origin-allow.rust.wasm",
        "--runs",
        "500",
    ];
    let output = run(&args, "");
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("runs 500") && stdout.contains("no findings"),
        "{stdout}"
    );
}

#[test]
fn fuzz_refuses_a_bad_duration_with_the_value() {
    let output = run(
        &[
            "fuzz",
            "--hook",
            "target/hooks/redact.rust.wasm",
            "--duration",
            "5 parsecs",
        ],
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("5 parsecs"));
}

#[test]
fn bench_reports_the_hook_against_a_baseline_from_the_same_run() {
    let args = [
        "bench",
        "--hook",
        "target/hooks/path-guard.rust.wasm",
        "--duration",
        "0.2",
        "--json",
        "--mode",
        "reuse",
        "--threads",
        "2",
    ];
    let output = run(&args, "");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    for field in [
        "median_ns",
        "p99_ns",
        "msgs_per_s",
        "baseline_median_ns",
        "ratio",
    ] {
        assert!(report[field].as_f64().unwrap() > 0.0, "{field}: {report}");
    }
    assert!(report["p99_ns"].as_f64() >= report["median_ns"].as_f64());
}

#[test]
fn bench_refuses_a_hook_that_rejects_its_message() {
    let output = run(
        &[
            "bench",
            "--hook",
            "target/hooks/origin-allow.rust.wasm",
            "--duration",
            "0.1",
        ],
        "",
    );
    assert!(
        output.status.success(),
        "origin-allow passes tauri://localhost"
    );
    let dir = std::env::temp_dir().join(format!("airlock-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("deny.json");
    std::fs::write(&config, r#"{"origins": []}"#).unwrap();
    let output = run(
        &[
            "bench",
            "--hook",
            "target/hooks/origin-allow.rust.wasm",
            "--config",
            config.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("origin-denied"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// Fuzzes the hook `bytes` for 200 runs with `--json` and `args`: the kinds of what it found,
/// and the report's text for messages. The command must exit 1 when it found anything, else 0.
fn fuzz_findings(name: &str, bytes: &[u8], args: &[&str]) -> (Vec<String>, String) {
    let dir = std::env::temp_dir().join(format!("airlock-fuzz-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hook = dir.join(format!("{name}.wasm"));
    std::fs::write(&hook, bytes).unwrap();
    let out = dir.join("findings");
    let base = [
        "fuzz",
        "--hook",
        hook.to_str().unwrap(),
        "--runs",
        "200",
        "--json",
        "--out",
        out.to_str().unwrap(),
    ];
    let output = run(&[&base[..], args].concat(), "");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    let kinds: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_owned())
        .collect();
    let expected_code = match kinds.is_empty() {
        true => 0,
        false => 1,
    };
    assert_eq!(output.status.code(), Some(expected_code), "{text}");
    std::fs::remove_dir_all(dir).unwrap();
    (kinds, text)
}

#[test]
fn fuzz_in_reuse_mode_reports_state_kept_between_messages_as_non_determinism() {
    // Rejects every other message of its instance: invisible in fresh mode, caught in reuse.
    let flip = crate::fuzz::flip_hook();
    let (kinds, text) = fuzz_findings("flip", &flip, &[]);
    assert!(
        kinds.is_empty(),
        "fresh instances forget (the default for it): {text}"
    );
    let (kinds, text) = fuzz_findings("flip", &flip, &["--mode", "reuse"]);
    assert!(kinds.iter().any(|k| k == "nondeterministic"), "{text}");
}

#[test]
fn fuzz_by_default_reuses_warm_instances_of_a_slow_to_start_runtime_as_production_does() {
    // The flip hook marked as CPython: `--mode auto`, the default, reuses its instances, so the
    // state it keeps shows up; `--mode fresh` hides it again. (Unmarked, the test above shows
    // the default giving a fresh instance per message.)
    let flip = crate::fuzz::flip_hook_marked("componentize_py_runtime");
    let (kinds, text) = fuzz_findings("flip-py", &flip, &[]);
    assert!(kinds.iter().any(|k| k == "nondeterministic"), "{text}");
    let (kinds, text) = fuzz_findings("flip-py", &flip, &["--mode", "fresh"]);
    assert!(kinds.is_empty(), "{text}");
}

#[test]
fn serve_runs_on_as_few_as_one_worker_thread() {
    let (_server, addr) = airlock_tests::serve_airlock(&[
        "--workers",
        "1",
        "--hook",
        "target/hooks/path-guard.rust.wasm",
    ]);
    assert!(addr.starts_with("127.0.0.1:"), "printed {addr:?}");
}

#[test]
fn serve_with_no_worker_threads_is_refused_naming_the_value() {
    let out = run(&["serve", "--workers", "0"], "");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--workers") && stderr.contains("'0'"),
        "{stderr}"
    );
}

#[test]
fn serve_keeps_workers_awake_up_to_ten_milliseconds_or_not_at_all() {
    for spin in ["0", "10000"] {
        let (_server, addr) = airlock_tests::serve_airlock(&[
            "--spin-us",
            spin,
            "--hook",
            "target/hooks/path-guard.rust.wasm",
        ]);
        assert!(
            addr.starts_with("127.0.0.1:"),
            "--spin-us {spin}: printed {addr:?}"
        );
    }
}

#[test]
fn serve_refuses_a_spin_over_ten_milliseconds_naming_the_value() {
    for spin in ["10001", "soon"] {
        let out = run(&["serve", "--spin-us", spin], "");
        assert_eq!(out.status.code(), Some(2), "--spin-us {spin}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--spin-us") && stderr.contains(&format!("'{spin}'")),
            "{stderr}"
        );
    }
}

#[test]
fn bench_and_fuzz_say_they_take_one_hook_and_refuse_two_naming_both() {
    for command in ["bench", "fuzz"] {
        let help = run(&[command, "--help"], "");
        let text = String::from_utf8_lossy(&help.stdout);
        let hook_help = text
            .split("--hook <HOOK.wasm>")
            .nth(2)
            .unwrap_or_else(|| panic!("{command} --help has no --hook entry: {text}"));
        assert!(
            hook_help
                .trim_start()
                .starts_with("The hook component (one)"),
            "{text}"
        );
        assert!(!hook_help.contains("repeat to chain"), "{text}");
        let two = run(
            &[command, "--hook", "first.wasm", "--hook", "second.wasm"],
            "",
        );
        assert_eq!(two.status.code(), Some(2), "{command}");
        let error = String::from_utf8_lossy(&two.stderr);
        assert!(
            error.contains("takes one --hook, got 2: first.wasm, second.wasm"),
            "{command}: {error}"
        );
    }
}
