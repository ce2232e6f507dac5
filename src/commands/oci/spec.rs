//! `spec`: write a default config.json into the bundle directory.

use std::path::PathBuf;

use anyhow::Result;

pub(super) fn run(bundle: &str, rootless: bool) -> Result<i32> {
    let dir = if bundle.is_empty() {
        PathBuf::from(".")
    } else {
        PathBuf::from(bundle)
    };
    crate::spec::default::write_spec(&dir, rootless)?;
    Ok(0)
}
