//! `create` (and the first half of `run`): flags -> a container record on disk, whole or
//! not at all. Nothing runs yet.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Result};

use super::{names, new_id, Record, Store};
use crate::cli::front::RunArgs;
use crate::front::specgen::{self, ImageConfig};

/// What the container runs from: `--rootfs DIR`, or an image of the store.
pub(crate) struct Source {
    /// As the user named it.
    pub(crate) name: String,
    /// The image id (`sha256:...`); empty with `--rootfs`.
    pub(crate) id: String,
    /// `--rootfs DIR`; None: the image's overlay under the container's directory.
    pub(crate) rootfs: Option<PathBuf>,
    /// The image's layers, top first.
    pub(crate) layers: Vec<PathBuf>,
    pub(crate) config: ImageConfig,
}

/// An image of the store, as `IMAGE` named it.
pub(crate) fn image_source(
    images: &crate::front::images::store::Store,
    rec: &crate::front::images::store::ImageRecord,
    name: &str,
) -> Result<Source> {
    let (_, raw) = images.config(&rec.id)?;
    let layers = rec
        .layers
        .iter()
        .rev()
        .map(|l| images.layer_dir(&l.diff_id))
        .collect();
    Ok(Source {
        name: name.to_string(),
        id: rec.id.to_string(),
        rootfs: None,
        layers,
        config: ImageConfig::from_image(&raw),
    })
}

/// `--rootfs DIR`: an existing directory.
pub(crate) fn rootfs_source(a: &RunArgs) -> Result<Source> {
    let p = Path::new(&a.image);
    let abs = std::fs::canonicalize(p)
        .map_err(|e| anyhow!("--rootfs {}: {}", a.image, crate::error::errno_text(&e)))?;
    if !abs.is_dir() {
        bail!("--rootfs {}: not a directory", a.image);
    }
    Ok(Source {
        name: abs.to_string_lossy().into_owned(),
        id: String::new(),
        rootfs: Some(abs),
        layers: Vec::new(),
        config: ImageConfig::default(),
    })
}

/// Makes the container: record, name, cidfile. Returns its record.
pub(crate) fn create(store: &Store, a: &RunArgs, rootless: bool, src: Source) -> Result<Record> {
    let name = match &a.name {
        Some(n) => Some(names::validate(n)?),
        None => None,
    };
    if let Some(f) = &a.cidfile {
        if Path::new(f).exists() {
            bail!("container ID file found, make sure the other container isn't running or delete {f}");
        }
    }
    if let (true, Some(n)) = (a.replace, &name) {
        // Podman's --replace: the container holding the name (by name only, never an id
        // prefix) goes first, stopped.
        if let Some(old) = store.id_by_name(n) {
            match super::lifecycle::remove(store, &old, true, None) {
                Ok(()) => {}
                Err(e) if super::is_no_such(&e) => {}
                Err(e) => return Err(e.context(format!("--replace: removing {n}"))),
            }
        }
    }
    let image_volumes: Vec<String> = src.config.volumes.keys().cloned().collect();
    let id = new_id();
    let planned = crate::front::volumes::setup::plan(store, &id, a, &image_volumes)?;
    // Generated names retry on a clash; a chosen one fails.
    let mut attempt = 0;
    loop {
        let name = match &name {
            Some(n) => n.clone(),
            None => names::generate(attempt),
        };
        let rec = specgen::generate(&specgen::Input {
            args: a,
            image: &src.config,
            image_name: src.name.clone(),
            image_id: src.id.clone(),
            rootfs: src
                .rootfs
                .clone()
                .unwrap_or_else(|| super::OverlayDirs::of(store, &id).merged),
            layers: &src.layers,
            id: &id,
            name,
            run_dir: store.run_dir(&id),
            log_path: log_path(store, &id, a.log_driver.as_deref()),
            rootless,
            mounts: &planned,
        })?;
        let mut rec = rec;
        if store.rt.systemd_cgroup {
            // Podman's scope (libpod-ID.scope in machine.slice), berth's name: the path's
            // form is what later commands, whatever their flags, take the driver from.
            let slice = if rootless {
                "user.slice"
            } else {
                "machine.slice"
            };
            rec.spec["linux"]["cgroupsPath"] = serde_json::json!(format!("{slice}:berth:{id}"));
        }
        crate::front::network::check(store, &rec)?;
        match store.create(&rec) {
            Ok(()) => {
                // Once the record exists: a `volume rm` racing this sees the container.
                if let Err(e) = crate::front::volumes::setup::materialize(store, &rec) {
                    let _ = store.remove_files(&rec);
                    return Err(e);
                }
                if let Some(f) = &a.cidfile {
                    if let Err(e) = write_cidfile(f, &id) {
                        let _ = store.remove_files(&rec);
                        crate::front::volumes::setup::remove_anonymous(store, &rec);
                        return Err(e);
                    }
                }
                crate::front::events::container(store, &rec, "create", &[]);
                return Ok(rec);
            }
            Err(e)
                if a.name.is_none() && attempt < 10 && e.to_string().contains("already in use") =>
            {
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

fn write_cidfile(f: &str, id: &str) -> Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(f)
        .map_err(|e| anyhow!("--cidfile {f}: {}", crate::error::errno_text(&e)))?;
    file.write_all(id.as_bytes())
        .map_err(|e| anyhow!("--cidfile {f}: {}", crate::error::errno_text(&e)))
}

/// Docker's `<id>-json.log` for json-file; Podman's `ctr.log` for k8s-file.
fn log_path(store: &Store, id: &str, driver: Option<&str>) -> PathBuf {
    match driver {
        Some("k8s-file") => store.dir(id).join("ctr.log"),
        _ => store.dir(id).join(format!("{id}-json.log")),
    }
}
