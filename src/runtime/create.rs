//! `create` (and the first half of `run`): validate, claim the id, write state, make the
//! cgroup, clone the init into its namespaces and serve its requests until it is ready.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::OFlag;
use nix::sched::CloneFlags;
use nix::sys::stat::Mode;
use nix::sys::wait::waitpid;
use nix::unistd::Pid;
use oci_spec::runtime::{LinuxNamespaceType, Spec};

use super::Globals;
use crate::cgroups::manager;
use crate::process::channel::{Channel, ChannelError, Msg};
use crate::process::child::{self, InitCtx};
use crate::state::{self, ContainerDir, Record};
use crate::sys;

pub(crate) struct CreateOpts {
    pub(crate) id: String,
    pub(crate) bundle: PathBuf,
    pub(crate) console_socket: Option<PathBuf>,
    pub(crate) pid_file: Option<PathBuf>,
    pub(crate) no_pivot: bool,
    pub(crate) no_new_keyring: bool,
    pub(crate) preserve_fds: u32,
    /// Foreground run with a terminal and no console socket: berth holds the pty itself.
    pub(crate) internal_console: bool,
}

pub(crate) struct Created {
    pub(crate) dir: ContainerDir,
    pub(crate) rec: Record,
    pub(crate) pid: i32,
    pub(crate) pidfd: OwnedFd,
    pub(crate) pty_master: Option<OwnedFd>,
}

/// Undoes a half-made container on any error: kills the child, removes the cgroups and
/// the state dir. Disarmed once the container is created.
struct Cleanup<'a> {
    dir: &'a ContainerDir,
    cgroups: Option<state::CgroupRecord>,
    child: Option<(i32, OwnedFd)>,
    armed: bool,
    /// A failed create still runs poststop (runtime-spec: "the container is destroyed").
    poststop: Option<Vec<oci_spec::runtime::Hook>>,
    state: String,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some((pid, fd)) = self.child.take() {
            let _ = sys::pidfd_send_signal(fd.as_fd(), libc::SIGKILL);
            let _ = waitpid(Pid::from_raw(pid), None);
        }
        if let Some(hooks) = self.poststop.take() {
            for w in crate::hooks::run_hooks_warn(&hooks, self.state.as_bytes(), "poststop") {
                crate::logging::warn(&w);
            }
        }
        if let Some(cg) = &self.cgroups {
            // Processes outside a new pid namespace (a fork of a failed init) may linger.
            for p in manager::pids(cg) {
                let _ = nix::sys::signal::kill(Pid::from_raw(p), nix::sys::signal::Signal::SIGKILL);
            }
            let _ = manager::remove(cg);
        }
        let _ = self.dir.remove();
    }
}

pub(crate) fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    let cwd = std::env::current_dir().context("getcwd")?;
    Ok(if p.as_os_str().is_empty() {
        cwd
    } else {
        cwd.join(p)
    })
}

/// LISTEN_FDS from systemd socket activation: those fds follow stdio into the container.
fn listen_fds() -> u32 {
    std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn write_id_maps(pid: i32, spec: &Spec) -> Result<()> {
    let linux = spec
        .linux()
        .as_ref()
        .expect("validated with user namespace");
    let fmt = |m: &Option<Vec<oci_spec::runtime::LinuxIdMapping>>| -> Vec<[u32; 3]> {
        m.iter()
            .flatten()
            .map(|m| [m.container_id(), m.host_id(), m.size()])
            .collect()
    };
    let root = nix::unistd::geteuid().is_root();
    for (file, tool, maps, field) in [
        (
            "uid_map",
            "newuidmap",
            fmt(linux.uid_mappings()),
            "linux.uidMappings",
        ),
        (
            "gid_map",
            "newgidmap",
            fmt(linux.gid_mappings()),
            "linux.gidMappings",
        ),
    ] {
        let p = format!("/proc/{pid}/{file}");
        let text: String = maps
            .iter()
            .map(|[c, h, n]| format!("{c} {h} {n}\n"))
            .collect();
        if !root && file == "gid_map" && maps.len() == 1 && maps[0][2] == 1 {
            // An unprivileged single mapping of our own gid is only allowed with
            // setgroups denied (user_namespaces(7)).
            let _ = fs::write(format!("/proc/{pid}/setgroups"), "deny");
        }
        let direct = fs::write(&p, text.as_bytes());
        let Err(e) = direct else { continue };
        // EPERM for a map the kernel will not take from us, EACCES once the helper has
        // written the uid map (the file then belongs to the namespace's root).
        if root || !matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES)) {
            bail!("{field}: writing {p}: {}", crate::error::errno_text(&e));
        }
        // Unprivileged multi-range maps (from /etc/subuid, /etc/subgid) go through the
        // setuid helpers from Debian's uidmap package.
        let mut cmd = std::process::Command::new(tool);
        cmd.arg(pid.to_string());
        for m in &maps {
            cmd.args(m.iter().map(|x| x.to_string()));
        }
        let out = cmd
            .output()
            .map_err(|e| anyhow!("{field}: {tool}: {}", crate::error::errno_text(&e)))?;
        if !out.status.success() {
            bail!(
                "{field}: {tool}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
    Ok(())
}

pub(crate) fn create(g: &Globals, o: &CreateOpts) -> Result<Created> {
    let dir = ContainerDir::new(&g.root, &o.id)?;
    let bundle = absolute(&o.bundle)?;
    let mut spec = crate::spec::load(&bundle)?;
    crate::timeline::mark("load-config");
    // Everything the init will do, checked before any kernel object exists.
    let mut plan = crate::spec::plan::plan(&spec, &bundle)?;
    let rootfs = plan.rootfs.clone();
    let process = spec.process().as_ref().expect("validated");
    let terminal = process.terminal() == Some(true);
    if terminal && o.console_socket.is_none() && !o.internal_console {
        bail!("cannot allocate tty if berth will detach without setting console socket");
    }
    if !terminal && o.console_socket.is_some() {
        bail!("cannot use console socket if berth will not detach or allocate tty");
    }
    for cap in crate::security::caps::unraisable_ambient(process.capabilities().as_ref()) {
        crate::logging::debug(&format!("process.capabilities.ambient: cannot raise {cap}: it is not both permitted and inheritable"));
    }
    let seccomp = compile_seccomp(&spec)?;
    crate::timeline::mark("compile-seccomp");
    let ns = crate::namespaces::plan(&plan)?;
    let layout = manager::Layout::detect();
    let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    if g.systemd_cgroup {
        bail!("--systemd-cgroup: the systemd cgroup driver is not available");
    }
    let rootless = !nix::unistd::geteuid().is_root() || crate::state::in_user_namespace();
    // runc's --rootless: whether cgroup permission errors are ignored (auto: when rootless).
    let ignore_cgroup_eperm = g.rootless.unwrap_or(rootless);
    let mut cg_dirs = manager::plan(&layout, cgroups_path.as_deref(), &o.id)?;
    crate::timeline::mark("plan-cgroups");
    if rootless && !layout.is_v2() && g.rootless != Some(false) {
        // cgroup v1 is never delegated to unprivileged users.
        crate::logging::warn("rootless on cgroup v1: running without resource limits");
        cg_dirs.clear();
    }

    dir.claim()?;
    // Held for the whole create: delete --force of a half-made container waits for us (or
    // for our death) instead of racing us.
    let lock = dir.lock()?;
    crate::timeline::mark("claim-id");
    crate::testpoint::hit("claimed");
    let mut cleanup = Cleanup {
        dir: &dir,
        cgroups: None,
        child: None,
        armed: true,
        poststop: None,
        state: String::new(),
    };
    let notify = super::notify::host_socket();
    let mut extra_env = Vec::new();
    if notify.is_some() {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        let m = super::notify::mount(&dir.path)?;
        plan.add_mount(&m, &bundle)?;
        mounts.push(m);
        spec.set_mounts(Some(mounts));
        extra_env.push(format!("NOTIFY_SOCKET={}", super::notify::CONTAINER_SOCKET));
    }
    let me = std::process::id() as i32;
    let mut rec = Record {
        id: o.id.clone(),
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        creator_pid: me,
        creator_start_time: state::process_start_time(me).unwrap_or(0),
        boot_id: state::boot_id(),
        created: crate::logging::rfc3339(std::time::SystemTime::now()),
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        cgroup: manager::record(&cg_dirs),
        oci_version: spec.version().clone(),
        hooks: spec
            .hooks()
            .as_ref()
            .and_then(|h| serde_json::to_value(h).ok()),
        notify_socket: notify,
        ..Default::default()
    };
    // Written before any kernel object exists, so a crash leaves enough for delete.
    dir.save(&rec)?;
    crate::timeline::mark("write-state");
    cleanup.poststop = spec.hooks().as_ref().and_then(|h| h.poststop().clone());
    cleanup.state = crate::state::oci_state(&rec, crate::state::Status::Stopped).to_string();
    crate::testpoint::hit("state-written");
    cleanup.cgroups = Some(rec.cgroup.clone());
    if let Err(e) = manager::create(&rec.cgroup) {
        // Rootless without a delegated cgroup: run without limits, as runc does.
        if !ignore_cgroup_eperm || !e.is_permission() {
            return Err(e.into());
        }
        crate::logging::warn(&format!(
            "rootless: cgroups are not writable ({e}); running without resource limits"
        ));
        let _ = manager::remove(&rec.cgroup);
        rec.cgroup = Default::default();
        cleanup.cgroups = None;
        dir.save(&rec)?;
    }
    if !rec.cgroup.paths.is_empty() {
        // Limits are in place before the init exists, let alone runs.
        let resources = spec.linux().as_ref().and_then(|l| l.resources().clone());
        let resources = resources.unwrap_or_default();
        let devices = resources.devices().clone().unwrap_or_default();
        manager::apply_devices(&rec.cgroup, &devices, rootless)?;
        if let Err(e) = manager::apply_resources(&rec.cgroup, &resources) {
            // Rootless with a partly delegated cgroup: the same rule as for creating it.
            if !ignore_cgroup_eperm || !e.is_permission() {
                return Err(e.into());
            }
            crate::logging::warn(&format!("rootless: {e}; running without resource limits"));
        }
    }
    crate::testpoint::hit("cgroup-created");
    crate::timeline::mark("create-cgroups");

    let fifo_path = dir.fifo();
    nix::unistd::mkfifo(&fifo_path, Mode::from_bits_truncate(0o622))
        .with_context(|| format!("mkfifo {}", fifo_path.display()))?;
    let fifo = nix::fcntl::open(
        &fifo_path,
        OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {}", fifo_path.display()))?;
    let premade = crate::rootfs::idmap::prepare(&plan).map_err(|e| anyhow!(e))?;
    let has_start_hooks = spec
        .hooks()
        .as_ref()
        .and_then(|h| h.start_container().as_ref())
        .is_some_and(|h| !h.is_empty());
    let state_dir = if has_start_hooks {
        let p = dir.start_fifo();
        nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o600))
            .with_context(|| format!("mkfifo {}", p.display()))?;
        Some(
            nix::fcntl::open(
                &dir.path,
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .with_context(|| format!("open {}", dir.path.display()))?,
        )
    } else {
        None
    };

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

    let joins_user_or_pid = ns
        .join
        .iter()
        .any(|(t, _)| matches!(t, LinuxNamespaceType::User | LinuxNamespaceType::Pid));
    let new_time = ns
        .new
        .contains(crate::namespaces::flag(LinuxNamespaceType::Time));
    let slow = !ns.join.is_empty() || new_time;
    let (mut clone_flags, mut unshare, fork_again) = if slow {
        let fork_again = joins_user_or_pid || ns.new.contains(CloneFlags::CLONE_NEWPID) || new_time;
        (CloneFlags::empty(), ns.new, fork_again)
    } else {
        (ns.new, CloneFlags::empty(), false)
    };
    // A cgroup namespace is rooted where its creator stands: the init unshares it only
    // once it is in the container's cgroups (it joins the v1 ones after the clone).
    if clone_flags.contains(CloneFlags::CLONE_NEWCGROUP) {
        clone_flags.remove(CloneFlags::CLONE_NEWCGROUP);
        unshare.insert(CloneFlags::CLONE_NEWCGROUP);
    }
    let new_user = ns.new.contains(CloneFlags::CLONE_NEWUSER);
    let lfds = listen_fds();
    if lfds > 0 {
        extra_env.push(format!("LISTEN_FDS={lfds}"));
        extra_env.push("LISTEN_PID=1".into());
    }
    let cgroup_tasks = manager::open_v1_tasks(&rec.cgroup)?;
    let task_fds: Vec<&OwnedFd> = cgroup_tasks.iter().map(|(_, fd)| fd).collect();
    let mut ctx = InitCtx {
        plan: &plan,
        id: &o.id,
        new_ns: clone_flags,
        joins: &ns.join,
        unshare,
        fork_again,
        fifo: Some(&fifo),
        state_dir: state_dir.as_ref(),
        premade: &premade,
        console: console.as_ref(),
        cgroups: if rec.cgroup.paths.is_empty() {
            &[]
        } else {
            &cg_dirs
        },
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        last_kept_fd: 2 + o.preserve_fds + lfds,
        extra_env,
        lock_fd: Some(std::os::fd::AsRawFd::as_raw_fd(&*lock)),
        cgroup_tasks: &task_fds,
        seccomp: seccomp.as_ref(),
        // Cloned into the unified cgroup, every v1 one joined by the init itself, no id
        // maps to write: the parent has nothing to do before the init goes on.
        wait_go: slow
            || new_user
            || rec.cgroup.paths.iter().any(|d| {
                rec.cgroup.unified.as_ref() != Some(d) && !cgroup_tasks.iter().any(|(t, _)| t == d)
            }),
    };

    let (parent_chan, child_chan) = Channel::pair().context("sync socketpair")?;
    crate::timeline::mark("prepare-clone");
    // On cgroup v2 (and the unified part of hybrid) the init is born in its cgroup:
    // CLONE_INTO_CGROUP avoids a migration, and with it the global cgroup write lock.
    let cg_fd = rec.cgroup.unified.as_ref().and_then(|u| {
        nix::fcntl::open(
            u,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()
    });
    let raw_cg = cg_fd.as_ref().map(std::os::fd::AsRawFd::as_raw_fd);
    let mut in_unified = raw_cg.is_some();
    // Not cloned into it: the parent moves the init into the unified cgroup before its Go.
    ctx.wait_go |= rec.cgroup.unified.is_some() && !in_unified;
    let forked = match sys::clone3(clone_flags.bits() as u64, raw_cg) {
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS | nix::errno::Errno::E2BIG)
            if raw_cg.is_some() =>
        {
            in_unified = false;
            ctx.wait_go = true;
            sys::clone3(clone_flags.bits() as u64, None)
        }
        other => other,
    }
    .map_err(|e| anyhow!("clone: {}", crate::error::errno_desc(e)))?;
    let (mut pid, mut pidfd) = match forked {
        sys::Forked::Child => {
            drop(parent_chan);
            child::run(&ctx, &child_chan)
        }
        sys::Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    let wait_go = ctx.wait_go;
    drop(ctx);
    drop(child_chan);
    drop(console);
    crate::testpoint::hit("cloned");
    crate::timeline::mark("clone");
    let child_pid = pid;
    cleanup.child = Some((pid, pidfd.try_clone().context("dup pidfd")?));

    let self_joined: Vec<&Path> = cgroup_tasks.iter().map(|(d, _)| d.as_path()).collect();
    manager::join(&rec.cgroup, pid, &self_joined, in_unified)?;
    drop(task_fds);
    drop(cgroup_tasks);
    drop(cg_fd);
    if new_user && !slow {
        write_id_maps(pid, &spec)?;
    }
    if wait_go {
        send(&parent_chan, &Msg::Go, pid)?;
    }
    crate::timeline::mark("join-cgroups");
    // While the init sets itself up. exec builds its process from the config as it was at
    // create, not as it is now.
    state::write_atomic(
        &dir.path.join("config.json"),
        &serde_json::to_vec(&spec).context("encode config")?,
        0o600,
    )?;
    crate::timeline::mark("copy-config");
    loop {
        match parent_chan.recv() {
            Ok(Msg::MapsRequest) => {
                write_id_maps(child_pid, &spec)?;
                send(&parent_chan, &Msg::MapsDone, pid)?;
            }
            Ok(Msg::Pid(gc)) => {
                // The intermediate child exits once it has forked the init (CLONE_PARENT
                // made the init our child too).
                let _ = waitpid(Pid::from_raw(child_pid), None);
                pid = gc;
                pidfd = sys::pidfd_open(gc)
                    .map_err(|e| anyhow!("pidfd_open {gc}: {}", crate::error::errno_desc(e)))?;
                cleanup.child = Some((pid, pidfd.try_clone().context("dup pidfd")?));
            }
            Ok(Msg::SeccompFd(n)) => {
                let mut st = rec.clone();
                st.pid = pid;
                hand_listener(
                    &spec,
                    &pidfd,
                    n,
                    &crate::state::oci_state(&st, crate::state::Status::Creating),
                )?;
                send(&parent_chan, &Msg::SeccompDone, pid)?;
            }
            Ok(Msg::Hooks) => {
                let mut st = rec.clone();
                st.pid = pid;
                let state =
                    crate::state::oci_state(&st, crate::state::Status::Creating).to_string();
                if let Some(h) = spec.hooks() {
                    #[allow(deprecated)]
                    for (kind, list) in [
                        ("prestart", h.prestart()),
                        ("createRuntime", h.create_runtime()),
                    ] {
                        if let Some(list) = list {
                            crate::hooks::run_hooks(list, state.as_bytes(), kind)?;
                        }
                    }
                }
                send(&parent_chan, &Msg::HooksDone(state), pid)?;
            }
            Ok(Msg::Ready) => break,
            Ok(Msg::Error { message, .. }) => bail!("{message}"),
            Ok(m) => bail!("unexpected message from container init: {m:?}"),
            Err(ChannelError::Closed) => {
                bail!("container init exited before reporting: {}", exit_text(pid))
            }
            Err(e) => return Err(e.into()),
        }
    }

    crate::testpoint::hit("ready");
    crate::timeline::mark("wait-init");
    let pty_master = match console_peer {
        Some(peer) => Some(super::tty::recv_master(&peer)?),
        None => None,
    };
    rec.pid = pid;
    rec.start_time = state::process_start_time(pid).unwrap_or(0);
    dir.save(&rec)?;
    if let Some(p) = &o.pid_file {
        let p = absolute(p)?;
        state::write_atomic(&p, pid.to_string().as_bytes(), 0o644)
            .map_err(|e| anyhow!("--pid-file: {e}"))?;
    }
    crate::testpoint::hit("saved");
    crate::timeline::mark("write-state");
    cleanup.armed = false;
    drop(cleanup);
    drop(lock);
    Ok(Created {
        dir,
        rec,
        pid,
        pidfd,
        pty_master,
    })
}

fn send(chan: &Channel, m: &Msg, pid: i32) -> Result<()> {
    match chan.send(m) {
        Ok(()) => Ok(()),
        Err(ChannelError::Closed) => {
            bail!("container init exited before reporting: {}", exit_text(pid))
        }
        Err(e) => Err(e.into()),
    }
}

fn exit_text(pid: i32) -> String {
    use nix::sys::wait::WaitStatus;
    match waitpid(Pid::from_raw(pid), None) {
        Ok(WaitStatus::Exited(_, c)) => format!("exit status {c}"),
        Ok(WaitStatus::Signaled(_, s, _)) => format!("killed by {s}"),
        _ => "unknown status".into(),
    }
}

/// Compiled in the parent, before any process exists, so profile errors come first.
pub(crate) fn compile_seccomp(spec: &Spec) -> Result<Option<crate::seccomp::Filter>> {
    let Some(sc) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let filter = crate::seccomp::compile(sc)?;
    if !filter.skipped.is_empty() {
        crate::logging::debug(&format!(
            "linux.seccomp: skipping unknown syscalls {}",
            filter.skipped.join(", ")
        ));
    }
    if filter.has_notify && sc.listener_path().is_none() {
        bail!("linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY");
    }
    Ok(Some(filter))
}

/// Fetches the init's seccomp listener (fd `n`) and sends it to `listenerPath` with the
/// container process state, as runtime-spec describes.
pub(crate) fn hand_listener(
    spec: &Spec,
    pidfd: &OwnedFd,
    n: i32,
    state: &serde_json::Value,
) -> Result<()> {
    let sc = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .expect("filter came from the config");
    let path = sc.listener_path().as_ref().expect("checked at compile");
    let fd = sys::pidfd_getfd(pidfd.as_fd(), n).map_err(|e| {
        anyhow!(
            "seccomp listener: pidfd_getfd: {}",
            crate::error::errno_desc(e)
        )
    })?;
    let msg = serde_json::json!({
        "ociVersion": spec.version(),
        "fds": ["seccompFd"],
        "pid": state["pid"],
        "metadata": sc.listener_metadata().clone().unwrap_or_default(),
        "state": state,
    });
    let sock = UnixStream::connect(path).map_err(|e| {
        anyhow!(
            "linux.seccomp.listenerPath {}: {}",
            path.display(),
            crate::error::errno_text(&e)
        )
    })?;
    let data = serde_json::to_vec(&msg)?;
    let iov = [std::io::IoSlice::new(&data)];
    let fds = [std::os::fd::AsRawFd::as_raw_fd(&fd)];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    nix::sys::socket::sendmsg::<()>(
        std::os::fd::AsRawFd::as_raw_fd(&sock),
        &iov,
        &cmsg,
        nix::sys::socket::MsgFlags::empty(),
        None,
    )
    .map_err(|e| {
        anyhow!(
            "linux.seccomp.listenerPath {}: {}",
            path.display(),
            crate::error::errno_desc(e)
        )
    })?;
    Ok(())
}
