//! A container's mounts through its life: planned at `create` (flags -> [`MountPoint`]s
//! and OCI mounts), made real once its record exists ([`materialize`]: volumes created,
//! missing `-v` host directories made), prepared by its monitor just before the runtime
//! creates it ([`prepare`]: a fresh volume filled from the image, `U`), and its anonymous
//! volumes removed with it ([`remove_anonymous`]).
//!
//! Destinations are never resolved here: the runtime resolves every mount destination
//! inside the root filesystem (`rootfs::resolve`), so a symlink the image or a volume
//! plants cannot send a mount onto the host.

use std::os::fd::AsFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::{anyhow, Context as _, Result};
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use serde_json::{json, Value};

use super::{parse, CreateOptions, MountPoint, Store, ANONYMOUS_LABEL};
use crate::cli::front::RunArgs;
use crate::front::containers::{self, Record};

/// The mounts of a container about to be created.
#[derive(Debug, Clone, Default)]
pub(crate) struct Planned {
    pub(crate) points: Vec<MountPoint>,
    /// OCI mounts, parents before children.
    pub(crate) oci: Vec<Value>,
}

/// `--volumes-from`: every volume and bind of those containers, at the same paths.
fn volumes_from(store: &containers::Store, specs: &[String]) -> Result<Vec<MountPoint>> {
    let mut out: Vec<MountPoint> = Vec::new();
    for s in specs {
        let (q, rw) = parse::volumes_from_flag(s)?;
        let c = store
            .get(&q)
            .map_err(|e| anyhow!("--volumes-from {s}: {e:#}"))?;
        for m in c.rec.mounts.iter().filter(|m| m.kind != "tmpfs") {
            let mut m = m.clone();
            // Not this container's to remove, nor to fill or chown again.
            m.anonymous = false;
            m.create_source = false;
            m.chown = false;
            // Another container's overlay layer is its own: the borrower sees the source.
            m.overlay = false;
            m.flag = "--volumes-from".into();
            m.spec = s.clone();
            if let Some(rw) = rw {
                m.rw = rw;
                m.mode = if rw { "rw" } else { "ro" }.into();
            }
            if !out.iter().any(|o| o.destination == m.destination) {
                out.push(m);
            }
        }
    }
    Ok(out)
}

/// Checks every mount flag and plans the mounts; nothing is created.
pub(crate) fn plan(
    store: &containers::Store,
    id: &str,
    a: &RunArgs,
    image_volumes: &[String],
) -> Result<Planned> {
    let vols = Store::new(&store.root);
    let from = volumes_from(store, &a.volumes_from)?;
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (root, runroot) = (abs(&store.root), abs(&store.runroot));
    let state = [root.as_path(), runroot.as_path()];
    let ctx = parse::Context { state_dirs: &state };
    let mut points = parse::all(&a.volume, &a.mount, &a.tmpfs, from, image_volumes, &ctx)?;
    for m in points.iter_mut() {
        if m.kind == "volume" {
            if m.anonymous {
                m.name = containers::new_id();
            }
            m.source = vols.data(&m.name).to_string_lossy().into_owned();
        }
    }
    let oci = oci_mounts(&vols, &points, &store.dir(id))?;
    Ok(Planned { points, oci })
}

/// The OCI mounts of `points`, sorted so that a parent is mounted before what lies in it.
fn oci_mounts(vols: &Store, points: &[MountPoint], ctr_dir: &Path) -> Result<Vec<Value>> {
    let mut sorted: Vec<&MountPoint> = points.iter().collect();
    sorted.sort_by_key(|m| m.destination.matches('/').count());
    let mut out = Vec::new();
    for m in sorted {
        let ro = |mut o: Vec<String>| {
            if !m.rw {
                o.push("ro".into());
            }
            o
        };
        let bind = |src: &str, prop: &str| {
            let b = if m.non_recursive { "bind" } else { "rbind" };
            let prop = if prop.is_empty() { "rprivate" } else { prop };
            json!({"destination": m.destination, "type": "bind", "source": src,
                "options": ro(vec![b.into(), prop.into()])})
        };
        let v = match m.kind.as_str() {
            "bind" if m.overlay => {
                let (upper, work) = overlay_dirs(ctr_dir, &m.destination);
                json!({"destination": m.destination, "type": "overlay", "source": "overlay",
                    "options": [format!("lowerdir={}", m.source), format!("upperdir={}", upper.display()),
                        format!("workdir={}", work.display())]})
            }
            "bind" => bind(&m.source, &m.propagation),
            "tmpfs" => json!({"destination": m.destination, "type": "tmpfs", "source": "tmpfs",
                "options": ro(m.options.clone())}),
            _ => {
                // A volume made with `-o type=...` mounts what its options say.
                // An existing volume keeps its own; a new one gets the mount's.
                let opts = vols
                    .get(&m.name)?
                    .map(|v| v.options)
                    .unwrap_or_else(|| m.volume_options.clone());
                match opts.get("type").map(String::as_str) {
                    None => bind(&m.source, ""),
                    Some(t) => {
                        let o: Vec<String> = opts
                            .get("o")
                            .map(|o| {
                                o.split(',')
                                    .filter(|x| !x.is_empty())
                                    .map(String::from)
                                    .collect()
                            })
                            .unwrap_or_default();
                        let dev = opts.get("device").cloned().unwrap_or_else(|| t.to_string());
                        if o.iter().any(|x| x == "bind" || x == "rbind") {
                            bind(&dev, "")
                        } else {
                            json!({"destination": m.destination, "type": t, "source": dev,
                                "options": ro(o)})
                        }
                    }
                }
            }
        };
        out.push(v);
    }
    Ok(out)
}

/// The upper and work directories of an `O` mount, in the container's directory (removed
/// with it); named after a digest of the destination: stable across starts, one per
/// destination, of a bounded length, and nothing in it (`,`) that overlayfs's options read.
fn overlay_dirs(ctr_dir: &Path, dst: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let name = crate::front::digest::Digest::of(dst.as_bytes());
    let d = ctr_dir.join("volume-overlays").join(name.hex());
    (d.join("upper"), d.join("work"))
}

/// Makes the container's volumes and missing `-v` host directories, once its record
/// exists (so that a `volume rm` racing it sees the container as a user). Returns the
/// volumes made here, for [`undo`].
pub(crate) fn materialize(store: &containers::Store, rec: &Record) -> Result<Vec<String>> {
    let vols = Store::new(&store.root);
    let mut made = Vec::new();
    if rec.mounts.is_empty() {
        return Ok(made);
    }
    let lock = vols.lock()?;
    let r = (|| -> Result<()> {
        for m in &rec.mounts {
            match m.kind.as_str() {
                "volume" => {
                    let mut o = CreateOptions {
                        labels: m.volume_labels.clone(),
                        options: m.volume_options.clone(),
                    };
                    if m.anonymous {
                        o.labels.insert(ANONYMOUS_LABEL.into(), String::new());
                    }
                    if vols.create_locked(&lock, &m.name, &o)?.1 {
                        made.push(m.name.clone());
                    }
                }
                "bind" if m.create_source && std::fs::symlink_metadata(&m.source).is_err() => {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o755)
                        .create(&m.source)
                        .map_err(|e| {
                            anyhow!(
                                "-v {}: creating the host directory: {}",
                                m.source,
                                crate::error::errno_text(&e)
                            )
                        })?;
                }
                _ => {}
            }
        }
        Ok(())
    })();
    if let Err(e) = r {
        undo_locked(&vols, &lock, &made);
        return Err(e);
    }
    Ok(made)
}

fn undo_locked(vols: &Store, _lock: &super::Lock, made: &[String]) {
    for n in made {
        let _ = std::fs::remove_dir_all(vols.path(n));
    }
}

/// Removes the volumes [`materialize`] made, when the container could not be made.
pub(crate) fn undo(store: &containers::Store, made: &[String]) {
    if made.is_empty() {
        return;
    }
    let vols = Store::new(&store.root);
    if let Ok(lock) = vols.lock() {
        undo_locked(&vols, &lock, made);
    }
}

/// Before the runtime creates the container (its root filesystem mounted): every volume
/// is there, a volume's first container fills it from the image (Docker's copy-up, once,
/// unless `nocopy`), `U` chowns sources to the container's user.
pub(crate) fn prepare(store: &containers::Store, rec: &Record) -> Result<()> {
    if rec.mounts.is_empty() {
        return Ok(());
    }
    let vols = Store::new(&store.root);
    let lock = vols.lock()?;
    for m in &rec.mounts {
        if m.kind == "volume" {
            let mut v = vols
                .get(&m.name)?
                .ok_or_else(|| anyhow!("volume {}: no such volume (removed?)", m.name))?;
            if v.needs_copy_up {
                if !m.no_copy && v.options.is_empty() {
                    copy_up(&rec.rootfs, &m.destination, &vols.data(&m.name)).with_context(
                        || format!("filling volume {} from {}", m.name, m.destination),
                    )?;
                }
                v.needs_copy_up = false;
                vols.save(&v)?;
            }
        }
        if m.overlay {
            // What the last run wrote is gone: the source is seen afresh at each start.
            let (upper, work) = overlay_dirs(&store.dir(&rec.id), &m.destination);
            for d in [&upper, &work] {
                let _ = std::fs::remove_dir_all(d);
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(d)
                    .with_context(|| format!("O: {}", d.display()))?;
            }
            // The overlay's root shows the upper directory's owner and mode: the source's.
            if let Ok(st) = std::fs::metadata(&m.source) {
                use std::os::unix::fs::MetadataExt;
                std::os::unix::fs::chown(&upper, Some(st.uid()), Some(st.gid()))?;
                std::fs::set_permissions(&upper, st.permissions())?;
            }
        }
        if m.chown && m.kind != "tmpfs" {
            let (uid, gid) = host_user(rec);
            // A host path is the user's own word (a symlink there is meant); a volume's is
            // berth's and never one.
            let src = match m.kind.as_str() {
                "bind" => std::fs::canonicalize(&m.source)
                    .unwrap_or_else(|_| std::path::PathBuf::from(&m.source)),
                _ => std::path::PathBuf::from(&m.source),
            };
            chown_tree(&src, uid, gid).with_context(|| format!("U: chown {}", m.source))?;
        }
    }
    drop(lock);
    Ok(())
}

/// Copies what the root filesystem has at `dst` (resolved inside it: a symlink there is
/// the container's, never the host's) into the empty volume `data`, owners and modes kept.
fn copy_up(rootfs: &Path, dst: &str, data: &Path) -> Result<()> {
    let root = nix::fcntl::open(
        rootfs,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {}", rootfs.display()))?;
    let src = match crate::rootfs::resolve::open_in_root(
        root.as_fd(),
        Path::new(dst),
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
    ) {
        Ok(fd) => fd,
        // Nothing (or no directory) there: nothing to copy.
        Err(_) => return Ok(()),
    };
    let to = nix::fcntl::open(
        data,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {}", data.display()))?;
    let mut entries = nix::dir::Dir::from_fd(nix::unistd::dup(to.as_fd())?)?;
    let empty = entries
        .iter()
        .flatten()
        .all(|e| matches!(e.file_name().to_bytes(), b"." | b".."));
    if !empty {
        return Ok(());
    }
    crate::front::images::overlay::copy_dir(src.as_fd(), to.as_fd())?;
    let st = nix::sys::stat::fstat(src.as_fd())?;
    nix::unistd::fchown(
        to.as_fd(),
        Some(nix::unistd::Uid::from_raw(st.st_uid)),
        Some(nix::unistd::Gid::from_raw(st.st_gid)),
    )?;
    nix::sys::stat::fchmod(to.as_fd(), Mode::from_bits_truncate(st.st_mode & 0o7777))?;
    Ok(())
}

/// The container's user as the host sees it (through the user namespace's maps).
fn host_user(rec: &Record) -> (u32, u32) {
    let user = &rec.spec["process"]["user"];
    let uid = user["uid"].as_u64().unwrap_or(0) as u32;
    let gid = user["gid"].as_u64().unwrap_or(0) as u32;
    let map = |id: u32, key: &str| -> u32 {
        let Some(maps) = rec.spec["linux"][key].as_array() else {
            return id;
        };
        for m in maps {
            let c = m["containerID"].as_u64().unwrap_or(0) as u32;
            let h = m["hostID"].as_u64().unwrap_or(0) as u32;
            let s = m["size"].as_u64().unwrap_or(0) as u32;
            if id >= c && id - c < s {
                return h + (id - c);
            }
        }
        id
    };
    (map(uid, "uidMappings"), map(gid, "gidMappings"))
}

/// chown -R by file descriptors: nothing is followed, so a symlink (or a directory
/// swapped for one meanwhile by a container sharing the volume) never leads outside.
fn chown_tree(p: &Path, uid: u32, gid: u32) -> Result<()> {
    let ids = (
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    );
    let dir = nix::fcntl::open(
        p,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    );
    match dir {
        Ok(d) => {
            nix::unistd::fchown(d.as_fd(), ids.0, ids.1)?;
            chown_dir(d, ids)
        }
        // A file (a bind of one): never a symlink's target.
        Err(nix::errno::Errno::ENOTDIR) => Ok(std::os::unix::fs::lchown(p, Some(uid), Some(gid))?),
        Err(e) => Err(anyhow!("{}: {}", p.display(), e.desc())),
    }
}

fn chown_dir(
    dir: std::os::fd::OwnedFd,
    ids: (Option<nix::unistd::Uid>, Option<nix::unistd::Gid>),
) -> Result<()> {
    let mut d = nix::dir::Dir::from_fd(dir)?;
    let fd = d.as_fd().try_clone_to_owned()?;
    let names: Vec<std::ffi::CString> = d
        .iter()
        .flatten()
        .map(|e| e.file_name().to_owned())
        .filter(|n| !matches!(n.as_bytes(), b"." | b".."))
        .collect();
    for n in names {
        nix::unistd::fchownat(
            fd.as_fd(),
            n.as_c_str(),
            ids.0,
            ids.1,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )?;
        if let Ok(sub) = nix::fcntl::openat(
            fd.as_fd(),
            n.as_c_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            chown_dir(sub, ids)?;
        }
    }
    Ok(())
}

/// `rm -v`, `run --rm`: the container's anonymous volumes go with it (never named ones;
/// one another container still uses stays, with a warning).
pub(crate) fn remove_anonymous(store: &containers::Store, rec: &Record) {
    let vols = Store::new(&store.root);
    let anon: Vec<&MountPoint> = rec.mounts.iter().filter(|m| m.anonymous).collect();
    if anon.is_empty() {
        return;
    }
    let Ok(lock) = vols.lock() else { return };
    for m in anon {
        match vols.remove_locked(&lock, &m.name, store) {
            Ok(()) => {}
            Err(e) if super::is_no_such(&e) => {}
            Err(e) => crate::logging::warn(&format!("{e:#}")),
        }
    }
}

/// HostConfig's `Binds` (the `-v` flags as given, null when none), `Tmpfs` (`--tmpfs`
/// destinations and their options) and `VolumesFrom`.
pub(crate) fn inspect_host_config(rec: &Record) -> (Value, Value, Value) {
    let binds: Vec<&str> = rec
        .mounts
        .iter()
        .filter(|m| m.flag == "-v")
        .map(|m| m.spec.as_str())
        .collect();
    let tmpfs: serde_json::Map<String, Value> = rec
        .mounts
        .iter()
        .filter(|m| m.flag == "--tmpfs")
        .map(|m| {
            let opts = m.spec.split_once(':').map_or("", |(_, o)| o);
            (m.destination.clone(), json!(opts))
        })
        .collect();
    let mut from: Vec<&str> = Vec::new();
    for m in rec.mounts.iter().filter(|m| m.flag == "--volumes-from") {
        if !from.contains(&m.spec.as_str()) {
            from.push(&m.spec);
        }
    }
    let from = if from.is_empty() {
        Value::Null
    } else {
        json!(from)
    };
    let binds = if binds.is_empty() {
        Value::Null
    } else {
        json!(binds)
    };
    let tmpfs = if tmpfs.is_empty() {
        Value::Null
    } else {
        Value::Object(tmpfs)
    };
    (binds, tmpfs, from)
}

/// `Mounts` of `docker inspect`.
pub(crate) fn inspect_mounts(rec: &Record) -> Value {
    Value::Array(
        rec.mounts
            .iter()
            // Docker lists --tmpfs under HostConfig.Tmpfs only.
            .filter(|m| m.flag != "--tmpfs")
            .map(|m| {
                let mut v = json!({
                    "Type": m.kind,
                    "Source": m.source,
                    "Destination": m.destination,
                    "Mode": m.mode,
                    "RW": m.rw,
                    "Propagation": m.propagation,
                });
                if m.kind == "volume" {
                    v["Name"] = json!(m.name);
                    v["Driver"] = json!(m.driver);
                }
                v
            })
            .collect(),
    )
}
