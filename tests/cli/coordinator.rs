//! `nexus coordinator`, the real binary: it migrates its database, serves the API, shuts down
//! cleanly on SIGTERM, and tokens it issued still work after a restart (its signing key is
//! kept, owner-only, in a file).
#![expect(clippy::unwrap_used, reason = "a test reports failures by panicking")]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_tests::HttpClient;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

async fn start(state: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nexus"))
        .args(["coordinator", "--listen", "127.0.0.1:0", "--database-url"])
        .arg(format!("sqlite://{}", state.join("nexus.db").display()))
        .arg("--state-dir")
        .arg(state)
        .arg("--signing-key-file")
        .arg(state.join("signing-key"))
        .env_remove("DATABASE_URL")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let base = line
        .strip_prefix("Coordinator listening on ")
        .unwrap()
        .to_owned();
    (child, base)
}

async fn stop(mut child: Child) {
    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exited with {status}");
}

fn post(url: String, body: &str) -> Request<Full<bytes::Bytes>> {
    Request::post(url)
        .header("content-type", "application/json")
        .body(Full::from(body.to_owned()))
        .unwrap()
}

#[tokio::test]
async fn the_coordinator_serves_its_api_and_keeps_tokens_valid_across_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let client = HttpClient::default();
    let (child, base) = start(state.path()).await;
    let ready = client.get(&format!("{base}/readyz")).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text());
    let registered = client
        .send(post(
            format!("{base}/v1/auth/register"),
            r#"{"email":"ops@example.com","password":"correct horse"}"#,
        ))
        .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text()
    );
    let login = client
        .send(post(
            format!("{base}/v1/auth/login"),
            r#"{"email":"ops@example.com","password":"correct horse"}"#,
        ))
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let token = login.json()["access_token"].as_str().unwrap().to_owned();
    stop(child).await;

    let mode = std::fs::metadata(state.path().join("signing-key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the signing key must be owner-only");

    let (child, base) = start(state.path()).await;
    let sessions = Request::get(format!("{base}/v1/sessions"))
        .header("authorization", format!("Bearer {token}"))
        .body(Full::default())
        .unwrap();
    let sessions = client.send(sessions).await;
    assert_eq!(sessions.status, StatusCode::OK, "{}", sessions.text());
    assert_eq!(sessions.json().as_array().unwrap().len(), 1);
    stop(child).await;
}

/// `nexus agents`, against the real coordinator: creates, lists, suspends and deletes a
/// project's agents, and says what the coordinator refused.
#[tokio::test]
async fn nexus_agents_manages_a_projects_agents() {
    let state = tempfile::tempdir().unwrap();
    let client = HttpClient::default();
    let (child, base) = start(state.path()).await;
    let account = r#"{"email":"dev@example.com","password":"correct horse"}"#;
    client
        .send(post(format!("{base}/v1/auth/register"), account))
        .await;
    let login = client
        .send(post(format!("{base}/v1/auth/login"), account))
        .await;
    let token = login.json()["access_token"].as_str().unwrap().to_owned();
    let bearer = format!("Bearer {token}");
    let mut project = post(format!("{base}/v1/projects"), r#"{"name":"lab"}"#);
    project
        .headers_mut()
        .insert("authorization", bearer.parse().unwrap());
    assert_eq!(client.send(project).await.status, StatusCode::CREATED);
    let deploy = Request::post(format!("{base}/v1/projects/lab/functions/counter/versions"))
        .header("authorization", &bearer)
        .header("content-type", "application/wasm")
        .body(Full::from(
            std::fs::read(nexus_tests::component_path("hello")).unwrap(),
        ))
        .unwrap();
    assert_eq!(client.send(deploy).await.status, StatusCode::CREATED);

    let agents = |args: &[&str]| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_nexus"));
        command
            .args(["agents", "--coordinator", &base, "--project", "lab"])
            .args(args)
            .env("NEXUS_TOKEN", &token);
        async move {
            let output = command.output().await.unwrap();
            let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
            (
                output.status.success(),
                text(&output.stdout),
                text(&output.stderr),
            )
        }
    };
    let (ok, created, error) =
        agents(&["--json", "create", "alice", "--function", "counter"]).await;
    assert!(ok, "{error}");
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["state"], "active");

    let (ok, table, error) = agents(&[]).await;
    assert!(ok, "{error}");
    let row = table.lines().find(|line| line.starts_with(&id)).unwrap();
    assert!(row.contains("alice") && row.contains("active"), "{table}");

    let (ok, suspended, error) = agents(&["suspend", &id]).await;
    assert!(ok, "{error}");
    assert!(suspended.contains("suspended"), "{suspended}");

    let (ok, refused, error) = agents(&["create", "bob", "--function", "missing"]).await;
    assert!(!ok, "{refused}");
    assert!(error.contains("404"), "{error}");

    let (ok, _, error) = agents(&["delete", &id]).await;
    assert!(ok, "{error}");
    let (ok, listed, error) = agents(&["--json", "list"]).await;
    assert!(ok, "{error}");
    assert_eq!(listed.trim(), "[]");
    stop(child).await;
}
