//! Reading the allowlist's config into a [`Policy`]: every error names the JSON pointer of the
//! problem, and nothing unknown is let through (an unknown key would be a rule that silently
//! never applies).
//!
//! A config is read on every fresh instance, so reading one that is right builds no strings:
//! names, globs and schemas borrow from the config's text and tree (which live as long as the
//! policy), and JSON pointers are written out only for an error or a reason.

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

/// The config, read and compiled; it borrows from the config's text.
pub struct Policy<'a> {
    /// How much a rejection says.
    pub reasons: Reasons,
    /// The rules, in the order written.
    pub rules: Vec<Rule<'a>>,
    /// Every schema the rules use.
    pub schemas: Schemas<'a>,
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
pub struct Rule<'a> {
    /// Window label globs; `None` when neither `windows` nor `webviews` is given (every window).
    pub windows: Option<Vec<&'a str>>,
    /// Webview label globs.
    pub webviews: Vec<&'a str>,
    /// Exact origins; `None`: every origin.
    pub origins: Option<Vec<&'a str>>,
    /// One list of entries per [`Table`], in [`Table`]'s order.
    pub tables: [Vec<Entry<'a>>; 4],
}

/// One name (or name prefix) of a table, and what it says about it.
pub struct Entry<'a> {
    /// The name, without the `*` of a prefix.
    pub name: &'a str,
    /// Whether the name ended in `*` (matches every name starting with it).
    pub prefix: bool,
    /// `None`: denied. `Some(schema)`: allowed, with the schema its args or payload must match.
    pub allow: Option<Option<SchemaId>>,
    /// Where the entry is in the config: its rule's index, its table, and its key (the name as
    /// written) or its index in an array of names.
    at: (usize, Table, Result<&'a str, usize>),
}

impl Entry<'_> {
    /// Whether the entry is about `name`.
    pub fn matches(&self, name: &str) -> bool {
        match self.prefix {
            true => name.starts_with(self.name),
            false => name == self.name,
        }
    }

    /// The entry's JSON pointer in the config, for reasons.
    pub fn pointer(&self) -> String {
        let (rule, table, key) = self.at;
        let key = match key {
            Ok(name) => escape(name),
            Err(index) => index.to_string(),
        };
        format!("/rules/{rule}/{}/{key}", table.key())
    }
}

impl Rule<'_> {
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
                .is_none_or(|origins| origins.contains(&origin))
    }
}

/// `*` matches any run of characters (`/` and `:` included), `?` any one character; everything
/// else matches itself. Walks both strings in place (positions are byte offsets of characters):
/// it runs for every rule with labels on every message.
pub fn glob(pattern: &str, text: &str) -> bool {
    let at = |s: &str, i: usize| s[i..].chars().next().map(|c| (c, c.len_utf8()));
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some((t, t_len)) = at(text, j) {
        match at(pattern, i) {
            Some(('*', _)) => {
                star = Some((i, j));
                i += 1;
                continue;
            }
            Some((p, p_len)) if p == '?' || p == t => {
                i += p_len;
                j += t_len;
                continue;
            }
            _ => {}
        }
        let Some((si, sj)) = star else {
            return false;
        };
        // The last `*` takes one more character.
        let taken = sj + at(text, sj).map_or(0, |(_, len)| len);
        i = si + 1;
        j = taken;
        star = Some((si, taken));
    }
    pattern[i..].bytes().all(|c| c == b'*')
}

/// Reads a config (`{}` or blank: no rules, so everything is refused).
///
/// The config's tree is kept for as long as the policy borrows from `text`, and then not freed:
/// with a fresh instance per message (the default) the instance's memory goes with it, a reused
/// instance is configured once, and freeing every node costs about a tenth of reading the config.
pub fn read(text: &str) -> Result<Policy<'_>, String> {
    let text = if text.trim().is_empty() { "{}" } else { text };
    let config = crate::json::parse(text).map_err(|e| format!("invalid config: {e}"))?;
    let config: &Json = Box::leak(Box::new(config));
    let (reasons, rules, schemas) = policy(config).map_err(|e| format!("invalid config {e}"))?;
    Ok(Policy {
        reasons,
        rules,
        schemas,
    })
}

type Read<'a> = (Reasons, Vec<Rule<'a>>, Schemas<'a>);

fn policy<'a>(config: &'a Json<'a>) -> Result<Read<'a>, String> {
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
            rules.reserve_exact(list.len());
            let at = Loc::Raw("/rules");
            for (i, value) in list.iter().enumerate() {
                rules.push(rule(&mut compiler, value, i, &Loc::Index(&at, i))?);
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
    index: usize,
    loc: &Loc,
) -> Result<Rule<'a>, String> {
    let Json::Object(map) = value else {
        return Err(format!(
            "at {}: a rule is an object, got {}",
            loc.render(),
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
        let here = Loc::Key(loc, key);
        match key {
            "windows" => rule.windows = Some(names(member, &here, "window label glob")?),
            "webviews" => rule.webviews = names(member, &here, "webview label glob")?,
            "origins" => rule.origins = Some(names(member, &here, "origin")?),
            "description" | "$comment" => {}
            _ => {
                let table = [Table::Commands, Table::Emit, Table::Listen, Table::Channels]
                    .into_iter()
                    .find(|t| t.key() == key)
                    .ok_or_else(|| unknown(&here.render(), key, RULE_KEYS))?;
                rule.tables[table as usize] = entries(compiler, (index, table), member, &here)?;
            }
        }
    }
    if value.get("webviews").is_some() && rule.windows.is_none() {
        rule.windows = Some(Vec::new());
    }
    Ok(rule)
}

/// A string or an array of strings, none of them empty.
fn names<'a>(value: &'a Json<'a>, loc: &Loc, what: &str) -> Result<Vec<&'a str>, String> {
    let list: &[Json] = match value {
        Json::String(_) => std::slice::from_ref(value),
        Json::Array(list) => list,
        other => {
            return Err(format!(
                "at {}: expected a {what} or an array of them, got {}",
                loc.render(),
                other.kind()
            ));
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, v)| match v.as_str() {
            Some(s) if !s.is_empty() => Ok(s),
            _ => {
                let at = match matches!(value, Json::Array(_)) {
                    true => Loc::Index(loc, i).render(),
                    false => loc.render(),
                };
                Err(format!("at {at}: expected a non-empty {what}, got {v}"))
            }
        })
        .collect()
}

/// A table: an object of name → `true` | `false` | `{"args"|"payload": schema}`, or an array
/// of names (each allowed, with any args). `rule` is the rule's index and the table.
fn entries<'a>(
    compiler: &mut Compiler<'a>,
    rule: (usize, Table),
    value: &'a Json<'a>,
    loc: &Loc,
) -> Result<Vec<Entry<'a>>, String> {
    let (index, table) = rule;
    let mut entries = Vec::new();
    match value {
        Json::Array(list) => {
            entries.reserve_exact(list.len());
            for (i, name) in list.iter().enumerate() {
                let Some(name) = name.as_str() else {
                    let here = Loc::Index(loc, i).render();
                    return Err(format!("at {here}: expected a name, got {}", name.kind()));
                };
                let at = (index, table, Err(i));
                entries.push(entry(name, Some(None), at, &Loc::Index(loc, i))?);
            }
        }
        Json::Object(map) => {
            entries.reserve_exact(map.len());
            for (name, value) in map {
                let here = Loc::Key(loc, name);
                let allow = match value {
                    Json::Bool(allowed) => allowed.then_some(None),
                    Json::Object(fields) => Some(schema_of(compiler, table, fields, &here)?),
                    other => {
                        let with = table
                            .schema_key()
                            .map_or(String::new(), |k| format!(" or {{\"{k}\": SCHEMA}}"));
                        return Err(format!(
                            "at {}: expected true, false{with}, got {}",
                            here.render(),
                            other.kind()
                        ));
                    }
                };
                let at = (index, table, Ok(name.as_ref()));
                entries.push(entry(name, allow, at, &here)?);
            }
        }
        other => {
            return Err(format!(
                "at {}: expected an object of names or an array of names, got {}",
                loc.render(),
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
    loc: &Loc,
) -> Result<Option<SchemaId>, String> {
    let mut schema = None;
    for (key, value) in fields {
        let key: &str = key;
        match table.schema_key() {
            Some(k) if k == key => {
                schema = Some(compiler.root(value, &Loc::Key(loc, key))?);
            }
            Some(k) => return Err(unknown(&Loc::Key(loc, key).render(), key, k)),
            None => {
                return Err(format!(
                    "at {}: `{}` entries are true or false, they take no schema",
                    Loc::Key(loc, key).render(),
                    table.key()
                ));
            }
        }
    }
    Ok(schema)
}

fn entry<'a>(
    name: &'a str,
    allow: Option<Option<SchemaId>>,
    at: (usize, Table, Result<&'a str, usize>),
    loc: &Loc,
) -> Result<Entry<'a>, String> {
    let (stem, prefix) = match name.strip_suffix('*') {
        Some(stem) => (stem, true),
        None => (name, false),
    };
    if stem.contains('*') {
        return Err(format!(
            "at {}: name {name:?}: `*` may only end a name (a prefix)",
            loc.render()
        ));
    }
    if name.is_empty() {
        return Err(format!("at {}: empty name", loc.render()));
    }
    Ok(Entry {
        name: stem,
        prefix,
        allow,
        at,
    })
}
