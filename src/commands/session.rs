//! Whom the commands call, and as whom: the coordinator's URL, and a token: `--token` or
//! `NEXUS_TOKEN` when given, else the login `nexus login` kept for that coordinator in
//! `credentials.json` (owner-only) under the config directory, refreshed once it has expired.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, anyhow};
use nexus_client::{Client, ClientError, Tokens};
use serde::{Deserialize, Serialize};

/// Where the coordinator is.
#[derive(Debug, Clone, clap::Args)]
pub struct CoordinatorUrl {
    /// The coordinator's URL.
    #[arg(
        id = "coordinator",
        long = "coordinator",
        value_name = "URL",
        env = "NEXUS_COORDINATOR",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
}

/// Where the coordinator is and how to call it, as every command that calls it takes them.
#[derive(Debug, Clone, clap::Args)]
pub struct Access {
    #[command(flatten)]
    coordinator: CoordinatorUrl,

    /// An access token or API key (`nexus up` prints one); without it, the login `nexus login`
    /// kept for this coordinator.
    #[arg(long, env = "NEXUS_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

/// The project a command acts on.
#[derive(Debug, Clone, clap::Args)]
pub struct ProjectArg {
    /// The project.
    #[arg(long, short, env = "NEXUS_PROJECT", global = true)]
    pub project: Option<String>,
}

impl ProjectArg {
    /// The project, or an error saying how to name one.
    pub fn name(&self) -> anyhow::Result<&str> {
        self.project.as_deref().ok_or_else(|| {
            anyhow!("no project: pass --project or set NEXUS_PROJECT\n  hint: list yours with `nexus projects`")
        })
    }
}

/// A login kept for one coordinator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Login {
    /// Who logged in.
    pub email: String,
    pub access_token: String,
    pub refresh_token: String,
    /// When the access token expires, in seconds since the Unix epoch.
    pub expires_at: u64,
}

impl Login {
    /// The login `tokens` give `email` now.
    pub fn of(email: &str, tokens: &Tokens) -> Self {
        Self {
            email: email.to_owned(),
            access_token: tokens.access_token.clone(),
            refresh_token: tokens.refresh_token.clone(),
            expires_at: now().saturating_add(tokens.expires_in),
        }
    }
}

/// The logins kept, by coordinator URL.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Credentials {
    #[serde(flatten)]
    logins: BTreeMap<String, Login>,
}

impl Credentials {
    /// `NEXUS_CONFIG_DIR`, else `$XDG_CONFIG_HOME/nexus`, else `~/.config/nexus`.
    fn path() -> anyhow::Result<PathBuf> {
        let dir = match (
            std::env::var_os("NEXUS_CONFIG_DIR"),
            std::env::var_os("XDG_CONFIG_HOME"),
            std::env::var_os("HOME"),
        ) {
            (Some(dir), _, _) => PathBuf::from(dir),
            (None, Some(config), _) => PathBuf::from(config).join("nexus"),
            (None, None, Some(home)) => PathBuf::from(home).join(".config/nexus"),
            (None, None, None) => {
                return Err(anyhow!("no config directory: set NEXUS_CONFIG_DIR or HOME"));
            }
        };
        Ok(dir.join("credentials.json"))
    }

    /// The logins kept (none when there is no file yet).
    pub fn load() -> anyhow::Result<Self> {
        let path = Self::path()?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .with_context(|| format!("{} is not a credentials file", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Keeps the logins, readable by their owner only; replaces the file whole.
    pub fn save(&self) -> anyhow::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = Self::path()?;
        let dir = path
            .parent()
            .context("the credentials file has no directory")?;
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let partial = path.with_extension("json.partial");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .with_context(|| format!("cannot write {}", partial.display()))?;
        file.write_all(&serde_json::to_vec_pretty(self)?)?;
        file.sync_all()?;
        std::fs::rename(&partial, &path).with_context(|| format!("cannot write {}", path.display()))
    }

    pub fn get(&self, coordinator: &str) -> Option<&Login> {
        self.logins.get(&key(coordinator))
    }

    pub fn insert(&mut self, coordinator: &str, login: Login) {
        self.logins.insert(key(coordinator), login);
    }

    pub fn remove(&mut self, coordinator: &str) -> Option<Login> {
        self.logins.remove(&key(coordinator))
    }
}

fn key(coordinator: &str) -> String {
    coordinator.trim_end_matches('/').to_owned()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

impl Access {
    /// The coordinator's URL.
    pub fn url(&self) -> &str {
        &self.coordinator.url
    }

    /// A client of the coordinator without credentials.
    pub fn anonymous(&self) -> anyhow::Result<Client> {
        Client::new(self.url()).map_err(explain)
    }

    /// A client calling with `--token`, or with the login kept for this coordinator (refreshed
    /// first when it has expired, or is about to).
    pub async fn client(&self) -> anyhow::Result<Client> {
        let client = self.anonymous()?;
        if let Some(token) = &self.token {
            return Ok(client.with_token(token));
        }
        let mut credentials = Credentials::load()?;
        let url = self.url();
        let login = credentials.get(url).cloned().ok_or_else(|| {
            anyhow!(
                "not logged in to {url}\n  hint: nexus login --coordinator {url} (or pass --token)"
            )
        })?;
        if login.expires_at > now() + 30 {
            return Ok(client.with_token(login.access_token));
        }
        let tokens = client
            .refresh(&login.refresh_token)
            .await
            .map_err(|error| {
                anyhow!("{error}\n  hint: the login has ended: nexus login --coordinator {url}")
            })?;
        let renewed = Login::of(&login.email, &tokens);
        let token = renewed.access_token.clone();
        credentials.insert(url, renewed);
        credentials.save()?;
        Ok(client.with_token(token))
    }
}

/// `error` with the client's hint for it on a line of its own.
pub fn explain(error: ClientError) -> anyhow::Error {
    match error.hint() {
        Some(hint) => anyhow!("{error}\n  hint: {hint}"),
        None => anyhow!(error),
    }
}
