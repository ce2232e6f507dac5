//! `update`: change a live container's resource limits.

use anyhow::Result;

use crate::cli::oci::UpdateArgs;
use crate::runtime::Globals;

pub(super) fn run(g: &Globals, a: &UpdateArgs) -> Result<i32> {
    crate::runtime::update::update(g, a)?;
    Ok(0)
}
