//! What the command-line tests share: the embedded coordinator as a process, and `nexus`
//! runs with a config directory of their own.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::process::{Child, Command};

use super::processes;

/// The embedded coordinator on SQLite; its base URL.
pub async fn start(state: &Path) -> (Child, String) {
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
    let base = processes::announced_address(&mut child, "Coordinator listening on ").await;
    (child, base)
}

/// The outcome of one `nexus` run: success, stdout, stderr.
pub struct Ran {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `nexus args…` against `base` with the config directory `config`, `stdin` on its
/// standard input.
pub async fn nexus(base: &str, config: &Path, args: &[&str], stdin: &str) -> Ran {
    let mut child = Command::new(env!("CARGO_BIN_EXE_nexus"))
        .args(args)
        .args(["--coordinator", base])
        .env("NEXUS_CONFIG_DIR", config)
        .env_remove("NEXUS_TOKEN")
        .env_remove("NEXUS_PROJECT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("nexus did not finish")
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Ran {
        ok: output.status.success(),
        stdout: text(&output.stdout),
        stderr: text(&output.stderr),
    }
}
