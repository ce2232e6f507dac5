//! `exec`: run a new process in a running container. The child joins the container's
//! cgroup, enters all its namespaces through the init's pidfd, and goes through the same
//! final steps as the init (rlimits, fds, capabilities, user, cwd, no_new_privs, exec).

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};

use super::Globals;
use crate::process::channel::Channel;
use crate::process::child::{self, ExecCtx};
use crate::process::parent::{Parent, Ready, Steps};
use crate::state::{ContainerDir, Record, Status};
use crate::sys;

/// Adds `caps` to the process's bounding, effective and permitted sets, as runc's
/// `exec --cap` (not inheritable, so no ambient).
pub(crate) fn add_capabilities(p: &mut Process, caps: &[oci_spec::runtime::Capability]) {
    if caps.is_empty() {
        return;
    }
    let mut sets = p.capabilities().clone().unwrap_or_default();
    let add = |set: &Option<oci_spec::runtime::Capabilities>| {
        let mut s = set.clone().unwrap_or_default();
        s.extend(caps.iter().copied());
        Some(s)
    };
    sets.set_bounding(add(sets.bounding()));
    sets.set_effective(add(sets.effective()));
    sets.set_permitted(add(sets.permitted()));
    p.set_capabilities(Some(sets));
}

/// What `exec` needs besides the process.
#[derive(Default, Clone, Debug)]
pub(crate) struct ExecOpts {
    /// Return once the process runs, instead of waiting for it and passing on its status.
    pub(crate) detach: bool,
    /// Where the pty master goes when the process has a terminal.
    pub(crate) console_socket: Option<PathBuf>,
    /// Written atomically with the process's host pid.
    pub(crate) pid_file: Option<PathBuf>,
    /// Fds 3..3+N (after stdio, before LISTEN_FDS) that reach the process.
    pub(crate) preserve_fds: u32,
    /// Sub-cgroups of the container's to run in: (v1 controllers, none for all; path).
    pub(crate) sub_cgroups: Vec<(Vec<String>, PathBuf)>,
}

/// A container that takes an exec: started and alive (paused too, when asked), with its
/// config as it was at create.
pub(crate) struct Target {
    rec: Record,
    spec: Spec,
}

impl Target {
    pub(crate) fn open(g: &Globals, id: &str, ignore_paused: bool) -> Result<Target> {
        let dir = ContainerDir::new(&g.root, id)?;
        let rec = {
            let _lock = dir.lock()?;
            dir.load()?
        };
        match dir.status(&rec) {
            // As runc: a created container's namespaces and root are set up, its init
            // waiting for `start`; the process runs beside it (containerd's shim allows
            // exec in that state).
            Status::Running | Status::Created => {}
            Status::Stopped => bail!("cannot exec in a stopped container"),
            Status::Paused if ignore_paused => {}
            Status::Paused => {
                bail!("cannot exec in a paused container (use --ignore-paused to override)")
            }
            Status::Creating => bail!("cannot exec in a container that is being created"),
        }
        let data = std::fs::read(dir.path.join("config.json"))
            .context("reading the container's config")?;
        let spec: Spec =
            serde_json::from_slice(&data).context("decoding the container's config")?;
        Ok(Target { rec, spec })
    }

    /// The container's own process (config.json's, as recorded at create): what runc's
    /// exec flags start from.
    pub(crate) fn process(&self) -> Process {
        self.spec.process().clone().unwrap_or_default()
    }
}

/// Runs `process` in the container. Detached: returns 0 once it runs; else waits for it
/// (forwarding signals and the terminal) and returns its exit code, 128+signal if killed.
pub(crate) fn exec(t: &Target, process: &Process, o: &ExecOpts) -> Result<i32> {
    let (rec, spec) = (&t.rec, &t.spec);
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        bail!("process.args must not be empty");
    }
    let process = crate::spec::plan::process(process)?;
    let terminal = process.terminal;
    if terminal && o.detach && o.console_socket.is_none() {
        bail!("cannot allocate tty if berth will detach without setting console socket");
    }
    if !terminal && o.console_socket.is_some() {
        bail!("cannot use console socket if berth will not detach or allocate tty");
    }
    let init_pidfd = rec
        .init_process()
        .ok_or_else(|| anyhow!("cannot exec in a stopped container"))?;
    let ns = namespaces(spec);
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
    let lfds: u32 = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cgroup = crate::cgroups::Membership::for_exec_in(&rec.cgroup, &o.sub_cgroups)?;
    let seccomp = super::create::compile_seccomp(spec)?;
    let ctx = ExecCtx {
        seccomp: seccomp.as_ref(),
        process: &process,
        init_pidfd: &init_pidfd,
        ns,
        cgroup: &cgroup,
        console: console.as_ref(),
        last_kept_fd: 2 + o.preserve_fds + lfds,
        stdio: None,
    };
    if !o.detach {
        let _ = nix::sys::prctl::set_child_subreaper(true);
    }
    let sfd = if o.detach {
        None
    } else {
        Some(super::run::block_forwarded()?)
    };
    let child = clone_child(&ctx)?;
    // Ours closed: the child holds the console socket now.
    drop(console);
    let Ready { pid, pidfd } = child.serve(t)?;
    crate::logging::debug(&format!("exec {}: process {pid} ready", rec.id));
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
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    let io = super::run::Stdio::new(stdin.as_fd(), stdout.as_fd());
    let _raw = io.attach(master.as_ref());
    super::run::supervise(pid, &pidfd, master.as_ref(), &sfd, io)
}

/// The exec child, cloned: the parent's end of its channel.
struct Child {
    chan: Channel,
    pid: i32,
    pidfd: OwnedFd,
}

fn clone_child(ctx: &ExecCtx) -> Result<Child> {
    let (parent_chan, child_chan) = Channel::pair().context("sync socketpair")?;
    let forked = ctx.cgroup.clone(0);
    match forked.map_err(|e| anyhow!("clone: {}", crate::error::errno_desc(e)))? {
        sys::Forked::Child => {
            drop(parent_chan);
            child::run_exec(ctx, &child_chan)
        }
        sys::Forked::Parent { pid, pidfd } => Ok(Child {
            chan: parent_chan,
            pid,
            pidfd,
        }),
    }
}

impl Child {
    /// Follows the child until its process runs (or fails).
    fn serve(self, t: &Target) -> Result<Ready> {
        Parent::new(&self.chan, ExecSteps { t }, self.pid, self.pidfd).serve()
    }
}

/// A process made ready once and started again and again in a running container, detached,
/// without a terminal (the monitor's healthcheck probes): the config read, the process
/// planned, the seccomp filter compiled, the init's pidfd and the cgroups opened once; each
/// start is the clone and the child's own steps.
pub(crate) struct Prepared {
    t: Target,
    process: crate::spec::plan::ProcessPlan,
    seccomp: Option<crate::seccomp::Filter>,
    ns: CloneFlags,
    init_pidfd: OwnedFd,
    cgroup: crate::cgroups::Membership,
    /// Our own pid namespace, when we may enter the container's for our next child and
    /// come back (checked once here): each start is then one clone, straight into the
    /// container's pid namespace, instead of a clone that clones again and exits.
    own_pidns: Option<OwnedFd>,
    /// The cgroup files asked at every probe (paused? what is left of the last probe?).
    watch: crate::cgroups::manager::Watch,
    /// The init's pid namespace, when the container has no cgroups of its own (rootless,
    /// where none could be made) to list its processes.
    pid_ns: Option<(u64, u64)>,
}

impl Prepared {
    /// `args` in the container's process (its env, user, cwd, capabilities, limits).
    pub(crate) fn new(g: &Globals, id: &str, args: &[String]) -> Result<Prepared> {
        let t = Target::open(g, id, false)?;
        let mut p = t.process();
        p.set_args(Some(args.to_vec()));
        p.set_terminal(Some(false));
        p.set_console_size(None);
        if args.is_empty() {
            bail!("process.args must not be empty");
        }
        let process = crate::spec::plan::process(&p)?;
        let init_pidfd = t
            .rec
            .init_process()
            .ok_or_else(|| anyhow!("cannot exec in a stopped container"))?;
        let cgroup = crate::cgroups::Membership::for_repeated_exec(&t.rec.cgroup);
        let seccomp = super::create::compile_seccomp(&t.spec)?;
        let ns = namespaces(&t.spec);
        let own_pidns = if ns.contains(CloneFlags::CLONE_NEWPID)
            && !ns.contains(crate::namespaces::flag(LinuxNamespaceType::Time))
        {
            own_pidns_if_returnable(&init_pidfd)
        } else {
            None
        };
        // An init we may not inspect lists nothing: its probes' leftovers end with it.
        let pid_ns = if t.rec.cgroup.is_empty() {
            pid_ns_of(t.rec.pid).ok()
        } else {
            None
        };
        Ok(Prepared {
            watch: crate::cgroups::manager::Watch::new(&t.rec.cgroup),
            pid_ns,
            t,
            process,
            seccomp,
            ns,
            init_pidfd,
            cgroup,
            own_pidns,
        })
    }

    /// The host pid of the init this was prepared for.
    pub(crate) fn init_pid(&self) -> i32 {
        self.t.rec.pid
    }

    /// Starts the process with `stdio` (each fd above 2; put in place by the child, so
    /// ours stay as they are) or else our own fds 0-2 as its fds 0-2: its host pid once it
    /// runs (our child: we are a subreaper, or the child of the exec's own fork).
    pub(crate) fn start(&self, stdio: Option<[BorrowedFd<'_>; 3]>) -> Result<i32> {
        let mut ctx = ExecCtx {
            stdio,
            seccomp: self.seccomp.as_ref(),
            process: &self.process,
            init_pidfd: &self.init_pidfd,
            ns: self.ns,
            cgroup: &self.cgroup,
            console: None,
            last_kept_fd: 2,
        };
        let child = match &self.own_pidns {
            Some(own) => {
                setns(self.init_pidfd.as_fd(), CloneFlags::CLONE_NEWPID)
                    .map_err(|e| anyhow!("entering the container's pid namespace: {}", e.desc()))?;
                ctx.ns.remove(CloneFlags::CLONE_NEWPID);
                let child = clone_child(&ctx);
                // Every later child of ours (a restart's runtime, the next probe's) must be
                // born in our own pid namespace again; that this works was checked at new().
                setns(own.as_fd(), CloneFlags::CLONE_NEWPID)
                    .map_err(|e| anyhow!("returning to our own pid namespace: {}", e.desc()))?;
                child?
            }
            None => clone_child(&ctx)?,
        };
        Ok(child.serve(&self.t)?.pid)
    }

    /// Whether the container is paused (its cgroup frozen).
    pub(crate) fn paused(&self) -> bool {
        self.watch.is_frozen()
    }

    /// Host pids of every process in the container's cgroup or, without one, in its pid
    /// namespace.
    pub(crate) fn pids(&self) -> Vec<i32> {
        match self.pid_ns {
            None => self.watch.pids(),
            Some(ns) => pids_in_pid_ns(ns),
        }
    }
}

/// Which pid namespace `pid` is in (its nsfs device and inode).
fn pid_ns_of(pid: i32) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(format!("/proc/{pid}/ns/pid"))?;
    Ok((m.dev(), m.ino()))
}

/// Host pids of the processes in the pid namespace `ns`: every process is looked at (those
/// we may not inspect are not ours to count).
fn pids_in_pid_ns(ns: (u64, u64)) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| pid_ns_of(p).is_ok_and(|n| n == ns))
        .collect()
}

/// Our own pid namespace, if we can make the init's our children's and then ours again:
/// tried once each way here (both need CAP_SYS_ADMIN over the namespace, which a rootless
/// caller may lack for its own).
fn own_pidns_if_returnable(init_pidfd: &OwnedFd) -> Option<OwnedFd> {
    let own: OwnedFd = std::fs::File::open("/proc/self/ns/pid").ok()?.into();
    setns(own.as_fd(), CloneFlags::CLONE_NEWPID).ok()?;
    if setns(init_pidfd.as_fd(), CloneFlags::CLONE_NEWPID).is_err() {
        return None;
    }
    match setns(own.as_fd(), CloneFlags::CLONE_NEWPID) {
        Ok(()) => Some(own),
        Err(_) => None,
    }
}

fn namespaces(spec: &Spec) -> CloneFlags {
    let mut ns = CloneFlags::empty();
    for n in spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default()
    {
        ns |= crate::namespaces::flag(n.typ());
    }
    ns
}

/// What only exec answers: its seccomp listener goes out with the running container's state.
struct ExecSteps<'a> {
    t: &'a Target,
}

impl Steps for ExecSteps<'_> {
    const WHO: &'static str = "exec child";
    type Error = anyhow::Error;

    fn seccomp_listener(&mut self, pid: i32, pidfd: &OwnedFd, fd: i32) -> Result<()> {
        let (spec, rec) = (&self.t.spec, &self.t.rec);
        let st = serde_json::json!({"ociVersion": spec.version(), "id": rec.id, "status": "running", "pid": pid, "bundle": rec.bundle});
        super::create::hand_listener(spec, pidfd, fd, &st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_namespace_lists_ourselves_and_not_what_is_outside_it() {
        let me = std::process::id() as i32;
        let ours = pid_ns_of(me).unwrap();
        assert!(pids_in_pid_ns(ours).contains(&me));
        // A namespace no process is in lists nothing.
        assert!(pids_in_pid_ns((ours.0, u64::MAX)).is_empty());
    }
}
