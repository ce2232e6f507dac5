//! Unpacking a layer while its blob downloads, as `curl | gzip -dc | tar -x` does: the
//! downloading thread writes the blob to its file and decompresses it, and a second thread
//! unpacks the tar stream it is handed in chunks (a bounded channel: memory stays flat
//! whatever the layer's size). The download's result and the unpack's are separate: a
//! failed download fails the pull, a failed unpack only means the layer is unpacked again
//! from its blob once every blob is there (with the image's lower layers, for a hardlink
//! to one of their files, or to report what is wrong with the layer).

use std::io::{self, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

use anyhow::Result;

use super::compress;
use super::store::StreamTarget;
use super::unpack::{self, Unpacked};

/// Decompressed bytes in flight per layer: CHUNK times DEPTH.
const CHUNK: usize = 128 * 1024;
const DEPTH: usize = 4;

/// A download that failed (the blob's bytes, its digest or size, the connection): the
/// unpacking thread's stream ends with this error rather than a clean end.
const ABORTED: &str = "the layer's download failed";

/// Copies `data` to `out` to its end while unpacking it into `t.top/diff` on another
/// thread. Returns the copy's result (the pull's), and the unpack's.
pub(crate) fn tee_unpack(
    data: &mut dyn Read,
    out: &mut dyn Write,
    t: &StreamTarget,
) -> (io::Result<()>, Result<Unpacked>) {
    let (tx, rx) = sync_channel::<Option<Vec<u8>>>(DEPTH);
    // Chunks come back once read, to be filled again: no allocation per chunk.
    let (back_tx, back) = sync_channel::<Vec<u8>>(DEPTH + 2);
    std::thread::scope(|s| {
        let unpacking = s.spawn(move || {
            let opts = unpack::Options {
                privilege: t.privilege,
                ids: &t.ids,
                // Lower layers may not be there yet: a hardlink to one of their files
                // fails this unpack, and the layer is unpacked again from its blob.
                lowers: &[],
            };
            let r = unpack::unpack_plain(
                Chunks {
                    rx,
                    back: back_tx,
                    cur: Vec::new(),
                    pos: 0,
                },
                &t.top.join("diff"),
                Some(&t.diff_id),
                &opts,
            );
            // Returning drops the receiver: the downloader stops decompressing.
            r
        });
        let mut tee = Tee {
            inner: data,
            out,
            err: None,
        };
        let copied = (|| -> io::Result<()> {
            if let Ok((_, mut plain)) = compress::decompress(&mut tee) {
                loop {
                    let mut buf = back.try_recv().unwrap_or_default();
                    buf.resize(CHUNK, 0);
                    match plain.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => {
                            buf.truncate(n);
                            if tx.send(Some(buf)).is_err() {
                                break;
                            }
                        }
                        // Corrupt compressed data: the unpack fails on the missing rest,
                        // and so does the later one from the blob, naming it.
                        Err(_) => break,
                    }
                }
            }
            if let Some(e) = tee.err.take() {
                return Err(e);
            }
            // The rest of the blob (a decoder stops at its end of stream; trailing bytes
            // are part of the blob and of its digest).
            io::copy(&mut tee, &mut io::sink())?;
            match tee.err.take() {
                Some(e) => Err(e),
                None => Ok(()),
            }
        })();
        if copied.is_err() {
            let _ = tx.send(None);
        }
        drop(tx);
        let unpacked = unpacking
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the unpacking thread panicked")));
        (copied, unpacked)
    })
}

/// Writes what it reads from `inner` to `out`. An error of `inner` (the download) is kept
/// aside: the decoder above it may turn it into its own.
struct Tee<'a> {
    inner: &'a mut dyn Read,
    out: &'a mut dyn Write,
    err: Option<io::Error>,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.err.is_some() {
            return Err(io::Error::other(ABORTED));
        }
        match self.inner.read(buf) {
            Ok(n) => {
                if let Err(e) = self.out.write_all(&buf[..n]) {
                    self.err = Some(e);
                    return Err(io::Error::other(ABORTED));
                }
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                self.err = Some(e);
                Err(io::Error::other(ABORTED))
            }
        }
    }
}

/// The decompressed stream as the downloading thread hands it over; `None` is its
/// failure, the channel's end a clean end.
struct Chunks {
    rx: Receiver<Option<Vec<u8>>>,
    back: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            match self.rx.recv() {
                Ok(Some(c)) => {
                    let used = std::mem::replace(&mut self.cur, c);
                    if used.capacity() > 0 {
                        let _ = self.back.try_send(used);
                    }
                    self.pos = 0;
                }
                Ok(None) => return Err(io::Error::other(ABORTED)),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, Read, Write};

    use super::super::pull::StagingSink;
    use super::super::tar::tests::Build;
    use super::super::tests::{assert_store_empty, store, Tmp};
    use crate::front::digest::Digest;
    use crate::front::registry::manifest::{Descriptor, ImageManifest};
    use crate::front::registry::pull::BlobSink;

    const GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn desc(mt: &str, data: &[u8]) -> Descriptor {
        serde_json::from_value(serde_json::json!({
            "mediaType": mt, "digest": Digest::of(data).to_string(), "size": data.len()
        }))
        .unwrap()
    }

    /// An image of `layers` (gzip blobs) whose config lists `diff_ids`: its config and
    /// manifest bytes, and the manifest.
    fn image(layers: &[Vec<u8>], diff_ids: &[Digest]) -> (Vec<u8>, Vec<u8>, ImageManifest) {
        let ids: Vec<String> = diff_ids.iter().map(|d| d.to_string()).collect();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": ids},
        }))
        .unwrap();
        let ls: Vec<Descriptor> = layers.iter().map(|l| desc(GZ, l)).collect();
        let man = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": desc("application/vnd.oci.image.config.v1+json", &config),
            "layers": ls,
        }))
        .unwrap();
        let m = serde_json::from_slice(&man).unwrap();
        (config, man, m)
    }

    /// Reads `data`, then fails as a download does (a digest mismatch, a reset).
    struct FailsAfter<'a>(&'a [u8]);
    impl Read for FailsAfter<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("blob digest mismatch: the test says so"));
            }
            self.0.read(buf)
        }
    }

    #[test]
    fn layers_unpack_as_they_stream_and_a_hardlink_to_a_lower_layer_still_works() {
        let t = Tmp::new("stream");
        let s = store(&t);
        let big: Vec<u8> = (0..3 * super::CHUNK + 17)
            .map(|i| (i * 7 % 251) as u8)
            .collect();
        let tar1 = Build::new()
            .dir("etc/")
            .file("etc/hello", b"hello\n")
            .file("big", &big)
            .finish();
        // The second layer links to a file of the first: unpacked while it streams that
        // fails (the lower layer is not there yet), and it is unpacked again from its blob.
        let tar2 = Build::new()
            .hardlink("linked", "etc/hello")
            .file("two", b"2\n")
            .finish();
        let (d1, d2) = (Digest::of(&tar1), Digest::of(&tar2));
        let mut gz1 = gzip(&tar1);
        // Bytes after the gzip stream are part of the blob (and of its digest).
        gz1.extend_from_slice(&[0u8; 1024]);
        let gz2 = gzip(&tar2);
        let (config, man, m) = image(&[gz1.clone(), gz2.clone()], &[d1.clone(), d2.clone()]);
        let sink = StagingSink::new(s.begin().unwrap());
        sink.put(&m.config, &mut &config[..]).unwrap();
        sink.layers_of(&m, &config);
        // The upper layer first, and the lower at the same time.
        std::thread::scope(|sc| {
            sc.spawn(|| sink.put(&m.layers[1], &mut &gz2[..]).unwrap());
            sc.spawn(|| sink.put(&m.layers[0], &mut &gz1[..]).unwrap());
        });
        // Layer 1 is unpacked (staged) before add_image unpacks anything; layer 2 not.
        let staged_layers: Vec<String> = std::fs::read_dir(s.dir().join("tmp"))
            .unwrap()
            .flatten()
            .flat_map(|op| std::fs::read_dir(op.path()).unwrap().flatten())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("layer-") || n.starts_with("x-stream-"))
            .collect();
        assert_eq!(staged_layers, vec![format!("layer-{}", d1.hex())]);
        let mut staged = sink.into_inner();
        staged
            .add_image(&man, &["localhost/stream:1".to_string()], &[])
            .unwrap();
        staged.commit().unwrap();
        let l1 = s.layer_dir(&d1);
        assert_eq!(std::fs::read(l1.join("etc/hello")).unwrap(), b"hello\n");
        assert_eq!(std::fs::read(l1.join("big")).unwrap(), big);
        let l2 = s.layer_dir(&d2);
        assert_eq!(std::fs::read(l2.join("linked")).unwrap(), b"hello\n");
        assert_eq!(std::fs::read(l2.join("two")).unwrap(), b"2\n");
        assert_eq!(s.layer_meta(&d1).unwrap().tar_size, tar1.len() as u64);
        // The blobs are kept whole, trailing bytes included.
        let mut kept = Vec::new();
        s.open_blob(&m.layers[0].digest)
            .unwrap()
            .read_to_end(&mut kept)
            .unwrap();
        assert_eq!(kept, gz1);
    }

    #[test]
    fn a_wrong_diff_id_or_a_failed_download_leaves_nothing() {
        let t = Tmp::new("stream-bad");
        let s = store(&t);
        let tar = Build::new().file("a", b"a\n").finish();
        let gz = gzip(&tar);
        // The config names another diff id: the blob is fine, the layer is not.
        let wrong = Digest::of(b"not the tar");
        let (config, man, m) = image(std::slice::from_ref(&gz), std::slice::from_ref(&wrong));
        let sink = StagingSink::new(s.begin().unwrap());
        sink.put(&m.config, &mut &config[..]).unwrap();
        sink.layers_of(&m, &config);
        sink.put(&m.layers[0], &mut &gz[..]).unwrap();
        let mut staged = sink.into_inner();
        let e = format!("{:#}", staged.add_image(&man, &[], &[]).unwrap_err());
        assert!(e.contains("does not match its diff id"), "{e}");
        drop(staged);
        assert_store_empty(&s);

        // The download fails after half the blob: its own error, and nothing staged.
        let (config, _, m) = image(std::slice::from_ref(&gz), &[Digest::of(&tar)]);
        let sink = StagingSink::new(s.begin().unwrap());
        sink.put(&m.config, &mut &config[..]).unwrap();
        sink.layers_of(&m, &config);
        let e = sink
            .put(&m.layers[0], &mut FailsAfter(&gz[..gz.len() / 2]))
            .unwrap_err();
        assert!(format!("{e:#}").contains("the test says so"), "{e:#}");
        drop(sink);
        assert_store_empty(&s);

        // Corrupt compressed data: the layer cannot be unpacked, from the stream or later
        // from the blob (a registry serving the bytes its digest names).
        let mut bad = gz.clone();
        let mid = bad.len() / 2;
        bad[mid..mid + 8].copy_from_slice(b"garbage!");
        let (config, man, m) = image(&[bad.clone()], &[Digest::of(&tar)]);
        let sink = StagingSink::new(s.begin().unwrap());
        sink.put(&m.config, &mut &config[..]).unwrap();
        sink.layers_of(&m, &config);
        sink.put(&m.layers[0], &mut &bad[..]).unwrap();
        let mut staged = sink.into_inner();
        assert!(staged.add_image(&man, &[], &[]).is_err());
        drop(staged);
        assert_store_empty(&s);
    }
}
