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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::logs::writer::LogWriter;
    use crate::front::logs::{Driver, TestDir};
    use std::collections::BTreeMap;
    use std::io::{IoSliceMut, Read};
    use std::time::{Duration, SystemTime};

    /// The native protocol's fields, in order.
    fn parse(mut p: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        while !p.is_empty() {
            let end = p.iter().position(|&b| b == b'=' || b == b'\n').unwrap();
            let key = String::from_utf8(p[..end].to_vec()).unwrap();
            if p[end] == b'=' {
                let nl = p[end..].iter().position(|&b| b == b'\n').unwrap() + end;
                out.push((key, p[end + 1..nl].to_vec()));
                p = &p[nl + 1..];
            } else {
                let len = u64::from_le_bytes(p[end + 1..end + 9].try_into().unwrap()) as usize;
                let v = p[end + 9..end + 9 + len].to_vec();
                assert_eq!(p[end + 9 + len], b'\n');
                out.push((key, v));
                p = &p[end + 10 + len..];
            }
        }
        out
    }

    fn get<'a>(f: &'a [(String, Vec<u8>)], k: &str) -> Option<&'a str> {
        f.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| std::str::from_utf8(v).unwrap())
    }

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn messages_carry_conmons_fields() {
        let d = TestDir::new("journal");
        let sock_path = d.0.join("socket");
        let server = UnixDatagram::bind(&sock_path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let opts = LogOptions {
            container_id: ID.into(),
            container_name: "web".into(),
            attrs: BTreeMap::from([("com.example-x".to_string(), "v".to_string())]),
            ..LogOptions::default()
        };
        let mut w = LogWriter::new(Driver::Journald, &sock_path, &opts).unwrap();
        let now = SystemTime::now();
        w.write(Stream::Stdout, b"hello\n<3>warn\nno-nl", now)
            .unwrap();
        w.write(Stream::Stderr, b"oops\n", now).unwrap();
        w.close(now).unwrap();
        let mut msgs = Vec::new();
        let mut buf = vec![0u8; 65536];
        for _ in 0..4 {
            let n = server.recv(&mut buf).unwrap();
            msgs.push(parse(&buf[..n]));
        }
        let m = &msgs[0];
        assert_eq!(get(m, "MESSAGE"), Some("hello"));
        assert_eq!(get(m, "PRIORITY"), Some("6"));
        assert_eq!(get(m, "CONTAINER_ID_FULL"), Some(ID));
        assert_eq!(get(m, "CONTAINER_ID"), Some(&ID[..12]));
        assert_eq!(get(m, "CONTAINER_NAME"), Some("web"));
        assert_eq!(get(m, "SYSLOG_IDENTIFIER"), Some("web"));
        assert_eq!(get(m, "COM_EXAMPLE_X"), Some("v"));
        assert_eq!(get(m, "CONTAINER_PARTIAL_MESSAGE"), None);
        assert_eq!(
            (get(&msgs[1], "MESSAGE"), get(&msgs[1], "PRIORITY")),
            (Some("warn"), Some("3"))
        );
        assert_eq!(
            (get(&msgs[2], "MESSAGE"), get(&msgs[2], "PRIORITY")),
            (Some("oops"), Some("3"))
        );
        assert_eq!(get(&msgs[3], "MESSAGE"), Some("no-nl"));
        assert_eq!(get(&msgs[3], "CONTAINER_PARTIAL_MESSAGE"), Some("true"));

        // A tag wins for SYSLOG_IDENTIFIER; without a name the short id is used.
        let tagged = LogOptions {
            container_id: ID.into(),
            tag: Some("t1".into()),
            ..LogOptions::default()
        };
        let mut w = LogWriter::new(Driver::Journald, &sock_path, &tagged).unwrap();
        w.write(Stream::Stdout, b"x\n", now).unwrap();
        let n = server.recv(&mut buf).unwrap();
        let m = parse(&buf[..n]);
        assert_eq!(
            (
                get(&m, "SYSLOG_IDENTIFIER"),
                get(&m, "CONTAINER_TAG"),
                get(&m, "CONTAINER_NAME")
            ),
            (Some("t1"), Some("t1"), None)
        );
        let bare = LogOptions {
            container_id: ID.into(),
            ..LogOptions::default()
        };
        let mut w = LogWriter::new(Driver::Journald, &sock_path, &bare).unwrap();
        w.write(Stream::Stdout, b"x\n", now).unwrap();
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(get(&parse(&buf[..n]), "SYSLOG_IDENTIFIER"), Some(&ID[..12]));

        let e = LogWriter::new(Driver::Journald, &d.0.join("nope"), &bare)
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("journald is not enabled on this host"),
            "{e}"
        );
    }

    #[test]
    fn values_with_newlines_use_the_binary_form() {
        let mut out = Vec::new();
        field(&mut out, "A", b"x\ny");
        field(&mut out, "B", b"z");
        assert_eq!(out, b"A\n\x03\0\0\0\0\0\0\0x\ny\nB=z\n");
        assert_eq!(
            parse(&out),
            vec![("A".into(), b"x\ny".to_vec()), ("B".into(), b"z".to_vec())]
        );
        assert_eq!(sanitize_key("_com.example-x9"), "COM_EXAMPLE_X9");
    }

    #[test]
    fn big_entries_go_through_a_sealed_memfd() {
        let d = TestDir::new("journal-memfd");
        let sock_path = d.0.join("socket");
        let server = UnixDatagram::bind(&sock_path).unwrap();
        server
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let j = Journal::new(
            &sock_path,
            &LogOptions {
                container_id: ID.into(),
                ..LogOptions::default()
            },
        )
        .unwrap();
        let payload = b"MESSAGE=big\n".repeat(50_000);
        j.send_memfd(&payload).unwrap();
        let mut data = [0u8; 16];
        let mut iov = [IoSliceMut::new(&mut data)];
        let mut cmsg = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = nix::sys::socket::recvmsg::<()>(
            server.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        )
        .unwrap();
        let fd = msg
            .cmsgs()
            .unwrap()
            .find_map(|c| match c {
                nix::sys::socket::ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
                _ => None,
            })
            .expect("an fd");
        // The fd just arrived by SCM_RIGHTS: nothing else owns it.
        let mut f = std::fs::File::from(crate::sys::adopt_fd(fd));
        let seals = fcntl(&f, FcntlArg::F_GET_SEALS).unwrap();
        assert_eq!(SealFlag::from_bits_truncate(seals), SealFlag::all());
        // The sender's file offset is shared; journald maps the memfd from its start.
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).unwrap();
        let mut got = Vec::new();
        f.read_to_end(&mut got).unwrap();
        assert!(got == payload);
    }
}
