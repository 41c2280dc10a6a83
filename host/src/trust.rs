//! Pinned and signed hooks: which hooks a host agrees to load.
//!
//! A [`Trust`] (in [`HookOptions::trust`](crate::HookOptions::trust)) can **pin** a hook by the
//! SHA-256 of its component bytes — any other bytes are refused, naming both digests — and can
//! require a **signature**: a detached Ed25519 signature over the component's bytes (from
//! `ed25519-dalek`), made by one of a set of trusted public keys. Both are checked before the
//! bytes are compiled, at load and on every reload ([`Gateway::reload`](crate::Gateway::reload),
//! [`HookWatcher`](crate::HookWatcher)): a reload that fails them leaves the old hook serving.
//! A reload keeps the hook's options, so a pinned hook reloads only to the same bytes: to move a
//! pin, load the new hook with new options and [`Gateway::swap_hook`](crate::Gateway::swap_hook).
//! A default `Trust` pins nothing and requires no signature.
//!
//! Keys and signatures are one-line text files (what `airlock keygen` and `airlock sign`
//! write): `airlock-ed25519-secret BASE64` (32 bytes), `airlock-ed25519-public BASE64` (32
//! bytes), and `airlock-ed25519-signature PUBLIC-BASE64 SIGNATURE-BASE64` (the signer's public
//! key, then the 64-byte signature). A signature sits beside its hook as `HOOK.wasm.sig`.

use std::fmt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rand::TryRng as _;
use rand::rngs::SysRng;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroize as _;

use crate::error::HookError;

const SECRET_TAG: &str = "airlock-ed25519-secret";
const PUBLIC_TAG: &str = "airlock-ed25519-public";
const SIGNATURE_TAG: &str = "airlock-ed25519-signature";

/// Why a key, a signature or a pin could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrustError {
    /// The text is not in the expected form.
    #[error("{what} is not valid: {problem}")]
    Format {
        /// What was being read (a file name, or "pin").
        what: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A file could not be read or written.
    #[error("cannot use {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The OS random number generator failed.
    #[error("the OS random number generator failed: {0}")]
    Random(String),
}

/// A public key a host trusts to sign hooks.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses `airlock-ed25519-public BASE64`; `what` names the source in errors.
    pub fn parse(text: &str, what: &str) -> Result<PublicKey, TrustError> {
        let bytes = tagged::<32>(text, PUBLIC_TAG, what)?;
        VerifyingKey::from_bytes(&bytes)
            .map(PublicKey)
            .map_err(|e| format_error(what, format!("not an Ed25519 public key: {e}")))
    }

    /// Reads a public key file.
    pub fn read(path: impl AsRef<Path>) -> Result<PublicKey, TrustError> {
        let path = path.as_ref();
        PublicKey::parse(&read_text(path)?, &path.display().to_string())
    }

    /// The key's one-line text form.
    pub fn to_text(&self) -> String {
        format!("{PUBLIC_TAG} {}\n", BASE64.encode(self.0.as_bytes()))
    }
}

impl fmt::Display for PublicKey {
    /// The key in base64, as it appears in key and signature files.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&BASE64.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

/// A key that signs hooks (wiped from memory when dropped).
pub struct SecretKey(SigningKey);

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", self.public())
    }
}

impl SecretKey {
    /// A new key from the OS random number generator.
    pub fn generate() -> Result<SecretKey, TrustError> {
        let mut seed = [0u8; 32];
        SysRng
            .try_fill_bytes(&mut seed)
            .map_err(|e| TrustError::Random(e.to_string()))?;
        let key = SigningKey::from_bytes(&seed);
        seed.zeroize();
        Ok(SecretKey(key))
    }

    /// Parses `airlock-ed25519-secret BASE64`; `what` names the source in errors.
    pub fn parse(text: &str, what: &str) -> Result<SecretKey, TrustError> {
        let mut seed = tagged::<32>(text, SECRET_TAG, what)?;
        let key = SigningKey::from_bytes(&seed);
        seed.zeroize();
        Ok(SecretKey(key))
    }

    /// Reads a secret key file.
    pub fn read(path: impl AsRef<Path>) -> Result<SecretKey, TrustError> {
        let path = path.as_ref();
        let mut text = read_text(path)?;
        let key = SecretKey::parse(&text, &path.display().to_string());
        text.zeroize();
        key
    }

    /// The key's one-line text form (secret: keep it so).
    pub fn to_text(&self) -> String {
        format!("{SECRET_TAG} {}\n", BASE64.encode(self.0.as_bytes()))
    }

    /// The public half, to give to hosts.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs a hook component's bytes.
    pub fn sign(&self, component: &[u8]) -> Signature {
        Signature {
            signer: self.public(),
            signature: self.0.sign(component),
        }
    }
}

/// A detached signature over a hook component's bytes, with the public key that made it.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    signer: PublicKey,
    signature: ed25519_dalek::Signature,
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature(by {})", self.signer)
    }
}

impl Signature {
    /// Parses `airlock-ed25519-signature PUBLIC SIGNATURE`; `what` names the source in errors.
    pub fn parse(text: &str, what: &str) -> Result<Signature, TrustError> {
        let mut words = text.split_ascii_whitespace();
        if words.next() != Some(SIGNATURE_TAG) {
            return Err(format_error(
                what,
                format!("does not start with {SIGNATURE_TAG}"),
            ));
        }
        let (Some(key), Some(signature), None) = (words.next(), words.next(), words.next()) else {
            return Err(format_error(
                what,
                "expected a public key and a signature after the tag".to_owned(),
            ));
        };
        let signer = PublicKey::parse(&format!("{PUBLIC_TAG} {key}"), what)?;
        let signature = decode::<64>(signature, what)?;
        Ok(Signature {
            signer,
            signature: ed25519_dalek::Signature::from_bytes(&signature),
        })
    }

    /// Reads a signature file.
    pub fn read(path: impl AsRef<Path>) -> Result<Signature, TrustError> {
        let path = path.as_ref();
        Signature::parse(&read_text(path)?, &path.display().to_string())
    }

    /// The signature's one-line text form.
    pub fn to_text(&self) -> String {
        format!(
            "{SIGNATURE_TAG} {} {}\n",
            self.signer,
            BASE64.encode(self.signature.to_bytes())
        )
    }

    /// The key that made it.
    pub fn signer(&self) -> &PublicKey {
        &self.signer
    }

    /// Where a hook's signature is kept: `HOOK.wasm.sig` beside it.
    pub fn path_for(hook: &Path) -> PathBuf {
        let mut path = hook.as_os_str().to_owned();
        path.push(".sig");
        PathBuf::from(path)
    }
}

/// Which hooks a host agrees to load: an optional SHA-256 pin and a set of trusted signing keys.
/// Default: no pin, no signature required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    pin: Option<String>,
    keys: Vec<PublicKey>,
}

impl Trust {
    /// This trust with the hook pinned to `sha256`, the hex SHA-256 of its component bytes
    /// (64 hex digits, either case).
    pub fn pin(mut self, sha256: &str) -> Result<Trust, TrustError> {
        let well_formed = sha256.len() == 64 && sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !well_formed {
            return Err(format_error(
                "pin",
                format!("{sha256:?} is not a SHA-256 digest (64 hex digits)"),
            ));
        }
        self.pin = Some(sha256.to_ascii_lowercase());
        Ok(self)
    }

    /// This trust requiring a signature, from `key` or any other key trusted so far.
    #[must_use]
    pub fn trust_key(mut self, key: PublicKey) -> Trust {
        if !self.keys.contains(&key) {
            self.keys.push(key);
        }
        self
    }

    /// The pin, in lowercase hex.
    pub fn pinned(&self) -> Option<&str> {
        self.pin.as_deref()
    }

    /// Whether a signature is required (some key is trusted).
    pub fn requires_signature(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The trusted keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    /// Checks component bytes whose SHA-256 is `digest` (lowercase hex) against the pin and the
    /// trusted keys.
    pub(crate) fn check(
        &self,
        bytes: &[u8],
        digest: &str,
        signature: Option<&Signature>,
    ) -> Result<(), HookError> {
        if let Some(pin) = &self.pin
            && pin != digest
        {
            return Err(HookError::PinMismatch {
                pinned: pin.clone(),
                actual: digest.to_owned(),
            });
        }
        if self.keys.is_empty() {
            return Ok(());
        }
        let Some(signature) = signature else {
            return Err(HookError::Unsigned {
                digest: digest.to_owned(),
                trusted: self.keys.len(),
            });
        };
        if !self.keys.contains(&signature.signer) {
            return Err(HookError::UntrustedKey {
                key: signature.signer.to_string(),
                trusted: self.keys.len(),
            });
        }
        signature
            .signer
            .0
            .verify_strict(bytes, &signature.signature)
            .map_err(|_| HookError::BadSignature {
                key: signature.signer.to_string(),
                digest: digest.to_owned(),
            })
    }
}

/// The hex SHA-256 of component bytes, as [`crate::Hook::digest`] gives it.
pub(crate) fn digest(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

fn format_error(what: &str, problem: String) -> TrustError {
    TrustError::Format {
        what: what.to_owned(),
        problem,
    }
}

fn read_text(path: &Path) -> Result<String, TrustError> {
    std::fs::read_to_string(path).map_err(|source| TrustError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The `N` bytes after `tag` in a one-line text.
fn tagged<const N: usize>(text: &str, tag: &str, what: &str) -> Result<[u8; N], TrustError> {
    let mut words = text.split_ascii_whitespace();
    if words.next() != Some(tag) {
        return Err(format_error(what, format!("does not start with {tag}")));
    }
    match (words.next(), words.next()) {
        (Some(value), None) => decode::<N>(value, what),
        _ => Err(format_error(
            what,
            format!("expected one base64 value after {tag}"),
        )),
    }
}

fn decode<const N: usize>(value: &str, what: &str) -> Result<[u8; N], TrustError> {
    let bytes = BASE64
        .decode(value)
        .map_err(|e| format_error(what, format!("the value is not base64: {e}")))?;
    let len = bytes.len();
    bytes
        .try_into()
        .map_err(|_| format_error(what, format!("{len} bytes where {N} are expected")))
}
