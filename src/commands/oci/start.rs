//! `start`: release a created container's init.

use anyhow::Result;

use crate::runtime::{ops, Globals};

pub(super) fn run(g: &Globals, id: &str) -> Result<i32> {
    Ok(super::warned(&ops::start(g, id)?))
}
