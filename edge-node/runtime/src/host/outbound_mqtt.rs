//! Spin outbound MQTT: `fermyon:spin/mqtt@2.0.0` (spin-sdk 2–5) and `spin:mqtt/mqtt@3.0.0`
//! (spin-sdk 6–7), mirroring Spin's `crates/factor-outbound-mqtt` and its `rumqttc` client.
//!
//! `open` checks the address against `allowed_outbound_hosts` (scheme `mqtt`, default port
//! 1883) and answers `error::connection-failed("address … is not permitted")` when it is not
//! allowed, as Spin does; an address `rumqttc` cannot use (no `client_id` query parameter, an
//! unknown option…) is `error::invalid-address`. Like Spin, `open` does not touch the network:
//! the client connects on the first `publish`, which returns once the broker has the message
//! as the QoS requires (written for QoS 0, `PUBACK` for 1, `PUBCOMP` for 2). Connection and
//! protocol failures are `connection-failed`; every publish ends by the invocation's deadline.
//!
//! Not here: TLS (`mqtts://`): `rumqttc`'s TLS features would bring a second `rustls-webpki`
//! and native certificate loading that panics on failure, so such an address is
//! `invalid-address`.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Incoming, MqttOptions, Outgoing, QoS};
use tokio::sync::Mutex;
use tokio::time::Instant;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::allowed_hosts::AllowedHosts;
use super::outbound_address::OutboundAddress;
use crate::state::HostState;

mod v2;
mod v3;

/// Connections one instance may hold open at once; beyond this `open` answers
/// `too-many-connections`. (Spin's table has 1024 slots.)
const MAX_CONNECTIONS: usize = 32;

/// Requests queued between the client handle and its event loop (Spin's `MQTT_CHANNEL_CAP`).
const CHANNEL_CAPACITY: usize = 1000;

/// The largest packet the broker may send to a connection. A publisher only expects small
/// acknowledgements; the URL may raise rumqttc's 10 KiB default, but not past this.
const MAX_INCOMING_PACKET_BYTES: usize = 1 << 20;

/// How long a call may take when the instance serves no invocation (never expected: every
/// instance is bound to one before the guest runs).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The per-instance state of this capability.
#[derive(Default)]
pub struct OutboundMqttState {
    open_connections: usize,
}

/// An open connection: the resource behind both versions' `connection` handles.
#[derive(Clone)]
pub struct MqttConnection(Arc<Client>);

struct Client {
    handle: AsyncClient,
    /// Polled by one publish at a time, until its message is delivered.
    event_loop: Mutex<EventLoop>,
    deadline: Instant,
}

/// Why an operation failed, before it is mapped to either version's error variant.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    InvalidAddress,
    TooManyConnections,
    ConnectionFailed(String),
    Other(String),
}

/// What `open` was given.
struct OpenRequest {
    address: String,
    username: String,
    password: String,
    keep_alive_secs: u64,
}

/// What the host functions see of the store data.
pub struct OutboundMqttView<'a> {
    allowed: &'a Arc<AllowedHosts>,
    deadline: Instant,
    state: &'a mut OutboundMqttState,
    table: &'a mut ResourceTable,
}

impl OutboundMqttView<'_> {
    /// Checks the address, builds the client and stores it, in Spin's order: permission,
    /// then address syntax, then the connection limit. Nothing is sent yet.
    fn open(&mut self, request: OpenRequest) -> Result<Resource<MqttConnection>, Failure> {
        let checked = OutboundAddress::parse(&request.address, "mqtt")
            .filter(|checked| checked.is_allowed_by(self.allowed))
            .ok_or_else(|| {
                Failure::ConnectionFailed(format!("address {} is not permitted", request.address))
            })?;
        let options = options(&request, &checked)?;
        if self.state.open_connections >= MAX_CONNECTIONS {
            return Err(Failure::TooManyConnections);
        }
        let (handle, event_loop) = AsyncClient::new(options, CHANNEL_CAPACITY);
        let connection = MqttConnection(Arc::new(Client {
            handle,
            event_loop: Mutex::new(event_loop),
            deadline: self.deadline,
        }));
        let handle = self
            .table
            .push(connection)
            .map_err(|_| Failure::TooManyConnections)?;
        self.state.open_connections += 1;
        Ok(handle)
    }

    fn connection(&self, handle: &Resource<MqttConnection>) -> wasmtime::Result<MqttConnection> {
        Ok(self.table.get(handle)?.clone())
    }

    fn close(&mut self, handle: Resource<MqttConnection>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.state.open_connections = self.state.open_connections.saturating_sub(1);
        Ok(())
    }
}

/// The client options for `request`, as Spin builds them: the URL's options, then the
/// credentials and keep-alive `open` was given.
fn options(request: &OpenRequest, checked: &OutboundAddress) -> Result<MqttOptions, Failure> {
    let query = QueryOptions::read(&request.address);
    if query.would_panic() {
        tracing::info!("mqtt address has options rumqttc refuses");
        return Err(Failure::InvalidAddress);
    }
    let mut options = MqttOptions::parse_url(request.address.as_str()).map_err(|error| {
        tracing::info!(%error, "mqtt address is not usable");
        Failure::InvalidAddress
    })?;
    let (host, port) = options.broker_address();
    if !checked.is_target(&host, port) {
        tracing::info!("mqtt address parses to another target than the one checked");
        return Err(Failure::InvalidAddress);
    }
    options.set_credentials(request.username.as_str(), request.password.as_str());
    options.set_keep_alive(Duration::from_secs(request.keep_alive_secs));
    if let Some((incoming, outgoing)) = query.packet_sizes {
        options.set_max_packet_size(incoming.min(MAX_INCOMING_PACKET_BYTES), outgoing);
    }
    Ok(options)
}

/// The query options `rumqttc` reads that need a look before it does.
struct QueryOptions {
    client_id: Option<String>,
    clean_session: Option<bool>,
    inflight: Option<u16>,
    packet_sizes: Option<(usize, usize)>,
}

impl QueryOptions {
    fn read(address: &str) -> Self {
        let mut options = Self {
            client_id: None,
            clean_session: None,
            inflight: None,
            packet_sizes: None,
        };
        let Ok(url) = url::Url::parse(address) else {
            return options;
        };
        let (mut incoming, mut outgoing) = (None, None);
        for (name, value) in url.query_pairs() {
            match name.as_ref() {
                "client_id" => options.client_id = Some(value.into_owned()),
                "clean_session" => options.clean_session = value.parse().ok(),
                "inflight_num" => options.inflight = value.parse().ok(),
                "max_incoming_packet_size_bytes" => incoming = value.parse().ok(),
                "max_outgoing_packet_size_bytes" => outgoing = value.parse().ok(),
                _ => {}
            }
        }
        options.packet_sizes = incoming.zip(outgoing);
        options
    }

    /// Whether `rumqttc` would panic on these options instead of refusing them: an empty
    /// client id with `clean_session=false`, or zero messages in flight.
    fn would_panic(&self) -> bool {
        let empty_id = self.client_id.as_deref().is_some_and(str::is_empty);
        (empty_id && self.clean_session == Some(false)) || self.inflight == Some(0)
    }
}

impl MqttConnection {
    /// Queues the message, then drives the connection (connecting first if needed) until
    /// the broker has it, as Spin does.
    async fn publish(&self, topic: String, payload: Vec<u8>, qos: QoS) -> Result<(), Failure> {
        let client = &self.0;
        let deadline = client.deadline;
        let queued =
            tokio::time::timeout_at(deadline, client.handle.publish(topic, qos, false, payload))
                .await
                .map_err(|_| timed_out())?;
        queued.map_err(|error| Failure::Other(error.to_string()))?;
        tokio::time::timeout_at(deadline, async {
            let mut event_loop = client.event_loop.lock().await;
            loop {
                let event = event_loop
                    .poll()
                    .await
                    .map_err(|error| Failure::ConnectionFailed(error.to_string()))?;
                match (qos, event) {
                    (QoS::AtMostOnce, Event::Outgoing(Outgoing::Publish(_)))
                    | (QoS::AtLeastOnce, Event::Incoming(Incoming::PubAck(_)))
                    | (QoS::ExactlyOnce, Event::Incoming(Incoming::PubComp(_))) => {
                        return Ok(());
                    }
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| timed_out())?
    }
}

fn timed_out() -> Failure {
    Failure::ConnectionFailed(
        "the MQTT publish did not finish before the invocation's deadline".to_owned(),
    )
}

/// Adds both versions of the interface to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v2::add_to_linker(linker)?;
    v3::add_to_linker(linker)?;
    Ok(())
}

/// [`HasData`] marker for this capability.
pub struct OutboundMqtt;

impl HasData for OutboundMqtt {
    type Data<'a> = OutboundMqttView<'a>;
}

impl HostState {
    fn outbound_mqtt(&mut self) -> OutboundMqttView<'_> {
        OutboundMqttView {
            allowed: &self.env.allowed_hosts,
            deadline: self
                .deadline()
                .unwrap_or_else(|| Instant::now() + DEFAULT_TIMEOUT),
            state: &mut self.outbound_mqtt,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(address: &str) -> OpenRequest {
        OpenRequest {
            address: address.to_owned(),
            username: String::new(),
            password: String::new(),
            keep_alive_secs: 30,
        }
    }

    fn checked(address: &str) -> OutboundAddress {
        OutboundAddress::parse(address, "mqtt").unwrap()
    }

    #[test]
    fn open_checks_permission_then_address_then_limits_connections() {
        let allowed = Arc::new(AllowedHosts::parse(&["mqtt://127.0.0.1:1883".to_owned()]).unwrap());
        let mut state = OutboundMqttState::default();
        let mut table = ResourceTable::new();
        let mut view = OutboundMqttView {
            allowed: &allowed,
            deadline: Instant::now() + DEFAULT_TIMEOUT,
            state: &mut state,
            table: &mut table,
        };
        let allowed_address = "mqtt://127.0.0.1:1883?client_id=probe";
        let mut handles = Vec::new();
        for _ in 0..MAX_CONNECTIONS {
            handles.push(view.open(request(allowed_address)).unwrap());
        }
        assert_eq!(
            view.open(request(allowed_address)).err(),
            Some(Failure::TooManyConnections)
        );
        let denied = "mqtt://127.0.0.1:1884?client_id=probe";
        assert_eq!(
            view.open(request(denied)).err(),
            Some(Failure::ConnectionFailed(format!(
                "address {denied} is not permitted"
            )))
        );
        assert_eq!(
            view.open(request("mqtt://127.0.0.1:1883")).err(),
            Some(Failure::InvalidAddress)
        );
        view.close(handles.remove(0)).unwrap();
        assert!(view.open(request(allowed_address)).is_ok());
    }

    #[test]
    fn builds_options_from_the_url() {
        let address = "mqtt://127.0.0.1:1883?client_id=probe&max_incoming_packet_size_bytes=999999999&max_outgoing_packet_size_bytes=2048";
        let options = options(&request(address), &checked(address)).unwrap();
        assert_eq!(options.broker_address(), ("127.0.0.1".to_owned(), 1883));
        assert_eq!(options.client_id(), "probe");
        assert_eq!(options.keep_alive(), Duration::from_secs(30));
        assert_eq!(options.max_packet_size(), MAX_INCOMING_PACKET_BYTES);
    }

    #[test]
    fn refuses_what_rumqttc_refuses_or_panics_on() {
        for address in [
            "mqtt://127.0.0.1:1883",
            "mqtt://127.0.0.1:1883?client_id=a&unknown=1",
            "mqtts://127.0.0.1:8883?client_id=a",
            "mqtt://127.0.0.1:1883?client_id=&clean_session=false",
            "mqtt://127.0.0.1:1883?client_id=a&inflight_num=0",
        ] {
            let checked = OutboundAddress::parse(address, "mqtt").unwrap();
            assert_eq!(
                options(&request(address), &checked).err(),
                Some(Failure::InvalidAddress),
                "{address}"
            );
        }
    }
}
