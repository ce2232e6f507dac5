//! The client against the in-process registry (testserver.rs): the protocol's behaviours,
//! each checked by what a user would see (the image's bytes, the error line) and by what
//! the registry saw (headers, ranges, which host got credentials).

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Duration;

use super::auth::{AuthFiles, Credentials};
use super::client::{ClientOptions, Mount, Registry, RegistryError};
use super::config::Endpoint;
use super::manifest::{self, Descriptor, PlatformSpec};
use super::pull::{pull, BlobSink, PullEvent, PullOptions, Pulled};
use super::testserver::{self_signed, AuthMode, FakeRegistry};
use crate::front::digest::Digest;
use crate::front::reference::Reference;

const GZ: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

#[derive(Default)]
struct MemSink {
    blobs: Mutex<HashMap<Digest, Vec<u8>>>,
}

impl BlobSink for MemSink {
    fn has(&self, d: &Digest) -> bool {
        self.blobs.lock().unwrap().contains_key(d)
    }
    // Commits only after a clean end, as the store's temp-file-and-rename does.
    fn put(&self, desc: &Descriptor, data: &mut dyn Read) -> anyhow::Result<()> {
        let mut v = Vec::new();
        data.read_to_end(&mut v)?;
        self.blobs.lock().unwrap().insert(desc.digest.clone(), v);
        Ok(())
    }
}

fn opts() -> ClientOptions {
    ClientOptions {
        tls_verify: None,
        cert_dirs: vec![],
        cert_dir: None,
        auth_files: None,
        credentials: None,
        retries: 3,
        backoff: Duration::from_millis(1),
        io_timeout: Duration::from_secs(20),
    }
}

fn with_creds(user: &str, pass: &str) -> ClientOptions {
    ClientOptions {
        credentials: Some(Credentials::new(user, pass)),
        ..opts()
    }
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("berth-regtest-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Deterministic bytes that do not compress to nothing.
fn data(seed: u8, len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9 ^ u32::from(seed);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

struct Image {
    manifest: Digest,
    config: Digest,
    layers: Vec<Digest>,
    manifest_bytes: Vec<u8>,
}

fn manifest_json(
    config: (&Digest, usize),
    layers: &[(Digest, usize, &str)],
    mt: &str,
    cfg_mt: &str,
) -> Vec<u8> {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|(d, n, t)| serde_json::json!({"mediaType": t, "digest": d.to_string(), "size": n}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": cfg_mt, "digest": config.0.to_string(), "size": config.1},
        "layers": layers,
    }))
    .unwrap()
}

fn add_image(reg: &FakeRegistry, repo: &str, tag: &str, layers: &[Vec<u8>]) -> Image {
    let cfg = format!(
        r#"{{"architecture":"amd64","os":"linux","rootfs":{{"type":"layers","diff_ids":[]}},"tag":"{tag}"}}"#
    );
    let config = reg.add_blob(repo, cfg.as_bytes());
    let mut ls = Vec::new();
    for l in layers {
        ls.push((reg.add_blob(repo, l), l.len(), GZ));
    }
    let m = manifest_json(
        (&config, cfg.len()),
        &ls,
        manifest::OCI_MANIFEST,
        manifest::OCI_CONFIG,
    );
    let d = reg.add_manifest(repo, tag, manifest::OCI_MANIFEST, &m);
    Image {
        manifest: d,
        config,
        layers: ls.into_iter().map(|l| l.0).collect(),
        manifest_bytes: m,
    }
}

fn ep(s: &str) -> Vec<Endpoint> {
    vec![Endpoint {
        reference: Reference::parse(s).unwrap(),
        insecure: false,
        mirror: false,
    }]
}

fn do_pull(r: &str, o: &ClientOptions, sink: &MemSink) -> anyhow::Result<(Pulled, Vec<PullEvent>)> {
    do_pull_with(r, o, &PullOptions::default(), sink)
}

fn do_pull_with(
    r: &str,
    o: &ClientOptions,
    po: &PullOptions,
    sink: &MemSink,
) -> anyhow::Result<(Pulled, Vec<PullEvent>)> {
    let events = Mutex::new(Vec::new());
    let p = pull(&ep(r), o, po, sink, &|e| events.lock().unwrap().push(e))?;
    Ok((p, events.into_inner().unwrap()))
}

fn err(r: anyhow::Result<impl Sized>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn anonymous_pull_streams_verified_blobs_and_skips_present_ones() {
    let reg = FakeRegistry::start(AuthMode::None);
    let layers = vec![data(1, 300_000), data(2, 1_500_000)];
    let img = add_image(&reg, "test/app", "latest", &layers);
    let sink = MemSink::default();
    let r = format!("{}/test/app", reg.host());
    let po = PullOptions {
        jobs: 1,
        ..PullOptions::default()
    };
    let (p, events) = do_pull_with(&r, &opts(), &po, &sink).unwrap();
    assert_eq!(p.digest, img.manifest);
    assert_eq!(p.manifest.bytes, img.manifest_bytes);
    assert_eq!(p.image.config.digest, img.config);
    assert!(p.index.is_none());
    let blobs = sink.blobs.lock().unwrap().clone();
    assert_eq!(blobs[&img.layers[0]], layers[0]);
    assert_eq!(blobs[&img.layers[1]], layers[1]);
    assert_eq!(blobs[&img.manifest], img.manifest_bytes);
    assert_eq!(Digest::of(&blobs[&img.config]), img.config);
    assert_eq!(events[0], PullEvent::Trying(Reference::parse(&r).unwrap()));
    assert_eq!(events[1], PullEvent::Resolved(img.manifest.clone()));
    assert!(events.contains(&PullEvent::LayerWaiting {
        digest: img.layers[1].clone(),
        size: 1_500_000
    }));
    assert!(events.contains(&PullEvent::LayerProgress {
        digest: img.layers[1].clone(),
        done: 1_500_000,
        size: 1_500_000
    }));
    assert!(events.contains(&PullEvent::LayerDone(img.layers[0].clone())));
    let log = reg.log();
    let m = log.iter().find(|l| l.path.contains("/manifests/")).unwrap();
    assert!(m.accept.as_deref().unwrap().contains(manifest::OCI_INDEX));
    // one connection after the TLS probe: the pool reuses it for every request
    assert!(
        reg.connections.load(Ordering::Relaxed) <= 2,
        "{} connections",
        reg.connections.load(Ordering::Relaxed)
    );

    // again: the layers are there, only manifest and config are fetched
    let before = reg.log().len();
    let (_, events) = do_pull(&r, &opts(), &sink).unwrap();
    assert!(events.contains(&PullEvent::LayerExists(img.layers[0].clone())));
    let blob_gets = reg.log()[before..]
        .iter()
        .filter(|l| l.path.contains("/blobs/") && !l.path.contains(&img.config.to_string()))
        .count();
    assert_eq!(blob_gets, 0);
}

#[test]
fn basic_auth_asks_for_login_refuses_wrong_password_and_uses_auth_json() {
    let reg = FakeRegistry::start(AuthMode::Basic);
    add_image(&reg, "test/app", "v1", &[data(3, 1000)]);
    let r = format!("{}/test/app:v1", reg.host());
    let host = reg.host();
    let sink = MemSink::default();
    assert_eq!(
        err(do_pull(&r, &opts(), &sink)),
        format!("{r}: authentication required (run `berth login {host}`)")
    );
    let e = err(do_pull(&r, &with_creds("testuser", "wrong-secret"), &sink));
    assert_eq!(e, format!("authentication to {host} failed: wrong username or password (run `berth login {host}`)"));
    assert!(!e.contains("wrong-secret"));
    assert!(sink.blobs.lock().unwrap().is_empty());
    do_pull(&r, &with_creds("testuser", "testpassword"), &sink).unwrap();
    let log = reg.log();
    let m = log
        .iter()
        .rev()
        .find(|l| l.path.contains("/manifests/"))
        .unwrap();
    assert!(m.authorization.as_deref().unwrap().starts_with("Basic "));

    // credentials from auth.json, as `berth login` stores them
    let d = tmpdir("basic");
    let files = AuthFiles {
        primary: d.join("auth.json"),
        others: vec![],
    };
    let o = ClientOptions {
        auth_files: Some(files.clone()),
        ..opts()
    };
    assert!(Registry::new(&host, false, &o)
        .unwrap()
        .check_login()
        .is_err());
    files
        .store(&host, &Credentials::new("testuser", "testpassword"))
        .unwrap();
    let reg_client = Registry::new(&host, false, &o).unwrap();
    reg_client.check_login().unwrap();
    do_pull(&r, &o, &MemSink::default()).unwrap();
    let bad = with_creds("testuser", "nope");
    assert!(matches!(
        Registry::new(&host, false, &bad).unwrap().check_login(),
        Err(RegistryError::AuthFailed { .. })
    ));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bearer_tokens_anonymous_and_with_credentials_with_several_scopes() {
    let reg = FakeRegistry::start(AuthMode::Bearer {
        access_token_only: false,
    });
    let img = add_image(&reg, "test/a", "latest", &[data(4, 5000), data(5, 6000)]);
    let r = format!("{}/test/a", reg.host());
    let sink = MemSink::default();
    do_pull(&r, &opts(), &sink).unwrap();
    let log = reg.log();
    let tokens: Vec<_> = log
        .iter()
        .filter(|l| l.path.starts_with("/token"))
        .collect();
    assert_eq!(
        tokens.len(),
        1,
        "the token is cached for the pull: {tokens:?}"
    );
    assert_eq!(
        tokens[0].path,
        "/token?service=fake&scope=repository%3Atest%2Fa%3Apull"
    );
    assert_eq!(tokens[0].authorization, None, "anonymous token");
    assert!(log.iter().filter(|l| l.path.contains("/blobs/")).all(|l| l
        .authorization
        .as_deref()
        .is_some_and(|a| a.starts_with("Bearer "))));

    // wrong credentials: the token server refuses them
    let host = reg.host();
    let e = err(do_pull(
        &r,
        &with_creds("testuser", "bad"),
        &MemSink::default(),
    ));
    assert!(
        e.starts_with(&format!("authentication to {host} failed")),
        "{e}"
    );
    // anonymous tokens do not push
    let anon = Registry::new(&host, false, &opts()).unwrap();
    match anon.start_upload("test/a") {
        Err(RegistryError::AuthRequired { .. }) => {}
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("anonymous push accepted"),
    }
    // with credentials: a mount asks for two scopes in one token
    let c = Registry::new(&host, false, &with_creds("testuser", "testpassword")).unwrap();
    assert!(matches!(
        c.mount_blob("test/b", &img.layers[0], "test/a").unwrap(),
        Mount::Mounted
    ));
    let log = reg.log();
    let t = log
        .iter()
        .rev()
        .find(|l| l.path.starts_with("/token"))
        .unwrap();
    assert!(
        t.path.contains("scope=repository%3Atest%2Fb%3Apull%2Cpush"),
        "{}",
        t.path
    );
    assert!(
        t.path.contains("scope=repository%3Atest%2Fa%3Apull"),
        "{}",
        t.path
    );
    assert!(t.authorization.as_deref().unwrap().starts_with("Basic "));
    assert_eq!(c.blob_exists("test/b", &img.layers[0]).unwrap(), Some(5000));

    // a token server that answers `access_token` only
    let reg2 = FakeRegistry::start(AuthMode::Bearer {
        access_token_only: true,
    });
    add_image(&reg2, "x/y", "latest", &[data(6, 10)]);
    do_pull(
        &format!("{}/x/y", reg2.host()),
        &opts(),
        &MemSink::default(),
    )
    .unwrap();
}

#[test]
fn redirected_blobs_never_carry_credentials_to_the_other_host() {
    let storage = FakeRegistry::start(AuthMode::None);
    let reg = FakeRegistry::start(AuthMode::Basic);
    let layers = vec![data(7, 70_000)];
    let img = add_image(&reg, "test/app", "latest", &layers);
    for l in &layers {
        storage.add_blob("test/app", l);
    }
    let cfg = reg.with(|s| s.blobs[&img.config.to_string()].clone());
    storage.add_blob("test/app", &cfg);
    reg.with(|s| s.redirect_blobs_to = Some(format!("http://{}", storage.host())));
    let sink = MemSink::default();
    do_pull(
        &format!("{}/test/app", reg.host()),
        &with_creds("testuser", "testpassword"),
        &sink,
    )
    .unwrap();
    assert_eq!(sink.blobs.lock().unwrap()[&img.layers[0]], layers[0]);
    let slog = storage.log();
    assert!(slog
        .iter()
        .any(|l| l.path.contains(&img.layers[0].to_string()) && l.path.ends_with("?signed=1")));
    assert!(slog.iter().all(|l| l.authorization.is_none()), "{slog:?}");
    assert!(reg
        .log()
        .iter()
        .filter(|l| l.path.contains("/blobs/"))
        .all(|l| l.authorization.is_some()));
}

#[test]
fn corrupt_and_wrong_sized_blobs_are_refused_and_nothing_is_stored() {
    let reg = FakeRegistry::start(AuthMode::None);
    let img = add_image(&reg, "test/app", "latest", &[data(8, 100_000)]);
    reg.with(|s| s.corrupt.insert(img.layers[0].to_string()));
    let sink = MemSink::default();
    let e = err(do_pull(&format!("{}/test/app", reg.host()), &opts(), &sink));
    assert!(
        e.contains("digest mismatch") && e.contains(&img.layers[0].to_string()),
        "{e}"
    );
    assert!(!sink.has(&img.layers[0]));
    assert!(
        !sink.has(&img.manifest),
        "the manifest is stored last, after every layer"
    );

    // the descriptor's size is checked too, both ways
    let c = Registry::new(&reg.host(), false, &opts()).unwrap();
    reg.with(|s| s.corrupt.clear());
    let mut out = Vec::new();
    let e = c
        .blob("test/app", &img.layers[0], 100_001)
        .unwrap()
        .read_to_end(&mut out)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("size mismatch: expected 100001 bytes, got 100000"),
        "{e}"
    );
    let mut r = c.blob("test/app", &img.layers[0], 99_999).unwrap();
    let e = r.read_to_end(&mut Vec::new()).unwrap_err();
    assert!(e.to_string().contains("more than the 99999 bytes"), "{e}");
    // a reader stopping at the size never sees the last bytes of a corrupt blob
    reg.with(|s| s.corrupt.insert(img.layers[0].to_string()));
    let mut r = c.blob("test/app", &img.layers[0], 100_000).unwrap();
    let mut buf = vec![0; 100_000];
    assert!(r.read_exact(&mut buf).is_err());
}

#[test]
fn a_blob_cut_mid_way_resumes_with_range() {
    let reg = FakeRegistry::start(AuthMode::None);
    let big = data(9, 3_000_000);
    let img = add_image(&reg, "test/app", "latest", std::slice::from_ref(&big));
    reg.with(|s| s.cut_once.insert(img.layers[0].to_string()));
    let sink = MemSink::default();
    do_pull(&format!("{}/test/app", reg.host()), &opts(), &sink).unwrap();
    assert_eq!(sink.blobs.lock().unwrap()[&img.layers[0]], big);
    let ranges: Vec<_> = reg.log().into_iter().filter_map(|l| l.range).collect();
    assert_eq!(ranges, ["bytes=1500000-"]);

    // a server without Range support: the start is skipped
    reg.with(|s| {
        s.no_range = true;
        s.cut_once.insert(img.layers[0].to_string());
    });
    let sink = MemSink::default();
    do_pull(&format!("{}/test/app", reg.host()), &opts(), &sink).unwrap();
    assert_eq!(sink.blobs.lock().unwrap()[&img.layers[0]], big);
}

#[test]
fn retries_429_and_5xx_then_gives_up_naming_the_status() {
    let reg = FakeRegistry::start(AuthMode::None);
    add_image(&reg, "test/app", "latest", &[data(10, 10)]);
    reg.with(|s| s.fail_next = [503, 429, 502].into());
    let r = format!("{}/test/app", reg.host());
    do_pull(&r, &opts(), &MemSink::default()).unwrap();
    reg.with(|s| s.fail_next = [503; 10].into());
    let e = err(do_pull(&r, &opts(), &MemSink::default()));
    assert_eq!(
        e,
        format!(
            "{r}:latest: registry {} answered 503: slow down",
            reg.host()
        )
    );
    reg.with(|s| s.fail_next = [429; 10].into());
    let e = err(do_pull(&r, &opts(), &MemSink::default()));
    assert!(e.contains("too many requests"), "{e}");
}

#[test]
fn manifests_are_verified_against_the_digest_asked_and_the_registry_header() {
    let reg = FakeRegistry::start(AuthMode::None);
    let img = add_image(&reg, "test/app", "latest", &[data(11, 10)]);
    let host = reg.host();
    // by digest
    let by_digest = format!("{host}/test/app@{}", img.manifest);
    let (p, _) = do_pull(&by_digest, &opts(), &MemSink::default()).unwrap();
    assert_eq!(p.digest, img.manifest);
    // the registry serves other bytes under that digest
    let other = Digest::of(b"other");
    reg.with(|s| {
        let m = s.manifests[&format!("test/app:{}", img.manifest)].clone();
        s.manifests.insert(format!("test/app:{other}"), m);
    });
    let e = err(do_pull(
        &format!("{host}/test/app@{other}"),
        &opts(),
        &MemSink::default(),
    ));
    assert_eq!(
        e,
        format!(
            "manifest {host}/test/app@{other}: digest mismatch: expected {other}, got {}",
            img.manifest
        )
    );
    // a Docker-Content-Digest that is not the content's
    reg.with(|s| s.lie_about_digest = true);
    let e = err(do_pull(
        &format!("{host}/test/app"),
        &opts(),
        &MemSink::default(),
    ));
    assert!(e.contains("digest mismatch"), "{e}");
}

#[test]
fn indexes_choose_the_platform() {
    let reg = FakeRegistry::start(AuthMode::None);
    for (list_mt, m_mt, cfg_mt) in [
        (
            manifest::OCI_INDEX,
            manifest::OCI_MANIFEST,
            manifest::OCI_CONFIG,
        ),
        (
            manifest::DOCKER_LIST,
            manifest::DOCKER_MANIFEST,
            manifest::DOCKER_CONFIG,
        ),
    ] {
        let mut entries = Vec::new();
        let mut digests = HashMap::new();
        for (arch, variant) in [("amd64", None), ("arm64", Some("v8"))] {
            let cfg = format!(r#"{{"architecture":"{arch}","os":"linux"}}"#);
            let cd = reg.add_blob("test/multi", cfg.as_bytes());
            let l = data(arch.len() as u8, 100);
            let ld = reg.add_blob("test/multi", &l);
            let m = manifest_json((&cd, cfg.len()), &[(ld, 100, GZ)], m_mt, cfg_mt);
            let md = reg.add_manifest("test/multi", &format!("{arch}-only"), m_mt, &m);
            digests.insert(arch, md.clone());
            let mut p = serde_json::json!({"architecture": arch, "os": "linux"});
            if let Some(v) = variant {
                p["variant"] = v.into();
            }
            entries.push(serde_json::json!({"mediaType": m_mt, "digest": md.to_string(), "size": m.len(), "platform": p}));
        }
        let idx = serde_json::to_vec(
            &serde_json::json!({"schemaVersion": 2, "mediaType": list_mt, "manifests": entries}),
        )
        .unwrap();
        let id = reg.add_manifest("test/multi", "latest", list_mt, &idx);
        let r = format!("{}/test/multi", reg.host());
        let (p, _) = do_pull(&r, &opts(), &MemSink::default()).unwrap();
        assert_eq!(p.digest, id, "Docker's RepoDigest is the index's");
        assert_eq!(p.manifest.digest, digests["amd64"]);
        assert_eq!(p.index.as_ref().unwrap().media_type, list_mt);
        let arm = PullOptions {
            platform: PlatformSpec::parse("linux/arm64").unwrap(),
            jobs: 3,
        };
        let (p, _) = do_pull_with(&r, &opts(), &arm, &MemSink::default()).unwrap();
        assert_eq!(p.manifest.digest, digests["arm64"]);
        assert_eq!(p.manifest.media_type, m_mt);
        let s390 = PullOptions {
            platform: PlatformSpec::parse("linux/s390x").unwrap(),
            jobs: 3,
        };
        let e = err(do_pull_with(&r, &opts(), &s390, &MemSink::default()));
        assert_eq!(
            e,
            format!("{r}:latest: no image for platform linux/s390x in the manifest list (it has: linux/amd64, linux/arm64)")
        );
    }
}

#[test]
fn schema1_unknown_media_types_and_huge_manifests_are_refused() {
    let reg = FakeRegistry::start(AuthMode::None);
    let r = |t: &str| format!("{}/test/bad:{t}", reg.host());
    reg.add_manifest(
        "test/bad",
        "s1",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        br#"{"schemaVersion":1,"fsLayers":[]}"#,
    );
    let e = err(do_pull(&r("s1"), &opts(), &MemSink::default()));
    assert!(
        e.starts_with(&r("s1")) && e.contains("manifest schema 1"),
        "{e}"
    );
    reg.add_manifest(
        "test/bad",
        "odd",
        "application/vnd.example.thing+json",
        b"{}",
    );
    let e = err(do_pull(&r("odd"), &opts(), &MemSink::default()));
    assert!(
        e.contains("unsupported manifest media type \"application/vnd.example.thing+json\""),
        "{e}"
    );
    let mut huge =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","x":""#
            .to_vec();
    huge.resize(4 * 1024 * 1024 + 10, b'a');
    huge.extend_from_slice(b"\"}");
    reg.add_manifest("test/bad", "huge", manifest::OCI_MANIFEST, &huge);
    let e = err(do_pull(&r("huge"), &opts(), &MemSink::default()));
    assert_eq!(
        e,
        format!("{}: manifest over 4194304 bytes refused", r("huge"))
    );
    // an unknown layer type is refused before any blob is fetched
    let cfg = reg.add_blob("test/bad", b"{}");
    let l = reg.add_blob("test/bad", b"layer");
    let m = manifest_json(
        (&cfg, 2),
        &[(l, 5, "application/vnd.oci.image.layer.v1.tar+lz4")],
        manifest::OCI_MANIFEST,
        manifest::OCI_CONFIG,
    );
    reg.add_manifest("test/bad", "lz4", manifest::OCI_MANIFEST, &m);
    let before = reg.log().len();
    let e = err(do_pull(&r("lz4"), &opts(), &MemSink::default()));
    assert!(e.contains("unsupported layer media type"), "{e}");
    assert!(!reg.log()[before..]
        .iter()
        .any(|l| l.path.contains("/blobs/")));
}

#[test]
fn unknown_images_and_unreachable_registries_name_themselves() {
    let reg = FakeRegistry::start(AuthMode::None);
    add_image(&reg, "test/app", "latest", &[data(12, 10)]);
    let r = format!("{}/test/app:nope", reg.host());
    let e = do_pull(&r, &opts(), &MemSink::default()).unwrap_err();
    assert_eq!(format!("{e:#}"), format!("manifest unknown: {r}"));
    assert!(e
        .downcast_ref::<RegistryError>()
        .is_some_and(RegistryError::not_found));
    // a port nothing listens on
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = err(do_pull(
        &format!("127.0.0.1:{port}/a/b"),
        &opts(),
        &MemSink::default(),
    ));
    assert_eq!(
        e,
        format!("cannot connect to 127.0.0.1:{port}: connection refused")
    );
    // --tls-verify=true never falls back to plain HTTP, even on loopback
    let strict = ClientOptions {
        tls_verify: Some(true),
        ..opts()
    };
    let e = err(do_pull(
        &format!("{}/test/app", reg.host()),
        &strict,
        &MemSink::default(),
    ));
    assert!(
        e.starts_with(&format!("tls handshake with {} failed", reg.host())),
        "{e}"
    );
}

#[test]
fn push_skips_present_blobs_mounts_uploads_and_puts_the_manifest() {
    let reg = FakeRegistry::start(AuthMode::Bearer {
        access_token_only: false,
    });
    let img = add_image(&reg, "test/src", "latest", &[data(13, 2000)]);
    let c = Registry::new(&reg.host(), false, &with_creds("testuser", "testpassword")).unwrap();
    let fresh = data(14, 1000);
    let fd = Digest::of(&fresh);
    assert_eq!(c.blob_exists("test/dst", &fd).unwrap(), None);
    // monolithic
    let s = c.start_upload("test/dst").unwrap();
    c.upload_blob("test/dst", s, &fd, 1000, &mut &fresh[..])
        .unwrap();
    assert_eq!(c.blob_exists("test/dst", &fd).unwrap(), Some(1000));
    // chunked, in uneven pieces
    let other = data(15, 1001);
    let od = Digest::of(&other);
    let s = c.start_upload("test/dst").unwrap();
    c.upload_blob_chunked("test/dst", s, &od, 1001, &mut &other[..], 300)
        .unwrap();
    assert_eq!(reg.with(|st| st.blobs[&od.to_string()].clone()), other);
    assert_eq!(
        reg.log().iter().filter(|l| l.method == "PATCH").count(),
        4,
        "300+300+300+101"
    );
    // a source that is not what its digest says is caught before the registry commits it
    let s = c.start_upload("test/dst").unwrap();
    let e = c
        .upload_blob("test/dst", s, &od, 1000, &mut &fresh[..])
        .unwrap_err();
    assert!(
        e.to_string().contains("digest mismatch") || e.to_string().contains("400"),
        "{e}"
    );
    // cross-repository mount, and the registry's refusal of one
    assert!(matches!(
        c.mount_blob("test/dst", &img.layers[0], "test/src")
            .unwrap(),
        Mount::Mounted
    ));
    reg.with(|st| st.refuse_mounts = true);
    let Mount::Upload(session) = c.mount_blob("test/dst", &img.config, "test/src").unwrap() else {
        panic!("mount refused: an upload session expected")
    };
    let cfg = reg.with(|st| st.blobs[&img.config.to_string()].clone());
    c.upload_blob(
        "test/dst",
        session,
        &img.config,
        cfg.len() as u64,
        &mut &cfg[..],
    )
    .unwrap();
    let d = c
        .put_manifest(
            "test/dst",
            "v1",
            manifest::OCI_MANIFEST,
            &img.manifest_bytes,
        )
        .unwrap();
    assert_eq!(d, img.manifest);
    // and it pulls back
    let sink = MemSink::default();
    let (p, _) = do_pull(&format!("{}/test/dst:v1", reg.host()), &opts(), &sink).unwrap();
    assert_eq!(p.digest, img.manifest);
}

#[test]
fn tls_with_a_certs_d_ca_and_without() {
    let dir = tmpdir("tls");
    let (server_cfg, ca) = self_signed(&dir.join("pki"));
    let reg = FakeRegistry::start_with(AuthMode::Basic, Some(server_cfg));
    add_image(&reg, "test/app", "latest", &[data(16, 50_000)]);
    let r = format!("{}/test/app", reg.host());
    // not trusted: a certificate error, and no fallback to plain HTTP on loopback
    let e = err(do_pull(
        &r,
        &with_creds("testuser", "testpassword"),
        &MemSink::default(),
    ));
    assert!(
        e.starts_with(&format!("tls handshake with {} failed", reg.host()))
            && e.contains("certificate"),
        "{e}"
    );
    // trusted through certs.d/HOST:PORT/ca.crt
    let certs_d = dir.join("certs.d");
    std::fs::create_dir_all(certs_d.join(reg.host())).unwrap();
    std::fs::write(certs_d.join(reg.host()).join("ca.crt"), &ca).unwrap();
    let o = ClientOptions {
        cert_dirs: vec![dir.join("absent"), certs_d.clone()],
        ..with_creds("testuser", "testpassword")
    };
    let sink = MemSink::default();
    do_pull(&r, &o, &sink).unwrap();
    assert_eq!(sink.blobs.lock().unwrap().len(), 3);
    // podman's --cert-dir: the directory itself
    let o = ClientOptions {
        cert_dir: Some(certs_d.join(reg.host())),
        ..with_creds("testuser", "testpassword")
    };
    do_pull(&r, &o, &MemSink::default()).unwrap();
    // --tls-verify=false: no certificate check
    let o = ClientOptions {
        tls_verify: Some(false),
        ..with_creds("testuser", "testpassword")
    };
    do_pull(&r, &o, &MemSink::default()).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn short_names_try_each_search_registry_and_mirrors_fall_back() {
    let empty = FakeRegistry::start(AuthMode::None);
    let full = FakeRegistry::start(AuthMode::None);
    let img = add_image(&full, "tools/app", "1", &[data(17, 100)]);
    let mut conf = super::config::Registries::default();
    conf.merge_str(&format!(
        "unqualified-search-registries = [\"{}\", \"{}\"]\n",
        empty.host(),
        full.host()
    ))
    .unwrap();
    let sink = MemSink::default();
    let events = Mutex::new(Vec::new());
    let (name, p) = super::pull_image(
        "tools/app:1",
        &conf,
        &opts(),
        &PullOptions::default(),
        &sink,
        &|e| events.lock().unwrap().push(e),
    )
    .unwrap();
    assert_eq!(name.to_string(), format!("{}/tools/app:1", full.host()));
    assert_eq!(p.digest, img.manifest);
    let tried: Vec<_> = events
        .into_inner()
        .unwrap()
        .into_iter()
        .filter_map(|e| match e {
            PullEvent::Trying(r) => Some(r.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        tried,
        [format!("{}/tools/app:1", empty.host()), name.to_string()]
    );
    // nowhere: every failure on one line
    let e = err(super::pull_image(
        "tools/nope",
        &conf,
        &opts(),
        &PullOptions::default(),
        &sink,
        &|_| {},
    ));
    assert!(
        e.starts_with("tools/nope: no registry could provide the image: "),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "manifest unknown: {}/tools/nope:latest",
            full.host()
        )),
        "{e}"
    );
    assert!(!e.contains('\n'));

    // a mirror that is down, then the registry (rewritten to its location)
    let down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut conf = super::config::Registries::default();
    conf.merge_str(&format!(
        "[[registry]]\nprefix = \"example.test/tools\"\nlocation = \"{}/tools\"\n[[registry.mirror]]\nlocation = \"127.0.0.1:{down}/mirror\"\n",
        full.host()
    ))
    .unwrap();
    let (name, p) = super::pull_image(
        "example.test/tools/app:1",
        &conf,
        &opts(),
        &PullOptions::default(),
        &MemSink::default(),
        &|_| {},
    )
    .unwrap();
    assert_eq!(
        name.to_string(),
        "example.test/tools/app:1",
        "recorded under the name asked"
    );
    assert_eq!(p.source.to_string(), format!("{}/tools/app:1", full.host()));
    // a blocked registry is refused before any connection
    conf.merge_str("[[registry]]\nlocation = \"blocked.test\"\nblocked = true\n")
        .unwrap();
    let e = err(super::pull_image(
        "blocked.test/a",
        &conf,
        &opts(),
        &PullOptions::default(),
        &MemSink::default(),
        &|_| {},
    ));
    assert_eq!(
        e,
        "registry blocked.test is blocked in registries.conf (prefix \"blocked.test\")"
    );
}

#[test]
fn login_checks_then_stores_and_logout_removes() {
    let reg = FakeRegistry::start(AuthMode::Bearer {
        access_token_only: false,
    });
    let d = tmpdir("login");
    let files = AuthFiles {
        primary: d.join("run/containers/auth.json"),
        others: vec![d.join("docker/config.json")],
    };
    let conf = super::config::Registries::default();
    let host = reg.host();
    let e = err(super::login(
        &host,
        &Credentials::new("testuser", "bad-pw"),
        &conf,
        &opts(),
        &files,
    ));
    assert!(
        e.starts_with(&format!("authentication to {host} failed")) && !e.contains("bad-pw"),
        "{e}"
    );
    assert!(
        !files.primary.exists(),
        "nothing stored after a failed login"
    );
    let key = super::login(
        &format!("http://{host}/"),
        &Credentials::new("testuser", "testpassword"),
        &conf,
        &opts(),
        &files,
    )
    .unwrap();
    assert_eq!(key, host);
    assert_eq!(
        files
            .lookup(&format!("{host}/any"))
            .unwrap()
            .unwrap()
            .username,
        "testuser"
    );
    assert!(err(super::login(
        "Bad_Host!",
        &Credentials::new("a", "b"),
        &conf,
        &opts(),
        &files
    ))
    .contains("invalid registry"));
    assert!(err(super::login(
        &host,
        &Credentials::new("a", ""),
        &conf,
        &opts(),
        &files
    ))
    .contains("password is required"));
    super::logout(&host, &files).unwrap();
    assert_eq!(
        err(super::logout(&host, &files)),
        format!("not logged into {host}")
    );
    std::fs::create_dir_all(d.join("docker")).unwrap();
    std::fs::write(&files.others[0], r#"{"auths":{"quay.io":{"auth":"YTpi"}}}"#).unwrap();
    assert!(err(super::logout("quay.io", &files)).contains("docker logout quay.io"));
    std::fs::remove_dir_all(&d).unwrap();
}

struct MemSource(HashMap<Digest, Vec<u8>>);

impl super::push::BlobSource for MemSource {
    fn open(&self, d: &Digest) -> anyhow::Result<Box<dyn Read + Send>> {
        let b = self
            .0
            .get(d)
            .ok_or_else(|| anyhow::anyhow!("no blob {d}"))?
            .clone();
        Ok(Box::new(std::io::Cursor::new(b)))
    }
}

#[test]
fn push_image_uploads_then_skips_then_mounts_and_pushes_indexes() {
    use super::push::{push_image, PushEvent};
    // an image pulled from one registry ...
    let origin = FakeRegistry::start(AuthMode::None);
    let img = add_image(
        &origin,
        "test/app",
        "latest",
        &[data(18, 700_000), data(19, 10)],
    );
    let sink = MemSink::default();
    do_pull(&format!("{}/test/app", origin.host()), &opts(), &sink).unwrap();
    let source = MemSource(sink.blobs.into_inner().unwrap());
    // ... pushed to another, with auth
    let reg = FakeRegistry::start(AuthMode::Bearer {
        access_token_only: false,
    });
    let c = Registry::new(&reg.host(), false, &with_creds("testuser", "testpassword")).unwrap();
    let target = Reference::parse(&format!("{}/team/app:v1", reg.host())).unwrap();
    let push = |t: &Reference, mount: &[String]| {
        let events = Mutex::new(Vec::new());
        let d = push_image(
            &c,
            t,
            manifest::OCI_MANIFEST,
            &img.manifest_bytes,
            &source,
            mount,
            &|e| events.lock().unwrap().push(e),
        )
        .unwrap();
        (d, events.into_inner().unwrap())
    };
    let (d, events) = push(&target, &[]);
    assert_eq!(d, img.manifest);
    for l in &img.layers {
        assert!(events.contains(&PushEvent::Pushed(l.clone())), "{events:?}");
        assert_eq!(reg.with(|s| s.blobs[&l.to_string()].clone()), source.0[l]);
    }
    assert!(events.contains(&PushEvent::Progress {
        digest: img.layers[0].clone(),
        done: 700_000,
        size: 700_000
    }));
    let (_, events) = push(&target, &[]);
    assert!(events.contains(&PushEvent::Exists(img.layers[0].clone())));
    assert!(!events.iter().any(|e| matches!(e, PushEvent::Pushed(_))));
    let other = Reference::parse(&format!("{}/else/app:v2", reg.host())).unwrap();
    let (_, events) = push(&other, &["team/app".to_string()]);
    assert!(events.contains(&PushEvent::Mounted {
        digest: img.layers[1].clone(),
        from: "team/app".into()
    }));
    let (p, _) = do_pull(&other.to_string(), &opts(), &MemSink::default()).unwrap();
    assert_eq!(p.digest, img.manifest);

    // an index: its image by digest, then the index under the tag
    let idx = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": manifest::OCI_INDEX,
        "manifests": [{"mediaType": manifest::OCI_MANIFEST, "digest": img.manifest.to_string(),
                       "size": img.manifest_bytes.len(), "platform": {"os": "linux", "architecture": "amd64"}}]
    }))
    .unwrap();
    let multi = Reference::parse(&format!("{}/multi/app:1", reg.host())).unwrap();
    let d = push_image(&c, &multi, manifest::OCI_INDEX, &idx, &source, &[], &|_| {}).unwrap();
    assert_eq!(d, Digest::of(&idx));
    let (p, _) = do_pull(&multi.to_string(), &opts(), &MemSink::default()).unwrap();
    assert_eq!(
        (p.digest, p.manifest.digest),
        (Digest::of(&idx), img.manifest.clone())
    );
    // a store blob that is not what its digest says is not pushed
    let mut bad = source.0.clone();
    bad.insert(img.layers[1].clone(), b"tampered".to_vec());
    let e = push_image(
        &c,
        &Reference::parse(&format!("{}/bad/app", reg.host())).unwrap(),
        manifest::OCI_MANIFEST,
        &img.manifest_bytes,
        &MemSource(bad),
        &[],
        &|_| {},
    )
    .unwrap_err();
    assert!(
        format!("{e:#}").contains(&img.layers[1].to_string()),
        "{e:#}"
    );
}

#[test]
fn anonymous_bearer_refusal_reads_as_docker_hub_users_expect() {
    let reg = FakeRegistry::start(AuthMode::Bearer {
        access_token_only: false,
    });
    add_image(&reg, "private/app", "latest", &[data(20, 10)]);
    reg.with(|s| s.deny_anonymous = true);
    let (r, host) = (format!("{}/private/app:latest", reg.host()), reg.host());
    assert_eq!(
        err(do_pull(&r, &opts(), &MemSink::default())),
        format!("{r}: pull access denied: the repository does not exist or requires authentication (run `berth login {host}`)")
    );
    do_pull(
        &r,
        &with_creds("testuser", "testpassword"),
        &MemSink::default(),
    )
    .unwrap();
}
