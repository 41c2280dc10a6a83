//! Airlock's integration tests: one binary, one module per concern.

mod browser;
mod cache;
mod cases;
mod cli;
mod concurrency;
mod conformance;
mod core;
mod coverage;
mod fair;
mod fuzz;
mod gateway;
mod hooks;
mod hostile;
mod metrics;
mod new;
mod policy;
mod quarantine;
mod replay;
mod routes;
mod seal;
mod serve;
mod state;
mod swap;
mod tauri_app;
mod trust;
mod wasi;
