//! `berth features`: the OCI features document (runtime-spec features.md). Lists come from
//! the tables the runtime itself uses wherever they exist, so the document cannot claim
//! more than berth does.

use serde_json::{json, Value};

use super::mountopts::known_mount_options;

/// Every capability name berth knows; the index is the kernel's capability number.
pub(crate) const KNOWN_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

#[cfg(test)]
/// The capability number of a name from [`KNOWN_CAPS`].
pub(crate) fn cap_number(name: &str) -> Option<u32> {
    KNOWN_CAPS
        .iter()
        .position(|c| *c == name)
        .and_then(|i| u32::try_from(i).ok())
}

/// Hook kinds, in the order the lifecycle runs them.
pub(crate) const HOOK_KINDS: &[&str] = &[
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

/// Namespace types berth can create or join (sorted, as runc reports them).
pub(crate) const NAMESPACES: &[&str] = &[
    "cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts",
];

pub(crate) const SECCOMP_ACTIONS: &[&str] = &[
    "SCMP_ACT_ALLOW",
    "SCMP_ACT_ERRNO",
    "SCMP_ACT_KILL",
    "SCMP_ACT_KILL_PROCESS",
    "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG",
    "SCMP_ACT_NOTIFY",
    "SCMP_ACT_TRACE",
    "SCMP_ACT_TRAP",
];

pub(crate) const SECCOMP_OPERATORS: &[&str] = &[
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_LE",
    "SCMP_CMP_LT",
    "SCMP_CMP_MASKED_EQ",
    "SCMP_CMP_NE",
];

/// Architectures berth has syscall tables for.
pub(crate) const SECCOMP_ARCHS: &[&str] = &["SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"];

/// The filter flags the runtime-spec defines, with the kernel release that introduced
/// each (major, minor).
const SECCOMP_FLAGS: &[(&str, (u32, u32))] = &[
    ("SECCOMP_FILTER_FLAG_TSYNC", (3, 17)),
    ("SECCOMP_FILTER_FLAG_LOG", (4, 14)),
    ("SECCOMP_FILTER_FLAG_SPEC_ALLOW", (4, 17)),
    ("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV", (5, 19)),
];

/// "6.1.0-18-amd64" -> (6, 1).
fn parse_release(release: &str) -> Option<(u32, u32)> {
    let mut it = release.trim().split(['.', '-', '+']);
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// Supported flags judged from the running kernel's release: probing with seccomp(2)
/// would need `unsafe` here, and the release answers the same question for these flags.
/// An unreadable release reports every known flag rather than guessing a subset.
fn supported_seccomp_flags(release: Option<(u32, u32)>) -> Vec<&'static str> {
    SECCOMP_FLAGS
        .iter()
        .filter(|(_, since)| release.is_none_or(|r| r >= *since))
        .map(|(n, _)| *n)
        .collect()
}

fn kernel_release() -> Option<(u32, u32)> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|s| parse_release(&s))
}

fn document(release: Option<(u32, u32)>) -> Value {
    let known_flags: Vec<&str> = SECCOMP_FLAGS.iter().map(|(n, _)| *n).collect();
    json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.3.0",
        "hooks": HOOK_KINDS,
        "mountOptions": known_mount_options(),
        "linux": {
            "namespaces": NAMESPACES,
            "capabilities": KNOWN_CAPS,
            "cgroup": {
                "v1": true,
                "v2": true,
                "systemd": false,
                "systemdUser": false,
                "rdma": true
            },
            "seccomp": {
                "enabled": true,
                "actions": SECCOMP_ACTIONS,
                "operators": SECCOMP_OPERATORS,
                "archs": SECCOMP_ARCHS,
                "knownFlags": known_flags,
                "supportedFlags": supported_seccomp_flags(release)
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false},
            "intelRdt": {"enabled": false},
            "mountExtensions": {"idmap": {"enabled": true}}
        },
        "annotations": {
            "io.github.berth.version": env!("CARGO_PKG_VERSION")
        }
    })
}

pub(crate) fn features_json() -> Value {
    document(kernel_release())
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::Features;

    fn strings(v: &Value) -> Vec<&str> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect()
    }

    #[test]
    fn parses_as_oci_features() {
        let f: Features = serde_json::from_value(features_json()).expect("valid features.md");
        assert_eq!(f.oci_version_min(), "1.0.0");
        assert_eq!(f.oci_version_max(), "1.3.0");
        let linux = f.linux().as_ref().unwrap();
        assert_eq!(linux.namespaces().as_ref().unwrap().len(), NAMESPACES.len());
        let sc = linux.seccomp().as_ref().unwrap();
        assert_eq!(sc.enabled(), &Some(true));
        assert_eq!(sc.actions().as_ref().unwrap().len(), SECCOMP_ACTIONS.len());
        assert_eq!(sc.archs().as_ref().unwrap().len(), 3);
        let idmap = linux.mount_extensions().as_ref().unwrap().idmap();
        assert_eq!(idmap.as_ref().unwrap().enabled(), &Some(true));
    }

    #[test]
    fn document_shape() {
        let v = features_json();
        assert_eq!(strings(&v["hooks"]), HOOK_KINDS);
        let opts = strings(&v["mountOptions"]);
        for o in ["rbind", "rro", "nosuid", "rslave", "tmpcopyup", "idmap"] {
            assert!(opts.contains(&o), "{o} missing");
        }
        assert!(
            opts.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        let cg = &v["linux"]["cgroup"];
        assert_eq!(cg["v1"], true);
        assert_eq!(cg["systemd"], false);
        assert_eq!(cg["rdma"], true);
        assert_eq!(v["linux"]["apparmor"]["enabled"], false);
        assert_eq!(v["linux"]["selinux"]["enabled"], false);
        assert_eq!(v["linux"]["intelRdt"]["enabled"], false);
        assert_eq!(
            v["annotations"]["io.github.berth.version"],
            env!("CARGO_PKG_VERSION")
        );
    }

    #[test]
    fn capability_table() {
        assert_eq!(KNOWN_CAPS.len(), 41);
        assert_eq!(cap_number("CAP_CHOWN"), Some(0));
        assert_eq!(cap_number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(cap_number("CAP_AUDIT_READ"), Some(37));
        assert_eq!(cap_number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(cap_number("CAP_NOPE"), None);
        // Must agree with the caps crate the security layer uses.
        for (i, name) in KNOWN_CAPS.iter().enumerate() {
            let c: caps::Capability = name.parse().unwrap();
            assert_eq!(c.index() as usize, i, "{name}");
        }
    }

    #[test]
    fn seccomp_flags_follow_kernel_release() {
        assert_eq!(parse_release("6.1.0-18-amd64\n"), Some((6, 1)));
        assert_eq!(parse_release("4.14.336"), Some((4, 14)));
        assert_eq!(parse_release("garbage"), None);
        assert_eq!(supported_seccomp_flags(Some((6, 1))).len(), 4);
        assert_eq!(supported_seccomp_flags(Some((5, 10))).len(), 3);
        assert_eq!(
            supported_seccomp_flags(Some((4, 15))),
            vec!["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG"]
        );
        assert_eq!(supported_seccomp_flags(None).len(), 4);
        let v = document(Some((3, 18)));
        assert_eq!(strings(&v["linux"]["seccomp"]["knownFlags"]).len(), 4);
        assert_eq!(
            strings(&v["linux"]["seccomp"]["supportedFlags"]),
            vec!["SECCOMP_FILTER_FLAG_TSYNC"]
        );
    }
}
