//! `create`: set up a container and leave its init waiting for `start`.

use std::path::PathBuf;

use anyhow::Result;

use crate::cli::oci::CreateArgs;
use crate::runtime::create::{CreateOpts, SpecSource};
use crate::runtime::Globals;

/// The create options shared by `create` and `run`.
pub(super) fn opts(a: &CreateArgs) -> CreateOpts {
    CreateOpts {
        id: a.id.clone(),
        source: SpecSource::Bundle(PathBuf::from(&a.bundle)),
        console_socket: a.console_socket.as_ref().map(PathBuf::from),
        pid_file: a.pid_file.as_ref().map(PathBuf::from),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        internal_console: false,
        // The caller's systemd inputs, passed on to the container (socket activation,
        // readiness): the runtime reads no environment itself.
        listen_fds: std::env::var("LISTEN_FDS").map_or(0, |v| v.parse().unwrap_or(0)),
        notify_socket: std::env::var("NOTIFY_SOCKET")
            .ok()
            .filter(|s| !s.is_empty()),
    }
}

pub(super) fn run(g: &Globals, a: &CreateArgs) -> Result<i32> {
    let c = crate::runtime::create::create(g, &opts(a))?;
    Ok(super::warned(&c.warnings))
}
