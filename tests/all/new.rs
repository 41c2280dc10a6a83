//! `airlock new`: every template builds into a hook that follows the example policy, and bad
//! names, languages and folders are refused with the bad value named.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use airlock_tests::{airlock_bin, root, run_airlock};
use serde_json::Value;

/// The languages `airlock new` must have a template for.
const LANGUAGES: &[&str] = &["rust", "python", "js", "c"];

fn airlock(args: &[&str], cwd: &Path, stdin: &str) -> Output {
    run_airlock(args, cwd, stdin)
}

/// An empty scratch folder of its own for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = root().join("target/tmp/new").join(test);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).unwrap();
    }
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn new_hook(lang: &str, name: &str, parent: &Path) -> Output {
    airlock(
        &[
            "new",
            "--lang",
            lang,
            "--dir",
            parent.to_str().unwrap(),
            "--",
            name,
        ],
        parent,
        "",
    )
}

/// Makes a hook called `deny-test` in `lang`, builds it with its own `./build`, and checks the
/// example policy with `airlock inspect`.
fn template_builds_and_follows_the_example_policy(lang: &str) {
    let parent = scratch(lang);
    let made = new_hook(lang, "deny-test", &parent);
    assert!(
        made.status.success(),
        "airlock new --lang {lang} failed (the {lang} template lives in templates/{lang}/): {}",
        stderr(&made)
    );
    let project = parent.join("deny-test");
    let mut build = Command::new(project.join("build"));
    build.current_dir(&project).env("AIRLOCK", airlock_bin());
    if lang == "rust" {
        // Reuse the guest hooks' compiled dependencies (same versions, same profile).
        build.env("CARGO_TARGET_DIR", root().join("guest-hooks/target"));
    }
    let built = build.output().unwrap();
    assert!(
        built.status.success(),
        "./build of the {lang} template failed:\n{}{}",
        String::from_utf8_lossy(&built.stdout),
        stderr(&built)
    );
    let hook = project.join("deny-test.wasm");
    assert!(hook.exists(), "./build did not write {}", hook.display());
    let out = String::from_utf8_lossy(&built.stdout);
    assert!(
        out.contains("6 passed, 0 failed"),
        "./build of the {lang} template runs `airlock test` on its cases.jsonl: {out}"
    );

    std::fs::write(
        project.join("deny.json"),
        r#"{"deny": ["delete_all", "shell"]}"#,
    )
    .unwrap();
    let messages = [
        r#"{"kind":"command","name":"delete_all","payload":{"all":true}}"#,
        r#"{"kind":"command","name":"fs_read","payload":{"path":"notes.txt"}}"#,
        r#"{"kind":"event","name":"delete_all","payload":null}"#,
        r#"{"kind":"channel","name":"shell","bytes":"AA=="}"#,
        r#"{"kind":"command","name":"shell"}"#,
    ]
    .join("\n");
    let inspect = |config: Option<&str>| {
        let mut args = vec!["inspect", "--hook", "deny-test.wasm"];
        if let Some(config) = config {
            args.extend(["--config", config]);
        }
        airlock(&args, &project, &messages)
    };
    let verdicts = |output: &Output| -> Vec<(String, Value)> {
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .map(|v| (v["verdict"].as_str().unwrap().to_owned(), v))
            .collect()
    };

    let denied = inspect(Some("deny.json"));
    let got = verdicts(&denied);
    let decisions: Vec<&str> = got.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(
        decisions,
        ["reject", "pass", "pass", "pass", "reject"],
        "{lang}: {}",
        stderr(&denied)
    );
    assert_eq!(got[0].1["code"], "denied", "{lang}");
    assert_eq!(
        got[0].1["reason"], "command `delete_all` is denied by deny-test",
        "{lang}"
    );
    assert_eq!(got[4].1["code"], "denied", "{lang}");

    let default = inspect(None);
    let decisions: Vec<String> = verdicts(&default).into_iter().map(|(d, _)| d).collect();
    assert_eq!(
        decisions,
        ["pass"; 5],
        "{lang}: nothing is denied by default: {}",
        stderr(&default)
    );

    for (config, named) in [
        (r#"{"denny": ["x"]}"#, "denny"),
        (r#"{"deny": "delete_all"}"#, "deny"),
        (r#"{"deny": ["ok", 7]}"#, "deny"),
        (r#"["deny"]"#, ""),
    ] {
        std::fs::write(project.join("bad.json"), config).unwrap();
        let refused = inspect(Some("bad.json"));
        let error = stderr(&refused);
        assert!(
            !refused.status.success() && error.contains("refused its config"),
            "{lang}: config {config} must be refused: {error}"
        );
        assert!(
            error.contains(named),
            "{lang}: the error for {config} must name `{named}`: {error}"
        );
    }
}

#[test]
fn a_new_rust_hook_builds_and_denies_the_configured_commands() {
    template_builds_and_follows_the_example_policy("rust");
}

#[test]
fn a_new_python_hook_builds_and_denies_the_configured_commands() {
    template_builds_and_follows_the_example_policy("python");
}

#[test]
fn a_new_js_hook_builds_and_denies_the_configured_commands() {
    template_builds_and_follows_the_example_policy("js");
}

#[test]
fn a_new_c_hook_builds_and_denies_the_configured_commands() {
    template_builds_and_follows_the_example_policy("c");
}

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files(&path));
        } else {
            found.push(path);
        }
    }
    found
}

#[test]
fn every_template_has_a_readme_an_executable_build_a_gitignore_and_the_wit_with_names_filled_in() {
    let parent = scratch("layout");
    let mut problems = Vec::new();
    for lang in LANGUAGES {
        let name = format!("layout-{lang}");
        let made = new_hook(lang, &name, &parent);
        if !made.status.success() {
            problems.push(format!("{lang}: airlock new failed: {}", stderr(&made)));
            continue;
        }
        let project = parent.join(&name);
        for required in [
            "README.md",
            "build",
            ".gitignore",
            "wit/world.wit",
            "wit/types.wit",
        ] {
            if !project.join(required).is_file() {
                problems.push(format!("{lang}: no {required}"));
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            if let Ok(meta) = std::fs::metadata(project.join("build")) {
                let mode = meta.permissions().mode() & 0o777;
                if mode != 0o755 {
                    problems.push(format!("{lang}: build has mode {mode:o}, not 755"));
                }
            }
        }
        for file in files(&project) {
            let relative = file.strip_prefix(&project).unwrap().display().to_string();
            let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
            if relative.contains("{{") || text.contains("{{name") {
                problems.push(format!(
                    "{lang}: {relative} keeps a {{{{name}}}} placeholder"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_rust_template_carries_the_helper_crate_pointed_at_its_own_wit() {
    let parent = scratch("helper");
    assert!(new_hook("rust", "helper", &parent).status.success());
    let lib = std::fs::read_to_string(parent.join("helper/airlock-hook/src/lib.rs")).unwrap();
    assert!(lib.contains(r#"path: "../wit""#), "{lib}");
    let helper = std::fs::read_to_string(root().join("guest-hooks/helpers/rust/src/lib.rs"))
        .unwrap()
        .replace(r#"path: "../../../wit""#, r#"path: "../wit""#);
    assert_eq!(lib, helper, "the written helper crate is the repository's");
    let cargo = std::fs::read_to_string(parent.join("helper/Cargo.toml")).unwrap();
    assert!(cargo.contains("name = \"helper\""), "{cargo}");
}

#[test]
fn the_c_python_and_js_templates_carry_the_helper_every_hook_in_their_language_uses() {
    let parent = scratch("helpers");
    for (lang, helper) in [
        (
            "c",
            &["airlock_hook.h", "airlock_json.h", "hook.c", "hook.h"][..],
        ),
        ("python", &["airlock_hook.py"][..]),
        ("js", &["airlock_hook.js"][..]),
    ] {
        let made = new_hook(lang, &format!("helper-{lang}"), &parent);
        assert!(made.status.success(), "{lang}: {}", stderr(&made));
        for file in helper {
            let written = std::fs::read(parent.join(format!("helper-{lang}/{file}")))
                .unwrap_or_else(|e| panic!("{lang}: no {file} in the new project: {e}"));
            let repo =
                std::fs::read(root().join(format!("guest-hooks/helpers/{lang}/{file}"))).unwrap();
            assert!(
                written == repo,
                "{lang}: {file} is not guest-hooks/helpers/{lang}/{file}"
            );
        }
    }
    let c = parent.join("helper-c");
    for tool in ["build-hook", "regenerate", "wit.sha256"] {
        assert!(
            !c.join(tool).exists(),
            "the C helper's own tool {tool} is not shipped"
        );
    }
}

#[test]
fn a_name_of_lowercase_letters_digits_and_dashes_is_accepted() {
    let parent = scratch("good-names");
    for name in ["a", "deny2", "my-hook-3", "x--y"] {
        let made = new_hook("rust", name, &parent);
        assert!(made.status.success(), "{name}: {}", stderr(&made));
        assert!(parent.join(name).join("Cargo.toml").is_file(), "{name}");
    }
}

#[test]
fn a_name_with_capitals_a_leading_digit_or_dash_or_other_characters_is_refused_naming_it() {
    let parent = scratch("bad-names");
    for name in [
        "My-hook", "1hook", "-hook", "my_hook", "my.hook", "../up", "a/b", "héllo", "a b",
    ] {
        let made = new_hook("rust", name, &parent);
        let error = stderr(&made);
        assert!(!made.status.success(), "{name} must be refused");
        assert!(
            error.contains(&format!("bad hook name {name:?}")),
            "{name}: {error}"
        );
    }
    let empty = new_hook("rust", "", &parent);
    assert!(!empty.status.success());
    assert!(
        stderr(&empty).contains("name is empty"),
        "{}",
        stderr(&empty)
    );
    assert_eq!(
        std::fs::read_dir(&parent).unwrap().count(),
        0,
        "nothing is written for a bad name"
    );
}

#[test]
fn an_unknown_language_is_refused_naming_it_and_the_known_ones() {
    let parent = scratch("bad-lang");
    for lang in ["go", "Rust", "", "rust/"] {
        let made = new_hook(lang, "hook", &parent);
        let error = stderr(&made);
        assert!(!made.status.success(), "{lang:?} must be refused");
        assert!(
            error.contains(&format!("unknown language {lang:?}")) && error.contains("rust"),
            "{lang:?}: {error}"
        );
    }
    assert_eq!(std::fs::read_dir(&parent).unwrap().count(), 0);
}

#[test]
fn an_existing_empty_folder_is_filled() {
    let parent = scratch("empty-folder");
    std::fs::create_dir(parent.join("hook")).unwrap();
    let made = new_hook("rust", "hook", &parent);
    assert!(made.status.success(), "{}", stderr(&made));
    assert!(parent.join("hook/src/lib.rs").is_file());
}

#[test]
fn an_existing_non_empty_folder_or_a_file_is_left_alone_and_named() {
    let parent = scratch("full-folder");
    std::fs::create_dir(parent.join("hook")).unwrap();
    std::fs::write(parent.join("hook/keep.txt"), "mine").unwrap();
    std::fs::write(parent.join("file"), "mine").unwrap();
    for name in ["hook", "file"] {
        let made = new_hook("rust", name, &parent);
        let error = stderr(&made);
        assert!(!made.status.success(), "{name} must be refused");
        assert!(
            error.contains(&parent.join(name).display().to_string())
                && error.contains("already exists"),
            "{name}: {error}"
        );
    }
    assert_eq!(
        std::fs::read_dir(parent.join("hook")).unwrap().count(),
        1,
        "nothing is added to the existing folder"
    );
    assert_eq!(
        std::fs::read_to_string(parent.join("file")).unwrap(),
        "mine"
    );
}
