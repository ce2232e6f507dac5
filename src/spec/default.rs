//! `berth spec`: the default config.json, the same container runc's `spec` describes.

use std::path::Path;

use serde_json::{json, Value};

pub(crate) fn default_spec(rootless: bool) -> Value {
    let caps = json!(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
    let mut spec = json!({
        "ociVersion": "1.2.1",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "berth",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {"devices": [{"allow": false, "access": "rwm"}]},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    });
    if rootless {
        make_rootless(&mut spec);
    }
    spec
}

/// As runc's `spec --rootless`: a user namespace mapping the caller to root, the host's
/// network namespace (an unprivileged user cannot configure a new one), /sys as an rbind,
/// no uid=/gid= mount options and no cgroup resources.
fn make_rootless(spec: &mut Value) {
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    let linux = &mut spec["linux"];
    let mut ns: Vec<Value> = linux["namespaces"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n["type"] != "network" && n["type"] != "user")
        .collect();
    ns.push(json!({"type": "user"}));
    linux["namespaces"] = Value::Array(ns);
    linux["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1}]);
    linux["gidMappings"] = json!([{"containerID": 0, "hostID": gid, "size": 1}]);
    if let Some(l) = linux.as_object_mut() {
        l.remove("resources");
    }
    let mounts: Vec<Value> = spec["mounts"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut m| {
            if m["destination"] == "/sys" {
                return json!({"destination": "/sys", "type": "none", "source": "/sys", "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
            }
            if let Some(opts) = m["options"].as_array_mut() {
                opts.retain(|o| o.as_str().is_some_and(|o| !o.starts_with("uid=") && !o.starts_with("gid=")));
            }
            m
        })
        .collect();
    spec["mounts"] = Value::Array(mounts);
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum SpecWriteError {
    #[error("File {0} exists. Remove it first")]
    Exists(String),
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
}

/// Writes `<bundle>/config.json`, refusing to overwrite one (runc's message).
pub(crate) fn write_spec(bundle: &Path, rootless: bool) -> Result<(), SpecWriteError> {
    let path = bundle.join("config.json");
    let shown = path.display().to_string();
    let data = serde_json::to_vec_pretty(&default_spec(rootless)).expect("a JSON value serializes");
    let mut f = match std::fs::OpenOptions::new().write(true).create_new(true).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(SpecWriteError::Exists(shown)),
        Err(e) => return Err(SpecWriteError::Io { path: shown, msg: crate::error::errno_text(&e) }),
    };
    std::io::Write::write_all(&mut f, &data).map_err(|e| SpecWriteError::Io { path: shown, msg: crate::error::errno_text(&e) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_parses_and_validates() {
        for rootless in [false, true] {
            let v = default_spec(rootless);
            let s: oci_spec::runtime::Spec = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(s.process().as_ref().unwrap().args().as_ref().unwrap(), &vec!["sh".to_string()]);
            let user = crate::spec::new_namespace(&s, oci_spec::runtime::LinuxNamespaceType::User);
            assert_eq!(user, rootless);
            let net = crate::spec::new_namespace(&s, oci_spec::runtime::LinuxNamespaceType::Network);
            assert_eq!(net, !rootless);
        }
        let v = default_spec(true);
        assert_eq!(v["linux"]["uidMappings"][0]["hostID"], nix::unistd::geteuid().as_raw());
        assert!(v["mounts"].as_array().unwrap().iter().all(|m| !m["options"].to_string().contains("gid=")));
    }

    #[test]
    fn refuses_to_overwrite() {
        let d = std::env::temp_dir().join(format!("berth-spec-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        write_spec(&d, false).unwrap();
        assert!(matches!(write_spec(&d, false), Err(SpecWriteError::Exists(_))));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
