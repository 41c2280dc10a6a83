//! path-guard's rules for file paths, shared by every Rust hook that checks a path against a
//! root (path-guard, and allowlist's `airlock-path` format).
//!
//! A path, read as a POSIX path (relative paths are relative to the root), must stay inside the
//! root at every step. Refused: `..` that leaves the root (even to come back), absolute paths
//! outside it, backslashes, percent-encoded bytes (`%2e`, `%252f`, `%u002e`), Unicode lookalikes
//! of `/`, `\` and `.`, control and invisible formatting characters, segments made only of dots
//! and spaces (`...`, `.. `: read as `..` by some systems) or `..;`, `~`, drive letters, URLs and
//! `file:`.
//!
//! ```
//! let root = airlock_hook::path::root("/app/data").unwrap();
//! assert!(airlock_hook::path::check(&root, "notes/a.txt").is_ok());
//! let error = airlock_hook::path::check(&root, "../etc/passwd").unwrap_err();
//! assert_eq!(error, "walks out of the root /app/data");
//! assert!(airlock_hook::path::root("app").is_err());
//! ```

/// The segments of a root given as an absolute POSIX path (empty for `/`), or why it is not one;
/// the error completes "root {root:?} …".
pub fn root(root: &str) -> Result<Vec<String>, String> {
    if !root.starts_with('/') || root.contains('\\') || root.chars().any(char::is_control) {
        return Err("must be an absolute POSIX path".to_owned());
    }
    let mut segments = Vec::new();
    for segment in root.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err("must not contain `..`".to_owned()),
            s => segments.push(s.to_owned()),
        }
    }
    Ok(segments)
}

/// Checks one path against the root; the error completes "path {path:?} …".
pub fn check(root: &[String], path: &str) -> Result<(), String> {
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
