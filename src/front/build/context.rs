//! What COPY and ADD read: the build context (a directory, filtered by `.dockerignore`)
//! or another stage's or image's root filesystem (`--from`), and how sources reach the
//! step's root filesystem. Sources never leave their root: names are cleaned lexically
//! (`..` past the root is refused, `/x` is the root's `x`), the tree is walked by fd
//! without following symlinks (a symlink is copied as a symlink, whatever it points at),
//! and destinations are resolved inside the step's root (`rootfs::resolve`).

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::io::Read;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::Mode;
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid};

use crate::front::digest::Hashing;
use crate::front::images::ops::glob;
use crate::rootfs::resolve;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Dir,
    File,
    Symlink,
    Other,
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) kind: EntryKind,
    pub(crate) mode: u32,
    pub(crate) mtime: i64,
    pub(crate) size: u64,
    pub(crate) link: Vec<u8>,
}

/// `.dockerignore`: patterns in order, the last match decides (`!` re-includes).
#[derive(Clone, Debug, Default)]
pub(crate) struct Ignore {
    rules: Vec<(bool, Vec<String>)>,
}

impl Ignore {
    pub(crate) fn parse(text: &str) -> Ignore {
        let mut rules = Vec::new();
        for l in text.lines() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (neg, p) = match l.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, l),
            };
            let segs = clean(p)
                .map(|c| c.split('/').map(String::from).collect::<Vec<_>>())
                .unwrap_or_default();
            if segs.is_empty() || segs == [""] {
                continue;
            }
            rules.push((neg, segs));
        }
        Ignore { rules }
    }

    fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(neg, _)| *neg)
    }

    /// Whether `rel` (cleaned, relative) is excluded from the context. A pattern that
    /// matches a parent directory matches everything below it.
    pub(crate) fn excluded(&self, rel: &str) -> bool {
        let path: Vec<&str> = rel.split('/').collect();
        let mut out = false;
        for (neg, pat) in &self.rules {
            let hit = (1..=path.len()).any(|n| segs_match(pat, &path[..n]));
            if hit {
                out = !neg;
            }
        }
        out
    }
}

/// Pattern segments against path segments; `**` matches any number of segments.
fn segs_match(p: &[String], s: &[&str]) -> bool {
    match p.first() {
        None => s.is_empty(),
        Some(x) if x == "**" => (0..=s.len()).any(|i| segs_match(&p[1..], &s[i..])),
        Some(x) => !s.is_empty() && glob(x, s[0]) && segs_match(&p[1..], &s[1..]),
    }
}

/// A name cleaned lexically inside its root: no leading `/`, no `.`, `..` applied, never
/// above the root (None then). The root itself is "".
pub(crate) fn clean(name: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

/// A tree COPY or ADD reads from.
pub(crate) struct Tree {
    root: OwnedFd,
    /// Every entry not excluded, by cleaned relative name ("" is the root).
    pub(crate) entries: BTreeMap<String, Entry>,
}

fn entry_of(st: &libc::stat) -> Entry {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => EntryKind::Dir,
        libc::S_IFREG => EntryKind::File,
        libc::S_IFLNK => EntryKind::Symlink,
        _ => EntryKind::Other,
    };
    Entry {
        kind,
        mode: st.st_mode & 0o7777,
        mtime: st.st_mtime,
        size: st.st_size as u64,
        link: Vec::new(),
    }
}

fn open_dir_at(dir: BorrowedFd, name: &OsStr) -> nix::Result<OwnedFd> {
    nix::fcntl::openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

impl Tree {
    /// Walks `dir` (never following symlinks), leaving out what `ignore` excludes.
    pub(crate) fn walk(dir: &Path, ignore: Option<&Ignore>) -> Result<Tree> {
        let root = nix::fcntl::open(
            dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| anyhow!("{}: {}", dir.display(), e.desc()))?;
        let st = nix::sys::stat::fstat(root.as_fd())?;
        let mut entries = BTreeMap::new();
        entries.insert(String::new(), entry_of(&st));
        let mut t = Tree { root, entries };
        let fd = nix::unistd::dup(t.root.as_fd())?;
        t.walk_dir(fd, "", ignore)?;
        Ok(t)
    }

    /// Only the parts of `dir` that `sources` can name (each source's directory before its
    /// first glob character): another stage's or image's root filesystem is not walked
    /// whole. A name reached through a symlink is not found.
    pub(crate) fn walk_sources(dir: &Path, sources: &[String]) -> Result<Tree> {
        let mut bases: Vec<String> = Vec::new();
        for s in sources {
            let Some(c) = clean(s) else {
                bail!("forbidden path outside the build context: {s}");
            };
            let base = match c.find(['*', '?', '[']) {
                Some(i) => c[..i]
                    .rsplit_once('/')
                    .map_or(String::new(), |(b, _)| b.to_string()),
                None => c,
            };
            bases.push(base);
        }
        if bases.iter().any(|b| b.is_empty()) {
            return Tree::walk(dir, None);
        }
        let root = nix::fcntl::open(
            dir,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| anyhow!("{}: {}", dir.display(), e.desc()))?;
        let st = nix::sys::stat::fstat(root.as_fd())?;
        let mut entries = BTreeMap::new();
        entries.insert(String::new(), entry_of(&st));
        let mut t = Tree { root, entries };
        bases.sort();
        bases.dedup();
        'bases: for b in bases {
            if t.entries.contains_key(&b) {
                continue;
            }
            let comps: Vec<&str> = b.split('/').collect();
            let mut cur = nix::unistd::dup(t.root.as_fd())?;
            for (i, c) in comps.iter().enumerate() {
                let Ok(st) = nix::sys::stat::fstatat(cur.as_fd(), *c, AtFlags::AT_SYMLINK_NOFOLLOW)
                else {
                    continue 'bases;
                };
                let rel = comps[..=i].join("/");
                let mut e = entry_of(&st);
                if i + 1 < comps.len() {
                    if e.kind != EntryKind::Dir {
                        continue 'bases;
                    }
                    cur = open_dir_at(cur.as_fd(), OsStr::new(c))?;
                    continue;
                }
                match e.kind {
                    EntryKind::Dir => {
                        let sub = open_dir_at(cur.as_fd(), OsStr::new(c))?;
                        t.entries.insert(rel.clone(), e);
                        t.walk_dir(sub, &format!("{rel}/"), None)?;
                    }
                    EntryKind::Symlink => {
                        e.link = nix::fcntl::readlinkat(cur.as_fd(), OsStr::new(c))?
                            .as_bytes()
                            .to_vec();
                        t.entries.insert(rel, e);
                    }
                    _ => {
                        t.entries.insert(rel, e);
                    }
                }
            }
        }
        Ok(t)
    }

    fn walk_dir(&mut self, dir: OwnedFd, prefix: &str, ignore: Option<&Ignore>) -> Result<()> {
        let d = nix::dir::Dir::from_fd(nix::unistd::dup(dir.as_fd())?)?;
        let mut names = Vec::new();
        for e in d.into_iter() {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(OsStr::from_bytes(n).to_os_string());
            }
        }
        for name in names {
            let Some(s) = name.to_str() else {
                bail!(
                    "{prefix}{}: names that are not UTF-8 are not supported in a build context",
                    name.to_string_lossy()
                );
            };
            let rel = format!("{prefix}{s}");
            let st = nix::sys::stat::fstatat(
                dir.as_fd(),
                name.as_os_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .with_context(|| format!("stat {rel}"))?;
            let mut e = entry_of(&st);
            let excluded = ignore.is_some_and(|i| i.excluded(&rel));
            if e.kind == EntryKind::Dir {
                if excluded && !ignore.is_some_and(|i| i.has_exceptions()) {
                    continue;
                }
                let sub = open_dir_at(dir.as_fd(), name.as_os_str())
                    .with_context(|| format!("open {rel}"))?;
                if !excluded {
                    self.entries.insert(rel.clone(), e);
                }
                self.walk_dir(sub, &format!("{rel}/"), ignore)?;
                continue;
            }
            if excluded {
                continue;
            }
            if e.kind == EntryKind::Symlink {
                e.link = nix::fcntl::readlinkat(dir.as_fd(), name.as_os_str())?
                    .as_bytes()
                    .to_vec();
            }
            self.entries.insert(rel, e);
        }
        // A directory kept only for an exception below it.
        if !prefix.is_empty() {
            let me = prefix.trim_end_matches('/').to_string();
            if !self.entries.contains_key(&me) && self.entries.keys().any(|k| k.starts_with(prefix))
            {
                let st = nix::sys::stat::fstat(dir.as_fd())?;
                self.entries.insert(me, entry_of(&st));
            }
        }
        Ok(())
    }

    /// The entries a COPY/ADD source names: a glob, or one name (cleaned inside the root).
    pub(crate) fn matches(&self, src: &str) -> Result<Vec<String>> {
        let Some(c) = clean(src) else {
            bail!("forbidden path outside the build context: {src}");
        };
        if c.contains(['*', '?', '[']) {
            let v: Vec<String> = self
                .entries
                .keys()
                .filter(|k| !k.is_empty() && glob(&c, k))
                .cloned()
                .collect();
            if v.is_empty() {
                bail!("no source files were specified: {src}");
            }
            return Ok(v);
        }
        if !self.entries.contains_key(&c) {
            bail!("file not found in build context or excluded by .dockerignore: stat {src}: file does not exist");
        }
        Ok(vec![c])
    }

    /// `rel` and everything below it, sorted (a directory before its contents).
    pub(crate) fn below<'a>(
        &'a self,
        rel: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Entry)> + 'a {
        let prefix = if rel.is_empty() {
            String::new()
        } else {
            format!("{rel}/")
        };
        self.entries
            .iter()
            .filter(move |(k, _)| k.as_str() == rel || k.starts_with(&prefix))
    }

    pub(crate) fn open_file(&self, rel: &str) -> Result<std::fs::File> {
        let fd = resolve::open_in_root(
            self.root.as_fd(),
            Path::new(rel),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        )
        .map_err(|e| anyhow!("open {rel}: {}", e.desc()))?;
        Ok(std::fs::File::from(fd))
    }

    /// A digest of what the sources hold (names below each source, kinds, modes, link
    /// targets, file contents; not mtimes): the cache key of a COPY/ADD.
    pub(crate) fn digest(&self, sources: &[String]) -> Result<String> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut h = Hashing::new(std::io::sink());
        let mut put = |b: &[u8]| {
            let _ = std::io::Write::write_all(&mut h, &(b.len() as u64).to_le_bytes());
            let _ = std::io::Write::write_all(&mut h, b);
        };
        for s in sources {
            put(s.as_bytes());
            for (k, e) in self.below(s) {
                put(k.as_bytes());
                put(format!("{:?} {:o}", e.kind, e.mode).as_bytes());
                match e.kind {
                    EntryKind::Symlink => put(&e.link),
                    EntryKind::File => {
                        let mut f = Hashing::new(self.open_file(k)?);
                        loop {
                            match f.read(&mut buf) {
                                Ok(0) => break,
                                Ok(_) => {}
                                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                                Err(e) => return Err(e).with_context(|| format!("read {k}")),
                            }
                        }
                        let (d, _, _) = f.finish();
                        put(d.hex().as_bytes());
                    }
                    _ => {}
                }
            }
        }
        let (d, _, _) = h.finish();
        Ok(d.to_string())
    }
}

/// Owners and mode of what COPY/ADD writes (`--chown`, `--chmod`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Attrs {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) chmod: Option<u32>,
}

/// Where in the step's root a source lands: `dest` is a directory (ends with `/`, or
/// several sources, or an existing directory), else the new name of a single source.
pub(crate) fn copy(
    tree: &Tree,
    src: &str,
    dst_root: BorrowedFd,
    dest: &str,
    dest_is_dir: bool,
    attrs: Attrs,
) -> Result<()> {
    let e = &tree.entries[src];
    let base = src.rsplit('/').next().unwrap_or(src);
    if e.kind == EntryKind::Dir {
        // A directory's contents go into the destination, not the directory itself; an
        // existing destination keeps its own owner and mode (`COPY dir/ /usr/` must not
        // make /usr the context directory's).
        let existed = is_dir_in(dst_root, dest);
        mkdir_all(dst_root, dest)?;
        for (k, e) in tree.below(src) {
            let sub = if src.is_empty() {
                k.as_str()
            } else {
                k.strip_prefix(src).unwrap_or(k).trim_start_matches('/')
            };
            if sub.is_empty() && existed {
                continue;
            }
            let target = if sub.is_empty() {
                dest.to_string()
            } else {
                format!("{}/{sub}", dest.trim_end_matches('/'))
            };
            put(tree, k, e, dst_root, &target, attrs)?;
        }
        // Directories' mtimes after their contents are written.
        for (k, e) in tree.below(src).filter(|(_, e)| e.kind == EntryKind::Dir) {
            let sub = k.strip_prefix(src).unwrap_or(k).trim_start_matches('/');
            if sub.is_empty() {
                continue;
            }
            let target = format!("{}/{sub}", dest.trim_end_matches('/'));
            set_times(dst_root, &target, e.mtime)?;
        }
        return Ok(());
    }
    let target = if dest_is_dir {
        format!("{}/{base}", dest.trim_end_matches('/'))
    } else {
        dest.to_string()
    };
    put(tree, src, e, dst_root, &target, attrs)
}

fn mkdir_all(root: BorrowedFd, path: &str) -> Result<OwnedFd> {
    resolve::mkdir_all_in_root(root, Path::new(path), 0o755)
        .map_err(|e| anyhow!("mkdir {path}: {}", e.desc()))
}

/// The parent directory (created) of `path` in `root`, opened for *at calls, and the name.
fn parent_of(root: BorrowedFd, path: &str) -> Result<(OwnedFd, CString)> {
    let c = clean(path).ok_or_else(|| anyhow!("{path}: outside the root"))?;
    let (parent, name) = c.rsplit_once('/').unwrap_or(("", c.as_str()));
    if name.is_empty() {
        bail!("{path}: not a file name");
    }
    let d = mkdir_all(root, parent)?;
    let d = resolve::reopen_dir(d.as_fd()).map_err(|e| anyhow!("open {parent}: {}", e.desc()))?;
    Ok((
        d,
        CString::new(name).map_err(|_| anyhow!("{path}: contains NUL"))?,
    ))
}

fn put(tree: &Tree, rel: &str, e: &Entry, root: BorrowedFd, target: &str, a: Attrs) -> Result<()> {
    let mode = a.chmod.unwrap_or(e.mode);
    if clean(target).is_some_and(|c| c.is_empty()) {
        // The root itself: only its metadata.
        return Ok(());
    }
    let (dir, name) = parent_of(root, target)?;
    let name = name.as_c_str();
    let existing = nix::sys::stat::fstatat(dir.as_fd(), name, AtFlags::AT_SYMLINK_NOFOLLOW).ok();
    let existing_dir = existing.is_some_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR);
    match e.kind {
        EntryKind::Dir => {
            if existing.is_some() && !existing_dir {
                nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir)?;
            }
            if !existing_dir {
                nix::sys::stat::mkdirat(dir.as_fd(), name, Mode::from_bits_truncate(0o700))
                    .map_err(|e| anyhow!("mkdir {target}: {}", e.desc()))?;
            }
        }
        _ => {
            if existing_dir {
                bail!("cannot overwrite directory {target} with non-directory {rel}");
            }
            if existing.is_some() {
                nix::unistd::unlinkat(dir.as_fd(), name, nix::unistd::UnlinkatFlags::NoRemoveDir)?;
            }
            match e.kind {
                EntryKind::File => {
                    let fd = nix::fcntl::openat(
                        dir.as_fd(),
                        name,
                        OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_WRONLY
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o600),
                    )
                    .map_err(|e| anyhow!("create {target}: {}", e.desc()))?;
                    let mut out = std::fs::File::from(fd);
                    let mut src = tree.open_file(rel)?;
                    std::io::copy(&mut (&mut src).take(u64::MAX), &mut out)
                        .with_context(|| format!("copy {rel}"))?;
                }
                EntryKind::Symlink => {
                    nix::unistd::symlinkat(OsStr::from_bytes(&e.link), dir.as_fd(), name)
                        .map_err(|e| anyhow!("symlink {target}: {}", e.desc()))?;
                }
                _ => {
                    // Sockets, devices and fifos of a context are not copied (Docker
                    // copies fifos; nothing a build needs).
                    return Ok(());
                }
            }
        }
    }
    nix::unistd::fchownat(
        dir.as_fd(),
        name,
        Some(Uid::from_raw(a.uid)),
        Some(Gid::from_raw(a.gid)),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| anyhow!("chown {target}: {}", e.desc()))?;
    if e.kind != EntryKind::Symlink {
        let fd = nix::fcntl::openat(
            dir.as_fd(),
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // fchmod does not take O_PATH fds: through the fd's /proc link, which names this
        // very inode.
        let p = resolve::proc_fd_path(fd.as_fd());
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(|e| anyhow!("chmod {target}: {e}"))?;
    }
    if e.kind != EntryKind::Dir {
        let t = TimeSpec::new(e.mtime, 0);
        nix::sys::stat::utimensat(
            dir.as_fd(),
            name,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        )?;
    }
    Ok(())
}

fn set_times(root: BorrowedFd, target: &str, mtime: i64) -> Result<()> {
    let (dir, name) = parent_of(root, target)?;
    let t = TimeSpec::new(mtime, 0);
    nix::sys::stat::utimensat(
        dir.as_fd(),
        name.as_c_str(),
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

/// Whether `path` in `root` is an existing directory (symlinks resolved inside the root).
pub(crate) fn is_dir_in(root: BorrowedFd, path: &str) -> bool {
    resolve::open_in_root(root, Path::new(path), OFlag::O_PATH | OFlag::O_DIRECTORY).is_ok()
}

/// Whether a file is an archive ADD unpacks (tar, possibly gzip or zstd compressed).
pub(crate) fn is_archive(mut f: std::fs::File) -> bool {
    let Ok((_, mut plain)) = crate::front::images::compress::decompress(&mut f) else {
        return false;
    };
    let mut b = vec![0u8; 512];
    let mut got = 0;
    while got < b.len() {
        match plain.read(&mut b[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => return false,
        }
    }
    got == 512 && &b[257..262] == b"ustar"
}

/// An O_PATH fd of the directory `path` in `root`, created if missing.
pub(crate) fn dest_dir(root: BorrowedFd, path: &str) -> Result<OwnedFd> {
    mkdir_all(root, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_patterns() {
        let i = Ignore::parse("# c\n*.log\n!keep.log\nsecret\n**/tmp\nbuild/**/*.o\n");
        assert!(i.excluded("a.log"));
        assert!(!i.excluded("keep.log"));
        assert!(!i.excluded("dir/a.log"));
        assert!(i.excluded("secret"));
        assert!(i.excluded("secret/x"));
        assert!(i.excluded("tmp"));
        assert!(i.excluded("a/b/tmp/c"));
        assert!(i.excluded("build/x/y/z.o"));
        assert!(i.excluded("build/z.o"));
        assert!(!i.excluded("build/z.c"));
    }

    #[test]
    fn clean_never_leaves_the_root() {
        assert_eq!(clean("/a/./b/../c"), Some("a/c".into()));
        assert_eq!(clean("."), Some(String::new()));
        assert_eq!(clean("../x"), None);
        assert_eq!(clean("a/../../x"), None);
    }
}
