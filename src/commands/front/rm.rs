//! `rm`: removes containers; a running one only with `-f` (SIGKILL to all its processes
//! first). Several arguments: goes on past failures, exits 1 if any failed.

use anyhow::Result;

use crate::cli::front::RmArgs;
use crate::front::containers::{lifecycle, Store};
use crate::front::Globals;

pub(crate) fn rm(g: &Globals, a: &RmArgs) -> Result<i32> {
    let store = Store::new(g);
    let targets = super::targets(&store, &a.containers, &a.cidfile, a.all, false)?;
    super::each(&targets, a.ignore, |q| {
        // Read first: with -v its anonymous volumes go once it is gone.
        let rec = if a.volumes {
            store.get(q).ok().map(|c| c.rec)
        } else {
            None
        };
        lifecycle::remove(&store, q, a.force, a.time)?;
        if let Some(rec) = rec {
            crate::front::volumes::setup::remove_anonymous(&store, &rec);
        }
        Ok(())
    })
}
