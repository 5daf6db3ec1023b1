//! Agents: named, stateful instances of a function alias in a project.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use crate::store::on_tx;
use crate::time::now;
use crate::{AgentId, Error, FunctionId, ProjectId, Result, Tx};

/// Where an agent stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AgentState {
    /// Takes messages.
    Active,
    /// Takes messages; nothing of it is held in memory until one arrives.
    Idle,
    /// Keeps its context and queues messages without running them until resumed.
    Suspended,
}

impl AgentState {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Idle => "idle",
            Self::Suspended => "suspended",
        }
    }
}

impl fmt::Display for AgentState {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// A name that is not an agent state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown agent state {0:?} (active, idle or suspended)")]
pub struct UnknownAgentState(pub String);

impl FromStr for AgentState {
    type Err = UnknownAgentState;

    fn from_str(text: &str) -> std::result::Result<Self, Self::Err> {
        match text {
            "active" => Ok(Self::Active),
            "idle" => Ok(Self::Idle),
            "suspended" => Ok(Self::Suspended),
            other => Err(UnknownAgentState(other.to_owned())),
        }
    }
}

/// An agent as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// The agent's id.
    pub id: AgentId,
    /// Its project.
    pub project_id: ProjectId,
    /// The function whose alias runs it.
    pub function_id: FunctionId,
    /// That function's name.
    pub function: String,
    /// Unique in the project.
    pub name: String,
    /// The function's alias whose version serves its messages.
    pub alias: String,
    /// Where it stands.
    pub state: AgentState,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When its state last changed.
    pub updated_at: DateTime<Utc>,
}

/// What [`Tx::create_agent`] needs.
#[derive(Debug, Clone)]
pub struct NewAgent {
    /// The project it belongs to.
    pub project_id: ProjectId,
    /// The function whose alias runs it, in the same project.
    pub function_id: FunctionId,
    /// Unique in the project.
    pub name: String,
    /// The function's alias.
    pub alias: String,
}

#[derive(sqlx::FromRow)]
struct AgentRow {
    id: AgentId,
    project_id: ProjectId,
    function_id: FunctionId,
    function: String,
    name: String,
    alias: String,
    state: String,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<AgentRow> for Agent {
    type Error = Error;

    fn try_from(row: AgentRow) -> Result<Self> {
        Ok(Self {
            state: row
                .state
                .parse()
                .map_err(|error: UnknownAgentState| Error::corrupt("agents", error.to_string()))?,
            id: row.id,
            project_id: row.project_id,
            function_id: row.function_id,
            function: row.function,
            name: row.name,
            alias: row.alias,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

macro_rules! select_agents {
    ($condition:literal) => {
        concat!(
            "SELECT a.id, a.project_id, a.function_id, f.name AS function, a.name, a.alias, \
             a.state, a.created_at, a.updated_at \
             FROM agents a JOIN functions f ON f.id = a.function_id ",
            $condition
        )
    };
}

impl Tx<'_> {
    /// Stores a new agent, `active`. [`Error::Conflict`] if the project has an agent of that
    /// name; [`Error::NotFound`] if the function is not the project's.
    pub async fn create_agent(&mut self, new_agent: &NewAgent) -> Result<Agent> {
        let function: String = on_tx!(self, conn => sqlx::query_scalar(
            "SELECT name FROM functions WHERE id = $1 AND project_id = $2",
        )
        .bind(new_agent.function_id)
        .bind(new_agent.project_id)
        .fetch_optional(conn)
        .await)?
        .ok_or_else(|| Error::not_found("function"))?;
        self.insert_agent(new_agent, function).await
    }

    /// Stores a new agent, `active`, of the project's alias `alias` of the function named
    /// `function`, checking both in one read. [`Error::NotFound`] (`function` or `alias`) if
    /// either is missing; [`Error::Conflict`] if the project has an agent named `name`.
    pub async fn create_agent_of_alias(
        &mut self,
        project_id: ProjectId,
        function: &str,
        alias: &str,
        name: &str,
    ) -> Result<Agent> {
        let found: Option<(FunctionId, Option<String>)> = on_tx!(self, conn => sqlx::query_as(
            "SELECT f.id, a.name FROM functions f LEFT JOIN aliases a \
             ON a.function_id = f.id AND a.name = $3 WHERE f.project_id = $1 AND f.name = $2",
        )
        .bind(project_id)
        .bind(function)
        .bind(alias)
        .fetch_optional(conn)
        .await)?;
        let (function_id, alias) = match found {
            None => return Err(Error::not_found("function")),
            Some((_, None)) => return Err(Error::not_found("alias")),
            Some((function_id, Some(alias))) => (function_id, alias),
        };
        let new_agent = NewAgent {
            project_id,
            function_id,
            name: name.to_owned(),
            alias,
        };
        self.insert_agent(&new_agent, function.to_owned()).await
    }

    async fn insert_agent(&mut self, new_agent: &NewAgent, function: String) -> Result<Agent> {
        let created_at = now();
        let agent = Agent {
            id: AgentId::new(),
            project_id: new_agent.project_id,
            function_id: new_agent.function_id,
            function,
            name: new_agent.name.clone(),
            alias: new_agent.alias.clone(),
            state: AgentState::Active,
            created_at,
            updated_at: created_at,
        };
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO agents (id, project_id, function_id, name, alias, state, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(agent.id)
        .bind(agent.project_id)
        .bind(agent.function_id)
        .bind(&agent.name)
        .bind(&agent.alias)
        .bind(agent.state.as_str())
        .bind(agent.created_at)
        .bind(agent.updated_at)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(agent)
    }

    /// The project's agent with this id. [`Error::NotFound`] if it has none.
    pub async fn get_agent(&mut self, project_id: ProjectId, id: AgentId) -> Result<Agent> {
        let row: Option<AgentRow> = on_tx!(self, conn => sqlx::query_as(select_agents!(
            "WHERE a.id = $1 AND a.project_id = $2"
        ))
        .bind(id)
        .bind(project_id)
        .fetch_optional(conn)
        .await)?;
        row.map(Agent::try_from)
            .transpose()?
            .ok_or_else(|| Error::not_found("agent"))
    }

    /// Up to `limit` of the project's agents in name order, after the name `after` when given:
    /// a page, and the cursor for the next one is the last name in it.
    pub async fn list_agents(
        &mut self,
        project_id: ProjectId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Agent>> {
        let rows: Vec<AgentRow> = on_tx!(self, conn => sqlx::query_as(select_agents!(
            "WHERE a.project_id = $1 AND a.name > $2 ORDER BY a.name LIMIT $3"
        ))
        .bind(project_id)
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await)?;
        rows.into_iter().map(Agent::try_from).collect()
    }

    /// Moves the project's agent to `state`. [`Error::NotFound`] if it has no such agent.
    pub async fn set_agent_state(
        &mut self,
        project_id: ProjectId,
        id: AgentId,
        state: AgentState,
    ) -> Result<Agent> {
        let changed = on_tx!(self, conn => sqlx::query(
            "UPDATE agents SET state = $1, updated_at = $2 WHERE id = $3 AND project_id = $4",
        )
        .bind(state.as_str())
        .bind(now())
        .bind(id)
        .bind(project_id)
        .execute(conn)
        .await
        .map(|result| result.rows_affected()))?;
        if changed == 0 {
            return Err(Error::not_found("agent"));
        }
        self.get_agent(project_id, id).await
    }

    /// Removes the project's agent, and with it (by the schema's cascade) the records of its
    /// invocations; the name is free again and the audit log keeps what happened. The schema
    /// also admits a `deleted` state, which the store never writes. [`Error::NotFound`] if the
    /// project has no such agent.
    pub async fn delete_agent(&mut self, project_id: ProjectId, id: AgentId) -> Result<()> {
        let deleted = on_tx!(self, conn => sqlx::query(
            "DELETE FROM agents WHERE id = $1 AND project_id = $2",
        )
        .bind(id)
        .bind(project_id)
        .execute(conn)
        .await
        .map(|result| result.rows_affected()))?;
        if deleted == 0 {
            return Err(Error::not_found("agent"));
        }
        Ok(())
    }
}
