//! `airlock new`: writes a hook project from a template embedded in the binary (`templates/<lang>/`
//! of the repository, the WIT package, and the language's helper from
//! `guest-hooks/helpers/<lang>/`: the `airlock-hook` crate, the C bindings and headers, the Python
//! or JS module), so it works anywhere.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

#[derive(Debug, Args)]
pub struct NewArgs {
    /// The hook's language: one of the embedded templates (rust, python, js, c).
    #[arg(long, value_name = "LANG")]
    lang: String,
    /// The hook's name, and its folder: lowercase ASCII letters, digits and `-`, starting with a
    /// letter.
    name: String,
    /// Where to make the folder (default: the current directory).
    #[arg(long, value_name = "PARENT", default_value = ".")]
    dir: PathBuf,
}

/// Where the helper crate finds the WIT package in the repository, and in a new project.
const HELPER_WIT_IN_REPO: &str = r#"path: "../../../wit""#;
const HELPER_WIT_IN_PROJECT: &str = r#"path: "../wit""#;

pub fn run(args: NewArgs) -> anyhow::Result<()> {
    check_name(&args.name)?;
    let files: Vec<_> = TEMPLATES
        .iter()
        .filter(|(lang, ..)| *lang == args.lang)
        .collect();
    if files.is_empty() {
        bail!(
            "unknown language {:?}: airlock new knows {}",
            args.lang,
            languages().join(", ")
        );
    }
    let project = args.dir.join(&args.name);
    refuse_non_empty(&project)?;

    let name = args.name.as_str();
    let snake = name.replace('-', "_");
    let fill = |text: &str| {
        text.replace("{{name}}", name)
            .replace("{{name_snake}}", &snake)
    };
    let mut written = Vec::new();
    for (_, path, executable, contents) in files {
        let path = fill(path);
        let contents = match std::str::from_utf8(contents) {
            Ok(text) => fill(text).into_bytes(),
            Err(_) => contents.to_vec(),
        };
        let executable = *executable || Path::new(&path).file_name() == Some("build".as_ref());
        write(&project, &path, &contents, executable)?;
        written.push(path);
    }
    for (path, contents) in WIT {
        write(&project, &format!("wit/{path}"), contents, false)?;
    }
    written.push("wit/".to_owned());
    for (_, path, contents) in HELPERS.iter().filter(|(lang, ..)| *lang == args.lang) {
        let contents = match *path {
            "airlock-hook/src/lib.rs" => helper_lib(contents)?,
            _ => contents.to_vec(),
        };
        write(&project, path, &contents, false)?;
        // A helper in a folder of its own is listed once, as the folder.
        let shown = match path.split_once('/') {
            Some((folder, _)) => format!("{folder}/"),
            None => (*path).to_owned(),
        };
        if !written.contains(&shown) {
            written.push(shown);
        }
    }

    let shown = project.display();
    println!("wrote a {} hook in {shown}/:", args.lang);
    for path in &written {
        println!("  {path}");
    }
    println!(
        "next:\n  cd {shown}\n  ./build          # installs what it needs (see README.md), writes {name}.wasm\n  \
         echo '{{\"deny\": [\"delete_all\"]}}' > config.json\n  \
         echo '{{\"kind\":\"command\",\"name\":\"delete_all\"}}' | airlock inspect --hook {name}.wasm --config config.json"
    );
    Ok(())
}

/// The languages with an embedded template.
fn languages() -> Vec<&'static str> {
    let mut langs: Vec<&str> = TEMPLATES.iter().map(|(lang, ..)| *lang).collect();
    langs.dedup();
    langs
}

/// Lowercase ASCII letters, digits and `-`, starting with a letter.
fn check_name(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    match chars.next() {
        None => bail!("the hook's name is empty: give a name like `deny-commands`"),
        Some(c) if !c.is_ascii_lowercase() => {
            bail!("bad hook name {name:?}: it must start with a lowercase ASCII letter, not {c:?}")
        }
        _ => {}
    }
    if let Some(c) = chars.find(|c| !matches!(c, 'a'..='z' | '0'..='9' | '-')) {
        bail!(
            "bad hook name {name:?}: {c:?} is not allowed (only lowercase ASCII letters, digits and `-`)"
        );
    }
    Ok(())
}

fn refuse_non_empty(project: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(project) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} already exists and is not empty: airlock new does not overwrite; choose another name or --dir",
                    project.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if project.exists() => Err(e).with_context(|| {
            format!(
                "{} already exists and is not a readable folder",
                project.display()
            )
        }),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", project.display())),
    }
}

/// The helper crate's source, pointed at the project's `wit/` instead of the repository's.
fn helper_lib(contents: &[u8]) -> anyhow::Result<Vec<u8>> {
    let text = std::str::from_utf8(contents).context("the embedded airlock-hook is not UTF-8")?;
    if !text.contains(HELPER_WIT_IN_REPO) {
        bail!(
            "the embedded airlock-hook/src/lib.rs no longer says {HELPER_WIT_IN_REPO}: update airlock new"
        );
    }
    Ok(text
        .replace(HELPER_WIT_IN_REPO, HELPER_WIT_IN_PROJECT)
        .into_bytes())
}

fn write(project: &Path, relative: &str, contents: &[u8], executable: bool) -> anyhow::Result<()> {
    let path = project.join(relative);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(&path, contents).with_context(|| format!("cannot write {}", path.display()))?;
    #[cfg(unix)]
    if executable {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot make {} executable", path.display()))?;
    }
    #[cfg(not(unix))]
    let _ = executable;
    Ok(())
}
