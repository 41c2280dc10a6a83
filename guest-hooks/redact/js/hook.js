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
// JSON is read and written with `airlock_hook.js` (guest-hooks/helpers/js), not with `JSON.parse`
// alone: see that module for why.

import {
  JsonError,
  MAX_DEPTH,
  PASS,
  configError,
  boolean,
  parse,
  readConfig,
  reject,
  replaceJsonBody,
  strings,
  write,
} from "../../helpers/js/airlock_hook.js";

const CODE = "redact-failed";

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

const DEFAULT_FIELDS = ["password", "token", "secret"];

/** [fields, caseSensitive]; throws JsonError naming the problem. */
function parseConfig(config) {
  const fields = readConfig(config, ["fields", "case_sensitive"]);
  const names = strings(fields.has("fields") ? fields.get("fields") : DEFAULT_FIELDS);
  const caseSensitive = fields.has("case_sensitive") ? fields.get("case_sensitive") : false;
  return [names, boolean(caseSensitive)];
}

let matches = matcher(DEFAULT_FIELDS, false);

export const policy = {
  configure(config) {
    try {
      matches = matcher(...parseConfig(config));
    } catch (e) {
      throw configError(e);
    }
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
        return reject(CODE, `cannot parse the event's JSON: ${e.message}`);
      }
      throw e;
    }
    if (remove(value, matches) === 0) return PASS;
    const out = [];
    write(value, out);
    return replaceJsonBody(out.join(""));
  },
};
