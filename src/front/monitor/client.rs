//! The attaching side (`attach`, `start -a`, `run -it`): the container's output from the
//! monitor to our stdout/stderr, our stdin to it, the window size when it changes, and the
//! detach keys (Ctrl-P Ctrl-Q by default) that leave it running.

use std::io::{self, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;

use anyhow::{anyhow, bail, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use super::proto::{self, Request};

pub(crate) struct Options {
    pub(crate) stdin: bool,
    pub(crate) stdout: bool,
    pub(crate) stderr: bool,
    /// The container has a terminal: ours goes raw, its size follows ours.
    pub(crate) tty: bool,
    pub(crate) detach_keys: Vec<u8>,
    /// Signals we get go to the container's process (without a terminal; with one,
    /// Ctrl-C and friends travel as bytes).
    pub(crate) sig_proxy: bool,
}

/// What `--sig-proxy` forwards.
const PROXIED: &[Signal] = &[
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// The container exited with this status.
    Exited(i32),
    /// The user typed the detach keys.
    Detached,
    /// The monitor went away without a status (killed).
    Lost,
}

/// Docker's `--detach-keys`: comma-separated `ctrl-<c>` (a-z, @, [, \, ], ^, _) or single
/// characters; default ctrl-p,ctrl-q.
pub(crate) fn parse_detach_keys(s: Option<&str>) -> Result<Vec<u8>> {
    let s = s.unwrap_or("ctrl-p,ctrl-q");
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for k in s.split(',') {
        let lower = k.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => bail!("--detach-keys: invalid key sequence: {s:?}"),
            };
            out.push(b);
        } else if k.len() == 1 {
            out.push(k.as_bytes()[0]);
        } else {
            bail!("--detach-keys: invalid key sequence: {s:?}");
        }
    }
    Ok(out)
}

fn send(sock: &mut UnixStream, kind: u8, data: &[u8]) -> bool {
    sock.write_all(&proto::frame(kind, data)).is_ok()
}

fn winsize_frame() -> Option<Vec<u8>> {
    let (r, c) = crate::sys::get_winsize(io::stdin().as_fd()).ok()?;
    Some(format!("{r} {c}").into_bytes())
}

/// Restores the terminal on drop.
struct Raw(Option<nix::sys::termios::Termios>);

impl Raw {
    fn new(on: bool) -> Raw {
        if !on {
            return Raw(None);
        }
        let fd = io::stdin();
        let Ok(saved) = nix::sys::termios::tcgetattr(fd.as_fd()) else {
            return Raw(None);
        };
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ = nix::sys::termios::tcsetattr(fd.as_fd(), nix::sys::termios::SetArg::TCSANOW, &raw);
        Raw(Some(saved))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                io::stdin().as_fd(),
                nix::sys::termios::SetArg::TCSANOW,
                t,
            );
        }
    }
}

/// Connects to the monitor at `socket` and asks to attach.
pub(crate) fn connect(socket: &std::path::Path, o: &Options) -> Result<UnixStream> {
    proto::request(
        socket,
        &Request::Attach {
            stdin: o.stdin,
            stdout: o.stdout,
            stderr: o.stderr,
        },
    )
    .ok_or_else(|| anyhow!("the container is not running"))
}

/// Streams until the container exits or we detach.
pub(crate) fn run_attached(mut sock: UnixStream, o: &Options) -> Result<End> {
    let stdin_tty = nix::unistd::isatty(io::stdin().as_fd()).unwrap_or(false);
    let _raw = Raw::new(o.tty && o.stdin && stdin_tty);
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGWINCH);
    let proxy = o.sig_proxy && !o.tty;
    if proxy {
        for s in PROXIED {
            mask.add(*s);
        }
    }
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    if o.tty && stdin_tty {
        if let Some(ws) = winsize_frame() {
            send(&mut sock, proto::RESIZE, &ws);
        }
    }
    let mut stdin_open = o.stdin;
    let mut inbuf: Vec<u8> = Vec::new();
    // How much of the detach sequence has been typed (held back until it is complete or
    // broken, as Docker does).
    let mut matched = 0usize;
    let stdin = io::stdin();
    let mut out = io::stdout();
    let mut err = io::stderr();
    loop {
        let mut fds = vec![
            PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
        ];
        if stdin_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => bail!("poll: {}", e.desc()),
        }
        let rev: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        if !rev[1].is_empty() {
            while let Ok(Some(info)) = sfd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGWINCH {
                    if let Some(ws) = winsize_frame() {
                        send(&mut sock, proto::RESIZE, &ws);
                    }
                } else if proxy {
                    send(&mut sock, proto::SIGNAL, sig.to_string().as_bytes());
                }
            }
        }
        if stdin_open && !rev[2].is_empty() {
            let mut buf = [0u8; 4096];
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    send(&mut sock, proto::STDIN_CLOSE, b"");
                }
                Ok(n) => {
                    let mut pass = Vec::with_capacity(n);
                    for &b in &buf[..n] {
                        if !o.detach_keys.is_empty() && b == o.detach_keys[matched] {
                            matched += 1;
                            if matched == o.detach_keys.len() {
                                return Ok(End::Detached);
                            }
                            continue;
                        }
                        if matched > 0 {
                            pass.extend_from_slice(&o.detach_keys[..matched]);
                            matched = 0;
                        }
                        pass.push(b);
                    }
                    if !pass.is_empty() {
                        send(&mut sock, proto::STDIN, &pass);
                    }
                }
            }
        }
        if !rev[0].is_empty() {
            let mut buf = [0u8; 32768];
            match sock.read(&mut buf) {
                Ok(0) | Err(_) => return Ok(End::Lost),
                Ok(n) => inbuf.extend_from_slice(&buf[..n]),
            }
            for (kind, data) in proto::take_frames(&mut inbuf) {
                match kind {
                    proto::STDOUT => {
                        let _ = out.write_all(&data);
                        let _ = out.flush();
                    }
                    proto::STDERR => {
                        let _ = err.write_all(&data);
                        let _ = err.flush();
                    }
                    proto::EXIT => {
                        let code = String::from_utf8_lossy(&data).trim().parse().unwrap_or(255);
                        return Ok(End::Exited(code));
                    }
                    _ => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys() {
        assert_eq!(parse_detach_keys(None).unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys(Some("ctrl-a,x")).unwrap(), [1, b'x']);
        assert!(parse_detach_keys(Some("ctrl-ab")).is_err());
        assert!(parse_detach_keys(Some("xy")).is_err());
    }
}
