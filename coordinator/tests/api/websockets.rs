//! `/ws/events` and `/ws/agents/{id}` with a real WebSocket client (tokio-tungstenite).

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use http::StatusCode;
use nexus_tests::{COUNTER_APP, app_tar};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::agents::lab_with;
use crate::harness::Api;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Long enough for any frame the server owes; a frame that never comes fails the test.
const FRAME_DEADLINE: Duration = Duration::from_secs(10);

fn ws_url(api: &Api, path: &str) -> String {
    format!("{}{path}", api.base.replacen("http://", "ws://", 1))
}

async fn connect(api: &Api, path: &str, token: &str) -> Socket {
    let mut request = ws_url(api, path).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    connect_async(request).await.unwrap().0
}

/// The next JSON frame.
async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(FRAME_DEADLINE, socket.next())
            .await
            .expect("no frame came")
            .expect("the socket closed")
            .unwrap();
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

async fn create_agent(api: &Api, token: &str, name: &str) -> String {
    let created = api
        .call(
            "POST",
            "/v1/projects/lab/agents",
            Some(token),
            Some(json!({"name": name, "function": "counter"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    created.json()["id"].as_str().unwrap().to_owned()
}

async fn lab(api: &Api) -> String {
    let upload = app_tar(COUNTER_APP, &[("counter.wasm", "counter")]);
    lab_with(api, "application/x-tar", upload).await
}

#[tokio::test]
async fn ws_events_streams_a_projects_events_filtered_and_resumes_after_an_id() {
    let api = Api::start().await;
    let owner = lab(&api).await;
    let mut everything = connect(&api, "/ws/events?project=lab", &owner).await;
    let mut changes = connect(&api, "/ws/events?project=lab&type=agent_changed", &owner).await;

    let agent = create_agent(&api, &owner, "watched").await;
    let created = next_frame(&mut everything).await;
    assert_eq!(
        (&created["type"], &created["agent"], &created["name"]),
        (&json!("agent_created"), &json!(agent), &json!("watched"))
    );
    let sent = api
        .send_bytes(
            "POST",
            &format!("/v1/projects/lab/agents/{agent}/messages"),
            &owner,
            "text/plain",
            Vec::new(),
        )
        .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.text());
    let finished = next_frame(&mut everything).await;
    assert_eq!(
        (&finished["type"], &finished["agent"], &finished["status"]),
        (&json!("invocation_finished"), &json!(agent), &json!(200))
    );
    let suspended = api
        .call(
            "POST",
            &format!("/v1/projects/lab/agents/{agent}/suspend"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(suspended.status, StatusCode::OK);
    // The filtered listener saw neither the creation nor the message.
    let changed = next_frame(&mut changes).await;
    assert_eq!(
        (&changed["type"], &changed["state"]),
        (&json!("agent_changed"), &json!("suspended"))
    );
    assert_eq!(next_frame(&mut everything).await, changed);

    // A listener resuming after the creation gets what followed it, in order.
    let after = created["id"].as_str().unwrap();
    let mut resumed = connect(
        &api,
        &format!("/ws/events?project=lab&after={after}"),
        &owner,
    )
    .await;
    assert_eq!(next_frame(&mut resumed).await, finished);
    assert_eq!(next_frame(&mut resumed).await, changed);
    everything.close(None).await.unwrap();
}

#[tokio::test]
async fn ws_events_takes_the_apis_credentials_and_roles() {
    let api = Api::start().await;
    let owner = lab(&api).await;
    let outsider = api.user("outsider@example.com").await;
    let refused = |outcome: Result<_, WsError>| match outcome {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Ok(_) => panic!("the handshake succeeded"),
        Err(other) => panic!("unexpected error: {other}"),
    };
    let anonymous = connect_async(ws_url(&api, "/ws/events?project=lab")).await;
    assert_eq!(refused(anonymous), 401);
    let hidden = connect_async(ws_url(
        &api,
        &format!("/ws/events?project=lab&access_token={outsider}"),
    ))
    .await;
    assert_eq!(refused(hidden), 404);
    let bad_after = connect_async(ws_url(
        &api,
        &format!("/ws/events?project=lab&after=yesterday&access_token={owner}"),
    ))
    .await;
    assert_eq!(refused(bad_after), 400);
    // The token in the query works as the header does.
    let mut socket = connect_async(ws_url(
        &api,
        &format!("/ws/events?project=lab&access_token={owner}"),
    ))
    .await
    .unwrap()
    .0;
    create_agent(&api, &owner, "seen").await;
    assert_eq!(next_frame(&mut socket).await["name"], "seen");
}

#[tokio::test]
async fn ws_agents_runs_each_frame_as_a_message_in_order_and_streams_its_events() {
    let api = Api::start().await;
    let owner = lab(&api).await;
    let agent = create_agent(&api, &owner, "chatty").await;
    let mut socket = connect(&api, &format!("/ws/agents/{agent}?project=lab"), &owner).await;

    for _ in 0..3 {
        socket.send(Message::text("increment")).await.unwrap();
    }
    let (mut replies, mut finished) = (Vec::new(), 0);
    while replies.len() < 3 || finished < 3 {
        let frame = next_frame(&mut socket).await;
        match frame["type"].as_str() {
            Some("reply") => {
                assert_eq!(frame["status"], 200, "{frame}");
                replies.push(frame["body"].as_str().unwrap().to_owned());
            }
            Some("invocation_finished") => {
                assert_eq!(frame["agent"], json!(agent));
                finished += 1;
            }
            _ => panic!("unexpected frame {frame}"),
        }
    }
    assert_eq!(replies, ["1", "2", "3"]);

    let unknown = connect_async(ws_url(
        &api,
        &format!(
            "/ws/agents/00000000-0000-4000-8000-000000000000?project=lab&access_token={owner}"
        ),
    ))
    .await;
    assert!(
        matches!(&unknown, Err(WsError::Http(response)) if response.status() == 404),
        "{unknown:?}"
    );
}
