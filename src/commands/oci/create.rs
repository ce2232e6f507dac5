//! `create`: set up a container and leave its init waiting for `start`.

use std::path::PathBuf;

use anyhow::Result;

use crate::cli::oci::CreateArgs;
use crate::runtime::create::CreateOpts;
use crate::runtime::Globals;

/// The create options shared by `create` and `run`.
pub(super) fn opts(a: &CreateArgs) -> CreateOpts {
    CreateOpts {
        id: a.id.clone(),
        bundle: PathBuf::from(&a.bundle),
        console_socket: a.console_socket.as_ref().map(PathBuf::from),
        pid_file: a.pid_file.as_ref().map(PathBuf::from),
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        internal_console: false,
    }
}

pub(super) fn run(g: &Globals, a: &CreateArgs) -> Result<i32> {
    crate::runtime::create::create(g, &opts(a))?;
    Ok(0)
}
