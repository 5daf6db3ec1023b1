//! A client of the coordinator's API, for the benches that drive it over HTTP.

use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_tests::{COUNTER_APP, HttpClient, TestResponse, app_tar};
use serde_json::json;

/// The API at `base`, as the user whose access token is `token`.
pub struct Client {
    pub base: String,
    pub http: HttpClient,
    pub token: String,
}

impl Client {
    /// Signs up, makes project `lab` and deploys `counter` at every path.
    pub async fn signed_up(mut self) -> Self {
        let account = json!({"email": "bench@example.com", "password": "correct horse"});
        let registered = self.post("/v1/auth/register", account.to_string()).await;
        assert_eq!(registered.status, StatusCode::CREATED);
        let login = self.post("/v1/auth/login", account.to_string()).await;
        self.token = login.json()["access_token"].as_str().unwrap().to_owned();
        let project = self
            .post("/v1/projects", json!({"name": "lab"}).to_string())
            .await;
        assert_eq!(project.status, StatusCode::CREATED);
        let upload = app_tar(COUNTER_APP, &[("counter.wasm", "counter")]);
        let request = Request::post(format!(
            "{}/v1/projects/lab/functions/counter/versions",
            self.base
        ))
        .header("content-type", "application/x-tar")
        .header("authorization", format!("Bearer {}", self.token))
        .body(Full::from(upload))
        .unwrap();
        let deployed = self.http.send(request).await;
        assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
        self
    }

    pub async fn post(&self, path: &str, body: String) -> TestResponse {
        let request = Request::post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {}", self.token))
            .body(Full::from(body))
            .unwrap();
        self.http.send(request).await
    }

    pub async fn get(&self, path: &str) -> TestResponse {
        let request = Request::get(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {}", self.token))
            .body(Full::default())
            .unwrap();
        self.http.send(request).await
    }
}
