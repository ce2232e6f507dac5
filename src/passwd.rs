//! /etc/passwd as text: both faces read it directly, as runc's (Go) user lookup does, so
//! that no NSS module is loaded into the static binary. The caller reads the file (the
//! host's, or a container's through the rootfs resolver).

/// One entry of a passwd file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User<'a> {
    pub(crate) name: &'a str,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) home: &'a str,
}

/// The entries of a passwd file, in order; lines that are not entries (comments, blank,
/// NIS `+`/`-` lines, ids that are not numbers) are skipped.
pub(crate) fn users(text: &str) -> impl Iterator<Item = User<'_>> {
    text.lines().filter_map(|l| {
        let mut f = l.split(':');
        let name = f
            .next()
            .filter(|n| !n.is_empty() && !n.starts_with(['#', '+', '-']))?;
        let uid = f.nth(1)?.trim().parse().ok()?;
        let gid = f.next()?.trim().parse().ok()?;
        let home = f.nth(1).unwrap_or("");
        Some(User {
            name,
            uid,
            gid,
            home,
        })
    })
}

/// The first entry for `uid`.
pub(crate) fn by_uid(text: &str, uid: u32) -> Option<User<'_>> {
    users(text).find(|u| u.uid == uid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "\
# comment
root:x:0:0:root:/root:/bin/bash

daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
+nis::::::
broken:x:notanumber:0::/nowhere:
short:x:7:8
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
dup:x:0:5::/elsewhere:
";

    #[test]
    fn entries_in_order_skipping_what_is_not_one() {
        let names: Vec<&str> = users(PASSWD).map(|u| u.name).collect();
        assert_eq!(names, ["root", "daemon", "short", "nobody", "dup"]);
        assert_eq!(
            by_uid(PASSWD, 65534),
            Some(User {
                name: "nobody",
                uid: 65534,
                gid: 65534,
                home: "/nonexistent"
            })
        );
        // The first entry wins, as getpwuid(3).
        assert_eq!(by_uid(PASSWD, 0).unwrap().home, "/root");
        // Fields past gid may be missing.
        assert_eq!(by_uid(PASSWD, 7).unwrap().home, "");
        assert_eq!(by_uid(PASSWD, 42), None);
        assert_eq!(users("").count(), 0);
    }
}
