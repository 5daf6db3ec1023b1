//! `nexus.v1.AgentService` over real HTTP/2 on the API's port: the same agents, roles,
//! messages and audit rows as REST.

use std::collections::HashMap;

use bytes::Bytes;
use http::StatusCode;
use nexus_proto::v1::agent_service_client::AgentServiceClient;
use nexus_proto::v1::{
    AgentRef, AgentState, CreateAgentRequest, GetAgentRequest, ListAgentsRequest,
    SendMessageRequest,
};
use nexus_tests::{COUNTER_APP, app_tar};
use serde_json::json;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::agents::lab_with;
use crate::harness::Api;

fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

fn agent_ref(id: &str) -> AgentRef {
    AgentRef {
        project: "lab".to_owned(),
        id: id.to_owned(),
    }
}

#[tokio::test]
async fn agents_are_managed_and_sent_messages_over_grpc() {
    let api = Api::start().await;
    let upload = app_tar(COUNTER_APP, &[("counter.wasm", "counter")]);
    let owner = lab_with(&api, "application/x-tar", upload).await;
    let channel = Channel::from_shared(api.base.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = AgentServiceClient::new(channel);

    let created = client
        .create_agent(bearer(
            CreateAgentRequest {
                project: "lab".to_owned(),
                name: "tally".to_owned(),
                function: "counter".to_owned(),
                alias: String::new(),
                context: HashMap::from([("count".to_owned(), Bytes::from_static(b"41"))]),
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            created.project.as_str(),
            created.function.as_str(),
            created.alias.as_str()
        ),
        ("lab", "counter", "live")
    );
    assert_eq!(created.state(), AgentState::Active);
    let id = created.id.clone();

    let sent = client
        .send_message(bearer(
            SendMessageRequest {
                project: "lab".to_owned(),
                id: id.clone(),
                body: Bytes::from_static(b"increment"),
                content_type: "text/plain".to_owned(),
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (sent.status, sent.body.as_ref(), sent.content_type.as_str()),
        (200, &b"42"[..], "text/plain")
    );
    // The same agent, as REST shows it.
    let rest = api
        .call(
            "GET",
            &format!("/v1/projects/lab/agents/{id}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(rest.json()["name"], "tally");

    let listed = client
        .list_agents(bearer(
            ListAgentsRequest {
                project: "lab".to_owned(),
                page_size: 0,
                page_token: String::new(),
            },
            &owner,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.agents, std::slice::from_ref(&created));
    assert!(listed.next_page_token.is_empty());

    let suspended = client
        .suspend_agent(bearer(agent_ref(&id), &owner))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(suspended.state(), AgentState::Suspended);
    let refused = client
        .send_message(bearer(
            SendMessageRequest {
                project: "lab".to_owned(),
                id: id.clone(),
                body: Bytes::new(),
                content_type: String::new(),
            },
            &owner,
        ))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    let resumed = client
        .resume_agent(bearer(agent_ref(&id), &owner))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resumed.state(), AgentState::Active);

    client
        .delete_agent(bearer(agent_ref(&id), &owner))
        .await
        .unwrap();
    let gone = client
        .get_agent(bearer(
            GetAgentRequest {
                project: "lab".to_owned(),
                id: id.clone(),
            },
            &owner,
        ))
        .await
        .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);

    // Changes are audited as REST's are; the message is not.
    let audited = api
        .store
        .with_retry(|tx| Box::pin(async move { tx.list_audit(0, 1000).await }))
        .await
        .unwrap();
    let actions: Vec<&str> = audited
        .iter()
        .map(|entry| entry.action.as_str())
        .filter(|action| action.contains("AgentService"))
        .collect();
    assert_eq!(
        actions,
        [
            "POST /nexus.v1.AgentService/CreateAgent",
            "POST /nexus.v1.AgentService/SuspendAgent",
            "POST /nexus.v1.AgentService/ResumeAgent",
            "POST /nexus.v1.AgentService/DeleteAgent",
        ]
    );
}

#[tokio::test]
async fn an_api_key_acts_in_its_project_with_its_role_over_grpc() {
    let api = Api::start().await;
    let owner = lab_with(
        &api,
        "application/wasm",
        std::fs::read(nexus_tests::component_path("hello")).unwrap(),
    )
    .await;
    let key = api
        .call(
            "POST",
            "/v1/projects/lab/api-keys",
            Some(&owner),
            Some(json!({"name": "reader", "role": "viewer"})),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.text());
    let key = key.json()["secret"].as_str().unwrap().to_owned();
    let channel = Channel::from_shared(api.base.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = AgentServiceClient::new(channel);
    let create = |token: &str| {
        bearer(
            CreateAgentRequest {
                project: "lab".to_owned(),
                name: "a".to_owned(),
                function: "counter".to_owned(),
                alias: String::new(),
                context: HashMap::new(),
            },
            token,
        )
    };

    let denied = client.create_agent(create(&key)).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    let anonymous = client
        .create_agent(Request::new(create(&key).into_inner()))
        .await
        .unwrap_err();
    assert_eq!(anonymous.code(), Code::Unauthenticated);
    client.create_agent(create(&owner)).await.unwrap();
    let listed = client
        .list_agents(bearer(
            ListAgentsRequest {
                project: "lab".to_owned(),
                page_size: 0,
                page_token: String::new(),
            },
            &key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        listed.agents.len(),
        1,
        "a viewer key reads the project's agents"
    );
    let bad_page = client
        .list_agents(bearer(
            ListAgentsRequest {
                project: "lab".to_owned(),
                page_size: 10_000,
                page_token: String::new(),
            },
            &key,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad_page.code(), Code::InvalidArgument);
}
