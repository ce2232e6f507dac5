//! conmon's k8s-file (CRI) records: `<local time, 9 digits, ±HH:MM> <stream> <F|P> <bytes>`.

use super::{Record, Stream};
use crate::front::units::{k8s_timestamp, parse_rfc3339};

/// One record as conmon writes it: `F` lines keep their `\n`; a `P` piece gets one added.
pub(super) fn encode_with_ts(
    ts: &str,
    stream: Stream,
    piece: &[u8],
    partial: bool,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(ts.as_bytes());
    out.push(b' ');
    out.extend_from_slice(stream.name().as_bytes());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(piece);
    out.push(b'\n');
}

/// Splits one read of a pipe as conmon does: every line of it is `F`, a tail without a
/// newline is `P`; all share the read's timestamp. One encoded record per element.
pub(super) fn encode_read(
    stream: Stream,
    data: &[u8],
    time: std::time::SystemTime,
) -> Vec<Vec<u8>> {
    let ts = k8s_timestamp(time);
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let mut rec = Vec::with_capacity(rest.len().min(8192) + 48);
        match rest.iter().position(|&b| b == b'\n') {
            Some(nl) => {
                encode_with_ts(&ts, stream, &rest[..nl], false, &mut rec);
                rest = &rest[nl + 1..];
            }
            None => {
                encode_with_ts(&ts, stream, rest, true, &mut rec);
                rest = &[];
            }
        }
        out.push(rec);
    }
    out
}

/// Reads one line of a k8s-file log (without its newline).
pub(super) fn decode(line: &[u8]) -> Option<Record> {
    let mut parts = line.splitn(4, |&b| b == b' ');
    let ts = std::str::from_utf8(parts.next()?).ok()?;
    let stream = Stream::parse(std::str::from_utf8(parts.next()?).ok()?)?;
    let tag = parts.next()?;
    let partial = match tag {
        b"F" => false,
        b"P" => true,
        _ => return None,
    };
    Some(Record {
        time: parse_rfc3339(ts)?,
        stream,
        line: parts.next().unwrap_or_default().to_vec(),
        partial,
        details: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::units::from_unix;

    #[test]
    fn one_read_becomes_conmon_records() {
        let t = from_unix(1_795_383_953, 17_580_416);
        let ts = k8s_timestamp(t);
        let out = String::from_utf8(
            encode_read(Stream::Stdout, b"line-one\npartial-no-newline", t).concat(),
        )
        .unwrap();
        assert_eq!(
            out,
            format!("{ts} stdout F line-one\n{ts} stdout P partial-no-newline\n")
        );
        let out = String::from_utf8(encode_read(Stream::Stderr, b"\n", t).concat()).unwrap();
        assert_eq!(out, format!("{ts} stderr F \n"));
    }

    #[test]
    fn reads_conmon_output() {
        // Captured from conmon on this VM (PEOPLE-FACE.md §2).
        let r = decode(b"2026-11-22T21:45:53.017580416+00:00 stdout P partial-no-newline").unwrap();
        assert_eq!(r.time, from_unix(1_795_383_953, 17_580_416));
        assert_eq!(
            (r.stream, r.line.as_slice(), r.partial),
            (Stream::Stdout, &b"partial-no-newline"[..], true)
        );
        let r = decode(b"2026-11-22T21:45:55.017847010+00:00 stdout F ").unwrap();
        assert_eq!((r.line.as_slice(), r.partial), (&b""[..], false));
        let r = decode(b"2026-11-22T23:45:53.5+02:00 stderr F a b c").unwrap();
        assert_eq!(
            (r.time, r.stream, r.line.as_slice()),
            (
                from_unix(1_795_383_953, 500_000_000),
                Stream::Stderr,
                &b"a b c"[..]
            )
        );
        assert!(decode(b"2026-11-22T21:45:55Z stdout X y").is_none());
        assert!(decode(b"garbage").is_none());
    }
}
