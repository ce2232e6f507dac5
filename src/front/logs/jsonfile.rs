//! Docker's json-file records (moby daemon/logger/jsonfilelog/jsonlog/jsonlogbytes.go):
//! `{"log":"...\n","stream":"stdout","attrs":{...},"time":"...Z"}`, one per line.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Record, Stream};
use crate::front::format::go_json_string;
use crate::front::units::{parse_rfc3339, rfc3339_nano};

/// The record as moby writes it: its own string escaper (only `\n`, `\r`, `\\`, `"` get
/// short escapes; `<`, `>`, `&`, other control bytes become `\u00XX`; invalid UTF-8
/// `\ufffd`; U+2028/U+2029 escaped), the `\n` of a full line inside `log`.
pub(super) fn encode(rec: &Record, attrs: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(rec.line.len() + 96);
    out.push(b'{');
    let mut first = true;
    let mut log = rec.line.clone();
    if !rec.partial {
        log.push(b'\n');
    }
    if !log.is_empty() {
        first = false;
        out.extend_from_slice(b"\"log\":");
        write_bytes_as_string(&mut out, &log);
    }
    if !first {
        out.push(b',');
    }
    out.extend_from_slice(b"\"stream\":");
    write_bytes_as_string(&mut out, rec.stream.name().as_bytes());
    if !attrs.is_empty() {
        // json.Marshal of a map[string]string: sorted keys, HTML-escaped.
        out.extend_from_slice(b",\"attrs\":{");
        for (i, (k, v)) in attrs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            let mut s = String::new();
            go_json_string(k, true, &mut s);
            s.push(':');
            go_json_string(v, true, &mut s);
            out.extend_from_slice(s.as_bytes());
        }
        out.push(b'}');
    }
    out.extend_from_slice(b",\"time\":\"");
    out.extend_from_slice(rfc3339_nano(rec.time).as_bytes());
    out.extend_from_slice(b"\"}\n");
    out
}

/// ffjsonWriteJSONBytesAsString.
fn write_bytes_as_string(out: &mut Vec<u8>, s: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            if b >= 0x20 && !matches!(b, b'\\' | b'"' | b'<' | b'>' | b'&') {
                out.push(b);
            } else {
                match b {
                    b'\\' | b'"' => out.extend_from_slice(&[b'\\', b]),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    _ => out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[(b >> 4) as usize],
                        HEX[(b & 0xf) as usize],
                    ]),
                }
            }
            i += 1;
            continue;
        }
        // One UTF-8 sequence, or one invalid byte (Go's DecodeRune: RuneError, 1).
        let need = match b {
            0xc2..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf4 => 4,
            _ => 0,
        };
        let len = if need > 0 && i + need <= s.len() && std::str::from_utf8(&s[i..i + need]).is_ok()
        {
            need
        } else {
            0
        };
        if len == 0 {
            out.extend_from_slice(b"\\ufffd");
            i += 1;
            continue;
        }
        let c = &s[i..i + len];
        if c == "\u{2028}".as_bytes() {
            out.extend_from_slice(b"\\u2028");
        } else if c == "\u{2029}".as_bytes() {
            out.extend_from_slice(b"\\u2029");
        } else {
            out.extend_from_slice(c);
        }
        i += len;
    }
    out.push(b'"');
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    log: String,
    #[serde(default)]
    stream: String,
    time: String,
}

/// Reads one line of a json-file log (without its newline).
pub(super) fn decode(line: &[u8]) -> Option<Record> {
    let raw: Raw = serde_json::from_slice(line).ok()?;
    let stream = Stream::parse(&raw.stream)?;
    let time = parse_rfc3339(&raw.time)?;
    let mut bytes = raw.log.into_bytes();
    let partial = bytes.last() != Some(&b'\n');
    if !partial {
        bytes.pop();
    }
    Some(Record {
        time,
        stream,
        line: bytes,
        partial,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::units::from_unix;

    fn rec(line: &[u8], partial: bool) -> Record {
        Record {
            time: from_unix(1_704_164_645, 123_456_789),
            stream: Stream::Stdout,
            line: line.to_vec(),
            partial,
        }
    }

    #[test]
    fn encodes_byte_for_byte_as_docker() {
        let none = BTreeMap::new();
        assert_eq!(
            String::from_utf8(encode(&rec(b"hello", false), &none)).unwrap(),
            "{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05.123456789Z\"}\n"
        );
        // moby's escaper: tab as \u0009, HTML characters escaped, U+2028, invalid UTF-8.
        let line = b"a\tb<c>&\"\\\r\x01\xe2\x80\xa8\xff\xc3\xa9";
        assert_eq!(
            String::from_utf8(encode(&rec(line, true), &none)).unwrap(),
            "{\"log\":\"a\\u0009b\\u003cc\\u003e\\u0026\\\"\\\\\\r\\u0001\\u2028\\ufffd\u{e9}\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05.123456789Z\"}\n"
        );
        let mut r = rec(b"x", false);
        r.stream = Stream::Stderr;
        r.time = from_unix(1_704_164_645, 100_000_000);
        let attrs = [
            ("tag".to_string(), "<a>".to_string()),
            ("env".into(), "1".into()),
        ]
        .into();
        assert_eq!(
            String::from_utf8(encode(&r, &attrs)).unwrap(),
            "{\"log\":\"x\\n\",\"stream\":\"stderr\",\"attrs\":{\"env\":\"1\",\"tag\":\"\\u003ca\\u003e\"},\"time\":\"2024-01-02T03:04:05.1Z\"}\n"
        );
    }

    #[test]
    fn decodes_what_it_encodes() {
        for (line, partial) in [
            (&b"hello"[..], false),
            (b"", false),
            (b"part", true),
            (b"\t<\xc3\xa9>\\\"", false),
        ] {
            let r = rec(line, partial);
            let enc = encode(&r, &BTreeMap::new());
            assert_eq!(decode(&enc[..enc.len() - 1]), Some(r));
        }
        // Docker's own record with attrs.
        let d = decode(
            br#"{"log":"hi\n","stream":"stderr","attrs":{"a":"b"},"time":"2024-01-02T03:04:05Z"}"#,
        )
        .unwrap();
        assert_eq!(
            (d.stream, d.line.as_slice(), d.partial),
            (Stream::Stderr, &b"hi"[..], false)
        );
        assert!(decode(b"{\"log\":\"x\"").is_none());
        assert!(decode(br#"{"log":"x","stream":"stdin","time":"2024-01-02T03:04:05Z"}"#).is_none());
    }
}
