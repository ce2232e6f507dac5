//! `pull`: Docker's progress display on a terminal (one line per layer, redrawn in place),
//! the same statuses as plain lines otherwise, only the reference with `-q`. `run` and
//! `create` pull through [`pull_image`] too, onto stderr.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::cli::front::PullArgs;
use crate::front::digest::Digest;
use crate::front::images::pull::{self, PullResult};
use crate::front::images::store::Store as ImageStore;
use crate::front::reference::Reference;
use crate::front::registry::client::ClientOptions;
use crate::front::registry::config::{ConfPaths, Registries};
use crate::front::registry::manifest::PlatformSpec;
use crate::front::registry::pull::{PullEvent, PullOptions};
use crate::front::units;
use crate::front::Globals;

pub(crate) fn pull(g: &Globals, a: &PullArgs) -> Result<i32> {
    super::unpack_allowed(g, "pull")?;
    let store = super::image_store(g)?;
    let conf = registries()?;
    let mut client = client_options(a.tls_verify, a.authfile.as_deref());
    client.cert_dir = a.cert_dir.clone();
    let opts = pull_options(a.platform.as_deref())?;
    let out = if a.quiet { Out::Quiet } else { Out::Stdout };
    if a.all_tags {
        return pull_all_tags(g, &store, &a.image, &conf, &client, &opts, out);
    }
    let r = pull_image(&store, &a.image, &conf, &client, &opts, out)?;
    println!("{}", r.reference);
    pulled_event(g, &r.reference.to_string());
    Ok(0)
}

/// Docker's `image pull` event: the reference as its id, the repository as its name.
pub(crate) fn pulled_event(g: &Globals, reference: &str) {
    let name = match reference.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => n,
        _ => reference,
    };
    let name = name.split('@').next().unwrap_or(name);
    crate::front::events::image(&g.runroot, "pull", reference, name);
}

/// `pull -a NAME`: every tag the registry lists for NAME, one pull each (Docker's
/// display per tag), then the repository's name.
fn pull_all_tags(
    g: &Globals,
    store: &ImageStore,
    input: &str,
    conf: &Registries,
    client: &ClientOptions,
    opts: &PullOptions,
    out: Out,
) -> Result<i32> {
    // Parsed first for its errors; the tag it defaults to is not the user's.
    Reference::parse(input)?;
    if input.contains('@') || input.rsplit('/').next().is_some_and(|l| l.contains(':')) {
        bail!("tag can't be used with --all-tags/-a");
    }
    let (repo, tags) = crate::front::registry::client::tags::list_tags(input, conf, client)?;
    if tags.is_empty() {
        bail!("{}: the registry lists no tags", repo.familiar_name());
    }
    for t in &tags {
        let tagged = repo
            .with_tag(t)
            .map_err(|e| anyhow::anyhow!("{repo}: tag {t:?} from the registry: {e}"))?;
        pull_image(store, &tagged.to_string(), conf, client, opts, out)?;
        pulled_event(g, &tagged.to_string());
    }
    println!("{}", repo.name_only());
    Ok(0)
}

/// registries.conf as podman reads it (`CONTAINERS_REGISTRIES_CONF`, ...).
pub(crate) fn registries() -> Result<Registries> {
    Registries::load(&ConfPaths::from_env())
}

/// `--tls-verify` and `--authfile` over the defaults.
pub(crate) fn client_options(tls_verify: Option<bool>, authfile: Option<&str>) -> ClientOptions {
    let mut o = ClientOptions::from_env();
    o.tls_verify = tls_verify;
    if let Some(f) = authfile {
        o.auth_files = Some(crate::front::registry::auth::AuthFiles {
            primary: f.into(),
            others: vec![],
        });
    }
    o
}

pub(crate) fn pull_options(platform: Option<&str>) -> Result<PullOptions> {
    let mut o = PullOptions::default();
    if let Some(p) = platform {
        o.platform = PlatformSpec::parse(p).map_err(|e| anyhow::anyhow!("--platform: {e:#}"))?;
    }
    Ok(o)
}

/// Where the progress goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Out {
    Stdout,
    Stderr,
    Quiet,
}

/// Pulls with Docker's display: `Using default tag`, `TAG: Pulling from REPO`, a line per
/// layer, `Digest:` and `Status:`. The caller prints the reference (pull) or not (run).
pub(crate) fn pull_image(
    store: &ImageStore,
    input: &str,
    conf: &Registries,
    client: &ClientOptions,
    opts: &PullOptions,
    out: Out,
) -> Result<PullResult> {
    // Refused before any output, as Docker does.
    let parsed = Reference::parse(input)?;
    let d = Display::new(out);
    if !input.contains(['@', ':']) || input.rsplit_once(':').is_some_and(|(_, t)| t.contains('/')) {
        d.line("Using default tag: latest");
    }
    let what = match (parsed.tag(), parsed.digest()) {
        (_, Some(dg)) => dg.to_string(),
        (Some(t), None) => t.to_string(),
        (None, None) => "latest".into(),
    };
    let announced = Mutex::new(false);
    let events = |e: PullEvent| {
        if let PullEvent::Trying(r) = &e {
            let mut a = announced.lock().unwrap_or_else(|e| e.into_inner());
            if !*a {
                *a = true;
                d.line(&format!("{what}: Pulling from {}", r.path()));
            }
            return;
        }
        d.event(e);
    };
    let r = pull::pull(store, input, conf, client, opts, &events, &|| {
        d.extracting()
    })?;
    d.finish();
    d.line(&format!("Digest: {}", r.digest));
    let shown = r.reference.familiar();
    if r.changed {
        d.line(&format!("Status: Downloaded newer image for {shown}"));
    } else {
        d.line(&format!("Status: Image is up to date for {shown}"));
    }
    Ok(r)
}

struct Layer {
    status: String,
    size: u64,
    done: u64,
}

struct State {
    order: Vec<Digest>,
    layers: HashMap<Digest, Layer>,
    /// Lines drawn by the last redraw (a terminal only).
    drawn: usize,
    last: Option<Instant>,
}

/// Docker's pull display. On a terminal the layer lines are redrawn in place (cursor up,
/// clear line); elsewhere each status change is one line and byte counts are left out.
struct Display {
    out: Out,
    tty: bool,
    st: Mutex<State>,
}

const BAR: usize = 50;

fn bar(done: u64, size: u64) -> String {
    let pct = if size == 0 {
        1.0
    } else {
        (done as f64 / size as f64).min(1.0)
    };
    let n = (pct * BAR as f64) as usize;
    let mut s = String::from("[");
    for i in 0..BAR {
        s.push(if i + 1 < n {
            '='
        } else if i + 1 == n {
            '>'
        } else {
            ' '
        });
    }
    s.push(']');
    format!(
        "{s} {:>8}/{}",
        units::human_size(done as f64),
        units::human_size(size as f64)
    )
}

impl Display {
    fn new(out: Out) -> Display {
        let tty = match out {
            Out::Stdout => std::io::stdout().is_terminal(),
            Out::Stderr => std::io::stderr().is_terminal(),
            Out::Quiet => false,
        };
        Display {
            out,
            tty,
            st: Mutex::new(State {
                order: Vec::new(),
                layers: HashMap::new(),
                drawn: 0,
                last: None,
            }),
        }
    }

    fn write(&self, text: &str) {
        match self.out {
            Out::Stdout => {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(text.as_bytes());
                let _ = o.flush();
            }
            Out::Stderr => {
                let _ = std::io::stderr().lock().write_all(text.as_bytes());
            }
            Out::Quiet => {}
        }
    }

    fn line(&self, s: &str) {
        self.write(&format!("{s}\n"));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, d: &Digest, status: &str, size: Option<u64>) {
        let mut st = self.lock();
        if !st.layers.contains_key(d) {
            st.order.push(d.clone());
            st.layers.insert(
                d.clone(),
                Layer {
                    status: String::new(),
                    size: 0,
                    done: 0,
                },
            );
        }
        let l = st.layers.get_mut(d).expect("inserted");
        if let Some(s) = size {
            l.size = s;
        }
        if l.status == status {
            return;
        }
        l.status = status.to_string();
        if self.tty {
            self.redraw(&mut st, true);
        } else {
            drop(st);
            self.line(&format!("{}: {status}", d.short()));
        }
    }

    fn event(&self, e: PullEvent) {
        match e {
            PullEvent::Trying(_) | PullEvent::Resolved(_) => {}
            PullEvent::LayerWaiting { digest, size } => {
                self.set(&digest, "Pulling fs layer", Some(size))
            }
            PullEvent::LayerExists(d) => self.set(&d, "Already exists", None),
            PullEvent::LayerProgress { digest, done, size } => {
                if !self.tty {
                    return;
                }
                let mut st = self.lock();
                if let Some(l) = st.layers.get_mut(&digest) {
                    l.done = done;
                    l.size = size;
                    l.status = "Downloading".into();
                }
                self.redraw(&mut st, false);
            }
            PullEvent::LayerDone(d) => self.set(&d, "Download complete", None),
        }
    }

    fn extracting(&self) {
        let pending: Vec<Digest> = {
            let st = self.lock();
            st.order
                .iter()
                .filter(|d| st.layers[*d].status != "Already exists")
                .cloned()
                .collect()
        };
        for d in &pending {
            self.set(d, "Extracting", None);
        }
    }

    /// The layers are in the store.
    fn finish(&self) {
        let pending: Vec<Digest> = {
            let st = self.lock();
            st.order
                .iter()
                .filter(|d| st.layers[*d].status != "Already exists")
                .cloned()
                .collect()
        };
        for d in &pending {
            self.set(d, "Pull complete", None);
        }
    }

    fn redraw(&self, st: &mut State, force: bool) {
        let now = Instant::now();
        if !force
            && st
                .last
                .is_some_and(|t| now - t < Duration::from_millis(100))
        {
            return;
        }
        st.last = Some(now);
        let mut s = String::new();
        if st.drawn > 0 {
            s.push_str(&format!("\x1b[{}A", st.drawn));
        }
        for d in &st.order {
            let l = &st.layers[d];
            let text = if l.status == "Downloading" {
                format!("Downloading {}", bar(l.done, l.size))
            } else {
                l.status.clone()
            };
            s.push_str(&format!("\x1b[2K\r{}: {text}\n", d.short()));
        }
        st.drawn = st.order.len();
        self.write(&s);
    }
}
