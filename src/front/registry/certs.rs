//! TLS settings for a registry, as Docker and containers/image find them: the system's CA
//! bundle, plus `certs.d/HOST[:PORT]/` directories (`*.crt`: extra CAs; `*.cert` with its
//! `*.key`: a client certificate) under `/etc/containers/certs.d` and `/etc/docker/certs.d`
//! (and `~/.config/containers/certs.d` rootless).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use anyhow::{bail, Context};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// The certs.d roots, most specific first.
pub(crate) fn cert_dirs_from_env() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if crate::front::userns::rootless() {
        let cfg = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
        if let Some(c) = cfg {
            dirs.push(c.join("containers/certs.d"));
        }
    }
    dirs.push(PathBuf::from("/etc/containers/certs.d"));
    dirs.push(PathBuf::from("/etc/docker/certs.d"));
    dirs
}

/// What certs.d holds for one registry.
#[derive(Default)]
struct HostCerts {
    cas: Vec<CertificateDer<'static>>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

// ring rather than aws-lc-rs (rustls' new default, whose deprecation note is about
// post-quantum key exchange): aws-lc needs cmake and a C toolchain for the static musl
// release and is several times larger. Registries speak classical TLS.
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls configuration for `host` (the reference's domain, `name[:port]`). With
/// `cert_dir` (podman's `--cert-dir`) replaces certs.d: its own files serve. With
/// `verify` false the server's certificate is not checked (registries marked `insecure`,
/// `--tls-verify=false`); a client certificate from certs.d is still presented.
pub(crate) fn client_config(
    host: &str,
    verify: bool,
    cert_dirs: &[PathBuf],
    cert_dir: Option<&Path>,
) -> anyhow::Result<Arc<ClientConfig>> {
    let certs = match cert_dir {
        Some(d) => dir_certs(d, HostCerts::default())?,
        None => host_certs(host, cert_dirs)?,
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("tls setup")?;
    let builder = if verify {
        // The system's CAs are read at the first certificate to verify: a registry that
        // turns out to speak plain HTTP (a loopback one, tried with TLS first) never
        // costs the parse of a few hundred certificates.
        let sources = system_root_files();
        if sources.is_empty() && certs.cas.is_empty() {
            bail!("no CA certificates: no system bundle and nothing in certs.d for {host}");
        }
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Verifier {
                webpki: OnceLock::new(),
                sources,
                pinned: certs.cas,
                provider: provider(),
            }))
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
    };
    let config = match certs.client {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .with_context(|| format!("the client certificate in certs.d for {host}"))?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

fn host_certs(host: &str, cert_dirs: &[PathBuf]) -> anyhow::Result<HostCerts> {
    let mut out = HostCerts::default();
    // A host name cannot make the path leave certs.d: references' domains have no '/'.
    if host.contains('/') || host.starts_with('.') {
        return Ok(out);
    }
    for root in cert_dirs {
        out = dir_certs(&root.join(host), out)?;
    }
    Ok(out)
}

/// One directory's `*.crt` (CAs) and `*.cert`/`*.key` (a client certificate) added to
/// `out`; a missing directory adds nothing.
fn dir_certs(dir: &Path, mut out: HostCerts) -> anyhow::Result<HostCerts> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    for p in &names {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "crt" => {
                let certs = read_certs(p)?;
                out.cas.extend(certs);
            }
            "cert" => {
                let key = p.with_extension("key");
                if !key.exists() {
                    bail!(
                        "missing key {} for client certificate {}",
                        key.display(),
                        p.display()
                    );
                }
                let chain = read_certs(p)?;
                let k = PrivateKeyDer::from_pem_file(&key)
                    .map_err(|e| anyhow::anyhow!("{}: no private key: {e}", key.display()))?;
                if out.client.is_none() {
                    out.client = Some((chain, k));
                }
            }
            "key" if !p.with_extension("cert").exists() => {
                bail!(
                    "missing client certificate {} for key {}",
                    p.with_extension("cert").display(),
                    p.display()
                );
            }
            _ => {}
        }
    }
    Ok(out)
}

fn read_certs(p: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(p)
        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
    if certs.is_empty() {
        bail!("{}: no PEM certificate", p.display());
    }
    Ok(certs)
}

/// The files of the system's CA bundle where distributions keep it (what Go's
/// crypto/x509 and openssl-probe look for), or `SSL_CERT_FILE` / `SSL_CERT_DIR`.
fn system_root_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    if let Some(f) = std::env::var_os("SSL_CERT_FILE").filter(|v| !v.is_empty()) {
        files.push(f.into());
    } else {
        for f in [
            "/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Arch, Gentoo
            "/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
            "/etc/ssl/ca-bundle.pem",             // openSUSE
            "/etc/pki/tls/cacert.pem",            // OpenELEC
            "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", // CentOS, RHEL 7
            "/etc/ssl/cert.pem",                  // Alpine
        ] {
            if Path::new(f).exists() {
                files.push(f.into());
                break;
            }
        }
    }
    if let Some(d) = std::env::var_os("SSL_CERT_DIR").filter(|v| !v.is_empty()) {
        for dir in std::env::split_paths(&d) {
            if let Ok(rd) = std::fs::read_dir(dir) {
                files.extend(rd.filter_map(|e| e.ok().map(|e| e.path())));
            }
        }
    }
    files
}

/// webpki's verifier for the certificates of `files` and `extra` (certs.d's CAs); None
/// when none of them is usable.
fn webpki_verifier(
    files: &[PathBuf],
    extra: &[CertificateDer<'static>],
) -> Option<Arc<WebPkiServerVerifier>> {
    let mut roots = RootCertStore::empty();
    // A bundle can carry certificates webpki cannot use; those are skipped, as every TLS
    // client does. A self-signed server certificate made with `openssl req -x509` is
    // marked as a CA, which webpki refuses as a server's own: certs.d's are also pinned.
    for f in files {
        if let Ok(it) = CertificateDer::pem_file_iter(f) {
            for c in it.filter_map(Result::ok) {
                let _ = roots.add(c);
            }
        }
    }
    for c in extra {
        let _ = roots.add(c.clone());
    }
    if roots.is_empty() {
        return None;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .ok()
}

/// webpki's verification against the system's and certs.d's CAs, or a certificate
/// that certs.d holds itself (byte for byte).
#[derive(Debug)]
struct Verifier {
    /// Built from `sources` and `pinned` at the first certificate to verify.
    webpki: OnceLock<Option<Arc<WebPkiServerVerifier>>>,
    sources: Vec<PathBuf>,
    pinned: Vec<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let webpki = self
            .webpki
            .get_or_init(|| webpki_verifier(&self.sources, &self.pinned));
        let result = match webpki {
            Some(w) => w.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            )),
        };
        match result {
            Err(_)
                if self
                    .pinned
                    .iter()
                    .any(|p| p.as_ref() == end_entity.as_ref()) =>
            {
                Ok(ServerCertVerified::assertion())
            }
            r => r,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// No certificate check, for registries the user declared insecure. The handshake's own
/// signatures are still verified, so the session is at least with the key the server sent.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certs_d_errors_name_the_file() {
        let d = std::env::temp_dir().join(format!("berth-certsd-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let host = d.join("reg.example:5000");
        std::fs::create_dir_all(&host).unwrap();
        // nothing for another host, nothing at all: a plain verified configuration
        assert!(client_config("other:1", true, std::slice::from_ref(&d), None).is_ok());
        std::fs::write(host.join("client.cert"), "x").unwrap();
        let e = format!(
            "{:#}",
            client_config("reg.example:5000", true, std::slice::from_ref(&d), None).unwrap_err()
        );
        assert!(e.contains("missing key") && e.contains("client.key"), "{e}");
        std::fs::remove_file(host.join("client.cert")).unwrap();
        std::fs::write(host.join("ca.crt"), "not pem").unwrap();
        let e = format!(
            "{:#}",
            client_config("reg.example:5000", true, std::slice::from_ref(&d), None).unwrap_err()
        );
        assert!(
            e.contains("ca.crt") && e.contains("no PEM certificate"),
            "{e}"
        );
        // a path-like host never reads outside certs.d
        assert!(host_certs("../x", std::slice::from_ref(&d))
            .unwrap()
            .cas
            .is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
