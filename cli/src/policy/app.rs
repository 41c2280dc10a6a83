//! The app's own files, read as Tauri's build reads them: `tauri.conf.json`, the capability
//! files, and the commands of its `generate_handler![...]` invocations.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde_json::Value;

/// A capability, as read from its file.
pub(super) struct Capability {
    pub(super) identifier: String,
    /// Where it came from, for messages.
    pub(super) file: String,
    pub(super) local: bool,
    pub(super) remote: Vec<String>,
    pub(super) windows: Vec<String>,
    pub(super) webviews: Vec<String>,
    pub(super) permissions: Vec<Value>,
    pub(super) platforms: Option<Vec<String>>,
}

/// `tauri.conf.json`, when there is one.
pub(super) fn read_conf(src_tauri: &Path) -> anyhow::Result<Option<Value>> {
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
pub(super) fn capabilities(
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
pub(super) fn files(dir: &Path, extensions: &[&str]) -> anyhow::Result<Vec<PathBuf>> {
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
pub(super) fn read_data(path: &Path) -> anyhow::Result<Value> {
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

/// The commands of every `generate_handler![...]` in the app's Rust sources (last path segment:
/// `commands::greet` is `greet`).
pub(super) fn handler_commands(src: &Path) -> anyhow::Result<BTreeSet<String>> {
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
