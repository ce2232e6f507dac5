//! The parent's half of the protocol in channel.rs, written once for the container init
//! (create) and for exec's child: it follows the child through an extra fork into a PID
//! namespace, answers its requests in the order it makes them, and returns once the child
//! is Ready. What only a container's creation does (id maps, hooks) and what needs the
//! config (the seccomp listener) is the caller's, through `Steps`. On any failure the child
//! is killed and reaped before the error is returned.

use std::cell::Cell;
use std::os::fd::{AsFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::channel::{Channel, ChannelError, Msg};
use crate::sys;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ParentError {
    /// The child's own report of the step that failed.
    #[error("{message}")]
    Child {
        stage: String,
        errno: i32,
        message: String,
    },
    #[error("{who} exited before reporting: {status}")]
    Exited { who: &'static str, status: String },
    #[error("unexpected message from {who}: {msg}")]
    Unexpected { who: &'static str, msg: String },
    #[error("pidfd_open {pid}: {}", crate::error::errno_desc(*errno))]
    PidfdOpen { pid: i32, errno: Errno },
    #[error(transparent)]
    Channel(ChannelError),
}

/// What the parent does for the requests only some children make. A request a child
/// should not make is an error (the defaults).
pub(crate) trait Steps {
    /// The child as errors name it ("container init").
    const WHO: &'static str;
    type Error: From<ParentError>;

    /// The child (`pid`) has unshared a user namespace and waits for its id maps.
    fn id_maps(&mut self, pid: i32) -> Result<(), Self::Error> {
        let _ = pid;
        Err(unexpected::<Self>(&Msg::MapsRequest))
    }

    /// The child has loaded a seccomp filter with a notify listener: `fd` in its fd table.
    fn seccomp_listener(&mut self, pid: i32, pidfd: &OwnedFd, fd: i32) -> Result<(), Self::Error> {
        let _ = (pid, pidfd);
        Err(unexpected::<Self>(&Msg::SeccompFd(fd)))
    }

    /// The container's namespaces and mounts are ready, before pivot_root: the hooks the
    /// runtime runs (prestart, createRuntime).
    fn hooks(&mut self, pid: i32) -> Result<(), Self::Error> {
        let _ = pid;
        Err(unexpected::<Self>(&Msg::Hooks))
    }
}

fn unexpected<S: Steps + ?Sized>(m: &Msg) -> S::Error {
    ParentError::Unexpected {
        who: S::WHO,
        msg: format!("{m:?}"),
    }
    .into()
}

/// The child once it is Ready: the process that will exec the container's program (the
/// grandchild when the child had to fork into a PID namespace).
pub(crate) struct Ready {
    pub(crate) pid: i32,
    pub(crate) pidfd: OwnedFd,
}

/// The parent's end of one child's channel.
pub(crate) struct Parent<'a, S: Steps> {
    chan: &'a Channel,
    steps: S,
    /// The child we cloned; it exits after forking into a PID namespace.
    first: i32,
    pid: i32,
    pidfd: OwnedFd,
    /// Set once the child has been waited for: its pid may be reused.
    reaped: Cell<bool>,
}

impl<'a, S: Steps> Parent<'a, S> {
    pub(crate) fn new(chan: &'a Channel, steps: S, pid: i32, pidfd: OwnedFd) -> Self {
        Parent {
            chan,
            steps,
            first: pid,
            pid,
            pidfd,
            reaped: Cell::new(false),
        }
    }

    /// Tells a child that waits for it (InitCtx::wait_go) that the parent's part is done.
    pub(crate) fn go(&mut self) -> Result<(), S::Error> {
        self.send(&Msg::Go).map_err(|e| self.fail(e))
    }

    /// Serves the child's requests until it is Ready.
    pub(crate) fn serve(mut self) -> Result<Ready, S::Error> {
        loop {
            let m = match self.chan.recv() {
                Ok(m) => m,
                Err(e) => return Err(self.fail(self.channel_error(e))),
            };
            match m {
                Msg::Pid(gc) => {
                    // The intermediate child exits once it has forked the real process
                    // (CLONE_PARENT made that one our child too).
                    let _ = waitpid(Pid::from_raw(self.first), None);
                    match sys::pidfd_open(gc) {
                        Ok(fd) => (self.pid, self.pidfd) = (gc, fd),
                        // Only when the new process is gone already.
                        Err(errno) => {
                            return Err(self.fail(ParentError::PidfdOpen { pid: gc, errno }))
                        }
                    }
                }
                Msg::MapsRequest => {
                    self.step(|s, pid, _| s.id_maps(pid))?;
                    self.send(&Msg::MapsDone).map_err(|e| self.fail(e))?;
                }
                Msg::SeccompFd(n) => {
                    self.step(|s, pid, fd| s.seccomp_listener(pid, fd, n))?;
                    self.send(&Msg::SeccompDone).map_err(|e| self.fail(e))?;
                }
                Msg::Hooks => {
                    self.step(|s, pid, _| s.hooks(pid))?;
                    // The init's own hooks (createContainer, startContainer) report the
                    // container's host pid, which it cannot see from inside its namespace.
                    let done = Msg::HooksDone { pid: self.pid };
                    self.send(&done).map_err(|e| self.fail(e))?;
                }
                Msg::Debug(what) => {
                    crate::logging::debug(&format!("{} {}: {what}", S::WHO, self.pid))
                }
                Msg::Ready => {
                    return Ok(Ready {
                        pid: self.pid,
                        pidfd: self.pidfd,
                    })
                }
                Msg::Error {
                    stage,
                    errno,
                    message,
                } => {
                    return Err(self.fail(ParentError::Child {
                        stage,
                        errno,
                        message,
                    }))
                }
                m @ (Msg::Go | Msg::MapsDone | Msg::SeccompDone | Msg::HooksDone { .. }) => {
                    return Err(self.fail(unexpected::<S>(&m)))
                }
            }
        }
    }

    /// Runs one of the caller's steps; a failure kills the child.
    fn step(
        &mut self,
        f: impl FnOnce(&mut S, i32, &OwnedFd) -> Result<(), S::Error>,
    ) -> Result<(), S::Error> {
        match f(&mut self.steps, self.pid, &self.pidfd) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn send(&self, m: &Msg) -> Result<(), ParentError> {
        self.chan.send(m).map_err(|e| self.channel_error(e))
    }

    /// A closed channel means the child died: say how.
    fn channel_error(&self, e: ChannelError) -> ParentError {
        match e {
            ChannelError::Closed => ParentError::Exited {
                who: S::WHO,
                status: self.reap(),
            },
            e => ParentError::Channel(e),
        }
    }

    /// Kills and reaps the child (and the intermediate, if it is still there).
    fn fail<E: Into<S::Error>>(&self, e: E) -> S::Error {
        self.reap();
        e.into()
    }

    /// The child's end, as text; killed first, so that this never waits on a live one
    /// (an exit status already there is kept: a zombie ignores the signal).
    fn reap(&self) -> String {
        if self.reaped.replace(true) {
            return "unknown status".into();
        }
        let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), libc::SIGKILL);
        let status = match waitpid(Pid::from_raw(self.pid), None) {
            Ok(WaitStatus::Exited(_, c)) => format!("exit status {c}"),
            Ok(WaitStatus::Signaled(_, s, _)) => format!("killed by {s}"),
            _ => "unknown status".into(),
        };
        if self.pid != self.first {
            let _ = waitpid(Pid::from_raw(self.first), None);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the requests it answers; refuses id maps, as exec's steps do.
    #[derive(Default)]
    struct Log(Vec<String>);

    impl Steps for &mut Log {
        const WHO: &'static str = "test child";
        type Error = ParentError;

        fn seccomp_listener(&mut self, pid: i32, _: &OwnedFd, fd: i32) -> Result<(), ParentError> {
            self.0.push(format!("seccomp {pid} {fd}"));
            Ok(())
        }

        fn hooks(&mut self, pid: i32) -> Result<(), ParentError> {
            self.0.push(format!("hooks {pid}"));
            Ok(())
        }
    }

    /// A real child process to stand for the cloned one (a pidfd to kill, a pid to reap);
    /// the channel's other end is played by a thread.
    // Reaping it is what the code under test does.
    #[allow(clippy::zombie_processes)]
    fn child() -> (i32, OwnedFd) {
        let c = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        let pid = c.id() as i32;
        (pid, sys::pidfd_open(pid).unwrap())
    }

    fn gone(pid: i32) -> bool {
        // Reaped: no longer our child.
        waitpid(
            Pid::from_raw(pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        ) == Err(Errno::ECHILD)
    }

    #[test]
    fn requests_are_answered_in_order_until_ready() {
        let (ours, theirs) = Channel::pair().unwrap();
        let (pid, pidfd) = child();
        let peer = std::thread::spawn(move || {
            theirs.send(&Msg::SeccompFd(9)).unwrap();
            assert_eq!(theirs.recv().unwrap(), Msg::SeccompDone);
            theirs.send(&Msg::Hooks).unwrap();
            let done = theirs.recv().unwrap();
            theirs.send(&Msg::Ready).unwrap();
            done
        });
        let mut log = Log::default();
        let ready = Parent::new(&ours, &mut log, pid, pidfd).serve().unwrap();
        assert_eq!(ready.pid, pid);
        assert_eq!(peer.join().unwrap(), Msg::HooksDone { pid });
        assert_eq!(log.0, [format!("seccomp {pid} 9"), format!("hooks {pid}")]);
        assert!(!gone(pid), "a ready child is left alone");
        let _ = sys::pidfd_send_signal(ready.pidfd.as_fd(), libc::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
    }

    #[test]
    fn a_failed_step_kills_and_reaps_the_child() {
        let cases: [(Msg, &str); 2] = [
            (
                Msg::Error {
                    stage: "mounts".into(),
                    errno: 2,
                    message: "mount /proc: no such file or directory".into(),
                },
                "mount /proc: no such file or directory",
            ),
            (
                Msg::MapsRequest,
                "unexpected message from test child: MapsRequest",
            ),
        ];
        for (m, want) in cases {
            let (ours, theirs) = Channel::pair().unwrap();
            let (pid, pidfd) = child();
            theirs.send(&m).unwrap();
            let mut log = Log::default();
            let e = Parent::new(&ours, &mut log, pid, pidfd)
                .serve()
                .err()
                .unwrap();
            assert_eq!(e.to_string(), want);
            assert!(gone(pid), "{want}");
        }
    }

    #[test]
    fn a_child_that_dies_silently_is_reported_with_its_end() {
        let (ours, theirs) = Channel::pair().unwrap();
        let (pid, pidfd) = child();
        drop(theirs);
        let mut log = Log::default();
        let e = Parent::new(&ours, &mut log, pid, pidfd)
            .serve()
            .err()
            .unwrap();
        assert_eq!(
            e.to_string(),
            "test child exited before reporting: killed by SIGKILL"
        );
        assert!(gone(pid));
    }
}
