//! The data behind the image commands, for the command glue to print: lookup (name, id,
//! id prefix, repo digest), `images` rows and filters, `inspect` (Docker's ImageInspect
//! JSON), `rmi` (untag vs delete as Docker), `tag`, `history`, `image prune`, `image
//! exists`, and the images part of `system df`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::manifest;
use super::names;
use super::overlay;
use super::store::{now_rfc3339, ImageRecord, NameEntry, Store};
use crate::front::digest::Digest;

/// How a reference matched: by one of the image's names (rmi then untags), or by id or
/// digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Matched {
    Name(String),
    Id,
}

/// Finds an image: an exact stored name, a repo digest (`name@sha256:...`), the name
/// qualified as Docker does (`busybox` -> `docker.io/library/busybox:latest`) or as
/// Podman does for local images (`localhost/busybox:latest`), then an id or unique id
/// prefix (with or without `sha256:`). A name wins over an id prefix.
pub(crate) fn find(store: &Store, reference: &str) -> Result<Option<(ImageRecord, Matched)>> {
    let names = store.names()?;
    let by_name = |n: &str| -> Result<Option<(ImageRecord, Matched)>> {
        match names.get(n) {
            Some(e) => Ok(store
                .image(&e.image)?
                .map(|r| (r, Matched::Name(n.to_string())))),
            None => Ok(None),
        }
    };
    if let Some(r) = by_name(reference)? {
        return Ok(Some(r));
    }
    if let Some((repo, digest)) = reference.split_once('@') {
        let d =
            Digest::parse(digest).with_context(|| format!("invalid reference {reference:?}"))?;
        let repo = repo
            .rsplit_once(':')
            .filter(|(_, t)| !t.contains('/'))
            .map_or(repo, |(r, _)| r);
        let repo_q = names::qualify(repo).map(|q| names::split_tag(&q).0.to_string());
        for rec in store.images()? {
            let hit = rec.repo_digests.iter().any(|rd| {
                rd.split_once('@').is_some_and(|(r, dd)| {
                    dd == d.to_string() && (r == repo || Some(r) == repo_q.as_deref())
                })
            }) || (rec.manifests.contains(&d)
                && names.iter().any(|(n, e)| {
                    e.image == rec.id
                        && (names::split_tag(n).0 == repo
                            || Some(names::split_tag(n).0) == repo_q.as_deref())
                }));
            if hit {
                return Ok(Some((rec, Matched::Id)));
            }
        }
        return Ok(None);
    }
    if let Some(q) = names::qualify(reference) {
        if let Some(r) = by_name(&q)? {
            return Ok(Some(r));
        }
        if !reference.contains('/') {
            let (_, tag) = names::split_tag(&q);
            let repo = reference.split(':').next().unwrap_or(reference);
            if let Some(r) = by_name(&format!("localhost/{repo}:{tag}"))? {
                return Ok(Some(r));
            }
        }
    }
    let hex = reference.strip_prefix("sha256:").unwrap_or(reference);
    if !hex.is_empty()
        && hex.len() <= 64
        && hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    {
        let hits: Vec<ImageRecord> = store
            .images()?
            .into_iter()
            .filter(|r| r.id.hex().starts_with(hex))
            .collect();
        match hits.len() {
            0 => {}
            1 => return Ok(hits.into_iter().next().map(|r| (r, Matched::Id))),
            n => bail!("ambiguous image id prefix {reference:?}: {n} images match"),
        }
    }
    Ok(None)
}

/// `find`, with Docker's error for an image that is not there.
pub(crate) fn lookup(store: &Store, reference: &str) -> Result<(ImageRecord, Matched)> {
    find(store, reference)?.with_context(|| format!("no such image: {reference}"))
}

/// `image exists` (Podman): whether the reference names a local image.
pub(crate) fn exists(store: &Store, reference: &str) -> Result<bool> {
    Ok(find(store, reference)?.is_some())
}

fn tags_of(names: &BTreeMap<String, NameEntry>, id: &Digest) -> Vec<String> {
    names
        .iter()
        .filter(|(_, e)| &e.image == id)
        .map(|(n, _)| n.clone())
        .collect()
}

/// One image, as `images` and its filters see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageSummary {
    pub(crate) id: Digest,
    /// Qualified `repo:tag` names.
    pub(crate) tags: Vec<String>,
    pub(crate) repo_digests: Vec<String>,
    /// The config's `created`, in seconds since the epoch.
    pub(crate) created: Option<i64>,
    pub(crate) size: u64,
    pub(crate) labels: BTreeMap<String, String>,
}

impl ImageSummary {
    pub(crate) fn dangling(&self) -> bool {
        self.tags.is_empty()
    }
}

/// Every image, newest first (Docker's order), ids breaking ties.
pub(crate) fn list(store: &Store) -> Result<Vec<ImageSummary>> {
    let names = store.names()?;
    let mut out = Vec::new();
    for rec in store.images()? {
        let (created, labels) = match store.config(&rec.id) {
            Ok((c, raw)) => (
                c.created.as_deref().and_then(parse_rfc3339),
                raw.pointer("/config/Labels")
                    .and_then(|l| l.as_object())
                    .map(|l| {
                        l.iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            // Removed while listing.
            Err(_) => continue,
        };
        out.push(ImageSummary {
            tags: tags_of(&names, &rec.id),
            repo_digests: rec.repo_digests.clone(),
            id: rec.id,
            created,
            size: rec.size,
            labels,
        });
    }
    out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// One row of `images`: REPOSITORY TAG (DIGEST) IMAGE ID CREATED SIZE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageRow {
    /// As Docker shows it (`busybox`, `user/app`, `quay.io/x/y`), or `<none>`.
    pub(crate) repository: String,
    pub(crate) tag: String,
    /// The repo digest of this repository, or `<none>`.
    pub(crate) digest: String,
    pub(crate) id: Digest,
    pub(crate) created: Option<i64>,
    pub(crate) size: u64,
}

/// The rows of `images`: one per name; a dangling image is one `<none>` row.
pub(crate) fn rows(images: &[ImageSummary]) -> Vec<ImageRow> {
    let mut out = Vec::new();
    for i in images {
        let digest_of = |repo: &str| {
            i.repo_digests
                .iter()
                .find_map(|rd| {
                    rd.split_once('@')
                        .filter(|(r, _)| *r == repo)
                        .map(|(_, d)| d.to_string())
                })
                .unwrap_or_else(|| "<none>".into())
        };
        if i.tags.is_empty() {
            let (repository, digest) =
                match i.repo_digests.first().and_then(|rd| rd.split_once('@')) {
                    Some((r, d)) => (names::familiar(r).to_string(), d.to_string()),
                    None => ("<none>".into(), "<none>".into()),
                };
            out.push(ImageRow {
                repository,
                tag: "<none>".into(),
                digest,
                id: i.id.clone(),
                created: i.created,
                size: i.size,
            });
        }
        for t in &i.tags {
            let (repo, tag) = names::split_tag(t);
            out.push(ImageRow {
                repository: names::familiar(repo).to_string(),
                tag: tag.to_string(),
                digest: digest_of(repo),
                id: i.id.clone(),
                created: i.created,
                size: i.size,
            });
        }
    }
    out
}

/// `images --filter`: `dangling=true|false`, `reference=PATTERN` (path-style glob on
/// `repo[:tag]`, the familiar or the qualified form), `before=IMAGE`, `since=IMAGE`,
/// `label=KEY[=VALUE]`. Filters of one key are ORed, different keys ANDed (Docker).
pub(crate) fn filter(
    store: &Store,
    images: Vec<ImageSummary>,
    filters: &[String],
) -> Result<Vec<ImageSummary>> {
    let mut by_key: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .with_context(|| format!("invalid filter {f:?}: expected key=value"))?;
        match k {
            "dangling" | "reference" | "before" | "since" | "label" => {}
            _ => bail!("invalid filter {k:?}"),
        }
        by_key.entry(k).or_default().push(v);
    }
    let mut created_of = BTreeMap::new();
    for k in ["before", "since"] {
        for v in by_key.get(k).into_iter().flatten() {
            let (rec, _) = lookup(store, v)?;
            let c = store
                .config(&rec.id)?
                .0
                .created
                .as_deref()
                .and_then(parse_rfc3339)
                .unwrap_or(0);
            created_of.insert((k, *v), (c, rec.id));
        }
    }
    let keep = |i: &ImageSummary| -> Result<bool> {
        for (k, vs) in &by_key {
            let any = vs.iter().map(|v| -> Result<bool> {
                Ok(match *k {
                    "dangling" => match *v {
                        "true" | "1" => i.dangling(),
                        "false" | "0" => !i.dangling(),
                        _ => bail!("invalid filter dangling={v:?}: expected true or false"),
                    },
                    "reference" => i.tags.iter().any(|t| {
                        let (repo, tag) = names::split_tag(t);
                        let fam = names::familiar(repo);
                        [fam, repo]
                            .iter()
                            .any(|r| glob(v, r) || glob(v, &format!("{r}:{tag}")))
                    }),
                    "before" => {
                        let (c, id) = &created_of[&(*k, *v)];
                        i.created.unwrap_or(0) < *c && &i.id != id
                    }
                    "since" => {
                        let (c, id) = &created_of[&(*k, *v)];
                        i.created.unwrap_or(0) > *c && &i.id != id
                    }
                    _ => match v.split_once('=') {
                        Some((lk, lv)) => i.labels.get(lk).is_some_and(|x| x == lv),
                        None => i.labels.contains_key(*v),
                    },
                })
            });
            let mut hit = false;
            for r in any {
                hit |= r?;
            }
            if !hit {
                return Ok(false);
            }
        }
        Ok(true)
    };
    let mut out = Vec::new();
    for i in images {
        if keep(&i)? {
            out.push(i);
        }
    }
    Ok(out)
}

/// Go's path.Match: `*` and `?` never cross `/`; `[...]` classes.
pub(crate) fn glob(pattern: &str, s: &str) -> bool {
    fn m(p: &[u8], s: &[u8]) -> bool {
        match p.first() {
            None => s.is_empty(),
            Some(b'*') => (0..=s.len())
                .take_while(|&i| i == 0 || s[i - 1] != b'/')
                .any(|i| m(&p[1..], &s[i..])),
            Some(b'?') => !s.is_empty() && s[0] != b'/' && m(&p[1..], &s[1..]),
            Some(b'[') => {
                let Some(end) = p.iter().position(|&c| c == b']') else {
                    return false;
                };
                let Some(&c) = s.first() else { return false };
                let (neg, class) = match p[1..end].strip_prefix(b"^") {
                    Some(c) => (true, c),
                    None => (false, &p[1..end]),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == b'-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != neg && c != b'/' && m(&p[end + 1..], &s[1..])
            }
            Some(b'\\') if p.len() > 1 => !s.is_empty() && s[0] == p[1] && m(&p[2..], &s[1..]),
            Some(&c) => !s.is_empty() && s[0] == c && m(&p[1..], &s[1..]),
        }
    }
    m(pattern.as_bytes(), s.as_bytes())
}

/// Seconds since the epoch of an RFC 3339 time (`2024-01-02T03:04:05.123Z`, `+02:00`).
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (
        n(0..4)?,
        n(5..7)?,
        n(8..10)?,
        n(11..13)?,
        n(14..16)?,
        n(17..19)?,
    );
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        rest = r.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let off = match rest {
        "Z" | "z" => 0,
        r if r.len() == 6 && (r.starts_with('+') || r.starts_with('-')) => {
            let v = r[1..3].parse::<i64>().ok()? * 3600 + r[4..6].parse::<i64>().ok()? * 60;
            if r.starts_with('-') {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (if mo > 2 { mo - 3 } else { mo + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86400 + h * 3600 + mi * 60 + se - off)
}

/// `inspect IMAGE`: Docker's ImageInspect object.
pub(crate) fn inspect(store: &Store, rec: &ImageRecord) -> Result<Value> {
    let names = store.names()?;
    let (cfg, raw) = store.config(&rec.id)?;
    let c = raw.get("config").cloned().unwrap_or(Value::Null);
    let get = |k: &str, default: Value| {
        c.get(k)
            .filter(|v| !v.is_null())
            .cloned()
            .unwrap_or(default)
    };
    let mut config = json!({
        "Hostname": "", "Domainname": "", "User": get("User", json!("")),
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
    });
    let o = config.as_object_mut().context("config")?;
    if let Some(p) = c.get("ExposedPorts").filter(|v| !v.is_null()) {
        o.insert("ExposedPorts".into(), p.clone());
    }
    o.insert("Tty".into(), json!(false));
    o.insert("OpenStdin".into(), json!(false));
    o.insert("StdinOnce".into(), json!(false));
    o.insert("Env".into(), get("Env", Value::Null));
    o.insert("Cmd".into(), get("Cmd", Value::Null));
    if let Some(h) = c.get("Healthcheck").filter(|v| !v.is_null()) {
        o.insert("Healthcheck".into(), h.clone());
    }
    if let Some(a) = c.get("ArgsEscaped").filter(|v| !v.is_null()) {
        o.insert("ArgsEscaped".into(), a.clone());
    }
    o.insert("Image".into(), get("Image", json!("")));
    o.insert("Volumes".into(), get("Volumes", Value::Null));
    o.insert("WorkingDir".into(), get("WorkingDir", json!("")));
    o.insert("Entrypoint".into(), get("Entrypoint", Value::Null));
    o.insert("OnBuild".into(), get("OnBuild", Value::Null));
    o.insert("Labels".into(), get("Labels", Value::Null));
    if let Some(s) = c.get("StopSignal").filter(|v| !v.is_null()) {
        o.insert("StopSignal".into(), s.clone());
    }
    if let Some(s) = c.get("Shell").filter(|v| !v.is_null()) {
        o.insert("Shell".into(), s.clone());
    }
    let tags: Vec<String> = tags_of(&names, &rec.id)
        .iter()
        .map(|t| {
            let (r, tag) = names::split_tag(t);
            format!("{}:{tag}", names::familiar(r))
        })
        .collect();
    let repo_digests: Vec<String> = rec
        .repo_digests
        .iter()
        .map(|rd| match rd.split_once('@') {
            Some((r, d)) => format!("{}@{d}", names::familiar(r)),
            None => rd.clone(),
        })
        .collect();
    let dirs: Vec<String> = rec
        .layers
        .iter()
        .rev()
        .map(|l| store.layer_dir(&l.diff_id).to_string_lossy().into_owned())
        .collect();
    let mut graph = serde_json::Map::new();
    if let Some((top, rest)) = dirs.split_first() {
        if !rest.is_empty() {
            graph.insert("LowerDir".into(), json!(rest.join(":")));
        }
        graph.insert("UpperDir".into(), json!(top));
    }
    let mut v = json!({
        "Id": rec.id,
        "RepoTags": tags,
        "RepoDigests": repo_digests,
        "Parent": "",
        "Comment": raw.get("comment").cloned().unwrap_or(json!("")),
        "Created": cfg.created.clone().unwrap_or_default(),
        "Container": raw.get("container").cloned().unwrap_or(json!("")),
        "DockerVersion": raw.get("docker_version").cloned().unwrap_or(json!("")),
        "Author": raw.get("author").cloned().unwrap_or(json!("")),
        "Config": config,
        "Architecture": cfg.architecture,
    });
    let o = v.as_object_mut().context("inspect")?;
    if let Some(var) = raw.get("variant").filter(|x| !x.is_null()) {
        o.insert("Variant".into(), var.clone());
    }
    o.insert("Os".into(), json!(cfg.os));
    o.insert("Size".into(), json!(rec.size));
    o.insert(
        "GraphDriver".into(),
        json!({"Data": graph, "Name": "overlay"}),
    );
    o.insert(
        "RootFS".into(),
        json!({"Type": "layers", "Layers": rec.layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()}),
    );
    o.insert(
        "Metadata".into(),
        json!({"LastTagTime": rec.last_tag_time.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into())}),
    );
    Ok(v)
}

/// `tag SOURCE TARGET`: `target` is a qualified `repo:tag`; the name moves from any
/// other image (which may become dangling), as Docker.
pub(crate) fn tag(store: &Store, source: &str, target: &str) -> Result<Digest> {
    let (rec, _) = lookup(store, source)?;
    if names::qualify(target).as_deref() != Some(target) {
        bail!("invalid target name {target:?}: expected a qualified repo:tag");
    }
    let _lock = store.lock()?;
    let Some(mut rec) = store.image(&rec.id)? else {
        bail!("no such image: {source}");
    };
    let mut names = store.names()?;
    names.insert(
        target.to_string(),
        NameEntry {
            image: rec.id.clone(),
            manifest: rec.manifest.clone(),
        },
    );
    rec.last_tag_time = Some(now_rfc3339());
    store.write_record(&rec)?;
    store.write_names(&names)?;
    Ok(rec.id)
}

/// What `rmi` did, in Docker's order and words (`Untagged: busybox:latest`,
/// `Deleted: sha256:...`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Removed {
    Untagged(String),
    Deleted(Digest),
}

impl std::fmt::Display for Removed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Removed::Untagged(n) => match n.split_once('@') {
                Some((r, d)) => write!(f, "Untagged: {}@{d}", names::familiar(r)),
                None => {
                    let (r, t) = names::split_tag(n);
                    write!(f, "Untagged: {}:{t}", names::familiar(r))
                }
            },
            Removed::Deleted(d) => write!(f, "Deleted: {d}"),
        }
    }
}

/// `rmi [-f] REF`: a name is untagged, and the image deleted with its last name; an id
/// deletes the image (with all its names when they are of one repository, or with
/// `force`). An image a container uses (`in_use` names it) or that is mounted is never
/// deleted; its names go only with `force`. Layers shared with other images stay.
pub(crate) fn remove(
    store: &Store,
    reference: &str,
    force: bool,
    in_use: &dyn Fn(&Digest) -> Option<String>,
) -> Result<Vec<Removed>> {
    let _lock = store.lock()?;
    let (rec, matched) = lookup(store, reference)?;
    let mut names = store.names()?;
    let tags = tags_of(&names, &rec.id);
    let user = in_use(&rec.id);
    let mounted = overlay::mounted_images(store)
        .iter()
        .any(|(id, _)| id == &rec.id);
    let mut out = Vec::new();
    let untag_only = match &matched {
        Matched::Name(n) if tags.len() > 1 => {
            names.remove(n);
            out.push(Removed::Untagged(n.clone()));
            true
        }
        Matched::Name(n) => {
            if let Some(c) = &user {
                if !force {
                    bail!(
                        "conflict: unable to remove repository reference {:?} (must force) - container {c} is using its referenced image {}",
                        reference,
                        rec.id.short()
                    );
                }
                names.remove(n);
                out.push(Removed::Untagged(n.clone()));
                true
            } else {
                false
            }
        }
        Matched::Id => {
            let repos: BTreeSet<&str> = tags.iter().map(|t| names::split_tag(t).0).collect();
            if repos.len() > 1 && !force {
                bail!(
                    "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                    rec.id.short()
                );
            }
            false
        }
    };
    if untag_only {
        store.write_names(&names)?;
        return Ok(out);
    }
    if let Some(c) = user {
        bail!(
            "conflict: unable to delete {} ({}) - image is being used by container {c}",
            rec.id.short(),
            if force {
                "cannot be forced"
            } else {
                "must be forced"
            }
        );
    }
    if mounted {
        bail!(
            "image {} is mounted: unmount it first (image unmount)",
            rec.id.short()
        );
    }
    for t in &tags {
        names.remove(t);
        out.push(Removed::Untagged(t.clone()));
    }
    for rd in &rec.repo_digests {
        out.push(Removed::Untagged(rd.clone()));
    }
    store.write_names(&names)?;
    store.remove_record(&rec.id)?;
    out.push(Removed::Deleted(rec.id.clone()));
    store.collect_garbage()?;
    Ok(out)
}

/// One row of `history`: IMAGE CREATED CREATED BY SIZE COMMENT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HistoryRow {
    /// The image id on the top row, None (`<missing>`) below, as Docker for pulled images.
    pub(crate) id: Option<Digest>,
    pub(crate) created: Option<i64>,
    pub(crate) created_by: String,
    pub(crate) size: u64,
    pub(crate) comment: String,
}

pub(crate) fn history(store: &Store, rec: &ImageRecord) -> Result<Vec<HistoryRow>> {
    let (cfg, _) = store.config(&rec.id)?;
    let sizes: Vec<u64> = rec
        .layers
        .iter()
        .map(|l| store.layer_meta(&l.diff_id).map(|m| m.size).unwrap_or(0))
        .collect();
    let entries: Vec<manifest::History> = if cfg.history.is_empty() {
        rec.layers
            .iter()
            .map(|_| manifest::History::default())
            .collect()
    } else {
        cfg.history
    };
    let mut layer = 0;
    let mut rows = Vec::new();
    for h in entries {
        let size = if h.empty_layer {
            0
        } else {
            layer += 1;
            sizes.get(layer - 1).copied().unwrap_or(0)
        };
        rows.push(HistoryRow {
            id: None,
            created: h.created.as_deref().and_then(parse_rfc3339),
            created_by: h.created_by.unwrap_or_default(),
            size,
            comment: h.comment.unwrap_or_default(),
        });
    }
    rows.reverse();
    if let Some(top) = rows.first_mut() {
        top.id = Some(rec.id.clone());
    }
    Ok(rows)
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pruned {
    pub(crate) removed: Vec<Removed>,
    /// Bytes of blobs and unpacked layers freed.
    pub(crate) reclaimed: u64,
}

/// `image prune [-a]`: dangling images (every unused image with `all`) that no container
/// uses and that are not mounted, then the blobs and layers nothing refers to.
pub(crate) fn prune(
    store: &Store,
    all: bool,
    in_use: &dyn Fn(&Digest) -> Option<String>,
) -> Result<Pruned> {
    prune_where(store, all, in_use, &|_| true)
}

/// [`prune`] of the images `wanted` accepts (`image prune --filter`).
pub(crate) fn prune_where(
    store: &Store,
    all: bool,
    in_use: &dyn Fn(&Digest) -> Option<String>,
    wanted: &dyn Fn(&Digest) -> bool,
) -> Result<Pruned> {
    let _lock = store.lock()?;
    let mut names = store.names()?;
    let mounted: BTreeSet<Digest> = overlay::mounted_images(store)
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    let mut out = Pruned::default();
    for rec in store.images()? {
        let tags = tags_of(&names, &rec.id);
        if (!all && !tags.is_empty())
            || in_use(&rec.id).is_some()
            || mounted.contains(&rec.id)
            || !wanted(&rec.id)
        {
            continue;
        }
        for t in tags {
            names.remove(&t);
            out.removed.push(Removed::Untagged(t));
        }
        store.write_names(&names)?;
        store.remove_record(&rec.id)?;
        out.removed.push(Removed::Deleted(rec.id));
    }
    out.reclaimed = store.collect_garbage()?;
    Ok(out)
}

/// The images part of `system df`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DiskUsage {
    pub(crate) total: usize,
    /// Images at least one container uses.
    pub(crate) active: usize,
    /// Unpacked bytes of all layers, each counted once.
    pub(crate) size: u64,
    /// Bytes freed by removing every image no container uses.
    pub(crate) reclaimable: u64,
    pub(crate) images: Vec<ImageUsage>,
}

/// `system df -v` per image: its size, the part shared with other images, and how many
/// containers use it (as `containers` tells).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ImageUsage {
    pub(crate) id: Digest,
    pub(crate) size: u64,
    pub(crate) shared_size: u64,
    pub(crate) unique_size: u64,
    pub(crate) containers: usize,
}

pub(crate) fn disk_usage(
    store: &Store,
    containers: &dyn Fn(&Digest) -> usize,
) -> Result<DiskUsage> {
    let recs = store.images()?;
    let mut users: BTreeMap<Digest, usize> = BTreeMap::new();
    let mut layer_size: BTreeMap<Digest, u64> = BTreeMap::new();
    for r in &recs {
        for l in r.layers.iter().map(|l| &l.diff_id).collect::<BTreeSet<_>>() {
            *users.entry(l.clone()).or_default() += 1;
            layer_size
                .entry(l.clone())
                .or_insert_with(|| store.layer_meta(l).map(|m| m.size).unwrap_or(0));
        }
    }
    let mut du = DiskUsage {
        total: recs.len(),
        size: layer_size.values().sum(),
        ..Default::default()
    };
    let mut active_layers = BTreeSet::new();
    for r in &recs {
        let n = containers(&r.id);
        let layers: BTreeSet<&Digest> = r.layers.iter().map(|l| &l.diff_id).collect();
        let shared: u64 = layers
            .iter()
            .filter(|l| users[**l] > 1)
            .map(|l| layer_size[*l])
            .sum();
        let all: u64 = layers.iter().map(|l| layer_size[*l]).sum();
        if n > 0 {
            du.active += 1;
            active_layers.extend(layers.iter().map(|l| (*l).clone()));
        }
        du.images.push(ImageUsage {
            id: r.id.clone(),
            size: all,
            shared_size: shared,
            unique_size: all - shared,
            containers: n,
        });
    }
    du.reclaimable = layer_size
        .iter()
        .filter(|(l, _)| !active_layers.contains(*l))
        .map(|(_, s)| s)
        .sum();
    Ok(du)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_and_glob() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(1_700_000_000));
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123456789Z"),
            Some(1_700_000_000)
        );
        assert_eq!(
            parse_rfc3339("2023-11-15T00:13:20+02:00"),
            Some(1_700_000_000)
        );
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert!(glob("busy*", "busybox"));
        assert!(!glob("*", "library/busybox"));
        assert!(glob("*/busybox", "library/busybox"));
        assert!(glob("busybox:1.3?", "busybox:1.36"));
        assert!(glob("b[a-u]sybox", "busybox"));
        assert!(!glob("b[^u]sybox", "busybox"));
    }
}
