//! The compiled-hook cache: components compiled once, kept on disk, loaded without compiling.
//!
//! Compiling a large hook (a Python or JavaScript runtime: 2–20 MB of wasm) takes seconds;
//! loading its compiled form takes milliseconds. Entries are wasmtime's serialized components,
//! named by the SHA-256 of the component's bytes and a hash of everything in the engine that
//! shapes compiled code (wasmtime's version, the target, compiler and memory settings, fuel), so
//! a changed hook or engine never meets a stale entry: it simply misses and compiles.
//!
//! Trust: an entry is machine code the engine runs as it is. The folder is created private to
//! its user (0700 on Unix), entries are written to a temporary file and renamed into place (no
//! reader sees half an entry), and wasmtime checks each entry's header and engine before using
//! it. Give it a folder nobody else can write to: whoever can write an entry can run code in the
//! host. An entry that fails to load is compiled again and replaced.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::HookError;

/// A folder of compiled hooks for one engine configuration.
#[derive(Debug)]
pub(crate) struct CompiledCache {
    dir: PathBuf,
    /// Hash of the engine's compatibility-relevant settings, in hex.
    engine_key: String,
}

/// Where a component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    /// Compiled now; no cache is set up.
    Compiled,
    /// Found in the cache: not compiled.
    Hit,
    /// Not in the cache: compiled now, and stored for next time.
    Stored,
}

impl CompiledCache {
    /// Creates the folder if needed (private to this user).
    pub(crate) fn open(dir: &Path, engine: &Engine) -> Result<Self, HookError> {
        let cannot = |source| HookError::Cache {
            path: dir.to_path_buf(),
            source,
        };
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(cannot)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(CompiledCache {
            dir: dir.to_path_buf(),
            engine_key: format!("{:016x}", hasher.finish()),
        })
    }

    /// The folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    /// The compiled component for `bytes` (whose SHA-256 is `digest`), from the cache when it is
    /// there, else compiled and stored. A cache that cannot be read or written costs a compile,
    /// never a failure.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(Component, CacheOutcome), HookError> {
        let entry = self.entry(digest);
        if entry.is_file() {
            match deserialize(engine, &entry) {
                Ok(component) => return Ok((component, CacheOutcome::Hit)),
                Err(e) => tracing::warn!(
                    entry = %entry.display(),
                    "compiled hook in the cache is unusable, compiling again: {e:#}"
                ),
            }
        }
        let component = compile(engine, bytes)?;
        match component.serialize() {
            Ok(compiled) => {
                if let Err(e) = write_atomically(&entry, &compiled) {
                    tracing::warn!(entry = %entry.display(), "cannot store the compiled hook: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot serialize the compiled hook: {e:#}"),
        }
        Ok((component, CacheOutcome::Stored))
    }
}

/// Compiles a component, naming what is wrong with it.
pub(crate) fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, HookError> {
    Component::new(engine, bytes).map_err(|e| HookError::Compile(e.into_boxed_dyn_error()))
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, entry: &Path) -> wasmtime::Result<Component> {
    // SAFETY: the entry was written by `CompiledCache::load` (serialized by this wasmtime, into a
    // folder private to this user, renamed into place whole), and wasmtime checks its header and
    // engine compatibility before using it. The module docs state the trust this relies on.
    unsafe { Component::deserialize_file(engine, entry) }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // Created 0600 in the same folder, so the rename is atomic.
    let mut partial = tempfile::NamedTempFile::new_in(path.parent().unwrap_or(Path::new(".")))?;
    partial.write_all(bytes)?;
    partial.as_file().sync_all()?;
    partial.persist(path).map(drop).map_err(|e| e.error)
}
