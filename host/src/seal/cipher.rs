//! The one place that knows the AES-256-GCM providers: a key context per provider, and detached
//! sealing and opening in place. Both providers compute standard AES-256-GCM (96-bit nonce,
//! 128-bit tag), so what one seals the other opens, and the envelope format does not depend on
//! the provider.

use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};

use super::{Provider, TAG_LEN};

/// One key, ready in the provider that uses it. Each wipes its key material when dropped:
/// aes-gcm's key schedule and GHASH key through its `zeroize` feature (checked at compile time
/// below), AWS-LC's context when AWS-LC frees it.
pub(super) enum Cipher {
    /// Boxed so that the key schedule is written once, on the heap, and never moved again (a
    /// move would leave a copy that nothing wipes).
    RustCrypto(Box<Aes256Gcm>),
    #[cfg(feature = "aws-lc")]
    AwsLc(aws_lc_rs::aead::LessSafeKey),
    /// The same key in two providers: seals with the first, opens with the second
    /// ([`super::channel_across`]).
    #[cfg(feature = "aws-lc")]
    Across(Box<(Cipher, Cipher)>),
}

/// Authentication failed, or the input is too long for GCM.
pub(super) struct Failed;

/// aes-gcm's key state is wiped on drop only with its `zeroize` feature; this fails to compile
/// without it.
fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
const _: fn() = zeroized_on_drop::<Aes256Gcm>;

impl Cipher {
    /// `secret` in the provider that seals (`sealing`) and the one that opens (`opening`).
    pub(super) fn new(sealing: Provider, opening: Provider, secret: &[u8; 32]) -> Cipher {
        #[cfg(feature = "aws-lc")]
        if sealing != opening {
            let both = (Cipher::one(sealing, secret), Cipher::one(opening, secret));
            return Cipher::Across(Box::new(both));
        }
        let _ = opening;
        Cipher::one(sealing, secret)
    }

    fn one(provider: Provider, secret: &[u8; 32]) -> Cipher {
        match provider {
            Provider::RustCrypto => Cipher::RustCrypto(Box::new(
                Aes256Gcm::new_from_slice(secret).expect("AES-256-GCM takes a 32-byte key"),
            )),
            #[cfg(feature = "aws-lc")]
            Provider::AwsLc => {
                use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
                let key =
                    UnboundKey::new(&AES_256_GCM, secret).expect("AES-256-GCM takes a 32-byte key");
                Cipher::AwsLc(LessSafeKey::new(key))
            }
        }
    }

    /// Encrypts `in_out` in place and returns the tag.
    pub(super) fn seal(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
    ) -> Result<[u8; TAG_LEN], Failed> {
        match self {
            Cipher::RustCrypto(cipher) => cipher
                .encrypt_inout_detached(&aes_gcm::Nonce::from(nonce), aad, in_out.into())
                .map(Into::into)
                .map_err(|_| Failed),
            #[cfg(feature = "aws-lc")]
            Cipher::AwsLc(key) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                let tag = key
                    .seal_in_place_separate_tag(
                        Nonce::assume_unique_for_key(nonce),
                        Aad::from(aad),
                        in_out,
                    )
                    .map_err(|_| Failed)?;
                Ok(tag.as_ref().try_into().expect("a 16-byte tag"))
            }
            #[cfg(feature = "aws-lc")]
            Cipher::Across(both) => both.0.seal(nonce, aad, in_out),
        }
    }

    /// Authenticates `in_out` against `tag` and decrypts it in place. On failure `in_out` holds
    /// no plaintext the caller may use.
    pub(super) fn open(
        &self,
        nonce: [u8; 12],
        aad: &[u8],
        in_out: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), Failed> {
        match self {
            Cipher::RustCrypto(cipher) => cipher
                .decrypt_inout_detached(
                    &aes_gcm::Nonce::from(nonce),
                    aad,
                    in_out.into(),
                    &aes_gcm::Tag::from(*tag),
                )
                .map_err(|_| Failed),
            #[cfg(feature = "aws-lc")]
            Cipher::AwsLc(key) => {
                use aws_lc_rs::aead::{Aad, Nonce};
                key.open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(aad),
                    tag,
                    in_out,
                )
                .map(|_| ())
                .map_err(|_| Failed)
            }
            #[cfg(feature = "aws-lc")]
            Cipher::Across(both) => both.1.open(nonce, aad, in_out, tag),
        }
    }
}
