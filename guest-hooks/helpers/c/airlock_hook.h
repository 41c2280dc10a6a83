// The glue between wit-bindgen's generated C bindings (hook.h, hook.c) and a C hook: a hook
// defines `hook_configure` and `hook_inspect` on plain C types, and this file implements the
// exports of the `airlock:hook/policy@0.1.0` interface with them, frees what the host passed in,
// and gives the verdict helpers. Include it in exactly one .c file (the hook's).
#ifndef AIRLOCK_HOOK_H
#define AIRLOCK_HOOK_H

#include <stdarg.h>

#include "airlock_json.h"
#include "hook.h"

typedef enum { HOOK_COMMAND, HOOK_EVENT, HOOK_CHANNEL } hook_kind;

// One message, as C sees it. Strings are UTF-8, not NUL-terminated.
typedef struct {
  uint64_t id;
  hook_kind kind;
  const char *name;
  size_t name_len;
  const char *window, *webview, *origin;
  size_t window_len, webview_len, origin_len;
  bool body_is_json;  // else raw bytes
  const char *body;
  size_t body_len;
} hook_message;

typedef airlock_hook_types_verdict_t hook_verdict;
typedef hook_string_t hook_error;

// Defined by the hook. `configure` returns false with `err` set (hook_error_set) to refuse the
// config; `inspect` leaves `verdict` as pass, or calls hook_reject / hook_replace_json_body.
bool hook_configure(const char *config, size_t len, hook_error *err);
void hook_inspect(const hook_message *message, hook_verdict *verdict);

// A tiny printf: %s, %.*s, %zu and %% only. (wasi-libc's printf family would make the hook
// import WASI's fd_write, fd_seek and fd_close, through stdio's exit handling.)
static char *hook_vformat(size_t *len, const char *fmt, va_list args) {
  json_buf b = {0};
  for (const char *c = fmt; *c; c++) {
    if (*c != '%') {
      json_put(&b, c, 1);
      continue;
    }
    c++;
    if (*c == '%') {
      json_put(&b, "%", 1);
    } else if (*c == 's') {
      const char *s = va_arg(args, const char *);
      json_put(&b, s, strlen(s));
    } else if (c[0] == '.' && c[1] == '*' && c[2] == 's') {
      int n = va_arg(args, int);
      const char *s = va_arg(args, const char *);
      json_put(&b, s, n > 0 ? (size_t)n : 0);
      c += 2;
    } else if (c[0] == 'z' && c[1] == 'u') {
      json_put_u64(&b, va_arg(args, size_t));
      c++;
    } else {
      break;
    }
  }
  json_put(&b, "", 0);
  if (b.failed) {
    free(b.ptr);
    *len = 0;
    return NULL;
  }
  *len = b.len;
  return b.ptr;
}

// Sets the error message (printf-style); returns false, for `return hook_error_set(...)`.
__attribute__((format(printf, 2, 3))) static bool hook_error_set(hook_error *err, const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  free(err->ptr);
  err->ptr = (uint8_t *)hook_vformat(&err->len, fmt, args);
  va_end(args);
  return false;
}

// A `reject` verdict with this code and a printf-style reason.
__attribute__((format(printf, 3, 4))) static void hook_reject(hook_verdict *verdict, const char *code,
                                                              const char *fmt, ...) {
  va_list args;
  va_start(args, fmt);
  size_t code_len = strlen(code), reason_len;
  char *code_copy = malloc(code_len + 1);
  char *reason = hook_vformat(&reason_len, fmt, args);
  va_end(args);
  if (!code_copy) __builtin_trap(); // fail closed: the host turns a trap into a rejection
  memcpy(code_copy, code, code_len);
  verdict->tag = AIRLOCK_HOOK_TYPES_VERDICT_REJECT;
  verdict->val.reject.code = (hook_string_t){(uint8_t *)code_copy, code_len};
  verdict->val.reject.reason = (hook_string_t){(uint8_t *)reason, reason ? reason_len : 0};
}

// A `replace` verdict that swaps the body for this JSON text (malloc'd; the bindings free it
// after the host has read it) and keeps everything else.
static void hook_replace_json_body(hook_verdict *verdict, char *json, size_t len) {
  verdict->tag = AIRLOCK_HOOK_TYPES_VERDICT_REPLACE;
  airlock_hook_types_replacement_t *r = &verdict->val.replace;
  memset(r, 0, sizeof *r);
  r->body.is_some = true;
  r->body.val.tag = AIRLOCK_HOOK_TYPES_BODY_JSON;
  r->body.val.val.json = (hook_string_t){(uint8_t *)json, len};
}

static bool json_eq(json_str s, const char *word) {
  size_t n = strlen(word);
  return s.len == n && memcmp(s.ptr, word, n) == 0;
}

static bool json_str_eq(json_str a, json_str b) {
  return a.len == b.len && memcmp(a.ptr, b.ptr, a.len) == 0;
}

static bool hook_eq_ignore_ascii_case(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
    if (x >= 'A' && x <= 'Z') x += 32;
    if (y >= 'A' && y <= 'Z') y += 32;
    if (x != y) return false;
  }
  return true;
}

// The code point at *i in valid UTF-8 text; moves *i past it.
static uint32_t hook_utf8_next(const char *text, size_t len, size_t *i) {
  const unsigned char *s = (const unsigned char *)text + *i;
  size_t left = len - *i;
  if (s[0] < 0x80 || left < 2) return (*i)++, s[0];
  if (s[0] < 0xE0) return *i += 2, ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
  if (s[0] < 0xF0 || left < 4) {
    *i += 3;
    return left < 3 ? 0xFFFD : ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
  }
  *i += 4;
  return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) |
         (s[3] & 0x3F);
}

// Whether the text is only Unicode White_Space (what Rust's str::trim removes).
static bool hook_is_blank(const char *text, size_t len) {
  for (size_t i = 0; i < len;) {
    uint32_t c = hook_utf8_next(text, len, &i);
    bool space = (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
                 (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
                 c == 0x205F || c == 0x3000;
    if (!space) return false;
  }
  return true;
}

// Reads a hook's JSON config the way the Rust hooks' `parse_config` does: blank means `{}`. The
// text is copied into the arena, so what `out` points to lives as long as the arena.
static bool hook_parse_config(const char *text, size_t len, json_arena *arena, json_value *out,
                              hook_error *err) {
  if (hook_is_blank(text, len)) text = "{}", len = 2;
  char *copy = json_alloc(arena, len + 1);
  if (!copy) return hook_error_set(err, "out of memory");
  memcpy(copy, text, len);
  const char *problem;
  if (!json_parse(copy, len, arena, out, &problem)) return hook_error_set(err, "invalid config: %s", problem);
  return true;
}

// What hook_config_fields calls for each member of a config: `field` is the index of its name in
// the list of known fields. Returns false with `err` set to refuse the config.
typedef bool (*hook_config_field)(size_t field, const json_value *value, hook_error *err);

// Reads a parsed config as serde reads a struct whose fields are `known` (NULL-terminated, at most
// 64): calls `set` for each member in order; a config that is not an object (an array, serde's
// sequence form of a struct, included), an unknown field and a repeated one are refused with an
// error naming them.
static bool hook_config_fields(const json_value *config, const char *const *known, hook_config_field set,
                               hook_error *err) {
  if (config->type != JSON_OBJECT) return hook_error_set(err, "invalid config: expected a JSON object");
  size_t count = 0;
  while (known[count]) count++;
  uint64_t seen = 0;
  for (size_t i = 0; i < config->as.object.len; i++) {
    const json_member *m = &config->as.object.members[i];
    size_t field = 0;
    while (field < count && !json_eq(m->key, known[field])) field++;
    if (field == count) {
      // serde's list of expected fields: "`a`", "`a` or `b`", "one of `a`, `b`, `c`".
      json_buf expected = {0};
      if (count > 2) json_put(&expected, "one of ", 7);
      for (size_t k = 0; k < count; k++) {
        if (k) json_put(&expected, count > 2 ? ", " : " or ", count > 2 ? 2 : 4);
        json_put(&expected, "`", 1);
        json_put(&expected, known[k], strlen(known[k]));
        json_put(&expected, "`", 1);
      }
      json_put(&expected, "", 1);
      if (expected.failed) return hook_error_set(err, "out of memory");
      hook_error_set(err, "invalid config: unknown field `%.*s`, expected %s", (int)m->key.len, m->key.ptr,
                     expected.ptr);
      free(expected.ptr);
      return false;
    }
    if (seen & (UINT64_C(1) << field)) return hook_error_set(err, "invalid config: duplicate field `%s`", known[field]);
    seen |= UINT64_C(1) << field;
    if (!set(field, &m->value, err)) return false;
  }
  return true;
}

// A config field that must be a list of strings (`name` names it in errors): its items, in
// `arena`, and how many there are.
static bool hook_config_strings(const json_value *value, const char *name, json_arena *arena, json_str **items,
                                size_t *len, hook_error *err) {
  if (value->type != JSON_ARRAY) return hook_error_set(err, "invalid config: `%s` must be a list of strings", name);
  json_str *out = json_alloc(arena, value->as.array.len * sizeof(json_str) + 1);
  if (!out) return hook_error_set(err, "out of memory");
  for (size_t i = 0; i < value->as.array.len; i++) {
    if (value->as.array.items[i].type != JSON_STRING)
      return hook_error_set(err, "invalid config: `%s` item %zu is not a string", name, i);
    out[i] = value->as.array.items[i].as.s;
  }
  *items = out;
  *len = value->as.array.len;
  return true;
}

// ---- the exports --------------------------------------------------------------------------------

// hook.c links in the component-type object wit-bindgen writes (the world, in a custom section)
// through this symbol. It is not used: `airlock component` embeds the airlock:hook world into a
// module that carries none, so the bindings need no binary file.
void __component_type_object_force_link_hook(void) {}

bool exports_airlock_hook_policy_configure(hook_string_t *config, hook_string_t *err) {
  err->ptr = NULL;
  err->len = 0;
  bool ok = hook_configure((const char *)config->ptr, config->len, err);
  hook_string_free(config);
  if (!ok && !err->ptr) hook_error_set(err, "invalid config");
  return ok;
}

void exports_airlock_hook_policy_inspect(exports_airlock_hook_policy_message_t *message,
                                         exports_airlock_hook_policy_verdict_t *verdict) {
  hook_message m = {
      .id = message->id,
      .kind = message->kind == AIRLOCK_HOOK_TYPES_KIND_COMMAND ? HOOK_COMMAND
              : message->kind == AIRLOCK_HOOK_TYPES_KIND_EVENT ? HOOK_EVENT
                                                               : HOOK_CHANNEL,
      .name = (const char *)message->name.ptr,
      .name_len = message->name.len,
      .window = (const char *)message->source.window.ptr,
      .window_len = message->source.window.len,
      .webview = (const char *)message->source.webview.ptr,
      .webview_len = message->source.webview.len,
      .origin = (const char *)message->source.origin.ptr,
      .origin_len = message->source.origin.len,
      .body_is_json = message->body.tag == AIRLOCK_HOOK_TYPES_BODY_JSON,
  };
  if (m.body_is_json) {
    m.body = (const char *)message->body.val.json.ptr;
    m.body_len = message->body.val.json.len;
  } else {
    m.body = (const char *)message->body.val.bytes.ptr;
    m.body_len = message->body.val.bytes.len;
  }
  memset(verdict, 0, sizeof *verdict);
  verdict->tag = AIRLOCK_HOOK_TYPES_VERDICT_PASS;
  hook_inspect(&m, verdict);
  exports_airlock_hook_policy_message_free(message);
}

#endif
