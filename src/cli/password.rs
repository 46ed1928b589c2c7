//! Where credentials come from: a key file (`--key-file`/`SNAP_KEY_FILE`), or a password from
//! `--password-file`/`SNAP_PASSWORD_FILE`, `--password-command`, `SNAP_PASSWORD`, or an
//! interactive prompt without echo (twice for a new password).

use std::io::IsTerminal;
use std::process::Command;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::{Context, Result, bail};
use snap::crypto::keyfile::Credential;
use zeroize::Zeroizing;

#[derive(Debug, Clone, Default)]
pub struct PasswordSource {
    pub file: Option<std::path::PathBuf>,
    pub command: Option<String>,
    pub key_file: Option<std::path::PathBuf>,
}

/// Reads a key file.
pub fn read_key_file(path: &Path) -> Result<Credential> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path).with_context(|| format!("cannot read key file {}", path.display()))?,
    );
    Credential::from_key_file_text(&text).with_context(|| format!("key file {}", path.display()))
}

/// Reads a key file, or creates it (mode 0600) with a new random secret if it does not exist.
pub fn read_or_create_key_file(path: &Path) -> Result<(Credential, bool)> {
    if path.exists() {
        return Ok((read_key_file(path)?, false));
    }
    let text = Credential::generate_key_file_text()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create key file {}", path.display()))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write key file {}", path.display()))?;
    Ok((Credential::from_key_file_text(&text)?, true))
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

    /// What opens an existing repository: the key file if one is given, else the password.
    pub fn existing(&self) -> Result<Credential> {
        if let Some(path) = &self.key_file {
            return read_key_file(path);
        }
        if let Some(p) = self.configured()? {
            return Ok(Credential::Password(p));
        }
        Ok(Credential::Password(prompt("Password: ")?))
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
            PasswordSource { file: Some(path.to_path_buf()), ..Default::default() }.configured()?.unwrap_or_default()
        }
        None => prompt_twice(what)?,
    };
    if p.is_empty() {
        bail!("the password is empty");
    }
    Ok(p)
}
