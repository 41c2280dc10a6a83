//! A connection's writer: the one task that writes what is queued for a window to its socket.

use std::future::Future;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket};
use futures_util::SinkExt as _;
use tokio::sync::mpsc;

use super::Window;
use super::window::Outgoing;

/// Whether `write` finished, without error, within `stall`: a write that makes no progress that
/// long (the page does not read) ends the connection.
async fn written_within(
    stall: Duration,
    write: impl Future<Output = Result<(), axum::Error>>,
) -> bool {
    matches!(tokio::time::timeout(stall, write).await, Ok(Ok(())))
}

/// Writes what is queued for the connection: everything waiting is written together, with one
/// flush (mostly one write to the socket), and its room in the queue is released after it.
pub(super) async fn write(
    mut sink: futures_util::stream::SplitSink<WebSocket, WsMessage>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    window: Window,
    stall: Duration,
) {
    let mut written = Vec::new();
    'connection: while let Some(mut out) = rx.recv().await {
        loop {
            match out {
                Outgoing::Frame(frame, permit) => {
                    let sent = written_within(stall, sink.feed(frame)).await;
                    written.push(permit);
                    if !sent {
                        break 'connection;
                    }
                }
                Outgoing::Close(code, mut reason) => {
                    // A close reason is at most 123 bytes.
                    while reason.len() > 123 {
                        reason.pop();
                    }
                    let close = CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        sink.send(WsMessage::Close(Some(close))),
                    )
                    .await;
                    break 'connection;
                }
            }
            match rx.try_recv() {
                Ok(next) => out = next,
                Err(_) => break,
            }
        }
        if !written_within(stall, sink.flush()).await {
            tracing::info!(window = %window.label(), "connection closed: writing stalled or failed");
            break;
        }
        written.clear();
        super::spin::written();
    }
    // Whatever still waits for room would wait forever: the socket is gone.
    window.refuse_pushes();
    rx.close();
}
