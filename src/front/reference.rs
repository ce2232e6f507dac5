//! Image references as Docker parses and normalises them (distribution/reference's grammar):
//! `redis` is `docker.io/library/redis:latest`, `host:5000/ns/app:tag@sha256:...` is fully
//! qualified, and Docker Hub's library images are shown by their short ("familiar") name.
//! Short names are also looked up as Podman does (see [`short_name_candidates`]).
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] path-component ['/' path-component]*
//! domain           := host [':' port]      host := domain-name | '[' ipv6 ']'
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! path-component   := /[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" hex      (only sha256 is accepted, as 64 lowercase hex)
//! ```

use std::fmt;

use super::digest::{Digest, DigestError};

pub(crate) const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
pub(crate) const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A fully qualified image reference: a domain, a repository path, and a tag or a digest or
/// both (`name:tag@digest`: the digest is what is pulled, the tag is kept for display).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Why a reference was refused, in Docker's words.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ReferenceError {
    #[error("invalid reference format")]
    Format,
    #[error("invalid reference format: repository name must be lowercase")]
    Uppercase,
    #[error(
        "invalid reference format: repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters"
    )]
    TooLong,
    #[error("invalid reference format: {0}")]
    Digest(DigestError),
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
}

impl Reference {
    /// Docker's `ParseNormalizedNamed` followed by `TagNameOnly`: the domain defaults to
    /// docker.io (where single names get `library/`), the tag to `latest` unless a digest
    /// is given.
    pub(crate) fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Self::parse_named(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// As [`Reference::parse`] but without the default tag: `redis` stays tagless (a
    /// repository, as `images redis` or `rmi` filters take it).
    pub(crate) fn parse_named(s: &str) -> Result<Reference, ReferenceError> {
        if is_hex64(s) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return Err(ReferenceError::Uppercase);
        }
        parse_parts(&domain, &remainder)
    }

    /// A reference from parts already known (e.g. a registries.conf rewrite); the same
    /// validation as parsing.
    pub(crate) fn from_parts(
        domain: &str,
        path: &str,
        tag: Option<&str>,
        digest: Option<&Digest>,
    ) -> Result<Reference, ReferenceError> {
        let mut s = format!("{domain}/{path}");
        if let Some(t) = tag {
            s.push(':');
            s.push_str(t);
        }
        let mut r = parse_parts(domain, &s[domain.len() + 1..])?;
        r.digest = digest.cloned();
        Ok(r)
    }

    pub(crate) fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry (`library/redis`).
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    pub(crate) fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub(crate) fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `domain/path`: the repository, without tag or digest.
    pub(crate) fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// What to ask the registry's manifest endpoint for: the digest when there is one
    /// (Docker pulls `name:tag@digest` by digest), else the tag.
    pub(crate) fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_string(),
        }
    }

    pub(crate) fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::Format);
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        })
    }

    pub(crate) fn with_digest(&self, digest: &Digest) -> Reference {
        Reference {
            digest: Some(digest.clone()),
            ..self.clone()
        }
    }

    /// The same repository with neither tag nor digest.
    pub(crate) fn name_only(&self) -> Reference {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// Docker's familiar form: `redis:latest`, `user/app:1`, `quay.io/x/y:2`.
    pub(crate) fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_suffix(&mut s);
        s
    }

    /// The familiar repository alone, as `images` shows it in REPOSITORY: `redis`,
    /// `user/app`, `localhost:5000/x`.
    pub(crate) fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.repository()
        }
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.repository();
        self.push_suffix(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// Whether `s` names no registry (Docker would send it to docker.io; Podman searches the
/// unqualified-search registries): its first `/`-component has no `.` or `:`, is not
/// `localhost`, and is lowercase; or it has no `/` at all.
pub(crate) fn is_short_name(s: &str) -> bool {
    explicit_domain(s).is_none()
}

/// Where Podman looks locally for a short name, in order: `localhost/NAME`, then for each
/// unqualified-search registry `REG/NAME` (docker.io normalising to `docker.io/library/NAME`)
/// and `REG/library/NAME` for single-component names, then `docker.io/library/NAME` (`docker.io/NAME`
/// for `user/app`). Duplicates are dropped; a fully qualified `s` yields itself alone.
pub(crate) fn short_name_candidates(
    s: &str,
    search_registries: &[String],
) -> Result<Vec<Reference>, ReferenceError> {
    let first = Reference::parse(s)?;
    if !is_short_name(s) {
        return Ok(vec![first]);
    }
    let single = !s.split(['@', ':']).next().unwrap_or_default().contains('/');
    let mut prefixes = vec!["localhost".to_string()];
    for r in search_registries {
        prefixes.push(r.clone());
        if single {
            prefixes.push(format!("{r}/library"));
        }
    }
    prefixes.push(if single {
        format!("{DEFAULT_DOMAIN}/library")
    } else {
        DEFAULT_DOMAIN.to_string()
    });
    let mut out: Vec<Reference> = Vec::new();
    for p in prefixes {
        // A search registry that is not a valid domain is skipped, as Podman's resolution
        // of such an entry fails for that candidate only.
        if let Ok(r) = Reference::parse(&format!("{p}/{s}")) {
            if !out.contains(&r) {
                out.push(r);
            }
        }
    }
    Ok(out)
}

/// Docker's `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    let (domain, mut remainder) = match explicit_domain(name) {
        Some((d, rest)) => (d.to_string(), rest.to_string()),
        None => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let domain = if domain == LEGACY_DEFAULT_DOMAIN {
        DEFAULT_DOMAIN.to_string()
    } else {
        domain
    };
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_PREFIX}{remainder}");
    }
    (domain, remainder)
}

fn explicit_domain(name: &str) -> Option<(&str, &str)> {
    let (first, rest) = name.split_once('/')?;
    let is_domain =
        first.contains(['.', ':']) || first == "localhost" || first.to_lowercase() != first;
    is_domain.then_some((first, rest))
}

/// Distribution's `Parse` of `domain/remainder`, after normalisation.
fn parse_parts(domain: &str, remainder: &str) -> Result<Reference, ReferenceError> {
    // The name and tag cannot contain '@': the first one starts the digest.
    let (name_tag, digest) = match remainder.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (remainder, None),
    };
    let (path, tag) = match name_tag.rfind(':') {
        Some(i) if !name_tag[i..].contains('/') => (&name_tag[..i], Some(&name_tag[i + 1..])),
        _ => (name_tag, None),
    };
    let path_ok = !path.is_empty() && path.split('/').all(valid_path_component);
    let tag_ok = tag.is_none_or(valid_tag);
    let digest_ok = digest.is_none_or(digest_grammar);
    if !(valid_domain(domain) || valid_path_component(domain)) || !path_ok || !tag_ok || !digest_ok
    {
        if path.to_lowercase() != path
            && path.to_lowercase().split('/').all(valid_path_component)
            && tag_ok
            && digest_ok
        {
            return Err(ReferenceError::Uppercase);
        }
        return Err(ReferenceError::Format);
    }
    if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::TooLong);
    }
    let digest = match digest {
        Some(d) => Some(Digest::parse(d).map_err(ReferenceError::Digest)?),
        None => None,
    };
    Ok(Reference {
        domain: domain.to_string(),
        path: path.to_string(),
        tag: tag.map(str::to_string),
        digest,
    })
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
pub(crate) fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !alnum_lower(b[0]) || !alnum_lower(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum_lower(b[i]) {
            i += 1;
            continue;
        }
        // a separator run between two alphanumerics
        let start = i;
        while i < b.len() && !alnum_lower(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
pub(crate) fn valid_tag(t: &str) -> bool {
    let w = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && w(b[0])
        && b[1..].iter().all(|&x| w(x) || x == b'.' || x == b'-')
}

fn valid_domain_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

/// `host[:port]`, host a dotted name or a bracketed IPv6 address.
pub(crate) fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.is_empty() || !v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("x", Some(port)),
                None => return false,
            },
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    host.split('.').all(valid_domain_component)
        && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The digest's grammar (algorithm ":" 32+ hex); what it names is checked by `Digest`.
fn digest_grammar(d: &str) -> bool {
    let Some((algo, hex)) = d.split_once(':') else {
        return false;
    };
    let algo_ok = algo.split(['+', '.', '-', '_']).all(|c| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    algo_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalises_as_docker() {
        let d = D;
        let table: &[(&str, &str, &str)] = &[
            // input, full, familiar
            ("redis", "docker.io/library/redis:latest", "redis:latest"),
            ("redis:7", "docker.io/library/redis:7", "redis:7"),
            ("user/app", "docker.io/user/app:latest", "user/app:latest"),
            (
                "docker.io/redis",
                "docker.io/library/redis:latest",
                "redis:latest",
            ),
            (
                "index.docker.io/library/redis:6",
                "docker.io/library/redis:6",
                "redis:6",
            ),
            (
                "docker.io/library/a/b",
                "docker.io/library/a/b:latest",
                "library/a/b:latest",
            ),
            (
                "host:5000/ns/app:tag",
                "host:5000/ns/app:tag",
                "host:5000/ns/app:tag",
            ),
            (
                "quay.io/podman/stable",
                "quay.io/podman/stable:latest",
                "quay.io/podman/stable:latest",
            ),
            ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
            (
                "localhost:5000/x",
                "localhost:5000/x:latest",
                "localhost:5000/x:latest",
            ),
            // a single "localhost" is an image name, not a domain
            (
                "localhost",
                "docker.io/library/localhost:latest",
                "localhost:latest",
            ),
            (
                "127.0.0.1:5000/test/busybox",
                "127.0.0.1:5000/test/busybox:latest",
                "127.0.0.1:5000/test/busybox:latest",
            ),
            ("[::1]:5000/a", "[::1]:5000/a:latest", "[::1]:5000/a:latest"),
            // an uppercase domain is a domain
            (
                "Example.com/a",
                "Example.com/a:latest",
                "Example.com/a:latest",
            ),
            (
                "a__b/c-----d.e_f",
                "docker.io/a__b/c-----d.e_f:latest",
                "a__b/c-----d.e_f:latest",
            ),
            (
                "x:Tag_1.0-rc",
                "docker.io/library/x:Tag_1.0-rc",
                "x:Tag_1.0-rc",
            ),
        ];
        for (input, full, familiar) in table {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *full, "{input}");
            assert_eq!(r.familiar(), *familiar, "{input}");
            assert_eq!(Reference::parse(full).unwrap(), r, "{full} reparses");
        }
        let r = Reference::parse(&format!("busybox@{d}")).unwrap();
        assert_eq!(r.to_string(), format!("docker.io/library/busybox@{d}"));
        assert_eq!(r.tag(), None);
        assert_eq!(r.manifest_ref(), d);
        let r = Reference::parse(&format!("host:5000/a/b:1.2@{d}")).unwrap();
        assert_eq!(
            (r.domain(), r.path(), r.tag()),
            ("host:5000", "a/b", Some("1.2"))
        );
        assert_eq!(r.digest().unwrap().to_string(), d);
        assert_eq!(r.manifest_ref(), d, "the digest wins over the tag");
        assert_eq!(r.familiar_name(), "host:5000/a/b");
        assert_eq!(Reference::parse("redis").unwrap().familiar_name(), "redis");
        assert_eq!(Reference::parse_named("redis").unwrap().tag(), None);
        assert_eq!(
            Reference::parse("redis").unwrap().repository(),
            "docker.io/library/redis"
        );
    }

    #[test]
    fn refuses_as_docker() {
        use ReferenceError::*;
        let long = format!("a/{}", "b".repeat(250));
        let table: &[(&str, ReferenceError)] = &[
            ("Redis", Uppercase),
            ("user/Redis:1", Uppercase),
            ("redis@sha256:ABC", Format),
            ("a:b:c", Format),
            ("@sha256:abc", Format),
            ("redis@sha256:abc", Format),
            ("", Format),
            (":tag", Format),
            ("redis:", Format),
            ("redis:-x", Format),
            ("-redis", Format),
            ("redis-", Format),
            ("a..b", Format),
            ("a/./b", Format),
            ("a//b", Format),
            ("a b", Format),
            ("host:port/x", Format),
            ("ex_ample.com:5000/x", Format),
            ("a/b/", Format),
            (&long, TooLong),
        ];
        for (input, want) in table {
            assert_eq!(
                Reference::parse(input).err().as_ref(),
                Some(want),
                "{input:?}"
            );
        }
        let tag129 = format!("x:{}", "t".repeat(129));
        assert_eq!(Reference::parse(&tag129), Err(Format));
        assert!(Reference::parse(&format!("x:{}", "t".repeat(128))).is_ok());
        // 255 is the limit of the whole name, domain included
        let name = format!("docker.io/a/{}", "b".repeat(255 - 12));
        assert!(Reference::parse(&name).is_ok());
        assert_eq!(Reference::parse(&format!("{name}b")), Err(TooLong));
        let hex = &D[7..];
        assert!(matches!(Reference::parse(hex), Err(HexName(_))));
        assert!(matches!(
            Reference::parse(&format!("x@sha512:{hex}")),
            Err(Digest(DigestError::Algorithm(_)))
        ));
        // 40 hex digits: the grammar accepts it, sha256 does not
        assert!(matches!(
            Reference::parse(&format!("x@sha256:{}", &hex[..40])),
            Err(Digest(DigestError::Invalid(_)))
        ));
        assert_eq!(
            Reference::parse("Redis").unwrap_err().to_string(),
            "invalid reference format: repository name must be lowercase"
        );
        assert_eq!(
            Reference::parse("a:b:c").unwrap_err().to_string(),
            "invalid reference format"
        );
        assert_eq!(
            Reference::parse(&long).unwrap_err().to_string(),
            "invalid reference format: repository name must not be more than 255 characters"
        );
    }

    #[test]
    fn short_names_as_podman() {
        assert!(is_short_name("redis"));
        assert!(is_short_name("user/app:1"));
        assert!(!is_short_name("localhost/app"));
        assert!(!is_short_name("quay.io/app"));
        assert!(!is_short_name("host:5000/app"));
        let strs = |v: Vec<Reference>| v.iter().map(|r| r.to_string()).collect::<Vec<_>>();
        let regs = vec!["quay.io".to_string(), "docker.io".to_string()];
        assert_eq!(
            strs(short_name_candidates("redis:7", &regs).unwrap()),
            [
                "localhost/redis:7",
                "quay.io/redis:7",
                "quay.io/library/redis:7",
                "docker.io/library/redis:7",
            ]
        );
        assert_eq!(
            strs(short_name_candidates("user/app", &regs).unwrap()),
            [
                "localhost/user/app:latest",
                "quay.io/user/app:latest",
                "docker.io/user/app:latest",
            ]
        );
        assert_eq!(
            strs(short_name_candidates("redis", &[]).unwrap()),
            ["localhost/redis:latest", "docker.io/library/redis:latest"]
        );
        assert_eq!(
            strs(short_name_candidates("quay.io/a/b:1", &regs).unwrap()),
            ["quay.io/a/b:1"]
        );
        assert_eq!(
            short_name_candidates("Redis", &regs),
            Err(ReferenceError::Uppercase)
        );
    }

    #[test]
    fn grammar_pieces() {
        for ok in ["a", "a.b", "a_b", "a__b", "a-b", "a---b", "0"] {
            assert!(valid_path_component(ok), "{ok}");
        }
        for bad in ["", "A", "a_", "_a", "a___b", "a.-b", "a..b", "a._b"] {
            assert!(!valid_path_component(bad), "{bad}");
        }
        for ok in ["a", "a.b", "a-b.c:5000", "[::1]", "[fe80::1]:80", "A.B"] {
            assert!(valid_domain(ok), "{ok}");
        }
        for bad in ["", "a.", ".a", "-a", "a:", "a:x", "[::1", "[]", "a_b"] {
            assert!(!valid_domain(bad), "{bad}");
        }
        let r = Reference::parse("redis").unwrap();
        assert_eq!(
            r.with_tag("7").unwrap().to_string(),
            "docker.io/library/redis:7"
        );
        assert!(r.with_tag("-7").is_err());
        assert_eq!(
            Reference::from_parts("h:1", "a/b", Some("t"), None)
                .unwrap()
                .to_string(),
            "h:1/a/b:t"
        );
        assert!(Reference::from_parts("h:1", "a/B", None, None).is_err());
    }
}
