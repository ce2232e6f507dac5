//! Volumes, as Docker's `local` driver keeps them, with no daemon:
//!
//! - `ROOT/volumes/<name>/_data`: the data (what containers mount); `volume.json` beside
//!   it: what the volume is (Docker's inspect fields and berth's copy-up flag).
//! - `ROOT/volumes/.lock`: every creation, removal and copy-up takes it, so two containers
//!   naming one new volume get one volume, and a removal never races a container that is
//!   about to use the volume (its record exists before the volume is claimed).
//!
//! A volume is in use when a container's record mounts it; that is read from the
//! containers' records, never stored twice.

pub(crate) mod parse;
pub(crate) mod setup;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

use crate::front::containers::{self, write_atomic};

/// Docker's label on the volumes it makes for `-v /dst` and image `VOLUME`s.
pub(crate) const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

/// One mount of a container, in Docker's `Mounts` shape (the first eight fields) with what
/// berth needs to mount it again.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct MountPoint {
    /// `bind`, `volume` or `tmpfs`.
    #[serde(rename = "Type")]
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) source: String,
    pub(crate) destination: String,
    pub(crate) driver: String,
    pub(crate) mode: String,
    #[serde(rename = "RW")]
    pub(crate) rw: bool,
    pub(crate) propagation: String,
    /// Made for this container (`-v /dst`, an image VOLUME): `rm -v` and `--rm` remove it.
    pub(crate) anonymous: bool,
    /// `nocopy` / `volume-nocopy`: a fresh volume is not filled from the image.
    pub(crate) no_copy: bool,
    /// `U`: the source is chowned to the container's user before it starts.
    pub(crate) chown: bool,
    /// `--mount type=bind,bind-nonrecursive`.
    pub(crate) non_recursive: bool,
    /// tmpfs: the options of the mount (size=, mode=, exec, ...).
    pub(crate) options: Vec<String>,
    /// A host directory `-v` may create (Docker's `-v`; `--mount` refuses a missing one).
    pub(crate) create_source: bool,
    /// `O` (Podman's overlay volume): the source is the lower layer of an overlay whose
    /// upper layer is the container's own, emptied at each start.
    pub(crate) overlay: bool,
    /// The flag as the user gave it, for HostConfig: `-v` (Binds) and `--tmpfs` (Tmpfs).
    pub(crate) flag: String,
    pub(crate) spec: String,
    /// `--mount volume-label=`/`volume-opt=`: what a volume made by this mount gets.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) volume_labels: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) volume_options: BTreeMap<String, String>,
}

/// `volume.json`.
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Volume {
    pub(crate) name: String,
    pub(crate) driver: String,
    pub(crate) mountpoint: PathBuf,
    pub(crate) created_at: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) scope: String,
    pub(crate) options: BTreeMap<String, String>,
    /// Not yet mounted by any container: the first one fills it from its image.
    pub(crate) needs_copy_up: bool,
}

impl Volume {
    pub(crate) fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }

    /// `docker volume inspect`'s object.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let map_or_null = |m: &BTreeMap<String, String>| {
            if m.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::json!(m)
            }
        };
        serde_json::json!({
            "CreatedAt": self.created_at,
            "Driver": self.driver,
            "Labels": map_or_null(&self.labels),
            "Mountpoint": self.mountpoint,
            "Name": self.name,
            "Options": map_or_null(&self.options),
            "Scope": self.scope,
        })
    }
}

/// Docker's rule for a local volume's name (also what tells a name from a host path in
/// `-v`); `..`, `/` and NUL can never pass it.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    if name.len() == 1 {
        bail!("create {name}: volume name is too short, names should be at least two alphanumeric characters");
    }
    let ok = name.len() <= 255
        && name
            .bytes()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if !ok {
        bail!(
            "create {name}: {name:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
    }
    Ok(())
}

/// `Error: No such volume: x`.
pub(crate) fn no_such(name: &str) -> anyhow::Error {
    anyhow!("No such volume: {name}")
}

pub(crate) fn is_no_such(e: &anyhow::Error) -> bool {
    e.to_string().starts_with("No such volume: ")
}

/// What `volume create` and a first use ask for.
#[derive(Debug, Clone, Default)]
pub(crate) struct CreateOptions {
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) options: BTreeMap<String, String>,
}

/// The global volumes lock, released on drop.
pub(crate) struct Lock(#[allow(dead_code)] nix::fcntl::Flock<File>);

pub(crate) struct Store {
    pub(crate) dir: PathBuf,
}

impl Store {
    pub(crate) fn new(root: &Path) -> Store {
        Store {
            dir: root.join("volumes"),
        }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub(crate) fn data(&self, name: &str) -> PathBuf {
        self.path(name).join("_data")
    }

    pub(crate) fn lock(&self) -> Result<Lock> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .create(&self.dir)
            .map_err(|e| anyhow!("{}: {}", self.dir.display(), crate::error::errno_text(&e)))?;
        let p = self.dir.join(".lock");
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(|e| anyhow!("{}: {}", p.display(), crate::error::errno_text(&e)))?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive)
            .map(Lock)
            .map_err(|(_, e)| anyhow!("lock {}: {}", p.display(), crate::error::errno_desc(e)))
    }

    /// The volume's record (None when there is no such volume).
    pub(crate) fn get(&self, name: &str) -> Result<Option<Volume>> {
        if validate_name(name).is_err() {
            return Ok(None);
        }
        let p = self.path(name).join("volume.json");
        match fs::read(&p) {
            Ok(d) => serde_json::from_slice(&d)
                .map(Some)
                .map_err(|e| anyhow!("{}: corrupt record: {e}", p.display())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => bail!("{}: {}", p.display(), crate::error::errno_text(&e)),
        }
    }

    pub(crate) fn must_get(&self, name: &str) -> Result<Volume> {
        self.get(name)?.ok_or_else(|| no_such(name))
    }

    pub(crate) fn save(&self, v: &Volume) -> Result<()> {
        let mut d = crate::sys::json::to_vec_pretty(v)?;
        d.push(b'\n');
        write_atomic(&self.path(&v.name).join("volume.json"), &d)
    }

    /// Every volume, by name.
    pub(crate) fn list(&self) -> Vec<Volume> {
        let Ok(rd) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut v: Vec<Volume> = rd
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .filter_map(|n| self.get(&n).ok().flatten())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Makes a volume under the lock the caller holds. `Ok(false)`: it existed already
    /// (left as it is).
    pub(crate) fn create_locked(
        &self,
        _lock: &Lock,
        name: &str,
        o: &CreateOptions,
    ) -> Result<(Volume, bool)> {
        validate_name(name)?;
        if let Some(v) = self.get(name)? {
            return Ok((v, false));
        }
        check_options(&o.options)?;
        let dst = self.path(name);
        if fs::symlink_metadata(&dst).is_ok() {
            // A directory without its record: what a crash between mkdir and rename cannot
            // leave (the rename is the commit), so something else put it there.
            bail!(
                "create {name}: {} exists and is not a volume",
                dst.display()
            );
        }
        // Filled under a temporary name, renamed into place: a crash leaves no half volume.
        // One name serves all (the lock is held): a name of its own, with a prefix, would
        // be too long for the longest volume names.
        let tmp = self.dir.join(".new");
        let _ = fs::remove_dir_all(&tmp);
        let v = Volume {
            name: name.to_string(),
            driver: "local".into(),
            mountpoint: self.data(name),
            created_at: created_now(),
            labels: o.labels.clone(),
            scope: "local".into(),
            options: o.options.clone(),
            needs_copy_up: true,
        };
        let r = (|| -> Result<()> {
            fs::create_dir(&tmp)?;
            fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(0o701))?;
            fs::create_dir(tmp.join("_data"))?;
            fs::set_permissions(
                tmp.join("_data"),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )?;
            let mut d = crate::sys::json::to_vec_pretty(&v)?;
            d.push(b'\n');
            write_atomic(&tmp.join("volume.json"), &d)?;
            fs::rename(&tmp, &dst)?;
            Ok(())
        })();
        if let Err(e) = r {
            let _ = fs::remove_dir_all(&tmp);
            bail!("create {name}: {e:#}");
        }
        Ok((v, true))
    }

    pub(crate) fn create(&self, name: &str, o: &CreateOptions) -> Result<(Volume, bool)> {
        let lock = self.lock()?;
        self.create_locked(&lock, name, o)
    }

    /// Removes a volume no container uses (under the lock the caller holds). The directory
    /// is renamed away first, then removed without following any symlink in it.
    pub(crate) fn remove_locked(
        &self,
        _lock: &Lock,
        name: &str,
        containers: &containers::Store,
    ) -> Result<()> {
        self.must_get(name)?;
        let users = users(containers, name);
        if !users.is_empty() {
            bail!("remove {name}: volume is in use - [{}]", users.join(", "));
        }
        let dir = self.path(name);
        // A name of its own (short: the longest volume names leave no room for a prefix),
        // so that one that could not be removed never stands in the way of the next.
        let gone = self
            .dir
            .join(format!(".rm-{}", &containers::new_id()[..16]));
        fs::rename(&dir, &gone)
            .map_err(|e| anyhow!("remove {name}: {}", crate::error::errno_text(&e)))?;
        // Never follows symlinks (it unlinks them); rootless, files a container's other
        // users wrote are removed from berth's user namespace.
        crate::front::userns::remove_dir_all(&gone)
            .map_err(|e| anyhow!("remove {name}: {}", crate::error::errno_text(&e)))
    }

    pub(crate) fn remove(&self, name: &str, containers: &containers::Store) -> Result<()> {
        let lock = self.lock()?;
        self.remove_locked(&lock, name, containers)
    }

    /// Removes the volumes no container uses: anonymous ones, or all with `all`, those
    /// `keep` accepts (filters). The names removed and the bytes they held. For `volume
    /// prune` and `system prune --volumes`.
    pub(crate) fn prune(
        &self,
        containers: &containers::Store,
        all: bool,
        keep: impl Fn(&Volume) -> Result<bool>,
    ) -> Result<(Vec<String>, u64)> {
        let lock = self.lock()?;
        let used = in_use(containers);
        let mut removed = Vec::new();
        let mut reclaimed = 0u64;
        for v in self.list() {
            if used.contains(&v.name) || (!all && !v.anonymous()) || !keep(&v)? {
                continue;
            }
            let size = self.size(&v.name);
            match self.remove_locked(&lock, &v.name, containers) {
                Ok(()) => {
                    reclaimed += size;
                    removed.push(v.name);
                }
                Err(e) => crate::logging::warn(&format!("{e:#}")),
            }
        }
        Ok((removed, reclaimed))
    }

    /// Bytes under the volume's data directory (symlinks not followed).
    pub(crate) fn size(&self, name: &str) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(m) = fs::symlink_metadata(p) else {
                return 0;
            };
            if m.is_dir() {
                fs::read_dir(p)
                    .map(|rd| rd.flatten().map(|e| walk(&e.path())).sum())
                    .unwrap_or(0)
            } else {
                m.len()
            }
        }
        walk(&self.data(name))
    }
}

/// Every volume some container's record mounts.
pub(crate) fn in_use(containers: &containers::Store) -> std::collections::BTreeSet<String> {
    containers
        .list()
        .into_iter()
        .flat_map(|c| c.rec.mounts.into_iter())
        .filter(|m| m.kind == "volume")
        .map(|m| m.name)
        .collect()
}

/// The containers (`shortid (name)`) whose records mount the volume.
pub(crate) fn users(containers: &containers::Store, name: &str) -> Vec<String> {
    containers
        .list()
        .into_iter()
        .filter(|c| {
            c.rec
                .mounts
                .iter()
                .any(|m| m.kind == "volume" && m.name == name)
        })
        .map(|c| format!("{} ({})", containers::short(&c.rec.id), c.rec.name))
        .collect()
}

/// `-o` of the local driver, as Docker checks them: `type`, `device`, `o` (and `size`
/// for tmpfs); a device without a type or a type without a device is refused.
pub(crate) fn check_options(o: &BTreeMap<String, String>) -> Result<()> {
    for k in o.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o" | "size") {
            bail!("invalid option: {k:?} (the local driver takes type, device, o)");
        }
    }
    let ty = o.get("type").map(String::as_str);
    let dev = o.get("device").map(String::as_str);
    match (ty, dev) {
        (None, None) => {}
        (Some("tmpfs"), _) => {}
        (Some(t), Some(d)) if !t.is_empty() && !d.is_empty() => {
            if matches!(t, "none" | "bind") && !o.get("o").is_some_and(|x| x.contains("bind")) {
                bail!("invalid option: type={t} needs o=bind");
            }
            if matches!(t, "none" | "bind") && !d.starts_with('/') {
                bail!("invalid option: device={d}: a bind device must be an absolute path");
            }
        }
        (Some(_), _) => bail!("invalid option: missing required option: \"device\""),
        (None, Some(_)) => bail!("invalid option: missing required option: \"type\""),
    }
    Ok(())
}

/// A bind device (`-o device=DIR`) follows the rule of a `-v` bind: the host's / and
/// berth's own state stay out.
pub(crate) fn check_device(o: &BTreeMap<String, String>, state_dirs: &[&Path]) -> Result<()> {
    let Some(dev) = o.get("device").filter(|d| d.starts_with('/')) else {
        return Ok(());
    };
    let d = fs::canonicalize(dev).unwrap_or_else(|_| PathBuf::from(dev));
    if d == Path::new("/") || state_dirs.iter().any(|s| d.starts_with(s)) {
        bail!("-o device={dev}: the host's / and berth's own state cannot be a volume's device");
    }
    Ok(())
}

fn created_now() -> String {
    // Docker shows seconds, in RFC 3339.
    let (secs, _) = crate::front::units::unix_parts(std::time::SystemTime::now());
    crate::front::units::rfc3339_nano(crate::front::units::from_unix(secs, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["ab", "db", "my_vol.1-x", "0abc"] {
            validate_name(ok).unwrap();
        }
        for bad in [
            "", "-x", ".x", "_x", "a/b", "..", "a..\0", "a b", "../x", "x/",
        ] {
            let e = validate_name(bad).unwrap_err().to_string();
            assert!(e.contains("[a-zA-Z0-9][a-zA-Z0-9_.-]"), "{bad}: {e}");
        }
        assert!(validate_name(&"a".repeat(256)).is_err());
        assert!(validate_name("a")
            .unwrap_err()
            .to_string()
            .contains("too short"));
    }

    #[test]
    fn local_driver_options() {
        let m = |v: &[(&str, &str)]| -> BTreeMap<String, String> {
            v.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        check_options(&m(&[])).unwrap();
        check_options(&m(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m"),
        ]))
        .unwrap();
        check_options(&m(&[("type", "none"), ("device", "/srv"), ("o", "bind")])).unwrap();
        assert!(check_options(&m(&[("type", "none"), ("device", "/srv")])).is_err());
        assert!(check_options(&m(&[("device", "/srv")])).is_err());
        assert!(check_options(&m(&[("type", "ext4")])).is_err());
        assert!(check_options(&m(&[("colour", "red")])).is_err());
    }

    #[test]
    fn one_of_two_concurrent_creators_makes_the_volume() {
        let dir = std::env::temp_dir().join(format!("berth-vol-unit-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let made: Vec<bool> = std::thread::scope(|s| {
            let h: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        Store::new(&dir)
                            .create("shared", &CreateOptions::default())
                            .unwrap()
                            .1
                    })
                })
                .collect();
            h.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(made.iter().filter(|m| **m).count(), 1, "{made:?}");
        assert!(dir.join("volumes/shared/_data").is_dir());
        let _ = fs::remove_dir_all(&dir);
    }
}
