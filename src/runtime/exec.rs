//! `exec`: run a new process in a running container. The child joins the container's
//! cgroup, enters all its namespaces through the init's pidfd, and goes through the same
//! final steps as the init (rlimits, fds, capabilities, user, cwd, no_new_privs, exec).

use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use nix::sched::CloneFlags;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};

use super::Globals;
use crate::process::channel::{Channel, ChannelError, Msg};
use crate::process::child::{self, ExecCtx};
use crate::state::{ContainerDir, Status};
use crate::sys;

#[derive(Default)]
pub(crate) struct ExecOpts {
    pub(crate) id: String,
    pub(crate) process_file: Option<PathBuf>,
    pub(crate) args: Vec<String>,
    pub(crate) tty: bool,
    pub(crate) console_socket: Option<PathBuf>,
    pub(crate) detach: bool,
    pub(crate) pid_file: Option<PathBuf>,
    pub(crate) env: Vec<String>,
    pub(crate) cwd: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) additional_gids: Vec<u32>,
    pub(crate) caps: Vec<String>,
    pub(crate) no_new_privs: bool,
    pub(crate) preserve_fds: u32,
    pub(crate) apparmor: Option<String>,
    pub(crate) process_label: Option<String>,
    pub(crate) ignore_paused: bool,
}

/// The process to run: `--process` as given, or the config's process with the flags applied
/// (as runc builds it).
fn build_process(spec: &Spec, o: &ExecOpts) -> Result<Process> {
    if let Some(f) = &o.process_file {
        let data = if f.as_os_str() == "-" {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
                .context("--process -: reading stdin")?;
            v
        } else {
            std::fs::read(f).map_err(|e| {
                anyhow!(
                    "--process {}: {}",
                    f.display(),
                    crate::error::errno_text(&e)
                )
            })?
        };
        let p: Process =
            serde_json::from_slice(&data).map_err(|e| anyhow!("--process {}: {e}", f.display()))?;
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            bail!("--process {}: process.args must not be empty", f.display());
        }
        return Ok(p);
    }
    if o.args.is_empty() {
        bail!("exec: a command to run is required (or --process FILE)");
    }
    let mut p = spec.process().clone().unwrap_or_default();
    p.set_args(Some(o.args.clone()));
    p.set_terminal(Some(o.tty));
    p.set_console_size(None);
    let mut env = p.env().clone().unwrap_or_default();
    for e in &o.env {
        let key = e.split('=').next().unwrap_or("");
        env.retain(|x| x.split('=').next() != Some(key));
        env.push(e.clone());
    }
    p.set_env(Some(env));
    if let Some(cwd) = &o.cwd {
        p.set_cwd(PathBuf::from(cwd));
    }
    if o.apparmor.is_some() {
        p.set_apparmor_profile(o.apparmor.clone());
    }
    if o.process_label.is_some() {
        p.set_selinux_label(o.process_label.clone());
    }
    if let Some(u) = &o.user {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.as_str(), None),
        };
        let mut user = p.user().clone();
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
        p.set_user(user);
    }
    if !o.additional_gids.is_empty() {
        let mut user = p.user().clone();
        user.set_additional_gids(Some(o.additional_gids.clone()));
        p.set_user(user);
    }
    if o.no_new_privs {
        p.set_no_new_privileges(Some(true));
    }
    if !o.caps.is_empty() {
        let mut caps = p.capabilities().clone().unwrap_or_default();
        for name in &o.caps {
            let c: oci_spec::runtime::Capability =
                serde_json::from_value(serde_json::Value::String(name.clone()))
                    .map_err(|_| anyhow!("--cap {name}: unknown capability"))?;
            for set in [
                caps.bounding().clone(),
                caps.effective().clone(),
                caps.permitted().clone(),
            ]
            .iter_mut()
            .enumerate()
            {
                let mut s = set.1.clone().unwrap_or_default();
                s.insert(c);
                match set.0 {
                    0 => caps.set_bounding(Some(s)),
                    1 => caps.set_effective(Some(s)),
                    _ => caps.set_permitted(Some(s)),
                };
            }
        }
        p.set_capabilities(Some(caps));
    }
    Ok(p)
}

pub(crate) fn exec(g: &Globals, o: &ExecOpts) -> Result<i32> {
    let dir = ContainerDir::new(&g.root, &o.id)?;
    let rec = {
        let _lock = dir.lock()?;
        dir.load()?
    };
    match dir.status(&rec) {
        Status::Running => {}
        Status::Stopped => bail!("cannot exec in a stopped container"),
        Status::Paused if o.ignore_paused => {}
        Status::Paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        Status::Created | Status::Creating => {
            bail!("cannot exec in a container that has not been started")
        }
    }
    let data =
        std::fs::read(dir.path.join("config.json")).context("reading the container's config")?;
    let spec: Spec = serde_json::from_slice(&data).context("decoding the container's config")?;
    let process = crate::spec::plan::process(&build_process(&spec, o)?)?;
    let terminal = process.terminal;
    if terminal && o.detach && o.console_socket.is_none() {
        bail!("cannot allocate tty if berth will detach without setting console socket");
    }
    if !terminal && o.console_socket.is_some() {
        bail!("cannot use console socket if berth will not detach or allocate tty");
    }
    let init_pidfd =
        sys::pidfd_open(rec.pid).map_err(|_| anyhow!("cannot exec in a stopped container"))?;
    if crate::state::process_start_time(rec.pid) != Some(rec.start_time) {
        bail!("cannot exec in a stopped container");
    }
    let mut ns = CloneFlags::empty();
    for n in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
    {
        ns |= crate::namespaces::flag(n.typ());
    }
    let (console, console_peer) = if !terminal {
        (None, None)
    } else if let Some(path) = &o.console_socket {
        let s = UnixStream::connect(path).map_err(|e| {
            anyhow!(
                "--console-socket {}: {}",
                path.display(),
                crate::error::errno_text(&e)
            )
        })?;
        (Some(OwnedFd::from(s)), None)
    } else {
        let (a, b) = UnixStream::pair().context("console socketpair")?;
        (Some(OwnedFd::from(a)), Some(b))
    };
    let cgroup_procs: Vec<PathBuf> = rec
        .cgroup
        .paths
        .iter()
        .map(|d| d.join("cgroup.procs"))
        .collect();
    let lfds: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // As for the init: born in the unified cgroup (CLONE_INTO_CGROUP), so that only the v1
    // hierarchies, joined through `tasks`, are left to the child; a pid written to
    // cgroup.procs would wait for the global cgroup lock (≈7 ms measured here).
    let unified_fd = rec.cgroup.unified.as_ref().and_then(|u| {
        nix::fcntl::open(
            u,
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()
    });
    let v1_procs: Vec<PathBuf> = cgroup_procs
        .iter()
        .filter(|p| p.parent() != rec.cgroup.unified.as_deref())
        .cloned()
        .collect();
    let seccomp = super::create::compile_seccomp(&spec)?;
    let mut ctx = ExecCtx {
        seccomp: seccomp.as_ref(),
        process: &process,
        init_pidfd: &init_pidfd,
        ns,
        cgroup_procs: if unified_fd.is_some() {
            &v1_procs
        } else {
            &cgroup_procs
        },
        console: console.as_ref(),
        last_kept_fd: 2 + o.preserve_fds + lfds,
    };
    if !o.detach {
        let _ = nix::sys::prctl::set_child_subreaper(true);
    }
    let sfd = if o.detach {
        None
    } else {
        Some(super::run::block_forwarded()?)
    };
    let (parent_chan, child_chan) = Channel::pair().context("sync socketpair")?;
    let raw_cg = unified_fd.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    let forked = match sys::clone3(0, raw_cg) {
        // No CLONE_INTO_CGROUP here, or a cgroup that takes no direct members (EBUSY: the
        // child goes to a leaf below it, see join_cgroup).
        Err(
            nix::errno::Errno::EINVAL
            | nix::errno::Errno::ENOSYS
            | nix::errno::Errno::E2BIG
            | nix::errno::Errno::EBUSY
            | nix::errno::Errno::EOPNOTSUPP,
        ) if raw_cg.is_some() => {
            ctx.cgroup_procs = &cgroup_procs;
            sys::clone3(0, None)
        }
        other => other,
    };
    let (mut pid, mut pidfd) =
        match forked.map_err(|e| anyhow!("clone: {}", crate::error::errno_desc(e)))? {
            sys::Forked::Child => {
                drop(parent_chan);
                child::run_exec(&ctx, &child_chan)
            }
            sys::Forked::Parent { pid, pidfd } => (pid, pidfd),
        };
    drop(child_chan);
    drop(console);
    let first = pid;
    let fail = |pid: i32, fd: &OwnedFd| {
        let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
    };
    loop {
        match parent_chan.recv() {
            Ok(Msg::Pid(gc)) => {
                let _ = waitpid(Pid::from_raw(first), None);
                pid = gc;
                pidfd = sys::pidfd_open(gc)
                    .map_err(|e| anyhow!("pidfd_open {gc}: {}", crate::error::errno_desc(e)))?;
            }
            Ok(Msg::SeccompFd(n)) => {
                let st = serde_json::json!({"ociVersion": spec.version(), "id": rec.id, "status": "running", "pid": pid, "bundle": rec.bundle});
                if let Err(e) = super::create::hand_listener(&spec, &pidfd, n, &st)
                    .and_then(|_| Ok(parent_chan.send(&Msg::SeccompDone)?))
                {
                    fail(pid, &pidfd);
                    return Err(e);
                }
            }
            Ok(Msg::Ready) => break,
            Ok(Msg::Error { message, .. }) => {
                fail(pid, &pidfd);
                if pid != first {
                    let _ = waitpid(Pid::from_raw(first), None);
                }
                bail!("{message}");
            }
            Ok(m) => {
                fail(pid, &pidfd);
                bail!("unexpected message from exec child: {m:?}");
            }
            Err(ChannelError::Closed) => {
                fail(pid, &pidfd);
                bail!("exec child exited before reporting");
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(p) = &o.pid_file {
        let p = super::create::absolute(p)?;
        crate::state::write_atomic(&p, pid.to_string().as_bytes(), 0o644)
            .map_err(|e| anyhow!("--pid-file: {e}"))?;
    }
    let Some(sfd) = sfd else { return Ok(0) };
    let master = match console_peer {
        Some(peer) => Some(super::tty::recv_master(&peer)?),
        None => None,
    };
    let stdin = std::io::stdin();
    let _raw = master
        .as_ref()
        .filter(|_| nix::unistd::isatty(stdin.as_fd()).unwrap_or(false))
        .map(|m| {
            super::tty::copy_winsize(stdin.as_fd(), m.as_fd());
            super::tty::RawGuard::new(stdin.as_fd())
        });
    super::run::supervise(pid, &pidfd, master.as_ref(), &sfd)
}
