//! `--init`: berth as the container's PID 1, as tini or catatonit would be. It starts the
//! container's command as its child, forwards every signal it gets to it, reaps every
//! process that ends up its child (orphans of the namespace are re-parented to PID 1),
//! and exits with the command's status (128+signal when it was killed).
//!
//! The binary is a copy of berth made by the monitor in the container's runtime dir and
//! bind-mounted read-only at [`PATH`] (a read-only mount also counts as sealed for the
//! CVE-2019-5736 check, so it does not re-execute). It is reached as `berth monitor init`
//! with the command in [`ARGV_ENV`] (JSON), which is removed before the command runs.

use std::os::unix::process::CommandExt;

use anyhow::{anyhow, bail, Result};
use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// Where the init binary appears in the container.
pub(crate) const PATH: &str = "/run/berth-init";
/// The container's command, as a JSON array.
pub(crate) const ARGV_ENV: &str = "_BERTH_INIT_ARGV";

/// Set in the init's child, which execs the command.
const CHILD_ENV: &str = "_BERTH_INIT_CHILD";

/// Whether this process was started as a container's init (or as its child).
pub(crate) fn requested() -> bool {
    std::env::var_os(ARGV_ENV).is_some()
}

/// The init's child: signals unblocked, the environment cleaned, the command exec'd.
fn exec_child(argv: &[String]) -> Result<i32> {
    let cargs: Vec<std::ffi::CString> = argv
        .iter()
        .map(|a| std::ffi::CString::new(a.as_bytes()).map_err(|_| anyhow!("a NUL byte in {a:?}")))
        .collect::<Result<_>>()?;
    std::env::remove_var(CHILD_ENV);
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
    let e = match nix::unistd::execvp(&cargs[0], &cargs) {
        Err(e) => e,
        Ok(never) => match never {},
    };
    let code = if e == nix::errno::Errno::ENOENT {
        127
    } else {
        126
    };
    Err(crate::front::containers::exit_error(
        code,
        format!("exec {:?}: {}", argv[0], e.desc().to_lowercase()),
    ))
}

pub(crate) fn main() -> Result<i32> {
    let raw = std::env::var(ARGV_ENV).map_err(|_| anyhow!("{ARGV_ENV} is not set"))?;
    std::env::remove_var(ARGV_ENV);
    let argv: Vec<String> = serde_json::from_str(&raw).map_err(|e| anyhow!("{ARGV_ENV}: {e}"))?;
    if argv.is_empty() {
        bail!("{ARGV_ENV}: no command");
    }
    if std::env::var_os(CHILD_ENV).is_some() {
        return exec_child(&argv);
    }
    // Blocked signals are queued even for a namespace's init, whose default-action
    // signals the kernel would otherwise drop: that is how they reach the signalfd.
    let mask = crate::runtime::run::forwarded();
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None)?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC)?;
    // The child is berth again (std spawns without fork: plain clone3 is ENOSYS under
    // Docker's seccomp profile), which unblocks the signals it inherits (std keeps the mask)
    // and execs the command: no signal is lost in between.
    let child = std::process::Command::new("/proc/self/exe")
        .arg0("berth-init")
        .args(["monitor", "init"])
        .env(ARGV_ENV, &raw)
        .env(CHILD_ENV, "1")
        .spawn()
        .map_err(|e| anyhow!("berth-init: {}", crate::error::errno_text(&e)))?
        .id() as i32;
    loop {
        let Ok(Some(info)) = sfd.read_signal() else {
            continue;
        };
        let sig = info.ssi_signo as i32;
        if sig != libc::SIGCHLD {
            if let Ok(s) = Signal::try_from(sig) {
                let _ = nix::sys::signal::kill(Pid::from_raw(child), s);
            }
            continue;
        }
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(p, code)) if p.as_raw() == child => return Ok(code),
                Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == child => {
                    return Ok(128 + s as i32)
                }
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    }
}
