//! The text a hook holds that a reference implementation of its policy does not: in
//! differential fuzzing, what the hook checks that the reference does not is there, whatever the
//! language, and the mutator tries it first ([`Hints::distinct`](super::Hints::distinct)).
//!
//! A compiled hook (Rust, C) keeps its literals in its data segments, several end to end: the
//! pieces of its printable text that the reference's text lacks are the hook's own
//! ([`distinct_strings`]). An interpreted hook (Python) ships its runtime's heap as a snapshot,
//! where every pointer and hash moves between two builds and a key the hook looks up (`mode`) is
//! one string object shared with the runtime's own code. There the hook's text is found through
//! its string objects: those the reference lacks, then the ones stored next to references to
//! them (a function's constants sit together in one tuple: `mode` beside `raw:` and `opts`).
//!
//! A string object is known by its header, not by the byte before its text: CPython 3.12 leaves
//! the padding of a string's `state` uninitialized, so in some builds a string's text follows
//! leftover bytes rather than a 0 (which made `raw:` stand out of one build's snapshot and not
//! another's, and most of the runtime's strings look like the hook's own).

use std::collections::{BTreeSet, HashMap, HashSet};

use wasmparser::{Operator, Parser, Payload};

/// At most this many strings are returned: the mutator picks among them at random.
const MAX_DISTINCT: usize = 256;

/// A heap snapshot holds at least this many string objects.
const MIN_OBJECTS: usize = 1000;

/// The text of `hook`'s data that `reference`'s data lacks, as word-like strings of 3 to 16
/// bytes (at most 256, the likeliest the hook's own first; see the module docs). Literals that run together are cut where the
/// reference's text begins: a byte is new when no 4-byte window around it occurs in the
/// reference.
pub fn distinct_strings(hook: &[u8], reference: &[u8]) -> Vec<String> {
    let ours = Image::of(hook);
    if let Some(objects) = ours.string_objects() {
        let theirs = Image::of(reference)
            .string_objects()
            .map(|o| o.texts.into_values().collect())
            .unwrap_or_default();
        let mut found = objects_only_in(&objects.texts, &theirs);
        for near in ours.neighbours(&objects, &found) {
            if found.len() >= MAX_DISTINCT {
                break;
            }
            if !found.contains(&near) {
                found.push(near);
            }
        }
        return found;
    }
    pieces(hook, reference)
}

/// Pieces of the printable runs of `hook`'s data that `reference`'s runs lack.
fn pieces(hook: &[u8], reference: &[u8]) -> Vec<String> {
    let theirs = data_strings(reference);
    let grams: HashSet<&[u8]> = theirs
        .iter()
        .flat_map(|run| run.as_bytes().windows(4))
        .collect();
    let mut pieces = BTreeSet::new();
    for run in data_strings(hook) {
        if theirs.contains(&run) {
            continue;
        }
        let bytes = run.as_bytes();
        if bytes.len() < 4 {
            pieces.insert(run.clone());
            continue;
        }
        // New: every window that holds the byte is new.
        let known: Vec<bool> = bytes.windows(4).map(|w| grams.contains(w)).collect();
        let new = |at: usize| (at.saturating_sub(3)..=at.min(known.len() - 1)).all(|w| !known[w]);
        let mut at = 0;
        while at < bytes.len() {
            if !new(at) {
                at += 1;
                continue;
            }
            let end = (at..bytes.len()).find(|&i| !new(i)).unwrap_or(bytes.len());
            pieces.insert(run[at..end].to_owned());
            at = end;
        }
    }
    pieces
        .into_iter()
        .filter(|piece| wordy(piece))
        .take(MAX_DISTINCT)
        .collect()
}

/// Binary data reads as printable now and then: what looks like a word.
fn wordy(piece: &str) -> bool {
    (3..=16).contains(&piece.len())
        && piece
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_:./-@#$%+=!?*".contains(&b))
        && piece.bytes().filter(u8::is_ascii_lowercase).count() >= 2
}

/// In a heap snapshot: the hook's word-like string objects that the reference lacks, shortest
/// first (keys and literals are short; the runtime's own differences, whole modules the other
/// build did not load, are mostly longer names).
fn objects_only_in(ours: &HashMap<u32, &str>, theirs: &HashSet<&str>) -> Vec<String> {
    let mut found: Vec<&str> = ours
        .values()
        .copied()
        .filter(|text| wordy(text) && !theirs.contains(text))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    found.sort_by_key(|text| text.len());
    found
        .into_iter()
        .take(MAX_DISTINCT)
        .map(str::to_owned)
        .collect()
}

/// How many words either side of a reference to one of the hook's strings are looked at for
/// references to others (a tuple of constants; wider takes in the module's names first).
const NEIGHBOURHOOD: u32 = 3;

/// The string objects of a heap snapshot.
struct Objects<'a> {
    /// Their text, by the address of the text.
    texts: HashMap<u32, &'a str>,
    /// The text's offset from the object's address.
    text_offset: u32,
}

/// The active data segments of a component's modules, by address (every module's together:
/// the one that matters, the hook's own, holds nearly all of them).
struct Image<'a> {
    segments: Vec<(u32, &'a [u8])>,
}

impl<'a> Image<'a> {
    fn of(bytes: &'a [u8]) -> Self {
        let mut segments = Vec::new();
        for payload in Parser::new(0).parse_all(bytes) {
            let Ok(Payload::DataSection(section)) = payload else {
                continue;
            };
            for data in section.into_iter().flatten() {
                if let wasmparser::DataKind::Active { offset_expr, .. } = data.kind
                    && let Ok(Operator::I32Const { value }) =
                        offset_expr.get_operators_reader().read()
                {
                    segments.push((value as u32, data.data));
                }
            }
        }
        segments.sort_unstable_by_key(|&(start, _)| start);
        Image { segments }
    }

    /// The 4-byte little-endian word at an address.
    fn word(&self, at: u32) -> Option<u32> {
        let index = self.segments.partition_point(|&(start, _)| start <= at);
        let (start, bytes) = self.segments.get(index.checked_sub(1)?)?;
        let offset = (at - start) as usize;
        let word = bytes.get(offset..offset + 4)?;
        Some(u32::from_le_bytes(word.try_into().ok()?))
    }

    /// The string objects of a heap snapshot: the word most printable NUL-terminated runs hold a
    /// fixed number of bytes before them is the string type; an object is where that word is,
    /// followed, that number of bytes on, by printable NUL-terminated text, with its length in
    /// a word between (the byte just before the text may be anything: see the module docs).
    /// `None` when there are too few to be a runtime's heap.
    fn string_objects(&self) -> Option<Objects<'a>> {
        let mut runs: Vec<(u32, &'a str)> = Vec::new();
        for &(start, bytes) in &self.segments {
            let mut at = 0;
            for run in bytes.split(|&b| b == 0) {
                let printable = run.len() >= 2 && run.iter().all(|b| (0x20..0x7f).contains(b));
                if printable && run.len() <= 64 {
                    // Printable ASCII is UTF-8.
                    runs.push((start + at as u32, std::str::from_utf8(run).ok()?));
                }
                at += run.len() + 1;
            }
        }
        let mut headers: HashMap<(u32, u32), usize> = HashMap::new();
        for &(at, _) in &runs {
            for before in (4..=32).step_by(4) {
                if let Some(word) = at.checked_sub(before).and_then(|h| self.word(h))
                    && word != 0
                {
                    *headers.entry((before, word)).or_default() += 1;
                }
            }
        }
        let (&(before, tag), &count) =
            headers.iter().max_by_key(|(key, count)| (**count, **key))?;
        if count < MIN_OBJECTS {
            return None;
        }
        let mut texts = HashMap::new();
        for &(start, bytes) in &self.segments {
            let mut at = start.next_multiple_of(4);
            while at + 4 <= start + bytes.len() as u32 {
                if self.word(at) == Some(tag)
                    && let Some(text) = self.text(at + before)
                    && (at + 4..at + before)
                        .step_by(4)
                        .any(|w| self.word(w) == Some(text.len() as u32))
                {
                    texts.insert(at + before, text);
                }
                at += 4;
            }
        }
        // An object starts a word before its type (after its reference count).
        Some(Objects {
            texts,
            text_offset: before + 4,
        })
    }

    /// Printable text of 2 to 64 bytes at an address, ended by a 0.
    fn text(&self, at: u32) -> Option<&'a str> {
        let index = self.segments.partition_point(|&(start, _)| start <= at);
        let (start, bytes) = self.segments.get(index.checked_sub(1)?)?;
        let rest = bytes.get((at - start) as usize..)?;
        let end = rest.iter().take(65).position(|&b| b == 0)?;
        let text = &rest[..end];
        (text.len() >= 2 && text.iter().all(|b| (0x20..0x7f).contains(b)))
            .then(|| std::str::from_utf8(text).ok())
            .flatten()
    }

    /// The word-like strings referenced near a reference to one of `found` (see the module
    /// docs), those found beside the most of `found`'s references first.
    fn neighbours(&self, objects: &Objects<'a>, found: &[String]) -> Vec<String> {
        let by_object: HashMap<u32, &str> = objects
            .texts
            .iter()
            .map(|(&at, &text)| (at - objects.text_offset, text))
            .collect();
        let found: HashSet<&str> = found.iter().map(String::as_str).collect();
        let ours: HashSet<u32> = by_object
            .iter()
            .filter(|(_, text)| found.contains(*text))
            .map(|(&at, _)| at)
            .collect();
        // Each string, with the references to the hook's strings it was found beside.
        let mut near: HashMap<&str, HashSet<u32>> = HashMap::new();
        for &(start, bytes) in &self.segments {
            let mut at = start.next_multiple_of(4);
            while at + 4 <= start + bytes.len() as u32 {
                if let Some(anchor) = self.word(at).filter(|w| ours.contains(w)) {
                    let from = at.saturating_sub(4 * NEIGHBOURHOOD);
                    for w in (from..=at + 4 * NEIGHBOURHOOD).step_by(4) {
                        if let Some(text) = self.word(w).and_then(|w| by_object.get(&w))
                            && wordy(text)
                            && !found.contains(text)
                        {
                            near.entry(text).or_default().insert(anchor);
                        }
                    }
                }
                at += 4;
            }
        }
        let near: HashMap<&str, usize> = near
            .into_iter()
            .map(|(text, anchors)| (text, anchors.len()))
            .collect();
        let mut near: Vec<(&str, usize)> = near.into_iter().collect();
        near.sort_by_key(|&(text, count)| (std::cmp::Reverse(count), text.len(), text));
        near.into_iter().map(|(text, _)| text.to_owned()).collect()
    }
}

/// The printable runs (of 2 bytes or more) of every data segment of a component (or module),
/// nested ones included.
fn data_strings(bytes: &[u8]) -> BTreeSet<String> {
    let mut strings = BTreeSet::new();
    for payload in Parser::new(0).parse_all(bytes) {
        let Ok(Payload::DataSection(section)) = payload else {
            continue;
        };
        for data in section.into_iter().flatten() {
            for run in data.data.split(|b| !(0x20..0x7f).contains(b)) {
                if run.len() >= 2 {
                    strings.insert(String::from_utf8_lossy(run).into_owned());
                }
            }
        }
    }
    strings
}
