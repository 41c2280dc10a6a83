//! Airlock's criterion benchmarks live in `benches/`; run them with
//! `scripts/bench` (builds the hooks, then `cargo bench -p airlock-benches`).
