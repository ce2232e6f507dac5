//! The image store under `--root`:
//!
//! ```text
//! images/
//!   lock                    flock: held for record and name changes (readers take none)
//!   blobs/sha256/<hex>      content-addressed blobs: manifests, configs, layer blobs
//!   layers/<hex>/diff       a layer unpacked once, keyed by its diff id
//!   layers/<hex>/meta.json  its uncompressed tar length and content size
//!   l/<26 hex>              short symlinks to layers/<hex>/diff (overlay lowerdir option)
//!   records/<hex>.json      an image: keyed by its config digest (the image id)
//!   names.json              name -> image id and manifest digest (Docker's tags)
//!   tmp/<op>/               staging of one operation; nothing there is visible
//!   mounts/<hex>/merged     `image mount` points
//! ```
//!
//! Everything becomes visible by rename(2) after it was verified (blob digests while
//! streaming, layer diff ids while unpacking), so a killed writer leaves only a staging
//! directory that the next `Store::open` removes. Two writers of the same blob or layer
//! both succeed: the second rename replaces identical content, or finds the layer there.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{bail, Context, Result};
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::durable;
use super::manifest::{self, Document, MAX_DOCUMENT};
use super::unpack::{self, IdMap, Privilege};
use crate::front::digest::{Digest, Hashing};

/// Who the store belongs to: rootless stores write `user.overlay.*` whiteouts, skip device
/// nodes, and own files through the id map.
#[derive(Clone, Debug, Default)]
pub(crate) struct StoreOptions {
    pub(crate) rootless: bool,
    pub(crate) ids: IdMap,
}

pub(crate) struct Store {
    dir: PathBuf,
    privilege: Privilege,
    ids: IdMap,
}

/// One layer of an image: its content (diff id) and the blob it came from.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LayerRef {
    pub(crate) diff_id: Digest,
    pub(crate) blob: Digest,
    pub(crate) media_type: String,
    pub(crate) blob_size: u64,
}

/// An image as the store records it; names live in names.json.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    /// The config digest.
    pub(crate) id: Digest,
    /// The manifest the layers below come from.
    pub(crate) manifest: Digest,
    /// Every manifest committed for this config (the same image compressed differently).
    #[serde(default)]
    pub(crate) manifests: Vec<Digest>,
    pub(crate) layers: Vec<LayerRef>,
    #[serde(default)]
    pub(crate) repo_digests: Vec<String>,
    /// When the image entered this store (RFC 3339).
    pub(crate) added: String,
    #[serde(default)]
    pub(crate) last_tag_time: Option<String>,
    /// Unpacked content bytes of all layers.
    pub(crate) size: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct NameEntry {
    pub(crate) image: Digest,
    pub(crate) manifest: Digest,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct LayerMeta {
    pub(crate) diff_id: Digest,
    /// Length of the uncompressed tar (what a docker-archive holds).
    pub(crate) tar_size: u64,
    /// Bytes of regular file content.
    pub(crate) size: u64,
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The prefix of a staging directory whose lock is not held yet (see [`Store::begin`]).
const FRESH: &str = ".fresh-";

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{}-{nanos:x}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) fn now_rfc3339() -> String {
    crate::logging::rfc3339(std::time::SystemTime::now())
}

/// The short overlay link name of a layer.
pub(crate) fn short_link(diff_id: &Digest) -> &str {
    &diff_id.hex()[..26]
}

fn mkdir(p: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(p)
        .with_context(|| format!("create {}", p.display()))
}

/// Writes `data` to `path` atomically: a unique temp file beside it, fsync, rename.
pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".tmp-{}", unique()));
    let r = (|| -> io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r.with_context(|| format!("write {}", path.display()))
}

impl Store {
    /// Opens (creating if needed) the store under the people face's `--root`, and removes
    /// what killed operations left in its staging area.
    pub(crate) fn open(root: &Path, opts: StoreOptions) -> Result<Store> {
        let dir = root.join("images");
        for sub in [
            "blobs/sha256",
            "layers",
            "l",
            "records",
            "tmp",
            "mounts",
            durable::DIR,
        ] {
            mkdir(&dir.join(sub))?;
        }
        let s = Store {
            dir,
            privilege: if opts.rootless {
                Privilege::Rootless
            } else {
                Privilege::Root
            },
            ids: opts.ids,
        };
        s.clean_stale_staging();
        let removed = durable::recover(&s)
            .context("remove the layers the machine went down before writing")?;
        if !removed.is_empty() {
            crate::logging::warn(&format!(
                "the machine went down before these images reached the disk; they were \
                 removed, pull them again: {}",
                removed.join("; ")
            ));
        }
        Ok(s)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn rootless(&self) -> bool {
        self.privilege == Privilege::Rootless
    }

    pub(crate) fn lock(&self) -> Result<Flock<File>> {
        let p = self.dir.join("lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&p)
            .with_context(|| format!("open {}", p.display()))?;
        Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow::anyhow!("lock {}: {e}", p.display()))
    }

    fn clean_stale_staging(&self) {
        let Ok(rd) = fs::read_dir(self.dir.join("tmp")) else {
            return;
        };
        let old = |e: &fs::DirEntry| {
            e.metadata().is_ok_and(|m| {
                m.modified()
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|d| d.as_secs() > 60)
            })
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_name().to_string_lossy().starts_with(FRESH) {
                // Being set up by a live writer, unless a killed one left it long ago.
                if old(&e) {
                    let _ = unpack::remove_tree(&p);
                }
                continue;
            }
            let Ok(f) = File::open(p.join(".lock")) else {
                // A staging dir without its lock file was killed while being created.
                if old(&e) {
                    let _ = unpack::remove_tree(&p);
                }
                continue;
            };
            if let Ok(l) = Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                let _ = unpack::remove_tree(&p);
                drop(l);
            }
        }
    }

    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(d.hex())
    }

    pub(crate) fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    pub(crate) fn open_blob(&self, d: &Digest) -> Result<File> {
        File::open(self.blob_path(d)).with_context(|| format!("blob {d} not in the store"))
    }

    /// Streams a blob into the store, verifying its digest (and size when known) before
    /// it becomes visible. A blob already present is not read again.
    ///
    /// Blobs put directly are content-addressed and harmless, but until an image refers
    /// to them `image prune` may remove them: a pull should stage its blobs with
    /// [`Store::begin`] and commit them together with the image instead.
    pub(crate) fn put_blob(&self, d: &Digest, size: Option<u64>, r: &mut dyn Read) -> Result<()> {
        if self.has_blob(d) {
            return Ok(());
        }
        let mut st = self.begin()?;
        st.put_blob(d, size, r)?;
        st.publish_blobs()?;
        Ok(())
    }

    /// Reads a small blob (manifest, config) whole, refusing more than 4 MiB.
    pub(crate) fn read_small_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        read_small(&self.blob_path(d), d)
    }

    pub(crate) fn begin(&self) -> Result<Staged<'_>> {
        // Made under a name the stale-staging sweep leaves alone, and renamed once its
        // lock is held: a sweep by another process must never find it unlocked.
        let name = unique();
        spread_staging(&self.dir.join("tmp"));
        let fresh = self.dir.join("tmp").join(format!("{FRESH}{name}"));
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&fresh)
            .with_context(|| format!("create {}", fresh.display()))?;
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(fresh.join(".lock"))?;
        let lock = Flock::lock(f, FlockArg::LockExclusive)
            .map_err(|(_, e)| anyhow::anyhow!("lock staging directory: {e}"))?;
        let dir = self.dir.join("tmp").join(name);
        fs::rename(&fresh, &dir).with_context(|| format!("rename {}", fresh.display()))?;
        Ok(Staged {
            store: self,
            dir,
            _lock: lock,
            blobs: BTreeSet::new(),
            layers: BTreeMap::new(),
            streaming: BTreeSet::new(),
            images: Vec::new(),
        })
    }

    /// Records an image whose manifest, config and layer blobs are in the store: unpacks
    /// the layers not yet unpacked (diff ids verified), then makes the record and the
    /// tags visible. `tags` are qualified `repo:tag` names; `repo_digests` are
    /// `repo@sha256:...` (the digest the image was pulled by). Returns the image id.
    pub(crate) fn commit_image(
        &self,
        manifest: &[u8],
        tags: &[String],
        repo_digests: &[String],
    ) -> Result<Digest> {
        let mut st = self.begin()?;
        let id = st.add_image(manifest, tags, repo_digests)?;
        st.commit()?;
        Ok(id)
    }

    pub(crate) fn layer_dir(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join("layers").join(diff_id.hex()).join("diff")
    }

    pub(crate) fn has_layer(&self, diff_id: &Digest) -> bool {
        self.dir
            .join("layers")
            .join(diff_id.hex())
            .join("meta.json")
            .is_file()
    }

    pub(crate) fn layer_meta(&self, diff_id: &Digest) -> Result<LayerMeta> {
        let p = self
            .dir
            .join("layers")
            .join(diff_id.hex())
            .join("meta.json");
        let b = fs::read(&p).with_context(|| format!("layer {diff_id} is not in the store"))?;
        serde_json::from_slice(&b).with_context(|| format!("corrupt {}", p.display()))
    }

    fn record_path(&self, id: &Digest) -> PathBuf {
        self.dir.join("records").join(format!("{}.json", id.hex()))
    }

    pub(crate) fn image(&self, id: &Digest) -> Result<Option<ImageRecord>> {
        match fs::read(self.record_path(id)) {
            Ok(b) => Ok(Some(
                serde_json::from_slice(&b).with_context(|| format!("corrupt record of {id}"))?,
            )),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("read record of {id}")),
        }
    }

    /// Every image, sorted by id; records removed while listing are skipped.
    pub(crate) fn images(&self) -> Result<Vec<ImageRecord>> {
        let mut out = Vec::new();
        for e in fs::read_dir(self.dir.join("records"))? {
            let e = e?;
            let n = e.file_name();
            let Some(hex) = n.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let Some(id) = Digest::from_hex(hex) else {
                continue;
            };
            if let Some(r) = self.image(&id)? {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    pub(crate) fn names(&self) -> Result<BTreeMap<String, NameEntry>> {
        match fs::read(self.dir.join("names.json")) {
            Ok(b) => serde_json::from_slice(&b).context("corrupt names.json"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).context("read names.json"),
        }
    }

    /// Writes names.json; the caller holds the store lock.
    pub(crate) fn write_names(&self, names: &BTreeMap<String, NameEntry>) -> Result<()> {
        write_atomic(
            &self.dir.join("names.json"),
            &crate::sys::json::to_vec_pretty(names)?,
        )
    }

    /// Writes a record; the caller holds the store lock.
    pub(crate) fn write_record(&self, r: &ImageRecord) -> Result<()> {
        write_atomic(
            &self.record_path(&r.id),
            &crate::sys::json::to_vec_pretty(r)?,
        )
    }

    pub(crate) fn remove_record(&self, id: &Digest) -> Result<()> {
        match fs::remove_file(self.record_path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("remove record of {id}"))
            }
            _ => Ok(()),
        }
    }

    /// The parsed configuration of an image (its raw JSON too, for inspect).
    pub(crate) fn config(&self, id: &Digest) -> Result<(manifest::Config, serde_json::Value)> {
        manifest::parse_config(&self.read_small_blob(id)?)
    }

    /// Removes blobs and layers no image refers to; the caller holds the store lock.
    /// Returns the bytes freed.
    pub(crate) fn collect_garbage(&self) -> Result<u64> {
        let mut blobs = BTreeSet::new();
        let mut layers = BTreeSet::new();
        for r in self.images()? {
            blobs.insert(r.id.clone());
            for m in r.manifests.iter().chain([&r.manifest]) {
                blobs.insert(m.clone());
                if let Ok(b) = self.read_small_blob(m) {
                    if let Ok(Document::Manifest(man)) = manifest::parse_document(&b) {
                        blobs.extend(man.layers.into_iter().map(|l| l.digest));
                    }
                }
            }
            for l in &r.layers {
                blobs.insert(l.blob.clone());
                layers.insert(l.diff_id.clone());
            }
        }
        let mut freed = 0;
        for e in fs::read_dir(self.dir.join("blobs/sha256"))?.flatten() {
            let keep = e
                .file_name()
                .to_str()
                .and_then(Digest::from_hex)
                .is_some_and(|d| blobs.contains(&d));
            if !keep {
                freed += e.metadata().map(|m| m.len()).unwrap_or(0);
                let _ = fs::remove_file(e.path());
            }
        }
        for e in fs::read_dir(self.dir.join("layers"))?.flatten() {
            let Some(d) = e.file_name().to_str().and_then(Digest::from_hex) else {
                continue;
            };
            if layers.contains(&d) {
                continue;
            }
            freed += self.layer_meta(&d).map(|m| m.size).unwrap_or(0);
            let _ = fs::remove_file(self.dir.join("l").join(short_link(&d)));
            // Renamed out of the way first, so no half-removed layer is ever visible.
            let gone = self.dir.join("tmp").join(format!("gc-{}", unique()));
            if fs::rename(e.path(), &gone).is_ok() {
                unpack::remove_tree(&gone)?;
            }
        }
        Ok(freed)
    }
}

fn read_small(p: &Path, d: &Digest) -> Result<Vec<u8>> {
    let f = File::open(p).with_context(|| format!("blob {d} not in the store"))?;
    let mut b = Vec::new();
    f.take(MAX_DOCUMENT + 1).read_to_end(&mut b)?;
    if b.len() as u64 > MAX_DOCUMENT {
        bail!("{d}: document exceeds the 4 MiB limit");
    }
    Ok(b)
}

/// A layer being unpacked while its blob downloads (see [`Staged::claim_streamed`]).
pub(crate) struct StreamTarget {
    /// Holds `diff/` (the tree) and, once adopted, `meta.json`.
    pub(crate) top: PathBuf,
    pub(crate) diff_id: Digest,
    pub(crate) privilege: Privilege,
    pub(crate) ids: IdMap,
}

/// One operation's staging area: blobs and layers verified and unpacked here, and images
/// queued; `commit` moves them into the store and writes records and names under the
/// store lock. Dropped without commit, everything staged is removed: a failed pull or
/// load leaves nothing in the store.
pub(crate) struct Staged<'s> {
    store: &'s Store,
    dir: PathBuf,
    _lock: Flock<File>,
    blobs: BTreeSet<Digest>,
    layers: BTreeMap<Digest, LayerMeta>,
    /// Diff ids being unpacked while their blob downloads (one blob each).
    streaming: BTreeSet<Digest>,
    images: Vec<(ImageRecord, Vec<String>)>,
}

impl Drop for Staged<'_> {
    fn drop(&mut self) {
        let _ = unpack::remove_tree(&self.dir);
    }
}

impl<'s> Staged<'s> {
    pub(crate) fn store(&self) -> &'s Store {
        self.store
    }

    fn staged_blob(&self, d: &Digest) -> PathBuf {
        self.dir.join(format!("blob-{}", d.hex()))
    }

    /// A scratch path inside the staging area (same filesystem as the store).
    pub(crate) fn scratch(&self, name: &str) -> PathBuf {
        self.dir.join(format!("x-{name}"))
    }

    pub(crate) fn has_blob(&self, d: &Digest) -> bool {
        self.blobs.contains(d) || self.store.has_blob(d)
    }

    pub(crate) fn blob_path(&self, d: &Digest) -> PathBuf {
        if self.blobs.contains(d) {
            self.staged_blob(d)
        } else {
            self.store.blob_path(d)
        }
    }

    pub(crate) fn open_blob(&self, d: &Digest) -> Result<File> {
        File::open(self.blob_path(d)).with_context(|| format!("blob {d} not found"))
    }

    pub(crate) fn read_small_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        read_small(&self.blob_path(d), d)
    }

    /// Streams a blob into the staging area, verifying digest and size. Present already
    /// (staged or in the store): nothing is read.
    pub(crate) fn put_blob(
        &mut self,
        d: &Digest,
        size: Option<u64>,
        r: &mut dyn Read,
    ) -> Result<()> {
        if self.has_blob(d) {
            return Ok(());
        }
        let tmp = self.dir.join(format!("in-{}", unique()));
        let res = (|| -> Result<()> {
            let f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            let mut w = Hashing::new(io::BufWriter::with_capacity(128 * 1024, f));
            let limit = size.map_or(u64::MAX, |s| s + 1);
            io::copy(&mut r.take(limit), &mut w)?;
            let (got, n, bw) = w.finish();
            if let Some(s) = size {
                if n != s {
                    bail!("blob {d}: size {n} does not match the expected {s}");
                }
            }
            if &got != d {
                bail!("blob digest mismatch: expected {d}, got {got}");
            }
            let f = bw.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            Ok(())
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        self.adopt_verified(&tmp, d)
    }

    /// Takes a file whose digest the caller computed while writing it (inside this
    /// staging area) as the blob `d`.
    pub(crate) fn adopt_verified(&mut self, file: &Path, d: &Digest) -> Result<()> {
        if self.has_blob(d) {
            let _ = fs::remove_file(file);
            return Ok(());
        }
        fs::rename(file, self.staged_blob(d))?;
        self.blobs.insert(d.clone());
        Ok(())
    }

    /// Blobs only (Store::put_blob): straight into the store.
    fn publish_blobs(&mut self) -> Result<()> {
        for d in &self.blobs {
            fs::rename(self.staged_blob(d), self.store.blob_path(d))?;
        }
        sync_dir(&self.store.dir.join("blobs/sha256"));
        Ok(())
    }

    fn layer_staging(&self, diff_id: &Digest) -> PathBuf {
        self.dir.join(format!("layer-{}", diff_id.hex()))
    }

    /// Where a layer's unpacked tree is: staged by this operation, or in the store.
    fn layer_diff(&self, diff_id: &Digest) -> PathBuf {
        if self.layers.contains_key(diff_id) {
            self.layer_staging(diff_id).join("diff")
        } else {
            self.store.layer_dir(diff_id)
        }
    }

    /// Where to unpack `diff_id` while its blob downloads, or None when it is staged,
    /// stored or being unpacked already. The caller unpacks into `diff` of the returned
    /// directory, then hands it over with [`Staged::adopt_streamed`] or gives it up with
    /// [`Staged::abandon_streamed`].
    pub(crate) fn claim_streamed(&mut self, diff_id: &Digest) -> Result<Option<StreamTarget>> {
        if self.layers.contains_key(diff_id)
            || self.store.has_layer(diff_id)
            || !self.streaming.insert(diff_id.clone())
        {
            return Ok(None);
        }
        let top = self.scratch(&format!("stream-{}", diff_id.hex()));
        if let Err(e) = mkdir(&top.join("diff")) {
            self.streaming.remove(diff_id);
            return Err(e);
        }
        Ok(Some(StreamTarget {
            top,
            diff_id: diff_id.clone(),
            privilege: self.store.privilege,
            ids: self.store.ids.clone(),
        }))
    }

    /// Takes a layer unpacked (and verified against its diff id) while it downloaded.
    pub(crate) fn adopt_streamed(&mut self, t: &StreamTarget, meta: LayerMeta) -> Result<()> {
        self.streaming.remove(&t.diff_id);
        write_atomic(&t.top.join("meta.json"), &crate::sys::json::to_vec(&meta)?)?;
        fs::rename(&t.top, self.layer_staging(&t.diff_id))
            .with_context(|| format!("stage layer {}", t.diff_id))?;
        self.layers.insert(t.diff_id.clone(), meta);
        Ok(())
    }

    /// Gives up a layer unpacked while it downloaded: [`Staged::stage_layer`] unpacks it
    /// from its blob later (and reports what is wrong with it, if anything is).
    pub(crate) fn abandon_streamed(&mut self, t: &StreamTarget) {
        self.streaming.remove(&t.diff_id);
        let _ = unpack::remove_tree(&t.top);
    }

    /// Unpacks the layer blob `blob` as `diff_id` unless present; `lowers` are the diff
    /// ids below it in the image, bottom first.
    pub(crate) fn stage_layer(
        &mut self,
        blob: &Digest,
        diff_id: &Digest,
        lowers: &[Digest],
    ) -> Result<LayerMeta> {
        if let Some(m) = self.layers.get(diff_id) {
            return Ok(m.clone());
        }
        if self.store.has_layer(diff_id) {
            return self.store.layer_meta(diff_id);
        }
        let top = self.layer_staging(diff_id);
        let diff = top.join("diff");
        mkdir(&diff)?;
        let lower_dirs: Vec<PathBuf> = lowers.iter().rev().map(|l| self.layer_diff(l)).collect();
        let opts = unpack::Options {
            privilege: self.store.privilege,
            ids: &self.store.ids,
            lowers: &lower_dirs,
        };
        let src = io::BufReader::with_capacity(128 * 1024, self.open_blob(blob)?);
        let u = unpack::unpack(src, &diff, Some(diff_id), &opts)
            .with_context(|| format!("layer {}", blob.short()))?;
        if u.skipped_devices > 0 {
            crate::logging::warn(&format!(
                "layer {}: {} device node(s) skipped (rootless)",
                blob.short(),
                u.skipped_devices
            ));
        }
        let meta = LayerMeta {
            diff_id: diff_id.clone(),
            tar_size: u.tar_size,
            size: u.size,
        };
        write_atomic(&top.join("meta.json"), &crate::sys::json::to_vec(&meta)?)?;
        self.layers.insert(diff_id.clone(), meta.clone());
        Ok(meta)
    }

    /// Queues an image whose manifest is `manifest` (an image manifest, not an index):
    /// its config and layer blobs must be staged or in the store. Layers are unpacked and
    /// verified now; nothing is visible before `commit`.
    pub(crate) fn add_image(
        &mut self,
        manifest_bytes: &[u8],
        tags: &[String],
        repo_digests: &[String],
    ) -> Result<Digest> {
        let man = match manifest::parse_document(manifest_bytes)? {
            Document::Manifest(m) => m,
            Document::Index(_) => {
                bail!("an image index is not an image: choose a platform's manifest")
            }
        };
        let man_digest = Digest::of(manifest_bytes);
        if !self.has_blob(&man_digest) {
            self.put_blob(&man_digest, None, &mut &manifest_bytes[..])?;
        }
        let id = man.config.digest.clone();
        let config_bytes = self
            .read_small_blob(&id)
            .with_context(|| format!("image configuration {id}"))?;
        if config_bytes.len() as u64 != man.config.size {
            bail!(
                "image configuration {id}: size {} does not match the manifest's {}",
                config_bytes.len(),
                man.config.size
            );
        }
        let (config, _) = manifest::parse_config(&config_bytes)?;
        if config.rootfs.diff_ids.len() != man.layers.len() {
            bail!(
                "manifest has {} layers but the configuration lists {} diff ids",
                man.layers.len(),
                config.rootfs.diff_ids.len()
            );
        }
        let mut layers = Vec::new();
        let mut size = 0;
        for (i, (l, diff_id)) in man.layers.iter().zip(&config.rootfs.diff_ids).enumerate() {
            if !self.has_blob(&l.digest) {
                bail!("layer blob {} is missing", l.digest);
            }
            let actual = fs::metadata(self.blob_path(&l.digest))?.len();
            if actual != l.size {
                bail!(
                    "layer blob {}: size {actual} does not match the manifest's {}",
                    l.digest,
                    l.size
                );
            }
            let meta = self.stage_layer(&l.digest, diff_id, &config.rootfs.diff_ids[..i])?;
            size += meta.size;
            layers.push(LayerRef {
                diff_id: diff_id.clone(),
                blob: l.digest.clone(),
                media_type: l.media_type.clone(),
                blob_size: l.size,
            });
        }
        let now = now_rfc3339();
        let rec = ImageRecord {
            id: id.clone(),
            manifest: man_digest.clone(),
            manifests: vec![man_digest],
            layers,
            repo_digests: repo_digests.to_vec(),
            added: now.clone(),
            last_tag_time: (!tags.is_empty()).then_some(now),
            size,
        };
        self.images.push((rec, tags.to_vec()));
        Ok(id)
    }

    /// Makes everything staged visible: blobs and layers by rename, then records and
    /// names under the store lock. Returns the ids of the images committed.
    pub(crate) fn commit(mut self) -> Result<Vec<Digest>> {
        let store = self.store;
        // Under the lock: a concurrent prune must not collect what this commit is about
        // to refer to.
        let _lock = store.lock()?;
        if self.layers.is_empty() {
            // Blobs alone were each fsynced as they were staged.
            return self.publish();
        }
        // The unpacked files (and streamed blobs) may still be in the page cache only:
        // marked before they become visible, flushed after (see durable.rs).
        let layers: Vec<&Digest> = self.layers.keys().collect();
        let blobs: Vec<&Digest> = self.blobs.iter().collect();
        let marker = durable::mark(&store.dir, &unique(), &layers, &blobs)?;
        let r = self.publish();
        durable::clear_after_sync(&store.dir, &marker);
        r
    }

    /// [`Staged::commit`] once its marker is written: renames, records, names.
    fn publish(&mut self) -> Result<Vec<Digest>> {
        let store = self.store;
        for d in &self.blobs {
            fs::rename(self.staged_blob(d), store.blob_path(d))
                .with_context(|| format!("store blob {d}"))?;
        }
        sync_dir(&store.dir.join("blobs/sha256"));
        for diff_id in self.layers.keys() {
            let target = store.dir.join("layers").join(diff_id.hex());
            match fs::rename(self.layer_staging(diff_id), &target) {
                Ok(()) => {}
                // Unpacked meanwhile by someone else: theirs is identical.
                Err(e) if target.join("meta.json").is_file() => {
                    crate::logging::debug(&format!("layer {diff_id} already stored ({e})"));
                }
                Err(e) => return Err(e).with_context(|| format!("store layer {diff_id}")),
            }
            let link = store.dir.join("l").join(short_link(diff_id));
            match std::os::unix::fs::symlink(format!("../layers/{}/diff", diff_id.hex()), &link) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e).context("create layer link"),
            }
        }
        sync_dir(&store.dir.join("layers"));
        let mut names = store.names()?;
        let mut names_changed = false;
        let mut ids = Vec::new();
        let images = std::mem::take(&mut self.images);
        for (mut rec, tags) in images {
            let committed = rec.manifest.clone();
            // Whatever the store lost meanwhile (a concurrent prune) makes this fail
            // rather than record an image with holes.
            for l in &rec.layers {
                if !store.has_layer(&l.diff_id) || !store.has_blob(&l.blob) {
                    bail!("layer {} vanished from the store; retry", l.diff_id);
                }
            }
            if !store.has_blob(&rec.id) || !store.has_blob(&rec.manifest) {
                bail!("image {} vanished from the store; retry", rec.id);
            }
            let entry = NameEntry {
                image: rec.id.clone(),
                manifest: committed.clone(),
            };
            // Names that already say this: not tagged again (a pull of an image that is
            // up to date changes nothing, and writes nothing).
            let retag = tags.iter().any(|t| names.get(t) != Some(&entry));
            let mut unchanged = false;
            if let Some(old) = store.image(&rec.id)? {
                let mut manifests = old.manifests.clone();
                if !manifests.contains(&rec.manifest) {
                    manifests.push(rec.manifest.clone());
                }
                let mut digests = old.repo_digests.clone();
                for d in rec.repo_digests.drain(..) {
                    if !digests.contains(&d) {
                        digests.push(d);
                    }
                }
                unchanged = !retag && manifests == old.manifests && digests == old.repo_digests;
                rec = ImageRecord {
                    manifests,
                    repo_digests: digests,
                    last_tag_time: if retag {
                        rec.last_tag_time.or(old.last_tag_time.clone())
                    } else {
                        old.last_tag_time.clone()
                    },
                    ..old
                };
            }
            for t in &tags {
                names.insert(t.clone(), entry.clone());
            }
            if !unchanged {
                store.write_record(&rec)?;
            }
            names_changed |= retag;
            ids.push(rec.id.clone());
        }
        if names_changed {
            store.write_names(&names)?;
        }
        Ok(ids)
    }
}

/// Staging directories spread over the filesystem (ext4's Orlov allocator, `chattr +T`
/// on `tmp/`): a pull right after an `rmi` would otherwise allocate its inodes in the
/// block group the removed layers just freed, and ext4 (without a journal) skips every
/// recently freed inode one by one on each allocation, a cost that grows with the square
/// of the files unpacked. Best effort: other filesystems have no such flag.
fn spread_staging(tmp: &Path) {
    if let Ok(fd) = nix::fcntl::open(
        tmp,
        nix::fcntl::OFlag::O_RDONLY | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        let _ = crate::sys::files::set_topdir(&fd);
    }
}

fn sync_dir(p: &Path) {
    if let Ok(d) = File::open(p) {
        let _ = d.sync_all();
    }
}
