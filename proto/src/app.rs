//! The resolved app record: what an edge node runs.
//!
//! Produced from a Spin manifest (`spin.toml`, version 2) by the manifest loader and, later, by
//! the coordinator at deploy time. Everything a node needs is resolved here: component digests
//! instead of file paths, parsed variable templates, the HTTP routes. The runtime never reads
//! TOML.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Digest;

/// A fully resolved application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedApp {
    /// `[application] name`.
    pub name: String,
    /// `[application] version`, when given.
    pub version: Option<String>,
    /// Application variables (`[variables]`), by lowercase name.
    pub variables: BTreeMap<String, VariableDefinition>,
    /// The components, by id (`[component.<id>]`).
    pub components: BTreeMap<String, ResolvedComponent>,
    /// The HTTP triggers (`[[trigger.http]]`), in manifest order.
    pub http_triggers: Vec<HttpTrigger>,
}

/// An application variable and how it gets its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariableDefinition {
    /// The value used when no provider has one. `None` with `required == false` never happens:
    /// the loader rejects a variable that has neither.
    pub default: Option<String>,
    /// The app refuses to start when no provider has a value.
    pub required: bool,
    /// The value must never be logged or shown.
    pub secret: bool,
}

/// One component of an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolvedComponent {
    /// The component id, unique within the app.
    pub id: String,
    /// The sha256 digest of the component's Wasm bytes.
    pub source: Digest,
    /// `allowed_outbound_hosts`, as templates (entries may name variables); the runtime
    /// renders them with the app's variables and parses the result.
    pub allowed_outbound_hosts: Vec<Template>,
    /// Labels of the key-value stores the component may open.
    pub key_value_stores: Vec<String>,
    /// Labels of the SQLite databases the component may open.
    pub sqlite_databases: Vec<String>,
    /// Component variables (`[component.<id>.variables]`), by lowercase name, as templates.
    pub variables: BTreeMap<String, Template>,
    /// Environment variables visible to the guest (`environment`).
    pub environment: BTreeMap<String, String>,
}

/// A string with `{{ variable }}` references, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template(pub Vec<TemplatePart>);

/// The template as a manifest writes it: variables as `{{ name }}`.
impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.0 {
            match part {
                TemplatePart::Literal(text) => f.write_str(text)?,
                TemplatePart::Variable(name) => write!(f, "{{{{ {name} }}}}")?,
            }
        }
        Ok(())
    }
}

/// A piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TemplatePart {
    /// Text used as is.
    Literal(String),
    /// The value of the application variable with this (lowercase) name.
    Variable(String),
}

impl Template {
    /// A template with no variables.
    pub fn literal(text: impl Into<String>) -> Self {
        Self(vec![TemplatePart::Literal(text.into())])
    }

    /// The text with every variable replaced by `lookup`'s value for it; the first variable
    /// `lookup` has no value for is returned as the error.
    pub fn render<'a>(&self, lookup: impl Fn(&str) -> Option<&'a str>) -> Result<String, String> {
        let mut text = String::new();
        for part in &self.0 {
            match part {
                TemplatePart::Literal(literal) => text.push_str(literal),
                TemplatePart::Variable(name) => {
                    text.push_str(lookup(name).ok_or_else(|| name.clone())?)
                }
            }
        }
        Ok(text)
    }

    /// The names of the application variables this template reads.
    pub fn references(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|part| match part {
            TemplatePart::Variable(name) => Some(name.as_str()),
            TemplatePart::Literal(_) => None,
        })
    }
}

/// An HTTP trigger: a route served by a component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpTrigger {
    /// Where the component is reachable.
    pub route: HttpRoute,
    /// The id of the component that serves the route.
    pub component: String,
}

/// How a component is reachable over HTTP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HttpRoute {
    /// A route pattern as written in the manifest: exact (`/hello`), with parameters
    /// (`/users/:id`) or with a trailing wildcard (`/static/...`). [`crate::route`] parses it.
    Path(String),
    /// `route = { private = true }`: not reachable from outside the app.
    Private,
}
