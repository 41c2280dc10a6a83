//! The config's and the args' JSON, read into a light tree that borrows its strings from the text
//! and keeps object members in a `Vec`: `configure` reads the whole config on every fresh
//! instance, and a `serde_json::Value` (a map and an owned string per member; with
//! `preserve_order` and `arbitrary_precision`, which the redact hook turns on for every hook of a
//! build, a hash table per object and a string per number) costs several times more to build and
//! free. Duplicate keys are refused at any depth.
//!
//! Text is read by the fast reader of `reader.rs` first; what it does not take (anything unusual,
//! and every error) is read again with serde_json, whose reading is the reference: the value, or
//! the precise error.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// One JSON value of a config or of args.
#[derive(Debug, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    /// Members in the order written.
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

/// The key serde_json gives a number under `arbitrary_precision`.
pub const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Parses `text` as one JSON value; duplicate keys at any depth are an error.
pub fn parse(text: &str) -> Result<Json<'_>, String> {
    match crate::reader::read(text) {
        Some(value) => Ok(value),
        None => parse_with_serde(text),
    }
}

/// [`parse`] with serde_json alone: what the fast reader must agree with.
pub fn parse_with_serde(text: &str) -> Result<Json<'_>, String> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Json::deserialize(&mut de).map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    Ok(value)
}

impl<'a> Json<'a> {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    /// A number as `f64`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// A non-negative integer (`3` or `3.0`).
    pub fn as_count(&self) -> Option<u64> {
        let Json::Number(n) = self else { return None };
        n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1e19)
                .map(|f| f as u64)
        })
    }

    /// How its type is named in messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// The same value as a `serde_json::Value` (for `enum` and `const`, compared with args).
    pub fn to_value(&self) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => Value::Number(n.clone()),
            Json::String(s) => Value::String(s.to_string()),
            Json::Array(items) => Value::Array(items.iter().map(Json::to_value).collect()),
            Json::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_value()))
                    .collect(),
            ),
        }
    }

    /// The value at a JSON pointer (`""` is the whole value), reading `~0` and `~1`.
    pub fn pointer(&self, pointer: &str) -> Option<&Json<'a>> {
        if pointer.is_empty() {
            return Some(self);
        }
        let mut at = self;
        for segment in pointer.strip_prefix('/')?.split('/') {
            let unescaped;
            let segment = if segment.contains('~') {
                unescaped = segment.replace("~1", "/").replace("~0", "~");
                unescaped.as_str()
            } else {
                segment
            };
            at = match at {
                Json::Object(_) => at.get(segment)?,
                Json::Array(items) => items.get(segment.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(at)
    }
}

impl fmt::Display for Json<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.to_value())
    }
}

/// An object key, borrowed from the text when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// One object's keys so far, for refusing a repeated key: a scan of them while the object is
/// small, an ordered set once it is not, so an object with tens of thousands of keys (a message's
/// args are the frontend's to choose) costs n log n comparisons, not n².
#[derive(Default)]
pub struct Keys<'a> {
    set: Option<BTreeSet<Cow<'a, str>>>,
}

/// Up to this many keys, a scan is cheaper than keeping a set.
const SCANNED_KEYS: usize = 16;

impl<'a> Keys<'a> {
    /// Whether `key` is among the keys of `members`, the object's members read before it (the
    /// same members at every call, one more each time); counts `key` as read.
    #[expect(
        clippy::ptr_arg,
        reason = "the set keeps a borrowed key as it is, without a copy"
    )]
    pub fn repeated(&mut self, members: &[(Cow<'a, str>, Json<'a>)], key: &Cow<'a, str>) -> bool {
        if self.set.is_none() && members.len() < SCANNED_KEYS {
            return members.iter().any(|(k, _)| k == key);
        }
        let set = self
            .set
            .get_or_insert_with(|| members.iter().map(|(k, _)| k.clone()).collect());
        !set.insert(key.clone())
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json<'de>, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Json<'de>, E> {
        serde_json::Number::from_f64(n)
            .map(Json::Number)
            .ok_or_else(|| E::custom("a number that is not finite"))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(s)))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut members: Vec<(Cow<'de, str>, Json<'de>)> = Vec::new();
        let mut keys = Keys::default();
        while let Some(Key(key)) = map.next_key()? {
            if key == NUMBER_TOKEN && members.is_empty() {
                let text: String = map.next_value()?;
                let number = text.parse().map_err(de::Error::custom)?;
                return Ok(Json::Number(number));
            }
            if keys.repeated(&members, &key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let value = map.next_value()?;
            members.push((key, value));
        }
        Ok(Json::Object(members))
    }
}
