//! `--routes FILE.json`: chains of their own for some windows, webviews, origins or name
//! prefixes, in front of the default chain the `--hook` flags make.
//!
//! The file is a JSON array of routes, tried in order (the first that matches wins):
//!
//! ```json
//! [
//!   { "window": "settings-*", "prefix": ["fs_", "plugin:fs|"],
//!     "hooks": ["path-guard.wasm", { "hook": "redact.wasm", "config": "redact.json" }] },
//!   { "origin": ["http://127.0.0.1:7300"], "webview": "side", "hooks": ["strict.wasm"] }
//! ]
//! ```
//!
//! `window` and `webview` are globs (`*`, `?`); `origin` and `prefix` are a string or a list;
//! each part is optional. A hook is a path, or `{ "hook": PATH, "config": FILE-or-JSON, "pin":
//! SHA256 }` where a string `config` names a JSON file and anything else is the config itself,
//! and `pin` (optional, like `--pin` for the default chain) is the SHA-256 the hook's bytes must
//! have. Relative paths are read from the routes file's folder. Every route needs at least one
//! hook.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Deserialize;

use airlock::trust::Trust;
use airlock::{Gateway, Hook, HookEngine, HookLimits, HookOptions, Route};

use crate::flags::{Mode, load_hook_file, read_config};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteSpec {
    window: Option<String>,
    webview: Option<String>,
    #[serde(default)]
    origin: OneOrMany,
    #[serde(default)]
    prefix: OneOrMany,
    /// Each a path or a [`FullHookSpec`], read one by one so an error names the hook.
    hooks: Vec<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(one) => vec![one],
            OneOrMany::Many(many) => many,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FullHookSpec {
    hook: PathBuf,
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default)]
    pin: Option<String>,
}

/// A route read from a routes file, its hooks loaded.
#[derive(Debug)]
pub struct LoadedRoute {
    /// What the route matches.
    pub route: Route,
    /// Its chain, in order, each with the file it came from.
    pub hooks: Vec<(PathBuf, Hook)>,
}

/// Reads the routes file `path` and loads every hook it names on `engine` with `limits`, in
/// `mode` (resolved per hook), keeping at most `max_idle` warm instances of reused hooks.
pub fn load(
    path: &Path,
    engine: &HookEngine,
    limits: HookLimits,
    trust: &Trust,
    mode: Mode,
    max_idle: usize,
) -> anyhow::Result<Vec<LoadedRoute>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read routes file {}", path.display()))?;
    let specs: Vec<RouteSpec> = serde_json::from_str(&text).with_context(|| {
        format!(
            "routes file {} is not a JSON array of routes ({{\"window\", \"webview\", \"origin\", \"prefix\", \"hooks\"}})",
            path.display()
        )
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    specs
        .into_iter()
        .enumerate()
        .map(|(index, spec)| {
            let at = || format!("routes file {}, route {index}", path.display());
            if spec.hooks.is_empty() {
                bail!(
                    "{}: \"hooks\" is empty; a route needs at least one hook",
                    at()
                );
            }
            let mut route = Route::any();
            if let Some(glob) = &spec.window {
                route = route.window(glob);
            }
            if let Some(glob) = &spec.webview {
                route = route.webview(glob);
            }
            for origin in spec.origin.into_vec() {
                route = route.origin(&origin);
            }
            for prefix in spec.prefix.into_vec() {
                route = route.prefix(&prefix);
            }
            let hooks = spec
                .hooks
                .into_iter()
                .enumerate()
                .map(|(at, hook)| {
                    let spec = match hook {
                        serde_json::Value::String(file) => FullHookSpec {
                            hook: file.into(),
                            config: None,
                            pin: None,
                        },
                        other => serde_json::from_value(other).with_context(|| {
                            format!(
                                "hook {at} is neither a path nor {{\"hook\", \"config\", \"pin\"}}"
                            )
                        })?,
                    };
                    let FullHookSpec { hook, config, pin } = spec;
                    let config = match config {
                        None => "{}".to_owned(),
                        Some(serde_json::Value::String(file)) => read_config(&base.join(file))?,
                        Some(inline) => inline.to_string(),
                    };
                    let trust = match pin {
                        None => trust.clone(),
                        Some(pin) => trust
                            .clone()
                            .pin(&pin)
                            .with_context(|| format!("the pin of hook {}", hook.display()))?,
                    };
                    let file = base.join(hook);
                    // Routed hooks are signed by the same trusted keys as the default chain.
                    let options = HookOptions::default()
                        .with_config(config)
                        .with_limits(limits);
                    let (hook, _) = load_hook_file(engine, &file, options, trust, mode, max_idle)?;
                    Ok((file, hook))
                })
                .collect::<anyhow::Result<Vec<_>>>()
                .with_context(at)?;
            Ok(LoadedRoute { route, hooks })
        })
        .collect()
}

/// Adds `routes` to `gateway`, in order.
pub fn apply(mut gateway: Gateway, routes: Vec<LoadedRoute>) -> Gateway {
    for LoadedRoute { route, hooks } in routes {
        gateway = gateway.route(route, hooks.into_iter().map(|(_, hook)| hook).collect());
    }
    gateway
}

/// One line per route for a command's banner: `ROUTE: hook digest, …`.
pub fn describe(routes: &[LoadedRoute]) -> Vec<String> {
    routes
        .iter()
        .map(|r| {
            let hooks: Vec<String> = r
                .hooks
                .iter()
                .map(|(path, hook)| format!("{} {}", path.display(), hook.digest()))
                .collect();
            format!("{}: {}", r.route, hooks.join(", "))
        })
        .collect()
}
