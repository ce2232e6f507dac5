//! Archives: `load` of docker-archive (`docker save`: manifest.json, layer tars, config)
//! and oci-archive (an OCI image layout in a tar: index.json, blobs/sha256/...), `save`
//! to either, and `import` of a root filesystem tarball as a one-layer image.
//!
//! An archive's member names never become filesystem paths: members are streamed into
//! the operation's staging area under generated names (hashed on the way) and looked up
//! by their cleaned name, symlinks between members resolved by name. Every blob is
//! verified, every layer unpacked and checked against its diff id, before anything is
//! committed: a corrupt or hostile archive fails and leaves nothing in the store.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::compress::{self, Compression};
use super::manifest::{self, Document, MAX_DOCUMENT};
use super::names;
use super::store::{Staged, Store};
use super::tar;
use super::unpack::confine;
use crate::front::digest::{Digest, Hashing};

/// What one image of an archive became.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Loaded {
    pub(crate) id: Digest,
    pub(crate) names: Vec<String>,
}

/// The lines `load` prints: `Loaded image: NAME` per name, `Loaded image ID: sha256:...`
/// for an image without one (Docker's wording).
pub(crate) fn load_report(loaded: &[Loaded]) -> Vec<String> {
    let mut out = Vec::new();
    for l in loaded {
        if l.names.is_empty() {
            out.push(format!("Loaded image ID: {}", l.id));
        }
        for n in &l.names {
            let (repo, tag) = names::split_tag(n);
            out.push(format!("Loaded image: {}:{tag}", names::familiar(repo)));
        }
    }
    out
}

#[derive(Clone, Debug)]
enum Member {
    File {
        path: PathBuf,
        size: u64,
        digest: Digest,
    },
    Symlink(PathBuf),
    Dir,
}

/// The members of an archive, extracted into the staging area.
struct Members {
    map: BTreeMap<PathBuf, Member>,
}

impl Members {
    fn extract(st: &Staged, input: &mut dyn Read) -> Result<Members> {
        let (_, plain) = compress::decompress(input)?;
        let mut t = tar::Reader::new(plain);
        let mut map = BTreeMap::new();
        let mut n = 0u64;
        let mut buf = vec![0u8; 128 * 1024];
        while let Some(h) = t.next().context("read archive")? {
            let name = confine(&h.path).context("archive member")?;
            // Writing "through" a symlink member (`blobs -> /x`, then `blobs/sha256/y`) is
            // what a hostile archive does; no tool writes archives like that.
            for a in name.ancestors().skip(1) {
                if let Some(Member::Symlink(_)) = map.get(a) {
                    bail!(
                        "archive member {}: {} is a symlink",
                        name.display(),
                        a.display()
                    );
                }
            }
            let m = match h.kind {
                tar::Kind::File => {
                    n += 1;
                    let path = st.scratch(&format!("m{n}"));
                    let f = File::create(&path)?;
                    let mut w = Hashing::new(io::BufWriter::new(f));
                    let mut data = t.data();
                    loop {
                        let k = data.read(&mut buf)?;
                        if k == 0 {
                            break;
                        }
                        w.write_all(&buf[..k])?;
                    }
                    let (digest, size, bw) = w.finish();
                    bw.into_inner().map_err(|e| e.into_error())?;
                    Member::File { path, size, digest }
                }
                tar::Kind::Dir => Member::Dir,
                tar::Kind::Symlink => {
                    let dir = name.parent().unwrap_or(Path::new(""));
                    Member::Symlink(
                        dir.join(Path::new(&String::from_utf8_lossy(&h.link).into_owned())),
                    )
                }
                tar::Kind::HardLink => {
                    let target = crate::rootfs::resolve::clean(Path::new(
                        &String::from_utf8_lossy(&h.link).into_owned(),
                    ));
                    match map.get(&target) {
                        Some(m @ Member::File { .. }) => m.clone(),
                        _ => bail!(
                            "archive member {}: hardlink to a missing member",
                            name.display()
                        ),
                    }
                }
                _ => bail!("archive member {}: unexpected entry type", name.display()),
            };
            map.insert(name, m);
        }
        Ok(Members { map })
    }

    /// The file member `name`, symlinks between members followed by name.
    fn file(&self, name: &str) -> Result<(&Path, u64, &Digest)> {
        let mut p = confine(name.as_bytes())?;
        for _ in 0..40 {
            match self.map.get(&p) {
                Some(Member::File { path, size, digest }) => return Ok((path, *size, digest)),
                Some(Member::Symlink(t)) => {
                    p = confine(t.as_os_str().as_encoded_bytes())
                        .with_context(|| format!("archive member {name}"))?
                }
                Some(Member::Dir) => bail!("archive member {name} is a directory"),
                None => bail!("archive member {name} is missing"),
            }
        }
        bail!("archive member {name}: too many levels of symbolic links")
    }

    fn has(&self, name: &str) -> bool {
        self.map.contains_key(Path::new(name))
    }

    fn read_small(&self, name: &str) -> Result<Vec<u8>> {
        let (path, size, _) = self.file(name)?;
        if size > MAX_DOCUMENT {
            bail!("archive member {name} of {size} bytes exceeds the 4 MiB limit");
        }
        Ok(fs::read(path)?)
    }

    /// The member holding blob `d` of an OCI layout, verified against its name.
    fn oci_blob(&self, d: &Digest) -> Result<(&Path, u64)> {
        let name = format!("blobs/sha256/{}", d.hex());
        let (path, size, got) = self.file(&name)?;
        if got != d {
            bail!("blob digest mismatch: {name} holds {got}");
        }
        Ok((path, size))
    }
}

/// `load`: a docker-archive or oci-archive (optionally compressed) from `input`.
pub(crate) fn load(store: &Store, input: &mut dyn Read) -> Result<Vec<Loaded>> {
    let mut st = store.begin()?;
    let members = Members::extract(&st, input)?;
    let loaded = if members.has("index.json") {
        load_oci(&mut st, &members)?
    } else if members.has("manifest.json") {
        load_docker(&mut st, &members)?
    } else {
        bail!("not a docker-archive or oci-archive: neither manifest.json nor index.json found");
    };
    if loaded.is_empty() {
        bail!("the archive holds no image");
    }
    st.commit()?;
    Ok(loaded)
}

fn adopt(st: &mut Staged, path: &Path, d: &Digest) -> Result<()> {
    if st.has_blob(d) {
        return Ok(());
    }
    // A member referenced twice (a layer shared by two images) was adopted already.
    if !path.exists() {
        bail!("archive member for {d} used twice");
    }
    st.adopt_verified(path, d)
}

fn load_oci(st: &mut Staged, m: &Members) -> Result<Vec<Loaded>> {
    let index = m.read_small("index.json")?;
    let Document::Index(index) = manifest::parse_document(&index).context("index.json")? else {
        bail!("index.json is not an image index");
    };
    // Manifest digest -> names, in index order.
    let mut images: Vec<(Digest, Vec<u8>, Vec<String>)> = Vec::new();
    for desc in &index.manifests {
        let (path, _) = m.oci_blob(&desc.digest)?;
        let bytes = read_limited(path)?;
        let (digest, bytes) = match manifest::parse_document(&bytes)
            .with_context(|| format!("manifest {}", desc.digest))?
        {
            Document::Manifest(_) => (desc.digest.clone(), bytes),
            Document::Index(idx) => {
                let d = manifest::choose_platform(&idx, None)?;
                let (p, _) = m.oci_blob(&d.digest)?;
                (d.digest.clone(), read_limited(p)?)
            }
        };
        let ann = desc.annotations.clone().unwrap_or_default();
        let name = ann
            .get("io.containerd.image.name")
            .or_else(|| ann.get("org.opencontainers.image.ref.name"))
            .and_then(|n| names::qualify(n));
        match images.iter_mut().find(|(d, _, _)| d == &digest) {
            Some((_, _, ns)) => ns.extend(name),
            None => images.push((digest, bytes, name.into_iter().collect())),
        }
    }
    let mut out = Vec::new();
    for (digest, bytes, tags) in images {
        let Document::Manifest(man) = manifest::parse_document(&bytes)? else {
            bail!("manifest {digest} is an index inside an index");
        };
        for d in std::iter::once(&man.config).chain(&man.layers) {
            let (path, _) = m.oci_blob(&d.digest)?;
            adopt(st, path, &d.digest)?;
        }
        let id = st.add_image(&bytes, &tags, &[])?;
        out.push(Loaded { id, names: tags });
    }
    Ok(out)
}

#[derive(serde::Deserialize)]
struct DockerEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn load_docker(st: &mut Staged, m: &Members) -> Result<Vec<Loaded>> {
    let entries: Vec<DockerEntry> =
        serde_json::from_slice(&m.read_small("manifest.json")?).context("invalid manifest.json")?;
    let mut out = Vec::new();
    for e in entries {
        let (cpath, csize, cdigest) = m.file(&e.config)?;
        if csize > MAX_DOCUMENT {
            bail!("image configuration {} exceeds the 4 MiB limit", e.config);
        }
        // `<hex>.json` (docker) or `blobs/sha256/<hex>` (docker 25+) names the digest.
        let stem = Path::new(&e.config)
            .file_name()
            .and_then(|n| n.to_str())
            .map(|n| n.trim_end_matches(".json"))
            .unwrap_or("");
        if stem.len() == 64 && Digest::from_hex(stem).as_ref() != Some(cdigest) {
            bail!("image configuration {} does not match its digest", e.config);
        }
        let cdigest = cdigest.clone();
        let mut layers = Vec::new();
        for l in &e.layers {
            let (path, size, digest) = m.file(l)?;
            let head = {
                let mut b = [0u8; 4];
                let n = File::open(path)?.read(&mut b)?;
                b[..n].to_vec()
            };
            let (c, _) = compress::decompress(&head[..])?;
            let mt = match c {
                Compression::None => manifest::OCI_LAYER_TAR,
                Compression::Gzip => manifest::OCI_LAYER_GZIP,
                Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
            };
            layers.push(json!({"mediaType": mt, "digest": digest, "size": size}));
            adopt(st, path, &digest.clone())?;
        }
        adopt(st, cpath, &cdigest)?;
        let man = json!({
            "schemaVersion": 2,
            "mediaType": manifest::OCI_MANIFEST,
            "config": {"mediaType": manifest::OCI_CONFIG, "digest": cdigest, "size": csize},
            "layers": layers,
        });
        let mut tags = Vec::new();
        for t in e.repo_tags.unwrap_or_default() {
            tags.push(
                names::qualify(&t)
                    .with_context(|| format!("invalid image name {t:?} in manifest.json"))?,
            );
        }
        let id = st.add_image(&serde_json::to_vec(&man)?, &tags, &[])?;
        out.push(Loaded { id, names: tags });
    }
    Ok(out)
}

fn read_limited(p: &Path) -> Result<Vec<u8>> {
    let mut b = Vec::new();
    File::open(p)?.take(MAX_DOCUMENT + 1).read_to_end(&mut b)?;
    if b.len() as u64 > MAX_DOCUMENT {
        bail!("manifest exceeds the 4 MiB limit");
    }
    Ok(b)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArchiveFormat {
    Docker,
    Oci,
}

/// `save`: the images `(id, names to record)` into one archive written to `out`.
/// docker-archive holds uncompressed layer tars (as `docker save`); oci-archive the blobs
/// as stored.
pub(crate) fn save(
    store: &Store,
    images: &[(Digest, Vec<String>)],
    format: ArchiveFormat,
    out: &mut dyn Write,
) -> Result<()> {
    let mut w = tar::Writer::new(io::BufWriter::with_capacity(256 * 1024, out));
    match format {
        ArchiveFormat::Docker => save_docker(store, images, &mut w)?,
        ArchiveFormat::Oci => save_oci(store, images, &mut w)?,
    }
    w.finish()?.flush()?;
    Ok(())
}

fn save_docker<W: Write>(
    store: &Store,
    images: &[(Digest, Vec<String>)],
    w: &mut tar::Writer<W>,
) -> Result<()> {
    let mut manifest = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut written = std::collections::BTreeSet::new();
    for (id, tags) in images {
        let rec = store
            .image(id)?
            .with_context(|| format!("no such image: {id}"))?;
        let config = store.read_small_blob(id)?;
        let cname = format!("{}.json", id.hex());
        if written.insert(cname.clone()) {
            w.bytes(&cname, &config)?;
        }
        let mut layer_paths = Vec::new();
        for l in &rec.layers {
            let dir = l.diff_id.hex().to_string();
            let path = format!("{dir}/layer.tar");
            if written.insert(path.clone()) {
                let meta = store.layer_meta(&l.diff_id)?;
                w.dir(&dir)?;
                w.bytes(&format!("{dir}/VERSION"), b"1.0")?;
                w.bytes(
                    &format!("{dir}/json"),
                    serde_json::to_string(&json!({"id": dir}))?.as_bytes(),
                )?;
                let (_, mut plain) =
                    compress::decompress(io::BufReader::new(store.open_blob(&l.blob)?))?;
                let mut hashing = Hashing::new(&mut plain);
                w.file(&path, 0o644, meta.tar_size, &mut hashing)
                    .with_context(|| format!("layer {}", l.diff_id))?;
                let (d, _, _) = hashing.finish();
                if d != l.diff_id {
                    bail!("layer {} in the store is corrupt", l.diff_id);
                }
            }
            layer_paths.push(path);
        }
        let repo_tags: Vec<String> = tags
            .iter()
            .map(|t| {
                let (r, tag) = names::split_tag(t);
                repositories
                    .entry(names::familiar(r).to_string())
                    .or_default()
                    .insert(
                        tag.to_string(),
                        rec.layers
                            .last()
                            .map(|l| l.diff_id.hex().to_string())
                            .unwrap_or_default(),
                    );
                format!("{}:{tag}", names::familiar(r))
            })
            .collect();
        manifest.push(json!({"Config": cname, "RepoTags": repo_tags, "Layers": layer_paths}));
    }
    w.bytes("manifest.json", &serde_json::to_vec(&manifest)?)?;
    w.bytes("repositories", &serde_json::to_vec(&repositories)?)?;
    Ok(())
}

fn save_oci<W: Write>(
    store: &Store,
    images: &[(Digest, Vec<String>)],
    w: &mut tar::Writer<W>,
) -> Result<()> {
    let mut written = std::collections::BTreeSet::new();
    let mut index = Vec::new();
    w.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    w.dir("blobs")?;
    w.dir("blobs/sha256")?;
    for (id, tags) in images {
        let rec = store
            .image(id)?
            .with_context(|| format!("no such image: {id}"))?;
        let man_bytes = store.read_small_blob(&rec.manifest)?;
        let Document::Manifest(man) = manifest::parse_document(&man_bytes)? else {
            bail!("manifest of {id} is not an image manifest");
        };
        for d in [&rec.manifest, &man.config.digest]
            .into_iter()
            .chain(man.layers.iter().map(|l| &l.digest))
        {
            if written.insert(d.clone()) {
                let f = store.open_blob(d)?;
                let size = f.metadata()?.len();
                let mut h = Hashing::new(f);
                w.file(&format!("blobs/sha256/{}", d.hex()), 0o644, size, &mut h)?;
                if &h.finish().0 != d {
                    bail!("blob {d} in the store is corrupt");
                }
            }
        }
        let mt = man
            .media_type
            .clone()
            .unwrap_or_else(|| manifest::OCI_MANIFEST.to_string());
        let desc = |ann: Value| json!({"mediaType": mt, "digest": rec.manifest, "size": man_bytes.len(), "annotations": ann});
        if tags.is_empty() {
            index.push(json!({"mediaType": mt, "digest": rec.manifest, "size": man_bytes.len()}));
        }
        for t in tags {
            index.push(desc(json!({
                "io.containerd.image.name": t,
                "org.opencontainers.image.ref.name": t,
            })));
        }
    }
    let idx = json!({"schemaVersion": 2, "mediaType": manifest::OCI_INDEX, "manifests": index});
    w.bytes("index.json", &serde_json::to_vec(&idx)?)?;
    Ok(())
}

/// `import`: a root filesystem tarball (plain, gzip or zstd) as a one-layer image, with
/// `--change` instructions in Dockerfile syntax and an optional history comment.
pub(crate) fn import(
    store: &Store,
    input: &mut dyn Read,
    changes: &[String],
    message: Option<&str>,
    tags: &[String],
) -> Result<Digest> {
    let mut container_config = json!({});
    for c in changes {
        apply_change(&mut container_config, c)?;
    }
    let mut st = store.begin()?;
    let (_, mut plain) = compress::decompress(input)?;
    let tmp = st.scratch("import.tar");
    let mut w = Hashing::new(io::BufWriter::with_capacity(
        128 * 1024,
        File::create(&tmp)?,
    ));
    io::copy(&mut plain, &mut w).context("read the tarball")?;
    let (diff_id, size, bw) = w.finish();
    bw.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    st.adopt_verified(&tmp, &diff_id)?;
    let now = super::store::now_rfc3339();
    let mut history = json!({"created": now, "created_by": "berth import"});
    if let Some(m) = message {
        history["comment"] = json!(m);
    }
    let config = json!({
        "architecture": manifest::host_arch(),
        "os": "linux",
        "created": now,
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [history],
    });
    let config = serde_json::to_vec(&config)?;
    let cdigest = Digest::of(&config);
    st.put_blob(&cdigest, Some(config.len() as u64), &mut &config[..])?;
    let man = json!({
        "schemaVersion": 2,
        "mediaType": manifest::OCI_MANIFEST,
        "config": {"mediaType": manifest::OCI_CONFIG, "digest": cdigest, "size": config.len()},
        "layers": [{"mediaType": manifest::OCI_LAYER_TAR, "digest": diff_id, "size": size}],
    });
    let id = st.add_image(&serde_json::to_vec(&man)?, tags, &[])?;
    st.commit()?;
    Ok(id)
}

/// One `--change` instruction applied to the image's container configuration.
pub(crate) fn apply_change(cfg: &mut Value, change: &str) -> Result<()> {
    let change = change.trim();
    let (instr, rest) = change
        .split_once(|c: char| c.is_whitespace())
        .map(|(i, r)| (i, r.trim()))
        .unwrap_or((change, ""));
    let instr = instr.to_ascii_uppercase();
    let bad = || format!("invalid --change {change:?}");
    if rest.is_empty() {
        bail!("{}: {instr} needs an argument", bad());
    }
    // Exec form `["a", "b"]`, else the shell form.
    let list = |shell: bool| -> Result<Value> {
        if rest.starts_with('[') {
            let v: Vec<String> = serde_json::from_str(rest).with_context(bad)?;
            Ok(json!(v))
        } else if shell {
            Ok(json!(["/bin/sh", "-c", rest]))
        } else {
            Ok(json!(words(rest).with_context(bad)?))
        }
    };
    let obj = cfg
        .as_object_mut()
        .context("configuration is not an object")?;
    match instr.as_str() {
        "CMD" => {
            obj.insert("Cmd".into(), list(true)?);
        }
        "ENTRYPOINT" => {
            obj.insert("Entrypoint".into(), list(true)?);
        }
        "WORKDIR" => {
            obj.insert("WorkingDir".into(), json!(rest));
        }
        "USER" => {
            obj.insert("User".into(), json!(rest));
        }
        "STOPSIGNAL" => {
            obj.insert("StopSignal".into(), json!(rest));
        }
        "ENV" => {
            let pairs = key_values(rest).with_context(bad)?;
            let env = obj.entry("Env").or_insert_with(|| json!([]));
            let env = env.as_array_mut().context("Env is not a list")?;
            for (k, v) in pairs {
                env.retain(|e| e.as_str().and_then(|e| e.split_once('=')).map(|(ek, _)| ek) != Some(&k));
                env.push(json!(format!("{k}={v}")));
            }
        }
        "LABEL" => {
            let pairs = key_values(rest).with_context(bad)?;
            let labels = obj.entry("Labels").or_insert_with(|| json!({}));
            for (k, v) in pairs {
                labels[k] = json!(v);
            }
        }
        "EXPOSE" => {
            let ports = obj.entry("ExposedPorts").or_insert_with(|| json!({}));
            for p in rest.split_whitespace() {
                let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
                let ok = !num.is_empty()
                    && num.split('-').all(|n| n.parse::<u16>().is_ok())
                    && matches!(proto, "tcp" | "udp" | "sctp");
                if !ok {
                    bail!("{}: invalid port {p:?}", bad());
                }
                ports[format!("{num}/{proto}")] = json!({});
            }
        }
        "VOLUME" => {
            let vols = list(false)?;
            let v = obj.entry("Volumes").or_insert_with(|| json!({}));
            for p in vols.as_array().into_iter().flatten() {
                if let Some(p) = p.as_str() {
                    v[p] = json!({});
                }
            }
        }
        other => bail!(
            "{}: {other} is not one of CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR",
            bad()
        ),
    }
    Ok(())
}

/// Shell-like words: whitespace separated, "..." and '...' quoting, backslash escapes.
fn words(s: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                cur.push(chars.next().context("trailing backslash")?);
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        bail!("unterminated quote");
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `k=v k2="v 2"`, or the legacy `k value with spaces` form.
fn key_values(s: &str) -> Result<Vec<(String, String)>> {
    let first = s.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = s
            .split_once(|c: char| c.is_whitespace())
            .context("missing value")?;
        return Ok(vec![(k.to_string(), v.trim().to_string())]);
    }
    words(s)?
        .into_iter()
        .map(|w| {
            let (k, v) = w.split_once('=').context("expected key=value")?;
            if k.is_empty() {
                bail!("empty key");
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}
