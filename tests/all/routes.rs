//! Routing: a chain of its own per window, webview, origin or name prefix, the first matching
//! route winning and the default chain taking the rest.

use airlock::{Gateway, Hook, HookOptions, Route, SealConfig};
use airlock_tests::{CONFIGURE_OK, INSPECT_PASS, delivered, echo_router, engine, send, wat_hook};

/// `inspect` that rejects every message with the code at offset 256 (`len` bytes).
fn inspect_reject(len: usize) -> String {
    format!(
        "(i32.store8 (i32.const 16) (i32.const 2))
         (i32.store (i32.const 20) (i32.const 256)) (i32.store (i32.const 24) (i32.const {len}))
         (i32.store (i32.const 28) (i32.const 256)) (i32.store (i32.const 32) (i32.const {len}))
         (i32.const 16)"
    )
}

/// A hook that rejects everything with `code` (also its reason), so a reply tells which chain
/// decided.
fn rejecting(code: &str) -> Hook {
    let data = format!(r#"(data (i32.const 256) "{code}")"#);
    let bytes = wat_hook(CONFIGURE_OK, &inspect_reject(code.len()), &data);
    Hook::load(engine(), &bytes, HookOptions::default()).unwrap()
}

fn passing() -> Hook {
    Hook::load(
        engine(),
        &wat_hook(CONFIGURE_OK, INSPECT_PASS, ""),
        HookOptions::default(),
    )
    .unwrap()
}

fn line(name: &str, window: &str, webview: &str, origin: &str) -> String {
    format!(
        r#"{{"kind":"command","name":"{name}","source":{{"window":"{window}","webview":"{webview}","origin":"{origin}"}},"payload":{{}}}}"#
    )
}

/// The code of the rejection, or `passed`.
fn verdict(gateway: &Gateway, name: &str, window: &str, webview: &str, origin: &str) -> String {
    let reply = send(gateway, &line(name, window, webview, origin));
    match delivered(&reply) {
        Ok(_) => "passed".to_owned(),
        Err(code) => code,
    }
}

fn gateway(default: Hook) -> Gateway {
    Gateway::with_config(
        default,
        echo_router(),
        Default::default(),
        SealConfig::default(),
    )
    .unwrap()
}

#[test]
fn each_message_goes_through_the_first_route_it_matches_and_the_rest_through_the_default_chain() {
    let gateway = gateway(rejecting("default"))
        .route(Route::any().window("admin-*"), vec![rejecting("admin")])
        .route(
            Route::any()
                .origin("https://evil.example")
                .origin("http://x"),
            vec![rejecting("remote")],
        )
        .route(
            Route::any().prefix("plugin:fs:").prefix("fs_"),
            vec![passing()],
        )
        .route(Route::any().webview("side"), vec![rejecting("side")]);
    let local = "tauri://localhost";
    assert_eq!(verdict(&gateway, "open", "main", "main", local), "default");
    assert_eq!(verdict(&gateway, "open", "admin-2", "main", local), "admin");
    // The first match wins: an admin window's fs command takes the admin route.
    assert_eq!(
        verdict(&gateway, "fs_read", "admin-2", "main", local),
        "admin"
    );
    assert_eq!(
        verdict(&gateway, "fs_read", "main", "main", local),
        "passed"
    );
    assert_eq!(
        verdict(&gateway, "plugin:fs:read", "main", "main", local),
        "passed"
    );
    assert_eq!(
        verdict(&gateway, "fs_read", "main", "main", "http://x"),
        "remote"
    );
    assert_eq!(verdict(&gateway, "open", "main", "side", local), "side");
    // Near misses take the default chain.
    assert_eq!(verdict(&gateway, "open", "admin", "main", local), "default");
    assert_eq!(
        verdict(&gateway, "plugin:fsx:read", "main", "main", local),
        "default"
    );
    assert_eq!(
        verdict(&gateway, "open", "main", "main", "http://x:80"),
        "default"
    );
}

#[test]
fn a_route_runs_its_hooks_as_a_chain_that_stops_at_the_first_rejection() {
    let gateway = gateway(passing()).route(
        Route::any().window("w"),
        vec![passing(), rejecting("second"), rejecting("third")],
    );
    assert_eq!(verdict(&gateway, "x", "w", "w", "o"), "second");
    assert_eq!(verdict(&gateway, "x", "v", "w", "o"), "passed");
    let routes: Vec<_> = gateway.routes().collect();
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].1.len(), 3);
}

#[test]
fn reloading_replaces_the_default_chain_and_leaves_the_routes_alone() {
    let gateway = gateway(rejecting("old")).route(Route::any().window("w"), vec![passing()]);
    assert_eq!(verdict(&gateway, "x", "main", "main", "o"), "old");
    let new = wat_hook(
        CONFIGURE_OK,
        &inspect_reject(3),
        r#"(data (i32.const 256) "new")"#,
    );
    gateway.reload(&new).unwrap();
    assert_eq!(verdict(&gateway, "x", "main", "main", "o"), "new");
    assert_eq!(verdict(&gateway, "x", "w", "w", "o"), "passed");
}

#[test]
#[should_panic(expected = "a route needs at least one hook")]
fn a_route_without_hooks_is_refused() {
    let _ = gateway(passing()).route(Route::any(), Vec::new());
}

/// `airlock inspect --hook DEFAULT --routes routes.json` in `dir`, reading `stdin`.
fn inspect_routes(
    dir: &std::path::Path,
    default_hook: &std::path::Path,
    stdin: &str,
) -> std::process::Output {
    let hook = default_hook.to_str().unwrap();
    let args = ["inspect", "--hook", hook, "--routes", "routes.json"];
    airlock_tests::run_airlock(&args, dir, stdin)
}

#[test]
fn inspect_takes_a_routes_file_with_hooks_and_configs_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = airlock_tests::root().join("target/hooks");
    std::fs::write(
        dir.path().join("strict.json"),
        r#"{"origins":["https://ok.example"]}"#,
    )
    .unwrap();
    let routes = serde_json::json!([
        { "window": "kiosk-*", "hooks": [
            { "hook": hooks.join("origin-allow.rust.wasm"), "config": "strict.json" } ] },
        { "prefix": ["fs_"], "hooks": [ hooks.join("path-guard.rust.wasm") ] }
    ]);
    std::fs::write(dir.path().join("routes.json"), routes.to_string()).unwrap();
    let message = |name: &str, window: &str, origin: &str| {
        format!(
            r#"{{"kind":"command","name":"{name}","source":{{"window":"{window}","origin":"{origin}"}},"payload":{{"path":"../x"}}}}"#
        )
    };
    let input = [
        // Default chain: origin-allow with its default config lets the app's own origin in.
        message("open", "main", "tauri://localhost"),
        // The kiosk route's config allows only https://ok.example.
        message("open", "kiosk-1", "tauri://localhost"),
        message("open", "kiosk-1", "https://ok.example"),
        // The fs_ route: path-guard.
        message("fs_read", "main", "tauri://localhost"),
    ]
    .join("\n");
    let default_hook = hooks.join("origin-allow.rust.wasm");
    let output = inspect_routes(dir.path(), &default_hook, &input);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let verdicts: Vec<(String, String)> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let code = v["code"].as_str().unwrap_or("").to_owned();
            (v["verdict"].as_str().unwrap().to_owned(), code)
        })
        .collect();
    let expected = [
        ("pass", ""),
        ("reject", "origin-denied"),
        ("pass", ""),
        ("reject", "path-escape"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(v, c)| (v.to_string(), c.to_string()))
        .collect();
    assert_eq!(verdicts, expected, "{stderr}");
}

#[test]
fn a_routes_file_that_is_wrong_is_refused_naming_the_file_and_the_route() {
    let dir = tempfile::tempdir().unwrap();
    let hook = airlock_tests::root().join("target/hooks/path-guard.rust.wasm");
    let cases = [
        (
            r#"[{"window":"a","hooks":[]}]"#.to_owned(),
            "route 0: \"hooks\" is empty",
        ),
        (
            r#"[{"windw":"a","hooks":["x.wasm"]}]"#.to_owned(),
            "is not a JSON array of routes",
        ),
        (
            r#"{"hooks":["x.wasm"]}"#.to_owned(),
            "is not a JSON array of routes",
        ),
        (r#"[{"hooks":["missing.wasm"]}]"#.to_owned(), "missing.wasm"),
        (
            format!(
                r#"[{{}},{{"hooks":[{{"hook":{:?},"config":"nope.json"}}]}}]"#,
                hook
            ),
            "is not a JSON array of routes",
        ),
        (
            format!(
                r#"[{{"hooks":[{:?}]}},{{"hooks":[{{"hook":{:?},"config":"nope.json"}}]}}]"#,
                hook, hook
            ),
            "route 1",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(dir.path().join("routes.json"), &text).unwrap();
        let output = inspect_routes(dir.path(), &hook, "");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{text}: {stderr}");
        assert!(stderr.contains("routes.json"), "{text}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{text}: expected {expected:?} in {stderr}"
        );
    }
}

#[test]
fn bench_and_fuzz_refuse_a_routes_file_they_would_not_use() {
    let hook = airlock_tests::root().join("target/hooks/path-guard.rust.wasm");
    for command in ["bench", "fuzz"] {
        let output = airlock_tests::run_airlock(
            &[
                command,
                "--hook",
                hook.to_str().unwrap(),
                "--routes",
                "r.json",
            ],
            &airlock_tests::root(),
            "",
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{command}: {stderr}");
        assert!(
            stderr.contains("takes no --routes (got r.json)"),
            "{command}: {stderr}"
        );
    }
}

/// `inspect --routes` with one route whose hook carries `pin`, on a `fs_read` message.
fn inspect_with_a_pinned_route(pin: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let hooks = airlock_tests::root().join("target/hooks");
    let routes = serde_json::json!([
        { "prefix": "fs_", "hooks": [ { "hook": hooks.join("path-guard.rust.wasm"), "pin": pin } ] }
    ]);
    std::fs::write(dir.path().join("routes.json"), routes.to_string()).unwrap();
    let default_hook = hooks.join("origin-allow.rust.wasm");
    inspect_routes(
        dir.path(),
        &default_hook,
        r#"{"kind":"command","name":"fs_read","payload":{"path":"../x"}}"#,
    )
}

fn digest_of(file: &str) -> String {
    let bytes = std::fs::read(airlock_tests::root().join("target/hooks").join(file)).unwrap();
    Hook::load(
        airlock_tests::engine(),
        &bytes,
        airlock::HookOptions::default(),
    )
    .unwrap()
    .digest()
    .to_owned()
}

#[test]
fn a_routed_hook_matching_its_pin_loads_and_decides() {
    let output = inspect_with_a_pinned_route(&digest_of("path-guard.rust.wasm"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("path-escape"),
        "the pinned route's path-guard decided: {stderr}"
    );
}

#[test]
fn a_routed_hook_with_another_pin_is_refused_naming_both_digests() {
    let pinned = digest_of("origin-allow.rust.wasm");
    let output = inspect_with_a_pinned_route(&pinned);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for expected in [
        pinned.as_str(),
        &digest_of("path-guard.rust.wasm"),
        "route 0",
    ] {
        assert!(stderr.contains(expected), "{expected:?} in {stderr}");
    }
}

#[test]
fn a_routed_hook_with_a_malformed_pin_or_an_unknown_key_is_refused_naming_it() {
    let output = inspect_with_a_pinned_route("abc");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("\"abc\""), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let hook = airlock_tests::root().join("target/hooks/path-guard.rust.wasm");
    let text = format!(r#"[{{"hooks":[{{"hook":{hook:?},"pinn":"x"}}]}}]"#);
    std::fs::write(dir.path().join("routes.json"), &text).unwrap();
    let output = inspect_routes(dir.path(), &hook, "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("routes.json"), "{stderr}");
}
