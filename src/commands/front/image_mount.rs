//! `image mount` / `image unmount` (Podman): an image's layers mounted read-only, the
//! path printed; without arguments, the mounted images.

use anyhow::{anyhow, bail, Result};

use crate::cli::front::ImageMountArgs;
use crate::front::images::overlay;
use crate::front::Globals;

pub(crate) fn mount(g: &Globals, a: &ImageMountArgs) -> Result<i32> {
    if g.rootless {
        bail!("image mount: mounting images needs root (a rootless user has no mount namespace of the host)");
    }
    let store = super::image_store(g)?;
    if a.images.is_empty() {
        for (id, path) in overlay::mounted_images(&store) {
            println!("{} {}", id.hex(), path.display());
        }
        return Ok(0);
    }
    let mut failed = false;
    for q in &a.images {
        let r =
            super::lookup_image(&store, q).and_then(|(rec, _)| overlay::image_mount(&store, &rec));
        match r {
            Ok(p) if a.images.len() == 1 => println!("{}", p.display()),
            Ok(p) => println!("{q} {}", p.display()),
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

pub(crate) fn unmount(g: &Globals, a: &ImageMountArgs) -> Result<i32> {
    let store = super::image_store(g)?;
    if a.images.is_empty() {
        bail!("image unmount: name at least one image");
    }
    let mut failed = false;
    for q in &a.images {
        let r = super::lookup_image(&store, q).and_then(|(rec, _)| {
            overlay::image_unmount(&store, &rec.id)?;
            Ok(rec.id)
        });
        match r {
            Ok(id) => println!("{}", id.hex()),
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
