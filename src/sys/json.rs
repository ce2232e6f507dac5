//! JSON encoding into memory without a `memcpy` call per token.
//!
//! serde_json writes every token (a quote, a comma, a key, an indentation) through
//! `io::Write`, which for a `Vec<u8>` is a call to the C library's `memcpy`. musl's
//! starts every copy with `rep movsq`, whose fixed cost is tens of cycles: encoding one
//! container's records (the OCI spec, config.json, the listing, the state) made about
//! 14,000 such calls of three bytes on average, a millisecond of a `run`. Short writes
//! are pushed byte by byte here instead.

use std::io;

use serde::Serialize;

/// A `Vec<u8>` writer that copies short writes inline.
pub(crate) struct Sink(pub(crate) Vec<u8>);

impl Sink {
    pub(crate) fn with_capacity(n: usize) -> Sink {
        Sink(Vec::with_capacity(n))
    }

    #[inline]
    fn put(&mut self, b: &[u8]) {
        if b.len() <= 16 {
            self.0.reserve(b.len());
            for &x in b {
                self.0.push(x);
            }
        } else {
            self.0.extend_from_slice(b);
        }
    }
}

impl io::Write for Sink {
    #[inline]
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.put(b);
        Ok(b.len())
    }

    #[inline]
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        self.put(b);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `serde_json::to_vec`, the same bytes.
pub(crate) fn to_vec<T: Serialize + ?Sized>(v: &T) -> serde_json::Result<Vec<u8>> {
    let mut s = Sink::with_capacity(512);
    serde_json::to_writer(&mut s, v)?;
    Ok(s.0)
}

/// `serde_json::to_vec_pretty`, the same bytes.
pub(crate) fn to_vec_pretty<T: Serialize + ?Sized>(v: &T) -> serde_json::Result<Vec<u8>> {
    let mut s = Sink::with_capacity(4096);
    serde_json::to_writer_pretty(&mut s, v)?;
    Ok(s.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_bytes_as_serde_json() {
        let long = "x".repeat(100);
        let v = serde_json::json!({
            "a": [1, 2.5, null, true, "é\"\\\n\u{1}"],
            "long": long,
            "nested": {"k": {"": []}, "e": {}},
        });
        assert_eq!(to_vec(&v).unwrap(), serde_json::to_vec(&v).unwrap());
        assert_eq!(
            to_vec_pretty(&v).unwrap(),
            serde_json::to_vec_pretty(&v).unwrap()
        );
    }
}
