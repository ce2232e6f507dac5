//! journald's native protocol (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/): one datagram
//! of fields per message, or a sealed memfd passed by SCM_RIGHTS when it is too big for a
//! datagram. Fields as conmon writes them, so `journalctl CONTAINER_NAME=x` works alike.

use std::io::{IoSlice, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};

use super::{LogOptions, Stream};

pub(crate) const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

pub(super) struct Journal {
    sock: UnixDatagram,
    dest: PathBuf,
    /// The fields every message carries, serialised once.
    fixed: Vec<u8>,
    /// Per stream: the last message was a piece of a line, so the next one continues it.
    mid_line: [bool; 2],
}

/// `KEY=value\n`, or the binary form when the value holds a newline.
fn field(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    out.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Docker's journald key sanitising: upper case, other characters `_`, no leading `_`.
fn sanitize_key(k: &str) -> String {
    let mut n = String::new();
    for c in k.chars() {
        let c = if c.is_ascii_lowercase() {
            c.to_ascii_uppercase()
        } else if c.is_ascii_uppercase() || c.is_ascii_digit() {
            c
        } else {
            '_'
        };
        if !(n.is_empty() && c == '_') {
            n.push(c);
        }
    }
    n
}

impl Journal {
    pub(super) fn new(dest: &Path, opts: &LogOptions) -> Result<Journal> {
        if std::fs::symlink_metadata(dest).is_err() {
            bail!(
                "journald is not enabled on this host: no {}",
                dest.display()
            );
        }
        if opts.container_id.is_empty() {
            bail!("journald logging needs the container id");
        }
        let sock = UnixDatagram::unbound().context("journald socket")?;
        let short: String = opts.container_id.chars().take(12).collect();
        let mut fixed = Vec::new();
        field(
            &mut fixed,
            "CONTAINER_ID_FULL",
            opts.container_id.as_bytes(),
        );
        field(&mut fixed, "CONTAINER_ID", short.as_bytes());
        if let Some(tag) = &opts.tag {
            field(&mut fixed, "CONTAINER_TAG", tag.as_bytes());
        }
        if !opts.container_name.is_empty() {
            field(&mut fixed, "CONTAINER_NAME", opts.container_name.as_bytes());
        }
        let ident = opts
            .tag
            .clone()
            .or_else(|| (!opts.container_name.is_empty()).then(|| opts.container_name.clone()))
            .unwrap_or(short);
        field(&mut fixed, "SYSLOG_IDENTIFIER", ident.as_bytes());
        for (k, v) in &opts.attrs {
            let key = sanitize_key(k);
            if !key.is_empty() {
                field(&mut fixed, &key, v.as_bytes());
            }
        }
        Ok(Journal {
            sock,
            dest: dest.to_path_buf(),
            fixed,
            mid_line: [false, false],
        })
    }

    pub(super) fn send(&mut self, stream: Stream, line: &[u8], partial: bool) -> Result<()> {
        let i = stream.idx();
        let mut priority = if stream == Stream::Stderr { b'3' } else { b'6' };
        let mut msg = line;
        // sd-daemon's "<N>" prefix sets the priority of a line.
        if !self.mid_line[i]
            && line.len() >= 3
            && line[0] == b'<'
            && (b'0'..=b'7').contains(&line[1])
            && line[2] == b'>'
        {
            priority = line[1];
            msg = &line[3..];
        }
        self.mid_line[i] = partial;
        let mut payload = Vec::with_capacity(msg.len() + self.fixed.len() + 64);
        field(&mut payload, "MESSAGE", msg);
        field(&mut payload, "PRIORITY", &[priority]);
        payload.extend_from_slice(&self.fixed);
        if partial {
            field(&mut payload, "CONTAINER_PARTIAL_MESSAGE", b"true");
        }
        match self.sock.send_to(&payload, &self.dest) {
            Ok(_) => Ok(()),
            Err(e)
                if matches!(
                    Errno::from_raw(e.raw_os_error().unwrap_or(0)),
                    Errno::EMSGSIZE | Errno::ENOBUFS
                ) =>
            {
                self.send_memfd(&payload)
            }
            Err(e) => {
                Err(e).with_context(|| format!("sending to journald at {}", self.dest.display()))
            }
        }
    }

    /// Too big for a datagram: the payload in a sealed memfd, passed by SCM_RIGHTS.
    fn send_memfd(&self, payload: &[u8]) -> Result<()> {
        let fd = memfd_create(
            c"berth-journal",
            MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
        )
        .context("memfd for a large journal entry")?;
        let mut f = std::fs::File::from(fd);
        f.write_all(payload)
            .context("memfd for a large journal entry")?;
        fcntl(&f, FcntlArg::F_ADD_SEALS(SealFlag::all())).context("sealing the journal memfd")?;
        let addr = UnixAddr::new(&self.dest).context("journald socket address")?;
        let fds = [f.as_raw_fd()];
        sendmsg(
            self.sock.as_raw_fd(),
            &[IoSlice::new(&[])],
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            Some(&addr),
        )
        .with_context(|| format!("sending to journald at {}", self.dest.display()))?;
        Ok(())
    }
}
