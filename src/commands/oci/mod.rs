//! The runc-compatible commands, one file each: args -> runtime call -> output. Each
//! returns the process exit code.

mod create;
mod delete;
mod events;
mod exec;
mod features;
mod kill;
mod list;
mod pause;
mod ps;
mod run;
mod spec;
mod start;
mod state;
mod update;

use std::io::Write;

use anyhow::Result;

use crate::cli::oci::Command;
use crate::runtime::Globals;

/// Warnings of a command that succeeded, logged before it exits 0.
fn warned(warnings: &[String]) -> i32 {
    for w in warnings {
        crate::logging::warn(w);
    }
    0
}

pub(crate) fn dispatch(g: &Globals, cmd: Command) -> Result<i32> {
    if matches!(cmd, Command::Create(_) | Command::Run(_) | Command::Exec(_)) {
        // Before anything is made: this may re-execute the whole command.
        crate::exeseal::ensure_sealed()?;
        crate::timeline::mark("check-sealed");
    }
    match cmd {
        Command::Create(a) => create::run(g, &a),
        Command::Run(a) => run::run(g, &a),
        Command::Exec(a) => exec::run(g, *a),
        Command::Events {
            interval,
            stats,
            id,
        } => events::run(g, &id, stats, &interval),
        Command::Update(a) => update::run(g, &a),
        Command::Pause { id } => pause::pause(g, &id),
        Command::Resume { id } => pause::resume(g, &id),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps::run(g, &id, format, &ps_args),
        Command::Start { id } => start::run(g, &id),
        Command::State { id } => state::run(g, &id),
        Command::Kill { all, id, signal } => kill::run(g, &id, signal.as_deref(), all),
        Command::Delete { force, id } => delete::run(g, &id, force),
        Command::List { quiet, format } => list::run(g, quiet, format),
        Command::Spec { bundle, rootless } => spec::run(&bundle, rootless),
        Command::Features => features::run(),
        Command::Checkpoint { args } => {
            if let Some(e) = bad_parent_path(&args) {
                anyhow::bail!("{e}");
            }
            anyhow::bail!("checkpoint is not supported: berth has no CRIU support")
        }
        Command::Restore { .. } => {
            anyhow::bail!("restore is not supported: berth has no CRIU support")
        }
    }
}

/// The value of `--flag VALUE` or `--flag=VALUE` among checkpoint's raw arguments.
fn flag_value<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == flag {
            return it.next().map(String::as_str);
        }
        if let Some(v) = a.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            return Some(v);
        }
    }
    None
}

/// checkpoint's `--parent-path` checked as runc checks it before calling CRIU: relative to
/// `--image-path` (default `./checkpoint`) and an existing directory. Scripts that check
/// their arguments against runc get the same answer before berth says it has no CRIU.
fn bad_parent_path(args: &[String]) -> Option<String> {
    let parent = flag_value(args, "--parent-path").filter(|p| !p.is_empty())?;
    if std::path::Path::new(parent).is_absolute() {
        return Some("--parent-path must be relative".into());
    }
    let image = flag_value(args, "--image-path")
        .filter(|p| !p.is_empty())
        .unwrap_or("checkpoint");
    let real = std::path::Path::new(image).join(parent);
    match std::fs::metadata(&real) {
        Ok(m) if m.is_dir() => None,
        Ok(_) => Some(format!(
            "invalid --parent-path: {}: not a directory",
            real.display()
        )),
        Err(e) => Some(format!(
            "invalid --parent-path: {}: {}",
            real.display(),
            crate::error::errno_text(&e)
        )),
    }
}

/// Pretty JSON and a newline on stdout, as runc prints `state` and `features`.
fn print_json(v: &serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn checkpoint_parent_path_is_checked_as_runc_does() {
        assert_eq!(
            bad_parent_path(&args(&["--parent-path", "/abs", "id"])).as_deref(),
            Some("--parent-path must be relative")
        );
        let e = bad_parent_path(&args(&[
            "--image-path=/nonexistent-img",
            "--parent-path",
            "p",
            "id",
        ]))
        .unwrap();
        assert_eq!(
            e,
            "invalid --parent-path: /nonexistent-img/p: no such file or directory"
        );
        let dir = std::env::temp_dir().join(format!("berth-cp-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("parent")).unwrap();
        let img = dir.to_str().unwrap();
        assert_eq!(
            bad_parent_path(&args(&["--image-path", img, "--parent-path=parent", "id"])),
            None
        );
        assert_eq!(bad_parent_path(&args(&["--work-path", "w", "id"])), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
