//! The store as the registry client's [`BlobSink`] (pull) and [`BlobSource`] (push), and a
//! pull end to end: the registry streams verified blobs into one staging area, the image's
//! layers are unpacked there, and everything becomes visible at once with its name. A
//! failed or killed pull leaves nothing in the store.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use anyhow::{Context, Result};

use super::store::{LayerMeta, Staged, Store};
use super::{manifest, ops, stream};
use crate::front::digest::Digest;
use crate::front::reference::Reference;
use crate::front::registry::client::ClientOptions;
use crate::front::registry::config::Registries;
use crate::front::registry::manifest::{Descriptor, ImageManifest};
use crate::front::registry::pull::{BlobSink, PullEvent, PullOptions};
use crate::front::registry::push::BlobSource;

/// Pulled blobs go into one staging area. Downloads stream in parallel into scratch files
/// of their own; only the hand-over into the staging set takes the lock.
pub(crate) struct StagingSink<'s> {
    staged: Mutex<Staged<'s>>,
    seq: AtomicU64,
    /// Layer blob -> diff id, of the image being pulled: these are unpacked as they
    /// stream (see [`super::stream`]).
    diff_ids: Mutex<HashMap<Digest, Digest>>,
}

impl<'s> StagingSink<'s> {
    pub(crate) fn new(staged: Staged<'s>) -> StagingSink<'s> {
        StagingSink {
            staged: Mutex::new(staged),
            seq: AtomicU64::new(0),
            diff_ids: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn into_inner(self) -> Staged<'s> {
        self.staged.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Staged<'s>> {
        self.staged.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl BlobSink for StagingSink<'_> {
    fn has(&self, digest: &Digest) -> bool {
        self.lock().has_blob(digest)
    }

    fn put(&self, desc: &Descriptor, data: &mut dyn Read) -> Result<()> {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .lock()
            .scratch(&format!("dl-{n}-{}", desc.digest.short()));
        let diff_id = self
            .diff_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&desc.digest)
            .cloned();
        let target = match diff_id {
            Some(d) => self.lock().claim_streamed(&d)?,
            None => None,
        };
        let mut streamed = false;
        let res = (|| -> Result<()> {
            let f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .with_context(|| format!("create {}", tmp.display()))?;
            let mut w = io::BufWriter::with_capacity(128 * 1024, f);
            // The client's reader fails on a digest or size mismatch rather than ending:
            // a clean end of the copy means the bytes are the blob.
            match &target {
                None => {
                    io::copy(data, &mut w)?;
                }
                Some(t) => {
                    let (copied, unpacked) = stream::tee_unpack(data, &mut w, t);
                    copied?;
                    w.flush()?;
                    // Only a blob verified to its end makes the layer: the unpack checked
                    // the diff id, the copy the blob's digest.
                    match unpacked {
                        Ok(u) => {
                            if u.skipped_devices > 0 {
                                crate::logging::warn(&format!(
                                    "layer {}: {} device node(s) skipped (rootless)",
                                    desc.digest.short(),
                                    u.skipped_devices
                                ));
                            }
                            let meta = LayerMeta {
                                diff_id: u.diff_id,
                                tar_size: u.tar_size,
                                size: u.size,
                            };
                            self.lock().adopt_streamed(t, meta)?;
                            streamed = true;
                        }
                        Err(e) => {
                            crate::logging::debug(&format!(
                                "layer {}: unpacked again from its blob: {e:#}",
                                desc.digest.short()
                            ));
                            self.lock().abandon_streamed(t);
                        }
                    }
                }
            }
            w.flush()?;
            let f = w.into_inner().map_err(|e| e.into_error())?;
            // A layer staged makes the commit sync the whole filesystem (syncfs), this
            // blob with it: one journal commit rather than one per blob.
            if !streamed {
                f.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            if let Some(t) = &target {
                self.lock().abandon_streamed(t);
            }
            return Err(e);
        }
        self.lock().adopt_verified(&tmp, &desc.digest)
    }

    fn get(&self, digest: &Digest) -> Option<Vec<u8>> {
        self.lock().read_small_blob(digest).ok()
    }

    fn layers_of(&self, image: &ImageManifest, config: &[u8]) {
        // A config that does not parse, or does not match the manifest, is refused later
        // by `add_image`; nothing is unpacked early then.
        let Ok((config, _)) = manifest::parse_config(config) else {
            return;
        };
        if config.rootfs.diff_ids.len() != image.layers.len() {
            return;
        }
        let mut map = self.diff_ids.lock().unwrap_or_else(|e| e.into_inner());
        for (l, d) in image.layers.iter().zip(config.rootfs.diff_ids) {
            map.insert(l.digest.clone(), d);
        }
    }
}

/// Push reads blobs and manifests from the store.
pub(crate) struct StoreSource<'s>(pub(crate) &'s Store);

impl BlobSource for StoreSource<'_> {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + Send>> {
        let f: File = self.0.open_blob(digest)?;
        Ok(Box::new(io::BufReader::with_capacity(128 * 1024, f)))
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub(crate) struct PullResult {
    /// The name the image is recorded under (the candidate that served it).
    pub(crate) reference: Reference,
    pub(crate) id: Digest,
    /// What the reference resolved to (the index's digest when it named one).
    pub(crate) digest: Digest,
    /// False when the name already named this very image (Docker's "Image is up to date").
    pub(crate) changed: bool,
}

/// Pulls `input` into the store and names it: `repo:tag` when the reference has a tag,
/// and `repo@digest` as its repo digest. `extracting` is told when the downloads are done
/// and the layers are being unpacked.
pub(crate) fn pull(
    store: &Store,
    input: &str,
    conf: &Registries,
    client: &ClientOptions,
    opts: &PullOptions,
    events: &(dyn Fn(PullEvent) + Sync),
    extracting: &dyn Fn(),
) -> Result<PullResult> {
    let sink = StagingSink::new(store.begin()?);
    let (reference, pulled) =
        crate::front::registry::pull_image(input, conf, client, opts, &sink, events)?;
    extracting();
    let repo = reference.repository();
    let tags: Vec<String> = reference
        .tag()
        .filter(|_| reference.digest().is_none())
        .map(|t| format!("{repo}:{t}"))
        .into_iter()
        .collect();
    let repo_digests = vec![format!("{repo}@{}", pulled.digest)];
    // What the name (the tag, or the digest) named before this pull is committed.
    let before = ops::find(store, tags.first().unwrap_or(&repo_digests[0]))?.map(|(r, _)| r.id);
    let mut staged = sink.into_inner();
    let id = staged
        .add_image(&pulled.manifest.bytes, &tags, &repo_digests)
        .with_context(|| format!("{reference}"))?;
    staged.commit()?;
    Ok(PullResult {
        reference,
        changed: before.as_ref() != Some(&id),
        id,
        digest: pulled.digest,
    })
}

/// The local image `input` names, as Podman looks: an exact name, id or digest first, then
/// a short name under each candidate registry (`localhost/`, the unqualified-search
/// registries, `docker.io/library/`).
pub(crate) fn find_local(
    store: &Store,
    input: &str,
    conf: &Registries,
) -> Result<Option<(super::store::ImageRecord, ops::Matched)>> {
    if let Some(found) = ops::find(store, input)? {
        return Ok(Some(found));
    }
    let Ok(candidates) = crate::front::reference::short_name_candidates(input, &conf.search) else {
        return Ok(None);
    };
    for c in candidates {
        if let Some(found) = ops::find(store, &c.to_string())? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// What to hand the store's own lookups (`rmi`, `tag`): the stored name a short name
/// resolves to, else `input` unchanged (an id, a digest, or nothing: their error then).
pub(crate) fn canonical(store: &Store, input: &str, conf: &Registries) -> Result<String> {
    Ok(match find_local(store, input, conf)? {
        Some((_, ops::Matched::Name(n))) => n,
        Some((rec, ops::Matched::Id)) if ops::find(store, input)?.is_none() => rec.id.to_string(),
        _ => input.to_string(),
    })
}
