//! `cp [-a] [-L] [-q] SRC DEST`: container <-> host, `-` for a tar stream on stdin or
//! stdout, through the container's root resolved as a root (see `front::cp`): a symlink in
//! the container never leads outside it. Works on stopped containers too.

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::Path;

use anyhow::{anyhow, bail, Result};

use crate::cli::front::CpArgs;
use crate::front::containers::Store;
use crate::front::cp::{self, Owner};
use crate::front::{units, Globals};

/// Docker's `splitCpArg`: `CONTAINER:PATH`, unless the argument is a local path (starts
/// with `/` or `.`, so that local names may hold colons).
fn split(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') || arg.starts_with('.') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((c, p)) if !c.is_empty() => (Some(c), p),
        _ => (None, arg),
    }
}

/// The last component of a path as a copy names it (`/a/b/` -> `b`).
fn base(p: &str) -> String {
    Path::new(p.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `SRC/.`: the directory's contents rather than the directory.
fn contents_only(p: &str) -> bool {
    p.ends_with("/.") || p == "."
}

pub(crate) fn cp(g: &Globals, a: &CpArgs) -> Result<i32> {
    let (sc, sp) = split(&a.source);
    let (dc, dp) = split(&a.destination);
    match (sc, dc) {
        (Some(_), Some(_)) => bail!("copying between containers is not supported"),
        (None, None) => bail!("must specify at least one container source"),
        (Some(c), None) => from_container(g, a, c, sp, dp),
        (None, Some(c)) => into_container(g, a, sp, c, dp),
    }
}

fn report(a: &CpArgs, bytes: u64, dest: &str) {
    if !a.quiet && std::io::stderr().is_terminal() {
        eprintln!(
            "Successfully copied {} to {dest}",
            units::human_size(bytes as f64)
        );
    }
}

fn from_container(g: &Globals, a: &CpArgs, ctr: &str, src: &str, dest: &str) -> Result<i32> {
    if src.is_empty() {
        bail!("{ctr}:{src}: the path in the container is empty");
    }
    let store = Store::new(g);
    let c = store.get_started(ctr)?;
    cp::usable(store.derive(&c))?;
    let rootfs = cp::open_rootfs(&store, &c, true)?;
    let devs = rootfs.devices(&c)?;
    let found = cp::lookup(rootfs.fd.as_fd(), src, a.follow_link)
        .map_err(|e| anyhow!("could not find the file {src} in container {ctr}: {e:#}"))?;
    let Some(st) = found.stat else {
        bail!("could not find the file {src} in container {ctr}");
    };
    let src_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let top = if contents_only(src) || base(src).is_empty() {
        String::new()
    } else {
        base(src)
    };
    if dest == "-" {
        if std::io::stdout().is_terminal() {
            bail!("cowardly refusing to write a tar archive to a terminal: redirect the output");
        }
        let mut out = std::io::stdout().lock();
        let top = if top.is_empty() { ".".into() } else { top };
        cp::archive(&found, &top, Some(&devs), &mut out)?;
        return Ok(0);
    }
    let owner = if a.archive {
        Owner::Keep
    } else {
        Owner::Caller(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    };
    let dpath = Path::new(dest);
    let (host_dir, top) = match std::fs::metadata(dpath) {
        Ok(m) if m.is_dir() => (dpath.to_path_buf(), top),
        Ok(_) if src_dir => bail!("cannot copy a directory to a file: {dest}"),
        Ok(_) => (parent_of(dpath), base(dest)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if dest.ends_with('/') && !src_dir {
                bail!("destination directory {dest} does not exist");
            }
            let p = parent_of(dpath);
            if !p.is_dir() {
                bail!("destination directory {} does not exist", p.display());
            }
            (p, base(dest))
        }
        Err(e) => bail!("{dest}: {}", crate::error::errno_text(&e)),
    };
    let host = nix::fcntl::open(
        host_dir.as_path(),
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| anyhow!("{}: {}", host_dir.display(), crate::error::errno_desc(e)))?;
    // Contents-only into a directory: the entries below the source, no top entry.
    let bytes = cp::pipe_through(
        |w| cp::archive(&found, &top, Some(&devs), w),
        |r| cp::extract(host.as_fd(), "/", r, owner),
    )?;
    report(a, bytes, dest);
    Ok(0)
}

fn parent_of(p: &Path) -> std::path::PathBuf {
    match p.parent() {
        Some(x) if !x.as_os_str().is_empty() => x.to_path_buf(),
        _ => ".".into(),
    }
}

fn into_container(g: &Globals, a: &CpArgs, src: &str, ctr: &str, dest: &str) -> Result<i32> {
    if dest.is_empty() {
        bail!("{ctr}:{dest}: the path in the container is empty");
    }
    let store = Store::new(g);
    let c = store.get_started(ctr)?;
    cp::usable(store.derive(&c))?;
    if c.rec.host_config.readonly_rootfs && store.derive(&c).is_active() {
        bail!("container rootfs is marked read-only");
    }
    // Without -a, the container's root owns what comes in: rootless, that is the user
    // (the container's root is mapped to them).
    let owner = if a.archive {
        Owner::Keep
    } else if g.rootless {
        Owner::All(
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    } else {
        Owner::All(0, 0)
    };
    // The host side first: a missing source changes nothing in the container.
    let host_src = if src == "-" {
        None
    } else {
        // `DIR/.` names DIR's contents: DIR itself is the directory to look in. With -L
        // the host's own symlinks are followed as the host resolves them (host paths
        // are the user's, not the container's).
        let real = if a.follow_link && !contents_only(src) {
            Some(
                std::fs::canonicalize(src)
                    .map_err(|e| anyhow!("lstat {src}: {}", crate::error::errno_text(&e)))?,
            )
        } else {
            None
        };
        let parent = if contents_only(src) {
            let d = src.strip_suffix('.').unwrap_or(src);
            Path::new(if d.is_empty() { "." } else { d }).to_path_buf()
        } else if let Some(r) = &real {
            parent_of(r)
        } else {
            parent_of(Path::new(src))
        };
        let pfd = nix::fcntl::open(
            parent.as_path(),
            nix::fcntl::OFlag::O_PATH
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .map_err(|e| anyhow!("lstat {src}: {}", crate::error::errno_desc(e)))?;
        let name = if contents_only(src) || base(src).is_empty() {
            ".".to_string()
        } else if let Some(r) = &real {
            base(&r.to_string_lossy())
        } else {
            base(src)
        };
        let found =
            cp::lookup(pfd.as_fd(), &name, false).map_err(|e| anyhow!("lstat {src}: {e}"))?;
        if found.stat.is_none() {
            bail!("lstat {src}: no such file or directory");
        }
        Some(found)
    };
    let rootfs = cp::open_rootfs(&store, &c, true)?;
    let root = rootfs.fd.as_fd();
    let d = cp::lookup(root, dest, true)?;
    let dest_dir = d
        .stat
        .is_some_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR);
    let Some(found) = host_src else {
        if !dest_dir {
            bail!("destination \"{ctr}:{dest}\" must be a directory");
        }
        let n = cp::extract(root, dest, std::io::stdin().lock(), owner)?;
        let _ = n;
        return Ok(0);
    };
    let src_dir = found
        .stat
        .is_some_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR);
    let src_top = if contents_only(src) {
        String::new()
    } else {
        base(src)
    };
    let (into, top) = if dest_dir {
        (dest.to_string(), src_top)
    } else if d.stat.is_some() {
        if src_dir {
            bail!("cannot copy a directory to a file: {ctr}:{dest}");
        }
        (container_parent(dest), base(dest))
    } else {
        if dest.ends_with('/') && !src_dir {
            bail!("destination directory {ctr}:{dest} does not exist");
        }
        let p = container_parent(dest);
        let pd = cp::lookup(root, &p, true)?;
        let parent_is_dir = pd
            .stat
            .is_some_and(|s| s.st_mode & libc::S_IFMT == libc::S_IFDIR);
        if !parent_is_dir {
            bail!("destination directory {ctr}:{p} does not exist");
        }
        (p, base(dest))
    };
    let bytes = cp::pipe_through(
        |w| cp::archive(&found, &top, None, w),
        |r| cp::extract(root, &into, r, owner),
    )?;
    report(a, bytes, &format!("{ctr}:{dest}"));
    Ok(0)
}

fn container_parent(p: &str) -> String {
    let t = p.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => t[..i].to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_as_docker_splits_them() {
        assert_eq!(split("web:/etc/passwd"), (Some("web"), "/etc/passwd"));
        assert_eq!(split("./a:b"), (None, "./a:b"));
        assert_eq!(split("/tmp/x"), (None, "/tmp/x"));
        assert_eq!(split("-"), (None, "-"));
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(container_parent("/a/b"), "/a");
        assert_eq!(container_parent("/a"), "/");
        assert!(contents_only("/a/."));
    }
}
