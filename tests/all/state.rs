//! Host-owned state (`airlock:hook/state`): scoped to the hook's name and the message's window,
//! surviving a reload, bounded per hook, and holding a rate limit under concurrent load with a
//! fresh instance per message.

use std::collections::HashMap;
use std::sync::Arc;

use airlock::{
    Decision, Gateway, Hook, HookEngine, HookLimits, HookOptions, InstanceMode, ManualClock,
    Request, Source,
};
use airlock_tests::{CONFIGURE_OK, INSPECT_PASS, built_hook, echo_gateway, engine, send};

const STATE: &str = r#"
  (import "airlock:hook/state@0.1.0" "add" (func $add (param i32 i32 i64 i32)))
  (import "airlock:hook/state@0.1.0" "set" (func $set (param i32 i32 i32 i32 i32)))"#;

/// Rejects with code `eN` for state error N (reason `state`), `over` past 3.
const DATA: &str = r#"(data (i32.const 256) "e0e1e2e3e4") (data (i32.const 272) "state") (data (i32.const 280) "over")"#;

/// Writes a rejection with the code at `code`/`len` and reason `state`, and returns it.
fn reject(code: &str, len: &str) -> String {
    format!(
        "(i32.store8 (i32.const 16) (i32.const 2))
         (i32.store (i32.const 20) {code}) (i32.store (i32.const 24) {len})
         (i32.store (i32.const 28) (i32.const 272)) (i32.store (i32.const 32) (i32.const 5))
         (i32.const 16)"
    )
}

/// `inspect` that adds 1 to the counter named like the message: a state error N rejects with
/// `eN`, a count past 3 with `over`, else it passes.
fn counting() -> String {
    format!(
        "(call $add (local.get $name) (local.get $name_len) (i64.const 1) (i32.const 64))
         (if (i32.load8_u (i32.const 64))
           (then (return {})))
         (if (i64.gt_s (i64.load (i32.const 72)) (i64.const 3))
           (then (return {})))
         {INSPECT_PASS}",
        reject(
            "(i32.add (i32.const 256) (i32.shl (i32.load8_u (i32.const 72)) (i32.const 1)))",
            "(i32.const 2)"
        ),
        reject("(i32.const 280)", "(i32.const 4)"),
    )
}

/// `inspect` that stores the body under the message's name: a state error N rejects with `eN`.
fn storing() -> String {
    format!(
        "(call $set (local.get $name) (local.get $name_len) (local.get $body) (local.get $body_len)
           (i32.const 64))
         (if (i32.load8_u (i32.const 64))
           (then (return {})))
         {INSPECT_PASS}",
        reject(
            "(i32.add (i32.const 256) (i32.shl (i32.load8_u (i32.const 68)) (i32.const 1)))",
            "(i32.const 2)"
        ),
    )
}

fn bytes(inspect: &str) -> Vec<u8> {
    airlock_tests::wat_hook_importing(STATE, CONFIGURE_OK, inspect, DATA)
}

fn hook_on(engine: &HookEngine, name: &str, inspect: &str, limits: HookLimits) -> Hook {
    let options = HookOptions::default().with_name(name).with_limits(limits);
    Hook::load(engine, &bytes(inspect), options).unwrap()
}

fn hook(name: &str, inspect: &str, limits: HookLimits) -> Hook {
    hook_on(engine(), name, inspect, limits)
}

fn line(window: &str, name: &str, body: &str) -> String {
    format!(
        r#"{{"kind":"event","name":"{name}","source":{{"window":"{window}"}},"payload":{body}}}"#
    )
}

fn code(gateway: &Gateway, window: &str, name: &str, body: &str) -> String {
    match send(gateway, &line(window, name, body)).outcome {
        Ok(_) => "pass".to_owned(),
        Err(rejection) => rejection.code,
    }
}

#[test]
fn a_counter_counts_across_fresh_instances_per_window() {
    let gateway = echo_gateway(hook("state-count", &counting(), HookLimits::default()));
    let codes: Vec<String> = (0..4).map(|_| code(&gateway, "main", "a", "1")).collect();
    assert_eq!(codes, ["pass", "pass", "pass", "over"]);
    assert_eq!(
        code(&gateway, "aux", "a", "1"),
        "pass",
        "another window counts apart"
    );
}

#[test]
fn hooks_of_other_names_cannot_reach_each_other_s_keys() {
    let one = echo_gateway(hook("state-one", &counting(), HookLimits::default()));
    let two = echo_gateway(hook("state-two", &counting(), HookLimits::default()));
    for _ in 0..4 {
        code(&one, "main", "a", "1");
    }
    assert_eq!(code(&one, "main", "a", "1"), "over");
    assert_eq!(code(&two, "main", "a", "1"), "pass");
}

#[test]
fn state_belongs_to_the_hook_s_name_and_survives_a_reload_to_a_new_digest() {
    let gateway = echo_gateway(hook("state-reload", &counting(), HookLimits::default()));
    for _ in 0..3 {
        assert_eq!(code(&gateway, "main", "a", "1"), "pass");
    }
    let before = gateway.hook().digest().to_owned();
    // Other bytes (an extra data segment), same name (the reload keeps the options).
    let new = airlock_tests::wat_hook_importing(
        STATE,
        CONFIGURE_OK,
        &counting(),
        &format!(r#"{DATA} (data (i32.const 512) "v2")"#),
    );
    gateway.reload(&new).unwrap();
    assert_ne!(gateway.hook().digest(), before);
    assert_eq!(
        code(&gateway, "main", "a", "1"),
        "over",
        "the count went on"
    );
}

#[test]
fn state_calls_while_configuring_fail_with_no_message() {
    // `configure` adds to a counter and traps unless the host said no-message (error 0).
    let configure = "(call $add (i32.const 256) (i32.const 1) (i64.const 1) (i32.const 64))
        (if (i32.or (i32.ne (i32.load8_u (i32.const 64)) (i32.const 1))
                    (i32.ne (i32.load8_u (i32.const 72)) (i32.const 0)))
          (then unreachable))
        (i32.store8 (i32.const 0) (i32.const 0)) (i32.const 0)";
    let bytes = airlock_tests::wat_hook_importing(STATE, configure, INSPECT_PASS, DATA);
    let options = HookOptions::default().with_name("state-configure");
    let hook = Hook::load(engine(), &bytes, options).unwrap();
    assert_eq!(
        send(&echo_gateway(hook), &line("main", "a", "1")).decision,
        Decision::Pass
    );
}

#[test]
fn state_key_limit_obeyed() {
    let limits = HookLimits::default().with_state_key_bytes(4);
    let gateway = echo_gateway(hook("state-key-ok", &counting(), limits));
    assert_eq!(code(&gateway, "main", "abcd", "1"), "pass");
}

#[test]
fn state_key_limit_crossed_is_key_too_long() {
    let limits = HookLimits::default().with_state_key_bytes(4);
    let gateway = echo_gateway(hook("state-key-long", &counting(), limits));
    assert_eq!(code(&gateway, "main", "abcde", "1"), "e1");
}

#[test]
fn state_key_count_limit_obeyed() {
    let limits = HookLimits::default().with_state_keys(2);
    let gateway = echo_gateway(hook("state-keys-ok", &counting(), limits));
    assert_eq!(code(&gateway, "main", "a", "1"), "pass");
    assert_eq!(code(&gateway, "aux", "a", "1"), "pass");
    assert_eq!(
        code(&gateway, "main", "a", "1"),
        "pass",
        "a key it has is not new"
    );
    assert_eq!(engine().state().keys("state-keys-ok"), 2);
}

#[test]
fn state_key_count_limit_crossed_is_too_many_keys_in_any_window() {
    let limits = HookLimits::default().with_state_keys(2);
    let gateway = echo_gateway(hook("state-keys-over", &counting(), limits));
    assert_eq!(code(&gateway, "main", "a", "1"), "pass");
    assert_eq!(code(&gateway, "main", "b", "1"), "pass");
    assert_eq!(code(&gateway, "main", "c", "1"), "e2");
    assert_eq!(
        code(&gateway, "aux", "a", "1"),
        "e2",
        "the limit is the hook's, over windows"
    );
}

#[test]
fn state_value_limit_obeyed() {
    let limits = HookLimits::default().with_state_value_bytes(8);
    let gateway = echo_gateway(hook("state-value-ok", &storing(), limits));
    assert_eq!(code(&gateway, "main", "v", "12345678"), "pass");
}

#[test]
fn state_value_limit_crossed_is_value_too_large() {
    let limits = HookLimits::default().with_state_value_bytes(8);
    let gateway = echo_gateway(hook("state-value-big", &storing(), limits));
    assert_eq!(code(&gateway, "main", "v", "123456789"), "e3");
}

#[test]
fn a_key_holding_a_counter_is_not_a_value() {
    let count = echo_gateway(hook("state-kinds", &counting(), HookLimits::default()));
    assert_eq!(code(&count, "main", "k", "1"), "pass");
    let store = echo_gateway(hook("state-kinds", &storing(), HookLimits::default()));
    assert_eq!(code(&store, "main", "k", "1"), "e4");
}

/// Sends `per_task` `fs_write`s from each of `tasks` tasks, spread over `windows` windows, and
/// counts what passed per window.
fn hammer(
    gateway: &Arc<Gateway>,
    tasks: usize,
    per_task: usize,
    windows: usize,
) -> HashMap<String, usize> {
    airlock_tests::block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|task| {
                let gateway = gateway.clone();
                tokio::spawn(async move {
                    let mut passed = HashMap::<String, usize>::new();
                    for n in 0..per_task {
                        let window = format!("w{}", (task + n) % windows);
                        let request = Request::command(
                            "fs_write",
                            &serde_json::json!({ "path": "a", "contents": "x" }),
                        );
                        let source = Source::new(&window, &window, "tauri://localhost");
                        let reply = gateway.handle(source, request).await;
                        match reply.outcome {
                            Ok(_) => *passed.entry(window).or_default() += 1,
                            Err(rejection) => assert_eq!(rejection.code, "rate-limited"),
                        }
                    }
                    passed
                })
            })
            .collect();
        let mut passed = HashMap::new();
        for handle in handles {
            for (window, n) in handle.await.unwrap() {
                *passed.entry(window).or_default() += n;
            }
        }
        passed
    })
}

#[test]
fn the_rate_limit_hook_holds_its_limit_per_window_with_fresh_instances_under_concurrent_load() {
    // An engine of its own, whose state clock stands still until moved.
    let engine = HookEngine::new(Default::default()).unwrap();
    let clock = Arc::new(ManualClock::at(0));
    engine.state().set_clock(clock.clone());
    let options = HookOptions::default()
        .with_name("rate-limit")
        .with_mode(InstanceMode::Fresh)
        .with_config(r#"{"per_second": 10, "burst": 5, "names": ["fs_write"]}"#);
    let hook = Hook::load(&engine, &built_hook("rate-limit", "rust"), options).unwrap();
    let gateway = Arc::new(echo_gateway(hook));

    // 16 tasks, 4000 messages, 4 windows: exactly the burst passes in each.
    let passed = hammer(&gateway, 16, 250, 4);
    assert_eq!(passed.len(), 4, "{passed:?}");
    for (window, n) in &passed {
        assert_eq!(*n, 5, "window {window}");
    }
    // Half a second later, 5 more tokens in each window; the bucket holds at most 5.
    clock.advance(500);
    let passed = hammer(&gateway, 16, 250, 4);
    assert!(passed.values().all(|&n| n == 5), "{passed:?}");
    clock.advance(100);
    let passed = hammer(&gateway, 8, 100, 4);
    assert!(passed.values().all(|&n| n == 1), "{passed:?}");
}
