//! `create`: the container exists (record, name); nothing runs. Prints the full id.

use anyhow::Result;

use crate::cli::front::RunArgs;
use crate::front::containers::{create, Store};
use crate::front::Globals;

pub(crate) fn create(g: &Globals, a: &RunArgs) -> Result<i32> {
    let store = Store::new(g);
    if a.sdnotify.is_some() {
        // Only a foreground run is a unit's main process; start's monitor is detached.
        anyhow::bail!("--sdnotify: only for a foreground run (no create, no -d)");
    }
    crate::front::monitor::client::parse_detach_keys(a.detach_keys.as_deref())?;
    super::attach_streams(&a.attach, a.interactive)?;
    let src = super::run::source(g, a)?;
    let rec = create::create(&store, a, g.rootless, src)?;
    println!("{}", rec.id);
    Ok(0)
}
