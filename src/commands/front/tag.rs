//! `tag SOURCE TARGET...`: names an image (the name moves from any image that had it).

use anyhow::{bail, Result};

use crate::cli::front::TagArgs;
use crate::front::images::ops;
use crate::front::reference::Reference;
use crate::front::Globals;

pub(crate) fn tag(g: &Globals, a: &TagArgs) -> Result<i32> {
    let store = super::image_store(g)?;
    for t in &a.targets {
        let target = qualified_tag(t)?;
        let source = super::canonical_image(&store, &a.source)?;
        ops::tag(&store, &source, &target)?;
        if let Ok(Some((rec, _))) = super::find_image(&store, &source) {
            crate::front::events::image(&g.runroot, "tag", &rec.id.to_string(), t);
        }
    }
    Ok(0)
}

/// `name[:tag]` as the store keys it (`docker.io/library/busybox:latest`); a digest is
/// refused, as Docker.
pub(crate) fn qualified_tag(t: &str) -> Result<String> {
    let r = Reference::parse(t).map_err(|e| anyhow::anyhow!("{t}: {e}"))?;
    if r.digest().is_some() {
        bail!("{t}: refusing to create a tag with a digest reference");
    }
    Ok(format!(
        "{}:{}",
        r.repository(),
        r.tag().unwrap_or("latest")
    ))
}
