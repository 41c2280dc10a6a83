use airlock_hook::{Body, Kind, Message, Source, Verdict};

use super::*;

fn message(kind: Kind, name: &str, window: &str, origin: &str, body: &str) -> Message {
    Message {
        id: 1,
        kind,
        name: name.to_owned(),
        source: Source {
            window: window.to_owned(),
            webview: window.to_owned(),
            origin: origin.to_owned(),
        },
        headers: vec![],
        body: Body::Json(body.to_owned()),
    }
}

fn policy(config: &str) -> Policy<'_> {
    config::read(config).unwrap_or_else(|e| panic!("config refused: {e}"))
}

fn refusal(config: &str) -> String {
    match config::read(config) {
        Ok(_) => panic!("config accepted: {config}"),
        Err(e) => e,
    }
}

/// `pass`, or `code: reason`.
fn verdict(policy: &Policy, message: &Message) -> String {
    match inspect(policy, message) {
        Verdict::Pass => "pass".to_owned(),
        Verdict::Reject(r) => format!("{}: {}", r.code, r.reason),
        Verdict::Replace(_) => "replace".to_owned(),
    }
}

fn command(policy: &Policy, name: &str, window: &str, body: &str) -> String {
    verdict(
        policy,
        &message(Kind::Command, name, window, "tauri://localhost", body),
    )
}

const FILES: &str = r##"{
  "$defs": {"name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8}},
  "rules": [
    {"windows": ["main", "editor-*"], "origins": "tauri://localhost",
     "commands": {
       "fs_read": {"args": {"type": "object", "required": ["path"], "additionalProperties": false,
                            "properties": {"path": {"type": "string", "format": "airlock-path", "root": "/app/data"},
                                           "tags": {"type": "array", "maxItems": 2, "items": {"$ref": "#/$defs/name"}}}}},
       "ping": true,
       "admin_*": false
     },
     "emit": {"saved": {"payload": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}}}}},
     "listen": ["progress*"]},
    {"windows": "*", "commands": {"admin_reset": true, "version": {}}}
  ]
}"##;

#[test]
fn an_allowed_command_with_valid_args_passes() {
    let p = policy(FILES);
    assert_eq!(
        command(&p, "fs_read", "main", r#"{"path":"a/b.txt","tags":["x"]}"#),
        "pass"
    );
    assert_eq!(command(&p, "ping", "editor-2", "null"), "pass");
    assert_eq!(command(&p, "version", "other", "{}"), "pass");
}

#[test]
fn a_command_no_rule_names_is_not_allowed() {
    let p = policy(FILES);
    let got = command(&p, "delete_all", "main", "{}");
    assert!(
        got.starts_with("not-allowed: command `delete_all` is not allowed for window \"main\""),
        "{got}"
    );
}

#[test]
fn a_window_or_origin_the_rule_does_not_name_is_not_allowed() {
    let p = policy(FILES);
    assert!(command(&p, "ping", "settings", "{}").starts_with("not-allowed"));
    let remote = message(Kind::Command, "ping", "main", "https://evil.example", "{}");
    assert!(verdict(&p, &remote).starts_with("not-allowed"));
}

#[test]
fn a_deny_wins_over_an_allow_in_another_rule() {
    let p = policy(FILES);
    let got = command(&p, "admin_reset", "main", "{}");
    assert!(got.contains("denied by /rules/0/commands/admin_*"), "{got}");
    // The deny is for main and editor-* only.
    assert_eq!(command(&p, "admin_reset", "other", "{}"), "pass");
}

#[test]
fn schema_failures_name_the_pointer_and_the_keyword() {
    let p = policy(FILES);
    let cases = [
        (r#"{}"#, r#"at "" fails `required`"#),
        (r#"{"path":1}"#, r#"at "/path" fails `type`"#),
        (
            r#"{"path":"a","x":1}"#,
            r#"at "/x" fails `additionalProperties`"#,
        ),
        (
            r#"{"path":"a","tags":["ok","BAD"]}"#,
            r#"at "/tags/1" fails `pattern`"#,
        ),
        (
            r#"{"path":"a","tags":["abcdefghi"]}"#,
            r#"at "/tags/0" fails `maxLength`"#,
        ),
        (
            r#"{"path":"a","tags":["a","b","c"]}"#,
            r#"at "/tags" fails `maxItems`"#,
        ),
        (r#"[]"#, r#"at "" fails `type`"#),
    ];
    for (args, want) in cases {
        let got = command(&p, "fs_read", "main", args);
        assert!(
            got.starts_with("invalid-args: ") && got.contains(want),
            "{args}: {got}"
        );
    }
}

#[test]
fn a_path_that_escapes_its_root_fails_the_path_format() {
    let p = policy(FILES);
    for path in [
        "../etc/passwd",
        "/etc/passwd",
        "a/../../x",
        "%2e%2e/x",
        "a\\b",
        "~/x",
    ] {
        let args = serde_json::json!({ "path": path }).to_string();
        let got = command(&p, "fs_read", "main", &args);
        assert!(
            got.contains(r#"at "/path" fails `format`"#),
            "{path}: {got}"
        );
    }
    assert_eq!(
        command(&p, "fs_read", "main", r#"{"path":"/app/data/x"}"#),
        "pass"
    );
}

#[test]
fn duplicate_keys_and_bytes_bodies_are_invalid_args() {
    let p = policy(FILES);
    let got = command(&p, "fs_read", "main", r#"{"path":"a","path":"../x"}"#);
    assert!(
        got.starts_with("invalid-args") && got.contains("duplicate key"),
        "{got}"
    );
    let mut bytes = message(Kind::Command, "fs_read", "main", "tauri://localhost", "{}");
    bytes.body = Body::Bytes(vec![1, 2]);
    assert!(verdict(&p, &bytes).starts_with("invalid-args"));
}

#[test]
fn events_are_checked_by_emit_and_channels_are_refused_unless_listed() {
    let p = policy(FILES);
    let event = |name: &str, body: &str| {
        verdict(
            &p,
            &message(Kind::Event, name, "main", "tauri://localhost", body),
        )
    };
    assert_eq!(event("saved", r#"{"n":3}"#), "pass");
    assert!(event("saved", r#"{"n":3.5}"#).contains(r#"at "/n" fails `type`"#));
    assert!(event("saved", r#"{"n":10}"#).contains(r#"at "/n" fails `maximum`"#));
    assert!(event("other", "{}").starts_with("not-allowed"));
    let chunk = message(Kind::Channel, "progress", "main", "tauri://localhost", "1");
    assert!(verdict(&p, &chunk).starts_with("not-allowed"));
}

#[test]
fn tauri_event_commands_are_judged_by_emit_and_listen() {
    let p = policy(FILES);
    let cmd = |name: &str, body: &str| command(&p, name, "main", body);
    assert_eq!(
        cmd(
            "plugin:event|emit",
            r#"{"event":"saved","payload":{"n":1}}"#
        ),
        "pass"
    );
    let got = cmd(
        "plugin:event|emit",
        r#"{"event":"saved","payload":{"n":-1}}"#,
    );
    assert!(got.contains(r#"at "/payload/n" fails `minimum`"#), "{got}");
    assert!(cmd("plugin:event|emit_to", r#"{"event":"nope"}"#).starts_with("not-allowed"));
    assert_eq!(
        cmd(
            "plugin:event|listen",
            r#"{"event":"progress:1","handler":3}"#
        ),
        "pass"
    );
    assert!(
        cmd("plugin:event|listen", r#"{"event":"secret","handler":3}"#).starts_with("not-allowed")
    );
    assert!(cmd("plugin:event|listen", r#"{"handler":3}"#).starts_with("invalid-args"));
}

#[test]
fn code_only_reasons_are_empty() {
    let p = policy(
        r#"{"reasons": "code", "rules": [{"commands": {"a": {"args": {"type": "string"}}}}]}"#,
    );
    assert_eq!(command(&p, "a", "main", "1"), "invalid-args: ");
    assert_eq!(command(&p, "b", "main", "1"), "not-allowed: ");
}

#[test]
fn an_empty_config_allows_nothing() {
    let p = policy("{}");
    assert!(command(&p, "ping", "main", "{}").starts_with("not-allowed"));
    let p = policy("");
    assert!(command(&p, "ping", "main", "{}").starts_with("not-allowed"));
}

#[test]
fn webview_globs_and_window_globs_are_alternatives() {
    let p = policy(r#"{"rules": [{"webviews": "panel-?", "commands": ["a"]}]}"#);
    let mut m = message(Kind::Command, "a", "main", "tauri://localhost", "{}");
    m.source.webview = "panel-1".into();
    assert_eq!(verdict(&p, &m), "pass");
    m.source.webview = "panel-12".into();
    assert!(verdict(&p, &m).starts_with("not-allowed"));
}

#[test]
fn every_schema_of_every_matching_entry_must_hold() {
    let p = policy(
        r#"{"rules": [{"commands": {"a*": {"args": {"maxLength": 3}}}},
                      {"commands": {"ab": {"args": {"minLength": 2}}}}]}"#,
    );
    assert_eq!(command(&p, "ab", "main", r#""xy""#), "pass");
    assert!(command(&p, "ab", "main", r#""x""#).contains("`minLength`"));
    assert!(command(&p, "ab", "main", r#""wxyz""#).contains("`maxLength`"));
}

#[test]
fn enum_const_and_numbers_compare_by_value() {
    let p = policy(
        r#"{"rules": [{"commands": {"a": {"args": {"properties": {"e": {"enum": [1, "x"]}, "c": {"const": {"k": [2]}}}}}}}]}"#,
    );
    assert_eq!(
        command(&p, "a", "main", r#"{"e":1.0,"c":{"k":[2.0]}}"#),
        "pass"
    );
    assert!(command(&p, "a", "main", r#"{"e":2}"#).contains(r#"at "/e" fails `enum`"#));
    assert!(command(&p, "a", "main", r#"{"c":{"k":[3]}}"#).contains(r#"at "/c" fails `const`"#));
}

#[test]
fn refs_may_recurse_through_values_and_reach_the_schema_s_own_defs() {
    let p = policy(
        r##"{"rules": [{"commands": {"tree": {"args": {
            "$defs": {"node": {"type": "object", "additionalProperties": false,
                               "properties": {"v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
            "$ref": "#/$defs/node"}}}}]}"##,
    );
    assert_eq!(
        command(&p, "tree", "main", r#"{"v":1,"kids":[{"v":2,"kids":[]}]}"#),
        "pass"
    );
    let got = command(&p, "tree", "main", r#"{"v":1,"kids":[{"v":"x"}]}"#);
    assert!(got.contains(r#"at "/kids/0/v" fails `type`"#), "{got}");
}

#[test]
fn bad_configs_are_refused_with_the_pointer_of_the_problem() {
    let cases = [
        (r#"{"rulez": []}"#, "at /rulez: unknown key"),
        (r#"{"rules": {}}"#, "at /rules: expected an array"),
        (
            r#"{"rules": [{"windowz": "main"}]}"#,
            "at /rules/0/windowz: unknown key",
        ),
        (
            r#"{"rules": [{"windows": 3}]}"#,
            "at /rules/0/windows: expected",
        ),
        (
            r#"{"rules": [{"origins": [""]}]}"#,
            "at /rules/0/origins/0: expected a non-empty origin",
        ),
        (
            r#"{"rules": [{"commands": {"a": 1}}]}"#,
            "at /rules/0/commands/a: expected true, false",
        ),
        (
            r#"{"rules": [{"commands": {"a": {"argz": {}}}}]}"#,
            "at /rules/0/commands/a/argz: unknown key",
        ),
        (
            r#"{"rules": [{"commands": {"a*b": true}}]}"#,
            "at /rules/0/commands/a*b: name",
        ),
        (
            r#"{"rules": [{"listen": {"a": {"payload": {}}}}]}"#,
            "at /rules/0/listen/a/payload",
        ),
        (
            r#"{"rules": [{"commands": {"a": {"args": {"minLenght": 1}}}}]}"#,
            "at /rules/0/commands/a/args/minLenght: unknown keyword",
        ),
        (
            r#"{"rules": [{"commands": {"a": {"args": {"pattern": "(["}}}}]}"#,
            "at /rules/0/commands/a/args/pattern: bad regex",
        ),
        (
            r##"{"rules": [{"commands": {"a": {"args": {"$ref": "#/$defs/nope"}}}}]}"##,
            "at /rules/0/commands/a/args/$ref: `$ref` \"#/$defs/nope\" points nowhere",
        ),
        (
            r#"{"rules": [{"commands": {"a": {"args": {"$ref": "other.json"}}}}]}"#,
            "is not local",
        ),
        (
            r##"{"$defs": {"x": {"$ref": "#/$defs/y"}, "y": {"$ref": "#/$defs/x"}}}"##,
            "`$ref` cycle",
        ),
        (
            r#"{"rules": [{"commands": {"a": {"args": {"type": "text"}}}}]}"#,
            "at /rules/0/commands/a/args/type: unknown type",
        ),
        (
            r#"{"rules": [{"commands": {"a": {"args": {"maxLength": -1}}}}]}"#,
            "at /rules/0/commands/a/args/maxLength: `maxLength` must be a non-negative integer",
        ),
        (
            r#"{"rules": [{"commands": {"a": {"args": {"format": "email"}}}}]}"#,
            "at /rules/0/commands/a/args/format: unknown format",
        ),
        (
            r#"{"rules": [{"commands": {"a": {"args": {"format": "airlock-path"}}}}]}"#,
            "needs a `root`",
        ),
        (
            r#"{"rules": [{"commands": {"a": {"args": {"format": "airlock-path", "root": "rel"}}}}]}"#,
            "at /rules/0/commands/a/args/root: root \"rel\" must be an absolute",
        ),
        (
            r#"{"rules": [{"commands": {"a": {"args": {"items": [{}]}}}}]}"#,
            "prefixItems",
        ),
        (
            r#"{"$defs": {"bad": {"pattern": "\\"}}}"#,
            "at /$defs/bad/pattern: bad regex",
        ),
        (r#"{"reasons": "short"}"#, "at /reasons"),
        (r#"{"rules": [], "rules": []}"#, "duplicate key"),
        (r#"[]"#, "expected a JSON object"),
        (
            r#"{"rules": [{"commands": {"a": {"args": 3}}}]}"#,
            "at /rules/0/commands/a/args: a schema is an object or a boolean",
        ),
    ];
    for (config, want) in cases {
        let got = refusal(config);
        assert!(got.contains(want), "{config}: {got}");
    }
}

#[test]
fn globs_match_runs_and_single_characters() {
    assert!(config::glob("*", ""));
    assert!(config::glob("editor-*", "editor-"));
    assert!(config::glob("a*b*c", "axxbyyc"));
    assert!(!config::glob("a*b*c", "axxbyy"));
    assert!(config::glob("w?n", "win"));
    assert!(!config::glob("w?n", "wn"));
    assert!(!config::glob("main", "main2"));
}

/// What the fast reader reads (`Some`) must be what serde_json reads, value for value; `None`
/// leaves the text to serde_json.
fn agrees_with_serde_json(text: &str) -> bool {
    let fast = reader::read(text);
    let reference = json::parse_with_serde(text);
    if let Some(value) = &fast {
        assert_eq!(reference.as_ref().ok(), Some(value), "{text:?}");
    }
    fast.is_some()
}

#[test]
fn the_fast_reader_reads_plain_json_as_serde_json_does() {
    let plain = [
        "{}",
        "[]",
        " \t\r\n{ \"a\" : [ 1 , -2 , 0 , true , false , null ] } \n",
        r#"{"path":"notes.txt","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#,
        r#""a\"b\\c\/d\be\ff\ng\rh\ti\u00e9j\u20ack""#,
        r#""é€😀 plain, then an escape: \n""#,
        "123456789012345678",
        "-123456789012345678",
        r#"{"a":{"b":{"c":[[[]]]}}}"#,
        r#"{"$serde_json::private::Numbe":1}"#,
    ];
    for text in plain {
        assert!(agrees_with_serde_json(text), "not read: {text:?}");
    }
    for config in [
        include_str!("../../../../examples/allowlist.config.json"),
        include_str!("../../../../examples/allowlist.bench.config.json"),
        include_str!("../../../../examples/allowlist.bench-full.config.json"),
    ] {
        assert!(
            agrees_with_serde_json(config),
            "an example config is not read"
        );
    }
}

#[test]
fn the_fast_reader_leaves_everything_else_to_serde_json() {
    let unusual = [
        "",
        " ",
        "1.5",
        "1e3",
        "1E3",
        "-0",
        "01",
        "-",
        "1234567890123456789",
        "[1,]",
        r#"{"a":1,}"#,
        r#"{"a":1 "b":2}"#,
        r#"{"a" 1}"#,
        "{1:2}",
        r#"{"a":1,"a":2}"#,
        r#"{"a":{"b":1,"b":1}}"#,
        r#"{"$serde_json::private::Number":"1"}"#,
        "tru",
        "nul",
        "falsey",
        "[true false]",
        "1 2",
        "\"\u{1}\"",
        "\"a\nb\"",
        r#""\x""#,
        r#""\u12""#,
        r#""\u+123""#,
        r#""\uD800""#,
        r#""\uDC00""#,
        r#""\uD83D\uDE00""#,
        r#""unterminated"#,
        "[[[[",
        "]",
    ];
    for text in unusual {
        assert!(!agrees_with_serde_json(text), "read: {text:?}");
    }
    let keys = |n: usize, last: &str| {
        let members: Vec<String> = (0..n).map(|i| format!("\"k{i}\":{i}")).collect();
        format!("{{{},\"{last}\":0}}", members.join(","))
    };
    // Past the keys scanned one by one, repeats are found in the set: at its start and its end.
    for repeated in ["k0", "k15", "k16", "k39"] {
        let text = keys(40, repeated);
        assert!(!agrees_with_serde_json(&text), "read: {repeated}");
        let error = json::parse(&text).unwrap_err();
        assert!(
            error.contains(&format!("duplicate key \"{repeated}\"")),
            "{error}"
        );
    }
    assert!(agrees_with_serde_json(&keys(40, "k40")));
    let deep = format!("{}{}", "[".repeat(150), "]".repeat(150));
    assert!(!agrees_with_serde_json(&deep));
    let shallow = format!("{}{}", "[".repeat(90), "]".repeat(90));
    assert!(agrees_with_serde_json(&shallow));
}

#[test]
fn the_fast_reader_finds_quotes_backslashes_and_control_characters_at_every_offset() {
    for len in 0..40 {
        for (special, escaped) in [("\"", "\\\""), ("\\", "\\\\"), ("\u{1f}", "\\u001f")] {
            let text = format!("{}{special}{}", "a".repeat(len), "é".repeat(len % 5));
            // The raw character ends the string or is refused; its escape is part of it.
            agrees_with_serde_json(&format!("\"{text}\""));
            let written = format!("\"{}{escaped}{}\"", "a".repeat(len), "é".repeat(len % 5));
            assert!(agrees_with_serde_json(&written), "{written:?}");
            assert_eq!(
                reader::read(&written).as_ref().and_then(Json::as_str),
                Some(text.as_str())
            );
        }
    }
}

#[test]
fn the_fast_reader_agrees_with_serde_json_on_random_texts() {
    let pieces = [
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        " ",
        "\n",
        "\"k\"",
        "\"a\\\"b\"",
        "\"\\u00e9\"",
        "\"\\ud83d\"",
        "1",
        "-",
        "0",
        "7",
        ".",
        "e",
        "true",
        "null",
        "\"\u{7f}é\"",
        "\"x\u{1}\"",
        "\t",
        "\\",
        "\"",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut read = 0;
    for _ in 0..20_000 {
        let n = next() % 12 + 1;
        let text: String = (0..n)
            .map(|_| pieces[(next() % pieces.len() as u64) as usize])
            .collect();
        if agrees_with_serde_json(&text) {
            read += 1;
        }
    }
    assert!(read > 100, "only {read} texts read");
}

#[test]
fn args_with_escapes_or_fractions_are_checked_like_plain_ones() {
    let p = policy(FILES);
    assert_eq!(
        command(
            &p,
            "fs_read",
            "main",
            r#"{"path":"a\u002fb.txt","tags":[]}"#
        ),
        "pass"
    );
    let got = command(&p, "fs_read", "main", r#"{"path":"\u002e\u002e/x"}"#);
    assert!(got.contains(r#"at "/path" fails `format`"#), "{got}");
    let got = command(
        &p,
        "fs_read",
        "main",
        r#"{"path":"a","t\u0061gs":["a","b","c"]}"#,
    );
    assert!(got.contains(r#"at "/tags" fails `maxItems`"#), "{got}");
    // Numbers with a fraction or an exponent are read by serde_json, then checked the same way.
    let event = |body: &str| {
        verdict(
            &p,
            &message(Kind::Event, "saved", "main", "tauri://localhost", body),
        )
    };
    assert_eq!(event(r#"{"n":3.0}"#), "pass");
    assert!(event(r#"{"n":1e1}"#).contains(r#"at "/n" fails `maximum`"#));
    assert!(event(r#"{"n":-0.0,"n":1}"#).contains("duplicate key"));
}

#[test]
fn globs_match_characters_not_bytes() {
    assert!(config::glob("w?n", "wén"));
    assert!(config::glob("é*", "éditeur"));
    assert!(config::glob("*r", "éditeur"));
    assert!(config::glob("*?*", "é"));
    assert!(!config::glob("??", "é"));
    assert!(config::glob("a*é*z", "aééz"));
    assert!(!config::glob("a*é*z", "aeez"));
    assert!(config::glob("**", ""));
}
