//! The end-to-end benchmark: what a caller sees through `airlock serve`, from a native WebSocket
//! client and from a page in headless Chromium (`tests/browser/bench.mjs`), for each setup of
//! hooks in the same run (the demo's two hooks, and a pass-all hook whose figures are the
//! transport's own share). Run it with `scripts/e2e-bench`, which builds what it needs.
//!
//! Per setup it starts `airlock serve` on a free loopback port (rate limit raised by flags), then
//! measures sequential round trips (one request, wait for its reply; median and p99) of `invoke`
//! (the demo core's `args_size` command, JSON args `{"data":"xxx…"}`), `emit` (an event nobody
//! listens to, same JSON body) and bytes (`emit` with a binary body) at 100 B, 10 KB and 1 MB,
//! then pipelined throughput of 100 B invokes on one connection and across 16. Verdicts are
//! reported, as in the demo (carried in the replies). The page measures each JSON size
//! `airlock.js` sends as a binary frame (over 16 KiB) three times: as it does, in a text frame
//! (`binaryAbove: Infinity`), and by upload (`uploadAbove: 0`); and each small text request twice:
//! through `airlock.js`, and on a bare WebSocket. Last, the transport's floor: the same clients
//! against a bare server with no Airlock, in a process of its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use clap::Parser;
use futures_util::{SinkExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use airlock_benches::{Server, connect};
use airlock_tests::Ws;

#[derive(Debug, Parser)]
#[command(about = "End-to-end benchmark of `airlock serve`: native client and headless Chromium")]
struct Args {
    /// The `airlock` binary.
    #[arg(long, default_value = "target/release/airlock")]
    airlock: PathBuf,
    /// A setup to measure, `NAME=HOOK[,HOOK…]` (hooks chained in order); repeat. The last one is
    /// the baseline the others are compared with.
    #[arg(long = "setup", value_name = "NAME=HOOKS", required = true)]
    setups: Vec<String>,
    /// The page driver (`tests/browser/bench.mjs`); without it only the native client runs.
    #[arg(long)]
    page: Option<PathBuf>,
    /// The Chromium the page driver starts.
    #[arg(long, default_value = "/usr/bin/chromium")]
    chromium: PathBuf,
    /// Seconds of each pipelined measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Multiplies the number of sequential round trips of each case (see `--sizes`).
    #[arg(long, default_value_t = 1.0)]
    rounds: f64,
    /// Only these kinds (`invoke`, `emit`, `bytes`), comma-separated.
    #[arg(long, value_delimiter = ',')]
    kinds: Vec<String>,
    /// These sizes, in bytes, comma-separated (100, 10 000 and 1 000 000 by default); any size
    /// is taken, with 2 000 round trips up to 1 000 B, 1 000 up to 100 000 B, else 60.
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Do not ask `airlock serve` for a cross-origin isolated page (`--cross-origin-isolated`,
    /// which servers before it lack); the page's clock is then 100 µs coarse.
    #[arg(long)]
    no_isolation: bool,
    /// An extra argument for every `airlock serve` the benchmark starts (e.g. `--serve-arg=--workers=1`);
    /// repeat.
    #[arg(long = "serve-arg", value_name = "ARG", allow_hyphen_values = true)]
    serve_args: Vec<String>,
    /// Skip the pipelined measurements.
    #[arg(long)]
    no_pipelined: bool,
    /// Skip the transport's floor (a bare server with no Airlock, benches/src/floor.rs).
    #[arg(long)]
    no_floor: bool,
    /// Write every figure as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Run the floor server inside this process, on a thread of its own (as before 2026-12-03),
    /// instead of in a process of its own as `airlock serve` is.
    #[arg(long)]
    floor_in_process: bool,
}

/// The first argument that makes this binary the floor server alone: it prints the server's
/// address on a line of standard output and serves until its standard input closes (when the
/// benchmark that started it ends, however it ends).
const SERVE_FLOOR: &str = "--serve-floor";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Case {
    kind: String,
    size: usize,
    rounds: usize,
    warmup: usize,
    /// How the page's `airlock.js` sends a JSON body: as it chooses (`None`), in a text frame
    /// (`"text"`: `binaryAbove: Infinity`) or by upload (`"upload"`: `uploadAbove: 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    frames: Option<String>,
    /// The page sends on a bare WebSocket, without `airlock.js`.
    #[serde(default)]
    raw: bool,
}

/// The smallest JSON body `airlock.js` sends in a binary frame (its `binaryAbove`, 16 KiB, plus
/// one).
const BINARY: usize = 16 * 1024 + 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pipelined {
    connections: usize,
    seconds: f64,
    window: usize,
    size: usize,
    kind: String,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
struct Stats {
    median_us: f64,
    p99_us: f64,
    samples: usize,
}

impl Stats {
    fn of(mut samples: Vec<f64>) -> Stats {
        samples.sort_by(f64::total_cmp);
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        Stats {
            median_us: at(0.5),
            p99_us: at(0.99),
            samples: samples.len(),
        }
    }
}

/// Everything measured for one setup, by client ("native", "page").
#[derive(Debug, Default, Serialize)]
struct Measured {
    /// `client/kind/size` → round-trip statistics.
    sequential: BTreeMap<String, Stats>,
    /// `client/connections` → messages a second.
    pipelined: BTreeMap<String, f64>,
}

fn cases(args: &Args) -> Vec<Case> {
    let mut out = Vec::new();
    for kind in ["invoke", "emit", "bytes"] {
        if !args.kinds.is_empty() && !args.kinds.iter().any(|k| k == kind) {
            continue;
        }
        let sizes = match args.sizes.is_empty() {
            true => vec![100, 10_000, 1_000_000],
            false => args.sizes.clone(),
        };
        for size in sizes {
            let rounds = if size <= 1000 {
                2000
            } else if size <= 100_000 {
                1000
            } else {
                60
            };
            let rounds = ((rounds as f64 * args.rounds) as usize).max(5);
            out.push(Case {
                kind: kind.to_owned(),
                size,
                rounds,
                warmup: (rounds / 10).max(3),
                frames: None,
                raw: false,
            });
        }
    }
    out
}

fn pipelined(args: &Args) -> Vec<Pipelined> {
    if args.no_pipelined {
        return Vec::new();
    }
    [1, 16]
        .map(|connections| Pipelined {
            connections,
            seconds: args.seconds,
            window: 32,
            size: 100,
            kind: "invoke".to_owned(),
        })
        .to_vec()
}

fn serve(args: &Args, hooks: &[&str]) -> anyhow::Result<Server> {
    // The benchmark sends far more than the default 100 messages a second per connection.
    let mut flags = vec!["--rate", "1e9", "--burst", "1000000000"];
    if !args.no_isolation {
        flags.push("--cross-origin-isolated");
    }
    flags.extend(args.serve_args.iter().map(String::as_str));
    airlock_benches::serve(&args.airlock, hooks, &flags)
}

/// The request frame of `kind` with a body of about `size` bytes. The id never changes: the
/// gateway echoes it and does not require it to be unique.
fn request(kind: &str, size: usize) -> Message {
    let data = "x".repeat(size.saturating_sub(11));
    match kind {
        "invoke" => Message::text(format!(
            r#"{{"id":1,"kind":"command","name":"args_size","payload":{{"data":"{data}"}}}}"#
        )),
        "emit" => Message::text(format!(
            r#"{{"id":1,"kind":"event","name":"bench","payload":{{"data":"{data}"}}}}"#
        )),
        _ => {
            let head = br#"{"id":1,"kind":"event","name":"bench"}"#;
            let mut frame = (head.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(head);
            frame.resize(frame.len() + size, b'x');
            Message::binary(frame)
        }
    }
}

/// Whether `frame` is a reply (an error if it is a refusal); other frames are `false`.
fn is_reply(frame: &Message) -> anyhow::Result<bool> {
    let Some(head) = airlock_benches::reply_head(frame)? else {
        return Ok(false);
    };
    ensure!(
        head.ok,
        "refused: {}: {}",
        head.code.unwrap_or_default(),
        head.reason.unwrap_or_default()
    );
    Ok(true)
}

async fn round_trip(ws: &mut Ws, frame: &Message) -> anyhow::Result<()> {
    ws.send(frame.clone()).await?;
    loop {
        let frame = ws.next().await.context("connection ended")??;
        if is_reply(&frame)? {
            return Ok(());
        }
    }
}

async fn native_sequential(port: u16, case: &Case) -> anyhow::Result<Stats> {
    let mut ws = connect(port).await?;
    let frame = request(&case.kind, case.size);
    let mut samples = Vec::with_capacity(case.rounds);
    for i in 0..case.warmup + case.rounds {
        let start = Instant::now();
        round_trip(&mut ws, &frame).await?;
        if i >= case.warmup {
            samples.push(start.elapsed().as_nanos() as f64 / 1000.0);
        }
    }
    let _ = ws.close(None).await;
    Ok(Stats::of(samples))
}

/// Replies received on all connections while `window` requests are kept in flight on each.
async fn native_pipelined(port: u16, p: &Pipelined) -> anyhow::Result<f64> {
    let frame = request(&p.kind, p.size);
    let mut sockets = Vec::new();
    for _ in 0..p.connections {
        let mut ws = connect(port).await?;
        round_trip(&mut ws, &frame).await?;
        sockets.push(ws);
    }
    let received = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(p.seconds);
    let mut tasks = Vec::new();
    let window = p.window;
    for ws in sockets {
        let (mut sink, mut stream) = ws.split();
        let room = Arc::new(tokio::sync::Semaphore::new(window));
        let (frame, received) = (frame.clone(), received.clone());
        let writer = {
            let room = room.clone();
            async move {
                let mut sent = 0u64;
                while Instant::now() < end {
                    let permit = match room.try_acquire() {
                        Ok(permit) => permit,
                        Err(_) => {
                            sink.flush().await?;
                            room.acquire().await?
                        }
                    };
                    permit.forget();
                    sink.feed(frame.clone()).await?;
                    sent += 1;
                }
                sink.flush().await?;
                anyhow::Ok((sink, sent))
            }
        };
        let reader = async move {
            let mut got = 0u64;
            while let Some(frame) = stream.next().await {
                if is_reply(&frame?)? {
                    got += 1;
                    room.add_permits(1);
                    if Instant::now() < end {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if Instant::now() >= end && room.available_permits() == window {
                    break;
                }
            }
            anyhow::Ok((stream, got))
        };
        tasks.push(tokio::spawn(async move {
            let ((mut sink, sent), (stream, got)) = tokio::try_join!(writer, reader)?;
            ensure!(sent == got, "sent {sent}, got {got} replies");
            let _ = sink.close().await;
            drop(stream);
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(received.load(Ordering::Relaxed) as f64 / p.seconds)
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FloorCase {
    transport: String,
    size: usize,
}

#[derive(Deserialize)]
struct PageLine {
    floor: Option<FloorCase>,
    case: Option<Case>,
    samples_us: Option<Vec<f64>>,
    pipelined: Option<Pipelined>,
    messages: Option<f64>,
    seconds: Option<f64>,
}

fn page(
    args: &Args,
    driver: &Path,
    url: &str,
    plan: serde_json::Value,
    into: &mut Measured,
) -> anyhow::Result<()> {
    let profile = tempfile::tempdir()?;
    let dir = driver.parent().context("driver has a folder")?;
    let output = Command::new("node")
        .arg(driver.file_name().context("driver is a file")?)
        .current_dir(dir)
        .env("AIRLOCK_URL", url)
        .env("CHROMIUM", &args.chromium)
        .env("AIRLOCK_PROFILE", profile.path())
        .env("AIRLOCK_BENCH", plan.to_string())
        .stderr(Stdio::inherit())
        .output()
        .context("cannot run node")?;
    ensure!(output.status.success(), "the page driver failed");
    for line in String::from_utf8(output.stdout)?.lines() {
        let line: PageLine =
            serde_json::from_str(line).with_context(|| format!("page driver printed {line:?}"))?;
        if let (Some(f), Some(samples)) = (&line.floor, &line.samples_us) {
            let key = format!("page/{}/{}", f.transport, f.size);
            into.sequential.insert(key, Stats::of(samples.clone()));
        } else if let (Some(c), Some(samples)) = (line.case, line.samples_us) {
            let client = match (c.frames.as_deref(), c.raw) {
                (Some("text"), _) => "page-text",
                (Some(_), _) => "page-upload",
                (_, true) => "page-raw",
                _ => "page",
            };
            let key = format!("{client}/{}/{}", c.kind, c.size);
            into.sequential.insert(key, Stats::of(samples));
        } else if let (Some(p), Some(n), Some(s)) = (line.pipelined, line.messages, line.seconds) {
            into.pipelined
                .insert(format!("page/{}", p.connections), n / s);
        }
    }
    Ok(())
}

fn measure(args: &Args, hooks: &[&str]) -> anyhow::Result<Measured> {
    let server = serve(args, hooks)?;
    let cases = cases(args);
    let pipes = pipelined(args);
    let mut out = Measured::default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        for case in cases.iter() {
            let stats = native_sequential(server.port, case).await?;
            eprintln!(
                "  native {} {} B: median {:.1} µs, p99 {:.1} µs",
                case.kind, case.size, stats.median_us, stats.p99_us
            );
            out.sequential
                .insert(format!("native/{}/{}", case.kind, case.size), stats);
        }
        for p in pipes.iter() {
            let rate = native_pipelined(server.port, p).await?;
            eprintln!(
                "  native pipelined, {} connections: {rate:.0} msgs/s",
                p.connections
            );
            out.pipelined
                .insert(format!("native/{}", p.connections), rate);
        }
        anyhow::Ok(())
    })?;
    if let Some(driver) = &args.page {
        // A JSON size sent in binary frames again in text frames and by upload, to see what
        // binary frames save.
        let mut cases = cases.clone();
        let again: Vec<Case> = cases
            .iter()
            .filter(|c| c.size >= BINARY && c.kind != "bytes")
            .flat_map(|c| {
                ["text", "upload"].map(|frames| Case {
                    frames: Some(frames.to_owned()),
                    ..c.clone()
                })
            })
            .collect();
        // A small text request again on a bare WebSocket, to see airlock.js's own share.
        let raw: Vec<Case> = cases
            .iter()
            .filter(|c| c.size < 100_000 && c.kind != "bytes")
            .map(|c| Case {
                raw: true,
                ..c.clone()
            })
            .collect();
        cases.extend(again);
        cases.extend(raw);
        let plan = serde_json::json!({ "cases": cases, "pipelined": pipes });
        page(args, driver, &server.url, plan, &mut out)?;
    }
    Ok(out)
}

/// The sizes of the sequential cases, each once.
fn sizes(args: &Args) -> Vec<usize> {
    let mut sizes: Vec<usize> = cases(args).iter().map(|c| c.size).collect();
    sizes.sort_unstable();
    sizes.dedup();
    sizes
}

/// What the same clients pay with no Airlock: a bare server (benches/src/floor.rs) answering a
/// WebSocket message (text and binary) or a `fetch` POST with a small frame.
fn floor(args: &Args) -> anyhow::Result<Measured> {
    let (addr, _server) = match args.floor_in_process {
        true => (airlock_benches::floor::start()?, None),
        false => {
            let (addr, child) = floor_process()?;
            (addr, Some(child))
        }
    };
    let mut out = Measured::default();
    let template: Vec<Case> = cases(args);
    let rounds = |size: usize| {
        template
            .iter()
            .find(|c| c.size == size)
            .map_or((5, 3), |c| (c.rounds, c.warmup))
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let url = format!("ws://{addr}/ws");
        let (mut ws, _) = tokio_tungstenite::connect_async(url.as_str()).await?;
        for size in sizes(args) {
            let (rounds, warmup) = rounds(size);
            let frame = request("emit", size);
            let mut samples = Vec::with_capacity(rounds);
            for i in 0..warmup + rounds {
                let start = Instant::now();
                ws.send(frame.clone()).await?;
                ws.next().await.context("the floor server hung up")??;
                if i >= warmup {
                    samples.push(start.elapsed().as_nanos() as f64 / 1000.0);
                }
            }
            let stats = Stats::of(samples);
            eprintln!(
                "  native websocket text {size} B: median {:.1} µs, p99 {:.1} µs",
                stats.median_us, stats.p99_us
            );
            out.sequential
                .insert(format!("native/websocket text/{size}"), stats);
        }
        let _ = ws.close(None).await;
        anyhow::Ok(())
    })?;
    if let Some(driver) = &args.page {
        let cases: Vec<serde_json::Value> = sizes(args)
            .into_iter()
            .map(|size| {
                let (rounds, warmup) = rounds(size);
                serde_json::json!({ "size": size, "rounds": rounds, "warmup": warmup })
            })
            .collect();
        let url = format!("http://{addr}/");
        let plan = serde_json::json!({ "floor": { "url": url, "cases": cases } });
        page(args, driver, &url, plan, &mut out)?;
    }
    Ok(out)
}

fn report_floor(floor: &Measured, args: &Args) {
    println!("| message | client | transport | median | p99 |");
    println!("|---|---|---|---|---|");
    for size in sizes(args) {
        for (client, transport) in [
            ("native", "websocket text"),
            ("page", "websocket text"),
            ("page", "websocket binary"),
            ("page", "websocket binary, encoded each time"),
            ("page", "fetch POST blob"),
        ] {
            if let Some(s) = floor
                .sequential
                .get(&format!("{client}/{transport}/{size}"))
            {
                println!(
                    "| {} | {client} | {transport} | {} | {} |",
                    size_name(size),
                    time(s.median_us),
                    time(s.p99_us)
                );
            }
        }
    }
}

/// Tauri's figures (issue 7's reference numbers, headless Chromium on this kind of machine).
fn tauri(size: usize) -> (&'static str, &'static str) {
    match size {
        100 => ("593 µs", "8.4 µs"),
        10_000 => ("8.2 ms", "74 µs"),
        1_000_000 => ("748 ms", "8.4 ms"),
        _ => ("—", "—"),
    }
}

fn time(us: f64) -> String {
    match us {
        us if us < 1000.0 => format!("{us:.0} µs"),
        us => format!("{:.2} ms", us / 1000.0),
    }
}

fn size_name(size: usize) -> String {
    let scaled = |unit: usize, name: &str| match size % unit {
        0 => format!("{} {name}", size / unit),
        _ => format!("{:.1} {name}", size as f64 / unit as f64),
    };
    match size {
        1_000_000.. => scaled(1_000_000, "MB"),
        1000.. => scaled(1000, "KB"),
        _ => format!("{size} B"),
    }
}

fn report(names: &[String], all: &[Measured], args: &Args) {
    let (main, base) = (&all[0], &all[all.len() - 1]);
    let (name, base_name) = (&names[0], &names[names.len() - 1]);
    println!(
        "| message | client | {name}: median | p99 | {base_name}: median | p99 | ratio | Tauri isolation | Tauri, no isolation |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for case in cases(args) {
        for client in ["native", "page", "page-raw", "page-text", "page-upload"] {
            let key = format!("{client}/{}/{}", case.kind, case.size);
            let (Some(m), Some(b)) = (main.sequential.get(&key), base.sequential.get(&key)) else {
                continue;
            };
            let (iso, plain) = match (case.kind.as_str(), client) {
                ("invoke", "page") => tauri(case.size),
                _ => ("", ""),
            };
            let client = match client {
                "page-text" => "page, text frames",
                "page-upload" => "page, by upload",
                "page-raw" => "page, bare WebSocket",
                client => client,
            };
            println!(
                "| {} {} | {client} | {} | {} | {} | {} | {:.2} | {iso} | {plain} |",
                case.kind,
                size_name(case.size),
                time(m.median_us),
                time(m.p99_us),
                time(b.median_us),
                time(b.p99_us),
                m.median_us / b.median_us,
            );
        }
    }
    println!();
    println!("| pipelined 100 B invokes | client | {name} | {base_name} | ratio |");
    println!("|---|---|---|---|---|");
    for p in pipelined(args) {
        for client in ["native", "page"] {
            let key = format!("{client}/{}", p.connections);
            let (Some(m), Some(b)) = (main.pipelined.get(&key), base.pipelined.get(&key)) else {
                continue;
            };
            println!(
                "| {} connection{} | {client} | {m:.0} msgs/s | {b:.0} msgs/s | {:.2} |",
                p.connections,
                if p.connections == 1 { "" } else { "s" },
                m / b,
            );
        }
    }
}

/// The floor server in a process of its own (this binary, [`SERVE_FLOOR`]), and its address;
/// it is killed when the returned guard drops.
fn floor_process() -> anyhow::Result<(std::net::SocketAddr, FloorProcess)> {
    let exe = std::env::current_exe().context("the benchmark's own path")?;
    let mut child = Command::new(exe)
        .arg(SERVE_FLOOR)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the floor server")?;
    let mut line = String::new();
    let stdout = child.stdout.take().context("the floor server's output")?;
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)?;
    let addr = line
        .trim()
        .parse()
        .with_context(|| format!("the floor server printed {line:?}, not its address"))?;
    Ok((addr, FloorProcess(child)))
}

/// Kills the floor server's process when dropped.
struct FloorProcess(std::process::Child);

impl Drop for FloorProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The floor server alone, for [`floor_process`].
fn serve_floor() -> anyhow::Result<()> {
    let addr = airlock_benches::floor::start()?;
    println!("{addr}");
    std::io::Write::flush(&mut std::io::stdout())?;
    // Until the benchmark closes our standard input (it ended, or killed us).
    std::io::copy(&mut std::io::stdin(), &mut std::io::sink())?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some(SERVE_FLOOR) {
        return serve_floor();
    }
    let args = Args::parse();
    let mut names = Vec::new();
    let mut all = Vec::new();
    for setup in &args.setups {
        let (name, hooks) = setup
            .split_once('=')
            .with_context(|| format!("--setup {setup:?}: expected NAME=HOOK[,HOOK…]"))?;
        let hooks: Vec<&str> = hooks.split(',').collect();
        eprintln!("e2e: {name}: {}", hooks.join(" → "));
        all.push(measure(&args, &hooks).with_context(|| format!("setup {name}"))?);
        names.push(name.to_owned());
    }
    let floor = if args.no_floor {
        None
    } else {
        eprintln!("e2e: the transport's floor (no Airlock)");
        Some(floor(&args).context("the transport's floor")?)
    };
    report(&names, &all, &args);
    if let Some(floor) = &floor {
        println!();
        report_floor(floor, &args);
    }
    if let Some(path) = &args.json {
        let mut json: BTreeMap<&str, &Measured> =
            names.iter().map(String::as_str).zip(&all).collect();
        if let Some(floor) = &floor {
            json.insert("floor", floor);
        }
        std::fs::write(path, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}
