//! `nexus up -f functions/spin.toml`, the real binary: the whole platform in one process. On
//! first start it creates the dev account and project and deploys the example app, which uses
//! every Spin host interface SirsiNexus provides; each interface is exercised once through the
//! coordinator's HTTP trigger against the real services on this machine; the printed token
//! works on the API; SIGTERM shuts it down cleanly; a restart finds the same app live and
//! deploys nothing.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test reports failures by panicking"
)]

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_tests::{HttpClient, TestResponse, examples_manifest};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// The running binary, the app's base URL and the token it printed.
struct NexusUp {
    child: Child,
    /// `http://address/dev/nexus-examples`: where the example app is mounted.
    base: String,
    /// `http://address`.
    origin: String,
    token: String,
    /// What it printed up to the end of its welcome.
    printed: Vec<String>,
    client: HttpClient,
}

impl NexusUp {
    async fn start(state: &std::path::Path, tcp_echo_port: u16) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nexus"))
            .arg("up")
            .arg("-f")
            .arg(examples_manifest())
            .args(["--listen", "127.0.0.1:0", "--state-dir"])
            .arg(state)
            .env("SPIN_VARIABLE_TCP_ECHO_PORT", tcp_echo_port.to_string())
            .env("RUST_LIB_BACKTRACE", "0")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("nexus up did not start");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let read_welcome = async {
            let mut printed = Vec::new();
            while let Some(line) = lines.next_line().await.unwrap() {
                let done = line.starts_with("API: ");
                printed.push(line);
                if done {
                    return printed;
                }
            }
            panic!("nexus up exited without serving: {printed:?}");
        };
        let printed = tokio::time::timeout(Duration::from_secs(120), read_welcome)
            .await
            .expect("nexus up did not print its welcome within 120 s");
        // Keep draining so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let find = |prefix: &str| {
            printed
                .iter()
                .find_map(|line| line.split_once(prefix).map(|(_, rest)| rest.to_owned()))
                .unwrap_or_else(|| panic!("no `{prefix}` in {printed:?}"))
        };
        let origin = find("Serving ");
        let token = find("export NEXUS_TOKEN=");
        Self {
            base: format!("{origin}/dev/nexus-examples"),
            origin,
            token,
            printed,
            child,
            client: HttpClient::default(),
        }
    }

    async fn get(&self, path: &str) -> TestResponse {
        self.client.get(&format!("{}{path}", self.base)).await
    }

    /// `GET path`, which must answer 200; its body.
    async fn ok(&self, path: &str) -> String {
        let response = self.get(path).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{path}: {}",
            response.text()
        );
        response.text()
    }

    async fn send_ok(&self, request: Request<Full<Bytes>>) -> String {
        let what = format!("{} {}", request.method(), request.uri());
        let response = self.client.send(request).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{what}: {}",
            response.text()
        );
        response.text()
    }

    /// SIGTERM: in-flight work finishes, then the process exits 0.
    async fn stop(mut self) {
        let pid = self.child.id().unwrap().to_string();
        let killed = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap();
        assert!(killed.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("nexus up did not exit within 30 s of SIGTERM")
            .unwrap();
        assert!(status.success(), "nexus up exited with {status}");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn query(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[tokio::test]
async fn nexus_up_serves_the_example_app_with_every_host_interface() {
    let state = tempfile::tempdir().unwrap();
    let echo_port = nexus_tests::tcp_pong_server("127.0.0.1").await.port();
    let nexus = NexusUp::start(state.path(), echo_port).await;
    let unique = uuid::Uuid::new_v4().simple().to_string();
    assert!(
        nexus
            .printed
            .iter()
            .any(|line| line.contains("version 1 is live (deployed")),
        "{:?}",
        nexus.printed
    );
    let hello_url = format!("{}/hello", nexus.base);
    assert!(
        nexus.printed.iter().any(|line| line.ends_with(&hello_url)),
        "{:?}",
        nexus.printed
    );

    // The printed token is the dev user's, on the dev project.
    let listed = nexus
        .client
        .send(
            Request::get(format!("{}/v1/projects/dev/functions", nexus.origin))
                .header("authorization", format!("Bearer {}", nexus.token))
                .body(Full::default())
                .unwrap(),
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    assert_eq!(listed.json()[0]["name"], "nexus-examples");

    // HTTP, both worlds, and a core module made a component on load.
    for path in ["/hello", "/p3/hello", "/core/hello"] {
        assert_eq!(nexus.ok(path).await, "Hello, Nexus!", "{path}");
    }
    // Spin key-value in the state directory, both versions.
    assert_eq!(nexus.ok("/counter").await, "1");
    assert_eq!(nexus.ok("/p3/counter").await, "2");
    let key = format!("k{unique}");
    nexus
        .ok(&format!("/kv-probe?op=set&key={key}&value=v"))
        .await;
    assert_eq!(
        nexus.ok(&format!("/p3/kv-probe?op=get&key={key}")).await,
        "v"
    );
    // Variables and wasi:config.
    assert_eq!(nexus.ok("/variables").await, "Hello from variables");
    assert_eq!(nexus.ok("/p3/variables").await, "Hello from variables");
    assert!(
        nexus
            .ok("/wasi-config-probe?key=greeting")
            .await
            .contains("Hello")
    );
    // wasi:keyvalue over the same stores.
    assert_eq!(
        nexus
            .ok(&format!("/wasi-kv-probe?op=set&key={key}w&value=x"))
            .await,
        "ok"
    );
    assert_eq!(
        nexus.ok(&format!("/p3/wasi-probe?op=get&key={key}w")).await,
        "x"
    );
    // The request shape Spin gives guests.
    let echo = nexus.get("/headers/a/b?x=1").await.json();
    assert_eq!(
        echo["headers"]["spin-full-url"],
        nexus.url("/headers/a/b?x=1")
    );
    assert_eq!(echo["headers"]["spin-path-info"], "/a/b");
    // Outbound HTTP to the app itself, by relative URL.
    let outbound = Request::get(nexus.url("/outbound"))
        .header("x-target-url", "/hello")
        .body(Full::default())
        .unwrap();
    assert_eq!(nexus.send_ok(outbound).await, "status=200\nHello, Nexus!");
    // wasi:sockets, limited by a templated allowed_outbound_hosts rule.
    assert_eq!(
        nexus
            .ok(&format!(
                "/socket-probe?proto=tcp&addr=127.0.0.1:{echo_port}"
            ))
            .await,
        "pong"
    );
    // SQLite, both versions.
    let sqlite = Request::post(nexus.url("/sqlite-probe?db=default&api=v2"))
        .header("x-sqlite-params", "[41]")
        .body(Full::from("SELECT ? + 1 AS answer"))
        .unwrap();
    assert!(nexus.send_ok(sqlite).await.contains("42"));
    let sqlite = Request::post(nexus.url("/p3/sqlite-probe?db=default"))
        .header("x-sqlite-params", "[]")
        .body(Full::from("SELECT 'p3' AS name"))
        .unwrap();
    assert!(nexus.send_ok(sqlite).await.contains("p3"));
    // Outbound Redis and MQTT, both versions.
    for probe in ["/redis-probe", "/p3/redis-probe"] {
        let incr = query(&[
            ("address", "redis://127.0.0.1:6379"),
            ("op", "incr"),
            ("key", &format!("nexus-up-test:{unique}")),
        ]);
        nexus.ok(&format!("{probe}?{incr}")).await;
        let address = format!("mqtt://127.0.0.1:1883?client_id=nexus-up-{unique}");
        let publish = query(&[
            ("address", &address),
            ("topic", "nexus/up"),
            ("payload", "hi"),
            ("qos", "1"),
        ]);
        let mqtt_probe = probe.replace("redis", "mqtt");
        assert_eq!(
            nexus.ok(&format!("{mqtt_probe}?{publish}")).await,
            "published"
        );
    }
    let get = query(&[
        ("address", "redis://127.0.0.1:6379"),
        ("op", "get"),
        ("key", &format!("nexus-up-test:{unique}")),
    ]);
    assert_eq!(nexus.ok(&format!("/redis-probe?{get}")).await, "binary:32");
    // Outbound Postgres and MySQL, every version.
    for (probe, db, address, sql) in [
        (
            "/rdbms-probe",
            "pg",
            "postgres://postgres@127.0.0.1:5432/test",
            "SELECT 1::int4 AS one",
        ),
        (
            "/rdbms-probe",
            "pg3",
            "postgres://postgres@127.0.0.1:5432/test",
            "SELECT 1::int4 AS one",
        ),
        (
            "/rdbms-probe",
            "pg4",
            "postgres://postgres@127.0.0.1:5432/test",
            "SELECT 1::int4 AS one",
        ),
        (
            "/p3/rdbms-probe",
            "pg",
            "postgres://postgres@127.0.0.1:5432/test",
            "SELECT 1::int4 AS one",
        ),
        (
            "/rdbms-probe",
            "mysql",
            "mysql://root@127.0.0.1:3306/test",
            "SELECT CAST(1 AS SIGNED INT) AS one",
        ),
        (
            "/p3/rdbms-probe",
            "mysql",
            "mysql://root@127.0.0.1:3306/test",
            "SELECT 1 AS one",
        ),
    ] {
        let rows = nexus
            .ok(&format!(
                "{probe}?{}",
                query(&[("db", db), ("address", address), ("sql", sql)])
            ))
            .await;
        assert!(
            rows.starts_with("one:") && rows.contains("(1)"),
            "{probe} {db}: {rows}"
        );
    }

    nexus.stop().await;

    // A restart keeps the account, the project, the version and the data.
    let nexus = NexusUp::start(state.path(), echo_port).await;
    assert!(
        nexus
            .printed
            .iter()
            .any(|line| line.contains("version 1 is live (unchanged")),
        "{:?}",
        nexus.printed
    );
    assert_eq!(nexus.ok("/counter").await, "3");
    nexus.stop().await;
}

/// `nexus serve`: one app straight from the runtime, at the root, as `spin up` serves it.
#[tokio::test]
async fn nexus_serve_serves_one_app_at_the_root() {
    let state = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_nexus"))
        .arg("serve")
        .arg("-f")
        .arg(examples_manifest())
        .args(["--listen", "127.0.0.1:0", "--kv", "memory", "--state-dir"])
        .arg(state.path())
        .env("SPIN_VARIABLE_TCP_ECHO_PORT", "1")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("nexus serve did not start");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(base) = line.strip_prefix("Serving ") {
                return base.to_owned();
            }
        }
        panic!("nexus serve exited without serving");
    })
    .await
    .expect("nexus serve did not print its address within 120 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let hello = HttpClient::default().get(&format!("{base}/hello")).await;
    assert_eq!(hello.status, StatusCode::OK, "{}", hello.text());
    assert_eq!(hello.text(), "Hello, Nexus!");
    assert!(!hello.headers.contains_key("nexus-version"));
}
