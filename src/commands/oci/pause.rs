//! `pause` and `resume`: freeze and thaw the container's cgroup.

use anyhow::Result;

use crate::runtime::{ops, Globals};

pub(super) fn pause(g: &Globals, id: &str) -> Result<i32> {
    ops::pause(g, id)?;
    Ok(0)
}

pub(super) fn resume(g: &Globals, id: &str) -> Result<i32> {
    ops::resume(g, id)?;
    Ok(0)
}
