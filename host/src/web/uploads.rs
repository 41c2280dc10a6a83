//! Large request bodies sent beside the WebSocket: `POST /airlock/upload?ticket=TOKEN&id=N`.
//!
//! Chromium moves a text WebSocket message of a megabyte from the page's process to the
//! network's more slowly than a `fetch` POST of a `Blob` of the same text (11–12 ms against
//! 14–19 ms on a 2-vCPU machine: BENCHMARKS.md, 2026-12-03). So `airlock.js` sends a large JSON
//! request in two parts: on the WebSocket, its frame without the body and with `"upload":true`,
//! which takes the request's place in the window's order; and the whole frame, body included,
//! as it would have gone on the WebSocket, by POST. The connection's job for the request waits
//! for the upload (at most [`WebOptions::upload_timeout`](super::WebOptions::upload_timeout)),
//! checks that it is the request the frame announced, and goes on as if the frame had come on
//! the WebSocket: the same hooks, limits and order (an event's later events wait for it).
//!
//! The POST is taken only from a connected window's ticket and that connection's origin; its
//! body is limited like a WebSocket frame (over it: `413`, and the request is refused with
//! `too-large`) and must all arrive within the upload timeout (else `408`, `upload-missing`); a connection holds at most as many unclaimed uploads as it may have requests
//! in flight (past it: `429`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response as HttpResponse};
use futures_util::StreamExt as _;

use super::handshake::{checked_origin, query_pairs, refuse};
use super::{Shared, code, max_frame_bytes};
use crate::verdict::{Rejection, code as verdict_code};

/// The uploads a connection's requests wait for, by request id.
#[derive(Debug)]
pub(super) struct Uploads {
    /// The connection's origin: an upload from another is refused.
    origin: String,
    /// Unclaimed uploads the connection may hold.
    most: usize,
    waiting: Mutex<HashMap<u64, Result<Bytes, Rejection>>>,
    arrived: tokio::sync::Notify,
}

impl Uploads {
    pub(super) fn new(origin: String, most: usize) -> Self {
        Uploads {
            origin,
            most: most.max(1),
            waiting: Mutex::default(),
            arrived: tokio::sync::Notify::new(),
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Result<Bytes, Rejection>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands request `id` its body (or the reason it has none), or says why it cannot be held.
    fn put(&self, id: u64, body: Result<Bytes, Rejection>) -> Result<(), String> {
        let mut waiting = self.waiting();
        if waiting.contains_key(&id) {
            return Err(format!("request {id} already has an upload waiting for it"));
        }
        if waiting.len() >= self.most {
            return Err(format!(
                "{} uploads are waiting for their requests' frames, the most a window may hold",
                waiting.len()
            ));
        }
        waiting.insert(id, body);
        drop(waiting);
        self.arrived.notify_waiters();
        Ok(())
    }

    /// The body uploaded for request `id`, once it has arrived; refused with `upload-missing`
    /// when it has not within `within`.
    pub(super) async fn take(&self, id: u64, within: Duration) -> Result<Bytes, Rejection> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            // Registered before looking, so an upload put in between still wakes this.
            arrived.as_mut().enable();
            if let Some(body) = self.waiting().remove(&id) {
                return body;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Err(Rejection::new(
                    code::UPLOAD_MISSING,
                    format!(
                        "request {id} announced an upload (POST /airlock/upload) that did not \
                         arrive within {within:?}"
                    ),
                ));
            }
        }
    }
}

/// A connection's place in the upload registry, under its ticket; left when dropped.
pub(super) struct Registered {
    shared: Arc<Shared>,
    token: String,
}

impl Registered {
    pub(super) fn new(shared: &Arc<Shared>, token: &str, uploads: Arc<Uploads>) -> Self {
        let mut all = shared.uploads.lock().unwrap_or_else(|e| e.into_inner());
        all.insert(token.to_owned(), uploads);
        Registered {
            shared: shared.clone(),
            token: token.to_owned(),
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut all = self
            .shared
            .uploads
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        all.remove(&self.token);
    }
}

/// `ticket` and `id` from the upload's query, or why not.
fn query(uri: &Uri) -> Result<(String, u64), String> {
    let (mut ticket, mut id) = (None, None);
    for (pair, split) in query_pairs(uri) {
        match split {
            Some(("ticket", value)) => ticket = Some(value.to_owned()),
            Some(("id", value)) => {
                id = Some(value.parse::<u64>().map_err(|e| {
                    format!("id={value:?} is not a request id (an unsigned integer): {e}")
                })?);
            }
            _ => {
                return Err(format!(
                    "unknown query parameter {pair:?}; expected ticket=TOKEN&id=N"
                ));
            }
        }
    }
    match (ticket, id) {
        (Some(ticket), Some(id)) => Ok((ticket, id)),
        _ => {
            Err("an upload names its window and request: /airlock/upload?ticket=TOKEN&id=N".into())
        }
    }
}

/// `POST /airlock/upload?ticket=TOKEN&id=N`: the whole frame of request `N` of the window
/// connected with `TOKEN`.
pub(super) async fn upload(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    uri: Uri,
    body: Body,
) -> HttpResponse {
    let origin = match checked_origin(&shared, &headers) {
        Ok(origin) => origin,
        Err(reason) => return refuse(StatusCode::FORBIDDEN, reason),
    };
    // From here on the page's origin is allowed: every answer is readable by it.
    allow_origin(accept(shared, &origin, uri, headers, body).await, &origin)
}

/// [`upload`] from an allowed `origin`.
async fn accept(
    shared: Arc<Shared>,
    origin: &str,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> HttpResponse {
    let (token, id) = match query(&uri) {
        Ok(found) => found,
        Err(reason) => return refuse(StatusCode::BAD_REQUEST, reason),
    };
    let uploads = shared
        .uploads
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&token)
        .cloned();
    let Some(uploads) = uploads else {
        return refuse(
            StatusCode::FORBIDDEN,
            "no connected window has this ticket: an upload goes with its window's connection"
                .to_owned(),
        );
    };
    if uploads.origin != origin {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "an upload from {origin:?} for a window connected from {:?}",
                uploads.origin
            ),
        );
    }
    let limit = max_frame_bytes(shared.gateway.limits().max_message_bytes);
    let within = shared.options.upload_timeout;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let (status, body) = match declared {
        Some(length) if length > limit as u64 => (
            StatusCode::PAYLOAD_TOO_LARGE,
            Err(too_large(format!("{length} bytes"), limit)),
        ),
        _ => match tokio::time::timeout(within, read(body, limit, declared)).await {
            Err(_) => {
                let reason =
                    format!("the upload for request {id} was not all sent within {within:?}");
                (
                    StatusCode::REQUEST_TIMEOUT,
                    Err(Rejection::new(code::UPLOAD_MISSING, reason)),
                )
            }
            Ok(Ok(Some(bytes))) => (StatusCode::NO_CONTENT, Ok(bytes)),
            Ok(Ok(None)) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                Err(too_large("more bytes".to_owned(), limit)),
            ),
            Ok(Err(e)) => {
                let reason = format!("the upload for request {id} was cut off: {e}");
                (
                    StatusCode::BAD_REQUEST,
                    Err(Rejection::new(code::INVALID_FRAME, reason)),
                )
            }
        },
    };
    let reason = body.as_ref().err().map(|r| r.reason.clone());
    if let Err(reason) = uploads.put(id, body) {
        return refuse(StatusCode::TOO_MANY_REQUESTS, reason);
    }
    match reason {
        Some(reason) => refuse(status, reason),
        None => status.into_response(),
    }
}

fn too_large(got: String, limit: usize) -> Rejection {
    Rejection::new(
        verdict_code::TOO_LARGE,
        format!("an upload of {got} is over the {limit} bytes a request's frame may take"),
    )
}

/// The whole body, or `None` once it runs past `limit` bytes.
async fn read(
    body: Body,
    limit: usize,
    declared: Option<u64>,
) -> Result<Option<Bytes>, axum::Error> {
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::with_capacity(declared.map_or(0, |n| n as usize).min(limit));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if bytes.len() + chunk.len() > limit {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(Bytes::from(bytes)))
}

/// `response` readable by a page of `origin`, which may not be the server's own.
fn allow_origin(mut response: HttpResponse, origin: &str) -> HttpResponse {
    if let Ok(value) = HeaderValue::from_str(origin) {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.insert(header::VARY, HeaderValue::from_static("origin"));
    }
    response
}
