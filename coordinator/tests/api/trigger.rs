//! The HTTP trigger: `/{project}/{function}[@alias]/…` through alias → version → the in-process
//! dispatch → the runtime, with real components.

use std::time::Duration;

use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_coordinator::trigger::RESOLUTION_TTL;
use nexus_runtime::Tier;
use nexus_tests::{COUNTER_APP, TestResponse, app_tar};
use serde_json::{Value, json};

use crate::harness::{Api, assert_error, component};

pub(crate) struct Project<'a> {
    pub(crate) api: &'a Api,
    pub(crate) token: String,
    pub(crate) name: &'static str,
}

/// A platform with a project `shop` whose function `function` runs `component_name`.
pub(crate) async fn shop_with(function: &str, component_name: &str) -> (Api, String) {
    let api = Api::start().await;
    let token = Project::create(&api, "shop").await.token;
    Project {
        api: &api,
        token: token.clone(),
        name: "shop",
    }
    .deploy(function, component_name, "")
    .await;
    (api, token)
}

impl<'a> Project<'a> {
    /// The project `shop` on `api`, as its owner.
    pub(crate) fn shop(api: &'a Api, token: &str) -> Self {
        Self {
            api,
            token: token.to_owned(),
            name: "shop",
        }
    }

    /// A project `name` owned by a fresh user `{name}@example.com`.
    pub(crate) async fn create(api: &'a Api, name: &'static str) -> Self {
        let token = api.user(&format!("{name}@example.com")).await;
        let created = api
            .call(
                "POST",
                "/v1/projects",
                Some(&token),
                Some(json!({ "name": name })),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        Self { api, token, name }
    }

    /// Deploys one component as the next version of `function`; returns the version.
    pub(crate) async fn deploy(&self, function: &str, component_name: &str, query: &str) -> i64 {
        self.deploy_bytes(
            function,
            "application/wasm",
            component(component_name),
            query,
        )
        .await
    }

    async fn deploy_bytes(
        &self,
        function: &str,
        content_type: &str,
        body: Vec<u8>,
        query: &str,
    ) -> i64 {
        let deployed = self
            .api
            .send_bytes(
                "POST",
                &format!(
                    "/v1/projects/{}/functions/{function}/versions{query}",
                    self.name
                ),
                &self.token,
                content_type,
                body,
            )
            .await;
        assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
        deployed.json()["version"].as_i64().unwrap()
    }

    pub(crate) async fn manage(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> TestResponse {
        let path = format!("/v1/projects/{}/functions/{path}", self.name);
        let answer = self.api.call(method, &path, Some(&self.token), body).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        answer
    }
}

impl Api {
    pub(crate) async fn invoke(&self, path: &str) -> TestResponse {
        self.call("GET", path, None, None).await
    }
}

pub(crate) fn served_version(response: &TestResponse) -> i64 {
    response.headers["nexus-version"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_deployed_function_answers_under_its_project_and_name() {
    let (api, _) = shop_with("hello", "hello").await;

    for path in ["/shop/hello", "/shop/hello/", "/shop/hello/any/path?x=1"] {
        let answer = api.invoke(path).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text());
        assert_eq!(answer.text(), "Hello, Nexus!");
        assert_eq!(served_version(&answer), 1);
        assert!(answer.headers.contains_key("x-request-id"));
    }
}

#[tokio::test]
async fn the_app_sees_itself_at_the_root_and_is_told_its_prefix() {
    let (api, _) = shop_with("echo", "headers").await;

    let request = Request::get(format!("{}/shop/echo/a/b?x=1", api.base))
        .header("x-forwarded-prefix", "/forged")
        .header("spin-path-info", "/forged")
        .body(Full::default())
        .unwrap();
    let answer = api.client.send(request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let seen = answer.json();
    let uri = seen["uri"].as_str().unwrap();
    assert!(
        uri.ends_with("/a/b?x=1") && !uri.contains("/shop/"),
        "{uri}"
    );
    let headers = &seen["headers"];
    assert_eq!(headers["x-forwarded-prefix"], "/shop/echo");
    assert_eq!(headers["spin-path-info"], "/a/b");
    assert_eq!(headers["spin-matched-route"], "/...");
    assert_eq!(
        headers["spin-full-url"],
        format!("{}/shop/echo/a/b?x=1", api.base)
    );
    let names: Vec<&str> = seen["header_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[0].as_str().unwrap())
        .collect();
    assert_eq!(
        names
            .iter()
            .filter(|name| **name == "x-forwarded-prefix")
            .count(),
        1,
        "{names:?}"
    );
}

#[tokio::test]
async fn unknown_names_are_404_in_the_one_error_shape() {
    let (api, _) = shop_with("hello", "hello").await;

    for path in [
        "/nowhere/hello",
        "/shop/nothing",
        "/shop/hello@no-such-alias/",
        "/Shop/hello",
        "/shop/%68ello",
    ] {
        let answer = api.invoke(path).await;
        assert_error(&answer, StatusCode::NOT_FOUND, "not_found");
    }
}

#[tokio::test]
async fn alias_moves_and_rollbacks_take_effect_on_the_next_request() {
    let (api, token) = shop_with("greet", "hello").await;
    let project = Project::shop(&api, &token);
    assert_eq!(served_version(&api.invoke("/shop/greet").await), 1);

    project.deploy("greet", "headers", "").await;
    let answer = api.invoke("/shop/greet/x").await;
    assert_eq!(served_version(&answer), 2);
    assert!(answer.json()["uri"].as_str().unwrap().ends_with("/x"));

    project
        .manage("POST", "greet/aliases/live/rollback", None)
        .await;
    let answer = api.invoke("/shop/greet/x").await;
    assert_eq!(served_version(&answer), 1);
    assert_eq!(answer.text(), "Hello, Nexus!");
}

#[tokio::test]
async fn other_aliases_are_reached_by_qualifier() {
    let (api, token) = shop_with("greet", "hello").await;
    let project = Project::shop(&api, &token);
    project.deploy("greet", "headers", "?alias=staging").await;

    assert_eq!(served_version(&api.invoke("/shop/greet").await), 1);
    assert_eq!(served_version(&api.invoke("/shop/greet@live").await), 1);
    let staging = api.invoke("/shop/greet@staging/y").await;
    assert_eq!(served_version(&staging), 2);
    assert_eq!(
        staging.json()["headers"]["x-forwarded-prefix"],
        "/shop/greet@staging"
    );
}

#[tokio::test]
async fn canary_weights_split_requests_between_versions() {
    let (api, token) = shop_with("greet", "hello").await;
    let project = Project::shop(&api, &token);
    project.deploy("greet", "hello", "?alias=none").await;

    let served = |weight: i64| {
        let (api, project) = (&api, &project);
        async move {
            project
                .manage(
                    "PUT",
                    "greet/aliases/live",
                    Some(json!({"version": 1, "canary": {"version": 2, "weight": weight}})),
                )
                .await;
            let mut counts = [0u32; 2];
            for _ in 0..200 {
                let version = served_version(&api.invoke("/shop/greet").await);
                counts[usize::try_from(version - 1).unwrap()] += 1;
            }
            counts
        }
    };
    assert_eq!(served(0).await, [200, 0]);
    assert_eq!(served(100).await, [0, 200]);
    // Each side missing from 200 fair draws has odds of 2^-200.
    let split = served(50).await;
    assert!(split[0] > 0 && split[1] > 0, "{split:?}");
}

#[tokio::test]
async fn each_project_has_its_own_key_value_stores() {
    let api = Api::start().await;
    let shop = Project::create(&api, "shop").await;
    let blog = Project::create(&api, "blog").await;
    let tar = || app_tar(COUNTER_APP, &[("counter.wasm", "counter")]);
    shop.deploy_bytes("counter", "application/x-tar", tar(), "")
        .await;
    blog.deploy_bytes("counter", "application/x-tar", tar(), "")
        .await;
    shop.deploy_bytes("other", "application/x-tar", tar(), "")
        .await;

    let count = |path: &'static str| {
        let api = &api;
        async move {
            let answer = api.invoke(path).await;
            assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text());
            answer.text()
        }
    };
    assert_eq!(count("/shop/counter/count").await, "1");
    assert_eq!(count("/shop/counter/count").await, "2");
    assert_eq!(count("/blog/counter/count").await, "1");
    // Functions of one project share its stores.
    assert_eq!(count("/shop/other/count").await, "3");
}

#[tokio::test]
async fn bodies_pass_beyond_the_api_limit_up_to_the_runtime_limit() {
    let (api, _) = shop_with("echo", "headers").await;

    let body = vec![b'x'; 1024 * 1024];
    let answer = api
        .send_bytes("POST", "/shop/echo/upload", "unused", "text/plain", body)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["body_len"], 1024 * 1024);
}

#[tokio::test]
async fn guest_failures_keep_the_runtime_codes_in_the_one_error_shape() {
    let (api, _) = shop_with("trap", "bad-trap").await;

    let answer = api.invoke("/shop/trap").await;
    assert_error(&answer, StatusCode::INTERNAL_SERVER_ERROR, "guest_trap");
}

#[tokio::test]
async fn invocations_are_not_audited_and_a_deleted_project_stops_serving() {
    let (api, token) = shop_with("echo", "headers").await;
    let project = Project::shop(&api, &token);
    let audited = |api: &Api| {
        let store = std::sync::Arc::clone(&api.store);
        async move {
            store
                .with_retry(|tx| Box::pin(async move { tx.list_audit(0, 1000).await }))
                .await
                .unwrap()
                .len()
        }
    };
    let before = audited(&api).await;
    for _ in 0..3 {
        let answer = api
            .send_bytes("POST", "/shop/echo", "unused", "text/plain", b"hi".to_vec())
            .await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    assert_eq!(audited(&api).await, before);

    let deleted = api
        .call("DELETE", "/v1/projects/shop", Some(&project.token), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    assert_error(
        &api.invoke("/shop/echo").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn project_names_the_coordinator_serves_itself_are_reserved() {
    let api = Api::start().await;
    let token = api.user("someone@example.com").await;
    for name in ["v1", "v2", "healthz", "dashboard", "metrics"] {
        let created = api
            .call(
                "POST",
                "/v1/projects",
                Some(&token),
                Some(json!({ "name": name })),
            )
            .await;
        assert_error(&created, StatusCode::CONFLICT, "conflict");
    }
}

#[tokio::test]
async fn the_trigger_path_runs_on_postgres() {
    let api = Api::start_on_postgres().await;
    let project = Project::create(&api, "shop").await;
    project.deploy("greet", "hello", "").await;
    project.deploy("greet", "headers", "").await;
    assert_eq!(served_version(&api.invoke("/shop/greet/").await), 2);

    project
        .manage("POST", "greet/aliases/live/rollback", None)
        .await;
    let answer = api.invoke("/shop/greet/").await;
    assert_eq!(served_version(&answer), 1);
    assert_eq!(answer.text(), "Hello, Nexus!");
    assert_error(
        &api.invoke("/shop/missing/").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

/// Past the cache's TTL a name is looked up again in the background: requests go on being
/// answered from the cache, even when the database does not answer at all.
#[tokio::test]
async fn the_trigger_keeps_answering_while_the_database_is_unreachable() {
    let api = Api::start_on_postgres().await;
    let project = Project::create(&api, "shop").await;
    project.deploy("greet", "hello", "").await;
    assert_eq!(api.invoke("/shop/greet/").await.status, StatusCode::OK);

    api.database.as_ref().unwrap().refuse_connections().await;
    // Waits out the TTL: a timer, not synchronisation.
    tokio::time::sleep(RESOLUTION_TTL + Duration::from_millis(100)).await;
    for _ in 0..20 {
        let answer = api.invoke("/shop/greet/").await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(answer.text(), "Hello, Nexus!");
    }
}

#[tokio::test]
async fn a_new_component_answers_on_baseline_code_until_optimized_code_replaces_it() {
    let api = Api::start().await;
    let project = Project::create(&api, "shop").await;
    project.deploy("greet", "hello", "").await;
    let digest = nexus_proto::Digest::of(&component("hello"));
    let compiled = api.platform.host().runtime().component(&digest).unwrap();
    // Cranelift takes over a hundred milliseconds for this component; the deploy answered as
    // soon as Winch's code was ready.
    assert_eq!(compiled.current().tier(), Tier::Baseline);
    let first = api.invoke("/shop/greet").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.text(), "Hello, Nexus!");

    compiled.optimized().await;
    assert_eq!(compiled.tier(), Tier::Optimized);
    assert_eq!(compiled.current().tier(), Tier::Optimized);
    let later = api.invoke("/shop/greet").await;
    assert_eq!(later.status, StatusCode::OK, "{}", later.text());
    assert_eq!(later.text(), "Hello, Nexus!");
}
