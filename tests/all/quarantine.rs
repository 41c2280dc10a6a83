//! Quarantine: a hook that faults more than N times in a window is not run until the window
//! passes or it is reloaded; every message meanwhile is rejected with `hook-quarantined`.

use std::sync::Arc;
use std::time::Duration;

use airlock::{Decision, Gateway, Hook, HookError, HookLimits, HookOptions};
use airlock_tests::{
    CONFIGURE_OK, INSPECT_PASS, delivered, echo_gateway, engine, root, run_airlock, send, wat_hook,
};

/// A message the hook traps on (its body is longer than 10 bytes)...
const BAD: &str = r#"{"kind":"event","name":"e","payload":"trigger the fault"}"#;
/// ...and one it passes.
const GOOD: &str = r#"{"kind":"event","name":"e","payload":1}"#;

/// A hook that traps on long bodies and passes short ones.
fn trapping_on_long_bodies() -> Vec<u8> {
    let inspect = format!(
        "(if (i32.gt_u (local.get $body_len) (i32.const 10)) (then unreachable)) {INSPECT_PASS}"
    );
    wat_hook(CONFIGURE_OK, &inspect, "")
}

fn gateway(faults: Option<usize>, window: Duration) -> Gateway {
    let limits = HookLimits::default()
        .with_quarantine_faults(faults)
        .with_quarantine_window(window);
    let options = HookOptions::default().with_limits(limits);
    echo_gateway(Hook::load(engine(), &trapping_on_long_bodies(), options).unwrap())
}

fn code(gateway: &Gateway, line: &str) -> String {
    match delivered(&send(gateway, line)) {
        Ok(_) => "pass".to_owned(),
        Err(code) => code,
    }
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn quarantine_limit_obeyed_a_hook_with_n_faults_in_the_window_still_runs() {
    let gateway = gateway(Some(3), MINUTE);
    for _ in 0..3 {
        assert_eq!(code(&gateway, BAD), "hook-trap");
    }
    assert_eq!(code(&gateway, GOOD), "pass");
    assert_eq!(
        code(&gateway, BAD),
        "hook-trap",
        "the 4th fault is the hook's own"
    );
}

#[test]
fn quarantine_limit_crossed_rejects_every_message_with_hook_quarantined_without_running_the_hook() {
    let gateway = gateway(Some(3), MINUTE);
    for _ in 0..4 {
        assert_eq!(code(&gateway, BAD), "hook-trap");
    }
    // GOOD would pass if the hook ran; BAD would trap.
    for line in [GOOD, BAD, GOOD] {
        let reply = send(&gateway, line);
        assert_eq!(reply.decision, Decision::Reject);
        let rejection = reply.outcome.unwrap_err();
        assert_eq!(rejection.code, "hook-quarantined");
        assert!(
            rejection.reason.contains("more than 3 times"),
            "{}",
            rejection.reason
        );
        assert_eq!(reply.hook_fuel, None);
    }
}

#[test]
fn a_quarantine_ends_once_its_window_has_passed() {
    let window = Duration::from_millis(300);
    let gateway = gateway(Some(1), window);
    assert_eq!(code(&gateway, BAD), "hook-trap");
    assert_eq!(code(&gateway, BAD), "hook-trap");
    assert_eq!(code(&gateway, GOOD), "hook-quarantined");
    std::thread::sleep(window + Duration::from_millis(100));
    assert_eq!(code(&gateway, GOOD), "pass");
    assert_eq!(code(&gateway, BAD), "hook-trap", "the record starts clean");
}

#[test]
fn a_reload_lifts_the_quarantine() {
    let gateway = gateway(Some(0), MINUTE);
    assert_eq!(code(&gateway, BAD), "hook-trap");
    assert_eq!(code(&gateway, GOOD), "hook-quarantined");
    gateway.reload(&trapping_on_long_bodies()).unwrap();
    assert_eq!(code(&gateway, GOOD), "pass");
}

#[test]
fn a_hook_without_quarantine_faults_on_every_message() {
    let gateway = gateway(None, MINUTE);
    for _ in 0..40 {
        assert_eq!(code(&gateway, BAD), "hook-trap");
    }
}

#[test]
fn faults_spread_wider_than_the_window_do_not_quarantine() {
    let window = Duration::from_millis(200);
    let gateway = gateway(Some(1), window);
    for _ in 0..3 {
        assert_eq!(code(&gateway, BAD), "hook-trap");
        std::thread::sleep(window + Duration::from_millis(50));
    }
    assert_eq!(code(&gateway, GOOD), "pass");
}

#[test]
fn a_hook_rejecting_by_its_own_policy_is_never_quarantined() {
    // Rejections the hook chooses are verdicts, not faults.
    let inspect = r#"(i32.store8 (i32.const 16) (i32.const 2))
        (i32.store (i32.const 20) (i32.const 256)) (i32.store (i32.const 24) (i32.const 4))
        (i32.store (i32.const 28) (i32.const 256)) (i32.store (i32.const 32) (i32.const 4))
        (i32.const 16)"#;
    let extra = r#"(data (i32.const 256) "nope")"#;
    let limits = HookLimits::default().with_quarantine_faults(Some(0));
    let hook = Hook::load(
        engine(),
        &wat_hook(CONFIGURE_OK, inspect, extra),
        HookOptions::default().with_limits(limits),
    )
    .unwrap();
    let gateway = echo_gateway(hook);
    for _ in 0..5 {
        assert_eq!(code(&gateway, GOOD), "nope");
    }
}

#[test]
fn a_zero_quarantine_window_is_refused_at_load() {
    let limits = HookLimits::default().with_quarantine_window(Duration::ZERO);
    let error = Hook::load(
        engine(),
        &trapping_on_long_bodies(),
        HookOptions::default().with_limits(limits),
    )
    .unwrap_err();
    assert!(matches!(error, HookError::Limit(_)), "{error}");
    assert!(error.to_string().contains("quarantine window"), "{error}");
}

#[test]
fn a_hook_trapping_on_every_message_from_many_tasks_is_quarantined_and_the_host_stays_responsive() {
    let gateway = Arc::new(gateway(Some(5), MINUTE));
    let codes = airlock_tests::block_on(async {
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let gateway = gateway.clone();
                tokio::spawn(async move {
                    let mut codes = Vec::new();
                    for _ in 0..50 {
                        let (source, request) = airlock::jsonl::parse_line(BAD).unwrap();
                        let reply = gateway.handle(source, request).await;
                        codes.push(reply.outcome.unwrap_err().code);
                    }
                    codes
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    assert_eq!(codes.len(), 800);
    let traps = codes.iter().filter(|c| *c == "hook-trap").count();
    let quarantined = codes.iter().filter(|c| *c == "hook-quarantined").count();
    assert_eq!(traps + quarantined, 800, "every message is rejected");
    // 6 faults trip it; messages already inside the hook then may still trap (at most one per task).
    assert!((6..=6 + 16).contains(&traps), "{traps} traps");
}

#[test]
fn inspect_takes_the_quarantine_flags() {
    let dir = tempfile::tempdir().unwrap();
    let hook = dir.path().join("trap.wasm");
    std::fs::write(&hook, trapping_on_long_bodies()).unwrap();
    let hook = hook.to_str().unwrap();
    let input = [BAD, BAD, BAD, GOOD].join("\n");
    let output = run_airlock(
        &["inspect", "--hook", hook, "--quarantine-faults", "1"],
        &root(),
        &input,
    );
    assert!(output.status.success(), "{output:?}");
    let codes: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["code"].to_string())
        .collect();
    assert_eq!(
        codes,
        [
            r#""hook-trap""#,
            r#""hook-trap""#,
            r#""hook-quarantined""#,
            r#""hook-quarantined""#
        ]
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let bad = run_airlock(
        &["inspect", "--hook", hook, "--quarantine-window-ms", "0"],
        &root(),
        "",
    );
    assert!(!bad.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("--quarantine-window-ms 0"),
        "{bad:?}"
    );
}

/// `line` as sent from the window labelled `window`.
fn from_window(line: &str, window: &str) -> String {
    let mut message: serde_json::Value = serde_json::from_str(line).unwrap();
    message["source"] = serde_json::json!({ "window": window });
    message.to_string()
}

#[test]
fn a_window_whose_messages_make_the_hook_fault_quarantines_it_for_itself_and_not_for_others() {
    let gateway = gateway(Some(3), MINUTE);
    for _ in 0..4 {
        assert_eq!(code(&gateway, &from_window(BAD, "attacker")), "hook-trap");
    }
    let reply = send(&gateway, &from_window(GOOD, "attacker"));
    let rejection = reply.outcome.unwrap_err();
    assert_eq!(rejection.code, "hook-quarantined");
    assert!(
        rejection.reason.contains(r#"window "attacker""#),
        "{}",
        rejection.reason
    );
    // Another window still meets the hook: its good messages pass and its bad ones are its own
    // faults, counted for it alone.
    assert_eq!(code(&gateway, &from_window(GOOD, "main")), "pass");
    for _ in 0..3 {
        assert_eq!(code(&gateway, &from_window(BAD, "main")), "hook-trap");
    }
    assert_eq!(code(&gateway, &from_window(GOOD, "main")), "pass");
    assert_eq!(code(&gateway, &from_window(BAD, "main")), "hook-trap");
    assert_eq!(
        code(&gateway, &from_window(GOOD, "main")),
        "hook-quarantined",
        "its 4th fault quarantines the hook for main too"
    );
}

#[test]
fn after_many_windows_each_faulted_once_a_window_past_the_limit_is_still_quarantined() {
    // More windows than the records keep before sweeping, each faulting once: none is
    // quarantined, and a window that faults past the limit afterwards still is.
    let gateway = gateway(Some(1), MINUTE);
    for i in 0..600 {
        assert_eq!(
            code(&gateway, &from_window(BAD, &format!("w{i}"))),
            "hook-trap"
        );
    }
    assert_eq!(code(&gateway, &from_window(GOOD, "w599")), "pass");
    assert_eq!(code(&gateway, &from_window(BAD, "w599")), "hook-trap");
    assert_eq!(
        code(&gateway, &from_window(GOOD, "w599")),
        "hook-quarantined"
    );
}
