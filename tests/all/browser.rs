//! The demo in a real browser: `airlock serve` in front of headless Chromium, driven by
//! playwright-core (`tests/browser/demo.mjs`) through a pass, a replace and a reject.
//! `scripts/test` installs both through `scripts/toolchains/browser`; when either is missing
//! this test fails with the command that installs it, never skips.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use airlock_tests::{airlock_bin, root};

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(
        path.exists(),
        "{} is missing: install it with `scripts/toolchains/browser` (scripts/test does), \
         or set CHROMIUM to a Chromium binary",
        path.display()
    );
    path
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_demo_shows_a_pass_a_replace_and_a_reject_with_the_hooks_code_in_headless_chromium() {
    let chromium = chromium();
    let driver = root().join("tests/browser/demo.mjs");
    assert!(
        root()
            .join("tests/browser/node_modules/playwright-core/package.json")
            .exists(),
        "playwright-core is missing: install it with `scripts/toolchains/browser` (scripts/test does)"
    );
    let scratch = std::env::temp_dir().join(format!("airlock-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&scratch);
    let (data, profile) = (scratch.join("data"), scratch.join("profile"));
    std::fs::create_dir_all(&profile).unwrap();

    let mut child = Command::new(airlock_bin())
        .current_dir(root())
        .args(["serve", "--hook", "target/hooks/path-guard.rust.wasm"])
        .args([
            "--hook",
            "target/hooks/redact.rust.wasm",
            "--static",
            "examples/demo",
        ])
        .args(["--bind", "127.0.0.1:0", "--root"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start airlock serve");
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let mut url = String::new();
    BufReader::new(stdout).read_line(&mut url).unwrap();
    let url = url.trim().to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:"),
        "airlock serve printed {url:?}"
    );

    let output = Command::new("node")
        .arg(&driver)
        .env("AIRLOCK_URL", &url)
        .env("CHROMIUM", &chromium)
        .env("AIRLOCK_PROFILE", &profile)
        .current_dir(root().join("tests/browser"))
        .output()
        .expect("run node (Node 20 or later)");
    drop(server);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the browser run failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("reject: ") && stdout.contains("path-escape"),
        "{stdout}"
    );
    // The large event's step ran (demo.mjs checks what it saw).
    assert!(stdout.contains("large: "), "{stdout}");
    let _ = std::fs::remove_dir_all(&scratch);
}
