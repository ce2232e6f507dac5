//! What the speed work changed and a user (or a crash) could see: a `--rm` container's
//! root filesystem is a volatile overlay (its upper directory is never synced, being
//! thrown away) while a kept container's is not; a `state.json` left empty or torn (it is
//! replaced without an fsync) neither hides the container nor breaks the commands.

mod common;

use common::people::World;

/// Whether the overlay's options (as mountinfo shows them) say volatile.
fn volatile(opts: &str) -> bool {
    opts.split(',')
        .any(|o| o == "volatile" || o == "fsync=volatile")
}

fn root_mount_options(out: &str) -> String {
    // mountinfo: "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS ... - FSTYPE SOURCE SUPEROPTS".
    out.lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .unwrap_or_else(|| panic!("no / in mountinfo:\n{out}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn rm_containers_get_a_volatile_overlay_and_kept_ones_do_not() {
    let w = World::new("lean-volatile");
    let img = "localhost/lean:1";
    w.busybox_image(img);
    let out = w.b(&["run", "--rm", img, "cat", "/proc/self/mountinfo"]);
    out.ok();
    let opts = root_mount_options(&out.stdout);
    assert!(volatile(&opts), "--rm: {opts}");
    let out = w.b(&["run", "--name", "kept", img, "cat", "/proc/self/mountinfo"]);
    out.ok();
    let opts = root_mount_options(&out.stdout);
    assert!(!volatile(&opts), "kept: {opts}");
    // The kept container mounts its upper directory again, still not volatile.
    let out = w.b(&["start", "-a", "kept"]);
    out.ok();
    assert!(!volatile(&root_mount_options(&out.stdout)));
    w.finish();
}

#[test]
fn a_torn_state_file_neither_hides_the_container_nor_breaks_commands() {
    let w = World::new("lean-torn");
    let out = w.b(&[
        "create",
        "--name",
        "torn",
        "--rootfs",
        w.rootfs(),
        "echo",
        "back",
    ]);
    out.ok();
    let id = out.stdout.trim().to_string();
    let state = w.root.join("containers").join(&id).join("state.json");
    for torn in [&b""[..], b"{\"Status\": \"run"] {
        std::fs::write(&state, torn).unwrap();
        let ps = w.b(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
        ps.ok();
        assert_eq!(ps.stdout.trim(), "torn Created", "{torn:?}");
        let out = w.b(&["start", "-a", "torn"]);
        out.ok();
        assert_eq!(out.stdout, "back\n");
        assert_eq!(w.status("torn"), "exited");
    }
    w.finish();
}
