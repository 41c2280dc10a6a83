//! One table of messages and expected verdicts per policy (`tests/conformance/<policy>.jsonl`),
//! run against every language's build of that policy, in fresh and in reuse mode.
//!
//! A table holds one case a line (blank lines and lines starting with `#` are skipped):
//!
//! ```json
//! {"case": "what it checks", "config": {"root": "/srv"}, "message": {"kind": "command", "name": "fs_read", "payload": {"path": "a"}}, "expect": "pass"}
//! {"case": "…", "message": {…}, "expect": {"reject": "path-escape"}}
//! {"case": "…", "message": {…}, "expect": {"replace": {"payload": {…}}}}
//! {"case": "…", "config": {"rot": "/x"}, "expect": "config-refused"}
//! ```
//!
//! `message` is a line of `airlock inspect` (see `airlock::jsonl`), kept as written (duplicate
//! keys included). `config` is the hook's JSON config (`{}` when absent). A `replace` names what
//! changed (`payload`, `bytes`, `name`, `headers`); everything else must arrive as it was sent.
//! Bodies compare as JSON values with key order kept (numbers by value, not spelling). Reasons
//! are never compared: each language words them its own way.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use airlock::{Decision, Hook, HookError, HookOptions, InstanceMode, Response, jsonl};
use airlock_tests::{echo_gateway, engine, root, send};
use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// Where each policy is implemented; every one of these builds must give the table's verdicts.
const LANGUAGES: &[(&str, &[&str])] = &[
    ("path-guard", &["rust", "python", "js", "c"]),
    ("redact", &["rust", "python", "js", "c"]),
    ("origin-allow", &["rust", "wat"]),
    ("rate-limit", &["rust"]),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    case: String,
    /// `Some` even for an explicit `null`, which is a config like any other (a bad one).
    #[serde(default, deserialize_with = "present")]
    config: Option<Box<RawValue>>,
    #[serde(default)]
    message: Option<Box<RawValue>>,
    expect: Expect,
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "kebab-case")]
enum Expect {
    Pass,
    ConfigRefused,
    Reject(String),
    Replace(BTreeMap<String, Box<RawValue>>),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Expect::Pass => f.write_str("pass"),
            Expect::ConfigRefused => f.write_str("config refused"),
            Expect::Reject(code) => write!(f, "reject {code}"),
            Expect::Replace(changes) => {
                f.write_str("replace")?;
                for (key, value) in changes {
                    write!(f, " {key}={}", value.get())?;
                }
                Ok(())
            }
        }
    }
}

fn present<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// A table case and the line it sits on.
struct Row {
    line: usize,
    case: Case,
    config: String,
}

fn table(policy: &str) -> Vec<Row> {
    let path = root().join(format!("tests/conformance/{policy}.jsonl"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let rows: Vec<Row> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| {
            let case: Case = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), i + 1));
            let config = case
                .config
                .as_ref()
                .map_or_else(|| "{}".to_owned(), |c| c.get().to_owned());
            let needs_message = !matches!(case.expect, Expect::ConfigRefused);
            assert_eq!(
                case.message.is_some(),
                needs_message,
                "{}:{}: a case has a `message` unless it expects `config-refused`",
                path.display(),
                i + 1
            );
            Row {
                line: i + 1,
                case,
                config,
            }
        })
        .collect();
    assert!(!rows.is_empty(), "{} has no cases", path.display());
    rows
}

/// The build of `policy` in `lang`, or a failure naming the file and the command that makes it.
fn build(policy: &str, lang: &str) -> Vec<u8> {
    let path: PathBuf = root().join(format!("target/hooks/{policy}.{lang}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        let command = match lang {
            "rust" => "scripts/build-hooks".to_owned(),
            _ => format!("scripts/toolchains/{lang} && scripts/build-hooks"),
        };
        panic!(
            "the {lang} build of {policy} is missing: cannot read {}: {e}\n\
             install its toolchain and build it with: {command}",
            path.display()
        )
    })
}

/// Runs the policy's table against one language's build in fresh and reuse mode; fails once
/// with every mismatch.
fn check(policy: &str, lang: &str) {
    assert!(
        LANGUAGES
            .iter()
            .any(|(p, langs)| *p == policy && langs.contains(&lang)),
        "{policy} in {lang} is not in LANGUAGES"
    );
    let rows = table(policy);
    let bytes = build(policy, lang);
    let mut mismatches = Vec::new();
    let mut configs: Vec<&str> = rows.iter().map(|r| r.config.as_str()).collect();
    configs.sort_unstable();
    configs.dedup();
    for (mode_name, mode) in [
        ("fresh", InstanceMode::Fresh),
        ("reuse", InstanceMode::Reuse { max_idle: 1 }),
    ] {
        for config in &configs {
            let refusals_only = rows
                .iter()
                .filter(|r| r.config == *config)
                .all(|r| matches!(r.case.expect, Expect::ConfigRefused));
            if refusals_only && matches!(mode, InstanceMode::Reuse { .. }) {
                // `configure` runs the same way in both modes; each load compiles the hook
                // (seconds for the Python and JavaScript runtimes), so check refusals once.
                continue;
            }
            let options = HookOptions::default()
                .with_config((*config).to_owned())
                .with_mode(mode);
            // Stateful policies (rate-limit) start each config and mode with no state.
            engine().state().clear(&options.name);
            let loaded = Hook::load(engine(), &bytes, options);
            let gateway = match &loaded {
                Ok(hook) => Some(echo_gateway(hook.clone())),
                Err(_) => None,
            };
            for row in rows.iter().filter(|r| r.config == *config) {
                let mut mismatch = |got: String| {
                    mismatches.push(format!(
                        "  {lang} ({mode_name}) line {} ({}): config {config}: expected {}, got {got}",
                        row.line, row.case.case, row.case.expect
                    ));
                };
                match (&loaded, &gateway, &row.case.message) {
                    (Err(HookError::ConfigRefused(_)), _, _)
                        if matches!(row.case.expect, Expect::ConfigRefused) => {}
                    (Err(e), _, _) => mismatch(format!("the hook did not load: {e}")),
                    (Ok(_), _, _) if matches!(row.case.expect, Expect::ConfigRefused) => {
                        mismatch("config accepted".to_owned())
                    }
                    (Ok(_), Some(gateway), Some(message)) => {
                        if let Err(got) = verdict(gateway, message.get(), &row.case.expect) {
                            mismatch(got);
                        }
                    }
                    (Ok(_), _, None) => unreachable!("checked when the table was read"),
                    (Ok(_), None, _) => unreachable!("a loaded hook has a gateway"),
                }
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{policy} in {lang} disagrees with tests/conformance/{policy}.jsonl in {} case(s):\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Sends one message; `Err` describes what happened when it is not what the case expects.
fn verdict(gateway: &airlock::Gateway, line: &str, expect: &Expect) -> Result<(), String> {
    let (source, request) = jsonl::parse_line(line).map_err(|e| format!("bad message: {e}"))?;
    let sent = jsonl::request_line(&source, &request).expect("request serializes");
    let reply = send(gateway, line);
    let delivered = match &reply.outcome {
        Ok(Response::Json(raw)) => Some(ordered(raw.get())),
        _ => None,
    };
    let got = match (&reply.outcome, reply.decision) {
        (Err(rejection), _) => format!("reject {} ({})", rejection.code, rejection.reason),
        (Ok(_), Decision::Pass) => "pass".to_owned(),
        (Ok(_), _) => format!(
            "replace, delivered {}",
            delivered.as_ref().map_or("?".to_owned(), Json::to_string)
        ),
    };
    let ok = match expect {
        Expect::Pass => reply.decision == Decision::Pass && delivered == Some(ordered(sent.get())),
        Expect::Reject(code) => reply.outcome.as_ref().err().map(|r| &r.code) == Some(code),
        Expect::Replace(changes) => {
            let mut wanted = ordered(sent.get());
            let Json::Obj(fields) = &mut wanted else {
                unreachable!("a message line is an object")
            };
            if changes.contains_key("payload") || changes.contains_key("bytes") {
                fields.retain(|(k, _)| k != "payload" && k != "bytes");
            }
            for (key, value) in changes {
                let value = ordered(value.get());
                match fields.iter_mut().find(|(k, _)| k == key) {
                    Some((_, slot)) => *slot = value,
                    None => fields.push((key.clone(), value)),
                }
            }
            reply.decision == Decision::Replace
                && delivered.as_ref().is_some_and(|d| same_message(d, &wanted))
        }
        Expect::ConfigRefused => false,
    };
    match ok {
        true => Ok(()),
        false => Err(got),
    }
}

/// Two message lines are the same when every field is, whatever order the fields come in
/// (inside the payload, order counts).
fn same_message(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Obj(a), Json::Obj(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.iter().any(|(k2, v2)| k == k2 && v == v2))
        }
        _ => false,
    }
}

/// JSON with object members kept in order.
#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl PartialEq for Json {
    fn eq(&self, other: &Json) -> bool {
        use Json::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Int(a), Int(b)) => a == b,
            // 1.0 and 1 are one number to JSON; languages spell it either way.
            (Int(a), Float(b)) | (Float(b), Int(a)) => *a as f64 == *b,
            (Float(a), Float(b)) => a == b,
            (Str(a), Str(b)) => a == b,
            (Arr(a), Arr(b)) => a == b,
            (Obj(a), Obj(b)) => a == b,
            _ => false,
        }
    }
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Int(n) => write!(f, "{n}"),
            Json::Float(n) => write!(f, "{n}"),
            Json::Str(s) => write!(f, "{}", serde_json::Value::from(s.as_str())),
            Json::Arr(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Json::Obj(members) => {
                f.write_str("{")?;
                for (i, (key, value)) in members.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{}:{value}", serde_json::Value::from(key.as_str()))?;
                }
                f.write_str("}")
            }
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
                Ok(Json::Bool(b))
            }
            fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Int(n.into()))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
                Ok(Json::Int(n.into()))
            }
            fn visit_f64<E>(self, n: f64) -> Result<Json, E> {
                Ok(Json::Float(n))
            }
            fn visit_str<E>(self, s: &str) -> Result<Json, E> {
                Ok(Json::Str(s.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Arr(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Json::Obj(members))
            }
        }
        d.deserialize_any(V)
    }
}

fn ordered(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

#[test]
fn every_table_case_is_well_formed_and_every_policy_has_a_table() {
    for (policy, _) in LANGUAGES {
        let rows = table(policy);
        for row in &rows {
            if let Some(message) = &row.case.message {
                jsonl::parse_line(message.get()).unwrap_or_else(|e| {
                    panic!("tests/conformance/{policy}.jsonl:{}: {e}", row.line)
                });
            }
        }
    }
}

#[test]
fn path_guard_in_rust_gives_the_table_s_verdicts() {
    check("path-guard", "rust");
}

#[test]
fn path_guard_in_python_gives_the_table_s_verdicts() {
    check("path-guard", "python");
}

#[test]
fn path_guard_in_js_gives_the_table_s_verdicts() {
    check("path-guard", "js");
}

#[test]
fn path_guard_in_c_gives_the_table_s_verdicts() {
    check("path-guard", "c");
}

#[test]
fn redact_in_rust_gives_the_table_s_verdicts() {
    check("redact", "rust");
}

#[test]
fn redact_in_python_gives_the_table_s_verdicts() {
    check("redact", "python");
}

#[test]
fn redact_in_js_gives_the_table_s_verdicts() {
    check("redact", "js");
}

#[test]
fn redact_in_c_gives_the_table_s_verdicts() {
    check("redact", "c");
}

#[test]
fn origin_allow_in_rust_gives_the_table_s_verdicts() {
    check("origin-allow", "rust");
}

#[test]
fn origin_allow_in_wat_gives_the_table_s_verdicts() {
    check("origin-allow", "wat");
}

#[test]
fn every_language_in_the_list_has_a_test() {
    // The test functions above are written out so a failure names the language; this keeps
    // them and LANGUAGES in step.
    let source = include_str!("conformance.rs");
    for (policy, langs) in LANGUAGES {
        for lang in *langs {
            let name = format!(
                "fn {}_in_{lang}_gives_the_table_s_verdicts()",
                policy.replace('-', "_")
            );
            assert!(source.contains(&name), "no test `{name}`");
        }
    }
}

#[test]
fn rate_limit_in_rust_gives_the_table_s_verdicts() {
    check("rate-limit", "rust");
}
