//! `rmi` (`image rm`): Docker's untag-vs-delete, refused while a container uses the image
//! (naming it); goes on past failures and exits 1 if any failed.

use anyhow::{anyhow, Result};

use crate::cli::front::RmiArgs;
use crate::front::images::ops;
use crate::front::Globals;

pub(crate) fn rmi(g: &Globals, a: &RmiArgs) -> Result<i32> {
    super::unpack_allowed(g, "rmi")?;
    let store = super::image_store(g)?;
    let containers = crate::front::containers::Store::new(g);
    let in_use = super::image_user(&containers);
    let mut targets = a.images.clone();
    if a.all {
        targets.extend(store.images()?.into_iter().map(|r| r.id.to_string()));
    } else if targets.is_empty() {
        anyhow::bail!("requires at least 1 argument");
    }
    let mut failed = false;
    for q in &targets {
        let image_id = super::find_image(&store, q)
            .ok()
            .flatten()
            .map(|(rec, _)| rec.id.to_string());
        match super::canonical_image(&store, q)
            .and_then(|q| ops::remove(&store, &q, a.force, &in_use))
        {
            Ok(removed) => {
                for r in removed {
                    println!("{r}");
                    let (action, id) = match &r {
                        ops::Removed::Untagged(_) => {
                            ("untag", image_id.clone().unwrap_or_default())
                        }
                        ops::Removed::Deleted(d) => ("delete", d.to_string()),
                    };
                    crate::front::events::image(&g.runroot, action, &id, &id);
                }
            }
            Err(e) => {
                failed = true;
                crate::logging::error(&format!("{e:#}"));
            }
        }
    }
    if failed {
        return Err(anyhow!(""));
    }
    Ok(0)
}
