// path-guard in C: the same policy, config, code and verdicts as guest-hooks/path-guard/rust
// (see the header comment of its src/lib.rs for the rules).
//
// Config (all optional): {"commands": ["fs_read", "fs_write", "fs_list"], "root": "/app/data"}
// (an object: an array is refused); an unknown or repeated field, a wrong type, or
// a root that is not an absolute POSIX path without `..` is refused with an error naming it.
// For a listed command, the JSON args must hold exactly one `path` key with a string value that,
// read as a POSIX path (relative to the root), stays inside the root at every step; everything
// else a listed command sends is rejected with code `path-escape`. Other commands, events and
// channels pass untouched.
#include "airlock_hook.h"

#define CODE "path-escape"

typedef struct {
  json_str *commands;
  size_t commands_len;
  json_str *root; // segments; none for `/`
  size_t root_len;
  json_arena arena; // holds all of the above
} policy_t;

static policy_t policy;
static bool configured;

static const char *DEFAULT_COMMANDS[] = {"fs_read", "fs_write", "fs_list"};

static bool set_default(void) {
  json_arena_free(&policy.arena);
  policy.commands = json_alloc(&policy.arena, 3 * sizeof(json_str));
  policy.root = json_alloc(&policy.arena, 2 * sizeof(json_str));
  if (!policy.commands || !policy.root) return false;
  for (int i = 0; i < 3; i++)
    policy.commands[i] = (json_str){DEFAULT_COMMANDS[i], strlen(DEFAULT_COMMANDS[i])};
  policy.commands_len = 3;
  policy.root[0] = (json_str){"app", 3};
  policy.root[1] = (json_str){"data", 4};
  policy.root_len = 2;
  configured = true;
  return true;
}

// ---- configure ----------------------------------------------------------------------------------

static bool set_root(const json_value *v, hook_error *err) {
  if (v->type != JSON_STRING) return hook_error_set(err, "invalid config: `root` must be a string");
  json_str root = v->as.s;
  bool bad = root.len == 0 || root.ptr[0] != '/';
  for (size_t i = 0; i < root.len && !bad; i++) {
    unsigned char c = (unsigned char)root.ptr[i];
    // Backslash, C0 controls, DEL, and C1 controls (U+0080..U+009F: C2 80..C2 9F).
    bad = c == '\\' || c < 0x20 || c == 0x7F ||
          (c == 0xC2 && i + 1 < root.len && (unsigned char)root.ptr[i + 1] <= 0x9F);
  }
  if (bad) return hook_error_set(err, "root \"%.*s\" must be an absolute POSIX path", (int)root.len, root.ptr);
  policy.root = json_alloc(&policy.arena, (root.len / 2 + 1) * sizeof(json_str));
  if (!policy.root) return hook_error_set(err, "out of memory");
  policy.root_len = 0;
  size_t start = 0;
  for (size_t i = 0; i <= root.len; i++) {
    if (i < root.len && root.ptr[i] != '/') continue;
    json_str s = {root.ptr + start, i - start};
    start = i + 1;
    if (s.len == 0 || (s.len == 1 && s.ptr[0] == '.')) continue;
    if (s.len == 2 && s.ptr[0] == '.' && s.ptr[1] == '.')
      return hook_error_set(err, "root \"%.*s\" must not contain `..`", (int)root.len, root.ptr);
    policy.root[policy.root_len++] = s;
  }
  return true;
}

static const char *const FIELDS[] = {"commands", "root", NULL};

static bool set_field(size_t field, const json_value *v, hook_error *err) {
  if (field == 0) return hook_config_strings(v, "commands", &policy.arena, &policy.commands, &policy.commands_len, err);
  return set_root(v, err);
}

bool hook_configure(const char *text, size_t len, hook_error *err) {
  if (!set_default()) return hook_error_set(err, "out of memory");
  json_value v;
  if (!hook_parse_config(text, len, &policy.arena, &v, err)) return false;
  return hook_config_fields(&v, FIELDS, set_field, err);
}

// ---- the path check -------------------------------------------------------------------------------

static bool is_lookalike(uint32_t c) {
  static const uint32_t list[] = {0x2044, 0x2215, 0x2571, 0x29F8, 0xFF0F, 0x1735, 0x0337, 0x0338,
                                  0x2216, 0x29F5, 0x29F9, 0xFE68, 0xFF3C, 0x2024, 0x2025, 0x2026,
                                  0xFE52, 0xFF0E, 0x3002, 0xFF61, 0x0701, 0x0702, 0xA4F8, 0x06D4};
  for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
    if (list[i] == c) return true;
  return false;
}

static bool is_invisible(uint32_t c) {
  return c == 0x00AD || c == 0x034F || c == 0x061C || c == 0x115F || c == 0x1160 || c == 0x17B4 ||
         c == 0x17B5 || (c >= 0x180B && c <= 0x180F) || (c >= 0x200B && c <= 0x200F) ||
         (c >= 0x2028 && c <= 0x202E) || (c >= 0x2060 && c <= 0x206F) || c == 0x3164 ||
         (c >= 0xFE00 && c <= 0xFE0F) || c == 0xFEFF || c == 0xFFA0 || (c >= 0xFFF9 && c <= 0xFFFB) ||
         (c >= 0x1D173 && c <= 0x1D17A) || (c >= 0xE0000 && c <= 0xE0FFF);
}

static bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool all_hex(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!is_hex(p[i])) return false;
  return true;
}

static bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// A drive letter (`C:`), a URL (`scheme://`), or a `file:` reference at the start.
static bool has_scheme_or_drive(const char *p, size_t n) {
  const char *colon = memchr(p, ':', n);
  if (!colon) return false;
  size_t plen = (size_t)(colon - p);
  if (plen == 0 || !is_alpha(p[0])) return false;
  for (size_t i = 0; i < plen; i++)
    if (!is_alpha(p[i]) && !(p[i] >= '0' && p[i] <= '9') && p[i] != '+' && p[i] != '-' && p[i] != '.')
      return false;
  const char *rest = colon + 1;
  size_t rlen = n - plen - 1;
  bool file = plen == 4 && (p[0] | 32) == 'f' && (p[1] | 32) == 'i' && (p[2] | 32) == 'l' && (p[3] | 32) == 'e';
  return plen == 1 || (rlen >= 2 && rest[0] == '/' && rest[1] == '/') || file;
}

static bool starts_with_root(const json_str *at, size_t at_len) {
  if (at_len < policy.root_len) return false;
  for (size_t i = 0; i < policy.root_len; i++)
    if (!json_str_eq(at[i], policy.root[i])) return false;
  return true;
}

// Whether the path stays inside the root; `why` says what is wrong when it does not.
static bool check(const char *p, size_t n, const char **why) {
  for (size_t i = 0; i < n;) {
    uint32_t c = hook_utf8_next(p, n, &i);
    if (c < 0x20 || (c >= 0x7F && c <= 0x9F)) return *why = "has a control character", false;
    if (c == '\\') return *why = "has a backslash", false;
    if (is_lookalike(c)) return *why = "has a lookalike of `/`, `\\` or `.`", false;
    if (is_invisible(c)) return *why = "has an invisible formatting character", false;
  }
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '%') continue;
    if ((n >= i + 3 && all_hex(p + i + 1, 2)) ||
        (i + 1 < n && (p[i + 1] == 'u' || p[i + 1] == 'U') && n >= i + 6 && all_hex(p + i + 2, 4)))
      return *why = "has a percent-encoded byte", false;
  }
  if (n > 0 && p[0] == '~') return *why = "starts with `~`, a home-directory reference", false;
  if (has_scheme_or_drive(p, n)) return *why = "starts with a drive letter or URL scheme", false;

  bool absolute = n > 0 && p[0] == '/';
  // At most one segment per two bytes, plus the root's.
  json_str *at = malloc((n / 2 + 1 + policy.root_len) * sizeof(json_str));
  if (!at) return *why = "could not be checked (out of memory)", false;
  size_t depth = 0;
  if (!absolute)
    for (; depth < policy.root_len; depth++) at[depth] = policy.root[depth];
  bool was_inside = !absolute, ok = true;
  size_t start = 0;
  for (size_t i = 0; i <= n && ok; i++) {
    if (i < n && p[i] != '/') continue;
    const char *s = p + start;
    size_t len = i - start;
    start = i + 1;
    if (len == 0 || (len == 1 && s[0] == '.')) continue;
    bool dots_and_spaces = true;
    for (size_t j = 0; j < len; j++) dots_and_spaces &= s[j] == '.' || s[j] == ' ';
    if (len == 2 && s[0] == '.' && s[1] == '.') {
      if (depth == 0) ok = false, *why = "climbs above `/`";
      else depth--;
    } else if (dots_and_spaces) {
      ok = false, *why = "has a segment made only of dots and spaces";
    } else if (len >= 3 && s[0] == '.' && s[1] == '.' && (s[2] == ';' || s[2] == '?' || s[2] == '#')) {
      ok = false, *why = "has a segment read as `..` by some servers";
    } else {
      at[depth++] = (json_str){s, len};
    }
    if (!ok) break;
    bool inside = starts_with_root(at, depth);
    if (was_inside && !inside) ok = false, *why = "walks out of the root";
    was_inside |= inside;
  }
  if (ok && !starts_with_root(at, depth)) ok = false, *why = "resolves to a place outside the root";
  free(at);
  return ok;
}

// ---- inspect ----------------------------------------------------------------------------------------

void hook_inspect(const hook_message *msg, hook_verdict *verdict) {
  if (!configured && !set_default()) {
    hook_reject(verdict, CODE, "out of memory");
    return;
  }
  if (msg->kind != HOOK_COMMAND) return;
  bool listed = false;
  for (size_t i = 0; i < policy.commands_len && !listed; i++)
    listed = json_str_eq(policy.commands[i], (json_str){msg->name, msg->name_len});
  if (!listed) return;
  int nl = (int)msg->name_len;
  if (!msg->body_is_json) {
    hook_reject(verdict, CODE, "`%.*s` takes JSON args with a string `path`, got bytes", nl, msg->name);
    return;
  }
  json_arena arena = {0};
  json_parser ps;
  json_parser_init(&ps, msg->body, msg->body_len, &arena);
  json_value path;
  bool found = false, ok = true;
  const char *problem = NULL;
  json_ws(&ps);
  if (json_peek(&ps) != '{') {
    ok = false, problem = "expected a JSON object";
  } else {
    ps.p++;
    ps.remaining_depth--;
    json_ws(&ps);
    if (json_peek(&ps) == '}') {
      ps.p++;
    } else {
      for (;;) {
        json_ws(&ps);
        json_str key;
        if (json_peek(&ps) != '"') { ok = json_fail(&ps, "key must be a string"); break; }
        if (!(ok = json_string(&ps, &key))) break;
        json_ws(&ps);
        if (json_peek(&ps) != ':') { ok = json_fail(&ps, "expected `:`"); break; }
        ps.p++;
        if (!json_eq(key, "path")) {
          if (!(ok = json_skip(&ps))) break;
        } else if (found) {
          ok = json_fail(&ps, "duplicate `path` key");
          break;
        } else {
          found = true;
          if (!(ok = json_value_in(&ps, &path))) break;
        }
        json_ws(&ps);
        int c = json_peek(&ps);
        if (c == ',') { ps.p++; continue; }
        if (c == '}') { ps.p++; break; }
        ok = json_fail(&ps, "expected `,` or `}`");
        break;
      }
    }
    if (ok) {
      json_ws(&ps);
      if (ps.p != ps.end) ok = json_fail(&ps, "trailing characters");
    }
    if (!ok) problem = ps.error;
  }
  if (!ok) {
    hook_reject(verdict, CODE, "args of `%.*s`: %s", nl, msg->name, problem);
  } else if (!found) {
    hook_reject(verdict, CODE, "`%.*s` needs a string `path` argument", nl, msg->name);
  } else if (path.type != JSON_STRING) {
    hook_reject(verdict, CODE, "`path` of `%.*s` must be a string", nl, msg->name);
  } else {
    const char *why = NULL;
    if (!check(path.as.s.ptr, path.as.s.len, &why))
      hook_reject(verdict, CODE, "path \"%.*s\" %s", (int)path.as.s.len, path.as.s.ptr, why);
  }
  json_arena_free(&arena);
}
