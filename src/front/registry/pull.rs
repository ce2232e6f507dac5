//! Pulling one image: resolve the reference (trying registries.conf's mirrors, then the
//! registry), choose the platform's manifest, fetch the config, then the layers the store
//! lacks, up to three at once, each streamed and verified into a [`BlobSink`]. Progress is
//! reported through a callback so that the command can draw Docker's display.

use std::collections::{HashSet, VecDeque};
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use anyhow::{bail, Context};

use super::client::{ClientOptions, FetchedManifest, Registry};
use super::config::Endpoint;
use super::manifest::{self, Descriptor, ImageManifest, Manifest, PlatformSpec, MAX_CONFIG};
use crate::front::digest::Digest;
use crate::front::reference::Reference;

/// Where pulled blobs go (the image store implements it).
///
/// `put` may be called from several threads at once and in any order. The reader it gets
/// is verified by the client: when the bytes do not match `desc.digest` and `desc.size` it
/// returns an error, never a clean end of file. So a sink that writes to a temporary file
/// and renames it into place only after reading to the end without error never commits a
/// corrupt or truncated blob (it may verify again; it need not). The bytes that complete
/// the blob come only after the digest matched, so a sink that reads exactly `desc.size`
/// bytes is safe too; one that stops earlier (a tar reader at its end-of-archive blocks)
/// must read the rest, or the pull fails.
pub(crate) trait BlobSink: Sync {
    fn has(&self, digest: &Digest) -> bool;
    fn put(&self, desc: &Descriptor, data: &mut dyn Read) -> anyhow::Result<()>;
    /// The image whose layers `put` receives next (its config, `config`, already put):
    /// a sink may unpack them as they stream.
    fn layers_of(&self, _image: &ImageManifest, _config: &[u8]) {}
    /// A small blob (a config) the sink holds already: not downloaded again.
    fn get(&self, _digest: &Digest) -> Option<Vec<u8>> {
        None
    }
}

/// What a pull reports as it goes (Docker's progress display is drawn from these).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PullEvent {
    /// Trying this registry or mirror (Podman's `Trying to pull ...`).
    Trying(Reference),
    /// The reference resolved to this manifest digest (the index's, when it names one:
    /// what Docker prints as `Digest:`).
    Resolved(Digest),
    /// A layer to download (`Pulling fs layer`).
    LayerWaiting { digest: Digest, size: u64 },
    /// A layer the store already has (`Already exists`).
    LayerExists(Digest),
    /// Bytes of a layer received so far (`Downloading [==>  ] 1.2MB/3.4MB`).
    LayerProgress {
        digest: Digest,
        done: u64,
        size: u64,
    },
    /// A layer verified and handed to the store (`Pull complete` once the sink returns).
    LayerDone(Digest),
}

#[derive(Debug, Clone)]
pub(crate) struct PullOptions {
    pub(crate) platform: PlatformSpec,
    /// Layers downloaded at once (Docker's default: 3).
    pub(crate) jobs: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: PlatformSpec::host(),
            jobs: 3,
        }
    }
}

/// A pulled image: everything the store needs to record it (all blobs, manifests and
/// config included, are already in the sink).
#[derive(Debug, Clone)]
pub(crate) struct Pulled {
    /// Where it really came from (a mirror, or the registries.conf location).
    pub(crate) source: Reference,
    /// What the reference resolved to: the index's digest if it named one, else the
    /// manifest's (Docker's RepoDigest).
    pub(crate) digest: Digest,
    /// The index, when the reference named one.
    pub(crate) index: Option<FetchedManifest>,
    /// The platform's image manifest (its bytes, digest and media type).
    pub(crate) manifest: FetchedManifest,
    pub(crate) image: ImageManifest,
    /// The image config's bytes (its digest is `image.config.digest`: the image id).
    pub(crate) config: Vec<u8>,
}

/// Pulls `endpoints` in order (mirrors first, as [`super::config::Registries::endpoints`]
/// lists them) until one serves the image; the error is the last endpoint's.
pub(crate) fn pull(
    endpoints: &[Endpoint],
    client: &ClientOptions,
    opts: &PullOptions,
    sink: &dyn BlobSink,
    events: &(dyn Fn(PullEvent) + Sync),
) -> anyhow::Result<Pulled> {
    let mut last = None;
    for ep in endpoints {
        events(PullEvent::Trying(ep.reference.clone()));
        match pull_from(ep, client, opts, sink, events) {
            Ok(p) => return Ok(p),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("nowhere to pull from")))
}

fn pull_from(
    ep: &Endpoint,
    client: &ClientOptions,
    opts: &PullOptions,
    sink: &dyn BlobSink,
    events: &(dyn Fn(PullEvent) + Sync),
) -> anyhow::Result<Pulled> {
    let r = &ep.reference;
    let repo = r.path();
    let what = r.to_string();
    let reg = Registry::for_repository(r.domain(), repo, ep.insecure, client)?;
    let top = reg.manifest(repo, &r.manifest_ref(), r.digest(), &what)?;
    let (index, manifest) = match &top.manifest {
        Manifest::Index(idx) => {
            let d = manifest::choose(idx, &opts.platform).with_context(|| what.clone())?;
            let m = reg.manifest(repo, &d.digest.to_string(), Some(&d.digest), &what)?;
            if m.media_type != d.media_type {
                bail!(
                    "{what}: the index says {} is {}, the registry serves {}",
                    d.digest,
                    d.media_type,
                    m.media_type
                );
            }
            (Some(top), m)
        }
        Manifest::Image(_) => (None, top),
    };
    let Manifest::Image(image) = &manifest.manifest else {
        bail!("{what}: an index inside an index is not supported");
    };
    let image = image.clone();
    // Refuse what cannot be unpacked before downloading anything.
    for l in &image.layers {
        manifest::layer_compression(&l.media_type)
            .with_context(|| format!("{what}: layer {}", l.digest))?;
    }
    let digest = index
        .as_ref()
        .map_or(&manifest.digest, |i| &i.digest)
        .clone();
    events(PullEvent::Resolved(digest.clone()));

    let config = match sink.get(&image.config.digest) {
        Some(b) if b.len() as u64 == image.config.size && Digest::of(&b) == image.config.digest => {
            b
        }
        _ => reg.blob_bytes(repo, &image.config.digest, image.config.size, MAX_CONFIG)?,
    };
    put_bytes(sink, &image.config, &config)?;
    let layers = unique_layers(&image);
    let mut todo = VecDeque::new();
    for l in &layers {
        if sink.has(&l.digest) {
            events(PullEvent::LayerExists(l.digest.clone()));
        } else {
            events(PullEvent::LayerWaiting {
                digest: l.digest.clone(),
                size: l.size,
            });
            todo.push_back(*l);
        }
    }
    sink.layers_of(&image, &config);
    fetch_layers(&reg, repo, todo, opts.jobs, sink, events)?;
    // The manifests last: a store that sees them can rely on what they name being there.
    put_bytes(sink, &descriptor_of(&manifest), &manifest.bytes)?;
    if let Some(i) = &index {
        put_bytes(sink, &descriptor_of(i), &i.bytes)?;
    }
    Ok(Pulled {
        source: r.clone(),
        digest,
        index,
        manifest,
        image,
        config,
    })
}

fn descriptor_of(m: &FetchedManifest) -> Descriptor {
    Descriptor {
        media_type: m.media_type.clone(),
        digest: m.digest.clone(),
        size: m.bytes.len() as u64,
        urls: vec![],
        annotations: Default::default(),
        platform: None,
    }
}

fn put_bytes(sink: &dyn BlobSink, desc: &Descriptor, bytes: &[u8]) -> anyhow::Result<()> {
    if sink.has(&desc.digest) {
        return Ok(());
    }
    sink.put(desc, &mut &bytes[..])
        .with_context(|| format!("storing {}", desc.digest))
}

/// A layer listed twice (empty layers often are) is fetched once.
fn unique_layers(image: &ImageManifest) -> Vec<&Descriptor> {
    let mut seen = HashSet::new();
    image
        .layers
        .iter()
        .filter(|l| seen.insert(l.digest.clone()))
        .collect()
}

fn fetch_layers(
    reg: &Registry,
    repo: &str,
    todo: VecDeque<&Descriptor>,
    jobs: usize,
    sink: &dyn BlobSink,
    events: &(dyn Fn(PullEvent) + Sync),
) -> anyhow::Result<()> {
    let jobs = jobs.max(1).min(todo.len());
    let queue = Mutex::new(todo);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let work = || loop {
        if failed.load(Ordering::Relaxed) {
            return;
        }
        let Some(l) = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front() else {
            return;
        };
        let result = (|| -> anyhow::Result<()> {
            let blob = reg.blob(repo, &l.digest, l.size)?;
            let mut r = Progress {
                inner: blob,
                digest: &l.digest,
                size: l.size,
                done: 0,
                reported: 0,
                events,
                cancel: &failed,
            };
            sink.put(l, &mut r)
                .with_context(|| format!("layer {}", l.digest))?;
            if r.done != l.size {
                bail!(
                    "layer {}: the store stopped reading after {} of {} bytes",
                    l.digest,
                    r.done,
                    l.size
                );
            }
            events(PullEvent::LayerDone(l.digest.clone()));
            Ok(())
        })();
        if let Err(e) = result {
            let mut fe = first_error.lock().unwrap_or_else(|e| e.into_inner());
            if fe.is_none() {
                *fe = Some(e);
            }
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

/// Counts bytes for the progress events; stops the download when another layer failed.
struct Progress<'a, R> {
    inner: R,
    digest: &'a Digest,
    size: u64,
    done: u64,
    reported: u64,
    events: &'a (dyn Fn(PullEvent) + Sync),
    cancel: &'a AtomicBool,
}

const PROGRESS_STEP: u64 = 512 * 1024;

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(io::Error::other("cancelled: another layer failed"));
        }
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        if self.done - self.reported >= PROGRESS_STEP
            || (n == 0 && self.done > self.reported)
            || (n > 0 && self.done == self.size)
        {
            self.reported = self.done;
            (self.events)(PullEvent::LayerProgress {
                digest: self.digest.clone(),
                done: self.done,
                size: self.size,
            });
        }
        Ok(n)
    }
}
