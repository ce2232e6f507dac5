//! `diff CONTAINER`: what changed in the container's filesystem against its image (`A`,
//! `C`, `D` lines, as Docker prints them), read from its own overlay upper directory.

use anyhow::{anyhow, bail, Result};

use crate::cli::front::ContainerArg;
use crate::front::containers::{OverlayDirs, Store};
use crate::front::digest::Digest;
use crate::front::Globals;

pub(crate) fn diff(g: &Globals, a: &ContainerArg) -> Result<i32> {
    let store = Store::new(g);
    let c = store.get(&a.container)?;
    if c.rec.image_id.is_empty() {
        bail!(
            "container {} runs on a root filesystem directory (--rootfs), not an image: there is nothing to compare it with",
            a.container
        );
    }
    let images = super::image_store(g)?;
    let id =
        Digest::parse(&c.rec.image_id).map_err(|e| anyhow!("image id {}: {e}", c.rec.image_id))?;
    let image = images.image(&id)?.ok_or_else(|| {
        anyhow!(
            "image {} of the container is no longer in the store",
            id.short()
        )
    })?;
    let lowers: Vec<_> = image
        .layers
        .iter()
        .rev()
        .map(|l| images.layer_dir(&l.diff_id))
        .collect();
    // What the runtime mounts over the root (and creates as mount points when missing).
    let mut hidden: Vec<String> = c.rec.spec["mounts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["destination"].as_str().map(String::from))
        .collect();
    hidden.extend(["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"].map(String::from));
    let upper = OverlayDirs::of(&store, &c.rec.id).upper;
    for (k, p) in crate::front::cp::changes(&upper, &lowers, &hidden)? {
        println!("{k} {p}");
    }
    Ok(0)
}
