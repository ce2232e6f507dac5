//! runc-compatible logging: text (`time="…" level=error msg="…"`) or JSON, one record per line,
//! to the `--log` file or stderr. Only main logs errors, once.

use std::fs::OpenOptions;
use std::io::Write;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Format {
    Text,
    Json,
    /// The people face: `Error: ...` and `WARNING: ...` on stderr, as Docker's CLI.
    People,
}

struct Logger {
    path: Option<String>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

pub(crate) fn init(path: Option<String>, format: Format, debug: bool) {
    if let Some(p) = &path {
        // runc opens its log at start: the file exists after any command, callers that
        // read it (containerd's shim, podman) never find it missing.
        let _ = OpenOptions::new().create(true).append(true).open(p);
    }
    let _ = LOGGER.set(Logger {
        path,
        format,
        debug,
    });
}

pub(crate) fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.debug)
}

pub(crate) fn error(msg: &str) {
    log("error", msg)
}

pub(crate) fn warn(msg: &str) {
    log("warning", msg)
}

pub(crate) fn debug(msg: &str) {
    if debug_enabled() {
        log("debug", msg)
    }
}

fn log(level: &str, msg: &str) {
    let (path, format) = match LOGGER.get() {
        Some(l) => (l.path.as_deref(), l.format),
        None => (None, Format::Text),
    };
    let line = render(level, msg, &rfc3339(SystemTime::now()), format);
    let written = path.is_some_and(|p| {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .is_ok()
    });
    if !written {
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

fn render(level: &str, msg: &str, time: &str, format: Format) -> String {
    match format {
        Format::Json => {
            let v = serde_json::json!({ "level": level, "msg": msg, "time": time });
            format!("{v}\n")
        }
        Format::People => match level {
            "error" => format!("Error: {msg}\n"),
            l => format!("{}: {msg}\n", l.to_uppercase()),
        },
        Format::Text => format!(
            "time=\"{time}\" level={level} msg={}\n",
            serde_json::Value::String(msg.to_string())
        ),
    }
}

/// RFC 3339 in UTC with nanoseconds, as Go's time.RFC3339Nano prints it.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_nanos()
    )
}

// Howard Hinnant's days-to-civil algorithm: avoids a date crate for one timestamp format.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = UNIX_EPOCH + Duration::new(951_782_400 + 3661, 5);
        assert_eq!(rfc3339(t), "2000-02-29T01:01:01.000000005Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_795_305_600);
        assert_eq!(rfc3339(t), "2026-11-22T00:00:00.000000000Z");
    }

    #[test]
    fn json_record_has_level_msg_time() {
        let line = render("error", "container \"x\" does not exist", "T", Format::Json);
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "container \"x\" does not exist");
        assert_eq!(v["time"], "T");
        assert!(line.ends_with('\n') && line.matches('\n').count() == 1);
    }

    #[test]
    fn people_records_read_as_docker_prints_them() {
        assert_eq!(
            render("error", "No such container: x", "T", Format::People),
            "Error: No such container: x\n"
        );
        assert_eq!(render("warning", "w", "T", Format::People), "WARNING: w\n");
    }

    #[test]
    fn text_record_quotes_message() {
        let line = render("error", "a \"b\"", "T", Format::Text);
        assert_eq!(line, "time=\"T\" level=error msg=\"a \\\"b\\\"\"\n");
    }
}
