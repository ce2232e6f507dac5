//! testinit: a static probe for berth's integration tests. Run as a container's process,
//! it prints what the container sees as one JSON object, read from /proc so that it needs
//! no libc calls and works in an empty rootfs.
//!
//!   testinit                 print the probe JSON
//!   testinit notify MSG      send MSG to $NOTIFY_SOCKET (sd_notify), then print the probe
//!   testinit exit N          exit with status N

use std::fmt::Write as _;
use std::fs;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn arr<I: IntoIterator<Item = String>>(items: I) -> String {
    format!("[{}]", items.into_iter().collect::<Vec<_>>().join(","))
}

fn status_field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or("")
}

fn nums(s: &str) -> String {
    arr(s.split_whitespace().map(str::to_string))
}

fn read(path: &str) -> String {
    fs::read_to_string(path).unwrap_or_default()
}

/// `/proc/self/limits` as {"RLIMIT_NOFILE": [soft, hard], ...}; "unlimited" stays a string.
fn rlimits() -> String {
    const NAMES: &[(&str, &str)] = &[
        ("Max cpu time", "RLIMIT_CPU"),
        ("Max file size", "RLIMIT_FSIZE"),
        ("Max data size", "RLIMIT_DATA"),
        ("Max stack size", "RLIMIT_STACK"),
        ("Max core file size", "RLIMIT_CORE"),
        ("Max resident set", "RLIMIT_RSS"),
        ("Max processes", "RLIMIT_NPROC"),
        ("Max open files", "RLIMIT_NOFILE"),
        ("Max locked memory", "RLIMIT_MEMLOCK"),
        ("Max address space", "RLIMIT_AS"),
        ("Max file locks", "RLIMIT_LOCKS"),
        ("Max pending signals", "RLIMIT_SIGPENDING"),
        ("Max msgqueue size", "RLIMIT_MSGQUEUE"),
        ("Max nice priority", "RLIMIT_NICE"),
        ("Max realtime priority", "RLIMIT_RTPRIO"),
        ("Max realtime timeout", "RLIMIT_RTTIME"),
    ];
    let text = read("/proc/self/limits");
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        if let Some((_, name)) = NAMES.iter().find(|(p, _)| line.starts_with(p)) {
            let rest: Vec<&str> = line[25..].split_whitespace().collect();
            let v = |s: &str| match s.parse::<u64>() {
                Ok(n) => n.to_string(),
                Err(_) => esc(s),
            };
            if rest.len() >= 2 {
                out.push(format!("{}:[{},{}]", esc(name), v(rest[0]), v(rest[1])));
            }
        }
    }
    format!("{{{}}}", out.join(","))
}

fn fds() -> String {
    let mut v: Vec<(u32, String)> = fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let n: u32 = e.file_name().to_str()?.parse().ok()?;
                    let target = fs::read_link(e.path()).ok()?;
                    Some((n, target.to_string_lossy().into_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    // The directory being listed is itself an fd of ours: leave it out.
    v.retain(|(_, t)| !t.starts_with("/proc/") || !t.ends_with("/fd"));
    format!(
        "{{{}}}",
        v.iter()
            .map(|(n, t)| format!("{}:{}", esc(&n.to_string()), esc(t)))
            .collect::<Vec<_>>()
            .join(",")
    )
}

fn probe() -> String {
    let st = read("/proc/self/status");
    let f = |k: &str| esc(status_field(&st, k));
    let env = arr(std::env::vars_os()
        .map(|(k, v)| esc(&format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))));
    let args = arr(std::env::args().map(|a| esc(&a)));
    let cwd = std::env::current_dir()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mounts = arr(read("/proc/self/mountinfo").lines().map(esc));
    let cgroup = arr(read("/proc/self/cgroup").lines().map(esc));
    format!(
        concat!(
            "{{\"pid\":{},\"hostname\":{},\"domainname\":{},\"args\":{},\"uid\":{},\"gid\":{},",
            "\"groups\":{},\"umask\":{},\"cwd\":{},\"env\":{},",
            "\"caps\":{{\"inheritable\":{},\"permitted\":{},\"effective\":{},\"bounding\":{},\"ambient\":{}}},",
            "\"rlimits\":{},\"seccomp\":{},\"no_new_privs\":{},\"oom_score_adj\":{},",
            "\"mounts\":{},\"cgroup\":{},\"fds\":{},\"monotonic\":{}}}"
        ),
        std::process::id(),
        esc(read("/proc/sys/kernel/hostname").trim()),
        esc(read("/proc/sys/kernel/domainname").trim()),
        args,
        nums(status_field(&st, "Uid")),
        nums(status_field(&st, "Gid")),
        nums(status_field(&st, "Groups")),
        f("Umask"),
        esc(&cwd),
        env,
        f("CapInh"),
        f("CapPrm"),
        f("CapEff"),
        f("CapBnd"),
        f("CapAmb"),
        rlimits(),
        f("Seccomp"),
        f("NoNewPrivs"),
        esc(read("/proc/self/oom_score_adj").trim()),
        mounts,
        cgroup,
        fds(),
        monotonic(),
    )
}

/// CLOCK_MONOTONIC in whole seconds (a time namespace's offset shows here).
fn monotonic() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("exit") => {
            let code = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0);
            std::process::exit(code);
        }
        Some("udp-echo") => {
            // A UDP echo server on the port given (network tests).
            let port: u16 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(7);
            let sock = std::net::UdpSocket::bind(("0.0.0.0", port)).expect("bind");
            let mut buf = [0u8; 2048];
            loop {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    let _ = sock.send_to(&buf[..n], from);
                }
            }
        }
        Some("notify") => {
            let msg = args.get(2).cloned().unwrap_or_else(|| "READY=1".into());
            let Ok(path) = std::env::var("NOTIFY_SOCKET") else {
                eprintln!("testinit: NOTIFY_SOCKET is not set");
                std::process::exit(2);
            };
            let sock = std::os::unix::net::UnixDatagram::unbound().expect("socket");
            if let Err(e) = sock.send_to(msg.as_bytes(), &path) {
                eprintln!("testinit: sending to {path}: {e}");
                std::process::exit(2);
            }
        }
        _ => {}
    }
    println!("{}", probe());
}
