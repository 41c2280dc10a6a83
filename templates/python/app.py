"""{{name}}: an Airlock isolation hook in Python.

Config: `{}` (nothing denied) or `{"deny": ["command", ...]}`; anything else is refused with an
error naming it. A command whose name is in `deny` is rejected with code `denied`; everything
else (other commands, events, channels) passes.
"""

from airlock_hook import JsonError, read_config, strings
from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import Kind, Message, Rejection, Verdict, Verdict_Pass, Verdict_Reject

HOOK = "{{name}}"
PASS = Verdict_Pass()

# Set by `configure`, which runs on every instance before `inspect`.
denied = frozenset()


class Policy(exports.Policy):
    def configure(self, config: str) -> None:
        global denied
        # airlock_hook reads JSON as Rust's serde_json does (json.loads accepts NaN, keeps the last
        # of duplicate keys...), and the config's fields as serde reads a struct's.
        try:
            fields = read_config(config, ("deny",))
        except JsonError as e:
            raise Err(f"{HOOK}: invalid config: {e}")
        try:
            deny = strings(fields.get("deny", []))
        except JsonError as e:
            raise Err(f"{HOOK}: `deny` must be a list of command names: {e}")
        denied = frozenset(deny)

    def inspect(self, message: Message) -> Verdict:
        if message.kind == Kind.COMMAND and message.name in denied:
            reason = f"command `{message.name}` is denied by {HOOK}"
            return Verdict_Reject(Rejection("denied", reason))
        return PASS
