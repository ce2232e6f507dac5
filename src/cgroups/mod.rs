//! cgroups: a driver (who makes and places the container's cgroups) over the host's
//! hierarchy (v1, v2 or both). `manager` has the layout and the directory operations,
//! `membership` how a new process enters the cgroups, `resources` and `devices` the limits
//! (pure), `stats` what is read back. Imports neither the state, the runtime nor the
//! process layer: what they need to keep is a [`CgroupRecord`].

pub(crate) mod dbus;
pub(crate) mod devices;
pub(crate) mod manager;
pub(crate) mod membership;
pub(crate) mod resources;
pub(crate) mod stats;
pub(crate) mod systemd;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub(crate) use manager::{CgroupError, Layout};
pub(crate) use membership::Membership;

/// Who makes the container's cgroups and places its processes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Driver {
    /// berth writes the cgroup filesystems itself.
    Cgroupfs,
    /// systemd makes a transient scope (see [`systemd`]), berth writes the limits into it.
    Systemd,
    /// No cgroups at all: the container runs in its creator's (rootless on a host with v1
    /// controllers, which are never delegated).
    None,
}

/// The cgroup hierarchies a host mounts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hierarchy {
    /// Per-controller hierarchies only.
    V1,
    /// The unified hierarchy only.
    V2,
    /// v1 controllers plus a cgroup2 mount (which holds the controllers v1 does not).
    Hybrid,
}

/// What the state keeps about a container's cgroups: enough for every later operation,
/// and for delete to remove exactly what create made.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CgroupRecord {
    /// Every cgroup directory berth created for this container, deepest last; delete removes
    /// exactly these, never a directory it did not create.
    #[serde(default)]
    pub(crate) created: Vec<PathBuf>,
    /// Directories holding the container's processes (one per hierarchy).
    #[serde(default)]
    pub(crate) paths: Vec<PathBuf>,
    /// The freezer directory (v1) or cgroup2 directory used for pause/kill --all.
    #[serde(default)]
    pub(crate) freezer: Option<PathBuf>,
    #[serde(default)]
    pub(crate) unified: Option<PathBuf>,
    /// v1 controller name -> the container's directory in that controller's hierarchy.
    #[serde(default)]
    pub(crate) v1: std::collections::BTreeMap<String, PathBuf>,
    /// The systemd scope holding these directories (the systemd driver), stopped at delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) systemd: Option<systemd::Scope>,
}

impl CgroupRecord {
    /// The container has cgroups of its own (not so with [`Driver::None`], nor when a
    /// rootless create had to give them up).
    pub(crate) fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }
}

/// A container's cgroups from plan to limits: decided before the id is claimed, made and
/// limited before any process exists.
pub(crate) struct Cgroups {
    driver: Driver,
    dirs: Vec<(manager::Hierarchy, PathBuf)>,
    record: CgroupRecord,
    /// The systemd driver: the scope to make (recorded once systemd made it: a scope of
    /// that name that is not ours is never stopped), the layout its directories are found
    /// in, and the pid that holds it until the init is in (killed when this is dropped).
    scope: Option<systemd::Scope>,
    layout: Option<Layout>,
    placeholder: Option<systemd::Placeholder>,
}

impl Cgroups {
    /// Resolves `cgroupsPath` for `driver` (absolute paths under each hierarchy root,
    /// relative ones under berth's own cgroup, as runc; `slice:prefix:name` for systemd,
    /// whose manager, the user's when `user`, must be there). A bad path is refused
    /// whatever the driver.
    pub(crate) fn plan(
        driver: Driver,
        layout: &Layout,
        cgroups_path: Option<&Path>,
        id: &str,
        user: bool,
    ) -> Result<Cgroups, CgroupError> {
        if driver == Driver::Systemd {
            systemd::check(user)?;
            let raw = cgroups_path.map(|p| p.to_string_lossy().into_owned());
            let scope = systemd::parse(raw.as_deref(), id, user)?;
            return Ok(Cgroups {
                driver,
                dirs: Vec::new(),
                record: CgroupRecord::default(),
                scope: Some(scope),
                layout: Some(layout.clone()),
                placeholder: None,
            });
        }
        let mut dirs = manager::plan(layout, cgroups_path, id)?;
        if driver == Driver::None {
            dirs.clear();
        }
        Ok(Cgroups {
            driver,
            record: manager::record(&dirs),
            dirs,
            scope: None,
            layout: None,
            placeholder: None,
        })
    }

    /// systemd makes the scope around a placeholder pid; its directories become the
    /// container's, plus berth's own in v1 hierarchies systemd does not manage.
    fn start_scope(
        &mut self,
        resources: &oci_spec::runtime::LinuxResources,
    ) -> Result<(), CgroupError> {
        let (Some(scope), Some(layout)) = (self.scope.clone(), self.layout.as_ref()) else {
            return Ok(());
        };
        let hold = systemd::Placeholder::spawn()?;
        let v2 = layout.hierarchy() == Some(Hierarchy::V2);
        systemd::start(&scope, systemd::properties(&scope, hold.pid, resources, v2))?;
        self.record.systemd = Some(scope.clone());
        let found = (|| {
            let f = PathBuf::from(format!("/proc/{}/cgroup", hold.pid));
            let text = std::fs::read_to_string(&f).map_err(|e| manager::io_err(&f, e))?;
            let dirs = systemd::dirs(layout, &scope, &text)?;
            let own: Vec<_> = dirs.iter().filter(|(_, d)| !d.exists()).cloned().collect();
            let mut record = manager::record(&dirs);
            record.systemd = Some(scope.clone());
            // Recorded before they are made: a failure below removes them with the scope.
            self.record = record;
            manager::create(&manager::record(&own))?;
            Ok(dirs)
        })();
        self.placeholder = Some(hold);
        match found {
            Ok(dirs) => {
                self.dirs = dirs;
                Ok(())
            }
            Err(e) => {
                let _ = manager::remove(&self.record);
                Err(e)
            }
        }
    }

    pub(crate) fn driver(&self) -> Driver {
        self.driver
    }

    pub(crate) fn record(&self) -> &CgroupRecord {
        &self.record
    }

    /// One directory per hierarchy, for the container's own /sys/fs/cgroup; none once the
    /// cgroups were given up.
    pub(crate) fn dirs(&self) -> &[(manager::Hierarchy, PathBuf)] {
        if self.record.is_empty() {
            &[]
        } else {
            &self.dirs
        }
    }

    /// Makes the directories and writes the limits (devices included). A caller that may
    /// ignore permission errors (`rootless`: not delegated to us) goes on without cgroups,
    /// or without limits, and gets the reason back as a warning.
    pub(crate) fn setup(
        &mut self,
        resources: &oci_spec::runtime::LinuxResources,
        rootless: bool,
        ignore_eperm: bool,
    ) -> Result<Vec<String>, CgroupError> {
        let mut warnings = Vec::new();
        if self.driver == Driver::Systemd {
            self.start_scope(resources)?;
            // systemd made the directories and delegated them: any error is an error.
            let devices = resources.devices().clone().unwrap_or_default();
            let limits = manager::apply_devices(&self.record, &devices, rootless)
                .and_then(|()| manager::apply_resources(&self.record, resources));
            if let Err(e) = limits {
                let _ = manager::remove(&self.record);
                return Err(e);
            }
            return Ok(warnings);
        }
        if self.record.is_empty() {
            return Ok(warnings);
        }
        if let Err(e) = manager::create(&self.record) {
            if !ignore_eperm || !e.is_permission() {
                return Err(e);
            }
            warnings.push(format!(
                "rootless: cgroups are not writable ({e}); running without resource limits"
            ));
            let _ = manager::remove(&self.record);
            self.record = CgroupRecord::default();
            return Ok(warnings);
        }
        // Limits are in place before the init exists, let alone runs.
        let devices = resources.devices().clone().unwrap_or_default();
        manager::apply_devices(&self.record, &devices, rootless)?;
        if let Err(e) = manager::apply_resources(&self.record, resources) {
            // Rootless with a partly delegated cgroup: the same rule as for creating it.
            if !ignore_eperm || !e.is_permission() {
                return Err(e);
            }
            warnings.push(format!("rootless: {e}; running without resource limits"));
        }
        Ok(warnings)
    }

    /// How the init will enter these cgroups (see [`Membership`]).
    pub(crate) fn membership(&self) -> Result<Membership, CgroupError> {
        Membership::for_init(&self.record)
    }
}

/// Whether `resources` asks for any limit. Device rules are not limits: without a cgroup
/// the container still only gets the nodes the config lists (a user namespace cannot
/// make others).
pub(crate) fn asks_for_limits(r: &oci_spec::runtime::LinuxResources) -> bool {
    r.memory().is_some()
        || r.cpu().is_some()
        || r.pids().is_some()
        || r.block_io().is_some()
        || r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())
        || r.network().is_some()
        || r.rdma().as_ref().is_some_and(|m| !m.is_empty())
        || r.unified().as_ref().is_some_and(|m| !m.is_empty())
}

impl Layout {
    /// Which hierarchies this host mounts; None without any cgroup filesystem.
    pub(crate) fn hierarchy(&self) -> Option<Hierarchy> {
        match (self.v1.is_empty(), self.unified.is_some()) {
            (true, true) => Some(Hierarchy::V2),
            (false, true) => Some(Hierarchy::Hybrid),
            (false, false) => Some(Hierarchy::V1),
            (true, false) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 30 0:27 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw
36 30 0:32 / /sys/fs/cgroup/memory rw shared:16 - cgroup cgroup rw,memory
";

    #[test]
    fn limits_are_what_is_not_a_device_rule() {
        let r = |v: serde_json::Value| -> oci_spec::runtime::LinuxResources {
            serde_json::from_value(v).unwrap()
        };
        assert!(!asks_for_limits(&r(serde_json::json!({}))));
        assert!(!asks_for_limits(&r(
            serde_json::json!({"devices": [{"allow": false, "access": "rwm"}], "hugepageLimits": []})
        )));
        assert!(asks_for_limits(&r(
            serde_json::json!({"memory": {"limit": 1048576}})
        )));
        assert!(asks_for_limits(&r(
            serde_json::json!({"pids": {"limit": 10}})
        )));
        assert!(asks_for_limits(&r(
            serde_json::json!({"unified": {"memory.max": "1"}})
        )));
    }

    #[test]
    fn hierarchy_of_the_layout() {
        let v1 = HYBRID.lines().nth(1).unwrap();
        let v2 = HYBRID.lines().next().unwrap();
        assert_eq!(
            Layout::parse(HYBRID, "").hierarchy(),
            Some(Hierarchy::Hybrid)
        );
        assert_eq!(Layout::parse(v1, "").hierarchy(), Some(Hierarchy::V1));
        assert_eq!(Layout::parse(v2, "").hierarchy(), Some(Hierarchy::V2));
        assert_eq!(Layout::parse("", "").hierarchy(), None);
    }

    /// systemd is refused before the path is read; none validates the path and plans
    /// nothing; cgroupfs plans one directory per hierarchy.
    #[test]
    fn drivers_plan() {
        let l = Layout::parse(HYBRID, "0::/\n");
        if !Path::new("/run/systemd/system").exists() {
            let e = Cgroups::plan(Driver::Systemd, &l, Some(Path::new("/ok")), "id", false)
                .err()
                .unwrap();
            assert!(e
                .to_string()
                .starts_with("the systemd cgroup driver is not available: "));
        }
        assert!(Cgroups::plan(Driver::None, &l, Some(Path::new("/a/../b")), "id", false).is_err());
        let none = Cgroups::plan(Driver::None, &l, None, "id", false).unwrap();
        assert!(none.record().is_empty() && none.dirs().is_empty());
        assert_eq!(none.driver(), Driver::None);
        let fs = Cgroups::plan(Driver::Cgroupfs, &l, Some(Path::new("/b/c")), "id", false).unwrap();
        assert_eq!(
            fs.record().paths,
            [
                PathBuf::from("/sys/fs/cgroup/memory/b/c"),
                PathBuf::from("/sys/fs/cgroup/unified/b/c")
            ]
        );
        assert_eq!(fs.dirs().len(), 2);
    }
}
