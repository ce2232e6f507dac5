//! A small, blocking D-Bus client: what the systemd cgroup driver needs to talk to
//! systemd's manager and nothing more. SASL `AUTH EXTERNAL` (the server reads our
//! credentials with SO_PEERCRED, so no SCM_CREDENTIALS and no unsafe), little-endian
//! marshalling of the basic and container types (`y b u i t x s o g a v ( ) { }`), method
//! calls with their replies or errors, and signals queued while a reply is awaited.
//!
//! In-tree rather than zbus: the driver makes a handful of calls per container, zbus would
//! bring an async runtime and several hundred kilobytes into a static binary whose whole
//! code path is blocking.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub(crate) enum DbusError {
    #[error("{0}")]
    Io(String),
    #[error("authentication refused: {0}")]
    Auth(String),
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    /// An error reply: its name (`org.freedesktop.systemd1.NoSuchUnit`) and message.
    #[error("{name}: {msg}")]
    Reply { name: String, msg: String },
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

fn io(what: &str, e: std::io::Error) -> DbusError {
    DbusError::Io(format!("{what}: {}", crate::error::errno_text(&e)))
}

/// A marshalled value. Arrays carry their element signature so that an empty one still
/// has a type.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Byte(u8),
    Bool(bool),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Str(String),
    Path(String),
    Sig(String),
    Array(String, Vec<Value>),
    Struct(Vec<Value>),
    Variant(Box<Value>),
    Dict(Box<Value>, Box<Value>),
}

impl Value {
    pub(crate) fn s(s: &str) -> Value {
        Value::Str(s.to_string())
    }

    pub(crate) fn v(v: Value) -> Value {
        Value::Variant(Box::new(v))
    }

    pub(crate) fn signature(&self) -> String {
        match self {
            Value::Byte(_) => "y".into(),
            Value::Bool(_) => "b".into(),
            Value::I32(_) => "i".into(),
            Value::U32(_) => "u".into(),
            Value::I64(_) => "x".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Array(e, _) => format!("a{e}"),
            Value::Struct(f) => format!("({})", f.iter().map(Value::signature).collect::<String>()),
            Value::Variant(_) => "v".into(),
            Value::Dict(k, v) => format!("{{{}{}}}", k.signature(), v.signature()),
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::Path(s) | Value::Sig(s) => Some(s),
            _ => None,
        }
    }

    pub(crate) fn as_u32(&self) -> Option<u32> {
        match self {
            Value::U32(u) => Some(*u),
            _ => None,
        }
    }
}

/// Alignment of the type a signature starts with.
fn align_of(sig: u8) -> usize {
    match sig {
        b'y' | b'g' | b'v' => 1,
        b'n' | b'q' => 2,
        b'x' | b't' | b'd' | b'(' | b'{' => 8,
        _ => 4,
    }
}

/// Marshals into a buffer whose offset 0 is 8-aligned in the message (the header and the
/// body both are).
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    fn pad(&mut self, a: usize) {
        while !self.buf.len().is_multiple_of(a) {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, u: u32) {
        self.pad(4);
        self.buf.extend_from_slice(&u.to_le_bytes());
    }

    pub(crate) fn put(&mut self, v: &Value) {
        match v {
            Value::Byte(b) => self.buf.push(*b),
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::I32(i) => self.u32(*i as u32),
            Value::U32(u) => self.u32(*u),
            Value::I64(i) => {
                self.pad(8);
                self.buf.extend_from_slice(&i.to_le_bytes());
            }
            Value::U64(u) => {
                self.pad(8);
                self.buf.extend_from_slice(&u.to_le_bytes());
            }
            Value::Str(s) | Value::Path(s) => {
                self.u32(s.len() as u32);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Sig(s) => {
                self.buf.push(s.len() as u8);
                self.buf.extend_from_slice(s.as_bytes());
                self.buf.push(0);
            }
            Value::Array(elem, items) => {
                self.pad(4);
                let len_at = self.buf.len();
                self.buf.extend_from_slice(&[0; 4]);
                // The padding to the first element is not part of the length, even when
                // the array is empty.
                self.pad(align_of(elem.as_bytes()[0]));
                let start = self.buf.len();
                for i in items {
                    self.put(i);
                }
                let len = (self.buf.len() - start) as u32;
                self.buf[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
            }
            Value::Struct(fields) => {
                self.pad(8);
                for f in fields {
                    self.put(f);
                }
            }
            Value::Variant(inner) => {
                self.put(&Value::Sig(inner.signature()));
                self.put(inner);
            }
            Value::Dict(k, v) => {
                self.pad(8);
                self.put(k);
                self.put(v);
            }
        }
    }
}

/// The end (exclusive) of the single complete type starting at `sig[i]`.
fn type_end(sig: &[u8], i: usize) -> Result<usize, DbusError> {
    let bad = DbusError::Malformed("signature");
    match sig.get(i).ok_or(bad)? {
        b'a' => type_end(sig, i + 1),
        open @ (b'(' | b'{') => {
            let close = if *open == b'(' { b')' } else { b'}' };
            let mut j = i + 1;
            while *sig.get(j).ok_or(DbusError::Malformed("signature"))? != close {
                j = type_end(sig, j)?;
            }
            Ok(j + 1)
        }
        _ => Ok(i + 1),
    }
}

/// Unmarshals little-endian data; offsets are relative to an 8-aligned start.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    fn align(&mut self, a: usize) -> Result<(), DbusError> {
        self.pos = self.pos.next_multiple_of(a);
        if self.pos > self.buf.len() {
            return Err(DbusError::Malformed("short message"));
        }
        Ok(())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DbusError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(DbusError::Malformed("short message"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, DbusError> {
        self.align(4)?;
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }

    fn u64(&mut self) -> Result<u64, DbusError> {
        self.align(8)?;
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }

    fn string(&mut self, len: usize) -> Result<String, DbusError> {
        let b = self.take(len + 1)?;
        if b[len] != 0 {
            return Err(DbusError::Malformed("string without its nul"));
        }
        String::from_utf8(b[..len].to_vec()).map_err(|_| DbusError::Malformed("string not utf-8"))
    }

    /// Every value of `sig` (a sequence of complete types).
    pub(crate) fn read_all(&mut self, sig: &str) -> Result<Vec<Value>, DbusError> {
        let s = sig.as_bytes();
        let mut i = 0;
        let mut out = Vec::new();
        while i < s.len() {
            let end = type_end(s, i)?;
            out.push(self.read(&s[i..end], 0)?);
            i = end;
        }
        Ok(out)
    }

    fn read(&mut self, sig: &[u8], depth: usize) -> Result<Value, DbusError> {
        if depth > 64 {
            return Err(DbusError::Malformed("nested too deeply"));
        }
        Ok(match sig[0] {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => Value::Bool(self.u32()? != 0),
            b'i' => Value::I32(self.u32()? as i32),
            b'u' => Value::U32(self.u32()?),
            b'x' => Value::I64(self.u64()? as i64),
            b't' => Value::U64(self.u64()?),
            b's' | b'o' => {
                let len = self.u32()? as usize;
                let s = self.string(len)?;
                if sig[0] == b's' {
                    Value::Str(s)
                } else {
                    Value::Path(s)
                }
            }
            b'g' => {
                let len = self.take(1)?[0] as usize;
                Value::Sig(self.string(len)?)
            }
            b'a' => {
                let len = self.u32()? as usize;
                let elem = &sig[1..];
                self.align(align_of(elem[0]))?;
                let end = self
                    .pos
                    .checked_add(len)
                    .filter(|e| *e <= self.buf.len())
                    .ok_or(DbusError::Malformed("array past the end"))?;
                let mut items = Vec::new();
                while self.pos < end {
                    items.push(self.read(elem, depth + 1)?);
                }
                Value::Array(String::from_utf8_lossy(elem).into_owned(), items)
            }
            b'(' | b'{' => {
                self.align(8)?;
                let inner = &sig[1..sig.len() - 1];
                let mut i = 0;
                let mut fields = Vec::new();
                while i < inner.len() {
                    let e = type_end(inner, i)?;
                    fields.push(self.read(&inner[i..e], depth + 1)?);
                    i = e;
                }
                if sig[0] == b'{' {
                    let mut it = fields.into_iter();
                    match (it.next(), it.next(), it.next()) {
                        (Some(k), Some(v), None) => Value::Dict(Box::new(k), Box::new(v)),
                        _ => return Err(DbusError::Malformed("dict entry")),
                    }
                } else {
                    Value::Struct(fields)
                }
            }
            b'v' => {
                let len = self.take(1)?[0] as usize;
                let s = self.string(len)?;
                let b = s.as_bytes();
                if b.is_empty() || type_end(b, 0)? != b.len() {
                    return Err(DbusError::Malformed("variant signature"));
                }
                Value::Variant(Box::new(self.read(b, depth + 1)?))
            }
            _ => return Err(DbusError::Malformed("unsupported type")),
        })
    }
}

pub(crate) const METHOD_CALL: u8 = 1;
pub(crate) const METHOD_RETURN: u8 = 2;
pub(crate) const ERROR: u8 = 3;
pub(crate) const SIGNAL: u8 = 4;

/// A message as read: its type, the header fields berth looks at, and the body.
#[derive(Debug, Default)]
pub(crate) struct Message {
    pub(crate) kind: u8,
    pub(crate) reply_serial: Option<u32>,
    pub(crate) path: Option<String>,
    pub(crate) interface: Option<String>,
    pub(crate) member: Option<String>,
    pub(crate) error_name: Option<String>,
    pub(crate) body: Vec<Value>,
}

/// What a method call names.
pub(crate) struct Call<'a> {
    pub(crate) destination: Option<&'a str>,
    pub(crate) path: &'a str,
    pub(crate) interface: &'a str,
    pub(crate) member: &'a str,
    pub(crate) args: Vec<Value>,
}

/// A whole method call message, serial `serial`.
pub(crate) fn encode_call(c: &Call, serial: u32) -> Vec<u8> {
    let mut body = Writer::default();
    for a in &c.args {
        body.put(a);
    }
    let sig: String = c.args.iter().map(Value::signature).collect();
    let field = |code: u8, v: Value| Value::Struct(vec![Value::Byte(code), Value::v(v)]);
    let mut fields = vec![
        field(1, Value::Path(c.path.into())),
        field(2, Value::s(c.interface)),
        field(3, Value::s(c.member)),
    ];
    if let Some(d) = c.destination {
        fields.push(field(6, Value::s(d)));
    }
    if !sig.is_empty() {
        fields.push(field(8, Value::Sig(sig)));
    }
    let mut m = Writer::default();
    m.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    m.u32(body.buf.len() as u32);
    m.u32(serial);
    m.put(&Value::Array("(yv)".into(), fields));
    m.pad(8);
    m.buf.extend_from_slice(&body.buf);
    m.buf
}

/// Parses one whole message (`buf` holds exactly it).
pub(crate) fn decode(buf: &[u8]) -> Result<Message, DbusError> {
    if buf.len() < 16 {
        return Err(DbusError::Malformed("short header"));
    }
    if buf[0] != b'l' {
        return Err(DbusError::Malformed(
            "big-endian messages are not supported",
        ));
    }
    let mut r = Reader::new(buf);
    r.take(4)?;
    let body_len = r.u32()? as usize;
    r.u32()?;
    let fields = r.read(b"a(yv)", 0)?;
    r.align(8)?;
    let body_start = r.pos;
    if buf.len() != body_start + body_len {
        return Err(DbusError::Malformed("body length"));
    }
    let mut m = Message {
        kind: buf[1],
        ..Default::default()
    };
    let mut sig = String::new();
    if let Value::Array(_, fields) = fields {
        for f in fields {
            let Value::Struct(f) = f else { continue };
            let (Some(Value::Byte(code)), Some(Value::Variant(v))) = (f.first(), f.get(1)) else {
                continue;
            };
            let s = v.as_str().map(String::from);
            match code {
                1 => m.path = s,
                2 => m.interface = s,
                3 => m.member = s,
                4 => m.error_name = s,
                5 => m.reply_serial = v.as_u32(),
                8 => sig = s.unwrap_or_default(),
                _ => {}
            }
        }
    }
    m.body = Reader::new(&buf[body_start..]).read_all(&sig)?;
    Ok(m)
}

/// The total length of the message whose first 16 bytes are `head`.
fn message_len(head: &[u8; 16]) -> Result<usize, DbusError> {
    if head[0] != b'l' {
        return Err(DbusError::Malformed(
            "big-endian messages are not supported",
        ));
    }
    let body = u32::from_le_bytes(head[4..8].try_into().unwrap()) as usize;
    let fields = u32::from_le_bytes(head[12..16].try_into().unwrap()) as usize;
    let total = (16 + fields).next_multiple_of(8) + body;
    // The spec's maximum message size.
    if total > 128 << 20 {
        return Err(DbusError::Malformed("message too large"));
    }
    Ok(total)
}

/// Our uid as the peer sees it (SO_PEERCRED): in a user namespace (rootless berth's),
/// the uid it maps to outside.
fn outer_uid(uid_map: &str, uid: u32) -> Option<u32> {
    uid_map.lines().find_map(|l| {
        let mut it = l.split_whitespace().map(|n| n.parse::<u64>().ok());
        let (inner, outer, count) = (it.next()??, it.next()??, it.next()??);
        let u = u64::from(uid);
        (u >= inner && u < inner + count).then(|| (outer + u - inner) as u32)
    })
}

/// A connection to a bus daemon or to a peer (systemd's private socket).
pub(crate) struct Conn {
    sock: UnixStream,
    serial: u32,
    /// Signals read while waiting for a reply.
    pending: VecDeque<Message>,
    timeout: Duration,
}

impl Conn {
    /// Connects and authenticates as our uid; `hello` for a bus daemon (which wants
    /// `Hello` before anything else), not for a peer.
    pub(crate) fn open(path: &Path, hello: bool, timeout: Duration) -> Result<Conn, DbusError> {
        let sock = UnixStream::connect(path).map_err(|e| io("connect", e))?;
        sock.set_read_timeout(Some(timeout))
            .map_err(|e| io("socket", e))?;
        sock.set_write_timeout(Some(timeout))
            .map_err(|e| io("socket", e))?;
        let mut c = Conn {
            sock,
            serial: 0,
            pending: VecDeque::new(),
            timeout,
        };
        c.auth()?;
        if hello {
            c.call(&Call {
                destination: Some("org.freedesktop.DBus"),
                path: "/org/freedesktop/DBus",
                interface: "org.freedesktop.DBus",
                member: "Hello",
                args: vec![],
            })?;
        }
        Ok(c)
    }

    /// BEGIN goes with AUTH in one write, as sd-bus clients do: systemd's private socket
    /// (sd-bus) does not look at bytes that reach it in the same read as a late BEGIN
    /// until more arrive, so a BEGIN written after its OK, then a call, can go unanswered.
    fn auth(&mut self) -> Result<(), DbusError> {
        let own = nix::unistd::geteuid().as_raw();
        let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        let uid = outer_uid(&map, own).unwrap_or(own).to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        let hello = format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n");
        self.sock
            .write_all(hello.as_bytes())
            .map_err(|e| io("auth", e))?;
        let line = self.auth_line()?;
        if !line.starts_with("OK ") {
            return Err(DbusError::Auth(line));
        }
        Ok(())
    }

    /// One line of the SASL exchange, read byte by byte: nothing of the binary protocol
    /// that follows may be swallowed.
    fn auth_line(&mut self) -> Result<String, DbusError> {
        let mut line = Vec::new();
        let mut b = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            if line.len() > 512 {
                return Err(DbusError::Auth("overlong line".into()));
            }
            match self.sock.read(&mut b) {
                Ok(0) => return Err(DbusError::Auth("connection closed".into())),
                Ok(_) => line.push(b[0]),
                Err(e) => return Err(self.read_err(e)),
            }
        }
        line.truncate(line.len() - 2);
        Ok(String::from_utf8_lossy(&line).into_owned())
    }

    fn read_err(&self, e: std::io::Error) -> DbusError {
        if matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ) {
            DbusError::Timeout(self.timeout)
        } else {
            io("read", e)
        }
    }

    fn read_message(&mut self) -> Result<Message, DbusError> {
        let mut head = [0u8; 16];
        self.sock
            .read_exact(&mut head)
            .map_err(|e| self.read_err(e))?;
        let mut buf = vec![0u8; message_len(&head)?];
        buf[..16].copy_from_slice(&head);
        self.sock
            .read_exact(&mut buf[16..])
            .map_err(|e| self.read_err(e))?;
        decode(&buf)
    }

    /// Calls a method and returns its reply's body; an error reply is an error.
    pub(crate) fn call(&mut self, c: &Call) -> Result<Vec<Value>, DbusError> {
        self.serial += 1;
        let serial = self.serial;
        self.sock
            .write_all(&encode_call(c, serial))
            .map_err(|e| io("write", e))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            if Instant::now() > deadline {
                return Err(DbusError::Timeout(self.timeout));
            }
            let m = self.read_message()?;
            match m.kind {
                METHOD_RETURN | ERROR if m.reply_serial == Some(serial) => {
                    if m.kind == ERROR {
                        return Err(DbusError::Reply {
                            name: m.error_name.unwrap_or_default(),
                            msg: m
                                .body
                                .first()
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                        });
                    }
                    return Ok(m.body);
                }
                SIGNAL => self.pending.push_back(m),
                _ => {}
            }
        }
    }

    /// Waits (up to `timeout`) for a signal `want` accepts; the others are dropped.
    pub(crate) fn wait_signal(
        &mut self,
        timeout: Duration,
        want: impl Fn(&Message) -> bool,
    ) -> Result<Message, DbusError> {
        while let Some(m) = self.pending.pop_front() {
            if want(&m) {
                return Ok(m);
            }
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(DbusError::Timeout(timeout));
            }
            self.sock
                .set_read_timeout(Some(left))
                .map_err(|e| io("socket", e))?;
            let m = self.read_message();
            let _ = self.sock.set_read_timeout(Some(self.timeout));
            let m = m?;
            if m.kind == SIGNAL && want(&m) {
                return Ok(m);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(v: &Value) -> Vec<u8> {
        let mut w = Writer::default();
        w.put(v);
        w.buf
    }

    #[test]
    fn basic_types_are_little_endian_and_aligned() {
        assert_eq!(bytes(&Value::Byte(7)), [7]);
        assert_eq!(bytes(&Value::Bool(true)), [1, 0, 0, 0]);
        assert_eq!(bytes(&Value::U32(0x0102_0304)), [4, 3, 2, 1]);
        assert_eq!(bytes(&Value::I32(-1)), [0xff; 4]);
        assert_eq!(bytes(&Value::U64(1)), [1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            bytes(&Value::I64(-2)),
            [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        // Length, bytes, nul.
        assert_eq!(bytes(&Value::s("ab")), [2, 0, 0, 0, b'a', b'b', 0]);
        assert_eq!(bytes(&Value::Path("/".into())), [1, 0, 0, 0, b'/', 0]);
        // A signature's length is one byte.
        assert_eq!(bytes(&Value::Sig("as".into())), [2, b'a', b's', 0]);
        // A byte then a u64 inside a struct: the struct starts 8-aligned, the u64 too.
        assert_eq!(
            bytes(&Value::Struct(vec![Value::Byte(1), Value::U64(2)])),
            [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn arrays_count_their_elements_bytes_not_the_padding_before_them() {
        // au [5, 6]: length 8, then the elements.
        assert_eq!(
            bytes(&Value::Array(
                "u".into(),
                vec![Value::U32(5), Value::U32(6)]
            )),
            [8, 0, 0, 0, 5, 0, 0, 0, 6, 0, 0, 0]
        );
        // An empty array of structs still pads to 8 after its length, and says 0.
        assert_eq!(
            bytes(&Value::Array("(sv)".into(), vec![])),
            [0, 0, 0, 0, 0, 0, 0, 0]
        );
        // at [1] at offset 0: length 8, 4 bytes of padding (not counted), the u64.
        assert_eq!(
            bytes(&Value::Array("t".into(), vec![Value::U64(1)])),
            [8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn a_variant_is_its_signature_then_its_value() {
        // (sv) {"Delegate", true}: the string ends at 13, the "b" signature at 16, where
        // the bool is aligned already.
        let v = Value::Struct(vec![Value::s("Delegate"), Value::v(Value::Bool(true))]);
        let mut want = vec![8, 0, 0, 0];
        want.extend_from_slice(b"Delegate\0");
        want.extend_from_slice(&[1, b'b', 0]);
        want.extend_from_slice(&[1, 0, 0, 0]);
        assert_eq!(bytes(&v), want);
        // {"Slice", u64}: the signature ends at 13, the u64 is padded to 16.
        let v = Value::Struct(vec![Value::s("Slice"), Value::v(Value::U64(2))]);
        let mut want = vec![5, 0, 0, 0];
        want.extend_from_slice(b"Slice\0");
        want.extend_from_slice(&[1, b't', 0]);
        want.extend_from_slice(&[0, 0, 0]);
        want.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes(&v), want);
        assert_eq!(v.signature(), "(sv)");
        let d = Value::Dict(Box::new(Value::s("k")), Box::new(Value::U32(1)));
        assert_eq!(d.signature(), "{su}");
        assert_eq!(
            Value::Array("{su}".into(), vec![d.clone()]).signature(),
            "a{su}"
        );
    }

    #[test]
    fn what_is_written_reads_back() {
        let vals = vec![
            Value::s("unit.scope"),
            Value::Array(
                "(sv)".into(),
                vec![
                    Value::Struct(vec![Value::s("Delegate"), Value::v(Value::Bool(true))]),
                    Value::Struct(vec![
                        Value::s("PIDs"),
                        Value::v(Value::Array("u".into(), vec![Value::U32(42)])),
                    ]),
                    Value::Struct(vec![Value::s("MemoryMax"), Value::v(Value::U64(1 << 30))]),
                ],
            ),
            Value::Array("(sa(sv))".into(), vec![]),
            Value::Byte(3),
            Value::I64(-5),
            Value::Array(
                "{sv}".into(),
                vec![Value::Dict(
                    Box::new(Value::s("x")),
                    Box::new(Value::v(Value::Sig("ay".into()))),
                )],
            ),
            Value::Path("/org/x".into()),
        ];
        let mut w = Writer::default();
        for v in &vals {
            w.put(v);
        }
        let sig: String = vals.iter().map(Value::signature).collect();
        assert_eq!(sig, "sa(sv)a(sa(sv))yxa{sv}o");
        assert_eq!(Reader::new(&w.buf).read_all(&sig).unwrap(), vals);
    }

    #[test]
    fn a_method_call_message_is_laid_out_as_the_spec_says() {
        let m = encode_call(
            &Call {
                destination: Some("d"),
                path: "/p",
                interface: "i",
                member: "M",
                args: vec![Value::U32(9)],
            },
            7,
        );
        let mut want: Vec<u8> = vec![b'l', 1, 0, 1, 4, 0, 0, 0, 7, 0, 0, 0];
        // Header fields array: its length, then each (yv) 8-aligned.
        let fields: Vec<u8> = [
            // PATH: code 1, sig "o", "/p"
            &[1u8, 1, b'o', 0, 2, 0, 0, 0, b'/', b'p', 0][..],
            &[0, 0, 0, 0, 0], // pad to 16
            &[2, 1, b's', 0, 1, 0, 0, 0, b'i', 0],
            &[0, 0, 0, 0, 0, 0], // pad to 32
            &[3, 1, b's', 0, 1, 0, 0, 0, b'M', 0],
            &[0, 0, 0, 0, 0, 0],
            &[6, 1, b's', 0, 1, 0, 0, 0, b'd', 0],
            &[0, 0, 0, 0, 0, 0],
            &[8, 1, b'g', 0, 1, b'u', 0],
        ]
        .concat();
        want.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        want.extend_from_slice(&fields);
        while !want.len().is_multiple_of(8) {
            want.push(0);
        }
        want.extend_from_slice(&[9, 0, 0, 0]);
        assert_eq!(m, want);
        let back = decode(&m).unwrap();
        assert_eq!(back.kind, METHOD_CALL);
        assert_eq!(back.path.as_deref(), Some("/p"));
        assert_eq!(back.member.as_deref(), Some("M"));
        assert_eq!(back.body, [Value::U32(9)]);
        let mut head = [0u8; 16];
        head.copy_from_slice(&m[..16]);
        assert_eq!(message_len(&head).unwrap(), m.len());
    }

    /// A message of any kind, for the fake peer below.
    fn encode(kind: u8, fields: Vec<(u8, Value)>, body: Vec<Value>) -> Vec<u8> {
        let mut b = Writer::default();
        for v in &body {
            b.put(v);
        }
        let mut fields: Vec<Value> = fields
            .into_iter()
            .map(|(c, v)| Value::Struct(vec![Value::Byte(c), Value::v(v)]))
            .collect();
        let sig: String = body.iter().map(Value::signature).collect();
        if !sig.is_empty() {
            fields.push(Value::Struct(vec![
                Value::Byte(8),
                Value::v(Value::Sig(sig)),
            ]));
        }
        let mut m = Writer::default();
        m.buf.extend_from_slice(&[b'l', kind, 0, 1]);
        m.u32(b.buf.len() as u32);
        m.u32(99);
        m.put(&Value::Array("(yv)".into(), fields));
        m.pad(8);
        m.buf.extend_from_slice(&b.buf);
        m.buf
    }

    fn read_one(s: &mut UnixStream) -> Message {
        let mut head = [0u8; 16];
        s.read_exact(&mut head).unwrap();
        let mut buf = vec![0u8; message_len(&head).unwrap()];
        buf[..16].copy_from_slice(&head);
        s.read_exact(&mut buf[16..]).unwrap();
        decode(&buf).unwrap()
    }

    /// Against a fake peer: AUTH EXTERNAL with our uid in hex and BEGIN in one go, Hello,
    /// a reply found among signals (which are kept for later), an error reply.
    #[test]
    fn a_connection_authenticates_calls_and_keeps_signals() {
        let dir = std::env::temp_dir().join(format!("berth-dbus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bus");
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let peer = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let uid = nix::unistd::geteuid().as_raw().to_string();
            let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
            let want = format!("\0AUTH EXTERNAL {hex}\r\nBEGIN\r\n");
            let mut got = vec![0u8; want.len()];
            s.read_exact(&mut got).unwrap();
            assert_eq!(got, want.as_bytes());
            s.write_all(b"OK 0123456789abcdef\r\n").unwrap();
            let hello = read_one(&mut s);
            assert_eq!(hello.member.as_deref(), Some("Hello"));
            let reply = |serial| (5u8, Value::U32(serial));
            s.write_all(&encode(
                METHOD_RETURN,
                vec![reply(1)],
                vec![Value::s(":1.1")],
            ))
            .unwrap();
            let call = read_one(&mut s);
            assert_eq!(call.member.as_deref(), Some("StartTransientUnit"));
            assert_eq!(call.body[0], Value::s("x.scope"));
            // A signal first, then a reply to another serial, then ours.
            let sig = encode(
                SIGNAL,
                vec![
                    (1, Value::Path("/org/freedesktop/systemd1".into())),
                    (3, Value::s("JobRemoved")),
                ],
                vec![
                    Value::U32(7),
                    Value::Path("/job/7".into()),
                    Value::s("x.scope"),
                    Value::s("done"),
                ],
            );
            s.write_all(&sig).unwrap();
            s.write_all(&encode(METHOD_RETURN, vec![reply(77)], vec![]))
                .unwrap();
            s.write_all(&encode(
                METHOD_RETURN,
                vec![reply(2)],
                vec![Value::Path("/job/7".into())],
            ))
            .unwrap();
            read_one(&mut s);
            s.write_all(&encode(
                ERROR,
                vec![
                    reply(3),
                    (4, Value::s("org.freedesktop.systemd1.NoSuchUnit")),
                ],
                vec![Value::s("Unit y.scope not loaded.")],
            ))
            .unwrap();
        });
        let mut c = Conn::open(&path, true, Duration::from_secs(20)).unwrap();
        let call = |member: &'static str, unit: &str| Call {
            destination: Some("org.freedesktop.systemd1"),
            path: "/org/freedesktop/systemd1",
            interface: "org.freedesktop.systemd1.Manager",
            member,
            args: vec![Value::s(unit)],
        };
        let job = c.call(&call("StartTransientUnit", "x.scope")).unwrap();
        assert_eq!(job, [Value::Path("/job/7".into())]);
        // The signal that came before the reply is still there.
        let done = c
            .wait_signal(Duration::from_secs(5), |m| {
                m.body.get(1).and_then(Value::as_str) == Some("/job/7")
            })
            .unwrap();
        assert_eq!(done.body[3], Value::s("done"));
        let e = c.call(&call("StopUnit", "y.scope")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "org.freedesktop.systemd1.NoSuchUnit: Unit y.scope not loaded."
        );
        peer.join().unwrap();
        // Nothing more comes: waiting ends at its deadline.
        assert!(matches!(
            c.wait_signal(Duration::from_millis(100), |_| true),
            Err(DbusError::Timeout(_)) | Err(DbusError::Io(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_uid_sent_is_the_one_outside_our_user_namespace() {
        assert_eq!(outer_uid("         0          0 4294967295\n", 0), Some(0));
        let map = "0 1000 1\n1 100000 65536\n";
        assert_eq!(outer_uid(map, 0), Some(1000));
        assert_eq!(outer_uid(map, 5), Some(100004));
        assert_eq!(outer_uid(map, 70000), None);
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        assert!(decode(b"l\x02\x00\x01").is_err());
        assert!(Reader::new(&[5, 0, 0, 0, b'a']).read_all("s").is_err());
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0x7f])
            .read_all("au")
            .is_err());
        assert!(Reader::new(&[1, b'(', 0]).read_all("v").is_err());
        assert!(Reader::new(&[]).read_all("(u").is_err());
        let mut big = [0u8; 16];
        big[0] = b'l';
        big[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(message_len(&big).is_err());
    }
}
