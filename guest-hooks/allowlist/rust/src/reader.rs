//! A strict, fast JSON reader for the config and the args: `configure` reads the whole config on
//! every fresh instance, and serde_json (with the `preserve_order` and `arbitrary_precision` the
//! redact hook turns on for every hook of a build) costs several times more.
//!
//! It reads only what it is sure serde_json reads the same way, and gives up (`None`) on anything
//! else: malformed JSON, a duplicate key, a number that is not a plain integer of up to 18
//! digits, a `\u` escape of a surrogate, deep nesting, serde_json's private number key. The
//! caller then reads the text with serde_json ([`crate::json::parse`]), which gives the value or
//! the precise error. So what this reader accepts, serde_json accepts too, with the same value.

use std::borrow::Cow;

use crate::json::{Json, Keys, NUMBER_TOKEN};

/// Nesting deeper than this is left to serde_json (whose limit is 128).
const MAX_DEPTH: usize = 100;

/// Most digits of an integer read here: 18 fit in an `i64` and a `u64`.
const MAX_DIGITS: usize = 18;

/// Eight spaces, as a word.
const SPACES: u64 = u64::from_ne_bytes([b' '; 8]);

/// Where the first byte that ends a plain run of string text is among 8 bytes read as a
/// little-endian word: a quote, a backslash or a control character (below 0x20); 8 when there is
/// none. The bit tricks of Hacker's Delight ("find the first 0-byte"): a byte's high bit is set
/// for each such byte, and possibly for bytes after one (a borrow), never before the first, so
/// the lowest set bit is exact.
fn plain_run(word: u64) -> usize {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    let quote = zero_bytes(word ^ u64::from_ne_bytes([b'"'; 8]));
    let backslash = zero_bytes(word ^ u64::from_ne_bytes([b'\\'; 8]));
    ((control | quote | backslash).trailing_zeros() / 8) as usize
}

/// `text` as one JSON value, or `None` when it is anything but plain, well-formed JSON.
pub fn read(text: &str) -> Option<Json<'_>> {
    let mut reader = Reader {
        text,
        bytes: text.as_bytes(),
        at: 0,
        members: Vec::new(),
        items: Vec::new(),
    };
    let value = reader.value(0)?;
    reader.space();
    (reader.at == reader.bytes.len()).then_some(value)
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    /// The members of the objects being read, innermost last: each object's are moved out into
    /// a `Vec` of their own, allocated once at the right size, when it ends.
    members: Vec<(Cow<'a, str>, Json<'a>)>,
    /// The same for the items of arrays.
    items: Vec<Json<'a>>,
}

impl<'a> Reader<'a> {
    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    /// The 8 bytes from the reader on, as a little-endian word (`None` near the end).
    #[inline(always)]
    fn word8(&self) -> Option<u64> {
        let chunk = self.bytes.get(self.at..self.at + 8)?;
        Some(u64::from_le_bytes(chunk.try_into().ok()?))
    }

    /// Skips JSON's four whitespace bytes (a config's indentation up to 8 spaces at a time).
    #[inline]
    fn space(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.at += 1;
            while let Some(word) = self.word8() {
                let spaces = ((word ^ SPACES).trailing_zeros() / 8) as usize;
                self.at += spaces;
                if spaces < 8 {
                    break;
                }
            }
        }
    }

    fn value(&mut self, depth: usize) -> Option<Json<'a>> {
        self.space();
        match self.peek()? {
            b'{' => self.object(depth + 1),
            b'[' => self.array(depth + 1),
            b'"' => self.string().map(Json::String),
            b't' => self.word(b"true", Json::Bool(true)),
            b'f' => self.word(b"false", Json::Bool(false)),
            b'n' => self.word(b"null", Json::Null),
            _ => self.integer(),
        }
    }

    fn word(&mut self, word: &[u8], value: Json<'a>) -> Option<Json<'a>> {
        if !self.bytes[self.at..].starts_with(word) {
            return None;
        }
        self.at += word.len();
        Some(value)
    }

    /// `-?(0|[1-9][0-9]*)`, at most 18 digits, not `-0`, and not followed by a fraction or an
    /// exponent (those, and longer numbers, are left to serde_json).
    fn integer(&mut self) -> Option<Json<'a>> {
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        let start = self.at;
        let mut n: u64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            n = n * 10 + u64::from(digit - b'0');
            self.at += 1;
            if self.at - start > MAX_DIGITS {
                return None;
            }
        }
        let digits = self.at - start;
        if digits == 0 || (self.bytes[start] == b'0' && (digits > 1 || negative)) {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = self.peek() {
            return None;
        }
        Some(Json::Number(match negative {
            // 18 digits fit: the cast cannot wrap.
            true => serde_json::Number::from(-(n as i64)),
            false => serde_json::Number::from(n),
        }))
    }

    /// A string, the reader on its opening quote.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.at += 1;
        let start = self.at;
        loop {
            // A word at a time, to the first quote, backslash or control character.
            while let Some(word) = self.word8() {
                let run = plain_run(word);
                self.at += run;
                if run < 8 {
                    break;
                }
            }
            match self.peek()? {
                b'"' => {
                    // Both ends are at ASCII quotes: char boundaries.
                    let s = &self.text[start..self.at];
                    self.at += 1;
                    return Some(Cow::Borrowed(s));
                }
                b'\\' => return self.escaped(start).map(Cow::Owned),
                0..=0x1f => return None,
                _ => self.at += 1,
            }
        }
    }

    /// The rest of a string with escapes, from `start` (after its opening quote); the reader is
    /// on the first backslash.
    fn escaped(&mut self, start: usize) -> Option<String> {
        let mut owned = String::from(&self.text[start..self.at]);
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(owned);
                }
                b'\\' => {
                    let escape = *self.bytes.get(self.at + 1)?;
                    self.at += 2;
                    owned.push(match escape {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => self.unicode()?,
                        _ => return None,
                    });
                }
                0..=0x1f => return None,
                _ => {
                    let run = self.at;
                    while let Some(b) = self.peek()
                        && b != b'"'
                        && b != b'\\'
                        && b >= 0x20
                    {
                        self.at += 1;
                    }
                    owned.push_str(&self.text[run..self.at]);
                }
            }
        }
    }

    /// The four hex digits of a `\u` escape; surrogates (halves of a pair, or lone) are left to
    /// serde_json.
    fn unicode(&mut self) -> Option<char> {
        let hex = self.bytes.get(self.at..self.at + 4)?;
        let mut code = 0;
        for digit in hex {
            code = code * 16 + (*digit as char).to_digit(16)?;
        }
        self.at += 4;
        char::from_u32(code)
    }

    fn array(&mut self, depth: usize) -> Option<Json<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.at += 1;
        let base = self.items.len();
        self.space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Some(Json::Array(Vec::new()));
        }
        loop {
            let item = self.value(depth)?;
            self.items.push(item);
            self.space();
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(Json::Array(self.items.split_off(base)));
                }
                _ => return None,
            }
        }
    }

    fn object(&mut self, depth: usize) -> Option<Json<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.at += 1;
        let base = self.members.len();
        self.space();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Some(Json::Object(Vec::new()));
        }
        let mut keys = Keys::default();
        loop {
            self.space();
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            if key == NUMBER_TOKEN || keys.repeated(&self.members[base..], &key) {
                return None;
            }
            self.space();
            if self.peek()? != b':' {
                return None;
            }
            self.at += 1;
            let value = self.value(depth)?;
            self.members.push((key, value));
            self.space();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(Json::Object(self.members.split_off(base)));
                }
                _ => return None,
            }
        }
    }
}
