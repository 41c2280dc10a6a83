//! The gateway: request validation and its limits, replacements, and the rule that every
//! message goes through the hook.

use airlock::{Decision, GatewayLimits, Hook, HookOptions, SealConfig};
use airlock_tests::{CONFIGURE_OK, INSPECT_PASS, delivered, echo_router, engine, send, wat_hook};
use serde_json::json;

fn gateway_with(inspect: &str, extra: &str, limits: GatewayLimits) -> airlock::Gateway {
    let hook = Hook::load(
        engine(),
        &wat_hook(CONFIGURE_OK, inspect, extra),
        HookOptions::default(),
    )
    .unwrap();
    airlock::Gateway::with_config(hook, echo_router(), limits, SealConfig::default()).unwrap()
}

fn passing(limits: GatewayLimits) -> airlock::Gateway {
    gateway_with(INSPECT_PASS, "", limits)
}

/// `inspect` that rejects every message with code `denied`, reason `no entry`.
const INSPECT_REJECT: &str = "(i32.store8 (i32.const 16) (i32.const 2))
    (i32.store (i32.const 20) (i32.const 256)) (i32.store (i32.const 24) (i32.const 6))
    (i32.store (i32.const 28) (i32.const 272)) (i32.store (i32.const 32) (i32.const 8))
    (i32.const 16)";
const REJECT_DATA: &str = r#"(data (i32.const 256) "denied") (data (i32.const 272) "no entry")"#;

/// `inspect` that renames the message to the `len`-byte string at offset 256.
fn inspect_rename(len: usize) -> String {
    format!(
        "(i32.store8 (i32.const 16) (i32.const 1))
         (i32.store8 (i32.const 20) (i32.const 1))
         (i32.store (i32.const 24) (i32.const 256)) (i32.store (i32.const 28) (i32.const {len}))
         (i32.store8 (i32.const 32) (i32.const 0)) (i32.store8 (i32.const 44) (i32.const 0))
         (i32.const 16)"
    )
}

/// `inspect` that replaces the body with the `len`-byte JSON text at offset 256.
fn inspect_rebody(len: usize) -> String {
    format!(
        "(i32.store8 (i32.const 16) (i32.const 1))
         (i32.store8 (i32.const 20) (i32.const 0)) (i32.store8 (i32.const 32) (i32.const 0))
         (i32.store8 (i32.const 44) (i32.const 1)) (i32.store8 (i32.const 48) (i32.const 0))
         (i32.store (i32.const 52) (i32.const 256)) (i32.store (i32.const 56) (i32.const {len}))
         (i32.const 16)"
    )
}

fn event(name: &str, payload: serde_json::Value) -> String {
    json!({"kind": "event", "name": name, "payload": payload}).to_string()
}

#[test]
fn message_size_limit_obeyed() {
    let limits = GatewayLimits::default().with_max_message_bytes(1000);
    let gateway = passing(limits);
    // name (1) + body: a JSON string of 999 bytes with its quotes.
    let line = event("e", json!("x".repeat(997)));
    assert_eq!(send(&gateway, &line).decision, Decision::Pass);
}

#[test]
fn message_size_limit_crossed_rejects_message() {
    let limits = GatewayLimits::default().with_max_message_bytes(1000);
    let gateway = passing(limits);
    let reply = send(&gateway, &event("e", json!("x".repeat(998))));
    assert_eq!(delivered(&reply), Err("too-large".into()));
    assert!(reply.hook_digest.is_none(), "the hook never saw it");
}

#[test]
fn name_length_limit_obeyed() {
    let gateway = passing(GatewayLimits::default());
    assert_eq!(
        send(&gateway, &event(&"n".repeat(256), json!(1))).decision,
        Decision::Pass
    );
}

#[test]
fn name_length_limit_crossed_rejects_message() {
    let gateway = passing(GatewayLimits::default());
    let reply = send(&gateway, &event(&"n".repeat(257), json!(1)));
    assert_eq!(delivered(&reply), Err("invalid-name".into()));
}

#[test]
fn header_count_limit_obeyed() {
    let gateway = passing(GatewayLimits::default());
    let headers: serde_json::Map<_, _> = (0..64).map(|i| (format!("h{i}"), json!("v"))).collect();
    let line = json!({"kind": "event", "name": "e", "headers": headers}).to_string();
    assert_eq!(send(&gateway, &line).decision, Decision::Pass);
}

#[test]
fn header_count_limit_crossed_rejects_message() {
    let gateway = passing(GatewayLimits::default());
    let headers: serde_json::Map<_, _> = (0..65).map(|i| (format!("h{i}"), json!("v"))).collect();
    let line = json!({"kind": "event", "name": "e", "headers": headers}).to_string();
    assert_eq!(
        delivered(&send(&gateway, &line)),
        Err("invalid-header".into())
    );
}

#[test]
fn malformed_requests_are_refused_with_a_code_naming_the_problem() {
    let gateway = passing(GatewayLimits::default());
    let cases = [
        (json!({"kind": "command", "name": ""}), "invalid-name"),
        (
            json!({"kind": "command", "name": "fs read"}),
            "invalid-name",
        ),
        (
            json!({"kind": "command", "name": "plugin:fs read"}),
            "invalid-name",
        ),
        (json!({"kind": "command", "name": "ｆｓ"}), "invalid-name"),
        (
            json!({"kind": "command", "name": "x", "payload": [1]}),
            "invalid-body",
        ),
        (
            json!({"kind": "command", "name": "x", "payload": "s"}),
            "invalid-body",
        ),
        (
            json!({"kind": "event", "name": "e", "headers": {"bad name": "v"}}),
            "invalid-header",
        ),
        (
            json!({"kind": "event", "name": "e", "headers": {"x": "a\r\nb"}}),
            "invalid-header",
        ),
    ];
    for (line, code) in cases {
        let reply = send(&gateway, &line.to_string());
        assert_eq!(delivered(&reply), Err(code.into()), "{line}");
    }
}

#[test]
fn tauri_plugin_commands_and_null_args_reach_the_core() {
    let gateway = passing(GatewayLimits::default());
    let line = json!({"kind": "command", "name": "plugin:fs|read_file", "payload": null});
    let seen = delivered(&send(&gateway, &line.to_string())).expect("delivered");
    assert_eq!(seen["name"], "plugin:fs|read_file");
    assert_eq!(seen["payload"], serde_json::Value::Null);
}

fn nested(depth: usize) -> String {
    let deep = format!(
        "{}{}",
        r#"{"a":["#.repeat(depth / 2),
        "]}".repeat(depth / 2)
    );
    format!(r#"{{"kind":"event","name":"e","payload":{deep}}}"#)
}

#[test]
fn json_depth_limit_obeyed() {
    let gateway = passing(GatewayLimits::default());
    assert_eq!(send(&gateway, &nested(100)).decision, Decision::Pass);
}

#[test]
fn json_depth_limit_crossed_rejects_message() {
    let gateway = passing(GatewayLimits::default());
    let reply = send(&gateway, &nested(102));
    assert_eq!(delivered(&reply), Err("invalid-body".into()));
    assert!(reply.outcome.unwrap_err().reason.contains("100"));
    // Brackets inside strings do not count.
    let line = json!({"kind": "event", "name": "e", "payload": "[".repeat(1000)}).to_string();
    assert_eq!(send(&gateway, &line).decision, Decision::Pass);
}

#[test]
fn names_with_tauri_punctuation_are_accepted() {
    let gateway = passing(GatewayLimits::default());
    for name in ["plugin:fs/read_file", "a-b_c:d/e", "X9"] {
        assert_eq!(
            send(&gateway, &event(name, json!(1))).decision,
            Decision::Pass,
            "{name}"
        );
    }
}

#[test]
fn every_message_goes_through_the_hook_even_with_an_empty_body() {
    let gateway = gateway_with(INSPECT_REJECT, REJECT_DATA, GatewayLimits::default());
    for line in [
        r#"{"kind":"command","name":"fs_read"}"#,
        r#"{"kind":"command","name":"fs_read","payload":{}}"#,
        r#"{"kind":"event","name":"e"}"#,
        r#"{"kind":"channel","name":"c","bytes":""}"#,
    ] {
        let reply = send(&gateway, line);
        let rejection = reply.outcome.unwrap_err();
        assert_eq!(
            (rejection.code.as_str(), rejection.reason.as_str()),
            ("denied", "no entry")
        );
    }
}

#[test]
fn a_replace_changes_the_name_but_never_the_source() {
    let extra = r#"(data (i32.const 256) "renamed")"#;
    let gateway = gateway_with(&inspect_rename(7), extra, GatewayLimits::default());
    let line = r#"{"kind":"event","name":"e","source":{"window":"w2","webview":"v2","origin":"https://app.example"},"payload":1}"#;
    let reply = send(&gateway, line);
    assert_eq!(reply.decision, Decision::Replace);
    let got = delivered(&reply).unwrap();
    assert_eq!(got["name"], "renamed");
    assert_eq!(
        got["source"],
        json!({"window": "w2", "webview": "v2", "origin": "https://app.example"})
    );
}

#[test]
fn a_replace_with_an_invalid_name_is_a_hook_output_rejection() {
    let extra = r#"(data (i32.const 256) "bad name")"#;
    let gateway = gateway_with(&inspect_rename(8), extra, GatewayLimits::default());
    let reply = send(&gateway, &event("e", json!(1)));
    assert_eq!(reply.decision, Decision::Reject);
    assert_eq!(delivered(&reply), Err("hook-output".into()));
}

#[test]
fn a_replace_with_a_body_that_is_not_json_is_a_hook_output_rejection() {
    let extra = r#"(data (i32.const 256) "{not json")"#;
    let gateway = gateway_with(&inspect_rebody(9), extra, GatewayLimits::default());
    let reply = send(&gateway, &event("e", json!(1)));
    assert_eq!(delivered(&reply), Err("hook-output".into()));
}

#[test]
fn a_replace_within_the_message_limit_is_delivered() {
    // name "e" and body "[1,2,3]": 8 bytes.
    let limits = GatewayLimits::default().with_max_message_bytes(8);
    let extra = r#"(data (i32.const 256) "[1,2,3]")"#;
    let gateway = gateway_with(&inspect_rebody(7), extra, limits);
    let reply = send(&gateway, &event("e", json!(1)));
    assert_eq!(delivered(&reply).unwrap()["payload"], json!([1, 2, 3]));
}

#[test]
fn a_replace_over_the_message_limit_is_a_hook_output_rejection() {
    let limits = GatewayLimits::default().with_max_message_bytes(7);
    let extra = r#"(data (i32.const 256) "[1,2,3]")"#;
    let gateway = gateway_with(&inspect_rebody(7), extra, limits);
    let reply = send(&gateway, &event("e", json!(1)));
    assert_eq!(delivered(&reply), Err("hook-output".into()));
}

#[test]
fn each_reply_records_the_hook_digest_and_its_cost() {
    let gateway = passing(GatewayLimits::default());
    let reply = send(&gateway, &event("e", json!(1)));
    let digest = reply.hook_digest.expect("digest");
    assert_eq!(digest.len(), 64);
    assert_eq!(&*digest, gateway.hook().digest());
    assert!(reply.hook_time.is_some());
}
