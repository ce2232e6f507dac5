//! The hidden `monitor ID`: a container's monitor, started by `run -d` and `start`.

use anyhow::Result;

use crate::cli::front::MonitorArgs;
use crate::front::containers::Store;
use crate::front::Globals;

pub(crate) fn monitor(g: &Globals, a: &MonitorArgs) -> Result<i32> {
    if a.id == "init" && crate::front::monitor::init::requested() {
        return crate::front::monitor::init::main();
    }
    crate::front::monitor::main(&Store::new(g), &a.id)
}
