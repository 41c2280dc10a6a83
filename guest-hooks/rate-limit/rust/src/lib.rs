//! rate-limit: at most so many messages of a name a second from each window, counted by the host
//! (`airlock:hook/state`), since the hook itself starts fresh on every message.
//!
//! Config: `{"per_second": 5, "burst": 5, "names": ["fs_write"]}`. Each window gets a token
//! bucket per limited name, holding at most `burst` messages (default 5) and refilled with
//! `per_second` (default 5; 0 for a fixed budget that never refills). `names` lists the
//! message names limited (commands, events and channels alike); empty or absent limits every
//! name. A message over its window's budget is rejected with `rate-limited`. If the host refuses
//! the state call (too many keys, say) the message is rejected with `rate-state`: the hook fails
//! closed.

use airlock_hook::{Guest, Message, Settings, Verdict, parse_config, reject};
use serde::Deserialize;

mod host {
    wit_bindgen::generate!({
        path: "../../../wit",
        world: "state-user",
    });
}

use host::airlock::hook::state;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    per_second: u32,
    burst: u32,
    names: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            per_second: 5,
            burst: 5,
            names: Vec::new(),
        }
    }
}

static CONFIG: Settings<Config> = Settings::new();

struct RateLimit;

impl Guest for RateLimit {
    fn configure(config: String) -> Result<(), String> {
        let config: Config = parse_config(&config)?;
        if config.burst == 0 {
            return Err("burst must be at least 1 (0 would refuse every message)".to_owned());
        }
        if let Some(name) = config.names.iter().find(|n| n.is_empty()) {
            return Err(format!("names has an empty name: {name:?}"));
        }
        CONFIG.set(config);
        Ok(())
    }

    fn inspect(message: Message) -> Verdict {
        let (limited, burst, per_second) = CONFIG.with(|c| {
            let limited = c.names.is_empty() || c.names.contains(&message.name);
            (limited, c.burst, c.per_second)
        });
        if !limited {
            return Verdict::Pass;
        }
        // The host scopes the key to this hook and the message's window.
        match state::take(&message.name, burst, per_second, 1) {
            Ok(true) => Verdict::Pass,
            Ok(false) => reject(
                "rate-limited",
                format!(
                    "more than {burst} {:?} at once or {per_second} a second from window {:?}",
                    message.name, message.source.window
                ),
            ),
            Err(e) => reject("rate-state", format!("host state refused the count: {e:?}")),
        }
    }
}

airlock_hook::export_hook!(RateLimit);
