//! The `airlock` command-line tool: try hooks without writing a host.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod inspect;

/// Airlock: IPC isolation hooks as WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "airlock", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run JSON Lines messages through a hook, the seal and the core; print one verdict a line.
    Inspect(inspect::InspectArgs),
    /// Make a hook component from a core wasm module (wit-bindgen output or bare) or WAT text.
    Component(ComponentArgs),
}

#[derive(Debug, Args)]
struct ComponentArgs {
    /// A core module (`.wasm`), WAT text (`.wat`), or a component (copied as it is).
    input: PathBuf,
    /// Where to write the component.
    #[arg(short, long)]
    output: PathBuf,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("AIRLOCK_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(args) => inspect::run(args),
        Command::Component(args) => component(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("airlock: {e:#}");
            ExitCode::FAILURE
        }
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
