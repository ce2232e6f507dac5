//! The one place the people face reaches berth's runtime: every call into `crate::runtime`
//! (and the few process helpers of `crate::state` it leans on) goes through here, so that
//! moving to the runtime library's typed API (in-memory spec, explicit stdio, typed state
//! and errors) changes this file alone.
//!
//! The spec goes to the runtime in memory (the bundle dir only anchors it). The init gets
//! the caller's fds 0-2: `create` lends the container's stdio to fds 0-2 for the duration
//! of the call (the monitor is single-threaded there).

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
    /// What the runtime wants said though it made the container.
    pub(crate) warnings: Vec<String>,
    inner: crate::runtime::create::Created,
}

/// Creates the container `id` from `spec` (anchored at `bundle`, made if missing): its
/// init is our child, blocked before exec until [`start`].
/// Seccomp filters compiled for this store's containers are kept under its runroot.
pub(crate) fn keep_compiled_filters(runroot: &Path) {
    crate::runtime::create::keep_compiled_filters(runroot.join("seccomp"));
}

pub(crate) fn create(
    g: &Globals,
    id: &str,
    spec: Spec,
    bundle: &Path,
    stdio: Stdio,
) -> Result<Created> {
    std::fs::create_dir_all(bundle)
        .map_err(|e| anyhow!("{}: {}", bundle.display(), crate::error::errno_text(&e)))?;
    let terminal = matches!(stdio, Stdio::Pty);
    // The driver is the container's, chosen when it was made (`--cgroup-manager`): its
    // cgroupsPath says which (the monitor that creates it runs without the flag).
    let systemd = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .is_some_and(|p| crate::runtime::is_systemd_cgroups_path(p));
    let opts = crate::runtime::create::CreateOpts {
        id: id.to_string(),
        source: crate::runtime::create::SpecSource::Spec {
            spec: Box::new(crate::front::userns::to_this_namespace(spec)?),
            bundle: bundle.to_path_buf(),
        },
        console_socket: None,
        pid_file: None,
        no_pivot: false,
        no_new_keyring: false,
        preserve_fds: 0,
        internal_console: terminal,
        listen_fds: 0,
        notify_socket: None,
    };
    let g = &crate::runtime::Globals {
        systemd_cgroup: systemd,
        ..g.clone()
    };
    let create = || Ok(crate::runtime::create::create(g, &opts)?);
    let c = match stdio {
        Stdio::Fds(fds) => with_stdio(fds, create)?,
        Stdio::Pty => create()?,
    };
    Ok(Created {
        pid: c.pid,
        pidfd: c.pidfd.try_clone().context("dup pidfd")?,
        pty_master: c.pty_master.as_ref().map(|m| m.try_clone()).transpose()?,
        warnings: c.warnings.clone(),
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
pub(crate) fn start(c: &Created) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    crate::runtime::ops::start_created(&c.inner.dir, &c.inner.rec, None, true, &mut warnings)?;
    wait_exec(&c.inner.exec_watch);
    Ok(warnings)
}

/// Waits until the released init has exec'd the container's process. Until then it is a
/// clone of this berth (the monitor's command line), which `top` and `ps` would show as
/// the container's process right after `run -d` returned. The init holds its end of the
/// sync socket until the exec closes it (the kernel switches the process's exe before it
/// closes close-on-exec files) or until it dies: either way POLLHUP, no polling of /proc.
/// Bounded, as before.
fn wait_exec(watch: &OwnedFd) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        let ms = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(watch.as_fd(), PollFlags::empty())];
        match poll(&mut fds, ms) {
            Err(nix::errno::Errno::EINTR) => continue,
            // HUP, an error, or the deadline: nothing more to wait for.
            _ => return,
        }
    }
}

/// After the init exited (and was reaped): kills what is left, removes cgroups and the
/// runtime's record.
pub(crate) fn destroy(c: &Created) -> Result<Vec<String>> {
    Ok(crate::runtime::ops::destroy(
        &c.inner.dir,
        &c.inner.rec,
        crate::state::Status::Stopped,
    )?)
}

/// How many times the kernel OOM-killed in the container's memory cgroup.
pub(crate) fn oom_kills(c: &Created) -> u64 {
    crate::cgroups::stats::oom_kills(&c.inner.rec.cgroup)
}

/// Removes whatever the runtime still has of `id` (processes, cgroups, record); an unknown
/// id is fine.
pub(crate) fn delete(g: &Globals, id: &str) -> Result<Vec<String>> {
    Ok(crate::runtime::ops::delete(g, id, true)?)
}

/// Whether the container's cgroup is frozen (paused), for a container known to run.
/// Only a container paused through here can be frozen: the mark [`pause`] leaves in the
/// runtime's directory of the container (removed with it) spares every running container
/// of a listing the read of its runtime state and cgroup, for one failed stat.
pub(crate) fn is_frozen(g: &Globals, id: &str) -> bool {
    g.root.join(id).join(PAUSE_MARK).exists()
        && crate::runtime::ops::is_frozen(g, id).unwrap_or(false)
}

pub(crate) const PAUSE_MARK: &str = "people-paused";

/// Whether the runtime knows `id` and its init is alive.
pub(crate) fn status(g: &Globals, id: &str) -> Option<String> {
    crate::runtime::ops::status(g, id)
        .ok()
        .map(|s| s.to_string())
}

pub(crate) fn kill(g: &Globals, id: &str, sig: i32, all: bool) -> Result<()> {
    Ok(crate::runtime::ops::kill(g, id, sig, all)?)
}

/// The mark first: a crash between the two leaves a mark on a thawed container, which
/// [`is_frozen`] checks against the cgroup; never a frozen container without its mark.
pub(crate) fn pause(g: &Globals, id: &str) -> Result<()> {
    let mark = g.root.join(id).join(PAUSE_MARK);
    if g.root.join(id).is_dir() {
        std::fs::write(&mark, b"")
            .map_err(|e| anyhow!("{}: {}", mark.display(), crate::error::errno_text(&e)))?;
    }
    crate::runtime::ops::pause(g, id).inspect_err(|_| {
        if !crate::runtime::ops::is_frozen(g, id).unwrap_or(false) {
            let _ = std::fs::remove_file(&mark);
        }
    })?;
    Ok(())
}

pub(crate) fn resume(g: &Globals, id: &str) -> Result<()> {
    crate::runtime::ops::resume(g, id)?;
    let _ = std::fs::remove_file(g.root.join(id).join(PAUSE_MARK));
    Ok(())
}

/// Host pids of every process in the container.
pub(crate) fn pids(g: &Globals, id: &str) -> Vec<i32> {
    crate::runtime::ops::pids(g, id).unwrap_or_default()
}

/// A signal by name (KILL, SIGKILL, kill) or number.
pub(crate) fn parse_signal(s: &str) -> Result<i32> {
    Ok(crate::signals::parse_signal(s)?)
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
    let target = crate::runtime::exec::Target::open(g, &e.id, false)?;
    let process = exec_process(target.process(), e)?;
    let opts = crate::runtime::exec::ExecOpts {
        detach: e.detach,
        ..Default::default()
    };
    let run = || crate::runtime::exec::exec(&target, &process, &opts);
    if e.stdin && !e.detach {
        return run();
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
    with_stdio([null.as_fd(), out.as_fd(), err.as_fd()], run)
}

/// A small file of /proc or of the runtime's, whole, in fewer reads than `fs::read_to_string`.
pub(crate) fn read_small(path: impl AsRef<Path>) -> std::io::Result<String> {
    crate::sys::read_small(path)
}

/// A healthcheck probe made ready once per init (see [`prepare_probe`]).
pub(crate) use crate::runtime::exec::Prepared as PreparedProbe;

/// A healthcheck probe: `args` in the running container `id` as its own process runs
/// (user, env, cwd), detached, without a terminal; made ready once, started by
/// [`start_probe`] at every probe.
pub(crate) fn prepare_probe(g: &Globals, id: &str, args: &[String]) -> Result<PreparedProbe> {
    crate::runtime::exec::Prepared::new(g, id, args)
}

/// Starts a prepared probe, stdin /dev/null, stdout and stderr to `out`. Returns its host
/// pid: the caller's child (exec forks into the container's pid namespace as a sibling of
/// its helper), so the caller reaps it and may kill it.
pub(crate) fn start_probe(p: &PreparedProbe, null: BorrowedFd, out: BorrowedFd) -> Result<i32> {
    // The child puts them in place; dup2 over one of ours would need ours saved first.
    if null.as_raw_fd() > 2 && out.as_raw_fd() > 2 {
        p.start(Some([null, out, out]))
    } else {
        with_stdio([null, out, out], || p.start(None))
    }
}

/// The container's own process with Docker's exec settings: a new command, variables added
/// (a name given again replaces it), another directory or user, capabilities added.
fn exec_process(mut p: oci_spec::runtime::Process, e: &Exec) -> Result<oci_spec::runtime::Process> {
    use oci_spec::runtime::Capability;
    p.set_args(Some(e.args.clone()));
    p.set_terminal(Some(e.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    for v in &e.env {
        let key = v.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(v.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &e.cwd {
        p.set_cwd(PathBuf::from(cwd));
    }
    if let Some((uid, gid)) = e.user {
        p.user_mut().set_uid(uid);
        p.user_mut().set_gid(gid);
    }
    if !e.additional_gids.is_empty() {
        p.user_mut()
            .set_additional_gids(Some(e.additional_gids.clone()));
    }
    let caps = e
        .caps
        .iter()
        .map(|name| {
            serde_json::from_value::<Capability>(serde_json::Value::String(name.clone()))
                .map_err(|_| anyhow!("unknown capability {name:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    crate::runtime::exec::add_capabilities(&mut p, &caps);
    Ok(p)
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
    let start = crate::state::process_start_time(pid)?;
    crate::state::same_process_running(pid, start).then_some(start)
}

pub(crate) fn boot_id() -> String {
    crate::state::boot_id()
}

/// Whether `id` is this boot's id (without a copy of it: listings ask for every container).
pub(crate) fn is_this_boot(id: &str) -> bool {
    crate::state::boot_id_ref() == id
}

/// Whether a berth monitor (single-threaded to its end) started at `start_time` still runs:
/// one read of /proc, for listings that check every container.
pub(crate) fn monitor_running(pid: i32, start_time: u64) -> bool {
    crate::state::single_threaded_running(pid, start_time)
}

/// RFC 3339 with nanoseconds, UTC.
pub(crate) fn rfc3339(t: std::time::SystemTime) -> String {
    crate::logging::rfc3339(t)
}

/// Where a container's bundle is written for the runtime.
pub(crate) fn bundle_dir(run_dir: &Path) -> PathBuf {
    run_dir.join("bundle")
}

/// One sample of the container's cgroup usage, in the shape of runc's `events --stats`
/// data, with its init's host pid; None once it is not running (or never ran).
pub(crate) fn stats(g: &Globals, id: &str) -> Option<(i32, serde_json::Value)> {
    let (pid, data) = crate::runtime::ops::usage(g, id).ok()?;
    (pid > 0).then_some((pid, data))
}

/// Applies new resource limits to a created, running or paused container (what the runc
/// face's `update` does).
pub(crate) fn update(
    g: &Globals,
    id: &str,
    patch: &oci_spec::runtime::LinuxResources,
) -> Result<()> {
    crate::runtime::update::update(g, id, patch)
}

/// The host pid of the container's init, while it runs.
pub(crate) fn init_pid(g: &Globals, id: &str) -> Option<i32> {
    crate::runtime::ops::state(g, id)
        .ok()
        .map(|s| s.pid)
        .filter(|p| *p > 0)
}
