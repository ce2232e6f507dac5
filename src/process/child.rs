//! The container init: a flat, ordered list of setup steps run in the cloned child. It
//! never logs; any failure goes back to the parent as one `Error` message and the child
//! exits.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::stat::Mode;
use oci_spec::runtime::LinuxNamespaceType;

use super::channel::{Channel, Msg};
use crate::cgroups::manager::Hierarchy;
use crate::rootfs::{self, resolve};
use crate::spec::plan::{Plan, ProcessPlan};
use crate::state::{Record, Status};
use crate::sys;

/// Everything the init needs, prepared by the parent before clone (the child is a copy of
/// the parent's memory, so nothing is serialised). The config reaches it only as `plan`.
pub(crate) struct InitCtx<'a> {
    pub(crate) plan: &'a Plan,
    /// The container's state record (pid 0 until the parent sends it with HooksDone).
    pub(crate) record: &'a Record,
    pub(crate) id: &'a str,
    pub(crate) new_ns: CloneFlags,
    pub(crate) joins: &'a [(LinuxNamespaceType, OwnedFd)],
    /// Namespaces the child unshares itself (slow path), and whether it must fork again
    /// to enter a new or joined PID namespace.
    pub(crate) unshare: CloneFlags,
    pub(crate) fork_again: bool,
    pub(crate) fifo: Option<&'a OwnedFd>,
    /// The state dir (O_PATH), when startContainer hooks must report to `start`.
    pub(crate) state_dir: Option<&'a OwnedFd>,
    /// Idmapped mounts made by the parent (see rootfs::idmap).
    pub(crate) premade: &'a [(usize, OwnedFd)],
    pub(crate) console: Option<&'a OwnedFd>,
    pub(crate) cgroups: &'a [(Hierarchy, PathBuf)],
    pub(crate) no_pivot: bool,
    pub(crate) no_new_keyring: bool,
    /// Highest fd number that reaches the container (2 + preserved + LISTEN_FDS).
    pub(crate) last_kept_fd: u32,
    pub(crate) extra_env: Vec<String>,
    /// The parent's flock on the container dir: our copy must go at once, or the lock
    /// would outlive the parent and block start/delete until exec.
    pub(crate) lock_fd: Option<std::os::fd::RawFd>,
    /// How we enter the container's cgroups: our part first of all.
    pub(crate) cgroup: &'a crate::cgroups::Membership,
    pub(crate) seccomp: Option<&'a crate::seccomp::Filter>,
    /// Whether the parent has work to do before we go on (id maps to write; the cgroups
    /// add theirs): then we wait for its Go. Otherwise we only check it is still there.
    pub(crate) wait_go: bool,
}

/// A failed step: where, errno, and the message the user sees.
pub(crate) struct StepError {
    stage: &'static str,
    errno: i32,
    message: String,
}

fn step<T, E: std::fmt::Display>(stage: &'static str, r: Result<T, E>) -> Result<T, StepError> {
    r.map_err(|e| StepError {
        stage,
        errno: 0,
        message: e.to_string(),
    })
}

fn sys_step<T>(stage: &'static str, what: &str, r: nix::Result<T>) -> Result<T, StepError> {
    r.map_err(|e| StepError {
        stage,
        errno: e as i32,
        message: format!("{what}: {}", crate::error::errno_desc(e)),
    })
}

/// Entry point in the cloned child. Never returns.
pub(crate) fn run(ctx: &InitCtx, chan: &Channel) -> ! {
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| init(ctx, chan)));
    let err = match res {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => e,
        Err(_) => StepError {
            stage: "init",
            errno: 0,
            message: "container init panicked".into(),
        },
    };
    let _ = chan.send(&Msg::Error {
        stage: err.stage.into(),
        errno: err.errno,
        message: err.message,
    });
    sys::exit_now(1)
}

pub(crate) enum Never {}

fn expect(chan: &Channel, want: Msg) -> Result<(), StepError> {
    match step("sync", chan.recv())? {
        m if m == want => Ok(()),
        m => Err(StepError {
            stage: "sync",
            errno: 0,
            message: format!("unexpected message {m:?}"),
        }),
    }
}

/// Tells the parent, for its `--debug` log, which step the child is at. The words are
/// runc's names for the same steps, which its users (and its own tests) look for.
fn trace(chan: &Channel, what: &str) {
    if crate::logging::debug_enabled() {
        let _ = chan.send(&Msg::Debug(what.to_string()));
    }
}

fn init(ctx: &InitCtx, chan: &Channel) -> Result<Never, StepError> {
    crate::timeline::mark("init:clone");
    trace(chan, "child process in init(): joining the cgroups");
    step("cgroup", ctx.cgroup.join_self())?;
    crate::timeline::mark("init:join-cgroups");
    if let Some(fd) = ctx.lock_fd {
        let _ = nix::unistd::close(fd);
    }
    let plan = ctx.plan;
    let process = &plan.process;
    // Die with the parent until we are ready; keep our memory out of reach of ptrace and
    // /proc/<pid>/mem until exec (the container's processes could otherwise see berth's).
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::prctl::set_dumpable(false);
    if ctx.wait_go || ctx.cgroup.parent_joins() {
        expect(chan, Msg::Go)?;
    } else if chan.peer_gone() {
        // The parent died before the death signal was armed (getppid() cannot tell in a
        // new PID namespace): nobody will use us.
        sys::exit_now(1);
    }
    crate::timeline::mark("init:wait-go");
    trace(
        chan,
        "=> nsexec container setup: joining and unsharing namespaces",
    );
    for (t, fd) in ctx.joins {
        sys_step(
            "namespaces",
            &format!("setns {}", crate::namespaces::kernel_name(*t)),
            setns(fd.as_fd(), crate::namespaces::flag(*t)),
        )?;
    }
    if ctx.unshare.contains(CloneFlags::CLONE_NEWUSER) {
        sys_step(
            "namespaces",
            "unshare user",
            unshare(CloneFlags::CLONE_NEWUSER),
        )?;
        step("sync", chan.send(&Msg::MapsRequest))?;
        expect(chan, Msg::MapsDone)?;
    }
    let rest = ctx.unshare - CloneFlags::CLONE_NEWUSER;
    if !rest.is_empty() {
        sys_step("namespaces", "unshare", unshare(rest))?;
    }
    if rest.contains(crate::namespaces::flag(LinuxNamespaceType::Time)) {
        // Offsets can only be written before any process enters the namespace: now,
        // before the fork below.
        if !plan.time_offsets.is_empty() {
            step(
                "namespaces",
                std::fs::write("/proc/self/timens_offsets", &plan.time_offsets).map_err(|e| {
                    format!(
                        "linux.timeOffsets: writing /proc/self/timens_offsets: {}",
                        crate::error::errno_text(&e)
                    )
                }),
            )?;
        }
    }
    if ctx.fork_again {
        fork_into_pidns(chan)?;
    }
    sys_step("init", "setsid", nix::unistd::setsid())?;
    trace(chan, "<= nsexec container setup");
    crate::timeline::mark("init:namespaces");
    let in_userns = ctx.new_ns.contains(CloneFlags::CLONE_NEWUSER)
        || ctx.unshare.contains(CloneFlags::CLONE_NEWUSER);
    if in_userns {
        sys_step(
            "user",
            "setresgid(0)",
            nix::unistd::setresgid(0.into(), 0.into(), 0.into()),
        )?;
        sys_step(
            "user",
            "setresuid(0)",
            nix::unistd::setresuid(0.into(), 0.into(), 0.into()),
        )?;
    }
    if !ctx.no_new_keyring {
        let name = CString::new(format!("_ses.{}", ctx.id)).expect("ids have no NUL");
        match sys::join_session_keyring(&name) {
            Ok(()) | Err(Errno::ENOSYS) | Err(Errno::EDQUOT) | Err(Errno::EACCES) => {}
            Err(e) => return sys_step("init", "join session keyring", Err(e)),
        }
    }
    if let Some(adj) = &process.oom_score_adj {
        step(
            "init",
            std::fs::write("/proc/self/oom_score_adj", adj).map_err(|e| {
                format!(
                    "process.oomScoreAdj {adj}: {}",
                    crate::error::errno_text(&e)
                )
            }),
        )?;
    }

    if ctx.new_ns.contains(CloneFlags::CLONE_NEWNET)
        || ctx.unshare.contains(CloneFlags::CLONE_NEWNET)
    {
        sys_step("network", "bring up lo", sys::loopback_up())?;
        crate::timeline::mark("init:loopback");
    }
    // A mount namespace joined by path is the container's own as much as a new one (the
    // parent left out a path naming berth's own).
    let new_mnt = ctx.new_ns.contains(CloneFlags::CLONE_NEWNS)
        || ctx.unshare.contains(CloneFlags::CLONE_NEWNS)
        || ctx
            .joins
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::Mount);
    // Set when the parent ran its hooks: the host pid, for the state our own hooks get.
    let host_pid = if new_mnt {
        prepare_rootfs(ctx, chan, in_userns)?
    } else {
        let pid = run_create_hooks(ctx, chan)?;
        // Without a mount namespace of its own, nothing may be mounted (it would land on
        // the host): the container only gets its rootfs as its root directory.
        sys_step(
            "rootfs",
            &format!("chroot {}", plan.rootfs.display()),
            nix::unistd::chroot(&plan.rootfs),
        )?;
        sys_step("rootfs", "chdir /", nix::unistd::chdir("/"))?;
        pid
    };
    if process.terminal {
        if let Some(sock) = ctx.console {
            setup_console(process, sock, new_mnt)?;
        }
    }
    if let Some(h) = &plan.hostname {
        sys_step("hostname", "sethostname", nix::unistd::sethostname(h))?;
    }
    if let Some(d) = &plan.domainname {
        sys_step("hostname", "setdomainname", sys::setdomainname(d))?;
    }
    if !plan.sysctls.is_empty() {
        write_sysctls(plan)?;
    }
    if new_mnt {
        let root = sys_step(
            "rootfs",
            "open /",
            nix::fcntl::open(
                "/",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ),
        )?;
        step(
            "mounts",
            rootfs::mounts::finish_dev(root.as_fd(), &plan.mounts),
        )?;
        drop(root);
        step(
            "readonlyPaths",
            rootfs::paths::readonly(&plan.readonly_paths),
        )?;
        step("maskedPaths", rootfs::paths::mask(&plan.masked_paths))?;
        if plan.readonly_root {
            step("root.readonly", rootfs::paths::readonly_root())?;
        }
    }
    let start_hooks = Some(plan.hooks.start_container.as_slice())
        .filter(|h| !h.is_empty())
        .zip(host_pid)
        .map(|(h, pid)| (h, hook_state(ctx, pid, Status::Created)));
    crate::timeline::mark("init:masked-readonly-paths");
    let fin = Finalize {
        process,
        in_userns,
        last_kept_fd: ctx.last_kept_fd,
        extra_env: &ctx.extra_env,
        fifo: ctx.fifo,
        state_dir: ctx.state_dir,
        seccomp: ctx.seccomp,
        start_hooks,
    };
    finalize(&fin, chan)
}

/// setns/unshare of a PID (or time) namespace only applies to children: fork once more,
/// as a sibling (CLONE_PARENT) so that the parent waits for the real process; the
/// intermediate reports the pid and exits.
fn fork_into_pidns(chan: &Channel) -> Result<(), StepError> {
    // The new process must not speak on the channel before we have sent its pid, or the
    // parent would take our pid for the container's: it waits for us to exit (EOF).
    let (rd, wr) = sys_step("namespaces", "pipe", nix::unistd::pipe2(OFlag::O_CLOEXEC))?;
    match sys_step(
        "namespaces",
        "clone into pid namespace",
        sys::clone3(libc::CLONE_PARENT as u64, None),
    )? {
        sys::Forked::Parent { pid, .. } => {
            let _ = chan.send(&Msg::Pid(pid));
            drop(wr);
            sys::exit_now(0);
        }
        sys::Forked::Child => {
            let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
            drop(wr);
            while let Err(Errno::EINTR) = nix::unistd::read(&rd, &mut [0u8; 1]) {}
            Ok(())
        }
    }
}

/// Everything `exec` needs in the child.
pub(crate) struct ExecCtx<'a> {
    pub(crate) process: &'a ProcessPlan,
    pub(crate) init_pidfd: &'a OwnedFd,
    pub(crate) ns: CloneFlags,
    /// The container's cgroups, joined before entering its namespaces.
    pub(crate) cgroup: &'a crate::cgroups::Membership,
    pub(crate) console: Option<&'a OwnedFd>,
    pub(crate) last_kept_fd: u32,
    pub(crate) seccomp: Option<&'a crate::seccomp::Filter>,
    /// The process's stdin, stdout and stderr, put in place by the child (none: the
    /// parent's own fds 0-2). Each above 2: the parent's stdio stays as it is.
    pub(crate) stdio: Option<[BorrowedFd<'a>; 3]>,
}

/// Entry point of the `exec` child. Never returns.
pub(crate) fn run_exec(ctx: &ExecCtx, chan: &Channel) -> ! {
    let res = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exec_steps(ctx, chan)));
    let err = match res {
        Ok(Ok(never)) => match never {},
        Ok(Err(e)) => e,
        Err(_) => StepError {
            stage: "exec",
            errno: 0,
            message: "exec child panicked".into(),
        },
    };
    let _ = chan.send(&Msg::Error {
        stage: err.stage.into(),
        errno: err.errno,
        message: err.message,
    });
    sys::exit_now(1)
}

fn exec_steps(ctx: &ExecCtx, chan: &Channel) -> Result<Never, StepError> {
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::prctl::set_dumpable(false);
    trace(
        chan,
        "child process in init(): joining the container's cgroups",
    );
    step("cgroup", ctx.cgroup.join_self())?;
    if let Some(fds) = ctx.stdio {
        // dup2 leaves the copies without close-on-exec, as stdio must be.
        sys_step("stdio", "dup2", nix::unistd::dup2_stdin(fds[0]))?;
        sys_step("stdio", "dup2", nix::unistd::dup2_stdout(fds[1]))?;
        sys_step("stdio", "dup2", nix::unistd::dup2_stderr(fds[2]))?;
    }
    trace(
        chan,
        "=> nsexec container setup: entering the container's namespaces",
    );
    // One setns on the init's pidfd enters every namespace at once, user namespace first.
    sys_step(
        "namespaces",
        "setns into the container",
        setns(ctx.init_pidfd.as_fd(), ctx.ns),
    )?;
    let time = crate::namespaces::flag(LinuxNamespaceType::Time);
    if ctx.ns.contains(CloneFlags::CLONE_NEWPID) || ctx.ns.contains(time) {
        fork_into_pidns(chan)?;
    }
    sys_step("exec", "setsid", nix::unistd::setsid())?;
    trace(chan, "<= nsexec container setup");
    let in_userns = ctx.ns.contains(CloneFlags::CLONE_NEWUSER);
    if ctx.process.terminal {
        if let Some(sock) = ctx.console {
            setup_console(ctx.process, sock, false)?;
        }
    }
    let fin = Finalize {
        process: ctx.process,
        in_userns,
        last_kept_fd: ctx.last_kept_fd,
        extra_env: &[],
        fifo: None,
        state_dir: None,
        seccomp: ctx.seccomp,
        start_hooks: None,
    };
    finalize(&fin, chan)
}

/// What the last steps need: shared by the container init and by `exec`.
pub(crate) struct Finalize<'a> {
    pub(crate) process: &'a ProcessPlan,
    pub(crate) in_userns: bool,
    pub(crate) last_kept_fd: u32,
    pub(crate) extra_env: &'a [String],
    pub(crate) fifo: Option<&'a OwnedFd>,
    pub(crate) state_dir: Option<&'a OwnedFd>,
    pub(crate) seccomp: Option<&'a crate::seccomp::Filter>,
    /// startContainer hooks, and the state they read.
    pub(crate) start_hooks: Option<(&'a [oci_spec::runtime::Hook], Vec<u8>)>,
}

/// rlimits, fds, capabilities, user, cwd, exec lookup, no_new_privs, Ready, (fifo), exec.
pub(crate) fn finalize(f: &Finalize, chan: &Channel) -> Result<Never, StepError> {
    let process = f.process;
    let in_userns = f.in_userns;
    step("rlimits", crate::security::rlimits::apply(&process.rlimits))?;

    // Only stdio, preserved fds and LISTEN_FDS reach the container; every fd berth holds
    // (and any the caller leaked to us) is closed at exec.
    sys_step(
        "fds",
        "close_range",
        sys::close_range(f.last_kept_fd + 1, u32::MAX, sys::CLOSE_RANGE_CLOEXEC),
    )?;
    crate::timeline::mark("init:rlimits-fds");

    step("lsm", crate::security::lsm::apply(&process.lsm))?;

    // process.cwd is entered with berth's privileges, before the user switch and before
    // an early seccomp filter (which may deny getcwd): the process may run in a directory
    // its user cannot reach, as with runc. Only a directory its user alone may enter
    // (root squashed on NFS) waits for the switch.
    let cwd = &process.cwd;
    let chdir_later = match nix::unistd::chdir(cwd) {
        Ok(()) => {
            check_cwd(cwd)?;
            false
        }
        Err(Errno::EACCES) | Err(Errno::EPERM) => true,
        Err(e) => return sys_step("cwd", &format!("chdir {}", cwd.display()), Err(e)),
    };

    let nnp = process.no_new_privileges;
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: load it while we still
    // have every capability. With it, load it last, so that the filter does not have to
    // allow berth's own setup syscalls.
    if !nnp {
        if let Some(filter) = f.seccomp {
            load_seccomp(filter, chan)?;
        }
    }
    let caps = &process.caps;
    step("capabilities", crate::security::caps::drop_bounding(caps))?;
    sys_step(
        "user",
        "PR_SET_KEEPCAPS",
        nix::sys::prctl::set_keepcaps(true),
    )?;
    let (uid, gid) = (process.uid, process.gid);
    // Denied in our own user namespace, or in the one we were run in (`unshare -r`).
    let setgroups_allowed =
        std::fs::read_to_string("/proc/self/setgroups").map_or(!in_userns, |s| s.trim() == "allow");
    if setgroups_allowed {
        sys_step(
            "user",
            "setgroups",
            nix::unistd::setgroups(&process.additional_gids),
        )?;
    } else if !process.additional_gids.is_empty() {
        return Err(StepError {
            stage: "user",
            errno: 0,
            message: "process.user.additionalGids: setgroups is denied in this user namespace"
                .into(),
        });
    }
    fix_stdio_owner(uid);
    sys_step(
        "user",
        &format!("setresgid({gid})"),
        nix::unistd::setresgid(gid.into(), gid.into(), gid.into()),
    )?;
    sys_step(
        "user",
        &format!("setresuid({uid})"),
        nix::unistd::setresuid(uid.into(), uid.into(), uid.into()),
    )?;
    sys_step(
        "user",
        "PR_SET_KEEPCAPS",
        nix::sys::prctl::set_keepcaps(false),
    )?;
    step("capabilities", crate::security::caps::apply(caps))?;
    crate::timeline::mark("init:user-caps");

    nix::sys::stat::umask(Mode::from_bits_truncate(process.umask));
    if chdir_later {
        sys_step(
            "cwd",
            &format!("chdir {}", cwd.display()),
            nix::unistd::chdir(cwd),
        )?;
        check_cwd(cwd)?;
    }

    let mut env: Vec<String> = process.env.clone();
    env.extend(f.extra_env.iter().cloned());
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", home_of(uid)));
    }
    let path = step("exec", super::exec::lookup(&process.arg0, &env))?;
    crate::timeline::mark("init:cwd-env-lookup");
    let envp: Vec<CString> = env
        .iter()
        .map(|a| CString::new(a.as_bytes()).unwrap_or_default())
        .collect();

    if nnp {
        sys_step(
            "noNewPrivileges",
            "prctl",
            nix::sys::prctl::set_no_new_privs(),
        )?;
        if let Some(filter) = f.seccomp {
            load_seccomp(filter, chan)?;
        }
    }

    let _ = nix::sys::prctl::set_pdeathsig(None);
    trace(
        chan,
        if f.fifo.is_some() {
            "init: closing the pipe to signal completion; waiting for start"
        } else {
            "setns_init: about to exec"
        },
    );
    step("sync", chan.send(&Msg::Ready))?;
    crate::timeline::mark("init:ready");
    if let Some(fifo) = f.fifo {
        wait_fifo(fifo)?;
        if let Some((h, state)) = &f.start_hooks {
            // `start` holds the start fifo open for reading until we exec (close-on-exec
            // ends it) or write why we did not. Without a reader (start was killed), the
            // container's stderr is all there is.
            let reply = f.state_dir.and_then(|d| {
                nix::fcntl::openat(
                    d,
                    crate::state::START_FIFO,
                    OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .ok()
            });
            if let Err(e) = crate::hooks::run_hooks(h, state, "startContainer") {
                match reply {
                    Some(r) => {
                        let _ = nix::unistd::write(&r, e.to_string().as_bytes());
                    }
                    None => eprintln!("berth: {e}"),
                }
                sys::exit_now(1);
            }
        }
    }
    sys::reset_signals();
    crate::timeline::mark("init:wait-start");
    let e = nix::unistd::execve(&path, &process.args, &envp).unwrap_err();
    // The parent may be gone by now (create exited): say it on the container's stderr.
    eprintln!(
        "berth: exec {:?}: {}",
        process.arg0,
        crate::error::errno_desc(e)
    );
    sys::exit_now(if e == Errno::ENOENT { 127 } else { 126 })
}

/// Gives the process user its stdio (the console included, as runc does) so that it may
/// reopen them (/dev/stdout, /proc/self/fd/1, `tty`): the group is kept (devpts' tty
/// group). /dev/null and regular files or directories (the caller's, on the host) are
/// left alone, as is whatever the user namespace cannot change (EINVAL: the group is not
/// mapped; EPERM: nor the owner; EROFS).
fn fix_stdio_owner(uid: u32) {
    use nix::sys::stat::{fstat, stat, SFlag};
    let null = stat("/dev/null").ok().map(|s| s.st_rdev);
    let (i, o, e) = (std::io::stdin(), std::io::stdout(), std::io::stderr());
    for fd in [i.as_fd(), o.as_fd(), e.as_fd()] {
        let Ok(st) = fstat(fd) else { continue };
        let kind = SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits());
        if st.st_uid == uid
            || kind == SFlag::S_IFREG
            || kind == SFlag::S_IFDIR
            || (kind == SFlag::S_IFCHR && Some(st.st_rdev) == null)
        {
            continue;
        }
        let _ = nix::unistd::fchown(fd, Some(uid.into()), None);
    }
}

/// The cwd must be a directory inside the container's root (CVE-2024-21626: a path
/// through a leaked fd would leave it outside): getcwd(2) says "(unreachable)" or ENOENT
/// for one that is not below our root.
fn check_cwd(cwd: &Path) -> Result<(), StepError> {
    match nix::unistd::getcwd() {
        Ok(p) if p.is_absolute() && !p.to_string_lossy().starts_with("(unreachable)") => Ok(()),
        Ok(_) | Err(Errno::ENOENT) => Err(StepError {
            stage: "cwd",
            errno: 0,
            message: format!(
                "process.cwd {}: not inside the container root",
                cwd.display()
            ),
        }),
        Err(e) => sys_step(
            "cwd",
            &format!(
                "process.cwd {}: cannot verify it is inside the container root: getcwd",
                cwd.display()
            ),
            Err(e),
        ),
    }
}

/// Loads the filter; a notify listener goes to the parent (which hands it to the
/// listener socket) before any notified syscall can happen.
fn load_seccomp(filter: &crate::seccomp::Filter, chan: &Channel) -> Result<(), StepError> {
    let listener = step(
        "seccomp",
        crate::seccomp::load(filter).map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(&format!(": {s}"));
                src = s.source();
            }
            msg
        }),
    )?;
    if let Some(fd) = listener {
        step("seccomp", chan.send(&Msg::SeccompFd(fd.as_raw_fd())))?;
        expect(chan, Msg::SeccompDone)?;
        drop(fd);
    }
    Ok(())
}

/// Blocks until `start` writes its byte into the exec fifo (opened O_NONBLOCK by the
/// parent so that `start` can tell a live init from a dead one with ENXIO).
fn wait_fifo(fifo: &OwnedFd) -> Result<(), StepError> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return sys_step("start", "poll exec fifo", Err(e)),
        }
        let mut b = [0u8; 1];
        match nix::unistd::read(fifo, &mut b) {
            Ok(1) => return Ok(()),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => continue,
            // A writer came and went without releasing us: not a start.
            _ => sys::exit_now(1),
        }
    }
}

/// HOME from the container's /etc/passwd (we are in its root by now), "/" without one.
fn home_of(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| crate::passwd::by_uid(&text, uid).map(|u| u.home.to_string()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "/".into())
}

/// prestart/createRuntime run in the runtime's namespaces (by the parent),
/// createContainer here, in the container's mount namespace before pivot_root. Returns the
/// container's host pid when the parent was asked (the state of our own hooks needs it).
fn run_create_hooks(ctx: &InitCtx, chan: &Channel) -> Result<Option<i32>, StepError> {
    let hooks = &ctx.plan.hooks;
    if !hooks.any() {
        return Ok(None);
    }
    step("hooks", chan.send(&Msg::Hooks))?;
    let pid = match step("hooks", chan.recv())? {
        Msg::HooksDone { pid } => pid,
        m => {
            return Err(StepError {
                stage: "hooks",
                errno: 0,
                message: format!("unexpected message {m:?}"),
            })
        }
    };
    if !hooks.create_container.is_empty() {
        step(
            "createContainer hooks",
            crate::hooks::run_hooks_in(
                &hooks.create_container,
                &hook_state(ctx, pid, Status::Creating),
                "createContainer",
                &ctx.plan.rootfs,
            ),
        )?;
    }
    Ok(Some(pid))
}

/// The OCI state our hooks read: the parent's record as it was at clone (we are a copy of
/// its memory), with the host pid it sent.
fn hook_state(ctx: &InitCtx, pid: i32, status: Status) -> Vec<u8> {
    let mut rec = ctx.record.clone();
    rec.pid = pid;
    crate::state::oci_state(&rec, status)
        .to_string()
        .into_bytes()
}

fn prepare_rootfs(
    ctx: &InitCtx,
    chan: &Channel,
    in_userns: bool,
) -> Result<Option<i32>, StepError> {
    let plan = ctx.plan;
    let rootfs = plan.rootfs.as_path();
    let prop = plan.rootfs_propagation;
    // Our mounts must not leak back to the host: everything slave (or what the config says)
    // and the rootfs' parent private, since pivot_root refuses shared parents. An
    // unbindable root could not be bound onto itself: it is applied after pivot_root, like
    // shared (runc fails such a config with EINVAL).
    let early = if prop.contains(MsFlags::MS_UNBINDABLE) {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    } else {
        prop
    };
    sys_step(
        "rootfs",
        "set root propagation",
        mount(None::<&str>, "/", None::<&str>, early, None::<&str>),
    )?;
    if prop.contains(MsFlags::MS_SHARED) {
        if let Some(parent) = parent_mount(rootfs) {
            sys_step(
                "rootfs",
                "make rootfs parent private",
                mount(
                    None::<&str>,
                    &parent,
                    None::<&str>,
                    MsFlags::MS_PRIVATE,
                    None::<&str>,
                ),
            )?;
        }
    }
    sys_step(
        "rootfs",
        "bind rootfs",
        mount(
            Some(rootfs),
            rootfs,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        ),
    )?;
    let root = sys_step(
        "rootfs",
        "open rootfs",
        nix::fcntl::open(
            rootfs,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ),
    )?;
    let mctx = rootfs::mounts::MountCtx {
        root: root.as_fd(),
        cgroups: ctx.cgroups,
        new_cgroupns: ctx.new_ns.contains(CloneFlags::CLONE_NEWCGROUP)
            || ctx.unshare.contains(CloneFlags::CLONE_NEWCGROUP),
        premade: ctx.premade,
    };
    step("mounts", rootfs::mounts::mount_all(&mctx, &plan.mounts))?;
    crate::timeline::mark("init:mounts");

    if !plan.dev_bound() {
        // mknod needs the initial user namespace: in any other (ours, joined, or the
        // one podman rootless runs us in) the host's nodes are bind-mounted.
        let bind_devices = in_userns
            || ctx
                .joins
                .iter()
                .any(|(t, _)| *t == LinuxNamespaceType::User)
            || crate::state::in_user_namespace();
        for d in &plan.devices {
            step(
                "devices",
                rootfs::dev::create(root.as_fd(), d, bind_devices),
            )?;
        }
        step("devices", rootfs::dev::symlinks(root.as_fd()))?;
        crate::timeline::mark("init:devices");
    }
    let cwd = &plan.process.cwd;
    sys_step(
        "cwd",
        &format!("creating process.cwd {}", cwd.display()),
        resolve::mkdir_all_in_root(root.as_fd(), cwd, 0o755),
    )?;
    drop(root);
    let host_pid = run_create_hooks(ctx, chan)?;
    if ctx.no_pivot {
        step("rootfs", rootfs::pivot::move_root(rootfs))?;
    } else {
        step("rootfs", rootfs::pivot::pivot(rootfs))?;
        crate::timeline::mark("init:pivot-root");
    }
    if prop.intersects(MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE) {
        sys_step(
            "rootfs",
            "set rootfsPropagation",
            mount(None::<&str>, "/", None::<&str>, prop, None::<&str>),
        )?;
    }
    Ok(host_pid)
}

/// The mount point that contains `path` (longest matching mountinfo entry).
fn parent_mount(path: &Path) -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines()
        .filter_map(|l| l.split(' ').nth(4).map(PathBuf::from))
        .filter(|mp| path.starts_with(mp))
        .max_by_key(|mp| mp.as_os_str().len())
}

/// A pty opened in the container's devpts; the master goes to the console socket (the
/// caller's side of the terminal), the peer becomes our stdio and /dev/console.
fn setup_console(process: &ProcessPlan, sock: &OwnedFd, new_mnt: bool) -> Result<(), StepError> {
    let master = sys_step(
        "console",
        "open /dev/ptmx",
        nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC),
    )?;
    sys_step("console", "unlockpt", nix::pty::unlockpt(&master))?;
    let peer = sys_step(
        "console",
        "open pty peer",
        sys::open_pty_peer(master.as_fd()),
    )?;
    if let Some((rows, cols)) = process.console_size {
        sys_step(
            "console",
            "set console size",
            sys::set_winsize(peer.as_fd(), rows, cols),
        )?;
    }
    let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
    let fds = [master.as_raw_fd()];
    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fds)];
    sys_step(
        "console",
        "send pty master to the console socket",
        nix::sys::socket::sendmsg::<()>(
            sock.as_raw_fd(),
            &iov,
            &cmsg,
            nix::sys::socket::MsgFlags::empty(),
            None,
        ),
    )?;
    drop(master);
    if new_mnt {
        let root = sys_step(
            "console",
            "open /",
            nix::fcntl::open(
                "/",
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            ),
        )?;
        let target = sys_step(
            "console",
            "create /dev/console",
            resolve::fresh_file_in_root(root.as_fd(), Path::new("/dev/console")),
        )?;
        let tree = sys_step(
            "console",
            "clone pty",
            sys::open_tree(
                peer.as_fd(),
                c"",
                sys::OPEN_TREE_CLONE | libc::AT_EMPTY_PATH as u32,
            ),
        )?;
        sys_step(
            "console",
            "mount /dev/console",
            sys::move_mount_fd(tree.as_fd(), target.as_fd()),
        )?;
    }
    sys_step(
        "console",
        "dup pty to stdin",
        nix::unistd::dup2_stdin(&peer),
    )?;
    sys_step(
        "console",
        "dup pty to stdout",
        nix::unistd::dup2_stdout(&peer),
    )?;
    sys_step(
        "console",
        "dup pty to stderr",
        nix::unistd::dup2_stderr(&peer),
    )?;
    let stdin = std::io::stdin();
    sys_step(
        "console",
        "set controlling terminal",
        sys::set_controlling_tty(stdin.as_fd()),
    )
}

/// Writes linux.sysctl through a verified procfs (CVE-2025-52881): see security::procfs.
fn write_sysctls(plan: &Plan) -> Result<(), StepError> {
    use crate::security::procfs;
    let root = step("sysctl", procfs::root())?;
    for s in &plan.sysctls {
        procfs::write(&root, &s.file, s.value.as_bytes()).map_err(|e| StepError {
            stage: "sysctl",
            errno: 0,
            message: format!("linux.sysctl.{}: {e}", s.name),
        })?;
    }
    Ok(())
}
