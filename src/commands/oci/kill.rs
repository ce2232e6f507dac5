//! `kill ID [SIGNAL]`: signal the init (or, with --all, every process in the container).

use anyhow::Result;

use crate::runtime::{ops, Globals};

pub(super) fn run(g: &Globals, id: &str, signal: Option<&str>, all: bool) -> Result<i32> {
    // Signal 0 only asks whether the container's processes are there (kill(2)), as runc.
    let sig = match signal {
        Some("0") => 0,
        s => crate::signals::parse_signal(s.unwrap_or("SIGTERM"))?,
    };
    ops::kill(g, id, sig, all)?;
    Ok(0)
}
