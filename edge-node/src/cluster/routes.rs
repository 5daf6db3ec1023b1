//! The routing table the node serves its own ingress by: which functions it may serve, what
//! their aliases point at, and the records of those versions. The coordinator names the
//! table's revision in every lease update; the node asks for the table when it holds another,
//! and keeps a copy on disk, so a node restarted while it cannot reach any coordinator still
//! serves what it served before.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use nexus_proto::node::v1::{AliasRoute, RoutesRequest, RoutesResponse};
use prost::Message as _;
use tokio::sync::watch;

use super::CoordinatorClient;
use super::edge_service::EdgeServer;

/// How long asking for the table may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Waits before asking again after a failure.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What a request names, resolved: the version to run and what to record about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The project's id: the tenant.
    pub project_id: String,
    /// The function's id.
    pub function_id: String,
    /// The function's name.
    pub function: String,
    /// The version number.
    pub version: i64,
    /// The version's deployment id.
    pub deployment: String,
}

/// One function, as the table holds it.
struct Function {
    project_id: String,
    function_id: String,
    aliases: HashMap<String, AliasRoute>,
}

/// A revision of the table.
#[derive(Default)]
struct Table {
    revision: String,
    /// By (project name, function name).
    functions: HashMap<(String, String), Function>,
}

impl Table {
    fn of(routes: &RoutesResponse) -> Self {
        let functions = routes
            .functions
            .iter()
            .map(|function| {
                (
                    (function.project.clone(), function.function.clone()),
                    Function {
                        project_id: function.project_id.clone(),
                        function_id: function.function_id.clone(),
                        aliases: function
                            .aliases
                            .iter()
                            .map(|alias| (alias.name.clone(), alias.clone()))
                            .collect(),
                    },
                )
            })
            .collect();
        Self {
            revision: routes.revision.clone(),
            functions,
        }
    }
}

/// The table, its copy on disk, and where its records go.
pub struct RouteTable {
    table: RwLock<Arc<Table>>,
    /// The last table received, with every record it names, as received.
    saved: std::sync::Mutex<RoutesResponse>,
    path: PathBuf,
    edge: Arc<EdgeServer>,
}

impl RouteTable {
    /// The table kept at `path`, as it was saved there (empty when nothing was); records go
    /// to `edge`, which runs them.
    pub fn open(path: PathBuf, edge: Arc<EdgeServer>) -> Self {
        let saved = std::fs::read(&path)
            .ok()
            .and_then(|bytes| RoutesResponse::decode(bytes.as_slice()).ok())
            .unwrap_or_default();
        let table = Self {
            table: RwLock::default(),
            saved: std::sync::Mutex::new(RoutesResponse::default()),
            path,
            edge,
        };
        if !saved.revision.is_empty() {
            tracing::info!(
                revision = saved.revision,
                "serving the routing table saved on disk"
            );
            table.apply(saved);
        }
        table
    }

    /// The revision held.
    pub fn revision(&self) -> String {
        self.current().revision.clone()
    }

    fn current(&self) -> Arc<Table> {
        Arc::clone(
            &self
                .table
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// The version `alias` of `function` in `project` sends this request to (its canary for
    /// the canary's share of requests), if the node may serve it.
    pub fn resolve(&self, project: &str, function: &str, alias: &str) -> Option<Routed> {
        let table = self.current();
        let entry = table
            .functions
            .get(&(project.to_owned(), function.to_owned()))?;
        let route = entry.aliases.get(alias)?;
        let canary = route
            .canary
            .as_ref()
            .filter(|_| (uuid::Uuid::new_v4().as_u128() % 100) < u128::from(route.canary_weight));
        let version = canary.or(route.main.as_ref())?;
        Some(Routed {
            project_id: entry.project_id.clone(),
            function_id: entry.function_id.clone(),
            function: function.to_owned(),
            version: version.version,
            deployment: version.deployment.clone(),
        })
    }

    /// Takes `routes`: their records to the edge, the table in place, a copy to disk.
    fn apply(&self, mut routes: RoutesResponse) {
        for deployment in std::mem::take(&mut routes.deployments) {
            if let Err(error) = self.edge.learn(deployment) {
                tracing::warn!(
                    error = error.message(),
                    "a routed version's record is unreadable"
                );
            }
        }
        let table = Arc::new(Table::of(&routes));
        let named = table
            .functions
            .values()
            .flat_map(|function| function.aliases.values())
            .flat_map(|alias| [alias.main.as_ref(), alias.canary.as_ref()])
            .flatten()
            .map(|version| version.deployment.clone());
        routes.deployments = self.edge.deployment_messages(named);
        *self
            .table
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = table;
        *self
            .saved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = routes;
    }

    /// Writes the table to disk (beside, then over the old copy, so a crash leaves one whole).
    async fn save(&self) {
        let bytes = self
            .saved
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .encode_to_vec();
        let path = self.path.clone();
        let written = tokio::task::spawn_blocking(move || {
            let partial = path.with_extension("partial");
            std::fs::write(&partial, bytes)?;
            std::fs::rename(&partial, &path)
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "could not save the routing table"),
            Err(error) => tracing::warn!(%error, "could not save the routing table"),
        }
    }

    /// Keeps the table at the revision the coordinators name in `wanted` (which coordinator
    /// named it, as whom the node holds its lease there, the revision), until `stop`.
    pub async fn follow(
        self: Arc<Self>,
        coordinators: Arc<[CoordinatorClient]>,
        mut wanted: watch::Receiver<Option<Wanted>>,
        mut stop: watch::Receiver<bool>,
    ) {
        loop {
            let want = wanted.borrow_and_update().clone();
            if let Some(want) = want
                && want.revision != self.revision()
                && let Some(coordinator) = coordinators.get(want.coordinator)
            {
                match self.fetch(coordinator.clone(), &want.node_id).await {
                    Ok(()) => continue,
                    Err(error) => {
                        tracing::warn!(%error, "could not read the routing table");
                        tokio::select! {
                            () = tokio::time::sleep(RETRY_AFTER) => continue,
                            _ = stop.wait_for(|stop| *stop) => return,
                        }
                    }
                }
            }
            tokio::select! {
                changed = wanted.changed() => if changed.is_err() { return },
                _ = stop.wait_for(|stop| *stop) => return,
            }
        }
    }

    async fn fetch(
        &self,
        mut coordinator: CoordinatorClient,
        node_id: &str,
    ) -> Result<(), tonic::Status> {
        let request = RoutesRequest {
            node_id: node_id.to_owned(),
            known_deployments: self.edge.known_deployments(),
        };
        let routes = tokio::time::timeout(FETCH_TIMEOUT, coordinator.routes(request))
            .await
            .map_err(|_| tonic::Status::deadline_exceeded("the routing table took too long"))??
            .into_inner();
        tracing::info!(
            revision = routes.revision,
            functions = routes.functions.len(),
            "routing table received"
        );
        self.apply(routes);
        self.save().await;
        Ok(())
    }
}

/// The revision a coordinator named, and where to ask for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    /// The coordinator's place in the node's list.
    pub coordinator: usize,
    /// The node's id with that coordinator.
    pub node_id: String,
    /// The revision.
    pub revision: String,
}
