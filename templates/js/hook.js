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

const HOOK = "{{name}}";
const PASS = { tag: "pass" };

// Set by `configure`, which runs on every instance before `inspect`.
let denied = new Set();

export const policy = {
  configure(config) {
    let value;
    try {
      value = JSON.parse(config || "{}");
    } catch (e) {
      throw `${HOOK}: config is not JSON: ${e.message}`;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      throw `${HOOK}: config must be a JSON object, got ${config.trim().slice(0, 80)}`;
    }
    for (const field of Object.keys(value)) {
      if (field !== "deny") {
        throw `${HOOK}: unknown config field \`${field}\` (the only one is \`deny\`)`;
      }
    }
    const deny = Object.hasOwn(value, "deny") ? value.deny : [];
    if (!Array.isArray(deny)) {
      throw `${HOOK}: \`deny\` must be a list of command names, got ${JSON.stringify(deny)}`;
    }
    for (const item of deny) {
      if (typeof item !== "string") {
        throw `${HOOK}: \`deny\` must hold command names, got ${JSON.stringify(item)}`;
      }
    }
    denied = new Set(deny);
  },

  inspect(message) {
    if (message.kind === "command" && denied.has(message.name)) {
      const reason = `command \`${message.name}\` is denied by ${HOOK}`;
      return { tag: "reject", val: { code: "denied", reason } };
    }
    return PASS;
  },
};
