//! The message model: what a frontend sends, what a hook sees, what the core receives.
//!
//! A [`Request`] is the frontend's words (kind, name, headers, body). The gateway turns it into a
//! [`Message`] by adding the facts only it knows: an id and the [`Source`]. The same `Message`
//! travels through the hook and, sealed, to the core. Its wire form (inside an envelope) is a
//! small length-prefixed binary encoding, written and read only by this module.

use std::fmt;

/// What kind of IPC traffic a message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A command invoke (`invoke(name, args)`), answered by a command handler.
    Command,
    /// An event emitted by the frontend, delivered to listeners.
    Event,
    /// A chunk sent on a channel.
    Channel,
}

impl Kind {
    /// The lowercase name used in JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Command => "command",
            Kind::Event => "event",
            Kind::Channel => "channel",
        }
    }

    fn tag(self) -> u8 {
        match self {
            Kind::Command => 0,
            Kind::Event => 1,
            Kind::Channel => 2,
        }
    }

    fn from_tag(tag: u8) -> Option<Kind> {
        match tag {
            0 => Some(Kind::Command),
            1 => Some(Kind::Event),
            2 => Some(Kind::Channel),
            _ => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a message came from: set by the gateway from the connection, never by a hook.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Source {
    /// Label of the window that sent the message.
    pub window: String,
    /// Label of the webview inside that window.
    pub webview: String,
    /// Origin URL of the page, e.g. `tauri://localhost`.
    pub origin: String,
}

impl Source {
    /// A source with the given window and webview label and origin.
    pub fn new(
        window: impl Into<String>,
        webview: impl Into<String>,
        origin: impl Into<String>,
    ) -> Self {
        Source {
            window: window.into(),
            webview: webview.into(),
            origin: origin.into(),
        }
    }
}

/// One request header. Names keep the case the frontend sent; order is kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

impl Header {
    /// A header with this name and value.
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }
}

/// A message body: JSON text or raw bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Body {
    /// A JSON document as text. The gateway checks that it parses before a hook sees it.
    Json(String),
    /// Raw bytes, passed as they are.
    Bytes(Vec<u8>),
}

impl Body {
    /// The body's size in bytes.
    pub fn len(&self) -> usize {
        match self {
            Body::Json(text) => text.len(),
            Body::Bytes(bytes) => bytes.len(),
        }
    }

    /// Whether the body has no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A JSON body holding `value`, serialized.
    pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<Body, serde_json::Error> {
        serde_json::to_string(value).map(Body::Json)
    }

    fn tag(&self) -> u8 {
        match self {
            Body::Json(_) => 0,
            Body::Bytes(_) => 1,
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Json(text) => text.as_bytes(),
            Body::Bytes(bytes) => bytes,
        }
    }
}

impl fmt::Debug for Body {
    // Payloads are never printed in full: they may hold exactly what isolation protects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Json(text) => write!(f, "Json({} bytes)", text.len()),
            Body::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
        }
    }
}

/// What a frontend sends: everything in a message except what the gateway decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Command, event or channel.
    pub kind: Kind,
    /// The command, event or channel name.
    pub name: String,
    /// Request headers, in order.
    pub headers: Vec<Header>,
    /// The payload.
    pub body: Body,
}

impl Request {
    /// A command invoke with JSON args.
    pub fn command(name: impl Into<String>, args: &serde_json::Value) -> Self {
        Request::new(Kind::Command, name, Body::Json(args.to_string()))
    }

    /// An event with a JSON payload.
    pub fn event(name: impl Into<String>, payload: &serde_json::Value) -> Self {
        Request::new(Kind::Event, name, Body::Json(payload.to_string()))
    }

    /// A request of any kind, without headers.
    pub fn new(kind: Kind, name: impl Into<String>, body: Body) -> Self {
        Request {
            kind,
            name: name.into(),
            headers: Vec::new(),
            body,
        }
    }
}

/// A validated message: a [`Request`] plus the gateway's id and [`Source`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Gateway-assigned id, unique within one gateway's run.
    pub id: u64,
    /// Command, event or channel.
    pub kind: Kind,
    /// The command, event or channel name.
    pub name: String,
    /// Who sent it.
    pub source: Source,
    /// Request headers, in order.
    pub headers: Vec<Header>,
    /// The payload.
    pub body: Body,
}

impl Message {
    /// Joins a request with the gateway's id and source.
    pub fn from_request(id: u64, source: Source, request: Request) -> Self {
        Message {
            id,
            kind: request.kind,
            name: request.name,
            source,
            headers: request.headers,
            body: request.body,
        }
    }

    /// Bytes counted against the gateway's message size limit: name, headers and body.
    pub fn counted_len(&self) -> usize {
        counted_len(&self.name, &self.headers, &self.body)
    }

    /// Length of [`Message::encode_into`]'s output.
    pub(crate) fn encoded_len(&self) -> usize {
        self.fields_len() + self.body.len()
    }

    /// Length of the wire form without the body's bytes (kind, id, name, source, headers, the
    /// body's tag and length).
    fn fields_len(&self) -> usize {
        let strings = [
            &self.name,
            &self.source.window,
            &self.source.webview,
            &self.source.origin,
        ];
        1 + 8
            + strings.iter().map(|s| 4 + s.len()).sum::<usize>()
            + 4
            + self
                .headers
                .iter()
                .map(|h| 8 + h.name.len() + h.value.len())
                .sum::<usize>()
            + 1
            + 4
    }

    /// Appends the wire form: kind, id, name, source, headers, body; integers little-endian,
    /// strings and bytes prefixed by a `u32` length.
    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        self.encode_fields(out);
        out.extend_from_slice(self.body.as_bytes());
    }

    /// The wire form written into the body's own buffer, after `prefix` bytes of zeros and with
    /// `suffix` bytes of room to spare: a large body is moved within its allocation, never copied
    /// into a new one.
    pub(crate) fn encode_in_place(self, prefix: usize, suffix: usize) -> Vec<u8> {
        let mut head = Vec::with_capacity(prefix + self.fields_len());
        head.resize(prefix, 0);
        self.encode_fields(&mut head);
        let mut buf = match self.body {
            Body::Json(text) => text.into_bytes(),
            Body::Bytes(bytes) => bytes,
        };
        buf.reserve_exact(head.len() + suffix);
        buf.splice(..0, head);
        buf
    }

    /// Everything but the body's bytes: kind, id, name, source, headers, the body's tag and length.
    fn encode_fields(&self, out: &mut Vec<u8>) {
        out.push(self.kind.tag());
        out.extend_from_slice(&self.id.to_le_bytes());
        for s in [
            &self.name,
            &self.source.window,
            &self.source.webview,
            &self.source.origin,
        ] {
            put_bytes(out, s.as_bytes());
        }
        put_len(out, self.headers.len());
        for h in &self.headers {
            put_bytes(out, h.name.as_bytes());
            put_bytes(out, h.value.as_bytes());
        }
        out.push(self.body.tag());
        put_len(out, self.body.len());
    }

    /// Reads the wire form in `buf[range]`; any malformation is an error naming what was wrong.
    /// The body takes over `buf` itself (its bytes moved to the front), so a large body is not
    /// copied into a new allocation. Offsets in errors count from the start of `range`.
    pub(crate) fn decode_owned(
        mut buf: Vec<u8>,
        range: std::ops::Range<usize>,
    ) -> Result<Message, DecodeError> {
        let mut r = Reader {
            bytes: &buf[range.clone()],
            at: 0,
        };
        let kind_tag = r.u8()?;
        let kind = Kind::from_tag(kind_tag).ok_or(DecodeError::BadTag {
            what: "kind",
            tag: kind_tag,
        })?;
        let id = u64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes"));
        let name = r.string()?;
        let source = Source {
            window: r.string()?,
            webview: r.string()?,
            origin: r.string()?,
        };
        let count = r.length()?;
        // Each header takes at least 8 bytes: a count beyond what remains is a lie.
        if count > r.remaining() / 8 {
            return Err(DecodeError::Truncated { at: r.at });
        }
        let mut headers = Vec::with_capacity(count);
        for _ in 0..count {
            headers.push(Header {
                name: r.string()?,
                value: r.string()?,
            });
        }
        let body_tag = r.u8()?;
        if body_tag > 1 {
            return Err(DecodeError::BadTag {
                what: "body",
                tag: body_tag,
            });
        }
        let body_at = r.at;
        let body_len = r.bytes()?.len();
        if r.remaining() != 0 {
            return Err(DecodeError::TrailingBytes {
                count: r.remaining(),
            });
        }
        let start = range.start + r.at - body_len;
        buf.truncate(start + body_len);
        buf.drain(..start);
        let body = match body_tag {
            0 => Body::Json(
                String::from_utf8(buf).map_err(|_| DecodeError::NotUtf8 { at: body_at })?,
            ),
            _ => Body::Bytes(buf),
        };
        Ok(Message {
            id,
            kind,
            name,
            source,
            headers,
            body,
        })
    }
}

/// Bytes counted against the gateway's message size limit: name, headers and body.
pub(crate) fn counted_len(name: &str, headers: &[Header], body: &Body) -> usize {
    name.len()
        + headers
            .iter()
            .map(|h| h.name.len() + h.value.len())
            .sum::<usize>()
        + body.len()
}

/// Why a message's wire form could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes end before the field starting at this offset does.
    #[error("message truncated at byte {at}")]
    Truncated {
        /// Offset of the field that did not fit.
        at: usize,
    },
    /// A tag byte has no meaning.
    #[error("unknown {what} tag {tag}")]
    BadTag {
        /// Which field's tag.
        what: &'static str,
        /// The byte found.
        tag: u8,
    },
    /// A string field is not UTF-8.
    #[error("string at byte {at} is not UTF-8")]
    NotUtf8 {
        /// Offset of the string.
        at: usize,
    },
    /// Bytes remain after the body.
    #[error("{count} trailing bytes after the message")]
    TrailingBytes {
        /// How many.
        count: usize,
    },
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Messages are bounded far below 4 GiB by the gateway; a longer field cannot be sealed.
    let len = u32::try_from(len).expect("message field longer than 4 GiB");
    out.extend_from_slice(&len.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(DecodeError::Truncated { at: self.at });
        }
        let slice = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn length(&mut self) -> Result<usize, DecodeError> {
        let raw = self.take(4)?;
        Ok(u32::from_le_bytes(raw.try_into().expect("4 bytes")) as usize)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.length()?;
        self.take(len)
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let at = self.at;
        let raw = self.bytes()?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| DecodeError::NotUtf8 { at })
    }
}
