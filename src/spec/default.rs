//! `berth spec`: the starter config.json, with the same content as runc's `spec` and
//! `spec --rootless`, and written in the same shape (runc's field order, tab indent) so
//! the two diff cleanly.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The runtime-spec version the starter file claims.
pub(crate) const SPEC_VERSION: &str = "1.2.0";

const DEFAULT_CAPS: &[&str] = &["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
    "/sys/devices/virtual/tpm",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

#[derive(Debug, thiserror::Error)]
pub(crate) enum SpecWriteError {
    // runc's exact words (capital letter included): scripts grep for them.
    #[error("File config.json exists. Remove it first")]
    Exists,
    #[error("open {}: {}", path.display(), crate::error::errno_text(source))]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("encode config.json: {0}")]
    Encode(#[from] serde_json::Error),
}

// Private mirrors of the few spec fields the starter file sets, declared in runc's order:
// serde_json::Value sorts keys, oci-spec's structs use another order, and a user diffing
// `berth spec` against `runc spec` should see only real differences.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StarterSpec {
    oci_version: &'static str,
    process: Process,
    root: Root,
    hostname: &'static str,
    mounts: Vec<Mount>,
    linux: Linux,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Process {
    terminal: bool,
    user: User,
    args: Vec<&'static str>,
    env: Vec<&'static str>,
    cwd: &'static str,
    capabilities: Capabilities,
    rlimits: Vec<Rlimit>,
    no_new_privileges: bool,
}

#[derive(Serialize)]
struct User {
    uid: u32,
    gid: u32,
}

#[derive(Serialize)]
struct Capabilities {
    bounding: &'static [&'static str],
    effective: &'static [&'static str],
    permitted: &'static [&'static str],
}

#[derive(Serialize)]
struct Rlimit {
    #[serde(rename = "type")]
    kind: &'static str,
    hard: u64,
    soft: u64,
}

#[derive(Serialize)]
struct Root {
    path: &'static str,
    readonly: bool,
}

#[derive(Serialize)]
struct Mount {
    destination: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    source: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    options: Vec<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Linux {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    uid_mappings: Vec<IdMapping>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    gid_mappings: Vec<IdMapping>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resources: Option<Resources>,
    namespaces: Vec<Namespace>,
    masked_paths: &'static [&'static str],
    readonly_paths: &'static [&'static str],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct IdMapping {
    #[serde(rename = "containerID")]
    container_id: u32,
    #[serde(rename = "hostID")]
    host_id: u32,
    size: u32,
}

#[derive(Serialize)]
struct Resources {
    devices: Vec<DeviceRule>,
}

#[derive(Serialize)]
struct DeviceRule {
    allow: bool,
    access: &'static str,
}

#[derive(Serialize)]
struct Namespace {
    #[serde(rename = "type")]
    kind: &'static str,
}

fn mount(
    destination: &'static str,
    kind: &'static str,
    source: &'static str,
    options: &[&'static str],
) -> Mount {
    Mount {
        destination,
        kind,
        source,
        options: options.to_vec(),
    }
}

/// What the host and caller decide about the starter file, split out so tests can pin
/// every combination without depending on the machine.
#[derive(Clone, Copy, Debug)]
struct Host {
    /// runc adds a cgroup namespace only on a pure cgroup v2 host, where a private
    /// cgroupfs view is what containers expect; hybrid and v1 hosts keep the host's.
    cgroup2_unified: bool,
    euid: u32,
    egid: u32,
}

fn starter(rootless: bool, host: Host) -> StarterSpec {
    let mut namespaces = vec!["pid", "network", "ipc", "uts", "mount"];
    if host.cgroup2_unified {
        namespaces.push("cgroup");
    }
    let mut spec = StarterSpec {
        oci_version: SPEC_VERSION,
        process: Process {
            terminal: true,
            user: User { uid: 0, gid: 0 },
            args: vec!["sh"],
            env: vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm",
            ],
            cwd: "/",
            capabilities: Capabilities {
                bounding: DEFAULT_CAPS,
                effective: DEFAULT_CAPS,
                permitted: DEFAULT_CAPS,
            },
            rlimits: vec![Rlimit {
                kind: "RLIMIT_NOFILE",
                hard: 1024,
                soft: 1024,
            }],
            no_new_privileges: true,
        },
        root: Root {
            path: "rootfs",
            readonly: true,
        },
        hostname: "berth",
        mounts: vec![
            mount("/proc", "proc", "proc", &[]),
            mount(
                "/dev",
                "tmpfs",
                "tmpfs",
                &["nosuid", "strictatime", "mode=755", "size=65536k"],
            ),
            mount(
                "/dev/pts",
                "devpts",
                "devpts",
                &[
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5",
                ],
            ),
            mount(
                "/dev/shm",
                "tmpfs",
                "shm",
                &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            ),
            mount(
                "/dev/mqueue",
                "mqueue",
                "mqueue",
                &["nosuid", "noexec", "nodev"],
            ),
            mount(
                "/sys",
                "sysfs",
                "sysfs",
                &["nosuid", "noexec", "nodev", "ro"],
            ),
            mount(
                "/sys/fs/cgroup",
                "cgroup",
                "cgroup",
                &["nosuid", "noexec", "nodev", "relatime", "ro"],
            ),
        ],
        linux: Linux {
            uid_mappings: vec![],
            gid_mappings: vec![],
            // Deny every device; the runtime then allows its default set on top.
            resources: Some(Resources {
                devices: vec![DeviceRule {
                    allow: false,
                    access: "rwm",
                }],
            }),
            namespaces: namespaces
                .into_iter()
                .map(|kind| Namespace { kind })
                .collect(),
            masked_paths: MASKED_PATHS,
            readonly_paths: READONLY_PATHS,
        },
    };
    if rootless {
        make_rootless(&mut spec, host);
    }
    spec
}

/// What runc's `spec --rootless` changes: a user namespace mapping the caller to root,
/// the host network namespace (an unprivileged user cannot set up a new one usefully),
/// /sys bind-mounted from the host (sysfs cannot be mounted without owning the network
/// namespace), no uid=/gid= mount options (those ids are not mapped) and no cgroup
/// resources (an unprivileged user usually cannot write them).
fn make_rootless(spec: &mut StarterSpec, host: Host) {
    spec.linux
        .namespaces
        .retain(|ns| ns.kind != "network" && ns.kind != "user");
    spec.linux.namespaces.push(Namespace { kind: "user" });
    spec.linux.uid_mappings = vec![IdMapping {
        container_id: 0,
        host_id: host.euid,
        size: 1,
    }];
    spec.linux.gid_mappings = vec![IdMapping {
        container_id: 0,
        host_id: host.egid,
        size: 1,
    }];
    for m in &mut spec.mounts {
        if m.destination == "/sys" {
            *m = mount(
                "/sys",
                "none",
                "/sys",
                &["rbind", "nosuid", "noexec", "nodev", "ro"],
            );
            continue;
        }
        m.options
            .retain(|o| !o.starts_with("uid=") && !o.starts_with("gid="));
    }
    spec.linux.resources = None;
}

fn cgroup2_unified() -> bool {
    use nix::sys::statfs::{statfs, CGROUP2_SUPER_MAGIC};
    statfs("/sys/fs/cgroup").is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC)
}

fn this_host() -> Host {
    Host {
        cgroup2_unified: cgroup2_unified(),
        euid: nix::unistd::geteuid().as_raw(),
        egid: nix::unistd::getegid().as_raw(),
    }
}

#[cfg(test)]
/// The starter spec as JSON (keys sorted; use [`write_spec`] for runc's layout).
pub(crate) fn default_spec(rootless: bool) -> serde_json::Value {
    // The structs above hold only strings, numbers and bools: encoding cannot fail.
    serde_json::to_value(starter(rootless, this_host())).unwrap_or(serde_json::Value::Null)
}

/// Writes `<bundle>/config.json`, refusing to replace an existing one (as runc).
pub(crate) fn write_spec(bundle: &Path, rootless: bool) -> Result<(), SpecWriteError> {
    write_starter(bundle, &starter(rootless, this_host()))
}

fn write_starter(bundle: &Path, spec: &StarterSpec) -> Result<(), SpecWriteError> {
    let mut text = Vec::new();
    // Tabs, as runc's encoder indents.
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut text, fmt);
    spec.serialize(&mut ser)?;
    text.push(b'\n');

    let path = bundle.join("config.json");
    // create_new, not a stat first: no window for a racing writer, and a dangling
    // symlink named config.json is refused instead of followed.
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => SpecWriteError::Exists,
            _ => SpecWriteError::Io {
                path: path.clone(),
                source,
            },
        })?;
    f.write_all(&text)
        .map_err(|source| SpecWriteError::Io { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{LinuxNamespaceType, Spec};

    const HOST_V1: Host = Host {
        cgroup2_unified: false,
        euid: 1000,
        egid: 1001,
    };
    const HOST_V2: Host = Host {
        cgroup2_unified: true,
        euid: 1000,
        egid: 1001,
    };

    fn value(rootless: bool, host: Host) -> serde_json::Value {
        serde_json::to_value(starter(rootless, host)).unwrap()
    }

    fn parsed(rootless: bool, host: Host) -> Spec {
        serde_json::from_value(value(rootless, host)).expect("oci-spec accepts the starter")
    }

    fn ns_types(s: &Spec) -> Vec<LinuxNamespaceType> {
        s.linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_ref()
            .unwrap()
            .iter()
            .map(|n| n.typ())
            .collect()
    }

    fn scratch_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-specdef-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn default_parses_and_matches_runc() {
        let s = parsed(false, HOST_V1);
        assert_eq!(s.version(), SPEC_VERSION);
        assert_eq!(s.hostname().as_deref(), Some("berth"));
        let p = s.process().as_ref().unwrap();
        assert_eq!(p.terminal(), Some(true));
        assert_eq!(p.args().as_ref().unwrap(), &vec!["sh".to_string()]);
        assert_eq!(p.cwd().to_str(), Some("/"));
        assert_eq!(p.no_new_privileges(), Some(true));
        let caps = p.capabilities().as_ref().unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 3);
        assert!(caps.ambient().is_none(), "runc no longer sets ambient caps");
        let rl = &p.rlimits().as_ref().unwrap()[0];
        assert_eq!((rl.hard(), rl.soft()), (1024, 1024));
        let root = s.root().as_ref().unwrap();
        assert_eq!(root.path().to_str(), Some("rootfs"));
        assert_eq!(root.readonly(), Some(true));
        assert_eq!(s.mounts().as_ref().unwrap().len(), 7);
        use LinuxNamespaceType::*;
        assert_eq!(ns_types(&s), vec![Pid, Network, Ipc, Uts, Mount]);
        let linux = s.linux().as_ref().unwrap();
        assert_eq!(linux.masked_paths().as_ref().unwrap().len(), 11);
        assert_eq!(linux.readonly_paths().as_ref().unwrap().len(), 5);
        assert!(linux.resources().is_some());
        assert!(linux.uid_mappings().is_none());
    }

    #[test]
    fn cgroup_namespace_only_on_unified_hosts() {
        use LinuxNamespaceType::*;
        assert_eq!(
            ns_types(&parsed(false, HOST_V2)),
            vec![Pid, Network, Ipc, Uts, Mount, Cgroup]
        );
        assert_eq!(
            ns_types(&parsed(true, HOST_V2)),
            vec![Pid, Ipc, Uts, Mount, Cgroup, User]
        );
    }

    #[test]
    fn rootless_has_userns_and_mappings() {
        let s = parsed(true, HOST_V1);
        use LinuxNamespaceType::*;
        assert_eq!(ns_types(&s), vec![Pid, Ipc, Uts, Mount, User]);
        let linux = s.linux().as_ref().unwrap();
        let u = &linux.uid_mappings().as_ref().unwrap()[0];
        assert_eq!((u.container_id(), u.host_id(), u.size()), (0, 1000, 1));
        let g = &linux.gid_mappings().as_ref().unwrap()[0];
        assert_eq!((g.container_id(), g.host_id(), g.size()), (0, 1001, 1));
        assert!(linux.resources().is_none());

        let v = value(true, HOST_V1);
        let mounts = v["mounts"].as_array().unwrap();
        let sys = mounts.iter().find(|m| m["destination"] == "/sys").unwrap();
        assert_eq!(sys["type"], "none");
        assert_eq!(sys["source"], "/sys");
        assert_eq!(sys["options"][0], "rbind");
        let pts = mounts
            .iter()
            .find(|m| m["destination"] == "/dev/pts")
            .unwrap();
        assert!(!pts["options"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "gid=5"));
        // runc keeps the cgroup mount in rootless mode.
        assert!(mounts.iter().any(|m| m["destination"] == "/sys/fs/cgroup"));
    }

    #[test]
    fn public_entry_points_agree() {
        for rootless in [false, true] {
            let v = default_spec(rootless);
            let _: Spec = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(v, value(rootless, this_host()));
        }
    }

    #[test]
    fn write_keeps_runc_layout_and_refuses_overwrite() {
        let dir = scratch_dir("write");
        write_spec(&dir, false).unwrap();
        let text = std::fs::read_to_string(dir.join("config.json")).unwrap();
        assert!(text.starts_with("{\n\t\"ociVersion\": \"1.2.0\",\n\t\"process\": {"));
        let _: Spec = serde_json::from_str(&text).unwrap();
        let err = write_spec(&dir, false).unwrap_err();
        assert_eq!(err.to_string(), "File config.json exists. Remove it first");
        // The existing file is untouched.
        assert_eq!(
            std::fs::read_to_string(dir.join("config.json")).unwrap(),
            text
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn write_into_missing_bundle_names_the_path() {
        let scratch = scratch_dir("missing");
        let err = write_spec(&scratch.join("nope"), true)
            .unwrap_err()
            .to_string();
        std::fs::remove_dir_all(&scratch).unwrap();
        assert!(
            err.ends_with("/nope/config.json: no such file or directory"),
            "{err}"
        );
    }
}
