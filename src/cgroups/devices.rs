//! Device access rules: the config's `linux.resources.devices` followed by the devices
//! every container gets (as runc appends them), written as v1 `devices.allow/deny` lines or
//! compiled into a BPF_PROG_TYPE_CGROUP_DEVICE program for cgroup v2, where nothing else
//! stops a container with CAP_MKNOD from opening raw host devices.

use std::os::fd::AsFd;
use std::path::Path;

use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    All,
    Char,
    Block,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) allow: bool,
    pub(crate) kind: Kind,
    /// None = any.
    pub(crate) major: Option<u32>,
    pub(crate) minor: Option<u32>,
    /// Bits: 1 mknod, 2 read, 4 write (the kernel's BPF_DEVCG_ACC_* values).
    pub(crate) access: u32,
}

const ACC_MKNOD: u32 = 1;
const ACC_READ: u32 = 2;
const ACC_WRITE: u32 = 4;
const ACC_ALL: u32 = 7;

#[derive(Debug, thiserror::Error)]
#[error("linux.resources.devices[{index}]: {msg}")]
pub(crate) struct DeviceRuleError {
    index: usize,
    msg: String,
}

/// The devices every container may use, after the config's own rules (runc's list).
fn defaults() -> Vec<Rule> {
    let c = |major, minor: Option<u32>, access| Rule {
        allow: true,
        kind: Kind::Char,
        major: Some(major),
        minor,
        access,
    };
    let any_mknod = |kind| Rule {
        allow: true,
        kind,
        major: None,
        minor: None,
        access: ACC_MKNOD,
    };
    vec![
        any_mknod(Kind::Char),
        any_mknod(Kind::Block),
        c(1, Some(3), ACC_ALL),    // null
        c(1, Some(5), ACC_ALL),    // zero
        c(1, Some(7), ACC_ALL),    // full
        c(5, Some(0), ACC_ALL),    // tty
        c(1, Some(9), ACC_ALL),    // urandom
        c(1, Some(8), ACC_ALL),    // random
        c(5, Some(1), ACC_ALL),    // console
        c(136, None, ACC_ALL),     // pts/*
        c(5, Some(2), ACC_ALL),    // ptmx
        c(10, Some(200), ACC_ALL), // net/tun
    ]
}

/// The access bits of `s`; letters other than r, w and m are ignored (runc ignores them
/// too) and returned for a warning.
fn parse_access(s: &str) -> (u32, String) {
    let mut acc = 0;
    let mut ignored = String::new();
    for ch in s.chars() {
        match ch {
            'r' => acc |= ACC_READ,
            'w' => acc |= ACC_WRITE,
            'm' => acc |= ACC_MKNOD,
            c => ignored.push(c),
        }
    }
    (acc, ignored)
}

fn number(v: Option<i64>, what: &str) -> Result<Option<u32>, String> {
    match v {
        None | Some(-1) => Ok(None),
        Some(n) => u32::try_from(n)
            .map(Some)
            .map_err(|_| format!("{what} {n} is out of range")),
    }
}

/// The rules to enforce, in order: the config's, then the defaults. Later rules win.
pub(crate) fn rules(config: &[LinuxDeviceCgroup]) -> Result<Vec<Rule>, DeviceRuleError> {
    let mut out = Vec::with_capacity(config.len() + 12);
    for (index, d) in config.iter().enumerate() {
        let err = |msg: String| DeviceRuleError { index, msg };
        let kind = match d.typ() {
            None | Some(LinuxDeviceType::A) => Kind::All,
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => Kind::Char,
            Some(LinuxDeviceType::B) => Kind::Block,
            Some(LinuxDeviceType::P) => return Err(err("type p (fifo) is not a device".into())),
        };
        let access = match d.access() {
            None => ACC_ALL,
            Some(s) if s.is_empty() => ACC_ALL,
            Some(s) => {
                let (acc, ignored) = parse_access(s);
                if !ignored.is_empty() {
                    crate::logging::warn(&format!(
                        "linux.resources.devices[{index}].access {s:?}: ignoring {ignored:?} (only r, w and m mean something)"
                    ));
                }
                if acc == 0 {
                    // Nothing it grants or denies.
                    continue;
                }
                acc
            }
        };
        out.push(Rule {
            allow: d.allow(),
            kind,
            major: number(d.major(), "major").map_err(err)?,
            minor: number(d.minor(), "minor").map_err(err)?,
            access,
        });
    }
    out.extend(defaults());
    Ok(out)
}

/// One v1 line per rule: (`devices.allow` or `devices.deny`, "c 1:3 rwm").
pub(crate) fn v1_lines(rules: &[Rule]) -> Vec<(&'static str, String)> {
    rules
        .iter()
        .map(|r| {
            let file = if r.allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            let n = |v: Option<u32>| v.map_or("*".to_string(), |n| n.to_string());
            let mut acc = String::new();
            for (bit, ch) in [(ACC_READ, 'r'), (ACC_WRITE, 'w'), (ACC_MKNOD, 'm')] {
                if r.access & bit != 0 {
                    acc.push(ch);
                }
            }
            let kind = match r.kind {
                Kind::All => 'a',
                Kind::Char => 'c',
                Kind::Block => 'b',
            };
            (file, format!("{kind} {}:{} {acc}", n(r.major), n(r.minor)))
        })
        .collect()
}

// eBPF encoding: code, dst|src<<4, off (i16), imm (i32), little endian in one u64.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | (u64::from(dst & 0xf) << 8)
        | (u64::from(src & 0xf) << 12)
        | (u64::from(off as u16) << 16)
        | (u64::from(imm as u32) << 32)
}

const LDX_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const MOV32_X: u8 = 0xbc;
const AND32_K: u8 = 0x54;
const RSH32_K: u8 = 0x74;
const MOV64_K: u8 = 0xb7;
const JNE_K: u8 = 0x55;
const EXIT: u8 = 0x95;

/// Compiles the rules into a device program. The context is
/// `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }` with
/// access_type = access << 16 | type. Rules are tested from the last to the first, so the
/// last matching rule decides; with no match the answer is allow, as in a v1 cgroup that
/// was never given a deny-all (a deny-all rule matches everything, so it ends the search).
pub(crate) fn bpf_program(rules: &[Rule]) -> Vec<u64> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(MOV32_X, 3, 2, 0, 0),
        insn(AND32_K, 3, 0, 0, 0xffff), // r3 = type
        insn(MOV32_X, 4, 2, 0, 0),
        insn(RSH32_K, 4, 0, 0, 16), // r4 = access
        insn(LDX_W, 5, 1, 4, 0),    // r5 = major
        insn(LDX_W, 6, 1, 8, 0),    // r6 = minor
    ];
    for r in rules.iter().rev() {
        // Each test jumps over the rest of this rule's block on a mismatch.
        let mut tests: Vec<[u64; 2]> = Vec::new();
        match r.kind {
            Kind::All => {}
            Kind::Char => tests.push([insn(JNE_K, 3, 0, 0, 2), 0]),
            Kind::Block => tests.push([insn(JNE_K, 3, 0, 0, 1), 0]),
        }
        if r.access != ACC_ALL {
            // Any asked-for access bit outside the rule's set: no match.
            tests.push([insn(MOV32_X, 1, 4, 0, 0), 1]);
            tests.push([insn(AND32_K, 1, 0, 0, (!r.access & ACC_ALL) as i32), 1]);
            tests.push([insn(JNE_K, 1, 0, 0, 0), 0]);
        }
        if let Some(m) = r.major {
            tests.push([insn(JNE_K, 5, 0, 0, m as i32), 0]);
        }
        if let Some(m) = r.minor {
            tests.push([insn(JNE_K, 6, 0, 0, m as i32), 0]);
        }
        let len = tests.len() + 2;
        for (i, [ins, not_jump]) in tests.iter().enumerate() {
            if *not_jump == 1 {
                p.push(*ins);
            } else {
                // Skip to the first instruction after this block.
                let off = (len - i - 1) as i16;
                p.push((*ins & !0xffff_0000) | (u64::from(off as u16) << 16));
            }
        }
        p.push(insn(MOV64_K, 0, 0, 0, i32::from(r.allow)));
        p.push(insn(EXIT, 0, 0, 0, 0));
        if r.allow
            || r.kind != Kind::All
            || r.major.is_some()
            || r.minor.is_some()
            || r.access != ACC_ALL
        {
            continue;
        }
        // An unconditional deny: nothing before it can matter.
        return p;
    }
    p.push(insn(MOV64_K, 0, 0, 0, 1));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

/// Loads the program for `rules` and attaches it to the cgroup2 directory `dir`.
pub(crate) fn attach_v2(dir: &Path, rules: &[Rule]) -> Result<(), String> {
    let prog = crate::sys::bpf_load_device_prog(&bpf_program(rules))
        .map_err(|e| format!("loading the device program: {}", e.desc()))?;
    let cg = std::fs::File::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    crate::sys::bpf_attach_device_prog(cg.as_fd(), prog.as_fd()).map_err(|e| {
        format!(
            "{}: attaching the device program: {}",
            dir.display(),
            e.desc()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the subset of eBPF that [`bpf_program`] emits.
    fn eval(prog: &[u64], access_type: u32, major: u32, minor: u32) -> u64 {
        let ctx = [access_type, major, minor];
        let mut r = [0u64; 11];
        let mut pc = 0usize;
        loop {
            let i = prog[pc];
            let code = (i & 0xff) as u8;
            let dst = ((i >> 8) & 0xf) as usize;
            let src = ((i >> 12) & 0xf) as usize;
            let off = ((i >> 16) & 0xffff) as u16 as i16;
            let imm = (i >> 32) as u32;
            pc += 1;
            match code {
                LDX_W => {
                    assert_eq!(src, 1);
                    r[dst] = u64::from(ctx[off as usize / 4]);
                }
                MOV32_X => r[dst] = r[src] & 0xffff_ffff,
                AND32_K => r[dst] = (r[dst] as u32 & imm) as u64,
                RSH32_K => r[dst] = ((r[dst] as u32) >> imm) as u64,
                MOV64_K => r[dst] = imm as i32 as i64 as u64,
                JNE_K => {
                    if r[dst] != imm as i32 as i64 as u64 {
                        pc = (pc as i64 + off as i64) as usize;
                    }
                }
                EXIT => return r[0],
                c => panic!("unexpected opcode {c:#x}"),
            }
        }
    }

    fn rule(json: serde_json::Value) -> LinuxDeviceCgroup {
        serde_json::from_value(json).unwrap()
    }

    const CHAR: u32 = 2;
    const BLOCK: u32 = 1;
    fn at(access: u32, kind: u32) -> u32 {
        (access << 16) | kind
    }

    #[test]
    fn deny_all_then_defaults() {
        let rs = rules(&[rule(serde_json::json!({"allow": false, "access": "rwm"}))]).unwrap();
        let p = bpf_program(&rs);
        // /dev/null read+write allowed, /dev/sda (8:0) read denied, mknod of anything allowed.
        assert_eq!(eval(&p, at(ACC_READ | ACC_WRITE, CHAR), 1, 3), 1);
        assert_eq!(eval(&p, at(ACC_READ, BLOCK), 8, 0), 0);
        assert_eq!(eval(&p, at(ACC_MKNOD, BLOCK), 8, 0), 1);
        assert_eq!(eval(&p, at(ACC_READ | ACC_MKNOD, BLOCK), 8, 0), 0);
        assert_eq!(eval(&p, at(ACC_WRITE, CHAR), 136, 7), 1);
        assert_eq!(eval(&p, at(ACC_READ, CHAR), 1, 1), 0, "/dev/mem");
        assert_eq!(eval(&p, at(ACC_READ, CHAR), 10, 200), 1, "tun");
        assert_eq!(
            v1_lines(&rs)[..3],
            [
                ("devices.deny", "a *:* rwm".to_string()),
                ("devices.allow", "c *:* m".to_string()),
                ("devices.allow", "b *:* m".to_string()),
            ]
        );
    }

    #[test]
    fn later_rules_win_and_partial_access() {
        let rs = rules(&[
            rule(serde_json::json!({"allow": false, "access": "rwm"})),
            rule(serde_json::json!({"allow": true, "type": "b", "major": 8, "minor": 0, "access": "r"})),
            rule(serde_json::json!({"allow": false, "type": "c", "major": 1, "minor": 3, "access": "w"})),
        ])
        .unwrap();
        let p = bpf_program(&rs);
        assert_eq!(eval(&p, at(ACC_READ, BLOCK), 8, 0), 1);
        assert_eq!(eval(&p, at(ACC_WRITE, BLOCK), 8, 0), 0);
        assert_eq!(eval(&p, at(ACC_READ, BLOCK), 8, 1), 0);
        // The default allow of /dev/null comes after the deny: it wins, as runc.
        assert_eq!(eval(&p, at(ACC_WRITE, CHAR), 1, 3), 1);
        assert_eq!(v1_lines(&rs)[1].1, "b 8:0 r");
    }

    #[test]
    fn no_deny_all_means_allow() {
        let p = bpf_program(&rules(&[]).unwrap());
        assert_eq!(eval(&p, at(ACC_READ, BLOCK), 8, 0), 1);
        let p = bpf_program(
            &rules(&[rule(
                serde_json::json!({"allow": false, "type": "b", "major": 8}),
            )])
            .unwrap(),
        );
        assert_eq!(eval(&p, at(ACC_READ, BLOCK), 8, 3), 0);
        assert_eq!(eval(&p, at(ACC_READ, BLOCK), 9, 3), 1);
    }

    #[test]
    fn bad_rules_name_the_index() {
        let e = rules(&[
            rule(serde_json::json!({"allow": true})),
            rule(serde_json::json!({"allow": true, "type": "p"})),
        ])
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("linux.resources.devices[1]: type p"),
            "{e}"
        );
    }

    /// Unknown access letters are ignored, as runc does ("rwa" is "rw"); a rule left with
    /// no access at all changes nothing.
    #[test]
    fn unknown_access_letters_are_ignored() {
        let rs = rules(&[
            rule(serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwa"})),
            rule(serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 5, "access": "x"})),
        ])
        .unwrap();
        assert_eq!(rs.len(), 1 + defaults().len());
        assert_eq!(rs[0].access, ACC_READ | ACC_WRITE);
        assert_eq!(rs[0].minor, Some(3));
    }

    /// The real kernel path: a cgroup2 directory with the program attached refuses a
    /// device the rules deny. Runs where a writable cgroup2 mount exists (root).
    #[test]
    fn kernel_enforces_the_program() {
        let Some(root) = crate::cgroups::manager::Layout::detect()
            .unified
            .map(|(mp, _)| mp)
        else {
            return;
        };
        // /dev/kmsg (1:11) is not in the defaults; the host must be able to open it.
        if !nix::unistd::geteuid().is_root() || std::fs::File::open("/dev/kmsg").is_err() {
            return;
        }
        let dir = root.join(format!("berth-devtest-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let rs = rules(&[rule(serde_json::json!({"allow": false, "access": "rwm"}))]).unwrap();
        let attached = attach_v2(&dir, &rs);
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "read x; true </dev/zero && echo zero-ok; (true </dev/kmsg) 2>/dev/null || echo kmsg-denied"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let moved = std::fs::write(dir.join("cgroup.procs"), child.id().to_string());
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let out = child.wait_with_output().unwrap();
        let _ = std::fs::remove_dir(&dir);
        attached.unwrap();
        moved.unwrap();
        let out = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.contains("zero-ok") && out.contains("kmsg-denied"),
            "{out}"
        );
    }
}
