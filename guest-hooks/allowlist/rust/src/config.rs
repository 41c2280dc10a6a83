//! Reading the allowlist's config into a [`Policy`]: every error names the JSON pointer of the
//! problem, and nothing unknown is let through (an unknown key would be a rule that silently
//! never applies).

use crate::json::Json;
use crate::schema::{Compiler, Loc, SchemaId, Schemas, escape};

/// Whether a reason says what failed, or only the code.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Reasons {
    /// Reasons name the rule, the JSON pointer and the value (the default; for development).
    Full,
    /// The reason is empty; only the code is given (for release builds, as Tauri does).
    Code,
}

/// The config, read and compiled.
pub struct Policy {
    /// How much a rejection says.
    pub reasons: Reasons,
    /// The rules, in the order written.
    pub rules: Vec<Rule>,
    /// Every schema the rules use.
    pub schemas: Schemas,
}

/// What a message is, for the rules: which table of a rule its name is looked up in.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Table {
    /// `commands`: command invokes.
    Commands,
    /// `emit`: events the frontend emits.
    Emit,
    /// `listen`: events the frontend subscribes to.
    Listen,
    /// `channels`: channel chunks the frontend sends.
    Channels,
}

impl Table {
    /// The key of this table in a rule.
    pub fn key(self) -> &'static str {
        match self {
            Table::Commands => "commands",
            Table::Emit => "emit",
            Table::Listen => "listen",
            Table::Channels => "channels",
        }
    }

    /// The key of an entry's schema in this table (`None`: entries take no schema).
    fn schema_key(self) -> Option<&'static str> {
        match self {
            Table::Commands => Some("args"),
            Table::Emit | Table::Channels => Some("payload"),
            Table::Listen => None,
        }
    }
}

/// One rule: to which sources it applies, and its four tables.
pub struct Rule {
    /// Window label globs; `None` when neither `windows` nor `webviews` is given (every window).
    pub windows: Option<Vec<String>>,
    /// Webview label globs.
    pub webviews: Vec<String>,
    /// Exact origins; `None`: every origin.
    pub origins: Option<Vec<String>>,
    /// One list of entries per [`Table`], in [`Table`]'s order.
    pub tables: [Vec<Entry>; 4],
}

/// One name (or name prefix) of a table, and what it says about it.
pub struct Entry {
    /// The name, without the `*` of a prefix.
    pub name: String,
    /// Whether the name ended in `*` (matches every name starting with it).
    pub prefix: bool,
    /// `None`: denied. `Some(schema)`: allowed, with the schema its args or payload must match.
    pub allow: Option<Option<SchemaId>>,
    /// Where the entry is in the config, for reasons.
    pub pointer: String,
}

impl Entry {
    /// Whether the entry is about `name`.
    pub fn matches(&self, name: &str) -> bool {
        match self.prefix {
            true => name.starts_with(&self.name),
            false => name == self.name,
        }
    }
}

impl Rule {
    /// Whether the rule applies to a message from this window, webview and origin.
    pub fn applies(&self, window: &str, webview: &str, origin: &str) -> bool {
        let labels = match &self.windows {
            None => true,
            Some(windows) => {
                windows.iter().any(|g| glob(g, window))
                    || self.webviews.iter().any(|g| glob(g, webview))
            }
        };
        labels
            && self
                .origins
                .as_ref()
                .is_none_or(|origins| origins.iter().any(|o| o == origin))
    }
}

/// `*` matches any run of characters (`/` and `:` included), `?` any one character; everything
/// else matches itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        if i < p.len() && (p[i] == '?' || (p[i] != '*' && p[i] == t[j])) {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some((i, j));
            i += 1;
        } else if let Some((si, sj)) = star {
            i = si + 1;
            j = sj + 1;
            star = Some((si, sj + 1));
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// Reads a config (`{}` or blank: no rules, so everything is refused).
pub fn read(text: &str) -> Result<Policy, String> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    let config = crate::json::parse(text).map_err(|e| format!("invalid config: {e}"))?;
    let (reasons, rules, schemas) = policy(&config).map_err(|e| format!("invalid config {e}"))?;
    // Nothing refers to the tree any more. It is not freed: with a fresh instance per message
    // (the default) the instance's memory goes with it, a reused instance is configured once,
    // and freeing every node costs about a tenth of reading the config.
    std::mem::forget(config);
    Ok(Policy {
        reasons,
        rules,
        schemas,
    })
}

fn policy<'a>(config: &'a Json<'a>) -> Result<(Reasons, Vec<Rule>, Schemas), String> {
    let Json::Object(top) = config else {
        return Err(format!(
            "at \"\": expected a JSON object, got {}",
            config.kind()
        ));
    };
    let mut reasons = Reasons::Full;
    for (key, value) in top {
        match key.as_ref() {
            "rules" | "$defs" | "$comment" | "description" => {}
            "reasons" => {
                reasons = match value.as_str() {
                    Some("full") => Reasons::Full,
                    Some("code") => Reasons::Code,
                    _ => {
                        return Err(format!(
                            "at /reasons: expected \"full\" or \"code\", got {value}"
                        ));
                    }
                }
            }
            _ => return Err(unknown(&format!("/{}", escape(key)), key, TOP_KEYS)),
        }
    }
    let mut compiler = Compiler::new(config);
    compiler.definitions()?;
    let mut rules = Vec::new();
    match config.get("rules") {
        None => {}
        Some(Json::Array(list)) => {
            for (i, value) in list.iter().enumerate() {
                rules.push(rule(&mut compiler, value, &format!("/rules/{i}"))?);
            }
        }
        Some(other) => {
            return Err(format!(
                "at /rules: expected an array of rules, got {}",
                other.kind()
            ));
        }
    }
    Ok((reasons, rules, compiler.finish()?))
}

const TOP_KEYS: &str = "rules, $defs, reasons, description, $comment";
const RULE_KEYS: &str =
    "windows, webviews, origins, commands, emit, listen, channels, description, $comment";

fn unknown(pointer: &str, key: &str, known: &str) -> String {
    format!("at {pointer}: unknown key {key:?} (known: {known})")
}

fn rule<'a>(
    compiler: &mut Compiler<'a>,
    value: &'a Json<'a>,
    pointer: &str,
) -> Result<Rule, String> {
    let Json::Object(map) = value else {
        return Err(format!(
            "at {pointer}: a rule is an object, got {}",
            value.kind()
        ));
    };
    let mut rule = Rule {
        windows: None,
        webviews: Vec::new(),
        origins: None,
        tables: Default::default(),
    };
    for (key, member) in map {
        let key: &str = key;
        let here = format!("{pointer}/{}", escape(key));
        match key {
            "windows" => rule.windows = Some(names(member, &here, "window label glob")?),
            "webviews" => rule.webviews = names(member, &here, "webview label glob")?,
            "origins" => rule.origins = Some(names(member, &here, "origin")?),
            "description" | "$comment" => {}
            _ => {
                let table = [Table::Commands, Table::Emit, Table::Listen, Table::Channels]
                    .into_iter()
                    .find(|t| t.key() == key)
                    .ok_or_else(|| unknown(&here, key, RULE_KEYS))?;
                rule.tables[table as usize] = entries(compiler, table, member, &here)?;
            }
        }
    }
    if value.get("webviews").is_some() && rule.windows.is_none() {
        rule.windows = Some(Vec::new());
    }
    Ok(rule)
}

/// A string or an array of strings, none of them empty.
fn names(value: &Json, pointer: &str, what: &str) -> Result<Vec<String>, String> {
    let list: Vec<&Json> = match value {
        Json::String(_) => vec![value],
        Json::Array(list) => list.iter().collect(),
        other => {
            return Err(format!(
                "at {pointer}: expected a {what} or an array of them, got {}",
                other.kind()
            ));
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, v)| match v.as_str() {
            Some(s) if !s.is_empty() => Ok(s.to_owned()),
            _ => {
                let at = match matches!(value, Json::Array(_)) {
                    true => format!("{pointer}/{i}"),
                    false => pointer.to_owned(),
                };
                Err(format!("at {at}: expected a non-empty {what}, got {v}"))
            }
        })
        .collect()
}

/// A table: an object of name → `true` | `false` | `{"args"|"payload": schema}`, or an array
/// of names (each allowed, with any args).
fn entries<'a>(
    compiler: &mut Compiler<'a>,
    table: Table,
    value: &'a Json<'a>,
    pointer: &str,
) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    match value {
        Json::Array(list) => {
            for (i, name) in list.iter().enumerate() {
                let here = format!("{pointer}/{i}");
                let Some(name) = name.as_str() else {
                    return Err(format!("at {here}: expected a name, got {}", name.kind()));
                };
                entries.push(entry(name, Some(None), &here)?);
            }
        }
        Json::Object(map) => {
            for (name, value) in map {
                let here = format!("{pointer}/{}", escape(name));
                let allow = match value {
                    Json::Bool(allowed) => allowed.then_some(None),
                    Json::Object(fields) => Some(schema_of(compiler, table, fields, &here)?),
                    other => {
                        let with = table
                            .schema_key()
                            .map_or(String::new(), |k| format!(" or {{\"{k}\": SCHEMA}}"));
                        return Err(format!(
                            "at {here}: expected true, false{with}, got {}",
                            other.kind()
                        ));
                    }
                };
                entries.push(entry(name, allow, &here)?);
            }
        }
        other => {
            return Err(format!(
                "at {pointer}: expected an object of names or an array of names, got {}",
                other.kind()
            ));
        }
    }
    Ok(entries)
}

fn schema_of<'a>(
    compiler: &mut Compiler<'a>,
    table: Table,
    fields: &'a [(std::borrow::Cow<'a, str>, Json<'a>)],
    pointer: &str,
) -> Result<Option<SchemaId>, String> {
    let mut schema = None;
    for (key, value) in fields {
        let key: &str = key;
        match table.schema_key() {
            Some(k) if k == key => {
                schema = Some(compiler.root(value, &Loc::Key(&Loc::Raw(pointer), key))?);
            }
            Some(k) => return Err(unknown(&format!("{pointer}/{}", escape(key)), key, k)),
            None => {
                return Err(format!(
                    "at {pointer}/{}: `{}` entries are true or false, they take no schema",
                    escape(key),
                    table.key()
                ));
            }
        }
    }
    Ok(schema)
}

fn entry(name: &str, allow: Option<Option<SchemaId>>, pointer: &str) -> Result<Entry, String> {
    let (stem, prefix) = match name.strip_suffix('*') {
        Some(stem) => (stem, true),
        None => (name, false),
    };
    if stem.contains('*') {
        return Err(format!(
            "at {pointer}: name {name:?}: `*` may only end a name (a prefix)"
        ));
    }
    if name.is_empty() {
        return Err(format!("at {pointer}: empty name"));
    }
    Ok(Entry {
        name: stem.to_owned(),
        prefix,
        allow,
        pointer: pointer.to_owned(),
    })
}
