//! Extended attributes and filesystem contexts (fsopen/fsconfig/fsmount), which nix does
//! not wrap: the image store sets overlay whiteout/opaque xattrs and a layer's own xattrs,
//! and mounts overlays with one `lowerdir+` per layer.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

/// lsetxattr(2): never follows a final symlink (a symlink's own trusted.* xattrs).
pub(crate) fn lsetxattr(path: &CStr, name: &CStr, value: &[u8]) -> nix::Result<()> {
    // SAFETY: path and name are valid C strings and value a valid buffer for the call.
    let ret = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// lgetxattr(2) into a fresh buffer; ENODATA when absent.
pub(crate) fn lgetxattr(path: &CStr, name: &CStr) -> nix::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: path and name are valid C strings; buf is writable for its length.
        let ret = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        match Errno::result(ret) {
            Ok(n) => {
                buf.truncate(n as usize);
                return Ok(buf);
            }
            Err(Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    }
}

/// llistxattr(2): the names, NUL-separated in the kernel's answer, split.
pub(crate) fn llistxattr(path: &CStr) -> nix::Result<Vec<CString>> {
    let mut buf = vec![0u8; 1024];
    let n = loop {
        // SAFETY: path is a valid C string; buf is writable for its length.
        let ret = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        match Errno::result(ret) {
            Ok(n) => break n as usize,
            Err(Errno::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Err(e) => return Err(e),
        }
    };
    Ok(buf[..n]
        .split(|&c| c == 0)
        .filter(|s| !s.is_empty())
        .filter_map(|s| CString::new(s).ok())
        .collect())
}

/// One fsconfig(2) setting: a flag (`userxattr`) or a string (`lowerdir+`, `upperdir`).
pub(crate) enum FsParam<'a> {
    Flag(&'a CStr),
    String(&'a CStr, &'a CStr),
}

/// A detached mount made with the new mount API: fsopen(fstype), one fsconfig per
/// parameter, create, fsmount. On failure the errno and the filesystem's own messages
/// (read from the context fd: "e overlayfs: ...") are returned.
pub(crate) fn fs_mount(
    fstype: &CStr,
    params: &[FsParam],
    attr_flags: u64,
) -> Result<OwnedFd, (Errno, String)> {
    const FSOPEN_CLOEXEC: u32 = 1;
    const FSCONFIG_SET_FLAG: u32 = 0;
    const FSCONFIG_SET_STRING: u32 = 1;
    const FSCONFIG_CMD_CREATE: u32 = 6;
    const FSMOUNT_CLOEXEC: u32 = 1;
    // SAFETY: fstype is a valid C string; the kernel returns a new fd.
    let fs =
        Errno::result(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })
            .map_err(|e| (e, String::new()))?;
    // SAFETY: a fresh fd returned by the kernel.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    let fail = |e: Errno, fs: &OwnedFd| (e, read_fs_log(fs.as_raw_fd()));
    for p in params {
        let (cmd, key, value) = match p {
            FsParam::Flag(k) => (FSCONFIG_SET_FLAG, *k, std::ptr::null()),
            FsParam::String(k, v) => (FSCONFIG_SET_STRING, *k, v.as_ptr()),
        };
        // SAFETY: key (and value when set) are valid C strings for the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_fsconfig,
                fs.as_raw_fd(),
                cmd,
                key.as_ptr(),
                value,
                0,
            )
        };
        Errno::result(ret).map_err(|e| fail(e, &fs))?;
    }
    // SAFETY: no pointers; the fd is borrowed for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    };
    Errno::result(ret).map_err(|e| fail(e, &fs))?;
    // SAFETY: no pointers; the kernel returns a new fd.
    let m = unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            attr_flags,
        )
    };
    let m = Errno::result(m).map_err(|e| fail(e, &fs))?;
    // SAFETY: a fresh fd returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(m as RawFd) })
}

/// The messages a filesystem context queued ("e overlayfs: ..."), joined.
fn read_fs_log(fd: RawFd) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 512];
    for _ in 0..16 {
        // SAFETY: buf is writable for its length; a context fd returns one message per read.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            break;
        }
        let msg = String::from_utf8_lossy(&buf[..n as usize]);
        let msg = msg.trim();
        out.push(msg.get(2..).unwrap_or(msg).to_string());
    }
    out.join("; ")
}

/// Test support: spawns `cmd` in a new user and mount namespace with the given id maps,
/// as uid/gid 0 there (what a rootless user's `podman unshare` is). The child unshares,
/// sends its pid, and waits while a thread of ours writes the maps; it becomes root of
/// the namespace before exec, so that it keeps its capabilities there (an exec by an
/// unmapped uid would drop them).
#[cfg(test)]
pub(crate) fn spawn_in_userns(
    cmd: &mut std::process::Command,
    uid_map: &str,
    gid_map: &str,
) -> std::io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let (pid_r, pid_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (go_r, go_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (uid_map, gid_map) = (uid_map.to_string(), gid_map.to_string());
    // spawn() returns only once the child has exec'd: the maps are written meanwhile.
    let helper = std::thread::spawn(move || -> std::io::Result<()> {
        let mut b = [0u8; 4];
        let mut f = std::fs::File::from(pid_r);
        std::io::Read::read_exact(&mut f, &mut b)?;
        let pid = i32::from_ne_bytes(b);
        std::fs::write(format!("/proc/{pid}/uid_map"), uid_map)?;
        std::fs::write(format!("/proc/{pid}/gid_map"), gid_map)?;
        nix::unistd::write(&go_w, b"g")?;
        Ok(())
    });
    let (pid_w_raw, go_r_raw) = (pid_w.as_raw_fd(), go_r.as_raw_fd());
    // SAFETY: the closure runs in the forked child before exec and only makes raw
    // syscalls on integers and stack buffers (no allocation, no locks), as pre_exec
    // requires.
    unsafe {
        cmd.pre_exec(move || {
            let fail = std::io::Error::last_os_error;
            if libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNS) != 0 {
                return Err(fail());
            }
            let pid = libc::getpid().to_ne_bytes();
            if libc::write(pid_w_raw, pid.as_ptr().cast(), 4) != 4 {
                return Err(fail());
            }
            let mut b = [0u8; 1];
            if libc::read(go_r_raw, b.as_mut_ptr().cast(), 1) != 1 {
                return Err(fail());
            }
            if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
                return Err(fail());
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    drop((pid_w, go_r));
    let helped = helper
        .join()
        .map_err(|_| std::io::Error::other("map writer panicked"))?;
    let child = child?;
    helped?;
    Ok(child)
}

/// ext4's "top of directory hierarchies" flag (`chattr +T`, FS_TOPDIR_FL).
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Marks the directory `dir` as a top of directory hierarchies for the Orlov allocator
/// (`chattr +T`): directories made in it are spread over the filesystem's block groups
/// rather than packed beside it. Filesystems without the flag refuse it (ENOTTY,
/// EOPNOTSUPP); callers take that as a no.
pub(crate) fn set_topdir(dir: &OwnedFd) -> nix::Result<()> {
    // The kernel reads and writes an int whatever the ioctl's declared type.
    let mut flags: libc::c_int = 0;
    // SAFETY: dir is an open fd; flags is a writable int for FS_IOC_GETFLAGS.
    Errno::result(unsafe { libc::ioctl(dir.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) })?;
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(());
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: as above; FS_IOC_SETFLAGS reads the int.
    Errno::result(unsafe { libc::ioctl(dir.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) }).map(drop)
}

/// Forks a detached process that flushes the filesystem of `dir` (syncfs) and then
/// removes the files `names` of `dir` and syncs `dir`: what the image store uses to clear
/// its "committed, not yet on disk" markers without making the command wait for the
/// disk. The child has no terminal and no stdio (a pipe reading our output ends when we
/// do), holds only `dir`, and runs in `/`. It is our child until we exit (we never wait
/// for it) and then init's, or the nearest subreaper's.
pub(crate) fn spawn_syncer(dir: &OwnedFd, names: &[CString]) -> nix::Result<()> {
    let ptrs: Vec<*const libc::c_char> = names.iter().map(|n| n.as_ptr()).collect();
    if !super::fork_raw_detached(&[dir.as_raw_fd()])? {
        return Ok(());
    }
    // SAFETY: the child of a fork of a possibly multi-threaded process: raw syscalls on
    // fd 3 (`dir`) and on C strings allocated before the fork, then _exit.
    unsafe {
        if libc::syncfs(3) == 0 {
            for p in &ptrs {
                libc::unlinkat(3, *p, 0);
            }
            libc::fsync(3);
        }
        libc::_exit(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xattr_roundtrip_on_a_file() {
        let d = std::env::temp_dir().join(format!("berth-xattr-{}", std::process::id()));
        std::fs::write(&d, b"").unwrap();
        let p = CString::new(d.to_str().unwrap()).unwrap();
        match lsetxattr(&p, c"user.berth.test", b"v") {
            Ok(()) => {
                assert_eq!(lgetxattr(&p, c"user.berth.test").unwrap(), b"v");
                assert!(llistxattr(&p)
                    .unwrap()
                    .iter()
                    .any(|n| n.as_c_str() == c"user.berth.test"));
            }
            // tmpfs before 6.6 has no user xattrs.
            Err(e) => assert_eq!(e, Errno::EOPNOTSUPP),
        }
        assert_eq!(lgetxattr(&p, c"user.absent").unwrap_err(), Errno::ENODATA);
        std::fs::remove_file(&d).unwrap();
    }

    #[test]
    fn fs_mount_reports_the_filesystem_message() {
        // A context for a filesystem type that does not exist fails at fsopen.
        let e = fs_mount(c"berth-no-such-fs", &[], 0).unwrap_err();
        assert_eq!(e.0, Errno::ENODEV);
    }
}
