//! `start --filter` (Podman's): which containers a `start --all` starts. What
//! `berth-restart.service` runs at boot, `start --all --filter restart-policy=always
//! --filter restart-policy=unless-stopped`, brings back what Docker's daemon brings back
//! when it starts: every `always` container, and the `unless-stopped` ones the user did
//! not stop (`State.ManuallyStopped`, set by `stop`, `kill`, `rm -f`, cleared by a start;
//! the SIGTERM of a shutdown to a detached monitor does not set it).

use anyhow::{anyhow, bail, Result};

use crate::front::containers::Container;

const POLICIES: &[&str] = &["no", "always", "unless-stopped", "on-failure"];

/// The filters given; a key given twice matches either value, different keys all.
#[derive(Default, Debug)]
pub(crate) struct StartFilter {
    id: Vec<String>,
    name: Vec<String>,
    label: Vec<(String, Option<String>)>,
    restart_policy: Vec<String>,
}

impl StartFilter {
    pub(crate) fn parse(list: &[String]) -> Result<StartFilter> {
        let mut f = StartFilter::default();
        for item in list {
            let (k, v) = item
                .split_once('=')
                .ok_or_else(|| anyhow!("--filter {item}: expected KEY=VALUE"))?;
            match k {
                "id" => f.id.push(v.to_string()),
                "name" => f.name.push(v.to_string()),
                "label" => f.label.push(match v.split_once('=') {
                    Some((a, b)) => (a.to_string(), Some(b.to_string())),
                    None => (v.to_string(), None),
                }),
                "restart-policy" => {
                    if !POLICIES.contains(&v) {
                        bail!(
                            "--filter restart-policy={v}: not one of {}",
                            POLICIES.join(", ")
                        );
                    }
                    f.restart_policy.push(v.to_string());
                }
                _ => bail!("--filter {k}: start filters on id, name, label or restart-policy"),
            }
        }
        Ok(f)
    }

    pub(crate) fn matches(&self, c: &Container) -> bool {
        let r = &c.rec;
        if !self.id.is_empty() && !self.id.iter().any(|p| r.id.starts_with(p.as_str())) {
            return false;
        }
        if !self.name.is_empty() && !self.name.iter().any(|n| r.name.contains(n.as_str())) {
            return false;
        }
        for (k, v) in &self.label {
            match (r.config.labels.get(k), v) {
                (None, _) => return false,
                (Some(have), Some(want)) if have != want => return false,
                _ => {}
            }
        }
        if !self.restart_policy.is_empty() {
            let p = r.host_config.restart_policy.name.as_str();
            let p = if p.is_empty() { "no" } else { p };
            if !self.restart_policy.iter().any(|w| w == p) {
                return false;
            }
            // Docker's unless-stopped: a container the user stopped stays stopped.
            if p == "unless-stopped" && c.state.manually_stopped {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctr(name: &str, policy: &str, stopped: bool) -> Container {
        let mut c = Container {
            rec: Default::default(),
            state: Default::default(),
        };
        c.rec.id = format!("{name}0123");
        c.rec.name = name.into();
        c.rec.host_config.restart_policy.name = policy.into();
        c.state.manually_stopped = stopped;
        c
    }

    #[test]
    fn the_boot_filter() {
        let f = StartFilter::parse(&[
            "restart-policy=always".into(),
            "restart-policy=unless-stopped".into(),
        ])
        .unwrap();
        assert!(f.matches(&ctr("a", "always", false)));
        assert!(f.matches(&ctr("a", "always", true)));
        assert!(f.matches(&ctr("u", "unless-stopped", false)));
        assert!(!f.matches(&ctr("u", "unless-stopped", true)));
        assert!(!f.matches(&ctr("n", "no", false)));
        assert!(!f.matches(&ctr("n", "", false)));
        assert!(!f.matches(&ctr("o", "on-failure", false)));
        let f = StartFilter::parse(&["restart-policy=no".into(), "name=web".into()]).unwrap();
        assert!(f.matches(&ctr("web1", "", false)));
        assert!(!f.matches(&ctr("db", "", false)));
        for bad in ["restart-policy=sometimes", "status=exited", "name"] {
            assert!(StartFilter::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
