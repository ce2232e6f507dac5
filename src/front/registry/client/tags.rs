//! `GET /v2/NAME/tags/list` for `pull --all-tags`: every page, following the registry's
//! `Link: <...>; rel="next"` (the distribution spec's pagination).

use serde::Deserialize;

use super::{pull_scope, Kind, Payload, Registry, RegistryError, Result};
use crate::front::reference::Reference;
use crate::front::registry::client::ClientOptions;
use crate::front::registry::config::Registries;
use crate::front::registry::manifest::MAX_MANIFEST;

/// Pages followed at most: a registry that links pages in a loop still ends.
const MAX_PAGES: usize = 1000;

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

impl Registry {
    /// The repository's tags, in the registry's order.
    pub(crate) fn tags(&self, repository: &str) -> Result<Vec<String>> {
        let what = format!("{}/{repository}", self.host);
        let mut url = self.url(&format!("/v2/{repository}/tags/list"))?;
        let scopes = [pull_scope(repository)];
        let mut out = Vec::new();
        for _ in 0..MAX_PAGES {
            let mut resp = self.request("GET", &url, &[], Payload::Empty, &scopes, &what)?;
            if resp.status != 200 {
                return Err(self.status_error(resp, &what, Kind::Other));
            }
            let next = resp.header_all("link").find_map(next_link);
            let bytes = resp
                .read_limited(MAX_MANIFEST)
                .map_err(|e| self.io_error(&url, e))?;
            let list: TagList = serde_json::from_slice(&bytes)
                .map_err(|e| RegistryError::Other(format!("{what}: the tag list: {e}")))?;
            out.extend(list.tags.unwrap_or_default());
            match next {
                Some(n) => url = url.join(&n)?,
                None => return Ok(out),
            }
        }
        Err(RegistryError::Other(format!(
            "{what}: the tag list goes on for over {MAX_PAGES} pages"
        )))
    }
}

/// The target of a `Link` header's `rel="next"`.
fn next_link(h: &str) -> Option<String> {
    h.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let next = params
            .split(';')
            .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
        let t = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        next.then(|| t.to_string())
    })
}

/// Every tag of the repository `input` names (no tag or digest in it), from the first
/// candidate registry (or mirror) that lists them: the candidate and its tags.
pub(crate) fn list_tags(
    input: &str,
    conf: &Registries,
    opts: &ClientOptions,
) -> anyhow::Result<(Reference, Vec<String>)> {
    let mut errors = Vec::new();
    for c in conf.pull_candidates(input)? {
        for ep in conf.endpoints(&c)? {
            let r = &ep.reference;
            let reg = Registry::for_repository(r.domain(), r.path(), ep.insecure, opts)?;
            match reg.tags(r.path()) {
                Ok(tags) => return Ok((c, tags)),
                Err(e) => errors.push(format!("{e}")),
            }
        }
    }
    anyhow::bail!("{}", errors.join("; "))
}

#[cfg(test)]
mod tests {
    use super::next_link;

    #[test]
    fn link_headers() {
        assert_eq!(
            next_link("</v2/a/tags/list?n=2&last=b>; rel=\"next\"").as_deref(),
            Some("/v2/a/tags/list?n=2&last=b")
        );
        assert_eq!(next_link("</x>; rel=\"prev\""), None);
        assert_eq!(
            next_link("</p>; rel=\"prev\", </n>; rel=\"next\"").as_deref(),
            Some("/n")
        );
        assert_eq!(next_link("garbage"), None);
    }
}
