// Airlock's helper for JavaScript hooks: JSON read and written as the Rust hooks' serde_json does,
// and the config reading every hook shares.
//
// Every JavaScript hook in the Airlock repository imports this one module
// (`guest-hooks/helpers/js/airlock_hook.js`; componentize-qjs bakes it into the component), and
// `airlock new --lang js` writes it next to the new hook's `hook.js`.
//
// Why not `JSON.parse` alone: it keeps the last of duplicate keys without saying so, accepts
// unpaired surrogate escapes, puts integer-like keys first, turns `1.0` into `1` and rounds big
// integers. Where any of those could change a verdict, `Reader` decides: it takes exactly the JSON
// serde_json takes.

/** serde_json refuses to enter a container when this many are already open. */
export const MAX_DEPTH = 128;

// One token after optional JSON whitespace: punctuation, a string (its raw inside), a number, or a
// literal.
const TOKEN = new RegExp(
  '[ \\t\\n\\r]*(?:([{}\\[\\]:,])' +
    '|"([^"\\\\\\x00-\\x1f]*(?:\\\\(?:["\\\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\\\\x00-\\x1f]*)*)"' +
    "|(-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)" +
    "|(true|false|null))",
  "y",
);
const TRAILING = /[ \t\n\r]*/y;
const LITERALS = { true: true, false: false, null: null };
const MAYBE_SURROGATE = /\\u[dD][89a-fA-F]/;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?:^|[^\ud800-\udbff])[\udc00-\udfff]/;
// What Rust's `str::trim` removes (Unicode White_Space); `String.prototype.trim` differs (it
// takes U+FEFF and leaves U+0085).
const RUST_WHITESPACE =
  /^[\t\n\x0b\x0c\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$/;

/** Text that is not the JSON a hook accepts; the message says where. */
export class JsonError extends Error {}

/** A JSON number, kept as serde_json spells it (see `spelling`). */
export class Num {
  constructor(text) {
    this.text = text;
  }
}

/**
 * The value of a string's raw inside (already checked by `Reader.token`), with unpaired surrogate
 * escapes refused as serde_json refuses them for a `String`. The engine's `JSON.parse` decodes;
 * the text from the host is valid Unicode, so any unpaired surrogate after decoding came from an
 * escape.
 */
export function decode(raw) {
  if (!raw.includes("\\")) return raw;
  const value = JSON.parse('"' + raw + '"');
  if (MAYBE_SURROGATE.test(raw) && LONE_SURROGATE.test(value)) {
    throw new JsonError("lone surrogate in hex escape");
  }
  return value;
}

/** serde_json's spelling of a number: as written, but exponents as `e+N` / `e-N`. */
export function spelling(text) {
  const e = text.search(/[eE]/);
  if (e < 0) return text;
  const sign = text[e + 1] === "+" || text[e + 1] === "-" ? "" : "+";
  return text.slice(0, e) + "e" + sign + text.slice(e + 1);
}

/** A strict JSON reader over `text`, one token at a time. */
export class Reader {
  constructor(text) {
    this.text = text;
    this.pos = 0;
  }

  /**
   * [kind, text]: kind is one of `{}[]:,` or `s` (string, with its raw inside as text), `n`
   * (number), `l` (literal).
   */
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

  /**
   * The value starting with this token, `depth` containers deep: Map (keys in order, the last of
   * duplicate keys winning at the first one's place), Array, string, Num, boolean or null.
   */
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
    for (let key = this.nextKey(true); key !== null; key = this.nextKey(false)) {
      [kind, text] = this.token();
      members.set(key, this.value(kind, text, depth));
    }
    return members;
  }

  /**
   * Inside an object, after its `{` (`first`) or after a member's value: the next member's key,
   * decoded, with the colon after it read; null at the closing `}`.
   */
  nextKey(first) {
    let [kind, text] = this.token();
    if (kind === "}") return null;
    if (!first) {
      if (kind !== ",") throw new JsonError(`expected \`,\` or \`}\` at column ${this.pos}`);
      [kind, text] = this.token();
    }
    if (kind !== "s") throw new JsonError(`expected a string key at column ${this.pos}`);
    const key = decode(text);
    if (this.token()[0] !== ":") throw new JsonError(`expected \`:\` at column ${this.pos}`);
    return key;
  }

  /** Checks the syntax of the value that starts with this token, without depth limit. */
  skipValue(kind) {
    const stack = [];
    for (;;) {
      if (kind === "s" || kind === "n" || kind === "l") {
        // a scalar: done
      } else if (kind === "{" || kind === "[") {
        const close = kind === "{" ? "}" : "]";
        kind = this.token()[0];
        if (kind !== close) {
          stack.push(close);
          if (close === "}") kind = this.memberKey(kind);
          continue;
        }
      } else {
        throw new JsonError(`expected a value at column ${this.pos}`);
      }
      // A value ended: close containers or go on with the next element.
      for (;;) {
        if (stack.length === 0) return;
        kind = this.token()[0];
        const top = stack[stack.length - 1];
        if (kind === top) {
          stack.pop();
          continue;
        }
        if (kind !== ",") throw new JsonError(`expected \`,\` or \`${top}\` at column ${this.pos}`);
        kind = this.token()[0];
        if (top === "}") kind = this.memberKey(kind);
        break;
      }
    }
  }

  /** After a key token inside an object: checks it and the colon; the value's first token kind. */
  memberKey(kind) {
    if (kind !== "s") throw new JsonError(`expected a string key at column ${this.pos}`);
    if (this.token()[0] !== ":") throw new JsonError(`expected \`:\` at column ${this.pos}`);
    return this.token()[0];
  }

  /** Checks that nothing but whitespace follows. */
  end() {
    TRAILING.lastIndex = this.pos;
    TRAILING.exec(this.text);
    this.pos = TRAILING.lastIndex;
    if (this.pos !== this.text.length) {
      throw new JsonError(`trailing characters at column ${this.pos + 1}`);
    }
  }
}

/** The JSON text as a tree (see `Reader.value`); throws JsonError where serde_json would fail. */
export function parse(text) {
  const reader = new Reader(text);
  const [kind, token] = reader.token();
  const value = reader.value(kind, token, 0);
  reader.end();
  return value;
}

/** Appends compact JSON for a tree (see `Reader.value`) to the array `out`, as serde_json does. */
export function write(value, out) {
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

// ---- verdicts -----------------------------------------------------------------------------------

/** The `pass` verdict: the message goes on unchanged. */
export const PASS = Object.freeze({ tag: "pass" });

/** A `reject` verdict with this code and reason. */
export function reject(code, reason) {
  return { tag: "reject", val: { code, reason } };
}

/** A `replace` verdict that swaps the body for this JSON text and keeps everything else. */
export function replaceJsonBody(text) {
  return { tag: "replace", val: { name: null, headers: null, body: { tag: "json", val: text } } };
}

// ---- reasons and configs ------------------------------------------------------------------------

/** A string quoted for a reason (long ones are cut: the host keeps 1024 bytes of a reason). */
export function quote(text) {
  return JSON.stringify(text.length > 1024 ? text.slice(0, 1024) + "…" : text);
}

/** A tree's value as serde names it in an "invalid type" error. */
export function describe(value) {
  if (value === null) return "null";
  if (typeof value === "boolean") return `boolean \`${value}\``;
  if (value instanceof Num) return `number \`${value.text}\``;
  if (typeof value === "string") return `string ${quote(value)}`;
  if (Array.isArray(value)) return "sequence";
  return "map";
}

/**
 * The fields of a hook's JSON config as a Map (values as `Reader.value` gives them), read as serde
 * reads a struct with the fields named in `known`: an empty or all-whitespace config means `{}`;
 * anything but an object, an unknown field and a repeated one throw JsonError naming the problem.
 */
export function readConfig(config, known) {
  if (RUST_WHITESPACE.test(config)) config = "{}";
  const reader = new Reader(config);
  let [kind, text] = reader.token();
  // A config is an object: an array (serde's sequence form of a struct) is refused too.
  if (kind !== "{") {
    reader.skipValue(kind);
    throw new JsonError("invalid type, expected struct Config");
  }
  const fields = new Map();
  for (let key = reader.nextKey(true); key !== null; key = reader.nextKey(false)) {
    if (!known.includes(key)) {
      throw new JsonError(`unknown field \`${key}\`, expected ${oneOf(known)}`);
    }
    if (fields.has(key)) throw new JsonError(`duplicate field \`${key}\``);
    [kind, text] = reader.token();
    fields.set(key, reader.value(kind, text, 1));
  }
  reader.end();
  return fields;
}

/** What `configure` throws for a config error: `invalid config: …`; anything else as it is. */
export function configError(e) {
  return e instanceof JsonError ? `invalid config: ${e.message}` : e;
}

/** serde's list of expected fields: "`a`", "`a` or `b`", "one of `a`, `b`, `c`". */
function oneOf(names) {
  const quoted = names.map((name) => `\`${name}\``);
  if (quoted.length <= 2) return quoted.join(" or ");
  return "one of " + quoted.join(", ");
}

/** A config value that must be a string; throws JsonError otherwise. */
export function string(value) {
  if (typeof value !== "string") {
    throw new JsonError(`invalid type: ${describe(value)}, expected a string`);
  }
  return value;
}

/** A config value that must be an array of strings, as a new array; throws JsonError otherwise. */
export function strings(value) {
  if (!Array.isArray(value)) {
    throw new JsonError(`invalid type: ${describe(value)}, expected a sequence`);
  }
  return value.map(string);
}

/** A config value that must be `true` or `false`; throws JsonError otherwise. */
export function boolean(value) {
  if (typeof value !== "boolean") {
    throw new JsonError(`invalid type: ${describe(value)}, expected a boolean`);
  }
  return value;
}
