//! `airlock test`: tables of cases against one hook (the format is in [`crate::cases`]).

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use airlock::HookOptions;

use crate::cases::{self, CaseFile};
use crate::flags::{HookFlags, Mode, read_config, read_hook};

#[derive(Debug, Args)]
#[command(after_long_help = CASES_HELP)]
pub struct TestArgs {
    /// Cases files: JSON Lines, one case a line (the format is below).
    #[arg(required = true, value_name = "CASES.jsonl")]
    cases: Vec<PathBuf>,
    /// One JSON object a case, then a summary object, on standard output.
    #[arg(long)]
    json: bool,
    /// Rewrite each case's `expect` from what the hook does now (also: BLESS=1), for golden
    /// files; prints what changed and exits 0.
    #[arg(long)]
    bless: bool,
    /// The hook under test (one `--hook`); `--config` is the config of every case that has none
    /// of its own.
    #[command(flatten)]
    hooks: HookFlags,
}

const CASES_HELP: &str = "\
Cases (one JSON object a line; blank lines and lines starting with # are skipped):
  {\"case\":\"a relative path passes\",\"message\":{\"kind\":\"command\",\"name\":\"fs_read\",\"payload\":{\"path\":\"a\"}},\"expect\":\"pass\"}
  {\"case\":\"..\",\"message\":{…},\"expect\":{\"reject\":\"path-escape\"}}
  {\"case\":\"..\",\"message\":{…},\"expect\":{\"replace\":{\"payload\":{…}}}}
  {\"case\":\"..\",\"config\":{\"rot\":\"/x\"},\"expect\":\"config-refused\"}
`message` is a line of `airlock inspect`; `config`, the case's own hook config. A `replace` names the
fields that change (payload, bytes, name, headers); the rest must arrive as sent. Reasons are not
compared. Exit status: 0 when every case passes, 1 when one fails, 2 on bad input.
See docs/hook-testing.md.";

/// Returns whether a case failed.
pub fn run(args: TestArgs) -> anyhow::Result<bool> {
    let hook_path = args.hooks.single("test")?.to_path_buf();
    let bless = args.bless || std::env::var_os("BLESS").is_some_and(|v| v == "1");
    let files = args
        .cases
        .iter()
        .map(|path| CaseFile::read(path))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let engine = args.hooks.engine(false)?;
    let bytes = read_hook(&hook_path)?;
    let default_config = match args.hooks.configs.as_slice() {
        [] => "{}".to_owned(),
        [path] => read_config(path)?,
        many => anyhow::bail!(
            "airlock test takes at most one --config, got {}",
            many.len()
        ),
    };
    let mode = args.hooks.mode.unwrap_or(Mode::Auto).resolve(&bytes, 1);
    let options = HookOptions::default()
        .with_limits(args.hooks.limits()?)
        .with_mode(mode);
    let limits = args.hooks.gateway_limits();

    let mut out = std::io::stdout().lock();
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in &files {
        let results = cases::run(&engine, &bytes, &options, &default_config, limits, file);
        if bless {
            let text = file.blessed(&results)?;
            std::fs::write(&file.path, text)
                .with_context(|| format!("cannot write {}", file.path.display()))?;
            let changed = results.iter().filter(|r| !r.ok).count();
            eprintln!(
                "airlock test: blessed {}: {changed} of {} expectations rewritten",
                file.path.display(),
                results.len()
            );
            for r in results.iter().filter(|r| !r.ok) {
                eprintln!(
                    "  line {} ({}): {} -> {}",
                    r.line,
                    r.name,
                    r.expect,
                    r.got.as_expect().expect("blessed")
                );
            }
            continue;
        }
        for result in &results {
            match result.ok {
                true => passed += 1,
                false => failed += 1,
            }
            if args.json {
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&result.to_json(&file.path))?
                )?;
                continue;
            }
            let at = format!("{}:{}", file.path.display(), result.line);
            match result.ok {
                true => writeln!(out, "ok    {at}  {}", result.name)?,
                false => {
                    writeln!(
                        out,
                        "FAIL  {at}  {}: expected {}, got {}",
                        result.name, result.expect, result.got
                    )?;
                    if result.config != "{}" {
                        writeln!(out, "      config {}", result.config)?;
                    }
                    if let Some(diff) = &result.diff {
                        writeln!(out, "      expected (-) and delivered (+) differ:")?;
                        for line in diff.lines() {
                            writeln!(out, "        {line}")?;
                        }
                    }
                }
            }
        }
    }
    if bless {
        return Ok(false);
    }
    match args.json {
        true => writeln!(
            out,
            "{}",
            serde_json::json!({ "passed": passed, "failed": failed })
        )?,
        false => writeln!(out, "{passed} passed, {failed} failed")?,
    }
    out.flush()?;
    Ok(failed > 0)
}
