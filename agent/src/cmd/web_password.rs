//! `meshmon web-password`: reads a password (from stdin, or typed at a prompt with no echo
//! when stdin is a terminal) and prints its argon2 hash line for `web.password_file`.

use super::Failure;
use anyhow::Context as _;
use std::io::{BufRead as _, IsTerminal as _, Write as _};

fn read_line(prompt: Option<&str>) -> anyhow::Result<String> {
    if let Some(p) = prompt {
        eprint!("{p}");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from stdin")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Echo off on the terminal while `f` runs.
fn no_echo<T>(f: impl FnOnce() -> T) -> T {
    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let old = tcgetattr(&stdin).ok();
    if let Some(old) = &old {
        let mut t = old.clone();
        t.local_modes.remove(LocalModes::ECHO);
        let _ = tcsetattr(&stdin, OptionalActions::Now, &t);
    }
    let r = f();
    if let Some(old) = &old {
        let _ = tcsetattr(&stdin, OptionalActions::Now, old);
        eprintln!();
    }
    r
}

pub fn web_password() -> Result<(), Failure> {
    let password = if std::io::stdin().is_terminal() {
        let a = no_echo(|| read_line(Some("password: ")))?;
        let b = no_echo(|| read_line(Some("again: ")))?;
        if a != b {
            return Err(Failure(2, anyhow::anyhow!("the passwords differ")));
        }
        a
    } else {
        read_line(None)?
    };
    if password.is_empty() {
        return Err(Failure(2, anyhow::anyhow!("the password is empty")));
    }
    let line = meshmon_dashboard::web::hash_password(&password)
        .map_err(|e| Failure(1, anyhow::anyhow!(e)))?;
    println!("{line}");
    if std::io::stdout().is_terminal() {
        eprintln!(
            "put this line in a file (e.g. meshmon web-password > /etc/meshmon/web.pass) and set web.password_file"
        );
    }
    Ok(())
}
