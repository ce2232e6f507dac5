//! Install a compiled filter on the calling thread.

use std::os::fd::OwnedFd;

use super::compile::MAX_INSNS;
use super::{Filter, SeccompError};
use crate::sys;

/// Loads `f` with seccomp(2) and returns the user-notification listener
/// when the filter has SCMP_ACT_NOTIFY rules.
///
/// no_new_privs is deliberately left alone (`process.noNewPrivileges`
/// decides it), so without it the caller needs CAP_SYS_ADMIN; the init
/// therefore loads the filter before dropping capabilities in that case.
pub(crate) fn load(f: &Filter) -> Result<Option<OwnedFd>, SeccompError> {
    if f.program.is_empty() || f.program.len() > MAX_INSNS {
        return Err(SeccompError::TooLong {
            len: f.program.len(),
            max: MAX_INSNS,
        });
    }
    let mut flags = f.flags;
    if f.has_notify {
        flags |= libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32;
    }
    let listener = sys::seccomp::set_mode_filter(&f.program, flags).map_err(|source| {
        if source.raw_os_error() == Some(libc::EACCES) {
            SeccompError::LoadNeedsPrivilege { source }
        } else {
            SeccompError::Load { flags, source }
        }
    })?;
    match (&listener, f.has_notify) {
        (None, true) => Err(SeccompError::Internal(
            "seccomp(2) returned no listener for a notify filter".to_string(),
        )),
        _ => Ok(listener),
    }
}
