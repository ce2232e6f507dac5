//! Images out of build results and containers: `commit_image` records a built image
//! (config blob, manifest, layers already in the store) with its names; `commit` makes
//! an image of a container: its image's layers plus one layer of what the container
//! changed (its overlay upper directory, through the same diff as RUN), with the
//! container's configuration and `--change` instructions.

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use super::Image;
use crate::front::containers::{self, runtime as rt, Live, OverlayDirs};
use crate::front::digest::Digest;
use crate::front::images::manifest;
use crate::front::images::store::Store;

/// Records `img` in the store (its layers are stored already) under `tags`.
pub(crate) fn commit_image(store: &Store, img: &Image, tags: &[String]) -> Result<Digest> {
    let mut st = store.begin()?;
    let cdigest = img.id();
    st.put_blob(&cdigest, Some(img.bytes.len() as u64), &mut &img.bytes[..])?;
    let layers: Vec<Value> = img
        .layers
        .iter()
        .map(|l| json!({"mediaType": l.media_type, "digest": l.blob, "size": l.blob_size}))
        .collect();
    let man = json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": manifest::OCI_CONFIG, "digest": cdigest, "size": img.bytes.len()},
        "layers": layers,
    });
    let id = st.add_image(&serde_json::to_vec(&man)?, tags, &[])?;
    st.commit()?;
    Ok(id)
}

pub(crate) struct CommitOptions {
    pub(crate) changes: Vec<String>,
    pub(crate) message: Option<String>,
    pub(crate) author: Option<String>,
    pub(crate) pause: bool,
    pub(crate) tags: Vec<String>,
}

/// `commit CONTAINER`: returns the new image's id.
pub(crate) fn commit(
    containers: &containers::Store,
    store: &Store,
    q: &str,
    o: &CommitOptions,
) -> Result<Digest> {
    let c = containers.get(q)?;
    let rec = &c.rec;
    if rec.image_id.is_empty() {
        bail!("container {q} runs a root filesystem directory (--rootfs), not an image: nothing to commit onto");
    }
    let base =
        Digest::parse(&rec.image_id).map_err(|e| anyhow!("image id {}: {e}", rec.image_id))?;
    let base_rec = store.image(&base)?.ok_or_else(|| {
        anyhow!(
            "image {} of container {q} is no longer in the store",
            base.short()
        )
    })?;
    let bytes = store.read_small_blob(&base)?;
    let config: Value = serde_json::from_slice(&bytes)?;
    let dirs = OverlayDirs::of(containers, &rec.id);
    if dirs
        .merged
        .parent()
        .is_some_and(|p| p.join("copied").exists())
    {
        bail!("container {q} has a copied root filesystem (overlay was refused): commit needs its overlay upper directory");
    }
    if !dirs.upper.is_dir() {
        bail!("container {q} has no root filesystem changes recorded yet (never started)");
    }
    // The container's own configuration, as Docker's commit takes it, then --change.
    let mut cc = json!({
        "Env": rec.config.env,
        "Cmd": rec.config.cmd,
        "Entrypoint": rec.config.entrypoint,
        "WorkingDir": rec.config.working_dir,
        "User": rec.config.user,
        "Labels": rec.config.labels,
    });
    for k in [
        "ExposedPorts",
        "Volumes",
        "StopSignal",
        "Shell",
        "Healthcheck",
        "OnBuild",
    ] {
        if let Some(v) = config["config"].get(k) {
            cc[k] = v.clone();
        }
    }
    for ch in &o.changes {
        crate::front::images::archive::apply_change(&mut cc, ch)?;
    }
    let paused = if o.pause && containers.derive(&c) == Live::Running {
        rt::pause(&containers.rt, &rec.id).context("pause the container for the commit")?;
        true
    } else {
        false
    };
    let targets: Vec<String> = rec.spec["mounts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|m| m["destination"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    // The runtime's mount points are not content: the diff leaves them out.
    let lowers: Vec<_> = base_rec
        .layers
        .iter()
        .rev()
        .map(|l| store.layer_dir(&l.diff_id))
        .collect();
    let layer = super::step::layer_without_mount_points(
        store,
        &dirs.upper,
        &base_rec.layers,
        &lowers,
        &targets,
    );
    if paused {
        let _ = rt::resume(&containers.rt, &rec.id);
    }
    let layer = layer?;
    let mut img = Image::new(config, base_rec.layers.clone())?;
    img.config["config"] = cc;
    if let Some(a) = &o.author {
        img.config["author"] = json!(a);
    }
    let mut created_by = vec![rec.path.clone()];
    created_by.extend(rec.args.iter().cloned());
    let mut next = img.next(&created_by.join(" "), Some(layer))?;
    if let Some(m) = &o.message {
        if let Some(h) = next.config["history"]
            .as_array_mut()
            .and_then(|a| a.last_mut())
        {
            h["comment"] = json!(m);
        }
        next = Image::new(next.config, next.layers)?;
    }
    commit_image(store, &next, &o.tags)
}
