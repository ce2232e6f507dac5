//! OCI `linux.seccomp` -> classic BPF, and loading it.
//!
//! `compile` runs in the runtime parent (errors surface before any process
//! exists); `load` runs in the container init.
#![allow(dead_code)]

pub(crate) mod cache;
mod compile;
mod load;
mod profile;
mod syscalls;

pub(crate) mod interp;
#[cfg(test)]
mod tests;

#[allow(unused_imports)] // called by the runtime once it is wired
pub(crate) use load::load;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SeccompError {
    #[error("{field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("linux.seccomp: the filter needs {len} instructions, the kernel allows at most {max}")]
    TooLong { len: usize, max: usize },
    #[error("load seccomp filter (flags {flags:#x})")]
    Load {
        flags: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("load seccomp filter: no_new_privs is off, which needs CAP_SYS_ADMIN")]
    LoadNeedsPrivilege {
        #[source]
        source: std::io::Error,
    },
    #[error("seccomp: internal error: {0}")]
    Internal(String),
}

/// A compiled filter, ready for `load`.
#[derive(Clone)]
pub(crate) struct Filter {
    pub(crate) program: Vec<libc::sock_filter>,
    /// SECCOMP_FILTER_FLAG_* from `linux.seccomp.flags`, plus NEW_LISTENER
    /// when `has_notify`.
    pub(crate) flags: u32,
    /// Some rule uses SCMP_ACT_NOTIFY: `load` returns a listener fd that
    /// the runtime hands to `listenerPath`.
    pub(crate) has_notify: bool,
    /// Syscall names no table of the filtered ABIs knows, left out of the
    /// filter as runc does; for a debug log line.
    pub(crate) skipped: Vec<String>,
    /// Listed architectures we have no table for (they cannot run on this
    /// host and get the bad-arch action); for a debug log line.
    pub(crate) skipped_arches: Vec<String>,
}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter")
            .field("instructions", &self.program.len())
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("has_notify", &self.has_notify)
            .field("skipped", &self.skipped)
            .field("skipped_arches", &self.skipped_arches)
            .finish()
    }
}

/// Compiles `linux.seccomp` into one BPF program covering the native ABI
/// and the listed x86 ABIs (x86_64, x32, i386).
///
/// Semantics, following runc + libseccomp where they are observable:
/// - another architecture (or x32 in a filter without x32) gets
///   SECCOMP_RET_KILL_PROCESS, libseccomp's bad-arch action;
/// - errnoRet defaults to EPERM; rules whose action equals the default
///   action are dropped;
/// - an argument-less rule for a syscall wins over rules with arguments;
///   among rules with arguments the first match in profile order wins;
/// - conditions on distinct arguments are ANDed, repeated argument indexes
///   are ORed (runc); 64-bit compares on x86_64/x32, low 32 bits on i386;
/// - syscall numbers above our table get ENOSYS unless the default action
///   is ALLOW or LOG, so libcs fall back from syscalls newer than us.
pub(crate) fn compile(s: &oci_spec::runtime::LinuxSeccomp) -> Result<Filter, SeccompError> {
    let plan = profile::plan(s)?;
    let program = compile::emit(&plan)?;
    Ok(Filter {
        program,
        flags: plan.flags,
        has_notify: plan.has_notify,
        skipped: plan.skipped,
        skipped_arches: plan.skipped_arches,
    })
}
