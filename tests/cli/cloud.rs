//! The runtime as a cloud function, as real processes: `nexus-edge lambda` under the
//! `cargo-lambda` emulator of the Lambda service, invoked by the coordinator's [`LambdaTarget`]
//! (the AWS SDK) synchronously and as an `Event`, and reached through the emulator's function
//! URL; `nexus-edge azure` spoken to as the Azure Functions host speaks to a custom handler.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test reports failures by panicking"
)]

#[path = "cluster/processes.rs"]
#[allow(dead_code, reason = "the cluster tests use the rest")]
mod processes;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use http_body_util::Full;
use nexus::bundle::{BundleOptions, BundleTarget, write_bundle};
use nexus_coordinator::cloud::{CloudError, Credentials, LambdaConfig, LambdaTarget};
use nexus_proto::cloud::{CloudInvoke, CloudResponse, PROTOCOL, decode_body};
use nexus_tests::postgres::FreshDatabase;
use nexus_tests::{COUNTER_APP, HttpClient, app_tar, component_path, examples_manifest, redis_url};
use tokio::process::{Child, Command};

use processes::{Coordinator, Edge, STARTUP, announced_address, edge_binary};

/// The function name the emulator gives a runtime started on its own.
const EMULATED_FUNCTION: &str = "_";

/// The example functions as a bundle for `target`, for tenant `namespace`.
fn bundle(target: BundleTarget, namespace: &str) -> (tempfile::TempDir, PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("bundle");
    let written = write_bundle(
        &examples_manifest(),
        &out,
        &BundleOptions {
            target,
            deployment: None,
            namespace: Some(namespace.to_owned()),
            edge_binary: None,
        },
    )
    .unwrap();
    (dir, out, written.deployment)
}

fn invocation(deployment: &str, namespace: &str, uri: &str, agent: Option<&str>) -> CloudInvoke {
    CloudInvoke {
        protocol: PROTOCOL,
        deployment: deployment.to_owned(),
        namespace: namespace.to_owned(),
        method: "GET".to_owned(),
        uri: uri.to_owned(),
        prefix: String::new(),
        headers: vec![("host".to_owned(), "fn.example".to_owned())],
        body: String::new(),
        client: "203.0.113.9:4000".to_owned(),
        agent: agent.map(str::to_owned),
    }
}

fn body_text(response: &CloudResponse) -> String {
    String::from_utf8(decode_body(&response.body).unwrap()).unwrap()
}

/// `cargo-lambda`, installed by `make test` (scripts/python-tools.sh).
fn cargo_lambda() -> PathBuf {
    let path = std::env::var_os("NEXUS_CARGO_LAMBDA").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/sirsinexus/python-tools/bin/cargo-lambda")
        },
        PathBuf::from,
    );
    assert!(
        path.exists(),
        "{} is missing: run `make test`, or scripts/python-tools.sh, to install cargo-lambda",
        path.display()
    );
    path
}

/// A port nothing listens on now (the emulator cannot be given port 0).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something accepts connections on `port`.
async fn listening(port: u16) {
    let deadline = Instant::now() + STARTUP;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The emulated Lambda service with `nexus-edge lambda` as its one function's runtime.
struct LambdaService {
    emulator: Child,
    runtime: Option<Child>,
    port: u16,
    _project: tempfile::TempDir,
}

impl LambdaService {
    async fn start(bundle: &Path) -> Self {
        let mut service = Self::emulator().await;
        service.run(bundle);
        service
    }

    /// The emulator alone: it queues invocations until a runtime asks for them.
    async fn emulator() -> Self {
        // The emulator reads the Cargo metadata of the directory it starts in.
        let project = tempfile::tempdir().unwrap();
        std::fs::write(
            project.path().join("Cargo.toml"),
            "[package]\nname = \"emulated\"\nversion = \"0.0.0\"\nedition = \"2021\"\n",
        )
        .unwrap();
        std::fs::create_dir(project.path().join("src")).unwrap();
        std::fs::write(project.path().join("src/main.rs"), "fn main() {}\n").unwrap();
        let port = free_port();
        let emulator = Command::new(cargo_lambda())
            .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1"])
            .args(["-P", &port.to_string()])
            .current_dir(project.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        listening(port).await;
        Self {
            emulator,
            runtime: None,
            port,
            _project: project,
        }
    }

    /// Starts `nexus-edge lambda` on `bundle` as the emulated function's runtime.
    fn run(&mut self, bundle: &Path) {
        let runtime = Command::new(edge_binary())
            .arg("lambda")
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{}/.rt", self.port),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", EMULATED_FUNCTION)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("NEXUS_BUNDLE", bundle)
            .env("NEXUS_STATE_DIR", self._project.path().join("state"))
            .env("NEXUS_KV", redis_url())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        self.runtime = Some(runtime);
    }

    async fn target(&self) -> LambdaTarget {
        emulated_target(self.port).await
    }
}

/// The emulated function on `port`, as the coordinator reaches it (the emulator takes any
/// credentials).
async fn emulated_target(port: u16) -> LambdaTarget {
    LambdaTarget::connect(LambdaConfig {
        function: EMULATED_FUNCTION.to_owned(),
        qualifier: None,
        region: Some("us-east-1".to_owned()),
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        credentials: Some(Credentials::new(
            "AKIDEMULATOR",
            "emulator",
            None,
            None,
            "test",
        )),
    })
    .await
}

impl Drop for LambdaService {
    fn drop(&mut self) {
        if let Some(runtime) = &mut self.runtime {
            let _ = runtime.start_kill();
        }
        let _ = self.emulator.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lambda_host_runs_the_coordinators_invocations_and_function_url_events() {
    let namespace = format!("lambda-{}", uuid::Uuid::new_v4());
    let (_dir, bundle, deployment) = bundle(BundleTarget::Lambda, &namespace);
    let service = LambdaService::start(&bundle).await;
    let target = service.target().await;

    // Synchronous (`RequestResponse`): the app's own response, headers and all.
    let hello = target
        .invoke(invocation(&deployment, &namespace, "/hello", None))
        .await
        .unwrap();
    assert_eq!(hello.status, 200);
    assert_eq!(body_text(&hello), "Hello, Nexus!");
    assert!(
        hello
            .headers
            .contains(&("content-type".to_owned(), "text/plain".to_owned()))
    );

    // An agent's invocations open that agent's stores, as on an edge node.
    for expected in ["1", "2"] {
        let counted = target
            .invoke(invocation(
                &deployment,
                &namespace,
                "/counter",
                Some("agent-a"),
            ))
            .await
            .unwrap();
        assert_eq!(
            (counted.status, body_text(&counted)),
            (200, expected.to_owned())
        );
    }
    let other = target
        .invoke(invocation(
            &deployment,
            &namespace,
            "/counter",
            Some("agent-b"),
        ))
        .await
        .unwrap();
    assert_eq!(body_text(&other), "1");

    // Queued by Lambda (`Event`): the emulator answers once the function has run it.
    target
        .invoke_later(invocation(
            &deployment,
            &namespace,
            "/counter",
            Some("agent-a"),
        ))
        .await
        .unwrap();
    let after = target
        .invoke(invocation(
            &deployment,
            &namespace,
            "/counter",
            Some("agent-a"),
        ))
        .await
        .unwrap();
    assert_eq!(body_text(&after), "4");

    // Another deployment than the bundle's is refused before anything runs.
    let wrong = target
        .invoke(invocation(
            "sha256:other",
            &namespace,
            "/counter",
            Some("agent-a"),
        ))
        .await
        .unwrap();
    assert_eq!(wrong.status, 409);
    assert!(body_text(&wrong).contains("wrong_deployment"));
    let other_tenant = target
        .invoke(invocation(
            &deployment,
            "another-project",
            "/counter",
            Some("agent-a"),
        ))
        .await
        .unwrap();
    assert_eq!(other_tenant.status, 409);

    // A function URL event: the emulator turns an HTTP request into one.
    let http = HttpClient::default();
    let url = format!(
        "http://127.0.0.1:{}/lambda-url/{EMULATED_FUNCTION}/hello",
        service.port
    );
    let response = http
        .send(Request::get(url.as_str()).body(Full::default()).unwrap())
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.text(), "Hello, Nexus!");
    let missing = format!(
        "http://127.0.0.1:{}/lambda-url/{EMULATED_FUNCTION}/no/such/route",
        service.port
    );
    let response = http
        .send(
            Request::get(missing.as_str())
                .body(Full::default())
                .unwrap(),
        )
        .await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    assert!(response.text().contains("route_not_found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lambda_target_that_cannot_be_reached_ran_nothing() {
    let target = emulated_target(free_port()).await;
    let error = target
        .invoke(invocation("any", "any", "/hello", None))
        .await
        .unwrap_err();
    assert!(matches!(error, CloudError::NotReached(_)), "{error}");
    assert!(error.ran_nothing());
}

/// `nexus-edge azure` as the Functions host starts it: in the app's directory, with the port
/// to forward to in `FUNCTIONS_CUSTOMHANDLER_PORT`.
struct AzureHandler {
    child: Child,
    base: String,
}

impl AzureHandler {
    async fn start(bundle: &Path, state: &Path, token: &str) -> Self {
        let mut child = Command::new(edge_binary())
            .arg("azure")
            .current_dir(bundle)
            .env("FUNCTIONS_CUSTOMHANDLER_PORT", "0")
            .env("NEXUS_INVOKE_TOKEN", token)
            .env("NEXUS_STATE_DIR", state)
            .env("NEXUS_KV", redis_url())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = announced_address(&mut child, "Listening on ").await;
        Self { child, base }
    }
}

impl Drop for AzureHandler {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_azure_handler_serves_forwarded_requests_and_trusts_only_the_coordinator() {
    let namespace = format!("azure-{}", uuid::Uuid::new_v4());
    let (dir, bundle, deployment) = bundle(BundleTarget::Azure, &namespace);
    assert!(bundle.join("host.json").is_file());
    assert!(bundle.join("nexus/function.json").is_file());
    let token = "coordinator-secret";
    let handler = AzureHandler::start(&bundle, &dir.path().join("state"), token).await;
    let http = HttpClient::default();
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut request = Request::get(format!("{}{path}", handler.base));
        // What the Functions host adds when it forwards a request.
        request = request
            .header("x-forwarded-for", "203.0.113.9:51000")
            .header("x-ms-client-request-id", "forwarded")
            .header("x-arr-log-id", "forwarded");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(Full::default()).unwrap()
    };

    // A forwarded request: the route prefix is the mount, the app sees itself at the root.
    let response = http.send(get("/api/hello", &[])).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.text(), "Hello, Nexus!");
    assert_eq!(
        http.send(get("/hello", &[])).await.status,
        StatusCode::NOT_FOUND
    );

    // The coordinator names an agent and the mount the client used.
    let coordinator = [
        ("nexus-invoke-token", token),
        ("nexus-agent", "agent-a"),
        ("nexus-deployment", deployment.as_str()),
        ("nexus-namespace", namespace.as_str()),
        ("nexus-prefix", "/lab/app"),
    ];
    for expected in ["1", "2"] {
        let response = http.send(get("/api/counter", &coordinator)).await;
        assert_eq!(
            (response.status, response.text()),
            (StatusCode::OK, expected.to_owned())
        );
    }

    // From anyone else the agent header is dropped: the tenant's own store, not the agent's.
    let response = http
        .send(get("/api/counter", &[("nexus-agent", "agent-a")]))
        .await;
    assert_eq!(response.text(), "1");

    // A wrong token, or another deployment, is refused before anything runs.
    let response = http
        .send(get(
            "/api/counter",
            &[("nexus-invoke-token", "guess"), ("nexus-agent", "agent-a")],
        ))
        .await;
    assert_eq!(response.status, StatusCode::UNAUTHORIZED);
    let response = http
        .send(get(
            "/api/counter",
            &[
                ("nexus-invoke-token", token),
                ("nexus-deployment", "sha256:other"),
            ],
        ))
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    let response = http
        .send(get(
            "/api/counter",
            &[
                ("nexus-invoke-token", token),
                ("nexus-namespace", "another-project"),
            ],
        ))
        .await;
    assert_eq!(response.status, StatusCode::CONFLICT);
    let response = http.send(get("/api/counter", &coordinator)).await;
    assert_eq!(response.text(), "3");
}

/// `COUNTER_APP` as a bundle for `target`, for tenant `namespace`: the same app record the
/// coordinator resolves from the same upload.
fn counter_bundle(target: BundleTarget, namespace: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("spin.toml"), COUNTER_APP).unwrap();
    std::fs::copy(component_path("counter"), app.join("counter.wasm")).unwrap();
    let out = dir.path().join("bundle");
    write_bundle(
        &app.join("spin.toml"),
        &out,
        &BundleOptions {
            target,
            deployment: None,
            namespace: Some(namespace.to_owned()),
            edge_binary: None,
        },
    )
    .unwrap();
    (dir, out)
}

/// A coordinator of a cluster on a fresh database with `env` added to its environment, and
/// the directory its nodes may keep their state in.
async fn cluster_with_env(env: &[(&str, &str)]) -> (FreshDatabase, tempfile::TempDir, Coordinator) {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator =
        Coordinator::start_with_env(&database, &state.path().join("coordinator"), &[], env).await;
    (database, state, coordinator)
}

/// Deploys `COUNTER_APP` as `shop/counter`; the project's id.
async fn deploy_counter(coordinator: &Coordinator) -> String {
    coordinator
        .deploy_bytes(
            "counter",
            "application/x-tar",
            app_tar(COUNTER_APP, &[("counter.wasm", "counter")]),
        )
        .await;
    let token = coordinator.access_token.clone();
    let project = coordinator
        .send_json(http::Method::GET, "/v1/projects/shop", "", Some(&token))
        .await;
    project.json()["id"].as_str().unwrap().to_owned()
}

/// Creates an agent of `shop/counter`; the path of its messages.
async fn counter_agent(coordinator: &Coordinator, name: &str) -> String {
    let agent = coordinator.create_agent(name, "counter").await;
    format!("/v1/projects/shop/agents/{agent}/messages")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_placement_moves_to_lambda_when_no_edge_node_can_take_the_call() {
    let mut lambda = LambdaService::emulator().await;
    let endpoint = format!("http://127.0.0.1:{}", lambda.port);
    // The coordinator finds Lambda as the AWS SDK does: credentials, region and endpoint from
    // its environment.
    let (_database, state, coordinator) = cluster_with_env(&[
        ("AWS_ACCESS_KEY_ID", "AKIDEMULATOR"),
        ("AWS_SECRET_ACCESS_KEY", "emulator"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL_LAMBDA", &endpoint),
    ])
    .await;
    let kv = redis_url();
    let node = Edge::start_with(&coordinator, "a", &state.path().join("a"), &["--kv", &kv]).await;
    let token = coordinator.access_token.clone();
    let project_id = deploy_counter(&coordinator).await;
    let settings = "/v1/projects/shop/functions/counter";
    let patch = |body: &'static str| {
        coordinator.send_json(http::Method::PATCH, settings, body, Some(&token))
    };
    // A cloud placement needs its target; an unknown one is refused.
    let refused = patch(r#"{"placement":"aws-lambda"}"#).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    let refused = patch(r#"{"placement":"moon"}"#).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    assert!(refused.text().contains("unknown placement"));
    let placed = patch(r#"{"placement":"auto","cloud":{"aws_lambda":{"function":"_"}}}"#).await;
    assert_eq!(placed.status, StatusCode::OK, "{}", placed.text());
    assert_eq!(placed.json()["placement"], "auto");
    assert_eq!(placed.json()["cloud"]["aws_lambda"]["function"], "_");

    // The function's cloud bundle, for the project's tenant, served by the emulated Lambda.
    let (_bundle_dir, bundle) = counter_bundle(BundleTarget::Lambda, &project_id);
    lambda.run(&bundle);
    let messages = counter_agent(&coordinator, "mover").await;

    // While an edge node can take the calls, they run there.
    for expected in ["1", "2"] {
        let answer = coordinator.post_json(&messages, "", Some(&token)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.text(), expected);
        assert_eq!(answer.headers["nexus-node"], node.id.as_str());
    }

    // Every edge node killed: the next request is served by Lambda, with no error.
    node.kill().await;
    let plain = coordinator
        .client
        .get(&format!("{}/shop/counter/", coordinator.base))
        .await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text());
    assert_eq!(plain.headers["nexus-node"], "aws-lambda:_");
    assert_eq!(plain.text(), "1");

    // The agent moved with its context: its count goes on where the edge left it.
    let answer = coordinator.post_json(&messages, "", Some(&token)).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.headers["nexus-node"], "aws-lambda:_");
    assert_eq!(answer.text(), "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_azure_placement_runs_in_the_function_app_and_only_the_coordinator_names_agents() {
    // The function key and the handler's token come from the coordinator's secrets store.
    let (_database, state, coordinator) = cluster_with_env(&[
        ("NEXUS_SECRET_SHOP_AZURE_KEY", "function-key"),
        ("NEXUS_SECRET_SHOP_AZURE_TOKEN", "invoke-token"),
    ])
    .await;
    let token = coordinator.access_token.clone();
    let project_id = deploy_counter(&coordinator).await;
    let (_bundle_dir, bundle) = counter_bundle(BundleTarget::Azure, &project_id);
    let handler = AzureHandler::start(&bundle, &state.path().join("azure"), "invoke-token").await;
    let placed = coordinator
        .send_json(
            http::Method::PATCH,
            "/v1/projects/shop/functions/counter",
            &format!(
                r#"{{"placement":"azure-functions","cloud":{{"azure_functions":{{"url":"{}","key_secret":"shop-azure-key","invoke_token_secret":"shop-azure-token"}}}}}}"#,
                handler.base
            ),
            Some(&token),
        )
        .await;
    assert_eq!(placed.status, StatusCode::OK, "{}", placed.text());
    // The secrets are named, never shown.
    assert!(!placed.text().contains("function-key"));

    let messages = counter_agent(&coordinator, "azure").await;
    for expected in ["1", "2"] {
        let answer = coordinator.post_json(&messages, "", Some(&token)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.text(), expected);
        assert_eq!(
            answer.headers["nexus-node"],
            format!("azure-functions:{}", handler.base).as_str()
        );
    }
    // A client's own `nexus-agent` header names nothing: the project's store counts.
    let forged = Request::post(format!("{}/shop/counter/", coordinator.base))
        .header("nexus-agent", "someone-else")
        .body(Full::default())
        .unwrap();
    let plain = coordinator.client.send(forged).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text());
    assert_eq!(plain.text(), "1");
}

/// An RSA key pair made by `openssl` for this test: the private key PEM and the public one.
fn rsa_key_pair(dir: &Path) -> (String, String) {
    let private = dir.join("key.pem");
    let public = dir.join("public.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&private)
        .status()
        .unwrap();
    assert!(made.success());
    let derived = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .status()
        .unwrap();
    assert!(derived.success());
    (
        std::fs::read_to_string(private).unwrap(),
        std::fs::read_to_string(public).unwrap(),
    )
}

/// What the fake Google endpoints saw.
#[derive(Default)]
struct GoogleSide {
    tokens_issued: std::sync::atomic::AtomicUsize,
    calls: std::sync::Mutex<Vec<(String, http::HeaderMap)>>,
}

/// Google's token endpoint as the JWT bearer grant has it (the assertion verified with the
/// service account's public key, an ID token for its `target_audience` returned), and a Cloud
/// Run front that lets through only requests carrying such a token; on one port.
async fn fake_google(public_pem: String) -> (String, std::sync::Arc<GoogleSide>) {
    use axum::extract::State;
    use axum::routing::{any, post};
    use std::collections::HashMap;
    use std::sync::Arc;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let side = Arc::new(GoogleSide::default());
    let token_uri = format!("{base}/token");
    let key = Arc::new(jsonwebtoken::DecodingKey::from_rsa_pem(public_pem.as_bytes()).unwrap());
    let issue = {
        let (token_uri, base) = (token_uri.clone(), base.clone());
        move |State(side): State<Arc<GoogleSide>>, body: String| {
            let (token_uri, base, key) = (token_uri.clone(), base.clone(), Arc::clone(&key));
            async move {
                let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
                    .into_owned()
                    .collect();
                assert_eq!(
                    form["grant_type"],
                    "urn:ietf:params:oauth:grant-type:jwt-bearer"
                );
                let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
                validation.set_audience(&[&token_uri]);
                validation.set_issuer(&["invoker@shop.iam.gserviceaccount.com"]);
                let claims = jsonwebtoken::decode::<serde_json::Value>(
                    &form["assertion"],
                    &key,
                    &validation,
                )
                .unwrap()
                .claims;
                assert_eq!(claims["target_audience"], base.as_str());
                side.tokens_issued
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                axum::Json(serde_json::json!({"id_token": format!("id-token-for:{base}")}))
            }
        }
    };
    let front = {
        let base = base.clone();
        move |State(side): State<Arc<GoogleSide>>, request: axum::extract::Request| {
            let base = base.clone();
            async move {
                let target = request.uri().to_string();
                let headers = request.headers().clone();
                let authorized = headers
                    .get("x-serverless-authorization")
                    .is_some_and(|value| value == format!("Bearer id-token-for:{base}").as_str());
                side.calls.lock().unwrap().push((target, headers));
                if authorized {
                    (StatusCode::OK, "ran in cloud run")
                } else {
                    (StatusCode::UNAUTHORIZED, "no ID token")
                }
            }
        }
    };
    let app = axum::Router::new()
        .route("/token", post(issue))
        .fallback(any(front))
        .with_state(Arc::clone(&side));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, side)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gcp_placement_calls_cloud_run_with_an_id_token_from_the_service_account() {
    let keys = tempfile::tempdir().unwrap();
    let (private_pem, public_pem) = rsa_key_pair(keys.path());
    let (google, side) = fake_google(public_pem).await;
    let service_account = serde_json::json!({
        "type": "service_account",
        "client_email": "invoker@shop.iam.gserviceaccount.com",
        "private_key_id": "k1",
        "private_key": private_pem,
        "token_uri": format!("{google}/token"),
    })
    .to_string();
    let (_database, _state, coordinator) = cluster_with_env(&[
        ("NEXUS_SECRET_SHOP_GCP_INVOKER", &service_account),
        ("NEXUS_SECRET_SHOP_GCP_TOKEN", "invoke-token"),
    ])
    .await;
    let token = coordinator.access_token.clone();
    let project_id = deploy_counter(&coordinator).await;
    let placed = coordinator
        .send_json(
            http::Method::PATCH,
            "/v1/projects/shop/functions/counter",
            &format!(
                r#"{{"placement":"gcp","cloud":{{"gcp":{{"url":"{google}","service_account_secret":"shop-gcp-invoker","invoke_token_secret":"shop-gcp-token"}}}}}}"#
            ),
            Some(&token),
        )
        .await;
    assert_eq!(placed.status, StatusCode::OK, "{}", placed.text());
    assert!(!placed.text().contains("PRIVATE KEY"));

    for _ in 0..2 {
        let answer = coordinator
            .client
            .get(&format!("{}/shop/counter/items?page=2", coordinator.base))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.text(), "ran in cloud run");
        assert_eq!(
            answer.headers["nexus-node"],
            format!("gcp:{google}").as_str()
        );
    }
    // One token, kept for the second call.
    assert_eq!(
        side.tokens_issued.load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    let calls = side.calls.lock().unwrap();
    let (target, headers) = &calls[0];
    // The service holds the app at its root; the coordinator's mount goes in `nexus-prefix`.
    assert_eq!(target, "/items?page=2");
    assert_eq!(headers["nexus-prefix"], "/shop/counter");
    assert_eq!(headers["nexus-invoke-token"], "invoke-token");
    assert_eq!(headers["nexus-namespace"], project_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cloud_run_host_serves_the_app_at_the_root_of_its_port() {
    let (dir, bundle) = counter_bundle(BundleTarget::CloudRun, "cloud-run-tenant");
    let mut child = Command::new(edge_binary())
        .arg("cloud-run")
        .env("NEXUS_BUNDLE", &bundle)
        .env("PORT", "0")
        .env("NEXUS_STATE_DIR", dir.path().join("state"))
        .env("NEXUS_KV", "memory")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = announced_address(&mut child, "Listening on ").await;
    let http = HttpClient::default();
    for expected in ["1", "2"] {
        let response = http.get(&format!("{base}/anything")).await;
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
        assert_eq!(response.text(), expected);
    }
}
