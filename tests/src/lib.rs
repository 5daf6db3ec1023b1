//! Test harness: the platform in-process on port 0, the guest functions built from
//! `functions/`, a real HTTP client, and the real Redis on this machine.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test harness reports failures by panicking"
)]

pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use nexus::{KvBackend, Platform, PlatformConfig};
use nexus_edge::IngressConfig;
use nexus_runtime::Limits;

/// The `functions/` workspace, built by this crate's build script.
pub const FUNCTIONS_DIR: &str = env!("NEXUS_FUNCTIONS_DIR");

/// The Spin app with every example function and fixture.
pub fn examples_manifest() -> PathBuf {
    PathBuf::from(FUNCTIONS_DIR).join("spin.toml")
}

/// The built component `name` (for example `bad-import`).
pub fn component_path(name: &str) -> PathBuf {
    PathBuf::from(FUNCTIONS_DIR)
        .join("target/wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")))
}

/// A manifest running `counter` (at `counter.wasm` in the upload) at every path, with the
/// `default` store: each request it runs adds one to the count it answers.
pub const COUNTER_APP: &str = r#"spin_manifest_version = 2

[application]
name = "counter-app"

[[trigger.http]]
route = "/..."
component = "counter"

[component.counter]
source = "counter.wasm"
key_value_stores = ["default"]
"#;

/// A tar holding `manifest` as `spin.toml` and, for each `(path, component name)`, the built
/// component at that path: an app upload for the deploy API.
pub fn app_tar(manifest: &str, components: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut append = |path: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder
            .append_data(&mut header, path, bytes)
            .unwrap_or_else(|error| panic!("cannot add {path} to the tar: {error}"));
    };
    append("spin.toml", manifest.as_bytes());
    for (path, name) in components {
        let component = component_path(name);
        let bytes = std::fs::read(&component)
            .unwrap_or_else(|error| panic!("cannot read {}: {error}", component.display()));
        append(path, &bytes);
    }
    builder
        .into_inner()
        .unwrap_or_else(|error| panic!("cannot finish the tar: {error}"))
}

/// The Redis the tests use: `REDIS_URL`, default `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A TCP server on `ip`, port 0, that answers whatever it reads (until the client shuts its
/// side down) with `pong`; its address.
pub async fn tcp_pong_server(ip: &str) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let _ = stream.read_to_end(&mut request).await;
                let _ = stream.write_all(b"pong").await;
            });
        }
    });
    address
}

/// Waits until `condition` holds, checking every millisecond, for at most ten seconds.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let give_up = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < give_up, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A platform under test and a client pointed at it.
pub struct TestPlatform {
    platform: Platform,
    client: HttpClient,
    _state: tempfile::TempDir,
}

/// A real HTTP/1.1 client, keeping connections alive between requests.
#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(5))
            .build(connector);
        Self { client }
    }
}

impl HttpClient {
    /// `GET url`.
    pub async fn get(&self, url: &str) -> TestResponse {
        self.send(Request::get(url).body(Full::default()).unwrap())
            .await
    }

    /// Sends `request` and reads the whole response.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> TestResponse {
        self.try_send(request)
            .await
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// [`HttpClient::send`], with a failure to connect or to read the answer as an error: for
    /// servers a test kills.
    pub async fn try_send(&self, request: Request<Full<Bytes>>) -> Result<TestResponse, String> {
        let response = self
            .client
            .request(request)
            .await
            .map_err(|error| format!("request failed: {error}"))?;
        let (parts, body) = response.into_parts();
        let body = body
            .collect()
            .await
            .map_err(|error| format!("reading the body failed: {error}"))?
            .to_bytes();
        Ok(TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

/// What a request returned.
#[derive(Debug)]
pub struct TestResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl TestResponse {
    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", self.text()))
    }
}

/// Builds a [`TestPlatform`].
pub struct TestPlatformBuilder {
    manifest: PathBuf,
    kv: Option<KvBackend>,
    limits: Limits,
    environment: Vec<(String, String)>,
    vault: Option<Arc<nexus_secrets::SecretStore>>,
    state: Option<tempfile::TempDir>,
}

impl TestPlatform {
    /// A builder serving the example app with default limits and an in-memory key-value store.
    pub fn builder() -> TestPlatformBuilder {
        TestPlatformBuilder {
            manifest: examples_manifest(),
            kv: None,
            limits: Limits::default(),
            environment: Vec::new(),
            vault: None,
            state: None,
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.platform.local_addr())
    }

    /// The platform itself.
    pub fn platform(&self) -> &Platform {
        &self.platform
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.client.get(&self.url(path)).await
    }

    /// Sends `request` and reads the whole response.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> TestResponse {
        self.client.send(request).await
    }

    /// Stops the platform gracefully and returns its state directory, so a test can start
    /// another platform on the same state.
    pub async fn shutdown(self) -> tempfile::TempDir {
        self.platform.shutdown().await.expect("shutdown failed");
        self._state
    }
}

impl TestPlatformBuilder {
    /// Serves another manifest.
    pub fn manifest(mut self, manifest: PathBuf) -> Self {
        self.manifest = manifest;
        self
    }

    /// Uses a key-value backend other than memory.
    pub fn kv(mut self, kv: KvBackend) -> Self {
        self.kv = Some(kv);
        self
    }

    /// Uses SQLite key-value in the platform's state directory.
    pub fn sqlite_kv(self) -> Self {
        self.kv(KvBackend::Sqlite(PathBuf::from("key-value.db")))
    }

    /// Reuses a state directory from an earlier platform.
    pub fn state(mut self, state: tempfile::TempDir) -> Self {
        self.state = Some(state);
        self
    }

    /// Changes the limits.
    pub fn limits(mut self, change: impl FnOnce(&mut Limits)) -> Self {
        change(&mut self.limits);
        self
    }

    /// Sets an environment variable the platform reads (for example `SPIN_VARIABLE_*`).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.environment.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Reads secret variables the environment does not have from `vault`.
    pub fn vault(mut self, vault: Arc<nexus_secrets::SecretStore>) -> Self {
        self.vault = Some(vault);
        self
    }

    /// Starts the platform on a free port.
    pub async fn start(self) -> TestPlatform {
        self.try_start().await.expect("platform failed to start")
    }

    /// Starts the platform, returning the error instead of panicking.
    pub async fn try_start(self) -> anyhow::Result<TestPlatform> {
        let state = match self.state {
            Some(state) => state,
            None => tempfile::tempdir()?,
        };
        let kv = match self.kv {
            Some(KvBackend::Sqlite(file)) => KvBackend::Sqlite(state.path().join(file)),
            Some(other) => other,
            None => KvBackend::Memory,
        };
        let config = PlatformConfig {
            manifest: self.manifest,
            listen: "127.0.0.1:0".parse()?,
            kv,
            limits: self.limits,
            // Shared by every test process: each component is compiled once per build.
            compile_cache: Some(std::env::temp_dir().join("nexus-tests-compile-cache")),
            ingress: IngressConfig::default(),
            environment: self.environment,
            vault: self.vault,
            state_dir: Some(state.path().to_owned()),
        };
        let platform = Platform::start(config).await?;
        Ok(TestPlatform {
            platform,
            client: HttpClient::default(),
            _state: state,
        })
    }
}

/// A Redis server of the test's own on a Unix socket, keeping nothing on disk: killing it and
/// starting it again is what a restart of the cluster's Redis does to the cache.
pub struct PrivateRedis {
    socket: PathBuf,
    child: Child,
}

impl PrivateRedis {
    /// Starts `redis-server` listening on `socket` only.
    pub fn start(socket: &Path) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--unixsocket",
            ])
            .arg(socket)
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start redis-server: {error}"));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not open its socket"
            );
            std::thread::yield_now();
        }
        Self {
            socket: socket.to_owned(),
            child,
        }
    }

    /// `redis+unix://<socket>`.
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket.display())
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::fs::remove_file(&self.socket).ok();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
