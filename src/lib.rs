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
// Filled in by the people commands as they land; until they call it, parts are unused.
#[allow(dead_code)]
mod front;
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

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, FromArgMatches};

/// Which command language a process speaks, decided before any parsing.
#[derive(Debug, PartialEq, Eq)]
enum Face {
    /// runc's CLI: invoked as `runc`/`*-runc`, or as `berth oci ...` (the args then
    /// start with the name clap shows, `berth oci`).
    Runc(Vec<OsString>),
    /// Docker's language, at the top level.
    People(Vec<OsString>),
    /// A systemd generator turning Quadlet `.container` files into units.
    Generator(Vec<OsString>),
}

fn choose_face(mut args: Vec<OsString>) -> Face {
    let base = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if base == "runc" || base.ends_with("-runc") {
        return Face::Runc(args);
    }
    if base.ends_with("-generator") {
        return Face::Generator(args);
    }
    if args.get(1).is_some_and(|a| a == "oci") {
        args.splice(0..2, [OsString::from("berth oci")]);
        return Face::Runc(args);
    }
    Face::People(args)
}

/// The whole command line: choose the face, parse, dispatch, report the one error, exit.
pub fn main() {
    timeline::mark("exec");
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.iter().skip(1).any(|a| a == "monitor") {
        // A monitor (or `--init`, `monitor init`) lives as long as its container: before
        // clap's parse, whose allocations would otherwise stay in the arena for good. A
        // command that merely names a container "monitor" only loses the arena's speed.
        sys::arena::close();
    }
    let face = choose_face(args.clone());
    if exeseal::wants_early_seal(&args) {
        // On failure the check after parsing reports it, with logging set up.
        let _ = exeseal::ensure_sealed();
    }
    let code = match face {
        Face::Runc(args) => oci_main(args),
        Face::People(args) => people_main(args),
        Face::Generator(args) => commands::front::generate::generator(&args),
    };
    timeline::mark("exit");
    std::process::exit(code);
}

fn oci_main(args: Vec<OsString>) -> i32 {
    // The name the usage lines show, as clap takes it: argv[0]'s file name.
    let bin = args
        .first()
        .map(|a| {
            let p = Path::new(a);
            p.file_name()
                .unwrap_or(p.as_os_str())
                .to_string_lossy()
                .into_owned()
        })
        .unwrap_or_else(|| "berth-runc".into());
    let mut command = cli::Cli::oci_command(&bin);
    let matches = match command.try_get_matches_from_mut(args) {
        Ok(m) => m,
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidSubcommand => {
            // runc's words (and exit code) for a command it does not have, -h or not.
            let name = match e.get(clap::error::ContextKind::InvalidSubcommand) {
                Some(clap::error::ContextValue::String(s)) => s.clone(),
                _ => String::new(),
            };
            logging::error(&format!("No help topic for '{name}'"));
            return 3;
        }
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return 1;
        }
    };
    if cli.version {
        print!("{}", cli::Cli::version_text(&bin));
        return 0;
    }
    let Some(oci_command) = cli.command else {
        // runc with no command shows its help.
        let _ = command.print_help();
        return 0;
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
    let is_exec = matches!(oci_command, cli::oci::Command::Exec(_));
    match commands::oci::dispatch(&globals, oci_command) {
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
    }
}

/// The whole tree's parse: its errors and help are what the user sees.
fn people_parse(args: Vec<OsString>) -> Result<(clap::ArgMatches, cli::front::FrontCli), i32> {
    let matches = match cli::front::FrontCli::command().try_get_matches_from(args) {
        Ok(m) => m,
        // Docker exits 125 on a usage error of run/create/exec, and Podman on every one.
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return Err(code);
        }
    };
    match cli::front::FrontCli::from_arg_matches(&matches) {
        Ok(c) => Ok((matches, c)),
        Err(e) => {
            let _ = e.print();
            Err(125)
        }
    }
}

fn people_main(args: Vec<OsString>) -> i32 {
    // The hot commands' short tree first; anything it refuses, the whole tree says.
    let hot = cli::front::hot_command(&args)
        .and_then(|c| c.try_get_matches_from(args.iter().cloned()).ok())
        .and_then(|m| {
            let cli = cli::front::FrontCli::from_arg_matches(&m).ok()?;
            Some((m, cli))
        });
    let (matches, cli) = match hot {
        Some(p) => p,
        None => match people_parse(args) {
            Ok(p) => p,
            Err(code) => return code,
        },
    };
    let mut name = Vec::new();
    let mut m = &matches;
    while let Some((sub, next)) = m.subcommand() {
        name.push(sub);
        m = next;
    }
    let name = name.join(" ");
    timeline::mark("parse-args");
    let debug = matches!(cli.top.log_level.as_str(), "debug" | "trace");
    logging::init(None, logging::Format::People, debug);
    if cli.top.version {
        println!("berth version {}", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let Some(command) = cli.command else {
        let _ = cli::front::FrontCli::command().print_help();
        return 0;
    };
    let manager = match cli.top.cgroup_manager.as_deref() {
        Some("systemd") => Some(front::CgroupManager::Systemd),
        Some(_) => Some(front::CgroupManager::Cgroupfs),
        None => None,
    };
    let globals = front::Globals::new(
        cli.top.root.map(PathBuf::from),
        cli.top.runroot.map(PathBuf::from),
        manager,
    );
    let class = if commands::front::fails_with_125(&command) {
        125
    } else {
        1
    };
    match commands::front::dispatch(&globals, command, &name) {
        Ok(code) => code,
        Err(e) => {
            let code = e
                .chain()
                .find_map(|c| c.downcast_ref::<front::Exit>())
                .map_or(class, |x| x.code);
            let msg = format!("{e:#}");
            if !msg.is_empty() {
                logging::error(&msg);
            }
            code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(s: &str) -> Face {
        choose_face(s.split(' ').map(OsString::from).collect())
    }

    #[test]
    fn the_face_comes_from_the_name_then_the_first_word() {
        assert!(matches!(face("/usr/bin/berth-runc list"), Face::Runc(a) if a.len() == 2));
        assert!(matches!(face("runc --root /x list"), Face::Runc(_)));
        assert!(matches!(face("/x/berth ps -a"), Face::People(_)));
        // Nothing is guessed from the arguments: a runc command at the top level is
        // the people face's (which then says what it knows).
        assert!(matches!(face("berth state c1"), Face::People(_)));
        assert!(matches!(face("berth-runc-not runc"), Face::People(_)));
        assert_eq!(
            face("/usr/bin/berth oci --root /x list"),
            Face::Runc(
                ["berth oci", "--root", "/x", "list"]
                    .map(OsString::from)
                    .to_vec()
            )
        );
        // Only the first word: a later `oci` is an argument.
        assert!(matches!(face("berth run oci"), Face::People(_)));
    }
}
