//! The monitor's control socket (`RUNROOT/containers/<id>/ctl.sock`): a client sends one
//! JSON request line, then (for attach) frames both ways.
//!
//! Frames are `[kind: u8][len: u32 big-endian][payload]`. Monitor to client: stdout,
//! stderr, exit (payload: the decimal exit status, sent once the container's end is
//! recorded). Client to monitor: stdin bytes, stdin close, resize (`"ROWS COLS"`), a
//! signal for the container's process (`--sig-proxy`, the decimal number).
//! A client that only waits (stop, wait) reads until EOF: the monitor closes every
//! connection when it exits, after the container's state is final.

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use serde::{Deserialize, Serialize};

pub(crate) const STDIN: u8 = 0;
pub(crate) const STDOUT: u8 = 1;
pub(crate) const STDERR: u8 = 2;
pub(crate) const EXIT: u8 = 3;
pub(crate) const STDIN_CLOSE: u8 = 5;
pub(crate) const RESIZE: u8 = 6;
pub(crate) const SIGNAL: u8 = 7;

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(tag = "op", rename_all = "lowercase")]
pub(crate) enum Request {
    /// Stream the container's output (and take its input).
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
    },
    /// Run the stop sequence: `signal`, then SIGKILL of the cgroup after `timeout`
    /// seconds (negative: never).
    Stop { signal: i32, timeout: i64 },
    /// Only wait for the monitor's end.
    Wait,
}

pub(crate) fn frame(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + data.len());
    v.push(kind);
    v.extend_from_slice(&(data.len() as u32).to_be_bytes());
    v.extend_from_slice(data);
    v
}

/// Splits whole frames off the front of `buf`.
pub(crate) fn take_frames(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut out = Vec::new();
    let mut off = 0;
    while buf.len() - off >= 5 {
        let len =
            u32::from_be_bytes([buf[off + 1], buf[off + 2], buf[off + 3], buf[off + 4]]) as usize;
        if buf.len() - off - 5 < len {
            break;
        }
        out.push((buf[off], buf[off + 5..off + 5 + len].to_vec()));
        off += 5 + len;
    }
    buf.drain(..off);
    out
}

/// Unix socket paths are limited to 107 bytes; a long runroot is reached through an fd of
/// its directory (`/proc/self/fd/N/ctl.sock`).
fn via_short_path<T>(path: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    if path.as_os_str().len() < 100 {
        return f(path);
    }
    let dir = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or_default();
    let d = nix::fcntl::open(
        dir,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(io::Error::from)?;
    let short = Path::new("/proc/self/fd")
        .join(d.as_raw_fd().to_string())
        .join(name);
    f(&short)
}

pub(crate) fn listen(path: &Path) -> io::Result<UnixListener> {
    let _ = std::fs::remove_file(path);
    let l = via_short_path(path, |p| UnixListener::bind(p))?;
    l.set_nonblocking(true)?;
    Ok(l)
}

pub(crate) fn connect(path: &Path) -> io::Result<UnixStream> {
    via_short_path(path, |p| UnixStream::connect(p))
}

/// Connects and sends `req`; None when no monitor listens (it is gone).
pub(crate) fn request(path: &Path, req: &Request) -> Option<UnixStream> {
    let mut s = connect(path).ok()?;
    let mut line = crate::sys::json::to_vec(req).ok()?;
    line.push(b'\n');
    s.write_all(&line).ok()?;
    Some(s)
}

/// Reads until the monitor closes the connection (its end).
pub(crate) fn wait_closed(mut s: UnixStream) {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        }
    }
}

/// The monitor's handshake pipe to the command that started it: JSON lines.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub(crate) struct Handshake {
    /// "created" (waiting for an attach before starting), "started", or "failed".
    pub(crate) phase: String,
    #[serde(default)]
    pub(crate) code: i32,
    #[serde(default)]
    pub(crate) msg: String,
    /// What the user should be told though the container runs (rootless without limits).
    #[serde(default)]
    pub(crate) warnings: Vec<String>,
}

pub(crate) fn send_handshake(fd: &OwnedFd, h: &Handshake) {
    let mut line = crate::sys::json::to_vec(h).unwrap_or_default();
    line.push(b'\n');
    let _ = nix::unistd::write(fd, &line);
}

/// Adopts the inherited handshake fd named in the environment (and clears the variable,
/// which must not reach the container).
pub(crate) fn inherited_fd(var: &str) -> Option<OwnedFd> {
    let n: i32 = std::env::var(var).ok()?.parse().ok()?;
    std::env::remove_var(var);
    if n < 3 || std::fs::symlink_metadata(format!("/proc/self/fd/{n}")).is_err() {
        return None;
    }
    // Inherited on purpose (not close-on-exec) and named to us alone: ours to own.
    let fd = crate::sys::adopt_fd(n);
    let _ = nix::fcntl::fcntl(
        &fd,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    );
    Some(fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_roundtrip_in_pieces() {
        let mut all = frame(STDOUT, b"hello");
        all.extend(frame(EXIT, b"0"));
        let mut buf = all[..7].to_vec();
        assert_eq!(take_frames(&mut buf), []);
        buf.extend_from_slice(&all[7..]);
        assert_eq!(
            take_frames(&mut buf),
            [(STDOUT, b"hello".to_vec()), (EXIT, b"0".to_vec())]
        );
        assert!(buf.is_empty());
        let r: Request = serde_json::from_str(r#"{"op":"stop","signal":15,"timeout":10}"#).unwrap();
        assert!(matches!(
            r,
            Request::Stop {
                signal: 15,
                timeout: 10
            }
        ));
    }
}
