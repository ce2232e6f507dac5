//! OCI hooks (runtime-spec config.md "POSIX-platform Hooks"): each hook is a program run
//! with exactly its own args and env, the container state JSON on stdin, and an optional
//! timeout in seconds.
//!
//! One hook at a time, supervised from this thread with poll(2): the OCI paths stay
//! single-threaded, a hook that never reads its stdin cannot block us past its timeout, and
//! a hook that leaves a daemon holding its stdout/stderr does not hold us once it exits.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use oci_spec::runtime::Hook;

use crate::error::errno_text;

/// How much of a failing hook's output ends up in the error.
const OUTPUT_TAIL: usize = 4096;

/// Longest sleep between two checks of whether the hook has exited: bounds how late a
/// timeout or an exit is noticed while the hook is quiet.
const MAX_NAP: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub(crate) enum HookError {
    #[error("{kind} hook {}: path must be absolute", path.display())]
    RelativePath { kind: String, path: PathBuf },
    #[error("{kind} hook {}: timeout must be greater than zero, got {timeout}", path.display())]
    BadTimeout {
        kind: String,
        path: PathBuf,
        timeout: i64,
    },
    #[error("{kind} hook {}: {}", path.display(), errno_text(source))]
    Start {
        kind: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{kind} hook {}: timed out after {secs}s", path.display())]
    Timeout {
        kind: String,
        path: PathBuf,
        secs: i64,
    },
    #[error("{kind} hook {}: {status}{}", path.display(), with_output(output))]
    Failed {
        kind: String,
        path: PathBuf,
        status: String,
        output: String,
    },
    #[error("{kind} hook {}: wait: {}", path.display(), errno_text(source))]
    Wait {
        kind: String,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn with_output(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

/// Runs `hooks` in order and stops at the first failure (prestart, createRuntime,
/// createContainer, startContainer: a failing hook fails the operation).
pub(crate) fn run_hooks(hooks: &[Hook], state_json: &[u8], kind: &str) -> Result<(), HookFailed> {
    run_hooks_at(hooks, state_json, kind, None)
}

/// As [`run_hooks`], each hook started in `cwd`: runc runs prestart and createRuntime hooks
/// in the bundle and createContainer hooks in the rootfs, and hooks written for runc use
/// paths relative to those (`touch ./lib/...`).
pub(crate) fn run_hooks_in(
    hooks: &[Hook],
    state_json: &[u8],
    kind: &str,
    cwd: &Path,
) -> Result<(), HookFailed> {
    run_hooks_at(hooks, state_json, kind, Some(cwd))
}

fn run_hooks_at(
    hooks: &[Hook],
    state_json: &[u8],
    kind: &str,
    cwd: Option<&Path>,
) -> Result<(), HookFailed> {
    hooks.iter().enumerate().try_for_each(|(index, h)| {
        run_hook(h, state_json, kind, cwd).map_err(|error| HookFailed { index, error })
    })
}

/// A hook of a list that failed, in runc's words ("error running hook #0: ..."), which
/// callers look for.
#[derive(Debug, thiserror::Error)]
#[error("error running hook #{index}: {error}")]
pub(crate) struct HookFailed {
    pub(crate) index: usize,
    pub(crate) error: HookError,
}

/// Runs every hook even when some fail, returning the failures as warnings (poststart,
/// poststop: the spec says a failure is logged and the rest still run).
pub(crate) fn run_hooks_warn(hooks: &[Hook], state_json: &[u8], kind: &str) -> Vec<String> {
    hooks
        .iter()
        .enumerate()
        .filter_map(|(index, h)| {
            run_hook(h, state_json, kind, None)
                .err()
                .map(|error| HookFailed { index, error })
        })
        .map(|e| e.to_string())
        .collect()
}

/// What is wrong with a hook as configured, before anything runs: the field (`path` or
/// `timeout`) and why. Planning refuses such a config; run_hook still checks hooks that come
/// from elsewhere (a state record).
pub(crate) fn invalid(hook: &Hook) -> Option<(&'static str, String)> {
    if !hook.path().is_absolute() {
        return Some((
            "path",
            format!("{} is not an absolute path", hook.path().display()),
        ));
    }
    match hook.timeout() {
        Some(t) if t <= 0 => Some(("timeout", format!("must be greater than zero, got {t}"))),
        _ => None,
    }
}

fn run_hook(
    hook: &Hook,
    state_json: &[u8],
    kind: &str,
    cwd: Option<&Path>,
) -> Result<(), HookError> {
    let path = hook.path().clone();
    if !path.is_absolute() {
        return Err(HookError::RelativePath {
            kind: kind.into(),
            path,
        });
    }
    let timeout = match hook.timeout() {
        Some(t) if t <= 0 => {
            return Err(HookError::BadTimeout {
                kind: kind.into(),
                path,
                timeout: t,
            })
        }
        other => other,
    };

    let mut cmd = command(&path, hook);
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().map_err(|source| HookError::Start {
        kind: kind.into(),
        path: path.clone(),
        source,
    })?;
    let deadline =
        timeout.map(|t| Instant::now() + Duration::from_secs(u64::try_from(t).unwrap_or(0)));
    let done = supervise(&mut child, state_json, deadline).map_err(|source| HookError::Wait {
        kind: kind.into(),
        path: path.clone(),
        source,
    })?;

    match done.status {
        None => Err(HookError::Timeout {
            kind: kind.into(),
            path,
            secs: timeout.unwrap_or(0),
        }),
        Some(st) if st.success() => Ok(()),
        Some(st) => {
            // stderr is where a hook explains itself; fall back to stdout for hooks
            // that print their complaint there.
            let output = match one_line(&done.stderr.buf) {
                s if s.is_empty() => one_line(&done.stdout.buf),
                s => s,
            };
            Err(HookError::Failed {
                kind: kind.into(),
                path,
                status: describe(st),
                output,
            })
        }
    }
}

fn command(path: &Path, hook: &Hook) -> Command {
    let mut cmd = Command::new(path);
    // args[0] is argv[0], as execv(3); with no args the hook sees its path, as runc does.
    if let Some((first, rest)) = hook.args().as_deref().and_then(|a| a.split_first()) {
        cmd.arg0(first).args(rest);
    }
    // The hook's environment is exactly its env list, nothing inherited from berth.
    cmd.env_clear();
    for entry in hook.env().iter().flatten() {
        // An entry without '=' (or with an empty name) cannot be expressed through
        // Command and names no usable variable: skip it.
        if let Some((k, v)) = entry.split_once('=') {
            if !k.is_empty() {
                cmd.env(k, v);
            }
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills what the hook started too
        // (`sh -c "sleep 100"` would otherwise leave the sleep behind).
        .process_group(0);
    cmd
}

fn describe(st: ExitStatus) -> String {
    if let Some(code) = st.code() {
        return format!("exit status {code}");
    }
    match st.signal() {
        Some(sig) => {
            let name =
                Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.as_str().into());
            match crate::signals::describe(sig) {
                Some(what) => format!("killed by signal {name} ({what})"),
                None => format!("killed by signal {name}"),
            }
        }
        None => st.to_string(),
    }
}

/// The last bytes of an output stream.
#[derive(Default)]
struct Tail {
    buf: Vec<u8>,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.buf.len() > OUTPUT_TAIL {
            let cut = self.buf.len() - OUTPUT_TAIL;
            self.buf.drain(..cut);
        }
    }
}

/// Hook output as one line for a log record: the tail (starting at a character
/// boundary), lines trimmed, blank lines dropped, joined with "; ".
fn one_line(buf: &[u8]) -> String {
    let start = buf
        .iter()
        .position(|b| b & 0xC0 != 0x80)
        .unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[start..])
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

struct Finished {
    /// None: killed at the deadline.
    status: Option<ExitStatus>,
    stdout: Tail,
    stderr: Tail,
}

fn set_nonblocking(fd: impl AsFd) -> std::io::Result<()> {
    let flags = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL)?);
    fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Feeds stdin and collects output until the hook exits or the deadline passes.
fn supervise(
    child: &mut Child,
    input: &[u8],
    deadline: Option<Instant>,
) -> std::io::Result<Finished> {
    let result = pump(child, input, deadline);
    if result.is_err() {
        // Never leave a hook running behind an error.
        kill(child);
    }
    result
}

fn pump(child: &mut Child, input: &[u8], deadline: Option<Instant>) -> std::io::Result<Finished> {
    let mut stdin: Option<ChildStdin> = child.stdin.take().filter(|_| !input.is_empty());
    let mut stdout: Option<ChildStdout> = child.stdout.take();
    let mut stderr: Option<ChildStderr> = child.stderr.take();
    if let Some(s) = &stdin {
        set_nonblocking(s)?;
    }
    if let Some(s) = &stdout {
        set_nonblocking(s)?;
    }
    if let Some(s) = &stderr {
        set_nonblocking(s)?;
    }
    let mut written = 0usize;
    let mut out = Tail::default();
    let mut err = Tail::default();
    let mut nap = Duration::from_millis(1);

    loop {
        if let Some(status) = child.try_wait()? {
            // Take what is already buffered, but do not wait for EOF: a daemon the hook
            // started may hold the pipes open for ever.
            read_available(&mut stdout, &mut out);
            read_available(&mut stderr, &mut err);
            return Ok(Finished {
                status: Some(status),
                stdout: out,
                stderr: err,
            });
        }
        let now = Instant::now();
        let mut wait = nap;
        if let Some(d) = deadline {
            if now >= d {
                kill(child);
                return Ok(Finished {
                    status: None,
                    stdout: out,
                    stderr: err,
                });
            }
            wait = wait.min(d - now);
        }

        let (want_in, got_out, got_err) = {
            let mut fds = Vec::with_capacity(3);
            let mut slot = [None; 3];
            if let Some(s) = &stdin {
                slot[0] = Some(fds.len());
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLOUT));
            }
            if let Some(s) = &stdout {
                slot[1] = Some(fds.len());
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            if let Some(s) = &stderr {
                slot[2] = Some(fds.len());
                fds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
            }
            let ms = u16::try_from(wait.as_micros().div_ceil(1000)).unwrap_or(u16::MAX);
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let ready = |i: Option<usize>| {
                i.and_then(|i| fds[i].revents())
                    .is_some_and(|r| !r.is_empty())
            };
            (ready(slot[0]), ready(slot[1]), ready(slot[2]))
        };

        if want_in {
            write_available(&mut stdin, input, &mut written);
        }
        if got_out {
            read_available(&mut stdout, &mut out);
        }
        if got_err {
            read_available(&mut stderr, &mut err);
        }
        if got_out || got_err || want_in {
            nap = Duration::from_millis(1);
        } else {
            nap = (nap * 2).min(MAX_NAP);
        }
    }
}

/// Writes as much of the state as the pipe takes; closes stdin when done (EOF for the
/// hook) or when the hook stopped reading (EPIPE: not our failure, the spec does not
/// oblige a hook to read its stdin).
fn write_available(stdin: &mut Option<ChildStdin>, input: &[u8], written: &mut usize) {
    let Some(s) = stdin else { return };
    loop {
        match s.write(&input[*written..]) {
            Ok(0) => break,
            Ok(n) => {
                *written += n;
                if *written == input.len() {
                    *stdin = None;
                    return;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    *stdin = None;
}

/// Reads what is there without blocking; closes the pipe at EOF.
fn read_available<R: Read>(pipe: &mut Option<R>, tail: &mut Tail) {
    let Some(p) = pipe else { return };
    let mut buf = [0u8; 8192];
    loop {
        match p.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => tail.push(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    *pipe = None;
}

/// SIGKILL the hook's process group, then the hook itself in case it left the group,
/// and reap it.
fn kill(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const SH: &str = "/bin/sh";

    fn scratch() -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "berth-hooks-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// A hook running `script` with sh. Scripts are plain files read by /bin/sh rather
    /// than executables: a test thread forking while another still has a fresh
    /// executable open for writing would make exec fail with ETXTBSY.
    fn script_hook(dir: &Path, name: &str, script: &str, timeout: Option<i64>) -> Hook {
        let file = dir.join(name);
        std::fs::write(&file, script).unwrap();
        let mut b = HookBuilder::default()
            .path(SH)
            .args(vec!["sh".to_string(), file.display().to_string()]);
        if let Some(t) = timeout {
            b = b.timeout(t);
        }
        b.build().unwrap()
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn runs_in_order() {
        let d = scratch();
        let log = d.join("log");
        let hooks: Vec<Hook> = (1..=3)
            .map(|i| {
                script_hook(
                    &d,
                    &format!("h{i}"),
                    &format!("echo {i} >> {}\n", log.display()),
                    None,
                )
            })
            .collect();
        run_hooks(&hooks, b"{}", "createRuntime").unwrap();
        assert_eq!(read(&log), "1\n2\n3\n");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn state_arrives_on_stdin() {
        let d = scratch();
        let got = d.join("got");
        let state =
            br#"{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42,"bundle":"/b"}"#;
        let h = script_hook(&d, "h", &format!("cat > {}\n", got.display()), None);
        run_hooks(&[h], state, "prestart").unwrap();
        assert_eq!(std::fs::read(&got).unwrap(), state);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn env_is_exactly_the_hooks() {
        let d = scratch();
        let got = d.join("env");
        let mut h = script_hook(
            &d,
            "h",
            &format!("tr '\\0' '\\n' < /proc/$$/environ > {}\n", got.display()),
            None,
        );
        h.set_env(Some(vec![
            "FOO=bar".into(),
            "EMPTY=".into(),
            "EQ=a=b".into(),
            "NOEQUALS".into(),
        ]));
        run_hooks(&[h], b"{}", "poststart").unwrap();
        let mut lines: Vec<String> = read(&got).lines().map(String::from).collect();
        lines.sort();
        assert_eq!(lines, vec!["EMPTY=", "EQ=a=b", "FOO=bar"]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn args_and_arg0() {
        let d = scratch();
        let got = d.join("argv");
        let file = d.join("s");
        std::fs::write(
            &file,
            format!("tr '\\0' '\\n' < /proc/$$/cmdline > {}\n", got.display()),
        )
        .unwrap();
        let h = HookBuilder::default()
            .path(SH)
            .args(vec![
                "my-hook".to_string(),
                file.display().to_string(),
                "a".into(),
                "b c".into(),
            ])
            .build()
            .unwrap();
        run_hooks(&[h], b"{}", "createContainer").unwrap();
        let argv: Vec<String> = read(&got).lines().map(String::from).collect();
        assert_eq!(
            argv,
            vec!["my-hook", &file.display().to_string(), "a", "b c"]
        );

        // Without args the hook's argv[0] is its path.
        let h = HookBuilder::default()
            .path(SH)
            .args(vec![])
            .build()
            .unwrap();
        run_hooks(&[h], b"", "createContainer").unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn process_gone(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // A zombie waiting for its new parent to reap it is dead too.
            Ok(s) => s
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        }
    }

    #[test]
    fn timeout_kills_the_hook_and_its_children() {
        let d = scratch();
        let pidfile = d.join("pid");
        let h = script_hook(
            &d,
            "h",
            &format!("sleep 100 &\necho $! > {}\nwait\n", pidfile.display()),
            Some(1),
        );
        let t0 = Instant::now();
        let err = run_hooks(&[h], b"{}", "createRuntime").unwrap_err();
        let took = t0.elapsed();
        // Not waiting for the sleep (100 s); how far past 1 s depends on the machine's load.
        assert!(
            took >= Duration::from_secs(1) && took < Duration::from_secs(30),
            "{took:?}"
        );
        assert_eq!(
            err.to_string(),
            "error running hook #0: createRuntime hook /bin/sh: timed out after 1s"
        );
        let pid: i32 = read(&pidfile).trim().parse().unwrap();
        let t1 = Instant::now();
        while !process_gone(pid) && t1.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(process_gone(pid), "sleep {pid} survived the hook's timeout");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn hook_that_never_reads_nor_exits_still_times_out() {
        let d = scratch();
        let h = script_hook(&d, "h", "exec sleep 100\n", Some(1));
        let state = vec![b'x'; 1 << 20];
        let t0 = Instant::now();
        let err = run_hooks(&[h], &state, "startContainer").unwrap_err();
        assert!(
            matches!(err.error, HookError::Timeout { secs: 1, .. }),
            "{err}"
        );
        // The hook's sleep is 100 s: well under that is the 1 s timeout at work.
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn failure_names_kind_path_status_and_stderr() {
        let d = scratch();
        let h = script_hook(
            &d,
            "h",
            "echo progress\necho 'first problem' >&2\necho '  second problem  ' >&2\nexit 3\n",
            None,
        );
        let err = run_hooks(&[h], b"{}", "poststop").unwrap_err();
        assert_eq!(
            err.to_string(),
            "error running hook #0: poststop hook /bin/sh: exit status 3: first problem; second problem"
        );

        // Nothing on stderr: stdout explains.
        let h = script_hook(&d, "h2", "echo only stdout\nexit 1\n", None);
        let err = run_hooks(&[h], b"{}", "prestart").unwrap_err();
        assert_eq!(
            err.to_string(),
            "error running hook #0: prestart hook /bin/sh: exit status 1: only stdout"
        );

        let h = script_hook(&d, "h3", "kill -TERM $$\n", None);
        let err = run_hooks(&[h], b"{}", "prestart").unwrap_err();
        assert_eq!(
            err.to_string(),
            "error running hook #0: prestart hook /bin/sh: killed by signal SIGTERM (terminated)"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn long_stderr_keeps_the_tail() {
        let d = scratch();
        let h = script_hook(
            &d,
            "h",
            "i=0\nwhile [ $i -lt 2000 ]; do echo \"line $i\" >&2; i=$((i+1)); done\nexit 1\n",
            None,
        );
        let err = run_hooks(&[h], b"{}", "poststop").unwrap_err().to_string();
        assert!(err.ends_with("line 1999"), "{}", &err[err.len() - 40..]);
        assert!(!err.contains("line 0;"));
        // "; " replaces each newline, so the line grows a little past the tail size.
        assert!(err.len() < OUTPUT_TAIL * 5 / 4, "{}", err.len());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn unread_large_state_is_not_a_failure() {
        let d = scratch();
        let state = vec![b'{'; 1 << 20];
        let h = script_hook(&d, "h", "exit 0\n", None);
        run_hooks(&[h], &state, "createRuntime").unwrap();
        // A hook reading only part of it is fine too.
        let h = script_hook(&d, "h2", "head -c 10 > /dev/null\n", Some(5));
        run_hooks(&[h], &state, "createRuntime").unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn daemon_holding_output_does_not_hold_us() {
        let d = scratch();
        let pidfile = d.join("pid");
        let h = script_hook(
            &d,
            "h",
            &format!("sleep 100 &\necho $! > {}\nexit 0\n", pidfile.display()),
            None,
        );
        let t0 = Instant::now();
        run_hooks(&[h], b"{}", "poststart").unwrap();
        // Well under the daemon's 100 s, however slow a loaded machine is to start sh.
        assert!(t0.elapsed() < Duration::from_secs(30), "{:?}", t0.elapsed());
        if let Ok(pid) = read(&pidfile).trim().parse::<i32>() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_hooks_are_refused() {
        let h = HookBuilder::default().path("bin/true").build().unwrap();
        assert_eq!(
            run_hooks(&[h], b"{}", "prestart").unwrap_err().to_string(),
            "error running hook #0: prestart hook bin/true: path must be absolute"
        );
        let h = HookBuilder::default()
            .path("/bin/true")
            .timeout(0)
            .build()
            .unwrap();
        assert_eq!(
            run_hooks(&[h], b"{}", "prestart").unwrap_err().to_string(),
            "error running hook #0: prestart hook /bin/true: timeout must be greater than zero, got 0"
        );
        let h = HookBuilder::default()
            .path("/nonexistent/hook")
            .build()
            .unwrap();
        assert_eq!(
            run_hooks(&[h], b"{}", "createRuntime")
                .unwrap_err()
                .to_string(),
            "error running hook #0: createRuntime hook /nonexistent/hook: no such file or directory"
        );
    }

    #[test]
    fn first_failure_stops_strict_mode() {
        let d = scratch();
        let log = d.join("log");
        let hooks = vec![
            script_hook(&d, "a", "exit 7\n", None),
            script_hook(&d, "b", &format!("echo b >> {}\n", log.display()), None),
        ];
        let err = run_hooks(&hooks, b"{}", "createRuntime").unwrap_err();
        assert!(err.to_string().contains("exit status 7"), "{err}");
        assert!(!log.exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn warn_mode_runs_every_hook() {
        let d = scratch();
        let log = d.join("log");
        let hooks = vec![
            script_hook(&d, "a", "echo bad >&2\nexit 2\n", None),
            script_hook(&d, "b", &format!("echo b >> {}\n", log.display()), None),
            HookBuilder::default().path("relative").build().unwrap(),
            script_hook(&d, "c", &format!("echo c >> {}\n", log.display()), None),
        ];
        let warnings = run_hooks_warn(&hooks, b"{}", "poststop");
        assert_eq!(
            warnings,
            vec![
                "error running hook #0: poststop hook /bin/sh: exit status 2: bad".to_string(),
                "error running hook #2: poststop hook relative: path must be absolute".to_string(),
            ]
        );
        assert_eq!(read(&log), "b\nc\n");
        assert!(run_hooks_warn(&hooks[1..2], b"{}", "poststart").is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn one_line_starts_on_a_character() {
        let mut t = Tail::default();
        t.push("é".repeat(OUTPUT_TAIL).as_bytes());
        // Odd cut: the tail begins with a continuation byte, which is skipped.
        t.buf.remove(0);
        let s = one_line(&t.buf);
        assert!(!s.starts_with('\u{FFFD}'));
        assert!(s.chars().all(|c| c == 'é'));
    }
}
