//! Spin key-value: `fermyon:spin/key-value@2.0.0` (spin-sdk 2–5) and
//! `spin:key-value/key-value@3.0.0` (spin-sdk 6–7), over a [`ContextStore`].
//!
//! A store label maps to the namespace `<app>/<label>`, or, in an invocation for an agent
//! ([`AgentContext`]), to `<app>/agents/<agent>/<label>`: each agent has stores of its own, under
//! the same labels. A component may open only the labels listed in its `key_value_stores`; any
//! other label is `access-denied`, as in Spin.

use std::sync::Arc;

use nexus_context::{ContextStore, Namespace};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::caps::CallBudget;
use crate::state::HostState;

/// Marks a request as an invocation for one agent: put on the request as an extension, it
/// gives the instance that agent's key-value stores instead of the app's. Only the control
/// plane sets it; nothing a client sends becomes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentContext(pub Arc<str>);

/// Open stores one instance may hold at once; beyond this `open` answers `store-table-full`.
const MAX_OPEN_STORES: usize = 64;

/// Which stores a component may open, and where they live.
pub struct KeyValueAccess {
    backend: Arc<dyn ContextStore>,
    app: String,
    allowed_labels: Vec<String>,
    budget: CallBudget,
}

impl KeyValueAccess {
    /// Access for a component of `app` allowed to open `allowed_labels`, each value and result
    /// within `budget`.
    pub(crate) fn new(
        backend: Arc<dyn ContextStore>,
        app: &str,
        allowed_labels: &[String],
        budget: CallBudget,
    ) -> Self {
        Self {
            backend,
            app: app.to_owned(),
            allowed_labels: allowed_labels.to_vec(),
            budget,
        }
    }

    /// The bytes one call may move; `wasi:keyvalue` checks the same.
    pub(crate) fn budget(&self) -> &CallBudget {
        &self.budget
    }

    /// The backend and namespace behind store `label` (the agent's when `agent` is given),
    /// or `None` when the component may not open it. `wasi:keyvalue` opens the same stores
    /// through this.
    pub(crate) fn resolve(
        &self,
        label: &str,
        agent: Option<&AgentContext>,
    ) -> Option<(Arc<dyn ContextStore>, Namespace)> {
        if !self.allowed_labels.iter().any(|allowed| allowed == label) {
            return None;
        }
        let namespace = match agent {
            None => Namespace::store(&self.app, label),
            Some(AgentContext(agent)) => Namespace::agent_store(&self.app, agent, label),
        };
        Some((Arc::clone(&self.backend), namespace))
    }
}

/// An open store: the resource behind both versions' `store` handles.
#[derive(Clone)]
pub struct OpenStore {
    backend: Arc<dyn ContextStore>,
    namespace: Namespace,
    budget: CallBudget,
}

/// The operations both versions share, with errors not yet mapped to a version's variant.
impl OpenStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Failure> {
        let value = self.backend.get(&self.namespace, key).await?;
        if let Some(value) = &value {
            self.budget.check(value.len()).map_err(Failure::Other)?;
        }
        Ok(value)
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), Failure> {
        self.budget.check(value.len()).map_err(Failure::Other)?;
        Ok(self.backend.set(&self.namespace, key, value, None).await?)
    }

    async fn delete(&self, key: &str) -> Result<(), Failure> {
        self.backend.delete(&self.namespace, key).await?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, Failure> {
        Ok(self.backend.exists(&self.namespace, key).await?)
    }

    async fn keys(&self) -> Result<Vec<String>, Failure> {
        Ok(self.backend.keys(&self.namespace).await?)
    }
}

/// The per-instance state of this capability.
#[derive(Default)]
pub struct KeyValueState {
    open_stores: usize,
}

/// What the host functions see of the store data.
pub struct KeyValueView<'a> {
    access: &'a KeyValueAccess,
    agent: Option<&'a AgentContext>,
    state: &'a mut KeyValueState,
    table: &'a mut ResourceTable,
}

/// Why an operation failed, before it is mapped to either version's error variant.
enum Failure {
    TableFull,
    AccessDenied,
    Other(String),
}

impl From<nexus_context::Error> for Failure {
    fn from(error: nexus_context::Error) -> Self {
        Self::Other(error.to_string())
    }
}

impl KeyValueView<'_> {
    fn open(
        &mut self,
        label: &str,
    ) -> Result<Result<Resource<OpenStore>, Failure>, wasmtime::Error> {
        let Some((backend, namespace)) = self.access.resolve(label, self.agent) else {
            return Ok(Err(Failure::AccessDenied));
        };
        if self.state.open_stores >= MAX_OPEN_STORES {
            return Ok(Err(Failure::TableFull));
        }
        let store = OpenStore {
            backend,
            namespace,
            budget: self.access.budget.clone(),
        };
        let handle = self.table.push(store)?;
        self.state.open_stores += 1;
        Ok(Ok(handle))
    }

    fn store(&self, handle: &Resource<OpenStore>) -> Result<OpenStore, wasmtime::Error> {
        Ok(self.table.get(handle)?.clone())
    }

    fn close(&mut self, handle: Resource<OpenStore>) -> Result<(), wasmtime::Error> {
        self.table.delete(handle)?;
        self.state.open_stores = self.state.open_stores.saturating_sub(1);
        Ok(())
    }
}

/// Adds both versions of the interface to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v2::fermyon::spin::key_value::add_to_linker::<HostState, KeyValue>(
        linker,
        HostState::key_value,
    )?;
    v3::spin::key_value::key_value::add_to_linker::<HostState, KeyValue>(
        linker,
        HostState::key_value,
    )?;
    Ok(())
}

/// [`HasData`] marker for this capability.
pub struct KeyValue;

impl HasData for KeyValue {
    type Data<'a> = KeyValueView<'a>;
}

impl HostState {
    fn key_value(&mut self) -> KeyValueView<'_> {
        KeyValueView {
            access: &self.env.key_value,
            agent: self
                .invocation
                .as_ref()
                .and_then(|invocation| invocation.agent.as_ref()),
            state: &mut self.key_value,
            table: &mut self.table,
        }
    }
}

mod v2 {
    //! `fermyon:spin/key-value@2.0.0`: synchronous to the guest, async on the host.

    use wasmtime::component::Resource;

    use super::{Failure, KeyValueView, OpenStore};

    wasmtime::component::bindgen!({
        path: "wit",
        world: "nexus:host/key-value-v2",
        imports: { default: async | trappable },
        with: { "fermyon:spin/key-value.store": super::OpenStore },
    });

    use fermyon::spin::key_value::{Error, Host, HostStore};

    impl From<Failure> for Error {
        fn from(failure: Failure) -> Self {
            match failure {
                Failure::TableFull => Self::StoreTableFull,
                Failure::AccessDenied => Self::AccessDenied,
                Failure::Other(message) => Self::Other(message),
            }
        }
    }

    type Outcome<T> = wasmtime::Result<Result<T, Error>>;

    impl Host for KeyValueView<'_> {}

    impl HostStore for KeyValueView<'_> {
        async fn open(&mut self, label: String) -> Outcome<Resource<OpenStore>> {
            Ok(self.open(&label)?.map_err(Error::from))
        }

        async fn get(
            &mut self,
            store: Resource<OpenStore>,
            key: String,
        ) -> Outcome<Option<Vec<u8>>> {
            Ok(self.store(&store)?.get(&key).await.map_err(Error::from))
        }

        async fn set(
            &mut self,
            store: Resource<OpenStore>,
            key: String,
            value: Vec<u8>,
        ) -> Outcome<()> {
            Ok(self
                .store(&store)?
                .set(&key, &value)
                .await
                .map_err(Error::from))
        }

        async fn delete(&mut self, store: Resource<OpenStore>, key: String) -> Outcome<()> {
            Ok(self.store(&store)?.delete(&key).await.map_err(Error::from))
        }

        async fn exists(&mut self, store: Resource<OpenStore>, key: String) -> Outcome<bool> {
            Ok(self.store(&store)?.exists(&key).await.map_err(Error::from))
        }

        async fn get_keys(&mut self, store: Resource<OpenStore>) -> Outcome<Vec<String>> {
            Ok(self.store(&store)?.keys().await.map_err(Error::from))
        }

        async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
            self.close(store)
        }
    }
}

mod v3 {
    //! `spin:key-value/key-value@3.0.0`: `async func`s, called concurrently by WASIp3 guests.

    use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

    use super::{Failure, KeyValue, OpenStore};

    wasmtime::component::bindgen!({
        path: "wit",
        world: "nexus:host/key-value-v3",
        imports: { default: trappable },
        with: { "spin:key-value/key-value.store": super::OpenStore },
    });

    use spin::key_value::key_value::{Error, Host, HostStore, HostStoreWithStore};

    impl From<Failure> for Error {
        fn from(failure: Failure) -> Self {
            match failure {
                Failure::TableFull => Self::StoreTableFull,
                Failure::AccessDenied => Self::AccessDenied,
                Failure::Other(message) => Self::Other(message),
            }
        }
    }

    type Outcome<T> = wasmtime::Result<Result<T, Error>>;

    impl Host for super::KeyValueView<'_> {}

    impl HostStore for super::KeyValueView<'_> {
        fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
            self.close(store)
        }
    }

    impl<T> HostStoreWithStore<T> for KeyValue {
        async fn open(accessor: &Accessor<T, Self>, label: String) -> Outcome<Resource<OpenStore>> {
            accessor.with(|mut access| Ok(access.get().open(&label)?.map_err(Error::from)))
        }

        async fn get(
            accessor: &Accessor<T, Self>,
            store: Resource<OpenStore>,
            key: String,
        ) -> Outcome<Option<Vec<u8>>> {
            let store = accessor.with(|mut access| access.get().store(&store))?;
            Ok(store.get(&key).await.map_err(Error::from))
        }

        async fn set(
            accessor: &Accessor<T, Self>,
            store: Resource<OpenStore>,
            key: String,
            value: Vec<u8>,
        ) -> Outcome<()> {
            let store = accessor.with(|mut access| access.get().store(&store))?;
            Ok(store.set(&key, &value).await.map_err(Error::from))
        }

        async fn delete(
            accessor: &Accessor<T, Self>,
            store: Resource<OpenStore>,
            key: String,
        ) -> Outcome<()> {
            let store = accessor.with(|mut access| access.get().store(&store))?;
            Ok(store.delete(&key).await.map_err(Error::from))
        }

        async fn exists(
            accessor: &Accessor<T, Self>,
            store: Resource<OpenStore>,
            key: String,
        ) -> Outcome<bool> {
            let store = accessor.with(|mut access| access.get().store(&store))?;
            Ok(store.exists(&key).await.map_err(Error::from))
        }

        async fn get_keys(
            accessor: &Accessor<T, Self>,
            store: Resource<OpenStore>,
        ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), Error>>)> {
            let store = accessor.with(|mut access| access.get().store(&store))?;
            let (keys, outcome) = match store.keys().await {
                Ok(keys) => (keys, Ok(())),
                Err(failure) => (Vec::new(), Err(Error::from(failure))),
            };
            accessor.with(|mut access| {
                let keys = StreamReader::new(&mut access, keys)?;
                let outcome =
                    FutureReader::new(
                        &mut access,
                        async move { Ok::<_, wasmtime::Error>(outcome) },
                    )?;
                Ok((keys, outcome))
            })
        }
    }
}
