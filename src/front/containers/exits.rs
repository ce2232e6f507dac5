//! Exit codes of removed containers, kept a while (`RUNROOT/exits/<id>`), as Podman does:
//! a `wait` racing a `--rm` removal, or a `run --rm` whose monitor removed the container
//! before the command read its end, still gets the code instead of "No such container".
//! Under the runroot: a reboot forgets them with the rest of the runtime state.

use std::fs;
use std::path::PathBuf;
use std::sync::Once;
use std::time::{Duration, SystemTime};

use super::{Status, Store};

/// How long a removed container's code is kept (Podman's figure).
const KEEP: Duration = Duration::from_secs(5 * 60);
/// How often the kept codes are looked through for old ones.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

impl Store {
    fn exits_dir(&self) -> PathBuf {
        self.runroot.join("exits")
    }

    /// Records the exit code of a container about to be removed, if it ran; prunes the
    /// codes older than [`KEEP`]. Best effort: a failure only loses the late answer.
    pub(crate) fn keep_exit_code(&self, id: &str) {
        let Ok(state) = self.load_state(id) else {
            return;
        };
        if state.status != Status::Exited {
            return;
        }
        let d = self.exits_dir();
        if fs::create_dir_all(&d).is_err() {
            return;
        }
        // Renamed into place (a reader sees all of it or nothing) but not synced: it is
        // runtime state, forgotten at reboot anyway, and an rm of many containers would
        // pay an fsync each.
        let tmp = d.join(format!(".{id}.tmp"));
        if fs::write(&tmp, format!("{}\n", state.exit_code)).is_err()
            || fs::rename(&tmp, d.join(id)).is_err()
        {
            let _ = fs::remove_file(&tmp);
        }
        // Once per process: an `rm` of a thousand containers lists the directory once.
        static PRUNED: Once = Once::new();
        PRUNED.call_once(|| self.prune_exit_codes());
    }

    fn prune_exit_codes(&self) {
        let d = self.exits_dir();
        let now = SystemTime::now();
        // At most once a minute: each `run --rm` would otherwise stat every code kept.
        let stamp = d.join(".pruned");
        let recent = fs::metadata(&stamp)
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age < PRUNE_EVERY));
        if recent || fs::write(&stamp, b"").is_err() {
            return;
        }
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).is_ok_and(|age| age > KEEP));
            if old {
                let _ = fs::remove_file(e.path());
            }
        }
    }

    /// The kept exit code of a removed container.
    pub(crate) fn kept_exit_code(&self, id: &str) -> Option<i32> {
        fs::read_to_string(self.exits_dir().join(id))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}
