//! `wait`: blocks until each container stops, then prints its exit code.

use anyhow::Result;

use crate::cli::front::ContainersArgs;
use crate::front::containers::{lifecycle, Store};
use crate::front::Globals;

pub(crate) fn wait(g: &Globals, a: &ContainersArgs) -> Result<i32> {
    let store = Store::new(g);
    let targets = super::targets(&store, &a.containers, &[], a.all, false)?;
    let mut failed = false;
    for q in &targets {
        match lifecycle::wait(&store, q) {
            Ok(code) => println!("{code}"),
            Err(e) => {
                failed = true;
                crate::logging::error(&format!("{e:#}"));
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}
