//! An in-process registry for the client's tests: enough of the distribution API (and of
//! a token server) over HTTP/1.1 on 127.0.0.1, optionally TLS, with faults to inject:
//! corrupt or cut blobs, redirects to another server, 429/503 answers, wrong digests.
//! Every request is logged with the headers the tests look at.

use std::collections::{HashMap, HashSet, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::front::digest::Digest;
use crate::front::registry::base64;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum AuthMode {
    #[default]
    None,
    Basic,
    /// Tokens from this same server's `/token`; anonymous tokens carry `pull` only.
    Bearer {
        /// The token reply names it `access_token` instead of `token`.
        access_token_only: bool,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Logged {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) authorization: Option<String>,
    pub(crate) range: Option<String>,
    pub(crate) accept: Option<String>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) auth: AuthMode,
    pub(crate) user: (String, String),
    /// (repository, digest) links, as a registry keeps them; blobs themselves by digest.
    pub(crate) links: HashSet<(String, String)>,
    pub(crate) blobs: HashMap<String, Vec<u8>>,
    /// "repository:reference" (tag or digest) -> (content type, bytes)
    pub(crate) manifests: HashMap<String, (String, Vec<u8>)>,
    pub(crate) log: Vec<Logged>,
    /// Blobs whose next GET is cut after half its bytes.
    pub(crate) cut_once: HashSet<String>,
    /// Blobs served with a byte changed.
    pub(crate) corrupt: HashSet<String>,
    /// Blob GETs answered 307 to this base URL (another server).
    pub(crate) redirect_blobs_to: Option<String>,
    /// Statuses answered (once each, in order) to the next API requests.
    pub(crate) fail_next: VecDeque<u16>,
    /// Ignore `Range` (answer 200 with the whole blob).
    pub(crate) no_range: bool,
    /// A wrong `Docker-Content-Digest` on manifests.
    pub(crate) lie_about_digest: bool,
    /// Anonymous tokens grant nothing (a private repository on Docker Hub).
    pub(crate) deny_anonymous: bool,
    /// Blob mounts refused (202 + an upload session instead).
    pub(crate) refuse_mounts: bool,
    pub(crate) uploads: HashMap<String, Vec<u8>>,
    upload_seq: usize,
    /// Issued tokens -> (user, granted scopes "repository:NAME:ACTION").
    tokens: HashMap<String, (String, Vec<String>)>,
}

pub(crate) struct FakeRegistry {
    pub(crate) port: u16,
    pub(crate) state: Arc<Mutex<State>>,
    pub(crate) connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

pub(crate) type TlsConfig = Arc<rustls::ServerConfig>;

impl FakeRegistry {
    pub(crate) fn start(auth: AuthMode) -> FakeRegistry {
        Self::start_with(auth, None)
    }

    pub(crate) fn start_with(auth: AuthMode, tls: Option<TlsConfig>) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            auth,
            user: ("testuser".into(), "testpassword".into()),
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let (st, sp, conns) = (state.clone(), stop.clone(), connections.clone());
        let thread = std::thread::spawn(move || {
            for c in listener.incoming() {
                if sp.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(c) = c else { continue };
                conns.fetch_add(1, Ordering::Relaxed);
                let st = st.clone();
                let tls = tls.clone();
                std::thread::spawn(move || {
                    let _ = c.set_read_timeout(Some(std::time::Duration::from_secs(30)));
                    match tls {
                        Some(cfg) => {
                            let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                                return;
                            };
                            let s = rustls::StreamOwned::new(conn, c);
                            serve(s, &st, port, None);
                        }
                        None => {
                            let raw = c.try_clone().ok();
                            serve(c, &st, port, raw);
                        }
                    }
                });
            }
        });
        FakeRegistry {
            port,
            state,
            connections,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Stores a blob linked into `repo`; returns its digest.
    pub(crate) fn add_blob(&self, repo: &str, data: &[u8]) -> Digest {
        let d = Digest::of(data);
        self.with(|s| {
            s.blobs.insert(d.to_string(), data.to_vec());
            s.links.insert((repo.to_string(), d.to_string()));
        });
        d
    }

    /// Stores a manifest under a tag and under its digest.
    pub(crate) fn add_manifest(
        &self,
        repo: &str,
        tag: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Digest {
        let d = Digest::of(bytes);
        self.with(|s| {
            let v = (media_type.to_string(), bytes.to_vec());
            s.manifests.insert(format!("{repo}:{tag}"), v.clone());
            s.manifests.insert(format!("{repo}:{d}"), v);
        });
        d
    }

    pub(crate) fn log(&self) -> Vec<Logged> {
        self.with(|s| s.log.clone())
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // wake the accept loop
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Req {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, n: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v.as_str())
    }
}

fn read_req<R: BufRead>(r: &mut R) -> Option<Req> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).ok()?;
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Req {
        method,
        path,
        headers,
        body,
    })
}

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Send only this many body bytes, then close the connection.
    cut_at: Option<usize>,
}

impl Resp {
    fn new(status: u16) -> Resp {
        Resp {
            status,
            headers: vec![],
            body: vec![],
            cut_at: None,
        }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Resp {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    fn body(mut self, b: impl Into<Vec<u8>>) -> Resp {
        self.body = b.into();
        self
    }
    fn error(status: u16, code: &str, msg: &str) -> Resp {
        Resp::new(status)
            .header("Content-Type", "application/json")
            .body(format!(
                r#"{{"errors":[{{"code":"{code}","message":"{msg}","detail":null}}]}}"#
            ))
    }
}

fn serve<S: Read + Write>(stream: S, state: &Mutex<State>, port: u16, raw: Option<TcpStream>) {
    let mut r = BufReader::new(stream);
    // A TLS ClientHello to the plain server: close at once, as a real one answers 400.
    if raw.is_some() && r.fill_buf().is_ok_and(|b| b.first() == Some(&0x16)) {
        return;
    }
    while let Some(req) = read_req(&mut r) {
        let head_only = req.method == "HEAD";
        let resp = handle(&req, state, port);
        let mut out = format!("HTTP/1.1 {} X\r\n", resp.status);
        for (k, v) in &resp.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        if !resp.headers.iter().any(|(k, _)| k == "Content-Length") {
            out.push_str(&format!("Content-Length: {}\r\n", resp.body.len()));
        }
        out.push_str("\r\n");
        let w = r.get_mut();
        if w.write_all(out.as_bytes()).is_err() {
            return;
        }
        if !head_only {
            let n = resp.cut_at.unwrap_or(resp.body.len());
            if w.write_all(&resp.body[..n]).is_err() {
                return;
            }
        }
        let _ = w.flush();
        if resp.cut_at.is_some() {
            if let Some(raw) = &raw {
                let _ = raw.shutdown(Shutdown::Both);
            }
            return;
        }
    }
}

fn query(path: &str) -> (String, Vec<(String, String)>) {
    let (p, q) = path.split_once('?').unwrap_or((path, ""));
    let params = q
        .split('&')
        .filter(|x| !x.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), unescape(v))
        })
        .collect();
    (p.to_string(), params)
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn handle(req: &Req, state: &Mutex<State>, port: u16) -> Resp {
    let mut st = state.lock().unwrap();
    st.log.push(Logged {
        method: req.method.clone(),
        path: req.path.clone(),
        authorization: req.header("authorization").map(str::to_string),
        range: req.header("range").map(str::to_string),
        accept: req.header("accept").map(str::to_string),
    });
    let (path, params) = query(&req.path);
    if path == "/token" {
        return token(req, &mut st, &params);
    }
    if path == "/v2/" || path == "/v2" {
        return match check_auth(req, &mut st, None, port) {
            Some(r) => r,
            None => Resp::new(200).body("{}"),
        };
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Resp::new(404);
    };
    if let Some(status) = st.fail_next.pop_front() {
        return Resp::error(status, "TOOMANYREQUESTS", "slow down").header("Retry-After", "0");
    }
    let (repo, kind, reference) = if let Some(i) = rest.rfind("/manifests/") {
        (&rest[..i], "manifests", &rest[i + 11..])
    } else if let Some(i) = rest.rfind("/blobs/uploads") {
        (
            &rest[..i],
            "uploads",
            rest[i + 14..].trim_start_matches('/'),
        )
    } else if let Some(i) = rest.rfind("/blobs/") {
        (&rest[..i], "blobs", &rest[i + 7..])
    } else {
        return Resp::new(404);
    };
    let write = matches!(req.method.as_str(), "PUT" | "POST" | "PATCH" | "DELETE");
    let action = if write { "push" } else { "pull" };
    if let Some(r) = check_auth(req, &mut st, Some((repo, action)), port) {
        return r;
    }
    // a mount also needs pull on the source repository
    if let Some((_, from)) = params.iter().find(|(k, _)| k == "from") {
        if let Some(r) = check_auth(req, &mut st, Some((from, "pull")), port) {
            return r;
        }
    }
    match (req.method.as_str(), kind) {
        ("GET" | "HEAD", "manifests") => match st.manifests.get(&format!("{repo}:{reference}")) {
            Some((ct, bytes)) => {
                let mut d = Digest::of(bytes).to_string();
                if st.lie_about_digest {
                    d = Digest::of(b"lie").to_string();
                }
                Resp::new(200)
                    .header("Content-Type", ct.clone())
                    .header("Docker-Content-Digest", d)
                    .body(bytes.clone())
            }
            None => Resp::error(404, "MANIFEST_UNKNOWN", "manifest unknown"),
        },
        ("PUT", "manifests") => {
            let ct = req.header("content-type").unwrap_or("").to_string();
            let d = Digest::of(&req.body);
            st.manifests.insert(
                format!("{repo}:{reference}"),
                (ct.clone(), req.body.clone()),
            );
            st.manifests
                .insert(format!("{repo}:{d}"), (ct, req.body.clone()));
            Resp::new(201).header("Docker-Content-Digest", d.to_string())
        }
        ("GET" | "HEAD", "blobs") => {
            if !st
                .links
                .contains(&(repo.to_string(), reference.to_string()))
            {
                return Resp::error(404, "BLOB_UNKNOWN", "blob unknown to registry");
            }
            if req.method == "GET" {
                if let Some(to) = &st.redirect_blobs_to {
                    return Resp::new(307).header(
                        "Location",
                        format!("{to}/v2/{repo}/blobs/{reference}?signed=1"),
                    );
                }
            }
            serve_blob(req, &mut st, reference)
        }
        ("POST", "uploads") => {
            if let (Some((_, mount)), Some((_, from))) = (
                params.iter().find(|(k, _)| k == "mount"),
                params.iter().find(|(k, _)| k == "from"),
            ) {
                if !st.refuse_mounts && st.links.contains(&(from.clone(), mount.clone())) {
                    st.links.insert((repo.to_string(), mount.clone()));
                    return Resp::new(201).header("Location", format!("/v2/{repo}/blobs/{mount}"));
                }
            }
            st.upload_seq += 1;
            let id = format!("u{}", st.upload_seq);
            st.uploads.insert(id.clone(), Vec::new());
            Resp::new(202)
                .header(
                    "Location",
                    format!("/v2/{repo}/blobs/uploads/{id}?_state=s"),
                )
                .header("Range", "0-0")
        }
        ("PATCH", "uploads") => {
            let Some(buf) = st.uploads.get_mut(reference) else {
                return Resp::error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
            };
            if let Some(cr) = req.header("content-range") {
                let start: usize = cr
                    .split('-')
                    .next()
                    .unwrap_or("")
                    .parse()
                    .unwrap_or(usize::MAX);
                if start != buf.len() {
                    return Resp::new(416);
                }
            }
            buf.extend_from_slice(&req.body);
            let end = buf.len().saturating_sub(1);
            Resp::new(202)
                .header(
                    "Location",
                    format!("/v2/{repo}/blobs/uploads/{reference}?_state=p"),
                )
                .header("Range", format!("0-{end}"))
        }
        ("PUT", "uploads") => {
            let Some(mut buf) = st.uploads.remove(reference) else {
                return Resp::error(404, "BLOB_UPLOAD_UNKNOWN", "upload unknown");
            };
            buf.extend_from_slice(&req.body);
            let want = params
                .iter()
                .find(|(k, _)| k == "digest")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let got = Digest::of(&buf).to_string();
            if got != want {
                return Resp::error(
                    400,
                    "DIGEST_INVALID",
                    "provided digest did not match uploaded content",
                );
            }
            st.blobs.insert(got.clone(), buf);
            st.links.insert((repo.to_string(), got.clone()));
            Resp::new(201)
                .header("Location", format!("/v2/{repo}/blobs/{got}"))
                .header("Docker-Content-Digest", got)
        }
        _ => Resp::new(405),
    }
}

fn serve_blob(req: &Req, st: &mut State, digest: &str) -> Resp {
    let Some(mut data) = st.blobs.get(digest).cloned() else {
        return Resp::error(404, "BLOB_UNKNOWN", "blob unknown to registry");
    };
    if st.corrupt.contains(digest) && !data.is_empty() {
        let i = data.len() / 2;
        data[i] ^= 0xff;
    }
    let total = data.len();
    let mut status = 200;
    let mut headers = vec![(
        "Content-Type".to_string(),
        "application/octet-stream".to_string(),
    )];
    if let Some(start) = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.split('-').next())
        .and_then(|s| s.parse::<usize>().ok())
    {
        if !st.no_range && start < total {
            status = 206;
            headers.push((
                "Content-Range".into(),
                format!("bytes {start}-{}/{total}", total - 1),
            ));
            data = data[start..].to_vec();
        }
    }
    let mut r = Resp::new(status).body(data);
    r.headers = headers;
    if req.method == "GET" && st.cut_once.remove(digest) {
        r.cut_at = Some(r.body.len() / 2);
    }
    if req.method == "HEAD" {
        r = r.header("Content-Length", total.to_string());
    }
    r
}

/// None: allowed. Some(401 with the challenge) otherwise.
fn check_auth(req: &Req, st: &mut State, need: Option<(&str, &str)>, port: u16) -> Option<Resp> {
    let auth = req.header("authorization").unwrap_or("");
    match st.auth.clone() {
        AuthMode::None => None,
        AuthMode::Basic => {
            let want = base64::encode(format!("{}:{}", st.user.0, st.user.1).as_bytes());
            if auth == format!("Basic {want}") {
                None
            } else {
                Some(
                    Resp::error(401, "UNAUTHORIZED", "authentication required")
                        .header("WWW-Authenticate", "Basic realm=\"fake registry\""),
                )
            }
        }
        AuthMode::Bearer { .. } => {
            let granted = auth
                .strip_prefix("Bearer ")
                .and_then(|t| st.tokens.get(t))
                .map(|(_, scopes)| scopes.clone());
            let ok = match (&granted, need) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(g), Some((repo, action))) => g
                    .iter()
                    .any(|s| *s == format!("repository:{repo}:{action}")),
            };
            if ok {
                return None;
            }
            let mut ch = format!("Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\"");
            if let Some((repo, action)) = need {
                let actions = if action == "push" {
                    "pull,push"
                } else {
                    "pull"
                };
                ch.push_str(&format!(",scope=\"repository:{repo}:{actions}\""));
                if granted.is_some() {
                    ch.push_str(",error=\"insufficient_scope\"");
                }
            }
            Some(
                Resp::error(401, "UNAUTHORIZED", "authentication required")
                    .header("WWW-Authenticate", ch),
            )
        }
    }
}

fn token(req: &Req, st: &mut State, params: &[(String, String)]) -> Resp {
    let AuthMode::Bearer { access_token_only } = st.auth else {
        return Resp::new(404);
    };
    let mut user = String::new();
    if let Some(b) = req
        .header("authorization")
        .and_then(|a| a.strip_prefix("Basic "))
    {
        let want = base64::encode(format!("{}:{}", st.user.0, st.user.1).as_bytes());
        if b != want {
            return Resp::error(401, "UNAUTHORIZED", "bad credentials");
        }
        user = st.user.0.clone();
    }
    let mut granted = Vec::new();
    for (k, v) in params {
        if k != "scope" {
            continue;
        }
        for one in v.split(' ') {
            let Some((rest, actions)) = one.rsplit_once(':') else {
                continue;
            };
            for a in actions.split(',') {
                if (a == "pull" && !st.deny_anonymous) || !user.is_empty() {
                    granted.push(format!("{rest}:{a}"));
                }
            }
        }
    }
    let tok = format!("tok{}", st.tokens.len() + 1);
    st.tokens.insert(tok.clone(), (user, granted));
    let body = if access_token_only {
        format!(r#"{{"access_token":"{tok}","expires_in":300}}"#)
    } else {
        format!(r#"{{"token":"{tok}","expires_in":300}}"#)
    };
    Resp::new(200)
        .header("Content-Type", "application/json")
        .body(body)
}

/// A self-signed certificate for 127.0.0.1 made with the openssl CLI in `dir`:
/// (server config, the PEM of the certificate to trust).
pub(crate) fn self_signed(dir: &std::path::Path) -> (TlsConfig, Vec<u8>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    std::fs::create_dir_all(dir).unwrap();
    let (crt, key) = (dir.join("server.crt"), dir.join("server.key"));
    let st = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
        ])
        .args([
            "-subj",
            "/CN=berth-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl");
    assert!(st.success(), "openssl req failed");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&crt)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let k = PrivateKeyDer::from_pem_file(&key).unwrap();
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, k)
        .unwrap();
    (Arc::new(cfg), std::fs::read(&crt).unwrap())
}
