//! Pinned and signed hooks: a tampered byte, a wrong pin or an untrusted key never loads, at
//! start or on reload, and a refused reload keeps the old hook serving.

use std::sync::Arc;
use std::time::{Duration, Instant};

use airlock::trust::{PublicKey, SecretKey, Signature, Trust, TrustError};
use airlock::{Decision, Hook, HookError, HookOptions, HookWatcher};
use airlock_tests::{
    CONFIGURE_OK, INSPECT_PASS, echo_gateway, engine, root, run_airlock, send, wat_hook,
};

const GOOD: &str = r#"{"kind":"event","name":"e","payload":1}"#;

/// A hook that passes everything...
fn passing() -> Vec<u8> {
    wat_hook(CONFIGURE_OK, INSPECT_PASS, "")
}

/// ...and another one, with other bytes, that traps on everything.
fn other() -> Vec<u8> {
    wat_hook(CONFIGURE_OK, "unreachable", "")
}

fn digest(bytes: &[u8]) -> String {
    Hook::load(engine(), bytes, HookOptions::default())
        .unwrap()
        .digest()
        .to_owned()
}

fn trusting(key: &SecretKey) -> HookOptions {
    HookOptions::default().with_trust(Trust::default().trust_key(key.public()))
}

fn load(
    bytes: &[u8],
    signature: Option<&Signature>,
    options: HookOptions,
) -> Result<Hook, HookError> {
    Hook::load_signed(engine(), bytes, signature, options)
}

fn tampered(bytes: &[u8]) -> Vec<u8> {
    let mut bytes = bytes.to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    bytes
}

#[test]
fn a_hook_matching_its_pin_loads() {
    let bytes = passing();
    let trust = Trust::default()
        .pin(&digest(&bytes).to_uppercase())
        .unwrap();
    let hook = load(&bytes, None, HookOptions::default().with_trust(trust)).unwrap();
    assert_eq!(send(&echo_gateway(hook), GOOD).decision, Decision::Pass);
}

#[test]
fn a_hook_with_a_wrong_pin_is_refused_naming_both_digests() {
    let (bytes, pinned) = (passing(), digest(&other()));
    let trust = Trust::default().pin(&pinned).unwrap();
    let error = load(&bytes, None, HookOptions::default().with_trust(trust)).unwrap_err();
    assert!(matches!(error, HookError::PinMismatch { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&pinned) && text.contains(&digest(&bytes)),
        "{text}"
    );
}

#[test]
fn a_pin_that_is_not_a_sha256_is_refused_naming_it() {
    let error = Trust::default().pin("abc123").unwrap_err();
    assert!(matches!(error, TrustError::Format { .. }));
    assert!(error.to_string().contains("\"abc123\""), "{error}");
}

#[test]
fn a_hook_signed_by_a_trusted_key_loads() {
    let key = SecretKey::generate().unwrap();
    let bytes = passing();
    let signature = key.sign(&bytes);
    let hook = load(&bytes, Some(&signature), trusting(&key)).unwrap();
    assert_eq!(send(&echo_gateway(hook), GOOD).decision, Decision::Pass);
}

#[test]
fn an_unsigned_hook_is_refused_when_a_signature_is_required() {
    let key = SecretKey::generate().unwrap();
    let error = load(&passing(), None, trusting(&key)).unwrap_err();
    assert!(
        matches!(error, HookError::Unsigned { trusted: 1, .. }),
        "{error}"
    );
    // Hook::load has no signature to give, so it is refused too.
    let error = Hook::load(engine(), &passing(), trusting(&key)).unwrap_err();
    assert!(matches!(error, HookError::Unsigned { .. }), "{error}");
}

#[test]
fn a_hook_with_a_tampered_byte_is_refused() {
    let key = SecretKey::generate().unwrap();
    let bytes = passing();
    let signature = key.sign(&bytes);
    let error = load(&tampered(&bytes), Some(&signature), trusting(&key)).unwrap_err();
    assert!(matches!(error, HookError::BadSignature { .. }), "{error}");
    assert!(
        error.to_string().contains(&key.public().to_string()),
        "{error}"
    );
}

#[test]
fn a_hook_signed_by_an_untrusted_key_is_refused_naming_the_key() {
    let (trusted, stranger) = (
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
    );
    let bytes = passing();
    let error = load(&bytes, Some(&stranger.sign(&bytes)), trusting(&trusted)).unwrap_err();
    assert!(
        matches!(error, HookError::UntrustedKey { trusted: 1, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains(&stranger.public().to_string()),
        "{error}"
    );
}

#[test]
fn any_of_several_trusted_keys_may_sign() {
    let (a, b) = (
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
    );
    let trust = Trust::default().trust_key(a.public()).trust_key(b.public());
    let bytes = passing();
    let options = HookOptions::default().with_trust(trust);
    load(&bytes, Some(&b.sign(&bytes)), options).unwrap();
}

#[test]
fn keys_and_signatures_round_trip_through_their_text_and_bad_text_is_named() {
    let key = SecretKey::generate().unwrap();
    let again = SecretKey::parse(&key.to_text(), "k").unwrap();
    assert_eq!(again.public(), key.public());
    let public = PublicKey::parse(&key.public().to_text(), "p").unwrap();
    assert_eq!(public, key.public());
    let signature = key.sign(b"bytes");
    assert_eq!(
        Signature::parse(&signature.to_text(), "s").unwrap(),
        signature
    );

    let error = PublicKey::parse(&key.to_text(), "my.pub").unwrap_err();
    assert!(error.to_string().contains("my.pub"), "{error}");
    let error = Signature::parse("airlock-ed25519-signature AAAA", "hook.wasm.sig").unwrap_err();
    assert!(error.to_string().contains("hook.wasm.sig"), "{error}");
    let short = format!("airlock-ed25519-signature {} AAAA", key.public());
    let error = Signature::parse(&short, "s").unwrap_err();
    assert!(error.to_string().contains("3 bytes where 64"), "{error}");
}

#[test]
fn a_reload_that_fails_its_trust_keeps_the_old_hook_serving_and_says_why() {
    let (key, stranger) = (
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
    );
    let bytes = passing();
    let gateway = echo_gateway(load(&bytes, Some(&key.sign(&bytes)), trusting(&key)).unwrap());
    let serving = gateway.hook().digest().to_owned();
    let new = other();

    let unsigned = gateway.reload(&new).unwrap_err();
    assert!(matches!(unsigned, HookError::Unsigned { .. }), "{unsigned}");
    let tampered = gateway
        .reload_signed(&tampered(&new), Some(&key.sign(&new)))
        .unwrap_err();
    assert!(
        matches!(tampered, HookError::BadSignature { .. }),
        "{tampered}"
    );
    let untrusted = gateway
        .reload_signed(&new, Some(&stranger.sign(&new)))
        .unwrap_err();
    assert!(
        matches!(untrusted, HookError::UntrustedKey { .. }),
        "{untrusted}"
    );
    assert_eq!(gateway.hook().digest(), serving);
    assert_eq!(send(&gateway, GOOD).decision, Decision::Pass);

    gateway.reload_signed(&new, Some(&key.sign(&new))).unwrap();
    assert_ne!(gateway.hook().digest(), serving);
    assert_eq!(send(&gateway, GOOD).outcome.unwrap_err().code, "hook-trap");
}

#[test]
fn a_pinned_hook_is_never_reloaded_to_other_bytes() {
    let bytes = passing();
    let trust = Trust::default().pin(&digest(&bytes)).unwrap();
    let gateway =
        echo_gateway(load(&bytes, None, HookOptions::default().with_trust(trust)).unwrap());
    let error = gateway.reload(&other()).unwrap_err();
    assert!(matches!(error, HookError::PinMismatch { .. }), "{error}");
    assert_eq!(send(&gateway, GOOD).decision, Decision::Pass);
}

#[test]
fn a_watched_signed_hook_reloads_only_with_a_valid_signature_from_a_trusted_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hook.wasm");
    let sig = Signature::path_for(&path);
    let (key, stranger) = (
        SecretKey::generate().unwrap(),
        SecretKey::generate().unwrap(),
    );
    let bytes = passing();
    std::fs::write(&path, &bytes).unwrap();
    std::fs::write(&sig, key.sign(&bytes).to_text()).unwrap();
    let hook = Hook::load_file(engine(), &path, trusting(&key)).unwrap();
    let serving = hook.digest().to_owned();
    let gateway = Arc::new(echo_gateway(hook));
    let watcher = HookWatcher::spawn(&gateway, &path, Duration::from_millis(10));
    let wait_for_error = |needle: &str| {
        let start = Instant::now();
        loop {
            if let Some(error) = watcher.status().last_error
                && error.contains(needle)
            {
                return error;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "never saw {needle}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    // A new hook signed by a stranger, then the same hook with a tampered byte.
    let new = other();
    std::fs::write(&sig, stranger.sign(&new).to_text()).unwrap();
    std::fs::write(&path, &new).unwrap();
    let error = wait_for_error("not one of the 1 trusted keys");
    assert!(error.contains("previous hook keeps serving"), "{error}");
    std::fs::write(&sig, key.sign(&new).to_text()).unwrap();
    std::fs::write(&path, tampered(&new)).unwrap();
    wait_for_error("does not match hook");
    assert_eq!(gateway.hook().digest(), serving);
    assert_eq!(send(&gateway, GOOD).decision, Decision::Pass);
    assert_eq!(watcher.status().reloads, 0);

    std::fs::write(&path, &new).unwrap();
    let start = Instant::now();
    while watcher.status().reloads == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "never reloaded");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(send(&gateway, GOOD).outcome.unwrap_err().code, "hook-trap");
}

#[test]
fn keygen_sign_and_trust_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    std::fs::write(at("hook.wasm"), passing()).unwrap();
    let ok = |args: &[&str]| {
        let output = run_airlock(args, &root(), "");
        assert!(output.status.success(), "{args:?}: {output:?}");
    };
    ok(&["keygen", "-o", &at("me")]);
    ok(&["keygen", "-o", &at("stranger")]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(at("me.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = run_airlock(&["keygen", "-o", &at("me")], &root(), "");
    assert!(!again.status.success(), "a key is never overwritten");

    ok(&["sign", "--key", &at("me.key"), &at("hook.wasm")]);
    let hook = at("hook.wasm");
    let inspect = |extra: &[&str]| {
        let mut args = vec!["inspect", "--hook", &hook];
        args.extend_from_slice(extra);
        run_airlock(&args, &root(), GOOD)
    };
    let trusted = inspect(&["--trust", &at("me.pub")]);
    assert!(trusted.status.success(), "{trusted:?}");
    assert!(String::from_utf8_lossy(&trusted.stdout).contains(r#""verdict":"pass""#));

    let refused = inspect(&["--trust", &at("stranger.pub")]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not one of the 1 trusted keys"));

    let wrong = digest(&other());
    let pinned = inspect(&["--pin", &wrong]);
    assert!(!pinned.status.success());
    let stderr = String::from_utf8_lossy(&pinned.stderr);
    assert!(
        stderr.contains(&wrong) && stderr.contains(&digest(&passing())),
        "{stderr}"
    );

    std::fs::write(at("hook.wasm"), tampered(&passing())).unwrap();
    let tampered = inspect(&["--trust", &at("me.pub")]);
    assert!(!tampered.status.success());
    assert!(String::from_utf8_lossy(&tampered.stderr).contains("does not match hook"));
}
