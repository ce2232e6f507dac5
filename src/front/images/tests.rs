//! Tests of the store against the real fixtures (`make-images.sh`: OCI layouts built with
//! umoci and by hand, docker-archive and oci-archive tars made by skopeo) and against
//! hostile archives crafted here. Mounting tests run in a thread of their own with a
//! private mount namespace, so nothing they mount is seen outside or outlives them.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::archive::{self, ArchiveFormat};
use super::overlay::{self, RootfsKind};
use super::store::{Store, StoreOptions};
use super::tar::tests::Build;
use super::unpack::{IdMap, IdRange};
use crate::front::digest::Digest;

/// The fixture tree, built by the shared script when missing (never skipped: a missing
/// fixture fails the test).
pub(crate) fn fixtures() -> PathBuf {
    let out = std::env::var_os("BERTH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/berth-fixtures/out"));
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/tmp/berth-fixtures.lock")
        .expect("open the fixtures lock");
    let _l = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).expect("flock");
    let complete = [
        "busybox.oci.tar",
        "multilayer.docker.tar",
        "expected/layers.present",
        "oci/index.json",
    ]
    .iter()
    .all(|p| out.join(p).exists());
    if !complete {
        let script = [
            std::env::var_os("BERTH_FIXTURES_SCRIPT").map(PathBuf::from),
            Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/make-images.sh")),
            Some(PathBuf::from("/work/shared/fixtures/make-images.sh")),
        ]
        .into_iter()
        .flatten()
        .find(|p| p.is_file())
        .expect("make-images.sh not found: set BERTH_FIXTURES_SCRIPT");
        let st = Command::new("bash")
            .arg(&script)
            .arg(&out)
            .status()
            .expect("run make-images.sh");
        assert!(st.success(), "{} failed", script.display());
    }
    out
}

pub(crate) struct Tmp(pub(crate) PathBuf);

impl Tmp {
    pub(crate) fn new(name: &str) -> Tmp {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "berth-images-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Tmp(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = super::unpack::remove_tree(&self.0);
    }
}

pub(crate) fn store(t: &Tmp) -> Store {
    Store::open(&t.0.join("root"), StoreOptions::default()).unwrap()
}

fn tar_dir(dir: &Path) -> Vec<u8> {
    let out = Command::new("tar")
        .args(["-C"])
        .arg(dir)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

/// Nothing visible in the store, and nothing left staged.
pub(crate) fn assert_store_empty(s: &Store) {
    for sub in ["blobs/sha256", "layers", "l", "records", "tmp"] {
        let n: Vec<_> = fs::read_dir(s.dir().join(sub))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert!(n.is_empty(), "{sub} is not empty: {n:?}");
    }
    assert!(s.names().unwrap().is_empty());
}

/// Runs `f` on a thread with a private mount namespace: its mounts vanish with it.
pub(crate) fn in_mount_ns<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS).expect("unshare mount ns");
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .expect("make / private");
        f()
    })
    .join()
    .unwrap()
}

fn load_oci_fixture(s: &Store) -> Vec<archive::Loaded> {
    let data = tar_dir(&fixtures().join("oci"));
    archive::load(s, &mut &data[..]).unwrap()
}

fn id_of(s: &Store, name: &str) -> Digest {
    s.names()
        .unwrap()
        .get(name)
        .unwrap_or_else(|| panic!("{name} not in the store"))
        .image
        .clone()
}

/// Checks a root filesystem against `expected/<tag>.present|absent`.
fn check_expected(root: &Path, tag: &str) {
    let exp = fixtures().join("expected");
    let present = fs::read_to_string(exp.join(format!("{tag}.present"))).unwrap();
    let absent = fs::read_to_string(exp.join(format!("{tag}.absent"))).unwrap();
    for p in present.lines().filter(|l| !l.is_empty()) {
        let full = root.join(p.trim_start_matches('/'));
        assert!(full.symlink_metadata().is_ok(), "{tag}: {p} missing");
    }
    for p in absent.lines().filter(|l| !l.is_empty()) {
        let full = root.join(p.trim_start_matches('/'));
        assert!(full.symlink_metadata().is_err(), "{tag}: {p} present");
    }
}

/// The "layers" image's tree, file by file, beyond the expected lists.
fn check_layers_tree(root: &Path, owner_base: u32) {
    check_expected(root, "layers");
    assert_eq!(
        fs::read_to_string(root.join("data/hello.txt")).unwrap(),
        "v2\n"
    );
    let suid = fs::metadata(root.join("usr/local/bin/suid")).unwrap();
    assert_eq!(suid.mode() & 0o7777, 0o4755);
    assert_eq!(suid.uid(), owner_base);
    let owned = fs::metadata(root.join("home/user/owned-by-1000.txt")).unwrap();
    assert_eq!(
        (owned.uid(), owned.gid()),
        (owner_base + 1000, owner_base + 1000)
    );
    assert_eq!(
        fs::read_to_string(root.join("home/user/owned-by-1000.txt")).unwrap(),
        "mine\n"
    );
    assert!(fs::symlink_metadata(root.join("data/fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert_eq!(
        fs::read_link(root.join("data/symlink.txt")).unwrap(),
        Path::new("hello.txt")
    );
    assert_eq!(
        fs::read_link(root.join("data/dangling")).unwrap(),
        Path::new("/nonexistent/target")
    );
    assert_eq!(
        fs::read_to_string(root.join("data/4k.txt")).unwrap(),
        "x".repeat(4096)
    );
    assert_eq!(
        fs::read_to_string(root.join("data/zstd.txt")).unwrap(),
        "zstd\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("data/opq/new.txt")).unwrap(),
        "new\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("etc/issue/now-a-dir.txt")).unwrap(),
        "back\n"
    );
    assert_eq!(
        fs::read_to_string(root.join("data/dir/kept.txt")).unwrap(),
        "kept\n"
    );
    // The opaque directory shows only its own layer's entries.
    let opq: Vec<_> = fs::read_dir(root.join("data/opq"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(opq, vec![std::ffi::OsString::from("new.txt")]);
    assert!(root.join("bin/busybox").is_file());
    assert_eq!(
        fs::metadata(root.join("tmp")).unwrap().mode() & 0o7777,
        0o1777
    );
    // mtimes come from the tar (SOURCE_DATE_EPOCH of the fixture).
    assert_eq!(
        fs::metadata(root.join("data/zstd.txt")).unwrap().mtime(),
        1_700_000_000
    );
}

#[test]
fn oci_layout_fixture_loads_with_names_and_unpacked_layers() {
    let t = Tmp::new("oci");
    let s = store(&t);
    let loaded = load_oci_fixture(&s);
    let names = s.names().unwrap();
    for n in ["busybox", "multilayer", "layers", "no-eof", "multiarch"] {
        assert!(
            names.contains_key(&format!("docker.io/library/{n}:latest")),
            "{n}: {names:?}"
        );
    }
    // The index's amd64 entry is the busybox manifest: one image, two names.
    assert_eq!(
        id_of(&s, "docker.io/library/multiarch:latest"),
        id_of(&s, "docker.io/library/busybox:latest")
    );
    assert_eq!(s.images().unwrap().len(), 4);
    let lines = archive::load_report(&loaded);
    assert!(
        lines.contains(&"Loaded image: layers:latest".to_string()),
        "{lines:?}"
    );
    // The hand-made image: 4 layers (plain, gzip, zstd, gzip), each unpacked once and
    // verified against its diff id; its config digest is the image id.
    let rec = s
        .image(&id_of(&s, "docker.io/library/layers:latest"))
        .unwrap()
        .unwrap();
    assert_eq!(rec.layers.len(), 4);
    let (cfg, _) = s.config(&rec.id).unwrap();
    assert_eq!(
        cfg.rootfs.diff_ids,
        rec.layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(Digest::of(&s.read_small_blob(&rec.id).unwrap()), rec.id);
    // Layer 2: the hardlink pair is one inode; layer 3 holds the overlay whiteouts.
    let l2 = s.layer_dir(&rec.layers[1].diff_id);
    let a = fs::metadata(l2.join("data/hello.txt")).unwrap();
    let b = fs::metadata(l2.join("data/hardlink.txt")).unwrap();
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
    let l3 = s.layer_dir(&rec.layers[2].diff_id);
    let wh = fs::symlink_metadata(l3.join("etc/issue")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0);
    assert!(fs::symlink_metadata(l3.join("data/dir/sub"))
        .unwrap()
        .file_type()
        .is_char_device());
    assert!(!l3.join("etc/.wh.issue").exists());
    let p = std::ffi::CString::new(l3.join("data/opq").to_str().unwrap()).unwrap();
    assert_eq!(
        crate::sys::files::lgetxattr(&p, c"trusted.overlay.opaque").unwrap(),
        b"y"
    );
    assert!(s
        .layer_dir(&rec.layers[0].diff_id)
        .join("bin/busybox")
        .is_file());
    // The short links point at the layers.
    for l in &rec.layers {
        let link = s.dir().join("l").join(super::store::short_link(&l.diff_id));
        assert_eq!(
            fs::canonicalize(link).unwrap(),
            fs::canonicalize(s.layer_dir(&l.diff_id)).unwrap()
        );
    }
    // no-eof: a tar without end-of-archive blocks.
    let ne = s
        .image(&id_of(&s, "docker.io/library/no-eof:latest"))
        .unwrap()
        .unwrap();
    assert!(s
        .layer_dir(&ne.layers[0].diff_id)
        .join("bin/busybox")
        .is_file());
    // The same layers are not unpacked twice: busybox's layer is multilayer's base.
    let bb = s
        .image(&id_of(&s, "docker.io/library/busybox:latest"))
        .unwrap()
        .unwrap();
    let ml = s
        .image(&id_of(&s, "docker.io/library/multilayer:latest"))
        .unwrap()
        .unwrap();
    assert_eq!(bb.layers[0].diff_id, ml.layers[0].diff_id);
    assert_eq!(
        fs::read_dir(s.dir().join("layers")).unwrap().count(),
        4 + 1 + 2 + 1
    );
    // Loading again is idempotent.
    load_oci_fixture(&s);
    assert_eq!(s.images().unwrap().len(), 4);
    assert!(fs::read_dir(s.dir().join("tmp")).unwrap().next().is_none());
}

#[test]
fn overlay_of_the_layers_fixture_honours_whiteouts() {
    let t = Tmp::new("overlay");
    let s = store(&t);
    load_oci_fixture(&s);
    let rec = s
        .image(&id_of(&s, "docker.io/library/layers:latest"))
        .unwrap()
        .unwrap();
    let ml = s
        .image(&id_of(&s, "docker.io/library/multilayer:latest"))
        .unwrap()
        .unwrap();
    let base = t.0.clone();
    in_mount_ns(move || {
        for (name, r) in [("layers", &rec), ("multilayer", &ml)] {
            let c = base.join(format!("ctr-{name}"));
            for d in ["upper", "work", "merged"] {
                fs::create_dir_all(c.join(d)).unwrap();
            }
            let kind =
                overlay::mount_rootfs(&s, r, &c.join("upper"), &c.join("work"), &c.join("merged"))
                    .unwrap();
            assert_eq!(kind, RootfsKind::Overlay);
            if name == "layers" {
                check_layers_tree(&c.join("merged"), 0);
                // Writes go to the container's upper dir, never into a layer.
                fs::write(c.join("merged/data/hello.txt"), "changed").unwrap();
                assert_eq!(
                    fs::read_to_string(c.join("upper/data/hello.txt")).unwrap(),
                    "changed"
                );
                let l4 = s.layer_dir(&r.layers[3].diff_id);
                assert_eq!(
                    fs::read_to_string(l4.join("data/hello.txt")).unwrap(),
                    "v2\n"
                );
            } else {
                check_expected(&c.join("merged"), "multilayer");
                assert_eq!(
                    fs::read_to_string(c.join("merged/data/hello.txt")).unwrap(),
                    "hello\n"
                );
            }
            nix::mount::umount(&c.join("merged")).unwrap();
        }
    });
}

#[test]
fn copy_fallback_gives_the_same_tree() {
    let t = Tmp::new("copy");
    let s = store(&t);
    load_oci_fixture(&s);
    let rec = s
        .image(&id_of(&s, "docker.io/library/layers:latest"))
        .unwrap()
        .unwrap();
    let lowers: Vec<PathBuf> = rec
        .layers
        .iter()
        .rev()
        .map(|l| s.layer_dir(&l.diff_id))
        .collect();
    let target = t.0.join("copy");
    fs::create_dir(&target).unwrap();
    overlay::copy_layers(&lowers, &target).unwrap();
    check_layers_tree(&target, 0);
}

#[test]
fn image_with_many_layers_mounts() {
    // More layers than fit in one page of lowerdir= options with full paths.
    let t = Tmp::new("many");
    let s = store(&t);
    let mut st = s.begin().unwrap();
    let (mut layers, mut diffs) = (Vec::new(), Vec::new());
    for i in 0..120 {
        let tar = Build::new()
            .file(&format!("f{i}"), format!("{i}").as_bytes())
            .finish();
        let d = Digest::of(&tar);
        st.put_blob(&d, Some(tar.len() as u64), &mut &tar[..])
            .unwrap();
        layers.push(serde_json::json!({"mediaType": super::manifest::OCI_LAYER_TAR, "digest": d, "size": tar.len()}));
        diffs.push(d);
    }
    let man = manifest_for(&mut st, &diffs, layers);
    st.add_image(&man, &["localhost/many:latest".into()], &[])
        .unwrap();
    st.commit().unwrap();
    let rec = s
        .image(&id_of(&s, "localhost/many:latest"))
        .unwrap()
        .unwrap();
    let base = t.0.clone();
    in_mount_ns(move || {
        for d in ["upper", "work", "merged"] {
            fs::create_dir_all(base.join(d)).unwrap();
        }
        // lowerdir+ per layer, then the classic option string with short links.
        for legacy in [false, true] {
            overlay::FORCE_LEGACY.with(|f| f.set(legacy));
            let kind = overlay::mount_rootfs(
                &s,
                &rec,
                &base.join("upper"),
                &base.join("work"),
                &base.join("merged"),
            )
            .unwrap();
            assert_eq!(kind, RootfsKind::Overlay);
            let mi = fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
            let at = format!("{} ", base.join("merged").display());
            let line = mi.lines().find(|l| l.contains(&at)).unwrap();
            assert_eq!(line.contains("lowerdir=l/"), legacy, "{line}");
            for i in [0, 59, 119] {
                assert_eq!(
                    fs::read_to_string(base.join(format!("merged/f{i}"))).unwrap(),
                    i.to_string()
                );
            }
            nix::mount::umount(&base.join("merged")).unwrap();
        }
    });
}

/// Stages a config for `diffs` and returns the manifest bytes over `layers`.
pub(crate) fn manifest_for(
    st: &mut super::store::Staged,
    diffs: &[Digest],
    layers: Vec<serde_json::Value>,
) -> Vec<u8> {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": ["/bin/sh"], "Labels": {"a": "b"}},
        "rootfs": {"type": "layers", "diff_ids": diffs},
        "history": diffs.iter().map(|_| serde_json::json!({"created_by": "test"})).collect::<Vec<_>>(),
    }))
    .unwrap();
    let cd = Digest::of(&config);
    st.put_blob(&cd, Some(config.len() as u64), &mut &config[..])
        .unwrap();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": super::manifest::OCI_MANIFEST,
        "config": {"mediaType": super::manifest::OCI_CONFIG, "digest": cd, "size": config.len()},
        "layers": layers,
    }))
    .unwrap()
}

#[test]
fn docker_and_oci_archives_from_skopeo_load() {
    let t = Tmp::new("archives");
    let s = store(&t);
    let fx = fixtures();
    let mut f = fs::File::open(fx.join("busybox.docker.tar")).unwrap();
    let l = archive::load(&s, &mut f).unwrap();
    assert_eq!(
        archive::load_report(&l),
        vec!["Loaded image: localhost/busybox:latest".to_string()]
    );
    let mut f = fs::File::open(fx.join("multilayer.docker.tar")).unwrap();
    archive::load(&s, &mut f).unwrap();
    let mut f = fs::File::open(fx.join("busybox.oci.tar")).unwrap();
    let l = archive::load(&s, &mut f).unwrap();
    assert_eq!(
        archive::load_report(&l),
        vec!["Loaded image: busybox:latest".to_string()]
    );
    // skopeo kept the config: one image id whatever the archive format.
    assert_eq!(
        id_of(&s, "localhost/busybox:latest"),
        id_of(&s, "docker.io/library/busybox:latest")
    );
    let ml = s
        .image(&id_of(&s, "localhost/multilayer:latest"))
        .unwrap()
        .unwrap();
    assert_eq!(ml.layers.len(), 3);
    in_mount_ns(move || {
        let c = t.0.join("c");
        for d in ["upper", "work", "merged"] {
            fs::create_dir_all(c.join(d)).unwrap();
        }
        overlay::mount_rootfs(
            &s,
            &ml,
            &c.join("upper"),
            &c.join("work"),
            &c.join("merged"),
        )
        .unwrap();
        check_expected(&c.join("merged"), "multilayer");
        nix::mount::umount(&c.join("merged")).unwrap();
    });
}

#[test]
fn rootless_store_maps_owners_and_writes_user_xattr_whiteouts() {
    const BASE: u32 = 200_000;
    let t = Tmp::new("rootless");
    let ids = IdMap {
        uids: vec![IdRange {
            container: 0,
            host: BASE,
            size: 65536,
        }],
        gids: vec![IdRange {
            container: 0,
            host: BASE,
            size: 65536,
        }],
    };
    let s = Store::open(
        &t.0.join("root"),
        StoreOptions {
            rootless: true,
            ids,
        },
    )
    .unwrap();
    load_oci_fixture(&s);
    let rec = s
        .image(&id_of(&s, "docker.io/library/layers:latest"))
        .unwrap()
        .unwrap();
    let l3 = s.layer_dir(&rec.layers[2].diff_id);
    let wh = fs::symlink_metadata(l3.join("etc/issue")).unwrap();
    assert!(wh.file_type().is_file() && wh.len() == 0);
    let x = |p: &Path, k: &std::ffi::CStr| {
        crate::sys::files::lgetxattr(&std::ffi::CString::new(p.to_str().unwrap()).unwrap(), k).ok()
    };
    assert_eq!(
        x(&l3.join("etc/issue"), c"user.overlay.whiteout").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        x(&l3.join("etc"), c"user.overlay.opaque").as_deref(),
        Some(&b"x"[..])
    );
    assert_eq!(
        x(&l3.join("data/opq"), c"user.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(x(&l3.join("data/opq"), c"trusted.overlay.opaque"), None);
    let l2 = s.layer_dir(&rec.layers[1].diff_id);
    assert_eq!(
        fs::metadata(l2.join("home/user/owned-by-1000.txt"))
            .unwrap()
            .uid(),
        BASE + 1000
    );
    assert_eq!(fs::metadata(l2.join("data")).unwrap().uid(), BASE);
    // The copy fallback reads the same whiteouts.
    let lowers: Vec<PathBuf> = rec
        .layers
        .iter()
        .rev()
        .map(|l| s.layer_dir(&l.diff_id))
        .collect();
    let target = t.0.join("copy");
    fs::create_dir(&target).unwrap();
    overlay::copy_layers(&lowers, &target).unwrap();
    check_layers_tree(&target, BASE);
    // What the kernel shows a rootless user: an overlay with userxattr mounted inside a
    // user namespace mapping 0 -> BASE. Owners appear as the image's, whiteouts apply.
    // A rootless user owns its store: make the path to the layers theirs.
    let own = |p: &Path| nix::unistd::chown(p, Some(BASE.into()), Some(BASE.into())).unwrap();
    for d in ["upper", "work", "merged"] {
        fs::create_dir_all(t.0.join(d)).unwrap();
        own(&t.0.join(d));
    }
    for p in [
        t.0.join("root"),
        s.dir().to_path_buf(),
        s.dir().join("layers"),
    ] {
        own(&p);
    }
    for l in &rec.layers {
        own(s.layer_dir(&l.diff_id).parent().unwrap());
    }
    let lowerdir = lowers
        .iter()
        .map(|p| p.to_str().unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let script = format!(
        "mount -t overlay overlay -o userxattr,lowerdir={lowerdir},upperdir={t}/upper,workdir={t}/work {t}/merged && \
         cd {t}/merged && cat data/hello.txt && stat -c '%u:%g %a' home/user/owned-by-1000.txt usr/local/bin/suid && \
         ls data/opq && test ! -e data/hardlink.txt && test ! -e data/dir/sub && test -d etc/issue && echo ok",
        t = t.0.display()
    );
    let out = in_userns(BASE, &script);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "v2\n1000:1000 644\n0:0 4755\nnew.txt\nok\n");
}

#[test]
fn concurrent_writers_of_one_blob_and_one_image_both_succeed() {
    let t = Tmp::new("concurrent");
    let s = std::sync::Arc::new(store(&t));
    let data = tar_dir(&fixtures().join("oci"));
    let data = std::sync::Arc::new(data);
    let hs: Vec<_> = (0..3)
        .map(|_| {
            let (s, data) = (s.clone(), data.clone());
            std::thread::spawn(move || archive::load(&s, &mut &data[..]).map(|l| l.len()))
        })
        .collect();
    for h in hs {
        assert_eq!(h.join().unwrap().unwrap(), 4);
    }
    assert_eq!(s.images().unwrap().len(), 4);
    assert!(fs::read_dir(s.dir().join("tmp")).unwrap().next().is_none());
    let blob = b"one blob".to_vec();
    let d = Digest::of(&blob);
    let hs: Vec<_> = (0..4)
        .map(|_| {
            let (s, b) = (s.clone(), blob.clone());
            let d = d.clone();
            std::thread::spawn(move || s.put_blob(&d, Some(b.len() as u64), &mut &b[..]))
        })
        .collect();
    for h in hs {
        h.join().unwrap().unwrap();
    }
    assert_eq!(fs::read(s.blob_path(&d)).unwrap(), blob);
}

#[test]
fn put_blob_verifies_digest_and_size_and_leaves_nothing() {
    let t = Tmp::new("putblob");
    let s = store(&t);
    let d = Digest::of(b"right");
    assert!(s
        .put_blob(&d, None, &mut &b"wrong"[..])
        .unwrap_err()
        .to_string()
        .contains("digest mismatch"));
    assert!(s
        .put_blob(&d, Some(4), &mut &b"right"[..])
        .unwrap_err()
        .to_string()
        .contains("size"));
    assert_store_empty(&s);
    s.put_blob(&d, Some(5), &mut &b"right"[..]).unwrap();
    assert!(s.has_blob(&d));
    let mut got = String::new();
    s.open_blob(&d).unwrap().read_to_string(&mut got).unwrap();
    assert_eq!(got, "right");
}

#[test]
fn killed_writer_leaves_nothing_visible_and_is_cleaned() {
    let t = Tmp::new("killed");
    let s = store(&t);
    // What a writer killed mid-unpack leaves: a staging dir whose lock nobody holds.
    let stale = s.dir().join("tmp/4242-0-0");
    fs::create_dir_all(stale.join("layer-x/diff/etc")).unwrap();
    fs::write(stale.join(".lock"), "").unwrap();
    fs::write(stale.join("blob-x"), "partial").unwrap();
    // A live one (its lock held) stays.
    let live = s.begin().unwrap();
    let s2 = store(&t);
    assert!(!stale.exists());
    assert_eq!(fs::read_dir(s2.dir().join("tmp")).unwrap().count(), 1);
    drop(live);
    assert_store_empty(&s2);
}

/// Runs `script` as root of a new user namespace mapping 0..65536 to `base..`, with its
/// own mount namespace: what a rootless user's `podman unshare` sees. The maps are
/// written from here (we are root outside), so no /etc/subuid entry is needed.
pub(crate) fn in_userns(base: u32, script: &str) -> std::process::Output {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &format!("mount --make-rprivate / && {script}")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let map = format!("0 {base} 65536");
    let child = crate::sys::files::spawn_in_userns(&mut cmd, &map, &map).unwrap();
    child.wait_with_output().unwrap()
}

/// A docker-archive (as `docker save` writes it) of one image over `layers`, built here
/// byte by byte; `diff_ids` overrides what the config claims.
pub(crate) fn docker_archive(
    layers: &[Vec<u8>],
    diff_ids: Option<Vec<Digest>>,
    tag: &str,
) -> Vec<u8> {
    let diffs = diff_ids.unwrap_or_else(|| {
        layers
            .iter()
            .map(|l| {
                let (_, mut r) = super::compress::decompress(&l[..]).unwrap();
                let mut v = Vec::new();
                r.read_to_end(&mut v).unwrap();
                Digest::of(&v)
            })
            .collect()
    });
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diffs},
    }))
    .unwrap();
    let mut w = super::tar::Writer::new(Vec::new());
    let cname = format!("{}.json", Digest::of(&config).hex());
    w.bytes(&cname, &config).unwrap();
    let mut paths = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let p = format!("l{i}/layer.tar");
        w.bytes(&p, l).unwrap();
        paths.push(p);
    }
    let m = serde_json::json!([{"Config": cname, "RepoTags": [tag], "Layers": paths}]);
    w.bytes("manifest.json", &serde_json::to_vec(&m).unwrap())
        .unwrap();
    w.finish().unwrap()
}

mod hostile {
    use super::*;

    /// A store beside a sentinel file: whatever a hostile archive does must fail with one
    /// line, leave the sentinel and its directory alone, and leave the store empty.
    struct Scene {
        t: Tmp,
        s: Store,
    }

    impl Scene {
        fn new(name: &str) -> Scene {
            let t = Tmp::new(name);
            fs::write(t.0.join("sentinel.txt"), "untouched").unwrap();
            let s = store(&t);
            Scene { t, s }
        }

        fn refuses(&self, archive: &[u8], want: &str) {
            let e =
                archive::load(&self.s, &mut &archive[..]).expect_err("a hostile archive loaded");
            let msg = format!("{e:#}");
            assert!(msg.contains(want), "{msg:?} lacks {want:?}");
            assert!(!msg.contains('\n'), "not one line: {msg:?}");
            self.untouched();
        }

        fn untouched(&self) {
            assert_eq!(
                fs::read_to_string(self.t.0.join("sentinel.txt")).unwrap(),
                "untouched"
            );
            let mut here: Vec<_> = fs::read_dir(&self.t.0)
                .unwrap()
                .flatten()
                .map(|e| e.file_name().into_string().unwrap())
                .collect();
            here.sort();
            assert_eq!(here, ["root", "sentinel.txt"]);
            assert_store_empty(&self.s);
        }
    }

    #[test]
    fn dotdot_names_are_refused() {
        let sc = Scene::new("dotdot");
        let layer = Build::new()
            .file("ok", b"1")
            .file("../../../../sentinel.txt", b"pwned")
            .finish();
        sc.refuses(&docker_archive(&[layer], None, "x:1"), "points outside");
        let layer = Build::new().file("a/../../sentinel.txt", b"pwned").finish();
        sc.refuses(&docker_archive(&[layer], None, "x:1"), "points outside");
    }

    #[test]
    fn writing_through_a_symlink_is_refused() {
        let sc = Scene::new("symlink");
        let outside = sc.t.0.to_str().unwrap().to_string();
        for (link, through) in [
            (outside.as_str(), "evil/sentinel.txt"),
            ("../../../../../../../../..", "evil/tmp/x"),
            ("/etc", "evil/passwd"),
        ] {
            let layer = Build::new()
                .symlink("evil", link)
                .file(through, b"pwned")
                .finish();
            sc.refuses(&docker_archive(&[layer], None, "x:1"), "evil is a symlink");
        }
        // A directory replaced by a symlink, then written into.
        let layer = Build::new()
            .dir("d")
            .symlink("d", &outside)
            .file("d/sentinel.txt", b"pwned")
            .finish();
        sc.refuses(&docker_archive(&[layer], None, "x:1"), "d is a symlink");
    }

    #[test]
    fn hardlinks_to_host_paths_are_refused() {
        let sc = Scene::new("hardlink");
        let sentinel = sc.t.0.join("sentinel.txt");
        for target in [sentinel.to_str().unwrap(), "/etc/passwd"] {
            let layer = Build::new().hardlink("h", target).finish();
            sc.refuses(&docker_archive(&[layer], None, "x:1"), "not in this layer");
        }
        let layer = Build::new()
            .hardlink("h", "../../../../etc/passwd")
            .finish();
        sc.refuses(&docker_archive(&[layer], None, "x:1"), "points outside");
        let layer = Build::new()
            .symlink("s", "/etc")
            .hardlink("h", "s/passwd")
            .finish();
        sc.refuses(&docker_archive(&[layer], None, "x:1"), "hardlink target");
        let layer = Build::new().dir("d").hardlink("h", "d").finish();
        sc.refuses(
            &docker_archive(&[layer], None, "x:1"),
            "hardlink to a directory",
        );
    }

    #[test]
    fn layers_must_match_their_diff_ids() {
        let sc = Scene::new("diffid");
        let layer = Build::new().file("f", b"1").finish();
        let wrong = Digest::of(b"something else");
        sc.refuses(
            &docker_archive(std::slice::from_ref(&layer), Some(vec![wrong]), "x:1"),
            "does not match its diff id",
        );
        let mut cut = layer.clone();
        cut.truncate(700);
        sc.refuses(
            &docker_archive(&[cut], Some(vec![Digest::of(&layer)]), "x:1"),
            "truncated",
        );
        sc.refuses(
            &docker_archive(&[layer.clone(), layer], Some(vec![Digest::of(b"")]), "x:1"),
            "diff ids",
        );
    }

    #[test]
    fn corrupt_and_oversized_archives_are_refused() {
        let sc = Scene::new("corrupt");
        let good = docker_archive(&[Build::new().file("f", b"1").finish()], None, "x:1");
        sc.refuses(&good[..good.len() - 1500], "truncated");
        sc.refuses(
            b"this is not a tar archive at all, just some bytes; .......",
            "",
        );
        // An OCI layout whose blob does not hold what its name says.
        let blob = b"not what the name says";
        let fake = Digest::of(b"something else");
        let mut w = super::super::tar::Writer::new(Vec::new());
        w.bytes("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
            .unwrap();
        w.bytes(&format!("blobs/sha256/{}", fake.hex()), blob)
            .unwrap();
        let idx = serde_json::json!({"schemaVersion": 2, "manifests": [
            {"mediaType": super::super::manifest::OCI_MANIFEST, "digest": fake, "size": blob.len()}]});
        w.bytes("index.json", &serde_json::to_vec(&idx).unwrap())
            .unwrap();
        sc.refuses(&w.finish().unwrap(), "blob digest mismatch");
        // A manifest.json over the 4 MiB limit.
        let mut w = super::super::tar::Writer::new(Vec::new());
        let huge = format!("[{}]", " ".repeat(5 << 20));
        w.bytes("manifest.json", huge.as_bytes()).unwrap();
        sc.refuses(&w.finish().unwrap(), "4 MiB");
        // Archive members named outside the archive, written through a symlink member,
        // or hardlinked to a host path.
        let mut w = super::super::tar::Writer::new(Vec::new());
        w.bytes("../../sentinel.txt", b"pwned").unwrap();
        sc.refuses(&w.finish().unwrap(), "points outside");
        let mut w = super::super::tar::Writer::new(Vec::new());
        w.symlink("blobs", sc.t.0.to_str().unwrap()).unwrap();
        w.bytes("blobs/sentinel.txt", b"pwned").unwrap();
        sc.refuses(&w.finish().unwrap(), "blobs is a symlink");
        let mut b = Build::new();
        b.hardlink("manifest.json", "/etc/passwd");
        sc.refuses(&b.finish(), "hardlink to a missing member");
        // A manifest naming a member outside the archive.
        let mut w = super::super::tar::Writer::new(Vec::new());
        let m =
            serde_json::json!([{"Config": "../../../etc/passwd", "RepoTags": [], "Layers": []}]);
        w.bytes("manifest.json", &serde_json::to_vec(&m).unwrap())
            .unwrap();
        sc.refuses(&w.finish().unwrap(), "points outside");
    }

    #[test]
    fn device_nodes_are_skipped_rootless_and_kept_as_root() {
        let layer = Build::new()
            .device("dev/null2", b'3', 1, 3)
            .file("f", b"1")
            .finish();
        let t = Tmp::new("devices");
        let ids = IdMap {
            uids: vec![IdRange {
                container: 0,
                host: 300_000,
                size: 65536,
            }],
            gids: vec![IdRange {
                container: 0,
                host: 300_000,
                size: 65536,
            }],
        };
        let rl = Store::open(
            &t.0.join("rootless"),
            StoreOptions {
                rootless: true,
                ids,
            },
        )
        .unwrap();
        archive::load(
            &rl,
            &mut &docker_archive(std::slice::from_ref(&layer), None, "d:1")[..],
        )
        .unwrap();
        let rec = rl
            .image(&id_of(&rl, "docker.io/library/d:1"))
            .unwrap()
            .unwrap();
        let dir = rl.layer_dir(&rec.layers[0].diff_id);
        assert!(dir.join("f").is_file());
        assert!(dir.join("dev").is_dir());
        assert!(fs::symlink_metadata(dir.join("dev/null2")).is_err());
        let root = Store::open(&t.0.join("rootful"), StoreOptions::default()).unwrap();
        archive::load(&root, &mut &docker_archive(&[layer], None, "d:1")[..]).unwrap();
        let rec = root
            .image(&id_of(&root, "docker.io/library/d:1"))
            .unwrap()
            .unwrap();
        let m =
            fs::symlink_metadata(root.layer_dir(&rec.layers[0].diff_id).join("dev/null2")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), nix::sys::stat::makedev(1, 3));
    }

    #[test]
    fn overlay_metadata_from_a_layer_is_dropped() {
        // A layer forging trusted.overlay.* (a redirect out of the layer) gets none of it;
        // its security.capability is kept.
        let cap =
            b"\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
        let mut b = Build::new();
        b.pax(&[
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
            ("SCHILY.xattr.user.overlay.opaque", b"y"),
        ])
        .dir("d")
        .pax(&[("SCHILY.xattr.security.capability", &cap[..])])
        .file("ping", b"binary");
        let t = Tmp::new("xattrs");
        let s = store(&t);
        archive::load(&s, &mut &docker_archive(&[b.finish()], None, "x:1")[..]).unwrap();
        let rec = s
            .image(&id_of(&s, "docker.io/library/x:1"))
            .unwrap()
            .unwrap();
        let dir = s.layer_dir(&rec.layers[0].diff_id);
        let c = |p: &Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        let names = crate::sys::files::llistxattr(&c(&dir.join("d"))).unwrap();
        assert!(names
            .iter()
            .all(|n| !n.to_bytes().contains(&b'.') || !n.to_string_lossy().contains("overlay")));
        assert_eq!(
            crate::sys::files::lgetxattr(&c(&dir.join("ping")), c"security.capability").unwrap(),
            cap
        );
    }

    #[test]
    fn whiteouts_in_the_layer_root_work_through_overlay_rootful_and_rootless() {
        let base = Build::new()
            .file("gone", b"1")
            .file("kept", b"2")
            .dir("d")
            .file("d/x", b"3")
            .finish();
        let top = Build::new()
            .file(".wh.gone", b"")
            .file("d/.wh..wh..opq", b"")
            .file("d/y", b"4")
            .finish();
        let arch = docker_archive(&[base, top], None, "wh:1");
        let t = Tmp::new("rootwh");
        // Rootful, through a real overlay mount.
        let s = Store::open(&t.0.join("a"), StoreOptions::default()).unwrap();
        archive::load(&s, &mut &arch[..]).unwrap();
        let rec = s
            .image(&id_of(&s, "docker.io/library/wh:1"))
            .unwrap()
            .unwrap();
        let c = t.0.join("c");
        in_mount_ns(move || {
            for d in ["upper", "work", "merged"] {
                fs::create_dir_all(c.join(d)).unwrap();
            }
            overlay::mount_rootfs(
                &s,
                &rec,
                &c.join("upper"),
                &c.join("work"),
                &c.join("merged"),
            )
            .unwrap();
            let mut names: Vec<_> = fs::read_dir(c.join("merged"))
                .unwrap()
                .flatten()
                .map(|e| e.file_name().into_string().unwrap())
                .collect();
            names.sort();
            assert_eq!(names, ["d", "kept"]);
            assert!(!c.join("merged/d/x").exists() && c.join("merged/d/y").exists());
        });
        // Rootless: user.overlay xattrs, mounted with userxattr in a user namespace.
        const BASE: u32 = 400_000;
        let ids = IdMap {
            uids: vec![IdRange {
                container: 0,
                host: BASE,
                size: 65536,
            }],
            gids: vec![IdRange {
                container: 0,
                host: BASE,
                size: 65536,
            }],
        };
        let s = Store::open(
            &t.0.join("b"),
            StoreOptions {
                rootless: true,
                ids,
            },
        )
        .unwrap();
        archive::load(&s, &mut &arch[..]).unwrap();
        let rec = s
            .image(&id_of(&s, "docker.io/library/wh:1"))
            .unwrap()
            .unwrap();
        let own = |p: &Path| nix::unistd::chown(p, Some(BASE.into()), Some(BASE.into())).unwrap();
        for p in [t.0.join("b"), s.dir().to_path_buf(), s.dir().join("layers")] {
            own(&p);
        }
        for l in &rec.layers {
            own(s.layer_dir(&l.diff_id).parent().unwrap());
        }
        let r = t.0.join("r");
        for d in ["upper", "work", "merged"] {
            fs::create_dir_all(r.join(d)).unwrap();
            own(&r.join(d));
        }
        let lowers: Vec<String> = rec
            .layers
            .iter()
            .rev()
            .map(|l| s.layer_dir(&l.diff_id).to_str().unwrap().to_string())
            .collect();
        let out = in_userns(
            BASE,
            &format!(
                "mount -t overlay overlay -o userxattr,lowerdir={},upperdir={r}/upper,workdir={r}/work {r}/merged && ls {r}/merged {r}/merged/d",
                lowers.join(":"),
                r = r.display()
            ),
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = stdout
            .lines()
            .filter(|l| !l.is_empty() && !l.ends_with(':'))
            .collect();
        assert_eq!(lines, ["d", "kept", "y"], "{stdout}");
    }
}

mod commands {
    use super::super::ops::{self, Matched, Removed};
    use super::*;

    fn none(_: &Digest) -> Option<String> {
        None
    }

    #[test]
    fn images_inspect_history_tag_rmi_prune() {
        let t = Tmp::new("ops");
        let s = store(&t);
        load_oci_fixture(&s);
        let layers = id_of(&s, "docker.io/library/layers:latest");
        let busybox = id_of(&s, "docker.io/library/busybox:latest");
        // images: one row per name, Docker's familiar names.
        let list = ops::list(&s).unwrap();
        assert_eq!(list.len(), 4);
        let rows = ops::rows(&list);
        assert_eq!(rows.len(), 5);
        let row = rows.iter().find(|r| r.repository == "layers").unwrap();
        assert_eq!(
            (row.tag.as_str(), &row.id, row.created),
            ("latest", &layers, Some(1_700_000_000))
        );
        assert!(row.size > 1_900_000, "{}", row.size);
        assert_eq!(rows.iter().filter(|r| r.id == busybox).count(), 2);
        // inspect: Docker's shape, from the image's configuration.
        let rec = s.image(&layers).unwrap().unwrap();
        let v = ops::inspect(&s, &rec).unwrap();
        assert_eq!(v["Id"], layers.to_string());
        assert_eq!(v["RepoTags"], serde_json::json!(["layers:latest"]));
        assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
        assert_eq!(
            v["Config"]["Env"],
            serde_json::json!(["PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
        );
        assert_eq!(v["Config"]["Cmd"], serde_json::json!(["/bin/sh"]));
        assert_eq!(v["Config"]["WorkingDir"], "/data");
        assert_eq!(v["Config"]["User"], "0:0");
        assert_eq!(
            v["Config"]["ExposedPorts"],
            serde_json::json!({"80/tcp": {}})
        );
        assert_eq!(v["Config"]["Labels"]["org.example.fixture"], "layers");
        assert_eq!(
            (v["Architecture"].as_str(), v["Os"].as_str()),
            (Some("amd64"), Some("linux"))
        );
        assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 4);
        assert_eq!(v["Size"], rec.size);
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        for k in [
            "Id",
            "RepoTags",
            "RepoDigests",
            "Parent",
            "Comment",
            "Created",
            "Container",
            "Config",
            "Architecture",
            "Os",
            "Size",
            "RootFS",
            "Metadata",
        ] {
            assert!(keys.contains(&k), "{k} missing from {keys:?}");
        }
        // history: newest first, the image id on top, layer sizes on layer rows.
        let h = ops::history(&s, &rec).unwrap();
        assert_eq!(h.len(), 4);
        assert_eq!(h[0].id.as_ref(), Some(&layers));
        assert_eq!(h[0].created_by, "recreate (gzip)");
        assert_eq!(h[3].created_by, "busybox rootfs (uncompressed tar)");
        assert!(h[3].size > 1_900_000 && h[0].size == 8, "{h:?}");
        assert!(h[1..].iter().all(|r| r.id.is_none()));
        // Lookups: qualified name, short name, id, id prefix, sha256: prefix.
        for r in [
            "layers",
            "layers:latest",
            "docker.io/library/layers:latest",
            layers.hex(),
            &layers.hex()[..12],
            &format!("sha256:{}", &layers.hex()[..8]),
        ] {
            assert_eq!(ops::lookup(&s, r).unwrap().0.id, layers, "{r}");
        }
        assert!(ops::lookup(&s, "nope")
            .unwrap_err()
            .to_string()
            .contains("no such image: nope"));
        assert!(!ops::exists(&s, "nope").unwrap() && ops::exists(&s, "busybox").unwrap());
        // tag, then rmi of that name only untags.
        ops::tag(&s, "layers", "localhost/mine:v1").unwrap();
        let (r, m) = ops::lookup(&s, "mine:v1").unwrap();
        assert_eq!(
            (r.id, m),
            (layers.clone(), Matched::Name("localhost/mine:v1".into()))
        );
        let out = ops::remove(&s, "localhost/mine:v1", false, &none).unwrap();
        assert_eq!(
            out.iter().map(|r| r.to_string()).collect::<Vec<_>>(),
            ["Untagged: localhost/mine:v1"]
        );
        assert!(s.image(&layers).unwrap().is_some());
        // An image a container uses is not deleted, -f or not; it names the container.
        let web = |d: &Digest| (d == &layers).then(|| "web".to_string());
        for force in [false, true] {
            let e = ops::remove(&s, layers.short(), force, &web)
                .unwrap_err()
                .to_string();
            assert!(e.contains("container web"), "{e}");
        }
        let e = ops::remove(&s, "layers", false, &web)
            .unwrap_err()
            .to_string();
        assert!(e.contains("must force") && e.contains("web"), "{e}");
        assert!(s.image(&layers).unwrap().is_some());
        // By id, names in two repositories need -f.
        let e = ops::remove(&s, busybox.short(), false, &none)
            .unwrap_err()
            .to_string();
        assert!(e.contains("referenced in multiple repositories"), "{e}");
        let ml = id_of(&s, "docker.io/library/multilayer:latest");
        let shared = s.image(&ml).unwrap().unwrap().layers[0].diff_id.clone();
        let out = ops::remove(&s, busybox.short(), true, &none).unwrap();
        let out: Vec<String> = out.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            out,
            [
                "Untagged: busybox:latest",
                "Untagged: multiarch:latest",
                &format!("Deleted: {busybox}")
            ]
        );
        // The base layer multilayer shares stays; busybox's config blob goes.
        assert!(s.layer_dir(&shared).join("bin/busybox").is_file());
        assert!(!s.has_blob(&busybox));
        // no-eof: its only name removes it, and its layer and blobs.
        let ne = s
            .image(&id_of(&s, "docker.io/library/no-eof:latest"))
            .unwrap()
            .unwrap();
        let out = ops::remove(&s, "no-eof", false, &none).unwrap();
        assert_eq!(out.len(), 2);
        assert!(!s.layer_dir(&ne.layers[0].diff_id).exists());
        assert!(!s.has_blob(&ne.layers[0].blob) && !s.has_blob(&ne.manifest));
        // A name moved to another image leaves the first dangling; prune removes it.
        ops::tag(&s, "layers", "docker.io/library/multilayer:latest").unwrap();
        let dangling = ops::filter(&s, ops::list(&s).unwrap(), &["dangling=true".into()]).unwrap();
        assert_eq!(dangling.iter().map(|i| &i.id).collect::<Vec<_>>(), [&ml]);
        let rows = ops::rows(&dangling);
        assert_eq!(
            (rows[0].repository.as_str(), rows[0].tag.as_str()),
            ("<none>", "<none>")
        );
        let p = ops::prune(&s, false, &none).unwrap();
        assert_eq!(p.removed, [Removed::Deleted(ml.clone())]);
        assert!(p.reclaimed > 0);
        assert!(!s.layer_dir(&shared).exists());
        // prune -a keeps what a container uses.
        let p = ops::prune(&s, true, &web).unwrap();
        assert!(p.removed.is_empty());
        assert_eq!(ops::list(&s).unwrap().len(), 1);
        let p = ops::prune(&s, true, &none).unwrap();
        assert_eq!(p.removed.len(), 3);
        assert_store_empty(&s);
    }

    #[test]
    fn filters_and_disk_usage() {
        let t = Tmp::new("filters");
        let s = store(&t);
        load_oci_fixture(&s);
        let all = ops::list(&s).unwrap();
        let ids = |f: &[&str]| -> Vec<Digest> {
            let f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
            let mut v: Vec<Digest> = ops::filter(&s, all.clone(), &f)
                .unwrap()
                .into_iter()
                .map(|i| i.id)
                .collect();
            v.sort();
            v
        };
        let layers = id_of(&s, "docker.io/library/layers:latest");
        assert_eq!(ids(&["reference=lay*"]), std::slice::from_ref(&layers));
        assert_eq!(
            ids(&["reference=docker.io/library/layers"]),
            std::slice::from_ref(&layers)
        );
        assert_eq!(
            ids(&["label=org.example.fixture=layers"]),
            std::slice::from_ref(&layers)
        );
        assert_eq!(
            ids(&["label=org.example.fixture"]),
            std::slice::from_ref(&layers)
        );
        assert_eq!(ids(&["reference=lay*", "reference=no-eof"]).len(), 2);
        assert!(ids(&["reference=lay*", "dangling=true"]).is_empty());
        assert_eq!(ids(&["dangling=false"]).len(), 4);
        // no-eof has no created time; layers is the oldest dated one.
        assert!(ids(&["before=layers"]).iter().all(|d| d != &layers));
        assert!(ops::filter(&s, all.clone(), &["bogus=1".into()]).is_err());
        let du = ops::disk_usage(&s, &|d: &Digest| usize::from(d == &layers)).unwrap();
        assert_eq!((du.total, du.active), (4, 1));
        let layers_u = du.images.iter().find(|i| i.id == layers).unwrap();
        assert_eq!(layers_u.containers, 1);
        assert_eq!(layers_u.size, s.image(&layers).unwrap().unwrap().size);
        assert!(du.reclaimable < du.size && du.reclaimable > 0);
        let ml = du
            .images
            .iter()
            .find(|i| i.id == id_of(&s, "docker.io/library/multilayer:latest"))
            .unwrap();
        assert!(ml.shared_size > 1_900_000 && ml.unique_size < ml.size);
    }

    #[test]
    fn save_and_load_roundtrip_both_formats_several_images() {
        let t = Tmp::new("save");
        let s = store(&t);
        load_oci_fixture(&s);
        let want = [
            "docker.io/library/layers:latest",
            "docker.io/library/multilayer:latest",
        ];
        let imgs: Vec<(Digest, Vec<String>)> = want
            .iter()
            .map(|n| (id_of(&s, n), vec![n.to_string()]))
            .collect();
        for (fmt, file) in [
            (ArchiveFormat::Docker, "out.docker.tar"),
            (ArchiveFormat::Oci, "out.oci.tar"),
        ] {
            let path = t.0.join(file);
            archive::save(&s, &imgs, fmt, &mut fs::File::create(&path).unwrap()).unwrap();
            // Another tool reads it.
            let transport = if fmt == ArchiveFormat::Docker {
                "docker-archive"
            } else {
                "oci-archive"
            };
            let refname = if fmt == ArchiveFormat::Docker {
                "layers:latest"
            } else {
                ""
            };
            let arg = if refname.is_empty() {
                format!("{transport}:{}", path.display())
            } else {
                format!("{transport}:{}:{refname}", path.display())
            };
            if fmt == ArchiveFormat::Docker {
                let out = Command::new("skopeo")
                    .args(["inspect", "--config", &arg])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "skopeo: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(v["config"]["WorkingDir"], "/data");
            }
            let t2 = Tmp::new("save-into");
            let s2 = store(&t2);
            let l = archive::load(&s2, &mut fs::File::open(&path).unwrap()).unwrap();
            let mut got: Vec<(Digest, Vec<String>)> =
                l.into_iter().map(|l| (l.id, l.names)).collect();
            got.sort();
            let mut exp = imgs.clone();
            exp.sort();
            assert_eq!(got, exp, "{fmt:?}");
            let rec = s2.image(&imgs[0].0).unwrap().unwrap();
            let lowers: Vec<PathBuf> = rec
                .layers
                .iter()
                .rev()
                .map(|l| s2.layer_dir(&l.diff_id))
                .collect();
            let target = t2.0.join("copy");
            fs::create_dir(&target).unwrap();
            overlay::copy_layers(&lowers, &target).unwrap();
            check_layers_tree(&target, 0);
        }
        // A skopeo copy of our docker-archive into an OCI layout, as a second opinion.
        let out = Command::new("skopeo")
            .args([
                "copy",
                "--quiet",
                &format!(
                    "docker-archive:{}:multilayer:latest",
                    t.0.join("out.docker.tar").display()
                ),
            ])
            .arg(format!("oci:{}:m", t.0.join("layout").display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn import_makes_a_one_layer_image_with_changes() {
        let t = Tmp::new("import");
        let s = store(&t);
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar -C {} -cf - . | gzip -c",
                fixtures().join("rootfs/busybox").display()
            ))
            .output()
            .unwrap();
        assert!(out.status.success());
        let changes: Vec<String> = [
            r#"CMD ["/bin/sh", "-c", "echo hi"]"#,
            "ENTRYPOINT /bin/entry --flag",
            r#"ENV A=1 B="two words""#,
            "ENV C legacy form",
            "WORKDIR /w",
            "USER 1000:1000",
            "EXPOSE 8080 53/udp",
            r#"LABEL a=b "c d"=e"#,
            "VOLUME /data /cache",
            "STOPSIGNAL SIGINT",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let id = archive::import(
            &s,
            &mut &out.stdout[..],
            &changes,
            Some("from test"),
            &["localhost/imported:v1".into()],
        )
        .unwrap();
        let rec = s.image(&id).unwrap().unwrap();
        assert_eq!(rec.layers.len(), 1);
        assert!(s
            .layer_dir(&rec.layers[0].diff_id)
            .join("bin/busybox")
            .is_file());
        let v = ops::inspect(&s, &rec).unwrap();
        let c = &v["Config"];
        assert_eq!(c["Cmd"], serde_json::json!(["/bin/sh", "-c", "echo hi"]));
        assert_eq!(
            c["Entrypoint"],
            serde_json::json!(["/bin/sh", "-c", "/bin/entry --flag"])
        );
        assert_eq!(
            c["Env"],
            serde_json::json!(["A=1", "B=two words", "C=legacy form"])
        );
        assert_eq!(
            (c["WorkingDir"].as_str(), c["User"].as_str()),
            (Some("/w"), Some("1000:1000"))
        );
        assert_eq!(
            c["ExposedPorts"],
            serde_json::json!({"8080/tcp": {}, "53/udp": {}})
        );
        assert_eq!(c["Labels"], serde_json::json!({"a": "b", "c d": "e"}));
        assert_eq!(c["Volumes"], serde_json::json!({"/data": {}, "/cache": {}}));
        assert_eq!(c["StopSignal"], "SIGINT");
        assert_eq!(v["RepoTags"], serde_json::json!(["localhost/imported:v1"]));
        let h = ops::history(&s, &rec).unwrap();
        assert_eq!(h[0].comment, "from test");
        // A bad --change fails before anything is stored.
        let t2 = Tmp::new("import-bad");
        let s2 = store(&t2);
        for bad in [
            "RUN rm -rf /",
            "EXPOSE http",
            "CMD",
            r#"LABEL a="unterminated"#,
        ] {
            let e = archive::import(&s2, &mut &out.stdout[..], &[bad.to_string()], None, &[])
                .unwrap_err();
            assert!(e.to_string().contains("--change"), "{e}");
        }
        // A hostile tarball fails and leaves nothing.
        let evil = Build::new()
            .symlink("etc", "/etc")
            .file("etc/passwd", b"pwned")
            .finish();
        assert!(archive::import(&s2, &mut &evil[..], &[], None, &[]).is_err());
        assert_store_empty(&s2);
    }
}

#[test]
fn overlay_refused_falls_back_to_a_copy() {
    let t = Tmp::new("fallback");
    let s = store(&t);
    load_oci_fixture(&s);
    let rec = s
        .image(&id_of(&s, "docker.io/library/layers:latest"))
        .unwrap()
        .unwrap();
    let base = t.0.clone();
    in_mount_ns(move || {
        // overlayfs refuses an overlay as its upper filesystem: a backing filesystem it
        // cannot use, as a container's storage on some hosts.
        for d in ["l", "u", "w", "m"] {
            fs::create_dir_all(base.join(d)).unwrap();
        }
        let opts = format!(
            "lowerdir={0}/l,upperdir={0}/u,workdir={0}/w",
            base.display()
        );
        nix::mount::mount(
            Some("overlay"),
            &base.join("m"),
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(opts.as_str()),
        )
        .unwrap();
        let c = base.join("m");
        for d in ["upper", "work", "merged"] {
            fs::create_dir_all(c.join(d)).unwrap();
        }
        let kind = overlay::mount_rootfs(
            &s,
            &rec,
            &c.join("upper"),
            &c.join("work"),
            &c.join("merged"),
        )
        .unwrap();
        assert_eq!(kind, RootfsKind::Copy);
        check_layers_tree(&c.join("merged"), 0);
        // Nothing was mounted on the target.
        let mi = fs::read_to_string("/proc/thread-self/mountinfo").unwrap();
        assert!(!mi.contains(&format!("{} ", c.join("merged").display())));
    });
}

#[test]
fn image_mount_and_unmount() {
    let t = Tmp::new("imount");
    let s = store(&t);
    load_oci_fixture(&s);
    let rec = s
        .image(&id_of(&s, "docker.io/library/layers:latest"))
        .unwrap()
        .unwrap();
    let bb = s
        .image(&id_of(&s, "docker.io/library/busybox:latest"))
        .unwrap()
        .unwrap();
    in_mount_ns(move || {
        let p = overlay::image_mount(&s, &rec).unwrap();
        check_layers_tree(&p, 0);
        // Read-only, and mounting again gives the same path.
        assert!(fs::write(p.join("data/new"), "x").is_err());
        assert_eq!(overlay::image_mount(&s, &rec).unwrap(), p);
        // A one-layer image mounts too.
        let q = overlay::image_mount(&s, &bb).unwrap();
        assert!(q.join("bin/busybox").is_file());
        assert_eq!(overlay::mounted_images(&s).len(), 2);
        // A mounted image is not removed.
        let e = super::ops::remove(&s, "layers", false, &|_| None).unwrap_err();
        assert!(e.to_string().contains("mounted"), "{e}");
        assert!(overlay::image_unmount(&s, &rec.id).unwrap());
        assert!(!overlay::image_unmount(&s, &rec.id).unwrap());
        assert!(!p.exists());
        assert!(overlay::image_unmount(&s, &bb.id).unwrap());
        assert!(overlay::mounted_images(&s).is_empty());
        super::ops::remove(&s, "layers", false, &|_| None).unwrap();
    });
}
