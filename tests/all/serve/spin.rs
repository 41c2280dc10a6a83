//! A worker kept awake after each frame (`WebOptions::spin`): it spins while frames come soon
//! after each other, and sleeps once `spin` has passed or when they keep coming later.
//!
//! Each test serves on a single-threaded runtime of its own thread and reads that thread's CPU
//! time (`/proc/…/task/TID/schedstat`): spinning for a window shows as CPU time of the same
//! order, sleeping as next to none. One bound, [`SPINNING`], tells them apart: far below what a
//! spinning thread gets of its window even sharing the CPUs with other tests, far above what a
//! sleeping one spends.

use super::*;

/// CPU time over a measured stretch (120 ms or more of a spinning window) from which a worker
/// counts as spinning; below it, as asleep.
const SPINNING: Duration = Duration::from_millis(20);

fn assert_spun(cpu: Duration, when: &str) {
    assert!(
        cpu >= SPINNING,
        "CPU time {when}: {cpu:?}, expected a spinning worker's"
    );
}

fn assert_slept(cpu: Duration, when: &str) {
    assert!(
        cpu < SPINNING,
        "CPU time {when}: {cpu:?}, expected a sleeping worker's"
    );
}

/// A single-threaded runtime on a thread of its own, and a clock of that thread's CPU time.
async fn runtime_with_clock() -> (
    tokio::runtime::Handle,
    tokio::sync::oneshot::Sender<()>,
    CpuClock,
) {
    let (handle, stop) = super::runtime_on_a_thread();
    // Asked on the runtime's own thread.
    let task = handle
        .spawn(async { std::fs::canonicalize("/proc/thread-self").unwrap() })
        .await
        .unwrap();
    (handle, stop, CpuClock(task.join("schedstat")))
}

struct CpuClock(std::path::PathBuf);

impl CpuClock {
    /// The thread's time on a CPU so far.
    fn now(&self) -> Duration {
        let stat = std::fs::read_to_string(&self.0).unwrap();
        let nanos = stat.split_whitespace().next().unwrap().parse().unwrap();
        Duration::from_nanos(nanos)
    }

    /// The thread's CPU time over the next `wall` of wall-clock time.
    async fn over(&self, wall: Duration) -> Duration {
        let before = self.now();
        tokio::time::sleep(wall).await;
        self.now() - before
    }
}

/// A pass-all server keeping its one worker awake `spin` after each frame, and a window on it.
async fn spinning(spin: Duration) -> (Server, Ws, CpuClock, tokio::sync::oneshot::Sender<()>) {
    let (worker, stop, clock) = runtime_with_clock().await;
    let windows = Windows::new();
    let gateway = Gateway::new(pass_all(), echo_router()).expect("gateway");
    let options = WebOptions::default().with_spin(spin);
    let web = WebGateway::new(Arc::new(gateway), windows.clone(), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(web.serve_on(listener, vec![worker]));
    let server = Server {
        addr,
        windows,
        task,
    };
    let ws = connect(&server, "main").await;
    (server, ws, clock, stop)
}

async fn call(ws: &mut Ws, id: u64) {
    send_json(ws, json!({"id": id, "kind": "command", "name": "ping"})).await;
    let (reply, _) = reply_to(ws, id).await;
    assert_eq!(reply["ok"], true, "{reply}");
}

#[tokio::test]
async fn a_worker_spins_for_spin_after_a_frame_then_sleeps() {
    let spin = Duration::from_millis(400);
    let (_server, mut ws, clock, _stop) = spinning(spin).await;
    call(&mut ws, 1).await;
    assert_spun(
        clock.over(Duration::from_millis(150)).await,
        "while spinning",
    );
    // Past the window: asleep.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_slept(clock.over(Duration::from_millis(300)).await, "once idle");
}

#[tokio::test]
async fn a_worker_with_spin_zero_sleeps_as_soon_as_it_has_answered() {
    let (_server, mut ws, clock, _stop) = spinning(Duration::ZERO).await;
    call(&mut ws, 1).await;
    assert_slept(
        clock.over(Duration::from_millis(150)).await,
        "after the reply",
    );
}

#[tokio::test]
async fn a_worker_stops_spinning_while_frames_come_later_than_spin_and_spins_again_when_sooner() {
    let spin = Duration::from_millis(150);
    let (_server, mut ws, clock, _stop) = spinning(spin).await;
    // Two frames, each more than `spin` after the last activity: spinning does not pay.
    for id in 1..=2 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        call(&mut ws, id).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    call(&mut ws, 3).await;
    assert_slept(
        clock.over(Duration::from_millis(120)).await,
        "after a late frame",
    );
    // A frame right after the last reply: the worker spins again.
    call(&mut ws, 4).await;
    call(&mut ws, 5).await;
    assert_spun(
        clock.over(Duration::from_millis(120)).await,
        "after a prompt frame",
    );
}
