//! Functions: deploys in each body form, validation at deploy, content-addressed blobs,
//! immutable versions, aliases with canaries, rollback, priority classes, node selectors, and
//! who may do what.

use http::StatusCode;
use nexus_coordinator::cluster::Priority;
use nexus_coordinator::functions::DeployLimits;
use nexus_tests::TestResponse;
use serde_json::{Value, json};

use crate::harness::{Api, assert_error, tokens};

const BOUNDARY: &str = "nexus-test-boundary";

/// `hello` served on `/hello`, its bytes at `target/hello.wasm`.
const APP_MANIFEST: &str = r#"spin_manifest_version = 2

[application]
name = "hello-app"

[[trigger.http]]
route = "/hello"
component = "hello"

[component.hello]
source = "target/hello.wasm"
"#;

fn component(name: &str) -> Vec<u8> {
    std::fs::read(nexus_tests::component_path(name)).unwrap()
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, path, *bytes).unwrap();
    }
    builder.into_inner().unwrap()
}

fn multipart_of(parts: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; \
                 filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// A project `demo` owned by a fresh user; the owner's token.
async fn owner_with_project(api: &Api) -> String {
    api.register("owner@example.com", "correct horse").await;
    let owner = tokens(&api.login("owner@example.com", "correct horse").await).0;
    let created = api
        .call(
            "POST",
            "/v1/projects",
            Some(&owner),
            Some(json!({"name": "demo"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    owner
}

async fn deploy(
    api: &Api,
    token: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> TestResponse {
    api.send_bytes(
        "POST",
        &format!("/v1/projects/demo/functions/{path}"),
        token,
        content_type,
        body,
    )
    .await
}

async fn deploy_wasm(api: &Api, token: &str, function: &str, query: &str) -> TestResponse {
    deploy(
        api,
        token,
        &format!("{function}/versions{query}"),
        "application/wasm",
        component("hello"),
    )
    .await
}

fn live(body: &Value) -> &Value {
    body["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|alias| alias["name"] == "live")
        .unwrap()
}

#[tokio::test]
async fn each_body_form_deploys_and_same_bytes_are_stored_once() {
    let api = Api::start().await;
    let owner = owner_with_project(&api).await;
    let hello = component("hello");

    let single = deploy_wasm(&api, &owner, "single", "").await;
    assert_eq!(single.status, StatusCode::CREATED, "{}", single.text());
    let single = single.json();
    assert_eq!(single["version"], 1);
    assert_eq!(live(&single)["version"], 1);

    let tar = tar_of(&[
        ("spin.toml", APP_MANIFEST.as_bytes()),
        ("target/hello.wasm", &hello),
    ]);
    let from_tar = deploy(&api, &owner, "app/versions", "application/x-tar", tar).await;
    assert_eq!(from_tar.status, StatusCode::CREATED, "{}", from_tar.text());
    assert_eq!(from_tar.json()["version"], 1);

    let multipart = multipart_of(&[
        ("spin.toml", APP_MANIFEST.as_bytes()),
        ("target/hello.wasm", &hello),
    ]);
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let from_parts = deploy(&api, &owner, "app/versions", &content_type, multipart).await;
    assert_eq!(
        from_parts.status,
        StatusCode::CREATED,
        "{}",
        from_parts.text()
    );
    let from_parts = from_parts.json();
    assert_eq!(from_parts["version"], 2);
    assert_eq!(live(&from_parts)["version"], 2);
    assert_eq!(live(&from_parts)["previous"]["version"], 1);

    // The resolved app is kept: the tar's route, and the single component's `/...`.
    let version = api
        .call(
            "GET",
            "/v1/projects/demo/functions/app/versions/1",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(version.status, StatusCode::OK, "{}", version.text());
    let version = version.json();
    assert_eq!(version["app"]["name"], "hello-app");
    assert_eq!(version["app"]["http_triggers"][0]["component"], "hello");
    let single_app = api
        .call(
            "GET",
            "/v1/projects/demo/functions/single/versions/1",
            Some(&owner),
            None,
        )
        .await
        .json();
    assert!(
        single_app["app"]["http_triggers"]
            .to_string()
            .contains("/..."),
        "{single_app}"
    );

    // Three deploys of the same bytes: one blob, named by the digest every version records.
    let digest = format!("sha256:{}", nexus_proto::Digest::of(&hello).hex());
    assert_eq!(version["component_digests"], json!([digest]));
    assert_eq!(single_app["component_digests"], json!([digest]));
    let blobs: Vec<String> = std::fs::read_dir(api.state_dir().join("blobs/sha256"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(blobs, [nexus_proto::Digest::of(&hello).hex()]);

    let listed = api
        .call("GET", "/v1/projects/demo/functions", Some(&owner), None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    let listed = listed.json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|function| function["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app", "single"]);
    assert_eq!(live(&listed[0])["version"], 2);
}

#[tokio::test]
async fn invalid_uploads_are_refused_naming_the_problem() {
    let hello = component("hello");
    let api = Api::start_with(DeployLimits {
        max_upload_bytes: 2 * hello.len(),
        max_component_bytes: hello.len() - 1,
        ..DeployLimits::default()
    })
    .await;
    let owner = owner_with_project(&api).await;

    let oversize = deploy_wasm(&api, &owner, "big", "").await;
    assert_error(&oversize, StatusCode::PAYLOAD_TOO_LARGE, "too_large");
    let message = oversize.json()["error"]["message"].to_string();
    assert!(
        message.contains(&format!("{} bytes", hello.len())),
        "{message}"
    );
    assert!(
        message.contains(&format!("limit of {} bytes", hello.len() - 1)),
        "{message}"
    );

    let huge = deploy(
        &api,
        &owner,
        "big/versions",
        "application/wasm",
        vec![0; 3 * hello.len()],
    )
    .await;
    assert_error(&huge, StatusCode::PAYLOAD_TOO_LARGE, "too_large");

    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let escaping = multipart_of(&[
        ("spin.toml", APP_MANIFEST.as_bytes()),
        ("../hello.wasm", b"x"),
    ]);
    let escaping = deploy(&api, &owner, "app/versions", &content_type, escaping).await;
    assert_error(&escaping, StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        escaping.text().contains("../hello.wasm"),
        "{}",
        escaping.text()
    );

    // Refused before anything is read: reading a source is how `/dev/zero` would exhaust memory.
    let outside = APP_MANIFEST.replace("target/hello.wasm", "../../etc/hostname");
    let outside = tar_of(&[("spin.toml", outside.as_bytes())]);
    let outside = deploy(&api, &owner, "app/versions", "application/x-tar", outside).await;
    assert_error(&outside, StatusCode::BAD_REQUEST, "bad_request");
    assert!(
        outside.text().contains("is outside the app's directory"),
        "{}",
        outside.text()
    );

    let missing = tar_of(&[("spin.toml", APP_MANIFEST.as_bytes())]);
    let missing = deploy(&api, &owner, "app/versions", "application/x-tar", missing).await;
    assert_error(&missing, StatusCode::BAD_REQUEST, "bad_request");
    let message = missing.json()["error"]["message"].to_string();
    assert!(message.contains("component `hello`"), "{message}");
    assert!(message.contains("target/hello.wasm"), "{message}");
    assert!(!message.contains("/tmp"), "{message}");

    let other_type = deploy(&api, &owner, "app/versions", "text/plain", b"hi".to_vec()).await;
    assert_error(
        &other_type,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "bad_request",
    );

    // Nothing was created by the refused deploys.
    let listed = api
        .call("GET", "/v1/projects/demo/functions", Some(&owner), None)
        .await;
    assert_eq!(listed.json(), json!([]));
}

#[tokio::test]
async fn unsupported_imports_are_named() {
    let api = Api::start().await;
    let owner = owner_with_project(&api).await;
    let refused = deploy(
        &api,
        &owner,
        "bad/versions",
        "application/wasm",
        component("bad-import"),
    )
    .await;
    assert_error(
        &refused,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_component",
    );
    let message = refused.json()["error"]["message"].to_string();
    assert!(message.contains("fermyon:spin/llm@2.0.0"), "{message}");
    assert!(message.contains("component `bad`"), "{message}");
    let function = api
        .call("GET", "/v1/projects/demo/functions/bad", Some(&owner), None)
        .await;
    assert_error(&function, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn aliases_move_with_canaries_and_roll_back_and_versions_stay() {
    let api = Api::start().await;
    let owner = owner_with_project(&api).await;
    let first = deploy_wasm(&api, &owner, "app", "").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    // `?alias=none`: version 2 exists, `live` stays on 1.
    let second = deploy_wasm(&api, &owner, "app", "?alias=none").await;
    assert_eq!(second.status, StatusCode::CREATED, "{}", second.text());
    assert_eq!(second.json()["aliases"], json!([]));
    let alias_path = "/v1/projects/demo/functions/app/aliases/live";

    let canary = api
        .call(
            "PUT",
            alias_path,
            Some(&owner),
            Some(json!({"version": 2, "canary": {"version": 1, "weight": 10}})),
        )
        .await;
    assert_eq!(canary.status, StatusCode::OK, "{}", canary.text());
    let canary = canary.json();
    assert_eq!(
        (canary["version"].clone(), canary["canary"].clone()),
        (json!(2), json!({"version": 1, "weight": 10}))
    );
    assert_eq!(canary["previous"], json!({"version": 1, "canary": null}));

    for bad in [
        json!({"version": 2, "canary": {"version": 1, "weight": 101}}),
        json!({"version": 2, "canary": {"version": 1, "weight": -1}}),
        json!({"version": 2, "canary": {"version": 2, "weight": 10}}),
        json!({"version": 7}),
        json!({"version": 2, "canary": {"version": 9, "weight": 5}}),
    ] {
        let refused = api
            .call("PUT", alias_path, Some(&owner), Some(bad.clone()))
            .await;
        assert_error(&refused, StatusCode::BAD_REQUEST, "bad_request");
    }

    let rolled_back = api
        .call(
            "POST",
            &format!("{alias_path}/rollback"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(rolled_back.status, StatusCode::OK, "{}", rolled_back.text());
    let rolled_back = rolled_back.json();
    assert_eq!(
        (
            rolled_back["version"].clone(),
            rolled_back["canary"].clone()
        ),
        (json!(1), Value::Null)
    );
    let shown = api
        .call("GET", "/v1/projects/demo/functions/app", Some(&owner), None)
        .await
        .json();
    assert_eq!(live(&shown)["version"], 1);
    assert_eq!(shown["versions"].as_array().unwrap().len(), 2);

    let never_moved = api
        .call(
            "PUT",
            "/v1/projects/demo/functions/app/aliases/beta",
            Some(&owner),
            Some(json!({"version": 2})),
        )
        .await;
    assert_eq!(never_moved.status, StatusCode::OK, "{}", never_moved.text());
    let nothing_to_undo = api
        .call(
            "POST",
            "/v1/projects/demo/functions/app/aliases/beta/rollback",
            Some(&owner),
            None,
        )
        .await;
    assert_error(&nothing_to_undo, StatusCode::CONFLICT, "conflict");

    // No route changes a version.
    let version_path = "/v1/projects/demo/functions/app/versions/1";
    let before = api
        .call("GET", version_path, Some(&owner), None)
        .await
        .json();
    for method in ["PUT", "PATCH", "DELETE", "POST"] {
        let refused = api
            .call(method, version_path, Some(&owner), Some(json!({})))
            .await;
        assert_eq!(refused.status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
    }
    assert_eq!(
        api.call("GET", version_path, Some(&owner), None)
            .await
            .json(),
        before
    );
}

#[tokio::test]
async fn developers_deploy_viewers_read_outsiders_see_nothing() {
    let api = Api::start().await;
    let owner = owner_with_project(&api).await;
    let mut people = Vec::new();
    for (email, role) in [
        ("developer@example.com", Some("developer")),
        ("viewer@example.com", Some("viewer")),
        ("outsider@example.com", None),
    ] {
        api.register(email, "correct horse").await;
        if let Some(role) = role {
            let added = api
                .call(
                    "POST",
                    "/v1/projects/demo/members",
                    Some(&owner),
                    Some(json!({"email": email, "role": role})),
                )
                .await;
            assert_eq!(added.status, StatusCode::CREATED, "{}", added.text());
        }
        people.push(tokens(&api.login(email, "correct horse").await).0);
    }
    let [developer, viewer, outsider] = [&people[0], &people[1], &people[2]];

    let deployed = deploy_wasm(&api, developer, "app", "").await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());

    assert_error(
        &deploy_wasm(&api, viewer, "app", "").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &deploy_wasm(&api, outsider, "app", "").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let alias_path = "/v1/projects/demo/functions/app/aliases/live";
    let body = Some(json!({"version": 1}));
    assert_error(
        &api.call("PUT", alias_path, Some(viewer), body.clone())
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    );
    assert_error(
        &api.call("PUT", alias_path, Some(outsider), body).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    for path in [
        "/v1/projects/demo/functions",
        "/v1/projects/demo/functions/app",
        "/v1/projects/demo/functions/app/versions/1",
    ] {
        assert_eq!(
            api.call("GET", path, Some(viewer), None).await.status,
            StatusCode::OK,
            "{path}"
        );
        assert_error(
            &api.call("GET", path, Some(outsider), None).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
}

/// Adds `email` to `demo` with `role`; its access token.
async fn member(api: &Api, owner: &str, email: &str, role: &str) -> String {
    let token = api.user(email).await;
    let added = api
        .call(
            "POST",
            "/v1/projects/demo/members",
            Some(owner),
            Some(json!({"email": email, "role": role})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text());
    token
}

#[tokio::test]
async fn a_function_priority_is_set_shown_and_checked() {
    let api = Api::start().await;
    let owner = owner_with_project(&api).await;
    let viewer = member(&api, &owner, "viewer@example.com", "viewer").await;
    let developer = member(&api, &owner, "developer@example.com", "developer").await;
    for function in ["app", "other"] {
        let deployed = deploy_wasm(&api, &owner, function, "").await;
        assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
    }
    let path = "/v1/projects/demo/functions/app";
    let shown = api.call("GET", path, Some(&viewer), None).await.json();
    assert_eq!(shown["priority"], "normal");

    // A developer may set it; the answer is the function's view.
    let updated = api
        .call(
            "PATCH",
            path,
            Some(&developer),
            Some(json!({"priority": "high"})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
    let updated = updated.json();
    assert_eq!(updated["name"], "app");
    assert_eq!(updated["priority"], "high");
    assert_eq!(live(&updated)["version"], 1);
    assert_eq!(updated["versions"].as_array().unwrap().len(), 1);
    let shown = api.call("GET", path, Some(&viewer), None).await.json();
    assert_eq!(shown, updated);
    let listed = api
        .call("GET", "/v1/projects/demo/functions", Some(&viewer), None)
        .await
        .json();
    let priorities: Vec<(&str, &str)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|function| {
            (
                function["name"].as_str().unwrap(),
                function["priority"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(priorities, [("app", "high"), ("other", "normal")]);

    // Only the four classes, named in the answer.
    let refused = api
        .call(
            "PATCH",
            path,
            Some(&owner),
            Some(json!({"priority": "urgent"})),
        )
        .await;
    assert_error(&refused, StatusCode::BAD_REQUEST, "bad_request");
    let message = refused.json()["error"]["message"].to_string();
    assert!(message.contains("urgent"), "{message}");
    assert!(
        message.contains("critical, high, normal or low"),
        "{message}"
    );
    for body in [
        json!({}),
        json!({"priority": 1}),
        json!({"priority": "low", "weight": 2}),
    ] {
        let refused = api.call("PATCH", path, Some(&owner), Some(body)).await;
        assert_error(&refused, StatusCode::BAD_REQUEST, "bad_request");
    }

    // A viewer reads but may not change it; an unknown function is not found.
    let forbidden = api
        .call(
            "PATCH",
            path,
            Some(&viewer),
            Some(json!({"priority": "low"})),
        )
        .await;
    assert_error(&forbidden, StatusCode::FORBIDDEN, "forbidden");
    let missing = api
        .call(
            "PATCH",
            "/v1/projects/demo/functions/nothing",
            Some(&owner),
            Some(json!({"priority": "low"})),
        )
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found");
    let shown = api.call("GET", path, Some(&viewer), None).await.json();
    assert_eq!(shown["priority"], "high");
}

/// The version `demo/app@live` resolves to now, as the trigger would dispatch it.
async fn live_target(api: &Api) -> std::sync::Arc<nexus_coordinator::dispatch::Target> {
    let resolution = api
        .platform
        .state()
        .triggers
        .resolve("demo", "app", "live")
        .await
        .unwrap()
        .unwrap();
    std::sync::Arc::clone(resolution.main())
}

#[tokio::test]
async fn a_priority_change_reaches_the_trigger_on_the_next_request() {
    let api = Api::start().await;
    let owner = owner_with_project(&api).await;
    let deployed = deploy_wasm(&api, &owner, "app", "").await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
    let main_target = || live_target(&api);
    // Resolved (and its version parsed and cached) before the change.
    let before = main_target().await;
    assert_eq!(before.priority, Priority::Normal);

    for (name, priority) in [("critical", Priority::Critical), ("low", Priority::Low)] {
        let updated = api
            .call(
                "PATCH",
                "/v1/projects/demo/functions/app",
                Some(&owner),
                Some(json!({"priority": name})),
            )
            .await;
        assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
        // At once, not after the resolution cache expires: the same version in the new class.
        let after = main_target().await;
        assert_eq!(after.priority, priority);
        assert_eq!(
            (after.version_id, after.version),
            (before.version_id, before.version)
        );
    }
}

#[tokio::test]
async fn a_function_node_selector_is_set_shown_and_checked() {
    let api = Api::start().await;
    let owner = owner_with_project(&api).await;
    let viewer = member(&api, &owner, "viewer@example.com", "viewer").await;
    let developer = member(&api, &owner, "developer@example.com", "developer").await;
    for function in ["app", "other"] {
        let deployed = deploy_wasm(&api, &owner, function, "").await;
        assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
    }
    let path = "/v1/projects/demo/functions/app";
    let shown = api.call("GET", path, Some(&viewer), None).await.json();
    assert_eq!(shown["node_selector"], json!({}));

    // A developer may set it; the answer is the function's view, its priority untouched.
    let selector = json!({"gpu": "true", "example.com/zone": "eu-west-1a", "tier": ""});
    let updated = api
        .call(
            "PATCH",
            path,
            Some(&developer),
            Some(json!({"node_selector": selector})),
        )
        .await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
    let updated = updated.json();
    assert_eq!(updated["name"], "app");
    assert_eq!(updated["node_selector"], selector);
    assert_eq!(updated["priority"], "normal");
    assert_eq!(live(&updated)["version"], 1);
    let shown = api.call("GET", path, Some(&viewer), None).await.json();
    assert_eq!(shown, updated);
    let listed = api
        .call("GET", "/v1/projects/demo/functions", Some(&viewer), None)
        .await
        .json();
    let selectors: Vec<(&str, &Value)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|function| {
            (
                function["name"].as_str().unwrap(),
                &function["node_selector"],
            )
        })
        .collect();
    assert_eq!(selectors, [("app", &selector), ("other", &json!({}))]);

    // Both at once; a selector replaces the previous one rather than merging with it.
    let both = api
        .call(
            "PATCH",
            path,
            Some(&owner),
            Some(json!({"priority": "high", "node_selector": {"gpu": "false"}})),
        )
        .await;
    assert_eq!(both.status, StatusCode::OK, "{}", both.text());
    let both = both.json();
    assert_eq!(both["priority"], "high");
    assert_eq!(both["node_selector"], json!({"gpu": "false"}));
    // Only a priority: the selector stays.
    let priority_only = api
        .call(
            "PATCH",
            path,
            Some(&owner),
            Some(json!({"priority": "low"})),
        )
        .await
        .json();
    assert_eq!(priority_only["priority"], "low");
    assert_eq!(priority_only["node_selector"], json!({"gpu": "false"}));

    // Refused, each naming the bad entry; nothing changes, not even a valid half.
    let too_many: serde_json::Map<String, Value> = (0..17)
        .map(|index| (format!("label-{index}"), json!("on")))
        .collect();
    for (body, named) in [
        (json!({"node_selector": too_many}), "at most 16"),
        (json!({"node_selector": {"gpu!": "true"}}), "gpu!"),
        (
            json!({"node_selector": {"Example.com/gpu": "true"}}),
            "Example.com/gpu",
        ),
        (json!({"node_selector": {"k".repeat(64): "v"}}), "kkkk"),
        (
            json!({"node_selector": {"gpu": "yes please"}}),
            "yes please",
        ),
        (json!({"node_selector": {"gpu": "v".repeat(64)}}), "vvvv"),
        (json!({"node_selector": {"ok": "1", "zone": "-eu"}}), "-eu"),
        (
            json!({"priority": "urgent", "node_selector": {"gpu": "true"}}),
            "urgent",
        ),
        (
            json!({"priority": "high", "node_selector": {"gpu": "-"}}),
            "\"gpu\"",
        ),
        (
            json!({}),
            "priority, node_selector, async_retry, placement, cloud or min_warm",
        ),
        (
            json!({"node_selector": null}),
            "priority, node_selector, async_retry, placement, cloud or min_warm",
        ),
    ] {
        let refused = api
            .call("PATCH", path, Some(&owner), Some(body.clone()))
            .await;
        assert_error(&refused, StatusCode::BAD_REQUEST, "bad_request");
        let message = refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains(named), "{body}: {message}");
    }
    for body in [
        json!({"node_selector": {"gpu": true}}),
        json!({"node_selector": ["gpu"]}),
        json!({"node_selector": "gpu=true"}),
        json!({"node_selector": {"gpu": "true"}, "labels": {}}),
    ] {
        let refused = api
            .call("PATCH", path, Some(&owner), Some(body.clone()))
            .await;
        assert_error(&refused, StatusCode::BAD_REQUEST, "bad_request");
    }

    // A viewer reads but may not change it; an unknown function is not found.
    let forbidden = api
        .call(
            "PATCH",
            path,
            Some(&viewer),
            Some(json!({"node_selector": {}})),
        )
        .await;
    assert_error(&forbidden, StatusCode::FORBIDDEN, "forbidden");
    let missing = api
        .call(
            "PATCH",
            "/v1/projects/demo/functions/nothing",
            Some(&owner),
            Some(json!({"node_selector": {"gpu": "true"}})),
        )
        .await;
    assert_error(&missing, StatusCode::NOT_FOUND, "not_found");
    let shown = api.call("GET", path, Some(&viewer), None).await.json();
    assert_eq!(shown, priority_only);

    // `{}` lets any node run it again.
    let cleared = api
        .call(
            "PATCH",
            path,
            Some(&developer),
            Some(json!({"node_selector": {}})),
        )
        .await
        .json();
    assert_eq!(cleared["node_selector"], json!({}));
    assert_eq!(cleared["priority"], "low");

    // Every change is audited, refused and denied ones included.
    let entries = api
        .store
        .with_retry(|tx| Box::pin(async move { tx.list_audit(0, 1000).await }))
        .await
        .unwrap();
    let results: Vec<&str> = entries
        .iter()
        .filter(|entry| entry.action == "PATCH /v1/projects/{project}/functions/{function}")
        .map(|entry| entry.result.as_str())
        .collect();
    let expected: Vec<&str> = std::iter::repeat_n("ok", 3)
        .chain(std::iter::repeat_n("refused", 15))
        .chain(["denied", "denied", "ok"])
        .collect();
    assert_eq!(results, expected);
}

#[tokio::test]
async fn a_node_selector_change_reaches_the_trigger_on_the_next_request() {
    let api = Api::start().await;
    let owner = owner_with_project(&api).await;
    let deployed = deploy_wasm(&api, &owner, "app", "").await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
    let main_target = || live_target(&api);
    // Resolved (and its version parsed and cached) before the change.
    let before = main_target().await;
    assert!(before.node_selector.is_empty());

    let selector = |entries: &[(&str, &str)]| {
        entries
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    for wanted in [
        selector(&[("gpu", "true")]),
        selector(&[("gpu", "true"), ("zone", "eu-1")]),
        selector(&[]),
    ] {
        let updated = api
            .call(
                "PATCH",
                "/v1/projects/demo/functions/app",
                Some(&owner),
                Some(json!({"node_selector": wanted})),
            )
            .await;
        assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
        // At once, not after the resolution cache expires: the same version, new selector.
        let after = main_target().await;
        assert_eq!(*after.node_selector, wanted);
        assert_eq!(
            (after.version_id, after.version),
            (before.version_id, before.version)
        );
    }

    // A change of priority alone keeps the selector, and a new version carries both.
    for body in [
        json!({"node_selector": {"gpu": "true"}}),
        json!({"priority": "high"}),
    ] {
        let updated = api
            .call(
                "PATCH",
                "/v1/projects/demo/functions/app",
                Some(&owner),
                Some(body),
            )
            .await;
        assert_eq!(updated.status, StatusCode::OK, "{}", updated.text());
    }
    let after = main_target().await;
    assert_eq!((after.priority, after.version), (Priority::High, 1));
    assert_eq!(*after.node_selector, selector(&[("gpu", "true")]));
    let redeployed = deploy_wasm(&api, &owner, "app", "").await;
    assert_eq!(
        redeployed.status,
        StatusCode::CREATED,
        "{}",
        redeployed.text()
    );
    let after = main_target().await;
    assert_eq!((after.priority, after.version), (Priority::High, 2));
    assert_eq!(*after.node_selector, selector(&[("gpu", "true")]));
}
