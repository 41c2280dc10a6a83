//! The path-guard policy (see the crate docs), apart from its export so that another hook can
//! wrap it.

use airlock_hook::{
    Guest, Kind, Message, Settings, Verdict, json_body, parse_config, path, reject,
};
use serde::Deserialize;
use serde::de::{IgnoredAny, MapAccess, Visitor};

const CODE: &str = "path-escape";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    commands: Vec<String>,
    root: String,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            commands: ["fs_read", "fs_write", "fs_list"]
                .map(String::from)
                .to_vec(),
            root: "/app/data".to_owned(),
        }
    }
}

#[derive(Default)]
struct Policy {
    commands: Vec<String>,
    /// The root's segments; empty for `/`.
    root: Vec<String>,
}

static POLICY: Settings<Policy> = Settings::new();

/// The policy, exported by `lib.rs` (and wrapped by path-guard-planted, the fuzzer's test).
pub(crate) struct PathGuard;

impl Guest for PathGuard {
    fn configure(config: String) -> Result<(), String> {
        let config: Config = parse_config(&config)?;
        let root = &config.root;
        let segments = path::root(root).map_err(|problem| format!("root {root:?} {problem}"))?;
        POLICY.set(Policy {
            commands: config.commands,
            root: segments,
        });
        Ok(())
    }

    fn inspect(message: Message) -> Verdict {
        POLICY.with(|policy| {
            if message.kind != Kind::Command || !policy.commands.contains(&message.name) {
                return Verdict::Pass;
            }
            let name = &message.name;
            let Some(args) = json_body(&message) else {
                return reject(
                    CODE,
                    format!("`{name}` takes JSON args with a string `path`, got bytes"),
                );
            };
            let path = match find_path(args) {
                Ok(Some(serde_json::Value::String(path))) => path,
                Ok(Some(other)) => {
                    return reject(
                        CODE,
                        format!(
                            "`path` of `{name}` must be a string, got {}",
                            type_name(&other)
                        ),
                    );
                }
                Ok(None) => {
                    return reject(CODE, format!("`{name}` needs a string `path` argument"));
                }
                Err(problem) => return reject(CODE, format!("args of `{name}`: {problem}")),
            };
            match path::check(&policy.root, &path) {
                Ok(()) => Verdict::Pass,
                Err(problem) => reject(CODE, format!("path {path:?} {problem}")),
            }
        })
    }
}

/// The value of the top-level `path` key; a second `path` key is an error, since parsers differ
/// on which one wins.
fn find_path(args: &str) -> Result<Option<serde_json::Value>, String> {
    struct Finder;
    impl<'de> Visitor<'de> for Finder {
        type Value = Option<serde_json::Value>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut path = None;
            while let Some(key) = map.next_key::<String>()? {
                if key != "path" {
                    map.next_value::<IgnoredAny>()?;
                } else if path.is_some() {
                    return Err(serde::de::Error::custom("duplicate `path` key"));
                } else {
                    path = Some(map.next_value()?);
                }
            }
            Ok(path)
        }
    }
    let mut de = serde_json::Deserializer::from_str(args);
    let path = serde::Deserializer::deserialize_map(&mut de, Finder).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(path)
}

fn type_name(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
