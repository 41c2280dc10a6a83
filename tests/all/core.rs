//! The core: nothing gets in but an authenticated envelope; routing to typed handlers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use airlock::seal::{self, ENVELOPE_VERSION, HEADER_LEN, TAG_LEN};
use airlock::{
    Body, Core, CoreError, Envelope, Kind, Message, Response, Router, SealConfig, SealError, Source,
};
use airlock_tests::block_on;
use serde_json::json;

fn counting_core(calls: Arc<AtomicUsize>) -> (seal::Sealer, Core) {
    let (sealer, opener) = seal::channel(SealConfig::default()).unwrap();
    let router = Router::new().fallback(move |_| {
        calls.fetch_add(1, Ordering::SeqCst);
        async { Ok(Response::Delivered { receivers: 1 }) }
    });
    (sealer, Core::new(router, opener))
}

fn message(kind: Kind, name: &str, body: Body) -> Message {
    Message {
        id: 1,
        kind,
        name: name.into(),
        source: Source::new("main", "main", "tauri://localhost"),
        headers: vec![],
        body,
    }
}

#[test]
fn no_unsealed_bytes_reach_a_handler() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (sealer, core) = counting_core(calls.clone());
    let good = sealer
        .seal(&message(Kind::Command, "fs_read", Body::Json("{}".into())))
        .unwrap()
        .into_bytes();

    // What an attacker could hand the core without the key: nothing, plaintext-looking bytes,
    // a bare header (Tauri skips decryption for an empty body), a header with an all-zero tag,
    // a real header over someone else's ciphertext.
    let mut bare_header = good[..HEADER_LEN].to_vec();
    let mut zero_tag = bare_header.clone();
    zero_tag.extend_from_slice(&[0; TAG_LEN]);
    let mut spliced = good[..HEADER_LEN].to_vec();
    spliced.extend(std::iter::repeat_n(0x41, good.len() - HEADER_LEN));
    bare_header.push(0);
    let attempts: Vec<Vec<u8>> = vec![
        vec![],
        b"{}".to_vec(),
        br#"{"cmd":"fs_read","payload":{}}"#.to_vec(),
        bare_header,
        zero_tag,
        spliced,
        [&[ENVELOPE_VERSION][..], &[0; 12], &[0; TAG_LEN]].concat(),
    ];
    for bytes in attempts {
        let result = block_on(core.dispatch(Envelope::from_bytes(bytes.clone())));
        assert!(
            matches!(result, Err(CoreError::Envelope(_))),
            "{bytes:?} got in"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0, "a handler ran");

    block_on(core.dispatch(Envelope::from_bytes(good))).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[test]
fn an_envelope_sealed_for_one_command_cannot_be_replayed_as_another() {
    let calls = Arc::new(AtomicUsize::new(0));
    let (sealer, core) = counting_core(calls);
    let envelope = sealer
        .seal(&message(Kind::Command, "fs_read", Body::Json("{}".into())))
        .unwrap();
    block_on(core.dispatch(envelope.clone())).unwrap();
    let replay = block_on(core.dispatch(envelope));
    assert!(matches!(
        replay,
        Err(CoreError::Envelope(SealError::Replayed { .. }))
    ));
}

#[derive(serde::Deserialize)]
struct Add {
    a: i64,
    b: i64,
}

fn app_core() -> (seal::Sealer, Core, Arc<AtomicUsize>) {
    let heard = Arc::new(AtomicUsize::new(0));
    let (h1, h2) = (heard.clone(), heard.clone());
    let router = Router::new()
        .command("add", |args: Add, _| async move {
            Ok::<_, String>(args.a + args.b)
        })
        .command("fail", |_: serde_json::Value, _| async move {
            Err::<(), _>("disk full")
        })
        .command("whoami", |_: serde_json::Value, invocation| async move {
            Ok::<_, String>(invocation.source.window)
        })
        .listen("saved", move |_| {
            h1.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, String>(()) }
        })
        .listen("saved", move |_| {
            h2.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, String>(()) }
        })
        .channel("upload", |invocation| async move {
            match invocation.body {
                Body::Bytes(_) => Ok(()),
                Body::Json(_) => Err("upload takes bytes"),
            }
        });
    let (sealer, opener) = seal::channel(SealConfig::default()).unwrap();
    (sealer, Core::new(router, opener), heard)
}

fn dispatch(sealer: &seal::Sealer, core: &Core, m: Message) -> Result<Response, CoreError> {
    block_on(core.dispatch(sealer.seal(&m).unwrap()))
}

#[test]
fn commands_get_typed_args_and_return_serialized_values() {
    let (sealer, core, _) = app_core();
    let add = message(
        Kind::Command,
        "add",
        Body::json(&json!({"a": 2, "b": 40})).unwrap(),
    );
    match dispatch(&sealer, &core, add).unwrap() {
        Response::Json(raw) => assert_eq!(raw.get(), "42"),
        other => panic!("{other:?}"),
    }
    let whoami = message(Kind::Command, "whoami", Body::Json("{}".into()));
    match dispatch(&sealer, &core, whoami).unwrap() {
        Response::Json(raw) => assert_eq!(raw.get(), r#""main""#),
        other => panic!("{other:?}"),
    }
}

#[test]
fn command_errors_name_the_command_and_the_problem() {
    let (sealer, core, _) = app_core();
    let cases = [
        (
            message(Kind::Command, "nope", Body::Json("{}".into())),
            "unknown-command",
            "\"nope\"",
        ),
        (
            message(Kind::Command, "add", Body::Json(r#"{"a":1}"#.into())),
            "invalid-args",
            "missing field `b`",
        ),
        (
            message(Kind::Command, "add", Body::Bytes(vec![1])),
            "invalid-args",
            "bytes",
        ),
        (
            message(Kind::Command, "fail", Body::Json("{}".into())),
            "handler-error",
            "disk full",
        ),
        (
            message(Kind::Channel, "nobody", Body::Bytes(vec![])),
            "unknown-channel",
            "\"nobody\"",
        ),
    ];
    for (m, code, needle) in cases {
        let rejection = dispatch(&sealer, &core, m).unwrap_err().to_rejection();
        assert_eq!(rejection.code, code);
        assert!(rejection.reason.contains(needle), "{}", rejection.reason);
    }
}

#[test]
fn events_reach_every_listener_and_unheard_events_are_fine() {
    let (sealer, core, heard) = app_core();
    let saved = message(Kind::Event, "saved", Body::Json("null".into()));
    assert!(matches!(
        dispatch(&sealer, &core, saved).unwrap(),
        Response::Delivered { receivers: 2 }
    ));
    assert_eq!(heard.load(Ordering::SeqCst), 2);
    let unheard = message(Kind::Event, "other", Body::Json("1".into()));
    assert!(matches!(
        dispatch(&sealer, &core, unheard).unwrap(),
        Response::Delivered { receivers: 0 }
    ));
}

#[test]
fn channel_messages_reach_their_receiver() {
    let (sealer, core, _) = app_core();
    let chunk = message(Kind::Channel, "upload", Body::Bytes(vec![0, 159, 146, 150]));
    assert!(dispatch(&sealer, &core, chunk).is_ok());
    let wrong = message(Kind::Channel, "upload", Body::Json("1".into()));
    assert_eq!(
        dispatch(&sealer, &core, wrong)
            .unwrap_err()
            .to_rejection()
            .code,
        "handler-error"
    );
}
