//! `kill ID [SIGNAL]`: signal the init (or, with --all, every process in the container).

use anyhow::Result;

use crate::runtime::{ops, Globals};

pub(super) fn run(g: &Globals, id: &str, signal: Option<&str>, all: bool) -> Result<i32> {
    let sig = crate::signals::parse_signal(signal.unwrap_or("SIGTERM"))?;
    ops::kill(g, id, sig, all)?;
    Ok(0)
}
