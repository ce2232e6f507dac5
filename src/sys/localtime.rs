//! The local time zone's UTC offset, as libc computes it (TZ, else /etc/localtime): what
//! Docker's `--since` without a zone and conmon's k8s-file timestamps are written in.

/// The offset from UTC, in seconds east, of local time at `unix_secs`; 0 when libc cannot
/// convert the time.
pub(crate) fn local_utc_offset(unix_secs: i64) -> i32 {
    // time_t, inferred: musl's libc crate deprecates naming it while it changes width.
    let t = unix_secs as _;
    // SAFETY: libc::tm is plain data (integers and a nullable pointer); all-zero is valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r reads `t` and writes only into `tm`, both valid for the call.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        return 0;
    }
    tm.tm_gmtoff as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    const INSTANTS: [i64; 2] = [1_700_000_000, 1_720_000_000];

    fn date_offset(tz: &str, secs: i64) -> i32 {
        let out = std::process::Command::new("date")
            .env("TZ", tz)
            .args(["-d", &format!("@{secs}"), "+%z"])
            .output()
            .expect("date");
        let z = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let hh: i32 = z[1..3].parse().unwrap();
        let mm: i32 = z[3..5].parse().unwrap();
        sign * (hh * 3600 + mm * 60)
    }

    /// Run by `offset_follows_tz` in a child process with TZ set (changing the
    /// environment of this multi-threaded test process would race).
    #[test]
    fn child_reports_offsets() {
        if std::env::var_os("BERTH_LOCALTIME_CHILD").is_some() {
            let offs: Vec<String> = INSTANTS
                .iter()
                .map(|&s| local_utc_offset(s).to_string())
                .collect();
            println!("OFFSETS {}", offs.join(" "));
        }
    }

    #[test]
    fn offset_follows_tz() {
        // A POSIX TZ rule needs no zone database: EST in winter, EDT in summer.
        let tz = "EST5EDT,M3.2.0,M11.1.0";
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env("TZ", tz)
            .env("BERTH_LOCALTIME_CHILD", "1")
            .args([
                "--exact",
                "sys::localtime::tests::child_reports_offsets",
                "--nocapture",
            ])
            .output()
            .expect("test binary");
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find(|l| l.starts_with("OFFSETS "))
            .expect("child output");
        let got: Vec<i32> = line[8..].split(' ').map(|s| s.parse().unwrap()).collect();
        assert_eq!(got, vec![-5 * 3600, -4 * 3600]);
        let want: Vec<i32> = INSTANTS.iter().map(|&s| date_offset(tz, s)).collect();
        assert_eq!(got, want);
        // And this process's own zone agrees with date(1) under the same environment.
        let own = std::env::var("TZ").unwrap_or_else(|_| ":/etc/localtime".into());
        for s in INSTANTS {
            assert_eq!(local_utc_offset(s), date_offset(&own, s));
        }
    }
}
