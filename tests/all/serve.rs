//! The WebSocket gateway (`airlock::web`), driven by a Rust WebSocket client on 127.0.0.1:0.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock::web::{ChannelRef, PushError, Ticket, WebGateway, WebOptions, Windows};
use airlock::{Body, Gateway, GatewayLimits, Hook, Router, SealConfig};
use airlock_tests::{CONFIGURE_OK, INSPECT_PASS, echo_router, engine, load_built, wat_hook};
use airlock_tests::{Ws, http_get, wait_until};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

mod spin;
mod upload;

struct Server {
    addr: SocketAddr,
    windows: Windows,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn pass_all() -> Hook {
    let wasm = wat_hook(CONFIGURE_OK, INSPECT_PASS, "");
    Hook::load(engine(), &wasm, Default::default()).expect("pass-all hook")
}

async fn start_with(
    hooks: Vec<Hook>,
    router: Router,
    limits: GatewayLimits,
    options: WebOptions,
    windows: Windows,
) -> Server {
    let mut hooks = hooks.into_iter();
    let first = hooks.next().expect("a hook");
    let mut gateway =
        Gateway::with_config(first, router, limits, SealConfig::default()).expect("gateway");
    for hook in hooks {
        gateway = gateway.then(hook);
    }
    let web = WebGateway::new(Arc::new(gateway), windows.clone(), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(web.serve(listener));
    Server {
        addr,
        windows,
        task,
    }
}

async fn start(hook: Hook, router: Router, options: WebOptions) -> Server {
    let windows = Windows::new();
    start_with(
        vec![hook],
        router,
        GatewayLimits::default(),
        options,
        windows,
    )
    .await
}

/// A pass-all server with the echo core whose messages are limited to `max_message_bytes`.
async fn start_limited(max_message_bytes: usize, options: WebOptions) -> Server {
    let limits = GatewayLimits::default().with_max_message_bytes(max_message_bytes);
    start_with(
        vec![pass_all()],
        echo_router(),
        limits,
        options,
        Windows::new(),
    )
    .await
}

fn own_origin(addr: SocketAddr) -> String {
    format!("http://127.0.0.1:{}", addr.port())
}

async fn connect_as(addr: SocketAddr, query: &str, origin: Option<&str>) -> Result<Ws, WsError> {
    airlock_tests::ws_connect(addr, query, origin).await
}

/// A WebSocket handshake with `ticket` written by hand on a raw TCP connection, its `101` read:
/// for tests that must send broken frames or never answer.
async fn raw_window(server: &Server, ticket: &Ticket) -> TcpStream {
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let handshake = format!(
        "GET /airlock?ticket={token} HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        addr = server.addr,
        origin = own_origin(server.addr),
        token = ticket.token(),
    );
    tcp.write_all(handshake.as_bytes()).await.unwrap();
    let mut response = vec![0; 4096];
    let n = tcp.read(&mut response).await.unwrap();
    assert!(String::from_utf8_lossy(&response[..n]).starts_with("HTTP/1.1 101"));
    tcp
}

/// A server with the pass-all hook and the echo core, whose windows have these limits.
async fn start_windows(limits: airlock::web::WindowLimits) -> Server {
    start_with(
        vec![pass_all()],
        echo_router(),
        GatewayLimits::default(),
        WebOptions::default(),
        Windows::with_limits(limits),
    )
    .await
}

/// A new window labelled `label`: a ticket from the app's API, a connection with it from the
/// server's own origin, its welcome frame read.
async fn connect(server: &Server, label: &str) -> Ws {
    let ticket = server
        .windows
        .issue(label, label)
        .unwrap_or_else(|e| panic!("ticket for {label}: {e}"));
    connect_ticket(server, &ticket).await
}

/// A connection with `ticket`, its welcome frame read.
async fn connect_ticket(server: &Server, ticket: &Ticket) -> Ws {
    let query = format!("ticket={}", ticket.token());
    let mut ws = connect_as(server.addr, &query, Some(&own_origin(server.addr)))
        .await
        .unwrap_or_else(|e| panic!("connect {ticket:?}: {e}"));
    let labels = airlock_tests::welcome(&mut ws).await;
    assert_eq!(
        labels,
        (ticket.window().to_owned(), ticket.webview().to_owned())
    );
    ws
}

/// The next frame: JSON for text, (head, bytes) for binary.
async fn next_frame(ws: &mut Ws) -> (Value, Option<Vec<u8>>) {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a frame within 20 s")
            .expect("the connection is open")
            .expect("a readable frame");
        match frame {
            Message::Text(text) => return (serde_json::from_str(&text).unwrap(), None),
            Message::Binary(bytes) => {
                let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
                let head = serde_json::from_slice(&bytes[4..4 + len]).unwrap();
                return (head, Some(bytes[4 + len..].to_vec()));
            }
            Message::Close(close) => panic!("connection closed: {close:?}"),
            _ => continue,
        }
    }
}

/// Frames until the reply to `id`; the others are returned too, in order.
/// The reply to request `id`, and the frames before it followed by the verdict it carries (as
/// a `{"type":"verdict",…}` object) when verdicts are reported.
async fn reply_to(ws: &mut Ws, id: u64) -> (Value, Vec<Value>) {
    let mut others = Vec::new();
    loop {
        let (frame, _) = next_frame(ws).await;
        if frame["type"] == "reply" && frame["id"] == id {
            others.extend(carried_verdict(&frame));
            return (frame, others);
        }
        others.extend(carried_verdict(&frame));
        others.push(frame);
    }
}

/// The verdict a reply or error frame carries, as a `{"type":"verdict",…}` object.
fn carried_verdict(frame: &Value) -> Option<Value> {
    let mut verdict = frame.get("verdict")?.clone();
    verdict["type"] = json!("verdict");
    Some(verdict)
}

async fn send_json(ws: &mut Ws, frame: Value) {
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
}

fn binary_frame(head: Value, body: &[u8]) -> Message {
    let head = head.to_string();
    let mut out = (head.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    Message::Binary(out.into())
}

fn verdicts() -> WebOptions {
    WebOptions::default().with_report_verdicts(true)
}

#[tokio::test]
async fn an_invoke_that_passes_is_answered_with_what_the_core_received_from_that_window() {
    let server = start(pass_all(), echo_router(), verdicts()).await;
    let mut ws = connect(&server, "editor").await;
    send_json(
        &mut ws,
        json!({"id": 7, "kind": "command", "name": "fs_read", "payload": {"path": "notes.txt"}}),
    )
    .await;
    let (reply, others) = reply_to(&mut ws, 7).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let delivered = &reply["payload"];
    assert_eq!(delivered["name"], "fs_read");
    assert_eq!(delivered["payload"], json!({"path": "notes.txt"}));
    assert_eq!(delivered["source"]["window"], "editor");
    assert_eq!(delivered["source"]["origin"], own_origin(server.addr));
    let verdict = &others[0];
    assert_eq!(
        (&verdict["type"], &verdict["verdict"], &verdict["id"]),
        (&json!("verdict"), &json!("pass"), &json!(7))
    );
    assert_eq!(verdict["hook"].as_str().unwrap().len(), 64, "{verdict}");
    assert!(verdict["cost_us"].as_f64().unwrap() > 0.0, "{verdict}");
}

/// A single-threaded runtime running on a thread of its own until the sender is dropped.
fn runtime_on_a_thread() -> (tokio::runtime::Handle, tokio::sync::oneshot::Sender<()>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let handle = runtime.handle().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let _ = runtime.block_on(stopped);
    });
    (handle, stop)
}

#[tokio::test]
async fn windows_served_on_two_single_threaded_runtimes_are_spread_over_both_and_answered() {
    let (one, _stop_one) = runtime_on_a_thread();
    let (two, _stop_two) = runtime_on_a_thread();
    let windows = Windows::new();
    let gateway = Gateway::new(pass_all(), echo_router()).expect("gateway");
    let web = WebGateway::new(Arc::new(gateway), windows.clone(), WebOptions::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let runtimes = vec![one.clone(), two.clone()];
    let task = tokio::spawn(web.serve_on(listener, runtimes));
    let server = Server {
        addr,
        windows,
        task,
    };
    let mut pages = Vec::new();
    for n in 0..4 {
        pages.push(connect(&server, &format!("w{n}")).await);
    }
    for (n, ws) in pages.iter_mut().enumerate() {
        let id = n as u64 + 1;
        send_json(
            ws,
            json!({"id": id, "kind": "command", "name": "ping", "payload": {"n": n}}),
        )
        .await;
        let (reply, _) = reply_to(ws, id).await;
        assert_eq!(reply["ok"], true, "{reply}");
        assert_eq!(reply["payload"]["source"]["window"], format!("w{n}"));
    }
    // Each open window is a task (its connection, and its writer) on the runtime it was given.
    let (on_one, on_two) = (
        one.metrics().num_alive_tasks(),
        two.metrics().num_alive_tasks(),
    );
    assert!(
        on_one >= 2 && on_two >= 2,
        "tasks alive: {on_one} and {on_two}"
    );
}

#[tokio::test]
async fn a_reported_verdict_travels_inside_its_reply_so_each_answer_is_one_frame() {
    let server = start(pass_all(), echo_router(), verdicts()).await;
    let mut ws = connect(&server, "main").await;
    for id in 1..=3 {
        send_json(&mut ws, json!({"id": id, "kind": "event", "name": "tick"})).await;
    }
    for id in 1..=3 {
        let (frame, _) = next_frame(&mut ws).await;
        assert_eq!(
            (&frame["type"], &frame["id"]),
            (&json!("reply"), &json!(id))
        );
        assert_eq!(
            (&frame["verdict"]["id"], &frame["verdict"]["verdict"]),
            (&json!(id), &json!("pass")),
            "{frame}"
        );
    }
}

#[tokio::test]
async fn a_rejected_invoke_settles_with_the_hooks_code_and_reason_after_its_verdict() {
    let hook = load_built("path-guard", "rust", "{}");
    let digest = hook.digest().to_owned();
    let server = start(hook, echo_router(), verdicts()).await;
    let mut ws = connect(&server, "main").await;
    send_json(
        &mut ws,
        json!({"id": 1, "kind": "command", "name": "fs_read", "payload": {"path": "../../etc/passwd"}}),
    )
    .await;
    let (reply, others) = reply_to(&mut ws, 1).await;
    assert_eq!(
        (&reply["ok"], &reply["code"]),
        (&json!(false), &json!("path-escape"))
    );
    assert!(
        reply["reason"]
            .as_str()
            .unwrap()
            .contains("../../etc/passwd"),
        "{reply}"
    );
    assert_eq!(others.len(), 1, "{others:?}");
    assert_eq!(others[0]["verdict"], "reject");
    assert_eq!(others[0]["code"], "path-escape");
    assert_eq!(others[0]["hook"], digest);
}

#[tokio::test]
async fn a_hook_chain_replaces_with_the_second_hook_and_stops_at_the_first_rejection() {
    let guard = load_built("path-guard", "rust", "{}");
    let redact = load_built("redact", "rust", "{}");
    let (guard_digest, redact_digest) = (guard.digest().to_owned(), redact.digest().to_owned());
    let server = start_with(
        vec![guard, redact],
        echo_router(),
        GatewayLimits::default(),
        verdicts(),
        Windows::new(),
    )
    .await;
    let mut ws = connect(&server, "main").await;
    send_json(
        &mut ws,
        json!({"id": 1, "kind": "event", "name": "profile", "payload": {"user": "ada", "password": "hunter2"}}),
    )
    .await;
    let (reply, others) = reply_to(&mut ws, 1).await;
    assert_eq!(
        reply["payload"]["payload"],
        json!({"user": "ada"}),
        "{reply}"
    );
    assert_eq!(
        (&others[0]["verdict"], &others[0]["hook"]),
        (&json!("replace"), &json!(redact_digest))
    );

    send_json(
        &mut ws,
        json!({"id": 2, "kind": "command", "name": "fs_write", "payload": {"path": "/etc/cron.d/x", "password": "p"}}),
    )
    .await;
    let (reply, others) = reply_to(&mut ws, 2).await;
    assert_eq!(reply["code"], "path-escape", "{reply}");
    assert_eq!(others[0]["hook"], guard_digest);

    send_json(
        &mut ws,
        json!({"id": 3, "kind": "event", "name": "saved", "payload": {"bytes": 3}}),
    )
    .await;
    let (reply, others) = reply_to(&mut ws, 3).await;
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(
        (&others[0]["verdict"], &others[0]["hook"]),
        (&json!("pass"), &json!(redact_digest))
    );
}

#[tokio::test]
async fn an_allowed_origin_connects_and_becomes_the_messages_source_origin() {
    let options =
        WebOptions::default().with_allowed_origins(vec!["https://app.example/".to_owned()]);
    let server = start(pass_all(), echo_router(), options).await;
    let ticket = server.windows.issue("w1", "pane").unwrap();
    let mut ws = connect_as(
        server.addr,
        &format!("ticket={}", ticket.token()),
        Some("https://app.example"),
    )
    .await
    .expect("allowed origin connects");
    airlock_tests::welcome(&mut ws).await;
    send_json(&mut ws, json!({"id": 1, "kind": "event", "name": "hello"})).await;
    let (reply, _) = reply_to(&mut ws, 1).await;
    assert_eq!(
        reply["payload"]["source"],
        json!({"window": "w1", "webview": "pane", "origin": "https://app.example"})
    );
}

#[tokio::test]
async fn an_origin_not_on_the_list_or_no_origin_at_all_is_refused_with_403() {
    let server = start(pass_all(), echo_router(), WebOptions::default()).await;
    for (n, origin) in [Some("https://evil.example"), Some("null"), None]
        .into_iter()
        .enumerate()
    {
        let label = format!("w{n}");
        let ticket = server.windows.issue(&label, &label).unwrap();
        let query = format!("ticket={}", ticket.token());
        match connect_as(server.addr, &query, origin).await {
            Err(WsError::Http(response)) => {
                assert_eq!(response.status(), 403, "{origin:?}");
                let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or(b""));
                let named = origin.map_or("missing Origin".to_owned(), |o| format!("{o:?}"));
                assert!(body.contains(&named), "{body}");
            }
            other => panic!("{origin:?} was not refused: {:?}", other.map(|_| ())),
        }
    }
    assert!(server.windows.labels().is_empty());
}

#[tokio::test]
async fn a_message_at_the_size_limit_is_delivered() {
    let server = start_limited(1000, WebOptions::default()).await;
    let mut ws = connect(&server, "main").await;
    // name (4) + body: a JSON string of 996 bytes.
    let body = format!("\"{}\"", "a".repeat(994));
    send_json(
        &mut ws,
        serde_json::from_str::<Value>(&format!(
            r#"{{"id":1,"kind":"event","name":"size","payload":{body}}}"#
        ))
        .unwrap(),
    )
    .await;
    let (reply, _) = reply_to(&mut ws, 1).await;
    assert_eq!(reply["ok"], true, "{reply}");
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_refused_with_too_large_and_the_connection_stays_open() {
    let server = start_limited(1000, WebOptions::default()).await;
    let mut ws = connect(&server, "main").await;
    let body = format!("\"{}\"", "a".repeat(995));
    send_json(
        &mut ws,
        serde_json::from_str::<Value>(&format!(
            r#"{{"id":1,"kind":"event","name":"size","payload":{body}}}"#
        ))
        .unwrap(),
    )
    .await;
    let (reply, _) = reply_to(&mut ws, 1).await;
    assert_eq!(reply["code"], "too-large", "{reply}");
    send_json(&mut ws, json!({"id": 2, "kind": "event", "name": "after"})).await;
    assert_eq!(reply_to(&mut ws, 2).await.0["ok"], true);
}

#[tokio::test]
async fn a_frame_past_twice_the_size_limit_closes_the_connection_with_1009() {
    let server = start_limited(1000, WebOptions::default()).await;
    let mut ws = connect(&server, "main").await;
    let huge = airlock::web::max_frame_bytes(1000) + 1;
    let _ = ws
        .send(binary_frame(
            json!({"id": 1, "kind": "channel", "name": "up"}),
            &vec![0; huge],
        ))
        .await;
    let next = tokio::time::timeout(Duration::from_secs(20), ws.next())
        .await
        .expect("closed in time");
    let close = match next {
        Some(Ok(Message::Close(close))) => close,
        Some(Ok(other)) => panic!("unexpected frame {other:?}"),
        Some(Err(e)) => panic!("connection broke instead of closing: {e}"),
        None => panic!("connection ended without a close frame"),
    };
    assert_eq!(u16::from(close.expect("a close frame").code), 1009);
}

/// A command that pushes an event to its window, then answers 5 ms later: the answer is written
/// on its own, while the event may still be unacknowledged.
fn nudging_router(windows: Windows) -> Router {
    Router::new().command("nudge", move |_: Value, invocation| {
        let windows = windows.clone();
        async move {
            let window = windows.get(&invocation.source.window).ok_or("no window")?;
            window
                .emit("nudged", Body::Json("{}".to_owned()))
                .await
                .map_err(|e| e.to_string())?;
            tokio::time::sleep(Duration::from_millis(5)).await;
            Ok::<_, String>("done")
        }
    })
}

#[tokio::test]
async fn a_small_reply_written_after_an_unacknowledged_frame_is_not_held_for_the_delayed_ack() {
    // With Nagle's algorithm on, a small write waits until everything written before it is
    // acknowledged, and the page acknowledges late (Linux delays ACKs up to 40 ms): each of these
    // round trips took 45 ms. Without the stall each takes the handler's 5 ms and well under a
    // millisecond more; the bound is far above that, far below the stall, and applies to the
    // median of nine (after one round trip to settle the connection).
    let windows = Windows::new();
    let server = start_with(
        vec![pass_all()],
        nudging_router(windows.clone()),
        GatewayLimits::default(),
        verdicts(),
        windows,
    )
    .await;
    let mut ws = connect(&server, "main").await;
    let mut took = Vec::new();
    for id in 0..=9 {
        let start = Instant::now();
        send_json(
            &mut ws,
            json!({"id": id, "kind": "command", "name": "nudge"}),
        )
        .await;
        let (reply, others) = reply_to(&mut ws, id).await;
        if id > 0 {
            took.push(start.elapsed());
        }
        assert_eq!(reply["payload"], "done", "{reply}");
        assert_eq!(others[0]["type"], "event", "{others:?}");
    }
    took.sort();
    assert!(
        took[4] < Duration::from_millis(30),
        "the median of nine round trips took {:?} (all: {took:?}): replies wait for the delayed ACK",
        took[4]
    );
}

fn rate(per_second: f64, burst: u32) -> WebOptions {
    WebOptions::default()
        .with_messages_per_second(per_second)
        .with_burst(burst)
        .with_report_verdicts(true)
}

#[tokio::test]
async fn messages_within_the_burst_are_all_delivered() {
    let server = start(pass_all(), echo_router(), rate(0.01, 5)).await;
    let mut ws = connect(&server, "main").await;
    for id in 1..=5 {
        send_json(&mut ws, json!({"id": id, "kind": "event", "name": "tick"})).await;
    }
    for id in 1..=5 {
        let (reply, _) = reply_to(&mut ws, id).await;
        assert_eq!(reply["ok"], true, "{reply}");
    }
}

#[tokio::test]
async fn the_message_past_the_burst_is_refused_with_rate_limited_before_any_hook_runs() {
    let server = start(pass_all(), echo_router(), rate(0.01, 5)).await;
    let mut ws = connect(&server, "main").await;
    for id in 1..=6 {
        send_json(&mut ws, json!({"id": id, "kind": "event", "name": "tick"})).await;
    }
    // The refusal is immediate, so it may overtake the replies to the events before it.
    let mut replies = std::collections::BTreeMap::new();
    let mut verdicts = Vec::new();
    while replies.len() < 6 {
        let (frame, _) = next_frame(&mut ws).await;
        verdicts.extend(carried_verdict(&frame));
        if frame["type"] == "reply" {
            replies.insert(frame["id"].as_u64().unwrap(), frame);
        }
    }
    for id in 1..=5 {
        assert_eq!(replies[&id]["ok"], true, "{}", replies[&id]);
    }
    assert_eq!(replies[&6]["code"], "rate-limited", "{}", replies[&6]);
    let verdict = verdicts
        .iter()
        .find(|v| v["id"] == 6)
        .expect("a verdict for 6");
    assert_eq!(
        (&verdict["verdict"], &verdict["hook"]),
        (&json!("reject"), &Value::Null)
    );
}

/// A router whose `stream` command pushes `count` events of `size` bytes to the caller with
/// `try_emit`, and answers with how many fit and the first error.
fn pushing_router(windows: Windows) -> Router {
    #[derive(serde::Deserialize)]
    struct Args {
        count: usize,
        size: usize,
    }
    Router::new().command("stream", move |args: Args, invocation| {
        let windows = windows.clone();
        async move {
            let window = windows.get(&invocation.source.window).ok_or("no window")?;
            let filler = "x".repeat(args.size);
            for n in 0..args.count {
                let payload = Body::Json(json!({"n": n, "filler": filler}).to_string());
                if let Err(e) = window.try_emit("item", payload) {
                    let full = matches!(e, PushError::Full { .. });
                    return Ok::<_, String>(
                        json!({"sent": n, "full": full, "error": e.to_string()}),
                    );
                }
            }
            Ok(json!({"sent": args.count, "full": false}))
        }
    })
}

#[tokio::test]
async fn events_pushed_within_the_queue_bound_all_arrive_in_order() {
    let windows = Windows::new();
    let options = WebOptions::default().with_queue_bytes(1 << 20);
    let server = start_with(
        vec![pass_all()],
        pushing_router(windows.clone()),
        GatewayLimits::default(),
        options,
        windows,
    )
    .await;
    let mut ws = connect(&server, "main").await;
    send_json(&mut ws, json!({"id": 1, "kind": "command", "name": "stream", "payload": {"count": 500, "size": 100}})).await;
    let (reply, events) = reply_to(&mut ws, 1).await;
    assert_eq!(reply["payload"]["sent"], 500, "{reply}");
    let order: Vec<u64> = events
        .iter()
        .map(|e| e["payload"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(order, (0..500).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_page_that_stops_reading_fills_its_bounded_queue_and_try_emit_refuses_with_full() {
    let windows = Windows::new();
    let options = WebOptions::default().with_queue_bytes(1 << 20);
    let server = start_with(
        vec![pass_all()],
        pushing_router(windows.clone()),
        GatewayLimits::default(),
        options,
        windows,
    )
    .await;
    let mut ws = connect(&server, "main").await;
    // 64 KiB events to a page that reads nothing until the command answers: the 1 MiB queue holds
    // 15 of them (the socket's buffers may take a few more); 10 000 (640 MiB) would only fit
    // unbounded.
    send_json(&mut ws, json!({"id": 1, "kind": "command", "name": "stream", "payload": {"count": 10000, "size": 65536}})).await;
    let (reply, events) = reply_to(&mut ws, 1).await;
    let outcome = &reply["payload"];
    assert_eq!(outcome["full"], true, "{outcome}");
    let sent = outcome["sent"].as_u64().unwrap();
    assert!((15..10000).contains(&sent), "{outcome}");
    assert!(
        outcome["error"].as_str().unwrap().contains("\"main\""),
        "{outcome}"
    );
    // Everything that was accepted arrives, in order.
    let order: Vec<u64> = events
        .iter()
        .map(|e| e["payload"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(order, (0..sent).collect::<Vec<_>>());
}

#[tokio::test]
async fn bytes_travel_as_binary_frames_in_both_directions() {
    let windows = Windows::new();
    let received = Arc::new(Mutex::new(Vec::new()));
    let router = {
        let (windows, received) = (windows.clone(), received.clone());
        Router::new()
            .channel("upload", move |invocation| {
                let received = received.clone();
                async move {
                    match invocation.body {
                        Body::Bytes(bytes) => received.lock().unwrap().push(bytes),
                        Body::Json(_) => return Err("expected bytes"),
                    }
                    Ok(())
                }
            })
            .command("download", move |args: Value, invocation| {
                let windows = windows.clone();
                async move {
                    let channel: ChannelRef = serde_json::from_value(args["channel"].clone())
                        .map_err(|e| e.to_string())?;
                    let window = windows.get(&invocation.source.window).ok_or("no window")?;
                    for chunk in [&[0u8, 1, 2][..], &[255, 254], &[]] {
                        window
                            .send(channel, Body::Bytes(chunk.to_vec()))
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    Ok::<_, String>(3)
                }
            })
    };
    let server = start_with(
        vec![pass_all()],
        router,
        GatewayLimits::default(),
        WebOptions::default(),
        windows,
    )
    .await;
    let mut ws = connect(&server, "main").await;
    ws.send(binary_frame(
        json!({"id": 1, "kind": "channel", "name": "upload"}),
        &[0, 159, 146, 150, 255],
    ))
    .await
    .unwrap();
    assert_eq!(reply_to(&mut ws, 1).await.0["ok"], true);
    assert_eq!(
        *received.lock().unwrap(),
        vec![vec![0u8, 159, 146, 150, 255]]
    );

    send_json(&mut ws, json!({"id": 2, "kind": "command", "name": "download", "payload": {"channel": {"__airlock_channel": 9}}})).await;
    let mut chunks = Vec::new();
    loop {
        let (head, bytes) = next_frame(&mut ws).await;
        if head["type"] == "reply" {
            assert_eq!(head["payload"], 3);
            break;
        }
        assert_eq!(head, json!({"type": "channel", "channel": 9}));
        chunks.push(bytes.expect("a binary frame"));
    }
    assert_eq!(chunks, vec![vec![0, 1, 2], vec![255, 254], vec![]]);
}

#[tokio::test]
async fn the_window_frame_names_the_gateways_message_limit_for_the_page_to_refuse_past_it() {
    let server = start_limited(12_345, WebOptions::default()).await;
    let ticket = server.windows.issue("main", "main").unwrap();
    let query = format!("ticket={}", ticket.token());
    let mut ws = connect_as(server.addr, &query, Some(&own_origin(server.addr)))
        .await
        .unwrap();
    let (welcome, _) = next_frame(&mut ws).await;
    assert_eq!(
        welcome,
        json!({"type": "window", "window": "main", "webview": "main", "max_message_bytes": 12_345})
    );
}

#[tokio::test]
async fn a_json_body_in_a_binary_frame_marked_json_reaches_the_core_as_the_same_json() {
    let server = start(pass_all(), echo_router(), WebOptions::default()).await;
    let mut ws = connect(&server, "main").await;
    let payload = json!({"data": "é ✓ \u{1F600}", "n": [1, 2.5, null]});
    ws.send(binary_frame(
        json!({"id": 3, "kind": "command", "name": "fs_write", "headers": [["x-a", "1"]],
               "json": true}),
        payload.to_string().as_bytes(),
    ))
    .await
    .unwrap();
    let (reply, _) = reply_to(&mut ws, 3).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let delivered = &reply["payload"];
    assert_eq!(delivered["payload"], payload, "{delivered}");
    assert!(
        delivered["headers"].to_string().contains("x-a"),
        "{delivered}"
    );
}

#[tokio::test]
async fn a_json_marked_frame_whose_body_is_not_json_or_that_is_text_is_refused_naming_why() {
    let server = start(pass_all(), echo_router(), WebOptions::default()).await;
    let mut ws = connect(&server, "main").await;
    let cases: [(u64, &[u8], &str); 3] = [
        (1, b"{\"data\": ", "not JSON"),
        (2, &[b'"', 0xff, b'"'], "not UTF-8"),
        (3, b"", "not JSON"),
    ];
    for (id, body, why) in cases {
        let head = json!({"id": id, "kind": "event", "name": "save", "json": true});
        ws.send(binary_frame(head, body)).await.unwrap();
        let (reply, _) = reply_to(&mut ws, id).await;
        assert_eq!(reply["code"], "invalid-frame", "{reply}");
        assert!(reply["reason"].as_str().unwrap().contains(why), "{reply}");
    }
    send_json(
        &mut ws,
        json!({"id": 4, "kind": "event", "name": "save", "json": true, "payload": 1}),
    )
    .await;
    let (reply, _) = reply_to(&mut ws, 4).await;
    assert_eq!(reply["code"], "invalid-frame", "{reply}");
    assert!(
        reply["reason"].as_str().unwrap().contains("binary frame"),
        "{reply}"
    );
    // The window goes on.
    send_json(&mut ws, json!({"id": 5, "kind": "event", "name": "save"})).await;
    assert_eq!(reply_to(&mut ws, 5).await.0["ok"], true);
}

#[tokio::test]
async fn a_malformed_frame_is_answered_with_invalid_frame_naming_what_is_wrong() {
    let server = start(pass_all(), echo_router(), WebOptions::default()).await;
    let mut ws = connect(&server, "main").await;
    send_json(&mut ws, json!({"id": 4, "kind": "teleport", "name": "x"})).await;
    let (reply, _) = reply_to(&mut ws, 4).await;
    assert_eq!(reply["code"], "invalid-frame");
    assert!(
        reply["reason"].as_str().unwrap().contains("teleport"),
        "{reply}"
    );
    ws.send(Message::Text("not json".into())).await.unwrap();
    let (notice, _) = next_frame(&mut ws).await;
    assert_eq!(
        (&notice["type"], &notice["code"]),
        (&json!("error"), &json!("invalid-frame"))
    );
    ws.send(Message::Binary(vec![0, 0, 1, 0, b'{'].into()))
        .await
        .unwrap();
    let (notice, _) = next_frame(&mut ws).await;
    assert!(
        notice["reason"].as_str().unwrap().contains("256"),
        "{notice}"
    );
}

/// A router counting delivered events in order, and a slow `save` command.
fn counting_router(seen: Arc<Mutex<Vec<u64>>>, saved: Arc<AtomicUsize>) -> Router {
    Router::new()
        .listen("tick", move |invocation| {
            let seen = seen.clone();
            async move {
                let Body::Json(text) = &invocation.body else {
                    return Err("bytes");
                };
                let n: Value = serde_json::from_str(text).unwrap();
                seen.lock().unwrap().push(n["n"].as_u64().unwrap());
                Ok(())
            }
        })
        .command("save", move |_: Value, _| {
            let saved = saved.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                saved.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>("saved")
            }
        })
}

#[tokio::test]
async fn everything_read_before_the_connection_closed_reaches_the_core_in_order() {
    let (seen, saved) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(AtomicUsize::new(0)),
    );
    let router = counting_router(seen.clone(), saved.clone());
    let server = start(pass_all(), router, WebOptions::default()).await;
    let mut ws = connect(&server, "main").await;
    send_json(
        &mut ws,
        json!({"id": 1000, "kind": "command", "name": "save"}),
    )
    .await;
    for n in 0..50 {
        send_json(
            &mut ws,
            json!({"id": n, "kind": "event", "name": "tick", "payload": {"n": n}}),
        )
        .await;
    }
    // Gone without waiting for a single reply.
    ws.close(None).await.unwrap();
    drop(ws);
    for _ in 0..500 {
        if seen.lock().unwrap().len() == 50 && saved.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(*seen.lock().unwrap(), (0..50).collect::<Vec<_>>());
    assert_eq!(saved.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_frame_cut_off_by_a_closed_connection_reaches_nothing_and_the_page_can_reconnect() {
    let (seen, saved) = (
        Arc::new(Mutex::new(Vec::new())),
        Arc::new(AtomicUsize::new(0)),
    );
    let server = start(
        pass_all(),
        counting_router(seen.clone(), saved),
        WebOptions::default(),
    )
    .await;
    let ticket = server.windows.issue("main", "main").unwrap();
    let mut tcp = raw_window(&server, &ticket).await;
    // A masked text frame announcing 200 bytes, of which 20 arrive.
    let whole = json!({"id": 1, "kind": "event", "name": "tick", "payload": {"n": 1, "pad": "x".repeat(150)}}).to_string();
    let mut frame = vec![0x81, 0x80 | 126];
    frame.extend_from_slice(&(whole.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 0]); // a zero mask keeps the bytes as they are
    frame.extend_from_slice(&whole.as_bytes()[..20]);
    tcp.write_all(&frame).await.unwrap();
    drop(tcp);
    wait_until(|| server.windows.get("main").is_none()).await;
    // The page comes back with its ticket, as a reload does.
    let mut ws = connect_ticket(&server, &ticket).await;
    send_json(
        &mut ws,
        json!({"id": 2, "kind": "event", "name": "tick", "payload": {"n": 2}}),
    )
    .await;
    assert_eq!(reply_to(&mut ws, 2).await.0["ok"], true);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![2],
        "only the whole message was delivered"
    );
}

#[tokio::test]
async fn the_js_client_and_the_static_folder_are_served_and_nothing_outside_it() {
    let dir = std::env::temp_dir().join(format!("airlock-static-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("index.html"), "<h1>demo</h1>").unwrap();
    std::fs::write(dir.join("sub/app.js"), "export {}").unwrap();
    std::fs::write(dir.join(".env"), "SECRET=1").unwrap();
    let options = WebOptions::default().with_static_dir(Some(dir.clone()));
    let server = start(pass_all(), echo_router(), options).await;
    let (status, head, body) = http_get(server.addr, "/airlock.js").await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/javascript"), "{head}");
    assert!(
        body.contains("export function connect"),
        "the client module"
    );
    let (status, _, body) = http_get(server.addr, "/").await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with(r#"<meta name="airlock-ticket" content=""#)
            && body.ends_with("<h1>demo</h1>"),
        "the page, with its window ticket: {body}"
    );
    let (status, head, _) = http_get(server.addr, "/sub/app.js").await;
    assert_eq!(status, 200);
    assert!(head.contains("text/javascript"), "{head}");
    for path in [
        "/.env",
        "/../Cargo.toml",
        "/%2e%2e/Cargo.toml",
        "/sub/../.env",
        "/missing.html",
    ] {
        let (status, _, body) = http_get(server.addr, path).await;
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("SECRET"), "{path}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Whether connecting with `query` is refused with `status`, the refusal containing `text`.
async fn refused_with(server: &Server, query: &str, status: u16, text: &str) {
    match connect_as(server.addr, query, Some(&own_origin(server.addr))).await {
        Err(WsError::Http(response)) => {
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or(b""));
            assert_eq!(response.status(), status, "{query}: {body}");
            assert!(
                body.contains(text),
                "{query}: expected {text:?} in {body:?}"
            );
        }
        other => panic!("{query} was not refused: {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn a_window_connects_only_with_a_live_ticket_and_gets_the_tickets_labels() {
    let server = start(pass_all(), echo_router(), WebOptions::default()).await;
    refused_with(&server, "", 403, "no window ticket").await;
    refused_with(
        &server,
        "ticket=00112233445566778899aabbccddeeff",
        403,
        "unknown or expired",
    )
    .await;
    refused_with(&server, "window=admin", 400, "issued by the server").await;
    refused_with(&server, "webview=admin", 400, "issued by the server").await;
    refused_with(&server, "label=admin", 400, "unknown query parameter").await;
    let ticket = server.windows.issue("settings", "pane").unwrap();
    assert!(ticket.token().len() >= 32, "128 bits at least");
    assert!(
        !format!("{ticket:?}").contains(ticket.token()),
        "Debug hides the token"
    );
    let mut ws = connect_ticket(&server, &ticket).await;
    send_json(&mut ws, json!({"id": 1, "kind": "event", "name": "hello"})).await;
    let (reply, _) = reply_to(&mut ws, 1).await;
    assert_eq!(reply["payload"]["source"]["window"], "settings");
    assert_eq!(reply["payload"]["source"]["webview"], "pane");
    // One connection at a time per ticket.
    refused_with(
        &server,
        &format!("ticket={}", ticket.token()),
        409,
        "already connected",
    )
    .await;
}

#[tokio::test]
async fn a_label_is_held_by_its_ticket_while_connected_and_through_a_reload_then_freed() {
    let limits =
        airlock::web::WindowLimits::default().with_reconnect_grace(Duration::from_millis(300));
    let server = start_windows(limits).await;
    let ticket = server.windows.issue("main", "main").unwrap();
    let ws = connect_ticket(&server, &ticket).await;
    let taken = server.windows.issue("main", "main").unwrap_err();
    assert_eq!(
        taken.to_string(),
        r#"window label "main" is held by another page"#
    );
    // The page reloads: its connection ends and the same ticket connects again; meanwhile the
    // label cannot be taken.
    drop(ws);
    wait_until(|| server.windows.get("main").is_none()).await;
    assert!(
        server.windows.issue("main", "main").is_err(),
        "held within the grace"
    );
    let ws = connect_ticket(&server, &ticket).await;
    drop(ws);
    wait_until(|| server.windows.get("main").is_none()).await;
    // Past the grace, the ticket is gone and the label free.
    tokio::time::sleep(Duration::from_millis(400)).await;
    refused_with(
        &server,
        &format!("ticket={}", ticket.token()),
        403,
        "unknown or expired",
    )
    .await;
    let next = server
        .windows
        .issue("main", "main")
        .expect("the label is free again");
    assert_ne!(next.token(), ticket.token());
}

#[tokio::test]
async fn an_unused_ticket_within_its_time_connects() {
    let limits = airlock::web::WindowLimits::default().with_unused_ttl(Duration::from_secs(60));
    let server = start_windows(limits).await;
    let ticket = server.windows.issue("w", "w").unwrap();
    connect_ticket(&server, &ticket).await;
}

#[tokio::test]
async fn an_unused_ticket_past_its_time_is_refused_and_frees_its_label() {
    let limits = airlock::web::WindowLimits::default().with_unused_ttl(Duration::from_millis(100));
    let server = start_windows(limits).await;
    let ticket = server.windows.issue("w", "w").unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    refused_with(
        &server,
        &format!("ticket={}", ticket.token()),
        403,
        "unknown or expired",
    )
    .await;
    server.windows.issue("w", "w").expect("the label is free");
}

#[test]
fn live_tickets_up_to_the_limit_are_issued() {
    let windows = Windows::with_limits(airlock::web::WindowLimits::default().with_max_tickets(3));
    for label in ["a", "b", "c"] {
        windows.issue(label, label).unwrap();
    }
}

#[test]
fn a_ticket_past_the_limit_is_refused_and_bad_labels_are_named() {
    let windows = Windows::with_limits(airlock::web::WindowLimits::default().with_max_tickets(3));
    for label in ["a", "b", "c"] {
        windows.issue(label, label).unwrap();
    }
    let error = windows.issue("d", "d").unwrap_err();
    assert_eq!(
        error.to_string(),
        "3 window tickets are live, the most allowed"
    );
    let error = Windows::new().issue("a b", "x").unwrap_err();
    assert!(
        error
            .to_string()
            .contains(r#"window label "a b" is invalid"#),
        "{error}"
    );
    let error = Windows::new().issue("x", &"w".repeat(65)).unwrap_err();
    assert!(error.to_string().contains("is invalid"), "{error}");
}

#[tokio::test]
async fn each_served_page_gets_a_ticket_labelled_after_it_and_no_two_pages_share_a_label() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!DOCTYPE html><html><HEAD lang=en><title>t</title></head><header>h</header></html>",
    )
    .unwrap();
    std::fs::write(dir.path().join("admin.html"), "<!doctype html><p>admin</p>").unwrap();
    std::fs::create_dir(dir.path().join("tools")).unwrap();
    std::fs::write(dir.path().join("tools/index.html"), "<header>x</header>").unwrap();
    let options = WebOptions::default().with_static_dir(Some(dir.path().to_owned()));
    let server = start(pass_all(), echo_router(), options).await;
    let (_, _, body) = http_get(server.addr, "/").await;
    assert!(
        body.starts_with(
            r#"<!DOCTYPE html><html><HEAD lang=en><meta name="airlock-ticket" content=""#
        ),
        "the ticket opens the head: {body}"
    );
    let (_, _, body) = http_get(server.addr, "/admin.html").await;
    assert!(
        body.starts_with(r#"<!doctype html><meta name="airlock-ticket""#),
        "{body}"
    );
    let (_, _, body) = http_get(server.addr, "/tools/").await;
    assert!(
        body.starts_with(r#"<meta name="airlock-ticket""#),
        "not inside <header>: {body}"
    );
    let mut labels = Vec::new();
    for path in ["/", "/", "/index.html", "/admin.html", "/tools/"] {
        let ticket = airlock_tests::page_ticket(server.addr, path).await;
        let mut ws = connect_as(
            server.addr,
            &format!("ticket={ticket}"),
            Some(&own_origin(server.addr)),
        )
        .await
        .unwrap();
        labels.push(airlock_tests::welcome(&mut ws).await.0);
    }
    assert_eq!(labels, ["main-2", "main-3", "main-4", "admin-2", "tools-2"]);
    // Off, pages carry no ticket.
    let options = WebOptions::default()
        .with_static_dir(Some(dir.path().to_owned()))
        .with_page_tickets(false);
    let server = start(pass_all(), echo_router(), options).await;
    let (status, _, body) = http_get(server.addr, "/admin.html").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "<!doctype html><p>admin</p>")
    );
}

#[tokio::test]
async fn a_push_follows_the_connection_that_sent_the_message_never_a_later_holder_of_the_label() {
    let kept: Arc<Mutex<Option<airlock::web::Window>>> = Arc::default();
    let keep = kept.clone();
    let router = Router::new().command("remember", move |_: Value, _| {
        let keep = keep.clone();
        async move {
            *keep.lock().unwrap() = airlock::web::Window::current();
            Ok::<_, String>(json!("kept"))
        }
    });
    let server = start(pass_all(), router, WebOptions::default()).await;
    let ticket = server.windows.issue("main", "main").unwrap();
    let mut first = connect_ticket(&server, &ticket).await;
    send_json(
        &mut first,
        json!({"id": 1, "kind": "command", "name": "remember"}),
    )
    .await;
    assert_eq!(reply_to(&mut first, 1).await.0["payload"], "kept");
    let window = kept
        .lock()
        .unwrap()
        .clone()
        .expect("the handler saw its window");
    assert_eq!(window.label(), "main");
    drop(first);
    wait_until(|| server.windows.get("main").is_none()).await;
    // The page reloads and connects as "main" again; the push meant for the old connection
    // fails and is counted, and the new page gets nothing.
    let mut second = connect_ticket(&server, &ticket).await;
    let error = window
        .emit("private", Body::Json(r#"{"secret":1}"#.into()))
        .await
        .unwrap_err();
    assert!(matches!(error, PushError::Closed { .. }), "{error}");
    assert!(server.windows.dropped_pushes() >= 1);
    let current = server.windows.get("main").expect("the new connection");
    current
        .emit("public", Body::Json("1".into()))
        .await
        .unwrap();
    let (frame, _) = next_frame(&mut second).await;
    assert_eq!(
        frame["name"], "public",
        "the first frame the new page gets: {frame}"
    );
}

#[tokio::test]
async fn verdict_frames_count_the_connections_own_messages_only() {
    let options = WebOptions::default().with_report_verdicts(true);
    let server = start(pass_all(), echo_router(), options).await;
    let mut busy = connect(&server, "busy").await;
    for id in 1..=5 {
        send_json(&mut busy, json!({"id": id, "kind": "event", "name": "e"})).await;
        reply_to(&mut busy, id).await;
    }
    let mut quiet = connect(&server, "quiet").await;
    send_json(&mut quiet, json!({"id": 7, "kind": "event", "name": "e"})).await;
    let (_, others) = reply_to(&mut quiet, 7).await;
    assert_eq!(others[0]["type"], "verdict");
    assert_eq!(
        others[0]["message"], 1,
        "the quiet window's first message: {}",
        others[0]
    );
}

async fn start_opts(options: WebOptions, router: Router) -> Server {
    start_with(
        vec![pass_all()],
        router,
        GatewayLimits::default(),
        options,
        Windows::new(),
    )
    .await
}

/// Whether the peer closes `tcp` (EOF or reset) within 5 s, reading and dropping what it sends.
async fn closed_by_peer(tcp: &mut TcpStream) -> bool {
    let mut buffer = vec![0; 64 << 10];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn windows_up_to_the_connection_caps_connect() {
    let options = WebOptions::default()
        .with_allowed_origins(vec!["https://a.example".into()])
        .with_max_connections(3)
        .with_max_connections_per_origin(2);
    let server = start_opts(options, echo_router()).await;
    let _a = connect(&server, "a").await;
    let _b = connect(&server, "b").await;
    let ticket = server.windows.issue("c", "c").unwrap();
    let mut c = connect_as(
        server.addr,
        &format!("ticket={}", ticket.token()),
        Some("https://a.example"),
    )
    .await
    .expect("a third window from another origin");
    airlock_tests::welcome(&mut c).await;
}

#[tokio::test]
async fn a_window_past_the_total_or_the_per_origin_cap_is_refused_with_503_until_one_closes() {
    let options = WebOptions::default()
        .with_allowed_origins(vec!["https://a.example".into()])
        .with_max_connections(3)
        .with_max_connections_per_origin(2);
    let server = start_opts(options, echo_router()).await;
    let a = connect(&server, "a").await;
    let _b = connect(&server, "b").await;
    let ticket = server.windows.issue("c", "c").unwrap();
    refused_with(
        &server,
        &format!("ticket={}", ticket.token()),
        503,
        "the most allowed for one origin",
    )
    .await;
    let other = |label: &str| {
        let ticket = server.windows.issue(label, label).unwrap();
        let query = format!("ticket={}", ticket.token());
        async move { connect_as(server.addr, &query, Some("https://a.example")).await }
    };
    let _c = other("d").await.expect("another origin has room");
    match other("e").await {
        Err(WsError::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("a fourth window connected: {:?}", other.map(|_| ())),
    }
    drop(a);
    wait_until(|| server.windows.get("a").is_none()).await;
    let mut c = connect_as(
        server.addr,
        &format!("ticket={}", ticket.token()),
        Some(&own_origin(server.addr)),
    )
    .await
    .expect("a place is free again");
    airlock_tests::welcome(&mut c).await;
}

#[tokio::test]
async fn a_connection_that_sends_its_headers_in_time_is_served() {
    let options = WebOptions::default().with_header_timeout(Duration::from_secs(2));
    let server = start_opts(options, echo_router()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let request = format!(
        "GET /airlock.js HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        server.addr
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.unwrap();
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
}

#[tokio::test]
async fn a_connection_that_sends_no_headers_in_time_is_closed() {
    let options = WebOptions::default().with_header_timeout(Duration::from_millis(200));
    let server = start_opts(options, echo_router()).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert!(
        closed_by_peer(&mut tcp).await,
        "the half-sent request was not timed out"
    );
}

#[tokio::test]
async fn http_connections_up_to_their_cap_are_served_and_one_past_it_is_closed() {
    let options = WebOptions::default()
        .with_max_http_connections(2)
        .with_header_timeout(Duration::from_secs(30));
    let server = start_opts(options, echo_router()).await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        closed_by_peer(&mut third).await,
        "a third idle connection was kept"
    );
    for tcp in [&mut first, &mut second] {
        let request = format!(
            "GET /airlock.js HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.addr
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        tcp.read_to_end(&mut response).await.unwrap();
        assert!(response.starts_with(b"HTTP/1.1 200"));
    }
}

#[tokio::test]
async fn an_idle_page_that_answers_pings_stays_connected() {
    let options = WebOptions::default().with_ping_interval(Duration::from_millis(100));
    let server = start_opts(options, echo_router()).await;
    let mut ws = connect(&server, "idle").await;
    // Reading answers the server's pings (tungstenite replies with pongs by itself).
    let _ = tokio::time::timeout(Duration::from_millis(800), ws.next()).await;
    send_json(&mut ws, json!({"id": 1, "kind": "event", "name": "e"})).await;
    assert_eq!(reply_to(&mut ws, 1).await.0["ok"], true);
}

#[tokio::test]
async fn a_connection_that_answers_no_ping_is_closed() {
    let options = WebOptions::default().with_ping_interval(Duration::from_millis(100));
    let server = start_opts(options, echo_router()).await;
    let ticket = server.windows.issue("mute", "mute").unwrap();
    let mut tcp = raw_window(&server, &ticket).await;
    // Reads (and ignores) what comes, never answering: the pings go unanswered.
    assert!(
        closed_by_peer(&mut tcp).await,
        "the silent connection was kept"
    );
    wait_until(|| server.windows.get("mute").is_none()).await;
}

fn big_replies() -> Router {
    Router::new().command("big", |_: Value, _| async move {
        Ok::<_, String>("x".repeat(1 << 20))
    })
}

#[tokio::test]
async fn a_page_that_reads_its_replies_slowly_gets_them_all() {
    let options = WebOptions::default()
        .with_queue_bytes(64 << 10)
        .with_stall_timeout(Duration::from_secs(5));
    let server = start_opts(options, big_replies()).await;
    let mut ws = connect(&server, "slow").await;
    for id in 1..=8 {
        send_json(&mut ws, json!({"id": id, "kind": "command", "name": "big"})).await;
    }
    for _ in 1..=8 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (frame, _) = next_frame(&mut ws).await;
        assert_eq!(frame["ok"], true, "{}", frame["code"]);
    }
}

#[tokio::test]
async fn a_page_that_stops_reading_is_closed_after_the_stall_time_and_frees_what_it_held() {
    let options = WebOptions::default()
        .with_queue_bytes(64 << 10)
        .with_stall_timeout(Duration::from_millis(300));
    let server = start_opts(options, big_replies()).await;
    let mut ws = connect(&server, "stuck").await;
    // 96 MiB of replies to a page that reads none of them: more than the socket buffers take
    // (loopback autotunes a receive buffer up to 32 MiB here).
    for id in 1..=96 {
        send_json(&mut ws, json!({"id": id, "kind": "command", "name": "big"})).await;
    }
    wait_until(|| server.windows.get("stuck").is_none()).await;
    assert!(
        server.windows.dropped_pushes() > 0,
        "replies with nowhere to go are counted"
    );
}
