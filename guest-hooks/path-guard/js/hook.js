// path-guard: file commands must keep their `path` argument inside a root (JavaScript).
//
// The same policy as `../rust/src/lib.rs`, whose header comment gives the rules; this file follows
// it line for line, including the parsing details that decide a verdict:
//
// - Config (all optional): `{"commands": ["fs_read", "fs_write", "fs_list"], "root": "/app/data"}`;
//   an empty or all-whitespace config means `{}`; unknown or duplicate fields, wrong types and a
//   root that is not an absolute POSIX path (or holds `..`) are refused, naming the problem.
// - The args must be one JSON object (whitespace around it only) with exactly one top-level `path`
//   key (escapes decoded, so `"pa\u0074h"` is `path`) holding a string. Top-level keys and the
//   `path` value are decoded strictly (an unpaired UTF-16 surrogate escape is an error, as for
//   serde's `String`); every other value is only checked for JSON syntax, at any depth.
//
// JSON is read with the strict reader of `airlock_hook.js` (guest-hooks/helpers/js), not with
// `JSON.parse` alone: see that module for why.

import {
  JsonError,
  PASS,
  Reader,
  configError,
  decode,
  quote,
  readConfig,
  reject,
  string,
  strings,
} from "../../helpers/js/airlock_hook.js";

const CODE = "path-escape";

function typeName(kind, text) {
  if (kind === "l") return text === "null" ? "null" : "a boolean";
  return { n: "a number", s: "a string", "[": "an array", "{": "an object" }[kind] ?? "?";
}

/**
 * The top-level `path` value of a JSON object: ["s", string], [kind, type name] or null.
 *
 * Fast path: when the args hold no backslash (so no escaped key and no surrogate escape) and the
 * text `"path"` at most once (so no duplicate key), the engine's own `JSON.parse` decides: its
 * grammar is serde_json's. Everything else, and anything `JSON.parse` refuses (a syntax error, or
 * nesting deeper than its stack), goes to `Reader`, which has the final word.
 */
function findPath(args) {
  if (!args.includes("\\") && args.indexOf('"path"') === args.lastIndexOf('"path"')) {
    let value;
    try {
      value = JSON.parse(args);
    } catch {
      return findPathStrictly(args);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw new JsonError("invalid type: expected a JSON object");
    }
    if (!Object.prototype.hasOwnProperty.call(value, "path")) return null;
    const path = value.path;
    if (typeof path === "string") return ["s", path];
    if (path === null) return ["l", "null"];
    if (typeof path === "boolean") return ["l", String(path)];
    if (typeof path === "number") return ["n", ""];
    return [Array.isArray(path) ? "[" : "{", ""];
  }
  return findPathStrictly(args);
}

function findPathStrictly(args) {
  const reader = new Reader(args);
  let [kind, text] = reader.token();
  if (kind !== "{") throw new JsonError("invalid type: expected a JSON object");
  let found = null;
  for (let key = reader.nextKey(true); key !== null; key = reader.nextKey(false)) {
    [kind, text] = reader.token();
    if (key === "path") {
      if (found !== null) throw new JsonError("duplicate `path` key");
      if (kind === "s") {
        found = ["s", decode(text)];
      } else {
        // Not a string: refused whatever it holds (serde would also refuse some of these values
        // outright, with the same code).
        reader.skipValue(kind);
        found = [kind, text];
      }
    } else {
      reader.skipValue(kind);
    }
  }
  reader.end();
  return found;
}

const isControl = (code) => code < 0x20 || (code >= 0x7f && code <= 0x9f);

const LOOKALIKES = new Set([
  0x2044, 0x2215, 0x2571, 0x29f8, 0xff0f, 0x1735, 0x0337, 0x0338, 0x2216, 0x29f5, 0x29f9, 0xfe68,
  0xff3c, 0x2024, 0x2025, 0x2026, 0xfe52, 0xff0e, 0x3002, 0xff61, 0x0701, 0x0702, 0xa4f8, 0x06d4,
]);
const INVISIBLE_SINGLE = new Set([
  0x00ad, 0x034f, 0x061c, 0x115f, 0x1160, 0x17b4, 0x17b5, 0x3164, 0xfeff, 0xffa0,
]);
const INVISIBLE_RANGES = [
  [0x180b, 0x180f], [0x200b, 0x200f], [0x2028, 0x202e], [0x2060, 0x206f], [0xfe00, 0xfe0f],
  [0xfff9, 0xfffb], [0x1d173, 0x1d17a], [0xe0000, 0xe0fff],
];

function isInvisible(code) {
  if (INVISIBLE_SINGLE.has(code)) return true;
  return INVISIBLE_RANGES.some(([lo, hi]) => code >= lo && code <= hi);
}

const PERCENT = /%(?:[0-9a-fA-F]{2}|[uU][0-9a-fA-F]{4})/;
const SCHEME = /^[A-Za-z][A-Za-z0-9+\-.]*$/;
// Characters no path check needs to look at one by one: printable ASCII other than `\`.
const PLAIN = /^[ -\[\]-~]*$/;
const DOTS_AND_SPACES = /^[. ]+$/;
// Every character `isControl`, `LOOKALIKES` or `isInvisible` names, and `\`.
const SUSPICIOUS = new RegExp(
  "[\\u0000-\\u001f\\u007f-\\u009f\\\\" +
    [...LOOKALIKES].map((c) => `\\u{${c.toString(16)}}`).join("") +
    [...INVISIBLE_SINGLE].map((c) => `\\u{${c.toString(16)}}`).join("") +
    INVISIBLE_RANGES.map(([lo, hi]) => `\\u{${lo.toString(16)}}-\\u{${hi.toString(16)}}`).join("") +
    "]",
  "u",
);

const hex4 = (code) => code.toString(16).toUpperCase().padStart(4, "0");

/** null when the path stays inside the root; else the problem, completing "path … ". */
function check(root, path) {
  if (!PLAIN.test(path)) {
    // Find the first suspicious character with one regex, then say what it is.
    const bad = SUSPICIOUS.exec(path);
    if (bad !== null) {
      const c = bad[0];
      const code = c.codePointAt(0);
      if (isControl(code)) return `has control character U+${hex4(code)}`;
      if (c === "\\") return "has a backslash";
      if (LOOKALIKES.has(code)) return `has U+${hex4(code)}, a lookalike of \`/\`, \`\\\` or \`.\``;
      if (isInvisible(code)) return `has invisible formatting character U+${hex4(code)}`;
    }
  }
  const encoded = PERCENT.exec(path);
  if (encoded !== null) return `has percent-encoded ${quote(encoded[0])}`;
  if (path.startsWith("~")) return "starts with `~`, a home-directory reference";
  const colon = path.indexOf(":");
  if (colon >= 0) {
    const prefix = path.slice(0, colon);
    const rest = path.slice(colon + 1);
    if (
      SCHEME.test(prefix) &&
      (prefix.length === 1 || rest.startsWith("//") || prefix.toLowerCase() === "file")
    ) {
      return "starts with a drive letter or URL scheme";
    }
  }

  const absolute = path.startsWith("/");
  const depth = root.length;
  // Only the resolved path's length and how many of its leading segments equal the root's (at
  // most `depth`) matter: it is inside the root when all of them do. An indexed loop over
  // counters, because each turn of a loop costs QuickJS microseconds.
  let length = absolute ? 0 : depth;
  let matched = length;
  let wasInside = !absolute;
  const segments = path.split("/");
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    const first = segment.charCodeAt(0);
    if (first === DOT || first === SPACE) {
      if (segment === ".") continue;
      if (segment === "..") {
        if (length === 0) return "climbs above `/`";
        length -= 1;
        if (matched > length) matched = length;
      } else if (DOTS_AND_SPACES.test(segment)) {
        return `has segment ${quote(segment)}, made only of dots and spaces`;
      } else if (DOT_DOT_SUFFIX.test(segment)) {
        return `has segment ${quote(segment)}, read as \`..\` by some servers`;
      } else {
        if (matched === length && matched < depth && segment === root[matched]) matched += 1;
        length += 1;
      }
    } else if (segment === "") {
      continue;
    } else {
      if (matched === length && matched < depth && segment === root[matched]) matched += 1;
      length += 1;
    }
    const inside = matched === depth;
    if (wasInside && !inside) return `walks out of the root /${root.join("/")}`;
    if (inside) wasInside = true;
  }
  if (matched !== depth) {
    const resolved = resolve(absolute ? [] : root, segments);
    return `resolves to /${resolved} outside the root /${root.join("/")}`;
  }
  return null;
}

const DOT = 46;
const SPACE = 32;
const DOT_DOT_SUFFIX = /^\.\.[;?#]/;

/** The segments a checked path resolves to, joined with `/` (for a reason). */
function resolve(start, segments) {
  const at = start.slice();
  for (const segment of segments) {
    if (segment === "..") at.pop();
    else if (segment !== "" && segment !== ".") at.push(segment);
  }
  return at.join("/");
}

// ---- config -------------------------------------------------------------------------------------

const DEFAULT_COMMANDS = ["fs_read", "fs_write", "fs_list"];
const DEFAULT_ROOT = "/app/data";

/** [commands, root] from the config text; throws JsonError naming the problem. */
function parseConfig(config) {
  const fields = readConfig(config, ["commands", "root"]);
  const commands = strings(fields.has("commands") ? fields.get("commands") : DEFAULT_COMMANDS);
  const root = string(fields.has("root") ? fields.get("root") : DEFAULT_ROOT);
  return [commands, root];
}

/** The root's segments (empty for `/`); throws a message. */
function rootSegments(root) {
  let control = false;
  for (const c of root) if (isControl(c.codePointAt(0))) control = true;
  if (!root.startsWith("/") || root.includes("\\") || control) {
    throw `root ${quote(root)} must be an absolute POSIX path`;
  }
  const segments = [];
  for (const segment of root.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") throw `root ${quote(root)} must not contain \`..\``;
    segments.push(segment);
  }
  return segments;
}

let commands = new Set(DEFAULT_COMMANDS);
let root = rootSegments(DEFAULT_ROOT);

export const policy = {
  configure(config) {
    try {
      const [names, rootPath] = parseConfig(config);
      const segments = rootSegments(rootPath);
      commands = new Set(names);
      root = segments;
    } catch (e) {
      throw configError(e);
    }
  },

  inspect(message) {
    if (message.kind !== "command" || !commands.has(message.name)) return PASS;
    const name = message.name;
    const body = message.body;
    if (body.tag !== "json") {
      return reject(CODE, `\`${name}\` takes JSON args with a string \`path\`, got bytes`);
    }
    let found;
    try {
      found = findPath(body.val);
    } catch (e) {
      if (e instanceof JsonError) return reject(CODE, `args of \`${name}\`: ${e.message}`);
      throw e;
    }
    if (found === null) return reject(CODE, `\`${name}\` needs a string \`path\` argument`);
    const [kind, path] = found;
    if (kind !== "s") {
      return reject(CODE, `\`path\` of \`${name}\` must be a string, got ${typeName(kind, path)}`);
    }
    const problem = check(root, path);
    if (problem === null) return PASS;
    return reject(CODE, `path ${quote(path)} ${problem}`);
  },
};
