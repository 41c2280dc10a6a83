//! Sealed envelopes: the only form in which a message reaches the core.
//!
//! [`channel`] makes a [`Sealer`] (the gateway's half) and an [`Opener`] (the core's half) that
//! share a key ring. Keys are AES-256-GCM keys drawn from the OS RNG (through `rand`), live only
//! in this process, and are zeroized when dropped. Each envelope is
//!
//! ```text
//! version: u8 = 1 | key id: u32 BE | sequence: u64 BE | ciphertext | tag: 16 bytes
//! ```
//!
//! The first 13 bytes (the header) are the AAD, so no header byte can change unnoticed, and the
//! plaintext is the whole message (kind, name, source, headers, body). The 96-bit nonce is the
//! key's random 4-byte prefix followed by the sequence number, so a nonce never repeats under one
//! key; the sealer moves to a fresh key after [`SealConfig::rotate_after`] envelopes, long before
//! the sequence space runs out. The opener authenticates first, then checks the sequence number
//! against a sliding window per key, so a replayed or too-old envelope is refused.
//!
//! AES-256-GCM comes from one of two [`Provider`]s, chosen in [`SealConfig::provider`]:
//! RustCrypto's pure-Rust `aes-gcm` (the default, and the only one in a default build), or AWS-LC
//! through `aws-lc-rs` (cargo feature `aws-lc`), whose assembly seals and opens a megabyte several
//! times faster (see BENCHMARKS.md, "Seal providers"). Both encrypt in place into the envelope's
//! buffer with a detached tag, and both write the same bytes, so an envelope sealed by one opens
//! with the other ([`channel_across`]) and the format above does not depend on the provider. All
//! that differs between them sits in one private module, `seal::cipher`.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use rand::TryRng;
use rand::rngs::SysRng;
use zeroize::Zeroizing;

use self::cipher::Cipher;

use crate::message::{DecodeError, Message};

mod cipher;

/// The envelope format version this build writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;
/// Bytes in an envelope header (version, key id, sequence number): the AAD.
pub const HEADER_LEN: usize = 13;
/// Bytes in the authentication tag at the end of an envelope.
pub const TAG_LEN: usize = 16;
/// Smallest body [`Sealer::seal_owned`] seals in its own buffer.
const IN_PLACE_MIN: usize = 16 << 10;

/// How a [`Sealer`]/[`Opener`] pair manages keys and replay.
///
/// Defaults: rotate after 2³² envelopes per key, a replay window of 65 536 sequence numbers,
/// 2 retired keys kept so that envelopes sealed just before a rotation still open, and
/// RustCrypto's AES-256-GCM ([`Provider::RustCrypto`]), also when the `aws-lc` feature is on.
///
/// The window must cover how far envelopes can overtake each other between sealing and opening:
/// with many tasks, a thread descheduled between the two lets the others seal and open
/// thousands of envelopes meanwhile (at 400 000 messages/s, 65 536 is ~160 ms of hiccup). A
/// smaller window refuses such late, legitimate envelopes as too old.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SealConfig {
    /// Envelopes sealed under one key before the sealer moves to a new one (at least 1).
    pub rotate_after: u64,
    /// How far behind the newest sequence number an envelope may arrive and still open (at
    /// least 64; rounded up to a multiple of 64).
    pub replay_window: u64,
    /// Retired keys kept for envelopes still in flight after a rotation.
    pub retired_keys: usize,
    /// Which implementation of AES-256-GCM seals and opens.
    pub provider: Provider,
}

/// An implementation of AES-256-GCM for the seal. Both produce the same envelopes: the choice is
/// one of speed and of what gets compiled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Provider {
    /// RustCrypto's `aes-gcm`: pure Rust, AES-NI and carry-less multiplication picked at run
    /// time. Always available; the default.
    #[default]
    RustCrypto,
    /// AWS-LC through `aws-lc-rs`: assembly (AES-NI, AVX-512, carry-less multiplication), several
    /// times faster on megabyte messages. Only with the `aws-lc` feature of this crate.
    #[cfg(feature = "aws-lc")]
    AwsLc,
}

with_fields!(SealConfig {
    rotate_after: u64 => with_rotate_after,
    replay_window: u64 => with_replay_window,
    retired_keys: usize => with_retired_keys,
    provider: Provider => with_provider,
});

impl Default for SealConfig {
    fn default() -> Self {
        SealConfig {
            rotate_after: 1 << 32,
            replay_window: 1 << 16,
            retired_keys: 2,
            provider: Provider::RustCrypto,
        }
    }
}

/// Why sealing or opening failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The envelope is shorter than a header and a tag.
    #[error("envelope truncated: {len} bytes, at least {min} needed")]
    Truncated {
        /// Bytes received.
        len: usize,
        /// Bytes needed at least.
        min: usize,
    },
    /// The envelope's format version is not one this build reads.
    #[error("unsupported envelope version {0} (this build reads version {ENVELOPE_VERSION})")]
    UnsupportedVersion(u8),
    /// No key with this id is held (another run's key, or one retired long ago).
    #[error("unknown key id {0:#010x}")]
    UnknownKey(u32),
    /// Authentication failed: a byte was changed, or the envelope was sealed under another key.
    #[error("envelope failed authentication (key {key_id:#010x}, sequence {sequence})")]
    Forged {
        /// Key id from the header.
        key_id: u32,
        /// Sequence number from the header.
        sequence: u64,
    },
    /// This sequence number was already opened under this key.
    #[error("replayed envelope: sequence {sequence} under key {key_id:#010x} was already opened")]
    Replayed {
        /// Key id from the header.
        key_id: u32,
        /// Sequence number from the header.
        sequence: u64,
    },
    /// The sequence number is behind the replay window.
    #[error(
        "envelope too old: sequence {sequence} under key {key_id:#010x} is behind the replay window (newest {newest}, window {window})"
    )]
    TooOld {
        /// Key id from the header.
        key_id: u32,
        /// Sequence number from the header.
        sequence: u64,
        /// Newest sequence number opened under this key.
        newest: u64,
        /// Window size.
        window: u64,
    },
    /// The authenticated plaintext is not a message (a bug in the sealer, never an attack).
    #[error("sealed plaintext is not a message: {0}")]
    Malformed(#[from] DecodeError),
    /// The message is too large for one envelope.
    #[error("message of {len} bytes is too large to seal")]
    TooLarge {
        /// Plaintext size.
        len: usize,
    },
    /// The OS random number generator failed while making a key.
    #[error("OS random number generator failed: {0}")]
    Rng(String),
}

/// A sealed message, as bytes. Anyone may build one from bytes; only an [`Opener`] holding the
/// right key can open it.
#[derive(Clone, PartialEq, Eq)]
pub struct Envelope(Vec<u8>);

impl Envelope {
    /// Takes bytes received from elsewhere; nothing is checked until [`Opener::open`].
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Envelope(bytes)
    }

    /// The envelope's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The envelope's bytes, owned.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Envelope({} bytes)", self.0.len())
    }
}

/// Makes a sealer and the opener that accepts what it seals, with a first key from the OS RNG.
pub fn channel(config: SealConfig) -> Result<(Sealer, Opener), SealError> {
    channel_across(config, config.provider)
}

/// [`channel`], with the opener decrypting in another provider than the sealer
/// ([`SealConfig::provider`]); both hold the same keys. This is how the tests show that an
/// envelope sealed by one provider opens with the other; a host wants [`channel`].
pub fn channel_across(
    config: SealConfig,
    opening: Provider,
) -> Result<(Sealer, Opener), SealError> {
    let config = SealConfig {
        rotate_after: config.rotate_after.max(1),
        replay_window: config.replay_window.max(64).div_ceil(64) * 64,
        ..config
    };
    let mut first_id = [0u8; 4];
    random(&mut first_id)?;
    let first = Key::generate(u32::from_be_bytes(first_id), &config, opening)?;
    let ring = Arc::new(Ring {
        config,
        opening,
        keys: RwLock::new(VecDeque::from([Arc::new(first)])),
    });
    Ok((Sealer { ring: ring.clone() }, Opener { ring }))
}

/// The gateway's half: seals messages under the current key.
#[derive(Debug, Clone)]
pub struct Sealer {
    ring: Arc<Ring>,
}

/// The core's half: authenticates envelopes, refuses replays, and decodes the message.
#[derive(Debug, Clone)]
pub struct Opener {
    ring: Arc<Ring>,
}

#[derive(Debug)]
struct Ring {
    config: SealConfig,
    /// The provider the opener decrypts with: `config.provider` but in [`channel_across`].
    opening: Provider,
    /// Newest key first; at most `1 + retired_keys` long.
    keys: RwLock<VecDeque<Arc<Key>>>,
}

struct Key {
    id: u32,
    nonce_prefix: [u8; 4],
    /// The key in its provider(s), wiped when dropped.
    cipher: Cipher,
    next_sequence: AtomicU64,
    window: Mutex<ReplayWindow>,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &format_args!("{:#010x}", self.id))
            .finish_non_exhaustive()
    }
}

impl Key {
    fn generate(id: u32, config: &SealConfig, opening: Provider) -> Result<Key, SealError> {
        let mut secret = Zeroizing::new([0u8; 32]);
        let mut nonce_prefix = [0u8; 4];
        random(&mut secret[..])?;
        random(&mut nonce_prefix)?;
        Ok(Key {
            id,
            nonce_prefix,
            cipher: Cipher::new(config.provider, opening, &secret),
            next_sequence: AtomicU64::new(0),
            window: Mutex::new(ReplayWindow::new(config.replay_window)),
        })
    }

    fn nonce(&self, sequence: u64) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[..4].copy_from_slice(&self.nonce_prefix);
        nonce[4..].copy_from_slice(&sequence.to_be_bytes());
        nonce
    }
}

/// Fills `bytes` from the OS random number generator.
fn random(bytes: &mut [u8]) -> Result<(), SealError> {
    SysRng
        .try_fill_bytes(bytes)
        .map_err(|e| SealError::Rng(e.to_string()))
}

fn header(key_id: u32, sequence: u64) -> [u8; HEADER_LEN] {
    let mut header = [0u8; HEADER_LEN];
    header[0] = ENVELOPE_VERSION;
    header[1..5].copy_from_slice(&key_id.to_be_bytes());
    header[5..].copy_from_slice(&sequence.to_be_bytes());
    header
}

impl Sealer {
    /// Seals a whole message under the current key, rotating the key first if its sequence space
    /// (as configured) is used up. The message is copied into the envelope; see
    /// [`Sealer::seal_owned`] to seal a large one without a copy.
    pub fn seal(&self, message: &Message) -> Result<Envelope, SealError> {
        let mut buf = Vec::with_capacity(HEADER_LEN + message.encoded_len() + TAG_LEN);
        buf.resize(HEADER_LEN, 0);
        message.encode_into(&mut buf);
        self.seal_buffer(buf)
    }

    /// [`Sealer::seal`], taking the message: the envelope is built in the body's own buffer
    /// (the body moves up to make room for the other fields), so a megabyte body costs no new
    /// allocation and no copy into one. The gateway seals this way.
    pub fn seal_owned(&self, message: Message) -> Result<Envelope, SealError> {
        // Below a few pages, one fresh buffer is cheaper than growing the body's.
        if message.body.len() < IN_PLACE_MIN {
            return self.seal(&message);
        }
        self.seal_buffer(message.encode_in_place(HEADER_LEN, TAG_LEN))
    }

    /// Encrypts `buf[HEADER_LEN..]` in place, writes the header and appends the tag.
    fn seal_buffer(&self, mut buf: Vec<u8>) -> Result<Envelope, SealError> {
        let (key, sequence) = self.next_nonce()?;
        buf[..HEADER_LEN].copy_from_slice(&header(key.id, sequence));
        let (aad, plaintext) = buf.split_at_mut(HEADER_LEN);
        let tag = key
            .cipher
            .seal(key.nonce(sequence), aad, plaintext)
            .map_err(|_| SealError::TooLarge {
                len: plaintext.len(),
            })?;
        buf.extend_from_slice(&tag);
        Ok(Envelope(buf))
    }

    /// Id of the key new envelopes are sealed under.
    pub fn current_key_id(&self) -> u32 {
        self.ring.current().id
    }

    fn next_nonce(&self) -> Result<(Arc<Key>, u64), SealError> {
        loop {
            let key = self.ring.current();
            let sequence = key.next_sequence.fetch_add(1, Ordering::Relaxed);
            if sequence < self.ring.config.rotate_after {
                return Ok((key, sequence));
            }
            self.ring.rotate(key.id)?;
        }
    }
}

impl Ring {
    fn current(&self) -> Arc<Key> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())[0].clone()
    }

    /// Replaces the key `spent` with a fresh one, unless another thread already did.
    fn rotate(&self, spent: u32) -> Result<(), SealError> {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if keys[0].id != spent {
            return Ok(());
        }
        let fresh = Key::generate(spent.wrapping_add(1), &self.config, self.opening)?;
        tracing::debug!(
            retired = format_args!("{spent:#010x}"),
            key = format_args!("{:#010x}", fresh.id),
            "rotated sealing key"
        );
        keys.push_front(Arc::new(fresh));
        keys.truncate(1 + self.config.retired_keys);
        Ok(())
    }

    fn find(&self, id: u32) -> Option<Arc<Key>> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        keys.iter().find(|k| k.id == id).cloned()
    }
}

impl Opener {
    /// Authenticates an envelope, checks it against the replay window and decodes the message.
    /// Any changed byte, a foreign or retired key, a replay, a truncation or an unknown version
    /// is an error; nothing is decoded before authentication succeeds. The message's body is
    /// decrypted and kept in the envelope's own buffer.
    pub fn open(&self, envelope: Envelope) -> Result<Message, SealError> {
        let mut buf = envelope.0;
        let min = HEADER_LEN + TAG_LEN;
        if buf.len() < min {
            return Err(SealError::Truncated {
                len: buf.len(),
                min,
            });
        }
        if buf[0] != ENVELOPE_VERSION {
            return Err(SealError::UnsupportedVersion(buf[0]));
        }
        let key_id = u32::from_be_bytes(buf[1..5].try_into().expect("4 bytes"));
        let sequence = u64::from_be_bytes(buf[5..HEADER_LEN].try_into().expect("8 bytes"));
        let key = self
            .ring
            .find(key_id)
            .ok_or(SealError::UnknownKey(key_id))?;
        let tag_at = buf.len() - TAG_LEN;
        let (aad, rest) = buf.split_at_mut(HEADER_LEN);
        let (ciphertext, tag) = rest.split_at_mut(tag_at - HEADER_LEN);
        let tag: &[u8; TAG_LEN] = (&*tag).try_into().expect("16 bytes");
        key.cipher
            .open(key.nonce(sequence), aad, ciphertext, tag)
            .map_err(|_| SealError::Forged { key_id, sequence })?;
        key.window
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .accept(sequence)
            .map_err(|rejected| match rejected {
                Rejected::Replayed => SealError::Replayed { key_id, sequence },
                Rejected::TooOld { newest, window } => SealError::TooOld {
                    key_id,
                    sequence,
                    newest,
                    window,
                },
            })?;
        Ok(Message::decode_owned(buf, HEADER_LEN..tag_at)?)
    }
}

/// Which sequence numbers were already seen, within `size` of the newest.
#[derive(Debug)]
struct ReplayWindow {
    newest: Option<u64>,
    /// Bit `s % size` is set when sequence `s` (within the window) was seen.
    bits: Vec<u64>,
}

enum Rejected {
    Replayed,
    TooOld { newest: u64, window: u64 },
}

impl ReplayWindow {
    fn new(size: u64) -> Self {
        ReplayWindow {
            newest: None,
            bits: vec![0; (size / 64) as usize],
        }
    }

    fn size(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    fn bit(&self, sequence: u64) -> (usize, u64) {
        let slot = sequence % self.size();
        ((slot / 64) as usize, 1 << (slot % 64))
    }

    fn accept(&mut self, sequence: u64) -> Result<(), Rejected> {
        let size = self.size();
        match self.newest {
            Some(newest) if sequence <= newest => {
                if newest - sequence >= size {
                    return Err(Rejected::TooOld {
                        newest,
                        window: size,
                    });
                }
                let (word, mask) = self.bit(sequence);
                if self.bits[word] & mask != 0 {
                    return Err(Rejected::Replayed);
                }
                self.bits[word] |= mask;
            }
            newest => {
                // Slide forward: forget the slots the window moves past.
                let start = newest.map_or(0, |n| n + 1);
                if sequence - start >= size {
                    self.bits.fill(0);
                } else {
                    for s in start..sequence {
                        let (word, mask) = self.bit(s);
                        self.bits[word] &= !mask;
                    }
                }
                let (word, mask) = self.bit(sequence);
                self.bits[word] |= mask;
                self.newest = Some(sequence);
            }
        }
        Ok(())
    }
}
