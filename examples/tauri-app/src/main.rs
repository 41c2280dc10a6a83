//! A real Tauri v2 app guarded by Airlock (`airlock-tauri`): the web demo's policy — path-guard
//! keeps the file commands inside a sandboxed folder, redact strips secrets from events — with
//! buttons for malicious messages. Any hook can be tried in it:
//!
//! ```text
//! airlock-tauri-app [--hook HOOK.wasm [--config FILE-or-JSON]]... [--routes ROUTES.json]
//!                   [--sandbox DIR] [--no-airlock]
//! ```
//!
//! `AIRLOCK_HOOKS=a.wasm,b.wasm` and `AIRLOCK_ROUTES=FILE.json` do the same from the environment.
//! With no hook given it runs `target/hooks/path-guard.rust.wasm` (root: the sandbox) then
//! `target/hooks/redact.rust.wasm` (`scripts/build-hooks` builds them; `AIRLOCK_HOOKS_DIR` says
//! where else to look). The routes file is `airlock serve --routes`'s format. `--no-airlock` runs
//! the same app on Tauri's own IPC (for comparison and the benchmark).
//!
//! `AIRLOCK_SELF_TEST=1`: every window runs its scenarios and reports them through the `report`
//! command; once every window has, the app prints one line `AIRLOCK-REPORT {json}` and exits.
//! `AIRLOCK_BENCH={"sizes":[100],"counts":[500]}`: the main window times sequential invokes of
//! each size and reports the same way (see scripts/tauri-bench).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tauri::{AppHandle, Listener as _, Manager as _, State, WebviewWindow};

/// What the page asks for at start and what the app keeps between commands.
struct AppState {
    sandbox: PathBuf,
    guarded: bool,
    self_test: bool,
    bench: Option<Value>,
    /// Windows whose report ends the run.
    expected: Vec<String>,
    reports: Mutex<BTreeMap<String, Value>>,
    /// The payload of the last `note` event Rust received.
    last_note: Mutex<Option<Value>>,
    /// Tags the `mark` command recorded.
    marks: Mutex<Vec<String>>,
}

#[tauri::command]
fn mode(state: State<'_, AppState>, window: WebviewWindow) -> Value {
    json!({
        "window": window.label(),
        "sandbox": state.sandbox,
        "guarded": state.guarded,
        "selfTest": state.self_test,
        "bench": state.bench,
    })
}

#[tauri::command]
fn fs_read(path: String) -> Result<String, String> {
    std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))
}

#[tauri::command]
fn fs_write(path: String, contents: String) -> Result<(), String> {
    std::fs::write(&path, contents).map_err(|e| format!("cannot write {path}: {e}"))
}

#[tauri::command]
fn fs_list(path: String) -> Result<Vec<String>, String> {
    let entries = std::fs::read_dir(&path).map_err(|e| format!("cannot list {path}: {e}"))?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

#[tauri::command]
fn last_note(state: State<'_, AppState>) -> Option<Value> {
    state.last_note.lock().unwrap().clone()
}

/// Emits a `tick` event to every listener, for the page's `listen`.
#[tauri::command]
fn tick(app: AppHandle, n: u32) -> Result<(), String> {
    tauri::Emitter::emit(&app, "tick", json!({ "n": n })).map_err(|e| e.to_string())
}

#[tauri::command]
fn mark(state: State<'_, AppState>, tag: String) {
    state.marks.lock().unwrap().push(tag);
}

#[tauri::command]
fn marks(state: State<'_, AppState>) -> Vec<String> {
    state.marks.lock().unwrap().clone()
}

/// Whether `haystack` (what the page could find in its globals and scripts) holds Tauri's key.
#[tauri::command]
fn key_search(app: AppHandle, haystack: String) -> Value {
    json!({ "found": haystack.contains(app.invoke_key()), "bytes": haystack.len() })
}

/// The benchmark's command: the size of what it got.
#[tauri::command]
fn bench(data: String) -> usize {
    data.len()
}

/// A window's results; the run ends when every expected window has reported.
#[tauri::command]
fn report(app: AppHandle, state: State<'_, AppState>, window: WebviewWindow, results: Value) {
    let mut reports = state.reports.lock().unwrap();
    reports.insert(window.label().to_owned(), results);
    if state.expected.iter().all(|w| reports.contains_key(w)) {
        println!("AIRLOCK-REPORT {}", json!(*reports));
        app.exit(0);
    }
}

/// Hooks and where to find them, from the command line and the environment.
#[derive(Debug, Default)]
struct Args {
    hooks: Vec<(PathBuf, Option<String>)>,
    routes: Option<PathBuf>,
    sandbox: Option<PathBuf>,
    no_airlock: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args::default();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--hook" => args.hooks.push((value()?.into(), None)),
            "--config" => {
                let config = value()?;
                let Some(last) = args.hooks.last_mut() else {
                    bail!("--config {config:?} must follow the --hook it configures");
                };
                last.1 = Some(config);
            }
            "--routes" => args.routes = Some(value()?.into()),
            "--sandbox" => args.sandbox = Some(value()?.into()),
            "--no-airlock" => args.no_airlock = true,
            other => bail!(
                "unknown argument {other:?}; usage: airlock-tauri-app [--hook HOOK.wasm \
                 [--config FILE-or-JSON]]... [--routes ROUTES.json] [--sandbox DIR] [--no-airlock]"
            ),
        }
    }
    if args.hooks.is_empty()
        && let Ok(list) = std::env::var("AIRLOCK_HOOKS")
    {
        args.hooks = list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| (s.into(), None))
            .collect();
    }
    if args.routes.is_none() {
        args.routes = std::env::var_os("AIRLOCK_ROUTES").map(PathBuf::from);
    }
    if args.sandbox.is_none() {
        args.sandbox = std::env::var_os("AIRLOCK_SANDBOX").map(PathBuf::from);
    }
    Ok(args)
}

/// A hook's config: inline JSON, or the file it names.
fn read_config(config: &str) -> anyhow::Result<String> {
    if config.trim_start().starts_with(['{', '[']) {
        return Ok(config.to_owned());
    }
    std::fs::read_to_string(config).with_context(|| format!("cannot read hook config {config}"))
}

/// The sandbox: the given folder, or one under the system's temp folder, with a file in it.
fn sandbox(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = match given {
        Some(dir) => dir,
        None => std::env::temp_dir().join(format!("airlock-tauri-app-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot make the sandbox {}", dir.display()))?;
    let dir = dir.canonicalize()?;
    let welcome = dir.join("welcome.txt");
    if !welcome.exists() {
        std::fs::write(
            &welcome,
            "Files in this folder are what path-guard lets the page reach.\n",
        )?;
    }
    Ok(dir)
}

#[cfg(feature = "airlock")]
fn airlock(args: &Args, sandbox: &Path) -> anyhow::Result<airlock_tauri::Airlock> {
    let mut builder = airlock_tauri::Airlock::builder();
    let hooks = match args.hooks.is_empty() {
        false => args.hooks.clone(),
        true => {
            let dir = std::env::var_os("AIRLOCK_HOOKS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/hooks")
                });
            let guard = json!({ "commands": ["fs_read", "fs_write", "fs_list"], "root": sandbox });
            vec![
                (dir.join("path-guard.rust.wasm"), Some(guard.to_string())),
                (dir.join("redact.rust.wasm"), None),
            ]
        }
    };
    for (path, config) in hooks {
        let config = config.as_deref().map(read_config).transpose()?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let options = airlock::HookOptions::default()
            .with_name(name)
            .with_config(config.unwrap_or_else(|| "{}".to_owned()));
        builder = builder
            .hook_file_with(&path, options)
            .with_context(|| format!("cannot load hook {}", path.display()))?;
    }
    if let Some(file) = &args.routes {
        let engine = builder.hook_engine()?.clone();
        let routes = airlock_cli::routes::load(
            file,
            &engine,
            airlock::HookLimits::default(),
            &airlock::trust::Trust::default(),
            airlock_cli::Mode::Auto,
            4,
        )?;
        for route in routes {
            let hooks = route.hooks.into_iter().map(|(_, hook)| hook).collect();
            builder = builder.route(route.route, hooks)?;
        }
    }
    Ok(builder.build()?)
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = parse_args()?;
    let sandbox = sandbox(args.sandbox.clone())?;
    let self_test = std::env::var_os("AIRLOCK_SELF_TEST").is_some_and(|v| v == "1");
    let bench_plan = match std::env::var("AIRLOCK_BENCH") {
        Ok(plan) => {
            Some(serde_json::from_str::<Value>(&plan).context("AIRLOCK_BENCH is not JSON")?)
        }
        Err(_) => None,
    };
    let expected = match (self_test, &bench_plan) {
        (_, Some(_)) => vec!["main".to_owned()],
        (true, None) => vec!["main".to_owned(), "settings-1".to_owned()],
        (false, None) => Vec::new(),
    };
    let guarded = !args.no_airlock && cfg!(feature = "airlock");
    #[allow(unused_mut)]
    let mut builder = tauri::Builder::default();
    #[cfg(feature = "airlock")]
    if guarded {
        builder = airlock_tauri::AirlockExt::airlock(builder, airlock(&args, &sandbox)?);
    }
    builder
        .manage(AppState {
            sandbox,
            guarded,
            self_test,
            bench: bench_plan,
            expected,
            reports: Mutex::default(),
            last_note: Mutex::default(),
            marks: Mutex::default(),
        })
        .setup(|app| {
            let handle = app.handle().clone();
            app.listen_any("note", move |event| {
                let payload = serde_json::from_str(event.payload()).ok();
                *handle.state::<AppState>().last_note.lock().unwrap() = payload;
            });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            mode, fs_read, fs_write, fs_list, last_note, tick, mark, marks, key_search, bench,
            report
        ])
        .run(tauri::generate_context!())
        .context("the Tauri app failed")
}
