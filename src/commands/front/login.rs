//! `login [-u USER] [-p PASS | --password-stdin] [SERVER]` and `logout [--all] [SERVER]`:
//! credentials checked against the registry, then kept in containers' auth.json (0600).
//! A password is never printed.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{bail, Result};

use crate::cli::front::{LoginArgs, LogoutArgs};
use crate::front::registry::auth::{AuthFiles, Credentials};
use crate::front::registry::{login as reg_login, logout as reg_logout};
use crate::front::Globals;

const DEFAULT_SERVER: &str = "docker.io";

fn auth_files(authfile: Option<&str>) -> AuthFiles {
    match authfile {
        Some(f) => AuthFiles {
            primary: f.into(),
            others: vec![],
        },
        None => AuthFiles::from_env(),
    }
}

pub(crate) fn login(_g: &Globals, a: &LoginArgs) -> Result<i32> {
    let server = a.server.as_deref().unwrap_or(DEFAULT_SERVER);
    if a.password.is_some() && a.password_stdin {
        bail!("--password and --password-stdin are mutually exclusive");
    }
    let tty = std::io::stdin().is_terminal();
    let username = match &a.username {
        Some(u) => u.clone(),
        None if a.password_stdin => bail!("--password-stdin needs --username"),
        None if tty => prompt("Username: ")?,
        None => bail!("cannot perform an interactive login from a non TTY device: use --username"),
    };
    let password = if let Some(p) = &a.password {
        crate::logging::warn(
            "using --password on the command line is insecure: use --password-stdin",
        );
        p.clone()
    } else if a.password_stdin {
        let mut s = String::new();
        std::io::stdin().lock().read_line(&mut s)?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else if tty {
        read_password("Password: ")?
    } else {
        bail!("cannot perform an interactive login from a non TTY device: use --password-stdin");
    };
    let creds = Credentials::new(username.trim(), &password);
    let conf = super::pull::registries()?;
    let mut client = super::pull::client_options(a.tls_verify, a.authfile.as_deref());
    client.auth_files = None;
    let files = auth_files(a.authfile.as_deref());
    reg_login(server, &creds, &conf, &client, &files)?;
    println!("Login Succeeded");
    Ok(0)
}

pub(crate) fn logout(_g: &Globals, a: &LogoutArgs) -> Result<i32> {
    let files = auth_files(a.authfile.as_deref());
    if a.all {
        files.remove_all()?;
        println!("Removed login credentials for all registries");
        return Ok(0);
    }
    let server = a.server.as_deref().unwrap_or(DEFAULT_SERVER);
    reg_logout(server, &files)?;
    println!("Removed login credentials for {server}");
    Ok(0)
}

fn prompt(what: &str) -> Result<String> {
    eprint!("{what}");
    let _ = std::io::stderr().flush();
    let mut s = String::new();
    std::io::stdin().lock().read_line(&mut s)?;
    Ok(s.trim().to_string())
}

/// Reads a line from the terminal with echo off (restored even when reading fails).
fn read_password(what: &str) -> Result<String> {
    use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    eprint!("{what}");
    let _ = std::io::stderr().flush();
    tcsetattr(&stdin, SetArg::TCSANOW, &quiet)?;
    let mut s = String::new();
    let r = stdin.lock().read_line(&mut s);
    let _ = tcsetattr(&stdin, SetArg::TCSANOW, &saved);
    eprintln!();
    r?;
    Ok(s.trim_end_matches(['\n', '\r']).to_string())
}
