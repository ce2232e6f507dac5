//! `run`: create + start in one process. In the foreground berth stays the init's parent,
//! is a subreaper, forwards every signal but SIGCHLD, and exits with the container's status.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::Result;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use super::create::{create, CreateOpts, Created};
use super::error::Error;
use super::ops;
use super::Globals;
use crate::state::Status;

/// Signals berth handles itself (a foreground run, the people face's monitor and its
/// `--init`); the synchronous ones stay default so a berth bug still crashes visibly.
pub(crate) fn forwarded() -> SigSet {
    let mut s = SigSet::all();
    for sig in [
        Signal::SIGSEGV,
        Signal::SIGBUS,
        Signal::SIGILL,
        Signal::SIGFPE,
        Signal::SIGTRAP,
        Signal::SIGSYS,
        Signal::SIGKILL,
        Signal::SIGSTOP,
    ] {
        s.remove(sig);
    }
    s
}

/// The caller's side of a foreground container's terminal: where input is read from and
/// output written to, and the terminal whose window size the container's follows (put in
/// raw mode while the container owns it). A command passes its own stdin and stdout; a
/// monitor, a pty or pipes it holds.
#[derive(Clone, Copy)]
pub(crate) struct Stdio<'a> {
    pub(crate) input: BorrowedFd<'a>,
    pub(crate) output: BorrowedFd<'a>,
    pub(crate) terminal: Option<BorrowedFd<'a>>,
}

impl<'a> Stdio<'a> {
    /// `input` is the terminal too when it is one.
    pub(crate) fn new(input: BorrowedFd<'a>, output: BorrowedFd<'a>) -> Stdio<'a> {
        let terminal = nix::unistd::isatty(input).unwrap_or(false).then_some(input);
        Stdio {
            input,
            output,
            terminal,
        }
    }

    /// Gives the container's pty our window size and puts our terminal in raw mode
    /// until the guard is dropped.
    pub(crate) fn attach(&self, pty: Option<&OwnedFd>) -> Option<super::tty::RawGuard<'a>> {
        let (Some(m), Some(t)) = (pty, self.terminal) else {
            return None;
        };
        super::tty::copy_winsize(t, m.as_fd());
        Some(super::tty::RawGuard::new(t))
    }
}

/// create + start, and in the foreground (not `detach`) the container's life: returns
/// its exit code, deleting it unless `keep`. Warnings go to `warn` as they come: a
/// foreground run can last as long as the container.
pub(crate) fn run(
    g: &Globals,
    o: &mut CreateOpts,
    detach: bool,
    keep: bool,
    io: Stdio,
    warn: &mut dyn FnMut(&str),
) -> Result<i32, Error> {
    let start = |c: &Created, warn: &mut dyn FnMut(&str)| {
        let mut warnings = Vec::new();
        let r = ops::start_created(&c.dir, &c.rec, None, true, &mut warnings);
        warnings.iter().for_each(|w| warn(w));
        if r.is_err() {
            // The destroyed init is our child: reaped here, not left a zombie for whoever
            // inherits it (a shell, a test harness, a shim that is a subreaper).
            if crate::state::has_exited(&c.pidfd, std::time::Duration::from_secs(5)) {
                let _ = waitpid(Pid::from_raw(c.pid), Some(WaitPidFlag::WNOHANG));
            }
        }
        r
    };
    if detach {
        let c = create(g, o)?;
        c.warnings.iter().for_each(|w| warn(w));
        start(&c, warn)?;
        return Ok(0);
    }
    let _ = nix::sys::prctl::set_child_subreaper(true);
    // Blocked before clone so that no SIGCHLD or forwarded signal can be lost.
    let sfd = block_forwarded()?;
    o.internal_console = o.console_socket.is_none();
    let c = create(g, o)?;
    c.warnings.iter().for_each(|w| warn(w));
    let _raw = io.attach(c.pty_master.as_ref());
    start(&c, warn)?;
    crate::timeline::mark("start");

    let code = supervise(c.pid, &c.pidfd, c.pty_master.as_ref(), &sfd, io)?;
    crate::timeline::mark("wait-exit");
    if !keep {
        ops::destroy(&c.dir, &c.rec, Status::Stopped)?
            .iter()
            .for_each(|w| warn(w));
        crate::timeline::mark("delete");
    }
    Ok(code)
}

/// Blocks signals that berth forwards; call before clone so none is lost.
pub(crate) fn block_forwarded() -> Result<SignalFd> {
    let mask = forwarded();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
    Ok(SignalFd::with_flags(
        &mask,
        SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK,
    )?)
}

/// Waits for `pid` (our child) while copying bytes between its pty and `io` and
/// forwarding signals; returns its exit code (128+signal when killed). Other children are
/// reaped on the way (berth is a subreaper).
pub(crate) fn supervise(
    pid: i32,
    pidfd: &OwnedFd,
    pty: Option<&OwnedFd>,
    sfd: &SignalFd,
    io: Stdio,
) -> Result<i32> {
    let mut stdin_open = pty.is_some();
    let mut master_open = pty.is_some();
    let code = 'outer: loop {
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if let Some(m) = pty.filter(|_| master_open) {
            fds.push(PollFd::new(m.as_fd(), PollFlags::POLLIN));
        }
        let stdin_idx = fds.len();
        if stdin_open {
            fds.push(PollFd::new(io.input, PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        let ready = |i: usize| {
            fds.get(i)
                .and_then(|f| f.revents())
                .is_some_and(|r| !r.is_empty())
        };
        let (sig_ready, master_ready, stdin_ready) = (
            ready(0),
            master_open && ready(1),
            stdin_open && ready(stdin_idx),
        );
        drop(fds);
        if let (true, Some(m)) = (master_ready, pty) {
            master_open = super::tty::pump(m.as_fd(), io.output);
        }
        if let (true, Some(m)) = (stdin_ready, pty) {
            stdin_open = super::tty::pump(io.input, m.as_fd());
        }
        if !sig_ready {
            continue;
        }
        while let Ok(Some(info)) = sfd.read_signal() {
            let signo = info.ssi_signo as i32;
            if signo == libc::SIGCHLD {
                loop {
                    match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                        Ok(WaitStatus::Exited(p, code)) if p.as_raw() == pid => break 'outer code,
                        Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == pid => {
                            break 'outer 128 + s as i32
                        }
                        Ok(WaitStatus::StillAlive) | Err(_) => break,
                        Ok(_) => continue,
                    }
                }
            } else if let (libc::SIGWINCH, Some(m), Some(t)) = (signo, pty, io.terminal) {
                super::tty::copy_winsize(t, m.as_fd());
            } else {
                let _ = crate::sys::pidfd_send_signal(pidfd.as_fd(), signo);
            }
        }
    };
    if let Some(m) = &pty {
        // Output the init wrote just before exiting is still in the pty.
        let _ = nix::fcntl::fcntl(
            m,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        while super::tty::pump(m.as_fd(), io.output) {
            let mut probe = [PollFd::new(m.as_fd(), PollFlags::POLLIN)];
            if poll(&mut probe, PollTimeout::ZERO).unwrap_or(0) == 0 {
                break;
            }
        }
    }
    Ok(code)
}
