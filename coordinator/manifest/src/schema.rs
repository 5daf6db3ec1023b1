//! The `spin.toml` (manifest version 2) file format, as serde types.
//!
//! Field for field this is Spin's schema (`spin-manifest`, `crates/manifest/src/schema/v2.rs`
//! and `v2/*.rs`, `schema/common.rs`; the HTTP trigger's own fields from `spin-http`,
//! `crates/http/src/config.rs`), with unknown fields denied everywhere Spin denies them. Fields
//! the runtime does not implement are still parsed here, so that the loader can name them in
//! its error instead of reporting an unknown field.
//!
//! Where Spin uses untagged enums or `#[serde(flatten)]`, these types use small visitors
//! instead, so that an error deep inside a trigger or an inline component keeps its line and
//! column.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::ids::{ComponentId, StoreLabel, VariableName};

/// The first thing read from a manifest: its version, before anything version-specific.
/// (`VersionProbe` in Spin's `schema/mod.rs`, including the old `spin_version` spelling.)
#[derive(Deserialize)]
pub(crate) struct VersionProbe {
    #[serde(alias = "spin_version")]
    pub(crate) spin_manifest_version: Option<toml::Value>,
}

/// A whole manifest (`AppManifest`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawManifest {
    /// Checked by [`VersionProbe`] first.
    #[serde(alias = "spin_version")]
    #[expect(
        dead_code,
        reason = "read only to accept the key; its value is probed separately"
    )]
    pub(crate) spin_manifest_version: IgnoredAny,
    pub(crate) application: RawApplication,
    #[serde(default)]
    pub(crate) variables: BTreeMap<VariableName, RawVariable>,
    /// Required, as in Spin (`[[trigger.<type>]]`).
    #[serde(rename = "trigger")]
    pub(crate) triggers: ByTriggerType<Vec<RawHttpTrigger>>,
    #[serde(default, rename = "component")]
    pub(crate) components: BTreeMap<ComponentId, RawComponent>,
}

/// `[application]` (`AppDetails`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApplication {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) version: String,
    /// Accepted; nodes have no use for it.
    #[serde(default)]
    #[expect(dead_code, reason = "accepted for compatibility, not needed by nodes")]
    pub(crate) description: String,
    #[serde(default)]
    #[expect(dead_code, reason = "accepted for compatibility, not needed by nodes")]
    pub(crate) authors: Vec<String>,
    /// Deployment environment checks for `spin build`/`spin deploy`; no effect on running.
    #[serde(default)]
    #[expect(dead_code, reason = "accepted for compatibility, no effect on running")]
    pub(crate) targets: Vec<toml::Value>,
    /// `[application.trigger.<type>]`: only `http`'s settings matter here.
    #[serde(default, rename = "trigger")]
    pub(crate) trigger_settings: ByTriggerType<RawHttpSettings>,
    /// Settings for other tools; Spin ignores it too.
    #[serde(default)]
    #[expect(dead_code, reason = "Spin ignores it too")]
    pub(crate) tool: BTreeMap<String, toml::Table>,
}

/// `[application.trigger.http]` (`TriggerMetadata` in `spin-trigger-http`'s `lib.rs`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpSettings {
    pub(crate) base: Option<String>,
}

/// `[variables] name = { ... }` (`Variable` in `schema/common.rs`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVariable {
    #[serde(default)]
    #[expect(dead_code, reason = "accepted for compatibility, not needed by nodes")]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) required: bool,
    #[serde(default)]
    pub(crate) default: Option<String>,
    #[serde(default)]
    pub(crate) secret: bool,
}

/// A map keyed by trigger type in which only `http` entries are typed: the other types'
/// names are kept so the loader can say they are not supported.
pub(crate) struct ByTriggerType<H> {
    pub(crate) http: Option<H>,
    pub(crate) other_types: Vec<String>,
}

impl<H> Default for ByTriggerType<H> {
    fn default() -> Self {
        Self {
            http: None,
            other_types: Vec::new(),
        }
    }
}

impl<'de, H: Deserialize<'de>> Deserialize<'de> for ByTriggerType<H> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ByTypeVisitor<H>(PhantomData<H>);

        impl<'de, H: Deserialize<'de>> Visitor<'de> for ByTypeVisitor<H> {
            type Value = ByTriggerType<H>;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a table of trigger types")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut by_type = ByTriggerType::default();
                while let Some(trigger_type) = map.next_key::<String>()? {
                    if trigger_type == "http" {
                        by_type.http = Some(map.next_value()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                        by_type.other_types.push(trigger_type);
                    }
                }
                Ok(by_type)
            }
        }

        deserializer.deserialize_map(ByTypeVisitor(PhantomData))
    }
}

/// `[[trigger.http]]`: Spin's `Trigger` with `HttpTriggerConfig` flattened into it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHttpTrigger {
    #[serde(default)]
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) component: Option<RawComponentSpec>,
    /// Trigger-specific extra components; the HTTP trigger has none.
    #[serde(default)]
    pub(crate) components: toml::Table,
    /// Components invoked around the trigger; not supported yet.
    #[serde(default)]
    pub(crate) dependencies: toml::Table,
    pub(crate) route: RawRoute,
    #[serde(default)]
    pub(crate) executor: Option<RawExecutor>,
    /// A response served by the host without a component; not supported yet.
    #[serde(default)]
    pub(crate) static_response: Option<toml::Value>,
}

/// `executor = { type = "..." }` (`HttpExecutorType`; `spin` is an alias of `http`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExecutor {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// Wagi only.
    #[serde(default)]
    pub(crate) entrypoint: Option<String>,
    /// Wagi only.
    #[serde(default)]
    pub(crate) argv: Option<String>,
}

/// `route = "/path"` or `route = { private = ... }` (`HttpTriggerRouteConfig`).
pub(crate) enum RawRoute {
    Path(String),
    Private(bool),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrivate {
    private: bool,
}

impl<'de> Deserialize<'de> for RawRoute {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct RouteVisitor;

        impl<'de> Visitor<'de> for RouteVisitor {
            type Value = RawRoute;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a route pattern string or `{ private = true }`")
            }

            fn visit_str<E: de::Error>(self, route: &str) -> Result<Self::Value, E> {
                Ok(RawRoute::Path(route.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let RawPrivate { private } =
                    RawPrivate::deserialize(MapAccessDeserializer::new(map))?;
                Ok(RawRoute::Private(private))
            }
        }

        deserializer.deserialize_any(RouteVisitor)
    }
}

/// `component = "id"` or an inline `component = { source = ... }` (`ComponentSpec`).
pub(crate) enum RawComponentSpec {
    Reference(ComponentId),
    Inline(Box<RawComponent>),
}

impl<'de> Deserialize<'de> for RawComponentSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SpecVisitor;

        impl<'de> Visitor<'de> for SpecVisitor {
            type Value = RawComponentSpec;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("a component id or an inline component table")
            }

            fn visit_str<E: de::Error>(self, id: &str) -> Result<Self::Value, E> {
                ComponentId::try_from(id.to_owned())
                    .map(RawComponentSpec::Reference)
                    .map_err(E::custom)
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let component = RawComponent::deserialize(MapAccessDeserializer::new(map))?;
                Ok(RawComponentSpec::Inline(Box::new(component)))
            }
        }

        deserializer.deserialize_any(SpecVisitor)
    }
}

/// `[component.<id>]` (`Component` in `schema/v2/component.rs`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawComponent {
    pub(crate) source: RawSource,
    #[serde(default)]
    #[expect(dead_code, reason = "accepted for compatibility, not needed by nodes")]
    pub(crate) description: String,
    #[serde(default)]
    pub(crate) variables: BTreeMap<VariableName, String>,
    #[serde(default)]
    pub(crate) environment: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) files: Vec<toml::Value>,
    /// Only meaningful with `files`.
    #[serde(default)]
    #[expect(dead_code, reason = "only meaningful with `files`, which is refused")]
    pub(crate) exclude_files: Vec<String>,
    /// Deprecated by Spin in favour of `allowed_outbound_hosts`.
    #[serde(default)]
    pub(crate) allowed_http_hosts: Vec<String>,
    #[serde(default)]
    pub(crate) allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    pub(crate) key_value_stores: Vec<StoreLabel>,
    #[serde(default)]
    pub(crate) sqlite_databases: Vec<StoreLabel>,
    #[serde(default)]
    pub(crate) ai_models: Vec<String>,
    /// Deployment environment checks; no effect on running.
    #[serde(default)]
    #[expect(dead_code, reason = "accepted for compatibility, no effect on running")]
    pub(crate) targets: Option<Vec<toml::Value>>,
    /// For `spin build`; no effect on running.
    #[serde(default)]
    #[expect(dead_code, reason = "accepted for compatibility, no effect on running")]
    pub(crate) build: Option<RawBuild>,
    #[serde(default)]
    #[expect(dead_code, reason = "Spin ignores it too")]
    pub(crate) tool: BTreeMap<String, toml::Table>,
    /// Only meaningful with `dependencies`.
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "only meaningful with `dependencies`, which is refused"
    )]
    pub(crate) dependencies_inherit_configuration: Option<bool>,
    #[serde(default)]
    pub(crate) dependencies: toml::Table,
    /// Overrides for `spin up --profile <name>`; the default profile is what runs.
    #[serde(default)]
    #[expect(dead_code, reason = "only used with a non-default profile")]
    pub(crate) profile: BTreeMap<String, toml::Value>,
}

/// `build = { ... }` (`ComponentBuildConfig`), checked as strictly as Spin checks it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBuild {
    #[expect(dead_code, reason = "validated for compatibility, not used")]
    pub(crate) command: toml::Value,
    #[serde(default)]
    #[expect(dead_code, reason = "validated for compatibility, not used")]
    pub(crate) workdir: Option<String>,
    #[serde(default)]
    #[expect(dead_code, reason = "validated for compatibility, not used")]
    pub(crate) watch: Vec<String>,
}

/// `source = "path"`, `{ url, digest }` or `{ registry, package, version }` (`ComponentSource`).
pub(crate) enum RawSource {
    Local(String),
    Remote,
    Registry,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSourceTable {
    url: Option<String>,
    digest: Option<String>,
    registry: Option<String>,
    package: Option<String>,
    version: Option<String>,
}

impl<'de> Deserialize<'de> for RawSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SourceVisitor;

        impl<'de> Visitor<'de> for SourceVisitor {
            type Value = RawSource;

            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str(
                    "a file path, `{ url = \"...\", digest = \"sha256:...\" }` or \
                     `{ registry = \"...\", package = \"...\", version = \"...\" }`",
                )
            }

            fn visit_str<E: de::Error>(self, path: &str) -> Result<Self::Value, E> {
                Ok(RawSource::Local(path.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let table = RawSourceTable::deserialize(MapAccessDeserializer::new(map))?;
                match table {
                    RawSourceTable {
                        url: Some(_),
                        digest: Some(_),
                        registry: None,
                        package: None,
                        version: None,
                    } => Ok(RawSource::Remote),
                    RawSourceTable {
                        url: None,
                        digest: None,
                        package: Some(_),
                        version: Some(_),
                        ..
                    } => Ok(RawSource::Registry),
                    _ => Err(de::Error::custom(format_args!(
                        "invalid component source: expected {}",
                        ExpectedSource
                    ))),
                }
            }
        }

        deserializer.deserialize_any(SourceVisitor)
    }
}

/// The accepted source forms, for error messages.
struct ExpectedSource;

impl fmt::Display for ExpectedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "`{ url = \"...\", digest = \"sha256:...\" }` or \
             `{ registry = \"...\", package = \"...\", version = \"...\" }`",
        )
    }
}
