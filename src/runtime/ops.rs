//! start, state, kill, delete, list: short operations on an existing container, each under
//! the container's flock, each deriving the status afresh.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::error::{Error, Result};
use super::Globals;
use crate::cgroups::manager;
use crate::state::{ContainerDir, ContainerState, Record, StateError, Status};
use crate::sys;

pub(crate) fn open(
    g: &Globals,
    id: &str,
) -> Result<(ContainerDir, nix::fcntl::Flock<fs::File>, Record)> {
    let dir = ContainerDir::new(&g.root, id)?;
    let lock = dir.lock()?;
    let rec = dir.load()?;
    Ok((dir, lock, rec))
}

/// Releases a created container's init through the exec fifo.
pub(crate) fn release(dir: &ContainerDir) -> anyhow::Result<()> {
    let fifo = dir.fifo();
    let fd = match nix::fcntl::open(
        &fifo,
        OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        // No reader: the init that should be blocked on the fifo is gone.
        Err(Errno::ENXIO) | Err(Errno::ENOENT) => bail!(Error::Stopped),
        Err(e) => bail!("open {}: {}", fifo.display(), crate::error::errno_desc(e)),
    };
    nix::unistd::write(&fd, b"0")
        .map_err(|e| anyhow!("write {}: {}", fifo.display(), crate::error::errno_desc(e)))?;
    let _ = fs::remove_file(&fifo);
    Ok(())
}

/// Releases the init (under the caller's `lock`, if any), then, without the lock, so that
/// `kill` and `delete --force` can always go on meanwhile, waits for what start answers
/// for: the container's READY=1 when the caller gave a notify socket (forwarded to it),
/// the startContainer hooks. A failing startContainer hook destroys the container
/// (runtime-spec: stop it and go on with the destroy and poststop steps);
/// `destroy_on_error` (run, as runc's) does so for any failure. A container deleted
/// while start waited is an error ([`Error::NotExist`]). Failing poststart (and poststop)
/// hooks are warnings, added to `warnings`.
pub(crate) fn start_created(
    dir: &ContainerDir,
    rec: &Record,
    lock: Option<nix::fcntl::Flock<fs::File>>,
    destroy_on_error: bool,
    warnings: &mut Vec<String>,
) -> Result<()> {
    crate::logging::debug(&format!("start {}: releasing init {}", rec.id, rec.pid));
    let released = release_created(dir, rec);
    drop(lock);
    let outcome = match released {
        Ok(pending) => pending.wait(dir, rec.pid),
        Err(e) => Err((false, e)),
    };
    // Under the lock, so as not to look while a delete is half done.
    let lock = dir.lock()?;
    let now = dir.load()?;
    if (now.pid, now.start_time) != (rec.pid, rec.start_time) {
        // Deleted, and the id taken again by another container.
        return Err(Error::NotExist);
    }
    match outcome {
        Ok(()) => {
            drop(lock);
            warnings.extend(run_hooks_warn(rec, "poststart", Status::Running));
            Ok(())
        }
        Err((hook_failed, e)) => {
            if hook_failed || destroy_on_error {
                let status = dir.status(rec);
                match destroy(dir, rec, status) {
                    Ok(w) => warnings.extend(w),
                    Err(d) => {
                        let d = anyhow::Error::from(d);
                        return Err(e.context(format!("destroying the container: {d:#}")).into());
                    }
                }
            }
            Err(e.into())
        }
    }
}

/// A released init, and what start still waits on: the start fifo and the init's pidfd
/// (startContainer hooks), the container's notify socket and the init's pidfd (READY=1).
struct Pending {
    hooks: Option<(OwnedFd, OwnedFd)>,
    notify: Option<(UnixDatagram, OwnedFd, String)>,
}

/// Everything start will wait on is opened (the notify socket bound) before the init is
/// released, so that nothing it says is missed.
fn release_created(dir: &ContainerDir, rec: &Record) -> anyhow::Result<Pending> {
    // With startContainer hooks, start answers for them (runtime-spec: a failure is an
    // error of start), so it waits until the init has exec'd or said why it has not.
    let hooks = if dir.start_fifo().exists() {
        let p = dir.start_fifo();
        let fd = nix::fcntl::open(
            &p,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| anyhow!("open {}: {}", p.display(), crate::error::errno_desc(e)))?;
        let pidfd = rec.init_process().ok_or(Error::Stopped)?;
        Some((fd, pidfd))
    } else {
        None
    };
    let notify = match &rec.notify_socket {
        None => None,
        Some(host) => {
            let sock = super::notify::listen(&dir.path)?;
            let pidfd = rec.init_process().ok_or(Error::Stopped)?;
            Some((sock, pidfd, host.clone()))
        }
    };
    release(dir)?;
    Ok(Pending { hooks, notify })
}

impl Pending {
    /// The error says whether a startContainer hook failed.
    fn wait(self, dir: &ContainerDir, pid: i32) -> Result<(), (bool, anyhow::Error)> {
        if let Some((sock, pidfd, host)) = &self.notify {
            super::notify::wait_and_forward(sock, pidfd, pid, host).map_err(|e| (false, e))?;
        }
        if let Some((fd, pidfd)) = self.hooks {
            let r = wait_start_hooks(&fd, &pidfd);
            let _ = fs::remove_file(dir.start_fifo());
            r.map_err(|e| (true, e))?;
        }
        Ok(())
    }
}

/// Waits for the init to exec (its write end of the start fifo closes empty) or to
/// report a startContainer hook failure (it writes the error, then exits).
fn wait_start_hooks(fifo: &OwnedFd, pidfd: &OwnedFd) -> anyhow::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let mut msg = Vec::new();
    let mut init_gone = false;
    loop {
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(fifo, &mut buf) {
                Ok(0) => {
                    // EOF: no writer. Before the init opened it, that means nothing yet,
                    // unless the init is gone.
                    if !msg.is_empty() {
                        bail!("{}", String::from_utf8_lossy(&msg).trim());
                    }
                    break;
                }
                Ok(n) => msg.extend_from_slice(&buf[..n]),
                Err(Errno::EAGAIN) => break,
                Err(Errno::EINTR) => continue,
                Err(e) => bail!("reading the start fifo: {}", crate::error::errno_desc(e)),
            }
        }
        if init_gone {
            if msg.is_empty() {
                bail!("container init exited before running its process");
            }
            bail!("{}", String::from_utf8_lossy(&msg).trim());
        }
        let mut fds = [
            PollFd::new(fifo.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => bail!("poll: {}", crate::error::errno_desc(e)),
        }
        let hup = fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLHUP));
        let readable = fds[0]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN));
        if hup && !readable && msg.is_empty() {
            // The init opened it and closed it at exec without a word: started.
            return Ok(());
        }
        if fds[1]
            .revents()
            .is_some_and(|r| r.contains(PollFlags::POLLIN))
        {
            init_gone = true;
        }
    }
}

/// poststart and poststop failures are warnings: the rest still run (runtime-spec).
fn run_hooks_warn(rec: &Record, kind: &str, status: Status) -> Vec<String> {
    let Some(hooks) = rec.hooks.as_ref().and_then(|h| h.get(kind)).cloned() else {
        return Vec::new();
    };
    let Ok(list) = serde_json::from_value::<Vec<oci_spec::runtime::Hook>>(hooks) else {
        return Vec::new();
    };
    let state = crate::state::oci_state(rec, status).to_string();
    crate::hooks::run_hooks_warn(&list, state.as_bytes(), kind)
}

/// Starts a created container; the warnings are those of failing poststart hooks.
pub(crate) fn start(g: &Globals, id: &str) -> Result<Vec<String>> {
    let (dir, lock, rec) = open(g, id)?;
    let mut warnings = Vec::new();
    let r = match dir.status(&rec) {
        Status::Created => start_created(&dir, &rec, Some(lock), false, &mut warnings),
        Status::Stopped => Err(Error::Stopped),
        Status::Running => Err(Error::AlreadyRunning),
        Status::Paused => Err(Error::StartPaused),
        Status::Creating => Err(Error::StillCreating),
    };
    super::failed_with(r, &warnings)?;
    Ok(warnings)
}

pub(crate) fn state(g: &Globals, id: &str) -> Result<ContainerState> {
    let dir = ContainerDir::new(&g.root, id)?;
    let rec = dir.load()?;
    Ok(with_owner(
        ContainerState::new(&rec, dir.status(&rec)),
        &dir,
    ))
}

/// The status alone ([`state`] without the owner's name, which reads /etc/passwd).
pub(crate) fn status(g: &Globals, id: &str) -> Result<Status> {
    let dir = ContainerDir::new(&g.root, id)?;
    let rec = dir.load()?;
    Ok(dir.status(&rec))
}

/// Whether the container's cgroup is frozen (what makes a running container `paused`),
/// without the look at its processes that [`status`] takes.
pub(crate) fn is_frozen(g: &Globals, id: &str) -> Result<bool> {
    let dir = ContainerDir::new(&g.root, id)?;
    let rec = dir.load()?;
    Ok(crate::cgroups::manager::is_frozen(&rec.cgroup))
}

/// runc's `owner`: the user owning the container's state directory.
fn with_owner(mut st: ContainerState, dir: &ContainerDir) -> ContainerState {
    use std::os::unix::fs::MetadataExt;
    let uid = fs::metadata(&dir.path).map_or(0, |m| m.uid());
    st.owner = Some(crate::state::user_name(uid));
    st
}

pub(crate) fn kill(g: &Globals, id: &str, sig: i32, all: bool) -> Result<()> {
    let (dir, _lock, rec) = open(g, id)?;
    let status = dir.status(&rec);
    // With --all a stopped container is no error, as runc: its init is gone but what it
    // left in the cgroup (without a pid namespace of its own) is still reached.
    if status == Status::Creating || (status == Status::Stopped && !all) {
        return Err(Error::NotRunning);
    }
    if all {
        // Nothing to deliver for signal 0: the status says the processes are there.
        if sig != 0 {
            signal_all(&rec, sig);
        }
        return Ok(());
    }
    signal_init(&rec, sig)
}

fn signal_init(rec: &Record, sig: i32) -> Result<()> {
    // The pid could have been reused since the status was derived.
    let fd = rec.init_process().ok_or(Error::NotRunning)?;
    sys::pidfd_send_signal(fd.as_fd(), sig).map_err(|e| match e {
        Errno::ESRCH => Error::NotRunning,
        e => anyhow!("kill: {}", crate::error::errno_desc(e)).into(),
    })
}

fn signal_all(rec: &Record, sig: i32) {
    manager::kill_all(&rec.cgroup, sig)
}

/// Waits for the init to be gone (it is usually not our child: poll its pidfd).
fn wait_gone(rec: &Record, timeout: Duration) -> bool {
    rec.init_process()
        .is_none_or(|fd| crate::state::has_exited(&fd, timeout))
}

/// Deletes a stopped (or, with `force`, any) container; the warnings are those of failing
/// poststop hooks.
pub(crate) fn delete(g: &Globals, id: &str, force: bool) -> Result<Vec<String>> {
    let dir = ContainerDir::new(&g.root, id)?;
    let lock = match dir.lock() {
        Ok(l) => l,
        Err(StateError::NotExist) if force => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let rec = match dir.load() {
        Ok(r) => r,
        // A create killed right after claiming the id left an empty dir; we hold its lock,
        // so no create is still working on it.
        Err(StateError::NotExist) if force => {
            dir.remove()?;
            return Ok(Vec::new());
        }
        Err(e) => return Err(e.into()),
    };
    let _lock = lock;
    let status = dir.status(&rec);
    match status {
        Status::Stopped | Status::Created => {}
        Status::Running | Status::Paused | Status::Creating if !force => {
            return Err(Error::NotStopped {
                id: id.to_string(),
                status,
            })
        }
        _ => {}
    }
    destroy(&dir, &rec, status)
}

/// Kills whatever is left and removes every trace: processes, cgroups, state dir. The
/// warnings are those of failing poststop hooks.
pub(crate) fn destroy(dir: &ContainerDir, rec: &Record, status: Status) -> Result<Vec<String>> {
    crate::logging::debug(&format!("delete {}: {status:?}, init {}", rec.id, rec.pid));
    if status != Status::Stopped && rec.pid > 0 {
        signal_all(rec, libc::SIGKILL);
        let _ = signal_init(rec, libc::SIGKILL);
        if !wait_gone(rec, Duration::from_secs(10)) {
            return Err(anyhow!(
                "container init (pid {}) did not exit after SIGKILL",
                rec.pid
            )
            .into());
        }
    }
    // Without a pid namespace, processes can outlive the init. Killed, they still take a
    // while to leave the cgroup (one in uninterruptible I/O on a loaded machine, longer
    // than the 30 ms this once allowed), and removing it fails until they have: bounded.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !manager::pids(&rec.cgroup).is_empty() && Instant::now() < deadline {
        signal_all(rec, libc::SIGKILL);
        std::thread::sleep(Duration::from_millis(10));
    }
    crate::timeline::mark("delete:check-empty");
    manager::remove_all(&rec.cgroup).map_err(anyhow::Error::from)?;
    crate::timeline::mark("delete:cgroups");
    dir.remove()?;
    crate::timeline::mark("delete:state");
    Ok(run_hooks_warn(rec, "poststop", Status::Stopped))
}

pub(crate) fn list(g: &Globals) -> Result<Vec<ContainerState>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(&g.root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(anyhow!("{}: {}", g.root.display(), crate::error::errno_text(&e)).into())
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    for id in names {
        let Ok(dir) = ContainerDir::new(&g.root, &id) else {
            continue;
        };
        let Ok(rec) = dir.load() else { continue };
        out.push(with_owner(
            ContainerState::new(&rec, dir.status(&rec)),
            &dir,
        ));
    }
    Ok(out)
}

pub(crate) fn pause(g: &Globals, id: &str) -> Result<()> {
    let (dir, _lock, rec) = open(g, id)?;
    match dir.status(&rec) {
        Status::Running | Status::Created => {
            Ok(manager::set_frozen(&rec.cgroup, true).map_err(anyhow::Error::from)?)
        }
        Status::Paused => Err(Error::AlreadyPaused),
        _ => Err(Error::NotRunning),
    }
}

pub(crate) fn resume(g: &Globals, id: &str) -> Result<()> {
    let (dir, _lock, rec) = open(g, id)?;
    match dir.status(&rec) {
        Status::Paused => Ok(manager::set_frozen(&rec.cgroup, false).map_err(anyhow::Error::from)?),
        _ => Err(Error::NotPaused),
    }
}

/// The host pids of every process in the container.
pub(crate) fn pids(g: &Globals, id: &str) -> Result<Vec<i32>> {
    let dir = ContainerDir::new(&g.root, id)?;
    let rec = dir.load()?;
    // A stopped container has no processes (runc lists none and succeeds).
    if dir.status(&rec) == Status::Stopped {
        return Ok(Vec::new());
    }
    let mut p = manager::pids(&rec.cgroup);
    p.sort_unstable();
    Ok(p)
}

/// The container's init's pid and the figures `stats` shows (runc's stats record, in
/// brief), from one load of its state; NotRunning once its init is gone (a paused or
/// created container still reads).
pub(crate) fn usage(g: &Globals, id: &str) -> Result<(i32, serde_json::Value)> {
    let dir = ContainerDir::new(&g.root, id)?;
    let rec = dir.load_brief()?;
    let alive = rec
        .init_process()
        .is_some_and(|fd| !crate::state::has_exited(&fd, Duration::ZERO));
    if !alive {
        return Err(Error::NotRunning);
    }
    let pid = rec.pid;
    Ok((pid, crate::cgroups::stats::brief(&rec.cgroup())))
}

/// `events`: one stats record with `--stats`, else a stream of stats every `interval` and
/// an "oom" record whenever the kernel OOM-kills in the container, until it stops.
pub(crate) fn events(
    g: &Globals,
    id: &str,
    once: bool,
    interval: Duration,
    emit: &mut dyn FnMut(&serde_json::Value) -> anyhow::Result<()>,
) -> Result<()> {
    let dir = ContainerDir::new(&g.root, id)?;
    let rec = dir.load()?;
    if dir.status(&rec) == Status::Stopped {
        return Err(Error::NotRunning);
    }
    let record = |rec: &Record| serde_json::json!({"type": "stats", "id": id, "data": crate::cgroups::stats::stats(&rec.cgroup)});
    if once {
        return Ok(emit(&record(&rec))?);
    }
    let mut ooms = crate::cgroups::stats::oom_kills(&rec.cgroup);
    let mut next = Instant::now();
    loop {
        if dir.status(&rec) == Status::Stopped {
            return Ok(());
        }
        let now_ooms = crate::cgroups::stats::oom_kills(&rec.cgroup);
        if now_ooms > ooms {
            ooms = now_ooms;
            emit(&serde_json::json!({"type": "oom", "id": id}))?;
        }
        if Instant::now() >= next {
            emit(&record(&rec))?;
            next = Instant::now() + interval;
        }
        std::thread::sleep(interval.min(Duration::from_millis(100)));
    }
}
