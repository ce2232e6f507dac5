//! Layer streams are recognised by their first bytes, not by a media type that a registry
//! or an archive may get wrong: gzip, zstd, or a plain tar.

use std::io::{self, BufRead, BufReader, Read};

use anyhow::Result;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compression {
    None,
    Gzip,
    Zstd,
}

const BUF: usize = 64 * 1024;

/// A decompressing reader over `r`, whatever its compression.
pub(crate) fn decompress<'a>(r: impl Read + 'a) -> Result<(Compression, Box<dyn Read + 'a>)> {
    let mut r = BufReader::with_capacity(BUF, r);
    let head = r.fill_buf()?;
    let c = if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    };
    Ok((
        c,
        match c {
            Compression::None => Box::new(r),
            // Several gzip members one after the other are one stream (pigz, appended layers).
            Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(r)),
            Compression::Zstd => Box::new(Zstd::new(r)),
        },
    ))
}

/// Every zstd frame in the stream, one after the other (ruzstd decodes one frame at a time).
struct Zstd<R: BufRead> {
    dec: Option<ruzstd::decoding::StreamingDecoder<R, ruzstd::decoding::FrameDecoder>>,
    src: Option<R>,
}

impl<R: BufRead> Zstd<R> {
    fn new(r: R) -> Self {
        Zstd {
            dec: None,
            src: Some(r),
        }
    }
}

impl<R: BufRead> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(d) = self.dec.as_mut() {
                let n = d.read(buf)?;
                if n > 0 {
                    return Ok(n);
                }
                self.src = Some(self.dec.take().map(|d| d.into_inner()).expect("decoder"));
            }
            let Some(mut src) = self.src.take() else {
                return Ok(0);
            };
            if src.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let d = ruzstd::decoding::StreamingDecoder::new(src)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("zstd: {e}")))?;
            self.dec = Some(d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn detects_and_decodes_gzip_members_and_plain() {
        let mut gz = Vec::new();
        for part in [&b"hello "[..], b"world"] {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            gz.extend(e.finish().unwrap());
        }
        let (c, mut r) = decompress(&gz[..]).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!((c, s.as_str()), (Compression::Gzip, "hello world"));
        let (c, mut r) = decompress(&b"plain"[..]).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!((c, s.as_str()), (Compression::None, "plain"));
    }

    #[test]
    fn decodes_zstd_frames_made_by_the_zstd_tool() {
        let Ok(out) = std::process::Command::new("sh")
            .args(["-c", "printf one | zstd -q -c; printf two | zstd -q -c"])
            .output()
        else {
            panic!("sh missing");
        };
        assert!(
            out.status.success(),
            "the zstd tool is needed (apt-get install zstd)"
        );
        let (c, mut r) = decompress(&out.stdout[..]).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!((c, s.as_str()), (Compression::Zstd, "onetwo"));
        let mut bad = out.stdout.clone();
        bad.truncate(bad.len() - 3);
        let (_, mut r) = decompress(&bad[..]).unwrap();
        assert!(r.read_to_end(&mut Vec::new()).is_err());
    }
}
