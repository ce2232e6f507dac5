//! When a committed layer reaches the disk.
//!
//! Unpacking a layer leaves its files in the page cache; a `syncfs` before the commit made
//! them durable but cost a pull 0.2-0.6 s of waiting for the disk. Neither Docker's
//! overlay2 nor containers/storage (podman) sync layer data; containerd does only when
//! asked (`image_pull_with_sync_fs`), and each has had reports of layers left with empty
//! files after a power loss, recorded as complete and never repaired. berth keeps the
//! guarantee without the wait:
//!
//! - Before a commit makes its layers and blobs visible, it writes a marker
//!   `unsynced/<name>.json` (fsynced, as is its directory) naming them and the boot id.
//! - After the commit, a detached child (see [`crate::sys::files::spawn_syncer`]) runs
//!   `syncfs` and then removes the marker: a marker gone means its content is on disk.
//! - Until then the page cache holds the files, and it is authoritative for as long as
//!   the kernel runs: only the machine going down can lose them, and that changes the
//!   boot id. So a marker of the current boot is left alone (its syncer is at work, or
//!   the next commit's sweeps it), and a marker of an older boot means its content may be
//!   incomplete: the next command to open the store removes those layers and blobs and
//!   every image that needs them, with one warning naming the images to pull again.
//!
//! The store's metadata (records, names.json, layer meta.json) is written as before:
//! temp file, fsync, rename, directory fsync.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::fs;
use std::os::fd::OwnedFd;
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use serde::{Deserialize, Serialize};

use super::store::{short_link, write_atomic, Store};
use super::unpack;
use crate::front::digest::Digest;

/// Where the markers live, under the store's directory.
pub(crate) const DIR: &str = "unsynced";

/// A marker of the current boot older than this was left by a syncer that did not run
/// (killed, or its process could not fork): the next commit's syncer removes it too.
const ORPHANED_AFTER_SECS: u64 = 60;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Marker {
    pub(crate) boot_id: String,
    /// Diff ids (hex) of the layers the commit moved into the store.
    pub(crate) layers: Vec<String>,
    /// Blob digests (hex) it moved in.
    pub(crate) blobs: Vec<String>,
}

pub(crate) fn boot_id() -> String {
    crate::front::containers::runtime::boot_id()
}

/// Writes the marker of a commit about to make `layers` and `blobs` visible; returns its
/// file name.
pub(crate) fn mark(
    store_dir: &Path,
    name: &str,
    layers: &[&Digest],
    blobs: &[&Digest],
) -> Result<String> {
    let file = format!("{name}.json");
    let m = Marker {
        boot_id: boot_id(),
        layers: layers.iter().map(|d| d.hex().to_string()).collect(),
        blobs: blobs.iter().map(|d| d.hex().to_string()).collect(),
    };
    let dir = store_dir.join(DIR);
    write_atomic(&dir.join(&file), &crate::sys::json::to_vec(&m)?)?;
    fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("sync {}", dir.display()))?;
    Ok(file)
}

/// Starts the syncer that clears `file` once everything written so far is on disk, and
/// with it the markers of this boot its own syncer never cleared.
pub(crate) fn clear_after_sync(store_dir: &Path, file: &str) {
    let dir = store_dir.join(DIR);
    let mut names = vec![file.to_string()];
    if let Ok(rd) = fs::read_dir(&dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n == file || !n.ends_with(".json") {
                continue;
            }
            let old = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .is_some_and(|t| t.elapsed().is_ok_and(|d| d.as_secs() > ORPHANED_AFTER_SECS));
            if old && read(&dir.join(&n)).is_some_and(|m| m.boot_id == boot_id()) {
                names.push(n);
            }
        }
    }
    let names: Vec<CString> = names
        .into_iter()
        .filter_map(|n| CString::new(n).ok())
        .collect();
    let fd: nix::Result<OwnedFd> = nix::fcntl::open(
        &dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    let spawned = fd.and_then(|fd| crate::sys::files::spawn_syncer(&fd, &names));
    if let Err(e) = spawned {
        // The marker stays: the next commit's syncer clears it.
        crate::logging::debug(&format!("layer sync not started: {e}"));
    }
}

fn read(p: &Path) -> Option<Marker> {
    serde_json::from_slice(&fs::read(p).ok()?).ok()
}

/// The markers of an older boot, by file name.
fn stale(store_dir: &Path) -> Vec<(String, Marker)> {
    let Ok(rd) = fs::read_dir(store_dir.join(DIR)) else {
        return Vec::new();
    };
    let now = boot_id();
    let mut out = Vec::new();
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if !n.ends_with(".json") {
            continue;
        }
        match read(&e.path()) {
            Some(m) if m.boot_id != now => out.push((n, m)),
            Some(_) => {}
            // Torn or foreign: the marker was written before anything it names became
            // visible, so one that does not parse names nothing that could be visible.
            None => {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    out
}

/// Removes what markers of an older boot name, and the images that need it. Returns the
/// names (or ids) of the images removed.
pub(crate) fn recover(store: &Store) -> Result<Vec<String>> {
    if stale(store.dir()).is_empty() {
        return Ok(Vec::new());
    }
    let _lock = store.lock()?;
    // Read again under the lock: another command may have recovered meanwhile.
    let markers = stale(store.dir());
    let dir = store.dir();
    let mut layers = BTreeSet::new();
    for (_, m) in &markers {
        for hex in &m.layers {
            let Some(d) = Digest::from_hex(hex) else {
                continue;
            };
            let top = dir.join("layers").join(d.hex());
            // meta.json first: without it the layer is not in the store, whatever is left
            // of its tree if this is interrupted (the marker stays until the end).
            match fs::remove_file(top.join("meta.json")) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("remove layer {d}"));
                }
                _ => {}
            }
            let _ = fs::remove_file(dir.join("l").join(short_link(&d)));
            if top.exists() {
                unpack::remove_tree(&top)?;
            }
            layers.insert(d);
        }
        for hex in &m.blobs {
            if let Some(d) = Digest::from_hex(hex) {
                match fs::remove_file(store.blob_path(&d)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).with_context(|| format!("remove blob {d}"));
                    }
                    _ => {}
                }
            }
        }
    }
    let mut names = store.names()?;
    let mut removed = Vec::new();
    for rec in store.images()? {
        let whole = rec
            .layers
            .iter()
            .all(|l| store.has_layer(&l.diff_id) && store.has_blob(&l.blob))
            && store.has_blob(&rec.id)
            && store.has_blob(&rec.manifest);
        if whole {
            continue;
        }
        let named: Vec<String> = names
            .iter()
            .filter(|(_, e)| e.image == rec.id)
            .map(|(n, _)| n.clone())
            .collect();
        for n in &named {
            names.remove(n);
        }
        store.remove_record(&rec.id)?;
        removed.push(if named.is_empty() {
            rec.id.short().to_string()
        } else {
            named.join(", ")
        });
    }
    if !removed.is_empty() {
        store.write_names(&names)?;
    }
    for sub in ["records", "layers", "l", "blobs/sha256"] {
        if let Ok(d) = fs::File::open(dir.join(sub)) {
            let _ = d.sync_all();
        }
    }
    for (n, _) in &markers {
        let _ = fs::remove_file(dir.join(DIR).join(n));
    }
    if let Ok(d) = fs::File::open(dir.join(DIR)) {
        let _ = d.sync_all();
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::time::{Duration, Instant};

    use super::super::store::Store;
    use super::super::tar::tests::Build;
    use super::super::tests::{manifest_for, store, Tmp};
    use super::*;

    /// Commits a one-layer image named `name` whose file `f` holds `content`; returns its
    /// id, layer diff id and layer blob.
    fn image(s: &Store, name: &str, content: &str) -> (Digest, Digest) {
        let mut st = s.begin().unwrap();
        let tar = Build::new().file("f", content.as_bytes()).finish();
        let d = Digest::of(&tar);
        st.put_blob(&d, Some(tar.len() as u64), &mut &tar[..])
            .unwrap();
        let layers = vec![serde_json::json!({
            "mediaType": super::super::manifest::OCI_LAYER_TAR, "digest": d, "size": tar.len()
        })];
        let man = manifest_for(&mut st, std::slice::from_ref(&d), layers);
        let id = st.add_image(&man, &[name.to_string()], &[]).unwrap();
        st.commit().unwrap();
        (id, d)
    }

    fn markers(s: &Store) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(s.dir().join(DIR))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// The syncer a commit starts clears its marker (generous deadline: the disk is
    /// shared).
    fn wait_synced(s: &Store) {
        let end = Instant::now() + Duration::from_secs(120);
        while !markers(s).is_empty() {
            assert!(Instant::now() < end, "markers left: {:?}", markers(s));
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn plant(s: &Store, name: &str, boot: &str, layer: &Digest) {
        let m = Marker {
            boot_id: boot.to_string(),
            // The layer's tar is also its blob here (an uncompressed layer).
            layers: vec![layer.hex().to_string()],
            blobs: vec![layer.hex().to_string()],
        };
        fs::write(
            s.dir().join(DIR).join(format!("{name}.json")),
            crate::sys::json::to_vec(&m).unwrap(),
        )
        .unwrap();
    }

    #[test]
    fn a_commit_is_marked_until_its_syncer_has_flushed_it() {
        let t = Tmp::new("durable-sync");
        let s = store(&t);
        let (id, layer) = image(&s, "localhost/synced:1", "one\n");
        wait_synced(&s);
        assert!(s.has_layer(&layer));
        assert!(s.image(&id).unwrap().is_some());
        // A marker the syncer of an earlier commit never cleared (this boot, a minute
        // old) is cleared by the next commit's syncer, and names nothing to remove.
        plant(&s, "orphan", &boot_id(), &layer);
        let old = std::time::SystemTime::now() - Duration::from_secs(2 * ORPHANED_AFTER_SECS);
        fs::File::options()
            .write(true)
            .open(s.dir().join(DIR).join("orphan.json"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        image(&s, "localhost/next:1", "two\n");
        wait_synced(&s);
        let again = Store::open(&t.0.join("root"), Default::default()).unwrap();
        assert!(again.has_layer(&layer));
        assert_eq!(again.names().unwrap().len(), 2);
    }

    #[test]
    fn layers_committed_unsynced_in_an_older_boot_are_removed_with_their_images() {
        let t = Tmp::new("durable-boot");
        let s = store(&t);
        let (lost_id, lost) = image(&s, "localhost/lost:1", "lost\n");
        let (kept_id, kept) = image(&s, "localhost/kept:1", "kept\n");
        let (fresh_id, fresh) = image(&s, "localhost/fresh:1", "fresh\n");
        wait_synced(&s);
        // As if the machine went down right after `lost` was committed (its marker from
        // another boot), while `fresh` is still being flushed in this boot.
        plant(&s, "crashed", "00000000-0000-0000-0000-000000000000", &lost);
        plant(&s, "flushing", &boot_id(), &fresh);
        let s = Store::open(&t.0.join("root"), Default::default()).unwrap();
        assert!(!s.has_layer(&lost));
        assert!(!s.dir().join("layers").join(lost.hex()).exists());
        assert!(!s.dir().join("l").join(short_link(&lost)).exists());
        assert!(!s.has_blob(&lost));
        assert!(s.image(&lost_id).unwrap().is_none());
        let names = s.names().unwrap();
        assert!(!names.contains_key("localhost/lost:1"), "{names:?}");
        // The others are whole, the marker of this boot stays for its syncer.
        for (id, layer, name) in [
            (&kept_id, &kept, "localhost/kept:1"),
            (&fresh_id, &fresh, "localhost/fresh:1"),
        ] {
            assert!(s.image(id).unwrap().is_some());
            assert!(names.contains_key(name));
            assert_eq!(
                fs::read_to_string(s.layer_dir(layer).join("f")).unwrap(),
                name.trim_start_matches("localhost/")
                    .trim_end_matches(":1")
                    .to_string()
                    + "\n"
            );
        }
        assert_eq!(markers(&s), vec!["flushing.json".to_string()]);
        // The lost image can be committed again.
        let (again, layer) = image(&s, "localhost/lost:1", "lost\n");
        assert_eq!((again, layer), (lost_id, lost.clone()));
        assert!(s.has_layer(&lost));
    }
}
