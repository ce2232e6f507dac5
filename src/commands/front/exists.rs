//! `container exists` (Podman): exit 0 if the container exists, 1 if not, silently.

use anyhow::Result;

use crate::cli::front::ContainerArg;
use crate::front::containers::{is_no_such, Store};
use crate::front::{Exit, Globals};

pub(crate) fn exists(g: &Globals, a: &ContainerArg) -> Result<i32> {
    match Store::new(g).get(&a.container) {
        Ok(_) => Ok(0),
        Err(e) if is_no_such(&e) => Err(Exit {
            code: 1,
            msg: String::new(),
        }
        .into()),
        Err(e) => Err(e),
    }
}

/// `image exists` (Podman): exit 0 if the image is in the store, 1 if not, silently.
pub(crate) fn image_exists(g: &Globals, a: &crate::cli::front::ImageArg) -> Result<i32> {
    let store = super::image_store(g)?;
    if super::find_image(&store, &a.image)?.is_some() {
        Ok(0)
    } else {
        Err(Exit {
            code: 1,
            msg: String::new(),
        }
        .into())
    }
}
