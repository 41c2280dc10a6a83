//! redact: removes secret fields from events.
//!
//! Config (all optional): `{"fields": ["password", "token", "secret"], "case_sensitive": false}`.
//! For an event with a JSON body, every object member whose key is one of `fields` (compared
//! ignoring ASCII case unless `case_sensitive`) is removed, at any depth, inside arrays too, and
//! the rest is forwarded as `replace` with key order and number spelling kept. An event with
//! nothing to remove passes untouched (nothing is copied back); so do commands, channels and
//! bytes bodies. A JSON body the hook cannot parse is rejected (`redact-failed`): it could not be
//! checked, so it does not pass.
//!
//! The replacement is written as serde_json (`preserve_order`, `arbitrary_precision`) writes the
//! parsed `Value`: compact, each duplicate key once at its first place with its last value,
//! exponents as `e+`/`e-`. Most bodies are already written that way, and for them the members are
//! cut out of the text in one pass without building a tree (see `scan.rs`); the rest go through
//! a `Value`.

use airlock_hook::{
    Guest, Kind, Message, Settings, Verdict, json_body, parse_config, reject, replace_json_body,
};
use serde::Deserialize;
use serde_json::Value;

mod scan;

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
        CONFIG.with(|config| match redact(text, config) {
            Ok(None) => Verdict::Pass,
            Ok(Some(json)) => replace_json_body(json),
            Err(problem) => reject("redact-failed", problem),
        })
    }
}

airlock_hook::export_hook!(Redact);

/// The redacted JSON, `None` when nothing matches, or why the text cannot be redacted.
fn redact(text: &str, config: &Config) -> Result<Option<String>, String> {
    match scan::scan(text, &|key| matches(config, key)) {
        scan::Scan::Clean => Ok(None),
        scan::Scan::Cuts(cuts) => Ok(Some(scan::cut(text, &cuts))),
        scan::Scan::Slow => redact_value(text, config),
    }
}

/// The route through a `Value`: parse, remove, write back.
fn redact_value(text: &str, config: &Config) -> Result<Option<String>, String> {
    let mut value: Value =
        serde_json::from_str(text).map_err(|e| format!("cannot parse the event's JSON: {e}"))?;
    if remove(&mut value, config) == 0 {
        return Ok(None);
    }
    serde_json::to_string(&value)
        .map(Some)
        .map_err(|e| format!("cannot write the redacted JSON: {e}"))
}

/// Whether a member with this key is removed.
fn matches(config: &Config, key: &str) -> bool {
    config
        .fields
        .iter()
        .any(|field| match config.case_sensitive {
            true => field == key,
            false => field.eq_ignore_ascii_case(key),
        })
}

/// Removes matching members at any depth; returns how many were removed.
fn remove(value: &mut Value, config: &Config) -> usize {
    match value {
        Value::Object(map) => {
            let before = map.len();
            map.retain(|key, _| !matches(config, key));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A small deterministic generator of JSON texts that mix what the fast route cuts with what
    /// sends it the slow way (whitespace, escapes, exponents, duplicate keys).
    struct Gen(u64);

    impl Gen {
        fn next(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }

        fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
            from[self.next(from.len() as u64) as usize]
        }

        fn ws(&mut self) -> &'static str {
            match self.next(60) {
                0 => " ",
                1 => "\n  ",
                _ => "",
            }
        }

        fn value(&mut self, depth: u32, out: &mut String) {
            let kind = if depth > 4 {
                self.next(3)
            } else {
                self.next(6)
            };
            match kind {
                // Now and then something serde_json writes otherwise.
                0 if self.next(30) == 0 => out.push_str(self.pick(&[
                    "2E5",
                    "7e2",
                    r#""\u00e9""#,
                    r#""\/""#,
                    r#""\ud83d\ude00""#,
                    r#""\u000a""#,
                ])),
                0 => out.push_str(self.pick(&[
                    "1",
                    "-0",
                    "12345678901234567890",
                    "0.5",
                    "1.5e+3",
                    "3e-1",
                    "true",
                    "false",
                    "null",
                ])),
                1 => out.push_str(self.pick(&[
                    r#""x""#,
                    r#""a\"b\\c""#,
                    r#""\n\t""#,
                    r#""\u001f""#,
                    r#""é日""#,
                    r#""password""#,
                ])),
                2 => out.push_str(r#""plain""#),
                3 | 4 => {
                    out.push('{');
                    let members = self.next(5);
                    for i in 0..members {
                        if i > 0 {
                            out.push(',');
                        }
                        out.push_str(self.ws());
                        out.push_str(self.pick(&[
                            r#""password""#,
                            r#""Password""#,
                            r#""token""#,
                            r#""pass\u0077ord""#,
                            r#""a""#,
                            r#""b""#,
                            r#""c""#,
                            r#""d""#,
                            r#""e""#,
                            r#""f""#,
                            r#""g""#,
                            r#""h""#,
                            r#""i""#,
                            r#""j""#,
                            r#""k""#,
                            r#""l""#,
                            r#""passwords""#,
                        ]));
                        out.push_str(self.ws());
                        out.push(':');
                        out.push_str(self.ws());
                        self.value(depth + 1, out);
                    }
                    out.push_str(self.ws());
                    out.push('}');
                }
                _ => {
                    out.push('[');
                    for i in 0..self.next(4) {
                        if i > 0 {
                            out.push(',');
                        }
                        self.value(depth + 1, out);
                    }
                    out.push(']');
                }
            }
        }
    }

    #[test]
    fn both_routes_give_the_same_bytes_on_thousands_of_documents() {
        let config = Config::default();
        let mut generator = Gen(0x9e37_79b9_7f4a_7c15);
        let (mut cut, mut clean) = (0, 0);
        for _ in 0..20_000 {
            let mut text = String::new();
            generator.value(0, &mut text);
            let slow = redact_value(&text, &config);
            match scan::scan(&text, &|key| matches(&config, key)) {
                scan::Scan::Cuts(cuts) => {
                    cut += 1;
                    assert_eq!(Ok(Some(scan::cut(&text, &cuts))), slow, "{text}");
                }
                scan::Scan::Clean => {
                    clean += 1;
                    assert_eq!(Ok(None), slow, "{text}");
                }
                scan::Scan::Slow => {}
            }
            assert_eq!(redact(&text, &config), slow, "{text}");
        }
        assert!(cut > 500 && clean > 5000, "cut {cut}, clean {clean}");
    }
}
