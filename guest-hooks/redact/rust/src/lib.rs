//! redact: removes secret fields from events.
//!
//! Config (all optional): `{"fields": ["password", "token", "secret"], "case_sensitive": false}`.
//! For an event with a JSON body, every object member whose key is one of `fields` (compared
//! ignoring ASCII case unless `case_sensitive`) is removed, at any depth, inside arrays too, and
//! the rest is forwarded as `replace` with key order and number spelling kept. An event with
//! nothing to remove passes untouched (nothing is copied back); so do commands, channels and
//! bytes bodies. A JSON body the hook cannot parse is rejected (`redact-failed`): it could not be
//! checked, so it does not pass.

use airlock_hook::{
    Guest, Kind, Message, Settings, Verdict, json_body, parse_config, reject, replace_json_body,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    fields: Vec<String>,
    case_sensitive: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fields: ["password", "token", "secret"].map(String::from).to_vec(),
            case_sensitive: false,
        }
    }
}

static CONFIG: Settings<Config> = Settings::new();

struct Redact;

impl Guest for Redact {
    fn configure(config: String) -> Result<(), String> {
        CONFIG.set(parse_config(&config)?);
        Ok(())
    }

    fn inspect(message: Message) -> Verdict {
        if message.kind != Kind::Event {
            return Verdict::Pass;
        }
        let Some(text) = json_body(&message) else {
            return Verdict::Pass;
        };
        let mut value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => {
                return reject(
                    "redact-failed",
                    format!("cannot parse the event's JSON: {e}"),
                );
            }
        };
        let removed = CONFIG.with(|config| remove(&mut value, config));
        if removed == 0 {
            return Verdict::Pass;
        }
        match serde_json::to_string(&value) {
            Ok(json) => replace_json_body(json),
            Err(e) => reject(
                "redact-failed",
                format!("cannot write the redacted JSON: {e}"),
            ),
        }
    }
}

airlock_hook::export_hook!(Redact);

/// Removes matching members at any depth; returns how many were removed.
fn remove(value: &mut Value, config: &Config) -> usize {
    let matches = |key: &str| {
        config
            .fields
            .iter()
            .any(|field| match config.case_sensitive {
                true => field == key,
                false => field.eq_ignore_ascii_case(key),
            })
    };
    match value {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|key, _| !matches(key));
            let mut removed = before - map.len();
            for child in map.values_mut() {
                removed += remove(child, config);
            }
            removed
        }
        Value::Array(items) => items.iter_mut().map(|item| remove(item, config)).sum(),
        _ => 0,
    }
}
