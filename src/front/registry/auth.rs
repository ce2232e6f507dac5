//! Registry credentials in containers' `auth.json` (what `podman login` writes), with
//! Docker's `~/.docker/config.json` read too. The format is Docker's:
//! `{"auths": {"HOST[/NAMESPACE]": {"auth": base64("user:password")}}}`.
//! Passwords never reach a message or a `Debug` output.

use std::fmt;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use super::base64;

/// A password (or token) that cannot be printed by accident.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    pub(crate) fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) username: String,
    pub(crate) password: Secret,
}

impl Credentials {
    pub(crate) fn new(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.to_string(),
            password: Secret::new(password),
        }
    }

    /// The value of an `Authorization: Basic` header (and of auth.json's `auth`).
    pub(crate) fn basic(&self) -> Secret {
        Secret(base64::encode(
            format!("{}:{}", self.username, self.password.0).as_bytes(),
        ))
    }
}

/// The files credentials are read from, in order; the first is the one `login` writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthFiles {
    pub(crate) primary: PathBuf,
    /// Also read (never written): the user's `~/.config/containers/auth.json` and Docker's
    /// `config.json`.
    pub(crate) others: Vec<PathBuf>,
}

impl AuthFiles {
    /// containers/image's order: `REGISTRY_AUTH_FILE` alone when set; else
    /// `$XDG_RUNTIME_DIR/containers/auth.json` (`/run/containers/UID/auth.json` without
    /// it), then `${XDG_CONFIG_HOME:-~/.config}/containers/auth.json`, then
    /// `${DOCKER_CONFIG:-~/.docker}/config.json`.
    pub(crate) fn from_env() -> AuthFiles {
        let var = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        if let Some(f) = var("REGISTRY_AUTH_FILE") {
            return AuthFiles {
                primary: f,
                others: vec![],
            };
        }
        // The user's own uid, in berth's user namespace too.
        let uid = crate::front::userns::host_euid();
        let primary = match var("XDG_RUNTIME_DIR") {
            Some(d) => d.join("containers/auth.json"),
            None => PathBuf::from(format!("/run/containers/{uid}/auth.json")),
        };
        let home = var("HOME");
        let mut others = Vec::new();
        if let Some(cfg) =
            var("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config")))
        {
            others.push(cfg.join("containers/auth.json"));
        }
        if let Some(d) = var("DOCKER_CONFIG").or_else(|| home.as_ref().map(|h| h.join(".docker"))) {
            others.push(d.join("config.json"));
        }
        AuthFiles { primary, others }
    }

    /// The credentials for `repository` (`host[:port]/path`): the most specific key of the
    /// first file that has one (`host/ns/repo`, `host/ns`, then `host`).
    pub(crate) fn lookup(&self, repository: &str) -> anyhow::Result<Option<Credentials>> {
        for file in std::iter::once(&self.primary).chain(&self.others) {
            let Some(doc) = read_json(file)? else {
                continue;
            };
            let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else {
                continue;
            };
            let mut best: Option<(usize, &serde_json::Value, &String)> = None;
            for (key, entry) in auths {
                let k = normalize_key(key);
                let matches = repository == k
                    || repository
                        .strip_prefix(k.as_str())
                        .is_some_and(|rest| rest.starts_with('/'));
                if matches && best.is_none_or(|(len, _, _)| k.len() > len) {
                    best = Some((k.len(), entry, key));
                }
            }
            if let Some((_, entry, key)) = best {
                return decode_entry(entry)
                    .with_context(|| format!("credentials for {key:?} in {}", file.display()));
            }
        }
        Ok(None)
    }

    /// Stores `creds` under `key` (`host[:port][/namespace]`) in the primary file: mode
    /// 0600, directories created 0700, written atomically, other keys kept.
    pub(crate) fn store(&self, key: &str, creds: &Credentials) -> anyhow::Result<()> {
        let key = normalize_key(key);
        let mut doc = read_json(&self.primary)?.unwrap_or_else(|| serde_json::json!({}));
        let obj = doc
            .as_object_mut()
            .with_context(|| format!("{}: not a JSON object", self.primary.display()))?;
        let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
        if !auths.is_object() {
            *auths = serde_json::json!({});
        }
        let map = auths.as_object_mut().expect("auths is an object");
        // a Docker-style key for the same registry would shadow or duplicate the new one
        map.retain(|k, _| normalize_key(k) != key);
        map.insert(key, serde_json::json!({ "auth": creds.basic().expose() }));
        write_private(&self.primary, &doc)
    }

    /// Removes `key`'s credentials from the primary file. Ok(false): there were none there.
    pub(crate) fn remove(&self, key: &str) -> anyhow::Result<bool> {
        let key = normalize_key(key);
        let Some(mut doc) = read_json(&self.primary)? else {
            return Ok(false);
        };
        let Some(map) = doc.get_mut("auths").and_then(|a| a.as_object_mut()) else {
            return Ok(false);
        };
        let before = map.len();
        map.retain(|k, _| normalize_key(k) != key);
        if map.len() == before {
            return Ok(false);
        }
        write_private(&self.primary, &doc)?;
        Ok(true)
    }

    /// `logout --all`: every credential of the primary file.
    pub(crate) fn remove_all(&self) -> anyhow::Result<()> {
        let Some(mut doc) = read_json(&self.primary)? else {
            return Ok(());
        };
        if let Some(obj) = doc.as_object_mut() {
            obj.insert("auths".into(), serde_json::json!({}));
        }
        write_private(&self.primary, &doc)
    }

    /// Which other (read-only) file holds credentials for `key`, for logout's message when
    /// they came from `docker login`.
    pub(crate) fn found_elsewhere(&self, key: &str) -> Option<PathBuf> {
        let key = normalize_key(key);
        self.others.iter().find_map(|f| {
            let doc = read_json(f).ok()??;
            let auths = doc.get("auths")?.as_object()?;
            auths
                .keys()
                .any(|k| normalize_key(k) == key)
                .then(|| f.clone())
        })
    }
}

/// `https://index.docker.io/v1/` -> `docker.io`, `http://host:5000/` -> `host:5000`: the
/// keys Docker writes name registries by URL.
pub(crate) fn normalize_key(key: &str) -> String {
    let mut k = key.trim();
    let had_scheme = match k.split_once("://") {
        Some((_, rest)) => {
            k = rest;
            true
        }
        None => false,
    };
    k = k.trim_end_matches('/');
    if had_scheme {
        k = k.split('/').next().unwrap_or(k);
    }
    match k {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        _ => match k.split_once('/') {
            Some(("index.docker.io" | "registry-1.docker.io", rest)) => format!("docker.io/{rest}"),
            _ => k.to_string(),
        },
    }
}

fn decode_entry(entry: &serde_json::Value) -> anyhow::Result<Option<Credentials>> {
    let auth = entry.get("auth").and_then(|a| a.as_str()).unwrap_or("");
    if auth.is_empty() {
        // Docker's own entries can be username/password fields (rare) or empty with a
        // credential helper holding the secret.
        let user = entry.get("username").and_then(|a| a.as_str());
        let pass = entry.get("password").and_then(|a| a.as_str());
        return Ok(match (user, pass) {
            (Some(u), Some(p)) if !u.is_empty() => Some(Credentials::new(u, p)),
            _ => None,
        });
    }
    let raw = base64::decode(auth).context("the \"auth\" value is not base64")?;
    let text = String::from_utf8(raw).context("the \"auth\" value is not UTF-8")?;
    let Some((user, pass)) = text.split_once(':') else {
        bail!("the \"auth\" value is not base64 of \"username:password\"");
    };
    Ok(Some(Credentials::new(user, pass)))
}

fn read_json(p: &Path) -> anyhow::Result<Option<serde_json::Value>> {
    match fs::read(p) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Some(serde_json::json!({}))),
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{}: invalid JSON: {e}", p.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

/// temp (0600, created new) + fsync + rename; the directories made 0700.
fn write_private(path: &Path, doc: &serde_json::Value) -> anyhow::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let mut data = crate::sys::json::to_vec_pretty(doc)?;
    data.push(b'\n');
    let result = (|| {
        let _ = fs::remove_file(&tmp);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("berth-auth-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn keys_normalise_as_containers_image() {
        for (k, want) in [
            ("https://index.docker.io/v1/", "docker.io"),
            ("index.docker.io", "docker.io"),
            ("registry-1.docker.io", "docker.io"),
            ("http://localhost:5000/v2/", "localhost:5000"),
            ("quay.io/ns/repo", "quay.io/ns/repo"),
            ("quay.io/", "quay.io"),
            ("docker.io", "docker.io"),
        ] {
            assert_eq!(normalize_key(k), want, "{k}");
        }
    }

    #[test]
    fn login_lookup_logout_round_trip() {
        let d = tmpdir("rt");
        let files = AuthFiles {
            primary: d.join("run/containers/auth.json"),
            others: vec![d.join("docker/config.json")],
        };
        assert_eq!(files.lookup("127.0.0.1:5001/test/busybox").unwrap(), None);
        let c = Credentials::new("testuser", "test:pass word");
        files.store("127.0.0.1:5001", &c).unwrap();
        let meta = fs::metadata(&files.primary).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let dmeta = fs::metadata(files.primary.parent().unwrap()).unwrap();
        assert_eq!(dmeta.permissions().mode() & 0o777, 0o700);
        let text = fs::read_to_string(&files.primary).unwrap();
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc["auths"]["127.0.0.1:5001"]["auth"],
            base64::encode(b"testuser:test:pass word")
        );
        assert!(
            !text.contains("pass word"),
            "stored encoded, as podman does"
        );
        assert_eq!(
            files.lookup("127.0.0.1:5001/test/busybox").unwrap(),
            Some(c.clone())
        );
        assert_eq!(files.lookup("127.0.0.1:5001").unwrap(), Some(c.clone()));
        assert_eq!(files.lookup("127.0.0.1:5000/test").unwrap(), None);
        assert_eq!(files.lookup("127.0.0.1:50011/test").unwrap(), None);
        // a namespaced key wins for its repositories
        let ns = Credentials::new("other", "x");
        files.store("127.0.0.1:5001/team", &ns).unwrap();
        assert_eq!(files.lookup("127.0.0.1:5001/team/app").unwrap(), Some(ns));
        assert_eq!(
            files.lookup("127.0.0.1:5001/teamx/app").unwrap(),
            Some(c.clone())
        );
        // other keys of the file survive
        let mut doc: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&files.primary).unwrap()).unwrap();
        doc["credHelpers"] = serde_json::json!({"gcr.io": "gcloud"});
        fs::write(&files.primary, doc.to_string()).unwrap();
        files.store("quay.io", &c).unwrap();
        let doc: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&files.primary).unwrap()).unwrap();
        assert_eq!(doc["credHelpers"]["gcr.io"], "gcloud");
        assert!(files.remove("127.0.0.1:5001").unwrap());
        assert!(!files.remove("127.0.0.1:5001").unwrap());
        assert_eq!(files.lookup("127.0.0.1:5001/x").unwrap(), None);
        files.remove_all().unwrap();
        assert_eq!(files.lookup("quay.io/x").unwrap(), None);
        assert_eq!(
            fs::read_dir(files.primary.parent().unwrap())
                .unwrap()
                .count(),
            1,
            "no temp file left"
        );
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn reads_docker_config_after_containers_auth() {
        let d = tmpdir("docker");
        fs::create_dir_all(d.join("docker")).unwrap();
        let files = AuthFiles {
            primary: d.join("auth.json"),
            others: vec![d.join("docker/config.json")],
        };
        fs::write(
            &files.others[0],
            format!(
                r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{}"}},
                   "helper.io": {{}}}}, "credsStore": "desktop"}}"#,
                base64::encode(b"docker:hub")
            ),
        )
        .unwrap();
        assert_eq!(
            files.lookup("docker.io/library/redis").unwrap(),
            Some(Credentials::new("docker", "hub"))
        );
        assert_eq!(files.lookup("helper.io/x").unwrap(), None);
        assert_eq!(
            files.found_elsewhere("docker.io"),
            Some(files.others[0].clone())
        );
        // the primary file wins
        files
            .store("docker.io", &Credentials::new("mine", "p"))
            .unwrap();
        assert_eq!(
            files
                .lookup("docker.io/library/redis")
                .unwrap()
                .unwrap()
                .username,
            "mine"
        );
        // a broken file is an error naming it, never the secret
        fs::write(&files.primary, r#"{"auths": {"x.io": {"auth": "!!!"}}}"#).unwrap();
        let e = format!("{:#}", files.lookup("x.io/a").unwrap_err());
        assert!(e.contains("auth.json") && e.contains("x.io"), "{e}");
        fs::write(&files.primary, "{").unwrap();
        assert!(format!("{:#}", files.lookup("x.io/a").unwrap_err()).contains("invalid JSON"));
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Credentials::new("u", "hunter2");
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(c.basic().expose(), "dTpodW50ZXIy");
    }
}
