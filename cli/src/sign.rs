//! `airlock keygen` and `airlock sign`: Ed25519 key pairs, and detached signatures over hook
//! components that a host checks before loading (`--trust KEY.pub`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;

use airlock::trust::{SecretKey, Signature};

use crate::flags::read_hook;

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the key pair: NAME.key (secret, readable by this user only) and NAME.pub.
    #[arg(short, long, value_name = "NAME")]
    output: PathBuf,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The secret key (`airlock keygen`'s NAME.key).
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// The hook component to sign.
    hook: PathBuf,
    /// Where to write the signature [default: HOOK.wasm.sig, where hosts look for it].
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub fn keygen(args: KeygenArgs) -> anyhow::Result<()> {
    let with = |ext: &str| {
        let mut path = args.output.as_os_str().to_owned();
        path.push(ext);
        PathBuf::from(path)
    };
    let (secret_path, public_path) = (with(".key"), with(".pub"));
    for path in [&secret_path, &public_path] {
        if path.exists() {
            bail!("{} exists: not overwriting a key", path.display());
        }
    }
    let key = SecretKey::generate()?;
    write_new(&secret_path, key.to_text().as_bytes(), true)?;
    write_new(&public_path, key.public().to_text().as_bytes(), false)?;
    eprintln!(
        "wrote {} (secret) and {} (give it to hosts: --trust {})",
        secret_path.display(),
        public_path.display(),
        public_path.display()
    );
    Ok(())
}

pub fn sign(args: SignArgs) -> anyhow::Result<()> {
    let key = SecretKey::read(&args.key)?;
    let bytes = read_hook(&args.hook)?;
    let output = args
        .output
        .unwrap_or_else(|| Signature::path_for(&args.hook));
    let signature = key.sign(&bytes);
    std::fs::write(&output, signature.to_text())
        .with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!(
        "wrote {} (key {}, hook {} bytes)",
        output.display(),
        signature.signer(),
        bytes.len()
    );
    Ok(())
}

/// Creates `path` (never replacing a file), readable by this user only when `secret`.
fn write_new(path: &Path, contents: &[u8], secret: bool) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("cannot write {}", path.display()))
}
