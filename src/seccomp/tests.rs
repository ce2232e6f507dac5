//! Compiled programs checked with the BPF interpreter, plus a few tests
//! against the running kernel in forked children.

use oci_spec::runtime::LinuxSeccomp;

use super::interp::{self, Data};
use super::syscalls::{Abi, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use super::{compile, Filter, SeccompError};

const ALLOW: u32 = libc::SECCOMP_RET_ALLOW;
const KILL_PROCESS: u32 = libc::SECCOMP_RET_KILL_PROCESS;
const KILL_THREAD: u32 = libc::SECCOMP_RET_KILL_THREAD;
const AUDIT_ARCH_AARCH64: u32 = 0xc000_00b7;

fn errno(e: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | e as u32
}

fn spec(json: &str) -> LinuxSeccomp {
    serde_json::from_str(json).expect("test profile parses")
}

fn build(json: &str) -> Filter {
    let f = compile(&spec(json)).expect("profile compiles");
    interp::check(&f.program);
    f
}

fn nr(abi: Abi, name: &str) -> u32 {
    abi.number(name)
        .unwrap_or_else(|| panic!("{name} unknown for {abi:?}"))
}

/// Runs the filter for `name` on `abi` with `args`.
fn call(f: &Filter, abi: Abi, name: &str, args: &[u64]) -> u32 {
    call_nr(f, abi.audit_arch(), nr(abi, name), args)
}

fn call_nr(f: &Filter, arch: u32, nr: u32, args: &[u64]) -> u32 {
    let mut a = [0u64; 6];
    a[..args.len()].copy_from_slice(args);
    interp::run(&f.program, &Data { nr, arch, args: a })
}

fn compile_err(json: &str) -> String {
    compile(&spec(json)).unwrap_err().to_string()
}

#[test]
fn default_action_alone() {
    let f = build(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#);
    assert_eq!(call(&f, Abi::X86_64, "mount", &[]), ALLOW);
    assert_eq!(call_nr(&f, AUDIT_ARCH_X86_64, 100_000, &[]), ALLOW);
    // Nothing listed: only the native ABI; everything else is a bad arch.
    assert_eq!(call(&f, Abi::X86, "read", &[]), KILL_PROCESS);
    assert_eq!(call(&f, Abi::X32, "read", &[]), KILL_PROCESS);
    assert_eq!(call_nr(&f, AUDIT_ARCH_AARCH64, 63, &[]), KILL_PROCESS);
    assert_eq!(f.flags, 0);
    assert!(!f.has_notify);
}

#[test]
fn default_errno_ret() {
    let f = build(r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#);
    assert_eq!(call(&f, Abi::X86_64, "read", &[]), errno(libc::EPERM));
    let f = build(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 13}"#);
    assert_eq!(call(&f, Abi::X86_64, "read", &[]), errno(libc::EACCES));
    let f = build(r#"{"defaultAction": "SCMP_ACT_KILL_PROCESS"}"#);
    assert_eq!(call(&f, Abi::X86_64, "read", &[]), KILL_PROCESS);
}

#[test]
fn every_action_kind() {
    let f = build(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 95, "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
            {"names": ["uname"], "action": "SCMP_ACT_KILL"},
            {"names": ["getpid"], "action": "SCMP_ACT_KILL_THREAD"},
            {"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"},
            {"names": ["gettid"], "action": "SCMP_ACT_TRAP", "errnoRet": 5},
            {"names": ["getuid"], "action": "SCMP_ACT_TRACE"},
            {"names": ["getgid"], "action": "SCMP_ACT_TRACE", "errnoRet": 4242},
            {"names": ["geteuid"], "action": "SCMP_ACT_LOG"},
            {"names": ["getegid"], "action": "SCMP_ACT_NOTIFY"}
        ]}"#,
    );
    let x = Abi::X86_64;
    assert_eq!(call(&f, x, "read", &[]), ALLOW);
    assert_eq!(call(&f, x, "write", &[]), errno(libc::EPERM));
    assert_eq!(call(&f, x, "getcwd", &[]), errno(libc::ENOSYS));
    assert_eq!(call(&f, x, "uname", &[]), KILL_THREAD);
    assert_eq!(call(&f, x, "getpid", &[]), KILL_THREAD);
    assert_eq!(call(&f, x, "getppid", &[]), KILL_PROCESS);
    assert_eq!(call(&f, x, "gettid", &[]), libc::SECCOMP_RET_TRAP);
    assert_eq!(call(&f, x, "getuid", &[]), libc::SECCOMP_RET_TRACE | 1);
    assert_eq!(call(&f, x, "getgid", &[]), libc::SECCOMP_RET_TRACE | 4242);
    assert_eq!(call(&f, x, "geteuid", &[]), libc::SECCOMP_RET_LOG);
    assert_eq!(call(&f, x, "getegid", &[]), libc::SECCOMP_RET_USER_NOTIF);
    assert_eq!(call(&f, x, "mount", &[]), errno(libc::EOPNOTSUPP));
    assert!(f.has_notify);
    assert_eq!(f.flags, libc::SECCOMP_FILTER_FLAG_NEW_LISTENER as u32);
}

/// The reference semantics of one comparison, on `bits`-wide arguments.
fn holds(op: &str, arg: u64, value: u64, value_two: u64, wide: bool) -> bool {
    let (arg, value, value_two) = if wide {
        (arg, value, value_two)
    } else {
        (
            arg & 0xffff_ffff,
            value & 0xffff_ffff,
            value_two & 0xffff_ffff,
        )
    };
    match op {
        "SCMP_CMP_NE" => arg != value,
        "SCMP_CMP_LT" => arg < value,
        "SCMP_CMP_LE" => arg <= value,
        "SCMP_CMP_EQ" => arg == value,
        "SCMP_CMP_GE" => arg >= value,
        "SCMP_CMP_GT" => arg > value,
        "SCMP_CMP_MASKED_EQ" => arg & value == value_two,
        _ => unreachable!(),
    }
}

const OPS: [&str; 7] = [
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// Values around the 32-bit boundary, so that high and low halves both
/// decide some comparisons.
const VALUES: [u64; 10] = [
    0,
    1,
    5,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0005,
    0x2_0000_0004,
    0xffff_ffff_0000_0000,
    0x8000_0000_0000_0000,
    u64::MAX,
];

#[test]
fn every_operator_on_64_and_32_bit_abis() {
    let mut checked = 0;
    for op in OPS {
        for value in VALUES {
            let value_two = value & 0x0000_0fff_0000_0f0f;
            let f = build(&format!(
                r#"{{"defaultAction": "SCMP_ACT_ERRNO",
                    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                    "syscalls": [{{"names": ["ioctl"], "action": "SCMP_ACT_ALLOW",
                    "args": [{{"index": 3, "value": {value}, "valueTwo": {value_two}, "op": "{op}"}}]}}]}}"#
            ));
            let mut args = Vec::new();
            for v in VALUES {
                args.extend([v, v.wrapping_add(1), v.wrapping_sub(1), v ^ 0x1_0000_0000]);
                args.push(v & 0x0000_0fff_0000_0f0f);
            }
            for arg in args {
                for abi in [Abi::X86_64, Abi::X32, Abi::X86] {
                    let want = if holds(op, arg, value, value_two, abi.wide_args()) {
                        ALLOW
                    } else {
                        errno(libc::EPERM)
                    };
                    // Only the i386 kernel entry zero-extends; feed it what
                    // the kernel would.
                    let arg = if abi.wide_args() {
                        arg
                    } else {
                        arg & 0xffff_ffff
                    };
                    let got = call(&f, abi, "ioctl", &[0, 0, 0, arg]);
                    assert_eq!(got, want, "{abi:?} {op} value {value:#x} arg {arg:#x}");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 5000);
}

#[test]
fn distinct_args_are_anded() {
    let f = build(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["mmap"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"},
                     {"index": 5, "value": 4294967296, "op": "SCMP_CMP_GE"}]}]}"#,
    );
    let x = Abi::X86_64;
    assert_eq!(call(&f, x, "mmap", &[1, 0, 0, 0, 0, 1 << 32]), ALLOW);
    assert_eq!(call(&f, x, "mmap", &[1, 0, 0, 0, 0, u64::MAX]), ALLOW);
    assert_eq!(call(&f, x, "mmap", &[1, 0, 0, 0, 0, 0xffff_ffff]), errno(1));
    assert_eq!(call(&f, x, "mmap", &[2, 0, 0, 0, 0, 1 << 32]), errno(1));
    assert_eq!(
        call(&f, x, "mmap", &[(1 << 32) | 1, 0, 0, 0, 0, 1 << 32]),
        errno(1)
    );
}

#[test]
fn repeated_arg_index_is_ored_like_runc() {
    let f = build(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                     {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}"#,
    );
    let x = Abi::X86_64;
    assert_eq!(call(&f, x, "personality", &[0]), ALLOW);
    assert_eq!(call(&f, x, "personality", &[8]), ALLOW);
    assert_eq!(call(&f, x, "personality", &[9]), errno(1));
}

#[test]
fn unconditional_rule_wins_and_first_conditional_match_wins() {
    let f = build(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 3, "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 4, "args": [{"index": 1, "value": 5, "op": "SCMP_CMP_GE"}]},
            {"names": ["tkill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 5, "args": [{"index": 1, "value": 9, "op": "SCMP_CMP_EQ"}]},
            {"names": ["tkill"], "action": "SCMP_ACT_KILL_PROCESS"}
        ]}"#,
    );
    let x = Abi::X86_64;
    assert_eq!(call(&f, x, "kill", &[1, 9]), errno(3));
    assert_eq!(call(&f, x, "kill", &[1, 10]), errno(4));
    assert_eq!(call(&f, x, "kill", &[1, 1]), ALLOW);
    assert_eq!(call(&f, x, "tkill", &[1, 9]), KILL_PROCESS);
    assert_eq!(call(&f, x, "tkill", &[1, 1]), KILL_PROCESS);
}

#[test]
fn rules_repeating_the_default_action_are_dropped() {
    let f = build(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["read"], "action": "SCMP_ACT_ERRNO"},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["write"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}
        ]}"#,
    );
    assert_eq!(call(&f, Abi::X86_64, "read", &[]), ALLOW);
    assert_eq!(call(&f, Abi::X86_64, "write", &[1]), ALLOW);
    assert_eq!(call(&f, Abi::X86_64, "write", &[2]), errno(1));
}

#[test]
fn syscalls_newer_than_the_table_get_enosys() {
    let max = Abi::X86_64.max_number();
    let f = build(r#"{"defaultAction": "SCMP_ACT_ERRNO"}"#);
    assert_eq!(
        call_nr(&f, AUDIT_ARCH_X86_64, max + 1, &[]),
        errno(libc::ENOSYS)
    );
    assert_eq!(
        call_nr(&f, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT - 1, &[]),
        errno(libc::ENOSYS)
    );
    assert_eq!(call_nr(&f, AUDIT_ARCH_X86_64, max, &[]), errno(libc::EPERM));
    let f = build(r#"{"defaultAction": "SCMP_ACT_KILL_PROCESS"}"#);
    assert_eq!(
        call_nr(&f, AUDIT_ARCH_X86_64, max + 1, &[]),
        errno(libc::ENOSYS)
    );
    assert_eq!(call_nr(&f, AUDIT_ARCH_X86_64, max, &[]), KILL_PROCESS);
    // Nothing to fall back from when the default lets syscalls through.
    for default in ["SCMP_ACT_ALLOW", "SCMP_ACT_LOG"] {
        let f = build(&format!(r#"{{"defaultAction": "{default}"}}"#));
        assert_ne!(
            call_nr(&f, AUDIT_ARCH_X86_64, max + 1, &[]),
            errno(libc::ENOSYS)
        );
    }
    let f = build(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}"#,
    );
    let i386_max = Abi::X86.max_number();
    assert_eq!(
        call_nr(&f, AUDIT_ARCH_I386, i386_max + 1, &[]),
        errno(libc::ENOSYS)
    );
    assert_eq!(
        call_nr(&f, AUDIT_ARCH_I386, i386_max, &[]),
        errno(libc::EPERM)
    );
    let x32_max = Abi::X32.max_number();
    assert_eq!(
        call_nr(&f, AUDIT_ARCH_X86_64, x32_max + 1, &[]),
        errno(libc::ENOSYS)
    );
    assert_eq!(
        call_nr(&f, AUDIT_ARCH_X86_64, x32_max, &[]),
        errno(libc::EPERM)
    );
}

#[test]
fn x86_compat_uses_its_own_numbers() {
    let f = build(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [{"names": ["uname", "socketcall"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22}]}"#,
    );
    assert_eq!(call(&f, Abi::X86_64, "uname", &[]), errno(libc::EINVAL));
    assert_eq!(call(&f, Abi::X86, "uname", &[]), errno(libc::EINVAL));
    assert_eq!(nr(Abi::X86, "uname"), 122);
    // 63 is uname on x86_64 but dup2 on i386.
    assert_eq!(call_nr(&f, AUDIT_ARCH_I386, 63, &[]), ALLOW);
    assert_eq!(call(&f, Abi::X86, "socketcall", &[]), errno(libc::EINVAL));
    // Known to one listed ABI is enough not to be skipped.
    assert!(f.skipped.is_empty());
    // x32 not listed: its calls are a foreign ABI.
    assert_eq!(call(&f, Abi::X32, "read", &[]), KILL_PROCESS);
}

#[test]
fn x32_shares_the_x86_64_arch_and_has_its_own_numbers() {
    let f = build(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X32"],
            "syscalls": [{"names": ["readv"], "action": "SCMP_ACT_ERRNO", "errnoRet": 7}]}"#,
    );
    assert_eq!(call(&f, Abi::X86_64, "readv", &[]), errno(7));
    assert_eq!(call(&f, Abi::X32, "readv", &[]), errno(7));
    assert_eq!(
        call_nr(&f, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT | 19, &[]),
        ALLOW
    );
    assert_eq!(call(&f, Abi::X86, "readv", &[]), KILL_PROCESS);
}

#[test]
fn unknown_names_and_arches_are_skipped() {
    let f = build(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
            "syscalls": [{"names": ["read", "frobnicate", "socketcall", "frobnicate"], "action": "SCMP_ACT_ALLOW"}]}"#,
    );
    assert_eq!(call(&f, Abi::X86_64, "read", &[]), ALLOW);
    assert_eq!(f.skipped, ["frobnicate", "socketcall"]);
    assert_eq!(f.skipped_arches, ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]);
    assert_eq!(call_nr(&f, AUDIT_ARCH_AARCH64, 63, &[]), KILL_PROCESS);
}

#[test]
fn filter_flags() {
    let f = build(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG",
            "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
    );
    let want = libc::SECCOMP_FILTER_FLAG_LOG | libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    assert_eq!(f.flags, want as u32);
    let f = build(
        r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls": [{"names": ["accept"], "action": "SCMP_ACT_NOTIFY"}]}"#,
    );
    let want =
        libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | libc::SECCOMP_FILTER_FLAG_NEW_LISTENER;
    assert_eq!(f.flags, want as u32);
}

#[test]
fn invalid_profiles_name_the_field() {
    assert_eq!(
        compile_err(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#),
        "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action"
    );
    assert_eq!(
        compile_err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_LOG"},
                {"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}]}"#
        ),
        "linux.seccomp.syscalls[1].action: SCMP_ACT_NOTIFY cannot be used for the write syscall"
    );
    assert_eq!(
        compile_err(r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 65536}"#),
        "linux.seccomp.defaultErrnoRet: 65536 is out of range (at most 65535)"
    );
    assert_eq!(
        compile_err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG"},
                {"names": ["read"], "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}"#
        ),
        "linux.seccomp.syscalls[1].errnoRet: 70000 is out of range (at most 65535)"
    );
    assert_eq!(
        compile_err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#
        ),
        "linux.seccomp.syscalls[0].args[1].index: 6 is out of range (at most 5)"
    );
}

/// Enough rules on one syscall that the skip over its block and the
/// branches out of its rules need `ja` trampolines.
#[test]
fn long_jumps_are_relaxed() {
    let rules: Vec<String> = (0..80)
        .map(|i| {
            format!(
                r#"{{"names": ["ioctl"], "action": "SCMP_ACT_ERRNO", "errnoRet": {e},
                    "args": [{{"index": 1, "value": {i}, "op": "SCMP_CMP_EQ"}}]}}"#,
                e = i + 100
            )
        })
        .collect();
    let f = build(&format!(
        r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{}, {{"names": ["uname"], "action": "SCMP_ACT_KILL"}}]}}"#,
        rules.join(",")
    ));
    assert!(f.program.len() > 256);
    assert!(f.program.iter().any(|i| i.code == 0x05), "no ja emitted");
    for i in [0u64, 1, 40, 79] {
        assert_eq!(
            call(&f, Abi::X86_64, "ioctl", &[3, i]),
            errno(i as i32 + 100)
        );
    }
    assert_eq!(call(&f, Abi::X86_64, "ioctl", &[3, 80]), ALLOW);
    assert_eq!(call(&f, Abi::X86_64, "ioctl", &[3, 1 << 32]), ALLOW);
    assert_eq!(call(&f, Abi::X86_64, "uname", &[]), KILL_THREAD);
    assert_eq!(call(&f, Abi::X86_64, "read", &[]), ALLOW);
}

#[test]
fn too_long_is_an_error() {
    let args: Vec<String> = (0..1000)
        .map(|i| format!(r#"{{"index": 1, "value": {i}, "op": "SCMP_CMP_EQ"}}"#))
        .collect();
    let err = compile(&spec(&format!(
        r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["ioctl"], "action": "SCMP_ACT_KILL", "args": [{}]}}]}}"#,
        args.join(",")
    )))
    .unwrap_err();
    assert!(
        matches!(err, SeccompError::TooLong { max: 4096, .. }),
        "{err}"
    );
    assert!(
        err.to_string()
            .starts_with("linux.seccomp: the filter needs "),
        "{err}"
    );
}

fn docker_like() -> Filter {
    build(include_str!("testdata/default.json"))
}

#[test]
fn docker_like_profile() {
    let f = docker_like();
    assert!(f.program.len() < 2048, "{} instructions", f.program.len());
    // recv and send exist on other arches only, as in Docker's profile.
    assert_eq!(f.skipped, ["recv", "send", "no_such_syscall_for_tests"]);
    let eperm = errno(libc::EPERM);
    for abi in [Abi::X86_64, Abi::X32, Abi::X86] {
        assert_eq!(call(&f, abi, "read", &[]), ALLOW, "{abi:?}");
        assert_eq!(call(&f, abi, "exit_group", &[]), ALLOW, "{abi:?}");
        assert_eq!(call(&f, abi, "mount", &[]), eperm, "{abi:?}");
        assert_eq!(call(&f, abi, "unshare", &[]), eperm, "{abi:?}");
        assert_eq!(call(&f, abi, "personality", &[0]), ALLOW, "{abi:?}");
        assert_eq!(call(&f, abi, "personality", &[8]), ALLOW, "{abi:?}");
        assert_eq!(
            call(&f, abi, "personality", &[0xffff_ffff]),
            ALLOW,
            "{abi:?}"
        );
        assert_eq!(
            call(&f, abi, "personality", &[0x0040_0000]),
            eperm,
            "{abi:?}"
        );
        assert_eq!(call(&f, abi, "clone3", &[]), errno(libc::ENOSYS), "{abi:?}");
        assert_eq!(
            call(&f, abi, "clone", &[libc::SIGCHLD as u64]),
            ALLOW,
            "{abi:?}"
        );
        let newuser = (libc::CLONE_NEWUSER | libc::SIGCHLD) as u64;
        assert_eq!(call(&f, abi, "clone", &[newuser]), eperm, "{abi:?}");
        assert_eq!(
            call(&f, abi, "socket", &[libc::AF_INET as u64]),
            ALLOW,
            "{abi:?}"
        );
        assert_eq!(
            call(&f, abi, "socket", &[libc::AF_VSOCK as u64]),
            eperm,
            "{abi:?}"
        );
        assert_eq!(
            call(&f, abi, "prctl", &[libc::PR_SET_NAME as u64]),
            ALLOW,
            "{abi:?}"
        );
        assert_eq!(call(&f, abi, "prctl", &[1000]), eperm, "{abi:?}");
    }
    // 64-bit registers keep their high bits on x86_64.
    assert_eq!(call(&f, Abi::X86_64, "personality", &[1 << 32]), eperm);
    assert_eq!(call(&f, Abi::X86_64, "personality", &[u64::MAX]), eperm);
    assert_eq!(call(&f, Abi::X86, "socketcall", &[]), ALLOW);
    assert_eq!(call(&f, Abi::X86_64, "arch_prctl", &[]), ALLOW);
    assert_eq!(
        call_nr(&f, AUDIT_ARCH_X86_64, Abi::X86_64.max_number() + 1, &[]),
        errno(libc::ENOSYS)
    );
    assert_eq!(call_nr(&f, AUDIT_ARCH_AARCH64, 0, &[]), KILL_PROCESS);
}

mod kernel {
    //! These load real filters, so each runs in a forked child; they need
    //! CAP_SYS_ADMIN (the filters are loaded without no_new_privs).

    use nix::errno::Errno;
    use nix::sys::signal::Signal;
    use nix::sys::wait::WaitStatus;

    use super::*;
    use crate::seccomp::load;
    use crate::sys::seccomp::fork_and_wait;

    fn no_new_privs() -> Option<bool> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("NoNewPrivs:"))?;
        Some(line.split_whitespace().nth(1)? == "1")
    }

    fn exited(status: WaitStatus, code: i32) {
        assert!(
            matches!(status, WaitStatus::Exited(_, c) if c == code),
            "child: {status:?}"
        );
    }

    #[test]
    fn errno_rules_hit_the_real_syscalls() {
        let f = build(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                {"names": ["uname"], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        exited(
            fork_and_wait(|| {
                if nix::unistd::getcwd().is_err() || nix::sys::utsname::uname().is_err() {
                    return 10;
                }
                if load(&f).is_err() {
                    return 11;
                }
                if nix::unistd::getcwd() != Err(Errno::ENOSYS) {
                    return 12;
                }
                if nix::sys::utsname::uname().err() != Some(Errno::EPERM) {
                    return 13;
                }
                if nix::unistd::getpid().as_raw() <= 0 {
                    return 14;
                }
                0
            }),
            0,
        );
    }

    #[test]
    fn load_leaves_no_new_privs_alone() {
        let f = build(r#"{"defaultAction": "SCMP_ACT_ALLOW"}"#);
        exited(
            fork_and_wait(|| {
                let before = no_new_privs();
                if load(&f).is_err() {
                    return 11;
                }
                match (before, no_new_privs()) {
                    // Inherited from whoever runs the tests: nothing to learn.
                    (Some(true), _) => 0,
                    (Some(false), Some(false)) => 0,
                    _ => 12,
                }
            }),
            0,
        );
    }

    #[test]
    fn notify_returns_a_listener() {
        let f = build(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(f.has_notify);
        exited(
            fork_and_wait(|| match load(&f) {
                Ok(Some(fd)) => match nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFD) {
                    Ok(_) => 0,
                    Err(_) => 12,
                },
                Ok(None) => 11,
                Err(_) => 10,
            }),
            0,
        );
    }

    #[test]
    fn kill_process_kills_with_sigsys() {
        let f = build(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["uname"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#,
        );
        let status = fork_and_wait(|| {
            if load(&f).is_err() {
                return 10;
            }
            let _ = nix::sys::utsname::uname();
            11
        });
        assert!(
            matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
            "child: {status:?}"
        );
    }

    #[test]
    fn docker_like_profile_in_the_kernel() {
        let f = docker_like();
        exited(
            fork_and_wait(|| {
                if load(&f).is_err() {
                    return 10;
                }
                let mount = nix::mount::mount(
                    Some("none"),
                    "/tmp",
                    Some("tmpfs"),
                    nix::mount::MsFlags::empty(),
                    None::<&str>,
                );
                if mount != Err(Errno::EPERM) {
                    return 11;
                }
                if nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS) != Err(Errno::EPERM) {
                    return 12;
                }
                if std::fs::read_to_string("/proc/self/status").is_err() {
                    return 13;
                }
                if nix::unistd::getcwd().is_err() {
                    return 14;
                }
                0
            }),
            0,
        );
    }
}

#[test]
fn first_unconditional_rule_wins_like_libseccomp() {
    // podman's resolved default profile: setns allowed, then again in an errno list.
    let f = build(
        r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "setns"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["setns"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}"#,
    );
    assert_eq!(call(&f, Abi::X86_64, "setns", &[]), libc::SECCOMP_RET_ALLOW);
    assert_eq!(call(&f, Abi::X86_64, "read", &[]), libc::SECCOMP_RET_ALLOW);
}

/// seccompiler as an independent oracle: for profiles inside its model (one match action,
/// default ALLOW, x86_64, AND-ed conditions on distinct arguments), its program and ours
/// must return the same action for every probe. Our emitter exists because seccompiler's
/// model stops there (one action per filter, one arch, no NOTIFY; DESIGN.md §5).
#[test]
fn agrees_with_seccompiler_where_their_models_overlap() {
    use seccompiler::{
        BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
        SeccompFilter, SeccompRule, TargetArch,
    };
    use std::collections::BTreeMap;

    // (OCI op, seccompiler op and value for (value, valueTwo))
    type ToOracle = fn(u64, u64) -> (Op, u64);
    let ops: [(&str, ToOracle); 7] = [
        ("SCMP_CMP_EQ", |v, _| (Op::Eq, v)),
        ("SCMP_CMP_NE", |v, _| (Op::Ne, v)),
        ("SCMP_CMP_LT", |v, _| (Op::Lt, v)),
        ("SCMP_CMP_LE", |v, _| (Op::Le, v)),
        ("SCMP_CMP_GT", |v, _| (Op::Gt, v)),
        ("SCMP_CMP_GE", |v, _| (Op::Ge, v)),
        ("SCMP_CMP_MASKED_EQ", |v, v2| (Op::MaskedEq(v), v2)),
    ];
    // Where they differ on purpose: seccompiler masks the expected value too, so
    // (arg & mask) == (value & mask); libseccomp (so runc) and berth compare with the value
    // as given, which never matches when it has bits outside the mask. Probes keep
    // valueTwo inside the mask for MASKED_EQ.
    let values = [
        0u64,
        1,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_ffff,
        1 << 32,
        (1 << 32) | 5,
        u64::MAX,
    ];
    let abi = Abi::X86_64;
    let names = ["mkdir", "personality", "clone", "socket", "ioctl"];
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..40 {
        let mut oci_rules = Vec::new();
        let mut oracle: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
        for (k, name) in names.iter().enumerate() {
            let conds = (next() % 3) as usize; // 0 = unconditional
            if (round + k) % 4 == 3 {
                continue; // not listed: the default action
            }
            let mut args = Vec::new();
            let mut sc = Vec::new();
            for a in 0..conds {
                let (opname, mk) = ops[(next() % ops.len() as u64) as usize];
                let v = values[(next() % values.len() as u64) as usize];
                let mut v2 = values[(next() % values.len() as u64) as usize];
                if opname == "SCMP_CMP_MASKED_EQ" {
                    v2 &= v;
                }
                args.push(
                    serde_json::json!({"index": a, "value": v, "valueTwo": v2, "op": opname}),
                );
                let (op, val) = mk(v, v2);
                sc.push(SeccompCondition::new(a as u8, Len::Qword, op, val).unwrap());
            }
            oci_rules.push(serde_json::json!({
                "names": [name], "action": "SCMP_ACT_ERRNO", "errnoRet": 1, "args": args
            }));
            let rules = if sc.is_empty() {
                vec![]
            } else {
                vec![SeccompRule::new(sc).unwrap()]
            };
            oracle.insert(i64::from(nr(abi, name)), rules);
        }
        let profile = serde_json::json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "architectures": ["SCMP_ARCH_X86_64"],
            "syscalls": oci_rules,
        });
        let ours = build(&profile.to_string());
        let theirs: BpfProgram = SeccompFilter::new(
            oracle,
            SeccompAction::Allow,
            SeccompAction::Errno(1),
            TargetArch::x86_64,
        )
        .unwrap()
        .try_into()
        .unwrap();
        let theirs: Vec<libc::sock_filter> = theirs
            .iter()
            .map(|i| libc::sock_filter {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        interp::check(&theirs);
        for name in names.iter().chain(&["read", "getpid"]) {
            for a0 in values {
                for a1 in [0u64, 0x8000_0000, u64::MAX] {
                    let d = Data {
                        nr: nr(abi, name),
                        arch: AUDIT_ARCH_X86_64,
                        args: [a0, a1, 0, 0, 0, 0],
                    };
                    assert_eq!(
                        interp::run(&ours.program, &d),
                        interp::run(&theirs, &d),
                        "round {round}, {name}({a0:#x}, {a1:#x}), profile {profile}"
                    );
                }
            }
        }
    }
}
