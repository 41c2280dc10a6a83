//! The Tauri drop-in, end to end: the example app (`examples/tauri-app`, built by the workspace
//! build scripts/test runs) in a real WebKitGTK webview under Xvfb. Its pages run their scenarios
//! (AIRLOCK_SELF_TEST=1) and the app exits printing what each window saw; one run serves every
//! test below. `scripts/toolchains/tauri` installs WebKitGTK and Xvfb (scripts/test runs it).
//!
//! Also here: the contract with the pinned Tauri's wire format, read from its source.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use airlock_tests::{load_built, root};
use serde_json::{Value, json};

/// Longest the app may take to start, run both windows' scenarios and exit.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

fn app_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .join("airlock-tauri-app");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release --workspace` (scripts/test does)",
        path.display()
    );
    path
}

/// What the app printed: each window's results. The app runs once for every test here; when
/// it fails, every test fails with its output (and none starts it again).
fn report() -> &'static Value {
    static REPORT: OnceLock<Result<Value, String>> = OnceLock::new();
    match REPORT.get_or_init(run_app) {
        Ok(report) => report,
        Err(e) => panic!("{e}"),
    }
}

fn path_guard_config(sandbox: &Path) -> String {
    json!({ "commands": ["fs_read", "fs_write", "fs_list"], "root": sandbox }).to_string()
}

/// The settings windows' chain: only `mode`, `report` and the app version, nothing else.
fn settings_allowlist() -> Value {
    json!({ "rules": [{ "commands": ["mode", "report", "plugin:app|version"] }] })
}

fn run_app() -> Result<Value, String> {
    let xvfb = Path::new("/usr/bin/xvfb-run");
    if !xvfb.exists() {
        return Err("xvfb-run is missing: install it with scripts/toolchains/tauri".into());
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let sandbox = dir.path().join("sandbox");
    std::fs::create_dir(&sandbox).expect("sandbox");
    let sandbox = sandbox.canonicalize().expect("sandbox path");
    let routes = dir.path().join("routes.json");
    let allowlist = root().join("target/hooks/allowlist.rust.wasm");
    let spec = json!([{ "window": "settings-*",
        "hooks": [{ "hook": allowlist, "config": settings_allowlist() }] }]);
    std::fs::write(&routes, spec.to_string()).expect("routes file");
    let hooks = root().join("target/hooks");

    let mut command = Command::new(xvfb);
    command
        .args(["-a", "-s", "-screen 0 1280x1024x24"])
        .arg(app_bin())
        .arg("--hook")
        .arg(hooks.join("path-guard.rust.wasm"))
        .arg("--config")
        .arg(path_guard_config(&sandbox))
        .arg("--hook")
        .arg(hooks.join("redact.rust.wasm"))
        .arg("--routes")
        .arg(&routes)
        .arg("--sandbox")
        .arg(&sandbox)
        .env("AIRLOCK_SELF_TEST", "1")
        .env("WEBKIT_DISABLE_DMABUF_RENDERER", "1")
        .env("LIBGL_ALWAYS_SOFTWARE", "1")
        .env("NO_AT_BRIDGE", "1")
        .env_remove("AIRLOCK_BENCH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, so a timeout kills Xvfb and the app with xvfb-run.
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start xvfb-run: {e}"))?;
    let pid = child.id();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > RUN_TIMEOUT {
            if let Some(group) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
            }
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (stdout, stderr) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    let Some(status) = status else {
        return Err(format!(
            "the app did not finish within {RUN_TIMEOUT:?}; killed.\nstdout:\n{stdout}\nstderr:\n{stderr}"
        ));
    };
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("AIRLOCK-REPORT "))
        .ok_or_else(|| {
            format!("the app ({status}) printed no report.\nstdout:\n{stdout}\nstderr:\n{stderr}")
        })?;
    serde_json::from_str(line).map_err(|e| format!("report is not JSON ({e}): {line}"))
}

fn main_window(scenario: &str) -> &'static Value {
    let value = &report()["main"][scenario];
    assert!(!value.is_null(), "no {scenario:?} in {:#}", report());
    value
}

fn digest(policy: &str) -> String {
    load_built(policy, "rust", "{}").digest().to_owned()
}

#[test]
fn a_harmless_invoke_passes_the_hooks_and_reaches_its_command() {
    assert_eq!(
        main_window("pass"),
        &json!({ "ok": true, "value": "hello" })
    );
    assert_eq!(
        main_window("nullArgs")["ok"],
        true,
        "{}",
        main_window("nullArgs")
    );
}

#[test]
fn a_rejected_invoke_carries_code_reason_and_hook_into_the_promise() {
    let reject = main_window("reject");
    assert_eq!(reject["ok"], false, "{reject}");
    let error = &reject["error"];
    assert_eq!(error["code"], "path-escape", "{reject}");
    assert!(
        error["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{reject}"
    );
    assert_eq!(error["hook"], digest("path-guard").as_str(), "{reject}");
}

#[test]
fn a_commands_own_error_reaches_the_page_as_tauri_sends_it() {
    let failed = main_window("commandError");
    assert_eq!(failed["ok"], false, "{failed}");
    let error = failed["error"]
        .as_str()
        .expect("Tauri's error: the command's string");
    assert!(
        error.starts_with("cannot read ") && error.contains("missing.txt"),
        "{error}"
    );
}

#[test]
fn an_emitted_event_goes_through_the_hook_and_its_replacement_is_what_rust_receives() {
    assert_eq!(main_window("emit")["ok"], true, "{}", main_window("emit"));
    assert_eq!(
        main_window("replace"),
        &json!({ "ok": true, "value": { "text": "hi", "nested": {} } })
    );
}

#[test]
fn a_plugin_command_and_a_listen_work_through_the_hooks() {
    assert_eq!(
        main_window("plugin"),
        &json!({ "ok": true, "value": "0.1.0" })
    );
    assert_eq!(
        main_window("listen"),
        &json!({ "ok": true, "value": { "n": 7 } })
    );
}

#[test]
fn each_window_goes_through_its_own_chain() {
    assert_eq!(
        main_window("readWelcome")["ok"],
        true,
        "{}",
        main_window("readWelcome")
    );
    let settings = &report()["settings-1"];
    let read = &settings["readWelcome"];
    assert_eq!(read["ok"], false, "{settings}");
    assert_eq!(read["error"]["code"], "not-allowed", "{settings}");
    assert_eq!(
        read["error"]["hook"],
        digest("allowlist").as_str(),
        "{settings}"
    );
    assert_eq!(settings["plugin"], json!({ "ok": true, "value": "0.1.0" }));
}

#[test]
fn a_hand_made_fetch_to_the_ipc_protocol_meets_the_hook() {
    let attempt = main_window("handMadeMalicious");
    assert_eq!(attempt["value"]["tauriResponse"], "error", "{attempt}");
    assert_eq!(attempt["value"]["body"]["code"], "path-escape", "{attempt}");
    let harmless = main_window("handMadeHarmless");
    assert_eq!(harmless["value"]["tauriResponse"], "ok", "{harmless}");
}

#[test]
fn a_request_carrying_tauris_invoke_key_header_is_refused() {
    let attempt = main_window("handMadeWithKey");
    assert_eq!(attempt["value"]["tauriResponse"], "error", "{attempt}");
    assert_eq!(
        attempt["value"]["body"]["code"], "airlock-invoke-key",
        "{attempt}"
    );
}

#[test]
fn only_requests_through_the_hooks_reach_commands_never_a_guessed_key_or_post_message() {
    // The page marked "postmessage" through window.ipc.postMessage with a guessed key and
    // "invoke-key" through a fetch carrying Tauri-Invoke-Key; only the hand-made fetch that met
    // the hooks (and passed them) ran.
    assert_eq!(
        main_window("marks"),
        &json!({ "ok": true, "value": ["hand-made"] })
    );
}

#[test]
fn tauris_invoke_key_is_nowhere_in_the_pages_globals_or_scripts() {
    let search = main_window("keySearch");
    assert_eq!(search["ok"], true, "{search}");
    assert_eq!(search["value"]["found"], false, "{search}");
    assert!(
        search["value"]["bytes"].as_u64().unwrap_or(0) > 10_000,
        "{search}"
    );
}

/// The pinned Tauri's source: the version Cargo.lock resolved, in the registry cargo fetched it
/// into (`$CARGO_HOME/registry/src/<index>/tauri-<version>`).
fn tauri_source() -> PathBuf {
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).expect("Cargo.lock");
    let version = lock
        .split("[[package]]")
        .find_map(|package| {
            package
                .trim_start()
                .strip_prefix("name = \"tauri\"\nversion = \"")
                .and_then(|rest| rest.split('"').next())
        })
        .expect("Cargo.lock resolves tauri");
    assert!(
        version.starts_with("2.12."),
        "airlock-tauri speaks Tauri 2.12's wire format; Cargo.lock resolved tauri {version}"
    );
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    let registry = cargo_home.join("registry/src");
    std::fs::read_dir(&registry)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", registry.display()))
        .filter_map(|index| index.ok())
        .map(|index| index.path().join(format!("tauri-{version}")))
        .find(|dir| dir.join("Cargo.toml").exists())
        .unwrap_or_else(|| panic!("tauri {version}'s source is not in {}", registry.display()))
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("cannot read {file} in {}: {e}", dir.display()))
}

fn assert_holds(text: &str, file: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            text.contains(needle),
            "Tauri's wire format drifted: {file} no longer has {needle:?}; re-read it and update \
             airlock-tauri (tauri/src/protocol.rs, tauri/src/invoke.js)"
        );
    }
}

#[test]
fn the_pinned_tauri_still_speaks_the_wire_format_airlock_relies_on() {
    let tauri = tauri_source();
    let script = read(&tauri, "scripts/ipc-protocol.js");
    assert_holds(
        &script,
        "scripts/ipc-protocol.js",
        &[
            "headers.set('Content-Type', contentType)",
            "headers.set('Tauri-Callback', callback)",
            "headers.set('Tauri-Error', error)",
            "headers.set('Tauri-Invoke-Key', __TAURI_INVOKE_KEY__)",
            "convertFileSrc(cmd, 'ipc')",
            "response.headers.get('Tauri-Response') === 'ok' ? callback : error",
            "Object.defineProperty(window.__TAURI_INTERNALS__, 'postMessage'",
        ],
    );
    let protocol = read(&tauri, "src/ipc/protocol.rs");
    assert_holds(
        &protocol,
        "src/ipc/protocol.rs",
        &[
            r#"const TAURI_CALLBACK_HEADER_NAME: &str = "Tauri-Callback";"#,
            r#"const TAURI_ERROR_HEADER_NAME: &str = "Tauri-Error";"#,
            r#"const TAURI_INVOKE_KEY_HEADER_NAME: &str = "Tauri-Invoke-Key";"#,
            r#"const TAURI_RESPONSE_HEADER_NAME: &str = "Tauri-Response";"#,
            "percent_encoding::percent_decode(path.strip_prefix(b\"/\")",
            "ACCESS_CONTROL_EXPOSE_HEADERS",
            "serde_json::to_vec(&e.0)",
        ],
    );
    assert_holds(
        &read(&tauri, "src/manager/webview.rs"),
        "src/manager/webview.rs",
        &[r#"if !registered_scheme_protocols.contains(&"ipc".into())"#],
    );
    assert_holds(
        &read(&tauri, "src/app.rs"),
        "src/app.rs",
        &[
            r#".replace("__INVOKE_KEY__""#,
            "pub fn invoke_key(&self) -> &str",
        ],
    );
    assert_holds(
        &read(&tauri, "src/webview/mod.rs"),
        "src/webview/mod.rs",
        &["if request.invoke_key != expected"],
    );
    assert!(
        !read(&tauri, "scripts/core.js").contains("__TEMPLATE_invoke_key__"),
        "Tauri's core.js now renders the invoke key into every page: Airlock cannot keep it from \
         the page any more"
    );
    assert_eq!(
        read(&tauri, "scripts/process-ipc-message-fn.js"),
        read(&root().join("tauri/src"), "process-ipc-message-fn.js"),
        "Tauri's payload encoder changed: copy the pinned one to tauri/src/"
    );
}
