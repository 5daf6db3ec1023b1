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
