//! The store keys images by fully qualified names (`docker.io/library/busybox:latest`).
//! Names typed by users go through the reference parser of the registry client before
//! they reach the store; the names found *inside* archives (docker-archive `RepoTags`,
//! OCI `ref.name` annotations) are qualified here with Docker's normalisation so that a
//! loaded `busybox:latest` and a pulled `busybox` are one name.

/// Docker's normalisation of `name[:tag]`: a first component with a dot, a colon or equal
/// to `localhost` is a registry, otherwise `docker.io` (and `library/` for one component);
/// no tag means `latest`. None for anything that is not a valid tagged name (digests are
/// not names).
pub(crate) fn qualify(name: &str) -> Option<String> {
    if name.is_empty() || name.len() > 255 || name.contains('@') {
        return None;
    }
    let (repo, tag) = match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (name, "latest"),
    };
    if !valid_tag(tag) {
        return None;
    }
    let (domain, path) = match repo.split_once('/') {
        Some((d, rest)) if d.contains('.') || d.contains(':') || d == "localhost" => (d, rest),
        _ => ("docker.io", repo),
    };
    if !valid_domain(domain) || path.is_empty() || !path.split('/').all(valid_component) {
        return None;
    }
    let path = if domain == "docker.io" && !path.contains('/') {
        format!("library/{path}")
    } else {
        path.to_string()
    };
    Some(format!("{domain}/{path}:{tag}"))
}

/// `repository` and `tag` of a qualified `repo:tag`.
pub(crate) fn split_tag(name: &str) -> (&str, &str) {
    match name.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (name, ""),
    }
}

/// The repository as Docker shows it: Docker Hub's library images by their short name,
/// other Docker Hub repositories without the registry.
pub(crate) fn familiar(repo: &str) -> &str {
    match repo.strip_prefix("docker.io/") {
        Some(r) => r
            .strip_prefix("library/")
            .filter(|r| !r.contains('/'))
            .unwrap_or(r),
        None => repo,
    }
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

fn valid_domain(d: &str) -> bool {
    let host = match d.rsplit_once(':') {
        Some((h, port)) => {
            if port.is_empty() || !port.bytes().all(|c| c.is_ascii_digit()) {
                return false;
            }
            h
        }
        None => d,
    };
    !host.is_empty()
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or runs of `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_lowercase() && !b[0].is_ascii_digit() {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if i == b.len()
            || !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-'))
        {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_normalisation() {
        let q = |s| qualify(s).unwrap_or_else(|| "INVALID".into());
        assert_eq!(q("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(q("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(q("user/app"), "docker.io/user/app:latest");
        assert_eq!(q("localhost/busybox:latest"), "localhost/busybox:latest");
        assert_eq!(q("host:5000/ns/app:v1"), "host:5000/ns/app:v1");
        assert_eq!(q("quay.io/a/b"), "quay.io/a/b:latest");
        for bad in [
            "Redis",
            "a:b:c",
            "",
            "x@sha256:00",
            "a//b",
            "a/-b",
            "a:-t",
            "host:port/x",
        ] {
            assert_eq!(q(bad), "INVALID", "{bad}");
        }
    }

    #[test]
    fn familiar_names() {
        assert_eq!(familiar("docker.io/library/busybox"), "busybox");
        assert_eq!(familiar("docker.io/user/app"), "user/app");
        assert_eq!(familiar("localhost/busybox"), "localhost/busybox");
        assert_eq!(split_tag("host:5000/a:v1"), ("host:5000/a", "v1"));
    }
}
