//! The transport's floor: a bare axum server with no Airlock in it, for the end-to-end
//! benchmark to measure what the same page and the same browser pay for a WebSocket round trip
//! and for a `fetch` POST before any gateway, hook or seal does anything.
//!
//! `GET /` is a blank cross-origin isolated page, `GET /ws` a WebSocket that answers every
//! message with one small text frame, and `POST /post` reads the whole body and answers with its
//! length.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderName, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;

/// The floor server, on its own thread and runtime so that it shares nothing with the client
/// that measures it; it runs until the process ends.
pub fn start() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    std::thread::Builder::new()
        .name("floor".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the floor server");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)
                    .expect("listener")
                    .tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                let app = Router::new()
                    .route("/", get(page))
                    .route("/ws", get(upgrade))
                    .route("/post", post(body_length));
                axum::serve(listener, app).await.expect("the floor server");
            });
        })?;
    Ok(addr)
}

async fn page() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                "same-origin",
            ),
            (
                HeaderName::from_static("cross-origin-embedder-policy"),
                "require-corp",
            ),
        ],
        "<!doctype html><meta charset=utf-8><title>transport floor</title>\n",
    )
        .into_response()
}

async fn upgrade(ws: WebSocketUpgrade) -> Response {
    ws.max_message_size(64 << 20)
        .max_frame_size(64 << 20)
        .on_upgrade(echo)
}

/// Answers each message with `{"type":"reply","ok":true,"id":…}`, the id copied from the
/// first bytes of a text frame (so the reply is as small as the gateway's to an `emit`).
async fn echo(mut socket: WebSocket) {
    while let Some(Ok(message)) = socket.recv().await {
        let id = match &message {
            Message::Text(text) => leading_id(text.as_str()),
            Message::Binary(_) => 0,
            Message::Close(_) => break,
            _ => continue,
        };
        let reply = format!(r#"{{"type":"reply","ok":true,"id":{id},"payload":null}}"#);
        if socket.send(Message::Text(reply.into())).await.is_err() {
            break;
        }
    }
}

/// The number after `"id":` in a frame's first 64 bytes, or 0.
fn leading_id(text: &str) -> u64 {
    let head = &text.as_bytes()[..text.len().min(64)];
    let Some(at) = head.windows(5).position(|w| w == b"\"id\":") else {
        return 0;
    };
    head[at + 5..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0, |n, b| n * 10 + u64::from(b - b'0'))
}

async fn body_length(body: Bytes) -> String {
    format!(r#"{{"ok":true,"length":{}}}"#, body.len())
}
