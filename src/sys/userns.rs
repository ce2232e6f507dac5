//! Moving this very process into a new user namespace whose maps another process writes.
//! An unprivileged user's multi-range maps can only be written by the setuid helpers
//! newuidmap/newgidmap, and those must run outside the new namespace (in it, their
//! setuid bit means nothing: root is not mapped there yet). So the helper is forked
//! before the unshare, waits, and writes the maps of its parent once it is inside.

use std::io::Read;
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::sched::CloneFlags;

#[derive(Debug, thiserror::Error)]
pub(crate) enum UsernsError {
    #[error("a user namespace needs a single-threaded process, and berth runs {0} threads here")]
    Threaded(usize),
    #[error("{0}: {1}")]
    Sys(&'static str, &'static str),
    /// What the map writer reported.
    #[error("{0}")]
    Maps(String),
}

fn sys(what: &'static str) -> impl Fn(Errno) -> UsernsError {
    move |e| UsernsError::Sys(what, e.desc())
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(1, |d| d.count())
}

/// Unshares a user namespace and a mount namespace owned by it; `write_maps(pid)` runs in
/// a helper forked just before (still in the parent namespace) and must write this
/// process's uid and gid maps; its error comes back as [`UsernsError::Maps`]. On success
/// this process holds every capability in the new namespace, as unshare(2) gives them.
pub(crate) fn unshare_user_and_mount(
    write_maps: impl FnOnce(i32) -> Result<(), String>,
) -> Result<(), UsernsError> {
    // unshare(CLONE_NEWUSER) refuses a multi-threaded caller (EINVAL): say why instead.
    let n = threads();
    if n > 1 {
        return Err(UsernsError::Threaded(n));
    }
    let pid = std::process::id() as i32;
    let (go_r, go_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    let (done_r, done_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
    match super::clone3(0, None).map_err(sys("fork"))? {
        super::Forked::Child => {
            drop((go_w, done_r));
            helper(pid, go_r, done_w, write_maps)
        }
        super::Forked::Parent { pid: child, .. } => {
            drop((go_r, done_w));
            let wait = || {
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
            };
            if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNS)
            {
                // The helper reads end-of-file and leaves without writing anything.
                drop(go_w);
                wait();
                return Err(sys("unshare a user namespace")(e));
            }
            let told = nix::unistd::write(&go_w, b"g");
            drop(go_w);
            let mut msg = String::new();
            let _ = std::fs::File::from(done_r).read_to_string(&mut msg);
            wait();
            told.map_err(sys("start the id map writer"))?;
            match msg.strip_prefix("ok") {
                Some("") => Ok(()),
                _ if msg.is_empty() => Err(UsernsError::Maps(
                    "the id map writer ended without a word".into(),
                )),
                _ => Err(UsernsError::Maps(msg)),
            }
        }
    }
}

/// Joins the user namespace `ns` (one the user owns: the caller gets every capability in
/// it) and unshares a mount namespace owned by it, as [`unshare_user_and_mount`] leaves a
/// process.
pub(crate) fn join_user_and_unshare_mount(ns: std::os::fd::BorrowedFd) -> Result<(), UsernsError> {
    let n = threads();
    if n > 1 {
        return Err(UsernsError::Threaded(n));
    }
    nix::sched::setns(ns, CloneFlags::CLONE_NEWUSER).map_err(sys("join the user namespace"))?;
    nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(sys("unshare a mount namespace"))
}

/// The forked helper: waits for its parent to be in the new namespace, writes its maps,
/// reports, and ends without running anything of the parent's (no destructors, no
/// buffered output flushed twice).
fn helper(
    pid: i32,
    go: OwnedFd,
    done: OwnedFd,
    write_maps: impl FnOnce(i32) -> Result<(), String>,
) -> ! {
    let mut b = [0u8; 1];
    if nix::unistd::read(&go, &mut b) != Ok(1) {
        super::exit_now(0);
    }
    let msg = match write_maps(pid) {
        Ok(()) => "ok".to_string(),
        Err(e) if e.is_empty() => "writing the id maps failed".to_string(),
        Err(e) => e,
    };
    let _ = nix::unistd::write(&done, msg.as_bytes());
    super::exit_now(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_threaded_process_is_refused_before_anything_is_made() {
        // A second thread of our own, whatever the harness runs tests on.
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || rx.recv());
        let r = unshare_user_and_mount(|_| Err("must not run".into()));
        drop(tx);
        let _ = t.join();
        match r {
            Err(UsernsError::Threaded(n)) => assert!(n > 1),
            other => panic!("{other:?}"),
        }
    }
}
