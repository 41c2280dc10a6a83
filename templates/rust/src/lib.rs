//! {{name}}: an Airlock isolation hook.
//!
//! Config (optional): `{"deny": ["cmd", ...]}`; `{}` denies nothing. Anything else (an unknown
//! field, a `deny` that is not a list of strings) is refused, naming what was wrong, and the hook
//! is then not loaded. A **command** whose name is in `deny` is rejected with code `denied`;
//! everything else (other commands, events, channels) passes untouched.

use airlock_hook::{Guest, Kind, Message, Settings, Verdict, parse_config, reject};
use serde::Deserialize;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Config {
    /// Commands this hook refuses.
    deny: Vec<String>,
}

/// The config `configure` stored, read by `inspect`.
static CONFIG: Settings<Config> = Settings::new();

struct Hook;

impl Guest for Hook {
    fn configure(config: String) -> Result<(), String> {
        CONFIG.set(parse_config(&config)?);
        Ok(())
    }

    fn inspect(message: Message) -> Verdict {
        if message.kind != Kind::Command {
            return Verdict::Pass;
        }
        let name = &message.name;
        match CONFIG.with(|config| config.deny.contains(name)) {
            true => reject("denied", format!("command `{name}` is denied by {{name}}")),
            false => Verdict::Pass,
        }
    }
}

airlock_hook::export_hook!(Hook);
