//! The allowlist hook loaded through the host, and `airlock policy from-tauri` on Tauri apps'
//! capability files (fixtures in `tests/tauri-apps/`: several windows, globs, remote URLs, TOML,
//! the three capability file shapes, a `tauri.conf.json` that narrows the capabilities).

use airlock::{Hook, HookError, HookOptions};
use airlock_tests::{built_hook, echo_gateway, engine, root, run_airlock, send};
use serde_json::{Value, json};

/// `airlock policy from-tauri APP ARGS…`: the config written and the warnings.
fn from_tauri(app: &str, args: &[&str]) -> (Value, String) {
    let dir = root().join("tests/tauri-apps").join(app);
    let dir = dir.to_str().expect("UTF-8 path");
    let mut all = vec!["policy", "from-tauri", dir];
    all.extend_from_slice(args);
    let out = run_airlock(&all, &root(), "");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "from-tauri {app} failed: {stderr}");
    let config = serde_json::from_slice(&out.stdout).expect("the config is JSON");
    (config, stderr)
}

/// The rule written for a capability.
fn rule<'a>(config: &'a Value, capability: &str) -> &'a Value {
    let description = |r: &&Value| {
        r["description"]
            .as_str()
            .is_some_and(|d| d.starts_with(&format!("capability {capability:?}")))
    };
    config["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(description)
        .unwrap_or_else(|| panic!("no rule for {capability}: {config:#}"))
}

const LOCAL: [&str; 3] = [
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
];

#[test]
fn each_capability_grants_exactly_its_resolved_commands() {
    let (config, _) = from_tauri("multi", &[]);
    let main = rule(&config, "main");
    assert_eq!(main["windows"], json!(["main"]));
    assert_eq!(main["origins"], json!(LOCAL));
    // core:default → core:event:default + core:window:default; the app's own permissions by
    // name; a plugin's as plugin:NAME|cmd; an extended permission (shell, with a scope) too.
    assert_eq!(
        main["commands"],
        json!({
            "ghost_cmd": true,
            "plugin:fs|read_text_file": true,
            "plugin:shell|execute": true,
            "plugin:window|title": true,
            "read_notes": true,
        })
    );
    // Tauri's event commands become `emit` and `listen`, for every event name.
    assert_eq!(main["listen"], json!({"*": true}));
    assert_eq!(main.get("emit"), None);
    let editors = rule(&config, "editors");
    assert_eq!(editors["windows"], json!(["editor-*"]));
    assert_eq!(editors["commands"], json!({"save_note": true}));
    assert_eq!(editors["emit"], json!({"*": true}));
    let locked = rule(&config, "locked");
    assert_eq!(locked["webviews"], json!(["preview"]));
    assert_eq!(locked["commands"], json!({"save_note": false}));
}

#[test]
fn remote_urls_give_exact_origins_or_are_left_out_with_a_warning() {
    let (config, warnings) = from_tauri("multi", &[]);
    let docs = rule(&config, "docs");
    assert_eq!(docs["origins"], json!(["https://docs.example.com"]));
    assert_eq!(docs["commands"], json!({"ping": true}));
    assert!(
        warnings.contains("\"https://docs.example.com/help/*\" is limited to some paths"),
        "{warnings}"
    );
    let wild = rule(&config, "anything-remote");
    assert_eq!(wild["origins"], json!([]));
    assert!(
        warnings.contains("remote URL pattern \"https://*\" lets pages of any matching host"),
        "{warnings}"
    );
}

#[test]
fn risky_patterns_and_unregistered_or_unmentioned_commands_are_flagged() {
    let (_, warnings) = from_tauri("multi", &[]);
    for expected in [
        // A shell scope validator that accepts any argument.
        r#"shell argument validator "\\S+" that accepts almost anything"#,
        // A permission naming a command the app does not register.
        r#"names command "ghost_cmd", which the app does not register (generate_handler!)"#,
        // A registered command no capability mentions.
        r#"registered command(s) no capability mentions: "unused_cmd""#,
        // What cannot be expressed: a scope.
        "the scope given with \"shell:allow-execute\" is not checked by the allowlist",
    ] {
        assert!(
            warnings.contains(expected),
            "missing {expected:?} in:\n{warnings}"
        );
    }
    // generate_handler! was read through paths, comments and attributes.
    for registered in ["read_notes", "save_note", "ping"] {
        assert!(
            !warnings.contains(&format!(
                "\"{registered}\", which the app does not register"
            )),
            "{warnings}"
        );
    }
}

#[test]
fn what_cannot_be_resolved_is_said_and_grants_nothing() {
    let (config, warnings) = from_tauri("bare", &["--command", "greet", "--command", "wave"]);
    let default = rule(&config, "default");
    // w[0-9] is a glob class: left out, said.
    assert_eq!(default["windows"], json!(["main"]));
    assert!(
        warnings.contains("window pattern \"w[0-9]\" uses a character class"),
        "{warnings}"
    );
    // No acl-manifests.json: core:default cannot be resolved; the app's own permission files can.
    assert_eq!(default["commands"], json!({"greet": true}));
    assert!(
        warnings.contains("cannot resolve permission \"core:default\""),
        "{warnings}"
    );
    assert!(
        warnings.contains("cannot resolve permission \"deny-nothing-here\""),
        "{warnings}"
    );
    // build.devUrl is a local origin too.
    let mut origins = LOCAL.to_vec();
    origins.push("http://localhost:1420");
    assert_eq!(default["origins"], json!(origins));
    // tauri.conf.json enables `default` and an inline capability, not `unused`.
    assert_eq!(rule(&config, "inline")["windows"], json!(["help"]));
    assert!(config["rules"].as_array().unwrap().len() == 2, "{config:#}");
    assert!(warnings.contains("capability \"unused\""), "{warnings}");
    assert!(
        warnings.contains(r#"no capability mentions: "wave""#),
        "{warnings}"
    );
}

#[test]
fn the_generated_config_loads_and_gives_the_capabilities_verdicts() {
    let (config, _) = from_tauri("multi", &[]);
    let options = HookOptions::default().with_config(config.to_string());
    let hook = Hook::load(engine(), &built_hook("allowlist", "rust"), options).expect("loads");
    let gateway = echo_gateway(hook);
    let verdict = |window: &str, origin: &str, name: &str| {
        let line = json!({"kind": "command", "name": name, "payload": {},
                          "source": {"window": window, "webview": window, "origin": origin}});
        match send(&gateway, &line.to_string()).outcome {
            Ok(_) => "pass".to_owned(),
            Err(rejection) => rejection.code,
        }
    };
    let local = "tauri://localhost";
    assert_eq!(verdict("main", local, "read_notes"), "pass");
    assert_eq!(verdict("main", local, "save_note"), "not-allowed");
    assert_eq!(verdict("editor-1", local, "save_note"), "pass");
    assert_eq!(verdict("editor-1", local, "read_notes"), "not-allowed");
    // A deny in another capability wins.
    assert_eq!(verdict("editor-locked", local, "save_note"), "not-allowed");
    // Local capabilities do not reach remote pages; the docs origin gets only ping.
    assert_eq!(
        verdict("main", "https://evil.example", "read_notes"),
        "not-allowed"
    );
    assert_eq!(verdict("docs", "https://docs.example.com", "ping"), "pass");
    assert_eq!(
        verdict("docs", "https://other.example.com", "ping"),
        "not-allowed"
    );
    assert_eq!(verdict("main", local, "unused_cmd"), "not-allowed");
}

#[test]
fn from_tauri_on_a_folder_that_is_no_tauri_app_names_it() {
    let out = run_airlock(&["policy", "from-tauri", "wit"], &root(), "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("wit is not a Tauri app"), "{stderr}");
}

#[test]
fn from_tauri_names_the_file_of_a_capability_it_cannot_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let capabilities = dir.path().join("src-tauri/capabilities");
    std::fs::create_dir_all(&capabilities).unwrap();
    std::fs::write(
        capabilities.join("bad.json"),
        r#"{"windows": ["main"], "permissions": []}"#,
    )
    .unwrap();
    let path = dir.path().to_str().unwrap();
    let out = run_airlock(&["policy", "from-tauri", path], &root(), "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.json") && stderr.contains("needs a string `identifier`"),
        "{stderr}"
    );
}

#[test]
fn a_bad_allowlist_config_is_refused_at_load_with_its_json_pointer() {
    let config = r#"{"rules": [{"commands": {"fs_read": {"args": {"properties": {"path": {"pattern": "(["}}}}}}]}"#;
    let options = HookOptions::default().with_config(config.to_owned());
    match Hook::load(engine(), &built_hook("allowlist", "rust"), options) {
        Err(HookError::ConfigRefused(reason)) => assert!(
            reason.contains("at /rules/0/commands/fs_read/args/properties/path/pattern: bad regex"),
            "{reason}"
        ),
        Err(other) => panic!("refused for another reason: {other}"),
        Ok(_) => panic!("a bad regex loaded"),
    }
}

#[test]
fn the_example_configs_load() {
    for example in ["allowlist.config.json", "allowlist.demo.config.json"] {
        let config = std::fs::read_to_string(root().join("examples").join(example)).unwrap();
        let options = HookOptions::default().with_config(config);
        Hook::load(engine(), &built_hook("allowlist", "rust"), options)
            .unwrap_or_else(|e| panic!("{example}: {e}"));
    }
}
