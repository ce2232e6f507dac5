//! OCI `linux.seccomp` -> per-ABI decision table. Everything that can be
//! wrong with a profile is reported here, before any BPF is emitted.

use std::collections::BTreeMap;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator,
};

use super::syscalls::Abi;
use super::SeccompError;

/// seccomp_data.args has six entries.
const MAX_ARGS: usize = 6;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    /// `(arg & mask) == value`
    MaskedEq {
        mask: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Cond {
    pub(crate) index: u8,
    pub(crate) op: CmpOp,
    pub(crate) value: u64,
}

/// Conditions ANDed; `ret` is the full SECCOMP_RET_* value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) conds: Vec<Cond>,
    pub(crate) ret: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The syscall gets `ret` whatever its arguments.
    Always { ret: u32, origin: usize },
    /// First matching rule wins; no match means the default action.
    Rules(Vec<Rule>),
}

#[derive(Debug)]
pub(crate) struct AbiPlan {
    pub(crate) abi: Abi,
    /// Keyed by `seccomp_data.nr`.
    pub(crate) syscalls: BTreeMap<u32, Decision>,
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) default_ret: u32,
    /// Return ENOSYS for numbers above the table (not when the default
    /// already lets syscalls through: nothing to fall back from).
    pub(crate) enosys_tail: bool,
    /// Sorted, deduplicated.
    pub(crate) abis: Vec<AbiPlan>,
    pub(crate) flags: u32,
    pub(crate) has_notify: bool,
    pub(crate) skipped: Vec<String>,
    pub(crate) skipped_arches: Vec<String>,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> SeccompError {
    SeccompError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

/// The SECCOMP_RET_* value of an OCI action. Like runc, errnoRet defaults
/// to EPERM for ERRNO and TRACE and is ignored for the other actions.
fn action_ret(
    action: LinuxSeccompAction,
    errno_ret: Option<u32>,
    field: &str,
) -> Result<u32, SeccompError> {
    let data = match errno_ret {
        None => libc::EPERM as u32,
        Some(v) if v <= libc::SECCOMP_RET_DATA => v,
        Some(v) => {
            return Err(invalid(
                field,
                format!("{v} is out of range (at most {})", libc::SECCOMP_RET_DATA),
            ))
        }
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActAllow => libc::SECCOMP_RET_ALLOW,
        LinuxSeccompAction::ScmpActErrno => libc::SECCOMP_RET_ERRNO | data,
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            libc::SECCOMP_RET_KILL_THREAD
        }
        LinuxSeccompAction::ScmpActKillProcess => libc::SECCOMP_RET_KILL_PROCESS,
        LinuxSeccompAction::ScmpActTrap => libc::SECCOMP_RET_TRAP,
        LinuxSeccompAction::ScmpActTrace => libc::SECCOMP_RET_TRACE | data,
        LinuxSeccompAction::ScmpActLog => libc::SECCOMP_RET_LOG,
        LinuxSeccompAction::ScmpActNotify => libc::SECCOMP_RET_USER_NOTIF,
    })
}

fn native_abi() -> Result<Abi, SeccompError> {
    if cfg!(target_arch = "x86_64") {
        Ok(Abi::X86_64)
    } else {
        Err(invalid(
            "linux.seccomp.architectures",
            format!(
                "no syscall table for the native architecture {}",
                std::env::consts::ARCH
            ),
        ))
    }
}

/// The ABIs to filter: the native one always (libseccomp puts it in every
/// filter, so runc does too), plus the listed ones we have tables for.
/// Listed arches without a table (arm on an x86_64 host, say) cannot issue
/// syscalls here and hit the bad-arch action; they are reported back.
fn abis(s: &LinuxSeccomp) -> Result<(Vec<Abi>, Vec<String>), SeccompError> {
    let mut abis = vec![native_abi()?];
    let mut skipped = Vec::new();
    for arch in s.architectures().iter().flatten() {
        let abi = match arch {
            Arch::ScmpArchNative => native_abi()?,
            Arch::ScmpArchX86_64 => Abi::X86_64,
            Arch::ScmpArchX86 => Abi::X86,
            Arch::ScmpArchX32 => Abi::X32,
            other => {
                skipped.push(other.to_string());
                continue;
            }
        };
        abis.push(abi);
    }
    abis.sort_unstable();
    abis.dedup();
    skipped.sort_unstable();
    skipped.dedup();
    Ok((abis, skipped))
}

fn cond(arg: &LinuxSeccompArg, field: &str) -> Result<Cond, SeccompError> {
    let index = arg.index();
    if index >= MAX_ARGS {
        return Err(invalid(
            format!("{field}.index"),
            format!("{index} is out of range (at most {})", MAX_ARGS - 1),
        ));
    }
    let (op, value) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (CmpOp::Ne, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (CmpOp::Lt, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (CmpOp::Le, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (CmpOp::Eq, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (CmpOp::Ge, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (CmpOp::Gt, arg.value()),
        // The spec (after libseccomp): value is the mask, valueTwo the datum.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            CmpOp::MaskedEq { mask: arg.value() },
            arg.value_two().unwrap_or(0),
        ),
    };
    Ok(Cond {
        index: index as u8,
        op,
        value,
    })
}

/// The rules one OCI syscall entry stands for. Conditions on distinct
/// arguments are ANDed. When an argument index repeats, runc (and so
/// every profile written against it) adds each condition as its own rule,
/// i.e. ORs them; we keep that so profiles mean the same under berth.
fn arg_rules(args: &[LinuxSeccompArg], ret: u32, field: &str) -> Result<Vec<Rule>, SeccompError> {
    let conds = args
        .iter()
        .enumerate()
        .map(|(j, a)| cond(a, &format!("{field}.args[{j}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = [false; MAX_ARGS];
    let repeated = conds
        .iter()
        .any(|c| std::mem::replace(&mut seen[c.index as usize], true));
    Ok(if repeated {
        conds
            .into_iter()
            .map(|c| Rule {
                conds: vec![c],
                ret,
            })
            .collect()
    } else {
        vec![Rule { conds, ret }]
    })
}

fn flags(s: &LinuxSeccomp, has_notify: bool) -> u32 {
    let mut flags = 0;
    for flag in s.flags().iter().flatten() {
        flags |= match flag {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
            // Only meaningful with a listener; the kernel rejects it alone.
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv if has_notify => {
                libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
            }
            LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => 0,
            // The container init is single-threaded when it loads the filter,
            // and TSYNC cannot be combined with NEW_LISTENER.
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => 0,
        };
    }
    if has_notify {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    }
    flags as u32
}

pub(crate) fn plan(s: &LinuxSeccomp) -> Result<Plan, SeccompError> {
    if s.default_action() == LinuxSeccompAction::ScmpActNotify {
        return Err(invalid(
            "linux.seccomp.defaultAction",
            "SCMP_ACT_NOTIFY cannot be the default action",
        ));
    }
    let default_ret = action_ret(
        s.default_action(),
        s.default_errno_ret(),
        "linux.seccomp.defaultErrnoRet",
    )?;
    let (abi_list, skipped_arches) = abis(s)?;
    let mut abis: Vec<AbiPlan> = abi_list
        .iter()
        .map(|&abi| AbiPlan {
            abi,
            syscalls: BTreeMap::new(),
        })
        .collect();
    let mut skipped = Vec::new();
    let mut has_notify = false;

    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let field = format!("linux.seccomp.syscalls[{i}]");
        let ret = action_ret(sc.action(), sc.errno_ret(), &format!("{field}.errnoRet"))?;
        // As runc: a process that waits on an agent for every write (its own stdout,
        // the agent's logs if it writes into the container) is a profile that cannot
        // work, and tools keep such profiles out only because runc refuses them.
        if ret == libc::SECCOMP_RET_USER_NOTIF && sc.names().iter().any(|n| n == "write") {
            return Err(invalid(
                format!("{field}.action"),
                "SCMP_ACT_NOTIFY cannot be used for the write syscall",
            ));
        }
        let rules = arg_rules(sc.args().as_deref().unwrap_or_default(), ret, &field)?;
        // libseccomp refuses rules that repeat the default action, and runc
        // drops them; they must not shadow later rules either.
        if ret == default_ret {
            continue;
        }
        for name in sc.names() {
            let mut known = false;
            for plan in abis.iter_mut() {
                let Some(nr) = plan.abi.number(name) else {
                    continue;
                };
                known = true;
                let entry = plan
                    .syscalls
                    .entry(nr)
                    .or_insert(Decision::Rules(Vec::new()));
                match entry {
                    // The first unconditional rule for a syscall stays, as in
                    // libseccomp (which runc and crun use): podman's default
                    // profile lists setns, clone… both in its allow list and in
                    // a later errno list, and expects the allow to hold. An
                    // unconditional rule also covers every argument value,
                    // whatever order the entries come in.
                    Decision::Always { .. } => {}
                    Decision::Rules(_) if rules[0].conds.is_empty() => {
                        *entry = Decision::Always { ret, origin: i };
                    }
                    Decision::Rules(existing) => existing.extend(rules.iter().cloned()),
                }
            }
            if known {
                has_notify |= ret == libc::SECCOMP_RET_USER_NOTIF;
            } else if !skipped.contains(name) {
                // Like runc: a name no table knows (a syscall newer than
                // us, or a typo) is left out rather than failing the
                // container; the caller logs the list at debug level.
                skipped.push(name.clone());
            }
        }
    }

    let enosys_tail = !matches!(
        s.default_action(),
        LinuxSeccompAction::ScmpActAllow | LinuxSeccompAction::ScmpActLog
    ) && default_ret != libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    Ok(Plan {
        default_ret,
        enosys_tail,
        abis,
        flags: flags(s, has_notify),
        has_notify,
        skipped,
        skipped_arches,
    })
}
