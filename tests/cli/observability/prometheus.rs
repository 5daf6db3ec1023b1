//! A real Prometheus server (Debian's `prometheus`) for the tests, run with
//! `infra/prometheus/local.yml` and the targets it is given.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nexus_tests::HttpClient;
use tokio::process::{Child, Command};

const WAIT: Duration = Duration::from_secs(60);
/// How often a query is asked again until the scrapes have brought its answer.
const POLL: Duration = Duration::from_millis(250);

pub struct Prometheus {
    _child: Child,
    base: String,
    client: HttpClient,
}

impl Prometheus {
    /// Prometheus scraping `targets` (base URLs), its files under `dir`; answers once ready.
    pub async fn start(dir: &Path, targets: &[&str]) -> Self {
        let home = dir.join("prometheus");
        std::fs::create_dir_all(home.join("targets")).unwrap();
        let config = home.join("local.yml");
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/prometheus/local.yml"),
            &config,
        )
        .unwrap();
        let hosts: Vec<&str> = targets
            .iter()
            .map(|base| base.strip_prefix("http://").unwrap())
            .collect();
        std::fs::write(
            home.join("targets/nexus.json"),
            serde_json::json!([{ "targets": hosts }]).to_string(),
        )
        .unwrap();
        // Prometheus cannot listen on port 0 and say which port it got: take a free one.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                home.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let prometheus = Self {
            _child: child,
            base: format!("http://127.0.0.1:{port}"),
            client: HttpClient::default(),
        };
        let ready = format!("{}/-/ready", prometheus.base);
        tokio::time::timeout(WAIT, async {
            loop {
                let request = http::Request::get(&ready)
                    .body(http_body_util::Full::default())
                    .unwrap();
                if let Ok(response) = prometheus.client.try_send(request).await
                    && response.status.is_success()
                {
                    return;
                }
                tokio::time::sleep(POLL).await;
            }
        })
        .await
        .expect("Prometheus did not become ready");
        prometheus
    }

    /// The value of the instant query `query` (one series), once Prometheus has one.
    pub async fn value_of(&self, query: &str) -> f64 {
        let url = format!(
            "{}/api/v1/query?query={}",
            self.base,
            url::form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>()
        );
        tokio::time::timeout(WAIT, async {
            loop {
                let answer = self.client.get(&url).await.json();
                assert_eq!(answer["status"], "success", "{answer}");
                if let Some(value) = answer["data"]["result"][0]["value"][1].as_str() {
                    return value.parse().unwrap();
                }
                tokio::time::sleep(POLL).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("Prometheus never had a value for {query}"))
    }
}

/// Debian's Prometheus (`make test` installs the package).
fn binary() -> &'static str {
    let path = "/usr/bin/prometheus";
    assert!(
        Path::new(path).exists(),
        "{path} is missing: install Debian's `prometheus` (make test does)"
    );
    path
}
