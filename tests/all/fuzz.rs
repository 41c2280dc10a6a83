//! `airlock fuzz`: planted bugs are found, reproducers replay, runs are deterministic.

use std::time::Duration;

use airlock::{GatewayLimits, Hook, HookLimits, HookOptions, InstanceMode};
use airlock_cli::fuzzer::{self as fuzz, Budget, FindingKind, FuzzOptions, Properties, Report};
use airlock_tests::{CONFIGURE_OK, INSPECT_PASS, built_hook, fuel_engine, wat_hook};

/// A substring search over guest memory, for hooks that react to a payload shape.
const CONTAINS: &str = "
  (func $contains (param $p i32) (param $n i32) (param $q i32) (param $m i32) (result i32)
    (local $i i32) (local $j i32)
    (block $none
      (loop $outer
        (br_if $none (i32.gt_u (i32.add (local.get $i) (local.get $m)) (local.get $n)))
        (local.set $j (i32.const 0))
        (block $miss
          (loop $inner
            (if (i32.eq (local.get $j) (local.get $m)) (then (return (i32.const 1))))
            (br_if $miss (i32.ne
              (i32.load8_u (i32.add (local.get $p) (i32.add (local.get $i) (local.get $j))))
              (i32.load8_u (i32.add (local.get $q) (local.get $j)))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $inner)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    (i32.const 0))";

fn load(bytes: &[u8], mode: InstanceMode) -> Hook {
    let options = HookOptions::default()
        .with_limits(
            HookLimits::default()
                .with_fuel(Some(u64::MAX / 2))
                .with_timeout(Duration::from_secs(1))
                .with_quarantine_faults(None),
        )
        .with_mode(mode);
    Hook::load(fuel_engine(), bytes, options).unwrap()
}

fn fuzz(hook: Hook, reference: Option<Hook>, properties: Option<&str>, runs: u64) -> Report {
    let options = FuzzOptions {
        hook,
        reference,
        seeds: Vec::new(),
        properties: properties.map(|p| Properties::parse(p).unwrap()),
        budget: Budget::Runs(runs),
        seed: 7,
        limits: GatewayLimits::default(),
        hints: Default::default(),
        blocks: None,
        edges: Vec::new(),
        max_corpus: fuzz::MAX_CORPUS,
    };
    fuzz::run(&options, &mut |_| {})
}

/// A path guard with a planted bypass: it only looks for `..` in the body.
pub(crate) fn naive_guard() -> Vec<u8> {
    let inspect = "
      (if (i32.and (i32.eqz (local.get $kind))
                   (call $contains (local.get $body) (local.get $body_len) (i32.const 256) (i32.const 2)))
        (then
          (i32.store8 (i32.const 16) (i32.const 2))
          (i32.store (i32.const 20) (i32.const 272)) (i32.store (i32.const 24) (i32.const 11))
          (i32.store (i32.const 28) (i32.const 272)) (i32.store (i32.const 32) (i32.const 11))
          (return (i32.const 16))))
      (i32.store8 (i32.const 16) (i32.const 0)) (i32.const 16)";
    let extra =
        format!(r#"(data (i32.const 256) "..") (data (i32.const 272) "path-escape") {CONTAINS}"#);
    wat_hook(CONFIGURE_OK, inspect, &extra)
}

#[test]
fn a_bypass_the_reference_does_not_have_is_found_and_minimized() {
    let reference = load(&built_hook("path-guard", "rust"), InstanceMode::Fresh);
    let report = fuzz(
        load(&naive_guard(), InstanceMode::Fresh),
        Some(reference),
        None,
        5_000,
    );
    let bypass = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Differs && f.key == "pass vs path-escape")
        .expect("the naive guard passes something path-guard rejects");
    assert!(
        bypass.request.body.len() <= 64,
        "minimized: {:?}",
        bypass.request
    );
    // The reproducer really is a bypass: naive passes it, path-guard rejects it.
    let naive = load(&naive_guard(), InstanceMode::Fresh);
    let guard = load(&built_hook("path-guard", "rust"), InstanceMode::Fresh);
    let message = airlock::Message::from_request(1, bypass.source.clone(), bypass.request.clone());
    assert_eq!(
        naive.inspect_blocking(message.clone()).verdict,
        airlock::Verdict::Pass
    );
    assert_eq!(
        guard.inspect_blocking(message).verdict.kind(),
        airlock::Decision::Reject
    );
}

#[test]
fn a_trap_on_one_payload_shape_is_found_and_minimized() {
    let inspect = format!(
        "(if (call $contains (local.get $body) (local.get $body_len) (i32.const 256) (i32.const 9))
           (then unreachable)) {INSPECT_PASS}"
    );
    let extra = format!(r#"(data (i32.const 256) "__proto__") {CONTAINS}"#);
    let report = fuzz(
        load(
            &wat_hook(CONFIGURE_OK, &inspect, &extra),
            InstanceMode::Fresh,
        ),
        None,
        None,
        5_000,
    );
    let trap = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Fault)
        .expect("the trap is found");
    assert_eq!(trap.key, "hook-trap");
    let airlock::Body::Json(body) = &trap.request.body else {
        panic!("JSON body")
    };
    assert!(body.contains("__proto__"), "{body}");
    assert!(body.len() <= 40, "minimized to {body}");
}

/// A hook that rejects every other message its instance sees (code `flip`): the same verdict
/// every time in fresh mode, alternating in reuse mode.
pub(crate) fn flip_hook() -> Vec<u8> {
    flip_hook_marked("")
}

/// [`flip_hook`] with `marker` in its data: a runtime's marker (`componentize_py_runtime`) makes
/// `--mode auto` take it for that runtime.
pub(crate) fn flip_hook_marked(marker: &str) -> Vec<u8> {
    let inspect = "
      (global.set $flip (i32.xor (global.get $flip) (i32.const 1)))
      (if (global.get $flip) (then
        (i32.store8 (i32.const 16) (i32.const 2))
        (i32.store (i32.const 20) (i32.const 256)) (i32.store (i32.const 24) (i32.const 4))
        (i32.store (i32.const 28) (i32.const 256)) (i32.store (i32.const 32) (i32.const 4))
        (return (i32.const 16))))
      (i32.store8 (i32.const 16) (i32.const 0)) (i32.const 16)";
    let extra = format!(
        r#"(global $flip (mut i32) (i32.const 0)) (data (i32.const 256) "flip")
           (data (i32.const 512) "{marker}")"#
    );
    wat_hook(CONFIGURE_OK, inspect, &extra)
}

#[test]
fn non_determinism_is_found() {
    let hook = load(&flip_hook(), InstanceMode::Reuse { max_idle: 1 });
    let report = fuzz(hook, None, None, 200);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::Nondeterministic),
        "{:?}",
        report.findings
    );
}

#[test]
fn a_replace_the_gateway_refuses_is_found() {
    // Replaces the body with text that is not JSON.
    let inspect = "(i32.store8 (i32.const 16) (i32.const 1))
        (i32.store8 (i32.const 20) (i32.const 0)) (i32.store8 (i32.const 32) (i32.const 0))
        (i32.store8 (i32.const 44) (i32.const 1)) (i32.store8 (i32.const 48) (i32.const 0))
        (i32.store (i32.const 52) (i32.const 256)) (i32.store (i32.const 56) (i32.const 4))
        (i32.const 16)";
    let hook = load(
        &wat_hook(CONFIGURE_OK, inspect, r#"(data (i32.const 256) "{oop")"#),
        InstanceMode::Fresh,
    );
    let report = fuzz(hook, None, None, 50);
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.kind == FindingKind::BadReplace)
    );
}

/// The core routes exact names only, so the property names them (a glob like `fs_*` would also
/// speak of `fs_read/`, which path-guard rightly leaves alone and the core does not route).
const FS_PROPERTY: &str = r#"{"properties": [{"name": "fs paths stay in /app/data",
    "kind": "command", "names": ["fs_read", "fs_write", "fs_list"],
    "path_within": {"pointer": "/path", "root": "/app/data"}}]}"#;

#[test]
fn a_declared_property_broken_by_a_pass_all_hook_is_found() {
    let pass_all = load(
        &wat_hook(CONFIGURE_OK, INSPECT_PASS, ""),
        InstanceMode::Fresh,
    );
    let report = fuzz(pass_all, None, Some(FS_PROPERTY), 2_000);
    let broken = report
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::Property)
        .expect("found");
    assert_eq!(broken.key, "fs paths stay in /app/data");
}

#[test]
fn path_guard_keeps_the_path_property_under_fuzzing() {
    // Resolution in the property is deliberately careless (percent-decoding, backslashes,
    // lookalikes): path-guard must reject everything that such a core would misread.
    let guard = load(&built_hook("path-guard", "rust"), InstanceMode::Fresh);
    let report = fuzz(guard, None, Some(FS_PROPERTY), 6_000);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

#[test]
fn redact_leaves_no_secret_keys_under_fuzzing() {
    let properties = r#"{"properties": [{"name": "no secrets in events", "kind": "event",
        "no_keys": ["password", "token", "secret"]}]}"#;
    let redact = load(&built_hook("redact", "rust"), InstanceMode::Fresh);
    let report = fuzz(redact, None, Some(properties), 4_000);
    assert!(report.findings.is_empty(), "{:#?}", report.findings);
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let run = || {
        let reference = load(&built_hook("path-guard", "rust"), InstanceMode::Fresh);
        let report = fuzz(
            load(&naive_guard(), InstanceMode::Fresh),
            Some(reference),
            None,
            1_500,
        );
        let findings: Vec<_> = report
            .findings
            .iter()
            .map(|f| {
                (
                    f.kind,
                    f.key.clone(),
                    f.first_run,
                    f.count,
                    f.request.clone(),
                )
            })
            .collect();
        (
            report.progress.runs,
            report.progress.outcomes,
            report.progress.corpus,
            findings,
        )
    };
    assert_eq!(run(), run());
}

#[test]
fn a_malformed_properties_file_is_refused_with_the_reason() {
    let error =
        Properties::parse(r#"{"properties": [{"name": "x", "verdicts": ["allow"]}]}"#).unwrap_err();
    assert!(error.contains("\"allow\""), "{error}");
    let error = Properties::parse(r#"{"properties": [{"nam": "x"}]}"#).unwrap_err();
    assert!(error.contains("nam"), "{error}");
}

#[test]
fn the_property_oracle_resolves_paths_the_way_a_careless_core_would() {
    use airlock_cli::fuzzer::oracle::resolves_within;
    for inside in [
        "notes.txt",
        "a/../b",
        "/app/data/x",
        "...txt",
        "x..y",
        "/app/data",
    ] {
        assert!(resolves_within(inside, "/app/data").is_ok(), "{inside}");
    }
    for outside in [
        "../x",
        "%2e%2e/x",
        "%252e%252e%252fx",
        "..%c0%afx",
        "..\\x",
        "\u{ff0e}\u{ff0e}/x",
        "\u{2025}/x",
        "/etc",
        "/app/database",
        "~/x",
        "C:/x",
        "..;/x",
        "... /x",
        "/app/data/../..",
    ] {
        assert!(resolves_within(outside, "/app/data").is_err(), "{outside}");
    }
    // Cut at a NUL, as C would: what is left stays inside.
    assert!(resolves_within("ok.txt\0/../../../etc", "/app/data").is_ok());
}
