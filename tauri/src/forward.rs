//! The core side: what the gateway's core does with a message once it has opened its envelope.
//!
//! The core's router has one handler, [`dispatch`], for every message. It hands the opened
//! message — as the hooks left it — to Tauri's `WebviewWindow::on_message` with the app's invoke
//! key, which only this side holds, and waits for Tauri's answer. What it needs besides the
//! message are facts of the transport, not of the page's words: the app, the page's callback
//! ids and where to leave Tauri's answer. The protocol handler puts them in a task-local
//! [`Forward`] around its call to [`Gateway::handle`](airlock::Gateway::handle), which runs the
//! core in the same task; a message that arrives without one is refused.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use airlock::{Body, CoreError, Message, Response};
use tauri::http::{HeaderMap, HeaderName, HeaderValue, header::CONTENT_TYPE};
use tauri::ipc::{CallbackFn, InvokeBody, InvokeResponse};
use tauri::webview::InvokeRequest;
use tauri::{AppHandle, Manager as _, Runtime, Url};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What the core does with one opened message, set up by the protocol handler.
pub(crate) type Forward = Box<dyn FnOnce(Message) -> BoxFuture<Result<Response, CoreError>> + Send>;

/// Where the core leaves Tauri's answer for the protocol handler.
pub(crate) type Answer = Arc<Mutex<Option<InvokeResponse>>>;

tokio::task_local! {
    static FORWARD: RefCell<Option<Forward>>;
}

/// Runs `future` (the gateway's handling of one request) with `forward` as the core's next step.
pub(crate) async fn scope<F: Future>(forward: Forward, future: F) -> F::Output {
    FORWARD.scope(RefCell::new(Some(forward)), future).await
}

/// The core's only handler: the message goes to Tauri through the request's [`Forward`].
pub(crate) fn dispatch(message: Message) -> BoxFuture<Result<Response, CoreError>> {
    let forward = FORWARD
        .try_with(|slot| slot.borrow_mut().take())
        .ok()
        .flatten();
    match forward {
        Some(forward) => forward(message),
        None => {
            let name = message.name;
            Box::pin(async move {
                Err(CoreError::Handler {
                    name,
                    message: "no Tauri request is waiting for this message".to_owned(),
                })
            })
        }
    }
}

/// The step that hands a message to Tauri on behalf of the page's request with these callbacks,
/// leaving Tauri's answer in `answer`.
pub(crate) fn to_tauri<R: Runtime>(
    app: AppHandle<R>,
    callback: CallbackFn,
    error: CallbackFn,
    answer: Answer,
) -> Forward {
    Box::new(move |message| {
        Box::pin(async move {
            let name = message.name.clone();
            let failed = |problem: String| CoreError::Handler {
                name: name.clone(),
                message: problem,
            };
            let label = message.source.webview.clone();
            let webview = app.get_webview_window(&label).ok_or_else(|| {
                failed(format!(
                    "no webview window {label:?} (webviews that share a window are not supported)"
                ))
            })?;
            let request =
                invoke_request(message, callback, error, app.invoke_key()).map_err(&failed)?;
            let (sender, receiver) = tokio::sync::oneshot::channel();
            // Tauri's own protocol calls `on_message` on the main thread, where commands that are
            // not `async` then run: keep it so.
            app.run_on_main_thread(move || {
                webview.on_message(
                    request,
                    Box::new(
                        move |_: tauri::Webview<R>,
                              _: String,
                              response: InvokeResponse,
                              _: CallbackFn,
                              _: CallbackFn| {
                            let _ = sender.send(response);
                        },
                    ),
                )
            })
            .map_err(|e| failed(format!("cannot reach the main thread: {e}")))?;
            let response = receiver
                .await
                .map_err(|_| failed("Tauri dropped the request without answering".to_owned()))?;
            *answer.lock().unwrap_or_else(|e| e.into_inner()) = Some(response);
            Ok(Response::Delivered { receivers: 1 })
        })
    })
}

/// Tauri's request for an opened message: its name, headers and body as the hooks left them,
/// the page's origin as the URL Tauri's ACL judges, and the app's invoke key.
fn invoke_request(
    message: Message,
    callback: CallbackFn,
    error: CallbackFn,
    invoke_key: &str,
) -> Result<InvokeRequest, String> {
    let url = Url::parse(&message.source.origin)
        .map_err(|e| format!("origin {:?} is not a URL: {e}", message.source.origin))?;
    let mut headers = HeaderMap::with_capacity(message.headers.len() + 1);
    for header in &message.headers {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| format!("header name {:?} is not valid in HTTP", header.name))?;
        let value = HeaderValue::from_str(&header.value)
            .map_err(|_| format!("header {:?} has a value not valid in HTTP", header.name))?;
        headers.append(name, value);
    }
    let (body, content_type) = match message.body {
        Body::Json(text) => (
            InvokeBody::Json(
                serde_json::from_str(&text).map_err(|e| format!("body is not JSON: {e}"))?,
            ),
            "application/json",
        ),
        Body::Bytes(bytes) => (InvokeBody::Raw(bytes), "application/octet-stream"),
    };
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(InvokeRequest {
        cmd: message.name,
        callback,
        error,
        url,
        body,
        headers,
        invoke_key: invoke_key.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock::{Header, Kind, Source};

    fn message(body: Body, headers: Vec<Header>) -> Message {
        Message {
            id: 1,
            kind: Kind::Command,
            name: "plugin:fs|read_file".to_owned(),
            source: Source::new("main", "main", "tauri://localhost"),
            headers,
            body,
        }
    }

    #[test]
    fn an_opened_message_becomes_tauris_request_with_the_apps_key() {
        let headers = vec![Header::new("tauri-channel-id", "7")];
        let request = invoke_request(
            message(Body::Json(r#"{"path":"a"}"#.to_owned()), headers),
            CallbackFn(1),
            CallbackFn(2),
            "key",
        )
        .unwrap();
        assert_eq!(request.cmd, "plugin:fs|read_file");
        assert_eq!(request.invoke_key, "key");
        assert_eq!(request.url.as_str(), "tauri://localhost");
        assert_eq!(request.headers["tauri-channel-id"], "7");
        assert_eq!(request.headers[CONTENT_TYPE], "application/json");
        assert!(matches!(request.body, InvokeBody::Json(v) if v["path"] == "a"));
        let raw = invoke_request(
            message(Body::Bytes(vec![1, 2]), Vec::new()),
            CallbackFn(1),
            CallbackFn(2),
            "key",
        )
        .unwrap();
        assert!(matches!(raw.body, InvokeBody::Raw(b) if b == [1, 2]));
        assert_eq!(raw.headers[CONTENT_TYPE], "application/octet-stream");
    }

    #[test]
    fn a_header_http_cannot_carry_is_refused_naming_it() {
        let headers = vec![Header::new("x bad", "v")];
        let refused = invoke_request(
            message(Body::Json("{}".to_owned()), headers),
            CallbackFn(1),
            CallbackFn(2),
            "key",
        )
        .unwrap_err();
        assert!(refused.contains("x bad"), "{refused}");
    }

    #[test]
    fn a_message_without_a_waiting_request_is_refused() {
        let refused = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(dispatch(message(Body::Json("{}".to_owned()), Vec::new())))
            .unwrap_err();
        assert!(
            refused.to_string().contains("no Tauri request"),
            "{refused}"
        );
    }
}
