//! `exec`: a new process in a running container, with this command as its parent (its
//! stdio, or a terminal relayed to ours); the process's exit status is ours, 126/127 when
//! it cannot be run.

use std::os::fd::AsFd;

use anyhow::{bail, Result};

use crate::cli::front::ExecArgs;
use crate::front::containers::{exit_error, runtime, Live, Store};
use crate::front::specgen;
use crate::front::Globals;

pub(crate) fn exec(g: &Globals, a: &ExecArgs) -> Result<i32> {
    let store = Store::new(g);
    let c = store.get_started(&a.container)?;
    match store.derive(&c) {
        Live::Running => {}
        Live::Paused => bail!(
            "container {} is paused, unpause the container before exec",
            a.container
        ),
        _ => bail!("container {} is not running", a.container),
    }
    if a.preserve_fds > 0 {
        bail!("--preserve-fds: not available yet in berth");
    }
    crate::front::monitor::client::parse_detach_keys(a.detach_keys.as_deref())?;
    let stdin_tty = nix::unistd::isatty(std::io::stdin().as_fd()).unwrap_or(false);
    if a.tty && a.interactive && !stdin_tty {
        bail!("the input device is not a TTY");
    }
    if a.tty && a.detach {
        bail!("-t and -d: a detached exec cannot have a terminal");
    }
    let env = specgen::user_env(&a.env_file, &a.env)?;
    let user = match &a.user {
        Some(u) => {
            // The container's own view: an image's overlay is mounted in its mount
            // namespace only.
            let root = if c.state.pid > 0 {
                std::path::PathBuf::from(format!("/proc/{}/root", c.state.pid))
            } else {
                c.rec.rootfs.clone()
            };
            let eu = specgen::resolve_user(specgen::RootView::Dir(&root), u, &[])?;
            Some(eu)
        }
        None => None,
    };
    if let Some(w) = &a.workdir {
        if !w.starts_with('/') {
            bail!("-w/--workdir {w:?}: the working directory must be an absolute path");
        }
    }
    let e = runtime::Exec {
        id: c.rec.id.clone(),
        args: a.command.clone(),
        env,
        cwd: a.workdir.clone(),
        user: user.as_ref().map(|u| (u.uid, u.gid)),
        additional_gids: user.map(|u| u.sgids).unwrap_or_default(),
        tty: a.tty,
        detach: a.detach,
        caps: if a.privileged {
            specgen::all_caps()
        } else {
            Vec::new()
        },
        stdin: a.interactive,
    };
    match runtime::exec(&store.rt, &e) {
        Ok(code) => Ok(code),
        Err(err) => match runtime::exec_failure_code(&err) {
            Some(code) => Err(exit_error(code, format!("{err:#}"))),
            None => Err(err),
        },
    }
}
