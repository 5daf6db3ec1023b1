//! `nexus up -f functions/spin.toml`, the real binary: the example app, which uses every Spin
//! host interface SirsiNexus provides, is served as `spin up` would serve it, each interface is
//! exercised once against the real services on this machine, and SIGTERM shuts it down
//! cleanly.
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

/// The running binary and the base URL it printed.
struct NexusUp {
    child: Child,
    base: String,
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
        let read_base = async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(base) = line.strip_prefix("Serving ") {
                    return base.to_owned();
                }
            }
            panic!("nexus up exited without serving");
        };
        let base = tokio::time::timeout(Duration::from_secs(120), read_base)
            .await
            .expect("nexus up did not print its address within 120 s");
        // Keep draining the route list so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            base,
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
    let mut nexus = NexusUp::start(state.path(), echo_port).await;
    let unique = uuid::Uuid::new_v4().simple().to_string();

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

    // SIGTERM: in-flight work finishes, then the process exits 0.
    let pid = nexus.child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), nexus.child.wait())
        .await
        .expect("nexus up did not exit within 30 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "nexus up exited with {status}");
}
