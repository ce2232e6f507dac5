//! The one place the people face reaches berth's runtime: every call into `crate::runtime`
//! (and the few process helpers of `crate::state` it leans on) goes through here, so that
//! moving to the runtime library's typed API (in-memory spec, explicit stdio, typed state
//! and errors) changes this file alone.
//!
//! Today's runtime reads the spec from `<bundle>/config.json` and gives the init the
//! caller's fds 0-2; `create` below writes the bundle and lends the container's stdio to
//! fds 0-2 for the duration of the call (the monitor is single-threaded there).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use oci_spec::runtime::Spec;

use crate::runtime::Globals;

/// The container's standard streams as the init gets them.
pub(crate) enum Stdio<'a> {
    /// stdin, stdout, stderr (pipes, /dev/null, or the caller's own).
    Fds([BorrowedFd<'a>; 3]),
    /// A terminal: the runtime makes the pty; its master comes back in [`Created`]. stdin
    /// is what the init's fd 0 would be before the pty replaces it.
    Pty,
}

pub(crate) struct Created {
    pub(crate) pid: i32,
    pub(crate) pidfd: OwnedFd,
    pub(crate) pty_master: Option<OwnedFd>,
    /// What the runtime wants said though it made the container. Today's runtime logs its
    /// warnings to fd 2 instead (the monitor reads them from the stderr pipe it lent).
    pub(crate) warnings: Vec<String>,
    inner: crate::runtime::create::Created,
}

/// Writes the bundle (`<bundle>/config.json`) and creates the container `id`: its init is
/// our child, blocked before exec until [`start`].
pub(crate) fn create(
    g: &Globals,
    id: &str,
    spec: &Spec,
    bundle: &Path,
    stdio: Stdio,
) -> Result<Created> {
    std::fs::create_dir_all(bundle)
        .map_err(|e| anyhow!("{}: {}", bundle.display(), crate::error::errno_text(&e)))?;
    let data = serde_json::to_vec(spec).context("encoding the container's spec")?;
    crate::state::write_atomic(&bundle.join("config.json"), &data, 0o600)?;
    let terminal = matches!(stdio, Stdio::Pty);
    let opts = crate::runtime::create::CreateOpts {
        id: id.to_string(),
        bundle: bundle.to_path_buf(),
        console_socket: None,
        pid_file: None,
        no_pivot: false,
        no_new_keyring: false,
        preserve_fds: 0,
        internal_console: terminal,
    };
    let c = match stdio {
        Stdio::Fds(fds) => with_stdio(fds, || crate::runtime::create::create(g, &opts))?,
        Stdio::Pty => crate::runtime::create::create(g, &opts)?,
    };
    Ok(Created {
        pid: c.pid,
        pidfd: c.pidfd.try_clone().context("dup pidfd")?,
        pty_master: c.pty_master.as_ref().map(|m| m.try_clone()).transpose()?,
        warnings: Vec::new(),
        inner: c,
    })
}

/// Runs `f` with `fds` on 0, 1, 2, then puts ours back.
fn with_stdio<T>(fds: [BorrowedFd; 3], f: impl FnOnce() -> Result<T>) -> Result<T> {
    let saved = [
        std::io::stdin().as_fd().try_clone_to_owned(),
        std::io::stdout().as_fd().try_clone_to_owned(),
        std::io::stderr().as_fd().try_clone_to_owned(),
    ];
    let saved: Vec<OwnedFd> = saved
        .into_iter()
        .collect::<std::io::Result<_>>()
        .context("saving stdio")?;
    set_stdio([fds[0], fds[1], fds[2]])?;
    let r = f();
    set_stdio([saved[0].as_fd(), saved[1].as_fd(), saved[2].as_fd()])?;
    r
}

fn set_stdio(fds: [BorrowedFd; 3]) -> Result<()> {
    let skip = |fd: BorrowedFd, n: i32| fd.as_raw_fd() == n;
    if !skip(fds[0], 0) {
        nix::unistd::dup2_stdin(fds[0])?;
    }
    if !skip(fds[1], 1) {
        nix::unistd::dup2_stdout(fds[1])?;
    }
    if !skip(fds[2], 2) {
        nix::unistd::dup2_stderr(fds[2])?;
    }
    Ok(())
}

/// Lets the init exec the container's process. On failure the container is destroyed.
pub(crate) fn start(c: &Created) -> Result<()> {
    crate::runtime::ops::start_created(&c.inner.dir, &c.inner.rec, true)
}

/// After the init exited (and was reaped): kills what is left, removes cgroups and the
/// runtime's record.
pub(crate) fn destroy(c: &Created) -> Result<()> {
    crate::runtime::ops::destroy(&c.inner.dir, &c.inner.rec, crate::state::Status::Stopped)
}

/// How many times the kernel OOM-killed in the container's memory cgroup.
pub(crate) fn oom_kills(c: &Created) -> u64 {
    crate::cgroups::stats::oom_kills(&c.inner.rec.cgroup)
}

/// Removes whatever the runtime still has of `id` (processes, cgroups, record); an unknown
/// id is fine.
pub(crate) fn delete(g: &Globals, id: &str) -> Result<()> {
    crate::runtime::ops::delete(g, id, true)
}

/// Whether the runtime knows `id` and its init is alive.
pub(crate) fn status(g: &Globals, id: &str) -> Option<String> {
    let v = crate::runtime::ops::state(g, id).ok()?;
    v["status"].as_str().map(str::to_string)
}

pub(crate) fn kill(g: &Globals, id: &str, sig: i32, all: bool) -> Result<()> {
    crate::runtime::ops::kill(g, id, sig, all)
}

pub(crate) fn pause(g: &Globals, id: &str) -> Result<()> {
    crate::runtime::ops::pause(g, id)
}

pub(crate) fn resume(g: &Globals, id: &str) -> Result<()> {
    crate::runtime::ops::resume(g, id)
}

/// Host pids of every process in the container.
pub(crate) fn pids(g: &Globals, id: &str) -> Vec<i32> {
    crate::runtime::ops::pids(g, id).unwrap_or_default()
}

/// A signal by name (KILL, SIGKILL, kill) or number.
pub(crate) fn parse_signal(s: &str) -> Result<i32> {
    crate::runtime::ops::parse_signal(s)
}

/// What `exec` runs, resolved by the front (numeric user, final env).
pub(crate) struct Exec {
    pub(crate) id: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<String>,
    pub(crate) cwd: Option<String>,
    pub(crate) user: Option<(u32, u32)>,
    pub(crate) additional_gids: Vec<u32>,
    pub(crate) tty: bool,
    pub(crate) detach: bool,
    pub(crate) caps: Vec<String>,
    /// Without -i the process's stdin is /dev/null, as Docker's.
    pub(crate) stdin: bool,
}

/// Runs a process in the running container `id` with our own stdio (or a pty relayed to
/// it); returns its exit status (128+signal), or 0 at once when detached.
pub(crate) fn exec(g: &Globals, e: &Exec) -> Result<i32> {
    let opts = crate::runtime::exec::ExecOpts {
        id: e.id.clone(),
        args: e.args.clone(),
        tty: e.tty,
        detach: e.detach,
        env: e.env.clone(),
        cwd: e.cwd.clone(),
        user: e.user.map(|(u, g)| format!("{u}:{g}")),
        additional_gids: e.additional_gids.clone(),
        caps: e.caps.clone(),
        ..Default::default()
    };
    if e.stdin && !e.detach {
        return crate::runtime::exec::exec(g, &opts);
    }
    let null = std::fs::File::open("/dev/null").context("open /dev/null")?;
    let out = if e.detach {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/null")
            .context("open /dev/null")?
    } else {
        std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?)
    };
    let err = if e.detach {
        out.try_clone()?
    } else {
        std::fs::File::from(std::io::stderr().as_fd().try_clone_to_owned()?)
    };
    with_stdio([null.as_fd(), out.as_fd(), err.as_fd()], || {
        crate::runtime::exec::exec(g, &opts)
    })
}

/// Docker's exit status for a process that could not be started: 127 when the program
/// does not exist, 126 when it cannot be executed. Read from the runtime's phrases (runc's,
/// which podman maps the same way) until its errors carry the errno.
pub(crate) fn exec_failure_code(e: &anyhow::Error) -> Option<i32> {
    let text = format!("{e:#}");
    if !text.contains("exec") {
        return None;
    }
    if text.contains("executable file not found") || text.contains("no such file or directory") {
        Some(127)
    } else if text.contains("permission denied")
        || text.contains("is a directory")
        || text.contains("exec format error")
    {
        Some(126)
    } else {
        None
    }
}

/// Start time of `pid` in clock ticks since boot (defeats pid reuse), if it is running.
pub(crate) fn process_start_time(pid: i32) -> Option<u64> {
    if !crate::state::process_running(pid) {
        return None;
    }
    crate::state::process_start_time(pid)
}

pub(crate) fn boot_id() -> String {
    crate::state::boot_id()
}

/// RFC 3339 with nanoseconds, UTC.
pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
    crate::logging::rfc3339(t)
}

/// Where a container's bundle is written for the runtime.
pub(crate) fn bundle_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("bundle")
}
