//! Metrics: the counts exported match the messages sent, by hook, window, name, verdict and
//! code; payloads and reasons never appear.

use std::net::SocketAddr;

use airlock::{Decision, Gateway, Hook, HookOptions, Kind, LatencyLabels, Metrics, VerdictLabels};
use airlock_tests::{CONFIGURE_OK, INSPECT_PASS, echo_gateway, engine, send, wat_hook};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn named(name: &str, inspect: &str) -> Hook {
    let options = HookOptions::default().with_name(name);
    Hook::load(engine(), &wat_hook(CONFIGURE_OK, inspect, ""), options).unwrap()
}

/// A chain: `first` passes everything, `second` traps on bodies longer than 10 bytes; and
/// their digests.
fn chain(metrics: &Metrics) -> (Gateway, String, String) {
    let trap = format!(
        "(if (i32.gt_u (local.get $body_len) (i32.const 10)) (then unreachable)) {INSPECT_PASS}"
    );
    let (first, second) = (named("first", INSPECT_PASS), named("second", &trap));
    let digests = (first.digest().to_owned(), second.digest().to_owned());
    let gateway = echo_gateway(first)
        .then(second)
        .with_metrics(metrics.clone());
    (gateway, digests.0, digests.1)
}

fn line(window: &str, name: &str, payload: &str) -> String {
    format!(
        r#"{{"kind":"event","name":"{name}","source":{{"window":"{window}","webview":"{window}","origin":"x"}},"payload":{payload}}}"#
    )
}

const SECRET: &str = r#""a secret payload, long enough to trap""#;

/// Sends 5 short and 3 long messages from `main` (event `save`), and 2 short ones from `aux`
/// (event `load`).
fn send_known(gateway: &Gateway) {
    for _ in 0..5 {
        assert_eq!(
            send(gateway, &line("main", "save", "1")).decision,
            Decision::Pass
        );
    }
    for _ in 0..3 {
        let reply = send(gateway, &line("main", "save", SECRET));
        assert_eq!(reply.outcome.unwrap_err().code, "hook-trap");
    }
    for _ in 0..2 {
        assert_eq!(
            send(gateway, &line("aux", "load", "2")).decision,
            Decision::Pass
        );
    }
}

#[test]
fn metrics_count_every_hook_step_by_hook_window_name_verdict_and_code() {
    let metrics = Metrics::new();
    let (gateway, first, second) = chain(&metrics);
    send_known(&gateway);
    let count = |hook: &str, digest: &str, window: &str, name: &str, verdict, code: &str| {
        metrics.verdicts(&VerdictLabels::new(
            LatencyLabels::new(hook, digest, Kind::Event, name, window),
            verdict,
            code,
        ))
    };
    assert_eq!(
        count("first", &first, "main", "save", Decision::Pass, ""),
        8
    );
    assert_eq!(count("first", &first, "aux", "load", Decision::Pass, ""), 2);
    assert_eq!(
        count("second", &second, "main", "save", Decision::Pass, ""),
        5
    );
    assert_eq!(
        count(
            "second",
            &second,
            "main",
            "save",
            Decision::Reject,
            "hook-trap"
        ),
        3
    );
    assert_eq!(
        count("second", &second, "aux", "load", Decision::Pass, ""),
        2
    );
    assert_eq!(
        count(
            "second",
            &second,
            "aux",
            "load",
            Decision::Reject,
            "hook-trap"
        ),
        0
    );

    let text = metrics.encode();
    let expected = format!(
        r#"airlock_verdicts_total{{hook="second",digest="{second}",kind="event",name="save",window="main",verdict="reject",code="hook-trap"}} 3"#
    );
    assert!(text.lines().any(|l| l == expected), "{text}");
    let count = format!(
        r#"airlock_hook_seconds_count{{hook="second",digest="{second}",kind="event",name="save",window="main"}} 8"#
    );
    assert!(text.lines().any(|l| l == count), "{text}");
    assert!(text.ends_with("# EOF\n"));
    assert!(!text.contains("secret"), "payloads never appear: {text}");
    assert!(
        !text.contains("unreachable"),
        "reasons never appear: {text}"
    );
}

#[test]
fn metrics_series_limit_obeyed_every_name_keeps_its_own_series() {
    let metrics = Metrics::with_max_series(2);
    let gateway = echo_gateway(named("only", INSPECT_PASS)).with_metrics(metrics.clone());
    send(&gateway, &line("main", "a", "1"));
    send(&gateway, &line("main", "b", "1"));
    send(&gateway, &line("main", "a", "1"));
    let digest = gateway.hook().digest().to_owned();
    let count = |name: &str, window: &str| {
        metrics.verdicts(&VerdictLabels::new(
            LatencyLabels::new("only", &digest, Kind::Event, name, window),
            Decision::Pass,
            "",
        ))
    };
    assert_eq!((count("a", "main"), count("b", "main")), (2, 1));
    assert_eq!(count("other", "other"), 0);
}

#[test]
fn metrics_series_limit_crossed_counts_new_names_as_other() {
    let metrics = Metrics::with_max_series(2);
    let gateway = echo_gateway(named("only", INSPECT_PASS)).with_metrics(metrics.clone());
    for name in ["a", "b", "c", "d", "a"] {
        send(&gateway, &line("main", name, "1"));
    }
    let digest = gateway.hook().digest().to_owned();
    let count = |name: &str, window: &str| {
        metrics.verdicts(&VerdictLabels::new(
            LatencyLabels::new("only", &digest, Kind::Event, name, window),
            Decision::Pass,
            "",
        ))
    };
    assert_eq!((count("a", "main"), count("b", "main")), (2, 1));
    assert_eq!((count("c", "main"), count("d", "main")), (0, 0));
    assert_eq!(count("other", "other"), 2);
}

#[test]
fn a_quarantined_hook_is_counted_with_hook_quarantined() {
    let metrics = Metrics::new();
    let limits = airlock::HookLimits::default().with_quarantine_faults(Some(0));
    let options = HookOptions::default().with_name("trap").with_limits(limits);
    let hook = Hook::load(
        engine(),
        &wat_hook(CONFIGURE_OK, "unreachable", ""),
        options,
    )
    .unwrap();
    let digest = hook.digest().to_owned();
    let gateway = echo_gateway(hook).with_metrics(metrics.clone());
    for _ in 0..4 {
        send(&gateway, &line("main", "e", "1"));
    }
    let count = |code: &str| {
        metrics.verdicts(&VerdictLabels::new(
            LatencyLabels::new("trap", &digest, Kind::Event, "e", "main"),
            Decision::Reject,
            code,
        ))
    };
    assert_eq!((count("hook-trap"), count("hook-quarantined")), (1, 3));
}

async fn scrape(addr: SocketAddr) -> (String, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    tcp.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_endpoint_reports_counts_that_match_the_messages_sent() {
    let metrics = Metrics::new();
    let gateway = std::sync::Arc::new(chain(&metrics).0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(airlock::web::serve_metrics(listener, metrics.clone()));
    let sender = gateway.clone();
    tokio::task::spawn_blocking(move || send_known(&sender))
        .await
        .unwrap();
    let (head, body) = scrape(addr).await;
    server.abort();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: application/openmetrics-text"),
        "{head}"
    );
    let total = |hook: &str| -> u64 {
        body.lines()
            .filter(|l| {
                l.starts_with("airlock_verdicts_total{") && l.contains(&format!("hook=\"{hook}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!((total("first"), total("second")), (10, 10), "{body}");
    let traps: u64 = body
        .lines()
        .filter(|l| l.starts_with("airlock_verdicts_total{") && l.contains("code=\"hook-trap\""))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(traps, 3, "{body}");
}

#[test]
fn airlock_serve_serves_metrics_on_the_address_given() {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    use std::process::{Command, Stdio};
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(airlock_tests::airlock_bin())
        .current_dir(airlock_tests::root())
        .args(["serve", "--hook", "target/hooks/path-guard.rust.wasm"])
        .args([
            "--bind",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
            "--root",
        ])
        .arg(data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start airlock serve");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    // Stopped however the test ends.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Stop(child);
    let mut at = None;
    let mut line = String::new();
    while at.is_none() && stderr.read_line(&mut line).unwrap() > 0 {
        at = line
            .trim()
            .strip_prefix("airlock serve: metrics at http://")
            .and_then(|rest| rest.strip_suffix("/metrics"))
            .map(str::to_owned);
        line.clear();
    }
    let addr = at.expect("airlock serve names its metrics address");
    let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        tcp,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    tcp.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("content-type: application/openmetrics-text"),
        "{response}"
    );
    // Nothing was sent yet: no verdict or latency series (counts: the tests above), the
    // admission's two counters at zero, then the end marker.
    assert!(!response.contains('{'), "{response}");
    assert!(
        response.contains("\nairlock_hook_waits_total 0\n")
            && response.ends_with("\nairlock_hook_refusals_total 0\n# EOF\n"),
        "{response}"
    );
}
