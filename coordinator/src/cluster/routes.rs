//! The routing table edge nodes serve from on their own ingress: every alias of every function
//! that may run on the edge, resolved to its versions as the trigger resolves it. A node holds
//! the table and the records it names, so it keeps serving while it cannot reach any
//! coordinator. Each lease update carries the table's revision, a digest of its content that
//! every replica computes alike; a node that holds another revision asks for `Routes`.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nexus_proto::node::v1::{AliasRoute, FunctionRoute, RoutesResponse, VersionRoute};
use nexus_store::Store;
use sha2::{Digest as _, Sha256};

use super::dispatch::{deployment_message, matches};
use crate::cloud::PlacementMode;
use crate::dispatch::Target;
use crate::trigger::{Resolution, Resolver};

/// How long a built table is served before it is built again: a change made on any replica
/// reaches the nodes within this, the trigger's own resolution time, and a heartbeat.
const REBUILD_AFTER: Duration = Duration::from_secs(1);

/// Aliases in the table at most.
const MAX_ALIASES: u32 = 10_000;

/// One alias as the table holds it.
struct Routed {
    project: String,
    function: String,
    alias: String,
    resolution: Arc<Resolution>,
}

/// A built table.
pub struct Table {
    revision: String,
    routes: Vec<Routed>,
}

impl Table {
    /// A digest of everything a node serves by: names, versions, weights, node selectors.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The part of the table a node with `labels` may serve, with the records of the versions
    /// it names that are not in `known`.
    pub fn for_node(
        &self,
        labels: &BTreeMap<String, String>,
        known: &HashSet<String>,
    ) -> RoutesResponse {
        let mut functions: Vec<FunctionRoute> = Vec::new();
        let mut deployments = Vec::new();
        let mut sent = HashSet::new();
        for routed in &self.routes {
            let main = routed.resolution.main();
            if !matches(labels, &main.node_selector) {
                continue;
            }
            for target in routed.resolution.targets() {
                let id = target.version_id.to_string();
                if !known.contains(&id) && sent.insert(id) {
                    deployments.push(deployment_message(target, true));
                }
            }
            let alias = AliasRoute {
                name: routed.alias.clone(),
                main: Some(version_route(main)),
                canary: routed
                    .resolution
                    .canary()
                    .map(|(canary, _)| version_route(canary)),
                canary_weight: routed.resolution.canary().map_or(0, |(_, weight)| weight),
            };
            match functions.last_mut() {
                Some(last)
                    if last.project == routed.project && last.function == routed.function =>
                {
                    last.aliases.push(alias);
                }
                _ => functions.push(FunctionRoute {
                    project: routed.project.clone(),
                    project_id: main.project_id.to_string(),
                    function: routed.function.clone(),
                    function_id: routed.resolution.function_id().to_string(),
                    aliases: vec![alias],
                }),
            }
        }
        RoutesResponse {
            revision: self.revision.clone(),
            functions,
            deployments,
        }
    }
}

fn version_route(target: &Target) -> VersionRoute {
    VersionRoute {
        version: target.version,
        deployment: target.version_id.to_string(),
    }
}

/// Whether a function may run on an edge node: not when its placement is a cloud only.
fn runs_on_the_edge(target: &Target) -> bool {
    matches!(
        target.placement.mode,
        PlacementMode::Edge | PlacementMode::Auto
    )
}

/// The table, built at most once per [`REBUILD_AFTER`] however many nodes ask.
pub struct RoutingTable {
    store: Arc<Store>,
    triggers: Arc<Resolver>,
    /// The last table built, and when.
    built: Mutex<Option<(Instant, Arc<Table>)>>,
    /// Held while a table is built, so one build serves every caller waiting.
    building: tokio::sync::Mutex<()>,
    /// Set while a build started by [`RoutingTable::revision`] runs.
    refreshing: Arc<AtomicBool>,
}

impl RoutingTable {
    /// The table of the functions in `store`, resolved by `triggers`.
    pub fn new(store: Arc<Store>, triggers: Arc<Resolver>) -> Self {
        Self {
            store,
            triggers,
            built: Mutex::default(),
            building: tokio::sync::Mutex::new(()),
            refreshing: Arc::default(),
        }
    }

    fn last(&self) -> Option<(Instant, Arc<Table>)> {
        self.built
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// The revision of the last table built, at once: heartbeats never wait for the database.
    /// When it is older than [`REBUILD_AFTER`] a build starts in the background, so the next
    /// heartbeat names what it found. Empty until a table has been built.
    pub fn revision(self: &Arc<Self>) -> String {
        let last = self.last();
        if last
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= REBUILD_AFTER)
            && !self.refreshing.swap(true, Ordering::AcqRel)
        {
            let table = Arc::clone(self);
            tokio::spawn(async move {
                table.current().await;
                table.refreshing.store(false, Ordering::Release);
            });
        }
        last.map(|(_, table)| table.revision.clone())
            .unwrap_or_default()
    }

    /// The table as it is now, or as it was last built when the database cannot answer.
    pub async fn current(&self) -> Option<Arc<Table>> {
        let fresh = |last: Option<(Instant, Arc<Table>)>| {
            last.filter(|(at, _)| at.elapsed() < REBUILD_AFTER)
                .map(|(_, table)| table)
        };
        if let Some(table) = fresh(self.last()) {
            return Some(table);
        }
        let _building = self.building.lock().await;
        if let Some(table) = fresh(self.last()) {
            return Some(table);
        }
        match self.build().await {
            Ok(table) => {
                let table = Arc::new(table);
                *self
                    .built
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()) =
                    Some((Instant::now(), Arc::clone(&table)));
                Some(table)
            }
            Err(error) => {
                tracing::warn!(%error, "could not build the edge routing table");
                self.last().map(|(_, table)| table)
            }
        }
    }

    async fn build(&self) -> Result<Table, crate::error::ApiError> {
        let aliases = self
            .store
            .with_retry(|tx| Box::pin(async move { tx.all_aliases(false, MAX_ALIASES).await }))
            .await?;
        let mut routes = Vec::with_capacity(aliases.len());
        let mut digest = Sha256::new();
        for (project, function, alias) in aliases {
            let Some(resolution) = self.triggers.resolve(&project, &function, &alias).await? else {
                continue;
            };
            if !runs_on_the_edge(resolution.main()) {
                continue;
            }
            digest_route(&mut digest, &project, &function, &alias, &resolution);
            routes.push(Routed {
                project,
                function,
                alias,
                resolution,
            });
        }
        Ok(Table {
            revision: hex::encode(&digest.finalize()[..16]),
            routes,
        })
    }
}

/// Adds what a node serves an alias by to `digest`, each field length-prefixed.
fn digest_route(
    digest: &mut Sha256,
    project: &str,
    function: &str,
    alias: &str,
    resolution: &Resolution,
) {
    let mut field = |bytes: &[u8]| {
        digest.update((bytes.len() as u64).to_le_bytes());
        digest.update(bytes);
    };
    field(project.as_bytes());
    field(function.as_bytes());
    field(alias.as_bytes());
    field(resolution.function_id().to_string().as_bytes());
    let main = resolution.main();
    field(main.project_id.to_string().as_bytes());
    for (key, value) in main.node_selector.iter() {
        field(key.as_bytes());
        field(value.as_bytes());
    }
    field(b"/");
    for target in resolution.targets() {
        field(target.version_id.to_string().as_bytes());
        field(&target.version.to_le_bytes());
    }
    field(
        &resolution
            .canary()
            .map_or(0, |(_, weight)| weight)
            .to_le_bytes(),
    );
}
