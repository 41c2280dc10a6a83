//! path-guard: file commands must keep their `path` argument inside a root.
//!
//! Config (all optional): `{"commands": ["fs_read", "fs_write", "fs_list"], "root": "/app/data"}`.
//! For a listed command, the JSON args must hold exactly one `path` key with a string value that,
//! read as a POSIX path (relative paths are relative to the root), stays inside the root at every
//! step. Refused with code `path-escape`: `..` that leaves the root (even to come back), absolute
//! paths outside it, backslashes, percent-encoded bytes (`%2e`, `%252f`, `%u002e`), Unicode
//! lookalikes of `/`, `\` and `.`, control and invisible formatting characters, segments made only
//! of dots and spaces (`...`, `.. `: read as `..` by some systems) or `..;`, `~`, drive letters,
//! URLs and `file:`, duplicate `path` keys, and a missing or non-string `path`. Other commands, events and
//! channels pass untouched.

use airlock_hook::{Guest, Kind, Message, Settings, Verdict, json_body, parse_config, reject};
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

struct PathGuard;

impl Guest for PathGuard {
    fn configure(config: String) -> Result<(), String> {
        let config: Config = parse_config(&config)?;
        let root = &config.root;
        if !root.starts_with('/') || root.contains('\\') || root.chars().any(char::is_control) {
            return Err(format!("root {root:?} must be an absolute POSIX path"));
        }
        let mut segments = Vec::new();
        for segment in root.split('/') {
            match segment {
                "" | "." => {}
                ".." => return Err(format!("root {root:?} must not contain `..`")),
                s => segments.push(s.to_owned()),
            }
        }
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
            match check(&policy.root, &path) {
                Ok(()) => Verdict::Pass,
                Err(problem) => reject(CODE, format!("path {path:?} {problem}")),
            }
        })
    }
}

airlock_hook::export_hook!(PathGuard);

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

/// Checks one path against the root; the error completes "path {path:?} …".
fn check(root: &[String], path: &str) -> Result<(), String> {
    for c in path.chars() {
        let code = c as u32;
        if c.is_control() {
            return Err(format!("has control character U+{code:04X}"));
        }
        if c == '\\' {
            return Err("has a backslash".to_owned());
        }
        if is_lookalike(c) {
            return Err(format!("has U+{code:04X}, a lookalike of `/`, `\\` or `.`"));
        }
        if is_invisible(c) {
            return Err(format!("has invisible formatting character U+{code:04X}"));
        }
    }
    if let Some(encoded) = percent_encoding(path) {
        return Err(format!("has percent-encoded {encoded:?}"));
    }
    if path.starts_with('~') {
        return Err("starts with `~`, a home-directory reference".to_owned());
    }
    if has_scheme_or_drive(path) {
        return Err("starts with a drive letter or URL scheme".to_owned());
    }

    let absolute = path.starts_with('/');
    let mut at: Vec<&str> = match absolute {
        true => Vec::new(),
        false => root.iter().map(String::as_str).collect(),
    };
    let mut was_inside = !absolute;
    for segment in path.split('/') {
        match segment {
            "" | "." => continue,
            ".." => {
                if at.pop().is_none() {
                    return Err("climbs above `/`".to_owned());
                }
            }
            s if s.chars().all(|c| c == '.' || c == ' ') => {
                return Err(format!("has segment {s:?}, made only of dots and spaces"));
            }
            s if s.starts_with("..") && s[2..].starts_with([';', '?', '#']) => {
                return Err(format!("has segment {s:?}, read as `..` by some servers"));
            }
            s => at.push(s),
        }
        let inside = at.starts_with_str(root);
        if was_inside && !inside {
            return Err(format!("walks out of the root /{}", root.join("/")));
        }
        was_inside |= inside;
    }
    if !at.starts_with_str(root) {
        return Err(format!(
            "resolves to /{} outside the root /{}",
            at.join("/"),
            root.join("/")
        ));
    }
    Ok(())
}

trait StartsWithStr {
    fn starts_with_str(&self, prefix: &[String]) -> bool;
}

impl StartsWithStr for Vec<&str> {
    fn starts_with_str(&self, prefix: &[String]) -> bool {
        self.len() >= prefix.len() && self.iter().zip(prefix).all(|(a, b)| *a == b)
    }
}

/// `%XX` or `%uXXXX` with hex digits: a percent-encoded byte that some layer may decode later.
fn percent_encoding(path: &str) -> Option<&str> {
    let bytes = path.as_bytes();
    let hex = |i: usize, n: usize| {
        bytes.len() >= i + n && bytes[i..i + n].iter().all(u8::is_ascii_hexdigit)
    };
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'%')
        .find_map(|(i, _)| {
            if hex(i + 1, 2) {
                Some(&path[i..i + 3])
            } else if matches!(bytes.get(i + 1), Some(b'u' | b'U')) && hex(i + 2, 4) {
                Some(&path[i..i + 6])
            } else {
                None
            }
        })
}

/// A drive letter (`C:`), a URL (`scheme://`), or a `file:` reference at the start.
fn has_scheme_or_drive(path: &str) -> bool {
    let Some((prefix, rest)) = path.split_once(':') else {
        return false;
    };
    let scheme = prefix
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    let drive = prefix.len() == 1 && scheme;
    scheme && (drive || rest.starts_with("//") || prefix.eq_ignore_ascii_case("file"))
}

/// Characters that look like, or are normalized (NFKC) into, `/`, `\` or `.`.
fn is_lookalike(c: char) -> bool {
    matches!(
        c,
        '\u{2044}'
            | '\u{2215}'
            | '\u{2571}'
            | '\u{29F8}'
            | '\u{FF0F}'
            | '\u{1735}'
            | '\u{0337}'
            | '\u{0338}'
            | '\u{2216}'
            | '\u{29F5}'
            | '\u{29F9}'
            | '\u{FE68}'
            | '\u{FF3C}'
            | '\u{2024}'
            | '\u{2025}'
            | '\u{2026}'
            | '\u{FE52}'
            | '\u{FF0E}'
            | '\u{3002}'
            | '\u{FF61}'
            | '\u{0701}'
            | '\u{0702}'
            | '\u{A4F8}'
            | '\u{06D4}'
    )
}

/// Format and invisible characters (bidi controls, zero-width, tags, variation selectors…).
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
            | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
            | '\u{FFA0}' | '\u{FFF9}'..='\u{FFFB}' | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}
