//! The only module with `unsafe`: thin wrappers over syscalls that nix does not cover
//! (clone3, openat2, close_range, pidfd_*, keyctl, terminal ioctls, setdomainname), the
//! seccomp loader, and the binary's global allocator (`arena`).
//! Every wrapper returns `nix::Result` so callers keep errno for their messages.

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

pub(crate) mod arena;
pub(crate) mod files;
pub(crate) mod json;
pub(crate) mod localtime;
pub(crate) mod netlink;
pub(crate) mod nfnetlink;
pub(crate) mod residency;
pub(crate) mod seccomp;
pub(crate) mod userns;

/// What clone3 returned: in the parent the child's pid and pidfd, in the child nothing.
pub(crate) enum Forked {
    Parent { pid: i32, pidfd: OwnedFd },
    Child,
}

#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// fork(2)-like clone3 with namespace flags, CLONE_PIDFD, and optionally CLONE_INTO_CGROUP.
/// The caller must be single-threaded (berth's OCI paths are): the child is a copy of this
/// process that continues after the call, as with fork.
pub(crate) fn clone3(flags: u64, cgroup_fd: Option<RawFd>) -> nix::Result<Forked> {
    let mut pidfd: RawFd = -1;
    let mut args = CloneArgs {
        flags: flags | libc::CLONE_PIDFD as u64,
        pidfd: &mut pidfd as *mut RawFd as u64,
        // With CLONE_PARENT the kernel wants 0 and gives the child our own exit signal.
        exit_signal: if flags & libc::CLONE_PARENT as u64 != 0 {
            0
        } else {
            libc::SIGCHLD as u64
        },
        ..Default::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 with a null stack behaves as fork: the child gets a copy of the
    // address space. `args` and `pidfd` outlive the call; the kernel writes the pidfd
    // into `pidfd` in the parent only.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match ret {
        -1 => Err(Errno::last()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent {
            pid: pid as i32,
            // SAFETY: the kernel just created this fd for us and nothing else owns it.
            pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
        }),
    }
}

/// A small file the kernel generates (/proc, cgroupfs), whole. Such files say they are
/// empty, so `fs::read_to_string` stats them and then probes them with reads of 32 bytes
/// and up; read through a buffer on the stack, one read takes it and a second sees the end,
/// and the text is allocated once at its size.
pub(crate) fn read_small(path: impl AsRef<std::path::Path>) -> std::io::Result<String> {
    use std::io::Read;
    // openat rather than File::open: musl's open() follows every O_CLOEXEC open with an
    // fcntl(F_SETFD) (for kernels older than 2.6.23), a syscall per file read here.
    let fd = nix::fcntl::openat(
        nix::fcntl::AT_FDCWD,
        path.as_ref(),
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(std::io::Error::from)?;
    let mut f = std::fs::File::from(fd);
    let mut buf = [0u8; 4096];
    let mut out = Vec::new();
    loop {
        match f.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    String::from_utf8(out).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

pub(crate) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
pub(crate) const CLONE_NEWTIME: u64 = 0x80;

pub(crate) const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub(crate) const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// openat2(2): used with RESOLVE_IN_ROOT so that every path from a bundle is resolved as if
/// `dirfd` were "/", symlinks and ".." included.
pub(crate) fn openat2(
    dirfd: BorrowedFd,
    path: &CStr,
    flags: i32,
    mode: u32,
    resolve: u64,
) -> nix::Result<OwnedFd> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: mode as u64,
        resolve,
    };
    loop {
        // SAFETY: `how` and `path` are valid for the duration of the call.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dirfd.as_raw_fd(),
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if ret >= 0 {
            // SAFETY: a fresh fd returned by the kernel.
            return Ok(unsafe { OwnedFd::from_raw_fd(ret as RawFd) });
        }
        // EAGAIN: a concurrent rename raced the lookup; the kernel asks us to retry.
        match Errno::last() {
            Errno::EAGAIN | Errno::EINTR => continue,
            e => return Err(e),
        }
    }
}

/// renameat2(2) with RENAME_EXCHANGE: `a` and `b` trade places atomically (both must
/// exist). ENOENT when `b` does not; EINVAL where the filesystem cannot exchange.
pub(crate) fn exchange(a: &std::path::Path, b: &std::path::Path) -> nix::Result<()> {
    use nix::NixPath;
    a.with_nix_path(|a| {
        b.with_nix_path(|b| {
            // SAFETY: both paths are NUL-terminated C strings valid for the call; the
            // syscall reads them and touches no memory of ours otherwise.
            let ret = unsafe {
                libc::syscall(
                    libc::SYS_renameat2,
                    libc::AT_FDCWD,
                    a.as_ptr(),
                    libc::AT_FDCWD,
                    b.as_ptr(),
                    libc::RENAME_EXCHANGE,
                )
            };
            Errno::result(ret).map(drop)
        })
    })??
}

pub(crate) const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;

/// close_range(2), used with CLOSE_RANGE_CLOEXEC so fds vanish at execve.
pub(crate) fn close_range(first: u32, last: u32, flags: u32) -> nix::Result<()> {
    // SAFETY: plain syscall on integers; marking fds close-on-exec cannot break memory safety.
    let ret = unsafe { libc::syscall(libc::SYS_close_range, first, last, flags) };
    Errno::result(ret).map(drop)
}

/// pidfd_open(2): a handle that keeps naming this process even if the pid is reused.
pub(crate) fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: plain syscall on integers.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    Errno::result(ret).map(|fd| {
        // SAFETY: a fresh fd returned by the kernel.
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    })
}

/// pidfd_send_signal(2).
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd, sig: i32) -> nix::Result<()> {
    // SAFETY: a null siginfo is allowed and means "as kill(2)".
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(ret).map(drop)
}

/// keyctl(KEYCTL_JOIN_SESSION_KEYRING, name): a private session keyring per container,
/// so that containers do not share the host's keys.
pub(crate) fn join_session_keyring(name: &CStr) -> nix::Result<()> {
    const KEYCTL_JOIN_SESSION_KEYRING: libc::c_int = 1;
    // SAFETY: name is a valid NUL-terminated string for the duration of the call.
    let ret =
        unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, name.as_ptr()) };
    Errno::result(ret).map(drop)
}

/// setdomainname(2) (nix has no wrapper).
pub(crate) fn setdomainname(name: &str) -> nix::Result<()> {
    // SAFETY: the pointer and length describe `name`'s bytes for the duration of the call.
    let ret = unsafe { libc::setdomainname(name.as_ptr().cast(), name.len()) };
    Errno::result(ret).map(drop)
}

/// TIOCSWINSZ on a terminal.
pub(crate) fn set_winsize(fd: BorrowedFd, rows: u16, cols: u16) -> nix::Result<()> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize struct that lives for the call.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    Errno::result(ret).map(drop)
}

/// TIOCGWINSZ on a terminal.
pub(crate) fn get_winsize(fd: BorrowedFd) -> nix::Result<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize struct into memory we own.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
    Errno::result(ret).map(|_| (ws.ws_row, ws.ws_col))
}

/// TIOCSCTTY: make the terminal on `fd` our controlling terminal (after setsid).
pub(crate) fn set_controlling_tty(fd: BorrowedFd) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an int argument, no memory.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Errno::result(ret).map(drop)
}

/// TIOCGPTPEER: open the pty's peer through the master, without a path lookup in a
/// mount namespace the container controls.
pub(crate) fn open_pty_peer(master: BorrowedFd) -> nix::Result<OwnedFd> {
    // SAFETY: TIOCGPTPEER takes open flags and returns a new fd.
    let ret = unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    Errno::result(ret).map(|fd| {
        // SAFETY: a fresh fd returned by the kernel.
        unsafe { OwnedFd::from_raw_fd(fd) }
    })
}

/// Restores every signal's disposition to default and unblocks all signals; used by the
/// container init before exec so it starts with a clean slate.
pub(crate) fn reset_signals() {
    for sig in 1..libc::SIGRTMAX() {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL is always sound; errors for invalid numbers are ignored.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// _exit(2) without running Rust or libc atexit handlers: used by forked children that must
/// never unwind into the parent's code.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no Rust state.
    unsafe { libc::_exit(code) }
}

pub(crate) const OPEN_TREE_CLONE: u32 = 1;
pub(crate) const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x04;
pub(crate) const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x01;

/// open_tree(2): a detached copy of the mount at `dirfd`/`path` (bind source by fd).
pub(crate) fn open_tree(dirfd: BorrowedFd, path: &CStr, flags: u32) -> nix::Result<OwnedFd> {
    // SAFETY: path is a valid C string for the call; the kernel returns a new fd.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            flags | libc::O_CLOEXEC as u32,
        )
    };
    Errno::result(ret).map(|fd| {
        // SAFETY: a fresh fd returned by the kernel.
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    })
}

/// A detached, empty, read-only tmpfs (fsopen, fsconfig, fsmount): a mount that exists
/// nowhere until moved onto a target by fd, made without any path in the container.
pub(crate) fn empty_readonly_tmpfs() -> nix::Result<OwnedFd> {
    const FSOPEN_CLOEXEC: u32 = 1;
    const FSCONFIG_SET_STRING: u32 = 1;
    const FSCONFIG_CMD_CREATE: u32 = 6;
    const FSMOUNT_CLOEXEC: u32 = 1;
    // SAFETY: the name is a static C string; the kernel returns a new fd.
    let fs = Errno::result(unsafe {
        libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC)
    })?;
    // SAFETY: a fresh fd returned by the kernel.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as RawFd) };
    // SAFETY: key and value are static C strings; the fd is borrowed for the call.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            c"size".as_ptr(),
            c"0".as_ptr(),
            0,
        )
    })?;
    // SAFETY: no pointers; the fd is borrowed for the call.
    Errno::result(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_void>(),
            0,
        )
    })?;
    // SAFETY: no pointers; the fd is borrowed for the call; the kernel returns a new fd.
    let m = Errno::result(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR_RDONLY,
        )
    })?;
    // SAFETY: a fresh fd returned by the kernel.
    Ok(unsafe { OwnedFd::from_raw_fd(m as RawFd) })
}

/// move_mount(2) from one fd onto another, both by empty path: no path lookup at all, so a
/// container-controlled symlink cannot redirect where the mount lands.
pub(crate) fn move_mount_fd(from: BorrowedFd, to: BorrowedFd) -> nix::Result<()> {
    let empty = c"";
    // SAFETY: both paths are the static empty C string; fds are borrowed for the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            from.as_raw_fd(),
            empty.as_ptr(),
            to.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    };
    Errno::result(ret).map(drop)
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// mount_setattr(2) on the mount `fd` refers to (AT_EMPTY_PATH), optionally recursive.
pub(crate) fn mount_setattr(
    fd: BorrowedFd,
    recursive: bool,
    set: u64,
    clr: u64,
    propagation: u64,
) -> nix::Result<()> {
    mount_setattr_raw(
        fd,
        recursive,
        MountAttr {
            attr_set: set,
            attr_clr: clr,
            propagation,
            userns_fd: 0,
        },
    )
}

pub(crate) const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// Makes the detached mount `fd` idmapped through the user namespace `userns`.
pub(crate) fn mount_setattr_idmap(
    fd: BorrowedFd,
    recursive: bool,
    userns: BorrowedFd,
) -> nix::Result<()> {
    mount_setattr_raw(
        fd,
        recursive,
        MountAttr {
            attr_set: MOUNT_ATTR_IDMAP,
            attr_clr: 0,
            propagation: 0,
            userns_fd: userns.as_raw_fd() as u64,
        },
    )
}

fn mount_setattr_raw(fd: BorrowedFd, recursive: bool, attr: MountAttr) -> nix::Result<()> {
    let flags = libc::AT_EMPTY_PATH | if recursive { libc::AT_RECURSIVE } else { 0 };
    // SAFETY: `attr` lives for the call and its size is passed; path is the empty C string.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// Brings up `lo` in the current network namespace (SIOCGIFFLAGS/SIOCSIFFLAGS on an
/// AF_INET datagram socket), as runc and crun do for a new network namespace.
pub(crate) fn loopback_up() -> nix::Result<()> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let sock = socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `req` is a valid ifreq that lives for both calls; the kernel reads the name
    // and reads or writes only ifr_flags.
    unsafe {
        Errno::result(libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFFLAGS as libc::Ioctl,
            &mut req,
        ))?;
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        Errno::result(libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCSIFFLAGS as libc::Ioctl,
            &req,
        ))?;
    }
    Ok(())
}

/// The CLONE_NEW* type of a namespace fd (ioctl NS_GET_NSTYPE). Unlike the /proc/self/fd
/// link text, this also works for a namespace bind-mounted elsewhere (/run/netns/x).
pub(crate) fn ns_type(fd: BorrowedFd) -> nix::Result<i32> {
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: NS_GET_NSTYPE takes no argument and only returns an int.
    let ret = unsafe { libc::ioctl(fd.as_raw_fd(), NS_GET_NSTYPE as libc::Ioctl) };
    Errno::result(ret)
}

/// Takes ownership of an fd the kernel just gave us (SCM_RIGHTS): nothing else refers to it.
pub(crate) fn adopt_fd(fd: RawFd) -> OwnedFd {
    // SAFETY: callers pass only fds freshly received from the kernel that no other owner holds.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// pidfd_getfd(2): a copy of fd `target` of the process behind `pidfd` (the seccomp
/// listener of the init, fetched by the parent).
pub(crate) fn pidfd_getfd(pidfd: BorrowedFd, target: RawFd) -> nix::Result<OwnedFd> {
    // SAFETY: plain syscall on integers; the kernel returns a new fd we own.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), target, 0) };
    Errno::result(ret).map(|fd| {
        // SAFETY: a fresh fd returned by the kernel.
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    })
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// The BPF_PROG_LOAD part of `union bpf_attr` up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct BpfProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// The BPF_PROG_ATTACH part of `union bpf_attr`.
#[repr(C)]
struct BpfProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

/// Loads a BPF_PROG_TYPE_CGROUP_DEVICE program (`insns` are encoded eBPF instructions).
pub(crate) fn bpf_load_device_prog(insns: &[u64]) -> nix::Result<OwnedFd> {
    let license = c"Apache-2.0";
    let mut name = [0u8; 16];
    name[..9].copy_from_slice(b"berth_dev");
    let attr = BpfProgLoad {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: u32::try_from(insns.len()).map_err(|_| Errno::E2BIG)?,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        prog_name: name,
        expected_attach_type: BPF_CGROUP_DEVICE,
        ..Default::default()
    };
    // SAFETY: `attr` is a valid bpf_attr prefix of the size passed; the pointers in it
    // (instructions, license) outlive the call and the kernel only reads them.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const BpfProgLoad,
            std::mem::size_of::<BpfProgLoad>(),
        )
    };
    Errno::result(ret).map(|fd| {
        // SAFETY: a fresh fd returned by the kernel.
        unsafe { OwnedFd::from_raw_fd(fd as RawFd) }
    })
}

/// Attaches a device program to the cgroup2 directory `cgroup` (multi-attach, so that
/// programs of parent cgroups keep applying too).
pub(crate) fn bpf_attach_device_prog(cgroup: BorrowedFd, prog: BorrowedFd) -> nix::Result<()> {
    let attr = BpfProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        replace_bpf_fd: 0,
    };
    // SAFETY: `attr` is a valid bpf_attr prefix of the size passed, read by the kernel.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_ATTACH,
            &attr as *const BpfProgAttach,
            std::mem::size_of::<BpfProgAttach>(),
        )
    };
    Errno::result(ret).map(drop)
}

/// Dies of `sig` as if it had not been handled: default disposition, unblocked, raised.
/// `code` is the exit status should the signal not end the process.
pub(crate) fn die_of_signal(sig: i32, code: i32) -> ! {
    // SAFETY: installing SIG_DFL is always sound.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
    }
    let mut set = nix::sys::signal::SigSet::empty();
    if let Ok(s) = nix::sys::signal::Signal::try_from(sig) {
        set.add(s);
        let _ = nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_UNBLOCK,
            Some(&set),
            None,
        );
        let _ = nix::sys::signal::raise(s);
    }
    exit_now(code)
}

/// Spawns `cmd` as a helper that dies with the calling thread (PR_SET_PDEATHSIG SIGKILL)
/// and inherits no fd beyond its stdio and `keep` (as fds 3, 4, ...). Returns the child
/// and a pidfd for it.
pub(crate) fn spawn_tied(
    cmd: &mut std::process::Command,
    keep: &[BorrowedFd],
) -> std::io::Result<(std::process::Child, OwnedFd)> {
    use std::os::unix::process::CommandExt;
    const MAX_KEEP: usize = 8;
    if keep.len() > MAX_KEEP {
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    // Copies above the targets, so that no dup2 below overwrites a source.
    let mut high: Vec<OwnedFd> = Vec::new();
    for fd in keep {
        let d = nix::fcntl::fcntl(*fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(64))?;
        high.push(adopt_fd(d));
    }
    let mut raw = [-1 as RawFd; MAX_KEEP];
    for (i, d) in high.iter().enumerate() {
        raw[i] = d.as_raw_fd();
    }
    let n = high.len();
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs between fork and exec and calls only async-signal-safe
    // syscalls (prctl, getppid, close_range, dup2) on copied integers; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died before the prctl: no signal would ever come.
            if libc::getppid() != parent.as_raw() {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC);
            for (i, fd) in raw.iter().take(n).enumerate() {
                // dup2 leaves the new fd without FD_CLOEXEC: it survives the exec.
                if libc::dup2(*fd, 3 + i as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    drop(high);
    let pidfd = pidfd_open(child.id() as i32).map_err(std::io::Error::from)?;
    Ok((child, pidfd))
}

/// Forks a helper that dies with the calling thread (PR_SET_PDEATHSIG SIGKILL, as
/// `spawn_tied`) and runs `child` in it with copies of `keep` as its only fds beyond
/// /dev/null as stdio, then exits (a panic too: it never returns into the caller's code).
/// The caller must be single-threaded, as for `clone3` (a fork of a threaded process may
/// inherit a malloc lock held by another thread); the child may start threads. Returns
/// the child's pid and a pidfd for it.
pub(crate) fn fork_tied(
    keep: &[BorrowedFd],
    child: impl FnOnce(Vec<OwnedFd>) -> i32,
) -> nix::Result<(i32, OwnedFd)> {
    let parent = nix::unistd::getpid();
    match clone3(0, None)? {
        Forked::Parent { pid, pidfd } => Ok((pid, pidfd)),
        Forked::Child => {
            let run = || match tied_child(parent, keep) {
                Ok(fds) => child(fds),
                Err(_) => 1,
            };
            exit_now(std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or(101))
        }
    }
}

/// In `fork_tied`'s child: the death signal, and every fd closed but stdio and `keep`.
fn tied_child(parent: nix::unistd::Pid, keep: &[BorrowedFd]) -> nix::Result<Vec<OwnedFd>> {
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
    // The parent died before the prctl: no signal would ever come.
    if nix::unistd::getppid() != parent {
        return Err(Errno::ESRCH);
    }
    let mut fds = Vec::new();
    for fd in keep {
        let d = nix::fcntl::fcntl(*fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))?;
        fds.push(adopt_fd(d));
    }
    // Stdio on /dev/null: whatever would be written there (a panic's message) reaches no
    // one's terminal, log or socket.
    // Raw: closed below with the rest, unless it is one of 0-2 already.
    let null = std::os::fd::IntoRawFd::into_raw_fd(nix::fcntl::open(
        "/dev/null",
        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?);
    for n in 0..3 {
        if null != n {
            // SAFETY: dup2 on integers; fds 0-2 are owned by no Rust object in this child.
            Errno::result(unsafe { libc::dup2(null, n) })?;
        }
    }
    let mut open: Vec<u32> = vec![0, 1, 2];
    open.extend(fds.iter().map(|f| f.as_raw_fd() as u32));
    open.sort_unstable();
    let mut from = 0u32;
    for k in open {
        if k > from {
            close_range(from, k - 1, 0)?;
        }
        from = k + 1;
    }
    close_range(from, u32::MAX, 0)?;
    Ok(fds)
}

/// A process holding a network namespace of its own (made by it, so owned by our user
/// namespace) until it is killed: not our child (forked twice, it is reaped by whoever
/// reaps orphans), in a session of its own, keeping none of our fds. The forked sides
/// make only syscalls, so a threaded caller is fine. Returns its pid once the namespace
/// exists.
pub(crate) fn spawn_netns_holder() -> nix::Result<i32> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    match clone3(0, None)? {
        Forked::Child => {
            drop(r);
            let _ = nix::unistd::setsid();
            match clone3(0, None) {
                Ok(Forked::Child) => {
                    if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
                        exit_now(1);
                    }
                    let _ = nix::sys::prctl::set_name(c"berth-netns");
                    let me = nix::unistd::getpid().as_raw();
                    let _ = nix::unistd::write(&w, &me.to_ne_bytes());
                    let _ = close_range(0, u32::MAX, 0);
                    reset_signals();
                    loop {
                        // SAFETY: pause(2) has no arguments and touches no memory.
                        unsafe {
                            libc::pause();
                        }
                    }
                }
                Ok(Forked::Parent { .. }) => exit_now(0),
                Err(_) => exit_now(1),
            }
        }
        Forked::Parent { pid, .. } => {
            drop(w);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            let mut b = [0u8; 4];
            let mut got = 0;
            while got < 4 {
                match nix::unistd::read(&r, &mut b[got..]) {
                    Ok(0) => return Err(Errno::ECHILD),
                    Ok(n) => got += n,
                    Err(Errno::EINTR) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(i32::from_ne_bytes(b))
        }
    }
}

/// Forks a detached process that writes `msg` to `sock` once and exits: a request the
/// kernel carries out inside the write (a netlink one) whose cost the caller must not wait
/// for. The child keeps only `sock` (stdio on /dev/null), leaves our session, and is our
/// child until we exit (we never wait for it), then the nearest subreaper's.
pub(crate) fn spawn_sender(sock: BorrowedFd, msg: &[u8]) -> nix::Result<()> {
    spawn_holder(sock, Some(msg), None)
}

/// Hands the last reference to `sock` to a detached process that holds it `linger` after
/// ours is closed, then exits: what the kernel does when the socket is released is that
/// process's business, and after a while it may have nothing left to do (an nfnetlink
/// socket's release waits for the grace period after the last transaction, holding the
/// lock every transaction takes, unless that period is over).
pub(crate) fn close_in_background(sock: OwnedFd, linger: std::time::Duration) -> nix::Result<()> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    spawn_holder(sock.as_fd(), None, Some((r.as_fd(), linger)))?;
    drop(sock);
    // The child's read ends here: ours is closed by now.
    drop(w);
    Ok(())
}

/// The child of [`spawn_sender`] and [`close_in_background`]: sends `msg` on `sock` if
/// given; if given a gate, waits for it to reach end of file and then for the linger
/// time; exits.
fn spawn_holder(
    sock: BorrowedFd,
    msg: Option<&[u8]>,
    gate: Option<(BorrowedFd, std::time::Duration)>,
) -> nix::Result<()> {
    let linger = libc::timespec {
        tv_sec: gate.map_or(0, |g| g.1.as_secs() as libc::time_t),
        tv_nsec: gate.map_or(0, |g| g.1.subsec_nanos() as libc::c_long),
    };
    let fds = [sock.as_raw_fd(), gate.map_or(-1, |g| g.0.as_raw_fd())];
    let keep = if gate.is_some() { &fds[..] } else { &fds[..1] };
    if !fork_raw_detached(keep)? {
        return Ok(());
    }
    // SAFETY: the child of a fork of a possibly multi-threaded process: raw syscalls on
    // integers and on `msg`, allocated before the fork, then _exit.
    unsafe {
        if let Some(m) = msg {
            libc::send(3, m.as_ptr().cast(), m.len(), 0);
        }
        if gate.is_some() {
            let mut b = 0u8;
            while libc::read(4, (&mut b as *mut u8).cast(), 1) < 0
                && *libc::__errno_location() == libc::EINTR
            {}
            libc::nanosleep(&linger, std::ptr::null_mut());
        }
        libc::_exit(0);
    }
}

/// Forks a detached child for work made of raw syscalls alone (the caller may be
/// multi-threaded: the child must not allocate, lock or do Rust I/O, and must leave by
/// _exit). The child is in a session of its own, in `/`, stdio on /dev/null, with `keep`
/// as fds 3, 4, ... in order and nothing else. Ok(true) in the child, Ok(false) in the
/// parent, which never waits for it (it is our child until we exit, then the nearest
/// subreaper's).
pub(crate) fn fork_raw_detached(keep: &[RawFd]) -> nix::Result<bool> {
    // SAFETY: fork; the child below makes raw syscalls only (the slice was made before).
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(Errno::last());
    }
    if pid > 0 {
        return Ok(false);
    }
    // SAFETY: the child, as above: raw syscalls only, on integers and C literals.
    unsafe {
        libc::setsid();
        libc::chdir(c"/".as_ptr());
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if null >= 0 {
            for n in 0..3 {
                libc::dup2(null, n);
            }
        }
        // Out of the way of 3, 4, ... first: any may be another's number now.
        let mut high = [-1; 8];
        for (i, fd) in keep.iter().take(8).enumerate() {
            high[i] = libc::fcntl(*fd, libc::F_DUPFD, 16);
            if high[i] < 0 {
                libc::_exit(1);
            }
        }
        for (i, fd) in high.iter().take(keep.len().min(8)).enumerate() {
            if libc::dup2(*fd, 3 + i as i32) != 3 + i as i32 {
                libc::_exit(1);
            }
        }
        libc::syscall(
            libc::SYS_close_range,
            3 + keep.len().min(8) as u32,
            u32::MAX,
            0u32,
        );
    }
    Ok(true)
}

/// Forks a detached copy of this process to finish work no one waits for: in its own
/// session, stdio on /dev/null, no fd of ours but `keep` (same numbers). Ok(true) in the
/// child, which must leave by [`exit_now`]; Ok(false) in the parent, which never waits
/// for it. ENOTSUP when this process has other threads (one may hold a lock the child
/// would need, as for [`clone3`]): the caller does the work itself.
pub(crate) fn fork_detached(keep: &[BorrowedFd]) -> nix::Result<bool> {
    let threads = std::fs::read_dir("/proc/self/task").map_or(0, |d| d.count());
    if threads != 1 {
        return Err(Errno::ENOTSUP);
    }
    match clone3(0, None)? {
        Forked::Parent { .. } => Ok(false),
        Forked::Child => {
            let _ = nix::unistd::setsid();
            if let Ok(null) = nix::fcntl::open(
                "/dev/null",
                nix::fcntl::OFlag::O_RDWR,
                nix::sys::stat::Mode::empty(),
            ) {
                let null = std::os::fd::IntoRawFd::into_raw_fd(null);
                for n in 0..3 {
                    if null != n {
                        // SAFETY: dup2 on integers; 0-2 are owned by no Rust object here.
                        unsafe {
                            libc::dup2(null, n);
                        }
                    }
                }
                if null > 2 {
                    let _ = nix::unistd::close(null);
                }
            }
            let mut open: Vec<u32> = vec![0, 1, 2];
            open.extend(keep.iter().map(|f| f.as_raw_fd() as u32));
            open.sort_unstable();
            open.dedup();
            let mut from = 0u32;
            for k in open {
                if k > from {
                    let _ = close_range(from, k - 1, 0);
                }
                from = k + 1;
            }
            let _ = close_range(from, u32::MAX, 0);
            Ok(true)
        }
    }
}

/// A child that only waits to be killed (SIGKILL, or its parent's death): a pid to hand to
/// systemd, which wants one to make a scope, before the container's init exists. It keeps
/// none of our fds. The caller must be single-threaded, as for [`clone3`].
pub(crate) fn spawn_placeholder() -> nix::Result<(i32, OwnedFd)> {
    let parent = nix::unistd::getpid();
    match clone3(0, None)? {
        Forked::Child => {
            let _ = close_range(3, u32::MAX, 0);
            let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
            reset_signals();
            if nix::unistd::getppid() != parent {
                exit_now(0);
            }
            loop {
                // SAFETY: pause(2) has no arguments and touches no memory.
                unsafe {
                    libc::pause();
                }
            }
        }
        Forked::Parent { pid, pidfd } => Ok((pid, pidfd)),
    }
}
