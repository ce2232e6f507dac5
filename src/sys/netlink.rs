//! A small rtnetlink client: just what a bridge network needs (make a bridge and veth
//! pairs, move a peer into another network namespace, set addresses, routes, MTU, master,
//! up; delete links). Hand-written over nix's netlink sockets rather than
//! `netlink-packet-route` + `netlink-sys`: these are a dozen fixed-layout messages, and the
//! crates bring ~10k lines of message types (and their share of the binary) for them.
//! No `unsafe`: messages are built and parsed as bytes.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const RTM_SETLINK: u16 = 19;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;

const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_NUM_TX_QUEUES: u16 = 31;
const IFLA_NUM_RX_QUEUES: u16 = 32;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFLA_PROTINFO: u16 = 12;
const IFLA_BRPORT_MODE: u16 = 4;
const AF_BRIDGE: u8 = 7;
const NLA_F_NESTED: u16 = 0x8000;

const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;

const RTA_GATEWAY: u16 = 5;
const RTA_OIF: u16 = 4;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
/// No duplicate address detection: the address is usable at once (Docker's too).
const IFA_F_NODAD: u8 = 0x02;
const IFF_UP: u32 = 1;

/// An rtnetlink socket bound to the network namespace it was opened in.
pub(crate) struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

/// A request under construction: header, fixed part, attributes (nests patched on close).
struct Msg {
    buf: Vec<u8>,
    nests: Vec<usize>,
}

impl Msg {
    fn new(kind: u16, flags: u16) -> Msg {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&0u32.to_ne_bytes());
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // seq, set on send
        buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        Msg {
            buf,
            nests: Vec::new(),
        }
    }

    fn ifinfo(mut self, index: u32, flags: u32, change: u32) -> Msg {
        push_ifinfo(&mut self.buf, index, flags, change);
        self
    }

    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Msg {
        let len = 4 + data.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
        self
    }

    fn attr_u32(&mut self, kind: u16, v: u32) -> &mut Msg {
        self.attr(kind, &v.to_ne_bytes())
    }

    fn attr_str(&mut self, kind: u16, s: &str) -> &mut Msg {
        let mut d = s.as_bytes().to_vec();
        d.push(0);
        self.attr(kind, &d)
    }

    fn begin(&mut self, kind: u16) -> &mut Msg {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    fn end(&mut self) -> &mut Msg {
        let at = self.nests.pop().expect("nest opened");
        let len = (self.buf.len() - at) as u16;
        self.buf[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

fn push_ifinfo(buf: &mut Vec<u8>, index: u32, flags: u32, change: u32) {
    buf.push(0); // AF_UNSPEC
    buf.push(0);
    buf.extend_from_slice(&0u16.to_ne_bytes()); // type
    buf.extend_from_slice(&index.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&change.to_ne_bytes());
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A peer for [`Netlink::add_veth`]: its name, namespace (by fd) and MAC address.
pub(crate) struct Peer<'a> {
    pub(crate) name: &'a str,
    pub(crate) netns: BorrowedFd<'a>,
    pub(crate) mac: [u8; 6],
}

impl Netlink {
    /// A socket in our own network namespace.
    pub(crate) fn open() -> nix::Result<Netlink> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(Netlink { fd, seq: 1 })
    }

    /// A socket in the network namespace `netns` (sockets stay in the namespace they were
    /// made in): opened by a short-lived thread that joins it, so this thread never moves.
    pub(crate) fn open_in(netns: BorrowedFd) -> nix::Result<Netlink> {
        let ns = netns.try_clone_to_owned().map_err(|_| Errno::EMFILE)?;
        std::thread::scope(|s| {
            s.spawn(move || {
                nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)?;
                Netlink::open()
            })
            .join()
            .unwrap_or(Err(Errno::EIO))
        })
    }

    /// Sends one request and waits for its acknowledgement; with `reply`, the first
    /// non-error message is returned instead.
    fn call(&mut self, mut m: Msg, want_reply: bool) -> nix::Result<Option<Vec<u8>>> {
        let len = m.buf.len() as u32;
        m.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        m.buf[8..12].copy_from_slice(&seq.to_ne_bytes());
        sendto(
            self.fd.as_raw_fd(),
            &m.buf,
            &NetlinkAddr::new(0, 0),
            MsgFlags::empty(),
        )?;
        let mut got: Option<Vec<u8>> = None;
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = recv(self.fd.as_raw_fd(), &mut buf, MsgFlags::empty())?;
            let mut at = 0;
            while at + 16 <= n {
                let mlen = u32_at(&buf, at) as usize;
                let kind = u16_at(&buf, at + 4);
                let mseq = u32_at(&buf, at + 8);
                if mlen < 16 || at + mlen > n {
                    return Err(Errno::EBADMSG);
                }
                if mseq == seq {
                    match kind {
                        NLMSG_ERROR => {
                            let code = i32::from_ne_bytes(
                                buf[at + 16..at + 20]
                                    .try_into()
                                    .map_err(|_| Errno::EBADMSG)?,
                            );
                            if code != 0 {
                                return Err(Errno::from_raw(-code));
                            }
                            return Ok(got);
                        }
                        NLMSG_DONE => return Ok(got),
                        _ if want_reply && got.is_none() => {
                            got = Some(buf[at..at + mlen].to_vec());
                        }
                        _ => {}
                    }
                }
                at += (mlen + 3) & !3;
            }
        }
    }

    /// The index of link `name`, if it exists.
    pub(crate) fn index(&mut self, name: &str) -> nix::Result<Option<u32>> {
        let mut m = Msg::new(RTM_GETLINK, 0).ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        match self.call(m, true) {
            Ok(Some(reply)) if reply.len() >= 32 => Ok(Some(u32_at(&reply, 20))),
            Ok(_) => Err(Errno::EBADMSG),
            Err(Errno::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Makes a bridge (EEXIST when it is there).
    pub(crate) fn add_bridge(&mut self, name: &str, mtu: u32) -> nix::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL).ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name).attr_u32(IFLA_MTU, mtu);
        m.begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "bridge")
            .end();
        self.call(m, false).map(drop)
    }

    /// Makes a veth pair: `name` here, `peer` made directly in its namespace. One queue
    /// each way, asked for: a veth made with the kernel's default (a queue per possible
    /// CPU) is cut down to one at once, each end behind an expedited RCU grace period.
    pub(crate) fn add_veth(&mut self, name: &str, mtu: u32, peer: &Peer) -> nix::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL).ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, name)
            .attr_u32(IFLA_MTU, mtu)
            .attr_u32(IFLA_NUM_TX_QUEUES, 1)
            .attr_u32(IFLA_NUM_RX_QUEUES, 1);
        m.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "veth");
        m.begin(IFLA_INFO_DATA).begin(VETH_INFO_PEER);
        push_ifinfo(&mut m.buf, 0, 0, 0);
        m.attr_str(IFLA_IFNAME, peer.name)
            .attr_u32(IFLA_MTU, mtu)
            .attr_u32(IFLA_NUM_TX_QUEUES, 1)
            .attr_u32(IFLA_NUM_RX_QUEUES, 1)
            .attr(IFLA_ADDRESS, &peer.mac)
            .attr_u32(IFLA_NET_NS_FD, peer.netns.as_raw_fd() as u32);
        m.end().end().end();
        self.call(m, false).map(drop)
    }

    /// Sets the link up, and its master when given.
    pub(crate) fn set_up(&mut self, index: u32, master: Option<u32>) -> nix::Result<()> {
        let mut m = Msg::new(RTM_NEWLINK, 0).ifinfo(index, IFF_UP, IFF_UP);
        if let Some(b) = master {
            m.attr_u32(IFLA_MASTER, b);
        }
        self.call(m, false).map(drop)
    }

    /// Lets a bridge port send frames back where they came from: with br_netfilter, a
    /// container's packet to its own published port is DNATed inside the bridge and must
    /// leave by the port it entered.
    pub(crate) fn set_hairpin(&mut self, index: u32) -> nix::Result<()> {
        let mut m = Msg::new(RTM_SETLINK, 0).ifinfo(index, 0, 0);
        m.buf[16] = AF_BRIDGE;
        m.begin(IFLA_PROTINFO).attr(IFLA_BRPORT_MODE, &[1]).end();
        self.call(m, false).map(drop)
    }

    /// Removes a link (ENODEV when it is gone already).
    pub(crate) fn delete(&mut self, index: u32) -> nix::Result<()> {
        let m = Msg::new(RTM_DELLINK, 0).ifinfo(index, 0, 0);
        self.call(m, false).map(drop)
    }

    /// Takes the link down and renames it, so that its name is free at once (a link can
    /// be renamed only while down).
    pub(crate) fn retire(&mut self, index: u32, name: &str) -> nix::Result<()> {
        let m = Msg::new(RTM_NEWLINK, 0).ifinfo(index, 0, IFF_UP);
        self.call(m, false)?;
        let mut m = Msg::new(RTM_NEWLINK, 0).ifinfo(index, 0, 0);
        m.attr_str(IFLA_IFNAME, name);
        self.call(m, false).map(drop)
    }

    /// Removes the links `indexes` from a detached process: the kernel makes whoever
    /// deletes a network device wait for an RCU grace period (~20-50 ms per request),
    /// which no command needs to wait for once the links are down, renamed or unreachable.
    pub(crate) fn delete_in_background(indexes: &[u32]) -> nix::Result<()> {
        if indexes.is_empty() {
            return Ok(());
        }
        // One write: the requests are made by one process, one after the other.
        let sock = Netlink::open()?;
        let mut buf = Vec::new();
        for (k, i) in indexes.iter().enumerate() {
            let mut m = Msg::new(RTM_DELLINK, 0).ifinfo(*i, 0, 0);
            let len = m.buf.len() as u32;
            m.buf[0..4].copy_from_slice(&len.to_ne_bytes());
            m.buf[8..12].copy_from_slice(&(k as u32 + 1).to_ne_bytes());
            buf.extend_from_slice(&m.buf);
        }
        crate::sys::spawn_sender(sock.fd.as_fd(), &buf)
    }

    /// Adds `addr/prefix` to the link (EEXIST when it has it).
    pub(crate) fn add_address(
        &mut self,
        index: u32,
        addr: Ipv4Addr,
        prefix: u8,
        broadcast: Ipv4Addr,
    ) -> nix::Result<()> {
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        m.buf.extend_from_slice(&[AF_INET, prefix, 0, 0]);
        m.buf.extend_from_slice(&index.to_ne_bytes());
        m.attr(IFA_LOCAL, &addr.octets())
            .attr(IFA_ADDRESS, &addr.octets())
            .attr(IFA_BROADCAST, &broadcast.octets());
        self.call(m, false).map(drop)
    }

    /// Adds the default route through `gateway` on the link.
    pub(crate) fn add_default_route(&mut self, index: u32, gateway: Ipv4Addr) -> nix::Result<()> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        // family, dst_len, src_len, tos, table main, protocol boot, scope universe, unicast
        m.buf.extend_from_slice(&[AF_INET, 0, 0, 0, 254, 3, 0, 1]);
        m.buf.extend_from_slice(&0u32.to_ne_bytes());
        m.attr(RTA_GATEWAY, &gateway.octets())
            .attr_u32(RTA_OIF, index);
        self.call(m, false).map(drop)
    }

    /// Adds the IPv6 `addr/prefix` to the link, usable at once (EEXIST when it has it).
    pub(crate) fn add_address6(
        &mut self,
        index: u32,
        addr: Ipv6Addr,
        prefix: u8,
    ) -> nix::Result<()> {
        let mut m = Msg::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        m.buf.extend_from_slice(&[AF_INET6, prefix, IFA_F_NODAD, 0]);
        m.buf.extend_from_slice(&index.to_ne_bytes());
        m.attr(IFA_LOCAL, &addr.octets())
            .attr(IFA_ADDRESS, &addr.octets());
        self.call(m, false).map(drop)
    }

    /// Adds the IPv6 default route through `gateway` on the link.
    pub(crate) fn add_default_route6(&mut self, index: u32, gateway: Ipv6Addr) -> nix::Result<()> {
        let mut m = Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        m.buf.extend_from_slice(&[AF_INET6, 0, 0, 0, 254, 3, 0, 1]);
        m.buf.extend_from_slice(&0u32.to_ne_bytes());
        m.attr(RTA_GATEWAY, &gateway.octets())
            .attr_u32(RTA_OIF, index);
        self.call(m, false).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_carry_their_length() {
        let mut m = Msg::new(RTM_NEWLINK, 0).ifinfo(0, 0, 0);
        m.begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "veth")
            .end();
        // header 16 + ifinfo 16 + nest header 4 + "veth\0" attr 4+5 padded to 12
        assert_eq!(m.buf.len(), 16 + 16 + 4 + 12);
        assert_eq!(u16_at(&m.buf, 32), 16);
        assert_eq!(u16_at(&m.buf, 34), IFLA_LINKINFO | NLA_F_NESTED);
        assert_eq!(u16_at(&m.buf, 36), 9);
    }
}
