//! The coordinator's gRPC services over real HTTP/2 on the API's own port: `SessionService`
//! with and without a valid token, health, and server reflection.

use anyhow::{Context as _, anyhow, ensure};
use http::StatusCode;
use nexus_coordinator::api::REQUEST_ID;
use nexus_coordinator::grpc::MAX_MESSAGE_BYTES;
use nexus_proto::v1::session_service_client::SessionServiceClient;
use nexus_proto::v1::{CurrentSessionRequest, ListSessionsRequest, RevokeSessionRequest, Session};
use serde_json::json;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use crate::harness::{Api, tokens};

/// The password of every account here.
const PASSWORD: &str = "correct horse";

/// What the audit log calls a gRPC revocation.
const REVOKE_ACTION: &str = "POST /nexus.v1.SessionService/RevokeSession";

/// A client speaking HTTP/2 (prior knowledge) to the API's port.
async fn channel(api: &Api) -> anyhow::Result<Channel> {
    Channel::from_shared(api.base.clone())?
        .connect()
        .await
        .context("failed to connect a gRPC channel to the coordinator")
}

/// A login of a new account: (access token, session id).
async fn account(api: &Api, email: &str) -> anyhow::Result<(String, String)> {
    let registered = api.register(email, PASSWORD).await;
    ensure!(
        registered.status == StatusCode::CREATED,
        "register: {}",
        registered.text()
    );
    Ok(login(api, email).await)
}

/// A new session of `email`: (access token, session id).
async fn login(api: &Api, email: &str) -> (String, String) {
    let (access, _, session) = tokens(&api.login(email, PASSWORD).await);
    (access, session)
}

/// `message` with `authorization: <authorization>` when there is one.
fn authorized<T>(message: T, authorization: Option<&str>) -> anyhow::Result<Request<T>> {
    let mut request = Request::new(message);
    if let Some(authorization) = authorization {
        request
            .metadata_mut()
            .insert("authorization", authorization.parse()?);
    }
    Ok(request)
}

/// `message` with `authorization: Bearer <token>`.
fn bearer<T>(message: T, token: &str) -> anyhow::Result<Request<T>> {
    authorized(message, Some(&format!("Bearer {token}")))
}

/// The status of a call that should have failed.
fn refused<T: std::fmt::Debug>(outcome: Result<T, Status>) -> anyhow::Result<Status> {
    match outcome {
        Ok(response) => Err(anyhow!("expected an error, got {response:?}")),
        Err(status) => Ok(status),
    }
}

async fn list(
    client: &mut SessionServiceClient<Channel>,
    token: &str,
) -> anyhow::Result<Vec<Session>> {
    Ok(client
        .list_sessions(bearer(ListSessionsRequest {}, token)?)
        .await?
        .into_inner()
        .sessions)
}

#[tokio::test]
async fn session_service_lists_names_and_revokes_the_callers_sessions() -> anyhow::Result<()> {
    let api = Api::start().await;
    let (first_token, first_session) = account(&api, "ann@example.com").await?;
    let (second_token, second_session) = login(&api, "ann@example.com").await;
    let mut client = SessionServiceClient::new(channel(&api).await?);

    let listed = list(&mut client, &first_token).await?;
    let mut ids: Vec<&str> = listed.iter().map(|session| session.id.as_str()).collect();
    ids.sort_unstable();
    let mut expected = vec![first_session.as_str(), second_session.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let current: Vec<&str> = listed
        .iter()
        .filter(|session| session.current)
        .map(|session| session.id.as_str())
        .collect();
    assert_eq!(current, [first_session.as_str()]);
    let user = &listed[0].user_id;
    assert!(!user.is_empty());
    for session in &listed {
        assert_eq!(&session.user_id, user);
        assert!(!session.created_at.is_empty() && !session.last_used_at.is_empty());
        assert!(session.revoked_at.is_empty() && session.revoked_reason.is_empty());
    }
    // The same sessions REST lists.
    let rest = api
        .call("GET", "/v1/sessions", Some(&first_token), None)
        .await;
    assert_eq!(rest.status, StatusCode::OK, "{}", rest.text());
    assert_eq!(rest.json().as_array().map(Vec::len), Some(listed.len()));

    let current = client
        .current_session(bearer(CurrentSessionRequest {}, &second_token)?)
        .await?
        .into_inner();
    assert_eq!(
        (current.id.as_str(), current.current),
        (second_session.as_str(), true)
    );
    assert_eq!(&current.user_id, user);

    let revoked = client
        .revoke_session(bearer(
            RevokeSessionRequest {
                id: first_session.clone(),
            },
            &second_token,
        )?)
        .await?;
    let request_id = revoked
        .metadata()
        .get(REQUEST_ID)
        .context("the response carries its request id")?
        .to_str()?
        .to_owned();

    // The revoked session's token fails at its next call, on either API; the other lives on.
    let ended = refused(
        client
            .list_sessions(bearer(ListSessionsRequest {}, &first_token)?)
            .await,
    )?;
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    let ended = refused(
        client
            .current_session(bearer(CurrentSessionRequest {}, &first_token)?)
            .await,
    )?;
    assert_eq!(ended.code(), Code::Unauthenticated, "{ended:?}");
    assert_eq!(
        api.call("GET", "/v1/sessions", Some(&first_token), None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let remaining = list(&mut client, &second_token).await?;
    assert_eq!(
        remaining
            .iter()
            .map(|session| (session.id.as_str(), session.current))
            .collect::<Vec<_>>(),
        [(second_session.as_str(), true)]
    );

    // Audited as REST's revocations are.
    let entries = api
        .store
        .with_retry(|tx| Box::pin(async move { tx.list_audit(0, 100).await }))
        .await?;
    let revocation = entries
        .iter()
        .find(|entry| entry.action == REVOKE_ACTION)
        .context("the revocation is audited")?;
    assert_eq!(revocation.actor, format!("user:{user}"));
    assert_eq!(revocation.target, format!("session:{first_session}"));
    assert_eq!(revocation.result, "ok");
    assert_eq!(revocation.request_id.as_deref(), Some(request_id.as_str()));
    Ok(())
}

#[tokio::test]
async fn session_service_refuses_calls_without_a_valid_token() -> anyhow::Result<()> {
    let api = Api::start().await;
    let (token, session) = account(&api, "ann@example.com").await?;
    let created = api
        .call(
            "POST",
            "/v1/projects",
            Some(&token),
            Some(json!({"name": "alpha"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let created = api
        .call(
            "POST",
            "/v1/projects/alpha/api-keys",
            Some(&token),
            Some(json!({"name": "ci", "role": "admin"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let api_key = created.json()["secret"]
        .as_str()
        .context("the key's secret")?
        .to_owned();
    let mut client = SessionServiceClient::new(channel(&api).await?);

    let api_key_header = format!("Bearer {api_key}");
    let attempts = [
        ("no token", None),
        ("a garbage token", Some("Bearer garbage")),
        ("another scheme", Some("Basic YW5uOmNvcnJlY3QgaG9yc2U=")),
        ("an empty bearer", Some("Bearer ")),
        ("an API key", Some(api_key_header.as_str())),
    ];
    for (what, authorization) in attempts {
        let statuses = [
            refused(
                client
                    .list_sessions(authorized(ListSessionsRequest {}, authorization)?)
                    .await,
            )?,
            refused(
                client
                    .current_session(authorized(CurrentSessionRequest {}, authorization)?)
                    .await,
            )?,
            refused(
                client
                    .revoke_session(authorized(
                        RevokeSessionRequest {
                            id: session.clone(),
                        },
                        authorization,
                    )?)
                    .await,
            )?,
        ];
        for status in statuses {
            assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}");
            assert!(!status.message().is_empty(), "{what}: {status:?}");
            assert!(status.metadata().contains_key(REQUEST_ID), "{what}");
        }
    }
    let missing = refused(client.list_sessions(ListSessionsRequest {}).await)?;
    assert_eq!(missing.message(), "missing authorization metadata");

    // None of those revoked anything, and each revocation attempt is audited as denied.
    let listed = list(&mut client, &token).await?;
    assert_eq!(
        listed.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [session.as_str()]
    );
    let entries = api
        .store
        .with_retry(|tx| Box::pin(async move { tx.list_audit(0, 100).await }))
        .await?;
    let revocations: Vec<(&str, &str)> = entries
        .iter()
        .filter(|entry| entry.action == REVOKE_ACTION)
        .map(|entry| (entry.actor.as_str(), entry.result.as_str()))
        .collect();
    assert_eq!(revocations, [("anonymous", "denied"); 5]);
    Ok(())
}

#[tokio::test]
async fn revoking_another_users_session_is_not_found() -> anyhow::Result<()> {
    let api = Api::start().await;
    let (ann_token, _) = account(&api, "ann@example.com").await?;
    let (bob_token, bob_session) = account(&api, "bob@example.com").await?;
    let mut client = SessionServiceClient::new(channel(&api).await?);

    for id in [bob_session.as_str(), "not-a-session-id", ""] {
        let status = refused(
            client
                .revoke_session(bearer(
                    RevokeSessionRequest { id: id.to_owned() },
                    &ann_token,
                )?)
                .await,
        )?;
        assert_eq!(status.code(), Code::NotFound, "{id:?}: {status:?}");
        assert_eq!(status.message(), "session not found");
    }
    let bobs = list(&mut client, &bob_token).await?;
    assert_eq!(
        bobs.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        [bob_session.as_str()],
        "bob's session is untouched"
    );

    // Messages larger than the limit are refused before any work.
    let huge = RevokeSessionRequest {
        id: "x".repeat(MAX_MESSAGE_BYTES + 1),
    };
    let status = refused(client.revoke_session(bearer(huge, &ann_token)?).await)?;
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    Ok(())
}

#[tokio::test]
async fn health_and_reflection_share_the_port_with_rest() -> anyhow::Result<()> {
    let api = Api::start().await;
    let channel = channel(&api).await?;

    let mut health = HealthClient::new(channel.clone());
    for service in ["", "nexus.v1.SessionService"] {
        let checked = health
            .check(HealthCheckRequest {
                service: service.to_owned(),
            })
            .await?
            .into_inner();
        assert_eq!(checked.status(), ServingStatus::Serving, "{service:?}");
    }
    let unknown = refused(
        health
            .check(HealthCheckRequest {
                service: "nexus.v1.NoSuchService".to_owned(),
            })
            .await,
    )?;
    assert_eq!(unknown.code(), Code::NotFound);

    let mut reflection = ServerReflectionClient::new(channel);
    let list_services = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream::iter([list_services]))
        .await?
        .into_inner();
    let answer = answers
        .message()
        .await?
        .context("reflection answers")?
        .message_response;
    let Some(MessageResponse::ListServicesResponse(listed)) = answer else {
        anyhow::bail!("expected a service list, got {answer:?}");
    };
    let services: Vec<&str> = listed
        .service
        .iter()
        .map(|service| service.name.as_str())
        .collect();
    for expected in [
        "nexus.v1.SessionService",
        "nexus.v1.AgentService",
        "nexus.node.v1.NodeService",
        "grpc.health.v1.Health",
    ] {
        assert!(services.contains(&expected), "{expected} in {services:?}");
    }

    // REST still answers on the same port.
    let rest = api.client.get(&format!("{}/healthz", api.base)).await;
    assert_eq!(
        (rest.status, rest.text()),
        (StatusCode::OK, "ok".to_owned())
    );
    Ok(())
}
