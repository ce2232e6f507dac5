//! The terminal side of a foreground `run` or `exec`: receive the pty master the init
//! sends, put the caller's terminal in raw mode, and copy bytes both ways.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;

use anyhow::{anyhow, bail, Result};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{cfmakeraw, tcgetattr, tcsetattr, SetArg, Termios};

/// Receives one fd (SCM_RIGHTS) from the console socket.
pub(crate) fn recv_master(sock: &UnixStream) -> Result<OwnedFd> {
    let mut buf = [0u8; 4096];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| anyhow!("console socket: {}", crate::error::errno_desc(e)))?;
    for c in msg.cmsgs().map_err(|e| anyhow!("console socket: {e}"))? {
        if let ControlMessageOwned::ScmRights(fds) = c {
            if let Some(&fd) = fds.first() {
                // SAFETY-free: the kernel installed this fd for us and nothing else owns it.
                return Ok(owned(fd));
            }
        }
    }
    bail!("console socket: no pty master received")
}

fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    crate::sys::adopt_fd(fd)
}

/// Raw mode on the caller's terminal while the container owns it; restored on drop.
pub(crate) struct RawGuard<'a> {
    fd: BorrowedFd<'a>,
    saved: Option<Termios>,
}

impl<'a> RawGuard<'a> {
    pub(crate) fn new(fd: BorrowedFd<'a>) -> RawGuard<'a> {
        let saved = tcgetattr(fd).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            cfmakeraw(&mut raw);
            let _ = tcsetattr(fd, SetArg::TCSANOW, &raw);
        }
        RawGuard { fd, saved }
    }
}

impl Drop for RawGuard<'_> {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = tcsetattr(self.fd, SetArg::TCSANOW, t);
        }
    }
}

/// Copies the window size of our terminal to the container's.
pub(crate) fn copy_winsize(from: BorrowedFd, to: BorrowedFd) {
    if let Ok((r, c)) = crate::sys::get_winsize(from) {
        let _ = crate::sys::set_winsize(to, r, c);
    }
}

/// Moves whatever is readable from `from` to `to`; false at EOF or error.
pub(crate) fn pump(from: BorrowedFd, to: BorrowedFd) -> bool {
    let mut buf = [0u8; 16384];
    match nix::unistd::read(from, &mut buf) {
        Ok(0) => false,
        Ok(n) => {
            let mut off = 0;
            while off < n {
                match nix::unistd::write(to, &buf[off..n]) {
                    Ok(w) => off += w,
                    Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => continue,
                    Err(_) => return false,
                }
            }
            true
        }
        Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => true,
        Err(_) => false,
    }
}
