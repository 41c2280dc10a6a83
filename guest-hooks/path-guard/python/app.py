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

JSON is read with the strict reader of `airlock_hook` (guest-hooks/helpers/python), not with
`json` alone: see that module for why.
"""

import json
import re

from airlock_hook import (
    C_SCANNER,
    JsonError,
    Reader,
    decode,
    quote,
    read_config,
    refuse_constant,
    string,
    strings,
)
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


def _type_name(kind, text):
    if kind == "l":
        return {"null": "null", "true": "a boolean", "false": "a boolean"}[text]
    return {"n": "a number", "s": "a string", "[": "an array", "{": "an object"}.get(kind, "?")


def find_path(args):
    """The top-level `path` value of a JSON object: ("s", str), (kind, type name) or None.

    Fast path: when the args hold no backslash (so no escaped key and no surrogate escape) and
    the text `"path"` at most once (so no duplicate key), CPython's C JSON scanner decides: with
    `NaN` and `Infinity` refused its grammar is serde_json's. Everything else, and anything it
    refuses (a syntax error, or nesting past the recursion limit), goes to `Reader`, which has
    the final word.
    """
    if C_SCANNER and "\\" not in args and args.count('"path"') <= 1:
        try:
            value = json.loads(args, parse_constant=refuse_constant)
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


def find_path_strictly(args):
    reader = Reader(args)
    kind, _ = reader.token()
    if kind != "{":
        raise JsonError("invalid type: expected a JSON object")
    found = None
    key = reader.next_key(True)
    while key is not None:
        kind, text = reader.token()
        if key == "path":
            if found is not None:
                raise JsonError("duplicate `path` key")
            if kind == "s":
                found = ("s", decode(text))
            else:
                # Not a string: refused whatever it holds (serde would also refuse some of these
                # values outright, with the same code).
                reader.skip_value(kind)
                found = (kind, _type_name(kind, text))
        else:
            reader.skip_value(kind)
        key = reader.next_key(False)
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
        return f"has percent-encoded {quote(encoded.group(0))}"
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
            return f"has segment {quote(segment)}, made only of dots and spaces"
        elif segment.startswith("..") and segment[2:3] in (";", "?", "#"):
            return f"has segment {quote(segment)}, read as `..` by some servers"
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

DEFAULT_COMMANDS = ["fs_read", "fs_write", "fs_list"]
DEFAULT_ROOT = "/app/data"


def parse_config(config):
    """(commands, root) from the config text; raises JsonError naming the problem."""
    fields = read_config(config, ("commands", "root"))
    commands = strings(fields.get("commands", DEFAULT_COMMANDS))
    root = string(fields.get("root", DEFAULT_ROOT))
    return commands, root


def root_segments(root):
    """The root's segments (empty for `/`), or an error message."""
    if not root.startswith("/") or "\\" in root or any(is_control(ord(c)) for c in root):
        raise ValueError(f"root {quote(root)} must be an absolute POSIX path")
    segments = []
    for segment in root.split("/"):
        if segment in ("", "."):
            continue
        if segment == "..":
            raise ValueError(f"root {quote(root)} must not contain `..`")
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
        return _reject(f"path {quote(path)} {problem}")
