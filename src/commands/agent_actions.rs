//! `nexus send` and `nexus context`: a message to an agent (run now, or queued), and the
//! agent's key-value stores read and written through the coordinator's API.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use clap::{Args, Subcommand};
use nexus_client::{AgentMessage, PutCondition, PutOptions};

use super::output;
use super::session::{Access, ProjectArg, explain};

#[derive(Debug, Args)]
pub struct AgentSendCommand {
    #[command(flatten)]
    access: Access,

    #[command(flatten)]
    project: ProjectArg,

    /// The agent's id (see `nexus agents`).
    agent: String,

    /// The message: text, or `@file` for a file's bytes; the function sees it as the body of a
    /// POST.
    #[arg(long, short = 'd')]
    data: Option<String>,

    /// The message's content type (default text/plain for text, application/octet-stream for
    /// a file).
    #[arg(long)]
    content_type: Option<String>,

    /// The path and query the function sees (default `/`).
    #[arg(long)]
    path: Option<String>,

    /// Queue the message and print the invocation's id instead of waiting for the answer; it
    /// runs with the function's retries (follow it with `nexus invocations get`).
    #[arg(long = "async")]
    queue: bool,

    /// With `--async`: the same key within 24 hours names the first invocation.
    #[arg(long, requires = "queue")]
    idempotency_key: Option<String>,

    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

impl AgentSendCommand {
    /// Sends the message and prints the function's answer, or the queued invocation.
    pub async fn run(self) -> anyhow::Result<()> {
        let project = self.project.name()?.to_owned();
        let (body, default_type) = match self.data.as_deref() {
            Some(file) if file.starts_with('@') => (
                Bytes::from(
                    std::fs::read(&file[1..])
                        .with_context(|| format!("cannot read {}", &file[1..]))?,
                ),
                Some("application/octet-stream"),
            ),
            Some(text) => (
                Bytes::from(text.to_owned()),
                Some("text/plain; charset=utf-8"),
            ),
            None => (Bytes::new(), None),
        };
        let message = AgentMessage {
            path: self.path.clone(),
            content_type: self
                .content_type
                .clone()
                .or_else(|| default_type.map(str::to_owned)),
            body,
            idempotency_key: self.idempotency_key.clone(),
        };
        let client = self.access.client().await?;
        if self.queue {
            let accepted = client
                .send_message_async(&project, &self.agent, message)
                .await
                .map_err(explain)?;
            return output::queued(&accepted, self.json);
        }
        let answer = client
            .send_message(&project, &self.agent, message)
            .await
            .map_err(explain)?;
        output::answer(&answer, self.json, false)
    }
}

#[derive(Debug, Args)]
pub struct ContextCommand {
    #[command(flatten)]
    access: Access,

    #[command(flatten)]
    project: ProjectArg,

    /// The agent's id (see `nexus agents`).
    agent: String,

    /// The agent's store: the label its function opens (default `default`, Spin's default
    /// store).
    #[arg(long, global = true, value_name = "LABEL")]
    store: Option<String>,

    /// Print JSON (with a value's etag and time to live) instead of text.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    action: Option<ContextAction>,
}

#[derive(Debug, Subcommand)]
enum ContextAction {
    /// The store's keys, sorted (the default).
    List,
    /// Print the value of a key as it is (`--json` adds its etag and time to live); fails
    /// when the key has none.
    Get {
        /// The key.
        key: String,
    },
    /// Write the value of a key (up to 1 MiB).
    Put {
        /// The key.
        key: String,
        /// The value: text, or `@file` for a file's bytes.
        value: String,
        /// Forget the value this many seconds from now (not with a condition).
        #[arg(long, value_name = "SECS", conflicts_with_all = ["if_match", "if_absent"])]
        ttl: Option<u64>,
        /// Write only over the value with this etag (from `get --json`, or an earlier `put`):
        /// a compare-and-swap.
        #[arg(long, value_name = "ETAG", conflicts_with = "if_absent")]
        if_match: Option<String>,
        /// Write only if the key has no value.
        #[arg(long)]
        if_absent: bool,
    },
    /// Delete a key and its value.
    Delete {
        /// The key.
        key: String,
    },
}

impl ContextCommand {
    /// Carries out the action.
    pub async fn run(self) -> anyhow::Result<()> {
        let project = self.project.name()?.to_owned();
        let client = self.access.client().await?;
        let agent = self.agent.as_str();
        let store = self.store.as_deref();
        let label = store.unwrap_or("default");
        match self.action.unwrap_or(ContextAction::List) {
            ContextAction::List => {
                let keys = client
                    .list_context_keys(&project, agent, store)
                    .await
                    .map_err(explain)?;
                if self.json {
                    return output::json(&serde_json::json!({ "keys": keys }));
                }
                for key in keys {
                    println!("{key}");
                }
            }
            ContextAction::Get { key } => {
                let value = client
                    .get_context(&project, agent, &key, store)
                    .await
                    .map_err(explain)?
                    .ok_or_else(|| {
                        anyhow!(
                            "{key} has no value in the {label} store of agent {agent}\n  hint: list the keys with `nexus context {agent}`"
                        )
                    })?;
                if self.json {
                    return output::json(&serde_json::json!({
                        "key": key,
                        "value": String::from_utf8_lossy(&value.value),
                        "etag": value.etag,
                        "expires_in_ms": value
                            .expires_in
                            .map(|left| u64::try_from(left.as_millis()).unwrap_or(u64::MAX)),
                    }));
                }
                output::raw(&value.value)?;
            }
            ContextAction::Put {
                key,
                value,
                ttl,
                if_match,
                if_absent,
            } => {
                let value = match value.strip_prefix('@') {
                    Some(file) => Bytes::from(
                        std::fs::read(file).with_context(|| format!("cannot read {file}"))?,
                    ),
                    None => Bytes::from(value),
                };
                let condition = match (if_match, if_absent) {
                    (Some(etag), _) => PutCondition::IfMatch(etag),
                    (None, true) => PutCondition::IfAbsent,
                    (None, false) => PutCondition::Always,
                };
                let options = PutOptions {
                    store: self.store.clone(),
                    ttl: ttl.map(Duration::from_secs),
                    condition,
                };
                let etag = client
                    .put_context(&project, agent, &key, value, &options)
                    .await
                    .map_err(explain)?;
                if self.json {
                    return output::json(&serde_json::json!({ "key": key, "etag": etag }));
                }
                println!("Stored {key} in the {label} store of agent {agent} (etag {etag})");
            }
            ContextAction::Delete { key } => {
                let deleted = client
                    .delete_context(&project, agent, &key, store)
                    .await
                    .map_err(explain)?;
                if self.json {
                    return output::json(&serde_json::json!({ "key": key, "deleted": deleted }));
                }
                if deleted {
                    println!("Deleted {key} from the {label} store of agent {agent}");
                } else {
                    println!("{key} had no value in the {label} store of agent {agent}");
                }
            }
        }
        Ok(())
    }
}
