//! `spin:mqtt/mqtt@3.0.0`: `async func`s, called concurrently by WASIp3 guests. The store is
//! only borrowed to open and look up; the publish itself runs outside it.

use wasmtime::component::{Accessor, Linker, Resource};

use super::{Failure, MqttConnection, OpenRequest, OutboundMqtt, OutboundMqttView};
use crate::state::HostState;

wasmtime::component::bindgen!({
    path: "wit",
    world: "nexus:host/outbound-mqtt-v3",
    imports: { default: trappable },
    with: { "spin:mqtt/mqtt.connection": super::MqttConnection },
});

use spin::mqtt::mqtt::{Error, Host, HostConnection, HostConnectionWithStore, Qos};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    spin::mqtt::mqtt::add_to_linker::<HostState, OutboundMqtt>(linker, HostState::outbound_mqtt)
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::InvalidAddress => Self::InvalidAddress,
            Failure::TooManyConnections => Self::TooManyConnections,
            Failure::ConnectionFailed(message) => Self::ConnectionFailed(message),
            Failure::Other(message) => Self::Other(message),
        }
    }
}

impl From<Qos> for rumqttc::QoS {
    fn from(qos: Qos) -> Self {
        match qos {
            Qos::AtMostOnce => Self::AtMostOnce,
            Qos::AtLeastOnce => Self::AtLeastOnce,
            Qos::ExactlyOnce => Self::ExactlyOnce,
        }
    }
}

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl Host for OutboundMqttView<'_> {}

impl HostConnection for OutboundMqttView<'_> {
    fn drop(&mut self, connection: Resource<MqttConnection>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}

impl<T> HostConnectionWithStore<T> for OutboundMqtt {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
        username: String,
        password: String,
        keep_alive_interval_in_secs: u64,
    ) -> Outcome<Resource<MqttConnection>> {
        let request = OpenRequest {
            address,
            username,
            password,
            keep_alive_secs: keep_alive_interval_in_secs,
        };
        accessor.with(|mut access| Ok(access.get().open(request).map_err(Error::from)))
    }

    async fn publish(
        accessor: &Accessor<T, Self>,
        connection: Resource<MqttConnection>,
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
    ) -> Outcome<()> {
        let connection = accessor.with(|mut access| access.get().connection(&connection))?;
        Ok(connection
            .publish(topic, payload, qos.into())
            .await
            .map_err(Error::from))
    }
}
