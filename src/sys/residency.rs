//! Giving back the page-table entries of berth's own binary that a process no longer uses.
//!
//! A static berth is one 6 MB text segment. Each page fault on it maps the 16 pages around
//! the faulting one that are in the page cache (the kernel's fault-around), so a process
//! that runs a fair part of berth (a `run`: parsing, the spec, the runtime) ends up with
//! most of the binary resident: about 6 MiB of RSS, though every page is shared page
//! cache. A monitor then idles for the container's whole life touching a few pages.
//! Unmapping the binary's clean, read-only mappings (MADV_DONTNEED: the pages stay in the
//! page cache; a later touch maps them again with a minor fault) leaves it the pages it
//! really uses, and a clone made afterwards copies nothing of them.

use std::io::{BufRead, BufReader};

/// Unmaps the clean, read-only, file-backed mappings of the running executable (text and
/// read-only data). Mappings holding private copies (a debugger's breakpoints: anonymous
/// pages) or writable ones (.data, .bss) are left alone: dropping those would lose data.
/// Best effort: any failure leaves the mappings as they were.
pub(crate) fn drop_executable_pages() {
    let Ok(exe) = std::fs::metadata("/proc/self/exe") else {
        return;
    };
    let ino = std::os::unix::fs::MetadataExt::ino(&exe);
    let Ok(f) = std::fs::File::open("/proc/self/smaps") else {
        return;
    };
    // Ranges to drop, collected first: madvise while reading smaps would change it.
    let mut ranges: Vec<(usize, usize)> = Vec::with_capacity(4);
    let mut current: Option<(usize, usize)> = None;
    for line in BufReader::new(f).lines() {
        let Ok(line) = line else { return };
        if let Some(v) = line.strip_prefix("Anonymous:") {
            // Any private copy in the mapping: keep it whole.
            if v.trim().trim_end_matches("kB").trim() != "0" {
                current = None;
            }
            continue;
        }
        if line.starts_with("VmFlags:") {
            ranges.extend(current.take());
            continue;
        }
        let mut it = line.split_ascii_whitespace();
        let (Some(range), Some(perms)) = (it.next(), it.next()) else {
            continue;
        };
        // A mapping's header: "start-end perms offset dev inode path".
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        let inode = it.nth(2).and_then(|i| i.parse::<u64>().ok());
        current = (perms.starts_with('r')
            && perms.as_bytes().get(1) == Some(&b'-')
            && perms.ends_with('p')
            && inode == Some(ino))
        .then_some((start, end - start));
    }
    for (start, len) in ranges {
        // SAFETY: the range is a private, read-only mapping of the executable file with no
        // anonymous (copied-on-write) page in it, as /proc/self/smaps showed a moment ago
        // (this process maps nothing new meanwhile: no other thread does at these points).
        // MADV_DONTNEED on such a mapping only drops page-table entries; the next access
        // faults the same file contents back in, so no code or data changes.
        unsafe {
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_DONTNEED);
        }
    }
}
