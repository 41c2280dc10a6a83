//! The wire format between the JS client (`airlock.js`) and the WebSocket gateway.
//!
//! Page → gateway, one request a frame:
//! - a text frame `{"id":1,"kind":"command","name":"fs_read","headers":[["x-a","1"]],"payload":{…}}`
//!   (`headers` and `payload` optional: a missing payload is `{}` for a command, `null` otherwise);
//! - or a binary frame for a bytes body: a big-endian `u32` length, that many bytes of the same
//!   JSON head without `payload`, then the body's bytes as they are;
//! - or the same binary frame with `"json":true` in its head for a JSON body: the bytes after the
//!   head are the payload's JSON text in UTF-8, taken as if it had been the text frame's
//!   `payload` (`airlock.js` sends large JSON bodies so: Chromium moves a binary message of a
//!   megabyte several times faster than a text one, BENCHMARKS.md, 2026-12-04);
//! - or, for a large body, a text frame `{"id":1,"kind":"event","name":"save","upload":true}`
//!   with no headers or payload, and the whole frame as it would have been (text or binary) in
//!   the body of `POST /airlock/upload?ticket=TOKEN&id=1` (`uploads.rs`).
//!
//! Gateway → page: first `{"type":"window","window":LABEL,"webview":LABEL,"max_message_bytes":N}`,
//! the labels the server gave the connection and the gateway's message limit (so that the page
//! refuses a larger request itself instead of sending a frame that closes the connection); then `{"type":"reply","id":1,"ok":true,"payload":…}` or
//! `{"type":"reply","id":1,"ok":false,"code":…,"reason":…}`; `{"type":"event","name":…,"payload":…}`;
//! `{"type":"channel","channel":7,"payload":…}`; `{"type":"error","code":…,"reason":…}` for a
//! frame that names no request. When verdicts are reported, a reply (or error) carries its verdict
//! as a member, `"verdict":{"id":1,"message":1,"kind":"command","name":…,"verdict":"pass",…}`: one
//! frame an answer, so a page handles one WebSocket message per request, not two. Bytes payloads
//! travel as binary frames with the same head (without `payload`) in front.

use axum::extract::ws::Message as WsMessage;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::core::Response;
use crate::gateway::Reply;
use crate::message::{Body, Header, Kind, Request};
use crate::verdict::Rejection;

/// A request as the page sent it: its own id, and what goes to the gateway.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub id: u64,
    pub request: Request,
    /// The body comes by upload (`uploads.rs`): `request` has none yet.
    pub upload: bool,
}

/// A frame that is not a request; `id` when the frame named one.
#[derive(Debug)]
pub(crate) struct FrameError {
    pub id: Option<u64>,
    pub reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Head<'a> {
    id: u64,
    kind: Kind,
    name: String,
    #[serde(default)]
    headers: Vec<(String, String)>,
    #[serde(default, borrow)]
    payload: Option<&'a RawValue>,
    #[serde(default)]
    upload: bool,
    #[serde(default)]
    json: bool,
}

#[derive(Deserialize)]
struct IdOnly {
    id: u64,
}

fn head(text: &str) -> Result<Head<'_>, FrameError> {
    serde_json::from_str::<Head>(text).map_err(|e| FrameError {
        id: serde_json::from_str::<IdOnly>(text).ok().map(|h| h.id),
        reason: format!("malformed request frame: {e}"),
    })
}

fn request(head: Head<'_>, body: Body) -> Incoming {
    Incoming {
        id: head.id,
        upload: head.upload,
        request: Request {
            kind: head.kind,
            name: head.name,
            headers: head
                .headers
                .into_iter()
                .map(|(name, value)| Header { name, value })
                .collect(),
            body,
        },
    }
}

/// Reads a text frame: the head with a JSON payload, or an upload's announcement.
pub(crate) fn parse_text(text: &str) -> Result<Incoming, FrameError> {
    let head = head(text)?;
    if head.json {
        return Err(FrameError {
            id: Some(head.id),
            reason: "\"json\":true marks a binary frame's body as JSON; a text frame carries its \
                     JSON in \"payload\""
                .to_owned(),
        });
    }
    if head.upload && (head.payload.is_some() || !head.headers.is_empty()) {
        return Err(FrameError {
            id: Some(head.id),
            reason: "a frame announcing an upload carries no payload or headers: they are in \
                     the upload"
                .to_owned(),
        });
    }
    let body = match head.payload {
        Some(raw) => raw.get().to_owned(),
        None if head.kind == Kind::Command => "{}".to_owned(),
        None => "null".to_owned(),
    };
    Ok(request(head, Body::Json(body)))
}

/// Reads a binary frame: length-prefixed head, then the body's bytes (the payload's JSON text when
/// the head says `"json":true`).
pub(crate) fn parse_binary(bytes: &[u8]) -> Result<Incoming, FrameError> {
    let bad = |reason: String| FrameError { id: None, reason };
    let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
        return Err(bad(format!(
            "binary frame of {} bytes is shorter than its 4-byte head length",
            bytes.len()
        )));
    };
    let len = u32::from_be_bytes(*len) as usize;
    if len > rest.len() {
        return Err(bad(format!(
            "binary frame's head of {len} bytes runs past the frame's {} remaining bytes",
            rest.len()
        )));
    }
    let (text, body) = rest.split_at(len);
    let text = std::str::from_utf8(text)
        .map_err(|e| bad(format!("binary frame's head is not UTF-8: {e}")))?;
    let head = head(text)?;
    if head.upload {
        return Err(FrameError {
            id: Some(head.id),
            reason: "an upload is announced by a text frame, not a binary one".to_owned(),
        });
    }
    if head.payload.is_some() {
        return Err(FrameError {
            id: Some(head.id),
            reason: "a binary frame carries its payload after the head, not in it".to_owned(),
        });
    }
    if head.json {
        let id = Some(head.id);
        let json = std::str::from_utf8(body).map_err(|e| FrameError {
            id,
            reason: format!("binary frame's JSON body is not UTF-8: {e}"),
        })?;
        let payload = serde_json::from_str::<&RawValue>(json).map_err(|e| FrameError {
            id,
            reason: format!("binary frame's JSON body is not JSON: {e}"),
        })?;
        let payload = payload.get().to_owned();
        return Ok(request(head, Body::Json(payload)));
    }
    Ok(request(head, Body::Bytes(body.to_vec())))
}

/// A frame with `head` (a JSON object) and `body`: text with the JSON body as `payload`, or
/// binary with the bytes after the head. The body is copied once, into the frame.
pub(crate) fn with_body<H: Serialize>(head: &H, body: &Body) -> WsMessage {
    match body {
        Body::Json(text) => with_payload(head, text),
        Body::Bytes(bytes) => binary(head, bytes),
    }
}

/// `head` with `"payload":` and the raw JSON `payload` as its last member.
fn with_payload<H: Serialize>(head: &H, payload: &str) -> WsMessage {
    let mut out = json_text(head);
    out.reserve(payload.len() + 12);
    out.pop(); // the closing brace: the raw payload goes in as it is
    out.push_str(if out.ends_with('{') { "" } else { "," });
    out.push_str("\"payload\":");
    out.push_str(payload);
    out.push('}');
    WsMessage::Text(out.into())
}

fn json_text<H: Serialize>(head: &H) -> String {
    serde_json::to_string(head).expect("frame heads are plain data")
}

fn binary<H: Serialize>(head: &H, bytes: &[u8]) -> WsMessage {
    let head = json_text(head);
    let mut out = Vec::with_capacity(4 + head.len() + bytes.len());
    out.extend_from_slice(&(head.len() as u32).to_be_bytes());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(bytes);
    WsMessage::Binary(out.into())
}

/// The head of a frame to the page; `type` first, fields in the order written.
#[derive(Serialize)]
struct Out<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verdict: Option<&'a Verdict<'a>>,
}

impl<'a> Out<'a> {
    fn new(kind: &'static str) -> Self {
        Out {
            kind,
            id: None,
            name: None,
            channel: None,
            ok: None,
            code: None,
            reason: None,
            verdict: None,
        }
    }

    fn reply(id: u64, ok: bool, verdict: Option<&'a Verdict<'a>>) -> Self {
        Out {
            id: Some(id),
            ok: Some(ok),
            verdict,
            ..Out::new("reply")
        }
    }
}

/// The connection's labels and the gateway's message limit, its first frame.
pub(crate) fn welcome(window: &str, webview: &str, max_message_bytes: usize) -> WsMessage {
    let frame = serde_json::json!({
        "type": "window",
        "window": window,
        "webview": webview,
        "max_message_bytes": max_message_bytes,
    });
    WsMessage::Text(frame.to_string().into())
}

/// An event for the page's `listen(name, …)` handlers.
pub(crate) fn event(name: &str, payload: &Body) -> WsMessage {
    with_body(
        &Out {
            name: Some(name),
            ..Out::new("event")
        },
        payload,
    )
}

/// Data for the page's channel `channel`.
pub(crate) fn channel(channel: u64, data: &Body) -> WsMessage {
    with_body(
        &Out {
            channel: Some(channel),
            ..Out::new("channel")
        },
        data,
    )
}

/// The answer to request `id`, with its verdict when verdicts are reported.
pub(crate) fn reply(
    id: u64,
    outcome: &Result<Response, Rejection>,
    verdict: Option<&Verdict<'_>>,
) -> WsMessage {
    match outcome {
        Ok(Response::Json(raw)) => with_payload(&Out::reply(id, true, verdict), raw.get()),
        Ok(Response::Bytes(bytes)) => binary(&Out::reply(id, true, verdict), bytes),
        Ok(Response::Delivered { receivers }) => {
            #[derive(Serialize)]
            struct Delivered<'a> {
                #[serde(rename = "type")]
                kind: &'static str,
                id: u64,
                ok: bool,
                #[serde(skip_serializing_if = "Option::is_none")]
                verdict: Option<&'a Verdict<'a>>,
                payload: (),
                receivers: usize,
            }
            WsMessage::Text(
                json_text(&Delivered {
                    kind: "reply",
                    id,
                    ok: true,
                    verdict,
                    payload: (),
                    receivers: *receivers,
                })
                .into(),
            )
        }
        Err(rejection) => rejected(Some(id), rejection, verdict),
    }
}

/// A refusal of request `id`, or a notice when the frame named none; with its verdict when
/// verdicts are reported.
pub(crate) fn rejected(
    id: Option<u64>,
    rejection: &Rejection,
    verdict: Option<&Verdict<'_>>,
) -> WsMessage {
    let head = match id {
        Some(id) => Out::reply(id, false, verdict),
        None => Out {
            verdict,
            ..Out::new("error")
        },
    };
    WsMessage::Text(
        json_text(&Out {
            code: Some(&rejection.code),
            reason: Some(&rejection.reason),
            ..head
        })
        .into(),
    )
}

/// What happened to request `id`, the connection's `message`-th, as reported in its answer. The
/// count is the connection's own: nothing about other windows' traffic shows through it.
#[derive(Serialize)]
pub(crate) struct Verdict<'a> {
    id: Option<u64>,
    message: u64,
    kind: Kind,
    name: &'a str,
    verdict: &'static str,
    code: Option<&'a str>,
    reason: Option<&'a str>,
    hook: Option<&'a str>,
    cost_us: Option<f64>,
    fuel: Option<u64>,
}

impl<'a> Verdict<'a> {
    pub(crate) fn new(
        id: Option<u64>,
        message: u64,
        kind: Kind,
        name: &'a str,
        reply: &'a Reply,
    ) -> Self {
        let (code, reason) = match &reply.outcome {
            Err(r) => (Some(&*r.code), Some(&*r.reason)),
            Ok(_) => (None, None),
        };
        Verdict {
            id,
            message,
            kind,
            name,
            verdict: reply.decision.as_str(),
            code,
            reason,
            hook: reply.hook_digest.as_deref(),
            cost_us: reply.hook_time.map(|t| t.as_nanos() as f64 / 1000.0),
            fuel: reply.hook_fuel,
        }
    }
}

/// Reads an uploaded frame (text when it starts with `{`, else binary), which must be the
/// request `announced` said it would be and not announce an upload itself.
pub(crate) fn parse_upload(body: &[u8], announced: &Incoming) -> Result<Incoming, FrameError> {
    let id = Some(announced.id);
    let incoming = match body.first() {
        Some(b'{') => {
            let text = std::str::from_utf8(body).map_err(|e| FrameError {
                id,
                reason: format!("the upload's text frame is not UTF-8: {e}"),
            })?;
            parse_text(text)
        }
        _ => parse_binary(body),
    }
    .map_err(|e| FrameError {
        id,
        reason: format!("upload: {}", e.reason),
    })?;
    let (got, want) = (&incoming.request, &announced.request);
    if incoming.upload {
        return Err(FrameError {
            id,
            reason: "an upload cannot announce another upload".to_owned(),
        });
    }
    if incoming.id != announced.id || got.kind != want.kind || got.name != want.name {
        return Err(FrameError {
            id,
            reason: format!(
                "the upload is {} {:?} (request {}), not the {} {:?} (request {}) its frame \
                 announced",
                got.kind.as_str(),
                got.name,
                incoming.id,
                want.kind.as_str(),
                want.name,
                announced.id
            ),
        });
    }
    Ok(incoming)
}
