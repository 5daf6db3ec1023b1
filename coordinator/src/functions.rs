//! Functions: deploying immutable versions, and aliases that point at them.
//!
//! A deploy unpacks the upload ([`Upload`]), resolves its `spin.toml` with `nexus-manifest`,
//! validates every component the way a node would load it (nexus-runtime's [`Validator`]: core
//! modules componentized, compiled within [`DeployLimits::compile_timeout`], every import
//! supported, an HTTP handler exported), stores the bytes content-addressed in a
//! [`BlobStore`], and records the version with its resolved app. Nothing about a version
//! changes afterwards; aliases move, and rollback moves an alias back to where it pointed
//! before. A function's priority class (the scheduling class of requests that name none) and
//! its node selector (the labels a node must carry to run it) are settings of the function,
//! not of a version.

pub mod blobs;
mod bundle;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use nexus_proto::{Digest, ResolvedApp};
use nexus_runtime::{LoadError, Validator};
use nexus_store::{Alias, Function, FunctionVersion, NewFunctionVersion, Store};
use tokio::sync::{OnceCell, Semaphore};

pub use blobs::{BlobStore, DirectoryBlobStore};
pub use bundle::{MANIFEST, Upload};

use crate::auth::service::Caller;
use crate::cloud::{CloudTargets, Placement, PlacementMode};
use crate::cluster::Priority;
use crate::dispatch::{FunctionSettings, Target};
use crate::error::ApiError;
use crate::events::{EventBus, EventKind};
use crate::projects::{Permission, ProjectService};
use crate::trigger::CatalogChanges;

/// The alias every function gets on its first deploy, and that deploys move by default.
pub const LIVE: &str = nexus_proto::route::DEFAULT_ALIAS;

/// A change to a function's settings; `None` keeps the current value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionUpdate {
    /// The priority class of its requests that name none.
    pub priority: Option<Priority>,
    /// The labels a node must carry, each with exactly this value, to run the function; an
    /// empty map lets any node run it. Checked by [`FunctionService::update`].
    pub node_selector: Option<BTreeMap<String, String>>,
    /// How asynchronous invocations accepted from now on are retried. Checked by
    /// [`FunctionService::update`].
    pub async_retry: Option<nexus_store::AsyncRetry>,
    /// Where it runs; checked with its cloud targets (the new ones, or those it has).
    pub placement: Option<PlacementMode>,
    /// The clouds it may use.
    pub cloud: Option<CloudTargets>,
    /// Edge nodes that keep its aliased versions loaded however long they idle (0 to
    /// [`MAX_MIN_WARM`]).
    pub min_warm: Option<i32>,
}

/// The most nodes a function may keep warm.
pub const MAX_MIN_WARM: i32 = 100;

/// Checks a retry policy: 1 to 100 attempts, a max age of 1 s to 7 days, a first backoff of at
/// most an hour.
pub(crate) fn validate_async_retry(retry: &nexus_store::AsyncRetry) -> Result<(), ApiError> {
    const DAY_MS: i64 = 24 * 60 * 60 * 1000;
    if !(1..=100).contains(&retry.max_attempts) {
        return Err(ApiError::bad_request(
            "async_retry.max_attempts must be 1 to 100",
        ));
    }
    if !(1000..=7 * DAY_MS).contains(&retry.max_age_ms) {
        return Err(ApiError::bad_request(
            "async_retry.max_age_ms must be 1000 (a second) to 604800000 (7 days)",
        ));
    }
    if !(0..=DAY_MS / 24).contains(&retry.backoff_ms) {
        return Err(ApiError::bad_request(
            "async_retry.backoff_ms must be 0 to 3600000 (an hour)",
        ));
    }
    Ok(())
}

/// Entries a node selector may have at most.
pub const MAX_NODE_SELECTOR_ENTRIES: usize = 16;

/// Caps on what a deploy may upload and cost.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployLimits {
    /// The whole request body.
    pub max_upload_bytes: usize,
    /// One component file.
    pub max_component_bytes: usize,
    /// `spin.toml`.
    pub max_manifest_bytes: usize,
    /// Compiling and linking one component.
    pub compile_timeout: Duration,
}

impl Default for DeployLimits {
    fn default() -> Self {
        Self {
            max_upload_bytes: 64 * 1024 * 1024,
            max_component_bytes: 32 * 1024 * 1024,
            max_manifest_bytes: 256 * 1024,
            compile_timeout: Duration::from_secs(30),
        }
    }
}

/// Which alias a deploy moves to the new version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoveAlias {
    /// This alias (created if needed).
    To(String),
    /// None; the version waits until an alias is pointed at it. A function's first version
    /// still becomes `live`, so every function has one.
    Nothing,
}

/// Where an alias points: a main version and an optional canary with its share of traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AliasTarget {
    /// The main version.
    pub version: i64,
    /// The canary version and its percentage (0–100) of requests.
    pub canary: Option<(i64, i32)>,
}

/// A deployed version and the aliases that now point at it.
#[derive(Debug, Clone)]
pub struct Deployed {
    /// The version.
    pub version: FunctionVersion,
    /// Aliases moved to it by this deploy.
    pub aliases: Vec<Alias>,
    /// The version as a runtime runs it.
    pub target: Arc<Target>,
}

/// Checks a component the way the nodes that will run it load it.
pub trait ComponentValidator: Send + Sync {
    /// Compiles and links `bytes`; `component_id` names it in errors. Blocks while compiling.
    fn validate(&self, component_id: &str, bytes: &[u8]) -> Result<(), LoadError>;
}

/// A validator of its own: the nodes' engine settings, nothing cached for running.
impl ComponentValidator for Validator {
    fn validate(&self, component_id: &str, bytes: &[u8]) -> Result<(), LoadError> {
        Validator::validate(self, component_id, bytes).map(drop)
    }
}

/// The runtime that will run the component validates it, and keeps it compiled: in the
/// embedded platform a deploy compiles each component once.
impl ComponentValidator for nexus_runtime::Runtime {
    fn validate(&self, component_id: &str, bytes: &[u8]) -> Result<(), LoadError> {
        self.prepare(component_id, bytes).map(drop)
    }
}

/// Compilations at once: each takes a core, and a timed-out one keeps its permit until it
/// really stops, so slow uploads cannot pile up compilers.
const CONCURRENT_COMPILATIONS: usize = 2;

/// The functions service.
#[derive(Clone)]
pub struct FunctionService {
    store: Arc<Store>,
    projects: ProjectService,
    blobs: Arc<dyn BlobStore>,
    limits: DeployLimits,
    changes: Arc<CatalogChanges>,
    events: Arc<dyn EventBus>,
    validator: Arc<OnceCell<Arc<dyn ComponentValidator>>>,
    compilations: Arc<Semaphore>,
    /// Digests that passed validation: the same bytes deployed again are not compiled again.
    validated: Arc<Mutex<HashSet<Digest>>>,
}

impl FunctionService {
    /// A service over `store`, keeping component bytes in `blobs`, recording every change
    /// to what an alias resolves to in `changes` and publishing deploys on `events`.
    /// Components are validated by a [`Validator`] of its own unless
    /// [`FunctionService::with_validator`] says otherwise.
    pub fn new(
        store: Arc<Store>,
        blobs: Arc<dyn BlobStore>,
        limits: DeployLimits,
        changes: Arc<CatalogChanges>,
        events: Arc<dyn EventBus>,
    ) -> Self {
        Self {
            projects: ProjectService::new(Arc::clone(&store), Arc::clone(&changes)),
            store,
            blobs,
            limits,
            changes,
            events,
            validator: Arc::default(),
            compilations: Arc::new(Semaphore::new(CONCURRENT_COMPILATIONS)),
            validated: Arc::default(),
        }
    }

    /// Validates components with `validator`.
    #[must_use]
    pub fn with_validator(mut self, validator: Arc<dyn ComponentValidator>) -> Self {
        self.validator = Arc::new(OnceCell::new_with(Some(validator)));
        self
    }

    /// Caps deploys by `limits`.
    #[must_use]
    pub fn with_limits(mut self, limits: DeployLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The deploy limits.
    pub fn limits(&self) -> &DeployLimits {
        &self.limits
    }

    /// The component store.
    pub fn blobs(&self) -> &Arc<dyn BlobStore> {
        &self.blobs
    }

    /// Deploys `upload` as the next version of function `name`, creating the function on its
    /// first deploy.
    pub async fn deploy(
        &self,
        caller: Caller,
        slug: &str,
        name: &str,
        upload: Upload,
        move_alias: MoveAlias,
    ) -> Result<Deployed, ApiError> {
        let (project, _) = self
            .projects
            .authorize(caller, slug, Permission::Deploy)
            .await?;
        validate_name("function", name)?;
        if let MoveAlias::To(alias) = &move_alias {
            validate_name("alias", alias)?;
        }
        let limits = self.limits.clone();
        let function = name.to_owned();
        let (app, components) =
            tokio::task::spawn_blocking(move || resolve_upload(upload, &function, &limits))
                .await
                .map_err(|error| ApiError::internal(&error))??;
        self.validate_components(&app, &components).await?;
        let mut digests = Vec::with_capacity(components.len());
        for (digest, bytes) in components {
            let stored = self
                .blobs
                .put(bytes.to_vec())
                .await
                .map_err(|error| ApiError::internal(&error))?;
            debug_assert_eq!(stored, digest);
            digests.push(digest.to_string());
        }
        let spec = serde_json::to_value(&app).map_err(|error| ApiError::internal(&error))?;
        let app = Arc::new(app);
        let new_version = NewFunctionVersion {
            spec,
            component_digests: digests,
        };
        let deployed = self
            .store
            .with_retry(|tx| {
                let (new_version, name, move_alias) =
                    (new_version.clone(), name.to_owned(), move_alias.clone());
                Box::pin(async move {
                    let function = match tx.get_function(project.id, &name).await {
                        Ok(function) => function,
                        Err(nexus_store::Error::NotFound { .. }) => {
                            tx.create_function(project.id, &name).await?
                        }
                        Err(error) => return Err(error),
                    };
                    let version = tx
                        .create_function_version(function.id, &new_version)
                        .await?;
                    let mut moves = Vec::new();
                    if let MoveAlias::To(alias) = &move_alias {
                        moves.push(alias.clone());
                    }
                    if version.version == 1 && !moves.iter().any(|alias| alias == LIVE) {
                        moves.push(LIVE.to_owned());
                    }
                    let mut aliases = Vec::with_capacity(moves.len());
                    for alias in moves {
                        aliases.push(
                            tx.set_alias(function.id, &alias, version.version, None)
                                .await?,
                        );
                    }
                    Ok((function, version, aliases))
                })
            })
            .await?;
        self.changes.bump();
        let (function, version, aliases) = deployed;
        let deployed = Deployed {
            target: Arc::new(Target::new(
                version.id,
                project.id,
                name,
                version.version,
                app,
                &FunctionSettings::of(&function),
            )),
            version,
            aliases,
        };
        tracing::info!(
            project = %slug,
            function = %name,
            version = deployed.version.version,
            "deployed"
        );
        self.events.publish(EventKind::FunctionDeployed {
            project: project.id.to_string(),
            function: name.to_owned(),
            version: deployed.version.version,
        });
        Ok(deployed)
    }

    /// Compiles and links each distinct component, off the executor and within the time cap.
    async fn validate_components(
        &self,
        app: &ResolvedApp,
        components: &BTreeMap<Digest, Bytes>,
    ) -> Result<(), ApiError> {
        let validator = self
            .validator
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(Validator::new)
                    .await
                    .map_err(|error| ApiError::internal(&error))?
                    .map(|validator| Arc::new(validator) as Arc<dyn ComponentValidator>)
                    .map_err(|error| ApiError::internal(&error))
            })
            .await?;
        for (id, component) in &app.components {
            if self.is_validated(&component.source) {
                continue;
            }
            let Some(bytes) = components.get(&component.source).cloned() else {
                return Err(ApiError::bad_request(format!(
                    "component `{id}` has no bytes in the upload"
                )));
            };
            let permit = Arc::clone(&self.compilations)
                .acquire_owned()
                .await
                .map_err(|error| ApiError::internal(&error))?;
            let (validator, component_id) = (Arc::clone(validator), id.clone());
            let compile = tokio::task::spawn_blocking(move || {
                let _permit = permit;
                validator.validate(&component_id, &bytes)
            });
            let limit = self.limits.compile_timeout;
            match tokio::time::timeout(limit, compile).await {
                Err(_elapsed) => {
                    return Err(ApiError::invalid_component(format!(
                        "component `{id}` did not compile within the limit of {} s",
                        limit.as_secs_f64()
                    )));
                }
                Ok(Err(join_error)) => return Err(ApiError::internal(&join_error)),
                Ok(Ok(Err(error @ LoadError::Engine(_)))) => {
                    return Err(ApiError::internal(&error));
                }
                Ok(Ok(Err(error))) => return Err(ApiError::invalid_component(error.to_string())),
                Ok(Ok(Ok(()))) => {
                    self.validated
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .insert(component.source);
                }
            }
        }
        Ok(())
    }

    fn is_validated(&self, digest: &Digest) -> bool {
        self.validated
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(digest)
    }

    /// The project's functions, each with its aliases.
    pub async fn list(
        &self,
        caller: Caller,
        slug: &str,
    ) -> Result<Vec<(Function, Vec<Alias>)>, ApiError> {
        let (project, _) = self
            .projects
            .authorize(caller, slug, Permission::View)
            .await?;
        Ok(self
            .store
            .with_retry(|tx| {
                Box::pin(async move {
                    let functions = tx.list_functions(project.id).await?;
                    let mut listed = Vec::with_capacity(functions.len());
                    for function in functions {
                        let aliases = tx.list_aliases(function.id).await?;
                        listed.push((function, aliases));
                    }
                    Ok(listed)
                })
            })
            .await?)
    }

    /// The function, its versions (oldest first) and its aliases.
    pub async fn show(
        &self,
        caller: Caller,
        slug: &str,
        name: &str,
    ) -> Result<(Function, Vec<FunctionVersion>, Vec<Alias>), ApiError> {
        let (project, _) = self
            .projects
            .authorize(caller, slug, Permission::View)
            .await?;
        let name = name.to_owned();
        Ok(self
            .store
            .with_retry(|tx| {
                let name = name.clone();
                Box::pin(async move {
                    let function = tx.get_function(project.id, &name).await?;
                    let versions = tx.list_function_versions(function.id).await?;
                    let aliases = tx.list_aliases(function.id).await?;
                    Ok((function, versions, aliases))
                })
            })
            .await?)
    }

    /// One version of the function.
    pub async fn version(
        &self,
        caller: Caller,
        slug: &str,
        name: &str,
        version: i64,
    ) -> Result<FunctionVersion, ApiError> {
        let (project, _) = self
            .projects
            .authorize(caller, slug, Permission::View)
            .await?;
        let name = name.to_owned();
        Ok(self
            .store
            .with_retry(|tx| {
                let name = name.clone();
                Box::pin(async move {
                    let function = tx.get_function(project.id, &name).await?;
                    tx.get_function_version(function.id, version).await
                })
            })
            .await?)
    }

    /// Points `alias` at `target`, creating the alias if needed.
    pub async fn set_alias(
        &self,
        caller: Caller,
        slug: &str,
        name: &str,
        alias: &str,
        target: AliasTarget,
    ) -> Result<Alias, ApiError> {
        let (project, _) = self
            .projects
            .authorize(caller, slug, Permission::Deploy)
            .await?;
        validate_name("alias", alias)?;
        if let Some((canary, weight)) = target.canary {
            if !(0..=100).contains(&weight) {
                return Err(ApiError::bad_request(format!(
                    "canary weight {weight} is not a percentage (0 to 100)"
                )));
            }
            if canary == target.version {
                return Err(ApiError::bad_request(format!(
                    "the canary version {canary} is the main version"
                )));
            }
        }
        let (name, alias) = (name.to_owned(), alias.to_owned());
        let alias = self
            .store
            .with_retry(|tx| {
                let (name, alias) = (name.clone(), alias.clone());
                Box::pin(async move {
                    let function = tx.get_function(project.id, &name).await?;
                    tx.set_alias(function.id, &alias, target.version, target.canary)
                        .await
                })
            })
            .await
            .map_err(|error| match error {
                nexus_store::Error::NotFound {
                    what: "function version",
                } => ApiError::bad_request("the alias names a version that does not exist"),
                other => ApiError::from(other),
            })?;
        self.changes.bump();
        Ok(alias)
    }

    /// Changes the function's settings (its priority class, its node selector or both, in one
    /// transaction), and returns it with its versions (oldest first) and aliases. Takes effect
    /// on the trigger's next request.
    pub async fn update(
        &self,
        caller: Caller,
        slug: &str,
        name: &str,
        change: FunctionUpdate,
    ) -> Result<(Function, Vec<FunctionVersion>, Vec<Alias>), ApiError> {
        let (project, _) = self
            .projects
            .authorize(caller, slug, Permission::Deploy)
            .await?;
        if let Some(node_selector) = &change.node_selector {
            validate_node_selector(node_selector)?;
        }
        if let Some(retry) = &change.async_retry {
            validate_async_retry(retry)?;
        }
        if change
            .min_warm
            .is_some_and(|min_warm| !(0..=MAX_MIN_WARM).contains(&min_warm))
        {
            return Err(ApiError::bad_request(format!(
                "min_warm must be 0 to {MAX_MIN_WARM}"
            )));
        }
        let name = name.to_owned();
        let updated = self
            .store
            .with_retry(|tx| {
                let (name, change) = (name.clone(), change.clone());
                Box::pin(async move {
                    let mut function = tx.get_function(project.id, &name).await?;
                    if let Some(priority) = change.priority {
                        function = tx
                            .set_function_priority(function.id, priority.as_str())
                            .await?;
                    }
                    if let Some(node_selector) = &change.node_selector {
                        function = tx
                            .set_function_node_selector(function.id, node_selector)
                            .await?;
                    }
                    if let Some(retry) = change.async_retry {
                        function = tx.set_function_async_retry(function.id, retry).await?;
                    }
                    if let Some(min_warm) = change.min_warm {
                        function = tx.set_function_min_warm(function.id, min_warm).await?;
                    }
                    if change.placement.is_some() || change.cloud.is_some() {
                        let current = Placement::of_function(&function);
                        let placement = Placement::new(
                            change.placement.unwrap_or(current.mode),
                            change.cloud.clone().unwrap_or(current.targets),
                        )
                        .map_err(|error| nexus_store::Error::Invalid {
                            what: "placement",
                            reason: error.to_string(),
                        })?;
                        function = tx
                            .set_function_placement(
                                function.id,
                                placement.mode.as_str(),
                                &placement.stored_targets(),
                            )
                            .await?;
                    }
                    let versions = tx.list_function_versions(function.id).await?;
                    let aliases = tx.list_aliases(function.id).await?;
                    Ok((function, versions, aliases))
                })
            })
            .await?;
        self.changes.bump();
        tracing::info!(
            project = %slug,
            function = %name,
            priority = ?change.priority,
            node_selector = ?change.node_selector,
            async_retry = ?change.async_retry,
            placement = ?change.placement,
            cloud = ?change.cloud,
            min_warm = ?change.min_warm,
            "function settings changed"
        );
        Ok(updated)
    }

    /// Moves `alias` back to where it pointed before it last moved.
    pub async fn rollback(
        &self,
        caller: Caller,
        slug: &str,
        name: &str,
        alias: &str,
    ) -> Result<Alias, ApiError> {
        let (project, _) = self
            .projects
            .authorize(caller, slug, Permission::Deploy)
            .await?;
        let (name, alias) = (name.to_owned(), alias.to_owned());
        let alias = self
            .store
            .with_retry(|tx| {
                let (name, alias) = (name.clone(), alias.clone());
                Box::pin(async move {
                    let function = tx.get_function(project.id, &name).await?;
                    tx.rollback_alias(function.id, &alias).await
                })
            })
            .await?;
        self.changes.bump();
        Ok(alias)
    }
}

/// The app of an upload for function `function` and its components' bytes by digest: names
/// checked, sizes within `limits`, the manifest resolved over the uploaded files only. Blocks
/// on the file system.
pub(crate) fn resolve_upload(
    upload: Upload,
    function: &str,
    limits: &DeployLimits,
) -> Result<(ResolvedApp, BTreeMap<Digest, Bytes>), ApiError> {
    bundle::Bundle::unpack(upload, function, limits)?.resolve()
}

/// The function's priority class. Only the API writes it, and only names of classes, so a
/// name this coordinator does not know (a row edited by hand, or written by a newer release)
/// runs in the default class rather than failing the function's requests.
pub(crate) fn priority_of(function: &Function) -> Priority {
    function.priority.parse().unwrap_or_else(|error| {
        tracing::warn!(
            %error,
            function_id = %function.id,
            "stored priority unknown, using the default"
        );
        Priority::default()
    })
}

/// Function and alias names appear in URLs: 1 to 63 lowercase letters, digits and `-`,
/// starting with a letter, words separated by single dashes (a valid Spin component id, so a
/// single component can be named after its function).
fn validate_name(kind: &str, name: &str) -> Result<(), ApiError> {
    let valid = (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "invalid {kind} name {name:?}: use 1 to 63 lowercase letters, digits and single \
             dashes, starting with a letter"
        )))
    }
}

/// Checks a node selector as Kubernetes checks label selectors: at most
/// [`MAX_NODE_SELECTOR_ENTRIES`] entries; each key an optional DNS-subdomain prefix and `/`,
/// then a name of 1 to 63 characters, 253 at most in all; each value empty or a name. The
/// error names the first bad entry.
pub(crate) fn validate_node_selector(
    node_selector: &BTreeMap<String, String>,
) -> Result<(), ApiError> {
    if node_selector.len() > MAX_NODE_SELECTOR_ENTRIES {
        return Err(ApiError::bad_request(format!(
            "node_selector has {} entries; at most {MAX_NODE_SELECTOR_ENTRIES} are allowed",
            node_selector.len()
        )));
    }
    for (key, value) in node_selector {
        let problem = label_key_problem(key).or_else(|| {
            (!value.is_empty())
                .then(|| label_name_problem("value", value))
                .flatten()
        });
        if let Some(problem) = problem {
            return Err(ApiError::bad_request(format!(
                "invalid node_selector entry {key:?}: {value:?}: {problem}"
            )));
        }
    }
    Ok(())
}

/// What is wrong with a label key, if anything: `[prefix/]name`, 253 characters at most.
fn label_key_problem(key: &str) -> Option<String> {
    if key.len() > 253 {
        return Some(format!(
            "the key is {} characters long; at most 253 are allowed",
            key.len()
        ));
    }
    match key.split_once('/') {
        None => label_name_problem("key", key),
        Some((prefix, name)) => {
            let prefix_is_subdomain = !prefix.is_empty()
                && prefix.split('.').all(|part| {
                    !part.is_empty()
                        && !part.starts_with('-')
                        && !part.ends_with('-')
                        && part.bytes().all(|byte| {
                            byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-'
                        })
                });
            if prefix_is_subdomain {
                label_name_problem("key's name", name)
            } else {
                Some(
                    "the key's prefix must be a DNS subdomain: dot-separated parts of lowercase \
                     letters, digits and '-', each starting and ending with a letter or digit"
                        .to_owned(),
                )
            }
        }
    }
}

/// What is wrong with a label name or non-empty value, if anything: 1 to 63 letters, digits,
/// `-`, `_` and `.`, starting and ending with a letter or digit.
fn label_name_problem(what: &str, name: &str) -> Option<String> {
    let alphanumeric = |byte: u8| byte.is_ascii_alphanumeric();
    let valid = (1..=63).contains(&name.len())
        && name.bytes().next().is_some_and(alphanumeric)
        && name.bytes().last().is_some_and(alphanumeric)
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.'));
    (!valid).then(|| {
        format!(
            "the {what} must be 1 to 63 letters, digits, '-', '_' or '.', starting and ending \
             with a letter or digit"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_url_safe_component_ids() {
        assert!(validate_name("function", "hello-2").is_ok());
        for bad in [
            "",
            "2x",
            "Hello",
            "a--b",
            "a-",
            "a_b",
            "a/b",
            &"a".repeat(64),
        ] {
            assert!(validate_name("function", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stored_priorities_are_read_and_unknown_ones_are_the_default() {
        let function = |priority: &str| Function {
            id: nexus_store::FunctionId::new(),
            project_id: nexus_store::ProjectId::new(),
            name: "f".to_owned(),
            priority: priority.to_owned(),
            node_selector: BTreeMap::new(),
            async_retry: nexus_store::AsyncRetry::default(),
            placement: "edge".to_owned(),
            cloud_targets: serde_json::Map::new(),
            min_warm: 0,
            created_at: chrono::Utc::now(),
        };
        for priority in Priority::ALL {
            assert_eq!(priority_of(&function(priority.as_str())), priority);
        }
        // The migrations' default is the default class.
        assert_eq!(priority_of(&function("normal")), Priority::default());
        assert_eq!(priority_of(&function("urgent")), Priority::default());
    }

    fn selector(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn node_selectors_follow_kubernetes_label_syntax() {
        let longest_prefix = format!("{}.com", "a".repeat(253 - 4 - 1 - 63));
        let longest_key = format!("{longest_prefix}/{}", "n".repeat(63));
        assert_eq!(longest_key.len(), 253);
        for good in [
            selector(&[]),
            selector(&[("gpu", "true")]),
            selector(&[("tier", "")]),
            selector(&[
                ("kubernetes.io/arch", "amd64"),
                ("Zone_1.a-b", "EU_west.1-a"),
            ]),
            selector(&[("example.com/x", "1"), ("a", &"v".repeat(63))]),
            selector(&[(&longest_key, "y")]),
            (0..MAX_NODE_SELECTOR_ENTRIES)
                .map(|index| (format!("label-{index}"), "on".to_owned()))
                .collect(),
        ] {
            assert!(validate_node_selector(&good).is_ok(), "{good:?}");
        }

        for (bad, named) in [
            (selector(&[("", "x")]), "\"\": \"x\""),
            (selector(&[("gpu!", "true")]), "\"gpu!\""),
            (selector(&[("-gpu", "true")]), "\"-gpu\""),
            (selector(&[("gpu-", "true")]), "\"gpu-\""),
            (selector(&[(&"k".repeat(64), "v")]), "kkkk"),
            (selector(&[("gpu", "yes please")]), "\"yes please\""),
            (selector(&[("gpu", "-true")]), "\"-true\""),
            (selector(&[("gpu", &"v".repeat(64))]), "vvvv"),
            (selector(&[("Example.com/gpu", "x")]), "Example.com/gpu"),
            (selector(&[("/gpu", "x")]), "\"/gpu\""),
            (selector(&[("example.com/", "x")]), "example.com/"),
            (selector(&[("a..b/gpu", "x")]), "a..b/gpu"),
            (selector(&[("a/b/c", "x")]), "a/b/c"),
            (selector(&[(&format!("x{longest_key}"), "y")]), "253"),
            (selector(&[("ok", "1"), ("zone", "eu west")]), "\"zone\""),
        ] {
            let refused = validate_node_selector(&bad).unwrap_err();
            assert_eq!(refused.code, "bad_request");
            assert!(
                refused.message.contains(named),
                "{named}: {}",
                refused.message
            );
        }

        let too_many: BTreeMap<String, String> = (0..=MAX_NODE_SELECTOR_ENTRIES)
            .map(|index| (format!("label-{index}"), "on".to_owned()))
            .collect();
        let refused = validate_node_selector(&too_many).unwrap_err();
        assert!(
            refused.message.contains("at most 16"),
            "{}",
            refused.message
        );
    }
}
