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
//!
//! The app's files are read in `app.rs` and Tauri's ACL resolved in `acl.rs`; this file turns
//! each capability into a rule.

mod acl;
mod app;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use acl::{
    APP_ACL_KEY, check_validators, command_name, globs, manifests, origin_of, remote_origin,
    resolve,
};
use app::{capabilities, handler_commands, read_conf};

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
