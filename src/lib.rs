//! berth: a daemonless, single-binary OCI container runtime. The binary is `src/main.rs`;
//! this library exists so that the fuzz targets (fuzz/) can reach internal parsers
//! through [`fuzzing`], and so that the binary can name its allocator ([`Arena`]). Nothing
//! else is public.

// `unsafe` lives in src/sys alone, each block with its `// SAFETY:` note.
#![deny(unsafe_code)]

mod cgroups;
mod cli;
mod commands;
mod error;
mod exeseal;
mod hooks;
mod logging;
mod namespaces;
mod passwd;
mod process;
mod rootfs;
mod runtime;
mod seccomp;
mod security;
mod signals;
mod spec;
mod state;
#[allow(unsafe_code)]
#[warn(clippy::undocumented_unsafe_blocks)]
mod sys;
mod testpoint;
mod timeline;

pub mod fuzzing;

/// The binary's global allocator (see src/sys/arena.rs); the fuzz targets keep the system's.
pub use sys::arena::Arena;

use std::path::PathBuf;

use clap::Parser;

/// The whole command line: parse, dispatch, report the one error, exit.
pub fn main() {
    timeline::mark("exec");
    if exeseal::wants_early_seal(&std::env::args_os().collect::<Vec<_>>()) {
        // On failure the check after parsing reports it, with logging set up.
        let _ = exeseal::ensure_sealed();
    }
    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    timeline::mark("parse-args");
    let format = match cli.log_format {
        cli::LogFormat::Text => logging::Format::Text,
        cli::LogFormat::Json => logging::Format::Json,
    };
    logging::init(cli.log.clone(), format, cli.debug);
    let globals = runtime::Globals {
        root: cli
            .root
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(state::default_root),
        systemd_cgroup: cli.systemd_cgroup,
        rootless: match cli.rootless.as_deref() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        },
    };
    // runc ends a failed exec with 255 (and "exec failed: "), leaving 1..=254 to the
    // process's own exit status.
    let is_exec = matches!(cli.command, cli::oci::Command::Exec(_));
    let code = match commands::oci::dispatch(&globals, cli.command) {
        Ok(code) => code,
        Err(e) => {
            // The one place an error is reported: the cause chain joined by ": ".
            let msg = if is_exec {
                format!("exec failed: {e:#}")
            } else {
                format!("{e:#}")
            };
            logging::error(&msg);
            if cli.log.is_some() {
                eprintln!("{msg}");
            }
            if is_exec {
                255
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}
