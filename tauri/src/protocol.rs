//! The `ipc` protocol: the page's requests in, Tauri's wire format out.
//!
//! Requests are read the way Tauri's own handler (`tauri/src/ipc/protocol.rs`) reads them —
//! command name from the percent-decoded path, callbacks from `Tauri-Callback`/`Tauri-Error`,
//! body by `Content-Type` — with two differences: a `Tauri-Invoke-Key` header is refused, and the
//! hooks run before anything reaches Tauri. Answers are Tauri's: 200 with `Tauri-Response:
//! ok|error`, a JSON or octet-stream body, `Access-Control-Allow-Origin: *` and
//! `Access-Control-Expose-Headers: Tauri-Response`.

use std::sync::{Arc, LazyLock, Mutex};

use airlock::{Body, Gateway, Header, Kind, Rejection, Request, Source};
use tauri::http::{self, Method, StatusCode, header};
use tauri::ipc::{CallbackFn, InvokeResponse, InvokeResponseBody};
use tauri::{Runtime, UriSchemeContext, UriSchemeResponder};

use crate::code;
use crate::forward;

/// Airlock's invoke script, with Tauri's payload encoder (`process-ipc-message-fn.js` of the
/// pinned Tauri, copied as it is) and the OS name filled in.
pub(crate) static INVOKE_SCRIPT: LazyLock<String> = LazyLock::new(|| {
    include_str!("invoke.js")
        .replace(
            "__AIRLOCK_PROCESS_IPC_MESSAGE_FN__",
            include_str!("process-ipc-message-fn.js"),
        )
        .replace(
            "__AIRLOCK_OS_NAME__",
            &serde_json::to_string(std::env::consts::OS).expect("a string serializes"),
        )
});

/// Request headers the hooks do not see: what the webview and Tauri's invoke protocol add to
/// every request (the origin is in the message's source; the callbacks and content type are
/// transport), compared ignoring case. Every `Sec-*` header is dropped too. The page's own
/// headers (`invoke(cmd, args, { headers })`) and Tauri's `Tauri-Channel-Id` are kept.
pub const TRANSPORT_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "cache-control",
    "connection",
    "content-length",
    "content-type",
    "host",
    "origin",
    "pragma",
    "referer",
    "tauri-callback",
    "tauri-error",
    "user-agent",
];

const INVOKE_KEY_HEADER: &str = "tauri-invoke-key";

/// The handler of the `ipc` protocol: answers preflights at once, runs everything else on the
/// async runtime (never on the webview's main thread).
pub(crate) fn handle<R: Runtime>(
    gateway: &Arc<Gateway>,
    context: UriSchemeContext<'_, R>,
    request: http::Request<Vec<u8>>,
    responder: UriSchemeResponder,
) {
    if request.method() == Method::OPTIONS {
        let mut preflight = cors(http::Response::new(Vec::new()));
        preflight.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            http::HeaderValue::from_static("*"),
        );
        responder.respond(preflight);
        return;
    }
    let app = context.app_handle().clone();
    let label = context.webview_label().to_owned();
    let gateway = gateway.clone();
    tauri::async_runtime::spawn(async move {
        let answer = match Invoke::parse(request) {
            Ok(invoke) => invoke.run(&gateway, app, label).await,
            Err(rejection) => {
                tracing::warn!(webview = %label, code = %rejection.code, reason = %rejection.reason, "IPC request refused");
                rejected(&rejection, None)
            }
        };
        responder.respond(answer);
    });
}

/// One page request, read.
#[derive(Debug)]
struct Invoke {
    request: Request,
    origin: String,
    callback: CallbackFn,
    error: CallbackFn,
}

impl Invoke {
    /// Reads a request as Tauri's invoke script sends it; anything else is refused.
    fn parse(request: http::Request<Vec<u8>>) -> Result<Invoke, Rejection> {
        let bad = |reason: String| Rejection::new(code::BAD_REQUEST, reason);
        let (parts, body) = request.into_parts();
        if parts.method != Method::POST {
            return Err(bad(format!(
                "method {} is not allowed; invokes are POST",
                parts.method
            )));
        }
        if parts.headers.contains_key(INVOKE_KEY_HEADER) {
            tracing::error!(
                "an IPC request carried Tauri-Invoke-Key: something gave the page Tauri's key"
            );
            return Err(Rejection::new(
                code::INVOKE_KEY,
                "a request carrying Tauri-Invoke-Key is refused: the page must not know Tauri's key",
            ));
        }
        let path = parts.uri.path();
        let raw_name = path.strip_prefix('/').unwrap_or(path);
        let name = percent_encoding::percent_decode_str(raw_name)
            .decode_utf8()
            .map_err(|_| bad(format!("command {raw_name:?} is not UTF-8 once decoded")))?
            .into_owned();
        let text = |name: &str| header_text(&parts.headers, name);
        let origin = text("origin")?.to_owned();
        let callback_id = |name: &str| -> Result<CallbackFn, Rejection> {
            let value = text(name)?;
            value.parse().map(CallbackFn).map_err(|_| {
                bad(format!(
                    "{name} header {value:?} is not a 32-bit unsigned number"
                ))
            })
        };
        let (callback, error) = (callback_id("tauri-callback")?, callback_id("tauri-error")?);
        let content_type = match parts.headers.get(header::CONTENT_TYPE) {
            None => "application/octet-stream".to_owned(),
            Some(value) => {
                let value = value
                    .to_str()
                    .map_err(|_| bad("Content-Type header is not visible ASCII".to_owned()))?;
                value
                    .split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            }
        };
        let body = match content_type.as_str() {
            "application/json" if body.is_empty() => Body::Json("{}".to_owned()),
            "application/json" => Body::Json(
                String::from_utf8(body).map_err(|_| bad("JSON body is not UTF-8".to_owned()))?,
            ),
            "application/octet-stream" => Body::Bytes(body),
            other => return Err(bad(format!("content type {other:?} is not supported"))),
        };
        let mut headers = Vec::new();
        for (header_name, value) in &parts.headers {
            let lower = header_name.as_str();
            if TRANSPORT_HEADERS.contains(&lower) || lower.starts_with("sec-") {
                continue;
            }
            let value = value
                .to_str()
                .map_err(|_| bad(format!("header {lower:?} is not visible ASCII")))?;
            headers.push(Header::new(lower, value));
        }
        let kind = match name.as_str() {
            "plugin:event|emit" | "plugin:event|emit_to" => Kind::Event,
            _ => Kind::Command,
        };
        Ok(Invoke {
            request: Request {
                kind,
                name,
                headers,
                body,
            },
            origin,
            callback,
            error,
        })
    }

    /// Through the gateway (hooks, seal, core → Tauri), then Tauri's answer or the rejection.
    async fn run<R: Runtime>(
        self,
        gateway: &Gateway,
        app: tauri::AppHandle<R>,
        label: String,
    ) -> http::Response<Vec<u8>> {
        let answer = Arc::new(Mutex::new(None));
        let forward = forward::to_tauri(app, self.callback, self.error, answer.clone());
        // A webview window's label is its window's label too.
        let source = Source::new(label.clone(), label, self.origin);
        let reply = forward::scope(forward, gateway.handle(source, self.request)).await;
        if let Err(rejection) = &reply.outcome {
            return rejected(rejection, reply.hook_digest.as_deref());
        }
        match answer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            Some(response) => tauri_response(response),
            None => rejected(
                &Rejection::new(
                    airlock::code::HANDLER_ERROR,
                    "the core passed the message but Tauri gave no answer",
                ),
                reply.hook_digest.as_deref(),
            ),
        }
    }
}

/// A header's value as text; a missing or non-ASCII one is refused, naming it.
fn header_text<'a>(headers: &'a http::HeaderMap, name: &str) -> Result<&'a str, Rejection> {
    let bad = |reason: String| Rejection::new(code::BAD_REQUEST, reason);
    headers
        .get(name)
        .ok_or_else(|| bad(format!("missing {name} header")))?
        .to_str()
        .map_err(|_| bad(format!("{name} header is not visible ASCII")))
}

/// Tauri's answer, in Tauri's own format.
fn tauri_response(response: InvokeResponse) -> http::Response<Vec<u8>> {
    let (ok, body, mime) = match response {
        InvokeResponse::Ok(InvokeResponseBody::Json(text)) => {
            (true, text.into_bytes(), "application/json")
        }
        InvokeResponse::Ok(InvokeResponseBody::Raw(bytes)) => {
            (true, bytes, "application/octet-stream")
        }
        InvokeResponse::Err(error) => (
            false,
            serde_json::to_vec(&error.0).expect("a JSON value serializes"),
            "application/json",
        ),
    };
    answer(ok, body, mime)
}

/// A rejection, as the page's promise receives it: `{code, reason, hook}`.
fn rejected(rejection: &Rejection, hook: Option<&str>) -> http::Response<Vec<u8>> {
    let body = serde_json::json!({
        "code": rejection.code,
        "reason": rejection.reason,
        "hook": hook,
    });
    answer(false, body.to_string().into_bytes(), "application/json")
}

fn answer(ok: bool, body: Vec<u8>, mime: &'static str) -> http::Response<Vec<u8>> {
    let mut response = cors(http::Response::new(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        "Tauri-Response",
        http::HeaderValue::from_static(if ok { "ok" } else { "error" }),
    );
    headers.insert(header::CONTENT_TYPE, http::HeaderValue::from_static(mime));
    response
}

fn cors(mut response: http::Response<Vec<u8>>) -> http::Response<Vec<u8>> {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        http::HeaderValue::from_static("*"),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        http::HeaderValue::from_static("Tauri-Response"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post(path: &str, content_type: &str) -> http::request::Builder {
        http::Request::builder()
            .method(Method::POST)
            .uri(format!("ipc://localhost/{path}"))
            .header("Origin", "tauri://localhost")
            .header("Tauri-Callback", "11")
            .header("Tauri-Error", "12")
            .header("Content-Type", content_type)
    }

    fn parse(builder: http::request::Builder, body: &[u8]) -> Result<Invoke, Rejection> {
        Invoke::parse(builder.body(body.to_vec()).unwrap())
    }

    #[test]
    fn a_plugin_command_is_read_with_its_decoded_name_callbacks_and_origin() {
        let invoke = parse(
            post("plugin%3Afs%7Cread_file", "application/json"),
            br#"{"path":"a"}"#,
        )
        .unwrap();
        assert_eq!(invoke.request.name, "plugin:fs|read_file");
        assert_eq!(invoke.request.kind, Kind::Command);
        assert_eq!(
            invoke.request.body,
            Body::Json(r#"{"path":"a"}"#.to_owned())
        );
        assert_eq!(invoke.origin, "tauri://localhost");
        assert_eq!((invoke.callback.0, invoke.error.0), (11, 12));
    }

    #[test]
    fn an_emit_is_an_event_and_an_empty_json_body_is_an_empty_object() {
        let invoke = parse(post("plugin%3Aevent%7Cemit", "application/json"), b"").unwrap();
        assert_eq!(invoke.request.kind, Kind::Event);
        assert_eq!(invoke.request.body, Body::Json("{}".to_owned()));
    }

    #[test]
    fn an_octet_stream_body_is_kept_as_bytes() {
        let invoke = parse(post("upload", "application/octet-stream"), &[0, 255]).unwrap();
        assert_eq!(invoke.request.body, Body::Bytes(vec![0, 255]));
    }

    #[test]
    fn transport_headers_are_dropped_and_the_pages_own_are_kept() {
        let builder = post("cmd", "application/json; charset=utf-8")
            .header("User-Agent", "webkit")
            .header("Sec-Fetch-Mode", "cors")
            .header("Referer", "tauri://localhost/")
            .header("Tauri-Channel-Id", "3")
            .header("X-App", "v");
        let invoke = parse(builder, b"{}").unwrap();
        let names: Vec<&str> = invoke
            .request
            .headers
            .iter()
            .map(|h| h.name.as_str())
            .collect();
        assert_eq!(names, ["tauri-channel-id", "x-app"]);
    }

    #[test]
    fn a_request_carrying_tauris_invoke_key_is_refused() {
        let builder = post("cmd", "application/json").header("Tauri-Invoke-Key", "guess");
        let refused = parse(builder, b"{}").unwrap_err();
        assert_eq!(refused.code, code::INVOKE_KEY);
    }

    #[test]
    fn requests_tauris_script_would_not_make_are_refused_naming_the_problem() {
        let cases = [
            (post("cmd", "text/html"), "text/html"),
            (
                http::Request::builder()
                    .method(Method::POST)
                    .uri("ipc://localhost/cmd")
                    .header("Origin", "tauri://localhost")
                    .header("Tauri-Callback", "x")
                    .header("Tauri-Error", "2"),
                "tauri-callback",
            ),
            (
                http::Request::builder()
                    .method(Method::POST)
                    .uri("ipc://localhost/cmd")
                    .header("Tauri-Callback", "1")
                    .header("Tauri-Error", "2"),
                "origin",
            ),
            (post("%FF", "application/json"), "UTF-8"),
        ];
        for (builder, named) in cases {
            let refused = parse(builder, b"{}").unwrap_err();
            assert_eq!(refused.code, code::BAD_REQUEST);
            assert!(refused.reason.contains(named), "{}", refused.reason);
        }
        let get = http::Request::builder()
            .method(Method::GET)
            .uri("ipc://localhost/cmd")
            .body(Vec::new())
            .unwrap();
        assert!(Invoke::parse(get).unwrap_err().reason.contains("GET"));
    }

    #[test]
    fn a_rejection_answers_in_tauris_error_format_with_code_reason_and_hook() {
        let response = rejected(&Rejection::new("path-escape", "no"), Some("abc"));
        assert_eq!(response.headers()["Tauri-Response"], "error");
        assert_eq!(response.headers()["Access-Control-Allow-Origin"], "*");
        assert_eq!(
            response.headers()["Access-Control-Expose-Headers"],
            "Tauri-Response"
        );
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"code": "path-escape", "reason": "no", "hook": "abc"})
        );
    }

    #[test]
    fn a_commands_own_error_reaches_the_page_as_tauri_sends_it() {
        let response = tauri_response(InvokeResponse::Err(tauri::ipc::InvokeError(
            serde_json::json!("disk full"),
        )));
        assert_eq!(response.headers()["Tauri-Response"], "error");
        assert_eq!(response.body(), br#""disk full""#);
        let ok = tauri_response(InvokeResponse::Ok(InvokeResponseBody::Raw(vec![1])));
        assert_eq!(ok.headers()["Tauri-Response"], "ok");
        assert_eq!(ok.headers()["Content-Type"], "application/octet-stream");
    }

    #[test]
    fn the_invoke_script_never_holds_tauris_key_or_its_placeholder() {
        assert!(!INVOKE_SCRIPT.contains("__INVOKE_KEY__"));
        assert!(!INVOKE_SCRIPT.contains("Tauri-Invoke-Key"));
        assert!(!INVOKE_SCRIPT.contains("postMessage("));
        assert!(!INVOKE_SCRIPT.contains("__AIRLOCK_"));
        assert!(INVOKE_SCRIPT.contains("application/octet-stream"));
    }
}
