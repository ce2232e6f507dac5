//! `commit CONTAINER [REPOSITORY[:TAG]]` (`-c`, `-m`, `-a`, `--pause`): the container's
//! changes as a new layer on its image; prints the new image's id.

use anyhow::Result;

use crate::cli::front::CommitArgs;
use crate::front::build::commit::{self, CommitOptions};
use crate::front::containers::Store;
use crate::front::Globals;

pub(crate) fn commit(g: &Globals, a: &CommitArgs) -> Result<i32> {
    super::unpack_allowed(g, "commit")?;
    let tags = match &a.image {
        Some(t) => vec![super::tag::qualified_tag(t)?],
        None => Vec::new(),
    };
    let containers = Store::new(g);
    let images = super::image_store(g)?;
    let id = commit::commit(
        &containers,
        &images,
        &a.container,
        &CommitOptions {
            changes: a.change.clone(),
            message: a.message.clone(),
            author: a.author.clone(),
            pause: a.pause,
            tags,
        },
    )?;
    println!("{id}");
    Ok(0)
}
