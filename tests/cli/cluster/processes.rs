//! The processes of a test cluster: `nexus coordinator --cluster` on a fresh Postgres database
//! and `nexus-edge` nodes joined to it, started on loopback with port 0.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_tests::postgres::FreshDatabase;
use nexus_tests::{HttpClient, TestResponse, component_path};
use tokio::io::{AsyncBufReadExt as _, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

pub const STARTUP: Duration = Duration::from_secs(60);

/// `nexus-edge` is built next to `nexus` (`cargo build --workspace`, as `make test` does).
pub fn edge_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_nexus")).with_file_name("nexus-edge");
    assert!(
        path.exists(),
        "{} is missing: build the workspace (`cargo build --workspace`)",
        path.display()
    );
    path
}

/// The address a process just started prints as `{prefix}{address}` on its first line; the
/// rest of its output is drained.
#[allow(dead_code, reason = "the cloud tests use it, the cluster tests do not")]
pub async fn announced_address(child: &mut Child, prefix: &str) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = next_line(&mut lines).await;
    let address = line
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("expected `{prefix}…`, the process printed `{line}`"))
        .to_owned();
    drain(lines);
    address
}

/// Reads the rest of a process's output, so that it never writes to a closed pipe (which
/// would make its next `println!` panic).
pub fn drain(mut lines: Lines<BufReader<ChildStdout>>) {
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
}

pub async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(STARTUP, lines.next_line())
        .await
        .expect("timed out waiting for output")
        .unwrap()
        .expect("the process exited")
}

/// `nexus coordinator` on `database` and `state` (its signing key there too), listening on
/// `listen`, with `args` and `env` added: the process, its API's URL, and the rest of its
/// output.
pub async fn spawn_coordinator(
    listen: &str,
    database: &FreshDatabase,
    state: &Path,
    args: &[&std::ffi::OsStr],
    env: &[(&str, &str)],
) -> (Child, String, Lines<BufReader<ChildStdout>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nexus"))
        .args(["coordinator", "--listen", listen])
        .arg("--database-url")
        .arg(database.url())
        .arg("--state-dir")
        .arg(state)
        .arg("--signing-key-file")
        .arg(state.join("signing-key"))
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = next_line(&mut lines).await;
    let base = listening
        .strip_prefix("Coordinator listening on ")
        .unwrap_or_else(|| panic!("unexpected output: {listening}"))
        .to_owned();
    (child, base, lines)
}

/// Sends `body` as JSON to `url` with `method`, as `bearer` when given.
pub async fn send_json(
    client: &HttpClient,
    method: http::Method,
    url: String,
    body: &str,
    bearer: Option<&str>,
) -> TestResponse {
    let mut request = Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json");
    if let Some(bearer) = bearer {
        request = request.header("authorization", format!("Bearer {bearer}"));
    }
    client
        .send(request.body(Full::from(body.to_owned())).unwrap())
        .await
}

pub struct Coordinator {
    child: Child,
    pub base: String,
    /// Where nodes join: the API's URL, or the mutual-TLS cluster listener's.
    pub join: String,
    pub token: String,
    pub access_token: String,
    pub client: HttpClient,
}

impl Coordinator {
    /// A new coordinator on `database`, with user `ops@example.com` and project `shop`.
    pub async fn start(database: &FreshDatabase, state: &Path) -> Self {
        Self::start_with(database, state, &[]).await
    }

    /// [`Coordinator::start`] with more flags.
    pub async fn start_with(database: &FreshDatabase, state: &Path, args: &[&str]) -> Self {
        let mut coordinator = Self::launch(database, state, args).await;
        coordinator.sign_up().await;
        coordinator
    }

    /// The coordinator started again on the `database` and `state` of an earlier one; logged in
    /// as the user that one signed up.
    pub async fn restart(database: &FreshDatabase, state: &Path, args: &[&str]) -> Self {
        let mut coordinator = Self::launch(database, state, args).await;
        coordinator.log_in().await;
        coordinator
    }

    /// [`Coordinator::restart`] on `base`, the address of the one before it, so that the
    /// nodes it had find it again.
    pub async fn restart_at(
        base: &str,
        database: &FreshDatabase,
        state: &Path,
        args: &[&str],
    ) -> Self {
        let listen = base.strip_prefix("http://").unwrap();
        let mut coordinator = Self::launch_on(listen, database, state, args).await;
        coordinator.log_in().await;
        coordinator
    }

    /// [`Coordinator::start_with`] with variables added to its environment.
    #[allow(
        dead_code,
        reason = "the cloud and observability tests use it, the cluster tests do not"
    )]
    pub async fn start_with_env(
        database: &FreshDatabase,
        state: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut coordinator = Self::launch_with("127.0.0.1:0", database, state, args, env).await;
        coordinator.sign_up().await;
        coordinator
    }

    async fn launch(database: &FreshDatabase, state: &Path, args: &[&str]) -> Self {
        Self::launch_on("127.0.0.1:0", database, state, args).await
    }

    async fn launch_on(
        listen: &str,
        database: &FreshDatabase,
        state: &Path,
        args: &[&str],
    ) -> Self {
        Self::launch_with(listen, database, state, args, &[]).await
    }

    async fn launch_with(
        listen: &str,
        database: &FreshDatabase,
        state: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let token_file = state.join("node-token");
        let mut cluster_args: Vec<&std::ffi::OsStr> = vec!["--cluster".as_ref()];
        cluster_args.extend([
            std::ffi::OsStr::new("--node-token-file"),
            token_file.as_os_str(),
        ]);
        cluster_args.extend(args.iter().map(std::ffi::OsStr::new));
        let (child, base, mut lines) =
            spawn_coordinator(listen, database, state, &cluster_args, env).await;
        let joining = next_line(&mut lines).await;
        let join = joining
            .split_once("--coordinator ")
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .unwrap_or_else(|| panic!("unexpected output: {joining}"))
            .to_owned();
        drain(lines);
        let token = std::fs::read_to_string(&token_file).unwrap();
        Self {
            child,
            base,
            join,
            token,
            access_token: String::new(),
            client: HttpClient::default(),
        }
    }

    const CREDENTIALS: &str = r#"{"email":"ops@example.com","password":"correct horse"}"#;

    async fn sign_up(&mut self) {
        let registered = self
            .post_json("/v1/auth/register", Self::CREDENTIALS, None)
            .await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{}",
            registered.text()
        );
        self.log_in().await;
        let token = self.access_token.clone();
        let project = self
            .post_json("/v1/projects", r#"{"name":"shop"}"#, Some(&token))
            .await;
        assert_eq!(project.status, StatusCode::CREATED, "{}", project.text());
    }

    async fn log_in(&mut self) {
        let login = self
            .post_json("/v1/auth/login", Self::CREDENTIALS, None)
            .await;
        assert_eq!(login.status, StatusCode::OK, "{}", login.text());
        self.access_token = login.json()["access_token"].as_str().unwrap().to_owned();
    }

    /// Kills the process (SIGKILL), as a crash would.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }

    pub async fn post_json(&self, path: &str, body: &str, bearer: Option<&str>) -> TestResponse {
        self.send_json(http::Method::POST, path, body, bearer).await
    }

    pub async fn send_json(
        &self,
        method: http::Method,
        path: &str,
        body: &str,
        bearer: Option<&str>,
    ) -> TestResponse {
        send_json(
            &self.client,
            method,
            format!("{}{path}", self.base),
            body,
            bearer,
        )
        .await
    }

    /// Deploys the `headers` function as `shop/echo`; deploy prefetches it to every node.
    pub async fn deploy(&self) {
        self.deploy_component("headers", "echo").await;
    }

    pub async fn deploy_component(&self, component: &str, function: &str) {
        let bytes = std::fs::read(component_path(component)).unwrap();
        self.deploy_bytes(function, "application/wasm", bytes).await;
    }

    /// Deploys `body` (an upload of `content_type`) as the next version of `shop/{function}`.
    pub async fn deploy_bytes(&self, function: &str, content_type: &str, body: Vec<u8>) {
        let request = Request::post(format!(
            "{}/v1/projects/shop/functions/{function}/versions",
            self.base
        ))
        .header("content-type", content_type)
        .header("authorization", format!("Bearer {}", self.access_token))
        .body(Full::from(body))
        .unwrap();
        let deployed = self.client.send(request).await;
        assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
    }

    /// Creates agent `name` of `shop/{function}`; its id.
    pub async fn create_agent(&self, name: &str, function: &str) -> String {
        let token = self.access_token.clone();
        let created = self
            .post_json(
                "/v1/projects/shop/agents",
                &format!(r#"{{"name":"{name}","function":"{function}"}}"#),
                Some(&token),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        created.json()["id"].as_str().unwrap().to_owned()
    }

    pub async fn invoke(&self) -> TestResponse {
        self.client
            .get(&format!("{}/shop/echo/hello", self.base))
            .await
    }

    pub async fn nodes(&self, bearer: &str) -> TestResponse {
        let request = Request::get(format!("{}/v1/nodes", self.base))
            .header("authorization", format!("Bearer {bearer}"))
            .body(Full::default())
            .unwrap();
        self.client.send(request).await
    }

    pub async fn node_states(&self) -> HashMap<String, String> {
        let nodes = self.nodes(&self.token).await;
        assert_eq!(nodes.status, StatusCode::OK, "{}", nodes.text());
        nodes.json()["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|node| {
                (
                    node["id"].as_str().unwrap().to_owned(),
                    node["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

pub struct Edge {
    pub child: Child,
    pub id: String,
    pub base: String,
    /// The node's own ingress, when it was started with one (`--ingress`).
    pub ingress: Option<String>,
}

impl Edge {
    pub async fn start(coordinator: &Coordinator, name: &str, state: &Path) -> Self {
        Self::start_with(coordinator, name, state, &[]).await
    }

    pub async fn start_with(
        coordinator: &Coordinator,
        name: &str,
        state: &Path,
        args: &[&str],
    ) -> Self {
        Self::start_with_env(coordinator, name, state, args, &[]).await
    }

    /// [`Edge::start_with`] with variables added to its environment.
    #[allow(dead_code, reason = "the observability tests use it")]
    pub async fn start_with_env(
        coordinator: &Coordinator,
        name: &str,
        state: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self::join(
            &coordinator.join,
            &coordinator.token,
            name,
            state,
            args,
            env,
        )
        .await
    }

    /// A node joining the coordinator at `join` with `token`, once it has registered.
    pub async fn join(
        join: &str,
        token: &str,
        name: &str,
        state: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        Self::launch(join, token, name, state, args, env, true).await
    }

    /// A node started with `--ingress`, once it listens: it need not reach its coordinator.
    #[allow(dead_code, reason = "the store-and-forward tests use it")]
    pub async fn unregistered(join: &str, token: &str, name: &str, state: &Path) -> Self {
        let args = ["--ingress", "127.0.0.1:0"];
        Self::launch(join, token, name, state, &args, &[], false).await
    }

    async fn launch(
        join: &str,
        token: &str,
        name: &str,
        state: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        registered: bool,
    ) -> Self {
        let mut child = Command::new(edge_binary())
            .args(["--coordinator", join, "--name", name])
            .args(args)
            .args(["--listen", "127.0.0.1:0"])
            .args(if args.contains(&"--kv") {
                &[][..]
            } else {
                &["--kv", "memory"][..]
            })
            .arg("--state-dir")
            .arg(state)
            .env("NEXUS_NODE_TOKEN", token)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let listening = next_line(&mut lines).await;
        let base = listening.strip_prefix("Listening on ").unwrap().to_owned();
        let ingress = if args.contains(&"--ingress") {
            let line = next_line(&mut lines).await;
            Some(line.strip_prefix("Ingress on ").unwrap().to_owned())
        } else {
            None
        };
        let id = if registered {
            let line = next_line(&mut lines).await;
            line.strip_prefix("Registered as node ")
                .unwrap_or_else(|| panic!("unexpected output: {line}"))
                .to_owned()
        } else {
            String::new()
        };
        drain(lines);
        Self {
            child,
            id,
            base,
            ingress,
        }
    }

    pub async fn metric(&self, client: &HttpClient, name: &str) -> u64 {
        metric(client, &self.base, name).await
    }

    /// Kills the process (SIGKILL), as a crash would.
    pub async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }

    pub async fn stop(mut self) {
        let pid = self.child.id().unwrap().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .await
                .unwrap()
                .success()
        );
        let status = tokio::time::timeout(STARTUP, self.child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "the node exited with {status}");
    }
}

/// The value of the unlabelled metric `name` on the `/metrics` of the process at `base`.
pub async fn metric(client: &HttpClient, base: &str, name: &str) -> u64 {
    let metrics = client.get(&format!("{base}/metrics")).await;
    metrics
        .text()
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {}", metrics.text()))
        .parse()
        .unwrap()
}

pub fn served_by(response: &TestResponse) -> String {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.headers["nexus-node"].to_str().unwrap().to_owned()
}
