//! An overlay upper directory as a layer tar: what a RUN step (or a COPY written through
//! an overlay, or `commit` of a container) changed. New and changed entries as they are,
//! deletions as `.wh.NAME` (overlay's 0:0 character devices, or the rootless
//! `user.overlay.whiteout` files), opaque directories with `.wh..wh..opq`, files sharing
//! an inode as one file and hardlinks to it, owners, modes, device numbers and xattrs
//! (overlay's own `*.overlay.*` ones are not content). Entries are sorted by name and the
//! headers carry nothing but those fields and the mtime, so the same tree gives the same
//! bytes. Every entry is reached by fd without following anything.

use std::collections::{BTreeSet, HashMap};
use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;

use crate::front::digest::{Digest, Hashing};
use crate::front::images::tar::{Header, Kind, Writer};
use crate::sys::files as xf;

/// The tar written: its digest (the diff id of an uncompressed layer) and length.
pub(crate) struct Written {
    pub(crate) diff_id: Digest,
    pub(crate) size: u64,
}

/// Writes the layer tar of `upper` to the new file `out`.
/// Entries named in `skip` (relative, no leading `/`) are left out.
pub(crate) fn write_layer(upper: &Path, out: &Path, skip: &BTreeSet<Vec<u8>>) -> Result<Written> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .with_context(|| format!("create {}", out.display()))?;
    let mut w = Writer::new(Hashing::new(io::BufWriter::with_capacity(128 * 1024, f)));
    let root = open_dir(None, upper.as_os_str())?;
    let mut d = Differ {
        links: HashMap::new(),
        skip,
    };
    d.dir(&mut w, root.as_fd(), b"")
        .with_context(|| format!("diff {}", upper.display()))?;
    let (diff_id, size, bw) = w.finish()?.finish();
    let f = bw.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    Ok(Written { diff_id, size })
}

struct Differ<'a> {
    /// (dev, ino) of files with several links -> the first name written.
    links: HashMap<(u64, u64), Vec<u8>>,
    skip: &'a BTreeSet<Vec<u8>>,
}

fn open_dir(at: Option<BorrowedFd>, name: &OsStr) -> Result<OwnedFd> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let r = match at {
        Some(d) => nix::fcntl::openat(d, name, flags, Mode::empty()),
        None => nix::fcntl::open(Path::new(name), flags, Mode::empty()),
    };
    r.with_context(|| format!("open {}", Path::new(name).display()))
}

fn at_path(dir: BorrowedFd, name: &OsStr) -> CString {
    let mut p = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
    p.extend_from_slice(name.as_bytes());
    CString::new(p).unwrap_or_else(|_| CString::from(c"/nonexistent"))
}

fn sorted_entries(dir: BorrowedFd) -> Result<Vec<OsString>> {
    let d = nix::dir::Dir::from_fd(nix::unistd::dup(dir)?)?;
    let mut v = Vec::new();
    for e in d.into_iter() {
        let e = e?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            v.push(OsStr::from_bytes(n).to_os_string());
        }
    }
    v.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    Ok(v)
}

fn overlay_xattr(dir: BorrowedFd, name: &OsStr, key: &str) -> Option<Vec<u8>> {
    [
        format!("trusted.overlay.{key}"),
        format!("user.overlay.{key}"),
    ]
    .iter()
    .find_map(|k| {
        let k = CString::new(k.as_str()).ok()?;
        xf::lgetxattr(&at_path(dir, name), &k).ok()
    })
}

/// The entry's xattrs that are content (not overlay's bookkeeping).
fn content_xattrs(dir: BorrowedFd, name: &OsStr) -> Vec<(Vec<u8>, Vec<u8>)> {
    let p = at_path(dir, name);
    let mut out = Vec::new();
    for key in xf::llistxattr(&p).unwrap_or_default() {
        let k = key.as_bytes();
        if k.starts_with(b"trusted.overlay.") || k.starts_with(b"user.overlay.") {
            continue;
        }
        if let Ok(v) = xf::lgetxattr(&p, &key) {
            out.push((k.to_vec(), v));
        }
    }
    out
}

fn plain_header(path: Vec<u8>, kind: Kind, st: &libc::stat) -> Header {
    Header {
        path,
        link: Vec::new(),
        kind,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid as u64,
        gid: st.st_gid as u64,
        size: 0,
        mtime: st.st_mtime,
        mtime_nsec: 0,
        devmajor: 0,
        devminor: 0,
        xattrs: Vec::new(),
    }
}

fn whiteout(path: Vec<u8>) -> Header {
    Header {
        path,
        link: Vec::new(),
        kind: Kind::File,
        mode: 0o600,
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

impl Differ<'_> {
    fn dir<W: Write>(&mut self, w: &mut Writer<W>, dir: BorrowedFd, prefix: &[u8]) -> Result<()> {
        for name in sorted_entries(dir)? {
            let name = name.as_os_str();
            let mut path = prefix.to_vec();
            path.extend_from_slice(name.as_bytes());
            if self.skip.contains(&path) {
                continue;
            }
            let rel = String::from_utf8_lossy(&path).into_owned();
            let st = nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW)
                .with_context(|| format!("stat {rel}"))?;
            let fmt = st.st_mode & libc::S_IFMT;
            let is_whiteout = (fmt == libc::S_IFCHR && st.st_rdev == 0)
                || (fmt == libc::S_IFREG
                    && st.st_size == 0
                    && overlay_xattr(dir, name, "whiteout").is_some());
            if is_whiteout {
                let mut wh = prefix.to_vec();
                wh.extend_from_slice(b".wh.");
                wh.extend_from_slice(name.as_bytes());
                w.entry(&whiteout(wh), None)?;
                continue;
            }
            let mut h = match fmt {
                libc::S_IFDIR => {
                    let mut p = path.clone();
                    p.push(b'/');
                    plain_header(p, Kind::Dir, &st)
                }
                libc::S_IFREG => plain_header(path.clone(), Kind::File, &st),
                libc::S_IFLNK => {
                    let mut h = plain_header(path.clone(), Kind::Symlink, &st);
                    h.link = nix::fcntl::readlinkat(dir, name)?.as_bytes().to_vec();
                    h
                }
                libc::S_IFCHR | libc::S_IFBLK => {
                    let kind = if fmt == libc::S_IFCHR {
                        Kind::Char
                    } else {
                        Kind::Block
                    };
                    let mut h = plain_header(path.clone(), kind, &st);
                    h.devmajor = libc::major(st.st_rdev);
                    h.devminor = libc::minor(st.st_rdev);
                    h
                }
                libc::S_IFIFO => plain_header(path.clone(), Kind::Fifo, &st),
                // Sockets are not content.
                _ => continue,
            };
            if fmt != libc::S_IFLNK {
                h.xattrs = content_xattrs(dir, name);
            }
            if fmt == libc::S_IFREG {
                if st.st_nlink > 1 {
                    let key = (st.st_dev, st.st_ino);
                    if let Some(first) = self.links.get(&key) {
                        h.kind = Kind::HardLink;
                        h.link = first.clone();
                        h.xattrs.clear();
                        w.entry(&h, None)?;
                        continue;
                    }
                    self.links.insert(key, path.clone());
                }
                let fd = nix::fcntl::openat(
                    dir,
                    name,
                    OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .with_context(|| format!("open {rel}"))?;
                let mut f = File::from(fd);
                h.size = st.st_size as u64;
                w.entry(&h, Some(&mut f)).with_context(|| rel.clone())?;
                continue;
            }
            w.entry(&h, None)?;
            if fmt == libc::S_IFDIR {
                let sub = open_dir(Some(dir), name)?;
                let mut sub_prefix = path.clone();
                sub_prefix.push(b'/');
                if overlay_xattr(dir, name, "opaque").as_deref() == Some(b"y") {
                    let mut p = sub_prefix.clone();
                    p.extend_from_slice(b".wh..wh..opq");
                    w.entry(&whiteout(p), None)?;
                }
                self.dir(w, sub.as_fd(), &sub_prefix)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::images::tar::Reader;

    fn scratch(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("berth-diff-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// (path, kind, link, mode, uid) of every entry.
    fn entries(tar: &Path) -> Vec<(String, Kind, String, u32, u64)> {
        let mut r = Reader::new(std::fs::File::open(tar).unwrap());
        let mut v = Vec::new();
        while let Some(h) = r.next().unwrap() {
            v.push((
                h.path_lossy(),
                h.kind,
                String::from_utf8_lossy(&h.link).into_owned(),
                h.mode,
                h.uid,
            ));
        }
        v
    }

    #[test]
    fn upper_dir_as_a_layer() {
        if !nix::unistd::geteuid().is_root() {
            // Whiteouts (0:0 character devices) and trusted.* xattrs need root.
            return;
        }
        let d = scratch("upper");
        let up = d.join("upper");
        std::fs::create_dir_all(up.join("etc/sub")).unwrap();
        std::fs::create_dir_all(up.join("opq")).unwrap();
        std::fs::write(up.join("etc/b"), "bee").unwrap();
        std::fs::write(up.join("etc/a"), "a").unwrap();
        std::fs::hard_link(up.join("etc/a"), up.join("etc/sub/a2")).unwrap();
        std::os::unix::fs::symlink("/target", up.join("link")).unwrap();
        std::os::unix::fs::chown(up.join("etc/b"), Some(1000), Some(1000)).unwrap();
        nix::sys::stat::mknod(
            &up.join("etc/gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            Mode::empty(),
            0,
        )
        .unwrap();
        let opq = CString::new(up.join("opq").as_os_str().as_bytes()).unwrap();
        xf::lsetxattr(&opq, c"trusted.overlay.opaque", b"y").unwrap();
        xf::lsetxattr(&opq, c"trusted.overlay.origin", b"x").unwrap();
        std::fs::write(up.join("opq/new"), "n").unwrap();
        std::fs::write(up.join("etc/hosts"), "").unwrap();
        let skip: BTreeSet<Vec<u8>> = [b"etc/hosts".to_vec()].into();
        let t1 = d.join("1.tar");
        let w1 = write_layer(&up, &t1, &skip).unwrap();
        let got = entries(&t1);
        let names: Vec<(&str, Kind)> = got.iter().map(|e| (e.0.as_str(), e.1)).collect();
        assert_eq!(
            names,
            vec![
                ("etc/", Kind::Dir),
                ("etc/a", Kind::File),
                ("etc/b", Kind::File),
                ("etc/.wh.gone", Kind::File),
                ("etc/sub/", Kind::Dir),
                ("etc/sub/a2", Kind::HardLink),
                ("link", Kind::Symlink),
                ("opq/", Kind::Dir),
                ("opq/.wh..wh..opq", Kind::File),
                ("opq/new", Kind::File),
            ]
        );
        assert_eq!(got[5].2, "etc/a");
        assert_eq!(got[6].2, "/target");
        assert_eq!(got[2].4, 1000);
        // Overlay's own xattrs are not content.
        let mut r = Reader::new(std::fs::File::open(&t1).unwrap());
        while let Some(h) = r.next().unwrap() {
            assert!(h
                .xattrs
                .iter()
                .all(|(k, _)| !k.starts_with(b"trusted.overlay.")));
        }
        // The same tree, the same bytes.
        let t2 = d.join("2.tar");
        let w2 = write_layer(&up, &t2, &skip).unwrap();
        assert_eq!(w1.diff_id, w2.diff_id);
        assert_eq!(w1.size, std::fs::metadata(&t1).unwrap().len());
        let _ = std::fs::remove_dir_all(&d);
    }
}
