//! `[component.<id>]`: refusing what the runtime does not implement, parsing templates, and
//! reading each source file to compute its digest.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use nexus_proto::Digest;
use nexus_proto::app::{ResolvedComponent, Template, VariableDefinition};

use super::Loader;
use crate::error::{Error, Result};
use crate::schema::{RawComponent, RawSource};
use crate::template::parse_template;

/// Whether `path`, relative to a directory, names something inside it: relative, and never
/// climbing above its start with `..`. Lexical, so symbolic links are not followed.
fn stays_inside(path: &str) -> bool {
    let mut depth = 0usize;
    for component in Path::new(path).components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return false,
            },
            Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

impl Loader {
    /// Resolves every component (referenced or not, as Spin loads them all) and collects the
    /// source file behind each digest.
    pub(super) fn resolve_components(
        &self,
        raw_components: BTreeMap<String, RawComponent>,
        variables: &BTreeMap<String, VariableDefinition>,
        manifest_dir: &Path,
    ) -> Result<(
        BTreeMap<String, ResolvedComponent>,
        BTreeMap<Digest, PathBuf>,
    )> {
        let mut components = BTreeMap::new();
        let mut sources = Vec::with_capacity(raw_components.len());
        for (id, raw) in raw_components {
            let (component, source_path) = self.resolve_component(id, raw, variables)?;
            sources.push((component.id.clone(), source_path));
            components.insert(component.id.clone(), component);
        }
        // File reads come last, so that a manifest with mistakes fails before any I/O.
        let mut artifacts = BTreeMap::new();
        for (id, source_path) in sources {
            let path = manifest_dir.join(source_path);
            let bytes = std::fs::read(&path).map_err(|source| Error::ReadSource {
                manifest: self.manifest.clone(),
                component: id.clone(),
                path: path.clone(),
                source,
            })?;
            let digest = Digest::of(&bytes);
            if let Some(component) = components.get_mut(&id) {
                component.source = digest;
            }
            artifacts.entry(digest).or_insert(path);
        }
        Ok((components, artifacts))
    }

    /// Resolves one component; its `source` digest is filled in once the file is read.
    fn resolve_component(
        &self,
        id: String,
        raw: RawComponent,
        variables: &BTreeMap<String, VariableDefinition>,
    ) -> Result<(ResolvedComponent, String)> {
        let owner = || format!("component `{id}`");
        // Fields Spin implements and this runtime does not: refused rather than ignored.
        let unsupported = [
            ("files", raw.files.is_empty()),
            ("ai_models", raw.ai_models.is_empty()),
            ("dependencies", raw.dependencies.is_empty()),
            ("allowed_http_hosts", raw.allowed_http_hosts.is_empty()),
        ];
        if let Some((field, _)) = unsupported.iter().find(|(_, empty)| !empty) {
            return Err(Error::UnsupportedField {
                manifest: self.manifest.clone(),
                owner: owner(),
                field,
            });
        }
        let source_path = match raw.source {
            RawSource::Local(path) if self.confined && !stays_inside(&path) => {
                return Err(Error::SourceOutsideApp {
                    manifest: self.manifest.clone(),
                    component: id,
                    source_path: path,
                });
            }
            RawSource::Local(path) => path,
            RawSource::Remote => return Err(self.unsupported_source(&id, "remote (`url`)")),
            RawSource::Registry => return Err(self.unsupported_source(&id, "registry")),
        };

        let mut component_variables = BTreeMap::new();
        for (name, value) in raw.variables {
            let field = format!("variables.{name}");
            let template = self.checked_template(&id, &field, &value, variables)?;
            component_variables.insert(name.into_string(), template);
        }
        // Spin validates `{{ ... }}` references in allowed hosts at load time too
        // (`AllowedHostsConfig::validate` in spin-loader); the runtime parses the hosts.
        let mut allowed_outbound_hosts = Vec::with_capacity(raw.allowed_outbound_hosts.len());
        for host in &raw.allowed_outbound_hosts {
            let field = format!("allowed_outbound_hosts entry {host:?}");
            allowed_outbound_hosts.push(self.checked_template(&id, &field, host, variables)?);
        }

        let component = ResolvedComponent {
            source: Digest::of(&[]),
            allowed_outbound_hosts,
            key_value_stores: raw
                .key_value_stores
                .into_iter()
                .map(|label| label.into_string())
                .collect(),
            sqlite_databases: raw
                .sqlite_databases
                .into_iter()
                .map(|label| label.into_string())
                .collect(),
            variables: component_variables,
            environment: raw.environment,
            id,
        };
        Ok((component, source_path))
    }

    fn unsupported_source(&self, component: &str, kind: &'static str) -> Error {
        Error::UnsupportedSource {
            manifest: self.manifest.clone(),
            component: component.to_owned(),
            kind,
        }
    }

    /// Parses a template and checks that every variable it reads is defined in `[variables]`
    /// (`Resolver::validate_template` in spin-expressions).
    fn checked_template(
        &self,
        component: &str,
        field: &str,
        text: &str,
        variables: &BTreeMap<String, VariableDefinition>,
    ) -> Result<Template> {
        let template = parse_template(text).map_err(|reason| Error::InvalidTemplate {
            manifest: self.manifest.clone(),
            component: component.to_owned(),
            field: field.to_owned(),
            reason,
        })?;
        if let Some(undefined) = template
            .references()
            .find(|name| !variables.contains_key(*name))
        {
            return Err(Error::UndefinedVariable {
                manifest: self.manifest.clone(),
                component: component.to_owned(),
                field: field.to_owned(),
                variable: undefined.to_owned(),
            });
        }
        Ok(template)
    }
}
