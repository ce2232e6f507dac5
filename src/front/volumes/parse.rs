//! `-v/--volume`, `--mount`, `--tmpfs`, `--volumes-from` and the image's `VOLUME`s ->
//! the container's mounts, checked whole before anything exists (Docker's rules and
//! words; `--mount` is the stricter one: a missing bind source is an error there).

use std::collections::BTreeSet;
use std::path::{Component, Path};

use anyhow::{anyhow, bail, Result};

use super::{validate_name, MountPoint};

const PROPAGATIONS: &[&str] = &[
    "shared", "slave", "private", "rshared", "rslave", "rprivate",
];

/// Where berth keeps its own state: a read-write bind of it (or of `/`) is refused.
pub(crate) struct Context<'a> {
    pub(crate) state_dirs: &'a [&'a Path],
}

/// A destination in the container: absolute, not `/`, no `..`, no NUL; cleaned.
fn destination(d: &str, what: &str) -> Result<String> {
    if d.is_empty() {
        bail!("{what}: the destination (the path in the container) is missing");
    }
    if !d.starts_with('/') {
        bail!("{what}: invalid mount path: {d:?}: the mount path must be absolute");
    }
    let p = clean(d, what)?;
    if p == "/" {
        bail!("{what}: invalid specification: the destination can't be '/'");
    }
    Ok(p)
}

/// An absolute path cleaned of `.` and duplicate slashes; `..` and NUL refused.
fn clean(p: &str, what: &str) -> Result<String> {
    if p.contains('\0') {
        bail!("{what}: {p:?}: a path cannot contain NUL");
    }
    let mut out = String::new();
    for c in Path::new(p).components() {
        match c {
            Component::RootDir => {}
            Component::CurDir => {}
            Component::ParentDir => bail!("{what}: {p:?}: a path cannot contain '..'"),
            Component::Normal(n) => {
                out.push('/');
                out.push_str(&n.to_string_lossy());
            }
            Component::Prefix(_) => bail!("{what}: {p:?}: not a path"),
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

fn bind_source(src: &str, what: &str, ctx: &Context, rw: bool) -> Result<String> {
    let s = clean(src, what)?;
    // Checked where it leads too: a symlink to / or to the state is the same bind.
    let real = std::fs::canonicalize(&s).unwrap_or_else(|_| s.clone().into());
    if rw && (s == "/" || real == Path::new("/")) {
        bail!("{what}: a read-write bind of the host's / is refused (add :ro)");
    }
    for d in ctx.state_dirs {
        if Path::new(&s).starts_with(d) || real.starts_with(d) {
            bail!(
                "{what}: {s} is inside berth's own state ({}): use a named volume instead",
                d.display()
            );
        }
    }
    Ok(s)
}

fn is_mode(m: &str) -> bool {
    !m.is_empty()
        && m.split(',').all(|o| {
            matches!(
                o,
                "ro" | "rw"
                    | "z"
                    | "Z"
                    | "U"
                    | "O"
                    | "nocopy"
                    | "consistent"
                    | "cached"
                    | "delegated"
            ) || PROPAGATIONS.contains(&o)
        })
}

/// `-v SRC:DST[:OPTS]`, `-v NAME:DST[:OPTS]`, `-v DST[:OPTS]`.
pub(crate) fn volume_flag(spec: &str, ctx: &Context) -> Result<MountPoint> {
    let what = &format!("-v {spec}");
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => (None, *d, ""),
        // `-v /dst:ro` is an anonymous volume with options (Docker: when the second part
        // reads as a mode).
        [d, m] if is_mode(m) => (None, *d, *m),
        [s, d] => (Some(*s), *d, ""),
        [s, d, m] => (Some(*s), *d, *m),
        _ => bail!("{what}: invalid volume specification: expected SRC:DST[:OPTIONS]"),
    };
    if src == Some("") {
        bail!("{what}: invalid volume specification: the source is empty");
    }
    let src = src.unwrap_or("");
    let destination = destination(dst, what)?;
    let mut m = MountPoint {
        destination,
        rw: true,
        mode: mode.to_string(),
        ..Default::default()
    };
    let mut seen_rw = None;
    let mut prop = None;
    for o in mode.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" | "rw" => {
                if seen_rw.is_some_and(|s| s != o) {
                    bail!("{what}: invalid mode: {mode:?}: ro and rw together");
                }
                seen_rw = Some(o);
                m.rw = o == "rw";
            }
            // SELinux relabelling: accepted; there is nothing to relabel without SELinux.
            "z" | "Z" => {}
            "U" => m.chown = true,
            "nocopy" => m.no_copy = true,
            p if PROPAGATIONS.contains(&p) => {
                if prop.is_some() {
                    bail!("{what}: invalid mode: {mode:?}: more than one propagation");
                }
                prop = Some(p.to_string());
            }
            "O" => m.overlay = true,
            // Docker Desktop's consistency hints: meaningless on Linux, accepted by Docker.
            "consistent" | "cached" | "delegated" => {}
            _ => bail!("{what}: invalid mode: {o:?} (ro, rw, z, Z, U, nocopy, shared, slave, private, rshared, rslave, rprivate)"),
        }
    }
    if src.starts_with('/') {
        if m.no_copy {
            bail!("{what}: invalid mode: nocopy applies to volumes, not to host directories");
        }
        if m.overlay && (m.chown || !m.rw || prop.is_some()) {
            bail!("{what}: invalid mode: O (an overlay) cannot be combined with U, ro or a propagation");
        }
        m.kind = "bind".into();
        m.source = bind_source(src, what, ctx, m.rw)?;
        m.propagation = prop.unwrap_or_else(|| "rprivate".into());
        m.create_source = true;
    } else {
        if prop.is_some() {
            bail!("{what}: invalid mode: propagation applies to host directories, not to volumes");
        }
        if m.overlay {
            bail!("{what}: invalid mode: O applies to host directories, not to volumes");
        }
        m.kind = "volume".into();
        m.driver = "local".into();
        if src.is_empty() {
            m.anonymous = true;
        } else {
            validate_name(src).map_err(|e| anyhow!("{what}: {e}"))?;
            m.name = src.to_string();
        }
    }
    Ok(m)
}

/// Docker's `--mount` value: comma-separated `key=value` fields, a field quoted with `"`
/// when it holds a comma.
fn csv_fields(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn bool_value(v: Option<&str>, key: &str, what: &str) -> Result<bool> {
    match v {
        None | Some("1") | Some("true") => Ok(true),
        Some("0") | Some("false") => Ok(false),
        Some(x) => bail!("{what}: invalid value for {key}: {x:?} (true or false)"),
    }
}

/// `--mount type=bind|volume|tmpfs,source=,target=,...`.
pub(crate) fn mount_flag(spec: &str, ctx: &Context) -> Result<MountPoint> {
    let what = &format!("--mount {spec}");
    let mut kind = "volume".to_string();
    let mut src: Option<String> = None;
    let mut dst: Option<String> = None;
    let mut ro = false;
    let mut prop: Option<String> = None;
    let mut non_recursive = false;
    let mut nocopy = false;
    let mut tmpfs_opts: Vec<String> = Vec::new();
    let mut volume_labels = std::collections::BTreeMap::new();
    let mut volume_options = std::collections::BTreeMap::new();
    let mut family: BTreeSet<&'static str> = BTreeSet::new();
    for f in csv_fields(spec) {
        if f.is_empty() {
            continue;
        }
        let (k, v) = match f.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v.to_string())),
            None => (f.trim().to_ascii_lowercase(), None),
        };
        let need = |v: &Option<String>| -> Result<String> {
            v.clone()
                .ok_or_else(|| anyhow!("{what}: invalid field {f:?}: must be a key=value pair"))
        };
        match k.as_str() {
            "type" => kind = need(&v)?,
            "source" | "src" => src = Some(need(&v)?),
            "target" | "destination" | "dst" => dst = Some(need(&v)?),
            "readonly" | "ro" => ro = bool_value(v.as_deref(), &k, what)?,
            "consistency" => {
                need(&v)?;
            }
            "bind-propagation" => {
                let p = need(&v)?;
                if !PROPAGATIONS.contains(&p.as_str()) {
                    bail!("{what}: invalid propagation mode: {p:?}");
                }
                prop = Some(p);
                family.insert("bind");
            }
            "bind-nonrecursive" => {
                non_recursive = bool_value(v.as_deref(), &k, what)?;
                family.insert("bind");
            }
            // Docker 25's form; read-only binds are recursively read-only here anyway.
            "bind-recursive" => {
                non_recursive = match v.as_deref() {
                    Some("enabled" | "readonly" | "writable") => false,
                    Some("disabled") => true,
                    other => bail!(
                        "{what}: invalid value for bind-recursive: {:?} (enabled, disabled, writable, readonly)",
                        other.unwrap_or("")
                    ),
                };
                family.insert("bind");
            }
            "volume-nocopy" => {
                nocopy = bool_value(v.as_deref(), &k, what)?;
                family.insert("volume");
            }
            "volume-driver" => {
                let d = need(&v)?;
                if d != "local" {
                    bail!("{what}: volume driver {d:?}: only the local driver is available");
                }
                family.insert("volume");
            }
            "volume-label" | "volume-opt" => {
                let kv = need(&v)?;
                let (lk, lv) = match kv.split_once('=') {
                    Some((a, b)) => (a.to_string(), b.to_string()),
                    None if k == "volume-label" => (kv.clone(), String::new()),
                    None => bail!("{what}: invalid {k} {kv:?}: expected key=value"),
                };
                if lk.is_empty() {
                    bail!("{what}: invalid {k} {kv:?}: the key is empty");
                }
                if k == "volume-label" {
                    volume_labels.insert(lk, lv);
                } else {
                    volume_options.insert(lk, lv);
                }
                family.insert("volume");
            }
            "tmpfs-size" => {
                let s = need(&v)?;
                let n = crate::front::units::ram_in_bytes(&s)
                    .map_err(|e| anyhow!("{what}: invalid tmpfs-size {s:?}: {e}"))?;
                if n <= 0 {
                    bail!("{what}: invalid tmpfs-size {s:?}: must be positive");
                }
                tmpfs_opts.push(format!("size={n}"));
                family.insert("tmpfs");
            }
            "tmpfs-mode" => {
                let s = need(&v)?;
                let n = u32::from_str_radix(&s, 8)
                    .ok()
                    .filter(|n| *n <= 0o7777)
                    .ok_or_else(|| anyhow!("{what}: invalid tmpfs-mode {s:?}: an octal mode"))?;
                tmpfs_opts.push(format!("mode={n:o}"));
                family.insert("tmpfs");
            }
            _ => bail!("{what}: unexpected key {k:?}"),
        }
    }
    if !matches!(kind.as_str(), "bind" | "volume" | "tmpfs") {
        bail!("{what}: invalid type {kind:?}: bind, volume or tmpfs");
    }
    if let Some(other) = family.iter().find(|f| **f != kind) {
        bail!("{what}: {other}-* options are not valid with type={kind}");
    }
    let dst = dst.ok_or_else(|| anyhow!("{what}: target is required"))?;
    let mut m = MountPoint {
        kind: kind.clone(),
        destination: destination(&dst, what)?,
        rw: !ro,
        no_copy: nocopy,
        non_recursive,
        ..Default::default()
    };
    if ro {
        m.mode = "ro".into();
    }
    match kind.as_str() {
        "bind" => {
            let s = src.filter(|s| !s.is_empty()).ok_or_else(|| {
                anyhow!("{what}: invalid mount config for type \"bind\": field Source must not be empty")
            })?;
            if !s.starts_with('/') {
                bail!("{what}: invalid mount config for type \"bind\": the source must be an absolute path");
            }
            m.source = bind_source(&s, what, ctx, m.rw)?;
            if std::fs::metadata(&m.source).is_err() {
                bail!(
                    "{what}: invalid mount config for type \"bind\": bind source path does not exist: {}",
                    m.source
                );
            }
            m.propagation = prop.unwrap_or_else(|| "rprivate".into());
        }
        "volume" => {
            m.driver = "local".into();
            super::check_options(&volume_options)
                .and_then(|()| super::check_device(&volume_options, ctx.state_dirs))
                .map_err(|e| anyhow!("{what}: {e}"))?;
            m.volume_labels = volume_labels;
            m.volume_options = volume_options;
            match src.filter(|s| !s.is_empty()) {
                None => m.anonymous = true,
                Some(s) => {
                    validate_name(&s).map_err(|e| anyhow!("{what}: {e}"))?;
                    m.name = s;
                }
            }
        }
        _ => {
            if src.is_some_and(|s| !s.is_empty()) {
                bail!(
                    "{what}: invalid mount config for type \"tmpfs\": field Source must be empty"
                );
            }
            let mut opts = vec!["nosuid".to_string(), "nodev".into(), "noexec".into()];
            opts.extend(tmpfs_opts);
            if ro {
                opts.push("ro".into());
            }
            m.options = opts;
        }
    }
    Ok(m)
}

/// `--tmpfs DST[:OPTS]`: Docker's defaults (`noexec,nosuid,nodev`) then the user's.
pub(crate) fn tmpfs_flag(spec: &str) -> Result<MountPoint> {
    let what = &format!("--tmpfs {spec}");
    let (dst, opts) = spec.split_once(':').unwrap_or((spec, ""));
    let mut m = MountPoint {
        kind: "tmpfs".into(),
        destination: destination(dst, what)?,
        rw: true,
        mode: opts.to_string(),
        options: vec!["nosuid".into(), "nodev".into(), "noexec".into()],
        ..Default::default()
    };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let (k, v) = o.split_once('=').unwrap_or((o, ""));
        match k {
            "size" => {
                let n = crate::front::units::ram_in_bytes(v)
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| anyhow!("{what}: invalid size {v:?}"))?;
                m.options.push(format!("size={n}"));
                continue;
            }
            "mode" => {
                if u32::from_str_radix(v, 8)
                    .ok()
                    .filter(|n| *n <= 0o7777)
                    .is_none()
                {
                    bail!("{what}: invalid mode {v:?}: an octal mode");
                }
            }
            "uid" | "gid" | "nr_inodes" | "nr_blocks" => {
                if v.parse::<u64>().is_err() {
                    bail!("{what}: invalid {k} {v:?}: a number");
                }
            }
            "ro" | "rw" | "exec" | "noexec" | "suid" | "nosuid" | "dev" | "nodev" | "atime"
            | "noatime" | "relatime" | "strictatime" | "nodiratime" => {
                if o.contains('=') {
                    bail!("{what}: invalid option {o:?}");
                }
                if k == "ro" {
                    m.rw = false;
                }
            }
            p if PROPAGATIONS.contains(&p) => {}
            _ => bail!("{what}: invalid tmpfs option {o:?}"),
        }
        m.options.push(o.to_string());
    }
    Ok(m)
}

/// `--volumes-from CTR[:ro|rw]`: the container part and whether to force a mode.
pub(crate) fn volumes_from_flag(spec: &str) -> Result<(String, Option<bool>)> {
    let (c, mode) = match spec.rsplit_once(':') {
        Some((c, m)) => (c, Some(m)),
        None => (spec, None),
    };
    if c.is_empty() {
        bail!("--volumes-from {spec}: the container is missing");
    }
    let rw = match mode {
        None => None,
        Some("rw") => Some(true),
        Some("ro") => Some(false),
        Some(m) => bail!("--volumes-from {spec}: invalid mode {m:?} (ro or rw)"),
    };
    Ok((c.to_string(), rw))
}

/// Every mount of the container, in the order they are mounted; a destination given twice
/// is refused (Docker's `Duplicate mount point`). `from` are the mounts `--volumes-from`
/// brought, `image_volumes` the image's `VOLUME`s (anonymous volumes where nothing else
/// is mounted).
pub(crate) fn all(
    volume: &[String],
    mount: &[String],
    tmpfs: &[String],
    from: Vec<MountPoint>,
    image_volumes: &[String],
    ctx: &Context,
) -> Result<Vec<MountPoint>> {
    let mut out: Vec<MountPoint> = Vec::new();
    let push = |m: MountPoint, out: &mut Vec<MountPoint>| -> Result<()> {
        if out.iter().any(|o| o.destination == m.destination) {
            bail!("Duplicate mount point: {}", m.destination);
        }
        out.push(m);
        Ok(())
    };
    let given = |mut m: MountPoint, flag: &str, spec: &str| {
        m.flag = flag.into();
        m.spec = spec.into();
        m
    };
    for v in volume {
        push(given(volume_flag(v, ctx)?, "-v", v), &mut out)?;
    }
    for v in mount {
        push(given(mount_flag(v, ctx)?, "--mount", v), &mut out)?;
    }
    for v in tmpfs {
        push(given(tmpfs_flag(v)?, "--tmpfs", v), &mut out)?;
    }
    // What the user named wins over what another container brings (Docker's order).
    for m in from {
        if !out.iter().any(|o| o.destination == m.destination) {
            out.push(m);
        }
    }
    for v in image_volumes {
        let Ok(d) = destination(v, "the image's VOLUME") else {
            continue;
        };
        if !out.iter().any(|o| o.destination == d) {
            out.push(MountPoint {
                kind: "volume".into(),
                driver: "local".into(),
                destination: d,
                rw: true,
                anonymous: true,
                ..Default::default()
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context<'static> {
        Context { state_dirs: &[] }
    }

    #[test]
    fn volume_forms() {
        let c = ctx();
        let m = volume_flag("/srv/db:/var/lib/mysql", &c).unwrap();
        assert_eq!(
            (m.kind.as_str(), m.source.as_str(), m.destination.as_str()),
            ("bind", "/srv/db", "/var/lib/mysql")
        );
        assert!(m.rw && m.create_source);
        assert_eq!(m.propagation, "rprivate");
        let m = volume_flag("db:/data:ro,nocopy", &c).unwrap();
        assert_eq!((m.kind.as_str(), m.name.as_str()), ("volume", "db"));
        assert!(!m.rw && m.no_copy && !m.anonymous);
        let m = volume_flag("/data", &c).unwrap();
        assert!(m.anonymous && m.kind == "volume" && m.destination == "/data");
        let m = volume_flag("/data:ro", &c).unwrap();
        assert!(m.anonymous && !m.rw);
        let m = volume_flag("/a:/b:rshared,Z,U", &c).unwrap();
        assert_eq!(m.propagation, "rshared");
        assert!(m.chown);
        assert_eq!(volume_flag("/a//b/./:/c/", &c).unwrap().source, "/a/b");
    }

    #[test]
    fn volume_refusals() {
        let c = ctx();
        for (bad, says) in [
            ("relative/path:/x", "invalid characters"),
            ("./x:/x", "invalid characters"),
            (":/x", "source is empty"),
            ("/a:x", "must be absolute"),
            ("vol:rel", "must be absolute"),
            ("/a:/", "can't be '/'"),
            ("/a:/b:bogus", "invalid mode"),
            ("/a:/b:ro,rw", "ro and rw"),
            ("/a:/b:nocopy", "nocopy"),
            ("v:/b:shared", "propagation"),
            ("/a:/b:c:d", "invalid volume specification"),
            ("/a/../etc:/b", "'..'"),
            ("v:/b/../c", "'..'"),
            ("/:/host", "read-write bind of the host's /"),
            ("/a:/b:O,ro", "O (an overlay)"),
            ("v:/b:O", "O applies to host directories"),
        ] {
            let e = volume_flag(bad, &c).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
            assert!(e.starts_with(&format!("-v {bad}")), "{e}");
        }
        volume_flag("/:/host:ro", &c).unwrap();
        let state = [Path::new("/var/lib/berth")];
        let c = Context { state_dirs: &state };
        let e = volume_flag("/var/lib/berth/volumes:/x:ro", &c)
            .unwrap_err()
            .to_string();
        assert!(e.contains("berth's own state"), "{e}");
    }

    #[test]
    fn mount_forms() {
        let c = ctx();
        let m = mount_flag("type=bind,src=/tmp,dst=/t,ro,bind-propagation=rslave", &c).unwrap();
        assert_eq!(
            (m.kind.as_str(), m.source.as_str(), m.destination.as_str()),
            ("bind", "/tmp", "/t")
        );
        assert!(!m.rw);
        assert_eq!(m.propagation, "rslave");
        let m = mount_flag("source=db,target=/data,volume-nocopy", &c).unwrap();
        assert!(m.kind == "volume" && m.name == "db" && m.no_copy);
        let m = mount_flag("type=volume,destination=/data", &c).unwrap();
        assert!(m.anonymous);
        let m = mount_flag("type=bind,src=/tmp,dst=/t,bind-recursive=disabled", &c).unwrap();
        assert!(m.non_recursive);
        let m = mount_flag("type=bind,src=/tmp,dst=/t,bind-nonrecursive", &c).unwrap();
        assert!(m.non_recursive);
        assert!(mount_flag("type=bind,src=/tmp,dst=/t,bind-recursive=maybe", &c).is_err());
        let m = mount_flag(
            "src=rr,dst=/r,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-label=a=b",
            &c,
        )
        .unwrap();
        assert_eq!(m.volume_options["type"], "tmpfs");
        assert_eq!(m.volume_labels["a"], "b");
        assert!(mount_flag("src=rr,dst=/r,volume-opt=type=ext4", &c).is_err());
        let m = mount_flag("type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770", &c).unwrap();
        assert!(m.options.contains(&"size=1048576".to_string()));
        assert!(m.options.contains(&"mode=1770".to_string()));
        let m = mount_flag("type=bind,\"source=/tmp\",target=/t,readonly=false", &c).unwrap();
        assert!(m.rw);
    }

    #[test]
    fn mount_refusals() {
        let c = ctx();
        for (bad, says) in [
            (
                "type=bind,source=/nonexistent/berth-x,target=/x",
                "does not exist",
            ),
            ("type=bind,target=/x", "Source must not be empty"),
            ("type=bind,source=rel,target=/x", "absolute"),
            ("type=volume,source=db", "target is required"),
            (
                "type=volume,source=db,target=/x,colour=red",
                "unexpected key",
            ),
            ("type=nfs,target=/x", "invalid type"),
            (
                "type=volume,target=/x,bind-propagation=shared",
                "bind-* options",
            ),
            (
                "type=bind,source=/tmp,target=/x,volume-nocopy",
                "volume-* options",
            ),
            ("type=tmpfs,source=x,target=/x", "Source must be empty"),
            ("type=tmpfs,target=/x,tmpfs-mode=999", "tmpfs-mode"),
            ("type=volume,source=a/b,target=/x", "invalid characters"),
            ("type=volume,target=x", "must be absolute"),
            ("type=volume,target=/x,ro=maybe", "invalid value"),
        ] {
            let e = mount_flag(bad, &c).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn tmpfs_and_volumes_from() {
        let m = tmpfs_flag("/run:size=64m,mode=1777,exec").unwrap();
        assert_eq!(m.destination, "/run");
        assert!(m.options.contains(&"size=67108864".to_string()));
        assert!(m
            .options
            .ends_with(&["mode=1777".to_string(), "exec".to_string()]));
        assert!(tmpfs_flag("run").is_err());
        assert!(tmpfs_flag("/run:size=lots").is_err());
        assert!(tmpfs_flag("/run:colour=red").is_err());
        assert_eq!(
            volumes_from_flag("db:ro").unwrap(),
            ("db".into(), Some(false))
        );
        assert_eq!(volumes_from_flag("db").unwrap(), ("db".into(), None));
        assert!(volumes_from_flag("db:rx").is_err());
    }

    #[test]
    fn duplicates_and_image_volumes() {
        let c = ctx();
        let e = all(
            &["/a:/x".into()],
            &["type=tmpfs,dst=/x".into()],
            &[],
            vec![],
            &[],
            &c,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("Duplicate mount point: /x"), "{e}");
        let m = all(
            &["db:/data".into()],
            &[],
            &[],
            vec![],
            &["/data".into(), "/logs".into()],
            &c,
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].name, "db");
        assert!(m[1].anonymous && m[1].destination == "/logs");
    }
}
