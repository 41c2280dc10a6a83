//! Instance modes, many messages at once, and swapping the hook while messages are in flight.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock::{
    Decision, Gateway, GatewayLimits, Hook, HookLimits, HookOptions, HookWatcher, InstanceMode,
    Request, Response, Router, SealConfig, Source,
};
use airlock_tests::{CONFIGURE_OK, INSPECT_PASS, echo_gateway, engine, send, wat_hook};

const GOOD: &str = r#"{"kind":"event","name":"e","payload":1}"#;

/// A hook that counts the messages its instance has seen and traps on the 1001st.
fn thousand_then_trap() -> Vec<u8> {
    let inspect = format!(
        "(global.set $seen (i32.add (global.get $seen) (i32.const 1)))
         (if (i32.gt_u (global.get $seen) (i32.const 1000)) (then unreachable)) {INSPECT_PASS}"
    );
    wat_hook(
        CONFIGURE_OK,
        &inspect,
        "(global $seen (mut i32) (i32.const 0))",
    )
}

fn reuse_options() -> HookOptions {
    HookOptions::default().with_mode(InstanceMode::Reuse { max_idle: 1 })
}

#[test]
fn a_reused_instance_that_faults_after_a_thousand_messages_is_replaced_by_a_fresh_one() {
    let hook = Hook::load(engine(), &thousand_then_trap(), reuse_options()).unwrap();
    let gateway = echo_gateway(hook);
    // The trial instance from loading configured once and is reused: 1000 passes, then a trap.
    for n in 1..=1000 {
        assert_eq!(send(&gateway, GOOD).decision, Decision::Pass, "message {n}");
    }
    let rejection = send(&gateway, GOOD).outcome.unwrap_err();
    assert_eq!(rejection.code, "hook-trap");
    // The trapped instance was discarded: the next message gets a new one, with a new count.
    for _ in 0..10 {
        assert_eq!(send(&gateway, GOOD).decision, Decision::Pass);
    }
}

#[test]
fn fresh_mode_never_lets_the_counter_reach_a_thousand() {
    let hook = Hook::load(engine(), &thousand_then_trap(), HookOptions::default()).unwrap();
    let gateway = echo_gateway(hook);
    for _ in 0..1100 {
        assert_eq!(send(&gateway, GOOD).decision, Decision::Pass);
    }
}

/// A hook that grows its memory to 6 MiB, traps if any of its marks from an earlier message is
/// there (in the first page, inside the 4 MiB kept resident between instances, and past it), and
/// then writes them.
fn marks_memory() -> Vec<u8> {
    let marks = [100 << 10, 2 << 20, 5 << 20];
    let seen = marks
        .iter()
        .map(|at| format!("(i32.load (i32.const {at}))"))
        .reduce(|a, b| format!("(i32.or {a} {b})"))
        .unwrap();
    let write: String = marks
        .iter()
        .map(|at| format!("(i32.store (i32.const {at}) (i32.const 1))"))
        .collect();
    let inspect = format!(
        "(if (i32.lt_u (memory.size) (i32.const 96))
           (then (drop (memory.grow (i32.sub (i32.const 96) (memory.size))))))
         (if {seen} (then unreachable))
         {write} {INSPECT_PASS}"
    );
    wat_hook(CONFIGURE_OK, &inspect, "")
}

#[test]
fn fresh_instances_never_see_what_an_earlier_one_wrote_anywhere_in_its_memory() {
    let hook = Hook::load(engine(), &marks_memory(), HookOptions::default()).unwrap();
    let gateway = echo_gateway(hook);
    for n in 1..=50 {
        let reply = send(&gateway, GOOD);
        assert_eq!(
            reply.decision,
            Decision::Pass,
            "message {n}: {:?}",
            reply.outcome
        );
    }
}

#[test]
fn a_reused_instance_sees_what_it_wrote_to_its_memory_before() {
    let hook = Hook::load(engine(), &marks_memory(), reuse_options()).unwrap();
    let gateway = echo_gateway(hook);
    assert_eq!(send(&gateway, GOOD).decision, Decision::Pass);
    let rejection = send(&gateway, GOOD).outcome.unwrap_err();
    assert_eq!(rejection.code, "hook-trap");
}

#[test]
fn a_timed_out_reused_instance_is_discarded() {
    // Loops forever once its instance has seen 2 messages.
    let inspect = format!(
        "(global.set $seen (i32.add (global.get $seen) (i32.const 1)))
         (if (i32.gt_u (global.get $seen) (i32.const 2)) (then (loop $l (br $l)))) {INSPECT_PASS}"
    );
    let options =
        reuse_options().with_limits(HookLimits::default().with_timeout(Duration::from_millis(100)));
    let bytes = wat_hook(
        CONFIGURE_OK,
        &inspect,
        "(global $seen (mut i32) (i32.const 0))",
    );
    let gateway = echo_gateway(Hook::load(engine(), &bytes, options).unwrap());
    // Load's trial instance is the reused one: messages 1 and 2 pass, 3 times out.
    assert_eq!(send(&gateway, GOOD).decision, Decision::Pass);
    assert_eq!(send(&gateway, GOOD).decision, Decision::Pass);
    assert_eq!(
        send(&gateway, GOOD).outcome.unwrap_err().code,
        "hook-timeout"
    );
    assert_eq!(
        send(&gateway, GOOD).decision,
        Decision::Pass,
        "a new instance serves"
    );
}

/// Decides by body length: `len % 5` 0 pass, 1 reject, 2 replace (rename), 3 trap, 4 pass; a
/// body of exactly 7 bytes loops until the time limit.
fn mixed_hook() -> Vec<u8> {
    let inspect = "
      (local $r i32)
      (if (i32.eq (local.get $body_len) (i32.const 7)) (then (loop $l (br $l))))
      (local.set $r (i32.rem_u (local.get $body_len) (i32.const 5)))
      (if (i32.eq (local.get $r) (i32.const 3)) (then unreachable))
      (if (i32.eq (local.get $r) (i32.const 1)) (then
        (i32.store8 (i32.const 16) (i32.const 2))
        (i32.store (i32.const 20) (i32.const 256)) (i32.store (i32.const 24) (i32.const 6))
        (i32.store (i32.const 28) (i32.const 256)) (i32.store (i32.const 32) (i32.const 6))
        (return (i32.const 16))))
      (if (i32.eq (local.get $r) (i32.const 2)) (then
        (i32.store8 (i32.const 16) (i32.const 1))
        (i32.store8 (i32.const 20) (i32.const 1))
        (i32.store (i32.const 24) (i32.const 272)) (i32.store (i32.const 28) (i32.const 7))
        (i32.store8 (i32.const 32) (i32.const 0)) (i32.store8 (i32.const 44) (i32.const 0))
        (return (i32.const 16))))
      (i32.store8 (i32.const 16) (i32.const 0)) (i32.const 16)";
    let data = r#"(data (i32.const 256) "denied") (data (i32.const 272) "renamed")"#;
    wat_hook(CONFIGURE_OK, inspect, data)
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Expect {
    Pass,
    Reject,
    Replace,
    Trap,
    Timeout,
}

fn expectation(body_len: usize) -> Expect {
    match (body_len, body_len % 5) {
        (7, _) => Expect::Timeout,
        (_, 1) => Expect::Reject,
        (_, 2) => Expect::Replace,
        (_, 3) => Expect::Trap,
        _ => Expect::Pass,
    }
}

#[test]
fn tens_of_thousands_of_messages_from_many_tasks_each_get_exactly_one_right_answer() {
    const TASKS: usize = 64;
    const PER_TASK: usize = 400;
    let delivered: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let seen = delivered.clone();
    let router = Router::new().fallback(move |message| {
        let airlock::Body::Json(body) = &message.body else {
            unreachable!("JSON bodies only")
        };
        *seen.lock().unwrap().entry(body.clone()).or_default() += 1;
        let name = message.name.clone();
        async move { Response::json(&name) }
    });
    // Faults are part of the mix on purpose: no quarantine, every message gets the hook's answer.
    let options = HookOptions::default().with_limits(
        HookLimits::default()
            .with_timeout(Duration::from_millis(50))
            .with_quarantine_faults(None),
    );
    let hook = Hook::load(engine(), &mixed_hook(), options).unwrap();
    let gateway = Arc::new(
        Gateway::with_config(
            hook,
            router,
            GatewayLimits::default(),
            SealConfig::default(),
        )
        .unwrap(),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let answers = runtime.block_on(async {
        let mut tasks = Vec::new();
        for task in 0..TASKS {
            let gateway = gateway.clone();
            tasks.push(tokio::spawn(async move {
                let mut answers = Vec::new();
                for n in 0..PER_TASK {
                    // A unique JSON string body; its length picks the verdict. Every 40th message
                    // of every 8th task is the 7-byte one that times out.
                    let body = match (task % 8, n % 40) {
                        (0, 0) => format!("\"{:05}\"", task * 1000 + n),
                        _ => format!("\"{task}-{n}-{}\"", "x".repeat((task * 7 + n) % 11)),
                    };
                    let request =
                        Request::new(airlock::Kind::Event, "e", airlock::Body::Json(body.clone()));
                    let source = Source::new("main", "main", "tauri://localhost");
                    answers.push((body, gateway.handle(source, request).await));
                }
                answers
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    assert_eq!(answers.len(), TASKS * PER_TASK);
    let delivered = delivered.lock().unwrap();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for (body, reply) in &answers {
        let expect = expectation(body.len());
        let got = match (&reply.decision, &reply.outcome) {
            (Decision::Pass, Ok(_)) => Expect::Pass,
            (Decision::Replace, Ok(Response::Json(name))) if name.get() == r#""renamed""# => {
                Expect::Replace
            }
            (Decision::Reject, Err(r)) if r.code == "denied" => Expect::Reject,
            (Decision::Reject, Err(r)) if r.code == "hook-trap" => Expect::Trap,
            (Decision::Reject, Err(r)) if r.code == "hook-timeout" => Expect::Timeout,
            other => panic!("{body}: unexpected {other:?}"),
        };
        assert_eq!(got, expect, "{body}");
        *counts.entry(format!("{got:?}").leak()).or_default() += 1;
        let times = delivered.get(body).copied().unwrap_or(0);
        match got {
            Expect::Pass | Expect::Replace => {
                assert_eq!(times, 1, "{body} delivered {times} times")
            }
            _ => assert_eq!(times, 0, "{body} was rejected but delivered"),
        }
    }
    assert_eq!(
        delivered.values().sum::<usize>(),
        counts["Pass"] + counts["Replace"]
    );
    assert!(
        counts.len() == 5,
        "every kind of answer occurred: {counts:?}"
    );
    let ids: std::collections::HashSet<u64> = answers.iter().map(|(_, r)| r.id).collect();
    assert_eq!(ids.len(), answers.len(), "ids are unique");
}

#[test]
fn a_slow_hook_on_one_message_does_not_stall_the_others_even_on_one_thread() {
    let options = HookOptions::default()
        .with_limits(HookLimits::default().with_timeout(Duration::from_secs(2)));
    let hook = Hook::load(engine(), &mixed_hook(), options).unwrap();
    let gateway = Arc::new(echo_gateway(hook));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let finished = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        let slow_gateway = gateway.clone();
        let slow_finished = finished.clone();
        let slow = tokio::spawn(async move {
            let request = Request::new(
                airlock::Kind::Event,
                "e",
                airlock::Body::Json("\"slow!\"".into()),
            );
            let reply = slow_gateway
                .handle(Source::new("main", "main", "x"), request)
                .await;
            (reply, slow_finished.load(Ordering::SeqCst))
        });
        tokio::task::yield_now().await;
        let start = Instant::now();
        let fast_gateway = gateway.clone();
        let fast_finished = finished.clone();
        let fast = tokio::spawn(async move {
            for _ in 0..100 {
                let body = airlock::Body::Json("1234".into());
                let request = Request::new(airlock::Kind::Event, "e", body);
                let reply = fast_gateway
                    .handle(Source::new("main", "main", "x"), request)
                    .await;
                assert_eq!(reply.decision, Decision::Pass);
                fast_finished.fetch_add(1, Ordering::SeqCst);
            }
        });
        fast.await.unwrap();
        let fast_time = start.elapsed();
        let (reply, fast_done_before_slow) = slow.await.unwrap();
        assert_eq!(reply.outcome.unwrap_err().code, "hook-timeout");
        assert_eq!(
            fast_done_before_slow, 100,
            "the fast messages finished while the slow one ran"
        );
        assert!(fast_time < Duration::from_secs(2), "{fast_time:?}");
    });
}

/// The reply to a message whose hook (about 30 ms of work, under `timeout`) was polled once, so
/// that it yielded at its first epoch tick, then left unpolled for `wait`, then finished: a hook
/// on a busy executor.
async fn resumed_after(timeout: Duration, wait: Duration) -> airlock::Reply {
    use futures_util::FutureExt as _;
    let options = HookOptions::default().with_limits(HookLimits::default().with_timeout(timeout));
    let gateway = echo_gateway(Hook::load(engine(), &slow_pass(30), options).unwrap());
    let request = Request::new(airlock::Kind::Event, "e", airlock::Body::Json("1".into()));
    let mut call = Box::pin(gateway.handle(Source::new("main", "main", "x"), request));
    assert!(
        call.as_mut().now_or_never().is_none(),
        "the hook yielded at its first tick"
    );
    std::thread::sleep(wait);
    call.await
}

#[tokio::test]
async fn a_hook_left_waiting_for_its_turn_past_its_time_limit_is_not_timed_out_for_the_wait() {
    let reply = resumed_after(Duration::from_millis(300), Duration::from_millis(900)).await;
    assert_eq!(reply.decision, Decision::Pass, "{:?}", reply.outcome);
}

#[tokio::test]
async fn a_call_that_lasts_ten_times_its_time_limit_by_the_wall_clock_is_timed_out() {
    let reply = resumed_after(Duration::from_millis(300), Duration::from_millis(3200)).await;
    assert_eq!(reply.outcome.unwrap_err().code, "hook-timeout");
}

/// Spins about `ms` milliseconds, then passes.
fn slow_pass(ms: u64) -> Vec<u8> {
    let inspect = format!("(call $wait) {INSPECT_PASS}");
    // Spin on a counter: ~1e6 iterations per ms is far more than needed, so loop on time via
    // an outer count instead: 50 000 iterations × ms.
    let extra = format!(
        "(func $wait (local $i i64) (loop $l (local.set $i (i64.add (local.get $i) (i64.const 1)))
           (br_if $l (i64.lt_u (local.get $i) (i64.const {})))))",
        ms * 300_000
    );
    wat_hook(CONFIGURE_OK, &inspect, &extra)
}

fn reject_all() -> Vec<u8> {
    let inspect = "(i32.store8 (i32.const 16) (i32.const 2))
        (i32.store (i32.const 20) (i32.const 256)) (i32.store (i32.const 24) (i32.const 6))
        (i32.store (i32.const 28) (i32.const 256)) (i32.store (i32.const 32) (i32.const 6))
        (i32.const 16)";
    wat_hook(CONFIGURE_OK, inspect, r#"(data (i32.const 256) "closed")"#)
}

#[test]
fn reloading_lets_in_flight_messages_finish_on_the_old_hook_and_sends_new_ones_to_the_new() {
    let options = HookOptions::default()
        .with_limits(HookLimits::default().with_timeout(Duration::from_secs(5)));
    let old = Hook::load(engine(), &slow_pass(300), options).unwrap();
    let old_digest = old.digest().to_owned();
    let gateway = Arc::new(echo_gateway(old));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let in_flight = {
        let gateway = gateway.clone();
        runtime.spawn(async move {
            let (source, request) = airlock::jsonl::parse_line(GOOD).unwrap();
            gateway.handle(source, request).await
        })
    };
    // Wait until the message is inside the old hook (its `handle` holds a clone of it).
    let old = gateway.hook();
    let start = Instant::now();
    while Arc::strong_count(&old) < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the message never started"
        );
        std::thread::yield_now();
    }
    drop(old);
    let new_digest = gateway.reload(&reject_all()).unwrap();
    let after = send(&gateway, GOOD);
    assert_eq!(after.hook_digest.as_deref(), Some(&*new_digest));
    assert_eq!(after.outcome.unwrap_err().code, "closed");

    let before = runtime.block_on(in_flight).unwrap();
    assert_eq!(before.hook_digest.as_deref(), Some(old_digest.as_str()));
    assert_eq!(
        before.decision,
        Decision::Pass,
        "the in-flight message finished on the old hook"
    );
}

#[test]
fn a_reload_that_fails_to_load_or_configure_leaves_the_old_hook_serving() {
    let gateway =
        echo_gateway(Hook::load(engine(), &reject_all(), HookOptions::default()).unwrap());
    let digest = gateway.hook().digest().to_owned();
    assert!(matches!(
        gateway.reload(b"garbage"),
        Err(airlock::HookError::Compile(_))
    ));
    let refuses = wat_hook("unreachable", INSPECT_PASS, "");
    assert!(matches!(
        gateway.reload(&refuses),
        Err(airlock::HookError::ConfigFault(_))
    ));
    assert_eq!(gateway.hook().digest(), digest);
    assert_eq!(send(&gateway, GOOD).outcome.unwrap_err().code, "closed");
}

#[test]
fn a_watched_hook_file_is_reloaded_when_it_changes_and_a_broken_one_is_reported() {
    let path = std::env::temp_dir().join(format!("airlock-watch-{}.wasm", std::process::id()));
    std::fs::write(&path, reject_all()).unwrap();
    let hook = Hook::load_file(engine(), &path, HookOptions::default()).unwrap();
    let gateway = Arc::new(echo_gateway(hook));
    let watcher = HookWatcher::spawn(&gateway, &path, Duration::from_millis(10));
    let wait_for = |done: &dyn Fn() -> bool| {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the watcher never noticed"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    std::fs::write(&path, wat_hook(CONFIGURE_OK, INSPECT_PASS, "")).unwrap();
    wait_for(&|| watcher.status().reloads == 1);
    assert_eq!(send(&gateway, GOOD).decision, Decision::Pass);
    let digest = gateway.hook().digest().to_owned();

    std::fs::write(&path, b"not a hook at all").unwrap();
    wait_for(&|| watcher.status().last_error.is_some());
    assert!(
        watcher
            .status()
            .last_error
            .unwrap()
            .contains("previous hook keeps serving")
    );
    assert_eq!(gateway.hook().digest(), digest);
    assert_eq!(send(&gateway, GOOD).decision, Decision::Pass);
    std::fs::remove_file(path).unwrap();
}

#[test]
fn a_refused_memory_grow_on_one_message_does_not_taint_the_next_in_reuse_mode() {
    // Message 1: a grow past the limit is refused and the hook carries on; message 2: it traps.
    let inspect = format!(
        "(global.set $seen (i32.add (global.get $seen) (i32.const 1)))
         (if (i32.eq (global.get $seen) (i32.const 1))
           (then (drop (memory.grow (i32.const 60000)))))
         (if (i32.eq (global.get $seen) (i32.const 2)) (then unreachable)) {INSPECT_PASS}"
    );
    let bytes = wat_hook(
        CONFIGURE_OK,
        &inspect,
        "(global $seen (mut i32) (i32.const 0))",
    );
    let gateway = echo_gateway(Hook::load(engine(), &bytes, reuse_options()).unwrap());
    assert_eq!(send(&gateway, GOOD).decision, Decision::Pass);
    assert_eq!(send(&gateway, GOOD).outcome.unwrap_err().code, "hook-trap");
}
