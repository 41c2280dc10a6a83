// A small JSON reader and writer for Airlock's C hooks, written to decide exactly as the Rust
// hooks' serde_json 1.0 does with the features they are built with (`preserve_order` and
// `arbitrary_precision`, unified across the guest-hooks workspace):
// - strings: the escapes of RFC 8259, `\u` pairs joined, a lone surrogate refused; raw control
//   characters refused; the text is assumed to be UTF-8 (hooks receive WIT strings);
// - numbers: checked for syntax and kept as written, except that `E` becomes `e` and an unsigned
//   exponent gets a `+` (`1E5` -> `1e+5`), as serde_json's arbitrary-precision numbers do;
// - nesting: 127 levels at most (serde_json's recursion limit of 128);
// - objects keep every member in order, duplicates included (`members`); `kept` lists the members
//   a serde_json `Value` keeps: each key once, at its first place, with its last value.
// `json_skip` checks a value the way serde's `IgnoredAny` does (syntax only: a lone surrogate
// passes). Everything is allocated in a `json_arena`, freed at once.
#ifndef AIRLOCK_JSON_H
#define AIRLOCK_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  const char *ptr;
  size_t len;
} json_str;

typedef enum {
  JSON_NULL,
  JSON_BOOL,
  JSON_NUMBER, // as.s: the number's text
  JSON_STRING,
  JSON_ARRAY,
  JSON_OBJECT
} json_type;

typedef struct json_value json_value;
typedef struct json_member json_member;

struct json_value {
  json_type type;
  union {
    bool b;
    json_str s;
    struct {
      json_value *items;
      size_t len;
    } array;
    struct {
      json_member *members;
      size_t len;
      json_member **kept; // the members a serde_json Value keeps (see above)
      size_t kept_len;
    } object;
  } as;
};

struct json_member {
  json_str key;
  json_value value;
};

// ---- arena ----------------------------------------------------------------------------------

typedef struct json_chunk {
  struct json_chunk *next;
  size_t used, cap;
  _Alignas(16) unsigned char data[];
} json_chunk;

typedef struct {
  json_chunk *head;
} json_arena;

static void *json_alloc(json_arena *arena, size_t size) {
  size = (size + 15) & ~(size_t)15;
  json_chunk *chunk = arena->head;
  if (!chunk || chunk->cap - chunk->used < size) {
    size_t cap = size > 65536 ? size : 65536;
    chunk = malloc(sizeof(json_chunk) + cap);
    if (!chunk) return NULL;
    chunk->next = arena->head;
    chunk->used = 0;
    chunk->cap = cap;
    arena->head = chunk;
  }
  void *at = chunk->data + chunk->used;
  chunk->used += size;
  return at;
}

static void json_arena_free(json_arena *arena) {
  json_chunk *chunk = arena->head;
  while (chunk) {
    json_chunk *next = chunk->next;
    free(chunk);
    chunk = next;
  }
  arena->head = NULL;
}

// ---- reader ---------------------------------------------------------------------------------

typedef struct {
  const unsigned char *p, *end;
  int remaining_depth;
  json_arena *arena;
  const char *error; // set on failure: what went wrong
} json_parser;

static void json_parser_init(json_parser *ps, const char *text, size_t len, json_arena *arena) {
  ps->p = (const unsigned char *)text;
  ps->end = ps->p + len;
  ps->remaining_depth = 128;
  ps->arena = arena;
  ps->error = NULL;
}

static bool json_fail(json_parser *ps, const char *why) {
  if (!ps->error) ps->error = why;
  return false;
}

// Hot loops work on local pointers: through `ps->p`, every byte read (unsigned char may alias
// anything) would reload and store the position.
static void json_ws(json_parser *ps) {
  const unsigned char *p = ps->p, *end = ps->end;
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
  ps->p = p;
}

static int json_peek(json_parser *ps) { return ps->p < ps->end ? *ps->p : -1; }

static int json_hex4(json_parser *ps) {
  if (ps->end - ps->p < 4) return -1;
  int n = 0;
  for (int i = 0; i < 4; i++) {
    int c = ps->p[i], d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return -1;
    n = n * 16 + d;
  }
  ps->p += 4;
  return n;
}

static size_t json_put_utf8(char *out, uint32_t c) {
  if (c < 0x80) {
    out[0] = (char)c;
    return 1;
  }
  if (c < 0x800) {
    out[0] = (char)(0xC0 | (c >> 6));
    out[1] = (char)(0x80 | (c & 0x3F));
    return 2;
  }
  if (c < 0x10000) {
    out[0] = (char)(0xE0 | (c >> 12));
    out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[2] = (char)(0x80 | (c & 0x3F));
    return 3;
  }
  out[0] = (char)(0xF0 | (c >> 18));
  out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
  out[3] = (char)(0x80 | (c & 0x3F));
  return 4;
}

// The first byte in [p, end) that a string cannot hold as is: `"`, `\\` or a control
// character. Eight bytes at a time (SWAR): a byte is flagged when it equals 0x22 or 0x5C or is
// below 0x20; a false flag can only follow a true one, and the byte loop settles it.
static const unsigned char *json_plain_end(const unsigned char *p, const unsigned char *end) {
  const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
  while (end - p >= 8) {
    uint64_t v;
    memcpy(&v, p, 8);
    uint64_t quote = v ^ (ones * 0x22), backslash = v ^ (ones * 0x5C);
    uint64_t flags = ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) | ((v - ones * 0x20) & ~v);
    if (flags & highs) break;
    p += 8;
  }
  while (p < end && *p != '"' && *p != '\\' && *p >= 0x20) p++;
  return p;
}

// A string (the parser is at its opening quote), decoded like serde_json decodes into a Rust
// String: escapes resolved, surrogates paired or refused.
static bool json_string(json_parser *ps, json_str *out) {
  ps->p++; // "
  const unsigned char *start = ps->p, *q = ps->p, *end = ps->end;
  bool escaped = false;
  for (;;) {
    q = json_plain_end(q, end);
    if (q >= end || *q == '"') break;
    if (*q < 0x20) return json_fail(ps, "control character while parsing a string");
    if (*q == '\\') {
      escaped = true;
      q++;
    }
    q++;
  }
  if (q >= end) return json_fail(ps, "EOF while parsing a string");
  if (!escaped) {
    out->ptr = (const char *)start;
    out->len = (size_t)(q - start);
    ps->p = q + 1;
    return true;
  }
  char *buf = json_alloc(ps->arena, (size_t)(q - start));
  if (!buf) return json_fail(ps, "out of memory");
  size_t n = 0;
  while (*ps->p != '"') {
    unsigned char c = *ps->p++;
    if (c != '\\') {
      buf[n++] = (char)c;
      continue;
    }
    c = *ps->p++;
    switch (c) {
    case '"': buf[n++] = '"'; break;
    case '\\': buf[n++] = '\\'; break;
    case '/': buf[n++] = '/'; break;
    case 'b': buf[n++] = '\b'; break;
    case 'f': buf[n++] = '\f'; break;
    case 'n': buf[n++] = '\n'; break;
    case 'r': buf[n++] = '\r'; break;
    case 't': buf[n++] = '\t'; break;
    case 'u': {
      int u = json_hex4(ps);
      if (u < 0) return json_fail(ps, "invalid \\u escape");
      if (u >= 0xDC00 && u <= 0xDFFF) return json_fail(ps, "lone surrogate in a \\u escape");
      if (u >= 0xD800 && u <= 0xDBFF) {
        if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
          return json_fail(ps, "unexpected end of a \\u surrogate pair");
        ps->p += 2;
        int low = json_hex4(ps);
        if (low < 0) return json_fail(ps, "invalid \\u escape");
        if (low < 0xDC00 || low > 0xDFFF) return json_fail(ps, "lone surrogate in a \\u escape");
        u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00);
      }
      n += json_put_utf8(buf + n, (uint32_t)u);
      break;
    }
    default:
      return json_fail(ps, "invalid escape");
    }
  }
  ps->p++;
  out->ptr = buf;
  out->len = n;
  return true;
}

#define JSON_DIGIT(ps) ((ps)->p < (ps)->end && *(ps)->p >= '0' && *(ps)->p <= '9')

// Checks a number's syntax and moves past it; sets *normalize when its text has an `E` or an
// exponent without a sign.
static bool json_scan_number(json_parser *ps, bool *normalize) {
  *normalize = false;
  if (json_peek(ps) == '-') ps->p++;
  if (ps->p >= ps->end) return json_fail(ps, "EOF while parsing a value");
  if (!JSON_DIGIT(ps)) return json_fail(ps, "invalid number");
  if (*ps->p++ == '0') {
    if (JSON_DIGIT(ps)) return json_fail(ps, "invalid number");
  } else {
    while (JSON_DIGIT(ps)) ps->p++;
  }
  if (json_peek(ps) == '.') {
    ps->p++;
    if (!JSON_DIGIT(ps)) return json_fail(ps, "invalid number");
    while (JSON_DIGIT(ps)) ps->p++;
  }
  if (json_peek(ps) == 'e' || json_peek(ps) == 'E') {
    *normalize = *ps->p == 'E';
    ps->p++;
    if (json_peek(ps) == '+' || json_peek(ps) == '-') ps->p++;
    else *normalize = true;
    if (!JSON_DIGIT(ps)) return json_fail(ps, "invalid number");
    while (JSON_DIGIT(ps)) ps->p++;
  }
  return true;
}

static bool json_number(json_parser *ps, json_value *out) {
  const unsigned char *start = ps->p;
  bool normalize;
  if (!json_scan_number(ps, &normalize)) return false;
  out->type = JSON_NUMBER;
  out->as.s.ptr = (const char *)start;
  out->as.s.len = (size_t)(ps->p - start);
  if (normalize) {
    char *text = json_alloc(ps->arena, out->as.s.len + 2);
    if (!text) return json_fail(ps, "out of memory");
    size_t n = 0;
    for (const unsigned char *c = start; c < ps->p; c++) {
      if (*c == 'e' || *c == 'E') {
        text[n++] = 'e';
        if (c[1] != '+' && c[1] != '-') text[n++] = '+';
      } else {
        text[n++] = (char)*c;
      }
    }
    out->as.s.ptr = text;
    out->as.s.len = n;
  }
  return true;
}

static bool json_literal(json_parser *ps, const char *word) {
  size_t n = strlen(word);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
    return json_fail(ps, "expected a value");
  ps->p += n;
  return true;
}

static int json_key_order(const void *a, const void *b) {
  const json_member *x = *(json_member *const *)a, *y = *(json_member *const *)b;
  size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
  int c = memcmp(x->key.ptr, y->key.ptr, n);
  if (c) return c;
  if (x->key.len != y->key.len) return x->key.len < y->key.len ? -1 : 1;
  return x < y ? -1 : x > y; // equal keys: in document order
}

// Growable scratch space for the items of one array or object while it is read.
typedef struct {
  void *ptr;
  size_t len, cap;
} json_vec;

static void *json_vec_push(json_vec *v, size_t size) {
  if (v->len == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 8;
    void *p = realloc(v->ptr, cap * size);
    if (!p) return NULL;
    v->ptr = p;
    v->cap = cap;
  }
  return (char *)v->ptr + size * v->len++;
}

static bool json_value_in(json_parser *ps, json_value *out);

static bool json_array_in(json_parser *ps, json_value *out) {
  json_vec items = {0};
  ps->p++; // [
  json_ws(ps);
  bool ok = true;
  if (json_peek(ps) != ']') {
    for (;;) {
      json_value *item = json_vec_push(&items, sizeof(json_value));
      if (!item) { ok = json_fail(ps, "out of memory"); break; }
      if (!(ok = json_value_in(ps, item))) break;
      json_ws(ps);
      int c = json_peek(ps);
      if (c == ',') { ps->p++; json_ws(ps); continue; }
      if (c == ']') break;
      ok = json_fail(ps, c < 0 ? "EOF while parsing a list" : "expected `,` or `]`");
      break;
    }
  }
  if (ok) {
    ps->p++; // ]
    out->type = JSON_ARRAY;
    out->as.array.len = items.len;
    out->as.array.items = json_alloc(ps->arena, items.len * sizeof(json_value) + 1);
    if (!out->as.array.items) ok = json_fail(ps, "out of memory");
    else if (items.len) memcpy(out->as.array.items, items.ptr, items.len * sizeof(json_value));
  }
  free(items.ptr);
  return ok;
}

static bool json_object_in(json_parser *ps, json_value *out) {
  json_vec members = {0};
  ps->p++; // {
  json_ws(ps);
  bool ok = true;
  if (json_peek(ps) != '}') {
    for (;;) {
      if (json_peek(ps) != '"') {
        ok = json_fail(ps, json_peek(ps) < 0 ? "EOF while parsing an object" : "key must be a string");
        break;
      }
      json_member *m = json_vec_push(&members, sizeof(json_member));
      if (!m) { ok = json_fail(ps, "out of memory"); break; }
      if (!(ok = json_string(ps, &m->key))) break;
      json_ws(ps);
      if (json_peek(ps) != ':') { ok = json_fail(ps, "expected `:`"); break; }
      ps->p++;
      json_ws(ps);
      if (!(ok = json_value_in(ps, &m->value))) break;
      json_ws(ps);
      int c = json_peek(ps);
      if (c == ',') { ps->p++; json_ws(ps); continue; }
      if (c == '}') break;
      ok = json_fail(ps, c < 0 ? "EOF while parsing an object" : "expected `,` or `}`");
      break;
    }
  }
  if (ok) {
    ps->p++; // }
    size_t n = members.len;
    out->type = JSON_OBJECT;
    out->as.object.len = n;
    out->as.object.members = json_alloc(ps->arena, n * sizeof(json_member) + 1);
    out->as.object.kept = json_alloc(ps->arena, n * sizeof(json_member *) + 1);
    if (!out->as.object.members || !out->as.object.kept) {
      ok = json_fail(ps, "out of memory");
    } else {
      json_member *all = out->as.object.members, **sorted = out->as.object.kept;
      if (n) memcpy(all, members.ptr, n * sizeof(json_member));
      for (size_t i = 0; i < n; i++) sorted[i] = &all[i];
      qsort(sorted, n, sizeof(json_member *), json_key_order);
      // Equal keys now sit together in document order. Each key is kept at its first place,
      // with its last value: last_of[first] = last, in a scratch array in document order.
      json_member **last_of = calloc(n + 1, sizeof(json_member *));
      if (!last_of) {
        ok = json_fail(ps, "out of memory");
      } else {
        for (size_t i = 0; i < n;) {
          size_t j = i;
          while (j + 1 < n && sorted[j + 1]->key.len == sorted[i]->key.len &&
                 memcmp(sorted[j + 1]->key.ptr, sorted[i]->key.ptr, sorted[i]->key.len) == 0)
            j++;
          last_of[sorted[i] - all] = sorted[j];
          i = j + 1;
        }
        size_t kept = 0;
        for (size_t i = 0; i < n; i++)
          if (last_of[i]) sorted[kept++] = last_of[i];
        out->as.object.kept_len = kept;
        free(last_of);
      }
    }
  }
  free(members.ptr);
  return ok;
}

static bool json_value_in(json_parser *ps, json_value *out) {
  json_ws(ps);
  int c = json_peek(ps);
  switch (c) {
  case -1: return json_fail(ps, "EOF while parsing a value");
  case 'n': out->type = JSON_NULL; return json_literal(ps, "null");
  case 't': out->type = JSON_BOOL; out->as.b = true; return json_literal(ps, "true");
  case 'f': out->type = JSON_BOOL; out->as.b = false; return json_literal(ps, "false");
  case '"': out->type = JSON_STRING; return json_string(ps, &out->as.s);
  case '[':
  case '{': {
    if (--ps->remaining_depth == 0) return json_fail(ps, "recursion limit exceeded");
    bool ok = c == '[' ? json_array_in(ps, out) : json_object_in(ps, out);
    ps->remaining_depth++;
    return ok;
  }
  default:
    if (c == '-' || (c >= '0' && c <= '9')) return json_number(ps, out);
    return json_fail(ps, "expected a value");
  }
}

// Reads one whole document (whitespace around it allowed, nothing else).
static bool json_parse(const char *text, size_t len, json_arena *arena, json_value *out,
                       const char **error) {
  json_parser ps;
  json_parser_init(&ps, text, len, arena);
  bool ok = json_value_in(&ps, out);
  if (ok) {
    json_ws(&ps);
    if (ps.p != ps.end) ok = json_fail(&ps, "trailing characters");
  }
  *error = ps.error;
  return ok;
}

// Checks one value's syntax and skips it, like serde's IgnoredAny.
static bool json_skip(json_parser *ps) {
  json_ws(ps);
  int c = json_peek(ps);
  switch (c) {
  case -1: return json_fail(ps, "EOF while parsing a value");
  case 'n': return json_literal(ps, "null");
  case 't': return json_literal(ps, "true");
  case 'f': return json_literal(ps, "false");
  case '"':
    ps->p++;
    for (;;) {
      ps->p = json_plain_end(ps->p, ps->end);
      if (ps->p >= ps->end) return json_fail(ps, "EOF while parsing a string");
      unsigned char ch = *ps->p++;
      if (ch == '"') return true;
      if (ch < 0x20) return json_fail(ps, "control character while parsing a string");
      if (ch != '\\') continue;
      if (ps->p >= ps->end) return json_fail(ps, "EOF while parsing a string");
      ch = *ps->p++;
      if (ch == 'u') {
        if (json_hex4(ps) < 0) return json_fail(ps, "invalid \\u escape");
      } else if (!strchr("\"\\/bfnrt", ch) || ch == 0) {
        return json_fail(ps, "invalid escape");
      }
    }
  case '[':
  case '{': {
    if (--ps->remaining_depth == 0) return json_fail(ps, "recursion limit exceeded");
    char close = c == '[' ? ']' : '}';
    ps->p++;
    json_ws(ps);
    if (json_peek(ps) == close) {
      ps->p++;
      ps->remaining_depth++;
      return true;
    }
    for (;;) {
      if (c == '{') {
        json_ws(ps);
        if (json_peek(ps) != '"') return json_fail(ps, "key must be a string");
        if (!json_skip(ps)) return false;
        json_ws(ps);
        if (json_peek(ps) != ':') return json_fail(ps, "expected `:`");
        ps->p++;
      }
      if (!json_skip(ps)) return false;
      json_ws(ps);
      int next = json_peek(ps);
      if (next == ',') {
        ps->p++;
        continue;
      }
      if (next == close) {
        ps->p++;
        ps->remaining_depth++;
        return true;
      }
      return json_fail(ps, "expected `,` or a closing bracket");
    }
  }
  default:
    if (c != '-' && !(c >= '0' && c <= '9')) return json_fail(ps, "expected a value");
    bool normalize;
    return json_scan_number(ps, &normalize);
  }
}

// ---- writer ---------------------------------------------------------------------------------

typedef struct {
  char *ptr;
  size_t len, cap;
  bool failed; // out of memory
} json_buf;

static void json_put(json_buf *b, const char *s, size_t n) {
  if (b->failed) return;
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < n) cap *= 2;
    char *p = realloc(b->ptr, cap);
    if (!p) {
      b->failed = true;
      return;
    }
    b->ptr = p;
    b->cap = cap;
  }
  memcpy(b->ptr + b->len, s, n);
  b->len += n;
}

// A string in serde_json's escaping: `"`, `\`, and control characters below U+0020.
static void json_put_string(json_buf *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  json_put(b, "\"", 1);
  size_t from = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    json_put(b, s + from, i - from);
    from = i + 1;
    char esc[6] = {'\\', 0};
    switch (c) {
    case '"': esc[1] = '"'; json_put(b, esc, 2); break;
    case '\\': esc[1] = '\\'; json_put(b, esc, 2); break;
    case '\b': esc[1] = 'b'; json_put(b, esc, 2); break;
    case '\f': esc[1] = 'f'; json_put(b, esc, 2); break;
    case '\n': esc[1] = 'n'; json_put(b, esc, 2); break;
    case '\r': esc[1] = 'r'; json_put(b, esc, 2); break;
    case '\t': esc[1] = 't'; json_put(b, esc, 2); break;
    default:
      memcpy(esc, "\\u00", 4);
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      json_put(b, esc, 6);
    }
  }
  json_put(b, s + from, n - from);
  json_put(b, "\"", 1);
}

static void json_put_u64(json_buf *b, uint64_t v) {
  char digits[20];
  int n = 0;
  do {
    digits[19 - n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  json_put(b, digits + 20 - n, (size_t)n);
}

#endif
