//! Routing: which hook chain a message goes through, chosen by where it comes from and what it
//! names.
//!
//! A [`Route`] matches messages by the source's window label and webview label (globs), its origin
//! (one of a list, exactly) and the message's name (one of a list of prefixes). Every part is
//! optional: a part not given matches everything. [`Gateway::route`](crate::Gateway::route) gives
//! a route its own chain; routes are tried in the order they were added, the first match wins,
//! and a message no route matches goes through the gateway's default chain.
//!
//! The source is what the transport vouches for: the web gateway's window labels and origins, or
//! the labels a Tauri runtime sets. A route is only as strong as that source.

use crate::message::Source;

/// What a message must match to take a route's chain. Build it from [`Route::any`].
///
/// ```
/// use airlock::Route;
///
/// // Plugin commands from any settings window served by the app itself.
/// let route = Route::any()
///     .window("settings-*")
///     .origin("tauri://localhost")
///     .origin("http://tauri.localhost")
///     .prefix("plugin:");
/// # let _ = route;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Route {
    window: Option<Glob>,
    webview: Option<Glob>,
    origins: Vec<String>,
    prefixes: Vec<String>,
}

impl Route {
    /// A route every message matches; narrow it with the other methods.
    pub fn any() -> Route {
        Route::default()
    }

    /// Only messages from windows whose label matches `glob`: `*` stands for any run of
    /// characters (none included), `?` for exactly one, everything else for itself.
    #[must_use]
    pub fn window(mut self, glob: &str) -> Route {
        self.window = Some(Glob(glob.to_owned()));
        self
    }

    /// Only messages from webviews whose label matches `glob` (as in [`Route::window`]).
    #[must_use]
    pub fn webview(mut self, glob: &str) -> Route {
        self.webview = Some(Glob(glob.to_owned()));
        self
    }

    /// Only messages from this origin, compared exactly (`scheme://host[:port]`, as the source
    /// carries it). Call it again to allow a list of origins.
    #[must_use]
    pub fn origin(mut self, origin: &str) -> Route {
        self.origins.push(origin.to_owned());
        self
    }

    /// Only messages whose name (command, event or channel) starts with `prefix`. Call it again
    /// to allow several prefixes; the empty prefix matches every name.
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Route {
        self.prefixes.push(prefix.to_owned());
        self
    }

    /// Whether a message named `name` from `source` takes this route.
    pub fn matches(&self, source: &Source, name: &str) -> bool {
        self.window
            .as_ref()
            .is_none_or(|g| g.matches(&source.window))
            && self
                .webview
                .as_ref()
                .is_none_or(|g| g.matches(&source.webview))
            && (self.origins.is_empty() || self.origins.contains(&source.origin))
            && (self.prefixes.is_empty() || self.prefixes.iter().any(|p| name.starts_with(&**p)))
    }
}

impl std::fmt::Display for Route {
    /// The route for logs: `window="GLOB" origin="O"|"O" prefix="P"`, or `any`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(Glob(g)) = &self.window {
            parts.push(format!("window={g:?}"));
        }
        if let Some(Glob(g)) = &self.webview {
            parts.push(format!("webview={g:?}"));
        }
        if !self.origins.is_empty() {
            parts.push(format!("origin={}", quoted(&self.origins)));
        }
        if !self.prefixes.is_empty() {
            parts.push(format!("prefix={}", quoted(&self.prefixes)));
        }
        match parts.is_empty() {
            true => f.write_str("any"),
            false => f.write_str(&parts.join(" ")),
        }
    }
}

/// `"a"|"b"`.
fn quoted(values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| format!("{v:?}")).collect();
    quoted.join("|")
}

/// A label pattern: `*` any run of characters, `?` one character.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Glob(String);

impl Glob {
    /// Matches by characters (not bytes), in time linear in `pattern × text` at worst: the
    /// classic backtrack-to-the-last-star walk, so no pattern can make it exponential.
    fn matches(&self, text: &str) -> bool {
        let pattern: Vec<char> = self.0.chars().collect();
        let text: Vec<char> = text.chars().collect();
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match pattern.get(p) {
                Some('*') => {
                    star = Some((p, t));
                    p += 1;
                }
                Some(&c) if c == '?' || c == text[t] => {
                    p += 1;
                    t += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        pattern[p..].iter().all(|&c| c == '*')
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str, t: &str) -> bool {
        Glob(p.to_owned()).matches(t)
    }

    #[test]
    fn globs_match_stars_question_marks_and_literals() {
        assert!(glob("main", "main"));
        assert!(!glob("main", "main2"));
        assert!(glob("settings-*", "settings-"));
        assert!(glob("settings-*", "settings-42"));
        assert!(!glob("settings-*", "setting"));
        assert!(glob("*", ""));
        assert!(glob("w?n", "win"));
        assert!(!glob("w?n", "wn"));
        assert!(glob("*a*b", "xxaxxb"));
        assert!(!glob("*a*b", "xxaxxbc"));
        assert!(glob("é*", "école"));
        assert!(glob("?", "é"));
    }

    #[test]
    fn a_glob_of_many_stars_against_a_long_label_answers_at_once() {
        let pattern = "*a".repeat(50) + "b";
        assert!(!glob(&pattern, &"a".repeat(10_000)));
    }

    #[test]
    fn a_route_matches_only_when_every_part_it_names_matches() {
        let source = Source::new("settings-1", "body", "tauri://localhost");
        assert!(Route::any().matches(&source, "anything"));
        let route = Route::any()
            .window("settings-*")
            .origin("http://x")
            .origin("tauri://localhost")
            .prefix("fs_")
            .prefix("plugin:fs|");
        assert!(route.matches(&source, "fs_read"));
        assert!(route.matches(&source, "plugin:fs|read_file"));
        assert!(!route.matches(&source, "open_url"));
        assert!(!route.matches(&Source::new("main", "body", "tauri://localhost"), "fs_read"));
        assert!(!route.matches(&Source::new("settings-1", "body", "http://evil"), "fs_read"));
        assert!(!Route::any().webview("side").matches(&source, "x"));
        assert_eq!(
            route.to_string(),
            r#"window="settings-*" origin="http://x"|"tauri://localhost" prefix="fs_"|"plugin:fs|""#
        );
        assert_eq!(Route::any().to_string(), "any");
    }
}
