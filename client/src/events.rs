//! What happened on the platform, as `/ws/events` and `/ws/agents/{agent}` send it: one JSON
//! object per frame, `{"id","at","type",…}`, or `{"type":"missed","message"}` for a gap.

use serde::Deserialize;
use serde_json::{Map, Value};

open_enum! {
    /// Which output stream a guest wrote to.
    pub enum LogStream {
        /// Standard output.
        Stdout = "stdout",
        /// Standard error.
        Stderr = "stderr",
    }
}

/// Which events [`crate::Client::events`] streams.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Only these types (`function_deployed`, `invocation_finished`…); all when empty.
    pub types: Vec<String>,
    /// Only events of this function.
    pub function: Option<String>,
    /// Only events of this agent (its id).
    pub agent: Option<String>,
    /// Resume after this event id: the events the coordinator still keeps after it come
    /// first (or a [`EventFrame::Missed`] when it no longer keeps them all).
    pub after: Option<String>,
}

/// One frame of an event stream.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "frames are read one at a time; a box would only make matching on them clumsier"
)]
pub enum EventFrame {
    /// An event.
    Event(Event),
    /// Events went by that this stream will never see: the resume point is older than what
    /// the coordinator keeps, or the stream read too slowly. The stream goes on after it.
    Missed {
        /// What was missed, for people.
        message: String,
    },
}

/// An event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its place in the coordinator's one order (`<milliseconds>-<sequence>`): pass it as
    /// [`EventFilter::after`] to resume after it.
    pub id: String,
    /// When it was published (RFC 3339).
    pub at: String,
    /// What happened.
    pub kind: EventKind,
}

/// What happened. Projects, agents and nodes are named by id.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// `agent_created`.
    AgentCreated(AgentCreated),
    /// `agent_changed`.
    AgentChanged(AgentChanged),
    /// `agent_deleted`.
    AgentDeleted(AgentDeleted),
    /// `function_deployed`.
    FunctionDeployed(FunctionDeployed),
    /// `invocation_queued`.
    InvocationQueued(InvocationQueued),
    /// `invocation_started`.
    InvocationStarted(InvocationStarted),
    /// `invocation_finished`.
    InvocationFinished(InvocationFinished),
    /// `invocation_dead`.
    InvocationDead(InvocationDead),
    /// `node_joined`.
    NodeJoined(NodeJoined),
    /// `node_lost`.
    NodeLost(NodeLost),
    /// `guest_log`.
    GuestLog(GuestLog),
    /// A type this client does not know (from a newer coordinator), kept as sent.
    Unknown(UnknownEvent),
}

/// An agent was created.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AgentCreated {
    /// The project's id.
    pub project: String,
    /// The agent's id.
    pub agent: String,
    /// The agent's name.
    pub name: String,
}

/// An agent's state changed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AgentChanged {
    /// The project's id.
    pub project: String,
    /// The agent's id.
    pub agent: String,
    /// Its new state.
    pub state: crate::AgentState,
}

/// An agent was deleted.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AgentDeleted {
    /// The project's id.
    pub project: String,
    /// The agent's id.
    pub agent: String,
}

/// A version of a function was deployed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FunctionDeployed {
    /// The project's id.
    pub project: String,
    /// The function.
    pub function: String,
    /// The new version.
    pub version: i64,
}

/// An asynchronous invocation was accepted and waits for its first attempt.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InvocationQueued {
    /// The project's id.
    pub project: String,
    /// The function.
    pub function: String,
    /// The agent it is a message to.
    #[serde(default)]
    pub agent: Option<String>,
    /// The invocation's id.
    pub invocation: String,
}

/// An attempt of an asynchronous invocation started.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InvocationStarted {
    /// The project's id.
    pub project: String,
    /// The function.
    pub function: String,
    /// The agent it is a message to.
    #[serde(default)]
    pub agent: Option<String>,
    /// The invocation's id.
    pub invocation: String,
    /// The attempt's number, from 1.
    pub attempt: i32,
}

/// An invocation finished with the function's `status`: a message to `agent`, or a call of
/// the function; `invocation` names an asynchronous one.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InvocationFinished {
    /// The project's id.
    pub project: String,
    /// The function.
    pub function: String,
    /// The agent it was a message to.
    #[serde(default)]
    pub agent: Option<String>,
    /// The asynchronous invocation's id.
    #[serde(default)]
    pub invocation: Option<String>,
    /// The function's HTTP status (or the coordinator's, when it could not run).
    pub status: u16,
    /// The version that answered, when the call ran now.
    #[serde(default)]
    pub version: Option<i64>,
    /// Where it ran: `edge`, `aws-lambda`, `azure-functions` or `gcp`.
    #[serde(default)]
    pub target: Option<String>,
    /// Microseconds from dispatch to the function's response head.
    #[serde(default)]
    pub duration_us: Option<u64>,
    /// The edge node whose own ingress answered the call (forwarded from its outbox).
    #[serde(default)]
    pub node: Option<String>,
}

/// An asynchronous invocation used up its attempts or its age: it is on the dead-letter list.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InvocationDead {
    /// The project's id.
    pub project: String,
    /// The function.
    pub function: String,
    /// The agent it was a message to.
    #[serde(default)]
    pub agent: Option<String>,
    /// The invocation's id.
    pub invocation: String,
    /// Why its last attempt failed.
    pub error: String,
}

/// An edge node registered (nodes belong to no project).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NodeJoined {
    /// The node's id.
    pub node: String,
    /// Its name.
    pub name: String,
    /// Its region.
    pub region: String,
}

/// An edge node was lost: its lease lapsed, its stream broke or a call to it failed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NodeLost {
    /// The node's id.
    pub node: String,
    /// Its name.
    pub name: String,
    /// Why.
    pub reason: String,
}

/// What a guest wrote to its standard output or error in one invocation (each stream capped
/// by its runtime), published once its instance has ended.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct GuestLog {
    /// The project's id.
    pub project: String,
    /// The function.
    pub function: String,
    /// The version that wrote it.
    #[serde(default)]
    pub version: Option<i64>,
    /// The agent whose message it ran.
    #[serde(default)]
    pub agent: Option<String>,
    /// The asynchronous invocation it belongs to.
    #[serde(default)]
    pub invocation: Option<String>,
    /// The request it belongs to (as in `x-request-id`).
    #[serde(default)]
    pub request_id: Option<String>,
    /// Which stream.
    pub stream: LogStream,
    /// What was written.
    pub text: String,
    /// Whether `text` was cut short.
    pub truncated: bool,
}

/// An event of a type this client does not know.
#[derive(Debug, Clone, PartialEq)]
pub struct UnknownEvent {
    /// Its `type`.
    pub kind: String,
    /// Its other fields (all but `id`, `at` and `type`).
    pub fields: Map<String, Value>,
}

impl EventKind {
    /// The event's `type`, as on the wire.
    pub fn name(&self) -> &str {
        match self {
            Self::AgentCreated(_) => "agent_created",
            Self::AgentChanged(_) => "agent_changed",
            Self::AgentDeleted(_) => "agent_deleted",
            Self::FunctionDeployed(_) => "function_deployed",
            Self::InvocationQueued(_) => "invocation_queued",
            Self::InvocationStarted(_) => "invocation_started",
            Self::InvocationFinished(_) => "invocation_finished",
            Self::InvocationDead(_) => "invocation_dead",
            Self::NodeJoined(_) => "node_joined",
            Self::NodeLost(_) => "node_lost",
            Self::GuestLog(_) => "guest_log",
            Self::Unknown(unknown) => &unknown.kind,
        }
    }
}

/// The known types, to tell an unknown `type` (kept) from a known one with bad fields (an
/// error).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Known {
    AgentCreated(AgentCreated),
    AgentChanged(AgentChanged),
    AgentDeleted(AgentDeleted),
    FunctionDeployed(FunctionDeployed),
    InvocationQueued(InvocationQueued),
    InvocationStarted(InvocationStarted),
    InvocationFinished(InvocationFinished),
    InvocationDead(InvocationDead),
    NodeJoined(NodeJoined),
    NodeLost(NodeLost),
    GuestLog(GuestLog),
    #[serde(other)]
    Other,
}

/// The frame `text`, or why it is not one.
pub(crate) fn parse_frame(text: &str) -> Result<EventFrame, String> {
    let mut object: Map<String, Value> =
        serde_json::from_str(text).map_err(|error| format!("not a JSON object: {error}"))?;
    if object.get("type").and_then(Value::as_str) == Some("missed") {
        let message = object
            .remove("message")
            .and_then(|message| message.as_str().map(str::to_owned))
            .unwrap_or_default();
        return Ok(EventFrame::Missed { message });
    }
    parse_event(object).map(EventFrame::Event)
}

/// The event `object` is.
pub(crate) fn parse_event(mut object: Map<String, Value>) -> Result<Event, String> {
    let mut take = |field: &str| match object.remove(field) {
        Some(Value::String(text)) => Ok(text),
        _ => Err(format!("an event has a string `{field}`")),
    };
    let id = take("id")?;
    let at = take("at")?;
    let name = match object.get("type") {
        Some(Value::String(name)) => name.clone(),
        _ => return Err("an event has a string `type`".to_owned()),
    };
    let value = Value::Object(object);
    let known = Known::deserialize(&value).map_err(|error| format!("a {name} event: {error}"))?;
    let kind = match known {
        Known::AgentCreated(event) => EventKind::AgentCreated(event),
        Known::AgentChanged(event) => EventKind::AgentChanged(event),
        Known::AgentDeleted(event) => EventKind::AgentDeleted(event),
        Known::FunctionDeployed(event) => EventKind::FunctionDeployed(event),
        Known::InvocationQueued(event) => EventKind::InvocationQueued(event),
        Known::InvocationStarted(event) => EventKind::InvocationStarted(event),
        Known::InvocationFinished(event) => EventKind::InvocationFinished(event),
        Known::InvocationDead(event) => EventKind::InvocationDead(event),
        Known::NodeJoined(event) => EventKind::NodeJoined(event),
        Known::NodeLost(event) => EventKind::NodeLost(event),
        Known::GuestLog(event) => EventKind::GuestLog(event),
        Known::Other => {
            let mut fields = match value {
                Value::Object(fields) => fields,
                _ => Map::new(),
            };
            fields.remove("type");
            EventKind::Unknown(UnknownEvent { kind: name, fields })
        }
    };
    Ok(Event { id, at, kind })
}

#[cfg(test)]
mod tests;
