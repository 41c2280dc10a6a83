//! Tauri's ACL: the permission manifests, permission identifiers resolved to commands as
//! tauri-utils resolves them, and what the allowlist can express of a capability's window
//! labels, remote URLs and scopes.

use std::path::Path;

use anyhow::bail;
use serde_json::{Map, Value, json};

use super::app::{files, read_data};

/// The manifest key of the app's own permissions in `acl-manifests.json`.
pub(super) const APP_ACL_KEY: &str = "__app-acl__";

/// Every permission manifest: tauri-build's `acl-manifests.json`, with the app's own
/// permission files as its app manifest when it has none. `None` when there is neither.
pub(super) fn manifests(
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
        for (key, into) in [("permission", &mut permissions), ("set", &mut sets)] {
            for entry in value
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(id) = entry.get("identifier").and_then(Value::as_str) {
                    into.insert(id.to_owned(), entry.clone());
                }
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
pub(super) struct Resolved {
    /// Manifest key: `__app-acl__`, `core:window`, `fs`…
    pub(super) key: String,
    pub(super) name: String,
    pub(super) value: Value,
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

pub(super) fn resolve(
    identifier: &str,
    manifests: &Map<String, Value>,
) -> Result<Vec<Resolved>, String> {
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
pub(super) fn command_name(key: &str, command: &str) -> String {
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
pub(super) fn globs(
    patterns: &[String],
    name: &str,
    what: &str,
    warnings: &mut Vec<String>,
) -> Vec<String> {
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
pub(super) fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!scheme.is_empty() && !host.is_empty()).then(|| format!("{scheme}://{host}"))
}

/// The exact origin of a remote URL pattern, or `None` (with a warning) when it has none.
pub(super) fn remote_origin(url: &str, name: &str, warnings: &mut Vec<String>) -> Option<String> {
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
pub(super) fn check_validators(
    scope: &Value,
    name: &str,
    identifier: &str,
    warnings: &mut Vec<String>,
) {
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
