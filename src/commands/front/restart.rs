//! `restart`: stop (the stop sequence) then start, each container in turn.

use anyhow::Result;

use crate::cli::front::StopArgs;
use crate::front::containers::{lifecycle, log_level, runtime, Store};
use crate::front::Globals;

pub(crate) fn restart(g: &Globals, a: &StopArgs) -> Result<i32> {
    let store = Store::new(g);
    let sig = a.signal.as_deref().map(runtime::parse_signal).transpose()?;
    let targets = super::targets(&store, &a.containers, &a.cidfile, a.all, false)?;
    super::each(&targets, a.ignore, |q| {
        let c = store.get_started(q)?;
        let sig = sig.unwrap_or_else(|| lifecycle::stop_signal(&c));
        let t = a.time.unwrap_or_else(|| lifecycle::stop_timeout(&c));
        lifecycle::stop(&store, &c, sig, t)?;
        // Its own --rm may have removed it: then there is nothing to start (Docker's too).
        let c = store.get(q)?;
        lifecycle::start(&store, &c.rec.id, log_level())?;
        crate::front::events::container(&store, &c.rec, "restart", &[]);
        Ok(())
    })
}
