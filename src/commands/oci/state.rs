//! `state`: the OCI state of one container, as pretty JSON.

use anyhow::Result;

use crate::runtime::{ops, Globals};

pub(super) fn run(g: &Globals, id: &str) -> Result<i32> {
    super::print_json(&serde_json::to_value(ops::state(g, id)?)?)?;
    Ok(0)
}
