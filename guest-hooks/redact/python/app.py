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

JSON is read and written with `airlock_hook` (guest-hooks/helpers/python), not with `json`
alone: see that module for why.
"""

from airlock_hook import JsonError, boolean, parse, read_config, strings, write
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

DEFAULT_FIELDS = ["password", "token", "secret"]


def parse_config(config):
    """(fields, case_sensitive); raises JsonError naming the problem."""
    fields = read_config(config, ("fields", "case_sensitive"))
    names = strings(fields.get("fields", DEFAULT_FIELDS))
    case_sensitive = boolean(fields.get("case_sensitive", False))
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
        except (ValueError, RecursionError) as e:  # JsonError is a ValueError
            return Verdict_Reject(Rejection(CODE, f"cannot parse the event's JSON: {e}"))
        if remove(value, _matches) == 0:
            return PASS
        out = []
        write(value, out)
        return Verdict_Replace(Replacement(None, None, Body_Json("".join(out))))
