//! A small blocking HTTP/1.1 client over TCP or rustls: what the distribution API needs
//! and nothing else (no cookies, no compression, no proxies' CONNECT). Written here rather
//! than taken from a crate so that redirects, `Range` resumption and streaming stay under
//! the registry client's control, and the static binary stays small.
//!
//! Responses stream: a body is read from the socket as the caller reads it, and the
//! connection returns to a small keep-alive pool once its body has been read to the end.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::certs;

const MAX_HEAD: usize = 64 * 1024;
const POOL_MAX: usize = 8;
const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) https: bool,
    /// A name, an IPv4 address, or an IPv6 address in brackets.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path and query, starting with '/'.
    pub(crate) path: String,
}

impl Url {
    pub(crate) fn parse(s: &str) -> Result<Url, HttpError> {
        let bad = || HttpError::Url(s.chars().take(200).collect());
        let (https, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad());
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        if authority.contains('@') || authority.is_empty() {
            return Err(bad());
        }
        let (host, port) = split_host_port(authority).ok_or_else(bad)?;
        Ok(Url {
            https,
            host: host.to_string(),
            port: port.unwrap_or(if https { 443 } else { 80 }),
            path,
        })
    }

    /// `scheme://host[:port]` of a registry domain as references write it.
    pub(crate) fn for_host(https: bool, domain: &str, path: &str) -> Result<Url, HttpError> {
        Url::parse(&format!(
            "{}://{domain}{path}",
            if https { "https" } else { "http" }
        ))
    }

    /// A `Location` header against this URL: absolute, scheme-relative, absolute-path or
    /// relative-path.
    pub(crate) fn join(&self, location: &str) -> Result<Url, HttpError> {
        if location.starts_with("http://") || location.starts_with("https://") {
            return Url::parse(location);
        }
        if let Some(rest) = location.strip_prefix("//") {
            return Url::parse(&format!(
                "{}://{rest}",
                if self.https { "https" } else { "http" }
            ));
        }
        let path = if location.starts_with('/') {
            location.to_string()
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{location}")
        };
        Ok(Url {
            path,
            ..self.clone()
        })
    }

    /// `host:port`, as errors name it.
    pub(crate) fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    fn host_header(&self) -> String {
        if self.port == if self.https { 443 } else { 80 } {
            self.host.clone()
        } else {
            self.authority()
        }
    }

    /// The same origin: scheme, host and port. Credentials never cross origins.
    pub(crate) fn same_origin(&self, other: &Url) -> bool {
        self.https == other.https
            && self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
    }

    pub(crate) fn is_loopback(&self) -> bool {
        is_loopback_host(&self.host)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.host_header(), self.path)
    }
}

impl fmt::Debug for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `localhost`, 127.0.0.0/8 and ::1: where Docker allows plain HTTP without configuration.
pub(crate) fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    if h.eq_ignore_ascii_case("localhost") {
        return true;
    }
    h.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn split_host_port(a: &str) -> Option<(&str, Option<u16>)> {
    if a.starts_with('[') {
        let end = a.find(']')?;
        let host = &a[..=end];
        return match &a[end + 1..] {
            "" => Some((host, None)),
            p => Some((host, Some(p.strip_prefix(':')?.parse().ok()?))),
        };
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Some((h, Some(p.parse().ok()?))),
        Some(_) => None,
        None => Some((a, None)),
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("invalid URL {0:?}")]
    Url(String),
    #[error("cannot connect to {addr}: {msg}")]
    Connect { addr: String, msg: String },
    /// The TLS handshake failed; `not_tls` when the peer answered something that is not
    /// TLS at all (a plain-HTTP server).
    #[error("tls handshake with {addr} failed: {msg}")]
    Tls {
        addr: String,
        msg: String,
        not_tls: bool,
    },
    #[error("{addr}: {msg}")]
    Io {
        addr: String,
        msg: String,
        kind: io::ErrorKind,
    },
    #[error("{addr}: malformed HTTP response: {msg}")]
    Protocol { addr: String, msg: String },
    #[error("tls settings for {addr}: {msg}")]
    Config { addr: String, msg: String },
}

impl HttpError {
    /// Worth another attempt: the connection broke or timed out, not a refusal or a
    /// certificate problem.
    pub(crate) fn transient(&self) -> bool {
        match self {
            HttpError::Io { kind, .. } => !matches!(
                kind,
                io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
            ),
            HttpError::Connect { msg, .. } => msg.contains("timed out") || msg.contains("reset"),
            HttpError::Protocol { .. } => true,
            _ => false,
        }
    }
}

/// An io::Error as one lowercase phrase, without Rust's "(os error N)".
pub(crate) fn io_msg(e: &io::Error) -> String {
    if e.raw_os_error().is_none() {
        if let Some(inner) = e.get_ref() {
            return inner.to_string();
        }
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => return "connection refused".into(),
        io::ErrorKind::ConnectionReset => return "connection reset by peer".into(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => return "timed out".into(),
        io::ErrorKind::UnexpectedEof => return "connection closed early".into(),
        _ => {}
    }
    let s = e.to_string();
    let s = match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    };
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s,
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

type Conn = BufReader<Stream>;
type Pool = Arc<Mutex<Vec<(String, Conn)>>>;

/// A request body: none, bytes that can be sent again, or a stream sent once.
pub(crate) enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    Stream(&'a mut dyn Read, u64),
}

impl Body<'_> {
    pub(crate) fn replayable(&self) -> bool {
        !matches!(self, Body::Stream(..))
    }
}

/// Connections, TLS configurations and the keep-alive pool, shared by a registry client's
/// threads.
pub(crate) struct Connector {
    cert_dirs: Vec<PathBuf>,
    cert_dir: Option<PathBuf>,
    connect_timeout: Duration,
    io_timeout: Duration,
    tls: Mutex<HashMap<(String, bool), Arc<ClientConfig>>>,
    pool: Pool,
}

impl Connector {
    pub(crate) fn new(
        cert_dirs: Vec<PathBuf>,
        cert_dir: Option<PathBuf>,
        io_timeout: Duration,
    ) -> Connector {
        Connector {
            cert_dirs,
            cert_dir,
            connect_timeout: Duration::from_secs(30),
            io_timeout,
            tls: Mutex::new(HashMap::new()),
            pool: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn pool_key(url: &Url, verify: bool) -> String {
        format!("{}|{}|{verify}", url.https, url.authority())
    }

    fn tls_config(&self, url: &Url, verify: bool) -> Result<Arc<ClientConfig>, HttpError> {
        // certs.d is keyed by the host as references write it: `name` on 443, else
        // `name:port`.
        let key = (url.host_header(), verify);
        let mut cache = self.tls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get(&key) {
            return Ok(c.clone());
        }
        let c = certs::client_config(&key.0, verify, &self.cert_dirs, self.cert_dir.as_deref())
            .map_err(|e| HttpError::Config {
                addr: url.authority(),
                msg: format!("{e:#}"),
            })?;
        cache.insert(key, c.clone());
        Ok(c)
    }

    fn connect(&self, url: &Url, verify: bool) -> Result<Conn, HttpError> {
        let addr = url.authority();
        let host = url.host.trim_start_matches('[').trim_end_matches(']');
        let addrs = (host, url.port)
            .to_socket_addrs()
            .map_err(|e| HttpError::Connect {
                addr: addr.clone(),
                msg: io_msg(&e),
            })?;
        let mut last = None;
        let mut tcp = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, self.connect_timeout) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(tcp) = tcp else {
            return Err(HttpError::Connect {
                addr,
                msg: last.map_or_else(|| "no address".into(), |e| io_msg(&e)),
            });
        };
        let _ = tcp.set_nodelay(true);
        let io_err = |e: io::Error| HttpError::Io {
            addr: url.authority(),
            msg: io_msg(&e),
            kind: e.kind(),
        };
        tcp.set_read_timeout(Some(self.io_timeout))
            .map_err(io_err)?;
        tcp.set_write_timeout(Some(self.io_timeout))
            .map_err(io_err)?;
        let stream = if url.https {
            let config = self.tls_config(url, verify)?;
            let name = ServerName::try_from(host.to_string())
                .map_err(|_| HttpError::Url(url.to_string()))?;
            let conn = ClientConnection::new(config, name).map_err(|e| HttpError::Tls {
                addr: addr.clone(),
                msg: e.to_string(),
                not_tls: false,
            })?;
            let mut s = StreamOwned::new(conn, tcp);
            // The handshake now, so that its failure is told apart from the request's.
            while s.conn.is_handshaking() {
                if let Err(e) = s.conn.complete_io(&mut s.sock) {
                    return Err(tls_error(&addr, e));
                }
            }
            Stream::Tls(Box::new(s))
        } else {
            Stream::Plain(tcp)
        };
        Ok(BufReader::with_capacity(64 * 1024, stream))
    }

    fn take_pooled(&self, key: &str) -> Option<Conn> {
        let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
        let i = pool.iter().rposition(|(k, _)| k == key)?;
        Some(pool.swap_remove(i).1)
    }

    /// Sends one request and reads the response head; the body streams from the returned
    /// response. `verify` is whether the server's certificate is checked (https only).
    pub(crate) fn send(
        &self,
        method: &str,
        url: &Url,
        headers: &[(&str, String)],
        mut body: Body<'_>,
        verify: bool,
    ) -> Result<Response, HttpError> {
        let key = Self::pool_key(url, verify);
        // A pooled connection may have been closed by the server meanwhile: on a failure
        // before any response byte, the request goes again on a new connection (only when
        // its body can be sent again).
        if body.replayable() {
            if let Some(conn) = self.take_pooled(&key) {
                match self.exchange(conn, method, url, headers, &mut body, &key) {
                    Ok(r) => return Ok(r),
                    Err((false, _)) => {}
                    Err((true, e)) => return Err(e),
                }
            }
        }
        let conn = self.connect(url, verify)?;
        self.exchange(conn, method, url, headers, &mut body, &key)
            .map_err(|(_, e)| e)
    }

    /// Err((got_response_bytes, error)).
    fn exchange(
        &self,
        mut conn: Conn,
        method: &str,
        url: &Url,
        headers: &[(&str, String)],
        body: &mut Body<'_>,
        key: &str,
    ) -> Result<Response, (bool, HttpError)> {
        let addr = url.authority();
        let io_err = |e: io::Error| HttpError::Io {
            addr: addr.clone(),
            msg: io_msg(&e),
            kind: e.kind(),
        };
        let mut head = format!(
            "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: {USER_AGENT}\r\n",
            url.path,
            url.host_header()
        );
        for (k, v) in headers {
            head.push_str(k);
            head.push_str(": ");
            head.push_str(v);
            head.push_str("\r\n");
        }
        let len = match body {
            Body::Empty => None,
            Body::Bytes(b) => Some(b.len() as u64),
            Body::Stream(_, n) => Some(*n),
        };
        if let Some(n) = len {
            head.push_str(&format!("Content-Length: {n}\r\n"));
        } else if matches!(method, "POST" | "PUT" | "PATCH") {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        let sent = (|| -> io::Result<()> {
            let w = conn.get_mut();
            w.write_all(head.as_bytes())?;
            match body {
                Body::Empty => {}
                Body::Bytes(b) => w.write_all(b)?,
                Body::Stream(r, n) => {
                    let copied = io::copy(&mut r.take(*n), w)?;
                    if copied != *n {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("request body ended after {copied} of {n} bytes"),
                        ));
                    }
                }
            }
            w.flush()
        })();
        sent.map_err(|e| (false, io_err(e)))?;
        let (status, headers, http10) = loop {
            let (status, headers, http10) = read_head(&mut conn, &addr)?;
            // 100 Continue and other interim answers precede the real one.
            if !(100..200).contains(&status) {
                break (status, headers, http10);
            }
        };
        let header = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.as_str())
        };
        let chunked =
            header("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let no_body = method == "HEAD" || status == 204 || status == 304;
        let framing = if no_body {
            Framing::Length(0)
        } else if chunked {
            Framing::Chunked {
                left: 0,
                done: false,
            }
        } else if let Some(n) = header("content-length") {
            Framing::Length(n.trim().parse().map_err(|_| {
                (
                    true,
                    HttpError::Protocol {
                        addr: addr.clone(),
                        msg: format!("bad Content-Length {n:?}"),
                    },
                )
            })?)
        } else {
            Framing::Close
        };
        let reusable = !http10
            && !header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
            && !matches!(framing, Framing::Close);
        let mut reader = BodyReader {
            conn: Some(conn),
            framing,
            addr: addr.clone(),
            pool: reusable.then(|| (self.pool.clone(), key.to_string())),
        };
        reader.maybe_release();
        Ok(Response {
            status,
            headers,
            body: reader,
        })
    }
}

fn tls_error(addr: &str, e: io::Error) -> HttpError {
    let not_tls = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidMessage(_)) => true,
        Some(_) => false,
        // The peer closed or reset instead of answering the ClientHello: an HTTP server
        // that gave up on a request it could not parse.
        None => matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset
        ),
    };
    let msg = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(c)) => certificate_msg(addr, c),
        Some(r) => r.to_string(),
        None => io_msg(&e),
    };
    HttpError::Tls {
        addr: addr.to_string(),
        msg,
        not_tls,
    }
}

/// Go's wording where it has one (what Docker users search for), and the way out.
fn certificate_msg(addr: &str, c: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    let dir = addr.strip_suffix(":443").unwrap_or(addr);
    let trust =
        format!("trust its CA in /etc/containers/certs.d/{dir}/ca.crt, or use --tls-verify=false");
    match c {
        C::UnknownIssuer => format!("certificate signed by unknown authority ({trust})"),
        C::Other(o) if o.to_string().contains("CaUsedAsEndEntity") => {
            format!("self-signed certificate not trusted ({trust})")
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => {
            format!("certificate is not valid for {dir}")
        }
        C::Expired | C::ExpiredContext { .. } => "certificate has expired".to_string(),
        C::NotValidYet | C::NotValidYetContext { .. } => "certificate is not valid yet".to_string(),
        C::Revoked => "certificate has been revoked".to_string(),
        other => format!("invalid certificate: {other:?}"),
    }
}

type Head = (u16, Vec<(String, String)>, bool);

fn read_head(conn: &mut Conn, addr: &str) -> Result<Head, (bool, HttpError)> {
    let mut total = 0usize;
    let mut line = Vec::new();
    let mut read_line = |conn: &mut Conn, first: bool| -> Result<String, (bool, HttpError)> {
        line.clear();
        let n = conn
            .by_ref()
            .take((MAX_HEAD - total) as u64)
            .read_until(b'\n', &mut line)
            .map_err(|e| {
                (
                    !first,
                    HttpError::Io {
                        addr: addr.to_string(),
                        msg: io_msg(&e),
                        kind: e.kind(),
                    },
                )
            })?;
        total += n;
        if n == 0 || !line.ends_with(b"\n") {
            let msg = if first && n == 0 {
                "connection closed before a response".to_string()
            } else {
                "response head too long or cut".to_string()
            };
            return Err((
                !first || n > 0,
                HttpError::Io {
                    addr: addr.to_string(),
                    msg,
                    kind: io::ErrorKind::UnexpectedEof,
                },
            ));
        }
        Ok(String::from_utf8_lossy(&line)
            .trim_end_matches(['\r', '\n'])
            .to_string())
    };
    let status_line = read_line(conn, true)?;
    let proto = |msg: String| {
        (
            true,
            HttpError::Protocol {
                addr: addr.to_string(),
                msg,
            },
        )
    };
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(proto(format!(
            "status line {:?}",
            status_line.chars().take(80).collect::<String>()
        )));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..600).contains(s))
        .ok_or_else(|| proto(format!("status line {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let l = read_line(conn, false)?;
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            return Err(proto(format!("header line {l:?}")));
        };
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    Ok((status, headers, version == "HTTP/1.0"))
}

pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: BodyReader,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The whole body, refused beyond `limit` bytes (manifests, tokens, error documents).
    pub(crate) fn read_limited(&mut self, limit: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.body.by_ref().take(limit + 1).read_to_end(&mut out)?;
        if out.len() as u64 > limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("response body over {limit} bytes"),
            ));
        }
        Ok(out)
    }

    /// Reads and drops a small body so that the connection can serve the next request.
    pub(crate) fn discard(mut self) {
        let _ = io::copy(&mut self.body.by_ref().take(64 * 1024), &mut io::sink());
    }
}

enum Framing {
    Length(u64),
    Chunked { left: u64, done: bool },
    Close,
}

/// A response body. Reading to its end returns the connection to the pool; a body that
/// ends before its Content-Length (or its last chunk) is an `UnexpectedEof` error.
pub(crate) struct BodyReader {
    conn: Option<Conn>,
    framing: Framing,
    addr: String,
    pool: Option<(Pool, String)>,
}

impl BodyReader {
    fn finished(&self) -> bool {
        matches!(
            self.framing,
            Framing::Length(0) | Framing::Chunked { done: true, .. }
        )
    }

    fn maybe_release(&mut self) {
        if !self.finished() {
            return;
        }
        if let (Some(conn), Some((pool, key))) = (self.conn.take(), self.pool.take()) {
            let mut p = pool.lock().unwrap_or_else(|e| e.into_inner());
            if p.len() < POOL_MAX {
                p.push((key, conn));
            }
        }
    }

    fn cut(&self, what: &str) -> io::Error {
        io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{}: {what}", self.addr),
        )
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.finished() {
            self.maybe_release();
            return Ok(0);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Ok(0);
        };
        let n = match &mut self.framing {
            Framing::Length(left) => {
                let want = (*left).min(buf.len() as u64) as usize;
                let n = conn.read(&mut buf[..want])?;
                if n == 0 {
                    let left = *left;
                    self.conn = None;
                    return Err(self.cut(&format!("body cut with {left} bytes missing")));
                }
                *left -= n as u64;
                n
            }
            Framing::Close => {
                let n = conn.read(buf)?;
                if n == 0 {
                    self.conn = None;
                }
                n
            }
            Framing::Chunked { left, done } => {
                if *left == 0 {
                    let mut line = String::new();
                    conn.by_ref().take(1024).read_line(&mut line)?;
                    if !line.ends_with('\n') {
                        self.conn = None;
                        return Err(self.cut("chunked body cut"));
                    }
                    let size = line.trim().split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size, 16).map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidData, "bad chunk size")
                    })?;
                    if size == 0 {
                        // trailers, up to the empty line
                        loop {
                            line.clear();
                            conn.by_ref().take(8192).read_line(&mut line)?;
                            if line.is_empty() {
                                self.conn = None;
                                return Err(self.cut("chunked body cut"));
                            }
                            if line.trim_end_matches(['\r', '\n']).is_empty() {
                                break;
                            }
                        }
                        *done = true;
                        self.maybe_release();
                        return Ok(0);
                    }
                    *left = size;
                }
                let want = (*left).min(buf.len() as u64) as usize;
                let n = conn.read(&mut buf[..want])?;
                if n == 0 {
                    self.conn = None;
                    return Err(self.cut("chunked body cut"));
                }
                *left -= n as u64;
                if *left == 0 {
                    let mut crlf = [0u8; 2];
                    conn.read_exact(&mut crlf)?;
                }
                n
            }
        };
        self.maybe_release();
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = Url::parse("https://registry-1.docker.io/v2/").unwrap();
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.path.as_str()),
            (true, "registry-1.docker.io", 443, "/v2/")
        );
        assert_eq!(u.to_string(), "https://registry-1.docker.io/v2/");
        let u = Url::parse("http://127.0.0.1:5003/token?service=x").unwrap();
        assert_eq!((u.port, u.path.as_str()), (5003, "/token?service=x"));
        assert_eq!(u.authority(), "127.0.0.1:5003");
        let u = Url::parse("http://[::1]:5000").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("[::1]", 5000, "/")
        );
        assert!(u.is_loopback());
        assert_eq!(Url::parse("http://h?x=1").unwrap().path, "/?x=1");
        for bad in [
            "ftp://x",
            "http://",
            "http://u:p@h/",
            "http://h:x/",
            "http://:5/",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
        let base = Url::parse("https://r.io/v2/a/blobs/uploads/?x=1").unwrap();
        assert_eq!(
            base.join("/v2/a/blobs/uploads/u1?s=2").unwrap().to_string(),
            "https://r.io/v2/a/blobs/uploads/u1?s=2"
        );
        assert_eq!(
            base.join("u2").unwrap().to_string(),
            "https://r.io/v2/a/blobs/uploads/u2"
        );
        assert_eq!(
            base.join("//cdn.io/b").unwrap().to_string(),
            "https://cdn.io/b"
        );
        assert_eq!(
            base.join("http://s3:9000/b").unwrap().to_string(),
            "http://s3:9000/b"
        );
        assert!(base.same_origin(&Url::parse("https://R.io:443/x").unwrap()));
        assert!(!base.same_origin(&Url::parse("https://r.io:444/x").unwrap()));
        assert!(!base.same_origin(&Url::parse("http://r.io:443/x").unwrap()));
        for (h, want) in [
            ("localhost", true),
            ("127.9.9.9", true),
            ("[::1]", true),
            ("128.0.0.1", false),
            ("localhost.evil", false),
        ] {
            assert_eq!(is_loopback_host(h), want, "{h}");
        }
    }

    /// A raw server answering each accepted connection with the given bytes, once per
    /// request line it reads.
    fn raw_server(answers: Vec<&'static [u8]>) -> (u16, std::thread::JoinHandle<usize>) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (c, _) = l.accept().unwrap();
            let mut r = BufReader::new(c);
            let mut served = 0;
            for a in answers {
                // one request head
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return served;
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                r.get_mut().write_all(a).unwrap();
                served += 1;
            }
            served
        });
        (port, t)
    }

    #[test]
    fn chunked_bodies_keep_alive_and_cut_bodies() {
        let (port, t) = raw_server(vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: x\r\n\r\n",
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        ]);
        let c = Connector::new(vec![], None, Duration::from_secs(10));
        let url = Url::parse(&format!("http://127.0.0.1:{port}/a")).unwrap();
        let mut r = c.send("GET", &url, &[], Body::Empty, true).unwrap();
        let mut s = String::new();
        r.body.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello world");
        // the connection went back to the pool: the next requests use it (the server
        // accepts only one connection)
        let r = c.send("GET", &url, &[], Body::Empty, true).unwrap();
        assert_eq!(r.status, 204);
        let mut r = c.send("GET", &url, &[], Body::Empty, true).unwrap();
        let e = r.body.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("5 bytes missing"), "{e}");
        assert_eq!(t.join().unwrap(), 3);
    }

    #[test]
    fn http10_bodies_end_at_close_and_garbage_is_refused() {
        let (port, t) = raw_server(vec![b"HTTP/1.0 200 OK\r\n\r\nuntil close"]);
        let c = Connector::new(vec![], None, Duration::from_secs(10));
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let mut r = c.send("GET", &url, &[], Body::Empty, true).unwrap();
        // the server thread ends after its answer, closing the connection
        assert_eq!(t.join().unwrap(), 1);
        let mut s = String::new();
        r.body.read_to_string(&mut s).unwrap();
        assert_eq!(s, "until close");
        let (port, _t) = raw_server(vec![b"SSH-2.0-OpenSSH\r\n\r\n"]);
        let url = Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap();
        let e = c.send("GET", &url, &[], Body::Empty, true).err().unwrap();
        assert!(e.to_string().contains("malformed HTTP response"), "{e}");
    }
}
