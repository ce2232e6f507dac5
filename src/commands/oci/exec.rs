//! `exec`: run a new process in a running container. The process is `--process FILE` as
//! given, or the container's own process with the flags applied (as runc builds it).

use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::{Capability, Process};
use serde_json::Value;

use crate::cli::oci::ExecArgs;
use crate::runtime::exec::{exec, ExecOpts, Target};
use crate::runtime::Globals;

pub(super) fn run(g: &Globals, a: ExecArgs) -> Result<i32> {
    let target = Target::open(g, &a.id, a.ignore_paused)?;
    let process = match &a.process {
        Some(f) => read_process(f)?,
        None => from_flags(target.process(), &a)?,
    };
    let o = ExecOpts {
        detach: a.detach,
        console_socket: a.console_socket.map(PathBuf::from),
        pid_file: a.pid_file.map(PathBuf::from),
        preserve_fds: a.preserve_fds,
        sub_cgroups: a.cgroup.iter().map(|c| sub_cgroup(c)).collect(),
    };
    exec(&target, &process, &o)
}

/// `--cgroup [CONTROLLER[,CONTROLLER]:]PATH`, as runc.
fn sub_cgroup(arg: &str) -> (Vec<String>, PathBuf) {
    match arg.split_once(':') {
        Some((ctrls, path)) => (
            ctrls
                .split(',')
                .filter(|c| !c.is_empty())
                .map(String::from)
                .collect(),
            PathBuf::from(path),
        ),
        None => (Vec::new(), PathBuf::from(arg)),
    }
}

/// `--process FILE` (`-`: the standard input), a runtime-spec process. As runc (Go's zero
/// value), a missing `user` is root.
fn read_process(f: &str) -> Result<Process> {
    let data = if f == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
            .context("--process -: reading stdin")?;
        v
    } else {
        std::fs::read(f).map_err(|e| anyhow!("--process {f}: {}", crate::error::errno_text(&e)))?
    };
    let mut v: Value = serde_json::from_slice(&data).map_err(|e| anyhow!("--process {f}: {e}"))?;
    if let Value::Object(o) = &mut v {
        o.entry("user")
            .or_insert_with(|| serde_json::json!({"uid": 0, "gid": 0}));
    }
    let p: Process = serde_json::from_value(v).map_err(|e| anyhow!("--process {f}: {e}"))?;
    if p.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("--process {f}: process.args must not be empty");
    }
    Ok(p)
}

/// The container's process with runc's exec flags applied.
fn from_flags(mut p: Process, a: &ExecArgs) -> Result<Process> {
    if a.command.is_empty() {
        bail!("exec: a command to run is required (or --process FILE)");
    }
    p.set_args(Some(a.command.clone()));
    p.set_terminal(Some(a.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    for e in &a.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &a.cwd {
        p.set_cwd(PathBuf::from(cwd));
    }
    if a.apparmor.is_some() {
        p.set_apparmor_profile(a.apparmor.clone());
    }
    if a.process_label.is_some() {
        p.set_selinux_label(a.process_label.clone());
    }
    if let Some(u) = &a.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let user = p.user_mut();
        user.set_uid(
            uid.parse()
                .map_err(|_| anyhow!("--user {u:?}: uid must be numeric"))?,
        );
        if let Some(g) = gid {
            user.set_gid(
                g.parse()
                    .map_err(|_| anyhow!("--user {u:?}: gid must be numeric"))?,
            );
        }
    }
    if !a.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(a.additional_gids.clone()));
    }
    if a.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    let caps = a
        .cap
        .iter()
        .map(|name| {
            serde_json::from_value::<Capability>(Value::String(name.clone()))
                .map_err(|_| anyhow!("--cap {name}: unknown capability"))
        })
        .collect::<Result<Vec<_>>>()?;
    crate::runtime::exec::add_capabilities(&mut p, &caps);
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn args(argv: &[&str]) -> ExecArgs {
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: ExecArgs,
        }
        T::parse_from(std::iter::once("exec").chain(argv.iter().copied())).a
    }

    #[test]
    fn flags_change_the_containers_process() {
        let mut base = Process::default();
        base.set_env(Some(vec!["PATH=/bin".into(), "TERM=xterm".into()]));
        let p = from_flags(
            base,
            &args(&[
                "-e",
                "TERM=dumb",
                "-e",
                "A=1",
                "--user",
                "7:8",
                "-g",
                "9",
                "--cwd",
                "/tmp",
                "--cap",
                "CAP_SYS_ADMIN",
                "-t",
                "id",
                "sh",
                "-c",
                "true",
            ]),
        )
        .unwrap();
        assert_eq!(
            p.args().as_deref(),
            Some(&["sh".to_string(), "-c".into(), "true".into()][..])
        );
        assert_eq!(
            p.env().as_deref(),
            Some(&["PATH=/bin".to_string(), "TERM=dumb".into(), "A=1".into()][..])
        );
        assert_eq!((p.user().uid(), p.user().gid()), (7, 8));
        assert_eq!(p.user().additional_gids().as_deref(), Some(&[9][..]));
        assert_eq!(p.cwd(), &PathBuf::from("/tmp"));
        assert_eq!(p.terminal(), Some(true));
        let caps = p.capabilities().as_ref().unwrap();
        for set in [caps.bounding(), caps.effective(), caps.permitted()] {
            assert!(set.as_ref().unwrap().contains(&Capability::SysAdmin));
        }
        assert!(!caps
            .inheritable()
            .as_ref()
            .is_some_and(|s| s.contains(&Capability::SysAdmin)));
    }

    #[test]
    fn bad_flags_name_themselves() {
        let e = |argv: &[&str]| {
            from_flags(Process::default(), &args(argv))
                .unwrap_err()
                .to_string()
        };
        assert!(e(&["--user", "bob", "id", "true"]).starts_with("--user \"bob\""));
        assert!(e(&["--user", "1:x", "id", "true"]).contains("gid must be numeric"));
        assert!(e(&["--cap", "CAP_NOPE", "id", "true"]).starts_with("--cap CAP_NOPE"));
        assert!(e(&["id"]).contains("a command to run is required"));
    }

    #[test]
    fn process_file_without_user_runs_as_root() {
        let dir = std::env::temp_dir().join(format!("berth-exec-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("p.json");
        std::fs::write(&f, r#"{"args": ["true"], "cwd": "/"}"#).unwrap();
        let p = read_process(f.to_str().unwrap()).unwrap();
        assert_eq!((p.user().uid(), p.user().gid()), (0, 0));
        std::fs::write(&f, r#"{"args": [], "cwd": "/"}"#).unwrap();
        let e = read_process(f.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.ends_with("process.args must not be empty"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
