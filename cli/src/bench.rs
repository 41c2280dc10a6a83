//! `airlock bench`: per-message cost of the full pipeline with a hook, against a no-hook baseline
//! measured in the same run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use clap::Args;

use serde::Serialize;

use airlock::{
    Body, CacheOutcome, Gateway, Hook, InstanceMode, Metrics, Request, Response, Router, Source,
    jsonl,
};

use crate::flags::{HookFlags, Mode, read_config, read_hook};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Size of each message's JSON body, in bytes: the message's object body gets a `pad` string
    /// field long enough to reach it.
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// The message to send, as a JSON Lines message (`airlock inspect`'s form) with an object
    /// payload, e.g. `{"kind":"event","name":"login","payload":{"password":"x"}}` to measure a
    /// `replace` with the redact hook.
    #[arg(long, value_name = "LINE", default_value = DEFAULT_MESSAGE)]
    message: String,
    /// Tasks sending messages at once, on as many worker threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seconds to measure the hook, and again the baseline.
    #[arg(long, default_value_t = 3.0)]
    duration: f64,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
    /// Also measure the hook with metrics counted (`Gateway::with_metrics`), in the same run.
    #[arg(long)]
    with_metrics: bool,
    /// Also measure the same hook loaded with this config instead, in the same run (say, one
    /// that makes it skip a host state call).
    #[arg(long, value_name = "FILE.json")]
    compare_config: Option<PathBuf>,
    #[command(flatten)]
    hooks: HookFlags,
}

#[derive(Debug, Serialize)]
struct Measured {
    median_ns: u64,
    p99_ns: u64,
    msgs_per_s: f64,
    mb_per_s: f64,
    messages: u64,
}

const DEFAULT_MESSAGE: &str =
    r#"{"kind":"command","name":"fs_read","payload":{"path":"notes.txt"}}"#;

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
    verdict: &'static str,
    /// Milliseconds `Hook::load` took: compiling (or loading from the cache), checking, and
    /// configuring a first instance.
    load_ms: f64,
    /// `compiled` or `cache`.
    loaded_from: &'static str,
    component_bytes: usize,
    hook: String,
    /// With `--with-metrics`: the hook with metrics counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics_median_ns: Option<u64>,
    /// With `--compare-config`: the hook with the other config.
    #[serde(skip_serializing_if = "Option::is_none")]
    compare_median_ns: Option<u64>,
}

/// A no-op core: every message is answered without looking at it.
fn noop_router() -> Router {
    Router::new().fallback(|_| async { Ok(Response::Delivered { receivers: 1 }) })
}

/// The message line with its object payload padded to `size` bytes of JSON.
fn request(line: &str, size: usize) -> anyhow::Result<(Source, Request)> {
    let (source, mut request) =
        jsonl::parse_line(line).map_err(|e| anyhow::anyhow!("--message {line:?}: {e}"))?;
    let Body::Json(text) = &request.body else {
        anyhow::bail!("--message {line:?} has a bytes body; it needs a JSON object payload");
    };
    let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .with_context(|| format!("--message {line:?} needs a JSON object payload"))?;
    object.insert("pad".to_owned(), "".into());
    let unpadded = serde_json::to_string(&object)?.len();
    object.insert(
        "pad".to_owned(),
        "x".repeat(size.saturating_sub(unpadded)).into(),
    );
    request.body = Body::Json(serde_json::to_string(&object)?);
    Ok((source, request))
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    ensure!(
        (1..=1024).contains(&args.threads),
        "--threads {} is out of range: give 1 to 1024",
        args.threads
    );
    ensure!(
        (0.001..=86_400.0).contains(&args.duration),
        "--duration {:?} is out of range: give 0.001 to 86400 seconds",
        args.duration
    );
    ensure!(
        args.size <= args.hooks.max_message_bytes,
        "--size {} is over the message limit of {} bytes (--max-message-bytes)",
        args.size,
        args.hooks.max_message_bytes
    );
    args.hooks.single("bench")?;
    let engine = args.hooks.engine(false)?;
    let loading = Instant::now();
    let loaded = args
        .hooks
        .load(&engine, Mode::Auto, args.threads.saturating_mul(2), |l| l)?
        .pop()
        .expect("one hook");
    let load_ms = loading.elapsed().as_secs_f64() * 1e3;
    let (hook, component_bytes) = (loaded.hook, loaded.bytes);
    let mode = hook.options().mode;
    let compiled = match hook.compiled() {
        CacheOutcome::Hit => "cache",
        CacheOutcome::Compiled | CacheOutcome::Stored => "compiled",
    };
    let digest = hook.digest().to_owned();
    let limits = args.hooks.gateway_limits();
    let gateway_for = |hook: Hook, metrics: bool| -> anyhow::Result<Arc<Gateway>> {
        let gateway = Gateway::with_config(hook, noop_router(), limits, args.hooks.seal_config()?)?;
        Ok(Arc::new(match metrics {
            true => gateway.with_metrics(Metrics::new()),
            false => gateway,
        }))
    };
    let mut extra = Vec::new();
    if args.with_metrics {
        extra.push(("metrics", gateway_for(hook.clone(), true)?));
    }
    if let Some(path) = &args.compare_config {
        let bytes = read_hook(&args.hooks.hooks[0])?;
        let options = hook.options().clone().with_config(read_config(path)?);
        let other = Hook::load(&engine, &bytes, options).with_context(|| {
            format!(
                "cannot load the hook with --compare-config {}",
                path.display()
            )
        })?;
        extra.push(("compare", gateway_for(other, false)?));
    }
    let gateway = gateway_for(hook, false)?;
    let (source, message) = request(&args.message, args.size)?;
    let reply = futures_block(gateway.handle(source.clone(), message.clone()));
    if let Err(rejection) = &reply.outcome {
        anyhow::bail!(
            "the benchmark message is refused ({rejection}); measure a message the hook passes or replaces (--message)"
        );
    }
    for (name, gateway) in &extra {
        let reply = futures_block(gateway.handle(source.clone(), message.clone()));
        if let Err(rejection) = &reply.outcome {
            anyhow::bail!("the benchmark message is refused by the {name} run ({rejection})");
        }
    }
    let verdict = reply.decision.as_str();

    if cfg!(debug_assertions) {
        eprintln!(
            "airlock bench: warning: this airlock is an unoptimized build (scripts/airlock's quick profile); its figures are not representative: build it with `cargo build --release -p airlock-cli`"
        );
    }
    let duration = Duration::from_secs_f64(args.duration);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .build()?;
    eprintln!(
        "airlock bench: {} B, {verdict}, {} thread(s), {} mode, {:.1} s each for the baseline and the hook",
        args.size,
        args.threads,
        report_mode(mode),
        args.duration
    );
    let baseline = measure(&runtime, args.threads, duration, args.size, {
        let message = message.clone();
        move || {
            // The same path without isolation: validate, then hand the message to a no-op core.
            let message = message.clone();
            async move {
                limits.validate(&message).map_err(|r| r.to_string())?;
                std::hint::black_box(message);
                Ok(())
            }
        }
    })?;
    let through = |gateway: &Arc<Gateway>| {
        let (gateway, source, message) = (gateway.clone(), source.clone(), message.clone());
        move || {
            let gateway = gateway.clone();
            let (source, message) = (source.clone(), message.clone());
            async move {
                let reply = gateway.handle(source, message).await;
                reply.outcome.map(drop).map_err(|r| r.to_string())
            }
        }
    };
    let hooked = measure(
        &runtime,
        args.threads,
        duration,
        args.size,
        through(&gateway),
    )?;
    let mut extras = Vec::new();
    for (name, gateway) in &extra {
        extras.push((
            *name,
            measure(
                &runtime,
                args.threads,
                duration,
                args.size,
                through(gateway),
            )?,
        ));
    }
    let extra_median = |wanted: &str| {
        extras
            .iter()
            .find(|(name, _)| *name == wanted)
            .map(|(_, m)| m.median_ns)
    };
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
        mode: report_mode(mode),
        verdict,
        load_ms,
        loaded_from: compiled,
        component_bytes,
        hook: digest,
        metrics_median_ns: extra_median("metrics"),
        compare_median_ns: extra_median("compare"),
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{:<10} {:>12} {:>12} {:>14} {:>10}",
            "", "median", "p99", "msgs/s", "MB/s"
        );
        let rows = [("baseline", &baseline), ("hook", &hooked)]
            .into_iter()
            .chain(extras.iter().map(|(name, m)| (*name, m)));
        for (name, m) in rows {
            println!(
                "{name:<10} {:>9.2} µs {:>9.2} µs {:>14.0} {:>10.1}",
                m.median_ns as f64 / 1000.0,
                m.p99_ns as f64 / 1000.0,
                m.msgs_per_s,
                m.mb_per_s
            );
        }
        println!("ratio (hook median / baseline median): {:.1}", report.ratio);
        for (name, m) in &extras {
            println!(
                "{name}: {:+.2} µs median against the hook ({:.2}x)",
                (m.median_ns as f64 - hooked.median_ns as f64) / 1000.0,
                m.median_ns as f64 / hooked.median_ns.max(1) as f64
            );
        }
        println!(
            "hook: {} bytes, loaded in {:.1} ms ({})",
            report.component_bytes, report.load_ms, report.loaded_from
        );
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
) -> anyhow::Result<Measured>
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
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
                        make().await.map_err(|refused| {
                            anyhow::anyhow!(
                                "message {} of the run was refused: {refused} (a hook past its time limit usually means the machine is overloaded)",
                                latencies.len() + 1
                            )
                        })?;
                        latencies.push(one.elapsed().as_nanos().min(u32::MAX as u128) as u32);
                    }
                    anyhow::Ok(latencies)
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("benchmark task")?);
        }
        anyhow::Ok(all)
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize] as u64;
    let msgs_per_s = latencies.len() as f64 / elapsed;
    Ok(Measured {
        median_ns: at(0.5),
        p99_ns: at(0.99),
        msgs_per_s,
        mb_per_s: msgs_per_s * size as f64 / 1e6,
        messages: latencies.len() as u64,
    })
}

fn report_mode(mode: InstanceMode) -> &'static str {
    match mode {
        InstanceMode::Fresh => "fresh",
        InstanceMode::Reuse { .. } => "reuse",
    }
}

fn futures_block<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(future)
}
