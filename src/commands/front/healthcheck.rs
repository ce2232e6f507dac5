//! `healthcheck run CTR` (Podman's): one probe now, recorded as the monitor's probes are;
//! exit 0 when healthy, else the status printed and exit 1.

use anyhow::Result;

use crate::cli::front::ContainerArg;
use crate::front::containers::{exit_error, Store};
use crate::front::monitor::health;
use crate::front::Globals;

pub(crate) fn run(g: &Globals, a: &ContainerArg) -> Result<i32> {
    let store = Store::new(g);
    let c = store.get_started(&a.container)?;
    let status = health::run_once(&store, &c).map_err(|e| exit_error(125, format!("{e:#}")))?;
    if status == health::HEALTHY {
        return Ok(0);
    }
    println!("{status}");
    Ok(1)
}
