//! Hooks that import WASI (Rust's std on wasm32-wasip2 here) get stubs that reach nothing.

use airlock::{Decision, Hook, HookLimits, HookOptions};
use airlock_tests::{built_hook, echo_gateway, engine, send};

const PING: &str = r#"{"kind":"event","name":"ping","payload":{"a":1}}"#;

#[test]
fn a_wasi_hook_loads_and_finds_no_environment_files_network_or_clock() {
    let hook = Hook::load(
        engine(),
        &built_hook("wasi-probe", "rust"),
        HookOptions::default(),
    );
    let gateway = echo_gateway(hook.unwrap());
    for _ in 0..3 {
        let reply = send(&gateway, PING);
        assert_eq!(reply.decision, Decision::Pass, "{:?}", reply.outcome);
    }
}

#[test]
fn a_wasi_hooks_stdout_counts_against_its_log_budget() {
    // The probe prints `wasi-probe saw 7 bytes of "ping"` (32 bytes) per message.
    let fits = HookOptions::default().with_limits(HookLimits::default().with_log_bytes(32));
    let hook = Hook::load(engine(), &built_hook("wasi-probe", "rust"), fits).unwrap();
    assert_eq!(send(&echo_gateway(hook), PING).decision, Decision::Pass);

    let too_small = HookOptions::default().with_limits(HookLimits::default().with_log_bytes(31));
    let hook = Hook::load(engine(), &built_hook("wasi-probe", "rust"), too_small).unwrap();
    assert_eq!(
        send(&echo_gateway(hook), PING).outcome.unwrap_err().code,
        "hook-log"
    );
}
