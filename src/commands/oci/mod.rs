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
        Command::Checkpoint { .. } => {
            anyhow::bail!("checkpoint is not supported: berth has no CRIU support")
        }
        Command::Restore { .. } => {
            anyhow::bail!("restore is not supported: berth has no CRIU support")
        }
    }
}

/// Pretty JSON and a newline on stdout, as runc prints `state` and `features`.
fn print_json(v: &serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}
