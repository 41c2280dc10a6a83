// {{name}}: an Airlock isolation hook in C.
//
// Config: `{}` (nothing denied) or `{"deny": ["cmd", ...]}`; anything else (an unknown field, a
// `deny` that is not a list, an item that is not a string) is refused with an error naming it.
// A command whose name is in `deny` is rejected with code `denied`; everything else passes.
//
// airlock_hook.h implements the component's exports with `hook_configure` and `hook_inspect`
// below, and gives the helpers (hook_reject, hook_replace_json_body, hook_error_set); JSON is
// read with airlock_json.h. Nothing here may print: stdio would make the hook import WASI.
#include "airlock_hook.h"

static json_arena config_arena; // holds the parsed config for the instance's lifetime
static json_str *deny;
static size_t deny_len;

bool hook_configure(const char *text, size_t len, hook_error *err) {
  json_arena_free(&config_arena);
  deny = NULL;
  deny_len = 0;
  json_value config;
  if (!hook_parse_config(text, len, &config_arena, &config, err)) return false;
  if (config.type != JSON_OBJECT) return hook_error_set(err, "invalid config: expected an object");
  bool seen = false;
  for (size_t i = 0; i < config.as.object.len; i++) {
    const json_member *m = &config.as.object.members[i];
    if (!json_eq(m->key, "deny"))
      return hook_error_set(err, "invalid config: unknown field `%.*s`, expected `deny`", (int)m->key.len,
                            m->key.ptr);
    if (seen) return hook_error_set(err, "invalid config: duplicate field `deny`");
    seen = true;
    if (m->value.type != JSON_ARRAY)
      return hook_error_set(err, "invalid config: `deny` must be a list of command names");
    deny = json_alloc(&config_arena, m->value.as.array.len * sizeof(json_str) + 1);
    if (!deny) return hook_error_set(err, "out of memory");
    for (size_t j = 0; j < m->value.as.array.len; j++) {
      if (m->value.as.array.items[j].type != JSON_STRING)
        return hook_error_set(err, "invalid config: `deny` item %zu is not a string", j);
      deny[j] = m->value.as.array.items[j].as.s;
    }
    deny_len = m->value.as.array.len;
  }
  return true;
}

void hook_inspect(const hook_message *message, hook_verdict *verdict) {
  if (message->kind != HOOK_COMMAND) return; // pass
  json_str name = {message->name, message->name_len};
  for (size_t i = 0; i < deny_len; i++) {
    if (json_str_eq(deny[i], name)) {
      hook_reject(verdict, "denied", "command `%.*s` is denied by {{name}}", (int)name.len, name.ptr);
      return;
    }
  }
}
