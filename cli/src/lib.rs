//! The `airlock` command-line tool: try hooks without writing a host.
//!
//! `airlock inspect | bench | fuzz | serve | component | new | test | replay | policy | keygen |
//! sign`, built on the `airlock` library. The fuzzing engine behind `airlock fuzz` is
//! [`fuzzer`]; the cases runner behind `airlock test` (and the project's conformance suite) is
//! [`cases`]; the attack corpus is [`corpus`]; the rest are the subcommands.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod bench;
pub mod cases;
pub mod corpus;
mod flags;
mod fuzz;
pub mod fuzzer;
mod inspect;
mod new;
mod policy;
mod replay;
pub mod routes;
mod serve;
mod sign;
mod testing;

pub use flags::{HookFlags, Mode};

/// Airlock: IPC isolation hooks as WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "airlock", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--hook`'s help where one hook is taken (the shared flags' says it repeats, to chain).
const ONE_HOOK: &str = "The hook component (one)";

#[derive(Debug, Subcommand)]
enum Command {
    /// Run JSON Lines messages through a hook, the seal and the core; print one verdict a line.
    Inspect(inspect::InspectArgs),
    /// Measure the full pipeline with a hook against a no-hook baseline in the same run.
    #[command(mut_arg("hooks", |a| a.help(ONE_HOOK)))]
    Bench(bench::BenchArgs),
    /// Throw structure-aware malicious messages at a hook; exits 1 when something was found.
    #[command(mut_arg("hooks", |a| a.help(ONE_HOOK)))]
    Fuzz(fuzz::FuzzArgs),
    /// Serve a web frontend and its IPC endpoint over WebSocket, in front of a demo core.
    Serve(serve::ServeArgs),
    /// Make a hook component from a core wasm module (wit-bindgen output or bare) or WAT text.
    Component(ComponentArgs),
    /// Make an Ed25519 key pair for signing hooks: NAME.key (secret) and NAME.pub.
    Keygen(sign::KeygenArgs),
    /// Sign a hook component: writes a detached signature (HOOK.wasm.sig) hosts check with
    /// `--trust KEY.pub`.
    Sign(sign::SignArgs),
    /// Make a new hook project (rust, python, js or c) from a template, ready to `./build`.
    New(new::NewArgs),
    /// Run tables of cases (message and expected verdict) against a hook; exits 1 on a failure.
    Test(testing::TestArgs),
    /// Replay recorded traffic through an old and a new hook (or one, against the recorded
    /// verdicts) and report every verdict that flips; exits 1 when one does.
    Replay(replay::ReplayArgs),
    /// Write hook configs from what an app already has (`from-tauri`: an allowlist config from
    /// a Tauri app's capabilities).
    Policy(policy::PolicyArgs),
}

#[derive(Debug, Args)]
struct ComponentArgs {
    /// A core module (`.wasm`), WAT text (`.wat`), or a component (copied as it is).
    input: PathBuf,
    /// Where to write the component.
    #[arg(short, long)]
    output: PathBuf,
}

/// Runs the tool on the process's arguments; errors are printed with their causes and exit 2.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AIRLOCK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(args).map(|()| ExitCode::SUCCESS),
        Command::Fuzz(args) => fuzz::run(args).map(|found| match found {
            true => ExitCode::from(1),
            false => ExitCode::SUCCESS,
        }),
        Command::Serve(args) => serve::run(args).map(|()| ExitCode::SUCCESS),
        Command::Component(args) => component(args).map(|()| ExitCode::SUCCESS),
        Command::New(args) => new::run(args).map(|()| ExitCode::SUCCESS),
        Command::Test(args) => testing::run(args).map(failed),
        Command::Replay(args) => replay::run(args).map(failed),
        Command::Policy(args) => policy::run(args).map(|()| ExitCode::SUCCESS),
        Command::Keygen(args) => sign::keygen(args).map(|()| ExitCode::SUCCESS),
        Command::Sign(args) => sign::sign(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("airlock: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Exit 1 when something failed (or flipped), 0 otherwise.
fn failed(yes: bool) -> ExitCode {
    match yes {
        true => ExitCode::from(1),
        false => ExitCode::SUCCESS,
    }
}

fn component(args: ComponentArgs) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let input = std::fs::read(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let component = airlock::component::from_bytes(input)
        .with_context(|| format!("{} is not usable as a hook", args.input.display()))?;
    if let Some(parent) = args.output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&args.output, &component)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprintln!(
        "wrote {} ({} bytes)",
        args.output.display(),
        component.len()
    );
    Ok(())
}
