// Tauri's own isolation pattern, for the benchmark only (scripts/tauri-bench): a hook that
// passes every payload unchanged, as Airlock's pass-all hook does.
window.__TAURI_ISOLATION_HOOK__ = (payload) => payload
