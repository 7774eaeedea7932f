//! Profiles: one device's state each, so one machine can act as several devices.
//!
//! `<config>/profiles/<name>/session.json` names the server, account and device;
//! `<config>/profiles/<name>/token` holds the session token (mode 0600, written atomically);
//! `<data>/profiles/<name>/replica.sqlite3` is the local replica with its outbox. `<config>` and
//! `<data>` come from the `directories` crate, so `XDG_CONFIG_HOME`/`XDG_DATA_HOME` apply.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use shelf_client::{Client, Http, Replica};
use uuid::Uuid;

/// Who this profile is signed in as.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub server: String,
    pub email: String,
    pub user_id: Uuid,
    pub device_id: Uuid,
    pub device_name: String,
}

pub struct Profile {
    pub name: String,
    config_dir: PathBuf,
    data_dir: PathBuf,
}

impl Profile {
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let valid = !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        anyhow::ensure!(valid, "invalid profile name {name:?}: use letters, digits, - and _");
        let dirs = directories::ProjectDirs::from("", "", "shelf")
            .context("cannot find a home folder for Shelf's state (set HOME or XDG_CONFIG_HOME)")?;
        Ok(Self {
            name: name.to_owned(),
            config_dir: dirs.config_dir().join("profiles").join(name),
            data_dir: dirs.data_dir().join("profiles").join(name),
        })
    }

    fn session_path(&self) -> PathBuf {
        self.config_dir.join("session.json")
    }

    fn token_path(&self) -> PathBuf {
        self.config_dir.join("token")
    }

    pub fn replica_path(&self) -> PathBuf {
        self.data_dir.join("replica.sqlite3")
    }

    pub fn session(&self) -> anyhow::Result<Option<Session>> {
        match std::fs::read_to_string(self.session_path()) {
            Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("{} is damaged", self.session_path().display()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.session_path().display())),
        }
    }

    /// The session or the error every command that needs one shows.
    pub fn require_session(&self) -> anyhow::Result<Session> {
        self.session()?.ok_or_else(|| anyhow::anyhow!("profile {:?} is not signed in; run shelf login --server URL --email E", self.name))
    }

    pub fn token(&self) -> anyhow::Result<Option<String>> {
        match std::fs::read_to_string(self.token_path()) {
            Ok(token) => Ok(Some(token.trim().to_owned()).filter(|t| !t.is_empty())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", self.token_path().display())),
        }
    }

    pub fn save(&self, session: &Session, token: &str) -> anyhow::Result<()> {
        create_private_dir(&self.config_dir)?;
        write_private(&self.session_path(), serde_json::to_string_pretty(session)?.as_bytes())?;
        write_private(&self.token_path(), token.as_bytes())
    }

    pub fn forget_token(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(self.token_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e).context("cannot remove the token file"),
            _ => Ok(()),
        }
    }

    pub fn open_replica(&self) -> anyhow::Result<Replica> {
        create_private_dir(&self.data_dir)?;
        Replica::open(&self.replica_path()).with_context(|| format!("cannot open the replica {}", self.replica_path().display()))
    }

    /// The signed-in client of this profile (the token may be missing after `logout`).
    pub fn client(&self) -> anyhow::Result<(Session, Client)> {
        let session = self.require_session()?;
        let http = Http::new(&session.server, self.token()?)?;
        Ok((session, Client::new(self.open_replica()?, http)))
    }
}

fn create_private_dir(path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

/// Writes a file only the user can read (0600), atomically: a crash leaves the old or the new one.
fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let temporary = path.with_extension("tmp");
    // A leftover from a crashed write may have other permissions; `mode` applies only on create.
    if let Err(e) = std::fs::remove_file(&temporary) {
        anyhow::ensure!(e.kind() == std::io::ErrorKind::NotFound, "cannot replace {}: {e}", temporary.display());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&temporary).with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}
