//! Declarative properties: what must hold for every message a hook lets through.
//!
//! A properties file is JSON:
//!
//! ```json
//! {"properties": [
//!   {"name": "fs paths stay in /app/data", "kind": "command", "names": ["fs_*"],
//!    "path_within": {"pointer": "/path", "root": "/app/data"}},
//!   {"name": "no secrets in events", "kind": "event", "no_keys": ["password", "token"]},
//!   {"name": "evil origin never passes", "origins": ["https://evil.example"], "verdicts": ["reject"]}
//! ]}
//! ```
//!
//! `kind`, `names` (a trailing `*` matches any rest) and `origins` choose the messages a property
//! speaks of (all when absent). Checks: `verdicts` (the verdicts allowed), `path_within` (the
//! delivered JSON body's string at `pointer` must resolve inside `root`, read the way a careless
//! core might: percent-decoded until stable, backslashes and Unicode lookalikes as `/` and `.`,
//! cut at a NUL, `..` and dot-only segments climbing, `~`, drive letters, `scheme://` and `file:`
//! leaving the root; other relative paths are joined to it), `no_keys` (no object member with one of
//! these names, ignoring ASCII case, anywhere in the delivered JSON body).

use serde::Deserialize;
use serde_json::Value;

use airlock::{Body, Decision, Kind, Message};

/// A properties file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Properties {
    /// The properties, each checked on every run.
    pub properties: Vec<Property>,
}

/// One property.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Property {
    /// Shown in findings.
    pub name: String,
    /// Only messages of this kind.
    #[serde(default)]
    pub kind: Option<Kind>,
    /// Only messages with one of these names (`prefix*` allowed).
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// Only messages from one of these origins.
    #[serde(default)]
    pub origins: Option<Vec<String>>,
    /// The verdicts allowed: `pass`, `replace`, `reject`.
    #[serde(default)]
    pub verdicts: Option<Vec<String>>,
    /// A path in the delivered body that must stay inside a root.
    #[serde(default)]
    pub path_within: Option<PathWithin>,
    /// Keys that must not appear in the delivered body.
    #[serde(default)]
    pub no_keys: Option<Vec<String>>,
}

/// The `path_within` check.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathWithin {
    /// JSON pointer to the path string, e.g. `/path`.
    pub pointer: String,
    /// The root it must stay in, e.g. `/app/data`.
    pub root: String,
}

impl Properties {
    /// Parses a properties file's text, naming what is wrong.
    pub fn parse(text: &str) -> Result<Properties, String> {
        let properties: Properties =
            serde_json::from_str(text).map_err(|e| format!("invalid properties file: {e}"))?;
        for p in &properties.properties {
            for verdict in p.verdicts.iter().flatten() {
                if !["pass", "replace", "reject"].contains(&verdict.as_str()) {
                    return Err(format!(
                        "property {:?}: verdict {verdict:?} is not pass, replace or reject",
                        p.name
                    ));
                }
            }
            if let Some(within) = &p.path_within
                && !within.root.starts_with('/')
            {
                return Err(format!(
                    "property {:?}: root {:?} must be absolute",
                    p.name, within.root
                ));
            }
        }
        Ok(properties)
    }

    /// The first property `original` → (`decision`, `delivered`) breaks, with why.
    pub fn violation(
        &self,
        original: &Message,
        decision: Decision,
        delivered: Option<&Message>,
    ) -> Option<String> {
        self.properties.iter().find_map(|p| {
            p.applies(original)
                .then(|| p.broken(decision, delivered))
                .flatten()
                .map(|why| format!("property {:?} broken: {why}", p.name))
        })
    }
}

impl Property {
    fn applies(&self, message: &Message) -> bool {
        let name_matches = |pattern: &String| match pattern.strip_suffix('*') {
            Some(prefix) => message.name.starts_with(prefix),
            None => *pattern == message.name,
        };
        self.kind.is_none_or(|kind| kind == message.kind)
            && self
                .names
                .as_ref()
                .is_none_or(|names| names.iter().any(name_matches))
            && self
                .origins
                .as_ref()
                .is_none_or(|origins| origins.contains(&message.source.origin))
    }

    fn broken(&self, decision: Decision, delivered: Option<&Message>) -> Option<String> {
        if let Some(verdicts) = &self.verdicts
            && !verdicts.iter().any(|v| v == decision.as_str())
        {
            return Some(format!("verdict {decision} is not one of {verdicts:?}"));
        }
        let body = match delivered.map(|m| &m.body) {
            Some(Body::Json(text)) => serde_json::from_str::<Value>(text).ok()?,
            _ => return None,
        };
        if let Some(within) = &self.path_within
            && let Some(Value::String(path)) = body.pointer(&within.pointer)
            && let Err(resolved) = resolves_within(path, &within.root)
        {
            return Some(format!(
                "delivered path {path:?} resolves to {resolved:?}, outside {:?}",
                within.root
            ));
        }
        if let Some(keys) = &self.no_keys
            && let Some(key) = find_key(&body, keys)
        {
            return Some(format!("delivered body still has the key {key:?}"));
        }
        None
    }
}

fn find_key<'a>(value: &'a Value, keys: &[String]) -> Option<&'a str> {
    match value {
        Value::Object(map) => map.iter().find_map(|(key, child)| {
            if keys.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                Some(key.as_str())
            } else {
                find_key(child, keys)
            }
        }),
        Value::Array(items) => items.iter().find_map(|item| find_key(item, keys)),
        _ => None,
    }
}

/// Resolves `path` the way a careless core might; `Err` holds where it lands when outside `root`.
pub fn resolves_within(path: &str, root: &str) -> Result<(), String> {
    let mut text = path.split('\0').next().unwrap_or("").to_owned();
    for _ in 0..4 {
        let decoded = percent_decode(&text);
        if decoded == text {
            break;
        }
        text = decoded;
    }
    let text: String = text
        .chars()
        .map(|c| match c {
            '\\' | '\u{ff0f}' | '\u{2215}' | '\u{2044}' | '\u{29f8}' | '\u{ff3c}' | '\u{fe68}'
            | '\u{2216}' => '/',
            '\u{ff0e}' | '\u{fe52}' | '\u{2024}' | '\u{3002}' | '\u{ff61}' => '.',
            c => c,
        })
        .collect::<String>()
        .replace('\u{2025}', "..")
        .replace('\u{2026}', "...");
    let outside = |at: String| Err(at);
    // What leaves the root whatever it is joined to: a home (`~`), a drive (`C:`), a URL
    // (`scheme://`, `file:`). Other relative paths, colons and all (`notes:v2.txt`), stay in it.
    let first = text.split('/').next().unwrap_or("");
    let drive = matches!(first.as_bytes(), [letter, b':', ..] if letter.is_ascii_alphabetic());
    let scheme = first.ends_with(':')
        && text[first.len()..].starts_with("//")
        && first[..first.len() - 1]
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if first.starts_with('~')
        || drive
        || (scheme && first.len() > 1)
        || first.to_ascii_lowercase().starts_with("file:")
    {
        return outside(text);
    }
    let root_segments: Vec<&str> = root
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let mut at: Vec<&str> = match text.starts_with('/') {
        true => Vec::new(),
        false => root_segments.clone(),
    };
    for segment in text.split('/') {
        let trimmed = segment.trim_end_matches([' ', '.']);
        match segment {
            "" | "." => {}
            s if s.starts_with("..") && (trimmed.is_empty() || s[2..].starts_with(';')) => {
                at.pop();
            }
            s => at.push(s),
        }
    }
    match at.starts_with(&root_segments) {
        true => Ok(()),
        false => outside(format!("/{}", at.join("/"))),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    // Overlong encodings read as what a lax decoder makes of them: C0 AF is `/`, C0 AE is `.`.
    let mut lax = Vec::with_capacity(out.len());
    let mut bytes = out.iter().copied().peekable();
    while let Some(byte) = bytes.next() {
        match (byte, bytes.peek().copied()) {
            (0xc0, Some(0xaf)) | (0xc1, Some(0x9c)) => {
                lax.push(b'/');
                bytes.next();
            }
            (0xc0, Some(0xae)) => {
                lax.push(b'.');
                bytes.next();
            }
            _ => lax.push(byte),
        }
    }
    String::from_utf8_lossy(&lax).into_owned()
}
