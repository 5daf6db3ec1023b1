//! `/openapi.json` describes the API completely: every path and method in it is served, and
//! every answer the walker gets is one the spec lists for that operation.

use std::collections::BTreeSet;

use http::{Request, StatusCode};
use http_body_util::Full;

use crate::harness::Api;

#[tokio::test]
async fn every_route_in_the_spec_is_served_and_answers_as_documented() {
    let api = Api::start().await;
    let spec = api.call("GET", "/openapi.json", None, None).await;
    assert_eq!(spec.status, StatusCode::OK);
    let spec = spec.json();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    let paths = spec["paths"].as_object().unwrap();
    let mut walked = BTreeSet::new();
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let concrete = path
                .split('/')
                .map(|segment| {
                    if segment.starts_with('{') {
                        "00000000-0000-4000-8000-000000000000"
                    } else {
                        segment
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let method_upper = method.to_uppercase();
            let mut request = Request::builder()
                .method(method_upper.as_str())
                .uri(format!("{}{concrete}", api.base));
            let body = if matches!(method.as_str(), "post" | "put" | "patch") {
                request = request.header("content-type", "application/json");
                Full::from("{}")
            } else {
                Full::default()
            };
            let response = api.client.send(request.body(body).unwrap()).await;
            let status = response.status.as_u16();
            assert_ne!(
                response.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path}"
            );
            if status == 404 {
                assert_ne!(
                    response.json()["error"]["message"],
                    "route not found",
                    "{method} {path} is in the spec but not served"
                );
            }
            let documented: Vec<&String> =
                operation["responses"].as_object().unwrap().keys().collect();
            assert!(
                documented
                    .iter()
                    .any(|code| code.as_str() == status.to_string()),
                "{method} {path} answered {status}, the spec lists {documented:?}: {}",
                response.text()
            );
            walked.insert(format!("{method_upper} {path}"));
        }
    }
    // The routes this API is known to have are all in the spec.
    for expected in [
        "GET /healthz",
        "GET /readyz",
        "POST /v1/auth/register",
        "POST /v1/auth/login",
        "POST /v1/auth/refresh",
        "POST /v1/auth/logout",
        "GET /v1/sessions",
        "DELETE /v1/sessions/{id}",
        "GET /v1/projects",
        "POST /v1/projects",
        "GET /v1/projects/{project}",
        "PATCH /v1/projects/{project}",
        "DELETE /v1/projects/{project}",
        "GET /v1/projects/{project}/members",
        "POST /v1/projects/{project}/members",
        "PATCH /v1/projects/{project}/members/{user}",
        "DELETE /v1/projects/{project}/members/{user}",
        "GET /v1/projects/{project}/api-keys",
        "POST /v1/projects/{project}/api-keys",
        "DELETE /v1/projects/{project}/api-keys/{key}",
        "GET /v1/projects/{project}/functions",
        "GET /v1/projects/{project}/functions/{function}",
        "PATCH /v1/projects/{project}/functions/{function}",
        "POST /v1/projects/{project}/functions/{function}/versions",
        "GET /v1/projects/{project}/functions/{function}/versions/{version}",
        "PUT /v1/projects/{project}/functions/{function}/aliases/{alias}",
        "POST /v1/projects/{project}/functions/{function}/aliases/{alias}/rollback",
        "POST /v1/projects/{project}/agents/{agent}/messages",
        "GET /v1/projects/{project}/agents/{agent}/context",
        "GET /v1/projects/{project}/agents/{agent}/context/{key}",
        "PUT /v1/projects/{project}/agents/{agent}/context/{key}",
        "DELETE /v1/projects/{project}/agents/{agent}/context/{key}",
        "POST /v1/projects/{project}/invocations",
        "GET /v1/projects/{project}/invocations",
        "POST /v1/projects/{project}/invocations/dead/redrive",
        "POST /v1/projects/{project}/invocations/dead/purge",
        "GET /v1/invocations/{id}",
        "POST /v1/projects/{project}/schedules",
        "GET /v1/projects/{project}/schedules",
        "GET /v1/projects/{project}/schedules/{schedule}",
        "DELETE /v1/projects/{project}/schedules/{schedule}",
    ] {
        assert!(
            walked.contains(expected),
            "{expected} is missing from the spec: {walked:?}"
        );
    }
}
