//! Tables of cases for a hook: the format of `airlock test` and of the project's own conformance
//! suite (`tests/conformance/<policy>.jsonl`), and the runner both use.
//!
//! A cases file holds one case a line (blank lines and lines starting with `#` are skipped):
//!
//! ```json
//! {"case": "what it checks", "config": {"root": "/srv"}, "message": {"kind": "command", "name": "fs_read", "payload": {"path": "a"}}, "expect": "pass"}
//! {"case": "…", "message": {…}, "expect": {"reject": "path-escape"}}
//! {"case": "…", "message": {…}, "expect": {"replace": {"payload": {…}}}}
//! {"case": "…", "config": {"rot": "/x"}, "expect": "config-refused"}
//! ```
//!
//! `message` is a line of `airlock inspect` (see `airlock::jsonl`), kept as written (duplicate
//! keys included). `config` is the hook's JSON config; when absent, the runner's default (`{}`, or
//! `airlock test --config`). A `replace` names what changed (`payload`, `bytes`, `name`,
//! `headers`); everything else must arrive as it was sent. Bodies compare as JSON values with key
//! order kept (numbers by value, not spelling). Reasons are never compared: each language words
//! them its own way. Every message goes through a gateway (its checks, the hook, the seal) in
//! front of a core that echoes what it received.
mod json;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::de;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use airlock::{
    Decision, Gateway, GatewayLimits, Hook, HookEngine, HookError, HookOptions, Response, Router,
    SealConfig, jsonl,
};

pub use json::diff_messages;
use json::{Members, changes, diff, ordered, same_message, wanted};
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseIn {
    case: String,
    /// `Some` even for an explicit `null`, which is a config like any other (a bad one).
    #[serde(default, deserialize_with = "present")]
    config: Option<Box<RawValue>>,
    #[serde(default)]
    message: Option<Box<RawValue>>,
    expect: ExpectIn,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ExpectIn {
    Pass,
    ConfigRefused,
    Reject(String),
    Replace(BTreeMap<String, Box<RawValue>>),
}

impl From<ExpectIn> for Expect {
    fn from(e: ExpectIn) -> Expect {
        match e {
            ExpectIn::Pass => Expect::Pass,
            ExpectIn::ConfigRefused => Expect::ConfigRefused,
            ExpectIn::Reject(code) => Expect::Reject(code),
            ExpectIn::Replace(changes) => Expect::Replace(
                changes
                    .into_iter()
                    .map(|(k, v)| (k, v.get().to_owned()))
                    .collect(),
            ),
        }
    }
}

fn present<'de, D: de::Deserializer<'de>>(d: D) -> Result<Option<Box<RawValue>>, D::Error> {
    Box::<RawValue>::deserialize(d).map(Some)
}

/// What a case expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Delivered exactly as sent.
    Pass,
    /// The hook refuses its config (it does not load).
    ConfigRefused,
    /// Rejected with this code.
    Reject(String),
    /// Delivered with these fields changed (`payload`, `bytes`, `name`, `headers`), each the
    /// JSON text of its new value.
    Replace(BTreeMap<String, String>),
}

impl Expect {
    /// The expectation as a cases file writes it.
    pub fn to_json(&self) -> String {
        match self {
            Expect::Pass => "\"pass\"".to_owned(),
            Expect::ConfigRefused => "\"config-refused\"".to_owned(),
            Expect::Reject(code) => format!("{{\"reject\":{}}}", serde_json::Value::from(&**code)),
            Expect::Replace(changes) => {
                let members: Vec<String> = changes
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", serde_json::Value::from(&**k)))
                    .collect();
                format!("{{\"replace\":{{{}}}}}", members.join(","))
            }
        }
    }
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
                    write!(f, " {key}={value}")?;
                }
                Ok(())
            }
        }
    }
}

/// One case and the line it sits on.
#[derive(Debug, Clone)]
pub struct Case {
    /// Line number in its file, from 1.
    pub line: usize,
    /// What it checks.
    pub name: String,
    /// Its own config (JSON text), if it has one.
    pub config: Option<String>,
    /// The message (an `airlock inspect` line), absent for `config-refused` cases.
    pub message: Option<String>,
    /// What should happen.
    pub expect: Expect,
}

/// A cases file: its path, its text a line at a time, and its cases.
#[derive(Debug, Clone)]
pub struct CaseFile {
    /// Where it was read from.
    pub path: PathBuf,
    lines: Vec<String>,
    /// Its cases, in order.
    pub cases: Vec<Case>,
}

impl CaseFile {
    /// Reads and checks a cases file; errors name the file and line.
    pub fn read(path: &Path) -> anyhow::Result<CaseFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read cases {}", path.display()))?;
        CaseFile::parse(path, &text)
    }

    /// Reads cases from `text`; `path` names it in errors.
    pub fn parse(path: &Path, text: &str) -> anyhow::Result<CaseFile> {
        let mut cases = Vec::new();
        for (i, l) in text.lines().enumerate() {
            let at = || format!("{}:{}", path.display(), i + 1);
            if l.trim().is_empty() || l.trim_start().starts_with('#') {
                continue;
            }
            let case: CaseIn = serde_json::from_str(l).with_context(|| {
                format!(
                    "{}: not a case (expected {{\"case\", \"message\", \"expect\"}})",
                    at()
                )
            })?;
            let expect = Expect::from(case.expect);
            let needs_message = !matches!(expect, Expect::ConfigRefused);
            if case.message.is_some() != needs_message {
                bail!(
                    "{}: a case has a `message` unless it expects `config-refused`",
                    at()
                );
            }
            if let Some(message) = &case.message {
                jsonl::parse_line(message.get())
                    .map_err(|e| anyhow::anyhow!("{}: bad message: {e}", at()))?;
            }
            if let Expect::Replace(changes) = &expect {
                if changes.is_empty() {
                    bail!("{}: a `replace` names at least one changed field", at());
                }
                if let Some(bad) = changes.keys().find(|k| !CHANGEABLE.contains(&k.as_str())) {
                    bail!(
                        "{}: a `replace` cannot change {bad:?}: only {}",
                        at(),
                        CHANGEABLE.join(", ")
                    );
                }
            }
            cases.push(Case {
                line: i + 1,
                name: case.case,
                config: case.config.map(|c| c.get().to_owned()),
                message: case.message.map(|m| m.get().to_owned()),
                expect,
            });
        }
        if cases.is_empty() {
            bail!("{} has no cases", path.display());
        }
        Ok(CaseFile {
            path: path.to_path_buf(),
            lines: text.lines().map(str::to_owned).collect(),
            cases,
        })
    }

    /// The file's text with each case's `expect` replaced by what `results` say the hook does
    /// now (`BLESS=1`, `airlock test --bless`); everything else is kept. Errors name a case whose
    /// outcome cannot be an expectation (a hook that did not load for another reason).
    pub fn blessed(&self, results: &[CaseResult]) -> anyhow::Result<String> {
        let mut lines = self.lines.clone();
        for result in results {
            let Some(expect) = result.got.as_expect() else {
                bail!(
                    "{}:{} ({}): cannot bless {}",
                    self.path.display(),
                    result.line,
                    result.name,
                    result.got
                );
            };
            let line = &mut lines[result.line - 1];
            let mut members: Vec<(String, Box<RawValue>)> =
                serde_json::from_str::<Members>(line)?.0;
            for (key, value) in &mut members {
                if key == "expect" {
                    *value = RawValue::from_string(expect.to_json())?;
                }
            }
            let members: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{}:{}", serde_json::Value::from(&**k), v.get()))
                .collect();
            *line = format!("{{{}}}", members.join(","));
        }
        let mut text = lines.join("\n");
        text.push('\n');
        Ok(text)
    }
}

/// The fields a `replace` case may name.
const CHANGEABLE: &[&str] = &["payload", "bytes", "name", "headers"];

/// What the hook did with a case.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    /// Delivered unchanged.
    Pass,
    /// Passed but delivered something else than was sent (a gateway that changed it).
    PassChanged {
        /// The message line delivered.
        delivered: String,
    },
    /// Delivered with changes.
    Replace {
        /// The message line delivered.
        delivered: String,
        /// The fields that changed, each with its new value's JSON text.
        changes: BTreeMap<String, String>,
    },
    /// Rejected (by the gateway's checks or the hook).
    Reject {
        /// Its code.
        code: String,
        /// Its reason.
        reason: String,
    },
    /// The hook refused its config.
    ConfigRefused(String),
    /// The hook did not load for another reason.
    LoadFailed(String),
}

impl Got {
    /// The expectation that this outcome meets, if it can be one.
    pub fn as_expect(&self) -> Option<Expect> {
        match self {
            Got::Pass => Some(Expect::Pass),
            Got::Replace { changes, .. } => Some(Expect::Replace(changes.clone())),
            Got::Reject { code, .. } => Some(Expect::Reject(code.clone())),
            Got::ConfigRefused(_) => Some(Expect::ConfigRefused),
            Got::PassChanged { .. } | Got::LoadFailed(_) => None,
        }
    }
}

impl fmt::Display for Got {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Got::Pass => f.write_str("pass"),
            Got::PassChanged { delivered } => write!(f, "pass, but delivered {delivered}"),
            Got::Replace { delivered, .. } => write!(f, "replace, delivered {delivered}"),
            Got::Reject { code, reason } => write!(f, "reject {code} ({reason})"),
            Got::ConfigRefused(e) => write!(f, "config refused ({e})"),
            Got::LoadFailed(e) => write!(f, "the hook did not load: {e}"),
        }
    }
}

/// One case's result.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's line.
    pub line: usize,
    /// The case's name.
    pub name: String,
    /// The config it ran with.
    pub config: String,
    /// What it expected.
    pub expect: Expect,
    /// What happened.
    pub got: Got,
    /// Whether that is what it expected.
    pub ok: bool,
    /// For a failing `replace` case that delivered a message: the fields of the expected and the
    /// delivered message that differ, a line each (`-` expected, `+` delivered).
    pub diff: Option<String>,
}

/// Runs every case of `file` against the hook `bytes`, loaded with `options` (its limits and
/// mode; its config is each case's own, else `default_config`), through a gateway with `limits`.
/// Results come in file order.
pub fn run(
    engine: &HookEngine,
    bytes: &[u8],
    options: &HookOptions,
    default_config: &str,
    limits: GatewayLimits,
    file: &CaseFile,
) -> Vec<CaseResult> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts");
    let config_of = |case: &Case| {
        case.config
            .clone()
            .unwrap_or_else(|| default_config.to_owned())
    };
    let mut configs: Vec<String> = file.cases.iter().map(config_of).collect();
    configs.sort_unstable();
    configs.dedup();
    let mut results = Vec::new();
    for config in configs {
        let loaded = Hook::load(engine, bytes, options.clone().with_config(config.clone()));
        let gateway = match loaded {
            Ok(hook) => Ok(Gateway::with_config(
                hook,
                echo_router(),
                limits,
                SealConfig::default(),
            )),
            Err(HookError::ConfigRefused(e)) => Err(Got::ConfigRefused(e)),
            Err(e) => Err(Got::LoadFailed(format!("{e:#}"))),
        };
        for case in file.cases.iter().filter(|c| config_of(c) == config) {
            let (got, sent) = match (&gateway, &case.message) {
                (Err(got), _) => (got.clone(), None),
                (Ok(Err(e)), _) => (Got::LoadFailed(format!("no gateway: {e}")), None),
                (Ok(Ok(_)), None) => (Got::LoadFailed("config accepted".to_owned()), None),
                (Ok(Ok(gateway)), Some(line)) => {
                    let (got, sent) = runtime.block_on(send(gateway, line));
                    (got, Some(sent))
                }
            };
            let ok = meets(&case.expect, &got, sent.as_deref());
            let diff = match (&case.expect, &got, &sent, ok) {
                (Expect::Replace(changes), Got::Replace { delivered, .. }, Some(sent), false)
                | (Expect::Replace(changes), Got::PassChanged { delivered }, Some(sent), false) => {
                    Some(diff(&wanted(sent, changes), &ordered(delivered)))
                }
                (Expect::Replace(changes), Got::Pass, Some(sent), false) => {
                    Some(diff(&wanted(sent, changes), &ordered(sent)))
                }
                _ => None,
            };
            let got = match (&case.expect, got) {
                // A config-refused case whose config was accepted.
                (Expect::ConfigRefused, Got::LoadFailed(e)) if e == "config accepted" => {
                    Got::LoadFailed("its config was accepted".to_owned())
                }
                (_, got) => got,
            };
            results.push(CaseResult {
                line: case.line,
                name: case.name.clone(),
                config: config.clone(),
                expect: case.expect.clone(),
                got,
                ok,
                diff,
            });
        }
    }
    results.sort_by_key(|r| r.line);
    results
}

/// A router whose fallback answers every message with the message itself, in the JSON Lines
/// shape: what the core decoded from the envelope.
pub fn echo_router() -> Router {
    Router::new().fallback(|message| async move {
        jsonl::message_line(&message)
            .map(Response::Json)
            .map_err(|e| airlock::CoreError::Handler {
                name: message.name.clone(),
                message: format!("cannot write the delivered message: {e}"),
            })
    })
}

/// Sends one case's message; returns what happened and the message line as sent.
async fn send(gateway: &Gateway, line: &str) -> (Got, String) {
    let (source, request) = jsonl::parse_line(line).expect("checked when the file was read");
    let sent = jsonl::request_line(&source, &request)
        .expect("a parsed message serializes")
        .get()
        .to_owned();
    let reply = gateway.handle(source, request).await;
    let got = match (reply.outcome, reply.decision) {
        (Err(rejection), _) => Got::Reject {
            code: rejection.code,
            reason: rejection.reason,
        },
        (Ok(Response::Json(raw)), Decision::Pass) if ordered(raw.get()) == ordered(&sent) => {
            Got::Pass
        }
        (Ok(Response::Json(raw)), Decision::Pass) => Got::PassChanged {
            delivered: raw.get().to_owned(),
        },
        (Ok(Response::Json(raw)), _) => Got::Replace {
            changes: changes(&sent, raw.get()),
            delivered: raw.get().to_owned(),
        },
        (Ok(other), _) => Got::LoadFailed(format!("the echo core answered {other:?}")),
    };
    (got, sent)
}

/// Whether `got` is what `expect` asks for.
fn meets(expect: &Expect, got: &Got, sent: Option<&str>) -> bool {
    match (expect, got) {
        (Expect::Pass, Got::Pass) => true,
        (Expect::Reject(code), Got::Reject { code: got, .. }) => code == got,
        (Expect::ConfigRefused, Got::ConfigRefused(_)) => true,
        (Expect::Replace(changes), Got::Replace { delivered, .. }) => {
            let sent = sent.expect("a replace case has a message");
            same_message(&ordered(delivered), &wanted(sent, changes))
        }
        _ => false,
    }
}

/// One case's result as `airlock test --json` prints it.
#[derive(Debug, Serialize)]
pub struct JsonResult<'a> {
    /// The file.
    pub file: String,
    /// The line.
    pub line: usize,
    /// The case's name.
    pub case: &'a str,
    /// Whether it passed.
    pub ok: bool,
    /// The expectation, as the file writes it.
    pub expected: serde_json::Value,
    /// What happened, as an expectation would write it (`null` when it cannot be one).
    pub got: serde_json::Value,
    /// What happened, in words (with the reason of a rejection).
    pub got_text: String,
    /// The expected/delivered difference of a failing `replace`.
    pub diff: Option<&'a str>,
}

impl CaseResult {
    /// This result for `--json`.
    pub fn to_json<'a>(&'a self, file: &Path) -> JsonResult<'a> {
        let parse = |text: String| serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        JsonResult {
            file: file.display().to_string(),
            line: self.line,
            case: &self.name,
            ok: self.ok,
            expected: parse(self.expect.to_json()),
            got: self
                .got
                .as_expect()
                .map_or(serde_json::Value::Null, |e| parse(e.to_json())),
            got_text: self.got.to_string(),
            diff: self.diff.as_deref(),
        }
    }
}
