//! Functions, their immutable versions, and aliases.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::store::on_tx;
use crate::time::now;
use crate::{Error, FunctionId, FunctionVersionId, ProjectId, Result, Tx};

/// A function: a name in a project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// The function's id.
    pub id: FunctionId,
    /// Its project.
    pub project_id: ProjectId,
    /// Unique in the project.
    pub name: String,
    /// The priority class of its invocations that name none (`normal` until set). The store
    /// keeps what it is given; the coordinator decides which names are classes.
    pub priority: String,
    /// The labels a node must carry, each with exactly this value, to run the function (none
    /// until set: any node). The store keeps what it is given; the coordinator checks the
    /// entries.
    pub node_selector: BTreeMap<String, String>,
    /// How its asynchronous invocations are retried.
    pub async_retry: AsyncRetry,
    /// Where it runs (`edge` until set). The store keeps what it is given; the coordinator
    /// decides which names are placements.
    pub placement: String,
    /// Its cloud targets, a JSON object (empty until set); the coordinator checks them.
    pub cloud_targets: serde_json::Map<String, serde_json::Value>,
    /// Edge nodes that keep its aliased versions loaded however long they idle (0: it scales
    /// to zero).
    pub min_warm: i32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// How a function's asynchronous invocations are retried: at most `max_attempts` attempts,
/// none started more than `max_age_ms` after the invocation was accepted, the first retry
/// after `backoff_ms` and each later one after twice the wait before it (with jitter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncRetry {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: i32,
    /// Milliseconds from acceptance after which no attempt starts.
    pub max_age_ms: i64,
    /// Milliseconds before the first retry.
    pub backoff_ms: i64,
}

impl Default for AsyncRetry {
    /// The migration's defaults, as Lambda's: three attempts, six hours, a second.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            max_age_ms: 6 * 60 * 60 * 1000,
            backoff_ms: 1000,
        }
    }
}

/// A `functions` row as stored: the node selector is a JSON object in a text column.
#[derive(sqlx::FromRow)]
struct FunctionRow {
    id: FunctionId,
    project_id: ProjectId,
    name: String,
    priority: String,
    node_selector: String,
    async_max_attempts: i32,
    async_max_age_ms: i64,
    async_backoff_ms: i64,
    placement: String,
    cloud_targets: String,
    min_warm: i32,
    created_at: DateTime<Utc>,
}

/// A selector that does not parse is [`Error::Corrupt`], not an empty selector: it is a
/// constraint on where the function may run (hardware, a jurisdiction), and reading it as "no
/// constraint" would let the function run on any node. Only the store writes the column, from
/// a map, so this takes a row edited by hand or written by an incompatible release.
impl TryFrom<FunctionRow> for Function {
    type Error = Error;

    fn try_from(row: FunctionRow) -> Result<Self> {
        let node_selector = serde_json::from_str(&row.node_selector).map_err(|error| {
            Error::corrupt(
                "functions",
                format!(
                    "node_selector of function {} is not a JSON object of strings: {error}",
                    row.id
                ),
            )
        })?;
        let cloud_targets = serde_json::from_str(&row.cloud_targets).map_err(|error| {
            Error::corrupt(
                "functions",
                format!(
                    "cloud_targets of function {} is not a JSON object: {error}",
                    row.id
                ),
            )
        })?;
        Ok(Self {
            id: row.id,
            project_id: row.project_id,
            name: row.name,
            priority: row.priority,
            node_selector,
            async_retry: AsyncRetry {
                max_attempts: row.async_max_attempts,
                max_age_ms: row.async_max_age_ms,
                backoff_ms: row.async_backoff_ms,
            },
            placement: row.placement,
            cloud_targets,
            min_warm: row.min_warm,
            created_at: row.created_at,
        })
    }
}

/// One version of a function. Versions are never updated.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct FunctionVersion {
    /// The version's id.
    pub id: FunctionVersionId,
    /// Its function.
    pub function_id: FunctionId,
    /// 1, 2, 3… per function.
    pub version: i64,
    /// The resolved version record.
    pub spec: serde_json::Value,
    /// sha256 digests of the components (a JSON array of strings).
    pub component_digests: serde_json::Value,
    /// When it was deployed.
    pub created_at: DateTime<Utc>,
}

/// What [`Tx::create_function_version`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFunctionVersion {
    /// The resolved version record.
    pub spec: serde_json::Value,
    /// sha256 digests of the components.
    pub component_digests: Vec<String>,
}

/// A name pointing at one version, or at two with a share of traffic for the second.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Alias {
    /// Its function.
    pub function_id: FunctionId,
    /// `live`, …
    pub name: String,
    /// The main version.
    pub version_a: i64,
    /// The canary version.
    pub version_b: Option<i64>,
    /// Percentage (0–100) of traffic for `version_b`.
    pub weight_b: i32,
    /// Where the alias pointed before it last moved (`version_a`), if it has moved.
    pub previous_version_a: Option<i64>,
    /// The canary version it had then.
    pub previous_version_b: Option<i64>,
    /// The canary weight it had then.
    pub previous_weight_b: Option<i32>,
    /// When it last moved.
    pub updated_at: DateTime<Utc>,
}

/// The columns of [`FunctionRow`], in its field order.
macro_rules! function_columns {
    () => {
        "id, project_id, name, priority, node_selector, async_max_attempts, async_max_age_ms, \
         async_backoff_ms, placement, cloud_targets, min_warm, created_at"
    };
}

/// The columns of [`Alias`], in its field order.
macro_rules! alias_columns {
    () => {
        "function_id, name, version_a, version_b, weight_b, previous_version_a, \
         previous_version_b, previous_weight_b, updated_at"
    };
}

macro_rules! select_versions {
    ($condition:literal) => {
        concat!(
            "SELECT id, function_id, version, spec, component_digests, created_at \
             FROM function_versions ",
            $condition
        )
    };
}

impl Tx<'_> {
    /// Creates a function, in the default priority class and with no node selector.
    /// [`Error::Conflict`] if the project already has one by that name.
    pub async fn create_function(&mut self, project_id: ProjectId, name: &str) -> Result<Function> {
        // RETURNING: the priority and node selector are the columns' defaults, which the
        // migrations own.
        let row: FunctionRow = on_tx!(self, conn => sqlx::query_as(concat!(
            "INSERT INTO functions (id, project_id, name, created_at) VALUES ($1, $2, $3, $4) \
             RETURNING ",
            function_columns!()
        ))
        .bind(FunctionId::new())
        .bind(project_id)
        .bind(name)
        .bind(now())
        .fetch_one(conn)
        .await)?;
        row.try_into()
    }

    /// The project's function by that name.
    pub async fn get_function(&mut self, project_id: ProjectId, name: &str) -> Result<Function> {
        let row: Option<FunctionRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "SELECT ",
            function_columns!(),
            " FROM functions WHERE project_id = $1 AND name = $2"
        ))
        .bind(project_id)
        .bind(name)
        .fetch_optional(conn)
        .await)?;
        row.ok_or_else(|| Error::not_found("function"))?.try_into()
    }

    /// Sets the function's priority class, as named by the caller (who checks the name), and
    /// returns the function as it now is.
    pub async fn set_function_priority(
        &mut self,
        function_id: FunctionId,
        priority: &str,
    ) -> Result<Function> {
        let row: Option<FunctionRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "UPDATE functions SET priority = $2 WHERE id = $1 RETURNING ",
            function_columns!()
        ))
        .bind(function_id)
        .bind(priority)
        .fetch_optional(conn)
        .await)?;
        row.ok_or_else(|| Error::not_found("function"))?.try_into()
    }

    /// Sets the function's node selector (an empty map selects any node), as checked by the
    /// caller, and returns the function as it now is.
    pub async fn set_function_node_selector(
        &mut self,
        function_id: FunctionId,
        node_selector: &BTreeMap<String, String>,
    ) -> Result<Function> {
        let text = serde_json::to_string(node_selector).map_err(|error| Error::Invalid {
            what: "node selector",
            reason: error.to_string(),
        })?;
        let row: Option<FunctionRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "UPDATE functions SET node_selector = $2 WHERE id = $1 RETURNING ",
            function_columns!()
        ))
        .bind(function_id)
        .bind(text)
        .fetch_optional(conn)
        .await)?;
        row.ok_or_else(|| Error::not_found("function"))?.try_into()
    }

    /// Sets where the function runs and its cloud targets (as checked by the caller), and
    /// returns the function as it now is.
    pub async fn set_function_placement(
        &mut self,
        function_id: FunctionId,
        placement: &str,
        cloud_targets: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Function> {
        let text = serde_json::to_string(cloud_targets).map_err(|error| Error::Invalid {
            what: "cloud targets",
            reason: error.to_string(),
        })?;
        let row: Option<FunctionRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "UPDATE functions SET placement = $2, cloud_targets = $3 WHERE id = $1 RETURNING ",
            function_columns!()
        ))
        .bind(function_id)
        .bind(placement)
        .bind(text)
        .fetch_optional(conn)
        .await)?;
        row.ok_or_else(|| Error::not_found("function"))?.try_into()
    }

    /// Sets the function's retry policy for asynchronous invocations (checked by the caller)
    /// and returns the function as it now is. Invocations already accepted keep the policy
    /// they were accepted under.
    pub async fn set_function_async_retry(
        &mut self,
        function_id: FunctionId,
        retry: AsyncRetry,
    ) -> Result<Function> {
        let row: Option<FunctionRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "UPDATE functions SET async_max_attempts = $2, async_max_age_ms = $3, \
             async_backoff_ms = $4 WHERE id = $1 RETURNING ",
            function_columns!()
        ))
        .bind(function_id)
        .bind(retry.max_attempts)
        .bind(retry.max_age_ms)
        .bind(retry.backoff_ms)
        .fetch_optional(conn)
        .await)?;
        row.ok_or_else(|| Error::not_found("function"))?.try_into()
    }

    /// The function with this id. [`Error::NotFound`] if there is none.
    pub async fn get_function_by_id(&mut self, id: FunctionId) -> Result<Function> {
        let row: Option<FunctionRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "SELECT ",
            function_columns!(),
            " FROM functions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        row.ok_or_else(|| Error::not_found("function"))?.try_into()
    }

    /// Adds the next version (the highest so far + 1) of the function.
    pub async fn create_function_version(
        &mut self,
        function_id: FunctionId,
        new_version: &NewFunctionVersion,
    ) -> Result<FunctionVersion> {
        let latest: Option<i64> = on_tx!(self, conn => sqlx::query_scalar(
            "SELECT MAX(version) FROM function_versions WHERE function_id = $1",
        )
        .bind(function_id)
        .fetch_one(conn)
        .await)?;
        let version = FunctionVersion {
            id: FunctionVersionId::new(),
            function_id,
            version: latest.unwrap_or(0) + 1,
            spec: new_version.spec.clone(),
            component_digests: serde_json::Value::from(new_version.component_digests.clone()),
            created_at: now(),
        };
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO function_versions (id, function_id, version, spec, component_digests, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(version.id)
        .bind(version.function_id)
        .bind(version.version)
        .bind(&version.spec)
        .bind(&version.component_digests)
        .bind(version.created_at)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(version)
    }

    /// One version of the function.
    pub async fn get_function_version(
        &mut self,
        function_id: FunctionId,
        version: i64,
    ) -> Result<FunctionVersion> {
        let found: Option<FunctionVersion> = on_tx!(self, conn => sqlx::query_as(
            select_versions!("WHERE function_id = $1 AND version = $2"))
        .bind(function_id)
        .bind(version)
        .fetch_optional(conn)
        .await)?;
        found.ok_or_else(|| Error::not_found("function version"))
    }

    /// Every version of the function, oldest first.
    pub async fn list_function_versions(
        &mut self,
        function_id: FunctionId,
    ) -> Result<Vec<FunctionVersion>> {
        let versions = on_tx!(self, conn => sqlx::query_as(
            select_versions!("WHERE function_id = $1 ORDER BY version"))
        .bind(function_id)
        .fetch_all(conn)
        .await)?;
        Ok(versions)
    }

    /// Points the alias at `version_a`, or at `version_a` and `version_b` with `weight_b`
    /// percent for the latter; creates it if needed. Rollback is this call with the old version.
    pub async fn set_alias(
        &mut self,
        function_id: FunctionId,
        name: &str,
        version_a: i64,
        canary: Option<(i64, i32)>,
    ) -> Result<Alias> {
        let (version_b, weight_b) = match canary {
            Some((version, weight)) if (0..=100).contains(&weight) => (Some(version), weight),
            Some((_, weight)) => {
                return Err(Error::Invalid {
                    what: "alias weight",
                    reason: format!("{weight} is not a percentage"),
                });
            }
            None => (None, 0),
        };
        for version in std::iter::once(version_a).chain(version_b) {
            self.get_function_version(function_id, version).await?;
        }
        // The SET expressions read the row as it was, so the old target becomes the previous.
        let alias: Alias = on_tx!(self, conn => sqlx::query_as(concat!(
            "INSERT INTO aliases (function_id, name, version_a, version_b, weight_b, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (function_id, name) DO UPDATE SET \
             previous_version_a = aliases.version_a, previous_version_b = aliases.version_b, \
             previous_weight_b = aliases.weight_b, version_a = excluded.version_a, \
             version_b = excluded.version_b, weight_b = excluded.weight_b, \
             updated_at = excluded.updated_at \
             RETURNING ",
            alias_columns!()
        ))
        .bind(function_id)
        .bind(name)
        .bind(version_a)
        .bind(version_b)
        .bind(weight_b)
        .bind(now())
        .fetch_one(conn)
        .await)?;
        Ok(alias)
    }

    /// The alias of the function by that name.
    pub async fn get_alias(&mut self, function_id: FunctionId, name: &str) -> Result<Alias> {
        let alias: Option<Alias> = on_tx!(self, conn => sqlx::query_as(concat!(
            "SELECT ",
            alias_columns!(),
            " FROM aliases WHERE function_id = $1 AND name = $2"
        ))
        .bind(function_id)
        .bind(name)
        .fetch_optional(conn)
        .await)?;
        alias.ok_or_else(|| Error::not_found("alias"))
    }

    /// Every alias of the function, by name.
    pub async fn list_aliases(&mut self, function_id: FunctionId) -> Result<Vec<Alias>> {
        let aliases = on_tx!(self, conn => sqlx::query_as(concat!(
            "SELECT ",
            alias_columns!(),
            " FROM aliases WHERE function_id = $1 ORDER BY name"
        ))
        .bind(function_id)
        .fetch_all(conn)
        .await)?;
        Ok(aliases)
    }

    /// Moves the alias back to where it pointed before it last moved; the target it leaves
    /// becomes the previous one, so a second rollback undoes the first. [`Error::Conflict`] if
    /// the alias has never moved.
    pub async fn rollback_alias(&mut self, function_id: FunctionId, name: &str) -> Result<Alias> {
        let alias = self.get_alias(function_id, name).await?;
        let Some(previous_a) = alias.previous_version_a else {
            return Err(Error::Conflict {
                message: format!(
                    "alias `{name}` has never moved, so there is nothing to roll back to"
                ),
            });
        };
        let canary = alias
            .previous_version_b
            .map(|version| (version, alias.previous_weight_b.unwrap_or(0)));
        self.set_alias(function_id, name, previous_a, canary).await
    }

    /// Sets how many nodes keep the function's aliased versions warm, and returns the
    /// function as it now is.
    pub async fn set_function_min_warm(
        &mut self,
        function_id: FunctionId,
        min_warm: i32,
    ) -> Result<Function> {
        let row: Option<FunctionRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "UPDATE functions SET min_warm = $2 WHERE id = $1 RETURNING ",
            function_columns!()
        ))
        .bind(function_id)
        .bind(min_warm)
        .fetch_optional(conn)
        .await)?;
        row.ok_or_else(|| Error::not_found("function"))?.try_into()
    }

    /// Every alias, or only those of functions kept warm (`min_warm` above 0), as (project
    /// slug, function, alias) in that order, up to `limit`.
    pub async fn all_aliases(
        &mut self,
        kept_warm_only: bool,
        limit: u32,
    ) -> Result<Vec<(String, String, String)>> {
        Ok(on_tx!(self, conn => sqlx::query_as(
            "SELECT p.slug, f.name, a.name FROM functions f \
             JOIN projects p ON p.id = f.project_id JOIN aliases a ON a.function_id = f.id \
             WHERE f.min_warm > 0 OR NOT $1 ORDER BY p.slug, f.name, a.name LIMIT $2",
        )
        .bind(kept_warm_only)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await)?)
    }

    /// The project's functions, by name.
    pub async fn list_functions(&mut self, project_id: ProjectId) -> Result<Vec<Function>> {
        let rows: Vec<FunctionRow> = on_tx!(self, conn => sqlx::query_as(concat!(
            "SELECT ",
            function_columns!(),
            " FROM functions WHERE project_id = $1 ORDER BY name"
        ))
        .bind(project_id)
        .fetch_all(conn)
        .await)?;
        rows.into_iter().map(Function::try_from).collect()
    }
}
