//! `run`/`create` flags + the image's config -> the container's record and its OCI spec,
//! with Docker's defaults (capabilities, masked and read-only paths, /dev/shm of 64 MiB,
//! the default seccomp profile, hostname = the short id, PATH/HOSTNAME/TERM).
//!
//! The image's role is [`ImageConfig`]: `run --rootfs DIR` passes an empty one; the image
//! store fills it from the image's config (Entrypoint, Cmd, Env, WorkingDir, User,
//! StopSignal, Labels) and nothing here changes.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use crate::cli::front::RunArgs;
use crate::front::containers::{Config, HostConfig, LogConfig, Record};

/// The parts of an image's config a container inherits.
#[derive(Debug, Clone, Default)]
pub(crate) struct ImageConfig {
    pub(crate) entrypoint: Option<Vec<String>>,
    pub(crate) cmd: Option<Vec<String>>,
    pub(crate) env: Vec<String>,
    pub(crate) working_dir: String,
    pub(crate) user: String,
    pub(crate) stop_signal: Option<String>,
    pub(crate) labels: BTreeMap<String, String>,
    /// Recorded in the container's Config as Docker does (nothing publishes them yet).
    pub(crate) exposed_ports: BTreeMap<String, Value>,
    pub(crate) volumes: BTreeMap<String, Value>,
    /// The image's HEALTHCHECK (Docker's Config.Healthcheck object).
    pub(crate) healthcheck: Option<Value>,
}

impl ImageConfig {
    /// The `config` object of an image's configuration JSON.
    pub(crate) fn from_image(raw: &Value) -> ImageConfig {
        let c = raw.get("config").cloned().unwrap_or(Value::Null);
        let strings = |k: &str| -> Option<Vec<String>> {
            c.get(k)?.as_array().map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
        };
        let text = |k: &str| {
            c.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let map = |k: &str| -> BTreeMap<String, Value> {
            c.get(k)
                .and_then(|v| v.as_object())
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        };
        ImageConfig {
            entrypoint: strings("Entrypoint"),
            cmd: strings("Cmd"),
            env: strings("Env").unwrap_or_default(),
            working_dir: text("WorkingDir"),
            user: text("User"),
            stop_signal: Some(text("StopSignal")).filter(|s| !s.is_empty()),
            labels: map("Labels")
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                .collect(),
            exposed_ports: map("ExposedPorts"),
            volumes: map("Volumes"),
            healthcheck: c.get("Healthcheck").filter(|v| v.is_object()).cloned(),
        }
    }
}

/// Everything specgen needs besides the flags.
pub(crate) struct Input<'a> {
    pub(crate) args: &'a RunArgs,
    pub(crate) image: &'a ImageConfig,
    /// The image as the user named it (the directory, with --rootfs).
    pub(crate) image_name: String,
    pub(crate) image_id: String,
    /// The root filesystem (absolute): `--rootfs DIR`, or where the image's overlay will be
    /// mounted.
    pub(crate) rootfs: PathBuf,
    /// The image's layers, top first (empty with `--rootfs`): what /etc/passwd is read from
    /// before the overlay exists.
    pub(crate) layers: &'a [PathBuf],
    pub(crate) id: &'a str,
    pub(crate) name: String,
    /// Runtime state dir of this container: /etc/hostname, hosts, resolv.conf live there.
    pub(crate) run_dir: PathBuf,
    pub(crate) log_path: PathBuf,
    pub(crate) rootless: bool,
    /// `-v`, `--mount`, `--tmpfs`, `--volumes-from`, the image's VOLUMEs (checked).
    pub(crate) mounts: &'a crate::front::volumes::setup::Planned,
}

pub(crate) const DEFAULT_PATH: &str =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capabilities.
const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's default profile as it applies with the default capabilities.
const DEFAULT_SECCOMP: &str = include_str!("containers/seccomp-default.json");

/// Syscalls Docker's profile allows only with a capability.
const CAP_SYSCALLS: &[(&str, &[&str])] = &[
    (
        "CAP_SYS_ADMIN",
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "init_module", "finit_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    (
        "CAP_SYS_PTRACE",
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    ("CAP_SYS_RAWIO", &["iopl", "ioperm"]),
    (
        "CAP_SYS_TIME",
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
];

/// Every capability we hold in our bounding set (what --privileged and `--cap-add ALL`
/// give): more cannot be granted, and a machine may lack some (CAP_SYS_RESOURCE here).
pub(crate) fn all_caps() -> Vec<String> {
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    caps::all()
        .into_iter()
        .filter(|c| c.index() < 64 && bounding & (1u64 << c.index()) != 0)
        .map(|c| c.to_string())
        .collect()
}

fn cap_name(s: &str, flag: &str) -> Result<String> {
    let up = s.trim().to_ascii_uppercase();
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if full == "CAP_ALL" {
        return Ok("ALL".into());
    }
    full.parse::<caps::Capability>()
        .map(|c| c.to_string())
        .map_err(|_| anyhow!("{flag}: unknown capability: {s:?}"))
}

/// Docker's capability arithmetic: defaults, minus drops (ALL drops every default), plus
/// adds (ALL adds every capability); an add wins over a drop of the same one.
fn capabilities(a: &RunArgs) -> Result<Vec<String>> {
    let adds: Vec<String> = a
        .cap_add
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| cap_name(s, "--cap-add"))
        .collect::<Result<_>>()?;
    let drops: Vec<String> = a
        .cap_drop
        .iter()
        .flat_map(|s| s.split(','))
        .map(|s| cap_name(s, "--cap-drop"))
        .collect::<Result<_>>()?;
    if a.privileged || adds.iter().any(|c| c == "ALL") {
        return Ok(all_caps());
    }
    let mut caps: Vec<String> = if drops.iter().any(|c| c == "ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|s| s.to_string())
            .filter(|c| !drops.contains(c))
            .collect()
    };
    for c in adds {
        if !caps.contains(&c) {
            caps.push(c);
        }
    }
    Ok(caps)
}

fn size_flag(v: &Option<String>, flag: &str) -> Result<Option<i64>> {
    v.as_deref()
        .map(|s| {
            crate::front::units::ram_in_bytes(s)
                .map_err(|e| anyhow!("invalid argument {s:?} for \"{flag}\" flag: {e}"))
        })
        .transpose()
}

/// `-e` and `--env-file` as Docker reads them: files first, then flags; `VAR` alone takes
/// the host's value (or is dropped when the host has none); no quote processing.
pub(crate) fn user_env(files: &[String], flags: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read(f)
            .map_err(|e| anyhow!("--env-file: open {f}: {}", crate::error::errno_text(&e)))?;
        let text = String::from_utf8(text)
            .map_err(|_| anyhow!("--env-file {f}: invalid utf8 bytes in the file"))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(v) = env_entry(line, true)? {
                out.push(v);
            }
        }
    }
    for e in flags {
        if let Some(v) = env_entry(e, false)? {
            out.push(v);
        }
    }
    Ok(out)
}

fn env_entry(s: &str, from_file: bool) -> Result<Option<String>> {
    let (name, value) = match s.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (s, None),
    };
    let name = if from_file { name.trim_start() } else { name };
    if name.is_empty() {
        bail!("invalid environment variable: {s}");
    }
    if from_file && name.contains(char::is_whitespace) {
        bail!("--env-file: variable '{name}' contains whitespaces");
    }
    Ok(match value {
        Some(v) => Some(format!("{name}={v}")),
        None => std::env::var(name).ok().map(|v| format!("{name}={v}")),
    })
}

/// Replaces a variable of the same name in place, else appends (Docker's
/// ReplaceOrAppendEnvValues).
fn set_env(env: &mut Vec<String>, entry: &str) {
    let key = entry.split('=').next().unwrap_or(entry);
    match env.iter_mut().find(|e| e.split('=').next() == Some(key)) {
        Some(e) => *e = entry.to_string(),
        None => env.push(entry.to_string()),
    }
}

/// Labels from `--label-file` then `-l` (`k=v`, or `k` for an empty value).
fn labels(a: &RunArgs, image: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    let mut out = image.clone();
    let mut add = |s: &str| {
        let (k, v) = s.split_once('=').unwrap_or((s, ""));
        if k.is_empty() {
            bail!("invalid label: {s:?}: the key must not be empty");
        }
        out.insert(k.to_string(), v.to_string());
        Ok(())
    };
    for f in &a.label_file {
        let text = std::fs::read_to_string(f)
            .map_err(|e| anyhow!("--label-file: open {f}: {}", crate::error::errno_text(&e)))?;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            add(line)?;
        }
    }
    for l in &a.labels {
        add(l)?;
    }
    Ok(out)
}

/// A user as the container sees it, resolved in its own /etc/passwd and /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) sgids: Vec<u32>,
    pub(crate) home: String,
}

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Where a container's files are read before it runs: its root directory (`--rootfs`, or
/// a running container's `/proc/PID/root`), or its image's layers (top first) as the
/// overlay will show them.
#[derive(Clone, Copy)]
pub(crate) enum RootView<'a> {
    Dir(&'a Path),
    Layers(&'a [PathBuf]),
}

/// Reads `etc/<file>` of the rootfs through the symlink-safe resolver: a container's
/// /etc/passwd that is a symlink to a host path reads the container's path instead.
fn read_in_rootfs(view: RootView, rel: &str) -> Option<String> {
    use nix::fcntl::OFlag;
    let rootfs = match view {
        RootView::Dir(d) => d,
        RootView::Layers(l) => {
            let b = crate::front::images::overlay::read_layered(l, rel, 4 << 20)?;
            return String::from_utf8(b).ok();
        }
    };
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .ok()?;
    let fd = crate::rootfs::resolve::open_in_root(
        root.as_fd(),
        Path::new(rel),
        OFlag::O_RDONLY | OFlag::O_CLOEXEC,
    )
    .ok()?;
    let mut s = String::new();
    std::io::Read::read_to_string(&mut std::fs::File::from(fd), &mut s).ok()?;
    Some(s)
}

fn passwd(rootfs: RootView) -> Vec<Passwd> {
    read_in_rootfs(rootfs, "etc/passwd")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Passwd {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).unwrap_or(&"/").to_string(),
            })
        })
        .collect()
}

fn groups(rootfs: RootView) -> Vec<Group> {
    read_in_rootfs(rootfs, "etc/group")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Group {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// `user[:group]` (names or numbers) as Docker resolves it: a numeric uid need not exist;
/// without a group the user's primary group, and the groups that list the user as
/// supplementary; `group_add` (names or numbers) on top.
pub(crate) fn resolve_user(rootfs: RootView, spec: &str, group_add: &[String]) -> Result<ExecUser> {
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = passwd(rootfs);
    let grps = groups(rootfs);
    let mut out = ExecUser {
        uid: 0,
        gid: 0,
        sgids: Vec::new(),
        home: "/".into(),
    };
    let mut user_name = None;
    if !u.is_empty() {
        let found = match u.parse::<u32>() {
            Ok(n) => users.iter().find(|p| p.uid == n),
            Err(_) => users.iter().find(|p| p.name == u),
        };
        match (found, u.parse::<u32>()) {
            (Some(p), _) => {
                out.uid = p.uid;
                out.gid = p.gid;
                out.home = p.home.clone();
                user_name = Some(p.name.clone());
            }
            (None, Ok(n)) => out.uid = n,
            (None, Err(_)) => {
                bail!("unable to find user {u}: no matching entries in passwd file")
            }
        }
    }
    match g {
        Some(g) if !g.is_empty() => {
            out.gid = match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => grps
                    .iter()
                    .find(|x| x.name == g)
                    .map(|x| x.gid)
                    .ok_or_else(|| {
                        anyhow!("unable to find group {g}: no matching entries in group file")
                    })?,
            };
        }
        _ => {
            if let Some(name) = &user_name {
                for x in grps.iter().filter(|x| x.members.iter().any(|m| m == name)) {
                    if x.gid != out.gid && !out.sgids.contains(&x.gid) {
                        out.sgids.push(x.gid);
                    }
                }
            }
        }
    }
    for ga in group_add.iter().flat_map(|s| s.split(',')) {
        let gid = match ga.parse::<u32>() {
            Ok(n) => n,
            Err(_) => grps
                .iter()
                .find(|x| x.name == ga)
                .map(|x| x.gid)
                .ok_or_else(|| {
                    anyhow!(
                        "--group-add: unable to find group {ga}: no matching entries in group file"
                    )
                })?,
        };
        if !out.sgids.contains(&gid) {
            out.sgids.push(gid);
        }
    }
    Ok(out)
}

const ULIMITS: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `--ulimit name=soft[:hard]` -> (RLIMIT_NAME, soft, hard).
fn ulimit(s: &str) -> Result<(String, i64, i64)> {
    let (name, vals) = s
        .split_once('=')
        .ok_or_else(|| anyhow!("--ulimit: invalid ulimit argument: {s}"))?;
    if !ULIMITS.contains(&name) {
        bail!("--ulimit: invalid ulimit type: {name}");
    }
    let (soft, hard) = vals.split_once(':').unwrap_or((vals, vals));
    let num = |v: &str| -> Result<i64> {
        v.parse()
            .map_err(|_| anyhow!("--ulimit {s}: invalid ulimit value: {v:?}"))
    };
    let (soft, hard) = (num(soft)?, num(hard)?);
    if soft > hard && hard != -1 {
        bail!("--ulimit {s}: ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}");
    }
    Ok((format!("RLIMIT_{}", name.to_ascii_uppercase()), soft, hard))
}

/// Docker's rule: IPC and mqueue sysctls, and net.* in a network namespace of its own.
fn check_sysctl(k: &str, host_net: bool) -> Result<()> {
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&k) || k.starts_with("fs.mqueue.") {
        return Ok(());
    }
    if k.starts_with("net.") {
        if host_net {
            bail!("--sysctl: sysctl '{k}' not allowed in host network namespace");
        }
        return Ok(());
    }
    bail!("--sysctl: sysctl '{k}' is not allowed in a container (only namespaced ones are: kernel.msg*, kernel.sem, kernel.shm*, fs.mqueue.*, net.*)")
}

/// `--device /dev/host[:/dev/in-container[:rwm]]` -> (linux.devices entry, cgroup rule).
fn device(s: &str) -> Result<(Value, Value)> {
    let parts: Vec<&str> = s.split(':').collect();
    let (host, ctr, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, c] if c.chars().all(|x| "rwm".contains(x)) && !c.is_empty() => (*h, *h, *c),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] => (*h, *c, *p),
        _ => bail!("--device: invalid device specification: {s}"),
    };
    if perms.is_empty() || !perms.chars().all(|x| "rwm".contains(x)) {
        bail!("--device {s}: invalid device mode: {perms}");
    }
    if !ctr.starts_with('/') {
        bail!("--device {s}: {ctr} is not an absolute path");
    }
    let st = nix::sys::stat::stat(host).map_err(|e| {
        anyhow!(
            "error gathering device information while adding custom device {host:?}: {}",
            crate::error::errno_desc(e)
        )
    })?;
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFCHR => "c",
        libc::S_IFBLK => "b",
        _ => bail!("--device {s}: {host} is not a device node"),
    };
    let (maj, min) = (
        nix::sys::stat::major(st.st_rdev) as i64,
        nix::sys::stat::minor(st.st_rdev) as i64,
    );
    Ok((
        json!({"path": ctr, "type": kind, "major": maj, "minor": min,
               "fileMode": st.st_mode & 0o777, "uid": st.st_uid, "gid": st.st_gid}),
        json!({"allow": true, "type": kind, "major": maj, "minor": min, "access": perms}),
    ))
}

/// The container's seccomp profile: Docker's default (with the syscalls its capabilities
/// unlock), a user's file (Docker's format: `includes`/`excludes` by capability are
/// honoured, `archMap` flattened), or none (`unconfined`, --privileged).
fn seccomp(opt: Option<&str>, caps: &[String], privileged: bool) -> Result<Option<Value>> {
    match opt {
        Some("unconfined") => return Ok(None),
        None if privileged => return Ok(None),
        _ => {}
    }
    let mut profile: Value = match opt {
        None => serde_json::from_str(DEFAULT_SECCOMP).context("the default seccomp profile")?,
        Some(f) => {
            let data = std::fs::read(f).map_err(|e| {
                anyhow!(
                    "--security-opt seccomp={f}: {}",
                    crate::error::errno_text(&e)
                )
            })?;
            serde_json::from_slice(&data)
                .map_err(|e| anyhow!("--security-opt seccomp={f}: decoding the profile: {e}"))?
        }
    };
    let obj = profile
        .as_object_mut()
        .ok_or_else(|| anyhow!("--security-opt seccomp: the profile is not a JSON object"))?;
    if let Some(map) = obj.remove("archMap") {
        let mut arches: Vec<Value> = Vec::new();
        for m in map.as_array().into_iter().flatten() {
            if let Some(a) = m.get("architecture") {
                arches.push(a.clone());
            }
            for s in m["subArchitectures"].as_array().into_iter().flatten() {
                arches.push(s.clone());
            }
        }
        obj.entry("architectures").or_insert(Value::Array(arches));
    }
    let arch = "amd64";
    let mut rules: Vec<Value> = Vec::new();
    let syscalls = match obj.remove("syscalls") {
        Some(Value::Array(l)) => l,
        _ => Vec::new(),
    };
    for mut r in syscalls {
        let has = |set: &Value, key: &str, want: &dyn Fn(&str) -> bool| -> bool {
            set.get(key)
                .and_then(|v| v.as_array())
                .is_some_and(|l| l.iter().filter_map(|x| x.as_str()).any(want))
        };
        let need_caps: Vec<&str> = r["includes"]["caps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str())
            .collect();
        if !need_caps.iter().all(|c| caps.iter().any(|h| h == c)) {
            continue;
        }
        if r["includes"]["arches"].is_array()
            && !has(&r["includes"], "arches", &|a: &str| a == arch)
        {
            continue;
        }
        if has(&r["excludes"], "caps", &|c: &str| {
            caps.iter().any(|h| h == c)
        }) || has(&r["excludes"], "arches", &|a: &str| a == arch)
        {
            continue;
        }
        if let Some(o) = r.as_object_mut() {
            for k in ["includes", "excludes", "comment"] {
                o.remove(k);
            }
        }
        rules.push(r);
    }
    if opt.is_none() {
        for (cap, names) in CAP_SYSCALLS {
            if caps.iter().any(|c| c == cap) {
                rules.push(json!({"names": names, "action": "SCMP_ACT_ALLOW"}));
            }
        }
    }
    obj.insert("syscalls".into(), Value::Array(rules));
    Ok(Some(profile))
}

/// Docker's `--cpus`: a decimal number of CPUs, at most the host's.
pub(crate) fn nano_cpus(s: &str) -> Result<i64> {
    let n: f64 = s
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite())
        .ok_or_else(|| {
            anyhow!("invalid argument {s:?} for \"--cpus\" flag: failed to parse {s} as a rational number")
        })?;
    let host = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    if n < 0.01 || n > host {
        bail!(
            "--cpus: range of CPUs is from 0.01 to {host:.2}, as there are only {host} CPUs available"
        );
    }
    Ok((n * 1e9).round() as i64)
}

fn swap_accounting() -> bool {
    Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        || Path::new("/sys/fs/cgroup/memory.swap.max").exists()
}

/// Flags that are accepted by the parser but whose feature is another issue's: refused
/// rather than silently ignored.
fn refuse_unbuilt(a: &RunArgs) -> Result<()> {
    let mut used: Vec<&str> = Vec::new();
    if a.preserve_fds > 0 {
        used.push("--preserve-fds");
    }
    if let Some(u) = used.first() {
        bail!("{u}: not available yet in berth");
    }
    Ok(())
}

/// `--log-driver` and `--log-opt`, checked as Docker does (json-file by default).
fn log_config(a: &RunArgs) -> Result<LogConfig> {
    use crate::front::logs::{journald::JOURNAL_SOCKET, Driver, LogOptions};
    let kind = a.log_driver.clone().unwrap_or_else(|| "json-file".into());
    let driver = Driver::parse(&kind).map_err(|e| anyhow!("--log-driver: {e}"))?;
    if driver == Driver::Journald && std::fs::symlink_metadata(JOURNAL_SOCKET).is_err() {
        bail!("--log-driver journald: journald is not enabled on this host: no {JOURNAL_SOCKET}");
    }
    let pairs = log_opt_pairs(&a.log_opt)?;
    LogOptions::parse(driver, &pairs).map_err(|e| anyhow!("--log-opt: {e:#}"))?;
    Ok(LogConfig {
        kind,
        config: pairs.into_iter().collect(),
    })
}

fn log_opt_pairs(opts: &[String]) -> Result<Vec<(String, String)>> {
    opts.iter()
        .map(|o| {
            o.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow!("--log-opt {o}: expected key=value"))
        })
        .collect()
}

/// /etc/hostname, /etc/hosts and /etc/resolv.conf as the container gets them (bind
/// mounts of files in its runtime dir, written at each start).
pub(crate) fn etc_files(rec: &Record) -> Vec<(PathBuf, String)> {
    let host_net = rec.host_config.network_mode == "host";
    let hostname = &rec.config.hostname;
    let hosts = if host_net {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n"
        )
    } + &crate::front::network::extra_host_lines(&rec.host_config.extra_hosts);
    let h = &rec.host_config;
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv =
        if host_net && h.dns.is_empty() && h.dns_search.is_empty() && h.dns_options.is_empty() {
            resolv
        } else {
            crate::front::network::resolv_conf(&resolv, &h.dns, &h.dns_search, &h.dns_options)
        };
    vec![
        (rec.hostname_path.clone(), format!("{hostname}\n")),
        (rec.hosts_path.clone(), hosts),
        (rec.resolv_conf_path.clone(), resolv),
    ]
}

/// The uid/gid maps of a rootless container: root is the user, the rest comes from the
/// user's /etc/subuid and /etc/subgid ranges (through newuidmap/newgidmap).
fn rootless_maps() -> Result<(Value, Value)> {
    crate::front::userns::spec_maps()
}

/// Builds the record (with its spec) of a new container.
pub(crate) fn generate(i: &Input) -> Result<Record> {
    let a = i.args;
    refuse_unbuilt(a)?;
    let restart_policy = crate::front::monitor::restart::from_flags(a)?;
    let healthcheck = crate::front::monitor::health::from_flags(a, i.image.healthcheck.as_ref())?;
    let net = crate::front::network::args::parse(a)?;
    let network = net.mode.clone();
    let host_net = network == "host";
    let short = &i.id[..12];
    let hostname = match &a.hostname {
        Some(h) => {
            if h.is_empty() || h.len() > 64 || h.contains('/') {
                bail!("-h/--hostname {h:?}: not a valid hostname");
            }
            h.clone()
        }
        None if host_net => nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| short.to_string()),
        None => short.to_string(),
    };

    // The process: entrypoint + cmd, as Docker combines them.
    let entrypoint: Option<Vec<String>> = match &a.entrypoint {
        Some(e) if e.is_empty() => None,
        Some(e) => Some(vec![e.clone()]),
        None => i.image.entrypoint.clone().filter(|e| !e.is_empty()),
    };
    let cmd: Option<Vec<String>> = if !a.command.is_empty() {
        Some(a.command.clone())
    } else if a.entrypoint.is_some() {
        // A new entrypoint drops the image's Cmd (Docker's rule).
        None
    } else {
        i.image.cmd.clone()
    };
    let mut argv: Vec<String> = entrypoint.clone().unwrap_or_default();
    argv.extend(cmd.clone().unwrap_or_default());
    if argv.is_empty() {
        bail!("no command specified");
    }

    // Environment: PATH, HOSTNAME, TERM, then the image's, then --env-file and -e.
    let mut env = Vec::new();
    let image_has_path = i.image.env.iter().any(|e| e.starts_with("PATH="));
    if !image_has_path {
        env.push(DEFAULT_PATH.to_string());
    }
    env.push(format!("HOSTNAME={hostname}"));
    if a.tty {
        env.push("TERM=xterm".into());
    }
    let mut config_env: Vec<String> = Vec::new();
    if !image_has_path {
        config_env.push(DEFAULT_PATH.to_string());
    }
    for e in &i.image.env {
        set_env(&mut config_env, e);
    }
    for e in user_env(&a.env_file, &a.env)? {
        set_env(&mut config_env, &e);
    }
    for e in &config_env {
        set_env(&mut env, e);
    }

    let labels = labels(a, &i.image.labels)?;
    let user_spec = a.user.clone().unwrap_or_else(|| i.image.user.clone());
    let view = if i.layers.is_empty() {
        RootView::Dir(&i.rootfs)
    } else {
        RootView::Layers(i.layers)
    };
    let user = resolve_user(view, &user_spec, &a.group_add)?;
    let cwd = a
        .workdir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| {
            if i.image.working_dir.is_empty() {
                "/".into()
            } else {
                i.image.working_dir.clone()
            }
        });
    if !cwd.starts_with('/') {
        bail!("-w/--workdir {cwd:?}: the working directory must be an absolute path");
    }

    let caps = capabilities(a)?;
    let mut no_new_privs = false;
    let mut seccomp_opt: Option<String> = None;
    for o in &a.security_opt {
        let (k, v) = o
            .split_once(['=', ':'])
            .map(|(k, v)| (k, Some(v)))
            .unwrap_or((o.as_str(), None));
        match (k, v) {
            ("no-new-privileges", None | Some("true")) => no_new_privs = true,
            ("no-new-privileges", Some("false")) => no_new_privs = false,
            ("seccomp", Some(f)) if !f.is_empty() => seccomp_opt = Some(f.to_string()),
            ("apparmor", Some("unconfined")) | ("label", Some("disable")) => {}
            _ => bail!("--security-opt {o}: invalid or unsupported option (seccomp=FILE|unconfined, no-new-privileges)"),
        }
    }
    let seccomp = seccomp(seccomp_opt.as_deref(), &caps, a.privileged)?;

    // Resources.
    let memory = size_flag(&a.memory, "-m, --memory")?;
    if let Some(m) = memory {
        if m > 0 && m < 6 * 1024 * 1024 {
            bail!("-m/--memory: minimum memory limit allowed is 6MB");
        }
    }
    let swap = match a.memory_swap.as_deref() {
        Some("-1") => Some(-1),
        other => size_flag(&other.map(String::from), "--memory-swap")?,
    };
    if let Some(s) = swap {
        if s != -1 && s != 0 {
            match memory {
                None | Some(0) => bail!("--memory-swap: you should always set the memory limit (-m) when using a swap limit"),
                Some(m) if s < m => bail!("--memory-swap: the swap limit (memory plus swap) must be at least the memory limit"),
                _ => {}
            }
        }
    }
    let reservation = size_flag(&a.memory_reservation, "--memory-reservation")?;
    if let (Some(m), Some(r)) = (memory, reservation) {
        if m > 0 && r > m {
            bail!("--memory-reservation: the memory limit can not be less than the memory reservation");
        }
    }
    let shm = size_flag(&a.shm_size, "--shm-size")?.unwrap_or(64 * 1024 * 1024);
    if shm <= 0 {
        bail!("--shm-size: must be greater than 0");
    }
    let cpus = a.cpus.as_deref().map(nano_cpus).transpose()?;
    if a.pids_limit.is_some_and(|p| p < -1) {
        bail!("--pids-limit: must be -1 (unlimited) or a positive number");
    }
    if let Some(o) = a.oom_score_adj {
        if !(-1000..=1000).contains(&o) {
            bail!("--oom-score-adj {o}: must be between -1000 and 1000");
        }
    }
    let stop_signal = a
        .stop_signal
        .clone()
        .or_else(|| i.image.stop_signal.clone())
        .unwrap_or_default();
    if !stop_signal.is_empty() {
        crate::front::containers::runtime::parse_signal(&stop_signal)
            .map_err(|_| anyhow!("--stop-signal: invalid signal: {stop_signal}"))?;
    }
    let log_config = log_config(a)?;

    let mut resources = serde_json::Map::new();
    let mut mem = serde_json::Map::new();
    if let Some(m) = memory.filter(|m| *m > 0) {
        mem.insert("limit".into(), json!(m));
        if swap_accounting() {
            match swap {
                Some(-1) => {
                    mem.insert("swap".into(), json!(-1));
                }
                Some(s) if s > 0 => {
                    mem.insert("swap".into(), json!(s));
                }
                _ => {
                    mem.insert("swap".into(), json!(m.saturating_mul(2)));
                }
            }
        } else if swap.is_some() {
            crate::logging::warn(
                "your kernel does not support swap limit capabilities; the swap limit is ignored",
            );
        }
    }
    if let Some(r) = reservation.filter(|r| *r > 0) {
        mem.insert("reservation".into(), json!(r));
    }
    if !mem.is_empty() {
        resources.insert("memory".into(), Value::Object(mem));
    }
    let mut cpu = serde_json::Map::new();
    if let Some(n) = cpus {
        cpu.insert("period".into(), json!(100_000u64));
        cpu.insert("quota".into(), json!(n / 10_000));
    }
    if let Some(s) = a.cpu_shares.filter(|s| *s > 0) {
        cpu.insert("shares".into(), json!(s));
    }
    if let Some(c) = a.cpuset_cpus.as_ref().filter(|c| !c.is_empty()) {
        if !c
            .chars()
            .all(|x| x.is_ascii_digit() || x == ',' || x == '-')
        {
            bail!("--cpuset-cpus {c}: invalid value (e.g. 0-3 or 0,1)");
        }
        cpu.insert("cpus".into(), json!(c));
    }
    if !cpu.is_empty() {
        resources.insert("cpu".into(), Value::Object(cpu));
    }
    if let Some(p) = a.pids_limit.filter(|p| *p > 0) {
        resources.insert("pids".into(), json!({"limit": p}));
    }

    // Devices: Docker's default cgroup rules, then --device, or everything when privileged.
    let mut dev_rules = vec![
        json!({"allow": false, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 5, "minor": 1, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 136, "access": "rwm"}),
        json!({"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}),
        json!({"allow": false, "type": "c", "major": 10, "minor": 229, "access": "rwm"}),
    ];
    let mut devices = Vec::new();
    let mut host_devices = Vec::new();
    for d in &a.device {
        let (dev, rule) = device(d)?;
        devices.push(dev);
        dev_rules.push(rule);
        host_devices.push(json!({"PathOnHost": d.split(':').next().unwrap_or(d),
            "PathInContainer": d.split(':').nth(1).unwrap_or(d.split(':').next().unwrap_or(d)),
            "CgroupPermissions": d.split(':').nth(2).unwrap_or("rwm")}));
    }
    if a.privileged {
        dev_rules = vec![json!({"allow": true, "access": "rwm"})];
    }
    if !i.rootless {
        resources.insert("devices".into(), Value::Array(dev_rules));
    }

    let mut sysctl = serde_json::Map::new();
    let mut sysctls = BTreeMap::new();
    for s in &a.sysctl {
        let (k, v) = s
            .split_once('=')
            .ok_or_else(|| anyhow!("--sysctl {s}: expected key=value"))?;
        check_sysctl(k, host_net)?;
        sysctl.insert(k.into(), json!(v));
        sysctls.insert(k.to_string(), v.to_string());
    }

    let mut rlimits = Vec::new();
    let mut ulimits = Vec::new();
    for u in &a.ulimit {
        let (t, soft, hard) = ulimit(u)?;
        // -1 is "unlimited" (RLIM_INFINITY).
        let v = |n: i64| if n < 0 { json!(u64::MAX) } else { json!(n) };
        rlimits.push(json!({"type": t, "soft": v(soft), "hard": v(hard)}));
        ulimits
            .push(json!({"Name": u.split('=').next().unwrap_or(""), "Soft": soft, "Hard": hard}));
    }

    // Mounts, as Docker's defaults.
    let ro = |o: &[&str]| -> Vec<String> { o.iter().map(|s| s.to_string()).collect() };
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ro(&["nosuid", "noexec", "nodev"])}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ro(&["nosuid", "strictatime", "mode=755", "size=65536k"])}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ro(&["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"])}),
    ];
    if i.rootless && host_net {
        // sysfs belongs to the network namespace's owner: bind the host's instead.
        mounts.push(json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ro(&["rbind", "nosuid", "noexec", "nodev", "ro"])}));
    } else {
        let sys_opts: &[&str] = if a.privileged {
            &["nosuid", "noexec", "nodev"]
        } else {
            &["nosuid", "noexec", "nodev", "ro"]
        };
        mounts.push(json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ro(sys_opts)}));
        if !i.rootless {
            let cg_opts: &[&str] = if a.privileged {
                &["nosuid", "noexec", "nodev", "relatime"]
            } else {
                &["nosuid", "noexec", "nodev", "relatime", "ro"]
            };
            mounts.push(json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ro(cg_opts)}));
        }
    }
    mounts.push(json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ro(&["nosuid", "noexec", "nodev"])}));
    mounts.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={shm}")]}));
    let hostname_path = i.run_dir.join("hostname");
    let hosts_path = i.run_dir.join("hosts");
    let resolv_path = i.run_dir.join("resolv.conf");
    for (dst, src) in [
        ("/etc/hostname", &hostname_path),
        ("/etc/hosts", &hosts_path),
        ("/etc/resolv.conf", &resolv_path),
    ] {
        let mut opts = vec!["rbind", "rprivate"];
        if a.read_only {
            opts.push("ro");
        }
        mounts.push(json!({"destination": dst, "type": "bind", "source": src, "options": opts}));
    }
    // The user's mounts replace a default one at the same place (Docker's rule).
    mounts.retain(|m| {
        !i.mounts
            .points
            .iter()
            .any(|p| m["destination"].as_str() == Some(p.destination.as_str()))
    });
    mounts.extend(i.mounts.oci.iter().cloned());

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if !host_net {
        namespaces.push(json!({"type": "network"}));
    }
    if i.rootless {
        namespaces.push(json!({"type": "user"}));
    }

    let (process_args, process_env) = if a.init {
        // berth as PID 1 (see monitor::init), the command handed over in its environment.
        let mut e = env.clone();
        e.push(format!(
            "{}={}",
            crate::front::monitor::init::ARGV_ENV,
            serde_json::to_string(&argv).context("encoding the command")?
        ));
        mounts.push(
            json!({"destination": crate::front::monitor::init::PATH, "type": "bind",
            "source": i.run_dir.join("init"), "options": ["rbind", "ro", "nosuid", "nodev"]}),
        );
        (
            vec![
                crate::front::monitor::init::PATH.to_string(),
                "monitor".into(),
                "init".into(),
            ],
            e,
        )
    } else {
        (argv.clone(), env.clone())
    };
    let mut process = json!({
        "terminal": a.tty,
        "user": {"uid": user.uid, "gid": user.gid},
        "args": process_args,
        "env": process_env,
        "cwd": cwd,
        "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
        "noNewPrivileges": no_new_privs,
    });
    if !user.sgids.is_empty() {
        process["user"]["additionalGids"] = json!(user.sgids);
    }
    if !rlimits.is_empty() {
        process["rlimits"] = Value::Array(rlimits);
    }
    if let Some(o) = a.oom_score_adj {
        process["oomScoreAdj"] = json!(o);
    }

    let mut linux = json!({
        "namespaces": namespaces,
        "resources": Value::Object(resources),
    });
    linux["cgroupsPath"] = json!(format!("/berth/{}", i.id));
    if !a.privileged {
        linux["maskedPaths"] = json!(MASKED_PATHS);
        linux["readonlyPaths"] = json!(READONLY_PATHS);
    }
    if !devices.is_empty() {
        linux["devices"] = Value::Array(devices);
    }
    if !sysctl.is_empty() {
        linux["sysctl"] = Value::Object(sysctl);
    }
    if let Some(s) = seccomp {
        linux["seccomp"] = s;
    }
    if i.rootless {
        let (u, g) = rootless_maps()?;
        // Without subordinate ranges there is no gid 5 (tty) for devpts: Podman's default.
        crate::front::userns::fit_devpts(&mut mounts, &g);
        linux["uidMappings"] = u;
        linux["gidMappings"] = g;
    }

    let spec = json!({
        "ociVersion": "1.2.0",
        "process": process,
        "root": {"path": i.rootfs, "readonly": a.read_only},
        "hostname": hostname,
        "mounts": mounts,
        "linux": linux,
    });
    // Caught here rather than by the runtime: a field this generator got wrong.
    let _: oci_spec::runtime::Spec =
        serde_json::from_value(spec.clone()).context("the generated OCI spec")?;

    let cmd_shown = cmd.clone();
    let mut path_args = argv.clone();
    let path = path_args.remove(0);
    Ok(Record {
        id: i.id.to_string(),
        name: i.name.clone(),
        created: crate::front::containers::now(),
        image: i.image_name.clone(),
        image_id: i.image_id.clone(),
        rootfs: i.rootfs.clone(),
        path,
        args: path_args,
        config: Config {
            hostname,
            domainname: String::new(),
            user: user_spec,
            attach_stdin: a.interactive,
            attach_stdout: !a.detach,
            attach_stderr: !a.detach,
            tty: a.tty,
            open_stdin: a.interactive,
            stdin_once: a.interactive && !a.detach,
            env: config_env,
            cmd: cmd_shown,
            image: i.image_name.clone(),
            working_dir: cwd,
            entrypoint,
            labels,
            stop_signal,
            stop_timeout: a.stop_timeout,
            exposed_ports: crate::front::network::args::exposed(
                &i.image.exposed_ports,
                &net.exposed,
            ),
            volumes: i.image.volumes.clone(),
            healthcheck,
            create_command: crate::front::systemd::unit::create_command(),
        },
        host_config: HostConfig {
            auto_remove: a.rm,
            log_config,
            network_mode: network,
            privileged: a.privileged,
            readonly_rootfs: a.read_only,
            init: a.init,
            memory: memory.unwrap_or(0),
            memory_swap: swap.unwrap_or(0),
            memory_reservation: reservation.unwrap_or(0),
            nano_cpus: cpus.unwrap_or(0),
            cpu_shares: a.cpu_shares.unwrap_or(0) as i64,
            cpuset_cpus: a.cpuset_cpus.clone().unwrap_or_default(),
            pids_limit: a.pids_limit,
            ulimits,
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            security_opt: a.security_opt.clone(),
            devices: host_devices,
            shm_size: shm,
            sysctls,
            group_add: a.group_add.clone(),
            oom_score_adj: a.oom_score_adj.unwrap_or(0),
            restart_policy,
            port_bindings: net.port_bindings,
            publish_all_ports: net.publish_all,
            links: net.links,
            extra_hosts: net.extra_hosts,
            dns: a.dns.clone(),
            dns_search: a.dns_search.clone(),
            dns_options: a.dns_option.clone(),
            container_id_file: a.cidfile.clone().unwrap_or_default(),
        },
        spec,
        log_path: i.log_path.clone(),
        hostname_path,
        hosts_path,
        resolv_conf_path: resolv_path,
        mounts: i.mounts.points.clone(),
        net_request: net.request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_rules() {
        std::env::set_var("BERTH_SPECGEN_T", "host");
        let dir = std::env::temp_dir().join(format!("berth-envfile-{}", std::process::id()));
        std::fs::write(
            &dir,
            "# c\n\n  A=1 \nB=\"q\"\nBERTH_SPECGEN_T\nBERTH_SPECGEN_NONE\n",
        )
        .unwrap();
        let env = user_env(
            &[dir.to_string_lossy().into_owned()],
            &["A=2".into(), "BERTH_SPECGEN_T".into(), "E=".into()],
        )
        .unwrap();
        assert_eq!(
            env,
            [
                "A=1 ",
                "B=\"q\"",
                "BERTH_SPECGEN_T=host",
                "A=2",
                "BERTH_SPECGEN_T=host",
                "E="
            ]
        );
        std::fs::write(&dir, "A B=1\n").unwrap();
        assert!(user_env(&[dir.to_string_lossy().into_owned()], &[]).is_err());
        std::fs::remove_file(&dir).unwrap();
        let e = user_env(&[], &["=x".into()]).unwrap_err();
        assert_eq!(e.to_string(), "invalid environment variable: =x");
        let mut v = vec!["PATH=/a".to_string(), "X=1".to_string()];
        set_env(&mut v, "PATH=/b");
        set_env(&mut v, "Y=2");
        assert_eq!(v, ["PATH=/b", "X=1", "Y=2"]);
    }

    #[test]
    fn caps_arithmetic() {
        let mut a = RunArgs::default();
        assert_eq!(capabilities(&a).unwrap().len(), DEFAULT_CAPS.len());
        a.cap_drop = vec!["all".into()];
        a.cap_add = vec!["net_admin".into()];
        assert_eq!(capabilities(&a).unwrap(), ["CAP_NET_ADMIN"]);
        a.cap_add = vec!["CAP_BOGUS".into()];
        assert!(capabilities(&a).is_err());
    }

    #[test]
    fn users_resolve_in_the_rootfs() {
        let d = std::env::temp_dir().join(format!("berth-users-{}", std::process::id()));
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(
            d.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nweb:x:33:34:web:/var/www:/bin/false\n",
        )
        .unwrap();
        std::fs::write(
            d.join("etc/group"),
            "root:x:0:\nwww:x:34:\nextra:x:50:web,other\n",
        )
        .unwrap();
        let u = resolve_user(RootView::Dir(&d), "web", &[]).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.sgids.clone(), u.home.as_str()),
            (33, 34, vec![50], "/var/www")
        );
        let u = resolve_user(RootView::Dir(&d), "web:root", &["extra".into(), "7".into()]).unwrap();
        assert_eq!((u.uid, u.gid, u.sgids), (33, 0, vec![50, 7]));
        let u = resolve_user(RootView::Dir(&d), "1234", &[]).unwrap();
        assert_eq!((u.uid, u.gid), (1234, 0));
        assert!(resolve_user(RootView::Dir(&d), "nobody", &[]).is_err());
        assert!(resolve_user(RootView::Dir(&d), "web:nogroup", &[]).is_err());
        assert_eq!(resolve_user(RootView::Dir(&d), "", &[]).unwrap().uid, 0);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn ulimits_and_sysctls() {
        assert_eq!(
            ulimit("nofile=10:20").unwrap(),
            ("RLIMIT_NOFILE".into(), 10, 20)
        );
        assert_eq!(ulimit("nproc=5").unwrap(), ("RLIMIT_NPROC".into(), 5, 5));
        assert!(ulimit("nofile=20:10").is_err());
        assert!(ulimit("bogus=1").is_err());
        assert!(check_sysctl("net.ipv4.ip_forward", false).is_ok());
        assert!(check_sysctl("net.ipv4.ip_forward", true).is_err());
        assert!(check_sysctl("kernel.shmmax", false).is_ok());
        assert!(check_sysctl("vm.swappiness", false).is_err());
    }

    #[test]
    fn default_seccomp_profile_compiles() {
        let caps: Vec<String> = DEFAULT_CAPS.iter().map(|s| s.to_string()).collect();
        let p = seccomp(None, &caps, false).unwrap().unwrap();
        let sc: oci_spec::runtime::LinuxSeccomp = serde_json::from_value(p).unwrap();
        crate::seccomp::compile(&sc).unwrap();
        assert!(seccomp(Some("unconfined"), &caps, false).unwrap().is_none());
        assert!(seccomp(None, &caps, true).unwrap().is_none());
    }
}
