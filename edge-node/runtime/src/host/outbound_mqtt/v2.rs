//! `fermyon:spin/mqtt@2.0.0`: synchronous to the guest, async on the host.

use wasmtime::component::{Linker, Resource};

use super::{Failure, MqttConnection, OpenRequest, OutboundMqtt, OutboundMqttView};
use crate::state::HostState;

wasmtime::component::bindgen!({
    path: "wit",
    world: "nexus:host/outbound-mqtt-v2",
    imports: { default: async | trappable },
    with: { "fermyon:spin/mqtt.connection": super::MqttConnection },
});

use fermyon::spin::mqtt::{Error, Host, HostConnection, Qos};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    fermyon::spin::mqtt::add_to_linker::<HostState, OutboundMqtt>(linker, HostState::outbound_mqtt)
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
    async fn open(
        &mut self,
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
        Ok(OutboundMqttView::open(self, request).map_err(Error::from))
    }

    async fn publish(
        &mut self,
        connection: Resource<MqttConnection>,
        topic: String,
        payload: Vec<u8>,
        qos: Qos,
    ) -> Outcome<()> {
        let connection = self.connection(&connection)?;
        Ok(connection
            .publish(topic, payload, qos.into())
            .await
            .map_err(Error::from))
    }

    async fn drop(&mut self, connection: Resource<MqttConnection>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}
