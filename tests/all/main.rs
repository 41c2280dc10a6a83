//! Airlock's integration tests: one binary, one module per concern.

mod browser;
mod cli;
mod concurrency;
mod core;
mod fuzz;
mod gateway;
mod hooks;
mod hostile;
mod seal;
mod serve;
mod wasi;
