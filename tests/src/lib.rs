//! Fixtures shared by Airlock's integration tests: the built hooks, hand-written WAT hooks, and a
//! gateway whose core echoes back what it received.

use std::path::PathBuf;
use std::sync::OnceLock;

use airlock::{
    Gateway, GatewayLimits, Hook, HookEngine, HookOptions, Reply, Response, Router, SealConfig,
    jsonl,
};

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The `airlock` binary of this build profile (scripts/build-hooks builds it).
pub fn airlock_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target/<profile>/deps")
        .join("airlock");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release -p airlock-cli` (scripts/test does)",
        path.display()
    );
    path
}

/// Runs `airlock ARGS` in `cwd` with `stdin` as its standard input, and waits for it.
pub fn run_airlock(args: &[&str], cwd: &std::path::Path, stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(airlock_bin())
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("airlock starts");
    let written = child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin.as_bytes());
    // A run that refuses before it reads (a hook that fails its trust, a bad flag) closes its
    // input: that is its answer, which the caller checks, not a failure to write.
    if let Err(e) = written {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "stdin written: {e}"
        );
    }
    child.wait_with_output().expect("airlock ends")
}

/// Where the tests keep compiled hooks, so that each built hook (an 18 MB Python one included)
/// is compiled once, not once per test and run.
pub fn hook_cache() -> PathBuf {
    root().join("target/hook-cache")
}

/// One engine for the whole test binary, as an app would have.
pub fn engine() -> &'static HookEngine {
    static ENGINE: OnceLock<HookEngine> = OnceLock::new();
    ENGINE.get_or_init(|| HookEngine::with_cache(Default::default(), hook_cache()).expect("engine"))
}

/// An engine that meters fuel, for fuel budgets.
pub fn fuel_engine() -> &'static HookEngine {
    static ENGINE: OnceLock<HookEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let config = airlock::EngineConfig::default().with_fuel(true);
        HookEngine::with_cache(config, hook_cache()).expect("engine")
    })
}

/// An engine for hooks instrumented for coverage (`airlock fuzz`): fuel metered, and two memories
/// per core module.
pub fn coverage_engine() -> &'static HookEngine {
    static ENGINE: OnceLock<HookEngine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let config = airlock::EngineConfig::default()
            .with_fuel(true)
            .with_memories_per_module(2);
        HookEngine::with_cache(config, hook_cache()).expect("engine")
    })
}

/// The bytes of a built hook, `target/hooks/<policy>.<lang>.wasm`. Panics with the command that
/// builds it when it is missing: a missing hook is a failure, never a skip.
pub fn built_hook(policy: &str, lang: &str) -> Vec<u8> {
    let path = root().join(format!("target/hooks/{policy}.{lang}.wasm"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; build the hooks with `scripts/build-hooks` (scripts/test does)",
            path.display()
        )
    })
}

/// Loads a built hook with a JSON config.
pub fn load_built(policy: &str, lang: &str, config: &str) -> Hook {
    let options = HookOptions::default().with_config(config.to_owned());
    Hook::load(engine(), &built_hook(policy, lang), options)
        .unwrap_or_else(|e| panic!("load {policy}.{lang}: {e}"))
}

/// A router whose fallback answers every message with the message itself, in the JSON Lines
/// shape, so a test sees exactly what the core decoded from the envelope.
pub fn echo_router() -> Router {
    Router::new().fallback(|message| async move {
        Ok(Response::Json(
            jsonl::message_line(&message).expect("delivered message serializes"),
        ))
    })
}

/// A gateway in front of the echo router, with default limits.
pub fn echo_gateway(hook: Hook) -> Gateway {
    Gateway::with_config(
        hook,
        echo_router(),
        GatewayLimits::default(),
        SealConfig::default(),
    )
    .expect("gateway")
}

/// Runs one JSON Lines message through a gateway.
pub fn send(gateway: &Gateway, line: &str) -> Reply {
    let (source, request) = jsonl::parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    block_on(gateway.handle(source, request))
}

/// The delivered message of a reply as JSON, or the rejection's code.
pub fn delivered(reply: &Reply) -> Result<serde_json::Value, String> {
    match &reply.outcome {
        Ok(Response::Json(raw)) => Ok(serde_json::from_str(raw.get()).expect("JSON")),
        Ok(other) => Err(format!("not a JSON response: {other:?}")),
        Err(rejection) => Err(rejection.code.clone()),
    }
}

/// Runs a future to completion on a small runtime.
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// A hand-written hook module in WAT with the given bodies for `configure` and `inspect` (see
/// `airlock::component::PASS_ALL_WAT` for the ABI) and extra module fields. Both functions may
/// use `$log`, the imported logger, and the inspect parameters by name (`$name_len`,
/// `$body_len`, …). Offset 16 is the verdict's return area; data may go from offset 256.
pub fn wat_hook(configure: &str, inspect: &str, extra: &str) -> Vec<u8> {
    wat_hook_importing("", configure, inspect, extra)
}

/// [`wat_hook`] with more imports (they must come before the module's own definitions).
pub fn wat_hook_importing(imports: &str, configure: &str, inspect: &str, extra: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module
  (import "airlock:hook/log@0.1.0" "log" (func $log (param i32 i32 i32)))
  {imports}
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 4096))
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
    (local $at i32) (local $end i32) (local $have i32)
    (local.set $at (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                            (i32.sub (i32.const 0) (local.get 2))))
    (local.set $end (i32.add (local.get $at) (local.get 3)))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then (if (i32.eq (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have))
                                                         (i32.const 65535)) (i32.const 16)))
                        (i32.const -1))
              (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $at))
  (func (export "airlock:hook/policy@0.1.0#configure") (param $ptr i32) (param $len i32) (result i32)
    {configure})
  (func (export "airlock:hook/policy@0.1.0#inspect")
    (param $id i64) (param $kind i32) (param $name i32) (param $name_len i32)
    (param $window i32) (param $window_len i32) (param $webview i32) (param $webview_len i32)
    (param $origin i32) (param $origin_len i32) (param $headers i32) (param $headers_len i32)
    (param $body_tag i32) (param $body i32) (param $body_len i32) (result i32)
    {inspect})
  {extra}
)"#
    );
    airlock::component::from_wat(&wat).unwrap_or_else(|e| panic!("{e}\n{wat}"))
}

/// `configure` body that accepts any config.
pub const CONFIGURE_OK: &str = "(i32.store8 (i32.const 0) (i32.const 0)) (i32.const 0)";
/// `inspect` body that passes every message.
pub const INSPECT_PASS: &str = "(i32.store8 (i32.const 16) (i32.const 0)) (i32.const 16)";

/// Waits until `done` holds, checking every 10 ms; panics after 5 s.
pub async fn wait_until(done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("not done within 5 s");
}

/// A WebSocket client connection.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// `GET path` from the web gateway at `addr` on a connection of its own (plain HTTP/1.1):
/// status, head (lower-cased) and body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the gateway listens");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.expect("response read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head[9..12].parse().expect("an HTTP status");
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// Fetches `path` from the web gateway at `addr` and returns the window ticket the gateway put
/// in the page.
pub async fn page_ticket(addr: std::net::SocketAddr, path: &str) -> String {
    let (_, _, body) = http_get(addr, path).await;
    let start = r#"<meta name="airlock-ticket" content=""#;
    let at = body
        .find(start)
        .unwrap_or_else(|| panic!("no window ticket in GET {path}: {body}"))
        + start.len();
    body[at..]
        .split('"')
        .next()
        .expect("a closing quote")
        .to_owned()
}

/// Connects to the web gateway at `addr` with `query` (e.g. `ticket=TOKEN`) from `origin`, without
/// reading anything.
pub async fn ws_connect(
    addr: std::net::SocketAddr,
    query: &str,
    origin: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let mut request = format!("ws://{addr}/airlock?{query}")
        .into_client_request()
        .expect("a valid URL");
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", origin.parse().expect("an ASCII origin"));
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
}

/// Reads a new connection's first frame, the labels the server gave it: `(window, webview)`.
pub async fn welcome(ws: &mut Ws) -> (String, String) {
    use futures_util::StreamExt as _;
    let frame = tokio::time::timeout(std::time::Duration::from_secs(20), ws.next())
        .await
        .expect("a welcome frame within 20 s")
        .expect("the connection is open")
        .expect("a readable frame");
    let text = frame.into_text().expect("a text frame");
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(
        value["type"], "window",
        "the first frame names the window: {value}"
    );
    (
        value["window"].as_str().expect("a window label").to_owned(),
        value["webview"]
            .as_str()
            .expect("a webview label")
            .to_owned(),
    )
}

/// A server process, ended when dropped (a failing test leaves nothing running).
#[derive(Debug)]
pub struct Running(pub std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `airlock serve ARGS` (from the project root) on a free port; returns the process and its address.
pub fn serve_airlock(args: &[&str]) -> (Running, String) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(airlock_bin())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .args(args)
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("airlock serve starts");
    let mut url = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let addr = url
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let child = Running(child);
    assert!(!addr.is_empty(), "airlock serve printed no address");
    (child, addr)
}
