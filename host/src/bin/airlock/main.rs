//! The `airlock` command-line tool: try hooks without writing a host.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod bench;
mod fuzz;
mod inspect;
mod new;
mod serve;

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
    /// Measure the full pipeline with a hook against a no-hook baseline in the same run.
    Bench(bench::BenchArgs),
    /// Throw structure-aware malicious messages at a hook; exits 1 when something was found.
    Fuzz(fuzz::FuzzArgs),
    /// Serve a web frontend and its IPC endpoint over WebSocket, in front of a demo core.
    Serve(serve::ServeArgs),
    /// Make a hook component from a core wasm module (wit-bindgen output or bare) or WAT text.
    Component(ComponentArgs),
    /// Make a new hook project (rust, python, js or c) from a template, ready to `./build`.
    New(new::NewArgs),
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
        Command::Inspect(args) => inspect::run(args).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => bench::run(args).map(|()| ExitCode::SUCCESS),
        Command::Fuzz(args) => fuzz::run(args).map(|found| match found {
            true => ExitCode::from(1),
            false => ExitCode::SUCCESS,
        }),
        Command::Serve(args) => serve::run(args).map(|()| ExitCode::SUCCESS),
        Command::Component(args) => component(args).map(|()| ExitCode::SUCCESS),
        Command::New(args) => new::run(args).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("airlock: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// How a command uses a hook's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Reuse warm instances for the slow-to-start runtimes (CPython, QuickJS, SpiderMonkey),
    /// a fresh instance per message for everything else.
    Auto,
    /// A fresh instance per message: nothing survives between messages.
    Fresh,
    /// Warm instances reused across messages: what a hook keeps in memory survives.
    Reuse,
}

impl Mode {
    /// The instance mode for the hook `bytes`, keeping at most `max_idle` warm instances.
    pub fn resolve(self, bytes: &[u8], max_idle: usize) -> airlock::InstanceMode {
        match self {
            Mode::Auto => airlock::InstanceMode::for_component(bytes, max_idle),
            Mode::Fresh => airlock::InstanceMode::Fresh,
            Mode::Reuse => airlock::InstanceMode::Reuse { max_idle },
        }
    }
}

/// Reads a hook file, naming it when it cannot be read.
pub fn read_hook(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context as _;
    std::fs::read(path).with_context(|| format!("cannot read hook {}", path.display()))
}

/// Where compiled hooks are kept between runs (flattened into the commands that load hooks).
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Keep compiled hooks in DIR, so a hook loaded before is not compiled again [default:
    /// $AIRLOCK_CACHE_DIR, else $XDG_CACHE_HOME/airlock, else ~/.cache/airlock].
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every hook when it is loaded, keeping nothing.
    #[arg(long, conflicts_with = "cache_dir")]
    no_cache: bool,
}

impl CacheArgs {
    /// The engine for `config`, with the cache these flags choose.
    pub fn engine(&self, config: airlock::EngineConfig) -> anyhow::Result<airlock::HookEngine> {
        let env = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let dir = match self.no_cache {
            true => None,
            false => self.cache_dir.clone().or_else(|| {
                env("AIRLOCK_CACHE_DIR")
                    .or_else(|| env("XDG_CACHE_HOME").map(|d| d.join("airlock")))
                    .or_else(|| env("HOME").map(|d| d.join(".cache/airlock")))
            }),
        };
        Ok(match dir {
            Some(dir) => airlock::HookEngine::with_cache(config, dir)?,
            None => airlock::HookEngine::new(config)?,
        })
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
