//! Content digests (`sha256:<64 hex>`): the names of blobs, manifests and image ids.

use std::fmt;
use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

/// A validated `sha256:<64 lowercase hex>` digest. Other algorithms are refused: the
/// distribution spec's registries and every image tool use sha256.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Digest {
    hex: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum DigestError {
    #[error("invalid digest {0:?}: expected sha256:<64 hex digits>")]
    Invalid(String),
    #[error("unsupported digest algorithm {0:?}: only sha256 is supported")]
    Algorithm(String),
}

impl Digest {
    pub(crate) fn parse(s: &str) -> Result<Digest, DigestError> {
        let shown = || s.chars().take(80).collect::<String>();
        let Some((algo, hex)) = s.split_once(':') else {
            return Err(DigestError::Invalid(shown()));
        };
        if algo != "sha256" {
            if !algo.is_empty()
                && algo
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+._-".contains(c))
            {
                return Err(DigestError::Algorithm(algo.chars().take(32).collect()));
            }
            return Err(DigestError::Invalid(shown()));
        }
        Self::from_hex(hex).ok_or_else(|| DigestError::Invalid(shown()))
    }

    /// From 64 lowercase hex digits (an image id as users type it in full).
    pub(crate) fn from_hex(hex: &str) -> Option<Digest> {
        (hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
        .then(|| Digest {
            hex: hex.to_string(),
        })
    }

    pub(crate) fn of(data: &[u8]) -> Digest {
        Digest {
            hex: hex(&Sha256::digest(data)),
        }
    }

    pub(crate) fn hex(&self) -> &str {
        &self.hex
    }

    /// The 12-hex short form Docker shows for ids.
    pub(crate) fn short(&self) -> &str {
        &self.hex[..12]
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn hex(bytes: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(H[(b >> 4) as usize] as char);
        s.push(H[(b & 15) as usize] as char);
    }
    s
}

/// Hashes (and counts) everything that passes through, in either direction, so a blob is
/// verified while it streams instead of being read twice.
pub(crate) struct Hashing<T> {
    inner: T,
    hasher: Sha256,
    len: u64,
}

impl<T> Hashing<T> {
    pub(crate) fn new(inner: T) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            len: 0,
        }
    }

    /// The digest and length of what has passed so far, and the inner stream.
    pub(crate) fn finish(self) -> (Digest, u64, T) {
        let d = Digest {
            hex: hex(&self.hasher.finalize()),
        };
        (d, self.len, self.inner)
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        let empty = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(Digest::parse(empty).unwrap().to_string(), empty);
        assert_eq!(Digest::of(b"").to_string(), empty);
        assert_eq!(Digest::parse(empty).unwrap().short(), "e3b0c44298fc");
        assert!(matches!(
            Digest::parse("sha256:abc"),
            Err(DigestError::Invalid(_))
        ));
        assert!(matches!(
            Digest::parse(&empty.to_uppercase().replace("SHA256", "sha256")),
            Err(DigestError::Invalid(_))
        ));
        assert!(matches!(
            Digest::parse("sha512:00"),
            Err(DigestError::Algorithm(_))
        ));
        assert!(matches!(
            Digest::parse("nocolon"),
            Err(DigestError::Invalid(_))
        ));
        assert!(matches!(
            Digest::parse("../x:y"),
            Err(DigestError::Invalid(_))
        ));
    }

    #[test]
    fn hashing_reader_matches_one_shot() {
        let data = vec![7u8; 100_000];
        let mut r = Hashing::new(&data[..]);
        let mut sink = Vec::new();
        std::io::copy(&mut r, &mut sink).unwrap();
        let (d, n, _) = r.finish();
        assert_eq!(n, 100_000);
        assert_eq!(d, Digest::of(&data));
    }
}
