//! The hook flags every subcommand that runs hooks shares: which hooks, their configs, their
//! limits, the instance mode, the gateway's message limit, and the compiled-hook cache.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;

use airlock::seal::Provider;
use airlock::trust::{PublicKey, Signature, Trust};
use airlock::{
    EngineConfig, GatewayLimits, Hook, HookEngine, HookLimits, HookOptions, InstanceMode,
    SealConfig,
};

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
    pub fn resolve(self, bytes: &[u8], max_idle: usize) -> InstanceMode {
        match self {
            Mode::Auto => InstanceMode::for_component(bytes, max_idle),
            Mode::Fresh => InstanceMode::Fresh,
            Mode::Reuse => InstanceMode::Reuse { max_idle },
        }
    }
}

/// Which AES-256-GCM implementation seals what the hooks pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Seal {
    /// RustCrypto's `aes-gcm`: pure Rust.
    Rustcrypto,
    /// AWS-LC: several times faster on megabyte messages (a tool built with `--features aws-lc`).
    AwsLc,
}

/// The hook flags (flattened into `inspect`, `bench`, `fuzz` and `serve`).
#[derive(Debug, Args)]
pub struct HookFlags {
    /// A hook component; repeat to chain hooks, applied in order (a rejection stops the chain).
    #[arg(long = "hook", value_name = "HOOK.wasm", required = true)]
    pub hooks: Vec<PathBuf>,
    /// A hook's JSON config (a file): none, or one per `--hook` in the same order; `{}` when
    /// absent.
    #[arg(long = "config", value_name = "FILE.json")]
    pub configs: Vec<PathBuf>,
    /// Run this `--hook` (the same path as given there; repeatable) in monitor mode, a dry run:
    /// its verdict is computed, logged and counted but not enforced, and its faults too; the
    /// message goes on as if it had passed (`inspect` and `serve`; `inspect` prints it as
    /// `monitored`).
    #[arg(long = "monitor", value_name = "HOOK.wasm")]
    pub monitor: Vec<PathBuf>,
    /// The SHA-256 a hook's bytes must have (64 hex digits): none, or one per `--hook` in the
    /// same order (`-` for a hook left unpinned). A mismatch refuses to load, naming both.
    #[arg(long = "pin", value_name = "SHA256")]
    pub pins: Vec<String>,
    /// A public key (`airlock keygen`'s NAME.pub) trusted to sign hooks (repeatable). With any,
    /// every hook must carry a valid signature from one of them in HOOK.wasm.sig (`airlock
    /// sign`), at start and on every reload.
    #[arg(long = "trust", value_name = "KEY.pub")]
    pub trusted: Vec<PathBuf>,
    /// Chains of their own for some windows, webviews, origins or name prefixes: a JSON array of
    /// routes, tried in order before the default chain of `--hook`, each `{"window": GLOB,
    /// "webview": GLOB, "origin": O or [O…], "prefix": P or [P…], "hooks": [PATH or {"hook":
    /// PATH, "config": FILE or JSON}…]}` (every part but "hooks" optional).
    #[arg(long = "routes", value_name = "FILE.json")]
    pub routes: Option<PathBuf>,
    /// Time limit for each hook call, in milliseconds: the time the hook runs, not its waits
    /// for a turn on a busy machine (a call is also stopped at ten times this by the clock).
    #[arg(long, value_name = "MS", default_value_t = 100)]
    pub timeout_ms: u64,
    /// Fuel budget for each hook call (turns on fuel metering, which slows calls by 12-35 %).
    #[arg(long, value_name = "UNITS")]
    pub fuel: Option<u64>,
    /// Linear memory limit for the hook, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 64)]
    pub memory_mib: usize,
    /// Wasm stack for each hook call, in KiB.
    #[arg(long, value_name = "KIB", default_value_t = 512)]
    pub stack_kib: usize,
    /// Elements in any one table of the hook.
    #[arg(long, value_name = "COUNT", default_value_t = 100_000)]
    pub table_elements: usize,
    /// Core instances (and memories, and tables) in one hook instance.
    #[arg(long, value_name = "COUNT", default_value_t = 64)]
    pub instances: usize,
    /// Bytes at the start of each hook memory kept mapped between instances and zeroed in place
    /// (past them, memory goes back to the OS and is faulted in again), in KiB [default: the
    /// library's, see BENCHMARKS.md].
    #[arg(long, value_name = "KIB")]
    pub keep_resident_kib: Option<usize>,
    /// Reset only the written pages of the resident part (the kernel's page-map scan): faster,
    /// but an instance can read pages an earlier one wrote if they were swapped out before the
    /// reset. Only for hosts with swap off.
    #[arg(long)]
    pub pagemap_scan: bool,
    /// Log text a hook may write per message, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 64 << 10)]
    pub log_bytes: usize,
    /// Log lines a hook may write per message (empty ones count).
    #[arg(long, value_name = "COUNT", default_value_t = 1000)]
    pub log_lines: usize,
    /// Faults (trap, timeout, memory…) a hook may have on one window's messages inside the
    /// quarantine window; one more and it is quarantined for that window: its every message is
    /// rejected with `hook-quarantined` until the time passes or the hook is reloaded (0:
    /// quarantine at the first fault).
    #[arg(long, value_name = "COUNT", default_value_t = 20)]
    pub quarantine_faults: usize,
    /// The sliding window the quarantine counts faults in, and how long a quarantine lasts, in
    /// milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub quarantine_window_ms: u64,
    /// Never quarantine a hook, however often it faults.
    #[arg(long, conflicts_with = "quarantine_faults")]
    pub no_quarantine: bool,
    /// Keys a hook may hold in host-owned state (airlock:hook/state), over all windows.
    #[arg(long, value_name = "COUNT", default_value_t = 1024)]
    pub state_keys: usize,
    /// Longest host-owned state key, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 256)]
    pub state_key_bytes: usize,
    /// Largest host-owned state value, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4096)]
    pub state_value_bytes: usize,
    /// Largest message (name, headers and body), in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 4 << 20)]
    pub max_message_bytes: usize,
    /// A fresh instance per message, warm instances reused across messages, or whichever suits
    /// the hook's language runtime (reuse for CPython, QuickJS and SpiderMonkey) [default: auto;
    /// reuse for `replay`].
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// The AES-256-GCM implementation that seals messages for the core.
    #[arg(long, value_enum, default_value_t = Seal::Rustcrypto)]
    pub seal: Seal,
    /// Keep compiled hooks in DIR, so a hook loaded before is not compiled again [default:
    /// $AIRLOCK_CACHE_DIR, else $XDG_CACHE_HOME/airlock, else ~/.cache/airlock].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile every hook when it is loaded, keeping nothing.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
}

/// A hook loaded from a file, with the path it came from.
#[derive(Debug)]
pub struct Loaded {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: usize,
    /// The hook.
    pub hook: Hook,
}

impl HookFlags {
    /// The one hook of a command that takes one (`bench`, `fuzz`).
    pub fn single(&self, command: &str) -> anyhow::Result<&Path> {
        if let Some(routes) = &self.routes {
            bail!(
                "airlock {command} runs one hook and takes no --routes (got {})",
                routes.display()
            );
        }
        match self.hooks.as_slice() {
            [hook] => Ok(hook),
            many => bail!(
                "airlock {command} takes one --hook, got {}: {}",
                many.len(),
                many.iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The memory limit in bytes, refusing a value that does not fit.
    fn memory_bytes(&self) -> anyhow::Result<usize> {
        self.memory_mib.checked_mul(1 << 20).with_context(|| {
            format!(
                "--memory-mib {} is out of range (at most {} MiB)",
                self.memory_mib,
                usize::MAX >> 20
            )
        })
    }

    /// The engine these flags ask for (fuel metering when `fuel` or `--fuel`), with the cache
    /// they choose.
    pub fn engine(&self, fuel: bool) -> anyhow::Result<HookEngine> {
        self.engine_with(fuel, |config| config)
    }

    /// [`HookFlags::engine`], with the engine's settings adjusted by `adjust` last.
    pub fn engine_with(
        &self,
        fuel: bool,
        adjust: impl FnOnce(EngineConfig) -> EngineConfig,
    ) -> anyhow::Result<HookEngine> {
        let memory = self.memory_bytes()?;
        let stack = self
            .stack_kib
            .checked_mul(1 << 10)
            .with_context(|| format!("--stack-kib {} is out of range", self.stack_kib))?;
        let mut config = EngineConfig::default();
        if let Some(kib) = self.keep_resident_kib {
            let bytes = kib
                .checked_mul(1 << 10)
                .filter(|&b| b <= config.memory_ceiling.max(memory));
            config.keep_resident = bytes.with_context(|| {
                format!(
                    "--keep-resident-kib {kib} is out of range (at most the memory ceiling, {} KiB)",
                    config.memory_ceiling.max(memory) >> 10
                )
            })?;
        }
        let config = config
            .with_pagemap_scan(self.pagemap_scan)
            .with_fuel(fuel || self.fuel.is_some())
            .with_max_wasm_stack(stack)
            .with_memory_ceiling(memory.max(EngineConfig::default().memory_ceiling))
            .with_table_elements_ceiling(
                self.table_elements
                    .max(EngineConfig::default().table_elements_ceiling),
            );
        let config = adjust(config);
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
            Some(dir) => HookEngine::with_cache(config, dir)?,
            None => HookEngine::new(config)?,
        })
    }

    /// The per-call limits these flags set.
    pub fn limits(&self) -> anyhow::Result<HookLimits> {
        if self.timeout_ms == 0 {
            bail!("--timeout-ms 0: the time limit must be at least 1 ms");
        }
        if self.quarantine_window_ms == 0 {
            bail!("--quarantine-window-ms 0: the quarantine window must be at least 1 ms");
        }
        Ok(HookLimits::default()
            .with_timeout(Duration::from_millis(self.timeout_ms))
            .with_fuel(self.fuel)
            .with_memory_bytes(self.memory_bytes()?)
            .with_table_elements(self.table_elements)
            .with_instances(self.instances)
            .with_log_bytes(self.log_bytes)
            .with_log_lines(self.log_lines)
            .with_quarantine_faults((!self.no_quarantine).then_some(self.quarantine_faults))
            .with_quarantine_window(Duration::from_millis(self.quarantine_window_ms))
            .with_state_keys(self.state_keys)
            .with_state_key_bytes(self.state_key_bytes)
            .with_state_value_bytes(self.state_value_bytes))
    }

    /// The gateway's limits these flags set.
    pub fn gateway_limits(&self) -> GatewayLimits {
        GatewayLimits::default().with_max_message_bytes(self.max_message_bytes)
    }

    /// The seal settings these flags choose.
    pub fn seal_config(&self) -> anyhow::Result<SealConfig> {
        let provider = match self.seal {
            Seal::Rustcrypto => Provider::RustCrypto,
            #[cfg(feature = "aws-lc")]
            Seal::AwsLc => Provider::AwsLc,
            #[cfg(not(feature = "aws-lc"))]
            Seal::AwsLc => bail!(
                "--seal aws-lc: this airlock was built without AWS-LC (cargo build --release -p airlock-cli --features aws-lc)"
            ),
        };
        Ok(SealConfig::default().with_provider(provider))
    }

    /// Refuses `given` values of a per-hook `flag` unless there are none or one per `--hook`;
    /// `none` tells how to give none for one hook.
    fn one_per_hook(&self, flag: &str, given: usize, none: &str) -> anyhow::Result<()> {
        if given != 0 && given != self.hooks.len() {
            bail!(
                "{given} {flag} for {} --hook: give none, or one per hook in the same order{none}",
                self.hooks.len()
            );
        }
        Ok(())
    }

    /// The JSON config of each hook, in `--hook` order: read from its file and checked to be
    /// JSON, or `{}`.
    pub fn configs(&self) -> anyhow::Result<Vec<String>> {
        self.one_per_hook("--config", self.configs.len(), "")?;
        if self.configs.is_empty() {
            return Ok(vec!["{}".to_owned(); self.hooks.len()]);
        }
        self.configs.iter().map(|path| read_config(path)).collect()
    }

    /// The `--trust` keys, no pin: what every hook, routed ones included, must be signed by.
    pub fn key_trust(&self) -> anyhow::Result<Trust> {
        let mut trust = Trust::default();
        for path in &self.trusted {
            trust = trust.trust_key(PublicKey::read(path)?);
        }
        Ok(trust)
    }

    /// The trust of each hook, in `--hook` order: its `--pin` and the `--trust` keys.
    pub fn trusts(&self) -> anyhow::Result<Vec<Trust>> {
        self.one_per_hook("--pin", self.pins.len(), " (- for none)")?;
        let trust = self.key_trust()?;
        (0..self.hooks.len())
            .map(|i| match self.pins.get(i).map(String::as_str) {
                None | Some("-") => Ok(trust.clone()),
                Some(pin) => Ok(trust.clone().pin(pin)?),
            })
            .collect()
    }

    /// Loads every `--hook` with its config on `engine`, in `mode` (or `default_mode`), keeping
    /// at most `max_idle` warm instances of a reused hook; `adjust` may change each hook's
    /// limits (a command that always meters fuel, say).
    pub fn load(
        &self,
        engine: &HookEngine,
        default_mode: Mode,
        max_idle: usize,
        adjust: impl Fn(HookLimits) -> HookLimits,
    ) -> anyhow::Result<Vec<Loaded>> {
        let limits = adjust(self.limits()?);
        let mode = self.mode.unwrap_or(default_mode);
        let configs = self.configs()?;
        if let Some(stray) = self.monitor.iter().find(|m| !self.hooks.contains(m)) {
            bail!(
                "--monitor {}: not one of the --hook paths ({})",
                stray.display(),
                self.hooks
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let trusts = self.trusts()?;
        self.hooks
            .iter()
            .zip(configs)
            .zip(trusts)
            .map(|((path, config), trust)| {
                let options = HookOptions::default()
                    .with_config(config)
                    .with_limits(limits)
                    .with_monitor(self.monitor.contains(path));
                let (hook, bytes) = load_hook_file(engine, path, options, trust, mode, max_idle)?;
                Ok(Loaded {
                    path: path.clone(),
                    bytes,
                    hook,
                })
            })
            .collect()
    }
}

impl HookFlags {
    /// Loads the hooks of `--routes`, if given, like [`HookFlags::load`] loads `--hook`.
    pub fn load_routes(
        &self,
        engine: &HookEngine,
        default_mode: Mode,
        max_idle: usize,
    ) -> anyhow::Result<Vec<crate::routes::LoadedRoute>> {
        match &self.routes {
            None => Ok(Vec::new()),
            Some(path) => crate::routes::load(
                path,
                engine,
                self.limits()?,
                &self.key_trust()?,
                self.mode.unwrap_or(default_mode),
                max_idle,
            ),
        }
    }
}

/// A hook's name, from its file: `path-guard.rust` for `path-guard.rust.wasm`.
pub fn hook_name(path: &Path) -> String {
    path.file_stem()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// The signature beside a hook file (`HOOK.wasm.sig`) when `trust` requires one and it exists.
pub fn read_signature(path: &Path, trust: &Trust) -> anyhow::Result<Option<Signature>> {
    let sig = Signature::path_for(path);
    Ok(match trust.requires_signature() && sig.exists() {
        true => Some(Signature::read(&sig)?),
        false => None,
    })
}

/// Reads a hook file, naming it when it cannot be read.
/// Reads the hook file `path` (and its signature, when `trust` requires one) and loads it on
/// `engine` with `options`, named after the file, in `mode` (keeping at most `max_idle` warm
/// instances of a reused hook) and under `trust`; also says how many bytes the file has.
pub fn load_hook_file(
    engine: &HookEngine,
    path: &Path,
    options: HookOptions,
    trust: Trust,
    mode: Mode,
    max_idle: usize,
) -> anyhow::Result<(Hook, usize)> {
    let bytes = read_hook(path)?;
    let signature = read_signature(path, &trust)?;
    let options = options
        .with_name(hook_name(path))
        .with_mode(mode.resolve(&bytes, max_idle))
        .with_trust(trust);
    let hook = Hook::load_signed(engine, &bytes, signature.as_ref(), options)
        .with_context(|| format!("cannot load hook {}", path.display()))?;
    Ok((hook, bytes.len()))
}

pub fn read_hook(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read hook {}", path.display()))
}

/// Reads a hook's JSON config, naming the file when it cannot be read or is not JSON.
pub fn read_config(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    serde_json::from_str::<serde::de::IgnoredAny>(&text)
        .with_context(|| format!("config {} is not valid JSON", path.display()))?;
    Ok(text)
}
