//! Loading config.json: a forgiving pre-pass on the raw JSON (unknown capabilities and
//! seccomp architectures are dropped with a warning, as runc does), then oci-spec, then
//! validation that names the offending field; `plan` then interprets the whole config into
//! what the container init does, before any kernel object exists.

pub(crate) mod default;
pub(crate) mod features;
pub(crate) mod jsonpath;
pub(crate) mod mountopts;
pub(crate) mod plan;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{LinuxNamespaceType, Spec};
use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub(crate) enum SpecError {
    #[error("{}: {}", path.display(), crate::error::errno_text(err))]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{}: invalid JSON: {err}", path.display())]
    Json {
        path: PathBuf,
        err: serde_json::Error,
    },
    #[error("{field}: {msg}")]
    Field { field: String, msg: String },
}

fn field(field: impl Into<String>, msg: impl Into<String>) -> SpecError {
    SpecError::Field {
        field: field.into(),
        msg: msg.into(),
    }
}

/// Reads and validates `<bundle>/config.json`.
pub(crate) fn load(bundle: &Path) -> Result<Spec, SpecError> {
    let path = bundle.join("config.json");
    let data = read_capped(&path)?;
    parse(&data, &path)
}

/// config.json's bytes (read from `path`) -> a validated spec.
pub(crate) fn parse(data: &[u8], path: &Path) -> Result<Spec, SpecError> {
    let mut raw: Value = serde_json::from_slice(data).map_err(|err| SpecError::Json {
        path: path.to_path_buf(),
        err,
    })?;
    prepass(&mut raw)?;
    let spec = Spec::deserialize(&raw).map_err(|_| typed_error(&raw))?;
    validate(&spec)?;
    Ok(spec)
}

/// A spec made in memory (the people face's) -> the checks `parse` makes of a config.json,
/// without encoding it and parsing it back: what the prepass looks at that a typed spec
/// can still get wrong (the version, root.path), then `validate`.
pub(crate) fn check(spec: &Spec) -> Result<(), SpecError> {
    check_oci_version(spec.version())?;
    match spec.root() {
        None => return Err(field("root.path", "missing")),
        Some(r) if r.path().as_os_str().is_empty() => {
            return Err(field("root.path", "missing or empty"))
        }
        Some(_) => {}
    }
    validate(spec)
}

/// config.json is read whole and copied into the state; past this it is refused rather
/// than slowly parsed (Kubernetes caps all of a pod's annotations at 256 KiB).
const MAX_CONFIG: u64 = 32 << 20;

fn read_capped(path: &Path) -> Result<Vec<u8>, SpecError> {
    use std::io::Read;
    let read_err = |err| SpecError::Read {
        path: path.to_path_buf(),
        err,
    };
    let f = std::fs::File::open(path).map_err(read_err)?;
    let mut data = Vec::new();
    f.take(MAX_CONFIG + 1)
        .read_to_end(&mut data)
        .map_err(read_err)?;
    if data.len() as u64 > MAX_CONFIG {
        return Err(field(
            path.display().to_string(),
            format!("too large (over {} MiB)", MAX_CONFIG >> 20),
        ));
    }
    Ok(data)
}

/// The error for a document that is valid JSON but not a valid spec, naming the field:
/// parsed again from text only on this path, for serde_json's error column.
fn typed_error(raw: &Value) -> SpecError {
    let text = serde_json::to_string(raw).unwrap_or_default();
    match serde_json::from_str::<Spec>(&text) {
        Ok(_) => field("config.json", "invalid"),
        Err(e) => {
            let msg = e.to_string();
            let msg = msg
                .rfind(" at line ")
                .map_or(msg.as_str(), |i| &msg[..i])
                .to_string();
            let path = jsonpath::path_at(&text, e.column());
            field(
                if path.is_empty() {
                    "config.json".to_string()
                } else {
                    path
                },
                msg,
            )
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Checks the shape of the fields whose absence serde would report without naming them,
/// and drops what runc tolerates.
fn prepass(raw: &mut Value) -> Result<(), SpecError> {
    let Value::Object(top) = raw else {
        return Err(field(
            "config.json",
            format!("must be a JSON object, not {}", kind(raw)),
        ));
    };
    match top.get("ociVersion") {
        Some(Value::String(v)) => check_oci_version(v)?,
        Some(other) => {
            return Err(field(
                "ociVersion",
                format!("must be a string, not {}", kind(other)),
            ))
        }
        None => return Err(field("ociVersion", "missing")),
    }
    match top.get("root") {
        Some(Value::Object(r)) => match r.get("path") {
            Some(Value::String(p)) if !p.is_empty() => {}
            Some(Value::String(_)) | None => return Err(field("root.path", "missing or empty")),
            Some(other) => {
                return Err(field(
                    "root.path",
                    format!("must be a string, not {}", kind(other)),
                ))
            }
        },
        Some(other) => {
            return Err(field(
                "root",
                format!("must be an object, not {}", kind(other)),
            ))
        }
        None => return Err(field("root.path", "missing")),
    }
    match top.get("process") {
        Some(Value::Object(p)) => match p.get("args") {
            Some(Value::Array(a)) if !a.is_empty() => {
                if let Some(i) = a.iter().position(|x| !x.is_string()) {
                    return Err(field(format!("process.args[{i}]"), "must be a string"));
                }
            }
            Some(Value::Array(_)) | None => return Err(field("process.args", "must not be empty")),
            Some(other) => {
                return Err(field(
                    "process.args",
                    format!("must be an array, not {}", kind(other)),
                ))
            }
        },
        Some(other) => {
            return Err(field(
                "process",
                format!("must be an object, not {}", kind(other)),
            ))
        }
        None => return Err(field("process", "missing")),
    }
    if let Some(Value::Object(sets)) = top
        .get_mut("process")
        .and_then(|p| p.get_mut("capabilities"))
    {
        for (set, list) in sets.iter_mut() {
            if let Value::Array(names) = list {
                names.retain(|n| {
                    let known =
                        serde_json::from_value::<oci_spec::runtime::Capability>(n.clone()).is_ok();
                    if !known {
                        crate::logging::warn(&format!(
                            "process.capabilities.{set}: ignoring unknown capability {n}"
                        ));
                    }
                    known
                });
            }
        }
    }
    if let Some(ns) = top.get("linux").and_then(|l| l.get("namespaces")) {
        let Value::Array(list) = ns else {
            return Err(field(
                "linux.namespaces",
                format!("must be an array, not {}", kind(ns)),
            ));
        };
        for (i, n) in list.iter().enumerate() {
            let t = n.get("type").cloned().unwrap_or(Value::Null);
            if serde_json::from_value::<LinuxNamespaceType>(t.clone()).is_err() {
                return Err(field(
                    format!("linux.namespaces[{i}].type"),
                    format!("unknown namespace type {t}"),
                ));
            }
        }
    }
    if let Some(Value::Array(list)) = top.get("process").and_then(|p| p.get("rlimits")) {
        for (i, r) in list.iter().enumerate() {
            let t = r.get("type").cloned().unwrap_or(Value::Null);
            if serde_json::from_value::<oci_spec::runtime::PosixRlimitType>(t.clone()).is_err() {
                return Err(field(
                    format!("process.rlimits[{i}].type"),
                    format!("unknown rlimit type {t}"),
                ));
            }
        }
    }
    if let Some(Value::Array(archs)) = top
        .get_mut("linux")
        .and_then(|l| l.get_mut("seccomp"))
        .and_then(|s| s.get_mut("architectures"))
    {
        archs.retain(|a| {
            let known = serde_json::from_value::<oci_spec::runtime::Arch>(a.clone()).is_ok();
            if !known {
                crate::logging::warn(&format!(
                    "linux.seccomp.architectures: ignoring unknown architecture {a}"
                ));
            }
            known
        });
    }
    Ok(())
}

/// berth executes configs written for runtime-spec 1.0.0 through 1.3.x.
fn check_oci_version(v: &str) -> Result<(), SpecError> {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    let nums: Option<Vec<u64>> = parts.iter().map(|p| p.parse().ok()).collect();
    match nums.as_deref() {
        Some([1, 0..=3, _]) => Ok(()),
        Some([_, _, _]) => Err(field(
            "ociVersion",
            format!("unsupported version {v:?} (berth supports 1.0.0 to 1.3.x)"),
        )),
        _ => Err(field("ociVersion", format!("invalid version {v:?}"))),
    }
}

/// An id map as (containerID, hostID, size) triples.
pub(crate) fn id_triples(maps: Option<&Vec<oci_spec::runtime::LinuxIdMapping>>) -> Vec<[u32; 3]> {
    maps.into_iter()
        .flatten()
        .map(|m| [m.container_id(), m.host_id(), m.size()])
        .collect()
}

/// The kernel refuses empty and overlapping ranges with a bare EINVAL on the map write;
/// say which entry is wrong instead.
pub(crate) fn check_id_maps(name: &str, maps: &[[u32; 3]]) -> Result<(), SpecError> {
    for (i, &[ctr, host, size]) in maps.iter().enumerate() {
        if size == 0 {
            return Err(field(
                format!("{name}[{i}].size"),
                "must be greater than zero",
            ));
        }
        for (side, start) in [("containerID", ctr), ("hostID", host)] {
            if start.checked_add(size).is_none() {
                return Err(field(
                    format!("{name}[{i}]"),
                    format!("{side} range overflows"),
                ));
            }
        }
        for (j, &[octr, ohost, osize]) in maps.iter().enumerate().take(i) {
            let overlap = |a: u32, b: u32| a < b + osize && b < a + size;
            if overlap(ctr, octr) {
                return Err(field(
                    format!("{name}[{i}]"),
                    format!("containerID range overlaps {name}[{j}]"),
                ));
            }
            if overlap(host, ohost) {
                return Err(field(
                    format!("{name}[{i}]"),
                    format!("hostID range overlaps {name}[{j}]"),
                ));
            }
        }
    }
    Ok(())
}

/// Namespaced sysctls only, as runc allows them: the namespace may be new or joined by
/// path, as long as it is not the one berth runs in (runc: "host" means "current").
fn check_sysctl(key: &str, spec: &Spec) -> Result<(), SpecError> {
    let has_new = |t: LinuxNamespaceType| own_namespace(spec, t);
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
    let f = format!("linux.sysctl.{key}");
    if key.contains("..") || key.starts_with('/') || key.starts_with('.') {
        return Err(field(f, "invalid sysctl name"));
    }
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        return if has_new(LinuxNamespaceType::Ipc)? {
            Ok(())
        } else {
            Err(field(f, "sysctl requires a new ipc namespace"))
        };
    }
    if key.starts_with("net.") {
        return if has_new(LinuxNamespaceType::Network)? {
            Ok(())
        } else {
            Err(field(f, "sysctl not allowed in host network namespace"))
        };
    }
    if key == "kernel.hostname" || key == "kernel.domainname" {
        return if has_new(LinuxNamespaceType::Uts)? {
            Ok(())
        } else {
            Err(field(f, "sysctl requires a new uts namespace"))
        };
    }
    Err(field(f, "sysctl is not in a separate kernel namespace"))
}

/// Whether the namespace file at `path` is the namespace of type `t` berth itself runs in
/// (same nsfs device and inode as /proc/self/ns/<type>).
fn is_runtime_namespace(t: LinuxNamespaceType, path: &Path) -> Result<bool, SpecError> {
    use std::os::unix::fs::MetadataExt;
    let ours = format!("/proc/self/ns/{}", crate::namespaces::kernel_name(t));
    let stat = |p: &Path| {
        std::fs::metadata(p).map_err(|e| {
            field(
                "linux.namespaces",
                format!(
                    "{} namespace path {}: {}",
                    crate::namespaces::kernel_name(t),
                    p.display(),
                    crate::error::errno_text(&e)
                ),
            )
        })
    };
    let (a, b) = (stat(Path::new(&ours))?, stat(path)?);
    Ok(a.dev() == b.dev() && a.ino() == b.ino())
}

/// Whether the container has a namespace of type `t` other than berth's own: a new one, or
/// one joined by a path that names another (runc counts both as the container's).
pub(crate) fn own_namespace(spec: &Spec, t: LinuxNamespaceType) -> Result<bool, SpecError> {
    match namespace(spec, t) {
        None => Ok(false),
        Some(None) => Ok(true),
        Some(Some(path)) => Ok(!is_runtime_namespace(t, &path)?),
    }
}

/// A namespace the container gets for itself (listed without a path).
pub(crate) fn new_namespace(spec: &Spec, t: LinuxNamespaceType) -> bool {
    namespace(spec, t).is_some_and(|p| p.is_none())
}

/// `Some(None)` new, `Some(Some(path))` joined, `None` inherited.
pub(crate) fn namespace(spec: &Spec, t: LinuxNamespaceType) -> Option<Option<PathBuf>> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == t)
        .map(|n| n.path().clone())
}

fn validate(spec: &Spec) -> Result<(), SpecError> {
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| field("process", "missing"))?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(field("process.args", "must not be empty"));
    }
    if let Some(adj) = process.oom_score_adj() {
        if !(-1000..=1000).contains(&adj) {
            return Err(field(
                "process.oomScoreAdj",
                format!("{adj} is outside -1000..1000"),
            ));
        }
    }
    // (uid_t)-1 means "unchanged" to setresuid and is refused by setgroups.
    let user = process.user();
    if user.uid() == u32::MAX {
        return Err(field("process.user.uid", "4294967295 is not a valid uid"));
    }
    if user.gid() == u32::MAX {
        return Err(field("process.user.gid", "4294967295 is not a valid gid"));
    }
    if let Some(i) = user
        .additional_gids()
        .as_ref()
        .and_then(|g| g.iter().position(|g| *g == u32::MAX))
    {
        return Err(field(
            format!("process.user.additionalGids[{i}]"),
            "4294967295 is not a valid gid",
        ));
    }
    if let Some(cwd) = Some(process.cwd()) {
        if !cwd.is_absolute() {
            return Err(field(
                "process.cwd",
                format!("{} is not an absolute path", cwd.display()),
            ));
        }
    }
    if let Some(linux) = spec.linux() {
        if let Some(nss) = linux.namespaces() {
            for (i, n) in nss.iter().enumerate() {
                if nss[..i].iter().any(|m| m.typ() == n.typ()) {
                    return Err(field(
                        format!("linux.namespaces[{i}]"),
                        format!("duplicate namespace type {:?}", n.typ()),
                    ));
                }
                if let Some(p) = n.path() {
                    if !p.is_absolute() {
                        return Err(field(
                            format!("linux.namespaces[{i}].path"),
                            format!("{} is not an absolute path", p.display()),
                        ));
                    }
                }
            }
        }
        if let Some(sysctl) = linux.sysctl() {
            let mut keys: Vec<_> = sysctl.keys().collect();
            keys.sort();
            for k in keys {
                check_sysctl(k, spec)?;
            }
        }
        if let Some(offsets) = linux.time_offsets() {
            if !offsets.is_empty() && !new_namespace(spec, LinuxNamespaceType::Time) {
                return Err(field(
                    "linux.timeOffsets",
                    "time offsets need a new time namespace",
                ));
            }
            for (clock, off) in offsets {
                if clock != "monotonic" && clock != "boottime" {
                    return Err(field(
                        format!("linux.timeOffsets.{clock}"),
                        "unknown clock (monotonic or boottime)",
                    ));
                }
                if off.nanosecs().unwrap_or(0) >= 1_000_000_000 {
                    return Err(field(
                        format!("linux.timeOffsets.{clock}.nanosecs"),
                        "must be below 1000000000",
                    ));
                }
            }
        }
        let userns = namespace(spec, LinuxNamespaceType::User).is_some();
        let has_maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
            || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
        if has_maps && !userns {
            return Err(field(
                "linux.uidMappings",
                "user namespace mappings given without a user namespace",
            ));
        }
        check_id_maps(
            "linux.uidMappings",
            &id_triples(linux.uid_mappings().as_ref()),
        )?;
        check_id_maps(
            "linux.gidMappings",
            &id_triples(linux.gid_mappings().as_ref()),
        )?;
        if new_namespace(spec, LinuxNamespaceType::User) && !has_maps {
            return Err(field(
                "linux.uidMappings",
                "a new user namespace needs uid and gid mappings",
            ));
        }
    }
    // Without a mount namespace of its own the container runs in berth's: mounts, masked
    // and read-only paths are then not made (create says so), never refused, as the
    // runtime-spec has namespaces that are not listed inherited.
    let own_uts = || own_namespace(spec, LinuxNamespaceType::Uts);
    if spec.hostname().as_ref().is_some_and(|h| !h.is_empty()) && !own_uts()? {
        return Err(field(
            "hostname",
            "unable to set hostname without a private UTS namespace",
        ));
    }
    if spec.domainname().as_ref().is_some_and(|h| !h.is_empty()) && !own_uts()? {
        return Err(field(
            "domainname",
            "unable to set domainname without a private UTS namespace",
        ));
    }
    if let Some(rl) = process.rlimits() {
        for r in rl {
            if r.soft() > r.hard() {
                let name = serde_json::to_value(r.typ())
                    .ok()
                    .and_then(|v| v.as_str().map(String::from))
                    .unwrap_or_default();
                return Err(field(
                    format!("process.rlimits.{name}"),
                    format!(
                        "soft limit {} is greater than hard limit {}",
                        r.soft(),
                        r.hard()
                    ),
                ));
            }
        }
    }
    if let Some(mounts) = spec.mounts() {
        for (i, m) in mounts.iter().enumerate() {
            if m.destination().as_os_str().is_empty() {
                return Err(field(
                    format!("mounts[{i}].destination"),
                    "must not be empty",
                ));
            }
        }
    }
    Ok(())
}

/// The rootfs path: root.path, relative to the bundle unless absolute; must be a directory.
pub(crate) fn rootfs_path(spec: &Spec, bundle: &Path) -> Result<PathBuf, SpecError> {
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| field("root.path", "missing"))?;
    let p = bundle.join(root.path());
    match std::fs::metadata(&p) {
        Ok(m) if m.is_dir() => Ok(p),
        Ok(_) => Err(field(
            "root.path",
            format!("{}: not a directory", p.display()),
        )),
        Err(e) => Err(field(
            "root.path",
            format!("{}: {}", p.display(), crate::error::errno_text(&e)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        serde_json::json!({
            "ociVersion": "1.2.0",
            "root": {"path": "rootfs"},
            "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "uts"}, {"type": "ipc"}]}
        })
    }

    fn check(v: Value) -> Result<Spec, SpecError> {
        let mut v = v;
        prepass(&mut v)?;
        let s: Spec = serde_json::from_value(v).map_err(|e| field("config.json", e.to_string()))?;
        validate(&s)?;
        Ok(s)
    }

    fn err(v: Value) -> String {
        check(v).unwrap_err().to_string()
    }

    #[test]
    fn accepts_base_and_versions() {
        for ver in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.1", "1.3.0"] {
            let mut v = base();
            v["ociVersion"] = ver.into();
            check(v).unwrap();
        }
    }

    #[test]
    fn id_maps_must_be_non_empty_and_disjoint() {
        let with = |uid: Value| {
            let mut v = base();
            v["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(serde_json::json!({"type": "user"}));
            v["linux"]["uidMappings"] = uid;
            v["linux"]["gidMappings"] =
                serde_json::json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
            v
        };
        let m =
            |c: u32, h: u32, n: u32| serde_json::json!({"containerID": c, "hostID": h, "size": n});
        check(with(serde_json::json!([
            m(0, 100000, 1000),
            m(1000, 200000, 1000)
        ])))
        .unwrap();
        for (maps, want) in [
            (
                serde_json::json!([m(0, 1000, 0)]),
                "linux.uidMappings[0].size: must be greater than zero",
            ),
            (
                serde_json::json!([m(0, 100000, 1000), m(999, 300000, 5)]),
                "linux.uidMappings[1]: containerID range overlaps linux.uidMappings[0]",
            ),
            (
                serde_json::json!([m(0, 100000, 1000), m(1000, 100500, 5)]),
                "linux.uidMappings[1]: hostID range overlaps linux.uidMappings[0]",
            ),
            (
                serde_json::json!([m(4294967295, 0, 2)]),
                "linux.uidMappings[0]: containerID range overflows",
            ),
        ] {
            assert_eq!(err(with(maps)), want);
        }
    }

    #[test]
    fn rejects_bad_versions() {
        for ver in ["", "x", "2.0.0", "1.4.0", "0.9.0", "1.2"] {
            let mut v = base();
            v["ociVersion"] = ver.into();
            assert!(err(v).starts_with("ociVersion:"), "{ver}");
        }
    }

    #[test]
    fn names_missing_fields() {
        let mut v = base();
        v["root"].as_object_mut().unwrap().remove("path");
        assert!(err(v).starts_with("root.path:"));
        let mut v = base();
        v["process"]["args"] = serde_json::json!([]);
        assert!(err(v).starts_with("process.args:"));
        let mut v = base();
        v.as_object_mut().unwrap().remove("process");
        assert!(err(v).starts_with("process:"));
        assert!(err(serde_json::json!([1])).contains("must be a JSON object"));
        assert!(err(Value::Null).contains("must be a JSON object"));
    }

    #[test]
    fn namespaces() {
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "bogus"}]);
        assert!(err(v).starts_with("linux.namespaces[1].type: unknown namespace type"));
        let mut v = base();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}, {"type": "pid"}]);
        assert!(err(v).contains("duplicate"));
    }

    #[test]
    fn sysctls_must_be_namespaced() {
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"kernel.panic": "1"});
        assert!(err(v).starts_with("linux.sysctl.kernel.panic:"));
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        assert!(err(v).contains("host network namespace"));
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"kernel.shmmax": "1000"});
        check(v).unwrap();
        // A network namespace by path counts unless it is ours: podman/netavark's is not.
        let mut v = base();
        v["linux"]["sysctl"] = serde_json::json!({"net.ipv4.ip_forward": "1"});
        v["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"type": "network"}));
        check(v.clone()).unwrap();
        v["linux"]["namespaces"][4]["path"] = "/proc/self/ns/net".into();
        assert!(err(v.clone()).contains("not allowed in host network namespace"));
        v["linux"]["namespaces"][4]["path"] = "/nonexistent/netns".into();
        assert!(err(v).starts_with("linux.namespaces: net namespace path /nonexistent/netns"));
    }

    #[test]
    fn unknown_caps_dropped() {
        let mut v = base();
        v["process"]["capabilities"] =
            serde_json::json!({"bounding": ["CAP_KILL", "CAP_NOT_A_THING"]});
        let s = check(v).unwrap();
        let caps = s
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        assert_eq!(caps.bounding().as_ref().unwrap().len(), 1);
    }

    #[test]
    fn hostname_needs_uts() {
        let mut v = base();
        v["hostname"] = "x".into();
        v["linux"]["namespaces"] = serde_json::json!([{"type": "pid"}]);
        assert!(err(v).starts_with("hostname:"));
    }

    #[test]
    fn rlimit_soft_above_hard() {
        let mut v = base();
        v["process"]["rlimits"] =
            serde_json::json!([{"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]);
        assert!(err(v).contains("soft limit 10 is greater than hard limit 5"));
    }
}
