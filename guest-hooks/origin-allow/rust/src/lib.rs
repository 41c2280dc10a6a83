//! origin-allow: rejects messages whose source origin is not in a list.
//!
//! Config (optional): `{"origins": ["tauri://localhost", "http://tauri.localhost",
//! "https://tauri.localhost"]}` (the default: Tauri's own origins). Origins compare ignoring
//! ASCII case, a trailing `/`, and the default port (`:80` for http, `:443` for https). Every kind
//! of message is checked; a refused one gets code `origin-denied`.

use airlock_hook::{Guest, Message, Settings, Verdict, parse_config, reject};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    origins: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            origins: [
                "tauri://localhost",
                "http://tauri.localhost",
                "https://tauri.localhost",
            ]
            .map(String::from)
            .to_vec(),
        }
    }
}

static ALLOWED: Settings<Vec<String>> = Settings::new();

struct OriginAllow;

impl Guest for OriginAllow {
    fn configure(config: String) -> Result<(), String> {
        let config: Config = parse_config(&config)?;
        ALLOWED.set(config.origins.iter().map(|o| normalize(o)).collect());
        Ok(())
    }

    fn inspect(message: Message) -> Verdict {
        let origin = &message.source.origin;
        let wanted = normalize(origin);
        match ALLOWED.with(|allowed| allowed.contains(&wanted)) {
            true => Verdict::Pass,
            false => reject("origin-denied", format!("origin {origin:?} is not allowed")),
        }
    }
}

airlock_hook::export_hook!(OriginAllow);

fn normalize(origin: &str) -> String {
    let origin = origin.trim_end_matches('/').to_ascii_lowercase();
    for (scheme, port) in [("http://", ":80"), ("https://", ":443")] {
        if origin.starts_with(scheme) && origin.ends_with(port) {
            return origin[..origin.len() - port.len()].to_owned();
        }
    }
    origin
}
