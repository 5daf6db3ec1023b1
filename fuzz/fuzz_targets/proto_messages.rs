//! Every protobuf message a node or the coordinator receives (`nexus.node.v1`, `nexus.v1`),
//! then what the receiver makes of the parts that carry more: the HTTP head of an invocation
//! (`nexus_proto::wire`), the resolved app record a node is sent (JSON), a cloud host's
//! invocation payload (`nexus_proto::cloud`). The first byte picks the message.
//!
//! Beyond not panicking: a decoded message encodes to `encoded_len` bytes and decodes back to
//! itself; accepted heads and payloads convert back and forth to the same values.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nexus_proto::node::v1 as node;
use nexus_proto::node::v1::{invoke_request, invoke_response};
use nexus_proto::{ResolvedApp, cloud, route, v1, wire};
use prost::Message;

/// Decodes `data` as `M`; a decoded message must survive its own encoding.
fn round_trip<M: Message + Default + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<M> {
    let message = M::decode(data).ok()?;
    let encoded = message.encode_to_vec();
    assert_eq!(encoded.len(), message.encoded_len());
    let again = M::decode(encoded.as_slice()).expect("an encoded message decodes");
    assert_eq!(again, message);
    Some(message)
}

/// What a node does with an invocation's head: the request line and headers as HTTP, the app
/// record when it is new. Accepted headers go back to the same messages' map.
fn invoke_head(head: node::InvokeHead) {
    if let Some(deployment) = head.deployment {
        resolved_app(&deployment.app);
    }
    let _ = wire::request_line(&head.method, &head.uri);
    headers(head.headers);
}

fn headers(messages: Vec<node::Header>) {
    if let Ok(map) = wire::headers_from_wire(messages) {
        let back = wire::headers_from_wire(wire::headers_to_wire(&map)).expect("sent headers");
        assert_eq!(back, map);
    }
}

/// The resolved app record as a node reads it, and its routes as its router parses them.
fn resolved_app(json: &[u8]) {
    let Ok(app) = serde_json::from_slice::<ResolvedApp>(json) else {
        return;
    };
    for trigger in &app.http_triggers {
        if let nexus_proto::app::HttpRoute::Path(pattern) = &trigger.route {
            let _ = route::parse(&route::based_route(pattern));
        }
    }
    let again: ResolvedApp =
        serde_json::from_slice(&serde_json::to_vec(&app).expect("serializes")).expect("reads");
    assert_eq!(again, app);
}

/// A cloud host's payload: `{"nexus": CloudInvoke}`, its headers and body.
fn cloud_invoke(json: &[u8]) {
    let Ok(envelope) = serde_json::from_slice::<cloud::CloudEnvelope>(json) else {
        return;
    };
    let invoke = envelope.nexus;
    if let Ok(map) = cloud::pairs_to_headers(&invoke.headers)
        && let Ok(pairs) = cloud::headers_to_pairs(&map)
    {
        assert_eq!(cloud::pairs_to_headers(&pairs).expect("sent pairs"), map);
    }
    if let Ok(body) = cloud::decode_body(&invoke.body) {
        assert_eq!(
            cloud::encode_body(&body),
            invoke.body,
            "base64 is canonical"
        );
    }
    let _ = wire::request_line(&invoke.method, &invoke.uri);
}

fuzz_target!(|data: &[u8]| {
    let Some((selector, data)) = data.split_first() else {
        return;
    };
    match selector % 22 {
        0 => {
            if let Some(request) = round_trip::<node::InvokeRequest>(data) {
                if let Some(invoke_request::Part::Head(head)) = request.part {
                    invoke_head(head);
                }
            }
        }
        1 => {
            if let Some(response) = round_trip::<node::InvokeResponse>(data) {
                if let Some(invoke_response::Part::Head(head)) = response.part {
                    let _ = wire::status(head.status);
                    headers(head.headers);
                }
            }
        }
        2 => {
            let _ = round_trip::<node::RegisterRequest>(data);
        }
        3 => {
            let _ = round_trip::<node::RegisterResponse>(data);
        }
        4 => {
            let _ = round_trip::<node::Heartbeat>(data);
        }
        5 => {
            let _ = round_trip::<node::LeaseUpdate>(data);
        }
        6 => {
            let _ = round_trip::<node::FetchComponentRequest>(data);
        }
        7 => {
            let _ = round_trip::<node::ComponentChunk>(data);
        }
        8 => {
            let _ = round_trip::<node::DrainRequest>(data);
        }
        9 => {
            let _ = round_trip::<node::DrainResponse>(data);
        }
        10 => {
            if let Some(request) = round_trip::<node::PrefetchRequest>(data) {
                for deployment in request.deployments {
                    resolved_app(&deployment.app);
                }
            }
        }
        11 => {
            let _ = round_trip::<node::PrefetchResponse>(data);
        }
        12 => {
            let _ = round_trip::<v1::CreateAgentRequest>(data);
        }
        13 => {
            let _ = round_trip::<v1::GetAgentRequest>(data);
        }
        14 => {
            let _ = round_trip::<v1::ListAgentsRequest>(data);
        }
        15 => {
            let _ = round_trip::<v1::AgentRef>(data);
        }
        16 => {
            let _ = round_trip::<v1::SendMessageRequest>(data);
        }
        17 => {
            let _ = round_trip::<v1::ListSessionsRequest>(data);
        }
        18 => {
            let _ = round_trip::<v1::RevokeSessionRequest>(data);
        }
        19 => {
            let _ = round_trip::<v1::CurrentSessionRequest>(data);
        }
        20 => resolved_app(data),
        _ => cloud_invoke(data),
    }
});
