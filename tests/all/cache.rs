//! The compiled-hook cache: a hook is compiled once per engine setting, then loaded from disk.

use airlock::{CacheOutcome, EngineConfig, Hook, HookEngine, HookError, HookOptions};
use airlock_tests::{built_hook, echo_gateway, send};

fn load(engine: &HookEngine, bytes: &[u8]) -> Hook {
    Hook::load(engine, bytes, HookOptions::default()).expect("hook loads")
}

fn entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("cache folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    entries.sort();
    entries
}

const ESCAPE: &str = r#"{"kind":"command","name":"fs_read","payload":{"path":"../../etc/passwd"}}"#;

#[test]
fn a_hook_is_compiled_once_and_then_loaded_from_the_cache_with_the_same_verdicts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = built_hook("path-guard", "rust");

    let first = load(
        &HookEngine::with_cache(EngineConfig::default(), dir.path()).unwrap(),
        &bytes,
    );
    assert_eq!(first.compiled(), CacheOutcome::Stored);
    assert_eq!(entries(dir.path()).len(), 1);

    // A new engine (as in the next run of the app) finds it.
    let engine = HookEngine::with_cache(EngineConfig::default(), dir.path()).unwrap();
    let second = load(&engine, &bytes);
    assert_eq!(second.compiled(), CacheOutcome::Hit);
    assert_eq!(second.digest(), first.digest());
    let reply = send(&echo_gateway(second), ESCAPE);
    let rejection = reply.outcome.expect_err("the cached hook still rejects");
    assert_eq!(rejection.code, "path-escape");
}

#[test]
fn without_a_cache_every_load_compiles() {
    let engine = HookEngine::new(EngineConfig::default()).unwrap();
    assert_eq!(engine.cache_dir(), None);
    let hook = load(&engine, &built_hook("redact", "rust"));
    assert_eq!(hook.compiled(), CacheOutcome::Compiled);
}

#[test]
fn engines_with_different_settings_keep_separate_entries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = built_hook("path-guard", "rust");
    let plain = HookEngine::with_cache(EngineConfig::default(), dir.path()).unwrap();
    let metered = EngineConfig::default().with_fuel(true);
    let metered = HookEngine::with_cache(metered, dir.path()).unwrap();
    assert_eq!(load(&plain, &bytes).compiled(), CacheOutcome::Stored);
    // Fuel metering changes the compiled code: the plain entry must not be used.
    assert_eq!(load(&metered, &bytes).compiled(), CacheOutcome::Stored);
    assert_eq!(entries(dir.path()).len(), 2);
    assert_eq!(load(&metered, &bytes).compiled(), CacheOutcome::Hit);
}

#[test]
fn different_hooks_keep_separate_entries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = HookEngine::with_cache(EngineConfig::default(), dir.path()).unwrap();
    load(&engine, &built_hook("path-guard", "rust"));
    let redact = load(&engine, &built_hook("redact", "rust"));
    assert_eq!(redact.compiled(), CacheOutcome::Stored);
    let names: Vec<String> = entries(dir.path())
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2);
    assert!(
        names.iter().any(|n| n.starts_with(redact.digest())),
        "{names:?}"
    );
}

#[test]
fn a_corrupt_cache_entry_is_compiled_again_and_replaced() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = built_hook("path-guard", "rust");
    let engine = HookEngine::with_cache(EngineConfig::default(), dir.path()).unwrap();
    load(&engine, &bytes);
    let [entry] = entries(dir.path()).try_into().expect("one entry");
    let good = std::fs::read(&entry).unwrap();
    for garbage in [
        Vec::new(),
        b"not a compiled component".to_vec(),
        good[..good.len() / 2].to_vec(),
    ] {
        std::fs::write(&entry, &garbage).unwrap();
        let hook = load(&engine, &bytes);
        assert_eq!(
            hook.compiled(),
            CacheOutcome::Stored,
            "{} bytes",
            garbage.len()
        );
        let reply = send(&echo_gateway(hook), ESCAPE);
        assert_eq!(reply.outcome.expect_err("rejects").code, "path-escape");
        assert_eq!(load(&engine, &bytes).compiled(), CacheOutcome::Hit);
    }
}

#[test]
fn a_cache_folder_that_cannot_be_made_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let error = HookEngine::with_cache(EngineConfig::default(), &file)
        .expect_err("a file is not a folder")
        .to_string();
    assert!(error.contains(&file.display().to_string()), "{error}");
}

#[cfg(unix)]
#[test]
fn the_cache_folder_is_private_to_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("hooks");
    HookEngine::with_cache(EngineConfig::default(), &cache).unwrap();
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[cfg(unix)]
#[test]
fn a_cache_folder_others_can_write_to_is_refused_with_the_reason() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    for mode in [0o777, 0o770, 0o702] {
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        let error = HookEngine::with_cache(EngineConfig::default(), dir.path())
            .expect_err("a folder others can write to is refused");
        assert!(matches!(error, HookError::Cache { .. }), "{error}");
        let text = chain(&error);
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        assert!(text.contains("writable by its group or others"), "{text}");
    }
    // A private one is used (read-only for others is fine).
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    HookEngine::with_cache(EngineConfig::default(), dir.path()).expect("private folder");
}

#[cfg(unix)]
#[test]
fn a_cache_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    HookEngine::with_cache(EngineConfig::default(), dir.path()).unwrap();
    let key = dir.path().join("key");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key is made private");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let error = HookEngine::with_cache(EngineConfig::default(), dir.path())
        .expect_err("a key others can read is refused");
    let text = chain(&error);
    assert!(text.contains("key file"), "{text}");
}

#[test]
fn an_entry_planted_under_another_hooks_name_is_not_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let guard = built_hook("path-guard", "rust");
    let engine = HookEngine::with_cache(EngineConfig::default(), dir.path()).unwrap();
    let a = load(&engine, &guard);
    let b = load(&engine, &built_hook("redact", "rust"));
    let entry_of = |digest: &str| {
        entries(dir.path())
            .into_iter()
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with(digest))
            .expect("entry")
    };
    let (entry_a, entry_b) = (entry_of(a.digest()), entry_of(b.digest()));
    // B's compiled code, tag and all, under A's name.
    std::fs::copy(&entry_b, &entry_a).unwrap();

    let engine = HookEngine::with_cache(EngineConfig::default(), dir.path()).unwrap();
    let again = load(&engine, &guard);
    assert_eq!(again.compiled(), CacheOutcome::Stored, "compiled again");
    let reply = send(&echo_gateway(again), ESCAPE);
    assert_eq!(
        reply.outcome.expect_err("still path-guard").code,
        "path-escape"
    );
    // The entry was replaced by A's own, which is then trusted.
    assert_ne!(
        std::fs::read(&entry_a).unwrap(),
        std::fs::read(&entry_b).unwrap()
    );
    assert_eq!(load(&engine, &guard).compiled(), CacheOutcome::Hit);
}

#[test]
fn an_entry_from_another_cache_is_not_run() {
    // Same name, but made under another cache's key: its tag does not verify here.
    let (mine, theirs) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let bytes = built_hook("path-guard", "rust");
    let engine = HookEngine::with_cache(EngineConfig::default(), mine.path()).unwrap();
    load(&engine, &bytes);
    let other = HookEngine::with_cache(EngineConfig::default(), theirs.path()).unwrap();
    load(&other, &bytes);
    let [entry] = entries(mine.path()).try_into().expect("one entry");
    let [foreign] = entries(theirs.path()).try_into().expect("one entry");
    std::fs::copy(&foreign, &entry).unwrap();
    assert_eq!(load(&engine, &bytes).compiled(), CacheOutcome::Stored);
    assert_eq!(load(&engine, &bytes).compiled(), CacheOutcome::Hit);
}

/// An error and its sources, joined with `: `.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
