//! Per-message costs against a no-hook baseline:
//!
//! - `seal+open/<provider>`: AES-256-GCM sealing and opening alone, at 100 B, 10 KB and 1 MiB, with
//!   each provider (`rustcrypto`, the default, and `aws-lc`);
//! - `baseline`: the path without isolation (validation, then a no-op core);
//! - `pipeline/<mode>/<verdict>/<hook>`: the full pipeline (validation, hook, seal, open,
//!   dispatch to a no-op core) with a fresh or reused instance per message, for a message the
//!   hook passes, replaces or rejects, at 100 B, 10 KB and 1 MB, for every language's build of
//!   the policy that is present in `target/hooks/`;
//! - `threads/<n>`: the 100 B pass through the Rust path-guard on 1 and 2 worker threads
//!   (time per message, all threads together).
//!
//! Run with `scripts/bench` (builds the hooks, then `cargo bench -p airlock-benches`).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock::{
    Gateway, GatewayLimits, Hook, HookOptions, InstanceMode, Message, Request, Response, Router,
    SealConfig, Source, jsonl, seal,
};
use airlock_tests::{engine, root};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

const SIZES: [usize; 3] = [100, 10_000, 1_000_000];
const LANGUAGES: [&str; 4] = ["rust", "c", "js", "python"];

/// A message line whose object payload is padded to `size` bytes of JSON.
fn message(line: &str, size: usize) -> (Source, Request) {
    let (source, mut request) = jsonl::parse_line(line).expect("bench message");
    let airlock::Body::Json(text) = &request.body else {
        unreachable!("JSON payloads")
    };
    let unpadded = text.len() + r#","pad":"""#.len();
    let pad = "x".repeat(size.saturating_sub(unpadded));
    request.body = airlock::Body::Json(format!(r#"{},"pad":"{pad}"}}"#, &text[..text.len() - 1]));
    (source, request)
}

/// What each verdict is measured with: the policy, and a message it gives that verdict.
const VERDICTS: [(&str, &str, &str); 3] = [
    (
        "pass",
        "path-guard",
        r#"{"kind":"command","name":"fs_read","payload":{"path":"notes.txt"}}"#,
    ),
    (
        "replace",
        "redact",
        r#"{"kind":"event","name":"login","payload":{"user":"ada","password":"hunter2"}}"#,
    ),
    (
        "reject",
        "path-guard",
        r#"{"kind":"command","name":"fs_read","payload":{"path":"../../etc/passwd"}}"#,
    ),
];

fn no_op_core() -> Router {
    Router::new().fallback(|_| async { Ok(Response::Delivered { receivers: 1 }) })
}

fn gateway(policy: &str, lang: &str, mode: InstanceMode) -> Option<Gateway> {
    let path = root().join(format!("target/hooks/{policy}.{lang}.wasm"));
    let bytes = std::fs::read(&path).ok()?;
    let options = HookOptions::default().with_mode(mode);
    let hook = Hook::load(engine(), &bytes, options).expect("built hook loads");
    Some(Gateway::new(hook, no_op_core()).expect("gateway"))
}

fn seal_and_open(c: &mut Criterion) {
    for (name, provider) in [
        ("rustcrypto", seal::Provider::RustCrypto),
        ("aws-lc", seal::Provider::AwsLc),
    ] {
        let mut group = c.benchmark_group(format!("seal+open/{name}"));
        let config = SealConfig::default().with_provider(provider);
        let (sealer, opener) = seal::channel(config).unwrap();
        for size in [100, 10_000, 1 << 20] {
            let (source, request) = message(VERDICTS[0].2, size);
            let message = Message::from_request(1, source, request);
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
}

fn baseline(c: &mut Criterion) {
    let mut group = c.benchmark_group("baseline");
    let limits = GatewayLimits::default();
    for size in SIZES {
        let (_, request) = message(VERDICTS[0].2, size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &request, |b, request| {
            b.iter(|| {
                let request = request.clone();
                limits.validate(&request).unwrap();
                black_box(request)
            })
        });
    }
    group.finish();
}

fn pipeline(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for (mode_name, mode) in [
        ("fresh", InstanceMode::Fresh),
        ("reuse", InstanceMode::Reuse { max_idle: 2 }),
    ] {
        for (verdict, policy, line) in VERDICTS {
            let mut group = c.benchmark_group(format!("pipeline/{mode_name}/{verdict}"));
            for lang in LANGUAGES {
                let Some(gateway) = gateway(policy, lang, mode) else {
                    eprintln!("bench: no target/hooks/{policy}.{lang}.wasm, skipped");
                    continue;
                };
                for size in SIZES {
                    let (source, request) = message(line, size);
                    group.throughput(Throughput::Bytes(size as u64));
                    group.bench_function(BenchmarkId::new(lang, size), |b| {
                        b.iter(|| {
                            let reply =
                                runtime.block_on(gateway.handle(source.clone(), request.clone()));
                            assert_eq!(reply.decision.as_str(), verdict, "{:?}", reply.outcome);
                        })
                    });
                }
            }
            group.finish();
        }
    }
}

fn threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("threads");
    let (source, request) = message(VERDICTS[0].2, 100);
    for mode in [InstanceMode::Fresh, InstanceMode::Reuse { max_idle: 4 }] {
        let gateway = Arc::new(gateway("path-guard", "rust", mode).expect("built path-guard"));
        for threads in [1, 2] {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(threads)
                .build()
                .unwrap();
            let name = match mode {
                InstanceMode::Fresh => "fresh",
                InstanceMode::Reuse { .. } => "reuse",
            };
            group.throughput(Throughput::Elements(1));
            group.bench_function(BenchmarkId::new(name, threads), |b| {
                b.iter_custom(|messages| {
                    let per_task = messages.div_ceil(threads as u64);
                    let start = Instant::now();
                    runtime.block_on(async {
                        let tasks: Vec<_> = (0..threads)
                            .map(|_| {
                                let (gateway, source, request) =
                                    (gateway.clone(), source.clone(), request.clone());
                                tokio::spawn(async move {
                                    for _ in 0..per_task {
                                        let reply =
                                            gateway.handle(source.clone(), request.clone()).await;
                                        assert!(reply.outcome.is_ok(), "{:?}", reply.outcome);
                                    }
                                })
                            })
                            .collect();
                        for task in tasks {
                            task.await.unwrap();
                        }
                    });
                    start.elapsed()
                })
            });
        }
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = seal_and_open, baseline, pipeline, threads
}
criterion_main!(benches);
