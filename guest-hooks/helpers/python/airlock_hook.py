"""Airlock's helper for Python hooks: JSON read and written as the Rust hooks' serde_json does,
and the config reading every hook shares.

Every Python hook in the Airlock repository imports this one file
(`guest-hooks/helpers/python/airlock_hook.py`), and `airlock new --lang python` writes it next to
the new hook's `app.py`.

Why not `json.loads` alone: it accepts `NaN` and `Infinity`, keeps the last of duplicate keys
without saying so, accepts unpaired surrogate escapes, reads non-ASCII digits as numbers (without
the C scanner), turns `1E2` into `100.0` and stops at Python's recursion limit instead of
serde_json's 128 levels. Where any of those could change a verdict, `Reader` decides: it takes
exactly the JSON serde_json takes. `parse` lets CPython's C scanner decide only where it agrees.
"""

import json
import json.scanner
import re

# serde_json refuses to enter a container when this many are already open.
MAX_DEPTH = 128

# What Rust's `str::trim` removes (Unicode White_Space); `str.strip()` would also take U+001C-1F.
RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

# One token after optional JSON whitespace: punctuation, a string (its raw inside), a number, or a
# literal. Digits are spelled [0-9]: `\d` would also match non-ASCII digits.
_TOKEN = re.compile(
    r'[ \t\n\r]*(?:([{}\[\]:,])'
    r'|"([^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*)"'
    r'|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)'
    r'|(true|false|null))'
)
_TRAILING = re.compile(r"[ \t\n\r]*")
_LITERALS = {"true": True, "false": False, "null": None}
_SURROGATE = re.compile("[\\ud800-\\udfff]")
# A `\uD800`-`\uDFFF` escape (or a string that merely looks like one: the strict reader decides).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

# The pure-Python scanner would read non-ASCII digits as numbers: use `json.loads` only with C's.
C_SCANNER = json.scanner.c_make_scanner is not None


class JsonError(ValueError):
    """Text that is not the JSON a hook accepts; the message says where."""


class Number(str):
    """A JSON number, kept as serde_json spells it (see `spelling`)."""


def decode(raw):
    """The value of a string's raw inside (already checked by `Reader.token`), with unpaired
    surrogate escapes refused as serde_json refuses them for a `String`. `json` decodes, joining
    escaped pairs; the text from the host is valid Unicode, so any surrogate left came from an
    escape."""
    if "\\" not in raw:
        return raw
    value = json.loads('"' + raw + '"')
    if _SURROGATE.search(value) is not None:
        raise JsonError("lone surrogate in hex escape")
    return value


def spelling(text):
    """serde_json's spelling of a number: as written, but exponents as `e+N` / `e-N`."""
    for e, c in enumerate(text):
        if c in "eE":
            sign = "" if text[e + 1] in "+-" else "+"
            return text[:e] + "e" + sign + text[e + 1 :]
    return text


class Reader:
    """A strict JSON reader over `text`, one token at a time."""

    def __init__(self, text):
        self.text = text
        self.pos = 0

    def token(self):
        """(kind, text): kind is one of `{}[]:,` or `s` (string, with its raw inside as text),
        `n` (number), `l` (literal)."""
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
        """The value starting with this token, `depth` containers deep: dict (keys in order, the
        last of duplicate keys winning at the first one's place), list, str, Number, True, False
        or None."""
        if kind == "s":
            return decode(text)
        if kind == "n":
            return Number(spelling(text))
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
        key = self.next_key(True)
        while key is not None:
            kind, text = self.token()
            members[key] = self.value(kind, text, depth)
            key = self.next_key(False)
        return members

    def next_key(self, first):
        """Inside an object, after its `{` (`first`) or after a member's value: the next member's
        key, decoded, with the colon after it read; None at the closing `}`."""
        kind, text = self.token()
        if kind == "}":
            return None
        if not first:
            if kind != ",":
                raise JsonError(f"expected `,` or `}}` at column {self.pos}")
            kind, text = self.token()
        if kind != "s":
            raise JsonError(f"expected a string key at column {self.pos}")
        key = decode(text)
        if self.token()[0] != ":":
            raise JsonError(f"expected `:` at column {self.pos}")
        return key

    def skip_value(self, kind):
        """Checks the syntax of the value that starts with this token, without depth limit."""
        stack = []
        while True:
            if kind in "snl":
                pass
            elif kind == "{" or kind == "[":
                close = "}" if kind == "{" else "]"
                kind, text = self.token()
                if kind == close:
                    pass
                else:
                    stack.append(close)
                    if close == "}":
                        kind = self._member_key(kind)
                    continue
            else:
                raise JsonError(f"expected a value at column {self.pos}")
            # A value ended: close containers or go on with the next element.
            while True:
                if not stack:
                    return
                kind, text = self.token()
                if kind == stack[-1]:
                    stack.pop()
                    continue
                if kind != ",":
                    raise JsonError(f"expected `,` or `{stack[-1]}` at column {self.pos}")
                kind, text = self.token()
                if stack[-1] == "}":
                    kind = self._member_key(kind)
                break

    def _member_key(self, kind):
        """After a key token inside an object: checks it and the colon; the value's first token."""
        if kind != "s":
            raise JsonError(f"expected a string key at column {self.pos}")
        if self.token()[0] != ":":
            raise JsonError(f"expected `:` at column {self.pos}")
        return self.token()[0]

    def end(self):
        """Checks that nothing but whitespace follows."""
        self.pos = _TRAILING.match(self.text, self.pos).end()
        if self.pos != len(self.text):
            raise JsonError(f"trailing characters at column {self.pos + 1}")


def refuse_constant(name):
    """For `json.loads(parse_constant=...)`: `NaN` and `Infinity` are not JSON."""
    raise JsonError(f"{name} is not JSON")


def parse(text):
    """The JSON text as a tree (see `Reader.value`), or an error where serde_json would give one:
    JsonError, or ValueError or RecursionError from `json`.

    Fast path: without a surrogate escape in the text, CPython's C JSON scanner decides (with
    `NaN` and `Infinity` refused, numbers kept as spelled, and the depth checked afterwards): its
    grammar, duplicate keys and key order are serde_json's with `preserve_order`. Otherwise the
    strict `Reader` does.
    """
    if C_SCANNER and _SURROGATE_ESCAPE.search(text) is None:
        value = json.loads(
            text, parse_int=_number, parse_float=_number, parse_constant=refuse_constant
        )
        if _deeper_than_allowed(value, 1):
            raise JsonError("recursion limit exceeded")
        return value
    return parse_strictly(text)


def _number(text):
    return Number(spelling(text))


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


def parse_strictly(text):
    """The JSON text as a tree, read by `Reader` alone."""
    reader = Reader(text)
    kind, token = reader.token()
    value = reader.value(kind, token, 0)
    reader.end()
    return value


def write(value, out):
    """Appends compact JSON for a tree (see `Reader.value`) to the list `out`, as serde_json
    writes it."""
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


# ---- reasons and configs ------------------------------------------------------------------------


def quote(text):
    """A string quoted for a reason (long ones are cut: the host keeps 1024 bytes of a reason)."""
    return json.dumps(text[:1024] + "…" if len(text) > 1024 else text, ensure_ascii=False)


def describe(value):
    """A tree's value as serde names it in an "invalid type" error."""
    if value is None:
        return "null"
    if value is True or value is False:
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, Number):
        return f"number `{value}`"
    if isinstance(value, str):
        return f"string {quote(value)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def read_config(config, known):
    """The fields of a hook's JSON config as `{name: value}` (values as `Reader.value` gives
    them), read as serde reads a struct with the fields named in `known`: an empty or
    all-whitespace config means `{}`; anything but an object, an unknown field and a repeated one
    raise JsonError naming the problem."""
    if config.strip(RUST_WHITESPACE) == "":
        config = "{}"
    reader = Reader(config)
    kind, text = reader.token()
    # A config is an object: an array (serde's sequence form of a struct) is refused too.
    if kind != "{":
        reader.skip_value(kind)
        raise JsonError("invalid type, expected struct Config")
    fields = {}
    key = reader.next_key(True)
    while key is not None:
        if key not in known:
            raise JsonError(f"unknown field `{key}`, expected {_one_of(known)}")
        if key in fields:
            raise JsonError(f"duplicate field `{key}`")
        kind, text = reader.token()
        fields[key] = reader.value(kind, text, 1)
        key = reader.next_key(False)
    reader.end()
    return fields


def _one_of(names):
    """serde's list of expected fields: "`a`", "`a` or `b`", "one of `a`, `b`, `c`"."""
    quoted = [f"`{name}`" for name in names]
    if len(quoted) <= 2:
        return " or ".join(quoted)
    return "one of " + ", ".join(quoted)


def string(value):
    """A config value that must be a string; JsonError otherwise."""
    if not isinstance(value, str) or isinstance(value, Number):
        raise JsonError(f"invalid type: {describe(value)}, expected a string")
    return value


def strings(value):
    """A config value that must be a list of strings, as a new list; JsonError otherwise."""
    if not isinstance(value, list):
        raise JsonError(f"invalid type: {describe(value)}, expected a sequence")
    return [string(item) for item in value]


def boolean(value):
    """A config value that must be `true` or `false`; JsonError otherwise."""
    if value is not True and value is not False:
        raise JsonError(f"invalid type: {describe(value)}, expected a boolean")
    return value
