//! The people face's containers on disk, with no daemon and no database:
//!
//! - `ROOT/containers/<id>/config.json`: what the container is (Docker's Config and
//!   HostConfig); `spec.json`: the generated OCI spec, apart because it is most of the
//!   bytes and listings never show it (records written before the split keep it inside
//!   config.json, still read); `state.json`: where its lifecycle stands. All written
//!   atomically (temp, rename), readable with `cat`; the record is fsync'd first unless
//!   the container is thrown away at its end (`--rm`). `state.json` is not: a rename
//!   replaces it whole, and one torn by a crash reads as a fresh state that the reconcile
//!   rules settle (see [`read_state`]).
//! - `ROOT/names/<name>`: a symlink to `../containers/<id>`; `symlink(2)` makes the claim
//!   of a name atomic without a global lock.
//! - `RUNROOT/containers/<id>/`: what a reboot forgets: `monitor.json` (the monitor's pid,
//!   start time and boot id), `exit.json`, the control socket, the runtime's bundle.
//!
//! A container is running iff its monitor is alive; the next command that finds it dead
//! reconciles (see [`Store::reconcile`]). Transitions take the container's flock, never
//! while waiting.

pub(crate) mod create;
mod exits;
pub(crate) mod lifecycle;
mod listing;
pub(crate) mod live;
pub(crate) mod names;
pub(crate) mod runtime;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::front::{Exit, Globals};

/// Fills `buf` from the kernel's random pool.
pub(crate) fn random_bytes(buf: &mut [u8]) {
    use std::io::Read;
    if let Ok(mut f) = File::open("/dev/urandom") {
        if f.read_exact(buf).is_ok() {
            return;
        }
    }
    // No /dev/urandom (a broken chroot): time and pid still make ids unique enough for a
    // mkdir claim, which is what decides.
    let t = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos()
        ^ ((std::process::id() as u128) << 64);
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (t >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(151);
    }
}

/// 64 hex digits whose 12-digit short form is not all digits (Docker's rule: it would
/// read as a number).
pub(crate) fn new_id() -> String {
    loop {
        let mut b = [0u8; 32];
        random_bytes(&mut b);
        let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
        if !id[..12].bytes().all(|c| c.is_ascii_digit()) {
            return id;
        }
    }
}

pub(crate) fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub(crate) fn now() -> String {
    runtime::rfc3339(SystemTime::now())
}

/// The log level a started monitor gets (ours).
pub(crate) fn log_level() -> &'static str {
    if crate::logging::debug_enabled() {
        "debug"
    } else {
        "warn"
    }
}

/// Docker's zero time, for times that have not happened.
pub(crate) const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// What the container is. Field names follow Docker's inspect, so the record reads as
/// `docker inspect` does.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Record {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) created: String,
    /// The image as the user named it (with --rootfs: the directory).
    pub(crate) image: String,
    pub(crate) image_id: String,
    /// The root filesystem the container runs in.
    pub(crate) rootfs: PathBuf,
    /// The process: Path is argv[0], Args the rest.
    pub(crate) path: String,
    pub(crate) args: Vec<String>,
    pub(crate) config: Config,
    pub(crate) host_config: HostConfig,
    /// The generated OCI runtime spec, stored in `spec.json`. Null when the record was
    /// loaded without it ([`Store::load_brief`]); such a record saved leaves `spec.json`
    /// as it is.
    #[serde(skip_serializing)]
    pub(crate) spec: serde_json::Value,
    pub(crate) log_path: PathBuf,
    /// Files the container gets bind-mounted (/etc/hostname, /etc/hosts, /etc/resolv.conf).
    pub(crate) hostname_path: PathBuf,
    pub(crate) hosts_path: PathBuf,
    pub(crate) resolv_conf_path: PathBuf,
    /// Volumes, binds and tmpfs mounts (Docker's `Mounts`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) mounts: Vec<crate::front::volumes::MountPoint>,
    /// `--network-alias`, `--ip`, `--mac-address`.
    pub(crate) net_request: crate::front::network::NetRequest,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Config {
    pub(crate) hostname: String,
    pub(crate) domainname: String,
    pub(crate) user: String,
    pub(crate) attach_stdin: bool,
    pub(crate) attach_stdout: bool,
    pub(crate) attach_stderr: bool,
    pub(crate) tty: bool,
    pub(crate) open_stdin: bool,
    pub(crate) stdin_once: bool,
    pub(crate) env: Vec<String>,
    pub(crate) cmd: Option<Vec<String>>,
    pub(crate) image: String,
    pub(crate) working_dir: String,
    pub(crate) entrypoint: Option<Vec<String>>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) stop_signal: String,
    pub(crate) stop_timeout: Option<i64>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) exposed_ports: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) volumes: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) healthcheck: Option<crate::front::monitor::health::HealthConfig>,
    /// The command line that made the container (as Podman's inspect), for
    /// `generate systemd --new`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) create_command: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct HostConfig {
    pub(crate) auto_remove: bool,
    pub(crate) log_config: LogConfig,
    pub(crate) network_mode: String,
    pub(crate) privileged: bool,
    pub(crate) readonly_rootfs: bool,
    pub(crate) init: bool,
    pub(crate) memory: i64,
    pub(crate) memory_swap: i64,
    pub(crate) memory_reservation: i64,
    pub(crate) nano_cpus: i64,
    pub(crate) cpu_shares: i64,
    pub(crate) cpuset_cpus: String,
    pub(crate) pids_limit: Option<i64>,
    pub(crate) ulimits: Vec<serde_json::Value>,
    pub(crate) cap_add: Vec<String>,
    pub(crate) cap_drop: Vec<String>,
    pub(crate) security_opt: Vec<String>,
    pub(crate) devices: Vec<serde_json::Value>,
    pub(crate) shm_size: i64,
    pub(crate) sysctls: BTreeMap<String, String>,
    pub(crate) group_add: Vec<String>,
    pub(crate) oom_score_adj: i32,
    pub(crate) restart_policy: RestartPolicy,
    pub(crate) port_bindings: BTreeMap<String, Vec<crate::front::network::HostPort>>,
    pub(crate) publish_all_ports: bool,
    pub(crate) links: Vec<String>,
    pub(crate) extra_hosts: Vec<String>,
    pub(crate) dns: Vec<String>,
    pub(crate) dns_search: Vec<String>,
    pub(crate) dns_options: Vec<String>,
    /// `--cidfile`, as given.
    #[serde(rename = "ContainerIDFile", skip_serializing_if = "String::is_empty")]
    pub(crate) container_id_file: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct LogConfig {
    #[serde(rename = "Type")]
    pub(crate) kind: String,
    pub(crate) config: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct RestartPolicy {
    pub(crate) name: String,
    pub(crate) maximum_retry_count: i64,
}

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    #[default]
    Created,
    Running,
    Exited,
    /// `rm` is under way (Docker's "Removal In Progress").
    Removing,
    /// Exited; its monitor brings it back after the restart policy's backoff.
    Restarting,
}

/// Where the lifecycle stands, as recorded at the last transition. `running` is only a
/// claim: [`Store::derive`] checks it against the monitor.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct State {
    pub(crate) status: Status,
    /// The init's host pid while running.
    pub(crate) pid: i32,
    pub(crate) exit_code: i32,
    pub(crate) oom_killed: bool,
    pub(crate) error: String,
    pub(crate) started_at: String,
    pub(crate) finished_at: String,
    pub(crate) restart_count: i64,
    /// The boot the container last ran in: after a reboot nothing of it runs.
    pub(crate) boot_id: String,
    /// Docker's HasBeenManuallyStopped: a user's stop or kill ended it (what
    /// `--restart unless-stopped` remembers); cleared by the next start.
    pub(crate) manually_stopped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) health: Option<crate::front::monitor::health::Health>,
}

/// `RUNROOT/containers/<id>/monitor.json`.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(default)]
pub(crate) struct MonitorRecord {
    pub(crate) pid: i32,
    pub(crate) start_time: u64,
    pub(crate) boot_id: String,
}

const LIVE_HEALTH: &str = "health.json";

/// `RUNROOT/containers/<id>/health.json`: see [`Store::live_health`].
#[derive(Serialize, Deserialize)]
struct LiveHealth {
    pid: i32,
    health: crate::front::monitor::health::Health,
}

/// `RUNROOT/containers/<id>/exit.json`: written by the monitor the moment the init is
/// reaped, before anything else, so that a monitor dying later still leaves the truth.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(default)]
pub(crate) struct ExitRecord {
    pub(crate) code: i32,
    pub(crate) signal: Option<i32>,
    pub(crate) oom: bool,
    pub(crate) finished_at: String,
}

/// Temp file, fsync, rename: a crash leaves the old or the new file, never half of one.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    replace_file(path, data, true)
}

/// Temp file and rename, no fsync: for records that describe only what runs, which a
/// crash of the machine ends anyway (an empty or older file after one is harmless).
pub(crate) fn write_volatile(path: &Path, data: &[u8]) -> Result<()> {
    replace_file(path, data, false)
}

/// Temp file, rename, and an fsync first when `durable`: without it readers never see
/// half a file, but a crash of the machine may leave an empty one. Each fsync is a
/// journal commit of the whole filesystem (0.2 ms idle, several ms on a busy disk), paid
/// only where a crash must not lose the content.
fn replace_file(path: &Path, data: &[u8], durable: bool) -> Result<()> {
    replace_file_meta(path, data, durable).map(drop)
}

/// [`replace_file`], returning the new file's metadata (as `fstat` saw it before the
/// rename, so of this very file whoever replaces it next).
fn replace_file_meta(path: &Path, data: &[u8], durable: bool) -> Result<fs::Metadata> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let r = (|| -> io::Result<fs::Metadata> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        let m = f.metadata()?;
        if durable {
            f.sync_all()?;
            fs::rename(&tmp, path)?;
        } else {
            swap_into_place(&tmp, path)?;
        }
        Ok(m)
    })();
    r.map_err(|e| {
        let _ = fs::remove_file(&tmp);
        anyhow!("{}: {}", path.display(), crate::error::errno_text(&e))
    })
}

/// A file written once and never changed in place (each write a new file put in place):
/// its device and inode, and its mtime, as an inode number may be reused once freed.
pub(crate) type FileIdent = (u64, u64, i64, i64);

fn file_ident(m: &fs::Metadata) -> FileIdent {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino(), m.mtime(), m.mtime_nsec())
}

/// Puts `tmp` in `path`'s place, as atomically for readers as a rename. A file renamed
/// over another on ext4 is written out at once (auto_da_alloc: the data of the new file
/// allocated and submitted, and the replaced file's blocks freed, each free a discard
/// where the filesystem is mounted with `discard`). Exchanging the two and unlinking the
/// old one skips that: a container that lives a moment never writes its state.json to
/// the disk. Where there is nothing to replace (or no exchange), a plain rename.
fn swap_into_place(tmp: &Path, path: &Path) -> io::Result<()> {
    match crate::sys::exchange(tmp, path) {
        Ok(()) => {
            let _ = fs::remove_file(tmp);
            Ok(())
        }
        Err(_) => fs::rename(tmp, path),
    }
}

fn write_json<T: Serialize>(path: &Path, v: &T, durable: bool) -> Result<()> {
    write_json_meta(path, v, durable).map(drop)
}

fn write_json_meta<T: Serialize>(path: &Path, v: &T, durable: bool) -> Result<fs::Metadata> {
    let mut data = crate::sys::json::to_vec_pretty(v).context("encoding a record")?;
    data.push(b'\n');
    replace_file_meta(path, &data, durable)
}

/// The spec first: a crash between the two leaves the old record with a spec at least
/// as new, and config.json (whose presence makes the container exist) last. Durable
/// unless the container is removed at its end: a crash loses nothing of it worth keeping.
/// Then the listing made from this config.json (see [`listing`]).
fn write_record(dir: &Path, rec: &Record) -> Result<()> {
    let durable = !rec.host_config.auto_remove;
    let meta = if durable && !rec.spec.is_null() {
        write_synced_pair(dir, rec)?
    } else {
        if !rec.spec.is_null() {
            write_json(&dir.join("spec.json"), &rec.spec, durable)?;
        }
        write_json_meta(&dir.join("config.json"), rec, durable)?
    };
    let data = listing::encode(rec, listing::Source::of_meta(&meta));
    if replace_file(&dir.join(listing::FILE), &data, false).is_err() {
        // One left from an earlier record names another config.json: ignored by readers.
        // Removed all the same, as nothing should be left that cannot be used.
        let _ = fs::remove_file(dir.join(listing::FILE));
    }
    Ok(())
}

/// A durable record's two files: both written, both synced at once (concurrent fsyncs
/// share the filesystem's journal commits, where one after the other each waits for its
/// own), then renamed into place, the spec first, as `write_record` orders them. Returns
/// config.json's metadata.
fn write_synced_pair(dir: &Path, rec: &Record) -> Result<fs::Metadata> {
    fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>> {
        let mut d = crate::sys::json::to_vec_pretty(v).context("encoding a record")?;
        d.push(b'\n');
        Ok(d)
    }
    let files = [
        (dir.join("spec.json"), encode(&rec.spec)?),
        (dir.join("config.json"), encode(rec)?),
    ];
    let tmps: Vec<PathBuf> = files
        .iter()
        .map(|(p, _)| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default();
            dir.join(format!(".{name}.{}.tmp", std::process::id()))
        })
        .collect();
    let write = |tmp: &Path, data: &[u8]| -> io::Result<File> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(tmp)?;
        f.write_all(data)?;
        Ok(f)
    };
    // Both written before either is synced: the second's creation does not wait behind
    // the first's commit.
    let r = write(&tmps[0], &files[0].1)
        .map_err(|e| (0, e))
        .and_then(|a| Ok((a, write(&tmps[1], &files[1].1).map_err(|e| (1, e))?)))
        .and_then(|(a, b)| {
            let (ra, rb) = std::thread::scope(|sc| {
                let t = sc.spawn(|| b.sync_all());
                let ra = a.sync_all();
                (
                    ra,
                    t.join().unwrap_or_else(|_| Err(io::Error::other("fsync"))),
                )
            });
            ra.map_err(|e| (0, e)).and(rb.map_err(|e| (1, e)))?;
            b.metadata().map_err(|e| (1, e))
        })
        .and_then(|m| {
            fs::rename(&tmps[0], &files[0].0).map_err(|e| (0, e))?;
            fs::rename(&tmps[1], &files[1].0).map_err(|e| (1, e))?;
            Ok(m)
        });
    r.map_err(|(i, e)| {
        for t in &tmps {
            let _ = fs::remove_file(t);
        }
        anyhow!("{}: {}", files[i].0.display(), crate::error::errno_text(&e))
    })
}

/// `state.json`, which is replaced without an fsync: one that a crash of the machine left
/// empty or torn reads as a fresh state (`created`, no pid), which the reconcile rules
/// treat as any container whose monitor is gone. A record that cannot be read at all
/// would hide the container from every command instead.
fn read_state(path: &Path) -> Result<Option<State>> {
    with_file(path, |d| Ok(serde_json::from_slice(d).unwrap_or_default()))
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    with_file(path, |d| {
        serde_json::from_slice(d).map_err(|e| anyhow!("{}: corrupt record: {e}", path.display()))
    })
}

thread_local! {
    /// One buffer for every record read: listings read two or three small files per
    /// container, and a fresh buffer each time costs musl's allocator an mmap and a
    /// munmap.
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `f` of the file's bytes; None when there is no such file.
fn with_file<T>(path: &Path, f: impl FnOnce(&[u8]) -> Result<T>) -> Result<Option<T>> {
    with_file_at(None, path, &|| path.to_path_buf(), f)
}

/// [`with_file`] of `rel` under the directory `dir` (`full` names the file in errors):
/// listings open each container's records relative to the containers directory, a
/// shorter walk of the path, and in three system calls (openat, read, close).
fn with_file_at<T>(
    dir: Option<std::os::fd::BorrowedFd>,
    rel: &Path,
    full: &dyn Fn() -> PathBuf,
    f: impl FnOnce(&[u8]) -> Result<T>,
) -> Result<Option<T>> {
    READ_BUF.with(|b| {
        // Taken out for the call: a record read from within `f` gets a buffer of its own.
        let mut buf = b.take();
        let r = match read_all(dir, rel, &mut buf) {
            Ok(n) => f(&buf[..n]).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow!(
                "{}: {}",
                full().display(),
                crate::error::errno_text(&e)
            )),
        };
        if buf.len() <= 1 << 20 {
            b.replace(buf);
        }
        r
    })
}

/// Reads the whole file into `buf` (kept at its full length, grown as needed); returns
/// how many bytes it has. A read that does not fill the room left is taken as the end:
/// records are replaced by rename, never written in place, so none is read half-written.
fn read_all(
    dir: Option<std::os::fd::BorrowedFd>,
    rel: &Path,
    buf: &mut Vec<u8>,
) -> io::Result<usize> {
    use nix::fcntl::OFlag;
    use std::io::Read;
    let fd = nix::fcntl::openat(
        dir.unwrap_or(nix::fcntl::AT_FDCWD),
        rel,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let mut file = File::from(fd);
    if buf.len() < 16 << 10 {
        buf.resize(16 << 10, 0);
    }
    let mut n = 0;
    loop {
        if n == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let room = buf.len() - n;
        match file.read(&mut buf[n..]) {
            Ok(0) => return Ok(n),
            Ok(k) => {
                n += k;
                if k < room {
                    return Ok(n);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// `dir/name` written into `buf` (None when it does not fit): a path for one call,
/// without an allocation.
fn rel_path<'a>(buf: &'a mut [u8], dir: &str, name: &str) -> Option<&'a Path> {
    use std::os::unix::ffi::OsStrExt;
    let n = dir.len() + 1 + name.len();
    let out = buf.get_mut(..n)?;
    out[..dir.len()].copy_from_slice(dir.as_bytes());
    out[dir.len()] = b'/';
    out[dir.len() + 1..].copy_from_slice(name.as_bytes());
    Some(Path::new(std::ffi::OsStr::from_bytes(out)))
}

fn mkdir_p(p: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(p)
        .map_err(|e| anyhow!("{}: {}", p.display(), crate::error::errno_text(&e)))
}

/// `Error: No such container: x` (exit 1, or the command's class).
pub(crate) fn no_such(q: &str) -> anyhow::Error {
    anyhow!("No such container: {q}")
}

/// Whether an error is "No such container" (for --ignore and `container exists`).
pub(crate) fn is_no_such(e: &anyhow::Error) -> bool {
    e.to_string().starts_with("No such container: ")
}

/// An exclusive flock on the container's directory, released on drop.
pub(crate) struct Lock(#[allow(dead_code)] nix::fcntl::Flock<File>);

/// A container's status as seen now (the record's claim checked against its monitor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Live {
    Created,
    Running,
    Paused,
    Exited,
    Removing,
    /// The monitor is starting it (state still `created`, monitor alive).
    Starting,
    /// Between two runs of its restart policy (the monitor waits out the backoff).
    Restarting,
}

impl Live {
    /// Docker's `State.Status` word.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Live::Created | Live::Starting => "created",
            Live::Running => "running",
            Live::Paused => "paused",
            Live::Exited => "exited",
            Live::Removing => "removing",
            Live::Restarting => "restarting",
        }
    }
    pub(crate) fn is_active(self) -> bool {
        matches!(
            self,
            Live::Running | Live::Paused | Live::Starting | Live::Restarting
        )
    }
}

pub(crate) struct Store {
    pub(crate) root: PathBuf,
    pub(crate) runroot: PathBuf,
    pub(crate) rt: crate::runtime::Globals,
    dirs: DirFds,
}

/// The containers' directories, opened at their first use by this command: listings read
/// each container's files relative to them.
#[derive(Default)]
struct DirFds {
    containers: std::sync::OnceLock<Option<std::os::fd::OwnedFd>>,
    run: std::sync::OnceLock<Option<std::os::fd::OwnedFd>>,
    runtime: std::sync::OnceLock<Option<std::os::fd::OwnedFd>>,
}

fn open_dir(p: &Path) -> Option<std::os::fd::OwnedFd> {
    use nix::fcntl::OFlag;
    nix::fcntl::open(
        p,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()
}

/// One container as read from disk.
#[derive(Clone, Default)]
pub(crate) struct Container {
    pub(crate) rec: Record,
    pub(crate) state: State,
}

impl Store {
    pub(crate) fn new(g: &Globals) -> Store {
        runtime::keep_compiled_filters(&g.runroot);
        Store {
            root: g.root.clone(),
            runroot: g.runroot.clone(),
            rt: g.runtime(),
            dirs: DirFds::default(),
        }
    }

    fn containers_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        let d = &self.dirs.containers;
        d.get_or_init(|| open_dir(&self.containers_dir()))
            .as_ref()
            .map(|f| f.as_fd())
    }

    fn run_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        let d = &self.dirs.run;
        d.get_or_init(|| open_dir(&self.runroot.join("containers")))
            .as_ref()
            .map(|f| f.as_fd())
    }

    /// Freezes the container, its pause marks set first: the runtime's and the one of its
    /// monitor's lock file that listings read (see [`live::mark_paused`]).
    pub(crate) fn pause(&self, id: &str) -> Result<()> {
        live::mark_paused(&self.run_dir(id), true)?;
        runtime::pause(&self.rt, id).inspect_err(|_| {
            if !runtime::is_frozen(&self.rt, id) {
                let _ = live::mark_paused(&self.run_dir(id), false);
            }
        })
    }

    /// Thaws the container, then clears its pause marks.
    pub(crate) fn resume(&self, id: &str) -> Result<()> {
        runtime::resume(&self.rt, id)?;
        live::mark_paused(&self.run_dir(id), false)
    }

    /// Whether `pause` marked the container (see [`runtime::is_frozen`], which the mark
    /// only lets through): one stat relative to the runtime's directory.
    fn pause_marked(&self, id: &str) -> bool {
        use std::os::fd::AsFd;
        let d = &self.dirs.runtime;
        let mut buf = [0u8; 256];
        let rel = rel_path(&mut buf, id, runtime::PAUSE_MARK);
        match (d.get_or_init(|| open_dir(&self.rt.root)), rel) {
            (Some(fd), Some(rel)) => {
                nix::sys::stat::fstatat(fd.as_fd(), rel, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                    .is_ok()
            }
            _ => self.rt.root.join(id).join(runtime::PAUSE_MARK).exists(),
        }
    }

    /// `f` of the bytes of the container's file `name`; None when there is none.
    fn read_in<T>(
        &self,
        id: &str,
        name: &str,
        f: impl FnOnce(&dyn Fn() -> PathBuf, &[u8]) -> Result<T>,
    ) -> Result<Option<T>> {
        // The full path only for messages: a listing reads thousands of files.
        let full = || self.dir(id).join(name);
        let g = |d: &[u8]| f(&full, d);
        match self.containers_fd() {
            Some(fd) => {
                let mut buf = [0u8; 256];
                match rel_path(&mut buf, id, name) {
                    Some(rel) => with_file_at(Some(fd), rel, &full, g),
                    None => with_file_at(Some(fd), &Path::new(id).join(name), &full, g),
                }
            }
            None => with_file(&full(), g),
        }
    }

    pub(crate) fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub(crate) fn dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }
    fn names_dir(&self) -> PathBuf {
        self.root.join("names")
    }
    /// Runtime state of one container (forgotten at reboot).
    pub(crate) fn run_dir(&self, id: &str) -> PathBuf {
        self.runroot.join("containers").join(id)
    }
    pub(crate) fn ctl_socket(&self, id: &str) -> PathBuf {
        self.run_dir(id).join("ctl.sock")
    }

    pub(crate) fn lock(&self, id: &str) -> Result<Lock> {
        let d = self.dir(id);
        let f = File::open(&d).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => no_such(id),
            _ => anyhow!("{}: {}", d.display(), crate::error::errno_text(&e)),
        })?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map(Lock)
            .map_err(|(_, e)| anyhow!("lock {}: {}", d.display(), crate::error::errno_desc(e)))
    }

    fn try_lock(&self, id: &str) -> Option<Lock> {
        let f = File::open(self.dir(id)).ok()?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
            .ok()
            .map(Lock)
    }

    /// Makes a new container exist whole or not at all: its directory is filled under a
    /// temporary name and renamed into place once the name is claimed.
    pub(crate) fn create(&self, rec: &Record) -> Result<()> {
        mkdir_p(&self.containers_dir(), 0o700)?;
        mkdir_p(&self.names_dir(), 0o700)?;
        let tmp = self.containers_dir().join(format!(".new-{}", rec.id));
        mkdir_p(&tmp, 0o700)?;
        let me = std::process::id() as i32;
        let creator = MonitorRecord {
            pid: me,
            start_time: runtime::process_start_time(me).unwrap_or(0),
            boot_id: runtime::boot_id(),
        };
        let r = (|| {
            // Read only while its creator lives (pid, start time, boot): no fsync.
            write_json(&tmp.join("creator.json"), &creator, false)?;
            crate::testpoint::hit("people:tmp-dir");
            self.claim_name(&rec.name, &rec.id)?;
            crate::testpoint::hit("people:name-claimed");
            Ok(())
        })();
        if let Err(e) = r {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let r = (|| {
            write_record(&tmp, rec)?;
            write_json(&tmp.join("state.json"), &State::default(), false)?;
            crate::testpoint::hit("people:record-written");
            let _ = fs::remove_file(tmp.join("creator.json"));
            fs::rename(&tmp, self.dir(&rec.id))
                .map_err(|e| anyhow!("{}: {}", tmp.display(), crate::error::errno_text(&e)))
        })();
        if let Err(e) = r {
            let _ = fs::remove_file(self.names_dir().join(&rec.name));
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        Ok(())
    }

    /// `names/<name>` -> `../containers/<id>`. A link whose container never came to be (its
    /// creator died before the rename) is taken over, under the names directory's lock.
    fn claim_name(&self, name: &str, id: &str) -> Result<()> {
        let link = self.names_dir().join(name);
        let target = Path::new("../containers").join(id);
        for attempt in 0..2 {
            match std::os::unix::fs::symlink(&target, &link) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => bail!("{}: {}", link.display(), crate::error::errno_text(&e)),
            }
            let holder = self.name_holder(name);
            match holder {
                Some(h) if attempt == 0 && !self.holder_alive(&h) => {
                    // Stale: take the names lock so two claimers do not both repair it.
                    let dir = File::open(self.names_dir())?;
                    let _l = nix::fcntl::Flock::lock(dir, nix::fcntl::FlockArg::LockExclusive)
                        .map_err(|(_, e)| anyhow!("lock names: {}", crate::error::errno_desc(e)))?;
                    if self.name_holder(name).as_deref() == Some(h.as_str())
                        && !self.holder_alive(&h)
                    {
                        let _ = fs::remove_file(&link);
                        let _ = fs::remove_dir_all(self.containers_dir().join(format!(".new-{h}")));
                    }
                }
                Some(h) => bail!(
                    "the container name \"{name}\" is already in use by container \"{h}\". You have to remove (or rename) that container to be able to reuse that name"
                ),
                None if attempt == 0 => continue,
                None => bail!("the container name \"{name}\" is already in use"),
            }
        }
        bail!("the container name \"{name}\" is already in use")
    }

    /// The container that holds `name`, if one does.
    pub(crate) fn id_by_name(&self, name: &str) -> Option<String> {
        self.name_holder(name)
            .filter(|id| self.dir(id).join("config.json").exists())
    }

    fn name_holder(&self, name: &str) -> Option<String> {
        let t = fs::read_link(self.names_dir().join(name)).ok()?;
        t.file_name().map(|n| n.to_string_lossy().into_owned())
    }

    /// A name's holder exists, or is being made by a live creator.
    fn holder_alive(&self, id: &str) -> bool {
        if self.dir(id).join("config.json").exists() {
            return true;
        }
        let new = self.containers_dir().join(format!(".new-{id}"));
        match read_json::<MonitorRecord>(&new.join("creator.json")) {
            Ok(Some(c)) => alive(&c),
            // Written by rename while its creator lives: unreadable only after a crash.
            Err(_) => false,
            // The dir without its creator file is a moment from the rename: alive.
            _ => new.exists(),
        }
    }

    pub(crate) fn load(&self, id: &str) -> Result<Container> {
        let mut c = self.load_brief(id)?;
        if c.rec.spec.is_null() {
            c.rec.spec = read_json(&self.dir(id).join("spec.json"))?.unwrap_or_default();
        }
        Ok(c)
    }

    /// The record without its spec (unless an old record holds it inside): what listings
    /// show, at a fraction of the parsing.
    pub(crate) fn load_brief(&self, id: &str) -> Result<Container> {
        let rec = self.read_record(id)?;
        self.with_state(id, rec)
    }

    fn read_record(&self, id: &str) -> Result<Record> {
        self.read_in(id, "config.json", |p, d| {
            serde_json::from_slice(d).map_err(|e| anyhow!("{}: corrupt record: {e}", p().display()))
        })?
        .ok_or_else(|| no_such(id))
    }

    /// [`Store::load_brief`] for listings, into `c` (a default container): of the record
    /// only what `ps` shows, from its listing while that was made from the current
    /// config.json (see [`listing`]), else from config.json itself. Filled where it lies:
    /// a Container is large, and one returned would be copied at each step on its way.
    fn load_listed_into(&self, id: &str, c: &mut Container) -> Result<()> {
        if !self.listed_record_into(id, &mut c.rec) {
            c.rec = self.read_record(id)?;
        }
        c.state = self.state_of(id, c.rec.config.healthcheck.is_some())?;
        Ok(())
    }

    /// Whether the listing was read into `rec`.
    fn listed_record_into(&self, id: &str, rec: &mut Record) -> bool {
        let Some(fd) = self.containers_fd() else {
            return false;
        };
        let mut buf = [0u8; 256];
        let Some(config) = rel_path(&mut buf, id, "config.json") else {
            return false;
        };
        let Ok(st) = nix::sys::stat::fstatat(fd, config, nix::fcntl::AtFlags::empty()) else {
            return false;
        };
        let source = listing::Source::of_stat(&st);
        let read = self.read_in(id, listing::FILE, |_, d| {
            Ok(listing::decode_into(d, source, rec))
        });
        // Made for this container's directory (not one copied from another's).
        matches!(read, Ok(Some(true))) && rec.id == id
    }

    /// The container with its state (and live health) added to its record.
    fn with_state(&self, id: &str, rec: Record) -> Result<Container> {
        let state = self.state_of(id, rec.config.healthcheck.is_some())?;
        Ok(Container { rec, state })
    }

    /// The container's state, with the live health when it has a healthcheck.
    fn state_of(&self, id: &str, healthcheck: bool) -> Result<State> {
        // Torn by a crash: a fresh state, as read_state says.
        let mut state: State = self
            .read_in(id, "state.json", |_, d| {
                Ok(serde_json::from_slice(d).unwrap_or_default())
            })?
            .unwrap_or_default();
        if healthcheck {
            if let Some(h) = self.live_health(id, state.pid) {
                state.health = Some(h);
            }
        }
        Ok(state)
    }

    /// The healthcheck's state at its latest probe of the init `pid`, kept in the runroot
    /// (state.json has it as of its last change of status): a probe a second costs a
    /// write to memory, not a new file and its writeback on the disk.
    pub(crate) fn live_health(
        &self,
        id: &str,
        pid: i32,
    ) -> Option<crate::front::monitor::health::Health> {
        let l: LiveHealth = read_json(&self.run_dir(id).join(LIVE_HEALTH))
            .ok()
            .flatten()?;
        (pid > 0 && l.pid == pid).then_some(l.health)
    }

    /// Writes the healthcheck's latest state; the identity of the file written (see
    /// [`Store::live_health_ident`]).
    pub(crate) fn save_live_health(
        &self,
        id: &str,
        pid: i32,
        health: &crate::front::monitor::health::Health,
    ) -> Result<FileIdent> {
        let data = crate::sys::json::to_vec(&LiveHealth {
            pid,
            health: health.clone(),
        })
        .context("encoding a record")?;
        let m = replace_file_meta(&self.run_dir(id).join(LIVE_HEALTH), &data, false)?;
        Ok(file_ident(&m))
    }

    /// The identity of the healthcheck's live record: each write is a new file, so a writer
    /// that finds the one it wrote knows its own copy is still the latest.
    pub(crate) fn live_health_ident(&self, id: &str) -> Option<FileIdent> {
        fs::metadata(self.run_dir(id).join(LIVE_HEALTH))
            .ok()
            .map(|m| file_ident(&m))
    }

    /// The state alone (without parsing the record and its spec): for frequent writers.
    pub(crate) fn load_state(&self, id: &str) -> Result<State> {
        read_state(&self.dir(id).join("state.json"))?.ok_or_else(|| no_such(id))
    }

    pub(crate) fn save_state(&self, id: &str, st: &State) -> Result<()> {
        write_json(&self.dir(id).join("state.json"), st, false)
    }

    pub(crate) fn save_record(&self, rec: &Record) -> Result<()> {
        write_record(&self.dir(&rec.id), rec)
    }

    /// Every container id (no order promised).
    pub(crate) fn ids(&self) -> Vec<String> {
        let Ok(rd) = fs::read_dir(self.containers_dir()) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for e in rd.filter_map(|e| e.ok()) {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(".rm-") {
                // A removal renamed this away and died before deleting it: finish it.
                let _ = fs::remove_dir_all(e.path());
                continue;
            }
            if let Some(id) = n.strip_prefix(".new-") {
                // A create that died before its rename: nothing of it is visible; clear it.
                let p = e.path();
                // Unreadable: torn by a crash of the machine (it is written by rename).
                let dead = match read_json::<MonitorRecord>(&p.join("creator.json")) {
                    Ok(Some(c)) => !alive(&c),
                    Ok(None) => false,
                    Err(_) => true,
                };
                // A dead creator's name link is left for claim_name's repair (under the
                // names lock).
                if dead && self.name_holder_of(id).is_none() {
                    let _ = fs::remove_dir_all(&p);
                }
                continue;
            }
            if n.len() == 64 && n.bytes().all(|c| c.is_ascii_hexdigit()) {
                out.push(n);
            }
        }
        out
    }

    fn name_holder_of(&self, id: &str) -> Option<String> {
        let rd = fs::read_dir(self.names_dir()).ok()?;
        rd.filter_map(|e| e.ok())
            .find(|e| {
                fs::read_link(e.path())
                    .ok()
                    .and_then(|t| t.file_name().map(|n| n == id))
                    .unwrap_or(false)
            })
            .map(|e| e.file_name().to_string_lossy().into_owned())
    }

    /// Every container, reconciled (a dead monitor found here is dealt with now).
    pub(crate) fn list(&self) -> Vec<Container> {
        self.list_with(Store::load)
    }

    /// [`Store::list`] without the specs (see [`Store::load_brief`]): for listings.
    pub(crate) fn list_brief(&self) -> Vec<Container> {
        self.list_with(Store::load_brief)
    }

    /// [`Store::list_brief`] with each container's status, from the same look at its
    /// monitor that decides whether it needs reconciling.
    pub(crate) fn list_brief_live(&self) -> Vec<(Container, Live)> {
        self.map_brief_live(|c, live| (c, live))
    }

    /// Each container with its status (as [`Store::list_brief_live`]) mapped by `f`, for
    /// a listing that keeps a line of each rather than the containers (megabytes of them
    /// in a long list, each page of which is a fault to take). No order is promised.
    ///
    /// A long list is read by as many threads as this process may run on: a listing's
    /// time is a path walk and a few small reads per container, which wait on memory, not
    /// on each other. The threads only read; a container whose monitor is gone is
    /// reconciled afterwards, on this thread (that writes, signals and may fork).
    pub(crate) fn map_brief_live<T: Send>(
        &self,
        f: impl Fn(Container, Live) -> T + Sync,
    ) -> Vec<T> {
        let run_dirs = self.listing_run_dirs();
        let ids = self.ids();
        let part = ids.len().div_ceil(listing_threads(ids.len())).max(1);
        let mut out = Vec::with_capacity(ids.len());
        let mut later = Vec::new();
        let read = |ids: &[String]| {
            let mut rows = Vec::with_capacity(ids.len());
            let mut later = Vec::new();
            for id in ids {
                let mut c = Container::default();
                match self.look_listed_read(id, &run_dirs, &mut c) {
                    Looked::Live(live) => rows.push(f(c, live)),
                    Looked::Gone => {}
                    Looked::Reconcile => later.push(id.clone()),
                }
            }
            (rows, later)
        };
        let mut threads = 0;
        std::thread::scope(|s| {
            let mut parts = ids.chunks(part);
            let first = parts.next().unwrap_or_default();
            let mut take = |(rows, l): (Vec<T>, Vec<String>)| {
                out.extend(rows);
                later.extend(l);
            };
            // A thread refused (a pids limit, RLIMIT_NPROC) leaves its part to this one.
            let mut here = vec![first];
            let mut others = Vec::new();
            for p in parts {
                match std::thread::Builder::new().spawn_scoped(s, || read(p)) {
                    Ok(h) => others.push(h),
                    Err(_) => here.push(p),
                }
            }
            threads = others.len();
            for p in here {
                take(read(p));
            }
            for h in others {
                take(h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)));
            }
        });
        if threads > 0 && !later.is_empty() {
            // Reconciling may fork, which some of its steps allow only in a single-threaded
            // process; a joined thread is still counted by the kernel for a moment (its id
            // is cleared before it leaves the thread group).
            crate::front::userns::until_single_threaded();
        }
        for id in later {
            let mut c = Container::default();
            if let Some(live) = self.look_listed(&id, &run_dirs, &mut c) {
                out.push(f(c, live));
            }
        }
        out
    }

    /// Which containers have a run directory, in one look: one without it has no monitor
    /// to probe (a created or exited container: most of a long list). None when most have
    /// one (the look costs more than it spares: each is probed), or it cannot be read.
    fn listing_run_dirs(&self) -> Option<std::collections::HashSet<String>> {
        if self.mostly_running() {
            return None;
        }
        match fs::read_dir(self.runroot.join("containers")) {
            Ok(rd) => Some(
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect(),
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Some(Default::default()),
            Err(_) => None,
        }
    }

    /// Reads container `id` into `c` (a default container) and says its status, after
    /// reconciling it if its monitor is gone; None when it is gone (removed meanwhile, or
    /// by its own `--rm` now). `run_dirs` was read before any state (see
    /// [`Store::listing_run_dirs`]).
    fn look_listed(
        &self,
        id: &str,
        run_dirs: &Option<std::collections::HashSet<String>>,
        c: &mut Container,
    ) -> Option<Live> {
        match self.look_listed_read(id, run_dirs, c) {
            Looked::Live(live) => Some(live),
            Looked::Gone => None,
            Looked::Reconcile => {
                let now = self.reconcile_if_needed(std::mem::take(c))?;
                let live = self.derive(&now);
                *c = now;
                Some(live)
            }
        }
    }

    /// [`Store::look_listed`] without the reconciling: reads only.
    fn look_listed_read(
        &self,
        id: &str,
        run_dirs: &Option<std::collections::HashSet<String>>,
        c: &mut Container,
    ) -> Looked {
        if self.load_listed_into(id, c).is_err() {
            return Looked::Gone;
        }
        // One look at the lock file, for both questions asked of it.
        let seen = std::cell::OnceCell::new();
        let look = || *seen.get_or_init(|| self.monitor_probe_listed(id));
        // Missing from the look taken before its state was read: its monitor, if one came
        // since, started after that state was written, which then still stands. Only a
        // claim of running is checked against the monitor itself (assess).
        let probe = || match run_dirs {
            Some(d) if !d.contains(id) => None,
            _ => look().alive,
        };
        let alive = || look().alive == Some(true);
        let paused = || look().paused.unwrap_or_else(|| self.pause_marked(id));
        match self.assess_with(c, probe, alive, paused) {
            (false, live) => Looked::Live(live),
            _ => Looked::Reconcile,
        }
    }

    fn list_with(&self, load: fn(&Store, &str) -> Result<Container>) -> Vec<Container> {
        let mut out = Vec::new();
        for id in self.ids() {
            // Another command may remove it meanwhile: readers tolerate that.
            let Ok(c) = load(self, &id) else { continue };
            match self.reconcile_if_needed(c) {
                Some(c) => out.push(c),
                None => continue,
            }
        }
        out
    }

    /// A name, a full id, or a unique id prefix -> the full id. An exact name wins over a
    /// prefix; an ambiguous prefix names its candidates.
    pub(crate) fn resolve(&self, q: &str) -> Result<String> {
        if q.is_empty() {
            return Err(no_such(q));
        }
        let name = q.strip_prefix('/').unwrap_or(q);
        if !name.contains('/') && name != "." && name != ".." {
            if let Some(id) = self.name_holder(name) {
                if self.dir(&id).join("config.json").exists() {
                    return Ok(id);
                }
            }
        }
        if !q.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(no_such(q));
        }
        let q = q.to_ascii_lowercase();
        if q.len() == 64 && self.dir(&q).join("config.json").exists() {
            return Ok(q);
        }
        let mut found: Vec<String> = self
            .ids()
            .into_iter()
            .filter(|id| id.starts_with(&q))
            .collect();
        match found.len() {
            0 => Err(no_such(&q)),
            1 => Ok(found.remove(0)),
            _ => {
                found.sort();
                let list: Vec<&str> = found.iter().map(|s| short(s)).collect();
                bail!(
                    "multiple containers match the prefix {q:?}: {}",
                    list.join(", ")
                )
            }
        }
    }

    /// Resolves and loads, reconciled, and if its monitor is starting it, after the start
    /// (bounded): commands that act on a running container see it running.
    pub(crate) fn get_started(&self, q: &str) -> Result<Container> {
        let c = self.get(q)?;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let mut c = c;
        while self.derive(&c) == Live::Starting && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
            c = self.get(q)?;
        }
        Ok(c)
    }

    /// Resolves and loads, reconciled.
    pub(crate) fn get(&self, q: &str) -> Result<Container> {
        let c = self.get_brief(q)?;
        if !c.rec.spec.is_null() {
            return Ok(c);
        }
        self.load(&c.rec.id).map_err(|_| no_such(q))
    }

    /// [`Store::get`] without the spec (see [`Store::load_brief`]).
    pub(crate) fn get_brief(&self, q: &str) -> Result<Container> {
        let id = self.resolve(q)?;
        let c = self.load_brief(&id).map_err(|_| no_such(q))?;
        self.reconcile_if_needed(c).ok_or_else(|| no_such(q))
    }

    pub(crate) fn monitor(&self, id: &str) -> Option<MonitorRecord> {
        read_json(&self.run_dir(id).join("monitor.json"))
            .ok()
            .flatten()
    }

    pub(crate) fn exit_record(&self, id: &str) -> Option<ExitRecord> {
        read_json(&self.run_dir(id).join("exit.json"))
            .ok()
            .flatten()
    }

    pub(crate) fn write_monitor(&self, id: &str, m: &MonitorRecord) -> Result<()> {
        mkdir_p(&self.run_dir(id), 0o700)?;
        // RUNROOT is forgotten at reboot: no fsync.
        write_json(&self.run_dir(id).join("monitor.json"), m, false)
    }

    pub(crate) fn write_exit(&self, id: &str, x: &ExitRecord) -> Result<()> {
        mkdir_p(&self.run_dir(id), 0o700)?;
        write_json(&self.run_dir(id).join("exit.json"), x, false)
    }

    /// Whether the container's monitor is alive (its lock held; for a monitor of an older
    /// berth: pid, start time and boot all match).
    pub(crate) fn monitor_alive(&self, id: &str) -> bool {
        self.monitor_probe(id) == Some(true)
    }

    /// Some(alive) when the container has a monitor record, None when it has none.
    fn monitor_probe(&self, id: &str) -> Option<bool> {
        let dir = || self.run_dir(id);
        live::probe(self.run_fd(), id, &dir).or_else(|| {
            dir()
                .join("monitor.json")
                .exists()
                .then(|| self.monitor(id).is_some_and(|m| alive(&m)))
        })
    }

    /// Whether at least half the containers have a run directory, as the two directories'
    /// link counts tell (2 + subdirectories, where the file system counts them; false
    /// where it does not): one stat each.
    fn mostly_running(&self) -> bool {
        let subdirs = |fd: Option<std::os::fd::BorrowedFd>| {
            let st = nix::sys::stat::fstat(fd?).ok()?;
            #[allow(clippy::unnecessary_cast)]
            (st.st_nlink as u64).checked_sub(2)
        };
        match (subdirs(self.run_fd()), subdirs(self.containers_fd())) {
            (Some(run), Some(all)) => run > 0 && run * 2 >= all,
            _ => false,
        }
    }

    /// [`Store::monitor_probe`], and the pause mark when the lock file tells it.
    fn monitor_probe_listed(&self, id: &str) -> live::Listed {
        let dir = || self.run_dir(id);
        let mut l = live::probe_listed(self.run_fd(), id, &dir);
        if l.alive.is_none() {
            l.alive = dir()
                .join("monitor.json")
                .exists()
                .then(|| self.monitor(id).is_some_and(|m| alive(&m)));
        }
        l
    }

    /// The status as of now, without writing anything.
    pub(crate) fn derive(&self, c: &Container) -> Live {
        self.assess(c).1
    }

    /// Whether the record disagrees with what runs (a dead monitor, a reboot, leftovers of
    /// a start that died), and the status as of now, from one look at the monitor: then
    /// the container is finalized under its lock.
    fn assess(&self, c: &Container) -> (bool, Live) {
        let probe = || self.monitor_probe(&c.rec.id);
        let paused = || self.pause_marked(&c.rec.id);
        self.assess_with(c, probe, || probe() == Some(true), paused)
    }

    /// [`Store::assess`] with `probe` saying what the monitor lock of a created or exited
    /// container says, `alive` whether the monitor of a running one lives, and `paused`
    /// whether `pause` marked it (which only the cgroup confirms).
    fn assess_with(
        &self,
        c: &Container,
        probe: impl Fn() -> Option<bool>,
        alive: impl Fn() -> bool,
        paused: impl Fn() -> bool,
    ) -> (bool, Live) {
        let id = &c.rec.id;
        match c.state.status {
            Status::Exited => (probe() == Some(false), Live::Exited),
            Status::Removing => (false, Live::Removing),
            Status::Created => match probe() {
                Some(true) => (false, Live::Starting),
                left => (left.is_some(), Live::Created),
            },
            // The monitor is gone, or was of another boot.
            Status::Restarting | Status::Running
                if !runtime::is_this_boot(&c.state.boot_id) || !alive() =>
            {
                (true, Live::Exited)
            }
            Status::Restarting => (false, Live::Restarting),
            // The monitor runs, so does the container: frozen is paused.
            Status::Running if paused() && runtime::is_frozen(&self.rt, id) => {
                (false, Live::Paused)
            }
            Status::Running => (false, Live::Running),
        }
    }

    fn needs_reconcile(&self, c: &Container) -> bool {
        self.assess(c).0
    }

    /// Reconciles if needed; None when the container is gone (removed meanwhile, or
    /// removed by its own `--rm` now).
    pub(crate) fn reconcile_if_needed(&self, c: Container) -> Option<Container> {
        if !self.needs_reconcile(&c) {
            return Some(c);
        }
        // Someone holds the lock: they are transitioning it; show what is on disk.
        let Some(lock) = self.try_lock(&c.rec.id) else {
            return Some(c);
        };
        let c = self.load(&c.rec.id).ok()?;
        if !self.needs_reconcile(&c) {
            return Some(c);
        }
        match self.reconcile(&c, &lock) {
            Ok(()) => {
                drop(lock);
                if c.rec.host_config.auto_remove
                    && matches!(c.state.status, Status::Running | Status::Restarting)
                {
                    let _ = self.remove_files(&c.rec);
                    return None;
                }
                self.load(&c.rec.id).ok()
            }
            Err(e) => {
                crate::logging::warn(&format!("container {}: {e:#}", short(&c.rec.id)));
                Some(c)
            }
        }
    }

    /// Finalizes a container whose monitor is gone: what exit.json says (or "monitor
    /// died"), whatever of it still runs killed, its runtime state removed. Caller holds
    /// the lock.
    pub(crate) fn reconcile(&self, c: &Container, _lock: &Lock) -> Result<()> {
        let id = &c.rec.id;
        runtime::delete(&self.rt, id)?;
        if let Err(e) = crate::front::network::release(self, id) {
            // Not a reason to keep a dead container "running": the next one retries.
            crate::logging::warn(&format!("container {}: {e:#}", short(id)));
        }
        let mut st = c.state.clone();
        if matches!(st.status, Status::Running | Status::Restarting) {
            st.status = Status::Exited;
            st.pid = 0;
            match self.exit_record(id) {
                Some(x) => {
                    st.exit_code = x.code;
                    st.oom_killed = x.oom;
                    st.finished_at = x.finished_at;
                }
                None if st.boot_id != runtime::boot_id() => {
                    st.exit_code = 255;
                    st.error = "the system was rebooted while the container ran".into();
                    st.finished_at = now();
                }
                None => {
                    st.exit_code = 255;
                    st.error = "monitor died".into();
                    st.finished_at = now();
                }
            }
            self.save_state(id, &st)?;
        }
        self.clear_run_dir(id);
        Ok(())
    }

    pub(crate) fn clear_run_dir(&self, id: &str) {
        let _ = fs::remove_dir_all(self.run_dir(id));
    }

    /// Removes every file of a stopped container (record, name, runtime dir). With
    /// --rootfs the directory is the user's and stays.
    pub(crate) fn remove_files(&self, rec: &Record) -> Result<()> {
        let link = self.names_dir().join(&rec.name);
        if self.name_holder(&rec.name).as_deref() == Some(rec.id.as_str()) {
            let _ = fs::remove_file(&link);
        }
        self.keep_exit_code(&rec.id);
        self.clear_run_dir(&rec.id);
        let d = self.dir(&rec.id);
        // Renamed first so that readers never see a half-removed container.
        let gone = self.containers_dir().join(format!(".rm-{}", rec.id));
        match fs::rename(&d, &gone) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => bail!("{}: {}", d.display(), crate::error::errno_text(&e)),
        }
        remove_overlay_branches(&gone.join("overlay"));
        // Rootless, an image container's upper directory holds files of subordinate ids.
        match crate::front::userns::remove_dir_all(&gone) {
            // A listing finishing the same removal got there first.
            Err(e) if e.kind() != io::ErrorKind::NotFound && gone.exists() => {
                bail!("{}: {}", gone.display(), crate::error::errno_text(&e))
            }
            _ => Ok(()),
        }
    }

    /// Renames under the container's lock: the new name is claimed before the old one is
    /// released, so the container is never nameless.
    pub(crate) fn rename(&self, id: &str, new: &str) -> Result<()> {
        let new = names::validate(new)?;
        let _lock = self.lock(id)?;
        let mut c = self.load(id)?;
        if c.rec.name == new {
            bail!("renaming a container with the same name as its current name");
        }
        self.claim_name(&new, id)?;
        let old = std::mem::replace(&mut c.rec.name, new);
        if let Err(e) = self.save_record(&c.rec) {
            let _ = fs::remove_file(self.names_dir().join(&c.rec.name));
            return Err(e);
        }
        let _ = fs::remove_file(self.names_dir().join(old));
        Ok(())
    }
}

/// Removes the branches of a removed container's overlay directory side by side, best
/// effort (what is left goes with the rest, errors reported there). Each directory freed
/// on a disk mounted with `discard` waits for the device (several ms on a busy one): the
/// kernel's work/work/incompat/volatile chain is the deepest branch, removed on a thread
/// of its own while this one removes the upper and merged directories.
/// Root only (berth's user namespace included): an unprivileged caller's removal may
/// fork into that namespace, which wants this process single-threaded.
fn remove_overlay_branches(overlay: &Path) {
    let work = overlay.join("work");
    if !nix::unistd::geteuid().is_root() || !work.is_dir() {
        return;
    }
    std::thread::scope(|s| {
        s.spawn(|| fs::remove_dir_all(&work));
        for d in ["diff", "merged"] {
            let _ = fs::remove_dir_all(overlay.join(d));
        }
    });
}

/// An image container's own overlay directories, under its record's directory (removed
/// with it). The merged directory is mounted by its monitor, in the monitor's own mount
/// namespace: nothing stays mounted on the host whatever happens to the monitor.
pub(crate) struct OverlayDirs {
    pub(crate) upper: PathBuf,
    pub(crate) work: PathBuf,
    pub(crate) merged: PathBuf,
}

impl OverlayDirs {
    pub(crate) fn of(store: &Store, id: &str) -> OverlayDirs {
        let d = store.dir(id).join("overlay");
        OverlayDirs {
            upper: d.join("diff"),
            work: d.join("work"),
            merged: d.join("merged"),
        }
    }
}

/// Alive, same process (start time), same boot.
pub(crate) fn alive(m: &MonitorRecord) -> bool {
    m.pid > 0 && m.boot_id == runtime::boot_id() && runtime::monitor_running(m.pid, m.start_time)
}

/// An error that ends the command with `code`.
pub(crate) fn exit_error(code: i32, msg: impl Into<String>) -> anyhow::Error {
    Exit {
        code,
        msg: msg.into(),
    }
    .into()
}

/// What a listing's read of one container found (see [`Store::look_listed_read`]).
enum Looked {
    Live(Live),
    /// Removed meanwhile, or unreadable.
    Gone,
    /// Its monitor is gone: to be reconciled, on the listing's own thread.
    Reconcile,
}

/// How many threads read a listing of `n` containers: one per CPU this process may run
/// on, each with at least [`LISTING_PART`] containers (a thread costs about what a few
/// dozen containers' reads do).
fn listing_threads(n: usize) -> usize {
    const MAX: usize = 8;
    if n < 2 * LISTING_PART {
        return 1;
    }
    let cpus = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map(|set| {
            (0..nix::sched::CpuSet::count())
                .filter(|&i| set.is_set(i).unwrap_or(false))
                .count()
        })
        .unwrap_or(1);
    cpus.clamp(1, MAX).min(n / LISTING_PART)
}

const LISTING_PART: usize = 64;
