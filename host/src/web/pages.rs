//! What the server serves over plain HTTP: the JS client at `/airlock.js`, and the files of the
//! static folder, each HTML page with a fresh window ticket.

use std::path::Path;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response as HttpResponse};

use super::handshake::refuse;
use super::{CLIENT_JS, MAX_LABEL_BYTES, Shared, Ticket, WebOptions};

pub(super) async fn client_js(State(shared): State<Arc<Shared>>) -> HttpResponse {
    let response = (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        CLIENT_JS,
    )
        .into_response();
    isolated(&shared.options, response)
}

/// `response` with the headers that make a page cross-origin isolated, when asked for.
fn isolated(options: &WebOptions, mut response: HttpResponse) -> HttpResponse {
    if options.cross_origin_isolated {
        let headers = response.headers_mut();
        headers.insert(
            "cross-origin-opener-policy",
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(
            "cross-origin-embedder-policy",
            HeaderValue::from_static("require-corp"),
        );
        headers.insert(
            "cross-origin-resource-policy",
            HeaderValue::from_static("same-origin"),
        );
    }
    response
}

pub(super) async fn static_file(State(shared): State<Arc<Shared>>, uri: Uri) -> HttpResponse {
    let Some(dir) = &shared.options.static_dir else {
        return refuse(
            StatusCode::NOT_FOUND,
            format!(
                "no static folder is served, so {:?} is not found; the JS client is at /airlock.js",
                uri.path()
            ),
        );
    };
    match read_static(dir, uri.path()).await {
        Ok((mut bytes, kind)) => {
            if kind.starts_with("text/html") && shared.options.page_tickets {
                let ticket = match shared.windows.issue_page(&page_label(uri.path())) {
                    Ok(ticket) => ticket,
                    Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
                };
                bytes = with_ticket(bytes, &ticket);
            }
            isolated(
                &shared.options,
                (
                    [
                        (header::CONTENT_TYPE, kind),
                        (header::CACHE_CONTROL, "no-store"),
                        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                    ],
                    bytes,
                )
                    .into_response(),
            )
        }
        Err(reason) => refuse(StatusCode::NOT_FOUND, reason),
    }
}

/// The window label of the page at `path`: `main` for the root's `index.html`, a folder's name
/// for its `index.html`, else the file's name without `.html` (`page` if that is no valid label).
fn page_label(path: &str) -> String {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let stem = |name: &str| name.strip_suffix(".html").unwrap_or(name).to_owned();
    let label = match segments.as_slice() {
        [] | ["index.html"] => "main".to_owned(),
        [.., folder, "index.html"] => stem(folder),
        [.., last] => stem(last),
    };
    match crate::checks::check_name(&label, MAX_LABEL_BYTES) {
        Ok(()) if !label.is_empty() => label,
        _ => "page".to_owned(),
    }
}

/// `html` with `<meta name="airlock-ticket" content="TOKEN">` at the start of its `<head>` (or of
/// `<html>`, or after the doctype, or at the start).
fn with_ticket(html: Vec<u8>, ticket: &Ticket) -> Vec<u8> {
    let meta = format!(
        r#"<meta name="airlock-ticket" content="{}">"#,
        ticket.token()
    );
    let lower = html.to_ascii_lowercase();
    let after_tag = |tag: &[u8]| {
        lower
            .windows(tag.len() + 1)
            .position(|w| {
                w.starts_with(tag) && (w[tag.len()] == b'>' || w[tag.len()].is_ascii_whitespace())
            })
            .and_then(|at| {
                lower[at..]
                    .iter()
                    .position(|&b| b == b'>')
                    .map(|end| at + end + 1)
            })
    };
    let at = after_tag(b"<head")
        .or_else(|| after_tag(b"<html"))
        .or_else(|| after_tag(b"<!doctype"))
        .unwrap_or(0);
    let mut out = Vec::with_capacity(html.len() + meta.len());
    out.extend_from_slice(&html[..at]);
    out.extend_from_slice(meta.as_bytes());
    out.extend_from_slice(&html[at..]);
    out
}

/// Reads `path` under `dir`, refusing any segment that is empty-dotted, hidden or not plain.
async fn read_static(dir: &Path, path: &str) -> Result<(Vec<u8>, &'static str), String> {
    let mut file = dir.to_path_buf();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segment.starts_with('.') || segment.contains(['\\', '%', ':']) {
            return Err(format!("path {path:?} is not served"));
        }
        file.push(segment);
    }
    if file.is_dir() {
        file.push("index.html");
    }
    let kind = match file.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("wasm") => "application/wasm",
        Some("txt" | "md") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    };
    let bytes = tokio::fs::read(&file)
        .await
        .map_err(|e| format!("cannot read {path:?}: {e}"))?;
    Ok((bytes, kind))
}
