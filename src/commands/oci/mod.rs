//! The runc-compatible commands. Each returns the process exit code.

use std::io::Write;
use std::os::fd::AsFd;
use std::path::PathBuf;

use anyhow::Result;

use crate::cli::oci::{Command, CreateArgs, ListFormat};
use crate::runtime::create::{CreateOpts, SpecSource};
use crate::runtime::{ops, Globals};

fn opts(a: &CreateArgs) -> CreateOpts {
    CreateOpts {
        id: a.id.clone(),
        source: SpecSource::Bundle(PathBuf::from(&a.bundle)),
        console_socket: a.console_socket.as_ref().map(PathBuf::from),
        pid_file: a.pid_file.as_ref().map(PathBuf::from),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        internal_console: false,
        listen_fds: std::env::var("LISTEN_FDS").map_or(0, |v| v.parse().unwrap_or(0)),
        notify_socket: std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty()),
    }
}

/// Warnings of a command that succeeded, logged before it exits 0.
fn warned(warnings: &[String]) -> i32 {
    for w in warnings {
        crate::logging::warn(w);
    }
    0
}

fn print_json(v: &serde_json::Value) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

pub(crate) fn dispatch(g: &Globals, cmd: Command) -> Result<i32> {
    if matches!(cmd, Command::Create(_) | Command::Run(_) | Command::Exec(_)) {
        // Before anything is made: this may re-execute the whole command.
        crate::exeseal::ensure_sealed()?;
        crate::timeline::mark("check-sealed");
    }
    match cmd {
        Command::Create(a) => {
            let c = crate::runtime::create::create(g, &opts(&a))?;
            Ok(warned(&c.warnings))
        }
        Command::Run(a) => {
            let mut o = opts(&a.create);
            let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
            let io = crate::runtime::run::Stdio::new(stdin.as_fd(), stdout.as_fd());
            let warn = &mut |w: &str| crate::logging::warn(w);
            Ok(crate::runtime::run::run(
                g, &mut o, a.detach, a.keep, io, warn,
            )?)
        }
        Command::Exec(a) => {
            let o = crate::runtime::exec::ExecOpts {
                id: a.id,
                process_file: a.process.map(PathBuf::from),
                args: a.command,
                tty: a.tty,
                console_socket: a.console_socket.map(PathBuf::from),
                detach: a.detach,
                pid_file: a.pid_file.map(PathBuf::from),
                env: a.env,
                cwd: a.cwd,
                user: a.user,
                additional_gids: a.additional_gids,
                caps: a.cap,
                no_new_privs: a.no_new_privs,
                preserve_fds: a.preserve_fds,
                apparmor: a.apparmor,
                process_label: a.process_label,
                ignore_paused: a.ignore_paused,
            };
            crate::runtime::exec::exec(g, &o)
        }
        Command::Events {
            interval,
            stats,
            id,
        } => {
            let every = parse_duration(&interval)?;
            ops::events(g, &id, stats, every, &mut |v| -> Result<()> {
                let mut out = std::io::stdout().lock();
                serde_json::to_writer(&mut out, v)?;
                writeln!(out)?;
                out.flush()?;
                Ok(())
            })?;
            Ok(0)
        }
        Command::Update(a) => crate::runtime::update::update(g, &a).map(|_| 0),
        Command::Pause { id } => Ok(ops::pause(g, &id).map(|_| 0)?),
        Command::Resume { id } => Ok(ops::resume(g, &id).map(|_| 0)?),
        Command::Ps {
            format,
            id,
            ps_args,
        } => ps(g, &id, format, &ps_args).map(|_| 0),
        Command::Start { id } => Ok(warned(&ops::start(g, &id)?)),
        Command::State { id } => {
            print_json(&serde_json::to_value(ops::state(g, &id)?)?)?;
            Ok(0)
        }
        Command::Kill { all, id, signal } => {
            let sig = ops::parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            Ok(ops::kill(g, &id, sig, all).map(|_| 0)?)
        }
        Command::Delete { force, id } => Ok(warned(&ops::delete(g, &id, force)?)),
        Command::List { quiet, format } => list(g, quiet, format).map(|_| 0),
        Command::Spec { bundle, rootless } => {
            let dir = if bundle.is_empty() {
                PathBuf::from(".")
            } else {
                PathBuf::from(bundle)
            };
            crate::spec::default::write_spec(&dir, rootless)?;
            Ok(0)
        }
        Command::Features => {
            print_json(&crate::spec::features::features_json())?;
            Ok(0)
        }
    }
}

fn list(g: &Globals, quiet: bool, format: ListFormat) -> Result<()> {
    let all = ops::list(g)?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for c in &all {
            writeln!(out, "{}", c.id)?;
        }
        return Ok(());
    }
    if format == ListFormat::Json {
        serde_json::to_writer(&mut out, &all)?;
        writeln!(out)?;
        return Ok(());
    }
    let rows: Vec<[String; 6]> =
        std::iter::once(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from))
            .chain(all.iter().map(|c| {
                [
                    c.id.clone(),
                    c.pid.to_string(),
                    c.status.to_string(),
                    c.bundle.display().to_string(),
                    c.created.clone(),
                    c.owner.clone().unwrap_or_default(),
                ]
            }))
            .collect();
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("   ").trim_end())?;
    }
    if all.is_empty() && rows.len() == 1 {
        return Ok(());
    }
    Ok(())
}

/// As runc: JSON is the array of host pids; the table is ps(1)'s output (default `-ef`)
/// filtered to the container's processes.
fn ps(g: &Globals, id: &str, format: ListFormat, args: &[String]) -> Result<()> {
    let pids = ops::pids(g, id)?;
    let mut out = std::io::stdout().lock();
    if format == ListFormat::Json {
        serde_json::to_writer(&mut out, &pids)?;
        writeln!(out)?;
        return Ok(());
    }
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let res = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| anyhow::anyhow!("ps: {e}"))?;
    if !res.status.success() {
        anyhow::bail!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&res.stderr).trim()
        );
    }
    let text = String::from_utf8_lossy(&res.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| anyhow::anyhow!("ps {}: no PID column in the output", args.join(" ")))?;
    writeln!(out, "{header}")?;
    for l in lines {
        if l.split_whitespace()
            .nth(col)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| pids.contains(&p))
        {
            writeln!(out, "{l}")?;
        }
    }
    Ok(())
}

/// Go-style durations as runc takes them: "5s", "100ms", "1m", "1.5s".
fn parse_duration(s: &str) -> Result<std::time::Duration> {
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("--interval {s:?}: invalid duration"))?;
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => anyhow::bail!("--interval {s:?}: unknown unit {unit:?}"),
    };
    if !(secs > 0.0 && secs.is_finite()) {
        anyhow::bail!("--interval {s:?}: must be positive");
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}
