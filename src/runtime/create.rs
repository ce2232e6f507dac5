//! `create` (and the first half of `run`): validate, claim the id, write state, make the
//! cgroup, clone the init into its namespaces and serve its requests until it is ready.

use std::borrow::Cow;
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

use super::error::Error;
use super::Globals;
use crate::cgroups::{manager, CgroupError, CgroupRecord, Cgroups, Driver, Hierarchy};
use crate::process::channel::Channel;
use crate::process::child::{self, InitCtx};
use crate::process::parent::{Parent, Ready, Steps};
use crate::state::{self, ContainerDir, Record};
use crate::sys;

/// Where the container's configuration comes from.
pub(crate) enum SpecSource {
    /// `config.json` in this bundle directory.
    Bundle(PathBuf),
    /// A spec the caller built. `bundle` anchors a relative `root.path` (and any other
    /// bundle-relative path) and is the state's `bundle`.
    Spec { spec: Box<Spec>, bundle: PathBuf },
}

impl SpecSource {
    /// The validated spec and the bundle as an absolute path. A caller's spec goes
    /// through the same checks as a config.json.
    /// A caller's spec is borrowed: it holds the whole seccomp profile, and copying it
    /// cost a `run` more than checking it.
    fn load(&self) -> Result<(Cow<'_, Spec>, PathBuf)> {
        match self {
            SpecSource::Bundle(b) => {
                let bundle = absolute(b)?;
                Ok((Cow::Owned(crate::spec::load(&bundle)?), bundle))
            }
            SpecSource::Spec { spec, bundle } => {
                let bundle = absolute(bundle)?;
                crate::spec::check(spec)?;
                Ok((Cow::Borrowed(&**spec), bundle))
            }
        }
    }
}

pub(crate) struct CreateOpts {
    pub(crate) id: String,
    pub(crate) source: SpecSource,
    pub(crate) console_socket: Option<PathBuf>,
    pub(crate) pid_file: Option<PathBuf>,
    pub(crate) no_pivot: bool,
    pub(crate) no_new_keyring: bool,
    pub(crate) preserve_fds: u32,
    /// Foreground run with a terminal and no console socket: berth holds the pty itself.
    pub(crate) internal_console: bool,
    /// Socket-activated fds (systemd's LISTEN_FDS): fds 3.. of the caller that follow
    /// stdio into the container, which gets LISTEN_FDS and LISTEN_PID=1.
    pub(crate) listen_fds: u32,
    /// The caller's readiness socket (systemd's NOTIFY_SOCKET: a path, or `@name` for an
    /// abstract one): the container gets a socket of its own, and `start` forwards its
    /// READY=1 here.
    pub(crate) notify_socket: Option<String>,
}

pub(crate) struct Created {
    pub(crate) dir: ContainerDir,
    pub(crate) rec: Record,
    pub(crate) pid: i32,
    pub(crate) pidfd: OwnedFd,
    pub(crate) pty_master: Option<OwnedFd>,
    /// The parent's end of the sync socket: the init holds the other end (close-on-exec)
    /// until it execs the container's process or dies, so POLLHUP here says it has.
    pub(crate) exec_watch: OwnedFd,
    /// What the caller should be told though the container was made (rootless: running
    /// without cgroups or limits).
    pub(crate) warnings: Vec<String>,
}

/// Undoes a half-made container on any error: kills the child, removes the cgroups and
/// the state dir. Disarmed once the container is created.
struct Cleanup<'a> {
    dir: &'a ContainerDir,
    cgroups: Option<CgroupRecord>,
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
            super::log_unreturned(&crate::hooks::run_hooks_warn(
                &hooks,
                self.state.as_bytes(),
                "poststop",
            ));
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

/// Creates the container: on return its init waits for `start`.
pub(crate) fn create(g: &Globals, o: &CreateOpts) -> Result<Created, Error> {
    Ok(create_container(g, o)?)
}

fn create_container(g: &Globals, o: &CreateOpts) -> Result<Created> {
    let dir = ContainerDir::new(&g.root, &o.id)?;
    let mut warnings = Vec::new();
    let (mut spec, bundle) = o.source.load()?;
    crate::timeline::mark("load-config");
    // Everything the init will do, checked before any kernel object exists.
    let mut plan = crate::spec::plan::plan(&spec, &bundle)?;
    let rootfs = plan.rootfs.clone();
    crate::logging::debug(&format!(
        "create {}: bundle {}, rootfs {}",
        o.id,
        bundle.display(),
        rootfs.display()
    ));
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
    crate::logging::debug(&format!(
        "create {}: new namespaces {:?}, joined {:?}",
        o.id,
        ns.new,
        ns.join.iter().map(|(t, _)| t).collect::<Vec<_>>()
    ));
    let own_mnt = ns.new.contains(CloneFlags::CLONE_NEWNS)
        || ns.join.iter().any(|(t, _)| *t == LinuxNamespaceType::Mount);
    if !own_mnt
        && (!plan.mounts.is_empty()
            || !plan.masked_paths.is_empty()
            || !plan.readonly_paths.is_empty()
            || plan.readonly_root)
    {
        // They would be made in berth's own mount namespace, which outlives the container.
        warnings.push(
            "no mount namespace of the container's own: mounts, maskedPaths, readonlyPaths and root.readonly are not applied"
                .to_string(),
        );
    }
    let layout = crate::cgroups::Layout::detect();
    let cgroups_path = spec.linux().as_ref().and_then(|l| l.cgroups_path().clone());
    let rootless = !nix::unistd::geteuid().is_root() || crate::state::in_user_namespace();
    // runc's --rootless: whether cgroup permission errors are ignored (auto: when rootless).
    let ignore_cgroup_eperm = g.rootless.unwrap_or(rootless);
    let driver = if g.systemd_cgroup {
        Driver::Systemd
    } else if rootless && layout.hierarchy() != Some(Hierarchy::V2) && g.rootless != Some(false) {
        // cgroup v1 is never delegated to unprivileged users.
        Driver::None
    } else {
        Driver::Cgroupfs
    };
    let mut cgroups = Cgroups::plan(driver, &layout, cgroups_path.as_deref(), &o.id, rootless)
        .map_err(|e| match e {
            CgroupError::DriverUnavailable(_) => anyhow!("--systemd-cgroup: {e}"),
            e => e.into(),
        })?;
    crate::timeline::mark("plan-cgroups");
    let resources = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().clone())
        .unwrap_or_default();
    if cgroups.driver() == Driver::None && crate::cgroups::asks_for_limits(&resources) {
        warnings.push("rootless on cgroup v1: running without resource limits".to_string());
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
    let notify = o.notify_socket.clone();
    let mut extra_env = Vec::new();
    if notify.is_some() {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        let m = super::notify::mount(&dir.path)?;
        plan.add_mount(&m, &bundle)?;
        mounts.push(m);
        spec.to_mut().set_mounts(Some(mounts));
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
        cgroup: cgroups.record().clone(),
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
    warnings.extend(cgroups.setup(&resources, rootless, ignore_cgroup_eperm)?);
    if *cgroups.record() != rec.cgroup {
        // Rootless without a delegated cgroup: run without limits, as runc does. The
        // systemd driver: the scope's directories are known now.
        rec.cgroup = cgroups.record().clone();
        cleanup.cgroups = (rec.cgroup.systemd.is_some()).then(|| rec.cgroup.clone());
        dir.save(&rec)?;
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
    let in_userns = ns.new.contains(CloneFlags::CLONE_NEWUSER)
        || ns.join.iter().any(|(t, _)| *t == LinuxNamespaceType::User);
    let premade = crate::rootfs::idmap::prepare(&plan, in_userns).map_err(|e| anyhow!(e))?;
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
    let lfds = o.listen_fds;
    if lfds > 0 {
        extra_env.push(format!("LISTEN_FDS={lfds}"));
        extra_env.push("LISTEN_PID=1".into());
    }
    let membership = cgroups.membership()?;
    let ctx = InitCtx {
        plan: &plan,
        record: &rec,
        id: &o.id,
        new_ns: clone_flags,
        joins: &ns.join,
        unshare,
        fork_again,
        fifo: Some(&fifo),
        state_dir: state_dir.as_ref(),
        premade: &premade,
        console: console.as_ref(),
        cgroups: cgroups.dirs(),
        no_pivot: o.no_pivot,
        no_new_keyring: o.no_new_keyring,
        last_kept_fd: 2 + o.preserve_fds + lfds,
        extra_env,
        lock_fd: Some(std::os::fd::AsRawFd::as_raw_fd(&*lock)),
        cgroup: &membership,
        seccomp: seccomp.as_ref(),
        // No id maps to write, no namespace to wait for: unless the cgroups leave the
        // parent something to do, the init goes on by itself.
        wait_go: slow || new_user,
    };

    let (parent_chan, child_chan) = Channel::pair().context("sync socketpair")?;
    crate::timeline::mark("prepare-clone");
    let forked = membership
        .clone(clone_flags.bits() as u64)
        .map_err(|e| anyhow!("clone: {}", crate::error::errno_desc(e)))?;
    let (pid, pidfd) = match forked {
        sys::Forked::Child => {
            drop(parent_chan);
            child::run(&ctx, &child_chan)
        }
        sys::Forked::Parent { pid, pidfd } => (pid, pidfd),
    };
    let wait_go = ctx.wait_go || membership.parent_joins();
    drop(ctx);
    drop(child_chan);
    drop(console);
    crate::testpoint::hit("cloned");
    crate::timeline::mark("clone");
    cleanup.child = Some((pid, pidfd.try_clone().context("dup pidfd")?));
    let steps = InitSteps {
        spec: &spec,
        rec: &rec,
    };
    let mut init = Parent::new(&parent_chan, steps, pid, pidfd);

    membership.join_parent(pid)?;
    if new_user && !slow {
        write_id_maps(pid, &spec)?;
    }
    if wait_go {
        init.go()?;
    }
    crate::timeline::mark("join-cgroups");
    // While the init sets itself up. exec builds its process from the config as it was at
    // create, not as it is now.
    state::write_atomic(
        &dir.path.join("config.json"),
        &crate::sys::json::to_vec(&spec).context("encode config")?,
        0o600,
    )?;
    crate::timeline::mark("copy-config");
    let Ready { pid, pidfd } = init.serve()?;
    cleanup.child = Some((pid, pidfd.try_clone().context("dup pidfd")?));

    crate::testpoint::hit("ready");
    crate::timeline::mark("wait-init");
    let pty_master = match console_peer {
        Some(peer) => Some(super::tty::recv_master(&peer)?),
        None => None,
    };
    crate::logging::debug(&format!("create {}: init {pid} ready", o.id));
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
        exec_watch: parent_chan.into_fd(),
        warnings,
    })
}

/// The container init's requests that only create answers; process::parent serves the
/// rest of the protocol.
struct InitSteps<'a> {
    spec: &'a Spec,
    rec: &'a Record,
}

impl InitSteps<'_> {
    /// The state hooks and the seccomp listener get while the init sets up.
    fn state(&self, pid: i32) -> serde_json::Value {
        let mut st = self.rec.clone();
        st.pid = pid;
        state::oci_state(&st, state::Status::Creating)
    }
}

impl Steps for InitSteps<'_> {
    const WHO: &'static str = "container init";
    type Error = anyhow::Error;

    fn id_maps(&mut self, pid: i32) -> Result<()> {
        write_id_maps(pid, self.spec)
    }

    fn seccomp_listener(&mut self, pid: i32, pidfd: &OwnedFd, fd: i32) -> Result<()> {
        hand_listener(self.spec, pidfd, fd, &self.state(pid))
    }

    fn hooks(&mut self, pid: i32) -> Result<()> {
        let Some(h) = self.spec.hooks() else {
            return Ok(());
        };
        let state = self.state(pid).to_string();
        #[allow(deprecated)]
        for (kind, list) in [
            ("prestart", h.prestart()),
            ("createRuntime", h.create_runtime()),
        ] {
            if let Some(list) = list {
                crate::hooks::run_hooks_in(list, state.as_bytes(), kind, &self.rec.bundle)?;
            }
        }
        Ok(())
    }
}

/// Compiled seccomp filters are kept in `dir` from now on in this process (see
/// seccomp::cache): the people face's runroot.
pub(crate) fn keep_compiled_filters(dir: PathBuf) {
    crate::seccomp::cache::set_dir(dir);
}

/// Compiled in the parent, before any process exists, so profile errors come first.
pub(crate) fn compile_seccomp(spec: &Spec) -> Result<Option<crate::seccomp::Filter>> {
    let Some(sc) = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref()) else {
        return Ok(None);
    };
    let filter = crate::seccomp::cache::compile(sc)?;
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
            "linux.seccomp.listenerPath {}: failed to connect with seccomp agent: {}",
            path.display(),
            crate::error::errno_text(&e)
        )
    })?;
    let data = crate::sys::json::to_vec(&msg)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A caller's spec is checked as a config.json is, and its relative bundle (which
    /// anchors the rootfs) is made absolute.
    #[test]
    fn a_callers_spec_is_validated_and_anchored_as_a_bundle() {
        let mut spec = Spec::default();
        let src = SpecSource::Spec {
            spec: Box::new(spec.clone()),
            bundle: PathBuf::from("some/bundle"),
        };
        let (_, bundle) = src.load().unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(bundle, cwd.join("some/bundle"));
        let dir = std::env::temp_dir().join(format!("berth-specsrc-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("rootfs")).unwrap();
        let src = SpecSource::Spec {
            spec: Box::new(spec.clone()),
            bundle: dir.clone(),
        };
        let (loaded, bundle) = src.load().unwrap();
        assert_eq!(
            crate::spec::rootfs_path(&loaded, &bundle).unwrap(),
            dir.join("rootfs")
        );

        let mut p = spec.process().clone().unwrap();
        p.set_args(Some(vec![]));
        spec.set_process(Some(p));
        std::fs::write(
            dir.join("config.json"),
            crate::sys::json::to_vec(&spec).unwrap(),
        )
        .unwrap();
        let from_file = SpecSource::Bundle(dir.clone()).load().err().unwrap();
        let in_memory = SpecSource::Spec {
            spec: Box::new(spec),
            bundle: dir.clone(),
        }
        .load()
        .err()
        .unwrap();
        assert_eq!(format!("{in_memory:#}"), format!("{from_file:#}"));
        assert!(
            format!("{in_memory:#}").contains("process.args"),
            "{in_memory:#}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
