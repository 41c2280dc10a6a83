// redact: removes secret fields from events (JavaScript).
//
// The same policy as `../rust/src/lib.rs`, whose header comment gives the rules:
//
// - Config (all optional): `{"fields": ["password", "token", "secret"], "case_sensitive": false}`;
//   an empty or all-whitespace config means `{}`; unknown or duplicate fields and wrong types are
//   refused, naming the problem.
// - For an event with a JSON body, every object member whose key is one of `fields` (compared
//   ignoring ASCII case unless `case_sensitive`) is removed, at any depth, inside arrays too, and
//   the rest is forwarded as `replace`, written compactly with key order and number spelling kept
//   (but for exponents, which serde_json writes `e+N`)
//   (of duplicate keys the last value wins, at the first one's place, as in serde_json's
//   `preserve_order` map). Nothing removed: pass. Commands, channels and bytes bodies pass.
// - A body the hook cannot parse is rejected with `redact-failed`; like serde_json, that includes
//   an unpaired UTF-16 surrogate escape and nesting 128 deep.
//
// The JSON reader is written here rather than taken from `JSON.parse`, which puts integer-like
// keys first, turns `1.0` into `1`, rounds big integers and accepts unpaired surrogates.

const CODE = "redact-failed";
const PASS = { tag: "pass" };
// serde_json refuses to enter a container when this many are already open.
const MAX_DEPTH = 128;

const TOKEN = new RegExp(
  '[ \\t\\n\\r]*(?:([{}\\[\\]:,])' +
    '|"([^"\\\\\\x00-\\x1f]*(?:\\\\(?:["\\\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\\\\x00-\\x1f]*)*)"' +
    "|(-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)" +
    "|(true|false|null))",
  "y",
);
const TRAILING = /[ \t\n\r]*/y;
const LITERALS = { true: true, false: false, null: null };

class JsonError extends Error {}

/** A JSON number, kept as it was spelled. */
class Num {
  constructor(text) {
    this.text = text;
  }
}

/**
 * The value of a string's raw inside (already checked by `TOKEN`), with unpaired surrogate escapes
 * refused as serde_json refuses them for a `String`. The engine's `JSON.parse` decodes; the text
 * from the host is valid Unicode, so any unpaired surrogate after decoding came from an escape.
 */
function decode(raw) {
  if (!raw.includes("\\")) return raw;
  const value = JSON.parse('"' + raw + '"');
  if (MAYBE_SURROGATE.test(raw) && LONE_SURROGATE.test(value)) {
    throw new JsonError("lone surrogate in hex escape");
  }
  return value;
}

const MAYBE_SURROGATE = /\\u[dD][89a-fA-F]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?:^|[^\ud800-\udbff])[\udc00-\udfff]/;

class Reader {
  constructor(text) {
    this.text = text;
    this.pos = 0;
  }

  token() {
    TOKEN.lastIndex = this.pos;
    const m = TOKEN.exec(this.text);
    if (m === null) {
      TRAILING.lastIndex = this.pos;
      TRAILING.exec(this.text);
      this.pos = TRAILING.lastIndex;
      const what =
        this.pos >= this.text.length ? "end of input" : JSON.stringify(this.text[this.pos]);
      throw new JsonError(`unexpected ${what} at column ${this.pos + 1}`);
    }
    this.pos = TOKEN.lastIndex;
    if (m[1] !== undefined) return [m[1], m[1]];
    if (m[2] !== undefined) return ["s", m[2]];
    if (m[3] !== undefined) return ["n", m[3]];
    return ["l", m[4]];
  }

  /** The value starting with this token: Map, Array, string, Num, boolean or null. */
  value(kind, text, depth) {
    if (kind === "s") return decode(text);
    if (kind === "n") return new Num(spelling(text));
    if (kind === "l") return LITERALS[text];
    if (kind !== "{" && kind !== "[") throw new JsonError(`expected a value at column ${this.pos}`);
    depth += 1;
    if (depth >= MAX_DEPTH) throw new JsonError(`recursion limit exceeded at column ${this.pos}`);
    if (kind === "[") {
      const items = [];
      [kind, text] = this.token();
      if (kind === "]") return items;
      for (;;) {
        items.push(this.value(kind, text, depth));
        [kind, text] = this.token();
        if (kind === "]") return items;
        if (kind !== ",") throw new JsonError(`expected \`,\` or \`]\` at column ${this.pos}`);
        [kind, text] = this.token();
      }
    }
    const members = new Map();
    [kind, text] = this.token();
    if (kind === "}") return members;
    for (;;) {
      if (kind !== "s") throw new JsonError(`expected a string key at column ${this.pos}`);
      const key = decode(text);
      if (this.token()[0] !== ":") throw new JsonError(`expected \`:\` at column ${this.pos}`);
      [kind, text] = this.token();
      members.set(key, this.value(kind, text, depth));
      [kind, text] = this.token();
      if (kind === "}") return members;
      if (kind !== ",") throw new JsonError(`expected \`,\` or \`}\` at column ${this.pos}`);
      [kind, text] = this.token();
    }
  }

  end() {
    TRAILING.lastIndex = this.pos;
    TRAILING.exec(this.text);
    this.pos = TRAILING.lastIndex;
    if (this.pos !== this.text.length) {
      throw new JsonError(`trailing characters at column ${this.pos + 1}`);
    }
  }
}

/** serde_json's spelling of a number: as written, but exponents as `e+N` / `e-N`. */
function spelling(text) {
  const e = text.search(/[eE]/);
  if (e < 0) return text;
  const sign = text[e + 1] === "+" || text[e + 1] === "-" ? "" : "+";
  return text.slice(0, e) + "e" + sign + text.slice(e + 1);
}

function parse(text) {
  const reader = new Reader(text);
  const [kind, token] = reader.token();
  const value = reader.value(kind, token, 0);
  reader.end();
  return value;
}

/** Appends compact JSON for the value to `out`, as serde_json writes it. */
function write(value, out) {
  if (value instanceof Map) {
    out.push("{");
    let first = true;
    for (const [key, item] of value) {
      if (!first) out.push(",");
      first = false;
      out.push(JSON.stringify(key), ":");
      write(item, out);
    }
    out.push("}");
  } else if (Array.isArray(value)) {
    out.push("[");
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out.push(",");
      write(value[i], out);
    }
    out.push("]");
  } else if (value instanceof Num) {
    out.push(value.text);
  } else {
    // Strings: JSON.stringify escapes `"`, `\` and U+0000-001F only (short forms for \b \f \n
    // \r \t, lowercase hex otherwise), as serde_json does; true, false and null as themselves.
    out.push(JSON.stringify(value));
  }
}

const asciiLower = (text) => text.replace(/[A-Z]+/g, (s) => s.toLowerCase());

function matcher(fields, caseSensitive) {
  if (caseSensitive) {
    const wanted = new Set(fields);
    return (key) => wanted.has(key);
  }
  const wanted = new Set(fields.map(asciiLower));
  return (key) => wanted.has(asciiLower(key));
}

/** Removes matching members at any depth; returns how many were removed. */
function remove(value, matches) {
  let removed = 0;
  if (value instanceof Map) {
    for (const key of [...value.keys()]) {
      if (matches(key)) {
        value.delete(key);
        removed += 1;
      }
    }
    for (const child of value.values()) {
      if (typeof child === "object" && child !== null) removed += remove(child, matches);
    }
  } else if (Array.isArray(value)) {
    for (const item of value) {
      if (typeof item === "object" && item !== null) removed += remove(item, matches);
    }
  }
  return removed;
}

// A `\uD800`-`\uDFFF` escape (or text that merely looks like one: the strict reader decides).
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/** Whether a `JSON.parse` result holds a member to remove or a container MAX_DEPTH deep. */
function anyMatchOrTooDeep(value, depth) {
  if (typeof value !== "object" || value === null) return false;
  if (depth + 1 >= MAX_DEPTH) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (anyMatchOrTooDeep(item, depth + 1)) return true;
    return false;
  }
  for (const key of Object.keys(value)) {
    if (matches(key) || anyMatchOrTooDeep(value[key], depth + 1)) return true;
  }
  return false;
}

// ---- config -------------------------------------------------------------------------------------

// What Rust's `str::trim` removes (Unicode White_Space).
const RUST_WHITESPACE =
  /^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;
const DEFAULT_FIELDS = ["password", "token", "secret"];

function describe(value) {
  if (value === null) return "null";
  if (typeof value === "boolean") return `boolean \`${value}\``;
  if (value instanceof Num) return `number \`${value.text}\``;
  if (typeof value === "string") return `string ${JSON.stringify(value)}`;
  if (Array.isArray(value)) return "sequence";
  return "map";
}

/** [fields, caseSensitive]; throws JsonError naming the problem. */
function parseConfig(config) {
  if (RUST_WHITESPACE.test(config)) config = "{}";
  const reader = new Reader(config);
  let [kind, text] = reader.token();
  const fields = new Map();
  // A config is an object: an array (serde's sequence form of a struct) is refused too.
  if (kind === "{") {
    [kind, text] = reader.token();
    if (kind !== "}") {
      for (;;) {
        if (kind !== "s") throw new JsonError(`expected a string key at column ${reader.pos}`);
        const key = decode(text);
        if (reader.token()[0] !== ":") {
          throw new JsonError(`expected \`:\` at column ${reader.pos}`);
        }
        if (key !== "fields" && key !== "case_sensitive") {
          const expected = "expected `fields` or `case_sensitive`";
          throw new JsonError(`unknown field \`${key}\`, ${expected}`);
        }
        if (fields.has(key)) throw new JsonError(`duplicate field \`${key}\``);
        [kind, text] = reader.token();
        fields.set(key, reader.value(kind, text, 1));
        [kind, text] = reader.token();
        if (kind === "}") break;
        if (kind !== ",") throw new JsonError(`expected \`,\` or \`}\` at column ${reader.pos}`);
        [kind, text] = reader.token();
      }
    }
  } else {
    reader.value(kind, text, 0);
    throw new JsonError("invalid type, expected struct Config");
  }
  reader.end();

  const names = fields.has("fields") ? fields.get("fields") : DEFAULT_FIELDS;
  if (!Array.isArray(names)) {
    throw new JsonError(`invalid type: ${describe(names)}, expected a sequence`);
  }
  for (const item of names) {
    if (typeof item !== "string") {
      throw new JsonError(`invalid type: ${describe(item)}, expected a string`);
    }
  }
  const caseSensitive = fields.has("case_sensitive") ? fields.get("case_sensitive") : false;
  if (typeof caseSensitive !== "boolean") {
    throw new JsonError(`invalid type: ${describe(caseSensitive)}, expected a boolean`);
  }
  return [names, caseSensitive];
}

let matches = matcher(DEFAULT_FIELDS, false);

export const policy = {
  configure(config) {
    let parsed;
    try {
      parsed = parseConfig(config);
    } catch (e) {
      if (e instanceof JsonError) throw `invalid config: ${e.message}`;
      throw e;
    }
    matches = matcher(parsed[0], parsed[1]);
  },

  inspect(message) {
    if (message.kind !== "event" || message.body.tag !== "json") return PASS;
    const text = message.body.val;
    // Fast path: without a surrogate escape, `JSON.parse` accepts exactly what serde_json does
    // (but for depth, checked while looking): when nothing matches, the event passes. Anything
    // else (a match, a refusal, a surrogate escape) goes to the strict reader, which builds the
    // exact replacement or the error.
    if (!SURROGATE_ESCAPE.test(text)) {
      let loose;
      try {
        loose = JSON.parse(text);
      } catch {
        loose = undefined;
      }
      if (loose !== undefined && !anyMatchOrTooDeep(loose, 0)) return PASS;
    }
    let value;
    try {
      value = parse(text);
    } catch (e) {
      if (e instanceof JsonError) {
        const reason = `cannot parse the event's JSON: ${e.message}`;
        return { tag: "reject", val: { code: CODE, reason } };
      }
      throw e;
    }
    if (remove(value, matches) === 0) return PASS;
    const out = [];
    write(value, out);
    const body = { tag: "json", val: out.join("") };
    return { tag: "replace", val: { name: null, headers: null, body } };
  },
};
