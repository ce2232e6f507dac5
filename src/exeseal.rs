//! CVE-2019-5736: a container process that can open /proc/<pid>/exe of a berth process
//! inside its namespaces (a startContainer hook, a process of a container whose pid
//! namespace `create` or `exec` joins) could reopen it for writing once berth exits and
//! overwrite the host's berth binary. So create, run and exec run from a copy that
//! cannot be written: first choice a read-only clone of the binary's own mount
//! (open_tree and mount_setattr, no copy, as runc 1.2 does), else (no CAP_SYS_ADMIN over
//! our mount namespace: rootless) a sealed in-memory copy. Children also mark themselves
//! non-dumpable first thing. Commands that never enter a container (state, kill,
//! delete, list…) never pay for it.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::statvfs::{fstatvfs, FsFlags};

const SEALS: SealFlag = SealFlag::F_SEAL_SEAL
    .union(SealFlag::F_SEAL_SHRINK)
    .union(SealFlag::F_SEAL_GROW)
    .union(SealFlag::F_SEAL_WRITE);

/// Set across the re-exec so that a copy that still does not look sealed fails instead
/// of re-executing forever.
const REEXEC_MARK: &str = "_BERTH_EXE_SEALED";
/// Whether the mark was there when this process started (read once: the mark is removed).
static REEXECED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

/// True when the running binary cannot be written through /proc/self/exe: a sealed
/// memfd, or a file on a read-only mount (our clone, or a read-only /usr).
pub(crate) fn is_sealed() -> bool {
    let Ok(f) = File::open("/proc/self/exe") else {
        return false;
    };
    if fcntl(f.as_fd(), FcntlArg::F_GET_SEALS)
        .is_ok_and(|s| SealFlag::from_bits_truncate(s).contains(SEALS))
    {
        return true;
    }
    fstatvfs(&f).is_ok_and(|st| st.flags().contains(FsFlags::ST_RDONLY))
}

/// A read-only, detached bind mount of our own binary, as an O_PATH fd to exec.
fn readonly_clone() -> nix::Result<OwnedFd> {
    let exe = nix::fcntl::open(
        "/proc/self/exe",
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let tree = crate::sys::open_tree(
        exe.as_fd(),
        c"",
        crate::sys::OPEN_TREE_CLONE | libc::AT_EMPTY_PATH as u32,
    )?;
    crate::sys::mount_setattr(tree.as_fd(), false, crate::sys::MOUNT_ATTR_RDONLY, 0, 0)?;
    Ok(tree)
}

fn sealed_memfd() -> Result<OwnedFd> {
    let mut src = File::open("/proc/self/exe").context("open /proc/self/exe")?;
    let fd = memfd_create(
        c"berth",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(|e| anyhow!("memfd_create: {}", crate::error::errno_desc(e)))?;
    let mut dst = File::from(fd);
    std::io::copy(&mut src, &mut dst).context("copying berth into a sealed memfd")?;
    fcntl(dst.as_fd(), FcntlArg::F_ADD_SEALS(SEALS))
        .map_err(|e| anyhow!("sealing memfd: {}", crate::error::errno_desc(e)))?;
    Ok(OwnedFd::from(dst))
}

fn reexec(exe: BorrowedFd) -> Result<std::convert::Infallible> {
    let args: Vec<CString> = std::env::args_os()
        .map(|a| CString::new(a.into_encoded_bytes()).unwrap_or_default())
        .collect();
    let mut env: Vec<CString> = std::env::vars_os()
        .filter(|(k, _)| k != REEXEC_MARK)
        .map(|(k, v)| {
            let mut b = k.into_encoded_bytes();
            b.push(b'=');
            b.extend(v.into_encoded_bytes());
            CString::new(b).unwrap_or_default()
        })
        .collect();
    env.push(CString::new(format!("{REEXEC_MARK}=1")).unwrap_or_default());
    let e = nix::unistd::fexecve(exe, &args, &env).unwrap_err();
    Err(anyhow!(
        "re-executing from a sealed copy: {}",
        crate::error::errno_desc(e)
    ))
}

/// Makes sure this process runs from a binary that cannot be written before it enters
/// a container. Re-executes (same arguments and environment) at most once.
pub(crate) fn ensure_sealed() -> Result<()> {
    let reexeced = *REEXECED.get_or_init(|| {
        let set = std::env::var_os(REEXEC_MARK).is_some();
        if set {
            // Not for the container's or the hooks' environment.
            std::env::remove_var(REEXEC_MARK);
        }
        set
    });
    if is_sealed() {
        return Ok(());
    }
    if reexeced {
        bail!("re-executed from a sealed copy of berth, but /proc/self/exe is still writable");
    }
    match readonly_clone() {
        Ok(tree) => reexec(tree.as_fd()).map(drop),
        Err(_) => reexec(sealed_memfd()?.as_fd()).map(drop),
    }
}

/// Whether the raw command line enters a container: the runc face's `create`, `run` and
/// `exec`; the people face's `run` and `exec` (the CLI is then the container's parent)
/// and the hidden `monitor`. Checked before the arguments are parsed so that the
/// re-execution does not pay for a parse it throws away. Global flags taking a value are
/// skipped with it; anything unexpected answers false and leaves the decision to the
/// check after parsing.
pub(crate) fn wants_early_seal(args: &[std::ffi::OsString]) -> bool {
    let base = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let mut it = args.iter().skip(1).map(|a| a.to_str()).peekable();
    let mut runc = base == "runc" || base.ends_with("-runc");
    if !runc && it.peek() == Some(&Some("oci")) {
        it.next();
        runc = true;
    }
    let (enters, valued, plain): (&[&str], &[&str], &[&str]) = if runc {
        (
            &["create", "run", "exec"],
            &["--root", "--log", "--log-format", "--criu"],
            &["--debug", "--systemd-cgroup"],
        )
    } else {
        (
            &["run", "exec", "monitor"],
            &["--root", "--runroot", "--log-level", "--cgroup-manager"],
            &[],
        )
    };
    while let Some(a) = it.next() {
        let Some(a) = a else { return false };
        match a {
            // A detached `run` only starts a monitor, from a sealed copy (`sealed_exe`).
            "run" if !runc => return !detaches(it),
            _ if enters.contains(&a) => return true,
            "container" if !runc => {
                return match it.next() {
                    Some(Some("run")) => !detaches(it),
                    next => matches!(next, Some(Some("exec"))),
                };
            }
            _ if valued.contains(&a) => {
                it.next();
            }
            _ if plain.contains(&a) => {}
            _ if a.starts_with("--") && a.contains('=') => {}
            _ => return false,
        }
    }
    false
}

/// Whether the rest of a people `run` command line looks detached (`-d`, `--detach`, `-dit`
/// ...). A guess, before the parse: `run` seals itself after parsing when it is not.
fn detaches<'a>(rest: impl Iterator<Item = Option<&'a str>>) -> bool {
    rest.map_while(|a| a.filter(|a| *a != "--")).any(|a| {
        matches!(a, "--detach" | "--detach=true")
            || (a.len() > 1
                && a.starts_with('-')
                && a[1..].contains('d')
                && a[1..].bytes().all(|b| matches!(b, b'd' | b'i' | b't')))
    })
}

/// A copy of berth to execute that cannot be written, for a process started to enter a
/// container (a monitor) by one that need not have been sealed itself: None when this
/// process already runs from one (then /proc/self/exe is it) or when no read-only clone
/// can be made here (rootless: the new process then seals itself).
pub(crate) fn sealed_exe() -> Option<OwnedFd> {
    if is_sealed() {
        return None;
    }
    readonly_clone().ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn test_binary_is_not_sealed() {
        assert!(!super::is_sealed());
    }

    #[test]
    fn early_seal_finds_the_subcommand_past_global_flags() {
        let w = |s: &str| {
            let v: Vec<std::ffi::OsString> = s.split(' ').map(Into::into).collect();
            super::wants_early_seal(&v)
        };
        assert!(w("berth-runc run -b x c1"));
        assert!(w(
            "/x/berth-runc --root /run/x --log l --log-format json --debug exec c1 true"
        ));
        assert!(w("runc --root=/r --systemd-cgroup create c1"));
        assert!(w("berth oci --root=/r create c1"));
        // A flag value that looks like a subcommand is skipped with its flag.
        assert!(!w("berth-runc --root run list"));
        assert!(!w("berth oci list"));
        assert!(!w("berth-runc state run"));
        // Unknown shapes leave the decision to the parsed command line.
        assert!(!w("berth-runc --rootless run c1"));
        assert!(!w("berth-runc -x run"));
        assert!(!w("berth-runc"));
        // The people face: its own globals, and `create` makes no process.
        assert!(w("berth --root /r --runroot /rr run img"));
        assert!(w("berth run -it img sh"));
        assert!(w("berth container run img"));
        // A detached run seals after parsing if it was not detached after all.
        assert!(!w("berth --root /r --runroot /rr run -d img"));
        assert!(!w("berth run --rm -dit img sh"));
        assert!(!w("berth container run --detach img"));
        assert!(w("berth run img -- -d"));
        assert!(w("berth container exec c1 true"));
        assert!(w("berth monitor abc"));
        assert!(!w("berth create img"));
        assert!(!w("berth container ls"));
        assert!(!w("berth ps run"));
        assert!(!w("berth"));
    }
}
