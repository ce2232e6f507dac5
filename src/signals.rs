//! Signal names as users type them, for both faces (`kill ID TERM`, `--stop-signal`).

/// A name or number that is not a signal; the text is the caller's.
#[derive(Debug, thiserror::Error)]
#[error("invalid signal: {0}")]
pub(crate) struct InvalidSignal(String);

/// A signal by name (KILL, SIGKILL, sigkill, RTMIN+3) or number (1..=64).
pub(crate) fn parse_signal(s: &str) -> Result<i32, InvalidSignal> {
    let bad = || InvalidSignal(s.to_string());
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    if let Some(rt) = name.strip_prefix("SIGRTMIN") {
        let off: i32 = if rt.is_empty() {
            0
        } else {
            rt.trim_start_matches('+').parse().map_err(|_| bad())?
        };
        return Ok(libc::SIGRTMIN() + off);
    }
    name.parse::<nix::sys::signal::Signal>()
        .map(|s| s as i32)
        .map_err(|_| bad())
}

/// What a signal means, in the words of strsignal(3) and Go's os/exec ("bad system call"
/// for SIGSYS): how runc words a hook killed by a signal, which callers grep for.
pub(crate) fn describe(sig: i32) -> Option<&'static str> {
    Some(match sig {
        libc::SIGHUP => "hangup",
        libc::SIGINT => "interrupt",
        libc::SIGQUIT => "quit",
        libc::SIGILL => "illegal instruction",
        libc::SIGTRAP => "trace/breakpoint trap",
        libc::SIGABRT => "aborted",
        libc::SIGBUS => "bus error",
        libc::SIGFPE => "floating point exception",
        libc::SIGKILL => "killed",
        libc::SIGUSR1 => "user defined signal 1",
        libc::SIGSEGV => "segmentation fault",
        libc::SIGUSR2 => "user defined signal 2",
        libc::SIGPIPE => "broken pipe",
        libc::SIGALRM => "alarm clock",
        libc::SIGTERM => "terminated",
        libc::SIGXCPU => "CPU time limit exceeded",
        libc::SIGXFSZ => "file size limit exceeded",
        libc::SIGSYS => "bad system call",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        for s in ["KILL", "SIGKILL", "sigkill", "kill", "9"] {
            assert_eq!(parse_signal(s).unwrap(), libc::SIGKILL, "{s}");
        }
        assert_eq!(parse_signal("TERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("64").unwrap(), 64);
        assert_eq!(parse_signal("RTMIN").unwrap(), libc::SIGRTMIN());
        assert_eq!(parse_signal("SIGRTMIN+3").unwrap(), libc::SIGRTMIN() + 3);
        for s in ["0", "65", "-1", "NOPE", "SIGRTMIN+x", ""] {
            assert_eq!(
                parse_signal(s).unwrap_err().to_string(),
                format!("invalid signal: {s}")
            );
        }
    }
}
