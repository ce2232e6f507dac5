//! `pause` / `unpause`: freeze and thaw every process of each container (cgroup freezer).

use anyhow::{bail, Result};

use crate::cli::front::ContainersArgs;
use crate::front::containers::{Live, Store};
use crate::front::Globals;

pub(crate) fn pause(g: &Globals, a: &ContainersArgs, freeze: bool) -> Result<i32> {
    let store = Store::new(g);
    let targets = super::targets(&store, &a.containers, &[], a.all, true)?;
    super::each(&targets, false, |q| {
        let c = store.get_started(q)?;
        let event = |r: Result<()>| {
            r?;
            let action = if freeze { "pause" } else { "unpause" };
            crate::front::events::container(&store, &c.rec, action, &[]);
            Ok(())
        };
        match (store.derive(&c), freeze) {
            (Live::Running, true) => event(store.pause(&c.rec.id)),
            (Live::Paused, false) => event(store.resume(&c.rec.id)),
            (Live::Paused, true) => bail!("container {q} is already paused"),
            (Live::Running | Live::Starting, false) => bail!("container {q} is not paused"),
            _ => bail!("container {q} is not running"),
        }
    })
}
