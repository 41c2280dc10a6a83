//! allowlist: which commands, events and channels each window and origin may use, and what
//! their args and payloads may hold (a JSON Schema subset, with path-guard's rules as the
//! `airlock-path` format). The config format, with a full example, is in
//! `guest-hooks/allowlist/README.md`.
//!
//! A message is looked up in the rules whose `windows`/`webviews` and `origins` match its source:
//! commands in `commands`, events in `emit`, channel chunks in `channels`, and Tauri's
//! `plugin:event|emit`/`emit_to` (by their `event` arg) in `emit`, `plugin:event|listen`/`unlisten`
//! in `listen`. Among every entry naming it (exactly, or by a `*` prefix): none → `not-allowed`;
//! any `false` → `not-allowed` (a deny wins, as in Tauri's capabilities); otherwise the args or
//! payload must match the schema of every entry that has one, or the message is rejected with
//! `invalid-args` and a reason naming the JSON pointer and the keyword that failed. With
//! `"reasons": "code"` the reason is empty. A bad config is refused at load, with the JSON
//! pointer of the problem.

use airlock_hook::{Body, Guest, Kind, Message, Settings, Verdict, reject};

mod config;
mod json;
mod reader;
mod schema;

use json::Json;

use config::{Policy, Reasons, Table};

/// Refused: nothing allows the name for this source, or something denies it.
pub const NOT_ALLOWED: &str = "not-allowed";
/// Refused: the args or payload do not match the schema.
pub const INVALID_ARGS: &str = "invalid-args";

/// Tauri's frontend event commands, judged by `emit` and `listen` rather than `commands`.
const TAURI_EMIT: &[&str] = &["plugin:event|emit", "plugin:event|emit_to"];
const TAURI_LISTEN: &[&str] = &["plugin:event|listen", "plugin:event|unlisten"];

/// The config read by `configure`; `None` before it ran (then everything is refused). It borrows
/// from the config's text, which is kept for the instance's life.
static POLICY: Settings<Option<Policy<'static>>> = Settings::new();

struct Allowlist;

impl Guest for Allowlist {
    fn configure(config: String) -> Result<(), String> {
        // An instance is configured once (per message, with fresh instances): keeping the text
        // for its life costs nothing, and lets the policy borrow its names from it.
        let config: &'static str = config.leak();
        POLICY.set(Some(config::read(config)?));
        Ok(())
    }

    fn inspect(message: Message) -> Verdict {
        POLICY.with(|policy| match policy {
            Some(policy) => inspect(policy, &message),
            None => reject(NOT_ALLOWED, "the allowlist was not configured"),
        })
    }
}

airlock_hook::export_hook!(Allowlist);

/// The verdict on one message.
fn inspect(policy: &Policy, message: &Message) -> Verdict {
    match judge(policy, message) {
        Ok(()) => Verdict::Pass,
        Err((code, reason)) => match policy.reasons {
            Reasons::Full => reject(code, reason),
            Reasons::Code => reject(code, ""),
        },
    }
}

type Refusal = (&'static str, String);

fn judge(policy: &Policy, message: &Message) -> Result<(), Refusal> {
    let name = message.name.as_str();
    let tauri_emit = message.kind == Kind::Command && TAURI_EMIT.contains(&name);
    let tauri_listen = message.kind == Kind::Command && TAURI_LISTEN.contains(&name);
    if tauri_emit || tauri_listen {
        // The event's name and payload are args of the command.
        let args = args(message, name)?;
        let Some(event) = args.get("event").and_then(Json::as_str) else {
            return Err(invalid(
                "args",
                name,
                "/event",
                "type",
                "expected the event name, a string",
            ));
        };
        let table = if tauri_emit {
            Table::Emit
        } else {
            Table::Listen
        };
        let schemas = allowed(policy, message, table, event)?;
        if schemas.is_empty() {
            return Ok(());
        }
        let null = Json::Null;
        let payload = args.get("payload").unwrap_or(&null);
        return check(policy, &schemas, payload, "/payload", "payload", event);
    }
    let table = match message.kind {
        Kind::Command => Table::Commands,
        Kind::Event => Table::Emit,
        Kind::Channel => Table::Channels,
    };
    let schemas = allowed(policy, message, table, name)?;
    if schemas.is_empty() {
        return Ok(());
    }
    let body = args(message, name)?;
    let noun = if table == Table::Commands {
        "args"
    } else {
        "payload"
    };
    check(policy, &schemas, &body, "", noun, name)
}

/// The schemas an allowed name must meet (empty: any args), or why it is not allowed.
fn allowed(
    policy: &Policy,
    message: &Message,
    table: Table,
    name: &str,
) -> Result<Vec<schema::SchemaId>, Refusal> {
    let source = &message.source;
    let mut schemas = Vec::new();
    let mut any = false;
    for rule in &policy.rules {
        if !rule.applies(&source.window, &source.webview, &source.origin) {
            continue;
        }
        for entry in rule.tables[table as usize]
            .iter()
            .filter(|e| e.matches(name))
        {
            match entry.allow {
                None => {
                    let what = what(table);
                    return Err((
                        NOT_ALLOWED,
                        format!(
                            "{what} `{name}` is denied by {} for {}",
                            entry.pointer(),
                            from(message)
                        ),
                    ));
                }
                Some(schema) => {
                    any = true;
                    schemas.extend(schema);
                }
            }
        }
    }
    if !any {
        let what = what(table);
        return Err((
            NOT_ALLOWED,
            format!("{what} `{name}` is not allowed for {}", from(message)),
        ));
    }
    Ok(schemas)
}

fn what(table: Table) -> &'static str {
    match table {
        Table::Commands => "command",
        Table::Emit => "event",
        Table::Listen => "listening to event",
        Table::Channels => "channel",
    }
}

fn from(message: &Message) -> String {
    let s = &message.source;
    format!(
        "window {:?} (webview {:?}) at origin {:?}",
        s.window, s.webview, s.origin
    )
}

/// The body as JSON (duplicate keys refused).
fn args<'m>(message: &'m Message, name: &str) -> Result<Json<'m>, Refusal> {
    match &message.body {
        Body::Json(text) => {
            json::parse(text).map_err(|e| (INVALID_ARGS, format!("args of `{name}`: {e}")))
        }
        Body::Bytes(_) => Err(invalid(
            "body",
            name,
            "",
            "type",
            "expected JSON, got a bytes body",
        )),
    }
}

fn check(
    policy: &Policy,
    schemas: &[schema::SchemaId],
    value: &Json,
    at: &str,
    noun: &str,
    name: &str,
) -> Result<(), Refusal> {
    for id in schemas {
        if let Err(failure) = policy.schemas.check(*id, value) {
            return Err(invalid(
                noun,
                name,
                &format!("{at}{}", failure.pointer),
                failure.keyword,
                &failure.detail,
            ));
        }
    }
    Ok(())
}

fn invalid(noun: &str, name: &str, pointer: &str, keyword: &str, detail: &str) -> Refusal {
    (
        INVALID_ARGS,
        format!("{noun} of `{name}` at {pointer:?} fails `{keyword}`: {detail}"),
    )
}

#[cfg(test)]
mod tests;
