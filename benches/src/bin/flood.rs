//! The flood driver: how a quiet window fares through `airlock serve` while other windows flood
//! the hook with messages that run it to its time limit (the red team's scenario of issue 15).
//!
//! It starts `airlock serve` with one hook (by default the Python path-guard) and the server's
//! default limits (rate, requests in flight), plus any `--serve-arg`. Each attacking window
//! keeps `--in-flight` `fs_read` invokes in flight whose args hold `--keys` top-level keys, one
//! of them escaped (`"\u0078"`): path-guard then decodes every top-level key with its strict
//! reader, in the hook's own language, which runs the Python and JavaScript builds past their
//! time limit at 50 000 keys (540 KB). Once the flood has run for a second, one quiet window sends harmless
//! `fs_read` invokes one after the other until the end, and the driver counts how its requests
//! were answered: the fraction refused, by code, and the median round trip. Attackers' replies
//! are counted by code too.
//!
//! ```text
//! cargo build --release -p airlock-cli -p airlock-benches --bin flood
//! env -u RUST_BACKTRACE target/release/flood --hook target/hooks/path-guard.python.wasm
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Parser)]
#[command(
    about = "A quiet window's requests through `airlock serve` while other windows flood the hook"
)]
struct Args {
    /// The `airlock` binary.
    #[arg(long, default_value = "target/release/airlock")]
    airlock: PathBuf,
    /// The hook.
    #[arg(long, default_value = "target/hooks/path-guard.python.wasm")]
    hook: String,
    /// Attacking windows.
    #[arg(long, default_value_t = 10)]
    attackers: usize,
    /// Attack messages each attacking window keeps in flight (the server's default limit per
    /// connection is 32).
    #[arg(long, default_value_t = 32)]
    in_flight: usize,
    /// Top-level keys in each attack message's args.
    #[arg(long, default_value_t = 50_000)]
    keys: usize,
    /// Seconds the quiet window is measured, after one second of flood alone.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// An argument for `airlock serve` (repeatable), e.g. `--serve-arg=--hook-calls=64`.
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    serve_args: Vec<String>,
}

/// `Some(code)` for a reply frame (`pass` when it was answered), `None` for other frames.
fn reply_code(frame: &Message) -> anyhow::Result<Option<String>> {
    Ok(reply_reason(frame)?.map(|(code, _)| code))
}

/// `Some((code, reason))` for a reply frame (`pass` and no reason when it was answered).
fn reply_reason(frame: &Message) -> anyhow::Result<Option<(String, String)>> {
    Ok(
        airlock_benches::reply_head(frame)?.map(|head| match head.ok {
            true => ("pass".to_owned(), String::new()),
            false => (
                head.code.unwrap_or_else(|| "?".to_owned()),
                head.reason.unwrap_or_default(),
            ),
        }),
    )
}

type Counts = BTreeMap<String, u64>;

/// One attacking window: `in_flight` attacks always outstanding until `end`; its replies by code.
async fn attack(
    port: u16,
    frame: Message,
    in_flight: usize,
    end: Instant,
) -> anyhow::Result<Counts> {
    let ws = airlock_benches::connect(port).await?;
    let (mut sink, mut stream) = ws.split();
    let room = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let writer = {
        let room = room.clone();
        async move {
            while Instant::now() < end {
                let Ok(Ok(permit)) =
                    tokio::time::timeout_at(end.into(), room.clone().acquire_owned()).await
                else {
                    break;
                };
                permit.forget();
                sink.send(frame.clone()).await?;
            }
            anyhow::Ok(sink)
        }
    };
    let reader = async move {
        let mut counts = Counts::new();
        while let Ok(Some(frame)) = tokio::time::timeout_at(end.into(), stream.next()).await {
            if let Some(code) = reply_code(&frame?)? {
                *counts.entry(code).or_default() += 1;
                room.add_permits(1);
            }
        }
        anyhow::Ok(counts)
    };
    let (sink, counts) = tokio::join!(writer, reader);
    let _ = sink?.close().await;
    counts
}

/// The quiet window: one harmless request at a time from `start` to `end`; its replies by code
/// (refusals by code and reason, numbers left out) and the round trips in milliseconds.
async fn quiet(port: u16, start: Instant, end: Instant) -> anyhow::Result<(Counts, Vec<f64>)> {
    let mut ws = airlock_benches::connect(port).await?;
    tokio::time::sleep_until(start.into()).await;
    let frame = Message::text(
        r#"{"id":1,"kind":"command","name":"fs_read","payload":{"path":"notes.txt"}}"#,
    );
    let (mut counts, mut times) = (Counts::new(), Vec::new());
    while Instant::now() < end {
        let sent = Instant::now();
        ws.send(frame.clone()).await?;
        loop {
            let frame = ws.next().await.context("connection ended")??;
            if let Some((code, reason)) = reply_reason(&frame)? {
                let reason: String = reason.chars().filter(|c| !c.is_ascii_digit()).collect();
                let key = match code.as_str() {
                    "pass" => code,
                    _ => format!("{code} ({reason})"),
                };
                *counts.entry(key).or_default() += 1;
                break;
            }
        }
        times.push(sent.elapsed().as_secs_f64() * 1e3);
    }
    let _ = ws.close(None).await;
    Ok((counts, times))
}

fn describe(counts: &Counts) -> String {
    counts
        .iter()
        .map(|(code, n)| format!("{code} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let flags: Vec<&str> = args.serve_args.iter().map(String::as_str).collect();
    let server = airlock_benches::serve(&args.airlock, &[&args.hook], &flags)?;
    let keys: String = (0..args.keys).map(|i| format!(r#","k{i}":0"#)).collect();
    let attack_frame = Message::text(format!(
        r#"{{"id":1,"kind":"command","name":"fs_read","payload":{{"path":"notes.txt","\u0078":1{keys}}}}}"#
    ));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (attacks, (quiet_counts, mut times)) = runtime.block_on(async {
        let start = Instant::now() + Duration::from_secs(1);
        let end = start + Duration::from_secs_f64(args.seconds);
        let attackers: Vec<_> = (0..args.attackers)
            .map(|_| {
                let frame = attack_frame.clone();
                tokio::spawn(attack(server.port, frame, args.in_flight, end))
            })
            .collect();
        let quiet = quiet(server.port, start, end).await?;
        let mut attacks = Counts::new();
        for attacker in attackers {
            for (code, n) in attacker.await?? {
                *attacks.entry(code).or_default() += n;
            }
        }
        anyhow::Ok((attacks, quiet))
    })?;
    let total: u64 = quiet_counts.values().sum();
    let failed = total - quiet_counts.get("pass").copied().unwrap_or(0);
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "hook {}, {} attacking windows x {} in flight, serve {:?}",
        args.hook, args.attackers, args.in_flight, args.serve_args
    );
    println!(
        "quiet window: {total} requests, {failed} failed ({:.1} %): {}; median round trip {median:.1} ms",
        100.0 * failed as f64 / total.max(1) as f64,
        describe(&quiet_counts)
    );
    println!("attackers' replies: {}", describe(&attacks));
    Ok(())
}
