//! [`FakeVault`]: a local server that speaks the parts of Vault's HTTP API this crate uses
//! (KV v2 reads, AppRole login), counts what it is asked, and can hold its answers or stop,
//! for tests of this crate and of its users.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

#[derive(Default)]
struct FakeState {
    /// KV v2 `data` maps by `<mount>/<path>`.
    secrets: Mutex<HashMap<String, Value>>,
    tokens: Mutex<HashSet<String>>,
    approle: Mutex<Option<(String, String)>>,
    lease_secs: AtomicU64,
    reads: AtomicUsize,
    logins: AtomicUsize,
    namespaces: Mutex<Vec<String>>,
    /// `true` while reads are held before they are answered.
    held: watch::Sender<bool>,
    /// Reads received so far (answered or held).
    received: watch::Sender<usize>,
}

/// A fake Vault on `127.0.0.1`, port 0.
pub struct FakeVault {
    addr: SocketAddr,
    state: Arc<FakeState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

type Answer = (StatusCode, Json<Value>);

fn errors(status: StatusCode, message: &str) -> Answer {
    (status, Json(json!({ "errors": [message] })))
}

async fn read(
    State(state): State<Arc<FakeState>>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Answer {
    state.reads.fetch_add(1, Ordering::SeqCst);
    state.received.send_modify(|received| *received += 1);
    let mut held = state.held.subscribe();
    let _ = held.wait_for(|held| !*held).await;
    if let Some(namespace) = headers
        .get("x-vault-namespace")
        .and_then(|v| v.to_str().ok())
    {
        lock(&state.namespaces).push(namespace.to_owned());
    }
    let token = headers
        .get("x-vault-token")
        .and_then(|token| token.to_str().ok())
        .unwrap_or_default();
    if !lock(&state.tokens).contains(token) {
        return errors(StatusCode::FORBIDDEN, "permission denied");
    }
    let Some((mount, secret)) = path.split_once("/data/") else {
        return errors(StatusCode::NOT_FOUND, "no handler for route");
    };
    match lock(&state.secrets).get(&format!("{mount}/{secret}")) {
        Some(data) => (
            StatusCode::OK,
            Json(json!({ "data": { "data": data, "metadata": { "version": 1 } } })),
        ),
        None => (StatusCode::NOT_FOUND, Json(json!({ "errors": [] }))),
    }
}

async fn login(State(state): State<Arc<FakeState>>, Json(body): Json<Value>) -> Answer {
    let expected = lock(&state.approle).clone();
    let given = (
        body["role_id"].as_str().unwrap_or_default().to_owned(),
        body["secret_id"].as_str().unwrap_or_default().to_owned(),
    );
    if expected.as_ref() != Some(&given) {
        return errors(StatusCode::BAD_REQUEST, "invalid role or secret ID");
    }
    let count = state.logins.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("s.approle-{count}");
    lock(&state.tokens).insert(token.clone());
    (
        StatusCode::OK,
        Json(json!({ "auth": {
            "client_token": token,
            "lease_duration": state.lease_secs.load(Ordering::SeqCst),
            "renewable": true,
        } })),
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeVault {
    /// Starts a fake Vault that accepts `root_token`.
    pub async fn start(root_token: &str) -> std::io::Result<Self> {
        let state = Arc::new(FakeState::default());
        lock(&state.tokens).insert(root_token.to_owned());
        let app = axum::Router::new()
            .route("/v1/auth/approle/login", post(login))
            .route("/v1/{*path}", get(read))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stores `value` as the `value` key of the secret at `path` under `mount` (a new
    /// version: what a rotation does).
    pub fn put(&self, mount: &str, path: &str, value: &str) {
        lock(&self.state.secrets).insert(format!("{mount}/{path}"), json!({ "value": value }));
    }

    /// Accepts AppRole logins with these credentials, issuing tokens with a lease of
    /// `lease_secs`.
    pub fn enable_approle(&self, role_id: &str, secret_id: &str, lease_secs: u64) {
        *lock(&self.state.approle) = Some((role_id.to_owned(), secret_id.to_owned()));
        self.state.lease_secs.store(lease_secs, Ordering::SeqCst);
    }

    /// Revokes every token, the root one included.
    pub fn revoke_tokens(&self) {
        lock(&self.state.tokens).clear();
    }

    /// KV reads received.
    pub fn reads(&self) -> usize {
        self.state.reads.load(Ordering::SeqCst)
    }

    /// Successful AppRole logins.
    pub fn logins(&self) -> usize {
        self.state.logins.load(Ordering::SeqCst)
    }

    /// The `X-Vault-Namespace` of every read that had one.
    pub fn namespaces(&self) -> Vec<String> {
        lock(&self.state.namespaces).clone()
    }

    /// Holds every read until [`FakeVault::release`].
    pub fn hold(&self) {
        self.state.held.send_replace(true);
    }

    /// Answers the held reads, and later ones at once.
    pub fn release(&self) {
        self.state.held.send_replace(false);
    }

    /// Waits until `count` reads have been received.
    pub async fn wait_for_reads(&self, count: usize) {
        let mut received = self.state.received.subscribe();
        let _ = received.wait_for(|received| *received >= count).await;
    }

    /// Stops serving (open connections are closed): Vault is down from now on.
    pub async fn stop(&mut self) {
        self.release();
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}
