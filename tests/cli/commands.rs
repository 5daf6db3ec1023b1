//! The `nexus` command line against a real coordinator (`nexus coordinator`, runtime in
//! process): log in, projects, deploy a Spin app, invoke it now and queued, read its output
//! with `logs` and the invocation record, completions, and errors that say what to do. The
//! test itself calls the coordinator through the same typed client the commands use.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test reports failures by panicking"
)]

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use futures::StreamExt as _;
use nexus_client::{Client, EventFilter, EventFrame, EventKind};
use tokio::process::Command;

#[path = "cluster/processes.rs"]
#[allow(dead_code, reason = "the cluster tests use the rest")]
mod processes;

#[path = "commands/support.rs"]
mod support;

use support::{nexus, start};

const LOGGER_APP: &str = r#"spin_manifest_version = 2

[application]
name = "Log Book"

[[trigger.http]]
route = "/..."
component = "logger"

[component.logger]
source = "logger.wasm"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_logs_in_deploys_invokes_and_reads_what_the_function_printed() {
    let state = tempfile::tempdir().unwrap();
    let (_coordinator, base) = start(&state.path().join("coordinator")).await;
    let config = state.path().join("config");
    let client = Client::new(&base).unwrap();
    client
        .register("dev@example.com", "correct horse", None)
        .await
        .unwrap();

    let login = ["login", "--email", "dev@example.com", "--password-stdin"];
    let ran = nexus(&base, &config, &login, "correct horse\n").await;
    assert!(ran.ok, "{}", ran.stderr);
    let credentials = config.join("credentials.json");
    let mode = std::fs::metadata(&credentials)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{credentials:?} is readable by others");

    let ran = nexus(&base, &config, &["projects", "create", "shop"], "").await;
    assert!(ran.ok, "{}", ran.stderr);
    let ran = nexus(&base, &config, &["projects", "--json"], "").await;
    let projects: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(projects[0]["name"], "shop", "{projects}");
    assert_eq!(projects[0]["role"], "owner");

    let app = state.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(app.join("spin.toml"), LOGGER_APP).unwrap();
    std::fs::copy(
        nexus_tests::component_path("logger"),
        app.join("logger.wasm"),
    )
    .unwrap();
    let manifest = app.join("spin.toml");
    let deploy = [
        "deploy",
        "-f",
        manifest.to_str().unwrap(),
        "--project",
        "shop",
    ];
    let ran = nexus(&base, &config, &deploy, "").await;
    assert!(ran.ok, "{}", ran.stderr);
    assert!(
        ran.stdout
            .contains("Deployed shop/log-book version 1, now live"),
        "{}",
        ran.stdout
    );

    let invoke = [
        "invoke",
        "log-book",
        "/?out=hello+from+the+cli",
        "--project",
        "shop",
    ];
    let ran = nexus(&base, &config, &invoke, "").await;
    assert!(ran.ok, "{}", ran.stderr);
    assert_eq!(ran.stdout, "logged");
    let ran = nexus(
        &base,
        &config,
        &["logs", "--project", "shop", "log-book"],
        "",
    )
    .await;
    assert!(ran.ok, "{}", ran.stderr);
    assert!(
        ran.stdout.contains("log-book stdout hello from the cli"),
        "{}",
        ran.stdout
    );
    assert!(ran.stdout.contains("log-book 200"), "{}", ran.stdout);

    // Queued: the test waits for its end on the event stream, through the same client.
    let token = client
        .login("dev@example.com", "correct horse")
        .await
        .unwrap()
        .access_token;
    let watcher = client.clone().with_token(token);
    let filter = EventFilter {
        types: vec!["invocation_finished".to_owned()],
        ..EventFilter::default()
    };
    let mut events = watcher.events("shop", &filter).await.unwrap();
    let queue = [
        "invoke",
        "log-book",
        "/?err=queued",
        "--async",
        "--json",
        "--project",
        "shop",
    ];
    let ran = nexus(&base, &config, &queue, "").await;
    assert!(ran.ok, "{}", ran.stderr);
    let accepted: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    let id = accepted["id"].as_str().unwrap().to_owned();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Some(Ok(EventFrame::Event(event))) = events.next().await
                && let EventKind::InvocationFinished(finished) = event.kind
                && finished.invocation.as_deref() == Some(id.as_str())
            {
                return;
            }
        }
    })
    .await
    .expect("the queued invocation did not finish");
    let get = ["invocations", "get", &id, "--json", "--project", "shop"];
    let ran = nexus(&base, &config, &get, "").await;
    assert!(ran.ok, "{}", ran.stderr);
    let record: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["attempt_log"][0]["stderr"], "queued\n", "{record}");
    let ran = nexus(&base, &config, &["invocations", "--project", "shop"], "").await;
    assert!(
        ran.stdout
            .lines()
            .any(|line| line.starts_with(&id) && line.contains("succeeded"))
    );

    // Your own data, then your account erased.
    let ran = nexus(&base, &config, &["account", "export"], "").await;
    let exported: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(exported["user"]["email"], "dev@example.com", "{exported}");
    let ran = nexus(&base, &config, &["account", "delete"], "").await;
    assert!(!ran.ok && ran.stderr.contains("--yes"), "{}", ran.stderr);
    let ran = nexus(&base, &config, &["projects", "delete", "shop"], "").await;
    assert!(ran.ok, "{}", ran.stderr);
    let ran = nexus(&base, &config, &["account", "delete", "--yes"], "").await;
    assert!(ran.ok, "{}", ran.stderr);
    let ran = nexus(&base, &config, &["projects"], "").await;
    assert!(
        !ran.ok && ran.stderr.contains("not logged in"),
        "{}",
        ran.stderr
    );

    let completions = Command::new(env!("CARGO_BIN_EXE_nexus"))
        .args(["completions", "bash"])
        .output()
        .await
        .unwrap();
    assert!(completions.status.success());
    let script = String::from_utf8(completions.stdout).unwrap();
    assert!(
        script.contains("_nexus()") && script.contains("invocations"),
        "{script}"
    );
}

#[tokio::test]
async fn errors_say_what_to_do_next() {
    let state = tempfile::tempdir().unwrap();
    let config = state.path().join("config");
    // Nothing listens on port 9 of this machine.
    let ran = nexus("http://127.0.0.1:9", &config, &["projects"], "").await;
    assert!(!ran.ok);
    assert!(
        ran.stderr.contains("not logged in to http://127.0.0.1:9"),
        "{}",
        ran.stderr
    );
    assert!(ran.stderr.contains("hint: nexus login"), "{}", ran.stderr);

    let login = ["login", "--email", "a@example.com", "--password-stdin"];
    let ran = nexus("http://127.0.0.1:9", &config, &login, "pw\n").await;
    assert!(!ran.ok);
    assert!(
        ran.stderr.contains("hint: is the coordinator running?"),
        "{}",
        ran.stderr
    );

    let ran = nexus("http://127.0.0.1:9", &config, &["invoke", "f"], "").await;
    assert!(!ran.ok);
    assert!(ran.stderr.contains("no project"), "{}", ran.stderr);
}
