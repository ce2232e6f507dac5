//! Where a foreground `run` under a unit puts its container's cgroup. With `Delegate=yes`
//! the unit's cgroup is berth's to manage: the container goes to `<unit>/container`, and
//! berth itself to `<unit>/supervisor` (cgroup v2 lets no process live in a cgroup whose
//! children have controllers enabled), so systemd accounts, limits and, at the end, kills
//! the container with the unit. Without it the container's cgroup stays where it is
//! outside systemd (`/berth/ID`), and berth says so once.
//!
//! Delegation is read from the cgroup itself: systemd (251 and later) marks a delegated
//! cgroup with the `trusted.delegate` and `user.delegate` xattrs. systemd 252's user
//! manager sets neither, so rootless delegation goes unrecognized there. Neither
//! writability (root writes any cgroup) nor ownership (a user manager's whole subtree is
//! the user's) says whether the unit asked for delegation. Only the unified (v2)
//! hierarchy is considered: on cgroup v1 berth places the container as it always does.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, Result};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// The decision, made once per process: a restart in place creates the container again
/// and must find it in the same place (berth has moved itself by then).
static PLACE: OnceLock<Place> = OnceLock::new();

#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    /// Not under a unit, or on cgroup v1: the spec's own path.
    Unchanged,
    /// The container's cgroup path, under the unit's.
    Delegated(String),
    /// Under a unit that did not delegate its cgroup (the unit's cgroup path).
    NotDelegated(String),
}

/// Under a unit (`under_unit`), before the container is created: the container's
/// cgroupsPath, moved into the unit's cgroup when delegated (berth moving itself aside
/// first). A warning the first time the unit has no delegation.
pub(crate) fn apply(
    spec: &mut oci_spec::runtime::Spec,
    under_unit: bool,
) -> Result<Option<String>> {
    let systemd_form = spec
        .linux()
        .as_ref()
        .and_then(|l| l.cgroups_path().as_ref())
        .is_some_and(|p| p.to_string_lossy().contains(':'));
    if systemd_form {
        // `slice:prefix:name`: the systemd driver makes a scope of its own for it.
        return Ok(None);
    }
    let mut first = false;
    let place = match PLACE.get() {
        Some(p) => p.clone(),
        None => {
            let p = if under_unit {
                decide()?
            } else {
                Place::Unchanged
            };
            first = true;
            PLACE.get_or_init(|| p).clone()
        }
    };
    match place {
        Place::Unchanged => Ok(None),
        Place::Delegated(path) => {
            if let Some(l) = spec.linux_mut() {
                l.set_cgroups_path(Some(PathBuf::from(path)));
            }
            Ok(None)
        }
        Place::NotDelegated(unit) => Ok(first.then(|| {
            let own = spec
                .linux()
                .as_ref()
                .and_then(|l| l.cgroups_path().clone())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            format!(
                "the unit's cgroup {unit} is not delegated (no Delegate=yes): the container's \
                 cgroup is {own}, outside the unit's"
            )
        })),
    }
}

/// Reads berth's own cgroup and, when delegated, moves berth to `supervisor` in it.
fn decide() -> Result<Place> {
    if !Path::new(CGROUP_ROOT).join("cgroup.controllers").exists() {
        return Ok(Place::Unchanged);
    }
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let Some(own) = unified_path(&text) else {
        return Ok(Place::Unchanged);
    };
    let dir = Path::new(CGROUP_ROOT).join(own.trim_start_matches('/'));
    let place = classify(own, own != "/" && delegated(&dir));
    if !matches!(place, Place::Delegated(_)) {
        return Ok(place);
    }
    let sup = dir.join("supervisor");
    let err = |p: &Path, e: std::io::Error| {
        anyhow!(
            "the unit's delegated cgroup: {}: {}",
            p.display(),
            crate::error::errno_text(&e)
        )
    };
    match std::fs::create_dir(&sup) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(err(&sup, e)),
    }
    let procs = sup.join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string()).map_err(|e| err(&procs, e))?;
    Ok(place)
}

/// Where the container goes, for berth in the cgroup `own`.
fn classify(own: &str, delegated: bool) -> Place {
    if own == "/" {
        Place::Unchanged
    } else if delegated {
        Place::Delegated(format!("{}/container", own.trim_end_matches('/')))
    } else if own.ends_with(".service") {
        Place::NotDelegated(own.to_string())
    } else {
        // Only a service's own cgroup is worth the word: a shell in a terminal that a
        // unit started (INVOCATION_ID inherited) lives in a scope, and is no unit's main.
        Place::Unchanged
    }
}

/// The `0::PATH` line of /proc/self/cgroup.
fn unified_path(text: &str) -> Option<&str> {
    text.lines().find_map(|l| l.strip_prefix("0::"))
}

fn delegated(dir: &Path) -> bool {
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    [c"trusted.delegate", c"user.delegate"]
        .iter()
        .any(|name| crate::sys::files::lgetxattr(&c, name).is_ok_and(|v| v == b"1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unified_line() {
        let t = "9:name=systemd:/\n4:memory:/\n0::/system.slice/web.service\n";
        assert_eq!(unified_path(t), Some("/system.slice/web.service"));
        assert_eq!(unified_path("4:memory:/x\n"), None);
    }

    #[test]
    fn placement() {
        let web = "/system.slice/web.service";
        assert_eq!(
            classify(web, true),
            Place::Delegated(format!("{web}/container"))
        );
        assert_eq!(classify(web, false), Place::NotDelegated(web.into()));
        let tab = "/user.slice/user-1000.slice/user@1000.service/app.slice/vte-spawn-1.scope";
        assert_eq!(classify(tab, false), Place::Unchanged);
        assert_eq!(
            classify(tab, true),
            Place::Delegated(format!("{tab}/container"))
        );
        assert_eq!(classify("/", false), Place::Unchanged);
    }
}
