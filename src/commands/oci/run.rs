//! `run`: create and start in one go; in the foreground, wait and exit with the
//! container's status.

use anyhow::Result;

use crate::cli::oci::RunArgs;
use crate::runtime::Globals;

pub(super) fn run(g: &Globals, a: &RunArgs) -> Result<i32> {
    let mut o = super::create::opts(&a.create);
    crate::runtime::run::run(g, &mut o, a.detach, a.keep)
}
