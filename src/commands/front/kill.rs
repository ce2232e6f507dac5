//! `kill`: a signal (default SIGKILL) to each container's main process.

use anyhow::{bail, Result};

use crate::cli::front::KillArgs;
use crate::front::containers::{runtime, Store};
use crate::front::Globals;

pub(crate) fn kill(g: &Globals, a: &KillArgs) -> Result<i32> {
    let store = Store::new(g);
    let sig = runtime::parse_signal(&a.signal)?;
    let targets = super::targets(&store, &a.containers, &a.cidfile, a.all, true)?;
    super::each(&targets, false, |q| {
        let c = store.get_started(q)?;
        if !store.derive(&c).is_active() {
            bail!("cannot kill container {q}: container is not running");
        }
        // Before the signal, so that the journal reads kill, then die.
        let signal = sig.to_string();
        crate::front::events::container(&store, &c.rec, "kill", &[("signal", signal)]);
        crate::front::monitor::restart::kill(&store, &c, sig)
            .map_err(|e| anyhow::anyhow!("cannot kill container {q}: {e:#}"))
    })
}
