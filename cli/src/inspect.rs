//! `airlock inspect`: the full pipeline over JSON Lines, one verdict line per message.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use serde::Serialize;
use serde_json::value::RawValue;

use airlock::{Gateway, HookWatcher, Response, jsonl};

use crate::flags::{HookFlags, Mode};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// JSON Lines input, one message a line; standard input when absent.
    file: Option<PathBuf>,
    /// Reload the hook when its file changes (useful while reading standard input; one --hook).
    #[arg(long)]
    watch: bool,
    #[command(flatten)]
    hooks: HookFlags,
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
    /// What hooks in monitor mode (`--monitor`) would have done.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    monitored: Vec<jsonl::MonitoredLine<'a>>,
}

#[derive(Serialize)]
struct LineError<'a> {
    line: usize,
    error: &'a str,
}

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let watched = match args.watch {
        true => Some(args.hooks.single("inspect --watch")?.to_path_buf()),
        false => None,
    };
    let engine = args.hooks.engine(false)?;
    let mut hooks = args
        .hooks
        .load(&engine, Mode::Auto, 4, |limits| limits)?
        .into_iter();
    let first = hooks.next().expect("clap requires a hook");
    let routes = args.hooks.load_routes(&engine, Mode::Auto, 4)?;
    // The core echoes every message back as it decoded it from the envelope.
    let router = crate::cases::echo_router();
    let mut gateway = Gateway::with_config(
        first.hook,
        router,
        args.hooks.gateway_limits(),
        args.hooks.seal_config()?,
    )?;
    for next in hooks {
        gateway = gateway.then(next.hook);
    }
    let gateway = crate::routes::apply(gateway, routes);
    let gateway = Arc::new(gateway);
    let _watcher =
        watched.map(|path| HookWatcher::spawn(&gateway, path, Duration::from_millis(200)));

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
            monitored: jsonl::MonitoredLine::all(&reply.monitored, true),
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
