//! containers' `registries.conf` (version 2, and version 1's three tables), read as
//! podman, buildah and skopeo read it: the main file, then `registries.conf.d/*.conf`
//! drop-ins in lexical order, each overriding what the previous set. Keys berth does not
//! use (`short-name-mode`, `credential-helpers`, ...) are accepted and ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::Deserialize;

use crate::front::reference::{self, Reference, DEFAULT_DOMAIN};

/// Which files make up the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfPaths {
    pub(crate) file: PathBuf,
    /// Drop-in directories, read in this order (a later file of the same name replaces an
    /// earlier one, as containers/image does for the user's directory over the system's).
    pub(crate) dropin_dirs: Vec<PathBuf>,
}

impl ConfPaths {
    /// `CONTAINERS_REGISTRIES_CONF` alone when set; else the user's
    /// `~/.config/containers/registries.conf` (and its drop-ins) when rootless and it
    /// exists; else `/etc/containers/registries.conf` with `/etc/containers/registries.conf.d`
    /// (and, rootless, the user's drop-in directory after it).
    pub(crate) fn from_env() -> ConfPaths {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let rootless = crate::front::userns::rootless();
        Self::resolve(
            std::env::var_os("CONTAINERS_REGISTRIES_CONF").map(PathBuf::from),
            home.as_deref(),
            rootless,
            Path::new("/etc/containers"),
        )
    }

    fn resolve(env: Option<PathBuf>, home: Option<&Path>, rootless: bool, etc: &Path) -> ConfPaths {
        if let Some(file) = env.filter(|p| !p.as_os_str().is_empty()) {
            return ConfPaths {
                file,
                dropin_dirs: vec![],
            };
        }
        let user = home
            .filter(|_| rootless)
            .map(|h| h.join(".config/containers"));
        if let Some(u) = &user {
            let f = u.join("registries.conf");
            if f.exists() {
                return ConfPaths {
                    file: f,
                    dropin_dirs: vec![u.join("registries.conf.d")],
                };
            }
        }
        let mut dropin_dirs = vec![etc.join("registries.conf.d")];
        dropin_dirs.extend(user.map(|u| u.join("registries.conf.d")));
        ConfPaths {
            file: etc.join("registries.conf"),
            dropin_dirs,
        }
    }
}

/// One `[[registry]]` table, after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RegistryConf {
    /// What references it applies to: `example.com`, `example.com/ns/repo`, `*.example.com`.
    pub(crate) prefix: String,
    /// Where they are really fetched from (replaces the prefix); empty for a wildcard.
    pub(crate) location: String,
    pub(crate) insecure: bool,
    pub(crate) blocked: bool,
    pub(crate) mirror_by_digest_only: bool,
    pub(crate) mirrors: Vec<MirrorConf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MirrorConf {
    pub(crate) location: String,
    pub(crate) insecure: bool,
    pub(crate) pull_from: PullFrom,
}

/// A mirror's `pull-from-mirror`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PullFrom {
    All,
    DigestOnly,
    TagOnly,
}

/// The merged configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Registries {
    /// `unqualified-search-registries`, in order; empty means docker.io, as Docker.
    pub(crate) search: Vec<String>,
    pub(crate) registries: Vec<RegistryConf>,
    /// `[aliases]`: short name (no tag) -> fully qualified repository.
    pub(crate) aliases: BTreeMap<String, String>,
}

/// One place to try a pull from: a mirror or the registry itself, the reference rewritten
/// to its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub(crate) reference: Reference,
    pub(crate) insecure: bool,
    pub(crate) mirror: bool,
}

// The file as written. Unknown keys are ignored (serde's default), as containers/image
// ignores them.
#[derive(Deserialize, Default)]
struct RawFile {
    #[serde(rename = "unqualified-search-registries")]
    search: Option<Vec<String>>,
    #[serde(default)]
    registry: Vec<RawRegistry>,
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    registries: Option<RawV1>,
}

#[derive(Deserialize, Default, Clone)]
struct RawRegistry {
    prefix: Option<String>,
    location: Option<String>,
    insecure: Option<bool>,
    blocked: Option<bool>,
    #[serde(rename = "mirror-by-digest-only")]
    mirror_by_digest_only: Option<bool>,
    #[serde(default)]
    mirror: Vec<RawMirror>,
}

#[derive(Deserialize, Default, Clone)]
struct RawMirror {
    location: String,
    insecure: Option<bool>,
    #[serde(rename = "pull-from-mirror")]
    pull_from_mirror: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawV1 {
    search: Option<RawV1List>,
    insecure: Option<RawV1List>,
    block: Option<RawV1List>,
}

#[derive(Deserialize, Default)]
struct RawV1List {
    #[serde(default)]
    registries: Vec<String>,
}

impl Registries {
    /// Reads the main file (a missing one is an empty configuration) and the drop-ins.
    pub(crate) fn load(paths: &ConfPaths) -> anyhow::Result<Registries> {
        let mut conf = Registries::default();
        let mut files = Vec::new();
        if let Some(text) = read_optional(&paths.file)? {
            files.push((paths.file.clone(), text));
        }
        let mut dropins: BTreeMap<std::ffi::OsString, PathBuf> = BTreeMap::new();
        for dir in &paths.dropin_dirs {
            let entries = match std::fs::read_dir(dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
            };
            for e in entries {
                let e = e.with_context(|| format!("reading {}", dir.display()))?;
                let name = e.file_name();
                if Path::new(&name).extension().is_some_and(|x| x == "conf") {
                    dropins.insert(name, e.path());
                }
            }
        }
        for p in dropins.into_values() {
            if let Some(text) = read_optional(&p)? {
                files.push((p, text));
            }
        }
        for (path, text) in files {
            conf.merge_str(&text)
                .with_context(|| format!("loading registries configuration {}", path.display()))?;
        }
        Ok(conf)
    }

    /// One file's contents over what is already configured (containers/image's rules: a
    /// `[[registry]]` replaces the one with the same prefix, a set search list replaces the
    /// list, aliases replace per key).
    pub(crate) fn merge_str(&mut self, text: &str) -> anyhow::Result<()> {
        let raw: RawFile = toml::from_str(text).map_err(|e| toml_error(text, &e))?;
        let mut registries = Vec::new();
        let mut search = raw.search;
        if let Some(v1) = raw.registries {
            if search.is_some() || !raw.registry.is_empty() {
                bail!("mixing sysregistry v1/v2 is not supported");
            }
            search = v1.search.map(|l| l.registries);
            let mut by_loc: BTreeMap<String, RegistryConf> = BTreeMap::new();
            let blank = |loc: &str| RegistryConf {
                prefix: loc.to_string(),
                location: loc.to_string(),
                insecure: false,
                blocked: false,
                mirror_by_digest_only: false,
                mirrors: vec![],
            };
            for loc in v1.insecure.map(|l| l.registries).unwrap_or_default() {
                let loc = parse_location(&loc)?;
                by_loc
                    .entry(loc.clone())
                    .or_insert_with(|| blank(&loc))
                    .insecure = true;
            }
            for loc in v1.block.map(|l| l.registries).unwrap_or_default() {
                let loc = parse_location(&loc)?;
                by_loc
                    .entry(loc.clone())
                    .or_insert_with(|| blank(&loc))
                    .blocked = true;
            }
            registries.extend(by_loc.into_values());
        }
        for r in raw.registry {
            registries.push(validate_registry(r)?);
        }
        if let Some(s) = search {
            for r in &s {
                if r.contains('/') || !reference::valid_domain(r) {
                    bail!("invalid unqualified-search-registries entry {r:?}: expected a registry host[:port]");
                }
            }
            self.search = s;
        }
        for r in registries {
            match self.registries.iter_mut().find(|x| x.prefix == r.prefix) {
                Some(x) => *x = r,
                None => self.registries.push(r),
            }
        }
        for (k, v) in raw.aliases {
            validate_alias(&k, &v)?;
            self.aliases.insert(k, v);
        }
        Ok(())
    }

    /// The most specific `[[registry]]` whose prefix matches (containers/image's rule: a
    /// prefix matches at a `/`, `:` or `@` boundary; `*.example.com` matches subdomains).
    pub(crate) fn find(&self, r: &Reference) -> Option<&RegistryConf> {
        let s = r.to_string();
        let mut best: Option<&RegistryConf> = None;
        for reg in &self.registries {
            let matches = match reg.prefix.strip_prefix("*.") {
                Some(suffix) => {
                    let host = r.domain().split(':').next().unwrap_or_default();
                    host.ends_with(&format!(".{suffix}"))
                }
                None => s
                    .strip_prefix(&reg.prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', ':', '@'])),
            };
            if matches && best.is_none_or(|b| reg.prefix.len() > b.prefix.len()) {
                best = Some(reg);
            }
        }
        best
    }

    /// Where to pull `r` from, in order: its mirrors (those that apply to a pull by tag or
    /// by digest), then the registry itself at its `location`. A blocked registry is an
    /// error naming it.
    pub(crate) fn endpoints(&self, r: &Reference) -> anyhow::Result<Vec<Endpoint>> {
        let Some(reg) = self.find(r) else {
            return Ok(vec![Endpoint {
                reference: r.clone(),
                insecure: false,
                mirror: false,
            }]);
        };
        if reg.blocked {
            bail!(
                "registry {} is blocked in registries.conf (prefix {:?})",
                r.domain(),
                reg.prefix
            );
        }
        let by_digest = r.digest().is_some();
        let mut out = Vec::new();
        for m in &reg.mirrors {
            let applies = match m.pull_from {
                PullFrom::All => !reg.mirror_by_digest_only || by_digest,
                PullFrom::DigestOnly => by_digest,
                PullFrom::TagOnly => !by_digest,
            };
            if applies {
                out.push(Endpoint {
                    reference: rewrite(r, &reg.prefix, &m.location)?,
                    insecure: m.insecure,
                    mirror: true,
                });
            }
        }
        let reference = if reg.location.is_empty() {
            r.clone()
        } else {
            rewrite(r, &reg.prefix, &reg.location)?
        };
        out.push(Endpoint {
            reference,
            insecure: reg.insecure,
            mirror: false,
        });
        Ok(out)
    }

    /// Whether a registry host is configured `insecure` (for `login` and `push`, which have
    /// no mirrors).
    pub(crate) fn insecure(&self, r: &Reference) -> bool {
        self.find(r).is_some_and(|reg| reg.insecure)
    }

    /// The references a `pull NAME` tries, in order. A fully qualified name is itself; a
    /// short name is its alias if `[aliases]` has one, else each unqualified-search registry
    /// (`REG/NAME`), else docker.io as Docker would.
    pub(crate) fn pull_candidates(&self, input: &str) -> anyhow::Result<Vec<Reference>> {
        let parsed = Reference::parse(input)?;
        if !reference::is_short_name(input) {
            return Ok(vec![parsed]);
        }
        let name = input.split(['@', ':']).next().unwrap_or_default();
        let suffix = &input[name.len()..];
        if let Some(target) = self.aliases.get(name) {
            return Ok(vec![Reference::parse(&format!("{target}{suffix}"))
                .with_context(|| {
                    format!("alias {name:?} = {target:?} in registries.conf")
                })?]);
        }
        if self.search.is_empty() {
            return Ok(vec![parsed]);
        }
        let mut out: Vec<Reference> = Vec::new();
        for reg in &self.search {
            let r = Reference::parse(&format!("{reg}/{input}"))?;
            if !out.contains(&r) {
                out.push(r);
            }
        }
        Ok(out)
    }
}

fn read_optional(p: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(p) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

/// toml's own message is several lines with a source excerpt; berth's errors are one line.
fn toml_error(text: &str, e: &toml::de::Error) -> anyhow::Error {
    let msg = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            anyhow::anyhow!("line {line}: {msg}")
        }
        None => anyhow::anyhow!("{msg}"),
    }
}

/// containers/image's `parseLocation`: no scheme, no trailing slash.
fn parse_location(s: &str) -> anyhow::Result<String> {
    let t = s.trim().trim_end_matches('/');
    if t.contains("://") {
        bail!("invalid location {s:?}: URI schemes are not supported");
    }
    Ok(t.to_string())
}

fn validate_registry(r: RawRegistry) -> anyhow::Result<RegistryConf> {
    let location = parse_location(r.location.as_deref().unwrap_or(""))?;
    let prefix = match r.prefix.as_deref() {
        Some(p) if !p.is_empty() => parse_location(p)?,
        _ => location.clone(),
    };
    if prefix.is_empty() {
        bail!("[[registry]] with neither prefix nor location");
    }
    if let Some(suffix) = prefix.strip_prefix("*.") {
        if suffix.contains(['*', '/', ':', '@']) || suffix.is_empty() {
            bail!("invalid prefix {prefix:?}: a wildcard prefix is *.DOMAIN");
        }
        if !location.is_empty() {
            bail!("invalid [[registry]] {prefix:?}: a wildcarded prefix has no location");
        }
    } else if prefix.contains('*') {
        bail!("invalid prefix {prefix:?}: a wildcard is only allowed as *.DOMAIN");
    }
    let mut mirrors = Vec::new();
    for m in r.mirror {
        let pull_from = match m.pull_from_mirror.as_deref() {
            None | Some("") | Some("all") => PullFrom::All,
            Some("digest-only") => PullFrom::DigestOnly,
            Some("tag-only") => PullFrom::TagOnly,
            Some(o) => bail!(
                "unsupported pull-from-mirror {o:?} for mirror {:?}: expected all, digest-only or tag-only",
                m.location
            ),
        };
        if pull_from != PullFrom::All && r.mirror_by_digest_only == Some(true) {
            bail!("cannot set mirror-by-digest-only and pull-from-mirror for {prefix:?} together");
        }
        let location = parse_location(&m.location)?;
        if location.is_empty() {
            bail!("a [[registry.mirror]] of {prefix:?} has no location");
        }
        mirrors.push(MirrorConf {
            location,
            insecure: m.insecure.unwrap_or(false),
            pull_from,
        });
    }
    Ok(RegistryConf {
        prefix,
        location,
        insecure: r.insecure.unwrap_or(false),
        blocked: r.blocked.unwrap_or(false),
        mirror_by_digest_only: r.mirror_by_digest_only.unwrap_or(false),
        mirrors,
    })
}

fn validate_alias(name: &str, target: &str) -> anyhow::Result<()> {
    let bad = |why: &str| anyhow::anyhow!("invalid alias {name:?} = {target:?}: {why}");
    if !reference::is_short_name(name) || name.contains([':', '@']) {
        return Err(bad("the alias must be a short name without tag or digest"));
    }
    if reference::is_short_name(target) {
        return Err(bad("the target must name its registry"));
    }
    let r = Reference::parse_named(target).map_err(|e| bad(&e.to_string()))?;
    if r.digest().is_some() {
        return Err(bad("the target cannot have a digest"));
    }
    Ok(())
}

/// Replaces the matched `prefix` of `r` by `location` (`example.com/foo` ->
/// `mirror.local/foo-mirror`).
fn rewrite(r: &Reference, prefix: &str, location: &str) -> anyhow::Result<Reference> {
    let s = r.to_string();
    let rest = s.strip_prefix(prefix).unwrap_or(&s);
    let new = format!("{location}{rest}");
    // Location strings name a host, never docker.io's implicit library/ (a mirror
    // `mirror.local` of `docker.io` serves `library/redis` as `mirror.local/library/redis`).
    let out = Reference::parse_named(&new)
        .with_context(|| format!("rewriting {s} to location {location:?}"))?;
    if out.domain() == DEFAULT_DOMAIN && !new.starts_with(DEFAULT_DOMAIN) {
        bail!("rewriting {s} to location {location:?}: the location names no registry");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> Registries {
        let mut c = Registries::default();
        c.merge_str(text).unwrap();
        c
    }

    fn strs(v: &[Reference]) -> Vec<String> {
        v.iter().map(|r| r.to_string()).collect()
    }

    fn eps(c: &Registries, r: &str) -> Vec<(String, bool, bool)> {
        c.endpoints(&Reference::parse(r).unwrap())
            .unwrap()
            .into_iter()
            .map(|e| (e.reference.to_string(), e.insecure, e.mirror))
            .collect()
    }

    const FEDORA: &str = r#"
# as Fedora ships it, with keys berth does not use
unqualified-search-registries = ["registry.fedoraproject.org", "registry.access.redhat.com", "docker.io", "quay.io"]
short-name-mode = "enforcing"
credential-helpers = ["containers-auth.json"]

[[registry]]
prefix = "example.com/foo"
insecure = false
blocked = false
location = "internal-registry-for-example.com/bar"

[[registry.mirror]]
location = "example-mirror-0.local/mirror-for-foo"

[[registry.mirror]]
location = "example-mirror-1.local:5000/mirrors/foo"
insecure = true

[[registry]]
location = "registry.insecure.local:5000"
insecure = true

[[registry]]
prefix = "*.blocked.example"
blocked = true

[aliases]
"fedora" = "registry.fedoraproject.org/fedora"
"podman/stable" = "quay.io/podman/stable"
"#;

    #[test]
    fn reads_v2_with_mirrors_prefixes_and_unknown_keys() {
        let c = conf(FEDORA);
        assert_eq!(c.search.len(), 4);
        assert_eq!(
            eps(&c, "example.com/foo/image:latest"),
            [
                (
                    "example-mirror-0.local/mirror-for-foo/image:latest".into(),
                    false,
                    true
                ),
                (
                    "example-mirror-1.local:5000/mirrors/foo/image:latest".into(),
                    true,
                    true
                ),
                (
                    "internal-registry-for-example.com/bar/image:latest".into(),
                    false,
                    false
                ),
            ]
        );
        // a prefix matches at a boundary only
        assert_eq!(
            eps(&c, "example.com/foobar:1"),
            [("example.com/foobar:1".into(), false, false)]
        );
        assert_eq!(
            eps(&c, "example.com/foo:1")[2].0,
            "internal-registry-for-example.com/bar:1"
        );
        assert_eq!(
            eps(&c, "registry.insecure.local:5000/a/b"),
            [(
                "registry.insecure.local:5000/a/b:latest".into(),
                true,
                false
            )]
        );
        assert!(c.insecure(&Reference::parse("registry.insecure.local:5000/x").unwrap()));
        assert!(!c.insecure(&Reference::parse("registry.insecure.local/x").unwrap()));
        let e = c
            .endpoints(&Reference::parse("a.blocked.example/x").unwrap())
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "registry a.blocked.example is blocked in registries.conf (prefix \"*.blocked.example\")"
        );
        // the wildcard needs a subdomain
        assert!(c
            .endpoints(&Reference::parse("blocked.example/x").unwrap())
            .is_ok());
    }

    #[test]
    fn pull_candidates_search_aliases_and_docker_default() {
        let c = conf(FEDORA);
        assert_eq!(
            strs(&c.pull_candidates("fedora:39").unwrap()),
            ["registry.fedoraproject.org/fedora:39"]
        );
        assert_eq!(
            strs(&c.pull_candidates("podman/stable").unwrap()),
            ["quay.io/podman/stable:latest"]
        );
        assert_eq!(
            strs(&c.pull_candidates("redis").unwrap()),
            [
                "registry.fedoraproject.org/redis:latest",
                "registry.access.redhat.com/redis:latest",
                "docker.io/library/redis:latest",
                "quay.io/redis:latest",
            ]
        );
        assert_eq!(
            strs(&c.pull_candidates("quay.io/a/b@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855").unwrap()),
            ["quay.io/a/b@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]
        );
        let none = Registries::default();
        assert_eq!(
            strs(&none.pull_candidates("redis").unwrap()),
            ["docker.io/library/redis:latest"]
        );
        assert_eq!(
            strs(&none.pull_candidates("user/app:2").unwrap()),
            ["docker.io/user/app:2"]
        );
        assert!(none.pull_candidates("a:b:c").is_err());
    }

    #[test]
    fn mirror_digest_only_and_pull_from_mirror() {
        let c = conf(
            r#"
[[registry]]
location = "docker.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "mirror.local:5000"
"#,
        );
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(eps(&c, "redis").len(), 1, "by tag: the mirror is skipped");
        assert_eq!(
            eps(&c, &format!("redis@{d}"))[0].0,
            format!("mirror.local:5000/library/redis@{d}")
        );
        let c = conf(
            r#"
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "tags.local"
pull-from-mirror = "tag-only"
[[registry.mirror]]
location = "digests.local"
pull-from-mirror = "digest-only"
"#,
        );
        assert_eq!(eps(&c, "redis")[0].0, "tags.local/library/redis:latest");
        assert_eq!(eps(&c, "redis").len(), 2);
        assert_eq!(
            eps(&c, &format!("redis@{d}"))[0].0,
            format!("digests.local/library/redis@{d}")
        );
    }

    #[test]
    fn dropins_override_in_order() {
        let mut c = conf(FEDORA);
        c.merge_str(
            r#"
unqualified-search-registries = ["localhost:5000"]
[[registry]]
prefix = "example.com/foo"
location = "other.local/foo"
[aliases]
"fedora" = "quay.io/fedora/fedora"
"#,
        )
        .unwrap();
        assert_eq!(c.search, ["localhost:5000"]);
        assert_eq!(
            eps(&c, "example.com/foo/x")[0].0,
            "other.local/foo/x:latest"
        );
        assert_eq!(c.registries.len(), 3, "same prefix replaced, not added");
        assert_eq!(c.aliases["fedora"], "quay.io/fedora/fedora");
        assert_eq!(c.aliases["podman/stable"], "quay.io/podman/stable");
        // a drop-in without the search key keeps the list
        c.merge_str("[aliases]\n\"x\" = \"a.b/x\"\n").unwrap();
        assert_eq!(c.search, ["localhost:5000"]);
    }

    #[test]
    fn reads_v1() {
        let c = conf(
            r#"
[registries.search]
registries = ['quay.io', "docker.io"]
[registries.insecure]
registries = ["my.insecure:5000"]
[registries.block]
registries = ["bad.example"]
"#,
        );
        assert_eq!(c.search, ["quay.io", "docker.io"]);
        assert!(c.insecure(&Reference::parse("my.insecure:5000/a").unwrap()));
        assert!(c
            .endpoints(&Reference::parse("bad.example/a").unwrap())
            .is_err());
    }

    #[test]
    fn refuses_bad_files_in_one_line() {
        let table: &[(&str, &str)] = &[
            ("unqualified-search-registries = \"docker.io\"", "line 1: invalid type"),
            ("[[registry]]\nlocation = \"https://x.io\"", "URI schemes are not supported"),
            ("[[registry]]\ninsecure = true", "neither prefix nor location"),
            ("[[registry]]\nprefix = \"a.*.io\"\nlocation=\"x\"", "wildcard"),
            ("[[registry]]\nprefix = \"*.a.io\"\nlocation=\"x\"", "no location"),
            ("[aliases]\n\"a:1\" = \"x.io/a\"", "short name"),
            ("[aliases]\n\"a\" = \"a\"", "must name its registry"),
            ("unqualified-search-registries = [\"a/b\"]", "host[:port]"),
            ("[registries.search]\nregistries=[]\n[[registry]]\nlocation=\"x\"", "mixing"),
            ("this is = not toml =", "line 1"),
            (
                "[[registry]]\nlocation=\"x.io\"\n[[registry.mirror]]\nlocation=\"m\"\npull-from-mirror=\"sometimes\"",
                "unsupported pull-from-mirror",
            ),
        ];
        for (text, want) in table {
            let mut c = Registries::default();
            let e = format!("{:#}", c.merge_str(text).unwrap_err());
            assert!(e.contains(want), "{text:?}: {e}");
            assert!(!e.contains('\n'), "{text:?}: {e}");
        }
    }

    #[test]
    fn files_and_dropins_from_disk() {
        let dir = std::env::temp_dir().join(format!("berth-regconf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let etc = dir.join("etc");
        std::fs::create_dir_all(etc.join("registries.conf.d")).unwrap();
        std::fs::write(
            etc.join("registries.conf"),
            "unqualified-search-registries = [\"quay.io\"]\n",
        )
        .unwrap();
        std::fs::write(
            etc.join("registries.conf.d/20-b.conf"),
            "unqualified-search-registries = [\"b.io\"]\n",
        )
        .unwrap();
        std::fs::write(
            etc.join("registries.conf.d/10-a.conf"),
            "unqualified-search-registries = [\"a.io\"]\n",
        )
        .unwrap();
        std::fs::write(etc.join("registries.conf.d/ignored.txt"), "not toml [").unwrap();
        let home = dir.join("home");
        let p = ConfPaths::resolve(None, Some(&home), true, &etc);
        assert_eq!(
            p.dropin_dirs,
            [
                etc.join("registries.conf.d"),
                home.join(".config/containers/registries.conf.d")
            ]
        );
        assert_eq!(
            Registries::load(&p).unwrap().search,
            ["b.io"],
            "lexical order"
        );
        // the user's file replaces the system's, drop-ins included
        std::fs::create_dir_all(home.join(".config/containers")).unwrap();
        std::fs::write(
            home.join(".config/containers/registries.conf"),
            "unqualified-search-registries = [\"user.io\"]\n",
        )
        .unwrap();
        let p = ConfPaths::resolve(None, Some(&home), true, &etc);
        assert_eq!(Registries::load(&p).unwrap().search, ["user.io"]);
        // root ignores the user's file
        let p = ConfPaths::resolve(None, Some(&home), false, &etc);
        assert_eq!(p.file, etc.join("registries.conf"));
        assert_eq!(p.dropin_dirs, [etc.join("registries.conf.d")]);
        // the environment's file is alone
        let env = dir.join("env.conf");
        std::fs::write(&env, "unqualified-search-registries = [\"env.io\"]\n").unwrap();
        let p = ConfPaths::resolve(Some(env.clone()), Some(&home), true, &etc);
        assert_eq!(p.dropin_dirs, Vec::<PathBuf>::new());
        assert_eq!(Registries::load(&p).unwrap().search, ["env.io"]);
        // a missing file is an empty configuration; a broken one names itself
        let p = ConfPaths::resolve(Some(dir.join("absent.conf")), None, false, &etc);
        assert_eq!(Registries::load(&p).unwrap(), Registries::default());
        std::fs::write(&env, "[[registry]\n").unwrap();
        let e = format!("{:#}", Registries::load(&p_env(&env)).unwrap_err());
        assert!(
            e.starts_with(&format!(
                "loading registries configuration {}: line 1",
                env.display()
            )),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn p_env(f: &Path) -> ConfPaths {
        ConfPaths {
            file: f.to_path_buf(),
            dropin_dirs: vec![],
        }
    }
}
