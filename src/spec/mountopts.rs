//! Mount options -> MS_* flags, propagation, recursive attributes and filesystem data.
//!
//! These tables are the single source of truth: the mount code parses with them and
//! `features` reports their names, so berth never advertises an option it would silently
//! pass to the filesystem as data.

// libc spells MS_* as c_ulong; widen once here so the tables stay plain u64 everywhere
// (the cast is a no-op on 64-bit targets only).
#[allow(clippy::unnecessary_cast)]
const fn ms(flag: libc::c_ulong) -> u64 {
    flag as u64
}

/// Mount flags for mount(2): (option, clears the flag, MS_* flag).
///
/// "clear" options undo their flag (rw clears MS_RDONLY); the later option wins, as with
/// mount(8). `defaults` is known but means nothing, so it never reaches the filesystem.
pub(crate) const MOUNT_OPTIONS: &[(&str, bool, u64)] = &[
    ("async", true, ms(libc::MS_SYNCHRONOUS)),
    ("atime", true, ms(libc::MS_NOATIME)),
    ("bind", false, ms(libc::MS_BIND)),
    ("defaults", false, 0),
    ("dev", true, ms(libc::MS_NODEV)),
    ("diratime", true, ms(libc::MS_NODIRATIME)),
    ("dirsync", false, ms(libc::MS_DIRSYNC)),
    ("exec", true, ms(libc::MS_NOEXEC)),
    ("iversion", false, ms(libc::MS_I_VERSION)),
    ("lazytime", false, ms(libc::MS_LAZYTIME)),
    ("loud", true, ms(libc::MS_SILENT)),
    ("mand", false, ms(libc::MS_MANDLOCK)),
    ("noatime", false, ms(libc::MS_NOATIME)),
    ("nodev", false, ms(libc::MS_NODEV)),
    ("nodiratime", false, ms(libc::MS_NODIRATIME)),
    ("noexec", false, ms(libc::MS_NOEXEC)),
    ("noiversion", true, ms(libc::MS_I_VERSION)),
    ("nolazytime", true, ms(libc::MS_LAZYTIME)),
    ("nomand", true, ms(libc::MS_MANDLOCK)),
    ("norelatime", true, ms(libc::MS_RELATIME)),
    ("nostrictatime", true, ms(libc::MS_STRICTATIME)),
    ("nosuid", false, ms(libc::MS_NOSUID)),
    // Since Linux 5.10.
    ("nosymfollow", false, ms(libc::MS_NOSYMFOLLOW)),
    ("rbind", false, ms(libc::MS_BIND | libc::MS_REC)),
    ("relatime", false, ms(libc::MS_RELATIME)),
    ("remount", false, ms(libc::MS_REMOUNT)),
    ("ro", false, ms(libc::MS_RDONLY)),
    ("rw", true, ms(libc::MS_RDONLY)),
    ("silent", false, ms(libc::MS_SILENT)),
    ("strictatime", false, ms(libc::MS_STRICTATIME)),
    ("suid", true, ms(libc::MS_NOSUID)),
    ("symfollow", true, ms(libc::MS_NOSYMFOLLOW)),
    ("sync", false, ms(libc::MS_SYNCHRONOUS)),
];

/// Propagation changes, applied after the mount in the order given: (option, MS_* flags).
pub(crate) const PROPAGATION_OPTIONS: &[(&str, u64)] = &[
    ("private", ms(libc::MS_PRIVATE)),
    ("rprivate", ms(libc::MS_PRIVATE | libc::MS_REC)),
    ("shared", ms(libc::MS_SHARED)),
    ("rshared", ms(libc::MS_SHARED | libc::MS_REC)),
    ("slave", ms(libc::MS_SLAVE)),
    ("rslave", ms(libc::MS_SLAVE | libc::MS_REC)),
    ("unbindable", ms(libc::MS_UNBINDABLE)),
    ("runbindable", ms(libc::MS_UNBINDABLE | libc::MS_REC)),
];

/// Recursive attributes for mount_setattr(AT_RECURSIVE) (Linux 5.12+):
/// (option, clears the attribute, MOUNT_ATTR_*).
///
/// MOUNT_ATTR_RELATIME is 0: relatime is the absence of the other atime modes, so
/// `rrelatime` only works through the MOUNT_ATTR__ATIME clear mask added by the parser and
/// `rnorelatime` has nothing to clear.
pub(crate) const RECURSIVE_OPTIONS: &[(&str, bool, u64)] = &[
    ("rro", false, libc::MOUNT_ATTR_RDONLY),
    ("rrw", true, libc::MOUNT_ATTR_RDONLY),
    ("rnosuid", false, libc::MOUNT_ATTR_NOSUID),
    ("rsuid", true, libc::MOUNT_ATTR_NOSUID),
    ("rnodev", false, libc::MOUNT_ATTR_NODEV),
    ("rdev", true, libc::MOUNT_ATTR_NODEV),
    ("rnoexec", false, libc::MOUNT_ATTR_NOEXEC),
    ("rexec", true, libc::MOUNT_ATTR_NOEXEC),
    ("rnodiratime", false, libc::MOUNT_ATTR_NODIRATIME),
    ("rdiratime", true, libc::MOUNT_ATTR_NODIRATIME),
    ("rrelatime", false, libc::MOUNT_ATTR_RELATIME),
    ("rnorelatime", true, libc::MOUNT_ATTR_RELATIME),
    ("rnoatime", false, libc::MOUNT_ATTR_NOATIME),
    ("ratime", true, libc::MOUNT_ATTR_NOATIME),
    ("rstrictatime", false, libc::MOUNT_ATTR_STRICTATIME),
    ("rnostrictatime", true, libc::MOUNT_ATTR_STRICTATIME),
    // Since Linux 5.14.
    ("rnosymfollow", false, libc::MOUNT_ATTR_NOSYMFOLLOW),
    ("rsymfollow", true, libc::MOUNT_ATTR_NOSYMFOLLOW),
];

/// Options that are neither kernel flags nor filesystem data: tmpcopyup (copy the
/// image's content into a fresh tmpfs), idmap / ridmap (idmapped bind mount, the latter
/// for the whole tree).
pub(crate) const EXTENSION_OPTIONS: &[&str] = &["tmpcopyup", "idmap", "ridmap"];

/// Every option name berth recognises, sorted, as `features` reports them.
pub(crate) fn known_mount_options() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = MOUNT_OPTIONS
        .iter()
        .map(|(n, _, _)| *n)
        .chain(PROPAGATION_OPTIONS.iter().map(|(n, _)| *n))
        .chain(RECURSIVE_OPTIONS.iter().map(|(n, _, _)| *n))
        .chain(EXTENSION_OPTIONS.iter().copied())
        .collect();
    names.sort_unstable();
    names
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ParsedMountOptions {
    /// MS_* flags to set.
    pub(crate) flags: u64,
    /// MS_* flags explicitly cleared (rw, dev, ...); a remount or bind needs to know them
    /// to drop what the source mount already had.
    pub(crate) clear: u64,
    /// Propagation changes in the order given.
    pub(crate) propagation: Vec<u64>,
    /// Unknown options, passed to the filesystem ("mode=755", "size=65536k", ...).
    pub(crate) data: Vec<String>,
    /// MOUNT_ATTR_* to set / clear recursively.
    pub(crate) rec_attr_set: u64,
    pub(crate) rec_attr_clr: u64,
    pub(crate) tmpcopyup: bool,
    pub(crate) idmap: bool,
    pub(crate) ridmap: bool,
}

#[cfg(test)]
impl ParsedMountOptions {
    /// The filesystem data string for mount(2).
    pub(crate) fn data_string(&self) -> String {
        self.data.join(",")
    }

    /// Whether any recursive attribute was asked for (needs mount_setattr).
    pub(crate) fn has_rec_attr(&self) -> bool {
        self.rec_attr_set != 0 || self.rec_attr_clr != 0
    }
}

pub(crate) fn parse_mount_options(opts: &[String]) -> ParsedMountOptions {
    let mut p = ParsedMountOptions::default();
    for o in opts {
        let o = o.as_str();
        if let Some(&(_, clear, flag)) = MOUNT_OPTIONS.iter().find(|(n, _, _)| *n == o) {
            if clear {
                p.flags &= !flag;
                p.clear |= flag;
            } else {
                p.flags |= flag;
                p.clear &= !flag;
            }
        } else if let Some(&(_, flag)) = PROPAGATION_OPTIONS.iter().find(|(n, _)| *n == o) {
            p.propagation.push(flag);
        } else if let Some(&(_, clear, attr)) = RECURSIVE_OPTIONS.iter().find(|(n, _, _)| *n == o) {
            if clear {
                p.rec_attr_clr |= attr;
                p.rec_attr_set &= !attr;
            } else {
                p.rec_attr_set |= attr;
                p.rec_attr_clr &= !attr;
                // The atime modes are an enum inside a bit field: mount_setattr(2) only
                // changes it when the whole MOUNT_ATTR__ATIME mask is in attr_clr.
                if attr & libc::MOUNT_ATTR__ATIME == attr {
                    p.rec_attr_clr |= libc::MOUNT_ATTR__ATIME;
                }
            }
        } else {
            match o {
                "tmpcopyup" => p.tmpcopyup = true,
                "idmap" => p.idmap = true,
                "ridmap" => p.ridmap = true,
                _ => p.data.push(o.to_string()),
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(o: &[&str]) -> ParsedMountOptions {
        parse_mount_options(&o.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_data_and_propagation() {
        let p = parse(&[
            "nosuid",
            "noexec",
            "nodev",
            "mode=755",
            "size=65536k",
            "rslave",
        ]);
        assert_eq!(
            p.flags,
            ms(libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV)
        );
        assert_eq!(p.data, vec!["mode=755", "size=65536k"]);
        assert_eq!(p.data_string(), "mode=755,size=65536k");
        assert_eq!(p.propagation, vec![ms(libc::MS_SLAVE | libc::MS_REC)]);
        assert!(!p.has_rec_attr());
    }

    #[test]
    fn later_option_wins() {
        let p = parse(&["ro", "rw"]);
        assert_eq!(p.flags & ms(libc::MS_RDONLY), 0);
        assert_ne!(p.clear & ms(libc::MS_RDONLY), 0);
        let p = parse(&["rw", "ro"]);
        assert_ne!(p.flags & ms(libc::MS_RDONLY), 0);
        assert_eq!(p.clear & ms(libc::MS_RDONLY), 0);
        let p = parse(&["rbind", "ro", "tmpcopyup", "rro"]);
        assert_eq!(p.flags, ms(libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY));
        assert!(p.tmpcopyup);
        assert_eq!(p.rec_attr_set, libc::MOUNT_ATTR_RDONLY);
        assert_eq!(p.rec_attr_clr, 0);
    }

    #[test]
    fn recursive_attrs() {
        let p = parse(&["rro", "rrw", "rnosuid"]);
        assert_eq!(p.rec_attr_set, libc::MOUNT_ATTR_NOSUID);
        assert_eq!(p.rec_attr_clr, libc::MOUNT_ATTR_RDONLY);
        // An atime mode also clears the whole atime field, or the kernel refuses it.
        let p = parse(&["rnoatime"]);
        assert_eq!(p.rec_attr_set, libc::MOUNT_ATTR_NOATIME);
        assert_eq!(p.rec_attr_clr, libc::MOUNT_ATTR__ATIME);
        let p = parse(&["rrelatime"]);
        assert_eq!(p.rec_attr_set, 0);
        assert_eq!(p.rec_attr_clr, libc::MOUNT_ATTR__ATIME);
        assert!(p.has_rec_attr());
    }

    #[test]
    fn extensions_defaults_and_unknown() {
        let p = parse(&["defaults", "idmap", "ridmap", "acl", "uid=1000"]);
        assert_eq!(p.flags, 0);
        assert!(p.idmap && p.ridmap && !p.tmpcopyup);
        assert_eq!(p.data, vec!["acl", "uid=1000"]);
    }

    #[test]
    fn propagation_keeps_order() {
        let p = parse(&["shared", "rprivate", "unbindable"]);
        assert_eq!(
            p.propagation,
            vec![
                ms(libc::MS_SHARED),
                ms(libc::MS_PRIVATE | libc::MS_REC),
                ms(libc::MS_UNBINDABLE)
            ]
        );
    }

    #[test]
    fn names_unique_and_sorted() {
        let names = known_mount_options();
        let mut dedup = names.clone();
        dedup.dedup();
        assert_eq!(names, dedup, "an option name appears in two tables");
        for runc in [
            "rro",
            "rbind",
            "tmpcopyup",
            "nosymfollow",
            "rnosymfollow",
            "runbindable",
        ] {
            assert!(names.contains(&runc), "{runc} missing");
        }
    }
}
