//! Docker's human units and times, as docker/go-units, moby's timetypes and Go's time
//! package print and parse them: sizes (`1.2MB`, `64MiB`, `-m 64m`), durations
//! (`Up 3 seconds`, `1m30s`), RFC 3339 timestamps (inspect, json-file, `logs -t`,
//! k8s-file) and `--since/--until`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Result};

use super::format::{go_format_float, go_quote};

// ---------------------------------------------------------------------------------------
// Sizes (go-units size.go)

const DECIMAL_ABBRS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_ABBRS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

fn size_and_unit(mut size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// go-units HumanSizeWithPrecision: decimal units, `precision` significant digits
/// (`docker images`/`ps -s` use 3: `1.23MB`, `999B`, `1e+03kB` for 999.9 kB as Go prints it).
pub(crate) fn human_size_with_precision(size: f64, precision: usize) -> String {
    let (s, unit) = size_and_unit(size, 1000.0, &DECIMAL_ABBRS);
    format!("{}{unit}", go_format_float(s, 'g', Some(precision)))
}

/// go-units HumanSize: four significant digits (`2.746MB`).
pub(crate) fn human_size(size: f64) -> String {
    human_size_with_precision(size, 4)
}

/// go-units BytesSize: binary units, four significant digits (`64MiB`, `1.5GiB`): what
/// `docker stats` prints for memory.
pub(crate) fn bytes_size(size: f64) -> String {
    let (s, unit) = size_and_unit(size, 1024.0, &BINARY_ABBRS);
    format!("{}{unit}", go_format_float(s, 'g', Some(4)))
}

/// go-units FromHumanSize: `10m` = 10,000,000 (json-file's `max-size`).
pub(crate) fn from_human_size(s: &str) -> Result<i64> {
    parse_size(s, 1000)
}

/// go-units RAMInBytes: `64m` = 64 MiB (`-m`, `--shm-size`, `--memory-reservation`).
pub(crate) fn ram_in_bytes(s: &str) -> Result<i64> {
    parse_size(s, 1024)
}

/// Docker's `--memory-swap`: `-1` (unlimited) or a RAMInBytes size.
pub(crate) fn mem_swap_bytes(s: &str) -> Result<i64> {
    if s == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(s)
}

/// go-units v0.5 parseSize: a number (float syntax), an optional space, then an optional
/// case-insensitive suffix `b`, or `k m g t p` followed by nothing, `b`, or `ib`.
fn parse_size(s: &str, base: i64) -> Result<i64> {
    let Some(sep) = s.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        bail!("invalid size: '{s}'");
    };
    let (num, sfx) = if s.as_bytes()[sep] == b' ' {
        (&s[..sep], &s[sep + 1..])
    } else {
        (&s[..sep + 1], &s[sep + 1..])
    };
    let mut size = go_parse_float(num)?;
    if size < 0.0 {
        bail!("invalid size: '{s}'");
    }
    if sfx.is_empty() {
        return Ok(size as i64);
    }
    let bad = || anyhow!("invalid suffix: '{sfx}'");
    if sfx.len() > 3 {
        return Err(bad());
    }
    let lower = sfx.to_ascii_lowercase();
    let b = lower.as_bytes();
    if b[0] == b'b' {
        if b.len() > 1 {
            return Err(anyhow!("invalid suffix: '{lower}'"));
        }
        return Ok(size as i64);
    }
    let pow = match b[0] {
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(anyhow!("invalid suffix: '{lower}'")),
    };
    size *= (base as f64).powi(pow);
    match (b.len(), &lower[1..]) {
        (1, _) | (2, "b") | (3, "ib") => Ok(size as i64),
        _ => Err(anyhow!("invalid suffix: '{lower}'")),
    }
}

/// strconv.ParseFloat(s, 64), with its error text.
fn go_parse_float(s: &str) -> Result<f64> {
    let syntax = || {
        anyhow!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            go_quote(s)
        )
    };
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return Err(syntax());
    }
    let f: f64 = s.parse().map_err(|_| syntax())?;
    if f.is_infinite() {
        bail!(
            "strconv.ParseFloat: parsing {}: value out of range",
            go_quote(s)
        );
    }
    Ok(f)
}

// ---------------------------------------------------------------------------------------
// Durations

/// go-units HumanDuration: `Less than a second`, `1 second`, `About a minute`,
/// `About an hour`, `36 hours`, `2 weeks`, ... (ps: `Up 3 seconds`, `Exited (0) 5 minutes ago`).
pub(crate) fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    let hours_f = d.as_secs_f64() / 3600.0;
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = secs / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (hours_f + 0.5) as u64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", (hours_f as u64) / 24 / 365)
}

/// Go's time.ParseDuration (`1m30s`, `1.5h`, `-2s`, `300ms`, `0`): nanoseconds.
pub(crate) fn parse_go_duration(orig: &str) -> Result<i64> {
    let invalid = || anyhow!("time: invalid duration {}", go_quote(orig));
    let mut s = orig;
    let mut neg = false;
    if let Some(c) = s.chars().next() {
        if c == '-' || c == '+' {
            neg = c == '-';
            s = &s[1..];
        }
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u128 = 1 << 63;
    let mut d: u128 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u128 = 0;
        for &c in &b[..int_len] {
            v = v * 10 + u128::from(c - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
        }
        s = &s[int_len..];
        let (mut f, mut scale, mut post) = (0u128, 1f64, false);
        if let Some(rest) = s.strip_prefix('.') {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for &c in &rest.as_bytes()[..n] {
                if overflow {
                    continue;
                }
                let y = f * 10 + u128::from(c - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = n > 0;
            s = &rest[n..];
        }
        if int_len == 0 && !post {
            return Err(invalid());
        }
        let ulen = s
            .char_indices()
            .find(|&(_, c)| c == '.' || c.is_ascii_digit())
            .map_or(s.len(), |(i, _)| i);
        if ulen == 0 {
            return Err(anyhow!("time: missing unit in duration {}", go_quote(orig)));
        }
        let u = &s[..ulen];
        s = &s[ulen..];
        let unit: u128 = match u {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => {
                return Err(anyhow!(
                    "time: unknown unit {} in duration {}",
                    go_quote(u),
                    go_quote(orig)
                ))
            }
        };
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u128;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i128).wrapping_neg() as i64);
    }
    if d > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// Go's Duration.String: `1m30s`, `1h0m0s`, `1.5s`, `300ms`, `2µs`, `0s`.
pub(crate) fn format_go_duration(nanos: i64) -> String {
    let neg = nanos < 0;
    let u = nanos.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        let (prec, unit) = match u {
            0 => return "0s".into(),
            1..=999 => (0, "ns"),
            1_000..=999_999 => (3, "\u{b5}s"),
            _ => (6, "ms"),
        };
        let (int, frac) = frac_part(u, prec);
        out.push_str(&int.to_string());
        out.push_str(&frac);
        out.push_str(unit);
    } else {
        let (secs, frac) = frac_part(u, 9);
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if secs >= 60 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&format!("{s}{frac}s"));
    }
    if neg {
        out.insert(0, '-');
    }
    out
}

/// v / 10^prec and its fraction as ".ddd" without trailing zeros ("" when zero).
fn frac_part(v: u64, prec: u32) -> (u64, String) {
    let p = 10u64.pow(prec);
    let frac = v % p;
    if frac == 0 {
        return (v / p, String::new());
    }
    let digits = format!("{:0width$}", frac, width = prec as usize);
    (v / p, format!(".{}", digits.trim_end_matches('0')))
}

// ---------------------------------------------------------------------------------------
// Calendar and RFC 3339

/// Seconds and nanoseconds since the epoch (nanoseconds always 0..1e9, as Go keeps them).
pub(crate) fn unix_parts(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (mut s, mut n) = (-(d.as_secs() as i64), d.subsec_nanos());
            if n > 0 {
                s -= 1;
                n = 1_000_000_000 - n;
            }
            (s, n)
        }
    }
}

pub(crate) fn from_unix(secs: i64, nanos: u32) -> SystemTime {
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nanos)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
            + Duration::from_nanos(u64::from(nanos))
    }
}

/// Go's zero time.Time, `0001-01-01T00:00:00Z`: Docker's "never" (FinishedAt of a
/// container that has not stopped).
pub(crate) fn zero_time() -> SystemTime {
    from_unix(-62_135_596_800, 0)
}

pub(crate) fn is_zero_time(t: SystemTime) -> bool {
    t == zero_time()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in(month: u32, year: i64) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Frac {
    /// `.999999999`: trailing zeros trimmed, no dot when zero (Go's RFC3339Nano).
    Trim,
    /// `.000000000`: always nine digits.
    Fixed,
}

fn format_time(t: SystemTime, offset: i32, frac: Frac, z_for_utc: bool) -> String {
    let (secs, nanos) = unix_parts(t);
    let local = secs + i64::from(offset);
    let (days, sod) = (local.div_euclid(86_400), local.rem_euclid(86_400));
    let (y, mo, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
    match frac {
        Frac::Fixed => s.push_str(&format!(".{nanos:09}")),
        Frac::Trim if nanos > 0 => {
            let f = format!("{nanos:09}");
            s.push('.');
            s.push_str(f.trim_end_matches('0'));
        }
        Frac::Trim => {}
    }
    if offset == 0 && z_for_utc {
        s.push('Z');
    } else {
        let a = offset.unsigned_abs();
        s.push_str(&format!(
            "{}{:02}:{:02}",
            if offset < 0 { '-' } else { '+' },
            a / 3600,
            a / 60 % 60
        ));
    }
    s
}

/// Go's `t.UTC().Format(time.RFC3339Nano)`: `2024-01-02T03:04:05.1234Z` (inspect times,
/// json-file's `time`); the zero time prints `0001-01-01T00:00:00Z`.
pub(crate) fn rfc3339_nano(t: SystemTime) -> String {
    format_time(t, 0, Frac::Trim, true)
}

/// Docker's RFC3339NanoFixed in UTC: nine digits always (`logs -t`).
pub(crate) fn rfc3339_nano_fixed(t: SystemTime) -> String {
    format_time(t, 0, Frac::Fixed, true)
}

/// conmon's k8s-file timestamp: local time, nine digits, `±HH:MM` (never `Z`).
pub(crate) fn k8s_timestamp(t: SystemTime) -> String {
    let (secs, _) = unix_parts(t);
    format_time(
        t,
        crate::sys::localtime::local_utc_offset(secs),
        Frac::Fixed,
        false,
    )
}

/// Reads an RFC 3339 timestamp with any fraction and a `Z` or `±HH:MM` zone (json-file and
/// k8s-file records, inspect times).
pub(crate) fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    if let Some(t) = parse_utc(s) {
        return Some(t);
    }
    let p = go_parse(RFC3339_NANO, s, None).ok()?;
    Some(p)
}

/// The form berth writes its own times in (`2006-01-02T15:04:05.999999999Z`: UTC, up to
/// nine fraction digits) without the walk of a layout: a listing reads two per container.
/// None for anything else, which [`go_parse`] then reads (to the same time).
fn parse_utc(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let (&b'Z', b) = b.split_last()? else {
        return None;
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let num = |d: &[u8]| {
        d.iter().try_fold(0i64, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    let year = num(&b[0..4])?;
    let (month, day) = (num(&b[5..7])?, num(&b[8..10])?);
    let (hour, min, sec) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    let nsec = match &b[19..] {
        [] => 0,
        [b'.', d @ ..] if (1..=9).contains(&d.len()) => {
            num(d)? as u32 * 10u32.pow(9 - d.len() as u32)
        }
        _ => return None,
    };
    if !(1..=12).contains(&month) || hour >= 24 || min >= 60 || sec >= 60 {
        return None;
    }
    let (month, day) = (month as u32, day as u32);
    if day < 1 || day > days_in(month, year) {
        return None;
    }
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec;
    Some(from_unix(secs, nsec))
}

// ---------------------------------------------------------------------------------------
// Go's time.Parse for the layouts Docker's --since/--until use

const RFC3339_NANO: &str = "2006-01-02T15:04:05.999999999Z07:00";
const RFC3339: &str = "2006-01-02T15:04:05Z07:00";

enum Std {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Frac9,
    Zone,
}

/// Splits a layout into (literal prefix, element) chunks.
fn next_chunk(layout: &str) -> (&str, Option<(Std, &'static str)>, &str) {
    const ELEMS: [(&str, Std); 8] = [
        ("2006", Std::Year),
        ("01", Std::Month),
        ("02", Std::Day),
        ("15", Std::Hour),
        ("04", Std::Minute),
        ("05", Std::Second),
        (".999999999", Std::Frac9),
        ("Z07:00", Std::Zone),
    ];
    for i in 0..layout.len() {
        for (text, std) in ELEMS {
            if layout[i..].starts_with(text) {
                return (&layout[..i], Some((std, text)), &layout[i + text.len()..]);
            }
        }
    }
    (layout, None, "")
}

fn digits_at(v: &str, n: usize) -> Option<i64> {
    let b = v.as_bytes();
    (b.len() >= n && b[..n].iter().all(u8::is_ascii_digit)).then(|| v[..n].parse().ok())?
}

/// Go's time.Parse/ParseInLocation for these layouts, with its error texts. `loc_offset`
/// is the zone for values without one.
fn go_parse(layout: &str, value: &str, loc_offset: Option<i32>) -> Result<SystemTime, String> {
    let parse_err = |std: &str, rest: &str| {
        format!(
            "parsing time {} as {}: cannot parse {} as {}",
            go_quote(value),
            go_quote(layout),
            go_quote(rest),
            go_quote(std)
        )
    };
    let range_err = |what: &str| format!("parsing time {}: {what} out of range", go_quote(value));
    let (mut year, mut month, mut day, mut hour, mut min, mut sec, mut nsec) =
        (1i64, 1u32, 1u32, 0i64, 0i64, 0i64, 0u32);
    let mut zone: Option<i32> = None;
    let mut lay = layout;
    let mut v = value;
    loop {
        let (prefix, std, suffix) = next_chunk(lay);
        // The literal part must match exactly.
        let mut rest = v;
        for pc in prefix.bytes() {
            if rest.as_bytes().first() != Some(&pc) {
                return Err(parse_err(prefix, rest));
            }
            rest = &rest[1..];
        }
        v = rest;
        let Some((std, text)) = std else {
            if !v.is_empty() {
                return Err(format!(
                    "parsing time {}: extra text: {}",
                    go_quote(value),
                    go_quote(v)
                ));
            }
            break;
        };
        lay = suffix;
        let hold = v;
        let two = |v: &mut &str| -> Option<i64> {
            let n = digits_at(v, 2)?;
            *v = &v[2..];
            Some(n)
        };
        match std {
            Std::Year => {
                let Some(y) = digits_at(v, 4) else {
                    return Err(parse_err(text, hold));
                };
                year = y;
                v = &v[4..];
            }
            Std::Month => {
                let Some(m) = two(&mut v) else {
                    return Err(parse_err(text, hold));
                };
                if !(1..=12).contains(&m) {
                    return Err(range_err("month"));
                }
                month = m as u32;
            }
            Std::Day => {
                let Some(d) = two(&mut v) else {
                    return Err(parse_err(text, hold));
                };
                if d > 31 {
                    return Err(range_err("day"));
                }
                day = d as u32;
            }
            Std::Hour => {
                // One or two digits.
                let n = v.bytes().take(2).take_while(u8::is_ascii_digit).count();
                if n == 0 {
                    return Err(parse_err(text, hold));
                }
                hour = v[..n].parse().unwrap_or(0);
                v = &v[n..];
                if hour >= 24 {
                    return Err(range_err("hour"));
                }
            }
            Std::Minute => {
                let Some(m) = two(&mut v) else {
                    return Err(parse_err(text, hold));
                };
                if m >= 60 {
                    return Err(range_err("minute"));
                }
                min = m;
            }
            Std::Second => {
                let Some(s) = two(&mut v) else {
                    return Err(parse_err(text, hold));
                };
                if s >= 60 {
                    return Err(range_err("second"));
                }
                sec = s;
                // A fraction is accepted after the seconds even when the layout has none.
                let b = v.as_bytes();
                if b.len() >= 2 && (b[0] == b'.' || b[0] == b',') && b[1].is_ascii_digit() {
                    let (_, next, _) = next_chunk(lay);
                    if !matches!(next, Some((Std::Frac9, _))) {
                        let n = 1 + b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                        nsec = nanos_of(&v[1..n]);
                        v = &v[n..];
                    }
                }
            }
            Std::Frac9 => {
                let b = v.as_bytes();
                if b.len() < 2 || !(b[0] == b'.' || b[0] == b',') || !b[1].is_ascii_digit() {
                    continue;
                }
                let n = 1 + b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                nsec = nanos_of(&v[1..n]);
                v = &v[n..];
            }
            Std::Zone => {
                if let Some(r) = v.strip_prefix('Z') {
                    zone = Some(0);
                    v = r;
                    continue;
                }
                let b = v.as_bytes();
                if b.len() < 6 || b[3] != b':' || !(b[0] == b'+' || b[0] == b'-') {
                    return Err(parse_err(text, hold));
                }
                let (Some(hh), Some(mm)) = (digits_at(&v[1..], 2), digits_at(&v[4..], 2)) else {
                    return Err(parse_err(text, hold));
                };
                if hh > 24 {
                    return Err(range_err("time zone offset hour"));
                }
                if mm > 60 {
                    return Err(range_err("time zone offset minute"));
                }
                let off = (hh * 3600 + mm * 60) as i32;
                zone = Some(if b[0] == b'-' { -off } else { off });
                v = &v[6..];
            }
        }
    }
    if day < 1 || day > days_in(month, year) {
        return Err(format!(
            "parsing time {}: day out of range",
            go_quote(value)
        ));
    }
    let offset = zone.or(loc_offset).unwrap_or(0);
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + min * 60 + sec
        - i64::from(offset);
    Ok(from_unix(secs, nsec))
}

/// Up to nine fraction digits as nanoseconds (more are cut, as Go does).
fn nanos_of(digits: &str) -> u32 {
    let d = &digits[..digits.len().min(9)];
    let n: u32 = d.parse().unwrap_or(0);
    n * 10u32.pow(9 - d.len() as u32)
}

/// Docker's `--since`/`--until` (moby api/types/time GetTimestamp, then the daemon's
/// ParseTimestamps): a Go duration before `now` (whole seconds, as Docker sends them),
/// RFC 3339 with or without fraction, zone, seconds or minutes, `2006-01-02`, or Unix
/// `secs[.nanos]`. Values without a zone are in the local zone's current offset.
pub(crate) fn get_timestamp(value: &str, now: SystemTime) -> Result<SystemTime> {
    if value != "0" {
        if let Ok(d) = parse_go_duration(value) {
            let (now_s, now_n) = unix_parts(now);
            let total = i128::from(now_s) * 1_000_000_000 + i128::from(now_n) - i128::from(d);
            return Ok(from_unix(total.div_euclid(1_000_000_000) as i64, 0));
        }
    }
    let in_location = !value.contains(['z', 'Z', '+']) && value.matches('-').count() != 3;
    let layout = if value.contains('.') {
        if in_location {
            "2006-01-02T15:04:05.999999999"
        } else {
            RFC3339_NANO
        }
    } else if value.contains('T') {
        let mut colons = value.matches(':').count();
        if !in_location && !value.contains(['z', 'Z']) && colons > 0 {
            colons -= 1;
        }
        match (in_location, colons) {
            (true, 0) => "2006-01-02T15",
            (true, 1) => "2006-01-02T15:04",
            (true, _) => "2006-01-02T15:04:05",
            (false, 0) => "2006-01-02T15Z07:00",
            (false, 1) => "2006-01-02T15:04Z07:00",
            (false, _) => RFC3339,
        }
    } else if in_location {
        "2006-01-02"
    } else {
        "2006-01-02Z07:00"
    };
    let loc = in_location.then(|| crate::sys::localtime::local_utc_offset(unix_parts(now).0));
    match go_parse(layout, value, loc) {
        Ok(t) => Ok(t),
        Err(e) if value.contains('-') => Err(anyhow!(e)),
        Err(_) => parse_unix_timestamp(value).ok_or_else(|| {
            anyhow!(
                "failed to parse value as time or duration: {}",
                go_quote(value)
            )
        }),
    }
}

/// `secs[.frac]` as moby's parseTimestamp reads it.
fn parse_unix_timestamp(value: &str) -> Option<SystemTime> {
    let (s, n) = match value.split_once('.') {
        Some((s, n)) => (s, Some(n)),
        None => (value, None),
    };
    let go_int = |t: &str| -> Option<i64> {
        let body = t.strip_prefix(['+', '-']).unwrap_or(t);
        (!body.is_empty() && body.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok())?
    };
    let secs = go_int(s)?;
    let nsec = match n {
        None => 0,
        Some(n) => {
            let v = go_int(n)?;
            (v as f64 * 10f64.powi(9 - n.len() as i32)) as i64
        }
    };
    let total = i128::from(secs) * 1_000_000_000 + i128::from(nsec);
    Some(from_unix(
        total.div_euclid(1_000_000_000) as i64,
        total.rem_euclid(1_000_000_000) as u32,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes_match_go_units() {
        for (n, want) in [
            (0.0, "0B"),
            (999.0, "999B"),
            (1000.0, "1kB"),
            (1024.0, "1.024kB"),
            (1_234_567.0, "1.235MB"),
            (3.42e9, "3.42GB"),
            (1e24, "1YB"),
            (1e27, "1000YB"),
        ] {
            assert_eq!(human_size(n), want, "{n}");
        }
        for (n, want) in [
            (1_234_567.0, "1.23MB"),
            (999_900.0, "1e+03kB"),
            (5_600_000.0, "5.6MB"),
            (7.0, "7B"),
        ] {
            assert_eq!(human_size_with_precision(n, 3), want, "{n}");
        }
        for (n, want) in [
            (0.0, "0B"),
            (1024.0, "1KiB"),
            (64.0 * 1024.0 * 1024.0, "64MiB"),
            (1.5 * 1024.0 * 1024.0 * 1024.0, "1.5GiB"),
            (1_048_575.0, "1024KiB"),
            (1023.0, "1023B"),
            (1_234_567.0, "1.177MiB"),
        ] {
            assert_eq!(bytes_size(n), want, "{n}");
        }
    }

    #[test]
    fn size_parsing_matches_go_units() {
        for (s, want) in [
            ("32", 32),
            ("32b", 32),
            ("32B", 32),
            ("32k", 32 * 1024),
            ("32K", 32 * 1024),
            ("32kb", 32 * 1024),
            ("32Kib", 32 * 1024),
            ("32KIB", 32 * 1024),
            ("32Mb", 32 << 20),
            ("32Gb", 32 << 30),
            ("32Tb", 32i64 << 40),
            ("32Pb", 32i64 << 50),
            ("32.3", 32),
            ("32.3k", 33075),
            ("0.3 K", 307),
            ("64m", 64 << 20),
            ("1e3", 1000),
        ] {
            assert_eq!(ram_in_bytes(s).unwrap(), want, "{s}");
        }
        assert_eq!(from_human_size("10m").unwrap(), 10_000_000);
        assert_eq!(from_human_size("32kB").unwrap(), 32_000);
        assert_eq!(from_human_size("1.5k").unwrap(), 1500);
        for (s, msg) in [
            ("", "invalid size: ''"),
            ("hello", "invalid size: 'hello'"),
            ("-32", "invalid size: '-32'"),
            ("1x", "invalid suffix: 'x'"),
            ("32kbb", "invalid suffix: 'kbb'"),
            ("32bk", "invalid suffix: 'bk'"),
            ("32Kibb", "invalid suffix: 'Kibb'"),
            ("12 GBi", "invalid suffix: 'gbi'"),
            (
                "1.2.3k",
                r#"strconv.ParseFloat: parsing "1.2.3": invalid syntax"#,
            ),
            (
                "32  m",
                r#"strconv.ParseFloat: parsing "32 ": invalid syntax"#,
            ),
        ] {
            assert_eq!(ram_in_bytes(s).unwrap_err().to_string(), msg, "{s:?}");
        }
        assert_eq!(mem_swap_bytes("-1").unwrap(), -1);
        assert_eq!(mem_swap_bytes("1g").unwrap(), 1 << 30);
        assert!(mem_swap_bytes("-2").is_err());
    }

    #[test]
    fn human_durations_match_go_units() {
        let (s, m, h) = (1u64, 60u64, 3600u64);
        let (day, week, month, year) = (24 * h, 7 * 24 * h, 30 * 24 * h, 365 * 24 * h);
        assert_eq!(
            human_duration(Duration::from_millis(450)),
            "Less than a second"
        );
        for (secs, want) in [
            (s, "1 second"),
            (45 * s, "45 seconds"),
            (59 * s, "59 seconds"),
            (60 * s, "About a minute"),
            (3 * m, "3 minutes"),
            (35 * m + 40, "35 minutes"),
            (59 * m, "59 minutes"),
            (h, "About an hour"),
            (h + 29 * m, "About an hour"),
            (h + 31 * m, "2 hours"),
            (3 * h + 59 * m, "4 hours"),
            (24 * h, "24 hours"),
            (day + 12 * h, "36 hours"),
            (2 * day, "2 days"),
            (13 * day + 5 * h, "13 days"),
            (2 * week, "2 weeks"),
            (4 * week + 3 * day, "4 weeks"),
            (month, "4 weeks"),
            (month + 2 * week, "6 weeks"),
            (2 * month, "2 months"),
            (5 * month + 2 * week, "5 months"),
            (24 * month, "24 months"),
            (24 * month + 2 * week, "2 years"),
            (3 * year + 2 * month, "3 years"),
        ] {
            assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}");
        }
    }

    #[test]
    fn go_durations_parse_and_print() {
        let sec = 1_000_000_000i64;
        for (s, want) in [
            ("0", 0),
            ("5s", 5 * sec),
            ("1m30s", 90 * sec),
            ("1.5h", 5400 * sec),
            ("-2s", -2 * sec),
            ("+3ms", 3_000_000),
            ("300ms", 300_000_000),
            ("2us", 2000),
            ("2µs", 2000),
            ("1h2m3.5s", 3723 * sec + sec / 2),
            (".5s", sec / 2),
            ("1.s", sec),
            ("9223372036854775807ns", i64::MAX),
            ("-9223372036854775808ns", i64::MIN),
        ] {
            assert_eq!(parse_go_duration(s).unwrap(), want, "{s}");
        }
        for (s, msg) in [
            ("", r#"time: invalid duration """#),
            ("1", r#"time: missing unit in duration "1""#),
            ("1x", r#"time: unknown unit "x" in duration "1x""#),
            ("s", r#"time: invalid duration "s""#),
            (".s", r#"time: invalid duration ".s""#),
            ("1m-2s", r#"time: unknown unit "m-" in duration "1m-2s""#),
            (
                "9223372036854775808ns",
                r#"time: invalid duration "9223372036854775808ns""#,
            ),
        ] {
            assert_eq!(parse_go_duration(s).unwrap_err().to_string(), msg, "{s:?}");
        }
        for (n, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1100, "1.1µs"),
            (2_200_000, "2.2ms"),
            (sec, "1s"),
            (90 * sec, "1m30s"),
            (3600 * sec, "1h0m0s"),
            (3723 * sec + sec / 2, "1h2m3.5s"),
            (-90 * sec, "-1m30s"),
            (i64::MIN, "-2562047h47m16.854775808s"),
        ] {
            assert_eq!(format_go_duration(n), want, "{n}");
        }
        // Round trip.
        for s in ["1h0m0s", "1m30s", "1.5s", "300ms", "-2s"] {
            assert_eq!(format_go_duration(parse_go_duration(s).unwrap()), s);
        }
    }

    #[test]
    fn rfc3339_printing() {
        let t = from_unix(1_704_164_645, 123_456_789);
        assert_eq!(rfc3339_nano(t), "2024-01-02T03:04:05.123456789Z");
        assert_eq!(
            rfc3339_nano(from_unix(1_704_164_645, 120_000_000)),
            "2024-01-02T03:04:05.12Z"
        );
        assert_eq!(
            rfc3339_nano(from_unix(1_704_164_645, 0)),
            "2024-01-02T03:04:05Z"
        );
        assert_eq!(
            rfc3339_nano_fixed(from_unix(1_704_164_645, 1_000)),
            "2024-01-02T03:04:05.000001000Z"
        );
        assert_eq!(rfc3339_nano(zero_time()), "0001-01-01T00:00:00Z");
        assert!(is_zero_time(zero_time()));
        assert_eq!(
            rfc3339_nano(from_unix(-1, 500_000_000)),
            "1969-12-31T23:59:59.5Z"
        );
        assert_eq!(
            rfc3339_nano(from_unix(951_782_400, 0)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            format_time(t, -5 * 3600 - 30 * 60, Frac::Fixed, false),
            "2024-01-01T21:34:05.123456789-05:30"
        );
        assert_eq!(
            format_time(t, 0, Frac::Fixed, false),
            "2024-01-02T03:04:05.123456789+00:00"
        );
        // k8s-file: local time with an explicit offset, nine digits.
        let k = k8s_timestamp(t);
        assert_eq!(k.len(), "2024-01-02T03:04:05.123456789+00:00".len(), "{k}");
        assert_eq!(parse_rfc3339(&k), Some(t));
    }

    #[test]
    fn rfc3339_parsing_round_trips() {
        for s in [
            "2024-01-02T03:04:05.123456789Z",
            "2024-01-02T03:04:05Z",
            "2024-01-02T03:04:05.5+02:00",
            "0001-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999999Z",
        ] {
            let t = parse_rfc3339(s).unwrap_or_else(|| panic!("{s}"));
            let back = parse_rfc3339(&rfc3339_nano(t)).unwrap();
            assert_eq!(t, back, "{s}");
        }
        assert_eq!(
            parse_rfc3339("2024-01-02T05:04:05.5+02:00"),
            Some(from_unix(1_704_164_645, 500_000_000))
        );
        assert_eq!(
            parse_rfc3339("2024-01-02T03:04:05.1234567891Z"),
            Some(from_unix(1_704_164_645, 123_456_789))
        );
        for bad in [
            "2024-01-02",
            "2024-01-02T03:04:05",
            "2024-02-30T00:00:00Z",
            "x",
            "2024-01-02T03:04:05Zjunk",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn since_until_as_docker_parses_them() {
        let now = from_unix(1_700_000_000, 750_000_000);
        let local = crate::sys::localtime::local_utc_offset(1_700_000_000) as i64;
        for (v, secs, nanos) in [
            ("42m", 1_700_000_000 - 42 * 60, 0),
            ("1m30s", 1_700_000_000 - 90, 0),
            ("-1h", 1_700_000_000 + 3600, 0),
            ("2024-01-02T03:04:05Z", 1_704_164_645, 0),
            ("2024-01-02T03:04:05.5Z", 1_704_164_645, 500_000_000),
            ("2024-01-02T03:04:05+01:00", 1_704_164_645 - 3600, 0),
            ("2024-01-02T03:04:05-01:00", 1_704_164_645 + 3600, 0),
            ("2024-01-02T03:04Z", 1_704_164_640, 0),
            ("2024-01-02T03Z", 1_704_164_400, 0),
            ("2024-01-02Z", 1_704_153_600, 0),
            ("2024-01-02T03:04:05", 1_704_164_645 - local, 0),
            ("2024-01-02T03:04:05.25", 1_704_164_645 - local, 250_000_000),
            ("2024-01-02T03:04", 1_704_164_640 - local, 0),
            ("2024-01-02", 1_704_153_600 - local, 0),
            ("1700000000", 1_700_000_000, 0),
            ("1700000000.5", 1_700_000_000, 500_000_000),
            ("1700000000.000000001", 1_700_000_000, 1),
            ("0", 0, 0),
        ] {
            assert_eq!(
                get_timestamp(v, now).unwrap(),
                from_unix(secs, nanos),
                "{v}"
            );
        }
        for (v, msg) in [
            ("abc", r#"failed to parse value as time or duration: "abc""#),
            (
                "2024-13-01",
                r#"parsing time "2024-13-01": month out of range"#,
            ),
            (
                "2024-02-30",
                r#"parsing time "2024-02-30": day out of range"#,
            ),
            (
                "2024-01-02T25:00:00",
                r#"parsing time "2024-01-02T25:00:00": hour out of range"#,
            ),
            (
                "2024-1-02",
                r#"parsing time "2024-1-02" as "2006-01-02": cannot parse "1-02" as "01""#,
            ),
            (
                "2024-01-02T03:04:05Zx",
                r#"parsing time "2024-01-02T03:04:05Zx": extra text: "x""#,
            ),
            ("12x", r#"failed to parse value as time or duration: "12x""#),
        ] {
            assert_eq!(get_timestamp(v, now).unwrap_err().to_string(), msg, "{v}");
        }
    }

    #[test]
    fn civil_conversion_is_inverse() {
        for days in (-800_000i64..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            assert!(d >= 1 && d <= days_in(m, y));
        }
    }

    #[test]
    fn berths_own_times_read_as_the_general_parse_reads_them() {
        for t in [
            "2026-12-06T17:22:31.542086654Z",
            "2026-12-06T17:22:31.5Z",
            "2026-12-06T17:22:31Z",
            "0001-01-01T00:00:00Z",
            "1969-12-31T23:59:59.999999999Z",
            "2024-02-29T00:00:00.000000001Z",
            "2000-01-01T00:00:00.120Z",
        ] {
            let fast = parse_utc(t).unwrap_or_else(|| panic!("{t}"));
            assert_eq!(Some(fast), go_parse(RFC3339_NANO, t, None).ok(), "{t}");
            assert_eq!(parse_rfc3339(t), Some(fast));
        }
        // Anything else is left to the general parse, which says what it says.
        for t in [
            "2026-12-06T17:22:31.5+01:00",
            "2026-12-06T7:22:31Z",
            "2026-12-06T17:22:31,5Z",
            "2026-12-06T17:22:31.1234567891Z",
            "2023-02-29T00:00:00Z",
            "2026-13-06T17:22:31Z",
            "2026-12-06T24:22:31Z",
            "2026-12-06T17:22:31.Z",
            "2026-12-06 17:22:31Z",
            "",
            "Z",
        ] {
            assert_eq!(parse_utc(t), None, "{t}");
            assert_eq!(
                parse_rfc3339(t),
                go_parse(RFC3339_NANO, t, None).ok(),
                "{t}"
            );
        }
    }
}
