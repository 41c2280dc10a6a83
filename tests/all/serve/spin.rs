//! A worker kept awake after each frame (`WebOptions::spin`): it spins while frames come soon
//! after each other, and sleeps once `spin` has passed or when they keep coming later.
//!
//! Each test serves on a single-threaded runtime of its own thread and reads that thread's CPU
//! time (`/proc/…/task/TID/schedstat`): spinning for a window shows as CPU time of the same
//! order, sleeping as next to none. The bounds are loose (a third of the window, against a
//! spinning thread's whole window) so that other tests running beside these do not matter.

use super::*;

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
    let spun = clock.over(Duration::from_millis(150)).await;
    assert!(
        spun >= Duration::from_millis(50),
        "CPU time while spinning: {spun:?}"
    );
    // Past the window: asleep.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let slept = clock.over(Duration::from_millis(300)).await;
    assert!(
        slept < Duration::from_millis(50),
        "CPU time once idle: {slept:?}"
    );
}

#[tokio::test]
async fn a_worker_with_spin_zero_sleeps_as_soon_as_it_has_answered() {
    let (_server, mut ws, clock, _stop) = spinning(Duration::ZERO).await;
    call(&mut ws, 1).await;
    let slept = clock.over(Duration::from_millis(150)).await;
    assert!(
        slept < Duration::from_millis(50),
        "CPU time after the reply: {slept:?}"
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
    let slept = clock.over(Duration::from_millis(120)).await;
    assert!(
        slept < Duration::from_millis(40),
        "CPU time after a late frame: {slept:?}"
    );
    // A frame right after the last reply: the worker spins again.
    call(&mut ws, 4).await;
    call(&mut ws, 5).await;
    let spun = clock.over(Duration::from_millis(120)).await;
    assert!(
        spun >= Duration::from_millis(40),
        "CPU time after a prompt frame: {spun:?}"
    );
}
