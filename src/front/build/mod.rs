//! `build`: a Dockerfile becomes an image in berth's store, step by step as Docker's
//! classic builder does it. Each step's result is an image configuration (and its layers):
//! RUN executes in a container of the step's image through berth's own runtime and its
//! overlay upper directory becomes a layer (`diff`), COPY/ADD write through an overlay of
//! the step's image the same way without a container, the other instructions change the
//! configuration only. A step is reused from the cache (`images/build-cache/`) when its
//! parent, its instruction (with the build arguments in scope) and, for COPY/ADD, the
//! content of what it reads are the same. Layers are committed to the store as they are
//! made; only the final image gets a record and names.
//!
//! Mounts: the build process moves into a mount namespace of its own (a slave of the
//! host's) before anything is mounted, so whatever happens to it, nothing stays mounted.

pub(crate) mod commit;
pub(crate) mod context;
pub(crate) mod diff;
mod fetch;
mod net;
pub(crate) mod parse;
mod squash;
mod step;
pub(crate) mod usage;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::front::digest::Digest;
use crate::front::images::manifest;
use crate::front::images::store::{now_rfc3339, LayerRef, Store};
use context::{Ignore, Tree};
use parse::{Form, Instruction};

/// Arguments every build knows without an ARG (Docker's predefined proxy arguments).
const PREDEFINED: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub(crate) struct Options {
    pub(crate) dockerfile: String,
    /// As errors name it (`Dockerfile`, `sub/Containerfile`, `-`).
    pub(crate) dockerfile_name: String,
    /// The context directory; None: no context (a Dockerfile on stdin).
    pub(crate) context: Option<PathBuf>,
    pub(crate) ignore: Option<Ignore>,
    /// Qualified `repo:tag` names.
    pub(crate) tags: Vec<String>,
    pub(crate) build_args: Vec<(String, String)>,
    pub(crate) target: Option<String>,
    pub(crate) no_cache: bool,
    pub(crate) quiet: bool,
    pub(crate) labels: Vec<(String, String)>,
    /// `--network` for RUN, as `run` takes it (empty: `run`'s rootless default, only `lo`).
    pub(crate) network: Vec<String>,
    /// `--squash`: the layers built on the target stage's base merged into one.
    pub(crate) squash: bool,
}

/// An image as a step leaves it: its configuration (exact bytes: the id is their digest)
/// and its layers.
#[derive(Clone, Debug)]
pub(crate) struct Image {
    pub(crate) config: Value,
    pub(crate) bytes: Vec<u8>,
    pub(crate) layers: Vec<LayerRef>,
}

impl Image {
    pub(crate) fn new(config: Value, layers: Vec<LayerRef>) -> Result<Image> {
        let bytes = crate::sys::json::to_vec(&config)?;
        Ok(Image {
            config,
            bytes,
            layers,
        })
    }

    pub(crate) fn id(&self) -> Digest {
        Digest::of(&self.bytes)
    }

    fn scratch() -> Result<Image> {
        Image::new(
            json!({
                "architecture": manifest::host_arch(),
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }),
            Vec::new(),
        )
    }

    /// The `config` object (created if missing).
    fn cfg(&mut self) -> &mut serde_json::Map<String, Value> {
        let root = self
            .config
            .as_object_mut()
            .expect("image config is an object");
        let c = root.entry("config").or_insert_with(|| json!({}));
        if !c.is_object() {
            *c = json!({});
        }
        c.as_object_mut().expect("object")
    }

    fn env(&self) -> Vec<String> {
        self.config["config"]["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn workdir(&self) -> String {
        self.config["config"]["WorkingDir"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_string()
    }

    fn shell(&self) -> Vec<String> {
        self.config["config"]["Shell"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// The next step's image: a history entry, and the layer if there is one.
    fn next(&self, created_by: &str, layer: Option<LayerRef>) -> Result<Image> {
        let mut c = self.config.clone();
        let now = now_rfc3339();
        let root = c.as_object_mut().context("image config is not an object")?;
        root.insert("created".into(), json!(now));
        let mut h = json!({"created": now, "created_by": created_by});
        if layer.is_none() {
            h["empty_layer"] = json!(true);
        }
        let hist = root.entry("history").or_insert_with(|| json!([]));
        if let Some(a) = hist.as_array_mut() {
            a.push(h);
        }
        let mut layers = self.layers.clone();
        if let Some(l) = layer {
            let rootfs = root
                .entry("rootfs")
                .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
            if let Some(a) = rootfs["diff_ids"].as_array_mut() {
                a.push(json!(l.diff_id));
            }
            layers.push(l);
        }
        // Containers' runtime details of the base do not describe this image.
        root.remove("container");
        root.remove("container_config");
        Image::new(c, layers)
    }
}

/// What the cache keeps of a step: the resulting image.
#[derive(Serialize, Deserialize)]
pub(crate) struct CacheEntry {
    config: String,
    layers: Vec<LayerRef>,
}

struct Cache {
    dir: PathBuf,
}

impl Cache {
    fn key(parent: &Digest, text: &str, extra: &str) -> Digest {
        Digest::of(format!("{parent}\n{text}\n{extra}").as_bytes())
    }

    fn get(&self, store: &Store, key: &Digest) -> Option<Image> {
        let b = std::fs::read(self.dir.join(key.hex())).ok()?;
        let e: CacheEntry = serde_json::from_slice(&b).ok()?;
        // A layer collected since (rmi, prune) makes the entry useless: it goes.
        if !e
            .layers
            .iter()
            .all(|l| store.has_layer(&l.diff_id) && store.has_blob(&l.blob))
        {
            let _ = std::fs::remove_file(self.dir.join(key.hex()));
            return None;
        }
        let config: Value = serde_json::from_str(&e.config).ok()?;
        Some(Image {
            config,
            bytes: e.config.into_bytes(),
            layers: e.layers,
        })
    }

    fn put(&self, key: &Digest, img: &Image) -> Result<()> {
        let e = CacheEntry {
            config: String::from_utf8(img.bytes.clone())?,
            layers: img.layers.clone(),
        };
        crate::front::images::store::write_atomic(
            &self.dir.join(key.hex()),
            &crate::sys::json::to_vec(&e)?,
        )
    }
}

/// One `FROM` and the instructions after it.
struct StageDef {
    from: Instruction,
    base: String,
    name: Option<String>,
    body: Vec<Instruction>,
}

/// Where a build reaches its images (the command layer's lookup: short names, pulls).
pub(crate) type Lookup<'a> = &'a dyn Fn(&str) -> Result<Option<Digest>>;

pub(crate) struct Builder<'a> {
    g: &'a crate::front::Globals,
    store: &'a Store,
    o: &'a Options,
    lookup: Lookup<'a>,
    cache: Cache,
    escape: char,
    file: String,
    /// Build args given and not consumed by any ARG yet.
    unused: BTreeSet<String>,
    context: Option<std::rc::Rc<Tree>>,
    step: usize,
    steps: usize,
    /// Each stage's base image (what `--squash` keeps).
    bases: BTreeMap<usize, Image>,
    /// The last RUN's bridge endpoint, released once the next RUN is connected (or at the
    /// end): the bridge stays up between steps instead of being made for each. Declared
    /// before `interrupts`: dropped (released) while the signals are still held.
    endpoint: std::cell::RefCell<Option<net::Endpoint>>,
    /// SIGINT, SIGTERM and SIGHUP, held for the whole build: acted on between steps and
    /// while a RUN's container runs, never in the middle of making or removing anything.
    interrupts: step::Interrupts,
}

/// Runs the build; returns the image id (tags written).
pub(crate) fn build(
    g: &crate::front::Globals,
    store: &Store,
    o: &Options,
    lookup: Lookup,
) -> Result<Digest> {
    let df = parse::parse(&o.dockerfile, &o.dockerfile_name)?;
    let file = o.dockerfile_name.clone();
    // ARGs before the first FROM: usable in FROM lines only.
    let mut global: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut stages: Vec<StageDef> = Vec::new();
    let given: BTreeMap<String, String> = o.build_args.iter().cloned().collect();
    for ins in df.instructions {
        if ins.cmd == "FROM" {
            let lookup = |k: &str| global.get(k).cloned().flatten();
            let words: Vec<String> = parse::split_words(&ins.rest, df.escape)
                .iter()
                .map(|w| parse::expand(w, df.escape, &lookup))
                .collect::<Result<_>>()
                .map_err(|e| anyhow!("{file}:{}: {e}", ins.line))?;
            let (base, name) = match words.as_slice() {
                [b] => (b.clone(), None),
                [b, as_, n] if as_.eq_ignore_ascii_case("as") => {
                    let n = n.to_ascii_lowercase();
                    let ok = n.starts_with(|c: char| c.is_ascii_lowercase())
                        && n.chars().all(|c| {
                            c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c)
                        });
                    if !ok {
                        bail!("{file}:{}: invalid name for build stage: {n:?}, name can't start with a number or contain symbols", ins.line);
                    }
                    if stages.iter().any(|s| s.name.as_deref() == Some(&n)) {
                        bail!("{file}:{}: duplicate name {n:?} for build stage", ins.line);
                    }
                    (b.clone(), Some(n))
                }
                _ => bail!(
                    "{file}:{}: FROM requires either one or three arguments",
                    ins.line
                ),
            };
            if base.is_empty() {
                bail!("{file}:{}: FROM names no image (an empty ARG?)", ins.line);
            }
            stages.push(StageDef {
                from: ins,
                base,
                name,
                body: Vec::new(),
            });
            continue;
        }
        match stages.last_mut() {
            Some(s) => s.body.push(ins),
            None if ins.cmd == "ARG" => {
                for w in parse::split_words(&ins.rest, df.escape) {
                    let (k, v) = match w.split_once('=') {
                        Some((k, v)) => {
                            let lookup = |k: &str| global.get(k).cloned().flatten();
                            (
                                k.to_string(),
                                Some(
                                    parse::expand(v, df.escape, &lookup)
                                        .map_err(|e| anyhow!("{file}:{}: {e}", ins.line))?,
                                ),
                            )
                        }
                        None => (w.clone(), None),
                    };
                    let v = given.get(&k).cloned().or(v);
                    global.insert(k, v);
                }
            }
            None => bail!(
                "{file}:{}: {} before the first FROM: only ARG may come first",
                ins.line,
                ins.cmd
            ),
        }
    }
    if stages.is_empty() {
        bail!("{file}: no build stage: a Dockerfile needs a FROM");
    }
    let target = match &o.target {
        Some(t) => stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| anyhow!("--target {t}: failed to reach build target {t} in {file}"))?,
        None => stages.len() - 1,
    };
    // Only what the target needs: its base stages and --from stages, transitively.
    let stage_index = |s: &str, before: usize| -> Option<usize> {
        let l = s.to_ascii_lowercase();
        if let Some(i) = stages[..before]
            .iter()
            .position(|x| x.name.as_deref() == Some(&l))
        {
            return Some(i);
        }
        s.parse::<usize>().ok().filter(|i| *i < before)
    };
    let mut needed = BTreeSet::new();
    let mut todo = vec![target];
    while let Some(i) = todo.pop() {
        if !needed.insert(i) {
            continue;
        }
        if let Some(j) = stage_index(&stages[i].base, i) {
            todo.push(j);
        }
        for ins in &stages[i].body {
            if let Some(from) = ins
                .flag("from")
                .filter(|_| matches!(ins.cmd.as_str(), "COPY" | "ADD"))
            {
                if let Some(j) = stage_index(from, i) {
                    todo.push(j);
                } else if stages.iter().enumerate().any(|(k, s)| {
                    k >= i && s.name.as_deref() == Some(from.to_ascii_lowercase().as_str())
                }) {
                    bail!(
                        "{file}:{}: {} --from={from}: circular dependency: stage {from} is not built before this one",
                        ins.line,
                        ins.cmd
                    );
                }
            }
        }
    }
    // Refused before any step runs (the steps before it would run for nothing).
    for ins in needed.iter().flat_map(|i| &stages[*i].body) {
        if let Some(e) = refused_run_flag(ins) {
            bail!("{file}:{}: {e}", ins.line);
        }
    }
    let steps = needed
        .iter()
        .map(|i| stages[*i].body.len() + 1)
        .sum::<usize>();
    let cache_dir = store.dir().join("build-cache");
    std::fs::create_dir_all(&cache_dir)
        .with_context(|| format!("create {}", cache_dir.display()))?;
    step::private_mounts()?;
    let interrupts = step::Interrupts::block()?;
    net::reconcile_killed(g);
    let mut b = Builder {
        g,
        store,
        o,
        lookup,
        cache: Cache { dir: cache_dir },
        escape: df.escape,
        file,
        unused: o.build_args.iter().map(|(k, _)| k.clone()).collect(),
        context: None,
        step: 0,
        steps,
        bases: BTreeMap::new(),
        endpoint: Default::default(),
        interrupts,
    };
    for k in o.build_args.iter().map(|(k, _)| k) {
        if global.contains_key(k) || PREDEFINED.contains(&k.as_str()) {
            b.unused.remove(k);
        }
    }
    let mut built: BTreeMap<usize, Image> = BTreeMap::new();
    for &i in &needed {
        let img = b.stage(&stages, i, &built, &global)?;
        built.insert(i, img);
    }
    if let Some(ep) = b.endpoint.take() {
        ep.release()
            .context("release the last step's network endpoint")?;
    }
    let mut img = built.remove(&target).context("target stage not built")?;
    if o.squash {
        let base = b.bases.get(&target).context("target stage has no base")?;
        img = squash::squash(store, g.rootless, base, &img)?;
    }
    if !o.labels.is_empty() {
        let c = img.cfg();
        let labels = c.entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        for (k, v) in &o.labels {
            labels[k] = json!(v);
        }
        img = Image::new(img.config, img.layers)?;
    }
    if !b.unused.is_empty() {
        let list: Vec<&str> = b.unused.iter().map(String::as_str).collect();
        b.say(&format!(
            "[Warning] One or more build-args [{}] were not consumed",
            list.join(" ")
        ));
    }
    // A fully cached build of an image that has its names already changes nothing.
    let names = store.names()?;
    b.interrupts.check()?;
    let known = store.image(&img.id())?.is_some()
        && o.tags
            .iter()
            .all(|t| names.get(t).is_some_and(|n| n.image == img.id()));
    let id = if known {
        img.id()
    } else {
        commit::commit_image(store, &img, &o.tags)?
    };
    b.say(&format!("Successfully built {}", id.short()));
    for t in &o.tags {
        let shown = crate::front::reference::Reference::parse(t)
            .map(|r| r.familiar())
            .unwrap_or_else(|_| t.clone());
        b.say(&format!("Successfully tagged {shown}"));
    }
    Ok(id)
}

/// Why a RUN cannot run here: `--mount` (cache, secret, ssh, bind mounts) is BuildKit's.
fn refused_run_flag(ins: &Instruction) -> Option<String> {
    if ins.cmd != "RUN" {
        return None;
    }
    let m = ins.flag("mount")?;
    Some(format!(
        "RUN --mount={m}: not supported: --mount needs BuildKit, berth builds as Docker's classic builder (remove the flag)"
    ))
}

/// The platform arguments BuildKit defines (this machine's platform: builds are native).
fn platform_arg(k: &str) -> Option<String> {
    let arch = manifest::host_arch();
    Some(match k {
        "TARGETPLATFORM" | "BUILDPLATFORM" => format!("linux/{arch}"),
        "TARGETOS" | "BUILDOS" => "linux".into(),
        "TARGETARCH" | "BUILDARCH" => arch.into(),
        _ => return None,
    })
}

/// A stage's state while its instructions run.
struct StageState {
    img: Image,
    /// ARGs declared in this stage, with their values (None: declared, unset).
    args: Vec<(String, Option<String>)>,
    cmd_set: bool,
}

impl StageState {
    /// A variable as instructions see it: ENV first, then ARG.
    fn lookup(&self, k: &str) -> Option<String> {
        for e in self.img.env().iter().rev() {
            if let Some((ek, v)) = e.split_once('=') {
                if ek == k {
                    return Some(v.to_string());
                }
            }
        }
        self.args
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.clone())
    }

    /// The ARGs with values that ENV does not shadow: RUN's extra environment.
    fn arg_env(&self) -> Vec<String> {
        let env = self.img.env();
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (k, v) in self.args.iter().rev() {
            let Some(v) = v else { continue };
            if !seen.insert(k.clone()) {
                continue;
            }
            if env
                .iter()
                .any(|e| e.split_once('=').map(|(ek, _)| ek) == Some(k.as_str()))
            {
                continue;
            }
            out.push(format!("{k}={v}"));
        }
        out.reverse();
        out
    }
}

impl Builder<'_> {
    fn say(&self, line: &str) {
        if self.o.quiet {
            return;
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    fn err(&self, ins: &Instruction, e: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("{}:{}: {e}", self.file, ins.line)
    }

    fn announce(&mut self, ins: &Instruction) -> Result<()> {
        self.interrupts.check()?;
        self.step += 1;
        self.say(&format!(
            "Step {}/{} : {}",
            self.step, self.steps, ins.original
        ));
        Ok(())
    }

    fn stage(
        &mut self,
        stages: &[StageDef],
        i: usize,
        built: &BTreeMap<usize, Image>,
        global: &BTreeMap<String, Option<String>>,
    ) -> Result<Image> {
        let def = &stages[i];
        self.announce(&def.from)?;
        if let Some(p) = def.from.flag("platform") {
            let p = &parse::expand(p, self.escape, &|k| {
                global.get(k).cloned().flatten().or_else(|| platform_arg(k))
            })
            .map_err(|e| self.err(&def.from, format!("--platform: {e:#}")))?;
            let want = crate::front::registry::manifest::PlatformSpec::parse(p)
                .map_err(|e| self.err(&def.from, format!("--platform: {e:#}")))?;
            if want != crate::front::registry::manifest::PlatformSpec::host() {
                return Err(self.err(
                    &def.from,
                    format!("--platform {p}: only this machine's platform can be built"),
                ));
            }
        }
        let base_stage = stages[..i]
            .iter()
            .position(|s| s.name.as_deref() == Some(def.base.to_ascii_lowercase().as_str()));
        let img = if let Some(j) = base_stage {
            built
                .get(&j)
                .cloned()
                .ok_or_else(|| self.err(&def.from, "base stage not built"))?
        } else if def.base.eq_ignore_ascii_case("scratch") {
            Image::scratch()?
        } else {
            let id = (self.lookup)(&def.base)
                .map_err(|e| self.err(&def.from, format!("{e:#}")))?
                .ok_or_else(|| {
                    self.err(
                        &def.from,
                        format!("FROM {}: no such image (pull it first)", def.base),
                    )
                })?;
            let rec = self
                .store
                .image(&id)?
                .ok_or_else(|| self.err(&def.from, format!("image {} vanished", id.short())))?;
            let bytes = self.store.read_small_blob(&id)?;
            let config: Value = serde_json::from_slice(&bytes)?;
            Image {
                config,
                bytes,
                layers: rec.layers,
            }
        };
        self.bases.insert(i, img.clone());
        if !img.layers.is_empty()
            || base_stage.is_some()
            || !def.base.eq_ignore_ascii_case("scratch")
        {
            self.say(&format!(" ---> {}", img.id().short()));
        }
        let onbuild: Vec<String> = img.config["config"]["OnBuild"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let mut st = StageState {
            img,
            args: Vec::new(),
            cmd_set: false,
        };
        if !onbuild.is_empty() {
            // The base's triggers run first, as instructions of this stage; they are not
            // inherited further.
            st.img.cfg().remove("OnBuild");
            st.img = Image::new(st.img.config.clone(), st.img.layers.clone())?;
            let text = onbuild.join("\n");
            let triggers =
                parse::parse(&text, &format!("{} (ONBUILD of {})", self.file, def.base))?;
            for ins in triggers.instructions {
                if matches!(ins.cmd.as_str(), "FROM" | "ONBUILD" | "MAINTAINER") {
                    return Err(self.err(
                        &def.from,
                        format!("{} isn't allowed as an ONBUILD trigger", ins.cmd),
                    ));
                }
                self.say(&format!("# Executing 1 build trigger: {}", ins.original));
                let ins = Instruction {
                    line: def.from.line,
                    ..ins
                };
                self.instruction(&ins, &mut st, stages, i, built, global)?;
            }
        }
        for ins in &def.body {
            self.announce(ins)?;
            self.instruction(ins, &mut st, stages, i, built, global)?;
        }
        Ok(st.img)
    }

    /// Applies a metadata change as a cached step.
    fn meta(
        &mut self,
        ins: &Instruction,
        st: &mut StageState,
        change: impl FnOnce(&mut Image) -> Result<()>,
    ) -> Result<()> {
        let key = Cache::key(&st.img.id(), &ins.original, &st.arg_env().join("\n"));
        if !self.o.no_cache {
            if let Some(img) = self.cache.get(self.store, &key) {
                self.say(" ---> Using cache");
                self.say(&format!(" ---> {}", img.id().short()));
                st.img = img;
                return Ok(());
            }
        }
        let mut img = st.img.clone();
        change(&mut img).map_err(|e| self.err(ins, format!("{e:#}")))?;
        let img = img.next(&format!("/bin/sh -c #(nop)  {}", ins.original), None)?;
        self.cache.put(&key, &img)?;
        self.say(&format!(" ---> {}", img.id().short()));
        st.img = img;
        Ok(())
    }

    fn expand_one(&self, ins: &Instruction, st: &StageState, w: &str) -> Result<String> {
        parse::expand(w, self.escape, &|k| st.lookup(k)).map_err(|e| self.err(ins, e))
    }

    fn expand_words(&self, ins: &Instruction, st: &StageState) -> Result<Vec<String>> {
        parse::split_words(&ins.rest, self.escape)
            .iter()
            .map(|w| self.expand_one(ins, st, w))
            .collect()
    }

    /// A JSON list, else the words (expanded) of the instruction.
    fn list_or_words(&self, ins: &Instruction, st: &StageState) -> Result<Vec<String>> {
        match ins.form() {
            Form::Exec(v) => v
                .iter()
                .map(|w| self.expand_one(ins, st, &w.replace('\\', "\\\\")))
                .collect(),
            Form::Shell(_) => self.expand_words(ins, st),
        }
    }

    fn command(&self, ins: &Instruction, st: &StageState) -> Vec<String> {
        match ins.form() {
            Form::Exec(v) => v,
            Form::Shell(s) => {
                let mut v = st.img.shell();
                v.push(s);
                v
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn instruction(
        &mut self,
        ins: &Instruction,
        st: &mut StageState,
        stages: &[StageDef],
        stage: usize,
        built: &BTreeMap<usize, Image>,
        global: &BTreeMap<String, Option<String>>,
    ) -> Result<()> {
        let allowed: &[&str] = match ins.cmd.as_str() {
            "RUN" => &["network", "mount", "security"],
            "COPY" => &["from", "chown", "chmod", "link"],
            "ADD" => &["chown", "chmod", "link", "from"],
            "HEALTHCHECK" => &[
                "interval",
                "timeout",
                "start-period",
                "start-interval",
                "retries",
            ],
            _ => &[],
        };
        for (k, _) in &ins.flags {
            if !allowed.contains(&k.as_str()) {
                return Err(self.err(ins, format!("{}: unknown flag: --{k}", ins.cmd)));
            }
        }
        match ins.cmd.as_str() {
            "RUN" => {
                if let Some(e) = refused_run_flag(ins) {
                    return Err(self.err(ins, e));
                }
                if ins.flag("security").is_some_and(|s| s != "sandbox") {
                    return Err(self.err(ins, "RUN --security=insecure: not supported"));
                }
                self.run(ins, st)
            }
            "COPY" | "ADD" => self.copy(ins, st, stages, stage, built),
            "ARG" => {
                let mut decl = Vec::new();
                for w in parse::split_words(&ins.rest, self.escape) {
                    let (k, default) = match w.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(self.expand_one(ins, st, v)?)),
                        None => (w.clone(), None),
                    };
                    if k.is_empty() {
                        return Err(self.err(ins, format!("ARG {w}: a name cannot be empty")));
                    }
                    let given = self
                        .o
                        .build_args
                        .iter()
                        .rev()
                        .find(|(n, _)| *n == k)
                        .map(|(_, v)| v.clone());
                    self.unused.remove(&k);
                    // A bare ARG of a global name takes the global value.
                    let v = given
                        .or(default)
                        .or_else(|| global.get(&k).cloned().flatten())
                        .or_else(|| platform_arg(&k));
                    decl.push((k, v));
                }
                // ARG is not a step of its own in the image, but it is in the cache key
                // of the steps after it (through arg_env).
                st.args.extend(decl);
                self.say(&format!(" ---> {}", st.img.id().short()));
                Ok(())
            }
            "ENV" => {
                let pairs = parse::name_values(&ins.rest, self.escape, &|k| st.lookup(k), true)
                    .map_err(|e| self.err(ins, format!("ENV {e:#}")))?;
                self.meta(ins, st, |img| {
                    let c = img.cfg();
                    let env = c.entry("Env").or_insert_with(|| json!([]));
                    if !env.is_array() {
                        *env = json!([]);
                    }
                    let env = env.as_array_mut().expect("array");
                    for (k, v) in pairs {
                        let pos = env.iter().position(|e| {
                            e.as_str().and_then(|e| e.split_once('=')).map(|(ek, _)| ek)
                                == Some(k.as_str())
                        });
                        let val = json!(format!("{k}={v}"));
                        match pos {
                            Some(p) => env[p] = val,
                            None => env.push(val),
                        }
                    }
                    Ok(())
                })
            }
            "LABEL" => {
                let pairs = parse::name_values(&ins.rest, self.escape, &|k| st.lookup(k), true)
                    .map_err(|e| self.err(ins, format!("LABEL {e:#}")))?;
                self.meta(ins, st, |img| {
                    let c = img.cfg();
                    let l = c.entry("Labels").or_insert_with(|| json!({}));
                    if !l.is_object() {
                        *l = json!({});
                    }
                    for (k, v) in pairs {
                        l[k] = json!(v);
                    }
                    Ok(())
                })
            }
            "MAINTAINER" => {
                let who = ins.rest.clone();
                self.meta(ins, st, |img| {
                    img.config["author"] = json!(who);
                    Ok(())
                })
            }
            "CMD" | "ENTRYPOINT" => {
                let cmd = self.command(ins, st);
                let key = if ins.cmd == "CMD" {
                    "Cmd"
                } else {
                    "Entrypoint"
                };
                let reset_cmd = ins.cmd == "ENTRYPOINT" && !st.cmd_set;
                if ins.cmd == "CMD" {
                    st.cmd_set = true;
                }
                self.meta(ins, st, |img| {
                    let c = img.cfg();
                    c.insert(key.into(), json!(cmd));
                    if reset_cmd {
                        // Docker's rule: a new entrypoint drops the base's Cmd.
                        c.insert("Cmd".into(), Value::Null);
                    }
                    Ok(())
                })
            }
            "SHELL" => {
                let Form::Exec(v) = ins.form() else {
                    return Err(self.err(ins, "SHELL requires the arguments to be in JSON form"));
                };
                if v.is_empty() {
                    return Err(self.err(ins, "SHELL requires at least one argument"));
                }
                self.meta(ins, st, |img| {
                    img.cfg().insert("Shell".into(), json!(v));
                    Ok(())
                })
            }
            "WORKDIR" => {
                let w = self.expand_one(ins, st, ins.rest.trim())?;
                let dir = if w.starts_with('/') {
                    w
                } else {
                    format!("{}/{w}", st.img.workdir().trim_end_matches('/'))
                };
                let dir = format!("/{}", context::clean(&dir).unwrap_or_default());
                self.meta(ins, st, |img| {
                    img.cfg().insert("WorkingDir".into(), json!(dir));
                    Ok(())
                })
            }
            "USER" => {
                let u = self.expand_one(ins, st, ins.rest.trim())?;
                self.meta(ins, st, |img| {
                    img.cfg().insert("User".into(), json!(u));
                    Ok(())
                })
            }
            "STOPSIGNAL" => {
                let s = self.expand_one(ins, st, ins.rest.trim())?;
                crate::front::containers::runtime::parse_signal(&s)
                    .map_err(|_| self.err(ins, format!("STOPSIGNAL {s}: invalid signal")))?;
                self.meta(ins, st, |img| {
                    img.cfg().insert("StopSignal".into(), json!(s));
                    Ok(())
                })
            }
            "EXPOSE" => {
                let mut ports = Vec::new();
                for p in self.expand_words(ins, st)? {
                    let (num, proto) = p.split_once('/').unwrap_or((&p, "tcp"));
                    let proto = proto.to_ascii_lowercase();
                    let ok = !num.is_empty()
                        && num.split('-').all(|n| n.parse::<u16>().is_ok())
                        && matches!(proto.as_str(), "tcp" | "udp" | "sctp");
                    if !ok {
                        return Err(self.err(ins, format!("EXPOSE {p}: invalid port")));
                    }
                    ports.push(format!("{num}/{proto}"));
                }
                self.meta(ins, st, |img| {
                    let c = img.cfg();
                    let e = c.entry("ExposedPorts").or_insert_with(|| json!({}));
                    if !e.is_object() {
                        *e = json!({});
                    }
                    for p in ports {
                        e[p] = json!({});
                    }
                    Ok(())
                })
            }
            "VOLUME" => {
                let vols = self.list_or_words(ins, st)?;
                if vols.iter().any(|v| v.trim().is_empty()) {
                    return Err(self.err(ins, "VOLUME specified can not be an empty string"));
                }
                self.meta(ins, st, |img| {
                    let c = img.cfg();
                    let e = c.entry("Volumes").or_insert_with(|| json!({}));
                    if !e.is_object() {
                        *e = json!({});
                    }
                    for v in vols {
                        e[v] = json!({});
                    }
                    Ok(())
                })
            }
            "ONBUILD" => {
                let t = ins.rest.trim();
                let word = t
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_ascii_uppercase();
                if matches!(word.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                    return Err(
                        self.err(ins, format!("{word} isn't allowed as an ONBUILD trigger"))
                    );
                }
                if !parse::KNOWN.contains(&word.as_str()) {
                    return Err(self.err(ins, format!("ONBUILD: unknown instruction: {word}")));
                }
                let trigger = t.to_string();
                self.meta(ins, st, |img| {
                    let c = img.cfg();
                    let e = c.entry("OnBuild").or_insert_with(|| json!([]));
                    if !e.is_array() {
                        *e = json!([]);
                    }
                    if let Some(a) = e.as_array_mut() {
                        a.push(json!(trigger));
                    }
                    Ok(())
                })
            }
            "HEALTHCHECK" => {
                let hc = self.healthcheck(ins)?;
                self.meta(ins, st, |img| {
                    img.cfg().insert("Healthcheck".into(), hc);
                    Ok(())
                })
            }
            other => Err(self.err(ins, format!("unknown instruction: {other}"))),
        }
    }

    fn healthcheck(&self, ins: &Instruction) -> Result<Value> {
        let t = ins.rest.trim();
        let (word, rest) = t.split_once(char::is_whitespace).unwrap_or((t, ""));
        match word.to_ascii_uppercase().as_str() {
            "NONE" => {
                if !rest.trim().is_empty() || !ins.flags.is_empty() {
                    return Err(self.err(ins, "HEALTHCHECK NONE takes no arguments"));
                }
                Ok(json!({"Test": ["NONE"]}))
            }
            "CMD" => {
                let rest = rest.trim();
                let test = match serde_json::from_str::<Vec<String>>(rest) {
                    Ok(v) if rest.starts_with('[') => {
                        let mut t = vec!["CMD".to_string()];
                        t.extend(v);
                        t
                    }
                    _ => vec!["CMD-SHELL".to_string(), rest.to_string()],
                };
                let mut hc = json!({"Test": test});
                for (k, v) in &ins.flags {
                    let field = match k.as_str() {
                        "interval" => "Interval",
                        "timeout" => "Timeout",
                        "start-period" => "StartPeriod",
                        "start-interval" => "StartInterval",
                        _ => {
                            let n: i64 = v.parse().map_err(|_| {
                                self.err(ins, format!("HEALTHCHECK --retries={v}: not a number"))
                            })?;
                            if n < 0 {
                                return Err(
                                    self.err(ins, "HEALTHCHECK --retries cannot be negative")
                                );
                            }
                            hc["Retries"] = json!(n);
                            continue;
                        }
                    };
                    let d = crate::front::units::parse_go_duration(v)
                        .map_err(|e| self.err(ins, format!("HEALTHCHECK --{k}={v}: {e}")))?;
                    hc[field] = json!(d);
                }
                Ok(hc)
            }
            _ => Err(self.err(ins, "HEALTHCHECK: the first argument must be CMD or NONE")),
        }
    }

    fn cached(&mut self, key: &Digest, st: &mut StageState) -> bool {
        if self.o.no_cache {
            return false;
        }
        match self.cache.get(self.store, key) {
            Some(img) => {
                self.say(" ---> Using cache");
                self.say(&format!(" ---> {}", img.id().short()));
                st.img = img;
                true
            }
            None => false,
        }
    }

    fn run(&mut self, ins: &Instruction, st: &mut StageState) -> Result<()> {
        let mut argv = self.command(ins, st);
        if let Some(h) = ins.heredocs.first() {
            let only = ins
                .rest
                .trim()
                .trim_start_matches("<<")
                .trim_start_matches('-')
                .trim_matches(['"', '\''])
                == h.name;
            if only && ins.heredocs.len() == 1 {
                // The heredoc is the script.
                argv = st.img.shell();
                argv.push(h.body.clone());
            } else {
                // The shell reads its own heredocs.
                let mut script = ins.rest.clone();
                for h in &ins.heredocs {
                    script.push('\n');
                    script.push_str(&h.body);
                    script.push_str(&h.name);
                }
                argv = st.img.shell();
                argv.push(script);
            }
        }
        let args = st.arg_env();
        let shown = argv.join(" ");
        let created_by = if args.is_empty() {
            shown.clone()
        } else {
            format!("|{} {} {shown}", args.len(), args.join(" "))
        };
        let key = Cache::key(&st.img.id(), &created_by, "");
        if self.cached(&key, st) {
            return Ok(());
        }
        // The proxy arguments reach RUN undeclared, and stay out of history and the cache
        // key (Docker's rule: they are the host's business).
        let mut env = args.clone();
        for (k, v) in &self.o.build_args {
            if PREDEFINED.contains(&k.as_str()) && !st.args.iter().any(|(n, _)| n == k) {
                env.push(format!("{k}={v}"));
            }
        }
        let layer = step::run(self, &st.img, &argv, &env, &shown).map_err(|e| {
            if e.downcast_ref::<step::StepFailed>().is_some() {
                e
            } else {
                self.err(ins, format!("RUN: {e:#}"))
            }
        })?;
        let img = st.img.next(&created_by, Some(layer))?;
        self.cache.put(&key, &img)?;
        self.say(&format!(" ---> {}", img.id().short()));
        st.img = img;
        Ok(())
    }

    fn copy(
        &mut self,
        ins: &Instruction,
        st: &mut StageState,
        stages: &[StageDef],
        stage: usize,
        built: &BTreeMap<usize, Image>,
    ) -> Result<()> {
        if !ins.heredocs.is_empty() {
            return Err(self.err(
                ins,
                format!(
                    "{} <<heredoc: not supported by berth's classic builder",
                    ins.cmd
                ),
            ));
        }
        let mut words = self.list_or_words(ins, st)?;
        if words.len() < 2 {
            return Err(self.err(ins, format!("{} requires at least two arguments", ins.cmd)));
        }
        let dest_word = words.pop().unwrap_or_default();
        let dest = if dest_word.starts_with('/') {
            dest_word.clone()
        } else {
            format!("{}/{dest_word}", st.img.workdir().trim_end_matches('/'))
        };
        let dest_dir_syntax =
            dest_word.ends_with('/') || dest_word == "." || dest_word.ends_with("/.");
        let (urls, words): (Vec<String>, Vec<String>) =
            words.into_iter().partition(|w| fetch::is_url(w));
        if let Some(u) = urls.first().filter(|_| ins.cmd == "COPY") {
            return Err(self.err(
                ins,
                format!("COPY {u}: source can't be a URL for COPY (ADD fetches URLs)"),
            ));
        }
        if let Some(u) = urls.first().filter(|_| ins.flag("from").is_some()) {
            return Err(self.err(
                ins,
                format!("ADD {u}: a URL source cannot be used with --from"),
            ));
        }
        let chmod = match ins.flag("chmod") {
            Some(m) => Some(
                u32::from_str_radix(m, 8)
                    .ok()
                    .filter(|m| *m <= 0o7777)
                    .ok_or_else(|| self.err(ins, format!("--chmod={m}: invalid mode (octal)")))?,
            ),
            None => None,
        };
        // The tree the sources come from.
        let from = ins.flag("from").map(String::from);
        let from_stage = from.as_ref().and_then(|f| {
            let l = f.to_ascii_lowercase();
            stages[..stage]
                .iter()
                .position(|s| s.name.as_deref() == Some(&l))
                .or_else(|| f.parse::<usize>().ok().filter(|i| *i < stage))
        });
        let from_image = match (&from, from_stage) {
            (Some(f), None) => {
                if stages
                    .iter()
                    .any(|s| s.name.as_deref() == Some(f.to_ascii_lowercase().as_str()))
                {
                    return Err(self.err(ins, format!("{} --from={f}: circular dependency: stage {f} is not built before this one", ins.cmd)));
                }
                let id = (self.lookup)(f)
                    .map_err(|e| self.err(ins, format!("--from={f}: {e:#}")))?
                    .ok_or_else(|| self.err(ins, format!("--from={f}: no such stage or image")))?;
                let rec = self
                    .store
                    .image(&id)?
                    .ok_or_else(|| self.err(ins, format!("--from={f}: no such image")))?;
                let bytes = self.store.read_small_blob(&id)?;
                Some(Image {
                    config: serde_json::from_slice(&bytes)?,
                    bytes,
                    layers: rec.layers,
                })
            }
            (_, Some(j)) => Some(
                built
                    .get(&j)
                    .cloned()
                    .ok_or_else(|| self.err(ins, "stage not built"))?,
            ),
            (None, None) => None,
        };
        step::copy(
            self,
            ins,
            st,
            words,
            urls,
            dest,
            dest_dir_syntax,
            chmod,
            from_image.as_ref(),
        )
    }

    /// The context tree (walked once, on the first COPY/ADD that reads it).
    fn context_tree(&mut self) -> Result<std::rc::Rc<Tree>> {
        if let Some(t) = &self.context {
            return Ok(t.clone());
        }
        let Some(dir) = &self.o.context else {
            bail!("no build context: the Dockerfile came on stdin");
        };
        let t = std::rc::Rc::new(Tree::walk(dir, self.o.ignore.as_ref())?);
        self.context = Some(t.clone());
        Ok(t)
    }
}
