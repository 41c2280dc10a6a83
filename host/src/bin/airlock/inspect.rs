//! `airlock inspect`: the full pipeline over JSON Lines, one verdict line per message.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use serde::Serialize;
use serde_json::value::RawValue;

use airlock::{
    Gateway, GatewayLimits, Hook, HookEngine, HookLimits, HookOptions, Response, Router,
    SealConfig, jsonl,
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
    /// Linear memory limit for the hook, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    memory_mib: usize,
    /// Log text a hook may write per message, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 10)]
    log_bytes: usize,
    /// Largest message (name, headers and body), in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    max_message_bytes: usize,
}

#[derive(Serialize)]
struct Outcome<'a> {
    verdict: &'static str,
    code: Option<&'a str>,
    reason: Option<&'a str>,
    delivered: Option<&'a RawValue>,
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
    let options = HookOptions {
        config,
        limits: HookLimits {
            timeout: Duration::from_millis(args.timeout_ms),
            memory_bytes: args.memory_mib << 20,
            log_bytes: args.log_bytes,
        },
    };
    let engine = HookEngine::new(Default::default())?;
    let hook = Hook::load_file(&engine, &args.hook, options)
        .with_context(|| format!("cannot load hook {}", args.hook.display()))?;
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
    let gateway = Gateway::with_config(hook, router, limits, SealConfig::default())?;

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
