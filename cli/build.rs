//! Embeds what `airlock new` writes: every file under `templates/<lang>/`, the WIT package in
//! `wit/`, and each language's helper from `guest-hooks/helpers/<lang>/` (the one every hook in
//! that language uses), so the tool works outside the repository. New template and helper files
//! are picked up without touching this script.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Build output and installed toolchains that may sit in a template folder tried in place.
const SKIPPED: &[&str] = &["target", "node_modules", ".venv", "__pycache__"];

/// Per language: where `airlock new` puts the files of `guest-hooks/helpers/<lang>/` in a new
/// project, and which of them it ships, by name ending (the C folder also holds the scripts that
/// build the repository's C hooks and regenerate the bindings, which a project does not need; an
/// empty ending ships every file).
const HELPERS: &[(&str, &str, &[&str])] = &[
    ("c", "", &[".c", ".h"]),
    ("js", "", &[".js"]),
    ("python", "", &[".py"]),
    ("rust", "airlock-hook/", &[""]),
];

fn main() {
    let repo = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .parent()
        .expect("cli/ has a parent")
        .to_path_buf();
    let mut out = String::new();
    out.push_str("/// `(language, path inside the template, executable, contents)`.\n");
    out.push_str("pub(crate) static TEMPLATES: &[(&str, &str, bool, &[u8])] = &[\n");
    let templates = repo.join("templates");
    println!("cargo:rerun-if-changed={}", templates.display());
    let mut langs: Vec<PathBuf> = read_dir(&templates).filter(|p| p.is_dir()).collect();
    langs.sort();
    for lang_dir in langs {
        let lang = file_name(&lang_dir);
        for (relative, path) in files(&lang_dir) {
            let executable = is_executable(&path);
            writeln!(
                out,
                "    ({lang:?}, {relative:?}, {executable}, include_bytes!({:?})),",
                path.display()
            )
            .unwrap();
        }
    }
    out.push_str("];\n");

    let wit = repo.join("wit");
    println!("cargo:rerun-if-changed={}", wit.display());
    out.push_str("/// The WIT package: `(path inside wit/, contents)`.\n");
    out.push_str("pub(crate) static WIT: &[(&str, &[u8])] = &[\n");
    for (relative, path) in files(&wit) {
        writeln!(
            out,
            "    ({relative:?}, include_bytes!({:?})),",
            path.display()
        )
        .unwrap();
    }
    out.push_str("];\n");

    let helpers = repo.join("guest-hooks/helpers");
    println!("cargo:rerun-if-changed={}", helpers.display());
    out.push_str("/// Each language's helper: `(language, path inside the project, contents)`.\n");
    out.push_str("pub(crate) static HELPERS: &[(&str, &str, &[u8])] = &[\n");
    for (lang, destination, endings) in HELPERS {
        let helper = helpers.join(lang);
        let shipped: Vec<_> = files(&helper)
            .into_iter()
            .filter(|(relative, _)| endings.iter().any(|end| relative.ends_with(end)))
            .collect();
        assert!(
            !shipped.is_empty(),
            "no {lang} helper file ending in {endings:?} in {}",
            helper.display()
        );
        for (relative, path) in shipped {
            let written_as = format!("{destination}{relative}");
            writeln!(
                out,
                "    ({lang:?}, {written_as:?}, include_bytes!({:?})),",
                path.display()
            )
            .unwrap();
        }
    }
    out.push_str("];\n");

    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("embedded.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("cannot write {}: {e}", dest.display()));
}

fn read_dir(dir: &Path) -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_else(|| panic!("{} is not a UTF-8 name", path.display()))
        .to_owned()
}

/// Every file under `dir` (skipping build output and `.wasm` files), as `(a/b/c, path)`, sorted.
fn files(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let mut pending = vec![(String::new(), dir.to_path_buf())];
    while let Some((prefix, dir)) = pending.pop() {
        for path in read_dir(&dir) {
            let name = file_name(&path);
            let relative = format!("{prefix}{name}");
            if path.is_dir() {
                if !SKIPPED.contains(&name.as_str()) {
                    pending.push((format!("{relative}/"), path));
                }
            } else if !name.ends_with(".wasm") {
                found.push((relative, path));
            }
        }
    }
    found.sort();
    found
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_path: &Path) -> bool {
    false
}
