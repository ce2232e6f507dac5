//! The parent <-> child protocol over a SOCK_SEQPACKET pair: ONE table of messages.
//! Children never log; they report failures as `Error` and exit.

use std::os::fd::OwnedFd;

use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub(crate) enum Msg {
    /// parent -> child: cgroups joined (and maps written on the fast path); go on.
    Go,
    /// child -> parent: I have unshared a user namespace; write my id maps.
    MapsRequest,
    /// parent -> child: maps written.
    MapsDone,
    /// child -> parent: the container init is this (grandchild) pid.
    Pid(i32),
    /// child -> parent: seccomp listener loaded as this fd number; fetch it (pidfd_getfd)
    /// and hand it to the listener socket.
    SeccompFd(i32),
    /// parent -> child: the listener has it.
    SeccompDone,
    /// child -> parent: namespaces and mounts are ready, before pivot_root: run the
    /// prestart and createRuntime hooks now.
    Hooks,
    /// parent -> child: hooks done; the container's host pid, for the state the child's
    /// own hooks get (the rest of it the child has from its copy of the parent's memory).
    HooksDone { pid: i32 },
    /// child -> parent: set up, blocked on the exec fifo.
    Ready,
    /// child -> parent: a record of the child's steps for `--debug`, which the parent logs
    /// (as runc forwards its init's log pipe; children never log themselves). Sent only
    /// when debug logging is on.
    Debug(String),
    /// child -> parent: setup failed at `stage`.
    Error {
        stage: String,
        errno: i32,
        message: String,
    },
}

pub(crate) struct Channel(OwnedFd);

const CHUNK: usize = 32 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ChannelError {
    #[error("sync socket: {0}")]
    Sys(nix::errno::Errno),
    #[error("container init exited before reporting")]
    Closed,
    #[error("sync socket: bad message: {0}")]
    Decode(serde_json::Error),
}

impl Channel {
    pub(crate) fn pair() -> nix::Result<(Channel, Channel)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )?;
        Ok((Channel(a), Channel(b)))
    }

    /// Whether the other end is closed (its process died), without blocking.
    pub(crate) fn peer_gone(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        // A closed peer sets both shutdown bits on our side of the pair: POLLHUP, which
        // poll reports without being asked.
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(&self.0),
            PollFlags::empty(),
        )];
        poll(&mut fds, PollTimeout::ZERO).is_ok_and(|_| {
            fds[0]
                .revents()
                .is_some_and(|r| r.contains(PollFlags::POLLHUP))
        })
    }

    /// The socket itself: after the init's last message, the caller keeps it to learn when
    /// the init has exec'd (close-on-exec closes the init's end: POLLHUP here).
    pub(crate) fn into_fd(self) -> OwnedFd {
        self.0
    }

    /// The socket, for the fuzz target that writes raw packets.
    pub(crate) fn raw(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.0)
    }

    /// One message, in packets of at most `CHUNK` bytes: a seqpacket message must fit the
    /// socket buffer, and an error message (a path, a hook's output) can be larger. Each packet
    /// starts with a byte saying whether more follow.
    pub(crate) fn send(&self, m: &Msg) -> Result<(), ChannelError> {
        let data = crate::sys::json::to_vec(m).expect("message serializes");
        let mut chunks = data.chunks(CHUNK).peekable();
        let mut packet = Vec::with_capacity(CHUNK + 1);
        loop {
            let chunk = chunks.next().unwrap_or(&[]);
            let more = chunks.peek().is_some();
            packet.clear();
            packet.push(u8::from(more));
            packet.extend_from_slice(chunk);
            self.send_packet(&packet)?;
            if !more {
                return Ok(());
            }
        }
    }

    fn send_packet(&self, packet: &[u8]) -> Result<(), ChannelError> {
        loop {
            match send(
                std::os::fd::AsRawFd::as_raw_fd(&self.0),
                packet,
                MsgFlags::MSG_NOSIGNAL,
            ) {
                Ok(_) => return Ok(()),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::EPIPE) | Err(nix::errno::Errno::ECONNRESET) => {
                    return Err(ChannelError::Closed)
                }
                Err(e) => return Err(ChannelError::Sys(e)),
            }
        }
    }

    pub(crate) fn recv(&self) -> Result<Msg, ChannelError> {
        let mut buf = vec![0u8; CHUNK + 1];
        let mut data = Vec::new();
        loop {
            match recv(
                std::os::fd::AsRawFd::as_raw_fd(&self.0),
                &mut buf,
                MsgFlags::empty(),
            ) {
                Ok(0) => return Err(ChannelError::Closed),
                Ok(n) => {
                    data.extend_from_slice(&buf[1..n]);
                    if buf[0] == 0 {
                        return serde_json::from_slice(&data).map_err(ChannelError::Decode);
                    }
                }
                Err(nix::errno::Errno::EINTR) => continue,
                Err(nix::errno::Errno::ECONNRESET) => return Err(ChannelError::Closed),
                Err(e) => return Err(ChannelError::Sys(e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_close() {
        let (a, b) = Channel::pair().unwrap();
        a.send(&Msg::Pid(42)).unwrap();
        a.send(&Msg::Error {
            stage: "mounts".into(),
            errno: 2,
            message: "x".into(),
        })
        .unwrap();
        assert_eq!(b.recv().unwrap(), Msg::Pid(42));
        assert!(matches!(b.recv().unwrap(), Msg::Error { errno: 2, .. }));
        drop(a);
        assert!(matches!(b.recv(), Err(ChannelError::Closed)));
    }

    #[test]
    fn messages_larger_than_a_socket_buffer() {
        let (a, b) = Channel::pair().unwrap();
        let big = || Msg::Error {
            stage: "mounts".into(),
            errno: 0,
            message: "x".repeat(1 << 20),
        };
        let sender = std::thread::spawn(move || a.send(&big()).unwrap());
        assert_eq!(b.recv().unwrap(), big());
        sender.join().unwrap();
    }

    #[test]
    fn peer_gone_only_once_the_other_end_is_closed() {
        let (a, b) = Channel::pair().unwrap();
        assert!(!b.peer_gone());
        a.send(&Msg::Go).unwrap();
        assert!(!b.peer_gone(), "a pending message is not a hangup");
        drop(a);
        assert!(b.peer_gone());
    }
}
