//! `nexus invoke`: runs a function now through the HTTP trigger, or queues it (`--async`).

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use clap::Args;
use nexus_client::FunctionRequest;
use nexus_client::http::{HeaderName, HeaderValue, Method};

use super::output;
use super::session::{Access, ProjectArg, explain};

#[derive(Debug, Args)]
pub struct InvokeCommand {
    #[command(flatten)]
    access: Access,

    #[command(flatten)]
    project: ProjectArg,

    /// The function, optionally with an alias: `name` or `name@alias` (default `live`).
    function: String,

    /// The path and query the function sees.
    #[arg(default_value = "/")]
    path: String,

    /// The method (default GET, or POST with a body).
    #[arg(long, short = 'X')]
    method: Option<String>,

    /// The body: text, or `@file` for a file's bytes.
    #[arg(long, short = 'd')]
    data: Option<String>,

    /// A header, `name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,

    /// Queue the invocation and print its id instead of waiting for the answer.
    #[arg(long = "async")]
    queue: bool,

    /// With `--async`: the same key within 24 hours names the first invocation.
    #[arg(long)]
    idempotency_key: Option<String>,

    /// Print the status line and headers before the body.
    #[arg(long, short = 'i')]
    include: bool,

    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
}

impl InvokeCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let project = self.project.name()?.to_owned();
        let (function, alias) = match self.function.split_once('@') {
            Some((function, alias)) => (function, Some(alias)),
            None => (self.function.as_str(), None),
        };
        let body = match self.data.as_deref() {
            Some(file) if file.starts_with('@') => Bytes::from(
                std::fs::read(&file[1..]).with_context(|| format!("cannot read {}", &file[1..]))?,
            ),
            Some(text) => Bytes::from(text.to_owned()),
            None => Bytes::new(),
        };
        let method = match &self.method {
            Some(method) => Method::from_bytes(method.to_uppercase().as_bytes())
                .map_err(|_| anyhow!("{method} is not an HTTP method"))?,
            None if self.data.is_some() => Method::POST,
            None => Method::GET,
        };
        let path = if self.path.starts_with('/') {
            self.path.clone()
        } else {
            format!("/{}", self.path)
        };
        let mut request = FunctionRequest::new(method, path);
        request.body = body;
        request.idempotency_key = self.idempotency_key.clone();
        for header in &self.headers {
            let (name, value) = header
                .split_once(':')
                .ok_or_else(|| anyhow!("`{header}` is not `name: value`"))?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| anyhow!("`{name}` is not a header name"))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| anyhow!("the value of {name} is not a header value"))?;
            request.headers.append(name, value);
        }
        let client = self.access.anonymous()?;
        if self.queue {
            let accepted = client
                .invoke_async(&project, function, alias, request)
                .await
                .map_err(explain)?;
            return output::queued(&accepted, self.json);
        }
        let answer = client
            .invoke(&project, function, alias, request)
            .await
            .map_err(explain)?;
        output::answer(&answer, self.json, self.include)
    }
}
