"""{{name}}: an Airlock isolation hook in Python.

Config: `{}` (nothing denied) or `{"deny": ["command", ...]}`; anything else is refused with an
error naming it. A command whose name is in `deny` is rejected with code `denied`; everything
else (other commands, events, channels) passes.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import Kind, Message, Rejection, Verdict, Verdict_Pass, Verdict_Reject

HOOK = "{{name}}"
PASS = Verdict_Pass()

# Set by `configure`, which runs on every instance before `inspect`.
denied = frozenset()


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


class Policy(exports.Policy):
    def configure(self, config: str) -> None:
        global denied
        try:
            value = json.loads(config or "{}", parse_constant=_refuse_constant)
        except ValueError as e:
            raise Err(f"{HOOK}: config is not JSON: {e}")
        if not isinstance(value, dict):
            raise Err(f"{HOOK}: config must be a JSON object, got {config.strip()[:80]}")
        for field in value:
            if field != "deny":
                raise Err(f"{HOOK}: unknown config field `{field}` (the only one is `deny`)")
        deny = value.get("deny", [])
        if not isinstance(deny, list):
            raise Err(f"{HOOK}: `deny` must be a list of command names, got {json.dumps(deny)}")
        for item in deny:
            if not isinstance(item, str):
                raise Err(f"{HOOK}: `deny` must hold command names, got {json.dumps(item)}")
        denied = frozenset(deny)

    def inspect(self, message: Message) -> Verdict:
        if message.kind == Kind.COMMAND and message.name in denied:
            reason = f"command `{message.name}` is denied by {HOOK}"
            return Verdict_Reject(Rejection("denied", reason))
        return PASS
