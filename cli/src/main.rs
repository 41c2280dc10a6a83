//! The `airlock` binary: see the `airlock_cli` crate.

fn main() -> std::process::ExitCode {
    airlock_cli::main()
}
