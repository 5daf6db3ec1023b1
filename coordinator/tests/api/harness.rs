//! The coordinator's API under test: the embedded platform on port 0 over a real (SQLite)
//! store, with a real runtime behind the HTTP trigger.

use std::sync::Arc;

use http::{Request, StatusCode};
use http_body_util::Full;
use nexus::{Embedded, EmbeddedConfig, KvBackend};
use nexus_coordinator::api::REQUEST_ID;
use nexus_coordinator::functions::DeployLimits;
use nexus_store::Store;
use nexus_tests::postgres::FreshDatabase;
use nexus_tests::{HttpClient, TestResponse};
use serde_json::{Value, json};

pub struct Api {
    pub base: String,
    pub store: Arc<Store>,
    pub client: HttpClient,
    pub platform: Embedded,
    /// The PostgreSQL database, when the platform runs on one.
    pub database: Option<FreshDatabase>,
    _dir: tempfile::TempDir,
}

impl Api {
    pub async fn start() -> Self {
        Self::start_with(DeployLimits::default()).await
    }

    /// The embedded platform (the coordinator with a runtime in process, as `nexus up` and
    /// `nexus coordinator` run it) on a fresh SQLite database; deploys capped by `limits`.
    pub async fn start_with(limits: DeployLimits) -> Self {
        Self::start_on(limits, None).await
    }

    /// The same platform on a fresh PostgreSQL database (at SERIALIZABLE, as the store runs it).
    pub async fn start_on_postgres() -> Self {
        Self::start_on(DeployLimits::default(), Some(FreshDatabase::create().await)).await
    }

    /// As a cluster runs: a fresh PostgreSQL database, and key-value data in the real Redis
    /// (each project's keys are its own, so tests sharing the server do not meet).
    pub async fn start_on_postgres_and_redis() -> Self {
        Self::start_with_kv(
            DeployLimits::default(),
            Some(FreshDatabase::create().await),
            KvBackend::Redis(nexus_tests::redis_url()),
        )
        .await
    }

    /// The embedded platform with abuse limits `limits`.
    pub async fn start_with_rate_limits(
        limits: nexus_coordinator::limits::RateLimitConfig,
    ) -> Self {
        let mut config =
            |config: &mut EmbeddedConfig| config.coordinator.rate_limits = limits.clone();
        Self::start_configured(
            DeployLimits::default(),
            None,
            KvBackend::Memory,
            &mut config,
        )
        .await
    }

    /// The embedded platform unloading apps that idle for `idle` (scale to zero).
    pub async fn start_unloading_after(idle: std::time::Duration) -> Self {
        let mut config = |config: &mut EmbeddedConfig| config.unload_idle_after = Some(idle);
        Self::start_configured(
            DeployLimits::default(),
            None,
            KvBackend::Memory,
            &mut config,
        )
        .await
    }

    /// As a cluster's coordinator runs asynchronous invocations: a fresh PostgreSQL database,
    /// and invocations announced on a Redis Stream of this test's own, read by a consumer
    /// group.
    pub async fn start_with_redis_queue() -> Self {
        let mut config = |config: &mut EmbeddedConfig| {
            config.coordinator.invocation_queue = Some(nexus_tests::redis_url());
            config.coordinator.invocation_stream =
                Some(format!("nexus-test:invocations:{}", uuid::Uuid::new_v4()));
        };
        Self::start_configured(
            DeployLimits::default(),
            Some(FreshDatabase::create().await),
            KvBackend::Memory,
            &mut config,
        )
        .await
    }

    /// Another coordinator (with its runtime) on this one's PostgreSQL database, as a replica
    /// runs; its state directory is the second value.
    pub async fn replica(&self) -> (Embedded, tempfile::TempDir) {
        let database = self
            .database
            .as_ref()
            .expect("replicas share a PostgreSQL database");
        let dir = tempfile::tempdir().unwrap();
        let mut config = EmbeddedConfig::in_directory(dir.path());
        config.coordinator.database_url = database.url().to_owned();
        // Replicas sign with one key, so that any of them takes any one's tokens, and read
        // one blob store, so that any of them runs what another deployed.
        config.coordinator.signing_key_file = self._dir.path().join("signing-key");
        config.coordinator.state_dir = self._dir.path().to_owned();
        (Embedded::start(config).await.unwrap(), dir)
    }

    async fn start_on(limits: DeployLimits, database: Option<FreshDatabase>) -> Self {
        Self::start_with_kv(limits, database, KvBackend::Memory).await
    }

    async fn start_with_kv(
        limits: DeployLimits,
        database: Option<FreshDatabase>,
        kv: KvBackend,
    ) -> Self {
        Self::start_configured(limits, database, kv, &mut |_| {}).await
    }

    async fn start_configured(
        limits: DeployLimits,
        database: Option<FreshDatabase>,
        kv: KvBackend,
        configure: &mut dyn FnMut(&mut EmbeddedConfig),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = EmbeddedConfig::in_directory(dir.path());
        config.coordinator.deploy = limits;
        config.kv = kv;
        configure(&mut config);
        if let Some(database) = &database {
            config.coordinator.database_url = database.url().to_owned();
        }
        let platform = Embedded::start(config).await.unwrap();
        Self {
            base: platform.base_url(),
            store: Arc::clone(&platform.state().store),
            client: HttpClient::default(),
            platform,
            database,
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> TestResponse {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Full::from(body.to_string())
            }
            None => Full::default(),
        };
        self.client.send(request.body(body).unwrap()).await
    }

    /// Sends `body` as it is, with `content_type`.
    pub async fn send_bytes(
        &self,
        method: &str,
        path: &str,
        token: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> TestResponse {
        let request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", content_type)
            .body(Full::from(body))
            .unwrap();
        self.client.send(request).await
    }

    /// Where the coordinator keeps its state (component blobs under `blobs/`).
    pub fn state_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub async fn register(&self, email: &str, password: &str) -> TestResponse {
        self.call(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    pub async fn login(&self, email: &str, password: &str) -> TestResponse {
        self.call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    /// Registers `email` (password `correct horse`) and returns an access token for it.
    pub async fn user(&self, email: &str) -> String {
        let registered = self.register(email, "correct horse").await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{}",
            registered.text()
        );
        tokens(&self.login(email, "correct horse").await).0
    }

    pub async fn refresh(&self, refresh_token: &str) -> TestResponse {
        self.call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh_token})),
        )
        .await
    }
}

/// Asserts the one error shape and that its request id is the response header's.
pub fn assert_error(response: &TestResponse, status: StatusCode, code: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    let body = response.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    let header = response.headers[REQUEST_ID].to_str().unwrap();
    assert_eq!(body["error"]["request_id"], header);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

pub fn tokens(response: &TestResponse) -> (String, String, String) {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let body = response.json();
    assert_eq!(body["token_type"], "Bearer");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
        body["session_id"].as_str().unwrap().to_owned(),
    )
}

/// The bytes of the guest component `name` built from `functions/`.
pub fn component(name: &str) -> Vec<u8> {
    std::fs::read(nexus_tests::component_path(name)).unwrap()
}
