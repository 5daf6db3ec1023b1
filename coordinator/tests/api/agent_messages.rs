//! Messages to agents: the agent's function runs with the agent's own key-value stores, one
//! message at a time per agent, in arrival order.

use std::collections::BTreeSet;

use futures::future::join_all;
use http::StatusCode;
use nexus_tests::{COUNTER_APP, TestResponse, app_tar};
use serde_json::json;

use crate::agents::lab_with;
use crate::harness::{Api, assert_error};

/// A project `lab` with function `counter` deployed; the owner's token and the ids of agents
/// named `names`.
async fn lab(api: &Api, names: &[&str]) -> (String, Vec<String>) {
    let upload = app_tar(COUNTER_APP, &[("counter.wasm", "counter")]);
    let owner = lab_with(api, "application/x-tar", upload).await;
    let mut ids = Vec::new();
    for name in names {
        let agent = api
            .call(
                "POST",
                "/v1/projects/lab/agents",
                Some(&owner),
                Some(json!({"name": name, "function": "counter"})),
            )
            .await;
        assert_eq!(agent.status, StatusCode::CREATED, "{}", agent.text());
        ids.push(agent.json()["id"].as_str().unwrap().to_owned());
    }
    (owner, ids)
}

async fn message(api: &Api, token: &str, agent: &str) -> TestResponse {
    api.send_bytes(
        "POST",
        &format!("/v1/projects/lab/agents/{agent}/messages"),
        token,
        "text/plain",
        b"increment".to_vec(),
    )
    .await
}

async fn count(api: &Api, token: &str, agent: &str) -> u64 {
    let answer = message(api, token, agent).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.text().parse().unwrap()
}

#[tokio::test]
async fn each_agent_has_key_value_stores_of_its_own() {
    let api = Api::start().await;
    let (owner, agents) = lab(&api, &["a", "b"]).await;
    let (a, b) = (&agents[0], &agents[1]);

    let first = message(&api, &owner, a).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    assert_eq!(first.text(), "1");
    assert_eq!(first.headers["nexus-version"], "1");
    assert_eq!(count(&api, &owner, a).await, 2);
    assert_eq!(count(&api, &owner, b).await, 1);
    // The function's own stores, through the trigger, are neither agent's.
    let plain = api.call("POST", "/lab/counter/", None, None).await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text());
    assert_eq!(plain.text(), "1");
    assert_eq!(count(&api, &owner, a).await, 3);
}

#[tokio::test]
async fn a_thousand_concurrent_messages_to_one_agent_run_one_at_a_time() {
    // Redis puts a round trip between the counter's read and its write, where another
    // message could slip in.
    let api = Api::start_on_postgres_and_redis().await;
    let (owner, agents) = lab(&api, &["busy"]).await;
    let agent = &agents[0];

    // The counter reads, adds one and writes back: any two messages that overlapped would
    // both answer the same count and leave the total short.
    let answers = join_all((0..1000).map(|_| count(&api, &owner, agent))).await;
    let distinct: BTreeSet<u64> = answers.iter().copied().collect();
    assert_eq!(distinct.len(), 1000, "messages overlapped");
    assert_eq!(distinct.first().zip(distinct.last()), Some((&1, &1000)));
    assert_eq!(count(&api, &owner, agent).await, 1001);
}

#[tokio::test]
async fn bad_messages_get_typed_errors_and_run_nothing() {
    let api = Api::start().await;
    let (owner, agents) = lab(&api, &["a"]).await;
    let agent = &agents[0];

    let suspended = api
        .call(
            "POST",
            &format!("/v1/projects/lab/agents/{agent}/suspend"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.text());
    assert_error(
        &message(&api, &owner, agent).await,
        StatusCode::CONFLICT,
        "agent_suspended",
    );
    let resumed = api
        .call(
            "POST",
            &format!("/v1/projects/lab/agents/{agent}/resume"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(resumed.status, StatusCode::OK, "{}", resumed.text());

    for path in ["relative", "http://elsewhere/", "/a%20b"] {
        let answer = api
            .send_bytes(
                "POST",
                &format!("/v1/projects/lab/agents/{agent}/messages?path={path}"),
                &owner,
                "text/plain",
                Vec::new(),
            )
            .await;
        assert_error(&answer, StatusCode::BAD_REQUEST, "bad_request");
    }
    for missing in ["not-a-uuid", "00000000-0000-4000-8000-000000000000"] {
        assert_error(
            &message(&api, &owner, missing).await,
            StatusCode::NOT_FOUND,
            "not_found",
        );
    }
    let anonymous = api
        .call(
            "POST",
            &format!("/v1/projects/lab/agents/{agent}/messages"),
            None,
            None,
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    // Nothing above ran the function: the first message that does counts 1.
    assert_eq!(count(&api, &owner, agent).await, 1);
    // Messages are invocations: the audit log does not record them.
    let audited = api
        .store
        .with_retry(|tx| Box::pin(async move { tx.list_audit(0, 1000).await }))
        .await
        .unwrap();
    assert!(
        audited
            .iter()
            .all(|entry| !entry.action.contains("messages")),
        "{audited:?}"
    );
}
