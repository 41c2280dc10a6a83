//! The example hooks through the full pipeline: gateway, hook, seal, core.

use airlock::Decision;
use airlock_tests::{delivered, echo_gateway, load_built, send};
use serde_json::{Value, json};

fn fs_read(path: &Value) -> String {
    json!({"kind": "command", "name": "fs_read",
           "source": {"window": "main", "webview": "main", "origin": "tauri://localhost"},
           "headers": {}, "payload": {"path": path}})
    .to_string()
}

#[test]
fn path_guard_passes_paths_inside_the_root_with_the_payload_unchanged() {
    let gateway = echo_gateway(load_built("path-guard", "rust", "{}"));
    for path in [
        "notes.txt",
        "./notes.txt",
        "docs/2024/report.final.v2.pdf",
        "..hidden",
        "file..txt",
        ".config/app.toml",
        "/app/data",
        "/app/data/notes.txt",
        "sub/../notes.txt",
        "/app/other/../data/x",
        "a//b/./c",
        "",
        "résumé 100%.txt",
        "notes:2024.txt",
        "...txt",
        "日本語/メモ.txt",
    ] {
        let line = fs_read(&json!(path));
        let reply = send(&gateway, &line);
        assert_eq!(
            reply.decision,
            Decision::Pass,
            "{path:?}: {:?}",
            reply.outcome
        );
        let got = delivered(&reply).expect("delivered");
        let sent: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(got, sent, "{path:?} must be delivered unchanged");
    }
}

#[test]
fn path_guard_rejects_every_escape_with_path_escape() {
    let gateway = echo_gateway(load_built("path-guard", "rust", "{}"));
    let escapes = [
        json!("../secret"),
        json!("../../etc/passwd"),
        json!("a/../../b"),
        json!("./.././x"),
        json!("../data/notes.txt"),
        json!("/etc/passwd"),
        json!("/app/database/x"),
        json!("/app/data/../../etc"),
        json!("/app/data/.."),
        json!("/"),
        json!("//host/share/x"),
        json!("a\\..\\..\\b"),
        json!("..%2f..%2fetc"),
        json!("%2e%2e/x"),
        json!("%252e%252e%252fx"),
        json!("..%c0%afetc"),
        json!("%u002e%u002e/x"),
        json!("\u{ff0e}\u{ff0e}/x"),
        json!("..\u{2215}x"),
        json!("\u{2025}/x"),
        json!("notes.txt\u{0000}.png"),
        json!("a\nb"),
        json!("x\u{202e}txt.exe"),
        json!("..."),
        json!(".. /x"),
        json!("~/.ssh/id_rsa"),
        json!("C:/Windows/win.ini"),
        json!("file:///etc/passwd"),
        json!("file:/etc/passwd"),
        json!("smb://host/share"),
        json!("..;/etc/passwd"),
        json!("notes.txt/../../../etc/passwd"),
        json!("/app/data/sub/../../data/x"),
        json!(" ../x"),
        json!(null),
        json!(7),
        json!(["..", "etc"]),
        json!({"path": "x"}),
    ];
    for path in escapes {
        let reply = send(&gateway, &fs_read(&path));
        assert_eq!(delivered(&reply), Err("path-escape".into()), "{path}");
    }
}

#[test]
fn path_guard_rejects_a_missing_path_a_duplicate_path_and_a_bytes_body() {
    let gateway = echo_gateway(load_built("path-guard", "rust", "{}"));
    for line in [
        r#"{"kind":"command","name":"fs_write","payload":{"data":"x"}}"#,
        r#"{"kind":"command","name":"fs_list"}"#,
        r#"{"kind":"command","name":"fs_read","payload":{"path":"ok.txt","path":"../../x"}}"#,
        r#"{"kind":"command","name":"fs_read","payload":{"pa\u0074h":"../x"}}"#,
        r#"{"kind":"command","name":"fs_read","bytes":"Li4vLi4v"}"#,
    ] {
        assert_eq!(
            delivered(&send(&gateway, line)),
            Err("path-escape".into()),
            "{line}"
        );
    }
}

#[test]
fn path_guard_leaves_other_commands_events_and_channels_alone() {
    let gateway = echo_gateway(load_built("path-guard", "rust", "{}"));
    for line in [
        r#"{"kind":"command","name":"open_url","payload":{"path":"../../etc"}}"#,
        r#"{"kind":"event","name":"fs_read","payload":{"path":"../../etc"}}"#,
        r#"{"kind":"channel","name":"fs_read","bytes":"AAE="}"#,
    ] {
        assert_eq!(send(&gateway, line).decision, Decision::Pass, "{line}");
    }
}

#[test]
fn path_guard_takes_its_commands_and_root_from_config() {
    let config = r#"{"commands": ["read_file"], "root": "/srv/files/"}"#;
    let gateway = echo_gateway(load_built("path-guard", "rust", config));
    let line = |name: &str, path: &str| {
        json!({"kind": "command", "name": name, "payload": {"path": path}}).to_string()
    };
    assert_eq!(
        send(&gateway, &line("read_file", "/srv/files/a")).decision,
        Decision::Pass
    );
    assert_eq!(
        send(&gateway, &line("read_file", "a/b")).decision,
        Decision::Pass
    );
    assert_eq!(
        send(&gateway, &line("read_file", "/app/data/a")).decision,
        Decision::Reject
    );
    assert_eq!(
        send(&gateway, &line("fs_read", "../../x")).decision,
        Decision::Pass
    );
}

#[test]
fn path_guard_refuses_a_relative_root_or_an_unknown_config_field_at_load() {
    for config in [
        r#"{"root": "app/data"}"#,
        r#"{"root": "/app/../etc"}"#,
        r#"{"rot": "/x"}"#,
    ] {
        let options = airlock::HookOptions::default().with_config(config);
        let bytes = airlock_tests::built_hook("path-guard", "rust");
        let error = airlock::Hook::load(airlock_tests::engine(), &bytes, options).unwrap_err();
        assert!(
            matches!(error, airlock::HookError::ConfigRefused(_)),
            "{config}: {error}"
        );
    }
}

#[test]
fn redact_removes_configured_fields_at_any_depth_and_keeps_the_rest() {
    let gateway = echo_gateway(load_built("redact", "rust", "{}"));
    let line = r#"{"kind":"event","name":"login","payload":{"user":"ada","password":"hunter2","profile":{"Token":"t","tags":[{"secret":1,"keep":2},[{"password":{"deep":true}}]]},"n":123456789012345678901234567890,"z":0.1}}"#;
    let reply = send(&gateway, line);
    assert_eq!(reply.decision, Decision::Replace);
    let got = delivered(&reply).unwrap();
    assert_eq!(
        got["payload"],
        json!({"user": "ada", "profile": {"tags": [{"keep": 2}, [{}]]},
               "n": 123456789012345678901234567890_f64, "z": 0.1})
    );
    let raw = match &reply.outcome {
        Ok(airlock::Response::Json(raw)) => raw.get().to_owned(),
        other => panic!("{other:?}"),
    };
    assert!(
        raw.contains("123456789012345678901234567890"),
        "numbers keep their digits: {raw}"
    );
    assert!(
        raw.find("\"user\"") < raw.find("\"profile\""),
        "key order is kept: {raw}"
    );
}

#[test]
fn redact_passes_events_without_secrets_and_all_commands_untouched() {
    let gateway = echo_gateway(load_built("redact", "rust", "{}"));
    for line in [
        r#"{"kind":"event","name":"saved","payload":{"user":"ada","passwords_changed":2}}"#,
        r#"{"kind":"event","name":"saved","payload":["password","token"]}"#,
        r#"{"kind":"command","name":"login","payload":{"password":"hunter2"}}"#,
        r#"{"kind":"event","name":"blob","bytes":"cGFzc3dvcmQ="}"#,
    ] {
        let reply = send(&gateway, line);
        assert_eq!(reply.decision, Decision::Pass, "{line}");
        let sent: Value = serde_json::from_str(line).unwrap();
        let got = delivered(&reply).unwrap();
        assert_eq!(got["payload"], sent["payload"], "{line}");
        assert_eq!(got["bytes"], sent["bytes"], "{line}");
    }
}

#[test]
fn redact_uses_the_configured_field_names() {
    let config = r#"{"fields": ["ssn"], "case_sensitive": true}"#;
    let gateway = echo_gateway(load_built("redact", "rust", config));
    let reply = send(
        &gateway,
        r#"{"kind":"event","name":"e","payload":{"ssn":"1","SSN":"2","password":"3"}}"#,
    );
    assert_eq!(
        delivered(&reply).unwrap()["payload"],
        json!({"SSN": "2", "password": "3"})
    );
}

#[test]
fn origin_allow_rejects_origins_outside_the_list() {
    let config = r#"{"origins": ["tauri://localhost", "http://localhost:1420"]}"#;
    let gateway = echo_gateway(load_built("origin-allow", "rust", config));
    let line = |origin: &str| {
        json!({"kind": "event", "name": "e", "source": {"origin": origin}, "payload": 1})
            .to_string()
    };
    for origin in [
        "tauri://localhost",
        "http://localhost:1420",
        "HTTP://LOCALHOST:1420/",
    ] {
        assert_eq!(
            send(&gateway, &line(origin)).decision,
            Decision::Pass,
            "{origin}"
        );
    }
    for origin in [
        "https://evil.example",
        "http://localhost:1421",
        "null",
        "",
        "tauri://localhost.evil",
    ] {
        assert_eq!(
            delivered(&send(&gateway, &line(origin))),
            Err("origin-denied".into()),
            "{origin}"
        );
    }
}

/// The quick start's hook (`host/hooks/pass-all.wasm`, shipped in the library's package) is the
/// pass-all WAT made into a component; `BLESS=1` writes it again after the WAT changes.
#[test]
fn the_packaged_pass_all_hook_is_the_pass_all_wat_as_a_component_and_passes() {
    let built = airlock::component::from_wat(airlock::component::PASS_ALL_WAT).unwrap();
    let path = airlock_tests::root().join("host/hooks/pass-all.wasm");
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &built).unwrap();
    }
    let shipped = std::fs::read(&path).unwrap();
    assert!(
        shipped == built,
        "{} is stale: run the test with BLESS=1",
        path.display()
    );
    let hook = airlock::Hook::load(
        airlock_tests::engine(),
        &shipped,
        airlock::HookOptions::default(),
    )
    .unwrap();
    let line = r#"{"kind":"event","name":"ping","payload":{"a":1}}"#;
    assert_eq!(send(&echo_gateway(hook), line).decision, Decision::Pass);
}
