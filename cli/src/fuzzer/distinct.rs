//! The text a hook holds that a reference implementation of its policy does not: in
//! differential fuzzing, what the hook checks that the reference does not is there, whatever the
//! language, and the mutator tries it first ([`Hints::distinct`](super::Hints::distinct)).
//!
//! A compiled hook (Rust, C) keeps its literals in its data segments, several end to end: the
//! pieces of its printable text that the reference's text lacks are the hook's own
//! ([`distinct_strings`]). An interpreted hook (Python) ships its runtime's heap as a snapshot,
//! where every pointer and hash moves between two builds and a key the hook looks up (`mode`) is
//! one string object shared with the runtime's own code. There the hook's text is found through
//! its string objects: those the reference lacks, and the ones stored next to references to them
//! (a function's constants sit together in one tuple).

use std::collections::{BTreeSet, HashMap, HashSet};

use wasmparser::{Operator, Parser, Payload};

/// At most this many strings are returned: the mutator picks among them at random.
const MAX_DISTINCT: usize = 256;

/// A heap snapshot holds at least this many string objects.
const MIN_OBJECTS: usize = 1000;

/// The text of `hook`'s data that `reference`'s data lacks, as word-like strings of 3 to 16
/// bytes (at most 256; see the module docs). Literals that run together are cut where the
/// reference's text begins: a byte is new when no 4-byte window around it occurs in the
/// reference.
pub fn distinct_strings(hook: &[u8], reference: &[u8]) -> Vec<String> {
    let ours = Image::of(hook);
    if let Some(objects) = ours.string_objects() {
        let theirs = Image::of(reference).string_objects().unwrap_or_default();
        return objects_only_in(&objects, &theirs.into_values().collect());
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

    /// The text of the string objects of a heap snapshot, by address: printable NUL-terminated
    /// runs whose header holds, a fixed number of bytes before the text, the word most such runs
    /// hold there (the string type). `None` when there are too few to be a runtime's heap.
    fn string_objects(&self) -> Option<HashMap<u32, &'a str>> {
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
        Some(
            runs.into_iter()
                .filter(|&(at, _)| self.word(at - before) == Some(tag))
                .collect(),
        )
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
