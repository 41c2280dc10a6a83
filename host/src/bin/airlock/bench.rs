//! `airlock bench`: per-message cost of the full pipeline with a hook, against a no-hook baseline
//! measured in the same run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use clap::{Args, ValueEnum};
use serde::Serialize;

use airlock::{
    Body, Gateway, GatewayLimits, Hook, HookEngine, HookOptions, InstanceMode, Kind, Request,
    Router, Source,
};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The hook to measure.
    #[arg(long)]
    hook: PathBuf,
    /// The hook's JSON config (a file).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Size of each message's JSON args, in bytes (an `fs_read` command padded to it).
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// A fresh instance per message, or warm instances reused.
    #[arg(long, value_enum, default_value_t = Mode::Fresh)]
    mode: Mode,
    /// Tasks sending messages at once, on as many worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seconds to measure the hook, and again the baseline.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    Fresh,
    Reuse,
}

#[derive(Debug, Serialize)]
struct Measured {
    median_ns: u64,
    p99_ns: u64,
    msgs_per_s: f64,
    mb_per_s: f64,
    messages: u64,
}

#[derive(Debug, Serialize)]
struct Report {
    median_ns: u64,
    p99_ns: u64,
    msgs_per_s: f64,
    mb_per_s: f64,
    baseline_median_ns: u64,
    baseline_p99_ns: u64,
    baseline_msgs_per_s: f64,
    ratio: f64,
    size: usize,
    threads: usize,
    mode: &'static str,
    hook: String,
}

#[derive(serde::Deserialize)]
struct ReadArgs {
    #[allow(dead_code)]
    path: String,
}

fn request(size: usize) -> Request {
    let filler = size.saturating_sub(r#"{"path":"notes.txt","pad":""}"#.len());
    let args = format!(r#"{{"path":"notes.txt","pad":"{}"}}"#, "x".repeat(filler));
    Request::new(Kind::Command, "fs_read", Body::Json(args))
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    ensure!(args.threads >= 1, "--threads must be at least 1");
    ensure!(
        args.duration > 0.0 && args.duration.is_finite(),
        "--duration {} is not a positive number of seconds",
        args.duration
    );
    let config = match &args.config {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config {}", path.display()))?,
        None => "{}".to_owned(),
    };
    let mode = match args.mode {
        Mode::Fresh => InstanceMode::Fresh,
        Mode::Reuse => InstanceMode::Reuse {
            max_idle: args.threads * 2,
        },
    };
    let engine = HookEngine::new(Default::default())?;
    let options = HookOptions {
        config,
        mode,
        ..HookOptions::default()
    };
    let hook = Hook::load_file(&engine, &args.hook, options)
        .with_context(|| format!("cannot load hook {}", args.hook.display()))?;
    let digest = hook.digest().to_owned();
    let router = Router::new().command("fs_read", |_: ReadArgs, _| async { Ok::<_, String>(()) });
    let gateway = Arc::new(Gateway::new(hook, router)?);
    let message = request(args.size);
    let source = Source::new("main", "main", "tauri://localhost");
    let reply = futures_block(gateway.handle(source.clone(), message.clone()));
    if let Err(rejection) = &reply.outcome {
        anyhow::bail!(
            "the benchmark message is refused ({rejection}); use a hook that passes an `fs_read` of notes.txt"
        );
    }

    let duration = Duration::from_secs_f64(args.duration);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .build()?;
    eprintln!(
        "airlock bench: {} B, {} thread(s), {:?} mode, {:.1} s each for the baseline and the hook",
        args.size, args.threads, args.mode, args.duration
    );
    let limits = GatewayLimits::default();
    let baseline = measure(&runtime, args.threads, duration, args.size, {
        let message = message.clone();
        move || {
            // What the app does without isolation: validate, parse the args, call the handler.
            let message = message.clone();
            async move {
                limits.validate(&message).expect("valid");
                let Body::Json(text) = &message.body else {
                    unreachable!("JSON args")
                };
                let args: ReadArgs = serde_json::from_str(text).expect("args");
                std::hint::black_box(args);
            }
        }
    });
    let hooked = measure(&runtime, args.threads, duration, args.size, {
        let gateway = gateway.clone();
        move || {
            let gateway = gateway.clone();
            let (source, message) = (source.clone(), message.clone());
            async move {
                let reply = gateway.handle(source, message).await;
                assert!(reply.outcome.is_ok(), "{:?}", reply.outcome);
            }
        }
    });
    let report = Report {
        median_ns: hooked.median_ns,
        p99_ns: hooked.p99_ns,
        msgs_per_s: hooked.msgs_per_s,
        mb_per_s: hooked.mb_per_s,
        baseline_median_ns: baseline.median_ns,
        baseline_p99_ns: baseline.p99_ns,
        baseline_msgs_per_s: baseline.msgs_per_s,
        ratio: hooked.median_ns as f64 / baseline.median_ns.max(1) as f64,
        size: args.size,
        threads: args.threads,
        mode: match args.mode {
            Mode::Fresh => "fresh",
            Mode::Reuse => "reuse",
        },
        hook: digest,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{:<10} {:>12} {:>12} {:>14} {:>10}",
            "", "median", "p99", "msgs/s", "MB/s"
        );
        for (name, m) in [("baseline", &baseline), ("hook", &hooked)] {
            println!(
                "{name:<10} {:>9.2} µs {:>9.2} µs {:>14.0} {:>10.1}",
                m.median_ns as f64 / 1000.0,
                m.p99_ns as f64 / 1000.0,
                m.msgs_per_s,
                m.mb_per_s
            );
        }
        println!("ratio (hook median / baseline median): {:.1}", report.ratio);
    }
    Ok(())
}

/// Runs `make()`'s futures back to back on `threads` tasks for `duration`; per-message latency.
fn measure<F, Fut>(
    runtime: &tokio::runtime::Runtime,
    threads: usize,
    duration: Duration,
    size: usize,
    make: F,
) -> Measured
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let mut latencies: Vec<u32> = runtime.block_on(async {
        let tasks: Vec<_> = (0..threads)
            .map(|_| {
                let make = make.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let end = Instant::now() + duration;
                    while Instant::now() < end {
                        let one = Instant::now();
                        make().await;
                        latencies.push(one.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("benchmark task"));
        }
        all
    });
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as u64;
    let msgs_per_s = latencies.len() as f64 / elapsed;
    Measured {
        median_ns: at(0.5),
        p99_ns: at(0.99),
        msgs_per_s,
        mb_per_s: msgs_per_s * size as f64 / 1e6,
        messages: latencies.len() as u64,
    }
}

fn futures_block<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}
