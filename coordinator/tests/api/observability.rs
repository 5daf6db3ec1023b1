//! What the coordinator tells operators and its dashboard: `/metrics` (its own and, in one
//! process, the runtime's), the project's nodes, the dashboard's files, and an event for
//! every call of the HTTP trigger.

use std::time::Duration;

use futures::StreamExt as _;
use http::StatusCode;
use nexus_coordinator::events::EventKind;
use serde_json::json;

use crate::harness::{Api, component};

/// A project `name` owned by a fresh user, with `function` running the `hello` component;
/// the owner's token and the project's id.
async fn project_with_hello(api: &Api, name: &str, function: &str) -> (String, String) {
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
    deploy(api, &token, name, function, "hello").await;
    (token, created.json()["id"].as_str().unwrap().to_owned())
}

/// Deploys the component `component_name` as `function` of `project`.
async fn deploy(api: &Api, token: &str, project: &str, function: &str, component_name: &str) {
    let deployed = api
        .send_bytes(
            "POST",
            &format!("/v1/projects/{project}/functions/{function}/versions"),
            token,
            "application/wasm",
            component(component_name),
        )
        .await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
}

/// The value of the one series of `metric` whose labels include all of `labels`.
fn value(text: &str, metric: &str, labels: &[String]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (name, rest) = series.split_once('{').unwrap_or((series, ""));
        (name == metric && labels.iter().all(|label| rest.contains(label.as_str())))
            .then(|| value.parse().unwrap())
    })
}

#[tokio::test]
async fn metrics_count_trigger_calls_by_project_function_version_status_and_target() {
    let api = Api::start().await;
    let (token, project) = project_with_hello(&api, "shop", "greet").await;
    deploy(&api, &token, "shop", "trap", "bad-trap").await;
    for _ in 0..2 {
        assert_eq!(
            api.client
                .get(&format!("{}/shop/greet/", api.base))
                .await
                .status,
            StatusCode::OK
        );
    }
    let trapped = api.client.get(&format!("{}/shop/trap/", api.base)).await;
    assert_eq!(trapped.status, StatusCode::INTERNAL_SERVER_ERROR);

    let scraped = api.call("GET", "/metrics", None, None).await;
    assert_eq!(scraped.status, StatusCode::OK);
    let text = scraped.text();
    let labels = |function: &str, status: &str| {
        vec![
            format!(r#"project="{project}""#),
            format!(r#"function="{function}""#),
            r#"version="1""#.to_owned(),
            format!(r#"status="{status}""#),
            r#"target="edge""#.to_owned(),
        ]
    };
    let calls =
        |function, status| value(&text, "nexus_invocations_total", &labels(function, status));
    assert_eq!(calls("greet", "200"), Some(2.0), "{text}");
    assert_eq!(calls("trap", "500"), Some(1.0), "{text}");
    let greet = [r#"function="greet""#.to_owned()];
    assert_eq!(
        value(&text, "nexus_invocation_duration_seconds_count", &greet),
        Some(2.0)
    );
    // The runtime in this process counts too.
    assert_eq!(
        value(
            &text,
            "nexus_edge_invocations_total",
            &[r#"status="200""#.to_owned()]
        ),
        Some(2.0),
        "{text}"
    );
    let free = value(
        &text,
        "nexus_edge_instance_slots",
        &[r#"use="free""#.to_owned()],
    )
    .unwrap();
    assert!(free > 0.0, "{text}");
}

#[tokio::test]
async fn every_trigger_call_is_published_with_its_version_target_and_duration() {
    let api = Api::start().await;
    let (_, project) = project_with_hello(&api, "shop", "greet").await;
    let mut events = api.platform.state().events.subscribe(None).await;
    assert_eq!(
        api.client
            .get(&format!("{}/shop/greet/", api.base))
            .await
            .status,
        StatusCode::OK
    );
    let finished = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = events.next().await.unwrap().expect("events were missed");
            if let EventKind::InvocationFinished { .. } = event.kind {
                return event.kind;
            }
        }
    })
    .await
    .unwrap();
    let EventKind::InvocationFinished {
        project: published,
        function,
        agent,
        invocation,
        status,
        version,
        target,
        duration_us,
        node,
    } = finished
    else {
        unreachable!()
    };
    assert_eq!(node, None, "the coordinator dispatched it");
    assert_eq!((published, function.as_str()), (project, "greet"));
    assert_eq!((agent, invocation), (None, None));
    assert_eq!((status, version), (200, Some(1)));
    assert_eq!(target.as_deref(), Some("edge"));
    assert!(duration_us.is_some_and(|us| us > 0));
}

#[tokio::test]
async fn members_see_the_node_their_functions_run_on() {
    let api = Api::start().await;
    let (token, _) = project_with_hello(&api, "shop", "greet").await;
    let listed = api
        .call("GET", "/v1/projects/shop/nodes", Some(&token), None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    let nodes = listed.json()["nodes"].clone();
    assert_eq!(nodes.as_array().unwrap().len(), 1, "{nodes}");
    assert_eq!(nodes[0]["name"], "local");
    assert_eq!(nodes[0]["state"], "active");
    assert!(nodes[0]["instance_slots"].as_u64().unwrap() > 0);
    assert_eq!(nodes[0]["free_slots"], nodes[0]["instance_slots"]);

    let stranger = api.user("stranger@example.com").await;
    let refused = api
        .call("GET", "/v1/projects/shop/nodes", Some(&stranger), None)
        .await;
    assert_eq!(refused.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_dashboard_is_served_with_a_policy_that_allows_only_its_own_files() {
    let api = Api::start().await;
    let page = api.call("GET", "/dashboard", None, None).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let policy = page.headers["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert!(
        page.text()
            .contains(r#"<script src="/dashboard/dashboard.js""#)
    );
    for (path, content_type) in [
        ("/dashboard/dashboard.js", "text/javascript; charset=utf-8"),
        ("/dashboard/dashboard.css", "text/css; charset=utf-8"),
    ] {
        let file = api.call("GET", path, None, None).await;
        assert_eq!(file.status, StatusCode::OK, "{path}");
        assert_eq!(file.headers["content-type"], content_type, "{path}");
        assert!(!file.body.is_empty());
    }
}

/// The next `guest_log` events of `stream`s, until both `streams` have been seen.
async fn guest_logs(
    events: &mut nexus_coordinator::events::Listener,
    streams: &[&str],
) -> Vec<EventKind> {
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), async {
        while !streams.iter().all(|wanted| {
            seen.iter().any(
                |event| matches!(event, EventKind::GuestLog { stream, .. } if stream == wanted),
            )
        }) {
            let event = events.next().await.unwrap().expect("events were missed");
            if let EventKind::GuestLog { .. } = event.kind {
                seen.push(event.kind);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no guest output arrived; seen: {seen:?}"));
    seen
}

fn text_of<'a>(logs: &'a [EventKind], wanted: &str) -> (&'a str, bool) {
    logs.iter()
        .find_map(|event| match event {
            EventKind::GuestLog {
                stream,
                text,
                truncated,
                ..
            } if stream == wanted => Some((text.as_str(), *truncated)),
            _ => None,
        })
        .unwrap()
}

#[tokio::test]
async fn what_a_guest_prints_is_published_per_invocation_and_capped() {
    let api = Api::start().await;
    let (token, project) = project_with_hello(&api, "shop", "greet").await;
    deploy(&api, &token, "shop", "log", "logger").await;
    let mut events = api.platform.state().events.subscribe(None).await;

    let logged = api
        .client
        .get(&format!(
            "{}/shop/log/?out=hello+world&err=oops&out=bye",
            api.base
        ))
        .await;
    assert_eq!(logged.status, StatusCode::OK, "{}", logged.text());
    let request_id = logged.headers["x-request-id"].to_str().unwrap().to_owned();
    let logs = guest_logs(&mut events, &["stdout", "stderr"]).await;
    assert_eq!(text_of(&logs, "stdout"), ("hello world\nbye\n", false));
    assert_eq!(text_of(&logs, "stderr"), ("oops\n", false));
    let EventKind::GuestLog {
        project: published,
        function,
        version,
        request_id: published_id,
        invocation,
        ..
    } = &logs[0]
    else {
        unreachable!()
    };
    assert_eq!(
        (published.as_str(), function.as_str()),
        (project.as_str(), "log")
    );
    assert_eq!(*version, 1);
    assert_eq!(published_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(*invocation, None);

    // A panic's message is on stderr; a flood is cut at the cap, and the guest still answers.
    let panicked = api
        .client
        .get(&format!("{}/shop/log/?panic", api.base))
        .await;
    assert_eq!(panicked.status, StatusCode::INTERNAL_SERVER_ERROR);
    let logs = guest_logs(&mut events, &["stderr"]).await;
    assert!(
        text_of(&logs, "stderr").0.contains("asked to panic"),
        "{logs:?}"
    );
    let flood = nexus_runtime::output::MAX_LOG_BYTES + 1000;
    let flooded = api
        .client
        .get(&format!("{}/shop/log/?flood={flood}", api.base))
        .await;
    assert_eq!(flooded.status, StatusCode::OK);
    let logs = guest_logs(&mut events, &["stdout"]).await;
    let (text, truncated) = text_of(&logs, "stdout");
    assert_eq!(text.len(), nexus_runtime::output::MAX_LOG_BYTES);
    assert!(truncated);
}

#[tokio::test]
async fn an_asynchronous_attempts_output_is_kept_on_the_invocation_record() {
    let api = Api::start().await;
    let (token, _) = project_with_hello(&api, "shop", "greet").await;
    deploy(&api, &token, "shop", "log", "logger").await;
    let mut events = api.platform.state().events.subscribe(None).await;
    let request = http::Request::post(format!("{}/shop/log/?out=later&err=warned", api.base))
        .header("prefer", "respond-async")
        .body(http_body_util::Full::default())
        .unwrap();
    let accepted = api.client.send(request).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text());
    let id = accepted.json()["id"].as_str().unwrap().to_owned();
    let logs = guest_logs(&mut events, &["stdout", "stderr"]).await;
    assert!(logs.iter().all(|event| matches!(
        event,
        EventKind::GuestLog { invocation: Some(invocation), .. } if *invocation == id
    )));
    let finished = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let event = events.next().await.unwrap().expect("events were missed");
            if matches!(&event.kind, EventKind::InvocationFinished { invocation: Some(done), .. } if *done == id)
            {
                return;
            }
        }
    });
    finished.await.unwrap();
    let record = api
        .call("GET", &format!("/v1/invocations/{id}"), Some(&token), None)
        .await;
    assert_eq!(record.status, StatusCode::OK, "{}", record.text());
    let attempt = &record.json()["attempt_log"][0];
    assert_eq!(attempt["stdout"], "later\n", "{attempt}");
    assert_eq!(attempt["stderr"], "warned\n", "{attempt}");
    assert_eq!(attempt["output_truncated"], false);
}
