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
        let kind = overlay::mount_rootfs(
            &s,
            &rec,
            &base.join("upper"),
            &base.join("work"),
            &base.join("merged"),
        )
        .unwrap();
        assert_eq!(kind, RootfsKind::Overlay);
        for i in [0, 59, 119] {
            assert_eq!(
                fs::read_to_string(base.join(format!("merged/f{i}"))).unwrap(),
                i.to_string()
            );
        }
        nix::mount::umount(&base.join("merged")).unwrap();
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
