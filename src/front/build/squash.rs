//! `build --squash` (Docker's, experimental there): the layers the build made on top of
//! the target stage's base are merged into one, the base's layers kept. The built layers
//! are applied in order through an overlay of the base with a fresh upper directory —
//! deletions (whiteouts, opaque directories) by removing in the merged view, the rest
//! unpacked into it — so that the upper directory ends up exactly what the built image
//! changes relative to its base (a file made by one RUN and deleted by a later one is in
//! neither), and the diff of RUN makes it the layer. History keeps every entry: those of
//! the built steps become empty layers and a last entry carries the merged layer.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use serde_json::json;

use super::{step, Image};
use crate::front::images::store::{now_rfc3339, Store};
use crate::front::images::tar::{Reader, Writer};
use crate::front::images::unpack::{self, Privilege};

const WHITEOUT: &[u8] = b".wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

/// `img` with the layers above `base`'s merged into one (unchanged when it has none).
pub(crate) fn squash(store: &Store, rootless: bool, base: &Image, img: &Image) -> Result<Image> {
    let n = base.layers.len();
    let same_base = img.layers.len() >= n
        && img.layers[..n]
            .iter()
            .zip(&base.layers)
            .all(|(a, b)| a.diff_id == b.diff_id);
    anyhow::ensure!(
        same_base,
        "--squash: the image is not built on its base's layers"
    );
    if img.layers.len() == n {
        return Ok(img.clone());
    }
    let mut m = step::mount(store, base)?;
    let root = nix::fcntl::open(
        &m.merged,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .context("open the squash overlay")?;
    let privilege = if rootless {
        Privilege::Rootless
    } else {
        Privilege::Root
    };
    for (i, l) in img.layers[n..].iter().enumerate() {
        let filtered = m.staging.scratch(&format!("squash-{i}.tar"));
        deletions(root.as_fd(), store.open_blob(&l.blob)?, &filtered)
            .with_context(|| format!("--squash: layer {}", l.diff_id.short()))?;
        let opts = unpack::Options {
            privilege,
            ids: &Default::default(),
            lowers: &[],
        };
        unpack::unpack(std::fs::File::open(&filtered)?, &m.merged, None, &opts)
            .with_context(|| format!("--squash: layer {}", l.diff_id.short()))?;
        std::fs::remove_file(&filtered)?;
    }
    drop(root);
    m.unmount()?;
    let layer = step::store_layer(store, &m.upper, &base.layers, &BTreeSet::new())?;
    drop(m);

    let mut c = img.config.clone();
    let kept = base.config["history"].as_array().map_or(0, Vec::len);
    let now = now_rfc3339();
    if let Some(h) = c["history"].as_array_mut() {
        for e in h.iter_mut().skip(kept) {
            e["empty_layer"] = json!(true);
        }
        h.push(json!({
            "created": now,
            "comment": format!("merge {} to {}", img.id(), base.id()),
        }));
    }
    let mut diff_ids: Vec<_> = base.layers.iter().map(|l| json!(l.diff_id)).collect();
    diff_ids.push(json!(layer.diff_id));
    c["rootfs"] = json!({"type": "layers", "diff_ids": diff_ids});
    c["created"] = json!(now);
    let mut layers = base.layers.clone();
    layers.push(layer);
    Image::new(c, layers)
}

/// Applies the whiteouts and opaque directories of the layer tar `src` to the merged view
/// at `root`, and writes the rest of the tar to `rest` for unpacking.
fn deletions(root: BorrowedFd, src: std::fs::File, rest: &Path) -> Result<()> {
    let (_, plain) = crate::front::images::compress::decompress(src)?;
    let mut r = Reader::new(plain);
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(rest)
        .with_context(|| format!("create {}", rest.display()))?;
    let mut w = Writer::new(std::io::BufWriter::new(out));
    while let Some(h) = r.next()? {
        let rel = unpack::confine(&h.path)?;
        let name = rel.file_name().map(|n| n.as_bytes().to_vec());
        let parent = rel.parent().unwrap_or(Path::new(""));
        match name {
            Some(n) if n == OPAQUE => {
                // Everything below the directory that came before this layer goes.
                if let Some(d) = open_dir(root, parent) {
                    for child in children(d.as_fd())? {
                        unpack::remove_tree_at(d.as_fd(), &child)?;
                    }
                }
            }
            Some(n) if n.starts_with(WHITEOUT) => {
                let target = &n[WHITEOUT.len()..];
                if target.is_empty() || target.starts_with(WHITEOUT) {
                    continue;
                }
                if let Some(d) = open_dir(root, parent) {
                    unpack::remove_tree_at(d.as_fd(), OsStr::from_bytes(target))?;
                }
            }
            _ => {
                let mut data = r.data();
                w.entry(&h, Some(&mut data as &mut dyn Read))?;
            }
        }
    }
    let bw = w.finish()?;
    bw.into_inner()
        .map_err(|e| e.into_error())?
        .sync_all()
        .context("write the layer's entries")?;
    Ok(())
}

/// The directory `rel` below `root`, walked without following anything; None when it is
/// not there as a directory (a whiteout under it has nothing to remove).
fn open_dir(root: BorrowedFd, rel: &Path) -> Option<OwnedFd> {
    let mut fd = nix::unistd::dup(root).ok()?;
    for c in rel.components() {
        fd = nix::fcntl::openat(
            fd.as_fd(),
            c.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()?;
    }
    Some(fd)
}

fn children(dir: BorrowedFd) -> Result<Vec<std::ffi::OsString>> {
    let d = nix::dir::Dir::from_fd(nix::unistd::dup(dir)?)?;
    let mut v = Vec::new();
    for e in d.into_iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            v.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    Ok(v)
}
