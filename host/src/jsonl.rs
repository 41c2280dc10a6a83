//! The JSON Lines form of messages, read by `airlock inspect` and written back as `delivered`:
//!
//! ```json
//! {"kind":"command","name":"fs_read","source":{"window":"main","webview":"main","origin":"tauri://localhost"},"headers":{},"payload":{"path":"notes.txt"}}
//! ```
//!
//! `"bytes":"<base64>"` stands instead of `"payload"` for a raw body. `source` and each of its
//! fields default to `main`, `main`, `tauri://localhost`; `headers` to none. A missing payload is
//! `{}` for a command (as Tauri sends) and `null` otherwise. The payload's JSON text is kept as it
//! was written, so a message that passes is delivered byte for byte. An `id` field is allowed
//! and ignored (ids are the gateway's), and so are `recorded` (what a recording adds, see
//! [`crate::JsonlRecorder`]) and `about` (a note, such as the source of a seed in the attack
//! corpus); any other unknown field is an error.
//!
//! ```
//! use airlock::{Kind, jsonl};
//! let (source, request) = jsonl::parse_line(r#"{"kind":"event","name":"saved","payload":[1, 2]}"#)?;
//! assert_eq!((request.kind, source.window.as_str()), (Kind::Event, "main"));
//! # Ok::<(), String>(())
//! ```

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::message::{Body, Header, Kind, Message, Request, Source};
use crate::monitor::Monitored;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn {
    kind: Kind,
    name: String,
    #[serde(default)]
    source: SourceIn,
    #[serde(default, deserialize_with = "ordered_headers")]
    headers: Vec<Header>,
    #[serde(default, deserialize_with = "present")]
    payload: Option<Box<RawValue>>,
    #[serde(default)]
    bytes: Option<String>,
    #[serde(default, rename = "id")]
    _id: Option<de::IgnoredAny>,
    #[serde(default, rename = "recorded")]
    _recorded: Option<de::IgnoredAny>,
    #[serde(default, rename = "about")]
    _about: Option<de::IgnoredAny>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceIn {
    #[serde(default = "main")]
    window: String,
    #[serde(default = "main")]
    webview: String,
    #[serde(default = "tauri_origin")]
    origin: String,
}

impl Default for SourceIn {
    fn default() -> Self {
        SourceIn {
            window: main(),
            webview: main(),
            origin: tauri_origin(),
        }
    }
}

fn main() -> String {
    "main".to_owned()
}

fn tauri_origin() -> String {
    "tauri://localhost".to_owned()
}

/// `Some` even for an explicit `null`, so that `"payload": null` is kept as a JSON null body.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

fn ordered_headers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Header>, D::Error> {
    struct Headers;
    impl<'de> Visitor<'de> for Headers {
        type Value = Vec<Header>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of header names to string values")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut headers = Vec::new();
            while let Some((name, value)) = map.next_entry::<String, String>()? {
                headers.push(Header { name, value });
            }
            Ok(headers)
        }
    }
    d.deserialize_map(Headers)
}

/// Reads one line into the source it claims and the request. The error names the problem
/// (serde's message, with its column).
pub fn parse_line(line: &str) -> Result<(Source, Request), String> {
    let line: LineIn = serde_json::from_str(line).map_err(|e| {
        // serde_json says "at line 1 column N"; a line is one line, so keep the column.
        let text = e.to_string();
        let what = text.split(" at line ").next().unwrap_or(&text);
        format!("{what} at column {}", e.column())
    })?;
    let body = match (line.payload, line.bytes) {
        (Some(_), Some(_)) => {
            return Err("a message has either `payload` or `bytes`, not both".to_owned());
        }
        (Some(payload), None) => Body::Json(String::from(Box::<str>::from(payload))),
        (None, Some(encoded)) => Body::Bytes(
            BASE64
                .decode(encoded.as_bytes())
                .map_err(|e| format!("`bytes` is not valid base64: {e}"))?,
        ),
        (None, None) if line.kind == Kind::Command => Body::Json("{}".to_owned()),
        (None, None) => Body::Json("null".to_owned()),
    };
    let source = Source {
        window: line.source.window,
        webview: line.source.webview,
        origin: line.source.origin,
    };
    let request = Request {
        kind: line.kind,
        name: line.name,
        headers: line.headers,
        body,
    };
    Ok((source, request))
}

/// Writes a delivered message back in the line shape (without the id), as JSON.
pub fn message_line(message: &Message) -> Result<Box<RawValue>, serde_json::Error> {
    let request = RequestRef {
        kind: message.kind,
        name: &message.name,
        headers: &message.headers,
        body: &message.body,
    };
    line(&message.source, request)
}

/// Writes a request and its source as one line that [`parse_line`] reads back.
pub fn request_line(
    source: &Source,
    request: &Request,
) -> Result<Box<RawValue>, serde_json::Error> {
    let request = RequestRef {
        kind: request.kind,
        name: &request.name,
        headers: &request.headers,
        body: &request.body,
    };
    line(source, request)
}

struct RequestRef<'a> {
    kind: Kind,
    name: &'a str,
    headers: &'a [Header],
    body: &'a Body,
}

fn line(source: &Source, request: RequestRef<'_>) -> Result<Box<RawValue>, serde_json::Error> {
    let payload = match request.body {
        Body::Json(text) => Some(RawValue::from_string(text.clone())?),
        Body::Bytes(_) => None,
    };
    let bytes = match request.body {
        Body::Bytes(bytes) => Some(BASE64.encode(bytes)),
        Body::Json(_) => None,
    };
    serde_json::value::to_raw_value(&LineOut {
        kind: request.kind,
        name: request.name,
        source,
        headers: HeadersOut(request.headers),
        payload: payload.as_deref(),
        bytes,
    })
}

#[derive(Serialize)]
struct LineOut<'a> {
    kind: Kind,
    name: &'a str,
    source: &'a Source,
    headers: HeadersOut<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bytes: Option<String>,
}

struct HeadersOut<'a>(&'a [Header]);

impl Serialize for HeadersOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for h in self.0 {
            map.serialize_entry(&h.name, &h.value)?;
        }
        map.end()
    }
}

/// What a hook in monitor mode would have done to a message, as a line of `airlock inspect` and a
/// record of [`crate::JsonlRecorder`] write it (in their `monitored` list).
#[derive(Debug, Serialize)]
#[non_exhaustive]
pub struct MonitoredLine<'a> {
    /// The monitored hook's SHA-256.
    pub hook: &'a str,
    /// `pass`, `replace` or `reject`.
    pub verdict: &'static str,
    /// The rejection's code; `null` unless rejected.
    pub code: Option<&'a str>,
    /// The rejection's reason (`null` unless rejected), when reasons are written at all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Option<&'a str>>,
}

impl<'a> MonitoredLine<'a> {
    /// A line for each of `monitored` (a [`Reply::monitored`](crate::Reply::monitored)), in
    /// order; with `reasons`, each names its rejection's reason.
    pub fn all(monitored: &'a [Monitored], reasons: bool) -> Vec<MonitoredLine<'a>> {
        monitored
            .iter()
            .map(|m| MonitoredLine {
                hook: &m.hook_digest,
                verdict: m.decision.as_str(),
                code: m.rejection.as_ref().map(|r| r.code.as_str()),
                reason: reasons.then(|| m.rejection.as_ref().map(|r| r.reason.as_str())),
            })
            .collect()
    }
}
