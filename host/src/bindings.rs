//! Host bindings generated from `wit/` by wasmtime's `bindgen!`, and the conversions between
//! their types and the crate's own. Kept alone so that `missing_docs` is relaxed here and
//! nowhere else.
#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "wit",
    world: "stateful-hook",
    exports: { default: async },
});

/// The world Airlock links: `hook` and the optional `state` import. A hook that imports only the
/// log (or nothing) instantiates against it unchanged.
pub(crate) type Hook = StatefulHook;
/// See [`Hook`].
pub(crate) type HookPre<T> = StatefulHookPre<T>;

use self::airlock::hook::types as wit;

use crate::message::{Body, Header, Kind, Message, Source};
use crate::verdict::{Rejection, Replacement, Verdict, check_hook_code, clip_reason, code};

pub(crate) fn to_wit(message: Message) -> wit::Message {
    wit::Message {
        id: message.id,
        kind: match message.kind {
            Kind::Command => wit::Kind::Command,
            Kind::Event => wit::Kind::Event,
            Kind::Channel => wit::Kind::Channel,
        },
        name: message.name,
        source: wit::Source {
            window: message.source.window,
            webview: message.source.webview,
            origin: message.source.origin,
        },
        headers: message.headers.into_iter().map(to_wit_header).collect(),
        body: to_wit_body(message.body),
    }
}

pub(crate) fn from_wit(message: wit::Message) -> Message {
    Message {
        id: message.id,
        kind: match message.kind {
            wit::Kind::Command => Kind::Command,
            wit::Kind::Event => Kind::Event,
            wit::Kind::Channel => Kind::Channel,
        },
        name: message.name,
        source: Source {
            window: message.source.window,
            webview: message.source.webview,
            origin: message.source.origin,
        },
        headers: message.headers.into_iter().map(from_wit_header).collect(),
        body: from_wit_body(message.body),
    }
}

fn to_wit_header(header: Header) -> wit::Header {
    wit::Header {
        name: header.name,
        value: header.value,
    }
}

fn from_wit_header(header: wit::Header) -> Header {
    Header {
        name: header.name,
        value: header.value,
    }
}

fn to_wit_body(body: Body) -> wit::Body {
    match body {
        Body::Json(text) => wit::Body::Json(text),
        Body::Bytes(bytes) => wit::Body::Bytes(bytes),
    }
}

fn from_wit_body(body: wit::Body) -> Body {
    match body {
        wit::Body::Json(text) => Body::Json(text),
        wit::Body::Bytes(bytes) => Body::Bytes(bytes),
    }
}

/// The hook's verdict, or a `hook-output` fault for a malformed rejection code.
pub(crate) fn from_wit_verdict(verdict: wit::Verdict) -> Result<Verdict, Rejection> {
    Ok(match verdict {
        wit::Verdict::Pass => Verdict::Pass,
        wit::Verdict::Replace(r) => Verdict::Replace(Replacement {
            name: r.name,
            headers: r
                .headers
                .map(|headers| headers.into_iter().map(from_wit_header).collect()),
            body: r.body.map(from_wit_body),
        }),
        wit::Verdict::Reject(r) => match check_hook_code(&r.code) {
            Ok(()) => Verdict::Reject(Rejection::new(r.code, clip_reason(r.reason))),
            Err(problem) => return Err(Rejection::new(code::HOOK_OUTPUT, problem)),
        },
    })
}
