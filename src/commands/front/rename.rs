//! `rename CONTAINER NEW_NAME`.

use anyhow::Result;

use crate::cli::front::RenameArgs;
use crate::front::containers::Store;
use crate::front::Globals;

pub(crate) fn rename(g: &Globals, a: &RenameArgs) -> Result<i32> {
    let store = Store::new(g);
    let c = store.get(&a.container)?;
    store.rename(&c.rec.id, &a.new_name)?;
    if let Ok(new) = store.load(&c.rec.id) {
        let old = format!("/{}", c.rec.name);
        crate::front::events::container(&store, &new.rec, "rename", &[("oldName", old)]);
    }
    Ok(0)
}
