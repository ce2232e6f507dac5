//! The rootless port forwarder (the monitor's `berth-ports` child) under load, as an
//! ordinary user made by the test, inside a private network namespace standing for the
//! host (see tests/people_rootless_net.rs): every byte of many concurrent connections
//! arrives, a client's half-close reaches the container while the answer still comes back,
//! and once the connections are over the forwarder holds no more fds or threads than before
//! them. On the default network (pasta's, the forwarder in the container's namespace) and
//! on a user network (the shared namespace).

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use common::people::free_port;
use common::rootless::{in_netns, until, U};

/// The forwarder's open fds and threads.
fn held(pid: i32) -> (usize, String) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads = status
        .lines()
        .find(|l| l.starts_with("Threads:"))
        .unwrap()
        .to_string();
    (fds, threads)
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// `GET /big` through the published port: the whole body, or None (not answering yet).
fn get_big(port: u16) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    s.write_all(b"GET /big HTTP/1.0\r\nHost: x\r\n\r\n").ok()?;
    let mut r = Vec::new();
    s.read_to_end(&mut r).ok()?;
    let at = r.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&r[..at]);
    (head.starts_with("HTTP/1.") && head.lines().next()?.contains(" 200 "))
        .then(|| r[at + 4..].to_vec())
}

/// Sends `data` to the container's `wc -c`, ends the sending side, and reads the count it
/// answers after seeing that end, until the connection's end. None when nothing listened
/// yet (the sink listens again after each connection).
fn count(port: u16, data: &[u8]) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(60))).ok()?;
    s.write_all(data).ok()?;
    s.shutdown(Shutdown::Write).ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    Some(r.trim().to_string()).filter(|r| !r.is_empty())
}

fn exercise(u: &U, id: &str, web: u16, wc: u16, big: &[u8]) {
    let fwd = u.check_forwarder(id);
    let before = held(fwd);
    until("httpd answers through the forwarder", || {
        get_big(web).is_some()
    });
    // Many connections at once, each with a body of several megabytes.
    let gets: Vec<_> = (0..16)
        .map(|_| std::thread::spawn(move || get_big(web)))
        .collect();
    for g in gets {
        let body = g.join().unwrap().expect("an answer");
        assert!(
            body.len() == big.len() && body == big,
            "a body arrived whole"
        );
    }
    // The client's half-close is forwarded: wc sees its end of input and answers.
    let sent = pattern(3 << 20);
    let mut answer = None;
    until("wc answers through the forwarder", || {
        answer = count(wc, &sent);
        answer.is_some()
    });
    assert_eq!(answer.unwrap(), (3 << 20).to_string());
    // Every connection's sockets and threads are gone with it.
    until("the forwarder back to its fds and threads", || {
        held(fwd) == before
    });
}

#[test]
fn rootless_forwarder_concurrent_half_close_no_leak() {
    in_netns(
        "rootless_forwarder_concurrent_half_close_no_leak",
        0o666,
        |_| {
            let u = U::new("rlports");
            let bin = u.w.rootfs.join("bin");
            for a in ["nc", "wc"] {
                let _ = std::os::unix::fs::symlink("busybox", bin.join(a));
            }
            let big = pattern(5 << 20);
            std::fs::write(u.w.rootfs.join("www/big"), &big).unwrap();
            let cmd = [
                "sh",
                "-c",
                "httpd -p 80 -h /www; while :; do nc -l -p 81 -e wc -c; done",
            ];
            let (p1, p2, p3, p4) = (free_port(), free_port(), free_port(), free_port());
            let def = u.run_d(
                &["-p", &format!("{p1}:80"), "-p", &format!("{p2}:81")],
                &cmd,
            );
            exercise(&u, &def, p1, p2, &big);
            u.b(&["network", "create", "portnet"]).ok();
            let usr = u.run_d(
                &[
                    "--network",
                    "portnet",
                    "-p",
                    &format!("{p3}:80"),
                    "-p",
                    &format!("{p4}:81"),
                ],
                &cmd,
            );
            exercise(&u, &usr, p3, p4, &big);
            u.b(&["rm", "-f", &def, &usr]).ok();
            u.b(&["network", "rm", "portnet"]).ok();
            u.finish();
        },
    );
}
