//! The attack corpus: seed messages drawn from known attacks on desktop IPC, one JSON Lines file
//! per source in `cli/corpus/` (embedded in the tool), each message naming its source in an
//! `about` field (which `airlock::jsonl` skips). `airlock fuzz` starts from them (with its
//! built-in seeds) unless given `--seeds`; `airlock replay` and `airlock inspect` read the files
//! as they are.

use anyhow::Context as _;

use airlock::{Request, Source, jsonl};

/// The corpus files: `(file name, contents)`.
pub const FILES: &[(&str, &str)] = &[
    (
        "tauri-cve-2024-35222.jsonl",
        include_str!("../corpus/tauri-cve-2024-35222.jsonl"),
    ),
    (
        "tauri-cve-2026-42184.jsonl",
        include_str!("../corpus/tauri-cve-2026-42184.jsonl"),
    ),
    (
        "tauri-cve-2026-95624.jsonl",
        include_str!("../corpus/tauri-cve-2026-95624.jsonl"),
    ),
    (
        "path-traversal.jsonl",
        include_str!("../corpus/path-traversal.jsonl"),
    ),
    (
        "electron-open-external.jsonl",
        include_str!("../corpus/electron-open-external.jsonl"),
    ),
    (
        "prototype-pollution.jsonl",
        include_str!("../corpus/prototype-pollution.jsonl"),
    ),
    (
        "oversized-and-nested.jsonl",
        include_str!("../corpus/oversized-and-nested.jsonl"),
    ),
];

/// One seed: the file it is in, its line, its source (the `about` text) and the message.
#[derive(Debug, Clone)]
pub struct Seed {
    /// The corpus file.
    pub file: &'static str,
    /// Its line, from 1.
    pub line: usize,
    /// Where the attack comes from, as the seed's `about` says.
    pub about: String,
    /// The message's source (window, webview, origin).
    pub source: Source,
    /// The message.
    pub request: Request,
}

/// Every seed of the corpus; an error names a line that is not a message or has no `about`.
pub fn seeds() -> anyhow::Result<Vec<Seed>> {
    #[derive(serde::Deserialize)]
    struct About {
        about: String,
    }
    let mut seeds = Vec::new();
    for (file, text) in FILES {
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = || format!("corpus/{file}:{}", index + 1);
            let (source, request) =
                jsonl::parse_line(line).map_err(|e| anyhow::anyhow!("{}: {e}", at()))?;
            let about = serde_json::from_str::<About>(line)
                .with_context(|| format!("{}: a seed names its source in `about`", at()))?
                .about;
            seeds.push(Seed {
                file,
                line: index + 1,
                about,
                source,
                request,
            });
        }
    }
    Ok(seeds)
}

/// `airlock fuzz`'s default seeds: its built-in ones, then the corpus.
pub fn with_builtin_seeds() -> anyhow::Result<Vec<(Source, Request)>> {
    let mut all = crate::fuzzer::mutate::builtin_seeds();
    all.extend(seeds()?.into_iter().map(|s| (s.source, s.request)));
    Ok(all)
}
