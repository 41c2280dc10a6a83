//! Hostile hooks fail closed: every fault is a `hook-*` rejection, the host stays up, and the
//! next message is served by a fresh, healthy instance.

use std::time::{Duration, Instant};

use airlock::{Decision, Hook, HookError, HookLimits, HookOptions};
use airlock_tests::{CONFIGURE_OK, INSPECT_PASS, delivered, echo_gateway, engine, send, wat_hook};

/// A message the hostile hooks below misbehave on (its body is longer than 10 bytes)...
const BAD: &str = r#"{"kind":"event","name":"e","payload":"trigger the fault"}"#;
/// ...and one they pass.
const GOOD: &str = r#"{"kind":"event","name":"e","payload":1}"#;

/// `inspect` that runs `fault` when the body is longer than 10 bytes, and passes otherwise.
fn faulting_on_long_bodies(fault: &str) -> String {
    format!("(if (i32.gt_u (local.get $body_len) (i32.const 10)) (then {fault})) {INSPECT_PASS}")
}

fn load(
    configure: &str,
    inspect: &str,
    extra: &str,
    limits: HookLimits,
) -> Result<Hook, HookError> {
    let options = HookOptions::default().with_limits(limits);
    Hook::load(engine(), &wat_hook(configure, inspect, extra), options)
}

fn quick_limits() -> HookLimits {
    HookLimits::default().with_timeout(Duration::from_millis(50))
}

/// The fault gives `code`, and the next message passes.
fn assert_fails_closed(fault: &str, extra: &str, code: &str) {
    let hook = load(
        CONFIGURE_OK,
        &faulting_on_long_bodies(fault),
        extra,
        quick_limits(),
    )
    .unwrap();
    let gateway = echo_gateway(hook);
    for _ in 0..3 {
        let reply = send(&gateway, BAD);
        assert_eq!(reply.decision, Decision::Reject);
        let rejection = reply.outcome.as_ref().unwrap_err();
        assert_eq!(rejection.code, code, "{}", rejection.reason);
        assert_eq!(
            send(&gateway, GOOD).decision,
            Decision::Pass,
            "the next message is served"
        );
    }
}

#[test]
fn a_trapping_hook_rejects_with_hook_trap() {
    assert_fails_closed("unreachable", "", "hook-trap");
}

#[test]
fn an_out_of_bounds_access_rejects_with_hook_trap() {
    assert_fails_closed("(drop (i32.load (i32.const -4)))", "", "hook-trap");
}

#[test]
fn time_limit_obeyed() {
    // A loop of 100 000 iterations finishes far inside 50 ms.
    let spin = "(local $i i32) (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br_if $l (i32.lt_u (local.get $i) (i32.const 100000))))";
    let inspect = format!("{spin} {INSPECT_PASS}");
    let hook = load(CONFIGURE_OK, &inspect, "", quick_limits()).unwrap();
    assert_eq!(send(&echo_gateway(hook), BAD).decision, Decision::Pass);
}

#[test]
fn time_limit_crossed_rejects_with_hook_timeout_within_a_small_margin() {
    let hook = load(
        CONFIGURE_OK,
        &faulting_on_long_bodies("(loop $l (br $l))"),
        "",
        quick_limits(),
    )
    .unwrap();
    let gateway = echo_gateway(hook);
    let start = Instant::now();
    let reply = send(&gateway, BAD);
    let elapsed = start.elapsed();
    assert_eq!(delivered(&reply), Err("hook-timeout".into()));
    assert!(
        elapsed < Duration::from_secs(2),
        "an endless loop was stopped ({elapsed:?})"
    );
    assert!(reply.outcome.unwrap_err().reason.contains("50 ms"));
    assert_eq!(send(&gateway, GOOD).decision, Decision::Pass);
}

#[test]
fn memory_limit_obeyed() {
    // Growing to 2 MiB in total stays under a 4 MiB limit.
    let grow = "(drop (memory.grow (i32.const 31)))";
    let limits = quick_limits().with_memory_bytes(4 << 20);
    let hook = load(CONFIGURE_OK, &format!("{grow} {INSPECT_PASS}"), "", limits).unwrap();
    assert_eq!(send(&echo_gateway(hook), BAD).decision, Decision::Pass);
}

#[test]
fn memory_limit_crossed_rejects_with_hook_memory() {
    let bomb =
        "(loop $l (br_if $l (i32.ne (memory.grow (i32.const 16)) (i32.const -1)))) unreachable";
    assert_fails_closed(bomb, "", "hook-memory");
}

#[test]
fn unbounded_recursion_rejects_with_hook_stack() {
    let extra = "(func $deeper (param i32) (result i32) (call $deeper (i32.add (local.get 0) (i32.const 1))))";
    assert_fails_closed("(drop (call $deeper (i32.const 0)))", extra, "hook-stack");
}

#[test]
fn a_verdict_with_an_unknown_case_rejects_with_hook_output() {
    let garbage = "(i32.store8 (i32.const 16) (i32.const 9)) (return (i32.const 16))";
    assert_fails_closed(garbage, "", "hook-output");
}

#[test]
fn a_verdict_pointing_outside_memory_rejects_with_hook_output() {
    assert_fails_closed("(return (i32.const -8))", "", "hook-output");
}

#[test]
fn a_rejection_code_that_is_malformed_or_claims_the_host_prefix_is_hook_output() {
    for code in ["BAD CODE", "hook-trap", ""] {
        let inspect = format!(
            "(i32.store8 (i32.const 16) (i32.const 2))
             (i32.store (i32.const 20) (i32.const 256)) (i32.store (i32.const 24) (i32.const {}))
             (i32.store (i32.const 28) (i32.const 256)) (i32.store (i32.const 32) (i32.const 0))
             (i32.const 16)",
            code.len()
        );
        let extra = format!("(data (i32.const 256) {code:?})");
        let hook = load(CONFIGURE_OK, &inspect, &extra, quick_limits()).unwrap();
        assert_eq!(
            delivered(&send(&echo_gateway(hook), GOOD)),
            Err("hook-output".into()),
            "{code:?}"
        );
    }
}

#[test]
fn log_limit_obeyed() {
    // 100 lines of 10 bytes: 1000 bytes, under a 1000-byte budget.
    let limits = quick_limits().with_log_bytes(1000);
    let inspect = format!("{} {INSPECT_PASS}", log_lines(100));
    let hook = load(
        CONFIGURE_OK,
        &inspect,
        r#"(data (i32.const 256) "0123456789")"#,
        limits,
    )
    .unwrap();
    assert_eq!(send(&echo_gateway(hook), GOOD).decision, Decision::Pass);
}

#[test]
fn log_limit_crossed_rejects_with_hook_log() {
    let limits = quick_limits().with_log_bytes(1000);
    let inspect = format!("{} {INSPECT_PASS}", log_lines(101));
    let hook = load(
        CONFIGURE_OK,
        &inspect,
        r#"(data (i32.const 256) "0123456789")"#,
        limits,
    )
    .unwrap();
    let gateway = echo_gateway(hook);
    assert_eq!(delivered(&send(&gateway, GOOD)), Err("hook-log".into()));
}

#[test]
fn log_line_limit_obeyed_with_empty_lines() {
    // 1000 empty lines: no bytes, and exactly the default line limit.
    let inspect = format!("{} {INSPECT_PASS}", log_empty_lines(1000));
    let hook = load(CONFIGURE_OK, &inspect, "", quick_limits()).unwrap();
    assert_eq!(send(&echo_gateway(hook), GOOD).decision, Decision::Pass);
}

#[test]
fn log_line_limit_crossed_with_empty_lines_rejects_with_hook_log() {
    for (limits, count, limit) in [
        (quick_limits(), 1001, 1000),
        (quick_limits(), 100_000, 1000),
        (quick_limits().with_log_lines(10), 11, 10),
    ] {
        let inspect = format!("{} {INSPECT_PASS}", log_empty_lines(count));
        let hook = load(CONFIGURE_OK, &inspect, "", limits).unwrap();
        let rejection = send(&echo_gateway(hook), GOOD).outcome.unwrap_err();
        assert_eq!(rejection.code, "hook-log", "{}", rejection.reason);
        assert!(
            rejection.reason.contains(&format!("{limit} lines")),
            "{}",
            rejection.reason
        );
    }
}

fn log_lines(count: u32) -> String {
    log_lines_of(count, 10)
}

fn log_empty_lines(count: u32) -> String {
    log_lines_of(count, 0)
}

/// Logs `count` lines of `len` bytes from offset 256.
fn log_lines_of(count: u32, len: u32) -> String {
    format!(
        "(local $i i32) (loop $l (call $log (i32.const 2) (i32.const 256) (i32.const {len}))
         (local.set $i (i32.add (local.get $i) (i32.const 1)))
         (br_if $l (i32.lt_u (local.get $i) (i32.const {count}))))"
    )
}

#[test]
fn a_hook_that_refuses_its_config_is_not_loaded_and_the_error_says_why() {
    let configure = "(i32.store8 (i32.const 0) (i32.const 1))
        (i32.store (i32.const 4) (i32.const 256)) (i32.store (i32.const 8) (i32.const 17))
        (i32.const 0)";
    let extra = r#"(data (i32.const 256) "root is not a dir")"#;
    let error = load(configure, INSPECT_PASS, extra, quick_limits()).unwrap_err();
    assert!(
        matches!(&error, HookError::ConfigRefused(reason) if reason == "root is not a dir"),
        "{error}"
    );
}

#[test]
fn a_hook_that_traps_in_configure_is_not_loaded() {
    let error = load("unreachable", INSPECT_PASS, "", quick_limits()).unwrap_err();
    assert!(
        matches!(&error, HookError::ConfigFault(r) if r.code == "hook-trap"),
        "{error}"
    );
}

#[test]
fn a_hook_that_loops_in_configure_is_not_loaded() {
    let error = load(
        "(loop $l (br $l)) (i32.const 0)",
        INSPECT_PASS,
        "",
        quick_limits(),
    )
    .unwrap_err();
    assert!(
        matches!(&error, HookError::ConfigFault(r) if r.code == "hook-timeout"),
        "{error}"
    );
}

#[test]
fn an_import_airlock_does_not_provide_is_named_in_the_load_error() {
    let component = wat::parse_str(
        r#"(component
             (import "wasi:http/outgoing-handler@0.2.0" (instance))
             (import "wasi:cli/environment@0.2.0" (instance
               (export "get-arguments" (func (result (list string))))))
             (import "acme:exfil/upload@1.0.0" (instance)))"#,
    )
    .unwrap();
    let error = Hook::load(engine(), &component, HookOptions::default()).unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, HookError::UnsupportedImports(_)));
    assert!(text.contains("wasi:http/outgoing-handler@0.2.0"), "{text}");
    assert!(text.contains("acme:exfil/upload@1.0.0"), "{text}");
    assert!(
        !text.contains("wasi:cli/environment"),
        "WASI stubs are provided: {text}"
    );
}

#[test]
fn a_component_without_the_policy_export_is_refused_at_load() {
    let component = wat::parse_str("(component)").unwrap();
    let error = Hook::load(engine(), &component, HookOptions::default()).unwrap_err();
    assert!(matches!(error, HookError::World(_)), "{error}");
    assert!(error.to_string().contains("airlock:hook/policy"), "{error}");
}

#[test]
fn a_core_module_or_garbage_is_refused_at_load_with_a_clear_error() {
    let module = wat::parse_str("(module)").unwrap();
    let error = Hook::load(engine(), &module, HookOptions::default()).unwrap_err();
    assert!(matches!(error, HookError::CoreModule), "{error}");
    let error = Hook::load(engine(), b"not wasm at all", HookOptions::default()).unwrap_err();
    assert!(matches!(error, HookError::Compile(_)), "{error}");
}

#[test]
fn a_memory_limit_above_the_engine_ceiling_is_refused() {
    let limits = HookLimits::default().with_memory_bytes(2 << 30);
    let error = load(CONFIGURE_OK, INSPECT_PASS, "", limits).unwrap_err();
    assert!(matches!(error, HookError::Limit(_)), "{error}");
}

#[test]
fn instances_do_not_share_state_between_messages() {
    // A hook that rejects once a global counter is past 1: with a fresh instance per message
    // it never is.
    let extra = "(global $seen (mut i32) (i32.const 0))";
    let inspect = format!(
        "(global.set $seen (i32.add (global.get $seen) (i32.const 1)))
         (if (i32.gt_u (global.get $seen) (i32.const 1)) (then unreachable)) {INSPECT_PASS}"
    );
    let hook = load(CONFIGURE_OK, &inspect, extra, quick_limits()).unwrap();
    let gateway = echo_gateway(hook);
    for _ in 0..20 {
        assert_eq!(send(&gateway, GOOD).decision, Decision::Pass);
    }
}

fn spin(iterations: u32) -> String {
    format!(
        "(local $i i32) (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
         (br_if $l (i32.lt_u (local.get $i) (i32.const {iterations}))))"
    )
}

fn fuel_hook(iterations: u32, fuel: u64) -> Hook {
    let limits = quick_limits().with_fuel(Some(fuel));
    let options = HookOptions::default().with_limits(limits);
    let inspect = format!("{} {INSPECT_PASS}", spin(iterations));
    Hook::load(
        airlock_tests::fuel_engine(),
        &wat_hook(CONFIGURE_OK, &inspect, ""),
        options,
    )
    .unwrap()
}

#[test]
fn fuel_limit_obeyed() {
    let reply = send(&echo_gateway(fuel_hook(1_000, 100_000)), GOOD);
    assert_eq!(reply.decision, Decision::Pass);
    let used = reply.hook_fuel.expect("fuel is reported");
    assert!(used > 1_000 && used < 100_000, "{used}");
}

#[test]
fn fuel_limit_crossed_rejects_with_hook_timeout_and_is_deterministic() {
    let gateway = echo_gateway(fuel_hook(1_000_000, 100_000));
    for _ in 0..3 {
        let rejection = send(&gateway, GOOD).outcome.unwrap_err();
        assert_eq!(rejection.code, "hook-timeout");
        assert!(
            rejection.reason.contains("fuel budget of 100000"),
            "{}",
            rejection.reason
        );
    }
}

#[test]
fn a_fuel_budget_without_a_metering_engine_is_refused() {
    let limits = HookLimits::default().with_fuel(Some(10));
    let error = load(CONFIGURE_OK, INSPECT_PASS, "", limits).unwrap_err();
    assert!(matches!(error, HookError::Limit(_)), "{error}");
}

/// `inspect` that grows a table by `by` elements and traps if that was refused.
fn grow_table(by: u32) -> String {
    format!(
        "(if (i32.eq (table.grow $t (ref.null func) (i32.const {by})) (i32.const -1)) (then unreachable))
         {INSPECT_PASS}"
    )
}

#[test]
fn table_limit_obeyed() {
    let limits = quick_limits().with_table_elements(1_000);
    let hook = load(
        CONFIGURE_OK,
        &grow_table(999),
        "(table $t 1 funcref)",
        limits,
    )
    .unwrap();
    assert_eq!(send(&echo_gateway(hook), GOOD).decision, Decision::Pass);
}

#[test]
fn table_limit_crossed_rejects_with_hook_limit() {
    let limits = quick_limits().with_table_elements(1_000);
    let hook = load(
        CONFIGURE_OK,
        &grow_table(1_000),
        "(table $t 1 funcref)",
        limits,
    )
    .unwrap();
    let rejection = send(&echo_gateway(hook), GOOD).outcome.unwrap_err();
    assert_eq!(rejection.code, "hook-limit");
    assert!(
        rejection.reason.contains("1001 elements"),
        "{}",
        rejection.reason
    );
}

#[test]
fn table_limit_obeyed_up_to_the_default_beyond_wasmtimes_pool_default() {
    // 50 000 elements: past wasmtime's own pool default of 20 000, under Airlock's 100 000.
    let hook = load(
        CONFIGURE_OK,
        &grow_table(49_999),
        "(table $t 1 funcref)",
        quick_limits(),
    )
    .unwrap();
    assert_eq!(send(&echo_gateway(hook), GOOD).decision, Decision::Pass);
}

#[test]
fn table_limit_crossed_at_the_default_rejects_with_hook_limit() {
    let hook = load(
        CONFIGURE_OK,
        &grow_table(100_000),
        "(table $t 1 funcref)",
        quick_limits(),
    )
    .unwrap();
    let rejection = send(&echo_gateway(hook), GOOD).outcome.unwrap_err();
    assert_eq!(rejection.code, "hook-limit", "{}", rejection.reason);
    assert!(
        rejection.reason.contains("100001 elements"),
        "{}",
        rejection.reason
    );
}

#[test]
fn a_custom_table_limit_above_wasmtimes_pool_default_is_the_one_enforced() {
    let limits = quick_limits().with_table_elements(30_000);
    let extra = "(table $t 1 funcref)";
    let hook = load(CONFIGURE_OK, &grow_table(29_999), extra, limits).unwrap();
    assert_eq!(send(&echo_gateway(hook), GOOD).decision, Decision::Pass);
    let hook = load(CONFIGURE_OK, &grow_table(30_000), extra, limits).unwrap();
    let rejection = send(&echo_gateway(hook), GOOD).outcome.unwrap_err();
    assert_eq!(rejection.code, "hook-limit", "{}", rejection.reason);
    assert!(
        rejection.reason.contains("30001 elements"),
        "{}",
        rejection.reason
    );
}

#[test]
fn a_table_limit_above_the_engine_ceiling_is_refused() {
    let limits = HookLimits::default().with_table_elements(100_001);
    let error = load(CONFIGURE_OK, INSPECT_PASS, "", limits).unwrap_err();
    assert!(matches!(error, HookError::Limit(_)), "{error}");
    assert!(error.to_string().contains("100001"), "{error}");
}

#[test]
fn instance_limit_obeyed() {
    let limits = quick_limits().with_instances(8);
    let hook = load(CONFIGURE_OK, INSPECT_PASS, "", limits).unwrap();
    assert_eq!(send(&echo_gateway(hook), GOOD).decision, Decision::Pass);
}

#[test]
fn instance_limit_crossed_refuses_the_hook_with_hook_limit() {
    // A component made by wit-component has its module plus shim instances: more than one.
    let limits = quick_limits().with_instances(1);
    let error = load(CONFIGURE_OK, INSPECT_PASS, "", limits).unwrap_err();
    assert!(
        matches!(&error, HookError::ConfigFault(r) if r.code == "hook-limit"),
        "{error}"
    );
}

#[test]
fn stack_limit_obeyed() {
    // 1 000 nested calls fit in the default 512 KiB stack.
    let extra = "(func $down (param i32) (result i32)
                   (if (result i32) (i32.eqz (local.get 0)) (then (i32.const 0))
                     (else (call $down (i32.sub (local.get 0) (i32.const 1))))))";
    let inspect = format!("(drop (call $down (i32.const 1000))) {INSPECT_PASS}");
    let hook = load(CONFIGURE_OK, &inspect, extra, quick_limits()).unwrap();
    assert_eq!(send(&echo_gateway(hook), BAD).decision, Decision::Pass);
}

/// `inspect` that replaces the body with `len` zero bytes (a bytes body) from offset 65536,
/// growing memory to hold them.
fn huge_bytes_replacement(len: u32) -> String {
    format!(
        "(drop (memory.grow (i32.const {pages})))
         (i32.store8 (i32.const 16) (i32.const 1))
         (i32.store8 (i32.const 20) (i32.const 0)) (i32.store8 (i32.const 32) (i32.const 0))
         (i32.store8 (i32.const 44) (i32.const 1)) (i32.store8 (i32.const 48) (i32.const 1))
         (i32.store (i32.const 52) (i32.const 65536)) (i32.store (i32.const 56) (i32.const {len}))
         (i32.const 16)",
        pages = len.div_ceil(65536) + 1
    )
}

const CHUNK: &str = r#"{"kind":"channel","name":"c","bytes":"AA=="}"#;

#[test]
fn output_size_limit_obeyed() {
    // 4 MiB minus the name "c": exactly the default message limit.
    let hook = load(
        CONFIGURE_OK,
        &huge_bytes_replacement((4 << 20) - 1),
        "",
        quick_limits(),
    )
    .unwrap();
    let reply = send(&echo_gateway(hook), CHUNK);
    assert_eq!(reply.decision, Decision::Replace, "{:?}", reply.outcome);
}

#[test]
fn output_size_limit_crossed_rejects_with_hook_output() {
    let hook = load(
        CONFIGURE_OK,
        &huge_bytes_replacement(8 << 20),
        "",
        quick_limits(),
    )
    .unwrap();
    let gateway = echo_gateway(hook);
    let rejection = send(&gateway, CHUNK).outcome.unwrap_err();
    assert_eq!(rejection.code, "hook-output");
    assert!(rejection.reason.contains("4194304"), "{}", rejection.reason);
}
