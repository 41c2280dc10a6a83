"""redact: removes secret fields from events (Python).

The same policy as `../rust/src/lib.rs`, whose header comment gives the rules:

- Config (all optional): `{"fields": ["password", "token", "secret"], "case_sensitive": false}`;
  an empty or all-whitespace config means `{}`; unknown or duplicate fields and wrong types are
  refused, naming the problem.
- For an event with a JSON body, every object member whose key is one of `fields` (compared
  ignoring ASCII case unless `case_sensitive`) is removed, at any depth, inside arrays too, and
  the rest is forwarded as `replace`, written compactly with key order and number spelling kept
  (but for exponents, which serde_json writes `e+N`)
  (of duplicate keys the last value wins, at the first one's place, as in serde_json's
  `preserve_order` map). Nothing removed: pass. Commands, channels and bytes bodies pass.
- A body the hook cannot parse is rejected with `redact-failed`; like serde_json, that includes
  an unpaired UTF-16 surrogate escape and nesting 128 deep.

The JSON reader is written here rather than taken from `json`: `json.loads` accepts `NaN` and
unpaired surrogates, has no fixed depth limit, and turns `1.0` into `1.0` but `1E2` into `100.0`.
"""

import json
import json.scanner
import re

from wit_world import exports
from wit_world.imports.types import (
    Body_Json,
    Kind,
    Message,
    Rejection,
    Replacement,
    Verdict,
    Verdict_Pass,
    Verdict_Reject,
    Verdict_Replace,
)
from componentize_py_types import Err

CODE = "redact-failed"
PASS = Verdict_Pass()
# serde_json refuses to enter a container when this many are already open.
MAX_DEPTH = 128

_TOKEN = re.compile(
    r'[ \t\n\r]*(?:([{}\[\]:,])'
    r'|"([^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*)"'
    r'|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)'
    r'|(true|false|null))'
)
_TRAILING = re.compile(r"[ \t\n\r]*")
_LITERALS = {"true": True, "false": False, "null": None}


class JsonError(Exception):
    """Text that is not the JSON this hook accepts; the message says where."""


class Number(str):
    """A JSON number, kept as it was spelled."""


def _decode(raw):
    """The value of a string's raw inside (already checked by `_TOKEN`), with unpaired surrogate
    escapes refused as serde_json refuses them for a `String`. `json` decodes, joining escaped
    pairs; the text from the host is valid Unicode, so any surrogate left came from an escape."""
    if "\\" not in raw:
        return raw
    value = json.loads('"' + raw + '"')
    if _SURROGATE.search(value) is not None:
        raise JsonError("lone surrogate in hex escape")
    return value


_SURROGATE = re.compile("[\\ud800-\\udfff]")


class _Reader:
    def __init__(self, text):
        self.text = text
        self.pos = 0

    def token(self):
        m = _TOKEN.match(self.text, self.pos)
        if m is None:
            self.pos = _TRAILING.match(self.text, self.pos).end()
            what = "end of input" if self.pos >= len(self.text) else repr(self.text[self.pos])
            raise JsonError(f"unexpected {what} at column {self.pos + 1}")
        self.pos = m.end()
        punct, string, number, literal = m.groups()
        if punct is not None:
            return punct, punct
        if string is not None:
            return "s", string
        if number is not None:
            return "n", number
        return "l", literal

    def value(self, kind, text, depth):
        """The value starting with this token: dict, list, str, Number, True, False or None."""
        if kind == "s":
            return _decode(text)
        if kind == "n":
            return Number(_spelling(text))
        if kind == "l":
            return _LITERALS[text]
        if kind != "{" and kind != "[":
            raise JsonError(f"expected a value at column {self.pos}")
        depth += 1
        if depth >= MAX_DEPTH:
            raise JsonError(f"recursion limit exceeded at column {self.pos}")
        if kind == "[":
            items = []
            kind, text = self.token()
            if kind == "]":
                return items
            while True:
                items.append(self.value(kind, text, depth))
                kind, text = self.token()
                if kind == "]":
                    return items
                if kind != ",":
                    raise JsonError(f"expected `,` or `]` at column {self.pos}")
                kind, text = self.token()
        members = {}
        kind, text = self.token()
        if kind == "}":
            return members
        while True:
            if kind != "s":
                raise JsonError(f"expected a string key at column {self.pos}")
            key = _decode(text)
            if self.token()[0] != ":":
                raise JsonError(f"expected `:` at column {self.pos}")
            kind, text = self.token()
            members[key] = self.value(kind, text, depth)
            kind, text = self.token()
            if kind == "}":
                return members
            if kind != ",":
                raise JsonError(f"expected `,` or `}}` at column {self.pos}")
            kind, text = self.token()

    def end(self):
        self.pos = _TRAILING.match(self.text, self.pos).end()
        if self.pos != len(self.text):
            raise JsonError(f"trailing characters at column {self.pos + 1}")


def _spelling(text):
    """serde_json's spelling of a number: as written, but exponents as `e+N` / `e-N`."""
    for e, c in enumerate(text):
        if c in "eE":
            sign = "" if text[e + 1] in "+-" else "+"
            return text[:e] + "e" + sign + text[e + 1 :]
    return text


def parse(text):
    """The body as a tree, or an error where serde_json would give one.

    Fast path: without a surrogate escape in the text, CPython's C JSON scanner decides (with
    `NaN` and `Infinity` refused, numbers kept as spelled, and the depth checked afterwards): its
    grammar, duplicate keys and key order are serde_json's with `preserve_order`. Otherwise the
    strict `_Reader` does.
    """
    if _C_SCANNER and _SURROGATE_ESCAPE.search(text) is None:
        value = json.loads(
            text, parse_int=_number, parse_float=_number, parse_constant=_refuse_constant
        )
        if _deeper_than_allowed(value, 1):
            raise JsonError("recursion limit exceeded")
        return value
    return parse_strictly(text)


def _number(text):
    return Number(_spelling(text))


def _refuse_constant(name):
    raise JsonError(f"{name} is not JSON")


def _deeper_than_allowed(value, depth):
    """Whether a container sits MAX_DEPTH deep (the top-level one is 1 deep)."""
    if isinstance(value, dict):
        items = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return False
    if depth >= MAX_DEPTH:
        return True
    return any(
        _deeper_than_allowed(item, depth + 1) for item in items if isinstance(item, (dict, list))
    )


# A `\uD800`-`\uDFFF` escape (or a string that merely looks like one: the strict reader decides).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# The pure-Python scanner would read non-ASCII digits as numbers: use the fast path only with C's.
_C_SCANNER = json.scanner.c_make_scanner is not None


def parse_strictly(text):
    reader = _Reader(text)
    kind, token = reader.token()
    value = reader.value(kind, token, 0)
    reader.end()
    return value


def write(value, out):
    """Appends compact JSON for the value, as serde_json writes it."""
    if isinstance(value, dict):
        out.append("{")
        first = True
        for key, item in value.items():
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(key, ensure_ascii=False))
            out.append(":")
            write(item, out)
        out.append("}")
    elif isinstance(value, list):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            write(item, out)
        out.append("]")
    elif isinstance(value, Number):
        out.append(str.__str__(value))
    elif isinstance(value, str):
        # Escapes `"`, `\` and U+0000-001F only (short forms for \b \f \n \r \t), as serde_json.
        out.append(json.dumps(value, ensure_ascii=False))
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    else:
        out.append("null")


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _matcher(fields, case_sensitive):
    if case_sensitive:
        wanted = frozenset(fields)
        return wanted.__contains__
    wanted = frozenset(f.translate(_ASCII_LOWER) for f in fields)
    return lambda key: key.translate(_ASCII_LOWER) in wanted


def remove(value, matches):
    """Removes matching members at any depth; returns how many were removed."""
    removed = 0
    if isinstance(value, dict):
        for key in [key for key in value if matches(key)]:
            del value[key]
            removed += 1
        for child in value.values():
            if isinstance(child, (dict, list)):
                removed += remove(child, matches)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)):
                removed += remove(item, matches)
    return removed


# ---- config -------------------------------------------------------------------------------------

_RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
DEFAULT_FIELDS = ["password", "token", "secret"]


def _describe(value):
    if value is None:
        return "null"
    if value is True or value is False:
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, Number):
        return f"number `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def parse_config(config):
    """(fields, case_sensitive); raises JsonError naming the problem."""
    if config.strip(_RUST_WHITESPACE) == "":
        config = "{}"
    reader = _Reader(config)
    kind, text = reader.token()
    fields = {}
    # A config is an object: an array (serde's sequence form of a struct) is refused too.
    if kind == "{":
        kind, text = reader.token()
        if kind != "}":
            while True:
                if kind != "s":
                    raise JsonError(f"expected a string key at column {reader.pos}")
                key = _decode(text)
                if reader.token()[0] != ":":
                    raise JsonError(f"expected `:` at column {reader.pos}")
                if key not in ("fields", "case_sensitive"):
                    raise JsonError(
                        f"unknown field `{key}`, expected `fields` or `case_sensitive`"
                    )
                if key in fields:
                    raise JsonError(f"duplicate field `{key}`")
                kind, text = reader.token()
                fields[key] = reader.value(kind, text, 1)
                kind, text = reader.token()
                if kind == "}":
                    break
                if kind != ",":
                    raise JsonError(f"expected `,` or `}}` at column {reader.pos}")
                kind, text = reader.token()
    else:
        reader.value(kind, text, 0)
        raise JsonError("invalid type, expected struct Config")
    reader.end()

    names = fields.get("fields", DEFAULT_FIELDS)
    if not isinstance(names, list):
        raise JsonError(f"invalid type: {_describe(names)}, expected a sequence")
    for item in names:
        if not isinstance(item, str) or isinstance(item, Number):
            raise JsonError(f"invalid type: {_describe(item)}, expected a string")
    case_sensitive = fields.get("case_sensitive", False)
    if case_sensitive is not True and case_sensitive is not False:
        raise JsonError(f"invalid type: {_describe(case_sensitive)}, expected a boolean")
    return names, case_sensitive


_matches = _matcher(DEFAULT_FIELDS, False)


class Policy(exports.Policy):
    def configure(self, config: str) -> None:
        global _matches
        try:
            names, case_sensitive = parse_config(config)
        except JsonError as e:
            raise Err(f"invalid config: {e}")
        _matches = _matcher(names, case_sensitive)

    def inspect(self, message: Message) -> Verdict:
        if message.kind != Kind.EVENT:
            return PASS
        body = message.body
        if not isinstance(body, Body_Json):
            return PASS
        try:
            value = parse(body.value)
        except (JsonError, ValueError, RecursionError) as e:
            return Verdict_Reject(Rejection(CODE, f"cannot parse the event's JSON: {e}"))
        if remove(value, _matches) == 0:
            return PASS
        out = []
        write(value, out)
        return Verdict_Replace(Replacement(None, None, Body_Json("".join(out))))
