//! Instructions a hook executes per message, counted under callgrind: a load-independent figure
//! for comparing hooks on a shared, noisy machine, where `airlock bench`'s times move by 1.5×
//! between runs (BENCHMARKS.md, "the allowlist hook against path-guard").
//!
//! For each setup (a hook and its config) it loads the hook once here, which compiles it into a
//! private cache, then runs itself twice under `valgrind --tool=callgrind`, sending N and then 2N
//! copies of `airlock bench`'s message (`fs_read`, `{"path":"notes.txt","pad":"xx…"}` padded to
//! `--size`), and reports the difference divided by N: what one more message costs, without the
//! load. Only the hook's own work is counted: instructions of the compiled wasm code (the code
//! callgrind finds in no file), plus what the host functions it calls execute (memory growth,
//! `memory.copy`/`memory.fill`). Instantiating, lowering the message into the instance, and the
//! host's reset of the instance's memory afterwards are left out: they cost every hook about the
//! same, and on a fresh instance per message they hide the hooks' difference.
//!
//! ```sh
//! cargo build --release -p airlock-benches --bin icount
//! target/release/icount --setup target/hooks/path-guard.rust.wasm:examples/path-guard.config.json \
//!   --setup target/hooks/allowlist.rust.wasm:examples/allowlist.bench.config.json
//! ```
//!
//! The first setup is the baseline the others are compared with.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use clap::Parser;

use airlock::{
    Body, EngineConfig, Hook, HookEngine, HookLimits, HookOptions, InstanceMode, Message, Verdict,
    jsonl,
};

#[derive(Debug, Parser)]
#[command(about = "Instructions a hook executes per message, counted under callgrind")]
struct Args {
    /// A hook and its config, `HOOK.wasm[:CONFIG.json]` (no config: `{}`); repeat. The first is
    /// the baseline.
    #[arg(long = "setup", value_name = "HOOK[:CONFIG]", required = true)]
    setups: Vec<String>,
    /// Size of the message's JSON args, in bytes (as `airlock bench --size`).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Messages of the shorter run (the longer one sends twice as many).
    #[arg(long, default_value_t = 50)]
    messages: usize,
    /// `fresh`: a new instance per message, configured each time (the default, as served);
    /// `reuse`: one configured instance for every message.
    #[arg(long, default_value = "fresh")]
    mode: String,
    /// The valgrind to run.
    #[arg(long, default_value = "valgrind")]
    valgrind: PathBuf,
    /// Internal: run the setup's messages in this process (under callgrind) and exit.
    #[arg(long, hide = true)]
    child_messages: Option<usize>,
    /// Internal: the cache folder the parent filled.
    #[arg(long, hide = true)]
    cache: Option<PathBuf>,
}

/// `airlock bench`'s default message.
const MESSAGE: &str = r#"{"kind":"command","name":"fs_read","payload":{"path":"notes.txt"}}"#;

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.messages > 0, "--messages must be at least 1");
    let mode = match args.mode.as_str() {
        "fresh" => InstanceMode::Fresh,
        "reuse" => InstanceMode::Reuse { max_idle: 1 },
        other => bail!("--mode {other:?}: give fresh or reuse"),
    };
    if let Some(messages) = args.child_messages {
        let cache = args.cache.as_deref().context("--cache")?;
        let hook = load(&args.setups[0], mode, cache)?;
        return send(&hook, args.size, messages);
    }
    let cache = tempfile::tempdir()?;
    let mut counts = Vec::new();
    for setup in &args.setups {
        // Compiled here, at native speed; the runs under callgrind load it from the cache.
        let hook = load(setup, mode, cache.path())?;
        send(&hook, args.size, 1)?;
        let short = callgrind(&args, setup, cache.path(), args.messages)?;
        let long = callgrind(&args, setup, cache.path(), 2 * args.messages)?;
        let per_message = long.saturating_sub(short) as f64 / args.messages as f64;
        eprintln!("icount: {setup}: {short} then {long} instructions");
        counts.push(per_message);
    }
    println!(
        "instructions per message ({} mode, {} B args):",
        args.mode, args.size
    );
    for (setup, count) in args.setups.iter().zip(&counts) {
        println!(
            "{count:>12.0}  {:>5.2}×  {setup}",
            count / counts[0].max(1.0)
        );
    }
    Ok(())
}

/// An engine with a small pool (callgrind runs it in its own address space) and an epoch tick
/// too slow to ever interrupt a call (an interrupt would switch stacks mid-call).
fn engine(cache: &Path) -> anyhow::Result<HookEngine> {
    let mut config = EngineConfig::default();
    config.max_instances = 4;
    config.epoch_tick = Duration::from_secs(3600);
    Ok(HookEngine::with_cache(config, cache)?)
}

fn load(setup: &str, mode: InstanceMode, cache: &Path) -> anyhow::Result<Hook> {
    let (hook, config) = match setup.split_once(':') {
        Some((hook, config)) => (hook, Some(config)),
        None => (setup, None),
    };
    let config = match config {
        Some(path) => std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?,
        None => "{}".to_owned(),
    };
    let limits = HookLimits::default().with_timeout(Duration::from_secs(3600));
    let options = HookOptions::default()
        .with_config(config)
        .with_limits(limits)
        .with_mode(mode);
    Hook::load_file(&engine(cache)?, hook, options).with_context(|| format!("loading {setup}"))
}

/// Sends `count` copies of the message; each must pass.
fn send(hook: &Hook, size: usize, count: usize) -> anyhow::Result<()> {
    let (source, mut request) = jsonl::parse_line(MESSAGE).map_err(anyhow::Error::msg)?;
    request.body = Body::Json(padded(size)?);
    for id in 0..count {
        let message = Message::from_request(id as u64, source.clone(), request.clone());
        let inspection = hook.inspect_blocking(message);
        ensure!(
            matches!(inspection.verdict, Verdict::Pass),
            "the message is not passed: {:?}",
            inspection.verdict
        );
    }
    Ok(())
}

/// `{"path":"notes.txt","pad":"xx…"}`, `size` bytes long (as `airlock bench` pads it).
fn padded(size: usize) -> anyhow::Result<String> {
    let unpadded = r#"{"path":"notes.txt","pad":""}"#.len();
    let pad = "x".repeat(size.saturating_sub(unpadded));
    Ok(serde_json::to_string(
        &serde_json::json!({"path": "notes.txt", "pad": pad}),
    )?)
}

/// Runs `messages` messages of `setup` under callgrind; the hook's instructions.
fn callgrind(args: &Args, setup: &str, cache: &Path, messages: usize) -> anyhow::Result<u64> {
    let out = tempfile::NamedTempFile::new()?;
    let status = Command::new(&args.valgrind)
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.path().display()))
        .args(["--compress-strings=no", "--compress-pos=no"])
        .arg("--quiet")
        .arg(std::env::current_exe()?)
        .args(["--setup", setup, "--mode", &args.mode])
        .arg(format!("--size={}", args.size))
        .arg(format!("--child-messages={messages}"))
        .arg("--cache")
        .arg(cache)
        .env_remove("RUST_BACKTRACE")
        .status()
        .with_context(|| format!("running {}", args.valgrind.display()))?;
    ensure!(status.success(), "callgrind run of {setup}: {status}");
    let profile = std::fs::read_to_string(out.path())?;
    jit_instructions(&profile)
}

/// In a callgrind profile (uncompressed names and positions, the one event `Ir`): the
/// instructions of code in no object file (wasmtime's compiled wasm), plus the inclusive cost of
/// its calls into code that is in one (the host functions wasm calls).
fn jit_instructions(profile: &str) -> anyhow::Result<u64> {
    const JIT: &str = "???";
    let mut object = String::new();
    let mut callee_object: Option<String> = None;
    let mut in_call = false;
    let mut total = 0;
    for line in profile.lines() {
        if let Some(name) = line.strip_prefix("ob=") {
            object = name.to_owned();
        } else if let Some(name) = line.strip_prefix("cob=") {
            callee_object = Some(name.to_owned());
        } else if line.starts_with("calls=") {
            in_call = true;
        } else if line.starts_with(|c: char| c.is_ascii_digit()) {
            let cost: u64 = match line.split_whitespace().nth(1) {
                Some(cost) => cost
                    .parse()
                    .with_context(|| format!("cost line {line:?}"))?,
                None => 0,
            };
            if object == JIT {
                let callee = callee_object.as_deref().unwrap_or(&object);
                if !in_call || callee != JIT {
                    total += cost;
                }
            }
            if in_call {
                in_call = false;
                callee_object = None;
            }
        }
    }
    ensure!(total > 0, "no instructions of compiled wasm code found");
    Ok(total)
}
