//! Spin outbound MQTT from guests, both interface versions (`/mqtt-probe`:
//! `fermyon:spin/mqtt@2.0.0`, `/p3/mqtt-probe`: `spin:mqtt/mqtt@3.0.0`), against the real
//! Mosquitto on 127.0.0.1:1883, the one broker the probes' `allowed_outbound_hosts` allow. A
//! real MQTT client subscribes from the test and receives what the guests publish.

use std::time::Duration;

use http::StatusCode;
use nexus_tests::{TestPlatform, TestResponse};
use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Publish, QoS};
use tokio::sync::mpsc;

use crate::counting_listener::CountingListener;

const BROKER_HOST: &str = "127.0.0.1";
const BROKER_PORT: u16 = 1883;

const PROBES: [&str; 2] = ["/mqtt-probe", "/p3/mqtt-probe"];

/// How long to wait for the broker or a message before failing.
const PATIENCE: Duration = Duration::from_secs(10);

fn broker_down(error: impl std::fmt::Display) -> String {
    format!(
        "the MQTT broker is not reachable at {BROKER_HOST}:{BROKER_PORT} ({error}); start it with: mosquitto -d -p {BROKER_PORT}"
    )
}

/// A real subscriber to `topic`, subscribed (its `SUBACK` received) when this returns.
struct Subscriber {
    messages: mpsc::UnboundedReceiver<Publish>,
    _client: AsyncClient,
}

impl Subscriber {
    async fn subscribe(topic: &str) -> Self {
        let id = format!("nexus-test-{}", uuid::Uuid::new_v4());
        let (client, event_loop) =
            AsyncClient::new(MqttOptions::new(id, BROKER_HOST, BROKER_PORT), 10);
        client.subscribe(topic, QoS::ExactlyOnce).await.unwrap();
        let (subscribed_tx, mut subscribed) = mpsc::unbounded_channel();
        let (messages_tx, messages) = mpsc::unbounded_channel();
        tokio::spawn(drive(event_loop, subscribed_tx, messages_tx));
        let outcome = tokio::time::timeout(PATIENCE, subscribed.recv())
            .await
            .unwrap_or_else(|_| panic!("{}", broker_down("no SUBACK")));
        if let Some(Err(error)) = outcome {
            panic!("{}", broker_down(error));
        }
        Self {
            messages,
            _client: client,
        }
    }

    async fn next(&mut self) -> Publish {
        tokio::time::timeout(PATIENCE, self.messages.recv())
            .await
            .expect("the published message did not arrive")
            .expect("the subscriber stopped")
    }
}

/// Polls the subscriber's connection, reporting the `SUBACK` (or the failure) and every
/// message.
async fn drive(
    mut event_loop: EventLoop,
    subscribed: mpsc::UnboundedSender<Result<(), String>>,
    messages: mpsc::UnboundedSender<Publish>,
) {
    loop {
        match event_loop.poll().await {
            Ok(Event::Incoming(Incoming::SubAck(_))) => {
                let _ = subscribed.send(Ok(()));
            }
            Ok(Event::Incoming(Incoming::Publish(message))) => {
                let _ = messages.send(message);
            }
            Ok(_) => {}
            Err(error) => {
                let _ = subscribed.send(Err(error.to_string()));
                return;
            }
        }
    }
}

fn broker_address() -> String {
    format!(
        "mqtt://{BROKER_HOST}:{BROKER_PORT}?client_id=nexus-probe-{}",
        uuid::Uuid::new_v4()
    )
}

async fn call(platform: &TestPlatform, probe: &str, params: &[(&str, &str)]) -> TestResponse {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    platform.get(&format!("{probe}?{query}")).await
}

async fn error(platform: &TestPlatform, probe: &str, params: &[(&str, &str)]) -> String {
    let response = call(platform, probe, params).await;
    assert_eq!(
        response.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{probe} {params:?}: {}",
        response.text()
    );
    response.text()
}

#[tokio::test]
async fn published_messages_reach_a_real_subscriber_at_every_qos() {
    let platform = TestPlatform::builder().start().await;
    for probe in PROBES {
        let topic = format!("nexus-test/{}/events", uuid::Uuid::new_v4());
        let mut subscriber = Subscriber::subscribe(&topic).await;
        for (qos, expected) in [
            ("0", QoS::AtMostOnce),
            ("1", QoS::AtLeastOnce),
            ("2", QoS::ExactlyOnce),
        ] {
            let payload = format!("hello from {probe} at QoS {qos}");
            let address = broker_address();
            let response = call(
                &platform,
                probe,
                &[
                    ("address", &address),
                    ("username", "nexus"),
                    ("password", "secret"),
                    ("keep_alive", "5"),
                    ("topic", &topic),
                    ("payload", &payload),
                    ("qos", qos),
                ],
            )
            .await;
            assert_eq!(
                response.status,
                StatusCode::OK,
                "{probe} QoS {qos}: {}",
                response.text()
            );
            assert_eq!(response.text(), "published");

            let message = subscriber.next().await;
            assert_eq!(message.topic, topic, "{probe} QoS {qos}");
            assert_eq!(
                message.payload.as_ref(),
                payload.as_bytes(),
                "{probe} QoS {qos}"
            );
            assert_eq!(message.qos, expected, "{probe} QoS {qos}");
        }
    }
}

#[tokio::test]
async fn addresses_outside_allowed_outbound_hosts_are_refused_before_any_connection() {
    let listener = CountingListener::bind().await;
    let platform = TestPlatform::builder().start().await;
    let port = listener.port();
    for probe in PROBES {
        for address in [
            format!("mqtt://127.0.0.1:{port}?client_id=denied"),
            format!("mqtt://localhost:{port}?client_id=denied"),
            format!("tcp://127.0.0.1:{port}?client_id=denied"),
            // The allowed broker, but under another name or scheme.
            "mqtt://localhost:1883?client_id=denied".to_owned(),
            "tcp://127.0.0.1:1883?client_id=denied".to_owned(),
        ] {
            let body = error(
                &platform,
                probe,
                &[
                    ("address", &address),
                    ("topic", "nexus-test/denied"),
                    ("qos", "1"),
                ],
            )
            .await;
            let expected = format!("ConnectionFailed(\"address {address} is not permitted\")");
            assert!(body.contains(&expected), "{probe} {address}: {body}");
        }
    }
    listener.assert_never_connected().await;
}

#[tokio::test]
async fn allowed_but_unusable_addresses_are_invalid_address() {
    let platform = TestPlatform::builder().start().await;
    for probe in PROBES {
        for address in [
            // rumqttc needs a client id.
            "mqtt://127.0.0.1:1883".to_owned(),
            "mqtt://127.0.0.1:1883?client_id=a&no_such_option=1".to_owned(),
            // Options rumqttc would panic on rather than refuse.
            "mqtt://127.0.0.1:1883?client_id=&clean_session=false".to_owned(),
            "mqtt://127.0.0.1:1883?client_id=a&inflight_num=0".to_owned(),
        ] {
            let body = error(&platform, probe, &[("address", &address)]).await;
            assert!(body.contains("InvalidAddress"), "{probe} {address}: {body}");
        }
    }
}

#[tokio::test]
async fn a_topic_with_wildcards_is_an_other_error() {
    let platform = TestPlatform::builder().start().await;
    for probe in PROBES {
        let address = broker_address();
        let body = error(
            &platform,
            probe,
            &[
                ("address", &address),
                ("topic", "nexus-test/#"),
                ("qos", "1"),
            ],
        )
        .await;
        assert!(body.contains("Other("), "{probe}: {body}");
    }
}
