//! An image container's root filesystem, mounted by its monitor just before the runtime
//! creates the container: an overlay of the image's layers under the container's own
//! upper and work directories. The mount is made in a mount namespace private to the
//! monitor (a slave of the host's), so the host never sees it: when the monitor ends, by
//! its own exit or killed, nothing is left mounted. Where overlay cannot be mounted the
//! layers are copied into the container's directory once (with a warning).

use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use crate::front::containers::{OverlayDirs, Record, Store};
use crate::front::digest::Digest;
use crate::front::images::overlay::{self, RootfsKind};
use crate::front::images::store::{Store as ImageStore, StoreOptions};

/// Unmounts (lazily) when dropped: before the container's files are removed.
pub(crate) struct Mounted {
    target: Option<PathBuf>,
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(t) = self.target.take() {
            let _ = nix::mount::umount2(&t, MntFlags::MNT_DETACH);
        }
    }
}

/// The marker of a container whose layers were copied (overlay refused): its merged
/// directory is its root filesystem from then on.
const COPIED: &str = "copied";

/// Mounts the container's root filesystem if it comes from an image (None with --rootfs).
pub(crate) fn mount(store: &Store, rec: &Record) -> Result<Option<Mounted>> {
    if rec.image_id.is_empty() {
        return Ok(None);
    }
    let rootless = !nix::unistd::geteuid().is_root() || crate::state::in_user_namespace();
    let id = Digest::parse(&rec.image_id).map_err(|e| anyhow!("image id {}: {e}", rec.image_id))?;
    let images = ImageStore::open(
        &store.root,
        StoreOptions {
            rootless,
            ids: Default::default(),
        },
    )?;
    let image = images.image(&id)?.ok_or_else(|| {
        anyhow!(
            "image {} of the container is no longer in the store",
            id.short()
        )
    })?;
    let o = OverlayDirs::of(store, &rec.id);
    let top = o.merged.parent().unwrap_or(&o.merged).to_path_buf();
    for d in [&o.upper, &o.work, &o.merged] {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    // The overlay's root shows the upper directory's mode and owner.
    let mode = image
        .layers
        .last()
        .and_then(|l| std::fs::metadata(images.layer_dir(&l.diff_id)).ok())
        .map_or(0o755, |m| {
            std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777
        });
    std::fs::set_permissions(&o.upper, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    if top.join(COPIED).exists() {
        return Ok(Some(Mounted { target: None }));
    }
    // Root here (berth's user namespace included): a mount namespace of the monitor's own.
    if nix::unistd::geteuid().is_root() {
        nix::sched::unshare(CloneFlags::CLONE_NEWNS).map_err(|e| {
            anyhow!(
                "a mount namespace for the container's root filesystem: {}",
                e.desc()
            )
        })?;
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .map_err(|e| anyhow!("make / a slave mount: {}", e.desc()))?;
    }
    let volatile = rec.host_config.auto_remove;
    let own_layer = etc_layer(store, rec, &images, &image);
    match overlay::mount_rootfs_with(
        &images,
        &image,
        own_layer.as_deref(),
        &o.upper,
        &o.work,
        &o.merged,
        volatile,
    )? {
        RootfsKind::Overlay => Ok(Some(Mounted {
            target: Some(o.merged),
        })),
        RootfsKind::Copy => {
            std::fs::write(top.join(COPIED), b"")?;
            Ok(Some(Mounted { target: None }))
        }
    }
}

/// The /etc files the container gets bind-mounted (hostname, hosts, resolv.conf) as
/// empty files in a layer of the container's own above the image's, under the runroot
/// (Docker's init layer): the runtime finds its mount points there instead of making
/// them in the container's upper directory, which copies /etc up into it, a directory
/// made on the disk and removed with the container (a synchronous discard where the
/// disk is mounted with `discard`). Only where the image's /etc is a directory, and only
/// for files the image has as regular files or not at all (a symlink there keeps the
/// runtime's handling). None: no such layer, the runtime makes its mount points.
fn etc_layer(
    store: &Store,
    rec: &Record,
    images: &ImageStore,
    image: &crate::front::images::store::ImageRecord,
) -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    const FILES: [&str; 3] = ["hostname", "hosts", "resolv.conf"];
    let mounted: Vec<&str> = rec.spec["mounts"]
        .as_array()?
        .iter()
        .filter(|m| m["type"].as_str() == Some("bind"))
        .filter_map(|m| m["destination"].as_str()?.strip_prefix("/etc/"))
        .filter(|f| FILES.contains(f))
        .collect();
    if mounted.is_empty() {
        return None;
    }
    let layers: Vec<PathBuf> = image
        .layers
        .iter()
        .rev()
        .map(|l| images.layer_dir(&l.diff_id))
        .collect();
    // The topmost layer's entry decides what the overlay shows.
    let top_entry = |rel: &str| {
        layers
            .iter()
            .find_map(|l| std::fs::symlink_metadata(l.join(rel)).ok())
    };
    let etc = top_entry("etc")?;
    if !etc.is_dir() {
        return None;
    }
    let files: Vec<&str> = mounted
        .into_iter()
        .filter(|f| top_entry(&format!("etc/{f}")).is_none_or(|m| m.is_file()))
        .collect();
    if files.is_empty() {
        return None;
    }
    let layer = store.run_dir(&rec.id).join("etc-layer");
    let dir = layer.join("etc");
    let _ = std::fs::remove_dir_all(&layer);
    let made = (|| -> std::io::Result<()> {
        std::fs::DirBuilder::new().mode(0o755).create(&layer)?;
        std::fs::DirBuilder::new().create(&dir)?;
        // The merged /etc shows this layer's attributes: the image's (owner first: a
        // chown clears the set-id bits).
        std::os::unix::fs::chown(&dir, Some(etc.uid()), Some(etc.gid()))?;
        std::fs::set_permissions(&dir, PermissionsExt::from_mode(etc.mode() & 0o7777))?;
        for f in files {
            std::fs::File::create(dir.join(f))?;
        }
        Ok(())
    })();
    match made {
        Ok(()) => Some(layer),
        Err(_) => {
            let _ = std::fs::remove_dir_all(&layer);
            None
        }
    }
}
