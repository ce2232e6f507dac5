//! Whether a container's monitor is alive, in one look that listings can afford for every
//! container: `RUNROOT/containers/<id>/monitor.lock`, on which the monitor holds a POSIX
//! write lock (`fcntl(F_SETLK)`) for its whole life. The kernel drops the lock the moment
//! the process ends, however it ends (`kill -9` included), and a reboot leaves nobody
//! holding it, so a lock found free means the monitor is gone; unlike pid + start time it
//! needs no read of /proc and no parsing.
//!
//! POSIX record locks, not flock: they belong to the process, so a child the monitor
//! forks (the container's init before its exec, a probe) never keeps one alive after the
//! monitor died. Their one pitfall, that closing any descriptor of the file drops the
//! process's lock, is kept away by [`probe`] never opening the file of a lock this
//! process holds.
//!
//! The file appears already locked (made under a temporary name, locked, renamed into
//! place): a reader never finds it free while its monitor lives. Monitors of an older
//! berth have no such file: `monitor.json` (pid, start time, boot id) still decides then.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{anyhow, Result};

pub(crate) const LOCK_FILE: &str = "monitor.lock";

/// The lock files this process holds, kept open for as long as it lives.
static HELD: Mutex<Vec<(PathBuf, File)>> = Mutex::new(Vec::new());

fn whole_file(kind: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

/// The lock file's mode while `pause` has not marked the container, and while it has
/// ([`mark_paused`]): a listing, which has the file open to probe the lock, learns from
/// one fstat whether the container may be paused, without a walk of the path of the
/// runtime's pause mark. A lock file of another mode (made by an older berth, 0600) says
/// nothing of it.
const UNPAUSED: u32 = 0o640;
const PAUSED: u32 = 0o440;

/// Sets the pause mark of the lock file in run directory `dir`: before the container is
/// frozen, and cleared only once it is thawed (never a frozen container whose lock file
/// says unpaused; a mark left on a thawed one is checked against the cgroup). No lock
/// file (a monitor of an older berth) is no error.
pub(crate) fn mark_paused(dir: &Path, paused: bool) -> Result<()> {
    let path = dir.join(LOCK_FILE);
    let mode = if paused { PAUSED } else { UNPAUSED };
    match fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(mode)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(anyhow!(
            "{}: {}",
            path.display(),
            crate::error::errno_text(&e)
        )),
        _ => Ok(()),
    }
}

/// Takes (or takes anew, for a new start of the same container) the monitor lock of the
/// run directory `dir` for this process.
pub(crate) fn hold(dir: &Path) -> Result<()> {
    let path = dir.join(LOCK_FILE);
    let tmp = dir.join(format!(".{LOCK_FILE}.{}.tmp", std::process::id()));
    let r = (|| -> io::Result<File> {
        let f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(UNPAUSED)
            .open(&tmp)?;
        // Exactly this mode, whatever the umask: listings read it (see [`UNPAUSED`]).
        nix::sys::stat::fchmod(&f, nix::sys::stat::Mode::from_bits_truncate(UNPAUSED))?;
        nix::fcntl::fcntl(
            &f,
            nix::fcntl::FcntlArg::F_SETLK(&whole_file(libc::F_WRLCK)),
        )?;
        fs::rename(&tmp, &path)?;
        Ok(f)
    })();
    let f = r.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        anyhow!("{}: {}", path.display(), crate::error::errno_text(&e))
    })?;
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    // The file it replaced is another inode: closing it drops nothing of the new lock.
    held.retain(|(p, _)| p != &path);
    held.push((path, f));
    Ok(())
}

/// What the lock file says of the monitor of run directory `dir` (`name` under `parent`
/// when the caller has that directory open): Some(alive), or None when there is no lock
/// file (no monitor, or one of an older berth). `dir` is only called when a path is
/// needed: a listing probes every running container, relative to `parent`.
pub(crate) fn probe(
    parent: Option<BorrowedFd>,
    name: &str,
    dir: &dyn Fn() -> PathBuf,
) -> Option<bool> {
    probe_with(parent, name, dir, false).alive
}

fn probe_with(
    parent: Option<BorrowedFd>,
    name: &str,
    dir: &dyn Fn() -> PathBuf,
    mark: bool,
) -> Listed {
    {
        let held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        if !held.is_empty() {
            let path = dir().join(LOCK_FILE);
            if held.iter().any(|(p, _)| p == &path) {
                // Ours: never open it (closing would drop our own lock).
                return Listed {
                    alive: path.exists().then_some(true),
                    paused: None,
                };
            }
        }
    }
    let mut buf = [0u8; 256];
    let f = match parent.zip(super::rel_path(&mut buf, name, LOCK_FILE)) {
        Some((fd, rel)) => nix::fcntl::openat(
            fd,
            rel,
            nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map(File::from)
        .map_err(io::Error::from),
        None => File::open(dir().join(LOCK_FILE)),
    };
    // Missing or unreadable: monitor.json decides.
    let Ok(f) = f else {
        return Listed::default();
    };
    let mut l = whole_file(libc::F_WRLCK);
    let alive = match nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_GETLK(&mut l)) {
        Ok(_) => Some(l.l_type != libc::F_UNLCK as libc::c_short),
        Err(_) => None,
    };
    let paused = match alive {
        Some(true) if mark => nix::sys::stat::fstat(&f).ok().and_then(|st| {
            #[allow(clippy::unnecessary_cast)]
            match st.st_mode as u32 & 0o7777 {
                UNPAUSED => Some(false),
                PAUSED => Some(true),
                _ => None,
            }
        }),
        _ => None,
    };
    Listed { alive, paused }
}

/// What a listing learns of a monitor from its lock file: whether it is alive (as
/// [`probe`] says), and, when the file's mode tells, whether `pause` marked it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Listed {
    pub(crate) alive: Option<bool>,
    pub(crate) paused: Option<bool>,
}

/// [`probe`] for a listing: the pause mark too, from the lock file's mode (a stat of the
/// file already open, where the runtime's mark costs a walk of its path).
pub(crate) fn probe_listed(
    parent: Option<BorrowedFd>,
    name: &str,
    dir: &dyn Fn() -> PathBuf,
) -> Listed {
    probe_with(parent, name, dir, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_reads_alive_and_a_dead_holders_reads_gone() {
        let d = std::env::temp_dir().join(format!("berth-live-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        assert_eq!(probe(None, "", &|| d.clone()), None);
        // A child process takes the lock and is killed: the file stays, the lock goes.
        let child = d.join("child");
        fs::create_dir(&child).unwrap();
        let mut c = hold_in_python(&child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while probe(None, "", &|| child.clone()) != Some(true)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(probe(None, "", &|| child.clone()), Some(true));
        c.kill().unwrap();
        c.wait().unwrap();
        assert_eq!(probe(None, "", &|| child.clone()), Some(false));
        // The same, relative to an open parent directory (as listings look).
        let parent = File::open(&d).unwrap();
        use std::os::fd::AsFd;
        assert_eq!(
            probe(Some(parent.as_fd()), "child", &|| child.clone()),
            Some(false)
        );
        assert_eq!(
            probe(Some(parent.as_fd()), "none", &|| d.join("none")),
            None
        );
        // Our own lock reads alive, and probing it does not drop it.
        hold(&d).unwrap();
        assert_eq!(probe(None, "", &|| d.clone()), Some(true));
        assert_eq!(probe(None, "", &|| d.clone()), Some(true));
        HELD.lock().unwrap().clear();
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_listing_reads_the_pause_mark_from_the_live_lock_files_mode() {
        let d = std::env::temp_dir().join(format!("berth-live-mark-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        let child = d.join("c");
        fs::create_dir_all(&child).unwrap();
        let parent = File::open(&d).unwrap();
        use std::os::fd::AsFd;
        let listed = || probe_listed(Some(parent.as_fd()), "c", &|| child.clone());
        let mut c = hold_in_python(&child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while listed().alive != Some(true) {
            assert!(std::time::Instant::now() < deadline, "python never locked");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // A mode of no meaning (an older berth's) tells nothing.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(child.join(LOCK_FILE), fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(listed().paused, None);
        mark_paused(&child, true).unwrap();
        let on = Listed {
            alive: Some(true),
            paused: Some(true),
        };
        assert_eq!(listed(), on);
        mark_paused(&child, false).unwrap();
        assert_eq!(listed().paused, Some(false));
        // A dead holder's mark is not read (the container is not running).
        mark_paused(&child, true).unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
        let gone = Listed {
            alive: Some(false),
            paused: None,
        };
        assert_eq!(listed(), gone);
        // No lock file: nothing known, and marking it is no error.
        let none = probe_listed(Some(parent.as_fd()), "none", &|| d.join("none"));
        assert_eq!(none, Listed::default());
        mark_paused(&d.join("none"), true).unwrap();
        fs::remove_dir_all(&d).unwrap();
    }

    /// A process of its own holding the lock (python's fcntl.lockf is F_SETLK): the
    /// lock must be seen from another process, as commands see a monitor's.
    fn hold_in_python(dir: &Path) -> std::process::Child {
        let script = format!(
            "import fcntl,os,time\nt='{d}/.x'\nf=open(t,'w')\nfcntl.lockf(f,fcntl.LOCK_EX)\nos.rename(t,'{d}/{LOCK_FILE}')\ntime.sleep(600)\n",
            d = dir.display()
        );
        std::process::Command::new("python3")
            .arg("-c")
            .arg(script)
            .spawn()
            .expect("python3")
    }
}
