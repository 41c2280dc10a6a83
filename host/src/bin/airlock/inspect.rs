//! `airlock inspect`: the full pipeline over JSON Lines, one verdict line per message.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use crate::Mode;
use serde::Serialize;
use serde_json::value::RawValue;

use airlock::{
    EngineConfig, Gateway, GatewayLimits, Hook, HookLimits, HookOptions, HookWatcher, Response,
    Router, SealConfig, jsonl,
};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The hook component.
    #[arg(long)]
    hook: PathBuf,
    /// The hook's JSON config (a file); `{}` when absent.
    #[arg(long)]
    config: Option<PathBuf>,
    /// JSON Lines input, one message a line; standard input when absent.
    file: Option<PathBuf>,
    /// Time limit for each hook call, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 100)]
    timeout_ms: u64,
    /// Fuel budget for each hook call (turns on fuel metering, which slows calls by 12-35 %).
    #[arg(long, value_name = "UNITS")]
    fuel: Option<u64>,
    /// Linear memory limit for the hook, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    memory_mib: usize,
    /// Wasm stack for each hook call, in KiB.
    #[arg(long, value_name = "KIB", default_value_t = 512)]
    stack_kib: usize,
    /// Elements in any one table of the hook.
    #[arg(long, value_name = "COUNT", default_value_t = 100_000)]
    table_elements: usize,
    /// Core instances (and memories, and tables) in one hook instance.
    #[arg(long, value_name = "COUNT", default_value_t = 64)]
    instances: usize,
    /// Log text a hook may write per message, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 10)]
    log_bytes: usize,
    /// Largest message (name, headers and body), in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    max_message_bytes: usize,
    /// A fresh instance per message, warm instances reused across messages, or whichever suits
    /// the hook's language runtime (reuse for CPython, QuickJS and SpiderMonkey).
    #[arg(long, value_enum, default_value_t = Mode::Auto)]
    mode: Mode,
    /// Reload the hook when its file changes (useful while reading standard input).
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    cache: crate::CacheArgs,
}

#[derive(Serialize)]
struct Outcome<'a> {
    verdict: &'static str,
    code: Option<&'a str>,
    reason: Option<&'a str>,
    delivered: Option<&'a RawValue>,
    /// SHA-256 of the hook that decided; null when the gateway refused the request first.
    hook: Option<&'a str>,
    /// Wall-clock time of the hook call, in microseconds.
    cost_us: Option<f64>,
    /// Fuel the hook used, when metered.
    fuel: Option<u64>,
}

#[derive(Serialize)]
struct LineError<'a> {
    line: usize,
    error: &'a str,
}

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config {}", path.display()))?;
            serde_json::from_str::<serde::de::IgnoredAny>(&text)
                .with_context(|| format!("config {} is not valid JSON", path.display()))?;
            text
        }
        None => "{}".to_owned(),
    };
    let bytes = crate::read_hook(&args.hook)?;
    let options = HookOptions {
        config,
        limits: HookLimits {
            timeout: Duration::from_millis(args.timeout_ms),
            fuel: args.fuel,
            memory_bytes: args.memory_mib << 20,
            table_elements: args.table_elements,
            instances: args.instances,
            log_bytes: args.log_bytes,
        },
        mode: args.mode.resolve(&bytes, 4),
    };
    let engine = args.cache.engine(EngineConfig {
        fuel: args.fuel.is_some(),
        max_wasm_stack: args.stack_kib << 10,
        memory_ceiling: (args.memory_mib << 20).max(EngineConfig::default().memory_ceiling),
        ..EngineConfig::default()
    })?;
    let hook = Hook::load(&engine, &bytes, options)
        .with_context(|| format!("cannot load hook {}", args.hook.display()))?;
    drop(bytes);
    // The core echoes every message back as it decoded it from the envelope.
    let router = Router::new().fallback(|message| async move {
        jsonl::message_line(&message)
            .map(Response::Json)
            .map_err(|e| airlock::CoreError::Handler {
                name: message.name.clone(),
                message: format!("cannot write the delivered message: {e}"),
            })
    });
    let limits = GatewayLimits {
        max_message_bytes: args.max_message_bytes,
        ..GatewayLimits::default()
    };
    let gateway = Arc::new(Gateway::with_config(
        hook,
        router,
        limits,
        SealConfig::default(),
    )?);
    let _watcher = args
        .watch
        .then(|| HookWatcher::spawn(&gateway, &args.hook, Duration::from_millis(200)));

    let input: Box<dyn Read> = match &args.file {
        Some(path) => Box::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        ),
        None => Box::new(std::io::stdin()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut out = std::io::stdout().lock();
    let mut counts = [0usize; 4];
    for (index, line) in BufReader::new(input).split(b'\n').enumerate() {
        let number = index + 1;
        let line = line.context("cannot read input")?;
        let parsed = std::str::from_utf8(&line)
            .map_err(|e| format!("not UTF-8: {e}"))
            .and_then(|text| match text.trim() {
                "" => Ok(None),
                text => jsonl::parse_line(text).map(Some),
            });
        let (source, request) = match parsed {
            Ok(Some(message)) => message,
            Ok(None) => continue,
            Err(error) => {
                counts[3] += 1;
                let error = format!("line {number}: {error}");
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&LineError {
                        line: number,
                        error: &error
                    })?
                )?;
                continue;
            }
        };
        let reply = runtime.block_on(gateway.handle(source, request));
        counts[reply.decision as usize] += 1;
        let (code, reason, delivered) = match &reply.outcome {
            Ok(Response::Json(delivered)) => (None, None, Some(&**delivered)),
            Ok(_) => (None, None, None),
            Err(rejection) => (Some(&*rejection.code), Some(&*rejection.reason), None),
        };
        let outcome = Outcome {
            verdict: reply.decision.as_str(),
            code,
            reason,
            delivered,
            hook: reply.hook_digest.as_deref(),
            cost_us: reply.hook_time.map(|t| t.as_nanos() as f64 / 1000.0),
            fuel: reply.hook_fuel,
        };
        writeln!(out, "{}", serde_json::to_string(&outcome)?)?;
    }
    out.flush()?;
    eprintln!(
        "airlock inspect: {} passed, {} replaced, {} rejected, {} malformed lines",
        counts[0], counts[1], counts[2], counts[3]
    );
    Ok(())
}
