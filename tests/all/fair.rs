//! Fair hook capacity between windows: a bounded number of messages in the hooks at once, a
//! bounded wait for one, and the next free call to the waiting window holding the fewest.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use airlock::{
    EngineConfig, Gateway, GatewayLimits, Hook, HookEngine, HookLimits, HookOptions, InstanceMode,
    Metrics, Reply, Request, SealConfig, Source,
};
use airlock_tests::{
    CONFIGURE_OK, INSPECT_PASS, echo_router, engine, root, run_airlock, wait_until, wat_hook,
};

/// A hook that spins until its time limit on a message whose name starts with `a` ("attack")
/// and passes every other message at once.
fn spins_on_attack() -> Vec<u8> {
    let inspect = format!(
        "(if (i32.eq (i32.load8_u (local.get $name)) (i32.const 97)) (then (loop $l (br $l))))
         {INSPECT_PASS}"
    );
    wat_hook(CONFIGURE_OK, &inspect, "")
}

/// The spinning hook on `engine`, with time limit `timeout` (no quarantine: the attack's
/// timeouts would otherwise shut the hook for everyone, which is another matter).
fn hook_on(engine: &HookEngine, timeout: Duration, mode: InstanceMode) -> Hook {
    let limits = HookLimits::default()
        .with_timeout(timeout)
        .with_quarantine_faults(None);
    let options = HookOptions::default().with_limits(limits).with_mode(mode);
    Hook::load(engine, &spins_on_attack(), options).unwrap()
}

/// A gateway in front of the echo core running the spinning hook (time limit `timeout`) with
/// at most `calls` messages in the hooks at once and a wait of at most `wait`, and its metrics.
fn gateway(calls: usize, wait: Duration, timeout: Duration) -> (Arc<Gateway>, Metrics) {
    let limits = GatewayLimits::default()
        .with_hook_calls(NonZeroUsize::new(calls))
        .with_hook_wait(wait);
    let hook = hook_on(engine(), timeout, InstanceMode::Fresh);
    let metrics = Metrics::new();
    let gateway = Gateway::with_config(hook, echo_router(), limits, SealConfig::default())
        .unwrap()
        .with_metrics(metrics.clone());
    (Arc::new(gateway), metrics)
}

/// `count` attacks from window `hog`, already in the hooks (or waiting) when it returns.
async fn hog_attacks(gateway: &Arc<Gateway>, count: usize) -> Vec<tokio::task::JoinHandle<Reply>> {
    let seen = || gateway.hook_calls_running() + gateway.hook_calls_waiting();
    let before = seen();
    let attacks = spawn_many(gateway, "hog", "attack", count);
    wait_until(|| seen() == before + count).await;
    attacks
}

/// One attack from each of `windows` at once (each running 500 ms: they all arrive while the
/// first ones run), at most 3 in the hooks: their codes, and how many waited.
async fn one_attack_from_each(windows: &[&str]) -> (Vec<String>, u64) {
    let (gateway, metrics) = gateway(3, Duration::from_secs(5), Duration::from_millis(500));
    let tasks: Vec<_> = windows
        .iter()
        .flat_map(|w| spawn_many(&gateway, w, "attack", 1))
        .collect();
    (codes(tasks).await, metrics.hook_waits())
}

/// Sends command `name` from `window` through `gateway`.
async fn send(gateway: &Gateway, window: &str, name: &str) -> Reply {
    let source = Source::new(window, window, "http://app");
    gateway
        .handle(source, Request::command(name, &serde_json::json!({})))
        .await
}

/// The rejection code of a reply, or `pass`.
fn code(reply: &Reply) -> String {
    match &reply.outcome {
        Ok(_) => "pass".to_owned(),
        Err(rejection) => rejection.code.clone(),
    }
}

/// Sends `count` messages named `name` from `window` at once, each on a task of its own.
fn spawn_many(
    gateway: &Arc<Gateway>,
    window: &str,
    name: &'static str,
    count: usize,
) -> Vec<tokio::task::JoinHandle<Reply>> {
    (0..count)
        .map(|_| {
            let (gateway, window) = (gateway.clone(), window.to_owned());
            tokio::spawn(async move { send(&gateway, &window, name).await })
        })
        .collect()
}

async fn codes(tasks: Vec<tokio::task::JoinHandle<Reply>>) -> Vec<String> {
    let mut codes = Vec::new();
    for task in tasks {
        codes.push(code(&task.await.unwrap()));
    }
    codes
}

/// `attackers` windows each keep 12 attacks (100 ms each) in flight through `calls` calls at
/// once, waits bounded at 1 s; meanwhile a quiet window sends 8 harmless messages one after
/// the other. Its codes and the attacks' codes.
async fn quiet_under_flood(calls: usize, attackers: usize) -> (Vec<String>, Vec<String>) {
    let (gateway, _) = gateway(calls, Duration::from_secs(1), Duration::from_millis(100));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood: Vec<_> = (0..attackers)
        .flat_map(|w| std::iter::repeat_n(w, 12))
        .map(|w| {
            let (gateway, stop) = (gateway.clone(), stop.clone());
            tokio::spawn(async move {
                let window = format!("attacker-{w}");
                let mut codes = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    codes.push(code(&send(&gateway, &window, "attack").await));
                }
                codes
            })
        })
        .collect();
    // Let the flood fill every call and the queues.
    wait_until(|| gateway.hook_calls_waiting() >= attackers * 12 - calls).await;
    let mut quiet = Vec::new();
    for _ in 0..8 {
        quiet.push(code(&send(&gateway, "quiet", "read").await));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut attacks = Vec::new();
    for attacker in flood {
        attacks.extend(attacker.await.unwrap());
    }
    (quiet, attacks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_window_is_served_while_other_windows_flood_the_hooks_with_slow_messages() {
    // 4 calls, 4 windows keeping 12 attacks each in flight: 44 queued, over a second of work
    // ahead of anything served in arrival order.
    let (quiet, attacks) = quiet_under_flood(4, 4).await;
    assert_eq!(quiet, ["pass"; 8], "the quiet window's messages");
    assert!(
        attacks
            .iter()
            .all(|c| c == "hook-timeout" || c == "hook-unavailable"),
        "attacks time out or wait too long: {attacks:?}"
    );
    assert!(
        attacks.iter().any(|c| c == "hook-unavailable"),
        "the flood outgrew its share, so some attacks waited past their bound"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_window_is_served_while_more_windows_than_calls_flood_the_hooks() {
    // 2 calls, 4 flooding windows: some flooder always holds as few calls as the quiet window
    // (none), and its first waiter is always older.
    let (quiet, _) = quiet_under_flood(2, 4).await;
    assert_eq!(quiet, ["pass"; 8], "the quiet window's messages");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_waiting_within_its_bound_is_served_when_a_call_ends() {
    let (gateway, metrics) = gateway(1, Duration::from_secs(5), Duration::from_secs(1));
    let attack = hog_attacks(&gateway, 1).await;
    let reply = send(&gateway, "quiet", "read").await;
    assert_eq!(code(&reply), "pass");
    assert_eq!(codes(attack).await, ["hook-timeout"]);
    assert_eq!((metrics.hook_waits(), metrics.hook_refusals()), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_past_its_wait_bound_gets_hook_unavailable_naming_itself() {
    let (gateway, metrics) = gateway(1, Duration::from_millis(50), Duration::from_secs(1));
    let attack = hog_attacks(&gateway, 1).await;
    let late = send(&gateway, "late", "read").await;
    let again = send(&gateway, "hog", "attack").await;
    for (reply, window, held) in [(&late, "late", 0), (&again, "hog", 1)] {
        let rejection = reply.outcome.as_ref().unwrap_err();
        assert_eq!(rejection.code, "hook-unavailable");
        let reason = &rejection.reason;
        assert!(
            reason.contains(&format!("window {window:?} waited")),
            "{reason}"
        );
        assert!(reason.contains("all 1 are busy"), "{reason}");
        assert!(reason.contains(&format!("{held} of them")), "{reason}");
        let waited: u64 = reason
            .split(" waited ")
            .nth(1)
            .and_then(|rest| rest.split(" ms").next())
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("no wait in {reason}"));
        assert!(waited >= 50, "{reason}");
        assert!(reply.hook_digest.is_none(), "no hook ran");
    }
    assert_eq!(codes(attack).await, ["hook-timeout"]);
    assert_eq!((metrics.hook_waits(), metrics.hook_refusals()), (2, 2));
    assert!(metrics.encode().contains("airlock_hook_refusals_total 2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_many_messages_as_the_hook_calls_limit_run_at_once_without_waiting() {
    let (codes, waits) = one_attack_from_each(&["a", "b", "c"]).await;
    assert_eq!(codes, ["hook-timeout"; 3]);
    assert_eq!(waits, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_past_the_hook_calls_limit_waits_for_a_call() {
    let (codes, waits) = one_attack_from_each(&["a", "b", "c", "d"]).await;
    assert_eq!(codes, ["hook-timeout"; 4]);
    assert_eq!(waits, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_freed_call_goes_to_the_waiting_window_holding_the_fewest() {
    let (gateway, _) = gateway(2, Duration::from_secs(5), Duration::from_secs(1));
    // `hog` holds both calls and queues two more; `quiet` queues one after them.
    let hog = hog_attacks(&gateway, 2).await;
    let hog_queued = hog_attacks(&gateway, 2).await;
    let quiet = send(&gateway, "quiet", "read").await;
    assert_eq!(code(&quiet), "pass");
    // The quiet window took the first call to end; in arrival order it would have run only
    // once the hog's queued attacks had run to their time limit.
    assert!(
        hog_queued.iter().all(|task| !task.is_finished()),
        "the quiet window waited behind the hog's queue"
    );
    assert_eq!(codes(hog).await, ["hook-timeout"; 2]);
    assert_eq!(codes(hog_queued).await, ["hook-timeout"; 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_abandoned_while_waiting_gives_its_turn_on() {
    let (gateway, metrics) = gateway(1, Duration::from_secs(5), Duration::from_secs(1));
    let attack = hog_attacks(&gateway, 1).await;
    // Given up by its caller (a closed connection) while waiting.
    let abandoned =
        tokio::time::timeout(Duration::from_millis(20), send(&gateway, "gone", "read")).await;
    assert!(abandoned.is_err(), "it was still waiting");
    assert_eq!(gateway.hook_calls_waiting(), 0, "it left the queue");
    assert_eq!(code(&send(&gateway, "next", "read").await), "pass");
    assert_eq!(codes(attack).await, ["hook-timeout"]);
    assert_eq!(
        (gateway.hook_calls_running(), gateway.hook_calls_waiting()),
        (0, 0),
        "every call is free again"
    );
    assert_eq!(metrics.hook_waits(), 1, "only `next` waited to the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_never_exhausts_the_instance_pool_with_the_default_hook_calls() {
    // A pool of 4 instances; the flood is 12 attacks at once, each holding an instance 100 ms.
    let engine = HookEngine::new(EngineConfig::default().with_max_instances(4)).unwrap();
    let hook = hook_on(&engine, Duration::from_millis(100), InstanceMode::Fresh);
    let gateway = Arc::new(airlock::Gateway::new(hook, echo_router()).unwrap());
    assert_eq!(gateway.hook_calls(), 3, "the pool less one for a reload");
    let flood = spawn_many(&gateway, "hog", "attack", 12);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let quiet = send(&gateway, "quiet", "read").await;
    assert_eq!(code(&quiet), "pass", "{:?}", quiet.outcome);
    let codes = codes(flood).await;
    assert!(
        codes.iter().all(|c| c == "hook-timeout"),
        "no attack found the pool empty: {codes:?}"
    );
}

#[test]
fn the_default_hook_calls_leave_room_for_the_warm_instances_of_reused_hooks() {
    let engine = HookEngine::new(EngineConfig::default().with_max_instances(16)).unwrap();
    let timeout = Duration::from_millis(100);
    let fresh = Gateway::new(
        hook_on(&engine, timeout, InstanceMode::Fresh),
        echo_router(),
    )
    .unwrap();
    assert_eq!(fresh.hook_calls(), 15);
    let reused = Gateway::new(
        hook_on(&engine, timeout, InstanceMode::Reuse { max_idle: 4 }),
        echo_router(),
    )
    .unwrap();
    assert_eq!(reused.hook_calls(), 11);
    let chained = reused.then(hook_on(
        &engine,
        timeout,
        InstanceMode::Reuse { max_idle: 2 },
    ));
    assert_eq!(chained.hook_calls(), 9);
    let set = Gateway::with_config(
        hook_on(&engine, timeout, InstanceMode::Fresh),
        echo_router(),
        GatewayLimits::default().with_hook_calls(NonZeroUsize::new(2)),
        SealConfig::default(),
    )
    .unwrap();
    assert_eq!(set.hook_calls(), 2);
}

#[test]
fn serve_refuses_a_bad_hook_calls_or_hook_wait_naming_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let hook = root().join("host/hooks/pass-all.wasm");
    for (flag, value, says) in [
        ("--hook-calls", "0", "--hook-calls 0"),
        ("--hook-calls", "257", "--hook-calls 257 is more than"),
        ("--hook-wait-ms", "60001", "--hook-wait-ms 60001 is over"),
        ("--hook-wait-ms", "-1", "-1"),
    ] {
        let args = [
            "serve",
            "--no-cache",
            "--bind",
            "127.0.0.1:0",
            "--root",
            data.to_str().unwrap(),
            "--hook",
            hook.to_str().unwrap(),
            flag,
            value,
        ];
        let output = run_airlock(&args, dir.path(), "");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{flag} {value} was accepted");
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
    }
    assert!(
        !data.exists(),
        "nothing was set up before the flags were checked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_hook_flood_never_exhausts_the_pool_with_the_default_hook_calls() {
    // CPython makes about 14 core instances per hook instance: 4 of the pool's shares.
    let config = EngineConfig::default().with_max_instances(16);
    let engine = HookEngine::with_cache(config, airlock_tests::hook_cache()).unwrap();
    let limits = HookLimits::default().with_quarantine_faults(None);
    let options = HookOptions::default()
        .with_limits(limits)
        .with_mode(InstanceMode::Reuse { max_idle: 1 });
    let bytes = airlock_tests::built_hook("path-guard", "python");
    let hook = Hook::load(&engine, &bytes, options).unwrap();
    assert_eq!(hook.pool_share(), 4);
    let gateway = Arc::new(Gateway::new(hook, echo_router()).unwrap());
    assert_eq!(
        gateway.hook_calls(),
        2,
        "(16 - 1 warm x 4 - 4 for a reload) / 4"
    );
    // Args whose 200 000 top-level keys, one escaped, run path-guard past its time limit.
    let keys: String = (0..200_000).map(|i| format!(r#","k{i}":0"#)).collect();
    let args: serde_json::Value =
        serde_json::from_str(&format!(r#"{{"path":"a","\u0078":1{keys}}}"#)).unwrap();
    let flood: Vec<_> = (0..6)
        .map(|_| {
            let (gateway, args) = (gateway.clone(), args.clone());
            tokio::spawn(async move {
                let source = Source::new("hog", "hog", "http://app");
                code(
                    &gateway
                        .handle(source, Request::command("fs_read", &args))
                        .await,
                )
            })
        })
        .collect();
    let mut codes = Vec::new();
    for task in flood {
        codes.push(task.await.unwrap());
    }
    assert!(
        codes.iter().all(|c| c == "hook-timeout"),
        "no attack found the pool empty: {codes:?}"
    );
}
