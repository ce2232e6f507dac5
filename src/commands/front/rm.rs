//! `rm`: removes containers; a running one only with `-f` (SIGKILL to all its processes
//! first). Several arguments: goes on past failures, exits 1 if any failed.

use anyhow::{bail, Result};

use crate::cli::front::RmArgs;
use crate::front::containers::{lifecycle, Store};
use crate::front::Globals;

pub(crate) fn rm(g: &Globals, a: &RmArgs) -> Result<i32> {
    let store = Store::new(g);
    let targets = super::targets(&store, &a.containers, &a.cidfile, a.all, false)?;
    super::each(&targets, a.ignore, |q| remove(&store, q, a.force, a.time))
}

/// Removes one container (stopping it first with `force`).
pub(crate) fn remove(store: &Store, q: &str, force: bool, time: Option<i64>) -> Result<()> {
    let c = store.get(q)?;
    let id = c.rec.id.clone();
    let live = store.derive(&c);
    if live.is_active() {
        if !force {
            bail!(
                "cannot remove container {q}: container is {}: stop the container before removing or force remove",
                live.word()
            );
        }
        // rm -t N: a graceful stop first (Podman); plain -f kills.
        let (sig, t) = match time {
            Some(t) => (lifecycle::stop_signal(&c), t),
            None => (libc::SIGKILL, 0),
        };
        lifecycle::stop(store, &c, sig, t)?;
    }
    let lock = store.lock(&id)?;
    let c = match store.load(&id) {
        Ok(c) => c,
        // Its own --rm took it meanwhile.
        Err(_) => return Ok(()),
    };
    if store.derive(&c).is_active() {
        bail!("cannot remove container {q}: it was started again meanwhile");
    }
    store.reconcile(&c, &lock)?;
    store.remove_files(&c.rec)?;
    Ok(())
}
