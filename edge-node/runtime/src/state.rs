//! What a wasmtime `Store` holds for one instance: WASI, wasi:http, and each host capability's
//! per-instance state, plus the invocation it serves.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, oneshot};
use tokio::time::Instant;
use wasmtime::component::ResourceTable;
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::caps::Breaches;
use crate::config::Limits;
use crate::cpu_gate::CpuShare;
use crate::host::allowed_hosts::AllowedHosts;
use crate::host::key_value::{AgentContext, KeyValueAccess, KeyValueState};
use crate::host::local_requests::LocalDispatchSlot;
use crate::host::outbound_http::OutboundHttp;
use crate::host::outbound_mqtt::OutboundMqttState;
use crate::host::outbound_mysql::{MysqlPools, OutboundMysqlState};
use crate::host::outbound_pg::{OutboundPgState, PgPools};
use crate::host::outbound_redis::OutboundRedisState;
use crate::host::sqlite::{SqliteAccess, SqliteState};
use crate::host::wasi_keyvalue::WasiKeyValueState;
use crate::output::{Captured, LogSink};

/// Everything about a component that is the same for all of its instances.
pub struct ComponentEnv {
    /// The app the component belongs to.
    pub app: String,
    /// The component id.
    pub id: String,
    /// Key-value stores it may open.
    pub key_value: KeyValueAccess,
    /// SQLite databases it may open.
    pub sqlite: SqliteAccess,
    /// Its variables, resolved.
    pub variables: BTreeMap<String, String>,
    /// Postgres connection pools, shared by every component of the runtime.
    pub pg_pools: Arc<PgPools>,
    /// MySQL connection pools, shared by every component of the runtime.
    pub mysql_pools: Arc<MysqlPools>,
    /// Where it may send HTTP requests.
    pub allowed_hosts: Arc<AllowedHosts>,
    /// Environment variables the guest sees.
    pub environment: Vec<(String, String)>,
    /// Where requests to the app itself go.
    pub local: LocalDispatchSlot,
    /// Cap on each linear memory.
    pub memory_limit_bytes: usize,
    /// The runtime's limits, for the caps enforced inside host calls.
    pub limits: Limits,
    /// Where breaches of those caps are counted.
    pub(crate) breaches: Arc<Breaches>,
}

/// The invocation an instance is serving.
pub struct Invocation {
    /// When the guest must have answered.
    pub deadline: Instant,
    /// The instance slot; released when the store is dropped.
    pub slot: OwnedSemaphorePermit,
    /// The agent it runs for, whose key-value stores it opens instead of the app's.
    pub agent: Option<AgentContext>,
    /// Told how the instance ended. A guest's trap is reported to the instance, not to the
    /// request, and this is how the request learns why it got no response.
    pub ended: oneshot::Sender<wasmtime::Result<()>>,
    /// The span the request arrived in: the guest's outbound calls are its children.
    pub span: tracing::Span,
    /// Where the guest's output goes when the instance ends; nowhere else than this
    /// process's own stdout and stderr without one.
    pub log_sink: Option<LogSink>,
    /// The component's variables rendered for this invocation (fresh secrets), in place of
    /// the ones resolved at load.
    pub variables: Option<Arc<BTreeMap<String, String>>>,
}

/// The data of every `Store` this runtime creates.
pub struct HostState {
    pub(crate) table: ResourceTable,
    pub(crate) wasi: WasiCtx,
    pub(crate) http: WasiHttpCtx,
    pub(crate) outbound: OutboundHttp,
    pub(crate) limits: StoreLimits,
    pub(crate) env: Arc<ComponentEnv>,
    pub(crate) key_value: KeyValueState,
    pub(crate) wasi_key_value: WasiKeyValueState,
    pub(crate) outbound_redis: OutboundRedisState,
    pub(crate) outbound_mqtt: OutboundMqttState,
    pub(crate) sqlite: SqliteState,
    pub(crate) outbound_pg: OutboundPgState,
    pub(crate) outbound_mysql: OutboundMysqlState,
    pub(crate) invocation: Option<Invocation>,
    pub(crate) cpu: CpuShare,
    pub(crate) output: Captured,
}

impl HostState {
    /// Fresh state for a new instance of the component described by `env`.
    pub fn new(env: Arc<ComponentEnv>) -> Self {
        let mut wasi = WasiCtxBuilder::new();
        let output = Captured::default();
        wasi.stdout(output.stream(false))
            .stderr(output.stream(true));
        crate::host::sockets::configure(&mut wasi, &env.allowed_hosts);
        for (name, value) in &env.environment {
            wasi.env(name, value);
        }
        let cpu = CpuShare::default();
        let mut table = ResourceTable::new();
        table.set_max_capacity(usize::try_from(env.limits.max_resources).unwrap_or(usize::MAX));
        let mut http = WasiHttpCtx::new();
        http.set_field_size_limit(crate::caps::field_size_limit(&env.limits));
        Self {
            table,
            wasi: wasi.build(),
            http,
            outbound: OutboundHttp::new(
                Arc::clone(&env.allowed_hosts),
                env.local.clone(),
                env.limits.clone(),
                Arc::clone(&env.breaches),
            ),
            // The pool caps these on the optimized engine; the store caps them on both, so
            // baseline code (allocated on demand) gets the same limits.
            limits: StoreLimitsBuilder::new()
                .memory_size(env.memory_limit_bytes)
                .instances(crate::engine::CORE_INSTANCES_PER_COMPONENT as usize)
                .memories(crate::engine::MEMORIES_PER_COMPONENT as usize)
                .tables(crate::engine::TABLES_PER_COMPONENT as usize)
                .table_elements(crate::engine::TABLE_ELEMENTS)
                .trap_on_grow_failure(false)
                .build(),
            env,
            key_value: KeyValueState::default(),
            wasi_key_value: WasiKeyValueState::default(),
            outbound_redis: OutboundRedisState::default(),
            outbound_mqtt: OutboundMqttState::default(),
            sqlite: SqliteState::default(),
            outbound_pg: OutboundPgState::default(),
            outbound_mysql: OutboundMysqlState::default(),
            invocation: None,
            cpu,
            output,
        }
    }

    /// Binds the instance to an invocation: its deadline and its slot.
    pub fn begin(&mut self, invocation: Invocation) {
        self.outbound.set_deadline(invocation.deadline);
        self.outbound.set_caller(invocation.span.clone());
        self.invocation = Some(invocation);
    }

    /// The invocation's deadline, if the instance is serving one.
    pub fn deadline(&self) -> Option<Instant> {
        self.invocation
            .as_ref()
            .map(|invocation| invocation.deadline)
    }

    /// The component's variables as this instance sees them.
    pub(crate) fn variable_values(&self) -> &BTreeMap<String, String> {
        self.invocation
            .as_ref()
            .and_then(|invocation| invocation.variables.as_deref())
            .unwrap_or(&self.env.variables)
    }

    /// Takes the invocation out, so its slot can be released and its requester told after
    /// the store is gone.
    pub fn end(&mut self) -> Option<Invocation> {
        self.invocation.take()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}
