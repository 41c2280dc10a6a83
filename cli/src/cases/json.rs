//! JSON read with object members kept in order (as written, duplicates included), and message
//! lines compared with it: what a `replace` case expects delivered, what changed, and the
//! difference between two messages.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::CHANGEABLE;

/// An object's members in order, values kept as written.
pub(super) struct Members(pub(super) Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Members, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Members, A::Error> {
                members(map).map(Members)
            }
        }
        d.deserialize_map(V)
    }
}

/// Every member of an object, in order, duplicate keys included.
fn members<'de, A: MapAccess<'de>, V: Deserialize<'de>>(
    mut map: A,
) -> Result<Vec<(String, V)>, A::Error> {
    let mut members = Vec::new();
    while let Some(member) = map.next_entry()? {
        members.push(member);
    }
    Ok(members)
}

/// The message a `replace` case expects delivered: what was sent, with `changes` applied.
pub(super) fn wanted(sent: &str, changes: &BTreeMap<String, String>) -> Json {
    let mut wanted = ordered(sent);
    let Json::Obj(fields) = &mut wanted else {
        unreachable!("a message line is an object")
    };
    if changes.contains_key("payload") || changes.contains_key("bytes") {
        fields.retain(|(k, _)| k != "payload" && k != "bytes");
    }
    for (key, value) in changes {
        let value = ordered(value);
        match fields.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = value,
            None => fields.push((key.clone(), value)),
        }
    }
    wanted
}

/// The fields of `delivered` that differ from `sent`, with their JSON text.
pub(super) fn changes(sent: &str, delivered: &str) -> BTreeMap<String, String> {
    let (Json::Obj(sent), Json::Obj(delivered)) = (ordered(sent), ordered(delivered)) else {
        return BTreeMap::new();
    };
    delivered
        .into_iter()
        .filter(|(k, v)| {
            CHANGEABLE.contains(&k.as_str()) && sent.iter().all(|(k2, v2)| k2 != k || v2 != v)
        })
        .map(|(k, v)| (k, v.to_string()))
        .collect()
}

/// Two message lines are the same when every field is, whatever order the fields come in
/// (inside the payload, order counts).
pub(super) fn same_message(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Obj(a), Json::Obj(b)) => {
            a.len() == b.len()
                && a.iter()
                    .all(|(k, v)| b.iter().any(|(k2, v2)| k == k2 && v == v2))
        }
        _ => false,
    }
}

/// The differences between an expected and a delivered message, a line each: `- PATH: VALUE`
/// for the expected side, `+ PATH: VALUE` for the delivered one.
pub fn diff_messages(expected: &str, delivered: &str) -> String {
    diff(&ordered(expected), &ordered(delivered))
}

pub(super) fn diff(expected: &Json, delivered: &Json) -> String {
    let mut out = Vec::new();
    walk(expected, delivered, "", &mut out);
    out.join("\n")
}

fn walk(a: &Json, b: &Json, path: &str, out: &mut Vec<String>) {
    if a == b {
        return;
    }
    let start = out.len();
    let at = |key: &str| match path {
        "" => key.to_owned(),
        _ => format!("{path}.{key}"),
    };
    match (a, b) {
        (Json::Obj(a), Json::Obj(b)) => {
            for (k, v) in a {
                match b.iter().find(|(k2, _)| k2 == k) {
                    Some((_, v2)) => walk(v, v2, &at(k), out),
                    None => out.push(format!("- {}: {v}", at(k))),
                }
            }
            for (k, v) in b {
                if !a.iter().any(|(k2, _)| k2 == k) {
                    out.push(format!("+ {}: {v}", at(k)));
                }
            }
            let same_keys = a.len() == b.len() && a.iter().zip(b).all(|((k, _), (k2, _))| k == k2);
            if out.len() == start && !same_keys {
                out.push(format!(
                    "- {}: keys in the order {}",
                    if path.is_empty() { "." } else { path },
                    a.iter()
                        .map(|(k, _)| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                out.push(format!(
                    "+ {}: keys in the order {}",
                    if path.is_empty() { "." } else { path },
                    b.iter()
                        .map(|(k, _)| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        (Json::Arr(a), Json::Arr(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                walk(x, y, &at(&i.to_string()), out);
            }
        }
        _ => {
            let here = if path.is_empty() { "." } else { path };
            out.push(format!("- {here}: {a}"));
            out.push(format!("+ {here}: {b}"));
        }
    }
}

/// JSON with object members kept in order.
#[derive(Debug, Clone)]
pub(super) enum Json {
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
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Json, A::Error> {
                members(map).map(Json::Obj)
            }
        }
        d.deserialize_any(V)
    }
}

/// JSON text the gateway or a cases file produced, read with member order kept.
pub(super) fn ordered(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or(Json::Str(text.to_owned()))
}
