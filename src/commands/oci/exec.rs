//! `exec`: run a new process in a running container.

use std::path::PathBuf;

use anyhow::Result;

use crate::cli::oci::ExecArgs;
use crate::runtime::Globals;

pub(super) fn run(g: &Globals, a: ExecArgs) -> Result<i32> {
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
