//! `ADD URL DEST`: the file fetched over http(s) with the registry's HTTP client (redirects
//! followed, https verified), as Docker's classic builder does it: saved as is (never
//! unpacked), mode 0600, its mtime the `Last-Modified` header's (the epoch without one),
//! named after the URL's last path segment (else `Content-Disposition`'s file name) when
//! the destination is a directory. Fetched on every build: the cache key holds the digest
//! of what came.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};

use crate::front::digest::{Digest, Hashing};
use crate::front::registry::http::{Body, Connector, Url};

/// Whether an ADD source is a URL (Docker's rule: http and https only).
pub(crate) fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// One fetched source: `dir` holds the single file `name`.
pub(crate) struct Fetched {
    pub(crate) url: String,
    pub(crate) dir: PathBuf,
    /// The name the file takes in a destination directory (None: the URL gives none).
    pub(crate) name: Option<String>,
    pub(crate) digest: Digest,
    pub(crate) mtime: i64,
}

impl Fetched {
    /// The file's name inside `dir`.
    pub(crate) fn file_name(&self) -> &str {
        self.name.as_deref().unwrap_or("download")
    }
}

/// GETs `source` into a new file in the new directory `dir`.
pub(crate) fn fetch(source: &str, dir: &Path) -> Result<Fetched> {
    let opts = crate::front::registry::client::ClientOptions::from_env();
    let conn = Connector::new(opts.cert_dirs, opts.cert_dir, opts.io_timeout);
    let mut url = Url::parse(source).map_err(|e| anyhow!("{e}"))?;
    let mut resp = None;
    for _ in 0..10 {
        let r = conn
            .send("GET", &url, &[], Body::Empty, true)
            .map_err(|e| anyhow!("{e}"))?;
        match r.status {
            200 => {
                resp = Some(r);
                break;
            }
            301 | 302 | 303 | 307 | 308 => {
                let Some(loc) = r.header("Location").map(String::from) else {
                    bail!("redirect ({}) without a location", r.status);
                };
                r.discard();
                url = url.join(&loc).map_err(|e| anyhow!("{e}"))?;
            }
            s => {
                r.discard();
                bail!("failed to GET: the server answered {s}");
            }
        }
    }
    let Some(mut resp) = resp else {
        bail!("too many redirects");
    };
    // The name comes from the URL as written (not where it redirected), as Docker's.
    let name = Url::parse(source)
        .ok()
        .and_then(|u| name_from_path(&u.path))
        .or_else(|| {
            resp.header("Content-Disposition")
                .and_then(name_from_disposition)
        });
    let mtime = resp
        .header("Last-Modified")
        .and_then(parse_http_date)
        .unwrap_or(0);
    std::fs::create_dir(dir).with_context(|| format!("create {}", dir.display()))?;
    let file_name = name.clone().unwrap_or_else(|| "download".into());
    let path = dir.join(&file_name);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("create {}", path.display()))?;
    let mut out = Hashing::new(std::io::BufWriter::with_capacity(128 * 1024, f));
    let mut buf = vec![0u8; 128 * 1024];
    loop {
        let n = match resp.body.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => bail!(
                "reading the body: {}",
                crate::front::registry::http::io_msg(&e)
            ),
        };
        out.write_all(&buf[..n])
            .with_context(|| format!("write {}", path.display()))?;
    }
    let (digest, _, w) = out.finish();
    let f = w.into_inner().map_err(|e| e.into_error())?;
    let t = nix::sys::time::TimeSpec::new(mtime, 0);
    nix::sys::stat::futimens(&f, &t, &t).context("set the mtime")?;
    Ok(Fetched {
        url: source.to_string(),
        dir: dir.to_path_buf(),
        name,
        digest,
        mtime,
    })
}

/// A usable file name (one component, not `.`/`..`).
fn usable(n: &str) -> Option<String> {
    (!n.is_empty() && n != "." && n != ".." && !n.contains(['/', '\0'])).then(|| n.to_string())
}

/// The last segment of a URL path (query left out, percent-decoded); None when the path
/// ends with `/`.
fn name_from_path(path: &str) -> Option<String> {
    let p = path.split(['?', '#']).next().unwrap_or("");
    if p.ends_with('/') {
        return None;
    }
    let seg = p.rsplit('/').next()?;
    usable(&percent_decode(seg)?)
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let h = std::str::from_utf8(&b[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(h, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `attachment; filename="x.tar"`: the file name's last component.
fn name_from_disposition(v: &str) -> Option<String> {
    let p = v.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("filename")
            .then(|| v.trim().trim_matches('"').to_string())
    })?;
    if p.ends_with('/') {
        return None;
    }
    usable(p.rsplit('/').next()?)
}

/// An HTTP date (RFC 7231's IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`) as Unix seconds.
fn parse_http_date(s: &str) -> Option<i64> {
    let f: Vec<&str> = s.split_whitespace().collect();
    let [_, day, mon, year, time, "GMT"] = f.as_slice() else {
        return None;
    };
    let day: u32 = day.parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let mon = MONTHS.iter().position(|m| m == mon)? as u32 + 1;
    let year: i64 = year.parse().ok()?;
    let t: Vec<i64> = time
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = t.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *sec > 60 {
        return None;
    }
    Some(crate::front::units::days_from_civil(year, mon, day) * 86_400 + h * 3600 + m * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls() {
        assert_eq!(
            name_from_path("/a/b/file.tar.gz"),
            Some("file.tar.gz".into())
        );
        assert_eq!(name_from_path("/a/b%20c.txt?x=1"), Some("b c.txt".into()));
        assert_eq!(name_from_path("/a/"), None);
        assert_eq!(name_from_path("/"), None);
        assert_eq!(name_from_path("/a/%2F"), None);
        assert_eq!(name_from_path("/a/.."), None);
        assert_eq!(
            name_from_disposition("attachment; filename=\"dir/x.bin\""),
            Some("x.bin".into())
        );
        assert_eq!(name_from_disposition("inline"), None);
    }

    #[test]
    fn http_dates() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date("Sun, 06 Foo 1994 08:49:37 GMT"), None);
    }
}
