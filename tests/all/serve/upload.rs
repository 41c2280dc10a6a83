//! Large request bodies sent beside the WebSocket (`POST /airlock/upload`): a frame announces
//! the upload and keeps the request's place in the window's order.

use super::*;

/// `POST /airlock/upload?{query}` with `body` from `origin`: the status and the body answered.
async fn post_upload(addr: SocketAddr, query: &str, origin: &str, body: &[u8]) -> (u16, String) {
    post_upload_declaring(addr, query, origin, body, body.len()).await
}

/// [`post_upload`] whose head declares `declared` bytes of body.
async fn post_upload_declaring(
    addr: SocketAddr,
    query: &str,
    origin: &str,
    body: &[u8],
    declared: usize,
) -> (u16, String) {
    let (status, _, answer) = post_upload_answered(addr, query, origin, body, declared).await;
    (status, answer)
}

/// [`post_upload_declaring`], with the head of the answer (lowercase) too.
async fn post_upload_answered(
    addr: SocketAddr,
    query: &str,
    origin: &str,
    body: &[u8],
    declared: usize,
) -> (u16, String, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /airlock/upload?{query} HTTP/1.1\r\nHost: {addr}\r\nOrigin: {origin}\r\n\
         Content-Length: {declared}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    // A refused upload may be answered before its body is all sent.
    let _ = tcp.write_all(body).await;
    let mut response = Vec::new();
    let _ = tcp.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, answer) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_lowercase(), answer.to_owned())
}

/// A window labelled `label` and its ticket's token.
async fn window(server: &Server, label: &str) -> (Ws, String) {
    let ticket = server.windows.issue(label, label).unwrap();
    let ws = connect_ticket(server, &ticket).await;
    (ws, ticket.token().to_owned())
}

fn upload_query(token: &str, id: u64) -> String {
    format!("ticket={token}&id={id}")
}

fn tick(n: u64) -> Value {
    json!({"id": n, "kind": "event", "name": "tick", "payload": {"n": n}})
}

#[tokio::test]
async fn an_uploaded_event_reaches_the_core_in_the_place_its_frame_took_in_the_order() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let router = counting_router(seen.clone(), Arc::new(AtomicUsize::new(0)));
    let server = start(pass_all(), router, WebOptions::default()).await;
    let (mut ws, token) = window(&server, "main").await;
    send_json(&mut ws, tick(1)).await;
    send_json(
        &mut ws,
        json!({"id": 2, "kind": "event", "name": "tick", "upload": true}),
    )
    .await;
    send_json(&mut ws, tick(3)).await;
    // The upload comes last, after the frame behind it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(*seen.lock().unwrap(), vec![1], "event 3 waits for upload 2");
    let body = tick(2).to_string();
    let origin = own_origin(server.addr);
    let (status, answer) = post_upload(
        server.addr,
        &upload_query(&token, 2),
        &origin,
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 204, "{answer}");
    for id in [2, 3] {
        assert_eq!(reply_to(&mut ws, id).await.0["ok"], true);
    }
    assert_eq!(*seen.lock().unwrap(), vec![1, 2, 3]);
}

#[tokio::test]
async fn an_uploaded_command_is_answered_with_what_the_core_received_and_bytes_upload_too() {
    let server = start(pass_all(), echo_router(), WebOptions::default()).await;
    let (mut ws, token) = window(&server, "editor").await;
    let origin = own_origin(server.addr);
    // The upload may come before its frame.
    let frame = json!({"id": 7, "kind": "command", "name": "fs_write", "headers": [["x-a", "1"]],
                       "payload": {"data": "x".repeat(100_000)}});
    let (status, _) = post_upload(
        server.addr,
        &upload_query(&token, 7),
        &origin,
        frame.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 204);
    send_json(
        &mut ws,
        json!({"id": 7, "kind": "command", "name": "fs_write", "upload": true}),
    )
    .await;
    let (reply, _) = reply_to(&mut ws, 7).await;
    assert_eq!(reply["ok"], true, "{reply}");
    let delivered = &reply["payload"];
    assert_eq!(delivered["name"], "fs_write", "{delivered}");
    assert_eq!(delivered["source"]["window"], "editor", "{delivered}");
    assert_eq!(delivered["source"]["origin"], origin, "{delivered}");
    assert!(
        delivered["headers"].to_string().contains("x-a"),
        "{delivered}"
    );
    let data = delivered["payload"]["data"].as_str().map(str::len);
    assert_eq!(data, Some(100_000));

    let Message::Binary(bytes) = binary_frame(
        json!({"id": 8, "kind": "event", "name": "blob"}),
        &[7u8; 5000],
    ) else {
        unreachable!()
    };
    send_json(
        &mut ws,
        json!({"id": 8, "kind": "event", "name": "blob", "upload": true}),
    )
    .await;
    let (status, _) = post_upload(server.addr, &upload_query(&token, 8), &origin, &bytes).await;
    assert_eq!(status, 204);
    assert_eq!(reply_to(&mut ws, 8).await.0["ok"], true);
}

/// Uploads event `id` whose frame is exactly `size` bytes; the status and the request's reply.
async fn upload_event_of(server: &Server, size: usize) -> (u16, Value) {
    let (mut ws, token) = window(server, "main").await;
    let head = r#"{"id":1,"kind":"event","name":"size","payload":""#;
    let frame = format!("{head}{}\"}}", "a".repeat(size - head.len() - 2));
    assert_eq!(frame.len(), size);
    send_json(
        &mut ws,
        json!({"id": 1, "kind": "event", "name": "size", "upload": true}),
    )
    .await;
    let origin = own_origin(server.addr);
    let (status, _) = post_upload(
        server.addr,
        &upload_query(&token, 1),
        &origin,
        frame.as_bytes(),
    )
    .await;
    (status, reply_to(&mut ws, 1).await.0)
}

#[tokio::test]
async fn an_upload_as_large_as_a_frame_may_be_is_taken() {
    let limit = airlock::web::max_frame_bytes(1000);
    let server = start_limited(1000, WebOptions::default()).await;
    let (status, reply) = upload_event_of(&server, limit).await;
    assert_eq!(status, 204);
    // Taken by the upload; the gateway's own message limit then refuses the message itself.
    assert_eq!(reply["code"], "too-large", "{reply}");
    assert!(
        !reply["reason"].as_str().unwrap().contains("upload"),
        "{reply}"
    );
}

#[tokio::test]
async fn an_upload_past_the_frame_limit_is_refused_with_413_and_its_request_with_too_large() {
    let limit = airlock::web::max_frame_bytes(1000);
    let server = start_limited(1000, WebOptions::default()).await;
    let (status, reply) = upload_event_of(&server, limit + 1).await;
    assert_eq!(status, 413);
    assert_eq!(reply["code"], "too-large", "{reply}");
    let reason = reply["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("{} bytes", limit + 1)), "{reason}");
}

#[tokio::test]
async fn an_upload_that_arrives_in_time_is_delivered() {
    let options = WebOptions::default().with_upload_timeout(Duration::from_secs(5));
    let server = start_limited(1 << 20, options).await;
    let (status, reply) = upload_event_of(&server, 200).await;
    assert_eq!((status, &reply["ok"]), (204, &json!(true)), "{reply}");
}

#[tokio::test]
async fn an_announced_upload_that_never_arrives_is_refused_with_upload_missing_and_the_window_goes_on()
 {
    let options = WebOptions::default().with_upload_timeout(Duration::from_millis(300));
    let server = start_opts(options, echo_router()).await;
    let mut ws = connect(&server, "main").await;
    send_json(
        &mut ws,
        json!({"id": 1, "kind": "event", "name": "big", "upload": true}),
    )
    .await;
    send_json(&mut ws, json!({"id": 2, "kind": "event", "name": "after"})).await;
    let (reply, _) = reply_to(&mut ws, 1).await;
    assert_eq!(reply["code"], "upload-missing", "{reply}");
    assert!(
        reply["reason"].as_str().unwrap().contains("300ms"),
        "{reply}"
    );
    assert_eq!(reply_to(&mut ws, 2).await.0["ok"], true);
}

#[tokio::test]
async fn an_upload_whose_body_is_not_all_sent_in_time_is_refused_with_408_and_upload_missing() {
    let options = WebOptions::default().with_upload_timeout(Duration::from_millis(300));
    let server = start_opts(options, echo_router()).await;
    let (mut ws, token) = window(&server, "main").await;
    send_json(
        &mut ws,
        json!({"id": 1, "kind": "event", "name": "tick", "upload": true}),
    )
    .await;
    let body = tick(1).to_string();
    let origin = own_origin(server.addr);
    let query = upload_query(&token, 1);
    // Declares one byte more than it sends, and waits.
    let post = post_upload_declaring(
        server.addr,
        &query,
        &origin,
        body.as_bytes(),
        body.len() + 1,
    );
    let ((status, answer), (reply, _)) = tokio::join!(post, reply_to(&mut ws, 1));
    assert_eq!(status, 408, "{answer}");
    // Whichever of the two waits ends first names the 300 ms.
    assert_eq!(reply["code"], "upload-missing", "{reply}");
    assert!(
        reply["reason"].as_str().unwrap().contains("300ms"),
        "{reply}"
    );
    assert!(answer.contains("not all sent within 300ms"), "{answer}");
}

#[tokio::test]
async fn an_upload_for_no_connected_window_or_from_another_origin_is_refused_with_403() {
    let options = WebOptions::default().with_allowed_origins(vec!["https://app.example".into()]);
    let server = start_opts(options, echo_router()).await;
    let (_ws, token) = window(&server, "main").await;
    let own = own_origin(server.addr);
    let body = tick(1).to_string();
    let cases = [
        (
            upload_query("0123456789abcdef", 1),
            own.as_str(),
            "no connected window",
        ),
        (
            upload_query(&token, 1),
            "https://evil.example",
            "is not allowed",
        ),
        (
            upload_query(&token, 1),
            "https://app.example",
            "connected from",
        ),
    ];
    for (query, origin, says) in cases {
        let (status, head, answer) =
            post_upload_answered(server.addr, &query, origin, body.as_bytes(), body.len()).await;
        assert_eq!(status, 403, "{query} from {origin}: {answer}");
        assert!(answer.contains(says), "{query} from {origin}: {answer}");
        // An allowed page may read why; a page of an origin not allowed may not.
        let readable = head.contains(&format!("access-control-allow-origin: {origin}"));
        assert_eq!(
            readable,
            origin != "https://evil.example",
            "{origin}: {head}"
        );
    }
    let (status, answer) = post_upload(server.addr, &format!("ticket={token}"), &own, b"{}").await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("ticket=TOKEN&id=N"), "{answer}");
}

#[tokio::test]
async fn an_upload_that_is_not_the_request_its_frame_announced_is_refused_with_invalid_frame() {
    let server = start_opts(WebOptions::default(), echo_router()).await;
    let (mut ws, token) = window(&server, "main").await;
    let origin = own_origin(server.addr);
    let uploads = [
        (
            json!({"id": 1, "kind": "event", "name": "other"}).to_string(),
            "not the event \"big\"",
        ),
        (
            json!({"id": 1, "kind": "event", "name": "big", "upload": true}).to_string(),
            "cannot announce another upload",
        ),
        ("{not json".to_owned(), "malformed request frame"),
    ];
    for (id, (upload, says)) in (1..).zip(uploads) {
        let upload = upload.replace("\"id\":1", &format!("\"id\":{id}"));
        send_json(
            &mut ws,
            json!({"id": id, "kind": "event", "name": "big", "upload": true}),
        )
        .await;
        let query = upload_query(&token, id);
        let (status, _) = post_upload(server.addr, &query, &origin, upload.as_bytes()).await;
        assert_eq!(status, 204);
        let (reply, _) = reply_to(&mut ws, id).await;
        assert_eq!(reply["code"], "invalid-frame", "{upload}: {reply}");
        let reason = reply["reason"].as_str().unwrap();
        assert!(reason.contains(says), "{upload}: {reason}");
    }
}

#[tokio::test]
async fn a_frame_announcing_an_upload_with_a_body_of_its_own_or_in_binary_is_invalid() {
    let server = start_opts(WebOptions::default(), echo_router()).await;
    let mut ws = connect(&server, "main").await;
    send_json(
        &mut ws,
        json!({"id": 1, "kind": "event", "name": "e", "upload": true, "payload": 1}),
    )
    .await;
    let (reply, _) = reply_to(&mut ws, 1).await;
    assert_eq!(reply["code"], "invalid-frame", "{reply}");
    let head = json!({"id": 2, "kind": "event", "name": "e", "upload": true});
    ws.send(binary_frame(head, b"bytes")).await.unwrap();
    let (reply, _) = reply_to(&mut ws, 2).await;
    assert_eq!(reply["code"], "invalid-frame", "{reply}");
    assert!(
        reply["reason"].as_str().unwrap().contains("text frame"),
        "{reply}"
    );
}

/// Posts `count` uploads no frame announced to a window that may have 2 requests in flight.
async fn unclaimed_uploads(count: u64) -> Vec<(u16, String)> {
    let server = start_opts(WebOptions::default().with_in_flight(2), echo_router()).await;
    let (_ws, token) = window(&server, "main").await;
    let origin = own_origin(server.addr);
    let mut out = Vec::new();
    for id in 1..=count {
        let body = tick(id).to_string();
        let query = upload_query(&token, id);
        out.push(post_upload(server.addr, &query, &origin, body.as_bytes()).await);
    }
    out
}

#[tokio::test]
async fn unclaimed_uploads_up_to_the_windows_requests_in_flight_are_held() {
    let answers = unclaimed_uploads(2).await;
    assert!(
        answers.iter().all(|(status, _)| *status == 204),
        "{answers:?}"
    );
}

#[tokio::test]
async fn an_unclaimed_upload_past_the_windows_requests_in_flight_is_refused_with_429() {
    let answers = unclaimed_uploads(3).await;
    let (status, answer) = &answers[2];
    assert_eq!(*status, 429, "{answers:?}");
    assert!(answer.contains("2 uploads are waiting"), "{answer}");
}
