//! The steps that make layers: RUN (a container of the step's image, through the runtime
//! library as `run` makes them) and COPY/ADD (written through an overlay of the step's
//! image, no container). Both leave an overlay upper directory that `diff` turns into the
//! step's layer; the overlay is mounted in this process's private mount namespace and
//! unmounted before the staging area that holds it is removed.

use std::collections::BTreeSet;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nix::mount::{MntFlags, MsFlags};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::context::{self, Attrs, EntryKind, Tree};
use super::parse::Instruction;
use super::{Builder, Cache, Image, StageState};
use crate::front::containers::runtime as rt;
use crate::front::digest::Digest;
use crate::front::images::overlay::{self, RootfsKind};
use crate::front::images::store::{ImageRecord, LayerRef, Staged, Store};

/// Moves this process into a mount namespace of its own (a slave of the host's): the
/// build's overlays are never seen outside it and vanish with it.
pub(crate) fn private_mounts() -> Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .map_err(|e| anyhow!("a mount namespace for the build: {}", e.desc()))?;
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .map_err(|e| anyhow!("make / a slave mount: {}", e.desc()))
}

/// An image's layers (top first) as the store has them.
fn layer_dirs(store: &Store, layers: &[LayerRef]) -> Vec<PathBuf> {
    layers
        .iter()
        .rev()
        .map(|l| store.layer_dir(&l.diff_id))
        .collect()
}

fn record_of(img: &Image) -> ImageRecord {
    ImageRecord {
        id: img.id(),
        manifest: img.id(),
        manifests: Vec::new(),
        layers: img.layers.clone(),
        repo_digests: Vec::new(),
        added: String::new(),
        last_tag_time: None,
        size: 0,
    }
}

/// An overlay of an image with a fresh upper directory, in a staging area; unmounted when
/// dropped (before the staging area goes).
pub(crate) struct Mounted<'s> {
    pub(crate) upper: PathBuf,
    pub(crate) merged: PathBuf,
    mounted: bool,
    // Declared last: dropped after the unmount in Drop.
    pub(crate) staging: Staged<'s>,
}

impl Mounted<'_> {
    pub(crate) fn unmount(&mut self) -> Result<()> {
        if self.mounted {
            nix::mount::umount2(&self.merged, MntFlags::MNT_DETACH)
                .map_err(|e| anyhow!("unmount {}: {}", self.merged.display(), e.desc()))?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}

pub(crate) fn mount<'s>(store: &'s Store, img: &Image) -> Result<Mounted<'s>> {
    let staging = store.begin()?;
    let upper = staging.scratch("upper");
    let work = staging.scratch("work");
    let merged = staging.scratch("merged");
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d).with_context(|| format!("create {}", d.display()))?;
    }
    // The overlay's root shows the upper directory's mode.
    let mode = img
        .layers
        .last()
        .and_then(|l| std::fs::metadata(store.layer_dir(&l.diff_id)).ok())
        .map_or(0o755, |m| {
            std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777
        });
    std::fs::set_permissions(&upper, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    let mut m = Mounted {
        upper,
        merged,
        mounted: false,
        staging,
    };
    match overlay::mount_rootfs(store, &record_of(img), &m.upper, &work, &m.merged)? {
        RootfsKind::Overlay => m.mounted = true,
        RootfsKind::Copy => bail!("the build needs overlay mounts, which this filesystem refuses"),
    }
    Ok(m)
}

/// The upper directory as a layer in the store (blob and unpacked tree); `below` are the
/// layers under it.
pub(crate) fn store_layer(
    store: &Store,
    upper: &Path,
    below: &[LayerRef],
    skip: &BTreeSet<Vec<u8>>,
) -> Result<LayerRef> {
    let mut st = store.begin()?;
    let tmp = st.scratch("layer.tar");
    let w = super::diff::write_layer(upper, &tmp, skip)?;
    st.adopt_verified(&tmp, &w.diff_id)?;
    let lowers: Vec<Digest> = below.iter().map(|l| l.diff_id.clone()).collect();
    st.stage_layer(&w.diff_id, &w.diff_id, &lowers)?;
    st.commit()?;
    Ok(LayerRef {
        diff_id: w.diff_id.clone(),
        blob: w.diff_id,
        media_type: crate::front::images::manifest::OCI_LAYER_TAR.into(),
        blob_size: w.size,
    })
}

/// What the image's layers (top first) show at `rel`, as the overlay would.
fn lower_meta(layers: &[PathBuf], rel: &str) -> Option<std::fs::Metadata> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let comps: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
    for l in layers {
        let mut p = l.clone();
        for (i, c) in comps.iter().enumerate() {
            if std::fs::symlink_metadata(p.join(format!(".wh.{c}"))).is_ok() {
                return None;
            }
            p.push(c);
            match std::fs::symlink_metadata(&p) {
                Ok(m) => {
                    if m.file_type().is_char_device() && m.rdev() == 0 {
                        return None;
                    }
                    if i + 1 == comps.len() {
                        return Some(m);
                    }
                }
                Err(_) => break,
            }
        }
    }
    None
}

/// Mount points the runtime made in the rootfs (an empty file, or a directory holding
/// only such, that the image did not have): not the step's content, as in Docker. Their
/// names in `upper`, for the diff to leave out.
fn mount_point_skips(upper: &Path, lowers: &[PathBuf], targets: &[String]) -> BTreeSet<Vec<u8>> {
    let mut paths: Vec<String> = Vec::new();
    for t in targets {
        let Some(c) = context::clean(t) else { continue };
        let mut acc = String::new();
        for part in c.split('/').filter(|p| !p.is_empty()) {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(part);
            if !paths.contains(&acc) {
                paths.push(acc.clone());
            }
        }
    }
    // Deepest first, so that a directory made only to hold a mount point goes too.
    paths.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    let mut skip = BTreeSet::new();
    for p in paths {
        use std::os::unix::fs::MetadataExt;
        let full = upper.join(&p);
        let Ok(m) = std::fs::symlink_metadata(&full) else {
            continue;
        };
        let lower = lower_meta(lowers, &p);
        if let Some(l) = &lower {
            // A directory of the image copied up only because a mount point was made in
            // it (same owner and mode, nothing else in it) is no change either.
            let same = l.is_dir()
                && m.is_dir()
                && (l.mode(), l.uid(), l.gid()) == (m.mode(), m.uid(), m.gid());
            if !same {
                continue;
            }
        }
        let empty = if m.is_dir() {
            std::fs::read_dir(&full).is_ok_and(|rd| {
                rd.flatten().all(|e| {
                    let mut n = p.clone().into_bytes();
                    n.push(b'/');
                    n.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(
                        e.file_name().as_os_str(),
                    ));
                    skip.contains(&n)
                })
            })
        } else {
            lower.is_none() && m.is_file() && m.len() == 0
        };
        if empty {
            skip.insert(p.into_bytes());
        }
    }
    skip
}

/// The layer of `upper` over `below` (whose directories, top first, are `lowers`),
/// leaving out the runtime's mount points `targets`.
pub(crate) fn layer_without_mount_points(
    store: &Store,
    upper: &Path,
    below: &[LayerRef],
    lowers: &[PathBuf],
    targets: &[String],
) -> Result<LayerRef> {
    let skip = mount_point_skips(upper, lowers, targets);
    store_layer(store, upper, below, &skip)
}

/// RUN: `argv` in a container of `img` with `args` added to its environment; returns the
/// layer of what it changed. `shown` is the command as Docker's failure message names it.
pub(crate) fn run(
    b: &Builder,
    img: &Image,
    argv: &[String],
    args: &[String],
    shown: &str,
) -> Result<LayerRef> {
    let store = b.store;
    let mut m = mount(store, img)?;
    let lowers = layer_dirs(store, &img.layers);
    let id = crate::front::containers::new_id();
    let short = &id[..12];
    b.say(&format!(" ---> Running in {short}"));
    let cfg = crate::front::specgen::ImageConfig::from_image(&img.config);
    // The working directory exists in the step's layer, as Docker makes it.
    let root = nix::fcntl::open(
        &m.merged,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    crate::rootfs::resolve::mkdir_all_in_root(root.as_fd(), Path::new(&img.workdir()), 0o755)
        .map_err(|e| anyhow!("WORKDIR {}: {}", img.workdir(), e.desc()))?;
    drop(root);
    let a = crate::cli::front::RunArgs {
        command: argv.to_vec(),
        entrypoint: Some(String::new()),
        env: args.to_vec(),
        network: b.o.network.clone(),
        ..Default::default()
    };
    let run_dir = m.staging.scratch("run");
    std::fs::create_dir_all(&run_dir)?;
    let rec = crate::front::specgen::generate(&crate::front::specgen::Input {
        args: &a,
        image: &cfg,
        image_name: String::new(),
        image_id: String::new(),
        rootfs: std::path::absolute(&m.merged)?,
        layers: &lowers,
        id: &id,
        name: format!("build-{short}"),
        run_dir: run_dir.clone(),
        log_path: run_dir.join("log"),
        // Rootless, the step's container nests its user namespace in berth's, as `run`'s.
        rootless: b.g.rootless,
        // A step mounts no volumes: what RUN writes under a VOLUME path is the layer's.
        mounts: &Default::default(),
    })?;
    for (path, text) in crate::front::specgen::etc_files(&rec) {
        std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
    }
    let spec: oci_spec::runtime::Spec =
        serde_json::from_value(rec.spec.clone()).context("the step's spec")?;
    let targets: Vec<String> = spec
        .mounts()
        .as_ref()
        .map(|v| {
            v.iter()
                .map(|m| m.destination().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    let g = b.g.runtime();
    let null = std::fs::File::open("/dev/null")?;
    let (out, err) = if b.o.quiet {
        let w = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
        (w.try_clone()?, w)
    } else {
        (
            std::fs::File::from(std::io::stdout().as_fd().try_clone_to_owned()?),
            std::fs::File::from(std::io::stderr().as_fd().try_clone_to_owned()?),
        )
    };
    // Seen as a container with a live monitor (this process) while the step runs.
    let record = super::net::StepRecord::write(b.g, &id)?;
    let bundle = run_dir.join("bundle");
    let created = rt::create(
        &g,
        &id,
        spec,
        &bundle,
        rt::Stdio::Fds([null.as_fd(), out.as_fd(), err.as_fd()]),
    );
    let created = match created {
        Ok(c) => c,
        Err(e) => {
            let _ = rt::delete(&g, &id);
            return Err(e);
        }
    };
    // On a bridge network, connected before start as `run`'s monitor does it; the
    // endpoint then holds the step's record.
    let mut drop_at_end = None;
    let attached = if crate::front::network::is_bridge_mode(&rec.host_config.network_mode) {
        super::net::attach(&rec, created.pid, record).map(Some)
    } else {
        drop_at_end = Some(record);
        Ok(None)
    };
    // The previous step's endpoint kept the bridge up until this one was connected.
    let previous = b.endpoint.take().map_or(Ok(()), |e| e.release());
    let (status, endpoint) = match attached {
        Ok(ep) => {
            let st = match rt::start(&created) {
                Ok(_) => b.interrupts.wait(created.pid),
                Err(e) => Err(e),
            };
            (st, ep)
        }
        Err(e) => (Err(e), None),
    };
    if status.is_err() {
        let _ = rt::kill(&g, &id, libc::SIGKILL, true);
        let _ = nix::sys::signal::kill(Pid::from_raw(created.pid), nix::sys::signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(created.pid), None);
    }
    // The processes a killed init leaves in its pid namespace take a moment to go: their
    // cgroup cannot be removed before (bounded retries).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while rt::destroy(&created).is_err() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = rt::delete(&g, &id);
    drop(drop_at_end);
    // Kept for the next step (released by it, or by the build's end or drop).
    *b.endpoint.borrow_mut() = endpoint;
    let code = match status? {
        WaitStatus::Exited(_, c) => c,
        WaitStatus::Signaled(_, s, _) => 128 + s as i32,
        other => bail!("RUN: unexpected status {other:?}"),
    };
    previous.context("release the previous step's network endpoint")?;
    m.unmount()?;
    b.say(&format!("Removing intermediate container {short}"));
    if code != 0 {
        return Err(StepFailed(format!(
            "The command '{shown}' returned a non-zero code: {code}"
        ))
        .into());
    }
    layer_without_mount_points(store, &m.upper, &img.layers, &lowers, &targets)
}

/// A RUN whose command failed: Docker's own line, without the file and line.
#[derive(Debug)]
pub(crate) struct StepFailed(String);

impl std::fmt::Display for StepFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StepFailed {}

/// SIGINT, SIGTERM and SIGHUP held for the whole build (a signal arriving while a step's
/// container is made or removed would otherwise end berth with the container, its runtime
/// record and its staging area left behind): while a container runs, one kills it, and
/// the build ends once it is removed; otherwise the build ends at the next step. The
/// container's init starts with every signal unblocked (the runtime resets them).
pub(crate) struct Interrupts {
    old: nix::sys::signal::SigSet,
    fd: nix::sys::signalfd::SignalFd,
}

impl Interrupts {
    pub(crate) fn block() -> Result<Interrupts> {
        use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow, Signal};
        let mut mask = SigSet::empty();
        for s in [
            Signal::SIGINT,
            Signal::SIGTERM,
            Signal::SIGHUP,
            Signal::SIGCHLD,
        ] {
            mask.add(s);
        }
        let mut old = SigSet::empty();
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), Some(&mut old))?;
        let fd = nix::sys::signalfd::SignalFd::with_flags(
            &mask,
            nix::sys::signalfd::SfdFlags::SFD_CLOEXEC | nix::sys::signalfd::SfdFlags::SFD_NONBLOCK,
        );
        match fd {
            Ok(fd) => Ok(Interrupts { old, fd }),
            Err(e) => {
                let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
                Err(anyhow!("signalfd: {}", e.desc()))
            }
        }
    }

    /// An interrupting signal received since the last look ends the build here.
    pub(crate) fn check(&self) -> Result<()> {
        // Reading takes the signals off the pending set: the mask put back at the end must
        // not deliver them.
        let mut interrupted = None;
        while let Ok(Some(info)) = self.fd.read_signal() {
            if info.ssi_signo as i32 != libc::SIGCHLD {
                interrupted.get_or_insert(info.ssi_signo as i32);
            }
        }
        match interrupted {
            Some(sig) => bail!("interrupted by signal {sig}"),
            None => Ok(()),
        }
    }

    /// Waits for `pid`; an interrupting signal kills it and ends the build.
    pub(crate) fn wait(&self, pid: i32) -> Result<WaitStatus> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use nix::sys::wait::WaitPidFlag;
        let pid = Pid::from_raw(pid);
        let mut interrupted = None;
        loop {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => {}
                Ok(st) => {
                    return match interrupted {
                        Some(sig) => Err(anyhow!(
                            "interrupted by signal {sig}: the step's container was killed"
                        )),
                        None => Ok(st),
                    };
                }
                Err(e) => bail!("RUN: wait: {}", e.desc()),
            }
            // SIGCHLD (held too) wakes this up when the container's init ends.
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => bail!("RUN: poll: {}", e.desc()),
            }
            while let Ok(Some(info)) = self.fd.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig != libc::SIGCHLD {
                    interrupted.get_or_insert(sig);
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL);
                }
            }
        }
    }
}

impl Drop for Interrupts {
    fn drop(&mut self) {
        let _ = nix::sys::signal::sigprocmask(
            nix::sys::signal::SigmaskHow::SIG_SETMASK,
            Some(&self.old),
            None,
        );
    }
}

/// COPY/ADD: the sources written into the step's image; a cached step is reused.
#[allow(clippy::too_many_arguments)]
pub(crate) fn copy(
    b: &mut Builder,
    ins: &Instruction,
    st: &mut StageState,
    sources: Vec<String>,
    urls: Vec<String>,
    dest: String,
    dest_dir_syntax: bool,
    chmod: Option<u32>,
    from: Option<&Image>,
) -> Result<()> {
    let store = b.store;
    // The tree the sources are read from: the context, or another stage's or image's
    // root filesystem mounted read-only for the step (none when ADD only fetches URLs).
    let mut from_mount = None;
    let tree: Option<std::rc::Rc<Tree>> = match from {
        _ if sources.is_empty() => None,
        Some(img) => {
            let m = mount(store, img)?;
            let t = Tree::walk_sources(&m.merged, &sources)
                .map_err(|e| b.err(ins, format!("{} failed: {e:#}", ins.cmd)))?;
            from_mount = Some(m);
            Some(std::rc::Rc::new(t))
        }
        None => Some(b.context_tree().map_err(|e| b.err(ins, format!("{e:#}")))?),
    };
    let mut matched = Vec::new();
    for s in &sources {
        let m = tree
            .as_ref()
            .context("no source tree")?
            .matches(s)
            .map_err(|e| b.err(ins, format!("{} failed: {e:#}", ins.cmd)))?;
        matched.extend(m);
    }
    // URLs are fetched on every build (Docker's way): what came is in the cache key.
    let downloads = store.begin()?;
    let mut fetched = Vec::new();
    for (i, u) in urls.iter().enumerate() {
        let f = super::fetch::fetch(u, &downloads.scratch(&format!("url{i}")))
            .map_err(|e| b.err(ins, format!("ADD {u}: {e:#}")))?;
        fetched.push(f);
    }
    let mut digest = match &tree {
        Some(t) => t.digest(&matched)?,
        None => String::new(),
    };
    for f in &fetched {
        digest.push_str(&format!(" {} {} {:?} {}", f.url, f.digest, f.name, f.mtime));
    }
    if !fetched.is_empty() {
        digest = Digest::of(digest.as_bytes()).to_string();
    }
    let chown = ins.flag("chown").map(String::from);
    let text = format!("{} {}", ins.original, digest);
    let key = Cache::key(&st.img.id(), &text, &st.arg_env().join("\n"));
    let created_by = format!(
        "/bin/sh -c #(nop) {} {} in {dest}",
        ins.cmd,
        digest.trim_start_matches("sha256:")
    );
    if !b.o.no_cache {
        if let Some(img) = b.cache.get(store, &key) {
            b.say(" ---> Using cache");
            b.say(&format!(" ---> {}", img.id().short()));
            st.img = img;
            return Ok(());
        }
    }
    let lowers = layer_dirs(store, &st.img.layers);
    let attrs = match &chown {
        Some(c) => {
            let u = crate::front::specgen::resolve_user(
                crate::front::specgen::RootView::Layers(&lowers),
                c,
                &[],
            )
            .map_err(|e| b.err(ins, format!("--chown={c}: {e:#}")))?;
            Attrs {
                uid: u.uid,
                gid: u.gid,
                chmod,
            }
        }
        None => Attrs {
            uid: 0,
            gid: 0,
            chmod,
        },
    };
    let mut m = mount(store, &st.img)?;
    let root = nix::fcntl::open(
        &m.merged,
        nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY | nix::fcntl::OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )?;
    let count = matched.len() + fetched.len();
    let dest_is_dir = dest_dir_syntax
        || count > 1
        || context::is_dir_in(root.as_fd(), &dest)
        || tree
            .as_ref()
            .is_some_and(|t| matched.iter().any(|s| t.entries[s].kind == EntryKind::Dir));
    if count > 1 && !dest_dir_syntax && !context::is_dir_in(root.as_fd(), &dest) {
        return Err(b.err(
            ins,
            format!("When using {} with more than one source file, the destination must be a directory and end with a /", ins.cmd),
        ));
    }
    for f in &fetched {
        if dest_is_dir && f.name.is_none() {
            return Err(b.err(
                ins,
                format!("ADD {}: cannot determine filename from url", f.url),
            ));
        }
        let t = Tree::walk(&f.dir, None)?;
        context::copy(&t, f.file_name(), root.as_fd(), &dest, dest_is_dir, attrs)
            .map_err(|e| b.err(ins, format!("ADD {} failed: {e:#}", f.url)))?;
    }
    drop(downloads);
    for s in &matched {
        let Some(tree) = tree.as_deref() else { break };
        let e = &tree.entries[s];
        if ins.cmd == "ADD"
            && from.is_none()
            && e.kind == EntryKind::File
            && context::is_archive(tree.open_file(s)?)
        {
            let d =
                context::dest_dir(root.as_fd(), &dest).map_err(|e| b.err(ins, format!("{e:#}")))?;
            let opts = crate::front::images::unpack::Options {
                privilege: crate::front::images::unpack::Privilege::Root,
                ids: &Default::default(),
                lowers: &[],
            };
            let path = crate::rootfs::resolve::proc_fd_path(d.as_fd());
            crate::front::images::unpack::unpack(
                std::io::BufReader::new(tree.open_file(s)?),
                &path,
                None,
                &opts,
            )
            .map_err(|e| b.err(ins, format!("ADD {s}: {e:#}")))?;
            continue;
        }
        context::copy(tree, s, root.as_fd(), &dest, dest_is_dir, attrs)
            .map_err(|e| b.err(ins, format!("{} failed: {e:#}", ins.cmd)))?;
    }
    drop(root);
    m.unmount()?;
    drop(from_mount);
    let layer = store_layer(store, &m.upper, &st.img.layers, &BTreeSet::new())?;
    let img = st.img.next(&created_by, Some(layer))?;
    b.cache.put(&key, &img)?;
    b.say(&format!(" ---> {}", img.id().short()));
    st.img = img;
    Ok(())
}
