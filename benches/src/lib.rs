//! Airlock's criterion benchmarks live in `benches/`; run them with
//! `cargo bench -p airlock-benches` after `scripts/build-hooks`.
