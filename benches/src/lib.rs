//! Airlock's criterion benchmarks live in `benches/`; run them with
//! `scripts/bench` (builds the hooks, then `cargo bench -p airlock-benches`). This library holds
//! what the end-to-end drivers in `src/bin/` share: starting `airlock serve` and connecting
//! windows to it.

use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use anyhow::{Context as _, bail};
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use airlock_tests::Ws;

pub mod floor;

/// `airlock serve` on a free port; killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// The page's URL, as the server printed it.
    pub url: String,
    /// The port it listens on (loopback).
    pub port: u16,
    _scratch: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `airlock` (the binary) `serve` with `hooks` chained in order and the extra `flags`,
/// a blank page (each GET of it issues a window ticket) and a demo folder of its own.
pub fn serve(airlock: &Path, hooks: &[&str], flags: &[&str]) -> anyhow::Result<Server> {
    let scratch = tempfile::tempdir()?;
    let page = scratch.path().join("page");
    std::fs::create_dir(&page)?;
    std::fs::write(
        page.join("index.html"),
        "<!doctype html><meta charset=utf-8><title>airlock e2e bench</title>\n",
    )?;
    let mut command = Command::new(airlock);
    command.arg("serve").arg("--static").arg(&page);
    for hook in hooks {
        command.args(["--hook", hook]);
    }
    command
        .args(["--bind", "127.0.0.1:0"])
        .args(flags)
        .arg("--root")
        .arg(scratch.path().join("data"))
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", airlock.display()))?;
    let mut url = String::new();
    BufReader::new(child.stdout.take().expect("piped")).read_line(&mut url)?;
    let url = url.trim().to_owned();
    let port = url
        .strip_prefix("http://127.0.0.1:")
        .and_then(|rest| rest.trim_end_matches('/').parse().ok())
        .with_context(|| format!("airlock serve printed {url:?}, not its URL"))?;
    Ok(Server {
        child,
        url,
        port,
        _scratch: scratch,
    })
}

/// A new window: a fresh ticket from the served page, a connection with it, its welcome read.
pub async fn connect(port: u16) -> anyhow::Result<Ws> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let ticket = airlock_tests::page_ticket(addr, "/").await;
    let origin = format!("http://127.0.0.1:{port}");
    let mut ws = airlock_tests::ws_connect(addr, &format!("ticket={ticket}"), Some(&origin))
        .await
        .context("connect a window")?;
    airlock_tests::welcome(&mut ws).await;
    Ok(ws)
}

/// What a reply frame says.
#[derive(Debug, Deserialize)]
pub struct ReplyHead {
    /// Whether the request was answered (else refused).
    #[serde(default)]
    pub ok: bool,
    /// The refusal's code.
    pub code: Option<String>,
    /// The refusal's reason.
    pub reason: Option<String>,
}

#[derive(Deserialize)]
struct FrameHead {
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    reply: ReplyHead,
}

/// The head of a reply frame; `None` for other frames (verdicts, events), an error when the
/// server closed the connection.
pub fn reply_head(frame: &Message) -> anyhow::Result<Option<ReplyHead>> {
    let text = match frame {
        Message::Text(text) => text.as_str(),
        Message::Close(close) => bail!("the server closed the connection: {close:?}"),
        _ => return Ok(None),
    };
    let head: FrameHead = serde_json::from_str(text)?;
    Ok((head.kind == "reply").then_some(head.reply))
}
