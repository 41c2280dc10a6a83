//! Why a hook could not be loaded, and the engine or cache set up.
//!
//! A hook's fault while it runs is not here: that is a verdict (a `hook-*` [`Rejection`]). These
//! are the errors of loading and setting up, each naming the value it is about; the underlying
//! error is the [`source`](std::error::Error::source), not folded into the text.

use std::path::PathBuf;

use crate::verdict::Rejection;

/// An error from a lower layer (wasmtime, the OS), kept as the source of a [`HookError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a hook could not be loaded (or the engine it needs set up).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HookError {
    /// The engine could not be set up.
    #[error("cannot set up the wasm engine")]
    Engine(#[source] BoxError),
    /// The compiled-hook cache folder cannot be used.
    #[error("cannot use {} as the hook cache", path.display())]
    Cache {
        /// The folder given.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The hook file could not be read.
    #[error("cannot read hook {}", path.display())]
    Read {
        /// The path given.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are a core wasm module, not a component.
    #[error(
        "this is a core wasm module, not a component: wrap it with `airlock component MODULE.wasm -o HOOK.wasm`"
    )]
    CoreModule,
    /// The bytes are not a valid component.
    #[error("not a valid wasm component")]
    Compile(#[source] BoxError),
    /// The hook imports something Airlock does not provide.
    #[error("hook imports what Airlock does not provide: {} (Airlock provides {}, {}, the types of {}, and deny-by-default WASI 0.2 stubs)", .0.join(", "), crate::hook::LOG_IMPORT, crate::hook::STATE_IMPORT, crate::hook::TYPES_IMPORT)]
    UnsupportedImports(Vec<String>),
    /// An import or export has the right name but the wrong shape, or an export is missing.
    #[error("hook does not match the airlock:hook world: {0}")]
    World(String),
    /// The hook's `configure` refused the config it was given.
    #[error("hook refused its config: {0}")]
    ConfigRefused(String),
    /// The hook faulted while configuring (trap, timeout, memory…).
    #[error("hook failed while configuring: {0}")]
    ConfigFault(Rejection),
    /// The hook's bytes are not the ones its pin names.
    #[error("hook digest {actual} does not match its pin {pinned}: refusing to load it")]
    PinMismatch {
        /// The SHA-256 the hook is pinned to.
        pinned: String,
        /// The SHA-256 of the bytes given.
        actual: String,
    },
    /// A signature is required and the hook has none.
    #[error(
        "hook {digest} is not signed, and a signature from one of the {trusted} trusted keys is required"
    )]
    Unsigned {
        /// The SHA-256 of the hook's bytes.
        digest: String,
        /// How many keys are trusted.
        trusted: usize,
    },
    /// The hook is signed by a key the host does not trust.
    #[error("hook is signed by key {key}, which is not one of the {trusted} trusted keys")]
    UntrustedKey {
        /// The signer's public key (base64).
        key: String,
        /// How many keys are trusted.
        trusted: usize,
    },
    /// The signature does not verify over the hook's bytes.
    #[error(
        "the signature by key {key} does not match hook {digest}: the hook changed after it was signed, or the signature is another hook's"
    )]
    BadSignature {
        /// The signer's public key (base64).
        key: String,
        /// The SHA-256 of the hook's bytes.
        digest: String,
    },
    /// The hook's signature file could not be read.
    #[error("cannot read the hook's signature")]
    Signature(#[source] crate::trust::TrustError),
    /// A limit is out of range.
    #[error("invalid hook limit: {0}")]
    Limit(String),
}

impl HookError {
    /// A wasmtime error setting up the engine.
    pub(crate) fn engine(error: wasmtime::Error) -> HookError {
        HookError::Engine(error.into_boxed_dyn_error())
    }
}

/// `error` and its sources, joined with `: ` (as anyhow's `{:#}` shows them), for a log field or
/// a status text.
pub(crate) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
