//! Container state on disk: `<root>/<id>/state.json` (atomic JSON), `exec.fifo`, and a flock
//! on the container dir for every mutation. Status is derived from the init's identity
//! (pid + start time + boot id), never trusted from the file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub(crate) enum StateError {
    #[error("invalid container id {0:?}: must match [A-Za-z0-9_+-][A-Za-z0-9_+.-]* and be at most 1024 characters")]
    InvalidId(String),
    #[error("container with given ID already exists")]
    Exists,
    #[error("container does not exist")]
    NotExist,
    #[error("{}: {}", path.display(), crate::error::errno_text(err))]
    Io { path: PathBuf, err: io::Error },
    #[error("{}: corrupt state: {err}", path.display())]
    Corrupt {
        path: PathBuf,
        err: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |err| StateError::Io {
        path: path.to_path_buf(),
        err,
    }
}

/// Rejects ids that could escape the root or confuse callers, before any filesystem access.
pub(crate) fn validate_id(id: &str) -> Result<(), StateError> {
    let ok_first = |c: char| c.is_ascii_alphanumeric() || "_+-".contains(c);
    let ok_rest = |c: char| c.is_ascii_alphanumeric() || "_+.-".contains(c);
    let mut chars = id.chars();
    let valid = id.len() <= 1024 && chars.next().is_some_and(ok_first) && chars.all(ok_rest);
    if valid {
        Ok(())
    } else {
        // A hostile id can be huge: the message quotes only its start.
        let shown: String = id.chars().take(64).collect();
        let more = if shown.len() < id.len() { "..." } else { "" };
        Err(StateError::InvalidId(format!("{shown}{more}")))
    }
}

/// The runc face's default state root: /run/berth-runc for real root (beside runc's
/// /run/runc and crun's /run/crun), $XDG_RUNTIME_DIR/berth-runc otherwise. The people
/// face keeps its containers' runtime records in its own runroot.
pub(crate) fn default_root() -> PathBuf {
    let euid = nix::unistd::geteuid();
    if euid.is_root() && !in_user_namespace() {
        return PathBuf::from("/run/berth-runc");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => Path::new(&d).join("berth-runc"),
        _ => PathBuf::from(format!("/run/user/{}/berth-runc", euid.as_raw())),
    }
}

pub(crate) fn in_user_namespace() -> bool {
    fs::read_to_string("/proc/self/uid_map")
        .map(|m| m.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"])
        .unwrap_or(false)
}

/// The identity of a process that survives pid reuse: start time in clock ticks since boot.
pub(crate) fn process_start_time(pid: i32) -> Option<u64> {
    let stat = crate::sys::read_small(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// A pidfd for `pid` if it is still the process that started at `start_time` (pid and
/// start time are a process's identity across pid reuse). Opened first, then checked: the
/// pidfd then holds that process, whatever happens to the pid. It may have exited (a
/// zombie has): see [`has_exited`].
pub(crate) fn open_same_process(pid: i32, start_time: u64) -> Option<OwnedFd> {
    if pid <= 0 {
        return None;
    }
    let fd = crate::sys::pidfd_open(pid).ok()?;
    (process_start_time(pid) == Some(start_time)).then_some(fd)
}

/// Waits up to `timeout` (zero: only looks) for the process behind `pidfd` to exit;
/// whether it has (a zombie has).
pub(crate) fn has_exited(pidfd: &OwnedFd, timeout: Duration) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::ZERO),
        ) {
            Ok(n) => return n > 0,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// `pid` is still the process that started at `start_time`, and has not exited.
pub(crate) fn same_process_running(pid: i32, start_time: u64) -> bool {
    open_same_process(pid, start_time).is_some_and(|fd| !has_exited(&fd, Duration::ZERO))
}

/// The kernel's boot id, read once per process (a process does not outlive a boot):
/// listings compare it for every container.
pub(crate) fn boot_id() -> String {
    boot_id_ref().to_string()
}

/// [`boot_id`], read once per process.
pub(crate) fn boot_id_ref() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    })
}

/// Whether `pid` is the process that started at `start_time` and has not exited, from
/// one read of /proc/PID/stat (its state: a zombie is `Z`, a dying task `X`). Exact only
/// for a process whose main thread lives as long as it does (berth's monitor): one whose
/// leader exited while other threads run reads as exited here. For what only looks, many
/// times over (listings); [`same_process_running`] is the general answer.
pub(crate) fn single_threaded_running(pid: i32, start_time: u64) -> bool {
    if pid <= 0 {
        return false;
    }
    // One read: the file has no size to go by, so read_to_string's growing reads would
    // ask the kernel several times for a few bytes.
    let Ok(stat) = crate::sys::read_small(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(rest) = stat.rfind(')').and_then(|i| stat.get(i + 2..)) else {
        return false;
    };
    let mut f = rest.split(' ');
    let state = f.next().unwrap_or("");
    let start = f.nth(18).and_then(|s| s.parse::<u64>().ok());
    !matches!(state, "Z" | "X" | "x") && start == Some(start_time)
}

/// What is kept in state.json: the OCI state fields plus what delete needs to clean up.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) bundle: PathBuf,
    pub(crate) rootfs: PathBuf,
    /// 0 until the init has reported ready.
    pub(crate) pid: i32,
    pub(crate) start_time: u64,
    pub(crate) boot_id: String,
    /// The berth process creating the container, so a crashed create can be told apart.
    pub(crate) creator_pid: i32,
    pub(crate) creator_start_time: u64,
    pub(crate) created: String,
    #[serde(default)]
    pub(crate) annotations: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) cgroup: crate::cgroups::CgroupRecord,
    #[serde(default)]
    pub(crate) oci_version: String,
    /// The config's hooks, kept so that delete can run poststop without the bundle.
    #[serde(default)]
    pub(crate) hooks: Option<serde_json::Value>,
    /// The caller's NOTIFY_SOCKET, where start forwards the container's READY=1.
    #[serde(default)]
    pub(crate) notify_socket: Option<String>,
}

/// Of state.json, what reading a running container's usage needs: its init and the
/// cgroup directories it is read from. The rest (bundle, annotations, hooks, the list of
/// created directories) is skipped unparsed: `stats` reads this for every container at
/// every sample.
#[derive(Deserialize, Debug, Default)]
pub(crate) struct Brief {
    pub(crate) pid: i32,
    start_time: u64,
    boot_id: String,
    #[serde(default)]
    cgroup: BriefCgroup,
}

#[derive(Deserialize, Debug, Default)]
struct BriefCgroup {
    #[serde(default)]
    paths: Vec<PathBuf>,
    #[serde(default)]
    freezer: Option<PathBuf>,
    #[serde(default)]
    unified: Option<PathBuf>,
    #[serde(default)]
    v1: std::collections::BTreeMap<String, PathBuf>,
}

impl Brief {
    /// See [`Record::init_process`].
    pub(crate) fn init_process(&self) -> Option<OwnedFd> {
        if self.boot_id != boot_id() {
            return None;
        }
        open_same_process(self.pid, self.start_time)
    }

    /// The cgroup record as far as reading usage goes (no `created`, no systemd scope).
    pub(crate) fn cgroup(self) -> crate::cgroups::CgroupRecord {
        crate::cgroups::CgroupRecord {
            paths: self.cgroup.paths,
            freezer: self.cgroup.freezer,
            unified: self.cgroup.unified,
            v1: self.cgroup.v1,
            ..Default::default()
        }
    }
}

impl Record {
    /// A pidfd for the container's init, if the record's process (pid and start time, this
    /// boot) still exists; it may have exited.
    pub(crate) fn init_process(&self) -> Option<OwnedFd> {
        if self.boot_id != boot_id() {
            return None;
        }
        open_same_process(self.pid, self.start_time)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A container's state as `state` and `list` report it: the OCI state plus runc's extras
/// (rootfs, created, owner). Serialised, it is runc's document; hooks get it without the
/// owner.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContainerState {
    #[serde(rename = "ociVersion")]
    pub(crate) oci_version: String,
    pub(crate) id: String,
    /// 0 once stopped.
    pub(crate) pid: i32,
    pub(crate) status: Status,
    pub(crate) bundle: PathBuf,
    pub(crate) rootfs: PathBuf,
    /// RFC 3339.
    pub(crate) created: String,
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub(crate) annotations: std::collections::BTreeMap<String, String>,
    /// The user owning the container's state directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) owner: Option<String>,
}

impl ContainerState {
    pub(crate) fn new(rec: &Record, status: Status) -> ContainerState {
        ContainerState {
            oci_version: if rec.oci_version.is_empty() {
                "1.2.1".into()
            } else {
                rec.oci_version.clone()
            },
            id: rec.id.clone(),
            pid: if status == Status::Stopped {
                0
            } else {
                rec.pid
            },
            status,
            bundle: rec.bundle.clone(),
            rootfs: rec.rootfs.clone(),
            created: rec.created.clone(),
            annotations: rec.annotations.clone(),
            owner: None,
        }
    }
}

/// A container's directory under the state root.
pub(crate) struct ContainerDir {
    pub(crate) path: PathBuf,
}

pub(crate) const START_FIFO: &str = "start.fifo";

impl ContainerDir {
    pub(crate) fn new(root: &Path, id: &str) -> Result<Self, StateError> {
        validate_id(id)?;
        Ok(Self {
            path: root.join(id),
        })
    }

    /// mkdir claims the id: exactly one of concurrent creators wins.
    pub(crate) fn claim(&self) -> Result<(), StateError> {
        let root = self.path.parent().unwrap_or(Path::new("/"));
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(root)
            .map_err(io_err(root))?;
        match fs::DirBuilder::new().mode(0o711).create(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(StateError::Exists),
            Err(e) => Err(io_err(&self.path)(e)),
        }
    }

    /// An exclusive flock on the container dir, released when the returned file is dropped.
    pub(crate) fn lock(&self) -> Result<nix::fcntl::Flock<File>, StateError> {
        let f = File::open(&self.path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StateError::NotExist,
            _ => io_err(&self.path)(e),
        })?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, e)| io_err(&self.path)(e.into()))
    }

    pub(crate) fn fifo(&self) -> PathBuf {
        self.path.join("exec.fifo")
    }

    /// Where the init tells `start` that a startContainer hook failed (see
    /// `ops::start_created`).
    pub(crate) fn start_fifo(&self) -> PathBuf {
        self.path.join(START_FIFO)
    }

    pub(crate) fn load(&self) -> Result<Record, StateError> {
        self.read_state()
    }

    /// [`ContainerDir::load`] of only what [`Brief`] keeps.
    pub(crate) fn load_brief(&self) -> Result<Brief, StateError> {
        self.read_state()
    }

    fn read_state<T: serde::de::DeserializeOwned>(&self) -> Result<T, StateError> {
        let p = self.path.join("state.json");
        let data = match fs::read(&p) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(StateError::NotExist),
            Err(e) => return Err(io_err(&p)(e)),
        };
        serde_json::from_slice(&data).map_err(|err| StateError::Corrupt { path: p, err })
    }

    pub(crate) fn save(&self, rec: &Record) -> Result<(), StateError> {
        let data = crate::sys::json::to_vec(rec).expect("state serializes");
        write_atomic(&self.path.join("state.json"), &data, 0o600)
    }

    pub(crate) fn remove(&self) -> Result<(), StateError> {
        match fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.path)(e)),
        }
    }

    /// The derived status: never trust what the file says about liveness.
    pub(crate) fn status(&self, rec: &Record) -> Status {
        if rec.pid == 0 {
            return if same_process_running(rec.creator_pid, rec.creator_start_time) {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        let running = rec
            .init_process()
            .is_some_and(|fd| !has_exited(&fd, Duration::ZERO));
        if !running {
            return Status::Stopped;
        }
        // Frozen first, as runc: a created container can be paused too.
        if crate::cgroups::manager::is_frozen(&rec.cgroup) {
            return Status::Paused;
        }
        if self.fifo().exists() {
            return Status::Created;
        }
        Status::Running
    }
}

/// temp + rename, so readers never see a half-written file. No fsync: state lives in
/// /run (tmpfs), and no container survives the crash an fsync would guard against; on a
/// disk-backed --root it cost ~1 ms per write on the start path.
pub(crate) fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), StateError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(data)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err(path))
}

/// The name the host's /etc/passwd gives `uid`, or the number.
pub(crate) fn user_name(uid: u32) -> String {
    fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| crate::passwd::by_uid(&text, uid).map(|u| u.name.to_string()))
        .unwrap_or_else(|| uid.to_string())
}

/// The OCI state document (plus runc's extras but the owner) as hooks receive it.
pub(crate) fn oci_state(rec: &Record, status: Status) -> serde_json::Value {
    serde_json::to_value(ContainerState::new(rec, status)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        for ok in ["a", "abc-1_2+3.4", "_x", "+", "A".repeat(1024).as_str()] {
            assert!(validate_id(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "..",
            ".a",
            "a/b",
            "a b",
            "a\0b",
            "é",
            "A".repeat(1025).as_str(),
            "-"[..0].as_ref(),
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }

    /// Field order and omissions as runc's `state` (annotations only when there are some,
    /// owner only where state/list add it, pid 0 once stopped).
    #[test]
    fn state_document_is_runcs() {
        let rec = Record {
            id: "c".into(),
            bundle: "/b".into(),
            rootfs: "/b/rootfs".into(),
            pid: 7,
            created: "2024-01-01T00:00:00Z".into(),
            annotations: [("k".to_string(), "v".to_string())].into_iter().collect(),
            ..Default::default()
        };
        let mut st = ContainerState::new(&rec, Status::Running);
        st.owner = Some("root".into());
        assert_eq!(
            serde_json::to_string(&st).unwrap(),
            r#"{"ociVersion":"1.2.1","id":"c","pid":7,"status":"running","bundle":"/b","rootfs":"/b/rootfs","created":"2024-01-01T00:00:00Z","annotations":{"k":"v"},"owner":"root"}"#
        );
        let plain = Record {
            annotations: Default::default(),
            oci_version: "1.0.2".into(),
            ..rec
        };
        assert_eq!(
            oci_state(&plain, Status::Stopped).to_string(),
            r#"{"ociVersion":"1.0.2","id":"c","pid":0,"status":"stopped","bundle":"/b","rootfs":"/b/rootfs","created":"2024-01-01T00:00:00Z"}"#
        );
    }

    #[test]
    fn own_process_identity() {
        let me = std::process::id() as i32;
        let start = process_start_time(me).unwrap();
        assert!(same_process_running(me, start));
        assert!(!same_process_running(me, start + 1));
        assert!(open_same_process(me, start + 1).is_none());
        assert!(!same_process_running(i32::MAX, start));
        assert!(!same_process_running(0, 0));
    }

    /// An exited child is not running though its pid still names it (a zombie), and the
    /// pidfd taken before sees it go.
    #[test]
    fn a_zombie_has_exited() {
        let mut child = std::process::Command::new("sleep")
            .arg("1000")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = process_start_time(pid).unwrap();
        let fd = open_same_process(pid, start).unwrap();
        assert!(!has_exited(&fd, Duration::ZERO));
        child.kill().unwrap();
        assert!(has_exited(&fd, Duration::from_secs(10)));
        assert!(!same_process_running(pid, start));
        child.wait().unwrap();
    }

    #[test]
    fn claim_is_exclusive_and_atomic_save_roundtrips() {
        let root = std::env::temp_dir().join(format!("berth-state-test-{}", std::process::id()));
        let d = ContainerDir::new(&root, "c1").unwrap();
        d.claim().unwrap();
        assert!(matches!(d.claim(), Err(StateError::Exists)));
        let rec = Record {
            id: "c1".into(),
            pid: 42,
            ..Default::default()
        };
        d.save(&rec).unwrap();
        assert_eq!(d.load().unwrap().pid, 42);
        d.remove().unwrap();
        assert!(matches!(d.load(), Err(StateError::NotExist)));
        fs::remove_dir_all(&root).unwrap();
    }
}
