//! The compiled-hook cache: components compiled once, kept on disk, loaded without compiling.
//!
//! Compiling a large hook (a Python or JavaScript runtime: 2–20 MB of wasm) takes seconds;
//! loading its compiled form takes milliseconds. Entries are wasmtime's serialized components,
//! named by the SHA-256 of the component's bytes and a hash of everything in the engine that
//! shapes compiled code (wasmtime's version, the target, compiler and memory settings, fuel), so
//! a changed hook or engine never meets a stale entry: it simply misses and compiles.
//!
//! Trust: an entry is machine code the engine runs as it is, so a name is not enough to trust
//! it. The folder must be private: it is created 0700, and an existing one that is not owned by
//! this user or that its group or others can write to is refused (on Unix). Each entry starts
//! with a 32-byte HMAC-SHA256 tag over the component's digest, the engine key and the compiled
//! bytes, under a secret key kept in the folder (`key`, 32 random bytes, created 0600 on first
//! use; a key file others can read or write is refused). An entry is read whole, its tag checked,
//! and only then deserialized from those same bytes: an entry copied from another hook's name,
//! from another cache, or altered in any byte is never run; it is compiled again and replaced,
//! with a warning. Entries are written to a temporary file and renamed into place (no reader sees
//! half an entry), and wasmtime checks each entry's header and engine before using it.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use rand::TryRng;
use rand::rngs::SysRng;
use sha2::Sha256;
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::HookError;

/// Bytes of the cache's secret key, and of each entry's tag.
const KEY_LEN: usize = 32;
/// The key file's name in the cache folder.
const KEY_FILE: &str = "key";

/// A folder of compiled hooks for one engine configuration.
pub(crate) struct CompiledCache {
    dir: PathBuf,
    /// Hash of the engine's compatibility-relevant settings, in hex.
    engine_key: String,
    /// The secret that entries' tags are made with.
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for CompiledCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledCache")
            .field("dir", &self.dir)
            .field("engine_key", &self.engine_key)
            .finish_non_exhaustive()
    }
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
    /// Creates the folder if needed (private to this user), refuses one others can write to, and
    /// reads its key (made on first use).
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
        check_private(
            dir,
            &std::fs::metadata(dir).map_err(cannot)?,
            "folder",
            0o022,
        )
        .map_err(cannot)?;
        let key = read_or_make_key(&dir.join(KEY_FILE)).map_err(cannot)?;
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(CompiledCache {
            dir: dir.to_path_buf(),
            engine_key: format!("{:016x}", hasher.finish()),
            key,
        })
    }

    /// The folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    fn entry(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    /// The HMAC-SHA256 of the entry for the component `digest` holding `compiled`, under this
    /// cache's key; its tag is `finalize()`, and `verify_slice` checks one in constant time.
    fn tag(&self, digest: &str, compiled: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        for part in [
            digest.as_bytes(),
            b"\0",
            self.engine_key.as_bytes(),
            b"\0",
            compiled,
        ] {
            mac.update(part);
        }
        mac
    }

    /// The compiled component for `bytes` (whose SHA-256 is `digest`), from the cache when it is
    /// there and its tag proves it was stored for this digest, else compiled and stored. A cache
    /// that cannot be read or written costs a compile, never a failure.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
        digest: &str,
    ) -> Result<(Component, CacheOutcome), HookError> {
        let entry = self.entry(digest);
        if entry.is_file() {
            match self.read(engine, &entry, digest) {
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
                let tag = self.tag(digest, &compiled).finalize().into_bytes();
                if let Err(e) = write_atomically(&entry, &[&tag, &compiled]) {
                    tracing::warn!(entry = %entry.display(), "cannot store the compiled hook: {e}");
                }
            }
            Err(e) => tracing::warn!("cannot serialize the compiled hook: {e:#}"),
        }
        Ok((component, CacheOutcome::Stored))
    }

    /// Reads an entry whole, checks its tag, and deserializes those same bytes.
    fn read(&self, engine: &Engine, entry: &Path, digest: &str) -> wasmtime::Result<Component> {
        let stored = std::fs::read(entry)?;
        let Some((tag, compiled)) = stored.split_first_chunk::<KEY_LEN>() else {
            wasmtime::bail!("entry of {} bytes has no tag", stored.len());
        };
        if self.tag(digest, compiled).verify_slice(tag).is_err() {
            wasmtime::bail!(
                "its tag does not match: it was not stored by this cache for hook {digest}"
            );
        }
        deserialize(engine, compiled)
    }
}

/// Compiles a component, naming what is wrong with it.
pub(crate) fn compile(engine: &Engine, bytes: &[u8]) -> Result<Component, HookError> {
    Component::new(engine, bytes).map_err(|e| HookError::Compile(e.into_boxed_dyn_error()))
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, compiled: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: `compiled` is in memory (no file can change under it), and its tag, under this
    // cache's secret key, proves `CompiledCache::load` serialized it with this wasmtime for this
    // very component and engine; wasmtime checks its header and engine compatibility as well.
    // The module docs state the trust this relies on.
    unsafe { Component::deserialize(engine, compiled) }
}

/// Writes `parts` to `path` as one file, created 0600 in the same folder and renamed into place
/// (atomic).
fn write_atomically(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let mut partial = tempfile::NamedTempFile::new_in(path.parent().unwrap_or(Path::new(".")))?;
    for part in parts {
        partial.write_all(part)?;
    }
    partial.as_file().sync_all()?;
    partial.persist(path).map(drop).map_err(|e| e.error)
}

/// The cache's key from `path`, made (32 random bytes, 0600) when there is none yet.
fn read_or_make_key(path: &Path) -> std::io::Result<[u8; KEY_LEN]> {
    use std::io::{Error, ErrorKind};
    let bad = |why: String| Error::new(ErrorKind::InvalidData, why);
    if !path.exists() {
        let mut key = [0u8; KEY_LEN];
        SysRng
            .try_fill_bytes(&mut key)
            .map_err(|e| Error::other(format!("cannot make a cache key: {e}")))?;
        let mut partial = tempfile::NamedTempFile::new_in(path.parent().unwrap_or(Path::new(".")))?;
        partial.write_all(&key)?;
        partial.as_file().sync_all()?;
        // Another process may have made it meanwhile: then its key is the one.
        match partial.persist_noclobber(path) {
            Ok(_) => return Ok(key),
            Err(e) if e.error.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.error),
        }
    }
    let meta = std::fs::symlink_metadata(path)?;
    if !meta.is_file() {
        return Err(bad(format!("{} is not a regular file", path.display())));
    }
    check_private(path, &meta, "key file", 0o077)?;
    std::fs::read(path)?.try_into().map_err(|key: Vec<u8>| {
        bad(format!(
            "{} holds {} bytes, not a {KEY_LEN}-byte key",
            path.display(),
            key.len()
        ))
    })
}

/// Refuses `path` (a cache's `what`) unless this user owns it and no one else has the
/// permissions in `others` (0o022: write; 0o077: any).
#[cfg(unix)]
fn check_private(
    path: &Path,
    meta: &std::fs::Metadata,
    what: &str,
    others: u32,
) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::geteuid().as_raw();
    let why = if meta.uid() != me {
        format!(
            "the cache {what} {} is owned by uid {}, not by this user (uid {me})",
            path.display(),
            meta.uid()
        )
    } else if meta.mode() & others != 0 {
        let open_to = match others {
            0o022 => "writable by its group or others",
            _ => "readable or writable by its group or others",
        };
        format!(
            "the cache {what} {} is {open_to} (mode {:o}): whoever can write to it can run code \
             in this process; make it private (chmod {:o})",
            path.display(),
            meta.mode() & 0o7777,
            meta.mode() & 0o7777 & !others
        )
    } else {
        return Ok(());
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::PermissionDenied,
        why,
    ))
}

#[cfg(not(unix))]
fn check_private(
    _path: &Path,
    _meta: &std::fs::Metadata,
    _what: &str,
    _others: u32,
) -> std::io::Result<()> {
    Ok(())
}
