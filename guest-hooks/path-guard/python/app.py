"""path-guard: file commands must keep their `path` argument inside a root (Python).

The same policy as `../rust/src/lib.rs`, whose header comment gives the rules; this file follows
it line for line, including the parsing details that decide a verdict:

- Config (all optional): `{"commands": ["fs_read", "fs_write", "fs_list"], "root": "/app/data"}`;
  an empty or all-whitespace config means `{}`; unknown or duplicate fields, wrong types and a
  root that is not an absolute POSIX path (or holds `..`) are refused, naming the problem.
- The args must be one JSON object (whitespace around it only) with exactly one top-level `path`
  key (escapes decoded, so `"pa\\u0074h"` is `path`) holding a string. Top-level keys and the
  `path` value are decoded strictly (an unpaired UTF-16 surrogate escape is an error, as for
  serde's `String`); every other value is only checked for JSON syntax, at any depth.

The JSON reader is written here rather than taken from `json`: `json.loads` accepts `NaN`,
keeps the last of duplicate keys, accepts unpaired surrogates and stops at Python's recursion
limit, and each of those would change a verdict.
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
    Verdict,
    Verdict_Pass,
    Verdict_Reject,
)
from componentize_py_types import Err

CODE = "path-escape"
PASS = Verdict_Pass()

# One token after optional JSON whitespace: punctuation, a string (its raw inside), a number, or a
# literal. Digits are spelled [0-9]: `\d` would also match non-ASCII digits.
_TOKEN = re.compile(
    r'[ \t\n\r]*(?:([{}\[\]:,])'
    r'|"([^"\\\x00-\x1f]*(?:\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})[^"\\\x00-\x1f]*)*)"'
    r'|(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)'
    r'|(true|false|null))'
)
_TRAILING = re.compile(r"[ \t\n\r]*")


class JsonError(Exception):
    """Text that is not the JSON this hook expects; the message says where."""


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
        """(kind, text): kind is one of `{}[]:,` or `s` (string), `n` (number), `l` (literal)."""
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
        self.pos = _TRAILING.match(self.text, self.pos).end()
        if self.pos != len(self.text):
            raise JsonError(f"trailing characters at column {self.pos + 1}")


def _type_name(kind, text):
    if kind == "l":
        return {"null": "null", "true": "a boolean", "false": "a boolean"}[text]
    return {"n": "a number", "s": "a string", "[": "an array", "{": "an object"}.get(kind, "?")


def find_path(args):
    """The top-level `path` value of a JSON object: ("s", str), (kind, type name) or None.

    Fast path: when the args hold no backslash (so no escaped key and no surrogate escape) and
    the text `"path"` at most once (so no duplicate key), CPython's C JSON scanner decides: with
    `NaN` and `Infinity` refused its grammar is serde_json's. Everything else, and anything it
    refuses (a syntax error, or nesting past the recursion limit), goes to `_Reader`, which has
    the final word.
    """
    if _C_SCANNER and "\\" not in args and args.count('"path"') <= 1:
        try:
            value = json.loads(args, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            return find_path_strictly(args)
        if not isinstance(value, dict):
            raise JsonError("invalid type: expected a JSON object")
        if "path" not in value:
            return None
        path = value["path"]
        if isinstance(path, str):
            return "s", path
        if path is None:
            return "l", "null"
        if path is True or path is False:
            return "l", "true"
        if isinstance(path, list):
            return "[", "an array"
        if isinstance(path, dict):
            return "{", "an object"
        return "n", "a number"
    return find_path_strictly(args)


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


# The pure-Python scanner would read non-ASCII digits as numbers: use the fast path only with C's.
_C_SCANNER = json.scanner.c_make_scanner is not None


def find_path_strictly(args):
    reader = _Reader(args)
    kind, _ = reader.token()
    if kind != "{":
        raise JsonError("invalid type: expected a JSON object")
    found = None
    kind, text = reader.token()
    if kind != "}":
        while True:
            if kind != "s":
                raise JsonError(f"expected a string key at column {reader.pos}")
            key = _decode(text)
            if reader.token()[0] != ":":
                raise JsonError(f"expected `:` at column {reader.pos}")
            kind, text = reader.token()
            if key == "path":
                if found is not None:
                    raise JsonError("duplicate `path` key")
                if kind == "s":
                    found = ("s", _decode(text))
                else:
                    # Not a string: refused whatever it holds (serde would also refuse some
                    # of these values outright, with the same code).
                    reader.skip_value(kind)
                    found = (kind, _type_name(kind, text))
            else:
                reader.skip_value(kind)
            kind, text = reader.token()
            if kind == "}":
                break
            if kind != ",":
                raise JsonError(f"expected `,` or `}}` at column {reader.pos}")
            kind, text = reader.token()
    reader.end()
    return found


def is_control(code):
    return code < 0x20 or 0x7F <= code <= 0x9F


_LOOKALIKES = frozenset(
    [0x2044, 0x2215, 0x2571, 0x29F8, 0xFF0F, 0x1735, 0x0337, 0x0338, 0x2216, 0x29F5, 0x29F9,
     0xFE68, 0xFF3C, 0x2024, 0x2025, 0x2026, 0xFE52, 0xFF0E, 0x3002, 0xFF61, 0x0701, 0x0702,
     0xA4F8, 0x06D4]
)
_INVISIBLE_SINGLE = frozenset(
    [0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFEFF, 0xFFA0]
)
_INVISIBLE_RANGES = (
    (0x180B, 0x180F), (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x206F), (0xFE00, 0xFE0F),
    (0xFFF9, 0xFFFB), (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)


def is_invisible(code):
    if code in _INVISIBLE_SINGLE:
        return True
    return any(lo <= code <= hi for lo, hi in _INVISIBLE_RANGES)


_PERCENT = re.compile(r"%(?:[0-9a-fA-F]{2}|[uU][0-9a-fA-F]{4})")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*\Z")
# Characters no path check needs to look at one by one: printable ASCII other than `\`.
_PLAIN = re.compile(r"[ -\[\]-~]*\Z")
# Every character `is_control`, `_LOOKALIKES` or `is_invisible` names, and `\`.
_SUSPICIOUS = re.compile(
    "[\\x00-\\x1f\\x7f-\\x9f\\\\"
    + "".join(re.escape(chr(c)) for c in sorted(_LOOKALIKES | _INVISIBLE_SINGLE))
    + "".join(f"{re.escape(chr(lo))}-{re.escape(chr(hi))}" for lo, hi in _INVISIBLE_RANGES)
    + "]"
)


def _debug(text):
    """A string quoted for a reason (long ones are cut: the host keeps 1024 bytes of a reason)."""
    return json.dumps(text[:1024] + "…" if len(text) > 1024 else text, ensure_ascii=False)


def check(root, path):
    """None when the path stays inside the root; else the problem, completing "path … "."""
    if _PLAIN.match(path) is None:
        # Find the first suspicious character with one regex, then say what it is.
        bad = _SUSPICIOUS.search(path)
        if bad is not None:
            c = bad.group(0)
            code = ord(c)
            if is_control(code):
                return f"has control character U+{code:04X}"
            if c == "\\":
                return "has a backslash"
            if code in _LOOKALIKES:
                return f"has U+{code:04X}, a lookalike of `/`, `\\` or `.`"
            if is_invisible(code):
                return f"has invisible formatting character U+{code:04X}"
    encoded = _PERCENT.search(path)
    if encoded is not None:
        return f"has percent-encoded {_debug(encoded.group(0))}"
    if path.startswith("~"):
        return "starts with `~`, a home-directory reference"
    if ":" in path:
        prefix, rest = path.split(":", 1)
        if _SCHEME.match(prefix) and (
            len(prefix) == 1 or rest.startswith("//") or prefix.lower() == "file"
        ):
            return "starts with a drive letter or URL scheme"

    absolute = path.startswith("/")
    at = [] if absolute else list(root)
    depth = len(root)
    # How many leading segments of `at` equal the root's (at most `depth`): `at` is inside the
    # root when all of them do.
    matched = 0 if absolute else depth
    was_inside = not absolute
    for segment in path.split("/"):
        if segment == "" or segment == ".":
            continue
        if segment == "..":
            if not at:
                return "climbs above `/`"
            at.pop()
            if matched > len(at):
                matched = len(at)
        elif segment[0] in ". " and segment.strip(". ") == "":
            return f"has segment {_debug(segment)}, made only of dots and spaces"
        elif segment.startswith("..") and segment[2:3] in (";", "?", "#"):
            return f"has segment {_debug(segment)}, read as `..` by some servers"
        else:
            if matched == len(at) < depth and segment == root[matched]:
                matched += 1
            at.append(segment)
        inside = matched == depth
        if was_inside and not inside:
            return f"walks out of the root /{'/'.join(root)}"
        was_inside = was_inside or inside
    if matched != depth:
        return f"resolves to /{'/'.join(at)} outside the root /{'/'.join(root)}"
    return None


# ---- config -------------------------------------------------------------------------------------

# What Rust's `str::trim` removes (Unicode White_Space); `str.strip()` would also take U+001C-1F.
_RUST_WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)

DEFAULT_COMMANDS = ["fs_read", "fs_write", "fs_list"]
DEFAULT_ROOT = "/app/data"


def _config_value(reader, kind, text):
    """A config value as Python data, strictly decoded (arrays of strings and strings suffice)."""
    if kind == "s":
        return _decode(text)
    if kind == "n":
        return float(text) if any(c in text for c in ".eE") else int(text)
    if kind == "l":
        return {"true": True, "false": False, "null": None}[text]
    if kind == "[":
        items = []
        kind, text = reader.token()
        if kind == "]":
            return items
        while True:
            items.append(_config_value(reader, kind, text))
            kind, text = reader.token()
            if kind == "]":
                return items
            if kind != ",":
                raise JsonError(f"expected `,` or `]` at column {reader.pos}")
            kind, text = reader.token()
    if kind == "{":
        reader.skip_value(kind)
        return {}
    raise JsonError(f"expected a value at column {reader.pos}")


def _describe(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, (int, float)):
        return f"number `{value}`"
    if isinstance(value, str):
        return f"string {_debug(value)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def parse_config(config):
    """(commands, root segments) from the config text; raises JsonError naming the problem."""
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
                if key not in ("commands", "root"):
                    raise JsonError(
                        f"unknown field `{key}`, expected `commands` or `root`"
                    )
                if key in fields:
                    raise JsonError(f"duplicate field `{key}`")
                kind, text = reader.token()
                fields[key] = _config_value(reader, kind, text)
                kind, text = reader.token()
                if kind == "}":
                    break
                if kind != ",":
                    raise JsonError(f"expected `,` or `}}` at column {reader.pos}")
                kind, text = reader.token()
    else:
        reader.skip_value(kind)
        raise JsonError("invalid type, expected struct Config")
    reader.end()

    commands = fields.get("commands", DEFAULT_COMMANDS)
    if not isinstance(commands, list):
        raise JsonError(f"invalid type: {_describe(commands)}, expected a sequence")
    for item in commands:
        if not isinstance(item, str):
            raise JsonError(f"invalid type: {_describe(item)}, expected a string")
    root = fields.get("root", DEFAULT_ROOT)
    if not isinstance(root, str):
        raise JsonError(f"invalid type: {_describe(root)}, expected a string")
    return list(commands), root


def root_segments(root):
    """The root's segments (empty for `/`), or an error message."""
    if not root.startswith("/") or "\\" in root or any(is_control(ord(c)) for c in root):
        raise ValueError(f"root {_debug(root)} must be an absolute POSIX path")
    segments = []
    for segment in root.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            raise ValueError(f"root {_debug(root)} must not contain `..`")
        segments.append(segment)
    return segments


_commands = frozenset(DEFAULT_COMMANDS)
_root = root_segments(DEFAULT_ROOT)


def _reject(reason):
    return Verdict_Reject(Rejection(CODE, reason))


class Policy(exports.Policy):
    def configure(self, config: str) -> None:
        global _commands, _root
        try:
            commands, root = parse_config(config)
        except JsonError as e:
            raise Err(f"invalid config: {e}")
        try:
            segments = root_segments(root)
        except ValueError as e:
            raise Err(str(e))
        _commands = frozenset(commands)
        _root = segments

    def inspect(self, message: Message) -> Verdict:
        if message.kind != Kind.COMMAND or message.name not in _commands:
            return PASS
        name = message.name
        body = message.body
        if not isinstance(body, Body_Json):
            return _reject(f"`{name}` takes JSON args with a string `path`, got bytes")
        try:
            found = find_path(body.value)
        except JsonError as e:
            return _reject(f"args of `{name}`: {e}")
        if found is None:
            return _reject(f"`{name}` needs a string `path` argument")
        kind, path = found
        if kind != "s":
            return _reject(f"`path` of `{name}` must be a string, got {path}")
        problem = check(_root, path)
        if problem is None:
            return PASS
        return _reject(f"path {_debug(path)} {problem}")
