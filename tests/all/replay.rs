//! Recording traffic (the gateway's recorder), replaying it with `airlock replay`, monitor mode,
//! and the attack corpus.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use airlock::{
    Decision, Gateway, GatewayLimits, Hook, HookLimits, HookOptions, JsonlRecorder, Payloads,
    SealConfig, jsonl,
};
use airlock_tests::{
    CONFIGURE_OK, INSPECT_PASS, block_on, built_hook, delivered, echo_gateway, echo_router, engine,
    root, run_airlock, send, wat_hook,
};
use serde_json::Value;

fn scratch(test: &str) -> PathBuf {
    let dir = root().join("target/tmp/replay").join(test);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn load(bytes: &[u8], options: HookOptions) -> Hook {
    Hook::load(engine(), bytes, options).expect("hook loads")
}

/// A session of the demo page's traffic: what its buttons send.
const DEMO_SESSION: &[&str] = &[
    r#"{"kind":"command","name":"fs_list","payload":{"path":""}}"#,
    r#"{"kind":"command","name":"fs_read","payload":{"path":"notes.txt"}}"#,
    r#"{"kind":"command","name":"fs_read","payload":{"path":"../../etc/passwd"}}"#,
    r#"{"kind":"command","name":"fs_write","payload":{"path":"notes.txt","contents":"hi"}}"#,
    r#"{"kind":"event","name":"profile","payload":{"user":"ada","password":"hunter2"}}"#,
    r#"{"kind":"command","name":"delete_all","payload":{}}"#,
    r#"{"kind":"command","name":"shell_open","payload":{"url":"https://example.com"}}"#,
    r#"{"kind":"command","name":"bad name!","payload":{}}"#,
    r#"{"kind":"command","name":"fs_read","payload":{"path":"todo.md"}}"#,
    r#"{"kind":"command","name":"fs_list","payload":{"path":"/etc"}}"#,
];

/// Records `session` through path-guard then redact (the demo's chain), into `file`.
fn record(session: &[&str], file: &Path, payloads: Payloads) {
    let recorder = JsonlRecorder::append(file, payloads).unwrap();
    let path_guard = load(&built_hook("path-guard", "rust"), HookOptions::default());
    let redact = load(&built_hook("redact", "rust"), HookOptions::default());
    let gateway = Gateway::with_config(
        path_guard,
        echo_router(),
        GatewayLimits::default(),
        SealConfig::default(),
    )
    .unwrap()
    .then(redact)
    .with_recorder(Arc::new(recorder));
    for line in session {
        send(&gateway, line);
    }
}

/// A hook that rejects the messages whose name is in `rules`, with the rule's code (as code and
/// reason), and passes the rest.
fn name_gate(rules: &[(&str, &str)]) -> Vec<u8> {
    // The rules table at 512: (name ptr, name len, code ptr, code len) a rule; strings from 1024.
    let mut table = Vec::new();
    let mut strings = Vec::new();
    for (name, code) in rules {
        for text in [name, code] {
            table.extend((1024 + strings.len() as u32).to_le_bytes());
            table.extend((text.len() as u32).to_le_bytes());
            strings.extend(text.as_bytes());
        }
    }
    let escaped = |bytes: &[u8]| {
        bytes
            .iter()
            .map(|b| format!("\\{b:02x}"))
            .collect::<String>()
    };
    let extra = format!(
        r#"(data (i32.const 512) "{}") (data (i32.const 1024) "{}")
  (func $same (param $a i32) (param $al i32) (param $b i32) (param $bl i32) (result i32)
    (local $k i32)
    (if (i32.ne (local.get $al) (local.get $bl)) (then (return (i32.const 0))))
    (block $out (loop $l
      (br_if $out (i32.ge_u (local.get $k) (local.get $al)))
      (if (i32.ne (i32.load8_u (i32.add (local.get $a) (local.get $k)))
                  (i32.load8_u (i32.add (local.get $b) (local.get $k))))
        (then (return (i32.const 0))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $l)))
    (i32.const 1))"#,
        escaped(&table),
        escaped(&strings)
    );
    let inspect = format!(
        r#"(local $i i32) (local $r i32)
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.const {})))
      (local.set $r (i32.add (i32.const 512) (i32.mul (local.get $i) (i32.const 16))))
      (if (call $same (local.get $name) (local.get $name_len)
                      (i32.load (local.get $r)) (i32.load offset=4 (local.get $r)))
        (then
          (i32.store8 (i32.const 16) (i32.const 2))
          (i32.store (i32.const 20) (i32.load offset=8 (local.get $r)))
          (i32.store (i32.const 24) (i32.load offset=12 (local.get $r)))
          (i32.store (i32.const 28) (i32.load offset=8 (local.get $r)))
          (i32.store (i32.const 32) (i32.load offset=12 (local.get $r)))
          (return (i32.const 16))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    {INSPECT_PASS}"#,
        rules.len()
    );
    wat_hook(CONFIGURE_OK, &inspect, &extra)
}

fn replay(args: &[&str]) -> Output {
    let mut all = vec!["replay"];
    all.extend(args);
    run_airlock(&all, &root(), "")
}

fn report(output: &Output) -> Value {
    serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap_or_else(|e| {
        panic!(
            "{e}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(output)
        )
    })
}

#[test]
fn a_recorded_demo_session_replayed_against_a_hook_changed_in_three_places_shows_exactly_three_flips()
 {
    let dir = scratch("three-flips");
    let traffic = dir.join("session.jsonl");
    record(DEMO_SESSION, &traffic, Payloads::All);
    let old = dir.join("old.wasm");
    let new = dir.join("new.wasm");
    std::fs::write(
        &old,
        name_gate(&[("delete_all", "denied"), ("shell_open", "denied")]),
    )
    .unwrap();
    // Three changes: fs_write is now refused, delete_all no longer, shell_open with another code.
    std::fs::write(
        &new,
        name_gate(&[("fs_write", "denied"), ("shell_open", "no-shell")]),
    )
    .unwrap();
    let (old, new, traffic) = (
        old.display().to_string(),
        new.display().to_string(),
        traffic.display().to_string(),
    );

    let output = replay(&["--hook", &old, "--hook", &new, "--json", &traffic]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = report(&output);
    assert_eq!(report["messages"], DEMO_SESSION.len());
    assert_eq!(report["flipped"], 3, "{report:#}");
    let groups: Vec<(String, String, u64)> = report["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["name"].as_str().unwrap().to_owned(),
                g["flip"].as_str().unwrap().to_owned(),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("fs_write".to_owned(), "pass→reject".to_owned(), 1),
            ("delete_all".to_owned(), "reject→pass".to_owned(), 1),
            ("shell_open".to_owned(), "code changed".to_owned(), 1),
        ]
    );
    let example = &report["groups"][2]["examples"][0];
    assert_eq!(example["line"], 7);
    assert_eq!(example["before"], "reject denied (denied)");
    assert_eq!(example["after"], "reject no-shell (no-shell)");

    // The text report says the same, a group a line, and the total.
    let text = replay(&["--hook", &old, "--hook", &new, &traffic]);
    assert_eq!(text.status.code(), Some(1));
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(out.contains("command fs_write: pass→reject: 1\n"), "{out}");
    assert!(
        out.contains("command delete_all: reject→pass: 1\n"),
        "{out}"
    );
    assert!(
        out.contains("command shell_open: code changed: 1\n"),
        "{out}"
    );
    assert!(
        out.ends_with("10 messages, 3 flipped (3 groups)\n"),
        "{out}"
    );

    // The same hook twice flips nothing, and exits 0.
    let same = replay(&["--hook", &old, "--hook", &old, &traffic]);
    assert!(same.status.success(), "{}", stderr(&same));
    assert!(String::from_utf8_lossy(&same.stdout).ends_with("10 messages, 0 flipped (0 groups)\n"));
}

#[test]
fn a_changed_replacement_is_a_flip_with_the_diff_of_the_two_messages() {
    let dir = scratch("replacement");
    let traffic = dir.join("session.jsonl");
    record(DEMO_SESSION, &traffic, Payloads::All);
    let config = dir.join("user.json");
    std::fs::write(&config, r#"{"fields":["password","user"]}"#).unwrap();
    let redact = "target/hooks/redact.rust.wasm";
    let empty = dir.join("empty.json");
    std::fs::write(&empty, "{}").unwrap();
    let output = replay(&[
        "--hook",
        redact,
        "--config",
        &empty.display().to_string(),
        "--hook",
        redact,
        "--config",
        &config.display().to_string(),
        "--json",
        &traffic.display().to_string(),
    ]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = report(&output);
    assert_eq!(report["flipped"], 1, "{report:#}");
    let group = &report["groups"][0];
    assert_eq!(
        (&group["name"], &group["flip"]),
        (&"profile".into(), &"replacement changed".into())
    );
    assert_eq!(group["examples"][0]["diff"], r#"- payload.user: "ada""#);
}

#[test]
fn replaying_a_recording_against_the_hooks_that_made_it_flips_nothing_and_a_new_one_flips() {
    let dir = scratch("recorded");
    let traffic = dir.join("session.jsonl");
    let session: Vec<&str> = DEMO_SESSION
        .iter()
        .copied()
        .filter(|l| !l.contains("profile"))
        .collect();
    record(&session, &traffic, Payloads::All);
    let traffic = traffic.display().to_string();
    // Without the profile event, redact changes nothing: path-guard alone gives the same verdicts.
    let same = replay(&[
        "--hook",
        "target/hooks/path-guard.rust.wasm",
        "--json",
        &traffic,
    ]);
    assert!(same.status.success(), "{}", stderr(&same));
    assert_eq!(report(&same)["flipped"], 0, "{:#}", report(&same));
    assert_eq!(report(&same)["against"], "recorded verdicts");

    let pass_all = dir.join("pass-all.wasm");
    std::fs::write(&pass_all, wat_hook(CONFIGURE_OK, INSPECT_PASS, "")).unwrap();
    let flips = replay(&[
        "--hook",
        &pass_all.display().to_string(),
        "--json",
        &traffic,
    ]);
    assert_eq!(flips.status.code(), Some(1));
    let report = report(&flips);
    // ../../etc/passwd and /etc; the bad name is refused by the gateway either way.
    assert_eq!(report["flipped"], 2, "{report:#}");
    assert_eq!(report["groups"][0]["flip"], "reject→pass");
    let before = report["groups"][0]["examples"][0]["before"]
        .as_str()
        .unwrap();
    assert!(before.starts_with("reject path-escape ("), "{before}");
}

#[test]
fn a_record_line_is_an_inspect_line_with_the_source_a_timestamp_and_the_verdict() {
    let dir = scratch("format");
    let traffic = dir.join("session.jsonl");
    record(&DEMO_SESSION[..3], &traffic, Payloads::All);
    let text = std::fs::read_to_string(&traffic).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["source"]["origin"], "tauri://localhost");
    assert_eq!(lines[2]["payload"]["path"], "../../etc/passwd");
    let recorded = &lines[2]["recorded"];
    assert_eq!(recorded["verdict"], "reject");
    assert_eq!(recorded["code"], "path-escape");
    assert!(
        recorded["reason"]
            .as_str()
            .unwrap()
            .contains("../../etc/passwd")
    );
    assert_eq!(recorded["hook"].as_str().unwrap().len(), 64);
    assert!(recorded["unix_ms"].as_u64().unwrap() > 1_700_000_000_000);
    assert_eq!(lines[0]["recorded"]["verdict"], "pass");
    // `airlock inspect` reads a recording as it is.
    for line in text.lines() {
        jsonl::parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
}

#[test]
fn payload_recording_limited_to_names_or_none_keeps_the_values_off_the_disk() {
    let dir = scratch("payloads");
    let secret = r#"{"kind":"event","name":"profile","headers":{"authorization":"Bearer s3cr3t"},"payload":{"user":"ada","password":"hunter2","n":[1,{"token":"t0k"}]}}"#;
    let refused = r#"{"kind":"command","name":"fs_read","payload":{"path":"../hunter2"}}"#;
    for (payloads, payload, headers) in [
        (
            Payloads::Names,
            r#"{"user":null,"password":null,"n":[null,{"token":null}]}"#,
            r#"{"authorization":""}"#,
        ),
        (Payloads::None, "null", "{}"),
    ] {
        let file = dir.join(format!("{}.jsonl", payloads.as_str()));
        record(&[secret, refused], &file, payloads);
        let text = std::fs::read_to_string(&file).unwrap();
        for value in ["hunter2", "s3cr3t", "t0k", "ada"] {
            assert!(!text.contains(value), "{payloads:?} wrote {value}: {text}");
        }
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(
            first["payload"],
            serde_json::from_str::<Value>(payload).unwrap()
        );
        assert_eq!(
            first["headers"],
            serde_json::from_str::<Value>(headers).unwrap()
        );
        assert_eq!(first["recorded"]["payloads"], payloads.as_str());
        let second: Value = serde_json::from_str(text.lines().nth(1).unwrap()).unwrap();
        assert_eq!(
            second["recorded"]["code"], "path-escape",
            "the verdict is kept"
        );
        assert!(
            second["recorded"].get("reason").is_none(),
            "a reason may quote the payload"
        );
    }
}

#[test]
fn replay_refuses_bad_input_naming_it() {
    let dir = scratch("bad-input");
    let plain = dir.join("plain.jsonl");
    std::fs::write(&plain, DEMO_SESSION.join("\n")).unwrap();
    let plain = plain.display().to_string();
    let hook = "target/hooks/path-guard.rust.wasm";
    let one = replay(&["--hook", hook, &plain]);
    assert_eq!(one.status.code(), Some(2));
    assert!(
        stderr(&one).contains("plain.jsonl:1: no recorded verdict"),
        "{}",
        stderr(&one)
    );

    let three = replay(&["--hook", hook, "--hook", hook, "--hook", hook, &plain]);
    assert_eq!(three.status.code(), Some(2));
    assert!(
        stderr(&three).contains("got 3 --hook"),
        "{}",
        stderr(&three)
    );

    let broken = dir.join("broken.jsonl");
    std::fs::write(
        &broken,
        format!("{}\n{{\"kind\":\"teleport\"}}\n", DEMO_SESSION[0]),
    )
    .unwrap();
    let bad = replay(&[
        "--hook",
        hook,
        "--hook",
        hook,
        &broken.display().to_string(),
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("broken.jsonl:2:"), "{}", stderr(&bad));
}

/// A gateway with `first` in monitor mode, then `then` (enforced), in front of the echo core.
fn monitored_chain(first: &[u8], then: Option<&[u8]>) -> Gateway {
    let limits = HookLimits::default();
    let first = load(
        first,
        HookOptions::default()
            .with_limits(limits)
            .with_monitor(true),
    );
    let gateway = echo_gateway(first);
    match then {
        Some(bytes) => gateway.then(load(bytes, HookOptions::default())),
        None => gateway,
    }
}

#[test]
fn a_hook_in_monitor_mode_has_its_rejection_counted_but_not_enforced() {
    let gateway = monitored_chain(&built_hook("path-guard", "rust"), None);
    let line = r#"{"kind":"command","name":"fs_read","payload":{"path":"../../etc/passwd"}}"#;
    let reply = send(&gateway, line);
    assert_eq!(reply.decision, Decision::Pass);
    assert_eq!(
        delivered(&reply).unwrap()["payload"]["path"],
        "../../etc/passwd",
        "the message went on as if passed"
    );
    assert_eq!(reply.monitored.len(), 1);
    assert_eq!(reply.monitored[0].decision, Decision::Reject);
    assert_eq!(
        reply.monitored[0].rejection.as_ref().unwrap().code,
        "path-escape"
    );

    let fine = send(
        &gateway,
        r#"{"kind":"command","name":"fs_read","payload":{"path":"a"}}"#,
    );
    assert_eq!(fine.monitored[0].decision, Decision::Pass);
    assert!(fine.monitored[0].rejection.is_none());
}

#[test]
fn the_same_hook_enforced_rejects_what_monitor_mode_lets_through() {
    // The pair of the test above: without monitor mode, the rejection stands.
    let hook = load(&built_hook("path-guard", "rust"), HookOptions::default());
    let reply = send(
        &echo_gateway(hook),
        r#"{"kind":"command","name":"fs_read","payload":{"path":"../../etc/passwd"}}"#,
    );
    assert_eq!(delivered(&reply), Err("path-escape".to_owned()));
    assert!(reply.monitored.is_empty());
}

#[test]
fn a_fault_in_monitor_mode_is_logged_never_enforced() {
    let trap = wat_hook(CONFIGURE_OK, "unreachable", "");
    let gateway = monitored_chain(&trap, None);
    let reply = send(
        &gateway,
        r#"{"kind":"command","name":"fs_read","payload":{"path":"a"}}"#,
    );
    assert!(reply.outcome.is_ok(), "{:?}", reply.outcome);
    assert_eq!(
        reply.monitored[0].rejection.as_ref().unwrap().code,
        "hook-trap"
    );
}

#[test]
fn a_monitored_replace_is_not_applied_and_the_next_hook_sees_the_message_as_sent() {
    // redact in monitor mode, then path-guard enforced: the password stays, path-guard still
    // judges.
    let gateway = monitored_chain(
        &built_hook("redact", "rust"),
        Some(&built_hook("path-guard", "rust")),
    );
    let reply = send(
        &gateway,
        r#"{"kind":"event","name":"profile","payload":{"user":"ada","password":"p"}}"#,
    );
    assert_eq!(reply.decision, Decision::Pass);
    assert_eq!(delivered(&reply).unwrap()["payload"]["password"], "p");
    assert_eq!(reply.monitored[0].decision, Decision::Replace);
    let refused = send(
        &gateway,
        r#"{"kind":"command","name":"fs_read","payload":{"path":"../x"}}"#,
    );
    assert_eq!(delivered(&refused), Err("path-escape".to_owned()));
}

#[test]
fn inspect_and_serve_refuse_a_monitor_flag_that_names_no_hook() {
    let output = run_airlock(
        &[
            "inspect",
            "--hook",
            "target/hooks/path-guard.rust.wasm",
            "--monitor",
            "target/hooks/redact.rust.wasm",
        ],
        &root(),
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output)
            .contains("--monitor target/hooks/redact.rust.wasm: not one of the --hook paths"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn inspect_prints_what_a_monitored_hook_would_have_done() {
    let hook = "target/hooks/path-guard.rust.wasm";
    let output = run_airlock(
        &["inspect", "--hook", hook, "--monitor", hook],
        &root(),
        r#"{"kind":"command","name":"fs_read","payload":{"path":"../../etc/passwd"}}"#,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let line: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(line["verdict"], "pass");
    assert_eq!(line["monitored"][0]["verdict"], "reject");
    assert_eq!(line["monitored"][0]["code"], "path-escape");
}

#[test]
fn every_corpus_seed_is_a_message_that_names_its_source() {
    let seeds = airlock_cli::corpus::seeds().unwrap();
    for (file, _) in airlock_cli::corpus::FILES {
        let count = seeds.iter().filter(|s| s.file == *file).count();
        assert!(count >= 8, "corpus/{file} has {count} seeds");
    }
    for seed in &seeds {
        assert!(seed.about.len() > 10, "corpus/{}:{}", seed.file, seed.line);
    }
    // The files on disk are the ones embedded.
    for (file, text) in airlock_cli::corpus::FILES {
        let on_disk = std::fs::read_to_string(root().join("cli/corpus").join(file)).unwrap();
        assert_eq!(&on_disk, text, "{file}");
    }
}

#[test]
fn path_guard_rejects_every_path_traversal_seed_of_the_corpus() {
    let hook = load(&built_hook("path-guard", "rust"), HookOptions::default());
    let gateway = echo_gateway(hook);
    let seeds = airlock_cli::corpus::seeds().unwrap();
    let mut passed = Vec::new();
    for seed in seeds.iter().filter(|s| s.file == "path-traversal.jsonl") {
        let reply = block_on(gateway.handle(seed.source.clone(), seed.request.clone()));
        if reply.decision != Decision::Reject {
            passed.push(format!("line {}: {}", seed.line, seed.about));
        }
    }
    assert!(passed.is_empty(), "{}", passed.join("\n"));
}

#[test]
fn serve_records_every_message_with_its_window_and_verdict() {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;

    let dir = scratch("serve");
    let traffic = dir.join("traffic.jsonl");
    let data = dir.join("data");
    let (traffic_arg, data_arg) = (traffic.display().to_string(), data.display().to_string());
    let (child, addr) = airlock_tests::serve_airlock(&[
        "--hook",
        "target/hooks/path-guard.rust.wasm",
        "--record",
        &traffic_arg,
        "--root",
        &data_arg,
        "--static",
        "examples/demo",
    ]);
    // The page's window ticket, as a browser gets it.
    let page = {
        use std::io::{Read as _, Write as _};
        let mut http = std::net::TcpStream::connect(&addr).unwrap();
        write!(
            http,
            "GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut page = String::new();
        http.read_to_string(&mut page).unwrap();
        page
    };
    let marker = r#"<meta name="airlock-ticket" content=""#;
    let at = page.find(marker).expect("the page has a ticket") + marker.len();
    let ticket = &page[at..at + page[at..].find('"').unwrap()];
    let replies = block_on(async {
        let mut request = format!("ws://{addr}/airlock?ticket={ticket}")
            .into_client_request()
            .unwrap();
        let origin = format!("http://{addr}");
        request
            .headers_mut()
            .insert("Origin", origin.parse().unwrap());
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut replies = Vec::new();
        for (id, path) in [(1, "notes.txt"), (2, "../../etc/passwd")] {
            let frame = serde_json::json!({"id": id, "kind": "command", "name": "fs_read", "payload": {"path": path}});
            ws.send(Message::Text(frame.to_string().into()))
                .await
                .unwrap();
            loop {
                let Some(Ok(Message::Text(text))) = ws.next().await else {
                    panic!("the connection closed");
                };
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == "reply" {
                    replies.push(frame);
                    break;
                }
            }
        }
        replies
    });
    drop(child);
    assert_eq!(replies[0]["ok"], true, "{replies:?}");
    assert_eq!(replies[1]["code"], "path-escape", "{replies:?}");
    let text = std::fs::read_to_string(&traffic).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(!lines[0]["source"]["window"].as_str().unwrap().is_empty());
    assert_eq!(lines[0]["source"]["origin"], format!("http://{addr}"));
    assert_eq!(lines[0]["recorded"]["verdict"], "pass");
    assert_eq!(lines[1]["payload"]["path"], "../../etc/passwd");
    assert_eq!(lines[1]["recorded"]["code"], "path-escape");
}

#[test]
fn serve_refuses_an_unknown_payload_recording_naming_it() {
    let output = run_airlock(
        &[
            "serve",
            "--hook",
            "target/hooks/path-guard.rust.wasm",
            "--record",
            "target/tmp/replay/never.jsonl",
            "--record-payloads",
            "secrets",
        ],
        &root(),
        "",
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("payload recording \"secrets\" is not one of none, names, all"),
        "{}",
        stderr(&output)
    );
}

/// Records `session` through a pass-all hook, the recorder's requests rewritten by `redactor`;
/// returns the record lines.
fn record_redacted(test: &str, session: &[&str], redactor: Hook) -> Vec<Value> {
    let file = scratch(test).join("traffic.jsonl");
    let recorder = JsonlRecorder::append(&file, Payloads::All)
        .unwrap()
        .with_redactor(redactor);
    let pass_all = load(
        &wat_hook(CONFIGURE_OK, INSPECT_PASS, ""),
        HookOptions::default(),
    );
    let gateway = echo_gateway(pass_all).with_recorder(Arc::new(recorder));
    for line in session {
        send(&gateway, line);
    }
    std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_redactor_keeps_the_secrets_its_config_names_out_of_the_record_and_the_rest_in() {
    let redact = load(
        &built_hook("redact", "rust"),
        HookOptions::default().with_config(r#"{"fields":["password"]}"#),
    );
    let lines = record_redacted(
        "redactor",
        &[
            r#"{"kind":"event","name":"profile","payload":{"user":"ada","password":"hunter2"}}"#,
            r#"{"kind":"command","name":"fs_read","payload":{"path":"notes.txt"}}"#,
        ],
        redact,
    );
    assert_eq!(lines.len(), 2);
    let text = serde_json::to_string(&lines).unwrap();
    assert!(
        !text.contains("hunter2"),
        "the secret reached the record: {text}"
    );
    assert_eq!(lines[0]["payload"]["user"], "ada", "{text}");
    assert!(
        lines[0]["payload"]
            .get("password")
            .is_none_or(|v| v != "hunter2")
    );
    assert_eq!(
        lines[1]["payload"]["path"], "notes.txt",
        "passed: recorded as sent"
    );
    for line in &lines {
        assert_eq!(line["recorded"]["payloads"], "redacted");
        assert_eq!(
            line["recorded"]["verdict"], "pass",
            "the verdict is the gateway's"
        );
    }
}

#[test]
fn a_redactor_that_faults_leaves_the_record_without_headers_or_payload() {
    let trapping = load(
        &wat_hook(CONFIGURE_OK, "unreachable", ""),
        HookOptions::default(),
    );
    let lines = record_redacted(
        "redactor-faults",
        &[
            r#"{"kind":"event","name":"profile","headers":{"x-token":"t0p"},"payload":{"password":"hunter2"}}"#,
            r#"{"kind":"command","name":"fs_read","payload":{"path":"secret.txt"}}"#,
        ],
        trapping,
    );
    let text = serde_json::to_string(&lines).unwrap();
    for secret in ["hunter2", "t0p", "secret.txt"] {
        assert!(
            !text.contains(secret),
            "{secret} reached the record: {text}"
        );
    }
    assert_eq!(lines[0]["name"], "profile");
    assert_eq!(lines[0]["payload"], Value::Null);
    assert_eq!(lines[1]["payload"], serde_json::json!({}));
}
