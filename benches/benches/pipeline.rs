//! Per-message costs: seal and open alone, one hook call (fresh instance, configure included),
//! and the full pipeline (validation, hook, seal, open, dispatch to a no-op handler).
//!
//! Needs the built hooks: `scripts/build-hooks`, then `cargo bench -p airlock-benches`.

use std::hint::black_box;

use airlock::{
    Body, Gateway, Hook, HookOptions, InstanceMode, Kind, Message, Request, Response, Router,
    SealConfig, Source, seal,
};
use airlock_tests::{built_hook, engine};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SIZES: [usize; 3] = [100, 10_000, 1_000_000];

/// A `fs_read` command whose JSON args are `size` bytes long.
fn fs_read(size: usize) -> Request {
    let filler = size.saturating_sub(r#"{"path":"notes.txt","pad":""}"#.len());
    let args = format!(r#"{{"path":"notes.txt","pad":"{}"}}"#, "x".repeat(filler));
    Request::new(Kind::Command, "fs_read", Body::Json(args))
}

fn source() -> Source {
    Source::new("main", "main", "tauri://localhost")
}

fn hooks() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "wat-pass-all",
            airlock::component::from_wat(airlock::component::PASS_ALL_WAT).unwrap(),
        ),
        ("rust-path-guard", built_hook("path-guard", "rust")),
    ]
}

fn seal_and_open(c: &mut Criterion) {
    let mut group = c.benchmark_group("seal+open");
    let (sealer, opener) = seal::channel(SealConfig::default()).unwrap();
    for size in SIZES {
        let request = fs_read(size);
        let message = Message::from_request(1, source(), request);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &message, |b, message| {
            b.iter(|| {
                opener
                    .open(sealer.seal(black_box(message)).unwrap())
                    .unwrap()
            })
        });
    }
    group.finish();
}

fn hook_call(c: &mut Criterion) {
    hook_call_in(c, "hook-fresh", InstanceMode::Fresh);
    hook_call_in(c, "hook-reuse", InstanceMode::Reuse { max_idle: 1 });
}

fn hook_call_in(c: &mut Criterion, group: &str, mode: InstanceMode) {
    let mut group = c.benchmark_group(group);
    for (name, bytes) in hooks() {
        let options = HookOptions {
            mode,
            ..HookOptions::default()
        };
        let hook = Hook::load(engine(), &bytes, options).unwrap();
        for size in [100, 10_000] {
            let message = Message::from_request(1, source(), fs_read(size));
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(BenchmarkId::new(name, size), &message, |b, message| {
                b.iter(|| hook.inspect_blocking(message.clone()))
            });
        }
    }
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("pipeline-fresh");
    for (name, bytes) in hooks() {
        let hook = Hook::load(engine(), &bytes, HookOptions::default()).unwrap();
        let router = Router::new().fallback(|_| async { Ok(Response::Delivered { receivers: 1 }) });
        let gateway = Gateway::new(hook, router).unwrap();
        for size in SIZES {
            let request = fs_read(size);
            group.throughput(Throughput::Bytes(size as u64));
            group.bench_with_input(BenchmarkId::new(name, size), &request, |b, request| {
                b.iter(|| {
                    let reply = runtime.block_on(gateway.handle(source(), request.clone()));
                    assert!(reply.outcome.is_ok(), "{:?}", reply.outcome);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, seal_and_open, hook_call, pipeline);
criterion_main!(benches);
