//! `airlock policy from-tauri`: writes an allowlist hook config (guest-hooks/allowlist) from a
//! Tauri v2 app's own files, so that each window may call what its capabilities grant and
//! nothing else.
//!
//! Read, as Tauri's build reads them (tauri-utils `acl`): the capability files
//! (`src-tauri/capabilities/**/*.json|toml`: one capability, a list, or `{"capabilities": [...]}`),
//! narrowed to `app.security.capabilities` of `tauri.conf.json` when it lists any (and with its
//! inline capabilities); the permission manifests tauri-build writes
//! (`src-tauri/gen/schemas/acl-manifests.json`), else the app's own permission files
//! (`src-tauri/permissions/**/*.toml|json`); the app's commands from `--command` or the
//! `generate_handler![...]` invocations of `src-tauri/src/**/*.rs`. A permission is resolved to
//! commands exactly as Tauri does (`default`, sets, sets naming other plugins' permissions;
//! `core:X` commands are `plugin:X|cmd`, a plugin's `plugin:NAME|cmd`, the app's plain names); a
//! permission that cannot be resolved from those files is reported and grants nothing. Each
//! capability becomes one rule: its windows and webviews, its origins (Tauri's local origins when
//! `local`, and the origins of its remote URLs when they can be written exactly), its commands
//! (`true`) and denied commands (`false`). What cannot be expressed is reported, never guessed:
//! wildcard hosts in remote URLs, glob classes in labels, scopes, platforms.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

/// `airlock policy …`.
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Write an allowlist hook config from a Tauri v2 app's capabilities and command list;
    /// warnings (risky patterns, what cannot be expressed) go to stderr.
    FromTauri(FromTauriArgs),
}

#[derive(Debug, Args)]
pub struct FromTauriArgs {
    /// The Tauri app: its folder, or its `src-tauri` folder.
    #[arg(default_value = ".")]
    app: PathBuf,
    /// An app command (repeatable); by default the commands of the `generate_handler![...]`
    /// invocations found in `src-tauri/src`.
    #[arg(long = "command", value_name = "NAME")]
    commands: Vec<String>,
    /// An origin Tauri serves the app's local content from, besides `tauri://localhost`,
    /// `http://tauri.localhost`, `https://tauri.localhost` and the origin of `build.devUrl`
    /// (repeatable).
    #[arg(long = "local-origin", value_name = "ORIGIN")]
    local_origins: Vec<String>,
    /// Keep only capabilities for this platform (`linux`, `macOS`, `windows`, `android`, `iOS`);
    /// by default a platform-limited capability is kept, with a warning.
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
    /// Where to write the config (default: standard output).
    #[arg(short, long, value_name = "FILE.json")]
    output: Option<PathBuf>,
}

pub fn run(args: PolicyArgs) -> anyhow::Result<()> {
    match args.command {
        PolicyCommand::FromTauri(args) => {
            let generated = from_tauri(&args)?;
            for warning in &generated.warnings {
                eprintln!("warning: {warning}");
            }
            let text = serde_json::to_string_pretty(&generated.config)? + "\n";
            match &args.output {
                Some(path) => std::fs::write(path, text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}

/// A generated config and what the reader must know about it.
struct Generated {
    /// The allowlist hook's config.
    config: Value,
    /// Risky patterns and what could not be expressed, one sentence each.
    warnings: Vec<String>,
}

/// Tauri's origins for an app's own content.
const TAURI_LOCAL_ORIGINS: &[&str] = &[
    "tauri://localhost",
    "http://tauri.localhost",
    "https://tauri.localhost",
];

/// Tauri's event commands, which the allowlist judges by `emit` and `listen` rather than by
/// `commands` (guest-hooks/allowlist/README.md).
const EVENT_EMIT: &[&str] = &["plugin:event|emit", "plugin:event|emit_to"];
const EVENT_LISTEN: &[&str] = &["plugin:event|listen", "plugin:event|unlisten"];

/// The manifest key of the app's own permissions in `acl-manifests.json`.
const APP_ACL_KEY: &str = "__app-acl__";

/// A capability, as read from its file.
struct Capability {
    identifier: String,
    /// Where it came from, for messages.
    file: String,
    local: bool,
    remote: Vec<String>,
    windows: Vec<String>,
    webviews: Vec<String>,
    permissions: Vec<Value>,
    platforms: Option<Vec<String>>,
}

fn from_tauri(args: &FromTauriArgs) -> anyhow::Result<Generated> {
    let src_tauri = if args.app.join("src-tauri").is_dir() {
        args.app.join("src-tauri")
    } else {
        args.app.clone()
    };
    if !src_tauri.join("capabilities").is_dir() && !src_tauri.join("tauri.conf.json").is_file() {
        bail!(
            "{} is not a Tauri app: no src-tauri/capabilities folder or tauri.conf.json",
            args.app.display()
        );
    }
    let mut warnings = Vec::new();
    let conf = read_conf(&src_tauri)?;
    let capabilities = capabilities(&src_tauri, conf.as_ref(), &mut warnings)?;
    let manifests = manifests(&src_tauri, &mut warnings)?;
    let (commands, from): (BTreeSet<String>, _) = match args.commands.is_empty() {
        false => (args.commands.iter().cloned().collect(), "--command"),
        true => (
            handler_commands(&src_tauri.join("src"))?,
            "generate_handler!",
        ),
    };
    if commands.is_empty() {
        warnings.push(format!(
            "no app command found (no generate_handler![...] in {} and no --command): every app \
             command a capability names is reported as not registered",
            src_tauri.join("src").display()
        ));
    }
    let mut local_origins: Vec<String> =
        TAURI_LOCAL_ORIGINS.iter().map(|s| s.to_string()).collect();
    if let Some(dev) = conf
        .as_ref()
        .and_then(|c| c.pointer("/build/devUrl"))
        .and_then(Value::as_str)
    {
        match origin_of(dev) {
            Some(origin) => local_origins.push(origin),
            None => warnings.push(format!(
                "build.devUrl {dev:?} is not a URL: not added to the local origins"
            )),
        }
    }
    local_origins.extend(args.local_origins.iter().cloned());
    local_origins.dedup();

    let has_app_manifest = manifests
        .as_ref()
        .is_some_and(|m| m.contains_key(APP_ACL_KEY));
    let mut mentioned = BTreeSet::new();
    let mut rules = Vec::new();
    for capability in &capabilities {
        let name = format!(
            "capability {:?} ({})",
            capability.identifier, capability.file
        );
        if let Some(platforms) = &capability.platforms {
            match &args.platform {
                Some(platform) if !platforms.iter().any(|p| p.eq_ignore_ascii_case(platform)) => {
                    continue;
                }
                Some(_) => {}
                None => warnings.push(format!(
                    "{name} is for {} only: kept for every platform (give --platform to choose)",
                    platforms.join(", ")
                )),
            }
        }
        let mut rule = Map::new();
        rule.insert("description".into(), json!(name));
        let windows = globs(&capability.windows, &name, "window", &mut warnings);
        let webviews = globs(&capability.webviews, &name, "webview", &mut warnings);
        if windows.is_empty() && webviews.is_empty() {
            warnings.push(format!(
                "{name} applies to no window or webview: it grants nothing"
            ));
        }
        rule.insert("windows".into(), json!(windows));
        if !webviews.is_empty() {
            rule.insert("webviews".into(), json!(webviews));
        }
        let mut origins = Vec::new();
        if capability.local {
            origins.extend(local_origins.iter().cloned());
        }
        for url in &capability.remote {
            if let Some(origin) = remote_origin(url, &name, &mut warnings)
                && !origins.contains(&origin)
            {
                origins.push(origin);
            }
        }
        if origins.is_empty() {
            warnings.push(format!(
                "{name} applies to no origin that can be written exactly: it grants nothing"
            ));
        }
        rule.insert("origins".into(), json!(origins));
        let mut table = BTreeMap::new();
        for (i, entry) in capability.permissions.iter().enumerate() {
            let (identifier, extra_scope) = match entry {
                Value::String(id) => (id.as_str(), false),
                Value::Object(map) => match map.get("identifier").and_then(Value::as_str) {
                    Some(id) => (id, map.contains_key("allow") || map.contains_key("deny")),
                    None => {
                        warnings.push(format!("{name}: permission {i} has no identifier: skipped"));
                        continue;
                    }
                },
                other => {
                    warnings.push(format!(
                        "{name}: permission {i} is {other}, not an identifier: skipped"
                    ));
                    continue;
                }
            };
            if extra_scope {
                warnings.push(format!(
                    "{name}: the scope given with {identifier:?} is not checked by the allowlist \
                     (Tauri's ACL still checks it after the hook)"
                ));
                check_validators(entry, &name, identifier, &mut warnings);
            }
            let Some(manifests) = &manifests else {
                warnings.push(format!(
                    "{name}: cannot resolve permission {identifier:?}: no \
                     gen/schemas/acl-manifests.json (build the app once with tauri-build) and no \
                     app permission file defines it; it grants nothing here"
                ));
                continue;
            };
            let resolved = match resolve(identifier, manifests) {
                Ok(resolved) => resolved,
                Err(problem) => {
                    warnings.push(format!(
                        "{name}: cannot resolve permission {identifier:?}: {problem}; it grants nothing here"
                    ));
                    continue;
                }
            };
            for permission in resolved {
                let scoped = permission
                    .value
                    .get("scope")
                    .is_some_and(|s| s.as_object().is_some_and(|m| !m.is_empty()));
                if scoped {
                    let shown = match permission.key.as_str() {
                        APP_ACL_KEY => permission.name.clone(),
                        key => format!("{key}:{}", permission.name),
                    };
                    warnings.push(format!(
                        "{name}: permission {shown:?} has a scope the allowlist does not check \
                         (Tauri's ACL still checks it after the hook)"
                    ));
                    check_validators(&permission.value["scope"], &name, identifier, &mut warnings);
                }
                for (list, allowed) in [("allow", true), ("deny", false)] {
                    let listed = permission
                        .value
                        .pointer(&format!("/commands/{list}"))
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for command in listed.iter().filter_map(Value::as_str) {
                        let full = command_name(&permission.key, command);
                        if permission.key == APP_ACL_KEY {
                            mentioned.insert(command.to_owned());
                            if !commands.contains(command) {
                                warnings.push(format!(
                                    "{name}: permission {:?} names command {command:?}, which the \
                                     app does not register ({from})",
                                    permission.name
                                ));
                            }
                        }
                        // A deny wins, as in Tauri.
                        let slot = table.entry(full).or_insert(allowed);
                        *slot &= allowed;
                    }
                }
            }
        }
        // The allowlist judges Tauri's event commands by the event they name, in `emit` and
        // `listen`; a capability grants them for every event name.
        for (key, commands) in [("emit", EVENT_EMIT), ("listen", EVENT_LISTEN)] {
            let granted: Vec<bool> = commands.iter().filter_map(|c| table.remove(*c)).collect();
            if granted.is_empty() {
                continue;
            }
            let allowed = granted.iter().all(|g| *g);
            if allowed {
                warnings.push(format!(
                    "{name}: Tauri's capabilities do not name events: `{key}` allows every \
                     event name here (narrow it in the generated rule by hand)"
                ));
            }
            rule.insert(key.into(), json!({ "*": allowed }));
        }
        let commands: Map<String, Value> = table
            .into_iter()
            .map(|(k, v)| (k, Value::Bool(v)))
            .collect();
        rule.insert("commands".into(), Value::Object(commands));
        rules.push(Value::Object(rule));
    }
    let unmentioned: Vec<&String> = commands
        .iter()
        .filter(|c| !mentioned.contains(*c))
        .collect();
    if !unmentioned.is_empty() {
        let list = unmentioned
            .iter()
            .map(|c| format!("{c:?}"))
            .collect::<Vec<_>>()
            .join(", ");
        let tauri = match has_app_manifest {
            true => "Tauri refuses them too",
            false => {
                "the app has no permissions of its own, so Tauri lets every local window call them; the allowlist does not"
            }
        };
        warnings.push(format!(
            "registered command(s) no capability mentions: {list}: no window may call them ({tauri})"
        ));
    }
    Ok(Generated {
        config: json!({
            "description": format!("Generated by `airlock policy from-tauri` from {}", src_tauri.display()),
            "rules": rules,
        }),
        warnings,
    })
}

/// `tauri.conf.json`, when there is one.
fn read_conf(src_tauri: &Path) -> anyhow::Result<Option<Value>> {
    let path = src_tauri.join("tauri.conf.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    Ok(Some(value))
}

/// Every capability Tauri would enable, in file order.
fn capabilities(
    src_tauri: &Path,
    conf: Option<&Value>,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Vec<Capability>> {
    let mut found = Vec::new();
    let folder = src_tauri.join("capabilities");
    for path in files(&folder, &["json", "toml"])? {
        let shown = path
            .strip_prefix(src_tauri)
            .unwrap_or(&path)
            .display()
            .to_string();
        let value = read_data(&path)?;
        let list = match value {
            Value::Array(list) => list,
            Value::Object(mut map) if map.contains_key("capabilities") => {
                match map.remove("capabilities") {
                    Some(Value::Array(list)) => list,
                    _ => bail!("{}: `capabilities` must be an array", path.display()),
                }
            }
            other => vec![other],
        };
        for value in list {
            found
                .push(capability(value, &shown).with_context(|| format!("in {}", path.display()))?);
        }
    }
    let Some(listed) = conf
        .and_then(|c| c.pointer("/app/security/capabilities"))
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
    else {
        return Ok(found);
    };
    // Tauri enables only the capabilities listed there: references by identifier, or inline.
    let mut enabled = Vec::new();
    for (i, entry) in listed.iter().enumerate() {
        match entry {
            Value::String(id) => match found.iter().position(|c| &c.identifier == id) {
                Some(at) => enabled.push(found.remove(at)),
                None => warnings.push(format!(
                    "tauri.conf.json enables capability {id:?}, which no capability file defines"
                )),
            },
            inline => enabled.push(
                capability(inline.clone(), "tauri.conf.json").with_context(|| {
                    format!("app.security.capabilities[{i}] of tauri.conf.json")
                })?,
            ),
        }
    }
    for left in &found {
        warnings.push(format!(
            "capability {:?} ({}) is not enabled by tauri.conf.json's app.security.capabilities: left out",
            left.identifier, left.file
        ));
    }
    Ok(enabled)
}

fn capability(value: Value, file: &str) -> anyhow::Result<Capability> {
    let Value::Object(map) = value else {
        bail!("a capability is an object, got {value}");
    };
    let strings = |key: &str| -> anyhow::Result<Vec<String>> {
        match map.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Array(list)) => list
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .with_context(|| format!("`{key}` holds {v}, not a string"))
                })
                .collect(),
            Some(other) => bail!("`{key}` must be an array of strings, got {other}"),
        }
    };
    let identifier = map
        .get("identifier")
        .and_then(Value::as_str)
        .context("a capability needs a string `identifier`")?
        .to_owned();
    let remote = match map.get("remote") {
        None => Vec::new(),
        Some(remote) => match remote.get("urls").and_then(Value::as_array) {
            Some(urls) => urls
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .with_context(|| format!("remote URL {v} is not a string"))
                })
                .collect::<anyhow::Result<_>>()?,
            None => bail!("capability {identifier:?}: `remote` needs `urls`, an array"),
        },
    };
    let permissions = match map.get("permissions") {
        Some(Value::Array(list)) => list.clone(),
        _ => bail!("capability {identifier:?} needs `permissions`, an array"),
    };
    Ok(Capability {
        local: map.get("local").and_then(Value::as_bool).unwrap_or(true),
        remote,
        windows: strings("windows")?,
        webviews: strings("webviews")?,
        platforms: map
            .contains_key("platforms")
            .then(|| strings("platforms"))
            .transpose()?,
        permissions,
        identifier,
        file: file.to_owned(),
    })
}

/// The files under `dir` (recursively) with one of these extensions, sorted.
fn files(dir: &Path, extensions: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| extensions.contains(&e))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A JSON or TOML file as a JSON value.
fn read_data(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => {
            let value: toml::Value =
                toml::from_str(&text).with_context(|| format!("{} is not TOML", path.display()))?;
            Ok(serde_json::to_value(value)?)
        }
        _ => serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display())),
    }
}

/// Every permission manifest: tauri-build's `acl-manifests.json`, with the app's own
/// permission files as its app manifest when it has none. `None` when there is neither.
fn manifests(
    src_tauri: &Path,
    warnings: &mut Vec<String>,
) -> anyhow::Result<Option<Map<String, Value>>> {
    let path = src_tauri.join("gen/schemas/acl-manifests.json");
    let mut manifests = match path.is_file() {
        true => match read_data(&path)? {
            Value::Object(map) => Some(map),
            _ => bail!("{} is not an object of manifests", path.display()),
        },
        false => None,
    };
    let own = files(&src_tauri.join("permissions"), &["json", "toml"])?;
    if own.is_empty()
        || manifests
            .as_ref()
            .is_some_and(|m| m.contains_key(APP_ACL_KEY))
    {
        return Ok(manifests);
    }
    // The app's permission files (tauri-utils' PermissionFile: default, set, permission).
    let mut permissions = Map::new();
    let mut sets = Map::new();
    let mut default = Value::Null;
    for file in own {
        let value = read_data(&file)?;
        if let Some(d) = value.get("default") {
            default = json!({"identifier": "default", "permissions": d.get("permissions").cloned().unwrap_or(json!([]))});
        }
        for p in value
            .get("permission")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(id) = p.get("identifier").and_then(Value::as_str) {
                permissions.insert(id.to_owned(), p.clone());
            }
        }
        for s in value
            .get("set")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(id) = s.get("identifier").and_then(Value::as_str) {
                sets.insert(id.to_owned(), s.clone());
            }
        }
    }
    if manifests.is_none() {
        warnings.push(format!(
            "no {}: only the app's own permissions (src-tauri/permissions) can be resolved, not \
             the core's or plugins' (build the app once with tauri-build to write it)",
            path.display()
        ));
    }
    manifests.get_or_insert_with(Map::new).insert(
        APP_ACL_KEY.to_owned(),
        json!({"default_permission": default, "permissions": permissions, "permission_sets": sets}),
    );
    Ok(manifests)
}

/// One permission a capability's entry resolves to.
struct Resolved {
    /// Manifest key: `__app-acl__`, `core:window`, `fs`…
    key: String,
    name: String,
    value: Value,
}

/// `core:window:allow-close` → (`core:window`, `allow-close`); `fs:default` → (`fs`, `default`);
/// `allow-greet` → (`__app-acl__`, `allow-greet`), as tauri-utils' `Identifier` splits them.
fn split(identifier: &str) -> (&str, &str) {
    let at = match identifier.starts_with("core:") {
        true => identifier.rfind(':'),
        false => identifier.find(':'),
    };
    match at {
        Some(i) => (&identifier[..i], &identifier[i + 1..]),
        None => (APP_ACL_KEY, identifier),
    }
}

fn resolve(identifier: &str, manifests: &Map<String, Value>) -> Result<Vec<Resolved>, String> {
    let (key, name) = split(identifier);
    let mut out = Vec::new();
    resolve_in(key, name, manifests, &mut out, 0)?;
    Ok(out)
}

fn resolve_in(
    key: &str,
    name: &str,
    manifests: &Map<String, Value>,
    out: &mut Vec<Resolved>,
    depth: usize,
) -> Result<(), String> {
    if depth > 32 {
        return Err(format!("permission sets nest too deep at \"{key}:{name}\""));
    }
    let shown = |key: &str| match key {
        APP_ACL_KEY => "the app's own permissions".to_owned(),
        k => format!("plugin {k:?}"),
    };
    let manifest = manifests.get(key).ok_or_else(|| {
        format!(
            "{} not found in the manifests (known: {})",
            shown(key),
            manifests.keys().cloned().collect::<Vec<_>>().join(", ")
        )
    })?;
    let set = if name == "default" {
        match manifest.get("default_permission") {
            Some(set) if !set.is_null() => Some(set),
            _ => return Ok(()),
        }
    } else {
        manifest.pointer(&format!("/permission_sets/{name}"))
    };
    if let Some(set) = set {
        for member in set
            .get("permissions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(member) = member.as_str() else {
                continue;
            };
            // A set may name another plugin's permission (`fs:default` in dialog's set).
            let (k, n) = match split(member) {
                (k, n) if k != APP_ACL_KEY && manifests.contains_key(k) => (k, n),
                _ => (key, member),
            };
            resolve_in(k, n, manifests, out, depth + 1)?;
        }
        return Ok(());
    }
    match manifest.pointer(&format!("/permissions/{name}")) {
        Some(permission) => {
            out.push(Resolved {
                key: key.to_owned(),
                name: name.to_owned(),
                value: permission.clone(),
            });
            Ok(())
        }
        None => Err(format!("{} has no permission or set {name:?}", shown(key))),
    }
}

/// The name a command is invoked by, as Tauri's ACL writes it.
fn command_name(key: &str, command: &str) -> String {
    match key {
        APP_ACL_KEY => command.to_owned(),
        k => match k.strip_prefix("core:") {
            Some(core) => format!("plugin:{core}|{command}"),
            None => format!("plugin:{k}|{command}"),
        },
    }
}

/// Label globs the allowlist can match as Tauri's `glob::Pattern` does; the others are
/// reported and left out.
fn globs(patterns: &[String], name: &str, what: &str, warnings: &mut Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    for pattern in patterns {
        if pattern.contains(['[', ']']) {
            warnings.push(format!(
                "{name}: {what} pattern {pattern:?} uses a character class, which the allowlist \
                 cannot express: left out"
            ));
        } else {
            out.push(pattern.replace("**", "*"));
        }
    }
    out
}

/// `scheme://host[:port]` of a URL, when it is one.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!scheme.is_empty() && !host.is_empty()).then(|| format!("{scheme}://{host}"))
}

/// The exact origin of a remote URL pattern, or `None` (with a warning) when it has none.
fn remote_origin(url: &str, name: &str, warnings: &mut Vec<String>) -> Option<String> {
    let Some(origin) = origin_of(url) else {
        warnings.push(format!(
            "{name}: remote URL {url:?} is not a URL pattern: left out"
        ));
        return None;
    };
    let pattern_syntax = ['*', ':', '(', '{', '+', '?'];
    let host_part = origin.split_once("://").map_or("", |(_, h)| h);
    let scheme = origin.split_once("://").map_or("", |(s, _)| s);
    let host = host_part.rsplit_once(':').map_or(host_part, |(h, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            h
        } else {
            host_part
        }
    });
    if host.contains(pattern_syntax) || scheme.contains(pattern_syntax) || host_part.contains('*') {
        warnings.push(format!(
            "{name}: remote URL pattern {url:?} lets pages of any matching host call its commands; \
             the allowlist matches exact origins, so it is left out (name each origin instead)"
        ));
        return None;
    }
    if scheme == "http" {
        warnings.push(format!(
            "{name}: remote URL {url:?} is plain http: anyone on the network path can inject a \
             page that calls its commands"
        ));
    }
    let path = &url[url.find("://").map_or(0, |i| i + 3) + host_part.len()..];
    if !matches!(path, "" | "/" | "/*" | "*") {
        warnings.push(format!(
            "{name}: remote URL {url:?} is limited to some paths; the hook sees origins, not \
             paths, so every page of {origin} gets its commands"
        ));
    }
    Some(origin)
}

/// Shell scope validators that accept any argument (`\S+`, `.*`…): audits flag them, since the
/// page then chooses the arguments of the program it runs.
fn check_validators(scope: &Value, name: &str, identifier: &str, warnings: &mut Vec<String>) {
    let mut found = Vec::new();
    collect_validators(scope, &mut found);
    for validator in found {
        let probes = [
            "--output=/etc/passwd",
            "-c",
            "$(id)",
            "../../../etc/shadow",
            "https://evil.example/x",
        ];
        let anchored = format!("^(?:{validator})$");
        match regex::Regex::new(&anchored) {
            Ok(regex) => {
                let accepted: Vec<&str> = probes.iter().copied().filter(|p| regex.is_match(p)).collect();
                if !accepted.is_empty() {
                    warnings.push(format!(
                        "{name}: {identifier:?} has a shell argument validator {validator:?} that \
                         accepts almost anything (e.g. {:?}): the page chooses the argument",
                        accepted[0]
                    ));
                }
            }
            Err(e) => warnings.push(format!(
                "{name}: {identifier:?} has a shell argument validator {validator:?} that is not a regex: {e}"
            )),
        }
    }
}

fn collect_validators<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("validator", Value::String(v)) => out.push(v),
                    _ => collect_validators(value, out),
                }
            }
        }
        Value::Array(list) => list.iter().for_each(|v| collect_validators(v, out)),
        _ => {}
    }
}

/// The commands of every `generate_handler![...]` in the app's Rust sources (last path segment:
/// `commands::greet` is `greet`).
fn handler_commands(src: &Path) -> anyhow::Result<BTreeSet<String>> {
    let mut commands = BTreeSet::new();
    for path in files(src, &["rs"])? {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut rest = text.as_str();
        while let Some(at) = rest.find("generate_handler!") {
            rest = &rest[at + "generate_handler!".len()..];
            let open = rest.trim_start();
            let Some(close) = open.chars().next().and_then(|c| match c {
                '[' => Some(']'),
                '(' => Some(')'),
                '{' => Some('}'),
                _ => None,
            }) else {
                continue;
            };
            let opening = open.as_bytes()[0];
            let mut depth = 0usize;
            let Some(end) = open.char_indices().find_map(|(i, c)| {
                if c as u32 == opening as u32 {
                    depth += 1;
                } else if c == close {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                None
            }) else {
                continue;
            };
            for item in open[1..end].split(',') {
                // Attributes such as `#[cfg(...)]` before an item are not commands.
                let item = strip_comments(item);
                let item = item.trim();
                let item = item.rsplit(']').next().unwrap_or(item).trim();
                if let Some(command) = item.rsplit("::").next().filter(|c| !c.is_empty())
                    && command.chars().all(|c| c.is_alphanumeric() || c == '_')
                {
                    commands.insert(command.to_owned());
                }
            }
            rest = &open[end..];
        }
    }
    Ok(commands)
}

fn strip_comments(item: &str) -> String {
    item.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}
