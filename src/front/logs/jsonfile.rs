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
    #[serde(default)]
    attrs: std::collections::BTreeMap<String, String>,
}

/// `key=value,...` of `attrs` as Docker's `logs --details` shows them (Go's
/// url.QueryEscape of each key and value).
fn details_of(attrs: &std::collections::BTreeMap<String, String>) -> Vec<u8> {
    fn escape(out: &mut Vec<u8>, s: &str) {
        for &b in s.as_bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b),
                b' ' => out.push(b'+'),
                _ => out.extend_from_slice(format!("%{b:02X}").as_bytes()),
            }
        }
    }
    let mut out = Vec::new();
    for (i, (k, v)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        escape(&mut out, k);
        out.push(b'=');
        escape(&mut out, v);
    }
    out
}

/// Reads one line of a json-file log (without its newline).
pub(super) fn decode(line: &[u8]) -> Option<Record> {
    decode_with(line, true)
}

/// [`decode`]; without `need_time` the record's time is left at the epoch (a reader
/// with no `--since`, `--until` or `-t` never looks at it, and parsing it is a good part
/// of the cost per line). The records berth and Docker write (`log`, `stream`, `time`, in
/// that order, no `attrs`) take a direct path; anything else goes through serde.
pub(super) fn decode_with(line: &[u8], need_time: bool) -> Option<Record> {
    if let Some(r) = decode_plain(line, need_time) {
        return Some(r);
    }
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
        details: details_of(&raw.attrs),
    })
}

/// `{"log":"...","stream":"stdout|stderr","time":"..."}` exactly, or None.
fn decode_plain(line: &[u8], need_time: bool) -> Option<Record> {
    let rest = line.strip_prefix(b"{\"log\":\"")?;
    let mut bytes = Vec::with_capacity(rest.len().saturating_sub(48) + 1);
    let n = unescape_into(rest, &mut bytes)?;
    let rest = &rest[n..];
    let (stream, rest) = if let Some(r) = rest.strip_prefix(b",\"stream\":\"stdout\",\"time\":\"") {
        (Stream::Stdout, r)
    } else {
        let r = rest.strip_prefix(b",\"stream\":\"stderr\",\"time\":\"")?;
        (Stream::Stderr, r)
    };
    let ts = rest.strip_suffix(b"\"}")?;
    if ts.contains(&b'"') || ts.contains(&b'\\') {
        return None;
    }
    let time = if need_time {
        parse_rfc3339(std::str::from_utf8(ts).ok()?)?
    } else {
        std::time::UNIX_EPOCH
    };
    let partial = bytes.last() != Some(&b'\n');
    if !partial {
        bytes.pop();
    }
    Some(Record {
        time,
        stream,
        line: bytes,
        partial,
        details: Vec::new(),
    })
}

/// Decodes a JSON string body (after its opening quote) into `out` as UTF-8, as serde
/// would; returns how many input bytes it took, the closing quote included. None for
/// what serde would refuse (a raw control byte, a bad escape, invalid UTF-8, a lone
/// surrogate: left to serde's path, which refuses them too).
fn unescape_into(s: &[u8], out: &mut Vec<u8>) -> Option<usize> {
    let mut i = 0;
    loop {
        let j = i + memchr::memchr3(b'"', b'\\', 0, &s[i..]).unwrap_or(s.len() - i);
        let plain = &s[i..j];
        if plain.iter().any(|&b| b < 0x20) {
            return None;
        }
        out.extend_from_slice(plain);
        if j >= s.len() || s[j] == 0 {
            return None;
        }
        if s[j] == b'"' {
            std::str::from_utf8(out).ok()?;
            return Some(j + 1);
        }
        let e = *s.get(j + 1)?;
        i = j + 2;
        let c = match e {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hi = hex4(s.get(i..i + 4)?)?;
                i += 4;
                let cp = if (0xd800..0xdc00).contains(&hi) {
                    if s.get(i..i + 2)? != b"\\u" {
                        return None;
                    }
                    let lo = hex4(s.get(i + 2..i + 6)?)?;
                    if !(0xdc00..0xe000).contains(&lo) {
                        return None;
                    }
                    i += 6;
                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                } else {
                    hi
                };
                let ch = char::from_u32(cp)?;
                let mut b = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
                continue;
            }
            _ => return None,
        };
        out.push(c);
    }
}

fn hex4(h: &[u8]) -> Option<u32> {
    let mut v = 0;
    for &c in h {
        v = v * 16 + (c as char).to_digit(16)?;
    }
    Some(v)
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
            details: Vec::new(),
        }
    }

    #[test]
    fn details_are_query_escaped_pairs_by_key() {
        let attrs = BTreeMap::from([
            ("team".to_string(), "core".to_string()),
            ("STAGE".to_string(), "a b/\u{e7}=,".to_string()),
        ]);
        assert_eq!(
            String::from_utf8(details_of(&attrs)).unwrap(),
            "STAGE=a+b%2F%C3%A7%3D%2C,team=core"
        );
        assert!(details_of(&BTreeMap::new()).is_empty());
        let line = br#"{"log":"x\n","stream":"stdout","attrs":{"k":"v 1"},"time":"2024-01-02T03:04:05.000000006Z"}"#;
        assert_eq!(decode(line).unwrap().details, b"k=v+1");
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
        // The direct path and serde's agree, escapes and all.
        for line in [
            &br#"{"log":"a\u0009b\u003c\u00e9\ud83d\ude00\"\\\/\b\f\r\n","stream":"stdout","time":"2024-01-02T03:04:05.5Z"}"#[..],
            br#"{"log":"part","stream":"stderr","time":"2024-01-02T03:04:05Z"}"#,
            br#"{"log":"","stream":"stdout","time":"2024-01-02T03:04:05Z"}"#,
        ] {
            let fast = decode_plain(line, true).unwrap();
            let raw: Raw = serde_json::from_slice(line).unwrap();
            let mut want = raw.log.into_bytes();
            if want.last() == Some(&b'\n') {
                want.pop();
            }
            assert_eq!(fast.line, want);
            assert_eq!(fast.time, parse_rfc3339(&raw.time).unwrap());
        }
        // What serde refuses the direct path leaves to it (and it refuses).
        for bad in [
            &br#"{"log":"\ud800","stream":"stdout","time":"2024-01-02T03:04:05Z"}"#[..],
            b"{\"log\":\"a\x01\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05Z\"}",
            b"{\"log\":\"\xff\",\"stream\":\"stdout\",\"time\":\"2024-01-02T03:04:05Z\"}",
            br#"{"log":"\q","stream":"stdout","time":"2024-01-02T03:04:05Z"}"#,
        ] {
            assert!(decode_plain(bad, true).is_none());
            assert!(decode(bad).is_none());
        }
        assert!(decode(br#"{"log":"x","stream":"stdin","time":"2024-01-02T03:04:05Z"}"#).is_none());
    }
}
