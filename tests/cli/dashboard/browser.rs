//! Headless Chromium (Debian's `chromium`) driven over the Chrome DevTools Protocol: one page,
//! navigated, read and screenshotted by the test. Conditions are awaited in the page itself,
//! by a promise that settles when the condition holds (or after a timeout).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use nexus_tests::HttpClient;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

const STARTUP: Duration = Duration::from_secs(60);
/// How long the page may take to show what a step waits for.
const WAIT_MS: u64 = 30_000;

pub struct Browser {
    _child: Child,
    _profile: tempfile::TempDir,
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_id: u64,
}

/// Debian's Chromium (`make test` installs the package).
fn chromium() -> PathBuf {
    let path = PathBuf::from("/usr/bin/chromium");
    assert!(
        path.exists(),
        "{} is missing: install Debian's `chromium` (make test does)",
        path.display()
    );
    path
}

impl Browser {
    /// A headless browser with one blank page, and its DevTools connection.
    pub async fn start() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium())
            .args([
                "--headless=new",
                // Root in a container: Chromium's sandbox needs user namespaces it may not have.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,960",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let browser_socket = tokio::time::timeout(STARTUP, async {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .unwrap()
                    .expect("Chromium exited before it listened");
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return url.to_owned();
                }
            }
        })
        .await
        .expect("Chromium did not start");
        // Its further output is read, so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let http = browser_socket
            .strip_prefix("ws://")
            .and_then(|rest| rest.split_once('/'))
            .map(|(host, _)| format!("http://{host}"))
            .unwrap();
        let targets = HttpClient::default()
            .get(&format!("{http}/json/list"))
            .await
            .json();
        let page = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|target| target["type"] == "page")
            .and_then(|target| target["webSocketDebuggerUrl"].as_str())
            .unwrap_or_else(|| panic!("no page among {targets}"))
            .to_owned();
        let (socket, _) = tokio_tungstenite::connect_async(page).await.unwrap();
        Self {
            _child: child,
            _profile: profile,
            socket,
            next_id: 0,
        }
    }

    /// Calls DevTools `method` on the page; its result.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let request = json!({ "id": id, "method": method, "params": params });
        self.socket
            .send(Message::text(request.to_string()))
            .await
            .unwrap();
        loop {
            let frame =
                tokio::time::timeout(Duration::from_millis(WAIT_MS + 10_000), self.socket.next())
                    .await
                    .unwrap_or_else(|_| panic!("{method} was never answered"))
                    .expect("the DevTools connection closed")
                    .unwrap();
            let Message::Text(text) = frame else { continue };
            let message: Value = serde_json::from_str(&text).unwrap();
            // Events (no id) and answers to other calls are not this call's.
            if message["id"] != id {
                continue;
            }
            assert!(message["error"].is_null(), "{method}: {}", message["error"]);
            return message["result"].clone();
        }
    }

    /// Opens `url`; returns once the page and its scripts have loaded.
    pub async fn navigate(&mut self, url: &str) {
        let navigated = self.call("Page.navigate", json!({ "url": url })).await;
        assert!(navigated["errorText"].is_null(), "{navigated}");
        let loaded = format!(
            r#"new Promise((resolve) => {{
                const done = () => location.href === {url} && document.readyState === 'complete';
                const look = () => done() ? resolve(true) : setTimeout(look, 10);
                look();
            }})"#,
            url = json!(url),
        );
        self.evaluate(&loaded).await;
    }

    /// The value of the JavaScript `expression` (a promise's, once it settles).
    pub async fn evaluate(&mut self, expression: &str) -> Value {
        let evaluated = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        assert!(
            evaluated["exceptionDetails"].is_null(),
            "{expression}: {}",
            evaluated["exceptionDetails"]
        );
        evaluated["result"]["value"].clone()
    }

    /// The text of the first element matching `selector` whose text contains `text`, once
    /// there is one.
    pub async fn wait_for(&mut self, selector: &str, text: &str) -> String {
        let script = format!(
            r#"new Promise((resolve, reject) => {{
                const selector = {selector}, text = {text};
                const found = () => [...document.querySelectorAll(selector)]
                    .find((element) => element.textContent.includes(text));
                const started = Date.now();
                const look = () => {{
                    const element = found();
                    if (element) return resolve(element.textContent);
                    if (Date.now() - started > {WAIT_MS}) {{
                        return reject(new Error(`nothing matched ${{selector}} with ${{text}}; the page: ${{document.body.innerText}}`));
                    }}
                    requestAnimationFrame(look);
                }};
                look();
            }})"#,
            selector = json!(selector),
            text = json!(text),
        );
        self.evaluate(&script).await.as_str().unwrap().to_owned()
    }

    /// Saves a PNG of the page at `path`; its size in bytes.
    pub async fn screenshot(&mut self, path: &Path) -> usize {
        use base64::Engine as _;
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({ "format": "png", "captureBeyondViewport": true }),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
        std::fs::write(path, &png).unwrap();
        png.len()
    }
}
