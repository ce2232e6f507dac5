//! Pushing one image (or an index and its images): blobs the repository already has are
//! skipped, blobs another repository of the same registry has are mounted, the others
//! uploaded (up to three at once), then the manifests, the tag last.

use std::collections::{HashSet, VecDeque};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context};

use super::client::{Mount, Registry};
use super::manifest::{self, Descriptor, Manifest};
use crate::front::digest::Digest;
use crate::front::reference::Reference;

/// Where pushed content comes from (the image store implements it): blobs and manifests
/// by digest.
pub(crate) trait BlobSource: Sync {
    fn open(&self, digest: &Digest) -> anyhow::Result<Box<dyn Read + Send>>;
}

/// Docker's push display, line by line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PushEvent {
    /// `abc123: Preparing`
    Preparing(Digest),
    /// `abc123: Layer already exists`
    Exists(Digest),
    /// `abc123: Mounted from library/busybox`
    Mounted { digest: Digest, from: String },
    /// `abc123: Pushing [==>   ] 1.2MB/3.4MB`
    Progress {
        digest: Digest,
        done: u64,
        size: u64,
    },
    /// `abc123: Pushed`
    Pushed(Digest),
}

/// Pushes the manifest `bytes` (of `media_type`) to `target` (its tag, or its digest when
/// it has no tag). `mount_from`: repositories of the same registry that may hold the
/// blobs (where the image was pulled from; the first is tried). Returns the digest of what the tag now names.
pub(crate) fn push_image(
    registry: &Registry,
    target: &Reference,
    media_type: &str,
    bytes: &[u8],
    source: &dyn BlobSource,
    mount_from: &[String],
    events: &(dyn Fn(PushEvent) + Sync),
) -> anyhow::Result<Digest> {
    let repo = target.path();
    let (mt, m) = manifest::parse(Some(media_type), bytes)?;
    let digest = Digest::of(bytes);
    match m {
        Manifest::Image(image) => {
            let mut blobs = vec![&image.config];
            blobs.extend(&image.layers);
            push_blobs(registry, repo, &blobs, source, mount_from, events)?;
        }
        Manifest::Index(index) => {
            for child in &index.manifests {
                let mut r = source
                    .open(&child.digest)
                    .with_context(|| format!("manifest {} of the index", child.digest))?;
                let mut b = Vec::new();
                r.by_ref()
                    .take(manifest::MAX_MANIFEST + 1)
                    .read_to_end(&mut b)?;
                if Digest::of(&b) != child.digest {
                    bail!(
                        "manifest {} in the store does not match its digest",
                        child.digest
                    );
                }
                // Children by digest: only the index gets the tag.
                let child_ref = target.name_only().with_digest(&child.digest);
                push_image(
                    registry,
                    &child_ref,
                    &child.media_type,
                    &b,
                    source,
                    mount_from,
                    events,
                )?;
            }
        }
    }
    let reference = match (target.tag(), target.digest()) {
        (Some(t), _) => t.to_string(),
        (None, Some(d)) if *d == digest => d.to_string(),
        (None, Some(d)) => bail!("{target}: the manifest's digest is {digest}, not {d}"),
        (None, None) => digest.to_string(),
    };
    let pushed = registry.put_manifest(repo, &reference, &mt, bytes)?;
    Ok(pushed)
}

fn push_blobs(
    registry: &Registry,
    repo: &str,
    blobs: &[&Descriptor],
    source: &dyn BlobSource,
    mount_from: &[String],
    events: &(dyn Fn(PushEvent) + Sync),
) -> anyhow::Result<()> {
    let mut seen = HashSet::new();
    let queue: VecDeque<&Descriptor> = blobs
        .iter()
        .copied()
        .filter(|d| seen.insert(d.digest.clone()))
        .collect();
    for d in &queue {
        events(PushEvent::Preparing(d.digest.clone()));
    }
    let jobs = 3.min(queue.len()).max(1);
    let queue = Mutex::new(queue);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let work = || loop {
        if failed.load(Ordering::Relaxed) {
            return;
        }
        let Some(d) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
            return;
        };
        if let Err(e) = push_blob(registry, repo, d, source, mount_from, events, &failed) {
            let mut fe = first_error.lock().unwrap_or_else(|e| e.into_inner());
            fe.get_or_insert(e);
            failed.store(true, Ordering::Relaxed);
            return;
        }
    };
    std::thread::scope(|s| {
        for _ in 1..jobs {
            s.spawn(work);
        }
        work();
    });
    match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn push_blob(
    registry: &Registry,
    repo: &str,
    d: &Descriptor,
    source: &dyn BlobSource,
    mount_from: &[String],
    events: &(dyn Fn(PushEvent) + Sync),
    cancel: &AtomicBool,
) -> anyhow::Result<()> {
    if registry.blob_exists(repo, &d.digest)?.is_some() {
        events(PushEvent::Exists(d.digest.clone()));
        return Ok(());
    }
    // One mount attempt: a refused mount opens an upload session, which the upload uses.
    let mut session = None;
    if let Some(from) = mount_from.iter().find(|f| f.as_str() != repo) {
        match registry.mount_blob(repo, &d.digest, from)? {
            Mount::Mounted => {
                events(PushEvent::Mounted {
                    digest: d.digest.clone(),
                    from: from.clone(),
                });
                return Ok(());
            }
            Mount::Upload(u) => session = Some(u),
        }
    }
    let session = match session {
        Some(s) => s,
        None => registry.start_upload(repo)?,
    };
    let data = source
        .open(&d.digest)
        .with_context(|| format!("blob {}", d.digest))?;
    let mut progress = Progress {
        inner: data,
        digest: &d.digest,
        size: d.size,
        done: 0,
        reported: 0,
        events,
        cancel,
    };
    registry.upload_blob(repo, session, &d.digest, d.size, &mut progress)?;
    events(PushEvent::Pushed(d.digest.clone()));
    Ok(())
}

struct Progress<'a> {
    inner: Box<dyn Read + Send>,
    digest: &'a Digest,
    size: u64,
    done: u64,
    reported: u64,
    events: &'a (dyn Fn(PushEvent) + Sync),
    cancel: &'a AtomicBool,
}

impl Read for Progress<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled: another blob failed"));
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.reported >= 512 * 1024 || (n > 0 && self.done == self.size) {
            self.reported = self.done;
            (self.events)(PushEvent::Progress {
                digest: self.digest.clone(),
                done: self.done,
                size: self.size,
            });
        }
        Ok(n)
    }
}
