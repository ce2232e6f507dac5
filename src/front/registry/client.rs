//! A blocking client of one registry (the OCI distribution API): the first contact decides
//! HTTPS or (where allowed) plain HTTP and learns the auth challenge; every request then
//! carries Basic credentials or a Bearer token for its scope, is retried with backoff on
//! 429/5xx and broken connections, and maps the registry's errors to one line naming the
//! reference and the host. One `Registry` is shared by the threads of a pull.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) mod tags;

use super::auth::{AuthFiles, Credentials, Secret};
use super::http::{io_msg, is_loopback_host, Body, Connector, HttpError, Response, Url};
use super::manifest::{self, Manifest, ACCEPT, MAX_MANIFEST};
use crate::front::digest::{Digest, Hashing};

/// How to reach registries: TLS, credentials, retries. One per command.
#[derive(Debug, Clone)]
pub(crate) struct ClientOptions {
    /// `--tls-verify`: None follows the rules (HTTPS verified; plain HTTP also allowed for
    /// loopback registries and those registries.conf marks insecure); Some(false) allows
    /// unverified TLS and plain HTTP; Some(true) demands verified HTTPS even on loopback.
    pub(crate) tls_verify: Option<bool>,
    /// certs.d roots (`ROOT/HOST:PORT/*.crt`), most specific first.
    pub(crate) cert_dirs: Vec<PathBuf>,
    /// `--cert-dir DIR`: DIR's own `*.crt`/`*.cert`/`*.key` instead of certs.d.
    pub(crate) cert_dir: Option<PathBuf>,
    /// Where stored credentials are read; None: none are.
    pub(crate) auth_files: Option<AuthFiles>,
    /// `--creds`/`-u -p`: used instead of the stored ones.
    pub(crate) credentials: Option<Credentials>,
    /// Further attempts after a 429/5xx or a broken connection.
    pub(crate) retries: u32,
    /// The first backoff; doubled each retry (a `Retry-After` is honoured up to a minute).
    pub(crate) backoff: Duration,
    /// A connection that moves no byte for this long fails (and is retried).
    pub(crate) io_timeout: Duration,
}

impl ClientOptions {
    /// The defaults podman users have: certs.d and auth.json where containers/image looks.
    pub(crate) fn from_env() -> ClientOptions {
        ClientOptions {
            tls_verify: None,
            cert_dirs: super::certs::cert_dirs_from_env(),
            cert_dir: None,
            auth_files: Some(AuthFiles::from_env()),
            credentials: None,
            retries: 4,
            backoff: Duration::from_millis(500),
            io_timeout: Duration::from_secs(60),
        }
    }
}

/// What went wrong, in one line that names the reference or the registry.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RegistryError {
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    #[error("repository not found: {0}")]
    NameUnknown(String),
    #[error("blob unknown: {digest} in {repository}")]
    BlobUnknown { digest: Digest, repository: String },
    #[error("{what}: authentication required (run `berth login {host}`)")]
    AuthRequired { what: String, host: String },
    /// Refused with an anonymous token: Docker Hub answers so for a repository that does
    /// not exist too.
    #[error("{what}: pull access denied: the repository does not exist or requires authentication (run `berth login {host}`)")]
    AccessDenied { what: String, host: String },
    #[error(
        "authentication to {host} failed: wrong username or password (run `berth login {host}`)"
    )]
    AuthFailed { host: String },
    #[error("{what}: access denied: {msg}")]
    Denied { what: String, msg: String },
    #[error("{what}: too many requests to {host} (rate limited): {msg}")]
    TooManyRequests {
        what: String,
        host: String,
        msg: String,
    },
    #[error("{what}: registry {host} answered {status}: {msg}")]
    Status {
        what: String,
        host: String,
        status: u16,
        msg: String,
    },
    #[error("{what}: manifest over {MAX_MANIFEST} bytes refused")]
    ManifestTooLarge { what: String },
    #[error("{what}: digest mismatch: expected {expected}, got {got}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        got: Digest,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {got}")]
    SizeMismatch {
        what: String,
        expected: u64,
        got: u64,
    },
    #[error("{what}: size mismatch: more than the {expected} bytes expected")]
    TooLong { what: String, expected: u64 },
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{0}")]
    Other(String),
}

impl RegistryError {
    /// The image or tag is not there (as opposed to a network or auth failure): a pull
    /// of a short name goes on to the next candidate registry.
    pub(crate) fn not_found(&self) -> bool {
        matches!(
            self,
            RegistryError::ManifestUnknown(_) | RegistryError::NameUnknown(_)
        )
    }
}

type Result<T> = std::result::Result<T, RegistryError>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    /// The registry asked for nothing (or has not been contacted).
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

struct Session {
    base: Url,
    challenge: Challenge,
}

/// One registry host (as a reference's domain names it: `docker.io`, `127.0.0.1:5000`).
pub(crate) struct Registry {
    host: String,
    conn: Connector,
    verify: bool,
    http_allowed: bool,
    creds: Option<Credentials>,
    retries: u32,
    backoff: Duration,
    session: Mutex<Option<Session>>,
    tokens: Mutex<HashMap<String, (Secret, Instant)>>,
}

/// How a push's cross-repository mount went.
pub(crate) enum Mount {
    /// The registry linked the blob from the other repository: nothing to upload.
    Mounted,
    /// It did not; an upload session it opened instead (its Location).
    Upload(Url),
}

/// A manifest as fetched and verified.
#[derive(Debug, Clone)]
pub(crate) struct FetchedManifest {
    pub(crate) bytes: Vec<u8>,
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    pub(crate) manifest: Manifest,
}

/// A request body that may have to be sent again (after a 401 or a 503).
#[derive(Clone, Copy)]
enum Payload<'a> {
    Empty,
    Bytes(&'a [u8]),
}

impl Registry {
    /// `insecure`: what registries.conf says of this host.
    pub(crate) fn new(
        host: &str,
        insecure: bool,
        opts: &ClientOptions,
    ) -> anyhow::Result<Registry> {
        let bare = host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') {
                h
            } else {
                host
            }
        });
        let loopback = is_loopback_host(bare);
        let (verify, http_allowed) = match opts.tls_verify {
            Some(false) => (false, true),
            Some(true) => (true, false),
            None if insecure => (false, true),
            None => (true, loopback),
        };
        let creds = match &opts.credentials {
            Some(c) => Some(c.clone()),
            None => match &opts.auth_files {
                Some(f) => f.lookup(host)?,
                None => None,
            },
        };
        Ok(Registry {
            host: host.to_string(),
            conn: Connector::new(
                opts.cert_dirs.clone(),
                opts.cert_dir.clone(),
                opts.io_timeout,
            ),
            verify,
            http_allowed,
            creds,
            retries: opts.retries,
            backoff: opts.backoff,
            session: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// As [`Registry::new`], with the credentials stored for one repository
    /// (auth.json can hold `host/namespace` keys).
    pub(crate) fn for_repository(
        host: &str,
        repository_path: &str,
        insecure: bool,
        opts: &ClientOptions,
    ) -> anyhow::Result<Registry> {
        let mut r = Registry::new(host, insecure, opts)?;
        if opts.credentials.is_none() {
            if let Some(f) = &opts.auth_files {
                r.creds = f.lookup(&format!("{host}/{repository_path}"))?;
            }
        }
        Ok(r)
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    /// Docker Hub's API is not at docker.io itself.
    fn api_domain(&self) -> &str {
        if self.host == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.host
        }
    }

    fn base(&self) -> Result<Url> {
        if let Some(s) = self
            .session
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            return Ok(s.base.clone());
        }
        self.ping()?;
        Ok(self.lock_session().as_ref().expect("pinged").base.clone())
    }

    fn lock_session(&self) -> std::sync::MutexGuard<'_, Option<Session>> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `GET /v2/`: decides the scheme and learns the challenge. Plain HTTP is tried only
    /// where allowed, and (when certificates are verified) only if the server did not
    /// speak TLS at all: a certificate error on a loopback registry stays an error.
    fn ping(&self) -> Result<()> {
        let https = Url::for_host(true, self.api_domain(), "/v2/")?;
        let first = self.ping_at(&https);
        let (base, resp) = match first {
            Ok(r) => (https, r),
            Err(e) => {
                let fall_back = self.http_allowed
                    && match &e {
                        RegistryError::Http(HttpError::Tls { not_tls, .. }) => {
                            *not_tls || !self.verify
                        }
                        RegistryError::Http(HttpError::Connect { .. }) => true,
                        _ => false,
                    };
                if !fall_back {
                    return Err(e);
                }
                let http = Url::for_host(false, self.api_domain(), "/v2/")?;
                match self.ping_at(&http) {
                    Ok(r) => (http, r),
                    // Both failed: the plain-HTTP error unless the first one was about
                    // TLS itself (then it says more).
                    Err(e2) => {
                        return Err(match e {
                            RegistryError::Http(HttpError::Tls { not_tls: false, .. }) => e,
                            _ => e2,
                        })
                    }
                }
            }
        };
        let challenge = if resp.status == 401 {
            parse_challenge(&resp)
        } else {
            Challenge::None
        };
        resp.discard();
        let mut base = base;
        base.path = String::new();
        *self.lock_session() = Some(Session { base, challenge });
        Ok(())
    }

    fn ping_at(&self, url: &Url) -> Result<Response> {
        let mut attempt = 0;
        loop {
            match self.conn.send("GET", url, &[], Body::Empty, self.verify) {
                Err(e) if e.transient() && attempt < self.retries => {}
                Err(e) => return Err(e.into()),
                Ok(r) if retryable_status(r.status) && attempt < self.retries => {
                    let wait = retry_after(&r);
                    r.discard();
                    self.sleep(attempt, wait);
                    attempt += 1;
                    continue;
                }
                Ok(r) => return Ok(r),
            }
            self.sleep(attempt, None);
            attempt += 1;
        }
    }

    fn sleep(&self, attempt: u32, retry_after: Option<Duration>) {
        let backoff = self.backoff.saturating_mul(1 << attempt.min(6));
        let wait = retry_after.map_or(backoff, |r| {
            r.min(Duration::from_secs(60)).max(self.backoff)
        });
        std::thread::sleep(wait);
    }

    fn url(&self, path: &str) -> Result<Url> {
        let mut u = self.base()?;
        u.path = path.to_string();
        Ok(u)
    }

    /// The Authorization header for `scopes`, fetching a token when the registry wants one.
    fn authorization(&self, scopes: &[String], what: &str) -> Result<Option<String>> {
        let challenge = self
            .lock_session()
            .as_ref()
            .map_or(Challenge::None, |s| s.challenge.clone());
        match challenge {
            Challenge::None => Ok(None),
            Challenge::Basic => Ok(self
                .creds
                .as_ref()
                .map(|c| format!("Basic {}", c.basic().expose()))),
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let mut all: Vec<String> = scopes.to_vec();
                for s in scope.iter().flat_map(|s| s.split(' ')) {
                    if !s.is_empty() && !all.iter().any(|x| x == s) {
                        all.push(s.to_string());
                    }
                }
                let key = all.join(" ");
                if let Some((tok, until)) = self
                    .tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&key)
                {
                    if Instant::now() < *until {
                        return Ok(Some(format!("Bearer {}", tok.expose())));
                    }
                }
                let (tok, ttl) = self.fetch_token(&realm, service.as_deref(), &all, what)?;
                let until = Instant::now()
                    + ttl
                        .saturating_sub(Duration::from_secs(10))
                        .max(Duration::from_secs(5));
                let header = format!("Bearer {}", tok.expose());
                self.tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, (tok, until));
                Ok(Some(header))
            }
        }
    }

    /// The token server's answer for `scopes`: anonymous, or with Basic credentials.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        what: &str,
    ) -> Result<(Secret, Duration)> {
        let mut url = Url::parse(realm).map_err(|_| {
            RegistryError::Other(format!(
                "registry {} gave an invalid token realm {realm:?}",
                self.host
            ))
        })?;
        let registry_plain = self.lock_session().as_ref().is_some_and(|s| !s.base.https);
        if !(url.https || registry_plain || url.is_loopback()) {
            return Err(RegistryError::Other(format!(
                "registry {} sends credentials to a plain-HTTP token server {realm}: refused",
                self.host
            )));
        }
        let mut q = Vec::new();
        if let Some(s) = service {
            q.push(format!("service={}", query_escape(s)));
        }
        for s in scopes {
            q.push(format!("scope={}", query_escape(s)));
        }
        if !q.is_empty() {
            url.path
                .push(if url.path.contains('?') { '&' } else { '?' });
            url.path.push_str(&q.join("&"));
        }
        let mut headers = Vec::new();
        if let Some(c) = &self.creds {
            headers.push(("Authorization", format!("Basic {}", c.basic().expose())));
        }
        let verify = self.verify_for(&url);
        let mut attempt = 0;
        let mut resp = loop {
            match self.conn.send("GET", &url, &headers, Body::Empty, verify) {
                Err(e) if e.transient() && attempt < self.retries => {
                    self.sleep(attempt, None);
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
                Ok(r) if retryable_status(r.status) && attempt < self.retries => {
                    let wait = retry_after(&r);
                    r.discard();
                    self.sleep(attempt, wait);
                    attempt += 1;
                }
                Ok(r) => break r,
            }
        };
        match resp.status {
            200 => {}
            401 | 403 if self.creds.is_some() => {
                return Err(RegistryError::AuthFailed {
                    host: self.host.clone(),
                })
            }
            401 | 403 => {
                return Err(RegistryError::AuthRequired {
                    what: what.to_string(),
                    host: self.host.clone(),
                })
            }
            s => {
                let msg = error_message(&mut resp);
                return Err(RegistryError::Status {
                    what: format!("token for {what}"),
                    host: url.authority(),
                    status: s,
                    msg,
                });
            }
        }
        let body = resp
            .read_limited(1 << 20)
            .map_err(|e| self.io_error(&url, e))?;
        #[derive(serde::Deserialize)]
        struct TokenReply {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let reply: TokenReply = serde_json::from_slice(&body).map_err(|e| {
            RegistryError::Other(format!(
                "token server {} sent invalid JSON: {e}",
                url.authority()
            ))
        })?;
        let tok = reply
            .token
            .filter(|t| !t.is_empty())
            .or(reply.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| {
                RegistryError::Other(format!("token server {} sent no token", url.authority()))
            })?;
        // the distribution spec's default lifetime is 60 s
        let ttl = Duration::from_secs(reply.expires_in.unwrap_or(60).max(60));
        Ok((Secret::new(tok), ttl))
    }

    /// Certificates are checked with this registry's setting on its own host, always
    /// elsewhere (blob storage, token servers).
    fn verify_for(&self, url: &Url) -> bool {
        let same_host = self
            .lock_session()
            .as_ref()
            .is_some_and(|s| s.base.host.eq_ignore_ascii_case(&url.host));
        if same_host {
            self.verify
        } else {
            true
        }
    }

    fn io_error(&self, url: &Url, e: io::Error) -> RegistryError {
        RegistryError::Http(HttpError::Io {
            addr: url.authority(),
            msg: io_msg(&e),
            kind: e.kind(),
        })
    }

    /// One request to this registry with auth, 401 handling and retries. `what` names the
    /// object for errors (`127.0.0.1:5000/test/busybox:latest`).
    fn request(
        &self,
        method: &str,
        url: &Url,
        headers: &[(&str, String)],
        payload: Payload<'_>,
        scopes: &[String],
        what: &str,
    ) -> Result<Response> {
        let mut attempt = 0;
        let mut reauthed = false;
        loop {
            let mut hs: Vec<(&str, String)> = headers.to_vec();
            if let Some(a) = self.authorization(scopes, what)? {
                hs.push(("Authorization", a));
            }
            let body = match payload {
                Payload::Empty => Body::Empty,
                Payload::Bytes(b) => Body::Bytes(b),
            };
            match self.conn.send(method, url, &hs, body, self.verify) {
                Err(e) if e.transient() && attempt < self.retries => {
                    self.sleep(attempt, None);
                    attempt += 1;
                }
                Err(e) => return Err(e.into()),
                Ok(r) if r.status == 401 && !reauthed => {
                    reauthed = true;
                    let new = parse_challenge(&r);
                    r.discard();
                    self.renew_auth(new, scopes)?;
                }
                Ok(r) if retryable_status(r.status) && attempt < self.retries => {
                    let wait = retry_after(&r);
                    r.discard();
                    self.sleep(attempt, wait);
                    attempt += 1;
                }
                Ok(r) => return Ok(r),
            }
        }
    }

    /// After a 401: the challenge as it is now (a token may have expired or lacked a
    /// scope), cached tokens for these scopes dropped.
    fn renew_auth(&self, challenge: Challenge, scopes: &[String]) -> Result<()> {
        if let Some(s) = self.lock_session().as_mut() {
            if challenge != Challenge::None {
                s.challenge = challenge;
            }
        }
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|k, _| !scopes.iter().any(|s| k.split(' ').any(|x| x == s)));
        Ok(())
    }

    /// A final non-success answer as an error.
    fn status_error(&self, mut resp: Response, what: &str, kind: Kind) -> RegistryError {
        let status = resp.status;
        let (code, msg) = registry_error(&mut resp);
        match (status, code.as_str(), kind) {
            (_, "NAME_UNKNOWN", _) => RegistryError::NameUnknown(what.to_string()),
            (_, "MANIFEST_UNKNOWN", _) | (404, _, Kind::Manifest) => {
                RegistryError::ManifestUnknown(what.to_string())
            }
            (401, _, _) if self.creds.is_some() && self.challenge_is_basic() => {
                RegistryError::AuthFailed {
                    host: self.host.clone(),
                }
            }
            (401, _, Kind::Manifest) if self.creds.is_none() && self.challenge_is_bearer() => {
                RegistryError::AccessDenied {
                    what: what.to_string(),
                    host: self.host.clone(),
                }
            }
            (401, _, _) if self.creds.is_none() => RegistryError::AuthRequired {
                what: what.to_string(),
                host: self.host.clone(),
            },
            (401 | 403, _, _) => RegistryError::Denied {
                what: what.to_string(),
                msg: if msg.is_empty() {
                    "the credentials do not allow this".into()
                } else {
                    msg
                },
            },
            (429, _, _) => RegistryError::TooManyRequests {
                what: what.to_string(),
                host: self.host.clone(),
                msg,
            },
            _ => RegistryError::Status {
                what: what.to_string(),
                host: self.host.clone(),
                status,
                msg: if msg.is_empty() {
                    reason(status).to_string()
                } else {
                    msg
                },
            },
        }
    }

    fn challenge_is_bearer(&self) -> bool {
        self.lock_session()
            .as_ref()
            .is_some_and(|s| matches!(s.challenge, Challenge::Bearer { .. }))
    }

    fn challenge_is_basic(&self) -> bool {
        self.lock_session()
            .as_ref()
            .is_some_and(|s| s.challenge == Challenge::Basic)
    }

    /// Checks credentials as `login` does: the registry accepts them (or needs none).
    pub(crate) fn check_login(&self) -> Result<()> {
        self.base()?;
        let challenge = self
            .lock_session()
            .as_ref()
            .map_or(Challenge::None, |s| s.challenge.clone());
        let what = format!("login to {}", self.host);
        match challenge {
            Challenge::None => Ok(()),
            Challenge::Bearer { realm, service, .. } => {
                if self.creds.is_none() {
                    return Err(RegistryError::AuthRequired {
                        what,
                        host: self.host.clone(),
                    });
                }
                self.fetch_token(&realm, service.as_deref(), &[], &what)
                    .map(|_| ())
            }
            Challenge::Basic => {
                let url = self.url("/v2/")?;
                let r = self.request("GET", &url, &[], Payload::Empty, &[], &what)?;
                match r.status {
                    200..=299 => {
                        r.discard();
                        Ok(())
                    }
                    401 if self.creds.is_some() => Err(RegistryError::AuthFailed {
                        host: self.host.clone(),
                    }),
                    _ => Err(self.status_error(r, &what, Kind::Other)),
                }
            }
        }
    }

    /// A manifest by tag or digest, verified: against `expected` (the digest asked for,
    /// or the index entry's) and against the registry's `Docker-Content-Digest`; refused
    /// over 4 MiB, as schema 1, or with an unknown media type.
    pub(crate) fn manifest(
        &self,
        repository: &str,
        reference: &str,
        expected: Option<&Digest>,
        what: &str,
    ) -> Result<FetchedManifest> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"))?;
        let scopes = [pull_scope(repository)];
        let mut resp = self.request(
            "GET",
            &url,
            &[("Accept", ACCEPT.to_string())],
            Payload::Empty,
            &scopes,
            what,
        )?;
        if resp.status != 200 {
            return Err(self.status_error(resp, what, Kind::Manifest));
        }
        if resp
            .header("content-length")
            .and_then(|l| l.parse::<u64>().ok())
            .is_some_and(|l| l > MAX_MANIFEST)
        {
            return Err(RegistryError::ManifestTooLarge {
                what: what.to_string(),
            });
        }
        let bytes = resp.read_limited(MAX_MANIFEST).map_err(|e| {
            if e.kind() == io::ErrorKind::InvalidData {
                RegistryError::ManifestTooLarge {
                    what: what.to_string(),
                }
            } else {
                self.io_error(&url, e)
            }
        })?;
        let digest = Digest::of(&bytes);
        let claimed = resp
            .header("docker-content-digest")
            .and_then(|d| Digest::parse(d).ok());
        for want in [expected.cloned(), claimed].into_iter().flatten() {
            if want != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest {what}"),
                    expected: want,
                    got: digest,
                });
            }
        }
        let (media_type, manifest) = manifest::parse(resp.header("content-type"), &bytes)
            .map_err(|e| RegistryError::Other(format!("{what}: {e:#}")))?;
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
            manifest,
        })
    }

    /// A blob's bytes, streamed and verified: the reader fails (never a clean end) if the
    /// bytes differ from `digest` or from `size`; a connection cut mid-way is resumed with
    /// `Range` where it stopped.
    pub(crate) fn blob<'a>(
        &'a self,
        repository: &str,
        digest: &Digest,
        size: u64,
    ) -> Result<BlobReader<'a>> {
        let what = format!("blob {digest} of {}/{repository}", self.host);
        let body = self.open_blob(repository, digest, 0, &what)?;
        Ok(BlobReader {
            inner: Some(Hashing::new(Resuming {
                registry: self,
                repository: repository.to_string(),
                digest: digest.clone(),
                size,
                pos: 0,
                body: Some(body),
                resumes: 0,
                what: what.clone(),
            })),
            expected: digest.clone(),
            size,
            what,
            count: 0,
            failed: None,
        })
    }

    /// A small blob (an image config) read whole, verified.
    pub(crate) fn blob_bytes(
        &self,
        repository: &str,
        digest: &Digest,
        size: u64,
        limit: u64,
    ) -> Result<Vec<u8>> {
        if size > limit {
            return Err(RegistryError::Other(format!(
                "blob {digest} of {}/{repository}: {size} bytes is over the {limit} allowed",
                self.host
            )));
        }
        let mut r = self.blob(repository, digest, size)?;
        let mut out = Vec::with_capacity(size as usize);
        r.read_to_end(&mut out).map_err(unwrap_io)?;
        Ok(out)
    }

    /// `GET` a blob from `offset`, following redirects (without credentials to another
    /// origin).
    fn open_blob(
        &self,
        repository: &str,
        digest: &Digest,
        offset: u64,
        what: &str,
    ) -> Result<Response> {
        let mut url = self.url(&format!("/v2/{repository}/blobs/{digest}"))?;
        let origin = url.clone();
        let scopes = [pull_scope(repository)];
        let mut headers = Vec::new();
        if offset > 0 {
            headers.push(("Range", format!("bytes={offset}-")));
        }
        let mut resp = self.request("GET", &url, &headers, Payload::Empty, &scopes, what)?;
        for _ in 0..10 {
            if !matches!(resp.status, 301 | 302 | 303 | 307 | 308) {
                break;
            }
            let Some(loc) = resp.header("location").map(str::to_string) else {
                break;
            };
            resp.discard();
            let next = url.join(&loc)?;
            if !next.https && url.https && !next.is_loopback() {
                return Err(RegistryError::Other(format!(
                    "{what}: refusing a redirect from HTTPS to plain HTTP ({})",
                    next.authority()
                )));
            }
            url = next;
            resp = if url.same_origin(&origin) {
                self.request("GET", &url, &headers, Payload::Empty, &scopes, what)?
            } else {
                self.plain_get(&url, &headers)?
            };
        }
        match resp.status {
            200 | 206 => Ok(resp),
            404 => {
                let (code, _) = registry_error(&mut resp);
                if code == "NAME_UNKNOWN" {
                    return Err(RegistryError::NameUnknown(format!(
                        "{}/{repository}",
                        self.host
                    )));
                }
                Err(RegistryError::BlobUnknown {
                    digest: digest.clone(),
                    repository: format!("{}/{repository}", self.host),
                })
            }
            _ => Err(self.status_error(resp, what, Kind::Other)),
        }
    }

    /// A GET with no credentials (blob storage another origin serves), with retries.
    fn plain_get(&self, url: &Url, headers: &[(&str, String)]) -> Result<Response> {
        let verify = self.verify_for(url);
        let mut attempt = 0;
        loop {
            match self.conn.send("GET", url, headers, Body::Empty, verify) {
                Err(e) if e.transient() && attempt < self.retries => self.sleep(attempt, None),
                Err(e) => return Err(e.into()),
                Ok(r) if retryable_status(r.status) && attempt < self.retries => {
                    let wait = retry_after(&r);
                    r.discard();
                    self.sleep(attempt, wait);
                }
                Ok(r) => return Ok(r),
            }
            attempt += 1;
        }
    }

    /// Push: whether the repository already has the blob (its size if so).
    pub(crate) fn blob_exists(&self, repository: &str, digest: &Digest) -> Result<Option<u64>> {
        let url = self.url(&format!("/v2/{repository}/blobs/{digest}"))?;
        let what = format!("blob {digest} of {}/{repository}", self.host);
        let r = self.request(
            "HEAD",
            &url,
            &[],
            Payload::Empty,
            &[push_scope(repository)],
            &what,
        )?;
        match r.status {
            200 => Ok(r
                .header("content-length")
                .and_then(|l| l.parse().ok())
                .or(Some(0))),
            // storage behind a redirect has it
            307 | 302 => Ok(Some(0)),
            404 => Ok(None),
            _ => Err(self.status_error(r, &what, Kind::Other)),
        }
    }

    /// Push: asks the registry to link `digest` from repository `from` (same registry).
    pub(crate) fn mount_blob(
        &self,
        repository: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<Mount> {
        let url = self.url(&format!(
            "/v2/{repository}/blobs/uploads/?mount={}&from={}",
            query_escape(&digest.to_string()),
            query_escape(from)
        ))?;
        let what = format!(
            "mounting blob {digest} from {from} into {}/{repository}",
            self.host
        );
        let scopes = [push_scope(repository), pull_scope(from)];
        let r = self.request("POST", &url, &[], Payload::Empty, &scopes, &what)?;
        match r.status {
            201 => {
                r.discard();
                Ok(Mount::Mounted)
            }
            202 => {
                let loc = self.location(&r, &url, &what)?;
                r.discard();
                Ok(Mount::Upload(loc))
            }
            _ => Err(self.status_error(r, &what, Kind::Other)),
        }
    }

    fn location(&self, r: &Response, base: &Url, what: &str) -> Result<Url> {
        let loc = r.header("location").ok_or_else(|| {
            RegistryError::Other(format!("{what}: the registry gave no upload location"))
        })?;
        let u = base.join(loc)?;
        if !u.same_origin(base) {
            return Err(RegistryError::Other(format!(
                "{what}: upload location on another host ({}) refused",
                u.authority()
            )));
        }
        Ok(u)
    }

    /// Push: opens an upload session.
    pub(crate) fn start_upload(&self, repository: &str) -> Result<Url> {
        let url = self.url(&format!("/v2/{repository}/blobs/uploads/"))?;
        let what = format!("upload to {}/{repository}", self.host);
        let r = self.request(
            "POST",
            &url,
            &[],
            Payload::Empty,
            &[push_scope(repository)],
            &what,
        )?;
        if r.status != 202 {
            return Err(self.status_error(r, &what, Kind::Other));
        }
        let loc = self.location(&r, &url, &what)?;
        r.discard();
        Ok(loc)
    }

    /// Push: a blob in one PUT (`session` from [`Registry::start_upload`] or a refused
    /// mount), streamed from `data` (`size` bytes, hashed on the way: a source that does
    /// not match `digest` fails here, as the registry would refuse it).
    pub(crate) fn upload_blob(
        &self,
        repository: &str,
        session: Url,
        digest: &Digest,
        size: u64,
        data: &mut dyn Read,
    ) -> Result<()> {
        let what = format!("uploading blob {digest} to {}/{repository}", self.host);
        let url = with_query(&session, "digest", &digest.to_string());
        let mut hashing = Hashing::new(data);
        let resp = self.upload_request(
            "PUT",
            &url,
            &[("Content-Type", "application/octet-stream".to_string())],
            Body::Stream(&mut hashing, size),
            repository,
            &what,
        );
        let (got, n, _) = hashing.finish();
        let resp = resp.map_err(|e| RegistryError::Other(format!("{what}: {e}")))?;
        if n == size && got != *digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.clone(),
                got,
            });
        }
        if resp.status != 201 {
            return Err(self.status_error(resp, &what, Kind::Other));
        }
        resp.discard();
        Ok(())
    }

    /// Push: a blob in `chunk`-sized PATCHes, then the closing PUT.
    pub(crate) fn upload_blob_chunked(
        &self,
        repository: &str,
        session: Url,
        digest: &Digest,
        size: u64,
        data: &mut dyn Read,
        chunk: u64,
    ) -> Result<()> {
        let what = format!("uploading blob {digest} to {}/{repository}", self.host);
        let mut hashing = Hashing::new(data);
        let mut url = session;
        let mut sent = 0u64;
        while sent < size {
            let n = chunk.max(1).min(size - sent);
            let mut part = (&mut hashing).take(n);
            let resp = self.upload_request(
                "PATCH",
                &url,
                &[
                    ("Content-Type", "application/octet-stream".to_string()),
                    ("Content-Range", format!("{sent}-{}", sent + n - 1)),
                ],
                Body::Stream(&mut part, n),
                repository,
                &what,
            )?;
            if resp.status != 202 {
                return Err(self.status_error(resp, &what, Kind::Other));
            }
            url = self.location(&resp, &url, &what)?;
            resp.discard();
            sent += n;
        }
        let (got, _, _) = hashing.finish();
        if got != *digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.clone(),
                got,
            });
        }
        let url = with_query(&url, "digest", &digest.to_string());
        let resp = self.request(
            "PUT",
            &url,
            &[],
            Payload::Empty,
            &[push_scope(repository)],
            &what,
        )?;
        if resp.status != 201 {
            return Err(self.status_error(resp, &what, Kind::Other));
        }
        resp.discard();
        Ok(())
    }

    /// A streamed request: sent once (the session's token was fetched when it opened).
    fn upload_request(
        &self,
        method: &str,
        url: &Url,
        headers: &[(&str, String)],
        body: Body<'_>,
        repository: &str,
        what: &str,
    ) -> Result<Response> {
        let mut hs = headers.to_vec();
        if let Some(a) = self.authorization(&[push_scope(repository)], what)? {
            hs.push(("Authorization", a));
        }
        Ok(self.conn.send(method, url, &hs, body, self.verify)?)
    }

    /// Push: a manifest under a tag or its digest; returns its digest (checked against
    /// the registry's `Docker-Content-Digest`).
    pub(crate) fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        let url = self.url(&format!("/v2/{repository}/manifests/{reference}"))?;
        let what = format!("{}/{repository}:{reference}", self.host);
        let r = self.request(
            "PUT",
            &url,
            &[("Content-Type", media_type.to_string())],
            Payload::Bytes(bytes),
            &[push_scope(repository)],
            &what,
        )?;
        if r.status != 201 && r.status != 200 {
            return Err(self.status_error(r, &what, Kind::Other));
        }
        let digest = Digest::of(bytes);
        if let Some(d) = r
            .header("docker-content-digest")
            .and_then(|d| Digest::parse(d).ok())
        {
            if d != digest {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest {what}"),
                    expected: digest,
                    got: d,
                });
            }
        }
        r.discard();
        Ok(digest)
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Manifest,
    Other,
}

pub(crate) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

pub(crate) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

fn retryable_status(s: u16) -> bool {
    matches!(s, 408 | 429 | 500 | 502 | 503 | 504)
}

fn retry_after(r: &Response) -> Option<Duration> {
    r.header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn with_query(u: &Url, key: &str, value: &str) -> Url {
    let mut u = u.clone();
    u.path.push(if u.path.contains('?') { '&' } else { '?' });
    u.path.push_str(key);
    u.path.push('=');
    u.path.push_str(&query_escape(value));
    u
}

/// Percent-encoding for query values (RFC 3986 unreserved characters pass).
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The first usable challenge of the `WWW-Authenticate` headers (Bearer preferred).
fn parse_challenge(r: &Response) -> Challenge {
    let mut basic = false;
    for h in r.header_all("www-authenticate") {
        for (scheme, params) in parse_www_authenticate(h) {
            if scheme.eq_ignore_ascii_case("bearer") {
                let get = |k: &str| {
                    params
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case(k))
                        .map(|(_, v)| v.clone())
                };
                if let Some(realm) = get("realm") {
                    return Challenge::Bearer {
                        realm,
                        service: get("service"),
                        scope: get("scope"),
                    };
                }
            } else if scheme.eq_ignore_ascii_case("basic") {
                basic = true;
            }
        }
    }
    if basic {
        Challenge::Basic
    } else {
        Challenge::None
    }
}

/// RFC 7235 challenges: `Scheme k=v, k="quoted, with commas", Scheme2 ...`.
fn parse_www_authenticate(h: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let b = h.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let s = *i;
        while *i < b.len() && !b" \t,=\"".contains(&b[*i]) {
            *i += 1;
        }
        h[s..*i].to_string()
    };
    while i < b.len() {
        skip_ws(&mut i);
        let t = token(&mut i);
        if t.is_empty() {
            if i < b.len() {
                i += 1;
            }
            continue;
        }
        // `name=` starts a parameter of the current challenge; otherwise a new scheme
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    let ch = h[i..].chars().next().unwrap_or(' ');
                    v.push(ch);
                    i += ch.len_utf8();
                }
                i += 1;
                v
            } else {
                token(&mut i)
            };
            if let Some(last) = out.last_mut() {
                last.1.push((t, value));
            }
        } else {
            out.push((t, Vec::new()));
        }
    }
    out
}

/// The distribution spec's error document: the first error's code and message.
fn registry_error(r: &mut Response) -> (String, String) {
    let body = r.read_limited(64 * 1024).unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Doc>(&body) {
        Ok(d) if !d.errors.is_empty() => {
            let e = &d.errors[0];
            (e.code.clone(), one_line(&e.message))
        }
        _ => (String::new(), one_line(&String::from_utf8_lossy(&body))),
    }
}

fn error_message(r: &mut Response) -> String {
    registry_error(r).1
}

fn one_line(s: &str) -> String {
    let s: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s.chars().take(200).collect()
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "bad request",
        404 => "not found",
        405 => "method not allowed",
        500 => "internal server error",
        502 => "bad gateway",
        503 => "service unavailable",
        504 => "gateway timeout",
        _ => "unexpected status",
    }
}

/// The io::Error a blob reader returns carries the RegistryError: give it back.
pub(crate) fn unwrap_io(e: io::Error) -> RegistryError {
    if e.get_ref().is_some_and(|i| i.is::<RegistryError>()) {
        let inner = e.into_inner().expect("checked");
        return *inner.downcast::<RegistryError>().expect("checked");
    }
    RegistryError::Other(io_msg(&e))
}

/// The raw bytes of a blob across reconnections: a failure or early end continues with
/// `Range: bytes=POS-` (or, if the server ignores ranges, a full body whose first POS
/// bytes are skipped).
struct Resuming<'a> {
    registry: &'a Registry,
    repository: String,
    digest: Digest,
    size: u64,
    pos: u64,
    body: Option<Response>,
    resumes: u32,
    what: String,
}

const MAX_RESUMES: u32 = 5;

impl Resuming<'_> {
    fn reopen(&mut self, cause: io::Error) -> io::Result<()> {
        self.body = None;
        if self.resumes >= MAX_RESUMES {
            return Err(cause);
        }
        self.resumes += 1;
        self.registry.sleep(self.resumes - 1, None);
        let mut resp = self
            .registry
            .open_blob(&self.repository, &self.digest, self.pos, &self.what)
            .map_err(io::Error::other)?;
        if resp.status == 200 && self.pos > 0 {
            // no range support: skip what we already have
            let skipped = io::copy(&mut (&mut resp.body).take(self.pos), &mut io::sink())?;
            if skipped != self.pos {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob shorter on resume",
                ));
            }
        } else if resp.status == 206 {
            let start = resp
                .header("content-range")
                .and_then(|v| v.trim().strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if start != Some(self.pos) {
                return Err(io::Error::other(RegistryError::Other(format!(
                    "{}: the registry resumed at the wrong offset",
                    self.what
                ))));
            }
        }
        self.body = Some(resp);
        Ok(())
    }
}

impl Read for Resuming<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let Some(body) = self.body.as_mut() else {
                return Ok(0);
            };
            match body.body.read(buf) {
                // A body read to its announced end: the blob is that long (the verifying
                // reader above says whether that is right). Only a cut is resumed.
                Ok(0) => return Ok(0),
                Ok(n) => {
                    self.pos += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let e = io::Error::new(e.kind(), format!("{}: {}", self.what, io_msg(&e)));
                    self.reopen(e)?;
                }
            }
        }
    }
}

/// A verified blob stream (see [`Registry::blob`]).
pub(crate) struct BlobReader<'a> {
    inner: Option<Hashing<Resuming<'a>>>,
    expected: Digest,
    size: u64,
    what: String,
    count: u64,
    failed: Option<String>,
}

impl BlobReader<'_> {
    fn fail(&mut self, e: RegistryError) -> io::Error {
        self.failed = Some(e.to_string());
        self.inner = None;
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    /// At `size` bytes: the stream must end there and hash to the digest.
    fn finish(&mut self) -> io::Result<()> {
        let Some(inner) = self.inner.as_mut() else {
            return Ok(());
        };
        let mut one = [0u8; 1];
        if inner.read(&mut one)? > 0 {
            let what = self.what.clone();
            let expected = self.size;
            return Err(self.fail(RegistryError::TooLong { what, expected }));
        }
        let (got, _, _) = self.inner.take().expect("present").finish();
        if got != self.expected {
            let what = self.what.clone();
            let expected = self.expected.clone();
            return Err(self.fail(RegistryError::DigestMismatch {
                what,
                expected,
                got,
            }));
        }
        Ok(())
    }
}

impl Read for BlobReader<'_> {
    /// The bytes that complete the blob are only returned once the digest matched: a
    /// reader that stops at `size` bytes has verified data or an error.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(f) = &self.failed {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                RegistryError::Other(f.clone()),
            ));
        }
        let Some(inner) = self.inner.as_mut() else {
            return Ok(0);
        };
        let room = (self.size - self.count).min(buf.len() as u64) as usize;
        if room == 0 {
            if buf.is_empty() {
                return Ok(0);
            }
            self.finish()?;
            return Ok(0);
        }
        let n = inner.read(&mut buf[..room])?;
        if n == 0 {
            let what = self.what.clone();
            let (expected, got) = (self.size, self.count);
            return Err(self.fail(RegistryError::SizeMismatch {
                what,
                expected,
                got,
            }));
        }
        self.count += n as u64;
        if self.count == self.size {
            self.finish()?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn www_authenticate() {
        let v = parse_www_authenticate(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push repository:x:pull",error="insufficient_scope""#,
        );
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].0, "Bearer");
        assert_eq!(
            v[0].1,
            [
                (
                    "realm".to_string(),
                    "https://auth.docker.io/token".to_string()
                ),
                ("service".to_string(), "registry.docker.io".to_string()),
                (
                    "scope".to_string(),
                    "repository:samalba/my-app:pull,push repository:x:pull".to_string()
                ),
                ("error".to_string(), "insufficient_scope".to_string()),
            ]
        );
        let v =
            parse_www_authenticate(r#"Basic realm="berth test", charset=UTF-8, Bearer realm=x"#);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].1[1], ("charset".to_string(), "UTF-8".to_string()));
        assert_eq!(v[1].1[0], ("realm".to_string(), "x".to_string()));
        assert_eq!(parse_www_authenticate(r#"Basic"#)[0].0, "Basic");
        let v = parse_www_authenticate(r#"Bearer realm="a\"b""#);
        assert_eq!(v[0].1[0].1, "a\"b");
    }

    #[test]
    fn escapes() {
        assert_eq!(
            query_escape("repository:a/b:pull,push"),
            "repository%3Aa%2Fb%3Apull%2Cpush"
        );
        let u = Url::parse("http://h/v2/x/blobs/uploads/u?_state=a").unwrap();
        assert_eq!(
            with_query(&u, "digest", "sha256:00").path,
            "/v2/x/blobs/uploads/u?_state=a&digest=sha256%3A00"
        );
    }
}
