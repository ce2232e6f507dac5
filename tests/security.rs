//! Seccomp in real containers (errno, kill, and a notify listener that answers a request)
//! and capabilities (inheritable empty unless asked, ambient, unknown names).

mod common;
use common::*;
use serde_json::{json, Value};
use std::os::fd::AsRawFd;

fn seccomp(default: &str, rules: Value) -> Value {
    json!({"defaultAction": default, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
           "syscalls": rules})
}

#[test]
fn seccomp_errno_and_kill_rules() {
    let c = Ctx::new("seccomp");
    let out = c.probe(
        "errno",
        &[
            "sh",
            "-c",
            "grep Seccomp: /proc/self/status; mkdir /tmp/x 2>&1; echo rc=$?; (hostname other); echo hostname=$?",
        ],
        |v| {
            v["root"]["readonly"] = json!(false);
            v["linux"]["seccomp"] = seccomp(
                "SCMP_ACT_ALLOW",
                json!([
                    {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                    {"names": ["sethostname"], "action": "SCMP_ACT_KILL_PROCESS"},
                    {"names": ["no_such_syscall_name"], "action": "SCMP_ACT_ERRNO"}
                ]),
            );
        },
    );
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(
        out.contains("Permission denied"),
        "errno 13 expected: {out}"
    );
    assert!(out.contains("rc=1"), "{out}");
    // SIGSYS (31) killed hostname: the shell sees 128+31.
    assert!(out.contains("hostname=159"), "{out}");
    c.finish();
}

/// noNewPrivileges false with a profile: the filter is loaded while the init still holds
/// CAP_SYS_ADMIN (no no_new_privs needed), so the container runs with NoNewPrivs 0, a
/// filter in place, and its errno rule in effect, without CAP_SYS_ADMIN of its own.
#[test]
fn seccomp_without_no_new_privileges() {
    let c = Ctx::new("seccompnnp");
    let out = c.probe(
        "nnp0",
        &[
            "sh",
            "-c",
            "grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status; mkdir /tmp/x 2>&1; echo rc=$?",
        ],
        |v| {
            v["root"]["readonly"] = json!(false);
            v["process"]["noNewPrivileges"] = json!(false);
            v["linux"]["seccomp"] = seccomp(
                "SCMP_ACT_ALLOW",
                json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]),
            );
        },
    );
    assert!(out.contains("NoNewPrivs:\t0"), "{out}");
    assert!(out.contains("Seccomp:\t2"), "{out}");
    assert!(
        out.contains("Permission denied"),
        "errno 13 expected: {out}"
    );
    assert!(out.contains("rc=1"), "{out}");
    c.finish();
}

/// SCMP_ACT_NOTIFY: the listener fd reaches listenerPath with the state and metadata, and
/// the listener answers the container's mkdir with EPERM.
#[test]
fn seccomp_notify_listener_answers_a_request() {
    let c = Ctx::new("notifysc");
    let sock = c.dir.join("listener.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let agent = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (buf, fd) = recv_with_fd(&conn);
        let raw = fd.as_raw_fd();
        let n = buf.len();
        let state: Value = serde_json::from_slice(&buf[..n]).unwrap();
        let link = std::fs::read_link(format!("/proc/self/fd/{raw}")).unwrap();
        // One request: answer it with EPERM.
        // SAFETY: plain-old-data kernel structs, zero-initialised, valid for the ioctls.
        let nr = unsafe {
            let mut req: libc::seccomp_notif = std::mem::zeroed();
            assert_eq!(
                libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req),
                0,
                "NOTIF_RECV: {}",
                std::io::Error::last_os_error()
            );
            let mut resp: libc::seccomp_notif_resp = std::mem::zeroed();
            resp.id = req.id;
            resp.error = -libc::EPERM;
            assert_eq!(
                libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp),
                0
            );
            req.data.nr
        };
        (state, link.to_string_lossy().into_owned(), nr)
    });
    let out = c.probe("n", &["sh", "-c", "mkdir /tmp/y 2>&1; echo rc=$?"], |v| {
        v["root"]["readonly"] = json!(false);
        let mut sc = seccomp(
            "SCMP_ACT_ALLOW",
            json!([{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]),
        );
        sc["listenerPath"] = json!(sock.to_str().unwrap());
        sc["listenerMetadata"] = json!("from-the-test");
        v["linux"]["seccomp"] = sc;
    });
    let (state, link, nr) = agent.join().unwrap();
    assert!(link.contains("seccomp"), "not a seccomp listener: {link}");
    assert_eq!(state["fds"], json!(["seccompFd"]));
    assert_eq!(state["metadata"], "from-the-test");
    assert!(
        state["state"]["id"].as_str().unwrap().ends_with("-n"),
        "{state}"
    );
    assert!(
        nr == libc::SYS_mkdir as i32 || nr == libc::SYS_mkdirat as i32,
        "notified syscall {nr}"
    );
    assert!(
        out.contains("Operation not permitted") && out.contains("rc=1"),
        "{out}"
    );
    c.finish();
}

fn caps_of(v: &Value, set: &str) -> u64 {
    u64::from_str_radix(v["caps"][set].as_str().unwrap(), 16).unwrap()
}

#[test]
fn capabilities_sets_and_unknown_names() {
    let c = Ctx::new("caps");
    const NET_BIND: u64 = 1 << 10;
    // CVE-2022-29162: nothing inheritable unless the config asks.
    let v = c.probe_json("default", &[], |_| {});
    assert_eq!(caps_of(&v, "inheritable"), 0);
    assert_eq!(caps_of(&v, "ambient"), 0);
    assert_eq!(caps_of(&v, "effective") & NET_BIND, NET_BIND);
    // Ambient for a non-root user: effective after exec.
    let v = c.probe_json("ambient", &[], |v| {
        v["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        let set = json!(["CAP_NET_BIND_SERVICE"]);
        for s in [
            "bounding",
            "effective",
            "permitted",
            "inheritable",
            "ambient",
        ] {
            v["process"]["capabilities"][s] = set.clone();
        }
    });
    assert_eq!(caps_of(&v, "ambient"), NET_BIND);
    assert_eq!(caps_of(&v, "effective"), NET_BIND);
    assert_eq!(caps_of(&v, "bounding"), NET_BIND);
    // An unknown name (a newer kernel's, or a typo) is skipped with a warning.
    let id = c.id("unknown");
    let mut b = c.bundle_for(&id, &["true"]);
    b.config["process"]["capabilities"]["bounding"] = json!(["CAP_KILL", "CAP_FROM_THE_FUTURE"]);
    let out = c.run(&b, &id);
    out.ok();
    assert!(out.stderr.contains("CAP_FROM_THE_FUTURE"), "{}", out.stderr);
    c.finish();
}

/// The init is non-dumpable until it execs, so that nothing of its uid without
/// CAP_SYS_PTRACE can ptrace it or read its memory, environ or fds while it still holds
/// berth's state. Observed from a createRuntime hook running as root without
/// CAP_SYS_PTRACE: the same uid as the init, so on a dumpable init the read would succeed
/// (ptrace_may_access checks dumpability only after the uid match). After exec the
/// container's process is dumpable again: the same read succeeds. (Checks the property,
/// not one mechanism: turning child.rs's set_dumpable(false) into true alone does not make
/// it fail, something later in the init's setup also leaves it non-dumpable.)
#[test]
fn init_is_not_dumpable_until_exec() {
    let c = Ctx::new("dumpable");
    let log = c.dir.join("log");
    std::fs::create_dir_all(&log).unwrap();
    let l = log.to_str().unwrap();
    let read_environ = |pid: &str| {
        format!(
            "setpriv --bounding-set=-sys_ptrace --inh-caps=-all -- \
             sh -c 'cat /proc/{pid}/environ >/dev/null 2>&1 && echo READ || echo DENIED'"
        )
    };
    let observer = json!({"path": "/bin/sh", "args": ["sh", "-c", format!(
        "pid=$(grep -o '\"pid\": *[0-9]*' | grep -o '[0-9]*$'); {} > {l}/createRuntime",
        read_environ("$pid"))]});
    let id = c.id("d");
    let mut b = c.bundle_for(&id, &["sleep", "30"]);
    b.config["hooks"] = json!({"createRuntime": [observer]});
    let pid = c.create(&b, &id);
    let seen = std::fs::read_to_string(log.join("createRuntime")).unwrap();
    assert_eq!(seen.trim(), "DENIED", "the init was dumpable before exec");
    c.rt(&["start", &id]).ok();
    // Once the init has exec'd `sleep`, the same observer reads its environ.
    let mut after = String::new();
    for _ in 0..100 {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim() == "sleep" {
            after = output_of(
                std::process::Command::new("sh").args(["-c", &read_environ(&pid.to_string())]),
            )
            .stdout
            .iter()
            .map(|&b| b as char)
            .collect();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(after.trim(), "READ");
    c.rt(&["delete", "-f", &id]).ok();
    c.finish();
}
