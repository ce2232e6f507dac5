//! A streaming tar reader and a small writer: ustar, PAX (path, linkpath, size, uid, gid,
//! mtime, SCHILY/LIBARCHIVE xattrs) and GNU long names. Written here rather than taken
//! from a crate because layers are a security boundary and must be read exactly as the
//! image tools write them: archives without the end-of-archive blocks end cleanly at a
//! header boundary, sizes and names are bounded, and anything unknown is an error naming
//! the entry rather than something silently skipped.

use std::io::{self, Read, Write};

use anyhow::{bail, Context, Result};

const BLOCK: usize = 512;
/// Bound on a PAX header or GNU long name: names are at most PATH_MAX in practice; xattrs
/// (security.capability, ACLs) are small.
const MAX_META: u64 = 1 << 20;
const MAX_NAME: usize = 64 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    HardLink,
    Symlink,
    Char,
    Block,
    Dir,
    Fifo,
}

#[derive(Clone, Debug)]
pub(crate) struct Header {
    /// The entry's name as written (not yet cleaned; callers confine it).
    pub(crate) path: Vec<u8>,
    pub(crate) link: Vec<u8>,
    pub(crate) kind: Kind,
    pub(crate) mode: u32,
    pub(crate) uid: u64,
    pub(crate) gid: u64,
    pub(crate) size: u64,
    pub(crate) mtime: i64,
    pub(crate) mtime_nsec: u32,
    pub(crate) devmajor: u32,
    pub(crate) devminor: u32,
    pub(crate) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Header {
    /// An entry of `kind` named `path` (a directory's gets its `/`), root's, mode 0644,
    /// time 0: the fields a writer then sets.
    pub(crate) fn new(path: &str, kind: Kind) -> Header {
        let path = if kind == Kind::Dir {
            format!("{}/", path.trim_end_matches('/'))
        } else {
            path.to_string()
        };
        Header {
            path: path.into_bytes(),
            link: Vec::new(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 0,
            mtime: 0,
            mtime_nsec: 0,
            devmajor: 0,
            devminor: 0,
            xattrs: Vec::new(),
        }
    }

    pub(crate) fn path_lossy(&self) -> String {
        String::from_utf8_lossy(&self.path).into_owned()
    }
}

/// Reads entries one after another; the data of the current entry is read through
/// `data()`, and whatever is left of it is skipped by the next `next()`.
pub(crate) struct Reader<R: Read> {
    inner: R,
    /// Bytes of the current entry's data not yet read, then its padding.
    remaining: u64,
    padding: u64,
    ended: bool,
}

impl<R: Read> Reader<R> {
    pub(crate) fn new(inner: R) -> Self {
        Reader {
            inner,
            remaining: 0,
            padding: 0,
            ended: false,
        }
    }

    pub(crate) fn into_inner(self) -> R {
        self.inner
    }

    /// The current entry's data (exactly `size` bytes, then EOF).
    pub(crate) fn data(&mut self) -> Data<'_, R> {
        Data { r: self }
    }

    fn skip_rest(&mut self) -> Result<()> {
        let n = self.remaining + self.padding;
        if n > 0 {
            let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
            if copied != n {
                bail!("truncated archive: entry data ends early");
            }
        }
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }

    /// Reads one 512-byte block; None at a clean end of input (a header boundary).
    fn block(&mut self) -> Result<Option<[u8; BLOCK]>> {
        let mut b = [0u8; BLOCK];
        let mut got = 0;
        while got < BLOCK {
            match self.inner.read(&mut b[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => bail!("truncated archive: a header ends early"),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Some(b))
    }

    fn read_meta(&mut self, size: u64, what: &str) -> Result<Vec<u8>> {
        if size > MAX_META {
            bail!("{what} of {size} bytes is too large");
        }
        let mut v = Vec::with_capacity(size as usize);
        (&mut self.inner).take(size).read_to_end(&mut v)?;
        if v.len() as u64 != size {
            bail!("truncated archive: {what} ends early");
        }
        let pad = padding(size);
        io::copy(&mut (&mut self.inner).take(pad), &mut io::sink())?;
        Ok(v)
    }

    /// The next entry, or None at the end-of-archive block or a clean end of input.
    pub(crate) fn next(&mut self) -> Result<Option<Header>> {
        if self.ended {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut extended = false;
        loop {
            let Some(b) = self.block()? else {
                if extended {
                    bail!("truncated archive: extended header without its entry");
                }
                self.ended = true;
                return Ok(None);
            };
            if b.iter().all(|&c| c == 0) {
                // The end-of-archive marker; what follows (a second zero block, record
                // padding) is left unread for the caller to drain through its hash.
                self.ended = true;
                return Ok(None);
            }
            verify_checksum(&b)?;
            let typeflag = b[156];
            let size = numeric(&b[124..136]).context("invalid size field")?;
            extended = matches!(typeflag, b'x' | b'g' | b'L' | b'K');
            match typeflag {
                b'x' => {
                    let data = self.read_meta(size, "PAX header")?;
                    pax.extend(parse_pax(&data)?);
                    continue;
                }
                b'g' => {
                    // Global PAX headers only carry defaults tools never rely on here.
                    self.read_meta(size, "global PAX header")?;
                    continue;
                }
                b'L' => {
                    long_name = Some(trim_nul(self.read_meta(size, "GNU long name")?));
                    continue;
                }
                b'K' => {
                    long_link = Some(trim_nul(self.read_meta(size, "GNU long link name")?));
                    continue;
                }
                _ => {}
            }
            let mut h = Header {
                path: ustar_name(&b),
                link: trim_nul(b[157..257].to_vec()),
                kind: Kind::File,
                mode: numeric(&b[100..108]).context("invalid mode field")? as u32 & 0o7777,
                uid: numeric(&b[108..116]).context("invalid uid field")?,
                gid: numeric(&b[116..124]).context("invalid gid field")?,
                size,
                mtime: numeric(&b[136..148]).context("invalid mtime field")? as i64,
                mtime_nsec: 0,
                devmajor: numeric(&b[329..337]).unwrap_or(0) as u32,
                devminor: numeric(&b[337..345]).unwrap_or(0) as u32,
                xattrs: Vec::new(),
            };
            if let Some(n) = long_name.take() {
                h.path = n;
            }
            if let Some(l) = long_link.take() {
                h.link = l;
            }
            for (k, v) in pax.drain(..) {
                apply_pax(&mut h, &k, v)?;
            }
            h.kind = match typeflag {
                b'0' | 0 | b'7' => {
                    // Old tars mark directories by a trailing slash only.
                    if typeflag == 0 && h.path.ends_with(b"/") {
                        Kind::Dir
                    } else {
                        Kind::File
                    }
                }
                b'1' => Kind::HardLink,
                b'2' => Kind::Symlink,
                b'3' => Kind::Char,
                b'4' => Kind::Block,
                b'5' => Kind::Dir,
                b'6' => Kind::Fifo,
                t => bail!(
                    "unsupported tar entry type {:?} for {:?}",
                    t as char,
                    String::from_utf8_lossy(&h.path)
                ),
            };
            if h.path.is_empty() {
                bail!("tar entry with an empty name");
            }
            if h.path.len() > MAX_NAME || h.link.len() > MAX_NAME {
                bail!("tar entry name too long");
            }
            if h.path.contains(&0) || h.link.contains(&0) {
                bail!("tar entry name contains a NUL byte");
            }
            // Only regular files carry data; a size on anything else is skipped.
            self.remaining = h.size;
            self.padding = padding(h.size);
            if !matches!(h.kind, Kind::File) {
                h.size = 0;
            }
            return Ok(Some(h));
        }
    }
}

pub(crate) struct Data<'a, R: Read> {
    r: &'a mut Reader<R>,
}

impl<R: Read> Read for Data<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.r.remaining == 0 {
            return Ok(0);
        }
        let max = buf
            .len()
            .min(self.r.remaining.min(usize::MAX as u64) as usize);
        let n = self.r.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated archive: entry data ends early",
            ));
        }
        self.r.remaining -= n as u64;
        Ok(n)
    }
}

fn padding(size: u64) -> u64 {
    (BLOCK as u64 - size % BLOCK as u64) % BLOCK as u64
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    if let Some(i) = v.iter().position(|&c| c == 0) {
        v.truncate(i);
    }
    v
}

fn ustar_name(b: &[u8; BLOCK]) -> Vec<u8> {
    let name = trim_nul(b[0..100].to_vec());
    // POSIX ustar ("ustar\0") has a prefix field; GNU ("ustar  ") uses those bytes for
    // atime/ctime, never a prefix.
    if &b[257..263] == b"ustar\0" {
        let prefix = trim_nul(b[345..500].to_vec());
        if !prefix.is_empty() {
            let mut p = prefix;
            p.push(b'/');
            p.extend_from_slice(&name);
            return p;
        }
    }
    name
}

fn verify_checksum(b: &[u8; BLOCK]) -> Result<()> {
    let want = numeric(&b[148..156]).context("invalid tar header checksum field")?;
    let sum: u64 = b
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if (148..156).contains(&i) {
                32
            } else {
                c as u64
            }
        })
        .sum();
    // Some historic writers summed signed chars.
    let ssum: i64 = b
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if (148..156).contains(&i) {
                32
            } else {
                c as i8 as i64
            }
        })
        .sum();
    if sum != want && ssum != want as i64 {
        bail!("invalid tar header checksum (not a tar archive, or corrupt)");
    }
    Ok(())
}

/// An octal field (NUL/space terminated) or GNU base-256 (high bit set).
fn numeric(f: &[u8]) -> Result<u64> {
    if f.first().is_some_and(|&c| c & 0x80 != 0) {
        if f[0] & 0x40 != 0 {
            bail!("negative number");
        }
        let mut v: u64 = (f[0] & 0x3f) as u64;
        for &c in &f[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(c as u64))
                .ok_or_else(|| anyhow::anyhow!("number too large"))?;
        }
        return Ok(v);
    }
    let s: Vec<u8> = f
        .iter()
        .copied()
        .skip_while(|&c| c == b' ')
        .take_while(|&c| c != 0 && c != b' ')
        .collect();
    if s.is_empty() {
        return Ok(0);
    }
    let s = std::str::from_utf8(&s)?;
    Ok(u64::from_str_radix(s, 8)?)
}

/// PAX records: "<len> <key>=<value>\n".
fn parse_pax(mut d: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    while !d.is_empty() {
        let sp = d
            .iter()
            .position(|&c| c == b' ')
            .context("malformed PAX record")?;
        let len: usize = std::str::from_utf8(&d[..sp])?
            .parse()
            .context("malformed PAX record length")?;
        if len <= sp + 1 || len > d.len() || d[len - 1] != b'\n' {
            bail!("malformed PAX record");
        }
        let rec = &d[sp + 1..len - 1];
        let eq = rec
            .iter()
            .position(|&c| c == b'=')
            .context("malformed PAX record")?;
        out.push((rec[..eq].to_vec(), rec[eq + 1..].to_vec()));
        d = &d[len..];
    }
    Ok(out)
}

fn apply_pax(h: &mut Header, key: &[u8], v: Vec<u8>) -> Result<()> {
    let num = |v: &[u8]| -> Result<u64> {
        std::str::from_utf8(v)?
            .parse::<u64>()
            .with_context(|| format!("invalid PAX {}", String::from_utf8_lossy(key)))
    };
    match key {
        b"path" => h.path = v,
        b"linkpath" => h.link = v,
        b"size" => h.size = num(&v)?,
        b"uid" => h.uid = num(&v)?,
        b"gid" => h.gid = num(&v)?,
        b"mtime" => {
            let s = std::str::from_utf8(&v)?;
            let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
            h.mtime = secs.parse().context("invalid PAX mtime")?;
            let mut f: String = frac.chars().take(9).collect();
            while f.len() < 9 {
                f.push('0');
            }
            h.mtime_nsec = f.parse().unwrap_or(0);
        }
        _ => {
            if let Some(name) = key.strip_prefix(b"SCHILY.xattr.") {
                h.xattrs.push((name.to_vec(), v));
            } else if let Some(name) = key.strip_prefix(b"LIBARCHIVE.xattr.") {
                // libarchive: URL-encoded name, base64 value.
                h.xattrs.push((url_decode(name), base64_decode(&v)?));
            }
        }
    }
    Ok(())
}

fn url_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' && i + 2 < s.len() {
            if let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&s[i + 1..i + 3]), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

fn base64_decode(s: &[u8]) -> Result<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for &c in s.iter().filter(|&&c| c != b'=') {
        acc = (acc << 6) | val(c).context("invalid base64 in PAX xattr")?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

/// Writes ustar entries, with a PAX header in front when a name or size does not fit.
pub(crate) struct Writer<W: Write> {
    inner: W,
}

impl<W: Write> Writer<W> {
    pub(crate) fn new(inner: W) -> Self {
        Writer { inner }
    }

    /// Appends a regular file of exactly `size` bytes read from `data`.
    pub(crate) fn file(
        &mut self,
        path: &str,
        mode: u32,
        size: u64,
        data: &mut dyn Read,
    ) -> Result<()> {
        self.header(path, b'0', mode, size, "")?;
        let n = io::copy(&mut data.take(size), &mut self.inner)?;
        if n != size {
            bail!("{path}: expected {size} bytes, read {n}");
        }
        self.inner
            .write_all(&[0u8; BLOCK][..padding(size) as usize])?;
        Ok(())
    }

    pub(crate) fn bytes(&mut self, path: &str, data: &[u8]) -> Result<()> {
        self.file(path, 0o644, data.len() as u64, &mut &data[..])
    }

    pub(crate) fn dir(&mut self, path: &str) -> Result<()> {
        let p = format!("{}/", path.trim_end_matches('/'));
        self.header(&p, b'5', 0o755, 0, "")
    }

    pub(crate) fn symlink(&mut self, path: &str, target: &str) -> Result<()> {
        self.header(path, b'2', 0o777, 0, target)
    }

    fn header(&mut self, path: &str, typeflag: u8, mode: u32, size: u64, link: &str) -> Result<()> {
        let mut pax = Vec::new();
        if path.len() > 100 {
            pax.push(("path", path.as_bytes()));
        }
        if link.len() > 100 {
            pax.push(("linkpath", link.as_bytes()));
        }
        let size_s = size.to_string();
        if size >= 0o77777777777 {
            pax.push(("size", size_s.as_bytes()));
        }
        if !pax.is_empty() {
            let mut body = Vec::new();
            for (k, v) in pax {
                body.extend(pax_record(k, v));
            }
            let h = raw_header(b"././@PaxHeader", b'x', 0o644, body.len() as u64, b"");
            self.inner.write_all(&h)?;
            self.inner.write_all(&body)?;
            self.inner
                .write_all(&[0u8; BLOCK][..padding(body.len() as u64) as usize])?;
        }
        let h = raw_header(path.as_bytes(), typeflag, mode, size, link.as_bytes());
        self.inner.write_all(&h)?;
        Ok(())
    }

    /// Appends an entry with every field of `h` (owners, mtime in seconds, device
    /// numbers, xattrs as PAX `SCHILY.xattr.*`); a regular file's data is read from
    /// `data`. Nothing else goes into the header (no names of owners, no atime or ctime),
    /// so the same tree always gives the same bytes: what build layers need.
    pub(crate) fn entry(&mut self, h: &Header, data: Option<&mut dyn Read>) -> Result<()> {
        let typeflag = match h.kind {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::Char => b'3',
            Kind::Block => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
        };
        let size = if h.kind == Kind::File { h.size } else { 0 };
        let mut pax: Vec<(String, Vec<u8>)> = Vec::new();
        if h.path.len() > 100 {
            pax.push(("path".into(), h.path.clone()));
        }
        if h.link.len() > 100 {
            pax.push(("linkpath".into(), h.link.clone()));
        }
        if size >= 0o77777777777 {
            pax.push(("size".into(), size.to_string().into_bytes()));
        }
        if h.uid > 0o7777777 {
            pax.push(("uid".into(), h.uid.to_string().into_bytes()));
        }
        if h.gid > 0o7777777 {
            pax.push(("gid".into(), h.gid.to_string().into_bytes()));
        }
        let mut xattrs = h.xattrs.clone();
        xattrs.sort();
        for (k, v) in xattrs {
            let mut key = b"SCHILY.xattr.".to_vec();
            key.extend_from_slice(&k);
            pax.push((String::from_utf8_lossy(&key).into_owned(), v));
        }
        if !pax.is_empty() {
            let mut body = Vec::new();
            for (k, v) in &pax {
                body.extend(pax_record(k, v));
            }
            let ph = raw_header(b"././@PaxHeader", b'x', 0o644, body.len() as u64, b"");
            self.inner.write_all(&ph)?;
            self.inner.write_all(&body)?;
            self.inner
                .write_all(&[0u8; BLOCK][..padding(body.len() as u64) as usize])?;
        }
        let mut raw = raw_header(&h.path, typeflag, h.mode, size, &h.link);
        let octal = |f: &mut [u8], v: u64| {
            let s = format!("{:0w$o}", v, w = f.len() - 1);
            let s = s.as_bytes();
            let s = &s[s.len().saturating_sub(f.len() - 1)..];
            f[..s.len()].copy_from_slice(s);
        };
        octal(&mut raw[108..116], h.uid.min(0o7777777));
        octal(&mut raw[116..124], h.gid.min(0o7777777));
        octal(&mut raw[136..148], h.mtime.max(0) as u64);
        if matches!(h.kind, Kind::Char | Kind::Block) {
            octal(&mut raw[329..337], h.devmajor as u64);
            octal(&mut raw[337..345], h.devminor as u64);
        }
        raw[148..156].copy_from_slice(b"        ");
        let sum: u64 = raw.iter().map(|&c| c as u64).sum();
        raw[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        self.inner.write_all(&raw)?;
        if size > 0 {
            let data = data.with_context(|| format!("{}: no data", h.path_lossy()))?;
            let n = io::copy(&mut data.take(size), &mut self.inner)?;
            if n != size {
                bail!("{}: expected {size} bytes, read {n}", h.path_lossy());
            }
            self.inner
                .write_all(&[0u8; BLOCK][..padding(size) as usize])?;
        }
        Ok(())
    }

    /// The two zero blocks that end an archive.
    pub(crate) fn finish(mut self) -> Result<W> {
        self.inner.write_all(&[0u8; BLOCK * 2])?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

fn pax_record(k: &str, v: &[u8]) -> Vec<u8> {
    // The length counts its own digits.
    let body = k.len() + v.len() + 3;
    let mut len = body + body.to_string().len();
    if len.to_string().len() != body.to_string().len() {
        len += 1;
    }
    let mut r = format!("{len} {k}=").into_bytes();
    r.extend_from_slice(v);
    r.push(b'\n');
    r
}

fn raw_header(path: &[u8], typeflag: u8, mode: u32, size: u64, link: &[u8]) -> [u8; BLOCK] {
    let mut h = [0u8; BLOCK];
    let n = path.len().min(100);
    h[..n].copy_from_slice(&path[..n]);
    let octal = |f: &mut [u8], v: u64| {
        let s = format!("{:0w$o}", v, w = f.len() - 1);
        let s = s.as_bytes();
        let s = &s[s.len().saturating_sub(f.len() - 1)..];
        f[..s.len()].copy_from_slice(s);
    };
    octal(&mut h[100..108], mode as u64);
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], size.min(0o77777777777));
    octal(&mut h[136..148], 0);
    h[156] = typeflag;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u64 = h.iter().map(|&c| c as u64).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A test-side tar builder for hostile and odd archives: raw control over every field.
    pub(crate) struct Build {
        pub(crate) out: Vec<u8>,
    }

    impl Build {
        pub(crate) fn new() -> Self {
            Build { out: Vec::new() }
        }
        pub(crate) fn entry(
            &mut self,
            path: &str,
            typeflag: u8,
            mode: u32,
            data: &[u8],
            link: &str,
        ) -> &mut Self {
            let h = raw_header(
                path.as_bytes(),
                typeflag,
                mode,
                data.len() as u64,
                link.as_bytes(),
            );
            self.out.extend_from_slice(&h);
            self.out.extend_from_slice(data);
            self.out
                .extend_from_slice(&[0u8; BLOCK][..padding(data.len() as u64) as usize]);
            self
        }
        pub(crate) fn owned(
            &mut self,
            path: &str,
            typeflag: u8,
            mode: u32,
            uid: u64,
            gid: u64,
            data: &[u8],
        ) -> &mut Self {
            let mut h = raw_header(path.as_bytes(), typeflag, mode, data.len() as u64, b"");
            let s = format!("{uid:07o}");
            h[108..115].copy_from_slice(s.as_bytes());
            let s = format!("{gid:07o}");
            h[116..123].copy_from_slice(s.as_bytes());
            rechecksum(&mut h);
            self.out.extend_from_slice(&h);
            self.out.extend_from_slice(data);
            self.out
                .extend_from_slice(&[0u8; BLOCK][..padding(data.len() as u64) as usize]);
            self
        }
        pub(crate) fn device(
            &mut self,
            path: &str,
            typeflag: u8,
            major: u32,
            minor: u32,
        ) -> &mut Self {
            let mut h = raw_header(path.as_bytes(), typeflag, 0o600, 0, b"");
            h[329..336].copy_from_slice(format!("{major:07o}").as_bytes());
            h[337..344].copy_from_slice(format!("{minor:07o}").as_bytes());
            rechecksum(&mut h);
            self.out.extend_from_slice(&h);
            self
        }
        pub(crate) fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Self {
            let mut body = Vec::new();
            for (k, v) in records {
                body.extend(pax_record(k, v));
            }
            self.entry("PaxHeader", b'x', 0o644, &body.clone(), "")
        }
        pub(crate) fn gnu_long(&mut self, typeflag: u8, name: &str) -> &mut Self {
            let mut d = name.as_bytes().to_vec();
            d.push(0);
            self.entry("././@LongLink", typeflag, 0o644, &d, "")
        }
        pub(crate) fn file(&mut self, path: &str, data: &[u8]) -> &mut Self {
            self.entry(path, b'0', 0o644, data, "")
        }
        pub(crate) fn dir(&mut self, path: &str) -> &mut Self {
            self.entry(path, b'5', 0o755, b"", "")
        }
        pub(crate) fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
            self.entry(path, b'2', 0o777, b"", target)
        }
        pub(crate) fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
            self.entry(path, b'1', 0o644, b"", target)
        }
        pub(crate) fn finish(&mut self) -> Vec<u8> {
            let mut v = std::mem::take(&mut self.out);
            v.extend_from_slice(&[0u8; BLOCK * 2]);
            v
        }
        pub(crate) fn finish_without_eof(&mut self) -> Vec<u8> {
            std::mem::take(&mut self.out)
        }
    }

    fn rechecksum(h: &mut [u8; BLOCK]) {
        h[148..156].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&c| c as u64).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    }

    fn all(data: &[u8]) -> Result<Vec<(Header, Vec<u8>)>> {
        let mut r = Reader::new(data);
        let mut out = Vec::new();
        while let Some(h) = r.next()? {
            let mut d = Vec::new();
            r.data().read_to_end(&mut d)?;
            out.push((h, d));
        }
        Ok(out)
    }

    #[test]
    fn reads_what_it_writes_with_long_names() {
        let long = format!("{}/file", "d".repeat(150));
        let mut w = Writer::new(Vec::new());
        w.dir("a").unwrap();
        w.bytes(&long, b"hello").unwrap();
        w.symlink("l", &"t".repeat(200)).unwrap();
        let data = w.finish().unwrap();
        let e = all(&data).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].0.kind, Kind::Dir);
        assert_eq!(e[1].0.path, long.as_bytes());
        assert_eq!(e[1].1, b"hello");
        assert_eq!(e[2].0.link.len(), 200);
    }

    #[test]
    fn entries_keep_owners_times_and_devices() {
        let mut w = Writer::new(Vec::new());
        let mut file = Header::new("bin/tool", Kind::File);
        (file.mode, file.uid, file.gid) = (0o4755, 1000, 3_000_000);
        (file.mtime, file.size) = (1_700_000_000, 3);
        w.entry(&file, Some(&mut &b"abc"[..])).unwrap();
        let mut link = Header::new("bin/again", Kind::HardLink);
        link.link = b"bin/tool".to_vec();
        w.entry(&link, None).unwrap();
        let mut dev = Header::new("dev/null", Kind::Char);
        (dev.mode, dev.devmajor, dev.devminor) = (0o666, 1, 3);
        w.entry(&dev, None).unwrap();
        let mut dir = Header::new("home", Kind::Dir);
        (dir.mode, dir.uid) = (0o700, 5);
        w.entry(&dir, None).unwrap();
        let e = all(&w.finish().unwrap()).unwrap();
        assert_eq!(e.len(), 4);
        let h = &e[0].0;
        assert_eq!(
            (h.mode, h.uid, h.gid, h.mtime),
            (0o4755, 1000, 3_000_000, 1_700_000_000)
        );
        assert_eq!(e[0].1, b"abc");
        assert_eq!(
            (e[1].0.kind, e[1].0.link.as_slice()),
            (Kind::HardLink, &b"bin/tool"[..])
        );
        assert_eq!(
            (e[2].0.kind, e[2].0.devmajor, e[2].0.devminor),
            (Kind::Char, 1, 3)
        );
        assert_eq!(
            (e[3].0.kind, e[3].0.path.as_slice(), e[3].0.uid),
            (Kind::Dir, &b"home/"[..], 5)
        );
    }

    #[test]
    fn pax_gnu_and_no_eof() {
        let mut b = Build::new();
        b.pax(&[
            ("path", b"pax/name/very-long"),
            ("mtime", b"1700000000.5"),
            ("uid", b"3000000"),
            ("SCHILY.xattr.security.capability", b"\x01\x00\x00\x02"),
        ])
        .file("short", b"x")
        .gnu_long(b'L', "gnu/long/name")
        .file("trunc", b"yy")
        .gnu_long(b'K', "gnu/long/target")
        .symlink("s", "t");
        let data = b.finish_without_eof();
        let e = all(&data).unwrap();
        assert_eq!(e[0].0.path, b"pax/name/very-long");
        assert_eq!(e[0].0.uid, 3_000_000);
        assert_eq!(e[0].0.mtime, 1_700_000_000);
        assert_eq!(e[0].0.mtime_nsec, 500_000_000);
        assert_eq!(e[0].0.xattrs[0].0, b"security.capability");
        assert_eq!(e[1].0.path, b"gnu/long/name");
        assert_eq!(e[1].1, b"yy");
        assert_eq!(e[2].0.link, b"gnu/long/target");
    }

    #[test]
    fn refuses_truncation_bad_checksum_and_unknown_types() {
        let mut b = Build::new();
        b.file("f", &[1u8; 1000]);
        let data = b.finish();
        assert!(all(&data[..800]).is_err());
        assert!(all(&data[..300]).is_err());
        let mut bad = data.clone();
        bad[10] ^= 1;
        assert!(all(&bad).unwrap_err().to_string().contains("checksum"));
        let mut b = Build::new();
        b.entry("sparse", b'S', 0o644, b"", "");
        assert!(all(&b.finish())
            .unwrap_err()
            .to_string()
            .contains("unsupported"));
        let mut b = Build::new();
        b.entry("huge", b'x', 0o644, b"", "");
        // An extended header with no entry after it.
        assert!(all(&b.finish_without_eof()).is_err());
    }

    #[test]
    fn base64_and_numbers() {
        assert_eq!(base64_decode(b"aGVsbG8=").unwrap(), b"hello");
        assert_eq!(numeric(b"0000644\0").unwrap(), 0o644);
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 0, 1, 0]).unwrap(), 256);
        assert_eq!(url_decode(b"user.a%3Db"), b"user.a=b");
    }
}
