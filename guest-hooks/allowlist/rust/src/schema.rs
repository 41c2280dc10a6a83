//! The JSON Schema subset the allowlist checks args and payloads with (draft 2020-12 keywords:
//! `type`, `properties`, `required`, `additionalProperties`, `items`, `enum`, `const`,
//! `minimum`/`maximum`, `exclusiveMinimum`/`exclusiveMaximum`, `minLength`/`maxLength`,
//! `minItems`/`maxItems`, `pattern`, `$ref` to `$defs`, plus Airlock's `format: "airlock-path"`
//! with a `root`), compiled once into an arena of nodes. Anything else is refused when the config
//! is read, with the JSON pointer of the problem: a keyword this subset does not know would
//! otherwise be a check that silently never runs.

use std::borrow::Cow;

use crate::json::Json;

/// Where a compiled schema sits in [`Schemas`].
pub type SchemaId = usize;

/// The 2020-12 meta-schema URI, the only `$schema` accepted.
const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Keywords that only annotate: accepted and ignored.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
];

/// JSON types, as bits of [`Node::types`].
const NULL: u8 = 1;
const BOOLEAN: u8 = 2;
const OBJECT: u8 = 4;
const ARRAY: u8 = 8;
const NUMBER: u8 = 16;
const INTEGER: u8 = 32;
const STRING: u8 = 64;

/// One compiled schema; its names and values borrow from the config.
#[derive(Default)]
struct Node<'a> {
    /// `false` schema: nothing is valid.
    never: bool,
    /// Bits of the allowed types; 0 when `type` is absent.
    types: u8,
    /// `properties` as written, and where their schemas' ids start in [`Schemas::property_ids`]
    /// (one id per property, in the same order).
    properties: (&'a [(Cow<'a, str>, Json<'a>)], usize),
    /// `required`: strings (checked when compiled).
    required: &'a [Json<'a>],
    /// `None`: any extra property; `Some(None)`: none; `Some(Some(id))`: each must match `id`.
    additional: Option<Option<SchemaId>>,
    items: Option<SchemaId>,
    enumeration: Option<&'a [Json<'a>]>,
    constant: Option<&'a Json<'a>>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    exclusive_maximum: Option<f64>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    min_items: Option<u64>,
    max_items: Option<u64>,
    pattern: Option<(&'a str, regex_lite::Regex)>,
    /// `format: "airlock-path"`: the root as written, and its segments.
    path_root: Option<(&'a str, Vec<String>)>,
    reference: Option<SchemaId>,
}

/// Every schema of a config, compiled.
#[derive(Default)]
pub struct Schemas<'a> {
    nodes: Vec<Node<'a>>,
    /// The schema of each property of every node, each node's in one run: one `Vec` for all, as a
    /// config is compiled on every fresh instance.
    property_ids: Vec<SchemaId>,
}

/// Why a value does not match: where (a JSON pointer into the value), which keyword, and how.
/// The pointer is written out while the failure goes back up, so a value that matches costs no
/// string.
#[derive(Debug, PartialEq)]
pub struct Failure {
    /// JSON pointer of the failing value, `""` for the whole value.
    pub pointer: String,
    /// The keyword that failed.
    pub keyword: &'static str,
    /// What was wrong, with the value or the limit.
    pub detail: String,
}

/// Where a schema or keyword sits in the config. Written out as a JSON pointer only for an
/// error message: a config is read on every fresh instance, so the pass path builds no strings.
#[derive(Clone, Copy)]
pub enum Loc<'p> {
    /// A JSON pointer already written out.
    Raw(&'p str),
    /// A member of an object.
    Key(&'p Loc<'p>, &'p str),
    /// An element of an array.
    Index(&'p Loc<'p>, usize),
    /// A JSON pointer (written out, its segments escaped) under another place.
    Under(&'p Loc<'p>, &'p str),
}

impl Loc<'_> {
    /// The JSON pointer.
    pub fn render(&self) -> String {
        match self {
            Loc::Raw(pointer) => (*pointer).to_owned(),
            Loc::Key(parent, key) => format!("{}/{}", parent.render(), escape(key)),
            Loc::Index(parent, i) => format!("{}/{i}", parent.render()),
            Loc::Under(parent, pointer) => format!("{}{pointer}", parent.render()),
        }
    }
}

/// Compiles the schemas of one config. `config` is the whole config, whose top-level `$defs`
/// every schema may `$ref` (`#/$defs/NAME`) when its own root has no such definition.
pub struct Compiler<'a> {
    config: &'a Json<'a>,
    schemas: Schemas<'a>,
    /// Each schema compiled, by the address of its JSON value in the config, so a `$ref`
    /// compiles its target once (a config has tens of schemas: a list beats hashing).
    compiled: Vec<(usize, SchemaId)>,
    /// Each schema with a `$ref`, to look for cycles.
    refs: Vec<SchemaId>,
}

impl<'a> Compiler<'a> {
    /// A compiler for the schemas of `config`.
    pub fn new(config: &'a Json<'a>) -> Self {
        // Room for a config of a few commands, so the nodes (large) are not moved as they come.
        Compiler {
            config,
            schemas: Schemas {
                nodes: Vec::with_capacity(16),
                property_ids: Vec::with_capacity(32),
            },
            compiled: Vec::with_capacity(16),
            refs: Vec::new(),
        }
    }

    /// Compiles `value`, found at `loc` in the config, as the root of a schema document (its
    /// `#`). Errors name the JSON pointer of the problem in the config.
    pub fn root(&mut self, value: &'a Json<'a>, loc: &Loc) -> Result<SchemaId, String> {
        self.compile(value, loc, value, loc)
    }

    /// Compiles every schema of the config's top-level `$defs`, used or not, so an error in one
    /// is found at load.
    pub fn definitions(&mut self) -> Result<(), String> {
        let config = self.config;
        let Some(defs) = config.get("$defs") else {
            return Ok(());
        };
        let Json::Object(defs) = defs else {
            return Err("at /$defs: expected an object of schemas".to_owned());
        };
        let top = Loc::Raw("");
        let at = Loc::Key(&top, "$defs");
        for (name, value) in defs {
            self.compile(value, &Loc::Key(&at, name.as_ref()), config, &top)?;
        }
        Ok(())
    }

    /// The compiled schemas, once every `$ref` is checked for cycles.
    pub fn finish(self) -> Result<Schemas<'a>, String> {
        let nodes = &self.schemas.nodes;
        for start in &self.refs {
            let mut at = *start;
            for _ in 0..=nodes.len() {
                match nodes[at].reference {
                    Some(next) => at = next,
                    None => break,
                }
                if at == *start {
                    let pointer = self.pointer_of(*start);
                    return Err(format!(
                        "at {pointer}: `$ref` cycle: this schema refers back to itself without \
                         looking inside the value"
                    ));
                }
            }
        }
        Ok(self.schemas)
    }

    /// Where the schema `id` is in the config (for an error: it searches the whole config).
    fn pointer_of(&self, id: SchemaId) -> String {
        let (address, _) = self
            .compiled
            .iter()
            .find(|(_, i)| *i == id)
            .expect("compiled");
        locate(self.config, *address).unwrap_or_default()
    }

    /// The schema `value` at `loc`, whose document root (`#`) is `root`, at `root_loc`.
    fn compile(
        &mut self,
        value: &'a Json<'a>,
        loc: &Loc,
        root: &'a Json<'a>,
        root_loc: &Loc,
    ) -> Result<SchemaId, String> {
        let key = value as *const Json as usize;
        if let Some((_, id)) = self.compiled.iter().find(|(k, _)| *k == key) {
            return Ok(*id);
        }
        let id = self.schemas.nodes.len();
        self.schemas.nodes.push(Node::default());
        self.compiled.push((key, id));
        let node = self.node(value, loc, root, root_loc)?;
        if node.reference.is_some() {
            self.refs.push(id);
        }
        self.schemas.nodes[id] = node;
        Ok(id)
    }

    fn node(
        &mut self,
        schema: &'a Json<'a>,
        loc: &Loc,
        root: &'a Json<'a>,
        root_loc: &Loc,
    ) -> Result<Node<'a>, String> {
        let map = match schema {
            Json::Bool(true) => return Ok(Node::default()),
            Json::Bool(false) => {
                return Ok(Node {
                    never: true,
                    ..Node::default()
                });
            }
            Json::Object(map) => map,
            other => {
                return Err(format!(
                    "at {}: a schema is an object or a boolean, got {}",
                    loc.render(),
                    other.kind()
                ));
            }
        };
        let mut node = Node::default();
        for (keyword, value) in map {
            let keyword: &str = keyword;
            let here = Loc::Key(loc, keyword);
            let bad =
                |expected: &str| format!("at {}: `{keyword}` must be {expected}", here.render());
            match keyword {
                "$schema" => {
                    if value.as_str() != Some(DRAFT_2020_12) {
                        return Err(bad(&format!("{DRAFT_2020_12:?}, the only draft supported")));
                    }
                }
                "$defs" => {
                    let Json::Object(defs) = value else {
                        return Err(bad("an object of schemas"));
                    };
                    for (name, def) in defs {
                        self.compile(def, &Loc::Key(&here, name), root, root_loc)?;
                    }
                }
                "$ref" => {
                    let Some(reference) = value.as_str() else {
                        return Err(bad("a string"));
                    };
                    node.reference = Some(self.reference(reference, &here, root, root_loc)?);
                }
                "type" => {
                    let names: &[Json] = match value {
                        Json::Array(names) if !names.is_empty() => names,
                        Json::String(_) => std::slice::from_ref(value),
                        _ => return Err(bad("a type name or a non-empty array of them")),
                    };
                    for name in names {
                        node.types |= match name.as_str() {
                            Some("null") => NULL,
                            Some("boolean") => BOOLEAN,
                            Some("object") => OBJECT,
                            Some("array") => ARRAY,
                            Some("number") => NUMBER,
                            Some("integer") => INTEGER,
                            Some("string") => STRING,
                            _ => {
                                return Err(format!(
                                    "at {}: unknown type {name}: expected null, boolean, \
                                     object, array, number, integer or string",
                                    here.render()
                                ));
                            }
                        };
                    }
                }
                "properties" => {
                    let Json::Object(properties) = value else {
                        return Err(bad("an object of schemas"));
                    };
                    // The run of ids is taken first: the properties' own properties come after.
                    let start = self.schemas.property_ids.len();
                    let ids = start..start + properties.len();
                    self.schemas.property_ids.resize(ids.end, 0);
                    for ((name, property), at) in properties.iter().zip(ids) {
                        let id = self.compile(property, &Loc::Key(&here, name), root, root_loc)?;
                        self.schemas.property_ids[at] = id;
                    }
                    node.properties = (properties, start);
                }
                "required" => {
                    let Json::Array(names) = value else {
                        return Err(bad("an array of strings"));
                    };
                    for (i, name) in names.iter().enumerate() {
                        if name.as_str().is_none() {
                            return Err(bad("an array of strings"));
                        }
                        if names[..i].contains(name) {
                            let at = Loc::Index(&here, i).render();
                            return Err(format!("at {at}: {name} is listed twice"));
                        }
                    }
                    node.required = names;
                }
                "additionalProperties" => {
                    node.additional = match value {
                        Json::Bool(true) => None,
                        Json::Bool(false) => Some(None),
                        _ => Some(Some(self.compile(value, &here, root, root_loc)?)),
                    };
                }
                "items" => {
                    if matches!(value, Json::Array(_)) {
                        return Err(bad(
                            "one schema (draft 2020-12; `prefixItems` is not supported)",
                        ));
                    }
                    node.items = Some(self.compile(value, &here, root, root_loc)?);
                }
                "enum" => match value {
                    Json::Array(values) if !values.is_empty() => {
                        node.enumeration = Some(values.as_slice());
                    }
                    _ => return Err(bad("a non-empty array")),
                },
                "const" => node.constant = Some(value),
                "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                    let n = value.as_f64().ok_or_else(|| bad("a number"))?;
                    let slot = match keyword {
                        "minimum" => &mut node.minimum,
                        "maximum" => &mut node.maximum,
                        "exclusiveMinimum" => &mut node.exclusive_minimum,
                        _ => &mut node.exclusive_maximum,
                    };
                    *slot = Some(n);
                }
                "minLength" | "maxLength" | "minItems" | "maxItems" => {
                    let n = value
                        .as_count()
                        .ok_or_else(|| bad("a non-negative integer"))?;
                    let slot = match keyword {
                        "minLength" => &mut node.min_length,
                        "maxLength" => &mut node.max_length,
                        "minItems" => &mut node.min_items,
                        _ => &mut node.max_items,
                    };
                    *slot = Some(n);
                }
                "pattern" => {
                    let Some(text) = value.as_str() else {
                        return Err(bad("a string"));
                    };
                    let regex = regex_lite::Regex::new(text)
                        .map_err(|e| format!("at {}: bad regex {text:?}: {e}", here.render()))?;
                    node.pattern = Some((text, regex));
                }
                "format" => {
                    if value.as_str() != Some("airlock-path") {
                        return Err(format!(
                            "at {}: unknown format {value}: the only format checked is \
                             \"airlock-path\" (with a `root`)",
                            here.render()
                        ));
                    }
                    let root_at = || Loc::Key(loc, "root").render();
                    let Some(root) = schema.get("root") else {
                        return Err(format!(
                            "at {}: format \"airlock-path\" needs a `root`",
                            loc.render()
                        ));
                    };
                    let Some(root) = root.as_str() else {
                        return Err(format!("at {}: `root` must be a string", root_at()));
                    };
                    let segments = airlock_hook::path::root(root)
                        .map_err(|problem| format!("at {}: root {root:?} {problem}", root_at()))?;
                    node.path_root = Some((root, segments));
                }
                "root" => {
                    if schema.get("format").and_then(Json::as_str) != Some("airlock-path") {
                        return Err(format!(
                            "at {}: `root` belongs with format \"airlock-path\"",
                            here.render()
                        ));
                    }
                }
                k if ANNOTATIONS.contains(&k) => {}
                _ => {
                    return Err(format!(
                        "at {}: unknown keyword `{keyword}` (see guest-hooks/allowlist/README.md \
                         for the keywords checked)",
                        here.render()
                    ));
                }
            }
        }
        Ok(node)
    }

    /// Resolves a `$ref` found at `here` in the document `root`: `#` then a JSON pointer into
    /// that document; a `#/$defs/…` it does not hold is looked up in the config's top-level
    /// `$defs`.
    fn reference(
        &mut self,
        reference: &str,
        here: &Loc,
        root: &'a Json<'a>,
        root_loc: &Loc,
    ) -> Result<SchemaId, String> {
        let Some(pointer) = reference.strip_prefix('#') else {
            return Err(format!(
                "at {}: `$ref` {reference:?} is not local: only `#/…` pointers are supported",
                here.render()
            ));
        };
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(format!(
                "at {}: `$ref` {reference:?}: anchors are not supported, use `#/$defs/NAME`",
                here.render()
            ));
        }
        if let Some(target) = root.pointer(pointer) {
            return self.compile(target, &Loc::Under(root_loc, pointer), root, root_loc);
        }
        let config = self.config;
        if pointer.starts_with("/$defs/")
            && let Some(target) = config.pointer(pointer)
        {
            return self.compile(target, &Loc::Raw(pointer), config, &Loc::Raw(""));
        }
        Err(format!(
            "at {}: `$ref` {reference:?} points nowhere",
            here.render()
        ))
    }
}

/// The JSON pointer of the value at `address` in `value`, if it is there.
fn locate(value: &Json, address: usize) -> Option<String> {
    if std::ptr::from_ref(value) as usize == address {
        return Some(String::new());
    }
    match value {
        Json::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| locate(item, address).map(|rest| format!("/{i}{rest}"))),
        Json::Object(members) => members.iter().find_map(|(key, member)| {
            locate(member, address).map(|rest| format!("/{}{rest}", escape(key)))
        }),
        _ => None,
    }
}

/// A JSON pointer segment for `name` (`~` as `~0`, `/` as `~1`).
pub fn escape(name: &str) -> String {
    if name.contains(['~', '/']) {
        name.replace('~', "~0").replace('/', "~1")
    } else {
        name.to_owned()
    }
}

fn type_bits(value: &Json) -> u8 {
    match value {
        Json::Null => NULL,
        Json::Bool(_) => BOOLEAN,
        Json::Object(_) => OBJECT,
        Json::Array(_) => ARRAY,
        Json::String(_) => STRING,
        Json::Number(n) => {
            let integer = n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0);
            NUMBER | if integer { INTEGER } else { 0 }
        }
    }
}

fn type_names(bits: u8) -> String {
    let names = [
        (NULL, "null"),
        (BOOLEAN, "boolean"),
        (OBJECT, "object"),
        (ARRAY, "array"),
        (NUMBER, "number"),
        (INTEGER, "integer"),
        (STRING, "string"),
    ];
    let listed: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    listed.join(" or ")
}

/// JSON equality, numbers by value (`1` equals `1.0`), as JSON Schema's `enum` and `const` want.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => match (x.as_u64(), y.as_u64()) {
                (Some(x), Some(y)) => x == y,
                _ => x.as_f64() == y.as_f64(),
            },
        },
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        // Keys are unique in both (duplicates are refused when reading).
        (Json::Object(x), Json::Object(y)) => {
            x.len() == y.len()
                && x.iter().all(|(k, v)| {
                    y.iter()
                        .find(|(l, _)| l == k)
                        .is_some_and(|(_, w)| same(v, w))
                })
        }
        _ => a == b,
    }
}

impl Failure {
    fn new(keyword: &'static str, detail: String) -> Failure {
        Failure {
            pointer: String::new(),
            keyword,
            detail,
        }
    }

    /// The failure of a value found under `segment` (a member name or an index).
    fn under(mut self, segment: &str) -> Failure {
        self.pointer = format!("/{}{}", escape(segment), self.pointer);
        self
    }
}

impl Schemas<'_> {
    /// Checks `value` against schema `id`; the first failure found, if any, with the JSON
    /// pointer of the failing value under `value`.
    pub fn check(&self, id: SchemaId, value: &Json) -> Result<(), Failure> {
        let node = &self.nodes[id];
        let fail = |keyword: &'static str, detail: String| Err(Failure::new(keyword, detail));
        if node.never {
            return fail("false", "no value is allowed here".to_owned());
        }
        if let Some(target) = node.reference {
            self.check(target, value)?;
        }
        if node.types != 0 && node.types & type_bits(value) == 0 {
            let want = type_names(node.types);
            return fail("type", format!("expected {want}, got {}", value.kind()));
        }
        if let Some(constant) = node.constant
            && !same(constant, value)
        {
            return fail("const", format!("expected {constant}"));
        }
        if let Some(values) = node.enumeration
            && !values.iter().any(|v| same(v, value))
        {
            let listed: Vec<String> = values.iter().map(Json::to_string).collect();
            return fail("enum", format!("expected one of {}", listed.join(", ")));
        }
        match value {
            Json::Number(n) => {
                let n = n.as_f64().unwrap_or(f64::NAN);
                let bounds = [
                    (
                        "minimum",
                        node.minimum,
                        n >= node.minimum.unwrap_or(0.0),
                        ">=",
                    ),
                    (
                        "maximum",
                        node.maximum,
                        n <= node.maximum.unwrap_or(0.0),
                        "<=",
                    ),
                    (
                        "exclusiveMinimum",
                        node.exclusive_minimum,
                        n > node.exclusive_minimum.unwrap_or(0.0),
                        ">",
                    ),
                    (
                        "exclusiveMaximum",
                        node.exclusive_maximum,
                        n < node.exclusive_maximum.unwrap_or(0.0),
                        "<",
                    ),
                ];
                for (keyword, bound, holds, op) in bounds {
                    if let Some(bound) = bound
                        && !holds
                    {
                        return fail(keyword, format!("{n} is not {op} {bound}"));
                    }
                }
            }
            Json::String(s) => self.check_string(node, s)?,
            Json::Array(items) => {
                let n = items.len() as u64;
                if let Some(min) = node.min_items
                    && n < min
                {
                    return fail("minItems", format!("{n} items, at least {min} needed"));
                }
                if let Some(max) = node.max_items
                    && n > max
                {
                    return fail("maxItems", format!("{n} items, at most {max} allowed"));
                }
                if let Some(item) = node.items {
                    for (i, value) in items.iter().enumerate() {
                        self.check(item, value)
                            .map_err(|f| f.under(&i.to_string()))?;
                    }
                }
            }
            Json::Object(members) => self.check_object(node, members)?,
            Json::Null | Json::Bool(_) => {}
        }
        Ok(())
    }

    fn check_string(&self, node: &Node, s: &str) -> Result<(), Failure> {
        let fail = |keyword: &'static str, detail: String| Err(Failure::new(keyword, detail));
        if node.min_length.is_some() || node.max_length.is_some() {
            let n = s.chars().count() as u64;
            if let Some(min) = node.min_length
                && n < min
            {
                return fail(
                    "minLength",
                    format!("{n} characters, at least {min} needed"),
                );
            }
            if let Some(max) = node.max_length
                && n > max
            {
                return fail(
                    "maxLength",
                    format!("{n} characters, at most {max} allowed"),
                );
            }
        }
        if let Some((text, regex)) = &node.pattern
            && !regex.is_match(s)
        {
            return fail("pattern", format!("{s:?} does not match {text:?}"));
        }
        if let Some((root, segments)) = &node.path_root
            && let Err(problem) = airlock_hook::path::check(segments, s)
        {
            return fail(
                "format",
                format!("airlock-path in {root:?}: path {s:?} {problem}"),
            );
        }
        Ok(())
    }

    fn check_object(&self, node: &Node, members: &[(Cow<str>, Json)]) -> Result<(), Failure> {
        for name in node.required.iter().filter_map(Json::as_str) {
            if !members.iter().any(|(key, _)| key == name) {
                return Err(Failure::new(
                    "required",
                    format!("missing property {name:?}"),
                ));
            }
        }
        for (name, value) in members {
            let (properties, start) = node.properties;
            let declared = properties.iter().position(|(n, _)| n == name);
            let checked = match (declared, node.additional) {
                (Some(i), _) => self.check(self.property_ids[start + i], value),
                (None, None) => Ok(()),
                (None, Some(None)) => Err(Failure::new(
                    "additionalProperties",
                    format!("property {name:?} is not allowed"),
                )),
                (None, Some(Some(id))) => self.check(id, value),
            };
            checked.map_err(|f| f.under(name))?;
        }
        Ok(())
    }
}
