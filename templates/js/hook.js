// {{name}}: an Airlock isolation hook in JavaScript (built with componentize-qjs: QuickJS).
//
// Config: `{}` (nothing denied) or `{"deny": ["command", ...]}`; anything else is refused with an
// error naming it. A command whose name is in `deny` is rejected with code `denied`; everything
// else (other commands, events, channels) passes.
//
// The exports follow the WIT in wit/: `configure` returns nothing or throws the error string;
// `inspect` gets `{ id, kind, name, source, headers, body: { tag: "json" | "bytes", val } }` and
// returns `{ tag: "pass" }`, `{ tag: "reject", val: { code, reason } }` or
// `{ tag: "replace", val: { name, headers, body } }` (null for what stays).

import { JsonError, readConfig, strings } from "./airlock_hook.js";

const HOOK = "{{name}}";
const PASS = { tag: "pass" };

// Set by `configure`, which runs on every instance before `inspect`.
let denied = new Set();

export const policy = {
  configure(config) {
    // airlock_hook.js reads JSON as Rust's serde_json does (JSON.parse keeps the last of duplicate
    // keys...), and the config's fields as serde reads a struct's.
    let fields;
    try {
      fields = readConfig(config, ["deny"]);
    } catch (e) {
      if (e instanceof JsonError) throw `${HOOK}: invalid config: ${e.message}`;
      throw e;
    }
    try {
      denied = new Set(strings(fields.has("deny") ? fields.get("deny") : []));
    } catch (e) {
      if (!(e instanceof JsonError)) throw e;
      throw `${HOOK}: \`deny\` must be a list of command names: ${e.message}`;
    }
  },

  inspect(message) {
    if (message.kind === "command" && denied.has(message.name)) {
      const reason = `command \`${message.name}\` is denied by ${HOOK}`;
      return { tag: "reject", val: { code: "denied", reason } };
    }
    return PASS;
  },
};
