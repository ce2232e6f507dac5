//! The two faces of one binary: the people face at the top level, runc's under a name
//! ending in `-runc` and behind `berth oci`, each with its own state.
mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn people(args: &[&str]) -> Out {
    run_with_timeout(Command::new(berth()).args(args), Duration::from_secs(30))
}

#[test]
fn versions_say_which_face_answers() {
    if is_runc() {
        return;
    }
    let v = people(&["--version"]);
    v.ok();
    assert_eq!(
        v.stdout.trim(),
        format!("berth version {}", env!("CARGO_PKG_VERSION"))
    );
    let long = people(&["version"]);
    long.ok();
    assert!(long.stdout.contains("Client:"), "{}", long.stdout);
    assert!(long.stdout.contains(" OS/Arch:"), "{}", long.stdout);
    // The runc face keeps runc's form: a version line, then the spec line.
    for out in [
        run_with_timeout(
            Command::new(runtime()).arg("--version"),
            Duration::from_secs(10),
        ),
        people(&["oci", "--version"]),
    ] {
        out.ok();
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert!(lines[0].contains("version"), "{}", out.stdout);
        assert!(
            lines.iter().any(|l| l.starts_with("spec: ")),
            "{}",
            out.stdout
        );
    }
}

#[test]
fn help_lists_the_people_commands_and_points_at_the_runc_face() {
    if is_runc() {
        return;
    }
    let h = people(&["--help"]);
    h.ok();
    for cmd in [
        "run", "ps", "images", "pull", "build", "volume", "network", "logs", "exec",
    ] {
        assert!(
            h.stdout.lines().any(|l| l.trim_start().starts_with(cmd)),
            "{cmd} missing from --help:\n{}",
            h.stdout
        );
    }
    assert!(h.stdout.contains("berth-runc"), "{}", h.stdout);
    assert!(
        !h.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("monitor")),
        "the monitor command is hidden:\n{}",
        h.stdout
    );
    let run = people(&["run", "--help"]);
    run.ok();
    assert!(
        run.stdout
            .contains("berth run [OPTIONS] IMAGE [COMMAND] [ARG...]"),
        "{}",
        run.stdout
    );
    // -h is --hostname in run, as Docker's: it takes a value.
    assert!(run.stdout.contains("-h, --hostname"), "{}", run.stdout);
}

/// runc's commands are not guessed at the top level: `berth list` is a people-face usage
/// error (Docker's 125), never a silent runc `list`.
#[test]
fn runc_commands_need_the_runc_face() {
    if is_runc() {
        return;
    }
    let c = Ctx::new("face-guess");
    let out = people(&["--root", c.root.to_str().unwrap(), "list"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("list"), "{}", out.stderr);
    let out = people(&["state", "x"]);
    assert_eq!(out.code, 125, "{out:?}");
    // A people-face usage error: Docker's code.
    let out = people(&["run"]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(out.stderr.contains("IMAGE"), "{}", out.stderr);
}

/// `berth oci` takes runc's globals after `oci` and reaches the same containers as
/// berth-runc with the same root; its errors are runc's (exit 1, runc's phrase).
#[test]
fn berth_oci_and_berth_runc_share_a_root() {
    let c = Ctx::new("face-oci");
    let b = c.bundle("b", &["sleep", "30"]);
    let id = c.id("one");
    c.create(&b, &id);
    if !is_runc() {
        let root = c.root.to_str().unwrap();
        let out = people(&["oci", "--root", root, "state", &id]);
        out.ok();
        assert_eq!(out.json()["status"], "created");
        let out = people(&["oci", "--root", root, "list", "-q"]);
        out.ok();
        assert_eq!(out.stdout.trim(), id);
        let out = people(&["oci", "--root", root, "state", "nope"]);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr.contains("container does not exist"),
            "{}",
            out.stderr
        );
    }
    c.rt(&["delete", "--force", &id]).ok();
}

/// Without --root the runc face keeps its state in /run/berth-runc (beside runc's
/// /run/runc): checked in a private mount namespace with its own /run, so the host's
/// defaults are never touched.
#[test]
fn runc_face_default_root_is_run_berth_runc() {
    if is_runc() {
        return;
    }
    let c = Ctx::new("face-root");
    let b = c.bundle("b", &["true"]);
    b.write();
    let id = c.id("d");
    let script = format!(
        "mount --make-rprivate / && mount -t tmpfs tmpfs /run && \
         {rt} run --bundle {b} {id} && {rt} create --bundle {b} {id} && \
         ls /run && test -d /run/berth-runc/{id} && {rt} delete {id} && \
         test ! -e /run/berth-runc/{id} && test ! -e /run/berth",
        rt = runtime().display(),
        b = b.path(),
    );
    let out = run_with_timeout(
        Command::new("unshare").args(["-m", "sh", "-c", &script]),
        Duration::from_secs(30),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "berth-runc", "{out:?}");
}
