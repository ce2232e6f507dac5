//! `features`: what this runtime supports, as runtime-spec's features document.

use anyhow::Result;

pub(super) fn run() -> Result<i32> {
    super::print_json(&crate::spec::features::features_json())?;
    Ok(0)
}
