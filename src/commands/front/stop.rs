//! `stop`: the stop sequence (the stop signal, then SIGKILL of every process after the
//! timeout), run by each container's monitor; waits until each is down.

use anyhow::Result;

use crate::cli::front::StopArgs;
use crate::front::containers::{lifecycle, runtime, Store};
use crate::front::Globals;

pub(crate) fn stop(g: &Globals, a: &StopArgs) -> Result<i32> {
    let store = Store::new(g);
    let sig = a.signal.as_deref().map(runtime::parse_signal).transpose()?;
    let targets = super::targets(&store, &a.containers, &a.cidfile, a.all, true)?;
    super::each(&targets, a.ignore, |q| {
        let c = store.get_started(q)?;
        let sig = sig.unwrap_or_else(|| lifecycle::stop_signal(&c));
        let t = a.time.unwrap_or_else(|| lifecycle::stop_timeout(&c));
        lifecycle::stop(&store, &c, sig, t)
    })
}
