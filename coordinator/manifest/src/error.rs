//! Why a manifest could not be loaded.
//!
//! Every variant names the manifest file, and the component, trigger, variable or field at
//! fault. Messages are lowercase with no trailing period; an underlying I/O or TOML error is
//! the [`source`](std::error::Error::source), so print the whole chain.

use std::io;
use std::path::PathBuf;

/// A manifest loading error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest file could not be read.
    #[error("failed to read manifest {}", manifest.display())]
    ReadManifest {
        /// The manifest file.
        manifest: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// The manifest is not valid TOML, or does not fit the schema: unknown field, wrong type,
    /// invalid component id or variable name. The source gives the line and column.
    #[error("invalid manifest {}", manifest.display())]
    Toml {
        /// The manifest file.
        manifest: PathBuf,
        /// The TOML error, with its location.
        #[source]
        source: Box<toml::de::Error>,
    },

    /// The manifest is not version 2 (`spin_manifest_version = 2`).
    #[error(
        "unsupported manifest version in {}: {found}; only `spin_manifest_version = 2` is supported",
        manifest.display()
    )]
    UnsupportedManifestVersion {
        /// The manifest file.
        manifest: PathBuf,
        /// What the manifest declares, or `no spin_manifest_version` when it declares nothing.
        found: String,
    },

    /// `[[trigger.<type>]]` for a type other than `http`.
    #[error(
        "{}: `[[trigger.{trigger_type}]]` triggers are not supported yet; only `[[trigger.http]]` is",
        manifest.display()
    )]
    UnsupportedTriggerType {
        /// The manifest file.
        manifest: PathBuf,
        /// The trigger type, e.g. `redis`.
        trigger_type: String,
    },

    /// `[application.trigger.http] base` other than `/`, which Spin also refuses for v2.
    #[error(
        "{}: `[application.trigger.http] base = {base:?}` is not supported by manifest version 2; \
         prepend the base to each `[[trigger.http]]` route instead",
        manifest.display()
    )]
    UnsupportedBase {
        /// The manifest file.
        manifest: PathBuf,
        /// The base given.
        base: String,
    },

    /// A variable that is both `required` and has a `default`, or neither.
    #[error(
        "{}: variable `{variable}` must either be `required = true` or have a `default`, {problem}",
        manifest.display()
    )]
    InvalidVariable {
        /// The manifest file.
        manifest: PathBuf,
        /// The variable name.
        variable: String,
        /// `not both` or `not neither`.
        problem: &'static str,
    },

    /// A component or trigger field the runtime does not implement is set.
    #[error("{}: {owner} sets `{field}`, which is not supported yet", manifest.display())]
    UnsupportedField {
        /// The manifest file.
        manifest: PathBuf,
        /// ``component `<id>` `` or the trigger.
        owner: String,
        /// The field, e.g. `files`.
        field: &'static str,
    },

    /// A component source that is not a local file.
    #[error(
        "{}: component `{component}` has a {kind} source, which is not supported yet; \
         use `source = \"path/to/component.wasm\"`",
        manifest.display()
    )]
    UnsupportedSource {
        /// The manifest file.
        manifest: PathBuf,
        /// The component id.
        component: String,
        /// `remote (url)` or `registry`.
        kind: &'static str,
    },

    /// A component source outside the manifest's directory (absolute, or climbing out with
    /// `..`), refused by [`load_confined`](crate::load_confined) before anything is read.
    #[error(
        "{}: the source of component `{component}`, {source_path:?}, is outside the app's \
         directory; use a relative path without `..` leading out",
        manifest.display()
    )]
    SourceOutsideApp {
        /// The manifest file.
        manifest: PathBuf,
        /// The component id.
        component: String,
        /// The source as written in the manifest.
        source_path: String,
    },

    /// A component source file could not be read.
    #[error(
        "{}: cannot read the source of component `{component}` at {}",
        manifest.display(),
        path.display()
    )]
    ReadSource {
        /// The manifest file.
        manifest: PathBuf,
        /// The component id.
        component: String,
        /// The absolute path of the source file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },

    /// A `{{ ... }}` template that cannot be parsed.
    #[error(
        "{}: component `{component}`: `{field}` is not a valid template: {reason}",
        manifest.display()
    )]
    InvalidTemplate {
        /// The manifest file.
        manifest: PathBuf,
        /// The component id.
        component: String,
        /// The field, e.g. `variables.api_url`.
        field: String,
        /// What is wrong.
        reason: String,
    },

    /// A template refers to an application variable that `[variables]` does not define.
    #[error(
        "{}: component `{component}`: `{field}` refers to undefined variable `{variable}`",
        manifest.display()
    )]
    UndefinedVariable {
        /// The manifest file.
        manifest: PathBuf,
        /// The component id.
        component: String,
        /// The field, e.g. `variables.api_url`.
        field: String,
        /// The undefined name, as written inside the braces.
        variable: String,
    },

    /// An `executor` other than `http` (or its alias `spin`).
    #[error(
        "{}: {trigger} uses executor `{executor}`, which is not supported; only `http` is",
        manifest.display()
    )]
    UnsupportedExecutor {
        /// The manifest file.
        manifest: PathBuf,
        /// The trigger.
        trigger: String,
        /// The executor type, e.g. `wagi`.
        executor: String,
    },

    /// A trigger without a `component`.
    #[error("{}: {trigger} has no `component`", manifest.display())]
    MissingComponent {
        /// The manifest file.
        manifest: PathBuf,
        /// The trigger.
        trigger: String,
    },

    /// A trigger that refers to a component the manifest does not define.
    #[error(
        "{}: {trigger} refers to component `{component}`, but there is no `[component.{component}]`",
        manifest.display()
    )]
    UnknownComponent {
        /// The manifest file.
        manifest: PathBuf,
        /// The trigger.
        trigger: String,
        /// The missing component id.
        component: String,
    },

    /// A route that cannot be parsed or matched, or `{ private = false }`.
    #[error("{}: {trigger} has invalid route `{route}`: {reason}", manifest.display())]
    InvalidRoute {
        /// The manifest file.
        manifest: PathBuf,
        /// The trigger.
        trigger: String,
        /// The route as written.
        route: String,
        /// What is wrong.
        reason: String,
    },

    /// Two routes that match exactly the same paths: one of them could never be reached.
    #[error(
        "{}: route `{route}` of {trigger} duplicates route `{previous_route}` of \
         {previous_trigger}: both match exactly the same paths",
        manifest.display()
    )]
    DuplicateRoute {
        /// The manifest file.
        manifest: PathBuf,
        /// The later trigger.
        trigger: String,
        /// Its route, as written.
        route: String,
        /// The earlier trigger.
        previous_trigger: String,
        /// Its route, as written.
        previous_route: String,
    },
}

/// The result of loading a manifest.
pub type Result<T, E = Error> = std::result::Result<T, E>;
