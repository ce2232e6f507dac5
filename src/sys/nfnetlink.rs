//! An nfnetlink (NETLINK_NETFILTER) client for nf_tables transactions: a batch of messages
//! framed by NFNL_MSG_BATCH_BEGIN/END, sent in one datagram, which the kernel applies whole
//! or not at all. Byte-level like netlink.rs (no `unsafe`): what the messages say is the
//! caller's business; this file frames them, sends them and reads the errors back.

use std::os::fd::AsRawFd;

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, sendto, setsockopt, socket, sockopt, AddressFamily, MsgFlags, NetlinkAddr,
    SockFlag, SockProtocol, SockType,
};

const NLMSG_ERROR: u16 = 2;
const NLMSG_MIN_TYPE: u16 = 0x10;
const NFNL_MSG_BATCH_BEGIN: u16 = NLMSG_MIN_TYPE;
const NFNL_MSG_BATCH_END: u16 = NLMSG_MIN_TYPE + 1;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NLM_F_REQUEST: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;

/// The messages of one nf_tables transaction under construction. Message 0 is the batch's
/// begin; [`Batch::msg`] returns the index the errors of [`send`] name.
pub(crate) struct Batch {
    buf: Vec<u8>,
    /// Offset of the message being written (its length is patched when the next starts).
    cur: usize,
    nests: Vec<usize>,
    count: u32,
}

impl Batch {
    pub(crate) fn new() -> Batch {
        let mut b = Batch {
            buf: Vec::with_capacity(4096),
            cur: 0,
            nests: Vec::new(),
            count: 0,
        };
        b.header(NFNL_MSG_BATCH_BEGIN, 0, 0, NFNL_SUBSYS_NFTABLES);
        b
    }

    /// Starts nf_tables message `kind` (NFT_MSG_*) for address family `family` (NFPROTO_*).
    pub(crate) fn msg(&mut self, kind: u16, family: u8, flags: u16) -> usize {
        self.header((NFNL_SUBSYS_NFTABLES << 8) | kind, flags, family, 0);
        self.count as usize - 1
    }

    fn header(&mut self, kind: u16, flags: u16, family: u8, res_id: u16) {
        self.close();
        self.cur = self.buf.len();
        let seq = self.count;
        self.count += 1;
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf
            .extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes());
        // nfgenmsg: family, version NFNETLINK_V0, resource id (big-endian)
        self.buf.extend_from_slice(&[family, 0]);
        self.buf.extend_from_slice(&res_id.to_be_bytes());
    }

    fn close(&mut self) {
        debug_assert!(self.nests.is_empty(), "nest left open");
        if self.count > 0 {
            let len = (self.buf.len() - self.cur) as u32;
            self.buf[self.cur..self.cur + 4].copy_from_slice(&len.to_ne_bytes());
        }
    }

    pub(crate) fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Batch {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
        self
    }

    /// nf_tables' integers are big-endian.
    pub(crate) fn attr_be32(&mut self, kind: u16, v: u32) -> &mut Batch {
        self.attr(kind, &v.to_be_bytes())
    }

    pub(crate) fn attr_str(&mut self, kind: u16, s: &str) -> &mut Batch {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(kind, &d)
    }

    pub(crate) fn begin(&mut self, kind: u16) -> &mut Batch {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    pub(crate) fn end(&mut self) -> &mut Batch {
        let at = self.nests.pop().expect("nest opened");
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// The datagram: the messages and the batch's end.
    fn finish(mut self) -> Vec<u8> {
        self.header(NFNL_MSG_BATCH_END, 0, 0, NFNL_SUBSYS_NFTABLES);
        self.close();
        self.buf
    }
}

/// Why a batch failed: the errno, and the index of the message it names (0: the batch as
/// a whole, e.g. nf_tables missing or the commit refused; None: the socket itself).
#[derive(Debug)]
pub(crate) struct BatchError {
    pub(crate) errno: Errno,
    pub(crate) msg: Option<usize>,
}

fn sock_err(errno: Errno) -> BatchError {
    BatchError { errno, msg: None }
}

/// Sends the batch in the calling thread's network namespace and returns its first error.
/// The kernel processes a datagram sent to it before `sendto` returns (that is how `nft`
/// reads its errors too), so everything it has to say is queued by then: no message acks
/// are asked for, and an empty queue means the transaction is committed.
pub(crate) fn send(batch: Batch) -> Result<(), BatchError> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkNetFilter,
    )
    .map_err(sock_err)?;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0)).map_err(sock_err)?;
    let data = batch.finish();
    // A large ruleset must fit the send buffer in one datagram (nft raises it likewise);
    // the forced size needs privilege the rootless namespace does not have.
    if data.len() > 64 * 1024 {
        let want = data.len() * 2;
        if setsockopt(&fd, sockopt::SndBufForce, &want).is_err() {
            let _ = setsockopt(&fd, sockopt::SndBuf, &want);
        }
    }
    sendto(
        fd.as_raw_fd(),
        &data,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .map_err(sock_err)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut first: Option<BatchError> = None;
    loop {
        let n = match recv(fd.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
            Ok(0) | Err(Errno::EAGAIN) => break,
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(first.unwrap_or(sock_err(e))),
        };
        for (kind, seq, payload) in messages(&buf[..n]) {
            if kind != NLMSG_ERROR || payload.len() < 4 {
                continue;
            }
            let code = i32::from_ne_bytes([payload[0], payload[1], payload[2], payload[3]]);
            if code != 0 && first.is_none() {
                first = Some(BatchError {
                    errno: Errno::from_raw(-code),
                    msg: Some(seq as usize),
                });
            }
        }
    }
    // The last close of an nfnetlink socket waits for the kernel to free what the
    // transactions before it replaced, after an RCU grace period (nf_tables flushes its
    // destroy work on NETLINK_URELEASE, holding the mutex every transaction takes):
    // 8-16 ms here, that neither this container's start or stop nor the next one's
    // transaction need wait for. A process of its own closes it once the kernel has
    // freed them by itself (if it cannot be made, the socket is closed here, waiting).
    let _ = crate::sys::close_in_background(fd, std::time::Duration::from_millis(250));
    first.map_or(Ok(()), Err)
}

/// The (type, sequence, payload) of each netlink message in a datagram.
fn messages(b: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 16 <= b.len() {
        let len = u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
        if len < 16 || at + len > b.len() {
            break;
        }
        let kind = u16::from_ne_bytes([b[at + 4], b[at + 5]]);
        let seq = u32::from_ne_bytes([b[at + 8], b[at + 9], b[at + 10], b[at + 11]]);
        out.push((kind, seq, &b[at + 16..at + len]));
        at += (len + 3) & !3;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_is_framed_and_numbered() {
        let mut b = Batch::new();
        assert_eq!(b.msg(0, 2, 0), 1);
        b.attr_str(1, "t");
        b.begin(4).attr_be32(1, 3).end();
        let data = b.finish();
        let m = messages(&data);
        assert_eq!(m.len(), 3);
        assert_eq!((m[0].0, m[0].1), (NFNL_MSG_BATCH_BEGIN, 0));
        assert_eq!(m[0].2, &[0, 0, 0, 10]);
        assert_eq!((m[1].0, m[1].1), (NFNL_SUBSYS_NFTABLES << 8, 1));
        // nfgenmsg 4 + "t\0" attr 8 + nest 4 + u32 attr 8
        assert_eq!(m[1].2.len(), 4 + 8 + 12);
        assert_eq!(&m[1].2[12..16], &[12, 0, 4, 0x80]);
        assert_eq!(&m[1].2[20..24], &[0, 0, 0, 3]);
        assert_eq!((m[2].0, m[2].1), (NFNL_MSG_BATCH_END, 2));
    }
}
