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
    match overlay::mount_rootfs_with(&images, &image, &o.upper, &o.work, &o.merged, volatile)? {
        RootfsKind::Overlay => Ok(Some(Mounted {
            target: Some(o.merged),
        })),
        RootfsKind::Copy => {
            std::fs::write(top.join(COPIED), b"")?;
            Ok(Some(Mounted { target: None }))
        }
    }
}
