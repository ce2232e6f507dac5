//! seccomp(2), called directly: libc has no wrapper, and seccompiler's
//! `apply_filter` forces no_new_privs, which the OCI spec leaves to
//! `process.noNewPrivileges`.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

/// `SECCOMP_SET_MODE_FILTER` with `flags` (`SECCOMP_FILTER_FLAG_*`).
/// Returns the user-notification listener when `flags` has
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`.
///
/// Without no_new_privs the kernel requires CAP_SYS_ADMIN in the caller's
/// user namespace (EACCES otherwise).
pub(crate) fn set_mode_filter(
    program: &[libc::sock_filter],
    flags: u32,
) -> io::Result<Option<OwnedFd>> {
    let len =
        u16::try_from(program.len()).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let prog = libc::sock_fprog {
        len,
        // The kernel only reads through this pointer; the field is `*mut`
        // because of the C declaration.
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `prog` and the instructions it points to are alive for the
    // whole call; the kernel copies the program and keeps no pointer to it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::c_ulong::from(libc::SECCOMP_SET_MODE_FILTER),
            libc::c_ulong::from(flags),
            &prog as *const libc::sock_fprog,
        )
    };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    if u64::from(flags) & libc::SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
        return Ok(None);
    }
    let fd = i32::try_from(ret).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
    // SAFETY: with NEW_LISTENER a successful call returns a freshly
    // allocated descriptor that nothing else in this process owns.
    Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
}

#[cfg(test)]
/// Whether the running kernel knows the filter return `action`
/// (`SECCOMP_RET_*`, data bits ignored), via `SECCOMP_GET_ACTION_AVAIL`.
pub(crate) fn action_available(action: u32) -> bool {
    let action = action & libc::SECCOMP_RET_ACTION_FULL;
    // SAFETY: the kernel reads one u32 through the pointer during the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::c_ulong::from(libc::SECCOMP_GET_ACTION_AVAIL),
            0 as libc::c_ulong,
            &action as *const u32,
        )
    };
    ret == 0
}

/// Test helper: run `child` in a forked child and return how it ended.
/// Loading a filter is irreversible for the caller, so kernel tests must
/// do it in a throwaway process.
#[cfg(test)]
pub(crate) fn fork_and_wait(child: impl FnOnce() -> i32) -> nix::sys::wait::WaitStatus {
    use nix::sys::wait::waitpid;
    use nix::unistd::{fork, ForkResult};

    // SAFETY: the test harness is multi-threaded, so the child may only rely
    // on what survives fork: glibc resets its malloc locks in the child, and
    // the child never touches stdio locks held by other threads (it does not
    // print) and leaves with _exit, skipping atexit handlers and destructors.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
            // SAFETY: _exit ends the process without running anything else.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::wait::WaitStatus;

    #[test]
    fn known_actions_are_available() {
        assert!(action_available(libc::SECCOMP_RET_ALLOW));
        assert!(action_available(libc::SECCOMP_RET_ERRNO | 1));
        assert!(action_available(libc::SECCOMP_RET_KILL_PROCESS));
        assert!(!action_available(0x7ff8_0000));
    }

    #[test]
    fn loads_allow_all_program() {
        let status = fork_and_wait(|| {
            let allow = [libc::sock_filter {
                code: 0x06, // BPF_RET | BPF_K
                jt: 0,
                jf: 0,
                k: libc::SECCOMP_RET_ALLOW,
            }];
            match set_mode_filter(&allow, 0) {
                Ok(None) => 0,
                _ => 1,
            }
        });
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    }

    #[test]
    fn rejects_empty_program() {
        // In a child: were the kernel to accept it, the test thread would be
        // filtered for good.
        let status = fork_and_wait(|| match set_mode_filter(&[], 0) {
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => 0,
            _ => 1,
        });
        assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    }
}
