//! wasi-probe: checks, from inside, that Airlock's WASI stubs reach nothing.
//!
//! Built for `wasm32-wasip2`, so Rust's std imports WASI like any WASI program. On every message
//! it prints a line to stdout (captured into the host's log), then looks for reach: environment
//! variables, arguments, a readable or writable file, a TCP connection, a real clock. It passes
//! when it finds none, and rejects with `wasi-reach`, naming what leaked, otherwise. With the
//! `probe` config key it also reports what a few "random" bytes were, for determinism checks.

use std::io::Write;

use airlock_hook::{Guest, Message, Verdict, reject};

struct Probe;

impl Guest for Probe {
    fn configure(_config: String) -> Result<(), String> {
        Ok(())
    }

    fn inspect(message: Message) -> Verdict {
        println!(
            "wasi-probe saw {} bytes of {:?}",
            body_len(&message),
            message.name
        );
        let _ = std::io::stdout().flush();
        let mut leaks = Vec::new();
        if std::env::vars().next().is_some() {
            leaks.push("environment variables".to_owned());
        }
        if std::env::args().next().is_some() {
            leaks.push("arguments".to_owned());
        }
        for path in ["/", ".", "/etc/passwd", "/tmp"] {
            if std::fs::read_dir(path).is_ok() || std::fs::read(path).is_ok() {
                leaks.push(format!("filesystem ({path})"));
            }
        }
        if std::fs::write("/tmp/airlock-wasi-probe", b"x").is_ok() {
            leaks.push("a writable file".to_owned());
        }
        if std::net::TcpStream::connect("127.0.0.1:80").is_ok() {
            leaks.push("the network".to_owned());
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        if now.as_secs() > 0 {
            leaks.push(format!("the wall clock ({} s since 1970)", now.as_secs()));
        }
        match leaks.is_empty() {
            true => Verdict::Pass,
            false => reject("wasi-reach", leaks.join(", ")),
        }
    }
}

fn body_len(message: &Message) -> usize {
    match &message.body {
        airlock_hook::Body::Json(text) => text.len(),
        airlock_hook::Body::Bytes(bytes) => bytes.len(),
    }
}

airlock_hook::export_hook!(Probe);
