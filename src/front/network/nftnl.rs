//! berth's nftables rules as data, and their encoding into nf_tables messages: the same
//! expressions `nft` compiles the rules' text into (checked against `nft` itself by
//! tests/people_nftnl.rs), so that `nft list table` shows what berth means. The text form
//! names a rule in errors (and writes whole tables in the unit tests).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::sys::nfnetlink::Batch;

const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;
const NFTA_VERDICT_CODE: u16 = 1;
const NFTA_VERDICT_CHAIN: u16 = 2;

/// Registers: the verdict and the two 16-byte ones nft uses here.
const REG_VERDICT: u32 = 0;
const REG_1: u32 = 1;
const REG_2: u32 = 2;

const NF_DROP: u32 = 0;
const NF_ACCEPT: u32 = 1;
const NFT_JUMP: i32 = -3;

/// Attribute numbers shared by the expressions below: the destination (or source)
/// register is 1, the rest follow each expression's enum in nf_tables.h.
const DREG: u16 = 1;
const IFNAMSIZ: usize = 16;

/// What a rule matches, in the order written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Match {
    /// `iifname "x"` (true) or `iifname != "x"`.
    Iif(String, bool),
    Oif(String, bool),
    /// `ip saddr NET/LEN`
    Saddr(IpAddr, u8),
    /// `ip daddr A` (true) or `ip daddr != A`.
    Daddr(IpAddr, bool),
    /// `ct status dnat`
    CtDnat,
    /// `tcp dport N` (protocol by name: tcp, udp, sctp).
    Dport(String, u16),
    /// `fib daddr type local`
    FibLocal,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Verdict {
    Masquerade,
    Drop,
    /// `jump ports`
    Jump(&'static str),
    /// `dnat to ADDR:PORT`
    Dnat(SocketAddr),
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Rule {
    pub(crate) matches: Vec<Match>,
    pub(crate) verdict: Verdict,
}

/// A chain hooked into the stack: (type, hook number, priority).
pub(crate) struct Hook {
    pub(crate) kind: &'static str,
    pub(crate) hooknum: u32,
    pub(crate) priority: i32,
}

pub(crate) struct Chain {
    pub(crate) name: &'static str,
    pub(crate) hook: Option<Hook>,
    pub(crate) rules: Vec<Rule>,
}

/// One family's table (`ip` or `ip6`).
pub(crate) struct Table {
    pub(crate) v6: bool,
    pub(crate) name: String,
    pub(crate) chains: Vec<Chain>,
}

fn family_name(v6: bool) -> &'static str {
    if v6 {
        "ip6"
    } else {
        "ip"
    }
}

/// NFPROTO_IPV4 / NFPROTO_IPV6
fn nfproto(v6: bool) -> u8 {
    if v6 {
        10
    } else {
        2
    }
}

fn op(eq: bool) -> &'static str {
    if eq {
        ""
    } else {
        "!= "
    }
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let fam = |a: &IpAddr| family_name(a.is_ipv6());
        match self {
            Match::Iif(n, eq) => write!(f, "iifname {}\"{n}\"", op(*eq)),
            Match::Oif(n, eq) => write!(f, "oifname {}\"{n}\"", op(*eq)),
            Match::Saddr(a, len) => write!(f, "{} saddr {a}/{len}", fam(a)),
            Match::Daddr(a, eq) => write!(f, "{} daddr {}{a}", fam(a), op(*eq)),
            Match::CtDnat => f.write_str("ct status dnat"),
            Match::Dport(p, port) => write!(f, "{p} dport {port}"),
            Match::FibLocal => f.write_str("fib daddr type local"),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        for m in &self.matches {
            write!(f, "{m} ")?;
        }
        match &self.verdict {
            Verdict::Masquerade => f.write_str("masquerade"),
            Verdict::Drop => f.write_str("drop"),
            Verdict::Jump(c) => write!(f, "jump {c}"),
            Verdict::Dnat(to) => write!(f, "dnat to {to}"),
        }
    }
}

#[cfg(test)]
impl fmt::Display for Table {
    /// The table in nft's input syntax.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(f, "table {} {} {{", family_name(self.v6), self.name)?;
        for c in &self.chains {
            writeln!(f, "  chain {} {{", c.name)?;
            if let Some(h) = &c.hook {
                let hook =
                    ["prerouting", "input", "forward", "output", "postrouting"][h.hooknum as usize];
                let prio = match (h.kind, h.hooknum, h.priority) {
                    ("nat", 0, -100) => "dstnat".to_string(),
                    ("nat", 4, 100) => "srcnat".to_string(),
                    ("filter", _, 0) => "filter".to_string(),
                    (_, _, p) => p.to_string(),
                };
                writeln!(
                    f,
                    "    type {} hook {hook} priority {prio}; policy accept;",
                    h.kind
                )?;
            }
            for r in &c.rules {
                writeln!(f, "    {r}")?;
            }
            writeln!(f, "  }}")?;
        }
        writeln!(f, "}}")
    }
}

/// Adds to `b` the messages that replace berth's table `name` in both families by
/// `tables` (none: the tables are only removed): each family's table is made to exist,
/// deleted, then made anew whole. Returns what each message does, by message index, for
/// the errors (index 0 is the batch itself).
pub(crate) fn encode(
    b: &mut Batch,
    name: &str,
    families: &[bool],
    tables: &[Table],
) -> Vec<String> {
    let mut what = vec!["committing the transaction".to_string()];
    let mut note = |i: usize, s: String| {
        debug_assert_eq!(i, what.len());
        what.push(s);
    };
    for &v6 in families {
        let fam = family_name(v6);
        // Made first, so that the delete never fails on a missing table.
        let i = b.msg(NFT_MSG_NEWTABLE, nfproto(v6), NLM_F_CREATE);
        b.attr_str(NFTA_TABLE_NAME, name);
        note(i, format!("making table {fam} {name}"));
        let i = b.msg(NFT_MSG_DELTABLE, nfproto(v6), 0);
        b.attr_str(NFTA_TABLE_NAME, name);
        note(i, format!("deleting table {fam} {name}"));
    }
    for t in tables {
        let fam = family_name(t.v6);
        let p = nfproto(t.v6);
        let i = b.msg(NFT_MSG_NEWTABLE, p, NLM_F_CREATE);
        b.attr_str(NFTA_TABLE_NAME, &t.name);
        note(i, format!("making table {fam} {}", t.name));
        // Every chain before the rules: `jump ports` needs its target.
        for c in &t.chains {
            let i = b.msg(NFT_MSG_NEWCHAIN, p, NLM_F_CREATE);
            b.attr_str(NFTA_CHAIN_TABLE, &t.name)
                .attr_str(NFTA_CHAIN_NAME, c.name);
            if let Some(h) = &c.hook {
                b.begin(NFTA_CHAIN_HOOK)
                    .attr_be32(NFTA_HOOK_HOOKNUM, h.hooknum)
                    .attr_be32(NFTA_HOOK_PRIORITY, h.priority as u32)
                    .end();
                b.attr_be32(NFTA_CHAIN_POLICY, NF_ACCEPT)
                    .attr_str(NFTA_CHAIN_TYPE, h.kind);
            }
            note(
                i,
                format!("making chain {} of table {fam} {}", c.name, t.name),
            );
        }
        for c in &t.chains {
            for r in &c.rules {
                let i = b.msg(NFT_MSG_NEWRULE, p, NLM_F_CREATE | NLM_F_APPEND);
                b.attr_str(NFTA_RULE_TABLE, &t.name)
                    .attr_str(NFTA_RULE_CHAIN, c.name);
                b.begin(NFTA_RULE_EXPRESSIONS);
                rule(b, t.v6, r);
                b.end();
                note(
                    i,
                    format!("adding `{r}` to chain {} of table {fam}", c.name),
                );
            }
        }
    }
    what
}

/// One expression: its name and its attributes.
fn expr(b: &mut Batch, name: &str, data: impl FnOnce(&mut Batch)) {
    b.begin(NFTA_LIST_ELEM).attr_str(NFTA_EXPR_NAME, name);
    b.begin(NFTA_EXPR_DATA);
    data(b);
    b.end().end();
}

fn value(b: &mut Batch, kind: u16, v: &[u8]) {
    b.begin(kind).attr(NFTA_DATA_VALUE, v).end();
}

fn payload(b: &mut Batch, base: u32, offset: u32, len: u32) {
    // NFTA_PAYLOAD_{DREG, BASE, OFFSET, LEN}
    expr(b, "payload", |b| {
        b.attr_be32(DREG, REG_1)
            .attr_be32(2, base)
            .attr_be32(3, offset)
            .attr_be32(4, len);
    });
}

fn meta(b: &mut Batch, key: u32) {
    // NFTA_META_{DREG, KEY}
    expr(b, "meta", |b| {
        b.attr_be32(DREG, REG_1).attr_be32(2, key);
    });
}

fn cmp(b: &mut Batch, eq: bool, data: &[u8]) {
    // NFTA_CMP_{SREG, OP, DATA}; NFT_CMP_EQ 0, NFT_CMP_NEQ 1
    expr(b, "cmp", |b| {
        b.attr_be32(1, REG_1).attr_be32(2, u32::from(!eq));
        value(b, 3, data);
    });
}

fn bitwise(b: &mut Batch, mask: &[u8]) {
    // NFTA_BITWISE_{SREG, DREG, LEN, MASK, XOR}: reg1 = (reg1 & mask) ^ 0
    expr(b, "bitwise", |b| {
        b.attr_be32(1, REG_1)
            .attr_be32(2, REG_1)
            .attr_be32(3, mask.len() as u32);
        value(b, 4, mask);
        value(b, 5, &vec![0; mask.len()]);
    });
}

fn immediate(b: &mut Batch, reg: u32, data: &[u8]) {
    // NFTA_IMMEDIATE_{DREG, DATA}
    expr(b, "immediate", |b| {
        b.attr_be32(DREG, reg);
        value(b, 2, data);
    });
}

fn verdict(b: &mut Batch, code: u32, chain: Option<&str>) {
    expr(b, "immediate", |b| {
        b.attr_be32(DREG, REG_VERDICT);
        b.begin(2).begin(NFTA_DATA_VERDICT);
        b.attr_be32(NFTA_VERDICT_CODE, code);
        if let Some(c) = chain {
            b.attr_str(NFTA_VERDICT_CHAIN, c);
        }
        b.end().end();
    });
}

fn octets(a: &IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// Where the source and destination addresses sit in the network header.
fn addr_offsets(v6: bool) -> (u32, u32) {
    if v6 {
        (8, 24)
    } else {
        (12, 16)
    }
}

const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;
const NFT_PAYLOAD_TRANSPORT_HEADER: u32 = 2;
const NFT_META_IIFNAME: u32 = 6;
const NFT_META_OIFNAME: u32 = 7;
const NFT_META_L4PROTO: u32 = 16;

fn ifname(n: &str) -> [u8; IFNAMSIZ] {
    let mut d = [0u8; IFNAMSIZ];
    let s = n.as_bytes();
    let l = s.len().min(IFNAMSIZ - 1);
    d[..l].copy_from_slice(&s[..l]);
    d
}

fn proto_number(p: &str) -> u8 {
    match p {
        "udp" => 17,
        "sctp" => 132,
        _ => 6,
    }
}

/// The expressions of one rule, as nft writes them.
fn rule(b: &mut Batch, v6: bool, r: &Rule) {
    let (saddr, daddr) = addr_offsets(v6);
    for m in &r.matches {
        match m {
            Match::Iif(n, eq) => {
                meta(b, NFT_META_IIFNAME);
                cmp(b, *eq, &ifname(n));
            }
            Match::Oif(n, eq) => {
                meta(b, NFT_META_OIFNAME);
                cmp(b, *eq, &ifname(n));
            }
            Match::Saddr(a, len) => {
                let bytes = octets(a);
                let len = usize::from(*len).min(bytes.len() * 8);
                if len % 8 == 0 && len > 0 {
                    // A whole number of bytes: only those are loaded and compared.
                    payload(b, NFT_PAYLOAD_NETWORK_HEADER, saddr, (len / 8) as u32);
                    cmp(b, true, &bytes[..len / 8]);
                } else {
                    payload(b, NFT_PAYLOAD_NETWORK_HEADER, saddr, bytes.len() as u32);
                    let mask: Vec<u8> = (0..bytes.len())
                        .map(|i| {
                            let bits = len.saturating_sub(i * 8).min(8);
                            (0xff00u16 >> bits) as u8
                        })
                        .collect();
                    bitwise(b, &mask);
                    let net: Vec<u8> = bytes.iter().zip(&mask).map(|(x, m)| x & m).collect();
                    cmp(b, true, &net);
                }
            }
            Match::Daddr(a, eq) => {
                let bytes = octets(a);
                payload(b, NFT_PAYLOAD_NETWORK_HEADER, daddr, bytes.len() as u32);
                cmp(b, *eq, &bytes);
            }
            Match::CtDnat => {
                // NFTA_CT_{DREG, KEY}: NFT_CT_STATUS; IPS_DST_NAT is bit 5
                expr(b, "ct", |b| {
                    b.attr_be32(DREG, REG_1).attr_be32(2, 2);
                });
                bitwise(b, &0x20u32.to_ne_bytes());
                cmp(b, false, &0u32.to_ne_bytes());
            }
            Match::Dport(p, port) => {
                meta(b, NFT_META_L4PROTO);
                cmp(b, true, &[proto_number(p)]);
                payload(b, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
                cmp(b, true, &port.to_be_bytes());
            }
            Match::FibLocal => {
                // NFTA_FIB_{DREG, RESULT, FLAGS}: NFT_FIB_RESULT_ADDRTYPE, NFTA_FIB_F_DADDR
                expr(b, "fib", |b| {
                    b.attr_be32(DREG, REG_1).attr_be32(2, 3).attr_be32(3, 2);
                });
                // RTN_LOCAL, in the host's order like every addrtype
                cmp(b, true, &2u32.to_ne_bytes());
            }
        }
    }
    match &r.verdict {
        Verdict::Masquerade => expr(b, "masq", |_| {}),
        Verdict::Drop => verdict(b, NF_DROP, None),
        Verdict::Jump(c) => verdict(b, NFT_JUMP as u32, Some(c)),
        Verdict::Dnat(to) => {
            immediate(b, REG_1, &octets(&to.ip()));
            immediate(b, REG_2, &to.port().to_be_bytes());
            // NFTA_NAT_{TYPE, FAMILY, REG_ADDR_MIN, REG_PROTO_MIN, FLAGS}: NFT_NAT_DNAT,
            // NF_NAT_RANGE_PROTO_SPECIFIED
            expr(b, "nat", |b| {
                b.attr_be32(1, 1)
                    .attr_be32(2, u32::from(nfproto(v6)))
                    .attr_be32(3, REG_1)
                    .attr_be32(5, REG_2)
                    .attr_be32(7, 2);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_print_as_nft_reads_them() {
        let r = Rule {
            matches: vec![
                Match::CtDnat,
                Match::Saddr("fd00:89::".parse().unwrap(), 64),
                Match::Oif("bth1-1".into(), false),
            ],
            verdict: Verdict::Masquerade,
        };
        assert_eq!(
            r.to_string(),
            "ct status dnat ip6 saddr fd00:89::/64 oifname != \"bth1-1\" masquerade"
        );
        let r = Rule {
            matches: vec![Match::Daddr("::1".parse().unwrap(), false), Match::FibLocal],
            verdict: Verdict::Jump("ports"),
        };
        assert_eq!(
            r.to_string(),
            "ip6 daddr != ::1 fib daddr type local jump ports"
        );
    }

    #[test]
    fn every_message_is_named_for_errors() {
        let mut b = Batch::new();
        let t = Table {
            v6: false,
            name: "t".into(),
            chains: vec![Chain {
                name: "forward",
                hook: Some(Hook {
                    kind: "filter",
                    hooknum: 2,
                    priority: 0,
                }),
                rules: vec![Rule {
                    matches: vec![Match::Iif("a".into(), true), Match::Oif("b".into(), true)],
                    verdict: Verdict::Drop,
                }],
            }],
        };
        let what = encode(&mut b, "t", &[false, true], &[t]);
        assert_eq!(what.len(), 1 + 4 + 3);
        assert_eq!(what[4], "deleting table ip6 t");
        assert_eq!(
            what[7],
            "adding `iifname \"a\" oifname \"b\" drop` to chain forward of table ip"
        );
    }
}
