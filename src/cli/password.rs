//! Where passwords come from: `--password-file`/`SNAP_PASSWORD_FILE`, `--password-command`,
//! `SNAP_PASSWORD`, or an interactive prompt without echo (twice for a new password).

use std::io::IsTerminal;
use std::process::Command;

use anyhow::{Context, Result, bail};
use zeroize::Zeroizing;

#[derive(Debug, Clone, Default)]
pub struct PasswordSource {
    pub file: Option<std::path::PathBuf>,
    pub command: Option<String>,
}

fn trim_newline(mut s: String) -> Zeroizing<String> {
    while s.ends_with('\n') || s.ends_with('\r') {
        s.pop();
    }
    Zeroizing::new(s)
}

impl PasswordSource {
    /// The password from a non-interactive source, if one is configured.
    fn configured(&self) -> Result<Option<Zeroizing<String>>> {
        if let Some(path) = &self.file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read password file {}", path.display()))?;
            return Ok(Some(trim_newline(text)));
        }
        if let Some(cmd) = &self.command {
            let out = Command::new("sh")
                .arg("-c")
                .arg(cmd)
                .output()
                .with_context(|| format!("cannot run password command {cmd:?}"))?;
            if !out.status.success() {
                bail!("password command {cmd:?} failed with {}", out.status);
            }
            return Ok(Some(trim_newline(
                String::from_utf8(out.stdout).context("password command printed invalid UTF-8")?,
            )));
        }
        if let Ok(p) = std::env::var("SNAP_PASSWORD") {
            return Ok(Some(Zeroizing::new(p)));
        }
        Ok(None)
    }

    /// The password of an existing repository.
    pub fn existing(&self) -> Result<Zeroizing<String>> {
        if let Some(p) = self.configured()? {
            return Ok(p);
        }
        prompt("Password: ")
    }

    /// A new password: from the configured source, or asked twice.
    pub fn new_password(&self, what: &str) -> Result<Zeroizing<String>> {
        let p = match self.configured()? {
            Some(p) => p,
            None => prompt_twice(what)?,
        };
        if p.is_empty() {
            bail!("the password is empty");
        }
        Ok(p)
    }
}

fn prompt_twice(what: &str) -> Result<Zeroizing<String>> {
    let first = prompt(&format!("{what}: "))?;
    let second = prompt(&format!("{what} again: "))?;
    if *first != *second {
        bail!("the passwords do not match");
    }
    Ok(first)
}

/// Asks on the terminal; refuses when there is none to ask on.
pub fn prompt(label: &str) -> Result<Zeroizing<String>> {
    if !std::io::stdin().is_terminal() {
        bail!(
            "no password given: set SNAP_PASSWORD, --password-file or --password-command (there is no terminal to ask on)"
        );
    }
    Ok(Zeroizing::new(rpassword::prompt_password(label).context("cannot read the password")?))
}

/// A new password for a key slot: from its own file, or asked twice (never from the sources
/// that opened the repository, which hold the current password).
pub fn new_from(file: Option<&std::path::Path>, what: &str) -> Result<Zeroizing<String>> {
    let p = match file {
        Some(path) => {
            PasswordSource { file: Some(path.to_path_buf()), command: None }.configured()?.unwrap_or_default()
        }
        None => prompt_twice(what)?,
    };
    if p.is_empty() {
        bail!("the password is empty");
    }
    Ok(p)
}
