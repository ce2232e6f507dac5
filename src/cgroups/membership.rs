//! How a new process becomes a member of a container's cgroups, in one place for the init
//! (create) and for an exec'd process: cloned straight into the cgroup2 directory
//! (CLONE_INTO_CGROUP), the v1 hierarchies joined by the child itself through `tasks`,
//! and what is left joined by the parent (init) or by the child by pid (exec, into the
//! [`EXEC_LEAF`] where the container's cgroup takes no direct members).
//!
//! A thread moving itself through `tasks` skips the global cgroup_threadgroup_rwsem, whose
//! write side waits for an RCU grace period: measured here, 11-20 ms for the parent writing
//! the child's pid to seven v1 cgroup.procs files, 0.1 ms for the child's own writes; a pid
//! written to a cgroup2 cgroup.procs waits for the same lock (about 7 ms), which cloning
//! into the cgroup avoids. The child is single-threaded, so its thread is the process.

use std::cell::Cell;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

use super::manager::{io_err, CgroupError, EXEC_LEAF};
use super::CgroupRecord;
use crate::sys;

/// `sub` made relative and lexically clean; None when it would leave the cgroup it is
/// relative to.
fn sub_path(sub: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in sub.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    /// The container's init: it may be cloned into a new user namespace, where it can no
    /// longer open host files, so its `tasks` files are opened for it and whatever else is
    /// joined by the parent.
    Init,
    /// A process `exec` adds: it joins everything itself, by path, before entering the
    /// container's namespaces.
    Exec,
}

/// Prepared by the parent before the clone, used on both sides of it.
pub(crate) struct Membership {
    purpose: Purpose,
    /// Every directory of the container (one per hierarchy).
    paths: Vec<PathBuf>,
    unified: Option<PathBuf>,
    /// The cgroup2 directory, opened for CLONE_INTO_CGROUP.
    unified_fd: Option<OwnedFd>,
    /// Whether the clone put the child in the cgroup2 directory.
    cloned_in: Cell<bool>,
    /// Init and repeated execs: the v1 `tasks` files the child writes "0" to as its first
    /// act.
    tasks: Vec<(PathBuf, OwnedFd)>,
}

fn open_dir(dir: &Path) -> Option<OwnedFd> {
    nix::fcntl::open(
        dir,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()
}

impl Membership {
    /// For a container's init: the cgroup2 directory and every v1 `tasks` file opened.
    pub(crate) fn for_init(rec: &CgroupRecord) -> Result<Membership, CgroupError> {
        let mut tasks = Vec::new();
        for dir in rec
            .paths
            .iter()
            .filter(|d| rec.unified.as_ref() != Some(*d))
        {
            let f = dir.join("tasks");
            match fs::OpenOptions::new().write(true).open(&f) {
                Ok(fd) => tasks.push((dir.clone(), OwnedFd::from(fd))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&f, e)),
            }
        }
        Ok(Membership {
            purpose: Purpose::Init,
            paths: rec.paths.clone(),
            unified: rec.unified.clone(),
            unified_fd: rec.unified.as_deref().and_then(open_dir),
            cloned_in: Cell::new(false),
            tasks,
        })
    }

    /// For a process started again and again in the container (the monitor's healthcheck
    /// probes): as [`Membership::for_exec`], with the v1 `tasks` files opened once here, so
    /// that each child joins by writing to them rather than by looking up every path.
    pub(crate) fn for_repeated_exec(rec: &CgroupRecord) -> Membership {
        let mut m = Self::for_exec(rec);
        for dir in rec
            .paths
            .iter()
            .filter(|d| rec.unified.as_ref() != Some(*d))
        {
            // A hierarchy without `tasks` (or one that cannot be opened now) is joined by
            // path in the child, as for any exec.
            if let Ok(fd) = fs::OpenOptions::new().write(true).open(dir.join("tasks")) {
                m.tasks.push((dir.clone(), OwnedFd::from(fd)));
            }
        }
        m
    }

    /// For a process `exec` runs in the container.
    pub(crate) fn for_exec(rec: &CgroupRecord) -> Membership {
        Membership {
            purpose: Purpose::Exec,
            paths: rec.paths.clone(),
            unified: rec.unified.clone(),
            unified_fd: rec.unified.as_deref().and_then(open_dir),
            cloned_in: Cell::new(false),
            tasks: Vec::new(),
        }
    }

    /// For a process `exec --cgroup` puts in sub-cgroups of the container's: `subs` are
    /// (v1 controllers, or none for every hierarchy; a path relative to the container's
    /// cgroup), the controller-specific ones winning (runc's semantics). Each must stay
    /// below the container's cgroup and exist.
    pub(crate) fn for_exec_in(
        rec: &CgroupRecord,
        subs: &[(Vec<String>, PathBuf)],
    ) -> Result<Membership, CgroupError> {
        if subs.is_empty() {
            return Ok(Self::for_exec(rec));
        }
        let mut all = None;
        let mut by_ctrl: Vec<(&PathBuf, PathBuf)> = Vec::new();
        for (ctrls, sub) in subs {
            let sub = sub_path(sub).ok_or_else(|| {
                CgroupError::Invalid(format!("{} is not a sub cgroup path", sub.display()))
            })?;
            if ctrls.is_empty() {
                all = Some(sub);
                continue;
            }
            for c in ctrls {
                let dir = rec.v1.get(c).ok_or_else(|| {
                    CgroupError::Invalid(format!(
                        "--cgroup {c}: unknown controller {c:?} (the container has no cgroup v1 controller of that name)"
                    ))
                })?;
                by_ctrl.push((dir, sub.clone()));
            }
        }
        let mut moved = rec.clone();
        let place = |dir: &PathBuf| -> Option<PathBuf> {
            let sub = by_ctrl
                .iter()
                .rfind(|(d, _)| *d == dir)
                .map(|(_, s)| s)
                .or(all.as_ref())?;
            Some(dir.join(sub))
        };
        for p in moved.paths.iter_mut() {
            if let Some(n) = place(p) {
                *p = n;
            }
        }
        if let Some(u) = moved.unified.as_mut() {
            if let Some(n) = all.as_ref().map(|s| u.join(s)) {
                *u = n;
            }
        }
        // In runc's words, which callers look for: the process could not be added to a
        // cgroup that is not there.
        for p in moved.paths.iter().chain(moved.unified.iter()) {
            if !p.is_dir() {
                return Err(CgroupError::Join {
                    what: "adding pid to cgroups".into(),
                    msg: io_err(
                        &p.join("cgroup.procs"),
                        io::Error::from_raw_os_error(libc::ENOENT),
                    )
                    .to_string(),
                });
            }
        }
        Ok(Self::for_exec(&moved))
    }

    /// clone3 with `flags`, into the cgroup2 directory where the kernel can: without
    /// CLONE_INTO_CGROUP (EINVAL, ENOSYS, E2BIG) the child is joined as the other
    /// hierarchies are. An exec'd process also falls back where the container's cgroup
    /// takes no direct members (EBUSY, EOPNOTSUPP): it goes to the leaf below it.
    pub(crate) fn clone(&self, flags: u64) -> nix::Result<sys::Forked> {
        let fd = self.unified_fd.as_ref().map(AsRawFd::as_raw_fd);
        let forked = match sys::clone3(flags, fd) {
            Err(Errno::EINVAL | Errno::ENOSYS | Errno::E2BIG) if fd.is_some() => {
                sys::clone3(flags, None)
            }
            Err(Errno::EBUSY | Errno::EOPNOTSUPP)
                if fd.is_some() && self.purpose == Purpose::Exec =>
            {
                sys::clone3(flags, None)
            }
            Ok(f) => {
                self.cloned_in.set(fd.is_some());
                return Ok(f);
            }
            Err(e) => return Err(e),
        }?;
        self.cloned_in.set(false);
        Ok(forked)
    }

    /// Whether the parent still has to place the child (the init waits for it).
    pub(crate) fn parent_joins(&self) -> bool {
        self.purpose == Purpose::Init && self.parent_dirs().next().is_some()
    }

    /// Directories the child does not join by itself (nor was cloned into).
    fn parent_dirs(&self) -> impl Iterator<Item = &PathBuf> {
        self.paths.iter().filter(|d| {
            let cloned_into = self.cloned_in.get() && self.unified.as_ref() == Some(*d);
            let by_tasks = self.tasks.iter().any(|(t, _)| t == *d);
            !cloned_into && !by_tasks
        })
    }

    /// In the child, first: joins what is the child's to join. Allocates, so only for a
    /// child of a single-threaded parent (berth's OCI paths are).
    pub(crate) fn join_self(&self) -> Result<(), CgroupError> {
        for (_, fd) in &self.tasks {
            nix::unistd::write(fd, b"0").map_err(|e| CgroupError::Join {
                what: "joining the container's v1 cgroups".into(),
                msg: crate::error::errno_desc(e),
            })?;
        }
        if self.purpose == Purpose::Exec {
            let me = std::process::id().to_string();
            for dir in self.parent_dirs() {
                join_by_path(dir, &me)?;
            }
        }
        Ok(())
    }

    /// In the parent, once the child exists: moves it into the hierarchies it did not
    /// join itself. Consumes the membership: the opened files are not needed any more.
    pub(crate) fn join_parent(self, pid: i32) -> Result<(), CgroupError> {
        if self.purpose != Purpose::Init {
            return Ok(());
        }
        let s = pid.to_string();
        for dir in self.parent_dirs() {
            let f = dir.join("cgroup.procs");
            fs::write(&f, &s).map_err(|e| io_err(&f, e))?;
        }
        Ok(())
    }
}

/// Joins one directory: v1 through `tasks` (this thread alone, see the module note), else
/// by pid; a cgroup2 directory with controllers enabled for its children refuses new
/// members (EBUSY), so the process goes into a leaf below it, as runc does.
fn join_by_path(dir: &Path, pid: &str) -> Result<(), CgroupError> {
    let procs = dir.join("cgroup.procs");
    let tasks = dir.join("tasks");
    let (file, what) = if tasks.exists() {
        (tasks.as_path(), "0")
    } else {
        (procs.as_path(), pid)
    };
    let failed = |p: &Path, e: io::Error| CgroupError::Join {
        what: p.display().to_string(),
        msg: crate::error::errno_text(&e),
    };
    match fs::write(file, what) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            let leaf = dir.join(EXEC_LEAF);
            let _ = fs::create_dir(&leaf);
            fs::write(leaf.join("cgroup.procs"), pid).map_err(|e| failed(&leaf, e))
        }
        Err(e) => Err(failed(&procs, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(name: &str) -> PathBuf {
        let t = std::env::temp_dir().join(format!("berth-member-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        t
    }

    #[test]
    fn exec_sub_cgroups_stay_below_the_containers() {
        assert_eq!(sub_path(Path::new("a/b")), Some(PathBuf::from("a/b")));
        assert_eq!(sub_path(Path::new("/a/../b/")), Some(PathBuf::from("b")));
        assert_eq!(sub_path(Path::new("..")), None);
        assert_eq!(sub_path(Path::new("a/../../x")), None);
        let t = tree("sub");
        let (mem, uni) = (t.join("memory/c"), t.join("unified/c"));
        for d in [mem.join("m"), uni.join("u"), mem.join("u")] {
            fs::create_dir_all(d).unwrap();
        }
        let rec = CgroupRecord {
            paths: vec![mem.clone(), uni.clone()],
            unified: Some(uni.clone()),
            v1: [("memory".to_string(), mem.clone())].into_iter().collect(),
            ..Default::default()
        };
        let m = Membership::for_exec_in(
            &rec,
            &[(vec![], "u".into()), (vec!["memory".into()], "m".into())],
        )
        .unwrap();
        assert_eq!(m.paths, [mem.join("m"), uni.join("u")]);
        assert_eq!(m.unified, Some(uni.join("u")));
        let e = |subs: &[(Vec<String>, PathBuf)]| {
            Membership::for_exec_in(&rec, subs)
                .err()
                .unwrap()
                .to_string()
        };
        assert_eq!(e(&[(vec![], "..".into())]), ".. is not a sub cgroup path");
        assert!(e(&[(vec!["pids".into()], "m".into())]).contains("unknown controller \"pids\""));
        assert_eq!(
            e(&[(vec![], "nope".into())]),
            format!(
                "adding pid to cgroups: {}: no such file or directory",
                mem.join("nope/cgroup.procs").display()
            )
        );
        fs::remove_dir_all(&t).unwrap();
    }

    /// The init: v1 directories with a `tasks` file are the child's (written through
    /// the fds opened for it), the rest and the cgroup2 directory (when not cloned into)
    /// the parent's, by pid.
    #[test]
    fn init_joins_v1_itself_and_the_parent_the_rest() {
        let t = tree("init");
        let (mem, uni, odd) = (t.join("memory/c"), t.join("unified/c"), t.join("odd/c"));
        for d in [&mem, &uni, &odd] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(mem.join("tasks"), "").unwrap();
        let rec = CgroupRecord {
            paths: vec![mem.clone(), odd.clone(), uni.clone()],
            unified: Some(uni.clone()),
            ..Default::default()
        };
        let m = Membership::for_init(&rec).unwrap();
        assert!(m.parent_joins());
        m.join_self().unwrap();
        assert_eq!(fs::read_to_string(mem.join("tasks")).unwrap(), "0");
        m.join_parent(4242).unwrap();
        assert_eq!(
            fs::read_to_string(odd.join("cgroup.procs")).unwrap(),
            "4242"
        );
        assert_eq!(
            fs::read_to_string(uni.join("cgroup.procs")).unwrap(),
            "4242"
        );
        assert!(!mem.join("cgroup.procs").exists());
        fs::remove_dir_all(&t).unwrap();
    }

    /// exec: the child joins everything by itself; nothing is left to the parent.
    #[test]
    fn exec_joins_by_itself() {
        let t = tree("exec");
        let (mem, uni) = (t.join("memory/c"), t.join("unified/c"));
        for d in [&mem, &uni] {
            fs::create_dir_all(d).unwrap();
        }
        fs::write(mem.join("tasks"), "").unwrap();
        let rec = CgroupRecord {
            paths: vec![mem.clone(), uni.clone()],
            unified: Some(uni.clone()),
            ..Default::default()
        };
        let m = Membership::for_exec(&rec);
        assert!(!m.parent_joins());
        m.join_self().unwrap();
        assert_eq!(fs::read_to_string(mem.join("tasks")).unwrap(), "0");
        assert_eq!(
            fs::read_to_string(uni.join("cgroup.procs")).unwrap(),
            std::process::id().to_string()
        );
        m.join_parent(1).unwrap();
        fs::remove_dir_all(&t).unwrap();
    }

    #[test]
    fn nothing_to_join_without_cgroups() {
        let m = Membership::for_init(&CgroupRecord::default()).unwrap();
        assert!(!m.parent_joins());
        m.join_self().unwrap();
    }
}
