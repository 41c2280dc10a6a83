//! `airlock serve`: a web frontend and its IPC endpoint over WebSocket, in front of a demo core.
//!
//! The demo core works on one folder (`--root`): `fs_list`, `fs_read` (whole, or streamed over a
//! channel as bytes) and `fs_write` (which emits `fs-changed` back to the window), plus a
//! listener for the `profile` event that tells the window what it received (`core-received`), so
//! a page can show what a hook removed, and `args_size` (the length of its JSON args, for the
//! end-to-end benchmark, `scripts/e2e-bench`). The core checks paths itself too: the hooks are the first
//! line, not the only one.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde::Deserialize;
use serde_json::json;

use airlock::web::{ChannelRef, WebGateway, WebOptions, Window, Windows, serve_metrics};
use airlock::{Body, Gateway, GatewayLimits, Hook, HookEngine, HookOptions, Metrics, Router};

use crate::flags::{HookFlags, Mode, load_hook_file, read_config};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Folder of the frontend (its `index.html` is served at `/`); the JS client is always at
    /// `/airlock.js`.
    #[arg(long = "static", value_name = "DIR")]
    static_dir: Option<PathBuf>,
    /// Address to listen on; loopback unless told otherwise (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7300")]
    bind: SocketAddr,
    /// An origin allowed to connect besides the server's own (repeatable), e.g. `http://localhost:5173`.
    #[arg(long, value_name = "ORIGIN")]
    allow_origin: Vec<String>,
    /// The demo core's folder; created with two sample files when missing.
    #[arg(long, value_name = "DIR", default_value = "target/demo-data")]
    root: PathBuf,
    /// Messages a second each connection may send (sustained).
    #[arg(long, value_name = "COUNT", default_value_t = 100.0)]
    rate: f64,
    /// Messages a connection may send at once above its rate.
    #[arg(long, value_name = "COUNT", default_value_t = 100)]
    burst: u32,
    /// Serve the page cross-origin isolated (COOP and COEP headers): a 5 µs `performance.now()`
    /// for pages that measure, but cross-origin resources must opt in to load.
    #[arg(long)]
    cross_origin_isolated: bool,
    /// Threads that read connections and run the hooks, each connection on one of them (the
    /// one with the fewest tasks when it connects, and staying there).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=256))]
    workers: u16,
    /// Microseconds a worker stays awake after each frame it reads or writes, polling its
    /// connections instead of sleeping, so a client's next call does not wait for an idle CPU
    /// to wake; at most this much CPU per frame, none while idle. 0 turns it off.
    #[arg(long, value_name = "MICROSECONDS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    spin_us: u64,
    /// Append every message, as the frontend sent it, with its source, a timestamp and the
    /// verdict given, to FILE (JSON Lines that `airlock replay` and `airlock inspect` read).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// How much of each payload `--record` writes: `all`, `names` (keys and header names, no
    /// values) or `none`; rejection reasons only with `all`.
    #[arg(long, value_name = "WHAT", default_value = "all", requires = "record")]
    record_payloads: airlock::Payloads,
    /// A hook that rewrites each message before `--record` writes it, e.g. the redact hook with
    /// a config naming the secret fields: what it replaces is written, a message it rejects (or
    /// faults on) is written without headers and payload, and no rejection reason is written.
    #[arg(long, value_name = "HOOK", requires = "record")]
    record_redactor: Option<PathBuf>,
    /// The `--record-redactor`'s config (a JSON file).
    #[arg(long, value_name = "FILE", requires = "record_redactor")]
    record_redactor_config: Option<PathBuf>,
    /// Serve metrics (verdict counts and hook latencies, Prometheus/OpenMetrics text) at
    /// `http://ADDR/metrics`; port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Messages in the hooks at once, over all windows; when all are busy a message waits, the
    /// window holding the fewest served first [default: what the engine's pool of 256
    /// instances can always serve, less the warm ones reused hooks keep: 247 for a Rust hook,
    /// 55 for a Python one]. Each call may take a CPU: a few per CPU share them better.
    #[arg(long, value_name = "COUNT")]
    hook_calls: Option<usize>,
    /// Longest a message waits for a hook call before `hook-unavailable`, in milliseconds (0:
    /// refuse at once), at most 60000.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    hook_wait_ms: u64,
    #[command(flatten)]
    hooks: HookFlags,
}

/// The longest `--hook-wait-ms`.
const MAX_HOOK_WAIT_MS: u64 = 60_000;

impl ServeArgs {
    /// The gateway's limits: the hook flags' and the fair admission's.
    fn gateway_limits(&self, engine: &airlock::HookEngine) -> anyhow::Result<GatewayLimits> {
        let pool = engine.config().max_instances as usize;
        let calls = match self.hook_calls {
            None => None,
            Some(0) => anyhow::bail!("--hook-calls 0: at least one hook call must run at once"),
            Some(n) if n > pool => anyhow::bail!(
                "--hook-calls {n} is more than the engine's pool of {pool} hook instances"
            ),
            Some(n) => NonZeroUsize::new(n),
        };
        if self.hook_wait_ms > MAX_HOOK_WAIT_MS {
            anyhow::bail!(
                "--hook-wait-ms {} is over the limit of {MAX_HOOK_WAIT_MS} ms",
                self.hook_wait_ms
            );
        }
        Ok(self
            .hooks
            .gateway_limits()
            .with_hook_calls(calls)
            .with_hook_wait(Duration::from_millis(self.hook_wait_ms)))
    }
}

/// The `--record-redactor` hook, with its config, signed like every other hook when `--trust` is
/// given.
fn load_redactor(args: &ServeArgs, engine: &HookEngine, file: &Path) -> anyhow::Result<Hook> {
    let config = match &args.record_redactor_config {
        Some(path) => read_config(path)?,
        None => "{}".to_owned(),
    };
    let options = HookOptions::default()
        .with_config(config)
        .with_limits(args.hooks.limits()?);
    let trust = args.hooks.key_trust()?;
    let (hook, _) = load_hook_file(engine, file, options, trust, Mode::Auto, 8)?;
    Ok(hook)
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        anyhow::bail!(
            "--rate {} is not a positive number of messages a second",
            args.rate
        );
    }
    if let Some(dir) = &args.static_dir
        && !dir.join("index.html").is_file()
    {
        anyhow::bail!("--static {}: no index.html in it", dir.display());
    }
    let engine = args.hooks.engine(false)?;
    let limits = args.gateway_limits(&engine)?;
    let root = prepare_root(&args.root)?;
    let hooks = args.hooks.load(&engine, Mode::Auto, 8, |limits| limits)?;
    let routes = args.hooks.load_routes(&engine, Mode::Auto, 8)?;
    let routes_described = crate::routes::describe(&routes);

    let windows = Windows::new();
    let router = demo_router(root.clone());
    let described: Vec<String> = hooks
        .iter()
        .map(|loaded| format!("{} {}", loaded.path.display(), loaded.hook.digest()))
        .collect();
    let mut chain = hooks.into_iter().map(|loaded| loaded.hook);
    let first = chain.next().expect("clap requires a hook");
    let seal = args.hooks.seal_config()?;
    let mut gateway = Gateway::with_config(first, router, limits, seal)?;
    for hook in chain {
        gateway = gateway.then(hook);
    }
    let mut gateway = crate::routes::apply(gateway, routes);
    if let Some(path) = &args.record {
        let mut recorder = airlock::JsonlRecorder::append(path, args.record_payloads)
            .with_context(|| format!("--record {}: cannot open it", path.display()))?;
        if let Some(file) = &args.record_redactor {
            let redactor = load_redactor(&args, &engine, file)
                .with_context(|| format!("--record-redactor {}", file.display()))?;
            eprintln!(
                "airlock serve: records redacted by {} {}",
                file.display(),
                redactor.digest()
            );
            recorder = recorder.with_redactor(redactor);
        }
        gateway = gateway.with_recorder(Arc::new(recorder));
    }
    let metrics = args.metrics.map(|addr| (addr, Metrics::new()));
    if let Some((_, metrics)) = &metrics {
        gateway = gateway.with_metrics(metrics.clone());
    }
    let options = WebOptions::default()
        .with_allowed_origins(args.allow_origin.clone())
        .with_static_dir(args.static_dir.clone())
        .with_messages_per_second(args.rate)
        .with_burst(args.burst)
        .with_report_verdicts(true)
        .with_cross_origin_isolated(args.cross_origin_isolated)
        .with_spin(Duration::from_micros(args.spin_us));
    let hook_calls = gateway.hook_calls();
    let web = WebGateway::new(Arc::new(gateway), windows, options);

    // One single-threaded runtime per worker, each connection on one of them: a message is
    // read, run through the hooks and answered on one thread (WebGateway::serve_on).
    let runtime = single_threaded()?;
    let mut runtimes = vec![runtime.handle().clone()];
    for n in 1..args.workers {
        let other = single_threaded()?;
        runtimes.push(other.handle().clone());
        std::thread::Builder::new()
            .name(format!("airlock-worker-{n}"))
            .spawn(move || other.block_on(std::future::pending::<()>()))
            .context("cannot start a worker thread")?;
    }
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.bind)
            .await
            .with_context(|| format!("cannot listen on {}", args.bind))?;
        let addr = listener.local_addr()?;
        if let Some((metrics_addr, metrics)) = metrics {
            let listener = tokio::net::TcpListener::bind(metrics_addr)
                .await
                .with_context(|| format!("cannot listen on {metrics_addr} for --metrics"))?;
            let at = listener.local_addr()?;
            eprintln!("airlock serve: metrics at http://{at}/metrics");
            tokio::spawn(async move {
                if let Err(e) = serve_metrics(listener, metrics).await {
                    tracing::error!("metrics server stopped: {e}");
                }
            });
        }
        eprintln!("airlock serve: hooks, in order:");
        for line in &described {
            eprintln!("  {line}");
        }
        if !routes_described.is_empty() {
            eprintln!("airlock serve: routes, tried in order before those hooks:");
            for line in &routes_described {
                eprintln!("  {line}");
            }
        }
        eprintln!("airlock serve: demo folder {}", root.display());
        eprintln!(
            "airlock serve: at most {} messages in the hooks at once, each waiting at most {} ms",
            hook_calls, args.hook_wait_ms
        );
        if !addr.ip().is_loopback() {
            eprintln!("airlock serve: warning: listening beyond loopback on {addr}");
        }
        // The URL on standard output, alone on its line, for people and scripts.
        println!("http://{addr}/");
        web.serve_on(listener, runtimes)
            .await
            .context("server stopped")
    })
}

fn single_threaded() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

fn prepare_root(root: &Path) -> anyhow::Result<PathBuf> {
    if !root.exists() {
        std::fs::create_dir_all(root)
            .with_context(|| format!("cannot create demo folder {}", root.display()))?;
        std::fs::write(
            root.join("notes.txt"),
            "Hello from the demo folder.\nEverything the page reads or writes stays in here.\n",
        )?;
        std::fs::write(
            root.join("todo.md"),
            "- try ../../etc/passwd\n- emit a profile with a password\n",
        )?;
    }
    root.canonicalize()
        .with_context(|| format!("demo folder {} is not usable", root.display()))
}

/// The path inside `root` that `path` names, refusing anything but plain relative segments.
fn inside(root: &Path, path: &str) -> Result<PathBuf, String> {
    let relative = Path::new(path);
    if path.is_empty() || path == "." {
        return Ok(root.to_path_buf());
    }
    if !relative
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(format!("path {path:?} is outside the demo folder"));
    }
    Ok(root.join(relative))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    #[serde(default)]
    path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadArgs {
    path: String,
    /// Stream the file to this channel as bytes, in chunks, instead of returning it.
    channel: Option<ChannelRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteArgs {
    path: String,
    contents: String,
}

/// Bytes per chunk when `fs_read` streams a file.
const CHUNK: usize = 64;

fn demo_router(root: PathBuf) -> Router {
    let (r1, r2, r3) = (root.clone(), root.clone(), root);
    Router::new()
        .command("fs_list", move |args: ListArgs, _| {
            let root = r1.clone();
            async move {
                let dir = inside(&root, &args.path)?;
                let mut entries = Vec::new();
                let mut read = tokio::fs::read_dir(&dir)
                    .await
                    .map_err(|e| format!("cannot list {:?}: {e}", args.path))?;
                while let Some(entry) = read.next_entry().await.map_err(|e| e.to_string())? {
                    let meta = entry.metadata().await.map_err(|e| e.to_string())?;
                    entries.push(json!({
                        "name": entry.file_name().to_string_lossy(),
                        "dir": meta.is_dir(),
                        "bytes": meta.len(),
                    }));
                }
                entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
                Ok::<_, String>(entries)
            }
        })
        .command("fs_read", move |args: ReadArgs, _| {
            let root = r2.clone();
            async move {
                let file = inside(&root, &args.path)?;
                let bytes = tokio::fs::read(&file)
                    .await
                    .map_err(|e| format!("cannot read {:?}: {e}", args.path))?;
                let Some(channel) = args.channel else {
                    return Ok(json!(String::from_utf8_lossy(&bytes)));
                };
                let window = Window::current().ok_or("the window that asked is gone")?;
                let mut chunks = 0;
                for chunk in bytes.chunks(CHUNK) {
                    window
                        .send(channel, Body::Bytes(chunk.to_vec()))
                        .await
                        .map_err(|e| e.to_string())?;
                    chunks += 1;
                }
                Ok::<_, String>(json!({ "bytes": bytes.len(), "chunks": chunks }))
            }
        })
        .command("fs_write", move |args: WriteArgs, _| {
            let root = r3.clone();
            async move {
                let file = inside(&root, &args.path)?;
                tokio::fs::write(&file, args.contents.as_bytes())
                    .await
                    .map_err(|e| format!("cannot write {:?}: {e}", args.path))?;
                let changed = json!({ "path": args.path, "bytes": args.contents.len() });
                if let Some(window) = Window::current() {
                    // Best effort: the write happened whether or not the page hears of it.
                    let _ = window.try_emit("fs-changed", Body::Json(changed.to_string()));
                }
                Ok::<_, String>(changed)
            }
        })
        .command(
            "args_size",
            |_: serde::de::IgnoredAny, invocation| async move {
                Ok::<_, String>(json!({ "bytes": invocation.body.len() }))
            },
        )
        .listen("profile", move |invocation| async move {
            let payload: serde_json::Value = match &invocation.body {
                Body::Json(text) => serde_json::from_str(text).map_err(|e| e.to_string())?,
                Body::Bytes(bytes) => json!({ "bytes": bytes.len() }),
            };
            if let Some(window) = Window::current() {
                let received = json!({ "event": invocation.name, "payload": payload });
                window
                    .emit("core-received", Body::Json(received.to_string()))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok::<_, String>(())
        })
}
