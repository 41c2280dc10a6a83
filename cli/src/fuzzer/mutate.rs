//! Structure-aware mutation of IPC messages: what an attacker would try against a hook.
//!
//! Bodies are mutated as JSON trees (strings, numbers, structure, keys) and, for what a tree
//! cannot hold (duplicate keys), as text. Strings draw from a dictionary of path-traversal
//! spellings, encodings, lookalikes and control characters, and from the hook's own [`Hints`]:
//! text its code compares against, as keys, values and parts of strings, and numbers it compares
//! against, as string lengths. Everything stays within the gateway's limits, so each candidate
//! reaches the hook.

use serde_json::{Map, Number, Value};

use airlock::{Body, Header, Kind, Request, Source};

use super::coverage::Hints;

/// A small deterministic generator (SplitMix64): the same `--seed` gives the same run on every
/// build, whatever a random-number crate does between versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability 1/`n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// One string of a non-empty list.
    pub fn pick_str(&mut self, items: &[&'static str]) -> &'static str {
        items[self.below(items.len())]
    }
}

/// Path-traversal spellings, encodings, lookalikes and other strings that break naive checks.
pub const DICTIONARY: &[&str] = &[
    "..",
    "../",
    "../../",
    "..\\",
    "..\\..\\",
    "/..",
    "./",
    ".",
    "/",
    "//",
    "\\",
    "%2e%2e%2f",
    "%2e%2e/",
    "..%2f",
    "%2e%2e%5c",
    "%252e%252e%252f",
    "..%252f",
    "..%c0%af",
    "%c0%ae%c0%ae/",
    "..%u2216",
    "%u002e%u002e/",
    "\u{ff0e}\u{ff0e}/",
    "..\u{ff0f}",
    "\u{2025}/",
    "..\u{2215}",
    "..\u{2044}",
    "\u{fe52}\u{fe52}/",
    "..;/",
    "....//",
    ".../",
    ". ./",
    ".. /",
    "/etc/passwd",
    "/app/data/../../etc/shadow",
    "/app/database/x",
    "/app/data2/",
    "C:\\Windows\\win.ini",
    "C:/Windows",
    "\\\\server\\share\\x",
    "//server/share/x",
    "~/",
    "~root/",
    "file:///etc/passwd",
    "\0",
    "%00",
    "\n",
    "\r\n",
    "\t",
    "\u{7f}",
    "\u{85}",
    "\u{202e}",
    "\u{200b}",
    "\u{feff}",
    "\u{2028}",
    "\u{e0041}",
    "\u{fffd}",
    "%",
    "%%",
    "%zz",
    "%2",
    "%u",
    "\"",
    "'",
    "`",
    "${",
    "{{",
    "<script>",
    "__proto__",
    "constructor",
    "prototype",
    "password",
    "token",
    "secret",
    "PASSWORD",
    "Token",
    "null",
    "true",
    "-1",
    "1e309",
    "NaN",
];

const NAMES: &[&str] = &[
    "fs_read",
    "fs_write",
    "fs_list",
    "FS_READ",
    "fs-read",
    "fs_read_",
    "fs:read",
    "fs/read",
    "plugin:fs/read",
    "fs_readx",
    "Fs_Read",
    "fs_rea",
    "open_url",
    "login",
    "e",
];

const ORIGINS: &[&str] = &[
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
    "null",
    "",
    "TAURI://LOCALHOST",
    "tauri://localhost/",
    "tauri://localhost.evil.example",
    "tauri://localhost@evil.example",
    "http://localhost:1420",
    "http://127.0.0.1:1420",
    "https://evil.example",
    "file://",
    "tauri://localhost:443",
    "http://tauri.localhost:80",
    "tauri://lоcalhost",
];

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1",
    "9007199254740993",
    "-9223372036854775809",
    "18446744073709551616",
    "1e308",
    "-1e308",
    "1e-400",
    "0.1",
    "123456789012345678901234567890",
    "1E2",
    "4294967296",
];

/// Built-in seed messages, used when the user gives none.
pub fn builtin_seeds() -> Vec<(Source, Request)> {
    let source = Source::new("main", "main", "tauri://localhost");
    let json = |kind, name: &str, body: &str| {
        (
            source.clone(),
            Request::new(kind, name, Body::Json(body.to_owned())),
        )
    };
    vec![
        json(Kind::Command, "fs_read", r#"{"path":"notes.txt"}"#),
        json(
            Kind::Command,
            "fs_write",
            r#"{"path":"docs/report.v2.txt","contents":"hello"}"#,
        ),
        json(Kind::Command, "fs_list", r#"{"path":"/app/data/docs"}"#),
        json(
            Kind::Command,
            "open_url",
            r#"{"url":"https://tauri.app","new_tab":true}"#,
        ),
        json(
            Kind::Event,
            "login",
            r#"{"user":"ada","password":"hunter2","session":{"token":"t","ttl":3600}}"#,
        ),
        json(
            Kind::Event,
            "sync",
            r#"[{"id":1,"secret":"s"},{"id":2,"tags":["a","b"]}]"#,
        ),
        (
            source.clone(),
            Request::new(Kind::Channel, "upload", Body::Bytes(b"chunk-0001".to_vec())),
        ),
    ]
}

/// Limits a mutation keeps to, so that candidates pass the gateway and reach the hook.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Largest body, in bytes.
    pub max_body: usize,
    /// Deepest JSON nesting.
    pub max_depth: usize,
}

/// Applies 1 to 4 random mutations to a copy of the message; `other` (another corpus entry) may
/// lend it members.
pub fn mutate(
    rng: &mut Rng,
    source: &Source,
    request: &Request,
    other: &Request,
    bounds: Bounds,
    hints: &Hints,
) -> (Source, Request) {
    let mut source = source.clone();
    let mut request = request.clone();
    for _ in 0..1 + rng.below(4) {
        match rng.below(20) {
            0 => request.name = mutate_name(rng, &request.name),
            1 => source.origin = rng.pick(ORIGINS).to_string(),
            2 => request.headers.push(Header::new(
                *rng.pick(&[
                    "X-Path",
                    "Origin",
                    "Content-Type",
                    "X-Forwarded-For",
                    "Cookie",
                ]),
                rng.pick(DICTIONARY)
                    .replace(['\n', '\r', '\0', '\u{7f}', '\u{85}'], ""),
            )),
            3 => {
                request.kind = *rng.pick(&[Kind::Command, Kind::Event, Kind::Channel]);
                if request.kind == Kind::Command && !body_is_object(&request.body) {
                    request.body = Body::Json("{}".into());
                }
            }
            4 => request.body = mutate_bytes(rng, &request.body),
            5 => request.body = duplicate_key(rng, &request.body),
            6 => request.body = splice(rng, &request.body, &other.body),
            _ => request.body = mutate_json(rng, request.kind, &request.body, bounds, hints),
        }
    }
    if request.body.len() > bounds.max_body {
        request.body = Body::Json("{}".into());
    }
    (source, request)
}

fn body_is_object(body: &Body) -> bool {
    matches!(body, Body::Json(text) if text.trim_start().starts_with('{'))
}

fn mutate_name(rng: &mut Rng, name: &str) -> String {
    match rng.below(3) {
        0 => rng.pick(NAMES).to_string(),
        1 => name.to_ascii_uppercase(),
        _ => format!("{name}{}", rng.pick(&["_", "-", ":", "/", "2", "_old"])),
    }
}

fn mutate_bytes(rng: &mut Rng, body: &Body) -> Body {
    let mut bytes = match body {
        Body::Bytes(bytes) => bytes.clone(),
        Body::Json(text) => text.clone().into_bytes(),
    };
    match rng.below(4) {
        0 => bytes.extend_from_slice(&[0xc0, 0xaf, 0xff, 0xfe, 0x80]),
        1 if !bytes.is_empty() => {
            let at = rng.below(bytes.len());
            bytes[at] ^= 1 << rng.below(8);
        }
        2 => bytes.extend_from_slice(rng.pick(DICTIONARY).as_bytes()),
        _ => bytes.truncate(rng.below(bytes.len() + 1)),
    }
    Body::Bytes(bytes)
}

/// Repeats a key of the top-level object with a dictionary value, in text (a tree cannot hold
/// two equal keys): parsers disagree on which one wins.
fn duplicate_key(rng: &mut Rng, body: &Body) -> Body {
    let Body::Json(text) = body else {
        return body.clone();
    };
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return body.clone();
    };
    let key = match map.keys().next() {
        Some(key) if !rng.one_in(4) => key.clone(),
        _ => "path".to_owned(),
    };
    let value = Value::String(rng.pick(DICTIONARY).to_string());
    let entry = format!("{}:{}", Value::String(key), value);
    let inner = text
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim();
    Body::Json(match (inner.is_empty(), rng.one_in(2)) {
        (true, _) => format!("{{{entry}}}"),
        (false, true) => format!("{{{entry},{inner}}}"),
        (false, false) => format!("{{{inner},{entry}}}"),
    })
}

/// The body with members of `other`'s top-level object copied in (one, or each with even odds),
/// when both are objects: what two corpus entries reached apart, in one message.
fn splice(rng: &mut Rng, body: &Body, other: &Body) -> Body {
    let (Body::Json(text), Body::Json(other)) = (body, other) else {
        return body.clone();
    };
    let (Ok(Value::Object(mut map)), Ok(Value::Object(theirs))) = (
        serde_json::from_str::<Value>(text),
        serde_json::from_str::<Value>(other),
    ) else {
        return body.clone();
    };
    if theirs.is_empty() {
        return body.clone();
    }
    let one = rng.below(theirs.len());
    let all = rng.one_in(2);
    for (at, (key, value)) in theirs.into_iter().enumerate() {
        if at == one || (all && rng.one_in(2)) {
            map.insert(key, value);
        }
    }
    Body::Json(Value::Object(map).to_string())
}

fn mutate_json(rng: &mut Rng, kind: Kind, body: &Body, bounds: Bounds, hints: &Hints) -> Body {
    let mut value = match body {
        Body::Json(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        Body::Bytes(_) => Value::Object(Map::new()),
    };
    let count = count_nodes(&value);
    let target = rng.below(count);
    let mut seen = 0;
    visit_nth(&mut value, target, &mut seen, &mut |node| {
        mutate_node(rng, node, bounds, hints)
    });
    if kind == Kind::Command && !value.is_object() {
        value = Value::Object(Map::from_iter([("path".to_owned(), value)]));
    }
    if depth(&value) > bounds.max_depth {
        return body.clone();
    }
    Body::Json(value.to_string())
}

fn count_nodes(value: &Value) -> usize {
    1 + match value {
        Value::Array(items) => items.iter().map(count_nodes).sum(),
        Value::Object(map) => map.values().map(count_nodes).sum(),
        _ => 0,
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// Calls `f` on the `target`-th node in pre-order.
fn visit_nth(
    value: &mut Value,
    target: usize,
    seen: &mut usize,
    f: &mut dyn FnMut(&mut Value),
) -> bool {
    if *seen == target {
        f(value);
        return true;
    }
    *seen += 1;
    match value {
        Value::Array(items) => items
            .iter_mut()
            .any(|item| visit_nth(item, target, seen, f)),
        Value::Object(map) => map
            .values_mut()
            .any(|item| visit_nth(item, target, seen, f)),
        _ => false,
    }
}

fn mutate_node(rng: &mut Rng, node: &mut Value, bounds: Bounds, hints: &Hints) {
    match node {
        Value::String(text) => *text = mutate_string(rng, text, bounds, hints),
        Value::Object(map) if !rng.one_in(3) => match rng.below(6) {
            0 if !map.is_empty() => {
                let key = map
                    .keys()
                    .nth(rng.below(map.len()))
                    .cloned()
                    .unwrap_or_default();
                map.remove(&key);
            }
            1 => {
                let key = token(rng, hints);
                map.insert(key, random_value(rng, bounds, hints));
            }
            2 | 3 => {
                let key = token(rng, hints);
                map.insert(key, shaped_value(rng, bounds, hints));
            }
            _ => {
                let key = map.keys().nth(rng.below(map.len().max(1))).cloned();
                let key = key.unwrap_or_else(|| "path".to_owned());
                map.insert(key, random_value(rng, bounds, hints));
            }
        },
        Value::Array(items) if !rng.one_in(3) => match rng.below(3) {
            0 if !items.is_empty() => {
                items.remove(rng.below(items.len()));
            }
            1 if !items.is_empty() && items.len() < 1000 => {
                let copy = items[rng.below(items.len())].clone();
                items.push(copy);
            }
            _ => items.push(random_value(rng, bounds, hints)),
        },
        _ => *node = random_value(rng, bounds, hints),
    }
}

/// How many of the first of [`Hints::distinct`] are favoured.
const DISTINCT_FIRST: usize = 16;

/// A dictionary string: half the time, when the hook has hints, one of its own tokens (now and
/// then a slice of one) or a slice of its data; a third of the time, against a reference, text
/// only the hook holds (half the time among the first 16, the likeliest its own; half the
/// time when there are no hints from its code), and a quarter of the rest, text its code compares against; else one of
/// [`DICTIONARY`].
fn token(rng: &mut Rng, hints: &Hints) -> String {
    // An interpreted hook's code hints are its interpreter's (see `FuzzOptions::hints`): its
    // distinct text is then half the dictionary, not a third.
    let code_hints =
        !hints.tokens.is_empty() || !hints.compared.is_empty() || !hints.data.is_empty();
    if !hints.distinct.is_empty() && rng.one_in(if code_hints { 3 } else { 2 }) {
        // The first are the likeliest the hook's own: half the time, one of the first 16.
        let n = hints.distinct.len();
        let n = match n > DISTINCT_FIRST && rng.one_in(2) {
            true => DISTINCT_FIRST,
            false => n,
        };
        return hints.distinct[rng.below(n)].clone();
    }
    if !hints.compared.is_empty() && rng.one_in(4) {
        return rng.pick(&hints.compared).clone();
    }
    let has_hints = !hints.tokens.is_empty() || !hints.data.is_empty();
    if !has_hints || rng.one_in(2) {
        return rng.pick(DICTIONARY).to_string();
    }
    let (text, whole) = match hints.tokens.is_empty() || (!hints.data.is_empty() && rng.one_in(4)) {
        true => (rng.pick(&hints.data), false),
        false => (rng.pick(&hints.tokens), !rng.one_in(8)),
    };
    if whole {
        return text.clone();
    }
    // Data strings run into each other (Rust keeps its literals end to end): a slice of one.
    let chars: Vec<char> = text.chars().collect();
    let len = 1 + rng.below(chars.len().min(12));
    let at = rng.below(chars.len() - len + 1);
    chars[at..at + len].iter().collect()
}

/// `text` cut or padded (with its last character, or `a`) to a length the hook compares
/// against, one more or less, or a small random one.
fn resize(rng: &mut Rng, text: &str, hints: &Hints) -> String {
    let target = match hints.lengths.is_empty() || rng.one_in(3) {
        true => rng.below(80),
        false => {
            let len = *rng.pick(&hints.lengths);
            match rng.below(4) {
                0 => len + 1,
                1 => len.saturating_sub(1),
                _ => len,
            }
        }
    }
    .min(4096);
    let mut chars: Vec<char> = text.chars().collect();
    let pad = chars.last().copied().unwrap_or('a');
    chars.resize(target, pad);
    chars.into_iter().collect()
}

/// A value of a shape a hook checks before it trusts a member: a string that starts with one of
/// its tokens, an array or object of a length it compares against, or any [`random_value`].
fn shaped_value(rng: &mut Rng, bounds: Bounds, hints: &Hints) -> Value {
    match rng.below(4) {
        0 => {
            let start = token(rng, hints);
            Value::String(match rng.below(3) {
                0 => start,
                1 => format!("{start}{}", rng.pick(DICTIONARY)),
                _ => resize(rng, &format!("{start}x"), hints),
            })
        }
        1 => Value::Array(
            (0..small_len(rng, hints))
                .map(|_| Value::String(token(rng, hints)))
                .collect(),
        ),
        2 => Value::Object(
            (0..small_len(rng, hints))
                .map(|_| (token(rng, hints), Value::String(token(rng, hints))))
                .collect(),
        ),
        _ => random_value(rng, bounds, hints),
    }
}

/// A count a hook may compare against: one of its small constants (up to 16), one more or less,
/// or below 8.
fn small_len(rng: &mut Rng, hints: &Hints) -> usize {
    let small: Vec<usize> = hints.lengths.iter().copied().filter(|&n| n <= 16).collect();
    if small.is_empty() || rng.one_in(3) {
        return rng.below(8);
    }
    let len = *rng.pick(&small);
    match rng.below(4) {
        0 => len + 1,
        1 => len.saturating_sub(1),
        _ => len,
    }
}

fn random_value(rng: &mut Rng, bounds: Bounds, hints: &Hints) -> Value {
    match rng.below(9) {
        0 => Value::Null,
        1 => Value::Bool(rng.one_in(2)),
        2 => serde_json::from_str::<Number>(rng.pick_str(NUMBERS))
            .map(Value::Number)
            .unwrap_or(Value::Null),
        3 => Value::Array(vec![Value::String(rng.pick(DICTIONARY).to_string())]),
        4 => Value::Object(Map::from_iter([(
            token(rng, hints),
            Value::String(token(rng, hints)),
        )])),
        5 => {
            // Deep nesting, short of the gateway's limit.
            let mut value = Value::String("deep".into());
            for _ in 0..rng.below(bounds.max_depth.saturating_sub(2).max(1)) {
                value = Value::Array(vec![value]);
            }
            value
        }
        6 => Value::String(token(rng, hints)),
        _ => Value::String(mutate_string(rng, "notes.txt", bounds, hints)),
    }
}

fn mutate_string(rng: &mut Rng, text: &str, bounds: Bounds, hints: &Hints) -> String {
    let token = &*token(rng, hints);
    let at = char_boundary(text, rng.below(text.len() + 1));
    match rng.below(14) {
        0 => token.to_owned(),
        1 => format!("{token}{text}"),
        2 => format!("{text}{token}"),
        3 => format!("{}{token}{}", &text[..at], &text[at..]),
        4 => format!("{token}{token}{text}"),
        5 => text.replace(
            '/',
            rng.pick_str(&["\\", "%2f", "%252f", "\u{ff0f}", "\u{2215}", "//"]),
        ),
        6 => text.replace('.', rng.pick_str(&["%2e", "\u{ff0e}", "\u{2024}", ".."])),
        7 => text.to_ascii_uppercase(),
        8 => {
            // Huge, within the body limit.
            let len = [256, 4096, 65536][rng.below(3)].min(bounds.max_body / 2);
            text.repeat(len / text.len().max(1) + 1)
        }
        9 => percent_encode_one(rng, text),
        10 => format!("/app/data/{text}"),
        11 | 12 => resize(rng, text, hints),
        _ => format!(
            "{}{}",
            &text[..at],
            rng.pick(&["\0", "\u{202e}", "\u{200b}", "\n", ";"])
        ),
    }
}

fn percent_encode_one(rng: &mut Rng, text: &str) -> String {
    if text.is_empty() {
        return "%2e".into();
    }
    let at = char_boundary(text, rng.below(text.len()));
    let ch = text[at..].chars().next().unwrap_or('.');
    let mut encoded = String::new();
    let mut buf = [0u8; 4];
    for byte in ch.encode_utf8(&mut buf).bytes() {
        encoded.push_str(&format!("%{byte:02x}"));
    }
    format!("{}{encoded}{}", &text[..at], &text[at + ch.len_utf8()..])
}

fn char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}
