//! Where a container's cgroups live and their lifecycle: detect the layout (v1, v2, hybrid)
//! from mountinfo, create the directories (recording exactly which ones berth made), and
//! remove them at delete with bounded EBUSY retries. Placing processes is `membership`'s.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::CgroupRecord;

#[derive(Debug, thiserror::Error)]
pub(crate) enum CgroupError {
    #[error("cgroupsPath {0:?}: a slice:prefix:name path is for the systemd cgroup driver (--systemd-cgroup), else use a path like /berth/<id>")]
    Systemd(String),
    #[error("the systemd cgroup driver is not available: {0}")]
    DriverUnavailable(String),
    /// What systemd answered about the container's scope.
    #[error("{0}")]
    Scope(String),
    /// A new process could not join the container's cgroups.
    #[error("{what}: {msg}")]
    Join { what: String, msg: String },
    #[error("cgroupsPath {path:?}: {msg}")]
    BadPath { path: String, msg: String },
    #[error("{}: {}", path.display(), msg)]
    Io {
        path: PathBuf,
        msg: String,
        perm: bool,
    },
    #[error("cgroup {}: {msg}", path.display())]
    NotUsable { path: PathBuf, msg: String },
    /// runc's words, which callers and runc's tests look for.
    #[error("container's cgroup is not empty: {count} process(es) found ({})", path.display())]
    NotEmpty { path: PathBuf, count: usize },
    #[error("container's cgroup unexpectedly frozen ({})", path.display())]
    Frozen { path: PathBuf },
    #[error("{0}")]
    Invalid(String),
}

pub(super) fn io_err(path: &Path, e: io::Error) -> CgroupError {
    CgroupError::Io {
        path: path.to_path_buf(),
        msg: crate::error::errno_text(&e),
        perm: matches!(
            e.raw_os_error(),
            Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
        ),
    }
}

impl CgroupError {
    pub(crate) fn is_permission(&self) -> bool {
        matches!(self, CgroupError::Io { perm: true, .. })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Hierarchy {
    V1 {
        mountpoint: PathBuf,
        controllers: Vec<String>,
    },
    Unified,
}

/// The hierarchies mounted on this host, with our own cgroup in each.
#[derive(Debug, Default, Clone)]
pub(crate) struct Layout {
    pub(crate) v1: Vec<(PathBuf, Vec<String>, String)>,
    pub(crate) unified: Option<(PathBuf, String)>,
}

impl Layout {
    pub(crate) fn detect() -> Layout {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let own = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Self::parse(&mountinfo, &own)
    }

    pub(crate) fn parse(mountinfo: &str, own_cgroup: &str) -> Layout {
        let own_for = |key: &str| -> String {
            own_cgroup
                .lines()
                .filter_map(|l| {
                    let mut it = l.splitn(3, ':');
                    let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
                    Some((ctrls, path))
                })
                .find(|(c, _)| *c == key)
                .map(|(_, p)| p.to_string())
                .unwrap_or_else(|| "/".into())
        };
        let mut layout = Layout::default();
        for line in mountinfo.lines() {
            let Some((pre, post)) = line.split_once(" - ") else {
                continue;
            };
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            if pre.len() < 5 || post.len() < 3 {
                continue;
            }
            let mountpoint = PathBuf::from(pre[4]);
            match post[0] {
                "cgroup2" if layout.unified.is_none() => {
                    layout.unified = Some((mountpoint, own_for("")))
                }
                "cgroup" => {
                    let ctrls: Vec<String> = post[2]
                        .split(',')
                        .filter(|o| {
                            !matches!(
                                *o,
                                "rw" | "ro"
                                    | "nosuid"
                                    | "nodev"
                                    | "noexec"
                                    | "relatime"
                                    | "clone_children"
                                    | "xattr"
                                    | "noprefix"
                            ) && !o.starts_with("release_agent=")
                        })
                        .map(String::from)
                        .collect();
                    if ctrls.is_empty() || layout.v1.iter().any(|(_, c, _)| *c == ctrls) {
                        continue;
                    }
                    let own = own_for(&ctrls.join(","));
                    layout.v1.push((mountpoint, ctrls, own));
                }
                _ => {}
            }
        }
        layout
    }
}

/// Resolves `cgroupsPath` into one directory per hierarchy (absolute paths are taken as
/// they are under each hierarchy root; relative ones are under berth's own cgroup, as runc).
pub(crate) fn plan(
    layout: &Layout,
    cgroups_path: Option<&Path>,
    id: &str,
) -> Result<Vec<(Hierarchy, PathBuf)>, CgroupError> {
    let raw = cgroups_path
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| id.to_string());
    if !raw.starts_with('/') && raw.matches(':').count() == 2 {
        return Err(CgroupError::Systemd(raw));
    }
    let p = Path::new(&raw);
    if p.components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(CgroupError::BadPath {
            path: raw,
            msg: "must not contain \"..\"".into(),
        });
    }
    if raw.trim_matches('/').is_empty() {
        return Err(CgroupError::BadPath {
            path: raw,
            msg: "must name a cgroup below the root".into(),
        });
    }
    let join = |mount: &Path, own: &str| -> PathBuf {
        let rel = raw.trim_start_matches('/');
        if raw.starts_with('/') {
            mount.join(rel)
        } else {
            mount.join(own.trim_start_matches('/')).join(rel)
        }
    };
    let mut out = Vec::new();
    for (mp, ctrls, own) in &layout.v1 {
        out.push((
            Hierarchy::V1 {
                mountpoint: mp.clone(),
                controllers: ctrls.clone(),
            },
            join(mp, own),
        ));
    }
    if let Some((mp, own)) = &layout.unified {
        out.push((Hierarchy::Unified, join(mp, own)));
    }
    Ok(out)
}

/// The directories that do not exist yet, shallowest first: exactly what create will make
/// and delete will remove.
pub(crate) fn record(dirs: &[(Hierarchy, PathBuf)]) -> CgroupRecord {
    let mut created = Vec::new();
    let mut freezer = None;
    let mut unified = None;
    let mut v1 = std::collections::BTreeMap::new();
    for (h, dir) in dirs {
        let mut missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|a| !a.exists())
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        created.extend(missing);
        if let Hierarchy::V1 { controllers, .. } = h {
            for c in controllers {
                v1.insert(c.clone(), dir.clone());
            }
        }
        match h {
            Hierarchy::V1 { controllers, .. } if controllers.iter().any(|c| c == "freezer") => {
                freezer = Some(dir.clone())
            }
            Hierarchy::Unified => unified = Some(dir.clone()),
            _ => {}
        }
    }
    CgroupRecord {
        created,
        paths: dirs.iter().map(|(_, d)| d.clone()).collect(),
        freezer,
        unified,
        v1,
        systemd: None,
    }
}

/// mkdir every directory; new v1 cpuset directories inherit cpus and mems from their
/// parent, or no task could join them. A directory that already existed must be usable:
/// no processes, not frozen (one that mkdir just made is empty and thawed).
pub(crate) fn create(rec: &CgroupRecord) -> Result<(), CgroupError> {
    let mut made = Vec::new();
    let cpuset = rec.v1.get("cpuset");
    for dir in &rec.created {
        match fs::create_dir(dir) {
            Ok(()) => made.push(dir),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(dir, e)),
        }
    }
    if let Some(leaf) = cpuset {
        fill_cpuset(leaf)?;
    }
    for dir in rec.paths.iter().filter(|d| !made.contains(d)) {
        let count = process_count(dir);
        if count > 0 {
            return Err(CgroupError::NotEmpty {
                path: dir.clone(),
                count,
            });
        }
    }
    let fresh = |d: &Option<PathBuf>| d.as_ref().is_none_or(|d| made.contains(&d));
    if !(fresh(&rec.freezer) && fresh(&rec.unified)) && is_frozen(rec) {
        return Err(CgroupError::Frozen {
            path: rec
                .freezer
                .clone()
                .or(rec.unified.clone())
                .unwrap_or_default(),
        });
    }
    Ok(())
}

/// v1 cpuset: a directory with empty `cpuset.cpus` or `cpuset.mems` takes no task. Fills
/// them in `leaf` and every ancestor below the hierarchy's root, top down, from the parent,
/// as runc does: a parent made by someone else (mkdir alone) is filled too.
///
/// A parent whose new child came empty (an ancestor filled here, or one filled by
/// someone else without it) gets `cgroup.clone_children`, so that the kernel fills its
/// next children at their mkdir, with the same values: each write of `cpuset.cpus`
/// checks every sibling (the kernel's validate_change) and rebuilds the scheduler's
/// domains, which made each new container of a parent holding a thousand cost more than
/// the one before. The hierarchy's root is never changed.
fn fill_cpuset(leaf: &Path) -> Result<(), CgroupError> {
    let chain: Vec<&Path> = leaf
        .ancestors()
        .take_while(|d| d.parent().is_some_and(|p| p.join("cpuset.cpus").exists()))
        .collect();
    let below_root = |d: &Path| chain.iter().skip(1).any(|a| *a == d);
    for dir in chain.iter().copied().rev() {
        let mut filled = false;
        for f in ["cpuset.cpus", "cpuset.mems"] {
            let cur = fs::read_to_string(dir.join(f)).unwrap_or_default();
            if cur.trim().is_empty() {
                let parent = dir.parent().map(|p| p.join(f)).unwrap_or_default();
                let v = fs::read_to_string(&parent).map_err(|e| io_err(&parent, e))?;
                fs::write(dir.join(f), v.trim()).map_err(|e| io_err(&dir.join(f), e))?;
                filled = true;
            }
        }
        if filled && dir != leaf {
            let _ = fs::write(dir.join("cgroup.clone_children"), "1");
        } else if filled {
            if let Some(parent) = dir.parent().filter(|p| below_root(p)) {
                let _ = fs::write(parent.join("cgroup.clone_children"), "1");
            }
        }
    }
    Ok(())
}

fn process_count(dir: &Path) -> usize {
    fs::read_to_string(dir.join("cgroup.procs")).map_or(0, |s| s.lines().count())
}

/// Makes every controller the hierarchy offers available to `dir`: cgroup v2 only hands
/// a controller to a child when each ancestor lists it in `cgroup.subtree_control`.
fn enable_controllers(dir: &Path) {
    let Some(root) = dir.ancestors().find(|a| {
        a.parent()
            .is_some_and(|p| !p.join("cgroup.controllers").exists())
    }) else {
        return;
    };
    let chain: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .take_while(|a| a.starts_with(root))
        .collect();
    for parent in chain.into_iter().rev() {
        let have = fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
        let on = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
        for c in have.split_whitespace() {
            if !on.split_whitespace().any(|o| o == c) {
                // One at a time: a controller the parent cannot delegate (threaded, or
                // processes in an inner node) must not block the others.
                let _ = fs::write(parent.join("cgroup.subtree_control"), format!("+{c}"));
            }
        }
    }
}

/// Writes `linux.resources` (devices aside) into the container's cgroups: v1 files where
/// v1 controllers are mounted, else the cgroup2 files. On hybrid hosts a controller that
/// only the cgroup2 mount has (hugetlb here) is written there.
pub(crate) fn apply_resources(
    rec: &CgroupRecord,
    r: &oci_spec::runtime::LinuxResources,
) -> Result<(), CgroupError> {
    use super::resources as res;
    let invalid = |e: res::ResourceError| CgroupError::Invalid(e.to_string());
    check_cpuset(rec, r).map_err(invalid)?;
    if rec.v1.is_empty() {
        let Some(dir) = &rec.unified else {
            return Ok(());
        };
        let writes = res::v2_writes(r, dir.join("io.bfq.weight").exists()).map_err(invalid)?;
        if !writes.is_empty() {
            enable_controllers(dir);
            // A key must name an interface file this cgroup has (with its controllers
            // enabled): one it lacks is a config error, not a failed write.
            let mut keys: Vec<_> = r.unified().iter().flat_map(|u| u.keys()).collect();
            keys.sort();
            if let Some(k) = keys.into_iter().find(|k| !dir.join(k).is_file()) {
                return Err(CgroupError::Invalid(format!(
                    "linux.resources.unified.{k}: no such interface file in this cgroup"
                )));
            }
            res::apply_v2(&writes, dir).map_err(invalid)?;
        }
        return Ok(());
    }
    let mut writes = res::v1_writes(r).map_err(invalid)?;
    let unified_hugetlb = !rec.v1.contains_key("hugetlb")
        && writes.iter().any(|w| w.controller == "hugetlb")
        && rec.unified.as_ref().is_some_and(|u| {
            u.parent()
                .and_then(|p| fs::read_to_string(p.join("cgroup.controllers")).ok())
                .is_some_and(|c| c.split_whitespace().any(|c| c == "hugetlb"))
        });
    if unified_hugetlb {
        let (huge, rest): (Vec<_>, Vec<_>) =
            writes.into_iter().partition(|w| w.controller == "hugetlb");
        writes = rest;
        if let (Some(dir), false) = (&rec.unified, huge.is_empty()) {
            let v2: Vec<res::Write> = huge
                .into_iter()
                .map(|w| res::Write {
                    controller: "",
                    file: w.file.replace(".limit_in_bytes", ".max"),
                    value: if w.value == "-1" {
                        "max".into()
                    } else {
                        w.value
                    },
                })
                .collect();
            enable_controllers(dir);
            res::apply_v2(&v2, dir).map_err(invalid)?;
        }
    }
    res::apply_v1(&writes, &|c| rec.v1.get(c).cloned()).map_err(invalid)
}

/// `cpu.cpus` and `cpu.mems` against what the parent offers: on v1 the parent's
/// `cpuset.cpus` / `cpuset.mems`, on v2 its `cpuset.cpus.effective` / `.mems.effective`.
fn check_cpuset(
    rec: &CgroupRecord,
    r: &oci_spec::runtime::LinuxResources,
) -> Result<(), super::resources::ResourceError> {
    let Some(cpu) = r.cpu() else { return Ok(()) };
    let (dir, v1) = match (rec.v1.get("cpuset"), &rec.unified) {
        (Some(d), _) => (d, true),
        (None, Some(u)) if rec.v1.is_empty() => (u, false),
        _ => return Ok(()),
    };
    let parent = dir.parent().unwrap_or(dir);
    for (field, want, kind) in [
        ("cpu.cpus", cpu.cpus(), "cpus"),
        ("cpu.mems", cpu.mems(), "mems"),
    ] {
        let Some(want) = want.as_deref().filter(|s| !s.is_empty()) else {
            continue;
        };
        let file = if v1 {
            format!("cpuset.{kind}")
        } else {
            format!("cpuset.{kind}.effective")
        };
        let avail = fs::read_to_string(parent.join(file)).ok();
        super::resources::check_cpuset(field, want, avail.as_deref())?;
    }
    Ok(())
}

/// `update`: the same writes on a live container. On v2 a memory limit below what the
/// container uses is refused when `checkBeforeUpdate` asks for it.
pub(crate) fn update_resources(
    rec: &CgroupRecord,
    r: &oci_spec::runtime::LinuxResources,
) -> Result<(), CgroupError> {
    if let (true, Some(dir), Some(m)) = (rec.v1.is_empty(), &rec.unified, r.memory()) {
        if m.check_before_update() == Some(true) {
            let used: i64 = fs::read_to_string(dir.join("memory.current"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0);
            if let Some(limit) = m.limit().filter(|l| *l > 0 && *l < used) {
                return Err(CgroupError::Invalid(format!(
                    "linux.resources.memory.limit: {limit} is below the current usage {used}"
                )));
            }
        }
    }
    if let Some(scope) = &rec.systemd {
        super::systemd::set_limits(scope, r, rec.v1.is_empty())?;
    }
    apply_resources(rec, r)
}

/// Writes the device rules: v1 `devices.allow/deny` lines in order, or on a pure cgroup v2
/// host an eBPF device program. On hybrid hosts the v1 controller is the one enforced.
/// Unprivileged callers cannot do either and get the host's own restrictions.
pub(crate) fn apply_devices(
    rec: &CgroupRecord,
    config: &[oci_spec::runtime::LinuxDeviceCgroup],
    rootless: bool,
) -> Result<(), CgroupError> {
    if rootless {
        return Ok(());
    }
    let rules = super::devices::rules(config).map_err(|e| CgroupError::Invalid(e.to_string()))?;
    if let Some(dir) = rec.v1.get("devices") {
        // Each write(2) is one rule: a file is opened once for all its lines.
        let mut open: Vec<(&str, fs::File)> = Vec::new();
        for (file, line) in super::devices::v1_lines(&rules) {
            let f = dir.join(file);
            let err = |e: io::Error| CgroupError::Io {
                path: f.clone(),
                msg: format!("writing {line:?}: {}", crate::error::errno_text(&e)),
                perm: false,
            };
            let fd = match open.iter().position(|(n, _)| *n == file) {
                Some(i) => &mut open[i].1,
                None => {
                    let fd = fs::OpenOptions::new().write(true).open(&f).map_err(err)?;
                    open.push((file, fd));
                    &mut open.last_mut().expect("just pushed").1
                }
            };
            io::Write::write_all(fd, line.as_bytes()).map_err(err)?;
        }
    } else if let (Some(dir), true) = (&rec.unified, rec.v1.is_empty()) {
        super::devices::attach_v2(dir, &rules).map_err(|msg| CgroupError::NotUsable {
            path: dir.clone(),
            msg,
        })?;
    }
    Ok(())
}

/// Every pid in the container's cgroup.
pub(crate) fn pids(rec: &CgroupRecord) -> Vec<i32> {
    let dir = rec
        .unified
        .as_ref()
        .filter(|_| rec.freezer.is_none())
        .or(rec.freezer.as_ref())
        .or(rec.paths.first());
    dir.and_then(|d| fs::read_to_string(d.join("cgroup.procs")).ok())
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

pub(crate) fn is_frozen(rec: &CgroupRecord) -> bool {
    if let Some(f) = &rec.freezer {
        return fs::read_to_string(f.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN");
    }
    if let Some(u) = &rec.unified {
        return fs::read_to_string(u.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1");
    }
    false
}

/// The files [`pids`] (cgroup2's) and [`is_frozen`] read, opened once for a caller that
/// asks again and again (the monitor, at each healthcheck probe): each answer is then a
/// read from offset 0, which makes the kernel write the file anew, without a path lookup.
pub(crate) struct Watch {
    rec: CgroupRecord,
    procs: Option<fs::File>,
    frozen: Option<fs::File>,
}

impl Watch {
    pub(crate) fn new(rec: &CgroupRecord) -> Watch {
        // Only cgroup2's: a v1 `cgroup.procs` read again through the same open file may
        // answer from the pid list made for the previous read (kept about a second).
        let procs = rec
            .unified
            .as_ref()
            .filter(|_| rec.freezer.is_none())
            .and_then(|d| fs::File::open(d.join("cgroup.procs")).ok());
        let frozen = match (&rec.freezer, &rec.unified) {
            (Some(f), _) => fs::File::open(f.join("freezer.state")).ok(),
            (None, Some(u)) => fs::File::open(u.join("cgroup.freeze")).ok(),
            (None, None) => None,
        };
        Watch {
            rec: rec.clone(),
            procs,
            frozen,
        }
    }

    /// As [`pids`].
    pub(crate) fn pids(&self) -> Vec<i32> {
        match self.procs.as_ref().and_then(read_whole) {
            Some(s) => s.lines().filter_map(|l| l.trim().parse().ok()).collect(),
            None => pids(&self.rec),
        }
    }

    /// As [`is_frozen`].
    pub(crate) fn is_frozen(&self) -> bool {
        match self.frozen.as_ref().and_then(read_whole) {
            Some(s) => matches!(s.trim(), "FROZEN" | "1"),
            None => is_frozen(&self.rec),
        }
    }
}

/// A kernel-made file read whole from offset 0 (the kernel generates it anew for a read
/// at 0), whatever the file's offset.
fn read_whole(f: &fs::File) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let mut out = Vec::with_capacity(64);
    let mut buf = [0u8; 4096];
    loop {
        match f.read_at(&mut buf, out.len() as u64) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    String::from_utf8(out).ok()
}

/// The sub-cgroup `exec` makes when the container's cgroup refuses new members (a v2
/// cgroup with controllers enabled in its `cgroup.subtree_control`).
pub(crate) const EXEC_LEAF: &str = "berth-exec";

/// Removes the directories berth created, deepest first. Below a container cgroup berth
/// created, every child goes first, depth-first (what the container or `exec` made
/// there); below one it did not create, only berth's own [`EXEC_LEAF`]. A cgroup whose
/// last process is still exiting answers EBUSY for a moment: retry a bounded number of
/// times.
pub(crate) fn remove(rec: &CgroupRecord) -> Result<(), CgroupError> {
    stop_scope(rec);
    remove_dirs(rec)
}

/// The systemd driver: systemd stops the scope (killing what is left in it) and removes
/// its cgroup. Without an answer the directories are removed as berth's own are, and
/// systemd lets go of a scope whose cgroup is gone.
fn stop_scope(rec: &CgroupRecord) {
    if let Some(s) = &rec.systemd {
        let _ = super::systemd::stop(s);
    }
}

fn remove_dirs(rec: &CgroupRecord) -> Result<(), CgroupError> {
    let mut dirs = rec.created.clone();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    for dir in rec.paths.iter().filter(|d| !rec.created.contains(d)) {
        remove_tree(&dir.join(EXEC_LEAF))?;
    }
    for dir in dirs {
        if rec.paths.contains(&dir) {
            remove_tree(&dir)?;
            continue;
        }
        // A parent we created may still hold another container's cgroup: leave it.
        let _ = fs::remove_dir(&dir);
    }
    Ok(())
}

/// Removes a container's cgroups at its end, as runc: every directory of the container
/// with what is below it, whoever made it (a caller that prepared the cgroup, as runc's
/// users do to set limits runc does not know, gets it removed with the container), then
/// the parents berth made, when nothing else holds them. A cgroup berth did not make and
/// cannot remove (a delegated one without write access to its parent) is left.
pub(crate) fn remove_all(rec: &CgroupRecord) -> Result<(), CgroupError> {
    stop_scope(rec);
    for dir in rec.paths.iter().filter(|d| !rec.created.contains(d)) {
        match remove_tree(dir) {
            Err(CgroupError::Io { perm: true, .. }) => {}
            r => r?,
        }
    }
    remove_dirs(rec)
}

/// Removes `dir` and every cgroup below it, children first.
fn remove_tree(dir: &Path) -> Result<(), CgroupError> {
    let children = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(dir, e)),
    };
    for e in children.filter_map(Result::ok) {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path())?;
        }
    }
    let mut delay = Duration::from_millis(1);
    let mut tries = 0;
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && tries < 12 => {
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
                tries += 1;
            }
            Err(e) => return Err(io_err(dir, e)),
        }
    }
}

/// Freezes or thaws the container (v1 freezer.state, v2 cgroup.freeze) and waits, boundedly,
/// for the kernel to report the new state.
pub(crate) fn set_frozen(rec: &CgroupRecord, frozen: bool) -> Result<(), CgroupError> {
    let (file, value, done): (PathBuf, &str, Box<dyn Fn() -> bool>) = if let Some(f) = &rec.freezer
    {
        let state = f.join("freezer.state");
        let s2 = state.clone();
        let want = if frozen { "FROZEN" } else { "THAWED" };
        (
            state,
            want,
            Box::new(move || fs::read_to_string(&s2).is_ok_and(|s| s.trim() == want)),
        )
    } else if let Some(u) = &rec.unified {
        let events = u.join("cgroup.events");
        let want = if frozen { "frozen 1" } else { "frozen 0" };
        (
            u.join("cgroup.freeze"),
            if frozen { "1" } else { "0" },
            Box::new(move || {
                fs::read_to_string(&events).is_ok_and(|s| s.lines().any(|l| l.trim() == want))
            }),
        )
    } else {
        return Err(CgroupError::NotUsable {
            path: PathBuf::from("/sys/fs/cgroup"),
            msg: "no freezer available".into(),
        });
    };
    let mut delay = Duration::from_micros(100);
    for attempt in 0..1000 {
        // v1 can stay in FREEZING while a task is in an uninterruptible sleep; writing
        // again retries the freeze.
        if attempt % 10 == 0 {
            fs::write(&file, value).map_err(|e| io_err(&file, e))?;
        }
        if done() {
            return Ok(());
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    }
    if frozen {
        let _ = fs::write(&file, if rec.freezer.is_some() { "THAWED" } else { "0" });
    }
    Err(CgroupError::NotUsable {
        path: file,
        msg: format!("did not reach state {value}"),
    })
}

/// Kills every process: cgroup.kill where the kernel has it (v2), else freeze, signal
/// every pid, thaw (v1), so nothing can fork away in between.
pub(crate) fn kill_all(rec: &CgroupRecord, sig: i32) {
    if sig == libc::SIGKILL && rec.freezer.is_none() {
        if let Some(u) = &rec.unified {
            if fs::write(u.join("cgroup.kill"), "1").is_ok() {
                return;
            }
        }
    }
    let was_frozen = is_frozen(rec);
    let froze = !was_frozen && set_frozen(rec, true).is_ok();
    for p in pids(rec) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::try_from(sig).ok(),
        );
    }
    // A killed container is thawed so the signal is delivered; a paused one stays paused
    // for other signals, as runc.
    if froze || (was_frozen && sig == libc::SIGKILL) {
        let _ = set_frozen(rec, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 25 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid shared:11 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:15 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid shared:16 - cgroup cgroup rw,memory
";
    const OWN: &str = "4:memory:/user/x\n3:cpu,cpuacct:/\n1:name=systemd:/\n0::/u\n";

    #[test]
    fn parses_hybrid_layout() {
        let l = Layout::parse(MOUNTINFO, OWN);
        assert_eq!(l.v1.len(), 3);
        assert_eq!(l.v1[1].1, vec!["cpu", "cpuacct"]);
        assert_eq!(l.v1[2].2, "/user/x");
        assert_eq!(
            l.unified,
            Some((PathBuf::from("/sys/fs/cgroup/unified"), "/u".into()))
        );
        assert_eq!(l.hierarchy(), Some(super::super::Hierarchy::Hybrid));
    }

    #[test]
    fn plans_absolute_relative_and_rejects_bad() {
        let l = Layout::parse(MOUNTINFO, OWN);
        let abs = plan(&l, Some(Path::new("/a/b")), "id").unwrap();
        assert_eq!(abs[2].1, PathBuf::from("/sys/fs/cgroup/memory/a/b"));
        let rel = plan(&l, None, "id").unwrap();
        assert_eq!(rel[2].1, PathBuf::from("/sys/fs/cgroup/memory/user/x/id"));
        assert_eq!(rel[3].1, PathBuf::from("/sys/fs/cgroup/unified/u/id"));
        assert!(matches!(
            plan(&l, Some(Path::new("system.slice:berth:x")), "id"),
            Err(CgroupError::Systemd(_))
        ));
        assert!(plan(&l, Some(Path::new("/a/../../etc")), "id").is_err());
        assert!(plan(&l, Some(Path::new("/")), "id").is_err());
    }

    /// Below a container cgroup berth made, every child goes (depth-first); a parent it
    /// made that still holds another container stays; below a container cgroup it did
    /// not make, only the exec leaf goes.
    #[test]
    fn remove_takes_children_of_created_cgroups_only() {
        let t = std::env::temp_dir().join(format!("berth-rmcg-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        let (parent, leaf, other) = (t.join("p"), t.join("p/c"), t.join("p/other"));
        let pre = t.join("pre");
        for d in [
            leaf.join(EXEC_LEAF),
            leaf.join("init/deeper"),
            other.clone(),
            pre.join(EXEC_LEAF),
            pre.join("theirs"),
        ] {
            fs::create_dir_all(d).unwrap();
        }
        let rec = CgroupRecord {
            created: vec![parent.clone(), leaf.clone()],
            paths: vec![leaf.clone(), pre.clone()],
            ..Default::default()
        };
        remove(&rec).unwrap();
        assert!(!leaf.exists());
        assert!(other.exists() && parent.exists());
        assert!(!pre.join(EXEC_LEAF).exists());
        assert!(pre.join("theirs").exists());
        fs::remove_dir_all(&t).unwrap();
    }

    /// At a container's end its cgroups go whoever made them (runc); the parents berth
    /// made go only when empty.
    #[test]
    fn remove_all_takes_the_containers_cgroups_whoever_made_them() {
        let t = std::env::temp_dir().join(format!("berth-rmallcg-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        let (parent, leaf, other) = (t.join("p"), t.join("p/c"), t.join("p/other"));
        let pre = t.join("pre");
        for d in [leaf.join("sub"), other.clone(), pre.join("theirs/deeper")] {
            fs::create_dir_all(d).unwrap();
        }
        let rec = CgroupRecord {
            created: vec![parent.clone(), leaf.clone()],
            paths: vec![leaf.clone(), pre.clone()],
            ..Default::default()
        };
        remove_all(&rec).unwrap();
        assert!(!leaf.exists() && !pre.exists());
        assert!(other.exists() && parent.exists());
        fs::remove_dir_all(&t).unwrap();
    }

    /// Hybrid: hugetlb is only on the cgroup2 mount, so its limits go to the unified
    /// directory in v2 form (`.max`, "max"), the rest to the v1 directories.
    #[test]
    fn hybrid_routes_hugetlb_to_the_unified_cgroup() {
        let t = std::env::temp_dir().join(format!("berth-hybridcg-{}", std::process::id()));
        let _ = fs::remove_dir_all(&t);
        let (pids, uni) = (t.join("pids/c"), t.join("unified/c"));
        fs::create_dir_all(&pids).unwrap();
        fs::create_dir_all(&uni).unwrap();
        fs::write(t.join("unified/cgroup.controllers"), "hugetlb\n").unwrap();
        fs::write(uni.join("cgroup.controllers"), "hugetlb\n").unwrap();
        for f in ["hugetlb.2MB.max", "hugetlb.1GB.max"] {
            fs::write(uni.join(f), "").unwrap();
        }
        fs::write(pids.join("pids.max"), "").unwrap();
        let rec = CgroupRecord {
            paths: vec![pids.clone(), uni.clone()],
            unified: Some(uni.clone()),
            v1: [("pids".to_string(), pids.clone())].into_iter().collect(),
            ..Default::default()
        };
        let r: oci_spec::runtime::LinuxResources = serde_json::from_value(serde_json::json!({
            "pids": {"limit": 9},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304},
                               {"pageSize": "1GB", "limit": -1}]
        }))
        .unwrap();
        apply_resources(&rec, &r).unwrap();
        let read = |p: PathBuf| fs::read_to_string(p).unwrap();
        assert_eq!(read(uni.join("hugetlb.2MB.max")), "4194304");
        assert_eq!(read(uni.join("hugetlb.1GB.max")), "max");
        assert_eq!(read(pids.join("pids.max")), "9");
        assert!(!pids.join("hugetlb.2MB.limit_in_bytes").exists());
        // The controller was enabled for the container's cgroup.
        assert_eq!(read(t.join("unified/cgroup.subtree_control")), "+hugetlb");
        fs::remove_dir_all(&t).unwrap();
    }
}
