//! Recording traffic for `airlock replay`: a [`Recorder`] the gateway hands every request and its
//! reply ([`crate::Gateway::with_recorder`]), and [`JsonlRecorder`], which appends them to a JSON
//! Lines file.
//!
//! A record is a line of `airlock inspect` (see [`crate::jsonl`]: kind, name, source, headers,
//! payload or bytes, as the frontend sent them, before any hook), with the gateway's `id` and a
//! `recorded` object that [`crate::jsonl::parse_line`] skips:
//!
//! ```json
//! {"id":7,"kind":"command","name":"fs_read","source":{…},"headers":{},"payload":{"path":"../x"},
//!  "recorded":{"unix_ms":1764668721000,"verdict":"reject","code":"path-escape","reason":"…",
//!  "hook":"5f3a…","payloads":"all","monitored":[]}}
//! ```
//!
//! `verdict` is the gateway's decision (`pass`, `replace`, `reject`); `code` and `reason` are set
//! for a rejection (by the gateway's checks or a hook; a core's refusal of a passed message is not
//! a verdict), `hook` names the hook that decided, and `monitored` lists what hooks in monitor
//! mode would have done (`{"hook","verdict","code"}`). [`Payloads`] keeps secrets off the disk:
//! with anything but [`Payloads::All`], rejection reasons (which may quote the payload) are left
//! out too. A redactor ([`JsonlRecorder::with_redactor`]: a hook such as `guest-hooks/redact`
//! with its config) rewrites each request before it is written, so a record keeps its shape and
//! values but not the secrets the redactor's config names; its records say `"payloads":
//! "redacted"` and carry no rejection reasons.

use std::fmt;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::Hook;
use crate::gateway::Reply;
use crate::jsonl::MonitoredLine;
use crate::message::{Body, Header, Kind, Message, Request, Source};
use crate::verdict::Verdict;

/// Something that keeps a record of each request the gateway handled.
pub trait Recorder: Send + Sync + fmt::Debug + 'static {
    /// Called once per request, after its reply is made, with the request as the frontend sent
    /// it. Must not fail the request: a recorder reports its own errors (by logging them).
    fn record(&self, source: &Source, request: &Request, reply: &Reply);

    /// A hook that rewrites each request before [`Recorder::record`] sees it: what it replaces
    /// (headers, body) is what is recorded; a request it passes is recorded as sent; one it
    /// rejects, or faults on, is recorded without its headers and payload (as with
    /// [`Payloads::None`]: fail closed). It runs on the gateway's task once the reply is made and
    /// before [`Gateway::handle`](crate::Gateway::handle) returns it, so its time adds to each
    /// recorded message's. `None` (the default): requests are recorded as sent.
    fn redactor(&self) -> Option<&Hook> {
        None
    }
}

/// How much of each message's body and headers a [`JsonlRecorder`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Payloads {
    /// Nothing: a command's payload is written as `{}`, anything else's as `null`, bytes as
    /// empty, no headers.
    None,
    /// The shape without the values: object keys (at every depth) and header names are kept,
    /// every string, number and boolean becomes `null` (header values `""`), bytes are empty.
    Names,
    /// Everything, as sent (the default).
    #[default]
    All,
}

impl Payloads {
    /// `none`, `names` or `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Payloads::None => "none",
            Payloads::Names => "names",
            Payloads::All => "all",
        }
    }
}

impl std::str::FromStr for Payloads {
    type Err = String;

    fn from_str(text: &str) -> Result<Payloads, String> {
        match text {
            "none" => Ok(Payloads::None),
            "names" => Ok(Payloads::Names),
            "all" => Ok(Payloads::All),
            other => Err(format!(
                "payload recording {other:?} is not one of none, names, all"
            )),
        }
    }
}

/// A [`Recorder`] appending one JSON line per request to a writer (a file, usually), flushed
/// after each line so a record survives a crash of the app.
pub struct JsonlRecorder {
    out: Mutex<Box<dyn Write + Send>>,
    payloads: Payloads,
    redactor: Option<Hook>,
}

impl fmt::Debug for JsonlRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlRecorder")
            .field("payloads", &self.payloads)
            .field("redactor", &self.redactor.as_ref().map(Hook::digest))
            .finish_non_exhaustive()
    }
}

impl JsonlRecorder {
    /// Appends to the file at `path`, creating it (readable by this user only, on Unix) if
    /// missing.
    pub fn append(path: impl AsRef<Path>, payloads: Payloads) -> std::io::Result<JsonlRecorder> {
        let mut options = std::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path)?;
        Ok(JsonlRecorder::new(Box::new(file), payloads))
    }

    /// Writes records to `out`.
    pub fn new(out: Box<dyn Write + Send>, payloads: Payloads) -> JsonlRecorder {
        JsonlRecorder {
            out: Mutex::new(out),
            payloads,
            redactor: None,
        }
    }

    /// This recorder with `hook` rewriting each request before it is written (see
    /// [`Recorder::redactor`]); the payloads it leaves are then kept as [`Payloads`] says.
    #[must_use]
    pub fn with_redactor(mut self, hook: Hook) -> JsonlRecorder {
        self.redactor = Some(hook);
        self
    }

    /// The record line for one request and its reply (without the newline), as
    /// [`JsonlRecorder`] writes it.
    pub fn line(&self, source: &Source, request: &Request, reply: &Reply) -> String {
        let kept = keep(self.payloads, request);
        let message = crate::jsonl::request_line(source, kept.as_ref().unwrap_or(request))
            .unwrap_or_else(|_| {
                // A body the gateway refused as bad JSON cannot be embedded: keep the rest.
                let stripped = keep(Payloads::None, request).expect("None always rewrites");
                crate::jsonl::request_line(source, &stripped).expect("an empty body serializes")
            });
        let rejection = match (&reply.outcome, reply.decision) {
            (Err(r), crate::Decision::Reject) => Some(r),
            _ => None,
        };
        let reason_kept = self.payloads == Payloads::All && self.redactor.is_none();
        let recorded = Recorded {
            unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            verdict: reply.decision.as_str(),
            code: rejection.map(|r| r.code.as_str()),
            reason: rejection.filter(|_| reason_kept).map(|r| r.reason.as_str()),
            hook: reply.hook_digest.as_deref(),
            payloads: match self.redactor {
                Some(_) => "redacted",
                None => self.payloads.as_str(),
            },
            monitored: MonitoredLine::all(&reply.monitored, false),
        };
        let recorded = serde_json::to_string(&recorded).expect("a record serializes");
        let inner = &message.get()[1..message.get().len() - 1];
        format!("{{\"id\":{},{inner},\"recorded\":{recorded}}}", reply.id)
    }
}

impl Recorder for JsonlRecorder {
    fn redactor(&self) -> Option<&Hook> {
        self.redactor.as_ref()
    }

    fn record(&self, source: &Source, request: &Request, reply: &Reply) {
        let mut line = self.line(source, request, reply);
        line.push('\n');
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
            tracing::error!(id = reply.id, error = %e, "cannot write the record");
        }
    }
}

#[derive(Serialize)]
struct Recorded<'a> {
    unix_ms: u64,
    verdict: &'static str,
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    hook: Option<&'a str>,
    payloads: &'static str,
    monitored: Vec<MonitoredLine<'a>>,
}

/// `request` as `redactor` leaves it for the record (see [`Recorder::redactor`]).
pub(crate) async fn redacted(
    redactor: &Hook,
    id: u64,
    source: &Source,
    request: Request,
) -> Request {
    let (kind, name) = (request.kind, request.name.clone());
    let inspection = redactor
        .inspect(Message::from_request(id, source.clone(), request))
        .await;
    let message = inspection.message;
    let sent = Request {
        kind,
        name,
        headers: message.headers,
        body: message.body,
    };
    match inspection.verdict {
        Verdict::Pass => sent,
        Verdict::Replace(replacement) => Request {
            headers: replacement.headers.unwrap_or(sent.headers),
            body: replacement.body.unwrap_or(sent.body),
            ..sent
        },
        Verdict::Reject(rejection) => {
            tracing::warn!(id, code = %rejection.code, "the record's redactor refused the request: recorded without its payload");
            keep(Payloads::None, &sent).expect("None always rewrites")
        }
    }
}

/// The request as `payloads` keeps it, or `None` when it is kept whole.
fn keep(payloads: Payloads, request: &Request) -> Option<Request> {
    let (headers, body) = match payloads {
        Payloads::All => return None,
        Payloads::None => (
            Vec::new(),
            match (&request.body, request.kind) {
                (Body::Bytes(_), _) => Body::Bytes(Vec::new()),
                (Body::Json(_), Kind::Command) => Body::Json("{}".to_owned()),
                (Body::Json(_), _) => Body::Json("null".to_owned()),
            },
        ),
        Payloads::Names => (
            request
                .headers
                .iter()
                .map(|h| Header::new(h.name.clone(), ""))
                .collect(),
            match &request.body {
                Body::Bytes(_) => Body::Bytes(Vec::new()),
                Body::Json(text) => Body::Json(
                    serde_json::from_str::<serde_json::Value>(text)
                        .map(|v| names_only(v).to_string())
                        .unwrap_or_else(|_| "null".to_owned()),
                ),
            },
        ),
    };
    Some(Request {
        kind: request.kind,
        name: request.name.clone(),
        headers,
        body,
    })
}

/// Keeps keys and structure, drops every scalar value.
fn names_only(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, names_only(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(names_only).collect()),
        _ => Value::Null,
    }
}
