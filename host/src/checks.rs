//! The checks every message meets, from the frontend or from a hook's `replace`: its name, its
//! headers, and a body well-formed for its kind.

use crate::message::{Body, Header, Kind};
use crate::verdict::{Rejection, code};

/// Names as Tauri allows them, restricted to ASCII: letters, digits, `-`, `/`, `:`, `_`, and
/// `|` (Tauri's plugin commands are `plugin:NAME|cmd`).
pub(crate) fn check_name(name: &str, max_bytes: usize) -> Result<(), Rejection> {
    let problem = if name.is_empty() {
        "name is empty".to_owned()
    } else if name.len() > max_bytes {
        format!(
            "name of {} bytes is over the limit of {max_bytes} bytes",
            name.len()
        )
    } else if let Some(bad) = name
        .chars()
        .find(|&c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | ':' | '_' | '|')))
    {
        format!(
            "name {name:?} has {bad:?}; only ASCII letters, digits, -, /, :, _ and | are allowed"
        )
    } else {
        return Ok(());
    };
    Err(Rejection::new(code::INVALID_NAME, problem))
}

pub(crate) fn check_headers(headers: &[Header], max: usize) -> Result<(), Rejection> {
    if headers.len() > max {
        return Err(Rejection::new(
            code::INVALID_HEADER,
            format!("{} headers is over the limit of {max}", headers.len()),
        ));
    }
    for h in headers {
        let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if h.name.is_empty() || !h.name.bytes().all(token) {
            return Err(Rejection::new(
                code::INVALID_HEADER,
                format!("header name {:?} is not an HTTP token", h.name),
            ));
        }
        if let Some(bad) = h.value.chars().find(|&c| c.is_control() && c != '\t') {
            return Err(Rejection::new(
                code::INVALID_HEADER,
                format!(
                    "header {:?} has control character {bad:?} in its value",
                    h.name
                ),
            ));
        }
    }
    Ok(())
}

/// A JSON body must parse and nest at most `max_depth` deep; a command's JSON args must be an
/// object or `null`, as Tauri's are (`invoke(cmd, null)`, and Tauri's own channel data pulls).
/// Bytes bodies are taken as they are. One pass over the text.
pub(crate) fn check_body(kind: Kind, body: &Body, max_depth: usize) -> Result<(), Rejection> {
    let Body::Json(text) = body else {
        return Ok(());
    };
    let mut parser = serde_json::Deserializer::from_str(text);
    let parsed = serde::de::DeserializeSeed::deserialize(
        Nesting {
            depth: 0,
            max_depth,
        },
        &mut parser,
    )
    .and_then(|()| parser.end());
    if let Err(e) = parsed {
        let problem = match e.to_string().starts_with(TOO_DEEP) {
            true => format!(
                "JSON nests deeper than the limit of {max_depth} at line {} column {}",
                e.line(),
                e.column()
            ),
            false => format!("body is not valid JSON: {e}"),
        };
        return Err(Rejection::new(code::INVALID_BODY, problem));
    }
    let first = text.trim_start_matches([' ', '\t', '\n', '\r']).as_bytes()[0];
    if kind == Kind::Command && first != b'{' && first != b'n' {
        return Err(Rejection::new(
            code::INVALID_BODY,
            format!(
                "command args must be a JSON object, got {}",
                match first {
                    b'[' => "an array",
                    b'"' => "a string",
                    b't' | b'f' => "a boolean",
                    _ => "a number",
                }
            ),
        ));
    }
    Ok(())
}

/// The start of the error [`Nesting`] raises past its limit.
const TOO_DEEP: &str = "nested too deep";

/// Walks a JSON value without keeping it, refusing arrays and objects nested past `max_depth`.
#[derive(Clone, Copy)]
struct Nesting {
    depth: usize,
    max_depth: usize,
}

impl Nesting {
    fn enter<E: serde::de::Error>(self) -> Result<Nesting, E> {
        match self.depth < self.max_depth {
            true => Ok(Nesting {
                depth: self.depth + 1,
                ..self
            }),
            false => Err(E::custom(TOO_DEEP)),
        }
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Nesting {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Nesting {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let inner = self.enter()?;
        while map.next_key::<serde::de::IgnoredAny>()?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }
}
