//! The lifecycle engine behind the OCI commands.

pub(crate) mod create;
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
