//! The normalised plans: config.json interpreted once, in the parent, before any kernel
//! object exists (mount options, propagation, devices, sysctls, time offsets, hooks,
//! capabilities and rlimits are all checked here, each error naming its field). The init
//! is a clone of the parent, so it inherits the plan by memory: it applies it and never
//! reads the spec again.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sys::resource::Resource;
use nix::sys::stat::SFlag;
use oci_spec::runtime::{
    Hook, LinuxCapabilities, LinuxNamespaceType, Mount, PosixRlimitType, Process, Spec,
};

use super::mountopts::{parse_mount_options, ParsedMountOptions};
use super::{field, SpecError};
use crate::rootfs::resolve::clean;

/// Everything the container init does, decided up front.
pub(crate) struct Plan {
    /// root.path, joined to the bundle, checked to be a directory.
    pub(crate) rootfs: PathBuf,
    pub(crate) readonly_root: bool,
    /// linux.namespaces as (type, path to join): `None` for a new one.
    pub(crate) namespaces: Vec<(LinuxNamespaceType, Option<PathBuf>)>,
    pub(crate) process: ProcessPlan,
    pub(crate) mounts: Vec<MountPlan>,
    /// The device nodes to make (the defaults, then linux.devices replacing by path).
    pub(crate) devices: Vec<DevicePlan>,
    /// linux.rootfsPropagation as mount flags (rslave when unset).
    pub(crate) rootfs_propagation: MsFlags,
    /// linux.sysctl, sorted by name.
    pub(crate) sysctls: Vec<SysctlPlan>,
    /// linux.timeOffsets in /proc/self/timens_offsets' format (empty: none).
    pub(crate) time_offsets: String,
    pub(crate) hostname: Option<String>,
    pub(crate) domainname: Option<String>,
    pub(crate) masked_paths: Vec<String>,
    pub(crate) readonly_paths: Vec<String>,
    pub(crate) hooks: HooksPlan,
}

/// The process the init (or `exec`) turns into.
pub(crate) struct ProcessPlan {
    pub(crate) terminal: bool,
    /// process.consoleSize as (rows, columns).
    pub(crate) console_size: Option<(u16, u16)>,
    pub(crate) args: Vec<CString>,
    /// args[0] as written: what the exec lookup resolves and errors quote.
    pub(crate) arg0: String,
    pub(crate) env: Vec<String>,
    pub(crate) cwd: PathBuf,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) additional_gids: Vec<nix::unistd::Gid>,
    pub(crate) umask: u32,
    pub(crate) caps: CapsPlan,
    pub(crate) rlimits: Vec<RlimitPlan>,
    pub(crate) no_new_privileges: bool,
    /// process.oomScoreAdj, as written to /proc/self/oom_score_adj.
    pub(crate) oom_score_adj: Option<String>,
    /// The LSM attribute writes for the next execve (see security::lsm), decided from the
    /// host's view: inside the container securityfs is usually not mounted.
    pub(crate) lsm: Vec<(&'static str, String)>,
}

/// The capability sets as bit masks (bit n = capability n), limited to what the running
/// kernel knows except for `bounding` (whatever is not in it is dropped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CapsPlan {
    pub(crate) bounding: u64,
    pub(crate) effective: u64,
    pub(crate) permitted: u64,
    pub(crate) inheritable: u64,
    pub(crate) ambient: u64,
}

pub(crate) struct RlimitPlan {
    pub(crate) name: &'static str,
    pub(crate) resource: Resource,
    pub(crate) soft: u64,
    pub(crate) hard: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MountKind {
    /// A bind mount (type "bind" or a bind/rbind option).
    Bind,
    /// The `cgroup`/`cgroup2` types: the container's own cgroups (see rootfs::mounts).
    Cgroup,
    /// A new filesystem instance of `fstype`.
    Fs,
}

pub(crate) struct MountPlan {
    /// Index in the config's `mounts`, for messages and the parent's idmapped trees.
    pub(crate) index: usize,
    /// The destination as written, for messages.
    pub(crate) destination: PathBuf,
    /// The destination relative to the container's root, lexically cleaned.
    pub(crate) dest: PathBuf,
    pub(crate) kind: MountKind,
    pub(crate) fstype: String,
    /// What is mounted: a bind's source made absolute against the bundle, else the
    /// config's source (the type when unset).
    pub(crate) source: PathBuf,
    pub(crate) opts: ParsedMountOptions,
    /// The filesystem data, comma-joined (empty: none).
    pub(crate) data: String,
    /// Idmapped bind: the maps of its mapping user namespace.
    pub(crate) idmap: Option<IdMapPlan>,
}

/// uid and gid maps, validated (non-empty, disjoint, no overflow).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct IdMapPlan {
    pub(crate) uid: Vec<[u32; 3]>,
    pub(crate) gid: Vec<[u32; 3]>,
}

impl IdMapPlan {
    /// A map in /proc/<pid>/{uid,gid}_map's format.
    pub(crate) fn text(maps: &[[u32; 3]]) -> String {
        maps.iter()
            .map(|[c, h, n]| format!("{c} {h} {n}\n"))
            .collect()
    }
}

pub(crate) struct DevicePlan {
    /// As written: the host node bound in its place in a user namespace, and messages.
    pub(crate) path: PathBuf,
    /// Relative to the container's root, under dev/, with a file name.
    pub(crate) rel: PathBuf,
    pub(crate) kind: SFlag,
    pub(crate) major: u64,
    pub(crate) minor: u64,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
}

pub(crate) struct SysctlPlan {
    pub(crate) name: String,
    /// The file under /proc ("sys/net/ipv4/ip_forward").
    pub(crate) file: String,
    pub(crate) value: String,
}

/// The hooks the init runs itself (prestart, createRuntime, poststart and poststop are the
/// parent's); every kind was checked when planning.
#[derive(Default)]
pub(crate) struct HooksPlan {
    /// Whether the parent has prestart or createRuntime hooks to run first.
    pub(crate) parent: bool,
    pub(crate) create_container: Vec<Hook>,
    pub(crate) start_container: Vec<Hook>,
}

impl HooksPlan {
    pub(crate) fn any(&self) -> bool {
        self.parent || !self.create_container.is_empty() || !self.start_container.is_empty()
    }
}

impl Plan {
    /// Whether the config binds something over /dev: then it brings its own nodes.
    pub(crate) fn dev_bound(&self) -> bool {
        self.mounts
            .iter()
            .any(|m| m.dest == Path::new("dev") && m.opts.flags & libc::MS_BIND != 0)
    }

    /// A mount berth adds itself (the notify socket's directory), planned as if it were the
    /// config's next one.
    pub(crate) fn add_mount(&mut self, m: &Mount, bundle: &Path) -> Result<(), SpecError> {
        let linux = IdMapPlan::default();
        let p = mount(self.mounts.len(), m, bundle, &linux)?;
        self.mounts.push(p);
        Ok(())
    }
}

/// Interprets a loaded (validated) spec for the bundle at `bundle` (absolute).
pub(crate) fn plan(spec: &Spec, bundle: &Path) -> Result<Plan, SpecError> {
    let rootfs = super::rootfs_path(spec, bundle)?;
    let process = process(spec.process().as_ref().expect("validated"))?;
    let linux = spec.linux().as_ref();
    let ctr_maps = IdMapPlan {
        uid: super::id_triples(linux.and_then(|l| l.uid_mappings().as_ref())),
        gid: super::id_triples(linux.and_then(|l| l.gid_mappings().as_ref())),
    };
    let mounts = spec
        .mounts()
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, m)| mount(i, m, bundle, &ctr_maps))
        .collect::<Result<Vec<_>, _>>()?;
    let mut devices = default_devices();
    for (i, d) in linux
        .and_then(|l| l.devices().as_ref())
        .into_iter()
        .flatten()
        .enumerate()
    {
        let dev = device(i, d)?;
        devices.retain(|x| x.path != dev.path);
        devices.push(dev);
    }
    let mut sysctls: Vec<SysctlPlan> = linux
        .and_then(|l| l.sysctl().as_ref())
        .into_iter()
        .flatten()
        .map(|(k, v)| SysctlPlan {
            name: k.clone(),
            file: format!("sys/{}", k.replace('.', "/")),
            value: v.clone(),
        })
        .collect();
    sysctls.sort_by(|a, b| a.name.cmp(&b.name));
    let time_offsets = linux
        .and_then(|l| l.time_offsets().as_ref())
        .into_iter()
        .flatten()
        .map(|(clock, o)| {
            format!(
                "{clock} {} {}\n",
                o.secs().unwrap_or(0),
                o.nanosecs().unwrap_or(0)
            )
        })
        .collect();
    let nonempty = |s: &Option<String>| s.clone().filter(|s| !s.is_empty());
    Ok(Plan {
        rootfs,
        readonly_root: spec.root().as_ref().and_then(|r| r.readonly()) == Some(true),
        namespaces: linux
            .and_then(|l| l.namespaces().as_ref())
            .into_iter()
            .flatten()
            .map(|n| (n.typ(), n.path().clone()))
            .collect(),
        process,
        mounts,
        devices,
        rootfs_propagation: propagation(linux.and_then(|l| l.rootfs_propagation().as_deref()))?,
        sysctls,
        time_offsets,
        hostname: nonempty(spec.hostname()),
        domainname: nonempty(spec.domainname()),
        masked_paths: linux
            .and_then(|l| l.masked_paths().clone())
            .unwrap_or_default(),
        readonly_paths: linux
            .and_then(|l| l.readonly_paths().clone())
            .unwrap_or_default(),
        hooks: hooks(spec.hooks().as_ref())?,
    })
}

fn propagation(p: Option<&str>) -> Result<MsFlags, SpecError> {
    Ok(match p {
        None | Some("") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some("shared") => MsFlags::MS_SHARED,
        Some("rshared") => MsFlags::MS_SHARED | MsFlags::MS_REC,
        Some("slave") => MsFlags::MS_SLAVE,
        Some("rslave") => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        Some("private") => MsFlags::MS_PRIVATE,
        Some("rprivate") => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        Some("unbindable") => MsFlags::MS_UNBINDABLE,
        Some("runbindable") => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        Some(other) => {
            return Err(field(
                "linux.rootfsPropagation",
                format!("unknown value {other:?}"),
            ))
        }
    })
}

/// A C string for execve, refusing what C cannot carry.
fn c_string(name: impl FnOnce() -> String, s: &str) -> Result<CString, SpecError> {
    CString::new(s).map_err(|_| field(name(), "contains a NUL byte"))
}

/// The process part of the plan; also what `exec` runs.
pub(crate) fn process(p: &Process) -> Result<ProcessPlan, SpecError> {
    let args = p.args().as_deref().unwrap_or_default();
    let arg0 = args
        .first()
        .cloned()
        .ok_or_else(|| field("process.args", "must not be empty"))?;
    let args = args
        .iter()
        .enumerate()
        .map(|(i, a)| c_string(|| format!("process.args[{i}]"), a))
        .collect::<Result<Vec<_>, _>>()?;
    let env = p.env().clone().unwrap_or_default();
    for (i, e) in env.iter().enumerate() {
        c_string(|| format!("process.env[{i}]"), e)?;
    }
    let user = p.user();
    let rlimits = p
        .rlimits()
        .iter()
        .flatten()
        .map(|r| {
            let (name, resource) = rlimit(r.typ());
            RlimitPlan {
                name,
                resource,
                soft: r.soft(),
                hard: r.hard(),
            }
        })
        .collect();
    Ok(ProcessPlan {
        terminal: p.terminal() == Some(true),
        console_size: p
            .console_size()
            .as_ref()
            .map(|s| (s.height() as u16, s.width() as u16)),
        args,
        arg0,
        env,
        cwd: p.cwd().clone(),
        uid: user.uid(),
        gid: user.gid(),
        additional_gids: user
            .additional_gids()
            .iter()
            .flatten()
            .map(|g| (*g).into())
            .collect(),
        umask: user.umask().unwrap_or(0o022),
        caps: caps_plan(p.capabilities().as_ref()),
        rlimits,
        no_new_privileges: p.no_new_privileges() == Some(true),
        oom_score_adj: p.oom_score_adj().map(|a| a.to_string()),
        lsm: crate::security::lsm::plan(
            &crate::security::lsm::HOST,
            p.apparmor_profile().as_deref(),
            p.selinux_label().as_deref(),
        ),
    })
}

fn rlimit(t: PosixRlimitType) -> (&'static str, Resource) {
    use PosixRlimitType as T;
    match t {
        T::RlimitAs => ("RLIMIT_AS", Resource::RLIMIT_AS),
        T::RlimitCore => ("RLIMIT_CORE", Resource::RLIMIT_CORE),
        T::RlimitCpu => ("RLIMIT_CPU", Resource::RLIMIT_CPU),
        T::RlimitData => ("RLIMIT_DATA", Resource::RLIMIT_DATA),
        T::RlimitFsize => ("RLIMIT_FSIZE", Resource::RLIMIT_FSIZE),
        T::RlimitLocks => ("RLIMIT_LOCKS", Resource::RLIMIT_LOCKS),
        T::RlimitMemlock => ("RLIMIT_MEMLOCK", Resource::RLIMIT_MEMLOCK),
        T::RlimitMsgqueue => ("RLIMIT_MSGQUEUE", Resource::RLIMIT_MSGQUEUE),
        T::RlimitNice => ("RLIMIT_NICE", Resource::RLIMIT_NICE),
        T::RlimitNofile => ("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE),
        T::RlimitNproc => ("RLIMIT_NPROC", Resource::RLIMIT_NPROC),
        T::RlimitRss => ("RLIMIT_RSS", Resource::RLIMIT_RSS),
        T::RlimitRtprio => ("RLIMIT_RTPRIO", Resource::RLIMIT_RTPRIO),
        T::RlimitRttime => ("RLIMIT_RTTIME", Resource::RLIMIT_RTTIME),
        T::RlimitSigpending => ("RLIMIT_SIGPENDING", Resource::RLIMIT_SIGPENDING),
        T::RlimitStack => ("RLIMIT_STACK", Resource::RLIMIT_STACK),
    }
}

/// A capability list as a mask: names the caps crate does not know are left out (the
/// forgiving pre-pass already warned about names nobody knows).
fn cap_mask(list: &Option<oci_spec::runtime::Capabilities>) -> u64 {
    list.iter()
        .flatten()
        .filter_map(|c| serde_json::to_value(c).ok())
        .filter_map(|v| v.as_str().and_then(|s| s.parse::<caps::Capability>().ok()))
        .fold(0, |m, c| m | c.bitmask())
}

/// The capabilities the running kernel knows, as a mask. They are numbered without gaps
/// up to its last one, and PR_CAPBSET_READ refuses any index past it: a bisection takes six
/// prctl calls where asking about each capability would take one per capability.
fn kernel_caps() -> u64 {
    let mut all: Vec<caps::Capability> = caps::all().into_iter().collect();
    all.sort_by_key(|c| c.index());
    let known = |c: caps::Capability| caps::has_cap(None, caps::CapSet::Bounding, c).is_ok();
    // all[..lo] are known, all[hi..] are not.
    let (mut lo, mut hi) = (0, all.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if known(all[mid]) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    all[..lo].iter().fold(0, |m, c| m | c.bitmask())
}

fn caps_plan(c: Option<&LinuxCapabilities>) -> CapsPlan {
    let Some(c) = c else {
        return CapsPlan::default();
    };
    let supported = kernel_caps();
    CapsPlan {
        bounding: cap_mask(c.bounding()),
        effective: cap_mask(c.effective()) & supported,
        permitted: cap_mask(c.permitted()) & supported,
        inheritable: cap_mask(c.inheritable()) & supported,
        ambient: cap_mask(c.ambient()) & supported,
    }
}

fn mount(i: usize, m: &Mount, bundle: &Path, ctr_maps: &IdMapPlan) -> Result<MountPlan, SpecError> {
    let destination = m.destination().clone();
    let named = || format!("mounts[{i}] ({})", destination.display());
    let opts = parse_mount_options(m.options().as_deref().unwrap_or(&[]));
    if let Some(j) = opts.data.iter().position(|d| d.contains('\0')) {
        return Err(field(
            format!("mounts[{i}].options[{j}]"),
            "contains a NUL byte",
        ));
    }
    let fstype = m.typ().clone().unwrap_or_default();
    let is_bind = opts.flags & libc::MS_BIND != 0 || fstype == "bind";
    let source = m.source().clone().unwrap_or_else(|| PathBuf::from(&fstype));
    let source = if is_bind && !source.is_absolute() {
        bundle.join(&source)
    } else {
        source
    };
    let dest = clean(&destination);
    // Lexically here, so that nothing is created under /proc for a refused mount; the init
    // checks again where the destination really resolves.
    crate::rootfs::mounts::check_proc_sys(&dest, &fstype, is_bind, &source)
        .map_err(|msg| field(named(), msg))?;
    let kind = if fstype == "cgroup" || fstype == "cgroup2" {
        MountKind::Cgroup
    } else if is_bind {
        MountKind::Bind
    } else {
        MountKind::Fs
    };
    let (own_uid, own_gid) = (
        super::id_triples(m.uid_mappings().as_ref()),
        super::id_triples(m.gid_mappings().as_ref()),
    );
    let idmap = if opts.idmap || opts.ridmap || !own_uid.is_empty() || !own_gid.is_empty() {
        if !is_bind {
            return Err(field(named(), "idmap is only supported on bind mounts"));
        }
        // The mount's own maps, else the container's user namespace maps (as runc).
        let pick = |own: Vec<[u32; 3]>, ctr: &[[u32; 3]]| {
            if own.is_empty() {
                ctr.to_vec()
            } else {
                own
            }
        };
        let maps = IdMapPlan {
            uid: pick(own_uid, &ctr_maps.uid),
            gid: pick(own_gid, &ctr_maps.gid),
        };
        if maps.uid.is_empty() || maps.gid.is_empty() {
            return Err(field(
                named(),
                "an idmapped mount needs uidMappings and gidMappings (on the mount or in linux)",
            ));
        }
        super::check_id_maps(&format!("mounts[{i}].uidMappings"), &maps.uid)?;
        super::check_id_maps(&format!("mounts[{i}].gidMappings"), &maps.gid)?;
        Some(maps)
    } else {
        None
    };
    let data = opts.data.join(",");
    Ok(MountPlan {
        index: i,
        destination,
        dest,
        kind,
        fstype,
        source,
        opts,
        data,
        idmap,
    })
}

/// The devices every container gets (runtime-spec "Default Devices").
fn default_devices() -> Vec<DevicePlan> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .into_iter()
    .map(|(n, major, minor)| DevicePlan {
        path: PathBuf::from("/dev").join(n),
        rel: PathBuf::from("dev").join(n),
        kind: SFlag::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    })
    .collect()
}

fn device(i: usize, d: &oci_spec::runtime::LinuxDevice) -> Result<DevicePlan, SpecError> {
    use oci_spec::runtime::LinuxDeviceType as T;
    let path = d.path().clone();
    let kind = match d.typ() {
        T::C | T::U => SFlag::S_IFCHR,
        T::B => SFlag::S_IFBLK,
        T::P => SFlag::S_IFIFO,
        T::A => {
            return Err(field(
                format!("linux.devices[{i}].type"),
                format!("{}: type 'a' is not a device node", path.display()),
            ))
        }
    };
    let rel = clean(&path);
    if !rel.starts_with("dev") || rel.file_name().is_none() {
        return Err(field(
            format!("linux.devices[{i}].path"),
            format!("{}: device path must be under /dev", path.display()),
        ));
    }
    Ok(DevicePlan {
        path,
        rel,
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
    })
}

fn hooks(h: Option<&oci_spec::runtime::Hooks>) -> Result<HooksPlan, SpecError> {
    let Some(h) = h else {
        return Ok(HooksPlan::default());
    };
    #[allow(deprecated)]
    let kinds = [
        ("prestart", h.prestart()),
        ("createRuntime", h.create_runtime()),
        ("createContainer", h.create_container()),
        ("startContainer", h.start_container()),
        ("poststart", h.poststart()),
        ("poststop", h.poststop()),
    ];
    for (kind, list) in &kinds {
        for (i, hook) in list.iter().flatten().enumerate() {
            if let Some((what, msg)) = crate::hooks::invalid(hook) {
                return Err(field(format!("hooks.{kind}[{i}].{what}"), msg));
            }
        }
    }
    let list = |l: &Option<Vec<Hook>>| l.clone().unwrap_or_default();
    let has = |l: &Option<Vec<Hook>>| l.as_ref().is_some_and(|v| !v.is_empty());
    #[allow(deprecated)]
    let parent = has(h.prestart()) || has(h.create_runtime());
    Ok(HooksPlan {
        parent,
        create_container: list(h.create_container()),
        start_container: list(h.start_container()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> serde_json::Value {
        json!({
            "ociVersion": "1.2.0",
            "root": {"path": "/"},
            "process": {"args": ["sh", "-c", "true"], "cwd": "/", "user": {"uid": 0, "gid": 0},
                        "env": ["PATH=/bin"]},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]}
        })
    }

    fn planned(v: serde_json::Value) -> Result<Plan, SpecError> {
        let text = serde_json::to_vec(&v).unwrap();
        let spec = super::super::parse(&text, Path::new("config.json"))?;
        plan(&spec, Path::new("/bundle"))
    }

    fn err(v: serde_json::Value) -> String {
        match planned(v) {
            Ok(_) => panic!("accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn mounts_are_parsed_once() {
        let mut v = base();
        v["mounts"] = json!([
            {"destination": "/data/", "type": "bind", "source": "vol", "options": ["rbind", "ro", "rprivate"]},
            {"destination": "/tmp", "type": "tmpfs", "options": ["nosuid", "mode=1777", "size=1m"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup"},
        ]);
        let p = planned(v).unwrap();
        let [bind, tmp, cg] = &p.mounts[..] else {
            panic!("three mounts")
        };
        assert_eq!(bind.kind, MountKind::Bind);
        assert_eq!(bind.source, Path::new("/bundle/vol"));
        assert_eq!(bind.dest, Path::new("data"));
        assert_eq!(bind.destination, Path::new("/data/"));
        assert_eq!(
            bind.opts.flags,
            libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY
        );
        assert_eq!(bind.opts.propagation, vec![libc::MS_PRIVATE | libc::MS_REC]);
        assert_eq!(tmp.kind, MountKind::Fs);
        assert_eq!(tmp.source, Path::new("tmpfs"));
        assert_eq!(tmp.data, "mode=1777,size=1m");
        assert_eq!(cg.kind, MountKind::Cgroup);
        assert!(!p.dev_bound());
    }

    #[test]
    fn bad_mounts_name_the_mount() {
        let mut v = base();
        v["mounts"] = json!([{"destination": "/x", "type": "tmpfs", "options": ["idmap"]}]);
        assert_eq!(
            err(v),
            "mounts[0] (/x): idmap is only supported on bind mounts"
        );
        let mut v = base();
        v["mounts"] = json!([{"destination": "/x", "type": "bind", "source": "/s", "options": ["bind", "idmap"]}]);
        assert!(err(v).starts_with("mounts[0] (/x): an idmapped mount needs uidMappings"));
        let mut v = base();
        v["mounts"] = json!([{"destination": "/proc/sys", "type": "tmpfs"}]);
        assert_eq!(
            err(v),
            "mounts[0] (/proc/sys): /proc/sys cannot be mounted because it is inside /proc"
        );
        let mut v = base();
        v["mounts"] = json!([{"destination": "/x", "type": "tmpfs", "options": ["a\u{0}b"]}]);
        assert_eq!(err(v), "mounts[0].options[0]: contains a NUL byte");
    }

    #[test]
    fn idmapped_mounts_take_the_containers_maps() {
        let mut v = base();
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "user"}));
        v["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1000, "size": 10}]);
        v["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 2000, "size": 10}]);
        v["mounts"] = json!([
            {"destination": "/a", "type": "bind", "source": "/s", "options": ["bind", "idmap"]},
            {"destination": "/b", "type": "bind", "source": "/s", "options": ["bind"],
             "uidMappings": [{"containerID": 0, "hostID": 5, "size": 1}]},
        ]);
        let p = planned(v).unwrap();
        let a = p.mounts[0].idmap.as_ref().unwrap();
        assert_eq!(a.uid, vec![[0, 1000, 10]]);
        assert_eq!(a.gid, vec![[0, 2000, 10]]);
        let b = p.mounts[1].idmap.as_ref().unwrap();
        assert_eq!(b.uid, vec![[0, 5, 1]]);
        assert_eq!(b.gid, vec![[0, 2000, 10]]);
        assert_eq!(IdMapPlan::text(&b.uid), "0 5 1\n");
    }

    #[test]
    fn propagation_and_devices() {
        let p = planned(base()).unwrap();
        assert_eq!(p.rootfs_propagation, MsFlags::MS_SLAVE | MsFlags::MS_REC);
        assert_eq!(p.devices.len(), 6);
        let mut v = base();
        v["linux"]["rootfsPropagation"] = json!("bogus");
        assert_eq!(err(v), "linux.rootfsPropagation: unknown value \"bogus\"");
        let mut v = base();
        v["linux"]["devices"] = json!([{"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600},
                                       {"path": "/dev/sda", "type": "b", "major": 8, "minor": 0}]);
        let p = planned(v).unwrap();
        assert_eq!(p.devices.len(), 7);
        let null = p.devices.iter().find(|d| d.path == Path::new("/dev/null"));
        assert_eq!(null.unwrap().mode, 0o600);
        let sda = p.devices.last().unwrap();
        assert_eq!(
            (sda.rel.as_path(), sda.kind),
            (Path::new("dev/sda"), SFlag::S_IFBLK)
        );
        let mut v = base();
        v["linux"]["devices"] = json!([{"path": "/dev/x", "type": "a"}]);
        assert_eq!(
            err(v),
            "linux.devices[0].type: /dev/x: type 'a' is not a device node"
        );
        let mut v = base();
        v["linux"]["devices"] = json!([{"path": "/etc/x", "type": "c", "major": 1, "minor": 3}]);
        assert_eq!(
            err(v),
            "linux.devices[0].path: /etc/x: device path must be under /dev"
        );
    }

    #[test]
    fn process_sysctls_offsets() {
        let mut v = base();
        v["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 20}]);
        v["process"]["capabilities"] =
            json!({"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"]});
        v["process"]["oomScoreAdj"] = json!(-5);
        v["linux"]["sysctl"] = json!({"kernel.shmmax": "1", "fs.mqueue.msg_max": "5"});
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "time"}));
        v["linux"]["timeOffsets"] = json!({"boottime": {"secs": 5, "nanosecs": 7}});
        let p = planned(v).unwrap();
        let r = &p.process.rlimits[0];
        assert_eq!(
            (r.name, r.resource, r.soft, r.hard),
            ("RLIMIT_NOFILE", Resource::RLIMIT_NOFILE, 10, 20)
        );
        assert_eq!(
            p.process.caps.bounding,
            caps::Capability::CAP_KILL.bitmask() | caps::Capability::CAP_CHOWN.bitmask()
        );
        assert_eq!(
            p.process.caps.effective,
            caps::Capability::CAP_KILL.bitmask()
        );
        assert_eq!(p.process.oom_score_adj.as_deref(), Some("-5"));
        assert_eq!(p.process.arg0, "sh");
        assert_eq!(p.process.args.len(), 3);
        let names: Vec<_> = p.sysctls.iter().map(|s| s.file.as_str()).collect();
        assert_eq!(names, ["sys/fs/mqueue/msg_max", "sys/kernel/shmmax"]);
        assert_eq!(p.time_offsets, "boottime 5 7\n");
        let mut v = base();
        v["process"]["args"] = json!(["sh", "a\u{0}"]);
        assert_eq!(err(v), "process.args[1]: contains a NUL byte");
    }

    #[test]
    fn kernel_caps_agree_with_asking_each() {
        let each = caps::runtime::thread_all_supported()
            .iter()
            .fold(0u64, |m, c| m | c.bitmask());
        assert_eq!(kernel_caps(), each);
        assert_ne!(each & caps::Capability::CAP_SYS_ADMIN.bitmask(), 0);
    }

    #[test]
    fn hooks_are_checked_up_front() {
        let mut v = base();
        v["hooks"] = json!({"poststop": [{"path": "/bin/true"}, {"path": "bin/true"}]});
        assert_eq!(
            err(v),
            "hooks.poststop[1].path: bin/true is not an absolute path"
        );
        let mut v = base();
        v["hooks"] = json!({"createContainer": [{"path": "/bin/true", "timeout": 0}]});
        assert_eq!(
            err(v),
            "hooks.createContainer[0].timeout: must be greater than zero, got 0"
        );
        let mut v = base();
        v["hooks"] = json!({"createRuntime": [{"path": "/bin/true"}], "startContainer": [{"path": "/bin/true"}]});
        let p = planned(v).unwrap();
        assert!(p.hooks.parent && p.hooks.any());
        assert_eq!(p.hooks.start_container.len(), 1);
        assert!(!planned(base()).unwrap().hooks.any());
    }
}
