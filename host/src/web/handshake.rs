//! The WebSocket handshake at `GET /airlock?ticket=TOKEN`: the page's origin and ticket are
//! checked, the connection takes its place in the caps and its window is registered (with a place
//! for its uploads, `uploads.rs`), then the socket goes to
//! [`connection`](super::connection::connection).

use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response as HttpResponse};

use super::connection::connection;
use super::uploads::{Registered, Uploads};
use super::{Shared, TicketError, max_frame_bytes};
use crate::message::Source;

pub(super) fn refuse(status: StatusCode, reason: String) -> HttpResponse {
    tracing::info!(%status, "connection refused: {reason}");
    (status, reason).into_response()
}

/// The request's `Origin`, when it is one of the allowed origins; else why it is refused (403).
pub(super) fn checked_origin(shared: &Shared, headers: &HeaderMap) -> Result<String, String> {
    let origin = match headers.get(header::ORIGIN).map(HeaderValue::to_str) {
        None => return Err("missing Origin header".into()),
        Some(Err(_)) => return Err("Origin header is not ASCII".into()),
        Some(Ok(origin)) => origin.to_owned(),
    };
    if !shared.origins.contains(&origin) {
        return Err(format!(
            "origin {origin:?} is not allowed; allowed: {}",
            shared.origins.join(", ")
        ));
    }
    Ok(origin)
}

/// The non-empty `&`-separated pairs of a request's query, each with its `name=value` split.
pub(super) fn query_pairs(uri: &Uri) -> impl Iterator<Item = (&str, Option<(&str, &str)>)> {
    let pairs = uri.query().unwrap_or("").split('&');
    pairs
        .filter(|p| !p.is_empty())
        .map(|p| (p, p.split_once('=')))
}

pub(super) async fn upgrade(
    State(shared): State<Arc<Shared>>,
    ws: WebSocketUpgrade,
    headers: HeaderMap,
    uri: Uri,
) -> HttpResponse {
    let origin = match checked_origin(&shared, &headers) {
        Ok(origin) => origin,
        Err(reason) => return refuse(StatusCode::FORBIDDEN, reason),
    };
    let mut token = None;
    for (pair, split) in query_pairs(&uri) {
        match split {
            Some(("ticket", value)) => token = Some(value.to_owned()),
            Some(("window" | "webview", _)) => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "{pair:?}: window labels are issued by the server; connect with the \
                         page's ticket (/airlock?ticket=TOKEN, as airlock.js does)"
                    ),
                );
            }
            _ => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    format!("unknown query parameter {pair:?}; expected ticket=TOKEN"),
                );
            }
        }
    }
    let Some(token) = token else {
        return refuse(
            StatusCode::FORBIDDEN,
            "no window ticket: connect with /airlock?ticket=TOKEN, the ticket of the page the \
             server served or the app issued"
                .to_owned(),
        );
    };
    let ticket = match shared.windows.ticket(&token) {
        Ok(ticket) => ticket,
        Err(e) => return refuse(StatusCode::FORBIDDEN, e.to_string()),
    };
    let slot = match shared.slot(&origin) {
        Ok(slot) => slot,
        Err(reason) => return refuse(StatusCode::SERVICE_UNAVAILABLE, reason),
    };
    let (handle, rx) = shared.windows.window(&ticket, shared.options.queue_bytes);
    let registration = match shared.windows.register(&ticket, &handle) {
        Ok(registration) => registration,
        Err(e @ TicketError::Connected(_)) => return refuse(StatusCode::CONFLICT, e.to_string()),
        Err(e) => return refuse(StatusCode::FORBIDDEN, e.to_string()),
    };
    let uploads = Arc::new(Uploads::new(origin.clone(), shared.options.in_flight));
    let (window, webview) = (ticket.window().to_owned(), ticket.webview().to_owned());
    let source = Source::new(window, webview, origin);
    let frame_limit = max_frame_bytes(shared.gateway.limits().max_message_bytes);
    ws.max_message_size(frame_limit)
        .max_frame_size(frame_limit)
        .on_upgrade(move |socket| async move {
            tracing::info!(window = %source.window, origin = %source.origin, "window connected");
            let uploading = Registered::new(&shared, ticket.token(), uploads.clone());
            connection(shared, socket, handle, rx, source, uploads).await;
            drop(uploading);
            drop(registration);
            drop(slot);
        })
}
