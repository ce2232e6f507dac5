//! `run`: create and start in one go; in the foreground, wait and exit with the
//! container's status.

use std::os::fd::AsFd;

use anyhow::Result;

use crate::cli::oci::RunArgs;
use crate::runtime::Globals;

pub(super) fn run(g: &Globals, a: &RunArgs) -> Result<i32> {
    let mut o = super::create::opts(&a.create);
    let (stdin, stdout) = (std::io::stdin(), std::io::stdout());
    let io = crate::runtime::run::Stdio::new(stdin.as_fd(), stdout.as_fd());
    let warn = &mut |w: &str| crate::logging::warn(w);
    Ok(crate::runtime::run::run(
        g, &mut o, a.detach, a.keep, io, warn,
    )?)
}
