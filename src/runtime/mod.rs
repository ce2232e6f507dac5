//! The lifecycle engine behind the OCI commands, and the library the people face calls:
//! typed options in, typed results (with their warnings) and [`error::Error`] out.

pub(crate) mod create;
pub(crate) mod error;
pub(crate) mod exec;
pub(crate) mod notify;
pub(crate) mod ops;
pub(crate) mod run;
pub(crate) mod tty;
pub(crate) mod update;

use std::path::PathBuf;

/// Global options every command gets (runc's global flags).
#[derive(Clone, Debug)]
pub(crate) struct Globals {
    pub(crate) root: PathBuf,
    pub(crate) systemd_cgroup: bool,
    /// `--rootless true|false`: whether cgroup permission errors are ignored; None (auto)
    /// decides from who we are.
    pub(crate) rootless: Option<bool>,
}

/// runc's systemd cgroupsPath form, `slice:prefix:name`.
pub(crate) fn is_systemd_cgroups_path(p: &std::path::Path) -> bool {
    let s = p.to_string_lossy();
    !s.starts_with('/') && s.matches(':').count() == 2
}

/// Whether the systemd cgroup driver can be used (a manager to talk to), before anything
/// is made; `user`: the user's manager.
pub(crate) fn systemd_cgroup_check(user: bool) -> std::result::Result<(), String> {
    crate::cgroups::systemd::check(user).map_err(|e| e.to_string())
}

/// A failed operation has no result to carry the warnings gathered on its way (a poststop
/// hook that failed while a half-made container was destroyed): those are logged here,
/// before the error goes up for the caller to report.
pub(crate) fn failed_with<T>(r: error::Result<T>, warnings: &[String]) -> error::Result<T> {
    if r.is_err() {
        log_unreturned(warnings);
    }
    r
}

/// See [`failed_with`].
pub(crate) fn log_unreturned(warnings: &[String]) {
    for w in warnings {
        crate::logging::warn(w);
    }
}
