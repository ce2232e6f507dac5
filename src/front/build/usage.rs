//! The build cache as `system df` and `system prune -a` see it: the entries of
//! `images/build-cache/` and the step layers that only they hold (a layer an image uses is
//! the image's, counted in the Images row).

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Result;

use super::CacheEntry;
use crate::front::digest::Digest;
use crate::front::images::store::Store;

/// The cache's entries and the bytes they and their own layers take.
pub(crate) struct Usage {
    pub(crate) entries: usize,
    pub(crate) size: u64,
}

fn entries(store: &Store) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(store.dir().join("build-cache"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let name = e.file_name().to_str()?.to_string();
                    // Only the cache's own names: a key's hex digits.
                    Digest::from_hex(&name)?;
                    Some((name, e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

pub(crate) fn usage(store: &Store) -> Result<Usage> {
    let list = entries(store);
    if list.is_empty() {
        // Nothing to count: spare reading every image record.
        return Ok(Usage {
            entries: 0,
            size: 0,
        });
    }
    let mut used = BTreeSet::new();
    for r in store.images()? {
        used.extend(r.layers.into_iter().map(|l| l.diff_id));
    }
    let mut size = 0;
    let mut counted = BTreeSet::new();
    for (_, p) in &list {
        let Ok(b) = std::fs::read(p) else { continue };
        size += b.len() as u64;
        let Ok(e) = serde_json::from_slice::<CacheEntry>(&b) else {
            continue;
        };
        for l in e.layers {
            if used.contains(&l.diff_id) || !counted.insert(l.diff_id.clone()) {
                continue;
            }
            if let Ok(m) = store.layer_meta(&l.diff_id) {
                size += m.size;
                size += std::fs::metadata(store.blob_path(&l.blob)).map_or(0, |m| m.len());
            }
        }
    }
    Ok(Usage {
        entries: list.len(),
        size,
    })
}

/// Removes every entry, then the layers no image holds: the keys removed and the bytes
/// freed.
pub(crate) fn prune(store: &Store) -> Result<(Vec<String>, u64)> {
    let _l = store.lock()?;
    let mut keys = Vec::new();
    let mut freed = 0;
    for (key, p) in entries(store) {
        let len = std::fs::metadata(&p).map_or(0, |m| m.len());
        if std::fs::remove_file(&p).is_ok() {
            freed += len;
            keys.push(key);
        }
    }
    freed += store.collect_garbage()?;
    Ok((keys, freed))
}
