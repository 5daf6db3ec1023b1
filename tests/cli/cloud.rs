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
#[expect(dead_code, reason = "the cluster tests use the rest")]
mod processes;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use http_body_util::Full;
use nexus::bundle::{BundleOptions, BundleTarget, write_bundle};
use nexus_coordinator::cloud::{CloudError, Credentials, LambdaConfig, LambdaTarget};
use nexus_proto::cloud::{CloudInvoke, CloudResponse, PROTOCOL, decode_body};
use nexus_tests::{HttpClient, examples_manifest, redis_url};
use tokio::process::{Child, Command};

use processes::{STARTUP, announced_address, edge_binary};

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

fn invocation(deployment: &str, uri: &str, agent: Option<&str>) -> CloudInvoke {
    CloudInvoke {
        protocol: PROTOCOL,
        deployment: deployment.to_owned(),
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
    runtime: Child,
    port: u16,
    _project: tempfile::TempDir,
}

impl LambdaService {
    async fn start(bundle: &Path) -> Self {
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
        let runtime = Command::new(edge_binary())
            .arg("lambda")
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", EMULATED_FUNCTION)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024")
            .env("NEXUS_BUNDLE", bundle)
            .env("NEXUS_STATE_DIR", project.path().join("state"))
            .env("NEXUS_KV", redis_url())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        Self {
            emulator,
            runtime,
            port,
            _project: project,
        }
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
        let _ = self.runtime.start_kill();
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
        .invoke(invocation(&deployment, "/hello", None))
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
            .invoke(invocation(&deployment, "/counter", Some("agent-a")))
            .await
            .unwrap();
        assert_eq!(
            (counted.status, body_text(&counted)),
            (200, expected.to_owned())
        );
    }
    let other = target
        .invoke(invocation(&deployment, "/counter", Some("agent-b")))
        .await
        .unwrap();
    assert_eq!(body_text(&other), "1");

    // Queued by Lambda (`Event`): the emulator answers once the function has run it.
    target
        .invoke_later(invocation(&deployment, "/counter", Some("agent-a")))
        .await
        .unwrap();
    let after = target
        .invoke(invocation(&deployment, "/counter", Some("agent-a")))
        .await
        .unwrap();
    assert_eq!(body_text(&after), "4");

    // Another deployment than the bundle's is refused before anything runs.
    let wrong = target
        .invoke(invocation("sha256:other", "/counter", Some("agent-a")))
        .await
        .unwrap();
    assert_eq!(wrong.status, 409);
    assert!(body_text(&wrong).contains("wrong_deployment"));

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
        .invoke(invocation("any", "/hello", None))
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
    let response = http.send(get("/api/counter", &coordinator)).await;
    assert_eq!(response.text(), "3");
}
