//! The per-container monitor (DESIGN §6): the process that creates and starts the
//! container in-process, stays its parent, holds its stdio (pipes or the pty), writes the
//! log, serves the control socket (attach, stop, wait), runs the stop sequence, and when
//! the container ends records how (exit.json, then state.json), cleans up (and removes it
//! with --rm) before it exits itself.
//!
//! Detached (`run -d`, `start`): `berth monitor ID` is a re-exec of berth; it forks once
//! more and the child calls setsid, so that it belongs to no terminal and is nobody's
//! child but init's (or a subreaper's); its stdio is /dev/null; the starting command learns
//! success or the error over a pipe (the handshake). Foreground `run` IS the monitor: it
//! also copies the container's output to its own stdout/stderr and its stdin in, and exits
//! with the container's status.

pub(crate) mod client;
pub(crate) mod health;
pub(crate) mod init;
pub(crate) mod proto;
pub(crate) mod restart;
pub(crate) mod rootfs;

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::Stdio as ProcStdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::front::containers::runtime::{self as rt, Stdio};
use crate::front::containers::{
    exit_error, now, Container, ExitRecord, MonitorRecord, State, Status, Store,
};
use crate::front::logs::writer::LogWriter;
use crate::front::logs::{Driver, LogOptions, Stream};
use proto::{Handshake, Request};

/// The environment variable naming the handshake fd of a detached monitor.
const SYNC_ENV: &str = "_BERTH_MONITOR_SYNC";
/// Set when the monitor must wait for an attach before it starts the container.
const WAIT_ATTACH_ENV: &str = "_BERTH_MONITOR_WAIT_ATTACH";
/// How long a monitor waits for the attach it was promised.
const ATTACH_WAIT: Duration = Duration::from_secs(30);
/// An attached client that does not read is dropped beyond this backlog.
const CLIENT_BACKLOG: usize = 4 << 20;

/// What the foreground monitor copies between the container and its own stdio.
#[derive(Clone, Copy, Default)]
pub(crate) struct Foreground {
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    pub(crate) sig_proxy: bool,
    pub(crate) sdnotify: crate::front::systemd::notify::Mode,
}

/// `run` in the foreground: this process is the monitor; returns the container's status.
pub(crate) fn run_foreground(store: &Store, id: &str, fg: Foreground) -> Result<i32> {
    Monitor::start(store, id, Some(fg), None, false)?.run()
}

/// `berth monitor ID`: the detached monitor. The first process forks the real monitor and
/// exits; the real one reports over the handshake pipe.
pub(crate) fn main(store: &Store, id: &str) -> Result<i32> {
    let sync = proto::inherited_fd(SYNC_ENV);
    let wait_attach = std::env::var_os(WAIT_ATTACH_ENV).is_some();
    std::env::remove_var(WAIT_ATTACH_ENV);
    let Some(sync) = sync else {
        bail!("the monitor is started by berth itself (run -d, start)");
    };
    // Freshly exec'd and single-threaded: a plain fork is safe here.
    match crate::sys::clone3(0, None).map_err(|e| anyhow!("fork: {}", e.desc()))? {
        crate::sys::Forked::Parent { .. } => return Ok(0),
        crate::sys::Forked::Child => {}
    }
    let _ = nix::unistd::setsid();
    let m = match Monitor::start(store, id, None, Some(&sync), wait_attach) {
        Ok(m) => m,
        Err(e) => {
            let code = e
                .chain()
                .find_map(|c| c.downcast_ref::<crate::front::Exit>())
                .map_or(125, |x| x.code);
            proto::send_handshake(
                &sync,
                &Handshake {
                    phase: "failed".into(),
                    code,
                    msg: format!("{e:#}"),
                    warnings: Vec::new(),
                },
            );
            crate::sys::exit_now(code);
        }
    };
    drop(sync);
    let code = m.run().unwrap_or(125);
    // The monitor's own status is nobody's concern; exit without Rust's teardown.
    crate::sys::exit_now(code.clamp(0, 255));
}

/// Starts a detached monitor for the created (or exited) container `id` and waits for
/// its handshake. With `attach`, the container starts only once `attach` has connected.
pub(crate) fn spawn(
    store: &Store,
    id: &str,
    log_level: &str,
    attach: Option<&mut dyn FnMut() -> Result<()>>,
) -> Result<()> {
    // Rootless, an image container's monitor mounts layers owned through berth's user
    // namespace: it is executed in it.
    crate::front::userns::enter_for_container(store, id)?;
    let on_shared = store
        .load(id)
        .is_ok_and(|c| crate::front::network::on_shared_netns(&c.rec));
    let _settle = crate::front::network::settle_on_drop(store, on_shared);
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    // The write end goes to the monitor by number: not close-on-exec, for this one spawn
    // (the command is single-threaded, so no other exec can inherit it).
    nix::fcntl::fcntl(
        &w,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
    )?;
    // From a copy that cannot be written (the monitor creates the container), made here
    // when this command did not run from one: the monitor then need not re-execute.
    let sealed = crate::exeseal::sealed_exe();
    let exe = match &sealed {
        Some(fd) => format!("/proc/self/fd/{}", fd.as_raw_fd()),
        None => "/proc/self/exe".to_string(),
    };
    let mut cmd = std::process::Command::new(exe);
    std::os::unix::process::CommandExt::arg0(&mut cmd, "berth");
    cmd.arg("--root")
        .arg(&store.root)
        .arg("--runroot")
        .arg(&store.runroot)
        .arg("--log-level")
        .arg(log_level)
        .arg("monitor")
        .arg(id)
        .env(SYNC_ENV, w.as_raw_fd().to_string())
        .stdin(ProcStdio::null())
        .stdout(ProcStdio::null())
        .stderr(ProcStdio::null());
    if attach.is_some() {
        cmd.env(WAIT_ATTACH_ENV, "1");
    }
    let spawned = cmd.spawn();
    drop(sealed);
    drop(w);
    let mut child = spawned.context("starting the container's monitor")?;
    let _ = child.wait();
    crate::testpoint::hit("people:monitor-forked");
    let mut reader = io::BufReader::new(std::fs::File::from(r));
    let mut attach = attach;
    loop {
        let mut line = String::new();
        io::BufRead::read_line(&mut reader, &mut line)
            .context("reading the monitor's handshake")?;
        if line.is_empty() {
            bail!("the container's monitor exited before reporting");
        }
        let h: Handshake =
            serde_json::from_str(&line).map_err(|e| anyhow!("the monitor's handshake: {e}"))?;
        match h.phase.as_str() {
            "created" => {
                if let Some(a) = attach.as_mut() {
                    a()?;
                }
            }
            "started" => {
                for w in &h.warnings {
                    crate::logging::warn(w);
                }
                return Ok(());
            }
            _ => return Err(exit_error(h.code, h.msg)),
        }
    }
}

enum Io {
    Pipes {
        out: Option<OwnedFd>,
        err: Option<OwnedFd>,
        stdin: Option<OwnedFd>,
    },
    Pty {
        master: OwnedFd,
        open: bool,
    },
}

struct Client {
    sock: UnixStream,
    inbuf: Vec<u8>,
    outbuf: Vec<u8>,
    /// The request line has been read.
    req: Option<Request>,
    dead: bool,
}

struct Monitor<'a> {
    store: &'a Store,
    c: Container,
    created: rt::Created,
    io: Io,
    /// Bytes for the container's stdin that it has not taken yet.
    stdin_buf: Vec<u8>,
    stdin_close: bool,
    /// None once closed (the container's streams ended).
    log: Option<LogWriter>,
    listener: UnixListener,
    clients: Vec<Client>,
    sfd: SignalFd,
    fg: Option<Foreground>,
    own_stdin_open: bool,
    stop_deadline: Option<Instant>,
    killed: bool,
    /// The image's overlay (unmounted when dropped).
    rootfs: Option<rootfs::Mounted>,
    /// The user asked it to stop (stop, kill, rm -f, a signal to us): no restart.
    user_stop: bool,
    /// The stop was a signal to a detached monitor (the system's shutdown), not recorded
    /// as the user's (`ManuallyStopped`).
    system_stop: bool,
    /// The restart policy's state between runs (see restart.rs).
    restarts: restart::Restarts,
    /// The healthcheck's timer and running probe (see health.rs).
    health: Option<health::Checker>,
    /// The container's network endpoint (published ports held).
    net: Option<crate::front::network::Attached>,
    notify: crate::front::systemd::notify::Notifier,
    /// When the monitor gives back the binary's pages it no longer touches (see
    /// sys::residency): once the container has run a moment, not at its start.
    drop_pages_at: Option<Instant>,
}

/// How long a container runs before its monitor, settled into waiting, gives back the
/// binary's pages: one that ends sooner (`run --rm IMG true`) goes straight on to its
/// cleanup, which would fault most of them back in.
const SETTLE: Duration = Duration::from_millis(100);

/// Signals the monitor takes through its signalfd: all but the synchronous ones.
fn handled_signals() -> SigSet {
    crate::runtime::run::forwarded()
}

fn set_nonblocking(fd: BorrowedFd) {
    let _ = nix::fcntl::fcntl(
        fd,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    );
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| anyhow!("pipe: {}", e.desc()))
}

impl<'a> Monitor<'a> {
    /// Claims the container, creates and starts it. Errors carry Docker's exit class.
    fn start(
        store: &'a Store,
        id: &str,
        fg: Option<Foreground>,
        sync: Option<&OwnedFd>,
        wait_attach: bool,
    ) -> Result<Monitor<'a>> {
        let mut notify = crate::front::systemd::notify::Notifier::from_env(
            fg.is_some(),
            fg.map(|f| f.sdnotify).unwrap_or_default(),
        );
        // Caller's systemd sockets are not this container's.
        for v in [
            "NOTIFY_SOCKET",
            "LISTEN_FDS",
            "LISTEN_PID",
            "LISTEN_FDNAMES",
        ] {
            std::env::remove_var(v);
        }
        let lock = store.lock(id)?;
        let mut c = store.load(id)?;
        if store.monitor_alive(id) {
            bail!(
                "container {} is already running",
                crate::front::containers::short(id)
            );
        }
        if matches!(
            c.state.status,
            Status::Running | Status::Removing | Status::Restarting
        ) {
            // A dead monitor's leftovers: finalize before starting again.
            store.reconcile(&c, &lock)?;
            c = store.load(id)?;
        }
        let _ = nix::sys::prctl::set_child_subreaper(true);
        // Blocked before the clone so that no SIGCHLD (or stop request) is lost.
        let mask = handled_signals();
        nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
        let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;

        let run_dir = store.run_dir(id);
        // Private: the control socket in it attaches to the container's stdio.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&run_dir)
            .map_err(|e| anyhow!("{}: {}", run_dir.display(), crate::error::errno_text(&e)))?;
        let _ = std::fs::remove_file(run_dir.join("exit.json"));
        // Without the lock (a runroot whose filesystem has no POSIX locks) monitor.json
        // alone tells whether this monitor lives, as it did before the lock.
        let _ = crate::front::containers::live::hold(&run_dir);
        let me = std::process::id() as i32;
        store.write_monitor(
            id,
            &MonitorRecord {
                pid: me,
                start_time: rt::process_start_time(me).unwrap_or(0),
                boot_id: rt::boot_id(),
            },
        )?;
        let before = c.state.clone();
        let fail = |e: anyhow::Error| -> anyhow::Error {
            let code = rt::exec_failure_code(&e).unwrap_or(125);
            let mut st = before.clone();
            if st.status != Status::Exited {
                st.status = Status::Created;
            }
            st.exit_code = code;
            st.error = format!("{e:#}");
            st.pid = 0;
            let _ = rt::delete(&store.rt, id);
            let _ = store.save_state(id, &st);
            store.clear_run_dir(id);
            exit_error(code, format!("{e:#}"))
        };
        let listener = proto::listen(&store.ctl_socket(id))
            .map_err(|e| fail(anyhow!("control socket: {}", crate::error::errno_text(&e))))?;
        if c.rec.host_config.init {
            // The container's own copy: whatever a privileged container does to it stays
            // in it (the host's berth is never mounted in).
            let dst = run_dir.join("init");
            std::fs::copy("/proc/self/exe", &dst)
                .and_then(|_| {
                    std::fs::set_permissions(
                        &dst,
                        std::os::unix::fs::PermissionsExt::from_mode(0o555),
                    )
                })
                .map_err(|e| {
                    fail(anyhow!(
                        "--init: copying berth: {}",
                        crate::error::errno_text(&e)
                    ))
                })?;
        }
        for (path, text) in crate::front::specgen::etc_files(&c.rec) {
            std::fs::write(&path, text).map_err(|e| {
                fail(anyhow!(
                    "{}: {}",
                    path.display(),
                    crate::error::errno_text(&e)
                ))
            })?;
        }
        let log = open_log(&c.rec).map_err(fail)?;
        crate::timeline::mark("monitor:files");
        let rootfs = rootfs::mount(store, &c.rec).map_err(fail)?;
        crate::timeline::mark("monitor:rootfs");
        // The image's content is visible now: a fresh volume is filled from it.
        crate::front::volumes::setup::prepare(store, &c.rec).map_err(fail)?;
        notify.prepare(&run_dir).map_err(fail)?;
        // Parsing and the spec are done: what they mapped of the binary goes before the
        // runtime's part (see sys::residency).
        crate::sys::residency::drop_executable_pages();
        let (created, io, mut warnings, net) =
            create_container(store, &c, &notify).map_err(fail)?;
        crate::timeline::mark("monitor:create");
        let health = health::Checker::new(&c.rec);
        if !asks_for_limits(&c.rec) {
            // Rootless without cgroups is only worth a word when limits were asked for.
            warnings.clear();
        }
        warnings.extend(net.as_ref().map(|n| n.warnings.clone()).unwrap_or_default());
        if fg.is_some() {
            for w in &warnings {
                crate::logging::warn(w);
            }
        }
        let mut m = Monitor {
            store,
            c,
            created,
            io,
            stdin_buf: Vec::new(),
            stdin_close: false,
            log: Some(log),
            listener,
            clients: Vec::new(),
            sfd,
            fg,
            own_stdin_open: fg.is_some_and(|f| f.stdin),
            stop_deadline: None,
            killed: false,
            rootfs,
            user_stop: false,
            system_stop: false,
            restarts: restart::Restarts::new(),
            health,
            net,
            notify,
            drop_pages_at: None,
        };
        if wait_attach {
            if let Some(s) = sync {
                proto::send_handshake(
                    s,
                    &Handshake {
                        phase: "created".into(),
                        code: 0,
                        msg: String::new(),
                        warnings: Vec::new(),
                    },
                );
            }
            m.wait_first_attach();
        }
        if let Err(e) = rt::start(&m.created) {
            let _ = waitpid(Pid::from_raw(m.created.pid), None);
            let _ = crate::front::network::detach(store, id);
            return Err(fail(e));
        }
        let mut st = m.c.state.clone();
        st.status = Status::Running;
        st.pid = m.created.pid;
        st.started_at = now();
        st.finished_at = crate::front::containers::ZERO_TIME.into();
        st.exit_code = 0;
        st.oom_killed = false;
        st.error.clear();
        st.boot_id = rt::boot_id();
        // A start by the user begins the policy anew (Docker's ResetRestartManager).
        st.restart_count = 0;
        st.manually_stopped = false;
        st.health = health::initial(&m.c.rec);
        store.save_state(id, &st)?;
        crate::timeline::mark("monitor:started");
        m.c.state = st;
        drop(lock);
        crate::front::events::container(store, &m.c.rec, "start", &[]);
        m.notify.started();
        if let Some(s) = sync {
            proto::send_handshake(
                s,
                &Handshake {
                    phase: "started".into(),
                    code: 0,
                    msg: String::new(),
                    warnings,
                },
            );
        }
        Ok(m)
    }

    /// Before the start: accept clients until one asks to attach (bounded).
    fn wait_first_attach(&mut self) {
        let deadline = Instant::now() + ATTACH_WAIT;
        while Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
            let ms = left.as_millis().min(1000) as u16;
            let _ = poll(&mut fds, PollTimeout::from(ms));
            self.accept();
            for i in 0..self.clients.len() {
                self.read_client(i);
            }
            if self
                .clients
                .iter()
                .any(|c| matches!(c.req, Some(Request::Attach { .. })))
            {
                return;
            }
        }
    }

    fn run(mut self) -> Result<i32> {
        // From here on the monitor mostly waits: it keeps mapped only what it touches.
        self.drop_pages_at = Some(Instant::now() + SETTLE);
        let status = loop {
            let pid = self.created.pid;
            let status = loop {
                if let Some(code) = self.step(pid)? {
                    break code;
                }
            };
            if !self.restart_in_place(status)? {
                break status;
            }
        };
        self.finish(status)
    }

    /// One round of the loop; Some(status) once the init is gone.
    fn step(&mut self, pid: i32) -> Result<Option<WaitStatus>> {
        let stop = self.stop_deadline.filter(|_| !self.killed);
        let wake = [
            stop,
            self.restarts.at,
            self.health_wake(),
            self.drop_pages_at,
        ];
        let timeout = match wake.into_iter().flatten().min() {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                PollTimeout::try_from(left.as_millis().min(60_000) as i32 + 1)
                    .unwrap_or(PollTimeout::NONE)
            }
            _ => PollTimeout::NONE,
        };
        // Poll set: 0 signals, 1 listener, then outputs, own stdin, container stdin, the
        // notify socket, the running probe's output, clients.
        let mut fds = vec![
            PollFd::new(self.sfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
        ];
        let mut kinds: Vec<u8> = vec![0, 0];
        match &self.io {
            Io::Pipes { out, err, stdin } => {
                if let Some(o) = out {
                    fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
                    kinds.push(1);
                }
                if let Some(e) = err {
                    fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
                    kinds.push(2);
                }
                if let Some(i) = stdin {
                    if !self.stdin_buf.is_empty() {
                        fds.push(PollFd::new(i.as_fd(), PollFlags::POLLOUT));
                        kinds.push(4);
                    }
                }
            }
            Io::Pty { master, open } => {
                if *open {
                    let mut f = PollFlags::POLLIN;
                    if !self.stdin_buf.is_empty() {
                        f |= PollFlags::POLLOUT;
                    }
                    fds.push(PollFd::new(master.as_fd(), f));
                    kinds.push(3);
                }
            }
        }
        let stdin = io::stdin();
        if self.own_stdin_open && self.stdin_buf.len() < 65536 {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            kinds.push(5);
        }
        if let Some(s) = self.notify.socket() {
            fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            kinds.push(6);
        }
        if let Some(p) = self.health_output() {
            fds.push(PollFd::new(p, PollFlags::POLLIN));
            kinds.push(7);
        }
        let first_client = fds.len();
        for c in &self.clients {
            let mut f = PollFlags::POLLIN;
            if !c.outbuf.is_empty() {
                f |= PollFlags::POLLOUT;
            }
            fds.push(PollFd::new(c.sock.as_fd(), f));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(anyhow!("poll: {}", e.desc())),
        }
        let ready: Vec<(u8, PollFlags)> = fds
            .iter()
            .enumerate()
            .map(|(i, f)| {
                (
                    *kinds.get(i).unwrap_or(&9),
                    f.revents().unwrap_or(PollFlags::empty()),
                )
            })
            .collect();
        drop(fds);
        let mut exited = None;
        for (idx, (kind, rev)) in ready.iter().enumerate() {
            if rev.is_empty() {
                continue;
            }
            if idx >= first_client {
                let ci = idx - first_client;
                if rev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                    self.read_client(ci);
                }
                if rev.contains(PollFlags::POLLOUT) {
                    self.flush_client(ci);
                }
                continue;
            }
            match kind {
                0 if idx == 0 => exited = self.signals(pid)?.or(exited),
                0 => self.accept(),
                1 => self.pump(Stream::Stdout),
                2 => self.pump(Stream::Stderr),
                3 => {
                    if rev.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR) {
                        self.pump_pty();
                    }
                    if rev.contains(PollFlags::POLLOUT) {
                        self.feed_stdin();
                    }
                }
                4 => self.feed_stdin(),
                5 => self.read_own_stdin(),
                6 => self.notify.relay(),
                7 => self.health_drain(),
                _ => {}
            }
        }
        self.clients.retain(|c| !c.dead);
        if let (Some(d), false) = (self.stop_deadline, self.killed) {
            if Instant::now() >= d {
                self.kill_all();
            }
        }
        if exited.is_none() {
            self.health_tick();
            if self.drop_pages_at.is_some_and(|t| Instant::now() >= t) {
                self.drop_pages_at = None;
                crate::sys::residency::drop_executable_pages();
            }
        }
        Ok(exited)
    }

    fn signals(&mut self, pid: i32) -> Result<Option<WaitStatus>> {
        let mut exited = None;
        while let Ok(Some(info)) = self.sfd.read_signal() {
            let signo = info.ssi_signo as i32;
            match signo {
                libc::SIGCHLD => loop {
                    match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                        Ok(st @ WaitStatus::Exited(p, _))
                        | Ok(st @ WaitStatus::Signaled(p, _, _))
                            if p.as_raw() == pid =>
                        {
                            exited = Some(st);
                        }
                        Ok(WaitStatus::StillAlive) | Err(_) => break,
                        Ok(st) => self.health_reaped(st),
                    }
                },
                libc::SIGTERM | libc::SIGINT | libc::SIGHUP => {
                    crate::front::systemd::notify::stop_requested(signo);
                    // A detached monitor has no terminal: the signal is the system's
                    // (a shutdown), which is no user's stop for unless-stopped.
                    self.system_stop |= self.fg.is_none() && !self.user_stop;
                    let sig = self.stop_signal();
                    let t = self.c.rec.config.stop_timeout.unwrap_or(10);
                    self.begin_stop(sig, t);
                }
                libc::SIGWINCH => {
                    if let (Io::Pty { master, .. }, Some(_)) = (&self.io, self.fg) {
                        if let Ok((r, c)) = crate::sys::get_winsize(io::stdin().as_fd()) {
                            let _ = crate::sys::set_winsize(master.as_fd(), r, c);
                        }
                    }
                }
                // Ours (a client went away) or not meant for the container.
                libc::SIGPIPE | libc::SIGURG | libc::SIGTTIN | libc::SIGTTOU => {}
                s => {
                    if self.fg.is_some_and(|f| f.sig_proxy) {
                        let _ = crate::sys::pidfd_send_signal(self.created.pidfd.as_fd(), s);
                    }
                }
            }
        }
        Ok(exited)
    }

    fn stop_signal(&self) -> i32 {
        let s = &self.c.rec.config.stop_signal;
        if s.is_empty() {
            libc::SIGTERM
        } else {
            rt::parse_signal(s).unwrap_or(libc::SIGTERM)
        }
    }

    /// The stop signal now, SIGKILL of every process in the cgroup after `timeout` s.
    fn begin_stop(&mut self, sig: i32, timeout: i64) {
        self.user_stop = true;
        let _ = crate::sys::pidfd_send_signal(self.created.pidfd.as_fd(), sig);
        if sig == libc::SIGKILL || timeout == 0 {
            self.kill_all();
            return;
        }
        if timeout < 0 {
            return;
        }
        let d = Instant::now() + Duration::from_secs(timeout as u64);
        self.stop_deadline = Some(match self.stop_deadline {
            Some(old) if old < d => old,
            _ => d,
        });
    }

    fn kill_all(&mut self) {
        self.killed = true;
        let _ = rt::kill(&self.store.rt, &self.c.rec.id, libc::SIGKILL, true);
        let _ = crate::sys::pidfd_send_signal(self.created.pidfd.as_fd(), libc::SIGKILL);
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    let _ = sock.set_nonblocking(true);
                    self.clients.push(Client {
                        sock,
                        inbuf: Vec::new(),
                        outbuf: Vec::new(),
                        req: None,
                        dead: false,
                    });
                }
                Err(_) => return,
            }
        }
    }

    fn read_client(&mut self, i: usize) {
        let mut buf = [0u8; 16384];
        loop {
            let c = &mut self.clients[i];
            match c.sock.read(&mut buf) {
                Ok(0) => {
                    c.dead = true;
                    break;
                }
                Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.dead = true;
                    break;
                }
            }
        }
        let c = &mut self.clients[i];
        if c.req.is_none() {
            let Some(nl) = c.inbuf.iter().position(|b| *b == b'\n') else {
                if c.inbuf.len() > 65536 {
                    c.dead = true;
                }
                return;
            };
            let line: Vec<u8> = c.inbuf.drain(..=nl).collect();
            match serde_json::from_slice::<Request>(&line) {
                Ok(r) => {
                    c.req = Some(r.clone());
                    if let Request::Stop { signal, timeout } = r {
                        self.begin_stop(signal, timeout);
                    }
                }
                Err(_) => {
                    c.dead = true;
                    return;
                }
            }
        }
        let c = &mut self.clients[i];
        let takes_stdin = matches!(c.req, Some(Request::Attach { stdin: true, .. }));
        for (kind, data) in proto::take_frames(&mut c.inbuf) {
            match kind {
                proto::STDIN if takes_stdin => self.stdin_buf.extend_from_slice(&data),
                proto::STDIN_CLOSE if takes_stdin => self.stdin_close = true,
                proto::SIGNAL => {
                    let sig = String::from_utf8_lossy(&data).parse::<i32>().unwrap_or(0);
                    if sig > 0 && sig != libc::SIGKILL && sig != libc::SIGSTOP {
                        let _ = crate::sys::pidfd_send_signal(self.created.pidfd.as_fd(), sig);
                    }
                }
                proto::RESIZE => {
                    if let Io::Pty { master, .. } = &self.io {
                        let t = String::from_utf8_lossy(&data).to_string();
                        let mut it = t.split(' ').filter_map(|x| x.parse::<u16>().ok());
                        if let (Some(r), Some(cols)) = (it.next(), it.next()) {
                            let _ = crate::sys::set_winsize(master.as_fd(), r, cols);
                        }
                    }
                }
                _ => {}
            }
        }
        self.feed_stdin();
    }

    fn flush_client(&mut self, i: usize) {
        let c = &mut self.clients[i];
        while !c.outbuf.is_empty() {
            match c.sock.write(&c.outbuf) {
                Ok(0) => {
                    c.dead = true;
                    return;
                }
                Ok(n) => {
                    c.outbuf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    c.dead = true;
                    return;
                }
            }
        }
    }

    /// The container's bytes: to the log, to our own stdio (foreground), to clients.
    fn output(&mut self, stream: Stream, data: &[u8]) {
        if let Some(l) = self.log.as_mut() {
            if let Err(e) = l.write(stream, data, std::time::SystemTime::now()) {
                // The container goes on; its log stops (a full disk, a journal gone).
                crate::logging::warn(&format!("container log: {e:#}"));
                self.log = None;
            }
        }
        if let Some(fg) = self.fg {
            let (want, mut out): (bool, Box<dyn Write>) = match stream {
                Stream::Stdout => (fg.stdout, Box::new(io::stdout())),
                Stream::Stderr => (fg.stderr, Box::new(io::stderr())),
            };
            if want {
                let _ = out.write_all(data);
                let _ = out.flush();
            }
        }
        let kind = match stream {
            Stream::Stdout => proto::STDOUT,
            Stream::Stderr => proto::STDERR,
        };
        for i in 0..self.clients.len() {
            let wants = match self.clients[i].req {
                Some(Request::Attach { stdout, stderr, .. }) => match stream {
                    Stream::Stdout => stdout,
                    Stream::Stderr => stderr,
                },
                _ => false,
            };
            if !wants {
                continue;
            }
            self.clients[i].outbuf.extend(proto::frame(kind, data));
            self.flush_client(i);
            if self.clients[i].outbuf.len() > CLIENT_BACKLOG {
                self.clients[i].dead = true;
            }
        }
    }

    fn pump(&mut self, stream: Stream) {
        let mut buf = vec![0u8; 32768];
        let fd = match (&mut self.io, stream) {
            (Io::Pipes { out, .. }, Stream::Stdout) => out,
            (Io::Pipes { err, .. }, Stream::Stderr) => err,
            _ => return,
        };
        let Some(f) = fd.as_ref() else { return };
        match nix::unistd::read(f, &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => *fd = None,
            Ok(n) => self.output(stream, &buf[..n]),
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => *fd = None,
        }
    }

    fn pump_pty(&mut self) {
        let mut buf = vec![0u8; 32768];
        let Io::Pty { master, open } = &mut self.io else {
            return;
        };
        match nix::unistd::read(&*master, &mut buf) {
            Ok(0) | Err(nix::errno::Errno::EIO) => *open = false,
            Ok(n) => self.output(Stream::Stdout, &buf[..n]),
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => *open = false,
        }
    }

    fn read_own_stdin(&mut self) {
        let mut buf = [0u8; 16384];
        match nix::unistd::read(io::stdin().as_fd(), &mut buf) {
            Ok(0) => {
                self.own_stdin_open = false;
                self.stdin_close = true;
            }
            Ok(n) => self.stdin_buf.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR) => {}
            Err(_) => {
                self.own_stdin_open = false;
                self.stdin_close = true;
            }
        }
        self.feed_stdin();
    }

    /// Moves pending input into the container; closes its stdin once asked and drained.
    fn feed_stdin(&mut self) {
        let target = match &self.io {
            Io::Pipes { stdin: Some(w), .. } => Some(w.as_fd()),
            Io::Pty { master, open: true } => Some(master.as_fd()),
            _ => None,
        };
        let Some(t) = target else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            match nix::unistd::write(t, &self.stdin_buf) {
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(_) => {
                    self.stdin_buf.clear();
                    break;
                }
            }
        }
        if self.stdin_close && self.stdin_buf.is_empty() {
            if let Io::Pipes { stdin, .. } = &mut self.io {
                *stdin = None;
            }
        }
    }

    /// Reads what the container left in its pipes (bounded: a process that escaped with
    /// a copy of them must not keep the monitor forever).
    fn drain(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let open: Vec<u8> = match &self.io {
                Io::Pipes { out, err, .. } => {
                    let mut v = Vec::new();
                    if out.is_some() {
                        v.push(1);
                    }
                    if err.is_some() {
                        v.push(2);
                    }
                    v
                }
                Io::Pty { open: true, .. } => vec![3],
                Io::Pty { .. } => vec![],
            };
            if open.is_empty() || Instant::now() >= deadline {
                return;
            }
            let mut fds: Vec<PollFd> = Vec::new();
            match &self.io {
                Io::Pipes { out, err, .. } => {
                    for f in [out, err].into_iter().flatten() {
                        fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                    }
                }
                Io::Pty { master, .. } => fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN)),
            }
            let _ = poll(&mut fds, PollTimeout::from(100u16));
            let ready: Vec<bool> = fds
                .iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect();
            drop(fds);
            if !ready.iter().any(|r| *r) {
                if matches!(self.io, Io::Pty { .. }) {
                    // A pty has no EOF while its slave is open somewhere: quiet is the end.
                    return;
                }
                continue;
            }
            for (k, r) in open.iter().zip(ready) {
                if !r {
                    continue;
                }
                match k {
                    1 => self.pump(Stream::Stdout),
                    2 => self.pump(Stream::Stderr),
                    _ => self.pump_pty(),
                }
            }
        }
    }

    /// The container is gone: record it, clean up, tell the clients, exit.
    fn finish(mut self, status: WaitStatus) -> Result<i32> {
        let (code, signal) = match status {
            WaitStatus::Exited(_, c) => (c, None),
            WaitStatus::Signaled(_, s, _) => (128 + s as i32, Some(s as i32)),
            _ => (255, None),
        };
        crate::timeline::mark("monitor:exited");
        let oom = rt::oom_kills(&self.created) > 0;
        let id = self.c.rec.id.clone();
        let exit = ExitRecord {
            code,
            signal,
            oom,
            finished_at: now(),
        };
        let _ = self.store.write_exit(&id, &exit);
        crate::timeline::mark("monitor:exit-record");
        if !self.restarts.torn_down {
            restart::report_end(self.store, &self.c.rec, &exit);
        }
        self.drain();
        if let Some(l) = self.log.take() {
            let _ = l.close(std::time::SystemTime::now());
        }
        let destroyed = if self.restarts.torn_down {
            Ok(Vec::new())
        } else {
            rt::destroy(&self.created)
        };
        crate::timeline::mark("monitor:destroy");
        drop(self.rootfs.take());
        crate::timeline::mark("monitor:umount");
        // With --rm nothing keeps an error of the release (the record goes): it finishes
        // on its own while the container is removed.
        let released = if self.c.rec.host_config.auto_remove {
            crate::front::network::detach_in_background(self.store, &id)
        } else {
            crate::front::network::detach(self.store, &id)
        };
        drop(self.net.take());
        let lock = {
            let lock = self.store.lock(&id);
            let mut st: State = self
                .store
                .load_state(&id)
                .unwrap_or_else(|_| self.c.state.clone());
            st.status = Status::Exited;
            st.pid = 0;
            st.exit_code = code;
            st.oom_killed = oom;
            st.finished_at = exit.finished_at.clone();
            st.manually_stopped |=
                (self.user_stop && !self.system_stop) || restart::user_stopped(self.store, &id);
            if let Err(e) = &destroyed {
                st.error = format!("cleaning up: {e:#}");
            } else if let Err(e) = &released {
                st.error = format!("releasing the network: {e:#}");
            }
            let _ = self.store.save_state(&id, &st);
            crate::timeline::mark("monitor:save-state");
            if self.c.rec.host_config.auto_remove {
                let _ = self.store.remove_files(&self.c.rec);
                crate::front::volumes::setup::remove_anonymous(self.store, &self.c.rec);
                crate::front::events::container(self.store, &self.c.rec, "destroy", &[]);
            } else {
                self.store.clear_run_dir(&id);
            }
            lock
        };
        // Attached clients learn the status; waiters see the connection close.
        let status_text = code.to_string();
        for i in 0..self.clients.len() {
            if matches!(self.clients[i].req, Some(Request::Attach { .. })) {
                self.clients[i]
                    .outbuf
                    .extend(proto::frame(proto::EXIT, status_text.as_bytes()));
            }
            let _ = self.clients[i].sock.set_nonblocking(false);
            let _ = self.clients[i]
                .sock
                .set_write_timeout(Some(Duration::from_secs(2)));
            let buf = std::mem::take(&mut self.clients[i].outbuf);
            let _ = self.clients[i].sock.write_all(&buf);
        }
        self.clients.clear();
        if self.fg.is_none() {
            // A detached monitor ends right after this: its lock is released only when the
            // kernel closes its files, after its memory is gone, so a command that takes the
            // lock next (rm) never returns while this process still runs.
            std::mem::forget(lock);
        } else {
            drop(lock);
        }
        crate::timeline::mark("monitor:removed");
        destroyed?;
        Ok(code)
    }
}

/// Creates the container's init (blocked before exec) with its stdio: pipes, or the pty
/// the runtime makes. Also what a restart in place calls.
fn create_container(
    store: &Store,
    c: &Container,
    notify: &crate::front::systemd::notify::Notifier,
) -> Result<(
    rt::Created,
    Io,
    Vec<String>,
    Option<crate::front::network::Attached>,
)> {
    let id = &c.rec.id;
    // Read from the record in place unless the network changes it: the spec holds the
    // whole seccomp profile, and copying it was a good part of a `run`'s own work.
    let spec = if crate::front::network::spec_changes(&c.rec) {
        let mut spec = c.rec.spec.clone();
        crate::front::network::prepare_spec(store, &c.rec, &mut spec)?;
        <oci_spec::runtime::Spec as serde::Deserialize>::deserialize(&spec)
    } else {
        <oci_spec::runtime::Spec as serde::Deserialize>::deserialize(&c.rec.spec)
    };
    let mut spec = spec.map_err(|e| anyhow!("the container's spec: {e}"))?;
    notify.apply(&mut spec)?;
    let under_unit = crate::front::systemd::notify::under_unit();
    if let Some(w) = crate::front::systemd::delegate::apply(&mut spec, under_unit)? {
        crate::logging::warn(&w);
    }
    let bundle = rt::bundle_dir(&store.run_dir(id));

    let mut warnings = Vec::new();
    let (created, io) = if c.rec.config.tty {
        let created = rt::create(&store.rt, id, spec, &bundle, Stdio::Pty)?;
        let master = created
            .pty_master
            .as_ref()
            .ok_or_else(|| anyhow!("no terminal from the runtime"))?
            .try_clone()?;
        set_nonblocking(master.as_fd());
        (created, Io::Pty { master, open: true })
    } else {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let devnull = std::fs::File::open("/dev/null").context("open /dev/null")?;
        let (in_r, in_w): (OwnedFd, Option<OwnedFd>) = if c.rec.config.open_stdin {
            let (r, w) = pipe()?;
            (r, Some(w))
        } else {
            (OwnedFd::from(devnull), None)
        };
        let created = rt::create(
            &store.rt,
            id,
            spec,
            &bundle,
            Stdio::Fds([in_r.as_fd(), out_w.as_fd(), err_w.as_fd()]),
        )?;
        // The container's ends are the container's now: EOF comes when it is gone.
        drop((in_r, out_w, err_w));
        set_nonblocking(out_r.as_fd());
        set_nonblocking(err_r.as_fd());
        // The runtime wrote its warnings on the fd 2 it was lent; the init has not run
        // anything yet, so whatever is in the pipe is the runtime's, not the container's.
        warnings = runtime_warnings(&err_r);
        if let Some(w) = &in_w {
            set_nonblocking(w.as_fd());
        }
        (
            created,
            Io::Pipes {
                out: Some(out_r),
                err: Some(err_r),
                stdin: in_w,
            },
        )
    };
    // OCI's way: the runtime made the network namespace; it is configured before start.
    let net = match crate::front::network::attach(store, &c.rec, created.pid) {
        Ok(n) => n,
        Err(e) => {
            // The init waits alive for its start (destroy expects it gone), and its
            // parent-death signal does not survive a nested user namespace's setup.
            let _ = crate::sys::pidfd_send_signal(created.pidfd.as_fd(), libc::SIGKILL);
            let _ = waitpid(Pid::from_raw(created.pid), None);
            let _ = rt::destroy(&created);
            return Err(e);
        }
    };
    warnings.extend(created.warnings.iter().cloned());
    Ok((created, io, warnings, net))
}

/// The container's log writer, from its record's `--log-driver`/`--log-opt`.
fn open_log(r: &crate::front::containers::Record) -> Result<LogWriter> {
    let driver = Driver::parse(&r.host_config.log_config.kind)?;
    let pairs: Vec<(String, String)> = r
        .host_config
        .log_config
        .config
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut opts = LogOptions::parse(driver, &pairs)?;
    opts.container_id = r.id.clone();
    opts.container_name = r.name.clone();
    opts.attrs = opts.extra_attrs(&r.config.labels, &r.config.env);
    let path = if driver == Driver::Journald {
        Path::new(crate::front::logs::journald::JOURNAL_SOCKET).to_path_buf()
    } else {
        r.log_path.clone()
    };
    LogWriter::new(driver, &path, &opts)
}

/// Lines the runtime wrote to its stderr during create, without the level prefix.
fn runtime_warnings(fd: &OwnedFd) -> Vec<String> {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = nix::unistd::read(fd, &mut buf) {
        if n == 0 {
            break;
        }
        text.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&text)
        .lines()
        .map(|l| l.trim_start_matches("WARNING: ").to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Whether the container asked for any resource limit.
fn asks_for_limits(r: &crate::front::containers::Record) -> bool {
    let h = &r.host_config;
    h.memory > 0
        || h.memory_swap > 0
        || h.memory_reservation > 0
        || h.nano_cpus > 0
        || h.cpu_shares > 0
        || !h.cpuset_cpus.is_empty()
        || h.pids_limit.is_some_and(|p| p > 0)
}

/// Sends `req` to the container's monitor; None when it has none (not running).
pub(crate) fn request(store: &Store, id: &str, req: &Request) -> Option<UnixStream> {
    proto::request(&store.ctl_socket(id), req)
}

/// Waits until the monitor of `id` is gone (it closes every connection as it exits).
pub(crate) fn wait_gone(store: &Store, id: &str) {
    wait_gone_since(store, id, store.monitor(id));
}

/// As `wait_gone`, also waiting for `before`: the monitor record read before the caller
/// asked the monitor to end. The monitor removes its record before it exits, so a record
/// read once the request is answered can already say "gone" while the process is still
/// finishing.
pub(crate) fn wait_gone_since(
    store: &Store,
    id: &str,
    before: Option<crate::front::containers::MonitorRecord>,
) {
    let now = store.monitor(id);
    if let Some(s) = request(store, id, &Request::Wait) {
        proto::wait_closed(s);
    }
    // The socket closes before the process exits: wait for the process itself (bounded).
    let deadline = Instant::now() + Duration::from_secs(10);
    for m in before.iter().chain(now.iter()) {
        while crate::front::containers::alive(m) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The log file's path for a container record.
pub(crate) fn log_path(dir: &Path) -> std::path::PathBuf {
    dir.join("ctr.log")
}
