//! AppArmor profiles and SELinux labels for the container's process. As runc: each is
//! applied only when the host has that LSM enabled and ignored otherwise. Both are
//! "on exec" attributes of the calling thread, written just before execve through a
//! verified procfs (see procfs.rs) so that a planted mount cannot take the write.

use std::os::fd::OwnedFd;

use super::procfs::{self, ProcError};

/// Where the host says whether an LSM is on; a test points these at a fake tree.
pub(crate) struct Host {
    pub(crate) apparmor_param: &'static str,
    pub(crate) apparmor_fs: &'static str,
    pub(crate) selinux_enforce: &'static str,
}

pub(crate) const HOST: Host = Host {
    apparmor_param: "/sys/module/apparmor/parameters/enabled",
    apparmor_fs: "/sys/kernel/security/apparmor",
    selinux_enforce: "/sys/fs/selinux/enforce",
};

impl Host {
    /// runc's test: securityfs shows apparmor and the module parameter says Y.
    pub(crate) fn apparmor_enabled(&self) -> bool {
        std::path::Path::new(self.apparmor_fs).is_dir()
            && std::fs::read_to_string(self.apparmor_param).is_ok_and(|s| s.starts_with('Y'))
    }

    /// selinuxfs is mounted (its enforce file exists), whether enforcing or permissive.
    pub(crate) fn selinux_enabled(&self) -> bool {
        std::path::Path::new(self.selinux_enforce).is_file()
    }
}

/// The writes that set `profile` and `label` for the next execve, in order: what is
/// written to which file under /proc/<pid>/task/<tid>/attr.
pub(crate) fn plan(
    host: &Host,
    apparmor: Option<&str>,
    selinux: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut w = Vec::new();
    if let Some(p) = apparmor.filter(|p| !p.is_empty()) {
        if host.apparmor_enabled() {
            // The LSM-specific file exists since Linux 5.8; "exec" is the older shared one.
            let file = if std::path::Path::new("/proc/self/attr/apparmor").is_dir() {
                "apparmor/exec"
            } else {
                "exec"
            };
            w.push((file, format!("exec {p}")));
        }
    }
    if let Some(l) = selinux.filter(|l| !l.is_empty()) {
        if host.selinux_enabled() {
            w.push(("exec", l.to_string()));
        }
    }
    w
}

/// Applies the planned writes to this thread's attr files.
pub(crate) fn apply(writes: &[(&'static str, String)]) -> Result<(), ProcError> {
    if writes.is_empty() {
        return Ok(());
    }
    let root: OwnedFd = procfs::root()?;
    let pid = nix::unistd::getpid();
    let tid = nix::unistd::gettid();
    for (file, value) in writes {
        procfs::write(
            &root,
            &format!("{pid}/task/{tid}/attr/{file}"),
            value.as_bytes(),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(dir: &std::path::Path, aa: Option<&str>, selinux: bool) -> Host {
        let leak = |p: std::path::PathBuf| -> &'static str {
            Box::leak(p.to_string_lossy().into_owned().into_boxed_str())
        };
        std::fs::create_dir_all(dir.join("sec/apparmor")).unwrap();
        std::fs::create_dir_all(dir.join("selinux")).unwrap();
        if let Some(v) = aa {
            std::fs::write(dir.join("aa-enabled"), v).unwrap();
        }
        if selinux {
            std::fs::write(dir.join("selinux/enforce"), "1").unwrap();
        }
        Host {
            apparmor_param: leak(dir.join("aa-enabled")),
            apparmor_fs: leak(dir.join("sec/apparmor")),
            selinux_enforce: leak(dir.join("selinux/enforce")),
        }
    }

    #[test]
    fn applied_only_where_the_lsm_is_enabled() {
        let d = std::env::temp_dir().join(format!("berth-lsm-{}", std::process::id()));
        let off = fake(&d.join("off"), Some("N\n"), false);
        assert!(plan(&off, Some("docker-default"), Some("system_u:r:c:s0")).is_empty());
        let none = fake(&d.join("none"), None, false);
        assert!(!none.apparmor_enabled());
        let on = fake(&d.join("on"), Some("Y\n"), true);
        let w = plan(
            &on,
            Some("docker-default"),
            Some("system_u:system_r:container_t:s0"),
        );
        assert_eq!(w.len(), 2);
        assert!(w[0].0 == "apparmor/exec" || w[0].0 == "exec");
        assert_eq!(w[0].1, "exec docker-default");
        assert_eq!(
            w[1],
            ("exec", "system_u:system_r:container_t:s0".to_string())
        );
        assert!(plan(&on, Some(""), None).is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
