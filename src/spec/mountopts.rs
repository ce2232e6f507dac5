//! Mount options -> MS_* flags, propagation, recursive attributes and filesystem data.
//! This table is the single source of truth, also reported by `features`.

/// (option, clears the flag, MS_* flag)
pub(crate) const MOUNT_OPTIONS: &[(&str, bool, u64)] = &[
    ("async", true, libc::MS_SYNCHRONOUS),
    ("atime", true, libc::MS_NOATIME),
    ("bind", false, libc::MS_BIND),
    ("defaults", false, 0),
    ("dev", true, libc::MS_NODEV),
    ("diratime", true, libc::MS_NODIRATIME),
    ("dirsync", false, libc::MS_DIRSYNC),
    ("exec", true, libc::MS_NOEXEC),
    ("mand", false, libc::MS_MANDLOCK),
    ("noatime", false, libc::MS_NOATIME),
    ("nodev", false, libc::MS_NODEV),
    ("nodiratime", false, libc::MS_NODIRATIME),
    ("noexec", false, libc::MS_NOEXEC),
    ("nomand", true, libc::MS_MANDLOCK),
    ("norelatime", true, libc::MS_RELATIME),
    ("nostrictatime", true, libc::MS_STRICTATIME),
    ("nosuid", false, libc::MS_NOSUID),
    ("rbind", false, libc::MS_BIND | libc::MS_REC),
    ("relatime", false, libc::MS_RELATIME),
    ("remount", false, libc::MS_REMOUNT),
    ("ro", false, libc::MS_RDONLY),
    ("rw", true, libc::MS_RDONLY),
    ("silent", false, libc::MS_SILENT),
    ("strictatime", false, libc::MS_STRICTATIME),
    ("suid", true, libc::MS_NOSUID),
    ("sync", false, libc::MS_SYNCHRONOUS),
];

pub(crate) const PROPAGATION_OPTIONS: &[(&str, u64)] = &[
    ("private", libc::MS_PRIVATE),
    ("rprivate", libc::MS_PRIVATE | libc::MS_REC),
    ("shared", libc::MS_SHARED),
    ("rshared", libc::MS_SHARED | libc::MS_REC),
    ("slave", libc::MS_SLAVE),
    ("rslave", libc::MS_SLAVE | libc::MS_REC),
    ("unbindable", libc::MS_UNBINDABLE),
    ("runbindable", libc::MS_UNBINDABLE | libc::MS_REC),
];

/// Recursive mount attributes (mount_setattr with AT_RECURSIVE): (option, clear, MOUNT_ATTR_*).
pub(crate) const RECURSIVE_OPTIONS: &[(&str, bool, u64)] = &[
    ("rro", false, 0x01),
    ("rrw", true, 0x01),
    ("rnosuid", false, 0x02),
    ("rsuid", true, 0x02),
    ("rnodev", false, 0x04),
    ("rdev", true, 0x04),
    ("rnoexec", false, 0x08),
    ("rexec", true, 0x08),
    ("rnodiratime", false, 0x80),
    ("rdiratime", true, 0x80),
    ("rnoatime", false, 0x10),
    ("ratime", true, 0x10),
    ("rstrictatime", false, 0x20),
    ("rrelatime", false, 0x00),
];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ParsedMountOptions {
    pub(crate) flags: u64,
    pub(crate) clear: u64,
    pub(crate) propagation: Vec<u64>,
    pub(crate) data: Vec<String>,
    pub(crate) rec_attr_set: u64,
    pub(crate) rec_attr_clr: u64,
    pub(crate) tmpcopyup: bool,
    pub(crate) idmap: bool,
    pub(crate) ridmap: bool,
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
            } else {
                p.rec_attr_set |= attr;
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
        let p = parse(&["nosuid", "noexec", "nodev", "mode=755", "size=65536k", "rslave"]);
        assert_eq!(p.flags, libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV);
        assert_eq!(p.data, vec!["mode=755", "size=65536k"]);
        assert_eq!(p.propagation, vec![libc::MS_SLAVE | libc::MS_REC]);
    }

    #[test]
    fn later_option_wins() {
        let p = parse(&["ro", "rw"]);
        assert_eq!(p.flags & libc::MS_RDONLY, 0);
        assert_ne!(p.clear & libc::MS_RDONLY, 0);
        let p = parse(&["rbind", "ro", "tmpcopyup", "rro"]);
        assert_eq!(p.flags, libc::MS_BIND | libc::MS_REC | libc::MS_RDONLY);
        assert!(p.tmpcopyup);
        assert_eq!(p.rec_attr_set, 0x01);
    }
}
