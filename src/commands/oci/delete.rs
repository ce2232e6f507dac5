//! `delete`: remove a stopped (or, with --force, any) container.

use anyhow::Result;

use crate::runtime::{ops, Globals};

pub(super) fn run(g: &Globals, id: &str, force: bool) -> Result<i32> {
    Ok(super::warned(&ops::delete(g, id, force)?))
}
