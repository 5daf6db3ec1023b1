use futures::StreamExt as _;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

use super::*;
use crate::test_server;
use crate::{EventKind, FunctionDeployed};

#[test]
fn agent_frames_are_replies_errors_events_or_gaps() {
    let reply = json!({"type": "reply", "status": 201, "content_type": "text/plain", "body": "hi"});
    assert_eq!(
        parse_agent_frame(&reply.to_string()),
        Ok(AgentFrame::Reply(AgentReply {
            status: StatusCode::CREATED,
            content_type: Some("text/plain".to_owned()),
            body: Bytes::from_static(b"hi"),
        }))
    );
    let binary =
        json!({"type": "reply", "status": 200, "content_type": null, "body_base64": "AP8="});
    assert!(matches!(
        parse_agent_frame(&binary.to_string()),
        Ok(AgentFrame::Reply(AgentReply { content_type: None, ref body, .. }))
            if body.as_ref() == [0x00, 0xff]
    ));
    let error = json!({"type": "error", "code": "conflict", "message": "the agent is suspended"});
    assert_eq!(
        parse_agent_frame(&error.to_string()),
        Ok(AgentFrame::Error {
            code: "conflict".to_owned(),
            message: "the agent is suspended".to_owned(),
        })
    );
    let event =
        json!({"id": "1-0", "at": "t", "type": "agent_deleted", "project": "p", "agent": "a"});
    assert!(matches!(
        parse_agent_frame(&event.to_string()),
        Ok(AgentFrame::Event(Event { ref id, .. })) if id == "1-0"
    ));
    let missed = json!({"type": "missed", "message": "gone"});
    assert!(matches!(
        parse_agent_frame(&missed.to_string()),
        Ok(AgentFrame::Missed { .. })
    ));
    assert!(parse_agent_frame(&json!({"type": "reply", "body": "x"}).to_string()).is_err());
}

#[tokio::test]
async fn the_event_stream_sends_the_filter_and_token_and_yields_typed_frames() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (asked_tx, asked_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        #[expect(
            clippy::result_large_err,
            reason = "the callback's signature is tungstenite's"
        )]
        let record = |request: &Request, response: Response| {
            let authorization = request.headers()["authorization"]
                .to_str()
                .unwrap()
                .to_owned();
            let _ = asked_tx.send((request.uri().to_string(), authorization));
            Ok(response)
        };
        let mut socket = tokio_tungstenite::accept_hdr_async(stream, record)
            .await
            .unwrap();
        let deployed = json!({"id": "5-1", "at": "t", "type": "function_deployed",
            "project": "p1", "function": "hello", "version": 2});
        for frame in [
            json!({"type": "missed", "message": "events after 0-0 are no longer kept"}),
            deployed,
        ] {
            socket.send(Message::text(frame.to_string())).await.unwrap();
        }
        socket.close(None).await.unwrap();
    });
    let client = Client::new(&base).unwrap().with_token("tok");
    let filter = EventFilter {
        types: vec!["function_deployed".to_owned(), "agent_created".to_owned()],
        function: Some("hello".to_owned()),
        agent: None,
        after: Some("0-0".to_owned()),
    };
    let mut events = client.events("shop", &filter).await.unwrap();
    let (uri, authorization) = asked_rx.await.unwrap();
    assert_eq!(
        uri,
        "/ws/events?project=shop&type=function_deployed%2Cagent_created&function=hello&after=0-0"
    );
    assert_eq!(authorization, "Bearer tok");
    assert!(matches!(
        events.next().await,
        Some(Ok(EventFrame::Missed { .. }))
    ));
    assert_eq!(events.last_id(), None);
    let Some(Ok(EventFrame::Event(event))) = events.next().await else {
        panic!("expected an event");
    };
    assert_eq!(
        event.kind,
        EventKind::FunctionDeployed(FunctionDeployed {
            project: "p1".to_owned(),
            function: "hello".to_owned(),
            version: 2,
        })
    );
    assert_eq!(events.last_id(), Some("5-1"));
    assert!(events.next().await.is_none());
}

#[tokio::test]
async fn a_refused_upgrade_is_the_coordinators_refusal() {
    let (base, _) = test_server::serve(|_| {
        test_server::json(
            401,
            json!({"error": {"code": "unauthenticated", "message": "a bearer token or access_token is required", "request_id": "r9"}}),
        )
    })
    .await;
    let error = Client::new(&base)
        .unwrap()
        .events("shop", &EventFilter::default())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&error, ClientError::Api { status, code, request_id, .. }
            if *status == StatusCode::UNAUTHORIZED && code == "unauthenticated" && request_id == "r9"),
        "{error:?}"
    );
    assert_eq!(error.hint(), Some("log in again: nexus login"));
}

#[tokio::test]
async fn an_agent_session_sends_messages_and_reads_replies() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Binary(body) = message {
                let reply = json!({"type": "reply", "status": 200, "content_type": "text/plain",
                    "body": format!("echo {}", String::from_utf8_lossy(&body))});
                socket.send(Message::text(reply.to_string())).await.unwrap();
            }
        }
    });
    let client = Client::new(&base).unwrap();
    let mut session = client.agent_session("shop", "a1").await.unwrap();
    session.send("hello").await.unwrap();
    let Some(Ok(AgentFrame::Reply(reply))) = session.next().await else {
        panic!("expected a reply");
    };
    assert_eq!(reply.body, Bytes::from_static(b"echo hello"));
    session.close().await.unwrap();
}
