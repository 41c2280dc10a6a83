//! Envelope attacks: every tampering, replay, foreign key, truncation and unknown version is
//! refused; seal then open is the identity.
//!
//! Each test below runs four times (the modules at the end): with RustCrypto alone, with AWS-LC
//! alone, and sealed by each provider and opened by the other, so both providers pass the same
//! tests and write envelopes the other opens.

use airlock::seal::{self, HEADER_LEN, Opener, Provider, Sealer, TAG_LEN};
use airlock::{Body, Envelope, Header, Kind, Message, SealConfig, SealError, Source};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Which provider seals and which opens.
#[derive(Debug, Clone, Copy)]
struct Providers {
    sealing: Provider,
    opening: Provider,
}

impl Providers {
    fn channel(self, config: SealConfig) -> (Sealer, Opener) {
        let config = config.with_provider(self.sealing);
        seal::channel_across(config, self.opening).unwrap()
    }

    fn default_channel(self) -> (Sealer, Opener) {
        self.channel(SealConfig::default())
    }
}

fn message() -> Message {
    Message {
        id: 42,
        kind: Kind::Command,
        name: "fs_read".into(),
        source: Source::new("main", "main", "tauri://localhost"),
        headers: vec![Header::new("X-Trace", "abc")],
        body: Body::Json(r#"{"path":"notes.txt"}"#.into()),
    }
}

fn seal_then_open_returns_the_message(p: Providers) {
    let (sealer, opener) = p.default_channel();
    let envelope = sealer.seal(&message()).unwrap();
    assert_eq!(opener.open(envelope).unwrap(), message());
}

fn a_message_sealed_in_its_own_buffer_opens_to_the_same_message_at_every_size(p: Providers) {
    let (sealer, opener) = p.default_channel();
    // Both sides of the size where sealing moves to the body's own buffer, JSON and bytes.
    for len in [0, 100, (16 << 10) - 1, 16 << 10, 1 << 20] {
        for body in [
            Body::Json(format!(r#""{}""#, "x".repeat(len))),
            Body::Bytes((0..len).map(|i| i as u8).collect()),
        ] {
            let message = Message { body, ..message() };
            let envelope = sealer.seal_owned(message.clone()).unwrap();
            let copied = sealer.seal(&message).unwrap();
            assert_eq!(envelope.as_bytes().len(), copied.as_bytes().len());
            assert_eq!(opener.open(envelope).unwrap(), message, "{len} bytes");
        }
    }
}

fn a_tampered_byte_in_an_envelope_sealed_in_place_is_rejected(p: Providers) {
    let (sealer, opener) = p.default_channel();
    let message = Message {
        body: Body::Bytes(vec![7; 100 << 10]),
        ..message()
    };
    let original = sealer.seal_owned(message).unwrap().into_bytes();
    for index in [
        0,
        5,
        HEADER_LEN,
        HEADER_LEN + 60,
        original.len() / 2,
        original.len() - 1,
    ] {
        let mut tampered = original.clone();
        tampered[index] ^= 0x20;
        assert!(
            opener.open(Envelope::from_bytes(tampered)).is_err(),
            "byte {index}"
        );
    }
    opener.open(Envelope::from_bytes(original)).unwrap();
}

fn the_whole_message_is_encrypted_not_just_the_body(p: Providers) {
    let (sealer, _) = p.default_channel();
    let bytes = sealer.seal(&message()).unwrap().into_bytes();
    for visible in [
        "fs_read",
        "tauri://localhost",
        "X-Trace",
        "notes.txt",
        "main",
    ] {
        assert!(
            !bytes
                .windows(visible.len())
                .any(|w| w == visible.as_bytes()),
            "{visible:?} is readable in the envelope"
        );
    }
}

fn every_single_byte_flip_is_rejected(p: Providers) {
    let (sealer, opener) = p.default_channel();
    let original = sealer.seal(&message()).unwrap().into_bytes();
    for index in 0..original.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut tampered = original.clone();
            tampered[index] ^= flip;
            let result = opener.open(Envelope::from_bytes(tampered));
            assert!(
                result.is_err(),
                "flip {flip:#04x} at byte {index} was accepted"
            );
        }
    }
    // The untouched envelope still opens: the flips were refused for being flips.
    opener.open(Envelope::from_bytes(original)).unwrap();
}

fn a_replayed_envelope_is_rejected(p: Providers) {
    let (sealer, opener) = p.default_channel();
    let envelope = sealer.seal(&message()).unwrap();
    opener.open(envelope.clone()).unwrap();
    assert!(matches!(
        opener.open(envelope),
        Err(SealError::Replayed { .. })
    ));
}

fn envelopes_may_arrive_out_of_order_within_the_replay_window(p: Providers) {
    let (sealer, opener) = p.default_channel();
    let envelopes: Vec<Envelope> = (0..100).map(|_| sealer.seal(&message()).unwrap()).collect();
    for envelope in envelopes.into_iter().rev() {
        opener.open(envelope).unwrap();
    }
}

fn an_envelope_behind_the_replay_window_is_rejected_as_too_old(p: Providers) {
    let config = SealConfig::default().with_replay_window(64);
    let (sealer, opener) = p.channel(config);
    let old = sealer.seal(&message()).unwrap();
    let mut newest = None;
    for _ in 0..64 {
        newest = Some(sealer.seal(&message()).unwrap());
    }
    opener.open(newest.unwrap()).unwrap();
    assert!(matches!(opener.open(old), Err(SealError::TooOld { .. })));
}

fn an_envelope_sealed_by_another_run_is_rejected(p: Providers) {
    let (sealer, _) = p.default_channel();
    let (_, other_opener) = p.default_channel();
    let envelope = sealer.seal(&message()).unwrap();
    assert!(other_opener.open(envelope.clone()).is_err());

    // Even when the other run happens to use the same key id, authentication fails.
    let (other_sealer, other_opener) = p.default_channel();
    let mut bytes = envelope.into_bytes();
    bytes[1..5].copy_from_slice(&other_sealer.current_key_id().to_be_bytes());
    assert!(matches!(
        other_opener.open(Envelope::from_bytes(bytes)),
        Err(SealError::Forged { .. })
    ));
}

fn every_truncation_is_rejected(p: Providers) {
    let (sealer, opener) = p.default_channel();
    let bytes = sealer.seal(&message()).unwrap().into_bytes();
    for len in 0..bytes.len() {
        let result = opener.open(Envelope::from_bytes(bytes[..len].to_vec()));
        assert!(result.is_err(), "a {len}-byte prefix was accepted");
    }
    assert!(matches!(
        opener.open(Envelope::from_bytes(
            bytes[..HEADER_LEN + TAG_LEN - 1].to_vec()
        )),
        Err(SealError::Truncated { .. })
    ));
}

fn an_unknown_envelope_version_is_rejected(p: Providers) {
    let (sealer, opener) = p.default_channel();
    let mut bytes = sealer.seal(&message()).unwrap().into_bytes();
    bytes[0] = 2;
    assert!(matches!(
        opener.open(Envelope::from_bytes(bytes)),
        Err(SealError::UnsupportedVersion(2))
    ));
}

fn the_key_rotates_before_its_sequence_space_is_used_up(p: Providers) {
    let config = SealConfig::default().with_rotate_after(10);
    let (sealer, opener) = p.channel(config);
    let first_key = sealer.current_key_id();
    let envelopes: Vec<Envelope> = (0..25).map(|_| sealer.seal(&message()).unwrap()).collect();
    assert_ne!(sealer.current_key_id(), first_key);
    let key_ids: std::collections::BTreeSet<[u8; 4]> = envelopes
        .iter()
        .map(|e| e.as_bytes()[1..5].try_into().unwrap())
        .collect();
    assert_eq!(key_ids.len(), 3, "25 envelopes at 10 per key use 3 keys");
    for envelope in envelopes {
        opener.open(envelope).unwrap();
    }
}

fn envelopes_under_a_key_retired_too_long_ago_are_rejected(p: Providers) {
    let config = SealConfig::default()
        .with_rotate_after(1)
        .with_retired_keys(1);
    let (sealer, opener) = p.channel(config);
    let oldest = sealer.seal(&message()).unwrap();
    let previous = {
        sealer.seal(&message()).unwrap();
        sealer.seal(&message()).unwrap()
    };
    sealer.seal(&message()).unwrap();
    opener.open(previous).unwrap();
    assert!(matches!(opener.open(oldest), Err(SealError::UnknownKey(_))));
}

fn arb_message() -> impl Strategy<Value = Message> {
    let text = ".{0,40}";
    (
        any::<u64>(),
        prop_oneof![Just(Kind::Command), Just(Kind::Event), Just(Kind::Channel)],
        (text, text, text, text),
        proptest::collection::vec((text, text), 0..5),
        prop_oneof![
            text.prop_map(Body::Json),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Body::Bytes)
        ],
    )
        .prop_map(
            |(id, kind, (name, window, webview, origin), headers, body)| Message {
                id,
                kind,
                name,
                source: Source::new(window, webview, origin),
                headers: headers
                    .into_iter()
                    .map(|(n, v)| Header::new(n, v))
                    .collect(),
                body,
            },
        )
}

fn seal_then_open_is_the_identity(p: Providers, message: Message) -> Result<(), TestCaseError> {
    let (sealer, opener) = p.default_channel();
    let envelope = sealer.seal(&message).unwrap();
    prop_assert_eq!(opener.open(envelope).unwrap(), message);
    Ok(())
}

fn any_tampered_byte_is_rejected(
    p: Providers,
    message: Message,
    at: prop::sample::Index,
    flip: u8,
) -> Result<(), TestCaseError> {
    let (sealer, opener) = p.default_channel();
    let mut bytes = sealer.seal(&message).unwrap().into_bytes();
    let index = at.index(bytes.len());
    bytes[index] ^= flip;
    prop_assert!(opener.open(Envelope::from_bytes(bytes)).is_err());
    Ok(())
}

fn an_envelope_overtaken_by_ten_thousand_others_still_opens_with_the_default_window(p: Providers) {
    // A thread descheduled between sealing and dispatch lets other tasks go far ahead.
    let (sealer, opener) = p.default_channel();
    let late = sealer.seal(&message()).unwrap();
    for _ in 0..10_000 {
        opener.open(sealer.seal(&message()).unwrap()).unwrap();
    }
    assert_eq!(opener.open(late).unwrap(), message());
}

/// `#[test]`s calling the functions above of the same names with the module's `P`.
macro_rules! run_with_p {
    ($($test:ident),* $(,)?) => {
        $(
            #[test]
            fn $test() {
                super::$test(P)
            }
        )*
    };
}

/// The tests above, as a module that runs them with `$sealing` sealing and `$opening` opening.
macro_rules! tests_with {
    ($module:ident: $sealing:ident seals, $opening:ident opens) => {
        mod $module {
            use super::*;

            const P: Providers = Providers {
                sealing: Provider::$sealing,
                opening: Provider::$opening,
            };

            run_with_p!(
                seal_then_open_returns_the_message,
                a_message_sealed_in_its_own_buffer_opens_to_the_same_message_at_every_size,
                a_tampered_byte_in_an_envelope_sealed_in_place_is_rejected,
                the_whole_message_is_encrypted_not_just_the_body,
                every_single_byte_flip_is_rejected,
                a_replayed_envelope_is_rejected,
                envelopes_may_arrive_out_of_order_within_the_replay_window,
                an_envelope_behind_the_replay_window_is_rejected_as_too_old,
                an_envelope_sealed_by_another_run_is_rejected,
                every_truncation_is_rejected,
                an_unknown_envelope_version_is_rejected,
                the_key_rotates_before_its_sequence_space_is_used_up,
                envelopes_under_a_key_retired_too_long_ago_are_rejected,
                an_envelope_overtaken_by_ten_thousand_others_still_opens_with_the_default_window,
            );

            proptest! {
                #[test]
                fn seal_then_open_is_the_identity(message in arb_message()) {
                    super::seal_then_open_is_the_identity(P, message)?;
                }

                #[test]
                fn any_tampered_byte_is_rejected(
                    message in arb_message(),
                    at in any::<prop::sample::Index>(),
                    flip in 1u8..,
                ) {
                    super::any_tampered_byte_is_rejected(P, message, at, flip)?;
                }
            }
        }
    };
}

tests_with!(with_rustcrypto: RustCrypto seals, RustCrypto opens);
tests_with!(with_aws_lc: AwsLc seals, AwsLc opens);
tests_with!(sealed_by_rustcrypto_opened_by_aws_lc: RustCrypto seals, AwsLc opens);
tests_with!(sealed_by_aws_lc_opened_by_rustcrypto: AwsLc seals, RustCrypto opens);

#[test]
fn the_default_provider_is_rustcrypto() {
    assert_eq!(SealConfig::default().provider, Provider::RustCrypto);
    assert_eq!(Provider::default(), Provider::RustCrypto);
}

/// A megabyte body sealed in its own buffer, and envelopes under three keys (the opener's keys
/// are made in the other provider at each rotation too).
fn an_envelope_sealed_by_one_provider_opens_with_the_other(sealing: Provider, opening: Provider) {
    let config = SealConfig::default().with_rotate_after(2);
    let (sealer, opener) = Providers { sealing, opening }.channel(config);
    let large = Message {
        body: Body::Bytes((0..1 << 20).map(|i| (i % 251) as u8).collect()),
        ..message()
    };
    for message in [message(), large.clone(), message(), large, message()] {
        let envelope = sealer.seal_owned(message.clone()).unwrap();
        assert_eq!(opener.open(envelope).unwrap(), message);
    }
}

#[test]
fn an_envelope_sealed_by_aws_lc_opens_with_rustcrypto() {
    an_envelope_sealed_by_one_provider_opens_with_the_other(Provider::AwsLc, Provider::RustCrypto);
}

#[test]
fn an_envelope_sealed_by_rustcrypto_opens_with_aws_lc() {
    an_envelope_sealed_by_one_provider_opens_with_the_other(Provider::RustCrypto, Provider::AwsLc);
}
