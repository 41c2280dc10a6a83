//! WASI for hooks whose language runtime needs it — deny by default.
//!
//! Rust on `wasm32-wasip2`, Python (componentize-py) and JavaScript (jco) components import WASI
//! even when the policy never touches a file. Airlock links WASI 0.2 for them, with a context that
//! reaches nothing:
//!
//! - no environment variables, no arguments, no preopened directories (no filesystem at all);
//! - no network: TCP, UDP and name lookup are all refused;
//! - stdin is closed; stdout and stderr are captured into the hook's log, and count against its
//!   per-message log budget;
//! - clocks are stubs: the wall clock reads the Unix epoch and the monotonic clock advances by
//!   1 µs per reading, so a hook can neither tell the time nor time anything;
//! - random numbers come from a fixed sequence: the same message always meets the same "random"
//!   bytes, so verdicts stay deterministic (a hook must not rely on WASI randomness for secrets).
//!
//! The context is built only for instances of hooks that import WASI, on first use.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{Deterministic, HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder};

/// Output a hook instance may write to stdout and stderr over its life, in bytes; past it, writes
/// trap (and a reused instance is replaced).
const PIPE_CAPACITY: usize = 1 << 20;

/// The WASI side of one hook instance.
pub(crate) struct WasiState {
    ctx: WasiCtx,
    table: ResourceTable,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    /// How much of stdout and stderr was already taken into the log.
    taken: (usize, usize),
}

impl WasiState {
    pub(crate) fn new() -> Self {
        let stdout = MemoryOutputPipe::new(PIPE_CAPACITY);
        let stderr = MemoryOutputPipe::new(PIPE_CAPACITY);
        let random = || Deterministic::new((0u8..=255).collect());
        let ctx = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .wall_clock(EpochClock)
            .monotonic_clock(TickingClock(AtomicU64::new(0)))
            .secure_random(random())
            .insecure_random(random())
            .insecure_random_seed(0)
            .build();
        WasiState {
            ctx,
            table: ResourceTable::new(),
            stdout,
            stderr,
            taken: (0, 0),
        }
    }

    /// What the hook wrote to stdout and stderr since the last call.
    pub(crate) fn take_output(&mut self) -> Vec<u8> {
        let stdout = self.stdout.contents();
        let stderr = self.stderr.contents();
        let mut output = stdout[self.taken.0.min(stdout.len())..].to_vec();
        output.extend_from_slice(&stderr[self.taken.1.min(stderr.len())..]);
        self.taken = (stdout.len(), stderr.len());
        output
    }
}

struct EpochClock;

impl HostWallClock for EpochClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

struct TickingClock(AtomicU64);

impl HostMonotonicClock for TickingClock {
    fn resolution(&self) -> u64 {
        1_000
    }

    fn now(&self) -> u64 {
        self.0.fetch_add(1_000, Ordering::Relaxed)
    }
}

impl wasmtime_wasi::WasiView for crate::store::HookState {
    fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
        let wasi = self.wasi();
        wasmtime_wasi::WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut wasi.table,
        }
    }
}
