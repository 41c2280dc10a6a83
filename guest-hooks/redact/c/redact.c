// redact in C: the same policy, config and verdicts as guest-hooks/redact/rust (see the header
// comment of its src/lib.rs for the rules).
//
// Config (all optional): {"fields": ["password", "token", "secret"], "case_sensitive": false}
// (an object: an array is refused); an unknown or repeated field or a wrong
// type is refused with an error naming it. For an event with a JSON body, every object member
// whose key is one of `fields` (ASCII case ignored unless `case_sensitive`) is removed at any
// depth, and the rest is forwarded as `replace`, written exactly as the Rust hook's serde_json
// (with `preserve_order` and `arbitrary_precision`) writes a `Value`: compact, key order kept,
// each duplicate key once at its first place with its last value, numbers as written but for
// `E` -> `e` and an explicit exponent sign. An event with nothing to remove passes; so do
// commands, channels and bytes bodies. A JSON body that serde_json would not read into a `Value`
// (a lone surrogate in a `\u` escape) is rejected (`redact-failed`).
#include "airlock_hook.h"

#define CODE "redact-failed"

static json_str *fields;
static size_t fields_len;
static bool case_sensitive;
static json_arena config_arena;
static bool configured;

static const char *DEFAULT_FIELDS[] = {"password", "token", "secret"};

static bool set_default(void) {
  json_arena_free(&config_arena);
  fields = json_alloc(&config_arena, 3 * sizeof(json_str));
  if (!fields) return false;
  for (int i = 0; i < 3; i++) fields[i] = (json_str){DEFAULT_FIELDS[i], strlen(DEFAULT_FIELDS[i])};
  fields_len = 3;
  case_sensitive = false;
  configured = true;
  return true;
}

static bool set_case_sensitive(const json_value *v, hook_error *err) {
  if (v->type != JSON_BOOL) return hook_error_set(err, "invalid config: `case_sensitive` must be a boolean");
  case_sensitive = v->as.b;
  return true;
}

static const char *const FIELDS[] = {"fields", "case_sensitive", NULL};

static bool set_field(size_t field, const json_value *v, hook_error *err) {
  if (field == 0) return hook_config_strings(v, "fields", &config_arena, &fields, &fields_len, err);
  return set_case_sensitive(v, err);
}

bool hook_configure(const char *text, size_t len, hook_error *err) {
  if (!set_default()) return hook_error_set(err, "out of memory");
  json_value v;
  if (!hook_parse_config(text, len, &config_arena, &v, err)) return false;
  return hook_config_fields(&v, FIELDS, set_field, err);
}

static bool matches(json_str key) {
  for (size_t i = 0; i < fields_len; i++) {
    if (fields[i].len != key.len) continue;
    if (case_sensitive ? memcmp(fields[i].ptr, key.ptr, key.len) == 0
                       : hook_eq_ignore_ascii_case(fields[i].ptr, key.ptr, key.len))
      return true;
  }
  return false;
}

// How many members a serde_json `Value` of this document would lose.
static size_t count_removed(const json_value *v) {
  size_t removed = 0;
  if (v->type == JSON_OBJECT) {
    for (size_t i = 0; i < v->as.object.kept_len; i++) {
      const json_member *m = v->as.object.kept[i];
      removed += matches(m->key) ? 1 : count_removed(&m->value);
    }
  } else if (v->type == JSON_ARRAY) {
    for (size_t i = 0; i < v->as.array.len; i++) removed += count_removed(&v->as.array.items[i]);
  }
  return removed;
}

static void write_value(json_buf *b, const json_value *v) {
  switch (v->type) {
  case JSON_NULL: json_put(b, "null", 4); break;
  case JSON_BOOL: v->as.b ? json_put(b, "true", 4) : json_put(b, "false", 5); break;
  case JSON_STRING: json_put_string(b, v->as.s.ptr, v->as.s.len); break;
  case JSON_ARRAY:
    json_put(b, "[", 1);
    for (size_t i = 0; i < v->as.array.len; i++) {
      if (i) json_put(b, ",", 1);
      write_value(b, &v->as.array.items[i]);
    }
    json_put(b, "]", 1);
    break;
  case JSON_OBJECT: {
    json_put(b, "{", 1);
    bool first = true;
    for (size_t i = 0; i < v->as.object.kept_len; i++) {
      const json_member *m = v->as.object.kept[i];
      if (matches(m->key)) continue;
      if (!first) json_put(b, ",", 1);
      first = false;
      json_put_string(b, m->key.ptr, m->key.len);
      json_put(b, ":", 1);
      write_value(b, &m->value);
    }
    json_put(b, "}", 1);
    break;
  }
  case JSON_NUMBER: json_put(b, v->as.s.ptr, v->as.s.len); break;
  }
}

void hook_inspect(const hook_message *msg, hook_verdict *verdict) {
  if (!configured && !set_default()) {
    hook_reject(verdict, CODE, "out of memory");
    return;
  }
  if (msg->kind != HOOK_EVENT || !msg->body_is_json) return;
  json_arena arena = {0};
  json_value doc;
  const char *problem;
  if (!json_parse(msg->body, msg->body_len, &arena, &doc, &problem)) {
    hook_reject(verdict, CODE, "cannot parse the event's JSON: %s", problem);
  } else if (count_removed(&doc) > 0) {
    json_buf out = {0};
    write_value(&out, &doc);
    if (out.failed) {
      free(out.ptr);
      hook_reject(verdict, CODE, "cannot write the redacted JSON: out of memory");
    } else {
      hook_replace_json_body(verdict, out.ptr, out.len);
    }
  }
  json_arena_free(&arena);
}
